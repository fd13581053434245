/* routes_snapshots.c: the first layer's weights at the periods a run kept
 * a snapshot of (engine/wsnap.h, server/store/snapshots.h):
 *   GET /runs/<id>/snapshots            the periods that have one
 *   ?period=k of /runs/<id>/weights and /runs/<id>/weights.png
 *                                        (runs_period_query, runs_snapshot)
 * A snapshot exists from its period's end on, whatever the run's status,
 * so a running run's filters can be watched as they form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train.h"
#include "server/http/routes.h"
#include "server/store/snapshots.h"

int runs_period_query(http_ctx *c, long layer, uint32_t *period,
                      enum MHD_Result *rc)
{
    long k = 0;
    *period = 0;
    if (http_query_long(c, "period", 1, TRAIN_MAX_PERIODS, &k)) {
        *rc = http_error(c, 400, "bad_query", "period must be an integer in "
                         "1..%d (a period number)", TRAIN_MAX_PERIODS);
        return 0;
    }
    if (k && layer != 0) {
        *rc = http_error(c, 400, "bad_query", "period: snapshots keep layer 0 "
                         "only, not layer %ld", layer);
        return 0;
    }
    *period = (uint32_t)k;
    return 1;
}

/* Replies 404 for run r's missing snapshot of `period`, naming the nearest
 * periods before and after it that have one. */
static enum MHD_Result no_snapshot(http_ctx *c, const store_run *r,
                                   uint32_t period)
{
    store_snapshot_info *list = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_snapshot_list(http_db(c), r->id, &list, &n, &err);
    if (s) return http_store_error(c, s, &err, "not_found", "no run '%s'",
                                   c->arg);
    uint32_t below = 0, above = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].period < period) below = list[i].period;
        if (list[i].period > period && !above) above = list[i].period;
    }
    free(list);
    char near[96];
    if (below && above)
        snprintf(near, sizeof near, "the nearest periods with one are %u and "
                 "%u", below, above);
    else if (below || above)
        snprintf(near, sizeof near, "the nearest period with one is %u",
                 below ? below : above);
    else
        snprintf(near, sizeof near, "it has none yet");
    return http_error(c, 404, "no_snapshot", "run %lld has no weight snapshot "
                      "at period %u: %s (GET /runs/%lld/snapshots lists them)",
                      (long long)r->id, period, near, (long long)r->id);
}

int runs_snapshot(http_ctx *c, const store_run *r, uint32_t period,
                  wsnap *out, uint32_t *step, enum MHD_Result *rc)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    mn_err err = {{0}};
    int ok = 0;
    memset(out, 0, sizeof *out);
    if (period > r->periods) {
        *rc = http_error(c, 400, "bad_query", "period must be in 1..%u for "
                         "this run", r->periods);
        goto done;
    }
    int s = store_snapshot_get(http_db(c), r->id, period, &buf, &len, step,
                               &err);
    if (s == STORE_NOT_FOUND) {
        *rc = no_snapshot(c, r, period);
        goto done;
    }
    if (s) {
        *rc = http_store_error(c, s, &err, "not_found", "no run '%s'", c->arg);
        goto done;
    }
    if (wsnap_decode(buf, len, out, &err)) {
        *rc = http_error(c, 503, "store_error", "run %lld's snapshot of "
                         "period %u cannot be read: %s", (long long)r->id,
                         period, err.msg);
        goto done;
    }
    ok = 1;
done:
    free(buf);
    return ok;
}

enum MHD_Result runs_snapshots(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    store_snapshot_info *list = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    if (!runs_load(c, &r, &rc)) return rc;
    int s = store_snapshot_list(http_db(c), r.id, &list, &n, &err);
    if (s) {
        rc = http_store_error(c, s, &err, "not_found", "no run '%s'", c->arg);
        goto done;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I, s:I, s:I}", "period",
                                             (json_int_t)list[i].period,
                                             "step", (json_int_t)list[i].step,
                                             "bytes",
                                             (json_int_t)list[i].bytes));
    char run[24];
    snprintf(run, sizeof run, "%lld", (long long)r.id);
    rc = http_json(c, 200, json_pack("{s:s, s:i, s:i, s:I, s:o}", "run", run,
                                     "layer", 0, "max", WSNAP_MAX,
                                     "max_bytes", (json_int_t)WSNAP_MAX_BYTES,
                                     "snapshots", arr));
done:
    free(list);
    store_run_free(&r);
    return rc;
}
