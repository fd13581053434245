/* http.c: libmicrohttpd glue: request state, body limits, routing, replies.
 * See http.h for the design. */
#include "server/http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/app.h"
#include "server/http/audit.h"
#include "server/http/auth.h"
#include "server/render/enc.h"
#include "server/telemetry/log.h"
#include "server/telemetry/metrics.h"
#include "server/http/routes.h"
#include "server/http/tls.h"
#include "server/store/store.h"

/* Seconds a client is told to wait before retrying a 503 (Retry-After):
 * a full queue, a store or dataset briefly unavailable, a restart. */
#define HTTP_RETRY_AFTER_S "5"

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Copies src into dst[size], cut short if need be, always terminated. */
static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Writes s into o as the inside of a JSON string, at most cap bytes:
 * quotes, backslashes, control and non-ASCII bytes are escaped (\u00XX,
 * so any byte sequence gives valid JSON, and a UTF-8 character shows as
 * its bytes one by one); a longer string is cut between two escapes and
 * ends in "...". Returns the bytes written. */
static size_t log_escape(char *o, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
        size_t need = plain ? 1 : (c == '"' || c == '\\') ? 2 : 6;
        if (n + need + 3 > cap) {
            memcpy(o + n, "...", 3);
            return n + 3;
        }
        if (plain) {
            o[n++] = (char)c;
        } else if (need == 2) {
            o[n++] = '\\';
            o[n++] = (char)c;
        } else {
            memcpy(o + n, "\\u00", 4);
            o[n + 4] = hex[c >> 4];
            o[n + 5] = hex[c & 15];
            n += 6;
        }
    }
    return n;
}

/* Builds the error object (new reference). */
static json_t *error_obj(const char *code, const char *msg)
{
    return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
}

/* Queues a reply of data[len] with a content type (NULL: none) and one
 * more header (NULL: none). */
static enum MHD_Result queue_at(struct MHD_Connection *conn, unsigned status,
                                const char *type, char *data, size_t len,
                                enum MHD_ResponseMemoryMode mode,
                                const char *header, const char *value)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(data);
        return MHD_NO;
    }
    if (type) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (header) MHD_add_response_header(r, header, value);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) /* every 503 is transient */
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER,
                                HTTP_RETRY_AFTER_S);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             const char *type, char *data, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    return queue_at(conn, status, type, data, len, mode, NULL, NULL);
}

enum MHD_Result http_json(http_ctx *c, unsigned status, json_t *obj)
{
    return http_json_at(c, status, obj, NULL);
}

enum MHD_Result http_json_at(http_ctx *c, unsigned status, json_t *obj,
                             const char *location)
{
    if (!obj)
        return http_error(c, 500, "internal", "out of memory building the reply");
    char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(obj);
    if (!s) return MHD_NO;
    c->req->status = status;
    if (location)
        copy_trunc(c->req->location, sizeof c->req->location, location);
    return queue_at(c->conn, status, "application/json", s, strlen(s),
                    MHD_RESPMEM_MUST_FREE,
                    location ? MHD_HTTP_HEADER_LOCATION : NULL, location);
}

/* Replies {"error": {"code", "message"}} with status and one more header
 * (NULL: none; 401's WWW-Authenticate, 405's Allow). */
static enum MHD_Result error_reply(http_ctx *c, unsigned status,
                                   const char *code, const char *msg,
                                   const char *header, const char *value)
{
    json_t *o = error_obj(code, msg);
    if (!o) {
        /* a client's string in the message was not UTF-8 (or was cut in
         * the middle of a character): name its bytes above ASCII '?' */
        char safe[600];
        copy_trunc(safe, sizeof safe, msg);
        for (char *p = safe; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
        o = error_obj(code, safe);
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) return MHD_NO;
    c->req->status = status;
    return queue_at(c->conn, status, "application/json", s, strlen(s),
                    MHD_RESPMEM_MUST_FREE, header, value);
}

enum MHD_Result http_error(http_ctx *c, unsigned status, const char *code,
                           const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_reply(c, status, code, msg, NULL, NULL);
}

enum MHD_Result http_error_hdr(http_ctx *c, unsigned status,
                               const char *code, const char *header,
                               const char *value, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return error_reply(c, status, code, msg, header, value);
}

enum MHD_Result http_error_text(http_ctx *c, unsigned status,
                                const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    if (!o) { /* not UTF-8: as error_reply does */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
        o = json_pack("{s:s}", "error", msg);
    }
    return http_json(c, status, o);
}

enum MHD_Result http_bytes(http_ctx *c, unsigned status, const char *type,
                           const void *data, size_t len)
{
    c->req->status = status;
    return queue(c->conn, status, type, (char *)data, len,
                 MHD_RESPMEM_MUST_COPY);
}

enum MHD_Result http_bytes_owned(http_ctx *c, unsigned status,
                                 const char *type, void *data, size_t len,
                                 const char *header, const char *value)
{
    c->req->status = status;
    return queue_at(c->conn, status, type, data, len, MHD_RESPMEM_MUST_FREE,
                    header, value);
}

enum MHD_Result http_stream(http_ctx *c, unsigned status, const char *type,
                            MHD_ContentReaderCallback read, void *cls,
                            MHD_ContentReaderFreeCallback free_cb)
{
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16 * 1024, read, cls, free_cb);
    if (!r) {
        free_cb(cls);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    c->req->status = status;
    enum MHD_Result rc = MHD_queue_response(c->conn, status, r);
    MHD_destroy_response(r);    /* frees cls through free_cb if not queued */
    return rc;
}

const char *http_query(http_ctx *c, const char *key)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, key);
}

int http_query_long(http_ctx *c, const char *key, long lo, long hi,
                    long *out)
{
    const char *v = http_query(c, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

struct store *http_db(http_ctx *c)
{
    if (!c->req->db) {
        mn_err err = {{0}};
        c->req->db = app_db_acquire(c->app, &err);
        if (!c->req->db)
            log_error("store_open_failed", 0, err.msg);
    }
    return c->req->db;
}

struct store *http_db_or_reply(http_ctx *c, enum MHD_Result *rc)
{
    struct store *db = http_db(c);
    if (!db)
        *rc = http_error(c, 503, "store_unavailable",
                         "the database cannot be reached now");
    return db;
}

enum MHD_Result http_store_error(http_ctx *c, int s, const mn_err *err,
                                 const char *code, const char *fmt, ...)
{
    if (s == STORE_UNAVAILABLE)
        return http_error(c, 503, "store_unavailable", "%s", err->msg);
    if ((s != STORE_NOT_FOUND && s != STORE_CONFLICT) || !fmt)
        return http_error(c, 503, "store_error", "%s", err->msg);
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return http_error(c, s == STORE_NOT_FOUND ? 404 : 409, code, "%s", msg);
}

const char *http_body_text(http_ctx *c, size_t *len)
{
    const char *body = c->req->body ? c->req->body : "";
    *len = c->req->len;
    if (*len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
        body += 3;
        *len -= 3;
    }
    return body;
}

json_t *http_body_json(http_ctx *c, enum MHD_Result *rc)
{
    json_error_t je;
    size_t len;
    const char *body = http_body_text(c, &len);
    json_t *o = json_loadb(body, len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!o) {
        *rc = http_error(c, 400, "bad_json", "request body is not valid JSON: "
                         "%s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    return o;
}

/* Matches path against pattern; copies the first {} segment into a1 and
 * the second into a2 (each buffer of len bytes). A {} segment ends at '/'
 * or ':' (so that "/v1/models/{}:predict" matches; no path argument
 * holds a ':'). */
static int match(const char *pattern, const char *path, char *a1, char *a2,
                 size_t len)
{
    const char *p = pattern, *u = path;
    int n_args = 0;
    a1[0] = a2[0] = 0;
    while (*p && *u) {
        if (p[0] == '{' && p[1] == '}') {
            size_t n = strcspn(u, "/:");
            if (n == 0 || n >= len || n_args == 2) return 0;
            char *dst = n_args++ == 0 ? a1 : a2;
            memcpy(dst, u, n);
            dst[n] = 0;
            u += n;
            p += 2;
        } else if (*p++ != *u++) {
            return 0;
        }
    }
    return *p == 0 && *u == 0;
}

/* Does the request's Content-Type name this media type? */
static int has_type(struct MHD_Connection *conn, const char *type)
{
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct) return 0;
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == 0 || ct[n] == ';' ||
                                             ct[n] == ' ');
}

/* Decides the deferred reply for an error found while reading the body. */
static void fail(http_req *r, unsigned status, const char *code,
                 const char *msg)
{
    if (r->failed) return;
    r->failed = 1;
    r->status = status;
    r->error = error_obj(code, msg);
}

/* The remedy a 413 names for a JSON /predict body (else ""): the raw
 * bytes form, a fraction of the size, and the images a request may hold.
 * Written into buf[size]; returns buf or "". */
static const char *too_large_hint(http_ctx *c, char *buf, size_t size)
{
    if (c->req->route->body != BODY_PREDICT ||
        has_type(c->conn, "application/octet-stream"))
        return "";
    snprintf(buf, size, "; send the images as raw bytes instead (Content-Type: "
             "application/octet-stream, n x %d uint8 pixels 0..255, a "
             "fraction of the JSON's size), at most %u images a request",
             DS_PIXELS, c->app->cfg.max_batch);
    return buf;
}

/* Finds the route of (method, url) into c->req->route, with its path
 * arguments; HEAD is served by a GET route. Returns 1 when one matched,
 * 0 when a 404 (no route has this path) or a 405 with an Allow header
 * (routes have this path, not this method) was queued. */
static int route_request(http_ctx *c, const char *url, const char *method,
                         enum MHD_Result *rc)
{
    http_req *r = c->req;
    int path_ok = 0;
    char allow[64] = "";
    for (size_t i = 0; i < http_n_routes; i++) {
        const route *rt = &http_routes[i];
        if (!match(rt->pattern, url, r->arg, r->arg2, sizeof r->arg)) continue;
        path_ok = 1;
        if (strcmp(rt->method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
            r->route = rt;
            return 1;
        }
        if (strlen(allow) + strlen(rt->method) + 9 < sizeof allow) {
            if (allow[0]) strcat(allow, ", ");
            strcat(allow, rt->method);
            if (strcmp(rt->method, "GET") == 0) strcat(allow, ", HEAD");
        }
    }
    if (!path_ok)
        *rc = http_error(c, 404, "not_found", "no such resource: %s", url);
    else
        *rc = error_reply(c, 405, "method_not_allowed", "method not allowed",
                          MHD_HTTP_HEADER_ALLOW, allow);
    return 0;
}

/* Checks the declared body against the route: its length (413), its
 * content type (415); starts the CSV parser of an upload. Returns 1 to go
 * on reading the body, 0 when a reply was queued. */
static int check_body(http_ctx *c, enum MHD_Result *rc)
{
    http_req *r = c->req;
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    size_t limit = r->route->body == BODY_CSV ? c->app->cfg.max_upload
                                              : c->app->cfg.max_body;
    if (r->route->body != BODY_NONE && declared > limit) {
        char hint[256];
        *rc = http_error(c, 413, "body_too_large",
                         "request body of %llu bytes exceeds the limit of %zu%s",
                         declared, limit, too_large_hint(c, hint, sizeof hint));
        return 0;
    }
    int has_body = declared > 0 ||
                   MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                               "Transfer-Encoding") != NULL;
    switch (r->route->body) {
    case BODY_JSON:
        if (has_body && !has_type(c->conn, "application/json")) {
            *rc = http_error(c, 415, "unsupported_media_type",
                             "send the body as Content-Type: application/json");
            return 0;
        }
        break;
    case BODY_PREDICT:
    case BODY_TENSOR:
        r->is_binary = has_type(c->conn, "application/octet-stream");
        if (!r->is_binary && !has_type(c->conn, "application/json")) {
            *rc = http_error(c, 415, "unsupported_media_type",
                             "send application/json, or "
                             "application/octet-stream with raw uint8 pixels");
            return 0;
        }
        break;
    case BODY_CSV:
        if (!has_type(c->conn, "text/csv")) {
            *rc = http_error(c, 415, "unsupported_media_type",
                             "send the dataset as Content-Type: text/csv");
            return 0;
        }
        r->csv = ds_csv_new("upload", c->app->cfg.max_upload_rows);
        if (!r->csv) {
            *rc = http_error(c, 503, "out_of_memory", "cannot parse an upload now");
            return 0;
        }
        break;
    case BODY_NONE:
        break;
    }
    return 1;
}

/* Takes one chunk of the body. */
static void take(http_ctx *c, const char *data, size_t n)
{
    http_req *r = c->req;
    if (r->failed || r->route->body == BODY_NONE) return;
    size_t limit = r->route->body == BODY_CSV ? c->app->cfg.max_upload
                                              : c->app->cfg.max_body;
    if (r->len + n > limit) {
        char msg[400], hint[256];
        snprintf(msg, sizeof msg, "request body exceeds the limit of %zu "
                 "bytes%s", limit, too_large_hint(c, hint, sizeof hint));
        fail(r, 413, "body_too_large", msg);
        return;
    }
    if (r->route->body == BODY_CSV) {
        mn_err err = {{0}};
        r->len += n;
        if (ds_csv_feed(r->csv, data, n, &err)) fail(r, 400, "bad_csv", err.msg);
        return;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1) cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            fail(r, 503, "out_of_memory", "no memory for the request body");
            return;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    app *a = cls;
    http_ctx c = {a, conn, *con_cls, NULL, NULL};
    enum MHD_Result rc = MHD_NO;
    if (!c.req) {
        http_req *r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->t_start = mono_ms();
        copy_trunc(r->method, sizeof r->method, method);
        copy_trunc(r->url, sizeof r->url, url);
        *con_cls = r;
        c.req = r;
        atomic_fetch_add(&a->in_flight, 1);  /* until on_completed */
        if (atomic_load(&a->stopping))
            return http_error(&c, 503, "shutting_down",
                              "the server is shutting down");
        /* in this order for every request: who asks, for what, with what */
        if (!auth_request(&c, &rc) ||
            !route_request(&c, url, method, &rc) || !check_body(&c, &rc) ||
            !auth_check_path(&c, &rc))
            return rc;
        return MHD_YES;
    }
    http_req *r = c.req;
    if (*upload_size) {
        /* a body trickling in slower than --body-timeout allows is cut
         * off: the idle timeout alone never fires while bytes keep coming */
        if (mono_ms() - r->t_start > 1e3 * a->cfg.body_timeout) return MHD_NO;
        take(&c, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    c.arg = r->arg;
    c.arg2 = r->arg2;
    if (r->failed) {
        char *s = json_dumps(r->error, JSON_COMPACT);
        if (!s) return MHD_NO;
        return queue(conn, r->status, "application/json", s, strlen(s),
                     MHD_RESPMEM_MUST_FREE);
    }
    return r->route->fn(&c);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
    app *a = cls;
    http_req *r = *con_cls;
    if (!r) return;
    /* one structured line per request */
    double ms = mono_ms() - r->t_start;
    uint64_t us = ms > 0 ? (uint64_t)(ms * 1e3 + 0.5) : 0;
    char line[1024];
    size_t n = 0;
#define PUT(lit) (memcpy(line + n, lit, sizeof lit - 1), n += sizeof lit - 1)
    PUT("{\"ts\":");
    n += enc_u64(line + n, (uint64_t)app_now_ms());
    PUT(",\"method\":\"");
    n += log_escape(line + n, 32, r->method);
    PUT("\",\"path\":\"");
    n += log_escape(line + n, 512, r->url);
    PUT("\",\"status\":");
    n += enc_u64(line + n, r->status);
    PUT(",\"ms\":");
    n += enc_u64(line + n, us / 1000);
    line[n++] = '.';
    line[n++] = (char)('0' + us / 100 % 10);
    line[n++] = (char)('0' + us / 10 % 10);
    line[n++] = (char)('0' + us % 10);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        PUT(",\"completed\":true}\n");
    else
        PUT(",\"completed\":false}\n");
#undef PUT
    log_line(line, n);
    if (audit_wanted(r->route, r->method, r->status)) {
        char ip[INET6_ADDRSTRLEN] = "";
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
                      ip, sizeof ip);
        audit_log(r->route, r->method, r->url,
                  r->location[0] ? r->location : NULL, r->status,
                  r->user[0] ? r->user : NULL, ip[0] ? ip : NULL);
    }
    if (a->metrics)
        metrics_request(a->metrics,
                        r->route ? (size_t)(r->route - http_routes) : http_n_routes,
                        r->status, ms / 1e3);
    atomic_fetch_sub(&a->in_flight, 1);
    app_db_release(a, r->db);
    ds_csv_free(r->csv);
    json_decref(r->error);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's error messages (MHD_OPTION_EXTERNAL_LOGGER), as JSON
 * log lines {"event":"http_daemon","error":...}. "Failed to send ..." is
 * left out: it is what MHD says of every client that goes away in the
 * middle of a reply (an event stream closed by the browser), not an
 * error of the server. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0) return;
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = 0;
    if (!strncmp(msg, "Failed to send", 14)) return;
    log_error("http_daemon", 0, msg);
}

struct MHD_Daemon *http_start(app *a, unsigned port, unsigned threads,
                              const tls_pem *tls, mn_err *err)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, a->cfg.host, &addr.sin_addr) != 1) {
        mn_errf(err, "--host %s is not an IPv4 address", a->cfg.host);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME;
    /* HTTPS: the PEM text stays the caller's (tls.h); none: no options */
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
    if (tls) {
        flags |= MHD_USE_TLS;   /* tls_pem_load checked MHD_FEATURE_TLS */
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
                                              tls->cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0,
                                              tls->key};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, a,
        /* first, so that MHD prints nothing through its own logger */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, a->cfg.timeout,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, a->cfg.per_ip_limit,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_ARRAY, tls_opts,
        MHD_OPTION_END);
    if (!d) mn_errf(err, "cannot listen on %s port %u", a->cfg.host, port);
    return d;
}

unsigned http_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}
