/* store_internal.h: what store.c shares with the build and its tests only:
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

#endif
