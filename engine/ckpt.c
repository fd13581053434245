/* ckpt.c: checkpoint encoding and decoding (format in ckpt.h). */
#include "ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ckpt.c writes floats in host order and expects a little-endian host"
#endif

#define HDR_U32S (4 + NN_MAX_HIDDEN + 3) /* version..lr, after magic */
#define HDR_LEN (4 + 4 * HDR_U32S + 8 * 8)

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

int ckpt_encode(const nn_model *m, const optim *o, uint64_t step,
                const rng_state *rng, uint8_t **buf, size_t *len,
                mn_err *err)
{
    size_t n_state = o ? o->n_state : 0;
    size_t total = HDR_LEN + 4 * (m->n_params + n_state) + 4;
    uint8_t *b = malloc(total);
    if (!b) return mn_errf(err, "out of memory encoding a checkpoint");
    wbuf w = {b};
    memcpy(w.p, CKPT_MAGIC, 4);
    w.p += 4;
    put_u32(&w, CKPT_VERSION);
    put_u32(&w, (uint32_t)m->arch.n_in);
    put_u32(&w, (uint32_t)m->arch.n_out);
    put_u32(&w, (uint32_t)m->arch.n_hidden);
    for (int l = 0; l < NN_MAX_HIDDEN; l++)
        put_u32(&w, l < m->arch.n_hidden ? (uint32_t)m->arch.hidden[l] : 0);
    put_f32(&w, m->arch.dropout);
    put_u32(&w, o ? (uint32_t)o->kind : 0);
    put_f32(&w, o ? o->lr : 0.0f);
    put_u64(&w, step);
    put_u64(&w, o ? o->t : 0);
    for (int i = 0; i < 4; i++) put_u64(&w, rng ? rng->s[i] : 0);
    put_u64(&w, m->n_params);
    put_u64(&w, n_state);
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

int ckpt_decode(const uint8_t *buf, size_t len, int with_grads,
                nn_model **m_out, optim *o_out, uint64_t *step,
                rng_state *rng, mn_err *err)
{
    nn_model *m = NULL;
    *m_out = NULL;
    if (len < HDR_LEN + 4)
        return mn_errf(err, "checkpoint truncated: %zu bytes, header needs %d",
                       len, HDR_LEN + 4);
    if (memcmp(buf, CKPT_MAGIC, 4) != 0)
        return mn_errf(err, "not a checkpoint (bad magic)");
    const uint8_t *p = buf + 4;
    uint32_t version = get_u32(&p);
    if (version != CKPT_VERSION)
        return mn_errf(err, "checkpoint version %u is not supported (want %u)",
                       version, CKPT_VERSION);
    nn_arch a = {0};
    a.n_in = (int)get_u32(&p);
    a.n_out = (int)get_u32(&p);
    uint32_t n_hidden = get_u32(&p);
    if (n_hidden > NN_MAX_HIDDEN)
        return mn_errf(err, "checkpoint corrupted: %u hidden layers", n_hidden);
    a.n_hidden = (int)n_hidden;
    for (int l = 0; l < NN_MAX_HIDDEN; l++) {
        uint32_t h = get_u32(&p);
        if (l < a.n_hidden) a.hidden[l] = h > NN_MAX_WIDTH ? -1 : (int)h;
    }
    a.dropout = get_f32(&p);
    uint32_t kind = get_u32(&p);
    float lr = get_f32(&p);
    uint64_t st = get_u64(&p);
    uint64_t t = get_u64(&p);
    rng_state r;
    for (int i = 0; i < 4; i++) r.s[i] = get_u64(&p);
    uint64_t n_params = get_u64(&p);
    uint64_t n_state = get_u64(&p);
    mn_err aerr;
    if (nn_arch_check(&a, &aerr))
        return mn_errf(err, "checkpoint corrupted: %s", aerr.msg);
    if (kind > OPTIM_ADAM)
        return mn_errf(err, "checkpoint corrupted: optimizer %u", kind);
    if (n_params != nn_arch_param_count(&a))
        return mn_errf(err, "checkpoint corrupted: %llu parameters for this "
                       "architecture", (unsigned long long)n_params);
    if (n_state != 0 && n_state != optim_state_count((optim_kind)kind, n_params))
        return mn_errf(err, "checkpoint corrupted: optimizer state size");
    if ((len - HDR_LEN - 4) / 4 < n_params + n_state ||
        len != HDR_LEN + 4 * (n_params + n_state) + 4)
        return mn_errf(err, "checkpoint truncated or padded: %zu bytes, "
                       "expected %llu", len,
                       (unsigned long long)(HDR_LEN + 4 * (n_params + n_state) + 4));
    const uint8_t *crcp = buf + len - 4;
    uint32_t want = get_u32(&crcp);
    if ((uint32_t)crc32(0L, buf, (uInt)(len - 4)) != want)
        return mn_errf(err, "checkpoint corrupted: checksum mismatch");
    m = nn_model_new(&a, with_grads, err);
    if (!m) return -1;
    memcpy(m->params, p, 4 * n_params);
    p += 4 * n_params;
    if (o_out) {
        if (n_state == 0 && kind != OPTIM_SGD) {
            nn_model_free(m);
            return mn_errf(err, "checkpoint has no optimizer state");
        }
        if (optim_init(o_out, (optim_kind)kind, lr, n_params, err)) {
            nn_model_free(m);
            return -1;
        }
        if (n_state) memcpy(o_out->state, p, 4 * n_state);
        o_out->t = t;
    }
    if (step) *step = st;
    if (rng) *rng = r;
    *m_out = m;
    return 0;
}
