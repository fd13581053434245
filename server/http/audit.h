/* audit.h: the audit trail: one JSON log line (telemetry/log.h) for every
 * request that changed the service's state, saying who did what to which
 * resource:
 *
 *   {"ts":<ms since the epoch>,"event":"audit","user":"token"|null,
 *    "client":"127.0.0.1","method":"POST","route":"/runs/{}/cancel",
 *    "path":"/runs/12/cancel","status":202,"resource":{"run":"12"}}
 *
 * A request changed state when its method is not safe (RFC 9110 9.2.1:
 * anything but GET, HEAD, OPTIONS, TRACE), its route's handler is not one
 * of audit_safe_handlers (inference: POST /predict, v2 infer and TF
 * Serving predict change nothing), and it was answered 2xx. Its resource is named by the
 * reply's Location when there is one (what a POST created: the new run's
 * id, an upload's name, a model version's number), else by the request's
 * path: each path segment that follows a collection of audit_collections
 * is that resource's name.
 *
 * Stateless: any request thread calls these. */
#ifndef MN_AUDIT_H
#define MN_AUDIT_H

#include <jansson.h>

struct route;

/* 1 when a request of method (borrowed) on route rt (NULL: none matched)
 * answered with status gets an audit line, else 0. */
int audit_wanted(const struct route *rt, const char *method,
                 unsigned status);

/* The resource a path names, as an object of its collections' singular
 * names: "/models/digits/versions/2" gives {"model": "digits",
 * "version": "2"}, "/runs/12/cancel" {"run": "12"}, "/predict" {}. A
 * segment ends at '/' or ':' ("/v1/models/m:predict" names model "m"),
 * and at most 79 bytes of it are kept. NULL when out of memory or when a
 * name is not UTF-8. New reference. */
json_t *audit_resource(const char *path);

/* Writes the audit line of a request (see above): user who it acted as
 * (NULL: nobody authenticated it), client its address (NULL: unknown),
 * method and path as received, rt its route, status the reply's, and
 * location the reply's Location header (NULL: none). All borrowed. An
 * allocation failure writes nothing. */
void audit_log(const struct route *rt, const char *method, const char *path,
               const char *location, unsigned status, const char *user,
               const char *client);

#endif
