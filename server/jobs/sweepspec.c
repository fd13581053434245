/* sweepspec.c: hyperparameter search requests, sampling and early
 * stopping rules (see sweepspec.h). */
#include "server/jobs/sweepspec.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/jobs/spec.h"

static const struct {
    const char *name;
    int ended;
} sweep_statuses[SWEEP_N_STATUSES] = {
#define SWEEP_STATUS_ROW(id, name, ended) [id] = {name, ended},
    SWEEP_STATUS_TABLE(SWEEP_STATUS_ROW)
#undef SWEEP_STATUS_ROW
};

const char *sweep_status_name(sweep_status s)
{
    return (unsigned)s < SWEEP_N_STATUSES ? sweep_statuses[s].name : "?";
}

int sweep_status_parse(const char *name, sweep_status *out)
{
    for (int i = 0; name && i < SWEEP_N_STATUSES; i++)
        if (strcmp(name, sweep_statuses[i].name) == 0) {
            *out = (sweep_status)i;
            return 0;
        }
    return -1;
}

int sweep_status_ended(sweep_status s)
{
    return (unsigned)s < SWEEP_N_STATUSES && sweep_statuses[s].ended;
}

/* The fields of POST /runs (spec.c) that a space may search, and how:
 * FLOAT and INT take min/max (INT samples integers), ANY takes values
 * only. */
enum { F_ANY, F_FLOAT, F_INT };
static const struct {
    const char *name;
    int kind;
} sweep_fields[] = {
    {"model", F_ANY},          {"hidden_units", F_ANY},
    {"conv_layers", F_ANY},    {"dropout", F_FLOAT},
    {"optimizer", F_ANY},      {"learning_rate", F_FLOAT},
    {"clip_norm", F_FLOAT},    {"steps", F_INT},
    {"batch_size", F_INT},     {"periods", F_INT},
    {"dataset", F_ANY},        {"examples", F_INT},
    {"validation_examples", F_INT}, {"seed", F_INT},
};
#define SWEEP_N_FIELDS (sizeof sweep_fields / sizeof sweep_fields[0])

static const char *const request_fields[] = {
    "base", "space", "algorithm", "trials", "parallel", "objective",
    "early_stopping", "seed", NULL};

/* splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014): one step of the stream *x. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1) from the top 53 bits. */
static double uniform(uint64_t *x)
{
    return (double)(splitmix64(x) >> 11) * 0x1.0p-53;
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
    return s & ((1ULL << 53) - 1);
}

void sweepspec_free(sweep_spec *s)
{
    if (!s) return;
    json_decref(s->base);
    for (size_t i = 0; i < s->n_dims; i++) json_decref(s->dims[i].values);
    memset(s, 0, sizeof *s);
}

/* Reads an optional integer field key of obj in [lo, hi] into *out; name
 * is how messages call it. 0 or -1. */
static int get_int(const json_t *obj, const char *key, const char *name,
                   long long lo, long long hi, uint32_t *out, mn_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi)
        return mn_errf(err, "%s must be an integer in %lld..%lld", name, lo,
                       hi);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* Rejects keys of obj outside allowed (NULL-terminated); prefix names the
 * object in the message. 0 or -1. */
static int only_fields(const json_t *obj, const char *const *allowed,
                       const char *prefix, mn_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        int known = 0;
        for (int i = 0; allowed[i]; i++) known |= strcmp(key, allowed[i]) == 0;
        if (!known) return mn_errf(err, "%sunknown field '%s'", prefix, key);
    }
    return 0;
}

static int dim_cmp(const void *a, const void *b)
{
    return strcmp(((const sweep_dim *)a)->field, ((const sweep_dim *)b)->field);
}

/* Parses space.<field> = v into *d. 0 or -1 naming the field. */
static int parse_dim(const char *field, const json_t *v, sweep_dim *d,
                     mn_err *err)
{
    int kind = -1;
    for (size_t i = 0; i < SWEEP_N_FIELDS; i++)
        if (strcmp(field, sweep_fields[i].name) == 0) kind = sweep_fields[i].kind;
    if (kind < 0)
        return mn_errf(err, "space.%s: unknown field (a space searches "
                       "POST /runs fields)", field);
    memset(d, 0, sizeof *d);
    snprintf(d->field, sizeof d->field, "%s", field);
    d->integer = kind == F_INT;
    if (!json_is_object(v))
        return mn_errf(err, "space.%s must be an object: {\"values\": [...]} "
                       "or {\"min\", \"max\", \"scale\"}", field);
    static const char *const dim_fields[] = {"values", "min", "max", "scale",
                                             NULL};
    char prefix[64];
    snprintf(prefix, sizeof prefix, "space.%s: ", field);
    if (only_fields(v, dim_fields, prefix, err)) return -1;
    json_t *values = json_object_get(v, "values");
    json_t *mn = json_object_get(v, "min"), *mx = json_object_get(v, "max");
    json_t *scale = json_object_get(v, "scale");
    if (values) {
        if (mn || mx || scale)
            return mn_errf(err, "space.%s: give either values or min/max, "
                           "not both", field);
        if (!json_is_array(values) || json_array_size(values) == 0 ||
            json_array_size(values) > SWEEP_MAX_VALUES)
            return mn_errf(err, "space.%s.values must be a list of 1..%d "
                           "values", field, SWEEP_MAX_VALUES);
        d->values = json_deep_copy(values);
        if (!d->values) return mn_errf(err, "out of memory");
        return 0;
    }
    if (!mn || !mx)
        return mn_errf(err, "space.%s needs values, or both min and max",
                       field);
    if (kind == F_ANY)
        return mn_errf(err, "space.%s: min/max apply to numeric fields only; "
                       "list the choices as values", field);
    if (!json_is_number(mn) || !isfinite(json_number_value(mn)))
        return mn_errf(err, "space.%s.min must be a number", field);
    if (!json_is_number(mx) || !isfinite(json_number_value(mx)))
        return mn_errf(err, "space.%s.max must be a number", field);
    if (d->integer && (!json_is_integer(mn) || !json_is_integer(mx)))
        return mn_errf(err, "space.%s.min and max must be integers", field);
    d->min = json_number_value(mn);
    d->max = json_number_value(mx);
    if (d->min > d->max)
        return mn_errf(err, "space.%s.min (%g) must not exceed max (%g)",
                       field, d->min, d->max);
    if (scale) {
        const char *sc = json_string_value(scale);
        if (!sc || (strcmp(sc, "linear") && strcmp(sc, "log")))
            return mn_errf(err, "space.%s.scale must be \"linear\" or "
                           "\"log\"", field);
        d->log = strcmp(sc, "log") == 0;
    }
    if (d->log && d->min <= 0)
        return mn_errf(err, "space.%s.min must be > 0 for scale \"log\", "
                       "got %g", field, d->min);
    return 0;
}

/* The JSON value of dimension d at uniform draw u (random) or of its
 * entry i (values). New reference. */
static json_t *dim_value(const sweep_dim *d, double u)
{
    if (d->values) {
        size_t n = json_array_size(d->values);
        size_t i = (size_t)(u * (double)n);
        if (i >= n) i = n - 1;
        return json_deep_copy(json_array_get(d->values, i));
    }
    if (d->integer) {
        double x;
        if (d->log) {
            double lo = log(d->min - 0.5), hi = log(d->max + 0.5);
            x = round(exp(lo + u * (hi - lo)));
        } else {
            x = d->min + floor(u * (d->max - d->min + 1));
        }
        if (x < d->min) x = d->min;
        if (x > d->max) x = d->max;
        return json_integer((json_int_t)x);
    }
    double x = d->log ? exp(log(d->min) + u * (log(d->max) - log(d->min)))
                      : d->min + u * (d->max - d->min);
    if (x < d->min) x = d->min;
    if (x > d->max) x = d->max;
    return json_real(x);
}

/* The number of choices of a grid dimension. */
static size_t dim_count(const sweep_dim *d)
{
    return json_array_size(d->values);
}

/* Runs check on the base with every dimension at its first value and
 * dimension k at candidate v (stolen). prefix for the message. */
static int check_point(const sweep_spec *s, size_t k, json_t *v,
                       sweepspec_check_fn check, void *ctx, mn_err *err)
{
    json_t *b = json_deep_copy(s->base);
    int rc = -1;
    if (!b) goto oom;
    for (size_t i = 0; i < s->n_dims; i++) {
        json_t *x = i == k ? json_incref(v) : dim_value(&s->dims[i], 0.0);
        if (!x || json_object_set_new(b, s->dims[i].field, x)) goto oom;
    }
    mn_err why = {{0}};
    if (check(b, ctx, &why)) {
        char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        mn_errf(err, "space.%s: the value %s: %s", s->dims[k].field,
                txt ? txt : "?", why.msg);
        free(txt);
        goto done;
    }
    rc = 0;
    goto done;
oom:
    mn_errf(err, "out of memory");
done:
    json_decref(v);
    json_decref(b);
    return rc;
}

/* Applies check to the candidates (see sweepspec_parse). 0 or -1. */
static int check_all(const sweep_spec *s, sweepspec_check_fn check,
                     void *ctx, mn_err *err)
{
    if (json_object_get(s->base, "model")) {
        mn_err why = {{0}};
        if (check(s->base, ctx, &why))
            return mn_errf(err, "base: %s", why.msg);
    }
    if (s->algorithm == SWEEP_GRID) {
        for (uint32_t t = 0; t < s->trials; t++) {
            json_t *sampled = NULL;
            json_t *b = sweepspec_trial(s, t, &sampled);
            if (!b) {
                json_decref(sampled);
                return mn_errf(err, "out of memory");
            }
            mn_err why = {{0}};
            int bad = check(b, ctx, &why);
            if (bad) {
                char *txt = json_dumps(sampled, JSON_COMPACT);
                mn_errf(err, "space: the combination %s: %s", txt ? txt : "?",
                        why.msg);
                free(txt);
            }
            json_decref(b);
            json_decref(sampled);
            if (bad) return -1;
        }
        return 0;
    }
    for (size_t k = 0; k < s->n_dims; k++) {
        const sweep_dim *d = &s->dims[k];
        if (d->values) {
            for (size_t i = 0; i < json_array_size(d->values); i++)
                if (check_point(s, k, json_deep_copy(json_array_get(d->values,
                                                                    i)),
                                check, ctx, err))
                    return -1;
        } else {
            /* both ends (check_point steals each) */
            if (check_point(s, k, d->integer
                                      ? json_integer((json_int_t)d->min)
                                      : json_real(d->min),
                            check, ctx, err) ||
                check_point(s, k, d->integer
                                      ? json_integer((json_int_t)d->max)
                                      : json_real(d->max),
                            check, ctx, err))
                return -1;
        }
    }
    return 0;
}

/* Parses early_stopping into *s. 0 or -1. */
static int parse_stopping(const json_t *es, sweep_spec *s, mn_err *err)
{
    s->rule = SWEEP_STOP_NONE;
    if (!es || json_is_null(es)) return 0;
    if (!json_is_object(es))
        return mn_errf(err, "early_stopping must be null or an object "
                       "{\"rule\": \"median\" or \"asha\", ...}");
    const char *rule = json_string_value(json_object_get(es, "rule"));
    if (rule && strcmp(rule, "median") == 0) {
        static const char *const f[] = {"rule", "grace_periods", "min_trials",
                                        NULL};
        if (only_fields(es, f, "early_stopping: ", err)) return -1;
        s->rule = SWEEP_STOP_MEDIAN;
        s->grace_periods = 1;
        s->min_trials = 3;
        return get_int(es, "grace_periods", "early_stopping.grace_periods", 1,
                       1000, &s->grace_periods, err) ||
                       get_int(es, "min_trials", "early_stopping.min_trials",
                               1, SWEEP_MAX_TRIALS, &s->min_trials, err)
                   ? -1 : 0;
    }
    if (rule && strcmp(rule, "asha") == 0) {
        static const char *const f[] = {"rule", "grace_periods",
                                        "reduction_factor", NULL};
        if (only_fields(es, f, "early_stopping: ", err)) return -1;
        s->rule = SWEEP_STOP_ASHA;
        s->grace_periods = 1;
        s->reduction_factor = 3;
        return get_int(es, "grace_periods", "early_stopping.grace_periods", 1,
                       1000, &s->grace_periods, err) ||
                       get_int(es, "reduction_factor",
                               "early_stopping.reduction_factor", 2, 100,
                               &s->reduction_factor, err)
                   ? -1 : 0;
    }
    return mn_errf(err, "early_stopping.rule must be \"median\" or \"asha\"");
}

int sweepspec_parse(const json_t *body, uint32_t max_parallel,
                    sweepspec_check_fn check, void *ctx, sweep_spec *out,
                    mn_err *err)
{
    sweep_spec *s = out;
    memset(s, 0, sizeof *s);
    if (!json_is_object(body)) return mn_errf(err, "body must be a JSON object");
    if (only_fields(body, request_fields, "", err)) goto fail;

    json_t *base = json_object_get(body, "base");
    if (base && !json_is_object(base)) {
        mn_errf(err, "base must be an object of POST /runs fields");
        goto fail;
    }
    s->base = base ? json_deep_copy(base) : json_object();
    if (!s->base) {
        mn_errf(err, "out of memory");
        goto fail;
    }

    json_t *space = json_object_get(body, "space");
    if (!space || !json_is_object(space) || json_object_size(space) == 0 ||
        json_object_size(space) > SWEEP_MAX_DIMS) {
        mn_errf(err, "space must be an object of 1..%d fields to search",
                SWEEP_MAX_DIMS);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(space, key, val) {
        if (parse_dim(key, val, &s->dims[s->n_dims], err)) {
            json_decref(s->dims[s->n_dims].values);
            s->dims[s->n_dims].values = NULL;
            goto fail;
        }
        s->n_dims++;
    }
    qsort(s->dims, s->n_dims, sizeof s->dims[0], dim_cmp);
    for (size_t i = 0; i < s->n_dims; i++)
        if (json_object_get(s->base, s->dims[i].field)) {
            mn_errf(err, "space.%s: the field is also in base; search it or "
                    "fix it, not both", s->dims[i].field);
            goto fail;
        }

    json_t *alg = json_object_get(body, "algorithm");
    const char *an = alg ? json_string_value(alg) : "random";
    if (!an || (strcmp(an, "random") && strcmp(an, "grid"))) {
        mn_errf(err, "algorithm must be \"random\" or \"grid\"");
        goto fail;
    }
    s->algorithm = strcmp(an, "grid") == 0 ? SWEEP_GRID : SWEEP_RANDOM;

    json_t *trials = json_object_get(body, "trials");
    if (trials && (!json_is_integer(trials) || json_integer_value(trials) < 1 ||
                   json_integer_value(trials) > SWEEP_MAX_TRIALS)) {
        mn_errf(err, "trials must be an integer in 1..%d", SWEEP_MAX_TRIALS);
        goto fail;
    }
    if (s->algorithm == SWEEP_GRID) {
        double combos = 1;
        for (size_t i = 0; i < s->n_dims; i++) {
            if (!s->dims[i].values) {
                mn_errf(err, "space.%s: a grid takes values, not min/max",
                        s->dims[i].field);
                goto fail;
            }
            combos *= (double)dim_count(&s->dims[i]);
        }
        if (combos > SWEEP_MAX_TRIALS) {
            mn_errf(err, "space: a grid of %.0f combinations; at most %d",
                    combos, SWEEP_MAX_TRIALS);
            goto fail;
        }
        s->trials = (uint32_t)combos;
        if (trials && (uint32_t)json_integer_value(trials) != s->trials) {
            mn_errf(err, "trials (%lld) must be the grid's %u combinations, "
                    "or left out", (long long)json_integer_value(trials),
                    s->trials);
            goto fail;
        }
    } else {
        s->trials = trials ? (uint32_t)json_integer_value(trials) : 10;
    }

    if (max_parallel < 1) max_parallel = 1;
    s->parallel = max_parallel < 2 ? max_parallel : 2;
    if (get_int(body, "parallel", "parallel", 1, max_parallel, &s->parallel,
                err))
        goto fail;

    json_t *obj = json_object_get(body, "objective");
    const char *on = obj ? json_string_value(obj) : "validation_accuracy";
    if (!on || (strcmp(on, "validation_accuracy") &&
                strcmp(on, "validation_log_loss"))) {
        mn_errf(err, "objective must be \"validation_accuracy\" (maximised) "
                "or \"validation_log_loss\" (minimised)");
        goto fail;
    }
    s->maximize = strcmp(on, "validation_accuracy") == 0;

    if (parse_stopping(json_object_get(body, "early_stopping"), s, err))
        goto fail;

    json_t *seed = json_object_get(body, "seed");
    if (seed) {
        if (!json_is_integer(seed) || json_integer_value(seed) < 0 ||
            json_integer_value(seed) > (1LL << 53)) {
            mn_errf(err, "seed must be an integer in 0..2^53");
            goto fail;
        }
        s->seed = (uint64_t)json_integer_value(seed);
    } else {
        s->seed = random_seed();
    }
    if (check && check_all(s, check, ctx, err)) goto fail;
    return 0;
fail:
    sweepspec_free(s);
    return -1;
}

const char *sweepspec_objective(const sweep_spec *s)
{
    return s->maximize ? "validation_accuracy" : "validation_log_loss";
}

json_t *sweepspec_to_json(const sweep_spec *s)
{
    json_t *space = json_object();
    for (size_t i = 0; space && i < s->n_dims; i++) {
        const sweep_dim *d = &s->dims[i];
        json_t *o = d->values
            ? json_pack("{s:O}", "values", d->values)
            : d->integer
                ? json_pack("{s:I, s:I, s:s}", "min", (json_int_t)d->min,
                            "max", (json_int_t)d->max, "scale",
                            d->log ? "log" : "linear")
                : json_pack("{s:f, s:f, s:s}", "min", d->min, "max", d->max,
                            "scale", d->log ? "log" : "linear");
        if (!o || json_object_set_new(space, d->field, o)) {
            json_decref(space);
            return NULL;
        }
    }
    if (!space) return NULL;
    json_t *es = s->rule == SWEEP_STOP_MEDIAN
        ? json_pack("{s:s, s:I, s:I}", "rule", "median", "grace_periods",
                    (json_int_t)s->grace_periods, "min_trials",
                    (json_int_t)s->min_trials)
        : s->rule == SWEEP_STOP_ASHA
            ? json_pack("{s:s, s:I, s:I}", "rule", "asha", "grace_periods",
                        (json_int_t)s->grace_periods, "reduction_factor",
                        (json_int_t)s->reduction_factor)
            : json_null();
    return json_pack("{s:O, s:o, s:s, s:I, s:I, s:s, s:o, s:I}", "base",
                     s->base, "space", space, "algorithm",
                     s->algorithm == SWEEP_GRID ? "grid" : "random", "trials",
                     (json_int_t)s->trials, "parallel",
                     (json_int_t)s->parallel, "objective",
                     sweepspec_objective(s), "early_stopping", es, "seed",
                     (json_int_t)s->seed);
}

json_t *sweepspec_trial(const sweep_spec *s, uint32_t t, json_t **sampled)
{
    if (sampled) *sampled = NULL;
    if (t >= s->trials) return NULL;
    json_t *b = json_deep_copy(s->base), *sm = json_object();
    if (!b || !sm) goto oom;
    /* the sampling stream of trial t, and a second one for its run seed */
    uint64_t x = s->seed ^ (0x5851f42d4c957f2dULL * ((uint64_t)t + 1));
    uint64_t seed_stream = x ^ 0xda3e39cb94b95bdbULL;
    size_t rest = t;   /* grid: t in mixed radix, the last field fastest */
    size_t digit[SWEEP_MAX_DIMS] = {0};
    if (s->algorithm == SWEEP_GRID)
        for (size_t i = s->n_dims; i-- > 0;) {
            size_t n = dim_count(&s->dims[i]);
            digit[i] = rest % n;
            rest /= n;
        }
    for (size_t i = 0; i < s->n_dims; i++) {
        const sweep_dim *d = &s->dims[i];
        json_t *v = s->algorithm == SWEEP_GRID
                        ? json_deep_copy(json_array_get(d->values, digit[i]))
                        : dim_value(d, uniform(&x));
        if (!v || json_object_set(sm, d->field, v) ||
            json_object_set_new(b, d->field, v))
            goto oom;
    }
    if (!json_object_get(b, "seed")) {
        uint64_t rs = splitmix64(&seed_stream) & ((1ULL << 53) - 1);
        if (json_object_set_new(b, "seed", json_integer((json_int_t)rs)))
            goto oom;
    }
    if (sampled) *sampled = sm;
    else json_decref(sm);
    return b;
oom:
    json_decref(b);
    json_decref(sm);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double sweepspec_percentile(double *x, size_t n, double q)
{
    if (n == 0) return NAN;
    qsort(x, n, sizeof *x, cmp_double);
    double pos = q / 100.0 * (double)(n - 1);
    size_t lo = (size_t)floor(pos);
    if (lo >= n - 1) return x[n - 1];
    double f = pos - (double)lo;
    return x[lo] + f * (x[lo + 1] - x[lo]);
}

/* 1 when a is strictly worse than b for the objective (NaN is worst). */
static int worse(const sweep_spec *s, double a, double b)
{
    if (isnan(a)) return !isnan(b);
    if (isnan(b)) return 0;
    return s->maximize ? a < b : a > b;
}

/* The median stopping rule (see sweepspec.h). */
static int prune_median(const sweep_spec *s, sweep_curve own,
                        const sweep_curve *others, size_t n_others,
                        char *why, size_t len)
{
    uint32_t p = own.n;
    if (p < s->grace_periods) return 0;
    double *avg = malloc((n_others ? n_others : 1) * sizeof *avg);
    if (!avg) return 0;
    size_t k = 0;
    for (size_t i = 0; i < n_others; i++) {
        if (others[i].n < p) continue;
        double sum = 0;
        uint32_t m = 0;
        for (uint32_t j = 0; j < p; j++)
            if (!isnan(others[i].v[j])) {
                sum += others[i].v[j];
                m++;
            }
        if (m) avg[k++] = sum / m;
    }
    int stop = 0;
    if (k >= s->min_trials && k > 0) {
        double median = sweepspec_percentile(avg, k, 50.0);
        double best = NAN;
        for (uint32_t j = 0; j < p; j++)
            if (isnan(best) || worse(s, best, own.v[j])) best = own.v[j];
        if (worse(s, best, median)) {
            stop = 1;
            snprintf(why, len, "median stopping rule at period %u: best %s "
                     "%.4f is worse than the median %.4f of %zu other "
                     "trials' running averages", p, sweepspec_objective(s),
                     best, median, k);
        }
    }
    free(avg);
    return stop;
}

/* Asynchronous successive halving (see sweepspec.h). */
static int prune_asha(const sweep_spec *s, sweep_curve own, uint32_t periods,
                      const sweep_curve *others, size_t n_others, char *why,
                      size_t len)
{
    uint32_t p = own.n;
    /* is p a rung: grace * rf^k below the last period? */
    int rung = 0;
    for (uint64_t r = s->grace_periods; r < periods; r *= s->reduction_factor)
        if (r == p) rung = 1;
    if (!rung) return 0;
    double *rec = malloc((n_others ? n_others : 1) * sizeof *rec);
    if (!rec) return 0;
    size_t k = 0;
    for (size_t i = 0; i < n_others; i++)
        if (others[i].n >= p && !isnan(others[i].v[p - 1]))
            rec[k++] = s->maximize ? others[i].v[p - 1] : -others[i].v[p - 1];
    int stop = 0;
    if (k > 0) {
        /* Ray Tune compares in "higher is better" terms (a minimised
         * metric negated) against the (1 - 1/rf) quantile */
        double cut = sweepspec_percentile(
            rec, k, (1.0 - 1.0 / s->reduction_factor) * 100.0);
        double mine = s->maximize ? own.v[p - 1] : -own.v[p - 1];
        if (isnan(mine) || mine < cut) {
            stop = 1;
            snprintf(why, len, "ASHA at rung period %u: %s %.4f is not in "
                     "the top 1/%u of the %zu trials recorded there (cutoff "
                     "%.4f)", p, sweepspec_objective(s), own.v[p - 1],
                     s->reduction_factor, k, s->maximize ? cut : -cut);
        }
    }
    free(rec);
    return stop;
}

int sweepspec_prune(const sweep_spec *s, sweep_curve own, uint32_t periods,
                    const sweep_curve *others, size_t n_others, char *why,
                    size_t len)
{
    if (len) why[0] = 0;
    if (own.n == 0 || own.n >= periods) return 0;
    switch (s->rule) {
    case SWEEP_STOP_MEDIAN:
        return prune_median(s, own, others, n_others, why, len);
    case SWEEP_STOP_ASHA:
        return prune_asha(s, own, periods, others, n_others, why, len);
    default:
        return 0;
    }
}
