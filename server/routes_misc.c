/* routes_misc.c: GET /healthz and GET /openapi.yaml. */
#include "app.h"
#include "pool.h"
#include "routes.h"

/* Generated at build time from openapi.yaml (scripts/embed-file.sh). */
extern const unsigned char mn_openapi_yaml[];
extern const unsigned long mn_openapi_yaml_len;

enum MHD_Result misc_healthz(http_ctx *c)
{
    return http_json(c, 200,
                     json_pack("{s:s, s:I, s:I, s:I}", "status", "ok",
                               "workers", (json_int_t)c->app->cfg.workers,
                               "training", (json_int_t)pool_busy(c->app->pool),
                               "uptime_seconds",
                               (json_int_t)((app_now_ms() - c->app->started_ms) / 1000)));
}

enum MHD_Result misc_openapi(http_ctx *c)
{
    return http_bytes(c, 200, "application/yaml", mn_openapi_yaml,
                      mn_openapi_yaml_len);
}
