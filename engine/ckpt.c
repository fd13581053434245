/* ckpt.c: checkpoint encoding and decoding (format in ckpt.h). */
#include "ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ckpt.c writes floats in host order and expects a little-endian host"
#endif

#include "mlp.h"

#define V1_MAX_HIDDEN 8
#define V1_HDR_LEN (4 + 4 * (4 + V1_MAX_HIDDEN + 3) + 8 * 8)
/* version 2: magic..n_state, n_layers, then 16 bytes a layer */
#define V2_FIXED_LEN (4 + 4 * 7 + 8 * 8 + 4)
#define V2_HDR_LEN(n_layers) (V2_FIXED_LEN + 16 * (size_t)(n_layers))

typedef struct wbuf {
    uint8_t *p;
} wbuf;

static void put_u32(wbuf *w, uint32_t v)
{
    for (int i = 0; i < 4; i++) *w->p++ = (uint8_t)(v >> (8 * i));
}

static void put_u64(wbuf *w, uint64_t v)
{
    for (int i = 0; i < 8; i++) *w->p++ = (uint8_t)(v >> (8 * i));
}

static void put_f32(wbuf *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(w, v);
}

static uint32_t get_u32(const uint8_t **p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)(*p)[i] << (8 * i);
    *p += 4;
    return v;
}

static uint64_t get_u64(const uint8_t **p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)(*p)[i] << (8 * i);
    *p += 8;
    return v;
}

static float get_f32(const uint8_t **p)
{
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

int ckpt_encode(const model *m, const optim *o, uint64_t step,
                const rng_state *rng, uint8_t **buf, size_t *len,
                mn_err *err)
{
    const model_arch *a = &m->arch;
    size_t n_state = o ? o->n_state : 0;
    size_t hdr = V2_HDR_LEN(a->n_layers);
    size_t total = hdr + 4 * (m->n_params + n_state) + 4;
    uint8_t *b = malloc(total);
    if (!b) return mn_errf(err, "out of memory encoding a checkpoint");
    wbuf w = {b};
    memcpy(w.p, CKPT_MAGIC, 4);
    w.p += 4;
    put_u32(&w, CKPT_VERSION);
    put_u32(&w, a->kind->id);
    put_u32(&w, (uint32_t)a->n_in);
    put_u32(&w, (uint32_t)a->n_out);
    put_f32(&w, a->dropout);
    put_u32(&w, o ? (uint32_t)o->kind : 0);
    put_f32(&w, o ? o->lr : 0.0f);
    put_u64(&w, step);
    put_u64(&w, o ? o->t : 0);
    for (int i = 0; i < 4; i++) put_u64(&w, rng ? rng->s[i] : 0);
    put_u64(&w, m->n_params);
    put_u64(&w, n_state);
    put_u32(&w, (uint32_t)a->n_layers);
    for (int l = 0; l < a->n_layers; l++) {
        put_u32(&w, a->layers[l].type);
        put_u32(&w, a->layers[l].size);
        put_u32(&w, a->layers[l].kernel);
        put_u32(&w, a->layers[l].stride);
    }
    memcpy(w.p, m->params, 4 * m->n_params);
    w.p += 4 * m->n_params;
    if (n_state) {
        memcpy(w.p, o->state, 4 * n_state);
        w.p += 4 * n_state;
    }
    put_u32(&w, (uint32_t)crc32(0L, b, (uInt)(total - 4)));
    *buf = b;
    *len = total;
    return 0;
}

/* What a header holds besides the architecture. */
typedef struct ckpt_hdr {
    uint32_t optimizer;
    float lr;
    uint64_t step, t;
    rng_state rng;
    uint64_t n_params, n_state;
} ckpt_hdr;

/* The fields from the optimizer to n_state, the same in both versions. */
static void get_state_fields(const uint8_t **p, ckpt_hdr *h)
{
    h->optimizer = get_u32(p);
    h->lr = get_f32(p);
    h->step = get_u64(p);
    h->t = get_u64(p);
    for (int i = 0; i < 4; i++) h->rng.s[i] = get_u64(p);
    h->n_params = get_u64(p);
    h->n_state = get_u64(p);
}

/* Reads a version-1 header (after the version) into an mlp architecture;
 * len >= V1_HDR_LEN. Leaves *p at the parameters. */
static int decode_v1(const uint8_t **p, model_arch *a, ckpt_hdr *h,
                     mn_err *err)
{
    a->n_in = (int)get_u32(p);
    a->n_out = (int)get_u32(p);
    uint32_t n_hidden = get_u32(p);
    if (n_hidden > V1_MAX_HIDDEN)
        return mn_errf(err, "checkpoint corrupted: %u hidden layers", n_hidden);
    int hidden[V1_MAX_HIDDEN];
    for (int l = 0; l < V1_MAX_HIDDEN; l++) {
        uint32_t w = get_u32(p);
        hidden[l] = w > MLP_MAX_WIDTH ? -1 : (int)w;
    }
    float dropout = get_f32(p);
    mlp_arch(a, (int)n_hidden, hidden, dropout);
    get_state_fields(p, h);
    return 0;
}

/* Reads a version-2 header (after the version); len is the buffer's.
 * Leaves *p at the parameters. */
static int decode_v2(const uint8_t **p, size_t len, model_arch *a,
                     ckpt_hdr *h, mn_err *err)
{
    uint32_t kind = get_u32(p);
    a->kind = model_kind_by_id(kind);
    if (!a->kind)
        return mn_errf(err, "checkpoint corrupted: unknown model kind %u", kind);
    a->n_in = (int)get_u32(p);
    a->n_out = (int)get_u32(p);
    a->dropout = get_f32(p);
    get_state_fields(p, h);
    uint32_t n_layers = get_u32(p);
    if (n_layers > MODEL_MAX_LAYERS)
        return mn_errf(err, "checkpoint corrupted: %u layers", n_layers);
    if (len < V2_HDR_LEN(n_layers) + 4)
        return mn_errf(err, "checkpoint truncated: %zu bytes, header needs "
                       "%zu", len, V2_HDR_LEN(n_layers) + 4);
    a->n_layers = (int)n_layers;
    for (uint32_t l = 0; l < n_layers; l++) {
        a->layers[l].type = get_u32(p);
        a->layers[l].size = get_u32(p);
        a->layers[l].kernel = get_u32(p);
        a->layers[l].stride = get_u32(p);
    }
    return 0;
}

int ckpt_decode(const uint8_t *buf, size_t len, int with_grads,
                model **m_out, optim *o_out, uint64_t *step,
                rng_state *rng, mn_err *err)
{
    model *m = NULL;
    *m_out = NULL;
    if (len < V2_FIXED_LEN + 4)
        return mn_errf(err, "checkpoint truncated: %zu bytes, header needs %d",
                       len, V2_FIXED_LEN + 4);
    if (memcmp(buf, CKPT_MAGIC, 4) != 0)
        return mn_errf(err, "not a checkpoint (bad magic)");
    const uint8_t *p = buf + 4;
    uint32_t version = get_u32(&p);
    model_arch a;
    memset(&a, 0, sizeof a);
    ckpt_hdr h;
    size_t hdr_len;
    if (version == 1) {
        if (len < V1_HDR_LEN + 4)
            return mn_errf(err, "checkpoint truncated: %zu bytes, header "
                           "needs %d", len, V1_HDR_LEN + 4);
        if (decode_v1(&p, &a, &h, err)) return -1;
        hdr_len = V1_HDR_LEN;
    } else if (version == CKPT_VERSION) {
        if (decode_v2(&p, len, &a, &h, err)) return -1;
        hdr_len = V2_HDR_LEN(a.n_layers);
    } else {
        return mn_errf(err, "checkpoint version %u is not supported (this "
                       "build reads version 1 and version %u)", version,
                       CKPT_VERSION);
    }
    mn_err aerr;
    if (model_arch_check(&a, &aerr))
        return mn_errf(err, "checkpoint corrupted: %s", aerr.msg);
    if (h.optimizer > OPTIM_ADAM)
        return mn_errf(err, "checkpoint corrupted: optimizer %u", h.optimizer);
    uint64_t n_params = h.n_params, n_state = h.n_state;
    if (n_params != model_param_count(&a))
        return mn_errf(err, "checkpoint corrupted: %llu parameters for this "
                       "architecture", (unsigned long long)n_params);
    if (n_state != 0 &&
        n_state != optim_state_count((optim_kind)h.optimizer, n_params))
        return mn_errf(err, "checkpoint corrupted: optimizer state size");
    if ((len - hdr_len - 4) / 4 < n_params + n_state ||
        len != hdr_len + 4 * (n_params + n_state) + 4)
        return mn_errf(err, "checkpoint truncated or padded: %zu bytes, "
                       "expected %llu", len,
                       (unsigned long long)(hdr_len + 4 * (n_params + n_state) + 4));
    const uint8_t *crcp = buf + len - 4;
    uint32_t want = get_u32(&crcp);
    if ((uint32_t)crc32(0L, buf, (uInt)(len - 4)) != want)
        return mn_errf(err, "checkpoint corrupted: checksum mismatch");
    m = model_new(&a, with_grads, err);
    if (!m) return -1;
    memcpy(m->params, p, 4 * n_params);
    p += 4 * n_params;
    if (o_out) {
        if (n_state == 0 && h.optimizer != OPTIM_SGD) {
            model_free(m);
            return mn_errf(err, "checkpoint has no optimizer state");
        }
        if (optim_init(o_out, (optim_kind)h.optimizer, h.lr, n_params, err)) {
            model_free(m);
            return -1;
        }
        if (n_state) memcpy(o_out->state, p, 4 * n_state);
        o_out->t = h.t;
    }
    if (step) *step = h.step;
    if (rng) *rng = h.rng;
    *m_out = m;
    return 0;
}
