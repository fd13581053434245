/* spec.c: validation and defaults of training run specifications. */
#include "server/jobs/spec.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The API's limits are the engine's (engine/train.h, TRAIN_MAX_*) except
 * two that the service keeps stricter by policy: at most 1,000,000 steps
 * (the engine: 10,000,000), so that one request cannot hold a worker for
 * days, and a learning_rate of at most 10 (the engine: 100). Both are the
 * API's contract (openapi.yaml, tests/http), hence two sets; the engine's
 * wider ones serve its direct callers. */
#define SPEC_MAX_STEPS 1000000
#define SPEC_MAX_LEARNING_RATE 10.0
_Static_assert(SPEC_MAX_STEPS <= TRAIN_MAX_STEPS, "API steps within the engine's");
/* (integer casts: a static assertion may not compare floating values) */
_Static_assert((long)SPEC_MAX_LEARNING_RATE <= (long)TRAIN_MAX_LEARNING_RATE,
               "API learning_rate within the engine's");

static const char *const spec_fields[] = {
    "model", "hidden_units", "conv_layers", "dropout", "optimizer",
    "learning_rate", "clip_norm", "steps", "batch_size", "periods", "dataset",
    "examples", "validation_examples", "seed", NULL};

int spec_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= SPEC_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '-' || c == '_'));
        if (!ok) return 0;
    }
    return 1;
}

/* Reads an integer field in [lo, hi] into *out if present. */
static int get_uint(const json_t *obj, const char *key, long long lo,
                    long long hi, uint32_t *out, mn_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v))
        return mn_errf(err, "%s must be an integer", key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return mn_errf(err, "%s must be in %lld..%lld, got %lld", key, lo, hi, x);
    *out = (uint32_t)x;
    return 0;
}

/* Reads a number field in [lo, hi] (or (lo, hi] if open_lo) into *out. */
static int get_num(const json_t *obj, const char *key, double lo, double hi,
                   int open_lo, double *out, mn_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_number(v)) return mn_errf(err, "%s must be a number", key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi || (open_lo && x == lo))
        return mn_errf(err, "%s must be in %s%g, %g], got %g", key,
                       open_lo ? "(" : "[", lo, hi, x);
    *out = x;
    return 0;
}

/* The default conv_layers: two 5x5 convolutions of 16 and 32 filters,
 * each max-pooled by 2 (28 -> 24 -> 12 -> 8 -> 4). */
static const cnn_conv spec_default_conv[] = {{16, 5, 2, 0}, {32, 5, 2, 0}};

static const char *const conv_fields[] = {"filters", "kernel", "pool",
                                          "padding", NULL};

/* Reads conv_layers[i], an object {filters, kernel, pool = 1, padding =
 * "valid"}, into *c; errors name the entry and the field. */
static int get_conv(const json_t *o, int i, cnn_conv *c, mn_err *err)
{
    if (!json_is_object(o))
        return mn_errf(err, "conv_layers[%d] must be an object {filters, "
                       "kernel, pool, padding}", i);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)o, key, val) {
        int known = 0;
        for (int k = 0; conv_fields[k]; k++)
            known |= strcmp(key, conv_fields[k]) == 0;
        if (!known)
            return mn_errf(err, "conv_layers[%d]: unknown field '%s'", i, key);
    }
    static const struct {
        const char *key;
        int lo, hi, def; /* def < 0: required */
    } ints[] = {{"filters", 1, CNN_MAX_FILTERS, -1},
                {"kernel", 1, CNN_MAX_KERNEL, -1},
                {"pool", 1, CNN_MAX_POOL, 1}};
    int *dst[] = {&c->filters, &c->kernel, &c->pool};
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(o, ints[k].key);
        if (!v && ints[k].def >= 0) {
            *dst[k] = ints[k].def;
            continue;
        }
        if (!v || !json_is_integer(v) || json_integer_value(v) < ints[k].lo ||
            json_integer_value(v) > ints[k].hi)
            return mn_errf(err, "conv_layers[%d].%s must be an integer in "
                           "%d..%d", i, ints[k].key, ints[k].lo, ints[k].hi);
        *dst[k] = (int)json_integer_value(v);
    }
    json_t *pad = json_object_get(o, "padding");
    const char *ps = pad ? json_string_value(pad) : "valid";
    if (!ps || (strcmp(ps, "valid") && strcmp(ps, "same")))
        return mn_errf(err, "conv_layers[%d].padding must be \"valid\" or "
                       "\"same\"", i);
    c->same = strcmp(ps, "same") == 0;
    return 0;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s = 0;
        close(fd);
    }
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
    }
    return s & ((1ULL << 53) - 1); /* exact in any JSON reader */
}

int spec_from_json(const json_t *obj, run_spec *s, mn_err *err)
{
    memset(s, 0, sizeof *s);
    if (!json_is_object(obj)) return mn_errf(err, "body must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        int known = 0;
        for (int i = 0; spec_fields[i]; i++) known |= strcmp(key, spec_fields[i]) == 0;
        if (!known) return mn_errf(err, "unknown field '%s'", key);
    }
    json_t *model = json_object_get(obj, "model");
    char kinds[64], hidden_kinds[64];
    run_model_names(kinds, sizeof kinds, 1, 0);
    run_model_names(hidden_kinds, sizeof hidden_kinds, 1, 1);
    if (!model) return mn_errf(err, "model is required (%s)", kinds);
    s->model = run_model_find(json_string_value(model));
    if (!s->model) return mn_errf(err, "model must be %s", kinds);
    int hidden = s->model->hidden;
    snprintf(s->dataset, sizeof s->dataset, "mnist");
    optim_parse(s->model->optimizer, &s->optimizer);
    s->learning_rate = s->model->learning_rate;
    s->clip_norm = 5.0;
    s->steps = 1000;
    s->batch_size = 30;
    s->periods = 10;
    s->examples = 10000;
    s->validation_examples = 2500;
    s->n_hidden = s->model->hidden_layers;
    for (int l = 0; l < s->n_hidden; l++) s->hidden[l] = s->model->hidden_width;
    if (s->model->conv) {
        s->n_conv = (int)(sizeof spec_default_conv /
                          sizeof spec_default_conv[0]);
        memcpy(s->conv, spec_default_conv, sizeof spec_default_conv);
    }
    json_t *cl = json_object_get(obj, "conv_layers");
    if (cl && !s->model->conv)
        return mn_errf(err, "conv_layers applies to model \"cnn\" only");
    if (cl) {
        if (!json_is_array(cl) || json_array_size(cl) < 1 ||
            json_array_size(cl) > MODEL_MAX_LAYERS)
            return mn_errf(err, "conv_layers must be an array of 1..%d "
                           "convolutions", MODEL_MAX_LAYERS);
        s->n_conv = (int)json_array_size(cl);
        for (int i = 0; i < s->n_conv; i++)
            if (get_conv(json_array_get(cl, (size_t)i), i, &s->conv[i], err))
                return -1;
    }

    json_t *hu = json_object_get(obj, "hidden_units");
    if (hu && !hidden && !(json_is_array(hu) && json_array_size(hu) == 0))
        return mn_errf(err, "hidden_units applies to model %s only "
                       "(a %s model has none: [])", hidden_kinds,
                       s->model->name);
    if (hu && hidden) {
        /* a cnn may go from its convolutions straight to the output */
        if (!json_is_array(hu) ||
            json_array_size(hu) < (s->model->conv ? 0u : 1u) ||
            json_array_size(hu) > MODEL_MAX_LAYERS)
            return mn_errf(err, "hidden_units must be an array of %d..%d "
                           "layer widths", s->model->conv ? 0 : 1,
                           MODEL_MAX_LAYERS);
        s->n_hidden = (int)json_array_size(hu);
        for (int l = 0; l < s->n_hidden; l++) {
            json_t *w = json_array_get(hu, (size_t)l);
            if (!json_is_integer(w) || json_integer_value(w) < 1 ||
                json_integer_value(w) > MLP_MAX_WIDTH)
                return mn_errf(err, "hidden_units[%d] must be an integer in "
                               "1..%d", l, MLP_MAX_WIDTH);
            s->hidden[l] = (int)json_integer_value(w);
        }
    }
    if (get_num(obj, "dropout", 0.0, 0.95, 0, &s->dropout, err)) return -1;
    if (s->dropout > 0.0 && !hidden)
        return mn_errf(err, "dropout applies to model %s only",
                       hidden_kinds);
    json_t *opt = json_object_get(obj, "optimizer");
    if (opt && (!json_is_string(opt) ||
                optim_parse(json_string_value(opt), &s->optimizer)))
        return mn_errf(err, "optimizer must be \"adagrad\", \"sgd\" or \"adam\"");
    if (get_num(obj, "learning_rate", 0.0, SPEC_MAX_LEARNING_RATE, 1,
                &s->learning_rate, err) ||
        get_num(obj, "clip_norm", 0.0, TRAIN_MAX_CLIP_NORM, 0, &s->clip_norm,
                err) ||
        get_uint(obj, "steps", 1, SPEC_MAX_STEPS, &s->steps, err) ||
        get_uint(obj, "batch_size", 1, TRAIN_MAX_BATCH, &s->batch_size, err) ||
        get_uint(obj, "periods", 1, TRAIN_MAX_PERIODS, &s->periods, err) ||
        get_uint(obj, "examples", 2, 100000000, &s->examples, err))
        return -1;
    s->examples_given = json_object_get(obj, "examples") != NULL;
    s->validation_given = json_object_get(obj, "validation_examples") != NULL;
    /* the exercise's 2,500 of 10,000: a quarter, whatever the head's size */
    s->validation_examples = s->examples >= 4 ? s->examples / 4 : 1;
    if (get_uint(obj, "validation_examples", 1, 100000000,
                 &s->validation_examples, err))
        return -1;
    if (s->periods > s->steps)
        return mn_errf(err, "periods (%u) must not exceed steps (%u)",
                       s->periods, s->steps);
    if (s->validation_examples >= s->examples)
        return mn_errf(err, "validation_examples (%u) must be fewer than "
                       "examples (%u)", s->validation_examples, s->examples);
    if (s->batch_size > s->examples - s->validation_examples)
        return mn_errf(err, "batch_size (%u) exceeds the %u training examples",
                       s->batch_size, s->examples - s->validation_examples);
    json_t *ds = json_object_get(obj, "dataset");
    if (ds) {
        if (!json_is_string(ds) || !spec_valid_name(json_string_value(ds)))
            return mn_errf(err, "dataset must be a dataset name "
                           "([a-z0-9][a-z0-9_-]*, at most 63 characters)");
        snprintf(s->dataset, sizeof s->dataset, "%s", json_string_value(ds));
    }
    json_t *seed = json_object_get(obj, "seed");
    if (seed) {
        if (!json_is_integer(seed) || json_integer_value(seed) < 0 ||
            json_integer_value(seed) > (1LL << 53))
            return mn_errf(err, "seed must be an integer in 0..2^53");
        s->seed = (uint64_t)json_integer_value(seed);
    } else {
        s->seed = random_seed();
    }
    return 0;
}

int spec_to_train(run_spec *s, const ds_dataset *d, train_params *tp,
                  mn_err *err)
{
    memset(tp, 0, sizeof *tp);
    /* a dataset smaller than the default head trains on all of it */
    if (!s->examples_given && s->examples > d->n && d->n >= 2) {
        s->examples = d->n;
        if (!s->validation_given)
            s->validation_examples = s->examples >= 4 ? s->examples / 4 : 1;
    }
    if (s->model->engine == RUN_ENGINE_CNN) {
        if (cnn_arch(&tp->arch, s->n_conv, s->conv, s->n_hidden, s->hidden,
                     (float)s->dropout, err))
            return -1;
    } else {
        mlp_arch(&tp->arch, s->n_hidden, s->hidden, (float)s->dropout);
    }
    tp->optimizer = s->optimizer;
    tp->learning_rate = (float)s->learning_rate;
    tp->clip_norm = (float)s->clip_norm;
    tp->steps = s->steps;
    tp->batch_size = s->batch_size;
    tp->periods = s->periods;
    tp->examples = s->examples;
    tp->validation_examples = s->validation_examples;
    tp->seed = s->seed;
    return train_check(tp, d, err);
}

json_t *spec_to_json(const run_spec *s)
{
    json_t *hu = json_array();
    for (int l = 0; l < s->n_hidden; l++)
        json_array_append_new(hu, json_integer(s->hidden[l]));
    json_t *j = json_pack("{s:s, s:o, s:f, s:s, s:f, s:f, s:I, s:I, s:I, s:s, "
                     "s:I, s:I, s:I}",
                     "model", s->model->name, "hidden_units", hu, "dropout",
                     s->dropout, "optimizer", optim_name(s->optimizer),
                     "learning_rate", s->learning_rate, "clip_norm",
                     s->clip_norm, "steps", (json_int_t)s->steps,
                     "batch_size", (json_int_t)s->batch_size, "periods",
                     (json_int_t)s->periods, "dataset", s->dataset,
                     "examples", (json_int_t)s->examples,
                     "validation_examples", (json_int_t)s->validation_examples,
                     "seed", (json_int_t)s->seed);
    if (j && s->model->conv) {
        json_t *cl = json_array();
        for (int i = 0; i < s->n_conv; i++)
            json_array_append_new(
                cl, json_pack("{s:i, s:i, s:i, s:s}", "filters",
                              s->conv[i].filters, "kernel", s->conv[i].kernel,
                              "pool", s->conv[i].pool, "padding",
                              s->conv[i].same ? "same" : "valid"));
        json_object_set_new(j, "conv_layers", cl);
    }
    return j;
}
