/* nn.h: the layers and the feed-forward classifier (linear or dnn).
 *
 * Layers follow llm.c: an explicit *_forward / *_backward pair per layer,
 * row-major tensors, shapes in a comment on every pointer. Forward writes
 * its output; backward ACCUMULATES into parameter gradients (dw, db) and
 * WRITES the input gradient (dinp). Matrix products go through cblas_sgemm.
 *
 * A model is `n_hidden` dense+ReLU layers (optionally with inverted dropout
 * during training) followed by a dense layer to 10 logits and a softmax;
 * n_hidden == 0 is the linear model (softmax regression).
 *
 * Ownership: nn_model owns one parameter block and (when made for
 * training) one gradient block of the same layout: W0,b0,W1,b1,...,
 * with W_l of shape [in_l, out_l]. A model used for inference is read-only
 * and may be shared by threads, each with its own nn_ws. An nn_ws owns the
 * activation buffers for batches of up to max_batch rows. */
#ifndef MN_NN_H
#define MN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "rng.h"

#define NN_MAX_HIDDEN 8
#define NN_MAX_WIDTH 4096

typedef struct nn_arch {
    int n_in;                   /* input features (784) */
    int n_out;                  /* classes (10) */
    int n_hidden;               /* hidden layers; 0 = linear model */
    int hidden[NN_MAX_HIDDEN];  /* widths of the hidden layers */
    float dropout;              /* drop probability on hidden outputs, train only */
} nn_arch;

typedef struct nn_model {
    nn_arch arch;
    int n_layers;               /* dense layers = n_hidden + 1 */
    size_t n_params;            /* floats in params (and grads) */
    float *params;              /* [n_params], owned */
    float *grads;               /* [n_params], owned; NULL for inference-only */
    float *W[NN_MAX_HIDDEN + 1];  /* [in_l, out_l] views into params */
    float *b[NN_MAX_HIDDEN + 1];  /* [out_l] */
    float *dW[NN_MAX_HIDDEN + 1]; /* views into grads (NULL without grads) */
    float *db[NN_MAX_HIDDEN + 1];
} nn_model;

typedef struct nn_ws {
    int max_batch;
    int n_layers;
    const float *in;            /* [B, n_in] input of the last forward,
                                   borrowed from the caller */
    float *acts[NN_MAX_HIDDEN + 2]; /* acts[l+1] = output of dense layer l
                                       (after ReLU/dropout) [B, out_l];
                                       acts[n_layers] = logits [B, n_out] */
    float *probs;               /* [B, n_out] softmax output */
    float *masks[NN_MAX_HIDDEN];/* [B, hidden_l] dropout scale (0 or 1/(1-p)) */
    float *dbuf[2];             /* [B, max width] gradient ping-pong */
    int sparse_in;              /* last forward read a packed input */
    const uint32_t *in_rowptr;  /* that input, CSR: row i's nonzeros are */
    const uint32_t *in_idx;     /*   in_idx/in_val[in_rowptr[i] .. */
    const float *in_val;        /*   in_rowptr[i+1]) (borrowed) */
    uint32_t *sp_rowptr;        /* [B+1] the workspace's own packing */
    uint32_t *sp_idx;           /* [B*n_in] buffers (nn_forward and */
    float *sp_val;              /* [B*n_in]  callers packing a batch) */
    uint32_t *sp_cptr;          /* [n_in + 1] the packed input transposed */
    uint32_t *sp_crow;          /* [B, n_in] */
    float *sp_cval;             /* [B, n_in] */
    float *block;               /* the float buffers' one allocation */
    void *sp_block;             /* the packed input's one allocation */
} nn_ws;

/* ---- layers ---- */

/* out = inp . w + b.
 * out: [B, OC]  inp: [B, C]  w: [C, OC]  b: [OC] */
void nn_dense_forward(float *out, const float *inp, const float *w,
                      const float *b, int B, int C, int OC);

/* dw += inp^T . dout; db += sum_rows(dout); dinp = dout . w^T (if dinp).
 * dinp: [B, C] or NULL  dw: [C, OC]  db: [OC]  dout: [B, OC]
 * inp: [B, C]  w: [C, OC] */
void nn_dense_backward(float *dinp, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, int B, int C, int OC);

/* Packs a mostly-zero input (MNIST images are ~80% zeros) into compressed
 * sparse rows: row i's nonzeros are idx/val[rowptr[i] .. rowptr[i+1]).
 * Returns the count of nonzeros.
 * rowptr: [B+1] out  idx, val: [B*C] out  inp: [B, C] */
size_t nn_sparse_pack(uint32_t *rowptr, uint32_t *idx, float *val,
                      const float *inp, int B, int C);

/* nn_dense_forward for a packed input: out = inp . w + b.
 * out: [B, OC]  rowptr: [B+1]  idx, val: [nnz]  w: [C, OC]  b: [OC] */
void nn_dense_sparse_forward(float *out, const uint32_t *rowptr,
                             const uint32_t *idx, const float *val,
                             const float *w, const float *b, int B, int OC);

/* Transposes a packed input to columns (compressed sparse columns): for
 * input feature j, its nonzeros are rows crow[k], values cval[k] for k in
 * cptr[j]..cptr[j+1].
 * cptr: [C+1] out  crow, cval: [nnz] out  rowptr: [B+1]  idx, val: [nnz] */
void nn_sparse_transpose(uint32_t *cptr, uint32_t *crow, float *cval,
                         const uint32_t *rowptr, const uint32_t *idx,
                         const float *val, int B, int C);

/* nn_dense_backward for a packed input, without dinp:
 * dw += inp^T . dout; db += sum_rows(dout). The input comes transposed
 * (nn_sparse_transpose) so that each touched row of dw is read and
 * written once per batch.
 * dw: [C, OC]  db: [OC]  dout: [B, OC]  cptr: [C+1]  crow, cval: [nnz] */
void nn_dense_sparse_backward(float *dw, float *db, const float *dout,
                              const uint32_t *cptr, const uint32_t *crow,
                              const float *cval, int B, int C, int OC);

/* out = max(inp, 0); out may alias inp.  out, inp: [N] */
void nn_relu_forward(float *out, const float *inp, size_t N);

/* dinp = dout * (out > 0); dinp may alias dout.
 * dinp, dout, out: [N] (out = the forward output) */
void nn_relu_backward(float *dinp, const float *dout, const float *out,
                      size_t N);

/* Inverted dropout: mask[i] = 0 with probability p, else 1/(1-p);
 * out = inp * mask. out may alias inp.  out, inp, mask: [N] */
void nn_dropout_forward(float *out, float *mask, const float *inp, float p,
                        size_t N, rng_state *rng);

/* dinp = dout * mask.  dinp, dout, mask: [N]; dinp may alias dout */
void nn_dropout_backward(float *dinp, const float *dout, const float *mask,
                         size_t N);

/* Row-wise softmax and summed cross-entropy.
 * probs: [B, K] out  logits: [B, K]  labels: [B] (NULL: no loss)
 * Returns sum over rows of -log(probs[label]) (0 when labels is NULL). */
double nn_softmax_xent_forward(float *probs, const float *logits,
                               const uint8_t *labels, int B, int K);

/* dlogits = (probs - onehot(labels)) * scale.
 * dlogits: [B, K]  probs: [B, K]  labels: [B] */
void nn_softmax_xent_backward(float *dlogits, const float *probs,
                              const uint8_t *labels, float scale, int B,
                              int K);

/* ---- model ----
 * (named nn_model_*: libnanomsg, which the test runner loads, exports its
 * own nn_free and nn_init) */

/* Input and output widths of dense layer l (0 .. n_hidden). */
int nn_layer_in(const nn_arch *a, int l);
int nn_layer_out(const nn_arch *a, int l);

/* Checks an architecture; returns 0 or -1 with a reason. */
int nn_arch_check(const nn_arch *a, mn_err *err);

/* Number of floats in the parameter block of an architecture. */
size_t nn_arch_param_count(const nn_arch *a);

/* New model with zeroed parameters; with_grads allocates the gradient
 * block too. Returns NULL with a reason on failure. Free with nn_model_free. */
nn_model *nn_model_new(const nn_arch *a, int with_grads, mn_err *err);
void nn_model_free(nn_model *m);

/* The reference estimators' initialisation: the linear model all zeros;
 * a dnn's weights Glorot-uniform, biases zero. */
void nn_model_init(nn_model *m, rng_state *rng);

/* Bytes an nn_ws for batches of max_batch rows allocates. */
size_t nn_ws_bytes(const nn_arch *a, int max_batch);

/* Workspace for batches of up to max_batch rows (NULL on failure). */
nn_ws *nn_ws_new(const nn_arch *a, int max_batch, mn_err *err);
void nn_ws_free(nn_ws *ws);

/* The first layer reads its input packed (nn_sparse_pack) when at most
 * this fraction of it is nonzero; denser inputs go through cblas_sgemm. */
#define NN_SPARSE_MAX_DENSITY 0.5

/* Forward pass over B <= ws->max_batch rows. With train != 0 dropout is
 * applied (rng required); otherwise not. Returns the summed cross-entropy
 * if labels is non-NULL. Probabilities land in ws->probs [B, n_out].
 * x: [B, n_in]  labels: [B] or NULL */
double nn_forward(const nn_model *m, nn_ws *ws, const float *x,
                  const uint8_t *labels, int B, int train, rng_state *rng);

/* nn_forward for an input already packed as compressed sparse rows
 * (e.g. by ds_pack straight from a dataset's bytes, or a slice of a
 * ds_packed set): the first layer reads it sparsely; nothing is gathered.
 * The arrays are borrowed and must stay valid until nn_backward.
 * rowptr: [B+1] offsets into idx/val (need not start at 0) */
double nn_forward_csr(const nn_model *m, nn_ws *ws, const uint32_t *rowptr,
                      const uint32_t *idx, const float *val,
                      const uint8_t *labels, int B, int train,
                      rng_state *rng);

/* Backward pass of the last nn_forward (whose x must still be valid) for
 * the summed loss: zeroes m->grads, then fills them. labels: [B] */
void nn_backward(nn_model *m, nn_ws *ws, const uint8_t *labels, int B);

#endif
