/* eval.c: log loss, accuracy and confusion matrix of a model. */
#include "eval.h"

#include <stdlib.h>
#include <string.h>

int eval_argmax(const float *p, int k)
{
    int best = 0;
    for (int i = 1; i < k; i++)
        if (p[i] > p[best]) best = i;
    return best;
}

/* Forward pass over dataset rows: packed straight from the bytes when the
 * batch is mostly zeros, else gathered into x [B, n_in] for the dense
 * path. Labels land in y [B]. */
double eval_forward(const model *m, model_ws *ws, const ds_dataset *d,
                    const uint32_t *rows, float *x, uint8_t *y, int B,
                    int train, rng_state *rng)
{
    size_t P = (size_t)d->rows * d->cols;
    uint32_t nnz = ds_pack(d, rows, B, ws->sp_rowptr, ws->sp_idx, ws->sp_val, y);
    if (nnz <= MODEL_SPARSE_MAX_DENSITY * B * P)
        return model_forward_csr(m, ws, ws->sp_rowptr, ws->sp_idx,
                                 ws->sp_val, y, B, train, rng);
    ds_gather(d, rows, B, x, y);
    return model_forward(m, ws, x, y, B, train, rng);
}

/* Adds a batch's predictions (ws->probs [B, K]) against labels y [B] to
 * the confusion counts; returns how many were right. */
static uint32_t tally(eval_result *out, const model_ws *ws, const uint8_t *y,
                      int B, int K)
{
    uint32_t correct = 0;
    for (int i = 0; i < B; i++) {
        int pred = eval_argmax(ws->probs + (size_t)i * K, K);
        correct += pred == y[i];
        if (y[i] < DS_CLASSES && pred < DS_CLASSES) out->confusion[y[i]][pred]++;
    }
    return correct;
}

int eval_run_packed(const model *m, const ds_packed *p, model_ws *ws,
                    eval_result *out, mn_err *err)
{
    memset(out, 0, sizeof *out);
    if (p->n == 0) return mn_errf(err, "nothing to evaluate");
    if (m->arch.n_in != (int)p->cols)
        return mn_errf(err, "model takes %d pixels, the set's images have %u",
                       m->arch.n_in, p->cols);
    double loss = 0.0;
    uint32_t correct = 0;
    for (uint32_t start = 0; start < p->n; start += (uint32_t)ws->max_batch) {
        int B = p->n - start < (uint32_t)ws->max_batch ? (int)(p->n - start)
                                                       : ws->max_batch;
        loss += model_forward_csr(m, ws, p->rowptr + start, p->idx, p->val,
                                  p->labels + start, B, 0, NULL);
        correct += tally(out, ws, p->labels + start, B, m->arch.n_out);
    }
    out->examples = p->n;
    out->log_loss = loss / p->n;
    out->accuracy = (double)correct / p->n;
    return 0;
}

int eval_run(const model *m, const ds_dataset *d, const uint32_t *idx,
             uint32_t n, eval_result *out, mn_err *err)
{
    int rc = -1;
    model_ws *ws = NULL;
    float *x = NULL;
    uint32_t *seq = NULL;
    uint8_t y[EVAL_BATCH];
    memset(out, 0, sizeof *out);
    if (n == 0) return mn_errf(err, "nothing to evaluate");
    if (m->arch.n_in != (int)(d->rows * d->cols))
        return mn_errf(err, "model takes %d pixels, dataset images have %u",
                       m->arch.n_in, d->rows * d->cols);
    int bmax = n < EVAL_BATCH ? (int)n : EVAL_BATCH;
    ws = model_ws_new(&m->arch, bmax, err);
    if (!ws) goto done;
    x = malloc(sizeof(float) * (size_t)bmax * m->arch.n_in);
    seq = malloc(sizeof(uint32_t) * (size_t)bmax);
    if (!x || !seq) {
        mn_errf(err, "out of memory for evaluation");
        goto done;
    }
    double loss = 0.0;
    uint32_t correct = 0;
    for (uint32_t start = 0; start < n; start += (uint32_t)bmax) {
        int B = n - start < (uint32_t)bmax ? (int)(n - start) : bmax;
        const uint32_t *rows = idx ? idx + start : seq;
        if (!idx)
            for (int i = 0; i < B; i++) seq[i] = start + (uint32_t)i;
        loss += eval_forward(m, ws, d, rows, x, y, B, 0, NULL);
        correct += tally(out, ws, y, B, m->arch.n_out);
    }
    out->examples = n;
    out->log_loss = loss / n;
    out->accuracy = (double)correct / n;
    rc = 0;
done:
    free(seq);
    free(x);
    model_ws_free(ws);
    return rc;
}

void eval_normalize(const uint32_t counts[DS_CLASSES][DS_CLASSES],
                    double norm[DS_CLASSES][DS_CLASSES])
{
    for (int t = 0; t < DS_CLASSES; t++) {
        uint64_t sum = 0;
        for (int p = 0; p < DS_CLASSES; p++) sum += counts[t][p];
        for (int p = 0; p < DS_CLASSES; p++)
            norm[t][p] = sum ? (double)counts[t][p] / (double)sum : 0.0;
    }
}
