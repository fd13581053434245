/* sweeps.c: the store's sweeps (hyperparameter searches, store.h's
 * "sweeps" section) in SQLite, on the helpers store.c shares through
 * store_internal.h; the schema is migrations/0006_sweeps.sql.
 *
 * DESIGN: as store.c: one connection per thread, every write in BEGIN
 * IMMEDIATE (so that the checks of store_sweep_trial_add and its insert
 * see one state: two threads can never both create trial k, nor create
 * more than `parallel` active trials), reads of several statements in one
 * BEGIN snapshot, prepared statements only, rollback in the cleanup
 * label. Self-contained: nothing here is used by store.c, so that another
 * backend can carry this file's functions over one by one. */
#include <math.h>
#include <sqlite3.h>
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
    "id, status, params_json, trials, next_trial, created_at, finished_at, error"

/* Fills *w from a row of SWEEP_COLS (new strings). 0, or -1 with *w
 * zeroed for a corrupt row. */
static int sweep_from_row(sqlite3_stmt *st, store_sweep *w, const char *what,
                          mn_err *err)
{
    memset(w, 0, sizeof *w);
    w->id = sqlite3_column_int64(st, 0);
    const unsigned char *status = sqlite3_column_text(st, 1);
    sqlite3_int64 trials = sqlite3_column_int64(st, 3);
    sqlite3_int64 next = sqlite3_column_int64(st, 4);
    if (!status || strlen((const char *)status) >= sizeof w->status ||
        trials < 1 || trials > UINT32_MAX || next < 0 || next > trials)
        return mn_errf(err, "store: %s: corrupt row: sweep %lld", what,
                       (long long)w->id);
    strcpy(w->status, (const char *)status);
    w->trials = (uint32_t)trials;
    w->next_trial = (uint32_t)next;
    w->created_at = sqlite3_column_int64(st, 5);
    w->finished_at = sqlite3_column_type(st, 6) == SQLITE_NULL
                         ? 0 : sqlite3_column_int64(st, 6);
    if (store_sql_col_text_dup(st, 2, &w->params_json, 0, what, err) ||
        store_sql_col_text_dup(st, 7, &w->error, 1, what, err)) {
        store_sweep_free(w);
        memset(w, 0, sizeof *w);
        return -1;
    }
    return 0;
}

/* Appends one element of size bytes to *arr (*n used, *cap allocated).
 * The new element (zeroed), or NULL when memory runs out (*arr kept). */
static void *push(void **arr, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        void *g = realloc(*arr, c * size);
        if (!g) return NULL;
        *arr = g;
        *cap = c;
    }
    void *e = (char *)*arr + (*n)++ * size;
    memset(e, 0, size);
    return e;
}

int store_sweep_create(store *s, const char *params_json, uint32_t trials,
                       int64_t *id, mn_err *err)
{
    const char *what = "sweep_create";
    int rc = -1;
    sqlite3_stmt *st = NULL;

    if (!params_json || trials < 1)
        return mn_errf(err, "store: %s: no params or no trials", what);
    if (store_sql_tx_write(s, what, err)) goto done;
    if (store_sql_prep(s, &st,
                       "INSERT INTO sweeps (status, params_json, trials,"
                       " created_at) VALUES ('running', ?1, ?2, ?3)",
                       what, err))
        goto done;
    if (sqlite3_bind_text(st, 1, params_json, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(st, 2, trials) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, store_sql_now_ms()) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    if (store_sql_step_done(s, st, what, err)) goto done;
    int64_t new_id = store_sql_last_id(s);
    if (store_sql_tx_commit(s, what, err)) goto done;
    *id = new_id;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_sql_tx_end(s);
    return store_sql_rc(s, rc);
}

/* Reads sweep id into *w inside the caller's transaction. 0,
 * STORE_NOT_FOUND or -1. */
static int sweep_read(store *s, int64_t id, store_sweep *w, const char *what,
                      mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    memset(w, 0, sizeof *w);
    if (store_sql_prep(s, &st, "SELECT " SWEEP_COLS " FROM sweeps"
                       " WHERE id = ?1", what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    int r = store_sql_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (sweep_from_row(st, w, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    return rc;
}

/* The trials of sweep id in trial order into a new array, inside the
 * caller's transaction. 0 or -1. */
static int trials_read(store *s, int64_t id, store_run **out, size_t *n,
                       const char *what, mn_err *err)
{
    int rc = -1;
    sqlite3_stmt *st = NULL;
    store_run *runs = NULL;
    size_t cnt = 0, cap = 0;
    char sql[512];

    *out = NULL;
    *n = 0;
    snprintf(sql, sizeof sql, "SELECT %s FROM runs WHERE sweep = ?1"
             " ORDER BY trial", store_sql_run_cols());
    if (store_sql_prep(s, &st, sql, what, err)) goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    for (;;) {
        int r = store_sql_step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        store_run *e = push((void **)&runs, &cnt, &cap, sizeof *runs);
        if (!e) {
            mn_errf(err, "store: %s: out of memory", what);
            goto done;
        }
        if (store_sql_run_from_row(st, e, what, err)) {
            cnt--;
            goto done;
        }
    }
    *out = runs;
    *n = cnt;
    runs = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
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
    if (store_sql_tx_read(s, what, err)) goto done;
    rc = sweep_read(s, id, out, what, err);
    if (rc) goto done;
    rc = -1;
    if (trials && trials_read(s, id, trials, n, what, err)) goto done;
    if (store_sql_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    store_sql_tx_end(s);
    if (rc) {
        store_sweep_free(out);
        memset(out, 0, sizeof *out);
        if (trials) {
            store_runs_free(*trials, *n);
            *trials = NULL;
            *n = 0;
        }
    }
    return store_sql_rc(s, rc);
}

int store_sweep_list(store *s, int limit, int offset, store_sweep **out,
                     size_t *n, mn_err *err)
{
    const char *what = "sweep_list";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    store_sweep *ws = NULL;
    size_t cnt = 0, cap = 0;

    *out = NULL;
    *n = 0;
    if (offset < 0)
        return mn_errf(err, "store: %s: offset must be >= 0", what);
    if (store_sql_prep(s, &st, "SELECT " SWEEP_COLS " FROM sweeps"
                       " ORDER BY id DESC LIMIT ?1 OFFSET ?2", what, err))
        goto done;
    if (sqlite3_bind_int(st, 1, limit < 0 ? -1 : limit) != SQLITE_OK ||
        sqlite3_bind_int(st, 2, offset) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    for (;;) {
        int r = store_sql_step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        store_sweep *e = push((void **)&ws, &cnt, &cap, sizeof *ws);
        if (!e) {
            mn_errf(err, "store: %s: out of memory", what);
            goto done;
        }
        if (sweep_from_row(st, e, what, err)) {
            cnt--;
            goto done;
        }
    }
    *out = ws;
    *n = cnt;
    ws = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_sweeps_free(ws, cnt);
    return store_sql_rc(s, rc);
}

int store_sweep_active(store *s, int64_t **ids, size_t *n, mn_err *err)
{
    const char *what = "sweep_active";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    int64_t *a = NULL;
    size_t cnt = 0, cap = 0;

    *ids = NULL;
    *n = 0;
    if (store_sql_prep(s, &st, "SELECT id FROM sweeps WHERE status ="
                       " 'running' ORDER BY id", what, err))
        goto done;
    for (;;) {
        int r = store_sql_step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        int64_t *e = push((void **)&a, &cnt, &cap, sizeof *a);
        if (!e) {
            mn_errf(err, "store: %s: out of memory", what);
            goto done;
        }
        *e = sqlite3_column_int64(st, 0);
    }
    *ids = a;
    *n = cnt;
    a = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    free(a);
    return store_sql_rc(s, rc);
}

int store_sweep_trial_add(store *s, int64_t id, uint32_t trial,
                          uint32_t parallel, const char *model,
                          const char *dataset, const char *params_json,
                          uint32_t steps, uint32_t periods, int64_t *run_id,
                          mn_err *err)
{
    const char *what = "sweep_trial_add";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    store_sweep w = {0};

    if (!model || !dataset || !params_json)
        return mn_errf(err, "store: %s: missing model, dataset or params",
                       what);
    if (store_sql_tx_write(s, what, err)) goto done;
    int r = sweep_read(s, id, &w, what, err);
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
    if (store_sql_prep(s, &st, "SELECT count(*) FROM runs WHERE sweep = ?1"
                       " AND status IN ('queued', 'running')", what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    if (store_sql_step_row(s, st, what, err) != 1) {
        if (!err || !err->msg[0]) mn_errf(err, "store: %s: no count", what);
        goto done;
    }
    if (sqlite3_column_int64(st, 0) >= (sqlite3_int64)parallel) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: sweep %lld already has %u trials training",
                what, (long long)id, parallel);
        goto done;
    }
    if (store_sql_prep(s, &st,
                       "INSERT INTO runs (status, model, dataset,"
                       " params_json, steps, periods, created_at, sweep,"
                       " trial) VALUES ('queued', ?1, ?2, ?3, ?4, ?5, ?6,"
                       " ?7, ?8)",
                       what, err))
        goto done;
    if (sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, dataset, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, params_json, -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(st, 4, steps) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, periods) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, store_sql_now_ms()) != SQLITE_OK ||
        sqlite3_bind_int64(st, 7, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 8, trial) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    if (store_sql_step_done(s, st, what, err)) goto done;
    int64_t rid = store_sql_last_id(s);
    if (store_sql_prep(s, &st, "UPDATE sweeps SET next_trial = ?2"
                       " WHERE id = ?1", what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, (sqlite3_int64)trial + 1) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    if (store_sql_step_done(s, st, what, err)) goto done;
    if (store_sql_tx_commit(s, what, err)) goto done;
    *run_id = rid;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_sql_tx_end(s);
    store_sweep_free(&w);
    return store_sql_rc(s, rc);
}

int store_sweep_finish(store *s, int64_t id, const char *status,
                       const char *error, mn_err *err)
{
    const char *what = "sweep_finish";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    store_sweep w = {0};

    if (!status || (strcmp(status, "succeeded") && strcmp(status, "failed") &&
                    strcmp(status, "cancelled")))
        return mn_errf(err, "store: %s: status must be succeeded, failed or "
                       "cancelled", what);
    if (store_sql_tx_write(s, what, err)) goto done;
    int r = sweep_read(s, id, &w, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (strcmp(w.status, "running")) {
        rc = STORE_CONFLICT;
        mn_errf(err, "sweep %lld has already %s", (long long)id, w.status);
        goto done;
    }
    if (store_sql_prep(s, &st, "UPDATE sweeps SET status = ?2,"
                       " finished_at = ?3, error = ?4 WHERE id = ?1",
                       what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, store_sql_now_ms()) != SQLITE_OK ||
        (error ? sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC)
               : sqlite3_bind_null(st, 4)) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    if (store_sql_step_done(s, st, what, err)) goto done;
    if (store_sql_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_sql_tx_end(s);
    store_sweep_free(&w);
    return store_sql_rc(s, rc);
}

int store_sweep_delete(store *s, int64_t id, int64_t *run, mn_err *err)
{
    const char *what = "sweep_delete";
    int rc = -1;
    sqlite3_stmt *st = NULL;
    store_sweep w = {0};

    if (run) *run = 0;
    if (store_sql_tx_write(s, what, err)) goto done;
    int r = sweep_read(s, id, &w, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (!strcmp(w.status, "running")) {
        rc = STORE_CONFLICT;
        mn_errf(err, "sweep %lld is running: cancel it first", (long long)id);
        goto done;
    }
    /* a trial that has not ended, or that is a model's version, stays */
    if (store_sql_prep(s, &st,
                       "SELECT r.id, r.status, v.model, v.version FROM runs r"
                       " LEFT JOIN model_versions v ON v.run_id = r.id"
                       " WHERE r.sweep = ?1 AND (r.status IN ('queued',"
                       " 'running') OR v.run_id IS NOT NULL)"
                       " ORDER BY r.id LIMIT 1",
                       what, err))
        goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    r = store_sql_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r) {
        rc = STORE_CONFLICT;
        int64_t rid = sqlite3_column_int64(st, 0);
        if (run) *run = rid;
        if (sqlite3_column_type(st, 2) != SQLITE_NULL)
            mn_errf(err, "trial run %lld is version %lld of model '%s': "
                    "delete the model first", (long long)rid,
                    (long long)sqlite3_column_int64(st, 3),
                    (const char *)sqlite3_column_text(st, 2));
        else
            mn_errf(err, "trial run %lld is %s", (long long)rid,
                    (const char *)sqlite3_column_text(st, 1));
        goto done;
    }
    static const char *const del[] = {
        "DELETE FROM runs WHERE sweep = ?1",
        "DELETE FROM sweeps WHERE id = ?1",
    };
    for (size_t i = 0; i < sizeof del / sizeof del[0]; i++) {
        if (store_sql_prep(s, &st, del[i], what, err)) goto done;
        if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
            store_sql_fail(s, what, err);
            goto done;
        }
        if (store_sql_step_done(s, st, what, err)) goto done;
    }
    if (store_sql_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_sql_tx_end(s);
    store_sweep_free(&w);
    return store_sql_rc(s, rc);
}

int store_sweep_series(store *s, int64_t id, const char *column,
                       uint32_t upto, store_series **out, size_t *n,
                       mn_err *err)
{
    const char *what = "sweep_series";
    int rc = -1;
    sqlite3_stmt *st = NULL;
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
    if (store_sql_prep(s, &st, sql, what, err)) goto done;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, upto) != SQLITE_OK) {
        store_sql_fail(s, what, err);
        goto done;
    }
    for (;;) {
        int r = store_sql_step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        int64_t run = sqlite3_column_int64(st, 0);
        sqlite3_int64 period = sqlite3_column_int64(st, 1);
        if (period < 1 || period > upto) {
            mn_errf(err, "store: %s: corrupt row: run %lld period %lld",
                    what, (long long)run, (long long)period);
            goto done;
        }
        store_series *e = cnt ? &a[cnt - 1] : NULL;
        if (!e || e->run != run) {
            e = push((void **)&a, &cnt, &cap, sizeof *a);
            if (!e) {
                mn_errf(err, "store: %s: out of memory", what);
                goto done;
            }
            e->run = run;
            e->v = malloc((size_t)upto * sizeof *e->v);
            if (!e->v) {
                mn_errf(err, "store: %s: out of memory", what);
                goto done;
            }
        }
        /* periods come in order; a gap (none is expected) ends the known
         * prefix */
        if ((uint32_t)period == e->n + 1)
            e->v[e->n++] = store_sql_col_real(st, 2);
    }
    *out = a;
    *n = cnt;
    a = NULL;
    rc = 0;
done:
    sqlite3_finalize(st);
    store_series_free(a, cnt);
    return store_sql_rc(s, rc);
}
