/* tensor_decode.c: the v2 and TensorFlow Serving request decoders (see
 * tensor_decode.h). */
#include "server/http/tensor_decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"
#include "server/http/predict_decode.h"

/* Nesting a tensor's data may have: [N][1][28][28] and one for luck. */
#define TENSOR_MAX_DEPTH 5

/* Writes a reason into msg and returns TENSOR_BAD. */
static int bad(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return TENSOR_BAD;
}

/* Where flatten writes: cap values into xf (floats 0..1) or xb (uint8
 * 0..255), *k written so far. */
typedef struct flat_out {
    float *xf;
    uint8_t *xb;
    size_t cap, k;
} flat_out;

/* Copies the numbers of a (a number or nested arrays of them, row-major)
 * into o, checking each: a float in 0..1, or (xb) an integer 0..255.
 * what names the tensor in messages. TENSOR_OK or TENSOR_BAD. */
static int flatten(const json_t *a, int depth, flat_out *o, const char *what,
                   char *msg, size_t msglen)
{
    if (json_is_array(a)) {
        if (depth >= TENSOR_MAX_DEPTH)
            return bad(msg, msglen, "%s is nested more than %d deep", what,
                       TENSOR_MAX_DEPTH);
        size_t i;
        const json_t *v;
        json_array_foreach(a, i, v)
            if (flatten(v, depth + 1, o, what, msg, msglen)) return TENSOR_BAD;
        return TENSOR_OK;
    }
    if (o->k >= o->cap)
        return bad(msg, msglen, "%s has more values than its shape holds "
                   "(%zu)", what, o->cap);
    if (o->xb) {
        json_int_t v = json_integer_value(a);
        if (!json_is_integer(a) || v < 0 || v > 255)
            return bad(msg, msglen, "%s[%zu] is not an integer in 0..255 "
                       "(UINT8)", what, o->k);
        o->xb[o->k++] = (uint8_t)v;
        return TENSOR_OK;
    }
    if (!json_is_number(a))
        return bad(msg, msglen, "%s[%zu] is not a number", what, o->k);
    double f = json_number_value(a);
    if (!(f >= 0.0 && f <= 1.0))
        return bad(msg, msglen, "%s[%zu] = %g is outside 0..1", what, o->k,
                   f);
    o->xf[o->k++] = (float)f;
    return TENSOR_OK;
}

/* Checks a v2 shape: [N, 784], [N, 28, 28] or [N, 1, 28, 28] with
 * 1 <= N <= max_batch; *n receives N. */
static int v2_shape(const json_t *shape, unsigned max_batch, size_t *n,
                    char *msg, size_t msglen)
{
    static const int64_t forms[3][4] = {
        {DS_PIXELS}, {DS_ROWS, DS_COLS}, {1, DS_ROWS, DS_COLS}};
    size_t rank = json_array_size(shape);
    const char *rule = "shape must be [N, 784], [N, 28, 28] or "
                       "[N, 1, 28, 28]";
    if (!json_is_array(shape) || rank < 2 || rank > 4)
        return bad(msg, msglen, "%s", rule);
    for (size_t i = 0; i < rank; i++)
        if (!json_is_integer(json_array_get(shape, i)))
            return bad(msg, msglen, "%s: shape[%zu] is not an integer", rule,
                       i);
    for (size_t i = 1; i < rank; i++)
        if (json_integer_value(json_array_get(shape, i)) !=
            forms[rank - 2][i - 1])
            return bad(msg, msglen, "%s", rule);
    json_int_t N = json_integer_value(json_array_get(shape, 0));
    if (N < 1 || N > (json_int_t)max_batch)
        return bad(msg, msglen, "shape[0] = %lld images; it must be 1..%u",
                   (long long)N, max_batch);
    *n = (size_t)N;
    return TENSOR_OK;
}

/* Is v a JSON true in obj's "parameters" under key? -1 when present and
 * not a boolean. */
static int param_bool(const json_t *obj, const char *key, int dflt)
{
    const json_t *p = json_object_get(obj, "parameters");
    const json_t *v = json_is_object(p) ? json_object_get(p, key) : NULL;
    if (!v) return dflt;
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

/* Reads the request's "outputs" into r->outputs and r->binary. */
static int v2_outputs(const json_t *h, v2_request *r, char *msg,
                      size_t msglen)
{
    int all_binary = param_bool(h, "binary_data_output", 0);
    if (all_binary < 0)
        return bad(msg, msglen, "parameters.binary_data_output must be a "
                   "boolean");
    const json_t *outs = json_object_get(h, "outputs");
    if (!outs || json_array_size(outs) == 0) {
        if (outs && !json_is_array(outs))
            return bad(msg, msglen, "outputs must be an array");
        r->outputs = TENSOR_OUT_PROBABILITIES | TENSOR_OUT_CLASS;
        r->binary = all_binary ? r->outputs : 0;
        return TENSOR_OK;
    }
    size_t i;
    const json_t *o;
    json_array_foreach(outs, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        unsigned bit = !name ? 0
                       : strcmp(name, "probabilities") == 0
                           ? TENSOR_OUT_PROBABILITIES
                       : strcmp(name, "class") == 0 ? TENSOR_OUT_CLASS : 0;
        if (!json_is_object(o) || !bit)
            return bad(msg, msglen, "outputs[%zu] must name \"probabilities\""
                       " or \"class\"", i);
        int b = param_bool(o, "binary_data", all_binary);
        if (b < 0)
            return bad(msg, msglen, "outputs[%zu].parameters.binary_data "
                       "must be a boolean", i);
        r->outputs |= bit;
        if (b) r->binary |= bit;
    }
    return TENSOR_OK;
}

/* Reads a binary tensor of `size` bytes from *tail (*left bytes left)
 * into r (datatype u8 or FP32), count values. */
static int v2_binary(const uint8_t **tail, size_t *left, json_int_t size,
                     int u8, size_t count, v2_request *r, char *msg,
                     size_t msglen)
{
    size_t need = count * (u8 ? 1 : 4);
    if (size < 0 || (uint64_t)size != need)
        return bad(msg, msglen, "binary_data_size is %lld bytes; the shape "
                   "and datatype need %zu", (long long)size, need);
    if (need > *left)
        return bad(msg, msglen, "the body holds %zu bytes of binary data; "
                   "the input needs %zu", *left, need);
    const uint8_t *p = *tail;
    if (u8) {
        memcpy(r->bytes, p, need);
    } else {
        for (size_t i = 0; i < count; i++, p += 4) {
            uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                         (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            float f;
            memcpy(&f, &u, sizeof f);
            if (!(f >= 0.0f && f <= 1.0f))
                return bad(msg, msglen, "input value %zu = %g is outside "
                           "0..1", i, (double)f);
            r->x[i] = f;
        }
    }
    *tail += need;
    *left -= need;
    return TENSOR_OK;
}

/* Decodes the one input into r (header checked to be an object). */
static int v2_input(const json_t *h, const uint8_t *tail, size_t left,
                    unsigned max_batch, v2_request *r, char *msg,
                    size_t msglen)
{
    const json_t *inputs = json_object_get(h, "inputs");
    if (!json_is_array(inputs))
        return bad(msg, msglen, "inputs must be an array of one tensor");
    if (json_array_size(inputs) != 1)
        return bad(msg, msglen, "inputs has %zu tensors; the model takes one "
                   "(pixels)", json_array_size(inputs));
    const json_t *in = json_array_get(inputs, 0);
    if (!json_is_object(in) || !json_is_string(json_object_get(in, "name")))
        return bad(msg, msglen, "inputs[0] must be an object with a name");
    /* Triton and KServe answer 400 for an input the model does not declare;
     * the metadata names ours "pixels". */
    const char *name = json_string_value(json_object_get(in, "name"));
    if (strcmp(name, "pixels") != 0)
        return bad(msg, msglen, "inputs[0] is named '%s'; the model's input "
                   "is \"pixels\"", name);
    const char *dt = json_string_value(json_object_get(in, "datatype"));
    int u8 = dt && strcmp(dt, "UINT8") == 0;
    if (!dt || (!u8 && strcmp(dt, "FP32") != 0))
        return bad(msg, msglen, "datatype %s%s%s is not accepted: send FP32 "
                   "(0..1) or UINT8 (0..255)", dt ? "'" : "",
                   dt ? dt : "(none)", dt ? "'" : "");
    int rc = v2_shape(json_object_get(in, "shape"), max_batch, &r->n, msg,
                      msglen);
    if (rc) return rc;
    size_t count = r->n * DS_PIXELS;
    if (u8)
        r->bytes = malloc(count);
    else
        r->x = malloc(count * sizeof(float));
    if (!r->bytes && !r->x)
        return snprintf(msg, msglen, "no memory for %zu images", r->n),
               TENSOR_NO_MEMORY;
    const json_t *params = json_object_get(in, "parameters");
    const json_t *size = json_is_object(params)
                             ? json_object_get(params, "binary_data_size")
                             : NULL;
    const json_t *data = json_object_get(in, "data");
    if (size) {
        if (data)
            return bad(msg, msglen, "inputs[0] has both data and "
                       "binary_data_size");
        if (!json_is_integer(size))
            return bad(msg, msglen, "binary_data_size must be an integer");
        rc = v2_binary(&tail, &left, json_integer_value(size), u8, count, r,
                       msg, msglen);
        if (rc) return rc;
    } else {
        if (!json_is_array(data))
            return bad(msg, msglen, "inputs[0].data must be an array (or give"
                       " parameters.binary_data_size)");
        flat_out o = {r->x, r->bytes, count, 0};
        if ((rc = flatten(data, 0, &o, "data", msg, msglen))) return rc;
        if (o.k != count)
            return bad(msg, msglen, "data has %zu values; shape [%zu, ...] "
                       "needs %zu", o.k, r->n, count);
    }
    if (left)
        return bad(msg, msglen, "%zu bytes of binary data follow that no "
                   "input claims", left);
    return TENSOR_OK;
}

int v2_decode(const char *body, size_t len, size_t header_len,
              unsigned max_batch, v2_request *out, char *msg, size_t msglen)
{
    int rc = TENSOR_BAD;
    memset(out, 0, sizeof *out);
    if (header_len > len) {
        rc = bad(msg, msglen, "Inference-Header-Content-Length %zu exceeds "
                 "the body's %zu bytes", header_len, len);
        goto done;
    }
    size_t jlen = header_len ? header_len : len;
    json_error_t je;
    out->header = json_loadb(body, jlen, JSON_REJECT_DUPLICATES, &je);
    if (!out->header) {
        rc = bad(msg, msglen, "the request is not valid JSON: %s (line %d, "
                 "column %d)", je.text, je.line, je.column);
        goto done;
    }
    if (!json_is_object(out->header)) {
        rc = bad(msg, msglen, "the request must be a JSON object");
        goto done;
    }
    const json_t *id = json_object_get(out->header, "id");
    if (id && !json_is_string(id)) {
        rc = bad(msg, msglen, "id must be a string");
        goto done;
    }
    out->id = json_string_value(id);
    if ((rc = v2_outputs(out->header, out, msg, msglen))) goto done;
    rc = v2_input(out->header, (const uint8_t *)body + jlen, len - jlen,
                  max_batch, out, msg, msglen);
done:
    if (rc) v2_request_free(out);
    return rc;
}

void v2_request_free(v2_request *r)
{
    json_decref(r->header);
    free(r->x);
    free(r->bytes);
    memset(r, 0, sizeof *r);
}

int tfs_decode(const json_t *body, unsigned max_batch, float **x, size_t *n,
               int *columnar, char *msg, size_t msglen)
{
    *x = NULL;
    *n = 0;
    *columnar = 0;
    if (!json_is_object(body))
        return bad(msg, msglen, "the body must be a JSON object with "
                   "\"instances\" or \"inputs\"");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "instances") && strcmp(key, "inputs") &&
            strcmp(key, "signature_name"))
            return bad(msg, msglen, "unknown field '%s'", key);
    }
    const json_t *sig = json_object_get(body, "signature_name");
    if (sig && (!json_is_string(sig) ||
                strcmp(json_string_value(sig), "serving_default")))
        return bad(msg, msglen, "signature_name must be \"serving_default\"");
    const json_t *rows = json_object_get(body, "instances"),
                 *cols = json_object_get(body, "inputs");
    if (rows && cols)
        return bad(msg, msglen, "give \"instances\" (row format) or "
                   "\"inputs\" (columnar format), not both");
    if (!rows && !cols)
        return bad(msg, msglen, "give \"instances\" (row format) or "
                   "\"inputs\" (columnar format)");
    const json_t *imgs = rows ? rows : cols;
    if (cols && json_is_object(cols)) {
        if (json_object_size(cols) != 1 ||
            !(imgs = json_object_get(cols, "pixels")))
            return bad(msg, msglen, "inputs names one input, \"pixels\"");
    }
    *columnar = cols != NULL;
    size_t count = json_array_size(imgs);
    if (!json_is_array(imgs) || count == 0)
        return bad(msg, msglen, "%s must be a non-empty array of images",
                   rows ? "instances" : "inputs");
    if (count > max_batch)
        return bad(msg, msglen, "%zu images in one request; the limit is %u",
                   count, max_batch);
    float *buf = malloc(sizeof(float) * count * DS_PIXELS);
    if (!buf)
        return snprintf(msg, msglen, "no memory for %zu images", count),
               TENSOR_NO_MEMORY;
    for (size_t i = 0; i < count; i++) {
        const json_t *img = json_array_get(imgs, i);
        if (rows && json_is_object(img)) {
            if (json_object_size(img) != 1 ||
                !(img = json_object_get(img, "pixels"))) {
                free(buf);
                return bad(msg, msglen, "instances[%zu] names one input, "
                           "\"pixels\"", i);
            }
        }
        char what[40];
        snprintf(what, sizeof what, "%s[%zu]", rows ? "instances" : "inputs",
                 i);
        flat_out o = {buf + i * DS_PIXELS, NULL, DS_PIXELS, 0};
        /* a value's own fault is flatten's message; else the image's */
        int rc = json_is_array(img) ? flatten(img, 1, &o, what, msg, msglen)
                                    : TENSOR_BAD;
        if (rc == TENSOR_OK && o.k == DS_PIXELS) continue;
        if (rc == TENSOR_OK || !json_is_array(img))
            bad(msg, msglen, "%s must be an image of %d numbers in 0..1 "
                "(flat or 28x28)", what, DS_PIXELS);
        free(buf);
        return TENSOR_BAD;
    }
    *x = buf;
    *n = count;
    return TENSOR_OK;
}

/* ---- the fast paths ---- */

/* JSON whitespace. */
static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Eats c after whitespace: 1, or 0 with *p unmoved. */
static int eat(const char **p, char c)
{
    const char *q = skip_ws(*p);
    if (*q != c) return 0;
    *p = q + 1;
    return 1;
}

/* A string of printable ASCII without escapes: its start and length. */
static int plain_string(const char **p, const char **s, size_t *n)
{
    if (!eat(p, '"')) return -1;
    const char *q = *p;
    while (*q >= 0x20 && *q < 0x7f && *q != '"' && *q != '\\') q++;
    if (*q != '"') return -1;
    *s = *p;
    *n = (size_t)(q - *p);
    *p = q + 1;
    return 0;
}

/* A key: "name" then ':'; which is its index in keys (-1: another). */
static int key_of(const char **p, const char *const *keys, int nkeys)
{
    const char *s;
    size_t n;
    if (plain_string(p, &s, &n) || !eat(p, ':')) return -2;
    for (int i = 0; i < nkeys; i++)
        if (strlen(keys[i]) == n && memcmp(keys[i], s, n) == 0) return i;
    return -1;
}

/* '[' n images ']', or (one) a single image; at most max images into a
 * new array *x (free()), *n the count. */
static int scan_images(const char **p, const char *end, int one, size_t max,
                       float **x, size_t *n)
{
    const char *q = skip_ws(*p);
    if (one && q[0] == '[' && skip_ws(q + 1)[0] != '[') {
        if (!(*x = malloc(sizeof(float) * DS_PIXELS))) return -1;
        if (predict_scan_image(p, end, *x)) goto fail;
        *n = 1;
        return 0;
    }
    if (!eat(p, '[')) return -1;
    size_t cap = 4, count = 0;
    *x = malloc(sizeof(float) * DS_PIXELS * cap);
    if (!*x) return -1;
    do {
        if (count == max) goto fail;
        if (count == cap) {
            float *g = realloc(*x, sizeof(float) * DS_PIXELS * cap * 2);
            if (!g) goto fail;
            *x = g;
            cap *= 2;
        }
        if (predict_scan_image(p, end, *x + count * DS_PIXELS)) goto fail;
        count++;
    } while (eat(p, ','));
    if (!eat(p, ']')) goto fail;
    *n = count;
    return 0;
fail:
    free(*x);
    *x = NULL;
    return -1;
}

/* A shape of 2..4 small non-negative integers, as v2_shape accepts it
 * (N in 1..max_batch): *N. */
static int scan_shape(const char **p, unsigned max_batch, size_t *N)
{
    static const int64_t forms[3][4] = {
        {DS_PIXELS}, {DS_ROWS, DS_COLS}, {1, DS_ROWS, DS_COLS}};
    int64_t d[4];
    int rank = 0;
    if (!eat(p, '[')) return -1;
    do {
        const char *q = skip_ws(*p);
        if (rank == 4 || *q < '0' || *q > '9' || (q[0] == '0' && q[1] >= '0'
                                                  && q[1] <= '9'))
            return -1;
        int64_t v = 0;
        for (int k = 0; *q >= '0' && *q <= '9'; q++, k++) {
            if (k == 9) return -1;
            v = v * 10 + (*q - '0');
        }
        if (*q == '.' || *q == 'e' || *q == 'E') return -1;
        d[rank++] = v;
        *p = q;
    } while (eat(p, ','));
    if (!eat(p, ']') || rank < 2) return -1;
    for (int i = 1; i < rank; i++)
        if (d[i] != forms[rank - 2][i - 1]) return -1;
    if (d[0] < 1 || d[0] > (int64_t)max_batch) return -1;
    *N = (size_t)d[0];
    return 0;
}

/* The one input object of the fast v2 form into out. */
static int scan_input(const char **p, const char *end, unsigned max_batch,
                      v2_request *out)
{
    static const char *const keys[] = {"name", "shape", "datatype", "data"};
    int seen = 0;
    size_t N = 0, count = 0;
    if (!eat(p, '{')) return -1;
    do {
        int k = key_of(p, keys, 4);
        if (k < 0 || (seen & 1 << k)) return -1;
        seen |= 1 << k;
        const char *s;
        size_t n;
        if (k == 0 && (plain_string(p, &s, &n) || n != 6 ||
                       memcmp(s, "pixels", 6)))
            return -1;
        if (k == 1 && scan_shape(p, max_batch, &N)) return -1;
        if (k == 2 && (plain_string(p, &s, &n) || n != 4 ||
                       memcmp(s, "FP32", 4)))
            return -1;
        if (k == 3 && scan_images(p, end, 1, max_batch, &out->x, &count))
            return -1;
    } while (eat(p, ','));
    if (!eat(p, '}') || seen != 15 || count != N) return -1;
    out->n = N;
    return 0;
}

int v2_decode_fast(const char *body, size_t len, unsigned max_batch,
                   v2_request *out)
{
    static const char *const keys[] = {"id", "inputs"};
    const char *p = body, *id = NULL, *end = body + len;
    size_t id_len = 0;
    int seen = 0;
    memset(out, 0, sizeof *out);
    if (!eat(&p, '{')) return TENSOR_FALLBACK;
    do {
        int k = key_of(&p, keys, 2);
        if (k < 0 || (seen & 1 << k)) goto fallback;
        seen |= 1 << k;
        if (k == 0 && plain_string(&p, &id, &id_len)) goto fallback;
        if (k == 1 && (!eat(&p, '[') || scan_input(&p, end, max_batch, out) ||
                       !eat(&p, ']')))
            goto fallback;
    } while (eat(&p, ','));
    if (!eat(&p, '}') || !(seen & 2) || skip_ws(p) != end) goto fallback;
    out->header = json_object();
    if (!out->header ||
        (id && json_object_set_new(out->header, "id",
                                   json_stringn(id, id_len))))
        goto fallback;
    out->id = json_string_value(json_object_get(out->header, "id"));
    out->outputs = TENSOR_OUT_PROBABILITIES | TENSOR_OUT_CLASS;
    return TENSOR_OK;
fallback:
    v2_request_free(out);
    return TENSOR_FALLBACK;
}

int tfs_decode_fast(const char *body, size_t len, unsigned max_batch,
                    float **x, size_t *n, int *columnar)
{
    static const char *const keys[] = {"instances", "inputs",
                                       "signature_name"};
    const char *p = body, *end = body + len;
    int seen = 0;
    *x = NULL;
    *n = 0;
    if (!eat(&p, '{')) return TENSOR_FALLBACK;
    do {
        int k = key_of(&p, keys, 3);
        if (k < 0 || (seen & 1 << k) || (k < 2 && (seen & 3))) goto fallback;
        seen |= 1 << k;
        const char *s;
        size_t sn;
        if (k == 2 && (plain_string(&p, &s, &sn) || sn != 15 ||
                       memcmp(s, "serving_default", 15)))
            goto fallback;
        if (k < 2 && scan_images(&p, end, 0, max_batch, x, n)) goto fallback;
    } while (eat(&p, ','));
    if (!eat(&p, '}') || !(seen & 3) || skip_ws(p) != end) goto fallback;
    *columnar = (seen & 2) != 0;
    return TENSOR_OK;
fallback:
    free(*x);
    *x = NULL;
    *n = 0;
    return TENSOR_FALLBACK;
}
