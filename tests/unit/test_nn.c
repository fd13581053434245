/* test_nn.c: the layers of engine/layers.c and the mlp of engine/mlp.c.
 *
 * Every backward pass is checked against central finite differences of a
 * loss computed in double precision (a reference independent of the
 * engine's float32 forward code), the whole network likewise on every
 * parameter, and a tiny network against numbers made by NumPy
 * (tests/fixtures/make_tiny_fixture.py -> tests/fixtures/tiny_fixture.h). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/mlp.h"
#include "engine/layers.h"
#include "engine/rng.h"
#include "tests/unit/helpers.h"
#include "tests/fixtures/tiny_fixture.h"


/* ---- helpers ---- */

/* a[0..n) uniform in +-[lo, hi): keeps values away from ReLU's kink */
static void fill_away_from_zero(float *a, size_t n, float lo, float hi,
                                rng_state *r)
{
    for (size_t i = 0; i < n; i++) {
        float v = lo + (hi - lo) * rng_uniform(r);
        a[i] = rng_uniform(r) < 0.5f ? -v : v;
    }
}

/* ---- dense ---- */

enum { DB = 3, DC = 5, DOC = 4 };

typedef struct dense_ctx {
    float inp[DB * DC], w[DC * DOC], b[DOC], g[DB * DOC];
} dense_ctx;

/* sum_{i,o} g[i,o] * (b[o] + sum_c inp[i,c] w[c,o]) in double */
static double dense_ref_loss(const void *vctx)
{
    const dense_ctx *c = vctx;
    double loss = 0.0;
    for (int i = 0; i < DB; i++)
        for (int o = 0; o < DOC; o++) {
            double z = c->b[o];
            for (int k = 0; k < DC; k++)
                z += (double)c->inp[i * DC + k] * c->w[k * DOC + o];
            loss += c->g[i * DOC + o] * z;
        }
    return loss;
}

Test(nn, dense_forward_matches_reference)
{
    dense_ctx c;
    rng_state r;
    rng_seed(&r, 11);
    th_fill_uniform(c.inp, DB * DC, -1, 1, &r);
    th_fill_uniform(c.w, DC * DOC, -1, 1, &r);
    th_fill_uniform(c.b, DOC, -1, 1, &r);
    float out[DB * DOC];
    nn_dense_forward(out, c.inp, c.w, c.b, DB, DC, DOC);
    for (int i = 0; i < DB; i++)
        for (int o = 0; o < DOC; o++) {
            double z = c.b[o];
            for (int k = 0; k < DC; k++)
                z += (double)c.inp[i * DC + k] * c.w[k * DOC + o];
            cr_assert(th_near(out[i * DOC + o], z, 1e-5, 1e-6),
                      "out[%d,%d] = %g, want %g", i, o, out[i * DOC + o], z);
        }
}

Test(nn, dense_backward_matches_finite_differences)
{
    dense_ctx c;
    rng_state r;
    rng_seed(&r, 12);
    th_fill_uniform(c.inp, DB * DC, -1, 1, &r);
    th_fill_uniform(c.w, DC * DOC, -1, 1, &r);
    th_fill_uniform(c.b, DOC, -1, 1, &r);
    th_fill_uniform(c.g, DB * DOC, -1, 1, &r);

    /* dw and db accumulate: start them at known values; dinp is written */
    float dinp[DB * DC], dw[DC * DOC], db[DOC];
    for (int i = 0; i < DB * DC; i++) dinp[i] = 999.0f;
    for (int i = 0; i < DC * DOC; i++) dw[i] = 0.25f;
    for (int i = 0; i < DOC; i++) db[i] = -0.5f;
    nn_dense_backward(dinp, dw, db, c.g, c.inp, c.w, DB, DC, DOC);
    for (int i = 0; i < DC * DOC; i++) dw[i] -= 0.25f;
    for (int i = 0; i < DOC; i++) db[i] += 0.5f;

    th_check_grad("dinp", c.inp, dinp, DB * DC, dense_ref_loss, &c, TH_FD_EPS);
    th_check_grad("dw", c.w, dw, DC * DOC, dense_ref_loss, &c, TH_FD_EPS);
    th_check_grad("db", c.b, db, DOC, dense_ref_loss, &c, TH_FD_EPS);

    /* without dinp the parameter gradients are the same */
    float dw2[DC * DOC] = {0}, db2[DOC] = {0};
    nn_dense_backward(NULL, dw2, db2, c.g, c.inp, c.w, DB, DC, DOC);
    for (int i = 0; i < DC * DOC; i++)
        cr_assert(th_near(dw2[i], dw[i], 1e-5, 1e-6), "dw[%d] without dinp", i);
    for (int i = 0; i < DOC; i++)
        cr_assert(th_near(db2[i], db[i], 1e-5, 1e-6), "db[%d] without dinp", i);
}

/* ---- relu ---- */

enum { RN = 40 };

typedef struct relu_ctx {
    float x[RN], g[RN];
} relu_ctx;

static double relu_ref_loss(const void *vctx)
{
    const relu_ctx *c = vctx;
    double loss = 0.0;
    for (int i = 0; i < RN; i++) loss += c->g[i] * (c->x[i] > 0 ? c->x[i] : 0.0);
    return loss;
}

Test(nn, relu_backward_matches_finite_differences)
{
    relu_ctx c;
    rng_state r;
    rng_seed(&r, 21);
    fill_away_from_zero(c.x, RN, 0.05f, 1.0f, &r);
    th_fill_uniform(c.g, RN, -1, 1, &r);

    float out[RN], dinp[RN];
    nn_relu_forward(out, c.x, RN);
    int neg = 0;
    for (int i = 0; i < RN; i++) {
        cr_assert_float_eq(out[i], c.x[i] > 0 ? c.x[i] : 0.0f, 0.0f);
        neg += c.x[i] < 0;
    }
    cr_assert(neg > 0 && neg < RN, "inputs must have both signs");
    nn_relu_backward(dinp, c.g, out, RN);
    th_check_grad("relu dinp", c.x, dinp, RN, relu_ref_loss, &c, TH_FD_EPS);

    /* in place, as model_forward / model_backward use it */
    float buf[RN], d[RN];
    memcpy(buf, c.x, sizeof buf);
    memcpy(d, c.g, sizeof d);
    nn_relu_forward(buf, buf, RN);
    nn_relu_backward(d, d, buf, RN);
    cr_assert(memcmp(buf, out, sizeof buf) == 0, "in-place relu forward");
    cr_assert(memcmp(d, dinp, sizeof d) == 0, "in-place relu backward");
}

/* ---- dropout ---- */

enum { DN = 1000 };
#define DROP_P 0.3f

typedef struct dropout_ctx {
    float x[DN], g[DN];
    rng_state r0; /* the same state for every forward: a fixed mask */
} dropout_ctx;

static double dropout_ref_loss(const void *vctx)
{
    const dropout_ctx *c = vctx;
    static float out[DN], mask[DN];
    rng_state r = c->r0;
    nn_dropout_forward(out, mask, c->x, DROP_P, DN, &r);
    double loss = 0.0;
    for (int i = 0; i < DN; i++) loss += (double)c->g[i] * c->x[i] * mask[i];
    return loss;
}

Test(nn, dropout_backward_matches_finite_differences)
{
    static dropout_ctx c;
    rng_state r;
    rng_seed(&r, 31);
    th_fill_uniform(c.x, DN, -1, 1, &r);
    th_fill_uniform(c.g, DN, -1, 1, &r);
    rng_seed(&c.r0, 32);

    static float out[DN], mask[DN], dinp[DN];
    rng_state rr = c.r0;
    nn_dropout_forward(out, mask, c.x, DROP_P, DN, &rr);
    float keep = 1.0f / (1.0f - DROP_P);
    int dropped = 0;
    for (int i = 0; i < DN; i++) {
        cr_assert(mask[i] == 0.0f || mask[i] == keep,
                  "mask[%d] = %g is neither 0 nor 1/(1-p)", i, mask[i]);
        dropped += mask[i] == 0.0f;
        cr_assert_float_eq(out[i], c.x[i] * mask[i], 0.0f);
    }
    /* 1000 draws at p = 0.3: the count is within 0.3 +- 0.05 by > 3 sigma */
    cr_assert(dropped > 250 && dropped < 350, "%d of %d dropped at p=0.3",
              dropped, DN);

    nn_dropout_backward(dinp, c.g, mask, DN);
    th_check_grad("dropout dinp", c.x, dinp, DN, dropout_ref_loss, &c, TH_FD_EPS);
}

/* ---- softmax cross-entropy ---- */

enum { SB = 4, SK = 10 };

typedef struct xent_ctx {
    float z[SB * SK];
    uint8_t y[SB];
} xent_ctx;

static double xent_ref_loss(const void *vctx)
{
    const xent_ctx *c = vctx;
    double loss = 0.0;
    for (int i = 0; i < SB; i++) {
        const float *z = c->z + i * SK;
        double zmax = z[0], sum = 0.0;
        for (int k = 1; k < SK; k++) zmax = z[k] > zmax ? z[k] : zmax;
        for (int k = 0; k < SK; k++) sum += exp(z[k] - zmax);
        loss += log(sum) + zmax - z[c->y[i]];
    }
    return loss;
}

Test(nn, softmax_xent_forward_matches_reference)
{
    xent_ctx c;
    rng_state r;
    rng_seed(&r, 41);
    th_fill_uniform(c.z, SB * SK, -3, 3, &r);
    for (int i = 0; i < SB; i++) c.y[i] = (uint8_t)rng_below(&r, SK);

    float probs[SB * SK], probs2[SB * SK];
    double loss = nn_softmax_xent_forward(probs, c.z, c.y, SB, SK);
    cr_assert(th_near(loss, xent_ref_loss(&c), 1e-6, 0), "loss %.10g, want %.10g",
              loss, xent_ref_loss(&c));
    for (int i = 0; i < SB; i++) {
        double sum = 0.0, zmax = c.z[i * SK], den = 0.0;
        for (int k = 0; k < SK; k++) zmax = fmax(zmax, c.z[i * SK + k]);
        for (int k = 0; k < SK; k++) den += exp(c.z[i * SK + k] - zmax);
        for (int k = 0; k < SK; k++) {
            double want = exp(c.z[i * SK + k] - zmax) / den;
            cr_assert(th_near(probs[i * SK + k], want, 1e-5, 1e-7),
                      "probs[%d,%d] = %g, want %g", i, k, probs[i * SK + k],
                      want);
            sum += probs[i * SK + k];
        }
        cr_assert(fabs(sum - 1.0) < 1e-5, "row %d sums to %.8g", i, sum);
    }
    /* without labels: same probabilities, no loss */
    cr_assert_float_eq(nn_softmax_xent_forward(probs2, c.z, NULL, SB, SK), 0.0,
                       0.0);
    cr_assert(memcmp(probs, probs2, sizeof probs) == 0);
}

Test(nn, softmax_xent_is_stable_for_huge_logits)
{
    float z[2 * 3] = {1000.0f, 990.0f, -1000.0f, -5000.0f, -5000.0f, -4990.0f};
    uint8_t y[2] = {2, 0};
    float probs[6];
    double loss = nn_softmax_xent_forward(probs, z, y, 2, 3);
    for (int i = 0; i < 6; i++)
        cr_assert(isfinite(probs[i]), "probs[%d] = %g", i, probs[i]);
    /* row 0: -log p[2] ~ 2000; row 1: -log p[0] ~ 10 */
    cr_assert(isfinite(loss) && th_near(loss, 2000.0 + 10.0, 1e-4, 0),
              "loss %g", loss);
}

Test(nn, softmax_xent_backward_matches_finite_differences)
{
    xent_ctx c;
    rng_state r;
    rng_seed(&r, 42);
    th_fill_uniform(c.z, SB * SK, -3, 3, &r);
    for (int i = 0; i < SB; i++) c.y[i] = (uint8_t)rng_below(&r, SK);

    float probs[SB * SK], d[SB * SK], dhalf[SB * SK];
    nn_softmax_xent_forward(probs, c.z, c.y, SB, SK);
    nn_softmax_xent_backward(d, probs, c.y, 1.0f, SB, SK);
    th_check_grad("dlogits", c.z, d, SB * SK, xent_ref_loss, &c, TH_FD_EPS);

    /* scale multiplies the gradient (the loss scaled by the same factor) */
    nn_softmax_xent_backward(dhalf, probs, c.y, 0.5f, SB, SK);
    for (int i = 0; i < SB * SK; i++)
        cr_assert(th_near(dhalf[i], 0.5 * d[i], 1e-6, 1e-8), "dhalf[%d]", i);
}

/* ---- the whole network ---- */

#define REF_MAXW 64

typedef struct net_ctx {
    const model *m;
    const float *x;     /* [B, n_in] */
    const uint8_t *y;   /* [B] */
    int B;
    float *const *masks; /* [n_layers] of [B, hidden_l] dropout scales, or
                            NULL: no dropout */
} net_ctx;

/* The summed cross-entropy of the model in double precision, written
 * independently of nn.c, with the given fixed dropout masks if any.
 * *min_pre (if non-NULL) gets the smallest |pre-activation| of any hidden
 * unit. */
static double ref_net_loss_pre(const net_ctx *c, double *min_pre)
{
    const model *m = c->m;
    const model_arch *a = &m->arch;
    double loss = 0.0, mp = INFINITY;
    for (int i = 0; i < c->B; i++) {
        double h[REF_MAXW] = {0}, z[REF_MAXW] = {0};
        int width = a->n_in;
        for (int k = 0; k < width; k++) h[k] = c->x[(size_t)i * a->n_in + k];
        for (int l = 0; l <= a->n_layers; l++) {
            int out = l < a->n_layers ? (int)a->layers[l].size : a->n_out;
            const float *W = mlp_W(a, m->params, l);
            const float *b = mlp_b(a, m->params, l);
            for (int o = 0; o < out; o++) {
                z[o] = b[o];
                for (int k = 0; k < width; k++)
                    z[o] += h[k] * W[(size_t)k * out + o];
            }
            if (l < a->n_layers)
                for (int o = 0; o < out; o++) {
                    mp = fmin(mp, fabs(z[o]));
                    h[o] = z[o] > 0 ? z[o] : 0.0;
                    if (c->masks) h[o] *= c->masks[l][(size_t)i * out + o];
                }
            width = out;
        }
        double zmax = z[0], sum = 0.0;
        for (int k = 1; k < width; k++) zmax = fmax(zmax, z[k]);
        for (int k = 0; k < width; k++) sum += exp(z[k] - zmax);
        loss += log(sum) + zmax - z[c->y[i]];
    }
    if (min_pre) *min_pre = mp;
    return loss;
}

static double ref_net_loss(const void *vctx)
{
    return ref_net_loss_pre(vctx, NULL);
}

/* Builds a model of arch a with random parameters (biases too) and a
 * random batch whose hidden pre-activations all stay at least `margin`
 * away from 0, so that no finite-difference step crosses a ReLU kink;
 * runs model_forward (training mode) and model_backward and checks the gradient
 * of `n_check` parameters (all of them if n_check >= n_params, else a
 * random sample) against central differences of the double-precision
 * reference loss. With dropout, the reference reuses the masks that
 * model_forward drew, so the loss is a fixed function of the parameters.
 * A fraction zero_frac of the inputs is 0; want_sparse says whether the
 * first layer must then take the packed-input path (nn_dense_sparse_*)
 * or the dense one. */
static void check_network(const model_arch *a, int B, size_t n_check,
                          double margin, double eps, uint64_t seed,
                          float zero_frac, int want_sparse)
{
    mn_err err = {{0}};
    cr_assert(a->n_in <= REF_MAXW && a->n_out <= REF_MAXW);
    for (int l = 0; l < a->n_layers; l++)
        cr_assert((int)a->layers[l].size <= REF_MAXW);
    model *m = model_new(a, 1, &err);
    cr_assert_not_null(m, "model_new: %s", err.msg);
    model_ws *ws = model_ws_new(a, B, &err);
    cr_assert_not_null(ws, "model_ws_new: %s", err.msg);
    float *x = malloc(sizeof(float) * (size_t)B * a->n_in);
    uint8_t *y = malloc((size_t)B);
    cr_assert(x && y);

    rng_state r;
    rng_seed(&r, seed);
    mlp_ws *kws = ws->kind_ws;
    net_ctx c = {m, x, y, B, a->dropout > 0.0f ? kws->masks : NULL};
    double min_pre = 0.0, loss = 0.0;
    int tries = 0;
    do {
        cr_assert(++tries <= 1000, "no batch with ReLU margin %g found", margin);
        model_init(m, &r);
        if (a->n_layers == 0) /* linear init is all zeros: randomise */
            th_fill_uniform(m->params, m->n_params, -0.5f, 0.5f, &r);
        for (int l = 0; l <= a->n_layers; l++) {
            int out = l < a->n_layers ? (int)a->layers[l].size : a->n_out;
            th_fill_uniform(mlp_b(a, m->params, l), (size_t)out, -0.2f, 0.2f,
                         &r);
        }
        th_fill_uniform(x, (size_t)B * a->n_in, -1, 1, &r);
        for (size_t i = 0; i < (size_t)B * a->n_in; i++)
            if (rng_uniform(&r) < zero_frac) x[i] = 0.0f;
        for (int i = 0; i < B; i++) y[i] = (uint8_t)rng_below(&r, (uint32_t)a->n_out);
        loss = model_forward(m, ws, x, y, B, 1, &r);
        ref_net_loss_pre(&c, &min_pre);
    } while (a->n_layers > 0 && min_pre < margin);

    cr_assert_eq(ws->sparse_in, want_sparse,
                 "first layer took the %s path", ws->sparse_in ? "packed" : "dense");
    double want = ref_net_loss(&c);
    cr_assert(th_near(loss, want, 1e-5, 1e-6), "model_forward loss %.9g, want %.9g",
              loss, want);
    /* garbage in grads: model_backward must zero them first */
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = 7.0f;
    model_backward(m, ws, y, B);

    size_t nonzero = 0, checked = 0;
    for (size_t k = 0; k < n_check && k < m->n_params; k++) {
        size_t i = n_check >= m->n_params ? k : rng_below(&r, (uint32_t)m->n_params);
        double num = th_central_diff(&m->params[i], ref_net_loss, &c, eps);
        double ana = m->grads[i];
        cr_assert(th_near(ana, num, TH_FD_REL, TH_FD_ABS),
                  "param %zu of %zu: analytic %.8g, finite difference %.8g", i,
                  m->n_params, ana, num);
        nonzero += fabs(ana) > 1e-6;
        checked++;
    }
    cr_assert(checked == (n_check < m->n_params ? n_check : m->n_params));
    cr_assert(nonzero > checked / 4, "only %zu of %zu gradients are non-zero",
              nonzero, checked);

    free(y);
    free(x);
    model_ws_free(ws);
    model_free(m);
}

Test(nn, dnn_gradient_matches_finite_differences_on_every_parameter)
{
    model_arch a = {.n_in = 6, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){5, 4}, 0.0f);
    check_network(&a, 4, (size_t)-1, 0.02, TH_FD_EPS, 51, 0.0f, 0);
}

Test(nn, dnn_gradient_with_dropout_matches_finite_differences)
{
    /* training mode with dropout 0.5: the backward pass goes through the
     * masks the forward pass drew */
    model_arch a = {.n_in = 6, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){8, 6}, 0.5f);
    check_network(&a, 4, (size_t)-1, 0.02, TH_FD_EPS, 54, 0.0f, 0);
}

Test(nn, linear_gradient_matches_finite_differences_on_every_parameter)
{
    model_arch a = {.n_in = 6, .n_out = 10};
    mlp_arch(&a, 0, NULL, 0.0f);
    check_network(&a, 4, (size_t)-1, 0.0, TH_FD_EPS, 52, 0.0f, 0);
}

Test(nn, wider_dnn_gradient_matches_finite_differences_on_200_parameters)
{
    model_arch a = {.n_in = 50, .n_out = 10};
    mlp_arch(&a, 3, (const int[]){30, 20, 12}, 0.0f);
    check_network(&a, 8, 200, 2e-3, 1e-4, 53, 0.0f, 0);
}

/* Mostly-zero inputs, like MNIST's pixels: the first layer reads them
 * packed (nn_dense_sparse_forward/backward). Widths that are and are not
 * multiples of 8 exercise both the vector lanes and the tails. */
Test(nn, sparse_input_dnn_gradient_matches_finite_differences)
{
    model_arch a = {.n_in = 12, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){16, 5}, 0.25f);
    check_network(&a, 4, (size_t)-1, 0.02, TH_FD_EPS, 55, 0.75f, 1);
}

Test(nn, sparse_input_linear_gradient_matches_finite_differences)
{
    model_arch a = {.n_in = 12, .n_out = 10};
    mlp_arch(&a, 0, NULL, 0.0f);
    check_network(&a, 4, (size_t)-1, 0.0, TH_FD_EPS, 56, 0.75f, 1);
}

Test(nn, sparse_input_wider_dnn_gradient_matches_finite_differences)
{
    model_arch a = {.n_in = 60, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){40, 24}, 0.0f);
    check_network(&a, 8, 200, 2e-3, 1e-4, 57, 0.8f, 1);
}

/* The packed-input layer against the dense one it replaces. */
static void check_sparse_layer(int B, int C, int OC, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    size_t nin = (size_t)B * C, nw = (size_t)C * OC;
    float *inp = malloc(sizeof(float) * nin), *w = malloc(sizeof(float) * nw);
    float *b = malloc(sizeof(float) * OC), *dout = malloc(sizeof(float) * B * OC);
    float *o1 = malloc(sizeof(float) * B * OC), *o2 = malloc(sizeof(float) * B * OC);
    float *dw1 = malloc(sizeof(float) * nw), *dw2 = malloc(sizeof(float) * nw);
    float *db1 = malloc(sizeof(float) * OC), *db2 = malloc(sizeof(float) * OC);
    float *val = malloc(sizeof(float) * nin);
    uint32_t *idx = malloc(sizeof(uint32_t) * nin);
    uint32_t *rowptr = malloc(sizeof(uint32_t) * ((size_t)B + 1));
    uint32_t *cptr = malloc(sizeof(uint32_t) * ((size_t)C + 1));
    uint32_t *crow = malloc(sizeof(uint32_t) * nin);
    float *cval = malloc(sizeof(float) * nin);
    cr_assert(inp && w && b && dout && o1 && o2 && dw1 && dw2 && db1 && db2 &&
              val && idx && rowptr && cptr && crow && cval);
    th_fill_uniform(inp, nin, -1, 1, &r);
    size_t nnz = 0;
    for (size_t i = 0; i < nin; i++) {
        if (rng_uniform(&r) < 0.7f) inp[i] = 0.0f;
        nnz += inp[i] != 0.0f;
    }
    th_fill_uniform(w, nw, -1, 1, &r);
    th_fill_uniform(b, (size_t)OC, -1, 1, &r);
    th_fill_uniform(dout, (size_t)B * OC, -1, 1, &r);

    cr_assert_eq(nn_sparse_pack(rowptr, idx, val, inp, B, C), nnz);
    cr_assert_eq(rowptr[0], 0);
    cr_assert_eq(rowptr[B], nnz);
    for (int i = 0; i < B; i++) {
        uint32_t k = rowptr[i];
        for (int j = 0; j < C; j++)
            if (inp[(size_t)i * C + j] != 0.0f) {
                cr_assert(k < rowptr[i + 1]);
                cr_assert_eq(idx[k], (uint32_t)j);
                cr_assert(val[k] == inp[(size_t)i * C + j]);
                k++;
            }
        cr_assert_eq(k, rowptr[i + 1], "row %d: %u nonzeros packed, %u "
                     "present", i, rowptr[i + 1] - rowptr[i], k - rowptr[i]);
    }

    nn_dense_forward(o1, inp, w, b, B, C, OC);
    nn_dense_sparse_forward(o2, rowptr, idx, val, w, b, B, OC);
    for (int i = 0; i < B * OC; i++)
        cr_assert(th_near(o2[i], o1[i], 1e-5, 1e-5), "out[%d]: packed %.8g, "
                  "dense %.8g (B %d C %d OC %d)", i, o2[i], o1[i], B, C, OC);
    for (size_t i = 0; i < nw; i++) dw1[i] = dw2[i] = 0.5f; /* accumulates */
    for (int i = 0; i < OC; i++) db1[i] = db2[i] = -0.25f;
    nn_dense_backward(NULL, dw1, db1, dout, inp, w, B, C, OC);
    nn_sparse_transpose(cptr, crow, cval, rowptr, idx, val, B, C);
    cr_assert_eq(cptr[C], nnz, "transpose holds every nonzero");
    nn_dense_sparse_backward(dw2, db2, dout, cptr, crow, cval, B, C, OC);
    for (size_t i = 0; i < nw; i++)
        cr_assert(th_near(dw2[i], dw1[i], 1e-5, 1e-5), "dw[%zu]: packed %.8g, "
                  "dense %.8g", i, dw2[i], dw1[i]);
    for (int i = 0; i < OC; i++)
        cr_assert(th_near(db2[i], db1[i], 1e-5, 1e-5), "db[%d]", i);

    free(cval), free(crow), free(cptr);
    free(rowptr), free(idx), free(val), free(db2), free(db1), free(dw2);
    free(dw1), free(o2), free(o1), free(dout), free(b), free(w), free(inp);
}

Test(nn, sparse_dense_layer_matches_dense_layer)
{
    /* outputs go in register blocks of 32 plus a scalar tail */
    check_sparse_layer(5, 37, 21, 81);   /* tail only */
    check_sparse_layer(3, 784, 16, 82);  /* tail only, MNIST-sized input */
    check_sparse_layer(4, 30, 7, 83);    /* tail only, tiny */
    check_sparse_layer(6, 784, 100, 84); /* 3 blocks + a tail of 4 */
    check_sparse_layer(2, 50, 64, 85);   /* 2 blocks exactly */
}

/* ---- a tiny network against NumPy ---- */

Test(nn, tiny_network_matches_numpy_fixture)
{
    mn_err err = {{0}};
    model_arch a = {.n_in = TINY_N_IN, .n_out = TINY_N_OUT};
    mlp_arch(&a, 1, (const int[]){TINY_HIDDEN}, 0.0f);
    model *m = model_new(&a, 1, &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_eq(m->n_params, (size_t)TINY_N_PARAMS);
    /* the documented layout: W0 [in,out], b0, W1, b1, consecutive */
    const model_arch *ma = &m->arch;
    cr_assert(mlp_W(ma, m->params, 0) == m->params &&
              mlp_b(ma, m->params, 0) == m->params + 12 &&
              mlp_W(ma, m->params, 1) == m->params + 15 &&
              mlp_b(ma, m->params, 1) == m->params + 24);
    memcpy(m->params, tiny_params, sizeof tiny_params);
    model_ws *ws = model_ws_new(&a, TINY_BATCH, &err);
    cr_assert_not_null(ws, "%s", err.msg);

    double loss = model_forward(m, ws, tiny_x, tiny_labels, TINY_BATCH, 0, NULL);
    cr_assert(th_near(loss, tiny_loss, 1e-5, 0), "loss %.9g, NumPy %.9g", loss,
              tiny_loss);
    for (int i = 0; i < TINY_BATCH * TINY_N_OUT; i++)
        cr_assert(th_near(ws->probs[i], tiny_probs[i], 1e-5, 1e-7),
                  "probs[%d] = %.9g, NumPy %.9g", i, ws->probs[i],
                  tiny_probs[i]);
    model_backward(m, ws, tiny_labels, TINY_BATCH);
    for (int i = 0; i < TINY_N_PARAMS; i++)
        cr_assert(th_near(m->grads[i], tiny_grads[i], 1e-5, 1e-7),
                  "grad[%d] = %.9g, NumPy %.9g", i, m->grads[i],
                  tiny_grads[i]);
    model_ws_free(ws);
    model_free(m);
}

/* ---- dropout only in training ---- */

Test(nn, dropout_is_off_at_inference)
{
    mn_err err = {{0}};
    enum { B = 5 };
    model_arch a = {.n_in = 20, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){16, 8}, 0.5f);
    model_arch a0 = a;
    a0.dropout = 0.0f;
    model *m = model_new(&a, 0, &err), *m0 = model_new(&a0, 0, &err);
    cr_assert(m && m0, "%s", err.msg);
    model_ws *ws = model_ws_new(&a, B, &err);
    cr_assert_not_null(ws, "%s", err.msg);
    rng_state r;
    rng_seed(&r, 61);
    model_init(m, &r);
    /* keep units alive */
    th_fill_uniform(mlp_b(&m->arch, m->params, 0), 16, 0.1f, 0.3f, &r);
    memcpy(m0->params, m->params, sizeof(float) * m->n_params);
    float x[B * 20], p1[B * 10], p2[B * 10], p0[B * 10];
    th_fill_uniform(x, B * 20, 0, 1, &r);

    model_forward(m, ws, x, NULL, B, 0, NULL);
    memcpy(p1, ws->probs, sizeof p1);
    model_forward(m, ws, x, NULL, B, 0, NULL);
    memcpy(p2, ws->probs, sizeof p2);
    model_forward(m0, ws, x, NULL, B, 0, NULL);
    memcpy(p0, ws->probs, sizeof p0);
    cr_assert(memcmp(p1, p2, sizeof p1) == 0, "inference is not repeatable");
    cr_assert(memcmp(p1, p0, sizeof p1) == 0,
              "inference with dropout 0.5 differs from dropout 0");

    model_forward(m, ws, x, NULL, B, 1, &r);
    cr_assert(memcmp(ws->probs, p0, sizeof p0) != 0,
              "training-mode forward with dropout 0.5 equals inference");
    model_ws_free(ws);
    model_free(m0);
    model_free(m);
}

/* ---- initialisation ---- */

Test(nn, init_linear_is_all_zeros)
{
    mn_err err = {{0}};
    model_arch a = {.n_in = 784, .n_out = 10};
    mlp_arch(&a, 0, NULL, 0.0f);
    model *m = model_new(&a, 0, &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_eq(m->n_params, (size_t)(784 * 10 + 10));
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = 1.0f;
    rng_state r;
    rng_seed(&r, 71);
    model_init(m, &r);
    for (size_t i = 0; i < m->n_params; i++)
        cr_assert(m->params[i] == 0.0f, "params[%zu] = %g", i, m->params[i]);
    model_free(m);
}

Test(nn, init_dnn_is_glorot_uniform_with_zero_biases)
{
    mn_err err = {{0}};
    model_arch a = {.n_in = 784, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){100, 50}, 0.0f);
    model *m = model_new(&a, 0, &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_eq(m->n_params, (size_t)(784 * 100 + 100 + 100 * 50 + 50 +
                                       50 * 10 + 10));
    cr_assert_eq(model_param_count(&a), m->n_params);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = 1.0f;
    rng_state r;
    rng_seed(&r, 72);
    model_init(m, &r);
    int dims[4] = {784, 100, 50, 10};
    for (int l = 0; l < 3; l++) {
        int in = dims[l], out = dims[l + 1];
        double limit = sqrt(6.0 / (in + out)), maxabs = 0.0, sum = 0.0;
        size_t n = (size_t)in * out, nonzero = 0;
        const float *W = mlp_W(&m->arch, m->params, l);
        const float *b = mlp_b(&m->arch, m->params, l);
        for (size_t i = 0; i < n; i++) {
            double w = W[i];
            cr_assert(fabs(w) <= limit, "W%d[%zu] = %g beyond Glorot limit %g",
                      l, i, w, limit);
            maxabs = fmax(maxabs, fabs(w));
            nonzero += w != 0.0;
            sum += w;
        }
        cr_assert(nonzero > n * 99 / 100, "W%d: %zu of %zu non-zero", l,
                  nonzero, n);
        cr_assert(maxabs > 0.9 * limit, "W%d does not span the range", l);
        cr_assert(fabs(sum / n) < 0.1 * limit, "W%d mean %g is biased", l,
                  sum / n);
        for (int o = 0; o < out; o++)
            cr_assert(b[o] == 0.0f, "b%d[%d] = %g", l, o, b[o]);
    }
    model_free(m);
}

Test(nn, arch_check_rejects_bad_shapes)
{
    mn_err err = {{0}};
    model_arch ok = {.n_in = 784, .n_out = 10};
    mlp_arch(&ok, 1, (const int[]){100}, 0.0f);
    cr_assert_eq(model_arch_check(&ok, &err), 0, "%s", err.msg);
    model_arch a = ok;
    a.n_out = 1;
    cr_assert_eq(model_arch_check(&a, &err), -1);
    a = ok;
    a.layers[0].size = 0;
    cr_assert_eq(model_arch_check(&a, &err), -1);
    cr_assert(strstr(err.msg, "hidden_units"), "%s", err.msg);
    a = ok;
    a.n_layers = MODEL_MAX_LAYERS + 1;
    cr_assert_eq(model_arch_check(&a, &err), -1);
    a = ok;
    a.dropout = 1.0f;
    cr_assert_eq(model_arch_check(&a, &err), -1);
    cr_assert(strstr(err.msg, "dropout"), "%s", err.msg);
    a.dropout = NAN;
    cr_assert_eq(model_arch_check(&a, &err), -1);
    cr_assert_null(model_new(&a, 1, &err));
}
