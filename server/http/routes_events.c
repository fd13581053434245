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
 * (sent by EventSource when it reconnects) skips the periods up to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/jobs/events.h"
#include "server/jobs/pool.h"
#include "server/http/routes.h"
#include "server/store/store.h"

static int ended(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
           strcmp(status, "cancelled") == 0;
}

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

enum MHD_Result events_get(http_ctx *c)
{
    enum MHD_Result rc;
    int64_t id = infer_parse_id(c->arg);
    if (!id) return http_error(c, 404, "not_found", "no run '%s'", c->arg);
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    /* subscribe before reading the store: nothing published in between is
     * lost (the hub drops the periods that the replay already holds) */
    ev_sub *s = ev_subscribe(c->app->events, id, c->conn);
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
    if (ended(r.status)) {
        rp.end_status = r.status;
        rp.end_error = r.error;
    } else if (strcmp(r.status, "running") == 0) {
        rp.has_progress = pool_progress(c->app->pool, id, &rp.step, &rp.period);
    }
    ev_sub_start(s, &rp);
    /* a stream may stay open for long: give its store connection back now */
    app_db_release(c->app, c->req->db);
    c->req->db = NULL;
    rc = http_stream(c, 200, "text/event-stream", ev_sub_read, s, ev_sub_free);
done:
    free(ps);
    store_run_free(&r);
    return rc;
}

int events_poll(void *ctx, int64_t id, char status[12], char **error)
{
    app *a = ctx;
    mn_err err = {{0}};
    store *db = app_db_acquire(a, &err);
    if (!db) return -1;
    store_run r = {0};
    int st = store_run_get(db, id, &r, &err);
    int rc = st == STORE_NOT_FOUND ? 2 : st ? -1 : 0;
    if (st == 0 && ended(r.status)) {
        snprintf(status, 12, "%s", r.status);
        *error = r.error ? strdup(r.error) : NULL;
        rc = 1;
    }
    store_run_free(&r);
    app_db_release(a, db);
    return rc;
}
