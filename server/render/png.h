/* png.h: PNG encoding into memory through libpng, for the pictures the
 * server draws (weight tiles, dataset examples) and for cairo's PNG stream.
 *
 * Images are 8-bit gray (1 channel) or 8-bit RGB (3 channels), rows top to
 * bottom. The encoder pulls one row at a time from a callback, so a large
 * picture never exists uncompressed in memory.
 *
 * The module prefix is pngenc_ (libpng owns png_).
 *
 * Ownership: a pngenc_buf owns its bytes (data is malloc'd); release them
 * with pngenc_buf_free. On failure every function leaves *out empty. */
#ifndef MN_PNG_H
#define MN_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"

/* Largest width or height the encoder accepts (PNG allows 2^31 - 1). */
#define PNGENC_MAX_SIDE 1000000u

typedef struct pngenc_buf {
    uint8_t *data;  /* [len] bytes, owned; NULL when empty */
    size_t len, cap;
} pngenc_buf;

/* Frees the bytes and zeroes *b. Safe on a zeroed buffer. */
void pngenc_buf_free(pngenc_buf *b);

/* Appends n bytes, growing the buffer geometrically. Returns 0, or -1 when
 * out of memory (the buffer is unchanged then). */
int pngenc_buf_append(pngenc_buf *b, const void *data, size_t n);

/* Fills row y (0-based, top to bottom) of the picture: w * channels bytes.
 * ctx is the caller's. */
typedef void (*pngenc_row_fn)(void *ctx, uint32_t y, uint8_t *row);

/* Encodes a w x h picture of `channels` 1 (gray) or 3 (RGB) as PNG into
 * *out, asking row() for each row in order. *out is overwritten with a
 * new buffer (whatever it held is not freed). Returns 0, or -1 with a
 * reason (bad size or channels, out of memory, a libpng error); *out is
 * empty then. */
int pngenc_encode_rows(uint32_t w, uint32_t h, int channels,
                       pngenc_row_fn row, void *ctx, pngenc_buf *out,
                       mn_err *err);

/* As pngenc_encode_rows for pixels already in memory.
 * px: [h, w * channels], borrowed. */
int pngenc_encode(const uint8_t *px, uint32_t w, uint32_t h, int channels,
                  pngenc_buf *out, mn_err *err);

#endif
