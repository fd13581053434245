/* test_wsnap.c: weight snapshots (engine/wsnap.c) and their table
 * (server/store/snapshots.c): which periods keep one (at most 100, evenly
 * spaced, the last always), the 8-bit quantisation within its documented
 * bound for the three model kinds, the encoded form's round trip and its
 * refusals, and the store: written in its period's transaction (a failed
 * snapshot leaves no period row), replaced when a period is redone, listed
 * and read back, gone with its run. */
#include <criterion/criterion.h>

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cnn.h"
#include "engine/mlp.h"
#include "engine/wsnap.h"
#include "server/store/snapshots.h"
#include "server/store/store.h"
#include "tests/unit/helpers.h"

/* ---------------------------------------------------------------- keep */

Test(wsnap, every_period_keeps_one_up_to_100_periods)
{
    for (uint32_t periods = 1; periods <= WSNAP_MAX; periods++)
        for (uint32_t k = 1; k <= periods; k++)
            cr_assert(wsnap_keep(k, periods), "period %u of %u", k, periods);
    cr_assert_not(wsnap_keep(0, 10));
    cr_assert_not(wsnap_keep(11, 10));
}

Test(wsnap, more_periods_keep_exactly_100_evenly_spaced_with_the_last)
{
    for (uint32_t periods = WSNAP_MAX + 1; periods <= 1000; periods++) {
        uint32_t kept = 0, prev = 0, gap_min = UINT32_MAX, gap_max = 0;
        for (uint32_t k = 1; k <= periods; k++) {
            if (!wsnap_keep(k, periods)) continue;
            uint32_t gap = k - prev;
            if (gap < gap_min) gap_min = gap;
            if (gap > gap_max) gap_max = gap;
            prev = k;
            kept++;
        }
        cr_assert_eq(kept, WSNAP_MAX, "%u periods keep %u", periods, kept);
        cr_assert_eq(prev, periods, "the last of %u periods is kept", periods);
        cr_assert_leq(gap_max - gap_min, 1, "%u periods: gaps %u..%u",
                      periods, gap_min, gap_max);
    }
    /* 1000 periods: every tenth */
    for (uint32_t k = 1; k <= 1000; k++)
        cr_assert_eq(wsnap_keep(k, 1000), k % 10 == 0, "period %u", k);
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

/* --------------------------------------------------------------- store */

static char tmp_dir[64];
static char db_path[128];

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "wsnap");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
}

static void teardown(void) { th_tmpdir_remove(tmp_dir); }

/* A store with one claimed (running) run; *id receives it. */
static store *running_run(int64_t *id)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, db_path, &err), 0, "%s", err.msg);
    cr_assert_eq(store_run_create(s, "linear", "mnist", "{}", 100, 10, id,
                                  &err), 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_claim(s, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    return s;
}

static int add(store *s, int64_t id, uint32_t k, const char *snap,
               mn_err *err)
{
    train_period p = {.period = k, .step = 10 * k, .train_log_loss = 1,
                      .validation_log_loss = 1, .validation_accuracy = 0.5,
                      .seconds = 0.1};
    return store_period_add_snapshot(s, id, &p, NULL, (const uint8_t *)"ck",
                                     2, (const uint8_t *)snap,
                                     snap ? strlen(snap) : 0, err);
}

TestSuite(snapshots, .init = setup, .fini = teardown);

Test(snapshots, written_listed_read_replaced_and_deleted_with_the_run)
{
    int64_t id;
    store *s = running_run(&id);
    mn_err err = {{0}};
    cr_assert_eq(add(s, id, 1, "one", &err), 0, "%s", err.msg);
    cr_assert_eq(add(s, id, 2, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(add(s, id, 3, "three", &err), 0, "%s", err.msg);
    cr_assert_eq(add(s, id, 3, "THREE!", &err), 0, "%s", err.msg); /* redo */
    store_snapshot_info *l;
    size_t n;
    cr_assert_eq(store_snapshot_list(s, id, &l, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert(l[0].period == 1 && l[0].step == 10 && l[0].bytes == 3);
    cr_assert(l[1].period == 3 && l[1].step == 30 && l[1].bytes == 6);
    free(l);
    uint8_t *b;
    size_t len;
    uint32_t step;
    cr_assert_eq(store_snapshot_get(s, id, 3, &b, &len, &step, &err), 0);
    cr_assert(len == 6 && memcmp(b, "THREE!", 6) == 0 && step == 30);
    free(b);
    cr_assert_eq(store_snapshot_get(s, id, 2, &b, &len, &step, &err),
                 STORE_NOT_FOUND);
    cr_assert_null(b);
    cr_assert_eq(store_snapshot_list(s, id + 1, &l, &n, &err),
                 STORE_NOT_FOUND);
    cr_assert_eq(store_run_finish(s, id, RUN_SUCCEEDED, NULL, 0, &err), 0);
    /* an ended run takes no more periods, nor snapshots */
    cr_assert_eq(add(s, id, 4, "four", &err), STORE_CONFLICT);
    cr_assert_eq(store_snapshot_list(s, id, &l, &n, &err), 0);
    cr_assert_eq(n, 2);
    free(l);
    cr_assert_eq(store_run_delete(s, id, &err), 0, "%s", err.msg);
    cr_assert_eq(store_snapshot_get(s, id, 1, &b, &len, &step, &err),
                 STORE_NOT_FOUND);
    store_close(s);
    /* nothing left behind in the table */
    sqlite3 *db;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM weight_snapshots",
                                    -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

Test(snapshots, a_snapshot_that_cannot_be_written_leaves_no_period)
{
    int64_t id;
    store *s = running_run(&id);
    mn_err err = {{0}};
    cr_assert_eq(add(s, id, 1, "one", &err), 0, "%s", err.msg);
    /* a second connection makes the snapshot's insert fail */
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TRIGGER no_snap BEFORE INSERT ON"
                              " weight_snapshots BEGIN SELECT RAISE(ABORT,"
                              " 'refused'); END", NULL, NULL, NULL),
                 SQLITE_OK);
    cr_assert_lt(add(s, id, 2, "two", &err), 0);
    cr_assert(strstr(err.msg, "refused"), "%s", err.msg);
    train_period *ps;
    size_t n;
    cr_assert_eq(store_periods_get(s, id, &ps, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1, "period 2 was rolled back with its snapshot");
    free(ps);
    store_run r;
    cr_assert_eq(store_run_get(s, id, &r, &err), 0);
    cr_assert_eq(r.period, 1);
    store_run_free(&r);
    /* without a snapshot the period goes in */
    cr_assert_eq(add(s, id, 2, NULL, &err), 0, "%s", err.msg);
    sqlite3_close(db);
    store_close(s);
}
