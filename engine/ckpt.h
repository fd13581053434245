/* ckpt.h: the checkpoint format, encoded to and decoded from memory so that
 * the store can keep it as a BLOB.
 *
 * Layout (version 2, little-endian), 100 + 16 * n_layers header bytes:
 *   magic "MNCK" | u32 version | u32 kind (model_kind.id) | u32 n_in |
 *   u32 n_out | f32 dropout | u32 optimizer | f32 lr | u64 step |
 *   u64 optimizer t | u64 rng[4] | u64 n_params | u64 n_state |
 *   u32 n_layers | n_layers x {u32 type, u32 size, u32 kernel, u32 stride}
 *   (model_layer) | f32 params[n_params] | f32 state[n_state] |
 *   u32 crc32 of all before. A cnn (kind 2) is written in the same
 *   version: its convolutions' padding is in the layer type
 *   (MODEL_LAYER_CONV or MODEL_LAYER_CONV_SAME), its pools are layers of
 *   their own, so no field was added.
 * Version 1 (mlp only; still decoded, never written), 128 header bytes:
 *   magic | u32 version | u32 n_in | u32 n_out | u32 n_hidden |
 *   u32 hidden[8] | f32 dropout | u32 optimizer | f32 lr | u64 step |
 *   u64 optimizer t | u64 rng[4] | u64 n_params | u64 n_state | params |
 *   state | crc32.
 * A truncated, corrupted or other-version buffer is an error, never a crash.
 *
 * Ownership: ckpt_encode returns a malloc'd buffer the caller frees;
 * ckpt_decode returns a new model (caller frees with model_free) and, when
 * asked, fills a new optim (caller frees with optim_free). */
#ifndef MN_CKPT_H
#define MN_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "optim.h"
#include "rng.h"

#define CKPT_MAGIC "MNCK"
#define CKPT_VERSION 2u /* the version written */

/* Encodes model parameters, optimizer state (o may be NULL: no state),
 * the step and the RNG state. */
int ckpt_encode(const model *m, const optim *o, uint64_t step,
                const rng_state *rng, uint8_t **buf, size_t *len,
                mn_err *err);

/* Decodes a checkpoint of version 2 or 1 (an mlp). *m_out receives a new
 * model (with a gradient block if with_grads). If o_out is non-NULL it
 * receives the optimizer with its state. step and rng may be NULL.
 * Returns 0 or -1 with a reason. */
int ckpt_decode(const uint8_t *buf, size_t len, int with_grads,
                model **m_out, optim *o_out, uint64_t *step,
                rng_state *rng, mn_err *err);

#endif
