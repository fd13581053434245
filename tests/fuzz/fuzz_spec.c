/* fuzz_spec.c: POST /runs bodies. The input is JSON text, parsed as
 * http_body_json does (json_loadb with JSON_REJECT_DUPLICATES), then decoded
 * by spec_from_json.
 *
 * Promises checked: a rejected body comes with a message; an accepted spec
 * is within the documented ranges, and it survives the trip a run takes
 * through the store unchanged (spec_to_json, dumped as routes_runs.c does,
 * reloaded as pool.c does, spec_from_json again). */
#include <jansson.h>
#include <math.h>

#include "server/jobs/spec.h"
#include "tests/fuzz/fuzz.h"

/* The documented ranges of an accepted spec. */
static void spec_check_ranges(const run_spec *s)
{
    /* a kind of the vocabulary (run.h), with the fields that apply to it */
    FUZZ_CHECK(s->model && run_model_find(s->model->name) == s->model);
    int hidden = s->model->hidden, conv = s->model->conv;
    FUZZ_CHECK(hidden ? s->n_hidden >= (conv ? 0 : 1) &&
                            s->n_hidden <= MODEL_MAX_LAYERS
                      : s->n_hidden == 0);
    for (int l = 0; l < s->n_hidden; l++)
        FUZZ_CHECK(s->hidden[l] >= 1 && s->hidden[l] <= MLP_MAX_WIDTH);
    FUZZ_CHECK(conv ? s->n_conv >= 1 && s->n_conv <= MODEL_MAX_LAYERS
                    : s->n_conv == 0);
    for (int l = 0; l < s->n_conv; l++) {
        FUZZ_CHECK(s->conv[l].filters >= 1 &&
                   s->conv[l].filters <= CNN_MAX_FILTERS);
        FUZZ_CHECK(s->conv[l].kernel >= 1 &&
                   s->conv[l].kernel <= CNN_MAX_KERNEL);
        FUZZ_CHECK(s->conv[l].pool >= 1 && s->conv[l].pool <= CNN_MAX_POOL);
        FUZZ_CHECK(s->conv[l].same == 0 || s->conv[l].same == 1);
    }
    FUZZ_CHECK(s->dropout >= 0.0 && s->dropout <= 0.95);
    FUZZ_CHECK(hidden || s->dropout == 0.0);
    FUZZ_CHECK((unsigned)s->optimizer <= OPTIM_ADAM);
    FUZZ_CHECK(s->learning_rate > 0.0 && s->learning_rate <= 10.0);
    FUZZ_CHECK(s->clip_norm >= 0.0 && s->clip_norm <= 1e6);
    FUZZ_CHECK(s->steps >= 1 && s->steps <= 1000000);
    FUZZ_CHECK(s->periods >= 1 && s->periods <= s->steps);
    FUZZ_CHECK(s->validation_examples >= 1 &&
               s->validation_examples < s->examples);
    FUZZ_CHECK(s->batch_size >= 1 &&
               s->batch_size <= s->examples - s->validation_examples);
    FUZZ_CHECK(spec_valid_name(s->dataset));
    FUZZ_CHECK(s->seed <= (1ULL << 53));
}

static void spec_check_equal(const run_spec *a, const run_spec *b)
{
    FUZZ_CHECK(strcmp(a->model->name, b->model->name) == 0);
    FUZZ_CHECK(strcmp(a->dataset, b->dataset) == 0);
    FUZZ_CHECK(a->n_hidden == b->n_hidden);
    for (int l = 0; l < a->n_hidden; l++) FUZZ_CHECK(a->hidden[l] == b->hidden[l]);
    FUZZ_CHECK(a->n_conv == b->n_conv);
    for (int l = 0; l < a->n_conv; l++)
        FUZZ_CHECK(a->conv[l].filters == b->conv[l].filters &&
                   a->conv[l].kernel == b->conv[l].kernel &&
                   a->conv[l].pool == b->conv[l].pool &&
                   a->conv[l].same == b->conv[l].same);
    FUZZ_CHECK(a->dropout == b->dropout);
    FUZZ_CHECK(a->optimizer == b->optimizer);
    FUZZ_CHECK(a->learning_rate == b->learning_rate);
    FUZZ_CHECK(a->clip_norm == b->clip_norm);
    FUZZ_CHECK(a->steps == b->steps && a->batch_size == b->batch_size &&
               a->periods == b->periods && a->examples == b->examples &&
               a->validation_examples == b->validation_examples);
    FUZZ_CHECK(a->seed == b->seed);
}

static int fuzz_spec(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
                              &je);
    if (!body) return 0;
    run_spec s, s2;
    mn_err err = {{0}};
    if (spec_from_json(body, &s, &err)) {
        FUZZ_CHECK(fuzz_msg_ok(err.msg, sizeof err.msg));
        json_decref(body);
        return 0;
    }
    spec_check_ranges(&s);

    json_t *pj = spec_to_json(&s);
    FUZZ_CHECK(pj != NULL);
    char *text = json_dumps(pj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    FUZZ_CHECK(text != NULL);
    json_t *back = json_loads(text, 0, &je);
    FUZZ_CHECK(back != NULL);
    mn_err err2 = {{0}};
    int rc = spec_from_json(back, &s2, &err2);
    if (rc) fprintf(stderr, "stored params %s rejected: %s\n", text, err2.msg);
    FUZZ_CHECK(rc == 0);
    spec_check_equal(&s, &s2);

    json_decref(back);
    free(text);
    json_decref(pj);
    json_decref(body);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_spec(data, size);
}
#endif
