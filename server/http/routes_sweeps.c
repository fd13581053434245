/* routes_sweeps.c: the /sweeps resource, hyperparameter searches: create,
 * list, get, cancel, delete. The request and its rules are
 * server/jobs/sweepspec.h's, the scheduling server/jobs/sweep.h's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/http/auth.h"
#include "server/http/quota.h"
#include "server/http/routes.h"
#include "server/jobs/pool.h"
#include "server/jobs/spec.h"
#include "server/jobs/sweep.h"
#include "server/jobs/sweepspec.h"
#include "server/render/enc.h"
#include "server/serving/dsreg.h"
#include "server/serving/mcache.h"
#include "server/store/store.h"

/* The check of one trial's run body, as POST /runs checks a body: its
 * fields (spec_from_json), its dataset, the dataset-dependent limits and
 * the memory estimate. ctx: the request. */
static int check_run(const json_t *run, void *ctx, mn_err *err)
{
    http_ctx *c = ctx;
    run_spec spec;
    train_params tp;
    if (spec_from_json(run, &spec, err)) return -1;
    int not_found = 0;
    const ds_dataset *d = auth_dsreg_get(c, http_db(c), spec.dataset,
                                    &not_found, err);
    if (!d) return -1;
    int rc = spec_to_train(&spec, d, &tp, err);
    dsreg_put(c->app->datasets, d);
    if (rc) return -1;
    size_t need = train_memory_estimate(&tp);
    if (need > c->app->cfg.max_run_memory)
        return mn_errf(err, "a run would need about %zu MiB; the limit is "
                       "%zu MiB", (need >> 20) + 1,
                       c->app->cfg.max_run_memory >> 20);
    return 0;
}

/* A trial's objective: the run's figure at its last finished period
 * (Katib's "latest" strategy). */
static double trial_objective(const sweep_spec *sp, const store_run *r)
{
    return sp->maximize ? r->validation_accuracy : r->validation_log_loss;
}

/* The sweep object (see openapi.yaml's Sweep): with its trials when
 * with_trials, else a list item's summary. sp may be NULL when the stored
 * params cannot be read. New reference, NULL on OOM. */
static json_t *sweep_json(const store_sweep *w, const sweep_spec *sp,
                          const store_run *trials, size_t n, int with_trials)
{
    json_error_t je;
    json_t *params = json_loads(w->params_json, 0, &je);
    if (!params) params = json_object();
    sweep_status st = SWEEP_RUNNING;
    if (sweep_status_parse(w->status, &st)) st = SWEEP_FAILED;
    int started = 0;
    int64_t counts[RUN_N_STATUSES] = {0};
    const store_run *best = NULL;
    double best_v = NAN;
    json_t *arr = with_trials ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        const store_run *r = &trials[i];
        started |= r->started_at != 0;
        if ((unsigned)r->status < RUN_N_STATUSES) counts[r->status]++;
        double v = sp ? trial_objective(sp, r) : NAN;
        if (r->status == RUN_SUCCEEDED && !isnan(v) &&
            (!best || (sp->maximize ? v > best_v : v < best_v))) {
            best = r;
            best_v = v;
        }
        if (!arr) continue;
        json_t *sampled = NULL, *body = sp ? sweepspec_trial(sp, r->trial,
                                                             &sampled)
                                           : NULL;
        json_decref(body);
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)r->id);
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:o, s:s, s:o, s:I, s:s?}", "trial",
                           (json_int_t)r->trial, "run", id, "params",
                           sampled ? sampled : json_object(), "status",
                           run_status_name(r->status), "objective",
                           enc_real(v), "periods_done",
                           (json_int_t)r->period, "error", r->error));
    }
    if (st == SWEEP_RUNNING && !started) st = SWEEP_QUEUED;
    json_t *cj = json_object();
    for (int i = 0; i < RUN_N_STATUSES; i++)
        json_object_set_new(cj, run_status_name((run_status)i),
                            json_integer((json_int_t)counts[i]));
    json_t *bj = json_null();
    if (best) {
        json_t *sampled = NULL;
        json_decref(sweepspec_trial(sp, best->trial, &sampled));
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)best->id);
        json_decref(bj);
        bj = json_pack("{s:s, s:I, s:o, s:o}", "run", id, "trial",
                       (json_int_t)best->trial, "objective", enc_real(best_v),
                       "params", sampled ? sampled : json_object());
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)w->id);
    json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:I, s:o, s:o, s:s?}",
                          "id", id, "status", sweep_status_name(st), "params",
                          params, "counts", cj, "best", bj,
                          "trials_created", (json_int_t)w->next_trial,
                          "created_at", enc_time(w->created_at),
                          "finished_at", enc_time(w->finished_at), "error",
                          w->error);
    if (o && json_object_set_new(o, "owner", w->owner[0]
                                                 ? json_string(w->owner)
                                                 : json_null())) {
        json_decref(o);
        o = NULL;
    }
    if (o && arr && json_object_set_new(o, "trials", arr)) {
        json_decref(o);
        return NULL;
    }
    if (!o) json_decref(arr);
    return o;
}

/* Reads sweep c->arg with its trials and replies with it (status,
 * Location when located). */
static enum MHD_Result reply_sweep(http_ctx *c, unsigned status, int located)
{
    enum MHD_Result rc;
    int64_t id = infer_parse_id(c->arg);
    if (!id) return http_error(c, 404, "not_found", "no sweep '%s'", c->arg);
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_sweep w = {0};
    store_run *trials = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_sweep_get(db, id, &w, &trials, &n, &err);
    if (s)
        return http_store_error(c, s, &err, "not_found", "no sweep '%s'",
                                c->arg);
    sweep_spec sp;
    json_t *pj = json_loads(w.params_json, 0, NULL);
    int have = pj && sweepspec_parse(pj, SWEEP_MAX_TRIALS, NULL, NULL, &sp,
                                     &err) == 0;
    json_decref(pj);
    json_t *o = sweep_json(&w, have ? &sp : NULL, trials, n, 1);
    if (have) sweepspec_free(&sp);
    store_runs_free(trials, n);
    store_sweep_free(&w);
    if (!located) return http_json(c, status, o);
    char loc[48];
    snprintf(loc, sizeof loc, "/sweeps/%lld", (long long)id);
    return http_json_at(c, status, o, loc);
}

enum MHD_Result sweeps_create(http_ctx *c)
{
    enum MHD_Result rc;
    json_t *body = http_body_json(c, &rc);
    if (!body) return rc;
    sweep_spec sp;
    int have = 0;
    char *params = NULL;
    mn_err err = {{0}};
    store *db = http_db_or_reply(c, &rc);
    if (!db) goto done;
    if (sweepspec_parse(body, c->app->cfg.workers, check_run, c, &sp, &err)) {
        rc = http_error(c, 400, "bad_field", "%s", err.msg);
        goto done;
    }
    have = 1;
    store_limit trials_limit;
    quota_limit_of(c, QUOTA_SWEEP_TRIALS, &trials_limit);
    json_t *pj = sweepspec_to_json(&sp);
    params = pj ? json_dumps(pj, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(pj);
    int64_t id = 0;
    /* the user's trials are counted in the insert's transaction */
    int s = params ? store_sweep_create_owned(db, auth_owner(c), params,
                                              sp.trials, &trials_limit, &id,
                                              &err)
                   : -1;
    if (s == STORE_LIMIT) {
        rc = quota_refuse(c, QUOTA_SWEEP_TRIALS, trials_limit.used,
                          sp.trials);
        goto done;
    }
    if (s) {
        rc = http_error(c, 503, "store_error", "cannot create the sweep: %s",
                        params ? err.msg : "out of memory");
        goto done;
    }
    /* its first trials now, so that the reply shows them; the scheduler
     * does the rest (and this, had it failed here) */
    if (sweep_advance(c->app, db, id, &err) < 0)
        fprintf(stderr, "mnistd: sweep %lld: %s\n", (long long)id, err.msg);
    sweeper_notify(c->app->sweeps);
    char arg[24];
    snprintf(arg, sizeof arg, "%lld", (long long)id);
    const char *path_arg = c->arg;   /* the reply reads the new id there */
    c->arg = arg;
    rc = reply_sweep(c, 202, 1);
    c->arg = path_arg;
done:
    if (have) sweepspec_free(&sp);
    free(params);
    json_decref(body);
    return rc;
}

enum MHD_Result sweeps_list(http_ctx *c)
{
    long limit = 20, offset = 0;
    if (http_query_long(c, "limit", 1, 100, &limit))
        return http_error(c, 400, "bad_query", "limit must be an integer in "
                          "1..100");
    if (http_query_long(c, "offset", 0, 1000000000, &offset))
        return http_error(c, 400, "bad_query", "offset must be a "
                          "non-negative integer");
    enum MHD_Result rc;
    const char *owner;
    if (!auth_list_owner(c, &owner, &rc)) return rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_sweep *ws = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_sweep_list_owned(db, owner, (int)limit, (int)offset, &ws, &n,
                                   &err);
    if (s) return http_store_error(c, s, &err, NULL, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        store_sweep w = {0};
        store_run *trials = NULL;
        size_t nt = 0;
        /* a sweep deleted since the list was read is left out */
        s = store_sweep_get(db, ws[i].id, &w, &trials, &nt, &err);
        if (s == STORE_NOT_FOUND) continue;
        if (s) {
            json_decref(arr);
            store_sweeps_free(ws, n);
            return http_store_error(c, s, &err, NULL, NULL);
        }
        sweep_spec sp;
        json_t *pj = json_loads(w.params_json, 0, NULL);
        int have = pj && sweepspec_parse(pj, SWEEP_MAX_TRIALS, NULL, NULL,
                                         &sp, &err) == 0;
        json_decref(pj);
        json_array_append_new(arr, sweep_json(&w, have ? &sp : NULL, trials,
                                              nt, 0));
        if (have) sweepspec_free(&sp);
        store_runs_free(trials, nt);
        store_sweep_free(&w);
    }
    store_sweeps_free(ws, n);
    return http_json(c, 200, json_pack("{s:o, s:I, s:I}", "sweeps", arr,
                                       "limit", (json_int_t)limit, "offset",
                                       (json_int_t)offset));
}

enum MHD_Result sweeps_get(http_ctx *c)
{
    return reply_sweep(c, 200, 0);
}

enum MHD_Result sweeps_cancel(http_ctx *c)
{
    enum MHD_Result rc;
    int64_t id = infer_parse_id(c->arg);
    if (!id) return http_error(c, 404, "not_found", "no sweep '%s'", c->arg);
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    mn_err err = {{0}};
    /* the row first: no trial is created after this */
    int s = store_sweep_finish(db, id, "cancelled", NULL, &err);
    if (s == STORE_CONFLICT)
        return http_error(c, 409, "sweep_ended", "%s", err.msg);
    if (s)
        return http_store_error(c, s, &err, "not_found", "no sweep '%s'",
                                c->arg);
    store_sweep w = {0};
    store_run *trials = NULL;
    size_t n = 0;
    s = store_sweep_get(db, id, &w, &trials, &n, &err);
    if (s)
        return http_store_error(c, s, &err, "not_found", "no sweep '%s'",
                                c->arg);
    for (size_t i = 0; i < n; i++) {
        if (trials[i].status == RUN_QUEUED &&
            store_run_cancel_queued(db, trials[i].id, &err) == 0)
            continue;
        /* running, or claimed since it was read */
        if (!run_status_ended(trials[i].status))
            pool_cancel(c->app->pool, trials[i].id);
    }
    store_runs_free(trials, n);
    store_sweep_free(&w);
    return reply_sweep(c, 202, 0);
}

enum MHD_Result sweeps_delete(http_ctx *c)
{
    enum MHD_Result rc;
    int64_t id = infer_parse_id(c->arg);
    if (!id) return http_error(c, 404, "not_found", "no sweep '%s'", c->arg);
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_sweep w = {0};
    store_run *trials = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_sweep_get(db, id, &w, &trials, &n, &err);
    if (s)
        return http_store_error(c, s, &err, "not_found", "no sweep '%s'",
                                c->arg);
    int64_t run = 0;
    s = store_sweep_delete(db, id, &run, &err);
    if (s == STORE_CONFLICT) {
        const char *code = !strcmp(w.status, "running") ? "sweep_active"
                           : strstr(err.msg, "model") ? "run_in_model"
                                                      : "run_active";
        rc = http_error(c, 409, code, "%s", err.msg);
    } else if (s) {
        rc = http_store_error(c, s, &err, "not_found", "no sweep '%s'",
                              c->arg);
    } else {
        for (size_t i = 0; i < n; i++) mcache_drop(c->app->models, trials[i].id);
        rc = http_bytes(c, 204, NULL, "", 0);
    }
    store_runs_free(trials, n);
    store_sweep_free(&w);
    return rc;
}
