/* routes_nodes.c: GET /nodes, the nodes (mnistd processes) that share this
 * node's database, as the store's nodes table holds them (store.h's
 * "nodes and leases"), each with the runs it trains now (a user's own
 * ones only, with users: issue 16). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/http/routes.h"
#include "server/render/enc.h"
#include "server/store/store.h"

/* 1 when node n's heartbeat is within lease_ms of now_ms. */
static int node_alive(const store_node *n, int64_t now_ms, int64_t lease_ms)
{
    return now_ms - n->heartbeat_at <= lease_ms;
}

/* The node object of n with the ids of the running runs among runs[0..nr)
 * that it holds. New reference (NULL: OOM). */
static json_t *node_json(const store_node *n, int alive,
                         const store_run *runs, size_t nr)
{
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < nr; i++) {
        if (strcmp(runs[i].node, n->name) != 0) continue;
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)runs[i].id);
        if (json_array_append_new(ids, json_string(id))) {
            json_decref(ids);
            return NULL;
        }
    }
    if (!ids) return NULL;
    return json_pack("{s:s, s:o, s:o, s:I, s:I, s:b, s:o}", "name", n->name,
                     "started_at", enc_time(n->started_at), "heartbeat_at",
                     enc_time(n->heartbeat_at), "workers",
                     (json_int_t)n->workers, "busy", (json_int_t)n->busy,
                     "alive", alive, "runs", ids);
}

enum MHD_Result nodes_list(http_ctx *c)
{
    enum MHD_Result rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    mn_err err = {{0}};
    store_node *ns = NULL;
    store_run *runs = NULL;
    size_t n = 0, nr = 0;
    int s = store_node_list(db, &ns, &n, &err);
    /* every caller sees every node (its capacity and load); a user sees
     * only its own runs among the ones a node trains (another user's run
     * ids leak nothing, as everywhere), an admin every run */
    if (!s)
        s = store_run_list_owned(db, c->req->role == AUTH_USER ? c->req->user
                                                                : NULL,
                                 "running", NULL, -1, 0, &runs, &nr, NULL,
                                 &err);
    if (s) {
        free(ns);
        return http_store_error(c, s, &err, NULL, NULL);
    }
    /* alive: a heartbeat within this node's lease (the nodes of one
     * service are meant to share --lease-seconds) */
    int64_t now = app_now_ms();
    int64_t lease_ms = (int64_t)c->app->cfg.lease_seconds * 1000;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, node_json(&ns[i],
                                                 node_alive(&ns[i], now,
                                                            lease_ms),
                                                 runs, nr))) {
            json_decref(arr);
            arr = NULL;
        }
    free(ns);
    store_runs_free(runs, nr);
    if (!arr) return http_error(c, 503, "out_of_memory", "cannot list nodes");
    return http_json(c, 200, json_pack("{s:o, s:s, s:I}", "nodes", arr, "self",
                                       app_node_name(c->app), "lease_seconds",
                                       (json_int_t)c->app->cfg.lease_seconds));
}

/* The cluster's gauges for /metrics: registered nodes and live ones
 * (a heartbeat within this node's lease). 0, or a store code with err. */
int nodes_count(http_ctx *c, store *db, int64_t *nodes, int64_t *live,
                mn_err *err)
{
    store_node *ns = NULL;
    size_t n = 0;
    int s = store_node_list(db, &ns, &n, err);
    if (s) return s;
    int64_t now = app_now_ms();
    int64_t lease_ms = (int64_t)c->app->cfg.lease_seconds * 1000;
    *nodes = (int64_t)n;
    *live = 0;
    for (size_t i = 0; i < n; i++) *live += node_alive(&ns[i], now, lease_ms);
    free(ns);
    return 0;
}
