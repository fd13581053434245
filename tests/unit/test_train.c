/* test_train.c: the training loop (engine/train.c) and the metrics
 * (engine/eval.c) on real MNIST.
 *
 * Needs the MNIST IDX files: MNISTD_DATA_DIR names the directory holding
 * mnist/ (`make data` fetches them; `make unit` sets the variable). Without
 * it every test here FAILS: these tests are never skipped. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ckpt.h"
#include "engine/cnn.h"
#include "engine/mlp.h"
#include "engine/ds.h"
#include "engine/eval.h"
#include "engine/train.h"
#include "tests/unit/helpers.h"

/* ---- helpers ---- */

static void load_mnist(ds_dataset *d)
{
    th_load(d, "mnist");
    cr_assert_eq(d->n, 60000, "mnist has %u images", d->n);
}

/* The small run of these tests: dnn [20], 200 steps in 2 periods, on the
 * first 2000 images (1500 train, 500 validation). */
static train_params small_params(void)
{
    train_params p = {
        .optimizer = OPTIM_ADAGRAD,
        .learning_rate = 0.05f,
        .clip_norm = 5.0f,
        .steps = 200,
        .batch_size = 30,
        .periods = 2,
        .examples = 2000,
        .validation_examples = 500,
        .seed = 7,
    };
    mlp_arch(&p.arch, 1, (const int[]){20}, 0.0f);
    return p;
}

/* The reference exercise's recipe (engine defaults), seeded. */
static train_params recipe(int dnn)
{
    train_params p = {
        .optimizer = OPTIM_ADAGRAD,
        .learning_rate = dnn ? 0.05f : 0.03f,
        .clip_norm = 5.0f,
        .steps = 1000,
        .batch_size = 30,
        .periods = 10,
        .examples = 10000,
        .validation_examples = 2500,
        .seed = 1,
    };
    mlp_arch(&p.arch, dnn ? 2 : 0, (const int[]){100, 100}, 0.0f);
    return p;
}

/* Runs training that must succeed; returns a new result (free_result). */
static train_result *run_ok(const train_params *p, const ds_dataset *d,
                            const uint8_t *resume, size_t resume_len,
                            const train_hooks *hooks)
{
    train_result *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    mn_err err = {{0}};
    int rc = train_run(p, d, resume, resume_len, hooks, r, &err);
    cr_assert_eq(rc, 0, "train_run failed: %s", err.msg);
    return r;
}

static void free_result(train_result *r)
{
    train_result_free(r);
    free(r);
}

/* Everything but the wall time. */
static void assert_same_period(const train_period *a, const train_period *b)
{
    cr_assert_eq(a->period, b->period);
    cr_assert_eq(a->step, b->step);
    cr_assert(memcmp(&a->train_log_loss, &b->train_log_loss, 8) == 0,
              "period %u train log loss %.17g vs %.17g", a->period,
              a->train_log_loss, b->train_log_loss);
    cr_assert(memcmp(&a->validation_log_loss, &b->validation_log_loss, 8) == 0,
              "period %u validation log loss %.17g vs %.17g", a->period,
              a->validation_log_loss, b->validation_log_loss);
    cr_assert(memcmp(&a->validation_accuracy, &b->validation_accuracy, 8) == 0,
              "period %u validation accuracy %.17g vs %.17g", a->period,
              a->validation_accuracy, b->validation_accuracy);
}

static void assert_same_model(const model *a, const model *b)
{
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_eq(a->n_params, b->n_params);
    size_t diff = 0;
    for (size_t i = 0; i < a->n_params; i++)
        diff += memcmp(&a->params[i], &b->params[i], 4) != 0;
    cr_assert_eq(diff, 0, "%zu of %zu parameters differ", diff, a->n_params);
}

/* ---- determinism ---- */

Test(train, same_seed_is_bit_identical_other_seed_differs)
{
    ds_dataset d;
    load_mnist(&d);
    train_params p = small_params();
    train_result *a = run_ok(&p, &d, NULL, 0, NULL);
    train_result *b = run_ok(&p, &d, NULL, 0, NULL);
    cr_assert_eq(a->n_periods, 2);
    cr_assert_eq(b->n_periods, 2);
    for (uint32_t i = 0; i < a->n_periods; i++)
        assert_same_period(&a->periods[i], &b->periods[i]);
    assert_same_model(a->model, b->model);
    cr_assert(memcmp(a->validation.confusion, b->validation.confusion,
                     sizeof a->validation.confusion) == 0);

    p.seed = 8;
    train_result *c = run_ok(&p, &d, NULL, 0, NULL);
    size_t same = 0;
    for (size_t i = 0; i < a->model->n_params; i++)
        same += a->model->params[i] == c->model->params[i];
    /* the biases of units that never fire may agree; the weights do not */
    cr_assert(same < a->model->n_params / 10,
              "seed 8 reproduced %zu of %zu parameters of seed 7", same,
              a->model->n_params);
    cr_assert(a->periods[1].train_log_loss != c->periods[1].train_log_loss);
    free_result(c);
    free_result(b);
    free_result(a);
    ds_free(&d);
}

/* ---- resume ---- */

typedef struct capture {
    uint32_t want_period; /* copy the checkpoint of this period (1-based) */
    uint8_t *ck;
    size_t ck_len;
    uint32_t calls;
} capture;

static int capture_on_period(void *ctx, const train_period *p,
                             const eval_result *validation,
                             const uint8_t *ckpt, size_t ckpt_len,
                             mn_err *err)
{
    (void)err;
    capture *c = ctx;
    c->calls++;
    cr_assert_eq(p->period, c->calls, "periods reported out of order");
    cr_assert(validation->accuracy == p->validation_accuracy);
    cr_assert(ckpt && ckpt_len > 0, "on_period without a checkpoint");
    if (p->period == c->want_period) {
        c->ck = malloc(ckpt_len); /* the buffer is borrowed: copy it */
        cr_assert_not_null(c->ck);
        memcpy(c->ck, ckpt, ckpt_len);
        c->ck_len = ckpt_len;
    }
    return 0;
}

/* Trains p without interruption while capturing the checkpoint after
 * period `at`, resumes a second run from it, and asserts that the second
 * run ends with the same parameters and reports the same metrics for the
 * remaining periods. */
static void assert_resume_equivalent(const train_params *p, uint32_t at)
{
    ds_dataset d;
    load_mnist(&d);
    capture cap = {.want_period = at};
    train_hooks hooks = {.ctx = &cap, .on_period = capture_on_period};
    train_result *full = run_ok(p, &d, NULL, 0, &hooks);
    cr_assert_eq(full->n_periods, p->periods);
    cr_assert_eq(cap.calls, p->periods);
    cr_assert_not_null(cap.ck, "no checkpoint captured after period %u", at);

    /* the checkpoint is really at the end of period `at` */
    mn_err err = {{0}};
    model *mid = NULL;
    uint64_t step = 0;
    cr_assert_eq(ckpt_decode(cap.ck, cap.ck_len, 0, &mid, NULL, &step, NULL,
                             &err), 0, "%s", err.msg);
    cr_assert_eq(step, full->periods[at - 1].step);

    train_result *res = run_ok(p, &d, cap.ck, cap.ck_len, NULL);
    cr_assert_eq(res->n_periods, p->periods - at,
                 "resumed run reported %u periods", res->n_periods);
    for (uint32_t i = 0; i < res->n_periods; i++)
        assert_same_period(&res->periods[i], &full->periods[at + i]);
    assert_same_model(res->model, full->model);
    cr_assert(memcmp(res->validation.confusion, full->validation.confusion,
                     sizeof res->validation.confusion) == 0,
              "final confusion differs");
    /* and training did happen after the checkpoint */
    cr_assert(memcmp(mid->params, res->model->params,
                     4 * mid->n_params) != 0);

    model_free(mid);
    free_result(res);
    free_result(full);
    free(cap.ck);
    ds_free(&d);
}

Test(train, resume_adagrad_with_dropout_matches_uninterrupted_run)
{
    train_params p = small_params();
    p.arch.dropout = 0.2f;
    p.steps = 210;
    p.periods = 3; /* period 1 ends at step 70: in the middle of an epoch */
    assert_resume_equivalent(&p, 1);
}

Test(train, resume_adam_matches_uninterrupted_run)
{
    train_params p = small_params();
    p.optimizer = OPTIM_ADAM;
    p.learning_rate = 0.001f;
    p.periods = 4; /* period 1 ends at step 50: exactly one epoch (1500) */
    assert_resume_equivalent(&p, 1);
}

Test(train, resume_cnn_with_dropout_matches_uninterrupted_run)
{
    /* the cnn kind through the same loop: conv 4x5 pool 2, conv 4x3
     * "same", dense 16 with dropout, Adam; determinism and resume alike */
    train_params p = small_params();
    cnn_conv conv[] = {{4, 5, 2, 0}, {4, 3, 1, 1}};
    mn_err err = {{0}};
    cr_assert_eq(cnn_arch(&p.arch, 2, conv, 1, (const int[]){16}, 0.2f, &err),
                 0, "%s", err.msg);
    p.optimizer = OPTIM_ADAM;
    p.learning_rate = 0.001f;
    p.steps = 60;
    p.periods = 3;
    assert_resume_equivalent(&p, 1);
}

Test(train, resume_from_the_last_period_reports_final_metrics)
{
    ds_dataset d;
    load_mnist(&d);
    train_params p = small_params();
    capture cap = {.want_period = 2};
    train_hooks hooks = {.ctx = &cap, .on_period = capture_on_period};
    train_result *full = run_ok(&p, &d, NULL, 0, &hooks);
    cr_assert_not_null(cap.ck);
    train_result *res = run_ok(&p, &d, cap.ck, cap.ck_len, NULL);
    cr_assert_eq(res->n_periods, 0);
    assert_same_model(res->model, full->model);
    cr_assert(res->validation.accuracy == full->validation.accuracy);
    cr_assert_eq(res->validation.examples, 500);
    free_result(res);
    free_result(full);
    free(cap.ck);
    ds_free(&d);
}

Test(train, resume_rejects_a_checkpoint_of_other_parameters)
{
    ds_dataset d;
    load_mnist(&d);
    train_params p = small_params();
    capture cap = {.want_period = 1};
    train_hooks hooks = {.ctx = &cap, .on_period = capture_on_period};
    train_result *full = run_ok(&p, &d, NULL, 0, &hooks);
    cr_assert_not_null(cap.ck);

    train_params q = p;
    q.arch.layers[0].size = 21;
    train_result *r = calloc(1, sizeof *r);
    mn_err err = {{0}};
    cr_assert_eq(train_run(&q, &d, cap.ck, cap.ck_len, NULL, r, &err), -1);
    cr_assert(strstr(err.msg, "checkpoint"), "%s", err.msg);
    cr_assert_null(r->model);
    q = p;
    q.optimizer = OPTIM_ADAM;
    cr_assert_eq(train_run(&q, &d, cap.ck, cap.ck_len, NULL, r, &err), -1);
    /* a corrupted checkpoint: an error, not a crash */
    cap.ck[cap.ck_len / 2] ^= 0x40;
    cr_assert_eq(train_run(&p, &d, cap.ck, cap.ck_len, NULL, r, &err), -1);
    cr_assert(strstr(err.msg, "checkpoint"), "%s", err.msg);
    free(r);
    free_result(full);
    free(cap.ck);
    ds_free(&d);
}

/* ---- the stop flag ---- */

typedef struct stopper {
    atomic_int stop;
    uint32_t stop_at;       /* raise the flag after this step */
    int why;                /* with this reason */
    uint32_t last_progress; /* the last step on_progress saw */
    int stop_calls;
    int stop_why;
    uint32_t stop_step;
    uint8_t *ck;
    size_t ck_len;
} stopper;

static void stopper_on_progress(void *ctx, uint32_t step, uint32_t period)
{
    (void)period;
    stopper *s = ctx;
    s->last_progress = step;
    if (step == s->stop_at) atomic_store(&s->stop, s->why);
}

static int stopper_on_stop(void *ctx, int why, uint32_t step,
                           const uint8_t *ckpt, size_t ckpt_len, mn_err *err)
{
    (void)err;
    stopper *s = ctx;
    s->stop_calls++;
    s->stop_why = why;
    s->stop_step = step;
    if (ckpt) {
        s->ck = malloc(ckpt_len);
        cr_assert_not_null(s->ck);
        memcpy(s->ck, ckpt, ckpt_len);
        s->ck_len = ckpt_len;
    }
    return 0;
}

Test(train, cancel_flag_stops_at_the_next_step)
{
    ds_dataset d;
    load_mnist(&d);
    train_params p = small_params();
    stopper s = {.stop_at = 50, .why = TRAIN_CANCEL};
    atomic_init(&s.stop, TRAIN_RUN);
    train_hooks hooks = {.ctx = &s, .on_progress = stopper_on_progress,
                         .on_stop = stopper_on_stop, .stop = &s.stop};
    train_result *r = calloc(1, sizeof *r);
    mn_err err = {{0}};
    cr_assert_eq(train_run(&p, &d, NULL, 0, &hooks, r, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(r->stopped, TRAIN_CANCEL);
    cr_assert_null(r->model, "a stopped run handed out a model");
    cr_assert_eq(r->n_periods, 0);
    cr_assert_eq(s.last_progress, 50, "kept training to step %u",
                 s.last_progress);
    cr_assert_eq(s.stop_calls, 1);
    cr_assert_eq(s.stop_why, TRAIN_CANCEL);
    cr_assert_eq(s.stop_step, 50);
    cr_assert_not_null(s.ck, "on_stop got no checkpoint");

    model *m = NULL;
    optim o = {0};
    uint64_t step = 0;
    cr_assert_eq(ckpt_decode(s.ck, s.ck_len, 0, &m, &o, &step, NULL, &err), 0,
                 "stop checkpoint: %s", err.msg);
    cr_assert_eq(step, 50);
    cr_assert_eq(o.t, 50);
    cr_assert_eq(o.kind, OPTIM_ADAGRAD);
    optim_free(&o);
    model_free(m);
    free(s.ck);
    free_result(r);
    ds_free(&d);
}

Test(train, shutdown_checkpoint_resumes_to_the_same_model)
{
    ds_dataset d;
    load_mnist(&d);
    train_params p = small_params();
    p.arch.dropout = 0.3f;
    train_result *full = run_ok(&p, &d, NULL, 0, NULL);

    stopper s = {.stop_at = 37, .why = TRAIN_SHUTDOWN};
    atomic_init(&s.stop, TRAIN_RUN);
    train_hooks hooks = {.ctx = &s, .on_progress = stopper_on_progress,
                         .on_stop = stopper_on_stop, .stop = &s.stop};
    train_result *part = run_ok(&p, &d, NULL, 0, &hooks);
    cr_assert_eq(part->stopped, TRAIN_SHUTDOWN);
    cr_assert_eq(s.stop_step, 37);
    cr_assert_not_null(s.ck);

    train_result *res = run_ok(&p, &d, s.ck, s.ck_len, NULL);
    cr_assert_eq(res->stopped, 0);
    cr_assert_eq(res->n_periods, 2);
    for (uint32_t i = 0; i < 2; i++)
        assert_same_period(&res->periods[i], &full->periods[i]);
    assert_same_model(res->model, full->model);
    free_result(res);
    free_result(part);
    free_result(full);
    free(s.ck);
    ds_free(&d);
}

Test(train, flag_raised_before_start_stops_at_step_0)
{
    ds_dataset d;
    load_mnist(&d);
    train_params p = small_params();
    stopper s = {.stop_at = 0};
    atomic_init(&s.stop, TRAIN_SHUTDOWN);
    train_hooks hooks = {.ctx = &s, .on_progress = stopper_on_progress,
                         .on_stop = stopper_on_stop, .stop = &s.stop};
    train_result *r = run_ok(&p, &d, NULL, 0, &hooks);
    cr_assert_eq(r->stopped, TRAIN_SHUTDOWN);
    cr_assert_null(r->model);
    cr_assert_eq(s.last_progress, 0);
    cr_assert_eq(s.stop_calls, 1);
    cr_assert_eq(s.stop_step, 0);
    free(s.ck);
    free_result(r);
    ds_free(&d);
}

/* ---- failures ---- */

static int failing_on_period(void *ctx, const train_period *p,
                             const eval_result *validation,
                             const uint8_t *ckpt, size_t ckpt_len,
                             mn_err *err)
{
    (void)ctx;
    (void)validation;
    (void)ckpt;
    (void)ckpt_len;
    return mn_errf(err, "store full at period %u", p->period);
}

Test(train, hook_error_fails_the_run_with_its_message)
{
    ds_dataset d;
    load_mnist(&d);
    train_params p = small_params();
    train_hooks hooks = {.on_period = failing_on_period};
    train_result *r = calloc(1, sizeof *r);
    mn_err err = {{0}};
    cr_assert_eq(train_run(&p, &d, NULL, 0, &hooks, r, &err), -1);
    cr_assert_str_eq(err.msg, "store full at period 1");
    cr_assert_null(r->model);
    free(r);
    ds_free(&d);
}

Test(train, divergence_is_an_error)
{
    ds_dataset d;
    load_mnist(&d);
    /* plain SGD on the summed loss, no clipping, the largest allowed rate:
     * the ReLU network's weights blow up within a few steps */
    train_params p = small_params();
    mlp_arch(&p.arch, 2, (const int[]){100, 100}, 0.0f);
    p.optimizer = OPTIM_SGD;
    p.learning_rate = 100.0f;
    p.clip_norm = 0.0f;
    train_result *r = calloc(1, sizeof *r);
    mn_err err = {{0}};
    cr_assert_eq(train_run(&p, &d, NULL, 0, NULL, r, &err), -1,
                 "lr 100 without clipping did not diverge");
    cr_assert(strstr(err.msg, "diverged"), "message: %s", err.msg);
    cr_assert_null(r->model);
    free(r);
    ds_free(&d);
}

/* ---- parameter checks ---- */

/* Asserts that train_check rejects q with a message that begins with
 * `field`, and that train_run does too. */
static void assert_rejected(const train_params *q, const ds_dataset *d,
                            const char *field)
{
    train_params c = *q;
    mn_err err = {{0}};
    cr_assert_eq(train_check(&c, d, &err), -1, "accepted a bad %s", field);
    cr_assert(strncmp(err.msg, field, strlen(field)) == 0 &&
                  !(err.msg[strlen(field)] == '_'),
              "error for %s does not name it: \"%s\"", field, err.msg);
    train_result *r = calloc(1, sizeof *r);
    mn_err err2 = {{0}};
    cr_assert_eq(train_run(q, d, NULL, 0, NULL, r, &err2), -1);
    cr_assert_str_eq(err2.msg, err.msg);
    free(r);
}

Test(train, check_names_the_bad_field)
{
    ds_dataset d;
    load_mnist(&d);
    train_params ok = small_params(), q;
    mn_err err = {{0}};
    q = ok;
    cr_assert_eq(train_check(&q, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(q.arch.n_in, 784);
    cr_assert_eq(q.arch.n_out, 10);
    q = ok;
    q.learning_rate = 100.0f;
    cr_assert_eq(train_check(&q, &d, &err), 0, "lr 100 rejected: %s", err.msg);

    q = ok, q.batch_size = 1501; /* 2000 - 500 training examples */
    assert_rejected(&q, &d, "batch_size");
    q = ok, q.batch_size = 0;
    assert_rejected(&q, &d, "batch_size");
    q = ok, q.periods = q.steps + 1;
    assert_rejected(&q, &d, "periods");
    q = ok, q.periods = 0;
    assert_rejected(&q, &d, "periods");
    q = ok, q.validation_examples = q.examples;
    assert_rejected(&q, &d, "validation_examples");
    q = ok, q.validation_examples = 0;
    assert_rejected(&q, &d, "validation_examples");
    q = ok, q.examples = 60001;
    assert_rejected(&q, &d, "examples");
    q = ok, q.steps = 0, q.periods = 1;
    assert_rejected(&q, &d, "steps");
    q = ok, q.learning_rate = 0.0f;
    assert_rejected(&q, &d, "learning_rate");
    q = ok, q.learning_rate = 100.5f;
    assert_rejected(&q, &d, "learning_rate");
    q = ok, q.learning_rate = NAN;
    assert_rejected(&q, &d, "learning_rate");
    q = ok, q.clip_norm = -1.0f;
    assert_rejected(&q, &d, "clip_norm");
    q = ok, q.clip_norm = NAN;
    assert_rejected(&q, &d, "clip_norm");
    q = ok, q.arch.dropout = 1.0f;
    assert_rejected(&q, &d, "dropout");
    q = ok, q.arch.layers[0].size = 0;
    assert_rejected(&q, &d, "hidden_units");
    q = ok, q.arch.n_layers = MODEL_MAX_LAYERS + 1;
    assert_rejected(&q, &d, "hidden_units");
    ds_free(&d);
}

/* ---- the reference recipes ---- */

static void assert_recipe(int dnn, double min_accuracy, double min_test)
{
    ds_dataset d, t;
    load_mnist(&d);
    train_params p = recipe(dnn);
    train_result *r = run_ok(&p, &d, NULL, 0, NULL);
    cr_assert_eq(r->stopped, 0);
    cr_assert_eq(r->n_periods, 10, "%u periods reported", r->n_periods);
    for (uint32_t i = 0; i < 10; i++) {
        const train_period *tp = &r->periods[i];
        cr_assert_eq(tp->period, i + 1);
        cr_assert_eq(tp->step, 100 * (i + 1));
        cr_assert(isfinite(tp->train_log_loss) && tp->train_log_loss > 0);
        cr_assert(isfinite(tp->validation_log_loss) &&
                  tp->validation_log_loss > 0);
        cr_assert(tp->seconds >= 0);
        cr_log_info("%s period %u: train %.4f validation %.4f accuracy %.4f",
                    dnn ? "dnn" : "linear", tp->period, tp->train_log_loss,
                    tp->validation_log_loss, tp->validation_accuracy);
    }
    const train_period *first = &r->periods[0], *last = &r->periods[9];
    cr_assert(last->validation_log_loss < first->validation_log_loss,
              "validation log loss rose: %.4f -> %.4f",
              first->validation_log_loss, last->validation_log_loss);
    cr_assert(last->train_log_loss < first->train_log_loss);
    cr_assert(last->validation_accuracy >= min_accuracy,
              "%s validation accuracy %.4f < %.2f", dnn ? "dnn" : "linear",
              last->validation_accuracy, min_accuracy);
    cr_assert_eq(r->validation.examples, 2500);
    cr_assert(r->validation.accuracy == last->validation_accuracy);
    cr_assert(r->validation.log_loss == last->validation_log_loss);
    cr_assert_not_null(r->model);
    cr_assert_null(r->model->grads);

    /* held-out test set */
    th_load(&t, "mnist-test");
    eval_result te;
    mn_err err = {{0}};
    cr_assert_eq(eval_run(r->model, &t, NULL, t.n, &te, &err), 0, "%s",
                 err.msg);
    cr_log_info("%s test accuracy %.4f", dnn ? "dnn" : "linear", te.accuracy);
    cr_assert(te.accuracy >= min_test, "%s test accuracy %.4f < %.2f",
              dnn ? "dnn" : "linear", te.accuracy, min_test);
    ds_free(&t);
    free_result(r);
    ds_free(&d);
}

Test(train, linear_recipe_reaches_0_89, .timeout = 600)
{
    assert_recipe(0, 0.89, 0.88);
}

Test(train, dnn_recipe_reaches_0_94, .timeout = 600)
{
    assert_recipe(1, 0.94, 0.93);
}

/* ---- eval ---- */

Test(train, eval_confusion_accuracy_and_log_loss_agree)
{
    ds_dataset d, t;
    load_mnist(&d);
    train_params p = small_params();
    train_result *r = run_ok(&p, &d, NULL, 0, NULL);
    th_load(&t, "mnist-test");

    /* all 10,000 test images (ten full batches) */
    eval_result e;
    mn_err err = {{0}};
    cr_assert_eq(eval_run(r->model, &t, NULL, t.n, &e, &err), 0, "%s",
                 err.msg);
    uint64_t sum = 0, diag = 0, row_sum[DS_CLASSES] = {0};
    for (int i = 0; i < DS_CLASSES; i++)
        for (int j = 0; j < DS_CLASSES; j++) {
            sum += e.confusion[i][j];
            row_sum[i] += e.confusion[i][j];
            if (i == j) diag += e.confusion[i][j];
        }
    cr_assert_eq(e.examples, t.n);
    cr_assert_eq(sum, t.n, "confusion counts sum to %llu",
                 (unsigned long long)sum);
    cr_assert_float_eq(e.accuracy, (double)diag / t.n, 1e-12);
    cr_assert(e.accuracy > 0.5, "accuracy %.3f after training", e.accuracy);
    /* rows are true labels */
    uint64_t label_count[DS_CLASSES] = {0};
    for (uint32_t i = 0; i < t.n; i++) label_count[t.labels[i]]++;
    for (int i = 0; i < DS_CLASSES; i++)
        cr_assert_eq(row_sum[i], label_count[i], "row %d", i);

    double norm[DS_CLASSES][DS_CLASSES];
    eval_normalize(e.confusion, norm);
    for (int i = 0; i < DS_CLASSES; i++) {
        double s = 0.0;
        for (int j = 0; j < DS_CLASSES; j++) {
            cr_assert(norm[i][j] >= 0.0 && norm[i][j] <= 1.0);
            s += norm[i][j];
        }
        cr_assert(fabs(s - 1.0) < 1e-12, "normalised row %d sums to %.15g", i,
                  s);
    }

    /* a scattered subset of 2345 rows (batches 1000, 1000, 345) against a
     * one-example-at-a-time computation */
    enum { N = 2345 };
    uint32_t *idx = malloc(sizeof(uint32_t) * N);
    for (uint32_t i = 0; i < N; i++) idx[i] = (i * 7919u) % t.n;
    cr_assert_eq(eval_run(r->model, &t, idx, N, &e, &err), 0, "%s", err.msg);
    model_ws *ws = model_ws_new(&r->model->arch, 1, &err);
    cr_assert_not_null(ws);
    float x[DS_PIXELS];
    uint8_t y;
    double loss = 0.0;
    uint32_t correct = 0;
    for (uint32_t i = 0; i < N; i++) {
        ds_gather(&t, &idx[i], 1, x, &y);
        loss += model_forward(r->model, ws, x, &y, 1, 0, NULL);
        correct += eval_argmax(ws->probs, 10) == y;
    }
    cr_assert_eq(e.examples, N);
    cr_assert(fabs(e.log_loss - loss / N) < 1e-6 * (loss / N),
              "eval log loss %.9g, per-example %.9g", e.log_loss, loss / N);
    cr_assert_float_eq(e.accuracy, (double)correct / N, 1e-12);

    /* nothing to evaluate, or a model of the wrong width: errors */
    cr_assert_eq(eval_run(r->model, &t, NULL, 0, &e, &err), -1);
    model_arch small = {.n_in = 100, .n_out = 10};
    mlp_arch(&small, 0, NULL, 0.0f);
    model *wrong = model_new(&small, 0, &err);
    cr_assert_eq(eval_run(wrong, &t, NULL, 10, &e, &err), -1);
    cr_assert(strstr(err.msg, "784"), "%s", err.msg);

    model_free(wrong);
    model_ws_free(ws);
    free(idx);
    ds_free(&t);
    free_result(r);
    ds_free(&d);
}

Test(train, eval_normalize_and_argmax)
{
    uint32_t counts[DS_CLASSES][DS_CLASSES] = {{0}};
    counts[0][0] = 3;
    counts[0][5] = 1;
    counts[9][9] = 7;
    double norm[DS_CLASSES][DS_CLASSES];
    eval_normalize(counts, norm);
    cr_assert_float_eq(norm[0][0], 0.75, 1e-15);
    cr_assert_float_eq(norm[0][5], 0.25, 1e-15);
    cr_assert_float_eq(norm[9][9], 1.0, 1e-15);
    for (int j = 0; j < DS_CLASSES; j++)
        cr_assert(norm[4][j] == 0.0, "an empty row is not all zeros");

    float p[5] = {0.1f, 0.3f, 0.05f, 0.3f, 0.25f};
    cr_assert_eq(eval_argmax(p, 5), 1, "ties go to the first");
    float q[3] = {0.2f, 0.1f, 0.7f};
    cr_assert_eq(eval_argmax(q, 3), 2);
}
