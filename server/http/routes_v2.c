/* routes_v2.c: the Open Inference Protocol v2 (the REST API of KServe and
 * Triton) over the named models of routes_models.c: server metadata and
 * health, model metadata and readiness, and inference with JSON tensors
 * or Triton's binary tensor extension. This file is the codec of that
 * protocol: it decodes with tensor_decode.h, asks the inference core
 * (server/serving/infer.h) and encodes the outputs; errors are the
 * protocol's {"error": "<message>"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"
#include "engine/eval.h"
#include "server/app.h"
#include "server/http/routes.h"
#include "server/http/tensor_decode.h"
#include "server/render/enc.h"

/* The binary tensor extension's header: the JSON part's length. */
#define V2_HEADER_LENGTH "Inference-Header-Content-Length"

/* A tensor's metadata {"name", "datatype", "shape"}; -1: any size. */
static json_t *tensor_meta(const char *name, const char *datatype, int rank,
                           json_int_t dim)
{
    return rank == 1 ? json_pack("{s:s, s:s, s:[i]}", "name", name,
                                 "datatype", datatype, "shape", -1)
                     : json_pack("{s:s, s:s, s:[i, I]}", "name", name,
                                 "datatype", datatype, "shape", -1, dim);
}

enum MHD_Result v2_server(http_ctx *c)
{
    return http_json(c, 200, json_pack("{s:s, s:s, s:[s]}", "name", "mnistd",
                                        "version", "1", "extensions",
                                        "binary_tensor_data"));
}

enum MHD_Result v2_live(http_ctx *c)
{
    return http_json(c, 200, json_pack("{s:b}", "live", 1));
}

enum MHD_Result v2_ready(http_ctx *c)
{
    if (!http_db(c))
        return http_error_text(c, 503, "the database is unavailable");
    return http_json(c, 200, json_pack("{s:b}", "ready", 1));
}

enum MHD_Result v2_model(http_ctx *c)
{
    enum MHD_Result rc;
    char run[24];
    int64_t v;
    if (!models_target(c, c->arg2, NULL, run, &v, &rc)) return rc;
    json_t *versions = json_array();
    if (c->arg2[0]) {
        json_array_append_new(versions, json_string(c->arg2));
    } else {
        int64_t *vs;
        size_t nv;
        if (!models_versions(c, &vs, &nv, &rc)) {
            json_decref(versions);
            return rc;
        }
        for (size_t i = 0; i < nv; i++) {
            char s[24];
            snprintf(s, sizeof s, "%lld", (long long)vs[i]);
            json_array_append_new(versions, json_string(s));
        }
        free(vs);
    }
    return http_json(
        c, 200,
        json_pack("{s:s, s:o, s:s, s:[o], s:[o, o]}", "name", c->arg,
                  "versions", versions, "platform", "mnistd", "inputs",
                  tensor_meta("pixels", "FP32", 2, DS_PIXELS), "outputs",
                  tensor_meta("probabilities", "FP32", 2, DS_CLASSES),
                  tensor_meta("class", "INT64", 1, 0)));
}

enum MHD_Result v2_model_ready(http_ctx *c)
{
    enum MHD_Result rc;
    char run[24];
    int64_t v;
    if (!models_target(c, c->arg2, NULL, run, &v, &rc)) return rc;
    return http_json(c, 200, json_pack("{s:s, s:b}", "name", c->arg,
                                       "ready", 1));
}

/* Appends the literal string s. */
static char *put(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

/* Appends x as 4 little-endian bytes. */
static uint8_t *put_f32(uint8_t *o, float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    for (int i = 0; i < 4; i++) *o++ = (uint8_t)(u >> 8 * i);
    return o;
}

/* Appends x as 8 little-endian bytes. */
static uint8_t *put_i64(uint8_t *o, int64_t x)
{
    uint64_t u = (uint64_t)x;
    for (int i = 0; i < 8; i++) *o++ = (uint8_t)(u >> 8 * i);
    return o;
}

/* Appends one output tensor's JSON: its data, or (binary) its size in
 * parameters.binary_data_size with its bytes appended at *tail. */
static char *put_output(char *o, unsigned which, unsigned binary,
                        const float *probs, size_t n, int K, uint8_t **tail)
{
    int is_probs = which == TENSOR_OUT_PROBABILITIES;
    o = put(o, is_probs ? "{\"name\":\"probabilities\",\"datatype\":\"FP32\","
                          "\"shape\":["
                        : "{\"name\":\"class\",\"datatype\":\"INT64\","
                          "\"shape\":[");
    o += enc_u64(o, n);
    if (is_probs) {
        *o++ = ',';
        o += enc_u64(o, (uint64_t)K);
    }
    o = put(o, "],");
    if (binary & which) {
        uint8_t *start = *tail;
        for (size_t i = 0; i < n; i++) {
            const float *p = probs + i * (size_t)K;
            if (!is_probs)
                *tail = put_i64(*tail, eval_argmax(p, K));
            else
                for (int k = 0; k < K; k++) *tail = put_f32(*tail, p[k]);
        }
        o = put(o, "\"parameters\":{\"binary_data_size\":");
        o += enc_u64(o, (uint64_t)(*tail - start));
        return put(o, "}}");
    }
    o = put(o, "\"data\":[");
    if (is_probs) {
        o += enc_probs(o, probs, n * (size_t)K);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i) *o++ = ',';
            o += enc_u64(o, (uint64_t)eval_argmax(probs + i * (size_t)K, K));
        }
    }
    return put(o, "]}");
}

/* Replies with the outputs q asked for, written by hand (the inference
 * hot path): JSON, or the JSON header and the binary outputs after it
 * (Inference-Header-Content-Length: the header's length). The model name
 * is a registered one (safe in JSON as it is); the id is escaped. */
static enum MHD_Result reply_infer(http_ctx *c, const v2_request *q,
                                   int64_t version, const infer_output *out,
                                   size_t n)
{
    json_t *jid = q->id ? json_string(q->id) : NULL;
    char *id = jid ? json_dumps(jid, JSON_ENCODE_ANY) : NULL;
    json_decref(jid);
    size_t K = (size_t)out->K;
    size_t json_cap = 256 + strlen(c->arg) + (id ? strlen(id) : 0) +
                      n * (K * 25 + 21);
    size_t bin_cap = n * K * 4 + n * 8;
    char *buf = (!q->id || id) ? malloc(json_cap + bin_cap) : NULL;
    if (!buf) {
        free(id);
        return http_error_text(c, 503, "no memory for the reply");
    }
    uint8_t *bin = malloc(bin_cap ? bin_cap : 1), *tail = bin;
    char *o = buf;
    o = put(o, "{\"model_name\":\"");
    o = put(o, c->arg);
    o = put(o, "\",\"model_version\":\"");
    o += enc_u64(o, (uint64_t)version);
    *o++ = '"';
    if (id) {
        o = put(o, ",\"id\":");
        o = put(o, id);
    }
    o = put(o, ",\"outputs\":[");
    static const unsigned order[] = {TENSOR_OUT_PROBABILITIES,
                                     TENSOR_OUT_CLASS};
    int first = 1;
    for (size_t i = 0; i < 2 && bin; i++) {
        if (!(q->outputs & order[i])) continue;
        if (!first) *o++ = ',';
        first = 0;
        o = put_output(o, order[i], q->binary, out->probs, n, out->K, &tail);
    }
    o = put(o, "]}");
    free(id);
    if (!bin) {
        free(buf);
        return http_error_text(c, 503, "no memory for the reply");
    }
    size_t hlen = (size_t)(o - buf), blen = (size_t)(tail - bin);
    memcpy(o, bin, blen);
    free(bin);
    if (!q->binary)
        return http_bytes_owned(c, 200, "application/json", buf, hlen, NULL,
                                NULL);
    char hl[24];
    snprintf(hl, sizeof hl, "%zu", hlen);
    return http_bytes_owned(c, 200, "application/octet-stream", buf,
                            hlen + blen, V2_HEADER_LENGTH, hl);
}

enum MHD_Result v2_infer(http_ctx *c)
{
    enum MHD_Result rc;
    v2_request q;
    infer_output out = {0, 0, NULL};
    char msg[600];

    const char *hl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND,
                                                 V2_HEADER_LENGTH);
    size_t header_len = 0;
    if (hl) {
        char *end;
        unsigned long long v = strtoull(hl, &end, 10);
        if (!*hl || *end || v == 0 || v > c->req->len)
            return http_error_text(c, 400, V2_HEADER_LENGTH " must be the "
                                   "JSON header's length in bytes, 1..%zu",
                                   c->req->len);
        header_len = (size_t)v;
    }
    size_t len;
    const char *body = hl ? (c->req->body ? c->req->body : "")
                          : http_body_text(c, &len);
    if (hl) len = c->req->len;
    int s = hl ? TENSOR_FALLBACK
               : v2_decode_fast(body, len, c->app->cfg.max_batch, &q);
    if (s == TENSOR_FALLBACK)
        s = v2_decode(body, len, header_len, c->app->cfg.max_batch, &q, msg,
                      sizeof msg);
    if (s)
        return http_error_text(c, s == TENSOR_NO_MEMORY ? 503 : 400, "%s",
                               msg);
    char run[24];
    int64_t version;
    if (!models_target(c, c->arg2, NULL, run, &version, &rc)) goto done;
    infer_src src = runs_infer_src(c);
    infer_input in = {q.x, q.bytes, q.n, DS_PIXELS};
    mn_err err = {{0}};
    infer_status st = infer_predict(&src, run, &in, &out, &err);
    if (st) {
        const char *code;
        rc = http_error_text(c, runs_infer_http(st, &code), "%s", err.msg);
        goto done;
    }
    rc = reply_infer(c, &q, version, &out, q.n);
done:
    free(out.probs);
    v2_request_free(&q);
    return rc;
}
