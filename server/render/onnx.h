/* onnx.h: a model as an ONNX file, so that other runtimes (onnxruntime,
 * anything that reads ONNX) can serve what mnistd trained.
 *
 * The file is an ONNX ModelProto (IR version ONNX_IR_VERSION, default
 * domain opset ONNX_OPSET) written with protobuf-c from the onnx.proto of
 * Debian's libonnx-dev (build/gen/onnx.pb-c.*, generated at build time).
 * Its graph:
 *   input   pixels         float [N, n_in]  (n_in = 784), values in 0..1
 *   output  probabilities  float [N, n_out] (n_out = 10), the softmax
 *   output  class          int64 [N], the most probable class (the first
 *                          of equal ones, as /predict)
 * where N is a free dimension. The model's weights are initializers
 * (copied into the file; the model is only read).
 *
 * The graph is built per layer through the engine's model interface: each
 * layer type of the architecture (model_layer_type) has an emitter that
 * appends its ONNX operators, and the implied output layer and softmax
 * close it (Gemm, Softmax, ArgMax):
 *   dense        Gemm(x, W [n_in, n_out], b), then Relu when hidden
 *   convolution  (the first one: Reshape of pixels to [N, 1, side, side],
 *                side * side = n_in) Conv(x, W [OC, C, K, K], b [OC]),
 *                stride 1, explicit pads [top, left, bottom, right] for
 *                "valid" (0) or "same" (an even kernel's extra row and
 *                column below and right, as the engine pads), then Relu
 *   pool         MaxPool, kernel and stride P, floor rounding
 *   (the first dense layer after a convolution: Flatten, axis 1, NCHW in
 *   memory order, as the engine flattens its last map)
 * A layer type without an emitter is an error naming it; every type the
 * engine has today exports. */
#ifndef MN_ONNX_H
#define MN_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"
#include "engine/model.h"

/* The operator set the graph is written against (ONNX 1.8, which Debian's
 * python3-onnx 1.12 checks and every onnxruntime since 1.6 runs), and the
 * IR version that goes with it. */
#define ONNX_OPSET 13
#define ONNX_IR_VERSION 7

/* Serialises model m (borrowed, only read) as an ONNX file into *out
 * (new, malloc'd; the caller frees it) of *len bytes. doc (may be NULL)
 * becomes the model's doc_string, e.g. "mnistd run 7: dnn [100, 100]".
 * Returns 0, or -1 with a reason (a layer type that has no ONNX export,
 * out of memory); *out is NULL and *len 0 then. */
int onnx_export(const model *m, const char *doc, uint8_t **out, size_t *len,
                mn_err *err);

#endif
