/* test_sweep.c: hyperparameter searches below HTTP: the request's
 * sampling (server/jobs/sweepspec.c: seeded, per trial, within range, log
 * scales, integer fields, the grid's order), the early stopping rules on
 * hand-made curves (the median stopping rule and ASHA against the numbers
 * their definitions give) and numpy's percentile. The store's sweeps
 * (server/store/sweeps.c) are tested in test_store.c, on both backends. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "server/jobs/sweepspec.h"

static sweep_spec parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    sweep_spec s;
    mn_err err = {{0}};
    cr_assert_eq(sweepspec_parse(j, 4, NULL, NULL, &s, &err), 0, "%s", err.msg);
    json_decref(j);
    return s;
}

Test(sweepspec, random_trials_depend_on_seed_and_number_only)
{
    sweep_spec a = parse("{\"base\": {\"model\": \"dnn\"}, \"space\": "
                         "{\"learning_rate\": {\"min\": 0.0005, \"max\": 0.5, "
                         "\"scale\": \"log\"}, \"batch_size\": {\"min\": 10, "
                         "\"max\": 20}}, \"trials\": 50, \"seed\": 7}");
    sweep_spec b = parse("{\"base\": {\"model\": \"linear\", \"steps\": 5}, "
                         "\"space\": {\"batch_size\": {\"min\": 10, \"max\": 20},"
                         " \"learning_rate\": {\"min\": 0.0005, \"max\": 0.5, "
                         "\"scale\": \"log\"}}, \"trials\": 60, \"seed\": 7}");
    int small = 0, large = 0, ints[11] = {0};
    for (uint32_t t = 0; t < 50; t++) {
        json_t *sa = NULL, *sb = NULL;
        json_t *ra = sweepspec_trial(&a, t, &sa), *rb = sweepspec_trial(&b, t, &sb);
        cr_assert(json_equal(sa, sb), "trial %u differs", t);
        cr_assert(json_equal(json_object_get(ra, "seed"),
                             json_object_get(rb, "seed")));
        double lr = json_real_value(json_object_get(sa, "learning_rate"));
        cr_assert(lr >= 0.0005 && lr <= 0.5);
        small += lr < 0.0158;   /* the log scale's midpoint */
        large += lr > 0.0158;
        json_t *bs = json_object_get(sa, "batch_size");
        cr_assert(json_is_integer(bs));
        cr_assert(json_integer_value(bs) >= 10 && json_integer_value(bs) <= 20);
        ints[json_integer_value(bs) - 10]++;
        json_decref(ra);
        json_decref(rb);
        json_decref(sa);
        json_decref(sb);
    }
    /* log-uniform: both halves of the log range are drawn (a linear draw
     * would put about 3% below the midpoint) */
    cr_assert(small >= 10 && large >= 10, "%d below, %d above", small, large);
    int seen = 0;
    for (int i = 0; i < 11; i++) seen += ints[i] > 0;
    cr_assert_geq(seen, 8, "integers 10..20 both ends included");
    cr_assert_null(sweepspec_trial(&a, 50, NULL));
    sweepspec_free(&a);
    sweepspec_free(&b);
}

Test(sweepspec, another_seed_other_values_and_run_seeds)
{
    sweep_spec a = parse("{\"base\": {\"model\": \"dnn\"}, \"space\": "
                         "{\"dropout\": {\"min\": 0, \"max\": 0.5}}, \"seed\": 1}");
    sweep_spec b = parse("{\"base\": {\"model\": \"dnn\"}, \"space\": "
                         "{\"dropout\": {\"min\": 0, \"max\": 0.5}}, \"seed\": 2}");
    json_t *ra = sweepspec_trial(&a, 0, NULL), *rb = sweepspec_trial(&b, 0, NULL);
    cr_assert_not(json_equal(json_object_get(ra, "dropout"),
                             json_object_get(rb, "dropout")));
    cr_assert_not(json_equal(json_object_get(ra, "seed"),
                             json_object_get(rb, "seed")));
    json_decref(ra);
    json_decref(rb);
    /* a base seed is every trial's */
    sweep_spec c = parse("{\"base\": {\"model\": \"dnn\", \"seed\": 9}, "
                         "\"space\": {\"dropout\": {\"values\": [0, 0.1]}}, "
                         "\"seed\": 2}");
    for (uint32_t t = 0; t < 3; t++) {
        json_t *r = sweepspec_trial(&c, t, NULL);
        cr_assert_eq(json_integer_value(json_object_get(r, "seed")), 9);
        json_decref(r);
    }
    sweepspec_free(&a);
    sweepspec_free(&b);
    sweepspec_free(&c);
}

Test(sweepspec, grid_is_the_product_in_name_order_last_fastest)
{
    sweep_spec g = parse("{\"base\": {\"model\": \"dnn\"}, \"algorithm\": "
                         "\"grid\", \"space\": {\"steps\": {\"values\": [1, 2, "
                         "3]}, \"batch_size\": {\"values\": [5, 6]}}}");
    cr_assert_eq(g.trials, 6);
    static const int want[6][2] = {{5, 1}, {5, 2}, {5, 3},
                                   {6, 1}, {6, 2}, {6, 3}};
    for (uint32_t t = 0; t < 6; t++) {
        json_t *sm = NULL, *r = sweepspec_trial(&g, t, &sm);
        cr_assert_eq(json_integer_value(json_object_get(sm, "batch_size")),
                     want[t][0]);
        cr_assert_eq(json_integer_value(json_object_get(sm, "steps")),
                     want[t][1]);
        json_decref(sm);
        json_decref(r);
    }
    sweepspec_free(&g);
}

Test(sweepspec, round_trip_of_the_resolved_request)
{
    sweep_spec a = parse("{\"base\": {\"model\": \"dnn\"}, \"space\": "
                         "{\"learning_rate\": {\"min\": 0.001, \"max\": 0.3, "
                         "\"scale\": \"log\"}}, \"early_stopping\": {\"rule\": "
                         "\"asha\"}, \"objective\": \"validation_log_loss\"}");
    json_t *j = sweepspec_to_json(&a);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_not_null(strstr(text, "\"early_stopping\":{\"grace_periods\":1,"
                                    "\"reduction_factor\":3,\"rule\":\"asha\"}"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "\"parallel\":2"), "%s", text);
    cr_assert_not_null(strstr(text, "\"trials\":10"), "%s", text);
    sweep_spec b = parse(text);
    json_t *j2 = sweepspec_to_json(&b);
    cr_assert(json_equal(j, j2));
    cr_assert_eq(b.seed, a.seed);
    cr_assert_not(b.maximize);
    free(text);
    json_decref(j);
    json_decref(j2);
    sweepspec_free(&a);
    sweepspec_free(&b);
}

Test(sweepspec, percentile_is_numpys_linear)
{
    double x[] = {4, 1, 3, 2};
    /* numpy.percentile([1, 2, 3, 4], q) */
    cr_assert_float_eq(sweepspec_percentile(x, 4, 50), 2.5, 1e-12);
    cr_assert_float_eq(sweepspec_percentile(x, 4, 100.0 * 2 / 3), 3.0, 1e-12);
    cr_assert_float_eq(sweepspec_percentile(x, 4, 75), 3.25, 1e-12);
    cr_assert_float_eq(sweepspec_percentile(x, 4, 0), 1.0, 1e-12);
    cr_assert_float_eq(sweepspec_percentile(x, 1, 90), 1.0, 1e-12);
    cr_assert(isnan(sweepspec_percentile(x, 0, 50)));
}

static sweep_curve curve(const double *v, uint32_t n)
{
    return (sweep_curve){v, n};
}

Test(sweepspec, median_stopping_rule)
{
    sweep_spec s = parse("{\"base\": {\"model\": \"dnn\"}, \"space\": "
                         "{\"dropout\": {\"values\": [0]}}, \"early_stopping\": "
                         "{\"rule\": \"median\", \"grace_periods\": 2}}");
    /* others' running averages at period 2: (0.5+0.7)/2 = 0.6, 0.8, 0.9:
     * median 0.8 */
    double o1[] = {0.5, 0.7, 0.9}, o2[] = {0.8, 0.8}, o3[] = {0.85, 0.95};
    sweep_curve others[] = {curve(o1, 3), curve(o2, 2), curve(o3, 2)};
    double bad[] = {0.70, 0.79}, good[] = {0.81, 0.5}, tie[] = {0.8, 0.3};
    char why[256];
    cr_assert(sweepspec_prune(&s, curve(bad, 2), 10, others, 3, why, sizeof why));
    cr_assert_not_null(strstr(why, "median 0.8000 of 3"), "%s", why);
    /* its best (0.81), not its last, counts; a tie is not worse */
    cr_assert_not(sweepspec_prune(&s, curve(good, 2), 10, others, 3, why, sizeof why));
    cr_assert_not(sweepspec_prune(&s, curve(tie, 2), 10, others, 3, why, sizeof why));
    /* within the grace periods, at the last period, or with fewer than
     * min_trials (3) others at that period: never */
    cr_assert_not(sweepspec_prune(&s, curve(bad, 1), 10, others, 3, why, sizeof why));
    cr_assert_not(sweepspec_prune(&s, curve(bad, 2), 2, others, 3, why, sizeof why));
    cr_assert_not(sweepspec_prune(&s, curve(bad, 2), 10, others, 2, why, sizeof why));
    double short3[] = {0.1, 0.1, 0.1};
    /* at period 3 only o1 has three periods */
    cr_assert_not(sweepspec_prune(&s, curve(short3, 3), 10, others, 3, why, sizeof why));
    sweepspec_free(&s);

    /* minimised: worse is higher */
    sweep_spec m = parse("{\"base\": {\"model\": \"dnn\"}, \"space\": "
                         "{\"dropout\": {\"values\": [0]}}, \"objective\": "
                         "\"validation_log_loss\", \"early_stopping\": "
                         "{\"rule\": \"median\", \"min_trials\": 1}}");
    double l1[] = {0.3}, hi[] = {0.5}, lo[] = {0.2};
    sweep_curve lo_others[] = {curve(l1, 1)};
    cr_assert(sweepspec_prune(&m, curve(hi, 1), 5, lo_others, 1, why, sizeof why));
    cr_assert_not(sweepspec_prune(&m, curve(lo, 1), 5, lo_others, 1, why, sizeof why));
    sweepspec_free(&m);
}

Test(sweepspec, asha_at_rungs_only)
{
    sweep_spec s = parse("{\"base\": {\"model\": \"dnn\"}, \"space\": "
                         "{\"dropout\": {\"values\": [0]}}, \"early_stopping\": "
                         "{\"rule\": \"asha\", \"grace_periods\": 1, "
                         "\"reduction_factor\": 3}}");
    /* rungs below period 10: 1, 3, 9 */
    double a[] = {0.5, 0.6, 0.7}, b[] = {0.6, 0.7, 0.8}, c[] = {0.9, 0.9, 0.9};
    sweep_curve others[] = {curve(a, 3), curve(b, 3), curve(c, 3)};
    char why[256];
    /* rung 1: cutoff = percentile([0.5, 0.6, 0.9], 66.67) = 0.7 */
    double x1[] = {0.69}, y1[] = {0.71};
    cr_assert(sweepspec_prune(&s, curve(x1, 1), 10, others, 3, why, sizeof why));
    cr_assert_not_null(strstr(why, "cutoff 0.7000"), "%s", why);
    cr_assert_not(sweepspec_prune(&s, curve(y1, 1), 10, others, 3, why, sizeof why));
    /* period 2 is no rung */
    double x2[] = {0.69, 0.1};
    cr_assert_not(sweepspec_prune(&s, curve(x2, 2), 10, others, 3, why, sizeof why));
    /* rung 3: cutoff = percentile([0.7, 0.8, 0.9], 66.67) = 0.8333 */
    double x3[] = {1, 1, 0.83}, y3[] = {0, 0, 0.84};
    cr_assert(sweepspec_prune(&s, curve(x3, 3), 10, others, 3, why, sizeof why));
    cr_assert_not(sweepspec_prune(&s, curve(y3, 3), 10, others, 3, why, sizeof why));
    /* the first trial at a rung passes it */
    cr_assert_not(sweepspec_prune(&s, curve(x3, 3), 10, NULL, 0, why, sizeof why));
    sweepspec_free(&s);
}

Test(sweepspec, errors_name_the_field)
{
    static const char *const cases[][2] = {
        {"{\"space\": {\"x\": {\"values\": [1]}}}", "space.x"},
        {"{\"space\": {\"dropout\": {\"min\": 0.3, \"max\": 0.1}}}",
         "space.dropout.min"},
        {"{\"space\": {\"dropout\": {\"min\": 0, \"max\": 0.1, \"scale\": "
         "\"log\"}}}", "space.dropout.min"},
        {"{\"space\": {\"dropout\": {\"values\": []}}}", "space.dropout.values"},
        {"{\"space\": {\"dropout\": {\"values\": [0]}}, \"trials\": 1001}",
         "trials"},
        {"{\"space\": {\"dropout\": {\"values\": [0]}}, \"parallel\": 5}",
         "parallel"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i][0], 0, NULL);
        sweep_spec s;
        mn_err err = {{0}};
        cr_assert_eq(sweepspec_parse(j, 4, NULL, NULL, &s, &err), -1);
        cr_assert_not_null(strstr(err.msg, cases[i][1]), "%s: %s", cases[i][1],
                           err.msg);
        json_decref(j);
    }
}
