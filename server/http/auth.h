/* auth.h: users' bearer tokens and who a request acts as (issue 16).
 *
 * Tokens (token.h) are "<name>.<secret>"; the store keeps their hash. A
 * request's token is checked by looking its name up (one primary-key read)
 * and comparing the hashes with sodium_memcmp (constant time). What the
 * store said is kept for AUTH_CACHE_MS in the app's auth_cache: a user
 * added, revoked or rotated by `mnistd users` while the server runs counts
 * within that time, and a request costs no store read when its token was
 * checked within it (nor, on a server without users, when the users table
 * was found empty within it).
 *
 * Who a request acts as (http_req.role):
 *   AUTH_OPEN   no user exists and no --token: everything, as before
 *               users existed; creates resources without an owner
 *   AUTH_ADMIN  the shared --token (user "token", creates without an
 *               owner) or a user added with --admin (creates as itself)
 *   AUTH_USER   a user: sees and acts on its own runs, sweeps, uploads
 *               and models only; another user's is answered 404 as if it
 *               did not exist. Shared for reading: built-in datasets,
 *               public uploads, models made by an admin (or by no user).
 *
 * Any request thread calls these; the auth_cache locks for itself.
 * sodium_init() must have run once (main.c) before a token is made or
 * hashed. */
#ifndef MN_AUTH_H
#define MN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "server/http/http.h"
#include "server/http/token.h"
#include "server/store/store.h"

/* How long a store answer about users stays good, milliseconds: the
 * longest a revoked or rotated token keeps working, and the longest a
 * server without users keeps serving without tokens after the first
 * `mnistd users add`. */
#define AUTH_CACHE_MS 1000

/* The users the store confirmed lately, by token hash (a fixed table of
 * AUTH_CACHE_SLOTS, the oldest replaced), and whether any user exists. */
typedef struct auth_cache auth_cache;

/* A new, empty cache, or NULL (out of memory). Freed by auth_cache_free
 * (NULL is ignored). */
auth_cache *auth_cache_new(void);
void auth_cache_free(auth_cache *ac);

/* Decides who request c acts as from its Authorization header, the
 * configured --token and the users table (store_user_any,
 * store_user_get), into c->req (role, user). Returns 1 to go on, 0 when a
 * reply was queued (*rc): 401 unauthorized (no token, an unknown, wrong
 * or revoked one) or 503 store_unavailable (the users cannot be read:
 * the request is refused, never let through). */
int auth_request(http_ctx *c, enum MHD_Result *rc);

/* Answers 404, as for a resource that does not exist, when the path's
 * resource (c->arg of a /runs/{}, /sweeps/{}, /datasets/{}, /models/{},
 * /v2/models/{} or /v1/models/{} route) belongs to another user and is
 * not shared with this one for this request: reading a public dataset or
 * a model made by an admin (GET, HEAD, and inference POSTs) is shared,
 * changing it is not; one that does not exist gets the same 404 here,
 * before its body is read (so that a malformed body cannot tell the two
 * apart). Returns 1 to go on, 0 after replying (*rc). Only AUTH_USER
 * requests are checked; a path argument that is not an id is left to the
 * handler's 404. */
int auth_check_path(http_ctx *c, enum MHD_Result *rc);

/* The owner to record on what this request creates: the user's name for
 * a named user (admins too), NULL for the shared --token and AUTH_OPEN.
 * Borrowed from the request. */
const char *auth_owner(const http_ctx *c);

/* 1 when this request may see a resource owned by owner ("" or NULL:
 * nobody) that is shared for reading (shared 1) or not. */
int auth_sees(const http_ctx *c, const char *owner, int shared);

/* The owner filter of a list (GET /runs, /sweeps, /datasets, /models):
 * a user's own name for AUTH_USER (?owner is ignored: a user lists only
 * its own), the ?owner query for the others (NULL when absent). Returns 1
 * with *owner set (borrowed), or 0 after a 400 bad_query for an ?owner
 * that is not a user name (*rc). */
int auth_list_owner(http_ctx *c, const char **owner, enum MHD_Result *rc);

/* Whether this request may read the resource of `kind` named by key (a
 * run or sweep id as text, a dataset or model name): 1 when it may, or
 * when there is no such resource (the caller answers that as it always
 * does), 0 when it belongs to another user and is not shared for reading
 * (answer as for one that does not exist), or a store error (< 0: -1,
 * STORE_UNAVAILABLE; err says why). */
int auth_may_read(http_ctx *c, store *db, store_owner_kind kind,
                  const char *key, mn_err *err);

/* dsreg_get (serving/dsreg.h) for this request: a dataset that belongs
 * to another user and is not public is answered as one that does not
 * exist (NULL, *not_found 1, err "dataset '<name>' does not exist"), so
 * that a user can neither train on it nor learn it exists. Built-in
 * datasets are everyone's; admins read every upload. */
const ds_dataset *auth_dsreg_get(http_ctx *c, store *db, const char *name,
                                 int *not_found, mn_err *err);

#endif
