/* test_run.c: the run vocabulary of server/jobs/run.c: status names and
 * their round trip, which statuses are ends, the model kinds table and the
 * name lists that error messages quote. */
#include <criterion/criterion.h>

#include <string.h>

#include "server/jobs/run.h"

Test(run, status_names_round_trip)
{
    static const char *const want[RUN_N_STATUSES] = {
        "queued", "running", "succeeded", "failed", "cancelled", "pruned"};
    for (int i = 0; i < RUN_N_STATUSES; i++) {
        cr_assert_str_eq(run_status_name((run_status)i), want[i]);
        run_status s = RUN_N_STATUSES;
        cr_assert_eq(run_status_parse(want[i], &s), 0);
        cr_assert_eq(s, (run_status)i);
    }
    run_status s = RUN_QUEUED;
    cr_assert_eq(run_status_parse("Queued", &s), -1);
    cr_assert_eq(run_status_parse("", &s), -1);
    cr_assert_eq(run_status_parse(NULL, &s), -1);
    cr_assert_eq(s, RUN_QUEUED, "a failed parse leaves *out alone");
    cr_assert_str_eq(run_status_name(RUN_N_STATUSES), "?");
}

Test(run, ended_statuses)
{
    cr_assert_not(run_status_ended(RUN_QUEUED));
    cr_assert_not(run_status_ended(RUN_RUNNING));
    cr_assert(run_status_ended(RUN_SUCCEEDED));
    cr_assert(run_status_ended(RUN_FAILED));
    cr_assert(run_status_ended(RUN_CANCELLED));
    cr_assert(run_status_ended(RUN_PRUNED));
    cr_assert_not(run_status_ended(RUN_N_STATUSES));
}

Test(run, model_kinds)
{
    const run_model_kind *lin = run_model_find("linear");
    const run_model_kind *dnn = run_model_find("dnn");
    cr_assert_not_null(lin);
    cr_assert_not_null(dnn);
    cr_assert_str_eq(lin->name, "linear");
    cr_assert_not(lin->hidden);
    cr_assert_eq(lin->hidden_layers, 0);
    cr_assert_float_eq(lin->learning_rate, 0.03, 1e-12);
    cr_assert(dnn->hidden);
    cr_assert_eq(dnn->hidden_layers, 2);
    cr_assert_eq(dnn->hidden_width, 100);
    cr_assert_float_eq(dnn->learning_rate, 0.05, 1e-12);
    const run_model_kind *cnn = run_model_find("cnn");
    cr_assert_not_null(cnn);
    cr_assert(cnn->hidden && cnn->conv && !dnn->conv);
    cr_assert_eq(cnn->hidden_layers, 1);
    cr_assert_str_eq(cnn->optimizer, "adam");
    cr_assert_null(run_model_find("rnn"));
    cr_assert_null(run_model_find(NULL));
}

Test(run, name_lists)
{
    char buf[128];
    run_status_names(buf, sizeof buf);
    cr_assert_str_eq(buf, "queued, running, succeeded, failed, cancelled, "
                          "pruned");
    run_model_names(buf, sizeof buf, 0, 0);
    cr_assert_str_eq(buf, "linear, dnn or cnn");
    run_model_names(buf, sizeof buf, 1, 0);
    cr_assert_str_eq(buf, "\"linear\", \"dnn\" or \"cnn\"");
    run_model_names(buf, sizeof buf, 1, 1);
    cr_assert_str_eq(buf, "\"dnn\" or \"cnn\"");
    char small[8];
    run_status_names(small, sizeof small);
    cr_assert_eq(strlen(small), sizeof small - 1, "truncated, terminated");
}
