/* quota.c: the per-user limits of fair use (quota.h). */
#include "server/http/quota.h"

#include <stddef.h>
#include <stdint.h>

#include "server/app.h"
#include "server/http/auth.h"
#include "server/store/store.h"

/* One limit: its error code, its flag, the field of app_config, what is
 * counted (for the message), how to get out of it, and the Retry-After
 * (seconds): a run of the reference recipe takes about half a minute, a
 * sweep's trials several; an upload waits until the user deletes one. */
typedef struct quota_limit {
    const char *code;
    const char *flag;
    size_t field;       /* offsetof in app_config */
    int is_size;        /* the field is a size_t (else unsigned) */
    const char *counted;
    const char *way_out;
    const char *retry_after;
} quota_limit;

static const quota_limit quota_limits[] = {
    [QUOTA_RUNS] = {"runs_per_user_limit", "--max-runs-per-user",
                    offsetof(app_config, max_runs_per_user), 0,
                    "runs queued or running",
                    "wait for one to end, or cancel one", "30"},
    [QUOTA_UPLOAD_BYTES] = {"upload_bytes_per_user_limit",
                            "--max-upload-bytes-per-user",
                            offsetof(app_config, max_upload_bytes_per_user),
                            1, "bytes of uploaded datasets (a byte per "
                            "pixel and per label)",
                            "delete a dataset you no longer need", "3600"},
    [QUOTA_SWEEP_TRIALS] = {"sweep_trials_per_user_limit",
                            "--max-sweep-trials-per-user",
                            offsetof(app_config, max_sweep_trials_per_user),
                            0, "trials in running sweeps",
                            "wait for a sweep to end, or cancel one", "60"},
};

/* The limit of `kind` for request c's user; 0 when c is not limited. */
static uint64_t quota_max(http_ctx *c, quota_kind kind)
{
    if (c->req->role != AUTH_USER) return 0;
    const quota_limit *q = &quota_limits[kind];
    const char *f = (const char *)&c->app->cfg + q->field;
    return q->is_size ? (uint64_t)*(const size_t *)f
                      : (uint64_t)*(const unsigned *)f;
}

void quota_limit_of(http_ctx *c, quota_kind kind, store_limit *out)
{
    uint64_t max = quota_max(c, kind);
    out->max = max > INT64_MAX ? INT64_MAX : (int64_t)max;
    out->used = 0;
}

enum MHD_Result quota_refuse(http_ctx *c, quota_kind kind, int64_t used,
                             uint64_t adding)
{
    const quota_limit *q = &quota_limits[kind];
    return http_error_hdr(c, 429, q->code, MHD_HTTP_HEADER_RETRY_AFTER,
                          q->retry_after,
                          "user '%s' has %lld %s and this request adds "
                          "%llu; the limit is %llu (%s): %s", auth_owner(c),
                          (long long)used, q->counted,
                          (unsigned long long)adding,
                          (unsigned long long)quota_max(c, kind), q->flag,
                          q->way_out);
}
