/* train.c: the period-by-period training loop (see train.h). */
#include "train.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckpt.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int train_check(train_params *p, const ds_dataset *d, mn_err *err)
{
    p->arch.n_in = (int)(d->rows * d->cols);
    p->arch.n_out = DS_CLASSES;
    if (model_arch_check(&p->arch, err)) return -1;
    if (!(p->learning_rate > 0.0f &&
          p->learning_rate <= (float)TRAIN_MAX_LEARNING_RATE))
        return mn_errf(err, "learning_rate must be in (0, %g]",
                       TRAIN_MAX_LEARNING_RATE);
    if (!(p->clip_norm >= 0.0f && p->clip_norm <= (float)TRAIN_MAX_CLIP_NORM))
        return mn_errf(err, "clip_norm must be in [0, 1e6] (0 = off)");
    if (p->steps < 1 || p->steps > TRAIN_MAX_STEPS)
        return mn_errf(err, "steps must be in 1..%d", TRAIN_MAX_STEPS);
    if (p->periods < 1 || p->periods > TRAIN_MAX_PERIODS || p->periods > p->steps)
        return mn_errf(err, "periods must be in 1..%d and at most steps",
                       TRAIN_MAX_PERIODS);
    if (p->examples < 2 || p->examples > d->n)
        return mn_errf(err, "examples must be in 2..%u (the dataset's size)",
                       d->n);
    if (p->validation_examples < 1 || p->validation_examples >= p->examples)
        return mn_errf(err, "validation_examples must be in 1..%u "
                       "(fewer than examples)", p->examples - 1);
    uint32_t n_train = p->examples - p->validation_examples;
    uint32_t max_batch = n_train < TRAIN_MAX_BATCH ? n_train : TRAIN_MAX_BATCH;
    if (p->batch_size < 1 || p->batch_size > max_batch)
        return mn_errf(err, "batch_size must be in 1..%u (at most the "
                       "training examples and %d)", max_batch, TRAIN_MAX_BATCH);
    return 0;
}

size_t train_memory_estimate(const train_params *p)
{
    size_t n = model_param_count(&p->arch);
    size_t floats = 2 * n + optim_state_count(p->optimizer, n);
    size_t ckpt = 4 * (n + optim_state_count(p->optimizer, n)) + 256;
    uint32_t n_train = p->examples - p->validation_examples;
    int eval_b = EVAL_BATCH;
    return 4 * floats + 2 * ckpt + 4 * n /* final model */ +
           4 * n /* the parameters' snapshot a period end evaluates */ +
           model_ws_bytes(&p->arch, (int)p->batch_size) +
           model_ws_bytes(&p->arch, eval_b) +
           (size_t)p->batch_size * (4 * (size_t)p->arch.n_in + 5) +
           (size_t)eval_b * (4 * (size_t)p->arch.n_in + 5) +
           4 * ((size_t)n_train + p->examples) +
           /* the packed splits: 8 bytes a nonzero, at most half nonzero */
           (size_t)p->examples * (size_t)p->arch.n_in * 4;
}

/* The training split's order for one epoch: a permutation of 0..n_train
 * derived from (seed, epoch). order: [n_train] out. */
static void epoch_order(uint32_t *order, uint32_t n_train, uint64_t seed,
                        uint64_t epoch)
{
    rng_state r;
    rng_seed(&r, rng_mix(seed, epoch + 1));
    for (uint32_t i = 0; i < n_train; i++) order[i] = i;
    rng_shuffle_u32(&r, order, n_train);
}

double train_step(model *m, model_ws *ws, optim *opt, const ds_dataset *d,
                  const ds_packed *packed, const uint32_t *rows, float *x,
                  uint8_t *y, int B, float clip_norm, rng_state *rng)
{
    double loss;
    if (packed) {
        ds_packed_gather(packed, rows, B, ws->sp_rowptr, ws->sp_idx,
                         ws->sp_val, y);
        loss = model_forward_csr(m, ws, ws->sp_rowptr, ws->sp_idx,
                                 ws->sp_val, y, B, 1, rng);
    } else {
        loss = eval_forward(m, ws, d, rows, x, y, B, 1, rng);
    }
    if (!isfinite(loss)) return loss;
    model_backward(m, ws, y, B);
    double norm = optim_global_norm(m->grads, m->n_params);
    optim_step(opt, m->params, m->grads, optim_clip_factor(norm, clip_norm));
    return loss;
}

struct train_threads {
    unsigned cores;             /* the bound */
    atomic_uint busy;           /* trainers and helpers counted now */
    atomic_ullong on_helper, on_trainer; /* evaluations done where */
};

train_threads *train_threads_new(unsigned cores, mn_err *err)
{
    train_threads *t = malloc(sizeof *t);
    if (!t) {
        mn_errf(err, "out of memory for the thread bound");
        return NULL;
    }
    t->cores = cores ? cores : 1;
    atomic_init(&t->busy, 0);
    atomic_init(&t->on_helper, 0);
    atomic_init(&t->on_trainer, 0);
    return t;
}

void train_threads_free(train_threads *t)
{
    free(t);
}

unsigned train_threads_busy(const train_threads *t)
{
    return atomic_load(&((train_threads *)t)->busy);
}

void train_threads_evaluations(const train_threads *t, uint64_t *on_helper,
                               uint64_t *on_trainer)
{
    train_threads *u = (train_threads *)t;
    *on_helper = atomic_load(&u->on_helper);
    *on_trainer = atomic_load(&u->on_trainer);
}

/* Counts one more thread if fewer than t->cores are counted: 1 if it did,
 * 0 if the bound is reached. */
static int threads_take(train_threads *t)
{
    unsigned b = atomic_load_explicit(&t->busy, memory_order_relaxed);
    while (b < t->cores)
        if (atomic_compare_exchange_weak(&t->busy, &b, b + 1)) return 1;
    return 0;
}

static void threads_put(train_threads *t)
{
    atomic_fetch_sub(&t->busy, 1);
}

/* One period's end, finished on a helper thread while training goes on:
 * the evaluation of both splits with a snapshot of the parameters at
 * that step, the period's record, and the on_period hook with the
 * checkpoint taken at the same step. One job runs at a time; the trainer
 * joins it before the next period end, a stop or its own return. */
typedef struct period_job {
    pthread_t thread;
    int running;                /* a thread was started and not joined */
    /* what the job reads, set up by the trainer */
    model *snap;             /* parameters at the period's end, owned */
    model_ws *ews;                 /* evaluation workspace, owned by train_run */
    const ds_dataset *d;
    const ds_packed *ptrain, *pval; /* NULL when the splits are not packed */
    const uint32_t *train_idx, *val_idx;
    uint32_t n_train, n_val;
    uint32_t period;            /* 0-based */
    uint32_t step;
    uint8_t *ck;                /* checkpoint at step (owned), or NULL */
    size_t ck_len;
    const train_hooks *hooks;
    train_threads *threads;     /* the bound (hooks->threads), or NULL */
    int counted;                /* the helper is counted in threads */
    int evaluated;              /* the trainer did the evaluation */
    eval_result va;             /* the period's validation metrics */
    train_period *tp;           /* its record in out */
    double *t_last;             /* when the previous period's end finished */
    train_result *out;
    /* what it gives */
    int rc;
    mn_err err;
} period_job;

/* Evaluates m on the training split (train_split 1) or the validation
 * split described by j, packed or not, with j's workspace. */
static int split_eval(const period_job *j, const model *m, int train_split,
                      eval_result *r, mn_err *err)
{
    if (j->ptrain)
        return eval_run_packed(m, train_split ? j->ptrain : j->pval, j->ews,
                               r, err);
    return eval_run(m, j->d, train_split ? j->train_idx : j->val_idx,
                    train_split ? j->n_train : j->n_val, r, err);
}

/* The period end's evaluation: both splits with the snapshot, the
 * period's record in j->out and its validation metrics in j->va. 0, or -1
 * with j->err. */
static int period_eval(period_job *j)
{
    eval_result tr;
    if (split_eval(j, j->snap, 1, &tr, &j->err) ||
        split_eval(j, j->snap, 0, &j->va, &j->err))
        return -1;
    if (!isfinite(tr.log_loss) || !isfinite(j->va.log_loss))
        return mn_errf(&j->err, "training diverged: log loss is not finite "
                       "after period %u", j->period + 1);
    double t1 = now_seconds();
    train_period *tp = &j->out->periods[j->out->n_periods++];
    tp->period = j->period + 1;
    tp->step = j->step;
    tp->train_log_loss = tr.log_loss;
    tp->validation_log_loss = j->va.log_loss;
    tp->validation_accuracy = j->va.accuracy;
    tp->seconds = t1 - *j->t_last;
    *j->t_last = t1;
    j->out->validation = j->va;
    j->tp = tp;
    return 0;
}

/* The period end's work, on whichever thread finishes it: the evaluation
 * unless the trainer did it (j->evaluated), the helper's core back to the
 * bound if it was counted, then the on_period hook. j->rc 0, or -1 with
 * j->err. */
static void period_work(period_job *j)
{
    j->rc = -1;
    int bad = !j->evaluated && period_eval(j);
    if (j->counted) {
        threads_put(j->threads);    /* the core back: the rest waits on I/O */
        j->counted = 0;
    }
    if (bad) return;
    if (j->hooks && j->hooks->on_period &&
        j->hooks->on_period(j->hooks->ctx, j->tp, &j->va, j->ck, j->ck_len,
                            &j->err))
        return;
    j->rc = 0;
}

/* The helper thread. */
static void *period_finish(void *arg)
{
    period_work(arg);
    return NULL;
}

/* Frees the job's checkpoint and returns its result (0, or -1 with the
 * job's error copied to err). */
static int job_collect(period_job *j, mn_err *err)
{
    free(j->ck);
    j->ck = NULL;
    if (j->rc) {
        *err = j->err;
        return -1;
    }
    return 0;
}

/* Waits for the running job, if any, and collects it. */
static int job_join(period_job *j, mn_err *err)
{
    if (!j->running) return 0;
    pthread_join(j->thread, NULL);
    j->running = 0;
    return job_collect(j, err);
}

/* Starts the job for the period ending at j->step: snapshots m's
 * parameters and, with an on_period hook, the checkpoint. When the bound
 * has no core for a helper (DESIGN (cores) in train.h) the evaluation is
 * done here and the thread only calls on_period (it waits on the store,
 * not on a core). Finishes it here if no thread can be started. */
static int job_start(period_job *j, const model *m, const optim *opt,
                     const rng_state *rng, mn_err *err)
{
    memcpy(j->snap->params, m->params, sizeof(float) * m->n_params);
    if (j->hooks && j->hooks->on_period &&
        ckpt_encode(m, opt, j->step, rng, &j->ck, &j->ck_len, err))
        return -1;
    j->err.msg[0] = 0;
    j->evaluated = 0;
    j->counted = j->threads && threads_take(j->threads);
    if (j->threads && !j->counted) {
        atomic_fetch_add(&j->threads->on_trainer, 1);
        j->rc = -1;
        if (period_eval(j)) return job_collect(j, err);
        j->evaluated = 1;
        if (!j->hooks || !j->hooks->on_period) {
            j->rc = 0;
            return job_collect(j, err);
        }
    }
    int counted = j->counted;   /* the helper may clear j->counted at once */
    if (pthread_create(&j->thread, NULL, period_finish, j) == 0) {
        if (counted) atomic_fetch_add(&j->threads->on_helper, 1);
        j->running = 1;
        return 0;
    }
    if (j->counted) {
        threads_put(j->threads);
        atomic_fetch_add(&j->threads->on_trainer, 1);
        j->counted = 0;
    }
    period_work(j);
    return job_collect(j, err);
}

static uint32_t period_end(const train_params *p, uint32_t period)
{
    return (uint32_t)((uint64_t)p->steps * (period + 1) / p->periods);
}

/* One run's state between set-up and clean-up: what train_run's seams
 * share. Everything is owned here except d and hooks (borrowed). */
typedef struct train_state {
    train_params p;             /* checked, n_in/n_out resolved */
    const ds_dataset *d;
    const train_hooks *hooks;
    uint32_t *train_idx, *val_idx; /* the split: dataset rows */
    uint32_t n_train, n_val;
    ds_packed ptrain, pval;     /* the split packed, when packed */
    int packed;
    model *m;                   /* with gradients */
    model_ws *ws, *ews;         /* training and evaluation workspaces */
    optim opt;
    rng_state rng;              /* the dropout stream */
    uint64_t step;              /* steps done */
    uint64_t epoch;             /* the epoch `order` belongs to */
    uint32_t period;            /* 0-based current period */
    uint32_t *order;            /* [n_train] the epoch's order */
    uint32_t *rows;             /* [batch_size] the batch */
    float *x;                   /* [batch_size, n_in] */
    uint8_t *y;                 /* [batch_size] */
    period_job job;
    double t_last;              /* see period_job.t_last */
} train_state;

/* Frees what set-up made (any part may be missing). */
static void train_state_free(train_state *s)
{
    if (s->job.running) {
        mn_err ignored;
        job_join(&s->job, &ignored); /* already failing: keep the first error */
    }
    model_free(s->job.snap);
    free(s->order);
    free(s->rows);
    free(s->y);
    free(s->x);
    model_ws_free(s->ews);
    model_ws_free(s->ws);
    ds_packed_free(&s->pval);
    ds_packed_free(&s->ptrain);
    optim_free(&s->opt);
    model_free(s->m);
    free(s->val_idx);
    free(s->train_idx);
}

/* Set-up: the split, the model (new, or from the checkpoint resume), the
 * packed splits, workspaces and buffers, the epoch order and period at
 * the starting step, and the period-end job. s must be zeroed; on failure
 * what was made stays in s for train_state_free. */
static int train_setup(train_state *s, const train_params *pin,
                       const ds_dataset *d, const uint8_t *resume,
                       size_t resume_len, const train_hooks *hooks,
                       train_result *out, mn_err *err)
{
    train_params *p = &s->p;
    *p = *pin;
    s->d = d;
    s->hooks = hooks;
    if (train_check(p, d, err)) return -1;
    if (ds_split(d, p->examples, p->validation_examples, p->seed,
                 &s->train_idx, &s->n_train, &s->val_idx, &s->n_val, err))
        return -1;
    if (resume) {
        if (ckpt_decode(resume, resume_len, 1, &s->m, &s->opt, &s->step,
                        &s->rng, err))
            return -1;
        if (!model_arch_equal(&s->m->arch, &p->arch) ||
            s->opt.kind != p->optimizer || s->step > p->steps)
            return mn_errf(err, "checkpoint does not match the run's parameters");
    } else {
        s->m = model_new(&p->arch, 1, err);
        if (!s->m) return -1;
        rng_seed(&s->rng, rng_mix(p->seed, 0));
        model_init(s->m, &s->rng);
        if (optim_init(&s->opt, p->optimizer, p->learning_rate,
                       s->m->n_params, err))
            return -1;
    }
    /* mostly-zero images: pack both splits once, for every batch and every
     * evaluation; dense data keeps the gather-and-sgemm path */
    int pr = ds_packed_new(&s->ptrain, d, s->train_idx, s->n_train,
                           MODEL_SPARSE_MAX_DENSITY, err);
    if (pr < 0) return -1;
    if (pr == 0) {
        if (ds_packed_new(&s->pval, d, s->val_idx, s->n_val, 1.0, err))
            return -1;
        s->packed = 1;
    }
    s->ws = model_ws_new(&p->arch, (int)p->batch_size, err);
    if (!s->ws) return -1;
    uint32_t n_eval = s->n_train > s->n_val ? s->n_train : s->n_val;
    s->ews = model_ws_new(&p->arch,
                          n_eval < EVAL_BATCH ? (int)n_eval : EVAL_BATCH, err);
    if (!s->ews) return -1;
    s->x = malloc(sizeof(float) * p->batch_size * (size_t)p->arch.n_in);
    s->y = malloc(p->batch_size);
    s->rows = malloc(sizeof(uint32_t) * p->batch_size);
    s->order = malloc(sizeof(uint32_t) * s->n_train);
    s->job.snap = model_new(&p->arch, 0, err);
    if (!s->job.snap) return -1;
    if (!s->x || !s->y || !s->rows || !s->order)
        return mn_errf(err, "out of memory for the training buffers");

    s->epoch = s->step * p->batch_size / s->n_train;
    epoch_order(s->order, s->n_train, p->seed, s->epoch);
    while (s->period < p->periods && period_end(p, s->period) <= s->step)
        s->period++;

    s->t_last = now_seconds();
    period_job *j = &s->job;
    j->ews = s->ews;
    j->d = d;
    j->ptrain = s->packed ? &s->ptrain : NULL;
    j->pval = s->packed ? &s->pval : NULL;
    j->train_idx = s->train_idx;
    j->val_idx = s->val_idx;
    j->n_train = s->n_train;
    j->n_val = s->n_val;
    j->hooks = hooks;
    j->threads = hooks ? hooks->threads : NULL;
    j->t_last = &s->t_last;
    j->out = out;
    return 0;
}

/* The step's batch: positions [step*B, step*B+B) of the epoch-order
 * stream, as positions in the packed split or dataset rows, into s->rows
 * (reshuffling at each new epoch). */
static void next_batch(train_state *s)
{
    uint64_t B = s->p.batch_size;
    for (uint64_t i = 0; i < B; i++) {
        uint64_t pos = s->step * B + i;
        uint64_t e = pos / s->n_train;
        if (e != s->epoch) {
            s->epoch = e;
            epoch_order(s->order, s->n_train, s->p.seed, s->epoch);
        }
        uint32_t k = s->order[pos % s->n_train];
        s->rows[i] = s->packed ? k : s->train_idx[k];
    }
}

/* A stop raised (why): waits for the running period end, hands the
 * checkpoint at this step to on_stop, and records why. */
static int train_stop(train_state *s, int why, train_result *out,
                      mn_err *err)
{
    if (job_join(&s->job, err)) return -1;
    if (s->hooks->on_stop) {
        uint8_t *ck = NULL;
        size_t ck_len = 0;
        if (ckpt_encode(s->m, &s->opt, s->step, &s->rng, &ck, &ck_len, err))
            return -1;
        int rc = s->hooks->on_stop(s->hooks->ctx, why, (uint32_t)s->step, ck,
                                   ck_len, err);
        free(ck);
        if (rc) return -1;
    }
    out->stopped = why;
    return 0;
}

/* The step loop, to the last step or a stop: each step trains one batch,
 * reports progress and, at a period's end, starts that period's job. */
static int train_steps(train_state *s, train_result *out, mn_err *err)
{
    const train_params *p = &s->p;
    const train_hooks *hooks = s->hooks;
    atomic_int *stop = hooks ? hooks->stop : NULL;
    while (s->step < p->steps) {
        int why = stop ? atomic_load_explicit(stop, memory_order_relaxed) : 0;
        if (why != TRAIN_RUN) return train_stop(s, why, out, err);
        next_batch(s);
        double loss = train_step(s->m, s->ws, &s->opt, s->d,
                                 s->packed ? &s->ptrain : NULL, s->rows, s->x,
                                 s->y, (int)p->batch_size, p->clip_norm,
                                 &s->rng);
        if (!isfinite(loss))
            return mn_errf(err, "training diverged: the loss is %s at step "
                           "%llu (try a lower learning_rate or a clip_norm)",
                           isnan(loss) ? "NaN" : "infinite",
                           (unsigned long long)s->step + 1);
        s->step++;
        if (hooks && hooks->on_progress)
            hooks->on_progress(hooks->ctx, (uint32_t)s->step, s->period);

        if (s->step == period_end(p, s->period)) {
            /* the previous period's end must be finished (and stored)
             * before this one starts: one job at a time, in order */
            if (job_join(&s->job, err)) return -1;
            s->job.period = s->period;
            s->job.step = (uint32_t)s->step;
            if (job_start(&s->job, s->m, &s->opt, &s->rng, err)) return -1;
            s->period++;
        }
    }
    return 0;
}

/* The finish after the last step: waits for the last period's end,
 * evaluates once if no period ended in this call, and hands over an
 * inference-only copy of the trained parameters. */
static int train_finish(train_state *s, train_result *out, mn_err *err)
{
    if (job_join(&s->job, err)) return -1;
    if (out->n_periods == 0) {
        /* resumed exactly at the end: evaluate once for the final figures */
        if (split_eval(&s->job, s->m, 0, &out->validation, err)) return -1;
    }
    out->model = model_new(&s->p.arch, 0, err);
    if (!out->model) return -1;
    memcpy(out->model->params, s->m->params, sizeof(float) * s->m->n_params);
    return 0;
}

int train_run(const train_params *pin, const ds_dataset *d,
              const uint8_t *resume, size_t resume_len,
              const train_hooks *hooks, train_result *out, mn_err *err)
{
    int rc = -1;
    train_state s;
    memset(&s, 0, sizeof s);
    memset(out, 0, sizeof *out);
    /* the trainer counts in the bound whatever the count: the pool, not
     * the bound, decides how many runs train */
    train_threads *threads = hooks ? hooks->threads : NULL;
    if (threads) atomic_fetch_add(&threads->busy, 1);
    if (train_setup(&s, pin, d, resume, resume_len, hooks, out, err) ||
        train_steps(&s, out, err))
        goto done;
    if (!out->stopped && train_finish(&s, out, err)) goto done;
    rc = 0;
done:
    train_state_free(&s);    /* joins a helper still running */
    if (threads) threads_put(threads);
    return rc;
}

void train_result_free(train_result *r)
{
    model_free(r->model);
    r->model = NULL;
}
