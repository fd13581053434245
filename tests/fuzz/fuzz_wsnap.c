/* fuzz_wsnap.c: the weight snapshot decoder (wsnap_decode, engine/wsnap.h),
 * which reads the store's weight_snapshots blobs.
 *
 * Promises checked: a failure leaves *out zeroed with a message; a decoded
 * snapshot has a consistent shape (units, inputs >= 1, tiles that divide
 * the inputs), finite scales >= 0, finite biases and q in -127..127, so
 * that every dequantised value is finite and within scale * 127; encoding
 * it again gives back the input byte for byte. */
#include <math.h>

#include "engine/wsnap.h"
#include "tests/fuzz/fuzz.h"

static int fuzz_wsnap(const uint8_t *data, size_t size)
{
    uint8_t *buf = fuzz_dup(data, size);
    wsnap s;
    mn_err e = {{0}};
    if (wsnap_decode(buf, size, &s, &e)) {
        FUZZ_CHECK(e.msg[0] != 0);
        FUZZ_CHECK(!s.scale && !s.bias && !s.q && s.units == 0);
        free(buf);
        return 0;
    }
    FUZZ_CHECK(s.units >= 1 && s.inputs >= 1 && s.tile_h >= 1 &&
               s.tile_w >= 1 && s.inputs % (s.tile_h * s.tile_w) == 0);
    for (int u = 0; u < s.units; u++) {
        FUZZ_CHECK(isfinite(s.scale[u]) && s.scale[u] >= 0);
        FUZZ_CHECK(isfinite(s.bias[u]));
        for (int i = 0; i < s.inputs; i++) {
            float v = wsnap_value(&s, u, i);
            FUZZ_CHECK(isfinite(v) && fabsf(v) <= s.scale[u] * 127.0f);
        }
    }
    uint8_t *re = NULL;
    size_t re_len = 0;
    FUZZ_CHECK(wsnap_encode(&s, &re, &re_len, &e) == 0);
    FUZZ_CHECK(re_len == size && memcmp(re, buf, size) == 0);
    free(re);
    wsnap_free(&s);
    free(buf);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_wsnap(data, size);
}
#endif
