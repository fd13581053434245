/* test_events.c: the event hub's ticker and shutdown (server/jobs/
 * events.c) without HTTP: keep-alive comments on an idle stream, the poll
 * that ends the streams of a run that ended without the pool (and of one
 * that was deleted), a closed hub refusing subscribers, and a stream never
 * handed to a response freed with the hub. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/jobs/events.h"

static void no_park(void *ctx) { (void)ctx; }

/* The store's answer about runs 1 (ended: failed, "gone") and 2 (deleted). */
static int poll_store(void *ctx, int64_t id, run_status *status, char **error)
{
    (void)ctx;
    if (id == 1) {
        *status = RUN_FAILED;
        *error = strdup("gone");
        return 1;
    }
    return id == 2 ? 2 : 0;
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
    ev_hub *h = ev_hub_new(1, poll_store, NULL);
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
