/* pool.h: the worker pool that trains queued runs.
 *
 * DESIGN (concurrency): `workers` threads, each with its own store
 * connection, loop: claim the oldest queued run for this node (an atomic
 * transition in the store, so a run is taken by exactly one worker of all
 * the nodes on one database; the claim gives the run a lease that the
 * node's heartbeat renews, heartbeat.h), train it with the
 * engine, record each period as it ends, and finish it. Runs wait in the
 * store, not in memory, so an accepted run survives any crash. Idle
 * workers sleep on a condition variable that pool_notify signals (and
 * wake every second to poll, should a signal be missed).
 *
 * Checkpoints are paced: every period's metrics are stored, its full
 * checkpoint only once --checkpoint-interval seconds have passed since the
 * run's last one, at its last period, and when it stops (cancel or
 * shutdown). When a run ends, its checkpoints are trimmed to what it keeps
 * (docs/STORAGE.md).
 *
 * A trial of a sweep (store_run.sweep) is trained like any run; after each
 * of its periods is stored, the period-end helper asks the sweep's early
 * stopping rule (sweep_should_prune, sweep.h) and raises the slot's stop
 * flag with TRAIN_PRUNE (unless a cancel or shutdown came first): the run
 * ends `pruned`, with a checkpoint, the rule's reason as its error. When a
 * trial ends the sweep scheduler is woken (sweeper_notify).
 *
 * A run's period ends are finished on a helper thread the engine starts
 * (train.h): the period's record and checkpoint go to the store through
 * the worker's connection from that thread while the worker trains on.
 * The engine joins the helper before the next period end, a stop or its
 * return, so the connection is used by one thread at a time (SQLite's
 * multi-thread mode allows that). A busy worker thus keeps up to two
 * cores busy: its training and the previous period's evaluation. The
 * workers share one train_threads bound of the cores online (train.h,
 * DESIGN (cores)): a period end's evaluation runs on its helper only while
 * the trainers and evaluating helpers of all runs are fewer than the
 * cores, and otherwise on the worker's own thread, so that busy workers
 * start no evaluation thread once they fill the cores (more busy workers
 * than cores still run one thread each); the store write stays on the
 * helper either way.
 *
 * Each worker has a slot with the id of its run, the live progress (step,
 * period; atomics written by the worker, read by request threads) and the
 * stop flag the engine checks once per step. pool_cancel raises the flag
 * of the slot training the run; a cancel for a run just claimed but not
 * yet in a slot is remembered and applied when the worker fills its slot.
 * A cancel sent to another node reaches the slot through the store
 * (server/jobs/signals.h: its signal, or the run's cancel request read
 * back with the progress the node writes every second).
 * pool_stop raises TRAIN_SHUTDOWN everywhere: workers checkpoint, put
 * their runs back in the queue and exit. A cancel checkpoints too, so that
 * a cancelled run can be resumed where it stopped.
 *
 * Passing problems are not the run's: a store write that fails with
 * STORE_UNAVAILABLE is tried again with capped exponential backoff (a nap
 * on a condition variable that pool_stop broadcasts, so a stop ends it; no
 * lock is held meanwhile) for up to 30 s, then the run goes back to the queue to
 * resume from its newest checkpoint; a requeue that cannot be written is
 * tried until it is or the pool stops (the run's lease then expires and a
 * live node, or this one at its next start, requeues it:
 * store_lease_reap). A run whose dataset cannot be loaded now waits in the
 * queue with the reason (store_run_wait: 2 s, doubling to 60 s, before a
 * claim takes it again).
 *
 * Workers claim nothing until the app's node_name is set: at pool_start
 * when it is already, else once pool_set_node says so (a node named after
 * its port learns the port when the HTTP daemon has started).
 *
 * Test builds (-DMNISTD_TESTING, make's mnistd-testing; never the release
 * build, where the code is not compiled): MNISTD_TEST_CRASH_AT_STEP=N makes
 * the process kill itself with SIGKILL when any run it trains reaches step
 * N, so that the cluster tests can make a poison run (a run whose training
 * kills every node that claims it) by giving it more than N steps.
 *
 * Ownership: the pool borrows the app (for the registry, model cache and
 * store settings); pool_free joins the threads. */
#ifndef MN_POOL_H
#define MN_POOL_H

#include <stdint.h>

#include "engine/err.h"

struct app;
typedef struct pool pool;

/* Starts n workers. NULL with a reason. */
pool *pool_start(struct app *a, unsigned n, mn_err *err);

/* Wakes an idle worker (a run was queued). */
void pool_notify(pool *p);

/* Wakes every idle worker (several runs came back to the queue, or
 * signals may have been lost: each looks). */
void pool_notify_all(pool *p);

/* Lets the workers claim: the app's node_name is now set (written before
 * this call, read-only afterwards). */
void pool_set_node(pool *p);

/* Stops run id at its next step if a worker trains it. Returns 1 if it was
 * found training (or about to), 0 otherwise. */
int pool_cancel(pool *p, int64_t id);

/* Stops run id at its next step only if a worker here trains it now
 * (a cancel signalled by another node, server/jobs/signals.h: nothing is
 * remembered for a run that is not in a slot; the store keeps the
 * request). Returns 1 if it was found, 0 otherwise. */
int pool_cancel_local(pool *p, int64_t id);

/* A run being trained, as pool_live_runs reports it. */
typedef struct pool_live {
    int64_t run;
    uint32_t step, period;   /* steps done, periods finished */
} pool_live;

/* The runs being trained now into out[0..max), with their live progress;
 * returns how many. */
unsigned pool_live_runs(pool *p, pool_live *out, unsigned max);

/* Live progress of run id: returns 1 and fills step/period if a worker is
 * training it now, 0 otherwise. */
int pool_progress(pool *p, int64_t id, uint32_t *step, uint32_t *period);

/* Stops, at its next step, the training of every run this pool's workers
 * train that the store no longer says node `node` holds (store_run_held:
 * its lease expired, e.g. while this node could not reach the database,
 * and it was requeued for another node): the worker stores nothing more
 * of it, neither a checkpoint nor its end (TRAIN_LOST). Called by the
 * heartbeat thread over its own connection db. */
struct store;
void pool_fence(pool *p, struct store *db, const char *node);

/* Number of runs being trained right now. */
unsigned pool_busy(pool *p);

/* Asks every worker to stop at a step boundary (checkpointing and
 * requeueing their runs) and joins them. The pool stays readable
 * (pool_busy, pool_progress: nothing trains) until pool_stop, so that the
 * heartbeat renews the leases of the runs being checkpointed until they
 * are back in the queue. Called by one thread; NULL is a no-op. */
void pool_drain(pool *p);

/* pool_drain, then frees the pool. */
void pool_stop(pool *p);

#endif
