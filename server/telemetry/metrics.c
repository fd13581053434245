/* metrics.c: lock-free counters and their Prometheus text rendering. */
#include "server/telemetry/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MET_STATUS_SLOTS 12     /* distinct statuses kept per route */
#define MET_BUCKETS 10

static const double met_bounds[MET_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005,
                                               0.01,   0.025, 0.05,   0.1,
                                               0.5,    2.5};

typedef struct met_route {
    atomic_uint status[MET_STATUS_SLOTS]; /* 0 = free slot */
    atomic_ullong count[MET_STATUS_SLOTS];
} met_route;

struct metrics {
    size_t n_routes;
    met_route *routes;                    /* [n_routes + 1] */
    atomic_ullong bucket[MET_BUCKETS + 1];/* last = +Inf */
    atomic_ullong lat_count;
    _Atomic double lat_sum;
    atomic_ullong samples;
    _Atomic double train_seconds;
};

metrics *metrics_new(size_t n_routes)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n_routes = n_routes;
    m->routes = calloc(n_routes + 1, sizeof *m->routes);
    if (!m->routes) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics *m)
{
    if (!m) return;
    free(m->routes);
    free(m);
}

static void add_double(_Atomic double *a, double x)
{
    double cur = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &cur, cur + x,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void metrics_request(metrics *m, size_t route, unsigned status,
                     double seconds)
{
    if (route > m->n_routes) route = m->n_routes;
    met_route *r = &m->routes[route];
    for (int i = 0; i < MET_STATUS_SLOTS; i++) {
        unsigned s = atomic_load_explicit(&r->status[i], memory_order_acquire);
        if (s == 0) {
            unsigned zero = 0;
            if (!atomic_compare_exchange_strong(&r->status[i], &zero, status) &&
                zero != status)
                continue; /* another status took the slot */
            s = status;
        }
        if (s == status) {
            atomic_fetch_add_explicit(&r->count[i], 1, memory_order_relaxed);
            break;
        }
    }
    int b = 0;
    while (b < MET_BUCKETS && seconds > met_bounds[b]) b++;
    atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->lat_count, 1, memory_order_relaxed);
    add_double(&m->lat_sum, seconds);
}

void metrics_samples(metrics *m, uint64_t samples, double seconds)
{
    atomic_fetch_add_explicit(&m->samples, samples, memory_order_relaxed);
    add_double(&m->train_seconds, seconds);
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void out(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

char *metrics_render(metrics *m, const char *(*route_name)(size_t),
                     int64_t queued, unsigned busy,
                     const int64_t runs_by_status[RUN_N_STATUSES],
                     int64_t nodes, int64_t nodes_live)
{
    sbuf b = {malloc(4096), 0, 4096, 0};
    if (!b.p) return NULL;
    out(&b, "# HELP mnistd_http_requests_total HTTP requests by route and status.\n"
            "# TYPE mnistd_http_requests_total counter\n");
    for (size_t r = 0; r <= m->n_routes; r++)
        for (int i = 0; i < MET_STATUS_SLOTS; i++) {
            unsigned s = atomic_load(&m->routes[r].status[i]);
            if (!s) break;
            out(&b, "mnistd_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                r < m->n_routes ? route_name(r) : "unmatched", s,
                (unsigned long long)atomic_load(&m->routes[r].count[i]));
        }
    out(&b, "# HELP mnistd_http_request_duration_seconds Request latency.\n"
            "# TYPE mnistd_http_request_duration_seconds histogram\n");
    unsigned long long cum = 0;
    for (int i = 0; i <= MET_BUCKETS; i++) {
        cum += atomic_load(&m->bucket[i]);
        if (i < MET_BUCKETS)
            out(&b, "mnistd_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                met_bounds[i], cum);
        else
            out(&b, "mnistd_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                cum);
    }
    out(&b, "mnistd_http_request_duration_seconds_sum %.6f\n"
            "mnistd_http_request_duration_seconds_count %llu\n",
        atomic_load(&m->lat_sum), (unsigned long long)atomic_load(&m->lat_count));
    double secs = atomic_load(&m->train_seconds);
    unsigned long long samples = atomic_load(&m->samples);
    out(&b, "# HELP mnistd_training_samples_total Training examples processed "
            "(counted at period ends).\n# TYPE mnistd_training_samples_total counter\n"
            "mnistd_training_samples_total %llu\n"
            "# HELP mnistd_training_samples_per_second Mean training throughput "
            "per worker since start.\n# TYPE mnistd_training_samples_per_second gauge\n"
            "mnistd_training_samples_per_second %.1f\n",
        samples, secs > 0 ? samples / secs : 0.0);
    out(&b, "# HELP mnistd_queue_depth Runs waiting for a worker (of every "
            "node on the database).\n"
            "# TYPE mnistd_queue_depth gauge\nmnistd_queue_depth %lld\n"
            "# HELP mnistd_workers_busy Workers training a run now.\n"
            "# TYPE mnistd_workers_busy gauge\nmnistd_workers_busy %u\n"
            "# HELP mnistd_runs Runs by status.\n# TYPE mnistd_runs gauge\n",
        (long long)queued, busy);
    for (int i = 0; i < RUN_N_STATUSES; i++)
        out(&b, "mnistd_runs{status=\"%s\"} %lld\n",
            run_status_name((run_status)i), (long long)runs_by_status[i]);
    out(&b, "# HELP mnistd_nodes Nodes registered on the database.\n"
            "# TYPE mnistd_nodes gauge\nmnistd_nodes %lld\n"
            "# HELP mnistd_nodes_live Nodes whose heartbeat is within the "
            "lease.\n# TYPE mnistd_nodes_live gauge\nmnistd_nodes_live %lld\n",
        (long long)nodes, (long long)nodes_live);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
