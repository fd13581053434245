/* test_png.c: the PNG encoder of server/render/png.c and the pictures of
 * server/render/plot.c: encoded pictures start with the PNG signature and decode
 * (with libpng's reader) back to the same pixels, bad sizes are errors,
 * the colormaps match matplotlib's at known points, and each picture has
 * the size plot.h documents. */
#include <criterion/criterion.h>

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "server/render/plot.h"
#include "server/render/png.h"

static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* Decodes a PNG held in memory to 8-bit pixels of `format` (libpng's
 * simplified API). Returns the pixels (free()) and the size. */
static uint8_t *decode(const pngenc_buf *b, uint32_t format, uint32_t *w,
                       uint32_t *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_memory(&img, b->data, b->len),
              "libpng cannot read it: %s", img.message);
    img.format = format;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    cr_assert_not_null(px);
    cr_assert(png_image_finish_read(&img, NULL, px, 0, NULL),
              "libpng cannot decode it: %s", img.message);
    *w = img.width;
    *h = img.height;
    return px;
}

/* The color type byte of the IHDR chunk. */
static int color_type(const pngenc_buf *b)
{
    cr_assert_geq(b->len, 33);
    cr_assert_eq(memcmp(b->data + 12, "IHDR", 4), 0);
    return b->data[25];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

Test(png, rgb_round_trip)
{
    enum { W = 37, H = 23 };
    uint8_t px[H][W][3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            px[y][x][0] = (uint8_t)(x * 7 + y);
            px[y][x][1] = (uint8_t)(y * 11);
            px[y][x][2] = (uint8_t)((x ^ y) * 5);
        }
    pngenc_buf b;
    mn_err err = {{0}};
    cr_assert_eq(pngenc_encode(&px[0][0][0], W, H, 3, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(b.data, signature, 8), 0, "no PNG signature");
    cr_assert_eq(be32(b.data + 16), W);
    cr_assert_eq(be32(b.data + 20), H);
    cr_assert_eq(color_type(&b), PNG_COLOR_TYPE_RGB);
    uint32_t w, h;
    uint8_t *out = decode(&b, PNG_FORMAT_RGB, &w, &h);
    cr_assert_eq(w, W);
    cr_assert_eq(h, H);
    cr_assert_eq(memcmp(out, px, sizeof px), 0, "pixels differ after a round trip");
    free(out);
    pngenc_buf_free(&b);
    cr_assert_null(b.data);
}

Test(png, gray_round_trip)
{
    enum { W = 5, H = 300 };
    uint8_t px[H][W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) px[y][x] = (uint8_t)(y + 50 * x);
    pngenc_buf b;
    mn_err err = {{0}};
    cr_assert_eq(pngenc_encode(&px[0][0], W, H, 1, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(b.data, signature, 8), 0);
    cr_assert_eq(color_type(&b), PNG_COLOR_TYPE_GRAY);
    uint32_t w, h;
    uint8_t *out = decode(&b, PNG_FORMAT_GRAY, &w, &h);
    cr_assert_eq(w, W);
    cr_assert_eq(h, H);
    cr_assert_eq(memcmp(out, px, sizeof px), 0);
    free(out);
    pngenc_buf_free(&b);
}

/* A big picture streamed row by row (never whole in memory). */
static void stripes(void *ctx, uint32_t y, uint8_t *row)
{
    uint32_t w = *(const uint32_t *)ctx;
    for (uint32_t x = 0; x < w; x++) row[x] = (uint8_t)((x / 16 + y / 16) % 2 * 255);
}

Test(png, rows_callback)
{
    uint32_t W = 2000, w, h;
    pngenc_buf b;
    mn_err err = {{0}};
    cr_assert_eq(pngenc_encode_rows(W, 1500, 1, stripes, &W, &b, &err), 0, "%s",
                 err.msg);
    uint8_t *out = decode(&b, PNG_FORMAT_GRAY, &w, &h);
    cr_assert_eq(w, 2000);
    cr_assert_eq(h, 1500);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[16], 255);
    cr_assert_eq(out[(size_t)16 * 2000], 255);
    cr_assert_eq(out[(size_t)1499 * 2000 + 1999], 255); /* (124 + 93) odd */
    free(out);
    pngenc_buf_free(&b);
}

Test(png, bad_arguments_fail_with_a_reason)
{
    uint8_t px[12] = {0};
    pngenc_buf b = {0};
    mn_err err = {{0}};
    cr_assert_eq(pngenc_encode(px, 0, 2, 3, &b, &err), -1);
    cr_assert_not_null(strstr(err.msg, "0x2"), "%s", err.msg);
    cr_assert_null(b.data);
    cr_assert_eq(pngenc_encode(px, 2, 2, 2, &b, &err), -1);
    cr_assert_not_null(strstr(err.msg, "channels"), "%s", err.msg);
    cr_assert_eq(pngenc_encode(NULL, 2, 2, 1, &b, &err), -1);
    cr_assert_eq(pngenc_encode_rows(2, PNGENC_MAX_SIDE + 1, 1, stripes, px, &b, &err), -1);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
}

Test(png, buffer_append_grows)
{
    pngenc_buf b = {0};
    char chunk[1000];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100; i++) cr_assert_eq(pngenc_buf_append(&b, chunk, sizeof chunk), 0);
    cr_assert_eq(b.len, 100000);
    cr_assert_geq(b.cap, b.len);
    cr_assert_eq(b.data[99999], 'x');
    cr_assert_eq(pngenc_buf_append(&b, chunk, 0), 0);
    cr_assert_eq(b.len, 100000);
    pngenc_buf_free(&b);
    pngenc_buf_free(&b); /* twice is safe */
}

/* ---- colormaps ---- */

static void assert_rgb(const uint8_t got[3], int r, int g, int b, int tol,
                       const char *what)
{
    cr_assert(abs(got[0] - r) <= tol && abs(got[1] - g) <= tol && abs(got[2] - b) <= tol,
              "%s: got (%d, %d, %d), want (%d, %d, %d) +-%d", what, got[0], got[1],
              got[2], r, g, b, tol);
}

Test(png, bone_r_matches_matplotlib)
{
    uint8_t c[3];
    plot_bone_r(0, c);
    assert_rgb(c, 255, 255, 255, 0, "bone_r(0)");
    plot_bone_r(1, c);
    assert_rgb(c, 0, 0, 0, 0, "bone_r(1)");
    /* bone(0.5) = (0.4375, 0.4818, 0.5625) from the segment table */
    plot_bone_r(0.5, c);
    assert_rgb(c, 112, 123, 143, 1, "bone_r(0.5)");
    /* bone at its nodes: bone(0.365079) = (0.3194, 0.3194, 0.4444) */
    plot_bone_r(1 - 0.365079, c);
    assert_rgb(c, 81, 81, 113, 1, "bone_r(1 - 0.365079)");
    /* clamped outside 0..1, NaN as 0 */
    plot_bone_r(-3, c);
    assert_rgb(c, 255, 255, 255, 0, "bone_r(-3)");
    plot_bone_r(7, c);
    assert_rgb(c, 0, 0, 0, 0, "bone_r(7)");
    plot_bone_r(NAN, c);
    assert_rgb(c, 255, 255, 255, 0, "bone_r(NaN)");
    /* light to dark: each channel never increases */
    uint8_t prev[3] = {255, 255, 255};
    for (int i = 0; i <= 100; i++) {
        plot_bone_r(i / 100.0, c);
        for (int k = 0; k < 3; k++) cr_assert_leq(c[k], prev[k], "bone_r not monotone at %d", i);
        memcpy(prev, c, 3);
    }
}

Test(png, pink_matches_matplotlib)
{
    uint8_t c[3];
    plot_pink(0, c);
    assert_rgb(c, 30, 0, 0, 0, "pink(0)"); /* (0.1178, 0, 0) */
    plot_pink(1, c);
    assert_rgb(c, 255, 255, 255, 0, "pink(1)");
    /* matplotlib's table at nodes 1/63 and 24/63:
     * red 0.195857, green 0.102869; red 0.766356, green 0.517549 */
    plot_pink(1 / 63.0, c);
    assert_rgb(c, 50, 26, 26, 1, "pink(1/63)");
    plot_pink(24 / 63.0, c);
    cr_assert(abs(c[0] - 195) <= 1 && abs(c[1] - 132) <= 1, "pink(24/63) = (%d, %d, %d)",
              c[0], c[1], c[2]);
    /* and midway between two nodes, linear interpolation */
    plot_pink(0.5 / 63.0, c);
    assert_rgb(c, 40, 13, 13, 1, "pink(0.5/63)");
}

/* ---- pictures ---- */

Test(png, example_picture)
{
    uint8_t img[28 * 28];
    for (int i = 0; i < 28 * 28; i++) img[i] = (uint8_t)i;
    pngenc_buf b;
    mn_err err = {{0}};
    cr_assert_eq(plot_example(img, 28, 28, 3, &b, &err), 0, "%s", err.msg);
    uint32_t w, h;
    uint8_t *px = decode(&b, PNG_FORMAT_GRAY, &w, &h);
    cr_assert_eq(w, 84);
    cr_assert_eq(h, 84);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            cr_assert_eq(px[y * w + x], img[(y / 3) * 28 + x / 3], "pixel %u,%u", x, y);
    free(px);
    pngenc_buf_free(&b);
    cr_assert_eq(plot_example(img, 28, 28, 0, &b, &err), -1);
    cr_assert_eq(plot_example(img, 28, 28, PLOT_MAX_SCALE + 1, &b, &err), -1);
    cr_assert_null(b.data);
}

Test(png, weights_picture)
{
    enum { IN = 28 * 28, UNITS = 13, SCALE = 2 };
    float *W = malloc(sizeof *W * IN * UNITS);
    cr_assert_not_null(W);
    /* unit u: weight = u * pixel index, so each tile runs from dark (top
     * left) to white (bottom right) whatever its range; unit 12 constant */
    for (int i = 0; i < IN; i++)
        for (int u = 0; u < UNITS; u++) W[i * UNITS + u] = u == 12 ? 3.0f : (float)((u + 1) * i);
    uint64_t ew, eh;
    plot_weights_size(UNITS, 28, 28, SCALE, &ew, &eh);
    cr_assert_eq(ew, 10 * 56 + 11 * PLOT_TILE_GAP);
    cr_assert_eq(eh, 2 * 56 + 3 * PLOT_TILE_GAP);
    pngenc_buf b;
    mn_err err = {{0}};
    cr_assert_eq(plot_weights(W, 28, 28, UNITS, SCALE, &b, &err), 0, "%s", err.msg);
    uint32_t w, h;
    uint8_t *px = decode(&b, PNG_FORMAT_RGB, &w, &h);
    cr_assert_eq(w, ew);
    cr_assert_eq(h, eh);
    uint8_t lo[3], hi[3], mid[3];
    plot_pink(0, lo);
    plot_pink(1, hi);
    plot_pink(0.5, mid);
    const int G = PLOT_TILE_GAP, T = 56;
    for (int u = 0; u < UNITS; u++) {
        int x0 = G + (u % 10) * (T + G), y0 = G + (u / 10) * (T + G);
        const uint8_t *tl = px + 3 * ((size_t)y0 * w + x0);
        const uint8_t *br = px + 3 * ((size_t)(y0 + T - 1) * w + x0 + T - 1);
        if (u == 12) {
            assert_rgb(tl, mid[0], mid[1], mid[2], 2, "constant tile");
            continue;
        }
        assert_rgb(tl, lo[0], lo[1], lo[2], 0, "tile minimum");
        assert_rgb(br, hi[0], hi[1], hi[2], 0, "tile maximum");
    }
    /* the gap at the very top left is gray */
    cr_assert_eq(px[0], 128);
    free(px);
    pngenc_buf_free(&b);
    /* a picture over the pixel limit is refused */
    free(W);
    W = calloc((size_t)IN * 4096, sizeof *W);
    cr_assert_not_null(W);
    cr_assert_eq(plot_weights(W, 28, 28, 4096, PLOT_MAX_SCALE, &b, &err), -1);
    cr_assert_not_null(strstr(err.msg, "limit"), "%s", err.msg);
    cr_assert_null(b.data);
    free(W);
}

Test(png, confusion_picture)
{
    uint32_t counts[DS_CLASSES][DS_CLASSES] = {{0}};
    for (int t = 0; t < DS_CLASSES; t++) {
        counts[t][t] = 90;
        counts[t][(t + 1) % DS_CLASSES] = 10;
    }
    pngenc_buf b;
    mn_err err = {{0}};
    cr_assert_eq(plot_confusion(counts, "run 1 (linear): validation confusion", &b, &err),
                 0, "%s", err.msg);
    cr_assert_eq(memcmp(b.data, signature, 8), 0);
    uint32_t w, h;
    uint8_t *px = decode(&b, PNG_FORMAT_RGB, &w, &h);
    cr_assert_eq(w, PLOT_CONF_W);
    cr_assert_eq(h, PLOT_CONF_H);
    /* a cell's colour, sampled clear of its grid line and its text */
    uint8_t want[3];
    for (int t = 0; t < DS_CLASSES; t++)
        for (int p = 0; p < DS_CLASSES; p++) {
            int x = PLOT_CONF_X0 + p * PLOT_CONF_CELL + 4;
            int y = PLOT_CONF_Y0 + t * PLOT_CONF_CELL + 4;
            const uint8_t *c = px + 3 * ((size_t)y * w + x);
            double v = p == t ? 0.9 : p == (t + 1) % DS_CLASSES ? 0.1 : 0;
            plot_bone_r(v, want);
            assert_rgb(c, want[0], want[1], want[2], 0, "cell colour");
        }
    free(px);
    pngenc_buf_free(&b);
}

Test(png, loss_picture)
{
    train_period ps[10];
    for (int i = 0; i < 10; i++)
        ps[i] = (train_period){.period = (uint32_t)i + 1, .step = 100u * (i + 1),
                               .train_log_loss = 2.0 / (i + 1),
                               .validation_log_loss = 2.1 / (i + 1) + 0.05};
    pngenc_buf b;
    mn_err err = {{0}};
    cr_assert_eq(plot_loss(ps, 10, "run 1 (dnn [100, 100]): log loss per period", &b, &err),
                 0, "%s", err.msg);
    uint32_t w, h;
    uint8_t *px = decode(&b, PNG_FORMAT_RGB, &w, &h);
    cr_assert_eq(w, PLOT_LOSS_W);
    cr_assert_eq(h, PLOT_LOSS_H);
    /* both series' colours appear */
    int blue = 0, orange = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        const uint8_t *c = px + 3 * i;
        blue += c[0] < 60 && c[1] > 100 && c[1] < 140 && c[2] > 160;
        orange += c[0] > 230 && c[1] > 110 && c[1] < 140 && c[2] < 40;
    }
    cr_assert_gt(blue, 200, "training line: %d blue pixels", blue);
    cr_assert_gt(orange, 200, "validation line: %d orange pixels", orange);
    free(px);
    pngenc_buf_free(&b);
    /* one period, NaN values, a constant series: still a picture */
    ps[0].validation_log_loss = NAN;
    cr_assert_eq(plot_loss(ps, 1, NULL, &b, &err), 0, "%s", err.msg);
    pngenc_buf_free(&b);
    cr_assert_eq(plot_loss(ps, 0, NULL, &b, &err), -1);
    cr_assert_null(b.data);
}
