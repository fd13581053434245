/* fuzz_v2.c: the request decoders of the model servers' protocols
 * (server/http/tensor_decode.c). The input's first two bytes are the
 * Inference-Header-Content-Length (little-endian; 0: the body is all
 * JSON), the rest the body of a v2 inference request: v2_decode decodes it
 * with a batch limit of FUZZ_V2_MAX_BATCH and a full message buffer, and
 * with a limit of 1 and a 16-byte buffer. The body parsed as JSON (as
 * routes_tfs.c parses it) also goes through tfs_decode.
 *
 * Promises checked: success gives 1..limit images, exactly one of floats
 * in 0..1 or bytes (all readable), at least one output, binary outputs
 * among those asked for, and an id borrowed from the header; an error
 * gives a documented code, an empty request and a terminated message; a
 * lower limit only turns success into TENSOR_BAD; tfs_decode likewise.
 * The fast paths (v2_decode_fast, tfs_decode_fast) run on the body as
 * text: what they accept must decode to the same request through jansson. */
#include <jansson.h>

#include "engine/ds.h"
#include "server/http/tensor_decode.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_V2_MAX_BATCH 8

static void check_v2(const char *body, size_t len, size_t header_len)
{
    v2_request r;
    char msg[600];
    memset(&r, 0x5a, sizeof r); /* poisoned: must be overwritten */
    memset(msg, 'x', sizeof msg);
    int rc = v2_decode(body, len, header_len, FUZZ_V2_MAX_BATCH, &r, msg,
                       sizeof msg);
    if (rc == TENSOR_OK) {
        FUZZ_CHECK(r.n >= 1 && r.n <= FUZZ_V2_MAX_BATCH);
        FUZZ_CHECK((r.x == NULL) != (r.bytes == NULL));
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < r.n * DS_PIXELS; i++) {
            if (r.x) FUZZ_CHECK(r.x[i] >= 0.0f && r.x[i] <= 1.0f);
            else sink ^= r.bytes[i];
        }
        (void)sink;
        FUZZ_CHECK(r.outputs != 0 &&
                   (r.outputs & ~(TENSOR_OUT_PROBABILITIES |
                                  TENSOR_OUT_CLASS)) == 0);
        FUZZ_CHECK((r.binary & ~r.outputs) == 0);
        json_t *id = json_object_get(r.header, "id");
        FUZZ_CHECK(id ? r.id == json_string_value(id) : r.id == NULL);
    } else {
        FUZZ_CHECK(rc == TENSOR_BAD || rc == TENSOR_NO_MEMORY);
        FUZZ_CHECK(r.header == NULL && r.x == NULL && r.bytes == NULL &&
                   r.n == 0);
        FUZZ_CHECK(fuzz_msg_ok(msg, sizeof msg));
    }
    size_t n = r.n;
    v2_request_free(&r);

    char small[16];
    memset(small, 'x', sizeof small);
    int rc1 = v2_decode(body, len, header_len, 1, &r, small, sizeof small);
    if (rc == TENSOR_OK && n == 1) FUZZ_CHECK(rc1 == TENSOR_OK && r.n == 1);
    if (rc == TENSOR_OK && n > 1) FUZZ_CHECK(rc1 == TENSOR_BAD);
    if (rc == TENSOR_BAD) FUZZ_CHECK(rc1 == TENSOR_BAD);
    if (rc1) FUZZ_CHECK(fuzz_msg_ok(small, sizeof small));
    v2_request_free(&r);
}

static void check_tfs(const char *body, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return;
    float *x = (float *)&je; /* poisoned */
    size_t n = 12345;
    int columnar = -1;
    char msg[600];
    memset(msg, 'x', sizeof msg);
    int rc = tfs_decode(j, FUZZ_V2_MAX_BATCH, &x, &n, &columnar, msg,
                        sizeof msg);
    if (rc == TENSOR_OK) {
        FUZZ_CHECK(x != NULL && n >= 1 && n <= FUZZ_V2_MAX_BATCH);
        FUZZ_CHECK(columnar == 0 || columnar == 1);
        for (size_t i = 0; i < n * DS_PIXELS; i++)
            FUZZ_CHECK(x[i] >= 0.0f && x[i] <= 1.0f);
        free(x);
    } else {
        FUZZ_CHECK(rc == TENSOR_BAD || rc == TENSOR_NO_MEMORY);
        FUZZ_CHECK(x == NULL && n == 0);
        FUZZ_CHECK(fuzz_msg_ok(msg, sizeof msg));
    }
    json_decref(j);
}

/* The fast paths read the text (terminated, as the server's bodies are):
 * what they accept must decode to the very same request through
 * jansson. */
static void check_v2_fast(const char *body, size_t len)
{
    char *text = malloc(len + 1);
    if (!text) return;
    memcpy(text, body, len);
    text[len] = 0;
    v2_request f, s;
    char msg[600];
    if (v2_decode_fast(text, len, FUZZ_V2_MAX_BATCH, &f) == TENSOR_OK) {
        FUZZ_CHECK(v2_decode(text, len, 0, FUZZ_V2_MAX_BATCH, &s, msg,
                             sizeof msg) == TENSOR_OK);
        FUZZ_CHECK(f.n == s.n && f.x && s.x && !f.bytes && !s.bytes);
        FUZZ_CHECK(memcmp(f.x, s.x, sizeof(float) * f.n * DS_PIXELS) == 0);
        FUZZ_CHECK(f.outputs == s.outputs && f.binary == s.binary);
        FUZZ_CHECK(f.id ? s.id && strcmp(f.id, s.id) == 0 : !s.id);
        v2_request_free(&f);
        v2_request_free(&s);
    } else {
        FUZZ_CHECK(f.header == NULL && f.x == NULL);
    }
    float *fx = NULL, *sx = NULL;
    size_t fn = 0, sn = 0;
    int fc = -1, sc = -1;
    if (tfs_decode_fast(text, len, FUZZ_V2_MAX_BATCH, &fx, &fn, &fc) ==
        TENSOR_OK) {
        json_error_t je;
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        FUZZ_CHECK(j != NULL);
        FUZZ_CHECK(tfs_decode(j, FUZZ_V2_MAX_BATCH, &sx, &sn, &sc, msg,
                              sizeof msg) == TENSOR_OK);
        FUZZ_CHECK(fn == sn && fc == sc);
        FUZZ_CHECK(memcmp(fx, sx, sizeof(float) * fn * DS_PIXELS) == 0);
        json_decref(j);
    } else {
        FUZZ_CHECK(fx == NULL);
    }
    free(fx);
    free(sx);
    free(text);
}

static int fuzz_v2(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t header_len = (size_t)data[0] | (size_t)data[1] << 8;
    char *body = (char *)fuzz_dup(data + 2, size - 2);
    check_v2(body, size - 2, header_len);
    check_tfs(body, size - 2);
    check_v2_fast(body, size - 2);
    free(body);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_v2(data, size);
}
#endif
