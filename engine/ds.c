/* ds.c: image datasets: IDX and CSV readers, the exercise's split, and
 * float batches gathered from uint8 pixels.
 *
 * Every reader validates before it trusts: header fields are checked
 * against hard caps (DS_MAX_EXAMPLES images, sides of at most DS_MAX_SIDE)
 * before any size is computed, sizes are computed with overflow checks, and
 * data read from disk grows its buffer only as bytes actually arrive, so a
 * lying header can neither overflow an integer nor trigger a huge
 * allocation. Each error is one line naming the file and the reason. */
#include "ds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "rng.h"

#define DS_MAX_EXAMPLES 10000000u /* more images than this is an error */
#define DS_MAX_SIDE 1024u         /* image rows and cols are 1..this */
#define DS_CSV_MAX_LINE 65536u    /* bytes per CSV line, newline excluded */
#define DS_CSV_COLUMNS (1 + DS_PIXELS)
#define DS_FIELD_TEXT 32 /* bytes of a CSV field quoted in messages */

#define IDX_IMAGES_MAGIC 0x00000803u /* ubyte data, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* ubyte data, 1 dimension */
#define IDX_IMAGES_HEADER 16u
#define IDX_LABELS_HEADER 8u

#define GZ_CHUNK (1u << 30)     /* largest single gzread() request */
#define READ_START (1u << 24)   /* first buffer for an IDX payload */

void ds_free(ds_dataset *d)
{
    if (!d) return;
    free(d->pixels);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- IDX */

/* A validated IDX header. */
typedef struct idx_head {
    int images;     /* 1: image file (n, rows, cols); 0: label file (n) */
    uint32_t n;     /* number of items */
    uint32_t rows;  /* image height; 1 for labels */
    uint32_t cols;  /* image width; 1 for labels */
    size_t header;  /* header bytes (16 or 8) */
    size_t payload; /* data bytes the dimensions call for */
} idx_head;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Parses the header from the first `len` bytes of an IDX file (len may be
 * short: that is a truncated header) and checks it against the caps.
 * images selects the expected kind. Fills *h; returns 0, or -1 with a
 * message naming `name`. */
static int idx_head_parse(const uint8_t *b, size_t len, int images,
                          const char *name, idx_head *h, mn_err *err)
{
    const uint32_t want = images ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
    const char *kind = images ? "image" : "label";

    memset(h, 0, sizeof *h);
    h->images = images;
    h->header = images ? IDX_IMAGES_HEADER : IDX_LABELS_HEADER;
    h->rows = h->cols = 1;
    if (len < 4)
        return mn_errf(err, "%s: truncated header (%zu bytes; an IDX %s file "
                       "needs %zu)", name, len, kind, h->header);
    uint32_t magic = be32(b);
    if (magic != want) {
        const char *hint = "";
        if (magic == IDX_LABELS_MAGIC) hint = "; this is a label file";
        if (magic == IDX_IMAGES_MAGIC) hint = "; this is an image file";
        return mn_errf(err, "%s: wrong magic 0x%08x (expected 0x%08x for an "
                       "IDX %s file%s)", name, magic, want, kind, hint);
    }
    if (len < h->header)
        return mn_errf(err, "%s: truncated header (%zu bytes; an IDX %s file "
                       "needs %zu)", name, len, kind, h->header);
    h->n = be32(b + 4);
    if (images) {
        h->rows = be32(b + 8);
        h->cols = be32(b + 12);
    }
    if (h->n == 0) return mn_errf(err, "%s: no %ss (count is 0)", name, kind);
    if (h->n > DS_MAX_EXAMPLES)
        return mn_errf(err, "%s: %u %ss is more than the limit of %u", name,
                       h->n, kind, DS_MAX_EXAMPLES);
    if (h->rows == 0 || h->cols == 0 || h->rows > DS_MAX_SIDE ||
        h->cols > DS_MAX_SIDE)
        return mn_errf(err, "%s: image size %ux%u outside 1..%u", name,
                       h->rows, h->cols, DS_MAX_SIDE);
    size_t per = (size_t)h->rows * h->cols; /* <= 2^20, no overflow */
    if (per > SIZE_MAX / h->n)
        return mn_errf(err, "%s: %u images of %ux%u do not fit in memory",
                       name, h->n, h->rows, h->cols);
    h->payload = per * h->n;
    return 0;
}

/* Reports that a file holds `have` data bytes after its header instead of
 * the h->payload its dimensions call for. have_known = 0 means "more than
 * payload, exact size unknown" (a stream). Returns -1. */
static int idx_size_error(const char *name, const idx_head *h, size_t have,
                          int have_known, mn_err *err)
{
    char what[64];
    if (h->images)
        snprintf(what, sizeof what, "%u images of %ux%u", h->n, h->rows,
                 h->cols);
    else
        snprintf(what, sizeof what, "%u labels", h->n);
    if (have_known && have < h->payload)
        return mn_errf(err, "%s: truncated data: %s need %zu bytes after the "
                       "header, the file has %zu", name, what, h->payload,
                       have);
    if (have_known)
        return mn_errf(err, "%s: dimensions do not match the size: %s need "
                       "%zu bytes after the header, the file has %zu", name,
                       what, h->payload, have);
    return mn_errf(err, "%s: dimensions do not match the size: %s need %zu "
                   "bytes after the header, the file has more", name, what,
                   h->payload);
}

/* Checks that both headers count the same number of examples. */
static int idx_check_counts(const idx_head *hi, const char *img_name,
                            const idx_head *hl, const char *lab_name,
                            mn_err *err)
{
    if (hi->n == hl->n) return 0;
    return mn_errf(err, "%s has %u images but %s has %u labels", img_name,
                   hi->n, lab_name, hl->n);
}

/* Checks that every one of the n labels is a class 0..9. */
static int idx_check_labels(const uint8_t *lab, uint32_t n, const char *name,
                            mn_err *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (lab[i] >= DS_CLASSES)
            return mn_errf(err, "%s: label %u at index %u outside 0..%d",
                           name, lab[i], i, DS_CLASSES - 1);
    return 0;
}

int ds_parse_idx(ds_dataset *out, const uint8_t *img, size_t img_len,
                 const char *img_name, const uint8_t *lab, size_t lab_len,
                 const char *lab_name, mn_err *err)
{
    idx_head hi, hl;
    uint8_t *pixels = NULL, *labels = NULL;

    memset(out, 0, sizeof *out);
    if (!img_name) img_name = "images";
    if (!lab_name) lab_name = "labels";
    if (!img) img_len = 0;
    if (!lab) lab_len = 0;
    if (idx_head_parse(img, img_len, 1, img_name, &hi, err)) goto fail;
    if (idx_head_parse(lab, lab_len, 0, lab_name, &hl, err)) goto fail;
    if (idx_check_counts(&hi, img_name, &hl, lab_name, err)) goto fail;
    if (img_len - hi.header != hi.payload) {
        idx_size_error(img_name, &hi, img_len - hi.header, 1, err);
        goto fail;
    }
    if (lab_len - hl.header != hl.payload) {
        idx_size_error(lab_name, &hl, lab_len - hl.header, 1, err);
        goto fail;
    }
    if (idx_check_labels(lab + hl.header, hl.n, lab_name, err)) goto fail;

    pixels = malloc(hi.payload);
    if (!pixels) {
        mn_errf(err, "%s: out of memory for %zu bytes", img_name, hi.payload);
        goto fail;
    }
    labels = malloc(hl.payload);
    if (!labels) {
        mn_errf(err, "%s: out of memory for %zu bytes", lab_name, hl.payload);
        goto fail;
    }
    memcpy(pixels, img + hi.header, hi.payload);
    memcpy(labels, lab + hl.header, hl.payload);
    out->n = hi.n;
    out->rows = hi.rows;
    out->cols = hi.cols;
    out->pixels = pixels;
    out->labels = labels;
    return 0;

fail:
    free(labels);
    free(pixels);
    return -1;
}

/* Opens `path` for reading through zlib, which passes plain files through
 * unchanged and inflates files that start with the gzip magic 1f 8b.
 * On success *out is a new handle (close with gzclose). */
static int gz_open(gzFile *out, const char *path, mn_err *err)
{
    struct stat st;
    gzFile f;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *out = NULL;
    if (fd < 0) return mn_errf(err, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mn_errf(err, "cannot open %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mn_errf(err, "cannot open %s: not a regular file", path);
    }
    f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return mn_errf(err, "cannot open %s: out of memory", path);
    }
    gzbuffer(f, 1u << 17);
    *out = f;
    return 0;
}

/* Writes the read error held by f. Returns -1. */
static int gz_error(gzFile f, const char *name, mn_err *err)
{
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    if (code == Z_ERRNO)
        return mn_errf(err, "%s: read error: %s", name, strerror(errno));
    if (code == Z_BUF_ERROR)
        return mn_errf(err, "%s: truncated gzip stream", name);
    return mn_errf(err, "%s: corrupt gzip data: %s", name,
                   msg && *msg ? msg : "unknown zlib error");
}

/* Reads up to `want` bytes into buf, stopping early only at end of file.
 * *got receives the count. Returns 0, or -1 on a read or gzip error. */
static int gz_read_full(gzFile f, uint8_t *buf, size_t want, size_t *got,
                        const char *name, mn_err *err)
{
    size_t have = 0;
    while (have < want) {
        size_t ask = want - have;
        if (ask > GZ_CHUNK) ask = GZ_CHUNK;
        int r = gzread(f, buf + have, (unsigned)ask);
        if (r < 0) return gz_error(f, name, err);
        if (r == 0) break;
        have += (size_t)r;
    }
    *got = have;
    return 0;
}

/* Reads and validates the header of an open IDX file. */
static int idx_read_head(gzFile f, const char *name, int images, idx_head *h,
                         mn_err *err)
{
    uint8_t b[IDX_IMAGES_HEADER];
    size_t got = 0;
    size_t want = images ? IDX_IMAGES_HEADER : IDX_LABELS_HEADER;
    if (gz_read_full(f, b, want, &got, name, err)) return -1;
    return idx_head_parse(b, got, images, name, h, err);
}

/* Reads exactly h->payload data bytes that follow the header, then checks
 * that the file (and its gzip stream) ends there. The buffer grows as data
 * arrives, so a header that lies about its size costs at most twice the
 * bytes really present. On success *out is a new array of h->payload
 * bytes (caller frees). */
static int idx_read_payload(gzFile f, const char *name, const idx_head *h,
                            uint8_t **out, mn_err *err)
{
    size_t cap = h->payload < READ_START ? h->payload : READ_START;
    size_t have = 0, got = 0;
    uint8_t extra;
    uint8_t *buf = malloc(cap), *nb;
    int code = Z_OK;

    *out = NULL;
    if (!buf) return mn_errf(err, "%s: out of memory for %zu bytes", name, cap);
    for (;;) {
        if (gz_read_full(f, buf + have, cap - have, &got, name, err))
            goto fail;
        have += got;
        if (have < cap || cap == h->payload) break;
        cap = cap > h->payload / 2 ? h->payload : cap * 2;
        nb = realloc(buf, cap);
        if (!nb) {
            mn_errf(err, "%s: out of memory for %zu bytes", name, cap);
            goto fail;
        }
        buf = nb;
    }
    if (have < h->payload) {
        gzerror(f, &code);
        if (code == Z_BUF_ERROR) gz_error(f, name, err);
        else idx_size_error(name, h, have, 1, err);
        goto fail;
    }
    if (gz_read_full(f, &extra, 1, &got, name, err)) goto fail;
    if (got) {
        idx_size_error(name, h, 0, 0, err);
        goto fail;
    }
    gzerror(f, &code);
    if (code != Z_OK) {
        gz_error(f, name, err);
        goto fail;
    }
    *out = buf;
    return 0;

fail:
    free(buf);
    return -1;
}

int ds_load_idx(ds_dataset *out, const char *images_path,
                const char *labels_path, mn_err *err)
{
    gzFile fi = NULL, fl = NULL;
    uint8_t *pixels = NULL, *labels = NULL;
    idx_head hi, hl;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (gz_open(&fi, images_path, err)) goto done;
    if (idx_read_head(fi, images_path, 1, &hi, err)) goto done;
    if (gz_open(&fl, labels_path, err)) goto done;
    if (idx_read_head(fl, labels_path, 0, &hl, err)) goto done;
    if (idx_check_counts(&hi, images_path, &hl, labels_path, err)) goto done;
    if (idx_read_payload(fi, images_path, &hi, &pixels, err)) goto done;
    if (idx_read_payload(fl, labels_path, &hl, &labels, err)) goto done;
    if (idx_check_labels(labels, hl.n, labels_path, err)) goto done;

    out->n = hi.n;
    out->rows = hi.rows;
    out->cols = hi.cols;
    out->pixels = pixels;
    out->labels = labels;
    pixels = labels = NULL;
    rc = 0;

done:
    free(labels);
    free(pixels);
    if (fl) gzclose(fl);
    if (fi) gzclose(fi);
    return rc;
}

/* ---------------------------------------------------------------- CSV */

/* The parser is a byte-at-a-time state machine: it never buffers a line.
 * Each field is validated when its comma or newline arrives and its value
 * goes straight into the row being built. Only the first DS_FIELD_TEXT
 * bytes of the current field are kept, for error messages. The common
 * field, a short pixel value and its comma within the buffer at hand, is
 * taken in one step with the same outcome.
 *
 * Accepted input: lines of `label,p1,...,p784`; each field a decimal
 * number whose value is a whole number (`7`, `7.0`, `255.000`, `2.55e2`,
 * `-0`: as pandas and spreadsheets write integers), optionally surrounded
 * by spaces or tabs; LF, CRLF or CR-only line endings; a UTF-8 byte order
 * mark at the very start.
 * Skipped: blank lines (empty or only spaces) anywhere, and the first
 * non-blank line when its first field starts with a letter or a double
 * quote (a header such as `label,pixel0,...`). Anything else is an error
 * that names the line (1-based) and, for a field, its column (1-based).
 *
 * A number is read exactly, digit by digit: its significant digits go into
 * an integer mantissa m (up to 17 of them; later nonzero digits only mark
 * it inexact) and its value is m * 10^e, e counting pending zeros, digits
 * after the point and the exponent. So `254.99999999999999999` is not 255.
 * A pixel that is not an integer 0..255 is reported when its line ends,
 * so that the message can say whether the whole row looks scaled to 0..1
 * (the JSON API's pixel range). */

enum { F_LEAD, F_BODY, F_TRAIL }; /* where we are inside a field */
enum { N_INT, N_FRAC, N_EXP_SIGN, N_EXP }; /* where we are inside a number */

#define CSV_M_ROOM 10000000000000000ull /* 1e16: m * 10 + 9 still fits */
#define CSV_BIG 1000000u                /* values saturate here */
#define CSV_EXP_MAX 100000u             /* exponents saturate here */

struct ds_csv {
    char *name;        /* owned copy, for messages */
    uint32_t limit;    /* most rows accepted (never 0) */
    uint8_t *pixels;   /* [cap, DS_PIXELS], owned */
    uint8_t *labels;   /* [cap], owned */
    uint32_t n;        /* complete rows */
    uint32_t cap;      /* rows allocated */
    uint64_t line;     /* current line, 1-based */
    size_t line_len;   /* bytes so far on the current line */
    uint32_t col;      /* current column, 1-based */
    uint32_t bom;      /* byte order mark bytes matched at file start */
    uint64_t offset;   /* bytes consumed in all */
    uint64_t cr_at;    /* offset of the last CR (a LF right after it ends
                        * the same line), 0 for none */
    int header_ok;     /* no non-blank line yet: a header may come */
    int skipping;      /* current line is the header */
    int failed;        /* err holds the first error */
    int finished;      /* ds_csv_finish ran */
    /* current field */
    int fstate;        /* F_LEAD, F_BODY or F_TRAIL */
    int fbad;          /* not of the form [-]d[.d][e[+-]d] */
    int fneg;          /* starts with '-' */
    int fpart;         /* N_INT, N_FRAC, N_EXP_SIGN or N_EXP */
    uint32_t fdigits;  /* mantissa digits seen */
    uint64_t fm;       /* significant digits, below 1e17 */
    /* the rest of the number, set up by csv_slow when the field is more
     * than a short plain integer (most are not: kept off the fast path) */
    int fslow;         /* the fields below are in use */
    uint32_t fzeros;   /* zero digits not yet multiplied into fm */
    int32_t fscale;    /* minus the digits after the point */
    int finexact;      /* a nonzero digit did not fit into fm */
    uint32_t fexp;     /* exponent digits' value, saturating */
    int fexpneg;       /* exponent has '-' */
    uint32_t fexpdigits;
    char ftext[DS_FIELD_TEXT + 4];
    size_t ftext_len;
    int ftext_cut;     /* field longer than ftext */
    /* current row */
    int row_unit;      /* every bad pixel (not stored) lies in 0..1 */
    uint32_t pend_col; /* first pixel that is no integer 0..255, or 0 */
    int pend_range;    /* it is an integer outside 0..255 */
    char pend_text[DS_FIELD_TEXT + 4];
    mn_err err;        /* the first error */
};

ds_csv *ds_csv_new(const char *name, uint32_t max_rows)
{
    ds_csv *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->name = strdup(name ? name : "csv");
    if (!p->name) {
        free(p);
        return NULL;
    }
    p->limit = (max_rows == 0 || max_rows > DS_MAX_EXAMPLES) ? DS_MAX_EXAMPLES
                                                              : max_rows;
    p->line = 1;
    p->col = 1;
    p->header_ok = 1;
    p->row_unit = 1;
    return p;
}

void ds_csv_free(ds_csv *p)
{
    if (!p) return;
    free(p->labels);
    free(p->pixels);
    free(p->name);
    free(p);
}

/* Records the first error (printf-style, after "<name>: ") and marks the
 * parser failed. Returns -1. */
static int csv_fail(ds_csv *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int csv_fail(ds_csv *p, const char *fmt, ...)
{
    char reason[sizeof p->err.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    p->failed = 1;
    return mn_errf(&p->err, "%s: %s", p->name, reason);
}

static void csv_field_reset(ds_csv *p)
{
    p->fstate = F_LEAD;
    p->fbad = p->fneg = 0;
    p->fpart = N_INT;
    p->fdigits = 0;
    p->fm = 0;
    p->fslow = 0;
    p->ftext_len = 0;
    p->ftext_cut = 0;
    p->ftext[0] = '\0';
}

static void csv_line_reset(ds_csv *p)
{
    csv_field_reset(p);
    p->col = 1;
    p->line_len = 0;
    p->skipping = 0;
    p->row_unit = 1;
    p->pend_col = 0;
}

/* Appends one byte to the quoted field text, printable ASCII only (others
 * become '?', so messages stay valid one-line UTF-8). */
static void csv_text_put(ds_csv *p, unsigned char c)
{
    if (p->ftext_len >= DS_FIELD_TEXT) {
        p->ftext_cut = 1;
        return;
    }
    p->ftext[p->ftext_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    p->ftext[p->ftext_len] = '\0';
}

/* The field text for messages, with "..." when it was cut. */
static const char *csv_text(ds_csv *p)
{
    if (p->ftext_cut && p->ftext_len == DS_FIELD_TEXT) {
        memcpy(p->ftext + DS_FIELD_TEXT, "...", 4);
        p->ftext_len += 3;
    }
    return p->ftext;
}

static int csv_is_space(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Sets up the number state beyond a plain integer, once per field. */
static void csv_slow(ds_csv *p)
{
    if (p->fslow) return;
    p->fslow = 1;
    p->fzeros = 0;
    p->fscale = 0;
    p->finexact = 0;
    p->fexp = 0;
    p->fexpneg = 0;
    p->fexpdigits = 0;
}

/* Takes one mantissa digit d (0..9) into fm, fzeros and fscale, keeping
 * value = fm * 10^(fzeros + fscale) exact while fm has room. */
static void csv_digit(ds_csv *p, unsigned d)
{
    if (p->fpart == N_FRAC) p->fscale--; /* at most one per byte of a line */
    if (p->fzeros == 0 && p->fm < CSV_M_ROOM) {
        p->fm = p->fm * 10 + d;
        return;
    }
    if (d == 0) {
        if (p->fzeros < UINT32_MAX) p->fzeros++;
        return;
    }
    uint64_t m = p->fm;
    uint32_t k = p->fzeros + 1; /* fzeros <= DS_CSV_MAX_LINE here */
    while (k > 0 && m < CSV_M_ROOM) {
        m *= 10;
        k--;
    }
    if (k == 0) {
        p->fm = m + d;
        p->fzeros = 0;
    } else { /* no room: keep the magnitude, lose the digit */
        p->fzeros++;
        p->finexact = 1;
    }
}

/* Takes one byte of the current field (not a comma or line end). */
static void csv_field_byte(ds_csv *p, unsigned char c)
{
    if (csv_is_space(c)) {
        if (p->fstate == F_BODY) p->fstate = F_TRAIL;
        return;
    }
    if (p->fstate == F_TRAIL) { /* "1 2": a gap inside the field */
        p->fbad = 1;
        csv_text_put(p, ' ');
    }
    if (c >= '0' && c <= '9' && p->fpart == N_INT && p->fm < CSV_M_ROOM) {
        p->fdigits++; /* the common case */
        p->fm = p->fm * 10 + (unsigned)(c - '0');
        p->fstate = F_BODY;
        csv_text_put(p, c);
        return;
    }
    csv_slow(p);
    if (c >= '0' && c <= '9') {
        if (p->fpart >= N_EXP_SIGN) {
            p->fpart = N_EXP;
            p->fexpdigits++;
            if (p->fexp < CSV_EXP_MAX) p->fexp = p->fexp * 10 + (c - '0');
        } else {
            p->fdigits++;
            csv_digit(p, (unsigned)(c - '0'));
        }
    } else if (c == '-' && p->fstate == F_LEAD) {
        p->fneg = 1;
    } else if ((c == '-' || c == '+') && p->fpart == N_EXP_SIGN) {
        p->fexpneg = c == '-';
        p->fpart = N_EXP;
    } else if (c == '.' && p->fpart == N_INT) {
        p->fpart = N_FRAC;
    } else if ((c == 'e' || c == 'E') && p->fpart <= N_FRAC && p->fdigits) {
        p->fpart = N_EXP_SIGN;
    } else {
        p->fbad = 1;
    }
    p->fstate = F_BODY;
    csv_text_put(p, c);
}

/* The value of a well-formed field: *val its integer part (of its
 * magnitude), saturating at CSV_BIG; returns whether it is a whole
 * number. */
static int csv_value(const ds_csv *p, uint32_t *val)
{
    static const uint64_t pow10[18] = {
        1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
        10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
        100000000000ull, 1000000000000ull, 10000000000000ull,
        100000000000000ull, 1000000000000000ull, 10000000000000000ull,
        100000000000000000ull};
    int64_t e = (int64_t)p->fzeros + p->fscale +
                (p->fexpneg ? -(int64_t)p->fexp : (int64_t)p->fexp);
    *val = 0;
    if (p->fm == 0) return 1;
    if (e >= 0) { /* m >= 1 and e >= 7 is past CSV_BIG */
        uint64_t v = e < 7 ? p->fm * pow10[e] : CSV_BIG;
        *val = v < CSV_BIG ? (uint32_t)v : CSV_BIG;
        return 1;
    }
    if (e <= -18) return 0; /* fm < 1e17: a fraction of 0 */
    uint64_t q = p->fm / pow10[-e];
    *val = q < CSV_BIG ? (uint32_t)q : CSV_BIG;
    return p->fm % pow10[-e] == 0 && !p->finexact;
}

/* The hint for a line that holds two rows or more: it has at least the
 * fields of two rows run together, or (long_line) it is the first line
 * and longer than any row. */
static const char *csv_joined(const ds_csv *p, int long_line)
{
    return (long_line && p->line == 1) || p->col >= 2 * DS_CSV_COLUMNS - 1
               ? "; the file seems to have lost its line breaks (curl -d "
                 "strips them: send it with --data-binary @file.csv)"
               : "";
}

/* Makes room for one more row. */
static int csv_grow(ds_csv *p)
{
    if (p->n < p->cap) return 0;
    uint32_t cap = p->limit < 64 ? p->limit : 64;
    if (p->cap) cap = p->cap > p->limit / 2 ? p->limit : p->cap * 2;
    uint8_t *px = realloc(p->pixels, (size_t)cap * DS_PIXELS);
    if (!px) return csv_fail(p, "out of memory at line %llu",
                             (unsigned long long)p->line);
    p->pixels = px;
    uint8_t *lb = realloc(p->labels, cap);
    if (!lb) return csv_fail(p, "out of memory at line %llu",
                             (unsigned long long)p->line);
    p->labels = lb;
    p->cap = cap;
    return 0;
}

/* Ends the current field (column p->col): detects the header, validates
 * the number and stores it into row p->n. */
static int csv_field_end(ds_csv *p)
{
    unsigned long long line = (unsigned long long)p->line;

    if (p->col == 1 && p->header_ok) {
        p->header_ok = 0;
        char c0 = p->ftext[0];
        if ((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z') ||
            c0 == '"') {
            p->skipping = 1;
            return 0;
        }
    }
    if (p->col > DS_CSV_COLUMNS) return 0; /* counted, reported at the end */
    if (p->fstate == F_LEAD)
        return csv_fail(p, "line %llu, column %u: empty field", line, p->col);
    if (p->fbad || p->fdigits == 0 || p->fpart == N_EXP_SIGN ||
        (p->fpart == N_EXP && p->fexpdigits == 0))
        return csv_fail(p, "line %llu, column %u: '%s' is not a number", line,
                        p->col, csv_text(p));
    uint32_t val;
    int whole = 1;
    if (p->fpart == N_INT && p->fm < CSV_M_ROOM) { /* a plain integer */
        val = p->fm < CSV_BIG ? (uint32_t)p->fm : CSV_BIG;
    } else {
        csv_slow(p);
        whole = csv_value(p, &val);
    }
    int neg = p->fneg && !(whole && val == 0); /* -0 is 0 */
    if (p->col == 1) {
        if (!whole && !neg && val < DS_CLASSES)
            return csv_fail(p, "line %llu: label %s is not a whole number "
                            "(labels are integers 0..%d)", line, csv_text(p),
                            DS_CLASSES - 1);
        if (neg || val >= DS_CLASSES)
            return csv_fail(p, "line %llu: label %s outside 0..%d", line,
                            csv_text(p), DS_CLASSES - 1);
        if (p->n >= p->limit)
            return csv_fail(p, "line %llu: more than %u rows", line, p->limit);
        if (csv_grow(p)) return -1;
        p->labels[p->n] = (uint8_t)val;
        return 0;
    }
    uint8_t *px = &p->pixels[(size_t)p->n * DS_PIXELS + (p->col - 2)];
    if (neg || val > 255 || !whole) {
        *px = 0; /* neutral for csv_row_unit */
        /* 0..1 inclusive: a value below 1, or exactly 1 */
        if (neg || val > 1 || (val == 1 && !whole)) p->row_unit = 0;
        if (!p->pend_col) { /* reported at the end of the line */
            p->pend_col = p->col;
            p->pend_range = whole;
            memcpy(p->pend_text, csv_text(p), sizeof p->pend_text);
        }
        return 0;
    }
    *px = (uint8_t)val;
    return 0;
}

/* Does every pixel of the current row so far lie in 0..1 (the JSON API's
 * range)? Only asked when a row has a bad pixel: the stored ones are
 * scanned here rather than tracked on the fast path. */
static int csv_row_unit(const ds_csv *p)
{
    const uint8_t *px = &p->pixels[(size_t)p->n * DS_PIXELS];
    uint32_t stored = p->col - 1 < DS_PIXELS ? p->col - 1 : DS_PIXELS;
    if (!p->row_unit) return 0;
    for (uint32_t j = 0; j < stored; j++)
        if (px[j] > 1) return 0;
    return 1;
}

/* Ends the current line: skips it if blank or the header, else finishes
 * its last field, checks the column count and commits the row. */
static int csv_line_end(ds_csv *p)
{
    if (!p->skipping && !(p->col == 1 && p->fstate == F_LEAD)) {
        if (csv_field_end(p)) return -1;
        if (!p->skipping) {
            /* rows run together: that first, their seam looks like a
             * bad pixel; else the line's first error */
            const char *joined = csv_joined(p, 0);
            if (p->col != DS_CSV_COLUMNS && (*joined || !p->pend_col))
                return csv_fail(p, "line %llu: expected %u columns (label + "
                                "%u pixels), got %u%s",
                                (unsigned long long)p->line, DS_CSV_COLUMNS,
                                DS_PIXELS, p->col, joined);
            if (p->pend_col)
                return csv_fail(p, "line %llu, column %u: pixel %s %s: CSV "
                                "pixels are integers 0..255%s",
                                (unsigned long long)p->line, p->pend_col,
                                p->pend_text, p->pend_range
                                                  ? "outside 0..255"
                                                  : "is not a whole number",
                                csv_row_unit(p)
                                    ? "; all of this row's pixels lie in 0..1, "
                                      "so the file looks scaled to 0..1 (the "
                                      "range of the JSON API, not of CSV)"
                                    : "");
            p->n++;
        }
    }
    csv_line_reset(p);
    p->line++;
    return 0;
}

int ds_csv_feed(ds_csv *p, const char *buf, size_t len, mn_err *err)
{
    static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};
    const unsigned char *s = (const unsigned char *)buf;

    if (!p->failed && p->finished)
        csv_fail(p, "data fed after the end of input");
    if (p->failed) goto fail;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (p->offset < 3 && p->bom == p->offset) {
            p->offset++;
            if (c == bom[p->bom]) {
                p->bom++;
                continue;
            }
            if (p->bom > 0) {
                csv_fail(p, "line 1: malformed byte order mark");
                goto fail;
            }
        } else {
            p->offset++;
        }
        if (c <= '\r' && (c == '\n' || c == '\r')) { /* LF, CRLF, CR */
            if (c == '\r') p->cr_at = p->offset;
            else if (p->cr_at && p->cr_at + 1 == p->offset) continue; /* CRLF */
            if (csv_line_end(p)) goto fail;
            continue;
        }
        if (++p->line_len > DS_CSV_MAX_LINE) {
            csv_fail(p, "line %llu: longer than %u bytes%s",
                     (unsigned long long)p->line, DS_CSV_MAX_LINE,
                     csv_joined(p, 1));
            goto fail;
        }
        if (p->skipping) continue;
        if (c >= '0' && c <= '9' && p->fstate == F_LEAD && p->col > 1 &&
            p->col <= DS_CSV_COLUMNS) {
            /* the common field: a pixel of 1..4 digits, 0..255, and its
             * comma, all in this buffer, taken at once; the field state
             * stays as reset, as the byte-by-byte path would leave it */
            unsigned v = (unsigned)(c - '0');
            size_t j = i + 1;
            while (j < len && j - i < 4 && s[j] >= '0' && s[j] <= '9')
                v = v * 10 + (unsigned)(s[j++] - '0');
            if (j < len && s[j] == ',' && v <= 255 &&
                p->line_len + (j - i) <= DS_CSV_MAX_LINE) {
                p->pixels[(size_t)p->n * DS_PIXELS + (p->col - 2)] =
                    (uint8_t)v;
                p->col++;
                p->line_len += j - i;
                p->offset += j - i;
                i = j;
                continue;
            }
        }
        if (c == ',') {
            if (csv_field_end(p)) goto fail;
            if (p->skipping) continue;
            p->col++; /* at most DS_CSV_MAX_LINE + 1 */
            csv_field_reset(p);
            continue;
        }
        csv_field_byte(p, c);
    }
    return 0;

fail:
    if (err) *err = p->err;
    return -1;
}

int ds_csv_finish(ds_csv *p, ds_dataset *out, mn_err *err)
{
    memset(out, 0, sizeof *out);
    if (!p->failed && p->finished) csv_fail(p, "input already finished");
    if (p->failed) goto fail;
    p->finished = 1;
    if (p->line_len > 0 && csv_line_end(p)) goto fail;
    if (p->n == 0) {
        csv_fail(p, "no rows");
        goto fail;
    }
    /* Give back the unused tail; keeping the larger block is fine too. */
    uint8_t *px = realloc(p->pixels, (size_t)p->n * DS_PIXELS);
    if (px) p->pixels = px;
    uint8_t *lb = realloc(p->labels, p->n);
    if (lb) p->labels = lb;

    out->n = p->n;
    out->rows = DS_ROWS;
    out->cols = DS_COLS;
    out->pixels = p->pixels;
    out->labels = p->labels;
    p->pixels = p->labels = NULL;
    p->n = p->cap = 0;
    return 0;

fail:
    if (err) *err = p->err;
    return -1;
}

int ds_load_csv(ds_dataset *out, const char *path, mn_err *err)
{
    enum { CHUNK = 1 << 16 };
    gzFile f = NULL;
    ds_csv *p = NULL;
    char *buf = NULL;
    size_t got = 0;
    int rc = -1;

    memset(out, 0, sizeof *out);
    if (gz_open(&f, path, err)) goto done;
    p = ds_csv_new(path, 0);
    buf = malloc(CHUNK);
    if (!p || !buf) {
        mn_errf(err, "%s: out of memory", path);
        goto done;
    }
    do {
        if (gz_read_full(f, (uint8_t *)buf, CHUNK, &got, path, err)) goto done;
        if (ds_csv_feed(p, buf, got, err)) goto done;
    } while (got == CHUNK);
    int code = Z_OK;
    gzerror(f, &code);
    if (code != Z_OK) {
        gz_error(f, path, err);
        goto done;
    }
    rc = ds_csv_finish(p, out, err);

done:
    free(buf);
    ds_csv_free(p);
    if (f) gzclose(f);
    return rc;
}

/* ------------------------------------------------------------ by name */

/* Finds <dir>/mnist/<base> or, failing that, <dir>/mnist/<base>.gz and
 * writes the path found into buf. The error for a missing file says how
 * to fetch the data. */
static const char *const fashion_classes[DS_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

#define DS_MNIST_FETCH "run make data to fetch MNIST"
#define DS_FASHION_FETCH "run make data, which links Debian's " \
    "dataset-fashion-mnist from /usr/share/datasets/fashion-mnist"

const ds_builtin ds_builtins[] = {
    {"mnist", "mnist", "train", "mnist-test", DS_MNIST_FETCH, NULL},
    {"mnist-test", "mnist", "t10k", "mnist-test", DS_MNIST_FETCH, NULL},
    {"fashion-mnist", "fashion-mnist", "train", "fashion-mnist-test",
     DS_FASHION_FETCH, fashion_classes},
    {"fashion-mnist-test", "fashion-mnist", "t10k", "fashion-mnist-test",
     DS_FASHION_FETCH, fashion_classes},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const ds_builtin *ds_builtin_find(const char *name)
{
    for (int i = 0; name && ds_builtins[i].name; i++)
        if (strcmp(name, ds_builtins[i].name) == 0) return &ds_builtins[i];
    return NULL;
}

/* The path of a built-in dataset's file <data_dir>/<b->dir>/<base>, plain
 * if it exists, else with .gz. */
static int builtin_path(char *buf, size_t size, const char *dir,
                        const ds_builtin *b, const char *base, mn_err *err)
{
    int len = snprintf(buf, size, "%s/%s/%s.gz", dir, b->dir, base);
    if (len < 0 || (size_t)len >= size)
        return mn_errf(err, "data directory path too long: %.64s...", dir);
    buf[len - 3] = '\0'; /* try the plain file first */
    if (access(buf, F_OK) == 0) return 0;
    int e = errno;
    buf[len - 3] = '.';
    if (access(buf, F_OK) == 0) return 0;
    buf[len - 3] = '\0';
    return mn_errf(err, "cannot open %s: %s (%s)", buf, strerror(e),
                   b->fetch);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int ds_load_named(ds_dataset *out, const char *data_dir, const char *name,
                  mn_err *err)
{
    char img[4096], lab[4096];

    memset(out, 0, sizeof *out);
    if (!name || !*name) return mn_errf(err, "empty dataset name");
    const ds_builtin *b = ds_builtin_find(name);
    if (b) {
        char base[64];
        if (!data_dir || !*data_dir)
            return mn_errf(err, "dataset %s: no data directory given", name);
        snprintf(base, sizeof base, "%s-images-idx3-ubyte", b->prefix);
        if (builtin_path(img, sizeof img, data_dir, b, base, err)) return -1;
        snprintf(base, sizeof base, "%s-labels-idx1-ubyte", b->prefix);
        if (builtin_path(lab, sizeof lab, data_dir, b, base, err)) return -1;
        return ds_load_idx(out, img, lab, err);
    }
    if (ends_with(name, ".csv") || ends_with(name, ".csv.gz"))
        return ds_load_csv(out, name, err);

    if (ds_idx_labels_path(name, lab, sizeof lab, err)) return -1;
    return ds_load_idx(out, name, lab, err);
}

int ds_idx_labels_path(const char *images, char *buf, size_t size,
                       mn_err *err)
{
    size_t len = strlen(images);
    if (len + 4 > size) /* room for a ".gz" toggled on */
        return mn_errf(err, "path too long: %.64s...", images);
    /* the last "images" followed by "-idx3" or ".idx3" (both spellings are
     * shared: train-images-idx3-ubyte, train-images.idx3-ubyte) */
    const char *hit = NULL;
    for (const char *s = strstr(images, "images"); s;
         s = strstr(s + 1, "images"))
        if ((s[6] == '-' || s[6] == '.') && strncmp(s + 7, "idx3", 4) == 0)
            hit = s;
    if (!hit)
        return mn_errf(err, "%s: not a .csv file, and no \"images-idx3\" or "
                       "\"images.idx3\" in the name to find its labels file "
                       "(\"labels-idx1\" or \"labels.idx1\")", images);
    size_t at = (size_t)(hit - images);
    memcpy(buf, images, len + 1);
    memcpy(buf + at, "labels", 6);
    buf[at + 10] = '1'; /* idx3 -> idx1 */
    if (access(buf, F_OK) == 0) return 0;
    /* the images gzipped and the labels not, or the other way round */
    if (ends_with(buf, ".gz"))
        buf[len - 3] = '\0';
    else
        memcpy(buf + len, ".gz", 4);
    if (access(buf, F_OK) == 0) return 0;
    memcpy(buf, images, len + 1);
    memcpy(buf + at, "labels", 6);
    buf[at + 10] = '1';
    return 0; /* ds_load_idx names the missing file */
}

/* ------------------------------------------------------ split, gather */

int ds_split(const ds_dataset *d, uint32_t examples, uint32_t validation,
             uint64_t seed, uint32_t **train_idx, uint32_t *n_train,
             uint32_t **val_idx, uint32_t *n_val, mn_err *err)
{
    uint32_t *all = NULL, *tr = NULL, *va = NULL;
    rng_state rng;

    *train_idx = *val_idx = NULL;
    *n_train = *n_val = 0;
    if (examples == 0) return mn_errf(err, "examples must be at least 1");
    if (examples > d->n)
        return mn_errf(err, "examples (%u) is more than the dataset's %u rows",
                       examples, d->n);
    if (validation == 0)
        return mn_errf(err, "validation examples must be at least 1");
    if (validation >= examples)
        return mn_errf(err, "validation examples (%u) must be fewer than "
                       "examples (%u)", validation, examples);

    uint32_t nt = examples - validation;
    all = malloc((size_t)examples * sizeof *all);
    tr = malloc((size_t)nt * sizeof *tr);
    va = malloc((size_t)validation * sizeof *va);
    if (!all || !tr || !va) {
        mn_errf(err, "out of memory splitting %u examples", examples);
        goto fail;
    }
    for (uint32_t i = 0; i < examples; i++) all[i] = i;
    rng_seed(&rng, seed);
    rng_shuffle_u32(&rng, all, examples);
    memcpy(tr, all, (size_t)nt * sizeof *tr);
    memcpy(va, all + nt, (size_t)validation * sizeof *va);
    free(all);
    *train_idx = tr;
    *n_train = nt;
    *val_idx = va;
    *n_val = validation;
    return 0;

fail:
    free(va);
    free(tr);
    free(all);
    return -1;
}

/* pixel / 255.0f for every byte value, computed by the compiler: the
 * same quotient ds_gather divides out, looked up instead of divided in the
 * branchless packing loop (which does not vectorise). */
#define DS_Q1(i) ((float)(i) / 255.0f)
#define DS_Q4(i) DS_Q1(i), DS_Q1((i) + 1), DS_Q1((i) + 2), DS_Q1((i) + 3)
#define DS_Q16(i) DS_Q4(i), DS_Q4((i) + 4), DS_Q4((i) + 8), DS_Q4((i) + 12)
#define DS_Q64(i) DS_Q16(i), DS_Q16((i) + 16), DS_Q16((i) + 32), \
                  DS_Q16((i) + 48)
static const float ds_unit[256] = {DS_Q64(0), DS_Q64(64), DS_Q64(128),
                                   DS_Q64(192)};

uint32_t ds_pack(const ds_dataset *d, const uint32_t *rows, int B,
                 uint32_t *rowptr, uint32_t *idx, float *val, uint8_t *y)
{
    const size_t P = (size_t)d->rows * d->cols;
    uint32_t n = 0;
    rowptr[0] = 0;
    for (int i = 0; i < B; i++) {
        const uint8_t *src = d->pixels + (size_t)rows[i] * P; /* [P] */
        if (i + 1 < B) { /* rows are scattered: fetch the next one early */
            const uint8_t *next = d->pixels + (size_t)rows[i + 1] * P;
            for (size_t c = 0; c < P; c += 64) __builtin_prefetch(next + c);
        }
        size_t j = 0;
        for (; j + 8 <= P; j += 8) {
            uint64_t z;
            memcpy(&z, src + j, sizeof z);
            if (z == 0) continue; /* eight dark pixels at once */
            /* branchless: always write, advance only past a nonzero */
            for (size_t t = j; t < j + 8; t++) {
                idx[n] = (uint32_t)t;
                val[n] = ds_unit[src[t]];
                n += src[t] != 0;
            }
        }
        for (; j < P; j++) {
            idx[n] = (uint32_t)j;
            val[n] = ds_unit[src[j]];
            n += src[j] != 0;
        }
        rowptr[i + 1] = n;
        if (y) y[i] = d->labels[rows[i]];
    }
    return n;
}

int ds_packed_new(ds_packed *p, const ds_dataset *d, const uint32_t *rows,
                  uint32_t n, double max_density, mn_err *err)
{
    const size_t P = (size_t)d->rows * d->cols;
    memset(p, 0, sizeof *p);
    size_t nnz = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *src = d->pixels + (size_t)rows[i] * P;
        for (size_t j = 0; j < P; j++) nnz += src[j] != 0;
    }
    if (nnz > max_density * (double)n * (double)P) return 1;
    if (nnz > UINT32_MAX - 8)
        return mn_errf(err, "%zu nonzero pixels are too many to pack", nnz);
    p->n = n;
    p->cols = (uint32_t)P;
    p->rowptr = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    /* ds_pack may write one entry past a row's last nonzero: slack */
    p->idx = malloc(sizeof(uint32_t) * (nnz + 8));
    p->val = malloc(sizeof(float) * (nnz + 8));
    p->labels = malloc((size_t)n + 1);
    if (!p->rowptr || !p->idx || !p->val || !p->labels) {
        ds_packed_free(p);
        return mn_errf(err, "out of memory packing %u rows", n);
    }
    p->rowptr[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t base = p->rowptr[i], one[2];
        ds_pack(d, &rows[i], 1, one, p->idx + base, p->val + base,
                &p->labels[i]);
        p->rowptr[i + 1] = base + one[1];
    }
    return 0;
}

void ds_packed_free(ds_packed *p)
{
    free(p->labels);
    free(p->val);
    free(p->idx);
    free(p->rowptr);
    memset(p, 0, sizeof *p);
}

uint32_t ds_packed_gather(const ds_packed *p, const uint32_t *sel, int B,
                          uint32_t *rowptr, uint32_t *idx, float *val,
                          uint8_t *y)
{
    uint32_t n = 0;
    rowptr[0] = 0;
    for (int i = 0; i < B; i++) {
        uint32_t a = p->rowptr[sel[i]], len = p->rowptr[sel[i] + 1] - a;
        memcpy(idx + n, p->idx + a, sizeof(uint32_t) * len);
        memcpy(val + n, p->val + a, sizeof(float) * len);
        n += len;
        rowptr[i + 1] = n;
        if (y) y[i] = p->labels[sel[i]];
    }
    return n;
}

void ds_gather(const ds_dataset *d, const uint32_t *idx, int B, float *x,
               uint8_t *y)
{
    const size_t P = (size_t)d->rows * d->cols;
    for (int i = 0; i < B; i++) {
        const uint8_t *src = d->pixels + (size_t)idx[i] * P; /* [P] */
        float *dst = x + (size_t)i * P;                      /* [P] */
        /* the exact quotient, as the reference divides; vectorises */
        for (size_t j = 0; j < P; j++) dst[j] = (float)src[j] / 255.0f;
        if (y) y[i] = d->labels[idx[i]];
    }
}
