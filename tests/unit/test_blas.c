/* test_blas.c: engine/blas.c's choice of OpenBLAS kernels. The library in
 * this test process chose its own (no re-execution here), so the choice
 * can be checked against the CPU's instructions and the core it loaded. */
#include <criterion/criterion.h>

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/blas.h"

Test(blas, a_core_set_by_the_user_stands)
{
    cr_assert_eq(setenv("OPENBLAS_CORETYPE", "Haswell", 1), 0);
    cr_assert_null(blas_better_core());
    cr_assert_eq(blas_pick_kernels(NULL), 0, "nothing to do, no exec");
}

Test(blas, names_only_a_core_whose_instructions_the_cpu_has)
{
    cr_assert_eq(unsetenv("OPENBLAS_CORETYPE"), 0);
    const char *want = blas_better_core();
    const char *core = openblas_get_corename();
    cr_assert_not_null(core);
    if (!want) return; /* the library's choice stands */
    /* never a "better" core than the one loaded, and only a slow one is
     * replaced */
    cr_assert(strcasecmp(want, core) != 0, "%s replaced by itself", core);
    cr_assert(strcasecmp(core, "SkylakeX") != 0 && strcasecmp(core, "Haswell") != 0 &&
                  strcasecmp(core, "Zen") != 0 && strcasecmp(core, "Cooperlake") != 0,
              "the AVX2 core %s would be replaced by %s", core, want);
#if defined(__x86_64__) && defined(__GNUC__)
    if (strcmp(want, "SkylakeX") == 0)
        cr_assert(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"));
    else
        cr_assert(strcmp(want, "Haswell") == 0 && __builtin_cpu_supports("avx2") &&
                  __builtin_cpu_supports("fma"), "unexpected core %s", want);
#endif
}
