/* routes_tfs.c: TensorFlow Serving's REST API over the named models of
 * routes_models.c: model status, metadata (one signature,
 * serving_default) and predict in the row (`instances` -> `predictions`)
 * and columnar (`inputs` -> `outputs`) formats. A version is named by
 * number (/versions/<v>) or by alias (/labels/<alias>). This file is the
 * codec of that protocol over the inference core
 * (server/serving/infer.h); errors are TF Serving's
 * {"error": "<message>"}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"
#include "engine/eval.h"
#include "server/app.h"
#include "server/http/routes.h"
#include "server/http/tensor_decode.h"
#include "server/render/enc.h"

/* The run serving the path's model: c->arg2 is a version, or (the route's
 * pattern has /labels/) an alias. As models_target. */
static int tfs_target(http_ctx *c, char run[24], int64_t *v,
                      enum MHD_Result *rc)
{
    int label = strstr(c->req->route->pattern, "/labels/") != NULL;
    return models_target(c, label ? NULL : c->arg2, label ? c->arg2 : NULL,
                         run, v, rc);
}

/* One version's status entry, as TF Serving's GetModelStatus gives it. */
static json_t *version_status(int64_t version)
{
    char vs[24];
    snprintf(vs, sizeof vs, "%lld", (long long)version);
    return json_pack("{s:s, s:s, s:{s:s, s:s}}", "version", vs, "state",
                     "AVAILABLE", "status", "error_code", "OK",
                     "error_message", "");
}

enum MHD_Result tfs_status(http_ctx *c)
{
    enum MHD_Result rc;
    char run[24];
    int64_t v;
    if (!tfs_target(c, run, &v, &rc)) return rc;
    json_t *list = json_array();
    if (c->arg2[0]) {
        json_array_append_new(list, version_status(v));
    } else { /* every version, newest first */
        int64_t *vs;
        size_t nv;
        if (!models_versions(c, &vs, &nv, &rc)) {
            json_decref(list);
            return rc;
        }
        for (size_t i = nv; i-- > 0;)
            json_array_append_new(list, version_status(vs[i]));
        free(vs);
    }
    return http_json(c, 200, json_pack("{s:o}", "model_version_status", list));
}

/* A tensor's TensorInfo: dtype and shape (-1: any size). */
static json_t *tensor_info(const char *name, const char *dtype, int rank,
                           int dim)
{
    json_t *dims = json_pack("[{s:s}]", "size", "-1");
    if (rank == 2) {
        char d[16];
        snprintf(d, sizeof d, "%d", dim);
        json_array_append_new(dims, json_pack("{s:s}", "size", d));
    }
    return json_pack("{s:s, s:s, s:{s:o}}", "name", name, "dtype", dtype,
                     "tensor_shape", "dim", dims);
}

enum MHD_Result tfs_metadata(http_ctx *c)
{
    enum MHD_Result rc;
    char run[24];
    int64_t v;
    if (!tfs_target(c, run, &v, &rc)) return rc;
    char vs[24];
    snprintf(vs, sizeof vs, "%lld", (long long)v);
    json_t *sig = json_pack(
        "{s:{s:o}, s:{s:o, s:o}, s:s}", "inputs", "pixels",
        tensor_info("pixels", "DT_FLOAT", 2, DS_PIXELS), "outputs",
        "probabilities", tensor_info("probabilities", "DT_FLOAT", 2,
                                     DS_CLASSES),
        "class", tensor_info("class", "DT_INT64", 1, 0), "method_name",
        "tensorflow/serving/predict");
    return http_json(
        c, 200,
        json_pack("{s:{s:s, s:s, s:s}, s:{s:{s:{s:o}}}}", "model_spec",
                  "name", c->arg, "signature_name", "", "version", vs,
                  "metadata", "signature_def", "signature_def",
                  "serving_default", sig));
}

/* The reply to a predict of n images (probs [n, K]), written by hand (the
 * inference hot path): {"predictions": [{"probabilities", "class"}...]}
 * or, columnar, {"outputs": {"probabilities": [[...]...], "class": [...]}}.
 * A new malloc'd string of *len bytes, or NULL on OOM. */
static char *reply_text(const float *probs, size_t n, int K, int columnar,
                        size_t *len)
{
    char *buf = malloc(64 + n * ((size_t)K * 25 + 48)), *o = buf;
    if (!buf) return NULL;
#define PUT(lit) (memcpy(o, lit, sizeof lit - 1), o += sizeof lit - 1)
    if (columnar) PUT("{\"outputs\":{\"probabilities\":[");
    else PUT("{\"predictions\":[");
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * (size_t)K;
        if (i) *o++ = ',';
        if (!columnar) PUT("{\"probabilities\":");
        *o++ = '[';
        o += enc_probs(o, p, (size_t)K);
        *o++ = ']';
        if (!columnar) {
            PUT(",\"class\":");
            o += enc_u64(o, (uint64_t)eval_argmax(p, K));
            *o++ = '}';
        }
    }
    if (columnar) {
        PUT("],\"class\":[");
        for (size_t i = 0; i < n; i++) {
            if (i) *o++ = ',';
            o += enc_u64(o, (uint64_t)eval_argmax(probs + i * (size_t)K, K));
        }
        PUT("]}}");
    } else {
        PUT("]}");
    }
#undef PUT
    *len = (size_t)(o - buf);
    return buf;
}

enum MHD_Result tfs_predict(http_ctx *c)
{
    enum MHD_Result rc;
    float *x = NULL;
    size_t n = 0;
    int columnar = 0;
    infer_output out = {0, 0, NULL};
    char msg[600];
    size_t len;
    const char *text = http_body_text(c, &len);
    json_t *body = NULL;
    int s = tfs_decode_fast(text, len, c->app->cfg.max_batch, &x, &n,
                            &columnar);
    if (s == TENSOR_FALLBACK) {
        json_error_t je;
        if (!(body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)))
            return http_error_text(c, 400, "the body is not valid JSON: %s "
                                   "(line %d, column %d)", je.text, je.line,
                                   je.column);
        s = tfs_decode(body, c->app->cfg.max_batch, &x, &n, &columnar, msg,
                       sizeof msg);
    }
    if (s) {
        rc = http_error_text(c, s == TENSOR_NO_MEMORY ? 503 : 400, "%s", msg);
        goto done;
    }
    char run[24];
    int64_t v;
    if (!tfs_target(c, run, &v, &rc)) goto done;
    infer_src src = runs_infer_src(c);
    infer_input in = {x, NULL, n, DS_PIXELS};
    mn_err err = {{0}};
    infer_status st = infer_predict(&src, run, &in, &out, &err);
    if (st) {
        const char *code;
        rc = http_error_text(c, runs_infer_http(st, &code), "%s", err.msg);
        goto done;
    }
    size_t rlen = 0;
    char *reply = reply_text(out.probs, n, out.K, columnar, &rlen);
    rc = reply ? http_bytes_owned(c, 200, "application/json", reply, rlen,
                                  NULL, NULL)
               : http_error_text(c, 503, "no memory for the reply");
done:
    free(out.probs);
    free(x);
    json_decref(body);
    return rc;
}
