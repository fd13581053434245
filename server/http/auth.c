/* auth.c: users' tokens and who a request acts as (see auth.h). */
#include "server/http/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/app.h"
#include "server/http/audit.h"
#include "server/http/routes.h"
#include "server/jobs/spec.h"
#include "server/serving/dsreg.h"
#include "server/telemetry/log.h"

/* Compares a and b in time that depends only on their lengths. */
static int same_secret(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = na != nb;
    for (size_t i = 0; i < na; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return diff == 0;
}

/* Is url one of the paths that need no token (/healthz and the
 * dashboard's own files)? */
static int auth_exempt(const char *url)
{
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/") == 0 ||
           strcmp(url, "/favicon.ico") == 0 || strncmp(url, "/static/", 8) == 0;
}

/* ---------------------------------------------------------------- cache */

#define AUTH_CACHE_SLOTS 64

typedef struct {
    uint8_t hash[STORE_TOKEN_HASH_BYTES];   /* the token's, as presented */
    store_user user;                        /* valid, not revoked */
    int64_t at_ms;                          /* 0: empty slot */
} auth_slot;

struct auth_cache {
    pthread_mutex_t mu;
    int users;                  /* 1 once a user was seen: users are never
                                   deleted, so this stays true */
    int64_t users_at_ms;        /* when the table was last found empty */
    auth_slot slot[AUTH_CACHE_SLOTS];
};

auth_cache *auth_cache_new(void)
{
    auth_cache *ac = calloc(1, sizeof *ac);
    if (ac && pthread_mutex_init(&ac->mu, NULL) != 0) {
        free(ac);
        return NULL;
    }
    return ac;
}

void auth_cache_free(auth_cache *ac)
{
    if (!ac) return;
    pthread_mutex_destroy(&ac->mu);
    free(ac);
}

/* 1 with *yes when the cache knows within AUTH_CACHE_MS whether users
 * exist, else 0. */
static int cache_users(auth_cache *ac, int64_t now, int *yes)
{
    if (!ac) return 0;
    pthread_mutex_lock(&ac->mu);
    int known = ac->users || (ac->users_at_ms && now - ac->users_at_ms < AUTH_CACHE_MS);
    *yes = ac->users;
    pthread_mutex_unlock(&ac->mu);
    return known;
}

static void cache_users_put(auth_cache *ac, int64_t now, int yes)
{
    if (!ac) return;
    pthread_mutex_lock(&ac->mu);
    if (yes) ac->users = 1;
    else ac->users_at_ms = now;
    pthread_mutex_unlock(&ac->mu);
}

/* 1 with *u when the token hashed to hash was a valid user's within
 * AUTH_CACHE_MS, else 0. sodium_memcmp: the comparison takes the same
 * time wherever the hashes differ. */
static int cache_user(auth_cache *ac, int64_t now, const uint8_t *hash, store_user *u)
{
    if (!ac) return 0;
    int hit = 0;
    pthread_mutex_lock(&ac->mu);
    for (size_t i = 0; i < AUTH_CACHE_SLOTS && !hit; i++) {
        auth_slot *sl = &ac->slot[i];
        if (sl->at_ms && now - sl->at_ms < AUTH_CACHE_MS &&
            sodium_memcmp(sl->hash, hash, STORE_TOKEN_HASH_BYTES) == 0) {
            *u = sl->user;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&ac->mu);
    return hit;
}

/* Keeps user u for token hash `hash`, in an empty slot or the oldest. */
static void cache_user_put(auth_cache *ac, int64_t now, const uint8_t *hash,
                           const store_user *u)
{
    if (!ac) return;
    pthread_mutex_lock(&ac->mu);
    ac->users = 1;
    auth_slot *old = &ac->slot[0];
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++) {
        auth_slot *sl = &ac->slot[i];
        if (sl->at_ms && memcmp(sl->hash, hash, STORE_TOKEN_HASH_BYTES) == 0) {
            old = sl;
            break;
        }
        if (sl->at_ms < old->at_ms) old = sl;
    }
    memcpy(old->hash, hash, STORE_TOKEN_HASH_BYTES);
    old->user = *u;
    old->at_ms = now;
    pthread_mutex_unlock(&ac->mu);
}

/* ---------------------------------------------------------------- requests */

static enum MHD_Result unauthorized(http_ctx *c, const char *why)
{
    return http_error_hdr(c, 401, "unauthorized",
                          MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer", "%s",
                          why);
}

int auth_request(http_ctx *c, enum MHD_Result *rc)
{
    http_req *r = c->req;
    const char *shared = c->app->cfg.token;
    r->role = AUTH_OPEN;
    r->user[0] = 0;
    if (auth_exempt(r->url)) return 1;
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    /* the scheme is case-insensitive (RFC 7235) */
    const char *token = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
    if (token && shared && same_secret(token, shared)) {
        r->role = AUTH_ADMIN;
        strcpy(r->user, "token");
        return 1;
    }
    if (!token && shared) {
        *rc = unauthorized(c, "send Authorization: Bearer <token> (the "
                           "server runs with --token)");
        return 0;
    }
    mn_err err = {{0}};
    auth_cache *ac = c->app->auth;
    int64_t now = app_now_ms();
    int ok = 0, yes = 0, s = 0;
    uint8_t want[STORE_TOKEN_HASH_BYTES], got[STORE_TOKEN_HASH_BYTES];
    store_user u;
    store *db = NULL;
    if (!token && cache_users(ac, now, &yes)) {
        if (!yes) return 1;
        *rc = unauthorized(c, "send Authorization: Bearer <token> (this "
                           "server has users: `mnistd users add NAME` "
                           "makes a token)");
        return 0;
    }
    if (token) {
        /* hashed first, whatever follows: an unknown name costs what a
         * known one does */
        auth_token_hash(token, got);
        if (cache_user(ac, now, got, &u)) goto user;
    }
    db = http_db(c);
    if (!db) {
        s = STORE_UNAVAILABLE;
        snprintf(err.msg, sizeof err.msg, "the database cannot be reached now");
        goto done;
    }
    if (!token) {
        if ((s = store_user_any(db, &yes, &err)) == 0)
            cache_users_put(ac, now, yes);
        if (!s && !yes)
            ok = 1;     /* no users, no --token: as before users existed */
        else if (!s)
            *rc = unauthorized(c, "send Authorization: Bearer <token> (this "
                               "server has users: `mnistd users add NAME` "
                               "makes a token)");
        goto done;
    }
    char name[64];
    if (auth_token_name(token, name) ||
        (s = store_user_get(db, name, &u, want, &err)) == STORE_NOT_FOUND) {
        s = 0;
        *rc = unauthorized(c, "the Bearer token is not valid");
        goto done;
    }
    if (s) goto done;
    if (sodium_memcmp(want, got, sizeof got) != 0) {
        *rc = unauthorized(c, "the Bearer token is not valid");
        goto done;
    }
    if (u.revoked_at) {
        *rc = unauthorized(c, "the Bearer token was revoked");
        goto done;
    }
    cache_user_put(ac, now, got, &u);
user:
    r->role = u.admin ? AUTH_ADMIN : AUTH_USER;
    memcpy(r->user, u.name, sizeof r->user);
    ok = 1;
done:
    if (s) {
        log_error("auth_store_failed", 0, err.msg);
        *rc = http_error(c, 503, "store_unavailable",
                         "cannot check the bearer token now: %s", err.msg);
        ok = 0;
    }
    /* the handler takes a connection again when it needs one: none is held
     * while a body uploads */
    app_db_release(c->app, r->db);
    r->db = NULL;
    return ok;
}

const char *auth_owner(const http_ctx *c)
{
    const http_req *r = c->req;
    if (r->role == AUTH_USER) return r->user;
    /* "token" names the shared --token: `mnistd users` reserves it */
    if (r->role == AUTH_ADMIN && strcmp(r->user, "token") != 0) return r->user;
    return NULL;
}

int auth_sees(const http_ctx *c, const char *owner, int shared)
{
    if (c->req->role != AUTH_USER || shared) return 1;
    return owner && strcmp(owner, c->req->user) == 0;
}

int auth_list_owner(http_ctx *c, const char **owner, enum MHD_Result *rc)
{
    if (c->req->role == AUTH_USER) {
        *owner = c->req->user;
        return 1;
    }
    const char *q = http_query(c, "owner");
    if (q && !spec_valid_name(q)) {
        *rc = http_error(c, 400, "bad_query", "owner must be a user name "
                         "([a-z0-9][a-z0-9_-]*, at most 63 characters)");
        return 0;
    }
    *owner = q;
    return 1;
}

int auth_may_read(http_ctx *c, store *db, store_owner_kind kind,
                  const char *key, mn_err *err)
{
    if (c->req->role != AUTH_USER) return 1;
    int64_t id = 0;
    if (kind == STORE_OWNED_RUN || kind == STORE_OWNED_SWEEP) {
        id = infer_parse_id(key);
        if (!id) return 1;
    }
    char owner[64];
    int shared;
    int s = store_owner_get(db, kind, id, key, owner, &shared, err);
    if (s == STORE_NOT_FOUND) return 1;
    if (s) return s;
    return auth_sees(c, owner, shared);
}

const ds_dataset *auth_dsreg_get(http_ctx *c, store *db, const char *name,
                                 int *not_found, mn_err *err)
{
    *not_found = 0;
    if (c->req->role == AUTH_USER && db && name) {
        char owner[64];
        int shared;
        int s = store_owner_get(db, STORE_OWNED_DATASET, 0, name, owner,
                                &shared, err);
        if (s == 0 && !auth_sees(c, owner, shared)) {
            *not_found = 1;
            mn_errf(err, "dataset '%s' does not exist", name);
            return NULL;
        }
        if (s < 0) return NULL;     /* err says why; not a not-found */
    }
    return dsreg_get(c->app->datasets, db, name, not_found, err);
}

/* The routes whose first path argument names an owned resource, by the
 * start of their pattern, with the reply of their handler for one that
 * does not exist. A new collection is one line. */
static const struct {
    const char *prefix;
    store_owner_kind kind;
    const char *noun;       /* "no <noun> '<arg>'" */
    int text_error;         /* the v2 / TF Serving error shape */
} auth_paths[] = {
    {"/runs/{}", STORE_OWNED_RUN, "run", 0},
    {"/sweeps/{}", STORE_OWNED_SWEEP, "sweep", 0},
    {"/datasets/{}", STORE_OWNED_DATASET, "dataset", 0},
    {"/models/{}", STORE_OWNED_MODEL, "model", 0},
    {"/v2/models/{}", STORE_OWNED_MODEL, "model", 1},
    {"/v1/models/{}", STORE_OWNED_MODEL, "model", 1},
};

/* Does a request of this route read (1) or change (0)? Inference POSTs
 * read (audit.h's notion of a change, for any status). */
static int auth_reads(const http_ctx *c)
{
    return !audit_wanted(c->req->route, c->req->method, 200);
}

int auth_check_path(http_ctx *c, enum MHD_Result *rc)
{
    http_req *r = c->req;
    if (r->role != AUTH_USER || !r->route) return 1;
    const char *pat = r->route->pattern;
    for (size_t i = 0; i < sizeof auth_paths / sizeof auth_paths[0]; i++) {
        size_t n = strlen(auth_paths[i].prefix);
        if (strncmp(pat, auth_paths[i].prefix, n) != 0 ||
            (pat[n] != 0 && pat[n] != '/' && pat[n] != ':'))
            continue;
        store_owner_kind kind = auth_paths[i].kind;
        int64_t id = 0;
        if (kind == STORE_OWNED_RUN || kind == STORE_OWNED_SWEEP) {
            id = infer_parse_id(r->arg);
            if (!id) return 1;          /* the handler's 404 */
        }
        mn_err err = {{0}};
        store *db = http_db_or_reply(c, rc);
        if (!db) return 0;
        char owner[64];
        int shared = 0;
        int s = store_owner_get(db, kind, id, r->arg, owner, &shared, &err);
        /* one that does not exist is answered here too, before its body is
         * read, so that another user's and a missing one get the same
         * reply whatever the body (a built-in dataset has no row) */
        if (s == STORE_NOT_FOUND &&
            kind == STORE_OWNED_DATASET && dsreg_is_builtin(r->arg))
            return 1;
        if (s == STORE_NOT_FOUND) {
            shared = 0;
            owner[0] = 0;
            s = 0;
        }
        if (s) {
            *rc = http_store_error(c, s, &err, NULL, NULL);
            return 0;
        }
        if (auth_sees(c, owner, shared && auth_reads(c))) return 1;
        *rc = auth_paths[i].text_error
                  ? http_error_text(c, 404, "no %s '%s'", auth_paths[i].noun,
                                    r->arg)
                  : http_error(c, 404, "not_found", "no %s '%s'",
                               auth_paths[i].noun, r->arg);
        return 0;
    }
    return 1;
}
