/* quota.h: the per-user limits of fair use (issue 16), checked by the
 * handlers that create: POST /runs (runs queued or running), POST
 * /datasets (bytes of uploaded datasets), POST /sweeps (trials of running
 * sweeps). Over a limit the request is answered 429 with Retry-After and
 * an error whose code names the limit; nothing is created.
 *
 * Who is limited: a user (auth.h's AUTH_USER). Admins (users added with
 * --admin, and the shared --token) are exempt: the teacher's reference
 * runs and searches must not wait on a student's limit; they still take
 * their turn in the fair-share queue (store_run_claim). With no users
 * configured (AUTH_OPEN) nothing is limited, as before users existed.
 * A limit of 0 is none.
 *
 * The check reads the user's usage (store_usage_get) before the insert,
 * in a transaction of its own, as --max-queued does: requests of one user
 * that run at the same moment may each pass it, so a burst of k
 * simultaneous requests can go k - 1 past a limit once; the next request
 * is refused. Stateless. */
#ifndef MN_QUOTA_H
#define MN_QUOTA_H

#include <stdint.h>

#include "server/http/http.h"

/* The limited quantities, one row each in quota.c's table. */
typedef enum {
    QUOTA_RUNS,           /* runs queued or running: --max-runs-per-user */
    QUOTA_UPLOAD_BYTES,   /* bytes of uploaded datasets:
                             --max-upload-bytes-per-user */
    QUOTA_SWEEP_TRIALS,   /* trials of running sweeps:
                             --max-sweep-trials-per-user */
} quota_kind;

/* Checks that request c may add `adding` (runs: 1; bytes: the new
 * dataset's stored size; trials: the new sweep's) to its user's usage of
 * `kind`. Returns 1 to go on (also when c is not limited), 0 after a
 * reply (*rc): 429 with Retry-After and the limit's code, or 503 when the
 * usage cannot be read. */
int quota_check(http_ctx *c, quota_kind kind, uint64_t adding,
                enum MHD_Result *rc);

#endif
