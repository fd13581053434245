/* enc.h: JSON encoding of engine results (periods, confusion matrices,
 * evaluations), shared by the CLI's --json output and the HTTP routes.
 *
 * Ownership: every function returns a new reference (NULL on OOM). */
#ifndef MN_ENC_H
#define MN_ENC_H

#include <jansson.h>
#include <stdint.h>

#include "engine/eval.h"
#include "engine/train.h"

/* {"period","step","train_log_loss","validation_log_loss",
 *  "validation_accuracy","seconds"} */
json_t *enc_period(const train_period *p);

/* {"set": set, "labels": [0..9], "counts": 10x10, "normalized": 10x10,
 *  "accuracy": a}, and "class_names" (the labels' names) when
 *  class_names (borrowed, [DS_CLASSES]) is not NULL */
json_t *enc_confusion(const char *set, const eval_result *e,
                      const char *const *class_names);

/* The class names of a dataset by name (a built-in one's), or NULL. */
const char *const *enc_class_names(const char *dataset);

/* {"dataset", "examples", "accuracy", "log_loss", "confusion": {...}};
 * the confusion names the classes of a built-in dataset that has names */
json_t *enc_evaluation(const char *dataset, const eval_result *e);

/* Writes a probability (a float in 0..1) as a JSON number with 9
 * significant digits, enough to give back the same float, without going
 * through printf: fixed notation from 1e-4 up, exponent notation below.
 * out needs 24 bytes; returns the length written (no NUL). */
size_t enc_prob(char *out, float p);

/* Writes n probabilities p[0..n) as enc_prob does, separated by commas
 * (no brackets). out needs 25 * n bytes; returns the length written. */
size_t enc_probs(char *out, const float *p, size_t n);

/* Writes v in decimal, without going through printf (the hot paths'
 * integers). out needs 20 bytes; returns the length written (no NUL). */
size_t enc_u64(char *out, uint64_t v);

/* A JSON number that is never NaN/inf (those become null). */
json_t *enc_real(double x);

/* A time in ms since the epoch as ISO 8601 UTC with milliseconds
 * ("2026-01-02T03:04:05.678Z"), or JSON null for 0. New reference. */
json_t *enc_time(int64_t ms);

#endif
