/* cnn.c: the convolutional network kind (see cnn.h), stacked from the
 * layers of layers.h. */
#include "cnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "mlp.h"

int cnn_arch(model_arch *a, int n_conv, const cnn_conv *conv, int n_hidden,
             const int *hidden, float dropout, mn_err *err)
{
    int n = n_hidden;
    for (int i = 0; i < n_conv; i++) n += conv[i].pool > 1 ? 2 : 1;
    if (n > MODEL_MAX_LAYERS)
        return mn_errf(err, "conv_layers and hidden_units: at most %d layers "
                       "in all (a pool counts as one), got %d",
                       MODEL_MAX_LAYERS, n);
    a->kind = &cnn_kind;
    a->n_layers = n;
    memset(a->layers, 0, sizeof a->layers);
    model_layer *y = a->layers;
    for (int i = 0; i < n_conv; i++) {
        *y++ = (model_layer){conv[i].same ? MODEL_LAYER_CONV_SAME
                                          : MODEL_LAYER_CONV,
                             (uint32_t)conv[i].filters,
                             (uint32_t)conv[i].kernel, 1};
        if (conv[i].pool > 1)
            *y++ = (model_layer){MODEL_LAYER_POOL, 0, (uint32_t)conv[i].pool,
                                 (uint32_t)conv[i].pool};
    }
    for (int l = 0; l < n_hidden; l++)
        *y++ = (model_layer){MODEL_LAYER_DENSE, (uint32_t)hidden[l], 0, 0};
    a->dropout = dropout;
    return 0;
}

/* One convolution with its pooling. */
typedef struct cnn_stage {
    nn_conv2d_dims d;
    int nb;                     /* images per im2col chunk (cnn.h) */
    int pool;                   /* 1: none */
    int PH, PW;                 /* the map after pooling */
    size_t off;                 /* W's offset in the parameter block */
} cnn_stage;

/* An architecture unfolded: the stages, the dense layers (hidden ones and
 * the output layer) and where their parameters lie. */
typedef struct cnn_plan {
    int n_conv;
    cnn_stage st[MODEL_MAX_LAYERS];
    int n_dense;                /* hidden dense layers */
    int in[MODEL_MAX_LAYERS + 1], out[MODEL_MAX_LAYERS + 1]; /* dense l */
    size_t off[MODEL_MAX_LAYERS + 1];                         /* dense l W */
    size_t n_params;
} cnn_plan;

/* Unfolds a; 0, or -1 with a reason naming the layer at fault. */
static int cnn_plan_make(const model_arch *a, cnn_plan *p, mn_err *err)
{
    memset(p, 0, sizeof *p);
    int side = (int)lround(sqrt((double)a->n_in));
    if (side * side != a->n_in)
        return mn_errf(err, "a cnn reads square one-channel images; %d "
                       "inputs are not a square", a->n_in);
    int C = 1, H = side, W = side;
    size_t off = 0;
    int l = 0;
    for (; l < a->n_layers; l++) {
        const model_layer *y = &a->layers[l];
        if (y->type == MODEL_LAYER_DENSE) break;
        int i = p->n_conv;
        if (y->type == MODEL_LAYER_POOL) {
            if (i == 0 || p->st[i - 1].pool != 1)
                return mn_errf(err, "layer %d: a pool must follow a "
                               "convolution", l);
            int P = (int)y->kernel;
            if (P < 2 || P > CNN_MAX_POOL || y->stride != y->kernel || y->size)
                return mn_errf(err, "conv_layers[%d]: pool must be in 1..%d",
                               i - 1, CNN_MAX_POOL);
            cnn_stage *s = &p->st[i - 1];
            s->pool = P;
            s->PH = s->d.OH / P;
            s->PW = s->d.OW / P;
            if (s->PH < 1 || s->PW < 1)
                return mn_errf(err, "conv_layers[%d]: the feature map shrinks "
                               "below 1x1 (%dx%d pooled by %d)", i - 1,
                               s->d.OH, s->d.OW, P);
            H = s->PH;
            W = s->PW;
            continue;
        }
        if (y->type != MODEL_LAYER_CONV && y->type != MODEL_LAYER_CONV_SAME)
            return mn_errf(err, "layer %d: unknown layer type %u", l, y->type);
        if (y->size < 1 || y->size > CNN_MAX_FILTERS)
            return mn_errf(err, "conv_layers[%d]: filters must be in 1..%d", i,
                           CNN_MAX_FILTERS);
        if (y->kernel < 1 || y->kernel > CNN_MAX_KERNEL || y->stride != 1)
            return mn_errf(err, "conv_layers[%d]: kernel must be in 1..%d "
                           "(stride 1)", i, CNN_MAX_KERNEL);
        cnn_stage *s = &p->st[i];
        nn_conv2d_dims_set(&s->d, C, H, W, (int)y->size, (int)y->kernel,
                           y->type == MODEL_LAYER_CONV_SAME);
        if (s->d.OH < 1 || s->d.OW < 1)
            return mn_errf(err, "conv_layers[%d]: the feature map shrinks "
                           "below 1x1 (a %dx%d kernel on %dx%d)", i,
                           (int)y->kernel, (int)y->kernel, H, W);
        size_t col1 = (size_t)C * s->d.K * s->d.K * s->d.OH * s->d.OW;
        s->nb = col1 >= CNN_COL_FLOATS ? 1 : (int)(CNN_COL_FLOATS / col1);
        s->pool = 1;
        s->PH = s->d.OH;
        s->PW = s->d.OW;
        s->off = off;
        off += (size_t)C * s->d.K * s->d.K * s->d.OC + (size_t)s->d.OC;
        C = s->d.OC;
        H = s->PH;
        W = s->PW;
        p->n_conv++;
    }
    if (p->n_conv == 0)
        return mn_errf(err, "a cnn needs at least one convolution");
    int in = C * H * W;
    for (; l <= a->n_layers; l++) {
        int out = a->n_out;
        if (l < a->n_layers) {
            const model_layer *y = &a->layers[l];
            if (y->type != MODEL_LAYER_DENSE || y->kernel || y->stride)
                return mn_errf(err, "layer %d: the dense layers must come "
                               "after the convolutions", l);
            if (y->size < 1 || y->size > MLP_MAX_WIDTH)
                return mn_errf(err, "hidden_units[%d] = %d outside 1..%d",
                               p->n_dense, (int)y->size, MLP_MAX_WIDTH);
            out = (int)y->size;
        }
        int k = l < a->n_layers ? p->n_dense++ : p->n_dense;
        p->in[k] = in;
        p->out[k] = out;
        p->off[k] = off;
        off += (size_t)in * out + (size_t)out;
        in = out;
    }
    p->n_params = off;
    return 0;
}

/* The plan of an architecture that check accepted. */
static cnn_plan plan_of(const model_arch *a)
{
    cnn_plan p;
    cnn_plan_make(a, &p, NULL);
    return p;
}

static int cnn_check(const model_arch *a, mn_err *err)
{
    cnn_plan p;
    return cnn_plan_make(a, &p, err);
}

static size_t cnn_param_count(const model_arch *a)
{
    return plan_of(a).n_params;
}

/* Glorot-uniform weights (a convolution's fans are C*K*K and OC*K*K, as
 * Keras counts them), zero biases. */
static void cnn_init(model *m, rng_state *rng)
{
    cnn_plan p = plan_of(&m->arch);
    for (int s = 0; s < p.n_conv; s++) {
        const nn_conv2d_dims *d = &p.st[s].d;
        size_t kk = (size_t)d->K * d->K, n = (size_t)d->C * kk * d->OC;
        float limit = sqrtf(6.0f / (float)((size_t)(d->C + d->OC) * kk));
        float *W = m->params + p.st[s].off;
        for (size_t i = 0; i < n; i++)
            W[i] = (2.0f * rng_uniform(rng) - 1.0f) * limit;
    }
    for (int l = 0; l <= p.n_dense; l++) {
        float limit = sqrtf(6.0f / (float)(p.in[l] + p.out[l]));
        float *W = m->params + p.off[l];
        size_t n = (size_t)p.in[l] * p.out[l];
        for (size_t i = 0; i < n; i++)
            W[i] = (2.0f * rng_uniform(rng) - 1.0f) * limit;
    }
}

/* The cnn's own workspace (model_ws.kind_ws). */
typedef struct cnn_ws {
    cnn_plan plan;
    const float *x_in;          /* the last forward's input [B, n_in],
                                   i.e. CNHW [1, B, side, side] */
    float *x;                   /* [B, n_in] a packed input unpacked */
    /* a stage with a pool: its bias and ReLU come after the pooling
     * (nn_conv2d_pool_forward), and its whole map is never stored */
    float *pool[MODEL_MAX_LAYERS]; /* [OC, B, PH, PW] after ReLU (PH = OH,
                                      PW = OW without a pool) */
    uint32_t *argmax[MODEL_MAX_LAYERS]; /* [OC, B, PH, PW] or NULL */
    float *flat;                /* [B, OC*PH*PW] the last map, NCHW */
    float *acts[MODEL_MAX_LAYERS + 1]; /* dense l's output [B, out_l]
                                          (after ReLU/dropout) */
    float *masks[MODEL_MAX_LAYERS]; /* [B, out_l] dropout scale */
    float *col, *dcol;          /* [C*K*K, nb*OH*OW] of the largest stage */
    float *map;                 /* [OC, nb*OH*OW] a pooled stage's chunk */
    float *pscratch;            /* nn_conv2d_pool_backward's, the largest */
    float *dbuf[2];             /* [B, largest map or width] gradients */
    void *block;                /* the one allocation */
} cnn_ws;

/* Lays k's buffers for batch B out from base (when base is NULL, only
 * counts); returns the bytes they take. */
static size_t ws_layout(cnn_ws *k, const cnn_plan *p, size_t B, char *base)
{
    size_t at = 0, maxcol = 1, maxmap = 1, maxps = 1, maxchunk = 1;
#define TAKE(ptr, type, count)                                            \
    do {                                                                  \
        if (base) (ptr) = (type *)(base + at);                            \
        at += ((count) * sizeof(type) + 63) & ~(size_t)63;                \
    } while (0)
    const nn_conv2d_dims *d0 = &p->st[0].d;
    TAKE(k->x, float, B * (size_t)d0->H * d0->W);
    for (int s = 0; s < p->n_conv; s++) {
        const cnn_stage *st = &p->st[s];
        size_t conv = (size_t)st->d.OC * st->d.OH * st->d.OW,
               pooled = (size_t)st->d.OC * st->PH * st->PW,
               col = (size_t)st->d.C * st->d.K * st->d.K * st->d.OH * st->d.OW *
                     ((size_t)st->nb < B ? (size_t)st->nb : B);
        size_t in = (size_t)st->d.C * st->d.H * st->d.W;
        TAKE(k->pool[s], float, B * pooled);
        if (st->pool > 1) {
            size_t chunk = conv * ((size_t)st->nb < B ? (size_t)st->nb : B);
            TAKE(k->argmax[s], uint32_t, B * pooled);
            if (chunk > maxchunk) maxchunk = chunk;
        } else if (base) {
            k->argmax[s] = NULL;
        }
        if (col > maxcol) maxcol = col;
        if (st->pool > 1 && nn_conv2d_pool_backward_scratch(&st->d) > maxps)
            maxps = nn_conv2d_pool_backward_scratch(&st->d);
        /* the gradient buffers hold a whole map only without a pool (the
         * pooled backward starts from the pooled map's gradient) */
        if (st->pool == 1 && conv > maxmap) maxmap = conv;
        if (pooled > maxmap) maxmap = pooled;
        if (in > maxmap) maxmap = in;
    }
    TAKE(k->flat, float, B * (size_t)p->in[0]);
    for (int l = 0; l <= p->n_dense; l++) {
        TAKE(k->acts[l], float, B * (size_t)p->out[l]);
        if (l < p->n_dense)
            TAKE(k->masks[l], float, B * (size_t)p->out[l]);
        if ((size_t)p->out[l] > maxmap) maxmap = (size_t)p->out[l];
        if ((size_t)p->in[l] > maxmap) maxmap = (size_t)p->in[l];
    }
    TAKE(k->col, float, maxcol);
    TAKE(k->dcol, float, maxcol);
    TAKE(k->map, float, maxchunk);
    TAKE(k->pscratch, float, maxps);
    TAKE(k->dbuf[0], float, B * maxmap);
    TAKE(k->dbuf[1], float, B * maxmap);
#undef TAKE
    return at;
}

static size_t cnn_ws_bytes(const model_arch *a, int max_batch)
{
    cnn_ws k;
    k.plan = plan_of(a);
    return ws_layout(&k, &k.plan, (size_t)max_batch, NULL) + sizeof(cnn_ws);
}

static void cnn_ws_free(void *p)
{
    cnn_ws *ws = p;
    if (!ws) return;
    free(ws->block);
    free(ws);
}

static void *cnn_ws_new(const model_arch *a, int max_batch, mn_err *err)
{
    cnn_ws *ws = calloc(1, sizeof *ws);
    if (!ws) goto oom;
    ws->plan = plan_of(a);
    size_t bytes = ws_layout(ws, &ws->plan, (size_t)max_batch, NULL);
    ws->block = aligned_alloc(64, bytes);
    if (!ws->block) goto oom;
    ws_layout(ws, &ws->plan, (size_t)max_batch, ws->block);
    return ws;
oom:
    cnn_ws_free(ws);
    mn_errf(err, "out of memory allocating a workspace for batch %d", max_batch);
    return NULL;
}

static double cnn_forward(const model *m, model_ws *ws, const uint8_t *labels,
                          int B, int train, rng_state *rng)
{
    const model_arch *a = &m->arch;
    cnn_ws *k = ws->kind_ws;
    const cnn_plan *p = &k->plan;
    const float *h = ws->in;
    if (ws->sparse_in) {
        size_t P = (size_t)a->n_in;
        memset(k->x, 0, sizeof(float) * B * P);
        for (int i = 0; i < B; i++)
            for (uint32_t e = ws->in_rowptr[i]; e < ws->in_rowptr[i + 1]; e++)
                k->x[i * P + ws->in_idx[e]] = ws->in_val[e];
        h = k->x;
    }
    k->x_in = h;
    for (int s = 0; s < p->n_conv; s++) {
        const cnn_stage *st = &p->st[s];
        const float *W = m->params + st->off;
        const float *b = W + (size_t)st->d.C * st->d.K * st->d.K * st->d.OC;
        if (st->pool > 1) {
            nn_conv2d_pool_forward(k->pool[s], k->argmax[s], k->col, k->map,
                                   h, W, b, B, st->nb, st->pool, &st->d);
        } else {
            nn_conv2d_forward(k->pool[s], k->col, h, W, b, B, st->nb, &st->d);
            nn_relu_forward(k->pool[s], k->pool[s],
                            (size_t)B * st->d.OC * st->PH * st->PW);
        }
        h = k->pool[s];
    }
    /* CNHW [OC, B, PH, PW] to the dense layers' [B, OC*PH*PW] */
    const cnn_stage *last = &p->st[p->n_conv - 1];
    nn_swap_outer(k->flat, h, last->d.OC, B, last->PH * last->PW);
    h = k->flat;
    for (int l = 0; l <= p->n_dense; l++) {
        const float *W = m->params + p->off[l];
        const float *b = W + (size_t)p->in[l] * p->out[l];
        nn_dense_forward(k->acts[l], h, W, b, B, p->in[l], p->out[l]);
        if (l < p->n_dense) {
            size_t N = (size_t)B * p->out[l];
            nn_relu_forward(k->acts[l], k->acts[l], N);
            if (train && a->dropout > 0.0f)
                nn_dropout_forward(k->acts[l], k->masks[l], k->acts[l],
                                   a->dropout, N, rng);
        }
        h = k->acts[l];
    }
    return nn_softmax_xent_forward(ws->probs, h, labels, B, a->n_out);
}

static void cnn_backward(model *m, model_ws *ws, const uint8_t *labels, int B)
{
    const model_arch *a = &m->arch;
    cnn_ws *k = ws->kind_ws;
    const cnn_plan *p = &k->plan;
    int cur = 0;
    float *d = k->dbuf[cur];
    nn_softmax_xent_backward(d, ws->probs, labels, 1.0f, B, a->n_out);
    for (int l = p->n_dense; l >= 0; l--) {
        int in = p->in[l], out = p->out[l];
        float *dW = m->grads + p->off[l], *db = dW + (size_t)in * out;
        const float *W = m->params + p->off[l];
        const float *inp = l == 0 ? k->flat : k->acts[l - 1];
        float *dinp = k->dbuf[cur ^ 1];
        nn_dense_backward(dinp, dW, db, d, inp, W, B, in, out);
        if (l > 0) {
            /* acts[l-1] = dropout(relu(z)): a zero blocks either way */
            size_t N = (size_t)B * in;
            if (a->dropout > 0.0f)
                nn_dropout_backward(dinp, dinp, k->masks[l - 1], N);
            nn_relu_backward(dinp, dinp, k->acts[l - 1], N);
        }
        cur ^= 1;
        d = dinp;
    }
    /* d: the gradient of the last stage's (pooled) map, [B, OC*PH*PW];
     * to CNHW [OC, B, PH, PW] */
    const cnn_stage *last = &p->st[p->n_conv - 1];
    nn_swap_outer(k->dbuf[cur ^ 1], d, B, last->d.OC, last->PH * last->PW);
    cur ^= 1;
    d = k->dbuf[cur];
    for (int s = p->n_conv - 1; s >= 0; s--) {
        const cnn_stage *st = &p->st[s];
        const nn_conv2d_dims *cd = &st->d;
        nn_relu_backward(d, d, k->pool[s],
                         (size_t)B * cd->OC * st->PH * st->PW);
        float *dW = m->grads + st->off;
        float *db = dW + (size_t)cd->C * cd->K * cd->K * cd->OC;
        const float *W = m->params + st->off;
        const float *inp = s == 0 ? k->x_in : k->pool[s - 1];
        float *dinp = s == 0 ? NULL : k->dbuf[cur ^ 1];
        if (st->pool > 1)
            nn_conv2d_pool_backward(dinp, dW, db, k->pscratch, d,
                                    k->argmax[s], inp, W, B, st->pool, cd);
        else
            nn_conv2d_backward(dinp, dW, db, k->col, k->dcol, d, inp, W, B,
                               st->nb, cd);
        cur ^= 1;
        d = dinp;
    }
}

int cnn_largest_map(const model_arch *a, size_t *floats)
{
    cnn_plan p = plan_of(a);
    int best = 0;
    *floats = 0;
    for (int s = 0; s < p.n_conv; s++) {
        /* as the workspace keeps it: pooled, where a pool follows */
        size_t n = (size_t)p.st[s].d.OC * p.st[s].PH * p.st[s].PW;
        if (n > *floats) {
            *floats = n;
            best = s;
        }
    }
    return best;
}

/* Layers with weights: the convolutions, then the dense layers. */
static int cnn_layer_count(const model_arch *a)
{
    cnn_plan p = plan_of(a);
    return p.n_conv + p.n_dense + 1;
}

/* A convolution's dense view is its [C*K*K, OC] weights. */
static void cnn_layer_weights(const model *m, int l, model_weights *out)
{
    cnn_plan p = plan_of(&m->arch);
    if (l < p.n_conv) {
        const nn_conv2d_dims *d = &p.st[l].d;
        out->n_in = d->C * d->K * d->K;
        out->n_out = d->OC;
        out->w = m->params + p.st[l].off;
    } else {
        l -= p.n_conv;
        out->n_in = p.in[l];
        out->n_out = p.out[l];
        out->w = m->params + p.off[l];
    }
    out->b = out->w + (size_t)out->n_in * out->n_out;
}

/* The first convolution's filters (its input has one channel): K x K. */
static void cnn_filters(const model_arch *a, int *n, int *h, int *w)
{
    cnn_plan p = plan_of(a);
    *n = p.st[0].d.OC;
    *h = *w = p.st[0].d.K;
}

static void cnn_filter(const model *m, int i, float *out, size_t stride)
{
    cnn_plan p = plan_of(&m->arch);
    int KK = p.st[0].d.K * p.st[0].d.K, OC = p.st[0].d.OC;
    for (int k = 0; k < KK; k++)
        out[(size_t)k * stride] = m->params[(size_t)k * OC + i];
}

const model_kind cnn_kind = {
    .name = "cnn",
    .id = 2,
    .check = cnn_check,
    .param_count = cnn_param_count,
    .ws_bytes = cnn_ws_bytes,
    .ws_new = cnn_ws_new,
    .ws_free = cnn_ws_free,
    .init = cnn_init,
    .forward = cnn_forward,
    .backward = cnn_backward,
    .layer_count = cnn_layer_count,
    .layer_weights = cnn_layer_weights,
    .filters = cnn_filters,
    .filter = cnn_filter,
};
