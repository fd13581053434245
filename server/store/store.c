/* store.c: the SQLite implementation of store.h (runs, per-period metrics,
 * confusion matrices, checkpoints, uploaded datasets, named models).
 *
 * DESIGN
 * - One `store` = one sqlite3 connection, used by one thread at a time
 *   (opened with SQLITE_OPEN_NOMUTEX). Threads share the database file,
 *   never a connection.
 * - WAL mode: readers never block the writer nor each other. Writers
 *   serialise through SQLite's write lock; busy_timeout (10 s) makes a
 *   writer wait for it instead of failing with SQLITE_BUSY.
 * - Every write runs in BEGIN IMMEDIATE ... COMMIT: the write lock is
 *   taken up front, so a transaction never has to upgrade from read to
 *   write (the upgrade fails at once with SQLITE_BUSY_SNAPSHOT in WAL,
 *   without waiting). Reads made of several statements run in a plain
 *   BEGIN so that they see one snapshot. On any error the transaction is
 *   rolled back in the cleanup label.
 * - synchronous=NORMAL: in WAL mode a committed transaction is written
 *   to the WAL file (the OS page cache) before COMMIT returns, so it
 *   survives the death of the process (SIGKILL, crash, OOM kill); only a
 *   power loss or kernel crash can lose the last transactions before the
 *   next checkpoint syncs them. That is the service's durability
 *   contract: no accepted run is lost when mnistd dies. FULL would also
 *   survive power loss at the cost of an fsync per commit (one per
 *   period and per request that writes).
 * - Prepared statements only; user data is always bound, never pasted
 *   into SQL. The only SQL run as text is constant: the pragmas and the
 *   migrations embedded at build time (store_internal.h).
 * - Metrics: NaN is stored as SQL NULL and NULL reads back as NaN. Times
 *   are ms since the epoch; 0 in a store_run means NULL.
 * - Values read back are checked (ranges, string lengths, blob sizes,
 *   labels <= 9): a corrupted row is an error, never a crash.
 * - No globals and no static mutable state.
 *
 * Every function returns 0, STORE_NOT_FOUND, STORE_CONFLICT, or -1 with
 * "store: <operation>: <reason>" (sqlite3_errmsg for database errors);
 * STORE_UNAVAILABLE instead of -1 when the database error is transient
 * (code_transient). Public functions return through store_rc, which
 * makes that distinction; static helpers return -1. */
#include "server/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "server/store/store_internal.h"

#define STORE_BUSY_MS 10000              /* sqlite3_busy_timeout */
/* store_wal_checkpoint restarts the log once it holds this much, waiting
 * at most this long for the writers and readers of the moment */
#define STORE_WAL_RESTART_BYTES (16ll << 20)
#define STORE_WAL_RESTART_WAIT_MS 200
#define STORE_COUNTS_BYTES (DS_CLASSES * DS_CLASSES * 4)
#define STORE_NAME_MAX 63                /* dataset name bytes (char[64]) */
#define STORE_MAX_SIDE 65535u            /* dataset rows/cols read back */

struct store {
    sqlite3 *db;     /* owned */
    int unavailable; /* this call's database error is transient (db_fail
                      * sets it; store_rc reads and clears it on return) */
    long long page_size; /* bytes, read at open */
    sqlite3_stmt *rollback; /* "ROLLBACK", prepared at open (owned): a
                             * rollback that had to be prepared could fail
                             * for want of memory and leave the
                             * transaction open on this connection */
};

/* ---------------------------------------------------------------- helpers */


/* Milliseconds since the epoch (wall clock). */
static int64_t now_ms(void)
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
static int db_fail(store *s, const char *what, mn_err *err)
{
    if (err) s->unavailable = code_transient(sqlite3_extended_errcode(s->db));
    return mn_errf(err, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

/* The return of a public function: rc, but STORE_UNAVAILABLE for a -1
 * whose database error was transient. Clears the classification, so
 * that the next call starts clean. */
static int store_rc(store *s, int rc)
{
    int transient = s->unavailable;
    s->unavailable = 0;
    return rc == -1 && transient ? STORE_UNAVAILABLE : rc;
}

/* Finalizes *st and prepares sql (constant text) into it. 0 or -1. */
static int prep(store *s, sqlite3_stmt **st, const char *sql,
                const char *what, mn_err *err)
{
    sqlite3_finalize(*st);
    *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_fail(s, what, err);
    return 0;
}

/* prep, then binds the run id to ?1. 0 or -1. */
static int prep_id(store *s, sqlite3_stmt **st, const char *sql, int64_t id,
                   const char *what, mn_err *err)
{
    if (prep(s, st, sql, what, err)) return -1;
    if (sqlite3_bind_int64(*st, 1, id) != SQLITE_OK)
        return db_fail(s, what, err);
    return 0;
}

/* prep, then binds the name `name` (borrowed; it must outlive the
 * statement) as ?1. 0 or -1. */
static int prep_name(store *s, sqlite3_stmt **st, const char *sql,
                     const char *name, const char *what, mn_err *err)
{
    if (prep(s, st, sql, what, err)) return -1;
    if (sqlite3_bind_text(*st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
        return db_fail(s, what, err);
    return 0;
}

/* Steps a statement that returns no row. 0 or -1. */
static int step_done(store *s, sqlite3_stmt *st, const char *what,
                     mn_err *err)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) return 0;
    if (r == SQLITE_ROW)
        return mn_errf(err, "store: %s: unexpected row", what);
    return db_fail(s, what, err);
}

/* Runs a statement that takes the run id as ?1 and returns no row, inside
 * the caller's transaction. 0 or -1. */
static int exec_id(store *s, const char *sql, int64_t id, const char *what,
                   mn_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prep_id(s, &st, sql, id, what, err) ? -1
                                                 : step_done(s, st, what, err);
    sqlite3_finalize(st);
    return rc;
}

/* Steps a query: 1 when a row is ready, 0 when done, -1 on error. */
static int step_row(store *s, sqlite3_stmt *st, const char *what,
                    mn_err *err)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) return 1;
    if (r == SQLITE_DONE) return 0;
    return db_fail(s, what, err);
}

/* Runs constant SQL text of any number of statements (pragmas,
 * migrations), stepping each to the end. 0 or -1. */
static int exec_script(store *s, const char *sql, const char *what,
                       mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    const char *p = sql;

    while (*p) {
        const char *tail = NULL;
        if (sqlite3_prepare_v2(s->db, p, -1, &st, &tail) != SQLITE_OK) {
            db_fail(s, what, err);
            goto done;
        }
        if (!st) break; /* only comments or blanks are left */
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        }
        if (r != SQLITE_DONE) {
            db_fail(s, what, err);
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
static int tx_write(store *s, const char *what, mn_err *err)
{
    return exec_script(s, "BEGIN IMMEDIATE", what, err);
}

/* Starts a read transaction (one snapshot for several queries). */
static int tx_read(store *s, const char *what, mn_err *err)
{
    return exec_script(s, "BEGIN", what, err);
}

/* Commits the open transaction. 0 or -1 (the caller's cleanup rolls
 * back). */
static int tx_commit(store *s, const char *what, mn_err *err)
{
    return exec_script(s, "COMMIT", what, err);
}

/* Cleanup: rolls back if a transaction is still open (after an error or
 * an early NOT_FOUND/CONFLICT), with the statement prepared at open, so
 * that no allocation can keep the transaction open. Statements must be
 * finalized first. */
static void tx_end(store *s)
{
    if (s && s->db && !sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->rollback);
        sqlite3_reset(s->rollback);
    }
}

/* Binds a double, NaN as NULL. Returns the sqlite3_bind_* code. */
static int bind_real(sqlite3_stmt *st, int i, double x)
{
    return isnan(x) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, x);
}

/* Reads a REAL column, NULL as NaN. */
static double col_real(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? NAN
               : sqlite3_column_double(st, i);
}

/* Reads a time column, NULL as 0. */
static int64_t col_time(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? 0
               : sqlite3_column_int64(st, i);
}

/* Reads an INTEGER column that must fit a uint32. 0, or -1 naming the
 * column when it is NULL, not an integer or out of range. */
static int col_u32(sqlite3_stmt *st, int i, uint32_t *out, const char *what,
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
static int col_text_into(sqlite3_stmt *st, int i, char *dst, size_t cap,
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
static int col_status(sqlite3_stmt *st, int i, run_status *out,
                      const char *what, mn_err *err)
{
    if (run_status_parse((const char *)sqlite3_column_text(st, i), out))
        return mn_errf(err, "store: %s: corrupt row: bad %s", what,
                       sqlite3_column_name(st, i));
    return 0;
}

/* Copies a text column into a new string (*out NULL for SQL NULL when
 * null_ok). 0, or -1 on allocation failure or an unexpected NULL. */
static int col_text_dup(sqlite3_stmt *st, int i, char **out, int null_ok,
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
static void *grow(void *arr, size_t *cap, size_t need, size_t size)
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

/* Fills one array element from the statement's current row. */
typedef int (*row_fill)(sqlite3_stmt *st, void *dst, const char *what,
                        mn_err *err);

/* Steps st through its rows, appending to the array *arr (*cnt elements
 * of size bytes, grown as needed) one element per row, as fill reads it.
 * The array and its *cnt filled elements are the caller's, also on
 * failure. 0 or -1. */
static int collect_rows(store *s, sqlite3_stmt *st, size_t size,
                        row_fill fill, void **arr, size_t *cnt,
                        const char *what, mn_err *err)
{
    size_t cap = 0;
    for (;;) {
        int r = step_row(s, st, what, err);
        if (r <= 0) return r;
        void *g = grow(*arr, &cap, *cnt + 1, size);
        if (!g) return mn_errf(err, "store: %s: out of memory", what);
        *arr = g;
        if (fill(st, (char *)g + *cnt * size, what, err)) return -1;
        ++*cnt;
    }
}

/* Packs counts[t][p] as 100 little-endian uint32 (row-major). */
static void counts_encode(const uint32_t c[DS_CLASSES][DS_CLASSES],
                          uint8_t out[STORE_COUNTS_BYTES])
{
    for (int t = 0; t < DS_CLASSES; t++)
        for (int p = 0; p < DS_CLASSES; p++) {
            uint8_t *o = out + 4 * (t * DS_CLASSES + p);
            uint32_t v = c[t][p];
            o[0] = (uint8_t)v;
            o[1] = (uint8_t)(v >> 8);
            o[2] = (uint8_t)(v >> 16);
            o[3] = (uint8_t)(v >> 24);
        }
}

/* Unpacks what counts_encode wrote. */
static void counts_decode(const uint8_t *in,
                          uint32_t c[DS_CLASSES][DS_CLASSES])
{
    for (int t = 0; t < DS_CLASSES; t++)
        for (int p = 0; p < DS_CLASSES; p++) {
            const uint8_t *b = in + 4 * (t * DS_CLASSES + p);
            c[t][p] = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                      (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        }
}

/* Reads the status of run id into *status (and its best validation
 * log loss, NaN when none, if best is not NULL). 0, STORE_NOT_FOUND or
 * -1. */
static int run_state(store *s, int64_t id, run_status *status, double *best,
                     const char *what, mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (prep_id(s, &st,
                "SELECT status, best_validation_log_loss FROM runs"
                " WHERE id = ?1",
                id, what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (col_status(st, 0, status, what, err)) goto done;
    if (best) *best = col_real(st, 1);
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------- open */

/* Runs a pragma that answers one text row and checks the answer is
 * want1 or want2 (want2 may be NULL). 0 or -1. */
static int pragma_expect(store *s, const char *sql, const char *want1,
                         const char *want2, mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, sql, sql, err)) goto done;
    int r = step_row(s, st, sql, err);
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
    if (prep(s, &st, what, what, err)) goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    long long page = r ? sqlite3_column_int64(st, 0) : 0;
    if (page < 512) {
        mn_errf(err, "store: %s: answered %lld", what, page);
        goto done;
    }
    s->page_size = page;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint = %lld", bytes / page);
    rc = exec_script(s, sql, "open", err);
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
    int64_t deadline = now_ms() + STORE_BUSY_MS;

    for (;;) {
        if (prep(s, &st, what, what, err)) goto done;
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const char *got = (const char *)sqlite3_column_text(st, 0);
            if (got && (!strcmp(got, "wal") || !strcmp(got, "memory"))) break;
            mn_errf(err, "store: %s: answered %s", what, got ? got : "NULL");
            goto done;
        }
        if ((r & 0xff) != SQLITE_BUSY || now_ms() >= deadline) {
            db_fail(s, what, err);
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

/* Whether migration `version` is recorded (*yes); the schema_migrations
 * table must exist. 0 or -1. */
static int migration_applied(store *s, int version, int *yes, mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (prep(s, &st, "SELECT 1 FROM schema_migrations WHERE version = ?1",
             "migrate", err))
        goto done;
    if (sqlite3_bind_int(st, 1, version) != SQLITE_OK) {
        db_fail(s, "migrate", err);
        goto done;
    }
    int r = step_row(s, st, "migrate", err);
    if (r < 0) goto done;
    *yes = r;
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Applies migration m in its own write transaction unless another
 * connection recorded it meanwhile (checked under the write lock). 0 or
 * -1 naming the migration. */
static int migration_apply(store *s, const store_migration *m, mn_err *err)
{
    int rc = -1, yes = 0;
    sqlite3_stmt *st = NULL;
    mn_err why = {{0}};

    if (tx_write(s, "migrate", err)) goto done;
    if (exec_script(s,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL,"
                    " applied_at INTEGER NOT NULL)",
                    "migrate", err))
        goto done;
    if (migration_applied(s, m->version, &yes, err)) goto done;
    if (!yes) {
        if (exec_script(s, m->sql, m->name, &why)) {
            mn_errf(err, "store: migration %s failed: %s", m->name,
                    why.msg);
            goto done;
        }
        if (prep(s, &st,
                 "INSERT INTO schema_migrations (version, name, applied_at)"
                 " VALUES (?1, ?2, ?3)",
                 "migrate", err))
            goto done;
        if (sqlite3_bind_int(st, 1, m->version) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC) !=
                SQLITE_OK ||
            sqlite3_bind_int64(st, 3, now_ms()) != SQLITE_OK) {
            db_fail(s, "migrate", err);
            goto done;
        }
        if (step_done(s, st, "migrate", err)) goto done;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (tx_commit(s, "migrate", err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return rc;
}

/* Applies every embedded migration with version <= max_version that the
 * database lacks, in order. Refuses a database whose schema is newer than
 * this program's. When the database is up to date this only reads (no
 * write lock), so opening a connection stays cheap. 0 or -1. */
static int migrate(store *s, int max_version, mn_err *err)
{
    int rc = -1, has_table = 0;
    sqlite3_stmt *st = NULL;
    int newest = 0;

    for (size_t i = 0; i < store_migrations_count; i++) {
        if (store_migrations[i].version <= newest) {
            mn_errf(err, "store: migration %s: versions out of order",
                    store_migrations[i].name);
            goto done;
        }
        newest = store_migrations[i].version;
    }

    if (prep(s, &st,
             "SELECT 1 FROM sqlite_master"
             " WHERE type = 'table' AND name = 'schema_migrations'",
             "migrate", err))
        goto done;
    int r = step_row(s, st, "migrate", err);
    if (r < 0) goto done;
    has_table = r;

    if (has_table) {
        if (prep(s, &st, "SELECT max(version) FROM schema_migrations",
                 "migrate", err))
            goto done;
        r = step_row(s, st, "migrate", err);
        if (r < 0) goto done;
        if (r && sqlite3_column_type(st, 0) != SQLITE_NULL &&
            sqlite3_column_int64(st, 0) > newest) {
            mn_errf(err,
                    "store: database schema version %lld is newer than "
                    "this program's (%d); use a newer mnistd",
                    (long long)sqlite3_column_int64(st, 0), newest);
            goto done;
        }
    }
    sqlite3_finalize(st);
    st = NULL;

    for (size_t i = 0; i < store_migrations_count; i++) {
        const store_migration *m = &store_migrations[i];
        int yes = 0;
        if (m->version > max_version) break;
        if (has_table && migration_applied(s, m->version, &yes, err))
            goto done;
        if (yes) continue;
        if (migration_apply(s, m, err)) goto done;
        has_table = 1;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

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
        db_fail(s, "busy_timeout", &why);
        goto done;
    }
    if (prep(s, &s->rollback, "ROLLBACK", "open", &why)) goto done;
    /* small pages for a new database (ignored for an existing one): every
     * period commits a few rows, and each changed page goes to the log
     * whole (64 KiB pages made that ~600 KB a period); the checkpoint
     * blobs, a few hundred pages each, are paced (docs/STORAGE.md) */
    if (exec_script(s, "PRAGMA page_size = 4096", "open", &why)) goto done;
    if (set_wal(s, &why)) goto done;
    /* See DESIGN: NORMAL in WAL survives process death, not power loss. */
    if (exec_script(s, "PRAGMA synchronous = NORMAL", "open", &why) ||
        exec_script(s, "PRAGMA foreign_keys = ON", "open", &why) ||
        pragma_expect(s, "PRAGMA foreign_keys", "1", NULL, &why) ||
        /* truncate the WAL file back to 64 MiB after a checkpoint */
        exec_script(s, "PRAGMA journal_size_limit = 67108864", "open", &why) ||
        /* a long-running owner (the server) checkpoints in the background
         * with store_wal_checkpoint; the automatic one, which stalls the
         * committing thread (34 ms seen at 40 MiB), is only a backstop at
         * 256 MiB: quick runs write ~13 MB of checkpoints each */
        set_autocheckpoint(s, 256ll << 20, &why))
        goto done;
    if (migrate(s, max_version, &why)) goto done;
    /* again: a migration's schema change expired it, and an expired
     * statement is prepared anew (allocating) at its next step */
    if (prep(s, &s->rollback, "ROLLBACK", "open", &why)) goto done;

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
    sqlite3_finalize(s->rollback);
    sqlite3_close(s->db);
    free(s);
}

/* The highest applied migration version, or -1 on error. */
int store_schema_version(store *s)
{
    int v = -1;
    sqlite3_stmt *st = NULL;
    if (prep(s, &st,
             "SELECT coalesce(max(version), 0) FROM schema_migrations",
             "schema_version", NULL))
        goto done;
    if (step_row(s, st, "schema_version", NULL) == 1) {
        sqlite3_int64 x = sqlite3_column_int64(st, 0);
        if (x >= 0 && x <= INT_MAX) v = (int)x;
    }
done:
    sqlite3_finalize(st);
    return v;
}

/* ---------------------------------------------------------------- runs */

/* The columns run_from_row reads, in order. */
#define RUN_COLS                                                              \
    "id, status, model, dataset, params_json, step, steps, period, periods, " \
    "validation_accuracy, validation_log_loss, test_accuracy, created_at, "   \
    "started_at, finished_at, error, waiting, waits"
#define RUN_N_COLS 18           /* the columns of RUN_COLS */

/* Frees the owned fields of r and zeroes them (NULL is a no-op). */
void store_run_free(store_run *r)
{
    if (!r) return;
    free(r->params_json);
    free(r->error);
    free(r->waiting);
    r->params_json = NULL;
    r->error = NULL;
    r->waiting = NULL;
}

/* Frees n runs and the array. */
void store_runs_free(store_run *runs, size_t n)
{
    if (!runs) return;
    for (size_t i = 0; i < n; i++) store_run_free(&runs[i]);
    free(runs);
}

/* Fills *out from a row of RUN_COLS (new strings). On failure *out is
 * zeroed with nothing owned. 0 or -1. */
static int run_from_row(sqlite3_stmt *st, void *dst, const char *what,
                        mn_err *err)
{
    store_run *out = dst;
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    if (col_status(st, 1, &out->status, what, err) ||
        col_text_into(st, 2, out->model, sizeof out->model, what, err) ||
        col_text_into(st, 3, out->dataset, sizeof out->dataset, what, err) ||
        col_u32(st, 5, &out->step, what, err) ||
        col_u32(st, 6, &out->steps, what, err) ||
        col_u32(st, 7, &out->period, what, err) ||
        col_u32(st, 8, &out->periods, what, err) ||
        col_u32(st, 17, &out->waits, what, err))
        goto fail;
    out->validation_accuracy = col_real(st, 9);
    out->validation_log_loss = col_real(st, 10);
    out->test_accuracy = col_real(st, 11);
    out->created_at = col_time(st, 12);
    out->started_at = col_time(st, 13);
    out->finished_at = col_time(st, 14);
    if (col_text_dup(st, 4, &out->params_json, 0, what, err) ||
        col_text_dup(st, 15, &out->error, 1, what, err) ||
        col_text_dup(st, 16, &out->waiting, 1, what, err))
        goto fail;
    return 0;
fail:
    store_run_free(out);
    memset(out, 0, sizeof *out);
    return -1;
}

/* Reads run id into *out. 0, STORE_NOT_FOUND or -1. */
static int run_read(store *s, int64_t id, store_run *out, const char *what,
                    mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    if (prep_id(s, &st, "SELECT " RUN_COLS " FROM runs WHERE id = ?1", id,
                what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (run_from_row(st, out, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* 1 when the uploaded dataset `name` has a row, 0 when not, -1 on error.
 * Inside the caller's transaction. */
static int dataset_exists(store *s, const char *name, const char *what,
                          mn_err *err)
{
    sqlite3_stmt *st = NULL;
    int r = prep_name(s, &st, "SELECT 1 FROM datasets WHERE name = ?1", name,
                      what, err);
    if (r == 0) r = step_row(s, st, what, err);
    sqlite3_finalize(st);
    return r;
}

/* Inserts a queued run (model 1..7 bytes, dataset 1..63 bytes; a NULL
 * params_json is stored as "{}"). uploaded: the dataset's row must exist
 * when the run is inserted (checked in the same write transaction), else
 * STORE_NOT_FOUND. */
static int run_insert(store *s, const char *model, const char *dataset,
                      int uploaded, const char *params_json, uint32_t steps,
                      uint32_t periods, int64_t *id_out, mn_err *err)
{
    const char *what = "run_create";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (!model || !*model || strlen(model) >= sizeof ((store_run *)0)->model)
        return mn_errf(err, "store: %s: bad model name", what);
    if (!dataset || !*dataset ||
        strlen(dataset) >= sizeof ((store_run *)0)->dataset)
        return mn_errf(err, "store: %s: dataset name must be 1..%zu bytes",
                       what, sizeof ((store_run *)0)->dataset - 1);
    if (tx_write(s, what, err)) goto done;
    if (uploaded) {
        int r = dataset_exists(s, dataset, what, err);
        if (r < 0) goto done;
        if (r == 0) {
            rc = STORE_NOT_FOUND;
            mn_errf(err, "store: %s: dataset %s does not exist", what,
                    dataset);
            goto done;
        }
    }
    if (prep(s, &st,
             "INSERT INTO runs (status, model, dataset, params_json, steps,"
             " periods, created_at)"
             " VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6)",
             what, err))
        goto done;
    if (sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, dataset, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, params_json ? params_json : "{}", -1,
                          SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, steps) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, periods) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, now_ms()) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    if (tx_commit(s, what, err)) goto done;
    if (id_out) *id_out = id;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

int store_run_create(store *s, const char *model, const char *dataset,
                     const char *params_json, uint32_t steps,
                     uint32_t periods, int64_t *id_out, mn_err *err)
{
    return run_insert(s, model, dataset, 0, params_json, steps, periods,
                      id_out, err);
}

int store_run_create_uploaded(store *s, const char *model,
                              const char *dataset, const char *params_json,
                              uint32_t steps, uint32_t periods,
                              int64_t *id_out, mn_err *err)
{
    return run_insert(s, model, dataset, 1, params_json, steps, periods,
                      id_out, err);
}

/* Reads one run; *out is zeroed on any non-zero return. */
int store_run_get(store *s, int64_t id, store_run *out, mn_err *err)
{
    return store_rc(s, run_read(s, id, out, "run_get", err));
}

/* Fills a train_period from a row's columns base.. (period, step,
 * train_log_loss, validation_log_loss, validation_accuracy, seconds).
 * 0 or -1. */
static int period_cols(sqlite3_stmt *st, int base, train_period *p,
                       const char *what, mn_err *err)
{
    if (col_u32(st, base, &p->period, what, err) ||
        col_u32(st, base + 1, &p->step, what, err))
        return -1;
    p->train_log_loss = col_real(st, base + 2);
    p->validation_log_loss = col_real(st, base + 3);
    p->validation_accuracy = col_real(st, base + 4);
    p->seconds = col_real(st, base + 5);
    return 0;
}

/* A row_fill for rows that begin with PERIOD_COLS. */
static int period_from_row(sqlite3_stmt *st, void *dst, const char *what,
                           mn_err *err)
{
    return period_cols(st, 0, dst, what, err);
}

/* The columns that period_cols reads, in its order. */
#define PERIOD_COLS                                                          \
    "period, step, train_log_loss, validation_log_loss, "                   \
    "validation_accuracy, seconds"

/* Binds a list's filter and page (?1 status, ?2 model, ?3 limit, ?4
 * offset; a NULL filter is left unbound). 0 or -1. */
static int bind_list(store *s, sqlite3_stmt *st, const char *status,
                     const char *model, int limit, int offset,
                     const char *what, mn_err *err)
{
    if ((status &&
         sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC) != SQLITE_OK) ||
        (model &&
         sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC) != SQLITE_OK) ||
        sqlite3_bind_int(st, 3, limit < 0 ? -1 : limit) != SQLITE_OK ||
        sqlite3_bind_int(st, 4, offset) != SQLITE_OK)
        return db_fail(s, what, err);
    return 0;
}

/* Lists runs newest first (id DESC). status/model NULL = any; a negative
 * limit means no limit; offset must be >= 0. With no match *out is NULL
 * and *n 0 (and *last NULL). One statement: the page of runs, each joined
 * with its last period only (found through the periods primary key), so
 * the cost grows with the page, not with the periods stored. */
int store_run_list(store *s, const char *status, const char *model,
                   int limit, int offset, store_run **out, size_t *n,
                   train_period **last, mn_err *err)
{
    /* Constant statements, one per filter combination, so that each can
     * use its index (runs_status_idx, runs_model_idx). */
#define LIST_SQL(where)                                                      \
    "SELECT r.*, p.period, p.step, p.train_log_loss, p.validation_log_loss," \
    " p.validation_accuracy, p.seconds"                                     \
    " FROM (SELECT " RUN_COLS " FROM runs" where                            \
    " ORDER BY id DESC LIMIT ?3 OFFSET ?4) AS r"                            \
    " LEFT JOIN periods AS p ON p.run_id = r.id AND p.period ="             \
    " (SELECT q.period FROM periods AS q WHERE q.run_id = r.id"             \
    " ORDER BY q.period DESC LIMIT 1)"                                      \
    " ORDER BY r.id DESC"
    static const char *const sql[4] = {
        LIST_SQL(""),
        LIST_SQL(" WHERE status = ?1"),
        LIST_SQL(" WHERE model = ?2"),
        LIST_SQL(" WHERE status = ?1 AND model = ?2"),
    };
#undef LIST_SQL
    enum { LAST_COL = RUN_N_COLS }; /* p.period: after RUN_COLS, in
                                       period_cols' order */
    const char *what = "run_list";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    store_run *runs = NULL;
    train_period *ps = NULL;
    size_t cnt = 0, cap = 0, pcap = 0;

    *out = NULL;
    *n = 0;
    if (last) *last = NULL;
    if (offset < 0)
        return mn_errf(err, "store: %s: offset must be >= 0", what);
    if (prep(s, &st, sql[(status ? 1 : 0) + (model ? 2 : 0)], what, err) ||
        bind_list(s, st, status, model, limit, offset, what, err))
        goto done;
    for (;;) {
        int r = step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        store_run *g = grow(runs, &cap, cnt + 1, sizeof *runs);
        if (g) runs = g;
        train_period *gp = g && last ? grow(ps, &pcap, cnt + 1, sizeof *ps)
                                     : NULL;
        if (gp) ps = gp;
        if (!g || (last && !gp)) {
            mn_errf(err, "store: %s: out of memory", what);
            goto done;
        }
        if (run_from_row(st, &runs[cnt], what, err)) goto done;
        cnt++;
        if (last) {
            memset(&ps[cnt - 1], 0, sizeof *ps);
            if (sqlite3_column_type(st, LAST_COL) != SQLITE_NULL &&
                period_cols(st, LAST_COL, &ps[cnt - 1], what, err))
                goto done;
        }
    }
    *out = runs;
    *n = cnt;
    if (last) *last = ps;
    runs = NULL;
    ps = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_runs_free(runs, cnt);
    free(ps);
    return store_rc(s, rc);
}

/* Counts runs with the given status (NULL = all runs). */
int store_run_count(store *s, const char *status, int64_t *n, mn_err *err)
{
    const char *what = "run_count";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (prep(s, &st,
             status ? "SELECT count(*) FROM runs WHERE status = ?1"
                    : "SELECT count(*) FROM runs",
             what, err))
        goto done;
    if (status &&
        sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        mn_errf(err, "store: %s: no row", what);
        goto done;
    }
    *n = sqlite3_column_int64(st, 0);
    rc = 0;
done:
    sqlite3_finalize(st);
    return store_rc(s, rc);
}

/* Marks the oldest queued run (lowest id) running, setting started_at on
 * its first start, and returns it, all in one write transaction so that
 * two workers never claim the same run. STORE_NOT_FOUND when none is
 * queued (*out zeroed). */
int store_run_claim(store *s, store_run *out, mn_err *err)
{
    const char *what = "run_claim";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    int have = 0;

    memset(out, 0, sizeof *out);
    if (tx_write(s, what, err)) goto done;
    if (prep(s, &st,
             "SELECT id FROM runs WHERE status = 'queued'"
             " AND (not_before IS NULL OR not_before <= ?1)"
             " ORDER BY id LIMIT 1",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, now_ms()) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    if (prep(s, &st,
             "UPDATE runs SET status = 'running',"
             " started_at = coalesce(started_at, ?2), waiting = NULL,"
             " not_before = NULL WHERE id = ?1",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, now_ms()) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    sqlite3_finalize(st);
    st = NULL;
    r = run_read(s, id, out, what, err);
    if (r) {
        if (r == STORE_NOT_FOUND)
            mn_errf(err, "store: %s: run %lld vanished", what, (long long)id);
        goto done;
    }
    have = 1;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    if (rc && have) {
        store_run_free(out);
        memset(out, 0, sizeof *out);
    }
    return store_rc(s, rc);
}

/* Upserts the run's checkpoint of `kind` (constant "latest"/"best")
 * inside the caller's transaction. 0 or -1. */
static int checkpoint_upsert(store *s, int64_t id, const char *kind,
                             uint32_t step, const uint8_t *ckpt, size_t len,
                             const char *what, mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    if (prep(s, &st,
             "INSERT OR REPLACE INTO checkpoints"
             " (run_id, kind, step, data, created_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5)",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, step) != SQLITE_OK ||
        sqlite3_bind_blob64(st, 4, ckpt, (sqlite3_uint64)len,
                            SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, now_ms()) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* The best checkpoint is stored once: while the best period is also the
 * latest checkpoint there is no 'best' row (the 'latest' row is the best;
 * runs.best_validation_log_loss says one exists). Before 'latest' is
 * overwritten by a checkpoint that is not better, a copy of it becomes the
 * 'best' row (INSERT OR IGNORE: only if the best still lives in latest).
 * So an improving run writes one checkpoint per period, not two. */
static int checkpoint_keep_best(store *s, int64_t id, const char *what,
                                mn_err *err)
{
    return exec_id(s,
                   "INSERT OR IGNORE INTO checkpoints"
                   " (run_id, kind, step, data, created_at)"
                   " SELECT run_id, 'best', step, data, created_at"
                   " FROM checkpoints WHERE run_id = ?1 AND kind = 'latest'",
                   id, what, err);
}

/* The new latest checkpoint is the best: the old 'best' row goes. */
static int checkpoint_drop_best(store *s, int64_t id, const char *what,
                                mn_err *err)
{
    return exec_id(s,
                   "DELETE FROM checkpoints WHERE run_id = ?1 AND kind = 'best'",
                   id, what, err);
}

/* Upserts the run's confusion of `set` (constant "validation"/"test")
 * inside the caller's transaction. 0 or -1. */
static int confusion_upsert(store *s, int64_t id, const char *set,
                            const eval_result *e, const char *what,
                            mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    uint8_t counts[STORE_COUNTS_BYTES];

    counts_encode(e->confusion, counts);
    if (prep(s, &st,
             "INSERT OR REPLACE INTO confusions"
             " (run_id, set_name, counts, accuracy, log_loss, examples)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, set, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_blob(st, 3, counts, sizeof counts, SQLITE_STATIC) !=
            SQLITE_OK ||
        bind_real(st, 4, e->accuracy) != SQLITE_OK ||
        bind_real(st, 5, e->log_loss) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, e->examples) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Records a finished period in one write transaction (see store.h). The
 * period row is replaced if it exists (a resumed run may redo a period).
 * validation may be NULL (no confusion recorded), ckpt may be NULL (no
 * checkpoint). 'best' is replaced when p->validation_log_loss is below
 * the run's best so far (a NaN loss is never best). STORE_NOT_FOUND for
 * an unknown run, STORE_CONFLICT when the run has ended. */
int store_period_add(store *s, int64_t id, const train_period *p,
                     const eval_result *validation, const uint8_t *ckpt,
                     size_t ckpt_len, mn_err *err)
{
    const char *what = "period_add";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status status;
    double best = NAN;

    if (!p || p->period < 1)
        return mn_errf(err, "store: %s: period numbers start at 1", what);
    if (ckpt && !ckpt_len)
        return mn_errf(err, "store: %s: empty checkpoint", what);
    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &status, &best, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (run_status_ended(status)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld has %s", what, (long long)id,
                run_status_name(status));
        goto done;
    }
    if (prep(s, &st,
             "INSERT OR REPLACE INTO periods (run_id, period, step,"
             " train_log_loss, validation_log_loss, validation_accuracy,"
             " seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, p->period) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, p->step) != SQLITE_OK ||
        bind_real(st, 4, p->train_log_loss) != SQLITE_OK ||
        bind_real(st, 5, p->validation_log_loss) != SQLITE_OK ||
        bind_real(st, 6, p->validation_accuracy) != SQLITE_OK ||
        bind_real(st, 7, p->seconds) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;

    int better = ckpt && !isnan(p->validation_log_loss) &&
                 (isnan(best) || p->validation_log_loss < best);
    if (prep(s, &st,
             "UPDATE runs SET step = ?2, period = ?3,"
             " validation_accuracy = ?4, validation_log_loss = ?5,"
             " best_validation_log_loss = CASE WHEN ?6"
             " THEN ?5 ELSE best_validation_log_loss END"
             " WHERE id = ?1",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, p->step) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, p->period) != SQLITE_OK ||
        bind_real(st, 4, p->validation_accuracy) != SQLITE_OK ||
        bind_real(st, 5, p->validation_log_loss) != SQLITE_OK ||
        sqlite3_bind_int(st, 6, better) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    sqlite3_finalize(st);
    st = NULL;

    if (validation &&
        confusion_upsert(s, id, "validation", validation, what, err))
        goto done;
    if (ckpt) {
        if (better ? checkpoint_drop_best(s, id, what, err)
                   : !isnan(best) && checkpoint_keep_best(s, id, what, err))
            goto done;
        if (checkpoint_upsert(s, id, "latest", p->step, ckpt, ckpt_len, what,
                              err))
            goto done;
    }
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* Saves ckpt as the run's 'latest' checkpoint (runs.step is left as the
 * last period end). STORE_NOT_FOUND for an unknown run, STORE_CONFLICT
 * when it has ended. */
int store_checkpoint_put(store *s, int64_t id, uint32_t step,
                         const uint8_t *ckpt, size_t len, mn_err *err)
{
    const char *what = "checkpoint_put";
    int rc = -1;
    run_status status;

    if (!ckpt || !len)
        return mn_errf(err, "store: %s: empty checkpoint", what);
    double best = NAN;
    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &status, &best, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (run_status_ended(status)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld has %s", what, (long long)id,
                run_status_name(status));
        goto done;
    }
    if (!isnan(best) && checkpoint_keep_best(s, id, what, err)) goto done;
    if (checkpoint_upsert(s, id, "latest", step, ckpt, len, what, err))
        goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    tx_end(s);
    return store_rc(s, rc);
}

/* Trims an ended run's checkpoints in one write transaction (see
 * store.h). */
int store_checkpoint_retain(store *s, int64_t id, const uint8_t *latest,
                            size_t len, mn_err *err)
{
    const char *what = "checkpoint_retain";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status status;

    if (latest && !len)
        return mn_errf(err, "store: %s: empty checkpoint", what);
    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &status, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (!run_status_ended(status)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s", what, (long long)id,
                run_status_name(status));
        goto done;
    }
    /* no 'best' copy, and no marker saying the latest is one */
    if (checkpoint_drop_best(s, id, what, err) ||
        exec_id(s, "UPDATE runs SET best_validation_log_loss = NULL"
                   " WHERE id = ?1", id, what, err))
        goto done;
    if (latest) {
        if (prep(s, &st,
                 "UPDATE checkpoints SET data = ?2"
                 " WHERE run_id = ?1 AND kind = 'latest'",
                 what, err))
            goto done;
        if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
            sqlite3_bind_blob64(st, 2, latest, (sqlite3_uint64)len,
                                SQLITE_STATIC) != SQLITE_OK) {
            db_fail(s, what, err);
            goto done;
        }
        if (step_done(s, st, what, err)) goto done;
    }
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* Reads the run's checkpoint of kind "latest" or "best" into a new
 * buffer. STORE_NOT_FOUND when the run (or that checkpoint) is missing;
 * -1 for another kind. */
int store_checkpoint_get(store *s, int64_t id, const char *kind,
                         uint8_t **buf, size_t *len, uint32_t *step,
                         mn_err *err)
{
    const char *what = "checkpoint_get";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    uint8_t *b = NULL;

    *buf = NULL;
    *len = 0;
    if (!kind || (strcmp(kind, "latest") && strcmp(kind, "best")))
        return mn_errf(err, "store: %s: kind must be latest or best", what);
    /* 'best' is the 'best' row, or else the 'latest' row once a best
     * exists (see checkpoint_keep_best) */
    if (prep_id(s, &st,
                strcmp(kind, "latest") == 0
                   ? "SELECT step, data FROM checkpoints"
                     " WHERE run_id = ?1 AND kind = 'latest'"
                   : "SELECT c.step, c.data FROM checkpoints c"
                     " JOIN runs r ON r.id = c.run_id"
                     " WHERE c.run_id = ?1 AND (c.kind = 'best' OR"
                     " (c.kind = 'latest' AND r.best_validation_log_loss"
                     " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
                     " checkpoints b WHERE b.run_id = ?1 AND b.kind = 'best')))",
                id, what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    /* set: gcc -O3 cannot see that col_u32 fails with mn_errf's -1 only */
    uint32_t stp = 0;
    if (col_u32(st, 0, &stp, what, err)) goto done;
    const void *data = sqlite3_column_blob(st, 1);
    int n = sqlite3_column_bytes(st, 1);
    if (sqlite3_column_type(st, 1) != SQLITE_BLOB || n <= 0 || !data) {
        mn_errf(err, "store: %s: corrupt row: run %lld has an empty %s "
                "checkpoint", what, (long long)id, kind);
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

/* Reads the run's periods in order into a new array (*out NULL and *n 0
 * when it has none). STORE_NOT_FOUND for an unknown run. */
int store_periods_get(store *s, int64_t id, train_period **out, size_t *n,
                      mn_err *err)
{
    return store_periods_page(s, id, 0, -1, out, n, err);
}

/* Reads up to limit (negative: all) of the run's periods numbered above
 * after, in order, into a new array, in one read transaction with the
 * run's existence check. STORE_NOT_FOUND for an unknown run. */
int store_periods_page(store *s, int64_t id, uint32_t after, int limit,
                       train_period **out, size_t *n, mn_err *err)
{
    const char *what = "periods_get";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    void *ps = NULL;
    size_t cnt = 0;
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
                "SELECT " PERIOD_COLS " FROM periods"
                " WHERE run_id = ?1 AND period > ?2 ORDER BY period"
                " LIMIT ?3",
                id, what, err))
        goto done;
    if (sqlite3_bind_int64(st, 2, after) != SQLITE_OK ||
        sqlite3_bind_int(st, 3, limit < 0 ? -1 : limit) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (collect_rows(s, st, sizeof(train_period), period_from_row, &ps, &cnt,
                     what, err))
        goto done;
    sqlite3_finalize(st);
    st = NULL;
    if (tx_commit(s, what, err)) goto done;
    *out = ps;
    *n = cnt;
    ps = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    free(ps);
    return store_rc(s, rc);
}

/* Ends a queued or running run with status succeeded/failed/cancelled,
 * finished_at = now and error (NULL clears it). For "succeeded" step and
 * period become steps and periods; for "cancelled" step becomes `step`
 * (the step training stopped at; never lowered). STORE_CONFLICT if it
 * already ended; -1 for another status. */
int store_run_finish(store *s, int64_t id, run_status status,
                     const char *error, uint32_t step, mn_err *err)
{
    const char *what = "run_finish";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status cur;

    if (!run_status_ended(status))
        return mn_errf(err, "store: %s: status must be succeeded, failed or "
                       "cancelled", what);
    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &cur, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (run_status_ended(cur)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld has already %s", what,
                (long long)id, run_status_name(cur));
        goto done;
    }
    if (prep(s, &st,
             "UPDATE runs SET status = ?2, finished_at = ?3, error = ?4,"
             " step = CASE WHEN ?2 = 'succeeded' THEN steps"
             " WHEN ?2 = 'cancelled' THEN MAX(step, ?5) ELSE step END,"
             " period = CASE WHEN ?2 = 'succeeded' THEN periods"
             " ELSE period END"
             " WHERE id = ?1",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, run_status_name(status), -1,
                          SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, now_ms()) != SQLITE_OK ||
        (error ? sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC)
               : sqlite3_bind_null(st, 4)) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, step) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* Moves run id from status `from` to `to` in one write transaction,
 * setting finished_at = now when stamp_finish. 0, STORE_NOT_FOUND,
 * STORE_CONFLICT (not in `from`) or -1. */
static int run_transition(store *s, int64_t id, run_status from,
                          run_status to, int stamp_finish, const char *what,
                          mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status cur;

    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &cur, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != from) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s, not %s", what,
                (long long)id, run_status_name(cur), run_status_name(from));
        goto done;
    }
    if (prep(s, &st,
             "UPDATE runs SET status = ?2,"
             " finished_at = CASE WHEN ?3 THEN ?4 ELSE finished_at END"
             " WHERE id = ?1",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, run_status_name(to), -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int(st, 3, stamp_finish) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, now_ms()) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return rc;
}

/* running -> queued (its checkpoints and periods stay). STORE_CONFLICT
 * when the run is not running. */
int store_run_requeue(store *s, int64_t id, mn_err *err)
{
    return store_run_wait(s, id, NULL, 0, err);
}

/* running -> queued with waiting = reason and not_before (0 = NULL);
 * a reason counts a wait. STORE_CONFLICT when the run is not running. */
int store_run_wait(store *s, int64_t id, const char *reason,
                   int64_t not_before, mn_err *err)
{
    const char *what = "run_wait";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status cur;

    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &cur, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != RUN_RUNNING) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s, not running", what,
                (long long)id, run_status_name(cur));
        goto done;
    }
    if (prep(s, &st,
             "UPDATE runs SET status = 'queued', waiting = ?2,"
             " not_before = ?3,"
             " waits = CASE WHEN ?2 IS NULL THEN waits ELSE waits + 1 END"
             " WHERE id = ?1",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        (reason ? sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC)
                : sqlite3_bind_null(st, 2)) != SQLITE_OK ||
        (not_before ? sqlite3_bind_int64(st, 3, not_before)
                    : sqlite3_bind_null(st, 3)) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* failed/cancelled -> queued, keeping its periods and checkpoints;
 * finished_at, error, waiting, not_before and waits are cleared. */
int store_run_resume(store *s, int64_t id, int *no_checkpoint, mn_err *err)
{
    const char *what = "run_resume";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status cur;

    *no_checkpoint = 0;
    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &cur, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != RUN_FAILED && cur != RUN_CANCELLED) {
        rc = STORE_CONFLICT;
        mn_errf(err, "run %lld is %s; only a failed or cancelled run can be "
                "resumed", (long long)id, run_status_name(cur));
        goto done;
    }
    if (prep_id(s, &st,
                "SELECT 1 FROM checkpoints WHERE run_id = ?1"
                " AND kind = 'latest'",
                id, what, err))
        goto done;
    r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_CONFLICT;
        *no_checkpoint = 1;
        mn_errf(err, "run %lld has no checkpoint to resume from (it stopped "
                "before its first period)", (long long)id);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (exec_id(s,
                "UPDATE runs SET status = 'queued', finished_at = NULL,"
                " error = NULL, waiting = NULL, not_before = NULL, waits = 0"
                " WHERE id = ?1",
                id, what, err))
        goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* Every running run -> queued (start-up recovery); *n_out = how many. */
int store_recover(store *s, int *n_out, mn_err *err)
{
    const char *what = "recover";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (n_out) *n_out = 0;
    if (tx_write(s, what, err)) goto done;
    if (prep(s, &st,
             "UPDATE runs SET status = 'queued' WHERE status = 'running'",
             what, err))
        goto done;
    if (step_done(s, st, what, err)) goto done;
    int n = sqlite3_changes(s->db);
    if (tx_commit(s, what, err)) goto done;
    if (n_out) *n_out = n;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* queued -> cancelled with finished_at = now. STORE_CONFLICT when the run
 * is running or has ended. */
int store_run_cancel_queued(store *s, int64_t id, mn_err *err)
{
    return store_rc(s, run_transition(s, id, RUN_QUEUED, RUN_CANCELLED, 1,
                                      "run_cancel", err));
}

/* Deletes an ended run; its periods, confusions and checkpoints go with
 * it (ON DELETE CASCADE). STORE_CONFLICT while queued or running. */
int store_run_delete(store *s, int64_t id, mn_err *err)
{
    const char *what = "run_delete";
    int rc = -1;
    run_status cur;

    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &cur, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (!run_status_ended(cur)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s", what, (long long)id,
                run_status_name(cur));
        goto done;
    }
    char model[64];
    int64_t version;
    r = store_run_model_version(s, id, model, &version, err);
    if (r <= 0) {
        if (r == 0) {
            rc = STORE_CONFLICT;
            mn_errf(err, "store: %s: run %lld is version %lld of model %s",
                    what, (long long)id, (long long)version, model);
        }
        goto done;
    }
    if (exec_id(s, "DELETE FROM runs WHERE id = ?1", id, what, err))
        goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    tx_end(s);
    return store_rc(s, rc);
}

/* Reads the confusion of set "validation" or "test" into *out.
 * STORE_NOT_FOUND when not recorded (or the run is unknown); -1 for
 * another set. */
int store_confusion_get(store *s, int64_t id, const char *set,
                        eval_result *out, mn_err *err)
{
    const char *what = "confusion_get";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof *out);
    if (!set || (strcmp(set, "validation") && strcmp(set, "test")))
        return mn_errf(err, "store: %s: set must be validation or test",
                       what);
    if (prep(s, &st,
             "SELECT counts, accuracy, log_loss, examples FROM confusions"
             " WHERE run_id = ?1 AND set_name = ?2",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, set, -1, SQLITE_STATIC) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    const void *c = sqlite3_column_blob(st, 0);
    if (!c || sqlite3_column_bytes(st, 0) != STORE_COUNTS_BYTES) {
        mn_errf(err, "store: %s: corrupt row: counts of run %lld are not "
                "%d bytes", what, (long long)id, STORE_COUNTS_BYTES);
        goto done;
    }
    counts_decode(c, out->confusion);
    out->accuracy = col_real(st, 1);
    out->log_loss = col_real(st, 2);
    if (col_u32(st, 3, &out->examples, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    if (rc) memset(out, 0, sizeof *out);
    return store_rc(s, rc);
}

/* Records a test evaluation: runs.test_accuracy = e->accuracy and the
 * 'test' confusion, in one write transaction. STORE_NOT_FOUND for an
 * unknown run (the caller checks the run's state). */
int store_test_put(store *s, int64_t id, const eval_result *e, mn_err *err)
{
    const char *what = "test_put";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status cur;

    if (tx_write(s, what, err)) goto done;
    int r = run_state(s, id, &cur, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (prep(s, &st, "UPDATE runs SET test_accuracy = ?2 WHERE id = ?1",
             what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        bind_real(st, 2, e->accuracy) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (confusion_upsert(s, id, "test", e, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* The newest (highest id, i.e. most recently created) succeeded run. */
int store_run_newest_succeeded(store *s, int64_t *id, mn_err *err)
{
    const char *what = "run_newest_succeeded";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (prep(s, &st,
             "SELECT id FROM runs WHERE status = 'succeeded'"
             " ORDER BY id DESC LIMIT 1",
             what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    *id = sqlite3_column_int64(st, 0);
    rc = 0;
done:
    sqlite3_finalize(st);
    return store_rc(s, rc);
}

/* ---------------------------------------------------------------- datasets */

/* Stores d under name (1..63 bytes) with created_at = now. d must hold
 * n > 0 examples of rows x cols > 0 pixels and labels 0..9.
 * STORE_CONFLICT if the name exists. */
int store_dataset_put(store *s, const char *name, const ds_dataset *d,
                      mn_err *err)
{
    const char *what = "dataset_put";
    int rc = -1;
    sqlite3_stmt *st = NULL;

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

    if (tx_write(s, what, err)) goto done;
    int r = dataset_exists(s, name, what, err);
    if (r < 0) goto done;
    if (r) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: dataset %s exists", what, name);
        goto done;
    }
    if (prep(s, &st,
             "INSERT INTO datasets (name, examples, \"rows\", cols,"
             " created_at, pixels, labels)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
             what, err))
        goto done;
    if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, d->n) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, d->rows) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, d->cols) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, now_ms()) != SQLITE_OK ||
        sqlite3_bind_blob64(st, 6, d->pixels, npix, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_blob64(st, 7, d->labels, d->n, SQLITE_STATIC) !=
            SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* Loads dataset `name` into *out (new arrays; *out zeroed on failure).
 * Blob sizes and labels are checked: a corrupted row is -1.
 * STORE_NOT_FOUND when there is no such dataset. */
int store_dataset_get(store *s, const char *name, ds_dataset *out,
                      mn_err *err)
{
    const char *what = "dataset_get";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    ds_dataset d = {0};

    memset(out, 0, sizeof *out);
    if (!name) return mn_errf(err, "store: %s: no name", what);
    if (prep_name(s, &st,
                  "SELECT examples, \"rows\", cols, pixels, labels FROM datasets"
                  " WHERE name = ?1",
                  name, what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (col_u32(st, 0, &d.n, what, err) ||
        col_u32(st, 1, &d.rows, what, err) ||
        col_u32(st, 2, &d.cols, what, err))
        goto done;
    if (!d.n || !d.rows || !d.cols || d.rows > STORE_MAX_SIDE ||
        d.cols > STORE_MAX_SIDE) {
        mn_errf(err, "store: %s: corrupt row: dataset %s has shape "
                "%u x %u x %u", what, name, d.n, d.rows, d.cols);
        goto done;
    }
    uint64_t npix = (uint64_t)d.n * d.rows * d.cols;
    const void *px = sqlite3_column_blob(st, 3);
    int npx = sqlite3_column_bytes(st, 3);
    const uint8_t *lb = sqlite3_column_blob(st, 4);
    int nlb = sqlite3_column_bytes(st, 4);
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
    sqlite3_finalize(st);
    ds_free(&d);
    return store_rc(s, rc);
}

/* Deletes dataset `name` in one write transaction, unless a run that has
 * not ended uses it (runs.dataset): STORE_CONFLICT then, with the oldest
 * such run's id and status. A run created in a concurrent transaction
 * (store_run_create_uploaded) is seen here, or sees the row gone. */
int store_dataset_delete(store *s, const char *name, int64_t *run_id,
                         run_status *run_st, mn_err *err)
{
    const char *what = "dataset_delete";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (!name) return mn_errf(err, "store: %s: no name", what);
    if (tx_write(s, what, err)) goto done;
    if (prep_name(s, &st,
                  "SELECT id, status FROM runs WHERE dataset = ?1 ORDER BY id",
                  name, what, err))
        goto done;
    int r;
    while ((r = step_row(s, st, what, err)) == 1) {
        run_status cur;
        if (col_status(st, 1, &cur, what, err)) goto done;
        if (run_status_ended(cur)) continue;
        int64_t id = sqlite3_column_int64(st, 0);
        if (run_id) *run_id = id;
        if (run_st) *run_st = cur;
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: dataset %s is used by run %lld (%s)", what,
                name, (long long)id, run_status_name(cur));
        goto done;
    }
    if (r < 0) goto done;
    if (prep(s, &st, "DELETE FROM datasets WHERE name = ?1", what, err))
        goto done;
    if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (sqlite3_changes(s->db) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no dataset %s", what, name);
        goto done;
    }
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* Fills *out from a row (name, examples, rows, cols, created_at). */
static int dataset_info_from_row(sqlite3_stmt *st, void *dst,
                                 const char *what, mn_err *err)
{
    store_dataset_info *out = dst;
    memset(out, 0, sizeof *out);
    if (col_text_into(st, 0, out->name, sizeof out->name, what, err) ||
        col_u32(st, 1, &out->examples, what, err) ||
        col_u32(st, 2, &out->rows, what, err) ||
        col_u32(st, 3, &out->cols, what, err))
        return -1;
    out->created_at = col_time(st, 4);
    return 0;
}

/* The dataset's name, shape and creation time (no pixels read).
 * STORE_NOT_FOUND when there is no such dataset. */
int store_dataset_info_get(store *s, const char *name,
                           store_dataset_info *out, mn_err *err)
{
    const char *what = "dataset_info_get";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    memset(out, 0, sizeof *out);
    if (!name) return mn_errf(err, "store: %s: no name", what);
    if (prep_name(s, &st,
                  "SELECT name, examples, \"rows\", cols, created_at FROM datasets"
                  " WHERE name = ?1",
                  name, what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (dataset_info_from_row(st, out, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    return store_rc(s, rc);
}

/* Every uploaded dataset by name into a new array (free()); *out NULL and
 * *n 0 when there are none. */
int store_dataset_list(store *s, store_dataset_info **out, size_t *n,
                       mn_err *err)
{
    const char *what = "dataset_list";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    void *v = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (prep(s, &st,
             "SELECT name, examples, \"rows\", cols, created_at FROM datasets"
             " ORDER BY name",
             what, err))
        goto done;
    if (collect_rows(s, st, sizeof(store_dataset_info), dataset_info_from_row,
                     &v, &cnt, what, err))
        goto done;
    *out = v;
    *n = cnt;
    v = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    free(v);
    return store_rc(s, rc);
}

/* Passive, then a restart past STORE_WAL_RESTART_BYTES (see store.h). */
int store_wal_checkpoint(store *s, mn_err *err)
{
    int log_frames = 0;
    int r = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                      &log_frames, NULL);
    if (r != SQLITE_OK && r != SQLITE_BUSY)
        return store_rc(s, db_fail(s, "wal checkpoint", err));
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
        return store_rc(s, db_fail(s, "wal checkpoint", err));
    return 0;
}

/* ------------------------------------------------------- the file lock */

struct store_lock {
    int fd;          /* the open lock file, flock'ed LOCK_EX */
    char path[4096]; /* its name, for messages */
};

/* Replaces the lock file's text with "<pid> <port>\n". 0 or -1. */
static int lock_write(int fd, unsigned port, const char *path, mn_err *err)
{
    char line[48];
    int n = snprintf(line, sizeof line, "%ld %u\n", (long)getpid(), port);
    if (ftruncate(fd, 0) || pwrite(fd, line, (size_t)n, 0) != n)
        return mn_errf(err, "store: lock %s: %s", path, strerror(errno));
    return 0;
}

int store_lock_take(const char *db_path, store_lock **out, long *holder_pid,
                    unsigned *holder_port, mn_err *err)
{
    int rc = -1;
    int fd = -1;
    char path[sizeof ((store_lock *)0)->path];

    *out = NULL;
    *holder_pid = 0;
    *holder_port = 0;
    if (snprintf(path, sizeof path, "%s.lock", db_path) >= (int)sizeof path)
        return mn_errf(err, "store: lock: path too long");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        mn_errf(err, "store: lock %s: %s", path, strerror(errno));
        goto done;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        if (errno != EWOULDBLOCK) {
            mn_errf(err, "store: lock %s: %s", path, strerror(errno));
            goto done;
        }
        char text[48] = {0};
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        if (n > 0) sscanf(text, "%ld %u", holder_pid, holder_port);
        mn_errf(err, "store: %s is locked by another process", path);
        rc = STORE_CONFLICT;
        goto done;
    }
    if (lock_write(fd, 0, path, err)) goto done;
    *out = malloc(sizeof **out);
    if (!*out) {
        mn_errf(err, "store: lock %s: out of memory", path);
        goto done;
    }
    (*out)->fd = fd;
    memcpy((*out)->path, path, sizeof path);
    fd = -1;
    rc = 0;
done:
    if (fd >= 0) close(fd);
    return rc;
}

int store_lock_note_port(store_lock *l, unsigned port, mn_err *err)
{
    return lock_write(l->fd, port, l->path, err);
}

void store_lock_release(store_lock *l)
{
    if (!l) return;
    close(l->fd); /* closing the only descriptor releases the flock */
    free(l);
}

/* ------------------------------------------------------------------ models */

/* Binds text to ?i; 0 or -1. */
static int bind_text(store *s, sqlite3_stmt *st, int i, const char *v,
                     const char *what, mn_err *err)
{
    if (sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) != SQLITE_OK)
        return db_fail(s, what, err);
    return 0;
}

/* Checks a model or alias name: 1..STORE_MODEL_NAME_MAX bytes. */
static int model_name_ok(const char *name, const char *kind, const char *what,
                         mn_err *err)
{
    if (!name || !*name || strlen(name) > STORE_MODEL_NAME_MAX)
        return mn_errf(err, "store: %s: %s name must be 1..%d bytes", what,
                       kind, STORE_MODEL_NAME_MAX);
    return 0;
}

/* Does model `name` exist? 1, 0 or -1. */
static int model_exists(store *s, const char *name, const char *what,
                        mn_err *err)
{
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (!prep(s, &st, "SELECT 1 FROM models WHERE name = ?1", what, err) &&
        !bind_text(s, st, 1, name, what, err))
        r = step_row(s, st, what, err);
    sqlite3_finalize(st);
    return r;
}

void store_model_free(store_model *m)
{
    if (!m) return;
    free(m->description);
    m->description = NULL;
}

void store_models_free(store_model *ms, size_t n)
{
    for (size_t i = 0; i < n; i++) store_model_free(&ms[i]);
    free(ms);
}

int store_model_create(store *s, const char *name, const char *description,
                       mn_err *err)
{
    const char *what = "model_create";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (model_name_ok(name, "model", what, err)) return -1;
    if (tx_write(s, what, err)) goto done;
    int r = model_exists(s, name, what, err);
    if (r < 0) goto done;
    if (r) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: model %s exists", what, name);
        goto done;
    }
    if (prep(s, &st, "INSERT INTO models (name, description, created_at)"
             " VALUES (?1, ?2, ?3)", what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, description ? description : "", what, err))
        goto done;
    if (sqlite3_bind_int64(st, 3, now_ms()) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* The columns every model query selects, in model_from_row's order. */
#define MODEL_COLS                                                          \
    "m.name, m.description, m.created_at,"                                  \
    " (SELECT count(*) FROM model_versions v WHERE v.model = m.name),"      \
    " (SELECT coalesce(max(version), 0) FROM model_versions v"              \
    "  WHERE v.model = m.name)"

/* Fills a store_model from a row of MODEL_COLS. */
static int model_from_row(sqlite3_stmt *st, void *dst, const char *what,
                          mn_err *err)
{
    store_model *m = dst;
    memset(m, 0, sizeof *m);
    if (col_text_into(st, 0, m->name, sizeof m->name, what, err) ||
        col_text_dup(st, 1, &m->description, 0, what, err))
        return -1;
    m->created_at = col_time(st, 2);
    m->versions = sqlite3_column_int64(st, 3);
    m->latest = sqlite3_column_int64(st, 4);
    return 0;
}

static int version_from_row(sqlite3_stmt *st, void *dst, const char *what,
                            mn_err *err)
{
    store_model_version *v = dst;
    memset(v, 0, sizeof *v);
    v->version = sqlite3_column_int64(st, 0);
    v->run_id = sqlite3_column_int64(st, 1);
    v->created_at = col_time(st, 2);
    v->validation_accuracy = col_real(st, 4);
    v->test_accuracy = col_real(st, 5);
    return col_text_into(st, 3, v->model, sizeof v->model, what, err);
}

static int alias_from_row(sqlite3_stmt *st, void *dst, const char *what,
                          mn_err *err)
{
    store_model_alias *a = dst;
    memset(a, 0, sizeof *a);
    if (col_text_into(st, 0, a->alias, sizeof a->alias, what, err)) return -1;
    a->version = sqlite3_column_int64(st, 1);
    return 0;
}

/* Collects the rows of sql (?1 = name) into *out, *n (new array). */
static int model_rows(store *s, const char *sql, const char *name,
                      size_t size, row_fill fill, void **out, size_t *n,
                      const char *what, mn_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (!prep(s, &st, sql, what, err) && !bind_text(s, st, 1, name, what, err))
        rc = collect_rows(s, st, size, fill, out, n, what, err);
    sqlite3_finalize(st);
    return rc;
}

int store_model_get(store *s, const char *name, store_model *out,
                    store_model_version **v, size_t *nv,
                    store_model_alias **a, size_t *na, mn_err *err)
{
    const char *what = "model_get";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    void *vs = NULL, *as = NULL;
    size_t nvs = 0, nas = 0;

    memset(out, 0, sizeof *out);
    if (tx_read(s, what, err)) goto done;
    if (prep(s, &st, "SELECT " MODEL_COLS " FROM models m WHERE m.name = ?1",
             what, err) ||
        bind_text(s, st, 1, name, what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no model %s", what, name);
        goto done;
    }
    if (model_from_row(st, out, what, err)) goto done;
    if (v && model_rows(s, "SELECT v.version, v.run_id, v.created_at,"
                        " r.model, r.validation_accuracy, r.test_accuracy"
                        " FROM model_versions v JOIN runs r"
                        " ON r.id = v.run_id WHERE v.model = ?1"
                        " ORDER BY v.version",
                        name, sizeof(store_model_version), version_from_row,
                        &vs, &nvs, what, err))
        goto done;
    if (a && model_rows(s, "SELECT alias, version FROM model_aliases"
                        " WHERE model = ?1 ORDER BY alias",
                        name, sizeof(store_model_alias), alias_from_row, &as,
                        &nas, what, err))
        goto done;
    if (v) {
        *v = vs;
        *nv = nvs;
        vs = NULL;
    }
    if (a) {
        *a = as;
        *na = nas;
        as = NULL;
    }
    rc = 0;
done:
    if (rc) store_model_free(out);
    free(vs);
    free(as);
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

int store_model_list(store *s, store_model **out, size_t *n, mn_err *err)
{
    const char *what = "model_list";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    void *v = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (prep(s, &st, "SELECT " MODEL_COLS " FROM models m ORDER BY m.name",
             what, err))
        goto done;
    if (collect_rows(s, st, sizeof(store_model), model_from_row, &v, &cnt,
                     what, err))
        goto done;
    *out = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_models_free(v, cnt);
    return store_rc(s, rc);
}

int store_model_delete(store *s, const char *name, mn_err *err)
{
    const char *what = "model_delete";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (tx_write(s, what, err)) goto done;
    /* aliases first: their foreign key names the versions */
    static const char *const sql[] = {
        "DELETE FROM model_aliases WHERE model = ?1",
        "DELETE FROM model_versions WHERE model = ?1",
        "DELETE FROM models WHERE name = ?1",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_finalize(st);
        st = NULL;
        if (prep(s, &st, sql[i], what, err) ||
            bind_text(s, st, 1, name, what, err) ||
            step_done(s, st, what, err))
            goto done;
    }
    if (sqlite3_changes(s->db) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no model %s", what, name);
        goto done;
    }
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

int store_model_version_add(store *s, const char *name, int64_t run_id,
                            int64_t *version, mn_err *err)
{
    const char *what = "model_version_add";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    run_status cur;

    if (tx_write(s, what, err)) goto done;
    int r = model_exists(s, name, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no model %s", what, name);
        goto done;
    }
    r = run_state(s, run_id, &cur, NULL, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != RUN_SUCCEEDED) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s", what, (long long)run_id,
                run_status_name(cur));
        goto done;
    }
    if (prep(s, &st, "INSERT INTO model_versions (model, version, run_id,"
             " created_at) SELECT ?1, coalesce(max(version), 0) + 1, ?2, ?3"
             " FROM model_versions WHERE model = ?1 RETURNING version",
             what, err) ||
        bind_text(s, st, 1, name, what, err))
        goto done;
    if (sqlite3_bind_int64(st, 2, run_id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, now_ms()) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_row(s, st, what, err) != 1) goto done;
    *version = sqlite3_column_int64(st, 0);
    if (step_done(s, st, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

/* Does model `name` have `version`? 1, 0 or -1. */
static int version_exists(store *s, const char *name, int64_t version,
                          const char *what, mn_err *err)
{
    sqlite3_stmt *st = NULL;
    int r = -1;
    if (!prep(s, &st, "SELECT 1 FROM model_versions WHERE model = ?1 AND"
              " version = ?2", what, err) &&
        !bind_text(s, st, 1, name, what, err)) {
        if (sqlite3_bind_int64(st, 2, version) != SQLITE_OK)
            db_fail(s, what, err);
        else
            r = step_row(s, st, what, err);
    }
    sqlite3_finalize(st);
    return r;
}

int store_model_alias_set(store *s, const char *name, const char *alias,
                          int64_t version, int *created, mn_err *err)
{
    const char *what = "model_alias_set";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (model_name_ok(alias, "alias", what, err)) return -1;
    if (tx_write(s, what, err)) goto done;
    int r = version_exists(s, name, version, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: model %s has no version %lld", what, name,
                (long long)version);
        goto done;
    }
    if (prep(s, &st, "SELECT 1 FROM model_aliases WHERE model = ?1 AND"
             " alias = ?2", what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, alias, what, err))
        goto done;
    if ((r = step_row(s, st, what, err)) < 0) goto done;
    *created = r == 0;
    sqlite3_finalize(st);
    st = NULL;
    if (prep(s, &st, "INSERT INTO model_aliases (model, alias, version)"
             " VALUES (?1, ?2, ?3) ON CONFLICT (model, alias)"
             " DO UPDATE SET version = excluded.version", what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, alias, what, err))
        goto done;
    if (sqlite3_bind_int64(st, 3, version) != SQLITE_OK) {
        db_fail(s, what, err);
        goto done;
    }
    if (step_done(s, st, what, err)) goto done;
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

int store_model_alias_delete(store *s, const char *name, const char *alias,
                             mn_err *err)
{
    const char *what = "model_alias_delete";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (tx_write(s, what, err)) goto done;
    if (prep(s, &st, "DELETE FROM model_aliases WHERE model = ?1 AND"
             " alias = ?2", what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, alias, what, err) || step_done(s, st, what, err))
        goto done;
    if (sqlite3_changes(s->db) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: model %s has no alias %s", what, name, alias);
        goto done;
    }
    if (tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

int store_model_resolve(store *s, const char *name, int64_t version,
                        const char *alias, int64_t *run_id,
                        int64_t *version_out, mn_err *err)
{
    const char *what = "model_resolve";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (tx_read(s, what, err)) goto done;
    int r = model_exists(s, name, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "no model '%s'", name);
        goto done;
    }
    const char *sql =
        version > 0 ? "SELECT version, run_id FROM model_versions"
                      " WHERE model = ?1 AND version = ?2"
        : alias ? "SELECT v.version, v.run_id FROM model_aliases a"
                  " JOIN model_versions v ON v.model = a.model"
                  " AND v.version = a.version"
                  " WHERE a.model = ?1 AND a.alias = ?3"
                : "SELECT version, run_id FROM model_versions"
                  " WHERE model = ?1 ORDER BY version DESC LIMIT 1";
    if (prep(s, &st, sql, what, err) || bind_text(s, st, 1, name, what, err))
        goto done;
    if ((version > 0 && sqlite3_bind_int64(st, 2, version) != SQLITE_OK) ||
        (version <= 0 && alias &&
         sqlite3_bind_text(st, 3, alias, -1, SQLITE_STATIC) != SQLITE_OK)) {
        db_fail(s, what, err);
        goto done;
    }
    if ((r = step_row(s, st, what, err)) < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        if (version > 0)
            mn_errf(err, "model '%s' has no version %lld", name,
                    (long long)version);
        else if (alias)
            mn_errf(err, "model '%s' has no alias '%s'", name, alias);
        else
            mn_errf(err, "model '%s' has no version yet: register a run with "
                    "POST /models/%s/versions", name, name);
        goto done;
    }
    *version_out = sqlite3_column_int64(st, 0);
    *run_id = sqlite3_column_int64(st, 1);
    rc = 0;
done:
    sqlite3_finalize(st);
    tx_end(s);
    return store_rc(s, rc);
}

int store_run_model_version(store *s, int64_t run_id, char model[64],
                            int64_t *version, mn_err *err)
{
    const char *what = "run_model_version";
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (prep_id(s, &st, "SELECT model, version FROM model_versions"
                " WHERE run_id = ?1 ORDER BY model, version LIMIT 1", run_id,
                what, err))
        goto done;
    int r = step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (col_text_into(st, 0, model, 64, what, err)) goto done;
    *version = sqlite3_column_int64(st, 1);
    rc = 0;
done:
    sqlite3_finalize(st);
    return store_rc(s, rc);
}
