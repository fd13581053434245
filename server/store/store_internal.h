/* store_internal.h: what the store's files (db.c, migrate.c, runs.c,
 * periods.c, datasets.c, models.c, lock.c) share, and the hooks its tests
 * use. Routes and workers use store.h, never this header.
 *
 * The store is the SQLite implementation of store.h (runs, per-period
 * metrics, confusion matrices, checkpoints, uploaded datasets, named
 * models), split by concept into those files.
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
#ifndef MN_STORE_INTERNAL_H
#define MN_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"
#include "server/store/store.h"

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
    int unavailable; /* this call's database error is transient (st_fail
                      * sets it; st_rc reads and clears it on return) */
    long long page_size; /* bytes, read at open */
};

typedef struct store_migration {
    int version;       /* NNNN of the file name, >= 1 */
    const char *name;  /* file name without ".sql", e.g. "0001_init" */
    const char *sql;   /* the file's text, byte for byte */
} store_migration;

/* Every migration, in increasing version order (generated, read-only). */
extern const store_migration store_migrations[];
extern const size_t store_migrations_count;

/* store_open, but applies only the migrations with version <= max_version
 * (store_open is store_open_upto(out, path, INT_MAX, err)). For tests. */
int store_open_upto(store **out, const char *path, int max_version,
                    mn_err *err);

/* ---- helpers (db.c): each returns 0 or -1 unless it says otherwise ---- */

int64_t st_now_ms(void);
int st_fail(store *s, const char *what, mn_err *err);
int st_rc(store *s, int rc);
int st_prep(store *s, sqlite3_stmt **st, const char *sql, const char *what,
            mn_err *err);
int st_prep_id(store *s, sqlite3_stmt **st, const char *sql, int64_t id,
               const char *what, mn_err *err);
int st_prep_name(store *s, sqlite3_stmt **st, const char *sql,
                 const char *name, const char *what, mn_err *err);
int st_step_done(store *s, sqlite3_stmt *st, const char *what, mn_err *err);
int st_exec_id(store *s, const char *sql, int64_t id, const char *what,
               mn_err *err);
int st_step_row(store *s, sqlite3_stmt *st, const char *what, mn_err *err);
int st_exec_script(store *s, const char *sql, const char *what, mn_err *err);
int st_tx_write(store *s, const char *what, mn_err *err);
int st_tx_read(store *s, const char *what, mn_err *err);
int st_tx_commit(store *s, const char *what, mn_err *err);
void st_tx_end(store *s);
int st_bind_real(sqlite3_stmt *st, int i, double x);
double st_col_real(sqlite3_stmt *st, int i);
int64_t st_col_time(sqlite3_stmt *st, int i);
int st_col_u32(sqlite3_stmt *st, int i, uint32_t *out, const char *what,
               mn_err *err);
int st_col_text_into(sqlite3_stmt *st, int i, char *dst, size_t cap,
                     const char *what, mn_err *err);
int st_col_status(sqlite3_stmt *st, int i, run_status *out,
                  const char *what, mn_err *err);
int st_col_text_dup(sqlite3_stmt *st, int i, char **out, int null_ok,
                    const char *what, mn_err *err);
void *st_grow(void *arr, size_t *cap, size_t need, size_t size);
/* Fills one array element from the statement's current row. */
typedef int (*st_row_fill)(sqlite3_stmt *st, void *dst, const char *what,
                        mn_err *err);

int st_collect_rows(store *s, sqlite3_stmt *st, size_t size,
                    st_row_fill fill, void **arr, size_t *cnt,
                    const char *what, mn_err *err);

/* migrate.c */
int st_migrate(store *s, int max_version, mn_err *err);

/* runs.c */
int st_run_state(store *s, int64_t id, run_status *status, double *best,
                 const char *what, mn_err *err);
int st_dataset_exists(store *s, const char *name, const char *what,
                      mn_err *err);

/* periods.c: the columns st_period_cols reads, in its order */
#define PERIOD_COLS                                                          \
    "period, step, train_log_loss, validation_log_loss, "                   \
    "validation_accuracy, seconds"
int st_period_cols(sqlite3_stmt *st, int base, train_period *p,
                   const char *what, mn_err *err);

#endif
