/* runs.c: the runs table: creating, reading, listing and counting runs,
 * claims (with their node and lease: nodes.c), and every change of a
 * run's status (finish, requeue, wait, resume, cancel, delete). */
#include "server/store/store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

/* Reads the status of run id into *status (and its best validation
 * log loss, NaN when none, if best is not NULL), locking the row for the
 * transaction when lock (store_internal.h). 0, STORE_NOT_FOUND or -1. */
int st_run_state(store *s, int64_t id, run_status *status, double *best,
                 int lock, const char *what, mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    if (st_prep_id(s, &st,
                   lock ? "SELECT status, best_validation_log_loss FROM runs"
                          " WHERE id = ?1 FOR UPDATE"
                        : "SELECT status, best_validation_log_loss FROM runs"
                          " WHERE id = ?1",
                   id, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (st_col_status(st, 0, status, what, err)) goto done;
    if (best) *best = st_col_real(st, 1);
    rc = 0;
done:
    st_finalize(st);
    return rc;
}

/* ---------------------------------------------------------------- runs */

/* Frees the owned fields of r and zeroes them (NULL is a no-op). */
void store_run_free(store_run *r)
{
    if (!r) return;
    free(r->params_json);
    free(r->error);
    free(r->waiting);
    r->params_json = NULL;
    r->error = NULL;
    r->waiting = NULL;
}

/* Frees n runs and the array. */
void store_runs_free(store_run *runs, size_t n)
{
    if (!runs) return;
    for (size_t i = 0; i < n; i++) store_run_free(&runs[i]);
    free(runs);
}

/* Fills *out (a store_run) from a row that begins with RUN_COLS (new
 * strings). On failure *out is zeroed with nothing owned. 0 or -1. */
int st_run_from_row(st_stmt *st, void *dst, const char *what, mn_err *err)
{
    store_run *out = dst;
    memset(out, 0, sizeof *out);
    out->id = st_col_int64(st, 0);
    if (st_col_status(st, 1, &out->status, what, err) ||
        st_col_text_into(st, 2, out->model, sizeof out->model, what, err) ||
        st_col_text_into(st, 3, out->dataset, sizeof out->dataset, what, err) ||
        st_col_u32(st, 5, &out->step, what, err) ||
        st_col_u32(st, 6, &out->steps, what, err) ||
        st_col_u32(st, 7, &out->period, what, err) ||
        st_col_u32(st, 8, &out->periods, what, err) ||
        st_col_u32(st, 17, &out->waits, what, err) ||
        (!st_col_null(st, 19) &&
         st_col_u32(st, 19, &out->trial, what, err)) ||
        (!st_col_null(st, 20) &&
         st_col_text_into(st, 20, out->node, sizeof out->node, what, err)) ||
        st_col_u32(st, 21, &out->attempts, what, err) ||
        (!st_col_null(st, 22) &&
         st_col_text_into(st, 22, out->owner, sizeof out->owner, what, err)))
        goto fail;
    out->sweep = st_col_time(st, 18);  /* an integer id, NULL as 0 */
    out->validation_accuracy = st_col_real(st, 9);
    out->validation_log_loss = st_col_real(st, 10);
    out->test_accuracy = st_col_real(st, 11);
    out->created_at = st_col_time(st, 12);
    out->started_at = st_col_time(st, 13);
    out->finished_at = st_col_time(st, 14);
    if (st_col_text_dup(st, 4, &out->params_json, 0, what, err) ||
        st_col_text_dup(st, 15, &out->error, 1, what, err) ||
        st_col_text_dup(st, 16, &out->waiting, 1, what, err))
        goto fail;
    return 0;
fail:
    store_run_free(out);
    memset(out, 0, sizeof *out);
    return -1;
}

/* Reads run id into *out. 0, STORE_NOT_FOUND or -1. */
static int run_read(store *s, int64_t id, store_run *out, const char *what,
                    mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    if (st_prep_id(s, &st, "SELECT " RUN_COLS " FROM runs WHERE id = ?1", id,
                what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (st_run_from_row(st, out, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    return rc;
}

/* 1 when the uploaded dataset `name` has a row, 0 when not, -1 on error.
 * Inside the caller's transaction; lock: the row stays locked until it
 * ends, so that a concurrent delete waits for it. */
int st_dataset_exists(store *s, const char *name, int lock, const char *what,
                      mn_err *err)
{
    st_stmt *st = NULL;
    int r = st_prep_name(s, &st,
                         lock ? "SELECT 1 FROM datasets WHERE name = ?1"
                                " FOR UPDATE"
                              : "SELECT 1 FROM datasets WHERE name = ?1",
                         name, what, err);
    if (r == 0) r = st_step_row(s, st, what, err);
    st_finalize(st);
    return r;
}

/* Inserts a queued run (model 1..7 bytes, dataset 1..63 bytes; a NULL
 * params_json is stored as "{}") owned by owner (NULL: none). uploaded:
 * the dataset's row must exist when the run is inserted (checked in the
 * same write transaction), else STORE_NOT_FOUND. */
static int run_insert(store *s, const char *owner, const char *model,
                      const char *dataset, int uploaded,
                      const char *params_json, uint32_t steps,
                      uint32_t periods, store_limit *lim, int64_t *id_out,
                      mn_err *err)
{
    const char *what = "run_create";
    int rc = -1;
    st_stmt *st = NULL;

    if (!model || !*model || strlen(model) >= sizeof ((store_run *)0)->model)
        return mn_errf(err, "store: %s: bad model name", what);
    if (!dataset || !*dataset ||
        strlen(dataset) >= sizeof ((store_run *)0)->dataset)
        return mn_errf(err, "store: %s: dataset name must be 1..%zu bytes",
                       what, sizeof ((store_run *)0)->dataset - 1);
    if (st_tx_write(s, what, err)) goto done;
    rc = st_owner_limit(s, owner, lim, STORE_SQL_RUNS_ACTIVE, 1, what, err);
    if (rc) goto done;
    rc = -1;
    if (uploaded) {
        int r = st_dataset_exists(s, dataset, 1, what, err);
        if (r < 0) goto done;
        if (r == 0) {
            rc = STORE_NOT_FOUND;
            mn_errf(err, "store: %s: dataset %s does not exist", what,
                    dataset);
            goto done;
        }
    }
    /* without an owner the insert names no owner column: it also runs on
     * a schema older than 0009 (the migration tests build such ones) */
    if (st_prep(s, &st,
             owner ? "INSERT INTO runs (status, model, dataset, params_json,"
                     " steps, periods, created_at, owner)"
                     " VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                     " RETURNING id"
                   : "INSERT INTO runs (status, model, dataset, params_json,"
                     " steps, periods, created_at)"
                     " VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
             what, err))
        goto done;
    if (st_bind_text(st, 1, model) != 0 ||
        st_bind_text(st, 2, dataset) != 0 ||
        st_bind_text(st, 3, params_json ? params_json : "{}") != 0 ||
        (owner && st_bind_text(st, 7, owner) != 0)) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 4, steps);
    st_bind_int64(st, 5, periods);
    st_bind_int64(st, 6, st_now_ms());
    int r = st_step_row(s, st, what, err);
    if (r <= 0) {
        if (r == 0) mn_errf(err, "store: %s: no id returned", what);
        goto done;
    }
    int64_t id = st_col_int64(st, 0);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    if (id_out) *id_out = id;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_run_create(store *s, const char *owner, int uploaded,
                     const char *model, const char *dataset,
                     const char *params_json, uint32_t steps,
                     uint32_t periods, store_limit *runs_limit,
                     int64_t *id_out, mn_err *err)
{
    return run_insert(s, owner, model, dataset, uploaded, params_json, steps,
                      periods, runs_limit, id_out, err);
}

/* Reads one run; *out is zeroed on any non-zero return. */
int store_run_get(store *s, int64_t id, store_run *out, mn_err *err)
{
    return st_rc(s, run_read(s, id, out, "run_get", err));
}

/* Binds a list's filter and page (?1 status, ?2 model, ?3 limit, ?4
 * offset, ?5 owner; a NULL filter is left unbound). 0 or -1. */
static int bind_list(store *s, st_stmt *st, const char *status,
                     const char *model, const char *owner, int limit,
                     int offset, const char *what, mn_err *err)
{
    if ((status &&
         st_bind_text(st, 1, status) != 0) ||
        (model &&
         st_bind_text(st, 2, model) != 0) ||
        (owner &&
         st_bind_text(st, 5, owner) != 0))
        return st_fail(s, what, err);
    st_bind_int64(st, 3, limit < 0 ? INT64_MAX : limit);
    st_bind_int64(st, 4, offset);
    return 0;
}

/* Lists runs newest first (id DESC). status/model NULL = any; a negative
 * limit means no limit; offset must be >= 0. With no match *out is NULL
 * and *n 0 (and *last NULL). One statement: the page of runs, each joined
 * with its last period only (found through the periods primary key), so
 * the cost grows with the page, not with the periods stored. */
int store_run_list(store *s, const char *status, const char *model,
                   int limit, int offset, store_run **out, size_t *n,
                   train_period **last, mn_err *err)
{
    return store_run_list_owned(s, NULL, status, model, limit, offset, out,
                                n, last, err);
}

int store_run_list_owned(store *s, const char *owner, const char *status,
                         const char *model, int limit, int offset,
                         store_run **out, size_t *n, train_period **last,
                         mn_err *err)
{
    /* Constant statements, one per filter combination, so that each can
     * use its index (runs_status_idx, runs_model_idx, runs_owner_idx). */
#define LIST_SQL(where)                                                      \
    "SELECT r.*, p.period, p.step, p.train_log_loss, p.validation_log_loss," \
    " p.validation_accuracy, p.seconds"                                     \
    " FROM (SELECT " RUN_COLS " FROM runs" where                            \
    " ORDER BY id DESC LIMIT ?3 OFFSET ?4) AS r"                            \
    " LEFT JOIN periods AS p ON p.run_id = r.id AND p.period ="             \
    " (SELECT q.period FROM periods AS q WHERE q.run_id = r.id"             \
    " ORDER BY q.period DESC LIMIT 1)"                                      \
    " ORDER BY r.id DESC"
    static const char *const sql[8] = {
        LIST_SQL(""),
        LIST_SQL(" WHERE status = ?1"),
        LIST_SQL(" WHERE model = ?2"),
        LIST_SQL(" WHERE status = ?1 AND model = ?2"),
        LIST_SQL(" WHERE owner = ?5"),
        LIST_SQL(" WHERE owner = ?5 AND status = ?1"),
        LIST_SQL(" WHERE owner = ?5 AND model = ?2"),
        LIST_SQL(" WHERE owner = ?5 AND status = ?1 AND model = ?2"),
    };
#undef LIST_SQL
    enum { LAST_COL = RUN_N_COLS }; /* p.period: after RUN_COLS, in
                                       period_cols' order */
    const char *what = "run_list";
    int rc = -1;
    st_stmt *st = NULL;
    store_run *runs = NULL;
    train_period *ps = NULL;
    size_t cnt = 0, cap = 0, pcap = 0;

    *out = NULL;
    *n = 0;
    if (last) *last = NULL;
    if (offset < 0)
        return mn_errf(err, "store: %s: offset must be >= 0", what);
    if (st_prep(s, &st,
                sql[(status ? 1 : 0) + (model ? 2 : 0) + (owner ? 4 : 0)],
                what, err) ||
        bind_list(s, st, status, model, owner, limit, offset, what, err))
        goto done;
    for (;;) {
        int r = st_step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        store_run *g = st_grow(runs, &cap, cnt + 1, sizeof *runs);
        if (g) runs = g;
        train_period *gp = g && last ? st_grow(ps, &pcap, cnt + 1, sizeof *ps)
                                     : NULL;
        if (gp) ps = gp;
        if (!g || (last && !gp)) {
            mn_errf(err, "store: %s: out of memory", what);
            goto done;
        }
        if (st_run_from_row(st, &runs[cnt], what, err)) goto done;
        cnt++;
        if (last) {
            memset(&ps[cnt - 1], 0, sizeof *ps);
            if (!st_col_null(st, LAST_COL) &&
                st_period_cols(st, LAST_COL, &ps[cnt - 1], what, err))
                goto done;
        }
    }
    *out = runs;
    *n = cnt;
    if (last) *last = ps;
    runs = NULL;
    ps = NULL;
    rc = 0;
done:
    st_finalize(st);
    store_runs_free(runs, cnt);
    free(ps);
    return st_rc(s, rc);
}

/* Counts runs with the given status (NULL = all runs). */
int store_run_count(store *s, const char *status, int64_t *n, mn_err *err)
{
    const char *what = "run_count";
    int rc = -1;
    st_stmt *st = NULL;

    if (st_prep(s, &st,
             status ? "SELECT count(*) FROM runs WHERE status = ?1"
                    : "SELECT count(*) FROM runs",
             what, err))
        goto done;
    if (status &&
        st_bind_text(st, 1, status) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        mn_errf(err, "store: %s: no row", what);
        goto done;
    }
    *n = st_col_int64(st, 0);
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}

/* Run o has the same owner as run q (NULL = NULL). */
#define SAME_OWNER                                                           \
    "(o.owner = q.owner OR (o.owner IS NULL AND q.owner IS NULL))"

/* Marks a queued run running for node, with one more attempt and a lease
 * of lease_seconds, setting started_at on its first start, and returns it,
 * all in one write transaction so that two workers never claim the same
 * run. STORE_NOT_FOUND when none is queued (*out zeroed).
 *
 * Fair share (issue 16): the queue is served round-robin across owners,
 * not strictly oldest first, so that one user's burst cannot starve the
 * others. Among the claimable runs it takes the one whose owner
 *   1. has the fewest runs running now (on every node), then
 *   2. was served longest ago: the latest started_at of any of the
 *      owner's runs (never served: first), then
 * the oldest run (lowest id). So a single worker alternates between the
 * users who have runs queued, and several workers spread over them.
 * Runs without an owner (NULL: no users configured, or made with the
 * shared --token) count as one owner, so with no users this is today's
 * oldest-first order. The running runs are found through
 * runs_status_idx, an owner's latest start with one seek in
 * runs_owner_started_idx (0010; the CASE keeps each branch an equality
 * or IS NULL on owner, which both backends answer from that index).
 *
 * On PostgreSQL (several nodes) FOR UPDATE SKIP LOCKED locks the first
 * row in that order that no other claim holds: a concurrent claim skips
 * it and takes the next, and a row another claim turned running
 * meanwhile fails the status = 'queued' recheck and is skipped too. The
 * counts are read from this transaction's snapshot, so two claims at the
 * same instant may both favour one owner; the next claims even it out. */
int store_run_claim(store *s, const char *node, double lease_seconds,
                    store_run *out, mn_err *err)
{
    const char *what = "run_claim";
    int rc = -1;
    st_stmt *st = NULL;
    int have = 0;

    memset(out, 0, sizeof *out);
    if (st_node_name_check(node, what, err)) return -1;
    if (!(lease_seconds > 0 && lease_seconds <= 86400))
        return mn_errf(err, "store: %s: lease must be in (0, 86400] seconds",
                       what);
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep(s, &st,
             "SELECT id FROM runs q WHERE status = 'queued'"
             " AND (not_before IS NULL OR not_before <= ?1)"
             " ORDER BY (SELECT count(*) FROM runs o WHERE o.status ="
             " 'running' AND " SAME_OWNER "),"
             " coalesce(CASE WHEN q.owner IS NULL"
             " THEN (SELECT max(o.started_at) FROM runs o"
             " WHERE o.owner IS NULL)"
             " ELSE (SELECT max(o.started_at) FROM runs o"
             " WHERE o.owner = q.owner) END, 0), id"
             " LIMIT 1 FOR UPDATE SKIP LOCKED",
             what, err))
        goto done;
    st_bind_int64(st, 1, st_now_ms());
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    int64_t id = st_col_int64(st, 0);
    if (st_prep(s, &st,
             "UPDATE runs SET status = 'running',"
             " started_at = coalesce(started_at, ?2), waiting = NULL,"
             " not_before = NULL, node = ?3, attempts = attempts + 1,"
             " lease_expires_at = ?4 WHERE id = ?1",
             what, err))
        goto done;
    if (st_bind_text(st, 3, node)) {
        st_fail(s, what, err);
        goto done;
    }
    int64_t now = st_now_ms();
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 2, now);
    st_bind_int64(st, 4, now + (int64_t)(lease_seconds * 1000.0 + 0.5));
    if (st_step_done(s, st, what, err)) goto done;
    st_finalize(st);
    st = NULL;
    r = run_read(s, id, out, what, err);
    if (r) {
        if (r == STORE_NOT_FOUND)
            mn_errf(err, "store: %s: run %lld vanished", what, (long long)id);
        goto done;
    }
    have = 1;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    if (rc && have) {
        store_run_free(out);
        memset(out, 0, sizeof *out);
    }
    return st_rc(s, rc);
}

/* Ends a queued or running run with status succeeded/failed/cancelled/
 * pruned, finished_at = now and error (NULL clears it). For "succeeded"
 * step and period become steps and periods; for "cancelled" and "pruned"
 * step becomes `step`
 * (the step training stopped at; never lowered). STORE_CONFLICT if it
 * already ended; -1 for another status. */
int store_run_finish(store *s, int64_t id, run_status status,
                     const char *error, uint32_t step, mn_err *err)
{
    const char *what = "run_finish";
    int rc = -1;
    st_stmt *st = NULL;
    run_status cur;

    if (!run_status_ended(status))
        return mn_errf(err, "store: %s: status must be succeeded, failed, "
                       "cancelled or pruned", what);
    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &cur, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (run_status_ended(cur)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld has already %s", what,
                (long long)id, run_status_name(cur));
        goto done;
    }
    if (st_prep(s, &st,
             "UPDATE runs SET status = ?2, finished_at = ?3, error = ?4,"
             " lease_expires_at = NULL,"
             " step = CASE WHEN ?2 = 'succeeded' THEN steps"
             " WHEN ?2 IN ('cancelled', 'pruned')"
             " THEN CASE WHEN step > ?5 THEN step ELSE ?5 END ELSE step END,"
             " period = CASE WHEN ?2 = 'succeeded' THEN periods"
             " ELSE period END"
             " WHERE id = ?1",
             what, err))
        goto done;
    if (st_bind_text(st, 2, run_status_name(status)) != 0 ||
        st_bind_text_or_null(st, 4, error) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 3, st_now_ms());
    st_bind_int64(st, 5, step);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Moves run id from status `from` to `to` in one write transaction,
 * setting finished_at = now when stamp_finish. 0, STORE_NOT_FOUND,
 * STORE_CONFLICT (not in `from`) or -1. */
static int run_transition(store *s, int64_t id, run_status from,
                          run_status to, int stamp_finish, const char *what,
                          mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    run_status cur;

    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &cur, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != from) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s, not %s", what,
                (long long)id, run_status_name(cur), run_status_name(from));
        goto done;
    }
    if (st_prep(s, &st,
             "UPDATE runs SET status = ?2,"
             " finished_at = CASE WHEN ?3 <> 0 THEN ?4 ELSE finished_at END"
             " WHERE id = ?1",
             what, err))
        goto done;
    if (st_bind_text(st, 2, run_status_name(to)) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 3, stamp_finish);
    st_bind_int64(st, 4, st_now_ms());
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return rc;
}

/* running -> queued (its checkpoints and periods stay). STORE_CONFLICT
 * when the run is not running. */
int store_run_requeue(store *s, int64_t id, mn_err *err)
{
    return store_run_wait(s, id, NULL, 0, err);
}

/* running -> queued with waiting = reason and not_before (0 = NULL);
 * a reason counts a wait. STORE_CONFLICT when the run is not running. */
int store_run_wait(store *s, int64_t id, const char *reason,
                   int64_t not_before, mn_err *err)
{
    const char *what = "run_wait";
    int rc = -1;
    st_stmt *st = NULL;
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
    if (st_prep(s, &st,
             "UPDATE runs SET status = 'queued', waiting = ?2,"
             " not_before = ?3, node = NULL, lease_expires_at = NULL,"
             " waits = waits + ?4"
             " WHERE id = ?1",
             what, err))
        goto done;
    if (st_bind_text_or_null(st, 2, reason) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 1, id);
    if (not_before)
        st_bind_int64(st, 3, not_before);
    else
        st_bind_null(st, 3);
    st_bind_int64(st, 4, reason ? 1 : 0);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* failed/cancelled -> queued, keeping its periods and checkpoints;
 * finished_at, error, waiting, not_before and waits are cleared. */
int store_run_resume(store *s, int64_t id, store_limit *runs_limit,
                     int *no_checkpoint, mn_err *err)
{
    const char *what = "run_resume";
    int rc = -1;
    st_stmt *st = NULL;
    run_status cur;

    *no_checkpoint = 0;
    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &cur, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != RUN_FAILED && cur != RUN_CANCELLED) {
        rc = STORE_CONFLICT;
        mn_errf(err, "run %lld is %s; only a failed or cancelled run can be "
                "resumed", (long long)id, run_status_name(cur));
        goto done;
    }
    /* queued again, it counts against its owner's runs limit */
    if (runs_limit && runs_limit->max > 0) {
        char owner[STORE_NAME_MAX + 1];
        if (st_prep_id(s, &st, "SELECT owner FROM runs WHERE id = ?1", id,
                       what, err))
            goto done;
        r = st_step_row(s, st, what, err);
        if (r <= 0) {
            if (r == 0) mn_errf(err, "store: %s: run %lld vanished", what,
                                (long long)id);
            goto done;
        }
        int owned = !st_col_null(st, 0);
        if (owned && st_col_text_into(st, 0, owner, sizeof owner, what, err))
            goto done;
        st_finalize(st);
        st = NULL;
        rc = st_owner_limit(s, owned ? owner : NULL, runs_limit,
                            STORE_SQL_RUNS_ACTIVE, 1, what, err);
        if (rc) goto done;
        rc = -1;
    }
    if (st_prep_id(s, &st,
                "SELECT 1 FROM checkpoints WHERE run_id = ?1"
                " AND kind = 'latest'",
                id, what, err))
        goto done;
    r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_CONFLICT;
        *no_checkpoint = 1;
        mn_errf(err, "run %lld has no checkpoint to resume from (it stopped "
                "before its first period)", (long long)id);
        goto done;
    }
    st_finalize(st);
    st = NULL;
    if (st_exec_id(s,
                "UPDATE runs SET status = 'queued', finished_at = NULL,"
                " error = NULL, waiting = NULL, not_before = NULL, waits = 0,"
                " node = NULL, crashes = 0, cancel_requested = 0"
                " WHERE id = ?1",
                id, what, err))
        goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* queued -> cancelled with finished_at = now. STORE_CONFLICT when the run
 * is running or has ended. */
int store_run_cancel_queued(store *s, int64_t id, mn_err *err)
{
    return st_rc(s, run_transition(s, id, RUN_QUEUED, RUN_CANCELLED, 1,
                                      "run_cancel", err));
}

/* Deletes an ended run; its periods, confusions and checkpoints go with
 * it (ON DELETE CASCADE). STORE_CONFLICT while queued or running. */
int store_run_delete(store *s, int64_t id, mn_err *err)
{
    const char *what = "run_delete";
    int rc = -1;
    run_status cur;

    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &cur, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (!run_status_ended(cur)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s", what, (long long)id,
                run_status_name(cur));
        goto done;
    }
    char model[64];
    int64_t version;
    r = store_run_model_version(s, id, model, &version, err);
    if (r <= 0) {
        if (r == 0) {
            rc = STORE_CONFLICT;
            mn_errf(err, "store: %s: run %lld is version %lld of model %s",
                    what, (long long)id, (long long)version, model);
        }
        goto done;
    }
    if (st_exec_id(s, "DELETE FROM runs WHERE id = ?1", id, what, err))
        goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_tx_end(s);
    return st_rc(s, rc);
}

/* The newest (highest id, i.e. most recently created) succeeded run. */
int store_run_newest_succeeded(store *s, int64_t *id, mn_err *err)
{
    return store_run_newest_succeeded_owned(s, NULL, id, err);
}

/* ... of one owner (NULL: of anyone). */
int store_run_newest_succeeded_owned(store *s, const char *owner,
                                     int64_t *id, mn_err *err)
{
    const char *what = "run_newest_succeeded";
    int rc = -1;
    st_stmt *st = NULL;

    if (st_prep(s, &st,
             owner ? "SELECT id FROM runs WHERE status = 'succeeded'"
                     " AND owner = ?1 ORDER BY id DESC LIMIT 1"
                   : "SELECT id FROM runs WHERE status = 'succeeded'"
                     " ORDER BY id DESC LIMIT 1",
             what, err))
        goto done;
    if (owner && st_bind_text(st, 1, owner) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    *id = st_col_int64(st, 0);
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}
