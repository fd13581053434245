/* routes_runs.c: the /runs resource: create, list, get, cancel, delete,
 * confusion matrix, test-set evaluation, first-layer weights and the
 * model as an ONNX file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/render/enc.h"
#include "server/render/onnx.h"
#include "server/serving/mcache.h"
#include "server/jobs/pool.h"
#include "server/http/auth.h"
#include "server/http/quota.h"
#include "server/http/routes.h"
#include "server/jobs/spec.h"
#include "server/jobs/sweep.h"
#include "server/store/store.h"

/* The run object: its fields with the summary of its periods (last, the
 * last finished one: period 0 when none; borrowed) and, when ps is not
 * NULL, its whole history of n periods ps (in order; borrowed), as
 * GET /runs/<id> shows it; a list item has no history. A running run's
 * progress is live: from this node's pool when it trains here, else the
 * progress its node stored (at most a second old; read through db). New
 * reference (NULL: OOM). */
static json_t *run_json(app *a, store *db, const store_run *r,
                        const train_period *last, const train_period *ps,
                        size_t n)
{
    json_error_t je;
    json_t *params = json_loads(r->params_json, 0, &je);
    if (!params) params = json_object();
    uint32_t step = r->step, period = r->period;
    int cancel_requested = 0;
    if (r->status == RUN_RUNNING) {
        uint32_t s, p;
        store_run_live live;
        mn_err err = {{0}};
        int stored = db && store_run_live_get(db, r->id, &live, &err) == 0 &&
                     live.status == RUN_RUNNING;
        cancel_requested = stored && live.cancel_requested;
        if (pool_progress(a->pool, r->id, &s, &p)) {
            if (s >= step) {
                step = s;
                period = p;
            }
        } else if (stored && live.at && live.step >= step) {
            step = live.step;
            period = live.period > period ? live.period : period;
        }
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I}, s:I, s:o, s:o, "
        "s:o, s:o, s:o, s:o, s:o, s:s?, s:s?}",
        "id", id, "status", run_status_name(r->status),
        "model", r->model, "dataset",
        r->dataset, "params", params, "progress", "step", (json_int_t)step,
        "steps", (json_int_t)r->steps, "period", (json_int_t)period,
        "periods", (json_int_t)r->periods,
        "periods_done", (json_int_t)last->period,
        "last_period", last->period ? enc_period(last) : json_null(),
        "validation_accuracy", enc_real(r->validation_accuracy),
        "validation_log_loss", enc_real(r->validation_log_loss),
        "test_accuracy", enc_real(r->test_accuracy), "created_at",
        enc_time(r->created_at), "started_at", enc_time(r->started_at),
        "finished_at", enc_time(r->finished_at), "error", r->error,
        "waiting", r->waiting);
    if (o) {
        /* a trial of a sweep says which, and its number there; the
         * run's node and attempts, its cancel request and owner */
        char sw[24];
        snprintf(sw, sizeof sw, "%lld", (long long)r->sweep);
        if (json_object_set_new(o, "sweep", r->sweep ? json_string(sw)
                                                     : json_null()) ||
            json_object_set_new(o, "cancel_requested",
                                json_boolean(cancel_requested)) ||
            json_object_set_new(o, "owner", r->owner[0] ? json_string(r->owner)
                                                        : json_null()) ||
            json_object_set_new(o, "trial", r->sweep
                                    ? json_integer((json_int_t)r->trial)
                                    : json_null()) ||
            /* the node that trains or trained it (null while queued),
             * and how many times a node started training it */
            json_object_set_new(o, "node", r->node[0] ? json_string(r->node)
                                                      : json_null()) ||
            json_object_set_new(o, "attempts",
                                json_integer((json_int_t)r->attempts))) {
            json_decref(o);
            return NULL;
        }
    }
    if (o && ps) {
        json_t *periods = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(periods, enc_period(&ps[i]));
        if (json_object_set_new(o, "periods", periods)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* infer_src's store: the request's connection (c an http_ctx). */
static store *request_db(void *c)
{
    return http_db(c);
}

infer_src runs_infer_src(http_ctx *c)
{
    /* a shared store caches no model names: another node may change them */
    int shared = c->app->shared_store;
    return (infer_src){c->app->models, request_db, c,
                       shared ? NULL : c->app->names};
}

unsigned runs_infer_http(infer_status st, const char **code)
{
    static const struct {
        unsigned status;
        const char *code;
    } reply[] = {
        [INFER_NOT_FOUND] = {404, "not_found"},
        [INFER_NO_MODEL] = {409, "no_model"},
        [INFER_NOT_SUCCEEDED] = {409, "run_not_succeeded"},
        [INFER_NO_STORE] = {503, "store_unavailable"},
        [INFER_STORE_ERROR] = {503, "store_error"},
        [INFER_MODEL_UNAVAILABLE] = {503, "model_unavailable"},
        [INFER_SHAPE_MISMATCH] = {409, "shape_mismatch"},
        [INFER_NO_MEMORY] = {503, "out_of_memory"},
    };
    if (st == INFER_OK || (size_t)st >= sizeof reply / sizeof reply[0]) {
        *code = "internal";
        return 500;
    }
    *code = reply[st].code;
    return reply[st].status;
}

enum MHD_Result runs_infer_error(http_ctx *c, infer_status st,
                                 const mn_err *err)
{
    const char *code;
    unsigned status = runs_infer_http(st, &code);
    return http_error(c, status, code, "%s", err->msg);
}

int runs_load(http_ctx *c, store_run *r, enum MHD_Result *rc)
{
    infer_src src = runs_infer_src(c);
    mn_err err = {{0}};
    infer_status st = infer_find_run(&src, c->arg, r, &err);
    if (st) *rc = runs_infer_error(c, st, &err);
    return st == INFER_OK;
}

static enum MHD_Result reply_run(http_ctx *c, unsigned status,
                                 const store_run *r, int located)
{
    train_period *ps = NULL;
    size_t n = 0;
    mn_err err;
    if (store_periods_get(http_db(c), r->id, &ps, &n, &err)) n = 0;
    train_period none = {0}; /* no period yet; also the empty history */
    json_t *o = run_json(c->app, http_db(c), r, n ? &ps[n - 1] : &none,
                         ps ? ps : &none, n);
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
    const ds_dataset *d = NULL;
    if (spec_from_json(body, &spec, &err)) {
        rc = http_error(c, 400, "bad_field", "%s", err.msg);
        goto done;
    }
    store *db = http_db_or_reply(c, &rc);
    if (!db) goto done;
    int not_found = 0;
    d = auth_dsreg_get(c, db, spec.dataset, &not_found, &err);
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
        char conv[128] = "";
        if (spec.model->conv) {
            size_t floats;
            int l = cnn_largest_map(&tp.arch, &floats);
            snprintf(conv, sizeof conv, "; conv_layers[%d]'s feature maps "
                     "are the largest, %zu floats an example: use fewer "
                     "filters, pooling or \"valid\" padding there", l, floats);
        }
        rc = http_error(c, 400, "run_too_large", "this run would need about "
                        "%zu MiB (parameters, gradients, optimizer state, "
                        "buffers); the limit is %zu MiB: use fewer or "
                        "narrower hidden_units or a smaller batch_size%s",
                        (need >> 20) + 1, c->app->cfg.max_run_memory >> 20,
                        conv);
        goto done;
    }
    int s = store_run_count(db, run_status_name(RUN_QUEUED), &queued, &err);
    if (s) {
        rc = http_store_error(c, s, &err, NULL, NULL);
        goto done;
    }
    if (queued >= (int64_t)c->app->cfg.max_queued) {
        rc = http_error(c, 503, "queue_full", "%lld runs are already queued "
                        "(limit %u); try again later", (long long)queued,
                        c->app->cfg.max_queued);
        goto done;
    }
    store_limit runs_limit;
    quota_limit_of(c, QUOTA_RUNS, &runs_limit);
    json_t *pj = spec_to_json(&spec);
    params = pj ? json_dumps(pj, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(pj);
    /* an uploaded dataset is checked again in the insert's transaction: a
     * DELETE /datasets meanwhile either sees this run or wins; the user's
     * runs are counted there too, so that a burst cannot pass the limit */
    s = !params ? -1
                : store_run_create(
                      db, auth_owner(c), !dsreg_is_builtin(spec.dataset),
                      spec.model->name, spec.dataset, params, spec.steps,
                      spec.periods, &runs_limit, &id, &err);
    if (s == STORE_LIMIT) {
        rc = quota_refuse(c, QUOTA_RUNS, runs_limit.used, 1);
        goto done;
    }
    if (s == STORE_NOT_FOUND) {
        rc = http_error(c, 400, "bad_field", "dataset '%s' does not exist "
                        "(GET /datasets lists them)", spec.dataset);
        goto done;
    }
    if (!s) s = store_run_get(db, id, &r, &err);
    if (s) {
        rc = http_error(c, 503, s == STORE_UNAVAILABLE ? "store_unavailable"
                                : "store_error", "cannot queue the run: %s",
                        err.msg);
        goto done;
    }
    pool_notify(c->app->pool);
    rc = reply_run(c, 202, &r, 1);
done:
    dsreg_put(c->app->datasets, d);
    store_run_free(&r);
    free(params);
    json_decref(body);
    return rc;
}

enum MHD_Result runs_list(http_ctx *c)
{
    const char *status = http_query(c, "status");
    const char *model = http_query(c, "model");
    long limit = 50, offset = 0;
    run_status st;
    char names[128];
    if (status && run_status_parse(status, &st)) {
        run_status_names(names, sizeof names);
        return http_error(c, 400, "bad_query", "status must be one of %s",
                          names);
    }
    if (model && !run_model_find(model)) {
        run_model_names(names, sizeof names, 0, 0);
        return http_error(c, 400, "bad_query", "model must be %s", names);
    }
    if (http_query_long(c, "limit", 1, 1000, &limit))
        return http_error(c, 400, "bad_query", "limit must be an integer in 1..1000");
    if (http_query_long(c, "offset", 0, 1000000000, &offset))
        return http_error(c, 400, "bad_query", "offset must be a non-negative integer");
    enum MHD_Result rc;
    const char *owner;
    if (!auth_list_owner(c, &owner, &rc)) return rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_run *runs = NULL;
    train_period *last = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_run_list_owned(db, owner, status, model, (int)limit,
                                 (int)offset, &runs, &n, &last, &err);
    if (s) return http_store_error(c, s, &err, NULL, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, run_json(c->app, http_db(c), &runs[i],
                                            &last[i], NULL,
                                            0));
    free(last);
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

enum MHD_Result runs_periods(http_ctx *c)
{
    long after = 0, limit = RUNS_PERIODS_LIMIT_DEFAULT;
    if (http_query_long(c, "after", 0, 1000000000, &after))
        return http_error(c, 400, "bad_query", "after must be a non-negative "
                          "integer (a period number)");
    if (http_query_long(c, "limit", 1, TRAIN_MAX_PERIODS, &limit))
        return http_error(c, 400, "bad_query", "limit must be an integer in "
                          "1..%d", TRAIN_MAX_PERIODS);
    store *db = http_db(c);
    if (!db) return http_error(c, 503, "store_unavailable",
                               "the database cannot be reached now");
    int64_t id = infer_parse_id(c->arg);
    if (!id) return http_error(c, 404, "not_found", "no run '%s'", c->arg);
    train_period *ps = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    /* one more than the page: whether a next page exists */
    int s = store_periods_page(db, id, (uint32_t)after, (int)limit + 1, &ps,
                               &n, &err);
    if (s == STORE_NOT_FOUND)
        return http_error(c, 404, "not_found", "no run '%s'", c->arg);
    if (s) return http_store_error(c, s, &err, NULL, NULL);
    json_t *next = json_null();
    if (n > (size_t)limit) {
        n = (size_t)limit;
        next = json_integer(ps[n - 1].period);
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, enc_period(&ps[i]));
    free(ps);
    return http_json(c, 200, json_pack("{s:o, s:o}", "periods", arr, "next",
                                       next));
}

enum MHD_Result runs_delete(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    mn_err err = {{0}};
    int s = store_run_delete(http_db(c), r.id, &err);
    char model[64];
    int64_t version;
    if (s == STORE_CONFLICT && run_status_ended(r.status) &&
        store_run_model_version(http_db(c), r.id, model, &version, &err) == 0)
        rc = http_error(c, 409, "run_in_model", "run %lld is version %lld "
                        "of model '%s': delete the model first",
                        (long long)r.id, (long long)version, model);
    else if (s == STORE_CONFLICT)
        rc = http_store_error(c, s, &err, "run_active", "run %lld is %s: "
                              "cancel it first", (long long)r.id,
                              run_status_name(r.status));
    else if (s)
        rc = http_store_error(c, s, &err, "not_found", "no run '%s'", c->arg);
    else {
        mcache_drop(c->app->models, r.id);
        rc = http_bytes(c, 204, NULL, "", 0);
    }
    store_run_free(&r);
    return rc;
}

/* POST /runs/<id>/cancel. A queued run is cancelled at once. A running
 * one, on this node or another (nodes sharing a PostgreSQL database), gets
 * a cancel request in the store (store_run_cancel_request): the node that
 * trains it stops it within a second (server/jobs/signals.h), and this
 * node's pool stops it at its next step when it trains here. Both are 202
 * with the run as it is now (a running run shows `cancel_requested` until
 * its node stops it). 409 when the run has already ended. A run that
 * changes state meanwhile (claimed, requeued by a takeover) is looked at
 * again. */
enum MHD_Result runs_cancel(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    store *db = http_db(c);
    mn_err err = {{0}};
    int64_t id = r.id, sweep = r.sweep;
    int s = STORE_CONFLICT, queued = 0;
    for (int attempt = 0; attempt < 3 && s == STORE_CONFLICT; attempt++) {
        if ((s = store_run_cancel_queued(db, id, &err)) == 0) {
            queued = 1;
        } else if (s == STORE_CONFLICT &&
                   (s = store_run_cancel_request(db, id, &err)) == 0) {
            pool_cancel(c->app->pool, id);   /* at once when it trains here */
        } else if (s == STORE_CONFLICT) {
            store_run_free(&r);
            if ((s = store_run_get(db, id, &r, &err))) break;
            if (run_status_ended(r.status)) {
                rc = http_error(c, 409, "run_ended", "run %lld already %s",
                                (long long)id, run_status_name(r.status));
                store_run_free(&r);
                return rc;
            }
            s = STORE_CONFLICT;   /* queued or running again: once more */
        }
    }
    store_run_free(&r);
    if (s)
        return http_store_error(c, s == STORE_CONFLICT ? STORE_UNAVAILABLE : s,
                                &err,
                                "not_found", "no run '%s'", c->arg);
    if (queued && sweep) sweeper_notify(c->app->sweeps);   /* its next trial */
    if ((s = store_run_get(db, id, &r, &err)))
        return http_store_error(c, s, &err, "not_found", "no run '%s'",
                                c->arg);
    rc = reply_run(c, 202, &r, 0);
    store_run_free(&r);
    return rc;
}

enum MHD_Result runs_resume(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    /* a resumed run is queued again: it counts against the limit, in the
     * update's transaction */
    store_limit runs_limit;
    quota_limit_of(c, QUOTA_RUNS, &runs_limit);
    store *db = http_db(c);
    mn_err err = {{0}};
    int no_checkpoint = 0;
    int s = store_run_resume(db, r.id, &runs_limit, &no_checkpoint, &err);
    store_run_free(&r);
    if (s == STORE_LIMIT)
        return quota_refuse(c, QUOTA_RUNS, runs_limit.used, 1);
    if (s == STORE_NOT_FOUND)
        return http_error(c, 404, "not_found", "no run '%s'", c->arg);
    if (s == STORE_CONFLICT)
        return http_error(c, 409, no_checkpoint ? "no_checkpoint"
                                                : "run_not_resumable",
                          "%s", err.msg);
    if (!s) s = store_run_get(db, infer_parse_id(c->arg), &r, &err);
    if (s) return http_store_error(c, s, &err, NULL, NULL);
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
        rc = http_store_error(c, s, &err, NULL, NULL);
    else
        rc = http_json(c, 200, enc_confusion(set, &e,
                                             enc_class_names(r.dataset)));
    store_run_free(&r);
    return rc;
}

const model *runs_model(http_ctx *c, const store_run *r, enum MHD_Result *rc)
{
    infer_src src = runs_infer_src(c);
    const model *m = NULL;
    mn_err err = {{0}};
    infer_status st = infer_pin(&src, r, &m, &err);
    if (st) *rc = runs_infer_error(c, st, &err);
    return m;
}

enum MHD_Result runs_evaluate(http_ctx *c)
{
    enum MHD_Result rc;
    json_t *body = NULL;
    const char *dsname = NULL; /* default: the run's dataset's test set */
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
    const model *m = NULL;
    const ds_dataset *d = NULL;
    if (!runs_load(c, &r, &rc)) goto done;
    if (!(m = runs_model(c, &r, &rc))) goto done;
    if (!dsname) {
        const ds_builtin *b = ds_builtin_find(r.dataset);
        dsname = b ? b->test : "mnist-test";
    }
    int not_found = 0;
    mn_err err = {{0}};
    d = auth_dsreg_get(c, http_db(c), dsname, &not_found, &err);
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
    int s = store_test_put(http_db(c), r.id, &e, &err);
    if (s) {
        rc = http_store_error(c, s, &err, "not_found", "no run '%s'", c->arg);
        goto done;
    }
    rc = http_json(c, 200, enc_evaluation(dsname, &e));
done:
    dsreg_put(c->app->datasets, d);
    mcache_put(c->app->models, m);
    store_run_free(&r);
    json_decref(body);
    return rc;
}

int runs_layer(http_ctx *c, const model *m, const char *note,
               long *layer, enum MHD_Result *rc)
{
    *layer = 0;
    if (http_query_long(c, "layer", 0, MODEL_MAX_LAYERS, layer)) {
        *rc = http_error(c, 400, "bad_query", "layer must be an integer in "
                         "0..%d%s", MODEL_MAX_LAYERS, note);
        return 0;
    }
    int n_layers = m ? model_layer_count(&m->arch) : 0;
    if (m && *layer >= n_layers) {
        *rc = http_error(c, 400, "bad_query", "layer must be in 0..%d for "
                         "this run%s", n_layers - 1, note);
        return 0;
    }
    return 1;
}

/* The weights reply: values[unit][input] from w [n_in, n_out] (or, with
 * snap non-NULL, snap's dequantised values), biases, and with a period
 * the period and its step. */
static enum MHD_Result weights_reply(http_ctx *c, long layer,
                                     const model_weights *lw,
                                     const wsnap *snap, uint32_t period,
                                     uint32_t step)
{
    int in = snap ? snap->inputs : lw->n_in;
    int out = snap ? snap->units : lw->n_out;
    if ((size_t)in * (size_t)out > RUNS_WEIGHTS_MAX_VALUES)
        return http_error(c, 400, "bad_query", "layer %ld has %d x %d "
                          "weights, over the %d one reply may hold", layer,
                          out, in, RUNS_WEIGHTS_MAX_VALUES);
    json_t *values = json_array(), *bias = json_array();
    for (int u = 0; u < out; u++) {
        json_t *row = json_array();
        for (int i = 0; i < in; i++)
            json_array_append_new(row, json_real(
                snap ? wsnap_value(snap, u, i) : lw->w[(size_t)i * out + u]));
        json_array_append_new(values, row);
        json_array_append_new(bias, json_real(snap ? snap->bias[u]
                                                   : lw->b[u]));
    }
    json_t *o = json_pack("{s:I, s:[I,I], s:o, s:o}", "layer",
                          (json_int_t)layer, "shape", (json_int_t)out,
                          (json_int_t)in, "values", values, "biases", bias);
    if (o && period) {
        json_object_set_new(o, "period", json_integer(period));
        json_object_set_new(o, "step", json_integer(step));
    }
    return http_json(c, 200, o);
}

enum MHD_Result runs_weights(http_ctx *c)
{
    enum MHD_Result rc;
    long layer = 0;
    uint32_t period = 0, step = 0;
    store_run r = {0};
    const model *m = NULL;
    wsnap snap = {0};
    if (!runs_layer(c, NULL, "", &layer, &rc)) return rc;
    if (!runs_period_query(c, layer, &period, &rc)) return rc;
    if (!runs_load(c, &r, &rc)) goto done;
    if (period) {
        /* a snapshot: any status, from its period's end on */
        if (runs_snapshot(c, &r, period, &snap, &step, &rc))
            rc = weights_reply(c, 0, NULL, &snap, period, step);
        goto done;
    }
    if (!(m = runs_model(c, &r, &rc))) goto done;
    if (!runs_layer(c, m, "", &layer, &rc)) goto done;
    model_weights lw;
    model_layer_weights(m, (int)layer, &lw);
    rc = weights_reply(c, layer, &lw, NULL, 0, 0);
done:
    wsnap_free(&snap);
    mcache_put(c->app->models, m);
    store_run_free(&r);
    return rc;
}

enum MHD_Result runs_onnx_of(http_ctx *c, const char *run)
{
    enum MHD_Result rc;
    store_run r = {0};
    const model *m = NULL;
    uint8_t *file = NULL;
    size_t len = 0;
    infer_src src = runs_infer_src(c);
    mn_err err = {{0}};
    infer_status st = infer_find_run(&src, run, &r, &err);
    if (st) {
        rc = runs_infer_error(c, st, &err);
        goto done;
    }
    if (!(m = runs_model(c, &r, &rc))) goto done;
    char doc[64];
    snprintf(doc, sizeof doc, "mnistd run %lld (%s)", (long long)r.id,
             r.model);
    if (onnx_export(m, doc, &file, &len, &err)) {
        rc = http_error(c, 503, "unavailable", "cannot export the model: %s",
                        err.msg);
        goto done;
    }
    rc = http_bytes(c, 200, "application/onnx", file, len);
done:
    free(file);
    mcache_put(c->app->models, m);
    store_run_free(&r);
    return rc;
}

enum MHD_Result runs_onnx(http_ctx *c)
{
    return runs_onnx_of(c, c->arg);
}
