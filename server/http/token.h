/* token.h: users' bearer tokens (issue 16).
 *
 * A user's token is "<name>.<secret>": the user's name (the dataset naming
 * rule, so it holds no '.'), then 32 random bytes from libsodium's
 * randombytes_buf (256 bits from the kernel's CSPRNG) in URL-safe base64
 * without padding (RFC 4648 section 5: 43 characters). The store keeps
 * only crypto_generichash(token): BLAKE2b with 32 bytes of output, unkeyed
 * (a 256-bit random secret needs neither a salt nor a slow hash: those
 * guard low-entropy passwords against guessing). auth.h compares hashes
 * with sodium_memcmp, in constant time.
 *
 * Stateless; sodium_init() must have run once (main.c) before a token is
 * made or hashed. */
#ifndef MN_TOKEN_H
#define MN_TOKEN_H

#include <stdint.h>

/* Bytes of a token: name (<= 63) + '.' + 43 + NUL, rounded up. */
#define AUTH_TOKEN_MAX 108

/* Bytes of a token's hash (STORE_TOKEN_HASH_BYTES, store.h). */
#define AUTH_TOKEN_HASH_BYTES 32

/* Makes a new token for user `name` (valid per spec_valid_name) into
 * out[AUTH_TOKEN_MAX]. */
void auth_token_new(const char *name, char out[AUTH_TOKEN_MAX]);

/* BLAKE2b-256 of the token's text (NUL-terminated, borrowed) into
 * hash[AUTH_TOKEN_HASH_BYTES]. */
void auth_token_hash(const char *token, uint8_t *hash);

/* The user name a token names (its part before the first '.') into
 * name[64]. 0, or -1 when it has none that follows the naming rule (the
 * token is then not valid, whatever follows). */
int auth_token_name(const char *token, char name[64]);

#endif
