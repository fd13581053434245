/* token.c: users' bearer tokens (see token.h). */
#include "server/http/token.h"

#include <sodium.h>
#include <string.h>

#include "server/jobs/spec.h"

void auth_token_new(const char *name, char out[AUTH_TOKEN_MAX])
{
    unsigned char secret[32];
    randombytes_buf(secret, sizeof secret);
    size_t n = strlen(name);
    memcpy(out, name, n);
    out[n] = '.';
    sodium_bin2base64(out + n + 1, AUTH_TOKEN_MAX - n - 1, secret,
                      sizeof secret, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(secret, sizeof secret);
}

void auth_token_hash(const char *token, uint8_t *hash)
{
    crypto_generichash(hash, AUTH_TOKEN_HASH_BYTES,
                       (const unsigned char *)token, strlen(token), NULL, 0);
}

int auth_token_name(const char *token, char name[64])
{
    const char *dot = strchr(token, '.');
    if (!dot || dot == token || (size_t)(dot - token) > 63) return -1;
    memcpy(name, token, (size_t)(dot - token));
    name[dot - token] = 0;
    return spec_valid_name(name) ? 0 : -1;
}
