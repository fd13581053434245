/* quota.h: the per-user limits of fair use (issue 16), checked by the
 * handlers that create: POST /runs and POST /runs/{id}/resume (runs
 * queued or running), POST /datasets (bytes of uploaded datasets), POST
 * /sweeps (trials of running sweeps). Over a limit the request is answered 429 with Retry-After and
 * an error whose code names the limit; nothing is created.
 *
 * Who is limited: a user (auth.h's AUTH_USER). Admins (users added with
 * --admin, and the shared --token) are exempt: the teacher's reference
 * runs and searches must not wait on a student's limit; they still take
 * their turn in the fair-share queue (store_run_claim). With no users
 * configured (AUTH_OPEN) nothing is limited, as before users existed.
 * A limit of 0 is none.
 *
 * DESIGN (concurrency). Each limit holds under concurrency, on one node
 * and across nodes sharing a database: the handler passes the limit to
 * the store call that writes (quota_limit_of, store_limit:
 * store_run_create, store_run_resume, store_dataset_put_owned,
 * store_sweep_create_owned), which counts the user's holding inside its
 * own write transaction, after a lock that serialises the writers of
 * that user (SQLite: BEGIN IMMEDIATE, the one writer of the file;
 * PostgreSQL: a transaction-level advisory lock on a hash of the owner's
 * name, held to COMMIT, so on every node), and refuses there
 * (STORE_LIMIT, answered by quota_refuse): of k simultaneous requests of
 * one user exactly as many as the limit leaves room for succeed. The
 * count and the write are one transaction, so no request acts on a usage
 * that another is about to change. Stateless. */
#ifndef MN_QUOTA_H
#define MN_QUOTA_H

#include <stdint.h>

#include "server/http/http.h"
#include "server/store/store.h"

/* The limited quantities, one row each in quota.c's table. */
typedef enum {
    QUOTA_RUNS,           /* runs queued or running: --max-runs-per-user */
    QUOTA_UPLOAD_BYTES,   /* bytes of uploaded datasets:
                             --max-upload-bytes-per-user */
    QUOTA_SWEEP_TRIALS,   /* trials of running sweeps:
                             --max-sweep-trials-per-user */
} quota_kind;

/* The limit of `kind` for request c's user, for a store call that checks
 * it in its write transaction: out->max (0 when c is not limited: an
 * admin, no users, or the flag is 0), out->used 0. */
void quota_limit_of(http_ctx *c, quota_kind kind, store_limit *out);

/* The reply to a request refused by limit `kind` (the store said
 * STORE_LIMIT): 429 with Retry-After and the limit's code; used: what the
 * user held, adding: what the request would have added. */
enum MHD_Result quota_refuse(http_ctx *c, quota_kind kind, int64_t used,
                             uint64_t adding);

#endif
