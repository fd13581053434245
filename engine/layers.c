/* layers.c: the dense (and sparse first-layer), 2-D convolution, max
 * pooling, ReLU, dropout and softmax-cross-entropy layer pairs. See
 * layers.h for the conventions. */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


void nn_dense_forward(float *out, const float *inp, const float *w,
                      const float *b, int B, int C, int OC)
{
    for (int i = 0; i < B; i++) memcpy(out + (size_t)i * OC, b, sizeof(float) * OC);
    if (B == 1) /* one row (a single prediction): no packing for sgemm */
        cblas_sgemv(CblasRowMajor, CblasTrans, C, OC, 1.0f, w, OC, inp, 1,
                    1.0f, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, OC, C, 1.0f,
                    inp, C, w, OC, 1.0f, out, OC);
}

void nn_dense_backward(float *dinp, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, int B, int C, int OC)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, B, 1.0f,
                inp, C, dout, OC, 1.0f, dw, OC);
    for (int i = 0; i < B; i++) {
        const float *row = dout + (size_t)i * OC;
        for (int o = 0; o < OC; o++) db[o] += row[o];
    }
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, C, OC, 1.0f,
                    dout, OC, w, OC, 0.0f, dinp, C);
}

/* Hot kernels are compiled twice, for AVX+FMA and for any x86-64, and the
 * loader picks one for the machine (GCC function multi-versioning). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NN_HOT __attribute__((target_clones("fma", "default")))
#else
#define NN_HOT
#endif

/* The same with a third clone for AVX-512 (F): for kernels whose vectors
 * are 16 floats, one zmm register there, two ymm in the FMA clone. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NN_HOT_WIDE __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define NN_HOT_WIDE
#endif

/* Eight floats as one value (GCC/Clang vector extension): AVX registers
 * in the FMA clone, pairs of SSE registers in the default one. Loads and
 * stores go through memcpy, so rows need no particular alignment. */
typedef float nn_v8 __attribute__((vector_size(32)));
typedef float nn_v4 __attribute__((vector_size(16)));
typedef float nn_v16 __attribute__((vector_size(64)));

#define NN_LD8(v, p) memcpy(&(v), (p), sizeof(nn_v8))
#define NN_ST8(p, v) memcpy((p), &(v), sizeof(nn_v8))
#define NN_LD4(v, p) memcpy(&(v), (p), sizeof(nn_v4))
#define NN_ST4(p, v) memcpy((p), &(v), sizeof(nn_v4))
#define NN_LD16(v, p) memcpy(&(v), (p), sizeof(nn_v16))
#define NN_ST16(p, v) memcpy((p), &(v), sizeof(nn_v16))

void nn_conv2d_dims_set(nn_conv2d_dims *d, int C, int H, int W, int OC,
                        int K, int same)
{
    d->C = C;
    d->H = H;
    d->W = W;
    d->OC = OC;
    d->K = K;
    d->pad_t = same ? (K - 1) / 2 : 0;
    d->pad_l = d->pad_t;
    d->OH = same ? H : H - K + 1;
    d->OW = same ? W : W - K + 1;
}

/* The output columns ow in [*lo, *hi) read inside the image at kernel
 * column kj: 0 <= ow + kj - pad_l < W. */
static void conv_span(const nn_conv2d_dims *d, int kj, int *lo, int *hi)
{
    int off = kj - d->pad_l;
    *lo = off < 0 ? -off : 0;
    *hi = d->W - off < d->OW ? d->W - off : d->OW;
    if (*hi < *lo) *hi = *lo;
}

/* Copies rows oh_lo .. oh_hi-1 of an image's block for one kernel
 * offset when every row lies wholly inside the image (no horizontal
 * padding) and OW = 8 * NV: o [OH, OW] from src's row oh + dy, column
 * off on. NV is a constant in each expansion, so the copies unroll. */
#define NN_IM2COL_ROWS(NV)                                                    \
    for (int oh = oh_lo; oh < oh_hi; oh++) {                                  \
        const float *sr = src + (size_t)(oh + dy) * W + off;                  \
        float *or_ = o + (size_t)oh * OW;                                     \
        _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++) {              \
            nn_v8 t;                                                          \
            NN_LD8(t, sr + 8 * v);                                            \
            NN_ST8(or_ + 8 * v, t);                                           \
        }                                                                     \
    }

NN_HOT void nn_im2col(float *col, const float *inp, int B, int i0, int nb,
                      const nn_conv2d_dims *d)
{
    int K = d->K, OH = d->OH, OW = d->OW, H = d->H, W = d->W;
    size_t N = (size_t)OH * OW, plane = (size_t)H * W;
    for (int c = 0; c < d->C; c++)
        for (int ki = 0; ki < K; ki++) {
            /* output rows oh_lo .. oh_hi-1 read inside the image */
            int oh_lo = d->pad_t - ki > 0 ? d->pad_t - ki : 0;
            int oh_hi = H + d->pad_t - ki < OH ? H + d->pad_t - ki : OH;
            if (oh_hi < oh_lo) oh_hi = oh_lo;
            for (int kj = 0; kj < K; kj++) {
                int lo, hi, off = kj - d->pad_l;
                conv_span(d, kj, &lo, &hi);
                int whole = lo == 0 && hi == OW && OW % 8 == 0 && OW <= 32;
                float *row = col + ((size_t)(c * K + ki) * K + kj) * nb * N;
                for (int i = 0; i < nb; i++) {
                    const float *src = inp + ((size_t)c * B + i0 + i) * plane;
                    float *o = row + (size_t)i * N;
                    if (oh_lo > 0) memset(o, 0, sizeof(float) * oh_lo * OW);
                    if (oh_hi < OH)
                        memset(o + (size_t)oh_hi * OW, 0,
                               sizeof(float) * (OH - oh_hi) * OW);
                    if (whole) {
                        int dy = ki - d->pad_t;
                        switch (OW / 8) {
                        case 1: NN_IM2COL_ROWS(1) break;
                        case 2: NN_IM2COL_ROWS(2) break;
                        case 3: NN_IM2COL_ROWS(3) break;
                        default: NN_IM2COL_ROWS(4) break;
                        }
                        continue;
                    }
                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        const float *s = src + (size_t)(oh + ki - d->pad_t) * W;
                        float *r = o + (size_t)oh * OW;
                        int ow = 0;
                        for (; ow < lo; ow++) r[ow] = 0.0f;
                        for (; ow + 8 <= hi; ow += 8) {
                            nn_v8 v;
                            NN_LD8(v, s + off + ow);
                            NN_ST8(r + ow, v);
                        }
                        for (; ow < hi; ow++) r[ow] = s[off + ow];
                        for (; ow < OW; ow++) r[ow] = 0.0f;
                    }
                }
            }
        }
}
#undef NN_IM2COL_ROWS

/* o[0 .. 8*NV) += g[0 .. 8*NV), NV a constant (unrolled). */
#define NN_COL2IM_ROW(NV)                                                     \
    _Pragma("GCC unroll 8") for (int v = 0; v < (NV); v++) {                  \
        nn_v8 a, b;                                                           \
        NN_LD8(a, o + 8 * v);                                                 \
        NN_LD8(b, g + 8 * v);                                                 \
        a += b;                                                               \
        NN_ST8(o + 8 * v, a);                                                 \
    }

NN_HOT void nn_col2im(float *dinp, const float *dcol, int B, int i0, int nb,
                      const nn_conv2d_dims *d)
{
    int K = d->K, OH = d->OH, OW = d->OW, H = d->H, W = d->W;
    size_t N = (size_t)OH * OW, plane = (size_t)H * W;
    for (int c = 0; c < d->C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                int lo, hi, off = kj - d->pad_l;
                conv_span(d, kj, &lo, &hi);
                int whole = lo == 0 && hi == OW && OW % 8 == 0 && OW <= 32;
                const float *row =
                    dcol + ((size_t)(c * K + ki) * K + kj) * nb * N;
                for (int i = 0; i < nb; i++) {
                    float *dst = dinp + ((size_t)c * B + i0 + i) * plane;
                    for (int oh = 0; oh < OH; oh++) {
                        int y = oh + ki - d->pad_t;
                        if (y < 0 || y >= H) continue;
                        const float *g = row + (size_t)i * N + (size_t)oh * OW;
                        float *r = dst + (size_t)y * W;
                        if (whole) { /* off >= 0 here */
                            float *o = r + off;
                            switch (OW / 8) {
                            case 1: NN_COL2IM_ROW(1) break;
                            case 2: NN_COL2IM_ROW(2) break;
                            case 3: NN_COL2IM_ROW(3) break;
                            default: NN_COL2IM_ROW(4) break;
                            }
                            continue;
                        }
                        int ow = lo;
                        for (; ow + 8 <= hi; ow += 8) {
                            nn_v8 a, b;
                            NN_LD8(a, r + off + ow);
                            NN_LD8(b, g + ow);
                            a += b;
                            NN_ST8(r + off + ow, a);
                        }
                        for (; ow < hi; ow++) r[off + ow] += g[ow];
                    }
                }
            }
}
#undef NN_COL2IM_ROW

void nn_conv2d_forward(float *out, float *col, const float *inp,
                       const float *w, const float *b, int B, int nb,
                       const nn_conv2d_dims *d)
{
    int CKK = d->C * d->K * d->K, N = d->OH * d->OW, OC = d->OC;
    size_t BN = (size_t)B * N;
    for (int c = 0; c < OC; c++)
        for (size_t n = 0; n < BN; n++) out[c * BN + n] = b[c];
    for (int i0 = 0; i0 < B; i0 += nb) {
        int n = B - i0 < nb ? B - i0 : nb;
        nn_im2col(col, inp, B, i0, n, d);
        /* out[:, i0 .. i0+n) [OC, n*N] += w^T [OC, CKK] . col [CKK, n*N] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, n * N, CKK,
                    1.0f, w, OC, col, n * N, 1.0f, out + (size_t)i0 * N,
                    (int)BN);
    }
}

void nn_conv2d_pool_forward(float *out, uint32_t *argmax, float *col,
                            float *map, const float *inp, const float *w,
                            const float *b, int B, int nb, int P,
                            const nn_conv2d_dims *d)
{
    int CKK = d->C * d->K * d->K, N = d->OH * d->OW, OC = d->OC;
    size_t n_pool = (size_t)(d->OH / P) * (d->OW / P);
    for (int i0 = 0; i0 < B; i0 += nb) {
        int n = B - i0 < nb ? B - i0 : nb;
        nn_im2col(col, inp, B, i0, n, d);
        /* map [OC, n*N] = w^T [OC, CKK] . col [CKK, n*N] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, n * N, CKK,
                    1.0f, w, OC, col, n * N, 0.0f, map, n * N);
        for (int o = 0; o < OC; o++) {
            /* the chunk's n planes of channel o, pooled into theirs */
            size_t at = ((size_t)o * B + i0) * n_pool, cnt = n * n_pool;
            nn_maxpool_forward(out + at, argmax + at, map + (size_t)o * n * N,
                               (size_t)n, d->OH, d->OW, P);
            float *y = out + at, bias = b[o];
            for (size_t k = 0; k < cnt; k++) {
                float v = y[k] + bias;
                y[k] = v > 0.0f ? v : 0.0f;
            }
        }
    }
}

/* The sum of x[0 .. n) in eight interleaved partial sums (a fixed order:
 * the same bits every time), so that the adds pipeline and vectorise. */
static float sum8(const float *x, size_t n)
{
    float a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k];
    for (; i < n; i++) a[i % 8] += x[i];
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

void nn_conv2d_backward(float *dinp, float *dw, float *db, float *col,
                        float *dcol, const float *dout, const float *inp,
                        const float *w, int B, int nb,
                        const nn_conv2d_dims *d)
{
    int CKK = d->C * d->K * d->K, N = d->OH * d->OW, OC = d->OC;
    size_t BN = (size_t)B * N;
    for (int c = 0; c < OC; c++) db[c] += sum8(dout + c * BN, BN);
    if (dinp) memset(dinp, 0, sizeof(float) * d->C * (size_t)B * d->H * d->W);
    for (int i0 = 0; i0 < B; i0 += nb) {
        int n = B - i0 < nb ? B - i0 : nb;
        const float *g = dout + (size_t)i0 * N; /* [OC, n*N], stride BN */
        nn_im2col(col, inp, B, i0, n, d);
        /* dw [CKK, OC] += col [CKK, n*N] . g^T [n*N, OC] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, CKK, OC, n * N,
                    1.0f, col, n * N, g, (int)BN, 1.0f, dw, OC);
        if (!dinp) continue;
        /* dcol [CKK, n*N] = w [CKK, OC] . g [OC, n*N] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, CKK, n * N, OC,
                    1.0f, w, OC, g, (int)BN, 0.0f, dcol, n * N);
        nn_col2im(dinp, dcol, B, i0, n, d);
    }
}

/* dst[0 .. n) += s * src[0 .. n): vectors of 16, then 8, then single
 * floats (inlined into each clone of its NN_HOT_WIDE callers). */
static inline __attribute__((always_inline)) void
nn_axpy(float *restrict dst, const float *restrict src, float s, int n)
{
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        nn_v16 a, b;
        NN_LD16(a, dst + k);
        NN_LD16(b, src + k);
        a += s * b;
        NN_ST16(dst + k, a);
    }
    for (; k + 8 <= n; k += 8) {
        nn_v8 a, b;
        NN_LD8(a, dst + k);
        NN_LD8(b, src + k);
        a += s * b;
        NN_ST8(dst + k, a);
    }
    for (; k < n; k++) dst[k] += s * src[k];
}

/* dst[0 .. 16*NV) += s * src[0 .. 16*NV), unrolled. */
#define NN_DEF_AXPY(NV)                                                       \
    static inline __attribute__((always_inline)) void nn_axpy_##NV(           \
        float *restrict dst, const float *restrict src, float s)              \
    {                                                                         \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                \
            nn_v16 a, b;                                                      \
            NN_LD16(a, dst + 16 * v);                                         \
            NN_LD16(b, src + 16 * v);                                         \
            a += s * b;                                                       \
            NN_ST16(dst + 16 * v, a);                                         \
        }                                                                     \
    }
NN_DEF_AXPY(1) NN_DEF_AXPY(2) NN_DEF_AXPY(3) NN_DEF_AXPY(4)
NN_DEF_AXPY(5) NN_DEF_AXPY(6) NN_DEF_AXPY(7) NN_DEF_AXPY(8)

/* For rows r < K: dst[r*stride .. +len) += s * src[r*len .. +len): the
 * scatter of one window maximum's gradient into an input's gradient,
 * unrolled when len is a multiple of 16 up to 128. */
static inline __attribute__((always_inline)) void
nn_axpy_rows(float *dst, size_t stride, const float *restrict src, float s,
             int K, int len)
{
#define NN_AXPY_CASE(NV)                                                      \
    case NV:                                                                  \
        for (int r = 0; r < K; r++)                                           \
            nn_axpy_##NV(dst + r * stride, src + (size_t)r * len, s);         \
        return;
    if (len % 16 == 0)
        switch (len / 16) {
            NN_AXPY_CASE(1) NN_AXPY_CASE(2) NN_AXPY_CASE(3) NN_AXPY_CASE(4)
            NN_AXPY_CASE(5) NN_AXPY_CASE(6) NN_AXPY_CASE(7) NN_AXPY_CASE(8)
        }
#undef NN_AXPY_CASE
    for (int r = 0; r < K; r++)
        nn_axpy(dst + r * stride, src + (size_t)r * len, s, len);
}

/* The sums of nn_conv2d_pool_backward's weight gradient: each vector
 * accumulator is held in a register over all n terms, and enough of them
 * are summed at once that the FMAs' latency is hidden (one accumulator
 * alone waits on itself each term). */

/* dst[0 .. 16*NV) += sum over e < n of g[e] * base[at[e] + 0 .. 16*NV). */
#define NN_DEF_GATHER(NV)                                                     \
    static inline __attribute__((always_inline)) void nn_gather_##NV(         \
        float *dst, const float *restrict base, const uint32_t *restrict at,  \
        const float *restrict g, int n)                                       \
    {                                                                         \
        nn_v16 a[NV];                                                         \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                  \
            NN_LD16(a[v], dst + 16 * v);                                      \
        for (int e = 0; e < n; e++) {                                         \
            const float *src = base + at[e];                                  \
            float s = g[e];                                                   \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {            \
                nn_v16 t;                                                     \
                NN_LD16(t, src + 16 * v);                                     \
                a[v] += s * t;                                                \
            }                                                                 \
        }                                                                     \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                  \
            NN_ST16(dst + 16 * v, a[v]);                                      \
    }
NN_DEF_GATHER(1) NN_DEF_GATHER(2) NN_DEF_GATHER(3) NN_DEF_GATHER(4)
NN_DEF_GATHER(5) NN_DEF_GATHER(6) NN_DEF_GATHER(7) NN_DEF_GATHER(8)

/* For runs of one vector: rows r < NR of 16 floats at once,
 * dst[r*16 .. +16) += sum over e < n of g[e] * base[at[e] + r*stride ..
 * +16). */
#define NN_DEF_GATHER_ROWS(NR)                                                \
    static inline __attribute__((always_inline)) void nn_gather_rows_##NR(    \
        float *dst, const float *restrict base, size_t stride,                \
        const uint32_t *restrict at, const float *restrict g, int n)          \
    {                                                                         \
        nn_v16 a[NR];                                                         \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++)                  \
            NN_LD16(a[r], dst + 16 * r);                                      \
        for (int e = 0; e < n; e++) {                                         \
            const float *src = base + at[e];                                  \
            float s = g[e];                                                   \
            _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++) {            \
                nn_v16 t;                                                     \
                NN_LD16(t, src + r * stride);                                 \
                a[r] += s * t;                                                \
            }                                                                 \
        }                                                                     \
        _Pragma("GCC unroll 8") for (int r = 0; r < NR; r++)                  \
            NN_ST16(dst + 16 * r, a[r]);                                      \
    }
NN_DEF_GATHER_ROWS(1) NN_DEF_GATHER_ROWS(2) NN_DEF_GATHER_ROWS(3)
NN_DEF_GATHER_ROWS(4) NN_DEF_GATHER_ROWS(5) NN_DEF_GATHER_ROWS(6)
NN_DEF_GATHER_ROWS(7) NN_DEF_GATHER_ROWS(8)

/* For rows r < K: dst[r*run .. +run) += sum over e < n of g[e] *
 * base[at[e] + r*stride .. +run), run a multiple of 16: runs of one
 * vector 8 rows at a time, longer ones row by row, 8 vectors at a time. */
static inline __attribute__((always_inline)) void
nn_gather(float *dst, const float *restrict base, size_t stride, int K,
          int run, const uint32_t *restrict at, const float *restrict g,
          int n)
{
#define NN_CASE(F, NV, ...)                                                   \
    case NV: F##_##NV(__VA_ARGS__); break;
#define NN_CASES(F, ...)                                                      \
    NN_CASE(F, 1, __VA_ARGS__) NN_CASE(F, 2, __VA_ARGS__)                     \
    NN_CASE(F, 3, __VA_ARGS__) NN_CASE(F, 4, __VA_ARGS__)                     \
    NN_CASE(F, 5, __VA_ARGS__) NN_CASE(F, 6, __VA_ARGS__)                     \
    NN_CASE(F, 7, __VA_ARGS__) NN_CASE(F, 8, __VA_ARGS__)
    if (run == 16) {
        for (int r = 0; r < K; r += 8) {
            float *d = dst + 16 * r;
            const float *b = base + r * stride;
            switch (K - r < 8 ? K - r : 8) {
                NN_CASES(nn_gather_rows, d, b, stride, at, g, n)
            }
        }
        return;
    }
    for (int r = 0; r < K; r++)
        for (int k = 0; k < run; k += 128) {
            float *d = dst + (size_t)r * run + k;
            const float *b = base + r * stride + k;
            switch ((run - k) / 16 < 8 ? (run - k) / 16 : 8) {
                NN_CASES(nn_gather, d, b, at, g, n)
            }
        }
#undef NN_CASES
#undef NN_CASE
}

/* A run of K*C floats rounded up to whole vectors of 16. */
static size_t pool_run16(const nn_conv2d_dims *d)
{
    return ((size_t)d->K * d->C + 15) & ~(size_t)15;
}

size_t nn_conv2d_pool_backward_scratch(const nn_conv2d_dims *d)
{
    size_t kkc = (size_t)d->K * d->K * d->C, run = pool_run16(d);
    size_t padded = (size_t)(d->OH + d->K - 1) * (d->OW + d->K - 1) * d->C;
    size_t n_map = (size_t)d->OH * d->OW; /* >= the pooled positions */
    return kkc * d->OC + (size_t)d->K * run * d->OC + 2 * padded + run +
           3 * n_map;
}

NN_HOT_WIDE void nn_conv2d_pool_backward(float *dinp, float *dw, float *db,
                                         float *scratch, const float *dpool,
                                         const uint32_t *argmax,
                                         const float *inp, const float *w,
                                         int B, int P,
                                         const nn_conv2d_dims *d)
{
    int C = d->C, K = d->K, OC = d->OC, H = d->H, W = d->W, OW = d->OW;
    int KC = K * C, Wp = OW + K - 1, Hp = d->OH + K - 1;
    int run = (int)pool_run16(d);
    size_t kkc = (size_t)K * KC, n_pool = (size_t)(d->OH / P) * (OW / P);
    size_t plane = (size_t)H * W, padded = (size_t)Hp * Wp * C;
    size_t row = (size_t)Wp * C, krun = (size_t)K * run;
    /* wT: [OC, K, K, C]  dwT: [OC, K, run], each kernel row's K*C floats
     * [kj, c] then junk up to whole vectors: its sums read past a row's
     * run of xT (the next floats, or the slack after xT) and are dropped
     * at the end. xT: [Hp, Wp, C] (one image, padded) then run floats of
     * slack; dxT: [Hp, Wp, C]. gv, at: [n_pool] one plane's nonzero
     * gradients and where their windows' maxima read xT (at: an offset
     * in floats); xoff: [OH*OW] that offset for each map position */
    float *wT = scratch, *dwT = wT + kkc * OC, *xT = dwT + krun * OC,
          *dxT = xT + padded + run, *gv = dxT + padded;
    uint32_t *at = (uint32_t *)(gv + (size_t)d->OH * OW),
             *xoff = at + (size_t)d->OH * OW;
    for (int oh = 0; oh < d->OH; oh++)
        for (int ow = 0; ow < OW; ow++)
            xoff[oh * OW + ow] = (uint32_t)((size_t)oh * row + (size_t)ow * C);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K * K; k++)
            for (int o = 0; o < OC; o++)
                wT[o * kkc + (size_t)k * C + c] =
                    w[((size_t)c * K * K + k) * OC + o];
    memset(dwT, 0, sizeof(float) * krun * OC);
    memset(xT, 0, sizeof(float) * (padded + run)); /* the padding stays 0 */
    for (int i = 0; i < B; i++) {
        if (C == 1) { /* no transposition: the rows as they are */
            const float *x = inp + (size_t)i * plane;
            for (int y = 0; y < H; y++)
                memcpy(xT + (size_t)(y + d->pad_t) * Wp + d->pad_l,
                       x + (size_t)y * W, sizeof(float) * W);
        } else {
            for (int c = 0; c < C; c++) {
                const float *x = inp + ((size_t)c * B + i) * plane;
                for (int y = 0; y < H; y++)
                    for (int xx = 0; xx < W; xx++)
                        xT[((size_t)(y + d->pad_t) * Wp + xx + d->pad_l) * C +
                           c] = x[y * W + xx];
            }
        }
        if (dinp) memset(dxT, 0, sizeof(float) * padded);
        for (int o = 0; o < OC; o++) {
            const float *g = dpool + ((size_t)o * B + i) * n_pool;
            const uint32_t *am = argmax + ((size_t)o * B + i) * n_pool;
            /* the window's maximum at row oh, column ow of the map reads
             * the padded input's rows oh .. oh+K-1, each a run of K*C
             * floats [kj, c] from column ow on; a ReLU'd output (common)
             * has no gradient */
            int n = 0;
            float gsum = 0.0f;
            for (size_t p = 0; p < n_pool; p++) {
                gv[n] = g[p];
                at[n] = xoff[am[p]];
                gsum += g[p];
                n += g[p] != 0.0f;
            }
            db[o] += gsum;
            nn_gather(dwT + o * krun, xT, row, K, run, at, gv, n);
            if (!dinp) continue;
            const float *wo = wT + o * kkc;
            for (int e = 0; e < n; e++)
                nn_axpy_rows(dxT + at[e], row, wo, gv[e], K, KC);
        }
        if (!dinp) continue;
        for (int c = 0; c < C; c++) {
            float *x = dinp + ((size_t)c * B + i) * plane;
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++)
                    x[y * W + xx] =
                        dxT[((size_t)(y + d->pad_t) * Wp + xx + d->pad_l) * C + c];
        }
    }
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++)
                for (int o = 0; o < OC; o++)
                    dw[((size_t)(c * K + ki) * K + kj) * OC + o] +=
                        dwT[o * krun + (size_t)ki * run + (size_t)kj * C + c];
}

void nn_maxpool_forward(float *out, uint32_t *argmax, const float *inp,
                        size_t n_planes, int H, int W, int P)
{
    int PH = H / P, PW = W / P;
    /* selects, not branches: which value of a window wins is random */
    if (P == 2) {
        for (size_t pl = 0; pl < n_planes; pl++) {
            const float *x = inp + pl * H * W;
            float *o = out + pl * PH * PW;
            uint32_t *am = argmax + pl * PH * PW;
            for (int i = 0; i < PH; i++) {
                const float *r0 = x + (size_t)2 * i * W, *r1 = r0 + W;
                for (int j = 0; j < PW; j++) {
                    uint32_t at = (uint32_t)(2 * i * W + 2 * j), best = at;
                    float m = r0[2 * j], e;
                    e = r0[2 * j + 1];
                    best = e > m ? at + 1 : best;
                    m = e > m ? e : m;
                    e = r1[2 * j];
                    best = e > m ? at + (uint32_t)W : best;
                    m = e > m ? e : m;
                    e = r1[2 * j + 1];
                    best = e > m ? at + (uint32_t)W + 1 : best;
                    m = e > m ? e : m;
                    o[i * PW + j] = m;
                    am[i * PW + j] = best;
                }
            }
        }
        return;
    }
    for (size_t pl = 0; pl < n_planes; pl++) {
        const float *x = inp + pl * H * W;
        float *o = out + pl * PH * PW;
        uint32_t *am = argmax + pl * PH * PW;
        for (int i = 0; i < PH; i++)
            for (int j = 0; j < PW; j++) {
                uint32_t best = (uint32_t)(P * i * W + P * j);
                float m = x[best];
                for (int u = 0; u < P; u++)
                    for (int v = 0; v < P; v++) {
                        uint32_t at = (uint32_t)((P * i + u) * W + P * j + v);
                        int gt = x[at] > m;
                        m = gt ? x[at] : m;
                        best = gt ? at : best;
                    }
                o[i * PW + j] = m;
                am[i * PW + j] = best;
            }
    }
}

void nn_swap_outer(float *out, const float *inp, int R, int S, int L)
{
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++)
            memcpy(out + ((size_t)s * R + r) * L, inp + ((size_t)r * S + s) * L,
                   sizeof(float) * L);
}


size_t nn_sparse_pack(uint32_t *rowptr, uint32_t *idx, float *val,
                      const float *inp, int B, int C)
{
    uint32_t n = 0;
    rowptr[0] = 0;
    for (int i = 0; i < B; i++) {
        const float *row = inp + (size_t)i * C;
        int j = 0;
        for (; j + 8 <= C; j += 8) {
            /* skip eight all-zero floats at once (an image's dark border) */
            uint64_t z[4];
            memcpy(z, row + j, sizeof z);
            if ((z[0] | z[1] | z[2] | z[3]) == 0) continue;
            /* branchless: always write, advance only past a nonzero */
            for (int t = j; t < j + 8; t++) {
                idx[n] = (uint32_t)t;
                val[n] = row[t];
                n += row[t] != 0.0f;
            }
        }
        for (; j < C; j++) {
            idx[n] = (uint32_t)j;
            val[n] = row[j];
            n += row[j] != 0.0f;
        }
        rowptr[i + 1] = n;
    }
    return n;
}

void nn_sparse_transpose(uint32_t *cptr, uint32_t *crow, float *cval,
                         const uint32_t *rowptr, const uint32_t *idx,
                         const float *val, int B, int C)
{
    memset(cptr, 0, sizeof(uint32_t) * ((size_t)C + 1));
    for (uint32_t k = rowptr[0]; k < rowptr[B]; k++) cptr[idx[k] + 1]++;
    for (int j = 0; j < C; j++) cptr[j + 1] += cptr[j];
    /* fill in row order, using cptr[j] as the cursor, then shift back */
    for (int i = 0; i < B; i++)
        for (uint32_t k = rowptr[i]; k < rowptr[i + 1]; k++) {
            uint32_t e = cptr[idx[k]]++;
            crow[e] = (uint32_t)i;
            cval[e] = val[k];
        }
    for (int j = C; j > 0; j--) cptr[j] = cptr[j - 1];
    cptr[0] = 0;
}


/* A stretch of output columns is summed in one walk over the nonzeros,
 * with one accumulator per vector of eight columns (and one of four) held
 * in registers: up to NN_RUN_V8 vectors and a half, 13 of the 16 AVX
 * registers at 100 columns in the FMA clone, leaving room for the
 * broadcast value and the loaded row (the default clone, on SSE pairs,
 * spills). NV and HALF are constants in each expansion, so the loops
 * over vectors unroll and the accumulators never touch memory. (The
 * helpers are inlined into the NN_HOT callers, so they are built for each
 * target of the clones.) The `if (NV > 0)` guards change no code at -O1
 * and above; at -O0, where gcc keeps the dead loops of NV = 0, they keep
 * its -Wstringop-overflow/-overread from reading a[v] for v < 0. */
#define NN_RUN_V8 12

#define NN_DEF_RUN(NV, HALF)                                                  \
    static inline __attribute__((always_inline)) void nn_run_##NV##_##HALF(   \
        float *out, const float *init, const float *restrict base,            \
        size_t stride, const uint32_t *restrict key,                          \
        const float *restrict val, uint32_t n)                                \
    {                                                                         \
        nn_v8 a[NV + 1];                                                      \
        nn_v4 h = {0};                                                        \
        if (NV > 0) _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++)     \
            NN_LD8(a[v], init + 8 * v);                                       \
        if (HALF) NN_LD4(h, init + 8 * NV);                                   \
        for (uint32_t e = 0; e < n; e++) {                                    \
            const float *src = base + (size_t)key[e] * stride;                \
            float s = val[e];                                                 \
            _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) {           \
                nn_v8 t;                                                      \
                NN_LD8(t, src + 8 * v);                                       \
                a[v] += s * t;                                                \
            }                                                                 \
            if (HALF) {                                                       \
                nn_v4 t;                                                      \
                NN_LD4(t, src + 8 * NV);                                      \
                h += s * t;                                                   \
            }                                                                 \
        }                                                                     \
        if (NV > 0) _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++)     \
            NN_ST8(out + 8 * v, a[v]);                                        \
        if (HALF) NN_ST4(out + 8 * NV, h);                                    \
    }
#define NN_DEF_RUNS(NV) NN_DEF_RUN(NV, 0) NN_DEF_RUN(NV, 1)
NN_DEF_RUNS(0) NN_DEF_RUNS(1) NN_DEF_RUNS(2) NN_DEF_RUNS(3) NN_DEF_RUNS(4)
NN_DEF_RUNS(5) NN_DEF_RUNS(6) NN_DEF_RUNS(7) NN_DEF_RUNS(8) NN_DEF_RUNS(9)
NN_DEF_RUNS(10) NN_DEF_RUNS(11) NN_DEF_RUNS(12)

/* out[0..OC) = init[0..OC) + sum_e val[e] * src(e)[0..OC) for the n
 * entries e, where src(e) = base + key[e] * OC: runs of 96 columns, then
 * the rest in one run (vectors of 8, one of 4), then single columns.
 * init may alias out. */
static inline __attribute__((always_inline)) void
nn_sparse_sum(float *out, const float *init, const float *restrict base,
              const uint32_t *restrict key, const float *restrict val,
              uint32_t n, int OC)
{
    size_t st = (size_t)OC;
    int k = 0;
    for (; OC - k > 8 * NN_RUN_V8 + 4; k += 8 * NN_RUN_V8)
        nn_run_12_0(out + k, init + k, base + k, st, key, val, n);
    int r = OC - k, nv = r / 8, half = r % 8 >= 4;
#define NN_RUN_CASE(NV)                                                       \
    case NV:                                                                  \
        if (half)                                                             \
            nn_run_##NV##_1(out + k, init + k, base + k, st, key, val, n);    \
        else                                                                  \
            nn_run_##NV##_0(out + k, init + k, base + k, st, key, val, n);    \
        break;
    switch (nv) {
        NN_RUN_CASE(0) NN_RUN_CASE(1) NN_RUN_CASE(2) NN_RUN_CASE(3)
        NN_RUN_CASE(4) NN_RUN_CASE(5) NN_RUN_CASE(6) NN_RUN_CASE(7)
        NN_RUN_CASE(8) NN_RUN_CASE(9) NN_RUN_CASE(10) NN_RUN_CASE(11)
        NN_RUN_CASE(12)
    }
#undef NN_RUN_CASE
    for (k += 8 * nv + 4 * half; k < OC; k++) {
        float a = init[k];
        for (uint32_t e = 0; e < n; e++) a += val[e] * base[(size_t)key[e] * st + k];
        out[k] = a;
    }
}

NN_HOT void nn_dense_sparse_forward(float *restrict out,
                                    const uint32_t *restrict rowptr,
                                    const uint32_t *restrict idx,
                                    const float *restrict val,
                                    const float *restrict w,
                                    const float *restrict b, int B, int OC)
{
    /* out[i] = b + sum over row i's nonzeros j of inp[i][j] * w[j] */
    for (int i = 0; i < B; i++)
        nn_sparse_sum(out + (size_t)i * OC, b, w, idx + rowptr[i],
                      val + rowptr[i], rowptr[i + 1] - rowptr[i], OC);
}

NN_HOT void nn_dense_sparse_backward(float *restrict dw, float *restrict db,
                                     const float *restrict dout,
                                     const uint32_t *restrict cptr,
                                     const uint32_t *restrict crow,
                                     const float *restrict cval, int B,
                                     int C, int OC)
{
    for (int i = 0; i < B; i++) {
        const float *d = dout + (size_t)i * OC;
        for (int k = 0; k < OC; k++) db[k] += d[k];
    }
    /* dw[j] += sum over column j's nonzeros (row i) of inp[i][j] * dout[i] */
    for (int j = 0; j < C; j++)
        if (cptr[j] < cptr[j + 1])
            nn_sparse_sum(dw + (size_t)j * OC, dw + (size_t)j * OC, dout,
                          crow + cptr[j], cval + cptr[j],
                          cptr[j + 1] - cptr[j], OC);
}

NN_HOT void nn_relu_forward(float *out, const float *inp, size_t N)
{
    for (size_t i = 0; i < N; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void nn_relu_backward(float *dinp, const float *dout, const float *out,
                      size_t N)
{
    /* dout[i] is read whatever the branch, so that the compiler may turn
     * the select into vector blends (a load under the condition it may
     * not hoist, and the loop stays scalar, with a branch per element) */
    for (size_t i = 0; i < N; i++) {
        float g = dout[i];
        dinp[i] = out[i] > 0.0f ? g : 0.0f;
    }
}

void nn_dropout_forward(float *out, float *mask, const float *inp, float p,
                        size_t N, rng_state *rng)
{
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < N; i++) {
        mask[i] = rng_uniform(rng) < p ? 0.0f : keep;
        out[i] = inp[i] * mask[i];
    }
}

void nn_dropout_backward(float *dinp, const float *dout, const float *mask,
                         size_t N)
{
    for (size_t i = 0; i < N; i++) dinp[i] = dout[i] * mask[i];
}

double nn_softmax_xent_forward(float *probs, const float *logits,
                               const uint8_t *labels, int B, int K)
{
    double loss = 0.0;
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * K;
        float *p = probs + (size_t)i * K;
        float zmax = z[0];
        for (int k = 1; k < K; k++) zmax = z[k] > zmax ? z[k] : zmax;
        double sum = 0.0;
        for (int k = 0; k < K; k++) {
            p[k] = expf(z[k] - zmax);
            sum += p[k];
        }
        float inv = (float)(1.0 / sum);
        for (int k = 0; k < K; k++) p[k] *= inv;
        if (labels) loss += log(sum) - (double)(z[labels[i]] - zmax);
    }
    return loss;
}

void nn_softmax_xent_backward(float *dlogits, const float *probs,
                              const uint8_t *labels, float scale, int B,
                              int K)
{
    for (int i = 0; i < B; i++) {
        float *d = dlogits + (size_t)i * K;
        const float *p = probs + (size_t)i * K;
        for (int k = 0; k < K; k++) d[k] = p[k] * scale;
        d[labels[i]] -= scale;
    }
}
