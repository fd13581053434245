/* datasets.c: uploaded datasets (pixels and labels as BLOBs). */
#include "server/store/store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

/* ---------------------------------------------------------------- datasets */

/* Stores d under name (1..63 bytes) with created_at = now. d must hold
 * n > 0 examples of rows x cols > 0 pixels and labels 0..9.
 * STORE_CONFLICT if the name exists. */
int store_dataset_put(store *s, const char *name, const ds_dataset *d,
                      mn_err *err)
{
    return store_dataset_put_owned(s, name, d, NULL, 0, NULL, err);
}

/* ... owned by owner (NULL: none), public or not, within the owner's
 * bytes_limit (NULL: none). */
int store_dataset_put_owned(store *s, const char *name, const ds_dataset *d,
                            const char *owner, int public_,
                            store_limit *bytes_limit, mn_err *err)
{
    const char *what = "dataset_put";
    int rc = -1;
    st_stmt *st = NULL;

    if (!name || !*name || strlen(name) > STORE_NAME_MAX)
        return mn_errf(err, "store: %s: name must be 1..%d bytes", what,
                       STORE_NAME_MAX);
    if (!d || !d->n || !d->rows || !d->cols || !d->pixels || !d->labels)
        return mn_errf(err, "store: %s: %s: empty dataset", what, name);
    uint64_t npix = (uint64_t)d->n * d->rows * d->cols;
    if ((uint64_t)d->rows * d->cols > UINT32_MAX || npix > INT32_MAX)
        return mn_errf(err, "store: %s: %s: too large (%llu pixel bytes)",
                       what, name, (unsigned long long)npix);
    for (uint32_t i = 0; i < d->n; i++)
        if (d->labels[i] >= DS_CLASSES)
            return mn_errf(err, "store: %s: %s: label %u of example %u is "
                           "not 0..9", what, name, d->labels[i], i);

    if (st_tx_write(s, what, err)) goto done;
    /* the size as stored, as STORE_SQL_DATASET_BYTES counts it */
    rc = st_owner_limit(s, owner, bytes_limit, STORE_SQL_DATASET_BYTES,
                        (int64_t)(npix + d->n), what, err);
    if (rc) goto done;
    rc = -1;
    int r = st_dataset_exists(s, name, 0, what, err);
    if (r < 0) goto done;
    if (r) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: dataset %s exists", what, name);
        goto done;
    }
    if (st_prep(s, &st,
             "INSERT INTO datasets (name, examples, \"rows\", cols,"
             " created_at, pixels, labels, owner, public)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
             " ON CONFLICT (name) DO NOTHING",
             what, err))
        goto done;
    st_bind_int64(st, 9, public_ ? 1 : 0);
    if (st_bind_text(st, 1, name) != 0 ||
        st_bind_text_or_null(st, 8, owner) != 0 ||
        st_bind_blob(st, 6, d->pixels, npix) != 0 ||
        st_bind_blob(st, 7, d->labels, d->n) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 2, d->n);
    st_bind_int64(st, 3, d->rows);
    st_bind_int64(st, 4, d->cols);
    st_bind_int64(st, 5, st_now_ms());
    if (st_step_done(s, st, what, err)) goto done;
    /* a concurrent upload of the same name committed first */
    if (st_changes(s) == 0) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: dataset %s exists", what, name);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Loads dataset `name` into *out (new arrays; *out zeroed on failure).
 * Blob sizes and labels are checked: a corrupted row is -1.
 * STORE_NOT_FOUND when there is no such dataset. */
int store_dataset_get(store *s, const char *name, ds_dataset *out,
                      mn_err *err)
{
    const char *what = "dataset_get";
    int rc = -1;
    st_stmt *st = NULL;
    ds_dataset d = {0};

    memset(out, 0, sizeof *out);
    if (!name) return mn_errf(err, "store: %s: no name", what);
    if (st_prep_name(s, &st,
                  "SELECT examples, \"rows\", cols, pixels, labels FROM datasets"
                  " WHERE name = ?1",
                  name, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (st_col_u32(st, 0, &d.n, what, err) ||
        st_col_u32(st, 1, &d.rows, what, err) ||
        st_col_u32(st, 2, &d.cols, what, err))
        goto done;
    if (!d.n || !d.rows || !d.cols || d.rows > STORE_MAX_SIDE ||
        d.cols > STORE_MAX_SIDE) {
        mn_errf(err, "store: %s: corrupt row: dataset %s has shape "
                "%u x %u x %u", what, name, d.n, d.rows, d.cols);
        goto done;
    }
    uint64_t npix = (uint64_t)d.n * d.rows * d.cols;
    const void *px = st_col_blob(st, 3);
    int npx = st_col_bytes(st, 3);
    const uint8_t *lb = st_col_blob(st, 4);
    int nlb = st_col_bytes(st, 4);
    if (!px || npx < 0 || (uint64_t)npx != npix) {
        mn_errf(err, "store: %s: corrupt row: dataset %s has %d pixel "
                "bytes, expected %llu", what, name, npx,
                (unsigned long long)npix);
        goto done;
    }
    if (!lb || nlb < 0 || (uint64_t)nlb != d.n) {
        mn_errf(err, "store: %s: corrupt row: dataset %s has %d labels, "
                "expected %u", what, name, nlb, d.n);
        goto done;
    }
    for (uint32_t i = 0; i < d.n; i++)
        if (lb[i] >= DS_CLASSES) {
            mn_errf(err, "store: %s: corrupt row: dataset %s: label %u of "
                    "example %u is not 0..9", what, name, lb[i], i);
            goto done;
        }
    d.pixels = malloc((size_t)npix);
    d.labels = malloc(d.n);
    if (!d.pixels || !d.labels) {
        mn_errf(err, "store: %s: out of memory (%llu bytes)", what,
                (unsigned long long)npix);
        goto done;
    }
    memcpy(d.pixels, px, (size_t)npix);
    memcpy(d.labels, lb, d.n);
    *out = d;
    memset(&d, 0, sizeof d);
    rc = 0;
done:
    st_finalize(st);
    ds_free(&d);
    return st_rc(s, rc);
}

/* Deletes dataset `name` in one write transaction, unless a run that has
 * not ended uses it (runs.dataset): STORE_CONFLICT then, with the oldest
 * such run's id and status. A run created in a concurrent transaction
 * (store_run_create, uploaded) is seen here, or sees the row gone. */
int store_dataset_delete(store *s, const char *name, int64_t *run_id,
                         run_status *run_st, mn_err *err)
{
    const char *what = "dataset_delete";
    int rc = -1;
    st_stmt *st = NULL;

    if (!name) return mn_errf(err, "store: %s: no name", what);
    if (st_tx_write(s, what, err)) goto done;
    /* the dataset's row locked first: a run being created on it
     * (st_dataset_exists with lock) commits before the runs are read */
    if (st_dataset_exists(s, name, 1, what, err) < 0) goto done;
    if (st_prep_name(s, &st,
                  "SELECT id, status FROM runs WHERE dataset = ?1 ORDER BY id",
                  name, what, err))
        goto done;
    int r;
    while ((r = st_step_row(s, st, what, err)) == 1) {
        run_status cur;
        if (st_col_status(st, 1, &cur, what, err)) goto done;
        if (run_status_ended(cur)) continue;
        int64_t id = st_col_int64(st, 0);
        if (run_id) *run_id = id;
        if (run_st) *run_st = cur;
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: dataset %s is used by run %lld (%s)", what,
                name, (long long)id, run_status_name(cur));
        goto done;
    }
    if (r < 0) goto done;
    if (st_prep(s, &st, "DELETE FROM datasets WHERE name = ?1", what, err))
        goto done;
    if (st_bind_text(st, 1, name) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    if (st_step_done(s, st, what, err)) goto done;
    if (st_changes(s) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no dataset %s", what, name);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Marks an upload public or not, in one statement. */
int store_dataset_set_public(store *s, const char *name, int public_,
                             mn_err *err)
{
    const char *what = "dataset_set_public";
    int rc = -1;
    st_stmt *st = NULL;

    if (!name) return mn_errf(err, "store: %s: no name", what);
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep_name(s, &st, "UPDATE datasets SET public = ?2 WHERE name = ?1",
                     name, what, err))
        goto done;
    st_bind_int64(st, 2, public_ ? 1 : 0);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_changes(s) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no dataset %s", what, name);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* The columns dataset_info_from_row reads, in its order. */
#define DATASET_INFO_COLS \
    "name, examples, \"rows\", cols, created_at, owner, public"

/* Fills *out from a row of DATASET_INFO_COLS. */
static int dataset_info_from_row(st_stmt *st, void *dst,
                                 const char *what, mn_err *err)
{
    store_dataset_info *out = dst;
    memset(out, 0, sizeof *out);
    if (st_col_text_into(st, 0, out->name, sizeof out->name, what, err) ||
        st_col_u32(st, 1, &out->examples, what, err) ||
        st_col_u32(st, 2, &out->rows, what, err) ||
        st_col_u32(st, 3, &out->cols, what, err))
        return -1;
    out->created_at = st_col_time(st, 4);
    if (!st_col_null(st, 5) &&
        st_col_text_into(st, 5, out->owner, sizeof out->owner, what, err))
        return -1;
    out->public_ = st_col_int64(st, 6) != 0;
    return 0;
}

/* The dataset's name, shape and creation time (no pixels read).
 * STORE_NOT_FOUND when there is no such dataset. */
int store_dataset_info_get(store *s, const char *name,
                           store_dataset_info *out, mn_err *err)
{
    const char *what = "dataset_info_get";
    int rc = -1;
    st_stmt *st = NULL;

    memset(out, 0, sizeof *out);
    if (!name) return mn_errf(err, "store: %s: no name", what);
    if (st_prep_name(s, &st,
                  "SELECT " DATASET_INFO_COLS " FROM datasets"
                  " WHERE name = ?1",
                  name, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (dataset_info_from_row(st, out, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}

/* Every uploaded dataset by name into a new array (free()); *out NULL and
 * *n 0 when there are none. */
int store_dataset_list(store *s, store_dataset_info **out, size_t *n,
                       mn_err *err)
{
    const char *what = "dataset_list";
    int rc = -1;
    st_stmt *st = NULL;
    void *v = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (st_prep(s, &st,
             "SELECT " DATASET_INFO_COLS " FROM datasets"
             " ORDER BY name",
             what, err))
        goto done;
    if (st_collect_rows(s, st, sizeof(store_dataset_info), dataset_info_from_row,
                     &v, &cnt, what, err))
        goto done;
    *out = v;
    *n = cnt;
    v = NULL;
    rc = 0;
done:
    st_finalize(st);
    free(v);
    return st_rc(s, rc);
}

