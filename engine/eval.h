/* eval.h: metrics of a model on a dataset: mean log loss (on
 * probabilities), accuracy, and the 10x10 confusion matrix (rows = true
 * label, columns = predicted). Forward passes run in large batches.
 *
 * Ownership: nothing is retained; the model and dataset are borrowed
 * read-only, so several threads may evaluate the same model at once. */
#ifndef MN_EVAL_H
#define MN_EVAL_H

#include <stdint.h>

#include "ds.h"
#include "err.h"
#include "model.h"

#define EVAL_BATCH 1000

typedef struct eval_result {
    uint32_t examples;
    double log_loss;                          /* mean over examples */
    double accuracy;                          /* fraction correct */
    uint32_t confusion[DS_CLASSES][DS_CLASSES]; /* [true][predicted] */
} eval_result;

/* Forward pass over the dataset rows rows[0..B) (train != 0: with
 * dropout, for training): packed straight from the bytes (ds_pack) when
 * the batch is mostly zeros, else gathered into x [B, n_in] for the dense
 * path. Labels land in y [B]. Returns the summed
 * loss; probabilities are in ws->probs. */
double eval_forward(const model *m, model_ws *ws, const ds_dataset *d,
                    const uint32_t *rows, float *x, uint8_t *y, int B,
                    int train, rng_state *rng);

/* Evaluates m on the rows idx[0..n) of d (idx NULL: rows 0..n). */
int eval_run(const model *m, const ds_dataset *d, const uint32_t *idx,
             uint32_t n, eval_result *out, mn_err *err);

/* eval_run over a packed set (all its rows), with a caller's workspace
 * (any max_batch; the set is walked in slices of it). */
int eval_run_packed(const model *m, const ds_packed *p, model_ws *ws,
                    eval_result *out, mn_err *err);

/* Row-normalised confusion: norm[t][p] = counts[t][p] / sum_p counts[t][p]
 * (a row with no examples stays all zeros). */
void eval_normalize(const uint32_t counts[DS_CLASSES][DS_CLASSES],
                    double norm[DS_CLASSES][DS_CLASSES]);

/* Index of the largest of p[0..k). */
int eval_argmax(const float *p, int k);

#endif
