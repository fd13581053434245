/* test_cnn_torch.c: the cnn kind (engine/cnn.c, reached only through
 * model.h's interface) against PyTorch: a tiny fixed net (an even kernel
 * with "same" padding, a pool that drops a row and a column, a "valid"
 * convolution, a dense ReLU layer, the output layer; a batch of 3 11x11
 * images) whose logits, summed cross-entropy and every parameter's gradient
 * PyTorch computed in float64 (tests/fixtures/make_cnn_torch_fixture.py ->
 * tests/fixtures/cnn_torch_fixture.h; torch is needed only to regenerate
 * it). The fixture keeps PyTorch's layouts; the test places them into the
 * engine's parameter block through model_layer_weights' dense views
 * (a convolution's W [C*K*K, OC], row (c*K + ki)*K + kj, layers.h; a dense
 * layer's W [in, out]). The engine computes in float32: agreement within a
 * relative 1e-4 (for gradients, plus 1e-6 of the layer's largest). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/cnn.h"
#include "engine/model.h"
#include "tests/fixtures/cnn_torch_fixture.h"
#include "tests/unit/helpers.h"

#define CT_REL 1e-4             /* relative agreement with PyTorch */
#define CT_ABS 1e-6             /* of a layer's largest gradient */
#define CT_LOGIT_ABS 1e-6       /* a centred logit from float32
                                   probabilities: log p to ~1e-7 */
#define CT_N_LAYERS (CT_N_CONV + 2) /* layers with weights */

/* Layer l's tensors in the fixture (PyTorch's layouts) and its shape as
 * the engine's dense view must show it: weights [n_in, n_out]. */
typedef struct ct_layer {
    const char *name;
    const float *w, *b;         /* conv [OC, C, K, K] or dense [out, in] */
    const double *gw, *gb;      /* their gradients, same layouts */
    int n_in, n_out;
} ct_layer;

static void ct_layers(ct_layer *L)
{
    L[0] = (ct_layer){"conv0", ct_conv0_weight, ct_conv0_bias,
                      ct_grad_conv0_weight, ct_grad_conv0_bias,
                      ct_conv[0][0] * ct_conv[0][2] * ct_conv[0][2],
                      ct_conv[0][1]};
    L[1] = (ct_layer){"conv1", ct_conv1_weight, ct_conv1_bias,
                      ct_grad_conv1_weight, ct_grad_conv1_bias,
                      ct_conv[1][0] * ct_conv[1][2] * ct_conv[1][2],
                      ct_conv[1][1]};
    L[2] = (ct_layer){"dense0", ct_dense0_weight, ct_dense0_bias,
                      ct_grad_dense0_weight, ct_grad_dense0_bias, CT_FLAT,
                      CT_HIDDEN};
    L[3] = (ct_layer){"dense1", ct_dense1_weight, ct_dense1_bias,
                      ct_grad_dense1_weight, ct_grad_dense1_bias, CT_HIDDEN,
                      CT_N_OUT};
}

/* The fixture's index of weight (row i, column o) of the engine's dense
 * view [n_in, n_out]: both PyTorch layouts are that view transposed
 * ([OC, C*K*K] for a convolution, [out, in] for a dense layer). */
static size_t torch_at(const ct_layer *l, int i, int o)
{
    return (size_t)o * l->n_in + i;
}

/* The worst |got - want| / |want| seen, for the messages. */
static double worst_rel(double got, double want, double worst)
{
    double r = fabs(got - want) / fmax(fabs(want), 1e-30);
    return r > worst ? r : worst;
}

Test(cnn_torch, forward_loss_and_gradients_match_pytorch)
{
    mn_err err = {{0}};
    cnn_conv conv[CT_N_CONV];
    for (int i = 0; i < CT_N_CONV; i++)
        conv[i] = (cnn_conv){.filters = ct_conv[i][1], .kernel = ct_conv[i][2],
                             .pool = ct_conv[i][4], .same = ct_conv[i][3]};
    model_arch a = {.n_in = CT_SIDE * CT_SIDE, .n_out = CT_N_OUT};
    cr_assert_eq(cnn_arch(&a, CT_N_CONV, conv, 1, (const int[]){CT_HIDDEN},
                          0.0f, &err), 0, "%s", err.msg);
    cr_assert_eq(model_arch_check(&a, &err), 0, "%s", err.msg);
    model *m = model_new(&a, 1, &err);
    cr_assert_not_null(m, "%s", err.msg);
    model_ws *ws = model_ws_new(&a, CT_BATCH, &err);
    cr_assert_not_null(ws, "%s", err.msg);

    /* PyTorch's parameters into the engine's block, layer by layer; the
     * layers' blocks add up to the whole */
    ct_layer L[CT_N_LAYERS];
    ct_layers(L);
    cr_assert_eq(model_layer_count(&a), CT_N_LAYERS);
    size_t covered = 0;
    for (int l = 0; l < CT_N_LAYERS; l++) {
        model_weights lw;
        model_layer_weights(m, l, &lw);
        cr_assert_eq(lw.n_in, L[l].n_in, "%s", L[l].name);
        cr_assert_eq(lw.n_out, L[l].n_out, "%s", L[l].name);
        float *w = m->params + (lw.w - m->params);
        float *b = m->params + (lw.b - m->params);
        for (int i = 0; i < lw.n_in; i++)
            for (int o = 0; o < lw.n_out; o++)
                w[(size_t)i * lw.n_out + o] = L[l].w[torch_at(&L[l], i, o)];
        memcpy(b, L[l].b, sizeof(float) * (size_t)lw.n_out);
        covered += (size_t)lw.n_in * lw.n_out + (size_t)lw.n_out;
    }
    cr_assert_eq(covered, m->n_params);

    /* forward: the summed loss, the probabilities (softmax of PyTorch's
     * logits) and the logits themselves as far as probabilities show them
     * (up to a constant per row: log p - mean log p = z - mean z) */
    double loss = model_forward(m, ws, ct_x, ct_labels, CT_BATCH, 0, NULL);
    cr_assert(th_near(loss, ct_loss, CT_REL, 0), "loss %.9g, PyTorch %.9g",
              loss, ct_loss);
    double worst_p = 0.0, worst_z = 0.0;
    for (int r = 0; r < CT_BATCH; r++) {
        const double *z = ct_logits + (size_t)r * CT_N_OUT;
        const float *p = ws->probs + (size_t)r * CT_N_OUT;
        double zmax = z[0], zmean = 0.0, lmean = 0.0, sum = 0.0;
        for (int k = 0; k < CT_N_OUT; k++) zmax = fmax(zmax, z[k]);
        for (int k = 0; k < CT_N_OUT; k++) {
            sum += exp(z[k] - zmax);
            zmean += z[k] / CT_N_OUT;
            lmean += log(p[k]) / CT_N_OUT;
        }
        for (int k = 0; k < CT_N_OUT; k++) {
            double want = exp(z[k] - zmax) / sum;
            cr_assert(th_near(p[k], want, CT_REL, 0),
                      "probs[%d][%d] = %.9g, PyTorch %.9g", r, k, p[k], want);
            worst_p = worst_rel(p[k], want, worst_p);
            double got_c = log(p[k]) - lmean, want_c = z[k] - zmean;
            cr_assert(th_near(got_c, want_c, CT_REL, CT_LOGIT_ABS),
                      "centred logit [%d][%d] = %.9g, PyTorch %.9g", r, k,
                      got_c, want_c);
            worst_z = fmax(worst_z, fabs(got_c - want_c));
        }
    }

    /* backward: every parameter's gradient of the summed loss. A gradient
     * summed from terms that nearly cancel carries float32's rounding of
     * the terms, not of itself: agreement is relative (CT_REL) plus
     * CT_ABS of the layer's largest gradient (np.allclose's rtol, atol). */
    model_backward(m, ws, ct_labels, CT_BATCH);
    for (int l = 0; l < CT_N_LAYERS; l++) {
        model_weights lw;
        model_layer_weights(m, l, &lw);
        const float *gw = m->grads + (lw.w - m->params);
        const float *gb = m->grads + (lw.b - m->params);
        size_t n_w = (size_t)lw.n_in * lw.n_out;
        double largest = 0.0;
        for (size_t k = 0; k < n_w; k++) largest = fmax(largest, fabs(L[l].gw[k]));
        for (int o = 0; o < lw.n_out; o++) largest = fmax(largest, fabs(L[l].gb[o]));
        /* the fixture reaches every layer */
        cr_assert_gt(largest, 1e-3, "%s: PyTorch's gradients are all about 0",
                     L[l].name);
        double atol = CT_ABS * largest, worst = 0.0;
        for (int i = 0; i < lw.n_in; i++)
            for (int o = 0; o < lw.n_out; o++) {
                double got = gw[(size_t)i * lw.n_out + o],
                       want = L[l].gw[torch_at(&L[l], i, o)];
                cr_assert(th_near(got, want, CT_REL, atol),
                          "%s.weight grad [%d][%d] = %.9g, PyTorch %.9g",
                          L[l].name, i, o, got, want);
                worst = fmax(worst, fabs(got - want) / largest);
            }
        for (int o = 0; o < lw.n_out; o++) {
            cr_assert(th_near(gb[o], L[l].gb[o], CT_REL, atol),
                      "%s.bias grad [%d] = %.9g, PyTorch %.9g", L[l].name, o,
                      gb[o], L[l].gb[o]);
            worst = fmax(worst, fabs(gb[o] - L[l].gb[o]) / largest);
        }
        cr_log_info("%s: largest gradient %.3g, largest difference %.2g of it",
                    L[l].name, largest, worst);
    }
    cr_log_info("probabilities: largest relative difference %.2g; centred "
                "logits: largest difference %.2g", worst_p,
                worst_z);
    model_ws_free(ws);
    model_free(m);
}
