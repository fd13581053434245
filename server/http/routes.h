/* routes.h: the route table (routes.c) and the handlers, one file per
 * resource: routes_runs.c, routes_predict.c, routes_datasets.c,
 * routes_misc.c. Handlers reply through http.h and return its result. */
#ifndef MN_ROUTES_H
#define MN_ROUTES_H

#include "engine/model.h"
#include "engine/wsnap.h"
#include "server/http/http.h"
#include "server/jobs/events.h"
#include "server/serving/infer.h"
#include "server/store/store.h"

extern const route http_routes[];
extern const size_t http_n_routes;

/* routes_runs.c: helpers shared by every /runs/<id>/... handler */

/* The inference core's sources for this request: the app's model cache
 * and the request's store connection (http_db). */
infer_src runs_infer_src(http_ctx *c);

/* The HTTP status of an inference core error st (not INFER_OK) and its
 * error code (*code, static), as runs_infer_error replies them. */
unsigned runs_infer_http(infer_status st, const char **code);

/* Replies to an inference core error st (not INFER_OK) with err's
 * message: 404 not_found, 409 no_model / run_not_succeeded /
 * shape_mismatch, 503 unavailable / store_error / model_unavailable /
 * out_of_memory. */
enum MHD_Result runs_infer_error(http_ctx *c, infer_status st,
                                 const mn_err *err);

/* Loads the run named by c->arg into *r (caller frees with
 * store_run_free). Replies 404/503 itself and returns 0 on failure, with
 * the reply's result in *rc. */
int runs_load(http_ctx *c, store_run *r, enum MHD_Result *rc);

/* Pins the model of a succeeded run from the model cache (unpin with
 * mcache_put). Replies 409/503 itself and returns NULL otherwise. */
const model *runs_model(http_ctx *c, const store_run *r,
                        enum MHD_Result *rc);

/* The ?layer= query (default 0) of the weights routes, checked in two
 * steps: with m NULL, that it is an integer in 0..MODEL_MAX_LAYERS (before
 * the run is loaded); with m, that m has that layer. Returns 1 with
 * *layer set; else replies 400 bad_query, its message ending in note
 * (may be ""), and returns 0 with the reply's result in *rc. */
int runs_layer(http_ctx *c, const model *m, const char *note,
               long *layer, enum MHD_Result *rc);

/* routes_snapshots.c: ?period= of the weights routes */

/* The ?period= query: *period 0 when absent, else an integer in
 * 1..TRAIN_MAX_PERIODS, with `layer` 0 (snapshots keep layer 0 only).
 * Returns 1; else replies 400 bad_query and returns 0 with the reply's
 * result in *rc. */
int runs_period_query(http_ctx *c, long layer, uint32_t *period,
                      enum MHD_Result *rc);

/* Run r's weight snapshot of `period` (>= 1) into *out (new arrays,
 * wsnap_free) and its step into *step. Returns 1; else replies (400 for
 * a period past the run's last, 404 no_snapshot naming the nearest
 * periods that have one, 503) and returns 0 with the result in *rc. */
int runs_snapshot(http_ctx *c, const store_run *r, uint32_t period,
                  wsnap *out, uint32_t *step, enum MHD_Result *rc);

/* GET /runs/<id>/snapshots: the periods with a weight snapshot, in
 * order, each with its step and size in bytes. */
enum MHD_Result runs_snapshots(http_ctx *c);

/* routes_runs.c */
enum MHD_Result runs_create(http_ctx *c);
enum MHD_Result runs_list(http_ctx *c);
enum MHD_Result runs_get(http_ctx *c);
/* GET /runs/<id>/periods?after=&limit=: a page of the run's history
 * (periods numbered above `after`, at most `limit`, default
 * RUNS_PERIODS_LIMIT_DEFAULT, at most TRAIN_MAX_PERIODS) and `next`, the
 * `after` of the next page or null. */
#define RUNS_PERIODS_LIMIT_DEFAULT 100
enum MHD_Result runs_periods(http_ctx *c);
enum MHD_Result runs_delete(http_ctx *c);
enum MHD_Result runs_cancel(http_ctx *c);
enum MHD_Result runs_resume(http_ctx *c);
enum MHD_Result runs_confusion(http_ctx *c);
enum MHD_Result runs_evaluate(http_ctx *c);
/* GET /runs/<id>/weights: at most RUNS_WEIGHTS_MAX_VALUES weights (a
 * JSON reply of about 8 MB), so that one request cannot build hundreds of
 * MB; a larger layer is 400. */
#define RUNS_WEIGHTS_MAX_VALUES (1 << 19)
enum MHD_Result runs_weights(http_ctx *c);
/* GET /runs/<id>/model.onnx: a succeeded run's model as an ONNX file
 * (server/render/onnx.h), application/onnx. */
enum MHD_Result runs_onnx(http_ctx *c);
/* The same for the run named run (a decimal id): 404 unknown, 409 not
 * succeeded, else the file. */
enum MHD_Result runs_onnx_of(http_ctx *c, const char *run);

/* routes_sweeps.c: hyperparameter searches (jobs/sweep.h) */
enum MHD_Result sweeps_create(http_ctx *c);
enum MHD_Result sweeps_list(http_ctx *c);
enum MHD_Result sweeps_get(http_ctx *c);
enum MHD_Result sweeps_cancel(http_ctx *c);
enum MHD_Result sweeps_delete(http_ctx *c);

/* routes_events.c: GET /runs/{id}/events (SSE); events_poll is the
 * hub's ev_poll_fn (ctx: the app) */
enum MHD_Result events_get(http_ctx *c);
int events_poll(void *ctx, int64_t id, uint32_t after, ev_poll_result *out);

/* routes_static.c: the dashboard, GET / and GET /static/{name} */
enum MHD_Result static_index(http_ctx *c);
enum MHD_Result static_file(http_ctx *c);

/* routes_predict.c */
enum MHD_Result predict_post(http_ctx *c);

/* routes_models.c: named models, versions and aliases */
enum MHD_Result models_create(http_ctx *c);
enum MHD_Result models_list(http_ctx *c);
enum MHD_Result models_get(http_ctx *c);
enum MHD_Result models_delete(http_ctx *c);
enum MHD_Result models_version_add(http_ctx *c);
enum MHD_Result models_alias_put(http_ctx *c);
enum MHD_Result models_alias_delete(http_ctx *c);
/* GET /models/<name>/versions/<v>/model.onnx: that version's run as
 * GET /runs/<id>/model.onnx gives it; 404 for an unknown model or
 * version (mnistd's own error shape). */
enum MHD_Result models_version_onnx(http_ctx *c);

/* The run that serves model c->arg at `version` (a version number as the
 * path writes it; NULL or "": none), else at `alias` (NULL: none), else at
 * its highest version, as infer_resolve_model gives it into run[24] and
 * *v. On failure replies {"error": "<message>"} (the model servers' error
 * shape) with 404 or 503 and returns 0 (*rc: the reply's result). */
int models_target(http_ctx *c, const char *version, const char *alias,
                  char run[24], int64_t *v, enum MHD_Result *rc);

/* The version numbers of model c->arg, oldest first, into *versions (new,
 * caller frees; *n of them). 1, or 0 after replying 503 in the protocols'
 * {"error": "..."} shape (*rc). */
int models_versions(http_ctx *c, int64_t **versions, size_t *n,
                    enum MHD_Result *rc);

/* routes_v2.c: the Open Inference Protocol v2 (KServe, Triton); the
 * model is c->arg, its version c->arg2 ("" for the highest) */
enum MHD_Result v2_server(http_ctx *c);
enum MHD_Result v2_live(http_ctx *c);
enum MHD_Result v2_ready(http_ctx *c);
enum MHD_Result v2_model(http_ctx *c);
enum MHD_Result v2_model_ready(http_ctx *c);
enum MHD_Result v2_infer(http_ctx *c);

/* routes_tfs.c: TensorFlow Serving's REST API; the model is c->arg, its
 * version or label c->arg2 (which one: the route's pattern) */
enum MHD_Result tfs_status(http_ctx *c);
enum MHD_Result tfs_metadata(http_ctx *c);
enum MHD_Result tfs_predict(http_ctx *c);

/* routes_datasets.c */
enum MHD_Result datasets_list(http_ctx *c);
enum MHD_Result datasets_get(http_ctx *c);
enum MHD_Result datasets_upload(http_ctx *c);
enum MHD_Result datasets_delete(http_ctx *c);
enum MHD_Result datasets_patch(http_ctx *c);

/* routes_pictures.c */
enum MHD_Result pictures_confusion(http_ctx *c);
enum MHD_Result pictures_weights(http_ctx *c);
enum MHD_Result pictures_loss(http_ctx *c);
enum MHD_Result pictures_example(http_ctx *c);

/* routes_misc.c */
enum MHD_Result misc_healthz(http_ctx *c);

/* routes_nodes.c: GET /nodes. */
enum MHD_Result nodes_list(http_ctx *c);
/* The cluster's node gauges for /metrics: registered nodes and live
 * ones (heartbeat within the lease), read through db. 0, or a store
 * return code with err. */
int nodes_count(http_ctx *c, struct store *db, int64_t *nodes, int64_t *live,
                mn_err *err);
enum MHD_Result misc_openapi(http_ctx *c);
enum MHD_Result misc_metrics(http_ctx *c);
enum MHD_Result misc_me(http_ctx *c);

#endif
