/* events.c: the event hub for Server-Sent Events (design in events.h). */
#include "server/jobs/events.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/render/enc.h"

#define EV_POLL_MAX 64          /* runs asked about per tick */

struct ev_sub {
    ev_hub *h;
    int64_t run;
    ev_waiter waiter;
    /* everything below is guarded by h->mu */
    ev_sub *prev, *next;        /* the hub's list */
    int linked;
    ev_sub *wake_next;          /* a publisher's list of waiters to wake */
    int started;                /* ev_sub_start ran */
    uint32_t steps, periods;
    uint32_t next_period;       /* periods below this were sent already */
    uint32_t upto;              /* the highest period queued or sent */
    int want_poll;              /* ask `poll` at the next tick */
    train_period ring[EV_RING]; /* queued periods, oldest at r_head */
    unsigned r_head, r_n;
    int has_progress;           /* coalesced progress waiting to be sent */
    uint32_t step, period;
    double progress_sent_ms;
    int ended;                  /* the run's end is known (status, error) */
    run_status status;
    char *error;
    const char *closing;        /* non-NULL: finish with this comment */
    int keepalive;              /* a keep-alive comment is due */
    int done;                   /* nothing more will be written */
    int parked;                 /* the reader parked the waiter */
    double last_write_ms, last_live_ms;
    char *out;                  /* formatted bytes not yet read */
    size_t out_len, out_off, out_cap;
};

struct ev_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* the ticker's sleep; close's wait */
    ev_sub *head;
    atomic_size_t n;            /* linked subscribers (read without mu) */
    int closed, quit;
    pthread_t ticker;
    int ticker_started;
    int nudged;                 /* a tick is due now (ev_nudge) */
    unsigned keepalive_s;
    ev_poll_fn poll;
    void *poll_ctx;
};

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Appends formatted text to s->out. On OOM the stream is ended. */
static void out_printf(ev_sub *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void out_printf(ev_sub *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (s->out_len + (size_t)n + 1 > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 1024;
        while (cap < s->out_len + (size_t)n + 1) cap *= 2;
        char *p = realloc(s->out, cap);
        if (!p) {
            s->done = 1;        /* the stream ends with what it has */
            return;
        }
        s->out = p;
        s->out_cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(s->out + s->out_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->out_len += (size_t)n;
}

static void fmt_period(ev_sub *s, const train_period *p)
{
    json_t *o = enc_period(p);
    char *js = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    if (!js) {
        s->done = 1;
        return;
    }
    out_printf(s, "id: %u\nevent: period\ndata: %s\n\n", p->period, js);
    free(js);
    s->next_period = p->period + 1;
}

static void fmt_progress(ev_sub *s, double now)
{
    out_printf(s, "event: progress\ndata: {\"step\":%u,\"steps\":%u,"
               "\"period\":%u,\"periods\":%u}\n\n", s->step, s->steps,
               s->period, s->periods);
    s->has_progress = 0;
    s->progress_sent_ms = now;
}

static void fmt_end(ev_sub *s)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)s->run);
    json_t *o = json_pack("{s:s, s:s, s:s?}", "id", id, "status",
                          run_status_name(s->status), "error", s->error);
    if (o && !s->error) json_object_set_new(o, "error", json_null());
    char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (js) out_printf(s, "event: end\ndata: %s\n\n", js);
    free(js);
    s->done = 1;
}

/* Formats everything that is due into s->out. Caller holds the lock. */
static void drain(ev_sub *s, double now)
{
    int any = 0;
    while (s->r_n > 0 && !s->done) {
        train_period p = s->ring[s->r_head];
        s->r_head = (s->r_head + 1) % EV_RING;
        s->r_n--;
        if (p.period < s->next_period) continue;   /* replayed already */
        fmt_period(s, &p);
        any = 1;
    }
    if (s->done) return;
    if (s->has_progress &&
        (any || s->ended || now - s->progress_sent_ms >= EV_PROGRESS_MS))
        fmt_progress(s, now);
    if (s->ended) {
        fmt_end(s);
    } else if (s->closing) {
        out_printf(s, ": %s\n\n", s->closing);
        s->done = 1;
    } else if (s->keepalive && s->out_len == 0) {
        out_printf(s, ": keep-alive\n\n");
    }
    s->keepalive = 0;
}

/* If s is parked, marks it for waking by the caller (which calls wake_all
 * after unlocking). Caller holds the lock. */
static void want_wake(ev_sub *s, ev_sub **wake)
{
    if (!s->parked) return;
    s->parked = 0;
    s->wake_next = *wake;
    *wake = s;
}

/* Wakes the waiters collected by want_wake. Called WITHOUT the lock: each
 * of them is parked and only this call wakes it, so none can have been
 * freed. */
static void wake_all(ev_sub *wake)
{
    while (wake) {
        ev_sub *next = wake->wake_next;
        wake->waiter.wake(wake->waiter.ctx);
        wake = next;
    }
}

/* Records the end of run `run` for its subscribers. Caller holds the lock. */
static void end_locked(ev_hub *h, int64_t run, run_status status,
                       const char *error, ev_sub **wake)
{
    for (ev_sub *s = h->head; s; s = s->next) {
        if (s->run != run || s->ended || s->done) continue;
        s->ended = 1;
        s->status = status;
        free(s->error);
        s->error = error ? strdup(error) : NULL;
        want_wake(s, wake);
    }
}

void ev_progress(ev_hub *h, int64_t run, uint32_t step, uint32_t period)
{
    if (!h || atomic_load_explicit(&h->n, memory_order_relaxed) == 0) return;
    double now = mono_ms();
    ev_sub *wake = NULL;
    pthread_mutex_lock(&h->mu);
    for (ev_sub *s = h->head; s; s = s->next) {
        if (s->run != run || s->done) continue;
        s->last_live_ms = now;
        /* never backwards: a run this node took over redoes the steps
         * after its last checkpoint, which the stream may have shown */
        if (step < s->step) continue;
        s->has_progress = 1;
        s->step = step;
        if (period > s->period) s->period = period;
        if (s->started && now - s->progress_sent_ms >= EV_PROGRESS_MS)
            want_wake(s, &wake);
    }
    pthread_mutex_unlock(&h->mu);
    wake_all(wake);
}

void ev_period(ev_hub *h, int64_t run, const train_period *p)
{
    if (!h || atomic_load(&h->n) == 0) return;
    double now = mono_ms();
    ev_sub *wake = NULL;
    pthread_mutex_lock(&h->mu);
    for (ev_sub *s = h->head; s; s = s->next) {
        if (s->run != run || s->done) continue;
        s->last_live_ms = now;
        if (p->period <= s->upto) {
            /* queued already (read from the store by a poll) */
        } else if (s->started && p->period > s->upto + 1) {
            /* the ones between were stored by another node (this one
             * resumed the run): the poll reads them, and this one after */
            s->want_poll = 1;
            h->nudged = 1;
            pthread_cond_broadcast(&h->cv);
        } else if (s->r_n == EV_RING) {
            /* the client reads too slowly: finish what is queued; it
             * reconnects and is replayed the stored periods */
            if (!s->closing) s->closing = "too far behind: reconnect";
        } else {
            s->ring[(s->r_head + s->r_n) % EV_RING] = *p;
            s->r_n++;
            s->upto = p->period;
        }
        /* the progress that goes with the period; never backwards: the
         * period end is published by the engine's helper thread, after
         * the trainer may already have reported later steps */
        if (s->step < p->step) s->step = p->step;
        if (s->period < p->period) s->period = p->period;
        s->has_progress = 1;
        want_wake(s, &wake);
    }
    pthread_mutex_unlock(&h->mu);
    wake_all(wake);
}

void ev_nudge(ev_hub *h, int64_t run)
{
    if (!h || atomic_load(&h->n) == 0) return;
    pthread_mutex_lock(&h->mu);
    for (ev_sub *s = h->head; s; s = s->next)
        if (!run || s->run == run) s->want_poll = 1;
    h->nudged = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void ev_end(ev_hub *h, int64_t run, run_status status, const char *error)
{
    if (!h || atomic_load(&h->n) == 0) return;
    ev_sub *wake = NULL;
    pthread_mutex_lock(&h->mu);
    end_locked(h, run, status, error, &wake);
    pthread_mutex_unlock(&h->mu);
    wake_all(wake);
}

ev_sub *ev_subscribe(ev_hub *h, int64_t run, const ev_waiter *w)
{
    if (!h) return NULL;
    ev_sub *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->h = h;
    s->run = run;
    s->waiter = *w;
    pthread_mutex_lock(&h->mu);
    if (h->closed) {
        pthread_mutex_unlock(&h->mu);
        free(s);
        return NULL;
    }
    s->next = h->head;
    if (h->head) h->head->prev = s;
    h->head = s;
    s->linked = 1;
    atomic_fetch_add(&h->n, 1);
    pthread_mutex_unlock(&h->mu);
    return s;
}

void ev_sub_start(ev_sub *s, const ev_replay *r)
{
    ev_hub *h = s->h;
    double now = mono_ms();
    pthread_mutex_lock(&h->mu);
    s->steps = r->steps;
    s->periods = r->periods;
    out_printf(s, ": events of run %lld\nretry: 3000\n\n", (long long)s->run);
    if (s->next_period < r->after + 1) s->next_period = r->after + 1;
    for (size_t i = 0; i < r->n && !s->done; i++)
        if (r->ps[i].period >= s->next_period) fmt_period(s, &r->ps[i]);
    if (s->upto < s->next_period - 1) s->upto = s->next_period - 1;
    if (r->has_progress) {
        if (!s->has_progress || s->step < r->step) s->step = r->step;
        if (!s->has_progress || s->period < r->period) s->period = r->period;
        s->has_progress = 1;
    }
    if (r->ended && !s->ended) {
        s->ended = 1;
        s->status = r->end_status;
        s->error = r->end_error ? strdup(r->end_error) : NULL;
    }
    s->started = 1;
    s->last_write_ms = s->last_live_ms = now;
    pthread_mutex_unlock(&h->mu);
}

ssize_t ev_sub_read(ev_sub *s, char *buf, size_t max)
{
    ev_hub *h = s->h;
    double now = mono_ms();
    pthread_mutex_lock(&h->mu);
    if (s->out_off == s->out_len) {
        s->out_off = s->out_len = 0;
        if (!s->done) drain(s, now);
    }
    size_t n = s->out_len - s->out_off;
    if (n > max) n = max;
    if (n > 0) {
        memcpy(buf, s->out + s->out_off, n);
        s->out_off += n;
        s->last_write_ms = now;
        pthread_mutex_unlock(&h->mu);
        return (ssize_t)n;
    }
    if (s->done) {
        pthread_mutex_unlock(&h->mu);
        return EV_SUB_END;
    }
    /* nothing to send: park the waiter until a publisher wakes it (parked
     * under the lock: see the design in events.h) */
    s->parked = 1;
    s->waiter.park(s->waiter.ctx);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void ev_sub_free(ev_sub *s)
{
    if (!s) return;
    ev_hub *h = s->h;
    pthread_mutex_lock(&h->mu);
    if (s->linked) {
        if (s->prev) s->prev->next = s->next;
        else h->head = s->next;
        if (s->next) s->next->prev = s->prev;
        s->linked = 0;
        atomic_fetch_sub(&h->n, 1);
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    free(s->out);
    free(s->error);
    free(s);
}

/* Queues what a poll of run `run` read for its started streams: the
 * periods above each one's last, the stored progress (never backwards),
 * the end or the deletion. Caller holds the lock. */
static void poll_apply(ev_hub *h, int64_t run, const ev_poll_result *r,
                       ev_sub **wake)
{
    for (ev_sub *s = h->head; s; s = s->next) {
        if (s->run != run || !s->started || s->done) continue;
        int any = 0;
        for (size_t i = 0; i < r->n; i++) {
            if (r->ps[i].period <= s->upto) continue;
            if (s->r_n == EV_RING) {
                if (!s->closing) s->closing = "too far behind: reconnect";
                break;
            }
            s->ring[(s->r_head + s->r_n) % EV_RING] = r->ps[i];
            s->r_n++;
            s->upto = r->ps[i].period;
            if (s->step < r->ps[i].step) s->step = r->ps[i].step;
            if (s->period < r->ps[i].period) s->period = r->ps[i].period;
            s->has_progress = 1;
            any = 1;
        }
        /* never backwards: a run taken over redoes steps from its last
         * checkpoint, and its stream shows progress again past them */
        if (r->has_progress && r->step > s->step) {
            s->step = r->step;
            if (s->period < r->period) s->period = r->period;
            s->has_progress = 1;
            any = 1;
        }
        if (r->gone && !s->closing) {
            s->closing = "the run was deleted";
            any = 1;
        }
        if (any) want_wake(s, wake);
    }
    if (r->ended) end_locked(h, run, r->status, r->error, wake);
}

/* One tick: keep-alives, then the poll of quiet and nudged runs. Called
 * with the lock held; returns with it held (it is released around the
 * polls). */
static void tick(ev_hub *h)
{
    double now = mono_ms();
    ev_sub *wake = NULL;
    int64_t ids[EV_POLL_MAX];
    uint32_t after[EV_POLL_MAX];
    size_t n_ids = 0;
    for (ev_sub *s = h->head; s; s = s->next) {
        if (!s->started || s->done) continue;
        if (now - s->last_write_ms >= h->keepalive_s * 1e3) {
            s->keepalive = 1;
            s->last_write_ms = now;
            want_wake(s, &wake);
        }
        if (!h->poll || s->ended ||
            (!s->want_poll && now - s->last_live_ms < EV_POLL_S * 1e3))
            continue;
        s->want_poll = 0;
        s->last_live_ms = now;  /* asked again in EV_POLL_S at the earliest */
        size_t i = 0;
        while (i < n_ids && ids[i] != s->run) i++;
        if (i == n_ids) {
            if (n_ids == EV_POLL_MAX) continue;
            ids[n_ids] = s->run;
            after[n_ids++] = s->upto;
        } else if (s->upto < after[i]) {
            after[i] = s->upto;
        }
    }
    pthread_mutex_unlock(&h->mu);
    wake_all(wake);
    wake = NULL;
    for (size_t i = 0; i < n_ids; i++) {
        ev_poll_result r;
        memset(&r, 0, sizeof r);
        if (h->poll(h->poll_ctx, ids[i], after[i], &r) == 0) {
            pthread_mutex_lock(&h->mu);
            poll_apply(h, ids[i], &r, &wake);
            pthread_mutex_unlock(&h->mu);
        }
        free(r.error);
        free(r.ps);
        wake_all(wake);
        wake = NULL;
    }
    pthread_mutex_lock(&h->mu);
}

static void *ticker(void *arg)
{
    ev_hub *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->quit) {
        if (!h->nudged) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&h->cv, &h->mu, &until);
        }
        if (h->quit) break;
        h->nudged = 0;
        tick(h);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

ev_hub *ev_hub_new(unsigned keepalive_s, ev_poll_fn poll, void *poll_ctx)
{
    ev_hub *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    atomic_init(&h->n, 0);
    h->keepalive_s = keepalive_s ? keepalive_s : 15;
    h->poll = poll;
    h->poll_ctx = poll_ctx;
    if (pthread_create(&h->ticker, NULL, ticker, h) != 0) {
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    h->ticker_started = 1;
    return h;
}

void ev_hub_close(ev_hub *h, unsigned wait_ms)
{
    if (!h) return;
    ev_sub *wake = NULL;
    pthread_mutex_lock(&h->mu);
    int first = !h->closed;
    h->closed = 1;
    h->quit = 1;
    pthread_cond_broadcast(&h->cv);
    for (ev_sub *s = h->head; s; s = s->next) {
        if (s->done || s->closing) continue;
        s->closing = "server shutting down";
        want_wake(s, &wake);
    }
    pthread_mutex_unlock(&h->mu);
    wake_all(wake);
    if (first && h->ticker_started) {
        pthread_join(h->ticker, NULL);
        h->ticker_started = 0;
    }
    /* give the streams a moment to write their last bytes and finish */
    double deadline = mono_ms() + wait_ms;
    pthread_mutex_lock(&h->mu);
    while (h->head && mono_ms() < deadline) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &until);
    }
    pthread_mutex_unlock(&h->mu);
}

void ev_hub_free(ev_hub *h)
{
    if (!h) return;
    ev_hub_close(h, 0);
    /* the HTTP daemon freed every stream when it stopped; any left was
     * never handed to a response */
    pthread_mutex_lock(&h->mu);
    while (h->head) {
        ev_sub *s = h->head;
        h->head = s->next;
        free(s->out);
        free(s->error);
        free(s);
    }
    pthread_mutex_unlock(&h->mu);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
