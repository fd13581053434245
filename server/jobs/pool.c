/* pool.c: the training worker pool (design in pool.h). */
#include "server/jobs/pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/telemetry/log.h"
#include "server/telemetry/metrics.h"
#include "engine/ckpt.h"
#include "engine/train.h"
#include "engine/wsnap.h"
#include "server/jobs/events.h"
#include "server/jobs/spec.h"
#include "server/jobs/sweep.h"
#include "server/store/store.h"

#define POOL_PENDING_MAX 64

/* Transient store errors (STORE_UNAVAILABLE): a write is tried again
 * after 100 ms, doubling to at most 5 s between tries, for up to 30 s from
 * the first failure (each try may itself wait the store's 10 s busy
 * timeout); then the run goes back to the queue. */
#define POOL_RETRY_FIRST_MS 100
#define POOL_RETRY_MAX_MS 5000
#define POOL_RETRY_BUDGET_MS 30000

/* A run whose dataset is unavailable waits in the queue: 2 s before the
 * next try, doubling to 60 s. */
#define POOL_WAIT_FIRST_MS 2000
#define POOL_WAIT_MAX_MS 60000

typedef struct slot {
    pool *p;
    pthread_t thread;
    int started;
    atomic_llong run_id;        /* 0 when idle */
    atomic_uint step, period;
    atomic_int stop;
} slot;

struct pool {
    app *a;
    unsigned n;
    slot *slots;
    train_threads *threads;     /* the runs' compute threads against the
                                   cores (train.h, DESIGN (cores)) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t quit_cv;     /* pool_stop broadcasts; retries nap on it */
    int quit;
    int64_t pending[POOL_PENDING_MAX]; /* cancels for runs not yet in a slot */
    unsigned n_pending;
    int have_node;              /* a->node_name is set: workers may claim */
    int drained;                /* pool_drain has joined the workers (set
                                   and read by the stopping thread only) */
#ifdef MNISTD_TESTING
    uint32_t crash_at;          /* MNISTD_TEST_CRASH_AT_STEP, 0 = none */
#endif
};

typedef struct run_ctx {
    slot *s;
    store *db;
    int64_t id;
    uint32_t batch;             /* for the samples counter */
    uint32_t last_step;         /* step at the previous period end */
    uint32_t stop_step;         /* step where a stop flag ended training */
    int unavailable;            /* a hook failed for want of the store */
    uint32_t periods;           /* the run's last period */
    int64_t interval_ms;        /* least time between paced checkpoints */
    int64_t last_ckpt_ms;       /* monotonic time of the last one (or of
                                   the start); period ends only */
    size_t snap_bytes;          /* a weight snapshot's size (wsnap.h), 0
                                   until the first period end reads it */
    int64_t sweep;              /* the sweep it is a trial of, 0 = none */
    char prune_why[256];        /* why the sweep's rule stopped it (set on
                                   the period-end helper, read after
                                   train_run has joined it) */
} run_ctx;

/* Milliseconds of the monotonic clock. */
static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The state of one store write tried again on transient errors. */
typedef struct backoff {
    int64_t first_fail_ms;      /* 0 until the first failure */
    int64_t wait_ms;            /* the next nap */
} backoff;

/* Sleeps up to ms, waking early when the pool stops (not on pool_notify,
 * which is for idle workers). Returns 1 when the pool is stopping. */
static int pool_nap(pool *p, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    if (!p->quit) pthread_cond_timedwait(&p->quit_cv, &p->mu, &until);
    int quit = p->quit;
    pthread_mutex_unlock(&p->mu);
    return quit;
}

/* After a store write returned rc: 1 when it should be tried again (rc is
 * STORE_UNAVAILABLE, the pool is not stopping, and less than budget_ms
 * (0 = no limit) passed since the first failure), after a nap of the
 * next backoff; 0 otherwise. No lock is held across the nap. */
static int pool_retry(pool *p, backoff *b, int rc, int64_t budget_ms,
                      int64_t id, const mn_err *err)
{
    if (rc != STORE_UNAVAILABLE) return 0;
    int64_t now = app_now_ms();
    if (!b->first_fail_ms) {
        b->first_fail_ms = now;
        b->wait_ms = POOL_RETRY_FIRST_MS;
        log_error("store_unavailable", id, err->msg);
    }
    if (budget_ms && now - b->first_fail_ms >= budget_ms) return 0;
    if (pool_nap(p, b->wait_ms)) return 0;
    b->wait_ms = b->wait_ms * 2 > POOL_RETRY_MAX_MS ? POOL_RETRY_MAX_MS
                                                    : b->wait_ms * 2;
    return 1;
}

static void log_run(int64_t id, const char *event, const char *detail)
{
    log_json(json_pack("{s:I, s:I, s:s, s:s?}", "ts", (json_int_t)app_now_ms(),
                       "run", (json_int_t)id, "event", event, "detail",
                       detail));
}

static void on_progress(void *ctx, uint32_t step, uint32_t period)
{
    run_ctx *rc = ctx;
#ifdef MNISTD_TESTING
    /* the test build's poison run: the process dies as kill -9 would
     * kill it, at the step the test chose (pool.h) */
    if (rc->s->p->crash_at && step >= rc->s->p->crash_at) {
        fprintf(stderr, "mnistd: MNISTD_TEST_CRASH_AT_STEP: run %lld at step "
                "%u: killing this node\n", (long long)rc->id, step);
        raise(SIGKILL);
    }
#endif
    atomic_store_explicit(&rc->s->step, step, memory_order_relaxed);
    atomic_store_explicit(&rc->s->period, period, memory_order_relaxed);
    ev_progress(rc->s->p->a->events, rc->id, step, period);
}

/* The weight snapshot of the period ending in checkpoint ckpt (wsnap.h:
 * layer 0, 8-bit) into *snap (new buffer), or NULL when the period keeps
 * none (wsnap_keep: from the run's period count and the snapshot's size,
 * read from the first checkpoint into rc->snap_bytes) or it cannot be
 * taken: a snapshot is a view of the training, not a part of it, so its
 * failure is logged, never the run's. */
static void period_snapshot(run_ctx *rc, const train_period *p,
                            const uint8_t *ckpt, size_t ckpt_len,
                            uint8_t **snap, size_t *len)
{
    model *m = NULL;
    wsnap ws = {0};
    mn_err err = {{0}};
    *snap = NULL;
    *len = 0;
    if (!ckpt || p->period < 1 || p->period > rc->periods) return;
    /* a snapshot's size is fixed by the architecture: only the first
     * period end of this process decodes a checkpoint to learn it */
    if (rc->snap_bytes && !wsnap_keep(p->period, rc->periods, rc->snap_bytes))
        return;
    int bad = ckpt_decode(ckpt, ckpt_len, 0, &m, NULL, NULL, NULL, &err);
    if (!bad) {
        rc->snap_bytes = wsnap_model_bytes(m);
        if (wsnap_keep(p->period, rc->periods, rc->snap_bytes))
            bad = wsnap_take(m, &ws, &err) ||
                  wsnap_encode(&ws, snap, len, &err);
    }
    if (bad) log_error("snapshot_failed", rc->id, err.msg);
    wsnap_free(&ws);
    model_free(m);
}

static int on_period(void *ctx, const train_period *p,
                     const eval_result *validation, const uint8_t *ckpt,
                     size_t ckpt_len, mn_err *err)
{
    run_ctx *rc = ctx;
    atomic_store_explicit(&rc->s->period, p->period, memory_order_relaxed);
    metrics_samples(rc->s->p->a->metrics,
                    (uint64_t)(p->step - rc->last_step) * rc->batch, p->seconds);
    rc->last_step = p->step;
    /* pacing: the period's metrics are stored every time, its full
     * checkpoint only at the last period or once interval_ms has passed
     * since the last one; a crash then redoes at most that much, and the
     * periods it redoes are stored again (replaced) with equal numbers */
    int64_t now = mono_ms();
    int keep = p->period >= rc->periods ||
               now - rc->last_ckpt_ms >= rc->interval_ms;
    if (keep) rc->last_ckpt_ms = now;
    /* the period's weight snapshot goes in the same transaction, whether
     * or not the checkpoint does: it is a function of the parameters at
     * that step, so a resumed run that redoes the period writes it again,
     * equal */
    uint8_t *snap;
    size_t snap_len;
    period_snapshot(rc, p, ckpt, ckpt_len, &snap, &snap_len);
    backoff b = {0};
    int r;
    do r = store_period_add_snapshot(rc->db, rc->id, p, validation,
                                     keep ? ckpt : NULL, keep ? ckpt_len : 0,
                                     snap, snap_len, err);
    while (pool_retry(rc->s->p, &b, r, POOL_RETRY_BUDGET_MS, rc->id, err));
    free(snap);
    if (r) {
        rc->unavailable = r == STORE_UNAVAILABLE;
        return -1;
    }
    ev_period(rc->s->p->a->events, rc->id, p);   /* after it is stored */
    if (rc->sweep && p->period < rc->periods) {
        /* the sweep's early stopping rule, on what the store now holds */
        char why[sizeof rc->prune_why];
        mn_err perr = {{0}};
        int prune = sweep_should_prune(rc->db, rc->sweep, rc->id, p->period,
                                       rc->periods, why, sizeof why, &perr);
        int running = TRAIN_RUN;
        if (prune < 0)
            log_error("prune_check_failed", rc->id, perr.msg);
        else if (prune &&
                 atomic_compare_exchange_strong(&rc->s->stop, &running,
                                                TRAIN_PRUNE))
            snprintf(rc->prune_why, sizeof rc->prune_why, "%s", why);
    }
    return 0;
}

static int on_stop(void *ctx, int why, uint32_t step, const uint8_t *ckpt,
                   size_t ckpt_len, mn_err *err)
{
    run_ctx *rc = ctx;
    rc->stop_step = step;
    /* a stopped run keeps its step: a shutdown resumes from there, and so
     * does a cancelled run resumed by POST /runs/<id>/resume */
    if ((why != TRAIN_SHUTDOWN && why != TRAIN_CANCEL && why != TRAIN_PRUNE) ||
        !ckpt)
        return 0;
    backoff b = {0};
    int r;
    do r = store_checkpoint_put(rc->db, rc->id, step, ckpt, ckpt_len, err);
    while (pool_retry(rc->s->p, &b, r, POOL_RETRY_BUDGET_MS, rc->id, err));
    if (r) {
        rc->unavailable = r == STORE_UNAVAILABLE;
        return -1;
    }
    return 0;
}

/* Trims an ended run's checkpoints to what it keeps (docs/STORAGE.md): a
 * succeeded run its final parameters without the optimizer state (what
 * predict, evaluate and the pictures read), a failed, cancelled or pruned
 * one its
 * latest full checkpoint (to resume); the 'best' copy goes in both cases.
 * Runs after store_run_finish, so a crash in between leaves a succeeded
 * run with a full checkpoint (larger, still correct), never a running run
 * without its optimizer state. 0 or -1. */
static int retain_checkpoints(store *db, int64_t id, run_status status,
                              mn_err *err)
{
    int rc = -1;
    uint8_t *full = NULL, *params = NULL;
    size_t full_len = 0, params_len = 0;
    model *m = NULL;
    uint64_t step;
    rng_state rng;

    if (status == RUN_SUCCEEDED) {
        int r = store_checkpoint_get(db, id, "latest", &full, &full_len, NULL,
                                     err);
        if (r == STORE_NOT_FOUND) {
            rc = 0;
            goto done;
        }
        if (r || ckpt_decode(full, full_len, 0, &m, NULL, &step, &rng, err) ||
            ckpt_encode(m, NULL, step, &rng, &params, &params_len, err))
            goto done;
    }
    if (store_checkpoint_retain(db, id, params, params_len, err)) goto done;
    rc = 0;
done:
    model_free(m);
    free(params);
    free(full);
    return rc;
}

/* Puts run id back in the queue (to wait until not_before with reason, or
 * at once when reason is NULL), trying until it is written or the pool
 * stops (start-up recovery then requeues a run left running). */
static void run_put_back(pool *p, store *db, int64_t id, const char *reason,
                         int64_t not_before)
{
    mn_err err = {{0}};
    backoff b = {0};
    int r;
    do r = store_run_wait(db, id, reason, not_before, &err);
    while (pool_retry(p, &b, r, 0, id, &err));
    if (r) log_error("requeue_failed", id, err.msg);
    log_run(id, reason ? "waiting" : "requeued",
            reason ? reason : "server stopping");
}

/* Trains one claimed run to its end state, or puts it back in the queue
 * when the cause of a stop is not its own: a shutdown, a store that stays
 * unavailable past the retry budget, a dataset that cannot be loaded now
 * (the run waits, longer each time). */
static void run_one(slot *s, store *db, store_run *r)
{
    pool *p = s->p;
    mn_err err = {{0}};
    run_spec spec;
    train_params tp;
    train_result *res = NULL;
    uint8_t *ck = NULL;
    size_t ck_len = 0;
    uint32_t ck_step = 0, stopped_at = 0; /* stopped_at: a cancel's step */
    json_t *params = NULL;
    const ds_dataset *d = NULL;     /* pinned for the whole training */
    run_status status = RUN_FAILED;
    int requeue = 0;
    char wait[sizeof err.msg + 64] = "";   /* why it waits, or empty */
    int64_t wait_ms = 0;

    json_error_t je;
    params = json_loads(r->params_json, 0, &je);
    /* params_json holds a resolved spec; re-validate it through the same
     * path as the request so that the engine sees identical values */
    if (!params || spec_from_json(params, &spec, &err)) {
        if (!params) mn_errf(&err, "stored parameters are unreadable");
        goto finish;
    }
    int not_found;
    d = dsreg_get(p->a->datasets, db, spec.dataset, &not_found, &err);
    if (!d && !not_found) {
        /* gone for now, not for good: wait, 2 s doubling to 60 s */
        snprintf(wait, sizeof wait, "dataset unavailable: %s", err.msg);
        wait_ms = r->waits >= 5 ? POOL_WAIT_MAX_MS
                                : (int64_t)POOL_WAIT_FIRST_MS << r->waits;
        if (wait_ms > POOL_WAIT_MAX_MS) wait_ms = POOL_WAIT_MAX_MS;
        goto finish;
    }
    if (!d || spec_to_train(&spec, d, &tp, &err)) goto finish;
    backoff b = {0};
    int rc;
    do rc = store_checkpoint_get(db, r->id, "latest", &ck, &ck_len, &ck_step,
                                 &err);
    while (pool_retry(p, &b, rc, POOL_RETRY_BUDGET_MS, r->id, &err));
    if (rc == STORE_UNAVAILABLE) requeue = 1;
    if (rc < 0) goto finish;
    if (rc == 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "resuming at step %u", ck_step);
        log_run(r->id, "resumed", msg);
    }
    res = calloc(1, sizeof *res);
    if (!res) {
        mn_errf(&err, "out of memory");
        goto finish;
    }
    run_ctx ctx = {.s = s, .db = db, .id = r->id, .batch = tp.batch_size,
                   .last_step = ck_step, .stop_step = ck_step,
                   .periods = tp.periods,
                   .interval_ms = (int64_t)p->a->cfg.checkpoint_interval * 1000,
                   .last_ckpt_ms = mono_ms(), .sweep = r->sweep};
    train_hooks hooks = {&ctx, on_progress, on_period, on_stop, &s->stop,
                         p->threads};
    atomic_store(&s->step, ck_step);
    if (train_run(&tp, d, ck, ck_len, &hooks, res, &err)) {
        requeue = ctx.unavailable;   /* the store, not the run, failed */
        goto finish;
    }
    if (res->stopped == TRAIN_SHUTDOWN) {
        requeue = 1;
    } else if (res->stopped == TRAIN_LOST) {
        /* its lease went to another node: nothing more of it is ours */
        log_run(r->id, "lost", "its lease expired; another node has it");
        goto done;
    } else if (res->stopped == TRAIN_CANCEL) {
        status = RUN_CANCELLED;
        stopped_at = ctx.stop_step;
        err.msg[0] = 0;
    } else if (res->stopped == TRAIN_PRUNE) {
        /* the reason goes where a run's end is explained: its error */
        status = RUN_PRUNED;
        stopped_at = ctx.stop_step;
        snprintf(err.msg, sizeof err.msg, "pruned: %s", ctx.prune_why);
    } else {
        status = RUN_SUCCEEDED;
        err.msg[0] = 0;
    }
finish:
    if (!requeue && !wait[0]) {
        mn_err ferr = {{0}};
        backoff fb = {0};
        int fr;
        do fr = store_run_finish(db, r->id, status,
                                 err.msg[0] ? err.msg : NULL, stopped_at,
                                 &ferr);
        while (pool_retry(p, &fb, fr, POOL_RETRY_BUDGET_MS, r->id, &ferr));
        if (fr == STORE_UNAVAILABLE) {
            requeue = 1;   /* it ends again from its checkpoint */
            err = ferr;
        } else {
            if (fr < 0)
                log_error("finish_failed", r->id, ferr.msg);
            else if (retain_checkpoints(db, r->id, status, &ferr))
                log_error("retain_failed", r->id, ferr.msg);
            log_run(r->id, run_status_name(status),
                    err.msg[0] ? err.msg : NULL);
            ev_end(p->a->events, r->id, status, err.msg[0] ? err.msg : NULL);
            if (r->sweep && fr == 0)
                sweeper_notify(p->a->sweeps);   /* the next trial */
        }
    }
    if (wait[0]) {
        run_put_back(p, db, r->id, wait, app_now_ms() + wait_ms);
    } else if (requeue) {
        int stopping = res && res->stopped == TRAIN_SHUTDOWN;
        if (!stopping)
            snprintf(wait, sizeof wait, "store unavailable: %s", err.msg);
        run_put_back(p, db, r->id, stopping ? NULL : wait,
                     stopping ? 0 : app_now_ms() + POOL_WAIT_FIRST_MS);
    }
done:
    if (res) train_result_free(res);
    free(res);
    free(ck);
    dsreg_put(p->a->datasets, d);
    json_decref(params);
}

/* 1 when a cancel was accepted for run id before a worker put it in a
 * slot (pool_cancel's pending list), taking it off the list; 0 otherwise.
 * Caller holds p->mu. */
static int take_pending(pool *p, int64_t id)
{
    for (unsigned i = 0; i < p->n_pending; i++)
        if (p->pending[i] == id) {
            p->pending[i] = p->pending[--p->n_pending];
            return 1;
        }
    return 0;
}

static void *worker(void *arg)
{
    slot *s = arg;
    pool *p = s->p;
    mn_err err = {{0}};
    store *db = NULL;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int quit = p->quit, have_node = p->have_node;
        pthread_mutex_unlock(&p->mu);
        if (quit) break;
        if (!db && have_node && !(db = app_db_acquire(p->a, &err))) {
            log_error("worker_store_open_failed", 0, err.msg);
        }
        store_run r = {0};
        /* no claim before the node has its name (pool_set_node) */
        int rc = !have_node ? STORE_NOT_FOUND
                 : db ? store_run_claim(db, p->a->node_name,
                                        p->a->cfg.lease_seconds, &r, &err)
                      : -1;
        if (rc == 0) {
            pthread_mutex_lock(&p->mu);
            int cancelled = take_pending(p, r.id);
            if (p->quit) {
                /* claimed during shutdown: put it straight back, unless a
                 * cancel was accepted for it (then it ends cancelled) */
                pthread_mutex_unlock(&p->mu);
                if (cancelled) {
                    if (store_run_finish(db, r.id, RUN_CANCELLED, NULL, 0,
                                         &err) < 0)
                        log_error("finish_failed", r.id, err.msg);
                    log_run(r.id, "cancelled", NULL);
                    ev_end(p->a->events, r.id, RUN_CANCELLED, NULL);
                    if (r.sweep) sweeper_notify(p->a->sweeps);
                } else {
                    run_put_back(p, db, r.id, NULL, 0);
                }
                store_run_free(&r);
                break;
            }
            atomic_store(&s->stop, cancelled ? TRAIN_CANCEL : TRAIN_RUN);
            atomic_store(&s->step, 0);
            atomic_store(&s->period, 0);
            atomic_store(&s->run_id, r.id);
            pthread_mutex_unlock(&p->mu);
            log_run(r.id, "started", NULL);
            run_one(s, db, &r);
            atomic_store(&s->run_id, 0);
            store_run_free(&r);
            continue;
        }
        if (rc < 0) log_error("worker_claim_failed", 0, err.msg);
        /* nothing queued: sleep until notified, or one second */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_mutex_lock(&p->mu);
        if (!p->quit) pthread_cond_timedwait(&p->cv, &p->mu, &until);
        pthread_mutex_unlock(&p->mu);
    }
    app_db_release(p->a, db);
    return NULL;
}

pool *pool_start(app *a, unsigned n, mn_err *err)
{
    pool *p = calloc(1, sizeof *p);
    if (!p) {
        mn_errf(err, "out of memory");
        return NULL;
    }
    p->a = a;
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->quit_cv, NULL);
    p->have_node = a->node_name[0] != 0;
#ifdef MNISTD_TESTING
    const char *crash = getenv("MNISTD_TEST_CRASH_AT_STEP");
    p->crash_at = crash ? (uint32_t)strtoul(crash, NULL, 10) : 0;
#endif
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->threads = train_threads_new(cores > 0 ? (unsigned)cores : 1, err);
    if (!p->threads) {
        pool_stop(p);
        return NULL;
    }
    p->slots = calloc(n, sizeof *p->slots);
    if (!p->slots) {
        pool_stop(p);
        mn_errf(err, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        slot *s = &p->slots[i];
        s->p = p;
        if (pthread_create(&s->thread, NULL, worker, s) != 0) {
            pool_stop(p);
            mn_errf(err, "cannot start worker thread %u", i);
            return NULL;
        }
        s->started = 1;
    }
    return p;
}

void pool_set_node(pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->have_node = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pool_notify(pool *p)
{
    pthread_mutex_lock(&p->mu);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pool_notify_all(pool *p)
{
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int pool_cancel_local(pool *p, int64_t id)
{
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->n; i++)
        if (atomic_load(&p->slots[i].run_id) == id) {
            /* a shutdown or prune already raised stays what it is */
            int running = TRAIN_RUN;
            atomic_compare_exchange_strong(&p->slots[i].stop, &running,
                                           TRAIN_CANCEL);
            found = 1;
        }
    pthread_mutex_unlock(&p->mu);
    return found;
}

unsigned pool_live_runs(pool *p, pool_live *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->n && n < max; i++) {
        slot *s = &p->slots[i];
        int64_t id = atomic_load(&s->run_id);
        if (!id) continue;
        out[n].run = id;
        out[n].step = atomic_load_explicit(&s->step, memory_order_relaxed);
        out[n].period = atomic_load_explicit(&s->period,
                                             memory_order_relaxed);
        n++;
    }
    return n;
}

int pool_cancel(pool *p, int64_t id)
{
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->n; i++)
        if (atomic_load(&p->slots[i].run_id) == id) {
            atomic_store(&p->slots[i].stop, TRAIN_CANCEL);
            found = 1;
        }
    if (!found) {
        /* a run claimed but not yet in a slot (or one that just ended, whose
         * entry then goes stale: ids are never reused, so the oldest entry
         * gives way when the list is full) */
        if (p->n_pending == POOL_PENDING_MAX) {
            memmove(p->pending, p->pending + 1,
                    sizeof p->pending[0] * (POOL_PENDING_MAX - 1));
            p->n_pending--;
        }
        p->pending[p->n_pending++] = id;
        found = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

int pool_progress(pool *p, int64_t id, uint32_t *step, uint32_t *period)
{
    for (unsigned i = 0; i < p->n; i++) {
        slot *s = &p->slots[i];
        if (atomic_load(&s->run_id) == id) {
            *step = atomic_load_explicit(&s->step, memory_order_relaxed);
            *period = atomic_load_explicit(&s->period, memory_order_relaxed);
            return 1;
        }
    }
    return 0;
}

void pool_fence(pool *p, store *db, const char *node)
{
    for (unsigned i = 0; i < p->n; i++) {
        slot *s = &p->slots[i];
        int64_t id = atomic_load(&s->run_id);
        if (!id) continue;
        mn_err err = {{0}};
        if (store_run_held(db, id, node, &err) != 0) continue; /* held, or
                                                   unknown: try next beat */
        /* under the lock that a worker fills its slot under: the slot
         * still trains run id, not a run claimed since */
        pthread_mutex_lock(&p->mu);
        int running = TRAIN_RUN;
        if (atomic_load(&s->run_id) == id)
            atomic_compare_exchange_strong(&s->stop, &running, TRAIN_LOST);
        pthread_mutex_unlock(&p->mu);
    }
}

unsigned pool_busy(pool *p)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->n; i++) n += atomic_load(&p->slots[i].run_id) != 0;
    return n;
}

void pool_drain(pool *p)
{
    if (!p || p->drained) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    /* a cancel already raised wins: that run ends cancelled, not requeued */
    for (unsigned i = 0; p->slots && i < p->n; i++) {
        int running = TRAIN_RUN;
        atomic_compare_exchange_strong(&p->slots[i].stop, &running,
                                       TRAIN_SHUTDOWN);
    }
    pthread_cond_broadcast(&p->cv);
    pthread_cond_broadcast(&p->quit_cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; p->slots && i < p->n; i++)
        if (p->slots[i].started) pthread_join(p->slots[i].thread, NULL);
    p->drained = 1;
}

void pool_stop(pool *p)
{
    if (!p) return;
    pool_drain(p);
    pthread_cond_destroy(&p->quit_cv);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    train_threads_free(p->threads);
    free(p->slots);
    free(p);
}
