/* routes_predict.c: POST /predict: classify one image or a batch with a
 * succeeded run's model. Pixels come as JSON numbers in 0..1 (one array of
 * 784, or an array of such arrays) or, with Content-Type
 * application/octet-stream, as raw uint8 rows of 784 bytes (the run in the
 * `run` query parameter). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/render/enc.h"
#include "engine/eval.h"
#include "server/serving/mcache.h"
#include "server/http/predict_decode.h"
#include "server/http/routes.h"
#include "server/store/store.h"

#define PREDICT_CHUNK 1000

/* Resolves the serving run: explicit id, or the newest succeeded run. */
static int pick_run(http_ctx *c, const char *id_str, store_run *r,
                    enum MHD_Result *rc)
{
    if (id_str) return runs_load_named(c, id_str, r, rc);
    store *db = http_db(c);
    if (!db) {
        *rc = http_error(c, 503, "unavailable", "the database is unavailable");
        return 0;
    }
    mn_err err = {{0}};
    int64_t id = 0;
    int s = store_run_newest_succeeded(db, &id, &err);
    if (s == STORE_NOT_FOUND) {
        *rc = http_error(c, 409, "no_model", "no run has succeeded yet: "
                         "train one with POST /runs");
        return 0;
    }
    if (s) {
        *rc = http_error(c, 503, "store_error", "%s", err.msg);
        return 0;
    }
    char name[24];
    snprintf(name, sizeof name, "%lld", (long long)id);
    return runs_load_named(c, name, r, rc);
}

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
        for (int k = 0; k < K; k++) {
            if (k) *o++ = ',';
            o += enc_prob(o, p[k]);
        }
        *o++ = ']';
        *o++ = '}';
    }
    *o++ = ']';
    *o++ = '}';
    *len = (size_t)(o - buf);
    return buf;
}

/* Classifies n images and replies: from floats x [n, P], or (x NULL)
 * straight from raw bytes px [n, P] packed sparsely. */
static enum MHD_Result classify(http_ctx *c, const nn_model *m, int64_t id,
                                const float *x, const uint8_t *px, size_t n)
{
    mn_err err = {{0}};
    int K = m->arch.n_out, P = m->arch.n_in;
    int bmax = n < PREDICT_CHUNK ? (int)n : PREDICT_CHUNK;
    enum MHD_Result rc;
    nn_ws *ws = nn_ws_new(&m->arch, bmax, &err);
    float *probs = malloc(sizeof(float) * n * (size_t)K);
    float *scratch = px ? malloc(sizeof(float) * (size_t)bmax * P) : NULL;
    uint32_t *rows = px ? malloc(sizeof(uint32_t) * (size_t)bmax) : NULL;
    char *text = NULL;
    size_t len = 0;
    if (!ws || !probs || (px && (!scratch || !rows))) {
        rc = http_error(c, 503, "out_of_memory", "no memory to classify %zu "
                        "images", n);
        goto done;
    }
    /* raw bytes are a dataset without labels: packed as training packs */
    ds_dataset raw = {(uint32_t)n, DS_ROWS, DS_COLS, (uint8_t *)px, NULL};
    for (size_t start = 0; start < n; start += (size_t)bmax) {
        int B = n - start < (size_t)bmax ? (int)(n - start) : bmax;
        if (px) {
            for (int i = 0; i < B; i++) rows[i] = (uint32_t)(start + i);
            eval_forward(m, ws, &raw, rows, scratch, NULL, B, 0, NULL);
        } else {
            nn_forward(m, ws, x + start * P, NULL, B, 0, NULL);
        }
        memcpy(probs + start * K, ws->probs, sizeof(float) * (size_t)B * K);
    }
    text = reply_text(id, probs, n, K, &len);
    if (!text) {
        rc = http_error(c, 503, "out_of_memory", "no memory for the reply");
        goto done;
    }
    c->req->status = 200;
    rc = http_bytes(c, 200, "application/json", text, len);
done:
    free(text);
    free(rows);
    free(scratch);
    free(probs);
    nn_ws_free(ws);
    return rc;
}

enum MHD_Result predict_post(http_ctx *c)
{
    enum MHD_Result rc;
    json_t *body = NULL;
    float *x = NULL;
    size_t n = 0;
    store_run r = {0};
    const nn_model *m = NULL;
    const char *run_id = NULL;
    char fast_run[32];
    size_t text_len;
    const char *text = http_body_text(c, &text_len); /* JSON, past a BOM */
    int P = DS_PIXELS;
    char msg[600];

    if (c->req->is_binary) {
        run_id = http_query(c, "run");
        if (c->req->len == 0 || c->req->len % (size_t)P)
            return http_error(c, 400, "bad_pixels", "an octet-stream body must "
                              "be n x %d bytes, got %zu", P, c->req->len);
        n = c->req->len / (size_t)P;
        if (n > c->app->cfg.max_batch) {
            rc = http_error(c, 400, "bad_pixels", "%zu images in one request; "
                            "the limit is %u", n, c->app->cfg.max_batch);
            goto done;
        }
    } else if (predict_decode_fast(text, text_len, c->app->cfg.max_batch, &x,
                                   &n, fast_run) == PREDICT_OK) {
        run_id = fast_run[0] ? fast_run : NULL;
    } else {
        body = http_body_json(c, &rc);
        if (!body) return rc;
        int s = predict_decode(body, c->app->cfg.max_batch, &x, &n, &run_id,
                               msg, sizeof msg);
        if (s == PREDICT_NO_MEMORY) {
            rc = http_error(c, 503, "out_of_memory", "%s", msg);
            goto done;
        }
        if (s) {
            rc = http_error(c, 400, s == PREDICT_BAD_FIELD ? "bad_field"
                                                           : "bad_pixels",
                            "%s", msg);
            goto done;
        }
    }
    /* a cached model is a succeeded run's: no need to ask the store */
    int64_t id = run_id ? runs_parse_id(run_id) : 0;
    if (id && (m = mcache_peek(c->app->models, id)) != NULL) {
        r.id = id;
    } else {
        if (!pick_run(c, run_id, &r, &rc)) goto done;
        if (!(m = runs_model(c, &r, &rc))) goto done;
    }
    if (m->arch.n_in != P) {
        rc = http_error(c, 409, "shape_mismatch", "run %lld takes %d pixels",
                        (long long)r.id, m->arch.n_in);
        goto done;
    }
    rc = classify(c, m, r.id, x,
                  c->req->is_binary ? (const uint8_t *)c->req->body : NULL, n);
done:
    mcache_put(c->app->models, m);
    store_run_free(&r);
    free(x);
    json_decref(body);
    return rc;
}
