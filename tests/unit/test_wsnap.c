/* test_wsnap.c: weight snapshots (engine/wsnap.c): which periods keep one
 * (at most 100 and at most 32 MiB of them, evenly spaced, the last
 * always), the 8-bit quantisation within its documented
 * bound for the three model kinds, the encoded form's round trip and its
 * refusals. Their table (server/store/snapshots.c) is tested on both
 * backends with the store, in test_store.c. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cnn.h"
#include "engine/mlp.h"
#include "engine/wsnap.h"
#include "tests/unit/helpers.h"

/* ---------------------------------------------------------------- keep */

/* The default dnn's snapshot (100 x 784) and a 4096-wide first layer's. */
#define DNN_BYTES 79224u
#define WIDE_BYTES 3244056u

Test(wsnap, encoded_sizes)
{
    cr_assert_eq(wsnap_bytes(100, 784), DNN_BYTES);
    cr_assert_eq(wsnap_bytes(10, 784), 7944);
    cr_assert_eq(wsnap_bytes(16, 25), 552);
    cr_assert_eq(wsnap_bytes(4096, 784), WIDE_BYTES);
}

Test(wsnap, every_period_keeps_one_up_to_100_periods)
{
    for (uint32_t periods = 1; periods <= WSNAP_MAX; periods++)
        for (uint32_t k = 1; k <= periods; k++)
            cr_assert(wsnap_keep(k, periods, DNN_BYTES), "period %u of %u",
                      k, periods);
    cr_assert_not(wsnap_keep(0, 10, DNN_BYTES));
    cr_assert_not(wsnap_keep(11, 10, DNN_BYTES));
    cr_assert_eq(wsnap_count(0, DNN_BYTES), 0);
}

/* The periods of `periods` that keep a snapshot of `bytes` bytes: their
 * number, and that they are evenly spaced (gaps differ by at most one)
 * and end with the last period. */
static uint32_t check_spacing(uint32_t periods, size_t bytes)
{
    uint32_t kept = 0, prev = 0, gap_min = UINT32_MAX, gap_max = 0;
    for (uint32_t k = 1; k <= periods; k++) {
        if (!wsnap_keep(k, periods, bytes)) continue;
        uint32_t gap = k - prev;
        if (gap < gap_min) gap_min = gap;
        if (gap > gap_max) gap_max = gap;
        prev = k;
        kept++;
    }
    cr_assert_eq(kept, wsnap_count(periods, bytes), "%u periods of %zu bytes",
                 periods, bytes);
    cr_assert_eq(prev, periods, "the last of %u periods is kept", periods);
    cr_assert_leq(gap_max - gap_min, 1, "%u periods: gaps %u..%u", periods,
                  gap_min, gap_max);
    return kept;
}

Test(wsnap, more_periods_keep_exactly_100_evenly_spaced_with_the_last)
{
    for (uint32_t periods = WSNAP_MAX + 1; periods <= 1000; periods++)
        cr_assert_eq(check_spacing(periods, DNN_BYTES), WSNAP_MAX);
    /* 1000 periods: every tenth */
    for (uint32_t k = 1; k <= 1000; k++)
        cr_assert_eq(wsnap_keep(k, 1000, DNN_BYTES), k % 10 == 0,
                     "period %u", k);
}

Test(wsnap, large_snapshots_keep_fewer_within_32_mib)
{
    /* a 4096-wide first layer: 10 snapshots (32.4 MB), not 100 (324 MB) */
    cr_assert_eq(wsnap_count(1000, WIDE_BYTES), 10);
    cr_assert_eq(wsnap_count(7, WIDE_BYTES), 7);
    for (uint32_t k = 1; k <= 1000; k++)
        cr_assert_eq(wsnap_keep(k, 1000, WIDE_BYTES), k % 100 == 0,
                     "period %u", k);
    /* every size from a few bytes to past the budget, over period counts
     * below and above the bound: within both bounds, evenly spaced, the
     * last kept */
    const size_t sizes[] = {24, 552, 7944, DNN_BYTES, WSNAP_MAX_BYTES / 100,
                            WSNAP_MAX_BYTES / 100 + 1, 1u << 20, WIDE_BYTES,
                            WSNAP_MAX_BYTES / 2, WSNAP_MAX_BYTES,
                            WSNAP_MAX_BYTES + 1};
    const uint32_t counts[] = {1, 2, 9, 10, 11, 31, 32, 33, 99, 100, 101, 357,
                               1000, 4099};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t j = 0; j < sizeof counts / sizeof *counts; j++) {
            uint32_t n = check_spacing(counts[j], sizes[i]);
            cr_assert_leq(n, WSNAP_MAX);
            cr_assert_geq(n, 1);
            /* within the byte budget, except the one last snapshot that a
             * size past the budget still keeps */
            if (sizes[i] <= WSNAP_MAX_BYTES)
                cr_assert_leq((uint64_t)n * sizes[i], WSNAP_MAX_BYTES,
                              "%u x %zu bytes", n, sizes[i]);
            else
                cr_assert_eq(n, 1);
            /* as many as fit, up to the count bound */
            uint32_t want = counts[j] < WSNAP_MAX ? counts[j] : WSNAP_MAX;
            if ((uint64_t)want * sizes[i] > WSNAP_MAX_BYTES)
                want = sizes[i] > WSNAP_MAX_BYTES
                           ? 1 : (uint32_t)(WSNAP_MAX_BYTES / sizes[i]);
            cr_assert_eq(n, want, "%u periods of %zu bytes", counts[j],
                         sizes[i]);
        }
}

/* ------------------------------------------------------------ quantise */

/* A model of architecture a with parameters uniform in [-r, r),
 * from seed. */
static model *random_model(const model_arch *a, float r, uint64_t seed)
{
    mn_err err = {{0}};
    model *m = model_new(a, 0, &err);
    cr_assert_not_null(m, "%s", err.msg);
    rng_state rng;
    rng_seed(&rng, seed);
    th_fill_uniform(m->params, m->n_params, -r, r, &rng);
    return m;
}

/* Checks that s holds m's layer 0 within max|w_u| / 254 per weight, with
 * exact biases, and that each tile's largest weight maps to +-127. */
static void check_quantised(const model *m, const wsnap *s)
{
    model_weights lw;
    model_layer_weights(m, 0, &lw);
    cr_assert_eq(s->units, lw.n_out);
    cr_assert_eq(s->inputs, lw.n_in);
    for (int u = 0; u < s->units; u++) {
        float mx = 0;
        for (int i = 0; i < lw.n_in; i++) {
            float a = fabsf(lw.w[(size_t)i * lw.n_out + u]);
            if (a > mx) mx = a;
        }
        double bound = mx / 254.0 * (1 + 1e-6) + 1e-30;
        int reached = 0;
        for (int i = 0; i < lw.n_in; i++) {
            double w = lw.w[(size_t)i * lw.n_out + u];
            double d = fabs(w - wsnap_value(s, u, i));
            cr_assert_leq(d, bound, "unit %d weight %d: %g vs %g (bound %g)",
                          u, i, w, wsnap_value(s, u, i), bound);
            int q = s->q[(size_t)u * s->inputs + i];
            cr_assert(q >= -127 && q <= 127);
            reached |= q == 127 || q == -127;
        }
        cr_assert(reached || mx == 0, "unit %d: no weight at +-127", u);
        cr_assert_eq(s->bias[u], lw.b[u], "unit %d's bias", u);
    }
}

/* wsnap_model_bytes(m) is the length of s's encoded form (s taken from m):
 * what the worker decides the kept periods with before taking one. */
static void check_size(const model *m, const wsnap *s)
{
    uint8_t *buf;
    size_t len;
    mn_err err = {{0}};
    cr_assert_eq(wsnap_encode(s, &buf, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(wsnap_model_bytes(m), len);
    free(buf);
}

Test(wsnap, linear_weights_within_half_a_step_per_tile)
{
    model_arch a = {.n_in = 784, .n_out = 10};
    mlp_arch(&a, 0, NULL, 0.0f);
    model *m = random_model(&a, 0.3f, 1);
    /* one unit of very small weights: its own scale keeps its detail */
    for (int i = 0; i < 784; i++) m->params[(size_t)i * 10 + 3] *= 1e-4f;
    wsnap s;
    mn_err err = {{0}};
    cr_assert_eq(wsnap_take(m, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.tile_h, 1);
    cr_assert_eq(s.tile_w, 784);
    check_quantised(m, &s);
    check_size(m, &s);
    wsnap_free(&s);
    model_free(m);
}

Test(wsnap, dnn_first_dense_layer)
{
    model_arch a = {.n_in = 784, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){20, 7}, 0.0f);
    model *m = random_model(&a, 0.1f, 2);
    wsnap s;
    mn_err err = {{0}};
    cr_assert_eq(wsnap_take(m, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.units, 20);
    check_quantised(m, &s);
    check_size(m, &s);
    wsnap_free(&s);
    model_free(m);
}

Test(wsnap, cnn_first_convolution_filters)
{
    model_arch a = {.n_in = 784, .n_out = 10};
    cnn_conv conv[] = {{6, 5, 2, 0}};
    mn_err err = {{0}};
    cr_assert_eq(cnn_arch(&a, 1, conv, 1, (const int[]){8}, 0.0f, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(model_arch_check(&a, &err), 0, "%s", err.msg);
    model *m = random_model(&a, 0.5f, 3);
    wsnap s;
    cr_assert_eq(wsnap_take(m, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.units, 6);
    cr_assert_eq(s.inputs, 25);
    cr_assert_eq(s.tile_h, 5);
    cr_assert_eq(s.tile_w, 5);
    check_quantised(m, &s);
    check_size(m, &s);
    /* the tiles are the filters the pictures draw */
    float f[25];
    for (int u = 0; u < 6; u++) {
        model_filter(m, u, f, 1);
        for (int k = 0; k < 25; k++)
            cr_assert_leq(fabsf(f[k] - wsnap_value(&s, u, k)),
                          s.scale[u] / 2 * 1.001f);
    }
    wsnap_free(&s);
    model_free(m);
}

Test(wsnap, a_weight_that_is_not_finite_is_refused)
{
    model_arch a = {.n_in = 4, .n_out = 2};
    mlp_arch(&a, 0, NULL, 0.0f);
    model *m = random_model(&a, 1.0f, 4);
    m->params[5] = NAN;
    wsnap s;
    mn_err err = {{0}};
    cr_assert_eq(wsnap_take(m, &s, &err), -1);
    cr_assert(strstr(err.msg, "not finite"), "%s", err.msg);
    cr_assert_null(s.q);
    m->params[5] = INFINITY;
    cr_assert_eq(wsnap_take(m, &s, &err), -1);
    model_free(m);
}

/* -------------------------------------------------------------- encode */

static void encoded(uint8_t **buf, size_t *len, wsnap *s)
{
    model_arch a = {.n_in = 784, .n_out = 10};
    mlp_arch(&a, 1, (const int[]){16}, 0.0f);
    model *m = random_model(&a, 0.2f, 5);
    mn_err err = {{0}};
    cr_assert_eq(wsnap_take(m, s, &err), 0, "%s", err.msg);
    cr_assert_eq(wsnap_encode(s, buf, len, &err), 0, "%s", err.msg);
    cr_assert_eq(*len, (size_t)WSNAP_HDR_LEN + 16 * (8 + 784));
    model_free(m);
}

Test(wsnap, encode_decode_round_trip)
{
    uint8_t *buf;
    size_t len;
    wsnap s, d;
    encoded(&buf, &len, &s);
    mn_err err = {{0}};
    cr_assert_eq(wsnap_decode(buf, len, &d, &err), 0, "%s", err.msg);
    cr_assert(d.units == s.units && d.inputs == s.inputs &&
              d.tile_h == s.tile_h && d.tile_w == s.tile_w);
    cr_assert(memcmp(d.scale, s.scale, 4 * (size_t)s.units) == 0);
    cr_assert(memcmp(d.bias, s.bias, 4 * (size_t)s.units) == 0);
    cr_assert(memcmp(d.q, s.q, (size_t)s.units * s.inputs) == 0);
    wsnap_free(&d);
    wsnap_free(&s);
    free(buf);
}

Test(wsnap, decode_refuses_damaged_buffers)
{
    uint8_t *buf;
    size_t len;
    wsnap s, d;
    encoded(&buf, &len, &s);
    mn_err err = {{0}};
    /* every truncation */
    for (size_t n = 0; n < len; n += n < 64 ? 1 : 97) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        cr_assert_eq(wsnap_decode(cut, n, &d, &err), -1, "%zu bytes", n);
        cr_assert_null(d.q);
        free(cut);
    }
    uint8_t *b = malloc(len + 1);
    struct { size_t at; uint8_t v; const char *why; } bad[] = {
        {0, 'X', "magic"},
        {4, 2, "version"},
        {8, 0, "shape"},                       /* units 0 */
        {16, 5, "shape"},                      /* tile 5 x 784 */
        {WSNAP_HDR_LEN + 3, 0xff, "scale"},    /* scale 0: -NaN */
        {WSNAP_HDR_LEN + 3, 0xbf, "scale"},    /* a negative scale */
        {WSNAP_HDR_LEN + 3, 0x7e, "scale"},    /* ~1e37: q * scale overflows */
        {WSNAP_HDR_LEN + 16 * 4 + 3, 0x7f, "bias"}, /* +inf-ish exponent */
        {len - 1, 0x80, "-128"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(b, buf, len);
        b[bad[i].at] = bad[i].v;
        if (bad[i].at == WSNAP_HDR_LEN + 16 * 4 + 3)
            b[bad[i].at - 1] = 0x80;   /* exponent all ones: inf */
        cr_assert_eq(wsnap_decode(b, len, &d, &err), -1, "case %zu", i);
        cr_assert(strstr(err.msg, bad[i].why), "case %zu: %s", i, err.msg);
    }
    memcpy(b, buf, len);
    b[len] = 0;
    cr_assert_eq(wsnap_decode(b, len + 1, &d, &err), -1);
    cr_assert(strstr(err.msg, "header says"), "%s", err.msg);
    free(b);
    wsnap_free(&s);
    free(buf);
}
