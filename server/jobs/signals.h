/* signals.h: a node's part in the signals between the nodes that share one
 * database (store.h, "signals between nodes"): it hears the others and
 * tells them about the runs it trains.
 *
 * DESIGN (concurrency): one thread per node, with two store connections
 * of its own. The first listens (store_listen: on PostgreSQL one
 * dedicated connection that LISTENs; none on SQLite, where the thread
 * only naps) and the thread acts on each signal within moments:
 *   queued          wakes an idle worker of the pool (pool_notify), so a
 *                   run posted to any node starts on an idle one at once;
 *                   the workers' one-second poll stays as a safety net
 *   cancel          raises the stop flag if a worker here trains the run
 *                   (pool_cancel)
 *   deleted         drops the run's model from the model cache
 *   period          asks the event hub to read the run's new periods from
 *                   the store for the streams that watch it (ev_nudge)
 *   dataset_deleted drops the dataset from the registry (dsreg_drop)
 *   resync          (the listener was re-opened: signals may have been
 *                   lost) empties the model cache, wakes every idle worker
 *                   and every stream
 * Signals make a change visible soon. A deleted run's model leaves the
 * other nodes' caches when its signal arrives (milliseconds after the
 * delete commits; until then they may still predict with it), and a lost
 * signal is covered by the resync's emptying of the cache: a cached model
 * costs no store read per request, which keeps a PostgreSQL node's
 * predictions as fast as a SQLite one's. Uploads are rarer and larger:
 * dsreg.c asks the store whether a cached upload is the stored one.
 * The second connection writes, once a second, the live progress of every
 * run the pool trains here (store_run_progress_put, as the node that holds
 * it: app_node_name, written before the pool's first claim and so before
 * any run the thread sees in a slot), and reads back each
 * run's cancel request: a cancel recorded by another node stops the run
 * within a second even if its signal was lost. The thread waits for
 * signals 200 ms at a time, so signals_stop returns within that.
 *
 * This follows River's notifier (one dedicated listening connection per
 * process, topics per schema, a cancel as a notification on a control
 * topic that the node running the job acts on, with the job's row as the
 * record) and graphile-worker (an insert notification nudges idle
 * workers; after the listening connection is re-opened, look for work).
 *
 * Ownership: owned by the app (cmd_serve); it borrows the app's pool, event
 * hub, model cache and dataset registry, which must outlive it. */
#ifndef MN_SIGNALS_H
#define MN_SIGNALS_H

#include "engine/err.h"

struct app;
typedef struct signals signals;

/* Opens the listener (when the store has signals) and starts the thread.
 * NULL with a reason. */
signals *signals_start(struct app *a, mn_err *err);

/* Stops the thread and closes its connections (NULL is a no-op). Call
 * before the pool is stopped. */
void signals_stop(signals *g);

#endif
