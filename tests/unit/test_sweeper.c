/* test_sweeper.c: the sweep scheduler's steps (server/jobs/sweep.c) on
 * an SQLite store, where the HTTP tests (test_sweeps.py) do not reach: a
 * stored request that no longer parses, a trial whose body the run
 * checks refuse, an unknown or ended sweep, the store out of service,
 * and each allocation failing in turn. A sweep that cannot go on ends
 * "failed" with the reason; a store error is an error and leaves the
 * sweep to the next pass. Each test works in its own temporary directory
 * under /tmp, removed afterwards. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/jobs/sweep.h"
#include "server/store/store.h"
#include "tests/unit/fault.h"
#include "tests/unit/helpers.h"

static char tmp_dir[64];
static char db_path[1024];

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "sweeper");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
}

static void teardown(void) { th_tmpdir_remove(tmp_dir); }

TestSuite(sweeper, .init = setup, .fini = teardown);

/* a valid stored request: two trials of a linear model, one at a time */
#define GOOD "{\"base\": {\"model\": \"linear\", \"steps\": 10, " \
             "\"periods\": 1}, \"space\": {\"learning_rate\": {\"min\": " \
             "0.01, \"max\": 0.1}}, \"trials\": 2, \"parallel\": 1}"

static store *open_db(void)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, db_path, &err), 0, "%s", err.msg);
    return s;
}

static int64_t make_sweep(store *s, const char *params, uint32_t trials)
{
    int64_t id = 0;
    mn_err err = {{0}};
    cr_assert_eq(store_sweep_create(s, params, trials, &id, &err), 0, "%s",
                 err.msg);
    return id;
}

/* The sweep's status into status[16] and its error (or ""). */
static void sweep_state(store *s, int64_t id, char *status, char *error,
                        size_t *trials)
{
    store_sweep w;
    store_run *runs = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_sweep_get(s, id, &w, &runs, trials, &err), 0, "%s",
                 err.msg);
    snprintf(status, 16, "%s", w.status);
    snprintf(error, 256, "%s", w.error ? w.error : "");
    store_runs_free(runs, *trials);
    store_sweep_free(&w);
}

Test(sweeper, a_stored_request_that_no_longer_parses_fails_the_sweep)
{
    store *s = open_db();
    int64_t id = make_sweep(s, "{not json", 2);
    mn_err err = {{0}};
    cr_assert_eq(sweep_advance(NULL, s, id, &err), 0, "%s", err.msg);
    char status[16], error[256];
    size_t n;
    sweep_state(s, id, status, error, &n);
    cr_assert_str_eq(status, "failed");
    cr_assert(strstr(error, "stored params are unreadable"), "%s", error);
    cr_assert_eq(n, 0, "no trial was created");
    /* its trials' early stopping cannot be decided either: they train on */
    char why[128];
    cr_assert_lt(sweep_should_prune(s, id, 1, 1, 2, why, sizeof why, &err),
                 0);
    cr_assert(strstr(err.msg, "unreadable"), "%s", err.msg);
    store_close(s);
}

Test(sweeper, a_trial_the_run_checks_refuse_fails_the_sweep_with_its_reason)
{
    store *s = open_db();
    /* stored without the run checks of POST /sweeps: no steps */
    int64_t id = make_sweep(s,
        "{\"base\": {\"model\": \"linear\", \"steps\": 0}, \"space\": "
        "{\"learning_rate\": {\"min\": 0.01, \"max\": 0.1}}, \"trials\": 2}",
        2);
    mn_err err = {{0}};
    cr_assert_eq(sweep_advance(NULL, s, id, &err), 0, "%s", err.msg);
    char status[16], error[256];
    size_t n;
    sweep_state(s, id, status, error, &n);
    cr_assert_str_eq(status, "failed");
    cr_assert(strstr(error, "trial 0: "), "%s", error);
    cr_assert(strstr(error, "steps"), "%s", error);
    cr_assert_eq(n, 0);
    store_close(s);
}

Test(sweeper, unknown_and_ended_sweeps_are_left_alone)
{
    store *s = open_db();
    mn_err err = {{0}};
    cr_assert_eq(sweep_advance(NULL, s, 999, &err), STORE_NOT_FOUND);
    char why[128];
    cr_assert_eq(sweep_should_prune(s, 999, 1, 1, 2, why, sizeof why, &err),
                 0, "a deleted sweep stops nothing");
    int64_t id = make_sweep(s, GOOD, 2);
    cr_assert_eq(store_sweep_finish(s, id, "cancelled", NULL, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(sweep_advance(NULL, s, id, &err), 0, "%s", err.msg);
    char status[16], error[256];
    size_t n;
    sweep_state(s, id, status, error, &n);
    cr_assert_str_eq(status, "cancelled");
    cr_assert_eq(n, 0);
    store_close(s);
}

Test(sweeper, a_store_out_of_service_is_an_error_and_the_sweep_waits)
{
    store *s = open_db();
    int64_t id = make_sweep(s, GOOD, 2);
    mn_err err = {{0}};
    fault_sqlite_all(1);
    int rc = sweep_advance(NULL, s, id, &err);
    char why[128];
    int pr = sweep_should_prune(s, id, 1, 1, 2, why, sizeof why, &err);
    cr_assert_gt(fault_sqlite_all(0), 0);
    cr_assert_lt(rc, 0);
    cr_assert_lt(pr, 0);
    /* back in service: the next pass creates the first trial */
    cr_assert_eq(sweep_advance(NULL, s, id, &err), 0, "%s", err.msg);
    char status[16], error[256];
    size_t n;
    sweep_state(s, id, status, error, &n);
    cr_assert_str_eq(status, "running");
    cr_assert_eq(n, 1);
    store_close(s);
}

static int advance_new_sweep(void *ctx)
{
    store *s = ctx;
    int64_t id = 0;
    mn_err err = {{0}};
    int rc = store_sweep_create(s, GOOD, 2, &id, &err);
    if (!rc) rc = sweep_advance(NULL, s, id, &err);
    if (rc) cr_assert_neq(err.msg[0], '\0', "an error without a reason");
    return rc;
}

Test(sweeper, each_allocation_failing_is_a_clean_error)
{
    store *s = open_db();
    cr_assert_gt(fault_each(advance_new_sweep, s), 0);
    fault_sqlite(1);
    cr_assert_gt(fault_each(advance_new_sweep, s), 0);
    fault_sqlite(0);
    store_close(s);
}
