/* helpers.c: the unit tests' shared helpers (see helpers.h). */
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void th_tmpdir_make(char *dir, size_t size, const char *name)
{
    int n = snprintf(dir, size, "/tmp/mnistd-%s-XXXXXX", name);
    cr_assert(n > 0 && (size_t)n < size, "temporary dir name too long");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s failed", dir);
}

void th_tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) th_tmpdir_remove(p);
    }
    closedir(d);
    rmdir(dir);
}

const char *th_data_dir(void)
{
    const char *dir = getenv("MNISTD_DATA_DIR");
    cr_assert(dir && *dir,
              "MNISTD_DATA_DIR is not set: run `make data`, then `make unit` "
              "(which sets it) or MNISTD_DATA_DIR=$PWD/data "
              "build/unit_tests");
    return dir;
}

void th_load(ds_dataset *d, const char *name)
{
    const char *dir = th_data_dir();
    mn_err err = {{0}};
    memset(d, 0, sizeof *d);
    cr_assert_eq(ds_load_named(d, dir, name, &err), 0,
                 "loading %s from %s: %s (run `make data`)", name, dir,
                 err.msg);
}
