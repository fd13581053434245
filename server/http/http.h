/* http.h: the HTTP glue over libmicrohttpd: per-request state, request
 * bodies with size limits, the route table, JSON replies and JSON errors;
 * HTTPS through libmicrohttpd's TLS when started with a certificate
 * (tls.h), invisible above the daemon. At completion each request writes
 * its log line, and its audit line when it changed state (audit.h).
 *
 * DESIGN (concurrency): libmicrohttpd runs an internal thread pool (epoll);
 * a request lives on one of its threads from first call to completion.
 * Per-request state (http_req) is allocated on the first call and freed in
 * the completion callback, whatever happened to the connection. Handlers
 * share only the app (read-only config, and modules that lock for
 * themselves: dataset registry, model cache, worker pool, store pool).
 *
 * Ownership: reply helpers take a json_t and STEAL the reference. */
#ifndef MN_HTTP_H
#define MN_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/ds.h"
#include "engine/err.h"

struct app;
struct store;
struct tls_pem;

/* What a route does with the request body. */
typedef enum {
    BODY_NONE = 0,  /* no body expected (a body is ignored) */
    BODY_JSON,      /* application/json, buffered up to max_body */
    BODY_CSV,       /* text/csv, streamed row by row into a ds_csv */
    BODY_PREDICT,   /* application/json or application/octet-stream */
    BODY_TENSOR,    /* as BODY_PREDICT, for the model servers' protocols
                       (v2's binary tensors; no /predict hint on a 413) */
} http_body_kind;

/* Who a request acts as (auth.h says what each may do). */
typedef enum {
    AUTH_OPEN = 0,  /* no users and no --token: everything, no owner */
    AUTH_ADMIN,     /* the shared --token or a user added with --admin */
    AUTH_USER,      /* a user: its own resources and the shared ones */
} auth_role;

typedef struct http_req {
    const struct route *route;  /* matched route (NULL: error already set) */
    char arg[80];               /* the first {} path segment (id, name) */
    char arg2[80];              /* the second {} path segment, if any */
    char *body;                 /* buffered body (NUL-terminated), owned */
    size_t len, cap;
    int is_binary;              /* body is application/octet-stream */
    ds_csv *csv;                /* streaming CSV parser, owned */
    int failed;                 /* a reply was already decided */
    unsigned status;            /* status of the deferred error reply */
    json_t *error;              /* deferred error reply, owned */
    struct store *db;           /* borrowed from the app's pool, returned at completion */
    double t_start;             /* monotonic ms at the first call */
    char method[8];             /* for the request log */
    char url[120];
    auth_role role;             /* who the request acts as (auth.h) */
    char user[64];              /* ... by name, for the audit line and
                                   GET /me: a user's name, "token" for the
                                   shared --token, "" when nobody
                                   authenticated it (AUTH_OPEN) */
    char location[128];         /* the reply's Location header ("": none) */
} http_req;

typedef struct http_ctx {
    struct app *app;
    struct MHD_Connection *conn;
    http_req *req;
    const char *arg;            /* first path argument */
    const char *arg2;           /* second path argument ("" if none) */
} http_ctx;

typedef enum MHD_Result (*http_handler)(http_ctx *c);

typedef struct route {
    const char *method;
    const char *pattern;        /* "/runs/{}/confusion": {} is one segment
                                   (or the part of one before a ':', as in
                                   "/v1/models/{}:predict"); at most two
                                   {} per pattern */
    http_body_kind body;
    http_handler fn;
    const char *name;           /* label in metrics (NULL: the pattern) */
} route;

/* Starts the daemon on port (0: any free port) with `threads` request
 * threads, serving HTTPS with tls's certificate and key (libmicrohttpd's
 * TLS over GnuTLS; tls is borrowed and must outlive the daemon, NULL:
 * plain HTTP). Returns NULL with the reason in err. */
struct MHD_Daemon *http_start(struct app *app, unsigned port,
                              unsigned threads, const struct tls_pem *tls,
                              mn_err *err);

/* The port the daemon listens on. */
unsigned http_port(struct MHD_Daemon *d);

/* Replies with JSON (steals obj) and status. */
enum MHD_Result http_json(http_ctx *c, unsigned status, json_t *obj);

/* As http_json, with a Location header. */
enum MHD_Result http_json_at(http_ctx *c, unsigned status, json_t *obj,
                             const char *location);

/* Replies {"error": {"code", "message"}} with status. */
enum MHD_Result http_error(http_ctx *c, unsigned status, const char *code,
                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As http_error, with one more header (401's WWW-Authenticate). */
enum MHD_Result http_error_hdr(http_ctx *c, unsigned status,
                               const char *code, const char *header,
                               const char *value, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Replies {"error": "<message>"} with status: the error shape of the
 * Open Inference Protocol and of TensorFlow Serving. */
enum MHD_Result http_error_text(http_ctx *c, unsigned status,
                                const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Replies with raw bytes (copied) and a content type. */
enum MHD_Result http_bytes(http_ctx *c, unsigned status, const char *type,
                           const void *data, size_t len);

/* As http_bytes, with one more header (NULL: none); data is malloc'd and
 * STOLEN (freed once sent, also on failure). */
enum MHD_Result http_bytes_owned(http_ctx *c, unsigned status,
                                 const char *type, void *data, size_t len,
                                 const char *header, const char *value);

/* Replies with a streamed body of unknown length (chunked): libmicrohttpd
 * calls read(cls, ...) for the bytes and free_cb(cls) once the connection
 * is done with it (also when this call fails). Adds Cache-Control:
 * no-cache. The reader may suspend the connection (the daemon allows it). */
enum MHD_Result http_stream(http_ctx *c, unsigned status, const char *type,
                            MHD_ContentReaderCallback read, void *cls,
                            MHD_ContentReaderFreeCallback free_cb);

/* A query argument or NULL. */
const char *http_query(http_ctx *c, const char *key);

/* An optional integer query argument in lo..hi: *out keeps its default
 * when absent. Returns -1 when present but not such an integer. */
int http_query_long(http_ctx *c, const char *key, long lo, long hi,
                    long *out);

/* The request's store connection (taken from the app's pool on first use,
 * returned in the completion callback). NULL with a 503 already decided
 * by the caller on failure. */
struct store *http_db(http_ctx *c);

/* As http_db, replying 503 "store_unavailable" when the store cannot be
 * opened (the database cannot be reached: a PostgreSQL server down):
 * NULL then, with the reply's result in *rc. */
struct store *http_db_or_reply(http_ctx *c, enum MHD_Result *rc);

/* Replies to a store call's failure s (nonzero, store.h's convention).
 * STORE_NOT_FOUND and STORE_CONFLICT are the request's: 404 and 409, with
 * the error code `code` and the message fmt...; any other result is the
 * database's: 503 "store_unavailable" for STORE_UNAVAILABLE (a passing
 * problem: busy, disk full, the server unreachable), else 503
 * "store_error", with err's message (code and fmt are not
 * used then and may be NULL; a NULL fmt makes every result the
 * database's). */
enum MHD_Result http_store_error(http_ctx *c, int s, const mn_err *err,
                                 const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The request body as text, past a leading UTF-8 byte order mark (which
 * RFC 8259 lets a JSON parser ignore, as the CSV reader does); never NULL.
 * *len receives its length in bytes. Borrowed: lives as long as the
 * request. */
const char *http_body_text(http_ctx *c, size_t *len);

/* Parses the JSON body (http_body_text: past a byte order mark; duplicate
 * keys rejected). On failure replies 400 and returns NULL; *rc receives
 * the reply's result. New reference. */
json_t *http_body_json(http_ctx *c, enum MHD_Result *rc);

#endif
