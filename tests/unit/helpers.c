/* helpers.c: the unit tests' shared helpers (see helpers.h). */
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>

#include <math.h>

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

void th_fill_uniform(float *a, size_t n, float lo, float hi, rng_state *r)
{
    for (size_t i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng_uniform(r);
}

int th_near(double got, double want, double rel, double abs_tol)
{
    double scale = fabs(got) > fabs(want) ? fabs(got) : fabs(want);
    return fabs(got - want) <= rel * scale + abs_tol;
}

double th_central_diff(float *x, th_loss_fn f, const void *ctx, double eps)
{
    float x0 = *x;
    float xp = (float)(x0 + eps), xm = (float)(x0 - eps);
    *x = xp;
    double lp = f(ctx);
    *x = xm;
    double lm = f(ctx);
    *x = x0;
    return (lp - lm) / ((double)xp - (double)xm);
}

void th_check_grad(const char *what, float *x, const float *g, size_t n,
                   th_loss_fn f, const void *ctx, double eps)
{
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        double ana = g[i];
        double num = th_central_diff(&x[i], f, ctx, eps);
        cr_assert(th_near(ana, num, TH_FD_REL, TH_FD_ABS),
                  "%s[%zu]: analytic %.8g, finite difference %.8g", what, i,
                  ana, num);
        if (fabs(ana) > 1e-6) nonzero++;
    }
    cr_assert(nonzero > 0, "%s: the analytic gradient is all zero", what);
}
