/* test_events.c: the event hub's ticker and shutdown (server/jobs/
 * events.c) without HTTP: keep-alive comments on an idle stream, the poll
 * that ends the streams of a run that ended without the pool (and of one
 * that was deleted), a closed hub refusing subscribers, a stream never
 * handed to a response freed with the hub, and the stream of a run trained
 * on another node, read from the store by the polls. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/jobs/events.h"

static void no_park(void *ctx) { (void)ctx; }

/* The store's answer about runs 1 (ended: failed, "gone", from its third
 * poll on, so that its stream idles past a keep-alive first) and 2
 * (deleted). ctx: the count of run 1's polls (the ticker's thread only). */
static int poll_store(void *ctx, int64_t id, uint32_t after,
                      ev_poll_result *out)
{
    unsigned *polls = ctx;
    (void)after;
    if (id == 1 && ++*polls >= 3) {
        out->ended = 1;
        out->status = RUN_FAILED;
        out->error = strdup("gone");
    }
    out->gone = id == 2;
    return 0;
}

/* A run trained on another node, as the store holds it: n periods (1..n)
 * stored, ended or not. Written by the test, read by the hub's ticker. */
typedef struct remote_run {
    pthread_mutex_t mu;
    uint32_t n;
    int ended;
    unsigned polls;
} remote_run;

static train_period period_no(uint32_t k)
{
    train_period p = {.period = k, .step = 10 * k, .train_log_loss = 1.0 / k,
                      .validation_log_loss = 1.0 / k,
                      .validation_accuracy = 0.5, .seconds = 0.1};
    return p;
}

static int poll_remote(void *ctx, int64_t id, uint32_t after,
                       ev_poll_result *out)
{
    remote_run *rr = ctx;
    cr_assert_eq(id, 3);
    pthread_mutex_lock(&rr->mu);
    rr->polls++;
    out->ended = rr->ended;
    out->status = RUN_SUCCEEDED;
    if (rr->n > after) {
        out->ps = calloc(rr->n - after, sizeof *out->ps);
        for (uint32_t k = after + 1; k <= rr->n; k++)
            out->ps[out->n++] = period_no(k);
    }
    out->has_progress = !rr->ended;
    out->step = 10 * rr->n + 5;
    out->period = rr->n;
    pthread_mutex_unlock(&rr->mu);
    return 0;
}

static void remote_store(remote_run *rr, uint32_t n, int ended)
{
    pthread_mutex_lock(&rr->mu);
    rr->n = n;
    rr->ended = ended;
    pthread_mutex_unlock(&rr->mu);
}

/* Reads what s has now (until it parks) and appends it to buf[cap]. */
static void read_now(ev_sub *s, char *buf, size_t cap)
{
    size_t len = strlen(buf);
    for (;;) {
        ssize_t k = ev_sub_read(s, buf + len, cap - 1 - len);
        if (k <= 0) break;
        len += (size_t)k;
    }
    buf[len] = '\0';
}

/* Reads s until its end (or 30 s) into buf[cap]. */
static void read_to_end(ev_sub *s, char *buf, size_t cap)
{
    size_t len = 0;
    for (int t = 0; t < 3000; t++) {
        ssize_t k = ev_sub_read(s, buf + len, cap - 1 - len);
        if (k == EV_SUB_END) break;
        len += (size_t)k;
        if (!k) nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    buf[len] = '\0';
}

Test(events, the_ticker_keeps_idle_streams_alive_and_ends_runs_it_polls,
     .timeout = 60)
{
    static unsigned polls;
    ev_hub *h = ev_hub_new(1, poll_store, &polls);
    cr_assert_not_null(h);
    ev_waiter w = {no_park, no_park, NULL};
    ev_sub *s1 = ev_subscribe(h, 1, &w), *s2 = ev_subscribe(h, 2, &w);
    cr_assert(s1 && s2);
    ev_replay r = {.steps = 100, .periods = 10};
    ev_sub_start(s1, &r);
    ev_sub_start(s2, &r);
    static char out1[1 << 14], out2[1 << 14];
    read_to_end(s1, out1, sizeof out1);
    read_to_end(s2, out2, sizeof out2);
    cr_assert_not_null(strstr(out1, ": keep-alive"), "%s", out1);
    cr_assert_not_null(strstr(out1, "failed"), "%s", out1);
    cr_assert_not_null(strstr(out1, "gone"), "%s", out1);
    cr_assert_not_null(strstr(out2, "the run was deleted"), "%s", out2);
    ev_sub_free(s1);
    ev_sub_free(s2);
    ev_hub_close(h, 0);
    ev_hub_free(h);
}

Test(events, a_closed_hub_refuses_streams_and_frees_the_unclaimed_ones)
{
    ev_hub *h = ev_hub_new(15, NULL, NULL);
    cr_assert_not_null(h);
    ev_waiter w = {no_park, no_park, NULL};
    ev_sub *s = ev_subscribe(h, 1, &w);
    cr_assert_not_null(s);
    ev_replay r = {.steps = 10, .periods = 1};
    ev_sub_start(s, &r);
    /* the stream is never read nor freed by an owner: the close waits its
     * 50 ms for it, then the hub frees it (ASan: no leak, no double free) */
    ev_hub_close(h, 50);
    cr_assert_null(ev_subscribe(h, 2, &w));
    ev_hub_free(h);
}

/* A run trained elsewhere (its periods only in the store): the stream gets
 * them from the polls, in order and once each, whether a nudge (the
 * period signal) or the quiet-run poll brings them, whether this node also
 * publishes some of them (it took the run over: a repeated period is
 * dropped, one past a gap waits for the poll that reads the missing ones),
 * and ends after the last. */
Test(events, a_run_trained_elsewhere_streams_its_stored_periods_in_order,
     .timeout = 60)
{
    remote_run rr = {.n = 2};
    pthread_mutex_init(&rr.mu, NULL);
    ev_hub *h = ev_hub_new(15, poll_remote, &rr);
    cr_assert_not_null(h);
    ev_waiter w = {no_park, no_park, NULL};
    ev_sub *s = ev_subscribe(h, 3, &w);
    cr_assert_not_null(s);
    train_period replay[2] = {period_no(1), period_no(2)};
    ev_replay r = {.steps = 100, .periods = 7, .ps = replay, .n = 2};
    ev_sub_start(s, &r);
    static char out[1 << 15];
    out[0] = '\0';
    remote_store(&rr, 4, 0);
    ev_nudge(h, 3);
    /* this node publishes period 4 again (repeated), then 6 past a gap
     * (5 only in the store) */
    train_period p4 = period_no(4), p6 = period_no(6);
    for (int t = 0; t < 500 && !strstr(out, "id: 4\n"); t++) {
        read_now(s, out, sizeof out);
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    ev_period(h, 3, &p4);
    remote_store(&rr, 6, 0);
    ev_period(h, 3, &p6);
    for (int t = 0; t < 500 && !strstr(out, "id: 6\n"); t++) {
        read_now(s, out, sizeof out);
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    remote_store(&rr, 7, 1);   /* no nudge: the quiet-run poll finds it */
    read_to_end(s, out + strlen(out), sizeof out - strlen(out));
    const char *at = out;
    for (uint32_t k = 1; k <= 7; k++) {
        char id[16];
        snprintf(id, sizeof id, "id: %u\n", k);
        const char *hit = strstr(at, id);
        cr_assert_not_null(hit, "period %u missing or out of order: %s", k,
                           out);
        cr_assert_null(strstr(hit + 1, id), "period %u twice: %s", k, out);
        at = hit;
    }
    cr_assert_not_null(strstr(at, "event: end"), "%s", out);
    cr_assert_not_null(strstr(at, "succeeded"), "%s", out);
    cr_assert_not_null(strstr(out, "event: progress"), "%s", out);
    ev_sub_free(s);
    ev_hub_close(h, 0);
    ev_hub_free(h);
    pthread_mutex_destroy(&rr.mu);
}
