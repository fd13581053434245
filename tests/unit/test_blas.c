/* test_blas.c: engine/blas.c's choice of OpenBLAS kernels. The library in
 * this test process chose its own (no re-execution here), so the choice
 * can be checked against the CPU's instructions and the core it loaded;
 * the decision itself for every kind of CPU (blas_core_for); and, where
 * this CPU gets a better core, the re-execution: a child re-executes the
 * test binary, whose constructor here reports the core OpenBLAS loaded
 * and exits before Criterion starts; and a re-execution that fails. */
#include <criterion/criterion.h>

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/blas.h"

/* In a process that the_better_core_is_the_one_loaded_after_re_execution
 * re-executed (MNISTD_TEST_BLAS_CORE names a file): writes the core
 * OpenBLAS loaded (its constructor ran before this one) into that file
 * and exits 0 (1 if it cannot), before Criterion's main. */
__attribute__((constructor)) static void report_core(void)
{
    const char *path = getenv("MNISTD_TEST_BLAS_CORE");
    if (!path) return;
    FILE *f = fopen(path, "w");
    int ok = f && fputs(openblas_get_corename(), f) >= 0;
    if (f && fclose(f)) ok = 0;
    _exit(ok ? 0 : 1);
}

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

Test(blas, only_a_slow_fallback_core_is_replaced_on_every_kind_of_cpu)
{
    cr_assert_str_eq(blas_core_for(1, 1, "Prescott"), "SkylakeX");
    cr_assert_str_eq(blas_core_for(1, 0, "unknown"), "SkylakeX");
    cr_assert_str_eq(blas_core_for(0, 1, "Nehalem"), "Haswell");
    cr_assert_str_eq(blas_core_for(0, 1, "Core2"), "Haswell");
    cr_assert_null(blas_core_for(0, 0, "Prescott"), "no AVX2: stays");
    cr_assert_null(blas_core_for(1, 1, "SkylakeX"));
    cr_assert_null(blas_core_for(1, 1, "Cooperlake"));
    cr_assert_null(blas_core_for(0, 1, "Haswell"));
    cr_assert_null(blas_core_for(0, 1, "Zen"));
    cr_assert_null(blas_core_for(1, 1, NULL), "no name: the library's choice");
}

Test(blas, the_better_core_is_the_one_loaded_after_re_execution)
{
    cr_assert_eq(unsetenv("OPENBLAS_CORETYPE"), 0);
    const char *want = blas_better_core();
    if (!want) {
        cr_skip_test("OpenBLAS chose %s itself on this CPU: nothing to "
                     "re-execute", openblas_get_corename());
        return;
    }
    char path[] = "/tmp/mnistd-blas-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char *argv[] = {"unit_tests", NULL};
        if (setenv("MNISTD_TEST_BLAS_CORE", path, 1) == 0)
            blas_pick_kernels(argv);
        _exit(99); /* not re-executed */
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    char got[64] = {0};
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    unlink(path);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the child exited with %d", WEXITSTATUS(status));
    cr_assert_gt(n, 0);
    cr_assert(strcasecmp(got, want) == 0, "wanted %s, OpenBLAS loaded %s",
              want, got);
}

Test(blas, a_failed_re_execution_goes_on_and_is_not_tried_again)
{
    cr_assert_eq(unsetenv("OPENBLAS_CORETYPE"), 0);
    const char *want = blas_better_core();
    if (!want) {
        cr_skip_test("OpenBLAS chose %s itself on this CPU: nothing to "
                     "re-execute", openblas_get_corename());
        return;
    }
    /* one argument over Linux's 128 KiB a string (MAX_ARG_STRLEN):
     * execv fails with E2BIG, and this process goes on */
    size_t big = 256 * 1024;
    char *arg = malloc(big + 1);
    cr_assert_not_null(arg);
    memset(arg, 'x', big);
    arg[big] = '\0';
    char *argv[] = {"unit_tests", arg, NULL};
    cr_assert_eq(blas_pick_kernels(argv), -1);
    free(arg);
    const char *set = getenv("OPENBLAS_CORETYPE");
    cr_assert(set && strcmp(set, want) == 0, "OPENBLAS_CORETYPE %s",
              set ? set : "unset");
    cr_assert_null(blas_better_core(), "a child would try again");
    cr_assert_eq(blas_pick_kernels(argv), 0);
}
