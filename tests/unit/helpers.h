/* helpers.h: what several unit test files share (th_: test helpers): a
 * temporary directory per test, and the MNIST files of the data dir. Not a
 * test file: it defines no Test(); the Makefile's UNIT_SRC glob links it
 * into build/unit_tests with the tests. Each function fails the running
 * Criterion test (cr_assert) instead of returning an error. */
#ifndef MN_TEST_HELPERS_H
#define MN_TEST_HELPERS_H

#include <stddef.h>

#include "engine/ds.h"

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

#endif
