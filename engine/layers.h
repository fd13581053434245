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
 * The weights are [C*K*K, OC], row (c*K + ki)*K + kj for input channel c
 * and kernel offset (ki, kj), so that a convolution is a dense layer over
 * im2col's columns and model_weights' dense view fits it.
 *
 * Layout: CNHW, [C, B, H, W] row-major (channel-major, then image), with
 * im2col over many images at once. The columns of nb images are one
 * matrix [C*K*K, nb*OH*OW], and a convolution over them is ONE sgemm,
 * w^T [OC, C*K*K] by the columns, whose product [OC, nb*OH*OW] is already
 * the output's CNHW layout (a slice of it, through sgemm's leading
 * dimension): no transposition between layers, one sgemm per layer and
 * pass (forward, weight gradient, input gradient) per chunk of images
 * (with NCHW a product over several images would need a transposition of
 * every map). Pooling and ReLU work per H x W plane and do not care. The
 * chunk (nb) bounds the columns' scratch; cnn.h's CNN_COL_FLOATS sets
 * it, by measurement (bench/NOTES.md). */
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

/* The columns of images i0 .. i0+nb-1 of a batch of B for a convolution,
 * n = (i - i0)*OH*OW + oh*OW + ow:
 * col[(c*K + ki)*K + kj][n] = inp[c][i][oh + ki - pad_t][ow + kj - pad_l]
 * (0 outside the image).
 * col: [C*K*K, nb*OH*OW] out  inp: [C, B, H, W] */
void nn_im2col(float *col, const float *inp, int B, int i0, int nb,
               const nn_conv2d_dims *d);

/* The adjoint of nn_im2col: adds each column entry back onto the input
 * position it was read from.  dinp: [C, B, H, W] (accumulated)
 * dcol: [C*K*K, nb*OH*OW] */
void nn_col2im(float *dinp, const float *dcol, int B, int i0, int nb,
               const nn_conv2d_dims *d);

/* out = conv(inp, w) + b over chunks of nb images (the last may be
 * smaller), one im2col and one cblas_sgemm a chunk.
 * out: [OC, B, OH, OW]  col: [C*K*K, nb*OH*OW] scratch
 * inp: [C, B, H, W]  w: [C*K*K, OC]  b: [OC]  nb >= 1 */
void nn_conv2d_forward(float *out, float *col, const float *inp,
                       const float *w, const float *b, int B, int nb,
                       const nn_conv2d_dims *d);

/* out = relu(maxpool(conv(inp, w)) + b), the pooling over P x P windows
 * with stride P as nn_maxpool_forward's (argmax likewise), over chunks
 * of nb images: per chunk one im2col and one cblas_sgemm into map, then
 * each plane pooled, the bias added and the ReLU applied while the
 * chunk's map is still in cache. The bias comes after the pooling: the
 * maximum commutes with adding a per-channel constant (rounding is
 * monotonic), on a quarter of the values at P = 2; likewise the ReLU.
 * The whole map is never stored.
 * out, argmax: [OC, B, OH/P, OW/P]  col: [C*K*K, nb*OH*OW] scratch
 * map: [OC, nb*OH*OW] scratch  inp: [C, B, H, W]  w: [C*K*K, OC]
 * b: [OC]  nb >= 1, P >= 2 */
void nn_conv2d_pool_forward(float *out, uint32_t *argmax, float *col,
                            float *map, const float *inp, const float *w,
                            const float *b, int B, int nb, int P,
                            const nn_conv2d_dims *d);

/* dw += the weights' gradient; db += sum of dout over images and
 * positions; dinp = the input's gradient (if dinp). Chunks of nb images:
 * per chunk one im2col, one sgemm for dw and (with dinp) one for the
 * columns' gradient and a col2im. The summation order depends on B and
 * nb, never on anything else (determinism).
 * dinp: [C, B, H, W] or NULL  dw: [C*K*K, OC]  db: [OC]
 * col, dcol: [C*K*K, nb*OH*OW] scratch  dout: [OC, B, OH, OW]
 * inp: [C, B, H, W]  w: [C*K*K, OC] */
void nn_conv2d_backward(float *dinp, float *dw, float *db, float *col,
                        float *dcol, const float *dout, const float *inp,
                        const float *w, int B, int nb,
                        const nn_conv2d_dims *d);

/* The backward of a convolution whose map is max-pooled (P x P windows,
 * stride P), from the pooled map's gradient: the same dw, db and dinp as
 * routing it to each window's maximum then nn_conv2d_backward, without
 * that map's gradient (cnn.c's backward of every pooled convolution). Only each window's maximum has a gradient (1 in P*P of the
 * map, fewer where a ReLU after the pool passed none), so the work is
 * per nonzero pooled gradient g at map position (oh, ow), over an image
 * at a time transposed to [H, W, C] (zero-padded for "same"):
 *   dw[c, ki, kj][o] += g * x[oh + ki - pad_t][ow + kj - pad_l][c]
 *   dinp[c][oh + ki - pad_t][ow + kj - pad_l] += g * w[c, ki, kj][o]
 * for each kernel row ki a run of K*C consecutive floats, [kj, c], in
 * both (bench/NOTES.md has the measurements against sgemm). The
 * summation order depends on B only (determinism).
 * dinp: [C, B, H, W] or NULL (written)  dw: [C*K*K, OC]  db: [OC]
 * (accumulated)  scratch: [nn_conv2d_pool_backward_scratch(d)]
 * dpool, argmax: [OC, B, OH/P, OW/P] (argmax: row * OW + column in the
 * map, as nn_maxpool_forward gives it)  inp: [C, B, H, W]
 * w: [C*K*K, OC] */
void nn_conv2d_pool_backward(float *dinp, float *dw, float *db,
                             float *scratch, const float *dpool,
                             const uint32_t *argmax, const float *inp,
                             const float *w, int B, int P,
                             const nn_conv2d_dims *d);

/* The floats of nn_conv2d_pool_backward's scratch:
 * C*K*K*OC + K*R*OC + 2 * (OH+K-1)*(OW+K-1)*C + R + 3 * OH*OW, where R
 * is K*C rounded up to a multiple of 16. */
size_t nn_conv2d_pool_backward_scratch(const nn_conv2d_dims *d);

/* Max pooling of P x P windows, stride P, over n_planes planes of H x W
 * (B*C of them, in NCHW or CNHW order alike; a trailing row or column
 * that does not fill a window is dropped): out[p][i][j] = the maximum of
 * inp[p][P*i .. P*i+P)[P*j .. P*j+P), and argmax its position (row * W +
 * column within the plane; the first on ties).
 * out, argmax: [n_planes, H/P, W/P]  inp: [n_planes, H, W] */
void nn_maxpool_forward(float *out, uint32_t *argmax, const float *inp,
                        size_t n_planes, int H, int W, int P);

/* Transposes the two outer axes of a [R, S, L] tensor: out[s][r][:] =
 * inp[r][s][:] (CNHW [C, B, H*W] to NCHW [B, C*H*W] with R = C, S = B, and
 * back with R = B, S = C).  out: [S, R, L]  inp: [R, S, L] */
void nn_swap_outer(float *out, const float *inp, int R, int S, int L);

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
