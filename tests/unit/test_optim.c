/* test_optim.c: the optimizers and global-norm clipping of engine/optim.c
 * against values computed by hand (in double) from the conventions in
 * optim.h. */
#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include "engine/optim.h"

enum { N = 4 };

static const float g1[N] = {0.5f, -1.0f, 2.0f, 0.0f};
static const float g2[N] = {-0.25f, 3.0f, 2.0f, 1e-3f};
static const float p0[N] = {1.0f, 2.0f, -3.0f, 0.5f};

static void assert_close(const float *got, const double *want, int n,
                         double rel, const char *what)
{
    for (int i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) <= rel * fabs(want[i]) + 1e-7,
                  "%s[%d] = %.9g, want %.9g", what, i, got[i], want[i]);
}

/* Clipping as the training step applies it, done in place so that the
 * clipped gradients can be inspected: returns the norm before clipping. */
static double clip_in_place(float *g, size_t n, float clip)
{
    double norm = optim_global_norm(g, n);
    float f = optim_clip_factor(norm, clip);
    for (size_t i = 0; i < n; i++) g[i] *= f;
    return norm;
}

Test(optim, sgd_step)
{
    mn_err err = {{0}};
    optim o;
    cr_assert_eq(optim_init(&o, OPTIM_SGD, 0.1f, N, &err), 0, "%s", err.msg);
    cr_assert_eq(o.n_state, 0);
    float p[N];
    memcpy(p, p0, sizeof p);
    optim_step(&o, p, g1, 1.0f);
    double want[N];
    for (int i = 0; i < N; i++) want[i] = p0[i] - 0.1 * g1[i];
    assert_close(p, want, N, 1e-6, "sgd p");
    optim_step(&o, p, g2, 1.0f);
    for (int i = 0; i < N; i++) want[i] -= 0.1 * g2[i];
    assert_close(p, want, N, 1e-6, "sgd p after 2 steps");
    cr_assert_eq(o.t, 2);
    optim_free(&o);
}

Test(optim, adagrad_starts_accumulators_at_0_1)
{
    mn_err err = {{0}};
    optim o;
    const double lr = 0.05;
    cr_assert_eq(optim_init(&o, OPTIM_ADAGRAD, (float)lr, N, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(o.n_state, N);
    for (int i = 0; i < N; i++) cr_assert_float_eq(o.state[i], 0.1f, 0.0f);

    float p[N];
    memcpy(p, p0, sizeof p);
    optim_step(&o, p, g1, 1.0f);
    double want[N], acc[N];
    for (int i = 0; i < N; i++) {
        acc[i] = 0.1 + (double)g1[i] * g1[i];
        want[i] = p0[i] - lr * g1[i] / sqrt(acc[i]);
    }
    assert_close(p, want, N, 1e-6, "adagrad p after 1 step");
    assert_close(o.state, acc, N, 1e-6, "adagrad acc after 1 step");
    /* p[3] had g = 0: untouched */
    cr_assert(p[3] == p0[3]);

    optim_step(&o, p, g2, 1.0f);
    for (int i = 0; i < N; i++) {
        acc[i] += (double)g2[i] * g2[i];
        want[i] -= lr * g2[i] / sqrt(acc[i]);
    }
    assert_close(p, want, N, 1e-6, "adagrad p after 2 steps");
    assert_close(o.state, acc, N, 1e-6, "adagrad acc after 2 steps");
    optim_free(&o);
}

Test(optim, adam_two_steps_with_bias_correction)
{
    mn_err err = {{0}};
    optim o;
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    cr_assert_eq(optim_init(&o, OPTIM_ADAM, (float)lr, N, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(o.n_state, 2 * N);
    for (int i = 0; i < 2 * N; i++) cr_assert(o.state[i] == 0.0f);

    float p[N];
    memcpy(p, p0, sizeof p);
    double want[N], m[N] = {0}, v[N] = {0};
    const float *gs[2] = {g1, g2};
    for (int t = 1; t <= 2; t++) {
        const float *g = gs[t - 1];
        optim_step(&o, p, g, 1.0f);
        double lr_t = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
        for (int i = 0; i < N; i++) {
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            want[i] = (t == 1 ? p0[i] : want[i]) -
                      lr_t * m[i] / (sqrt(v[i]) + eps);
        }
        cr_assert_eq(o.t, (uint64_t)t);
        assert_close(p, want, N, 1e-5, t == 1 ? "adam p, t=1" : "adam p, t=2");
        assert_close(o.state, m, N, 1e-5, "adam m");
        assert_close(o.state + N, v, N, 1e-4, "adam v");
    }
    /* bias correction makes the first step ~lr * sign(g) */
    optim o2;
    cr_assert_eq(optim_init(&o2, OPTIM_ADAM, (float)lr, N, &err), 0);
    memcpy(p, p0, sizeof p);
    optim_step(&o2, p, g1, 1.0f);
    for (int i = 0; i < 3; i++)
        cr_assert(fabs((p0[i] - p[i]) - lr * (g1[i] > 0 ? 1 : -1)) < 1e-6,
                  "first Adam step of p[%d] is %g", i, p0[i] - p[i]);
    optim_free(&o2);
    optim_free(&o);
}

Test(optim, clip_scales_to_exactly_clip_when_above)
{
    float g[3] = {3.0f, 4.0f, 0.0f};
    double norm = clip_in_place(g, 3, 1.0f);
    cr_assert_float_eq(norm, 5.0, 1e-9);
    cr_assert_float_eq(g[0], 0.6f, 1e-7);
    cr_assert_float_eq(g[1], 0.8f, 1e-7);
    cr_assert(g[2] == 0.0f);
    double after = sqrt((double)g[0] * g[0] + (double)g[1] * g[1]);
    cr_assert(fabs(after - 1.0) < 1e-6, "norm after clipping %.9g", after);

    /* a large vector: the norm returned and the direction kept */
    float big[1000], orig[1000];
    double ss = 0.0;
    for (int i = 0; i < 1000; i++) {
        orig[i] = big[i] = (float)(i % 7) - 3.0f;
        ss += (double)big[i] * big[i];
    }
    norm = clip_in_place(big, 1000, 5.0f);
    cr_assert(fabs(norm - sqrt(ss)) < 1e-6 * sqrt(ss), "norm %g", norm);
    ss = 0.0;
    for (int i = 0; i < 1000; i++) {
        ss += (double)big[i] * big[i];
        cr_assert(fabs(big[i] - orig[i] * 5.0 / norm) < 1e-6, "big[%d]", i);
    }
    cr_assert(fabs(sqrt(ss) - 5.0) < 1e-5, "clipped norm %.9g", sqrt(ss));
}

Test(optim, clip_leaves_small_gradients_untouched)
{
    float g[3] = {3.0f, 4.0f, 0.0f}, orig[3];
    memcpy(orig, g, sizeof g);
    cr_assert_float_eq(clip_in_place(g, 3, 10.0f), 5.0, 1e-9);
    cr_assert(memcmp(g, orig, sizeof g) == 0, "below the clip: changed");
    cr_assert_float_eq(clip_in_place(g, 3, 5.0f), 5.0, 1e-9);
    cr_assert(memcmp(g, orig, sizeof g) == 0, "at the clip: changed");
}

Test(optim, clip_zero_is_off)
{
    float g[2] = {300.0f, -400.0f}, orig[2];
    memcpy(orig, g, sizeof g);
    cr_assert_float_eq(clip_in_place(g, 2, 0.0f), 500.0, 1e-9);
    cr_assert(memcmp(g, orig, sizeof g) == 0, "clip 0 changed the gradient");
    float z[2] = {0.0f, 0.0f};
    cr_assert_float_eq(clip_in_place(z, 2, 1.0f), 0.0, 0.0);
    cr_assert(z[0] == 0.0f && z[1] == 0.0f);
}

Test(optim, parse_names)
{
    optim_kind k = (optim_kind)99;
    cr_assert_eq(optim_parse("sgd", &k), 0);
    cr_assert_eq(k, OPTIM_SGD);
    cr_assert_eq(optim_parse("adagrad", &k), 0);
    cr_assert_eq(k, OPTIM_ADAGRAD);
    cr_assert_eq(optim_parse("adam", &k), 0);
    cr_assert_eq(k, OPTIM_ADAM);
    const char *bad[] = {"", "Adam", "ADAGRAD", "rmsprop", "adam ", "sg"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        k = OPTIM_ADAM;
        cr_assert_eq(optim_parse(bad[i], &k), -1, "accepted \"%s\"", bad[i]);
    }
    for (int i = OPTIM_SGD; i <= OPTIM_ADAM; i++) {
        cr_assert_eq(optim_parse(optim_name((optim_kind)i), &k), 0);
        cr_assert_eq(k, (optim_kind)i);
    }
    cr_assert_str_eq(optim_name((optim_kind)7), "unknown");
    cr_assert_eq(optim_state_count(OPTIM_SGD, 10), 0);
    cr_assert_eq(optim_state_count(OPTIM_ADAGRAD, 10), 10);
    cr_assert_eq(optim_state_count(OPTIM_ADAM, 10), 20);
}

Test(optim, init_rejects_unknown_kind)
{
    mn_err err = {{0}};
    optim o;
    cr_assert_eq(optim_init(&o, (optim_kind)5, 0.1f, 3, &err), -1);
    cr_assert(err.msg[0] != '\0');
    optim_free(&o);
}

/* The clip factor applied inside the step gives exactly what clipping the
 * gradients first and stepping with factor 1 gives, for every optimizer. */
Test(optim, scaled_step_equals_clip_then_step)
{
    for (int k = 0; k < 3; k++) {
        float p1[4] = {0.5f, -1.0f, 2.0f, 0.0f}, p2[4];
        float g[4] = {3.0f, -4.0f, 12.0f, 0.5f}, gc[4];
        memcpy(p2, p1, sizeof p1);
        optim o1, o2;
        cr_assert_eq(optim_init(&o1, (optim_kind)k, 0.1f, 4, NULL), 0);
        cr_assert_eq(optim_init(&o2, (optim_kind)k, 0.1f, 4, NULL), 0);
        for (int step = 0; step < 3; step++) {
            memcpy(gc, g, sizeof g);
            double norm = clip_in_place(gc, 4, 2.0f);
            optim_step(&o1, p1, g, optim_clip_factor(norm, 2.0f));
            optim_step(&o2, p2, gc, 1.0f);
        }
        for (int i = 0; i < 4; i++)
            cr_assert(p1[i] == p2[i], "%s p[%d]: %.9g vs %.9g",
                      optim_name((optim_kind)k), i, p1[i], p2[i]);
        optim_free(&o1);
        optim_free(&o2);
    }
}
