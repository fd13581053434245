/* test_train_threads.c: the bound on the runs' compute threads
 * (train_threads, engine/train.h DESIGN (cores)): where period-end
 * evaluations run under it, that the store hook stays off the trainer,
 * that the count never passes the bound, and that where the evaluations
 * run changes no number.
 *
 * Needs the MNIST IDX files (MNISTD_DATA_DIR, as `make unit` sets it);
 * without them every test here FAILS. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ds.h"
#include "engine/mlp.h"
#include "engine/train.h"
#include "tests/unit/helpers.h"

/* dnn [20], 200 steps in 4 periods on the first 2000 images. */
static train_params small_params(void)
{
    train_params p = {
        .optimizer = OPTIM_ADAGRAD,
        .learning_rate = 0.05f,
        .clip_norm = 5.0f,
        .steps = 200,
        .batch_size = 30,
        .periods = 4,
        .examples = 2000,
        .validation_examples = 500,
        .seed = 11,
    };
    mlp_arch(&p.arch, 1, (const int[]){20}, 0.0f);
    return p;
}

/* What the hooks saw: on_period's calls, how many on the training
 * thread, the largest count of the bound at any step, and the last
 * checkpoint. */
typedef struct seen {
    pthread_t trainer;
    train_threads *threads;
    int calls, on_trainer;
    unsigned max_busy;
    uint8_t *ck;
    size_t ck_len;
} seen;

static void seeing_on_progress(void *ctx, uint32_t step, uint32_t period)
{
    (void)step;
    (void)period;
    seen *s = ctx;
    if (s->threads) {
        unsigned b = train_threads_busy(s->threads);
        if (b > s->max_busy) s->max_busy = b;
    }
}

static int seeing_on_period(void *ctx, const train_period *p,
                            const eval_result *validation, const uint8_t *ckpt,
                            size_t ckpt_len, mn_err *err)
{
    (void)p;
    (void)validation;
    (void)err;
    seen *s = ctx;
    s->calls++;
    s->on_trainer += pthread_equal(pthread_self(), s->trainer) != 0;
    free(s->ck);
    s->ck = malloc(ckpt_len);
    cr_assert_not_null(s->ck);
    memcpy(s->ck, ckpt, ckpt_len);
    s->ck_len = ckpt_len;
    return 0;
}

/* Trains small_params() on d under bound t (NULL: none) on this thread;
 * fills *s and returns the result (caller frees). */
static train_result *train_seen(const ds_dataset *d, train_threads *t, seen *s)
{
    memset(s, 0, sizeof *s);
    s->trainer = pthread_self();
    s->threads = t;
    train_hooks hooks = {.ctx = s, .on_progress = seeing_on_progress,
                         .on_period = seeing_on_period, .threads = t};
    train_params p = small_params();
    train_result *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    mn_err err = {{0}};
    cr_assert_eq(train_run(&p, d, NULL, 0, &hooks, r, &err), 0, "%s", err.msg);
    cr_assert_eq(s->calls, 4);
    return r;
}

static void free_seen(train_result *r, seen *s)
{
    train_result_free(r);
    free(r);
    free(s->ck);
}

Test(train_threads, a_bound_of_one_core_evaluates_on_the_trainer)
{
    ds_dataset d;
    th_load(&d, "mnist");
    mn_err err = {{0}};
    train_threads *t = train_threads_new(1, &err);
    cr_assert_not_null(t, "%s", err.msg);
    seen s;
    train_result *r = train_seen(&d, t, &s);
    uint64_t on_helper, on_trainer;
    train_threads_evaluations(t, &on_helper, &on_trainer);
    cr_assert_eq(on_trainer, 4, "%llu of 4 evaluations on the trainer",
                 (unsigned long long)on_trainer);
    cr_assert_eq(on_helper, 0);
    /* the store hook still runs off the trainer */
    cr_assert_eq(s.on_trainer, 0, "%d of 4 on_period calls on the trainer",
                 s.on_trainer);
    cr_assert_eq(s.max_busy, 1, "the trainer alone counts: %u", s.max_busy);
    cr_assert_eq(train_threads_busy(t), 0, "the count goes back to 0");
    free_seen(r, &s);
    train_threads_free(t);
    ds_free(&d);
}

Test(train_threads, a_bound_with_a_free_core_evaluates_on_helpers)
{
    ds_dataset d;
    th_load(&d, "mnist");
    mn_err err = {{0}};
    train_threads *t = train_threads_new(2, &err);
    cr_assert_not_null(t, "%s", err.msg);
    seen s;
    train_result *r = train_seen(&d, t, &s);
    uint64_t on_helper, on_trainer;
    train_threads_evaluations(t, &on_helper, &on_trainer);
    cr_assert_eq(on_helper, 4, "%llu of 4 evaluations on a helper",
                 (unsigned long long)on_helper);
    cr_assert_eq(on_trainer, 0);
    cr_assert_eq(s.on_trainer, 0, "%d of 4 on_period calls on the trainer",
                 s.on_trainer);
    cr_assert_leq(s.max_busy, 2, "trainer and helper count: %u", s.max_busy);
    cr_assert_eq(train_threads_busy(t), 0, "the count goes back to 0");
    free_seen(r, &s);
    train_threads_free(t);
    ds_free(&d);
}

Test(train_threads, where_a_period_end_runs_changes_no_number)
{
    ds_dataset d;
    th_load(&d, "mnist");
    mn_err err = {{0}};
    train_threads *one = train_threads_new(1, &err);
    cr_assert_not_null(one, "%s", err.msg);
    seen a, b;
    train_result *ra = train_seen(&d, one, &a);   /* on the trainer */
    train_result *rb = train_seen(&d, NULL, &b);  /* on helpers */
    uint64_t on_helper, on_trainer;
    train_threads_evaluations(one, &on_helper, &on_trainer);
    cr_assert_eq(on_trainer, 4);
    for (uint32_t i = 0; i < 4; i++) {
        const train_period *x = &ra->periods[i], *y = &rb->periods[i];
        cr_assert_eq(x->step, y->step);
        cr_assert(memcmp(&x->train_log_loss, &y->train_log_loss, 8) == 0);
        cr_assert(memcmp(&x->validation_log_loss, &y->validation_log_loss,
                         8) == 0);
        cr_assert(memcmp(&x->validation_accuracy, &y->validation_accuracy,
                         8) == 0);
    }
    cr_assert_eq(a.ck_len, b.ck_len);
    cr_assert(memcmp(a.ck, b.ck, a.ck_len) == 0, "the checkpoints differ");
    cr_assert_eq(ra->model->n_params, rb->model->n_params);
    cr_assert(memcmp(ra->model->params, rb->model->params,
                     sizeof(float) * ra->model->n_params) == 0,
              "the trained parameters differ");
    free_seen(ra, &a);
    free_seen(rb, &b);
    train_threads_free(one);
    ds_free(&d);
}

/* Two runs side by side under a bound of one core: the trainers alone
 * fill it, so every evaluation is done by its trainer, the count never
 * passes the two trainers, and both runs report the numbers of a run
 * trained alone without a bound. */
typedef struct side {
    const ds_dataset *d;
    train_threads *t;
    seen s;
    train_result *r;
} side;

static void *train_side(void *arg)
{
    side *x = arg;
    x->r = train_seen(x->d, x->t, &x->s);
    return NULL;
}

Test(train_threads, runs_side_by_side_under_a_full_bound_evaluate_on_trainers)
{
    ds_dataset d;
    th_load(&d, "mnist");
    mn_err err = {{0}};
    train_threads *t = train_threads_new(1, &err);
    cr_assert_not_null(t, "%s", err.msg);
    seen alone;
    train_result *ra = train_seen(&d, NULL, &alone);
    side x[2] = {{.d = &d, .t = t}, {.d = &d, .t = t}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, train_side, &x[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    uint64_t on_helper, on_trainer;
    train_threads_evaluations(t, &on_helper, &on_trainer);
    cr_assert_eq(on_helper, 0, "%llu evaluations on a helper",
                 (unsigned long long)on_helper);
    cr_assert_eq(on_trainer, 8);
    for (int i = 0; i < 2; i++) {
        cr_assert_leq(x[i].s.max_busy, 2, "run %d saw %u threads counted", i,
                      x[i].s.max_busy);
        for (uint32_t k = 0; k < 4; k++) {
            const train_period *p = &x[i].r->periods[k], *q = &ra->periods[k];
            cr_assert(memcmp(&p->train_log_loss, &q->train_log_loss, 8) == 0);
            cr_assert(memcmp(&p->validation_log_loss, &q->validation_log_loss,
                             8) == 0);
        }
        cr_assert(memcmp(x[i].s.ck, alone.ck, alone.ck_len) == 0,
                  "run %d's last checkpoint differs", i);
        free_seen(x[i].r, &x[i].s);
    }
    cr_assert_eq(train_threads_busy(t), 0);
    free_seen(ra, &alone);
    train_threads_free(t);
    ds_free(&d);
}
