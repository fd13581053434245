/* usage.c: what one user holds against the per-user limits of fair use
 * (issue 16): runs queued or running, bytes of uploaded datasets, trials
 * of sweeps that have not ended. The limits themselves are the server's
 * flags (cmd/serve.c); the HTTP handlers compare (http/quota.c). */
#include "server/store/store.h"

#include <string.h>

#include "server/store/store_internal.h"

int store_usage_get(store *s, const char *owner, store_usage *out,
                    mn_err *err)
{
    const char *what = "usage_get";
    int rc = -1;
    st_stmt *st = NULL;

    memset(out, 0, sizeof *out);
    if (!owner || !*owner)
        return mn_errf(err, "store: %s: no owner", what);
    /* One statement, so one snapshot on both backends. A dataset's size
     * is what the store keeps of it: rows * cols pixel bytes and one
     * label byte per example (datasets.c). */
    if (st_prep_name(s, &st,
                     "SELECT (SELECT count(*) FROM runs WHERE owner = ?1"
                     " AND status IN ('queued', 'running')),"
                     " (SELECT CAST(coalesce(sum(examples * (\"rows\" * cols"
                     " + 1)), 0) AS BIGINT) FROM datasets WHERE owner = ?1),"
                     " (SELECT CAST(coalesce(sum(trials), 0) AS BIGINT)"
                     " FROM sweeps WHERE owner = ?1 AND status = 'running')",
                     owner, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        mn_errf(err, "store: %s: no row", what);
        goto done;
    }
    out->runs_active = st_col_int64(st, 0);
    out->dataset_bytes = st_col_int64(st, 1);
    out->sweep_trials = st_col_int64(st, 2);
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}
