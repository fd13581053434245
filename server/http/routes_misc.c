/* routes_misc.c: GET /healthz, GET /openapi.yaml, GET /metrics and GET
 * /me. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/http/embedded.h"
#include "server/telemetry/metrics.h"
#include "server/jobs/pool.h"
#include "server/http/routes.h"
#include "server/store/store.h"


/* Liveness and readiness: 200 with ready true while the node's heartbeat
 * reaches the database (heartbeat.h: at most a second old), else 503 with
 * the same body and ready false, so that a load balancer's health check
 * takes the node out until the database is back. */
enum MHD_Result misc_healthz(http_ctx *c)
{
    int ready = atomic_load(&c->app->store_ready);
    return http_json(c, ready ? 200 : 503,
                     json_pack("{s:s, s:b, s:s, s:I, s:I, s:I}", "status", "ok",
                               "ready", ready, "node", app_node_name(c->app),
                               "workers", (json_int_t)c->app->cfg.workers,
                               "training", (json_int_t)pool_busy(c->app->pool),
                               "uptime_seconds",
                               (json_int_t)((app_now_ms() - c->app->started_ms) / 1000)));
}

enum MHD_Result misc_openapi(http_ctx *c)
{
    const mn_embedded *f = embedded_find(mn_doc_files, mn_doc_files_count,
                                         "openapi.yaml");
    if (!f) return http_error(c, 404, "not_found", "no OpenAPI document");
    return http_bytes(c, 200, "application/yaml", f->data, f->len);
}

static const char *route_name(size_t i)
{
    return http_routes[i].name ? http_routes[i].name : http_routes[i].pattern;
}

enum MHD_Result misc_metrics(http_ctx *c)
{
    enum MHD_Result rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    int64_t by_status[RUN_N_STATUSES];
    mn_err err = {{0}};
    for (int i = 0; i < RUN_N_STATUSES; i++) {
        int s = store_run_count(db, run_status_name((run_status)i),
                                &by_status[i], &err);
        if (s) return http_store_error(c, s, &err, NULL, NULL);
    }
    int64_t nodes = 0, live = 0;
    int s = nodes_count(c, db, &nodes, &live, &err);
    if (s) return http_store_error(c, s, &err, NULL, NULL);
    char *text = metrics_render(c->app->metrics, route_name,
                                by_status[RUN_QUEUED],
                                pool_busy(c->app->pool), by_status, nodes,
                                live);
    if (!text) return http_error(c, 503, "out_of_memory", "cannot render metrics");
    rc = http_bytes(c, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
    return rc;
}

/* GET /me: who the request acts as (auth.h): {"name", "admin"}; name is
 * null and admin true when no user exists and no --token is set. */
enum MHD_Result misc_me(http_ctx *c)
{
    const http_req *r = c->req;
    json_t *name = r->user[0] ? json_string(r->user) : json_null();
    return http_json(c, 200, json_pack("{s:o, s:b}", "name", name, "admin",
                                       r->role != AUTH_USER));
}
