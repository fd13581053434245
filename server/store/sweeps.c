/* sweeps.c: the store's sweeps (hyperparameter searches, store.h's
 * "sweeps" section): the sweeps table and the trials (runs with `sweep`
 * and `trial` set), written once in the common dialect over the helpers
 * of store_internal.h, for both backends; the schema is
 * migrations/<backend>/0006_sweeps.sql.
 *
 * DESIGN: one connection per thread. A write that reads the sweep and
 * then changes it (trial creation, finish, delete) locks the sweep's row
 * first (sweep_read(..., lock = 1): SELECT ... FOR UPDATE in an
 * st_tx_write transaction). On SQLite the write transaction (BEGIN
 * IMMEDIATE) already holds the database's one write lock; on PostgreSQL
 * the row lock makes concurrent store_sweep_trial_add calls on one sweep
 * run one after another, and each statement after the lock sees what the
 * previous holder committed (READ COMMITTED), so that two connections can
 * never both create trial k, nor create more than `parallel` active
 * trials. A delete also locks the sweep's trials, as store_run_delete and
 * a model version's creation lock the run. Reads of several statements
 * share one st_tx_read snapshot. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store.h"
#include "server/store/store_internal.h"

void store_sweep_free(store_sweep *w)
{
    if (!w) return;
    free(w->params_json);
    free(w->error);
    w->params_json = NULL;
    w->error = NULL;
}

void store_sweeps_free(store_sweep *w, size_t n)
{
    if (!w) return;
    for (size_t i = 0; i < n; i++) store_sweep_free(&w[i]);
    free(w);
}

void store_series_free(store_series *a, size_t n)
{
    if (!a) return;
    for (size_t i = 0; i < n; i++) free(a[i].v);
    free(a);
}

#define SWEEP_COLS \
    "id, status, params_json, trials, next_trial, created_at, finished_at," \
    " error, owner"

/* Fills *dst (a store_sweep; new strings) from a row of SWEEP_COLS; an
 * st_row_fill. 0, or -1 with it zeroed for a corrupt row. */
static int sweep_from_row(st_stmt *st, void *dst, const char *what,
                          mn_err *err)
{
    store_sweep *w = dst;
    memset(w, 0, sizeof *w);
    w->id = st_col_int64(st, 0);
    if (st_col_text_into(st, 1, w->status, sizeof w->status, what, err) ||
        st_col_u32(st, 3, &w->trials, what, err) ||
        st_col_u32(st, 4, &w->next_trial, what, err))
        goto fail;
    if (w->trials < 1 || w->next_trial > w->trials) {
        mn_errf(err, "store: %s: corrupt row: sweep %lld", what,
                (long long)w->id);
        goto fail;
    }
    w->created_at = st_col_int64(st, 5);
    w->finished_at = st_col_time(st, 6);
    if (st_col_text_dup(st, 2, &w->params_json, 0, what, err) ||
        st_col_text_dup(st, 7, &w->error, 1, what, err) ||
        (!st_col_null(st, 8) &&
         st_col_text_into(st, 8, w->owner, sizeof w->owner, what, err)))
        goto fail;
    return 0;
fail:
    store_sweep_free(w);
    memset(w, 0, sizeof *w);
    return -1;
}

int store_sweep_create(store *s, const char *params_json, uint32_t trials,
                       int64_t *id, mn_err *err)
{
    return store_sweep_create_owned(s, NULL, params_json, trials, NULL, id,
                                    err);
}

int store_sweep_create_owned(store *s, const char *owner,
                             const char *params_json, uint32_t trials,
                             store_limit *trials_limit, int64_t *id,
                             mn_err *err)
{
    const char *what = "sweep_create";
    int rc = -1;
    st_stmt *st = NULL;

    if (!params_json || trials < 1)
        return mn_errf(err, "store: %s: no params or no trials", what);
    if (st_tx_write(s, what, err)) goto done;
    rc = st_owner_limit(s, owner, trials_limit, STORE_SQL_SWEEP_TRIALS,
                        trials, what, err);
    if (rc) goto done;
    rc = -1;
    if (st_prep(s, &st,
                "INSERT INTO sweeps (status, params_json, trials,"
                " created_at, owner) VALUES ('running', ?1, ?2, ?3, ?4)"
                " RETURNING id",
                what, err))
        goto done;
    st_bind_int64(st, 2, trials);
    st_bind_int64(st, 3, st_now_ms());
    if (st_bind_text(st, 1, params_json) != 0 ||
        st_bind_text_or_null(st, 4, owner) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    int r = st_step_row(s, st, what, err);
    if (r <= 0) {
        if (r == 0) mn_errf(err, "store: %s: no id returned", what);
        goto done;
    }
    int64_t new_id = st_col_int64(st, 0);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    *id = new_id;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Reads sweep id into *w inside the caller's transaction; lock: inside a
 * write transaction, lock the sweep's row until it ends (FOR UPDATE; the
 * DESIGN note above). 0, STORE_NOT_FOUND or -1. */
static int sweep_read(store *s, int64_t id, int lock, store_sweep *w,
                      const char *what, mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    memset(w, 0, sizeof *w);
    if (st_prep_id(s, &st,
                   lock ? "SELECT " SWEEP_COLS " FROM sweeps WHERE id = ?1"
                          " FOR UPDATE"
                        : "SELECT " SWEEP_COLS " FROM sweeps WHERE id = ?1",
                   id, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (sweep_from_row(st, w, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    return rc;
}

/* The trials of sweep id in trial order into a new array, inside the
 * caller's transaction. 0 or -1. */
static int trials_read(store *s, int64_t id, store_run **out, size_t *n,
                       const char *what, mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    void *runs = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (st_prep_id(s, &st, "SELECT " RUN_COLS " FROM runs WHERE sweep = ?1"
                   " ORDER BY trial", id, what, err))
        goto done;
    if (st_collect_rows(s, st, sizeof(store_run), st_run_from_row, &runs,
                        &cnt, what, err))
        goto done;
    *out = runs;
    *n = cnt;
    runs = NULL;
    rc = 0;
done:
    st_finalize(st);
    store_runs_free(runs, cnt);
    return rc;
}

int store_sweep_get(store *s, int64_t id, store_sweep *out,
                    store_run **trials, size_t *n, mn_err *err)
{
    const char *what = "sweep_get";
    int rc = -1;
    if (trials) {
        *trials = NULL;
        *n = 0;
    }
    memset(out, 0, sizeof *out);
    if (st_tx_read(s, what, err)) goto done;
    rc = sweep_read(s, id, 0, out, what, err);
    if (rc) goto done;
    rc = -1;
    if (trials && trials_read(s, id, trials, n, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_tx_end(s);
    if (rc) {
        store_sweep_free(out);
        memset(out, 0, sizeof *out);
        if (trials) {
            store_runs_free(*trials, *n);
            *trials = NULL;
            *n = 0;
        }
    }
    return st_rc(s, rc);
}

int store_sweep_list(store *s, int limit, int offset, store_sweep **out,
                     size_t *n, mn_err *err)
{
    return store_sweep_list_owned(s, NULL, limit, offset, out, n, err);
}

int store_sweep_list_owned(store *s, const char *owner, int limit,
                           int offset, store_sweep **out, size_t *n,
                           mn_err *err)
{
    const char *what = "sweep_list";
    int rc = -1;
    st_stmt *st = NULL;
    void *ws = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (offset < 0)
        return mn_errf(err, "store: %s: offset must be >= 0", what);
    if (st_prep(s, &st,
                owner ? "SELECT " SWEEP_COLS " FROM sweeps WHERE owner = ?3"
                        " ORDER BY id DESC LIMIT ?1 OFFSET ?2"
                      : "SELECT " SWEEP_COLS " FROM sweeps"
                        " ORDER BY id DESC LIMIT ?1 OFFSET ?2",
                what, err))
        goto done;
    st_bind_int64(st, 1, limit < 0 ? INT64_MAX : limit);
    st_bind_int64(st, 2, offset);
    if (owner && st_bind_text(st, 3, owner) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    if (st_collect_rows(s, st, sizeof(store_sweep), sweep_from_row, &ws,
                        &cnt, what, err))
        goto done;
    *out = ws;
    *n = cnt;
    ws = NULL;
    rc = 0;
done:
    st_finalize(st);
    store_sweeps_free(ws, cnt);
    return st_rc(s, rc);
}

/* An st_row_fill for an int64_t from column 0. */
static int id_from_row(st_stmt *st, void *dst, const char *what,
                       mn_err *err)
{
    (void)what;
    (void)err;
    *(int64_t *)dst = st_col_int64(st, 0);
    return 0;
}

int store_sweep_active(store *s, int64_t **ids, size_t *n, mn_err *err)
{
    const char *what = "sweep_active";
    int rc = -1;
    st_stmt *st = NULL;
    void *a = NULL;
    size_t cnt = 0;

    *ids = NULL;
    *n = 0;
    if (st_prep(s, &st, "SELECT id FROM sweeps WHERE status = 'running'"
                " ORDER BY id", what, err))
        goto done;
    if (st_collect_rows(s, st, sizeof(int64_t), id_from_row, &a, &cnt, what,
                        err))
        goto done;
    *ids = a;
    *n = cnt;
    a = NULL;
    rc = 0;
done:
    st_finalize(st);
    free(a);
    return st_rc(s, rc);
}

int store_sweep_trial_add(store *s, int64_t id, uint32_t trial,
                          uint32_t parallel, const char *model,
                          const char *dataset, const char *params_json,
                          uint32_t steps, uint32_t periods, int64_t *run_id,
                          mn_err *err)
{
    const char *what = "sweep_trial_add";
    int rc = -1;
    st_stmt *st = NULL;
    store_sweep w = {0};

    if (!model || !dataset || !params_json)
        return mn_errf(err, "store: %s: missing model, dataset or params",
                       what);
    if (st_tx_write(s, what, err)) goto done;
    /* the sweep's row lock orders concurrent calls (DESIGN above) */
    int r = sweep_read(s, id, 1, &w, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (strcmp(w.status, "running") || trial != w.next_trial ||
        trial >= w.trials) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: sweep %lld is %s with %u of %u trials "
                "created, not ready for trial %u", what, (long long)id,
                w.status, w.next_trial, w.trials, trial);
        goto done;
    }
    if (st_prep_id(s, &st, "SELECT count(*) FROM runs WHERE sweep = ?1"
                   " AND status IN ('queued', 'running')", id, what, err))
        goto done;
    r = st_step_row(s, st, what, err);
    if (r <= 0) {
        if (r == 0) mn_errf(err, "store: %s: no count", what);
        goto done;
    }
    if (st_col_int64(st, 0) >= (int64_t)parallel) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: sweep %lld already has %u trials training",
                what, (long long)id, parallel);
        goto done;
    }
    if (st_prep(s, &st,
                "INSERT INTO runs (status, model, dataset, params_json,"
                " steps, periods, created_at, sweep, trial, owner)"
                " VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                " (SELECT owner FROM sweeps WHERE id = ?7))"
                " RETURNING id",
                what, err))
        goto done;
    st_bind_int64(st, 4, steps);
    st_bind_int64(st, 5, periods);
    st_bind_int64(st, 6, st_now_ms());
    st_bind_int64(st, 7, id);
    st_bind_int64(st, 8, trial);
    if (st_bind_text(st, 1, model) != 0 ||
        st_bind_text(st, 2, dataset) != 0 ||
        st_bind_text(st, 3, params_json) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    r = st_step_row(s, st, what, err);
    if (r <= 0) {
        if (r == 0) mn_errf(err, "store: %s: no id returned", what);
        goto done;
    }
    int64_t rid = st_col_int64(st, 0);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_prep(s, &st, "UPDATE sweeps SET next_trial = ?2 WHERE id = ?1",
                what, err))
        goto done;
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 2, (int64_t)trial + 1);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    *run_id = rid;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    store_sweep_free(&w);
    return st_rc(s, rc);
}

int store_sweep_finish(store *s, int64_t id, const char *status,
                       const char *error, mn_err *err)
{
    const char *what = "sweep_finish";
    int rc = -1;
    st_stmt *st = NULL;
    store_sweep w = {0};

    if (!status || (strcmp(status, "succeeded") && strcmp(status, "failed") &&
                    strcmp(status, "cancelled")))
        return mn_errf(err, "store: %s: status must be succeeded, failed or "
                       "cancelled", what);
    if (st_tx_write(s, what, err)) goto done;
    int r = sweep_read(s, id, 1, &w, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (strcmp(w.status, "running")) {
        rc = STORE_CONFLICT;
        mn_errf(err, "sweep %lld has already %s", (long long)id, w.status);
        goto done;
    }
    if (st_prep(s, &st, "UPDATE sweeps SET status = ?2, finished_at = ?3,"
                " error = ?4 WHERE id = ?1", what, err))
        goto done;
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 3, st_now_ms());
    if (st_bind_text(st, 2, status) != 0 ||
        st_bind_text_or_null(st, 4, error) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    store_sweep_free(&w);
    return st_rc(s, rc);
}

int store_sweep_delete(store *s, int64_t id, int64_t *run, mn_err *err)
{
    const char *what = "sweep_delete";
    int rc = -1;
    st_stmt *st = NULL;
    store_sweep w = {0};

    if (run) *run = 0;
    if (st_tx_write(s, what, err)) goto done;
    int r = sweep_read(s, id, 1, &w, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (!strcmp(w.status, "running")) {
        rc = STORE_CONFLICT;
        mn_errf(err, "sweep %lld is running: cancel it first", (long long)id);
        goto done;
    }
    /* the trials' rows stay as read until the delete (a requeue or a new
     * model version locks its run first) */
    if (st_prep_id(s, &st, "SELECT id FROM runs WHERE sweep = ?1 FOR UPDATE",
                   id, what, err))
        goto done;
    while ((r = st_step_row(s, st, what, err)) == 1) {}
    if (r < 0) goto done;
    /* a trial that has not ended, or that is a model's version, stays */
    if (st_prep_id(s, &st,
                   "SELECT r.id, r.status, v.model, v.version FROM runs r"
                   " LEFT JOIN model_versions v ON v.run_id = r.id"
                   " WHERE r.sweep = ?1 AND (r.status IN ('queued',"
                   " 'running') OR v.run_id IS NOT NULL)"
                   " ORDER BY r.id LIMIT 1",
                   id, what, err))
        goto done;
    r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r) {
        rc = STORE_CONFLICT;
        int64_t rid = st_col_int64(st, 0);
        if (run) *run = rid;
        char name[64] = "", status[16] = "";
        if (st_col_null(st, 2)) {
            if (st_col_text_into(st, 1, status, sizeof status, what, err)) {
                rc = -1;
                goto done;
            }
            mn_errf(err, "trial run %lld is %s", (long long)rid, status);
        } else {
            if (st_col_text_into(st, 2, name, sizeof name, what, err)) {
                rc = -1;
                goto done;
            }
            mn_errf(err, "trial run %lld is version %lld of model '%s': "
                    "delete the model first", (long long)rid,
                    (long long)st_col_int64(st, 3), name);
        }
        goto done;
    }
    static const char *const del[] = {
        "DELETE FROM runs WHERE sweep = ?1",
        "DELETE FROM sweeps WHERE id = ?1",
    };
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++)
        if (st_exec_id(s, del[i], id, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    store_sweep_free(&w);
    return st_rc(s, rc);
}

int store_sweep_series(store *s, int64_t id, const char *column,
                       uint32_t upto, store_series **out, size_t *n,
                       mn_err *err)
{
    const char *what = "sweep_series";
    int rc = -1;
    st_stmt *st = NULL;
    store_series *a = NULL;
    size_t cnt = 0, cap = 0;

    *out = NULL;
    *n = 0;
    /* one constant statement per objective column */
    const char *sql;
    if (column && !strcmp(column, "validation_accuracy"))
        sql = "SELECT p.run_id, p.period, p.validation_accuracy"
              " FROM periods p JOIN runs r ON r.id = p.run_id"
              " WHERE r.sweep = ?1 AND p.period <= ?2"
              " ORDER BY p.run_id, p.period";
    else if (column && !strcmp(column, "validation_log_loss"))
        sql = "SELECT p.run_id, p.period, p.validation_log_loss"
              " FROM periods p JOIN runs r ON r.id = p.run_id"
              " WHERE r.sweep = ?1 AND p.period <= ?2"
              " ORDER BY p.run_id, p.period";
    else
        return mn_errf(err, "store: %s: no objective column '%s'", what,
                       column ? column : "(null)");
    if (st_prep_id(s, &st, sql, id, what, err)) goto done;
    st_bind_int64(st, 2, upto);
    for (;;) {
        int r = st_step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        int64_t run = st_col_int64(st, 0);
        int64_t period = st_col_int64(st, 1);
        if (period < 1 || period > upto) {
            mn_errf(err, "store: %s: corrupt row: run %lld period %lld",
                    what, (long long)run, (long long)period);
            goto done;
        }
        if (!cnt || a[cnt - 1].run != run) {
            store_series *g = st_grow(a, &cap, cnt + 1, sizeof *a);
            if (!g) {
                mn_errf(err, "store: %s: out of memory", what);
                goto done;
            }
            a = g;
            store_series *e = &a[cnt++];
            memset(e, 0, sizeof *e);
            e->run = run;
            e->v = malloc((size_t)upto * sizeof *e->v);
            if (!e->v) {
                mn_errf(err, "store: %s: out of memory", what);
                goto done;
            }
        }
        /* periods come in order; a gap (none is expected) ends the known
         * prefix */
        store_series *e = &a[cnt - 1];
        if ((uint32_t)period == e->n + 1) e->v[e->n++] = st_col_real(st, 2);
    }
    *out = a;
    *n = cnt;
    a = NULL;
    rc = 0;
done:
    st_finalize(st);
    store_series_free(a, cnt);
    return st_rc(s, rc);
}
