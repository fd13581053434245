/* snapshots.c: the weight_snapshots table (migration 0005): a run's
 * first-layer weights at some period ends, as wsnap_encode's bytes
 * (engine/wsnap.h). Written by store_period_add_snapshot (periods.c) in
 * its period's transaction through st_snapshot_put; read through
 * snapshots.h.
 *
 * Three statements in the common dialect (store_internal.h) over db.c's
 * helpers, so that both drivers run them unchanged: an upsert with ON
 * CONFLICT, ?N parameters, length() of a BLOB (SQLite) or bytea
 * (PostgreSQL). The upsert is stepped with st_step_later: on PostgreSQL
 * it goes with its period's COMMIT, its bytes copied out at the call. The
 * blob is opaque here; the reader (wsnap_decode) checks it. A run's rows
 * go with it (ON DELETE CASCADE). */
#include "server/store/snapshots.h"

#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

/* Stores data[0..len) (borrowed) as run id's snapshot of `period` at
 * `step` inside the caller's write transaction, replacing one there (a
 * resumed run redoes the period). 0 or -1. */
int st_snapshot_put(store *s, int64_t id, uint32_t period, uint32_t step,
                    const uint8_t *data, size_t len, const char *what,
                    mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    if (!data || !len || len > INT32_MAX)
        return mn_errf(err, "store: %s: a weight snapshot of %zu bytes", what,
                       len);
    if (st_prep_id(s, &st,
                   "INSERT INTO weight_snapshots (run_id, period, step, data)"
                   " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (run_id, period)"
                   " DO UPDATE SET step = excluded.step, data = excluded.data",
                   id, what, err))
        goto done;
    st_bind_int64(st, 2, period);
    st_bind_int64(st, 3, step);
    if (st_bind_blob(st, 4, data, len) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    if (st_step_later(s, st, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    return rc;
}

/* A st_row_fill for (period, step, length(data)) rows. */
static int snapshot_info_from_row(st_stmt *st, void *dst, const char *what,
                                  mn_err *err)
{
    store_snapshot_info *e = dst;
    if (st_col_u32(st, 0, &e->period, what, err) ||
        st_col_u32(st, 1, &e->step, what, err) ||
        st_col_u32(st, 2, &e->bytes, what, err))
        return -1;
    return 0;
}

int store_snapshot_list(store *s, int64_t id, store_snapshot_info **out,
                        size_t *n, mn_err *err)
{
    const char *what = "snapshot_list";
    int rc = -1;
    st_stmt *st = NULL;
    void *arr = NULL;
    size_t cnt = 0;
    run_status status;

    *out = NULL;
    *n = 0;
    if (st_tx_read(s, what, err)) goto done;
    int r = st_run_state(s, id, &status, NULL, 0, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (st_prep_id(s, &st,
                   "SELECT period, step, length(data) FROM weight_snapshots"
                   " WHERE run_id = ?1 ORDER BY period",
                   id, what, err))
        goto done;
    if (st_collect_rows(s, st, sizeof(store_snapshot_info),
                        snapshot_info_from_row, &arr, &cnt, what, err))
        goto done;
    st_finalize(st);
    st = NULL;
    if (st_tx_commit(s, what, err)) goto done;
    *out = arr;
    *n = cnt;
    arr = NULL;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    free(arr);
    return st_rc(s, rc);
}

int store_snapshot_get(store *s, int64_t id, uint32_t period, uint8_t **buf,
                       size_t *len, uint32_t *step, mn_err *err)
{
    const char *what = "snapshot_get";
    int rc = -1;
    st_stmt *st = NULL;

    *buf = NULL;
    *len = 0;
    if (st_prep_id(s, &st,
                   "SELECT step, data FROM weight_snapshots"
                   " WHERE run_id = ?1 AND period = ?2",
                   id, what, err))
        goto done;
    st_bind_int64(st, 2, period);
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    uint32_t stp = 0;
    if (st_col_u32(st, 0, &stp, what, err)) goto done;
    if (st_col_blob_dup(st, 1, buf, len, what, err)) goto done;
    if (step) *step = stp;
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}
