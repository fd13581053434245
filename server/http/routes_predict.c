/* routes_predict.c: POST /predict: classify one image or a batch with a
 * succeeded run's model. Pixels come as JSON numbers in 0..1 (one array of
 * 784, or an array of such arrays) or, with Content-Type
 * application/octet-stream, as raw uint8 rows of 784 bytes (the run in the
 * `run` query parameter). This file is the codec of that protocol: it
 * decodes the body, asks the inference core (server/serving/infer.h) and
 * encodes its probabilities or its error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/render/enc.h"
#include "engine/eval.h"
#include "server/http/predict_decode.h"
#include "server/http/auth.h"
#include "server/http/routes.h"
#include "server/serving/infer.h"

/* The reply {"run": id, "predictions": [{"class", "probabilities"}...]}
 * for n rows of probabilities, written by hand (the predict hot path):
 * a new malloc'd string of *len bytes, or NULL on OOM. probs: [n, K] */
static char *reply_text(int64_t id, const float *probs, size_t n, int K,
                        size_t *len)
{
    size_t cap = 64 + n * (40 + (size_t)K * 24);
    char *buf = malloc(cap), *o = buf;
    if (!buf) return NULL;
    static const char run_key[] = "{\"run\":\"";
    static const char preds_key[] = "\",\"predictions\":[";
    memcpy(o, run_key, sizeof run_key - 1);
    o += sizeof run_key - 1;
    o += enc_u64(o, (uint64_t)id);
    memcpy(o, preds_key, sizeof preds_key - 1);
    o += sizeof preds_key - 1;
    static const char head[] = "{\"class\":";
    static const char probs_key[] = ",\"probabilities\":[";
    for (size_t i = 0; i < n; i++) {
        const float *p = probs + i * (size_t)K;
        if (i) *o++ = ',';
        memcpy(o, head, sizeof head - 1);
        o += sizeof head - 1;
        o += enc_u64(o, (uint64_t)eval_argmax(p, K));
        memcpy(o, probs_key, sizeof probs_key - 1);
        o += sizeof probs_key - 1;
        o += enc_probs(o, p, (size_t)K);
        *o++ = ']';
        *o++ = '}';
    }
    *o++ = ']';
    *o++ = '}';
    *len = (size_t)(o - buf);
    return buf;
}

/* Decodes the request: in gets the images (floats in *x, new, which the
 * caller frees; or the body's raw bytes, borrowed) and *run the run named
 * (NULL: none; borrowed from the query, run_buf or *body, which the
 * caller releases): the run given, or the one that serves the model given
 * (the body's "model", "version", "alias"). Returns 1, or 0 after replying
 * 400/404/503 (*rc). */
/* Resolves a model's version (0: the highest) or alias to its run, written
 * into run_buf (*run points at it; *via_model set). 1, or 0 after replying
 * 404/503 (*rc). */
static int resolve_model(http_ctx *c, const char *model, int64_t version,
                         const char *alias, char run_buf[32], const char **run,
                         int *via_model, enum MHD_Result *rc)
{
    infer_src src = runs_infer_src(c);
    mn_err err = {{0}};
    int64_t v;
    /* another user's model is one that does not exist; an admin's is
     * everyone's to predict with (auth.h) */
    store *db = http_db_or_reply(c, rc);
    if (!db) return 0;
    int may = auth_may_read(c, db, STORE_OWNED_MODEL, model, &err);
    if (may <= 0) {
        if (may == 0) mn_errf(&err, "no model '%s'", model);
        *rc = may == 0 ? runs_infer_error(c, INFER_NOT_FOUND, &err)
                       : http_store_error(c, may, &err, NULL, NULL);
        return 0;
    }
    infer_status st = infer_resolve_model(&src, model, version, alias,
                                          run_buf, &v, &err);
    if (st) {
        *rc = runs_infer_error(c, st, &err);
        return 0;
    }
    *run = run_buf;
    *via_model = 1;
    return 1;
}

/* The run a user's request may predict with: one of its own (another
 * user's is answered 404 as if it did not exist), the one behind a model
 * it may read (via_model), or, when none is named, its newest succeeded
 * run (written into run_buf). Admins and a server without users: any run,
 * the newest of all. 1, or 0 after replying (*rc). */
static int predict_run_allowed(http_ctx *c, int via_model, const char **run,
                               char run_buf[32], enum MHD_Result *rc)
{
    if (c->req->role != AUTH_USER || via_model) return 1;
    store *db = http_db_or_reply(c, rc);
    if (!db) return 0;
    mn_err err = {{0}};
    if (*run) {
        int may = auth_may_read(c, db, STORE_OWNED_RUN, *run, &err);
        if (may == 1) return 1;
        if (may == 0) mn_errf(&err, "no run '%s'", *run);
        *rc = may == 0 ? runs_infer_error(c, INFER_NOT_FOUND, &err)
                       : http_store_error(c, may, &err, NULL, NULL);
        return 0;
    }
    int64_t id;
    int s = store_run_newest_succeeded_owned(db, c->req->user, &id, &err);
    if (s == STORE_NOT_FOUND) {
        mn_errf(&err, "no run of yours has succeeded yet: train one with "
                "POST /runs");
        *rc = runs_infer_error(c, INFER_NO_MODEL, &err);
        return 0;
    }
    if (s) {
        *rc = http_store_error(c, s, &err, NULL, NULL);
        return 0;
    }
    snprintf(run_buf, 32, "%lld", (long long)id);
    *run = run_buf;
    return 1;
}

static int decode(http_ctx *c, infer_input *in, float **x, const char **run,
                  char run_buf[32], json_t **body, int *via_model,
                  enum MHD_Result *rc)
{
    char msg[600];
    if (c->req->is_binary) {
        /* the run, or a model's version or alias, in the query */
        *run = http_query(c, "run");
        const char *model = http_query(c, "model");
        const char *version = http_query(c, "version");
        const char *alias = http_query(c, "alias");
        int64_t v = 0;
        if (model && *run) {
            *rc = http_error(c, 400, "bad_query", "give run or model, not both");
            return 0;
        }
        if (!model && (version || alias)) {
            *rc = http_error(c, 400, "bad_query", "version and alias go with "
                             "model");
            return 0;
        }
        if (version && alias) {
            *rc = http_error(c, 400, "bad_query", "give version or alias, "
                             "not both");
            return 0;
        }
        if (version && !(v = infer_parse_id(version))) {
            *rc = http_error(c, 400, "bad_query", "version must be a version "
                             "number (1, 2, ...)");
            return 0;
        }
        if (model && !resolve_model(c, model, v, alias, run_buf, run, via_model,
                                   rc))
            return 0;
        if (c->req->len == 0 || c->req->len % (size_t)in->P) {
            *rc = http_error(c, 400, "bad_pixels", "an octet-stream body must "
                             "be n x %d bytes, got %zu", in->P, c->req->len);
            return 0;
        }
        in->n = c->req->len / (size_t)in->P;
        if (in->n > c->app->cfg.max_batch) {
            *rc = http_error(c, 400, "bad_pixels", "%zu images in one request; "
                             "the limit is %u", in->n, c->app->cfg.max_batch);
            return 0;
        }
        in->bytes = (const uint8_t *)c->req->body;
        return 1;
    }
    size_t text_len;
    const char *text = http_body_text(c, &text_len); /* JSON, past a BOM */
    if (predict_decode_fast(text, text_len, c->app->cfg.max_batch, x, &in->n,
                            run_buf) == PREDICT_OK) {
        *run = run_buf[0] ? run_buf : NULL;
        in->x = *x;
        return 1;
    }
    if (!(*body = http_body_json(c, rc))) return 0;
    int s = predict_decode(*body, c->app->cfg.max_batch, x, &in->n, run, msg,
                           sizeof msg);
    if (s == PREDICT_NO_MEMORY) {
        *rc = http_error(c, 503, "out_of_memory", "%s", msg);
        return 0;
    }
    const char *model = NULL, *alias = NULL;
    int64_t version = 0;
    if (!s)
        s = predict_decode_model(*body, &model, &version, &alias, msg,
                                 sizeof msg);
    if (s) {
        *rc = http_error(c, 400, s == PREDICT_BAD_FIELD ? "bad_field"
                                                        : "bad_pixels",
                         "%s", msg);
        return 0;
    }
    in->x = *x;
    return !model || resolve_model(c, model, version, alias, run_buf, run,
                                   via_model, rc);
}

enum MHD_Result predict_post(http_ctx *c)
{
    enum MHD_Result rc;
    json_t *body = NULL;
    float *x = NULL;
    const char *run = NULL;
    char run_buf[32];
    infer_input in = {NULL, NULL, 0, DS_PIXELS};
    infer_output out = {0, 0, NULL};
    char *text = NULL;
    size_t len = 0;

    int via_model = 0;
    if (!decode(c, &in, &x, &run, run_buf, &body, &via_model, &rc) ||
        !predict_run_allowed(c, via_model, &run, run_buf, &rc))
        goto done;
    infer_src src = runs_infer_src(c);
    mn_err err = {{0}};
    infer_status st = infer_predict(&src, run, &in, &out, &err);
    if (st) {
        rc = runs_infer_error(c, st, &err);
        goto done;
    }
    text = reply_text(out.run, out.probs, in.n, out.K, &len);
    if (!text) {
        rc = http_error(c, 503, "out_of_memory", "no memory for the reply");
        goto done;
    }
    rc = http_bytes(c, 200, "application/json", text, len);
done:
    free(text);
    free(out.probs);
    free(x);
    json_decref(body);
    return rc;
}
