/* predict_decode.c: the JSON body of POST /predict (see predict_decode.h). */
#include "server/http/predict_decode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"

/* Copies one JSON image (an array of P numbers in 0..1) into x. Returns 0,
 * or -1 with a message naming the image and the problem. */
static int json_image(const json_t *img, size_t which, int batch, float *x,
                      int P, char *msg, size_t msglen)
{
    char where[48] = "pixels";
    if (batch) snprintf(where, sizeof where, "pixels[%zu]", which);
    if (!json_is_array(img)) {
        snprintf(msg, msglen, "%s must be an array of %d numbers", where, P);
        return -1;
    }
    if (json_array_size(img) != (size_t)P) {
        snprintf(msg, msglen, "%s has %zu values; an image has %d (28x28)",
                 where, json_array_size(img), P);
        return -1;
    }
    for (int j = 0; j < P; j++) {
        json_t *v = json_array_get(img, (size_t)j);
        if (!json_is_number(v)) {
            snprintf(msg, msglen, "%s[%d] is not a number", where, j);
            return -1;
        }
        double f = json_number_value(v);
        if (!(f >= 0.0 && f <= 1.0)) {
            snprintf(msg, msglen, "%s[%d] = %g is outside 0..1", where, j, f);
            return -1;
        }
        x[j] = (float)f;
    }
    return 0;
}

int predict_decode(const json_t *body, unsigned max_batch, float **x,
                   size_t *n, const char **run_id, char *msg, size_t msglen)
{
    const int P = DS_PIXELS;
    const char *key;
    json_t *v;
    float *buf = NULL;

    *x = NULL;
    *n = 0;
    *run_id = NULL;
    if (!json_is_object(body)) {
        snprintf(msg, msglen, "body must be a JSON object");
        return PREDICT_BAD_FIELD;
    }
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "run") && strcmp(key, "pixels") &&
            strcmp(key, "model") && strcmp(key, "version") &&
            strcmp(key, "alias")) {
            snprintf(msg, msglen, "unknown field '%s'", key);
            return PREDICT_BAD_FIELD;
        }
    }
    json_t *jr = json_object_get(body, "run");
    if (jr && !json_is_string(jr)) {
        snprintf(msg, msglen, "run must be a run id string");
        return PREDICT_BAD_FIELD;
    }
    const json_t *pixels = json_object_get(body, "pixels");
    if (!pixels || !json_is_array(pixels) || json_array_size(pixels) == 0) {
        int b64 = pixels && (json_is_string(pixels) ||
                             json_object_get(pixels, "b64") != NULL);
        const char *what = !pixels ? "is required"
                           : json_is_array(pixels) ? "is an empty list"
                           : b64 ? "cannot be base64"
                                 : "is not an array";
        if (b64)
            snprintf(msg, msglen, "pixels %s: send raw bytes instead, as "
                     "Content-Type: application/octet-stream, n x %d uint8 "
                     "pixels 0..255; or JSON pixels as an array of %d numbers "
                     "in 0..1", what, P, P);
        else
            snprintf(msg, msglen, "pixels %s: send an array of %d numbers "
                     "in 0..1, or an array of such arrays", what, P);
        return PREDICT_BAD_FIELD;
    }
    int batch = json_is_array(json_array_get(pixels, 0));
    size_t count = batch ? json_array_size(pixels) : 1;
    if (count > max_batch) {
        snprintf(msg, msglen, "%zu images in one request; the limit is %u",
                 count, max_batch);
        return PREDICT_BAD_PIXELS;
    }
    buf = malloc(sizeof(float) * count * (size_t)P);
    if (!buf) {
        snprintf(msg, msglen, "no memory for %zu images", count);
        return PREDICT_NO_MEMORY;
    }
    for (size_t i = 0; i < count; i++) {
        const json_t *img = batch ? json_array_get(pixels, i) : pixels;
        if (json_image(img, i, batch, buf + i * P, P, msg, msglen)) {
            free(buf);
            return PREDICT_BAD_PIXELS;
        }
    }
    *x = buf;
    *n = count;
    *run_id = jr ? json_string_value(jr) : NULL;
    return PREDICT_OK;
}

int predict_decode_model(const json_t *body, const char **model,
                         int64_t *version, const char **alias, char *msg,
                         size_t msglen)
{
    *model = *alias = NULL;
    *version = 0;
    const json_t *m = json_object_get(body, "model"),
                 *v = json_object_get(body, "version"),
                 *a = json_object_get(body, "alias");
    const char *err = NULL;
    if (m && !json_is_string(m))
        err = "model must be a model name";
    else if (v && (!json_is_integer(v) || json_integer_value(v) < 1))
        err = "version must be a version number (1, 2, ...)";
    else if (a && !json_is_string(a))
        err = "alias must be an alias name";
    else if (v && a)
        err = "give a version or an alias, not both";
    else if ((v || a) && !m)
        err = "version and alias name a version of a model: give \"model\"";
    else if (m && json_object_get(body, "run"))
        err = "give a run or a model, not both";
    if (err) {
        snprintf(msg, msglen, "%s", err);
        return PREDICT_BAD_FIELD;
    }
    *model = json_string_value(m);
    *alias = json_string_value(a);
    if (v) *version = json_integer_value(v);
    return PREDICT_OK;
}

/* ---- the fast path ---- */

typedef struct fast_in {
    const char *p, *end;
} fast_in;

/* JSON whitespace: space, tab, line feed, carriage return (one test of
 * a bit mask over the characters up to space). */
static int is_ws(char c)
{
    unsigned u = (unsigned char)c;
    return u <= ' ' && ((0x100002600ull >> u) & 1);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void fast_ws(fast_in *in)
{
    while (in->p < in->end && is_ws(*in->p)) in->p++;
}

static int fast_eat(fast_in *in, char c)
{
    fast_ws(in);
    if (in->p < in->end && *in->p == c) {
        in->p++;
        return 1;
    }
    return 0;
}

/* Powers of ten up to the largest fast_number divides by, exact as
 * doubles and as integers (the integers for the range check). */
static const double fast_pow10[16] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,
                                      1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15};

/* Length of the JSON number at p (the grammar's
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0 if none. The scan
 * stops at the text's terminating 0. */
static size_t json_number_len(const char *p)
{
    const char *q = p;
    if (*q == '-') q++;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (is_digit(*q)) q++;
    } else {
        return 0;
    }
    if (*q == '.') {
        q++;
        if (!is_digit(*q)) return 0;
        while (is_digit(*q)) q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!is_digit(*q)) return 0;
        while (is_digit(*q)) q++;
    }
    return (size_t)(q - p);
}

/* A JSON number in 0..1 through strtod: exponents, long mantissas. */
static int slow_number(const char **pp, float *out)
{
    const char *p = *pp;
    size_t len = json_number_len(p);
    /* a sign is never needed in 0..1, and jansson reads "-0" as the
     * integer 0 where strtod gives -0.0: leave signs to predict_decode */
    if (len == 0 || *p == '-') return -1;
    char tmp[64];
    if (len >= sizeof tmp) return -1;
    memcpy(tmp, p, len);
    tmp[len] = 0;
    double v = strtod(tmp, NULL);
    if (!(v >= 0.0 && v <= 1.0)) return -1;
    *out = (float)v;
    *pp = p + len;
    return 0;
}

static const uint64_t fast_pow10_u64[16] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull};

/* A JSON number in 0..1 at *pp, in one pass for the usual forms: 0, 1,
 * 0.ddd and 1.ddd with at most 15 fraction digits. Those are mant / 10^k
 * with both exact (mant < 2^53), so the one rounding of the division
 * gives the correctly rounded value, as strtod does. Anything else goes
 * through slow_number. */
static int fast_number(const char **pp, float *out)
{
    const char *p = *pp;
    /* 0.0, the most common pixel of all in bodies written by Python */
    if (p[0] == '0' && p[1] == '.' && p[2] == '0' && !is_digit(p[3]) &&
        p[3] != 'e' && p[3] != 'E') {
        *out = 0.0f;
        *pp = p + 3;
        return 0;
    }
    unsigned ip = (unsigned)(unsigned char)p[0] - '0';
    if (ip <= 1 && !is_digit(p[1])) {
        const char *q = p + 1;
        uint64_t mant = ip;
        int k = 0;
        if (*q == '.') {
            q++;
            while (is_digit(*q) && k < 15) {
                mant = mant * 10 + (uint64_t)(*q - '0');
                q++;
                k++;
            }
        }
        if ((k > 0 || q == p + 1) && !is_digit(*q) && *q != 'e' && *q != 'E') {
            if (mant > fast_pow10_u64[k]) return -1; /* above 1 */
            *out = mant ? (float)((double)mant / fast_pow10[k]) : 0.0f;
            *pp = q;
            return 0;
        }
    }
    return slow_number(pp, out);
}

/* One image: '[' P numbers ']'. */
static int fast_image(fast_in *in, float *x)
{
    if (!fast_eat(in, '[')) return -1;
    const char *p = in->p;
    for (int j = 0; j < DS_PIXELS; j++) {
        while (is_ws(*p)) p++;
        if (j) {
            if (*p != ',') return -1;
            p++;
            while (is_ws(*p)) p++;
        }
        if (fast_number(&p, &x[j])) return -1;
    }
    in->p = p;
    return fast_eat(in, ']') ? 0 : -1;
}

int predict_scan_image(const char **p, const char *end, float *x)
{
    fast_in in = {*p, end};
    if (fast_image(&in, x)) return -1;
    *p = in.p;
    return 0;
}

/* "pixels": one image or a batch, into a growing buffer. */
static int fast_pixels(fast_in *in, unsigned max_batch, float **x, size_t *n)
{
    fast_ws(in);
    const char *save = in->p;
    if (!fast_eat(in, '[')) return -1;
    int batch = fast_eat(in, '[');
    in->p = save;
    size_t cap = batch ? 16 : 1;
    float *buf = malloc(sizeof(float) * DS_PIXELS * cap);
    if (!buf) return -1;
    size_t count = 0;
    if (!batch) {
        if (fast_image(in, buf)) goto fail;
        count = 1;
    } else {
        fast_eat(in, '[');
        do {
            if (count == max_batch) goto fail;
            if (count == cap) {
                float *nb = realloc(buf, sizeof(float) * DS_PIXELS * cap * 2);
                if (!nb) goto fail;
                buf = nb;
                cap *= 2;
            }
            if (fast_image(in, buf + count * DS_PIXELS)) goto fail;
            count++;
        } while (fast_eat(in, ','));
        if (!fast_eat(in, ']')) goto fail;
    }
    *x = buf;
    *n = count;
    return 0;
fail:
    free(buf);
    return -1;
}

int predict_decode_fast(const char *buf, size_t len, unsigned max_batch,
                        float **x, size_t *n, char run_id[32])
{
    fast_in in = {buf, buf + len};
    int have_run = 0;
    float *px = NULL;
    size_t count = 0;
    *x = NULL;
    *n = 0;
    run_id[0] = 0;
    if (!fast_eat(&in, '{')) return PREDICT_FALLBACK;
    do {
        if (!fast_eat(&in, '"')) goto fallback;
        const char *key = in.p;
        while (in.p < in.end && *in.p != '"' && *in.p != '\\') in.p++;
        if (in.p >= in.end || *in.p != '"') goto fallback;
        size_t klen = (size_t)(in.p - key);
        in.p++;
        if (!fast_eat(&in, ':')) goto fallback;
        if (klen == 3 && memcmp(key, "run", 3) == 0 && !have_run) {
            if (!fast_eat(&in, '"')) goto fallback;
            size_t k = 0;
            while (in.p < in.end && *in.p >= '0' && *in.p <= '9' && k < 31)
                run_id[k++] = *in.p++;
            run_id[k] = 0;
            if (k == 0 || in.p >= in.end || *in.p != '"') goto fallback;
            in.p++;
            have_run = 1;
        } else if (klen == 6 && memcmp(key, "pixels", 6) == 0 && !px) {
            if (fast_pixels(&in, max_batch, &px, &count)) goto fallback;
        } else {
            goto fallback;
        }
    } while (fast_eat(&in, ','));
    if (!fast_eat(&in, '}') || !px) goto fallback;
    fast_ws(&in);
    if (in.p != in.end) goto fallback;
    *x = px;
    *n = count;
    return PREDICT_OK;
fallback:
    free(px);
    run_id[0] = 0;
    return PREDICT_FALLBACK;
}
