/* test_cnn.c: the convolution and max-pooling layers of engine/layers.c
 * and the cnn kind of engine/cnn.c.
 *
 * As in test_nn.c, every backward pass is checked against central finite
 * differences of a loss computed in double precision by code written
 * here, independently of the engine (direct convolution loops, no
 * im2col): the layers on every input and parameter (the convolution
 * fused with its max pool, bias and ReLU also against the unfused
 * backward passes), and two small whole cnns (convolutions with both
 * paddings, pooling, a dense hidden layer; one with two pooled
 * convolutions) on every parameter. Also: the architecture's checks name the layer at
 * fault, a cnn's checkpoint round-trips, and the workspace (hence the
 * memory estimate) counts the feature maps. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ckpt.h"
#include "engine/cnn.h"
#include "engine/layers.h"
#include "engine/rng.h"
#include "engine/train.h"
#include "tests/unit/helpers.h"


/* Direct convolution in double of one image: out [OC, OH, OW] from
 * inp [C, H, W], w [C*K*K, OC], b [OC] (layers.h's layout). */
static void ref_conv(double *out, const double *inp, const float *w,
                     const float *b, const nn_conv2d_dims *d)
{
    for (int o = 0; o < d->OC; o++)
        for (int i = 0; i < d->OH; i++)
            for (int j = 0; j < d->OW; j++) {
                double z = b[o];
                for (int c = 0; c < d->C; c++)
                    for (int u = 0; u < d->K; u++)
                        for (int v = 0; v < d->K; v++) {
                            int y = i + u - d->pad_t, x = j + v - d->pad_l;
                            if (y < 0 || y >= d->H || x < 0 || x >= d->W)
                                continue;
                            z += inp[(c * d->H + y) * d->W + x] *
                                 w[((c * d->K + u) * d->K + v) * d->OC + o];
                        }
                out[(o * d->OH + i) * d->OW + j] = z;
            }
}

/* ---- conv2d ---- */

/* three images, so that chunks of two leave a partial last chunk */
enum { CB = 3, CC = 2, CH = 6, CW = 5, COC = 3, CMAX = CB * COC * CH * CW };

typedef struct conv_ctx {
    nn_conv2d_dims d;
    float inp[CB * CC * CH * CW], w[CC * 25 * COC], b[COC], g[CMAX];
} conv_ctx;

/* sum of g * conv(inp) in double; inp [C, B, H, W] and g [OC, B, OH, OW]
 * are CNHW (layers.h), ref_conv reads and writes one image's [C, H, W] */
static double conv_ref_loss(const void *vctx)
{
    const conv_ctx *c = vctx;
    const nn_conv2d_dims *d = &c->d;
    size_t hw = (size_t)d->H * d->W, ohw = (size_t)d->OH * d->OW;
    double x[CC * CH * CW], o[CMAX], loss = 0.0;
    for (int i = 0; i < CB; i++) {
        for (int ch = 0; ch < d->C; ch++)
            for (size_t k = 0; k < hw; k++)
                x[ch * hw + k] = c->inp[((size_t)ch * CB + i) * hw + k];
        ref_conv(o, x, c->w, c->b, d);
        for (int oc = 0; oc < d->OC; oc++)
            for (size_t k = 0; k < ohw; k++)
                loss += o[oc * ohw + k] * c->g[((size_t)oc * CB + i) * ohw + k];
    }
    return loss;
}

/* The layers in chunks of nb images (1, 2 with a partial last chunk, or
 * the whole batch). */
static void check_conv_nb(int K, int same, uint64_t seed, int nb)
{
    conv_ctx c;
    memset(&c, 0, sizeof c);
    nn_conv2d_dims_set(&c.d, CC, CH, CW, COC, K, same);
    const nn_conv2d_dims *d = &c.d;
    if (same) cr_assert(d->OH == CH && d->OW == CW);
    else cr_assert(d->OH == CH - K + 1 && d->OW == CW - K + 1);
    size_t n_in = (size_t)CB * CC * CH * CW, n_w = (size_t)CC * K * K * COC,
           n_out = (size_t)CB * COC * d->OH * d->OW,
           n_col = (size_t)CC * K * K * d->OH * d->OW * nb;
    rng_state r;
    rng_seed(&r, seed);
    th_fill_uniform(c.inp, n_in, -1, 1, &r);
    th_fill_uniform(c.w, n_w, -1, 1, &r);
    th_fill_uniform(c.b, COC, -1, 1, &r);
    th_fill_uniform(c.g, n_out, -1, 1, &r);

    float out[CMAX], col[CC * 25 * CB * CH * CW], dcol[CC * 25 * CB * CH * CW];
    cr_assert(n_col <= sizeof col / sizeof col[0]);
    nn_conv2d_forward(out, col, c.inp, c.w, c.b, CB, nb, d);
    double loss = 0.0;
    for (size_t k = 0; k < n_out; k++) loss += (double)out[k] * c.g[k];
    cr_assert(th_near(loss, conv_ref_loss(&c), 1e-5, 1e-5),
              "forward: %.9g, reference %.9g", loss, conv_ref_loss(&c));

    float dinp[CB * CC * CH * CW], dw[CC * 25 * COC], db[COC];
    for (size_t k = 0; k < n_in; k++) dinp[k] = 7.0f; /* written, not added */
    memset(dw, 0, sizeof dw);
    memset(db, 0, sizeof db);
    nn_conv2d_backward(dinp, dw, db, col, dcol, c.g, c.inp, c.w, CB, nb, d);
    th_check_grad("dinp", c.inp, dinp, n_in, conv_ref_loss, &c, TH_FD_EPS);
    th_check_grad("dw", c.w, dw, n_w, conv_ref_loss, &c, TH_FD_EPS);
    th_check_grad("db", c.b, db, COC, conv_ref_loss, &c, TH_FD_EPS);

    /* without dinp: the same parameter gradients, accumulated */
    float dw2[CC * 25 * COC], db2[COC];
    for (size_t k = 0; k < n_w; k++) dw2[k] = 1.0f;
    for (int k = 0; k < COC; k++) db2[k] = 1.0f;
    nn_conv2d_backward(NULL, dw2, db2, col, dcol, c.g, c.inp, c.w, CB, nb, d);
    for (size_t k = 0; k < n_w; k++)
        cr_assert(th_near(dw2[k], dw[k] + 1.0f, 1e-5, 1e-5), "dw accumulates");
    for (int k = 0; k < COC; k++)
        cr_assert(th_near(db2[k], db[k] + 1.0f, 1e-5, 1e-5), "db accumulates");
}

static void check_conv(int K, int same, uint64_t seed)
{
    for (int nb = 1; nb <= CB; nb++) check_conv_nb(K, same, seed, nb);
}

Test(cnn, conv2d_valid_matches_reference_and_finite_differences)
{
    check_conv(3, 0, 61);
}

Test(cnn, conv2d_same_odd_kernel_matches_finite_differences)
{
    check_conv(3, 1, 62);
}

Test(cnn, conv2d_same_even_kernel_pads_below_and_right)
{
    conv_ctx c;
    nn_conv2d_dims_set(&c.d, CC, CH, CW, COC, 4, 1);
    cr_assert_eq(c.d.pad_t, 1);
    cr_assert_eq(c.d.pad_l, 1);
    check_conv(4, 1, 63);
}

Test(cnn, conv2d_kernel_of_the_whole_image)
{
    check_conv(5, 0, 64); /* 6 x 5 input, 5 x 5 kernel: a 2 x 1 map */
}

/* ---- maxpool ---- */

enum { PB = 2, PC = 2, PH_ = 5, PW_ = 7, PP = 2 };

typedef struct pool_ctx {
    float inp[PB * PC * PH_ * PW_], g[PB * PC * (PH_ / PP) * (PW_ / PP)];
} pool_ctx;

static double pool_ref_loss(const void *vctx)
{
    const pool_ctx *c = vctx;
    int oh = PH_ / PP, ow = PW_ / PP;
    double loss = 0.0;
    for (int pl = 0; pl < PB * PC; pl++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                double m = -INFINITY;
                for (int u = 0; u < PP; u++)
                    for (int v = 0; v < PP; v++)
                        m = fmax(m, c->inp[(pl * PH_ + PP * i + u) * PW_ + PP * j + v]);
                loss += m * c->g[(pl * oh + i) * ow + j];
            }
    return loss;
}

/* dmap = dpool routed to each window's maximum (argmax), 0 elsewhere:
 * the pooling's backward, which the engine fuses into
 * nn_conv2d_pool_backward.  dmap: [n_planes, H, W]
 * dpool, argmax: [n_planes, H/P, W/P] */
static void route_to_max(float *dmap, const float *dpool,
                         const uint32_t *argmax, size_t n_planes, int H,
                         int W, int P)
{
    size_t n_out = (size_t)(H / P) * (W / P);
    memset(dmap, 0, sizeof(float) * n_planes * H * W);
    for (size_t pl = 0; pl < n_planes; pl++)
        for (size_t k = 0; k < n_out; k++)
            dmap[pl * H * W + argmax[pl * n_out + k]] += dpool[pl * n_out + k];
}

/* the values and, through finite differences of the gradient routed by
 * it, the argmax */
Test(cnn, maxpool_matches_reference_and_finite_differences)
{
    pool_ctx c;
    rng_state r;
    rng_seed(&r, 71);
    size_t n_in = sizeof c.inp / sizeof c.inp[0], n_out = sizeof c.g / sizeof c.g[0];
    /* distinct values at least 0.01 apart, so that no step changes a
     * window's maximum */
    for (size_t k = 0; k < n_in; k++) c.inp[k] = 0.01f * (float)k - 0.3f;
    for (size_t k = n_in - 1; k > 0; k--) {
        size_t j = rng_below(&r, (uint32_t)(k + 1));
        float t = c.inp[k];
        c.inp[k] = c.inp[j];
        c.inp[j] = t;
    }
    th_fill_uniform(c.g, n_out, -1, 1, &r);
    float out[sizeof c.g / sizeof c.g[0]];
    uint32_t am[sizeof c.g / sizeof c.g[0]];
    nn_maxpool_forward(out, am, c.inp, PB * PC, PH_, PW_, PP);
    double loss = 0.0;
    for (size_t k = 0; k < n_out; k++) loss += (double)out[k] * c.g[k];
    cr_assert(th_near(loss, pool_ref_loss(&c), 1e-6, 1e-6));
    float dinp[sizeof c.inp / sizeof c.inp[0]];
    for (size_t k = 0; k < n_in; k++) dinp[k] = 7.0f;
    route_to_max(dinp, c.g, am, PB * PC, PH_, PW_, PP);
    th_check_grad("dinp", c.inp, dinp, n_in, pool_ref_loss, &c, 1e-3);
    /* the dropped last row and column get no gradient */
    for (int pl = 0; pl < PB * PC; pl++) {
        for (int j = 0; j < PW_; j++)
            cr_assert_eq(dinp[(pl * PH_ + PH_ - 1) * PW_ + j], 0.0f);
        for (int i = 0; i < PH_; i++)
            cr_assert_eq(dinp[(pl * PH_ + i) * PW_ + PW_ - 1], 0.0f);
    }
}

/* ---- conv2d, max pool, bias and ReLU fused ---- */

/* three images of up to 8 channels (FC), 7 x 6 (pools that drop rows
 * and columns) */
enum { FB = 3, FC = 8, FH = 7, FW = 6, FOC = 3, FMAX = FB * FOC * FH * FW };

typedef struct fused_ctx {
    nn_conv2d_dims d;
    int P;
    float inp[FB * FC * FH * FW], w[FC * 25 * FOC], b[FOC], g[FMAX];
} fused_ctx;

/* sum of g * relu(maxpool(conv(inp) + b)) in double; *margin (if
 * non-NULL) gets the smallest |pooled value| and the smallest gap
 * between a window's two largest values, to keep finite differences off
 * the kinks */
static double fused_ref_loss_m(const fused_ctx *c, double *margin)
{
    const nn_conv2d_dims *d = &c->d;
    int P = c->P, PH = d->OH / P, PW = d->OW / P;
    size_t hw = (size_t)d->H * d->W, phw = (size_t)PH * PW;
    double x[FC * FH * FW], o[FMAX], loss = 0.0, mg = INFINITY;
    for (int i = 0; i < FB; i++) {
        for (int ch = 0; ch < d->C; ch++)
            for (size_t k = 0; k < hw; k++)
                x[ch * hw + k] = c->inp[((size_t)ch * FB + i) * hw + k];
        ref_conv(o, x, c->w, c->b, d);
        for (int oc = 0; oc < d->OC; oc++)
            for (int u = 0; u < PH; u++)
                for (int v = 0; v < PW; v++) {
                    double m1 = -INFINITY, m2 = -INFINITY;
                    for (int s = 0; s < P; s++)
                        for (int t = 0; t < P; t++) {
                            double e = o[(oc * d->OH + P * u + s) * d->OW + P * v + t];
                            if (e > m1) { m2 = m1; m1 = e; }
                            else if (e > m2) m2 = e;
                        }
                    mg = fmin(mg, fmin(fabs(m1), m1 - m2));
                    loss += (m1 > 0 ? m1 : 0.0) *
                            c->g[((size_t)oc * FB + i) * phw + u * PW + v];
                }
    }
    if (margin) *margin = mg;
    return loss;
}

static double fused_ref_loss(const void *vctx)
{
    return fused_ref_loss_m(vctx, NULL);
}

/* nn_conv2d_pool_forward and nn_conv2d_pool_backward against the
 * reference and finite differences, in chunks of nb images; the backward
 * also against the pooling's and the convolution's own backward passes. */
static void check_fused_nb(int C, int K, int same, int P, uint64_t seed,
                           int nb)
{
    fused_ctx c;
    memset(&c, 0, sizeof c);
    cr_assert(C <= FC);
    nn_conv2d_dims_set(&c.d, C, FH, FW, FOC, K, same);
    c.P = P;
    const nn_conv2d_dims *d = &c.d;
    int PH = d->OH / P, PW = d->OW / P;
    cr_assert(PH >= 1 && PW >= 1);
    size_t n_in = (size_t)FB * C * FH * FW, n_w = (size_t)C * K * K * FOC,
           n_out = (size_t)FB * FOC * PH * PW;
    rng_state r;
    rng_seed(&r, seed);
    double margin = 0.0;
    int tries = 0;
    do {
        cr_assert(++tries <= 2000, "no input with a margin found");
        th_fill_uniform(c.inp, n_in, -1, 1, &r);
        th_fill_uniform(c.w, n_w, -1, 1, &r);
        th_fill_uniform(c.b, FOC, -0.5f, 0.5f, &r);
        th_fill_uniform(c.g, n_out, -1, 1, &r);
        fused_ref_loss_m(&c, &margin);
    } while (margin < 0.01);

    float out[FMAX], map[FMAX], col[FC * 25 * FB * FH * FW];
    uint32_t am[FMAX];
    nn_conv2d_pool_forward(out, am, col, map, c.inp, c.w, c.b, FB, nb, P, d);
    double loss = 0.0;
    for (size_t k = 0; k < n_out; k++) {
        cr_assert(out[k] >= 0.0f, "ReLU'd");
        loss += (double)out[k] * c.g[k];
    }
    cr_assert(th_near(loss, fused_ref_loss(&c), 1e-5, 1e-5),
              "forward: %.9g, reference %.9g", loss, fused_ref_loss(&c));

    /* the pooled map's gradient through the ReLU, as cnn.c gives it */
    float dpool[FMAX];
    nn_relu_backward(dpool, c.g, out, n_out);
    float dinp[FB * FC * FH * FW], dw[FC * 25 * FOC], db[FOC];
    float *scratch = malloc(sizeof(float) * nn_conv2d_pool_backward_scratch(d));
    cr_assert_not_null(scratch);
    for (size_t k = 0; k < n_in; k++) dinp[k] = 7.0f; /* written, not added */
    memset(dw, 0, sizeof dw);
    memset(db, 0, sizeof db);
    nn_conv2d_pool_backward(dinp, dw, db, scratch, dpool, am, c.inp, c.w, FB,
                            P, d);
    th_check_grad("dinp", c.inp, dinp, n_in, fused_ref_loss, &c, TH_FD_EPS);
    th_check_grad("dw", c.w, dw, n_w, fused_ref_loss, &c, TH_FD_EPS);
    th_check_grad("db", c.b, db, FOC, fused_ref_loss, &c, TH_FD_EPS);

    /* the same as routing to the maxima then the convolution's backward */
    float dmap[FMAX], dinp2[FB * FC * FH * FW], dw2[FC * 25 * FOC], db2[FOC],
        dcol[FC * 25 * FB * FH * FW];
    memset(dw2, 0, sizeof dw2);
    memset(db2, 0, sizeof db2);
    route_to_max(dmap, dpool, am, (size_t)FOC * FB, d->OH, d->OW, P);
    nn_conv2d_backward(dinp2, dw2, db2, col, dcol, dmap, c.inp, c.w, FB, nb, d);
    for (size_t k = 0; k < n_in; k++)
        cr_assert(th_near(dinp[k], dinp2[k], 1e-5, 1e-6), "dinp[%zu]", k);
    for (size_t k = 0; k < n_w; k++)
        cr_assert(th_near(dw[k], dw2[k], 1e-5, 1e-6), "dw[%zu]", k);
    for (int k = 0; k < FOC; k++)
        cr_assert(th_near(db[k], db2[k], 1e-5, 1e-6), "db[%d]", k);

    /* without dinp: the same parameter gradients, accumulated */
    for (size_t k = 0; k < n_w; k++) dw2[k] = 1.0f;
    for (int k = 0; k < FOC; k++) db2[k] = 1.0f;
    nn_conv2d_pool_backward(NULL, dw2, db2, scratch, dpool, am, c.inp, c.w,
                            FB, P, d);
    for (size_t k = 0; k < n_w; k++)
        cr_assert(th_near(dw2[k], dw[k] + 1.0f, 1e-5, 1e-5), "dw accumulates");
    for (int k = 0; k < FOC; k++)
        cr_assert(th_near(db2[k], db[k] + 1.0f, 1e-5, 1e-5), "db accumulates");
    free(scratch);
}

static void check_fused(int C, int K, int same, int P, uint64_t seed)
{
    for (int nb = 1; nb <= FB; nb++) check_fused_nb(C, K, same, P, seed, nb);
}

/* runs of K*C floats (layers.c sums them in vectors of 16): under one
 * vector (kernel 2 to 5 on 2 channels, 3 x 1, 3 x 3), one (4 x 4), more than one
 * but not whole (5 x 4), two (4 x 8) */
Test(cnn, conv2d_pool_valid_matches_reference_and_finite_differences)
{
    check_fused(2, 2, 0, 2, 91); /* a 6 x 5 map: pools of 3 x 2, a column dropped */
}

Test(cnn, conv2d_pool_same_odd_kernel_matches_finite_differences)
{
    check_fused(2, 3, 1, 2, 92); /* 7 x 6: a row dropped */
    check_fused(3, 3, 1, 2, 95);
    check_fused(1, 3, 1, 2, 99); /* one channel: its rows copied as they are */
}

Test(cnn, conv2d_pool_same_even_kernel_and_pool_3)
{
    check_fused(2, 4, 1, 3, 93); /* pads 1 above and left, 2 below and right */
    check_fused(4, 4, 1, 2, 96);
    check_fused(8, 4, 1, 2, 98);
}

Test(cnn, conv2d_pool_kernel_of_the_whole_width)
{
    check_fused(2, 5, 0, 2, 94); /* a 3 x 2 map: one window */
    check_fused(4, 5, 0, 2, 97);
}

/* ---- the whole cnn ---- */

#define REF_MAX 4096

typedef struct net_ctx {
    const model *m;
    const float *x;     /* [B, n_in] */
    const uint8_t *y;   /* [B] */
    int B;
} net_ctx;

/* The summed cross-entropy of a cnn in double precision, walking the
 * layer list with cnn.h's parameter layout. *margin (if non-NULL) gets
 * the smallest |pre-activation| of any ReLU and the smallest gap between
 * a pooling window's two largest values, so that a caller can keep finite
 * differences off the kinks. */
static double ref_cnn_loss_m(const net_ctx *c, double *margin)
{
    const model_arch *a = &c->m->arch;
    double loss = 0.0, mg = INFINITY;
    for (int i = 0; i < c->B; i++) {
        static double h[REF_MAX], z[REF_MAX];
        int side = (int)lround(sqrt(a->n_in)), C = 1, H = side, W = side;
        for (int k = 0; k < a->n_in; k++) h[k] = c->x[(size_t)i * a->n_in + k];
        const float *p = c->m->params;
        int l = 0;
        for (; l < a->n_layers && a->layers[l].type != MODEL_LAYER_DENSE; l++) {
            const model_layer *y = &a->layers[l];
            if (y->type == MODEL_LAYER_POOL) {
                int P = (int)y->kernel, OH = H / P, OW = W / P;
                for (int ch = 0; ch < C; ch++)
                    for (int u = 0; u < OH; u++)
                        for (int v = 0; v < OW; v++) {
                            double m1 = -INFINITY, m2 = -INFINITY;
                            for (int s = 0; s < P; s++)
                                for (int t = 0; t < P; t++) {
                                    double e = h[(ch * H + P * u + s) * W + P * v + t];
                                    if (e > m1) { m2 = m1; m1 = e; }
                                    else if (e > m2) m2 = e;
                                }
                            /* a tie at 0 (ReLU'd) passes no gradient: fine */
                            if (m1 > 0.0) mg = fmin(mg, m1 - m2);
                            z[(ch * OH + u) * OW + v] = m1;
                        }
                H = OH;
                W = OW;
                memcpy(h, z, sizeof(double) * (size_t)C * H * W);
                continue;
            }
            nn_conv2d_dims d;
            nn_conv2d_dims_set(&d, C, H, W, (int)y->size, (int)y->kernel,
                               y->type == MODEL_LAYER_CONV_SAME);
            const float *w = p, *b = p + (size_t)C * d.K * d.K * d.OC;
            ref_conv(z, h, w, b, &d);
            p = b + d.OC;
            C = d.OC;
            H = d.OH;
            W = d.OW;
            for (int k = 0; k < C * H * W; k++) {
                mg = fmin(mg, fabs(z[k]));
                h[k] = z[k] > 0 ? z[k] : 0.0;
            }
        }
        int width = C * H * W;
        for (; l <= a->n_layers; l++) {
            int out = l < a->n_layers ? (int)a->layers[l].size : a->n_out;
            const float *w = p, *b = p + (size_t)width * out;
            for (int o = 0; o < out; o++) {
                z[o] = b[o];
                for (int k = 0; k < width; k++) z[o] += h[k] * w[(size_t)k * out + o];
            }
            p = b + out;
            if (l < a->n_layers)
                for (int o = 0; o < out; o++) {
                    mg = fmin(mg, fabs(z[o]));
                    h[o] = z[o] > 0 ? z[o] : 0.0;
                }
            width = out;
        }
        double zmax = z[0], sum = 0.0;
        for (int k = 1; k < width; k++) zmax = fmax(zmax, z[k]);
        for (int k = 0; k < width; k++) sum += exp(z[k] - zmax);
        loss += log(sum) + zmax - z[c->y[i]];
    }
    if (margin) *margin = mg;
    return loss;
}

static double ref_cnn_loss(const void *vctx)
{
    return ref_cnn_loss_m(vctx, NULL);
}

/* A small cnn on 8 x 8 images: conv 3 filters 3x3 same, pool 2; conv 4
 * filters 2x2 valid; dense 5; 10 classes. */
static void small_cnn(model_arch *a)
{
    memset(a, 0, sizeof *a);
    a->n_in = 64;
    a->n_out = 10;
    cnn_conv conv[] = {{3, 3, 2, 1}, {4, 2, 1, 0}};
    mn_err err = {{0}};
    cr_assert_eq(cnn_arch(a, 2, conv, 1, (const int[]){5}, 0.0f, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(model_arch_check(a, &err), 0, "%s", err.msg);
}

/* A cnn whose second convolution is pooled too, so that
 * nn_conv2d_pool_backward also computes an input's gradient, over runs of
 * K*C = 18 floats (more than a vector): conv 6 filters 3x3 same, pool 2;
 * conv 5 filters 3x3 same, pool 2; dense 5. */
static void pooled_cnn(model_arch *a)
{
    memset(a, 0, sizeof *a);
    a->n_in = 64;
    a->n_out = 10;
    cnn_conv conv[] = {{6, 3, 2, 1}, {5, 3, 2, 1}};
    mn_err err = {{0}};
    cr_assert_eq(cnn_arch(a, 2, conv, 1, (const int[]){5}, 0.0f, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(model_arch_check(a, &err), 0, "%s", err.msg);
}

static void check_whole_cnn(const model_arch *ap, uint64_t seed)
{
    model_arch a = *ap;
    const int B = 3;
    mn_err err = {{0}};
    model *m = model_new(&a, 1, &err);
    cr_assert_not_null(m, "%s", err.msg);
    model_ws *ws = model_ws_new(&a, B, &err);
    cr_assert_not_null(ws, "%s", err.msg);
    float x[3 * 64];
    uint8_t y[3];
    net_ctx c = {m, x, y, B};
    rng_state r;
    rng_seed(&r, seed);
    double margin = 0.0, loss = 0.0;
    int tries = 0;
    do {
        cr_assert(++tries <= 2000, "no batch with a margin found");
        model_init(m, &r);
        th_fill_uniform(m->params, m->n_params, -0.6f, 0.6f, &r);
        th_fill_uniform(x, sizeof x / sizeof x[0], -1, 1, &r);
        for (int i = 0; i < B; i++) y[i] = (uint8_t)rng_below(&r, 10);
        loss = model_forward(m, ws, x, y, B, 1, &r);
        ref_cnn_loss_m(&c, &margin);
    } while (margin < 0.004);
    double want = ref_cnn_loss(&c);
    cr_assert(th_near(loss, want, 1e-5, 1e-6), "model_forward loss %.9g, want %.9g",
              loss, want);
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = 7.0f;
    model_backward(m, ws, y, B);
    th_check_grad("param", m->params, m->grads, m->n_params, ref_cnn_loss, &c,
               1e-3);

    /* the same batch packed (as training feeds it) gives the same loss */
    uint32_t rowptr[4], idx[3 * 64];
    float val[3 * 64];
    nn_sparse_pack(rowptr, idx, val, x, B, 64);
    double loss2 = model_forward_csr(m, ws, rowptr, idx, val, y, B, 0, NULL);
    cr_assert(th_near(loss2, want, 1e-5, 1e-6), "packed input: %.9g", loss2);
    model_ws_free(ws);
    model_free(m);
}

Test(cnn, whole_cnn_gradient_matches_finite_differences_on_every_parameter)
{
    model_arch a;
    small_cnn(&a);
    check_whole_cnn(&a, 81);
}

Test(cnn, pooled_backward_cnn_gradient_matches_finite_differences)
{
    model_arch a;
    pooled_cnn(&a);
    check_whole_cnn(&a, 82);
}

Test(cnn, checks_name_the_layer_whose_map_shrinks)
{
    model_arch a = {.n_in = 784, .n_out = 10};
    mn_err err = {{0}};
    /* 28 -> 24 -> 12 -> 8 -> 4 -> (kernel 5 on 4x4) */
    cnn_conv conv[] = {{4, 5, 2, 0}, {4, 5, 2, 0}, {4, 5, 1, 0}};
    cr_assert_eq(cnn_arch(&a, 3, conv, 1, (const int[]){10}, 0.0f, &err), 0);
    cr_assert_eq(model_arch_check(&a, &err), -1);
    cr_assert(strstr(err.msg, "conv_layers[2]") && strstr(err.msg, "1x1"),
              "%s", err.msg);
    /* a pool larger than the map */
    cnn_conv conv2[] = {{4, 5, 2, 0}, {4, 11, 4, 0}};
    cr_assert_eq(cnn_arch(&a, 2, conv2, 0, NULL, 0.0f, &err), 0);
    cr_assert_eq(model_arch_check(&a, &err), -1);
    cr_assert(strstr(err.msg, "conv_layers[1]"), "%s", err.msg);
    /* the same with "same" padding fits */
    cnn_conv conv3[] = {{4, 5, 2, 1}, {4, 5, 2, 1}, {4, 5, 1, 1}};
    cr_assert_eq(cnn_arch(&a, 3, conv3, 1, (const int[]){10}, 0.0f, &err), 0);
    cr_assert_eq(model_arch_check(&a, &err), 0, "%s", err.msg);
    /* too many layers in all */
    cnn_conv many[5] = {{1, 1, 2, 1}, {1, 1, 2, 1}, {1, 1, 2, 1}, {1, 1, 2, 1},
                        {1, 1, 1, 1}};
    cr_assert_eq(cnn_arch(&a, 5, many, 0, NULL, 0.0f, &err), -1);
    /* a cnn reads a square image */
    model_arch b = {.n_in = 50, .n_out = 10};
    cr_assert_eq(cnn_arch(&b, 1, conv, 0, NULL, 0.0f, &err), 0);
    cr_assert_eq(model_arch_check(&b, &err), -1);
}

Test(cnn, default_shape_counts_and_filters)
{
    model_arch a = {.n_in = 784, .n_out = 10};
    mn_err err = {{0}};
    cnn_conv conv[] = {{16, 5, 2, 0}, {32, 5, 2, 0}};
    cr_assert_eq(cnn_arch(&a, 2, conv, 1, (const int[]){100}, 0.0f, &err), 0);
    cr_assert_eq(model_arch_check(&a, &err), 0, "%s", err.msg);
    /* 28 -5-> 24 -pool-> 12 -5-> 8 -pool-> 4: 32*4*4 = 512 into dense */
    size_t want = 25 * 16 + 16 + 16 * 25 * 32 + 32 + 512 * 100 + 100 +
                  100 * 10 + 10;
    cr_assert_eq(model_param_count(&a), want);
    cr_assert_eq(model_layer_count(&a), 4);
    int n, h, w;
    model_filters(&a, &n, &h, &w);
    cr_assert(n == 16 && h == 5 && w == 5);
    model *m = model_new(&a, 0, &err);
    cr_assert_not_null(m);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = (float)i;
    float f[25];
    model_filter(m, 3, f, 1);
    for (int k = 0; k < 25; k++) cr_assert_eq(f[k], (float)(k * 16 + 3));
    model_weights lw;
    model_layer_weights(m, 1, &lw);
    cr_assert(lw.n_in == 16 * 25 && lw.n_out == 32);
    cr_assert_eq(lw.w, m->params + 25 * 16 + 16);
    model_layer_weights(m, 2, &lw);
    cr_assert(lw.n_in == 512 && lw.n_out == 100);
    model_free(m);
}

Test(cnn, checkpoint_round_trips)
{
    model_arch a;
    small_cnn(&a);
    mn_err err = {{0}};
    model *m = model_new(&a, 1, &err);
    cr_assert_not_null(m);
    rng_state r;
    rng_seed(&r, 91);
    model_init(m, &r);
    optim o;
    cr_assert_eq(optim_init(&o, OPTIM_ADAM, 0.001f, m->n_params, &err), 0);
    for (size_t i = 0; i < o.n_state; i++) o.state[i] = (float)i * 0.5f;
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ckpt_encode(m, &o, 123, &r, &buf, &len, &err), 0, "%s", err.msg);
    model *m2 = NULL;
    optim o2;
    uint64_t step = 0;
    rng_state r2;
    cr_assert_eq(ckpt_decode(buf, len, 1, &m2, &o2, &step, &r2, &err), 0,
                 "%s", err.msg);
    cr_assert(model_arch_equal(&m->arch, &m2->arch));
    cr_assert_eq(m2->arch.kind, &cnn_kind);
    cr_assert_eq(step, 123);
    cr_assert(memcmp(m->params, m2->params, 4 * m->n_params) == 0);
    cr_assert(memcmp(o.state, o2.state, 4 * o.n_state) == 0);
    cr_assert(memcmp(&r, &r2, sizeof r) == 0);
    free(buf);
    optim_free(&o2);
    optim_free(&o);
    model_free(m2);
    model_free(m);
}

Test(cnn, memory_estimate_counts_the_feature_maps)
{
    model_arch a = {.n_in = 784, .n_out = 10};
    mn_err err = {{0}};
    cnn_conv conv[] = {{16, 5, 2, 0}, {32, 5, 2, 0}};
    cr_assert_eq(cnn_arch(&a, 2, conv, 1, (const int[]){100}, 0.0f, &err), 0);
    /* per example at least: the input, each convolution's pooled map
     * with its argmax (the whole maps are neither kept nor their
     * gradients written: the pooling is fused, layers.h), the flattened
     * last map, and two gradient buffers of the largest pooled map, all 4
     * bytes a value */
    size_t per = 784 + 2 * 16 * 12 * 12 + 2 * 32 * 4 * 4 + 32 * 4 * 4 +
                 2 * 16 * 12 * 12;
    cr_assert_geq(model_ws_bytes(&a, 100), 100 * per * 4);
    model_ws *ws = model_ws_new(&a, 100, &err);
    cr_assert_not_null(ws, "%s", err.msg);
    model_ws_free(ws);
    train_params tp = {.arch = a, .optimizer = OPTIM_ADAM, .batch_size = 100,
                       .examples = 10000, .validation_examples = 2500};
    cr_assert_geq(train_memory_estimate(&tp), model_ws_bytes(&a, 100));
    size_t floats;
    cr_assert_eq(cnn_largest_map(&a, &floats), 0);
    cr_assert_eq(floats, 16 * 12 * 12); /* pooled, as kept */
    cnn_conv wide[] = {{4, 5, 2, 0}, {64, 3, 1, 1}};
    cr_assert_eq(cnn_arch(&a, 2, wide, 0, NULL, 0.0f, &err), 0);
    cr_assert_eq(cnn_largest_map(&a, &floats), 1);
    cr_assert_eq(floats, 64 * 12 * 12);
}
