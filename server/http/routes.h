/* routes.h: the route table (routes.c) and the handlers, one file per
 * resource: routes_runs.c, routes_predict.c, routes_datasets.c,
 * routes_misc.c. Handlers reply through http.h and return its result. */
#ifndef MN_ROUTES_H
#define MN_ROUTES_H

#include "engine/nn.h"
#include "server/http/http.h"
#include "server/store/store.h"

extern const route http_routes[];
extern const size_t http_n_routes;

/* routes_runs.c: helpers shared by every /runs/<id>/... handler */

/* A run id path segment: 1..18 digits. Returns 0 if s is not one. */
int64_t runs_parse_id(const char *s);

/* Loads the run named by c->arg into *r (caller frees with
 * store_run_free). Replies 404/503 itself and returns 0 on failure, with
 * the reply's result in *rc. */
int runs_load(http_ctx *c, store_run *r, enum MHD_Result *rc);

/* As runs_load, for the run named by the string name. */
int runs_load_named(http_ctx *c, const char *name, store_run *r,
                    enum MHD_Result *rc);

/* Pins the model of a succeeded run from the model cache (unpin with
 * mcache_put). Replies 409/503 itself and returns NULL otherwise. */
const nn_model *runs_model(http_ctx *c, const store_run *r,
                           enum MHD_Result *rc);

/* routes_runs.c */
enum MHD_Result runs_create(http_ctx *c);
enum MHD_Result runs_list(http_ctx *c);
enum MHD_Result runs_get(http_ctx *c);
enum MHD_Result runs_delete(http_ctx *c);
enum MHD_Result runs_cancel(http_ctx *c);
enum MHD_Result runs_resume(http_ctx *c);
enum MHD_Result runs_confusion(http_ctx *c);
enum MHD_Result runs_evaluate(http_ctx *c);
enum MHD_Result runs_weights(http_ctx *c);

/* routes_events.c: GET /runs/{id}/events (SSE); events_poll is the
 * hub's ev_poll_fn (ctx: the app) */
enum MHD_Result events_get(http_ctx *c);
int events_poll(void *ctx, int64_t id, char status[12], char **error);

/* routes_static.c: the dashboard, GET / and GET /static/{name} */
enum MHD_Result static_index(http_ctx *c);
enum MHD_Result static_file(http_ctx *c);

/* routes_predict.c */
enum MHD_Result predict_post(http_ctx *c);

/* routes_datasets.c */
enum MHD_Result datasets_list(http_ctx *c);
enum MHD_Result datasets_get(http_ctx *c);
enum MHD_Result datasets_upload(http_ctx *c);

/* routes_pictures.c */
enum MHD_Result pictures_confusion(http_ctx *c);
enum MHD_Result pictures_weights(http_ctx *c);
enum MHD_Result pictures_loss(http_ctx *c);
enum MHD_Result pictures_example(http_ctx *c);

/* routes_misc.c */
enum MHD_Result misc_healthz(http_ctx *c);
enum MHD_Result misc_openapi(http_ctx *c);
enum MHD_Result misc_metrics(http_ctx *c);

#endif
