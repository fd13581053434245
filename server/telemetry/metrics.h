/* metrics.h: the service's counters for GET /metrics (Prometheus text
 * format): requests by route and status, a request latency histogram, and
 * the training throughput reported by the worker pool.
 *
 * DESIGN (concurrency): request threads and workers update counters with
 * relaxed atomics (no lock on the request path); the (route, status) table
 * is fixed-size and filled lock-free with compare-and-swap on the status
 * slot. A scrape reads everything without stopping writers, so a scrape is
 * a consistent-enough snapshot, as Prometheus expects.
 *
 * Ownership: one metrics object per app, owned by cmd_serve. */
#ifndef MN_METRICS_H
#define MN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/jobs/run.h"

typedef struct metrics metrics;

/* n_routes: the route table's size (route index n_routes = no route). */
metrics *metrics_new(size_t n_routes);
void metrics_free(metrics *m);

/* Records one finished request: route index, HTTP status, seconds. */
void metrics_request(metrics *m, size_t route, unsigned status,
                     double seconds);

/* Adds trained samples (called by workers once per period). */
void metrics_samples(metrics *m, uint64_t samples, double seconds);

/* Appends the text exposition to a new malloc'd string: the request and
 * training series, plus the given gauges (queue depth and runs by status,
 * indexed by run_status, of the whole database, i.e. of every node
 * sharing it; this node's busy workers; the nodes registered and those
 * alive). route_name(i) names route i. NULL on OOM. */
char *metrics_render(metrics *m, const char *(*route_name)(size_t),
                     int64_t queued, unsigned busy,
                     const int64_t runs_by_status[RUN_N_STATUSES],
                     int64_t nodes, int64_t nodes_live);

#endif
