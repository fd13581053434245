/* plot.h: the pictures of a run and of a dataset, drawn as PNG: the
 * exercise's figures (row-normalised confusion heatmap, training and
 * validation log loss per period, first-layer weights as 28x28 tiles)
 * and single dataset images. No HTTP here: plain data in, PNG bytes out.
 *
 * Pixel pictures (weight tiles, examples) go through png.h (libpng);
 * plots with text (confusion, loss) are drawn with cairo and written with
 * cairo's PNG stream. Every picture is 8-bit RGB, or gray for examples.
 *
 * Colormaps follow matplotlib's definitions (see plot.c): bone_r for the
 * confusion (0 white .. 1 black), pink for weights (low dark red .. high
 * white).
 *
 * Thread safety: all functions are reentrant (cairo and fontconfig lock
 * for themselves); inputs are borrowed read-only. The first plot drawn
 * with cairo registers an atexit handler that frees cairo's and
 * fontconfig's process-wide font caches: exit only once no thread draws
 * (the server stops its HTTP daemon first).
 *
 * Ownership: *out receives a new buffer (pngenc_buf_free); on failure it
 * is left empty and err says why. */
#ifndef MN_PLOT_H
#define MN_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/ds.h"
#include "engine/err.h"
#include "engine/train.h"
#include "server/render/png.h"

/* ---- colormaps: x in 0..1 (clamped; NaN as 0) to 8-bit RGB ---- */

/* matplotlib's bone_r: bone reversed; bone(0) black .. bone(1) white. */
void plot_bone_r(double x, uint8_t rgb[3]);

/* matplotlib's pink: (0.1178, 0, 0) at 0 .. white at 1. */
void plot_pink(double x, uint8_t rgb[3]);

/* ---- dataset images ---- */

#define PLOT_MAX_SCALE 16

/* One image enlarged `scale` times (1..PLOT_MAX_SCALE), gray, pixel
 * values as stored (MNIST: white digit on black): (cols*scale) x
 * (rows*scale). px: [rows*cols] */
int plot_example(const uint8_t *px, uint32_t rows, uint32_t cols, int scale,
                 pngenc_buf *out, mn_err *err);

/* ---- weights ---- */

#define PLOT_TILES_PER_ROW 10
#define PLOT_TILE_GAP 2                     /* px between and around tiles */
#define PLOT_MAX_PIXELS (32u * 1000 * 1000) /* largest weights picture */

/* Size of the weights picture: min(units, 10) tiles per row,
 * ceil(units / 10) rows of tiles, each tile (cols*scale) x (rows*scale),
 * PLOT_TILE_GAP px between tiles and around the edge:
 *   width  = n * (cols*scale) + (n + 1) * gap,  n = min(units, 10)
 *   height = m * (rows*scale) + (m + 1) * gap,  m = ceil(units / 10) */
void plot_weights_size(int units, uint32_t rows, uint32_t cols, int scale,
                       uint64_t *width, uint64_t *height);

/* The incoming weights of each unit drawn as a rows x cols tile, unit by
 * unit left to right, top to bottom; each tile scaled to its own min..max
 * through pink (a constant tile is drawn at the colormap's middle). Gaps
 * are mid gray. Fails when the picture exceeds PLOT_MAX_PIXELS.
 * W: [rows*cols, units] (input i of unit u at W[i*units + u]) */
int plot_weights(const float *W, uint32_t rows, uint32_t cols, int units,
                 int scale, pngenc_buf *out, mn_err *err);

/* ---- confusion heatmap ---- */

#define PLOT_CONF_CELL 40                   /* px per cell */
#define PLOT_CONF_X0 70                     /* left edge of the grid */
#define PLOT_CONF_Y0 50                     /* top edge of the grid */
#define PLOT_CONF_W 560
#define PLOT_CONF_H 510

/* The row-normalised confusion (rows true labels top to bottom, columns
 * predicted left to right) as a PLOT_CONF_W x PLOT_CONF_H heatmap through
 * bone_r: cell (t, p) covers x PLOT_CONF_X0 + 40p .. +40, y PLOT_CONF_Y0 +
 * 40t .. +40, with 1 px grid lines on each cell's first row and column.
 * Digits along both axes, each nonzero cell's value written in it, a
 * colorbar on the right, `title` on top (borrowed; may be NULL). */
int plot_confusion(const uint32_t counts[DS_CLASSES][DS_CLASSES],
                   const char *title, pngenc_buf *out, mn_err *err);

/* ---- loss curves ---- */

#define PLOT_LOSS_W 640
#define PLOT_LOSS_H 420

/* Training and validation log loss per period (x: period number, y: log
 * loss), two lines with markers, axes with ticks and labels, a legend
 * ("training", "validation") and `title` (may be NULL), in a
 * PLOT_LOSS_W x PLOT_LOSS_H picture. Non-finite values are left out.
 * Needs n >= 1. ps: [n] */
int plot_loss(const train_period *ps, size_t n, const char *title,
              pngenc_buf *out, mn_err *err);

#endif
