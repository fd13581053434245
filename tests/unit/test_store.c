/* test_store.c: the store (server/store/), on either backend: SQLite by
 * default; PostgreSQL when MNISTD_TEST_PG holds the URI of a throwaway
 * server (scripts/pg-temp.sh run; `make unit-pg`), each test then in a
 * schema of its own. Tests that look under the store with sqlite3 (raw_open)
 * or at files are SQLite's and skip on PostgreSQL. Covered: migrations (fresh
 * database, in-place upgrade of an older one, idempotent reopen, refusal
 * of a newer one), the run life cycle and its conflicts, period metrics
 * with the latest/best checkpoint logic, cascade deletes, nodes, leases
 * and their reaping (recovery), hand-backs, poison runs,
 * confusions, uploaded datasets (including corrupted rows, and deletes
 * against the runs on them), weight snapshots (in their period's
 * transaction, replaced, gone with their run), NOT_FOUND for unknown ids,
 * concurrent writers on one file, and sweeps (trial creation guarded by
 * next_trial, parallel and status, also from several connections at once;
 * series; delete; the migration's 'pruned'), users (tokens' hashes,
 * revocation) and the owners of runs, sweeps, uploads and models, the
 * fair-share claim across owners and what a user holds against the
 * per-user limits (store_limit). Each test works in its own temporary
 * directory under /tmp, removed afterwards. */
#include <criterion/criterion.h>

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "server/store/snapshots.h"
#include "server/store/store.h"
#include "server/store/pg_sql.h"
#include "server/store/store_internal.h"
#include "tests/unit/helpers.h"

/* The temporary directory and database path of the running test (each
 * Criterion test runs in its own process). */
static char tmp_dir[64];
static char db_path[1024]; /* the SQLite file, or the PostgreSQL URI */
static int on_pg;          /* the backend is PostgreSQL */

/* On PostgreSQL: a new schema for this test (its name from the pid: each
 * test runs in its own process), and db_path the URI that selects it. */
static void pg_schema(const char *uri)
{
    char schema[32], sql[160];
    snprintf(schema, sizeof schema, "t%ld", (long)getpid());
    PGconn *c = PQconnectdb(uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    snprintf(sql, sizeof sql,
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s"
             " CASCADE; CREATE SCHEMA %s", schema,
             schema);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s",
                 PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    snprintf(db_path, sizeof db_path, "%s%soptions=-csearch_path%%3D%s", uri,
             strchr(uri, '?') ? "&" : "?", schema);
}

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "store");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
    const char *uri = getenv("MNISTD_TEST_PG");
    on_pg = uri && *uri;
    if (on_pg) pg_schema(uri);
}

/* Skips the rest of a test that is SQLite's alone. */
#define SQLITE_ONLY(why)                                                     \
    do {                                                                     \
        if (on_pg) {                                                         \
            cr_skip_test("SQLite only: %s", why);                            \
            return;                                                          \
        }                                                                    \
    } while (0)

/* Removes tmp_dir with its files (db, -wal, -shm). */
static void teardown(void) { th_tmpdir_remove(tmp_dir); }

TestSuite(store, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------- helpers */

static store *open_db(void)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, db_path, &err), 0, "%s", err.msg);
    cr_assert_not_null(s);
    return s;
}

static int64_t make_run(store *s, const char *model)
{
    int64_t id = 0;
    mn_err err = {{0}};
    cr_assert_eq(store_run_create(s, NULL, 0, model, "mnist", "{\"seed\":1}",
                                  1000, 10, NULL, &id, &err),
                 0, "%s", err.msg);
    cr_assert_gt(id, 0);
    return id;
}

static void claim(store *s, int64_t want)
{
    store_run r;
    mn_err err = {{0}};
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, want);
    cr_assert_str_eq(run_status_name(r.status), "running");
    store_run_free(&r);
}

static void finish(store *s, int64_t id, run_status status)
{
    mn_err err = {{0}};
    cr_assert_eq(store_run_finish(s, id, status, NULL, 0, &err), 0, "%s",
                 err.msg);
}

static train_period period(uint32_t k, uint32_t step, double vloss)
{
    train_period p = {.period = k, .step = step, .train_log_loss = vloss + 0.1,
                      .validation_log_loss = vloss,
                      .validation_accuracy = 1.0 - vloss / 2,
                      .seconds = 0.25 * k};
    return p;
}

/* A confusion matrix with distinct counts derived from seed. */
static eval_result evaluation(uint32_t seed)
{
    eval_result e;
    memset(&e, 0, sizeof e);
    for (int t = 0; t < DS_CLASSES; t++)
        for (int q = 0; q < DS_CLASSES; q++)
            e.confusion[t][q] = seed * 1000u + (uint32_t)(t * 10 + q) +
                                (t == q ? 70000u : 0u);
    e.examples = 2500 + seed;
    e.accuracy = 0.9 + seed * 0.001;
    e.log_loss = 0.3 - seed * 0.01;
    return e;
}

static void add_period(store *s, int64_t id, uint32_t k, double vloss,
                       const char *ckpt)
{
    train_period p = period(k, k * 100, vloss);
    eval_result e = evaluation(k);
    mn_err err = {{0}};
    cr_assert_eq(store_period_add(s, id, &p, &e, (const uint8_t *)ckpt,
                                  strlen(ckpt), &err),
                 0, "%s", err.msg);
}

/* Asserts the run's checkpoint of kind is `want` (text) at `step`. */
static void assert_ckpt(store *s, int64_t id, const char *kind,
                        const char *want, uint32_t step)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t got_step = 0;
    mn_err err = {{0}};
    cr_assert_eq(store_checkpoint_get(s, id, kind, &buf, &len, &got_step,
                                      &err),
                 0, "%s", err.msg);
    cr_assert_eq(len, strlen(want));
    cr_assert_eq(memcmp(buf, want, len), 0, "%s checkpoint differs", kind);
    cr_assert_eq(got_step, step);
    free(buf);
}

/* A direct connection to the test database, under the store: sqlite3 or
 * libpq, whichever backend the test runs on. SQL given to raw_int and
 * raw_exec must run on both (raw_int's ?1 becomes $1 on PostgreSQL). */
typedef struct raw {
    sqlite3 *lite;
    PGconn *pg;
} raw;

static raw *raw_open(void)
{
    raw *db = calloc(1, sizeof *db);
    cr_assert_not_null(db);
    if (on_pg) {
        db->pg = PQconnectdb(db_path);
        cr_assert_eq(PQstatus(db->pg), CONNECTION_OK, "%s",
                     PQerrorMessage(db->pg));
        return db;
    }
    cr_assert_eq(sqlite3_open(db_path, &db->lite), SQLITE_OK);
    sqlite3_busy_timeout(db->lite, 10000);
    return db;
}

static void raw_close(raw *db)
{
    sqlite3_close(db->lite);
    PQfinish(db->pg);
    free(db);
}

/* Runs a one-integer query with ?1 = arg (when the SQL has ?1). */
static int64_t raw_int(raw *db, const char *sql, int64_t arg)
{
    if (db->pg) {
        char q[1024], a[32];
        size_t j = 0;
        for (const char *p = sql; *p && j + 2 < sizeof q; p++)
            q[j++] = *p == '?' ? '$' : *p;
        q[j] = '\0';
        snprintf(a, sizeof a, "%lld", (long long)arg);
        const char *vals[1] = {a};
        PGresult *r = PQexecParams(db->pg, q, strstr(q, "$1") ? 1 : 0, NULL,
                                   vals, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", q,
                     PQerrorMessage(db->pg));
        cr_assert_eq(PQntuples(r), 1, "%s", q);
        int64_t v = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        return v;
    }
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db->lite, sql, -1, &st, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(db->lite));
    if (sqlite3_bind_parameter_count(st) >= 1)
        sqlite3_bind_int64(st, 1, arg);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s",
                 sqlite3_errmsg(db->lite));
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void raw_exec(raw *db, const char *sql)
{
    if (db->pg) {
        PGresult *r = PQexec(db->pg, sql);
        cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK ||
                      PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(db->pg));
        PQclear(r);
        return;
    }
    char *msg = NULL;
    int r = sqlite3_exec(db->lite, sql, NULL, NULL, &msg);
    cr_assert_eq(r, SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_free(msg);
}

static int64_t index_exists(raw *db, const char *name)
{
    char q[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM %s = '%s'",
             db->pg ? "pg_indexes WHERE schemaname = current_schema() AND"
                      " indexname"
                    : "sqlite_master WHERE type = 'index' AND name",
             name);
    return raw_int(db, q, 0);
}

static const store_migration *migrations(size_t *n)
{
    *n = on_pg ? store_migrations_postgresql_count
               : store_migrations_sqlite_count;
    return on_pg ? store_migrations_postgresql : store_migrations_sqlite;
}

static int newest_version(void)
{
    size_t n;
    const store_migration *m = migrations(&n);
    cr_assert_gt(n, 1, "need at least two migrations");
    return m[n - 1].version;
}

/* A small dataset of n images of 28x28 with labels i % 10. */
static ds_dataset make_dataset(uint32_t n)
{
    ds_dataset d = {.n = n, .rows = DS_ROWS, .cols = DS_COLS};
    d.pixels = malloc((size_t)n * DS_PIXELS);
    d.labels = malloc(n);
    cr_assert(d.pixels && d.labels);
    for (size_t i = 0; i < (size_t)n * DS_PIXELS; i++)
        d.pixels[i] = (uint8_t)(i * 7 + 3);
    for (uint32_t i = 0; i < n; i++) d.labels[i] = (uint8_t)(i % 10);
    return d;
}

/* ---------------------------------------------------------------- migrations */

Test(store, fresh_database_gets_every_migration)
{
    store *s = open_db();
    cr_assert_eq(store_schema_version(s), newest_version());
    store_close(s);

    raw *db = raw_open();
    size_t n_migs;
    migrations(&n_migs);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM schema_migrations", 0),
                 (int64_t)n_migs);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM schema_migrations WHERE "
                             "name = '0001_init' AND version = 1 AND "
                             "applied_at > 0", 0),
                 1);
    cr_assert_eq(index_exists(db, "runs_status_idx"), 1);
    cr_assert_eq(index_exists(db, "runs_model_idx"), 1);
    if (on_pg) {
        raw_close(db);
        return;
    }
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db->lite, "PRAGMA journal_mode", -1, &st,
                                    NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    raw_close(db);
}

/* Both backends' series: ordered, and one file in each for each version
 * (docs/STORAGE.md: a change is written for both). */
Test(store, embedded_migrations_are_ordered)
{
    size_t n;
    const store_migration *m = migrations(&n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_gt(m[i].version, 0);
        cr_assert_not_null(m[i].sql);
        cr_assert_gt(strlen(m[i].sql), 0);
        if (i) cr_assert_gt(m[i].version, m[i - 1].version);
    }
    cr_assert_str_eq(m[0].name, "0001_init");
    cr_assert_not_null(strstr(m[0].sql, "CREATE TABLE runs"));
    cr_assert_eq(store_migrations_sqlite_count,
                 store_migrations_postgresql_count);
    for (size_t i = 0; i < store_migrations_sqlite_count; i++) {
        cr_assert_eq(store_migrations_sqlite[i].version,
                     store_migrations_postgresql[i].version);
        cr_assert_str_eq(store_migrations_sqlite[i].name,
                         store_migrations_postgresql[i].name);
    }
}

Test(store, older_database_upgrades_in_place)
{
    mn_err err = {{0}};
    store *s = NULL;
    cr_assert_eq(store_open_upto(&s, db_path, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_schema_version(s), 1);
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "dnn");
    /* claimed as the version-1 code did (today's claim reads newer
     * columns) */
    raw *db = raw_open();
    cr_assert_eq(raw_int(db, "UPDATE runs SET status = 'running',"
                         " started_at = 1 WHERE id = ?1 RETURNING id", a), a);
    raw_close(db);
    add_period(s, a, 1, 0.5, "ckpt-a1");
    store_close(s);

    db = raw_open();
    cr_assert_eq(index_exists(db, "runs_model_idx"), 0);
    cr_assert_eq(raw_int(db, "SELECT max(version) FROM schema_migrations", 0),
                 1);
    raw_close(db);

    s = open_db();
    cr_assert_eq(store_schema_version(s), newest_version());
    store_run r;
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "running");
    cr_assert_str_eq(r.model, "linear");
    cr_assert_eq(r.step, 100);
    cr_assert_str_eq(r.params_json, "{\"seed\":1}");
    store_run_free(&r);
    cr_assert_eq(store_run_get(s, b, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    store_run_free(&r);
    assert_ckpt(s, a, "latest", "ckpt-a1", 100);
    /* new writes work on the upgraded schema */
    int64_t c = make_run(s, "dnn");
    cr_assert_gt(c, b);
    store_close(s);

    db = raw_open();
    cr_assert_eq(index_exists(db, "runs_model_idx"), 1);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM schema_migrations", 0),
                 (int64_t)store_migrations_sqlite_count);
    raw_close(db);
}

Test(store, reopen_is_idempotent)
{
    store *s = open_db();
    int64_t id = make_run(s, "linear");
    store_close(s);
    for (int i = 0; i < 3; i++) {
        s = open_db();
        cr_assert_eq(store_schema_version(s), newest_version());
        int64_t n = 0;
        mn_err err = {{0}};
        cr_assert_eq(store_run_count(s, NULL, &n, &err), 0, "%s", err.msg);
        cr_assert_eq(n, 1);
        store_close(s);
    }
    raw *db = raw_open();
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM schema_migrations", 0),
                 (int64_t)store_migrations_sqlite_count);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM runs WHERE id = ?1", id),
                 1);
    raw_close(db);
}

Test(store, newer_database_is_refused)
{
    store *s = open_db();
    store_close(s);
    raw *db = raw_open();
    raw_exec(db, "INSERT INTO schema_migrations VALUES (9999, '9999_future', 1)");
    raw_close(db);
    mn_err err = {{0}};
    s = NULL;
    cr_assert_eq(store_open(&s, db_path, &err), -1);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err.msg, "newer"), "%s", err.msg);
}

Test(store, open_fails_with_a_message)
{
    SQLITE_ONLY("a file path");
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, "/nonexistent-dir/x/y.db", &err), -1);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err.msg, "/nonexistent-dir/x/y.db"), "%s",
                       err.msg);
}

/* ---------------------------------------------------------------- runs */

Test(store, run_create_and_get)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = 0;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "fashion", "{\"a\":[1,2]}",
                                  500, 5, NULL, &id, &err),
                 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, id);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    cr_assert_str_eq(r.model, "dnn");
    cr_assert_str_eq(r.dataset, "fashion");
    cr_assert_str_eq(r.params_json, "{\"a\":[1,2]}");
    cr_assert_eq(r.step, 0);
    cr_assert_eq(r.steps, 500);
    cr_assert_eq(r.period, 0);
    cr_assert_eq(r.periods, 5);
    cr_assert(isnan(r.validation_accuracy));
    cr_assert(isnan(r.validation_log_loss));
    cr_assert(isnan(r.test_accuracy));
    cr_assert_gt(r.created_at, 1600000000000LL);
    cr_assert_eq(r.started_at, 0);
    cr_assert_eq(r.finished_at, 0);
    cr_assert_null(r.error);
    store_run_free(&r);
    cr_assert_null(r.params_json);

    /* bad names are errors, not truncations */
    cr_assert_eq(store_run_create(s, NULL, 0, "much-too-long", "mnist", "{}", 1,
                                  1, NULL, &id, &err),
                 -1);
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", longname, "{}", 1, 1, NULL,
                                  &id, &err),
                 -1);
    /* user text with quotes is bound, never pasted into SQL */
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "x'); DROP TABLE runs;--",
                                  "{\"q\":\"'\"}", 1, 1, NULL, &id, &err),
                 0, "%s", err.msg);
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.dataset, "x'); DROP TABLE runs;--");
    store_run_free(&r);
    store_close(s);
}

Test(store, run_list_filters_pages_newest_first)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t ids[6];
    const char *models[6] = {"linear", "dnn", "linear", "dnn", "dnn", "linear"};
    for (int i = 0; i < 6; i++) ids[i] = make_run(s, models[i]);
    claim(s, ids[0]); /* ids[0] running, the rest queued */
    finish(s, ids[0], RUN_SUCCEEDED);
    claim(s, ids[1]); /* ids[1] running */

    store_run *runs = NULL;
    size_t n = 0;
    cr_assert_eq(store_run_list(s, NULL, NULL, 100, 0, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 6);
    for (size_t i = 0; i < n; i++) cr_assert_eq(runs[i].id, ids[5 - i]);
    store_runs_free(runs, n);

    cr_assert_eq(store_run_list(s, "queued", NULL, -1, 0, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 4);
    cr_assert_eq(runs[0].id, ids[5]);
    cr_assert_eq(runs[3].id, ids[2]);
    store_runs_free(runs, n);

    cr_assert_eq(store_run_list(s, NULL, "linear", -1, 0, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(runs[0].id, ids[5]);
    cr_assert_eq(runs[1].id, ids[2]);
    cr_assert_eq(runs[2].id, ids[0]);
    cr_assert_str_eq(run_status_name(runs[2].status), "succeeded");
    store_runs_free(runs, n);

    cr_assert_eq(store_run_list(s, "queued", "dnn", -1, 0, &runs, &n, NULL, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(runs[0].id, ids[4]);
    cr_assert_eq(runs[1].id, ids[3]);
    store_runs_free(runs, n);

    /* paging: 6 runs in pages of 4 */
    cr_assert_eq(store_run_list(s, NULL, NULL, 4, 0, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 4);
    cr_assert_eq(runs[0].id, ids[5]);
    cr_assert_eq(runs[3].id, ids[2]);
    store_runs_free(runs, n);
    cr_assert_eq(store_run_list(s, NULL, NULL, 4, 4, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(runs[0].id, ids[1]);
    cr_assert_eq(runs[1].id, ids[0]);
    store_runs_free(runs, n);
    cr_assert_eq(store_run_list(s, NULL, NULL, 4, 100, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 0);
    store_runs_free(runs, n);
    cr_assert_eq(store_run_list(s, "failed", NULL, 10, 0, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 0);
    store_runs_free(runs, n);
    cr_assert_eq(store_run_list(s, NULL, NULL, 0, 0, &runs, &n, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(n, 0);
    store_runs_free(runs, n);
    cr_assert_eq(store_run_list(s, NULL, NULL, 10, -1, &runs, &n, NULL, &err), -1);

    int64_t cnt = 0;
    cr_assert_eq(store_run_count(s, "queued", &cnt, &err), 0, "%s", err.msg);
    cr_assert_eq(cnt, 4);
    cr_assert_eq(store_run_count(s, "running", &cnt, &err), 0, "%s", err.msg);
    cr_assert_eq(cnt, 1);
    cr_assert_eq(store_run_count(s, NULL, &cnt, &err), 0, "%s", err.msg);
    cr_assert_eq(cnt, 6);
    store_close(s);
}

/* Asserts that a listed run's last period is period `want` as add_period
 * wrote it (period 0: the run has none). */
static void assert_last_period(const train_period *p, uint32_t want,
                               double vloss)
{
    cr_assert_eq(p->period, want, "last period %u, want %u", p->period, want);
    if (!want) return;
    cr_assert_eq(p->step, want * 100);
    cr_assert_float_eq(p->seconds, 0.25 * want, 1e-12);
    cr_assert_float_eq(p->validation_log_loss, vloss, 1e-12);
}

Test(store, run_list_gives_every_run_its_last_period)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t ids[4];
    const char *models[4] = {"linear", "dnn", "linear", "dnn"};
    for (int i = 0; i < 4; i++) {
        ids[i] = make_run(s, models[i]);
        claim(s, ids[i]);
    }
    /* periods written interleaved across the runs; ids[1] has none */
    add_period(s, ids[0], 1, 0.9, "a");
    add_period(s, ids[2], 1, 0.8, "c");
    add_period(s, ids[0], 2, 0.7, "a");
    add_period(s, ids[3], 1, 0.6, "d");
    add_period(s, ids[2], 2, 0.5, "c");
    add_period(s, ids[0], 3, 0.4, "a");
    const uint32_t want[4] = {3, 0, 2, 1};
    const double vloss[4] = {0.4, 0, 0.5, 0.6};

    store_run *runs = NULL;
    train_period *last = NULL;
    size_t n = 0;
    cr_assert_eq(store_run_list(s, NULL, NULL, -1, 0, &runs, &n, &last, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 4);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(runs[i].id, ids[3 - i]);
        assert_last_period(&last[i], want[3 - i], vloss[3 - i]);
    }
    free(last);
    store_runs_free(runs, n);

    /* a page and a filter select the periods of their runs only */
    cr_assert_eq(store_run_list(s, NULL, NULL, 2, 1, &runs, &n, &last, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(runs[0].id, ids[2]);
    cr_assert_eq(runs[1].id, ids[1]);
    assert_last_period(&last[0], 2, 0.5);
    assert_last_period(&last[1], 0, 0);
    free(last);
    store_runs_free(runs, n);
    cr_assert_eq(store_run_list(s, "running", "linear", -1, 0, &runs, &n,
                                &last, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(runs[0].id, ids[2]);
    cr_assert_eq(runs[1].id, ids[0]);
    assert_last_period(&last[0], 2, 0.5);
    assert_last_period(&last[1], 3, 0.4);
    free(last);
    store_runs_free(runs, n);

    /* no match: an empty list */
    cr_assert_eq(store_run_list(s, "failed", NULL, -1, 0, &runs, &n, &last,
                                &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    cr_assert_null(runs);
    cr_assert_null(last);
    store_close(s);
}

Test(store, periods_page_reads_after_a_period_up_to_a_limit)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "linear");
    claim(s, id);
    for (uint32_t k = 1; k <= 5; k++) add_period(s, id, k, 1.0 / k, "a");
    train_period *ps = NULL;
    size_t n = 0;
    cr_assert_eq(store_periods_page(s, id, 0, 2, &ps, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(ps[0].period, 1);
    cr_assert_eq(ps[1].period, 2);
    free(ps);
    cr_assert_eq(store_periods_page(s, id, 2, 2, &ps, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(ps[0].period, 3);
    cr_assert_eq(ps[1].step, 400);
    free(ps);
    cr_assert_eq(store_periods_page(s, id, 4, -1, &ps, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(ps[0].period, 5);
    free(ps);
    cr_assert_eq(store_periods_page(s, id, 5, 10, &ps, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 0);
    cr_assert_null(ps);
    cr_assert_eq(store_periods_page(s, id + 1, 0, 10, &ps, &n, &err),
                 STORE_NOT_FOUND);
    store_close(s);
}

Test(store, claim_takes_oldest_queued_first)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "dnn");
    int64_t c = make_run(s, "linear");

    store_run r;
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, a);
    cr_assert_str_eq(run_status_name(r.status), "running");
    cr_assert_gt(r.started_at, 0);
    int64_t started = r.started_at;
    store_run_free(&r);
    claim(s, b);

    /* a requeued run keeps its first start time and goes first again */
    cr_assert_eq(store_run_requeue(s, a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_requeue(s, a, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, a);
    cr_assert_eq(r.started_at, started);
    store_run_free(&r);

    claim(s, c);
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), STORE_NOT_FOUND);
    cr_assert_null(r.params_json);
    store_close(s);
}

/* Queues a run of owner (NULL: none) and returns its id. */
static int64_t make_owned_run(store *s, const char *owner)
{
    int64_t id = 0;
    mn_err err = {{0}};
    cr_assert_eq(store_run_create(s, owner, 0, "linear", "mnist",
                                  "{\"seed\":1}", 1000, 10, NULL, &id, &err),
                 0, "%s", err.msg);
    return id;
}

/* Claims the next run for node `node` and checks it is want, held by that
 * node on its first attempt; the run stays running. */
static void claim_is(store *s, const char *node, int64_t want)
{
    store_run r;
    mn_err err = {{0}};
    cr_assert_eq(store_run_claim(s, node, 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, want, "claimed run %lld, not %lld", (long long)r.id,
                 (long long)want);
    cr_assert_str_eq(r.node, node);
    cr_assert_eq(r.attempts, 1);
    store_run_free(&r);
}

Test(store, claim_is_fair_share_across_owners)
{
    store *s = open_db();
    mn_err err = {{0}};
    uint8_t hash[STORE_TOKEN_HASH_BYTES] = {0};
    cr_assert_eq(store_user_add(s, "alice", hash, 0, &err), 0, "%s", err.msg);
    hash[0] = 1;
    cr_assert_eq(store_user_add(s, "bob", hash, 0, &err), 0, "%s", err.msg);

    /* one worker: alice queues 20 runs and her first starts */
    int64_t a[20];
    for (int i = 0; i < 20; i++) a[i] = make_owned_run(s, "alice");
    claim_is(s, "n1", a[0]);
    /* bob queues one: it starts next, before alice's 19 older ones */
    int64_t b0 = make_owned_run(s, "bob");
    cr_assert_eq(store_run_finish(s, a[0], RUN_SUCCEEDED, NULL, 0, &err), 0,
                 "%s", err.msg);
    claim_is(s, "n1", b0);
    cr_assert_eq(store_run_finish(s, b0, RUN_SUCCEEDED, NULL, 0, &err), 0,
                 "%s", err.msg);
    /* bob has nothing queued: alice's runs, oldest first */
    claim_is(s, "n1", a[1]);

    /* two workers, on two nodes (n1, n2): alice holds one running run, so
     * bob's new run goes before alice's queued ones; the running runs are
     * counted on every node */
    int64_t b1 = make_owned_run(s, "bob");
    claim_is(s, "n2", b1);
    /* each has one running: alice was served longer ago than bob */
    int64_t b2 = make_owned_run(s, "bob");
    claim_is(s, "n1", a[2]);
    /* alice 2 running, bob 1: bob */
    claim_is(s, "n2", b2);

    /* runs without an owner (NULL) count as one more owner: with alice
     * and bob at 2 running each, the ownerless ones (0, then 1 running)
     * go first, then alice again */
    int64_t n0 = make_owned_run(s, NULL);
    int64_t n1 = make_owned_run(s, NULL);
    claim_is(s, "n1", n0);
    claim_is(s, "n2", n1);
    claim_is(s, "n1", a[3]);
    store_close(s);
}

/* What alice holds against each limit, as the store's limits count it:
 * each probe passes a limit her holding already reaches (the upload and
 * the sweep add more than a limit of 1), so it is refused, creates
 * nothing and says what she held. Runs: -1 when she has none (the probe
 * then created one). */
static void held(store *s, int64_t *runs, int64_t *bytes, int64_t *trials)
{
    mn_err err = {{0}};
    store_limit lim = {.max = 1};
    int64_t id = 0;
    int r = store_run_create(s, "alice", 0, "linear", "mnist", "{}", 10, 1,
                             &lim, &id, &err);
    cr_assert(r == 0 || r == STORE_LIMIT, "%d %s", r, err.msg);
    *runs = r == 0 ? -1 : lim.used;
    uint8_t px[6] = {0}, label = 1;
    ds_dataset d = {.n = 1, .rows = 2, .cols = 3, .pixels = px,
                    .labels = &label};
    lim = (store_limit){.max = 1};
    cr_assert_eq(store_dataset_put_owned(s, "probe", &d, "alice", 0, &lim,
                                         &err), STORE_LIMIT);
    *bytes = lim.used;
    lim = (store_limit){.max = 1};
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 2, &lim, &id,
                                          &err), STORE_LIMIT);
    *trials = lim.used;
}

Test(store, limits_count_what_a_user_holds)
{
    store *s = open_db();
    mn_err err = {{0}};
    uint8_t hash[STORE_TOKEN_HASH_BYTES] = {0};
    cr_assert_eq(store_user_add(s, "alice", hash, 0, &err), 0, "%s", err.msg);
    hash[0] = 1;
    cr_assert_eq(store_user_add(s, "bob", hash, 0, &err), 0, "%s", err.msg);

    int64_t a0 = make_owned_run(s, "alice");
    int64_t a1 = make_owned_run(s, "alice");
    int64_t a2 = make_owned_run(s, "alice");
    make_owned_run(s, "bob");
    make_owned_run(s, NULL);
    claim_is(s, "n1", a0);  /* running counts, ended does not */
    cr_assert_eq(store_run_cancel_queued(s, a2, &err), 0, "%s", err.msg);

    uint8_t px[2 * 6] = {0}, labels[2] = {1, 2};
    ds_dataset d = {.n = 2, .rows = 2, .cols = 3, .pixels = px,
                    .labels = labels};
    cr_assert_eq(store_dataset_put_owned(s, "mine", &d, "alice", 0, NULL,
                                         &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put_owned(s, "theirs", &d, "bob", 0, NULL,
                                         &err), 0, "%s", err.msg);

    int64_t w1 = 0, w2 = 0;
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 12, NULL, &w1,
                                          &err), 0, "%s", err.msg);
    cr_assert_eq(store_sweep_create_owned(s, "bob", "{}", 7, NULL, &w2,
                                          &err), 0, "%s", err.msg);
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 5, NULL, &w2,
                                          &err), 0, "%s", err.msg);
    cr_assert_eq(store_sweep_finish(s, w2, "cancelled", NULL, &err), 0, "%s",
                 err.msg);

    int64_t runs, bytes, trials;
    held(s, &runs, &bytes, &trials);
    cr_assert_eq(runs, 2);          /* a0 running, a1 queued */
    cr_assert_eq(bytes, 2 * 7);     /* 2 examples of 6 px + label */
    cr_assert_eq(trials, 12);       /* the running sweep only */
    cr_assert_eq(store_run_cancel_queued(s, a1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_finish(s, a0, RUN_SUCCEEDED, NULL, 0, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_dataset_delete(s, "mine", NULL, NULL, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_sweep_finish(s, w1, "succeeded", NULL, &err), 0, "%s",
                 err.msg);
    held(s, &runs, &bytes, &trials);
    cr_assert_eq(runs, -1);         /* none left: the probe was created */
    cr_assert_eq(bytes, 0);
    cr_assert_eq(trials, 0);
    store_close(s);
}

Test(store, period_add_records_metrics_and_checkpoints)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "dnn");
    claim(s, id);

    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(store_checkpoint_get(s, id, "latest", &buf, &len, NULL, &err),
                 STORE_NOT_FOUND);
    eval_result e;
    cr_assert_eq(store_confusion_get(s, id, "validation", &e, &err),
                 STORE_NOT_FOUND);

    add_period(s, id, 1, 0.50, "one");
    assert_ckpt(s, id, "latest", "one", 100);
    assert_ckpt(s, id, "best", "one", 100);
    add_period(s, id, 2, 0.40, "two");
    assert_ckpt(s, id, "latest", "two", 200);
    assert_ckpt(s, id, "best", "two", 200);
    add_period(s, id, 3, 0.60, "three");
    assert_ckpt(s, id, "latest", "three", 300);
    assert_ckpt(s, id, "best", "two", 200);
    add_period(s, id, 4, 0.45, "four"); /* better than 3, worse than 2 */
    assert_ckpt(s, id, "latest", "four", 400);
    assert_ckpt(s, id, "best", "two", 200);

    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.step, 400);
    cr_assert_eq(r.period, 4);
    cr_assert_float_eq(r.validation_log_loss, 0.45, 1e-12);
    cr_assert_float_eq(r.validation_accuracy, 1.0 - 0.45 / 2, 1e-12);
    cr_assert(isnan(r.test_accuracy));
    store_run_free(&r);

    train_period *ps = NULL;
    size_t n = 0;
    cr_assert_eq(store_periods_get(s, id, &ps, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4);
    double losses[4] = {0.50, 0.40, 0.60, 0.45};
    for (size_t i = 0; i < n; i++) {
        train_period want = period((uint32_t)i + 1, ((uint32_t)i + 1) * 100,
                                   losses[i]);
        cr_assert_eq(ps[i].period, want.period);
        cr_assert_eq(ps[i].step, want.step);
        cr_assert_float_eq(ps[i].train_log_loss, want.train_log_loss, 1e-12);
        cr_assert_float_eq(ps[i].validation_log_loss, want.validation_log_loss,
                           1e-12);
        cr_assert_float_eq(ps[i].validation_accuracy,
                           want.validation_accuracy, 1e-12);
        cr_assert_float_eq(ps[i].seconds, want.seconds, 1e-12);
    }
    free(ps);

    /* the validation confusion is the last period's */
    eval_result want = evaluation(4);
    cr_assert_eq(store_confusion_get(s, id, "validation", &e, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(memcmp(e.confusion, want.confusion, sizeof e.confusion), 0);
    cr_assert_eq(e.examples, want.examples);
    cr_assert_float_eq(e.accuracy, want.accuracy, 1e-12);
    cr_assert_float_eq(e.log_loss, want.log_loss, 1e-12);
    cr_assert_eq(store_confusion_get(s, id, "test", &e, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_confusion_get(s, id, "bogus", &e, &err), -1);

    /* a resumed run redoes period 4: replaced, not duplicated */
    add_period(s, id, 4, 0.30, "four-again");
    cr_assert_eq(store_periods_get(s, id, &ps, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4);
    cr_assert_float_eq(ps[3].validation_log_loss, 0.30, 1e-12);
    free(ps);
    assert_ckpt(s, id, "best", "four-again", 400);
    store_close(s);
}

Test(store, nan_metrics_are_null)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "linear");
    claim(s, id);
    add_period(s, id, 1, 0.7, "first");
    train_period p = period(2, 200, NAN);
    p.train_log_loss = NAN;
    p.validation_accuracy = NAN;
    cr_assert_eq(store_period_add(s, id, &p, NULL, (const uint8_t *)"nan", 3,
                                  &err),
                 0, "%s", err.msg);
    /* a NaN loss is never the best */
    assert_ckpt(s, id, "best", "first", 100);
    assert_ckpt(s, id, "latest", "nan", 200);

    train_period *ps = NULL;
    size_t n = 0;
    cr_assert_eq(store_periods_get(s, id, &ps, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert(isnan(ps[1].train_log_loss));
    cr_assert(isnan(ps[1].validation_log_loss));
    cr_assert(isnan(ps[1].validation_accuracy));
    cr_assert_float_eq(ps[1].seconds, 0.5, 1e-12);
    free(ps);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert(isnan(r.validation_log_loss));
    store_run_free(&r);

    raw *db = raw_open();
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM periods WHERE run_id = ?1 "
                             "AND period = 2 AND train_log_loss IS NULL "
                             "AND validation_log_loss IS NULL", id),
                 1);
    raw_close(db);
    store_close(s);
}

Test(store, checkpoint_put_saves_latest_only)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "dnn");
    claim(s, id);
    add_period(s, id, 1, 0.5, "period-one");
    cr_assert_eq(store_checkpoint_put(s, id, 150, (const uint8_t *)"stop", 4,
                                      &err),
                 0, "%s", err.msg);
    assert_ckpt(s, id, "latest", "stop", 150);
    assert_ckpt(s, id, "best", "period-one", 100);
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(store_checkpoint_get(s, id, "other", &buf, &len, NULL, &err),
                 -1);
    cr_assert_eq(store_checkpoint_put(s, id, 1, NULL, 0, &err), -1);
    store_close(s);
}

Test(store, finish_and_conflicts)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t a = make_run(s, "dnn");
    int64_t b = make_run(s, "linear");
    claim(s, a);
    add_period(s, a, 1, 0.5, "x");

    /* a running run can be neither cancelled at once nor deleted */
    cr_assert_eq(store_run_cancel_queued(s, a, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_delete(s, a, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_delete(s, b, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_finish(s, a, RUN_RUNNING, NULL, 0, &err), -1);

    finish(s, a, RUN_SUCCEEDED);
    store_run r;
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "succeeded");
    cr_assert_eq(r.step, r.steps);
    cr_assert_eq(r.period, r.periods);
    cr_assert_geq(r.finished_at, r.started_at);
    cr_assert_gt(r.finished_at, 0);
    cr_assert_null(r.error);
    store_run_free(&r);
    cr_assert_eq(store_run_finish(s, a, RUN_FAILED, "late", 0, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_run_requeue(s, a, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_cancel_queued(s, a, &err), STORE_CONFLICT);
    /* an ended run takes no more periods or checkpoints */
    train_period p = period(2, 200, 0.1);
    cr_assert_eq(store_period_add(s, a, &p, NULL, (const uint8_t *)"y", 1,
                                  &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_checkpoint_put(s, a, 1, (const uint8_t *)"y", 1, &err),
                 STORE_CONFLICT);
    assert_ckpt(s, a, "latest", "x", 100);

    /* failure keeps its reason and its progress */
    claim(s, b);
    add_period(s, b, 1, 0.9, "b1");
    cr_assert_eq(store_run_finish(s, b, RUN_FAILED, "loss became NaN", 0, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_run_get(s, b, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "failed");
    cr_assert_str_eq(r.error, "loss became NaN");
    cr_assert_eq(r.step, 100);
    cr_assert_eq(r.period, 1);
    store_run_free(&r);
    store_close(s);
}

Test(store, cancel_running_records_the_step)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t a = make_run(s, "dnn");
    int64_t b = make_run(s, "dnn");
    claim(s, a);
    add_period(s, a, 1, 0.5, "x"); /* period 1 ends at step 100 */
    cr_assert_eq(store_run_finish(s, a, RUN_CANCELLED, NULL, 157, &err), 0,
                 "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "cancelled");
    cr_assert_eq(r.step, 157);
    cr_assert_eq(r.period, 1);
    store_run_free(&r);
    /* a step below the last period's is not recorded */
    claim(s, b);
    add_period(s, b, 1, 0.5, "y");
    cr_assert_eq(store_run_finish(s, b, RUN_CANCELLED, NULL, 3, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_run_get(s, b, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.step, 100);
    store_run_free(&r);
    store_close(s);
}

Test(store, cancel_queued)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t a = make_run(s, "dnn");
    cr_assert_eq(store_run_cancel_queued(s, a, &err), 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "cancelled");
    cr_assert_gt(r.finished_at, 0);
    cr_assert_eq(r.started_at, 0);
    store_run_free(&r);
    cr_assert_eq(store_run_cancel_queued(s, a, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_finish(s, a, RUN_CANCELLED, NULL, 0, &err),
                 STORE_CONFLICT);
    /* a cancelled run is not claimed */
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), STORE_NOT_FOUND);
    /* and can be deleted */
    cr_assert_eq(store_run_delete(s, a, &err), 0, "%s", err.msg);
    store_close(s);
}

Test(store, delete_cascades)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t keep = make_run(s, "linear");
    int64_t gone = make_run(s, "dnn");
    claim(s, keep);
    add_period(s, keep, 1, 0.5, "keep1");
    finish(s, keep, RUN_SUCCEEDED);
    claim(s, gone);
    add_period(s, gone, 1, 0.5, "g1");
    add_period(s, gone, 2, 0.4, "g2");
    finish(s, gone, RUN_SUCCEEDED);
    eval_result e = evaluation(7);
    cr_assert_eq(store_test_put(s, gone, &e, &err), 0, "%s", err.msg);

    cr_assert_eq(store_run_delete(s, gone, &err), 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, gone, &r, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_run_delete(s, gone, &err), STORE_NOT_FOUND);
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(store_checkpoint_get(s, gone, "latest", &buf, &len, NULL,
                                      &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_checkpoint_get(s, gone, "best", &buf, &len, NULL, &err),
                 STORE_NOT_FOUND);
    train_period *ps = NULL;
    size_t n = 0;
    cr_assert_eq(store_periods_get(s, gone, &ps, &n, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_confusion_get(s, gone, "test", &e, &err),
                 STORE_NOT_FOUND);

    raw *db = raw_open();
    const char *tables[3] = {
        "SELECT count(*) FROM periods WHERE run_id = ?1",
        "SELECT count(*) FROM checkpoints WHERE run_id = ?1",
        "SELECT count(*) FROM confusions WHERE run_id = ?1"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(raw_int(db, tables[i], gone), 0, "%s", tables[i]);
        cr_assert_gt(raw_int(db, tables[i], keep), 0, "%s", tables[i]);
    }
    raw_close(db);

    /* ids are never reused */
    int64_t next = make_run(s, "dnn");
    cr_assert_gt(next, gone);
    store_close(s);
}

/* At a start after a crash (store_lease_expire, then store_lease_reap):
 * the runs left running go back to the queue with their checkpoints and
 * periods, a crash counted on each, and resume in id order. */
Test(store, expired_leases_are_reaped_back_to_the_queue)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "dnn");
    int64_t c = make_run(s, "dnn");
    int64_t d = make_run(s, "dnn");
    claim(s, a);
    claim(s, b);
    claim(s, c);
    add_period(s, b, 1, 0.5, "b-latest");
    finish(s, c, RUN_FAILED);
    store_close(s); /* the process "dies" with a and b running */

    s = open_db();
    int n = -1;
    /* their leases (10 s) have not expired: nothing to reap yet */
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    cr_assert_eq(store_lease_expire(s, NULL, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    store_run r;
    cr_assert_eq(store_run_get(s, b, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    cr_assert_eq(r.step, 100);
    cr_assert_str_eq(r.node, "");
    cr_assert_eq(r.attempts, 1);
    store_run_free(&r);
    cr_assert_eq(store_run_get(s, c, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "failed");
    cr_assert_str_eq(r.node, "n1");   /* an ended run keeps its node */
    store_run_free(&r);
    assert_ckpt(s, b, "latest", "b-latest", 100);
    train_period *ps = NULL;
    size_t np = 0;
    cr_assert_eq(store_periods_get(s, b, &ps, &np, &err), 0, "%s", err.msg);
    cr_assert_eq(np, 1);
    free(ps);
    /* resumed in id order, before the never-started d */
    claim(s, a);
    claim(s, b);
    claim(s, d);
    cr_assert_eq(store_lease_expire(s, "n1", &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    store_close(s);
}

/* A run's node and attempts: a claim sets the node and counts an
 * attempt; a requeue clears the node and keeps the count. */
Test(store, a_claim_records_its_node_and_counts_an_attempt)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "linear");
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.node, "");
    cr_assert_eq(r.attempts, 0);
    store_run_free(&r);
    cr_assert_eq(store_run_claim(s, "alpha:8080", 10, &r, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(r.node, "alpha:8080");
    cr_assert_eq(r.attempts, 1);
    store_run_free(&r);
    cr_assert_eq(store_run_requeue(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.node, "");
    cr_assert_eq(r.attempts, 1);
    store_run_free(&r);
    cr_assert_eq(store_run_claim(s, "beta", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.node, "beta");
    cr_assert_eq(r.attempts, 2);
    store_run_free(&r);
    finish(s, id, RUN_SUCCEEDED);
    store_run *list = NULL;
    size_t n = 0;
    cr_assert_eq(store_run_list(s, NULL, NULL, -1, 0, &list, &n, NULL, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(list[0].node, "beta");
    cr_assert_eq(list[0].attempts, 2);
    store_runs_free(list, n);
    /* bad names and leases are refused */
    cr_assert_eq(store_run_claim(s, "", 10, &r, &err), -1);
    char longname[STORE_NODE_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    cr_assert_eq(store_run_claim(s, longname, 10, &r, &err), -1);
    cr_assert_eq(store_run_claim(s, "n1", 0, &r, &err), -1);
    store_close(s);
}

static void nap(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Registration, heartbeats and the node list. */
Test(store, nodes_register_beat_and_list)
{
    store *s = open_db();
    mn_err err = {{0}};
    store_node *ns = NULL;
    size_t n = 9;
    cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    cr_assert_null(ns);
    cr_assert_eq(store_node_register(s, "b", 4, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_register(s, "a", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ns[0].name, "a");
    cr_assert_str_eq(ns[1].name, "b");
    cr_assert_eq(ns[1].workers, 4);
    cr_assert_eq(ns[1].busy, 0);
    cr_assert_eq(ns[1].started_at, ns[1].heartbeat_at);
    int64_t started = ns[1].started_at;
    free(ns);
    nap(20);
    cr_assert_eq(store_node_heartbeat(s, "b", 3, 10, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(ns[1].busy, 3);
    cr_assert_eq(ns[1].started_at, started);
    cr_assert_gt(ns[1].heartbeat_at, started);
    free(ns);
    /* a node that returns under its name starts over */
    nap(20);
    cr_assert_eq(store_node_register(s, "b", 2, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_gt(ns[1].started_at, started);
    cr_assert_eq(ns[1].workers, 2);
    cr_assert_eq(ns[1].busy, 0);
    free(ns);
    /* an unknown node's heartbeat writes nothing */
    cr_assert_eq(store_node_heartbeat(s, "ghost", 0, 10, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    free(ns);
    cr_assert_eq(store_node_register(s, "", 1, &err), -1);
    cr_assert_eq(store_node_heartbeat(s, "a", 0, 0, &err), -1);
    /* nodes dead long ago are forgotten, unless they hold a running run */
    int64_t id = make_run(s, "linear");
    store_run r;
    cr_assert_eq(store_run_claim(s, "a", 10, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    int gone = -1;
    cr_assert_eq(store_node_forget(s, started - 1, &gone, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(gone, 0);
    nap(20);
    cr_assert_eq(store_node_forget(s, st_now_ms(), &gone, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(gone, 1);     /* b; a holds run id */
    cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ns[0].name, "a");
    free(ns);
    finish(s, id, RUN_SUCCEEDED);
    cr_assert_eq(store_node_forget(s, st_now_ms(), &gone, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(gone, 1);
    store_close(s);
}

/* Only expired leases are reaped: a heartbeat renews its node's runs'
 * leases, and leaves another node's alone. */
Test(store, a_heartbeat_renews_its_leases_and_the_reaper_takes_the_expired)
{
    store *s = open_db();
    mn_err err = {{0}};
    cr_assert_eq(store_node_register(s, "live", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_register(s, "dead", 1, &err), 0, "%s", err.msg);
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "linear");
    store_run r;
    cr_assert_eq(store_run_claim(s, "live", 0.3, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, a);
    store_run_free(&r);
    cr_assert_eq(store_run_claim(s, "dead", 0.3, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, b);
    store_run_free(&r);
    int n = -1;
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    /* live beats with a long lease; dead does not */
    cr_assert_eq(store_node_heartbeat(s, "live", 1, 60, &err), 0, "%s",
                 err.msg);
    nap(400);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "running");
    cr_assert_str_eq(r.node, "live");
    store_run_free(&r);
    cr_assert_eq(store_run_get(s, b, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    cr_assert_str_eq(r.node, "");
    store_run_free(&r);
    /* the dead node holds nothing now (its fence would stop it) */
    cr_assert_eq(store_run_held(s, a, "live", &err), 1, "%s", err.msg);
    cr_assert_eq(store_run_held(s, b, "dead", &err), 0, "%s", err.msg);
    /* the reaped run is claimed again, by the live node */
    cr_assert_eq(store_run_claim(s, "live", 60, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, b);
    cr_assert_eq(r.attempts, 2);
    store_run_free(&r);
    cr_assert_eq(store_run_held(s, b, "dead", &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_held(s, b, "live", &err), 1, "%s", err.msg);
    cr_assert_eq(store_run_held(s, 999, "live", &err), 0, "%s", err.msg);
    store_close(s);
}

/* A run whose node is lost max_attempts times ends failed, saying so;
 * a resume gives it max_attempts more. */
Test(store, a_run_that_loses_its_node_three_times_fails)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "linear");
    int64_t other = make_run(s, "linear");
    int n = -1;
    for (int i = 1; i <= 3; i++) {
        store_run r;
        cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(r.id, id);
        cr_assert_eq(r.attempts, (uint32_t)i);
        store_run_free(&r);
        if (i == 1) add_period(s, id, 1, 0.5, "ck");
        cr_assert_eq(store_lease_expire(s, "n1", NULL, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
        cr_assert_eq(n, i < 3 ? 1 : 0);
    }
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "failed");
    cr_assert_not_null(r.error);
    cr_assert(strstr(r.error, "3 times"), "%s", r.error);
    cr_assert_gt(r.finished_at, 0);
    store_run_free(&r);
    /* the other run was never touched */
    cr_assert_eq(store_run_get(s, other, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    store_run_free(&r);
    /* a graceful hand-back counts no crash */
    int no_ckpt = 0;
    cr_assert_eq(store_run_resume(s, id, NULL, &no_ckpt, &err), 0, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        claim(s, id);
        cr_assert_eq(store_lease_expire(s, "n1", NULL, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
        cr_assert_eq(n, 1);
    }
    claim(s, id);
    cr_assert_eq(store_node_register(s, "n1", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_leave(s, "n1", &err), 0, "%s", err.msg);
    claim(s, id);
    cr_assert_eq(store_run_requeue(s, id, &err), 0, "%s", err.msg);
    claim(s, id);
    cr_assert_eq(store_lease_expire(s, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "failed");
    cr_assert_eq(r.attempts, 8);
    store_run_free(&r);
    cr_assert_eq(store_lease_reap(s, 0, &n, &err), -1);
    store_close(s);
}

/* SIGTERM: a leave hands the node's runs back at once (no lease wait)
 * and removes its row; another node's runs stay. */
Test(store, a_leave_hands_the_nodes_runs_back_at_once)
{
    store *s = open_db();
    mn_err err = {{0}};
    cr_assert_eq(store_node_register(s, "n1", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_register(s, "n2", 1, &err), 0, "%s", err.msg);
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "linear");
    store_run r;
    cr_assert_eq(store_run_claim(s, "n1", 60, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    cr_assert_eq(store_run_claim(s, "n2", 60, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    cr_assert_eq(store_node_leave(s, "n1", &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    cr_assert_str_eq(r.node, "");
    store_run_free(&r);
    cr_assert_eq(store_run_get(s, b, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "running");
    store_run_free(&r);
    store_node *ns = NULL;
    size_t n = 0;
    cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ns[0].name, "n2");
    free(ns);
    cr_assert_eq(store_node_heartbeat(s, "n1", 0, 10, &err), STORE_NOT_FOUND);
    /* n2 claims a's run at once */
    cr_assert_eq(store_run_claim(s, "n2", 60, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, a);
    cr_assert_eq(r.attempts, 2);
    store_run_free(&r);
    /* an SQLite server's start: every running run back, every node gone,
     * no crash counted (three "leaves" do not fail a run) */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_node_leave(s, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(store_node_list(s, &ns, &n, &err), 0, "%s", err.msg);
        cr_assert_eq(n, 0);
        int64_t running = -1;
        cr_assert_eq(store_run_count(s, "running", &running, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(running, 0);
        claim(s, a);
        claim(s, b);
    }
    cr_assert_eq(store_lease_reap(s, 1, NULL, &err), 0, "%s", err.msg);
    int64_t running = -1;
    cr_assert_eq(store_run_count(s, "running", &running, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(running, 2);
    store_close(s);
}

Test(store, newest_succeeded)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = 0;
    cr_assert_eq(store_run_newest_succeeded(s, &id, &err), STORE_NOT_FOUND);
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "dnn");
    int64_t c = make_run(s, "dnn");
    claim(s, a);
    claim(s, b);
    claim(s, c);
    finish(s, a, RUN_SUCCEEDED);
    cr_assert_eq(store_run_newest_succeeded(s, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(id, a);
    finish(s, c, RUN_FAILED);
    finish(s, b, RUN_SUCCEEDED);
    cr_assert_eq(store_run_newest_succeeded(s, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(id, b);
    store_close(s);
}

Test(store, test_put_and_confusion_get)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "dnn");
    claim(s, id);
    add_period(s, id, 1, 0.5, "c");
    finish(s, id, RUN_SUCCEEDED);
    eval_result e;
    cr_assert_eq(store_confusion_get(s, id, "test", &e, &err),
                 STORE_NOT_FOUND);

    eval_result t = evaluation(42);
    t.confusion[9][9] = UINT32_MAX; /* all 32 bits survive */
    cr_assert_eq(store_test_put(s, id, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(store_confusion_get(s, id, "test", &e, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(memcmp(e.confusion, t.confusion, sizeof e.confusion), 0);
    cr_assert_eq(e.examples, t.examples);
    cr_assert_float_eq(e.accuracy, t.accuracy, 1e-12);
    cr_assert_float_eq(e.log_loss, t.log_loss, 1e-12);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_float_eq(r.test_accuracy, t.accuracy, 1e-12);
    store_run_free(&r);
    /* the validation confusion is untouched */
    eval_result v = evaluation(1);
    cr_assert_eq(store_confusion_get(s, id, "validation", &e, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(memcmp(e.confusion, v.confusion, sizeof e.confusion), 0);

    /* evaluating again replaces */
    t = evaluation(43);
    cr_assert_eq(store_test_put(s, id, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(store_confusion_get(s, id, "test", &e, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(e.examples, t.examples);

    /* a corrupted counts blob is an error */
    SQLITE_ONLY("breaks a CHECK constraint");
    raw *db = raw_open();
    raw_exec(db, "PRAGMA ignore_check_constraints = ON");
    raw_exec(db, "UPDATE confusions SET counts = x'0102' WHERE set_name = 'test'");
    raw_close(db);
    cr_assert_eq(store_confusion_get(s, id, "test", &e, &err), -1);
    cr_assert_not_null(strstr(err.msg, "corrupt"), "%s", err.msg);
    store_close(s);
}

Test(store, unknown_ids_are_not_found)
{
    store *s = open_db();
    mn_err err = {{0}};
    const int64_t x = 424242;
    store_run r;
    train_period p = period(1, 100, 0.5);
    eval_result e = evaluation(1);
    uint8_t *buf = NULL;
    size_t len = 0;
    train_period *ps = NULL;
    size_t n = 0;
    cr_assert_eq(store_run_get(s, x, &r, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_period_add(s, x, &p, &e, (const uint8_t *)"c", 1, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_checkpoint_put(s, x, 1, (const uint8_t *)"c", 1, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_checkpoint_get(s, x, "latest", &buf, &len, NULL, &err),
                 STORE_NOT_FOUND);
    cr_assert_null(buf);
    cr_assert_eq(store_periods_get(s, x, &ps, &n, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_run_finish(s, x, RUN_FAILED, "e", 0, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_run_requeue(s, x, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_run_cancel_queued(s, x, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_run_delete(s, x, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_confusion_get(s, x, "validation", &e, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_test_put(s, x, &e, &err), STORE_NOT_FOUND);
    ds_dataset d;
    store_dataset_info info;
    cr_assert_eq(store_dataset_get(s, "nope", &d, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_dataset_info_get(s, "nope", &info, &err),
                 STORE_NOT_FOUND);
    /* nothing was created on the way */
    int64_t cnt = -1;
    cr_assert_eq(store_run_count(s, NULL, &cnt, &err), 0, "%s", err.msg);
    cr_assert_eq(cnt, 0);
    store_close(s);
}

Test(store, committed_writes_survive_sigkill)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork failed");
    if (pid == 0) {
        /* the "server": accept a run, record a period, die mid-flight */
        store *s = NULL;
        int64_t id = 0;
        train_period p = period(1, 100, 0.5);
        eval_result e = evaluation(1);
        if (store_open(&s, db_path, NULL) ||
            store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 1000, 10, NULL,
                             &id, NULL) ||
            store_run_claim(s, "n1", 10, &(store_run){0}, NULL) ||
            store_period_add(s, id, &p, &e, (const uint8_t *)"ck", 2, NULL))
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "child did not die by SIGKILL (status %d)", status);

    store *s = open_db();
    mn_err err = {{0}};
    int n = 0;
    cr_assert_eq(store_lease_expire(s, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    store_run r;
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.step, 100);
    cr_assert_eq(r.period, 1);
    assert_ckpt(s, r.id, "latest", "ck", 100);
    store_run_free(&r);
    store_close(s);
}

Test(store, corrupted_run_rows_are_errors)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t a = make_run(s, "dnn");
    int64_t b = make_run(s, "dnn");
    store_close(s);
    SQLITE_ONLY("stores text in an integer column");
    raw *db = raw_open();
    raw_exec(db, "UPDATE runs SET model = 'a-model-name-too-long' WHERE id = 1");
    raw_exec(db, "UPDATE runs SET steps = 'lots' WHERE id = 2");
    raw_close(db);
    cr_assert_eq(a, 1);
    cr_assert_eq(b, 2);

    s = open_db();
    store_run r;
    cr_assert_eq(store_run_get(s, a, &r, &err), -1);
    cr_assert_not_null(strstr(err.msg, "corrupt"), "%s", err.msg);
    cr_assert_null(r.params_json);
    cr_assert_eq(store_run_get(s, b, &r, &err), -1);
    cr_assert_not_null(strstr(err.msg, "corrupt"), "%s", err.msg);
    store_run *runs = NULL;
    size_t n = 0;
    cr_assert_eq(store_run_list(s, NULL, NULL, -1, 0, &runs, &n, NULL, &err), -1);
    cr_assert_null(runs);
    cr_assert_eq(n, 0);
    store_close(s);
}

/* ---------------------------------------------------------------- datasets */

Test(store, dataset_put_get_list)
{
    store *s = open_db();
    mn_err err = {{0}};
    store_dataset_info *infos = NULL;
    size_t n = 99;
    cr_assert_eq(store_dataset_list(s, &infos, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 0);
    free(infos);

    ds_dataset a = make_dataset(25);
    ds_dataset b = make_dataset(3);
    b.rows = 3; /* a non-28x28 shape round-trips: 3 x 3x261 = 3 x 783 */
    b.cols = 261;
    cr_assert_eq(store_dataset_put(s, "zeta", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "alpha", &b, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "zeta", &b, &err), STORE_CONFLICT);

    ds_dataset got;
    cr_assert_eq(store_dataset_get(s, "zeta", &got, &err), 0, "%s", err.msg);
    cr_assert_eq(got.n, 25);
    cr_assert_eq(got.rows, 28);
    cr_assert_eq(got.cols, 28);
    cr_assert_eq(memcmp(got.pixels, a.pixels, (size_t)25 * DS_PIXELS), 0);
    cr_assert_eq(memcmp(got.labels, a.labels, 25), 0);
    ds_free(&got);
    cr_assert_eq(store_dataset_get(s, "alpha", &got, &err), 0, "%s", err.msg);
    cr_assert_eq(got.n, 3);
    cr_assert_eq(got.rows, 3);
    cr_assert_eq(got.cols, 261);
    ds_free(&got);

    store_dataset_info info;
    cr_assert_eq(store_dataset_info_get(s, "zeta", &info, &err), 0, "%s",
                 err.msg);
    cr_assert_str_eq(info.name, "zeta");
    cr_assert_eq(info.examples, 25);
    cr_assert_eq(info.rows, 28);
    cr_assert_eq(info.cols, 28);
    cr_assert_gt(info.created_at, 0);

    cr_assert_eq(store_dataset_list(s, &infos, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(infos[0].name, "alpha");
    cr_assert_str_eq(infos[1].name, "zeta");
    cr_assert_eq(infos[1].examples, 25);
    free(infos);

    /* bad input is refused before touching the database */
    a.labels[3] = 10;
    cr_assert_eq(store_dataset_put(s, "bad-label", &a, &err), -1);
    a.labels[3] = 3;
    char longname[80];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(store_dataset_put(s, longname, &a, &err), -1);
    ds_dataset empty = {0};
    cr_assert_eq(store_dataset_put(s, "empty", &empty, &err), -1);
    ds_free(&a);
    ds_free(&b);
    store_close(s);
}

/* A dataset in use by a queued or running run cannot be deleted (the run
 * is named); once the run ends it can, the ended run stays, the name is
 * free again, and a run on the deleted dataset is refused. */
Test(store, dataset_delete_and_runs_on_it)
{
    store *s = open_db();
    mn_err err = {{0}};
    ds_dataset a = make_dataset(12);
    int64_t run_id = 0, id = 0;
    run_status st = RUN_SUCCEEDED;
    cr_assert_eq(store_dataset_put(s, "up", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_delete(s, "nope", &run_id, &st, &err),
                 STORE_NOT_FOUND);

    cr_assert_eq(store_run_create(s, NULL, 1, "dnn", "up", "{}", 100, 1, NULL,
                                  &id, &err),
                 0, "%s", err.msg);
    cr_assert_eq(store_dataset_delete(s, "up", &run_id, &st, &err),
                 STORE_CONFLICT);
    cr_assert_eq(run_id, id);
    cr_assert_eq(st, RUN_QUEUED);
    cr_assert(strstr(err.msg, "up") != NULL, "%s", err.msg);
    claim(s, id);
    run_id = 0;
    cr_assert_eq(store_dataset_delete(s, "up", &run_id, NULL, &err),
                 STORE_CONFLICT);
    cr_assert_eq(run_id, id);
    finish(s, id, RUN_SUCCEEDED);

    cr_assert_eq(store_dataset_delete(s, "up", NULL, NULL, &err), 0, "%s",
                 err.msg);
    ds_dataset got;
    cr_assert_eq(store_dataset_get(s, "up", &got, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_dataset_delete(s, "up", NULL, NULL, &err),
                 STORE_NOT_FOUND);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.dataset, "up");
    store_run_free(&r);

    /* a run on the deleted dataset is refused; on a built-in name the
     * caller does not ask for the check */
    int64_t before = 0, after = 0;
    cr_assert_eq(store_run_count(s, NULL, &before, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_create(s, NULL, 1, "dnn", "up", "{}", 100, 1, NULL,
                                  &id, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_run_count(s, NULL, &after, &err), 0, "%s", err.msg);
    cr_assert_eq(after, before);

    /* the name is free again */
    cr_assert_eq(store_dataset_put(s, "up", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_create(s, NULL, 1, "linear", "up", "{}", 100, 1,
                                  NULL, &id, &err),
                 0, "%s", err.msg);
    cr_assert_eq(store_run_cancel_queued(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_delete(s, "up", NULL, NULL, &err), 0, "%s",
                 err.msg);
    ds_free(&a);
    store_close(s);
}

Test(store, corrupted_dataset_rows_are_errors)
{
    store *s = open_db();
    mn_err err = {{0}};
    ds_dataset a = make_dataset(10);
    cr_assert_eq(store_dataset_put(s, "labels", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "pixels", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "count", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "text", &a, &err), 0, "%s", err.msg);
    ds_free(&a);

    SQLITE_ONLY("stores text in an integer column");
    raw *db = raw_open();
    raw_exec(db, "UPDATE datasets SET labels = x'000102030405060708FF' "
                 "WHERE name = 'labels'");
    raw_exec(db, "UPDATE datasets SET pixels = substr(pixels, 1, 100) "
                 "WHERE name = 'pixels'");
    raw_exec(db, "UPDATE datasets SET examples = 11 WHERE name = 'count'");
    raw_exec(db, "UPDATE datasets SET \"rows\" = 'many' WHERE name = 'text'");
    raw_close(db);

    const char *names[4] = {"labels", "pixels", "count", "text"};
    for (int i = 0; i < 4; i++) {
        ds_dataset d;
        memset(&err, 0, sizeof err);
        cr_assert_eq(store_dataset_get(s, names[i], &d, &err), -1, "%s",
                     names[i]);
        cr_assert_null(d.pixels);
        cr_assert_null(d.labels);
        cr_assert_not_null(strstr(err.msg, "corrupt"), "%s: %s", names[i],
                           err.msg);
    }
    store_close(s);
}

/* ---------------------------------------------------------------- concurrency */

#define CONC_THREADS 4
#define CONC_RUNS 50
#define CONC_CKPT 16384

typedef struct conc_arg {
    int64_t claimed[CONC_THREADS * CONC_RUNS]; /* ids this thread claimed */
    size_t n_claimed;
    pthread_barrier_t *barrier;
    int failures;
    char msg[640]; /* "what: " + an mn_err message */
} conc_arg;

/* Notes the first failure of a worker thread (no asserts off the main
 * thread). */
static void conc_fail(conc_arg *a, const char *what, const mn_err *err)
{
    if (!a->failures++)
        snprintf(a->msg, sizeof a->msg, "%s: %s", what, err->msg);
}

/* One writer: its own connection (opened concurrently with the others on
 * a fresh file), 50 runs with two periods and checkpoints each, then
 * claims queued runs until none is left. Every path passes both
 * barriers so that a failing thread cannot hang the others. */
static void *conc_writer(void *p)
{
    conc_arg *a = p;
    mn_err err = {{0}};
    store *s = NULL;
    uint8_t *ckpt = malloc(CONC_CKPT);

    pthread_barrier_wait(a->barrier); /* open all at once */
    if (!ckpt) {
        mn_errf(&err, "out of memory");
        conc_fail(a, "malloc", &err);
    } else if (store_open(&s, db_path, &err)) {
        conc_fail(a, "open", &err);
    } else {
        memset(ckpt, 0xab, CONC_CKPT);
        for (int i = 0; i < CONC_RUNS; i++) {
            int64_t id = 0;
            if (store_run_create(s, NULL, 0, i % 2 ? "dnn" : "linear", "mnist",
                                 "{}", 200, 2, NULL, &id, &err)) {
                conc_fail(a, "create", &err);
                continue;
            }
            for (uint32_t k = 1; k <= 2; k++) {
                train_period tp = period(k, k * 100, 1.0 / k);
                eval_result e = evaluation(k);
                ckpt[0] = (uint8_t)k;
                if (store_period_add(s, id, &tp, &e, ckpt, CONC_CKPT, &err))
                    conc_fail(a, "period_add", &err);
            }
        }
    }
    pthread_barrier_wait(a->barrier); /* everyone created: now claim */
    while (s) {
        store_run r;
        int rc = store_run_claim(s, "n1", 10, &r, &err);
        if (rc == STORE_NOT_FOUND) break;
        if (rc) {
            conc_fail(a, "claim", &err);
            break;
        }
        if (a->n_claimed < CONC_THREADS * CONC_RUNS)
            a->claimed[a->n_claimed++] = r.id;
        store_run_free(&r);
    }
    store_close(s);
    free(ckpt);
    return NULL;
}

static int cmp_id(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

Test(store, concurrent_writers, .timeout = 120)
{
    pthread_barrier_t barrier;
    pthread_t th[CONC_THREADS];
    conc_arg *args = calloc(CONC_THREADS, sizeof *args);
    cr_assert_not_null(args);
    cr_assert_eq(pthread_barrier_init(&barrier, NULL, CONC_THREADS), 0);
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t].barrier = &barrier;
        cr_assert_eq(pthread_create(&th[t], NULL, conc_writer, &args[t]), 0);
    }
    for (int t = 0; t < CONC_THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);

    int64_t all[CONC_THREADS * CONC_RUNS];
    size_t n_all = 0;
    for (int t = 0; t < CONC_THREADS; t++) {
        cr_assert_eq(args[t].failures, 0, "thread %d: %d failures, first: %s",
                     t, args[t].failures, args[t].msg);
        for (size_t i = 0; i < args[t].n_claimed; i++)
            all[n_all++] = args[t].claimed[i];
    }
    free(args);
    /* every run claimed exactly once */
    cr_assert_eq(n_all, CONC_THREADS * CONC_RUNS);
    qsort(all, n_all, sizeof all[0], cmp_id);
    for (size_t i = 1; i < n_all; i++)
        cr_assert_neq(all[i], all[i - 1], "run %lld claimed twice",
                      (long long)all[i]);

    store *s = open_db();
    mn_err err = {{0}};
    int64_t cnt = 0;
    cr_assert_eq(store_run_count(s, NULL, &cnt, &err), 0, "%s", err.msg);
    cr_assert_eq(cnt, CONC_THREADS * CONC_RUNS);
    cr_assert_eq(store_run_count(s, "running", &cnt, &err), 0, "%s", err.msg);
    cr_assert_eq(cnt, CONC_THREADS * CONC_RUNS);
    store_close(s);

    raw *db = raw_open();
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM periods", 0),
                 CONC_THREADS * CONC_RUNS * 2);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM checkpoints WHERE kind = "
                             "'latest' AND step = 200", 0),
                 CONC_THREADS * CONC_RUNS);
    /* the best of each run: its latest checkpoint, or a 'best' row */
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM runs r WHERE "
                             "r.best_validation_log_loss IS NOT NULL AND "
                             "(SELECT count(*) FROM checkpoints c WHERE "
                             "c.run_id = r.id) BETWEEN 1 AND 2", 0),
                 CONC_THREADS * CONC_RUNS);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM confusions", 0),
                 CONC_THREADS * CONC_RUNS);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM runs WHERE step = 200 AND "
                             "period = 2", 0),
                 CONC_THREADS * CONC_RUNS);
    raw_close(db);
}

/* An improving run keeps one checkpoint blob (the latest is the best); a
 * worse period keeps the best aside, and a better one drops it again. */
Test(store, best_checkpoint_is_stored_once_while_it_is_the_latest)
{
    store *s = open_db();
    int64_t id = make_run(s, "dnn");
    claim(s, id);
    char q[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM checkpoints WHERE run_id = %lld",
             (long long)id);
    add_period(s, id, 1, 0.50, "one");
    add_period(s, id, 2, 0.40, "two");
    raw *db = raw_open();
    cr_assert_eq(raw_int(db, q, 0), 1, "two improving periods, one blob");
    raw_close(db);
    add_period(s, id, 3, 0.60, "three");
    db = raw_open();
    cr_assert_eq(raw_int(db, q, 0), 2, "a worse period keeps the best aside");
    raw_close(db);
    assert_ckpt(s, id, "best", "two", 200);
    add_period(s, id, 4, 0.30, "four");
    db = raw_open();
    cr_assert_eq(raw_int(db, q, 0), 1, "a new best drops the old one");
    raw_close(db);
    assert_ckpt(s, id, "best", "four", 400);
    assert_ckpt(s, id, "latest", "four", 400);
    /* a graceful stop's checkpoint does not lose the best */
    mn_err err = {{0}};
    cr_assert_eq(store_checkpoint_put(s, id, 450, (const uint8_t *)"stop", 4,
                                      &err), 0, "%s", err.msg);
    assert_ckpt(s, id, "best", "four", 400);
    assert_ckpt(s, id, "latest", "stop", 450);
    store_close(s);
}

Test(store, a_waiting_run_is_not_claimed_before_its_time)
{
    mn_err err = {{0}};
    store *s = open_db();
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "linear");
    claim(s, a);
    /* a waits a minute: the claim takes b, though a is older */
    cr_assert_eq(store_run_wait(s, a, "dataset unavailable: x",
                                (int64_t)time(NULL) * 1000 + 60000, &err),
                 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    cr_assert_str_eq(r.waiting, "dataset unavailable: x");
    cr_assert_eq(r.waits, 1);
    store_run_free(&r);
    claim(s, b);
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), STORE_NOT_FOUND);
    /* its time has come: claimed, no longer waiting, its waits kept */
    cr_assert_eq(store_run_wait(s, b, NULL, 0, &err), 0, "%s", err.msg);
    claim(s, b);
    cr_assert_eq(store_run_wait(s, b, "again", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, b);
    cr_assert_null(r.waiting);
    cr_assert_eq(r.waits, 1);
    store_run_free(&r);
    /* only a running run can be put back */
    cr_assert_eq(store_run_wait(s, a, "x", 0, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_requeue(s, a, &err), STORE_CONFLICT);
    store_close(s);
}

Test(store, resume_needs_a_failed_or_cancelled_run_with_a_checkpoint)
{
    mn_err err = {{0}};
    store *s = open_db();
    int64_t a = make_run(s, "linear");
    int64_t b = make_run(s, "linear");
    int no_ck = -1;
    cr_assert_eq(store_run_resume(s, a, NULL, &no_ck, &err), STORE_CONFLICT);
    cr_assert_eq(no_ck, 0);
    cr_assert_not_null(strstr(err.msg, "queued"), "%s", err.msg);
    claim(s, a);
    add_period(s, a, 1, 0.5, "ckpt-a1");
    cr_assert_eq(store_run_finish(s, a, RUN_FAILED, "boom", 0, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_run_resume(s, a, NULL, &no_ck, &err), 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, a, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(run_status_name(r.status), "queued");
    cr_assert_null(r.error);
    cr_assert_eq(r.finished_at, 0);
    cr_assert_eq(r.period, 1);
    store_run_free(&r);
    assert_ckpt(s, a, "latest", "ckpt-a1", 100);
    /* cancelled while queued: nothing to resume from */
    cr_assert_eq(store_run_cancel_queued(s, b, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_resume(s, b, NULL, &no_ck, &err), STORE_CONFLICT);
    cr_assert_eq(no_ck, 1);
    cr_assert_eq(store_run_resume(s, 999, NULL, &no_ck, &err), STORE_NOT_FOUND);
    store_close(s);
}

Test(store, a_busy_database_is_unavailable_not_broken, .timeout = 60)
{
    SQLITE_ONLY("SQLite's database lock (PostgreSQL: the outage tests)");
    mn_err err = {{0}};
    store *s = open_db();
    int64_t a = make_run(s, "linear");
    raw *db = raw_open();
    cr_assert_eq(sqlite3_exec(db->lite, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                 SQLITE_OK);
    /* the write lock is held past the busy timeout: transient */
    int64_t id = 0;
    cr_assert_eq(store_run_create(s, NULL, 0, "linear", "mnist", "{}", 10, 1,
                                  NULL, &id, &err),
                 STORE_UNAVAILABLE, "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "locked"), "%s", err.msg);
    /* the next call's own error is not taken for a transient one */
    cr_assert_eq(store_run_finish(s, a, RUN_RUNNING, NULL, 0, &err), -1);
    sqlite3_exec(db->lite, "ROLLBACK", NULL, NULL, NULL);
    raw_close(db);
    cr_assert_eq(store_run_create(s, NULL, 0, "linear", "mnist", "{}", 10, 1,
                                  NULL, &id, &err),
                 0, "%s", err.msg);
    store_close(s);
}

Test(store, one_lock_holder_per_database)
{
    SQLITE_ONLY("the lock file of an SQLite database");
    mn_err err = {{0}};
    store_lock *l = NULL, *l2 = NULL;
    long pid = -1;
    unsigned port = 1;
    cr_assert_eq(store_lock_take(db_path, &l, &pid, &port, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_lock_note_port(l, 8080, &err), 0, "%s", err.msg);
    cr_assert_eq(store_lock_take(db_path, &l2, &pid, &port, &err),
                 STORE_CONFLICT);
    cr_assert_null(l2);
    cr_assert_eq(pid, (long)getpid());
    cr_assert_eq(port, 8080);
    store_lock_release(l);
    cr_assert_eq(store_lock_take(db_path, &l2, &pid, &port, &err), 0, "%s",
                 err.msg);
    store_lock_release(l2);
}

/* Named models: versions numbered from 1 over succeeded runs only,
 * aliases created and moved, resolution by version, alias and highest
 * version with a message naming what is missing, the list's counts, a run
 * that is a version refused a delete, and a model's delete cascading to
 * its versions and aliases but not its runs. */
Test(store, named_models_versions_and_aliases)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t a = make_run(s, "linear"), b = make_run(s, "dnn"),
            q = make_run(s, "linear");
    claim(s, a);
    finish(s, a, RUN_SUCCEEDED);
    claim(s, b);
    finish(s, b, RUN_SUCCEEDED);

    cr_assert_eq(store_model_create(s, "digits", "hand-written", &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_model_create(s, "digits", NULL, &err), STORE_CONFLICT);
    cr_assert_eq(store_model_create(s, "", NULL, &err), -1);

    int64_t v = 0, run = 0;
    cr_assert_eq(store_model_resolve(s, "digits", 0, NULL, &run, &v, &err),
                 STORE_NOT_FOUND);
    cr_assert(strstr(err.msg, "no version yet"), "%s", err.msg);
    cr_assert_eq(store_model_version_add(s, "digits", q, &v, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_model_version_add(s, "nope", a, &v, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_model_version_add(s, "digits", 999, &v, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_model_version_add(s, "digits", a, &v, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(v, 1);
    cr_assert_eq(store_model_version_add(s, "digits", b, &v, &err), 0);
    cr_assert_eq(v, 2);

    int created = -1;
    cr_assert_eq(store_model_alias_set(s, "digits", "production", 1,
                                       &created, &err), 0, "%s", err.msg);
    cr_assert_eq(created, 1);
    cr_assert_eq(store_model_alias_set(s, "digits", "production", 2,
                                       &created, &err), 0);
    cr_assert_eq(created, 0);
    cr_assert_eq(store_model_alias_set(s, "digits", "staging", 3, &created,
                                       &err), STORE_NOT_FOUND);

    cr_assert_eq(store_model_resolve(s, "digits", 0, NULL, &run, &v, &err), 0);
    cr_assert(v == 2 && run == b);
    cr_assert_eq(store_model_resolve(s, "digits", 1, NULL, &run, &v, &err), 0);
    cr_assert(v == 1 && run == a);
    cr_assert_eq(store_model_resolve(s, "digits", 0, "production", &run, &v,
                                     &err), 0);
    cr_assert(v == 2 && run == b);
    cr_assert_eq(store_model_resolve(s, "digits", 7, NULL, &run, &v, &err),
                 STORE_NOT_FOUND);
    cr_assert(strstr(err.msg, "no version 7"), "%s", err.msg);
    cr_assert_eq(store_model_resolve(s, "digits", 0, "qa", &run, &v, &err),
                 STORE_NOT_FOUND);
    cr_assert(strstr(err.msg, "no alias 'qa'"), "%s", err.msg);
    cr_assert_eq(store_model_resolve(s, "nope", 0, NULL, &run, &v, &err),
                 STORE_NOT_FOUND);
    cr_assert(strstr(err.msg, "no model 'nope'"), "%s", err.msg);

    store_model m;
    store_model_version *vs = NULL;
    store_model_alias *as = NULL;
    size_t nv = 0, na = 0;
    cr_assert_eq(store_model_get(s, "digits", &m, &vs, &nv, &as, &na, &err),
                 0, "%s", err.msg);
    cr_assert_str_eq(m.description, "hand-written");
    cr_assert(m.versions == 2 && m.latest == 2 && nv == 2 && na == 1);
    cr_assert(vs[0].run_id == a && vs[1].run_id == b);
    cr_assert_str_eq(vs[1].model, "dnn");
    cr_assert(strcmp(as[0].alias, "production") == 0 && as[0].version == 2);
    store_model_free(&m);
    free(vs);
    free(as);

    store_model *ms = NULL;
    size_t n = 0;
    cr_assert_eq(store_model_create(s, "another", NULL, &err), 0);
    cr_assert_eq(store_model_list(s, &ms, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert(strcmp(ms[0].name, "another") == 0 && ms[0].versions == 0 &&
              ms[0].latest == 0);
    cr_assert(strcmp(ms[1].name, "digits") == 0 && ms[1].versions == 2);
    store_models_free(ms, n);

    char name[64];
    cr_assert_eq(store_run_delete(s, a, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_model_version(s, a, name, &v, &err), 0);
    cr_assert(strcmp(name, "digits") == 0 && v == 1);
    cr_assert_eq(store_run_model_version(s, q, name, &v, &err),
                 STORE_NOT_FOUND);

    cr_assert_eq(store_model_alias_delete(s, "digits", "production", &err), 0);
    cr_assert_eq(store_model_alias_delete(s, "digits", "production", &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_model_delete(s, "digits", &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_delete(s, "digits", &err), STORE_NOT_FOUND);
    cr_assert_eq(store_run_delete(s, a, &err), 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, b, &r, &err), 0);
    store_run_free(&r);
    store_close(s);
}

/* An ended run keeps what store_checkpoint_retain leaves: no 'best' copy,
 * and the 'latest' data replaced at the same step when given; a run that
 * has not ended is refused. */
Test(store, checkpoint_retain_trims_an_ended_run)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "dnn");
    cr_assert_eq(store_checkpoint_retain(s, id, NULL, 0, &err), STORE_CONFLICT,
                 "a queued run keeps everything");
    claim(s, id);
    add_period(s, id, 1, 0.40, "one-full");
    add_period(s, id, 2, 0.60, "two-full");
    cr_assert_eq(store_checkpoint_retain(s, id, NULL, 0, &err), STORE_CONFLICT,
                 "a running run keeps everything");
    assert_ckpt(s, id, "best", "one-full", 100);
    finish(s, id, RUN_SUCCEEDED);
    cr_assert_eq(store_checkpoint_retain(s, id, (const uint8_t *)"two", 3,
                                         &err), 0, "%s", err.msg);
    assert_ckpt(s, id, "latest", "two", 200);
    char q[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM checkpoints WHERE run_id = %lld",
             (long long)id);
    raw *db = raw_open();
    cr_assert_eq(raw_int(db, q, 0), 1, "one blob left");
    raw_close(db);
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(store_checkpoint_get(s, id, "best", &buf, &len, NULL, &err),
                 STORE_NOT_FOUND, "no best kept");

    /* a cancelled run: the latest checkpoint stays as it is */
    int64_t c = make_run(s, "dnn");
    claim(s, c);
    add_period(s, c, 1, 0.40, "c-one");
    add_period(s, c, 2, 0.60, "c-two");
    finish(s, c, RUN_CANCELLED);
    cr_assert_eq(store_checkpoint_retain(s, c, NULL, 0, &err), 0, "%s",
                 err.msg);
    assert_ckpt(s, c, "latest", "c-two", 200);
    cr_assert_eq(store_checkpoint_get(s, c, "best", &buf, &len, NULL, &err),
                 STORE_NOT_FOUND, "no best kept");
    cr_assert_eq(store_checkpoint_retain(s, 9999, NULL, 0, &err),
                 STORE_NOT_FOUND);
    store_close(s);
}

/* ------------------------------------------- the PostgreSQL rewrite of ?N */

/* pg_sql_rewrite (either backend: it needs no server): dense $k in order
 * of first appearance, repeats share a slot, quoted text is left alone,
 * and malformed parameters are refused. */
Test(store, postgresql_parameters_are_rewritten_densely)
{
    char *out = NULL;
    int map[PG_SQL_MAX_PARAMS + 1], n = 0;
    cr_assert_eq(pg_sql_rewrite("SELECT ?3, '?1', \"?2\", ?1, ?3 LIMIT ?10",
                                &out, map, &n), 0);
    cr_assert_str_eq(out, "SELECT $1, '?1', \"?2\", $2, $1 LIMIT $3");
    cr_assert_eq(n, 3);
    cr_assert_eq(map[3], 0);
    cr_assert_eq(map[1], 1);
    cr_assert_eq(map[10], 2);
    cr_assert_eq(map[2], -1, "a quoted ?2 is no parameter");
    free(out);
    /* a tenth distinct parameter written ?1: the output grows */
    cr_assert_eq(pg_sql_rewrite("?2?3?4?5?6?7?8?9?10?11?1", &out, map, &n), 0);
    cr_assert_str_eq(out, "$1$2$3$4$5$6$7$8$9$10$11");
    free(out);
    static const char *const bad[] = {"?", "a ? b", "?0", "?33", "?123",
                                      "x = ?a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = (char *)1;
        cr_assert_eq(pg_sql_rewrite(bad[i], &out, map, &n), -1, "%s", bad[i]);
        cr_assert_null(out);
        cr_assert_eq(n, 0);
    }
}

/* ------------------------------------------------------ weight snapshots */

/* Adds period k (step 10k) of run id with the checkpoint "ck" and, when
 * snap is not NULL, the weight snapshot snap (text) in its transaction. */
static int add_snapshot(store *s, int64_t id, uint32_t k, const char *snap,
                        mn_err *err)
{
    train_period p = period(k, 10 * k, 1.0);
    return store_period_add_snapshot(s, id, &p, NULL, (const uint8_t *)"ck",
                                     2, (const uint8_t *)snap,
                                     snap ? strlen(snap) : 0, err);
}

Test(store, snapshots_written_listed_read_replaced_and_deleted_with_the_run)
{
    store *s = open_db();
    int64_t id = make_run(s, "linear");
    claim(s, id);
    mn_err err = {{0}};
    cr_assert_eq(add_snapshot(s, id, 1, "one", &err), 0, "%s", err.msg);
    cr_assert_eq(add_snapshot(s, id, 2, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(add_snapshot(s, id, 3, "three", &err), 0, "%s", err.msg);
    cr_assert_eq(add_snapshot(s, id, 3, "THREE!", &err), 0, "%s",
                 err.msg); /* a resumed run redoes period 3 */
    store_snapshot_info *l;
    size_t n;
    cr_assert_eq(store_snapshot_list(s, id, &l, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert(l[0].period == 1 && l[0].step == 10 && l[0].bytes == 3);
    cr_assert(l[1].period == 3 && l[1].step == 30 && l[1].bytes == 6);
    free(l);
    uint8_t *b;
    size_t len;
    uint32_t step;
    cr_assert_eq(store_snapshot_get(s, id, 3, &b, &len, &step, &err), 0, "%s",
                 err.msg);
    cr_assert(len == 6 && memcmp(b, "THREE!", 6) == 0 && step == 30);
    free(b);
    cr_assert_eq(store_snapshot_get(s, id, 2, &b, &len, &step, &err),
                 STORE_NOT_FOUND);
    cr_assert_null(b);
    cr_assert_eq(store_snapshot_list(s, id + 1, &l, &n, &err),
                 STORE_NOT_FOUND);
    finish(s, id, RUN_SUCCEEDED);
    /* an ended run takes no more periods, nor snapshots */
    cr_assert_eq(add_snapshot(s, id, 4, "four", &err), STORE_CONFLICT);
    cr_assert_eq(store_snapshot_list(s, id, &l, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    free(l);
    cr_assert_eq(store_run_delete(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(store_snapshot_get(s, id, 1, &b, &len, &step, &err),
                 STORE_NOT_FOUND);
    store_close(s);
    raw *db = raw_open();
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM weight_snapshots", 0), 0,
                 "nothing left behind in the table");
    raw_close(db);
}

Test(store, a_snapshot_that_cannot_be_written_leaves_no_period)
{
    store *s = open_db();
    int64_t id = make_run(s, "linear");
    claim(s, id);
    mn_err err = {{0}};
    cr_assert_eq(add_snapshot(s, id, 1, "one", &err), 0, "%s", err.msg);
    /* the table is gone under the store: the snapshot's insert fails */
    raw *db = raw_open();
    raw_exec(db, "ALTER TABLE weight_snapshots RENAME TO snapshots_away");
    cr_assert_lt(add_snapshot(s, id, 2, "two", &err), 0);
    cr_assert(strstr(err.msg, "weight_snapshots"), "%s", err.msg);
    train_period *ps;
    size_t n;
    cr_assert_eq(store_periods_get(s, id, &ps, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1, "period 2 was rolled back with its snapshot");
    free(ps);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.period, 1);
    store_run_free(&r);
    /* without a snapshot the period goes in */
    cr_assert_eq(add_snapshot(s, id, 2, NULL, &err), 0, "%s", err.msg);
    raw_close(db);
    store_close(s);
}

/* A period's writes go to the database together with its COMMIT (on
 * PostgreSQL, queued in one pipeline: store_internal.h, st_step_later).
 * When the first of them fails, the error named is that statement's, the
 * writes after it and the COMMIT are skipped: nothing of the period is
 * stored, and the same connection stores the period once the table is
 * back (on PostgreSQL: the statements whose preparation the failure
 * skipped are prepared again, not taken for prepared). */
Test(store, a_period_whose_first_write_fails_stores_nothing_of_it)
{
    store *s = open_db();
    int64_t id = make_run(s, "linear");
    claim(s, id);
    mn_err err = {{0}};
    raw *db = raw_open();
    raw_exec(db, "ALTER TABLE periods RENAME TO periods_away");
    cr_assert_eq(add_snapshot(s, id, 1, "one", &err), -1,
                 "a missing table is no transient error");
    cr_assert(strstr(err.msg, "periods"), "%s", err.msg);
    raw_exec(db, "ALTER TABLE periods_away RENAME TO periods");
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM weight_snapshots", 0), 0);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM checkpoints", 0), 0);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.period, 0);
    cr_assert_eq(r.step, 0);
    store_run_free(&r);

    cr_assert_eq(add_snapshot(s, id, 1, "one", &err), 0, "%s", err.msg);
    cr_assert_eq(add_snapshot(s, id, 2, "two", &err), 0, "%s", err.msg);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM periods", 0), 2);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM weight_snapshots", 0), 2);
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.period, 2);
    store_run_free(&r);
    raw_close(db);
    store_close(s);
}

/* PostgreSQL: a connection the server ended (here pg_terminate_backend,
 * as a restart would) is re-opened by the next call, whose statements are
 * prepared again on the new connection: a read outside a transaction and
 * a period's transaction (its first statement is retried with its BEGIN)
 * both succeed without the caller seeing the drop. */
Test(store, a_dropped_connection_is_reopened_with_its_statements)
{
    if (!on_pg) {
        cr_skip_test("PostgreSQL only: SQLite has no server connection");
        return;
    }
    store *s = open_db();
    int64_t id = make_run(s, "linear");
    claim(s, id);
    mn_err err = {{0}};
    cr_assert_eq(add_snapshot(s, id, 1, "one", &err), 0, "%s", err.msg);
    raw *db = raw_open();
    const char *kill = "SELECT count(pg_terminate_backend(pid))"
                       " FROM pg_stat_activity WHERE application_name ="
                       " 'mnistd' AND pid <> pg_backend_pid()";
    cr_assert_eq(raw_int(db, kill, 0), 1);
    cr_assert_eq(add_snapshot(s, id, 2, "two", &err), 0, "%s", err.msg);
    cr_assert_eq(raw_int(db, kill, 0), 1);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.period, 2);
    store_run_free(&r);
    cr_assert_eq(add_snapshot(s, id, 3, "three", &err), 0, "%s", err.msg);
    cr_assert_eq(raw_int(db, "SELECT count(*) FROM periods", 0), 3);
    raw_close(db);
    store_close(s);
}

/* ---------------------------------------------------------------- sweeps */

static int add_trial(store *s, int64_t sweep, uint32_t t, uint32_t parallel,
                     int64_t *run)
{
    mn_err err = {{0}};
    return store_sweep_trial_add(s, sweep, t, parallel, "dnn", "mnist",
                                 "{\"model\":\"dnn\"}", 100, 2, run, &err);
}

/* Trial creation is guarded by next_trial, parallel and the sweep's
 * status; a pruned trial keeps its step and frees a slot; series, get,
 * finish and delete (blocked by a running sweep and by its queued
 * trials). */
Test(store, sweep_trials_in_order_within_parallel_and_status)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = 0, r0 = 0, r1 = 0, r2 = 0, x = 0;
    cr_assert_eq(store_sweep_create(s, "{\"p\":1}", 3, &id, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(add_trial(s, id, 1, 2, &x), STORE_CONFLICT, "not next");
    cr_assert_eq(add_trial(s, id, 0, 2, &r0), 0);
    cr_assert_eq(add_trial(s, id, 0, 2, &x), STORE_CONFLICT, "twice");
    cr_assert_eq(add_trial(s, id, 1, 2, &r1), 0);
    cr_assert_eq(add_trial(s, id, 2, 2, &x), STORE_CONFLICT, "parallel 2");
    cr_assert_eq(add_trial(s, 999, 0, 2, &x), STORE_NOT_FOUND);

    store_run r = {0};
    cr_assert_eq(store_run_get(s, r1, &r, &err), 0);
    cr_assert_eq(r.sweep, id);
    cr_assert_eq(r.trial, 1);
    cr_assert_eq(r.status, RUN_QUEUED);
    store_run_free(&r);

    /* a trial ends pruned: a slot frees up */
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0);
    cr_assert_eq(r.id, r0);
    store_run_free(&r);
    train_period p = {.period = 1, .step = 50, .train_log_loss = 0.5,
                      .validation_log_loss = 0.6,
                      .validation_accuracy = 0.75, .seconds = 1};
    cr_assert_eq(store_period_add(s, r0, &p, NULL, NULL, 0, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_run_finish(s, r0, RUN_PRUNED, "pruned: test", 60,
                                  &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_get(s, r0, &r, &err), 0);
    cr_assert_eq(r.status, RUN_PRUNED);
    cr_assert_eq(r.step, 60, "a pruned run keeps the step it stopped at");
    store_run_free(&r);
    cr_assert_eq(add_trial(s, id, 2, 2, &r2), 0);

    store_series *ser = NULL;
    size_t n = 0;
    cr_assert_eq(store_sweep_series(s, id, "validation_accuracy", 5, &ser, &n,
                                    &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(ser[0].run, r0);
    cr_assert_eq(ser[0].n, 1);
    cr_assert_float_eq(ser[0].v[0], 0.75, 1e-12);
    store_series_free(ser, n);
    cr_assert_eq(store_sweep_series(s, id, "steps", 5, &ser, &n, &err), -1);

    store_sweep w = {0};
    store_run *trials = NULL;
    cr_assert_eq(store_sweep_get(s, id, &w, &trials, &n, &err), 0);
    cr_assert_str_eq(w.status, "running");
    cr_assert_eq(w.next_trial, 3);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) cr_assert_eq(trials[i].trial, i);
    store_runs_free(trials, n);
    store_sweep_free(&w);

    /* a running sweep cannot be deleted; an ended one cannot get trials */
    int64_t blocking = 0;
    cr_assert_eq(store_sweep_delete(s, id, &blocking, &err), STORE_CONFLICT);
    cr_assert_eq(store_sweep_finish(s, id, "cancelled", NULL, &err), 0);
    cr_assert_eq(store_sweep_finish(s, id, "failed", NULL, &err),
                 STORE_CONFLICT);
    /* its queued trials still block the delete */
    cr_assert_eq(store_sweep_delete(s, id, &blocking, &err), STORE_CONFLICT);
    cr_assert_eq(blocking, r1);
    cr_assert_eq(store_run_cancel_queued(s, r1, &err), 0);
    cr_assert_eq(store_run_cancel_queued(s, r2, &err), 0);
    cr_assert_eq(store_sweep_delete(s, id, &blocking, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_get(s, r0, &r, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_sweep_get(s, id, &w, NULL, NULL, &err), STORE_NOT_FOUND);
    store_close(s);
}

Test(store, sweep_a_run_is_no_trial_and_list_newest_first)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t run = 0, a = 0, b = 0;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 10, 1, NULL,
                                  &run, &err),
                 0);
    store_run r = {0};
    cr_assert_eq(store_run_get(s, run, &r, &err), 0);
    cr_assert_eq(r.sweep, 0);
    store_run_free(&r);
    cr_assert_eq(store_sweep_create(s, "{}", 1, &a, &err), 0);
    cr_assert_eq(store_sweep_create(s, "{}", 2, &b, &err), 0);
    store_sweep *ws = NULL;
    size_t n = 0;
    cr_assert_eq(store_sweep_list(s, 10, 0, &ws, &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(ws[0].id, b);
    cr_assert_eq(ws[1].id, a);
    store_sweeps_free(ws, n);
    cr_assert_eq(store_sweep_list(s, -1, 1, &ws, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1, "no limit, from the second");
    cr_assert_eq(ws[0].id, a);
    store_sweeps_free(ws, n);
    cr_assert_eq(store_sweep_finish(s, a, "succeeded", NULL, &err), 0);
    int64_t *ids = NULL;
    cr_assert_eq(store_sweep_active(s, &ids, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], b);
    free(ids);
    store_close(s);
}

/* Migration 0006 widens the runs' status CHECK in place: a database of
 * schema 4 keeps its runs and their periods, and they may end pruned. */
Test(store, sweep_migration_keeps_runs_and_allows_pruned)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open_upto(&s, db_path, 4, &err), 0, "%s", err.msg);
    int64_t id = 0;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 10, 2, NULL,
                                  &id, &err),
                 0);
    store_run r = {0};
    train_period p = {.period = 1, .step = 5, .validation_accuracy = 0.5,
                      .validation_log_loss = 1, .train_log_loss = 1};
    cr_assert_eq(store_period_add(s, id, &p, NULL, NULL, 0, &err), 0);
    cr_assert_eq(store_run_finish(s, id, RUN_PRUNED, NULL, 6, &err), -1,
                 "schema 4 has no 'pruned'");
    store_close(s);

    s = open_db();
    cr_assert_geq(store_schema_version(s), 6);
    train_period *ps = NULL;
    size_t n = 0;
    cr_assert_eq(store_periods_get(s, id, &ps, &n, &err), 0);
    cr_assert_eq(n, 1);
    free(ps);
    cr_assert_eq(store_run_finish(s, id, RUN_PRUNED, NULL, 6, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_run_get(s, id, &r, &err), 0);
    cr_assert_eq(r.status, RUN_PRUNED);
    cr_assert_eq(r.sweep, 0);
    store_run_free(&r);
    store_close(s);
}

#define SWEEP_THREADS 4
#define SWEEP_TRIALS 40
#define SWEEP_PARALLEL 3

typedef struct sweep_arg {
    int64_t sweep;
    pthread_barrier_t *barrier;
    int64_t made[SWEEP_TRIALS]; /* run ids this thread created */
    size_t n_made;
    int failures;
    char msg[640];
} sweep_arg;

/* One scheduler: its own connection; it creates the sweep's next trial
 * (as read from the store) while fewer than SWEEP_PARALLEL are queued, and
 * otherwise ends one queued trial of the sweep as a worker would, until
 * every trial exists. Another's trial taken first is STORE_CONFLICT; any
 * other error is a failure. */
static void *sweep_scheduler(void *p)
{
    sweep_arg *a = p;
    mn_err err = {{0}};
    store *s = NULL;

    pthread_barrier_wait(a->barrier);
    if (store_open(&s, db_path, &err)) {
        if (!a->failures++)
            snprintf(a->msg, sizeof a->msg, "open: %s", err.msg);
        return NULL;
    }
    for (int guard = 0; guard < 100000; guard++) {
        store_sweep w = {0};
        store_run *trials = NULL;
        size_t n = 0;
        if (store_sweep_get(s, a->sweep, &w, &trials, &n, &err)) {
            if (!a->failures++)
                snprintf(a->msg, sizeof a->msg, "get: %s", err.msg);
            break;
        }
        uint32_t next = w.next_trial, total = w.trials;
        store_sweep_free(&w);
        int64_t queued = 0;
        for (size_t i = 0; i < n; i++)
            if (trials[i].status == RUN_QUEUED && !queued)
                queued = trials[i].id;
        store_runs_free(trials, n);
        if (next == total) break;
        int64_t rid = 0;
        int rc = store_sweep_trial_add(s, a->sweep, next, SWEEP_PARALLEL,
                                       "dnn", "mnist", "{}", 100, 2, &rid,
                                       &err);
        if (rc == 0) {
            if (a->n_made < SWEEP_TRIALS) a->made[a->n_made++] = rid;
        } else if (rc == STORE_CONFLICT) {
            /* full, or another scheduler took trial `next`: a worker
             * ends a queued trial (another may have ended it first) */
            if (queued) {
                rc = store_run_cancel_queued(s, queued, &err);
                if (rc && rc != STORE_CONFLICT && !a->failures++)
                    snprintf(a->msg, sizeof a->msg, "cancel: %s", err.msg);
            }
        } else {
            if (!a->failures++)
                snprintf(a->msg, sizeof a->msg, "trial %u: rc %d: %s", next,
                         rc, err.msg);
            break;
        }
    }
    store_close(s);
    return NULL;
}

/* Several connections create one sweep's trials at once: each trial
 * number exists once, every creation succeeds or is a conflict (never a
 * database error such as a duplicate key), and no more than `parallel`
 * trials are queued at the end. */
Test(store, sweep_trials_created_at_once_by_several_connections,
     .timeout = 120)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = 0;
    cr_assert_eq(store_sweep_create(s, "{}", SWEEP_TRIALS, &id, &err), 0,
                 "%s", err.msg);
    pthread_barrier_t barrier;
    pthread_t th[SWEEP_THREADS];
    sweep_arg *args = calloc(SWEEP_THREADS, sizeof *args);
    cr_assert_not_null(args);
    cr_assert_eq(pthread_barrier_init(&barrier, NULL, SWEEP_THREADS), 0);
    for (int t = 0; t < SWEEP_THREADS; t++) {
        args[t].sweep = id;
        args[t].barrier = &barrier;
        cr_assert_eq(pthread_create(&th[t], NULL, sweep_scheduler, &args[t]),
                     0);
    }
    for (int t = 0; t < SWEEP_THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    size_t made = 0;
    for (int t = 0; t < SWEEP_THREADS; t++) {
        cr_assert_eq(args[t].failures, 0, "thread %d: %d failures, first: %s",
                     t, args[t].failures, args[t].msg);
        made += args[t].n_made;
    }
    free(args);
    cr_assert_eq(made, SWEEP_TRIALS, "each trial created once");

    store_sweep w = {0};
    store_run *trials = NULL;
    size_t n = 0;
    cr_assert_eq(store_sweep_get(s, id, &w, &trials, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(w.next_trial, SWEEP_TRIALS);
    cr_assert_eq(n, SWEEP_TRIALS);
    size_t queued = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(trials[i].trial, i);
        queued += trials[i].status == RUN_QUEUED;
    }
    cr_assert_leq(queued, SWEEP_PARALLEL);
    store_runs_free(trials, n);
    store_sweep_free(&w);
    store_close(s);
}

/* ---------------------------------------------------------------- signals */

Test(store, cancel_request_and_live_progress_of_a_running_run)
{
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id = make_run(s, "linear");
    int cancel = -1;
    store_run_live live;
    /* queued: no request (a queued run is cancelled at once), no progress */
    cr_assert_eq(store_run_cancel_request(s, id, &err), STORE_CONFLICT);
    cr_assert_eq(store_run_progress_put(s, id, "n1", 5, 0, &cancel, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_run_live_get(s, id, &live, &err), 0, "%s", err.msg);
    cr_assert_eq(live.at, 0);
    cr_assert_eq(live.status, RUN_QUEUED);
    claim(s, id);
    int64_t before = st_now_ms();
    cr_assert_eq(store_run_progress_put(s, id, "n1", 250, 2, &cancel, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(cancel, 0);
    /* another node that does not hold the run writes nothing */
    cr_assert_eq(store_run_progress_put(s, id, "n2", 900, 9, &cancel, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_run_live_get(s, id, &live, &err), 0, "%s", err.msg);
    cr_assert_eq(live.step, 250);
    cr_assert_eq(live.period, 2);
    cr_assert_geq(live.at, before);
    cr_assert_eq(live.cancel_requested, 0);
    /* another connection (another node) asks for the cancel */
    store *other = open_db();
    cr_assert_eq(store_run_cancel_request(other, id, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_progress_put(s, id, "n1", 260, 2, &cancel, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(cancel, 1);
    cr_assert_eq(store_run_live_get(other, id, &live, &err), 0, "%s", err.msg);
    cr_assert_eq(live.cancel_requested, 1);
    cr_assert_eq(live.step, 260);
    /* stopped: no more progress nor requests; a resume clears the request */
    mn_err e2 = {{0}};
    cr_assert_eq(store_checkpoint_put(s, id, 260, (const uint8_t *)"ck", 2,
                                      &e2),
                 0, "%s", e2.msg);
    cr_assert_eq(store_run_finish(s, id, RUN_CANCELLED, NULL, 260, &e2), 0,
                 "%s", e2.msg);
    cr_assert_eq(store_run_progress_put(s, id, "n1", 270, 2, &cancel, &err),
                 STORE_CONFLICT);
    cr_assert_eq(store_run_cancel_request(other, id, &err), STORE_CONFLICT);
    int no_ckpt = 0;
    cr_assert_eq(store_run_resume(other, id, NULL, &no_ckpt, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_run_live_get(s, id, &live, &err), 0, "%s", err.msg);
    cr_assert_eq(live.cancel_requested, 0);
    cr_assert_eq(live.status, RUN_QUEUED);
    cr_assert_eq(store_run_cancel_request(s, 99999, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_run_live_get(s, 99999, &live, &err), STORE_NOT_FOUND);
    store_close(other);
    store_close(s);
}

/* Waits up to 10 s on listener l for a signal of `kind` (others are
 * skipped: a trigger may send more than one); returns it. */
static store_signal wait_signal(store *l, store_signal_kind kind)
{
    mn_err err = {{0}};
    store_signal sig;
    for (int t = 0; t < 100; t++) {
        int r = store_signal_wait(l, 100, &sig, &err);
        cr_assert(r == 0 || r == 1 || r == STORE_UNAVAILABLE, "%d %s", r,
                  err.msg);
        if (r == 1 && sig.kind == kind) return sig;
    }
    cr_assert_fail("no signal of kind %d in 10 s", (int)kind);
    return sig;
}

Test(store, a_listener_hears_what_other_connections_commit)
{
    store *l = open_db();
    mn_err err = {{0}};
    if (!on_pg) {
        /* SQLite: one process per file, nothing to listen to */
        cr_assert_eq(store_is_shared(l), 0);
        cr_assert_eq(store_listen(l, &err), STORE_NOT_FOUND);
        store_close(l);
        return;
    }
    cr_assert_eq(store_is_shared(l), 1);
    cr_assert_eq(store_listen(l, &err), 0, "%s", err.msg);
    store *s = open_db();
    store_signal sig;
    /* nothing yet */
    cr_assert_eq(store_signal_wait(l, 50, &sig, &err), 0, "%s", err.msg);
    int64_t id = make_run(s, "linear");
    cr_assert_eq(wait_signal(l, STORE_SIG_QUEUED).run, id);
    claim(s, id);
    cr_assert_eq(store_run_cancel_request(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(wait_signal(l, STORE_SIG_CANCEL).run, id);
    add_period(s, id, 1, 0.5, "ck1");
    cr_assert_eq(wait_signal(l, STORE_SIG_PERIOD).run, id);
    /* a requeue (graceful stop, takeover) queues it again */
    cr_assert_eq(store_run_requeue(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(wait_signal(l, STORE_SIG_QUEUED).run, id);
    claim(s, id);
    finish(s, id, RUN_CANCELLED);
    cr_assert_eq(store_run_delete(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(wait_signal(l, STORE_SIG_DELETED).run, id);
    ds_dataset d = make_dataset(10);
    cr_assert_eq(store_dataset_put(s, "digits two", &d, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_dataset_delete(s, "digits two", NULL, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_str_eq(wait_signal(l, STORE_SIG_DATASET_DELETED).dataset,
                     "digits two");
    ds_free(&d);
    /* a rolled-back change signals nothing (NOTIFY is sent at COMMIT) */
    raw *db = raw_open();
    raw_exec(db, "BEGIN; INSERT INTO runs (status, model, dataset, params_json,"
                 " steps, periods, created_at) VALUES ('queued', 'linear',"
                 " 'mnist', '{}', 10, 1, 0); ROLLBACK");
    raw_close(db);
    cr_assert_eq(store_signal_wait(l, 300, &sig, &err), 0, "%s", err.msg);
    store_close(s);
    store_close(l);
}

Test(store, a_listener_whose_connection_dies_reopens_and_listens_again,
     .timeout = 60)
{
    if (!on_pg) {
        cr_skip_test("PostgreSQL only: SQLite has no listener");
        return;
    }
    store *l = open_db();
    mn_err err = {{0}};
    cr_assert_eq(store_listen(l, &err), 0, "%s", err.msg);
    /* the server ends the listener's session (as at a restart) */
    raw *db = raw_open();
    cr_assert_eq(raw_int(db, "SELECT count(pg_terminate_backend(pid)) FROM"
                             " pg_stat_activity WHERE pid <> pg_backend_pid()"
                             " AND query LIKE 'LISTEN %' AND"
                             " query LIKE '%' || current_schema() ||"
                             " '.mnistd%'",
                         0),
                 1);
    raw_close(db);
    wait_signal(l, STORE_SIG_RESYNC);
    store *s = open_db();
    int64_t id = make_run(s, "dnn");
    cr_assert_eq(wait_signal(l, STORE_SIG_QUEUED).run, id);
    store_close(s);
    store_close(l);
}

/* ---------------------------------------------------------------- users */

/* Users: add (a name once), get with the token hash, list, revoke (once),
 * rotate (a new hash, reinstated), and whether any user exists. */
Test(store, users_add_get_revoke_rotate)
{
    store *s = open_db();
    mn_err err = {{0}};
    uint8_t h1[STORE_TOKEN_HASH_BYTES], h2[STORE_TOKEN_HASH_BYTES],
        got[STORE_TOKEN_HASH_BYTES];
    memset(h1, 0x11, sizeof h1);
    memset(h2, 0x22, sizeof h2);
    int any = -1;
    cr_assert_eq(store_user_any(s, &any, &err), 0, "%s", err.msg);
    cr_assert_eq(any, 0);
    cr_assert_eq(store_user_add(s, "alice", h1, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_add(s, "root", h2, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_add(s, "alice", h2, 1, &err), STORE_CONFLICT);
    cr_assert_str_eq(err.msg, "user 'alice' exists");
    cr_assert_eq(store_user_any(s, &any, &err), 0);
    cr_assert_eq(any, 1);
    store_user u;
    cr_assert_eq(store_user_get(s, "alice", &u, got, &err), 0, "%s", err.msg);
    cr_assert_str_eq(u.name, "alice");
    cr_assert_eq(u.admin, 0);
    cr_assert_gt(u.created_at, 0);
    cr_assert_eq(u.revoked_at, 0);
    cr_assert_eq(memcmp(got, h1, sizeof h1), 0);
    cr_assert_eq(store_user_get(s, "zed", &u, NULL, &err), STORE_NOT_FOUND);
    store_user *us = NULL;
    size_t n = 0;
    cr_assert_eq(store_user_list(s, &us, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(us[0].name, "alice");
    cr_assert_str_eq(us[1].name, "root");
    cr_assert_eq(us[1].admin, 1);
    free(us);
    cr_assert_eq(store_user_revoke(s, "alice", &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_revoke(s, "alice", &err), STORE_CONFLICT);
    cr_assert_eq(store_user_revoke(s, "zed", &err), STORE_NOT_FOUND);
    cr_assert_eq(store_user_get(s, "alice", &u, NULL, &err), 0);
    cr_assert_gt(u.revoked_at, 0);
    cr_assert_eq(store_user_rotate(s, "alice", h2, &err), 0, "%s", err.msg);
    cr_assert_eq(store_user_get(s, "alice", &u, got, &err), 0);
    cr_assert_eq(u.revoked_at, 0);
    cr_assert_eq(memcmp(got, h2, sizeof h2), 0);
    cr_assert_eq(store_user_rotate(s, "zed", h1, &err), STORE_NOT_FOUND);
    store_close(s);
}

/* Owners: what a user creates records it (a sweep's trials its sweep's),
 * lists filter by it, store_owner_get reads it with the shared flag (a
 * public upload, a model of an admin or of no user), and an owner must be
 * a user (the foreign key). */
Test(store, owners_recorded_filtered_and_shared)
{
    store *s = open_db();
    mn_err err = {{0}};
    uint8_t h[STORE_TOKEN_HASH_BYTES] = {0};
    cr_assert_eq(store_user_add(s, "alice", h, 0, &err), 0, "%s", err.msg);
    h[0] = 1;
    cr_assert_eq(store_user_add(s, "root", h, 1, &err), 0, "%s", err.msg);
    int64_t a = 0, b = 0, sw = 0, t = 0;
    cr_assert_eq(store_run_create(s, "alice", 0, "linear", "mnist", "{}", 10, 1,
                                  NULL, &a, &err),
                 0, "%s", err.msg);
    cr_assert_eq(store_run_create(s, NULL, 0, "linear", "mnist", "{}", 10, 1,
                                  NULL, &b, &err),
                 0);
    cr_assert_neq(store_run_create(s, "nobody", 0, "linear", "mnist", "{}", 10,
                                   1, NULL, &t, &err),
                  0, "an owner that is not a user");
    store_run *runs = NULL;
    size_t n = 0;
    cr_assert_eq(store_run_list_owned(s, "alice", NULL, NULL, -1, 0, &runs, &n,
                                      NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(runs[0].id, a);
    cr_assert_str_eq(runs[0].owner, "alice");
    store_runs_free(runs, n);
    cr_assert_eq(store_run_list(s, NULL, NULL, -1, 0, &runs, &n, NULL, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(runs[0].owner, "");   /* b, newest first */
    store_runs_free(runs, n);
    char owner[64];
    int shared = -1;
    cr_assert_eq(store_owner_get(s, STORE_OWNED_RUN, a, NULL, owner, &shared,
                                 &err), 0, "%s", err.msg);
    cr_assert_str_eq(owner, "alice");
    cr_assert_eq(shared, 0);
    cr_assert_eq(store_owner_get(s, STORE_OWNED_RUN, 999999, NULL, owner,
                                 &shared, &err), STORE_NOT_FOUND);
    /* a sweep's trials are its owner's */
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 2, NULL, &sw,
                                          &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_sweep_trial_add(s, sw, 0, 1, "linear", "mnist", "{}",
                                       10, 1, &t, &err), 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_get(s, t, &r, &err), 0);
    cr_assert_str_eq(r.owner, "alice");
    store_run_free(&r);
    store_sweep *ws = NULL;
    cr_assert_eq(store_sweep_list_owned(s, "root", -1, 0, &ws, &n, &err), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(store_sweep_list_owned(s, "alice", -1, 0, &ws, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ws[0].owner, "alice");
    store_sweeps_free(ws, n);
    /* uploads: private, then public */
    ds_dataset d = make_dataset(3);
    cr_assert_eq(store_dataset_put_owned(s, "up", &d, "alice", 0, NULL,
                                         &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_owner_get(s, STORE_OWNED_DATASET, 0, "up", owner,
                                 &shared, &err), 0, "%s", err.msg);
    cr_assert_str_eq(owner, "alice");
    cr_assert_eq(shared, 0);
    cr_assert_eq(store_dataset_set_public(s, "up", 1, &err), 0, "%s", err.msg);
    store_dataset_info info;
    cr_assert_eq(store_dataset_info_get(s, "up", &info, &err), 0);
    cr_assert_eq(info.public_, 1);
    cr_assert_str_eq(info.owner, "alice");
    cr_assert_eq(store_dataset_set_public(s, "nope", 1, &err), STORE_NOT_FOUND);
    ds_free(&d);
    /* models: a user's is its own, an admin's and an ownerless one shared */
    cr_assert_eq(store_model_create_owned(s, "ma", NULL, "alice", &err), 0);
    cr_assert_eq(store_model_create_owned(s, "mr", NULL, "root", &err), 0);
    cr_assert_eq(store_model_create(s, "mn", NULL, &err), 0);
    const char *const names[] = {"ma", "mr", "mn"};
    const int want[] = {0, 1, 1};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_owner_get(s, STORE_OWNED_MODEL, 0, names[i], owner,
                                     &shared, &err), 0, "%s", err.msg);
        cr_assert_eq(shared, want[i], "%s", names[i]);
    }
    store_model *ms = NULL;
    cr_assert_eq(store_model_list(s, &ms, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(ms[0].name, "ma");
    cr_assert_str_eq(ms[0].owner, "alice");
    cr_assert_eq(ms[0].shared, 0);
    store_models_free(ms, n);
    int64_t newest = 0;
    cr_assert_eq(store_run_newest_succeeded_owned(s, "alice", &newest, &err),
                 STORE_NOT_FOUND);
    store_close(s);
}

#define LIMIT_THREADS 8
#define LIMIT_RUNS 3

typedef struct limit_arg {
    pthread_barrier_t *barrier;
    int rc;            /* store_run_create's */
    int64_t used;      /* store_limit.used on STORE_LIMIT */
    char msg[sizeof ((mn_err *)0)->msg];
} limit_arg;

/* One request of the burst: its own connection, created at once with the
 * others. Every path passes the barrier so that none can hang. */
static void *limit_creator(void *p)
{
    limit_arg *a = p;
    mn_err err = {{0}};
    store *s = NULL;
    int opened = store_open(&s, db_path, &err);
    pthread_barrier_wait(a->barrier);
    if (opened) {
        a->rc = -100;
    } else {
        store_limit lim = {.max = LIMIT_RUNS};
        int64_t id = 0;
        a->rc = store_run_create(s, "alice", 0, "linear", "mnist", "{}", 10, 1,
                                 &lim, &id, &err);
        a->used = lim.used;
    }
    snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    store_close(s);
    return NULL;
}

/* The runs limit is counted in the insert's write transaction: of a burst
 * of simultaneous creations by one user exactly the limit's worth is
 * created, on both backends (PostgreSQL: the owner's advisory lock). */
Test(store, runs_limit_holds_under_concurrency)
{
    store *s = open_db();
    mn_err err = {{0}};
    uint8_t h[STORE_TOKEN_HASH_BYTES] = {0};
    cr_assert_eq(store_user_add(s, "alice", h, 0, &err), 0, "%s", err.msg);
    h[0] = 1;
    cr_assert_eq(store_user_add(s, "bob", h, 0, &err), 0, "%s", err.msg);
    pthread_barrier_t barrier;
    pthread_t th[LIMIT_THREADS];
    limit_arg args[LIMIT_THREADS];
    cr_assert_eq(pthread_barrier_init(&barrier, NULL, LIMIT_THREADS), 0);
    for (int t = 0; t < LIMIT_THREADS; t++) {
        args[t] = (limit_arg){.barrier = &barrier};
        cr_assert_eq(pthread_create(&th[t], NULL, limit_creator, &args[t]),
                     0);
    }
    for (int t = 0; t < LIMIT_THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&barrier);
    int created = 0;
    for (int t = 0; t < LIMIT_THREADS; t++) {
        if (args[t].rc == 0) {
            created++;
            continue;
        }
        cr_assert_eq(args[t].rc, STORE_LIMIT, "thread %d: %d %s", t,
                     args[t].rc, args[t].msg);
        cr_assert_eq(args[t].used, LIMIT_RUNS);
    }
    cr_assert_eq(created, LIMIT_RUNS);
    int64_t n = 0;
    cr_assert_eq(store_run_count(s, "queued", &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, LIMIT_RUNS);

    /* another user, and a creation without an owner, are not counted
     * against alice; an ended run frees its place */
    store_limit lim = {.max = LIMIT_RUNS};
    int64_t id = 0;
    cr_assert_eq(store_run_create(s, "bob", 0, "linear", "mnist", "{}", 10, 1,
                                  &lim, &id, &err),
                 0, "%s", err.msg);
    cr_assert_eq(store_run_create(s, NULL, 0, "linear", "mnist", "{}", 10, 1,
                                  &lim, &id, &err),
                 0, "%s", err.msg);
    store_run r;
    for (;;) {   /* fair share decides the order: end the others' runs */
        cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s",
                     err.msg);
        if (!strcmp(r.owner, "alice")) break;
        cr_assert_eq(store_run_finish(s, r.id, RUN_SUCCEEDED, NULL, 0, &err),
                     0, "%s", err.msg);
        store_run_free(&r);
    }
    /* alice's run is running: still counted */
    cr_assert_eq(store_run_create(s, "alice", 0, "linear", "mnist", "{}", 10, 1,
                                  &lim, &id, &err),
                 STORE_LIMIT);
    cr_assert_eq(store_run_finish(s, r.id, RUN_SUCCEEDED, NULL, 0, &err), 0,
                 "%s", err.msg);
    store_run_free(&r);
    cr_assert_eq(store_run_create(s, "alice", 0, "linear", "mnist", "{}", 10, 1,
                                  &lim, &id, &err),
                 0, "%s", err.msg);
    /* a sweep's queued trial counts */
    int64_t sw = 0, t = 0;
    cr_assert_eq(store_run_cancel_queued(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 2, NULL, &sw,
                                          &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_sweep_trial_add(s, sw, 0, 1, "linear", "mnist", "{}",
                                       10, 1, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_create(s, "alice", 0, "linear", "mnist", "{}", 10, 1,
                                  &lim, &id, &err),
                 STORE_LIMIT);
    cr_assert_eq(lim.used, LIMIT_RUNS);
    store_close(s);
}

/* The upload-bytes and sweep-trials limits are counted in the insert's
 * write transaction: an insert that would
 * pass the limit is STORE_LIMIT, creates nothing and says what the owner
 * held; one that reaches it exactly goes in. */
Test(store, bytes_and_trials_limits_in_the_insert)
{
    store *s = open_db();
    mn_err err = {{0}};
    uint8_t h[STORE_TOKEN_HASH_BYTES] = {0};
    cr_assert_eq(store_user_add(s, "alice", h, 0, &err), 0, "%s", err.msg);
    /* 2 examples of 2 x 3: 2 * (6 + 1) = 14 bytes as stored */
    uint8_t px[2 * 6] = {0}, labels[2] = {1, 2};
    ds_dataset d = {.n = 2, .rows = 2, .cols = 3, .pixels = px,
                    .labels = labels};
    store_limit bytes = {.max = 28};
    cr_assert_eq(store_dataset_put_owned(s, "a", &d, "alice", 0, &bytes,
                                         &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put_owned(s, "b", &d, "alice", 0, &bytes,
                                         &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put_owned(s, "c", &d, "alice", 0, &bytes,
                                         &err), STORE_LIMIT);
    cr_assert_eq(bytes.used, 28);
    store_dataset_info info;
    cr_assert_eq(store_dataset_info_get(s, "c", &info, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_dataset_put_owned(s, "c", &d, NULL, 0, &bytes, &err),
                 0, "%s", err.msg);   /* no owner: no limit */

    store_limit trials = {.max = 5};
    int64_t w = 0;
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 3, &trials, &w,
                                          &err), 0, "%s", err.msg);
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 3, &trials, &w,
                                          &err), STORE_LIMIT);
    cr_assert_eq(trials.used, 3);
    cr_assert_eq(store_sweep_create_owned(s, "alice", "{}", 2, &trials, &w,
                                          &err), 0, "%s", err.msg);
    store_close(s);
}
