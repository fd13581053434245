/* store.h: the persistent store of mnistd: runs, per-period metrics,
 * confusion matrices, checkpoints and uploaded datasets.
 *
 * The routes and the worker pool see only this interface; store.c keeps it
 * in SQLite (WAL mode, busy_timeout, every write in BEGIN IMMEDIATE,
 * prepared statements only, schema from migrations/ applied in order at
 * open). Another backend could implement the same functions.
 *
 * DESIGN (concurrency): a `store` is one connection and must be used by one
 * thread at a time; every thread (each HTTP request thread, each worker)
 * opens its own. Writers serialise through SQLite's lock; busy_timeout
 * makes them wait instead of failing.
 *
 * Ownership: store_run and the arrays returned are owned by the caller and
 * released with the matching *_free function. Returned blobs are malloc'd
 * (caller frees). Input strings and buffers are borrowed.
 *
 * Return convention: 0 success, STORE_NOT_FOUND (1) when the id/name does
 * not exist, STORE_CONFLICT (2) when the state forbids the operation, -1 on
 * a database error (reason in err). */
#ifndef MN_STORE_H
#define MN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/ds.h"
#include "engine/err.h"
#include "engine/eval.h"
#include "engine/train.h"
#include "server/jobs/run.h"

#define STORE_NOT_FOUND 1
#define STORE_CONFLICT 2

typedef struct store store;

typedef struct store_run {
    int64_t id;
    run_status status;      /* stored as its name (run.h) */
    char model[8];          /* linear, dnn */
    char dataset[64];
    char *params_json;      /* the resolved params object, JSON text, owned */
    uint32_t step, steps;   /* progress as stored (at period ends) */
    uint32_t period, periods;
    double validation_accuracy;   /* NaN until the first period */
    double validation_log_loss;   /* NaN until the first period */
    double test_accuracy;         /* NaN until evaluated */
    int64_t created_at, started_at, finished_at; /* ms since epoch, 0 = null */
    char *error;            /* NULL, or the failure reason, owned */
} store_run;

void store_run_free(store_run *r);          /* frees owned fields only */
void store_runs_free(store_run *runs, size_t n); /* frees fields and array */

/* Opens (creating if needed) the database at path, sets WAL, busy_timeout
 * and foreign keys, and applies pending migrations (recorded in a
 * schema_migrations table, so an old database upgrades in place). */
int store_open(store **out, const char *path, mn_err *err);
void store_close(store *s);

/* Copies what it can of the write-ahead log into the database without
 * waiting for or blocking anyone (a passive checkpoint); when the log
 * still holds more than 16 MiB, checkpoints it again waiting up to 200 ms
 * for the writers of the moment (a restart: the next writer starts the log
 * over, so that busy writers cannot grow it without end). A server calls
 * it a few times a second from a thread that does not train, so that
 * writers never pay for checkpoints. */
int store_wal_checkpoint(store *s, mn_err *err);

/* Schema version after migrations (the highest applied number). */
int store_schema_version(store *s);

/* ---- runs ---- */

/* Inserts a queued run; *id_out receives its id. */
int store_run_create(store *s, const char *model, const char *dataset,
                     const char *params_json, uint32_t steps,
                     uint32_t periods, int64_t *id_out, mn_err *err);

int store_run_get(store *s, int64_t id, store_run *out, mn_err *err);

/* The periods of a list of n runs, read together: runs[i]'s periods are
 * ps[at[i]] .. ps[at[i + 1] - 1], in period order (at has n + 1 entries).
 * Both arrays are owned (store_run_periods_free). */
typedef struct store_run_periods {
    train_period *ps;
    size_t *at;
} store_run_periods;

void store_run_periods_free(store_run_periods *p); /* frees; NULL is a no-op */

/* Runs newest first; status/model: a status's or model kind's name
 * (run.h), NULL = any; a negative limit means no limit. *out is a new
 * array. periods NULL, or it receives the listed runs' periods (one
 * statement for all of them, one snapshot with the runs). */
int store_run_list(store *s, const char *status, const char *model,
                   int limit, int offset, store_run **out, size_t *n,
                   store_run_periods *periods, mn_err *err);

/* Number of runs with the given status name (run.h; NULL = all runs). */
int store_run_count(store *s, const char *status, int64_t *n, mn_err *err);

/* Takes the oldest queued run and marks it running (started_at = now if it
 * was never started). Returns STORE_NOT_FOUND when none is queued. */
int store_run_claim(store *s, store_run *out, mn_err *err);

/* Records a finished period in one transaction: the period's metrics row,
 * the run's step/period/validation figures, the validation confusion
 * counts, and the checkpoint as the run's 'latest' (and as 'best' when its
 * validation log loss is the lowest so far). */
int store_period_add(store *s, int64_t id, const train_period *p,
                     const eval_result *validation, const uint8_t *ckpt,
                     size_t ckpt_len, mn_err *err);

/* Saves a checkpoint as 'latest' without a period (graceful stop). */
int store_checkpoint_put(store *s, int64_t id, uint32_t step,
                         const uint8_t *ckpt, size_t len, mn_err *err);

/* What an ended run keeps (docs/STORAGE.md): its 'best' copy goes (so
 * store_checkpoint_get of "best" answers STORE_NOT_FOUND for it) and,
 * when latest is non-NULL, latest[0..len) (borrowed) replaces the data of
 * its 'latest' checkpoint, step unchanged (a succeeded run's parameters
 * without the optimizer state). STORE_NOT_FOUND for an unknown run,
 * STORE_CONFLICT while it has not ended. */
int store_checkpoint_retain(store *s, int64_t id, const uint8_t *latest,
                            size_t len, mn_err *err);

/* Reads the run's checkpoint of `kind` ("latest" or "best").
 * STORE_NOT_FOUND when the run has none. *buf is malloc'd. */
int store_checkpoint_get(store *s, int64_t id, const char *kind,
                         uint8_t **buf, size_t *len, uint32_t *step,
                         mn_err *err);

/* All finished periods of a run, in order; *out is a new array. */
int store_periods_get(store *s, int64_t id, train_period **out, size_t *n,
                      mn_err *err);

/* Ends a run: status an ended one (succeeded, failed or cancelled; -1
 * for another), finished_at = now, error (may be NULL). STORE_CONFLICT if
 * it already ended. */
int store_run_finish(store *s, int64_t id, run_status status,
                     const char *error, mn_err *err);

/* Puts a running run back in the queue (graceful stop; its checkpoint
 * stays so that it resumes). */
int store_run_requeue(store *s, int64_t id, mn_err *err);

/* At start-up: every run left 'running' by a dead process goes back to
 * 'queued' (it resumes from its newest checkpoint, or from step 0 when it
 * has none). *n_out = how many. */
int store_recover(store *s, int *n_out, mn_err *err);

/* Cancels a queued run at once (status cancelled). STORE_CONFLICT if it is
 * running (the caller stops the worker) or already ended. */
int store_run_cancel_queued(store *s, int64_t id, mn_err *err);

/* Deletes an ended run with its periods, confusions and checkpoints.
 * STORE_CONFLICT while queued or running. */
int store_run_delete(store *s, int64_t id, mn_err *err);

/* Confusion counts of a run for set "validation" or "test".
 * STORE_NOT_FOUND if not recorded. */
int store_confusion_get(store *s, int64_t id, const char *set,
                        eval_result *out, mn_err *err);

/* Records a test-set evaluation: test_accuracy on the run and the 'test'
 * confusion (with its accuracy, log loss and example count). */
int store_test_put(store *s, int64_t id, const eval_result *e, mn_err *err);

/* The newest succeeded run's id; STORE_NOT_FOUND if none. */
int store_run_newest_succeeded(store *s, int64_t *id, mn_err *err);

/* ---- datasets (uploaded; the built-in ones live in the data dir) ---- */

typedef struct store_dataset_info {
    char name[64];
    uint32_t examples;
    uint32_t rows, cols;
    int64_t created_at;
} store_dataset_info;

/* Stores an uploaded dataset (pixels and labels as BLOBs).
 * STORE_CONFLICT if the name exists. */
int store_dataset_put(store *s, const char *name, const ds_dataset *d,
                      mn_err *err);

/* Loads an uploaded dataset into *out (new arrays). */
int store_dataset_get(store *s, const char *name, ds_dataset *out,
                      mn_err *err);

int store_dataset_info_get(store *s, const char *name,
                           store_dataset_info *out, mn_err *err);

/* All uploaded datasets by name; *out is a new array (free()). */
int store_dataset_list(store *s, store_dataset_info **out, size_t *n,
                       mn_err *err);

#endif
