/* train.h: the training loop of the reference exercise.
 *
 * `steps` minibatch steps split into `periods`; period p ends at step
 * steps*(p+1)/periods. After each period: mean log loss on the whole
 * training split and on the validation split, validation accuracy and the
 * seconds spent. At the end: validation accuracy, log loss and confusion.
 *
 * Batches walk through the training split in an order reshuffled every
 * epoch; epoch e's order is derived from (seed, e), and dropout draws from
 * an RNG stream whose state travels in the checkpoint, so a run resumed
 * from a checkpoint computes the same numbers as one that never stopped.
 *
 * DESIGN (concurrency): train_run is re-entrant; it owns every buffer it
 * uses and borrows the dataset read-only, so any number of runs may train
 * at once on one shared dataset. The service observes it through hooks
 * and stops it through the `stop` flag (read with relaxed atomics once per
 * step).
 *
 * DESIGN (period ends): a period's end is finished on a helper thread
 * while training goes on with the next period, so that the evaluation of
 * both splits and the on_period hook (the service stores the checkpoint)
 * use a second core: the helper evaluates a snapshot of the parameters at
 * that step, so the figures are those of a run that stopped to evaluate.
 * One period end runs at a time and in order: the trainer waits for the
 * previous one at the next period end, before on_stop and before it
 * returns.
 *
 * DESIGN (cores): the runs of one process may share a train_threads, a
 * count of the compute threads they run against the cores they may use.
 * Each run's trainer counts as one while train_run runs; a period end's
 * helper counts as one more while it evaluates, and only while the count
 * is below the cores. Otherwise the trainer evaluates the snapshot itself
 * before training goes on, and the helper thread only calls on_period
 * (the service's store write: it waits on the store's lock and disk, not
 * on a core, so it is not counted, and it delays the trainer only when it
 * outlasts the next period's training). With as
 * many busy runs as cores the evaluations thus take no core from another
 * run's trainer (two compute threads per core only time-slice the same
 * work and share its caches), and a lone run on a machine with idle cores
 * keeps its overlap. Trainers are counted but never refused (the pool
 * decides how many runs train): one that starts while helpers evaluate
 * takes the count past the bound until those evaluations end, and no
 * helper starts meanwhile. Where the evaluation runs changes no figure: the
 * same snapshot is evaluated, and on_period is called in the same order
 * with the same arguments.
 *
 * Ownership: train_result owns its model; free with train_result_free. */
#ifndef MN_TRAIN_H
#define MN_TRAIN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ds.h"
#include "err.h"
#include "eval.h"
#include "model.h"
#include "optim.h"

/* What train_check accepts: the engine's own limits, the one place they
 * are defined. The HTTP API (server/jobs/spec.c) uses these, and is
 * stricter on steps and learning_rate by policy (see there). */
#define TRAIN_MAX_PERIODS 1000
#define TRAIN_MAX_STEPS 10000000
#define TRAIN_MAX_BATCH 10000
#define TRAIN_MAX_LEARNING_RATE 100.0
#define TRAIN_MAX_CLIP_NORM 1e6

typedef struct train_params {
    model_arch arch;            /* n_in/n_out are set from the dataset */
    optim_kind optimizer;
    float learning_rate;
    float clip_norm;            /* 0 = no clipping */
    uint32_t steps;
    uint32_t batch_size;
    uint32_t periods;
    uint32_t examples;          /* head of the dataset used */
    uint32_t validation_examples;
    uint64_t seed;
} train_params;

typedef struct train_period {
    uint32_t period;            /* 1-based */
    uint32_t step;              /* steps done at the end of the period */
    double train_log_loss;
    double validation_log_loss;
    double validation_accuracy;
    double seconds;             /* wall time from the end of the previous
                                   period's evaluation to this one's */
} train_period;

/* Why a stop flag was raised. TRAIN_PRUNE: the caller's early stopping
 * rule ended the run (the engine treats it as a cancel and reports it).
 * TRAIN_LOST: the run is no longer the caller's to train (the engine
 * stops as for any other reason; the caller stores nothing of it). */
enum { TRAIN_RUN = 0, TRAIN_CANCEL = 1, TRAIN_SHUTDOWN = 2, TRAIN_PRUNE = 3,
       TRAIN_LOST = 4 };

/* A bound on the compute threads of the runs that share it (DESIGN
 * (cores) above). Thread-safe; opaque. */
typedef struct train_threads train_threads;

/* A bound of `cores` compute threads (at least 1). NULL with a reason when
 * out of memory. Free with train_threads_free once no train_run uses it. */
train_threads *train_threads_new(unsigned cores, mn_err *err);

void train_threads_free(train_threads *t);

/* The compute threads counted now (trainers and helpers): a snapshot, for
 * metrics and tests. */
unsigned train_threads_busy(const train_threads *t);

/* How many period-end evaluations under t were given a helper thread and
 * how many the trainers did themselves, since train_threads_new. */
void train_threads_evaluations(const train_threads *t, uint64_t *on_helper,
                               uint64_t *on_trainer);

typedef struct train_hooks {
    void *ctx;
    /* After every step, on the training thread (cheap; may be NULL).
     * period is 0-based current. */
    void (*on_progress)(void *ctx, uint32_t step, uint32_t period);
    /* After each period, on the helper thread that finished it (while
     * on_progress goes on being called for the next period), with its
     * metrics, its validation confusion and a checkpoint of the state at
     * that step (borrowed, valid during the call). A non-zero return
     * aborts the run with the hook's error when the trainer next waits for
     * the helper: at the next period end, at a stop, or at the end. */
    int (*on_period)(void *ctx, const train_period *p,
                     const eval_result *validation, const uint8_t *ckpt,
                     size_t ckpt_len, mn_err *err);
    /* When the stop flag ends training between periods, on the training
     * thread, after the last period's on_period: the checkpoint at the
     * stop step (may be NULL). */
    int (*on_stop)(void *ctx, int why, uint32_t step, const uint8_t *ckpt,
                   size_t ckpt_len, mn_err *err);
    atomic_int *stop;           /* TRAIN_RUN / _CANCEL / _SHUTDOWN / _PRUNE */
    /* The bound shared with other runs (borrowed; NULL: no bound, every
     * period end gets a helper thread). */
    train_threads *threads;
} train_hooks;

typedef struct train_result {
    int stopped;                /* 0, or TRAIN_CANCEL / _SHUTDOWN / _PRUNE */
    uint32_t n_periods;         /* periods finished in this call */
    train_period periods[TRAIN_MAX_PERIODS];
    eval_result validation;     /* final validation metrics + confusion */
    model *model;               /* trained model, owned (no grads) */
} train_result;

/* Resolves defaults and checks every field; n_in/n_out come from d.
 * Returns 0 or -1 naming the field. */
int train_check(train_params *p, const ds_dataset *d, mn_err *err);

/* An estimate of the bytes a run with these (checked) params allocates:
 * model, gradients, optimizer state, workspaces, batch buffers, and the
 * checkpoints it encodes. The dataset is shared and not counted. */
size_t train_memory_estimate(const train_params *p);

/* Trains on d from scratch, or from a checkpoint (resume, resume_len) made
 * by an earlier call with the same params. hooks may be NULL. On success
 * returns 0 and fills *out (also when stopped early: out->stopped says
 * why, out->model is NULL then). On failure (bad params, a loss that turns
 * NaN or infinite, a hook error) returns -1 with the reason. */
int train_run(const train_params *p, const ds_dataset *d,
              const uint8_t *resume, size_t resume_len,
              const train_hooks *hooks, train_result *out, mn_err *err);

void train_result_free(train_result *r);

/* One optimisation step on a batch: forward (train mode), backward of the
 * summed loss, clipping by global norm, optimizer update. The batch is
 * rows[0..B) of the packed set if packed is non-NULL, else dataset rows of
 * d. Returns the batch's summed loss (NaN/inf are returned as they are;
 * the caller decides). x: [B, n_in] scratch  y: [B] out  rows: [B] */
double train_step(model *m, model_ws *ws, optim *opt, const ds_dataset *d,
                  const ds_packed *packed, const uint32_t *rows, float *x,
                  uint8_t *y, int B, float clip_norm, rng_state *rng);

#endif
