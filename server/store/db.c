/* db.c: the store's helpers over its driver (store_internal.h): opening a
 * store (the driver chosen by the target: a postgresql:// URI or a file
 * path), preparing, binding, stepping and reading statements,
 * transactions, and the classification of errors into STORE_UNAVAILABLE.
 * The store files call these; only the drivers (sqlite.c, pg.c) call a
 * database library. */
#include "server/store/store.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store/store_internal.h"

/* Milliseconds since the epoch (wall clock). */
int64_t st_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int st_fail(store *s, const char *what, mn_err *err)
{
    if (err) s->unavailable = s->drv->transient(s->conn);
    return mn_errf(err, "store: %s: %s", what, s->drv->errmsg(s->conn));
}

/* The return of a public function: rc, but STORE_UNAVAILABLE for a -1
 * whose database error was transient. Clears the classification, so
 * that the next call starts clean. */
int st_rc(store *s, int rc)
{
    int transient = s->unavailable;
    s->unavailable = 0;
    return rc == -1 && transient ? STORE_UNAVAILABLE : rc;
}

int st_prep(store *s, st_stmt **st, const char *sql, const char *what,
            mn_err *err)
{
    st_finalize(*st);
    *st = NULL;
    int r = s->drv->prepare(s->conn, sql, st);
    if (r == -2) {
        if (err) s->unavailable = 1; /* as SQLITE_NOMEM */
        return mn_errf(err, "store: %s: out of memory", what);
    }
    if (r) return st_fail(s, what, err);
    return 0;
}

int st_prep_id(store *s, st_stmt **st, const char *sql, int64_t id,
               const char *what, mn_err *err)
{
    if (st_prep(s, st, sql, what, err)) return -1;
    st_bind_int64(*st, 1, id);
    return 0;
}

int st_prep_name(store *s, st_stmt **st, const char *sql, const char *name,
                 const char *what, mn_err *err)
{
    if (st_prep(s, st, sql, what, err)) return -1;
    if (st_bind_text(*st, 1, name)) return st_fail(s, what, err);
    return 0;
}

int st_step_done(store *s, st_stmt *st, const char *what, mn_err *err)
{
    int r = st->drv->step(st);
    if (r == 0) return 0;
    if (r == 1) return mn_errf(err, "store: %s: unexpected row", what);
    return st_fail(s, what, err);
}

int st_step_later(store *s, st_stmt *st, const char *what, mn_err *err)
{
    if (!st->drv->step_later) return st_step_done(s, st, what, err);
    return st->drv->step_later(st) ? st_fail(s, what, err) : 0;
}

/* Inside the caller's transaction. */
int st_exec_id(store *s, const char *sql, int64_t id, const char *what,
               mn_err *err)
{
    st_stmt *st = NULL;
    int rc = st_prep_id(s, &st, sql, id, what, err)
                 ? -1 : st_step_done(s, st, what, err);
    st_finalize(st);
    return rc;
}

int st_exec_id_later(store *s, const char *sql, int64_t id, const char *what,
                     mn_err *err)
{
    st_stmt *st = NULL;
    int rc = st_prep_id(s, &st, sql, id, what, err)
                 ? -1 : st_step_later(s, st, what, err);
    st_finalize(st);
    return rc;
}

int st_step_row(store *s, st_stmt *st, const char *what, mn_err *err)
{
    int r = st->drv->step(st);
    return r >= 0 ? r : st_fail(s, what, err);
}

int st_exec_script(store *s, const char *sql, const char *what, mn_err *err)
{
    return s->drv->exec(s->conn, sql) ? st_fail(s, what, err) : 0;
}

static int tx_begin(store *s, int kind, const char *what, mn_err *err)
{
    return s->drv->begin(s->conn, kind) ? st_fail(s, what, err) : 0;
}

/* Starts a write transaction (SQLite takes the write lock, waiting up to
 * the busy timeout; PostgreSQL locks rows as statements read them). */
int st_tx_write(store *s, const char *what, mn_err *err)
{
    return tx_begin(s, ST_TX_WRITE, what, err);
}

int st_owner_lock(store *s, const char *owner, const char *what,
                  mn_err *err)
{
    if (!s->drv->sql_lock_owner) return 0;
    st_stmt *st = NULL;
    int rc = -1;
    if (st_prep_name(s, &st, s->drv->sql_lock_owner, owner, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        mn_errf(err, "store: %s: the owner's lock returned no row", what);
        goto done;
    }
    rc = st_step_done(s, st, what, err);
done:
    st_finalize(st);
    return rc;
}

int st_owner_limit(store *s, const char *owner, store_limit *lim,
                   const char *count_sql, int64_t adding, const char *what,
                   mn_err *err)
{
    if (!owner || !lim || lim->max <= 0) return 0;
    if (st_owner_lock(s, owner, what, err)) return -1;
    st_stmt *st = NULL;
    int rc = -1;
    if (st_prep_name(s, &st, count_sql, owner, what, err)) goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        mn_errf(err, "store: %s: the owner's usage returned no row", what);
        goto done;
    }
    int64_t used = st_col_int64(st, 0);
    if (st_step_done(s, st, what, err)) goto done;
    rc = 0;
    if (used < 0 || adding > lim->max || used > lim->max - adding) {
        lim->used = used;
        rc = STORE_LIMIT;
        mn_errf(err, "store: %s: user %s holds %lld, adding %lld passes "
                "the limit %lld", what, owner, (long long)used,
                (long long)adding, (long long)lim->max);
    }
done:
    st_finalize(st);
    return rc;
}

/* Starts a read transaction (one snapshot for several queries). */
int st_tx_read(store *s, const char *what, mn_err *err)
{
    return tx_begin(s, ST_TX_READ, what, err);
}

/* Starts a migration's transaction: one process at a time. */
int st_tx_migrate(store *s, const char *what, mn_err *err)
{
    return tx_begin(s, ST_TX_MIGRATE, what, err);
}

/* Commits the open transaction (the caller's cleanup rolls back). */
int st_tx_commit(store *s, const char *what, mn_err *err)
{
    if (!s->drv->commit) return st_exec_script(s, "COMMIT", what, err);
    return s->drv->commit(s->conn) ? st_fail(s, what, err) : 0;
}

void st_tx_end(store *s)
{
    if (s && s->conn && s->drv->in_tx(s->conn))
        s->drv->rollback(s->conn); /* the call's own error stands */
}

int64_t st_changes(store *s) { return s->drv->changes(s->conn); }

int st_bind_int64(st_stmt *st, int i, int64_t v)
{
    return st->drv->bind_int64(st, i, v);
}

int st_bind_text(st_stmt *st, int i, const char *v)
{
    return st->drv->bind_text(st, i, v);
}

int st_bind_blob(st_stmt *st, int i, const void *p, size_t n)
{
    return st->drv->bind_blob(st, i, p, n);
}

int st_bind_null(st_stmt *st, int i) { return st->drv->bind_null(st, i); }

int st_bind_text_or_null(st_stmt *st, int i, const char *v)
{
    return v ? st_bind_text(st, i, v) : st_bind_null(st, i);
}

void st_finalize(st_stmt *st)
{
    if (st) st->drv->finalize(st);
}

int st_col_type(st_stmt *st, int i) { return st->drv->col_type(st, i); }

int st_col_null(st_stmt *st, int i) { return st_col_type(st, i) == ST_NULL; }

int64_t st_col_int64(st_stmt *st, int i) { return st->drv->col_int64(st, i); }

const void *st_col_blob(st_stmt *st, int i)
{
    return st->drv->col_blob(st, i);
}

int st_col_bytes(st_stmt *st, int i) { return st->drv->col_bytes(st, i); }

/* Binds a double, NaN as NULL. */
int st_bind_real(st_stmt *st, int i, double x)
{
    return isnan(x) ? st->drv->bind_null(st, i)
                    : st->drv->bind_double(st, i, x);
}

/* Reads a REAL column, NULL as NaN. */
double st_col_real(st_stmt *st, int i)
{
    return st_col_null(st, i)
               ? NAN
               : st->drv->col_double(st, i);
}

/* Reads a time column, NULL as 0. */
int64_t st_col_time(st_stmt *st, int i)
{
    return st_col_null(st, i)
               ? 0
               : st_col_int64(st, i);
}

/* Reads an INTEGER column that must fit a uint32. 0, or -1 naming the
 * column when it is NULL, not an integer or out of range. */
int st_col_u32(st_stmt *st, int i, uint32_t *out, const char *what,
                   mn_err *err)
{
    if (st_col_type(st, i) != ST_INTEGER)
        return mn_errf(err, "store: %s: corrupt row: %s is not an integer",
                       what, st->drv->col_name(st, i));
    int64_t v = st_col_int64(st, i);
    if (v < 0 || v > UINT32_MAX)
        return mn_errf(err, "store: %s: corrupt row: %s = %lld out of range",
                       what, st->drv->col_name(st, i), (long long)v);
    *out = (uint32_t)v;
    return 0;
}

/* Copies a NOT NULL text column into dst[cap]. 0, or -1 when NULL or too
 * long (a corrupted row). */
int st_col_text_into(st_stmt *st, int i, char *dst, size_t cap,
                         const char *what, mn_err *err)
{
    const char *t = st->drv->col_text(st, i);
    int n = st->drv->col_bytes(st, i);
    if (!t || n < 0 || (size_t)n >= cap)
        return mn_errf(err, "store: %s: corrupt row: bad %s", what,
                       st->drv->col_name(st, i));
    memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
    return 0;
}

/* Reads a status column (its name, run.h) into *out. 0, or -1 for a name
 * that is no status (a corrupted row). */
int st_col_status(st_stmt *st, int i, run_status *out,
                      const char *what, mn_err *err)
{
    if (run_status_parse(st->drv->col_text(st, i), out))
        return mn_errf(err, "store: %s: corrupt row: bad %s", what,
                       st->drv->col_name(st, i));
    return 0;
}

/* Copies a text column into a new string (*out NULL for SQL NULL when
 * null_ok). 0, or -1 on allocation failure or an unexpected NULL. */
int st_col_text_dup(st_stmt *st, int i, char **out, int null_ok,
                        const char *what, mn_err *err)
{
    *out = NULL;
    if (st_col_null(st, i)) {
        if (null_ok) return 0;
        return mn_errf(err, "store: %s: corrupt row: %s is NULL", what,
                       st->drv->col_name(st, i));
    }
    const char *t = st->drv->col_text(st, i);
    int n = st->drv->col_bytes(st, i);
    if (!t || n < 0)
        return mn_errf(err, "store: %s: out of memory reading %s", what,
                       st->drv->col_name(st, i));
    char *c = malloc((size_t)n + 1);
    if (!c) return mn_errf(err, "store: %s: out of memory", what);
    memcpy(c, t, (size_t)n);
    c[n] = '\0';
    *out = c;
    return 0;
}

/* Copies a BLOB column into a new buffer (*out, *len bytes; the caller's,
 * free). 0, or -1 with *out NULL when the column is not a non-empty BLOB
 * (a corrupted row: the message names the column) or out of memory. */
int st_col_blob_dup(st_stmt *st, int i, uint8_t **out, size_t *len,
                    const char *what, mn_err *err)
{
    *out = NULL;
    *len = 0;
    const void *data = st_col_blob(st, i); /* before col_bytes (SQLite) */
    int n = st_col_bytes(st, i);
    if (st_col_type(st, i) != ST_BLOB || n <= 0 || !data)
        return mn_errf(err, "store: %s: corrupt row: %s is empty", what,
                       st->drv->col_name(st, i));
    uint8_t *b = malloc((size_t)n);
    if (!b)
        return mn_errf(err, "store: %s: out of memory (%d bytes)", what, n);
    memcpy(b, data, (size_t)n);
    *out = b;
    *len = (size_t)n;
    return 0;
}

/* Makes room for `need` elements of `size` bytes in arr (capacity *cap,
 * doubled as needed). Returns the (possibly moved) array, or NULL on
 * allocation failure with arr untouched and still owned by the caller. */
void *st_grow(void *arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return arr;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2) return NULL;
        c *= 2;
    }
    if (c > SIZE_MAX / size) return NULL;
    void *p = realloc(arr, c * size);
    if (!p) return NULL;
    *cap = c;
    return p;
}

/* Steps st through its rows, appending to the array *arr (*cnt elements
 * of size bytes, grown as needed) one element per row, as fill reads it.
 * The array and its *cnt filled elements are the caller's, also on
 * failure. 0 or -1. */
int st_collect_rows(store *s, st_stmt *st, size_t size,
                        st_row_fill fill, void **arr, size_t *cnt,
                        const char *what, mn_err *err)
{
    size_t cap = 0;
    for (;;) {
        int r = st_step_row(s, st, what, err);
        if (r <= 0) return r;
        void *g = st_grow(*arr, &cap, *cnt + 1, size);
        if (!g) return mn_errf(err, "store: %s: out of memory", what);
        *arr = g;
        if (fill(st, (char *)g + *cnt * size, what, err)) return -1;
        ++*cnt;
    }
}


/* ---------------------------------------------------------------- open */

/* Whether target names a PostgreSQL database (a postgresql:// or
 * postgres:// URI) rather than a file. */
int store_target_is_postgresql(const char *target)
{
    return target && (!strncmp(target, "postgresql://", 13) ||
                      !strncmp(target, "postgres://", 11));
}

/* Opens target with its driver and applies the migrations up to
 * max_version. *out is NULL on failure. 0 or -1. */
int store_open_upto(store **out, const char *target, int max_version,
                    mn_err *err)
{
    int rc = -1;
    store *s = NULL;
    mn_err why = {{0}}; /* a migration's reason, reported with the target */

    *out = NULL;
    if (!target) return mn_errf(err, "store: open: no path");
    s = calloc(1, sizeof *s);
    if (!s) return mn_errf(err, "store: open %s: out of memory", target);
    s->drv = store_target_is_postgresql(target) ? &store_driver_postgresql
                                                : &store_driver_sqlite;
    if (s->drv->open(&s->conn, target, err)) goto done;
    if (st_migrate(s, max_version, &why)) {
        mn_errf(err, "%s (database %s)", why.msg,
                s->drv == &store_driver_sqlite ? target : "postgresql");
        goto done;
    }
    *out = s;
    s = NULL;
    rc = 0;
done:
    store_close(s);
    return rc;
}

/* Opens target and applies all pending migrations (see store.h). */
int store_open(store **out, const char *target, mn_err *err)
{
    return store_open_upto(out, target, INT_MAX, err);
}

/* Closes the connection (NULL is a no-op). */
void store_close(store *s)
{
    if (!s) return;
    if (s->conn) s->drv->close(s->conn);
    free(s);
}

/* The highest applied migration version, or -1 on error. */
int store_schema_version(store *s)
{
    int v = -1;
    st_stmt *st = NULL;
    if (st_prep(s, &st,
                "SELECT coalesce(max(version), 0) FROM schema_migrations",
                "schema_version", NULL))
        goto done;
    if (st_step_row(s, st, "schema_version", NULL) == 1) {
        int64_t x = st_col_int64(st, 0);
        if (x >= 0 && x <= INT_MAX) v = (int)x;
    }
done:
    st_finalize(st);
    return v;
}

/* The driver's housekeeping (SQLite: the WAL checkpoint; see store.h). */
int store_wal_checkpoint(store *s, mn_err *err)
{
    if (s->drv->maintain(s->conn, err))
        return st_rc(s, st_fail(s, "wal checkpoint", err));
    return 0;
}
