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
 * decodings, and encoding it again gives back the input byte for byte
 * (except the unused hidden-width slots, which are not read, and the CRC
 * that covers them). */
#include <zlib.h>

#include "engine/ckpt.h"
#include "tests/fuzz/fuzz.h"

/* Offsets in the version-1 layout (ckpt.h). */
#define FZ_CKPT_HIDDEN 20 /* magic, version, n_in, n_out, n_hidden */
#define FZ_CKPT_AFTER_HIDDEN (FZ_CKPT_HIDDEN + 4 * NN_MAX_HIDDEN)

/* True if the encoding `re` equals the input `in` outside the unused
 * hidden slots and the CRC. */
static int ckpt_same(const uint8_t *in, size_t in_len, const uint8_t *re,
                     size_t re_len, int n_hidden)
{
    size_t used = FZ_CKPT_HIDDEN + 4 * (size_t)n_hidden;
    return in_len == re_len && memcmp(in, re, used) == 0 &&
           memcmp(in + FZ_CKPT_AFTER_HIDDEN, re + FZ_CKPT_AFTER_HIDDEN,
                  in_len - 4 - FZ_CKPT_AFTER_HIDDEN) == 0;
}

static void ckpt_one(const uint8_t *buf, size_t len)
{
    nn_model *m1 = (nn_model *)&len, *m2 = (nn_model *)&len; /* poisoned */
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
        FUZZ_CHECK(m1->n_params == nn_arch_param_count(&m1->arch));
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
        FUZZ_CHECK(ckpt_same(buf, len, re, re_len, m2->arch.n_hidden));
        free(re);
    }
    optim_free(&o);
    nn_model_free(m2);
    nn_model_free(m1);
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
