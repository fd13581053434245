/* gen_seeds.c: writes the seed corpora of the fuzz targets, in each
 * target's input format, into <dir>/<target>/ (the directories must exist):
 *
 *   spec/     POST /runs bodies (linear, dnn with every field, minimal)
 *   sweep/    POST /sweeps bodies (the search, a grid, ASHA)
 *   predict/  POST /predict bodies (one image with a run, a batch of two,
 *             and three bad ones)
 *   csv/      control byte + CSV: three rows; BOM, header and CRLF; whole
 *             numbers as floats and exponents with CR line ends; a row
 *             scaled to 0..1; rows run together (lost line breaks)
 *   idx/      u16 length + an IDX image file of 2 28x28 images + its labels
 *   ckpt/     checkpoints of tiny models made by ckpt_encode (adagrad,
 *             adam, sgd, and one without optimizer state), in today's
 *             format (version 2); beside them, ckpt/v1_*.ckpt are the same
 *             seeds as the version-1 encoder wrote them, kept (this program
 *             no longer writes them) so that the version-1 decoder is
 *             fuzzed too
 *
 * Deterministic: running it again rewrites the same bytes. Usage:
 * scripts/fuzz.sh seeds (builds it and writes tests/fuzz/corpus/). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ckpt.h"
#include "engine/wsnap.h"
#include "engine/mlp.h"
#include "engine/ds.h"

static const char *g_dir;

/* A growable byte buffer; every append aborts on out of memory. */
typedef struct gbuf {
    char *p;
    size_t len, cap;
} gbuf;

static void gb_put(gbuf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void gb_printf(gbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void gb_printf(gbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) abort();
    gb_put(b, tmp, (size_t)n);
}

static void gb_be32(gbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    gb_put(b, x, 4);
}

static void write_file(const char *target, const char *name, const void *data,
                       size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", g_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        exit(1);
    }
}

/* Pixel (r, c) of a small synthetic digit-like image number k. */
static uint8_t pixel(int k, int r, int c)
{
    int on = (r >= 6 && r < 22 && (c == 10 + k || c == 11 + k)) ||
             (r == 6 + k && c >= 8 && c < 20);
    return on ? (uint8_t)(255 - 37 * ((r + c + k) % 3)) : 0;
}

static void seeds_spec(void)
{
    static const char *const bodies[][2] = {
        {"linear.json", "{\"model\": \"linear\"}"},
        {"linear_full.json",
         "{\"model\": \"linear\", \"optimizer\": \"sgd\", \"learning_rate\": "
         "0.03, \"clip_norm\": 0, \"steps\": 20, \"batch_size\": 10, "
         "\"periods\": 2, \"dataset\": \"mnist-test\", \"examples\": 100, "
         "\"validation_examples\": 25, \"seed\": 42, \"hidden_units\": [], "
         "\"dropout\": 0}"},
        {"dnn_full.json",
         "{\"model\": \"dnn\", \"hidden_units\": [100, 100], \"dropout\": 0.1, "
         "\"optimizer\": \"adam\", \"learning_rate\": 0.05, \"clip_norm\": 5.0, "
         "\"steps\": 1000, \"batch_size\": 30, \"periods\": 10, \"dataset\": "
         "\"mnist\", \"examples\": 10000, \"validation_examples\": 2500, "
         "\"seed\": 9007199254740992}"},
        {"dnn_small.json",
         "{\"model\":\"dnn\",\"hidden_units\":[8],\"optimizer\":\"adagrad\","
         "\"dataset\":\"my_set-2\"}"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        write_file("spec", bodies[i][0], bodies[i][1], strlen(bodies[i][1]));
}

static void seeds_sweep(void)
{
    static const char *const bodies[][2] = {
        {"exercise.json",
         "{\"base\": {\"model\": \"dnn\", \"steps\": 2000}, \"space\": "
         "{\"learning_rate\": {\"min\": 0.001, \"max\": 0.3, \"scale\": "
         "\"log\"}, \"hidden_units\": {\"values\": [[100, 100], [200, 100], "
         "[300]]}, \"dropout\": {\"min\": 0.0, \"max\": 0.3}, "
         "\"batch_size\": {\"values\": [30, 64, 128]}}, \"algorithm\": "
         "\"random\", \"trials\": 12, \"parallel\": 2, \"objective\": "
         "\"validation_accuracy\", \"early_stopping\": {\"rule\": "
         "\"median\", \"grace_periods\": 2}, \"seed\": 1}"},
        {"grid.json",
         "{\"base\": {\"model\": \"linear\"}, \"space\": {\"optimizer\": "
         "{\"values\": [\"sgd\", \"adam\"]}, \"steps\": {\"values\": [10, "
         "20]}}, \"algorithm\": \"grid\", \"objective\": "
         "\"validation_log_loss\"}"},
        {"asha.json",
         "{\"space\": {\"model\": {\"values\": [\"linear\", \"dnn\"]}, "
         "\"batch_size\": {\"min\": 1, \"max\": 100, \"scale\": \"log\"}}, "
         "\"trials\": 5, \"parallel\": 1, \"early_stopping\": {\"rule\": "
         "\"asha\", \"grace_periods\": 1, \"reduction_factor\": 2}}"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        write_file("sweep", bodies[i][0], bodies[i][1], strlen(bodies[i][1]));
}

/* One image as a JSON array of 784 numbers in 0..1; pixel number `bad`
 * (if >= 0) is null instead. */
static void json_image(gbuf *b, int k, int bad)
{
    gb_put(b, "[", 1);
    for (int r = 0; r < DS_ROWS; r++)
        for (int c = 0; c < DS_COLS; c++) {
            uint8_t v = pixel(k, r, c);
            if (r || c) gb_put(b, ",", 1);
            if (r * DS_COLS + c == bad) gb_put(b, "null", 4);
            else if (v == 0) gb_put(b, "0", 1);
            else if (v == 255) gb_put(b, "1", 1);
            else gb_printf(b, "%.4f", v / 255.0);
        }
    gb_put(b, "]", 1);
}

static void seeds_predict(void)
{
    gbuf b = {0};
    gb_printf(&b, "{\"run\": \"1\", \"pixels\": ");
    json_image(&b, 0, -1);
    gb_put(&b, "}", 1);
    write_file("predict", "single.json", b.p, b.len);

    b.len = 0;
    gb_printf(&b, "{\"pixels\": [");
    json_image(&b, 1, -1);
    gb_put(&b, ",", 1);
    json_image(&b, 2, -1);
    gb_put(&b, "]}", 2);
    write_file("predict", "batch2.json", b.p, b.len);

    /* two bad bodies that reach the per-pixel checks, which random
     * mutations of 784-number images rarely do */
    b.len = 0;
    gb_printf(&b, "{\"pixels\": [");
    json_image(&b, 3, -1);
    gb_printf(&b, ", 0.5]}");
    write_file("predict", "bad_batch_member.json", b.p, b.len);

    b.len = 0;
    gb_printf(&b, "{\"pixels\": ");
    json_image(&b, 4, 1);
    gb_put(&b, "}", 1);
    write_file("predict", "bad_pixel_type.json", b.p, b.len);

    b.len = 0;
    gb_printf(&b, "{\"run\": \"12\", \"pixels\": [[0.5, 1, 0]]}");
    write_file("predict", "short_image.json", b.p, b.len);
    free(b.p);
}

/* One CSV row: label k % 10, then the 784 pixels of image k. */
static void csv_row(gbuf *b, int k, const char *eol)
{
    gb_printf(b, "%d", k % 10);
    for (int r = 0; r < DS_ROWS; r++)
        for (int c = 0; c < DS_COLS; c++) gb_printf(b, ",%u", pixel(k, r, c));
    gb_printf(b, "%s", eol);
}

static void seeds_csv(void)
{
    gbuf b = {0};
    gb_put(&b, "\x80", 1); /* cut in the middle, no row limit */
    for (int k = 0; k < 3; k++) csv_row(&b, k, "\n");
    write_file("csv", "rows3.csv", b.p, b.len);

    b.len = 0;
    gb_put(&b, "\x21", 1); /* cut early, at most 1 row */
    gb_put(&b, "\xef\xbb\xbf", 3);
    gb_printf(&b, "label");
    for (int j = 0; j < 4; j++) gb_printf(&b, ",pixel%d", j);
    gb_printf(&b, "\r\n\r\n");
    csv_row(&b, 3, "\r\n");
    write_file("csv", "bom_header_crlf.csv", b.p, b.len);

    b.len = 0;
    gb_put(&b, "\x03", 1); /* a short bad row: column count error */
    gb_printf(&b, " 7 , 0,255\n");
    write_file("csv", "short_row.csv", b.p, b.len);

    /* whole numbers as pandas and printf write them, CR-only line ends */
    static const char *forms[] = {"%u.0", "%ue0", "%u.00e+0", "%u0e-1",
                                  "%u."};
    b.len = 0;
    gb_put(&b, "\x56", 1);
    for (int k = 0; k < 2; k++) {
        gb_printf(&b, k ? "-0.0" : "7.00");
        for (int j = 0; j < DS_PIXELS; j++) {
            gb_put(&b, ",", 1);
            gb_printf(&b, forms[(j + k) % 5],
                      pixel(k, j / DS_COLS, j % DS_COLS));
        }
        gb_put(&b, "\r", 1);
    }
    gb_printf(&b, "1,2.55e2,1e2,0.000,-0");
    for (int j = 4; j < DS_PIXELS; j++) gb_printf(&b, ",%u", j % 256);
    gb_put(&b, "\r\n", 2);
    write_file("csv", "float_forms_cr.csv", b.p, b.len);

    /* a row scaled to 0..1 (the JSON API's range): an error */
    b.len = 0;
    gb_put(&b, "\x80", 1);
    gb_printf(&b, "3");
    for (int j = 0; j < DS_PIXELS; j++)
        gb_printf(&b, ",%.3f", pixel(0, j / DS_COLS, j % DS_COLS) / 255.0);
    gb_put(&b, "\n", 1);
    write_file("csv", "scaled_row.csv", b.p, b.len);

    /* rows run together, as curl -d sends a file: an error */
    b.len = 0;
    gb_put(&b, "\xc0", 1);
    for (int k = 0; k < 2; k++) csv_row(&b, k, "");
    write_file("csv", "lines_run_together.csv", b.p, b.len);
    free(b.p);
}

static void seeds_idx(void)
{
    gbuf img = {0}, lab = {0}, b = {0};
    gb_be32(&img, 0x00000803u);
    gb_be32(&img, 2);
    gb_be32(&img, DS_ROWS);
    gb_be32(&img, DS_COLS);
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < DS_ROWS; r++)
            for (int c = 0; c < DS_COLS; c++) {
                uint8_t v = pixel(k + 4, r, c);
                gb_put(&img, &v, 1);
            }
    gb_be32(&lab, 0x00000801u);
    gb_be32(&lab, 2);
    gb_put(&lab, "\x04\x05", 2);
    uint8_t len[2] = {(uint8_t)img.len, (uint8_t)(img.len >> 8)};
    gb_put(&b, len, 2);
    gb_put(&b, img.p, img.len);
    gb_put(&b, lab.p, lab.len);
    write_file("idx", "two_28x28.bin", b.p, b.len);

    /* the same header shape with 3x3 images: small enough to mutate fully */
    b.len = img.len = 0;
    gb_be32(&img, 0x00000803u);
    gb_be32(&img, 2);
    gb_be32(&img, 3);
    gb_be32(&img, 3);
    gb_put(&img, "\x00\x80\xff\x00\x80\xff\x00\x80\xff"
                 "\xff\x00\x00\x00\xff\x00\x00\x00\xff", 18);
    len[0] = (uint8_t)img.len;
    len[1] = (uint8_t)(img.len >> 8);
    gb_put(&b, len, 2);
    gb_put(&b, img.p, img.len);
    gb_put(&b, lab.p, lab.len);
    write_file("idx", "two_3x3.bin", b.p, b.len);
    free(img.p);
    free(lab.p);
    free(b.p);
}

/* Encodes a model of architecture a with random parameters and, unless
 * with_optim is 0, an optimizer of the given kind with random state. */
static void seed_ckpt(const char *name, model_arch a, int with_optim,
                      optim_kind kind, uint64_t seed)
{
    mn_err err = {{0}};
    rng_state rng;
    optim o;
    uint8_t *buf = NULL;
    size_t len = 0;
    model *m = model_new(&a, 0, &err);
    if (!m) goto fail;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = rng_uniform(&rng) - 0.5f;
    if (optim_init(&o, kind, 0.05f, m->n_params, &err)) goto fail;
    for (size_t i = 0; i < o.n_state; i++) o.state[i] = rng_uniform(&rng);
    o.t = 17;
    if (ckpt_encode(m, with_optim ? &o : NULL, 17, &rng, &buf, &len, &err))
        goto fail;
    write_file("ckpt", name, buf, len);
    free(buf);
    optim_free(&o);
    model_free(m);
    return;
fail:
    fprintf(stderr, "gen_seeds: %s: %s\n", name, err.msg);
    exit(1);
}

static void seeds_ckpt(void)
{
    model_arch lin = {.n_in = 4, .n_out = 2};
    mlp_arch(&lin, 0, NULL, 0.0f);
    model_arch dnn1 = {.n_in = 5, .n_out = 2};
    mlp_arch(&dnn1, 1, (const int[]){3}, 0.25f);
    model_arch dnn2 = {.n_in = 6, .n_out = 3};
    mlp_arch(&dnn2, 2, (const int[]){4, 2}, 0.0f);
    seed_ckpt("linear_nostate.ckpt", lin, 0, OPTIM_SGD, 1);
    seed_ckpt("linear_sgd.ckpt", lin, 1, OPTIM_SGD, 2);
    seed_ckpt("dnn1_adagrad.ckpt", dnn1, 1, OPTIM_ADAGRAD, 3);
    seed_ckpt("dnn2_adam.ckpt", dnn2, 1, OPTIM_ADAM, 4);
}

/* A weight snapshot of a model of architecture a with random parameters. */
static void seed_wsnap(const char *name, model_arch a, uint64_t seed)
{
    mn_err err = {{0}};
    rng_state rng;
    wsnap ws = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    model *m = model_new(&a, 0, &err);
    if (!m) goto fail;
    rng_seed(&rng, seed);
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] = rng_uniform(&rng) - 0.5f;
    if (wsnap_take(m, &ws, &err) || wsnap_encode(&ws, &buf, &len, &err))
        goto fail;
    write_file("wsnap", name, buf, len);
    free(buf);
    wsnap_free(&ws);
    model_free(m);
    return;
fail:
    fprintf(stderr, "gen_seeds: %s: %s\n", name, err.msg);
    exit(1);
}

static void seeds_wsnap(void)
{
    model_arch lin = {.n_in = 4, .n_out = 2};
    mlp_arch(&lin, 0, NULL, 0.0f);
    model_arch dnn1 = {.n_in = 6, .n_out = 2};
    mlp_arch(&dnn1, 1, (const int[]){3}, 0.0f);
    seed_wsnap("linear.wsnap", lin, 5);
    seed_wsnap("dnn1.wsnap", dnn1, 6);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds <corpus-dir>\n");
        return 2;
    }
    g_dir = argv[1];
    seeds_spec();
    seeds_sweep();
    seeds_predict();
    seeds_csv();
    seeds_idx();
    seeds_ckpt();
    seeds_wsnap();
    return 0;
}
