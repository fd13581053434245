/* bench_claim.c: the run queue under contention, on PostgreSQL. For each
 * worker count N (8, 32 and 64 unless given), N simulated workers (threads,
 * each with its own store connection, each registered as a node of one
 * worker) claim, heartbeat and finish empty runs through the store's own
 * functions until the queue is empty: a fresh schema per N holding RUNS
 * queued runs. Each claimed run costs what a node's second costs the
 * database at most: store_run_claim (with a lease), store_node_heartbeat
 * (renewing that lease), store_lease_reap (as the heartbeat thread does
 * every second, server/jobs/heartbeat.c) and store_run_finish.
 *
 *   bench_claim URI [N...]     URI: a PostgreSQL URI (make bench passes the
 *                              throwaway server of scripts/pg-temp.sh)
 *
 * Prints one line per figure: name, value, unit (parsed by
 * scripts/bench.sh), for each N:
 *   claim_per_s_wN          claims per second, first claim to last finish
 *                           (each claim's run heartbeated and finished)
 *   claim_p50_ms_wN, claim_p99_ms_wN
 *                           the time of one store_run_claim call
 *   claim_duplicates_wN     claims of a run that another claim had already
 *                           taken, counted in the process (a counter per
 *                           run id, and finishes refused as already ended)
 *                           and again in the database (runs whose attempts
 *                           are not 1): must be 0
 *   claim_unfinished_wN     runs not `succeeded` at the end, plus claims,
 *                           heartbeats, reaps or finishes that failed:
 *                           must be 0
 * Exits 1 when the database cannot be used. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store/store.h"

enum { RUNS = 3000 };
#define LEASE_S 10.0   /* the default --lease-seconds */

typedef struct round_state {
    const char *uri;              /* the schema's URI (borrowed) */
    int64_t first_id;             /* ids of the queued runs: first_id.. */
    atomic_uint *claims;          /* [RUNS] claims of each run */
    pthread_mutex_t mu;           /* guards go */
    pthread_cond_t cv;
    int go;                       /* 1: start, -1: give up (no start) */
} round_state;

typedef struct worker {
    round_state *r;
    int index;
    long claims, failures;        /* claims; failed claims and finishes */
    long duplicates;              /* claims of a run already claimed */
    double *lat_ms;               /* [RUNS] store_run_claim times, ms */
    size_t n_lat;
    double t_start, t_end;        /* CLOCK_MONOTONIC, s */
    int open_failed;
    mn_err err;                   /* the first failure's reason */
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs sql on a new connection to uri; the first row's first column as a
 * number into *value when value is non-NULL. 0, or -1 with err set. */
static int pg_exec(const char *uri, const char *sql, long *value, mn_err *err)
{
    int rc = -1;
    PGresult *res = NULL;
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK) {
        mn_errf(err, "bench_claim: %s", PQerrorMessage(c));
        goto done;
    }
    res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        mn_errf(err, "bench_claim: %s: %s", sql, PQerrorMessage(c));
        goto done;
    }
    if (value) *value = PQntuples(res) > 0 ? atol(PQgetvalue(res, 0, 0)) : -1;
    rc = 0;
done:
    PQclear(res);
    PQfinish(c);
    return rc;
}

/* One simulated worker: claim, heartbeat, reap, finish until the queue is
 * empty. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    round_state *r = w->r;
    store *s = NULL;
    char node[32];
    snprintf(node, sizeof node, "bench-%d", w->index);
    if (store_open(&s, r->uri, &w->err) ||
        store_node_register(s, node, 1, &w->err))
        w->open_failed = 1;
    pthread_mutex_lock(&r->mu);
    while (!r->go) pthread_cond_wait(&r->cv, &r->mu);
    int go = r->go;
    pthread_mutex_unlock(&r->mu);
    if (w->open_failed || go < 0) {
        store_close(s);
        return NULL;
    }
    w->t_start = now_s();
    for (;;) {
        store_run run;
        mn_err err = {{0}};
        double t0 = now_s();
        int rc = store_run_claim(s, node, LEASE_S, &run, &err);
        double t1 = now_s();
        if (rc == STORE_NOT_FOUND) break;
        if (rc) {
            if (!w->failures++) w->err = err;
            continue;
        }
        w->lat_ms[w->n_lat++ % RUNS] = (t1 - t0) * 1e3;
        w->claims++;
        int64_t k = run.id - r->first_id;
        if (k >= 0 && k < RUNS && atomic_fetch_add(&r->claims[k], 1) > 0)
            w->duplicates++;
        rc = store_node_heartbeat(s, node, 1, LEASE_S, &err);
        if (rc == 0) rc = store_lease_reap(s, 3, NULL, &err);
        if (rc && !w->failures++) w->err = err;
        rc = store_run_finish(s, run.id, RUN_SUCCEEDED, NULL, 0, &err);
        /* a run finished twice is a duplicate claim, also counted above */
        if (rc == STORE_CONFLICT) w->duplicates++;
        else if (rc && !w->failures++) w->err = err;
        store_run_free(&run);
    }
    w->t_end = now_s();
    store_close(s);
    return NULL;
}

/* One round with n workers in the schema claim_wN of base_uri. Prints its
 * figures. 0, or -1 with err set. */
static int bench_round(const char *base_uri, int n, mn_err *err)
{
    int rc = -1;
    char schema[32], uri[1024], sql[256];
    store *s = NULL;
    worker *w = calloc((size_t)n, sizeof *w);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    round_state r = {.uri = uri, .claims = calloc(RUNS, sizeof(atomic_uint)),
                     .mu = PTHREAD_MUTEX_INITIALIZER,
                     .cv = PTHREAD_COND_INITIALIZER};
    int started = 0;
    double *lat = NULL;

    if (!w || !th || !r.claims) {
        mn_errf(err, "bench_claim: out of memory");
        goto done;
    }
    snprintf(schema, sizeof schema, "claim_w%d", n);
    snprintf(sql, sizeof sql,
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s"
             " CASCADE; CREATE SCHEMA %s", schema, schema);
    if (pg_exec(base_uri, sql, NULL, err)) goto done;
    snprintf(uri, sizeof uri, "%s%soptions=-csearch_path%%3D%s", base_uri,
             strchr(base_uri, '?') ? "&" : "?", schema);
    if (store_open(&s, uri, err)) goto done;
    for (int i = 0; i < RUNS; i++) {
        int64_t id;
        if (store_run_create(s, NULL, 0, "linear", "mnist", "{}", 1, 1, NULL,
                             &id, err))
            goto done;
        if (i == 0) r.first_id = id;
    }
    for (int i = 0; i < n; i++) {
        w[i] = (worker){.r = &r, .index = i,
                        .lat_ms = malloc(RUNS * sizeof(double))};
        if (!w[i].lat_ms ||
            pthread_create(&th[i], NULL, worker_main, &w[i])) {
            mn_errf(err, "bench_claim: cannot start worker %d", i);
            goto done;
        }
        started++;
    }
    pthread_mutex_lock(&r.mu);
    r.go = 1;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    started = 0;

    long claims = 0, failures = 0, duplicates = 0;
    double t0 = 0, t1 = 0;
    size_t n_lat = 0;
    for (int i = 0; i < n; i++) {
        if (w[i].open_failed) {
            mn_errf(err, "bench_claim: worker %d: %s", i, w[i].err.msg);
            goto done;
        }
        if (w[i].failures)
            fprintf(stderr, "bench_claim: %d workers: worker %d: %ld failed,"
                    " first: %s\n", n, i, w[i].failures, w[i].err.msg);
        claims += w[i].claims;
        failures += w[i].failures;
        duplicates += w[i].duplicates;
        if (w[i].claims && (t0 == 0 || w[i].t_start < t0)) t0 = w[i].t_start;
        if (w[i].t_end > t1) t1 = w[i].t_end;
        n_lat += w[i].n_lat < RUNS ? w[i].n_lat : RUNS;
    }
    lat = malloc((n_lat ? n_lat : 1) * sizeof *lat);
    if (!lat) {
        mn_errf(err, "bench_claim: out of memory");
        goto done;
    }
    n_lat = 0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < w[i].n_lat && j < RUNS; j++)
            lat[n_lat++] = w[i].lat_ms[j];
    qsort(lat, n_lat, sizeof *lat, cmp_d);

    /* the database's own count: every run succeeded, each claimed once */
    long unfinished = 0, twice = 0;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s.runs WHERE status <> 'succeeded'", schema);
    if (pg_exec(base_uri, sql, &unfinished, err)) goto done;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s.runs WHERE attempts <> 1", schema);
    if (pg_exec(base_uri, sql, &twice, err)) goto done;

    printf("claim_per_s_w%d %.0f claims/s\n", n,
           t1 > t0 ? claims / (t1 - t0) : 0.0);
    printf("claim_p50_ms_w%d %.2f ms\n", n, n_lat ? lat[n_lat / 2] : 0.0);
    printf("claim_p99_ms_w%d %.2f ms\n", n,
           n_lat ? lat[(size_t)(n_lat * 0.99)] : 0.0);
    printf("claim_duplicates_w%d %ld count\n", n, duplicates + twice);
    printf("claim_unfinished_w%d %ld count\n", n,
           unfinished + failures + (RUNS - claims > 0 ? RUNS - claims : 0));
    fflush(stdout);
    rc = 0;
done:
    if (started) { /* a worker could not start: the others give up */
        pthread_mutex_lock(&r.mu);
        r.go = -1;
        pthread_cond_broadcast(&r.cv);
        pthread_mutex_unlock(&r.mu);
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    }
    free(lat);
    for (int i = 0; w && i < n; i++) free(w[i].lat_ms);
    store_close(s);
    free(r.claims);
    free(th);
    free(w);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_claim POSTGRESQL-URI [WORKERS...]\n");
        return 2;
    }
    static const int def[] = {8, 32, 64};
    int n_counts = argc > 2 ? argc - 2 : 3;
    for (int i = 0; i < n_counts; i++) {
        int n = argc > 2 ? atoi(argv[i + 2]) : def[i];
        if (n < 1 || n > 1000) {
            fprintf(stderr, "bench_claim: workers: 1..1000, not %s\n",
                    argv[i + 2]);
            return 2;
        }
        mn_err err = {{0}};
        if (bench_round(argv[1], n, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    }
    return 0;
}
