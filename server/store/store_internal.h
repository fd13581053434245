/* store_internal.h: what store.c shares with the store's other files
 * (snapshots.c), the build and its tests only: the migrations embedded at
 * build time (scripts/embed-sql.sh writes $(BUILD)/gen/migrations.c from
 * migrations/NNNN_name.sql), a test hook that opens a database with only
 * the first migrations applied, so that "an older database upgrades in
 * place" can be tested, and the SQLite helpers of store.c. Routes and
 * workers use store.h, never this header. */
#ifndef MN_STORE_INTERNAL_H
#define MN_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- store.c's helpers (contracts there). Each returns 0 or -1 with
 * "store: <what>: <reason>" in err, step_row 1 for a row, 0 when done. */
int db_fail(store *s, const char *what, mn_err *err);
int store_rc(store *s, int rc);
int prep(store *s, sqlite3_stmt **st, const char *sql, const char *what,
         mn_err *err);
int prep_id(store *s, sqlite3_stmt **st, const char *sql, int64_t id,
            const char *what, mn_err *err);
int step_done(store *s, sqlite3_stmt *st, const char *what, mn_err *err);
int step_row(store *s, sqlite3_stmt *st, const char *what, mn_err *err);
int tx_read(store *s, const char *what, mn_err *err);
int tx_commit(store *s, const char *what, mn_err *err);
void tx_end(store *s);
int run_state(store *s, int64_t id, run_status *status, double *best,
              const char *what, mn_err *err);

/* ---- snapshots.c, inside the caller's write transaction ---- */

/* Stores data[0..len) (borrowed) as run id's weight snapshot of `period`
 * at `step`, replacing one there (a resumed run redoes the period). */
int snapshot_put(store *s, int64_t id, uint32_t period, uint32_t step,
                 const uint8_t *data, size_t len, const char *what,
                 mn_err *err);

#endif
