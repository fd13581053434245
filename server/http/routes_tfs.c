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
        store_model m;
        store_model_version *vs = NULL;
        size_t nv = 0;
        mn_err err = {{0}};
        if (store_model_get(http_db(c), c->arg, &m, &vs, &nv, NULL, NULL,
                            &err)) {
            json_decref(list);
            return http_error_text(c, 503, "%s", err.msg);
        }
        for (size_t i = nv; i-- > 0;)
            json_array_append_new(list, version_status(vs[i].version));
        store_model_free(&m);
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

/* The probabilities of one image as a JSON array. */
static json_t *probs_json(const float *p, int K)
{
    json_t *a = json_array();
    for (int k = 0; k < K; k++) json_array_append_new(a, json_real(p[k]));
    return a;
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
    json_t *reply;
    if (columnar) {
        json_t *ps = json_array(), *cs = json_array();
        for (size_t i = 0; i < n; i++) {
            const float *p = out.probs + i * (size_t)out.K;
            json_array_append_new(ps, probs_json(p, out.K));
            json_array_append_new(cs, json_integer(eval_argmax(p, out.K)));
        }
        reply = json_pack("{s:{s:o, s:o}}", "outputs", "probabilities", ps,
                          "class", cs);
    } else {
        json_t *preds = json_array();
        for (size_t i = 0; i < n; i++) {
            const float *p = out.probs + i * (size_t)out.K;
            json_array_append_new(
                preds, json_pack("{s:o, s:i}", "probabilities",
                                 probs_json(p, out.K), "class",
                                 eval_argmax(p, out.K)));
        }
        reply = json_pack("{s:o}", "predictions", preds);
    }
    rc = http_json(c, 200, reply);
done:
    free(out.probs);
    free(x);
    json_decref(body);
    return rc;
}
