/* heartbeat.c: a node's heartbeat thread (design in heartbeat.h). */
#include "server/jobs/heartbeat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "server/app.h"
#include "server/jobs/pool.h"
#include "server/store/store.h"
#include "server/telemetry/log.h"

struct heartbeat {
    struct app *a;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit;                   /* under mu */
};

/* One beat over *db (opened on the first beat that can). Returns 1 when
 * the database answered. */
static int beat(heartbeat *h, store **db)
{
    struct app *a = h->a;
    mn_err err = {{0}};
    if (!*db && !(*db = app_db_acquire(a, &err))) {
        log_error("heartbeat_store_open_failed", 0, err.msg);
        return 0;
    }
    int busy = a->pool ? (int)pool_busy(a->pool) : 0;
    int r = store_node_heartbeat(*db, a->node_name, busy,
                                 (double)a->cfg.lease_seconds, &err);
    if (r == STORE_NOT_FOUND) {
        /* our row is gone (deleted by hand, or a leave under our name):
         * register again; the leases renew at the next beat */
        r = store_node_register(*db, a->node_name, (int)a->cfg.workers, &err);
    }
    /* a lease this node could not renew in time is another node's now */
    if (r == 0 && a->pool) pool_fence(a->pool, *db, a->node_name);
    if (r == 0) {
        int n = 0;
        r = store_lease_reap(*db, HEARTBEAT_MAX_CRASHES, &n, &err);
        if (r == 0 && n > 0) {
            fprintf(stderr, "mnistd: %d run(s) of dead nodes queued again to "
                    "resume (their lease expired)\n", n);
            if (a->pool) pool_notify_all(a->pool);
        }
    }
    if (r == 0) {
        r = store_node_forget(*db, app_now_ms() - HEARTBEAT_FORGET_MS, NULL,
                              &err);
    }
    if (r) {
        /* the connection stays: a PostgreSQL one re-opens itself on the
         * next call once the server is back (store.h) */
        log_error("heartbeat_failed", 0, err.msg);
        return 0;
    }
    return 1;
}

static void *heartbeat_main(void *arg)
{
    heartbeat *h = arg;
    store *db = NULL;
    for (;;) {
        atomic_store(&h->a->store_ready, beat(h, &db));
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += HEARTBEAT_MS / 1000;
        until.tv_nsec += (long)(HEARTBEAT_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&h->mu);
        if (!h->quit) pthread_cond_timedwait(&h->cv, &h->mu, &until);
        int quit = h->quit;
        pthread_mutex_unlock(&h->mu);
        if (quit) break;
    }
    app_db_release(h->a, db);
    return NULL;
}

heartbeat *heartbeat_start(struct app *a, mn_err *err)
{
    heartbeat *h = calloc(1, sizeof *h);
    if (!h) {
        mn_errf(err, "out of memory");
        return NULL;
    }
    h->a = a;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, heartbeat_main, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        mn_errf(err, "cannot start the heartbeat thread");
        return NULL;
    }
    return h;
}

void heartbeat_stop(heartbeat *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    h->quit = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
