/* sweepspec.h: a hyperparameter search's request (POST /sweeps), validated
 * and resolved; the trials it samples; its early stopping rules. Pure
 * functions of their arguments (no store, no clock, no global state), so
 * that the fuzzer (tests/fuzz/fuzz_sweep.c) and the unit tests drive them
 * directly; the scheduler (sweep.h) applies them to what the store holds.
 *
 * The request: `base` (POST /runs fields, validated as there), `space`
 * (a POST /runs field each: `values`, a list, or `min`/`max` with `scale`
 * "linear" (default) or "log"; integer fields sample integers),
 * `algorithm` ("random", the default, or "grid"), `trials` (1..1000;
 * random: default 10; grid: the number of combinations, or absent),
 * `parallel` (1..the workers; default min(2, workers)), `objective`
 * ("validation_accuracy", maximised, the default, or
 * "validation_log_loss", minimised), `early_stopping` (null, the default,
 * {"rule": "median", "grace_periods": 1.., "min_trials": 1..} or
 * {"rule": "asha", "grace_periods": 1.., "reduction_factor": 2..}) and
 * `seed` (0..2^53; drawn at random when absent, and recorded).
 *
 * Sampling (random): trial t draws one uniform number per searched field,
 * fields in name order, from a splitmix64 stream seeded by (seed, t), so
 * a trial's values depend on the seed and its number only: the same
 * request samples the same trials, in any order and after any restart. A
 * `values` field takes values[floor(u n)]; min/max linear: min + u (max -
 * min); log: exp(ln min + u (ln max - ln min)) (log-uniform, as Ray Tune's
 * loguniform and Optuna's log=True); an integer field linear:
 * min + floor(u (max - min + 1)); integer log: round(exp of a log-uniform
 * draw in [min - 0.5, max + 0.5]), clamped to [min, max] (Optuna's
 * IntDistribution(log=True)). Grid: combination t in mixed radix, fields
 * in name order, the last one fastest. A trial's run seed is the base's
 * `seed` when it sets one (or the space's), else splitmix64 of (seed, t)
 * masked to 53 bits, so that a seeded sweep reproduces its numbers too.
 *
 * Early stopping, decided after each period p of a trial from the
 * objective by period of every trial of the sweep (sweepspec_prune):
 * - median (the median stopping rule of Google Vizier, Golovin et al.,
 *   KDD 2017, section 3.2.2, as Katib's medianstop and Ray Tune's
 *   MedianStoppingRule apply it): for p >= grace_periods, when at least
 *   min_trials other trials have reached period p, the trial stops if
 *   its best objective over periods 1..p is strictly worse than the
 *   median of those trials' running averages (their mean objective over
 *   periods 1..p).
 * - asha (asynchronous successive halving, Li et al., "A System for
 *   Massively Parallel Hyperparameter Tuning", MLSys 2020, as Ray Tune's
 *   AsyncHyperBandScheduler defines it, with periods as its time unit):
 *   rungs at periods grace_periods * reduction_factor^k (k = 0, 1, ...)
 *   below the trial's last period; at a rung, the trial stops if its
 *   objective there is worse than the (1 - 1/reduction_factor) quantile
 *   (linear interpolation, numpy's percentile) of the objectives other
 *   trials recorded at that rung, i.e. when it is not in their top
 *   1/reduction_factor; the first trial to reach a rung passes it.
 * Neither rule stops a trial at its last period.
 *
 * Ownership: sweep_spec owns its base and its dimensions' values (free
 * with sweepspec_free); JSON results are new references. */
#ifndef MN_SWEEPSPEC_H
#define MN_SWEEPSPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

/* X(id, name, ended): a sweep's statuses. The store keeps "running" until
 * the sweep ends; the API shows "queued" for a running sweep none of
 * whose trials has started yet. */
#define SWEEP_STATUS_TABLE(X)             \
    X(SWEEP_QUEUED, "queued", 0)          \
    X(SWEEP_RUNNING, "running", 0)        \
    X(SWEEP_SUCCEEDED, "succeeded", 1)    \
    X(SWEEP_FAILED, "failed", 1)          \
    X(SWEEP_CANCELLED, "cancelled", 1)

typedef enum sweep_status {
#define SWEEP_STATUS_ENUM(id, name, ended) id,
    SWEEP_STATUS_TABLE(SWEEP_STATUS_ENUM)
#undef SWEEP_STATUS_ENUM
    SWEEP_N_STATUSES
} sweep_status;

const char *sweep_status_name(sweep_status s);   /* "?" outside the enum */
int sweep_status_parse(const char *name, sweep_status *out); /* 0 or -1 */
int sweep_status_ended(sweep_status s);

#define SWEEP_MAX_TRIALS 1000       /* trials, and grid combinations */
#define SWEEP_MAX_DIMS 16           /* searched fields */
#define SWEEP_MAX_VALUES 1000       /* entries of one `values` list */

typedef enum { SWEEP_RANDOM, SWEEP_GRID } sweep_algorithm;
typedef enum { SWEEP_STOP_NONE, SWEEP_STOP_MEDIAN, SWEEP_STOP_ASHA }
    sweep_rule;

/* One searched field. */
typedef struct sweep_dim {
    char field[24];             /* a POST /runs field */
    json_t *values;             /* the list (owned), or NULL for min/max */
    double min, max;            /* min/max (NULL values) */
    int log;                    /* 1: log scale */
    int integer;                /* 1: the field takes integers */
} sweep_dim;

typedef struct sweep_spec {
    json_t *base;               /* POST /runs fields, owned */
    size_t n_dims;
    sweep_dim dims[SWEEP_MAX_DIMS];   /* in field name order */
    sweep_algorithm algorithm;
    uint32_t trials;            /* grid: the number of combinations */
    uint32_t parallel;
    int maximize;               /* 1: validation_accuracy; 0: log loss */
    sweep_rule rule;
    uint32_t grace_periods;     /* median, asha */
    uint32_t min_trials;        /* median */
    uint32_t reduction_factor;  /* asha */
    uint64_t seed;
} sweep_spec;

/* Validates one run body (the POST /runs fields of a trial) for
 * sweepspec_parse: 0, or -1 with the reason in err. */
typedef int (*sweepspec_check_fn)(const json_t *run, void *ctx, mn_err *err);

/* Parses and validates a POST /sweeps body into *out (sweepspec_free;
 * zeroed on failure). max_parallel: the workers. check (NULL: none)
 * validates run bodies: the base alone when it names a model, then each
 * searched field's values, min and max with the others at their first
 * value (random), or every combination (grid). Errors name the field
 * ("space.learning_rate.min must be > 0 for scale \"log\"", "base: ...");
 * a missing seed is drawn at random. 0 or -1. */
int sweepspec_parse(const json_t *body, uint32_t max_parallel,
                    sweepspec_check_fn check, void *ctx, sweep_spec *out,
                    mn_err *err);

void sweepspec_free(sweep_spec *s);

/* The resolved request as `params` shows it and the store keeps it (every
 * default filled in; sweepspec_parse reads it back to the same spec).
 * New reference, NULL on OOM. */
json_t *sweepspec_to_json(const sweep_spec *s);

/* The objective's name: "validation_accuracy" or "validation_log_loss". */
const char *sweepspec_objective(const sweep_spec *s);

/* Trial t's run body (the base with the sampled values and the trial's
 * seed; new reference) and, when sampled is not NULL, the sampled values
 * alone (*sampled a new object, field: value). NULL on OOM or for t >=
 * trials. */
json_t *sweepspec_trial(const sweep_spec *s, uint32_t t, json_t **sampled);

/* A trial's objective by period: v[0..n) are periods 1..n (NaN where not
 * measured). Borrowed. */
typedef struct sweep_curve {
    const double *v;
    uint32_t n;
} sweep_curve;

/* Whether the trial with curve own (own.n = p, the period it just
 * finished, of `periods`) stops now, given the other trials' curves
 * others[0..n_others) (any lengths), by the spec's rule (see above).
 * 1 with the reason in why[len] (a sentence), or 0. */
int sweepspec_prune(const sweep_spec *s, sweep_curve own, uint32_t periods,
                    const sweep_curve *others, size_t n_others, char *why,
                    size_t len);

/* numpy.percentile(x[0..n), q) with linear interpolation (x is sorted in
 * place); NaN for n = 0. q in [0, 100]. */
double sweepspec_percentile(double *x, size_t n, double q);

#endif
