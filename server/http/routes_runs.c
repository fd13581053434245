/* routes_runs.c: the /runs resource: create, list, get, cancel, delete,
 * confusion matrix, test-set evaluation and first-layer weights. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/render/enc.h"
#include "server/serving/mcache.h"
#include "server/jobs/pool.h"
#include "server/http/routes.h"
#include "server/jobs/spec.h"
#include "server/store/store.h"

/* ISO 8601 UTC with milliseconds, or JSON null for 0. New reference. */
static json_t *iso_time(int64_t ms)
{
    if (ms <= 0) return json_null();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}

int64_t runs_parse_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The run object as GET /runs/<id> shows it, with its n periods ps (in
 * order; borrowed). New reference (NULL: OOM). */
static json_t *run_json(app *a, const store_run *r, const train_period *ps,
                        size_t n)
{
    json_error_t je;
    json_t *params = json_loads(r->params_json, 0, &je);
    if (!params) params = json_object();
    uint32_t step = r->step, period = r->period;
    if (strcmp(r->status, "running") == 0) {
        uint32_t s, p;
        if (pool_progress(a->pool, r->id, &s, &p) && s >= step) {
            step = s;
            period = p;
        }
    }
    json_t *periods = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(periods, enc_period(&ps[i]));
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:o, "
        "s:o, s:o, s:o, s:o, s:s?, s:s?}",
        "id", id, "status", r->status, "model", r->model, "dataset",
        r->dataset, "params", params, "progress", "step", (json_int_t)step,
        "steps", (json_int_t)r->steps, "period", (json_int_t)period,
        "periods", (json_int_t)r->periods, "periods", periods,
        "validation_accuracy", enc_real(r->validation_accuracy),
        "validation_log_loss", enc_real(r->validation_log_loss),
        "test_accuracy", enc_real(r->test_accuracy), "created_at",
        iso_time(r->created_at), "started_at", iso_time(r->started_at),
        "finished_at", iso_time(r->finished_at), "error", r->error,
        "waiting", r->waiting);
}

int runs_load_named(http_ctx *c, const char *name, store_run *r,
                    enum MHD_Result *rc)
{
    int64_t id = runs_parse_id(name);
    if (!id) {
        *rc = http_error(c, 404, "not_found", "no run '%s'", name);
        return 0;
    }
    store *db = http_db(c);
    if (!db) {
        *rc = http_error(c, 503, "unavailable", "the database is unavailable");
        return 0;
    }
    mn_err err = {{0}};
    int s = store_run_get(db, id, r, &err);
    if (s == STORE_NOT_FOUND) {
        *rc = http_error(c, 404, "not_found", "no run '%s'", name);
        return 0;
    }
    if (s) {
        *rc = http_error(c, 503, "store_error", "%s", err.msg);
        return 0;
    }
    return 1;
}

int runs_load(http_ctx *c, store_run *r, enum MHD_Result *rc)
{
    return runs_load_named(c, c->arg, r, rc);
}

static enum MHD_Result reply_run(http_ctx *c, unsigned status,
                                 const store_run *r, int located)
{
    train_period *ps = NULL;
    size_t n = 0;
    mn_err err;
    if (store_periods_get(http_db(c), r->id, &ps, &n, &err)) n = 0;
    json_t *o = run_json(c->app, r, ps, n);
    free(ps);
    if (!located) return http_json(c, status, o);
    char loc[48];
    snprintf(loc, sizeof loc, "/runs/%lld", (long long)r->id);
    return http_json_at(c, status, o, loc);
}

enum MHD_Result runs_create(http_ctx *c)
{
    enum MHD_Result rc;
    json_t *body = http_body_json(c, &rc);
    if (!body) return rc;
    run_spec spec;
    train_params tp;
    mn_err err = {{0}};
    store_run r = {0};
    char *params = NULL;
    int64_t id = 0, queued = 0;
    if (spec_from_json(body, &spec, &err)) {
        rc = http_error(c, 400, "bad_field", "%s", err.msg);
        goto done;
    }
    store *db = http_db(c);
    if (!db) {
        rc = http_error(c, 503, "unavailable", "the database is unavailable");
        goto done;
    }
    int not_found = 0;
    const ds_dataset *d = dsreg_get(c->app->datasets, db, spec.dataset,
                                    &not_found, &err);
    if (!d) {
        rc = not_found ? http_error(c, 400, "bad_field", "%s (GET /datasets "
                                    "lists them)", err.msg)
                       : http_error(c, 503, "dataset_unavailable", "%s", err.msg);
        goto done;
    }
    if (spec_to_train(&spec, d, &tp, &err)) {
        rc = http_error(c, 400, "bad_field", "%s", err.msg);
        goto done;
    }
    size_t need = train_memory_estimate(&tp);
    if (need > c->app->cfg.max_run_memory) {
        rc = http_error(c, 400, "run_too_large", "this run would need about "
                        "%zu MiB (parameters, gradients, optimizer state, "
                        "buffers); the limit is %zu MiB: use fewer or "
                        "narrower hidden_units or a smaller batch_size",
                        (need >> 20) + 1, c->app->cfg.max_run_memory >> 20);
        goto done;
    }
    if (store_run_count(db, "queued", &queued, &err)) {
        rc = http_error(c, 503, "store_error", "%s", err.msg);
        goto done;
    }
    if (queued >= (int64_t)c->app->cfg.max_queued) {
        rc = http_error(c, 503, "queue_full", "%lld runs are already queued "
                        "(limit %u); try again later", (long long)queued,
                        c->app->cfg.max_queued);
        goto done;
    }
    json_t *pj = spec_to_json(&spec);
    params = pj ? json_dumps(pj, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(pj);
    if (!params ||
        store_run_create(db, spec.model, spec.dataset, params, spec.steps,
                         spec.periods, &id, &err) ||
        store_run_get(db, id, &r, &err)) {
        rc = http_error(c, 503, "store_error", "cannot queue the run: %s",
                        err.msg);
        goto done;
    }
    pool_notify(c->app->pool);
    rc = reply_run(c, 202, &r, 1);
done:
    store_run_free(&r);
    free(params);
    json_decref(body);
    return rc;
}

static int one_of(const char *v, const char *const *allowed)
{
    for (int i = 0; allowed[i]; i++)
        if (strcmp(v, allowed[i]) == 0) return 1;
    return 0;
}

enum MHD_Result runs_list(http_ctx *c)
{
    static const char *const statuses[] = {"queued", "running", "succeeded",
                                           "failed", "cancelled", NULL};
    static const char *const models[] = {"linear", "dnn", NULL};
    const char *status = http_query(c, "status");
    const char *model = http_query(c, "model");
    long limit = 50, offset = 0;
    if (status && !one_of(status, statuses))
        return http_error(c, 400, "bad_query", "status must be one of queued, "
                          "running, succeeded, failed, cancelled");
    if (model && !one_of(model, models))
        return http_error(c, 400, "bad_query", "model must be linear or dnn");
    if (http_query_long(c, "limit", 1, 1000, &limit))
        return http_error(c, 400, "bad_query", "limit must be an integer in 1..1000");
    if (http_query_long(c, "offset", 0, 1000000000, &offset))
        return http_error(c, 400, "bad_query", "offset must be a non-negative integer");
    store *db = http_db(c);
    if (!db) return http_error(c, 503, "unavailable", "the database is unavailable");
    store_run *runs = NULL;
    size_t n = 0;
    store_run_periods ps;
    mn_err err = {{0}};
    if (store_run_list(db, status, model, (int)limit, (int)offset, &runs, &n,
                       &ps, &err))
        return http_error(c, 503, "store_error", "%s", err.msg);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, run_json(c->app, &runs[i],
                                            ps.ps ? ps.ps + ps.at[i] : NULL,
                                            ps.at[i + 1] - ps.at[i]));
    store_run_periods_free(&ps);
    store_runs_free(runs, n);
    return http_json(c, 200, json_pack("{s:o, s:I, s:I}", "runs", arr, "limit",
                                       (json_int_t)limit, "offset",
                                       (json_int_t)offset));
}

enum MHD_Result runs_get(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    rc = reply_run(c, 200, &r, 0);
    store_run_free(&r);
    return rc;
}

enum MHD_Result runs_delete(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    mn_err err = {{0}};
    int s = store_run_delete(http_db(c), r.id, &err);
    if (s == STORE_CONFLICT)
        rc = http_error(c, 409, "run_active", "run %lld is %s: cancel it "
                        "first", (long long)r.id, r.status);
    else if (s == STORE_NOT_FOUND)
        rc = http_error(c, 404, "not_found", "no run '%s'", c->arg);
    else if (s)
        rc = http_error(c, 503, "store_error", "%s", err.msg);
    else {
        mcache_drop(c->app->models, r.id);
        rc = http_bytes(c, 204, NULL, "", 0);
    }
    store_run_free(&r);
    return rc;
}

enum MHD_Result runs_cancel(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    store *db = http_db(c);
    mn_err err = {{0}};
    int s = store_run_cancel_queued(db, r.id, &err);
    if (s == STORE_CONFLICT) {
        store_run_free(&r);
        if (store_run_get(db, runs_parse_id(c->arg), &r, &err))
            return http_error(c, 503, "store_error", "%s", err.msg);
        if (strcmp(r.status, "running") != 0) {
            rc = http_error(c, 409, "run_ended", "run %lld already %s",
                            (long long)r.id, r.status);
            store_run_free(&r);
            return rc;
        }
        pool_cancel(c->app->pool, r.id);
    } else if (s) {
        store_run_free(&r);
        return http_error(c, 503, "store_error", "%s", err.msg);
    } else {
        store_run_free(&r);
        if (store_run_get(db, runs_parse_id(c->arg), &r, &err))
            return http_error(c, 503, "store_error", "%s", err.msg);
    }
    rc = reply_run(c, 202, &r, 0);
    store_run_free(&r);
    return rc;
}

enum MHD_Result runs_resume(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    store *db = http_db(c);
    mn_err err = {{0}};
    int no_checkpoint = 0;
    int s = store_run_resume(db, r.id, &no_checkpoint, &err);
    store_run_free(&r);
    if (s == STORE_NOT_FOUND)
        return http_error(c, 404, "not_found", "no run '%s'", c->arg);
    if (s == STORE_CONFLICT)
        return http_error(c, 409, no_checkpoint ? "no_checkpoint"
                                                : "run_not_resumable",
                          "%s", err.msg);
    if (s || store_run_get(db, runs_parse_id(c->arg), &r, &err))
        return http_error(c, 503, "store_error", "%s", err.msg);
    pool_notify(c->app->pool);
    rc = reply_run(c, 202, &r, 0);
    store_run_free(&r);
    return rc;
}

/* The confusion set named by ?set= (default validation); NULL if invalid. */
static const char *confusion_set(http_ctx *c)
{
    const char *set = http_query(c, "set");
    if (!set) return "validation";
    if (strcmp(set, "validation") == 0 || strcmp(set, "test") == 0) return set;
    return NULL;
}

enum MHD_Result runs_confusion(http_ctx *c)
{
    enum MHD_Result rc;
    const char *set = confusion_set(c);
    if (!set)
        return http_error(c, 400, "bad_query", "set must be validation or test");
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    eval_result e;
    mn_err err = {{0}};
    int s = store_confusion_get(http_db(c), r.id, set, &e, &err);
    if (s == STORE_NOT_FOUND)
        rc = strcmp(set, "test") == 0
                 ? http_error(c, 409, "not_evaluated", "run %lld has no test "
                              "evaluation yet: POST /runs/%lld/evaluate",
                              (long long)r.id, (long long)r.id)
                 : http_error(c, 409, "no_metrics", "run %lld has not finished "
                              "a period yet", (long long)r.id);
    else if (s)
        rc = http_error(c, 503, "store_error", "%s", err.msg);
    else
        rc = http_json(c, 200, enc_confusion(set, &e));
    store_run_free(&r);
    return rc;
}

const nn_model *runs_model(http_ctx *c, const store_run *r, enum MHD_Result *rc)
{
    if (strcmp(r->status, "succeeded") != 0) {
        *rc = http_error(c, 409, "run_not_succeeded", "run %lld is %s; only a "
                         "succeeded run has a model", (long long)r->id, r->status);
        return NULL;
    }
    int not_found = 0;
    mn_err err = {{0}};
    const nn_model *m = mcache_get(c->app->models, http_db(c), r->id,
                                   &not_found, &err);
    if (!m)
        *rc = not_found ? http_error(c, 409, "no_model", "%s", err.msg)
                        : http_error(c, 503, "model_unavailable", "%s", err.msg);
    return m;
}

enum MHD_Result runs_evaluate(http_ctx *c)
{
    enum MHD_Result rc;
    json_t *body = NULL;
    const char *dsname = "mnist-test";
    if (c->req->len > 0) {
        body = http_body_json(c, &rc);
        if (!body) return rc;
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v) {
            if (strcmp(key, "dataset") != 0) {
                rc = http_error(c, 400, "bad_field", "unknown field '%s'", key);
                json_decref(body);
                return rc;
            }
        }
        if (!json_is_object(body)) {
            json_decref(body);
            return http_error(c, 400, "bad_field", "body must be a JSON object");
        }
        json_t *ds = json_object_get(body, "dataset");
        if (ds) {
            if (!json_is_string(ds) || !spec_valid_name(json_string_value(ds))) {
                json_decref(body);
                return http_error(c, 400, "bad_field", "dataset must be a "
                                  "dataset name");
            }
            dsname = json_string_value(ds);
        }
    }
    store_run r = {0};
    const nn_model *m = NULL;
    if (!runs_load(c, &r, &rc)) goto done;
    if (!(m = runs_model(c, &r, &rc))) goto done;
    int not_found = 0;
    mn_err err = {{0}};
    const ds_dataset *d = dsreg_get(c->app->datasets, http_db(c), dsname,
                                    &not_found, &err);
    if (!d) {
        rc = not_found ? http_error(c, 400, "bad_field", "dataset: %s", err.msg)
                       : http_error(c, 503, "dataset_unavailable", "%s", err.msg);
        goto done;
    }
    eval_result e;
    if (eval_run(m, d, NULL, d->n, &e, &err)) {
        rc = http_error(c, 400, "bad_field", "dataset: %s", err.msg);
        goto done;
    }
    if (store_test_put(http_db(c), r.id, &e, &err)) {
        rc = http_error(c, 503, "store_error", "%s", err.msg);
        goto done;
    }
    rc = http_json(c, 200, enc_evaluation(dsname, &e));
done:
    mcache_put(c->app->models, m);
    store_run_free(&r);
    json_decref(body);
    return rc;
}

enum MHD_Result runs_weights(http_ctx *c)
{
    enum MHD_Result rc;
    long layer = 0;
    store_run r = {0};
    const nn_model *m = NULL;
    if (http_query_long(c, "layer", 0, NN_MAX_HIDDEN, &layer))
        return http_error(c, 400, "bad_query", "layer must be an integer in "
                          "0..%d", NN_MAX_HIDDEN);
    if (!runs_load(c, &r, &rc)) goto done;
    if (!(m = runs_model(c, &r, &rc))) goto done;
    if (layer >= m->n_layers) {
        rc = http_error(c, 400, "bad_query", "layer must be in 0..%d for this "
                        "run", m->n_layers - 1);
        goto done;
    }
    int in = nn_layer_in(&m->arch, (int)layer);
    int out = nn_layer_out(&m->arch, (int)layer);
    const float *W = m->W[layer];
    json_t *values = json_array(), *bias = json_array();
    for (int u = 0; u < out; u++) {
        json_t *row = json_array();
        for (int i = 0; i < in; i++)
            json_array_append_new(row, json_real(W[(size_t)i * out + u]));
        json_array_append_new(values, row);
        json_array_append_new(bias, json_real(m->b[layer][u]));
    }
    rc = http_json(c, 200, json_pack("{s:I, s:[I,I], s:o, s:o}", "layer",
                                     (json_int_t)layer, "shape",
                                     (json_int_t)out, (json_int_t)in,
                                     "values", values, "biases", bias));
done:
    mcache_put(c->app->models, m);
    store_run_free(&r);
    return rc;
}
