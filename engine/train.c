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
    if (nn_arch_check(&p->arch, err)) return -1;
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
    size_t n = nn_arch_param_count(&p->arch);
    size_t floats = 2 * n + optim_state_count(p->optimizer, n);
    size_t ckpt = 4 * (n + optim_state_count(p->optimizer, n)) + 256;
    uint32_t n_train = p->examples - p->validation_examples;
    int eval_b = EVAL_BATCH;
    return 4 * floats + 2 * ckpt + 4 * n /* final model */ +
           4 * n /* the parameters' snapshot a period end evaluates */ +
           nn_ws_bytes(&p->arch, (int)p->batch_size) +
           nn_ws_bytes(&p->arch, eval_b) +
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

double train_step(nn_model *m, nn_ws *ws, optim *opt, const ds_dataset *d,
                  const ds_packed *packed, const uint32_t *rows, float *x,
                  uint8_t *y, int B, float clip_norm, rng_state *rng)
{
    double loss;
    if (packed) {
        ds_packed_gather(packed, rows, B, ws->sp_rowptr, ws->sp_idx,
                         ws->sp_val, y);
        loss = nn_forward_csr(m, ws, ws->sp_rowptr, ws->sp_idx, ws->sp_val, y,
                              B, 1, rng);
    } else {
        loss = eval_forward(m, ws, d, rows, x, y, B, 1, rng);
    }
    if (!isfinite(loss)) return loss;
    nn_backward(m, ws, y, B);
    double norm = optim_global_norm(m->grads, m->n_params);
    optim_step(opt, m->params, m->grads, optim_clip_factor(norm, clip_norm));
    return loss;
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
    nn_model *snap;             /* parameters at the period's end, owned */
    nn_ws *ews;                 /* evaluation workspace, owned by train_run */
    const ds_dataset *d;
    const ds_packed *ptrain, *pval; /* NULL when the splits are not packed */
    const uint32_t *train_idx, *val_idx;
    uint32_t n_train, n_val;
    uint32_t period;            /* 0-based */
    uint32_t step;
    uint8_t *ck;                /* checkpoint at step (owned), or NULL */
    size_t ck_len;
    const train_hooks *hooks;
    double *t_last;             /* when the previous period's end finished */
    train_result *out;
    /* what it gives */
    int rc;
    mn_err err;
} period_job;

/* Evaluates m on the training split (train_split 1) or the validation
 * split described by j, packed or not, with j's workspace. */
static int split_eval(const period_job *j, const nn_model *m, int train_split,
                      eval_result *r, mn_err *err)
{
    if (j->ptrain)
        return eval_run_packed(m, train_split ? j->ptrain : j->pval, j->ews,
                               r, err);
    return eval_run(m, j->d, train_split ? j->train_idx : j->val_idx,
                    train_split ? j->n_train : j->n_val, r, err);
}

static void *period_finish(void *arg)
{
    period_job *j = arg;
    eval_result tr, va;
    j->rc = -1;
    if (split_eval(j, j->snap, 1, &tr, &j->err) ||
        split_eval(j, j->snap, 0, &va, &j->err))
        return NULL;
    if (!isfinite(tr.log_loss) || !isfinite(va.log_loss)) {
        mn_errf(&j->err, "training diverged: log loss is not finite after "
                "period %u", j->period + 1);
        return NULL;
    }
    double t1 = now_seconds();
    train_period *tp = &j->out->periods[j->out->n_periods++];
    tp->period = j->period + 1;
    tp->step = j->step;
    tp->train_log_loss = tr.log_loss;
    tp->validation_log_loss = va.log_loss;
    tp->validation_accuracy = va.accuracy;
    tp->seconds = t1 - *j->t_last;
    *j->t_last = t1;
    j->out->validation = va;
    if (j->hooks && j->hooks->on_period &&
        j->hooks->on_period(j->hooks->ctx, tp, &va, j->ck, j->ck_len, &j->err))
        return NULL;
    j->rc = 0;
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
 * parameters and, with an on_period hook, the checkpoint. Finishes it on
 * the calling thread if no thread can be started. */
static int job_start(period_job *j, const nn_model *m, const optim *opt,
                     const rng_state *rng, mn_err *err)
{
    memcpy(j->snap->params, m->params, sizeof(float) * m->n_params);
    if (j->hooks && j->hooks->on_period &&
        ckpt_encode(m, opt, j->step, rng, &j->ck, &j->ck_len, err))
        return -1;
    j->err.msg[0] = 0;
    if (pthread_create(&j->thread, NULL, period_finish, j) == 0) {
        j->running = 1;
        return 0;
    }
    period_finish(j);
    return job_collect(j, err);
}

static int same_arch(const nn_arch *a, const nn_arch *b)
{
    if (a->n_in != b->n_in || a->n_out != b->n_out ||
        a->n_hidden != b->n_hidden || a->dropout != b->dropout)
        return 0;
    for (int l = 0; l < a->n_hidden; l++)
        if (a->hidden[l] != b->hidden[l]) return 0;
    return 1;
}

static uint32_t period_end(const train_params *p, uint32_t period)
{
    return (uint32_t)((uint64_t)p->steps * (period + 1) / p->periods);
}

int train_run(const train_params *pin, const ds_dataset *d,
              const uint8_t *resume, size_t resume_len,
              const train_hooks *hooks, train_result *out, mn_err *err)
{
    int rc = -1;
    train_params p = *pin;
    uint32_t *train_idx = NULL, *val_idx = NULL, *order = NULL, *rows = NULL;
    uint32_t n_train = 0, n_val = 0;
    nn_model *m = NULL;
    nn_ws *ws = NULL, *ews = NULL;
    optim opt = {0};
    ds_packed ptrain = {0}, pval = {0};
    int packed = 0;
    float *x = NULL;
    uint8_t *y = NULL, *ck = NULL;
    size_t ck_len = 0;
    rng_state rng;
    uint64_t step = 0;
    period_job job = {0};
    atomic_int *stop = hooks ? hooks->stop : NULL;

    memset(out, 0, sizeof *out);
    if (train_check(&p, d, err)) return -1;
    if (ds_split(d, p.examples, p.validation_examples, p.seed, &train_idx,
                 &n_train, &val_idx, &n_val, err))
        return -1;

    if (resume) {
        if (ckpt_decode(resume, resume_len, 1, &m, &opt, &step, &rng, err))
            goto done;
        if (!same_arch(&m->arch, &p.arch) || opt.kind != p.optimizer ||
            step > p.steps) {
            mn_errf(err, "checkpoint does not match the run's parameters");
            goto done;
        }
    } else {
        m = nn_model_new(&p.arch, 1, err);
        if (!m) goto done;
        rng_seed(&rng, rng_mix(p.seed, 0));
        nn_model_init(m, &rng);
        if (optim_init(&opt, p.optimizer, p.learning_rate, m->n_params, err))
            goto done;
    }
    /* mostly-zero images: pack both splits once, for every batch and every
     * evaluation; dense data keeps the gather-and-sgemm path */
    int pr = ds_packed_new(&ptrain, d, train_idx, n_train,
                           NN_SPARSE_MAX_DENSITY, err);
    if (pr < 0) goto done;
    if (pr == 0) {
        if (ds_packed_new(&pval, d, val_idx, n_val, 1.0, err)) goto done;
        packed = 1;
    }
    ws = nn_ws_new(&p.arch, (int)p.batch_size, err);
    if (!ws) goto done;
    uint32_t n_eval = n_train > n_val ? n_train : n_val;
    ews = nn_ws_new(&p.arch, n_eval < EVAL_BATCH ? (int)n_eval : EVAL_BATCH, err);
    if (!ews) goto done;
    x = malloc(sizeof(float) * p.batch_size * (size_t)p.arch.n_in);
    y = malloc(p.batch_size);
    rows = malloc(sizeof(uint32_t) * p.batch_size);
    order = malloc(sizeof(uint32_t) * n_train);
    job.snap = nn_model_new(&p.arch, 0, err);
    if (!job.snap) goto done;
    if (!x || !y || !rows || !order) {
        mn_errf(err, "out of memory for the training buffers");
        goto done;
    }

    uint64_t B = p.batch_size;
    uint64_t epoch = step * B / n_train;
    epoch_order(order, n_train, p.seed, epoch);
    uint32_t period = 0;
    while (period < p.periods && period_end(&p, period) <= step) period++;

    double t_last = now_seconds();
    job.ews = ews;
    job.d = d;
    job.ptrain = packed ? &ptrain : NULL;
    job.pval = packed ? &pval : NULL;
    job.train_idx = train_idx;
    job.val_idx = val_idx;
    job.n_train = n_train;
    job.n_val = n_val;
    job.hooks = hooks;
    job.t_last = &t_last;
    job.out = out;
    while (step < p.steps) {
        int why = stop ? atomic_load_explicit(stop, memory_order_relaxed) : 0;
        if (why != TRAIN_RUN) {
            if (job_join(&job, err)) goto done;
            if (hooks->on_stop) {
                free(ck);
                ck = NULL;
                if (ckpt_encode(m, &opt, step, &rng, &ck, &ck_len, err)) goto done;
                if (hooks->on_stop(hooks->ctx, why, (uint32_t)step, ck, ck_len, err))
                    goto done;
            }
            out->stopped = why;
            rc = 0;
            goto done;
        }
        /* batch positions [step*B, step*B+B) of the epoch-order stream */
        for (uint64_t i = 0; i < B; i++) {
            uint64_t pos = step * B + i;
            uint64_t e = pos / n_train;
            if (e != epoch) {
                epoch = e;
                epoch_order(order, n_train, p.seed, epoch);
            }
            /* a position in the packed split, or a dataset row */
            rows[i] = packed ? order[pos % n_train]
                             : train_idx[order[pos % n_train]];
        }
        double loss = train_step(m, ws, &opt, d, packed ? &ptrain : NULL,
                                 rows, x, y, (int)B,
                                 p.clip_norm, &rng);
        if (!isfinite(loss)) {
            mn_errf(err, "training diverged: the loss is %s at step %llu "
                    "(try a lower learning_rate or a clip_norm)",
                    isnan(loss) ? "NaN" : "infinite",
                    (unsigned long long)step + 1);
            goto done;
        }
        step++;
        if (hooks && hooks->on_progress)
            hooks->on_progress(hooks->ctx, (uint32_t)step, period);

        if (step == period_end(&p, period)) {
            /* the previous period's end must be finished (and stored)
             * before this one starts: one job at a time, in order */
            if (job_join(&job, err)) goto done;
            job.period = period;
            job.step = (uint32_t)step;
            if (job_start(&job, m, &opt, &rng, err)) goto done;
            period++;
        }
    }
    if (job_join(&job, err)) goto done;
    if (out->n_periods == 0) {
        /* resumed exactly at the end: evaluate once for the final figures */
        if (split_eval(&job, m, 0, &out->validation, err)) goto done;
    }
    /* hand over an inference-only copy of the trained parameters */
    out->model = nn_model_new(&p.arch, 0, err);
    if (!out->model) goto done;
    memcpy(out->model->params, m->params, sizeof(float) * m->n_params);
    rc = 0;
done:
    if (job.running) {
        mn_err ignored;
        job_join(&job, &ignored); /* already failing: keep the first error */
    }
    nn_model_free(job.snap);
    free(ck);
    free(order);
    free(rows);
    free(y);
    free(x);
    nn_ws_free(ews);
    nn_ws_free(ws);
    ds_packed_free(&pval);
    ds_packed_free(&ptrain);
    optim_free(&opt);
    nn_model_free(m);
    free(val_idx);
    free(train_idx);
    return rc;
}

void train_result_free(train_result *r)
{
    nn_model_free(r->model);
    r->model = NULL;
}
