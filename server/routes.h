/* routes.h: the route table (routes.c) and the handlers, one file per
 * resource: routes_runs.c, routes_predict.c, routes_datasets.c,
 * routes_misc.c. Handlers reply through http.h and return its result. */
#ifndef MN_ROUTES_H
#define MN_ROUTES_H

#include "http.h"

extern const route http_routes[];
extern const size_t http_n_routes;

/* routes_runs.c */
enum MHD_Result runs_create(http_ctx *c);
enum MHD_Result runs_list(http_ctx *c);
enum MHD_Result runs_get(http_ctx *c);
enum MHD_Result runs_delete(http_ctx *c);
enum MHD_Result runs_cancel(http_ctx *c);
enum MHD_Result runs_confusion(http_ctx *c);
enum MHD_Result runs_evaluate(http_ctx *c);
enum MHD_Result runs_weights(http_ctx *c);

/* routes_predict.c */
enum MHD_Result predict_post(http_ctx *c);

/* routes_datasets.c */
enum MHD_Result datasets_list(http_ctx *c);
enum MHD_Result datasets_get(http_ctx *c);
enum MHD_Result datasets_upload(http_ctx *c);

/* routes_misc.c */
enum MHD_Result misc_healthz(http_ctx *c);
enum MHD_Result misc_openapi(http_ctx *c);
enum MHD_Result misc_metrics(http_ctx *c);

#endif
