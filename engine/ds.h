/* ds.h: image datasets (MNIST-style: 28x28 uint8 pixels, uint8 labels 0..9).
 *
 * Readers for IDX files (plain or gzip) and for the exercise's CSV format
 * (label, then rows*cols pixel values 0..255 per line, no header; a header
 * line is skipped). Pixels and labels stay uint8 in memory; batches are
 * scaled to float (divided by 255) only when gathered.
 *
 * Ownership: a ds_dataset owns its pixels and labels arrays; release them
 * with ds_free(). A loaded dataset is read-only and may be shared by any
 * number of threads. */
#ifndef MN_DS_H
#define MN_DS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define DS_CLASSES 10
#define DS_ROWS 28
#define DS_COLS 28
#define DS_PIXELS (DS_ROWS * DS_COLS)

typedef struct ds_dataset {
    uint32_t n;      /* number of examples */
    uint32_t rows;   /* image height (28) */
    uint32_t cols;   /* image width (28) */
    uint8_t *pixels; /* [n, rows*cols], owned */
    uint8_t *labels; /* [n], owned, each 0..9 */
} ds_dataset;

/* Frees the arrays and zeroes *d. Safe on a zeroed dataset. */
void ds_free(ds_dataset *d);

/* Parses an IDX image file and an IDX label file held in memory (already
 * decompressed). `name` is used in error messages. On success fills *out
 * (new arrays owned by *out) and returns 0; on error returns -1 with a
 * reason naming the file and the problem (wrong magic, truncated data,
 * dimensions that do not match the size, count mismatch, label > 9). */
int ds_parse_idx(ds_dataset *out, const uint8_t *img, size_t img_len,
                 const char *img_name, const uint8_t *lab, size_t lab_len,
                 const char *lab_name, mn_err *err);

/* Reads an IDX image file and label file from disk; a path ending in ".gz"
 * (or starting with the gzip magic) is decompressed with zlib. */
int ds_load_idx(ds_dataset *out, const char *images_path,
                const char *labels_path, mn_err *err);

/* Streaming CSV parser, for files and for HTTP uploads alike.
 * Feed it bytes in chunks of any size; each complete line is validated as
 * it arrives. Numbers may be written as whole floats (`255.0`, `1e2`).
 * Errors name the line number and the reason (wrong column count, label
 * outside 0..9, pixel not an integer 0..255 (saying when the row looks
 * scaled to 0..1), not a number, or lines run together). */
typedef struct ds_csv ds_csv;

/* New parser (owned by the caller; free with ds_csv_free). `name` appears
 * in error messages. max_rows = 0 means no limit. NULL on allocation
 * failure. */
ds_csv *ds_csv_new(const char *name, uint32_t max_rows);
void ds_csv_free(ds_csv *p);

/* Consumes len bytes. Returns 0, or -1 with the first error (later calls
 * keep failing with the same error). */
int ds_csv_feed(ds_csv *p, const char *buf, size_t len, mn_err *err);

/* Ends the input (a last line without newline counts) and moves the rows
 * into *out (ownership passes to *out). Fails on an empty file. */
int ds_csv_finish(ds_csv *p, ds_dataset *out, mn_err *err);

/* Reads a whole CSV file from disk through the streaming parser. */
int ds_load_csv(ds_dataset *out, const char *path, mn_err *err);

/* A built-in dataset: the IDX pair <prefix>-images-idx3-ubyte and
 * <prefix>-labels-idx1-ubyte (plain or .gz) under <data_dir>/<dir>/, the
 * name of the test set that goes with it, and the names of its classes
 * (NULL: none, the labels are the digits themselves). */
typedef struct ds_builtin {
    const char *name;           /* "mnist", "fashion-mnist-test", ... */
    const char *dir;            /* under the data directory */
    const char *prefix;         /* "train" or "t10k" */
    const char *test;           /* its test set's name */
    const char *fetch;          /* how to get the files, for messages */
    const char *const *class_names; /* [DS_CLASSES] or NULL */
} ds_builtin;

/* The built-in datasets (MNIST and Fashion-MNIST, training and test
 * sets), ended by an entry with a NULL name. Static. */
extern const ds_builtin ds_builtins[];

/* The built-in dataset called name, or NULL (also for NULL). */
const ds_builtin *ds_builtin_find(const char *name);

/* Loads a dataset by name: a built-in one (ds_builtins) from its files
 * under data_dir; otherwise `name` is a path to a .csv file, or to an IDX
 * images file whose labels file ds_idx_labels_path finds. */
int ds_load_named(ds_dataset *out, const char *data_dir, const char *name,
                  mn_err *err);

/* The labels file of an IDX images file, by name: the last "images-idx3"
 * or "images.idx3" in `images` becomes "labels-idx1" or "labels.idx1"
 * (train-images.idx3-ubyte -> train-labels.idx1-ubyte); if that file does
 * not exist but the same name with ".gz" added or removed does, that one.
 * Writes the path into buf (size bytes). Returns 0 (the file may still be
 * missing: the loader says so), or -1 when the name has neither word or
 * is too long. */
int ds_idx_labels_path(const char *images, char *buf, size_t size,
                       mn_err *err);

/* The exercise's split: take the first `examples` rows of d, shuffle them
 * with a generator seeded by `seed`, and cut them into the first
 * examples - validation rows for training and the rest for validation.
 * Writes newly allocated index arrays (caller frees with free()).
 * Fails if examples > d->n, validation >= examples, or validation == 0. */
int ds_split(const ds_dataset *d, uint32_t examples, uint32_t validation,
             uint64_t seed, uint32_t **train_idx, uint32_t *n_train,
             uint32_t **val_idx, uint32_t *n_val, mn_err *err);

/* Packs B examples straight from their bytes into compressed sparse rows
 * of values scaled to 0..1 (pixel / 255): row i's nonzero pixels are
 * idx/val[rowptr[i] .. rowptr[i+1]), the layout model_forward_csr reads.
 * Returns the count of nonzeros.
 * rowptr: [B+1] out  idx, val: [B * rows*cols] out  y: [B] out (or NULL)
 * rows: [B] row numbers */
uint32_t ds_pack(const ds_dataset *d, const uint32_t *rows, int B,
                 uint32_t *rowptr, uint32_t *idx, float *val, uint8_t *y);

/* A set of rows kept packed (compressed sparse rows of values scaled to
 * 0..1), so that a run packs its training and validation splits once
 * instead of at every batch and every evaluation. Owns its arrays. */
typedef struct ds_packed {
    uint32_t n;          /* rows */
    uint32_t cols;       /* values per row (rows*cols of the images) */
    uint32_t *rowptr;    /* [n+1] row i's nonzeros: idx/val[rowptr[i] ..] */
    uint32_t *idx;       /* [nnz] column of each nonzero */
    float *val;          /* [nnz] pixel / 255 */
    uint8_t *labels;     /* [n] */
} ds_packed;

/* Packs rows[0..n) of d. Returns 0, 1 (nothing built) when more than
 * max_density of the values are nonzero (dense data is better served by
 * the dense path), or -1 with a reason. */
int ds_packed_new(ds_packed *p, const ds_dataset *d, const uint32_t *rows,
                  uint32_t n, double max_density, mn_err *err);
void ds_packed_free(ds_packed *p);

/* Copies the packed rows sel[0..B) of p into CSR buffers (as ds_pack
 * writes them); labels into y (or NULL). Returns the count of nonzeros.
 * rowptr: [B+1] out  idx, val: [B * p->cols] out */
uint32_t ds_packed_gather(const ds_packed *p, const uint32_t *sel, int B,
                          uint32_t *rowptr, uint32_t *idx, float *val,
                          uint8_t *y);

/* Gathers B examples into a float batch scaled to 0..1.
 * x: [B, rows*cols] out; y: [B] out (may be NULL); idx: [B] row numbers. */
void ds_gather(const ds_dataset *d, const uint32_t *idx, int B, float *x,
               uint8_t *y);

#endif
