/* store.h: the persistent store of mnistd: runs, per-period metrics,
 * confusion matrices, checkpoints, uploaded datasets, named models and
 * sweeps (hyperparameter searches, kept by sweeps.c).
 *
 * The routes and the worker pool see only this interface and never learn
 * which database is behind it: SQLite (a file path: WAL mode, busy_timeout,
 * every write in BEGIN IMMEDIATE) or PostgreSQL (a postgresql:// URI: row
 * locks, FOR UPDATE SKIP LOCKED claims). The logic is written once over a
 * driver per backend (store_internal.h, docs/STORAGE.md); prepared
 * statements only, schema from migrations/<backend>/ applied at open.
 *
 * DESIGN (concurrency): a `store` is one connection and must be used by one
 * thread at a time; every thread (each HTTP request thread, each worker)
 * opens its own. Writers wait for each other (SQLite's lock, PostgreSQL's
 * row locks) up to 10 s instead of failing.
 *
 * Ownership: store_run and the arrays returned are owned by the caller and
 * released with the matching *_free function. Returned blobs are malloc'd
 * (caller frees). Input strings and buffers are borrowed.
 *
 * Return convention: 0 success, STORE_NOT_FOUND (1) when the id/name does
 * not exist, STORE_CONFLICT (2) when the state forbids the operation, -1 on
 * a database error (reason in err), STORE_UNAVAILABLE (-2) on a database
 * error that is transient: the database cannot be used for now (a write
 * lock held past the busy timeout, a full disk, an I/O error, a file that
 * cannot be opened, a PostgreSQL server that is down or restarting: the
 * connection is re-opened on the next call) and the same call may succeed
 * later. Both are < 0. STORE_LIMIT (3) when a per-user limit passed to
 * the call (store_limit) refuses it.
 * Bad arguments, constraint violations, corrupt rows and misuse are -1:
 * trying again cannot help. */
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
#define STORE_UNAVAILABLE (-2)
#define STORE_LIMIT 3     /* a per-user limit (store_limit) refused */

#define STORE_NODE_NAME_MAX 127   /* node name bytes (nodes.c) */

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
    char *waiting;          /* NULL, or why a queued run waits, owned */
    uint32_t waits;         /* how many times it was put back to wait */
    int64_t sweep;          /* the sweep it is a trial of, 0 = none */
    uint32_t trial;         /* its trial number in that sweep (from 0) */
    char node[STORE_NODE_NAME_MAX + 1]; /* the node that trains or trained
                               it; "" while queued (and for a run ended
                               before migration 0007) */
    uint32_t attempts;      /* claims: how many times a node started
                               training it */
    char owner[64];         /* the user who created it ("" = none: made
                               without a user; a trial: its sweep's) */
} store_run;

void store_run_free(store_run *r);          /* frees owned fields only */
void store_runs_free(store_run *runs, size_t n); /* frees fields and array */

/* Opens the database named by target: a PostgreSQL URI
 * (postgresql://user:pass@host:5432/db, postgresql:///db?host=/socket/dir;
 * see store_target_is_postgresql) or else an SQLite file path (created if
 * needed; WAL, busy_timeout, foreign keys), and applies pending migrations
 * (recorded in a schema_migrations table, so an old database upgrades in
 * place). A bad URI, an unreachable server (connect timeout 5 s unless the
 * URI sets connect_timeout), a wrong password or a missing database fail
 * with one line naming the problem (never the password). */
int store_open(store **out, const char *target, mn_err *err);

/* 1 when target is a postgresql:// or postgres:// URI, else 0 (a path). */
int store_target_is_postgresql(const char *target);
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

/* A per-user limit of fair use (http/quota.h) that an insert checks
 * inside its own write transaction: the owner's usage is counted after a
 * lock that serialises the writers of the same owner (SQLite: the write
 * transaction itself; PostgreSQL: an advisory lock on the owner, held to
 * COMMIT, on every node), so that simultaneous requests of one user
 * cannot pass the limit together. Over it the call returns STORE_LIMIT
 * (3), creates nothing and sets used. */
typedef struct store_limit {
    int64_t max;    /* in: the limit; 0 = none */
    int64_t used;   /* out, on STORE_LIMIT: what the owner held */
} store_limit;

/* ---- runs ---- */

/* Inserts a queued run (model 1..7 bytes, dataset 1..63 bytes, both
 * borrowed; params_json NULL is stored as "{}") owned by user `owner`
 * (borrowed; NULL: none; else a row of users, foreign key, or -1); *id_out
 * receives its id.
 * uploaded 1: a run on an uploaded dataset, whose row is checked in the
 * insert's write transaction, STORE_NOT_FOUND when it is gone. With a
 * concurrent store_dataset_delete one of the two wins cleanly: the run is
 * created and the delete is STORE_CONFLICT, or the dataset is deleted and
 * no run is created. uploaded 0: a built-in dataset, not checked.
 * runs_limit (NULL: none; unused without an owner): the most runs the
 * owner may have queued or running, this one included (sweep trials
 * count), checked in the insert's write transaction: STORE_LIMIT when it
 * has runs_limit->max already. */
int store_run_create(store *s, const char *owner, int uploaded,
                     const char *model, const char *dataset,
                     const char *params_json, uint32_t steps,
                     uint32_t periods, store_limit *runs_limit,
                     int64_t *id_out, mn_err *err);

int store_run_get(store *s, int64_t id, store_run *out, mn_err *err);

/* Runs newest first; status/model: a status's or model kind's name
 * (run.h), NULL = any; a negative limit means no limit. *out is a new
 * array. last NULL, or *last receives a new array (free()) parallel to
 * *out: each run's last finished period, or one with period 0 when it has
 * none (read in the same statement: the list never reads whole period
 * histories). */
int store_run_list(store *s, const char *status, const char *model,
                   int limit, int offset, store_run **out, size_t *n,
                   train_period **last, mn_err *err);

/* store_run_list of the runs of user `owner` only (NULL: everyone's, as
 * store_run_list). */
int store_run_list_owned(store *s, const char *owner, const char *status,
                         const char *model, int limit, int offset,
                         store_run **out, size_t *n, train_period **last,
                         mn_err *err);

/* Number of runs with the given status name (run.h; NULL = all runs). */
int store_run_count(store *s, const char *status, int64_t *n, mn_err *err);

/* Takes the oldest queued run that does not wait (its not_before has
 * passed) for node `node` (1..STORE_NODE_NAME_MAX bytes, borrowed) and
 * marks it running: node = node, attempts + 1, a lease that expires
 * lease_seconds from now (renewed by store_node_heartbeat), started_at =
 * now if it was never started, its waiting reason cleared. *out receives
 * it as claimed. Returns STORE_NOT_FOUND when none is ready. On
 * PostgreSQL claims from several nodes never take one run twice (FOR
 * UPDATE SKIP LOCKED). */
int store_run_claim(store *s, const char *node, double lease_seconds,
                    store_run *out, mn_err *err);

/* Records a finished period in one transaction: the period's metrics row,
 * the run's step/period/validation figures, the validation confusion
 * counts, and the checkpoint as the run's 'latest' (and as 'best' when its
 * validation log loss is the lowest so far). */
int store_period_add(store *s, int64_t id, const train_period *p,
                     const eval_result *validation, const uint8_t *ckpt,
                     size_t ckpt_len, mn_err *err);

/* store_period_add, and in the same transaction, when snap is non-NULL,
 * the period's weight snapshot snap[0..snap_len) (borrowed; wsnap_encode's
 * format, engine/wsnap.h), replacing the one of that period if any:
 * a crash never leaves a period without its snapshot or a snapshot
 * without its period. Read back with snapshots.h. */
int store_period_add_snapshot(store *s, int64_t id, const train_period *p,
                              const eval_result *validation,
                              const uint8_t *ckpt, size_t ckpt_len,
                              const uint8_t *snap, size_t snap_len,
                              mn_err *err);

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

/* A page of a run's finished periods, in order: those numbered above
 * `after` (0 = from the first), at most limit of them (a negative limit
 * means no limit); *out is a new array (NULL with *n 0 when none).
 * STORE_NOT_FOUND for an unknown run. */
int store_periods_page(store *s, int64_t id, uint32_t after, int limit,
                       train_period **out, size_t *n, mn_err *err);

/* Ends a run: status an ended one (succeeded, failed, cancelled or
 * pruned; -1 for another), finished_at = now, error (may be NULL).
 * Progress: a succeeded run is at its last step and period; a cancelled
 * or pruned one at
 * `step`, the step it stopped at (never below its last period's step; its
 * period stays the last one finished); a failed one keeps its last
 * period's (step is ignored). STORE_CONFLICT if it already ended. */
int store_run_finish(store *s, int64_t id, run_status status,
                     const char *error, uint32_t step, mn_err *err);

/* Puts a running run back in the queue (graceful stop; its checkpoint
 * stays so that it resumes; node and lease cleared). STORE_CONFLICT if it
 * is not running. */
int store_run_requeue(store *s, int64_t id, mn_err *err);

/* Puts a running run back in the queue to wait: no claim takes it before
 * not_before (ms since the epoch; 0 = at once), and the run shows
 * `reason` (borrowed; NULL = none) as its waiting field until claimed; a
 * reason adds one to its waits. STORE_CONFLICT if it is not running. */
int store_run_wait(store *s, int64_t id, const char *reason,
                   int64_t not_before, mn_err *err);

/* Queues a failed or cancelled run again to continue from its newest
 * checkpoint (finished_at, error, waiting and a cancel request cleared;
 * periods kept).
 * STORE_NOT_FOUND for an unknown run; STORE_CONFLICT when its status is
 * another (err names it) or when it has no checkpoint (*no_checkpoint =
 * 1). runs_limit (NULL: none; unused for a run without an owner): as
 * store_run_create's, for the run's owner, counted in the same
 * write transaction: STORE_LIMIT when the owner has runs_limit->max runs
 * queued or running already. */
int store_run_resume(store *s, int64_t id, store_limit *runs_limit,
                     int *no_checkpoint, mn_err *err);

/* Cancels a queued run at once (status cancelled). STORE_CONFLICT if it is
 * running (the caller stops the worker) or already ended. */
int store_run_cancel_queued(store *s, int64_t id, mn_err *err);

/* Deletes an ended run with its periods, confusions and checkpoints.
 * STORE_CONFLICT while queued or running, or while it is a model's version
 * (store_run_model_version says which). */
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

/* ---- nodes and leases (nodes.c) ----
 *
 * A node is one mnistd process. It registers at start, and its heartbeat
 * (server/jobs/heartbeat.h) renews its row and the leases of the runs it
 * trains every second. Any node reaps the runs whose lease expired: they
 * go back to the queue and resume from their newest checkpoint on the
 * node that claims them. A node stopped with SIGTERM hands its runs back
 * at once (store_node_leave). Lease times are each node's wall clock. */

typedef struct store_node {
    char name[STORE_NODE_NAME_MAX + 1];
    int64_t started_at;       /* ms since the epoch (its last registration) */
    int64_t heartbeat_at;     /* ms since the epoch */
    uint32_t workers;         /* its training workers */
    uint32_t busy;            /* how many of them trained at its heartbeat */
} store_node;

/* Registers node `node` (1..STORE_NODE_NAME_MAX bytes) with `workers`
 * workers: its row is created, or replaced when the name returns (a
 * restarted node): started_at and heartbeat_at = now, busy 0. */
int store_node_register(store *s, const char *node, int workers, mn_err *err);

/* The node's heartbeat: heartbeat_at = now and busy (its workers training
 * now), and the leases of the runs it holds (running with node = node)
 * renewed to now + lease_seconds (> 0), in one transaction.
 * STORE_NOT_FOUND when the node has no row (it left, or was never
 * registered: register it again). */
int store_node_heartbeat(store *s, const char *node, int busy,
                         double lease_seconds, mn_err *err);

/* Requeues the running runs whose lease expired (node and lease cleared;
 * they resume from their newest checkpoint), counting a crash on each;
 * a run whose crashes reach max_attempts (>= 1) ends `failed` instead,
 * its error saying that its training was lost with its node that many
 * times (a poison run that kills every node that trains it). One write
 * transaction; on PostgreSQL, runs locked by another transaction are
 * left for the next reap (SKIP LOCKED). *n_requeued (may be NULL)
 * receives how many went back to the queue. */
int store_lease_reap(store *s, int max_attempts, int *n_requeued,
                     mn_err *err);

/* Expires at once the leases of the running runs of node `node`, or of
 * every node when node is NULL, so that the next store_lease_reap takes
 * them (a crash counted): at start a PostgreSQL node expires those of its
 * own name (a previous process of that name is dead). *n (may be NULL)
 * receives how many. */
int store_lease_expire(store *s, const char *node, int *n, mn_err *err);

/* SIGTERM: hands the node's running runs back to the queue at once
 * (node and lease cleared; no crash counted), and removes its row, in one
 * transaction. Another node claims them without waiting for the lease.
 * node NULL: every running run and every node's row, for an SQLite
 * server's start, whose one-server lock proves every earlier process
 * dead (their runs come back as before nodes existed: no crash counted). */
int store_node_leave(store *s, const char *node, mn_err *err);

/* Forgets the nodes that died long ago: deletes the rows of the nodes
 * whose last heartbeat is older than before_ms (ms since the epoch) and
 * that hold no running run, so that GET /nodes does not grow with every
 * node ever started under a new name (<hostname>:<port> with a new port).
 * *n (may be NULL) receives how many. */
int store_node_forget(store *s, int64_t before_ms, int *n, mn_err *err);

/* 1 when run id is running and held by node `node`, 0 when it is not (it
 * was reaped and is queued or another node's, or it ended, or it is
 * gone), < 0 on error. The heartbeat asks it of the runs its node trains:
 * a node that lost a lease (it could not renew it in time) stops training
 * that run and stores nothing more of it. */
int store_run_held(store *s, int64_t id, const char *node, mn_err *err);

/* Every registered node by name; *out is a new array (free()), NULL with
 * *n 0 when none. Whether a node is alive (its heartbeat within the lease)
 * is the caller's to judge. */
int store_node_list(store *s, store_node **out, size_t *n, mn_err *err);
/* The newest succeeded run of user `owner` (NULL: of anyone, as
 * store_run_newest_succeeded). STORE_NOT_FOUND if none. */
int store_run_newest_succeeded_owned(store *s, const char *owner,
                                     int64_t *id, mn_err *err);

/* ---- datasets (uploaded; the built-in ones live in the data dir) ---- */

typedef struct store_dataset_info {
    char name[64];
    uint32_t examples;
    uint32_t rows, cols;
    int64_t created_at;
    char owner[64];         /* who uploaded it ("" = no user) */
    int public_;            /* 1: every user may read and train on it */
} store_dataset_info;

/* Stores an uploaded dataset (pixels and labels as BLOBs).
 * STORE_CONFLICT if the name exists. */
int store_dataset_put(store *s, const char *name, const ds_dataset *d,
                      mn_err *err);

/* store_dataset_put for user `owner` (borrowed; NULL: none), public (1:
 * every user may read and train on it) or not (0). bytes_limit (NULL:
 * none; unused without an owner): the most bytes the owner's uploaded
 * datasets may take as stored (rows * cols + 1 an example), this one
 * included, checked in the insert's write transaction: STORE_LIMIT when
 * this one would pass it. */
int store_dataset_put_owned(store *s, const char *name, const ds_dataset *d,
                            const char *owner, int public_,
                            store_limit *bytes_limit, mn_err *err);

/* Marks uploaded dataset `name` public (1) or private (0).
 * STORE_NOT_FOUND if the name does not exist. */
int store_dataset_set_public(store *s, const char *name, int public_,
                             mn_err *err);

/* Loads an uploaded dataset into *out (new arrays). */
int store_dataset_get(store *s, const char *name, ds_dataset *out,
                      mn_err *err);

int store_dataset_info_get(store *s, const char *name,
                           store_dataset_info *out, mn_err *err);

/* Deletes an uploaded dataset. STORE_NOT_FOUND if the name does not
 * exist; STORE_CONFLICT while a run that has not ended (queued, running)
 * uses it: *run_id and *run_st (either may be NULL) receive the oldest
 * such run. Runs that ended on it keep everything they stored. */
int store_dataset_delete(store *s, const char *name, int64_t *run_id,
                         run_status *run_st, mn_err *err);

/* All uploaded datasets by name; *out is a new array (free()). */
int store_dataset_list(store *s, store_dataset_info **out, size_t *n,
                       mn_err *err);

/* ---- one server per database file (SQLite only) ---- */

/* An exclusive lock on the sidecar file "<db path>.lock", held for the
 * life of the process: two servers on one SQLite file would both requeue
 * and train the same runs. The kernel releases it on any death of the
 * process (kill -9 included), so a stale lock never blocks a restart. A
 * backend shared by several nodes (PostgreSQL) takes no such lock. */
typedef struct store_lock store_lock;

/* Takes the lock without waiting and writes "<pid> 0" into the file.
 * 0 and *out (owned; store_lock_release); STORE_CONFLICT when another
 * process holds it: *holder_pid and *holder_port receive what that
 * process wrote (0 when unknown) and err says so; -1 when the file cannot
 * be opened or locked. */
int store_lock_take(const char *db_path, store_lock **out, long *holder_pid,
                    unsigned *holder_port, mn_err *err);

/* Records the server's port in the lock file ("<pid> <port>"), for the
 * message of a second server. -1 on an I/O error. */
int store_lock_note_port(store_lock *l, unsigned port, mn_err *err);

/* Releases the lock (the file stays). NULL is a no-op. */
void store_lock_release(store_lock *l);

/* ---- models: named models, numbered versions (succeeded runs), aliases ---- */

#define STORE_MODEL_NAME_MAX 63   /* model and alias name bytes */

typedef struct store_model {
    char name[64];
    char *description;        /* owned ("" when none) */
    int64_t created_at;       /* ms since epoch */
    int64_t versions;         /* number of versions */
    int64_t latest;           /* highest version, 0 when none */
    char owner[64];           /* who created it ("" = no user) */
    int shared;               /* 1: made by an admin (or by no user), so
                                 every user may read and predict with it */
} store_model;

typedef struct store_model_version {
    int64_t version;          /* 1, 2, ... */
    int64_t run_id;
    int64_t created_at;
    char model[8];            /* the run's model kind */
    double validation_accuracy;   /* the run's (NaN when not measured) */
    double test_accuracy;         /* the run's (NaN until evaluated) */
} store_model_version;

typedef struct store_model_alias {
    char alias[64];
    int64_t version;
} store_model_alias;

void store_model_free(store_model *m);            /* owned fields only */
void store_models_free(store_model *ms, size_t n); /* fields and array */

/* Creates model `name` (1..STORE_MODEL_NAME_MAX bytes; description may be
 * NULL). STORE_CONFLICT if the name exists. */
int store_model_create(store *s, const char *name, const char *description,
                       mn_err *err);

/* store_model_create for user `owner` (borrowed; NULL: none). */
int store_model_create_owned(store *s, const char *name,
                             const char *description, const char *owner,
                             mn_err *err);

/* Model `name` into *out (caller frees with store_model_free), with its
 * versions in increasing order (*v, new array, free()) and its aliases by
 * name (*a, new array, free()); v or a may be NULL when not wanted, all in
 * one snapshot. STORE_NOT_FOUND if there is no such model. */
int store_model_get(store *s, const char *name, store_model *out,
                    store_model_version **v, size_t *nv,
                    store_model_alias **a, size_t *na, mn_err *err);

/* Every model by name (with its version count and latest version); *out
 * is a new array (store_models_free). */
int store_model_list(store *s, store_model **out, size_t *n, mn_err *err);

/* Deletes a model with its versions and aliases (the runs stay).
 * STORE_NOT_FOUND if there is no such model. */
int store_model_delete(store *s, const char *name, mn_err *err);

/* Registers run `run_id` as the next version of model `name` (the highest
 * version + 1, from 1), in one write transaction: *version receives it.
 * STORE_NOT_FOUND when the model or the run does not exist,
 * STORE_CONFLICT when the run has not succeeded. */
int store_model_version_add(store *s, const char *name, int64_t run_id,
                            int64_t *version, mn_err *err);

/* Points alias `alias` (1..STORE_MODEL_NAME_MAX bytes) of model `name` at
 * `version`, creating or moving it; *created receives 1 when it is new.
 * STORE_NOT_FOUND when the model or the version does not exist. */
int store_model_alias_set(store *s, const char *name, const char *alias,
                          int64_t version, int *created, mn_err *err);

/* Removes an alias. STORE_NOT_FOUND when the model has no such alias. */
int store_model_alias_delete(store *s, const char *name, const char *alias,
                             mn_err *err);

/* The run that serves model `name` at `version` (> 0), else at `alias`
 * (non-NULL), else at its highest version: *run_id and *version_out
 * receive it. STORE_NOT_FOUND when the model, the version or the alias
 * does not exist or the model has no version yet; err's message is then
 * a sentence for the client that says which ("no model 'x'", ...). */
int store_model_resolve(store *s, const char *name, int64_t version,
                        const char *alias, int64_t *run_id,
                        int64_t *version_out, mn_err *err);

/* The model and version that run `run_id` is (the first by model name)
 * into model[64] and *version. STORE_NOT_FOUND when it is none. */
int store_run_model_version(store *s, int64_t run_id, char model[64],
                            int64_t *version, mn_err *err);

/* ---- sweeps: hyperparameter searches (sweeps.c) ----
 *
 * A sweep row holds the resolved request (params_json, server/jobs/
 * sweepspec.h), its stored status ("running" until it ends, then
 * "succeeded", "failed" or "cancelled") and next_trial, the number of
 * trials created so far: trial numbers are handed out in order, once
 * each. Each trial is a run with `sweep` and `trial` set. */

typedef struct store_sweep {
    int64_t id;
    char status[12];          /* as stored: running, succeeded, failed,
                                 cancelled */
    char *params_json;        /* the resolved request, JSON text, owned */
    uint32_t trials;          /* how many it will have */
    uint32_t next_trial;      /* how many it has created */
    int64_t created_at, finished_at;  /* ms since epoch, 0 = null */
    char *error;              /* NULL, or why it failed, owned */
    char owner[64];           /* who created it ("" = no user); its trials
                                 are that user's runs */
} store_sweep;

/* One trial's objective by period (store_sweep_series). */
typedef struct store_series {
    int64_t run;              /* the trial's run id */
    uint32_t n;               /* periods 1..n known */
    double *v;                /* [n], owned; NaN where not measured */
} store_series;

void store_sweep_free(store_sweep *w);             /* owned fields only */
void store_sweeps_free(store_sweep *w, size_t n);  /* fields and array */
void store_series_free(store_series *a, size_t n); /* values and array */

/* Inserts a running sweep with no trial yet (params_json borrowed;
 * trials >= 1); *id receives its id. */
int store_sweep_create(store *s, const char *params_json, uint32_t trials,
                       int64_t *id, mn_err *err);

/* store_sweep_create for user `owner` (borrowed; NULL: none): its trials
 * are created as that user's runs. trials_limit (NULL: none; unused
 * without an owner): the most trials the owner's running sweeps may have,
 * this one's included, checked in the insert's write transaction:
 * STORE_LIMIT when this one would pass it. */
int store_sweep_create_owned(store *s, const char *owner,
                             const char *params_json, uint32_t trials,
                             store_limit *trials_limit, int64_t *id,
                             mn_err *err);

/* Sweep id into *out (store_sweep_free) and, when trials is not NULL, its
 * trials' runs in trial order (*trials a new array, store_runs_free; *n of
 * them), in one snapshot. STORE_NOT_FOUND for an unknown sweep. */
int store_sweep_get(store *s, int64_t id, store_sweep *out,
                    store_run **trials, size_t *n, mn_err *err);

/* Sweeps newest first (a negative limit: all); *out is a new array
 * (store_sweeps_free), NULL with *n 0 when none. */
int store_sweep_list(store *s, int limit, int offset, store_sweep **out,
                     size_t *n, mn_err *err);

/* store_sweep_list of user `owner`'s sweeps only (NULL: everyone's). */
int store_sweep_list_owned(store *s, const char *owner, int limit,
                           int offset, store_sweep **out, size_t *n,
                           mn_err *err);

/* The ids of the sweeps that have not ended, oldest first; *ids is a new
 * array (free()), NULL with *n 0 when none. */
int store_sweep_active(store *s, int64_t **ids, size_t *n, mn_err *err);

/* Creates trial number `trial` of sweep id as a queued run (the fields as
 * store_run_create takes them), in one write transaction, only if the
 * sweep is running, `trial` is its next_trial (then next_trial + 1) and
 * fewer than `parallel` of its trials are queued or running; else
 * STORE_CONFLICT, with nothing written. *run_id receives the run's id.
 * STORE_NOT_FOUND for an unknown sweep. Safe from several connections and
 * nodes at once: the transaction locks the sweep's row (sweeps.c). */
int store_sweep_trial_add(store *s, int64_t id, uint32_t trial,
                          uint32_t parallel, const char *model,
                          const char *dataset, const char *params_json,
                          uint32_t steps, uint32_t periods, int64_t *run_id,
                          mn_err *err);

/* Ends a running sweep: status "succeeded", "failed" or "cancelled",
 * finished_at = now, error (borrowed, may be NULL). STORE_CONFLICT when
 * it has already ended (err names its status), STORE_NOT_FOUND. */
int store_sweep_finish(store *s, int64_t id, const char *status,
                       const char *error, mn_err *err);

/* Deletes an ended sweep with its trials (their periods, confusions and
 * checkpoints), in one write transaction. STORE_CONFLICT while the sweep
 * runs, or while one of its trials has not ended or is a model's version
 * (*run receives that trial's id, 0 otherwise). STORE_NOT_FOUND. */
int store_sweep_delete(store *s, int64_t id, int64_t *run, mn_err *err);

/* Every trial's objective by period, periods 1..upto, for the trials of
 * sweep id that have finished at least one period, in run id order:
 * column "validation_accuracy" or "validation_log_loss" (-1 for another).
 * *out is a new array (store_series_free), NULL with *n 0 when none. */
int store_sweep_series(store *s, int64_t id, const char *column,
                       uint32_t upto, store_series **out, size_t *n,
                       mn_err *err);

/* ---- signals between the nodes of one service (signals.c) ----
 *
 * Nodes that share one database (PostgreSQL) tell each other about runs
 * through it: a cancel request and the live progress of a running run are
 * columns of its row, and every change that another node must act on at
 * once (a run queued, a cancel requested, a run or dataset deleted, a
 * period stored) is a signal: a NOTIFY sent by a trigger when the change
 * commits (migrations/postgresql/0008_run_signals.sql). A node hears them
 * on one store connection of its own that listens (store_listen, then
 * store_signal_wait in a loop; server/jobs/signals.h). SQLite has no
 * signals: one process serves the file and its wake-ups stay in memory. */

/* 1 when other processes may change the database behind s while this one
 * serves it (PostgreSQL: several nodes), so that a cache of a row must ask
 * the store before it answers; 0 for SQLite (one server per file,
 * store_lock_take). */
int store_is_shared(store *s);

typedef enum store_signal_kind {
    STORE_SIG_QUEUED = 1,      /* run entered the queue: claim */
    STORE_SIG_CANCEL,          /* run's cancel was requested */
    STORE_SIG_DELETED,         /* run was deleted */
    STORE_SIG_PERIOD,          /* a period of run was stored */
    STORE_SIG_DATASET_DELETED, /* uploaded dataset `dataset` was deleted */
    STORE_SIG_RESYNC,          /* the listening connection was re-opened:
                                  signals sent meanwhile are lost, so act
                                  as if every kind had come */
} store_signal_kind;

typedef struct store_signal {
    store_signal_kind kind;
    int64_t run;               /* the run (QUEUED..PERIOD), else 0 */
    char dataset[64];          /* DATASET_DELETED: its name, else "" */
} store_signal;

/* Makes s a listener: s then serves only store_signal_wait (a dedicated
 * connection; on PostgreSQL LISTEN "<schema>.mnistd"). 0; STORE_NOT_FOUND
 * when the backend has no signals (SQLite); -1 or STORE_UNAVAILABLE. */
int store_listen(store *s, mn_err *err);

/* Waits up to timeout_ms (>= 0) for the next signal on a listener: 1 with
 * *out filled, 0 when none came (or one this version does not know). A
 * connection that broke (the database restarted) is re-opened and listens
 * again: then 1 with STORE_SIG_RESYNC; while it cannot be re-opened,
 * STORE_UNAVAILABLE (the caller naps and calls again). */
int store_signal_wait(store *s, int timeout_ms, store_signal *out,
                      mn_err *err);

/* Reads a NOTIFY payload ("<kind> <run id>" or "dataset_deleted <name>",
 * the words of 0008_run_signals.sql) into *out. 0, or -1 when it is not
 * one (unknown word, bad id, name of 64 bytes or more). */
int store_signal_parse(const char *payload, store_signal *out);

/* Records a cancel request on a running run (cancel_requested = 1; on
 * PostgreSQL the trigger signals every node); the node that trains it
 * stops it (it reads the flag with store_run_progress_put at least once a
 * second, and at once on the signal). A store_run_resume clears it.
 * STORE_NOT_FOUND; STORE_CONFLICT when the run is not running (a queued
 * one: store_run_cancel_queued). */
int store_run_cancel_request(store *s, int64_t id, mn_err *err);

/* The live progress of run id (steps done, periods finished) from node
 * (borrowed), the node that holds it, stamped now; *cancel_requested
 * receives the run's flag. Called at most once a second per run.
 * STORE_CONFLICT when the run is not running on that node (gone, ended,
 * requeued, or taken over by another node meanwhile: a node that lost a
 * run never writes over its new node's progress). */
int store_run_progress_put(store *s, int64_t id, const char *node,
                           uint32_t step, uint32_t period,
                           int *cancel_requested, mn_err *err);

typedef struct store_run_live {
    run_status status;
    uint32_t step, period;     /* the last store_run_progress_put */
    int64_t at;                /* its time (ms since the epoch), 0 = never */
    int cancel_requested;
} store_run_live;

/* Run id's status, live progress and cancel request (one cheap row
 * read). STORE_NOT_FOUND for an unknown run. */
int store_run_live_get(store *s, int64_t id, store_run_live *out,
                       mn_err *err);
/* ---- users (users.c): who may call the service, issue 16 ----
 *
 * A user has a name (the dataset naming rule), an admin flag and the hash
 * of its bearer token (server/http/auth.h makes tokens and hashes them;
 * the token itself is never stored). Revoking keeps the row (the name
 * stays taken, owned resources keep their owner). */

#define STORE_TOKEN_HASH_BYTES 32

typedef struct store_user {
    char name[64];
    int admin;                /* 1: sees and acts on everything */
    int64_t created_at;       /* ms since epoch */
    int64_t revoked_at;       /* ms since epoch, 0 = not revoked */
} store_user;

/* Adds user `name` (1..63 bytes) with the token hash
 * hash[STORE_TOKEN_HASH_BYTES] (borrowed). STORE_CONFLICT if the name
 * exists (revoked or not); err then says so in a sentence. */
int store_user_add(store *s, const char *name, const uint8_t *hash,
                   int admin, mn_err *err);

/* User `name` into *out and, when hash is not NULL, its token hash into
 * hash[STORE_TOKEN_HASH_BYTES]. STORE_NOT_FOUND if there is none. */
int store_user_get(store *s, const char *name, store_user *out,
                   uint8_t *hash, mn_err *err);

/* Every user by name (revoked ones too); *out is a new array (free()),
 * NULL with *n 0 when none. */
int store_user_list(store *s, store_user **out, size_t *n, mn_err *err);

/* Revokes user `name` (revoked_at = now): its token stops working at
 * once. STORE_NOT_FOUND; STORE_CONFLICT when already revoked. */
int store_user_revoke(store *s, const char *name, mn_err *err);

/* Replaces user `name`'s token hash (hash borrowed) and reinstates it if
 * it was revoked. STORE_NOT_FOUND if there is no such user. */
int store_user_rotate(store *s, const char *name, const uint8_t *hash,
                      mn_err *err);

/* *yes = 1 when the users table has a row (revoked users count: revoking
 * every user does not open the service), else 0. */
int store_user_any(store *s, int *yes, mn_err *err);

/* The kinds of resources that have an owner. */
typedef enum {
    STORE_OWNED_RUN,          /* by id */
    STORE_OWNED_SWEEP,        /* by id */
    STORE_OWNED_DATASET,      /* by name: an upload (built-ins have no row) */
    STORE_OWNED_MODEL,        /* by name */
} store_owner_kind;

/* The owner of a resource of `kind`, named by id (runs, sweeps) or name
 * (datasets, models; borrowed), into owner[64] ("" when none) and
 * *shared: 1 when every user may read it (a public dataset; a model made
 * by an admin or by no user), else 0. STORE_NOT_FOUND when it does not
 * exist. */
int store_owner_get(store *s, store_owner_kind kind, int64_t id,
                    const char *name, char owner[64], int *shared,
                    mn_err *err);

#endif
