/* fuzz_csv.c: the streaming CSV reader (ds_csv_new / feed / finish).
 *
 * Input: one control byte c, then the CSV text. The text is fed in two
 * chunks cut at len * c / 255 (each chunk an exact-size copy, so a read
 * past a chunk's end is caught), with a row limit of c % 4 (0 = none);
 * then fed again in one piece to a second parser.
 *
 * Promises checked: where the chunks are cut changes nothing (same result,
 * same message, same rows); after an error every later call fails with
 * the same message; a dataset has 1..limit rows of 28x28 pixels (all
 * readable) and labels 0..9; after finish, feed and finish fail; an error
 * leaves *out empty. */
#include "engine/ds.h"
#include "tests/fuzz/fuzz.h"

typedef struct csv_result {
    int rc;
    mn_err err;
    ds_dataset d;
} csv_result;

/* Feeds the n_cuts + 1 pieces of text (cut at cuts[]) to a new parser. */
static void csv_run(const uint8_t *text, size_t len, const size_t *cuts,
                    int n_cuts, uint32_t limit, csv_result *res)
{
    ds_csv *p = ds_csv_new("fuzz.csv", limit);
    FUZZ_CHECK(p != NULL);
    memset(res, 0, sizeof *res);
    mn_err first = {{0}};
    int failed = 0;
    size_t at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        uint8_t *piece = fuzz_dup(text + at, end - at);
        mn_err e = {{0}};
        int rc = ds_csv_feed(p, (const char *)piece, end - at, &e);
        free(piece);
        if (failed) FUZZ_CHECK(rc != 0 && strcmp(e.msg, first.msg) == 0);
        if (rc && !failed) {
            FUZZ_CHECK(fuzz_msg_ok(e.msg, sizeof e.msg));
            first = e;
            failed = 1;
        }
        at = end;
    }
    res->rc = ds_csv_finish(p, &res->d, &res->err);
    if (failed)
        FUZZ_CHECK(res->rc != 0 && strcmp(res->err.msg, first.msg) == 0);
    if (res->rc) {
        FUZZ_CHECK(fuzz_msg_ok(res->err.msg, sizeof res->err.msg));
        FUZZ_CHECK(res->d.n == 0 && res->d.pixels == NULL &&
                   res->d.labels == NULL);
    }
    /* the input is over: both calls must now fail */
    mn_err e = {{0}};
    ds_dataset again;
    FUZZ_CHECK(ds_csv_feed(p, "0", 1, &e) != 0);
    FUZZ_CHECK(ds_csv_finish(p, &again, &e) != 0 && again.pixels == NULL);
    ds_csv_free(p);
}

static int fuzz_csv(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t c = data[0];
    const uint8_t *text = data + 1;
    const size_t len = size - 1;
    const size_t cut = len * c / 255;
    const uint32_t limit = c % 4;

    csv_result split, whole;
    csv_run(text, len, &cut, 1, limit, &split);
    csv_run(text, len, NULL, 0, limit, &whole);

    FUZZ_CHECK(split.rc == whole.rc);
    FUZZ_CHECK(strcmp(split.err.msg, whole.err.msg) == 0);
    if (split.rc == 0) {
        const ds_dataset *d = &split.d;
        FUZZ_CHECK(d->n >= 1 && (limit == 0 || d->n <= limit));
        FUZZ_CHECK(d->rows == DS_ROWS && d->cols == DS_COLS);
        FUZZ_CHECK(d->pixels != NULL && d->labels != NULL);
        for (uint32_t i = 0; i < d->n; i++) FUZZ_CHECK(d->labels[i] < DS_CLASSES);
        FUZZ_CHECK(whole.d.n == d->n);
        FUZZ_CHECK(memcmp(whole.d.labels, d->labels, d->n) == 0);
        FUZZ_CHECK(memcmp(whole.d.pixels, d->pixels,
                          (size_t)d->n * DS_PIXELS) == 0);
    }
    ds_free(&split.d);
    ds_free(&whole.d);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_csv(data, size);
}
#endif
