/* migrate.c: the schema migrations: the numbered SQL files of the
 * driver's backend (migrations/sqlite/, migrations/postgresql/), embedded
 * at build time, applied in order at open, each in its own transaction
 * (ST_TX_MIGRATE: SQLite's write lock; on PostgreSQL a transaction-level
 * advisory lock, so that several processes starting at once on an empty
 * database migrate once and all start), recorded in schema_migrations. */
#include "server/store/store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

/* Whether migration `version` is recorded (*yes); the schema_migrations
 * table must exist. 0 or -1. */
static int migration_applied(store *s, int version, int *yes, mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    if (st_prep(s, &st, "SELECT 1 FROM schema_migrations WHERE version = ?1",
             "migrate", err))
        goto done;
    st_bind_int64(st, 1, version);
    int r = st_step_row(s, st, "migrate", err);
    if (r < 0) goto done;
    *yes = r;
    rc = 0;
done:
    st_finalize(st);
    return rc;
}

/* Applies migration m in its own write transaction unless another
 * connection recorded it meanwhile (checked under the write lock). 0 or
 * -1 naming the migration. */
static int migration_apply(store *s, const store_migration *m, mn_err *err)
{
    int rc = -1, yes = 0;
    st_stmt *st = NULL;
    mn_err why = {{0}};

    if (st_tx_migrate(s, "migrate", err)) goto done;
    if (st_exec_script(s, s->drv->sql_create_migrations, "migrate", err))
        goto done;
    if (migration_applied(s, m->version, &yes, err)) goto done;
    if (!yes) {
        if (st_exec_script(s, m->sql, m->name, &why)) {
            mn_errf(err, "store: migration %s failed: %s", m->name,
                    why.msg);
            goto done;
        }
        if (st_prep(s, &st,
                 "INSERT INTO schema_migrations (version, name, applied_at)"
                 " VALUES (?1, ?2, ?3)",
                 "migrate", err))
            goto done;
        st_bind_int64(st, 1, m->version);
        st_bind_int64(st, 3, st_now_ms());
        if (st_bind_text(st, 2, m->name) != 0) {
            st_fail(s, "migrate", err);
            goto done;
        }
        if (st_step_done(s, st, "migrate", err)) goto done;
        st_finalize(st);
        st = NULL;
    }
    if (st_tx_commit(s, "migrate", err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return rc;
}

/* Applies every embedded migration with version <= max_version that the
 * database lacks, in order. Refuses a database whose schema is newer than
 * this program's. When the database is up to date this only reads (no
 * write lock), so opening a connection stays cheap. 0 or -1. */
int st_migrate(store *s, int max_version, mn_err *err)
{
    int rc = -1, has_table = 0;
    st_stmt *st = NULL;
    int newest = 0;

    const store_migration *migs = s->drv->migrations;
    size_t n_migs = *s->drv->migrations_count;

    for (size_t i = 0; i < n_migs; i++) {
        if (migs[i].version <= newest) {
            mn_errf(err, "store: migration %s: versions out of order",
                    migs[i].name);
            goto done;
        }
        newest = migs[i].version;
    }

    if (st_prep(s, &st, s->drv->sql_has_migrations, "migrate", err))
        goto done;
    int r = st_step_row(s, st, "migrate", err);
    if (r < 0) goto done;
    has_table = r;

    if (has_table) {
        if (st_prep(s, &st, "SELECT max(version) FROM schema_migrations",
                 "migrate", err))
            goto done;
        r = st_step_row(s, st, "migrate", err);
        if (r < 0) goto done;
        if (r && !st_col_null(st, 0) &&
            st_col_int64(st, 0) > newest) {
            mn_errf(err,
                    "store: database schema version %lld is newer than "
                    "this program's (%d); use a newer mnistd",
                    (long long)st_col_int64(st, 0), newest);
            goto done;
        }
    }
    st_finalize(st);
    st = NULL;

    for (size_t i = 0; i < n_migs; i++) {
        const store_migration *m = &migs[i];
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
    st_finalize(st);
    return rc;
}

