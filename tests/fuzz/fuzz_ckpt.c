/* fuzz_ckpt.c: the checkpoint decoder (ckpt_decode).
 *
 * Input: a checkpoint. It is decoded as it is and, because random
 * mutations nearly always break the trailing CRC-32 (and would never get
 * past that check), once more with the CRC rewritten to match. Each buffer
 * is decoded twice: without o_out (serving: no gradients, no optimizer,
 * step and rng NULL) and with o_out (resuming: gradients, optimizer state,
 * step, rng).
 *
 * Promises checked: a failure leaves *m_out NULL with a message; a buffer
 * refused for serving is refused for resuming; a decoded model has the
 * parameter count of its architecture, its parameters are the same in both
 * decodings, and encoding it again gives back a version-2 input byte for
 * byte; a version-1 input (which is re-encoded as version 2) gives back
 * the same architecture, parameters and state when the re-encoding is
 * decoded. */
#include <zlib.h>

#include "engine/ckpt.h"
#include "tests/fuzz/fuzz.h"

/* True if the re-encoding `re` of the input `in` (decoded into m, o, step,
 * rng) says the same: the same bytes for a version-2 input; for a
 * version-1 input, one that decodes to the same model and state. */
static int ckpt_same(const uint8_t *in, size_t in_len, const uint8_t *re,
                     size_t re_len, const model *m, const optim *o,
                     uint64_t step, const rng_state *rng)
{
    if (in[4] != 1)
        return in_len == re_len && memcmp(in, re, in_len) == 0;
    model *m2 = NULL;
    optim o2;
    memset(&o2, 0, sizeof o2);
    uint64_t step2 = 0;
    rng_state rng2 = {{0}};
    mn_err e = {{0}};
    int same = ckpt_decode(re, re_len, 1, &m2, &o2, &step2, &rng2, &e) == 0 &&
               model_arch_equal(&m2->arch, &m->arch) &&
               memcmp(m2->params, m->params, m->n_params * sizeof(float)) == 0 &&
               o2.kind == o->kind && memcmp(&o2.lr, &o->lr, sizeof o->lr) == 0 &&
               o2.t == o->t &&
               o2.n_state == o->n_state &&
               (o->n_state == 0 ||
                memcmp(o2.state, o->state, o->n_state * sizeof(float)) == 0) &&
               step2 == step && memcmp(&rng2, rng, sizeof rng2) == 0;
    optim_free(&o2);
    model_free(m2);
    return same;
}

static void ckpt_one(const uint8_t *buf, size_t len)
{
    model *m1 = (model *)&len, *m2 = (model *)&len; /* poisoned */
    mn_err e1 = {{0}}, e2 = {{0}};
    int r1 = ckpt_decode(buf, len, 0, &m1, NULL, NULL, NULL, &e1);
    optim o;
    memset(&o, 0, sizeof o);
    uint64_t step = 0;
    rng_state rng = {{0}};
    int r2 = ckpt_decode(buf, len, 1, &m2, &o, &step, &rng, &e2);

    if (r1) FUZZ_CHECK(m1 == NULL && fuzz_msg_ok(e1.msg, sizeof e1.msg));
    if (r2) FUZZ_CHECK(m2 == NULL && fuzz_msg_ok(e2.msg, sizeof e2.msg));
    if (r1) FUZZ_CHECK(r2 != 0);
    if (!r1) {
        FUZZ_CHECK(m1 != NULL && m1->grads == NULL);
        FUZZ_CHECK(m1->n_params == model_param_count(&m1->arch));
        float sum = 0.0f; /* every parameter is readable */
        for (size_t i = 0; i < m1->n_params; i++) sum += m1->params[i];
        (void)sum;
    }
    if (!r2) {
        FUZZ_CHECK(m2 != NULL && m2->grads != NULL);
        FUZZ_CHECK(m2->n_params == m1->n_params);
        FUZZ_CHECK(memcmp(m1->params, m2->params,
                          m1->n_params * sizeof(float)) == 0);
        FUZZ_CHECK(o.n == m2->n_params &&
                   o.n_state == optim_state_count(o.kind, o.n));
        uint8_t *re = NULL;
        size_t re_len = 0;
        mn_err e = {{0}};
        FUZZ_CHECK(ckpt_encode(m2, &o, step, &rng, &re, &re_len, &e) == 0);
        FUZZ_CHECK(ckpt_same(buf, len, re, re_len, m2, &o, step, &rng));
        free(re);
    }
    optim_free(&o);
    model_free(m2);
    model_free(m1);
}

static int fuzz_ckpt(const uint8_t *data, size_t size)
{
    ckpt_one(data, size);
    if (size >= 4) {
        uint8_t *fixed = fuzz_dup(data, size);
        uint32_t c = (uint32_t)crc32(0L, fixed, (uInt)(size - 4));
        for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(c >> (8 * i));
        if (memcmp(fixed, data, size) != 0) ckpt_one(fixed, size);
        free(fixed);
    }
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_ckpt(data, size);
}
#endif
