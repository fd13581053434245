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

/* A 2-D convolution's shapes: stride 1, zero padding pad_t rows above
 * (and OH - H + K - 1 - pad_t below), pad_l columns left (likewise right).
 * Tensors are NCHW: [B, C, H, W] row-major. The weights are [C*K*K, OC],
 * row (c*K + ki)*K + kj for input channel c and kernel offset (ki, kj),
 * so that a convolution is a dense layer over im2col's columns and
 * model_weights' dense view fits it.
 *
 * Layout: NCHW with per-image im2col. An image's output [OC, OH*OW] is
 * one sgemm of w^T [OC, C*K*K] by its columns [C*K*K, OH*OW], written in
 * place with no transposition, and the last map flattens into the dense
 * layers' [B, features] as it lies. NHWC runs the same sgemm shapes
 * transposed ([OH*OW, C*K*K] by [C*K*K, OC]) with columns gathered by
 * whole K*C rows; bench/bench_cnn.c times both forward passes on the
 * default cnn's convolutions (bench/NOTES.md): about even on the first
 * (one channel), NHWC ~16% faster on the second, in one run on a loaded
 * machine. NCHW stays until an idle-machine measurement shows NHWC's gain
 * over the whole step (its backward needs the same transposed col2im). */
typedef struct nn_conv2d_dims {
    int C, H, W;                /* input channels, height, width */
    int OC, K;                  /* output channels, kernel side */
    int pad_t, pad_l;           /* zero rows above, zero columns left */
    int OH, OW;                 /* output height, width */
} nn_conv2d_dims;

/* Fills *d for an input C x H x W, OC filters of K x K, and "valid"
 * (same == 0: no padding, OH = H - K + 1) or "same" (OH = H; the odd
 * row or column of an even kernel's padding goes below and right, as
 * TensorFlow and PyTorch do) padding. OH or OW below 1 means the kernel
 * does not fit; the caller checks. */
void nn_conv2d_dims_set(nn_conv2d_dims *d, int C, int H, int W, int OC,
                        int K, int same);

/* The columns of one image for its convolution:
 * col[(c*K + ki)*K + kj][oh*OW + ow] = inp[c][oh + ki - pad_t][ow + kj - pad_l]
 * (0 outside the image).  col: [C*K*K, OH*OW] out  inp: [C, H, W] */
void nn_im2col(float *col, const float *inp, const nn_conv2d_dims *d);

/* The adjoint of nn_im2col: adds each column entry back onto the input
 * position it was read from.  dinp: [C, H, W] (accumulated)
 * dcol: [C*K*K, OH*OW] */
void nn_col2im(float *dinp, const float *dcol, const nn_conv2d_dims *d);

/* out = conv(inp, w) + b, image by image through im2col and cblas_sgemm.
 * out: [B, OC, OH, OW]  col: [C*K*K, OH*OW] scratch  inp: [B, C, H, W]
 * w: [C*K*K, OC]  b: [OC] */
void nn_conv2d_forward(float *out, float *col, const float *inp,
                       const float *w, const float *b, int B,
                       const nn_conv2d_dims *d);

/* dw += the weights' gradient; db += sum of dout over images and
 * positions; dinp = the input's gradient (if dinp).
 * dinp: [B, C, H, W] or NULL  dw: [C*K*K, OC]  db: [OC]
 * col, dcol: [C*K*K, OH*OW] scratch  dout: [B, OC, OH, OW]
 * inp: [B, C, H, W]  w: [C*K*K, OC] */
void nn_conv2d_backward(float *dinp, float *dw, float *db, float *col,
                        float *dcol, const float *dout, const float *inp,
                        const float *w, int B, const nn_conv2d_dims *d);

/* Max pooling of P x P windows, stride P (a trailing row or column that
 * does not fill a window is dropped): out[b][c][i][j] = the maximum of
 * inp[b][c][P*i .. P*i+P)[P*j .. P*j+P), and argmax its position
 * (row * W + column within the channel's plane; the first on ties).
 * out, argmax: [B, C, H/P, W/P]  inp: [B, C, H, W] */
void nn_maxpool_forward(float *out, uint32_t *argmax, const float *inp,
                        int B, int C, int H, int W, int P);

/* dinp = dout routed to each window's maximum, 0 elsewhere.
 * dinp: [B, C, H, W]  dout, argmax: [B, C, H/P, W/P] */
void nn_maxpool_backward(float *dinp, const float *dout,
                         const uint32_t *argmax, int B, int C, int H, int W,
                         int P);

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
