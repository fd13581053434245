/* err.c: formatting for mn_err. */
#include "err.h"

#include <stdio.h>

int mn_errf(mn_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}
