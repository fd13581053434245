/* signals.c: a node's listener and progress writer (design in
 * signals.h). */
#include "server/jobs/signals.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "server/app.h"
#include "server/jobs/events.h"
#include "server/jobs/pool.h"
#include "server/serving/dsreg.h"
#include "server/serving/mcache.h"
#include "server/store/store.h"
#include "server/telemetry/log.h"

#define SIGNALS_WAIT_MS 200       /* one wait for a signal */
#define SIGNALS_PROGRESS_MS 1000  /* between two progress writes */
#define SIGNALS_NAP_MS 500        /* after the listener failed */

struct signals {
    app *a;
    store *listener;          /* owned; NULL when the backend has none */
    pthread_t thread;
    int started;
    atomic_int quit;
    pool_live *live;          /* [a->cfg.workers], the thread's scratch */
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Acts on one signal (see the table in signals.h). */
static void on_signal(signals *g, const store_signal *sig)
{
    app *a = g->a;
    switch (sig->kind) {
    case STORE_SIG_QUEUED:
        pool_notify(a->pool);
        break;
    case STORE_SIG_CANCEL:
        pool_cancel_local(a->pool, sig->run);
        break;
    case STORE_SIG_DELETED:
        mcache_drop(a->models, sig->run);
        break;
    case STORE_SIG_PERIOD:
        ev_nudge(a->events, sig->run);
        break;
    case STORE_SIG_DATASET_DELETED:
        dsreg_drop(a->datasets, sig->dataset);
        break;
    case STORE_SIG_RESYNC:
        /* deletions made elsewhere meanwhile were not heard */
        mcache_drop_all(a->models);
        pool_notify_all(a->pool);
        ev_nudge(a->events, 0);
        break;
    }
}

/* Writes the live progress of the runs trained here and applies the
 * cancels recorded for them. db: the thread's connection (acquired
 * lazily; *db NULL while the store cannot be opened). */
static void write_progress(signals *g, store **db)
{
    app *a = g->a;
    mn_err err = {{0}};
    unsigned n = pool_live_runs(a->pool, g->live, a->cfg.workers);
    if (n == 0) return;
    if (!*db && !(*db = app_db_acquire(a, &err))) {
        log_error("progress_store_open_failed", 0, err.msg);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        int cancel = 0;
        int r = store_run_progress_put(*db, g->live[i].run, app_node_name(a),
                                       g->live[i].step, g->live[i].period,
                                       &cancel, &err);
        if (r < 0)
            log_error("progress_write_failed", g->live[i].run, err.msg);
        else if (r == 0 && cancel)
            pool_cancel_local(a->pool, g->live[i].run);
    }
}

static void *signals_thread(void *arg)
{
    signals *g = arg;
    store *db = NULL;
    int64_t next_progress = mono_ms() + SIGNALS_PROGRESS_MS;
    while (!atomic_load(&g->quit)) {
        if (g->listener) {
            store_signal sig;
            mn_err err = {{0}};
            int r = store_signal_wait(g->listener, SIGNALS_WAIT_MS, &sig,
                                      &err);
            if (r == 1) {
                on_signal(g, &sig);
            } else if (r < 0) {
                log_error("listener_failed", 0, err.msg);
                nap_ms(SIGNALS_NAP_MS);
            }
        } else {
            nap_ms(SIGNALS_WAIT_MS);
        }
        int64_t now = mono_ms();
        if (now >= next_progress) {
            next_progress = now + SIGNALS_PROGRESS_MS;
            write_progress(g, &db);
        }
    }
    app_db_release(g->a, db);
    return NULL;
}

signals *signals_start(app *a, mn_err *err)
{
    signals *g = calloc(1, sizeof *g);
    if (!g || !(g->live = calloc(a->cfg.workers ? a->cfg.workers : 1,
                                 sizeof *g->live))) {
        free(g);
        mn_errf(err, "out of memory");
        return NULL;
    }
    g->a = a;
    atomic_init(&g->quit, 0);
    if (store_open(&g->listener, a->cfg.db_path, err)) {
        signals_stop(g);
        return NULL;
    }
    int r = store_listen(g->listener, err);
    if (r == STORE_NOT_FOUND) {        /* SQLite: nothing to listen to */
        store_close(g->listener);
        g->listener = NULL;
    } else if (r) {
        signals_stop(g);
        return NULL;
    }
    if (pthread_create(&g->thread, NULL, signals_thread, g) != 0) {
        mn_errf(err, "cannot start the signals thread");
        signals_stop(g);
        return NULL;
    }
    g->started = 1;
    return g;
}

void signals_stop(signals *g)
{
    if (!g) return;
    atomic_store(&g->quit, 1);
    if (g->started) pthread_join(g->thread, NULL);
    store_close(g->listener);
    free(g->live);
    free(g);
}
