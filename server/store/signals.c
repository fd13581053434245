/* signals.c: what the nodes sharing one database tell each other through
 * the store (store.h, "signals between nodes"): a running run's cancel
 * request and live progress (columns of runs, migrations/<backend>/0008),
 * and the listener, over the driver's listen and wait_signal methods
 * (PostgreSQL: LISTEN/NOTIFY on the schema's channel, pg.c; SQLite has
 * none: one process serves a file, its wake-ups stay in memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

int store_is_shared(store *s)
{
    return s && s->drv->shared;
}

/* --------------------------------------------------------- the listener */

int store_listen(store *s, mn_err *err)
{
    if (!s->drv->listen) {
        mn_errf(err, "store: listen: the %s backend has no signals",
                s->drv->name);
        return STORE_NOT_FOUND;
    }
    int rc = s->drv->listen(s->conn) ? st_fail(s, "listen", err) : 0;
    return st_rc(s, rc);
}

int store_signal_wait(store *s, int timeout_ms, store_signal *out,
                      mn_err *err)
{
    char payload[128];
    memset(out, 0, sizeof *out);
    if (!s->drv->wait_signal) {
        mn_errf(err, "store: signal_wait: the %s backend has no signals",
                s->drv->name);
        return st_rc(s, -1);
    }
    int r = s->drv->wait_signal(s->conn, timeout_ms, payload, sizeof payload);
    if (r < 0) return st_rc(s, st_fail(s, "signal_wait", err));
    if (r == 2) {
        out->kind = STORE_SIG_RESYNC;
        return 1;
    }
    if (r == 0) return 0;
    /* an unknown payload (a newer node's signal) is no signal for us */
    return store_signal_parse(payload, out) == 0 ? 1 : 0;
}

/* ------------------------------------------------- cancel and progress */

int store_run_cancel_request(store *s, int64_t id, mn_err *err)
{
    const char *what = "run_cancel_request";
    int rc = -1;
    run_status cur;

    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &cur, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != RUN_RUNNING) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s, not running", what,
                (long long)id, run_status_name(cur));
        goto done;
    }
    if (st_exec_id(s, "UPDATE runs SET cancel_requested = 1 WHERE id = ?1",
                   id, what, err) ||
        st_tx_commit(s, what, err))
        goto done;
    rc = 0;
done:
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_run_progress_put(store *s, int64_t id, const char *node,
                           uint32_t step, uint32_t period,
                           int *cancel_requested, mn_err *err)
{
    const char *what = "run_progress_put";
    int rc = -1;
    st_stmt *st = NULL;

    *cancel_requested = 0;
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep(s, &st,
                "UPDATE runs SET progress_step = ?2, progress_period = ?3,"
                " progress_at = ?4 WHERE id = ?1 AND status = 'running'"
                " AND node = ?5 RETURNING cancel_requested",
                what, err))
        goto done;
    if (st_bind_text(st, 5, node)) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 2, step);
    st_bind_int64(st, 3, period);
    st_bind_int64(st, 4, st_now_ms());
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        /* gone, no longer running, or held by another node now: nothing
         * to write */
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is not running on node '%s'",
                what, (long long)id, node);
        goto done;
    }
    *cancel_requested = st_col_int64(st, 0) != 0;
    st_finalize(st);
    st = NULL;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_run_live_get(store *s, int64_t id, store_run_live *out,
                       mn_err *err)
{
    const char *what = "run_live_get";
    int rc = -1;
    st_stmt *st = NULL;

    memset(out, 0, sizeof *out);
    if (st_prep_id(s, &st,
                   "SELECT status, progress_step, progress_period,"
                   " progress_at, cancel_requested FROM runs WHERE id = ?1",
                   id, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (st_col_status(st, 0, &out->status, what, err)) goto done;
    if (!st_col_null(st, 3)) {
        if (st_col_u32(st, 1, &out->step, what, err) ||
            st_col_u32(st, 2, &out->period, what, err))
            goto done;
        out->at = st_col_time(st, 3);
    }
    out->cancel_requested = st_col_int64(st, 4) != 0;
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}
