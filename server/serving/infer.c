/* infer.c: the inference core (infer.h): run choice, model pinning and
 * batched class probabilities. The engine's model API is used in few
 * places: forward() runs the forward pass, probs_of() makes its workspace,
 * infer_predict() reads the model's input and output sizes. */
#include "server/serving/infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"
#include "engine/eval.h"

/* Images per forward pass: bounds the workspace of a large batch. */
#define INFER_CHUNK 1000

int64_t infer_parse_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The source's store, or NULL with INFER_NO_STORE's message in err. */
static store *source_db(const infer_src *s, mn_err *err)
{
    store *db = s->db(s->cls);
    if (!db) mn_errf(err, "the database is unavailable");
    return db;
}

infer_status infer_find_run(const infer_src *s, const char *name,
                            store_run *r, mn_err *err)
{
    int64_t id = name ? infer_parse_id(name) : 0;
    if (name && !id) {
        mn_errf(err, "no run '%s'", name);
        return INFER_NOT_FOUND;
    }
    store *db = source_db(s, err);
    if (!db) return INFER_NO_STORE;
    if (!name) {
        int st = store_run_newest_succeeded(db, &id, err);
        if (st == STORE_NOT_FOUND) {
            mn_errf(err, "no run has succeeded yet: train one with POST /runs");
            return INFER_NO_MODEL;
        }
        if (st)
            return st == STORE_UNAVAILABLE ? INFER_NO_STORE
                                           : INFER_STORE_ERROR;
    }
    int st = store_run_get(db, id, r, err);
    if (st == STORE_NOT_FOUND) {
        if (name)
            mn_errf(err, "no run '%s'", name);
        else
            mn_errf(err, "no run '%lld'", (long long)id);
        return INFER_NOT_FOUND;
    }
    if (st == STORE_UNAVAILABLE) return INFER_NO_STORE;
    return st ? INFER_STORE_ERROR : INFER_OK;
}

infer_status infer_pin(const infer_src *s, const store_run *r,
                       const model **m, mn_err *err)
{
    *m = NULL;
    if (r->status != RUN_SUCCEEDED) {
        mn_errf(err, "run %lld is %s; only a succeeded run has a model",
                (long long)r->id, run_status_name(r->status));
        return INFER_NOT_SUCCEEDED;
    }
    store *db = source_db(s, err);
    if (!db) return INFER_NO_STORE;
    int not_found = 0;
    *m = mcache_get(s->models, db, r->id, &not_found, err);
    if (*m) return INFER_OK;
    return not_found ? INFER_NO_MODEL : INFER_MODEL_UNAVAILABLE;
}

void infer_unpin(const infer_src *s, const model *m)
{
    mcache_put(s->models, m);
}

/* One forward pass of B images from row `start` of in, through ws: leaves
 * their probabilities in ws->probs [B, K]. The raw-bytes path packs them
 * as training packs a dataset (a dataset without labels), gathering into
 * scratch [B, P] and rows [B]. */
static void forward(const model *m, model_ws *ws, const infer_input *in,
                    size_t start, int B, float *scratch, uint32_t *rows)
{
    if (in->x) {
        model_forward(m, ws, in->x + start * (size_t)in->P, NULL, B, 0, NULL);
        return;
    }
    ds_dataset raw = {(uint32_t)in->n, DS_ROWS, DS_COLS, (uint8_t *)in->bytes,
                      NULL};
    for (int i = 0; i < B; i++) rows[i] = (uint32_t)(start + (size_t)i);
    eval_forward(m, ws, &raw, rows, scratch, NULL, B, 0, NULL);
}

/* The probabilities of in's images under m (which takes in->P inputs):
 * a new [n, K] array in *probs. */
static infer_status probs_of(const model *m, const infer_input *in,
                             float **probs, mn_err *err)
{
    size_t n = in->n;
    int K = m->arch.n_out, P = in->P;
    int bmax = n < INFER_CHUNK ? (int)n : INFER_CHUNK;
    infer_status st = INFER_OK;
    model_ws *ws = model_ws_new(&m->arch, bmax, err);
    float *out = malloc(sizeof(float) * n * (size_t)K);
    float *scratch = in->x ? NULL : malloc(sizeof(float) * (size_t)bmax * P);
    uint32_t *rows = in->x ? NULL : malloc(sizeof(uint32_t) * (size_t)bmax);
    if (!ws || !out || (!in->x && (!scratch || !rows))) {
        mn_errf(err, "no memory to classify %zu images", n);
        st = INFER_NO_MEMORY;
        goto done;
    }
    for (size_t start = 0; start < n; start += (size_t)bmax) {
        int B = n - start < (size_t)bmax ? (int)(n - start) : bmax;
        forward(m, ws, in, start, B, scratch, rows);
        memcpy(out + start * K, ws->probs, sizeof(float) * (size_t)B * K);
    }
    *probs = out;
    out = NULL;
done:
    free(rows);
    free(scratch);
    free(out);
    model_ws_free(ws);
    return st;
}

infer_status infer_predict(const infer_src *s, const char *run,
                           const infer_input *in, infer_output *out,
                           mn_err *err)
{
    store_run r = {0};
    const model *m = NULL;
    infer_status st;
    out->probs = NULL;
    /* a cached model is a succeeded run's: no need to ask the store */
    int64_t id = run ? infer_parse_id(run) : 0;
    if (id && (m = mcache_peek(s->models, id)) != NULL) {
        r.id = id;
    } else {
        if ((st = infer_find_run(s, run, &r, err))) goto done;
        if ((st = infer_pin(s, &r, &m, err))) goto done;
    }
    if (m->arch.n_in != in->P) {
        mn_errf(err, "run %lld takes %d pixels", (long long)r.id,
                m->arch.n_in);
        st = INFER_SHAPE_MISMATCH;
        goto done;
    }
    if ((st = probs_of(m, in, &out->probs, err))) goto done;
    out->run = r.id;
    out->K = m->arch.n_out;
done:
    infer_unpin(s, m);
    store_run_free(&r);
    return st;
}

infer_status infer_resolve_model(const infer_src *s, const char *model,
                                 int64_t version, const char *alias,
                                 char run[24], int64_t *version_out,
                                 mn_err *err)
{
    mnames_key k = {model, version, alias};
    int64_t id = 0;
    uint64_t gen = 0;
    if (!s->names || !mnames_get(s->names, &k, &id, version_out, &gen)) {
        store *db = source_db(s, err);
        if (!db) return INFER_NO_STORE;
        int st = store_model_resolve(db, model, version, alias, &id,
                                     version_out, err);
        if (st == STORE_NOT_FOUND) return INFER_NOT_FOUND;
        if (st)
            return st == STORE_UNAVAILABLE ? INFER_NO_STORE
                                           : INFER_STORE_ERROR;
        if (s->names) mnames_put(s->names, &k, gen, id, *version_out);
    }
    snprintf(run, 24, "%lld", (long long)id);
    return INFER_OK;
}
