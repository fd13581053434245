/* fuzz_sweep.c: POST /sweeps bodies. The input is JSON text, parsed as
 * http_body_json does (json_loadb with JSON_REJECT_DUPLICATES), then
 * decoded by sweepspec_parse with every run body checked by spec_from_json
 * (the route also loads the dataset; the fuzzer has none).
 *
 * Promises checked: a rejected body comes with a message; an accepted
 * request is within the documented ranges (1..16 searched fields in name
 * order, each a list of 1..1000 values or a range with min <= max and a
 * positive min on a log scale; trials 1..1000, a grid's the product of its
 * lists; parallel 1..the workers); it survives the trip through the store
 * (sweepspec_to_json, dumped as routes_sweeps.c does, parsed again: the
 * same resolved request); and its trials are deterministic, each sampled
 * value within its field's list or range. */
#include <jansson.h>
#include <math.h>

#include "server/jobs/spec.h"
#include "server/jobs/sweepspec.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_SWEEP_WORKERS 4

static int check_spec(const json_t *run, void *ctx, mn_err *err)
{
    (void)ctx;
    run_spec s;
    return spec_from_json(run, &s, err);
}

/* Whether v is one of d's values, or within its range (an integer for an
 * integer field). */
static int dim_holds(const sweep_dim *d, const json_t *v)
{
    if (d->values) {
        for (size_t i = 0; i < json_array_size(d->values); i++)
            if (json_equal(json_array_get(d->values, i), (json_t *)v)) return 1;
        return 0;
    }
    if (d->integer && !json_is_integer(v)) return 0;
    if (!json_is_number(v)) return 0;
    double x = json_number_value(v);
    return x >= d->min && x <= d->max;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS |
                             JSON_REAL_PRECISION(17));
}

static int fuzz_sweep(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
                              &je);
    if (!body) return 0;
    sweep_spec s, s2;
    mn_err err = {{0}};
    if (sweepspec_parse(body, FUZZ_SWEEP_WORKERS, check_spec, NULL, &s,
                        &err)) {
        FUZZ_CHECK(fuzz_msg_ok(err.msg, sizeof err.msg));
        json_decref(body);
        return 0;
    }
    FUZZ_CHECK(s.n_dims >= 1 && s.n_dims <= SWEEP_MAX_DIMS);
    double combos = 1;
    for (size_t i = 0; i < s.n_dims; i++) {
        const sweep_dim *d = &s.dims[i];
        if (i) FUZZ_CHECK(strcmp(s.dims[i - 1].field, d->field) < 0);
        if (d->values) {
            FUZZ_CHECK(json_array_size(d->values) >= 1 &&
                       json_array_size(d->values) <= SWEEP_MAX_VALUES);
            combos *= (double)json_array_size(d->values);
        } else {
            FUZZ_CHECK(s.algorithm == SWEEP_RANDOM);
            FUZZ_CHECK(isfinite(d->min) && isfinite(d->max) &&
                       d->min <= d->max);
            FUZZ_CHECK(!d->log || d->min > 0);
        }
    }
    FUZZ_CHECK(s.trials >= 1 && s.trials <= SWEEP_MAX_TRIALS);
    if (s.algorithm == SWEEP_GRID) FUZZ_CHECK(combos == (double)s.trials);
    FUZZ_CHECK(s.parallel >= 1 && s.parallel <= FUZZ_SWEEP_WORKERS);
    FUZZ_CHECK(s.seed <= (1ULL << 53));

    /* the trip through the store */
    json_t *pj = sweepspec_to_json(&s);
    FUZZ_CHECK(pj != NULL);
    char *text = json_dumps(pj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    FUZZ_CHECK(text != NULL);
    json_t *back = json_loads(text, 0, &je);
    FUZZ_CHECK(back != NULL);
    mn_err err2 = {{0}};
    int rc = sweepspec_parse(back, SWEEP_MAX_TRIALS, NULL, NULL, &s2, &err2);
    if (rc) fprintf(stderr, "stored params %s rejected: %s\n", text, err2.msg);
    FUZZ_CHECK(rc == 0);
    json_t *pj2 = sweepspec_to_json(&s2);
    char *a = dump(pj), *b = dump(pj2);
    FUZZ_CHECK(a && b && strcmp(a, b) == 0);

    /* a few trials: deterministic, values in their fields' domains */
    uint32_t ts[3] = {0, s.trials / 2, s.trials - 1};
    for (int k = 0; k < 3; k++) {
        json_t *sm = NULL, *sm2 = NULL;
        json_t *t1 = sweepspec_trial(&s, ts[k], &sm);
        json_t *t2 = sweepspec_trial(&s2, ts[k], &sm2);
        FUZZ_CHECK(t1 && t2 && sm && sm2);
        FUZZ_CHECK(json_equal(t1, t2) && json_equal(sm, sm2));
        FUZZ_CHECK(json_object_size(sm) == s.n_dims);
        for (size_t i = 0; i < s.n_dims; i++)
            FUZZ_CHECK(dim_holds(&s.dims[i],
                                 json_object_get(sm, s.dims[i].field)));
        FUZZ_CHECK(json_is_integer(json_object_get(t1, "seed")));
        json_decref(t1);
        json_decref(t2);
        json_decref(sm);
        json_decref(sm2);
    }
    FUZZ_CHECK(sweepspec_trial(&s, s.trials, NULL) == NULL);

    free(a);
    free(b);
    json_decref(pj2);
    sweepspec_free(&s2);
    json_decref(back);
    free(text);
    json_decref(pj);
    sweepspec_free(&s);
    json_decref(body);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_sweep(data, size);
}
#endif
