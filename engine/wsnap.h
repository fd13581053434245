/* wsnap.h: weight snapshots: a model's first-layer weights at one period,
 * quantised to 8 bits, so that a run can keep them at many periods and
 * show the filters sharpen as it trains.
 *
 * What is kept: layer 0 as model_layer_weights gives it (linear: the
 * weight matrix; dnn: the first dense layer; cnn: the first convolution's
 * filters), one tile per unit (per class, per filter), plus the biases.
 *
 * Quantisation: symmetric, one scale per tile (per output channel, as
 * "per-channel symmetric" int8 quantisation is usually named):
 *   scale_u = max_i |w[i,u]| / 127,   q[u,i] = round(w[i,u] / scale_u)
 * in -127..127, read back as q[u,i] * scale_u. The worst-case error of a
 * weight is half a step, scale_u / 2 = max_i |w[i,u]| / 254 (0.39 % of the
 * tile's largest magnitude), plus float rounding (relative 2^-23). Biases
 * are kept as float32, exactly. The scheme is a pure function of the
 * weights, so a resumed run that recomputes a period gets the same bytes.
 *
 * Encoded form (wsnap_encode; the store keeps it as a BLOB), little-endian:
 *   "MNWS" | u32 version (1) | u32 units | u32 inputs | u32 tile_h |
 *   u32 tile_w | f32 scale[units] | f32 bias[units] | i8 q[units][inputs]
 * 24 + units * (8 + inputs) bytes: 79,224 for the default dnn's
 * 100 x 784, 7,944 for linear, 552 for the default cnn's 16 5x5 filters.
 *
 * How many a run keeps (wsnap_count): at most WSNAP_MAX snapshots and at
 * most WSNAP_MAX_BYTES of them, so
 *   count = min(periods, WSNAP_MAX, max(1, WSNAP_MAX_BYTES / bytes))
 * where bytes is one snapshot's encoded size (wsnap_bytes; all of a run's
 * are the same size). The default dnn (79,224 bytes) and smaller models
 * keep 100; a dnn whose first layer is 4096 wide (3,244,056 bytes) keeps
 * 10 (32.4 MB instead of 324 MB). A snapshot larger than the budget keeps
 * only the last (no spec allows one: the widest first layer is 4096 x 784).
 *
 * Which periods keep one (wsnap_keep): count of them, evenly spaced, the
 * last period always among them: period k when floor(k * count / periods)
 * steps up (every period when count == periods). A function of the period
 * count and the snapshot's size only (both fixed by the run's spec), so it
 * is the same after any resume.
 *
 * Ownership: wsnap_take and wsnap_decode fill a wsnap whose arrays are
 * owned (wsnap_free); wsnap_encode returns a malloc'd buffer. */
#ifndef MN_WSNAP_H
#define MN_WSNAP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

#define WSNAP_MAX 100            /* snapshots a run keeps at most */
#define WSNAP_MAX_BYTES (32u << 20) /* their encoded bytes at most (32 MiB) */
#define WSNAP_VERSION 1
#define WSNAP_HDR_LEN 24         /* bytes before the scales */
#define WSNAP_MAX_VALUES (1u << 26) /* units * inputs a decoder accepts */

typedef struct wsnap {
    int units;                   /* tiles: dense units or conv filters */
    int inputs;                  /* weights per unit */
    int tile_h, tile_w;          /* a tile's shape (model_filters): 1 x
                                    inputs for a dense layer, K x K for a
                                    convolution; inputs % (h * w) == 0 */
    float *scale;                /* [units], >= 0, owned */
    float *bias;                 /* [units], owned */
    int8_t *q;                   /* [units, inputs], owned */
} wsnap;

/* The encoded size in bytes of a snapshot of `units` tiles of `inputs`
 * weights: WSNAP_HDR_LEN + units * (8 + inputs) (format above). */
size_t wsnap_bytes(uint32_t units, uint32_t inputs);

/* The encoded size of m's snapshot (its layer 0, as wsnap_take takes it),
 * without taking it. */
size_t wsnap_model_bytes(const model *m);

/* How many snapshots a run of `periods` periods keeps when one is `bytes`
 * long (rule above): 0 for no periods, else 1..min(periods, WSNAP_MAX). */
uint32_t wsnap_count(uint32_t periods, size_t bytes);

/* 1 when period (1-based) of a run of `periods` periods whose snapshots
 * are `bytes` long keeps one (rule above), else 0; 0 for period 0 or
 * period > periods. */
int wsnap_keep(uint32_t period, uint32_t periods, size_t bytes);

/* Quantises m's layer-0 weights into *out (zeroed first). -1 with a
 * reason when a weight is not finite or memory runs out. */
int wsnap_take(const model *m, wsnap *out, mn_err *err);

/* Weight i of unit u, dequantised: q[u,i] * scale[u]. */
static inline float wsnap_value(const wsnap *s, int u, int i)
{
    return (float)s->q[(size_t)u * (size_t)s->inputs + (size_t)i] *
           s->scale[u];
}

/* The encoded form (format above) in a new buffer *buf of *len bytes. */
int wsnap_encode(const wsnap *s, uint8_t **buf, size_t *len, mn_err *err);

/* Decodes buf[0..len) into *out (zeroed first). A truncated, oversized or
 * inconsistent buffer (bad magic or version, a length that does not match
 * the header, a scale outside 0..FLT_MAX/127, a bias that is not finite,
 * a q of -128) is -1 with a reason, never a crash. */
int wsnap_decode(const uint8_t *buf, size_t len, wsnap *out, mn_err *err);

/* Frees the arrays and zeroes *s; NULL and a zeroed wsnap are no-ops. */
void wsnap_free(wsnap *s);

#endif
