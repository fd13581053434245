/* store_internal.h: what store.c shares with the build, the store's other
 * files (sweeps.c) and its tests only:
 * the migrations embedded at build time (scripts/embed-sql.sh writes
 * $(BUILD)/gen/migrations.c from migrations/NNNN_name.sql) and a test hook
 * that opens a database with only the first migrations applied, so that
 * "an older database upgrades in place" can be tested. Routes and workers
 * use store.h, never this header. */
#ifndef MN_STORE_INTERNAL_H
#define MN_STORE_INTERNAL_H

#include <stddef.h>

#include "engine/err.h"
#include "server/store/store.h"

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

/* ---- helpers shared by the store's files (store.c defines them) ----
 *
 * sweeps.c keeps the sweeps' tables with these, as store.c does the rest:
 * every function returns 0 or -1 with "store: <what>: <reason>" in err
 * (store_sql_fail classifies a database error as transient; a public
 * function returns through store_sql_rc, which turns such a -1 into
 * STORE_UNAVAILABLE). Statements are the caller's to finalize. */
typedef struct sqlite3_stmt sqlite3_stmt;

/* Finalizes *st and prepares constant sql into it. */
int store_sql_prep(store *s, sqlite3_stmt **st, const char *sql,
                   const char *what, mn_err *err);
/* Steps a statement that returns no row. */
int store_sql_step_done(store *s, sqlite3_stmt *st, const char *what,
                        mn_err *err);
/* Steps a query: 1 when a row is ready, 0 when done, -1 on error. */
int store_sql_step_row(store *s, sqlite3_stmt *st, const char *what,
                       mn_err *err);
/* The connection's last error as "store: <what>: <reason>"; -1. */
int store_sql_fail(store *s, const char *what, mn_err *err);
/* A public function's return: rc, or STORE_UNAVAILABLE for a transient
 * -1. */
int store_sql_rc(store *s, int rc);
/* BEGIN IMMEDIATE (the write lock, waiting up to the busy timeout). */
int store_sql_tx_write(store *s, const char *what, mn_err *err);
/* BEGIN (one snapshot for several reads). */
int store_sql_tx_read(store *s, const char *what, mn_err *err);
/* COMMIT. */
int store_sql_tx_commit(store *s, const char *what, mn_err *err);
/* Cleanup: ROLLBACK if a transaction is still open (statements must be
 * finalized first). */
void store_sql_tx_end(store *s);
/* Milliseconds since the epoch (wall clock), as the store's times. */
int64_t store_sql_now_ms(void);
/* The rowid of the connection's last INSERT. */
int64_t store_sql_last_id(store *s);
/* The columns store_sql_run_from_row reads, in order (constant text). */
const char *store_sql_run_cols(void);
/* Fills *out (new strings; store_run_free) from a row that begins with
 * store_sql_run_cols(); on failure *out is zeroed. */
int store_sql_run_from_row(sqlite3_stmt *st, store_run *out,
                           const char *what, mn_err *err);
/* A REAL column, NULL as NaN. */
double store_sql_col_real(sqlite3_stmt *st, int i);
/* A text column as a new string (*out NULL for NULL when null_ok). */
int store_sql_col_text_dup(sqlite3_stmt *st, int i, char **out, int null_ok,
                           const char *what, mn_err *err);

#endif
