/* fuzz_predict.c: POST /predict JSON bodies. The input is JSON text, parsed
 * as http_body_json does (json_loadb with JSON_REJECT_DUPLICATES), then
 * decoded by predict_decode (server/http/predict_decode.c) twice: with a batch
 * limit of FUZZ_PREDICT_MAX_BATCH and a full message buffer, and with a
 * limit of 1 and a 16-byte message buffer.
 *
 * The fast decoder (predict_decode_fast) runs on the raw text too: what it
 * accepts must decode to the same images and run through jansson.
 *
 * Promises checked: success gives 1..limit images of 0..1 floats (all
 * readable) and `run` borrowed from the body, and predict_decode_model
 * then gives the model borrowed from the body with at most one of version
 * and alias, or bad_field; an error gives one of the
 * documented codes, NULL outputs and a terminated message; the second
 * decoding agrees with the first (a lower limit only turns a batch into
 * bad_pixels, a short buffer only truncates). */
#include <jansson.h>

#include "engine/ds.h"
#include "server/http/predict_decode.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_PREDICT_MAX_BATCH 8

/* The fast decoder reads the raw text: whatever it accepts must be JSON
 * that predict_decode decodes to the very same images and run. */
static void check_fast(const uint8_t *data, size_t size, const json_t *body)
{
    float *fx = NULL;
    size_t fn = 0;
    char frun[32];
    char *text = malloc(size + 1); /* terminated, as the server's bodies are */
    if (!text) return;
    memcpy(text, data, size);
    text[size] = 0;
    int rc = predict_decode_fast(text, size, FUZZ_PREDICT_MAX_BATCH, &fx, &fn,
                                 frun);
    free(text);
    if (rc != PREDICT_OK) {
        FUZZ_CHECK(fx == NULL);
        return;
    }
    FUZZ_CHECK(body != NULL); /* accepted text must be valid JSON */
    float *x = NULL;
    size_t n = 0;
    const char *run = NULL;
    char msg[200];
    FUZZ_CHECK(predict_decode(body, FUZZ_PREDICT_MAX_BATCH, &x, &n, &run, msg,
                              sizeof msg) == PREDICT_OK);
    FUZZ_CHECK(n == fn);
    FUZZ_CHECK(memcmp(x, fx, sizeof(float) * n * DS_PIXELS) == 0);
    FUZZ_CHECK(run ? strcmp(run, frun) == 0 : frun[0] == 0);
    free(x);
    free(fx);
}

static int fuzz_predict(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
                              &je);
    check_fast(data, size, body);
    if (!body) return 0;

    float *x = (float *)&je; /* poisoned: must be overwritten */
    size_t n = 12345;
    const char *run = "poison";
    char msg[600];
    memset(msg, 'x', sizeof msg);
    int rc = predict_decode(body, FUZZ_PREDICT_MAX_BATCH, &x, &n, &run, msg,
                            sizeof msg);
    if (rc == PREDICT_OK) {
        FUZZ_CHECK(x != NULL && n >= 1 && n <= FUZZ_PREDICT_MAX_BATCH);
        for (size_t i = 0; i < n * DS_PIXELS; i++)
            FUZZ_CHECK(x[i] >= 0.0f && x[i] <= 1.0f);
        json_t *jr = json_object_get(body, "run");
        FUZZ_CHECK(jr ? run == json_string_value(jr) : run == NULL);
        free(x);
        const char *model = "poison", *alias = "poison";
        int64_t version = -1;
        int mrc = predict_decode_model(body, &model, &version, &alias, msg,
                                       sizeof msg);
        if (mrc == PREDICT_OK) {
            json_t *jm = json_object_get(body, "model");
            FUZZ_CHECK(jm ? model == json_string_value(jm) : model == NULL);
            FUZZ_CHECK(version >= 0 && (model || (!version && !alias)));
            FUZZ_CHECK(!(version && alias));
        } else {
            FUZZ_CHECK(mrc == PREDICT_BAD_FIELD && fuzz_msg_ok(msg, sizeof msg));
        }
    } else {
        FUZZ_CHECK(rc == PREDICT_BAD_FIELD || rc == PREDICT_BAD_PIXELS ||
                   rc == PREDICT_NO_MEMORY);
        FUZZ_CHECK(x == NULL && n == 0 && run == NULL);
        FUZZ_CHECK(fuzz_msg_ok(msg, sizeof msg));
    }

    char small[16];
    memset(small, 'x', sizeof small);
    size_t n1 = 0;
    float *x1 = NULL;
    int rc1 = predict_decode(body, 1, &x1, &n1, &run, small, sizeof small);
    if (rc == PREDICT_OK && n == 1) FUZZ_CHECK(rc1 == PREDICT_OK && n1 == 1);
    if (rc == PREDICT_OK && n > 1) FUZZ_CHECK(rc1 == PREDICT_BAD_PIXELS);
    if (rc == PREDICT_BAD_FIELD || rc == PREDICT_BAD_PIXELS) FUZZ_CHECK(rc1 == rc);
    if (rc1 == PREDICT_OK) FUZZ_CHECK(x1 != NULL);
    else FUZZ_CHECK(x1 == NULL && fuzz_msg_ok(small, sizeof small));
    free(x1);

    json_decref(body);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_predict(data, size);
}
#endif
