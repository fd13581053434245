/* predict_decode.c: the JSON body of POST /predict (see predict_decode.h). */
#include "predict_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"

/* Copies one JSON image (an array of P numbers in 0..1) into x. Returns 0,
 * or -1 with a message naming the image and the problem. */
static int json_image(const json_t *img, size_t which, int batch, float *x,
                      int P, char *msg, size_t msglen)
{
    char where[48] = "pixels";
    if (batch) snprintf(where, sizeof where, "pixels[%zu]", which);
    if (!json_is_array(img)) {
        snprintf(msg, msglen, "%s must be an array of %d numbers", where, P);
        return -1;
    }
    if (json_array_size(img) != (size_t)P) {
        snprintf(msg, msglen, "%s has %zu values; an image has %d (28x28)",
                 where, json_array_size(img), P);
        return -1;
    }
    for (int j = 0; j < P; j++) {
        json_t *v = json_array_get(img, (size_t)j);
        if (!json_is_number(v)) {
            snprintf(msg, msglen, "%s[%d] is not a number", where, j);
            return -1;
        }
        double f = json_number_value(v);
        if (!(f >= 0.0 && f <= 1.0)) {
            snprintf(msg, msglen, "%s[%d] = %g is outside 0..1", where, j, f);
            return -1;
        }
        x[j] = (float)f;
    }
    return 0;
}

int predict_decode(const json_t *body, unsigned max_batch, float **x,
                   size_t *n, const char **run_id, char *msg, size_t msglen)
{
    const int P = DS_PIXELS;
    const char *key;
    json_t *v;
    float *buf = NULL;

    *x = NULL;
    *n = 0;
    *run_id = NULL;
    if (!json_is_object(body)) {
        snprintf(msg, msglen, "body must be a JSON object");
        return PREDICT_BAD_FIELD;
    }
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "run") && strcmp(key, "pixels")) {
            snprintf(msg, msglen, "unknown field '%s'", key);
            return PREDICT_BAD_FIELD;
        }
    }
    json_t *jr = json_object_get(body, "run");
    if (jr && !json_is_string(jr)) {
        snprintf(msg, msglen, "run must be a run id string");
        return PREDICT_BAD_FIELD;
    }
    const json_t *pixels = json_object_get(body, "pixels");
    if (!pixels || !json_is_array(pixels) || json_array_size(pixels) == 0) {
        snprintf(msg, msglen, "pixels is required: an array of %d numbers in "
                 "0..1, or an array of such arrays", P);
        return PREDICT_BAD_FIELD;
    }
    int batch = json_is_array(json_array_get(pixels, 0));
    size_t count = batch ? json_array_size(pixels) : 1;
    if (count > max_batch) {
        snprintf(msg, msglen, "%zu images in one request; the limit is %u",
                 count, max_batch);
        return PREDICT_BAD_PIXELS;
    }
    buf = malloc(sizeof(float) * count * (size_t)P);
    if (!buf) {
        snprintf(msg, msglen, "no memory for %zu images", count);
        return PREDICT_NO_MEMORY;
    }
    for (size_t i = 0; i < count; i++) {
        const json_t *img = batch ? json_array_get(pixels, i) : pixels;
        if (json_image(img, i, batch, buf + i * P, P, msg, msglen)) {
            free(buf);
            return PREDICT_BAD_PIXELS;
        }
    }
    *x = buf;
    *n = count;
    *run_id = jr ? json_string_value(jr) : NULL;
    return PREDICT_OK;
}
