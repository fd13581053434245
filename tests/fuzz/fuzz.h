/* fuzz.h: shared helpers of the libFuzzer targets in tests/fuzz/.
 *
 * Each target file defines `static int fuzz_<name>(const uint8_t *, size_t)`
 * (the harness: decode, then check the decoder's promises) and, unless
 * FUZZ_NO_ENTRY is defined, the libFuzzer entry point calling it. The
 * Criterion suite tests/unit/test_fuzz_regressions.c defines FUZZ_NO_ENTRY
 * and includes the target files, so that `make test` replays the seed
 * corpora and crasher regressions through the very same harnesses with gcc.
 *
 * A broken promise is reported with FUZZ_CHECK, which prints the condition
 * and aborts: libFuzzer then keeps the input as a crash artifact. */
#ifndef MN_FUZZ_H
#define MN_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__,     \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* A new exact-size copy of data[0..len), so that AddressSanitizer catches
 * a read just past the end of a piece carved out of a larger fuzz input
 * (malloc(0) under ASan gives a pointer with no readable byte; elsewhere it
 * may be NULL). Caller frees. */
static inline uint8_t *fuzz_dup(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len);
    if (!p && len) abort();
    if (len) memcpy(p, data, len);
    return p;
}

/* True if msg is a NUL-terminated, non-empty string within cap bytes. */
static inline int fuzz_msg_ok(const char *msg, size_t cap)
{
    return msg[0] != '\0' && memchr(msg, '\0', cap) != NULL;
}

#endif
