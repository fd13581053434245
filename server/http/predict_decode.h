/* predict_decode.h: the JSON body of POST /predict turned into float
 * images. Pure: no HTTP, no store, so that routes_predict.c, the unit
 * tests and the fuzz target (tests/fuzz/fuzz_predict.c) share one decoder.
 *
 * Accepted bodies: {"run": "<id>", "pixels": [P numbers in 0..1]} or
 * {"pixels": [[P numbers], [P numbers], ...]} (a batch); `run` is optional;
 * instead of a run, a named model: "model" with an optional "version" or
 * "alias" (predict_decode_model); any other field is an error. P is
 * DS_PIXELS (28x28). */
#ifndef MN_PREDICT_DECODE_H
#define MN_PREDICT_DECODE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* predict_decode's results; each error maps to one HTTP answer. */
enum {
    PREDICT_OK = 0,
    PREDICT_BAD_FIELD,  /* 400 bad_field: not an object, unknown field,
                           run not a string, pixels missing or empty */
    PREDICT_BAD_PIXELS, /* 400 bad_pixels: too many images, or an image of
                           the wrong length, type or range */
    PREDICT_NO_MEMORY   /* 503 out_of_memory */
};

/* Decodes body (borrowed). At most max_batch images are accepted.
 * On success returns PREDICT_OK, *x is a new array [*n, DS_PIXELS] (caller
 * frees with free()), *n >= 1, and *run_id is the `run` string borrowed
 * from body (valid while body lives) or NULL when absent. On error returns
 * one of the codes above with a one-line reason in msg (naming the field
 * or image), *x = NULL, *n = 0 and *run_id = NULL. */
int predict_decode(const json_t *body, unsigned max_batch, float **x,
                   size_t *n, const char **run_id, char *msg, size_t msglen);

/* The named model of a body that predict_decode accepted (borrowed):
 * *model (NULL: none; then the run or the newest run serves), *version
 * (0: none) and *alias (NULL: none), borrowed from body. Returns
 * PREDICT_OK, or PREDICT_BAD_FIELD with the reason in msg: a field of the
 * wrong type, a version below 1, both version and alias, either without
 * model, or both run and model. */
int predict_decode_model(const json_t *body, const char **model,
                         int64_t *version, const char **alias, char *msg,
                         size_t msglen);

/* predict_decode_fast's answer when the body is not in its fast shape. */
#define PREDICT_FALLBACK (-1)

/* The fast path for the usual body, straight from its text: an object
 * with at most the keys "run" (a string of digits) and "pixels" (one image
 * or a batch), every image P JSON numbers in 0..1. Each number becomes
 * exactly what strtod and a float cast give, so the result equals
 * predict_decode's. Anything else (another shape,
 * an exponent, an error of any kind) returns PREDICT_FALLBACK, and the
 * caller decodes with jansson and predict_decode, which words the error.
 * buf[len] must be 0: the scanner stops at it instead of comparing every
 * character's position with the end (a 0 inside the text only ends the
 * fast path). On PREDICT_OK: *x is new [*n, DS_PIXELS] (free()), run_id
 * holds the run (or "" when absent). */
int predict_decode_fast(const char *buf, size_t len, unsigned max_batch,
                        float **x, size_t *n, char run_id[32]);

/* The fast path's image scanner, for the other protocols' decoders
 * (tensor_decode.c): reads one image, '[' P JSON numbers in 0..1 ']'
 * (whitespace allowed around each), at *p in a text that ends in a 0 byte
 * at or after end, into x [P] (each number exactly as strtod and a float
 * cast give it), and advances *p past it. Returns 0, or -1 when the text
 * there is not in that form (the caller then decodes with jansson). */
int predict_scan_image(const char **p, const char *end, float *x);

#endif
