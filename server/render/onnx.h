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
 * appends its ONNX operators (dense: Gemm, then Relu when hidden), and the
 * implied output layer and softmax close it (Gemm, Softmax, ArgMax). A
 * layer type without an emitter is an error naming it. */
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

/* 0 when every layer of a has an ONNX export, else -1 naming the first
 * that has none (e.g. a cnn's convolutions, not exported yet). */
int onnx_exportable(const model_arch *a, mn_err *err);

/* Serialises model m (borrowed, only read) as an ONNX file into *out
 * (new, malloc'd; the caller frees it) of *len bytes. doc (may be NULL)
 * becomes the model's doc_string, e.g. "mnistd run 7: dnn [100, 100]".
 * Returns 0, or -1 with a reason (a layer type that has no ONNX export,
 * out of memory); *out is NULL and *len 0 then. */
int onnx_export(const model *m, const char *doc, uint8_t **out, size_t *len,
                mn_err *err);

#endif
