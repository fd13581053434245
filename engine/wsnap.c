/* wsnap.c: weight snapshots, 8-bit per tile (format and error bound in
 * wsnap.h). */
#include "wsnap.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t wsnap_magic[4] = {'M', 'N', 'W', 'S'};

size_t wsnap_bytes(uint32_t units, uint32_t inputs)
{
    return WSNAP_HDR_LEN + (size_t)units * (8 + (size_t)inputs);
}

size_t wsnap_model_bytes(const model *m)
{
    model_weights lw;
    model_layer_weights(m, 0, &lw);
    return wsnap_bytes((uint32_t)lw.n_out, (uint32_t)lw.n_in);
}

uint32_t wsnap_count(uint32_t periods, size_t bytes)
{
    size_t fit = bytes ? WSNAP_MAX_BYTES / bytes : WSNAP_MAX;
    uint32_t n = fit < WSNAP_MAX ? (uint32_t)fit : WSNAP_MAX;
    if (n < 1) n = 1;      /* the last period keeps one whatever its size */
    return periods < n ? periods : n;
}

int wsnap_keep(uint32_t period, uint32_t periods, size_t bytes)
{
    if (period < 1 || period > periods) return 0;
    uint32_t n = wsnap_count(periods, bytes);
    return (uint64_t)period * n / periods !=
           (uint64_t)(period - 1) * n / periods;
}

/* Allocates the three arrays of a units x inputs snapshot. 0 or -1. */
static int wsnap_alloc(wsnap *s, int units, int inputs, mn_err *err)
{
    s->units = units;
    s->inputs = inputs;
    s->scale = malloc(sizeof(float) * (size_t)units);
    s->bias = malloc(sizeof(float) * (size_t)units);
    s->q = malloc((size_t)units * (size_t)inputs);
    if (!s->scale || !s->bias || !s->q) {
        wsnap_free(s);
        return mn_errf(err, "wsnap: out of memory for %d x %d weights", units,
                       inputs);
    }
    return 0;
}

int wsnap_take(const model *m, wsnap *out, mn_err *err)
{
    memset(out, 0, sizeof *out);
    model_weights lw;
    model_layer_weights(m, 0, &lw);
    int n, h, w;
    model_filters(&m->arch, &n, &h, &w);
    if (n != lw.n_out || h < 1 || w < 1 || lw.n_in % (h * w) != 0)
        return mn_errf(err, "wsnap: the first layer's %d x %d weights are "
                       "not %d tiles of %d x %d", lw.n_in, lw.n_out, n, h, w);
    if (wsnap_alloc(out, lw.n_out, lw.n_in, err)) return -1;
    out->tile_h = h;
    out->tile_w = w;
    /* lw.w is [inputs, units]: unit u's weights are a column; both passes
     * walk it row by row (the columns' stride would miss the cache) */
    int U = lw.n_out, finite = 1;
    for (int u = 0; u < U; u++) {
        out->scale[u] = 0;   /* the unit's max |w| until the end of pass 1 */
        out->bias[u] = lw.b[u];
        finite &= isfinite(lw.b[u]) != 0;
    }
    for (int i = 0; i < lw.n_in; i++) {
        const float *row = lw.w + (size_t)i * U;
        for (int u = 0; u < U; u++) {
            float a = fabsf(row[u]);
            finite &= isfinite(a) != 0;
            if (a > out->scale[u]) out->scale[u] = a;
        }
    }
    if (!finite) {
        wsnap_free(out);
        return mn_errf(err, "wsnap: the first layer has a weight or bias "
                       "that is not finite");
    }
    for (int u = 0; u < U; u++) out->scale[u] /= 127.0f;
    for (int i = 0; i < lw.n_in; i++) {
        const float *row = lw.w + (size_t)i * U;
        for (int u = 0; u < U; u++) {
            /* |row[u] / scale| <= 127, up to rounding */
            float scale = out->scale[u];
            long r = scale > 0 ? lrintf(row[u] / scale) : 0;
            out->q[(size_t)u * lw.n_in + i] =
                (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
        }
    }
    return 0;
}

static void put_u32(uint8_t **p, uint32_t v)
{
    for (int i = 0; i < 4; i++) *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t **p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}

static uint32_t get_u32(const uint8_t **p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)(*p)[i] << (8 * i);
    *p += 4;
    return v;
}

static float get_f32(const uint8_t **p)
{
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

int wsnap_encode(const wsnap *s, uint8_t **buf, size_t *len, mn_err *err)
{
    size_t n = (size_t)s->units * (size_t)s->inputs;
    size_t total = WSNAP_HDR_LEN + 8 * (size_t)s->units + n;
    uint8_t *b = malloc(total), *p = b;
    *buf = NULL;
    *len = 0;
    if (!b) return mn_errf(err, "wsnap: out of memory for %zu bytes", total);
    memcpy(p, wsnap_magic, 4);
    p += 4;
    put_u32(&p, WSNAP_VERSION);
    put_u32(&p, (uint32_t)s->units);
    put_u32(&p, (uint32_t)s->inputs);
    put_u32(&p, (uint32_t)s->tile_h);
    put_u32(&p, (uint32_t)s->tile_w);
    for (int u = 0; u < s->units; u++) put_f32(&p, s->scale[u]);
    for (int u = 0; u < s->units; u++) put_f32(&p, s->bias[u]);
    memcpy(p, s->q, n);
    *buf = b;
    *len = total;
    return 0;
}

int wsnap_decode(const uint8_t *buf, size_t len, wsnap *out, mn_err *err)
{
    memset(out, 0, sizeof *out);
    if (!buf || len < WSNAP_HDR_LEN)
        return mn_errf(err, "wsnap: %zu bytes are shorter than the header",
                       len);
    if (memcmp(buf, wsnap_magic, 4) != 0)
        return mn_errf(err, "wsnap: not a weight snapshot (bad magic)");
    const uint8_t *p = buf + 4;
    uint32_t version = get_u32(&p), units = get_u32(&p),
             inputs = get_u32(&p), th = get_u32(&p), tw = get_u32(&p);
    if (version != WSNAP_VERSION)
        return mn_errf(err, "wsnap: format version %u, expected %d", version,
                       WSNAP_VERSION);
    if (units < 1 || inputs < 1 || th < 1 || tw < 1 ||
        (uint64_t)units * inputs > WSNAP_MAX_VALUES ||
        (uint64_t)th * tw > inputs || inputs % (th * tw) != 0)
        return mn_errf(err, "wsnap: bad shape: %u units of %u inputs in "
                       "%u x %u tiles", units, inputs, th, tw);
    uint64_t want = WSNAP_HDR_LEN + 8 * (uint64_t)units +
                    (uint64_t)units * inputs;
    if (len != want)
        return mn_errf(err, "wsnap: %zu bytes, the header says %llu", len,
                       (unsigned long long)want);
    if (wsnap_alloc(out, (int)units, (int)inputs, err)) return -1;
    out->tile_h = (int)th;
    out->tile_w = (int)tw;
    for (uint32_t u = 0; u < units; u++) {
        float s = get_f32(&p);
        /* a scale wsnap_take makes is max|w| / 127 of finite weights, so
         * every q * scale is finite too */
        if (!(s >= 0 && s <= FLT_MAX / 127)) {
            wsnap_free(out);
            return mn_errf(err, "wsnap: unit %u's scale is not a number in "
                           "0..FLT_MAX/127", u);
        }
        out->scale[u] = s;
    }
    for (uint32_t u = 0; u < units; u++) {
        float b = get_f32(&p);
        if (!isfinite(b)) {
            wsnap_free(out);
            return mn_errf(err, "wsnap: unit %u's bias is not finite", u);
        }
        out->bias[u] = b;
    }
    size_t n = (size_t)units * inputs;
    memcpy(out->q, p, n);
    for (size_t i = 0; i < n; i++)
        if (out->q[i] == -128) {
            wsnap_free(out);
            return mn_errf(err, "wsnap: weight %zu is -128, outside "
                           "-127..127", i);
        }
    return 0;
}

void wsnap_free(wsnap *s)
{
    if (!s) return;
    free(s->scale);
    free(s->bias);
    free(s->q);
    memset(s, 0, sizeof *s);
}
