/* mlp.h: the multilayer perceptron, the first model kind: n_layers dense
 * ReLU hidden layers (with inverted dropout during training when
 * dropout > 0), then a dense layer to n_out logits and a softmax.
 * n_layers == 0 is the linear model (softmax regression); the exercise's
 * dnn is [100, 100].
 *
 * Parameter layout: W0,b0,W1,b1,... with W_l of shape [in_l, out_l].
 * The first layer reads a packed input with the sparse kernels of
 * layers.h. */
#ifndef MN_MLP_H
#define MN_MLP_H

#include "model.h"

#define MLP_MAX_WIDTH 4096      /* units in a hidden layer */

extern const model_kind mlp_kind;

/* The mlp's own workspace (model_ws.kind_ws). */
typedef struct mlp_ws {
    float *acts[MODEL_MAX_LAYERS + 2]; /* acts[l+1] = output of dense layer
                                          l (after ReLU/dropout) [B, out_l];
                                          acts[n_layers+1] = logits */
    float *masks[MODEL_MAX_LAYERS]; /* [B, hidden_l] dropout scale
                                       (0 or 1/(1-p)) */
    float *dbuf[2];             /* [B, max width] gradient ping-pong */
    uint32_t *sp_cptr;          /* [n_in + 1] the packed input transposed */
    uint32_t *sp_crow;          /* [B, n_in] */
    float *sp_cval;             /* [B, n_in] */
    float *block;               /* the float buffers' one allocation */
    void *sp_block;             /* the transposition's one allocation */
} mlp_ws;

/* Sets *a to an mlp with the given hidden widths (n_hidden <=
 * MODEL_MAX_LAYERS) and dropout; n_in and n_out are left as they are.
 * hidden: [n_hidden] */
void mlp_arch(model_arch *a, int n_hidden, const int *hidden, float dropout);

/* Input and output widths of dense layer l (0 .. n_layers). */
int mlp_layer_in(const model_arch *a, int l);
int mlp_layer_out(const model_arch *a, int l);

/* Views of dense layer l's weights W_l [in_l, out_l] and biases b_l
 * [out_l] in a block of the mlp's layout (the parameters or the
 * gradients). block: [model_param_count(a)] */
float *mlp_W(const model_arch *a, float *block, int l);
float *mlp_b(const model_arch *a, float *block, int l);

#endif
