/* sweep.c: the sweep scheduler (design in sweep.h). */
#include "server/jobs/sweep.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/app.h"
#include "server/jobs/pool.h"
#include "server/jobs/spec.h"
#include "server/jobs/sweepspec.h"
#include "server/store/store.h"
#include "server/telemetry/log.h"

struct sweeper {
    app *a;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit;       /* under mu */
    int pending;    /* under mu: a notify since the last pass */
};

/* Reads the resolved request of a stored sweep (as POST /sweeps stored
 * it; no run checks: they were made then). 0 or -1. */
static int load_spec(const store_sweep *w, sweep_spec *sp, mn_err *err)
{
    json_error_t je;
    json_t *j = json_loads(w->params_json, 0, &je);
    if (!j) return mn_errf(err, "sweep %lld: stored params are unreadable",
                           (long long)w->id);
    int rc = sweepspec_parse(j, SWEEP_MAX_TRIALS, NULL, NULL, sp, err);
    json_decref(j);
    return rc;
}

static void log_sweep(int64_t id, const char *event, const char *detail)
{
    log_json(json_pack("{s:I, s:I, s:s, s:s?}", "ts",
                       (json_int_t)app_now_ms(), "sweep", (json_int_t)id,
                       "event", event, "detail", detail));
}

/* Creates trial t of the sweep (see sweep.h). 0 created, STORE_CONFLICT
 * (another thread got there first, or the sweep is full or ended), 1 when
 * the trial's body is invalid (err says why: the sweep fails), < 0 on a
 * store error. */
static int trial_create(app *a, store *db, int64_t id, const sweep_spec *sp,
                        uint32_t t, mn_err *err)
{
    run_spec rs;
    char *params = NULL;
    int rc = -1;
    json_t *body = sweepspec_trial(sp, t, NULL);
    if (!body) return mn_errf(err, "out of memory");
    mn_err why = {{0}};
    if (spec_from_json(body, &rs, &why)) {
        mn_errf(err, "trial %u: %s", t, why.msg);
        rc = 1;
        goto done;
    }
    json_t *pj = spec_to_json(&rs);
    params = pj ? json_dumps(pj, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(pj);
    if (!params) {
        mn_errf(err, "out of memory");
        goto done;
    }
    int64_t run = 0;
    rc = store_sweep_trial_add(db, id, t, sp->parallel, rs.model->name,
                               rs.dataset, params, rs.steps, rs.periods, &run,
                               err);
    if (rc == 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "trial %u is run %lld", t, (long long)run);
        log_sweep(id, "trial", msg);
        if (a && a->pool) pool_notify(a->pool);
    }
done:
    free(params);
    json_decref(body);
    return rc;
}

int sweep_advance(app *a, store *db, int64_t id, mn_err *err)
{
    store_sweep w = {0};
    store_run *trials = NULL;
    size_t n = 0;
    sweep_spec sp;
    int have_spec = 0;
    int rc = store_sweep_get(db, id, &w, &trials, &n, err);
    if (rc) goto done;
    if (strcmp(w.status, "running")) goto done;
    if (load_spec(&w, &sp, err)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        rc = store_sweep_finish(db, id, "failed", msg, err);
        goto done;
    }
    have_spec = 1;
    uint32_t active = 0, succeeded = 0;
    for (size_t i = 0; i < n; i++) {
        active += !run_status_ended(trials[i].status);
        succeeded += trials[i].status == RUN_SUCCEEDED;
    }
    uint32_t next = w.next_trial;
    while (next < w.trials && active < sp.parallel) {
        int r = trial_create(a, db, id, &sp, next, err);
        if (r == STORE_CONFLICT) break;   /* another thread advanced it */
        if (r == 1) {
            log_sweep(id, "failed", err->msg);
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = store_sweep_finish(db, id, "failed", msg, err);
            if (rc == STORE_CONFLICT) rc = 0;
            goto done;
        }
        if (r) {
            rc = r;
            goto done;
        }
        next++;
        active++;
    }
    if (next == w.trials && active == 0) {
        /* every trial has ended: the sweep succeeded when one of them did */
        const char *status = succeeded ? "succeeded" : "failed";
        rc = store_sweep_finish(db, id, status,
                                succeeded ? NULL : "no trial succeeded", err);
        if (rc == 0) log_sweep(id, status, NULL);
        if (rc == STORE_CONFLICT) rc = 0;   /* ended meanwhile */
    }
done:
    if (have_spec) sweepspec_free(&sp);
    store_runs_free(trials, n);
    store_sweep_free(&w);
    return rc;
}

int sweep_should_prune(store *db, int64_t sweep, int64_t run, uint32_t period,
                       uint32_t periods, char *why, size_t len, mn_err *err)
{
    store_sweep w = {0};
    sweep_spec sp;
    int have_spec = 0;
    store_series *series = NULL;
    size_t n = 0;
    sweep_curve *others = NULL;
    int rc = store_sweep_get(db, sweep, &w, NULL, NULL, err);
    if (rc) {
        rc = rc > 0 ? 0 : rc;   /* a deleted sweep stops nothing */
        goto done;
    }
    rc = -1;
    if (load_spec(&w, &sp, err)) goto done;
    have_spec = 1;
    rc = 0;
    if (sp.rule == SWEEP_STOP_NONE || period >= periods) goto done;
    rc = store_sweep_series(db, sweep, sweepspec_objective(&sp), period,
                            &series, &n, err);
    if (rc) goto done;
    others = malloc((n ? n : 1) * sizeof *others);
    if (!others) {
        rc = mn_errf(err, "out of memory");
        goto done;
    }
    sweep_curve own = {NULL, 0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (series[i].run == run)
            own = (sweep_curve){series[i].v, series[i].n};
        else
            others[k++] = (sweep_curve){series[i].v, series[i].n};
    }
    if (own.n != period) goto done;   /* its period is not stored: no data */
    rc = sweepspec_prune(&sp, own, periods, others, k, why, len);
done:
    free(others);
    store_series_free(series, n);
    if (have_spec) sweepspec_free(&sp);
    store_sweep_free(&w);
    return rc;
}

/* One pass: advances every running sweep. */
static void sweeper_pass(sweeper *w, store *db)
{
    mn_err err = {{0}};
    int64_t *ids = NULL;
    size_t n = 0;
    if (store_sweep_active(db, &ids, &n, &err)) {
        log_error("sweep_pass_failed", 0, err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int r = sweep_advance(w->a, db, ids[i], &err);
        if (r < 0) log_error("sweep_advance_failed", 0, err.msg);
    }
    free(ids);
}

static void *sweeper_main(void *arg)
{
    sweeper *w = arg;
    store *db = NULL;
    mn_err err = {{0}};
    for (;;) {
        if (!db && !(db = app_db_acquire(w->a, &err)))
            log_error("sweep_store_open_failed", 0, err.msg);
        if (db) sweeper_pass(w, db);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_mutex_lock(&w->mu);
        if (!w->quit && !w->pending)
            pthread_cond_timedwait(&w->cv, &w->mu, &until);
        w->pending = 0;
        int quit = w->quit;
        pthread_mutex_unlock(&w->mu);
        if (quit) break;
    }
    app_db_release(w->a, db);
    return NULL;
}

sweeper *sweeper_start(app *a, mn_err *err)
{
    sweeper *w = calloc(1, sizeof *w);
    if (!w) {
        mn_errf(err, "out of memory");
        return NULL;
    }
    w->a = a;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, sweeper_main, w) != 0) {
        sweeper_free(w);
        mn_errf(err, "cannot start the sweep scheduler thread");
        return NULL;
    }
    w->started = 1;
    return w;
}

void sweeper_notify(sweeper *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->pending = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void sweeper_stop(sweeper *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started) pthread_join(w->thread, NULL);
    w->started = 0;
}

void sweeper_free(sweeper *w)
{
    if (!w) return;
    sweeper_stop(w);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
