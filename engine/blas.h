/* blas.h: the BLAS library's set-up for a process (OpenBLAS).
 *
 * OpenBLAS built for several CPUs (DYNAMIC_ARCH, as Debian ships it)
 * chooses its kernels once, when the library loads, by the CPU's model
 * number. A model that its version does not know falls back to an old
 * core's kernels: Debian 12's 0.3.21 runs Intel family 6 model 207 (an
 * AVX-512 Xeon) on "Prescott" kernels (SSE3), which did the cnn's sgemm
 * calls 3-5x slower than its "SkylakeX" kernels on the same machine
 * (bench/NOTES.md). The documented override is the environment variable
 * OPENBLAS_CORETYPE, read only at that load, hence the re-execution
 * below. */
#ifndef MN_BLAS_H
#define MN_BLAS_H

/* The kernels OpenBLAS should use on this CPU ("SkylakeX" with AVX-512
 * F/BW/DQ/VL, "Haswell" with AVX2 and FMA), or NULL when the library's own
 * choice stands: it chose a core with those instructions, the CPU has
 * neither set, or OPENBLAS_CORETYPE is already set (the user's choice, or
 * ours after blas_pick_kernels). */
const char *blas_better_core(void);

/* blas_better_core's choice for a CPU with AVX-512 F/BW/DQ/VL (avx512
 * nonzero) or AVX2 and FMA (avx2_fma nonzero) on which OpenBLAS loaded
 * the kernels of `core` (openblas_get_corename(); NULL: unknown):
 * "SkylakeX", "Haswell", or NULL when core is not one of the slow
 * fallbacks or the CPU has neither set. Pure: the tests give it every
 * CPU, not only the one they run on. */
const char *blas_core_for(int avx512, int avx2_fma, const char *core);

/* When blas_better_core() names a core: sets OPENBLAS_CORETYPE to it and
 * re-executes the running program (/proc/self/exe) with the same argv,
 * so that OpenBLAS loads again and reads it; the process keeps its id.
 * Call it first in main, before any thread starts or any file is opened
 * that the program would not reopen. Returns only when nothing was to be
 * done (0) or the exec failed (-1; the program goes on with the kernels
 * it has). argv: main's, NULL-terminated. */
int blas_pick_kernels(char **argv);

#endif
