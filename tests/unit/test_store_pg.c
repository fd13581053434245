/* test_store_pg.c: the PostgreSQL driver (server/store/pg.c) when the
 * database misbehaves, against the throwaway server of `make unit-pg`
 * (scripts/pg-temp.sh run: MNISTD_TEST_PG, MNISTD_TEST_PG_DIR); on SQLite
 * (plain `make unit`) every test skips. Each test works in a schema of its
 * own and names its connections (application_name) so that a second,
 * administrative connection can find the store's backend in
 * pg_stat_activity. What a user of the store cares about is asserted: a
 * lost connection, a statement timeout, a deadlock and an unreachable
 * server are STORE_UNAVAILABLE (the HTTP layer's 503, the pool's retry),
 * never a half-done change; the same call made again succeeds on a
 * re-opened connection; the server restarted under an open store costs
 * nothing; a bad URI, a wrong password and a missing database fail at
 * open with a reason and no password in it; out of memory at open is a
 * clean error. Also the driver's column reads of every numeric type,
 * its limits (a parameter past ?32, a BLOB over 2 GiB) and the silenced
 * server warnings and housekeeping.
 *
 * Serialization failures (40001) cannot happen to the store: its writes
 * run at READ COMMITTED and its REPEATABLE READ transactions are read
 * only; the deadlock (40P01) is the retryable concurrency failure a
 * writer meets, and is made here for real. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "server/store/store.h"
#include "server/store/store_internal.h"
#include "tests/unit/fault.h"

static char base_uri[512];   /* the server's URI (database mnistd) */
static char schema[32];      /* this test's schema, t<pid> */
static char app[32];         /* the store's application_name, s<pid> */
static char admin_app[32];   /* the admin connections', a<pid> */
static char db_uri[1024];    /* base_uri selecting schema, named app */

/* ---------------------------------------------------------------- helpers */

/* The URI of base_uri with extra query parameters appended. */
static void uri_with(char *out, size_t cap, const char *extra)
{
    int n = snprintf(out, cap, "%s%s%s", base_uri,
                     strchr(base_uri, '?') ? "&" : "?", extra);
    cr_assert(n > 0 && (size_t)n < cap, "URI too long");
}

static void admin_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK ||
                  PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static PGconn *admin_open(void)
{
    char uri[1024], extra[128];
    snprintf(extra, sizeof extra,
             "options=-csearch_path%%3D%s&application_name=%s", schema,
             admin_app);
    uri_with(uri, sizeof uri, extra);
    PGconn *c = PQconnectdb(uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    admin_exec(c, "SET client_min_messages = warning");
    return c;
}

/* The URI of this test's schema and application_name, with more session
 * options (-cname%3Dvalue, space-separated as %20; NULL: none) and
 * another role (NULL: the server URI's). */
static void store_uri(char *out, size_t cap, const char *options,
                      const char *user)
{
    char extra[512];
    snprintf(extra, sizeof extra,
             "options=-csearch_path%%3D%s%s%s&application_name=%s%s%s",
             schema, options ? "%20" : "", options ? options : "", app,
             user ? "&user=" : "", user ? user : "");
    uri_with(out, cap, extra);
}

/* A one-integer query (0 when it returns no row). */
static long long admin_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql,
                 PQerrorMessage(c));
    long long v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return v;
}

static void setup(void)
{
    const char *uri = getenv("MNISTD_TEST_PG");
    if (!uri || !*uri) return;
    snprintf(base_uri, sizeof base_uri, "%s", uri);
    snprintf(schema, sizeof schema, "t%ld", (long)getpid());
    snprintf(app, sizeof app, "s%ld", (long)getpid());
    snprintf(admin_app, sizeof admin_app, "a%ld", (long)getpid());
    PGconn *c = PQconnectdb(base_uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    char sql[160];
    snprintf(sql, sizeof sql,
             "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s"
             " CASCADE; CREATE SCHEMA %s", schema, schema);
    admin_exec(c, sql);
    PQfinish(c);
    store_uri(db_uri, sizeof db_uri, NULL, NULL);
}

/* Drops the schema. A test that failed half-way may have left its
 * connections in a transaction holding locks: they are ended first, so
 * that a failure is reported instead of a DROP waiting forever. */
static void teardown(void)
{
    if (!*schema) return;
    PGconn *c = PQconnectdb(base_uri);
    if (PQstatus(c) == CONNECTION_OK) {
        char sql[320];
        snprintf(sql, sizeof sql,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE application_name IN ('%s', '%s')", app, admin_app);
        PQclear(PQexec(c, sql));
        snprintf(sql, sizeof sql,
                 "SET client_min_messages = warning; SET lock_timeout = '30s';"
                 " DROP SCHEMA %s CASCADE", schema);
        PQclear(PQexec(c, sql));
    }
    PQfinish(c);
}

TestSuite(store_pg, .init = setup, .fini = teardown);

#define PG_ONLY()                                                            \
    do {                                                                     \
        if (!*base_uri) {                                                    \
            cr_skip_test("PostgreSQL only: make unit-pg");                   \
            return;                                                          \
        }                                                                    \
    } while (0)

static store *open_uri(const char *uri)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, uri, &err), 0, "%s", err.msg);
    cr_assert_not_null(s);
    return s;
}

static int64_t make_run(store *s)
{
    int64_t id = 0;
    mn_err err = {{0}};
    cr_assert_eq(store_run_create(s, NULL, 0, "linear", "mnist", "{\"seed\":1}",
                                  1000, 10, NULL, &id, &err),
                 0, "%s", err.msg);
    return id;
}

static const char *status_of(store *s, int64_t id)
{
    store_run r;
    mn_err err = {{0}};
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    const char *name = run_status_name(r.status);
    store_run_free(&r);
    return name;
}

/* The pid of the store's backend (named app), 0 when it has none. */
static long long store_backend(PGconn *admin)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT pid FROM pg_stat_activity WHERE application_name = '%s'",
             app);
    return admin_int(admin, sql);
}

/* Waits (up to 30 s) until the query returns a nonzero integer. */
static void wait_until(PGconn *admin, const char *sql)
{
    for (int i = 0; i < 3000; i++) {
        if (admin_int(admin, sql)) return;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    cr_assert_fail("timed out waiting for: %s", sql);
}

/* Waits until the store's backend waits for a lock. */
static void wait_store_blocked(PGconn *admin)
{
    char sql[192];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE application_name"
             " = '%s' AND wait_event_type = 'Lock'", app);
    wait_until(admin, sql);
}

/* A store call made on another thread (it blocks on a lock). */
typedef struct call {
    store *s;
    int64_t id;
    int rc;
    mn_err err;
    pthread_t t;
} call;

static void *cancel_main(void *arg)
{
    call *c = arg;
    c->rc = store_run_cancel_queued(c->s, c->id, &c->err);
    return NULL;
}

static void *test_put_main(void *arg)
{
    call *c = arg;
    eval_result e = {.examples = 10, .log_loss = 0.5, .accuracy = 0.7};
    for (int i = 0; i < 10; i++) e.confusion[i][i] = 1;
    c->rc = store_test_put(c->s, c->id, &e, &c->err);
    return NULL;
}

/* ---------------------------------------------------------------- open */

Test(store_pg, a_bad_uri_a_wrong_password_and_a_missing_database_fail_at_open)
{
    PG_ONLY();
    store *s = (store *)1;
    mn_err err = {{0}};

    /* libpq cannot parse it */
    cr_assert_eq(store_open(&s, "postgresql://x/db?nosuchkey=1", &err), -1);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "bad PostgreSQL URI"), "%s", err.msg);
    cr_assert(strstr(err.msg, "nosuchkey"), "%s", err.msg);

    /* the role needs its password (scripts/pg-temp.sh), given wrong */
    char uri[1024];
    uri_with(uri, sizeof uri, "user=mnistd_pw&password=s3cr3t-wrong");
    err.msg[0] = 0;
    cr_assert_eq(store_open(&s, uri, &err), -1);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "cannot connect to PostgreSQL database "
                              "'mnistd'"), "%s", err.msg);
    cr_assert(strstr(err.msg, "password authentication failed"), "%s",
              err.msg);
    cr_assert_null(strstr(err.msg, "s3cr3t"), "the password leaked: %s",
                   err.msg);
    cr_assert_null(strchr(err.msg, '\n'), "one line: %s", err.msg);

    /* a database that does not exist; dbname after the URI's path wins */
    uri_with(uri, sizeof uri, "dbname=nosuchdb");
    err.msg[0] = 0;
    cr_assert_eq(store_open(&s, uri, &err), -1);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "database 'nosuchdb'"), "%s", err.msg);
    cr_assert(strstr(err.msg, "does not exist"), "%s", err.msg);
}

/* Opens the store, creates a run and reads it back: each step may fail
 * for want of memory (fault_each), but only cleanly. */
static int open_close(void *ctx)
{
    store *s = NULL;
    mn_err err = {{0}};
    int rc = store_open(&s, ctx, &err);
    if (rc) {
        cr_assert_null(s);
        cr_assert(strstr(err.msg, "out of memory"), "%s", err.msg);
        return rc;
    }
    int64_t id = 0;
    rc = store_run_create(s, NULL, 0, "linear", "mnist", "{}", 1000, 10, NULL,
                          &id, &err);
    if (rc == 0) {
        store_run r;
        rc = store_run_get(s, id, &r, &err);
        if (rc == 0) {
            cr_assert_str_eq(run_status_name(r.status), "queued");
            store_run_free(&r);
        }
    }
    if (rc) cr_assert(strstr(err.msg, "out of memory"), "%s", err.msg);
    store_close(s);
    return rc;
}

Test(store_pg, every_allocation_failing_at_open_is_a_clean_error)
{
    PG_ONLY();
    store_close(open_uri(db_uri)); /* migrated: each try opens it again */
    cr_assert_gt(fault_each(open_close, db_uri), 2);
}

/* ------------------------------------------------------ connection lost */

Test(store_pg, a_connection_killed_while_idle_is_reopened_by_the_next_call)
{
    PG_ONLY();
    store *s = open_uri(db_uri);
    int64_t id = make_run(s);
    PGconn *admin = admin_open();
    long long before = store_backend(admin);
    cr_assert_gt(before, 0);

    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", before);
    admin_exec(admin, sql);
    snprintf(sql, sizeof sql,
             "SELECT (count(*) = 0)::int FROM pg_stat_activity"
             " WHERE pid = %lld", before);
    wait_until(admin, sql);

    /* the caller sees nothing: the first statement fails outside a
     * transaction, and is sent again on a new connection */
    cr_assert_str_eq(status_of(s, id), "queued");
    long long after = store_backend(admin);
    cr_assert_gt(after, 0);
    cr_assert_neq(after, before);
    /* and writes work on it */
    mn_err err = {{0}};
    cr_assert_eq(store_run_cancel_queued(s, id, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status_of(s, id), "cancelled");
    PQfinish(admin);
    store_close(s);
}

Test(store_pg, a_connection_killed_mid_statement_is_unavailable_then_retried)
{
    PG_ONLY();
    store *s = open_uri(db_uri);
    int64_t id = make_run(s);
    PGconn *admin = admin_open();
    long long before = store_backend(admin);

    /* the store's transaction waits for the run's row ... */
    char sql[128];
    admin_exec(admin, "BEGIN");
    snprintf(sql, sizeof sql, "SELECT 1 FROM runs WHERE id = %lld FOR UPDATE",
             (long long)id);
    admin_exec(admin, sql);
    call c = {.s = s, .id = id};
    cr_assert_eq(pthread_create(&c.t, NULL, cancel_main, &c), 0);
    wait_store_blocked(admin);
    /* ... when its connection is killed */
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", before);
    admin_exec(admin, sql);
    pthread_join(c.t, NULL);
    cr_assert_eq(c.rc, STORE_UNAVAILABLE, "%d: %s", c.rc, c.err.msg);
    cr_assert(strstr(c.err.msg, "run_cancel"), "%s", c.err.msg);
    admin_exec(admin, "ROLLBACK");

    /* nothing of it was done; the caller's retry works */
    cr_assert_str_eq(status_of(s, id), "queued");
    mn_err err = {{0}};
    cr_assert_eq(store_run_cancel_queued(s, id, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status_of(s, id), "cancelled");
    cr_assert_neq(store_backend(admin), before);
    PQfinish(admin);
    store_close(s);
}

/* ---------------------------------------------- timeouts and deadlocks */

Test(store_pg, a_statement_timeout_is_unavailable_and_the_retry_succeeds)
{
    PG_ONLY();
    char uri[1200];
    store_uri(uri, sizeof uri, "-cstatement_timeout%3D300", NULL);
    store *s = open_uri(uri);
    int64_t id = make_run(s);
    PGconn *admin = admin_open();

    char sql[128];
    admin_exec(admin, "BEGIN");
    snprintf(sql, sizeof sql, "SELECT 1 FROM runs WHERE id = %lld FOR UPDATE",
             (long long)id);
    admin_exec(admin, sql);
    mn_err err = {{0}};
    cr_assert_eq(store_run_cancel_queued(s, id, &err), STORE_UNAVAILABLE,
                 "%s", err.msg);
    cr_assert(strstr(err.msg, "statement timeout"), "%s", err.msg);
    admin_exec(admin, "ROLLBACK");

    /* the same connection goes on: no transaction left open */
    cr_assert_str_eq(status_of(s, id), "queued");
    cr_assert_eq(store_run_cancel_queued(s, id, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status_of(s, id), "cancelled");
    PQfinish(admin);
    store_close(s);
}

Test(store_pg, a_deadlock_is_unavailable_and_undone_and_the_retry_succeeds)
{
    PG_ONLY();
    /* the store checks for deadlocks after 2 s of waiting, admin after
     * 60 s: admin's wait starts well within the store's 2 s, so the
     * store's backend finds the cycle and is the one aborted */
    char uri[1200];
    store_uri(uri, sizeof uri, "-cdeadlock_timeout%3D2s", NULL);
    store *s = open_uri(uri);
    int64_t id = make_run(s);
    PGconn *admin = admin_open();

    /* admin holds confusions; the store's test_put locks the run's row,
     * updates it, then waits for confusions; admin then asks for the
     * run's row: a cycle */
    admin_exec(admin, "SET deadlock_timeout = '60s'");
    admin_exec(admin, "BEGIN");
    admin_exec(admin, "LOCK TABLE confusions IN EXCLUSIVE MODE");
    call c = {.s = s, .id = id};
    cr_assert_eq(pthread_create(&c.t, NULL, test_put_main, &c), 0);
    wait_store_blocked(admin);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT 1 FROM runs WHERE id = %lld FOR UPDATE",
             (long long)id);
    cr_assert_eq(PQsendQuery(admin, sql), 1, "%s", PQerrorMessage(admin));
    pthread_join(c.t, NULL);
    cr_assert_eq(c.rc, STORE_UNAVAILABLE, "%d: %s", c.rc, c.err.msg);
    cr_assert(strstr(c.err.msg, "deadlock"), "%s", c.err.msg);
    /* admin got the row once the store's transaction was rolled back */
    PGresult *r;
    while ((r = PQgetResult(admin))) {
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s",
                     PQresultErrorMessage(r));
        PQclear(r);
    }
    admin_exec(admin, "ROLLBACK");

    /* the store's update of the run was rolled back with it */
    store_run run;
    mn_err err = {{0}};
    cr_assert_eq(store_run_get(s, id, &run, &err), 0, "%s", err.msg);
    cr_assert(isnan(run.test_accuracy), "%g", run.test_accuracy);
    store_run_free(&run);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM confusions WHERE run_id = %lld",
             (long long)id);
    cr_assert_eq(admin_int(admin, sql), 0);

    /* the retry (the pool's, or the client's after a 503) does it all */
    test_put_main(&c);
    cr_assert_eq(c.rc, 0, "%s", c.err.msg);
    cr_assert_eq(store_run_get(s, id, &run, &err), 0, "%s", err.msg);
    cr_assert_float_eq(run.test_accuracy, 0.7, 1e-12);
    store_run_free(&run);
    cr_assert_eq(admin_int(admin, sql), 1);
    PQfinish(admin);
    store_close(s);
}

/* --------------------------------------------------- the server goes away */

Test(store_pg, the_server_restarted_under_an_open_store_costs_nothing)
{
    PG_ONLY();
    const char *dir = getenv("MNISTD_TEST_PG_DIR");
    cr_assert(dir && *dir, "MNISTD_TEST_PG_DIR (scripts/pg-temp.sh run)");
    store *s = open_uri(db_uri);
    int64_t a = make_run(s), b = make_run(s);
    mn_err err = {{0}};
    cr_assert_eq(store_run_cancel_queued(s, a, &err), 0, "%s", err.msg);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "scripts/pg-temp.sh restart '%s'", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);

    /* the next calls reconnect; everything committed before is there */
    cr_assert_str_eq(status_of(s, a), "cancelled");
    cr_assert_str_eq(status_of(s, b), "queued");
    int64_t n = 0;
    cr_assert_eq(store_run_count(s, NULL, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    int64_t c = make_run(s);
    cr_assert_gt(c, b);
    store_close(s);
}

Test(store_pg, a_server_refusing_connections_is_unavailable_until_back)
{
    PG_ONLY();
    /* a role of this test's own: refusing its log-ins (NOLOGIN) makes the
     * server unreachable for the store alone */
    char role[40], sql[256], uri[1200];
    snprintf(role, sizeof role, "r%ld", (long)getpid());
    PGconn *admin = admin_open();
    snprintf(sql, sizeof sql,
             "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN SUPERUSER", role,
             role);
    admin_exec(admin, sql);
    store_close(open_uri(db_uri)); /* the tables are not the role's */
    store_uri(uri, sizeof uri, NULL, role);
    store *s = open_uri(uri);
    int64_t id = make_run(s);

    snprintf(sql, sizeof sql, "ALTER ROLE %s NOLOGIN", role);
    admin_exec(admin, sql);
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE usename = '%s'", role);
    admin_exec(admin, sql);
    snprintf(sql, sizeof sql,
             "SELECT (count(*) = 0)::int FROM pg_stat_activity"
             " WHERE usename = '%s'", role);
    wait_until(admin, sql);

    /* a read and a write: both unavailable (a 503), each tries to
     * reconnect, neither changes anything */
    store_run r;
    mn_err err = {{0}};
    cr_assert_eq(store_run_get(s, id, &r, &err), STORE_UNAVAILABLE, "%s",
                 err.msg);
    cr_assert(strstr(err.msg, "not permitted to log in"), "%s", err.msg);
    err.msg[0] = 0;
    cr_assert_eq(store_run_cancel_queued(s, id, &err), STORE_UNAVAILABLE,
                 "%s", err.msg);
    cr_assert(strstr(err.msg, "not permitted to log in"), "%s", err.msg);

    snprintf(sql, sizeof sql, "ALTER ROLE %s LOGIN", role);
    admin_exec(admin, sql);
    cr_assert_str_eq(status_of(s, id), "queued");
    cr_assert_eq(store_run_cancel_queued(s, id, &err), 0, "%s", err.msg);
    cr_assert_str_eq(status_of(s, id), "cancelled");
    store_close(s);
    snprintf(sql, sizeof sql, "DROP ROLE %s", role);
    admin_exec(admin, sql);
    PQfinish(admin);
}

/* ------------------------------------------------------- the driver itself */

Test(store_pg, columns_of_every_numeric_type_read_back_as_written)
{
    PG_ONLY();
    store *s = open_uri(db_uri);
    const store_driver *d = s->drv;
    st_stmt *st = NULL;
    cr_assert_eq(d->prepare(s->conn,
                            "SELECT ?1::real AS f4, ?2::float8 AS f8,"
                            " 7::int2 AS i2, -8::int4 AS i4, ?3::int8 AS i8,"
                            " true AS b, 2.5::numeric AS n, NULL::int8 AS z",
                            &st),
                 0, "%s", d->errmsg(s->conn));
    cr_assert_eq(d->bind_double(st, 1, 0.25), 0);
    cr_assert_eq(d->bind_double(st, 2, -1.0 / 3.0), 0);
    cr_assert_eq(d->bind_int64(st, 3, INT64_MIN + 1), 0);
    cr_assert_eq(d->step(st), 1, "%s", d->errmsg(s->conn));

    cr_assert_str_eq(d->col_name(st, 0), "f4");
    cr_assert_str_eq(d->col_name(st, 99), "?");
    cr_assert_eq(d->col_type(st, 0), ST_REAL);
    cr_assert_eq(d->col_double(st, 0), 0.25);
    cr_assert_eq(d->col_int64(st, 0), 0); /* (int64_t)0.25 */
    cr_assert_eq(d->col_double(st, 1), -1.0 / 3.0); /* bit for bit */
    cr_assert_eq(d->col_type(st, 2), ST_INTEGER);
    cr_assert_eq(d->col_double(st, 2), 7.0);
    cr_assert_eq(d->col_double(st, 3), -8.0);
    cr_assert_eq(d->col_int64(st, 4), INT64_MIN + 1);
    cr_assert_eq(d->col_double(st, 5), 1.0);
    /* numeric arrives as PostgreSQL's binary numeric: not a number the
     * driver reads (the store never selects one) */
    cr_assert_eq(d->col_type(st, 6), ST_TEXT);
    cr_assert_eq(d->col_double(st, 6), 0.0);
    cr_assert_eq(d->col_type(st, 7), ST_NULL);
    cr_assert_eq(d->col_double(st, 7), 0.0);
    cr_assert_eq(d->col_int64(st, 7), 0);
    cr_assert_null(d->col_text(st, 7));
    cr_assert_eq(d->col_bytes(st, 7), 0);
    cr_assert_eq(d->col_type(st, 8), ST_NULL); /* past the last column */
    cr_assert_eq(d->step(st), 0);
    d->finalize(st);
    d->finalize(NULL);
    store_close(s);
}

Test(store_pg, a_parameter_past_32_and_a_blob_over_2_gib_are_refused)
{
    PG_ONLY();
    store *s = open_uri(db_uri);
    const store_driver *d = s->drv;
    st_stmt *st = NULL;
    cr_assert_eq(d->prepare(s->conn, "SELECT ?33", &st), -1);
    cr_assert_null(st);
    cr_assert(strstr(d->errmsg(s->conn), "?1..?32"), "%s",
              d->errmsg(s->conn));
    cr_assert_eq(d->transient(s->conn), 0);

    cr_assert_eq(d->prepare(s->conn, "SELECT length(?1)", &st), 0);
    /* the size is checked before the bytes are read: none are */
    static const char one = 1;
    cr_assert_eq(d->bind_blob(st, 1, &one, (size_t)INT_MAX + 1), -1);
    cr_assert(strstr(d->errmsg(s->conn), "2 GiB"), "%s", d->errmsg(s->conn));
    cr_assert_eq(d->transient(s->conn), 0);
    /* an empty BLOB is bytes, not NULL */
    cr_assert_eq(d->bind_blob(st, 1, NULL, 0), 0);
    cr_assert_eq(d->step(st), 1);
    cr_assert_eq(d->col_type(st, 0), ST_INTEGER);
    cr_assert_eq(d->col_int64(st, 0), 0);
    d->finalize(st);
    /* the store still works after the refusals */
    int64_t id = make_run(s);
    cr_assert_str_eq(status_of(s, id), "queued");
    store_close(s);
}

Test(store_pg, server_warnings_are_not_printed, .init = cr_redirect_stderr)
{
    PG_ONLY();
    store *s = open_uri(db_uri);
    /* ROLLBACK outside a transaction: PostgreSQL warns "there is no
     * transaction in progress" */
    cr_assert_eq(s->drv->in_tx(s->conn), 0);
    cr_assert_eq(s->drv->rollback(s->conn), 0);
    cr_assert_eq(s->drv->in_tx(NULL), 0);
    /* the server's housekeeping is PostgreSQL's own (autovacuum) */
    mn_err err = {{0}};
    cr_assert_eq(store_wal_checkpoint(s, &err), 0, "%s", err.msg);
    store_close(s);
    fflush(stderr);
    cr_assert_stderr_eq_str("");
}
