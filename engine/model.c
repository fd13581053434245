/* model.c: the generic model: the table of kinds, the parameter and
 * gradient blocks, the workspace's shared part (probabilities, packed
 * input) and the dispatch to the kind. See model.h. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "layers.h"
#include "mlp.h"

const model_kind *const model_kinds[] = {&mlp_kind, &cnn_kind, NULL};

const model_kind *model_kind_by_id(uint32_t id)
{
    for (int i = 0; model_kinds[i]; i++)
        if (model_kinds[i]->id == id) return model_kinds[i];
    return NULL;
}

int model_arch_check(const model_arch *a, mn_err *err)
{
    if (!a->kind) return mn_errf(err, "the architecture names no model kind");
    if (a->n_in < 1 || a->n_in > 1 << 20)
        return mn_errf(err, "input width %d out of range", a->n_in);
    if (a->n_out < 2 || a->n_out > 256)
        return mn_errf(err, "output width %d out of range", a->n_out);
    if (a->n_layers < 0 || a->n_layers > MODEL_MAX_LAYERS)
        return mn_errf(err, "hidden_units: at most %d layers", MODEL_MAX_LAYERS);
    if (a->kind->check(a, err)) return -1;
    if (!(a->dropout >= 0.0f && a->dropout < 1.0f))
        return mn_errf(err, "dropout must be in [0, 1)");
    return 0;
}

int model_arch_equal(const model_arch *a, const model_arch *b)
{
    if (a->kind != b->kind || a->n_in != b->n_in || a->n_out != b->n_out ||
        a->n_layers != b->n_layers || a->dropout != b->dropout)
        return 0;
    return memcmp(a->layers, b->layers,
                  sizeof a->layers[0] * (size_t)a->n_layers) == 0;
}

size_t model_param_count(const model_arch *a)
{
    return a->kind->param_count(a);
}

model *model_new(const model_arch *a, int with_grads, mn_err *err)
{
    if (model_arch_check(a, err)) return NULL;
    model *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->arch = *a;
    m->n_params = model_param_count(a);
    m->params = calloc(m->n_params, sizeof(float));
    if (!m->params) goto oom;
    if (with_grads) {
        m->grads = calloc(m->n_params, sizeof(float));
        if (!m->grads) goto oom;
    }
    return m;
oom:
    model_free(m);
    mn_errf(err, "out of memory allocating the model");
    return NULL;
}

void model_free(model *m)
{
    if (!m) return;
    free(m->grads);
    free(m->params);
    free(m);
}

void model_init(model *m, rng_state *rng)
{
    memset(m->params, 0, m->n_params * sizeof(float));
    m->arch.kind->init(m, rng);
}

/* Floats of the probabilities and bytes of the packing buffers. */
static void ws_sizes(const model_arch *a, size_t B, size_t *floats,
                     size_t *sparse_bytes)
{
    size_t P = (size_t)a->n_in;
    *floats = B * (size_t)a->n_out;
    *sparse_bytes = B * P * (sizeof(uint32_t) + sizeof(float)) +
                    (B + 1) * sizeof(uint32_t);
}

size_t model_ws_bytes(const model_arch *a, int max_batch)
{
    size_t floats, sparse;
    ws_sizes(a, (size_t)max_batch, &floats, &sparse);
    return floats * sizeof(float) + sparse + sizeof(model_ws) +
           a->kind->ws_bytes(a, max_batch);
}

model_ws *model_ws_new(const model_arch *a, int max_batch, mn_err *err)
{
    if (model_arch_check(a, err)) return NULL;
    if (max_batch < 1) {
        mn_errf(err, "batch size must be positive");
        return NULL;
    }
    model_ws *ws = calloc(1, sizeof *ws);
    if (!ws) goto oom;
    ws->kind = a->kind;
    ws->max_batch = max_batch;
    size_t B = (size_t)max_batch, floats, sparse_bytes;
    ws_sizes(a, B, &floats, &sparse_bytes);
    ws->probs = malloc(floats * sizeof(float));
    ws->sp_block = malloc(sparse_bytes);
    if (!ws->probs || !ws->sp_block) goto oom;
    size_t P = (size_t)a->n_in;
    ws->sp_val = ws->sp_block;
    ws->sp_idx = (uint32_t *)(ws->sp_val + B * P);
    ws->sp_rowptr = ws->sp_idx + B * P;
    ws->kind_ws = a->kind->ws_new(a, max_batch, err);
    if (!ws->kind_ws) {
        model_ws_free(ws);
        return NULL;
    }
    return ws;
oom:
    model_ws_free(ws);
    mn_errf(err, "out of memory allocating a workspace for batch %d", max_batch);
    return NULL;
}

void model_ws_free(model_ws *ws)
{
    if (!ws) return;
    if (ws->kind_ws) ws->kind->ws_free(ws->kind_ws);
    free(ws->sp_block);
    free(ws->probs);
    free(ws);
}

double model_forward(const model *m, model_ws *ws, const float *x,
                     const uint8_t *labels, int B, int train, rng_state *rng)
{
    int in = m->arch.n_in;
    size_t nnz = nn_sparse_pack(ws->sp_rowptr, ws->sp_idx, ws->sp_val, x, B, in);
    ws->sparse_in = nnz <= MODEL_SPARSE_MAX_DENSITY * B * in;
    ws->in_rowptr = ws->sp_rowptr;
    ws->in_idx = ws->sp_idx;
    ws->in_val = ws->sp_val;
    ws->in = x;
    return m->arch.kind->forward(m, ws, labels, B, train, rng);
}

double model_forward_csr(const model *m, model_ws *ws, const uint32_t *rowptr,
                         const uint32_t *idx, const float *val,
                         const uint8_t *labels, int B, int train,
                         rng_state *rng)
{
    ws->sparse_in = 1;
    ws->in_rowptr = rowptr;
    ws->in_idx = idx;
    ws->in_val = val;
    ws->in = NULL;
    return m->arch.kind->forward(m, ws, labels, B, train, rng);
}

void model_backward(model *m, model_ws *ws, const uint8_t *labels, int B)
{
    memset(m->grads, 0, m->n_params * sizeof(float));
    m->arch.kind->backward(m, ws, labels, B);
}

int model_layer_count(const model_arch *a)
{
    return a->kind->layer_count(a);
}

void model_layer_weights(const model *m, int l, model_weights *out)
{
    m->arch.kind->layer_weights(m, l, out);
}

void model_filters(const model_arch *a, int *n, int *h, int *w)
{
    a->kind->filters(a, n, h, w);
}

void model_filter(const model *m, int i, float *out, size_t stride)
{
    m->arch.kind->filter(m, i, out, stride);
}
