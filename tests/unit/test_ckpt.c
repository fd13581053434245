/* test_ckpt.c: the checkpoint format of engine/ckpt.c: exact round trips,
 * and every truncation, single-byte corruption, wrong magic or version is
 * an error with a message, never a crash or a silent success. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "engine/ckpt.h"

typedef struct fixture {
    nn_model *m;
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
    nn_arch a = {.n_in = 5, .n_out = 2, .n_hidden = 1, .hidden = {3},
                 .dropout = 0.25f};
    memset(f, 0, sizeof *f);
    f->m = nn_model_new(&a, 1, &err);
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
    nn_model_free(f->m);
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
    cr_assert_eq(f.len, 128 + 4 * (f.m->n_params + f.o.n_state) + 4,
                 "encoded length %zu", f.len);
    cr_assert(memcmp(f.buf, CKPT_MAGIC, 4) == 0);

    mn_err err = {{0}};
    nn_model *m = NULL;
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
    nn_model_free(m);
    free_fixture(&f);
}

Test(ckpt, roundtrip_adam) { assert_roundtrip(OPTIM_ADAM); }
Test(ckpt, roundtrip_adagrad) { assert_roundtrip(OPTIM_ADAGRAD); }
Test(ckpt, roundtrip_sgd) { assert_roundtrip(OPTIM_SGD); }

Test(ckpt, roundtrip_linear_model_without_optimizer)
{
    mn_err err = {{0}};
    nn_arch a = {.n_in = 7, .n_out = 3};
    nn_model *m = nn_model_new(&a, 0, &err), *d = NULL;
    cr_assert_not_null(m);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = (float)i * 0.5f;
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ckpt_encode(m, NULL, 5, NULL, &buf, &len, &err), 0);
    cr_assert_eq(ckpt_decode(buf, len, 0, &d, NULL, NULL, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert(memcmp(d->params, m->params, 4 * m->n_params) == 0);
    cr_assert_null(d->grads, "with_grads=0 allocated gradients");
    nn_model_free(d);
    free(buf);
    nn_model_free(m);
}

Test(ckpt, decode_without_optimizer_output)
{
    fixture f;
    make_fixture(&f, OPTIM_ADAM);
    mn_err err = {{0}};
    nn_model *m = NULL;
    cr_assert_eq(ckpt_decode(f.buf, f.len, 0, &m, NULL, NULL, NULL, &err), 0,
                 "%s", err.msg);
    cr_assert_not_null(m);
    cr_assert(memcmp(m->params, f.m->params, 4 * m->n_params) == 0);
    nn_model_free(m);
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
        nn_model *m = (nn_model *)&err; /* must be overwritten */
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
    nn_model *m = NULL;
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
            nn_model *m = NULL;
            optim o = {0};
            int rc = ckpt_decode(bad, f.len, 1, &m, &o, NULL, NULL, &err);
            if (rc == 0) {
                silent++;
                cr_log_error("byte %zu ^ 0x%02x decoded silently", pos,
                             flips[k]);
                optim_free(&o);
                nn_model_free(m);
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
    nn_model *m = NULL;
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
    nn_model *m = NULL;
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
        {16, 9, "n_hidden beyond the maximum"},
        {8, 6, "n_in that does not match n_params"},
        {20 + 4 * NN_MAX_HIDDEN + 4, 9, "unknown optimizer"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        uint8_t *b = malloc(f.len);
        memcpy(b, f.buf, f.len);
        b[edits[i].off] = edits[i].val;
        refresh_crc(b, f.len);
        mn_err err = {{0}};
        nn_model *m = NULL;
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
