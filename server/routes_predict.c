/* routes_predict.c: POST /predict: classify one image or a batch with a
 * succeeded run's model. Pixels come as JSON numbers in 0..1 (one array of
 * 784, or an array of such arrays) or, with Content-Type
 * application/octet-stream, as raw uint8 rows of 784 bytes (the run in the
 * `run` query parameter). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "engine/eval.h"
#include "mcache.h"
#include "predict_decode.h"
#include "routes.h"
#include "store.h"

#define PREDICT_CHUNK 1000


/* Resolves the serving run: explicit id, or the newest succeeded run. */
static int pick_run(http_ctx *c, const char *id_str, store_run *r,
                    enum MHD_Result *rc)
{
    store *db = http_db(c);
    mn_err err = {{0}};
    if (!db) {
        *rc = http_error(c, 503, "unavailable", "the database is unavailable");
        return 0;
    }
    int64_t id = 0;
    if (id_str) {
        size_t n = strlen(id_str);
        for (size_t i = 0; i < n && n <= 18; i++) {
            if (id_str[i] < '0' || id_str[i] > '9') {
                id = 0;
                break;
            }
            id = id * 10 + (id_str[i] - '0');
        }
        if (!id) {
            *rc = http_error(c, 404, "not_found", "no run '%s'", id_str);
            return 0;
        }
    } else {
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
    }
    int s = store_run_get(db, id, r, &err);
    if (s == STORE_NOT_FOUND) {
        *rc = http_error(c, 404, "not_found", "no run '%s'", id_str);
        return 0;
    }
    if (s) {
        *rc = http_error(c, 503, "store_error", "%s", err.msg);
        return 0;
    }
    return 1;
}

/* Runs the model over n images x [n, P] and builds the reply. */
static enum MHD_Result classify(http_ctx *c, const nn_model *m, int64_t id,
                                const float *x, size_t n)
{
    mn_err err = {{0}};
    int K = m->arch.n_out, P = m->arch.n_in;
    int bmax = n < PREDICT_CHUNK ? (int)n : PREDICT_CHUNK;
    nn_ws *ws = nn_ws_new(&m->arch, bmax, &err);
    if (!ws) return http_error(c, 503, "out_of_memory", "%s", err.msg);
    json_t *preds = json_array();
    for (size_t start = 0; start < n; start += (size_t)bmax) {
        int B = n - start < (size_t)bmax ? (int)(n - start) : bmax;
        nn_forward(m, ws, x + start * P, NULL, B, 0, NULL);
        for (int i = 0; i < B; i++) {
            const float *p = ws->probs + (size_t)i * K;
            json_t *probs = json_array();
            for (int k = 0; k < K; k++) json_array_append_new(probs, json_real(p[k]));
            json_array_append_new(preds, json_pack("{s:i, s:o}", "class",
                                                   eval_argmax(p, K),
                                                   "probabilities", probs));
        }
    }
    nn_ws_free(ws);
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    return http_json(c, 200, json_pack("{s:s, s:o}", "run", ids,
                                       "predictions", preds));
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
        x = malloc(sizeof(float) * n * (size_t)P);
        if (!x) {
            rc = http_error(c, 503, "out_of_memory", "no memory for %zu images",
                            n);
            goto done;
        }
        const uint8_t *b = (const uint8_t *)c->req->body;
        for (size_t i = 0; i < n * (size_t)P; i++) x[i] = b[i] * (1.0f / 255.0f);
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
    if (!pick_run(c, run_id, &r, &rc)) goto done;
    if (!(m = runs_model(c, &r, &rc))) goto done;
    if (m->arch.n_in != P) {
        rc = http_error(c, 409, "shape_mismatch", "run %lld takes %d pixels",
                        (long long)r.id, m->arch.n_in);
        goto done;
    }
    rc = classify(c, m, r.id, x, n);
done:
    mcache_put(c->app->models, m);
    store_run_free(&r);
    free(x);
    json_decref(body);
    return rc;
}
