/* dsreg.h: the registry of datasets the server trains and evaluates on.
 *
 * Built-in datasets ("mnist", "mnist-test") are read from the data dir,
 * uploaded ones from the store, each once, on first use; then they stay in
 * memory, read-only, shared by every run and request (pixels as uint8).
 *
 * DESIGN (concurrency): a mutex guards the table; loading happens outside
 * it (a second thread asking for the same name meanwhile waits on a
 * condition variable), so one slow load does not block other names.
 *
 * Ownership: the registry owns every dataset; dsreg_get returns a borrowed
 * pointer valid until dsreg_free. Datasets are never unloaded while the
 * server runs. */
#ifndef MN_DSREG_H
#define MN_DSREG_H

#include "engine/ds.h"
#include "engine/err.h"

struct store;
typedef struct dsreg dsreg;

dsreg *dsreg_new(const char *data_dir);
void dsreg_free(dsreg *r);

/* Is name one of the built-in datasets? */
int dsreg_is_builtin(const char *name);

/* The dataset called name, loading it on first use (built-ins from the
 * data dir, others from db). NULL with a reason when it does not exist
 * (*not_found set) or cannot be loaded. */
const ds_dataset *dsreg_get(dsreg *r, struct store *db, const char *name,
                            int *not_found, mn_err *err);

/* Adds a dataset just uploaded (ownership of *d's arrays passes to the
 * registry; *d is zeroed). */
int dsreg_add(dsreg *r, const char *name, ds_dataset *d, mn_err *err);

#endif
