/* plot.c: the pictures of runs and datasets. See plot.h.
 *
 * Colormaps are matplotlib's, from their definitions:
 * - bone: MATLAB's bone = (7 * gray + hot with red and blue swapped) / 8,
 *   which matplotlib stores as the piecewise-linear table below (its
 *   segmentdata; every node is continuous, y0 == y1). bone_r(x) = bone(1-x).
 * - pink: MATLAB's pink = sqrt((2 * gray + hot) / 3), which matplotlib
 *   samples at the 64 nodes k/63 and interpolates linearly between them;
 *   plot_pink does the same from hot's segmentdata.
 * Pictures of weights quantise through a 256-entry table as matplotlib's
 * colormaps (N = 256) do.
 *
 * cairo draws the plots with text on an RGB24 image surface; the PNG
 * comes out of cairo_surface_write_to_png_stream into a pngenc_buf.
 *
 * cairo and fontconfig keep process-wide font caches that are never freed
 * (and fontconfig's encoded pointers look like leaks to LeakSanitizer).
 * The first canvas registers release_fonts() with atexit, which empties
 * them once every drawing is over. */
#include "server/render/plot.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/eval.h"

/* ---- colormaps ---- */

/* A node of a piecewise-linear channel: value y at x. */
typedef struct cm_node {
    double x, y;
} cm_node;

#define CM_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const cm_node bone_red[] = {{0, 0}, {0.746032, 0.652778}, {1, 1}};
static const cm_node bone_green[] = {
    {0, 0}, {0.365079, 0.319444}, {0.746032, 0.777778}, {1, 1}};
static const cm_node bone_blue[] = {{0, 0}, {0.365079, 0.444444}, {1, 1}};

static const cm_node hot_red[] = {{0, 0.0416}, {0.365079, 1}, {1, 1}};
static const cm_node hot_green[] = {
    {0, 0}, {0.365079, 0}, {0.746032, 1}, {1, 1}};
static const cm_node hot_blue[] = {{0, 0}, {0.746032, 0}, {1, 1}};

/* The channel's value at x in 0..1. nodes: [n], x ascending, 0 to 1. */
static double cm_eval(const cm_node *nodes, size_t n, double x)
{
    for (size_t i = 1; i < n; i++) {
        if (x <= nodes[i].x) {
            double x0 = nodes[i - 1].x, x1 = nodes[i].x;
            double t = x1 > x0 ? (x - x0) / (x1 - x0) : 0;
            return nodes[i - 1].y + t * (nodes[i].y - nodes[i - 1].y);
        }
    }
    return nodes[n - 1].y;
}

/* x clamped to 0..1, NaN as 0. */
static double clamp01(double x)
{
    if (!(x > 0)) return 0; /* NaN too */
    return x < 1 ? x : 1;
}

/* 0..1 to 0..255, rounded. */
static uint8_t to8(double v)
{
    return (uint8_t)(clamp01(v) * 255.0 + 0.5);
}

void plot_bone_r(double x, uint8_t rgb[3])
{
    double b = 1.0 - clamp01(x);
    rgb[0] = to8(cm_eval(bone_red, CM_LEN(bone_red), b));
    rgb[1] = to8(cm_eval(bone_green, CM_LEN(bone_green), b));
    rgb[2] = to8(cm_eval(bone_blue, CM_LEN(bone_blue), b));
}

/* pink's channel c at a node x: sqrt((2 * gray + hot) / 3). */
static double pink_node(int c, double x)
{
    const cm_node *hot = c == 0 ? hot_red : c == 1 ? hot_green : hot_blue;
    size_t n = c == 0 ? CM_LEN(hot_red) : c == 1 ? CM_LEN(hot_green)
                                                 : CM_LEN(hot_blue);
    return sqrt((2.0 * x + cm_eval(hot, n, x)) / 3.0);
}

void plot_pink(double x, uint8_t rgb[3])
{
    enum { NODES = 64 };
    x = clamp01(x);
    int k = (int)(x * (NODES - 1));
    if (k > NODES - 2) k = NODES - 2;
    double x0 = (double)k / (NODES - 1), x1 = (double)(k + 1) / (NODES - 1);
    double t = (x - x0) / (x1 - x0);
    for (int c = 0; c < 3; c++) {
        double y0 = pink_node(c, x0), y1 = pink_node(c, x1);
        rgb[c] = to8(y0 + t * (y1 - y0));
    }
}

/* ---- dataset images ---- */

/* An image enlarged by pixel replication. */
typedef struct example_rows {
    const uint8_t *px;  /* [rows*cols] */
    uint32_t cols;
    int scale;
} example_rows;

/* pngenc_row_fn: row y repeats source row y / scale, each pixel scale
 * times. */
static void example_row(void *ctx, uint32_t y, uint8_t *row)
{
    const example_rows *e = ctx;
    const uint8_t *src = e->px + (size_t)(y / (uint32_t)e->scale) * e->cols;
    for (uint32_t c = 0; c < e->cols; c++)
        for (int s = 0; s < e->scale; s++) *row++ = src[c];
}

int plot_example(const uint8_t *px, uint32_t rows, uint32_t cols, int scale,
                 pngenc_buf *out, mn_err *err)
{
    *out = (pngenc_buf){0};
    if (scale < 1 || scale > PLOT_MAX_SCALE)
        return mn_errf(err, "plot: scale %d outside 1..%d", scale,
                       PLOT_MAX_SCALE);
    if (rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
        return mn_errf(err, "plot: an image of %ux%u pixels", cols, rows);
    example_rows e = {px, cols, scale};
    return pngenc_encode_rows(cols * (uint32_t)scale, rows * (uint32_t)scale,
                              1, example_row, &e, out, err);
}

/* ---- weights ---- */

/* Between and around tiles. */
static const uint8_t tile_gap_rgb[3] = {128, 128, 128};

void plot_weights_size(int units, uint32_t rows, uint32_t cols, int scale,
                       uint64_t *width, uint64_t *height)
{
    uint64_t n = units < PLOT_TILES_PER_ROW ? (uint64_t)units
                                            : PLOT_TILES_PER_ROW;
    uint64_t m = ((uint64_t)units + PLOT_TILES_PER_ROW - 1) /
                 PLOT_TILES_PER_ROW;
    *width = n * cols * (uint64_t)scale + (n + 1) * PLOT_TILE_GAP;
    *height = m * rows * (uint64_t)scale + (m + 1) * PLOT_TILE_GAP;
}

/* The weights picture being encoded, row by row. */
typedef struct tiles {
    const float *W;         /* [rows*cols, units] */
    uint32_t rows, cols;
    int units, scale, per_row;
    uint32_t tw, th;        /* tile size in px */
    uint32_t width;
    float *lo, *span;       /* [units] each tile's min and max - min */
    uint8_t lut[256][3];    /* pink, quantised as matplotlib's N = 256 */
} tiles;

/* The colour of weight v in a tile of range lo .. lo + span. */
static const uint8_t *tile_color(const tiles *t, float v, float lo,
                                 float span)
{
    double x;
    if (isnan(v))
        x = 0.5;
    else if (span > 0)
        x = ((double)v - lo) / span;
    else
        x = 0.5;
    int i = (int)(clamp01(x) * 256.0);
    return t->lut[i > 255 ? 255 : i];
}

/* pngenc_row_fn: row y of the weights picture: gap, or one pixel row of
 * each tile in this row of tiles, enlarged. */
static void tiles_row(void *ctx, uint32_t y, uint8_t *row)
{
    const tiles *t = ctx;
    for (uint32_t x = 0; x < t->width; x++)
        memcpy(row + 3 * (size_t)x, tile_gap_rgb, 3);
    if (y < PLOT_TILE_GAP) return;
    uint32_t period = t->th + PLOT_TILE_GAP;
    uint32_t ty = (y - PLOT_TILE_GAP) / period;
    uint32_t oy = (y - PLOT_TILE_GAP) % period;
    if (oy >= t->th) return;
    uint32_t r = oy / (uint32_t)t->scale;
    for (int k = 0; k < t->per_row; k++) {
        int u = (int)ty * t->per_row + k;
        if (u >= t->units) break;
        uint8_t *dst = row + 3 * ((size_t)PLOT_TILE_GAP +
                                  (size_t)k * (t->tw + PLOT_TILE_GAP));
        for (uint32_t c = 0; c < t->cols; c++) {
            size_t i = (size_t)r * t->cols + c;
            float v = t->W[i * (size_t)t->units + (size_t)u];
            const uint8_t *rgb = tile_color(t, v, t->lo[u], t->span[u]);
            for (int s = 0; s < t->scale; s++, dst += 3) memcpy(dst, rgb, 3);
        }
    }
}

int plot_weights(const float *W, uint32_t rows, uint32_t cols, int units,
                 int scale, pngenc_buf *out, mn_err *err)
{
    *out = (pngenc_buf){0};
    if (scale < 1 || scale > PLOT_MAX_SCALE)
        return mn_errf(err, "plot: scale %d outside 1..%d", scale,
                       PLOT_MAX_SCALE);
    if (units < 1 || rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
        return mn_errf(err, "plot: %d units of %ux%u weights", units, cols,
                       rows);
    uint64_t w, h;
    plot_weights_size(units, rows, cols, scale, &w, &h);
    if (w * h > PLOT_MAX_PIXELS)
        return mn_errf(err, "plot: the picture would be %llux%llu pixels, "
                       "over the limit of %u", (unsigned long long)w,
                       (unsigned long long)h, PLOT_MAX_PIXELS);
    tiles t = {.W = W, .rows = rows, .cols = cols, .units = units,
               .scale = scale,
               .per_row = units < PLOT_TILES_PER_ROW ? units
                                                     : PLOT_TILES_PER_ROW,
               .tw = cols * (uint32_t)scale, .th = rows * (uint32_t)scale,
               .width = (uint32_t)w};
    int rc = -1;
    t.lo = malloc(sizeof *t.lo * (size_t)units);
    t.span = malloc(sizeof *t.span * (size_t)units);
    if (!t.lo || !t.span) {
        mn_errf(err, "plot: out of memory");
        goto done;
    }
    for (int i = 0; i < 256; i++) plot_pink(i / 255.0, t.lut[i]);
    for (int u = 0; u < units; u++) {
        t.lo[u] = INFINITY;
        t.span[u] = -INFINITY; /* the max, until below */
    }
    size_t n_in = (size_t)rows * cols;
    for (size_t i = 0; i < n_in; i++) {
        const float *wi = W + i * (size_t)units;
        for (int u = 0; u < units; u++) {
            float v = wi[u];
            if (!isfinite(v)) continue;
            if (v < t.lo[u]) t.lo[u] = v;
            if (v > t.span[u]) t.span[u] = v;
        }
    }
    for (int u = 0; u < units; u++) {
        if (t.lo[u] > t.span[u]) { /* no finite weight */
            t.lo[u] = 0;
            t.span[u] = 0;
        } else {
            t.span[u] -= t.lo[u];
        }
    }
    rc = pngenc_encode_rows((uint32_t)w, (uint32_t)h, 3, tiles_row, &t, out,
                            err);
done:
    free(t.span);
    free(t.lo);
    return rc;
}

/* ---- cairo canvas ---- */

/* A cairo image surface and its context, both owned. */
typedef struct canvas {
    cairo_surface_t *s;
    cairo_t *cr;
} canvas;

/* Destroys both (safe on a freed canvas). */
static void canvas_free(canvas *cv)
{
    if (cv->cr) cairo_destroy(cv->cr);
    if (cv->s) cairo_surface_destroy(cv->s);
    cv->cr = NULL;
    cv->s = NULL;
}

/* At exit: cairo's static data (toy font faces, scaled font maps,
 * FreeType) first, then fontconfig's configuration and caches. No thread
 * may draw any more (the server stops its HTTP daemon before exiting). */
static void release_fonts(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

static pthread_once_t release_once = PTHREAD_ONCE_INIT;

static void register_release(void)
{
    atexit(release_fonts);
}

/* A white w x h RGB canvas with the default font set. */
static int canvas_new(canvas *cv, int w, int h, mn_err *err)
{
    pthread_once(&release_once, register_release);
    cv->cr = NULL;
    cv->s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_status_t st = cairo_surface_status(cv->s);
    if (st == CAIRO_STATUS_SUCCESS) {
        cv->cr = cairo_create(cv->s);
        st = cairo_status(cv->cr);
    }
    if (st != CAIRO_STATUS_SUCCESS) {
        canvas_free(cv);
        return mn_errf(err, "plot: cairo: %s", cairo_status_to_string(st));
    }
    cairo_set_source_rgb(cv->cr, 1, 1, 1);
    cairo_paint(cv->cr);
    cairo_select_font_face(cv->cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           CAIRO_FONT_WEIGHT_NORMAL);
    return 0;
}

/* cairo's PNG output: appended to a pngenc_buf (closure). */
static cairo_status_t png_sink(void *closure, const unsigned char *data,
                               unsigned int len)
{
    return pngenc_buf_append(closure, data, len) ? CAIRO_STATUS_WRITE_ERROR
                                                 : CAIRO_STATUS_SUCCESS;
}

/* Writes the canvas as PNG into *out (empty on failure). */
static int canvas_png(canvas *cv, pngenc_buf *out, mn_err *err)
{
    *out = (pngenc_buf){0};
    cairo_status_t st = cairo_status(cv->cr);
    if (st == CAIRO_STATUS_SUCCESS) {
        cairo_surface_flush(cv->s);
        st = cairo_surface_write_to_png_stream(cv->s, png_sink, out);
    }
    if (st != CAIRO_STATUS_SUCCESS) {
        pngenc_buf_free(out);
        return mn_errf(err, "plot: cairo: %s", cairo_status_to_string(st));
    }
    return 0;
}

/* Sets an 8-bit RGB colour as the source. */
static void set_rgb8(cairo_t *cr, const uint8_t rgb[3])
{
    cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
}

/* DejaVu Sans at size px, bold or regular. */
static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD
                                : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Draws s anchored at (x, y): ax 0 / 0.5 / 1 puts x at the text's left,
 * centre or right; ay likewise puts y at the top, middle or bottom of a
 * digit's height (so labels of one size line up whatever their letters). */
static void text_at(cairo_t *cr, double x, double y, const char *s,
                    double ax, double ay)
{
    cairo_text_extents_t e, d;
    cairo_text_extents(cr, s, &e);
    cairo_text_extents(cr, "0", &d);
    cairo_move_to(cr, x - e.x_bearing - ax * e.width,
                  y + (1.0 - ay) * d.height);
    cairo_show_text(cr, s);
}

/* A title centred at (x, y), shrunk until it fits in max_w. */
static void title_at(cairo_t *cr, double x, double y, const char *s,
                     double size, double max_w)
{
    if (!s || !*s) return;
    cairo_text_extents_t e;
    for (;;) {
        set_font(cr, size, 1);
        cairo_text_extents(cr, s, &e);
        if (e.x_advance <= max_w || size <= 7) break;
        size -= 0.5;
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, x, y, s, 0.5, 0.5);
}

/* ---- confusion heatmap ---- */

int plot_confusion(const uint32_t counts[DS_CLASSES][DS_CLASSES],
                   const char *title, pngenc_buf *out, mn_err *err)
{
    enum { K = DS_CLASSES, C = PLOT_CONF_CELL, X0 = PLOT_CONF_X0,
           Y0 = PLOT_CONF_Y0, G = K * C };
    double norm[K][K];
    eval_normalize(counts, norm);
    *out = (pngenc_buf){0};
    canvas cv;
    if (canvas_new(&cv, PLOT_CONF_W, PLOT_CONF_H, err)) return -1;
    cairo_t *cr = cv.cr;
    uint8_t rgb[3];
    char s[32];

    /* cells, grid, frame: pixel-aligned, without antialiasing */
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    for (int t = 0; t < K; t++)
        for (int p = 0; p < K; p++) {
            plot_bone_r(norm[t][p], rgb);
            set_rgb8(cr, rgb);
            cairo_rectangle(cr, X0 + p * C, Y0 + t * C, C, C);
            cairo_fill(cr);
        }
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    for (int k = 1; k < K; k++) {
        cairo_rectangle(cr, X0 + k * C, Y0, 1, G);
        cairo_rectangle(cr, X0, Y0 + k * C, G, 1);
    }
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, X0, Y0, G + 1, 1);
    cairo_rectangle(cr, X0, Y0 + G, G + 1, 1);
    cairo_rectangle(cr, X0, Y0, 1, G + 1);
    cairo_rectangle(cr, X0 + G, Y0, 1, G + 1);
    cairo_fill(cr);

    /* colorbar: 1 at the top, 0 at the bottom */
    const int bx = X0 + G + 20, bw = 16;
    for (int y = 0; y < G; y++) {
        plot_bone_r(1.0 - (y + 0.5) / G, rgb);
        set_rgb8(cr, rgb);
        cairo_rectangle(cr, bx, Y0 + y, bw, 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, bx - 1, Y0 - 1, bw + 2, 1);
    cairo_rectangle(cr, bx - 1, Y0 + G, bw + 2, 1);
    cairo_rectangle(cr, bx - 1, Y0 - 1, 1, G + 2);
    cairo_rectangle(cr, bx + bw, Y0 - 1, 1, G + 2);
    for (int i = 0; i <= 5; i++) {
        int y = Y0 + (5 - i) * G / 5 - (i == 0);
        cairo_rectangle(cr, bx + bw + 1, y, 4, 1);
    }
    cairo_fill(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);

    /* text */
    set_font(cr, 11, 0);
    for (int i = 0; i <= 5; i++) {
        snprintf(s, sizeof s, "%.1f", i / 5.0);
        text_at(cr, bx + bw + 8, Y0 + (5 - i) * G / 5.0, s, 0, 0.5);
    }
    for (int t = 0; t < K; t++)
        for (int p = 0; p < K; p++) {
            if (counts[t][p] == 0) continue;
            snprintf(s, sizeof s, "%.2f", norm[t][p]);
            if (norm[t][p] > 0.55)
                cairo_set_source_rgb(cr, 1, 1, 1);
            else
                cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
            text_at(cr, X0 + p * C + C / 2.0 + 0.5, Y0 + t * C + C / 2.0 + 0.5,
                    s, 0.5, 0.5);
        }
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 12, 0);
    for (int k = 0; k < K; k++) {
        snprintf(s, sizeof s, "%d", k);
        text_at(cr, X0 + k * C + C / 2.0 + 0.5, Y0 + G + 8, s, 0.5, 0);
        text_at(cr, X0 - 8, Y0 + k * C + C / 2.0 + 0.5, s, 1, 0.5);
    }
    set_font(cr, 13, 0);
    text_at(cr, X0 + G / 2.0, Y0 + G + 36, "predicted label", 0.5, 0);
    cairo_save(cr);
    cairo_translate(cr, X0 - 36, Y0 + G / 2.0);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "true label", 0.5, 0.5);
    cairo_restore(cr);
    title_at(cr, PLOT_CONF_W / 2.0, Y0 / 2.0, title, 14, PLOT_CONF_W - 16);

    int rc = canvas_png(&cv, out, err);
    canvas_free(&cv);
    return rc;
}

/* ---- loss curves ---- */

/* A "nice" step (1, 2 or 5 times a power of ten) near raw > 0. */
static double nice_step(double raw)
{
    double e = pow(10.0, floor(log10(raw)));
    double f = raw / e;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
}

/* The plot area and the data range it shows. */
typedef struct frame {
    double x0, y0, w, h;        /* area in px */
    double xlo, xhi, ylo, yhi;  /* data range */
} frame;

/* Data x to px. */
static double fx(const frame *f, double x)
{
    return f->x0 + (x - f->xlo) / (f->xhi - f->xlo) * f->w;
}

/* Data y to px (up is larger). */
static double fy(const frame *f, double y)
{
    return f->y0 + f->h - (y - f->ylo) / (f->yhi - f->ylo) * f->h;
}

static const double series_rgb[2][3] = {
    {0.122, 0.467, 0.706},  /* training: matplotlib's C0 blue */
    {1.000, 0.498, 0.055},  /* validation: C1 orange */
};
static const char *const series_name[2] = {"training", "validation"};

/* Series k (0 training, 1 validation) of a period. */
static double series_value(const train_period *p, int k)
{
    return k == 0 ? p->train_log_loss : p->validation_log_loss;
}

/* How many plotted points fall inside the box (x, y, w, h) in px. */
static int points_in(const frame *f, const train_period *ps, size_t n,
                     double x, double y, double w, double h)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            double v = series_value(&ps[i], k);
            if (!isfinite(v)) continue;
            double px = fx(f, ps[i].period), py = fy(f, v);
            c += px >= x && px <= x + w && py >= y && py <= y + h;
            if (i + 1 < n && isfinite(series_value(&ps[i + 1], k))) {
                /* the segment's midpoint too */
                px = (px + fx(f, ps[i + 1].period)) / 2;
                py = (py + fy(f, series_value(&ps[i + 1], k))) / 2;
                c += px >= x && px <= x + w && py >= y && py <= y + h;
            }
        }
    return c;
}

/* A filled circle marker at (x, y) in the current colour. */
static void marker(cairo_t *cr, double x, double y)
{
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, 3.5, 0, 2 * M_PI);
    cairo_fill(cr);
}

/* The ticks of an axis: values k * step for k in k0..k1 (at most
 * TICKS_MAX of them). */
typedef struct ticks {
    double step;
    long k0, k1;
} ticks;

#define TICKS_MAX 50

/* The ticks of step that fall in lo..hi. */
static ticks ticks_in(double lo, double hi, double step)
{
    ticks t = {.step = step, .k0 = (long)ceil(lo / step),
               .k1 = (long)floor(hi / step)};
    if (t.k1 - t.k0 >= TICKS_MAX) t.k1 = t.k0 + TICKS_MAX - 1;
    return t;
}

/* The loss plot's scales: its frame and the ticks of both axes. */
typedef struct loss_axes {
    frame f;
    ticks x, y;
    int ydec;                   /* decimals of the y tick labels */
} loss_axes;

/* Scales the frame to the periods (n >= 1): both series' finite values
 * and the period numbers, with matplotlib's 5% margins, and picks "nice"
 * ticks (about 5 on y, 8 on x, x ticks whole periods). */
static loss_axes loss_scale(const train_period *ps, size_t n)
{
    loss_axes a = {.f = {.x0 = 76, .y0 = 44, .w = PLOT_LOSS_W - 76 - 24,
                         .h = PLOT_LOSS_H - 44 - 58}};
    frame *f = &a.f;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            double v = series_value(&ps[i], k);
            if (!isfinite(v)) continue;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    if (lo > hi) {
        lo = 0;
        hi = 1;
    }
    double pad = hi > lo ? 0.05 * (hi - lo) : fmax(0.05 * fabs(hi), 0.01);
    f->ylo = lo - pad;
    f->yhi = hi + pad;
    double xmin = ps[0].period, xmax = ps[n - 1].period;
    for (size_t i = 0; i < n; i++) {
        xmin = fmin(xmin, ps[i].period);
        xmax = fmax(xmax, ps[i].period);
    }
    double xspan = xmax - xmin;
    f->xlo = xmin - (xspan > 0 ? 0.05 * xspan : 0.5);
    f->xhi = xmax + (xspan > 0 ? 0.05 * xspan : 0.5);

    double ystep = nice_step((f->yhi - f->ylo) / 5);
    a.ydec = (int)fmax(0, -floor(log10(ystep) + 1e-9));
    a.y = ticks_in(f->ylo, f->yhi, ystep);
    double xstep = fmax(1, round(nice_step(fmax(xspan, 1) / 8)));
    a.x = ticks_in(f->xlo, f->xhi, xstep);
    return a;
}

/* The grid lines, the frame and the tick marks, on whole pixels. */
static void loss_grid(cairo_t *cr, const loss_axes *a)
{
    const frame *f = &a->f;
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    for (long k = a->y.k0; k <= a->y.k1; k++)
        cairo_rectangle(cr, f->x0, floor(fy(f, k * a->y.step)), f->w, 1);
    for (long k = a->x.k0; k <= a->x.k1; k++)
        cairo_rectangle(cr, floor(fx(f, k * a->x.step)), f->y0, 1, f->h);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_rectangle(cr, f->x0 - 1, f->y0 - 1, f->w + 2, 1);
    cairo_rectangle(cr, f->x0 - 1, f->y0 + f->h, f->w + 2, 1);
    cairo_rectangle(cr, f->x0 - 1, f->y0 - 1, 1, f->h + 2);
    cairo_rectangle(cr, f->x0 + f->w, f->y0 - 1, 1, f->h + 2);
    for (long k = a->y.k0; k <= a->y.k1; k++)
        cairo_rectangle(cr, f->x0 - 5, floor(fy(f, k * a->y.step)), 4, 1);
    for (long k = a->x.k0; k <= a->x.k1; k++)
        cairo_rectangle(cr, floor(fx(f, k * a->x.step)), f->y0 + f->h + 1, 1,
                        4);
    cairo_fill(cr);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
}

/* The tick labels, the axis names and the title (may be NULL). */
static void loss_labels(cairo_t *cr, const loss_axes *a, const char *title)
{
    const frame *f = &a->f;
    char s[32];
    set_font(cr, 11, 0);
    for (long k = a->y.k0; k <= a->y.k1; k++) {
        snprintf(s, sizeof s, "%.*f", a->ydec, k * a->y.step);
        text_at(cr, f->x0 - 8, floor(fy(f, k * a->y.step)) + 0.5, s, 1, 0.5);
    }
    for (long k = a->x.k0; k <= a->x.k1; k++) {
        snprintf(s, sizeof s, "%.0f", k * a->x.step);
        text_at(cr, floor(fx(f, k * a->x.step)) + 0.5, f->y0 + f->h + 9, s,
                0.5, 0);
    }
    set_font(cr, 13, 0);
    text_at(cr, f->x0 + f->w / 2, f->y0 + f->h + 32, "period", 0.5, 0);
    cairo_save(cr);
    cairo_translate(cr, 20, f->y0 + f->h / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "log loss", 0.5, 0.5);
    cairo_restore(cr);
    title_at(cr, PLOT_LOSS_W / 2.0, f->y0 / 2.0, title, 14, PLOT_LOSS_W - 16);
}

/* The two series, lines (broken at non-finite values) and markers, clipped
 * to the plot area. */
static void loss_series(cairo_t *cr, const frame *f, const train_period *ps,
                        size_t n)
{
    cairo_save(cr);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_clip(cr);
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int k = 0; k < 2; k++) {
        cairo_set_source_rgb(cr, series_rgb[k][0], series_rgb[k][1],
                             series_rgb[k][2]);
        int pen = 0;
        for (size_t i = 0; i < n; i++) {
            double v = series_value(&ps[i], k);
            if (!isfinite(v)) {
                pen = 0;
                continue;
            }
            if (pen)
                cairo_line_to(cr, fx(f, ps[i].period), fy(f, v));
            else
                cairo_move_to(cr, fx(f, ps[i].period), fy(f, v));
            pen = 1;
        }
        cairo_stroke(cr);
        for (size_t i = 0; i < n; i++) {
            double v = series_value(&ps[i], k);
            if (isfinite(v)) marker(cr, fx(f, ps[i].period), fy(f, v));
        }
    }
    cairo_restore(cr);
}

/* The legend, in the corner of the plot area with the fewest points
 * (upper right first). */
static void loss_legend(cairo_t *cr, const frame *f, const train_period *ps,
                        size_t n)
{
    set_font(cr, 12, 0);
    cairo_text_extents_t e;
    cairo_text_extents(cr, series_name[1], &e);
    double lw = 44 + e.x_advance + 10, lh = 46, m = 10;
    double cx[4] = {f->x0 + f->w - m - lw, f->x0 + f->w - m - lw, f->x0 + m,
                    f->x0 + m};
    double cy[4] = {f->y0 + m, f->y0 + f->h - m - lh, f->y0 + m,
                    f->y0 + f->h - m - lh};
    int best = 0, best_c = -1;
    for (int c = 0; c < 4; c++) {
        int cnt = points_in(f, ps, n, cx[c], cy[c], lw, lh);
        if (best_c < 0 || cnt < best_c) {
            best = c;
            best_c = cnt;
        }
    }
    double lx = cx[best], ly = cy[best];
    cairo_rectangle(cr, lx + 0.5, ly + 0.5, lw, lh);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    for (int k = 0; k < 2; k++) {
        double y = ly + 13 + k * 20;
        cairo_set_source_rgb(cr, series_rgb[k][0], series_rgb[k][1],
                             series_rgb[k][2]);
        cairo_set_line_width(cr, 2);
        cairo_move_to(cr, lx + 8, y);
        cairo_line_to(cr, lx + 34, y);
        cairo_stroke(cr);
        marker(cr, lx + 21, y);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, lx + 42, y, series_name[k], 0, 0.5);
    }
}

int plot_loss(const train_period *ps, size_t n, const char *title,
              pngenc_buf *out, mn_err *err)
{
    *out = (pngenc_buf){0};
    if (n == 0) return mn_errf(err, "plot: no periods to plot");
    loss_axes a = loss_scale(ps, n);
    canvas cv;
    if (canvas_new(&cv, PLOT_LOSS_W, PLOT_LOSS_H, err)) return -1;
    loss_grid(cv.cr, &a);
    loss_labels(cv.cr, &a, title);
    loss_series(cv.cr, &a.f, ps, n);
    loss_legend(cv.cr, &a.f, ps, n);
    int rc = canvas_png(&cv, out, err);
    canvas_free(&cv);
    return rc;
}
