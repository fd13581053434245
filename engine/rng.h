/* rng.h: a small, explicit-state pseudo random generator (xoshiro256**).
 *
 * No global state: every run owns its rng_state, which is plain data and
 * can be copied into a checkpoint and restored bit for bit. */
#ifndef MN_RNG_H
#define MN_RNG_H

#include <stdint.h>

typedef struct rng_state {
    uint64_t s[4];
} rng_state;

/* Seeds the state from one 64-bit value (splitmix64 expansion). */
void rng_seed(rng_state *r, uint64_t seed);

/* Next 64 random bits. */
uint64_t rng_next(rng_state *r);

/* Uniform float in [0, 1). */
float rng_uniform(rng_state *r);

/* Uniform integer in [0, n); n > 0. */
uint32_t rng_below(rng_state *r, uint32_t n);

/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle_u32(rng_state *r, uint32_t *idx, uint32_t n);

/* Mixes two 64-bit values into one well-spread seed (for derived streams). */
uint64_t rng_mix(uint64_t a, uint64_t b);

#endif
