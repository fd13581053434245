/* dsreg.h: the registry of datasets the server trains and evaluates on.
 *
 * Built-in datasets ("mnist", "mnist-test") are read from the data dir,
 * uploaded ones from the store, each once, on first use; then they stay in
 * memory, read-only, shared by every run and request (pixels as uint8).
 * The registry is a cache of the store: an uploaded dataset enters it only
 * by being read back from the store, and dsreg_drop, called after the
 * store has deleted it, takes it out. On a store shared by several nodes
 * (store_is_shared) another node may delete or replace an upload:
 * dsreg_get then reads the upload's row (name and created_at, not the
 * pixels) before it answers from memory, so a dataset deleted anywhere is
 * not found here at once, and one uploaded again is loaded again (the
 * dataset_deleted signal, server/jobs/signals.h, frees the memory sooner).
 *
 * DESIGN (concurrency): a mutex guards the table; loading happens outside
 * it (a second thread asking for the same name meanwhile waits on a
 * condition variable), so one slow load does not block other names. Each
 * entry counts its pins. dsreg_drop unlinks the entry at once (a later
 * dsreg_get reloads from the store, so it sees the store's state) and the
 * entry's pixels are freed when its last pin goes. A load in progress
 * when the name is dropped still completes for the thread that started
 * it, but never enters the table: the table never holds data older than
 * the last drop of its name.
 *
 * Ownership: the registry owns every dataset. dsreg_get returns a pinned
 * pointer, valid until the matching dsreg_put; every pin must be put back
 * before dsreg_free. Built-in datasets are never dropped. */
#ifndef MN_DSREG_H
#define MN_DSREG_H

#include "engine/ds.h"
#include "engine/err.h"

struct store;
typedef struct dsreg dsreg;

dsreg *dsreg_new(const char *data_dir);

/* Frees the registry and every dataset in it; no pin may be held. */
void dsreg_free(dsreg *r);

/* Is name one of the built-in datasets? */
int dsreg_is_builtin(const char *name);

/* The dataset called name, loading it on first use (built-ins from the
 * data dir, others from db), pinned: the caller releases it with
 * dsreg_put. NULL with a reason when it does not exist (*not_found set)
 * or cannot be loaded. */
const ds_dataset *dsreg_get(dsreg *r, struct store *db, const char *name,
                            int *not_found, mn_err *err);

/* Releases a pin taken by dsreg_get; the last pin of a dropped dataset
 * frees it. NULL is a no-op. */
void dsreg_put(dsreg *r, const ds_dataset *d);

/* Takes the uploaded dataset called name out of the registry (called once
 * the store has deleted it): later dsreg_get calls read the store again,
 * and its memory goes back when the last pin is put. A name that is not
 * in the registry, or a built-in one, is a no-op. */
void dsreg_drop(dsreg *r, const char *name);

#endif
