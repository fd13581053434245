/* mlp.c: the multilayer perceptron kind (see mlp.h), stacked from the
 * layers of layers.h. */
#include "mlp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"

void mlp_arch(model_arch *a, int n_hidden, const int *hidden, float dropout)
{
    a->kind = &mlp_kind;
    a->n_layers = n_hidden;
    memset(a->layers, 0, sizeof a->layers);
    for (int l = 0; l < n_hidden && l < MODEL_MAX_LAYERS; l++) {
        a->layers[l].type = MODEL_LAYER_DENSE;
        a->layers[l].size = (uint32_t)hidden[l];
    }
    a->dropout = dropout;
}

int mlp_layer_in(const model_arch *a, int l)
{
    return l == 0 ? a->n_in : (int)a->layers[l - 1].size;
}

int mlp_layer_out(const model_arch *a, int l)
{
    return l == a->n_layers ? a->n_out : (int)a->layers[l].size;
}

/* Offset of dense layer l's W_l in the parameter block. */
static size_t layer_offset(const model_arch *a, int l)
{
    size_t off = 0;
    for (int k = 0; k < l; k++) {
        size_t in = (size_t)mlp_layer_in(a, k), out = (size_t)mlp_layer_out(a, k);
        off += in * out + out;
    }
    return off;
}

float *mlp_W(const model_arch *a, float *block, int l)
{
    return block + layer_offset(a, l);
}

float *mlp_b(const model_arch *a, float *block, int l)
{
    return block + layer_offset(a, l) +
           (size_t)mlp_layer_in(a, l) * mlp_layer_out(a, l);
}

static int mlp_check(const model_arch *a, mn_err *err)
{
    for (int l = 0; l < a->n_layers; l++) {
        const model_layer *y = &a->layers[l];
        if (y->type != MODEL_LAYER_DENSE || y->kernel || y->stride)
            return mn_errf(err, "layer %d: an mlp has dense layers only", l);
        if (y->size < 1 || y->size > MLP_MAX_WIDTH)
            return mn_errf(err, "hidden_units[%d] = %d outside 1..%d", l,
                           (int)y->size, MLP_MAX_WIDTH);
    }
    return 0;
}

static size_t mlp_param_count(const model_arch *a)
{
    return layer_offset(a, a->n_layers + 1);
}

/* The reference estimators' initialisation: the linear model all zeros;
 * a dnn's weights Glorot-uniform, biases zero. */
static void mlp_init(model *m, rng_state *rng)
{
    const model_arch *a = &m->arch;
    if (a->n_layers == 0) return; /* linear: zeros, as LinearClassifier */
    for (int l = 0; l <= a->n_layers; l++) {
        int in = mlp_layer_in(a, l), out = mlp_layer_out(a, l);
        float limit = sqrtf(6.0f / (float)(in + out));
        float *W = mlp_W(a, m->params, l);
        size_t n = (size_t)in * out;
        for (size_t i = 0; i < n; i++)
            W[i] = (2.0f * rng_uniform(rng) - 1.0f) * limit;
    }
}

/* Floats of the float block, bytes of the transposition block, and the
 * widest layer. */
static void ws_sizes(const model_arch *a, size_t B, size_t *floats,
                     size_t *sparse_bytes, size_t *maxw_out)
{
    size_t total = 0, maxw = (size_t)a->n_out;
    for (int l = 0; l <= a->n_layers; l++) total += B * (size_t)mlp_layer_out(a, l);
    for (int l = 0; l < a->n_layers; l++) {
        total += B * (size_t)a->layers[l].size;
        if ((size_t)a->layers[l].size > maxw) maxw = (size_t)a->layers[l].size;
    }
    *floats = total + 2 * B * maxw;
    size_t P = (size_t)a->n_in;
    *sparse_bytes = B * P * (sizeof(uint32_t) + sizeof(float)) +
                    (P + 1) * sizeof(uint32_t);
    *maxw_out = maxw;
}

static size_t mlp_ws_bytes(const model_arch *a, int max_batch)
{
    size_t floats, sparse, maxw;
    ws_sizes(a, (size_t)max_batch, &floats, &sparse, &maxw);
    return floats * sizeof(float) + sparse + sizeof(mlp_ws);
}

static void mlp_ws_free(void *p)
{
    mlp_ws *ws = p;
    if (!ws) return;
    free(ws->sp_block);
    free(ws->block);
    free(ws);
}

static void *mlp_ws_new(const model_arch *a, int max_batch, mn_err *err)
{
    mlp_ws *ws = calloc(1, sizeof *ws);
    if (!ws) goto oom;
    size_t B = (size_t)max_batch, total, sparse_bytes, maxw;
    ws_sizes(a, B, &total, &sparse_bytes, &maxw);
    ws->block = malloc(total * sizeof(float));
    if (!ws->block) goto oom;
    float *p = ws->block;
    for (int l = 0; l <= a->n_layers; l++) {
        ws->acts[l + 1] = p;
        p += B * (size_t)mlp_layer_out(a, l);
    }
    for (int l = 0; l < a->n_layers; l++) {
        ws->masks[l] = p;
        p += B * (size_t)a->layers[l].size;
    }
    ws->dbuf[0] = p;
    ws->dbuf[1] = p + B * maxw;
    size_t P = (size_t)a->n_in;
    ws->sp_block = malloc(sparse_bytes);
    if (!ws->sp_block) goto oom;
    ws->sp_cval = ws->sp_block;
    ws->sp_crow = (uint32_t *)(ws->sp_cval + B * P);
    ws->sp_cptr = ws->sp_crow + B * P;
    return ws;
oom:
    mlp_ws_free(ws);
    mn_errf(err, "out of memory allocating a workspace for batch %d", max_batch);
    return NULL;
}

/* The forward pass from layer 0 on; layer 0 reads the packed input if
 * ws->sparse_in, else ws->in [B, n_in]. */
static double mlp_forward(const model *m, model_ws *ws, const uint8_t *labels,
                          int B, int train, rng_state *rng)
{
    const model_arch *a = &m->arch;
    mlp_ws *k = ws->kind_ws;
    const float *h = ws->in;
    float *W = m->params;
    for (int l = 0; l <= a->n_layers; l++) {
        int in = mlp_layer_in(a, l), out = mlp_layer_out(a, l);
        const float *b = W + (size_t)in * out;
        float *o = k->acts[l + 1];
        if (l == 0 && ws->sparse_in)
            nn_dense_sparse_forward(o, ws->in_rowptr, ws->in_idx, ws->in_val,
                                    W, b, B, out);
        else
            nn_dense_forward(o, h, W, b, B, in, out);
        if (l < a->n_layers) {
            size_t N = (size_t)B * out;
            nn_relu_forward(o, o, N);
            if (train && a->dropout > 0.0f)
                nn_dropout_forward(o, k->masks[l], o, a->dropout, N, rng);
        }
        h = o;
        W += (size_t)in * out + out;
    }
    return nn_softmax_xent_forward(ws->probs, h, labels, B, a->n_out);
}

static void mlp_backward(model *m, model_ws *ws, const uint8_t *labels, int B)
{
    const model_arch *a = &m->arch;
    mlp_ws *k = ws->kind_ws;
    int cur = 0;
    float *d = k->dbuf[cur];
    nn_softmax_xent_backward(d, ws->probs, labels, 1.0f, B, a->n_out);
    for (int l = a->n_layers; l >= 0; l--) {
        int in = mlp_layer_in(a, l), out = mlp_layer_out(a, l);
        size_t off = layer_offset(a, l);
        float *dW = m->grads + off, *db = dW + (size_t)in * out;
        const float *W = m->params + off;
        const float *inp = l == 0 ? ws->in : k->acts[l];
        float *dinp = l == 0 ? NULL : k->dbuf[cur ^ 1];
        if (l == 0 && ws->sparse_in) {
            nn_sparse_transpose(k->sp_cptr, k->sp_crow, k->sp_cval,
                                ws->in_rowptr, ws->in_idx, ws->in_val, B, in);
            nn_dense_sparse_backward(dW, db, d, k->sp_cptr, k->sp_crow,
                                     k->sp_cval, B, in, out);
        }
        else
            nn_dense_backward(dinp, dW, db, d, inp, W, B, in, out);
        if (l > 0) {
            /* acts[l] = dropout(relu(z)): a zero output blocks the gradient
             * either way, so one pass over the output serves both. */
            size_t N = (size_t)B * in;
            if (a->dropout > 0.0f)
                nn_dropout_backward(dinp, dinp, k->masks[l - 1], N);
            nn_relu_backward(dinp, dinp, k->acts[l], N);
            cur ^= 1;
            d = dinp;
        }
    }
}

static int mlp_layer_count(const model_arch *a)
{
    return a->n_layers + 1;
}

static void mlp_layer_weights(const model *m, int l, model_weights *out)
{
    out->n_in = mlp_layer_in(&m->arch, l);
    out->n_out = mlp_layer_out(&m->arch, l);
    out->w = mlp_W(&m->arch, m->params, l);
    out->b = out->w + (size_t)out->n_in * out->n_out;
}

/* The first layer's filters are the columns of W_0 [n_in, out_0], one per
 * unit (per class for the linear model), each a flat vector of n_in. */
static void mlp_filters(const model_arch *a, int *n, int *h, int *w)
{
    *n = mlp_layer_out(a, 0);
    *h = 1;
    *w = a->n_in;
}

static void mlp_filter(const model *m, int i, float *out, size_t stride)
{
    int in = m->arch.n_in, units = mlp_layer_out(&m->arch, 0);
    for (int k = 0; k < in; k++)
        out[(size_t)k * stride] = m->params[(size_t)k * units + i];
}

const model_kind mlp_kind = {
    .name = "mlp",
    .id = 1,
    .check = mlp_check,
    .param_count = mlp_param_count,
    .ws_bytes = mlp_ws_bytes,
    .ws_new = mlp_ws_new,
    .ws_free = mlp_ws_free,
    .init = mlp_init,
    .forward = mlp_forward,
    .backward = mlp_backward,
    .layer_count = mlp_layer_count,
    .layer_weights = mlp_layer_weights,
    .filters = mlp_filters,
    .filter = mlp_filter,
};
