/* tensor_decode.h: the request bodies of the model servers' protocols
 * turned into images: the Open Inference Protocol v2 (KServe, Triton:
 * JSON tensors, and Triton's binary tensor extension) and TensorFlow
 * Serving's predict API (row and columnar formats). Pure: no HTTP, no
 * store, so that the handlers (routes_v2.c, routes_tfs.c), the unit tests
 * and the fuzz target (tests/fuzz/fuzz_v2.c) share one decoder.
 *
 * An image is P = DS_PIXELS (28x28) pixels in row-major order. */
#ifndef MN_TENSOR_DECODE_H
#define MN_TENSOR_DECODE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The decoders' results; each maps to one HTTP answer. */
enum {
    TENSOR_OK = 0,
    TENSOR_BAD,        /* 400 with the reason */
    TENSOR_NO_MEMORY   /* 503 */
};

/* The outputs a v2 request can ask for (bit flags). */
#define TENSOR_OUT_PROBABILITIES 1u  /* "probabilities", FP32 [N, 10] */
#define TENSOR_OUT_CLASS 2u          /* "class", INT64 [N] */

/* A decoded v2 inference request. The images are either x (FP32 input:
 * [n, P] floats in 0..1) or bytes (UINT8 input: [n, P] pixels 0..255);
 * the other is NULL. */
typedef struct v2_request {
    json_t *header;     /* the parsed JSON header, owned */
    const char *id;     /* the request's "id" or NULL (borrowed: header) */
    float *x;           /* owned or NULL */
    uint8_t *bytes;     /* owned or NULL */
    size_t n;           /* images, >= 1 */
    unsigned outputs;   /* TENSOR_OUT_* asked for (both when none named) */
    unsigned binary;    /* those of outputs to send as binary data */
} v2_request;

/* Decodes a v2 inference request of len bytes: with header_len 0 the
 * whole body is the JSON request; else its first header_len bytes are
 * (Inference-Header-Content-Length) and the raw tensors of the inputs
 * that give parameters.binary_data_size follow, little-endian, in input
 * order. Exactly one input: shape [N, 784], [N, 28, 28] or [N, 1, 28, 28]
 * (1 <= N <= max_batch), datatype FP32 (0..1) or UINT8 (0..255), data flat
 * or nested in row-major order (or binary). `outputs` names among
 * "probabilities" and "class", each with an optional
 * parameters.binary_data; the request's parameters.binary_data_output is
 * the default. Returns TENSOR_OK with *out filled (free with
 * v2_request_free), or TENSOR_BAD / TENSOR_NO_MEMORY with a one-line
 * reason in msg and *out empty. body is borrowed. */
int v2_decode(const char *body, size_t len, size_t header_len,
              unsigned max_batch, v2_request *out, char *msg, size_t msglen);

/* The decoders' fast paths' answer when the body is not in their form. */
#define TENSOR_FALLBACK (-1)

/* The fast path for the usual v2 request, straight from its text (JSON
 * only, body[len] must be 0): {"id": "<ASCII>", "inputs": [{"name":
 * "<ASCII>", "shape": [N, ...], "datatype": "FP32", "data": image or
 * [image, ...]}]}, "id" optional, keys in any order, images as
 * predict_scan_image reads them. On TENSOR_OK *out is what v2_decode
 * gives for the same text; anything else returns TENSOR_FALLBACK with
 * *out empty, and the caller decodes with v2_decode, which words the
 * error. */
int v2_decode_fast(const char *body, size_t len, unsigned max_batch,
                   v2_request *out);

/* Frees what v2_decode gave (the struct itself is the caller's). */
void v2_request_free(v2_request *r);

/* Decodes a TensorFlow Serving predict body (borrowed): {"instances":
 * [image, ...]} (row format) or {"inputs": [image, ...]} / {"inputs":
 * {"pixels": [image, ...]}} (columnar), never both; "signature_name" may
 * be "serving_default". An image is P numbers in 0..1, flat or nested
 * (28x28, 1x28x28), or {"pixels": image} in the row format. At most
 * max_batch images. Returns TENSOR_OK with *x a new [*n, P] array (free())
 * and *columnar 1 for the columnar format, or TENSOR_BAD /
 * TENSOR_NO_MEMORY with the reason in msg and *x NULL. */
int tfs_decode(const json_t *body, unsigned max_batch, float **x, size_t *n,
               int *columnar, char *msg, size_t msglen);

/* The fast path for the usual TensorFlow Serving body, straight from its
 * text (body[len] must be 0): {"instances": [image, ...]} or {"inputs":
 * [image, ...]}, with an optional "signature_name": "serving_default",
 * images flat as predict_scan_image reads them. On TENSOR_OK the results
 * are tfs_decode's for the same text; anything else returns
 * TENSOR_FALLBACK with *x NULL. */
int tfs_decode_fast(const char *body, size_t len, unsigned max_batch,
                    float **x, size_t *n, int *columnar);

#endif
