/* sweep.h: the scheduler of hyperparameter searches (POST /sweeps): it
 * creates each sweep's trials as ordinary runs for the worker pool to
 * train, stops the trials that the early stopping rule condemns, and ends
 * the sweep when its last trial has ended. The request, the sampling and
 * the rules are sweepspec.h's.
 *
 * DESIGN (concurrency): every decision is made from what the store holds,
 * never from memory, so that a sweep interrupted by kill -9 or SIGTERM
 * resumes at the next start with the same trials:
 * - Which trial next: the sweep row's next_trial. sweep_advance creates
 *   trial next_trial (its values a pure function of the seed and the
 *   trial number, sweepspec_trial) while fewer than `parallel` trials are
 *   queued or running and fewer than `trials` exist, each creation one
 *   write transaction that checks all three (store_sweep_trial_add), so
 *   two threads advancing one sweep at once cannot both create a trial or
 *   exceed `parallel`; the loser gets STORE_CONFLICT and stops. When every
 *   trial exists and none is queued or running, the sweep ends
 *   (store_sweep_finish, which only a running sweep passes).
 * - Which trial to stop: after each period of a trial, on the period-end
 *   helper of the worker that trains it (pool.c's on_period, with the
 *   worker's store connection, after the period is stored),
 *   sweep_should_prune reads every trial's objective by period from the
 *   store and applies the rule; the worker then raises its own stop flag
 *   with TRAIN_PRUNE and the run ends `pruned`, keeping its periods and
 *   checkpoint. The decision depends on which periods the other trials
 *   have stored at that moment (the rules are asynchronous by design, as
 *   Vizier's and Ray Tune's are), so which trials are pruned may differ
 *   between two executions; which trials exist, and their values, do not.
 * - The scheduler thread (sweeper_start) advances every running sweep
 *   when woken by sweeper_notify (a trial ended, a sweep was created or
 *   cancelled) and once a second, with its own store connection; at start
 *   its first pass resumes the sweeps a dead process left running (their
 *   interrupted trials are requeued by the store's recovery and resume
 *   from their checkpoints in the pool). Request threads may also call
 *   sweep_advance on their own connection (POST /sweeps does, so that its
 *   reply shows the first trials); the store's transactions order them.
 * - A cancel (POST /sweeps/<id>/cancel) ends the sweep row first, so no
 *   trial is created after it, then cancels the queued and running
 *   trials.
 *
 * Ownership: the sweeper borrows the app (store connections, the pool to
 * notify); sweeper_stop joins its thread, sweeper_free frees it. */
#ifndef MN_SWEEP_H
#define MN_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

struct app;
struct store;
typedef struct sweeper sweeper;

/* Starts the scheduler thread. NULL with a reason. */
sweeper *sweeper_start(struct app *a, mn_err *err);

/* Wakes the scheduler (a trial ended, a sweep was created or cancelled).
 * NULL is a no-op. */
void sweeper_notify(sweeper *w);

/* Stops the thread after its current pass and joins it; the sweeper
 * stays valid (sweeper_notify is then harmless) until sweeper_free. The
 * shutdown order: sweeper_stop (no more pool_notify), pool_stop (whose
 * workers may still notify as their trials stop), sweeper_free. NULL is
 * a no-op. */
void sweeper_stop(sweeper *w);

/* Stops the thread if it still runs, then frees the sweeper. NULL is a
 * no-op. */
void sweeper_free(sweeper *w);

/* Creates the trials sweep id may start now and ends it when all have
 * ended (see DESIGN), on connection db; wakes the pool when it queued a
 * trial. A sweep that has ended is left alone. 0, STORE_NOT_FOUND, or
 * < 0 on a store error (err). */
int sweep_advance(struct app *a, struct store *db, int64_t id, mn_err *err);

/* After trial run `run` of sweep `sweep` stored period `period` (of
 * `periods`): 1 when the sweep's early stopping rule stops it now (why
 * [len]: the rule's reason), 0 when it trains on, < 0 when the store
 * could not be read (err; the trial trains on). */
int sweep_should_prune(struct store *db, int64_t sweep, int64_t run,
                       uint32_t period, uint32_t periods, char *why,
                       size_t len, mn_err *err);

#endif
