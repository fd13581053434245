/* db.c: the store's connection to SQLite: opening a database (pragmas,
 * WAL), the helpers every store file uses to prepare, bind, step and read
 * statements, transactions, the classification of errors, and the
 * background WAL checkpoint. See store_internal.h for the conventions. */
#include "server/store/store.h"

#include <limits.h>
#include <math.h>
#include <sqlite3.h>
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

/* Whether an SQLite result code says "the database cannot be used for
 * now" rather than "this operation is wrong": a lock held too long
 * (BUSY, LOCKED), a full disk (FULL), an I/O error (IOERR_*), a file that
 * cannot be opened now (CANTOPEN), a WAL lock protocol race (PROTOCOL),
 * no memory (NOMEM). Everything else (CONSTRAINT, MISUSE, CORRUPT,
 * READONLY, ...) is permanent. */
static int code_transient(int code)
{
    switch (code & 0xff) {
    case SQLITE_BUSY: case SQLITE_LOCKED: case SQLITE_FULL:
    case SQLITE_IOERR: case SQLITE_CANTOPEN: case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
        return 1;
    default:
        return 0;
    }
}

/* Writes "store: <what>: <sqlite3_errmsg>" into err and classifies the
 * error (err NULL: a cleanup's error, not the call's); returns -1. */
int st_fail(store *s, const char *what, mn_err *err)
{
    if (err) s->unavailable = code_transient(sqlite3_extended_errcode(s->db));
    return mn_errf(err, "store: %s: %s", what, sqlite3_errmsg(s->db));
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

/* Finalizes *st and prepares sql (constant text) into it. 0 or -1. */
int st_prep(store *s, sqlite3_stmt **st, const char *sql,
                const char *what, mn_err *err)
{
    sqlite3_finalize(*st);
    *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return st_fail(s, what, err);
    return 0;
}

/* st_prep, then binds the run id to ?1. 0 or -1. */
int st_prep_id(store *s, sqlite3_stmt **st, const char *sql, int64_t id,
                   const char *what, mn_err *err)
{
    if (st_prep(s, st, sql, what, err)) return -1;
    if (sqlite3_bind_int64(*st, 1, id) != SQLITE_OK)
        return st_fail(s, what, err);
    return 0;
}

/* st_prep, then binds the name `name` (borrowed; it must outlive the
 * statement) as ?1. 0 or -1. */
int st_prep_name(store *s, sqlite3_stmt **st, const char *sql,
                     const char *name, const char *what, mn_err *err)
{
    if (st_prep(s, st, sql, what, err)) return -1;
    if (sqlite3_bind_text(*st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
        return st_fail(s, what, err);
    return 0;
}

/* Steps a statement that returns no row. 0 or -1. */
int st_step_done(store *s, sqlite3_stmt *st, const char *what,
                     mn_err *err)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) return 0;
    if (r == SQLITE_ROW)
        return mn_errf(err, "store: %s: unexpected row", what);
    return st_fail(s, what, err);
}

/* Runs a statement that takes the run id as ?1 and returns no row, inside
 * the caller's transaction. 0 or -1. */
int st_exec_id(store *s, const char *sql, int64_t id, const char *what,
                   mn_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = st_prep_id(s, &st, sql, id, what, err) ? -1
                                                 : st_step_done(s, st, what, err);
    sqlite3_finalize(st);
    return rc;
}

/* Steps a query: 1 when a row is ready, 0 when done, -1 on error. */
int st_step_row(store *s, sqlite3_stmt *st, const char *what,
                    mn_err *err)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) return 1;
    if (r == SQLITE_DONE) return 0;
    return st_fail(s, what, err);
}

/* Runs constant SQL text of any number of statements (pragmas,
 * migrations), stepping each to the end. 0 or -1. */
int st_exec_script(store *s, const char *sql, const char *what,
                       mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    const char *p = sql;

    while (*p) {
        const char *tail = NULL;
        if (sqlite3_prepare_v2(s->db, p, -1, &st, &tail) != SQLITE_OK) {
            st_fail(s, what, err);
            goto done;
        }
        if (!st) break; /* only comments or blanks are left */
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        }
        if (r != SQLITE_DONE) {
            st_fail(s, what, err);
            goto done;
        }
        sqlite3_finalize(st);
        st = NULL;
        p = tail;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Starts a write transaction (takes the write lock, waiting up to the
 * busy timeout). 0 or -1. */
int st_tx_write(store *s, const char *what, mn_err *err)
{
    return st_exec_script(s, "BEGIN IMMEDIATE", what, err);
}

/* Starts a read transaction (one snapshot for several queries). */
int st_tx_read(store *s, const char *what, mn_err *err)
{
    return st_exec_script(s, "BEGIN", what, err);
}

/* Commits the open transaction. 0 or -1 (the caller's cleanup rolls
 * back). */
int st_tx_commit(store *s, const char *what, mn_err *err)
{
    return st_exec_script(s, "COMMIT", what, err);
}

/* Cleanup: rolls back if a transaction is still open (after an error or
 * an early NOT_FOUND/CONFLICT). Statements must be finalized first. */
void st_tx_end(store *s)
{
    if (s && s->db && !sqlite3_get_autocommit(s->db))
        st_exec_script(s, "ROLLBACK", "rollback", NULL);
}

/* Binds a double, NaN as NULL. Returns the sqlite3_bind_* code. */
int st_bind_real(sqlite3_stmt *st, int i, double x)
{
    return isnan(x) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, x);
}

/* Reads a REAL column, NULL as NaN. */
double st_col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? NAN
               : sqlite3_column_double(st, i);
}

/* Reads a time column, NULL as 0. */
int64_t st_col_time(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? 0
               : sqlite3_column_int64(st, i);
}

/* Reads an INTEGER column that must fit a uint32. 0, or -1 naming the
 * column when it is NULL, not an integer or out of range. */
int st_col_u32(sqlite3_stmt *st, int i, uint32_t *out, const char *what,
                   mn_err *err)
{
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
        return mn_errf(err, "store: %s: corrupt row: %s is not an integer",
                       what, sqlite3_column_name(st, i));
    sqlite3_int64 v = sqlite3_column_int64(st, i);
    if (v < 0 || v > UINT32_MAX)
        return mn_errf(err, "store: %s: corrupt row: %s = %lld out of range",
                       what, sqlite3_column_name(st, i), (long long)v);
    *out = (uint32_t)v;
    return 0;
}

/* Copies a NOT NULL text column into dst[cap]. 0, or -1 when NULL or too
 * long (a corrupted row). */
int st_col_text_into(sqlite3_stmt *st, int i, char *dst, size_t cap,
                         const char *what, mn_err *err)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!t || n < 0 || (size_t)n >= cap)
        return mn_errf(err, "store: %s: corrupt row: bad %s", what,
                       sqlite3_column_name(st, i));
    memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
    return 0;
}

/* Reads a status column (its name, run.h) into *out. 0, or -1 for a name
 * that is no status (a corrupted row). */
int st_col_status(sqlite3_stmt *st, int i, run_status *out,
                      const char *what, mn_err *err)
{
    if (run_status_parse((const char *)sqlite3_column_text(st, i), out))
        return mn_errf(err, "store: %s: corrupt row: bad %s", what,
                       sqlite3_column_name(st, i));
    return 0;
}

/* Copies a text column into a new string (*out NULL for SQL NULL when
 * null_ok). 0, or -1 on allocation failure or an unexpected NULL. */
int st_col_text_dup(sqlite3_stmt *st, int i, char **out, int null_ok,
                        const char *what, mn_err *err)
{
    *out = NULL;
    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        if (null_ok) return 0;
        return mn_errf(err, "store: %s: corrupt row: %s is NULL", what,
                       sqlite3_column_name(st, i));
    }
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!t || n < 0)
        return mn_errf(err, "store: %s: out of memory reading %s", what,
                       sqlite3_column_name(st, i));
    char *c = malloc((size_t)n + 1);
    if (!c) return mn_errf(err, "store: %s: out of memory", what);
    memcpy(c, t, (size_t)n);
    c[n] = '\0';
    *out = c;
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
int st_collect_rows(store *s, sqlite3_stmt *st, size_t size,
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

/* Runs a pragma that answers one text row and checks the answer is
 * want1 or want2 (want2 may be NULL). 0 or -1. */
static int pragma_expect(store *s, const char *sql, const char *want1,
                         const char *want2, mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (st_prep(s, &st, sql, sql, err)) goto done;
    int r = st_step_row(s, st, sql, err);
    if (r < 0) goto done;
    const char *got = r ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (!got || (strcmp(got, want1) && (!want2 || strcmp(got, want2)))) {
        mn_errf(err, "store: %s: answered %s, expected %s", sql,
                got ? got : "nothing", want1);
        goto done;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Sets the automatic checkpoint (counted in pages) to about bytes of WAL
 * whatever the database's page size, which it keeps in s. 0 or -1. */
static int set_autocheckpoint(store *s, long long bytes, mn_err *err)
{
    const char *what = "PRAGMA page_size";
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (st_prep(s, &st, what, what, err)) goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    long long page = r ? sqlite3_column_int64(st, 0) : 0;
    if (page < 512) {
        mn_errf(err, "store: %s: answered %lld", what, page);
        goto done;
    }
    s->page_size = page;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint = %lld", bytes / page);
    rc = st_exec_script(s, sql, "open", err);
done:
    sqlite3_finalize(st);
    return rc;
}

/* Puts the database in WAL mode (persistent: a no-op once done). The
 * switch needs an exclusive lock and SQLite does not run the busy handler
 * for it, so when several connections open a fresh file at once the
 * losers get SQLITE_BUSY: retry every 10 ms up to the busy timeout. An
 * in-memory database answers "memory", which is accepted. 0 or -1. */
static int set_wal(store *s, mn_err *err)
{
    const char *what = "PRAGMA journal_mode = WAL";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    int64_t deadline = st_now_ms() + STORE_BUSY_MS;

    for (;;) {
        if (st_prep(s, &st, what, what, err)) goto done;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const char *got = (const char *)sqlite3_column_text(st, 0);
            if (got && (!strcmp(got, "wal") || !strcmp(got, "memory"))) break;
            mn_errf(err, "store: %s: answered %s", what, got ? got : "NULL");
            goto done;
        }
        if ((r & 0xff) != SQLITE_BUSY || st_now_ms() >= deadline) {
            st_fail(s, what, err);
            goto done;
        }
        sqlite3_finalize(st);
        st = NULL;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------- open (cont.) */
/* Opens path (creating it), configures the connection (busy timeout, WAL,
 * synchronous, foreign keys) and applies the migrations up to
 * max_version. *out is NULL on failure. 0 or -1. */
int store_open_upto(store **out, const char *path, int max_version,
                    mn_err *err)
{
    int rc = -1;
    store *s = NULL;
    mn_err why = {{0}}; /* the reason, reported with the path */

    *out = NULL;
    if (!path) return mn_errf(err, "store: open: no path");
    s = calloc(1, sizeof *s);
    if (!s) {
        mn_errf(err, "store: open %s: out of memory", path);
        goto done;
    }
    int r = sqlite3_open_v2(path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                SQLITE_OPEN_NOMUTEX,
                            NULL);
    if (r != SQLITE_OK) {
        mn_errf(err, "store: open %s: %s", path,
                s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(r));
        goto done;
    }
    sqlite3_extended_result_codes(s->db, 1);
    if (sqlite3_busy_timeout(s->db, STORE_BUSY_MS) != SQLITE_OK) {
        st_fail(s, "busy_timeout", &why);
        goto done;
    }
    /* small pages for a new database (ignored for an existing one): every
     * period commits a few rows, and each changed page goes to the log
     * whole (64 KiB pages made that ~600 KB a period); the checkpoint
     * blobs, a few hundred pages each, are paced (docs/STORAGE.md) */
    if (st_exec_script(s, "PRAGMA page_size = 4096", "open", &why)) goto done;
    if (set_wal(s, &why)) goto done;
    /* See DESIGN: NORMAL in WAL survives process death, not power loss. */
    if (st_exec_script(s, "PRAGMA synchronous = NORMAL", "open", &why) ||
        st_exec_script(s, "PRAGMA foreign_keys = ON", "open", &why) ||
        pragma_expect(s, "PRAGMA foreign_keys", "1", NULL, &why) ||
        /* truncate the WAL file back to 64 MiB after a checkpoint */
        st_exec_script(s, "PRAGMA journal_size_limit = 67108864", "open", &why) ||
        /* a long-running owner (the server) checkpoints in the background
         * with store_wal_checkpoint; the automatic one, which stalls the
         * committing thread (34 ms seen at 40 MiB), is only a backstop at
         * 256 MiB: quick runs write ~13 MB of checkpoints each */
        set_autocheckpoint(s, 256ll << 20, &why))
        goto done;
    if (st_migrate(s, max_version, &why)) goto done;

    *out = s;
    s = NULL;
    rc = 0;
done:
    if (rc && why.msg[0]) mn_errf(err, "%s (database %s)", why.msg, path);
    store_close(s);
    return rc;
}

/* Opens path and applies all pending migrations (see store.h). */
int store_open(store **out, const char *path, mn_err *err)
{
    return store_open_upto(out, path, INT_MAX, err);
}

/* Closes the connection (NULL is a no-op). */
void store_close(store *s)
{
    if (!s) return;
    sqlite3_close(s->db);
    free(s);
}

/* The highest applied migration version, or -1 on error. */
int store_schema_version(store *s)
{
    int v = -1;
    sqlite3_stmt *st = NULL;
    if (st_prep(s, &st,
             "SELECT coalesce(max(version), 0) FROM schema_migrations",
             "schema_version", NULL))
        goto done;
    if (st_step_row(s, st, "schema_version", NULL) == 1) {
        sqlite3_int64 x = sqlite3_column_int64(st, 0);
        if (x >= 0 && x <= INT_MAX) v = (int)x;
    }
done:
    sqlite3_finalize(st);
    return v;
}
/* Passive, then a restart past STORE_WAL_RESTART_BYTES (see store.h). */
int store_wal_checkpoint(store *s, mn_err *err)
{
    int log_frames = 0;
    int r = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                      &log_frames, NULL);
    if (r != SQLITE_OK && r != SQLITE_BUSY)
        return st_fail(s, "wal checkpoint", err);
    if ((long long)log_frames * s->page_size < STORE_WAL_RESTART_BYTES)
        return 0;
    /* writers that never pause never let a passive checkpoint finish
     * before the next one appends, so the log would only grow: wait a
     * little (writers then wait too) for a checkpoint after which the next
     * writer starts the log again from its beginning */
    sqlite3_busy_timeout(s->db, STORE_WAL_RESTART_WAIT_MS);
    r = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_RESTART,
                                  NULL, NULL);
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    if (r != SQLITE_OK && r != SQLITE_BUSY)
        return st_rc(s, st_fail(s, "wal checkpoint", err));
    return 0;
}

