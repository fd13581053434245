/* snapshots.c: the weight_snapshots table (migrations/0005): a run's
 * first-layer weights at some period ends, as wsnap_encode's bytes
 * (engine/wsnap.h). Written by store_period_add_snapshot (store.c) in its
 * period's transaction through snapshot_put; read through snapshots.h.
 *
 * Self-contained on purpose: three statements over store.c's helpers
 * (store_internal.h), nothing else, in SQL that PostgreSQL runs too (an
 * upsert with ON CONFLICT, ?N parameters, length() of a BLOB/bytea), so
 * that another driver needs only these three. The blob is opaque here;
 * the reader (wsnap_decode) checks it. A run's rows go with it (ON DELETE
 * CASCADE). */
#include "server/store/snapshots.h"

#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

int snapshot_put(store *s, int64_t id, uint32_t period, uint32_t step,
                 const uint8_t *data, size_t len, const char *what,
                 mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (!data || !len || len > INT32_MAX)
        return mn_errf(err, "store: %s: a weight snapshot of %zu bytes", what,
                       len);
    if (prep_id(s, &st,
                "INSERT INTO weight_snapshots (run_id, period, step, data)"
                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (run_id, period)"
                " DO UPDATE SET step = excluded.step, data = excluded.data",
                id, what, err))
        goto done;
    if (sqlite3_bind_int64(st, 2, period) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, step) != SQLITE_OK ||
        sqlite3_bind_blob(st, 4, data, (int)len, SQLITE_STATIC) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Column i as a uint32 (a corrupt row is -1). */
static int col_u32(sqlite3_stmt *st, int i, uint32_t *out, const char *what,
                   mn_err *err)
{
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER || v < 0 ||
        v > UINT32_MAX)
        return mn_errf(err, "store: %s: corrupt row: column %d", what, i);
    *out = (uint32_t)v;
    return 0;
}

int store_snapshot_list(store *s, int64_t id, store_snapshot_info **out,
                        size_t *n, mn_err *err)
{
    const char *what = "snapshot_list";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    store_snapshot_info *arr = NULL;
    size_t cnt = 0, cap = 0;
    run_status status;

    *out = NULL;
    *n = 0;
    if (tx_read(s, what, err)) goto done;
    int r = run_state(s, id, &status, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (prep_id(s, &st,
                "SELECT period, step, length(data) FROM weight_snapshots"
                " WHERE run_id = ?1 ORDER BY period",
                id, what, err))
        goto done;
    while ((r = step_row(s, st, what, err)) > 0) {
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 16;
            store_snapshot_info *g = realloc(arr, nc * sizeof *arr);
            if (!g) {
                mn_errf(err, "store: %s: out of memory", what);
                goto done;
            }
            arr = g;
            cap = nc;
        }
        store_snapshot_info *e = &arr[cnt];
        if (col_u32(st, 0, &e->period, what, err) ||
            col_u32(st, 1, &e->step, what, err) ||
            col_u32(st, 2, &e->bytes, what, err))
            goto done;
        cnt++;
    }
    if (r < 0) goto done;
    sqlite3_finalize(st);
    st = NULL;
    if (tx_commit(s, what, err)) goto done;
    *out = arr;
    *n = cnt;
    arr = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    free(arr);
    return store_rc(s, rc);
}

int store_snapshot_get(store *s, int64_t id, uint32_t period, uint8_t **buf,
                       size_t *len, uint32_t *step, mn_err *err)
{
    const char *what = "snapshot_get";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    uint8_t *b = NULL;

    *buf = NULL;
    *len = 0;
    if (prep_id(s, &st,
                "SELECT step, data FROM weight_snapshots"
                " WHERE run_id = ?1 AND period = ?2",
                id, what, err))
        goto done;
    if (sqlite3_bind_int64(st, 2, period) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    uint32_t stp = 0;
    if (col_u32(st, 0, &stp, what, err)) goto done;
    const void *data = sqlite3_column_blob(st, 1);
    int n = sqlite3_column_bytes(st, 1);
    if (sqlite3_column_type(st, 1) != SQLITE_BLOB || n <= 0 || !data) {
        mn_errf(err, "store: %s: corrupt row: run %lld's snapshot of period "
                "%u is empty", what, (long long)id, period);
        goto done;
    }
    b = malloc((size_t)n);
    if (!b) {
        mn_errf(err, "store: %s: out of memory (%d bytes)", what, n);
        goto done;
    }
    memcpy(b, data, (size_t)n);
    *buf = b;
    *len = (size_t)n;
    if (step) *step = stp;
    b = NULL;
    rc = 0;
done:
    free(b);
    sqlite3_finalize(st);
    return store_rc(s, rc);
}
