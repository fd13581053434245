/* events.h: the event hub behind GET /runs/<id>/events (Server-Sent
 * Events): the worker pool publishes a run's progress, finished periods and
 * end; every open stream of that run receives them. The hub knows no HTTP
 * library: a stream is a reader (ev_sub_read) and a waiter (ev_waiter),
 * which the HTTP side (routes_events.c) binds to its connection.
 *
 * DESIGN (concurrency): one mutex (hub->mu) guards the hub: its list of
 * subscribers and every subscriber's queue. Publishers (training workers,
 * the hub's ticker thread) never block on a client: they copy the event
 * into each matching subscriber's bounded queue and return. A subscriber is
 * one stream whose bytes its owner pulls with ev_sub_read, on a request
 * thread of the HTTP library. The read takes whatever is queued; with
 * nothing queued it calls the waiter's `park` (which suspends the
 * connection) while holding hub->mu and returns 0, so no request thread
 * ever waits for an event. A publisher that queues something for a parked
 * subscriber clears its `parked` flag under the lock and calls the
 * waiter's `wake` (which resumes the connection) after releasing it: the
 * lock guarantees that the park was complete before the wake, so no
 * wake-up is lost, and only the publisher that cleared the flag wakes,
 * exactly once. The owner never ends a parked stream (libmicrohttpd does
 * not complete a suspended connection), so the subscriber outlives that
 * wake call; it is unlinked and freed only by ev_sub_free, which the owner
 * calls when the stream ends for any reason, a client that went away
 * included. Periods reach a stream in order and once each: the stored ones
 * of the replay first, then the queued ones above the last one sent.
 *
 *   queue bounds   progress events are coalesced (only the newest is kept)
 *                  and sent at most every EV_PROGRESS_MS; periods wait in a
 *                  ring of EV_RING entries. A client that lets the ring
 *                  overflow gets what is queued and then the end of the
 *                  stream (an SSE client reconnects and is replayed the
 *                  stored periods, from Last-Event-ID on).
 *   ticker         one thread wakes every second, and at once after
 *                  ev_nudge: it queues a keep-alive comment on streams
 *                  idle for `keepalive_s` seconds (the write is also how a
 *                  vanished client is noticed), and asks `poll` about runs
 *                  that had no live event for EV_POLL_S seconds or were
 *                  nudged: the store's periods above the last one queued
 *                  go into the stream, its stored live progress and its
 *                  end too. So a run that ended without the pool (a queued
 *                  run cancelled by a request) still ends its streams, and
 *                  a run trained on another node (several nodes share a
 *                  PostgreSQL database; its period signals nudge the hub,
 *                  server/jobs/signals.h) streams from the store: its
 *                  periods in order, each once, also when it moves to a
 *                  third node after a takeover (periods are numbered: a
 *                  stream takes only the one after the last it queued; a
 *                  live period that would leave a gap waits for the poll
 *                  that reads the missing ones).
 *   shutdown       ev_hub_close refuses new subscribers, ends every stream
 *                  (waking the parked ones), joins the ticker, and waits a
 *                  little for the streams to be gone; it must run before
 *                  the HTTP daemon stops (libmicrohttpd's MHD_stop_daemon
 *                  must not meet a suspended connection). ev_hub_free
 *                  after the daemon is stopped.
 *
 * Ownership: the hub is owned by the app (cmd_serve). A subscriber is owned
 * by its stream: created by ev_subscribe, freed by ev_sub_free (for an
 * HTTP response: its free callback). */
#ifndef MN_EVENTS_H
#define MN_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/train.h"
#include "server/jobs/run.h"

#define EV_RING 64              /* queued period events per subscriber */
#define EV_PROGRESS_MS 200      /* at most 5 progress events a second */
#define EV_POLL_S 1             /* ask `poll` about runs quiet this long */

typedef struct ev_hub ev_hub;
typedef struct ev_sub ev_sub;

/* What `poll` read from the store about a run. */
typedef struct ev_poll_result {
    int gone;                   /* the run does not exist any more */
    int ended;                  /* it ended: status and error (malloc'd or
                                   NULL; the hub frees it) */
    run_status status;
    char *error;
    train_period *ps;           /* its stored periods numbered above the
                                   `after` asked, in order (malloc'd, the
                                   hub frees it; NULL when n is 0) */
    size_t n;
    int has_progress;           /* the live progress that the node training
                                   it stored (store_run_progress_put) */
    uint32_t step, period;
} ev_poll_result;

/* Asks the store about run id: fills *out (zeroed by the hub) and returns
 * 0, or -1 on an error (the hub asks again later). The periods are read
 * after the status, so that an ended run's come with its end. Called on
 * the ticker thread without the hub lock. */
typedef int (*ev_poll_fn)(void *ctx, int64_t id, uint32_t after,
                          ev_poll_result *out);

/* A new hub with its ticker thread; poll may be NULL. NULL on failure. */
ev_hub *ev_hub_new(unsigned keepalive_s, ev_poll_fn poll, void *poll_ctx);

/* Shutdown: refuses new subscribers, ends every stream, joins the ticker,
 * then waits up to wait_ms for the streams to finish (ev_sub_free).
 * Idempotent; NULL is ignored. */
void ev_hub_close(ev_hub *h, unsigned wait_ms);

/* Frees the hub (closing it first). Call after the HTTP daemon stopped. */
void ev_hub_free(ev_hub *h);

/* Publishers (a NULL hub is ignored; cheap when nobody listens). */

/* Live progress: steps done, periods finished. Coalesced and throttled;
 * never backwards in a stream (a run resumed on this node after a takeover
 * redoes steps that the stream may have shown: it shows progress again
 * once past them). */
void ev_progress(ev_hub *h, int64_t run, uint32_t step, uint32_t period);

/* A finished period, after it was stored. p is copied. */
void ev_period(ev_hub *h, int64_t run, const train_period *p);

/* Asks `poll` about run id soon (on the ticker thread, not this one): a
 * period of it was stored by another node. run 0: about every run that
 * has a stream. */
void ev_nudge(ev_hub *h, int64_t run);

/* The run's end, after it was stored: status an ended one (succeeded,
 * failed or cancelled), error NULL or the reason (copied). Ends the
 * streams. */
void ev_end(ev_hub *h, int64_t run, run_status status, const char *error);

/* Subscribers. */

/* How a stream waits for its next event without blocking a thread. park
 * is called (with the hub's lock held: it must not call into the hub) by
 * an ev_sub_read that found nothing to send; wake is called once per park,
 * without the lock, when there is something. Both receive ctx (borrowed;
 * it must live as long as the subscriber). */
typedef struct ev_waiter {
    void (*park)(void *ctx);
    void (*wake)(void *ctx);
    void *ctx;
} ev_waiter;

/* Registers a stream of run id that waits with w (copied). Subscribe
 * first, then read the store, then ev_sub_start: whatever is published in
 * between is queued and nothing is lost. NULL when the hub is closed or
 * out of memory. */
ev_sub *ev_subscribe(ev_hub *h, int64_t run, const ev_waiter *w);

/* What the store said when the stream opened (all borrowed). */
typedef struct ev_replay {
    uint32_t steps, periods;    /* the run's totals, for progress events */
    const train_period *ps;     /* the stored periods, in order */
    size_t n;
    uint32_t after;             /* replay only periods > after (Last-Event-ID) */
    int has_progress;           /* the run trains now: its live progress */
    uint32_t step, period;
    int ended;                  /* the run already ended: */
    run_status end_status;
    const char *end_error;
} ev_replay;

/* Queues the replay: the stored periods, the live progress, and the end if
 * the run already ended. Call once, before the first ev_sub_read. */
void ev_sub_start(ev_sub *s, const ev_replay *r);

#define EV_SUB_END (-1)     /* ev_sub_read: the stream is over */

/* Copies up to max bytes of the stream into buf and returns their number;
 * never blocks. 0: nothing is due, and the waiter was parked (its wake
 * follows when something is); EV_SUB_END: the stream is over. */
ssize_t ev_sub_read(ev_sub *s, char *buf, size_t max);

/* Unlinks the subscriber from its hub and frees it (NULL is ignored). Call
 * it once the stream ended, or instead of starting it. Never while the
 * waiter is parked. */
void ev_sub_free(ev_sub *s);

#endif
