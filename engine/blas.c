/* blas.c: OpenBLAS's kernels chosen by the CPU's instructions (blas.h). */
#include "blas.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* OpenBLAS cores whose kernels use neither AVX2 nor AVX-512: those its
 * fallbacks for an unknown CPU end in (0.3.21's driver/others/dynamic.c). */
static const char *const slow_cores[] = {
    "Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
    "Katmai", "Coppermine", "Northwood", "Banias", "Unknown", NULL,
};

const char *blas_core_for(int avx512, int avx2_fma, const char *core)
{
    const char *want = avx512 ? "SkylakeX" : avx2_fma ? "Haswell" : NULL;
    if (!want || !core) return NULL;
    for (int i = 0; slow_cores[i]; i++)
        if (strcasecmp(core, slow_cores[i]) == 0) return want;
    return NULL;
}

const char *blas_better_core(void)
{
    if (getenv("OPENBLAS_CORETYPE")) return NULL;
    int avx512 = 0, avx2_fma = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
    avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return blas_core_for(avx512, avx2_fma, openblas_get_corename());
}

int blas_pick_kernels(char **argv)
{
    const char *core = blas_better_core();
    if (!core) return 0;
    if (setenv("OPENBLAS_CORETYPE", core, 1) != 0) return -1;
    execv("/proc/self/exe", argv);
    /* the exec failed: go on as we are, and do not try again in a child */
    return -1;
}
