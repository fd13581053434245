/* test_pool.c: the worker pool's error paths (server/jobs/pool.c) with
 * real training on a small uploaded dataset: a store out of service in the
 * middle of a run (every SQLite allocation of every thread failing for a
 * while: the writes are retried with backoff and the run ends as if
 * nothing happened), a shutdown while the store is out (the run stays for
 * start-up recovery and then resumes), permanent store errors at a period
 * write, at the end and at the trimming of checkpoints (triggers that
 * abort them), checkpoints that cannot be written, are dropped or come
 * back corrupt, a dataset that cannot be loaded (the run waits), and the
 * list of cancels for runs not yet in a slot. */
#include <criterion/criterion.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/app.h"
#include "server/jobs/events.h"
#include "server/jobs/pool.h"
#include "server/serving/dsreg.h"
#include "server/store/store.h"
#include "server/telemetry/metrics.h"
#include "tests/unit/fault.h"
#include "tests/unit/helpers.h"

static char tmp_dir[64];
static char db_path[128];

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "pool");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
}

static void teardown(void)
{
    fault_sqlite_all(0);
    th_tmpdir_remove(tmp_dir);
}

TestSuite(pool, .init = setup, .fini = teardown);

static void nap_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* An app with what a worker uses: the store's path, a dataset registry
 * over data_dir, an event hub and metrics; checkpoints at every period. */
static app *app_make(const char *data_dir)
{
    app *a = calloc(1, sizeof *a);
    cr_assert_not_null(a);
    a->cfg.db_path = db_path;
    a->cfg.data_dir = data_dir;
    a->cfg.checkpoint_interval = 0;
    a->cfg.lease_seconds = 10;
    snprintf(a->node_name, sizeof a->node_name, "pool-test");
    pthread_mutex_init(&a->db_mu, NULL);
    a->datasets = dsreg_new(data_dir);
    a->events = ev_hub_new(15, NULL, NULL);
    a->metrics = metrics_new(1);
    cr_assert(a->datasets && a->events && a->metrics);
    return a;
}

static void app_free(app *a)
{
    app_db_close_all(a);
    free(a->db_free);
    ev_hub_free(a->events);
    metrics_free(a->metrics);
    dsreg_free(a->datasets);
    pthread_mutex_destroy(&a->db_mu);
    free(a);
}

static store *open_db(void)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, db_path, &err), 0, "%s", err.msg);
    return s;
}

/* Uploads "tiny": 100 examples whose class shows in their pixels. */
static void upload_tiny(store *s)
{
    enum { N = 100 };
    ds_dataset d = {.n = N, .rows = DS_ROWS, .cols = DS_COLS};
    d.pixels = calloc((size_t)N * DS_PIXELS, 1);
    d.labels = calloc(N, 1);
    cr_assert(d.pixels && d.labels);
    for (uint32_t i = 0; i < N; i++) {
        d.labels[i] = (uint8_t)(i % 10);
        for (int j = 0; j < DS_PIXELS; j++)
            d.pixels[(size_t)i * DS_PIXELS + j] =
                (uint8_t)(j % 10 == d.labels[i] ? 200 : (i * 31 + j) % 50);
    }
    mn_err err = {{0}};
    cr_assert_eq(store_dataset_put(s, "tiny", &d, &err), 0, "%s", err.msg);
    ds_free(&d);
}

/* Queues a linear run on dataset of `steps` steps in `periods` periods. */
static int64_t queue_run(store *s, const char *dataset, uint32_t steps,
                         uint32_t periods)
{
    char params[256];
    snprintf(params, sizeof params,
             "{\"model\": \"linear\", \"dataset\": \"%s\", \"steps\": %u,"
             " \"periods\": %u, \"batch_size\": 10, \"examples\": 100,"
             " \"validation_examples\": 20, \"seed\": 7}",
             dataset, steps, periods);
    mn_err err = {{0}};
    int64_t id;
    cr_assert_eq(store_run_create(s, NULL, 0, "linear", dataset, params, steps,
                                  periods, NULL, &id, &err),
                 0, "%s", err.msg);
    return id;
}

/* Reads run id (the test fails if it cannot). */
static store_run get_run(store *s, int64_t id)
{
    store_run r;
    mn_err err = {{0}};
    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    return r;
}

/* Waits until run id has ended (or shows a waiting reason, when waiting
 * is set) and returns it. Fails the test after 5 minutes. */
static store_run wait_run(store *s, int64_t id, int waiting)
{
    for (int t = 0; t < 30000; t++) {
        store_run r = get_run(s, id);
        if (run_status_ended(r.status) || (waiting && r.waiting)) return r;
        store_run_free(&r);
        nap_ms(10);
    }
    cr_assert_fail("run %lld did not end", (long long)id);
    return (store_run){0};
}

/* Every period 1..n of run id is stored, in order. */
static void assert_periods(store *s, int64_t id, uint32_t n)
{
    train_period *ps = NULL;
    size_t k = 0;
    mn_err err = {{0}};
    cr_assert_eq(store_periods_get(s, id, &ps, &k, &err), 0, "%s", err.msg);
    cr_assert_eq(k, n, "%zu periods stored, not %u", k, n);
    for (size_t i = 0; i < k; i++) cr_assert_eq(ps[i].period, i + 1);
    free(ps);
}

/* Waits until the pool trains run id at period >= period (read from the
 * pool, not from the store); 0 when the run left the pool first. */
static int wait_period(pool *p, int64_t id, uint32_t period)
{
    for (int t = 0; t < 300000; t++) {
        uint32_t step, per;
        if (pool_progress(p, id, &step, &per) && per >= period) return 1;
        nap_ms(1);
    }
    return 0;
}

/* Turns the store off for every thread until the pool's worker has met
 * it (a store call of the worker failed), then ms more; then on again. */
static long store_outage(long ms)
{
    fault_sqlite_all(1);
    long refused = 0;
    for (int t = 0; t < 60000 && !(refused = fault_sqlite_all(1)); t++)
        nap_ms(1);
    cr_assert_gt(refused, 0, "no store call was made during the outage");
    nap_ms(ms);
    return fault_sqlite_all(0);
}

Test(pool, a_store_out_of_service_mid_run_is_retried_and_the_run_ends_whole,
     .timeout = 300)
{
    store *s = open_db();
    upload_tiny(s);
    int64_t id = queue_run(s, "tiny", 4000, 10);
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    cr_assert(wait_period(p, id, 1), "the run never reached its first period");
    /* out for long enough that a write is tried again more than once
     * (naps of 100 ms, then 200 ms) */
    store_outage(450);
    store_run r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s: %s", run_status_name(r.status),
                 r.error ? r.error : "");
    cr_assert_eq(r.period, 10);
    store_run_free(&r);
    assert_periods(s, id, 10);
    pool_stop(p);
    app_free(a);
    store_close(s);
}

/* Past the retry budget (30 s, pool.c) the run goes back to the queue
 * with the reason, and once the store is back it resumes from its
 * checkpoint to the end. */
Test(pool, a_store_out_past_the_retry_budget_puts_the_run_back_in_the_queue,
     .timeout = 300)
{
    store *s = open_db();
    upload_tiny(s);
    int64_t id = queue_run(s, "tiny", 4000, 10);
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    cr_assert(wait_period(p, id, 1), "the run never reached its first period");
    /* tries at 0, 0.1, 0.3, ... 26.3 s (naps doubling to 5 s), then at
     * 31.3 s, past the budget: an outage of 34 s outlasts it */
    store_outage(34000);
    /* back in the queue to wait, or already claimed again */
    store_run r = wait_run(s, id, 1);
    if (r.waiting)
        cr_assert_not_null(strstr(r.waiting, "store unavailable"), "%s",
                           r.waiting);
    store_run_free(&r);
    r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s: %s", run_status_name(r.status),
                 r.error ? r.error : "");
    cr_assert_geq(r.waits, 1, "the run was never put back");
    store_run_free(&r);
    assert_periods(s, id, 10);
    pool_stop(p);
    app_free(a);
    store_close(s);
}

/* A run whose stored parameters its dataset cannot satisfy (more examples
 * than it holds) fails with the reason. */
Test(pool, a_run_its_dataset_cannot_satisfy_fails, .timeout = 120)
{
    store *s = open_db();
    upload_tiny(s);
    mn_err err = {{0}};
    int64_t id;
    cr_assert_eq(
        store_run_create(s, NULL, 0, "linear", "tiny",
                         "{\"model\": \"linear\", \"dataset\": \"tiny\","
                         " \"steps\": 10, \"examples\": 500}",
                         10, 10, NULL, &id, &err),
        0, "%s", err.msg);
    app *a = app_make(tmp_dir);
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    store_run r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_FAILED, "%s", run_status_name(r.status));
    cr_assert_not_null(r.error);
    cr_assert_not_null(strstr(r.error, "examples"), "%s", r.error);
    store_run_free(&r);
    pool_stop(p);
    app_free(a);
    store_close(s);
}

Test(pool, the_store_out_at_claim_time_delays_the_claim, .timeout = 300)
{
    store *s = open_db();
    upload_tiny(s);
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    /* the worker opens its connection, then finds the store out */
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    nap_ms(100);
    int64_t id = queue_run(s, "tiny", 50, 2);
    fault_sqlite_all(1);
    pool_notify(p);
    for (int t = 0; t < 60000 && !fault_sqlite_all(1); t++) nap_ms(1);
    cr_assert_gt(fault_sqlite_all(0), 0);
    pool_notify(p);
    store_run r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s", run_status_name(r.status));
    store_run_free(&r);
    pool_stop(p);
    app_free(a);
    store_close(s);
}

Test(pool, a_shutdown_while_the_store_is_out_leaves_the_run_to_recovery,
     .timeout = 300)
{
    store *s = open_db();
    upload_tiny(s);
    int64_t id = queue_run(s, "tiny", 4000, 10);
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    cr_assert(wait_period(p, id, 1));
    fault_sqlite_all(1);
    for (int t = 0; t < 60000 && !fault_sqlite_all(1); t++) nap_ms(1);
    /* the worker is retrying a write: the stop ends its naps, and it can
     * neither store the end nor put the run back */
    pool_stop(p);
    cr_assert_gt(fault_sqlite_all(0), 0);

    store_run r = get_run(s, id);
    cr_assert_eq(r.status, RUN_RUNNING, "%s", run_status_name(r.status));
    uint32_t stored = r.period;
    store_run_free(&r);
    cr_assert_lt(stored, 10);
    /* the next start recovers it (its node's leases expire at start, and
     * the reaper requeues it), and it resumes to the end */
    int n = 0;
    cr_assert_eq(store_lease_expire(s, "pool-test", &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s", run_status_name(r.status));
    store_run_free(&r);
    assert_periods(s, id, 10);
    pool_stop(p);
    app_free(a);
    store_close(s);
}

/* Runs sql on the database through a connection of its own. */
static void exec_sql(const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s", msg);
    sqlite3_close(db);
}

Test(pool, permanent_store_errors_fail_the_run_or_leave_it_to_recovery,
     .timeout = 300)
{
    store *s = open_db();
    upload_tiny(s);
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);

    /* a period that cannot be written: the run fails, saying why */
    exec_sql("CREATE TRIGGER no_periods BEFORE INSERT ON periods"
             " BEGIN SELECT RAISE(ABORT, 'injected: no periods'); END");
    int64_t id = queue_run(s, "tiny", 40, 2);
    pool_notify(p);
    store_run r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_FAILED, "%s", run_status_name(r.status));
    cr_assert_not_null(r.error);
    cr_assert_not_null(strstr(r.error, "injected: no periods"), "%s", r.error);
    store_run_free(&r);
    exec_sql("DROP TRIGGER no_periods");

    /* checkpoints that cannot be trimmed: the run still succeeds, with
     * its full checkpoint. The trigger aborts the one statement only the
     * trim runs (store_checkpoint_retain clears the run's best loss): a
     * period's checkpoint is an upsert, which fires UPDATE triggers on
     * checkpoints too. */
    exec_sql("CREATE TRIGGER no_trim BEFORE UPDATE OF best_validation_log_loss"
             " ON runs WHEN NEW.best_validation_log_loss IS NULL"
             " AND OLD.best_validation_log_loss IS NOT NULL"
             " BEGIN SELECT RAISE(ABORT, 'injected: no trim'); END");
    id = queue_run(s, "tiny", 40, 2);
    pool_notify(p);
    r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s", run_status_name(r.status));
    store_run_free(&r);
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t step;
    cr_assert_eq(store_checkpoint_get(s, id, "latest", &buf, &len, &step, &err),
                 0, "%s", err.msg);
    free(buf);
    cr_assert_eq(step, 40);
    exec_sql("DROP TRIGGER no_trim");

    /* an end that cannot be written: the run stays running (start-up
     * recovery requeues it), and the worker goes on with the next */
    exec_sql("CREATE TRIGGER no_end BEFORE UPDATE OF status ON runs"
             " WHEN NEW.status = 'succeeded'"
             " BEGIN SELECT RAISE(ABORT, 'injected: no end'); END");
    id = queue_run(s, "tiny", 40, 2);
    int64_t next = queue_run(s, "tiny", 40, 2);
    cr_assert_eq(store_run_cancel_queued(s, next, &err), 0, "%s", err.msg);
    int64_t third = queue_run(s, "tiny", 40, 2);
    pool_notify(p);
    /* the worker moved on: the third run was claimed after the first */
    for (int t = 0; t < 30000; t++) {
        r = get_run(s, third);
        int claimed = r.status != RUN_QUEUED;
        store_run_free(&r);
        if (claimed) break;
        nap_ms(10);
    }
    pool_stop(p);
    r = get_run(s, id);
    cr_assert_eq(r.status, RUN_RUNNING, "%s", run_status_name(r.status));
    cr_assert_eq(r.period, 2);
    store_run_free(&r);
    exec_sql("DROP TRIGGER no_end");
    app_free(a);
    store_close(s);
}

/* What the store does with checkpoints, made to go wrong: a cancel whose
 * checkpoint cannot be written fails the run with the reason; a run whose
 * checkpoints were silently dropped, or stored corrupt, still succeeds
 * (there is nothing to trim, or what is there cannot be read: the trim is
 * skipped and logged). */
Test(pool, checkpoints_that_cannot_be_written_or_read_back, .timeout = 300)
{
    store *s = open_db();
    upload_tiny(s);
    app *a = app_make(tmp_dir);
    a->cfg.checkpoint_interval = 3600;  /* periods store no checkpoint */
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);

    exec_sql("CREATE TRIGGER no_ckpt BEFORE INSERT ON checkpoints"
             " BEGIN SELECT RAISE(ABORT, 'injected: no checkpoint'); END");
    int64_t id = queue_run(s, "tiny", 100000, 10);
    pool_notify(p);
    cr_assert(wait_period(p, id, 1), "the run never reached its first period");
    cr_assert(pool_cancel(p, id));
    store_run r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_FAILED, "%s", run_status_name(r.status));
    cr_assert_not_null(r.error);
    cr_assert_not_null(strstr(r.error, "injected: no checkpoint"), "%s", r.error);
    store_run_free(&r);
    exec_sql("DROP TRIGGER no_ckpt");

    exec_sql("CREATE TRIGGER drop_ckpt BEFORE INSERT ON checkpoints"
             " BEGIN SELECT RAISE(IGNORE); END");
    id = queue_run(s, "tiny", 40, 2);
    pool_notify(p);
    r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s", run_status_name(r.status));
    store_run_free(&r);
    uint8_t *buf = NULL;
    size_t len;
    uint32_t step;
    cr_assert_eq(store_checkpoint_get(s, id, "latest", &buf, &len, &step, &err),
                 STORE_NOT_FOUND);
    exec_sql("DROP TRIGGER drop_ckpt");

    exec_sql("CREATE TRIGGER bad_ckpt AFTER INSERT ON checkpoints"
             " BEGIN UPDATE checkpoints SET data = x'00'"
             " WHERE run_id = NEW.run_id AND kind = NEW.kind; END");
    id = queue_run(s, "tiny", 40, 2);
    pool_notify(p);
    r = wait_run(s, id, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s", run_status_name(r.status));
    store_run_free(&r);
    cr_assert_eq(store_checkpoint_get(s, id, "latest", &buf, &len, &step, &err),
                 0, "%s", err.msg);
    cr_assert_eq(len, 1, "the corrupt checkpoint was trimmed");
    free(buf);
    exec_sql("DROP TRIGGER bad_ckpt");
    pool_stop(p);
    app_free(a);
    store_close(s);
}

Test(pool, a_dataset_that_cannot_be_loaded_makes_the_run_wait, .timeout = 120)
{
    store *s = open_db();
    /* a data dir without MNIST's files */
    app *a = app_make(tmp_dir);
    int64_t id = queue_run(s, "mnist", 40, 2);
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    store_run r = wait_run(s, id, 1);
    cr_assert_eq(r.status, RUN_QUEUED, "%s", run_status_name(r.status));
    cr_assert_not_null(strstr(r.waiting, "dataset unavailable"), "%s", r.waiting);
    cr_assert_eq(r.waits, 1);
    store_run_free(&r);
    pool_stop(p);
    app_free(a);
    store_close(s);
}

/* A connection given back when the pool of idle ones cannot grow (out of
 * memory) is closed instead, and the next acquire opens another. */
Test(pool, a_connection_given_back_without_memory_is_closed)
{
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    store *s = app_db_acquire(a, &err);
    cr_assert_not_null(s, "%s", err.msg);
    fault_arm(1);
    app_db_release(a, s);
    cr_assert(fault_disarm());
    cr_assert_eq(a->db_n, 0);
    s = app_db_acquire(a, &err);
    cr_assert_not_null(s, "%s", err.msg);
    app_db_release(a, s);
    cr_assert_eq(a->db_n, 1);
    app_free(a);
}

Test(pool, cancels_before_a_claim_are_kept_and_the_oldest_give_way,
     .timeout = 120)
{
    store *s = open_db();
    upload_tiny(s);
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    /* ids 1..65 cancelled before they exist: the list keeps the newest
     * 64, so run 1's cancel gives way and run 2's is kept */
    for (int64_t id = 1; id <= 65; id++) cr_assert(pool_cancel(p, id));
    uint32_t step, period;
    cr_assert_not(pool_progress(p, 1, &step, &period));
    cr_assert_eq(pool_busy(p), 0);
    int64_t first = queue_run(s, "tiny", 40, 2);
    int64_t second = queue_run(s, "tiny", 40, 2);
    cr_assert_eq(first, 1);
    cr_assert_eq(second, 2);
    pool_notify(p);
    store_run r = wait_run(s, first, 0);
    cr_assert_eq(r.status, RUN_SUCCEEDED, "%s", run_status_name(r.status));
    store_run_free(&r);
    r = wait_run(s, second, 0);
    cr_assert_eq(r.status, RUN_CANCELLED, "%s", run_status_name(r.status));
    store_run_free(&r);
    pool_stop(p);
    app_free(a);
    store_close(s);
}

/* A lease lost while the node trains (its heartbeat could not renew it;
 * the run was reaped and claimed by another node): pool_fence stops the
 * worker, which stores nothing more of the run, neither a checkpoint nor
 * its end; the other node's claim stands. */
Test(pool, a_run_whose_lease_was_lost_stops_without_storing_anything,
     .timeout = 300)
{
    store *s = open_db();
    upload_tiny(s);
    int64_t id = queue_run(s, "tiny", 400000, 10);
    app *a = app_make(tmp_dir);
    mn_err err = {{0}};
    pool *p = pool_start(a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    cr_assert(wait_period(p, id, 1));
    /* the node is cut off: its lease expires, another node takes the run */
    int n = 0;
    cr_assert_eq(store_lease_expire(s, "pool-test", &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 1);
    cr_assert_eq(store_lease_reap(s, 3, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    store_run r;
    cr_assert_eq(store_run_claim(s, "other", 600, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, id);
    store_run_free(&r);
    pool_fence(p, s, "pool-test");
    for (int t = 0; t < 60000 && pool_busy(p); t++) nap_ms(1);
    cr_assert_eq(pool_busy(p), 0);
    r = get_run(s, id);
    cr_assert_eq(r.status, RUN_RUNNING, "%s", run_status_name(r.status));
    cr_assert_str_eq(r.node, "other");
    cr_assert_eq(r.attempts, 2);
    store_run_free(&r);
    /* no stop checkpoint was written over the other node's: period ends
     * are every 40000 steps, a stop's checkpoint would be at the step it
     * stopped at */
    uint8_t *ck = NULL;
    size_t ck_len = 0;
    uint32_t after = 0;
    int got = store_checkpoint_get(s, id, "latest", &ck, &ck_len, &after, &err);
    free(ck);
    cr_assert(got == 0 || got == STORE_NOT_FOUND, "%s", err.msg);
    cr_assert_eq(after % 40000, 0, "a stop checkpoint at step %u", after);
    pool_stop(p);
    r = get_run(s, id);
    cr_assert_eq(r.status, RUN_RUNNING, "%s", run_status_name(r.status));
    cr_assert_str_eq(r.node, "other");
    store_run_free(&r);
    app_free(a);
    store_close(s);
}
