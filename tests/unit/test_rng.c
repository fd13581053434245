/* test_rng.c: rng_below (engine/rng.c) against Lemire's nearly
 * divisionless method written out here from the paper (D. Lemire, "Fast
 * Random Integer Generation in an Interval", ACM TOMACS 29(1), 2019,
 * algorithm 5), on bounds where its rejection step runs often: the same
 * draws from the same state, every one below the bound, and rejections
 * seen (more 64-bit words used than draws made). */
#include <criterion/criterion.h>

#include <stdint.h>

#include "engine/rng.h"

/* The paper's algorithm over the top 32 bits of each rng_next word. */
static uint32_t reference_below(rng_state *r, uint32_t n, int *rejected)
{
    uint64_t m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
    uint32_t l = (uint32_t)m;
    if (l < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (l < t) {
            ++*rejected;
            m = (uint64_t)(uint32_t)(rng_next(r) >> 32) * n;
            l = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

Test(rng, below_matches_lemire_and_rejects_where_it_must)
{
    static const uint32_t bounds[] = {1, 7, 10, 60000, 3u << 30, 0x80000001u,
                                      UINT32_MAX};
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        uint32_t n = bounds[b];
        rng_state r, ref;
        rng_seed(&r, 42 + b);
        ref = r;
        int rejected = 0;
        for (int i = 0; i < 20000; i++) {
            uint32_t got = rng_below(&r, n);
            cr_assert_lt(got, n);
            cr_assert_eq(got, reference_below(&ref, n, &rejected),
                         "draw %d below %u", i, n);
        }
        /* the same words consumed: the states agree */
        cr_assert_eq(rng_next(&r), rng_next(&ref));
        /* for n = 3 * 2^30 a quarter of the words are rejected, for
         * 2^31 + 1 almost half */
        if (n == (3u << 30) || n == 0x80000001u)
            cr_assert_gt(rejected, 1000, "%d rejections below %u", rejected, n);
    }
}
