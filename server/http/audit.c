/* audit.c: audit lines for the requests that change state (see audit.h). */
#include "server/http/audit.h"

#include <stdint.h>
#include <string.h>

#include "server/app.h"
#include "server/http/routes.h"
#include "server/telemetry/log.h"

/* The handlers of POST routes that change no state: inference, in each
 * protocol (/predict, v2 infer, TF Serving predict; with a version or a
 * label too). */
static const http_handler audit_safe_handlers[] = {
    predict_post,
    v2_infer,
    tfs_predict,
};

/* The collections of the route table, by the name of their path segment,
 * with the singular that names one of them in an audit line's resource.
 * A new collection is one line. */
static const struct {
    const char *segment;
    const char *resource;
} audit_collections[] = {
    {"runs", "run"},
    {"datasets", "dataset"},
    {"examples", "example"},
    {"models", "model"},
    {"versions", "version"},
    {"aliases", "alias"},
    {"labels", "label"},
    {"sweeps", "sweep"},
};
#define N_COLLECTIONS (sizeof audit_collections / sizeof audit_collections[0])

int audit_wanted(const route *rt, const char *method, unsigned status)
{
    if (!rt || status < 200 || status > 299) return 0;
    for (size_t i = 0;
         i < sizeof audit_safe_handlers / sizeof audit_safe_handlers[0]; i++)
        if (rt->fn == audit_safe_handlers[i]) return 0;
    static const char *const safe_methods[] = {"GET", "HEAD", "OPTIONS",
                                               "TRACE"};
    for (size_t i = 0; i < sizeof safe_methods / sizeof safe_methods[0]; i++)
        if (!strcmp(method, safe_methods[i])) return 0;
    return 1;
}

json_t *audit_resource(const char *path)
{
    json_t *o = json_object();
    const char *key = NULL;     /* the collection the last segment named */
    for (const char *p = path; o && *p;) {
        while (*p == '/' || *p == ':') p++;
        size_t n = strcspn(p, "/:");
        if (n == 0) break;
        char seg[80];
        size_t keep = n < sizeof seg ? n : sizeof seg - 1;
        memcpy(seg, p, keep);
        seg[keep] = 0;
        p += n;
        if (key) {
            json_t *v = json_string(seg);
            if (!v || json_object_set_new(o, key, v)) {
                json_decref(o);
                return NULL;
            }
            key = NULL;
            continue;
        }
        for (size_t i = 0; i < N_COLLECTIONS && !key; i++)
            if (!strcmp(seg, audit_collections[i].segment))
                key = audit_collections[i].resource;
    }
    return o;
}

void audit_log(const route *rt, const char *method, const char *path,
               const char *location, unsigned status, const char *user,
               const char *client)
{
    json_t *res = audit_resource(location ? location : path);
    if (!res) res = json_null();    /* a name that is not UTF-8 */
    log_json(json_pack("{s:I, s:s, s:s?, s:s?, s:s, s:s, s:s?, s:i, s:o}",
                       "ts", (json_int_t)app_now_ms(), "event", "audit",
                       "user", user, "client", client, "method", method,
                       "route", rt->pattern, "path", path, "status",
                       (int)status, "resource", res));
}
