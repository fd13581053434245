/* test_faults.c: the error paths, reached on purpose. The public functions
 * that allocate (PNG encoder and pictures, datasets, optimizer, store,
 * model cache, worker pool, event streams, metrics, /predict decoders, log
 * lines) run with their 1st, 2nd, ... allocation failing (fault.h) until
 * they succeed, and every injected failure must end cleanly: an error with
 * a reason, or the documented fallback (under `make san` ASan reports a
 * leak on any of those paths). The store also meets a full disk (a file
 * size limit) in the middle of its transactions and must leave what was
 * stored as it was; the PNG buffer gets sizes it cannot hold; the model
 * cache holds more runs than its capacity; a worker meets runs whose
 * stored parameters it cannot read. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/ckpt.h"
#include "engine/ds.h"
#include "engine/mlp.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "server/app.h"
#include "server/http/predict_decode.h"
#include "server/jobs/events.h"
#include "server/jobs/pool.h"
#include "server/render/plot.h"
#include "server/render/png.h"
#include "server/serving/mcache.h"
#include "server/store/store.h"
#include "server/telemetry/log.h"
#include "server/telemetry/metrics.h"
#include "tests/unit/fault.h"
#include "tests/unit/helpers.h"

static char tmp_dir[64];
static char db_path[128];

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "faults");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
}

static void teardown(void) { th_tmpdir_remove(tmp_dir); }

TestSuite(faults, .init = setup, .fini = teardown);

/* An error after an injected failure must say why. */
static int failed(int rc, const mn_err *err)
{
    if (rc) cr_assert_neq(err->msg[0], '\0', "an error without a reason");
    return rc;
}

/* ---- PNG encoder and pictures ---- */

static int png_call(void *ctx)
{
    (void)ctx;
    enum { W = 40, H = 30 };
    static uint8_t px[H * W * 3];
    pngenc_buf b;
    mn_err err = {{0}};
    int rc = pngenc_encode(px, W, H, 3, &b, &err);
    if (rc) cr_assert_null(b.data, "a failed encoding left a buffer");
    pngenc_buf_free(&b);
    return failed(rc, &err);
}

Test(faults, png_encoder_out_of_memory)
{
    cr_assert_gt(fault_each(png_call, NULL), 0);
}

Test(faults, png_buffer_sizes_it_cannot_hold)
{
    pngenc_buf b = {0};
    cr_assert_eq(pngenc_buf_append(&b, "x", 1), 0);
    /* len + n past SIZE_MAX */
    cr_assert_eq(pngenc_buf_append(&b, "x", SIZE_MAX), -1);
    /* a size whose doubling overflows, and an allocator that says no
     * (armed, so that no allocator is asked for that much) */
    fault_arm(1);
    cr_assert_eq(pngenc_buf_append(&b, "x", SIZE_MAX - 8), -1);
    cr_assert(fault_disarm());
    cr_assert_eq(b.len, 1);
    cr_assert_eq(b.data[0], 'x');
    pngenc_buf_free(&b);
}

static int plot_calls(void *ctx)
{
    (void)ctx;
    mn_err err = {{0}};
    pngenc_buf b;
    int rc;
    static uint8_t px[DS_PIXELS];
    rc = plot_example(px, DS_ROWS, DS_COLS, 2, &b, &err);
    pngenc_buf_free(&b);
    if (rc) return failed(rc, &err);

    static float W[DS_PIXELS * 12];
    for (size_t i = 0; i < sizeof W / sizeof W[0]; i++)
        W[i] = (float)(i % 7) - 3.0f;
    rc = plot_weights(W, DS_ROWS, DS_COLS, 12, 1, &b, &err);
    pngenc_buf_free(&b);
    if (rc) return failed(rc, &err);

    uint32_t counts[DS_CLASSES][DS_CLASSES] = {{0}};
    for (int t = 0; t < DS_CLASSES; t++) counts[t][t] = 90, counts[t][0] += 3;
    rc = plot_confusion(counts, "validation", &b, &err);
    pngenc_buf_free(&b);
    if (rc) return failed(rc, &err);

    train_period ps[3];
    memset(ps, 0, sizeof ps);
    for (int k = 0; k < 3; k++) {
        ps[k].period = (uint32_t)k + 1;
        ps[k].train_log_loss = 1.0 / (k + 1);
        ps[k].validation_log_loss = 1.2 / (k + 1);
    }
    rc = plot_loss(ps, 3, "loss", &b, &err);
    pngenc_buf_free(&b);
    return failed(rc, &err);
}

Test(faults, pictures_out_of_memory)
{
    cr_assert_gt(fault_each(plot_calls, NULL), 0);
}

/* ---- engine: datasets, optimizer ---- */

typedef struct ds_ctx {
    ds_dataset d;
    char *csv;      /* a header and 3 rows of label + DS_PIXELS values */
    size_t len;
} ds_ctx;

static int ds_calls(void *ctx)
{
    const ds_ctx *c = ctx;
    mn_err err = {{0}};
    uint32_t *tr = NULL, *va = NULL, ntr, nva;
    int rc = ds_split(&c->d, 200, 50, 7, &tr, &ntr, &va, &nva, &err);
    if (rc) return failed(rc, &err);
    ds_packed p;
    rc = ds_packed_new(&p, &c->d, tr, ntr, 1.0, &err);
    free(tr);
    free(va);
    if (rc) return failed(rc, &err);
    ds_packed_free(&p);

    ds_csv *csv = ds_csv_new("upload.csv", 0);
    if (!csv) return -1;
    ds_dataset out = {0};
    size_t half = c->len / 2;   /* a line cut in two */
    rc = ds_csv_feed(csv, c->csv, half, &err);
    if (!rc) rc = ds_csv_feed(csv, c->csv + half, c->len - half, &err);
    if (!rc) rc = ds_csv_finish(csv, &out, &err);
    ds_csv_free(csv);
    if (!rc) cr_assert_eq(out.n, 3);
    ds_free(&out);
    return failed(rc, &err);
}

Test(faults, datasets_out_of_memory)
{
    ds_ctx c = {.d = {.n = 256, .rows = DS_ROWS, .cols = DS_COLS}};
    c.d.pixels = calloc((size_t)c.d.n * DS_PIXELS, 1);
    c.d.labels = calloc(c.d.n, 1);
    cr_assert(c.d.pixels && c.d.labels);
    for (size_t i = 0; i < (size_t)c.d.n * DS_PIXELS; i += 3)
        c.d.pixels[i] = (uint8_t)i;
    for (uint32_t i = 0; i < c.d.n; i++) c.d.labels[i] = (uint8_t)(i % 10);

    size_t cap = 4 * (DS_PIXELS + 1) * 8;
    c.csv = malloc(cap);
    cr_assert_not_null(c.csv);
    c.len = (size_t)snprintf(c.csv, cap, "label");
    for (int j = 0; j < DS_PIXELS; j++)
        c.len += (size_t)snprintf(c.csv + c.len, cap - c.len, ",p%d", j);
    for (int r = 0; r < 3; r++) {
        c.len += (size_t)snprintf(c.csv + c.len, cap - c.len, "\n%d", r + 4);
        for (int j = 0; j < DS_PIXELS; j++)
            c.len += (size_t)snprintf(c.csv + c.len, cap - c.len, ",%d", (j * r) % 256);
    }
    c.len += (size_t)snprintf(c.csv + c.len, cap - c.len, "\n");
    cr_assert_lt(c.len, cap);

    cr_assert_gt(fault_each(ds_calls, &c), 0);
    free(c.csv);
    ds_free(&c.d);
}

static int idx_call(void *ctx)
{
    (void)ctx;
    enum { N = 3 };
    uint8_t img[16 + N * DS_PIXELS] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, 28, 0, 0, 0, 28};
    uint8_t lab[8 + N] = {0, 0, 8, 1, 0, 0, 0, N, 1, 2, 3};
    ds_dataset d = {0};
    mn_err err = {{0}};
    int rc = ds_parse_idx(&d, img, sizeof img, "images", lab, sizeof lab,
                          "labels", &err);
    if (rc) cr_assert_null(d.pixels);
    ds_free(&d);
    return failed(rc, &err);
}

Test(faults, idx_out_of_memory)
{
    cr_assert_gt(fault_each(idx_call, NULL), 0);
}

static int optim_call(void *ctx)
{
    (void)ctx;
    optim o;
    mn_err err = {{0}};
    int rc = optim_init(&o, OPTIM_ADAM, 0.01f, 1000, &err);
    if (!rc) optim_free(&o);
    return failed(rc, &err);
}

Test(faults, optimizer_out_of_memory)
{
    cr_assert_gt(fault_each(optim_call, NULL), 0);
}

/* ---- store ---- */

static store *open_db(void)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, db_path, &err), 0, "%s", err.msg);
    return s;
}

static int open_call(void *ctx)
{
    (void)ctx;
    store *s = NULL;
    mn_err err = {{0}};
    int rc = store_open(&s, db_path, &err);
    if (rc) cr_assert_null(s);
    store_close(s);
    return failed(rc, &err);
}

Test(faults, store_open_out_of_memory)
{
    /* a fresh database (every migration), then an existing one */
    cr_assert_gt(fault_each(open_call, NULL), 0);
    fault_each(open_call, NULL);
}

/* A run that has one period with its checkpoint and a test evaluation. */
static int64_t full_run(store *s)
{
    mn_err err = {{0}};
    int64_t id;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{\"a\":1}", 100,
                                  2, NULL, &id, &err),
                 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    train_period p = {.period = 1, .step = 50, .train_log_loss = 0.5,
                      .validation_log_loss = 0.6, .validation_accuracy = 0.8};
    eval_result e = {.examples = 100, .accuracy = 0.8, .log_loss = 0.6};
    e.confusion[3][3] = 80;
    e.confusion[3][5] = 20;
    uint8_t ckpt[300] = {1, 2, 3};
    cr_assert_eq(store_period_add(s, id, &p, &e, ckpt, sizeof ckpt, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_test_put(s, id, &e, &err), 0, "%s", err.msg);
    return id;
}

typedef struct store_ctx {
    store *s;
    int64_t id;
} store_ctx;

/* Every read of a run, its list and its dataset. */
static int read_calls(void *ctx)
{
    store_ctx *c = ctx;
    mn_err err = {{0}};
    store_run r;
    int rc = store_run_get(c->s, c->id, &r, &err);
    if (rc) return failed(rc, &err);
    store_run_free(&r);

    store_run *runs = NULL;
    size_t n = 0;
    train_period *last = NULL;
    rc = store_run_list(c->s, NULL, NULL, -1, 0, &runs, &n, &last, &err);
    if (rc) return failed(rc, &err);
    store_runs_free(runs, n);
    free(last);

    train_period *tp = NULL;
    rc = store_periods_get(c->s, c->id, &tp, &n, &err);
    free(tp);
    if (rc) return failed(rc, &err);

    uint8_t *buf = NULL;
    size_t len;
    uint32_t step;
    rc = store_checkpoint_get(c->s, c->id, "best", &buf, &len, &step, &err);
    free(buf);
    if (rc) return failed(rc, &err);

    eval_result e;
    rc = store_confusion_get(c->s, c->id, "test", &e, &err);
    if (rc) return failed(rc, &err);

    ds_dataset d = {0};
    rc = store_dataset_get(c->s, "small", &d, &err);
    ds_free(&d);
    if (rc) return failed(rc, &err);

    store_dataset_info *infos = NULL;
    rc = store_dataset_list(c->s, &infos, &n, &err);
    free(infos);
    return failed(rc, &err);
}

/* Every write: a new run through its period, test and end, then gone. */
static int write_calls(void *ctx)
{
    store_ctx *c = ctx;
    mn_err err = {{0}};
    int64_t id;
    int rc = store_run_create(c->s, NULL, 0, "linear", "mnist", "{}", 10, 1,
                              NULL, &id, &err);
    if (rc) return failed(rc, &err);
    store_run r;
    rc = store_run_claim(c->s, "n1", 10, &r, &err);
    if (rc) return failed(rc, &err);
    store_run_free(&r);
    train_period p = {.period = 1, .step = 10, .train_log_loss = 0.5,
                      .validation_log_loss = 0.6, .validation_accuracy = 0.8};
    eval_result e = {.examples = 10, .accuracy = 0.8, .log_loss = 0.6};
    uint8_t ckpt[64] = {9};
    rc = store_period_add(c->s, r.id, &p, &e, ckpt, sizeof ckpt, &err);
    if (!rc) rc = store_test_put(c->s, r.id, &e, &err);
    if (!rc) rc = store_run_finish(c->s, r.id, RUN_SUCCEEDED, NULL, 0, &err);
    if (!rc) rc = store_run_delete(c->s, r.id, &err);
    if (rc) {
        /* leave nothing queued or running for the next call's claim */
        store_run_finish(c->s, r.id, RUN_FAILED, "injected", 0, NULL);
        store_run_delete(c->s, r.id, NULL);
    }
    return failed(rc, &err);
}

static ds_dataset small_dataset(uint32_t n)
{
    ds_dataset d = {.n = n, .rows = DS_ROWS, .cols = DS_COLS};
    d.pixels = calloc((size_t)n * DS_PIXELS, 1);
    d.labels = calloc(n, 1);
    cr_assert(d.pixels && d.labels);
    for (size_t i = 0; i < (size_t)n * DS_PIXELS; i++) d.pixels[i] = (uint8_t)(i * 7);
    for (uint32_t i = 0; i < n; i++) d.labels[i] = (uint8_t)(i % 10);
    return d;
}

Test(faults, store_reads_and_writes_out_of_memory)
{
    store *s = open_db();
    mn_err err = {{0}};
    ds_dataset d = small_dataset(5);
    cr_assert_eq(store_dataset_put(s, "small", &d, &err), 0, "%s", err.msg);
    ds_free(&d);
    store_ctx c = {s, full_run(s)};
    cr_assert_eq(store_run_finish(s, c.id, RUN_SUCCEEDED, NULL, 0, &err), 0,
                 "%s", err.msg);
    cr_assert_gt(fault_each(read_calls, &c), 0);
    fault_each(write_calls, &c);
    store_close(s);
}

/* Size of a file, 0 when it does not exist. */
static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Limits the size of any file this process writes to `bytes` (a full
 * disk: a write past it fails with EFBIG, SIGXFSZ ignored); 0 lifts the
 * limit back to `old`. */
static void limit_files(off_t bytes, const struct rlimit *old)
{
    struct rlimit lim = *old;
    if (bytes) lim.rlim_cur = (rlim_t)bytes;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

Test(faults, store_disk_full_in_the_middle_of_a_transaction)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    store *s = open_db();
    mn_err err = {{0}};
    int64_t id;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 100, 2,
                                  NULL, &id, &err),
                 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", db_path);

    /* a period whose checkpoint does not fit: nothing of it stays */
    size_t big = 4u << 20;
    uint8_t *ckpt = calloc(big, 1);
    cr_assert_not_null(ckpt);
    train_period p = {.period = 1, .step = 50, .train_log_loss = 0.5,
                      .validation_log_loss = 0.6, .validation_accuracy = 0.8};
    eval_result e = {.examples = 100, .accuracy = 0.8, .log_loss = 0.6};
    off_t room = file_size(wal) > file_size(db_path) ? file_size(wal) : file_size(db_path);
    limit_files(room + (1 << 16), &old);
    int rc = store_period_add(s, id, &p, &e, ckpt, big, &err);
    ds_dataset d = small_dataset(2000);
    int rc2 = store_dataset_put(s, "big", &d, &err);
    limit_files(0, &old);
    /* a full disk is a passing problem: STORE_UNAVAILABLE (store.h) */
    cr_assert_eq(rc, STORE_UNAVAILABLE, "a period bigger than the disk was "
                 "stored (or not reported as unavailable): %d", rc);
    cr_assert_eq(rc2, STORE_UNAVAILABLE, "a dataset bigger than the disk was "
                 "stored (or not reported as unavailable): %d", rc2);
    cr_assert_neq(err.msg[0], '\0');

    cr_assert_eq(store_run_get(s, id, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.period, 0, "half a period was stored");
    store_run_free(&r);
    uint8_t *buf = NULL;
    size_t len;
    uint32_t step;
    cr_assert_eq(store_checkpoint_get(s, id, "latest", &buf, &len, &step, &err),
                 STORE_NOT_FOUND);
    store_dataset_info info;
    cr_assert_eq(store_dataset_info_get(s, "big", &info, &err), STORE_NOT_FOUND);

    /* with room again, the same writes succeed */
    cr_assert_eq(store_period_add(s, id, &p, &e, ckpt, big, &err), 0, "%s", err.msg);
    cr_assert_eq(store_dataset_put(s, "big", &d, &err), 0, "%s", err.msg);
    ds_free(&d);
    free(ckpt);
    store_close(s);
}

Test(faults, store_every_write_fails_cleanly_on_a_full_disk)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    store *s = open_db();
    mn_err err = {{0}};
    int64_t ended = full_run(s), queued, running;
    cr_assert_eq(store_run_finish(s, ended, RUN_SUCCEEDED, NULL, 0, &err), 0, "%s", err.msg);
    int64_t versioned = full_run(s);   /* a model's version */
    cr_assert_eq(store_run_finish(s, versioned, RUN_SUCCEEDED, NULL, 0, &err),
                 0, "%s", err.msg);
    running = full_run(s);
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 10, 1, NULL,
                                  &queued, &err),
                 0, "%s", err.msg);
    ds_dataset d = small_dataset(3);
    train_period p = {.period = 2, .step = 100, .train_log_loss = 0.4,
                      .validation_log_loss = 0.5, .validation_accuracy = 0.9};
    eval_result e = {.examples = 100, .accuracy = 0.9, .log_loss = 0.5};
    uint8_t ckpt[100] = {7};
    int64_t id, version;
    int recovered, created;
    store_run r;
    cr_assert_eq(store_dataset_put(s, "kept", &d, &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_create(s, "m", NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(store_model_version_add(s, "m", versioned, &version, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(store_model_alias_set(s, "m", "prod", version, &created, &err),
                 0, "%s", err.msg);

    limit_files(1, &old);   /* no write goes through */
    int rc[18], k = 0;
    rc[k++] = store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 10, 1, NULL,
                               &id, &err);
    rc[k++] = store_run_claim(s, "n1", 10, &r, &err);
    rc[k++] = store_period_add(s, running, &p, &e, ckpt, sizeof ckpt, &err);
    rc[k++] = store_checkpoint_put(s, running, 60, ckpt, sizeof ckpt, &err);
    rc[k++] = store_test_put(s, running, &e, &err);
    rc[k++] = store_run_finish(s, running, RUN_SUCCEEDED, NULL, 0, &err);
    rc[k++] = store_run_requeue(s, running, &err);
    rc[k++] = store_lease_expire(s, NULL, &recovered, &err);
    rc[k++] = store_run_cancel_queued(s, queued, &err);
    rc[k++] = store_run_delete(s, ended, &err);
    rc[k++] = store_dataset_put(s, "small", &d, &err);
    rc[k++] = store_dataset_delete(s, "kept", NULL, NULL, &err);
    rc[k++] = store_checkpoint_retain(s, ended, NULL, 0, &err);
    rc[k++] = store_model_create(s, "new", NULL, &err);
    int64_t next_version;
    rc[k++] = store_model_version_add(s, "m", ended, &next_version, &err);
    rc[k++] = store_model_alias_set(s, "m", "staging", version, &created, &err);
    rc[k++] = store_model_alias_delete(s, "m", "prod", &err);
    rc[k++] = store_model_delete(s, "m", &err);
    store_wal_checkpoint(s, NULL);
    limit_files(0, &old);
    for (int i = 0; i < k; i++)
        cr_assert_eq(rc[i], STORE_UNAVAILABLE, "write %d on a full disk: %d, "
                     "not STORE_UNAVAILABLE", i, rc[i]);
    cr_assert_neq(err.msg[0], '\0');

    /* nothing changed */
    int64_t n;
    cr_assert_eq(store_run_count(s, NULL, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 4);
    cr_assert_eq(store_run_get(s, running, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.status, RUN_RUNNING);
    cr_assert_eq(r.period, 1);
    store_run_free(&r);
    cr_assert_eq(store_run_get(s, queued, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.status, RUN_QUEUED);
    store_run_free(&r);
    cr_assert_eq(store_run_get(s, ended, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    store_dataset_info info;
    cr_assert_eq(store_dataset_info_get(s, "small", &info, &err), STORE_NOT_FOUND);
    cr_assert_eq(store_dataset_info_get(s, "kept", &info, &err), 0, "%s", err.msg);
    int64_t run_id, v;
    cr_assert_eq(store_model_resolve(s, "m", 0, "prod", &run_id, &v, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(run_id, versioned);
    cr_assert_eq(store_model_resolve(s, "new", 0, NULL, &run_id, &v, &err),
                 STORE_NOT_FOUND);
    ds_free(&d);
    store_close(s);
}

/* ---- model cache ---- */

/* A succeeded run with a random dnn 784 -> [8] -> 10 as its checkpoint. */
static int64_t model_run(store *s, uint64_t seed)
{
    mn_err err = {{0}};
    int64_t id;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 10, 1, NULL,
                                  &id, &err),
                 0, "%s", err.msg);
    store_run r;
    cr_assert_eq(store_run_claim(s, "n1", 10, &r, &err), 0, "%s", err.msg);
    store_run_free(&r);
    model_arch a = {.n_in = DS_PIXELS, .n_out = 10};
    mlp_arch(&a, 1, (const int[]){8}, 0.0f);
    model *m = model_new(&a, 0, &err);
    cr_assert_not_null(m, "%s", err.msg);
    rng_state rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = rng_uniform(&rng);
    uint8_t *buf = NULL;
    size_t len = 0;
    cr_assert_eq(ckpt_encode(m, NULL, 10, &rng, &buf, &len, &err), 0, "%s", err.msg);
    cr_assert_eq(store_checkpoint_put(s, id, 10, buf, len, &err), 0, "%s", err.msg);
    free(buf);
    model_free(m);
    cr_assert_eq(store_run_finish(s, id, RUN_SUCCEEDED, NULL, 0, &err), 0, "%s", err.msg);
    return id;
}

Test(faults, model_cache_evicts_the_least_recently_used_unpinned)
{
    store *s = open_db();
    int64_t id[5];
    for (int i = 0; i < 5; i++) id[i] = model_run(s, (uint64_t)i + 1);
    mcache *c = mcache_new(2);
    cr_assert_not_null(c);
    mn_err err = {{0}};
    int nf;
    const model *m[5];
    /* all five pinned at once: more than the capacity, none evicted */
    for (int i = 0; i < 5; i++) {
        m[i] = mcache_get(c, s, id[i], &nf, &err);
        cr_assert_not_null(m[i], "%s", err.msg);
    }
    for (int i = 0; i < 5; i++) {
        const model *again = mcache_peek(c, id[i]);
        cr_assert_eq(again, m[i]);
        mcache_put(c, again);
    }
    /* unpinned, the oldest go until two are left: the last two used */
    for (int i = 0; i < 5; i++) mcache_put(c, m[i]);
    for (int i = 0; i < 3; i++) cr_assert_null(mcache_peek(c, id[i]), "run %d kept", i);
    for (int i = 3; i < 5; i++) {
        const model *kept = mcache_peek(c, id[i]);
        cr_assert_not_null(kept, "run %d evicted", i);
        mcache_put(c, kept);
    }
    /* a dropped model in use stays valid until put back, then goes */
    const model *held = mcache_get(c, s, id[4], &nf, &err);
    cr_assert_not_null(held, "%s", err.msg);
    mcache_drop(c, id[4]);
    cr_assert_null(mcache_peek(c, id[4]));
    cr_assert_gt(held->n_params, 0);
    mcache_put(c, held);
    /* a run without a model, and one that does not exist */
    int64_t bare;
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "{}", 10, 1, NULL,
                                  &bare, &err),
                 0);
    cr_assert_null(mcache_get(c, s, bare, &nf, &err));
    cr_assert_eq(nf, 1);
    cr_assert_null(mcache_get(c, s, 9999, &nf, &err));
    cr_assert_eq(nf, 1);
    mcache_free(c);
    store_close(s);
}

typedef struct cache_ctx {
    store *s;
    int64_t id;
} cache_ctx;

static int cache_call(void *ctx)
{
    cache_ctx *cc = ctx;
    mcache *c = mcache_new(1);
    if (!c) return -1;
    mn_err err = {{0}};
    int nf;
    const model *m = mcache_get(c, cc->s, cc->id, &nf, &err);
    if (m) mcache_put(c, m);
    else cr_assert_eq(nf, 0);
    mcache_free(c);
    return failed(m ? 0 : -1, &err);
}

Test(faults, model_cache_out_of_memory)
{
    store *s = open_db();
    cache_ctx cc = {s, model_run(s, 3)};
    cr_assert_gt(fault_each(cache_call, &cc), 0);
    store_close(s);
}

/* ---- worker pool ---- */

static int pool_call(void *ctx)
{
    app *a = ctx;
    mn_err err = {{0}};
    pool *p = pool_start(a, 2, &err);
    pool_stop(p);
    return failed(p ? 0 : -1, &err);
}

Test(faults, pool_start_out_of_memory_and_unreadable_runs)
{
    app a = {.cfg = {.db_path = db_path, .lease_seconds = 10},
             .node_name = "faults"};
    pthread_mutex_init(&a.db_mu, NULL);
    store *s = open_db();
    cr_assert_gt(fault_each(pool_call, &a), 0);

    /* runs whose stored parameters a worker cannot read fail with a reason */
    mn_err err = {{0}};
    int64_t id[2];
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "not json", 10, 1,
                                  NULL, &id[0], &err),
                 0, "%s", err.msg);
    cr_assert_eq(store_run_create(s, NULL, 0, "dnn", "mnist", "[1]", 10, 1,
                                  NULL, &id[1], &err),
                 0, "%s", err.msg);
    pool *p = pool_start(&a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    pool_notify(p);
    for (int i = 0; i < 2; i++) {
        store_run r = {0};
        for (int t = 0; t < 1000; t++) {
            store_run_free(&r);
            cr_assert_eq(store_run_get(s, id[i], &r, &err), 0, "%s", err.msg);
            if (r.status == RUN_FAILED) break;
            usleep(10000);
        }
        cr_assert_eq(r.status, RUN_FAILED, "run %d is %s", i,
                     run_status_name(r.status));
        cr_assert_not_null(r.error);
        store_run_free(&r);
    }
    pool_stop(p);
    store_close(s);

    /* a worker that cannot open the store says so and still stops */
    a.cfg.db_path = "/nonexistent-mnistd-dir/x.db";
    p = pool_start(&a, 1, &err);
    cr_assert_not_null(p, "%s", err.msg);
    usleep(50000);
    pool_stop(p);
    app_db_close_all(&a);
    pthread_mutex_destroy(&a.db_mu);
}

/* ---- event streams, metrics, /predict bodies ---- */

static void no_park(void *ctx) { (void)ctx; }

static int events_call(void *ctx)
{
    (void)ctx;
    ev_hub *h = ev_hub_new(15, NULL, NULL);
    if (!h) return -1;
    ev_waiter w = {no_park, no_park, NULL};
    ev_sub *s = ev_subscribe(h, 7, &w);
    int rc = -1;
    if (s) {
        train_period ps[2] = {{.period = 1, .step = 5}, {.period = 2, .step = 10}};
        ev_replay r = {.steps = 10, .periods = 2, .ps = ps, .n = 2,
                       .ended = 1, .end_status = RUN_SUCCEEDED};
        ev_sub_start(s, &r);
        char buf[256];
        size_t got = 0;
        ssize_t k;
        while ((k = ev_sub_read(s, buf, sizeof buf)) > 0) got += (size_t)k;
        /* an allocation that failed ends the stream early, never badly */
        cr_assert_eq(k, EV_SUB_END);
        rc = got > 0 ? 0 : -1;
        ev_sub_free(s);
    }
    ev_hub_close(h, 0);
    ev_hub_free(h);
    return rc;
}

Test(faults, event_streams_out_of_memory)
{
    cr_assert_gt(fault_each(events_call, NULL), 0);
}

static const char *route_name(size_t i) { return i == 0 ? "a" : "b"; }

static int metrics_call(void *ctx)
{
    (void)ctx;
    metrics *m = metrics_new(2);
    if (!m) return -1;
    metrics_request(m, 1, 200, 0.01);
    metrics_samples(m, 100, 0.5);
    int64_t by_status[RUN_N_STATUSES] = {0};
    char *text = metrics_render(m, route_name, 1, 0, by_status, 2, 1);
    metrics_free(m);
    free(text);
    return text ? 0 : -1;
}

Test(faults, metrics_out_of_memory)
{
    cr_assert_gt(fault_each(metrics_call, NULL), 0);
}

typedef struct predict_ctx {
    json_t *body;   /* a batch of 17 images */
    char *text;     /* the same body as text */
} predict_ctx;

static int predict_call(void *ctx)
{
    predict_ctx *c = ctx;
    float *x = NULL;
    size_t n = 0;
    const char *run = NULL;
    char msg[200] = "";
    int rc = predict_decode(c->body, 64, &x, &n, &run, msg, sizeof msg);
    free(x);
    if (rc) {
        cr_assert_eq(rc, PREDICT_NO_MEMORY, "%s", msg);
        return rc;
    }
    char run_id[32];
    x = NULL;
    rc = predict_decode_fast(c->text, strlen(c->text), 64, &x, &n, run_id);
    free(x);
    /* out of memory, the fast path leaves the body to predict_decode */
    if (rc) cr_assert_eq(rc, PREDICT_FALLBACK);
    return rc;
}

Test(faults, predict_bodies_out_of_memory)
{
    predict_ctx c;
    /* more images than the fast decoder's first buffer holds (16) */
    json_t *batch = json_array();
    c.body = json_pack("{s:s, s:o}", "run", "12", "pixels", batch);
    cr_assert_not_null(c.body);
    for (int i = 0; i < 17; i++) {
        json_t *img = json_array();
        for (int j = 0; j < DS_PIXELS; j++) json_array_append_new(img, json_integer((i + j) % 2));
        json_array_append_new(batch, img);
    }
    c.text = json_dumps(c.body, JSON_COMPACT);
    cr_assert_not_null(c.text);
    cr_assert_gt(fault_each(predict_call, &c), 0);
    free(c.text);
    json_decref(c.body);
}

/* ---- log lines ---- */

Test(faults, log_lines_without_memory_or_stderr)
{
    /* out of memory for the newline: the line is dropped, nothing leaks */
    fault_arm(1);
    log_json(json_pack("{s:s}", "event", "dropped"));
    cr_assert(fault_disarm());
    log_json(NULL);
    /* an error that is not UTF-8 keeps its ASCII */
    log_error("bad_name", 3, "file \xff\xfe.csv");
    log_error("no_error", 0, NULL);
    /* no stderr: nothing to do, and no failure */
    int saved = dup(STDERR_FILENO);
    cr_assert_geq(saved, 0);
    close(STDERR_FILENO);
    log_line("lost\n", 5);
    cr_assert_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
}
