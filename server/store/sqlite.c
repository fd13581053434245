/* sqlite.c: the store's SQLite driver (store_driver_sqlite): one sqlite3
 * connection per st_conn, the pragmas of a connection, the WAL checkpoint,
 * and what SQLite needs of the common dialect (store_internal.h).
 *
 * DESIGN
 * - One st_conn = one sqlite3 connection, used by one thread at a time
 *   (opened with SQLITE_OPEN_NOMUTEX). Threads share the database file,
 *   never a connection.
 * - WAL mode: readers never block the writer nor each other. Writers
 *   serialise through SQLite's write lock; busy_timeout (10 s) makes a
 *   writer wait for it instead of failing with SQLITE_BUSY.
 * - Every write runs in BEGIN IMMEDIATE ... COMMIT (ST_TX_WRITE and
 *   ST_TX_MIGRATE): the write lock is taken up front, so a transaction
 *   never has to upgrade from read to write (the upgrade fails at once
 *   with SQLITE_BUSY_SNAPSHOT in WAL, without waiting). That lock covers
 *   the whole database, so the row-lock clauses of the common dialect
 *   (FOR UPDATE, FOR UPDATE SKIP LOCKED) are dropped from the SQL before
 *   it is prepared. Reads made of several statements run in a plain BEGIN
 *   so that they see one snapshot.
 * - synchronous=NORMAL: in WAL mode a committed transaction is written
 *   to the WAL file (the OS page cache) before COMMIT returns, so it
 *   survives the death of the process (SIGKILL, crash, OOM kill); only a
 *   power loss or kernel crash can lose the last transactions before the
 *   next checkpoint syncs them. That is the service's durability
 *   contract: no accepted run is lost when mnistd dies. FULL would also
 *   survive power loss at the cost of an fsync per commit (one per
 *   period and per request that writes).
 * - Errors: a result code is transient (the store's STORE_UNAVAILABLE)
 *   when it says "the database cannot be used for now" (code_transient). */
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store/store_internal.h"

#define SQ_BUSY_MS 10000              /* sqlite3_busy_timeout */
/* maintain restarts the log once it holds this much, waiting at most this
 * long for the writers and readers of the moment */
#define SQ_WAL_RESTART_BYTES (16ll << 20)
#define SQ_WAL_RESTART_WAIT_MS 200

struct st_conn {
    sqlite3 *db;          /* owned */
    long long page_size;  /* bytes, read at open */
    sqlite3_stmt *rollback; /* "ROLLBACK", owned: prepared by sq_begin
                             * before the transaction opens (see
                             * sq_rollback) */
};

typedef struct sq_stmt {
    st_stmt base;         /* first: the helpers' view */
    sqlite3_stmt *st;     /* owned */
    st_conn *c;           /* borrowed */
} sq_stmt;

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

static int sq_transient(st_conn *c)
{
    return code_transient(sqlite3_extended_errcode(c->db));
}

static const char *sq_errmsg(st_conn *c) { return sqlite3_errmsg(c->db); }

/* Runs constant SQL text of any number of statements (pragmas,
 * migrations), stepping each to the end. 0 or -1. */
static int sq_exec(st_conn *c, const char *sql)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    const char *p = sql;

    while (*p) {
        const char *tail = NULL;
        if (sqlite3_prepare_v2(c->db, p, -1, &st, &tail) != SQLITE_OK)
            goto done;
        if (!st) break; /* only comments or blanks are left */
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        }
        if (r != SQLITE_DONE) goto done;
        sqlite3_finalize(st);
        st = NULL;
        p = tail;
    }
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* The length of sql without a trailing row-lock clause (see DESIGN). */
static size_t strip_row_lock(const char *sql)
{
    static const char *const clauses[] = {" FOR UPDATE SKIP LOCKED",
                                          " FOR UPDATE", " FOR SHARE"};
    size_t n = strlen(sql);
    for (size_t i = 0; i < sizeof clauses / sizeof clauses[0]; i++) {
        size_t k = strlen(clauses[i]);
        if (n >= k && !strcmp(sql + n - k, clauses[i])) return n - k;
    }
    return n;
}

static int sq_prepare(st_conn *c, const char *sql, st_stmt **out)
{
    *out = NULL;
    sq_stmt *s = calloc(1, sizeof *s);
    if (!s) return -2; /* out of memory (st_prep says so) */
    if (sqlite3_prepare_v2(c->db, sql, (int)strip_row_lock(sql), &s->st,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(s->st);
        free(s);
        return -1;
    }
    s->base.drv = &store_driver_sqlite;
    s->c = c;
    *out = &s->base;
    return 0;
}

#define SQ(st) ((sq_stmt *)(st))
#define OK(x) ((x) == SQLITE_OK ? 0 : -1)

static int sq_bind_int64(st_stmt *st, int i, int64_t v)
{
    return OK(sqlite3_bind_int64(SQ(st)->st, i, v));
}

static int sq_bind_double(st_stmt *st, int i, double v)
{
    return OK(sqlite3_bind_double(SQ(st)->st, i, v));
}

static int sq_bind_text(st_stmt *st, int i, const char *v)
{
    return OK(sqlite3_bind_text(SQ(st)->st, i, v, -1, SQLITE_STATIC));
}

static int sq_bind_blob(st_stmt *st, int i, const void *p, size_t n)
{
    return OK(sqlite3_bind_blob64(SQ(st)->st, i, p, (sqlite3_uint64)n,
                                  SQLITE_STATIC));
}

static int sq_bind_null(st_stmt *st, int i)
{
    return OK(sqlite3_bind_null(SQ(st)->st, i));
}

static int sq_step(st_stmt *st)
{
    int r = sqlite3_step(SQ(st)->st);
    return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -1;
}

static int sq_col_type(st_stmt *st, int i)
{
    switch (sqlite3_column_type(SQ(st)->st, i)) {
    case SQLITE_INTEGER: return ST_INTEGER;
    case SQLITE_FLOAT: return ST_REAL;
    case SQLITE_TEXT: return ST_TEXT;
    case SQLITE_BLOB: return ST_BLOB;
    default: return ST_NULL;
    }
}

static int64_t sq_col_int64(st_stmt *st, int i)
{
    return sqlite3_column_int64(SQ(st)->st, i);
}

static double sq_col_double(st_stmt *st, int i)
{
    return sqlite3_column_double(SQ(st)->st, i);
}

static const char *sq_col_text(st_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(SQ(st)->st, i);
}

static const void *sq_col_blob(st_stmt *st, int i)
{
    return sqlite3_column_blob(SQ(st)->st, i);
}

static int sq_col_bytes(st_stmt *st, int i)
{
    return sqlite3_column_bytes(SQ(st)->st, i);
}

static const char *sq_col_name(st_stmt *st, int i)
{
    return sqlite3_column_name(SQ(st)->st, i);
}

static void sq_finalize(st_stmt *st)
{
    if (!st) return;
    sqlite3_finalize(SQ(st)->st);
    free(st);
}

static int64_t sq_changes(st_conn *c) { return sqlite3_changes(c->db); }

/* Prepares the transaction's ROLLBACK, then opens the transaction. The
 * statement is prepared anew for each transaction, not once at open: a
 * schema change (a migration) expires every prepared statement of the
 * connection, and an expired one is prepared again, allocating, at its
 * next step. A failure here leaves no transaction open. */
static int sq_begin(st_conn *c, int kind)
{
    sqlite3_stmt *rollback = NULL;
    if (sqlite3_prepare_v2(c->db, "ROLLBACK", -1, &rollback, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_finalize(c->rollback);
    c->rollback = rollback;
    return sq_exec(c, kind == ST_TX_READ ? "BEGIN" : "BEGIN IMMEDIATE");
}

/* Rolls back with the statement sq_begin prepared, so that no allocation
 * can fail and leave the transaction open on the connection for good (a
 * ROLLBACK prepared here could fail for want of memory:
 * test_store_errors found it). Called only while a transaction is open,
 * that is after a begin: c->rollback is set. (A migration's own schema
 * change expires it; should that migration fail, the step prepares it
 * again, allocating.) */
static int sq_rollback(st_conn *c)
{
    int r = sqlite3_step(c->rollback);
    sqlite3_reset(c->rollback);
    return r == SQLITE_DONE ? 0 : -1;
}

static int sq_in_tx(st_conn *c)
{
    return c && c->db && !sqlite3_get_autocommit(c->db);
}

/* ------------------------------------------------------------- opening */

/* Runs a one-row pragma into *out (its text, copied into cap bytes). */
static int pragma_text(st_conn *c, const char *sql, char *out, size_t cap,
                       mn_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        mn_errf(err, "store: %s: %s", sql, sqlite3_errmsg(c->db));
        goto done;
    }
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        mn_errf(err, "store: %s: %s", sql, sqlite3_errmsg(c->db));
        goto done;
    }
    const char *got = r == SQLITE_ROW
                          ? (const char *)sqlite3_column_text(st, 0) : NULL;
    snprintf(out, cap, "%s", got ? got : "");
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* Puts the database in WAL mode (persistent: a no-op once done). The
 * switch needs an exclusive lock and SQLite does not run the busy handler
 * for it, so when several connections open a fresh file at once the
 * losers get SQLITE_BUSY: retry every 10 ms up to the busy timeout. An
 * in-memory database answers "memory", which is accepted. 0 or -1. */
static int set_wal(st_conn *c, mn_err *err)
{
    const char *what = "PRAGMA journal_mode = WAL";
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char got[16];
        if (!pragma_text(c, what, got, sizeof got, NULL)) {
            if (!strcmp(got, "wal") || !strcmp(got, "memory")) return 0;
            return mn_errf(err, "store: %s: answered %s", what,
                           got[0] ? got : "NULL");
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long long ms = (t.tv_sec - t0.tv_sec) * 1000ll +
                       (t.tv_nsec - t0.tv_nsec) / 1000000;
        if ((sqlite3_errcode(c->db) & 0xff) != SQLITE_BUSY || ms >= SQ_BUSY_MS)
            return mn_errf(err, "store: %s: %s", what, sqlite3_errmsg(c->db));
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Runs constant SQL, naming it in err on failure. */
static int exec_or(st_conn *c, const char *sql, mn_err *err)
{
    if (sq_exec(c, sql))
        return mn_errf(err, "store: %s: %s", sql, sqlite3_errmsg(c->db));
    return 0;
}

static void sq_close(st_conn *c)
{
    if (!c) return;
    sqlite3_finalize(c->rollback);
    sqlite3_close(c->db);
    free(c);
}

/* Opens path (creating it) and configures the connection: busy timeout,
 * 4 KiB pages for a new file, WAL, synchronous, foreign keys, the WAL
 * size limits. */
static int sq_open(st_conn **out, const char *path, mn_err *err)
{
    int rc = -1;
    st_conn *c = NULL;
    mn_err why = {{0}}; /* the reason, reported with the path */
    char got[32];

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (!c) return mn_errf(err, "store: open %s: out of memory", path);
    int r = sqlite3_open_v2(path, &c->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                SQLITE_OPEN_NOMUTEX,
                            NULL);
    if (r != SQLITE_OK) {
        mn_errf(err, "store: open %s: %s", path,
                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(r));
        goto done;
    }
    sqlite3_extended_result_codes(c->db, 1);
    if (sqlite3_busy_timeout(c->db, SQ_BUSY_MS) != SQLITE_OK) {
        mn_errf(&why, "store: busy_timeout: %s", sqlite3_errmsg(c->db));
        goto fail;
    }
    /* small pages for a new database (ignored for an existing one): every
     * period commits a few rows, and each changed page goes to the log
     * whole (64 KiB pages made that ~600 KB a period); the checkpoint
     * blobs, a few hundred pages each, are paced (docs/STORAGE.md) */
    if (exec_or(c, "PRAGMA page_size = 4096", &why) || set_wal(c, &why))
        goto fail;
    /* See DESIGN: NORMAL in WAL survives process death, not power loss. */
    if (exec_or(c, "PRAGMA synchronous = NORMAL", &why) ||
        exec_or(c, "PRAGMA foreign_keys = ON", &why) ||
        pragma_text(c, "PRAGMA foreign_keys", got, sizeof got, &why))
        goto fail;
    if (strcmp(got, "1")) {
        mn_errf(&why, "store: PRAGMA foreign_keys: answered %s, expected 1",
                got[0] ? got : "nothing");
        goto fail;
    }
    /* truncate the WAL file back to 64 MiB after a checkpoint */
    if (exec_or(c, "PRAGMA journal_size_limit = 67108864", &why) ||
        pragma_text(c, "PRAGMA page_size", got, sizeof got, &why))
        goto fail;
    c->page_size = atoll(got);
    if (c->page_size < 512) {
        mn_errf(&why, "store: PRAGMA page_size: answered %s", got);
        goto fail;
    }
    /* a long-running owner (the server) checkpoints in the background
     * with store_wal_checkpoint; the automatic one, which stalls the
     * committing thread (34 ms seen at 40 MiB), is only a backstop at
     * 256 MiB: quick runs write ~13 MB of checkpoints each */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint = %lld",
             (256ll << 20) / c->page_size);
    if (exec_or(c, sql, &why)) goto fail;
    *out = c;
    c = NULL;
    rc = 0;
    goto done;
fail:
    mn_errf(err, "%s (database %s)", why.msg, path);
done:
    sq_close(c);
    return rc;
}

/* Passive, then a restart past SQ_WAL_RESTART_BYTES (see store.h). */
static int sq_maintain(st_conn *c, mn_err *err)
{
    int log_frames = 0;
    int r = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                      &log_frames, NULL);
    if (r != SQLITE_OK && r != SQLITE_BUSY) return -1;
    if ((long long)log_frames * c->page_size < SQ_WAL_RESTART_BYTES)
        return 0;
    /* writers that never pause never let a passive checkpoint finish
     * before the next one appends, so the log would only grow: wait a
     * little (writers then wait too) for a checkpoint after which the next
     * writer starts the log again from its beginning */
    sqlite3_busy_timeout(c->db, SQ_WAL_RESTART_WAIT_MS);
    r = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_RESTART,
                                  NULL, NULL);
    sqlite3_busy_timeout(c->db, SQ_BUSY_MS);
    (void)err;
    return r != SQLITE_OK && r != SQLITE_BUSY ? -1 : 0;
}

const store_driver store_driver_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .bind_int64 = sq_bind_int64,
    .bind_double = sq_bind_double,
    .bind_text = sq_bind_text,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .col_type = sq_col_type,
    .col_int64 = sq_col_int64,
    .col_double = sq_col_double,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .col_bytes = sq_col_bytes,
    .col_name = sq_col_name,
    .finalize = sq_finalize,
    .changes = sq_changes,
    .begin = sq_begin,
    .in_tx = sq_in_tx,
    .rollback = sq_rollback,
    .errmsg = sq_errmsg,
    .transient = sq_transient,
    .maintain = sq_maintain,
    /* no signals (listen, wait_signal NULL): one server per file */
    .shared = 0,
    .sql_has_migrations = "SELECT 1 FROM sqlite_master"
                          " WHERE type = 'table' AND name = 'schema_migrations'",
    .sql_create_migrations = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                             " version INTEGER PRIMARY KEY,"
                             " name TEXT NOT NULL,"
                             " applied_at INTEGER NOT NULL)",
    .migrations = store_migrations_sqlite,
    .migrations_count = &store_migrations_sqlite_count,
};
