/* cnn.h: the convolutional network, the second model kind: convolutions
 * (stride 1, "valid" or "same" zero padding, ReLU), each optionally
 * followed by a max pooling, then dense ReLU hidden layers (with inverted
 * dropout during training when dropout > 0), then a dense layer to n_out
 * logits and a softmax. The input is one channel of side x side pixels,
 * side * side = n_in (MNIST's 28 x 28).
 *
 * The architecture's layer list: MODEL_LAYER_CONV or MODEL_LAYER_CONV_SAME
 * {size = filters, kernel, stride = 1}, each possibly followed by one
 * MODEL_LAYER_POOL {kernel = stride = the pool size, 2..CNN_MAX_POOL},
 * then MODEL_LAYER_DENSE {size = units}. At least one convolution.
 *
 * The convolutions' tensors are CNHW ([channels, B, height, width]; see
 * layers.h for why); the last map is transposed to NCHW and flattens
 * ([B, channels * height * width]) into the first dense layer, so that
 * the first dense layer's rows are in (channel, row, column) order.
 *
 * Parameter layout: per convolution W [C*K*K, OC] (layers.h's
 * nn_conv2d_dims), b [OC]; then per dense layer W [in, out], b [out], as
 * the mlp's. */
#ifndef MN_CNN_H
#define MN_CNN_H

#include "model.h"

#define CNN_MAX_FILTERS 256     /* output channels of a convolution */
#define CNN_MAX_KERNEL 11       /* kernel side */
#define CNN_MAX_POOL 4          /* pool side */

/* A convolution runs over chunks of nb images (layers.h), nb the most
 * whose columns take at most CNN_COL_FLOATS floats (1 when one image's
 * take more): 16K floats, 64 KiB, so that a chunk's columns and its map
 * (pooled in the same pass, nn_conv2d_pool_forward) stay in a core's
 * nearest caches; for the default cnn that is one image a chunk in both
 * convolutions, measured 5-10% faster in training than 64K floats (2 and
 * 4 images) and 15% faster than 256K (bench/NOTES.md). The workspace
 * holds one chunk's columns (twice, with their gradient, where a
 * convolution without a pool needs it). A -D at build time overrides it
 * for measurements. */
#ifndef CNN_COL_FLOATS
#define CNN_COL_FLOATS (16 * 1024)
#endif

extern const model_kind cnn_kind;

/* One convolution as an API names it. */
typedef struct cnn_conv {
    int filters;                /* output channels, 1..CNN_MAX_FILTERS */
    int kernel;                 /* side, 1..CNN_MAX_KERNEL */
    int pool;                   /* max-pool side and stride; 1 = none */
    int same;                   /* 1: "same" padding, 0: "valid" */
} cnn_conv;

/* Sets *a to a cnn with n_conv convolutions and n_hidden dense hidden
 * layers; n_in and n_out are left as they are. Returns 0, or -1 with a
 * reason when the layers (pools included) exceed MODEL_MAX_LAYERS; the
 * values themselves are model_arch_check's to judge.
 * conv: [n_conv]  hidden: [n_hidden] */
int cnn_arch(model_arch *a, int n_conv, const cnn_conv *conv, int n_hidden,
             const int *hidden, float dropout, mn_err *err);

/* The convolution whose output map, as the workspace keeps it (after its
 * pool, if any: a pooled convolution's whole map is never stored), takes
 * the most floats an example (the workspace's largest part, for
 * messages): its index among the convolutions, and the floats in
 * *floats. a: a checked cnn. */
int cnn_largest_map(const model_arch *a, size_t *floats);

#endif
