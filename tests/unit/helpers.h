/* helpers.h: what several unit test files share (th_: test helpers): a
 * temporary directory per test, and the MNIST files of the data dir. Not a
 * test file: it defines no Test(); the Makefile's UNIT_SRC glob links it
 * into build/unit_tests with the tests. Each function fails the running
 * Criterion test (cr_assert) instead of returning an error. */
#ifndef MN_TEST_HELPERS_H
#define MN_TEST_HELPERS_H

#include <stddef.h>

#include "engine/ds.h"
#include "engine/rng.h"

/* Creates a fresh directory /tmp/mnistd-<name>-XXXXXX and writes its path
 * into dir (size bytes, NUL-terminated). Fails the test if it cannot. */
void th_tmpdir_make(char *dir, size_t size, const char *name);

/* Removes dir with everything in it (subdirectories included). A dir that
 * does not exist is not an error. */
void th_tmpdir_remove(const char *dir);

/* The data dir holding mnist/ (the environment's MNISTD_DATA_DIR, which
 * `make unit` sets). Fails the test if it is unset: tests that need the
 * MNIST files are never skipped. */
const char *th_data_dir(void);

/* Loads the built-in dataset `name` ("mnist" or "mnist-test") from
 * th_data_dir() into *d (caller frees with ds_free). Fails the test if it
 * cannot. */
void th_load(ds_dataset *d, const char *name);

/* ---- gradient checks against central finite differences ---- */

#define TH_FD_EPS 1e-3          /* the step of the central difference */
#define TH_FD_REL 1e-2          /* agreement: rel * max(|a|, |b|) + abs */
#define TH_FD_ABS 1e-4

/* a[0..n) uniform in [lo, hi) from r */
void th_fill_uniform(float *a, size_t n, float lo, float hi, rng_state *r);

/* 1 when |got - want| <= rel * max(|got|, |want|) + abs_tol */
int th_near(double got, double want, double rel, double abs_tol);

/* A loss as a function of whatever ctx points at (computed in double by
 * the test, independently of the engine). */
typedef double (*th_loss_fn)(const void *ctx);

/* Central difference of f with respect to *x (restored afterwards). The
 * divisor is the actual float step, so rounding of x +- eps does not bias
 * the estimate. */
double th_central_diff(float *x, th_loss_fn f, const void *ctx, double eps);

/* Compares analytic gradients g[0..n) of parameters x[0..n) with central
 * differences of f (step eps, agreement TH_FD_REL/TH_FD_ABS); fails the
 * test, naming `what` and the index, where they disagree or when g is all
 * zero. */
void th_check_grad(const char *what, float *x, const float *g, size_t n,
                   th_loss_fn f, const void *ctx, double eps);

#endif
