/* fuzz_idx.c: the in-memory IDX reader (ds_parse_idx).
 *
 * Input: a 16-bit little-endian length L, then the images file (the next
 * min(L, rest) bytes), then the labels file (the remainder). Each file is
 * handed over as an exact-size copy, so a read past either end is caught.
 *
 * Promises checked: an accepted pair has sizes that match its headers
 * exactly, n >= 1, sides 1..1024, labels 0..9 and pixels and labels equal
 * to the files' data; a rejected pair has a message and leaves *out
 * empty. */
#include "engine/ds.h"
#include "tests/fuzz/fuzz.h"

static int fuzz_idx(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t img_len = (size_t)data[0] | (size_t)data[1] << 8;
    const uint8_t *rest = data + 2;
    const size_t rest_len = size - 2;
    if (img_len > rest_len) img_len = rest_len;
    const size_t lab_len = rest_len - img_len;
    uint8_t *img = fuzz_dup(rest, img_len);
    uint8_t *lab = fuzz_dup(rest + img_len, lab_len);

    ds_dataset d;
    mn_err err = {{0}};
    if (ds_parse_idx(&d, img, img_len, "fuzz-images", lab, lab_len,
                     "fuzz-labels", &err) == 0) {
        size_t per = (size_t)d.rows * d.cols;
        FUZZ_CHECK(d.n >= 1 && d.rows >= 1 && d.rows <= 1024 && d.cols >= 1 &&
                   d.cols <= 1024);
        FUZZ_CHECK(img_len == 16 + per * d.n && lab_len == 8 + (size_t)d.n);
        FUZZ_CHECK(d.pixels != NULL && d.labels != NULL);
        FUZZ_CHECK(memcmp(d.pixels, img + 16, per * d.n) == 0);
        FUZZ_CHECK(memcmp(d.labels, lab + 8, d.n) == 0);
        for (uint32_t i = 0; i < d.n; i++) FUZZ_CHECK(d.labels[i] < DS_CLASSES);
        ds_free(&d);
        FUZZ_CHECK(d.n == 0 && d.pixels == NULL && d.labels == NULL);
    } else {
        FUZZ_CHECK(fuzz_msg_ok(err.msg, sizeof err.msg));
        FUZZ_CHECK(d.n == 0 && d.pixels == NULL && d.labels == NULL);
    }
    free(lab);
    free(img);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_idx(data, size);
}
#endif
