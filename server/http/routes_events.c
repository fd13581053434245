/* routes_events.c: GET /runs/<id>/events, a run's live progress as
 * Server-Sent Events (text/event-stream), served through the event hub
 * (events.h):
 *
 *   : events of run 7            a comment, sent at once
 *   retry: 3000
 *
 *   id: 1                        one per finished period, stored ones first;
 *   event: period                the fields of the run's `periods` entries
 *   data: {"period":1,"step":100,"train_log_loss":...,"seconds":0.4}
 *
 *   event: progress              while training, at most ~5 a second
 *   data: {"step":130,"steps":1000,"period":1,"periods":10}
 *
 *   event: end                   once the run ended; then the stream closes
 *   data: {"id":"7","status":"succeeded","error":null}
 *
 * plus ": keep-alive" comments on a quiet stream. A Last-Event-ID header
 * (sent by EventSource when it reconnects) skips the periods up to it.
 *
 * The hub knows no HTTP: here its subscriber becomes a libmicrohttpd
 * response (content reader and free callback), and its waiter suspends and
 * resumes the connection (the guarantees are in events.h's DESIGN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/jobs/events.h"
#include "server/jobs/pool.h"
#include "server/http/routes.h"
#include "server/store/store.h"

/* The period number in a Last-Event-ID header, or 0. */
static uint32_t last_event_id(http_ctx *c)
{
    const char *v = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_LAST_EVENT_ID);
    if (!v) return 0;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    return (*v && !*end && x <= 1000000) ? (uint32_t)x : 0;
}

/* The waiter of a stream: its connection, suspended while the hub has
 * nothing for it. */
static void conn_park(void *conn)
{
    MHD_suspend_connection(conn);
}

static void conn_wake(void *conn)
{
    MHD_resume_connection(conn);
}

/* MHD_ContentReaderCallback over ev_sub_read (cls: the subscriber). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    ssize_t n = ev_sub_read(cls, buf, max);
    return n == EV_SUB_END ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

/* MHD_ContentReaderFreeCallback: the connection ended. */
static void stream_free(void *cls)
{
    ev_sub_free(cls);
}

enum MHD_Result events_get(http_ctx *c)
{
    enum MHD_Result rc;
    int64_t id = infer_parse_id(c->arg);
    if (!id) return http_error(c, 404, "not_found", "no run '%s'", c->arg);
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    /* subscribe before reading the store: nothing published in between is
     * lost (the hub drops the periods that the replay already holds) */
    ev_waiter w = {.park = conn_park, .wake = conn_wake, .ctx = c->conn};
    ev_sub *s = ev_subscribe(c->app->events, id, &w);
    if (!s)
        return http_error(c, 503, "shutting_down", "the server is shutting "
                          "down (or out of memory); try again later");
    store_run r = {0};
    train_period *ps = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int st = store_run_get(db, id, &r, &err);
    if (!st) st = store_periods_get(db, id, &ps, &n, &err);
    if (st) {
        ev_sub_free(s);
        rc = http_store_error(c, st, &err, "not_found", "no run '%s'", c->arg);
        goto done;
    }
    ev_replay rp = {.steps = r.steps, .periods = r.periods, .ps = ps, .n = n,
                    .after = last_event_id(c)};
    if (run_status_ended(r.status)) {
        rp.ended = 1;
        rp.end_status = r.status;
        rp.end_error = r.error;
    } else if (r.status == RUN_RUNNING) {
        rp.has_progress = pool_progress(c->app->pool, id, &rp.step, &rp.period);
        store_run_live live;
        if (!rp.has_progress && store_run_live_get(db, id, &live, &err) == 0 &&
            live.at) {
            /* trained on another node: the progress it stored */
            rp.has_progress = 1;
            rp.step = live.step;
            rp.period = live.period;
        }
    }
    ev_sub_start(s, &rp);
    /* a stream may stay open for long: give its store connection back now */
    app_db_release(c->app, c->req->db);
    c->req->db = NULL;
    rc = http_stream(c, 200, "text/event-stream", stream_read, s, stream_free);
done:
    free(ps);
    store_run_free(&r);
    return rc;
}

int events_poll(void *ctx, int64_t id, uint32_t after, ev_poll_result *out)
{
    app *a = ctx;
    mn_err err = {{0}};
    store *db = app_db_acquire(a, &err);
    if (!db) return -1;
    int rc = -1;
    store_run r = {0};
    store_run_live live;
    /* the status first, then the periods: an ended run's are all stored */
    int st = store_run_get(db, id, &r, &err);
    if (st == STORE_NOT_FOUND) {
        out->gone = 1;
        rc = 0;
        goto done;
    }
    if (st) goto done;
    if (run_status_ended(r.status)) {
        out->ended = 1;
        out->status = r.status;
        if (r.error && !(out->error = strdup(r.error))) goto done;
    } else if (r.status == RUN_RUNNING &&
               store_run_live_get(db, id, &live, &err) == 0 && live.at &&
               live.status == RUN_RUNNING) {
        out->has_progress = 1;
        out->step = live.step;
        out->period = live.period;
    }
    st = store_periods_page(db, id, after, -1, &out->ps, &out->n, &err);
    if (st == STORE_NOT_FOUND) {
        out->gone = 1;
        out->ended = 0;
    } else if (st) {
        goto done;
    }
    rc = 0;
done:
    store_run_free(&r);
    app_db_release(a, db);
    return rc;
}
