/* test_fuzz_regressions.c: replays the fuzz targets' inputs through the
 * very same harnesses (tests/fuzz/fuzz_*.c, included here with
 * FUZZ_NO_ENTRY) built with the regular compiler, so that `make test` (and
 * `make san`) cover them without clang: every crasher kept under
 * tests/fuzz/regressions/<target>/ (fixed since) and every seed under
 * tests/fuzz/corpus/<target>/. A harness aborts on a broken promise, which
 * fails the test. Paths are relative to the repository root, where
 * `make unit` runs the tests. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FUZZ_NO_ENTRY
#include "tests/fuzz/fuzz_ckpt.c"
#include "tests/fuzz/fuzz_csv.c"
#include "tests/fuzz/fuzz_idx.c"
#include "tests/fuzz/fuzz_pgsql.c"
#include "tests/fuzz/fuzz_predict.c"
#include "tests/fuzz/fuzz_signal.c"
#include "tests/fuzz/fuzz_spec.c"
#include "tests/fuzz/fuzz_sweep.c"
#include "tests/fuzz/fuzz_token.c"
#include "tests/fuzz/fuzz_v2.c"
#include "tests/fuzz/fuzz_wsnap.c"

typedef int (*fuzz_harness)(const uint8_t *data, size_t size);

/* Reads a whole file into a new exact-size buffer (caller frees). */
static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    struct stat st;
    cr_assert_eq(fstat(fileno(f), &st), 0, "cannot stat %s", path);
    *len = (size_t)st.st_size;
    uint8_t *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, *len, f), *len, "cannot read %s", path);
    fclose(f);
    return buf;
}

/* Runs h on every file of dir (dotfiles skipped); returns the count.
 * A missing dir counts 0 files. */
static size_t replay_dir(const char *dir, fuzz_harness h)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t count = 0;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        size_t len = 0;
        uint8_t *buf = read_all(path, &len);
        cr_log_info("fuzzreg: %s", path);
        h(buf, len);
        free(buf);
        count++;
    }
    closedir(d);
    return count;
}

/* Replays a target's seeds (which must exist) and regressions. */
static void replay(const char *target, fuzz_harness h)
{
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", target);
    size_t seeds = replay_dir(dir, h);
    cr_assert_gt(seeds, 0, "no seed inputs in %s (run from the repository "
                 "root)", dir);
    snprintf(dir, sizeof dir, "tests/fuzz/regressions/%s", target);
    replay_dir(dir, h);
}

Test(fuzzreg, spec) { replay("spec", fuzz_spec); }
Test(fuzzreg, sweep) { replay("sweep", fuzz_sweep); }
Test(fuzzreg, predict) { replay("predict", fuzz_predict); }
Test(fuzzreg, v2) { replay("v2", fuzz_v2); }
Test(fuzzreg, csv) { replay("csv", fuzz_csv); }
Test(fuzzreg, idx) { replay("idx", fuzz_idx); }
Test(fuzzreg, ckpt) { replay("ckpt", fuzz_ckpt); }
Test(fuzzreg, pgsql) { replay("pgsql", fuzz_pgsql); }
Test(fuzzreg, signal) { replay("signal", fuzz_signal); }
Test(fuzzreg, wsnap) { replay("wsnap", fuzz_wsnap); }
Test(fuzzreg, token) { replay("token", fuzz_token); }
