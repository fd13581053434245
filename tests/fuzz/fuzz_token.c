/* fuzz_token.c: the bearer token of a request (Authorization: Bearer
 * <token>), as auth.c reads it: auth_token_name takes the user's name off
 * its front, auth_token_hash hashes the whole of it (token.h). The input
 * is the header's value up to its first NUL byte (a header holds none).
 *
 * Promises checked: a name taken is a valid user name and the token's
 * front up to its first '.'; a token without one is refused; the hash is
 * a function of the text; and a token made for a valid name (the name, a
 * '.', 43 URL-safe base64 characters) gives that name back and differs
 * from the next one made. */
#include <sodium.h>
#include <string.h>

#include "server/http/token.h"
#include "server/jobs/spec.h"
#include "tests/fuzz/fuzz.h"

static int fuzz_token(const uint8_t *data, size_t len)
{
    FUZZ_CHECK(sodium_init() >= 0);
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, data, len);
    s[len] = 0;                     /* the text ends at its first NUL */
    char name[64];
    const char *dot = strchr(s, '.');
    if (auth_token_name(s, name) == 0) {
        FUZZ_CHECK(dot && spec_valid_name(name));
        FUZZ_CHECK((size_t)(dot - s) == strlen(name));
        FUZZ_CHECK(strncmp(s, name, strlen(name)) == 0);
    } else if (dot && dot > s && dot - s < 64) {
        char front[64];
        memcpy(front, s, (size_t)(dot - s));
        front[dot - s] = 0;
        FUZZ_CHECK(!spec_valid_name(front));
    }
    uint8_t h1[AUTH_TOKEN_HASH_BYTES], h2[AUTH_TOKEN_HASH_BYTES];
    auth_token_hash(s, h1);
    auth_token_hash(s, h2);
    FUZZ_CHECK(memcmp(h1, h2, sizeof h1) == 0);
    /* the input's first up to 63 bytes as a name: a made token's round trip */
    size_t n = strnlen(s, 63);
    memcpy(name, s, n);
    name[n] = 0;
    if (spec_valid_name(name)) {
        char t1[AUTH_TOKEN_MAX], t2[AUTH_TOKEN_MAX], back[64];
        auth_token_new(name, t1);
        auth_token_new(name, t2);
        FUZZ_CHECK(strlen(t1) == n + 1 + 43 && t1[n] == '.');
        for (const char *p = t1 + n + 1; *p; p++)
            FUZZ_CHECK((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
        FUZZ_CHECK(auth_token_name(t1, back) == 0 && strcmp(back, name) == 0);
        FUZZ_CHECK(strcmp(t1, t2) != 0);
    }
    free(s);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_token(data, size);
}
#endif
