/* png.c: PNG encoding into memory through libpng. See png.h.
 *
 * libpng reports errors by longjmp to the setjmp in encode(). Everything
 * that must be freed afterwards lives outside encode()'s frame (in the
 * caller's enc_job and in libpng's structs, freed by the caller), and no
 * local of encode() is read after a longjmp, so no local needs volatile. */
#include "server/render/png.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pngenc_buf_free(pngenc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int pngenc_buf_append(pngenc_buf *b, const void *data, size_t n)
{
    if (n == 0) return 0;
    if (n > SIZE_MAX - b->len) return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) {
                cap = b->len + n;
                break;
            }
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

/* One encoding: the caller's parameters and the state the libpng
 * callbacks share (reached through libpng's error and io pointers). */
typedef struct enc_job {
    uint32_t w, h;
    int channels;
    pngenc_row_fn row;
    void *ctx;
    uint8_t *line;      /* [w * channels] the row being written, owned */
    pngenc_buf *out;    /* borrowed: the caller's buffer */
    char msg[200];      /* libpng's error message */
} enc_job;

/* libpng's error callback: records the message and jumps back to encode()
 * (an error callback must not return). */
static void on_error(png_structp png, png_const_charp msg)
{
    enc_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

/* Warnings (none expected for what we write) are not printed. */
static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* libpng's output: appended to the caller's buffer. */
static void on_write(png_structp png, png_bytep data, size_t n)
{
    enc_job *j = png_get_io_ptr(png);
    if (pngenc_buf_append(j->out, data, n)) png_error(png, "out of memory");
}

/* Nothing to flush in memory. */
static void on_flush(png_structp png)
{
    (void)png;
}

/* The libpng calls that may longjmp. Returns 0, or -1 after a libpng
 * error (message in j->msg). */
static int encode(png_structp png, png_infop info, enc_job *j)
{
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_write_fn(png, j, on_write, on_flush);
    png_set_IHDR(png, info, j->w, j->h, 8,
                 j->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < j->h; y++) {
        j->row(j->ctx, y, j->line);
        png_write_row(png, j->line);
    }
    png_write_end(png, info);
    return 0;
}

int pngenc_encode_rows(uint32_t w, uint32_t h, int channels,
                       pngenc_row_fn row, void *ctx, pngenc_buf *out,
                       mn_err *err)
{
    int rc = -1;
    png_structp png = NULL;
    png_infop info = NULL;
    enc_job j = {.w = w, .h = h, .channels = channels, .row = row,
                 .ctx = ctx, .out = out};

    *out = (pngenc_buf){0};
    if (w == 0 || h == 0 || w > PNGENC_MAX_SIDE || h > PNGENC_MAX_SIDE) {
        mn_errf(err, "png: a picture of %ux%u pixels cannot be encoded "
                "(each side must be 1..%u)", w, h, PNGENC_MAX_SIDE);
        goto done;
    }
    if (channels != 1 && channels != 3) {
        mn_errf(err, "png: %d channels; only 1 (gray) or 3 (RGB)", channels);
        goto done;
    }
    if (!row) {
        mn_errf(err, "png: no row callback");
        goto done;
    }
    j.line = malloc((size_t)w * (size_t)channels);
    if (!j.line) {
        mn_errf(err, "png: out of memory for a row of %u pixels", w);
        goto done;
    }
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &j, on_error,
                                  on_warning);
    if (!png) {
        mn_errf(err, "png: cannot create the libpng writer");
        goto done;
    }
    info = png_create_info_struct(png);
    if (!info) {
        mn_errf(err, "png: cannot create the libpng info struct");
        goto done;
    }
    if (encode(png, info, &j)) {
        mn_errf(err, "png: %s", j.msg);
        goto done;
    }
    rc = 0;
done:
    if (png) png_destroy_write_struct(&png, &info);
    free(j.line);
    if (rc) pngenc_buf_free(out);
    return rc;
}

/* Row source for pixels in memory. */
typedef struct mem_rows {
    const uint8_t *px;  /* [h, stride] */
    size_t stride;      /* bytes per row */
} mem_rows;

/* pngenc_row_fn over a mem_rows. */
static void mem_row(void *ctx, uint32_t y, uint8_t *row)
{
    const mem_rows *m = ctx;
    memcpy(row, m->px + (size_t)y * m->stride, m->stride);
}

int pngenc_encode(const uint8_t *px, uint32_t w, uint32_t h, int channels,
                  pngenc_buf *out, mn_err *err)
{
    mem_rows m = {px, (size_t)w * (size_t)(channels > 0 ? channels : 0)};
    if (!px) {
        *out = (pngenc_buf){0};
        return mn_errf(err, "png: no pixels");
    }
    return pngenc_encode_rows(w, h, channels, mem_row, &m, out, err);
}
