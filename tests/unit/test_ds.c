/* test_ds.c: unit tests for engine/ds.c: IDX and CSV readers (good and
 * malformed input, plain and gzip files, chunked feeding), loading by
 * name, the split, the float gather, a no-crash property on random bytes,
 * and the real MNIST files (MNISTD_DATA_DIR must be set). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/ds.h"
#include "engine/rng.h"
#include "tests/unit/helpers.h"

/* ------------------------------------------------------------ helpers */

static char ds_tdir[256]; /* per-test temporary directory */

static void ds_tmp_setup(void)
{
    th_tmpdir_make(ds_tdir, sizeof ds_tdir, "test-ds");
}

static void ds_tmp_teardown(void) { th_tmpdir_remove(ds_tdir); }

/* Writes <tmpdir>/<base> into buf (512 bytes). */
static char *tpath(char *buf, const char *base)
{
    snprintf(buf, 512, "%s/%s", ds_tdir, base);
    return buf;
}

/* Writes len bytes to path, gzip-compressed when gz. */
static void write_file(const char *path, const void *data, size_t len, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        cr_assert_not_null(f, "gzopen %s", path);
        if (len) cr_assert_eq(gzwrite(f, data, (unsigned)len), (int)len);
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f, "fopen %s", path);
        if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
        cr_assert_eq(fclose(f), 0);
    }
}

/* Does the path name a gzip file (".gz")? */
static int ends_with_gz(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint8_t pix_at(size_t k) { return (uint8_t)(k * 37u + 11u); }

/* Writes a valid IDX image file (n images of rows x cols, pixel k =
 * pix_at(k)) into buf; returns its length. */
static size_t idx_images(uint8_t *buf, uint32_t n, uint32_t rows,
                         uint32_t cols)
{
    put_be32(buf, 0x803);
    put_be32(buf + 4, n);
    put_be32(buf + 8, rows);
    put_be32(buf + 12, cols);
    size_t len = (size_t)n * rows * cols;
    for (size_t k = 0; k < len; k++) buf[16 + k] = pix_at(k);
    return 16 + len;
}

/* Writes a valid IDX label file (label i = i % 10) into buf. */
static size_t idx_labels(uint8_t *buf, uint32_t n)
{
    put_be32(buf, 0x801);
    put_be32(buf + 4, n);
    for (uint32_t i = 0; i < n; i++) buf[8 + i] = (uint8_t)(i % 10);
    return 8 + n;
}

#define SMALL_N 5
#define SMALL_R 3
#define SMALL_C 4

static void check_small(const ds_dataset *d)
{
    cr_assert_eq(d->n, SMALL_N);
    cr_assert_eq(d->rows, SMALL_R);
    cr_assert_eq(d->cols, SMALL_C);
    for (size_t k = 0; k < SMALL_N * SMALL_R * SMALL_C; k++)
        cr_assert_eq(d->pixels[k], pix_at(k), "pixel %zu", k);
    for (uint32_t i = 0; i < SMALL_N; i++) cr_assert_eq(d->labels[i], i % 10);
}

/* Asserts that msg contains every non-NULL needle. */
static void expect_msg(const char *msg, const char *a, const char *b)
{
    cr_assert(a == NULL || strstr(msg, a), "message '%s' lacks '%s'", msg, a);
    cr_assert(b == NULL || strstr(msg, b), "message '%s' lacks '%s'", msg, b);
}

/* Feeds the same (malformed) image and label bytes to ds_parse_idx and, as
 * plain and as gzip files, to ds_load_idx. Each must fail with a message
 * that contains `want` and names the culprit: bad = 'i' images file,
 * 'l' labels file, 'b' both. */
static void expect_idx_error(const uint8_t *img, size_t il, const uint8_t *lab,
                             size_t ll, const char *want, char bad)
{
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_parse_idx(&d, img, il, "mem-images", lab, ll,
                              "mem-labels", &err), -1);
    cr_assert_null(d.pixels);
    expect_msg(err.msg, want, bad == 'l' ? "mem-labels" : "mem-images");
    if (bad == 'b') expect_msg(err.msg, "mem-labels", NULL);

    for (int gz = 0; gz < 2; gz++) {
        char pi[512], pl[512];
        tpath(pi, gz ? "x-images-idx3-ubyte.gz" : "x-images-idx3-ubyte");
        tpath(pl, gz ? "x-labels-idx1-ubyte.gz" : "x-labels-idx1-ubyte");
        write_file(pi, img, il, gz);
        write_file(pl, lab, ll, gz);
        memset(&err, 0, sizeof err);
        cr_assert_eq(ds_load_idx(&d, pi, pl, &err), -1, "gz=%d", gz);
        cr_assert_null(d.pixels);
        expect_msg(err.msg, want, bad == 'l' ? pl : pi);
        if (bad == 'b') expect_msg(err.msg, pl, NULL);
    }
}

/* Small valid files in static buffers, for the malformed cases to edit. */
static uint8_t g_img[16 + SMALL_N * SMALL_R * SMALL_C + 8];
static uint8_t g_lab[8 + SMALL_N + 8];
static size_t g_il, g_ll;

static void small_files(void)
{
    g_il = idx_images(g_img, SMALL_N, SMALL_R, SMALL_C);
    g_ll = idx_labels(g_lab, SMALL_N);
}

/* A growable text buffer for CSV input. */
typedef struct tbuf {
    char *s;
    size_t len, cap;
} tbuf;

static void tb_add(tbuf *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1) cap *= 2;
        char *ns = realloc(t->s, cap);
        cr_assert_not_null(ns);
        t->s = ns;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void tb_str(tbuf *t, const char *s) { tb_add(t, s, strlen(s)); }

static uint8_t csv_pix(int row, int j) { return (uint8_t)(row * 31 + j * 7); }

/* Appends one CSV row: label, then `ncols` pixels csv_pix(row, j) (785
 * columns in all when ncols = 784), then eol ("" for none). */
static void tb_row(tbuf *t, int label, int row, int ncols, const char *eol)
{
    char num[16];
    snprintf(num, sizeof num, "%d", label);
    tb_str(t, num);
    for (int j = 0; j < ncols; j++) {
        snprintf(num, sizeof num, ",%d", csv_pix(row, j));
        tb_str(t, num);
    }
    tb_str(t, eol);
}

/* Appends a header line `label,<prefix>0,<prefix>1,...`. */
static void tb_header(tbuf *t, const char *first, const char *eol)
{
    char col[32];
    tb_str(t, first);
    for (int j = 0; j < DS_PIXELS; j++) {
        snprintf(col, sizeof col, ",%dx%d", j / 28 + 1, j % 28 + 1);
        tb_str(t, col);
    }
    tb_str(t, eol);
}

/* Parses text in chunks of `chunk` bytes (0: all at once) with a fresh
 * parser and finishes it. Returns 0 or -1 (err filled). */
static int csv_parse(const char *text, size_t len, size_t chunk,
                     uint32_t max_rows, ds_dataset *d, mn_err *err)
{
    ds_csv *p = ds_csv_new("t.csv", max_rows);
    cr_assert_not_null(p);
    int rc = 0;
    if (chunk == 0) chunk = len ? len : 1;
    for (size_t off = 0; off < len && rc == 0; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        rc = ds_csv_feed(p, text + off, n, err);
    }
    if (rc == 0) rc = ds_csv_finish(p, d, err);
    else memset(d, 0, sizeof *d);
    ds_csv_free(p);
    return rc;
}

/* Checks that d holds rows 0..n-1 as written by tb_row with labels[]. */
static void check_csv_rows(const ds_dataset *d, const int *labels, int n)
{
    cr_assert_eq(d->n, (uint32_t)n);
    cr_assert_eq(d->rows, 28);
    cr_assert_eq(d->cols, 28);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(d->labels[i], labels[i], "row %d", i);
        for (int j = 0; j < DS_PIXELS; j++)
            cr_assert_eq(d->pixels[(size_t)i * DS_PIXELS + j], csv_pix(i, j),
                         "row %d pixel %d", i, j);
    }
}

/* Parses text whole, byte by byte and in 7-byte chunks: all three must
 * fail with the same message, containing `want` (and `also` if set). */
static void expect_csv_error(const tbuf *t, const char *want, const char *also)
{
    mn_err e1 = {{0}}, e2 = {{0}}, e3 = {{0}};
    ds_dataset d;
    cr_assert_eq(csv_parse(t->s, t->len, 0, 0, &d, &e1), -1);
    cr_assert_null(d.pixels);
    cr_assert_eq(csv_parse(t->s, t->len, 1, 0, &d, &e2), -1);
    cr_assert_eq(csv_parse(t->s, t->len, 7, 0, &d, &e3), -1);
    expect_msg(e1.msg, want, also);
    expect_msg(e1.msg, "t.csv", NULL);
    cr_assert_str_eq(e1.msg, e2.msg);
    cr_assert_str_eq(e1.msg, e3.msg);
}

/* ------------------------------------------------------------ IDX good */

Test(ds, idx_parse_good)
{
    ds_dataset d;
    mn_err err = {{0}};
    small_files();
    cr_assert_eq(ds_parse_idx(&d, g_img, g_il, "i", g_lab, g_ll, "l", &err),
                 0, "%s", err.msg);
    check_small(&d);
    ds_free(&d);
    cr_assert_null(d.pixels);
    cr_assert_eq(d.n, 0);
    ds_free(&d); /* safe twice */
}

Test(ds, idx_load_plain_and_gzip, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    for (int gz = 0; gz < 4; gz++) { /* bit 0: images gz, bit 1: labels */
        char pi[512], pl[512];
        ds_dataset d;
        mn_err err = {{0}};
        tpath(pi, "a-images-idx3-ubyte");
        tpath(pl, "a-labels-idx1-ubyte");
        write_file(pi, g_img, g_il, gz & 1);
        write_file(pl, g_lab, g_ll, gz & 2);
        cr_assert_eq(ds_load_idx(&d, pi, pl, &err), 0, "gz=%d: %s", gz,
                     err.msg);
        check_small(&d);
        ds_free(&d);
    }
}

Test(ds, idx_load_big_gzip, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    /* Larger than the reader's first buffer (16 MiB): exercises growth. */
    const uint32_t n = 22000;
    size_t il = 16 + (size_t)n * 28 * 28;
    uint8_t *img = malloc(il), *lab = malloc(8 + n);
    cr_assert(img && lab);
    cr_assert_eq(idx_images(img, n, 28, 28), il);
    size_t ll = idx_labels(lab, n);
    char pi[512], pl[512];
    write_file(tpath(pi, "b-images.gz"), img, il, 1);
    write_file(tpath(pl, "b-labels"), lab, ll, 0);
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_load_idx(&d, pi, pl, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, n);
    cr_assert_eq(memcmp(d.pixels, img + 16, il - 16), 0);
    cr_assert_eq(memcmp(d.labels, lab + 8, n), 0);
    ds_free(&d);
    free(lab);
    free(img);
}

/* ------------------------------------------------------- IDX malformed */

Test(ds, idx_wrong_magic, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    put_be32(g_img, 0x801); /* a label file given as images */
    expect_idx_error(g_img, g_il, g_lab, g_ll, "wrong magic 0x00000801", 'i');
    small_files();
    put_be32(g_lab, 0x12345678);
    expect_idx_error(g_img, g_il, g_lab, g_ll, "wrong magic 0x12345678", 'l');
    small_files();
    put_be32(g_img, 0x00000d03); /* float IDX: not ours */
    expect_idx_error(g_img, g_il, g_lab, g_ll, "wrong magic", 'i');
}

Test(ds, idx_truncated_header, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    expect_idx_error(g_img, 10, g_lab, g_ll, "truncated header", 'i');
    expect_idx_error(g_img, 2, g_lab, g_ll, "truncated header", 'i');
    expect_idx_error(g_img, 0, g_lab, g_ll, "truncated header", 'i');
    expect_idx_error(g_img, g_il, g_lab, 6, "truncated header", 'l');
    expect_idx_error(g_img, g_il, g_lab, 0, "truncated header", 'l');
}

Test(ds, idx_truncated_data, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    expect_idx_error(g_img, g_il - 1, g_lab, g_ll, "truncated data", 'i');
    expect_idx_error(g_img, 16, g_lab, g_ll, "truncated data", 'i');
    expect_idx_error(g_img, g_il, g_lab, g_ll - 2, "truncated data", 'l');
}

Test(ds, idx_trailing_data, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    expect_idx_error(g_img, g_il + 1, g_lab, g_ll,
                     "dimensions do not match the size", 'i');
    expect_idx_error(g_img, g_il, g_lab, g_ll + 3,
                     "dimensions do not match the size", 'l');
    /* rows say 2 instead of 3: the data is too long for the dims */
    put_be32(g_img + 8, 2);
    expect_idx_error(g_img, g_il, g_lab, g_ll,
                     "dimensions do not match the size", 'i');
}

Test(ds, idx_count_mismatch, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    uint8_t lab[8 + SMALL_N];
    size_t ll = idx_labels(lab, SMALL_N - 1);
    expect_idx_error(g_img, g_il, lab, ll, "5 images but", 'b');
}

Test(ds, idx_label_out_of_range, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    g_lab[8 + 3] = 10;
    expect_idx_error(g_img, g_il, g_lab, g_ll, "label 10 at index 3 outside 0..9",
                     'l');
    g_lab[8 + 3] = 255;
    expect_idx_error(g_img, g_il, g_lab, g_ll, "label 255", 'l');
}

Test(ds, idx_absurd_sizes, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    put_be32(g_img + 4, 0);
    put_be32(g_lab + 4, 0);
    expect_idx_error(g_img, 16, g_lab, 8, "no images", 'i');

    small_files();
    put_be32(g_img + 4, 20000000);
    put_be32(g_lab + 4, 20000000);
    expect_idx_error(g_img, g_il, g_lab, g_ll, "more than the limit", 'i');

    small_files();
    put_be32(g_img + 8, 0);
    expect_idx_error(g_img, g_il, g_lab, g_ll, "image size 0x4 outside", 'i');
    put_be32(g_img + 8, 1025);
    expect_idx_error(g_img, g_il, g_lab, g_ll, "image size 1025x4", 'i');
    put_be32(g_img + 8, 0xffffffffu);
    put_be32(g_img + 12, 0xffffffffu);
    expect_idx_error(g_img, g_il, g_lab, g_ll, "outside 1..1024", 'i');

    /* Headers at the caps that lie about the data: must fail as truncated
     * without allocating what they claim (10^7 images of 1024x1024). */
    small_files();
    put_be32(g_img + 4, 10000000);
    put_be32(g_img + 8, 1024);
    put_be32(g_img + 12, 1024);
    put_be32(g_lab + 4, 10000000);
    expect_idx_error(g_img, g_il, g_lab, g_ll, "truncated data", 'i');
}

Test(ds, idx_bad_gzip, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    small_files();
    char pi[512], pl[512];
    tpath(pi, "c-images.gz");
    tpath(pl, "c-labels");
    write_file(pi, g_img, g_il, 1);
    write_file(pl, g_lab, g_ll, 0);
    /* cut the gzip file short: its trailer (and maybe data) are missing */
    struct stat st;
    cr_assert_eq(stat(pi, &st), 0);
    cr_assert_eq(truncate(pi, st.st_size - 6), 0);
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_load_idx(&d, pi, pl, &err), -1);
    expect_msg(err.msg, pi, "truncated");

    /* a corrupt stream: gzip magic followed by garbage */
    uint8_t junk[64] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    for (size_t i = 10; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 77);
    write_file(pi, junk, sizeof junk, 0);
    memset(&err, 0, sizeof err);
    cr_assert_eq(ds_load_idx(&d, pi, pl, &err), -1);
    expect_msg(err.msg, pi, NULL);
}

Test(ds, idx_missing_file, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    char pi[512], pl[512];
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_load_idx(&d, tpath(pi, "nope"), tpath(pl, "nope2"), &err),
                 -1);
    expect_msg(err.msg, "cannot open", pi);
    expect_msg(err.msg, "No such file", NULL);
    /* a directory is not a file */
    memset(&err, 0, sizeof err);
    cr_assert_eq(ds_load_idx(&d, ds_tdir, pl, &err), -1);
    expect_msg(err.msg, "cannot open", "not a regular file");
}

/* ------------------------------------------------------------ CSV good */

static const int csv_labels[3] = {5, 0, 9};

/* Three rows (labels 5, 0, 9) with the given line ending, optionally a
 * header, optionally no line ending after the last row. */
static void csv_three(tbuf *t, const char *eol, int header, int last_eol)
{
    if (header) tb_header(t, "label", eol);
    for (int i = 0; i < 3; i++)
        tb_row(t, csv_labels[i], i, DS_PIXELS, (i < 2 || last_eol) ? eol : "");
}

/* Parses t whole, byte by byte, and in 7 and 4096-byte chunks; each must
 * give the three rows of csv_three. */
static void expect_csv_three(const tbuf *t)
{
    size_t chunks[] = {0, 1, 7, 4096};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        ds_dataset d;
        mn_err err = {{0}};
        cr_assert_eq(csv_parse(t->s, t->len, chunks[c], 0, &d, &err), 0,
                     "chunk %zu: %s", chunks[c], err.msg);
        check_csv_rows(&d, csv_labels, 3);
        ds_free(&d);
    }
}

Test(ds, csv_good_variants)
{
    for (int header = 0; header < 2; header++)
        for (int crlf = 0; crlf < 2; crlf++)
            for (int last = 0; last < 2; last++) {
                tbuf t = {0};
                csv_three(&t, crlf ? "\r\n" : "\n", header, last);
                expect_csv_three(&t);
                free(t.s);
            }
}

Test(ds, csv_header_forms)
{
    const char *firsts[] = {"label", "Label", "\"label\"", "y", "  label "};
    for (size_t i = 0; i < sizeof firsts / sizeof *firsts; i++) {
        tbuf t = {0};
        tb_header(&t, firsts[i], "\n");
        csv_three(&t, "\n", 0, 1);
        expect_csv_three(&t);
        free(t.s);
    }
    /* a header of one field only, a UTF-8 byte order mark before it */
    tbuf t = {0};
    tb_str(&t, "\xef\xbb\xbflabel\n");
    csv_three(&t, "\n", 0, 1);
    expect_csv_three(&t);
    free(t.s);
}

Test(ds, csv_spaces_and_blank_lines)
{
    /* spaces/tabs around values, blank lines (documented as skipped)
     * before the header, in the middle and at the end */
    tbuf t = {0};
    tb_str(&t, "\n  \n");
    tb_header(&t, "label", "\r\n");
    char num[16];
    for (int i = 0; i < 3; i++) {
        snprintf(num, sizeof num, " %d\t", csv_labels[i]);
        tb_str(&t, num);
        for (int j = 0; j < DS_PIXELS; j++) {
            snprintf(num, sizeof num, ", %d ", csv_pix(i, j));
            tb_str(&t, num);
        }
        tb_str(&t, i == 1 ? "\r\n\r\n\n" : "\n");
    }
    tb_str(&t, "\n\n");
    expect_csv_three(&t);
    free(t.s);
}

Test(ds, csv_leading_zeros)
{
    tbuf t = {0};
    tb_str(&t, "007");
    for (int j = 0; j < DS_PIXELS; j++) tb_str(&t, ",0255");
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(csv_parse(t.s, t.len, 0, 0, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.labels[0], 7);
    cr_assert_eq(d.pixels[783], 255);
    ds_free(&d);
    free(t.s);
}

/* Three rows like csv_three but every value written by `fmt` (a printf
 * format taking the value), e.g. "%d.0" as pandas writes whole floats. */
static void csv_three_fmt(tbuf *t, const char *fmt)
{
    char num[64];
    for (int i = 0; i < 3; i++) {
        snprintf(num, sizeof num, fmt, csv_labels[i]);
        tb_str(t, num);
        for (int j = 0; j < DS_PIXELS; j++) {
            tb_str(t, ",");
            snprintf(num, sizeof num, fmt, csv_pix(i, j));
            tb_str(t, num);
        }
        tb_str(t, "\n");
    }
}

Test(ds, csv_whole_numbers_with_a_point_or_exponent)
{
    /* whole numbers as pandas, spreadsheets and printf write them */
    const char *fmts[] = {"%d.0", "%d.00", "%d.", "%de0", "%d.000e+0",
                          "%d00e-2", "%d0E-1", " %d.0 "};
    for (size_t k = 0; k < sizeof fmts / sizeof *fmts; k++) {
        tbuf t = {0};
        csv_three_fmt(&t, fmts[k]);
        expect_csv_three(&t);
        free(t.s);
    }
    /* an exponent that makes a whole number, -0, long zero tails */
    const char *vals[] = {"1e2", "2.55e2", "1.5E+1", "25500e-2", "-0",
                          "-0.0", "0.000", "7.0000000000000000000000000000000",
                          "000000000000000000000000000012", "0.0e-99999999",
                          "0.12e3", "1000000000000000000000000e-22"};
    const int want[] = {100, 255, 15, 255, 0, 0, 0, 7, 12, 0, 120, 100};
    for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
        tbuf t = {0};
        tb_str(&t, "7.0,");
        tb_str(&t, vals[k]);
        for (int j = 1; j < DS_PIXELS; j++) tb_str(&t, ",0.0");
        tb_str(&t, "\n");
        ds_dataset d;
        mn_err err = {{0}};
        for (size_t chunk = 0; chunk < 3; chunk++) {
            cr_assert_eq(csv_parse(t.s, t.len, chunk, 0, &d, &err), 0,
                         "%s: %s", vals[k], err.msg);
            cr_assert_eq(d.labels[0], 7);
            cr_assert_eq(d.pixels[0], want[k], "%s gave %d", vals[k],
                         d.pixels[0]);
            ds_free(&d);
        }
        free(t.s);
    }
    /* a label written -0.0 */
    tbuf t = {0};
    tb_str(&t, "-0.0");
    for (int j = 0; j < DS_PIXELS; j++) tb_str(&t, ",255.0");
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(csv_parse(t.s, t.len, 0, 0, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.labels[0], 0);
    cr_assert_eq(d.pixels[783], 255);
    ds_free(&d);
    free(t.s);
}

/* Three good rows, then line 4: label 4 and the given pixel texts (the
 * rest of the 784 pixels `rest`). */
static void tb_bad_row(tbuf *t, const char *const *px, int n, const char *rest)
{
    for (int i = 0; i < 3; i++) tb_row(t, 3, i, DS_PIXELS, "\n");
    tb_str(t, "4");
    for (int j = 0; j < DS_PIXELS; j++) {
        tb_str(t, ",");
        tb_str(t, j < n ? px[j] : rest);
    }
    tb_str(t, "\n");
}

Test(ds, csv_err_pixel_not_whole)
{
    /* a fraction among 0..255 values: pixels are integers 0..255 */
    const char *fr[] = {"0", "17", "0.5"};
    tbuf t = {0};
    tb_bad_row(&t, fr, 3, "200");
    expect_csv_error(&t, "line 4, column 4: pixel 0.5 is not a whole number",
                     "CSV pixels are integers 0..255");
    mn_err e = {{0}};
    ds_dataset d;
    cr_assert_eq(csv_parse(t.s, t.len, 0, 0, &d, &e), -1);
    cr_assert_null(strstr(e.msg, "scaled"), "%s", e.msg);
    free(t.s);
    /* the same digits kept exactly: no rounding up to a whole number */
    const char *close[] = {"254.99999999999999999999", "1.25e1", "0.1e1e",
                           "255.0000000000000000000000001"};
    for (size_t k = 0; k < 4; k++) {
        tbuf u = {0};
        tb_bad_row(&u, &close[k], 1, "3");
        expect_csv_error(&u, "line 4, column 2: ",
                         k == 2 ? "is not a number" : "is not a whole number");
        free(u.s);
    }
    /* a whole row in 0..1: the file looks scaled like the JSON API's */
    const char *unit[] = {"0", "0.25", "1", "1.0", "0.999", "-0"};
    tbuf v = {0};
    tb_bad_row(&v, unit, 6, "0.0");
    expect_csv_error(&v, "line 4, column 3: pixel 0.25 is not a whole number",
                     "the file looks scaled to 0..1");
    free(v.s);
    /* ... but not when a later pixel of the row is above 1 */
    tbuf w = {0};
    tb_bad_row(&w, unit, 6, "2");
    expect_csv_error(&w, "line 4, column 3: pixel 0.25", "integers 0..255");
    cr_assert_eq(csv_parse(w.s, w.len, 0, 0, &d, &e), -1);
    cr_assert_null(strstr(e.msg, "scaled"), "%s", e.msg);
    free(w.s);
    /* out of range, whole: the range and the rule */
    const char *big[] = {"1e3", "256.0", "-1.0", "-3", "99999999999999999999.0"};
    for (size_t k = 0; k < 5; k++) {
        tbuf u = {0};
        tb_bad_row(&u, &big[k], 1, "3");
        char want[96];
        snprintf(want, sizeof want, "line 4, column 2: pixel %s outside "
                 "0..255", big[k]);
        expect_csv_error(&u, want, "CSV pixels are integers 0..255");
        free(u.s);
    }
}

Test(ds, csv_err_label_not_whole)
{
    const char *labels[] = {"7.5", "0.1", "1e-1"};
    for (size_t k = 0; k < 3; k++) {
        tbuf t = {0};
        tb_str(&t, labels[k]);
        for (int j = 0; j < DS_PIXELS; j++) tb_str(&t, ",0");
        tb_str(&t, "\n");
        char want[64];
        snprintf(want, sizeof want, "line 1: label %s is not a whole number",
                 labels[k]);
        expect_csv_error(&t, want, "integers 0..9");
        free(t.s);
    }
    const char *out[] = {"1e1", "10.0", "-1.0", "9.5e1"};
    for (size_t k = 0; k < 4; k++) {
        tbuf t = {0};
        tb_str(&t, out[k]);
        for (int j = 0; j < DS_PIXELS; j++) tb_str(&t, ",0");
        tb_str(&t, "\n");
        char want[64];
        snprintf(want, sizeof want, "line 1: label %s outside 0..9", out[k]);
        expect_csv_error(&t, want, NULL);
        free(t.s);
    }
}

Test(ds, csv_cr_only_line_endings)
{
    /* old spreadsheets end lines with CR alone */
    for (int header = 0; header < 2; header++)
        for (int last = 0; last < 2; last++) {
            tbuf t = {0};
            csv_three(&t, "\r", header, last);
            expect_csv_three(&t);
            free(t.s);
        }
    /* line numbers count CR, LF and CRLF once each, however fed */
    tbuf t = {0};
    tb_row(&t, 1, 0, DS_PIXELS, "\r");
    tb_row(&t, 1, 1, DS_PIXELS, "\r\n");
    tb_str(&t, "\r\n\n\r");
    tb_row(&t, 12, 2, DS_PIXELS, "\r");
    expect_csv_error(&t, "line 6: label 12 outside 0..9", NULL);
    free(t.s);
}

Test(ds, csv_err_lost_line_breaks)
{
    /* `curl -d @file.csv` strips the line breaks: rows run together */
    tbuf t = {0};
    for (int i = 0; i < 3; i++) tb_row(&t, 1, i, DS_PIXELS, "");
    expect_csv_error(&t, "line 1: expected 785 columns (label + 784 pixels), "
                     "got 2353", "lost its line breaks");
    expect_csv_error(&t, "--data-binary", NULL);
    free(t.s);
    /* a longer file: the line runs past the length limit */
    tbuf u = {0};
    tb_header(&u, "label", "");
    for (int i = 0; i < 60; i++) tb_row(&u, 1, i, DS_PIXELS, "");
    expect_csv_error(&u, "line 1: longer than 65536 bytes",
                     "lost its line breaks");
    expect_csv_error(&u, "--data-binary", NULL);
    free(u.s);
    /* one row too long is not called that */
    tbuf v = {0};
    tb_row(&v, 1, 0, DS_PIXELS, "\n");
    tb_row(&v, 1, 1, DS_PIXELS + 3, "\n");
    expect_csv_error(&v, "line 2: expected 785 columns", "got 788");
    mn_err e = {{0}};
    ds_dataset d;
    cr_assert_eq(csv_parse(v.s, v.len, 0, 0, &d, &e), -1);
    cr_assert_null(strstr(e.msg, "line breaks"), "%s", e.msg);
    free(v.s);
}

Test(ds, csv_load_file, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    tbuf t = {0};
    csv_three(&t, "\n", 1, 1);
    const char *names[] = {"d.csv", "d.csv.gz"};
    for (int gz = 0; gz < 2; gz++) {
        char p[512];
        write_file(tpath(p, names[gz]), t.s, t.len, gz);
        ds_dataset d;
        mn_err err = {{0}};
        cr_assert_eq(ds_load_csv(&d, p, &err), 0, "%s", err.msg);
        check_csv_rows(&d, csv_labels, 3);
        ds_free(&d);
        cr_assert_eq(ds_load_named(&d, "/nonexistent", p, &err), 0, "%s",
                     err.msg);
        check_csv_rows(&d, csv_labels, 3);
        ds_free(&d);
    }
    free(t.s);
}

/* ------------------------------------------------------- CSV malformed */

Test(ds, csv_err_too_few_columns)
{
    tbuf t = {0};
    tb_row(&t, 1, 0, DS_PIXELS, "\n");
    tb_row(&t, 1, 1, DS_PIXELS, "\n");
    tb_row(&t, 2, 2, DS_PIXELS - 2, "\n");
    expect_csv_error(&t, "line 3: expected 785 columns (label + 784 pixels), "
                     "got 783", NULL);
    free(t.s);
}

Test(ds, csv_err_too_many_columns)
{
    tbuf t = {0};
    tb_row(&t, 1, 0, DS_PIXELS + 3, "\r\n");
    expect_csv_error(&t, "line 1: expected 785 columns", "got 788");
    free(t.s);
    /* ... also on a last line without a newline, after a header */
    tbuf u = {0};
    tb_header(&u, "label", "\n");
    tb_row(&u, 1, 0, 5, "");
    expect_csv_error(&u, "line 2: expected 785 columns", "got 6");
    free(u.s);
}

Test(ds, csv_err_label_range)
{
    tbuf t = {0};
    tb_row(&t, 1, 0, DS_PIXELS, "\n");
    tb_row(&t, 1, 1, DS_PIXELS, "\n");
    tb_row(&t, 12, 2, DS_PIXELS, "\n");
    expect_csv_error(&t, "line 3: label 12 outside 0..9", NULL);
    free(t.s);
    tbuf u = {0};
    tb_row(&u, -1, 0, DS_PIXELS, "\n");
    expect_csv_error(&u, "line 1: label -1 outside 0..9", NULL);
    free(u.s);
    tbuf v = {0};
    tb_str(&v, "99999999999999999999999999");
    tb_row(&v, 0, 0, DS_PIXELS, "\n");
    expect_csv_error(&v, "line 1: label 99999999999999999999999999", NULL);
    free(v.s);
}

Test(ds, csv_err_pixel_range)
{
    tbuf t = {0};
    for (int i = 0; i < 3; i++) tb_row(&t, 3, i, DS_PIXELS, "\n");
    tb_str(&t, "4");
    for (int j = 0; j < DS_PIXELS; j++) tb_str(&t, j == 18 ? ",300" : ",1");
    tb_str(&t, "\n");
    expect_csv_error(&t, "line 4, column 20: pixel 300 outside 0..255", NULL);
    free(t.s);
    tbuf u = {0};
    tb_str(&u, "4,-3\n");
    expect_csv_error(&u, "line 1, column 2: pixel -3 outside 0..255", NULL);
    free(u.s);
}

Test(ds, csv_err_not_a_number)
{
    const char *bad[] = {"abc", "+5", "1 2", "0x10", "-", "\"7\"", ".", "1e",
                         "1e+", "1.2.3", "e5", "1e2.5", "--1", "1-", "1e2e3",
                         "nan", "inf", "1,5"};
    const char *shown[] = {"'abc'", "'+5'", "'1 2'", "'0x10'", "'-'",
                           "'\"7\"'", "'.'", "'1e'", "'1e+'", "'1.2.3'",
                           "'e5'", "'1e2.5'", "'--1'", "'1-'", "'1e2e3'",
                           "'nan'", "'inf'", NULL};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        tbuf t = {0};
        for (int i = 0; i < 3; i++) tb_row(&t, 3, i, DS_PIXELS, "\n");
        tb_str(&t, "4,5,");
        tb_str(&t, bad[k]);
        for (int j = 2; j < DS_PIXELS; j++) tb_str(&t, ",1");
        tb_str(&t, "\n");
        if (!shown[k]) { /* "1,5": one column too many */
            expect_csv_error(&t, "line 4: expected 785 columns", "got 786");
        } else {
            expect_csv_error(&t, "line 4, column 3: ", shown[k]);
            expect_csv_error(&t, "is not a number", NULL);
        }
        free(t.s);
    }
}

Test(ds, csv_err_header_later)
{
    /* only the first non-blank line may be a header */
    tbuf t = {0};
    tb_row(&t, 3, 0, DS_PIXELS, "\n");
    tb_header(&t, "label", "\n");
    expect_csv_error(&t, "line 2, column 1: 'label' is not a number", NULL);
    free(t.s);
    tbuf u = {0};
    tb_header(&u, "label", "\n");
    tb_header(&u, "label", "\n");
    expect_csv_error(&u, "line 2, column 1: 'label' is not a number", NULL);
    free(u.s);
}

Test(ds, csv_err_empty_field)
{
    tbuf t = {0};
    tb_str(&t, "1,2,3,,5\n");
    expect_csv_error(&t, "line 1, column 4: empty field", NULL);
    free(t.s);
    tbuf u = {0};
    tb_str(&u, ",1\n");
    expect_csv_error(&u, "line 1, column 1: empty field", NULL);
    free(u.s);
}

Test(ds, csv_err_overlong_line)
{
    tbuf t = {0};
    tb_row(&t, 3, 0, DS_PIXELS, "\n");
    tb_str(&t, "1,");
    char *zeros = malloc(70000);
    cr_assert_not_null(zeros);
    memset(zeros, '0', 70000);
    tb_add(&t, zeros, 70000);
    tb_str(&t, "\n");
    expect_csv_error(&t, "line 2: longer than 65536 bytes", NULL);
    free(zeros);
    free(t.s);
}

Test(ds, csv_err_no_rows)
{
    const char *texts[] = {"", "\n", "\r\n\n   \n", "label,a,b\n", "\xef\xbb\xbf"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        tbuf t = {0};
        tb_str(&t, texts[k]);
        expect_csv_error(&t, "no rows", NULL);
        free(t.s);
    }
}

Test(ds, csv_err_binary)
{
    tbuf t = {0};
    tb_str(&t, "\n\n1,2,\x01\xff\n");
    expect_csv_error(&t, "line 3, column 3: '?" "?' is not a number", NULL);
    free(t.s);
    tbuf u = {0};
    tb_str(&u, "\xef\xbb" "5,1\n");
    expect_csv_error(&u, "line 1: malformed byte order mark", NULL);
    free(u.s);
}

Test(ds, csv_err_max_rows)
{
    tbuf t = {0};
    tb_header(&t, "label", "\n");
    for (int i = 0; i < 3; i++) tb_row(&t, 1, i, DS_PIXELS, "\n");
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(csv_parse(t.s, t.len, 0, 2, &d, &err), -1);
    expect_msg(err.msg, "line 4: more than 2 rows", NULL);
    cr_assert_eq(csv_parse(t.s, t.len, 0, 3, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 3);
    ds_free(&d);
    free(t.s);
}

Test(ds, csv_errors_are_sticky)
{
    ds_csv *p = ds_csv_new(NULL, 0);
    cr_assert_not_null(p);
    mn_err err = {{0}}, again = {{0}};
    cr_assert_eq(ds_csv_feed(p, "1,x,", 4, &err), -1);
    expect_msg(err.msg, "line 1, column 2: 'x' is not a number", NULL);
    tbuf t = {0};
    tb_row(&t, 1, 0, DS_PIXELS, "\n");
    cr_assert_eq(ds_csv_feed(p, t.s, t.len, &again), -1);
    cr_assert_str_eq(again.msg, err.msg);
    ds_dataset d;
    memset(&again, 0, sizeof again);
    cr_assert_eq(ds_csv_finish(p, &d, &again), -1);
    cr_assert_str_eq(again.msg, err.msg);
    cr_assert_null(d.pixels);
    ds_csv_free(p);

    /* feeding after a successful finish is an error, not a crash */
    p = ds_csv_new("late", 0);
    cr_assert_not_null(p);
    cr_assert_eq(ds_csv_feed(p, t.s, t.len, NULL), 0);
    cr_assert_eq(ds_csv_finish(p, &d, NULL), 0);
    cr_assert_eq(d.n, 1);
    ds_free(&d);
    cr_assert_eq(ds_csv_feed(p, t.s, t.len, &err), -1);
    expect_msg(err.msg, "late", "after the end");
    cr_assert_eq(ds_csv_finish(p, &d, &again), -1);
    cr_assert_str_eq(again.msg, err.msg);
    cr_assert_null(d.pixels);
    ds_csv_free(p);
    free(t.s);
}

/* ------------------------------------------------------------ by name */

Test(ds, load_named_mnist_missing, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_load_named(&d, ds_tdir, "mnist", &err), -1);
    expect_msg(err.msg, "cannot open", "mnist/train-images-idx3-ubyte");
    expect_msg(err.msg, "run make data", NULL);
    cr_assert_eq(ds_load_named(&d, ds_tdir, "mnist-test", &err), -1);
    expect_msg(err.msg, "mnist/t10k-images-idx3-ubyte", "run make data");
    cr_assert_eq(ds_load_named(&d, NULL, "mnist", &err), -1);
    cr_assert_eq(ds_load_named(&d, ds_tdir, "", &err), -1);
    cr_assert_eq(ds_load_named(&d, ds_tdir, NULL, &err), -1);
}

Test(ds, load_named_mnist_gz, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    char p[512];
    small_files();
    cr_assert_eq(mkdir(tpath(p, "mnist"), 0755), 0);
    write_file(tpath(p, "mnist/t10k-images-idx3-ubyte.gz"), g_img, g_il, 1);
    write_file(tpath(p, "mnist/t10k-labels-idx1-ubyte"), g_lab, g_ll, 0);
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_load_named(&d, ds_tdir, "mnist-test", &err), 0, "%s",
                 err.msg);
    check_small(&d);
    ds_free(&d);
    /* images present, labels missing: the labels path is named */
    write_file(tpath(p, "mnist/train-images-idx3-ubyte"), g_img, g_il, 0);
    cr_assert_eq(ds_load_named(&d, ds_tdir, "mnist", &err), -1);
    expect_msg(err.msg, "train-labels-idx1-ubyte", "run make data");
}

Test(ds, load_named_idx_path, .init = ds_tmp_setup, .fini = ds_tmp_teardown)
{
    char pi[512], pl[512];
    small_files();
    write_file(tpath(pi, "fashion-images-idx3-ubyte.gz"), g_img, g_il, 1);
    write_file(tpath(pl, "fashion-labels-idx1-ubyte.gz"), g_lab, g_ll, 1);
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_load_named(&d, NULL, pi, &err), 0, "%s", err.msg);
    check_small(&d);
    ds_free(&d);
    /* no "images-idx3" in the name: the labels cannot be found */
    write_file(tpath(pi, "other.idx"), g_img, g_il, 0);
    cr_assert_eq(ds_load_named(&d, NULL, pi, &err), -1);
    expect_msg(err.msg, pi, "images-idx3");
    /* a missing CSV */
    cr_assert_eq(ds_load_named(&d, NULL, tpath(pi, "none.csv"), &err), -1);
    expect_msg(err.msg, "cannot open", pi);
}

Test(ds, load_named_idx_dotted_names, .init = ds_tmp_setup,
     .fini = ds_tmp_teardown)
{
    /* the spellings of shared MNIST downloads, gzipped or not, mixed */
    const char *names[][2] = {
        {"train-images.idx3-ubyte", "train-labels.idx1-ubyte"},
        {"t10k-images.idx3-ubyte.gz", "t10k-labels.idx1-ubyte.gz"},
        {"a-images-idx3-ubyte.gz", "a-labels-idx1-ubyte"},
        {"b-images.idx3-ubyte", "b-labels.idx1-ubyte.gz"},
    };
    small_files();
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char pi[512], pl[512], found[512];
        write_file(tpath(pi, names[k][0]), g_img, g_il, ends_with_gz(pi));
        write_file(tpath(pl, names[k][1]), g_lab, g_ll, ends_with_gz(pl));
        ds_dataset d;
        mn_err err = {{0}};
        cr_assert_eq(ds_idx_labels_path(pi, found, sizeof found, &err), 0,
                     "%s", err.msg);
        cr_assert_str_eq(found, pl);
        cr_assert_eq(ds_load_named(&d, NULL, pi, &err), 0, "%s: %s",
                     names[k][0], err.msg);
        check_small(&d);
        ds_free(&d);
    }
    /* no labels file: the derived name is the one reported missing */
    char pi[512], pl[512];
    write_file(tpath(pi, "c-images.idx3-ubyte"), g_img, g_il, 0);
    ds_dataset d;
    mn_err err = {{0}};
    cr_assert_eq(ds_load_named(&d, NULL, pi, &err), -1);
    expect_msg(err.msg, tpath(pl, "c-labels.idx1-ubyte"), NULL);
    /* neither spelling in the name */
    cr_assert_eq(ds_idx_labels_path("x/images_idx3", pl, sizeof pl, &err), -1);
    expect_msg(err.msg, "images-idx3", "images.idx3");
}

/* ---------------------------------------------------------- split etc. */

Test(ds, split_deterministic)
{
    ds_dataset d = {.n = 1000};
    uint32_t *t1, *v1, *t2, *v2, *t3, *v3, nt, nv;
    mn_err err = {{0}};
    cr_assert_eq(ds_split(&d, 400, 100, 42, &t1, &nt, &v1, &nv, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(nt, 300);
    cr_assert_eq(nv, 100);
    cr_assert_eq(ds_split(&d, 400, 100, 42, &t2, &nt, &v2, &nv, &err), 0);
    cr_assert_eq(memcmp(t1, t2, 300 * sizeof *t1), 0);
    cr_assert_eq(memcmp(v1, v2, 100 * sizeof *v1), 0);
    cr_assert_eq(ds_split(&d, 400, 100, 43, &t3, &nt, &v3, &nv, &err), 0);
    cr_assert_neq(memcmp(t1, t3, 300 * sizeof *t1), 0);

    /* disjoint, and together exactly the head 0..399 */
    uint8_t seen[400] = {0};
    for (uint32_t i = 0; i < 300; i++) {
        cr_assert_lt(t1[i], 400);
        cr_assert_eq(seen[t1[i]]++, 0);
    }
    for (uint32_t i = 0; i < 100; i++) {
        cr_assert_lt(v1[i], 400);
        cr_assert_eq(seen[v1[i]]++, 0);
    }
    /* shuffled: not the identity order */
    int sorted = 1;
    for (uint32_t i = 1; i < 300; i++) sorted &= t1[i] > t1[i - 1];
    cr_assert_not(sorted);
    free(t1);
    free(v1);
    free(t2);
    free(v2);
    free(t3);
    free(v3);

    /* the smallest legal split, and all of the dataset */
    cr_assert_eq(ds_split(&d, 2, 1, 7, &t1, &nt, &v1, &nv, &err), 0);
    cr_assert_eq(nt, 1);
    cr_assert_eq(t1[0] + v1[0], 1);
    free(t1);
    free(v1);
    cr_assert_eq(ds_split(&d, 1000, 999, 7, &t1, &nt, &v1, &nv, &err), 0);
    free(t1);
    free(v1);
}

Test(ds, split_errors)
{
    ds_dataset d = {.n = 100};
    uint32_t *t = (uint32_t *)&d, *v = (uint32_t *)&d, nt = 9, nv = 9;
    mn_err err = {{0}};
    struct {
        uint32_t ex, val;
        const char *want;
    } cases[] = {
        {101, 10, "more than the dataset's 100 rows"},
        {0, 0, "examples must be at least 1"},
        {50, 0, "validation examples must be at least 1"},
        {50, 50, "must be fewer than examples (50)"},
        {50, 60, "validation examples (60)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        memset(&err, 0, sizeof err);
        cr_assert_eq(ds_split(&d, cases[k].ex, cases[k].val, 1, &t, &nt, &v,
                              &nv, &err), -1);
        expect_msg(err.msg, cases[k].want, NULL);
        cr_assert_null(t);
        cr_assert_null(v);
        cr_assert_eq(nt, 0);
        cr_assert_eq(nv, 0);
    }
}

Test(ds, gather)
{
    uint8_t img[3 * 2 * 2] = {0, 1, 2, 255, 10, 20, 30, 40, 128, 127, 254, 3};
    uint8_t lab[3] = {4, 8, 2};
    ds_dataset d = {.n = 3, .rows = 2, .cols = 2, .pixels = img, .labels = lab};
    uint32_t idx[4] = {2, 0, 2, 1};
    float x[16];
    uint8_t y[4];
    ds_gather(&d, idx, 4, x, y);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(y[i], lab[idx[i]]);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(x[i * 4 + j], (float)img[idx[i] * 4 + j] / 255.0f);
    }
    cr_assert_eq(x[7], 1.0f);
    cr_assert_eq(x[4], 0.0f);
    ds_gather(&d, idx, 2, x, NULL); /* labels optional */
    cr_assert_eq(x[0], 128.0f / 255.0f);
}

/* --------------------------------------------------------- no crashes */

/* Random bytes and random mutations of small valid files, through
 * ds_parse_idx and ds_csv_feed/finish. The assertion is only "returns";
 * under ASan that means no out-of-bounds read or write and no leak. */
Test(ds, random_input_never_crashes)
{
    rng_state r;
    rng_seed(&r, 12345);
    small_files();
    uint8_t buf[256];
    int ok_idx = 0, ok_csv = 0;

    for (int it = 0; it < 2000; it++) {
        /* IDX: either file random, or a valid one with a few bytes hit
         * (header bytes favoured), cut or extended */
        size_t len;
        uint8_t *target;
        int which = (int)rng_below(&r, 2);
        if (rng_below(&r, 4) == 0) {
            len = rng_below(&r, sizeof buf);
            for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rng_next(&r);
        } else {
            const uint8_t *src = which ? g_lab : g_img;
            size_t sl = which ? g_ll : g_il;
            memcpy(buf, src, sl);
            len = sl;
            int hits = 1 + (int)rng_below(&r, 4);
            for (int h = 0; h < hits; h++) {
                size_t at = rng_below(&r, 2) ? rng_below(&r, 16)
                                             : rng_below(&r, (uint32_t)sl);
                buf[at] = (uint8_t)rng_next(&r);
            }
            if (rng_below(&r, 3) == 0) {
                len = rng_below(&r, (uint32_t)sizeof buf);
                for (size_t i = sl; i < len; i++) buf[i] = (uint8_t)i;
            }
        }
        target = malloc(len ? len : 1); /* exact size: ASan sees overreads */
        cr_assert_not_null(target);
        memcpy(target, buf, len);
        ds_dataset d;
        mn_err err = {{0}};
        int rc = which ? ds_parse_idx(&d, g_img, g_il, "i", target, len, "l",
                                      &err)
                       : ds_parse_idx(&d, target, len, "i", g_lab, g_ll, "l",
                                      &err);
        if (rc == 0) {
            cr_assert_leq(d.n, 10000000u);
            for (uint32_t i = 0; i < d.n; i++) cr_assert_leq(d.labels[i], 9);
            ok_idx++;
            ds_free(&d);
        } else {
            cr_assert_neq(err.msg[0], '\0');
        }
        free(target);
    }

    /* CSV: a valid two-row file, mutated, fed in random chunks */
    tbuf t = {0};
    tb_header(&t, "label", "\n");
    tb_row(&t, 1, 0, DS_PIXELS, "\r\n");
    tb_row(&t, 2, 1, DS_PIXELS, "");
    static const char alphabet[] = "0123456789,,,  \r\n\n-.a\"\t\xff";
    for (int it = 0; it < 2000; it++) {
        size_t len;
        char *text;
        if (rng_below(&r, 4) == 0) {
            len = rng_below(&r, 4000);
            text = malloc(len ? len : 1);
            cr_assert_not_null(text);
            for (size_t i = 0; i < len; i++)
                text[i] = rng_below(&r, 2)
                              ? (char)rng_next(&r)
                              : alphabet[rng_below(&r, sizeof alphabet - 1)];
        } else {
            len = t.len;
            if (rng_below(&r, 3) == 0) len = rng_below(&r, (uint32_t)t.len);
            text = malloc(len ? len : 1);
            cr_assert_not_null(text);
            memcpy(text, t.s, len);
            int hits = 1 + (int)rng_below(&r, 3);
            for (int h = 0; h < hits && len; h++)
                text[rng_below(&r, (uint32_t)len)] =
                    alphabet[rng_below(&r, sizeof alphabet - 1)];
        }
        ds_csv *p = ds_csv_new("fuzz", rng_below(&r, 3));
        cr_assert_not_null(p);
        ds_dataset d;
        mn_err err = {{0}};
        int rc = 0;
        for (size_t off = 0; off < len && rc == 0;) {
            size_t n = 1 + rng_below(&r, 600);
            if (n > len - off) n = len - off;
            char *chunk = malloc(n); /* exact size again */
            cr_assert_not_null(chunk);
            memcpy(chunk, text + off, n);
            rc = ds_csv_feed(p, chunk, n, &err);
            free(chunk);
            off += n;
        }
        if (rc == 0) rc = ds_csv_finish(p, &d, &err);
        if (rc == 0) {
            cr_assert_geq(d.n, 1);
            for (uint32_t i = 0; i < d.n; i++) cr_assert_leq(d.labels[i], 9);
            ok_csv++;
            ds_free(&d);
        } else {
            cr_assert_neq(err.msg[0], '\0');
            cr_assert_not_null(strstr(err.msg, "fuzz"), "%s", err.msg);
        }
        ds_csv_free(p);
        free(text);
    }
    free(t.s);
    /* the mutations should leave some inputs valid */
    cr_assert_gt(ok_idx, 0);
    cr_assert_gt(ok_csv, 0);
}

/* --------------------------------------------------------- real MNIST */

Test(ds, real_mnist)
{
    static const uint32_t train_counts[10] = {5923, 6742, 5958, 6131, 5842,
                                              5421, 5918, 6265, 5851, 5949};
    static const uint32_t test_counts[10] = {980, 1135, 1032, 1010, 982,
                                             892, 958, 1028, 974, 1009};
    ds_dataset tr, te;
    mn_err err = {{0}};
    th_load(&tr, "mnist");
    cr_assert_eq(tr.n, 60000);
    cr_assert_eq(tr.rows, 28);
    cr_assert_eq(tr.cols, 28);
    cr_assert_eq(tr.labels[0], 5);
    uint32_t counts[10] = {0};
    for (uint32_t i = 0; i < tr.n; i++) {
        cr_assert_leq(tr.labels[i], 9);
        counts[tr.labels[i]]++;
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], train_counts[c]);

    th_load(&te, "mnist-test");
    cr_assert_eq(te.n, 10000);
    cr_assert_eq(te.labels[0], 7);
    memset(counts, 0, sizeof counts);
    for (uint32_t i = 0; i < te.n; i++) {
        cr_assert_leq(te.labels[i], 9);
        counts[te.labels[i]]++;
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], test_counts[c]);

    /* the exercise's split and one batch */
    uint32_t *ti, *vi, nt, nv;
    cr_assert_eq(ds_split(&tr, 10000, 2500, 1, &ti, &nt, &vi, &nv, &err), 0);
    cr_assert_eq(nt, 7500);
    cr_assert_eq(nv, 2500);
    float *x = malloc(30 * DS_PIXELS * sizeof *x);
    uint8_t y[30];
    cr_assert_not_null(x);
    ds_gather(&tr, ti, 30, x, y);
    for (int i = 0; i < 30; i++) {
        float s = 0;
        for (int j = 0; j < DS_PIXELS; j++) {
            cr_assert(x[i * DS_PIXELS + j] >= 0.0f &&
                      x[i * DS_PIXELS + j] <= 1.0f);
            s += x[i * DS_PIXELS + j];
        }
        cr_assert_gt(s, 10.0f); /* a digit has ink */
        cr_assert_eq(y[i], tr.labels[ti[i]]);
    }
    free(x);
    free(ti);
    free(vi);
    ds_free(&te);
    ds_free(&tr);
}

/* ds_pack must give exactly what gathering floats and packing them gives:
 * the rows' nonzero pixels, scaled by 1/255, in column order. */
Test(ds, pack_matches_gather_then_pack)
{
    enum { N = 40, P = DS_PIXELS, B = 7 };
    ds_dataset d = {N, DS_ROWS, DS_COLS, malloc(N * P), malloc(N)};
    cr_assert(d.pixels && d.labels);
    rng_state r;
    rng_seed(&r, 99);
    for (size_t i = 0; i < (size_t)N * P; i++)
        d.pixels[i] = rng_uniform(&r) < 0.8f ? 0 : (uint8_t)(1 + rng_below(&r, 255));
    for (int i = 0; i < N; i++) d.labels[i] = (uint8_t)(i % 10);
    uint32_t rows[B] = {3, 0, 39, 17, 17, 8, 25};
    float *x = malloc(sizeof(float) * B * P), *val = malloc(sizeof(float) * B * P);
    uint32_t *idx = malloc(sizeof(uint32_t) * B * P), rowptr[B + 1];
    uint8_t y1[B], y2[B];
    cr_assert(x && val && idx);
    ds_gather(&d, rows, B, x, y1);
    uint32_t nnz = ds_pack(&d, rows, B, rowptr, idx, val, y2);
    cr_assert_eq(rowptr[0], 0);
    cr_assert_eq(rowptr[B], nnz);
    for (int i = 0; i < B; i++) {
        cr_assert_eq(y1[i], y2[i]);
        uint32_t k = rowptr[i];
        for (int j = 0; j < P; j++) {
            if (x[(size_t)i * P + j] == 0.0f) continue;
            cr_assert(k < rowptr[i + 1], "row %d: too few nonzeros", i);
            cr_assert_eq(idx[k], (uint32_t)j);
            cr_assert(val[k] == x[(size_t)i * P + j], "row %d col %d", i, j);
            k++;
        }
        cr_assert_eq(k, rowptr[i + 1], "row %d: extra nonzeros", i);
    }
    free(idx), free(val), free(x);
    ds_free(&d);
}

/* A packed set gives back, row for row, what packing the rows directly
 * gives; dense data is left unpacked. */
Test(ds, packed_set_gathers_what_pack_gives)
{
    enum { N = 50, P = DS_PIXELS, B = 6 };
    ds_dataset d = {N, DS_ROWS, DS_COLS, malloc(N * P), malloc(N)};
    cr_assert(d.pixels && d.labels);
    rng_state r;
    rng_seed(&r, 41);
    for (size_t i = 0; i < (size_t)N * P; i++)
        d.pixels[i] = rng_uniform(&r) < 0.8f ? 0 : (uint8_t)(1 + rng_below(&r, 255));
    for (int i = 0; i < N; i++) d.labels[i] = (uint8_t)(i % 10);
    uint32_t rows[N];
    for (int i = 0; i < N; i++) rows[i] = (uint32_t)(N - 1 - i); /* reversed */
    ds_packed pk;
    mn_err err;
    cr_assert_eq(ds_packed_new(&pk, &d, rows, N, 0.5, &err), 0);
    uint32_t sel[B] = {0, 49, 7, 7, 23, 1};
    uint32_t drows[B], rp1[B + 1], rp2[B + 1];
    for (int i = 0; i < B; i++) drows[i] = rows[sel[i]];
    uint32_t *i1 = malloc(4 * B * P), *i2 = malloc(4 * B * P);
    float *v1 = malloc(4 * B * P), *v2 = malloc(4 * B * P);
    uint8_t y1[B], y2[B];
    uint32_t n1 = ds_pack(&d, drows, B, rp1, i1, v1, y1);
    uint32_t n2 = ds_packed_gather(&pk, sel, B, rp2, i2, v2, y2);
    cr_assert_eq(n1, n2);
    cr_assert(memcmp(rp1, rp2, sizeof rp1) == 0);
    cr_assert(memcmp(i1, i2, 4 * n1) == 0);
    cr_assert(memcmp(v1, v2, 4 * n1) == 0);
    cr_assert(memcmp(y1, y2, B) == 0);
    ds_packed_free(&pk);
    /* all pixels lit: more than half nonzero, nothing built */
    memset(d.pixels, 200, (size_t)N * P);
    cr_assert_eq(ds_packed_new(&pk, &d, rows, N, 0.5, &err), 1);
    cr_assert_null(pk.idx);
    free(i1), free(i2), free(v1), free(v2);
    ds_free(&d);
}
