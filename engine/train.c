/* train.c: the period-by-period training loop (see train.h). */
#include "train.h"

#include <math.h>
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
    if (!(p->learning_rate > 0.0f && p->learning_rate <= 100.0f))
        return mn_errf(err, "learning_rate must be in (0, 100]");
    if (!(p->clip_norm >= 0.0f && p->clip_norm <= 1e6f))
        return mn_errf(err, "clip_norm must be in [0, 1e6] (0 = off)");
    if (p->steps < 1 || p->steps > 10000000)
        return mn_errf(err, "steps must be in 1..10000000");
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
    if (p->batch_size < 1 || p->batch_size > 10000 || p->batch_size > n_train)
        return mn_errf(err, "batch_size must be in 1..%u (at most the "
                       "training examples and 10000)",
                       n_train < 10000 ? n_train : 10000);
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
    eval_result tr, va;
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
    if (!x || !y || !rows || !order) {
        mn_errf(err, "out of memory for the training buffers");
        goto done;
    }

    uint64_t B = p.batch_size;
    uint64_t epoch = step * B / n_train;
    epoch_order(order, n_train, p.seed, epoch);
    uint32_t period = 0;
    while (period < p.periods && period_end(&p, period) <= step) period++;

    double t0 = now_seconds();
    while (step < p.steps) {
        int why = stop ? atomic_load_explicit(stop, memory_order_relaxed) : 0;
        if (why != TRAIN_RUN) {
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
            if (packed ? eval_run_packed(m, &ptrain, ews, &tr, err) ||
                             eval_run_packed(m, &pval, ews, &va, err)
                       : eval_run(m, d, train_idx, n_train, &tr, err) ||
                             eval_run(m, d, val_idx, n_val, &va, err))
                goto done;
            if (!isfinite(tr.log_loss) || !isfinite(va.log_loss)) {
                mn_errf(err, "training diverged: log loss is not finite after "
                        "period %u", period + 1);
                goto done;
            }
            double t1 = now_seconds();
            train_period *tp = &out->periods[out->n_periods++];
            tp->period = period + 1;
            tp->step = (uint32_t)step;
            tp->train_log_loss = tr.log_loss;
            tp->validation_log_loss = va.log_loss;
            tp->validation_accuracy = va.accuracy;
            tp->seconds = t1 - t0;
            t0 = t1;
            out->validation = va;
            if (hooks && hooks->on_period) {
                free(ck);
                ck = NULL;
                if (ckpt_encode(m, &opt, step, &rng, &ck, &ck_len, err)) goto done;
                if (hooks->on_period(hooks->ctx, tp, &va, ck, ck_len, err))
                    goto done;
            }
            period++;
        }
    }
    if (out->n_periods == 0) {
        /* resumed exactly at the end: evaluate once for the final figures */
        if (packed ? eval_run_packed(m, &pval, ews, &out->validation, err)
                   : eval_run(m, d, val_idx, n_val, &out->validation, err))
            goto done;
    }
    /* hand over an inference-only copy of the trained parameters */
    out->model = nn_model_new(&p.arch, 0, err);
    if (!out->model) goto done;
    memcpy(out->model->params, m->params, sizeof(float) * m->n_params);
    rc = 0;
done:
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
