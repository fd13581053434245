/* test_store_errors.c: every public function of store.h (server/store/)
 * meets SQLite running out of memory at each of its allocations in turn:
 * the unit tests install a counting allocator in SQLite (fault.h,
 * fault_sqlite), and each call runs with its 1st, 2nd, ... allocation
 * failing (SQLite's and the store's own) until it succeeds. Every injected
 * failure must give an error with a reason (< 0, never NOT_FOUND or
 * CONFLICT), leave the database as it was (a write's transaction rolled
 * back: a digest of every table read through another connection is
 * unchanged), leave the connection usable (the next write goes through)
 * and leave no stale classification for the next call (a corrupt row is
 * still -1, not STORE_UNAVAILABLE). Under `make san` ASan also reports
 * any leak on those paths.
 *
 * Beside memory: a database file that this process may only read (a
 * child that gives up root), and errors in the middle of a write
 * transaction raised by the database itself (a trigger that aborts the
 * second statement of a transaction). */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/store/store.h"
#include "tests/unit/fault.h"
#include "tests/unit/helpers.h"

static char tmp_dir[64];
static char db_path[128];       /* the database under test */
static char tpl_path[128];      /* the state each write starts from */

/* In memory (/dev/shm) where there is one: the loops below open, write
 * and close the database thousands of times, and each close syncs. */
static void setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/dev/shm/mnistd-storeerr-XXXXXX");
    if (!mkdtemp(tmp_dir)) th_tmpdir_make(tmp_dir, sizeof tmp_dir, "storeerr");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
    snprintf(tpl_path, sizeof tpl_path, "%s/template.db", tmp_dir);
}

static void teardown(void) { th_tmpdir_remove(tmp_dir); }

TestSuite(store_errors, .init = setup, .fini = teardown);

static store *open_at(const char *path)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, path, &err), 0, "%s", err.msg);
    return s;
}

/* ---- a digest of the database, read through a connection of its own ---- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Every row of every table, as a sum of row hashes (so that the order in
 * which rows come back does not matter). */
static uint64_t digest(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
                 SQLITE_OK);
    sqlite3_stmt *tables = NULL, *rows = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT name FROM sqlite_master WHERE"
                                    " type = 'table' ORDER BY name",
                                    -1, &tables, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    uint64_t total = 0;
    while (sqlite3_step(tables) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(tables, 0);
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", name);
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &rows, NULL), SQLITE_OK,
                     "%s", sqlite3_errmsg(db));
        uint64_t t = fnv(14695981039346656037ull, name, strlen(name));
        while (sqlite3_step(rows) == SQLITE_ROW) {
            uint64_t h = t;
            for (int i = 0; i < sqlite3_column_count(rows); i++) {
                int type = sqlite3_column_type(rows, i);
                h = fnv(h, &type, sizeof type);
                const void *v = sqlite3_column_blob(rows, i);
                h = fnv(h, v, (size_t)sqlite3_column_bytes(rows, i));
            }
            total += h;
        }
        sqlite3_finalize(rows);
        rows = NULL;
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    return total;
}

/* ---- the state every call starts from ---- */

/* Ids of the template's runs. */
typedef struct fixture {
    int64_t served;     /* succeeded, version 1 of model "m", alias prod */
    int64_t running;    /* running on node n1, one period with its
                           checkpoint, its lease expired */
    int64_t failed;     /* failed, with a checkpoint (resumable) */
    int64_t ended;      /* succeeded, no model's version */
    int64_t queued;     /* queued, on the uploaded dataset "up" */
    int64_t sweep;      /* running, trial 0 succeeded with one period */
    int64_t swept;      /* ended, its one trial succeeded (deletable) */
    ds_dataset upload;  /* a dataset to upload (made before any failure) */
} fixture;

static ds_dataset small_dataset(uint32_t n)
{
    ds_dataset d = {.n = n, .rows = DS_ROWS, .cols = DS_COLS};
    d.pixels = calloc((size_t)n * DS_PIXELS, 1);
    d.labels = calloc(n, 1);
    cr_assert(d.pixels && d.labels);
    for (size_t i = 0; i < (size_t)n * DS_PIXELS; i++) d.pixels[i] = (uint8_t)(i * 7);
    for (uint32_t i = 0; i < n; i++) d.labels[i] = (uint8_t)(i % 10);
    return d;
}

static const uint8_t ckpt[200] = {1, 2, 3};

/* Creates a run and claims it (the only queued one). */
static int64_t claimed(store *s)
{
    mn_err err = {{0}};
    int64_t id;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{\"a\":1}", 100,
                                  2, NULL, &id, &err),
                 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, id);
    store_run_free(&r);
    return id;
}

static void add_period(store *s, int64_t id, uint32_t period, double loss)
{
    mn_err err = {{0}};
    train_period p = {.period = period, .step = 50 * period,
                      .train_log_loss = loss, .validation_log_loss = loss,
                      .validation_accuracy = 0.8, .seconds = 0.5};
    eval_result e = {.examples = 100, .accuracy = 0.8, .log_loss = loss};
    e.confusion[3][3] = 80;
    e.confusion[3][5] = 20;
    cr_assert_eq(store_period_add(s, id, &p, &e, ckpt, sizeof ckpt, &err), 0,
                 "%s", err.msg);
}

/* Builds the template database (tpl_path) and returns its runs' ids. */
static fixture make_template(void)
{
    store *s = open_at(tpl_path);
    mn_err err = {{0}};
    fixture f;
    ds_dataset d = small_dataset(5);
    cr_assert_eq(store_dataset_put(s, "up", &d, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "spare", &d, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "bad", &d, &err), 0, "%s", err.msg);
    ds_free(&d);
    cr_assert_eq(store_node_register(s, "n1", 2, &err), 0, "%s", err.msg);
    cr_assert_eq(store_node_register(s, "old", 1, &err), 0, "%s", err.msg);

    f.served = claimed(s);
    add_period(s, f.served, 1, 0.6);
    add_period(s, f.served, 2, 0.7);    /* worse: 'best' stays period 1 */
    eval_result e = {.examples = 100, .accuracy = 0.75, .log_loss = 0.8};
    e.confusion[1][1] = 75;
    e.confusion[1][2] = 25;
    cr_assert_eq(store_test_put(s, f.served, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_finish(s, f.served, RUN_SUCCEEDED, NULL, 0, &err),
                 0, "%s", err.msg);

    f.ended = claimed(s);
    add_period(s, f.ended, 1, 0.5);
    cr_assert_eq(store_run_finish(s, f.ended, RUN_SUCCEEDED, NULL, 0, &err),
                 0, "%s", err.msg);

    f.failed = claimed(s);
    add_period(s, f.failed, 1, 0.5);
    cr_assert_eq(store_run_finish(s, f.failed, RUN_FAILED, "broke", 0, &err),
                 0, "%s", err.msg);

    /* two sweeps, each with one trial that ran and ended */
    for (int k = 0; k < 2; k++) {
        int64_t *w = k ? &f.swept : &f.sweep, trial;
        store_run r;
        cr_assert_eq(store_sweep_create(s, "{}", k ? 1 : 3, w, &err), 0,
                     "%s", err.msg);
        cr_assert_eq(store_sweep_trial_add(s, *w, 0, 1, "linear", "mnist",
                                           "{}", 10, 1, &trial, &err),
                     0, "%s", err.msg);
        cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
        cr_assert_eq(r.id, trial);
        store_run_free(&r);
        add_period(s, trial, 1, 0.5);
        cr_assert_eq(store_run_finish(s, trial, RUN_SUCCEEDED, NULL, 0, &err),
                     0, "%s", err.msg);
    }
    cr_assert_eq(store_sweep_finish(s, f.swept, "succeeded", NULL, &err), 0,
                 "%s", err.msg);

    f.running = claimed(s);
    add_period(s, f.running, 1, 0.5);
    /* its node died: its lease has expired (the reaper would take it) */
    cr_assert_eq(store_lease_expire(s, "n1", NULL, &err), 0, "%s", err.msg);

    cr_assert_eq(store_run_create(s, NULL, 1, "linear", "up", "{}", 10, 1, NULL,
                                  &f.queued, &err),
                 0, "%s", err.msg);

    int64_t v;
    int created;
    cr_assert_eq(store_model_create(s, "m", "digits", &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_create(s, "bare", NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_version_add(s, "m", f.served, &v, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_model_alias_set(s, "m", "prod", v, &created, &err), 0,
                 "%s", err.msg);
    store_close(s);
    /* "bad": a dataset row whose labels were cut short */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(tpl_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE datasets SET labels = x'00'"
                              " WHERE name = 'bad'", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    f.upload = small_dataset(3);
    return f;
}

/* Copies the template over the database under test (its log and shared
 * memory files gone: the last connection to close removed them). */
static void restore(void)
{
    char side[160];
    snprintf(side, sizeof side, "%s-wal", db_path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", db_path);
    unlink(side);
    int in = open(tpl_path, O_RDONLY);
    int out = open(db_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(in >= 0 && out >= 0);
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    cr_assert_eq(n, 0);
    close(in);
    close(out);
}

/* ---- the loop ---- */

/* One call of the store under test: its return code, err filled. */
typedef int (*store_call)(store *s, const fixture *f, mn_err *err);

/* Runs call with its nth allocation failing (SQLite's and the wrapped
 * ones), n = 1, 2, ... until one runs without an injected failure and
 * answers want. writes: each try starts from the template, and a failed
 * try must leave the database as it was. Returns the failures seen. */
static long each_failure(const char *name, store_call call, int want,
                         int writes, const fixture *f)
{
    long failures = 0;
    store *s = NULL;
    restore();
    uint64_t before = writes ? digest() : 0;   /* the template's */
    if (!writes) s = open_at(db_path);
    for (long n = 1; n < FAULT_MAX_N; n++) {
        if (writes) {
            restore();
            s = open_at(db_path);
        }
        mn_err err = {{0}};
        fault_sqlite(1);
        fault_arm(n);
        int rc = call(s, f, &err);
        int fired = fault_disarm();
        fault_sqlite(0);
        if (!fired) {
            cr_assert_eq(rc, want, "%s without a failure: %d (%s)", name, rc,
                         err.msg);
            store_close(s);
            cr_assert_gt(failures, 0, "%s: no injected failure was reported",
                         name);
            return failures;
        }
        if (rc != want) {
            failures++;
            cr_assert_lt(rc, 0, "%s, allocation %ld failed: %d (%s)", name, n,
                         rc, err.msg);
            cr_assert_neq(err.msg[0], '\0', "%s: an error without a reason",
                          name);
            if (writes)
                cr_assert_eq(digest(), before, "%s, allocation %ld failed: "
                             "the database changed (%s)", name, n, err.msg);
            /* the next call starts clean: a corrupt row is -1 (not
             * STORE_UNAVAILABLE left over from this failure) ... */
            mn_err e2 = {{0}};
            ds_dataset bad = {0};
            cr_assert_eq(store_dataset_get(s, "bad", &bad, &e2), -1, "%s, "
                         "allocation %ld: the next call's error was "
                         "misclassified", name, n);
            /* ... and no transaction was left open: writes go through (a
             * run made and gone again) */
            int64_t id;
            cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 1,
                                          1, NULL, &id, &e2),
                         0,
                         "%s, allocation %ld: the "
                         "connection is unusable: %s",
                         name, n, e2.msg);
            cr_assert_eq(store_run_cancel_queued(s, id, &e2), 0, "%s", e2.msg);
            cr_assert_eq(store_run_delete(s, id, &e2), 0, "%s", e2.msg);
        }
        if (writes) {
            store_close(s);
            s = NULL;
        }
    }
    cr_assert_fail("%s still failing after %d injected failures", name,
                   FAULT_MAX_N);
    return -1;
}

/* ---- opening ---- */

Test(store_errors, open_a_fresh_database_and_an_existing_one)
{
    char side[160];
    long failures = 0;
    for (long n = 1;; n++) {
        unlink(db_path);
        snprintf(side, sizeof side, "%s-wal", db_path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", db_path);
        unlink(side);
        store *s = NULL;
        mn_err err = {{0}};
        fault_sqlite(1);
        fault_arm(n);
        int rc = store_open(&s, db_path, &err);
        int fired = fault_disarm();
        fault_sqlite(0);
        if (!fired) {
            cr_assert_eq(rc, 0, "%s", err.msg);
            store_close(s);
            break;
        }
        if (rc) {
            failures++;
            cr_assert_null(s);
            cr_assert_neq(err.msg[0], '\0');
        }
        store_close(s);
        cr_assert_lt(n, FAULT_MAX_N);
    }
    cr_assert_gt(failures, 0);
    /* the file now holds every migration: opening it only reads */
    failures = 0;
    for (long n = 1;; n++) {
        store *s = NULL;
        mn_err err = {{0}};
        fault_sqlite(1);
        fault_arm(n);
        int rc = store_open(&s, db_path, &err);
        int fired = fault_disarm();
        fault_sqlite(0);
        if (!fired) {
            cr_assert_eq(rc, 0, "%s", err.msg);
            cr_assert_gt(store_schema_version(s), 0);
            store_close(s);
            break;
        }
        if (rc) {
            failures++;
            cr_assert_null(s);
            cr_assert_neq(err.msg[0], '\0');
        }
        store_close(s);
        cr_assert_lt(n, FAULT_MAX_N);
    }
    cr_assert_gt(failures, 0);
}

/* ---- reads ---- */

static int read_run(store *s, const fixture *f, mn_err *err)
{
    store_run r;
    int rc = store_run_get(s, f->served, &r, err);
    store_run_free(&r);
    return rc;
}

static int read_lists(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    static const char *const status[] = {NULL, "running", NULL, "succeeded"};
    static const char *const model[] = {NULL, NULL, "dnn", "dnn"};
    for (int i = 0; i < 4; i++) {
        store_run *runs = NULL;
        size_t n = 0;
        train_period *last = NULL;
        int rc = store_run_list(s, status[i], model[i], i ? 10 : -1, 0, &runs,
                                &n, i % 2 ? &last : NULL, err);
        store_runs_free(runs, n);
        free(last);
        if (rc) return rc;
    }
    int64_t n;
    int rc = store_run_count(s, NULL, &n, err);
    if (!rc) rc = store_run_count(s, "queued", &n, err);
    if (!rc && n != 1) return mn_errf(err, "%lld queued", (long long)n);
    return rc;
}

static int read_periods(store *s, const fixture *f, mn_err *err)
{
    train_period *ps = NULL;
    size_t n = 0;
    int rc = store_periods_get(s, f->served, &ps, &n, err);
    free(ps);
    if (rc) return rc;
    ps = NULL;
    rc = store_periods_page(s, f->served, 1, 5, &ps, &n, err);
    free(ps);
    if (!rc && n != 1) return mn_errf(err, "%zu periods after 1", n);
    return rc;
}

static int read_checkpoints(store *s, const fixture *f, mn_err *err)
{
    static const char *const kind[] = {"latest", "best"};
    for (int i = 0; i < 2; i++) {
        uint8_t *buf = NULL;
        size_t len;
        uint32_t step;
        int rc = store_checkpoint_get(s, f->served, kind[i], &buf, &len,
                                      &step, err);
        free(buf);
        if (rc) return rc;
    }
    return 0;
}

static int read_confusions(store *s, const fixture *f, mn_err *err)
{
    eval_result e;
    int rc = store_confusion_get(s, f->served, "validation", &e, err);
    if (!rc) rc = store_confusion_get(s, f->served, "test", &e, err);
    int64_t id;
    if (!rc) rc = store_run_newest_succeeded(s, &id, err);
    return rc;
}

static int read_datasets(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    ds_dataset d = {0};
    int rc = store_dataset_get(s, "up", &d, err);
    ds_free(&d);
    store_dataset_info info;
    if (!rc) rc = store_dataset_info_get(s, "up", &info, err);
    store_dataset_info *all = NULL;
    size_t n = 0;
    if (!rc) rc = store_dataset_list(s, &all, &n, err);
    free(all);
    return rc;
}

static int read_models(store *s, const fixture *f, mn_err *err)
{
    store_model m = {0};
    store_model_version *v = NULL;
    store_model_alias *a = NULL;
    size_t nv = 0, na = 0;
    int rc = store_model_get(s, "m", &m, &v, &nv, &a, &na, err);
    store_model_free(&m);
    free(v);
    free(a);
    if (rc) return rc;
    store_model *ms = NULL;
    size_t n = 0;
    rc = store_model_list(s, &ms, &n, err);
    store_models_free(ms, n);
    if (rc) return rc;
    int64_t run, version;
    rc = store_model_resolve(s, "m", 1, NULL, &run, &version, err);
    if (!rc) rc = store_model_resolve(s, "m", 0, "prod", &run, &version, err);
    if (!rc) rc = store_model_resolve(s, "m", 0, NULL, &run, &version, err);
    char name[64];
    if (!rc) rc = store_run_model_version(s, f->served, name, &version, err);
    if (!rc && run != f->served) return mn_errf(err, "resolved to %lld",
                                                (long long)run);
    return rc;
}

static int read_sweeps(store *s, const fixture *f, mn_err *err)
{
    store_sweep w;
    store_run *trials = NULL;
    size_t n = 0;
    int rc = store_sweep_get(s, f->sweep, &w, &trials, &n, err);
    if (!rc) {
        store_sweep_free(&w);
        store_runs_free(trials, n);
        if (n != 1) return mn_errf(err, "%zu trials", n);
    }
    store_sweep *ws = NULL;
    if (!rc) rc = store_sweep_list(s, -1, 0, &ws, &n, err);
    store_sweeps_free(ws, n);
    int64_t *ids = NULL;
    if (!rc) rc = store_sweep_active(s, &ids, &n, err);
    if (!rc && (n != 1 || ids[0] != f->sweep))
        rc = mn_errf(err, "%zu active", n);
    free(ids);
    store_series *a = NULL;
    if (!rc) rc = store_sweep_series(s, f->sweep, "validation_accuracy", 1,
                                     &a, &n, err);
    if (!rc && n != 1) rc = mn_errf(err, "%zu series", n);
    store_series_free(a, n);
    return rc;
}

Test(store_errors, every_read_out_of_memory)
{
    fixture f = make_template();
    each_failure("run_get", read_run, 0, 0, &f);
    each_failure("run_list", read_lists, 0, 0, &f);
    each_failure("periods", read_periods, 0, 0, &f);
    each_failure("checkpoint_get", read_checkpoints, 0, 0, &f);
    each_failure("confusion_get", read_confusions, 0, 0, &f);
    each_failure("datasets", read_datasets, 0, 0, &f);
    each_failure("models", read_models, 0, 0, &f);
    each_failure("sweeps", read_sweeps, 0, 0, &f);
    ds_free(&f.upload);
}

/* ---- writes ---- */

static int w_create(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int64_t id;
    return store_run_create(s, NULL, 0, "dnn", "mnist", "{\"b\":2}", 10, 1,
                            NULL, &id, err);
}

static int w_create_uploaded(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int64_t id;
    return store_run_create(s, NULL, 1, "dnn", "up", NULL, 10, 1, NULL, &id,
                            err);
}

static int w_claim(store *s, const fixture *f, mn_err *err)
{
    store_run r;
    int rc = store_run_claim(s, "n1", 10, &r, err);
    if (!rc && r.id != f->queued) rc = mn_errf(err, "claimed %lld", (long long)r.id);
    store_run_free(&r);
    return rc;
}

static int w_period_better(store *s, const fixture *f, mn_err *err)
{
    train_period p = {.period = 2, .step = 100, .train_log_loss = 0.3,
                      .validation_log_loss = 0.3, .validation_accuracy = 0.9};
    eval_result e = {.examples = 100, .accuracy = 0.9, .log_loss = 0.3};
    return store_period_add(s, f->running, &p, &e, ckpt, sizeof ckpt, err);
}

static int w_period_worse(store *s, const fixture *f, mn_err *err)
{
    train_period p = {.period = 2, .step = 100, .train_log_loss = 0.9,
                      .validation_log_loss = 0.9, .validation_accuracy = 0.7};
    eval_result e = {.examples = 100, .accuracy = 0.7, .log_loss = 0.9};
    return store_period_add(s, f->running, &p, &e, ckpt, sizeof ckpt, err);
}

static int w_period_paced(store *s, const fixture *f, mn_err *err)
{
    train_period p = {.period = 2, .step = 100, .train_log_loss = NAN,
                      .validation_log_loss = 0.4, .validation_accuracy = 0.7};
    eval_result e = {.examples = 100, .accuracy = 0.7, .log_loss = 0.4};
    return store_period_add(s, f->running, &p, &e, NULL, 0, err);
}

static int w_checkpoint_put(store *s, const fixture *f, mn_err *err)
{
    return store_checkpoint_put(s, f->running, 75, ckpt, sizeof ckpt, err);
}

static int w_retain_params(store *s, const fixture *f, mn_err *err)
{
    return store_checkpoint_retain(s, f->served, ckpt, 20, err);
}

static int w_retain_latest(store *s, const fixture *f, mn_err *err)
{
    return store_checkpoint_retain(s, f->failed, NULL, 0, err);
}

static int w_test_put(store *s, const fixture *f, mn_err *err)
{
    eval_result e = {.examples = 10, .accuracy = 0.5, .log_loss = 1.0};
    e.confusion[0][0] = 5;
    e.confusion[0][1] = 5;
    return store_test_put(s, f->ended, &e, err);
}

static int w_finish(store *s, const fixture *f, mn_err *err)
{
    return store_run_finish(s, f->running, RUN_CANCELLED, "stopped", 60, err);
}

static int w_requeue(store *s, const fixture *f, mn_err *err)
{
    return store_run_requeue(s, f->running, err);
}

static int w_wait(store *s, const fixture *f, mn_err *err)
{
    return store_run_wait(s, f->running, "dataset unavailable", 12345, err);
}

static int w_resume(store *s, const fixture *f, mn_err *err)
{
    int no_checkpoint = 0;
    return store_run_resume(s, f->failed, NULL, &no_checkpoint, err);
}

static int w_lease_expire(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int n = 0;
    int rc = store_lease_expire(s, NULL, &n, err);
    if (!rc && n != 1) rc = mn_errf(err, "%d expired", n);
    return rc;
}

static int w_lease_reap(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int n = 0;
    int rc = store_lease_reap(s, 3, &n, err);
    if (!rc && n != 1) rc = mn_errf(err, "%d reaped", n);
    return rc;
}

static int w_node_register(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    return store_node_register(s, "n2", 1, err);
}

static int w_node_heartbeat(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    return store_node_heartbeat(s, "n1", 1, 10, err);
}

static int w_node_leave(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    return store_node_leave(s, "n1", err);
}

static int w_node_forget(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int n = 0;
    int rc = store_node_forget(s, INT64_MAX, &n, err);
    if (!rc && n != 1) rc = mn_errf(err, "%d forgotten", n);
    return rc;
}

static int w_run_held(store *s, const fixture *f, mn_err *err)
{
    int r = store_run_held(s, f->running, "n1", err);
    if (r == 0) return mn_errf(err, "run %lld not held", (long long)f->running);
    return r == 1 ? 0 : r;
}

static int w_node_list(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    store_node *n = NULL;
    size_t cnt = 0;
    int rc = store_node_list(s, &n, &cnt, err);
    if (!rc && cnt != 2) rc = mn_errf(err, "%zu nodes", cnt);
    free(n);
    return rc;
}

static int w_cancel_queued(store *s, const fixture *f, mn_err *err)
{
    return store_run_cancel_queued(s, f->queued, err);
}

static int w_delete(store *s, const fixture *f, mn_err *err)
{
    return store_run_delete(s, f->ended, err);
}

static int w_dataset_put(store *s, const fixture *f, mn_err *err)
{
    return store_dataset_put(s, "new", &f->upload, err);
}

static int w_dataset_delete(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    return store_dataset_delete(s, "spare", NULL, NULL, err);
}

static int w_dataset_delete_in_use(store *s, const fixture *f, mn_err *err)
{
    int64_t id = 0;
    run_status st;
    int rc = store_dataset_delete(s, "up", &id, &st, err);
    if (rc == STORE_CONFLICT && (id != f->queued || st != RUN_QUEUED))
        return mn_errf(err, "in use by %lld", (long long)id);
    return rc;
}

static int w_model_create(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    return store_model_create(s, "new", "a new model", err);
}

static int w_version_add(store *s, const fixture *f, mn_err *err)
{
    int64_t v = 0;
    int rc = store_model_version_add(s, "m", f->ended, &v, err);
    if (!rc && v != 2) rc = mn_errf(err, "version %lld", (long long)v);
    return rc;
}

static int w_alias_new(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int created = 0;
    int rc = store_model_alias_set(s, "m", "staging", 1, &created, err);
    if (!rc && !created) rc = mn_errf(err, "staging not created");
    return rc;
}

static int w_alias_move(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int created = 1;
    int rc = store_model_alias_set(s, "m", "prod", 1, &created, err);
    if (!rc && created) rc = mn_errf(err, "prod created again");
    return rc;
}

static int w_alias_delete(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    return store_model_alias_delete(s, "m", "prod", err);
}

static int w_model_delete(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    return store_model_delete(s, "m", err);
}

static int w_sweep_create(store *s, const fixture *f, mn_err *err)
{
    (void)f;
    int64_t id;
    return store_sweep_create(s, "{\"trials\":2}", 2, &id, err);
}

static int w_sweep_trial_add(store *s, const fixture *f, mn_err *err)
{
    int64_t run;
    return store_sweep_trial_add(s, f->sweep, 1, 2, "linear", "mnist", "{}",
                                 10, 1, &run, err);
}

static int w_sweep_finish(store *s, const fixture *f, mn_err *err)
{
    return store_sweep_finish(s, f->sweep, "cancelled", "stopped", err);
}

static int w_sweep_delete(store *s, const fixture *f, mn_err *err)
{
    int64_t run = -1;
    return store_sweep_delete(s, f->swept, &run, err);
}

Test(store_errors, every_write_out_of_memory_leaves_the_database_as_it_was,
     .timeout = 600)
{
    fixture f = make_template();
    static const struct {
        const char *name;
        store_call call;
        int want;
    } writes[] = {
        {"run_create", w_create, 0},
        {"run_create_uploaded", w_create_uploaded, 0},
        {"run_claim", w_claim, 0},
        {"period_add (a new best)", w_period_better, 0},
        {"period_add (not the best)", w_period_worse, 0},
        {"period_add (paced: no checkpoint)", w_period_paced, 0},
        {"checkpoint_put", w_checkpoint_put, 0},
        {"checkpoint_retain (parameters)", w_retain_params, 0},
        {"checkpoint_retain (latest kept)", w_retain_latest, 0},
        {"test_put", w_test_put, 0},
        {"run_finish", w_finish, 0},
        {"run_requeue", w_requeue, 0},
        {"run_wait", w_wait, 0},
        {"run_resume", w_resume, 0},
        {"lease_expire", w_lease_expire, 0},
        {"lease_reap", w_lease_reap, 0},
        {"node_register", w_node_register, 0},
        {"node_heartbeat", w_node_heartbeat, 0},
        {"node_leave", w_node_leave, 0},
        {"node_list", w_node_list, 0},
        {"run_held", w_run_held, 0},
        {"node_forget", w_node_forget, 0},
        {"run_cancel_queued", w_cancel_queued, 0},
        {"run_delete", w_delete, 0},
        {"dataset_put", w_dataset_put, 0},
        {"dataset_delete", w_dataset_delete, 0},
        {"dataset_delete (in use)", w_dataset_delete_in_use, STORE_CONFLICT},
        {"model_create", w_model_create, 0},
        {"model_version_add", w_version_add, 0},
        {"model_alias_set (new)", w_alias_new, 0},
        {"model_alias_set (moved)", w_alias_move, 0},
        {"model_alias_delete", w_alias_delete, 0},
        {"model_delete", w_model_delete, 0},
        {"sweep_create", w_sweep_create, 0},
        {"sweep_trial_add", w_sweep_trial_add, 0},
        {"sweep_finish", w_sweep_finish, 0},
        {"sweep_delete", w_sweep_delete, 0},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        each_failure(writes[i].name, writes[i].call, writes[i].want, 1, &f);
    ds_free(&f.upload);
}

/* ---- a database file this process may only read ---- */

/* In a child that gives up root (root may write any file): opening the
 * database and writing to it fail with a reason, or reads still work;
 * nothing crashes. The child's exit status says which check failed. */
Test(store_errors, a_read_only_database_file)
{
    store *s = open_at(db_path);
    mn_err err = {{0}};
    int64_t id;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 10, 1, NULL,
                                  &id, &err),
                 0, "%s", err.msg);
    store_close(s);
    cr_assert_eq(chmod(tmp_dir, 0755), 0);
    cr_assert_eq(chmod(db_path, 0444), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (setgid(65534) || setuid(65534)) _exit(10);
        store *ro = NULL;
        mn_err e = {{0}};
        int rc = store_open(&ro, db_path, &e);
        fprintf(stderr, "read-only open: %d %s\n", rc, e.msg);
        if (rc) _exit(e.msg[0] && !ro && rc < 0 ? 0 : 11);
        int64_t id2;
        rc = store_run_create(ro, NULL, 0, "dnn", "mnist", "{}", 10, 1, NULL,
                              &id2, &e);
        fprintf(stderr, "read-only write: %d %s\n", rc, e.msg);
        if (rc >= 0 || !e.msg[0]) _exit(12);
        store_run r;
        rc = store_run_get(ro, id, &r, &e);
        fprintf(stderr, "read-only read: %d %s\n", rc, e.msg);
        store_run_free(&r);
        store_close(ro);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the child died (status %d)", status);
    cr_assert_eq(WEXITSTATUS(status), 0, "check %d failed in the child",
                 WEXITSTATUS(status));
    chmod(db_path, 0644);
}
