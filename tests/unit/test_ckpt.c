/* test_ckpt.c: the checkpoint format of engine/ckpt.c: exact round trips,
 * and every truncation, single-byte corruption, wrong magic or version is
 * an error with a message, never a crash or a silent success. Version-1
 * checkpoints committed under tests/fixtures/ (written by the version-1
 * encoder) still decode into the same model and state. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "engine/ckpt.h"
#include "engine/mlp.h"
#include "tests/fixtures/ckpt_v1_expected.h"

typedef struct fixture {
    model *m;
    optim o;
    rng_state rng;
    uint8_t *buf;
    size_t len;
} fixture;

/* A small dnn (5 -> [3] -> 2, dropout 0.25) with random parameters and an
 * optimizer of the given kind with random state, encoded at step 123. */
static void make_fixture(fixture *f, optim_kind kind)
{
    mn_err err = {{0}};
    model_arch a = {.n_in = 5, .n_out = 2};
    mlp_arch(&a, 1, (const int[]){3}, 0.25f);
    memset(f, 0, sizeof *f);
    f->m = model_new(&a, 1, &err);
    cr_assert_not_null(f->m, "%s", err.msg);
    rng_seed(&f->rng, 2024);
    for (size_t i = 0; i < f->m->n_params; i++)
        f->m->params[i] = rng_uniform(&f->rng) - 0.5f;
    cr_assert_eq(optim_init(&f->o, kind, 0.125f, f->m->n_params, &err), 0,
                 "%s", err.msg);
    for (size_t i = 0; i < f->o.n_state; i++)
        f->o.state[i] = rng_uniform(&f->rng);
    f->o.t = 77;
    cr_assert_eq(ckpt_encode(f->m, &f->o, 123, &f->rng, &f->buf, &f->len,
                             &err), 0, "%s", err.msg);
}

static void free_fixture(fixture *f)
{
    free(f->buf);
    optim_free(&f->o);
    model_free(f->m);
}

/* Rewrites the trailing CRC after a deliberate edit, so that only the
 * edit itself can make decoding fail. */
static void refresh_crc(uint8_t *buf, size_t len)
{
    uint32_t c = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void assert_roundtrip(optim_kind kind)
{
    fixture f;
    make_fixture(&f, kind);
    /* version 2's header: 100 bytes and 16 for the one hidden layer */
    cr_assert_eq(f.len, 116 + 4 * (f.m->n_params + f.o.n_state) + 4,
                 "encoded length %zu", f.len);
    cr_assert(memcmp(f.buf, CKPT_MAGIC, 4) == 0);

    mn_err err = {{0}};
    model *m = NULL;
    optim o;
    uint64_t step = 0;
    rng_state r = {{0}};
    cr_assert_eq(ckpt_decode(f.buf, f.len, 1, &m, &o, &step, &r, &err), 0,
                 "%s", err.msg);
    cr_assert_not_null(m);
    cr_assert(memcmp(&m->arch, &f.m->arch, sizeof m->arch) == 0,
              "architecture differs");
    cr_assert_eq(m->n_params, f.m->n_params);
    cr_assert(memcmp(m->params, f.m->params, 4 * m->n_params) == 0,
              "parameters differ");
    cr_assert_not_null(m->grads, "with_grads=1 gave no gradient block");
    cr_assert_eq(o.kind, kind);
    cr_assert_float_eq(o.lr, 0.125f, 0.0f);
    cr_assert_eq(o.n, f.o.n);
    cr_assert_eq(o.n_state, f.o.n_state);
    cr_assert_eq(o.t, 77);
    if (o.n_state)
        cr_assert(memcmp(o.state, f.o.state, 4 * o.n_state) == 0,
                  "optimizer state differs");
    cr_assert_eq(step, 123);
    cr_assert(memcmp(&r, &f.rng, sizeof r) == 0, "rng state differs");
    /* the restored stream continues where the saved one would */
    cr_assert_eq(rng_next(&r), rng_next(&f.rng));

    /* re-encoding the decoded state gives the same bytes */
    uint8_t *buf2 = NULL;
    size_t len2 = 0;
    cr_assert_eq(ckpt_encode(m, &o, step, &r, &buf2, &len2, &err), 0);
    /* (r advanced by one draw above; so did f.rng: encode f again) */
    free(f.buf);
    cr_assert_eq(ckpt_encode(f.m, &f.o, 123, &f.rng, &f.buf, &f.len, &err), 0);
    cr_assert_eq(len2, f.len);
    cr_assert(memcmp(buf2, f.buf, f.len) == 0, "re-encoding differs");
    free(buf2);
    optim_free(&o);
    model_free(m);
    free_fixture(&f);
}

Test(ckpt, roundtrip_adam) { assert_roundtrip(OPTIM_ADAM); }
Test(ckpt, roundtrip_adagrad) { assert_roundtrip(OPTIM_ADAGRAD); }
Test(ckpt, roundtrip_sgd) { assert_roundtrip(OPTIM_SGD); }

Test(ckpt, roundtrip_linear_model_without_optimizer)
{
    mn_err err = {{0}};
    model_arch a = {.n_in = 7, .n_out = 3};
    mlp_arch(&a, 0, NULL, 0.0f);
    model *m = model_new(&a, 0, &err), *d = NULL;
    cr_assert_not_null(m);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = (float)i * 0.5f;
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ckpt_encode(m, NULL, 5, NULL, &buf, &len, &err), 0);
    cr_assert_eq(ckpt_decode(buf, len, 0, &d, NULL, NULL, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert(memcmp(d->params, m->params, 4 * m->n_params) == 0);
    cr_assert_null(d->grads, "with_grads=0 allocated gradients");
    model_free(d);
    free(buf);
    model_free(m);
}

Test(ckpt, decode_without_optimizer_output)
{
    fixture f;
    make_fixture(&f, OPTIM_ADAM);
    mn_err err = {{0}};
    model *m = NULL;
    cr_assert_eq(ckpt_decode(f.buf, f.len, 0, &m, NULL, NULL, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_not_null(m);
    cr_assert(memcmp(m->params, f.m->params, 4 * m->n_params) == 0);
    model_free(m);
    free_fixture(&f);
}

Test(ckpt, every_truncation_is_an_error)
{
    fixture f;
    make_fixture(&f, OPTIM_ADAM);
    for (size_t len = 0; len < f.len; len++) {
        /* an exact-size copy, so that ASan sees any read past the end */
        uint8_t *cut = malloc(len ? len : 1);
        cr_assert_not_null(cut);
        memcpy(cut, f.buf, len);
        mn_err err = {{0}};
        model *m = (model *)&err; /* must be overwritten */
        optim o = {0};
        int rc = ckpt_decode(cut, len, 1, &m, &o, NULL, NULL, &err);
        cr_assert_eq(rc, -1, "a checkpoint cut to %zu of %zu bytes decoded",
                     len, f.len);
        cr_assert_null(m, "failed decode left a model (length %zu)", len);
        cr_assert(err.msg[0] != '\0', "no message for length %zu", len);
        free(cut);
    }
    /* one byte too many is an error too */
    uint8_t *pad = calloc(f.len + 1, 1);
    memcpy(pad, f.buf, f.len);
    mn_err err = {{0}};
    model *m = NULL;
    cr_assert_eq(ckpt_decode(pad, f.len + 1, 1, &m, NULL, NULL, NULL, &err),
                 -1);
    cr_assert_null(m);
    free(pad);
    free_fixture(&f);
}

Test(ckpt, every_single_byte_corruption_is_an_error)
{
    fixture f;
    make_fixture(&f, OPTIM_ADAM);
    uint8_t *bad = malloc(f.len);
    cr_assert_not_null(bad);
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    size_t silent = 0;
    for (size_t pos = 0; pos < f.len; pos++)
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(bad, f.buf, f.len);
            bad[pos] ^= flips[k];
            mn_err err = {{0}};
            model *m = NULL;
            optim o = {0};
            int rc = ckpt_decode(bad, f.len, 1, &m, &o, NULL, NULL, &err);
            if (rc == 0) {
                silent++;
                cr_log_error("byte %zu ^ 0x%02x decoded silently", pos,
                             flips[k]);
                optim_free(&o);
                model_free(m);
                continue;
            }
            cr_assert_null(m);
            cr_assert(err.msg[0] != '\0', "no message for byte %zu", pos);
        }
    cr_assert_eq(silent, 0, "%zu corruptions went unnoticed", silent);
    free(bad);
    free_fixture(&f);
}

Test(ckpt, wrong_magic_is_an_error)
{
    fixture f;
    make_fixture(&f, OPTIM_SGD);
    memcpy(f.buf, "MNCX", 4);
    refresh_crc(f.buf, f.len);
    mn_err err = {{0}};
    model *m = NULL;
    cr_assert_eq(ckpt_decode(f.buf, f.len, 1, &m, NULL, NULL, NULL, &err), -1);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "magic"), "message: %s", err.msg);
    free_fixture(&f);
}

Test(ckpt, other_version_is_an_error)
{
    fixture f;
    make_fixture(&f, OPTIM_SGD);
    f.buf[4] = (uint8_t)(CKPT_VERSION + 1);
    refresh_crc(f.buf, f.len);
    mn_err err = {{0}};
    model *m = NULL;
    cr_assert_eq(ckpt_decode(f.buf, f.len, 1, &m, NULL, NULL, NULL, &err), -1);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "version 2"), "message: %s", err.msg);
    free_fixture(&f);
}

Test(ckpt, inconsistent_header_is_an_error_even_with_valid_crc)
{
    fixture f;
    make_fixture(&f, OPTIM_ADAM);
    struct {
        size_t off;
        uint8_t val;
        const char *why;
    } edits[] = {
        /* offsets in the version-2 layout (ckpt.h) */
        {96, 9, "n_hidden beyond the maximum"},
        {12, 6, "n_in that does not match n_params"},
        {24, 9, "unknown optimizer"},
        {8, 9, "unknown model kind"},
        {100, 2, "a conv layer in an mlp"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        uint8_t *b = malloc(f.len);
        memcpy(b, f.buf, f.len);
        b[edits[i].off] = edits[i].val;
        refresh_crc(b, f.len);
        mn_err err = {{0}};
        model *m = NULL;
        optim o = {0};
        cr_assert_eq(ckpt_decode(b, f.len, 1, &m, &o, NULL, NULL, &err), -1,
                     "%s decoded", edits[i].why);
        cr_assert_null(m);
        cr_assert(strstr(err.msg, "checkpoint"), "%s: %s", edits[i].why,
                  err.msg);
        free(b);
    }
    free_fixture(&f);
}

/* Reads a file (relative to the repository root, where the tests run) into
 * a new exact-size buffer (caller frees). */
static uint8_t *read_fixture(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert(n > 0, "cannot size %s", path);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "cannot read %s", path);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The fixture's two inputs (ckpt_v1_expected.h). x: [2, 784] */
static void v1_inputs(float *x)
{
    for (int i = 0; i < 784; i++) {
        x[i] = (float)(i % 7) / 7.0f;
        x[784 + i] = (float)((i * 31) % 256) / 255.0f;
    }
}

/* Decodes a committed version-1 checkpoint and checks the architecture,
 * the state and the probabilities on the fixture's inputs. */
static void assert_v1(const char *path, int n_hidden, const int *hidden,
                      float dropout, optim_kind kind, uint64_t want_step,
                      const uint64_t want_rng[4], uint64_t want_t,
                      size_t n_params, size_t n_state,
                      const float *state_head, const float probs[2][10])
{
    size_t len = 0;
    uint8_t *buf = read_fixture(path, &len);
    cr_assert_eq(buf[4], 1, "%s is not a version-1 checkpoint", path);
    mn_err err = {{0}};
    model *m = NULL;
    optim o;
    uint64_t step = 0;
    rng_state r = {{0}};
    cr_assert_eq(ckpt_decode(buf, len, 1, &m, &o, &step, &r, &err), 0,
                 "%s: %s", path, err.msg);
    model_arch want = {.n_in = 784, .n_out = 10};
    mlp_arch(&want, n_hidden, hidden, dropout);
    cr_assert(model_arch_equal(&m->arch, &want), "%s: architecture", path);
    cr_assert_eq(m->n_params, n_params);
    cr_assert_not_null(m->grads);
    cr_assert_eq(step, want_step);
    for (int i = 0; i < 4; i++) cr_assert_eq(r.s[i], want_rng[i]);
    cr_assert_eq(o.kind, kind);
    cr_assert_eq(o.t, want_t);
    cr_assert_eq(o.n_state, n_state);
    for (size_t i = 0; i < 4 && i < n_state; i++)
        cr_assert_float_eq(o.state[i], state_head[i], 0.0f);

    model_ws *ws = model_ws_new(&m->arch, 2, &err);
    cr_assert_not_null(ws, "%s", err.msg);
    float x[2 * 784];
    v1_inputs(x);
    model_forward(m, ws, x, NULL, 2, 0, NULL);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 10; k++)
            cr_assert_float_eq(ws->probs[i * 10 + k], probs[i][k], 1e-6,
                               "%s: row %d class %d: %.9g, want %.9g", path,
                               i, k, ws->probs[i * 10 + k], probs[i][k]);

    /* re-encoded, it is a version-2 checkpoint of the same model */
    uint8_t *re = NULL;
    size_t re_len = 0;
    model *m2 = NULL;
    cr_assert_eq(ckpt_encode(m, &o, step, &r, &re, &re_len, &err), 0);
    cr_assert_eq(re[4], CKPT_VERSION);
    cr_assert_eq(ckpt_decode(re, re_len, 0, &m2, NULL, NULL, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert(model_arch_equal(&m2->arch, &m->arch));
    cr_assert(memcmp(m2->params, m->params, 4 * m->n_params) == 0);
    model_free(m2);
    free(re);
    model_ws_free(ws);
    optim_free(&o);
    model_free(m);
    free(buf);
}

Test(ckpt, version_1_dnn_still_decodes)
{
    assert_v1("tests/fixtures/ckpt_v1_dnn.bin", 1, (const int[]){3}, 0.25f,
              OPTIM_ADAGRAD, CKPT_V1_DNN_STEP, ckpt_v1_dnn_rng,
              CKPT_V1_DNN_OPT_T, CKPT_V1_DNN_N_PARAMS, CKPT_V1_DNN_N_STATE,
              ckpt_v1_dnn_state_head, ckpt_v1_dnn_probs);
}

Test(ckpt, version_1_linear_still_decodes)
{
    assert_v1("tests/fixtures/ckpt_v1_linear.bin", 0, NULL, 0.0f, OPTIM_SGD,
              CKPT_V1_LINEAR_STEP, ckpt_v1_linear_rng, CKPT_V1_LINEAR_OPT_T,
              CKPT_V1_LINEAR_N_PARAMS, CKPT_V1_LINEAR_N_STATE, NULL,
              ckpt_v1_linear_probs);
}
