/* test_infer.c: the inference core of server/serving/infer.c against a real
 * store in a temporary directory: probabilities from float pixels and from
 * raw bytes agree and sum to 1, a batch over the chunk size equals its
 * images one by one, a cached model serves without asking for the store,
 * the newest succeeded run is chosen when none is named, and every
 * infer_status comes with its message. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/ckpt.h"
#include "engine/mlp.h"
#include "server/serving/infer.h"

static char tmp_dir[64];
static char db_path[128];

typedef struct env {
    store *db;
    mcache *models;
    int db_calls;       /* how often infer asked for the store */
    int db_down;        /* the store "cannot be opened" */
    infer_src src;
} env;

static struct store *env_db(void *cls)
{
    env *e = cls;
    e->db_calls++;
    return e->db_down ? NULL : e->db;
}

static void env_open(env *e)
{
    memset(e, 0, sizeof *e);
    strcpy(tmp_dir, "/tmp/mnistd-infer-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
    mn_err err = {{0}};
    cr_assert_eq(store_open(&e->db, db_path, &err), 0, "%s", err.msg);
    e->models = mcache_new(4);
    cr_assert_not_null(e->models);
    e->src = (infer_src){e->models, env_db, e, NULL};
}

static void env_close(env *e)
{
    mcache_free(e->models);
    store_close(e->db);
    char p[256];
    static const char *const files[] = {"test.db", "test.db-wal", "test.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp_dir, files[i]);
        unlink(p);
    }
    rmdir(tmp_dir);
}

/* A run of a dnn n_in -> [16] -> 10 with random weights, left in
 * `status` (RUN_QUEUED, or ended as RUN_SUCCEEDED; a run only ends while no
 * other is queued, as the queue is claimed oldest first). Returns its
 * id. */
static int64_t make_run(env *e, run_status status, int n_in, uint64_t seed)
{
    mn_err err = {{0}};
    int64_t id = 0;
    cr_assert_eq(store_run_create(e->db, NULL, 0, "dnn", "mnist", "{}", 10, 1,
                                  NULL, &id, &err),
                 0, "%s", err.msg);
    if (status == RUN_QUEUED) return id;
    store_run r;
    cr_assert_eq(store_run_claim(e->db, "n1", 10, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.id, id);
    store_run_free(&r);
    model_arch a = {.n_in = n_in, .n_out = 10};
    mlp_arch(&a, 1, (const int[]){16}, 0.0f);
    model *m = model_new(&a, 0, &err);
    cr_assert_not_null(m, "%s", err.msg);
    rng_state rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = rng_uniform(&rng) - 0.5f;
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ckpt_encode(m, NULL, 10, &rng, &buf, &len, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(store_checkpoint_put(e->db, id, 10, buf, len, &err), 0, "%s",
                 err.msg);
    free(buf);
    model_free(m);
    cr_assert_eq(store_run_finish(e->db, id, status, NULL, 0, &err), 0, "%s",
                 err.msg);
    return id;
}

/* n random images: bytes [n, 784] and the same as floats in 0..1. */
static void make_images(size_t n, uint8_t **bytes, float **x)
{
    *bytes = malloc(n * DS_PIXELS);
    *x = malloc(sizeof(float) * n * DS_PIXELS);
    cr_assert(*bytes && *x);
    uint32_t v = 12345;
    for (size_t i = 0; i < n * DS_PIXELS; i++) {
        v = v * 1103515245u + 12345u;
        (*bytes)[i] = (v >> 16) % 3 == 0 ? (uint8_t)(v >> 8) : 0; /* sparse */
        (*x)[i] = (*bytes)[i] / 255.0f;
    }
}

Test(infer, floats_and_bytes_agree_and_a_cached_model_needs_no_store)
{
    env e;
    env_open(&e);
    int64_t id = make_run(&e, RUN_SUCCEEDED, DS_PIXELS, 7);
    size_t n = 1203;    /* more than one forward pass */
    uint8_t *bytes;
    float *x;
    make_images(n, &bytes, &x);
    char name[24];
    snprintf(name, sizeof name, "%lld", (long long)id);
    mn_err err = {{0}};
    infer_output a, b, one;
    infer_input in = {x, NULL, n, DS_PIXELS};
    cr_assert_eq(infer_predict(&e.src, name, &in, &a, &err), INFER_OK, "%s",
                 err.msg);
    cr_assert_eq(a.run, id);
    cr_assert_eq(a.K, 10);
    cr_assert_gt(e.db_calls, 0);
    /* cached now: the store is not even opened */
    e.db_calls = 0;
    e.db_down = 1;
    infer_input raw = {NULL, bytes, n, DS_PIXELS};
    cr_assert_eq(infer_predict(&e.src, name, &raw, &b, &err), INFER_OK, "%s",
                 err.msg);
    cr_assert_eq(e.db_calls, 0);
    for (size_t i = 0; i < n; i++) {
        double sum = 0;
        for (int k = 0; k < 10; k++) {
            float p = a.probs[i * 10 + k], q = b.probs[i * 10 + k];
            cr_assert(fabsf(p - q) <= 1e-5f, "image %zu class %d: %g vs %g",
                      i, k, p, q);
            sum += p;
        }
        cr_assert(fabs(sum - 1) < 1e-4, "image %zu sums to %g", i, sum);
    }
    /* the last image alone gives what it gave in the batch */
    infer_input last = {x + (n - 1) * DS_PIXELS, NULL, 1, DS_PIXELS};
    cr_assert_eq(infer_predict(&e.src, name, &last, &one, &err), INFER_OK);
    for (int k = 0; k < 10; k++)
        cr_assert(fabsf(one.probs[k] - a.probs[(n - 1) * 10 + k]) <= 1e-5f);
    free(one.probs);
    free(b.probs);
    free(a.probs);
    free(x);
    free(bytes);
    env_close(&e);
}

Test(infer, no_run_named_serves_the_newest_succeeded)
{
    env e;
    env_open(&e);
    uint8_t *bytes;
    float *x;
    make_images(1, &bytes, &x);
    infer_input in = {x, NULL, 1, DS_PIXELS};
    infer_output out;
    mn_err err = {{0}};
    cr_assert_eq(infer_predict(&e.src, NULL, &in, &out, &err), INFER_NO_MODEL);
    cr_assert_null(out.probs);
    cr_assert(strstr(err.msg, "no run has succeeded yet"), "%s", err.msg);
    make_run(&e, RUN_SUCCEEDED, DS_PIXELS, 1);
    int64_t newest = make_run(&e, RUN_SUCCEEDED, DS_PIXELS, 2);
    make_run(&e, RUN_QUEUED, DS_PIXELS, 3);
    cr_assert_eq(infer_predict(&e.src, NULL, &in, &out, &err), INFER_OK, "%s",
                 err.msg);
    cr_assert_eq(out.run, newest);
    free(out.probs);
    free(x);
    free(bytes);
    env_close(&e);
}

Test(infer, every_error_has_its_status_and_message)
{
    env e;
    env_open(&e);
    uint8_t *bytes;
    float *x;
    make_images(2, &bytes, &x);
    infer_input in = {x, NULL, 2, DS_PIXELS};
    infer_output out;
    mn_err err = {{0}};
    int64_t small = make_run(&e, RUN_SUCCEEDED, 100, 2);
    int64_t queued = make_run(&e, RUN_QUEUED, DS_PIXELS, 1);
    char name[24];

    cr_assert_eq(infer_predict(&e.src, "7x", &in, &out, &err), INFER_NOT_FOUND);
    cr_assert_str_eq(err.msg, "no run '7x'");
    cr_assert_eq(infer_predict(&e.src, "999", &in, &out, &err), INFER_NOT_FOUND);
    cr_assert_str_eq(err.msg, "no run '999'");

    snprintf(name, sizeof name, "%lld", (long long)queued);
    cr_assert_eq(infer_predict(&e.src, name, &in, &out, &err),
                 INFER_NOT_SUCCEEDED);
    cr_assert(strstr(err.msg, "is queued; only a succeeded run has a model"),
              "%s", err.msg);

    snprintf(name, sizeof name, "%lld", (long long)small);
    cr_assert_eq(infer_predict(&e.src, name, &in, &out, &err),
                 INFER_SHAPE_MISMATCH);
    cr_assert(strstr(err.msg, "takes 100 pixels"), "%s", err.msg);
    cr_assert_null(out.probs);

    e.db_down = 1;  /* a run not cached needs the store */
    snprintf(name, sizeof name, "%lld", (long long)queued);
    cr_assert_eq(infer_predict(&e.src, name, &in, &out, &err), INFER_NO_STORE);
    cr_assert_str_eq(err.msg, "the database is unavailable");
    free(x);
    free(bytes);
    env_close(&e);
}

Test(infer, parse_id_takes_1_to_18_digits)
{
    cr_assert_eq(infer_parse_id("1"), 1);
    cr_assert_eq(infer_parse_id("000042"), 42);
    cr_assert_eq(infer_parse_id("999999999999999999"), 999999999999999999LL);
    cr_assert_eq(infer_parse_id("1234567890123456789"), 0);
    cr_assert_eq(infer_parse_id(""), 0);
    cr_assert_eq(infer_parse_id("-1"), 0);
    cr_assert_eq(infer_parse_id("1 "), 0);
}
