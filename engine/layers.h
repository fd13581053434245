/* layers.h: the layers models are built from, in the manner of llm.c: an
 * explicit *_forward / *_backward pair per layer, row-major tensors, shapes
 * in a comment on every pointer. Forward writes its output; backward
 * ACCUMULATES into parameter gradients (dw, db) and WRITES the input
 * gradient (dinp). Matrix products go through cblas_sgemm; the first
 * dense layer also has kernels for a packed (compressed sparse rows)
 * input, tuned for MNIST's mostly-zero images (bench/NOTES.md).
 *
 * The layers own nothing and keep no state: buffers are the caller's. */
#ifndef MN_LAYERS_H
#define MN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

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

#endif
