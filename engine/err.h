/* err.h: the caller-owned error record shared by the engine and the server.
 *
 * Functions that can fail take a `mn_err *` (which may be NULL) and return
 * -1 (or NULL) after writing a one-line reason into it; they never exit(). */
#ifndef MN_ERR_H
#define MN_ERR_H

#include <stdarg.h>

typedef struct mn_err {
    char msg[512]; /* NUL-terminated reason, empty when no error */
} mn_err;

/* Writes a printf-style reason into err (if non-NULL). Returns -1 so that
 * callers can `return mn_errf(err, ...)`. */
int mn_errf(mn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
