/* periods.c: what a run writes as it trains and is evaluated: per-period
 * metrics, checkpoints (latest and best) and confusion matrices.
 * A write transaction here reads and locks the run's row first (its
 * status and best loss decide what follows), then steps its writes with
 * st_step_later: on PostgreSQL they travel with the COMMIT, so that a
 * period end is two round trips whatever it writes (store_internal.h). */
#include "server/store/store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

/* Packs counts[t][p] as 100 little-endian uint32 (row-major). */
static void counts_encode(const uint32_t c[DS_CLASSES][DS_CLASSES],
                          uint8_t out[STORE_COUNTS_BYTES])
{
    for (int t = 0; t < DS_CLASSES; t++)
        for (int p = 0; p < DS_CLASSES; p++) {
            uint8_t *o = out + 4 * (t * DS_CLASSES + p);
            uint32_t v = c[t][p];
            o[0] = (uint8_t)v;
            o[1] = (uint8_t)(v >> 8);
            o[2] = (uint8_t)(v >> 16);
            o[3] = (uint8_t)(v >> 24);
        }
}

/* Unpacks what counts_encode wrote. */
static void counts_decode(const uint8_t *in,
                          uint32_t c[DS_CLASSES][DS_CLASSES])
{
    for (int t = 0; t < DS_CLASSES; t++)
        for (int p = 0; p < DS_CLASSES; p++) {
            const uint8_t *b = in + 4 * (t * DS_CLASSES + p);
            c[t][p] = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                      (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        }
}

/* Fills a train_period from a row's columns base.. (period, step,
 * train_log_loss, validation_log_loss, validation_accuracy, seconds).
 * 0 or -1. */
int st_period_cols(st_stmt *st, int base, train_period *p,
                       const char *what, mn_err *err)
{
    if (st_col_u32(st, base, &p->period, what, err) ||
        st_col_u32(st, base + 1, &p->step, what, err))
        return -1;
    p->train_log_loss = st_col_real(st, base + 2);
    p->validation_log_loss = st_col_real(st, base + 3);
    p->validation_accuracy = st_col_real(st, base + 4);
    p->seconds = st_col_real(st, base + 5);
    return 0;
}

/* A st_row_fill for rows that begin with PERIOD_COLS. */
static int period_from_row(st_stmt *st, void *dst, const char *what,
                           mn_err *err)
{
    return st_period_cols(st, 0, dst, what, err);
}

/* The columns that period_cols reads, in its order. */
#define PERIOD_COLS                                                          \
    "period, step, train_log_loss, validation_log_loss, "                   \
    "validation_accuracy, seconds"


/* Upserts the run's checkpoint of `kind` (constant "latest"/"best")
 * inside the caller's transaction. 0 or -1. */
static int checkpoint_upsert(store *s, int64_t id, const char *kind,
                             uint32_t step, const uint8_t *ckpt, size_t len,
                             const char *what, mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    if (st_prep(s, &st,
             "INSERT INTO checkpoints"
             " (run_id, kind, step, data, created_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5)"
             " ON CONFLICT (run_id, kind) DO UPDATE SET step = excluded.step,"
             " data = excluded.data, created_at = excluded.created_at",
             what, err))
        goto done;
    if (st_bind_text(st, 2, kind) != 0 ||
        st_bind_blob(st, 4, ckpt, len) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 3, step);
    st_bind_int64(st, 5, st_now_ms());
    if (st_step_later(s, st, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    return rc;
}

/* The best checkpoint is stored once: while the best period is also the
 * latest checkpoint there is no 'best' row (the 'latest' row is the best;
 * runs.best_validation_log_loss says one exists). Before 'latest' is
 * overwritten by a checkpoint that is not better, a copy of it becomes the
 * 'best' row (ON CONFLICT DO NOTHING: only if the best still lives in
 * latest).
 * So an improving run writes one checkpoint per period, not two. */
static int checkpoint_keep_best(store *s, int64_t id, const char *what,
                                mn_err *err)
{
    return st_exec_id_later(s,
                   "INSERT INTO checkpoints"
                   " (run_id, kind, step, data, created_at)"
                   " SELECT run_id, 'best', step, data, created_at"
                   " FROM checkpoints WHERE run_id = ?1 AND kind = 'latest'"
                   " ON CONFLICT (run_id, kind) DO NOTHING",
                   id, what, err);
}

/* The new latest checkpoint is the best: the old 'best' row goes. */
static int checkpoint_drop_best(store *s, int64_t id, const char *what,
                                mn_err *err)
{
    return st_exec_id_later(s,
                   "DELETE FROM checkpoints WHERE run_id = ?1 AND kind = 'best'",
                   id, what, err);
}

/* Upserts the run's confusion of `set` (constant "validation"/"test")
 * inside the caller's transaction. 0 or -1. */
static int confusion_upsert(store *s, int64_t id, const char *set,
                            const eval_result *e, const char *what,
                            mn_err *err)
{
    int rc = -1;
    st_stmt *st = NULL;
    uint8_t counts[STORE_COUNTS_BYTES];

    counts_encode(e->confusion, counts);
    if (st_prep(s, &st,
             "INSERT INTO confusions"
             " (run_id, set_name, counts, accuracy, log_loss, examples)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
             " ON CONFLICT (run_id, set_name) DO UPDATE SET"
             " counts = excluded.counts, accuracy = excluded.accuracy,"
             " log_loss = excluded.log_loss, examples = excluded.examples",
             what, err))
        goto done;
    if (st_bind_text(st, 2, set) != 0 ||
        st_bind_blob(st, 3, counts, sizeof counts) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 1, id);
    st_bind_real(st, 4, e->accuracy);
    st_bind_real(st, 5, e->log_loss);
    st_bind_int64(st, 6, e->examples);
    if (st_step_later(s, st, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    return rc;
}

/* Records a finished period in one write transaction (see store.h). The
 * period row is replaced if it exists (a resumed run may redo a period).
 * validation may be NULL (no confusion recorded), ckpt may be NULL (no
 * checkpoint). 'best' is replaced when p->validation_log_loss is below
 * the run's best so far (a NaN loss is never best). STORE_NOT_FOUND for
 * an unknown run, STORE_CONFLICT when the run has ended. */
int store_period_add(store *s, int64_t id, const train_period *p,
                     const eval_result *validation, const uint8_t *ckpt,
                     size_t ckpt_len, mn_err *err)
{
    return store_period_add_snapshot(s, id, p, validation, ckpt, ckpt_len,
                                     NULL, 0, err);
}

/* store_period_add, and with a non-NULL snap the period's weight snapshot
 * in the same transaction (st_snapshot_put, snapshots.c). */
int store_period_add_snapshot(store *s, int64_t id, const train_period *p,
                              const eval_result *validation,
                              const uint8_t *ckpt, size_t ckpt_len,
                              const uint8_t *snap, size_t snap_len,
                              mn_err *err)
{
    const char *what = "period_add";
    int rc = -1;
    st_stmt *st = NULL;
    run_status status;
    double best = NAN;

    if (!p || p->period < 1)
        return mn_errf(err, "store: %s: period numbers start at 1", what);
    if (ckpt && !ckpt_len)
        return mn_errf(err, "store: %s: empty checkpoint", what);
    if (snap && !snap_len)
        return mn_errf(err, "store: %s: empty weight snapshot", what);
    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &status, &best, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (run_status_ended(status)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld has %s", what, (long long)id,
                run_status_name(status));
        goto done;
    }
    if (st_prep(s, &st,
             "INSERT INTO periods (run_id, period, step,"
             " train_log_loss, validation_log_loss, validation_accuracy,"
             " seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
             " ON CONFLICT (run_id, period) DO UPDATE SET"
             " step = excluded.step, train_log_loss = excluded.train_log_loss,"
             " validation_log_loss = excluded.validation_log_loss,"
             " validation_accuracy = excluded.validation_accuracy,"
             " seconds = excluded.seconds",
             what, err))
        goto done;
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 2, p->period);
    st_bind_int64(st, 3, p->step);
    st_bind_real(st, 4, p->train_log_loss);
    st_bind_real(st, 5, p->validation_log_loss);
    st_bind_real(st, 6, p->validation_accuracy);
    st_bind_real(st, 7, p->seconds);
    if (st_step_later(s, st, what, err)) goto done;

    int better = ckpt && !isnan(p->validation_log_loss) &&
                 (isnan(best) || p->validation_log_loss < best);
    if (st_prep(s, &st,
             "UPDATE runs SET step = ?2, period = ?3,"
             " validation_accuracy = ?4, validation_log_loss = ?5,"
             " best_validation_log_loss = CASE WHEN ?6 <> 0"
             " THEN ?5 ELSE best_validation_log_loss END"
             " WHERE id = ?1",
             what, err))
        goto done;
    st_bind_int64(st, 1, id);
    st_bind_int64(st, 2, p->step);
    st_bind_int64(st, 3, p->period);
    st_bind_real(st, 4, p->validation_accuracy);
    st_bind_real(st, 5, p->validation_log_loss);
    st_bind_int64(st, 6, better);
    if (st_step_later(s, st, what, err)) goto done;
    st_finalize(st);
    st = NULL;

    if (validation &&
        confusion_upsert(s, id, "validation", validation, what, err))
        goto done;
    if (ckpt) {
        if (better ? checkpoint_drop_best(s, id, what, err)
                   : !isnan(best) && checkpoint_keep_best(s, id, what, err))
            goto done;
        if (checkpoint_upsert(s, id, "latest", p->step, ckpt, ckpt_len, what,
                              err))
            goto done;
    }
    if (snap &&
        st_snapshot_put(s, id, p->period, p->step, snap, snap_len, what, err))
        goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Saves ckpt as the run's 'latest' checkpoint (runs.step is left as the
 * last period end). STORE_NOT_FOUND for an unknown run, STORE_CONFLICT
 * when it has ended. */
int store_checkpoint_put(store *s, int64_t id, uint32_t step,
                         const uint8_t *ckpt, size_t len, mn_err *err)
{
    const char *what = "checkpoint_put";
    int rc = -1;
    run_status status;

    if (!ckpt || !len)
        return mn_errf(err, "store: %s: empty checkpoint", what);
    double best = NAN;
    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &status, &best, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (run_status_ended(status)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld has %s", what, (long long)id,
                run_status_name(status));
        goto done;
    }
    if (!isnan(best) && checkpoint_keep_best(s, id, what, err)) goto done;
    if (checkpoint_upsert(s, id, "latest", step, ckpt, len, what, err))
        goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Trims an ended run's checkpoints in one write transaction (see
 * store.h). */
int store_checkpoint_retain(store *s, int64_t id, const uint8_t *latest,
                            size_t len, mn_err *err)
{
    const char *what = "checkpoint_retain";
    int rc = -1;
    st_stmt *st = NULL;
    run_status status;

    if (latest && !len)
        return mn_errf(err, "store: %s: empty checkpoint", what);
    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &status, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (!run_status_ended(status)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s", what, (long long)id,
                run_status_name(status));
        goto done;
    }
    /* no 'best' copy, and no marker saying the latest is one */
    if (checkpoint_drop_best(s, id, what, err) ||
        st_exec_id_later(s, "UPDATE runs SET best_validation_log_loss = NULL"
                   " WHERE id = ?1", id, what, err))
        goto done;
    if (latest) {
        if (st_prep(s, &st,
                 "UPDATE checkpoints SET data = ?2"
                 " WHERE run_id = ?1 AND kind = 'latest'",
                 what, err))
            goto done;
        st_bind_int64(st, 1, id);
        if (st_bind_blob(st, 2, latest, len) != 0) {
            st_fail(s, what, err);
            goto done;
        }
        if (st_step_later(s, st, what, err)) goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Reads the run's checkpoint of kind "latest" or "best" into a new
 * buffer. STORE_NOT_FOUND when the run (or that checkpoint) is missing;
 * -1 for another kind. */
int store_checkpoint_get(store *s, int64_t id, const char *kind,
                         uint8_t **buf, size_t *len, uint32_t *step,
                         mn_err *err)
{
    const char *what = "checkpoint_get";
    int rc = -1;
    st_stmt *st = NULL;

    *buf = NULL;
    *len = 0;
    if (!kind || (strcmp(kind, "latest") && strcmp(kind, "best")))
        return mn_errf(err, "store: %s: kind must be latest or best", what);
    /* 'best' is the 'best' row, or else the 'latest' row once a best
     * exists (see checkpoint_keep_best) */
    if (st_prep_id(s, &st,
                strcmp(kind, "latest") == 0
                   ? "SELECT step, data FROM checkpoints"
                     " WHERE run_id = ?1 AND kind = 'latest'"
                   : "SELECT c.step, c.data FROM checkpoints c"
                     " JOIN runs r ON r.id = c.run_id"
                     " WHERE c.run_id = ?1 AND (c.kind = 'best' OR"
                     " (c.kind = 'latest' AND r.best_validation_log_loss"
                     " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
                     " checkpoints b WHERE b.run_id = ?1 AND b.kind = 'best')))",
                id, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    /* set: gcc -O3 cannot see that col_u32 fails with mn_errf's -1 only */
    uint32_t stp = 0;
    if (st_col_u32(st, 0, &stp, what, err)) goto done;
    if (st_col_blob_dup(st, 1, buf, len, what, err)) goto done;
    if (step) *step = stp;
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}

/* Reads the run's periods in order into a new array (*out NULL and *n 0
 * when it has none). STORE_NOT_FOUND for an unknown run. */
int store_periods_get(store *s, int64_t id, train_period **out, size_t *n,
                      mn_err *err)
{
    return store_periods_page(s, id, 0, -1, out, n, err);
}

/* Reads up to limit (negative: all) of the run's periods numbered above
 * after, in order, into a new array, in one read transaction with the
 * run's existence check. STORE_NOT_FOUND for an unknown run. */
int store_periods_page(store *s, int64_t id, uint32_t after, int limit,
                       train_period **out, size_t *n, mn_err *err)
{
    const char *what = "periods_get";
    int rc = -1;
    st_stmt *st = NULL;
    void *ps = NULL;
    size_t cnt = 0;
    run_status status;

    *out = NULL;
    *n = 0;
    if (st_tx_read(s, what, err)) goto done;
    int r = st_run_state(s, id, &status, NULL, 0, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (st_prep_id(s, &st,
                "SELECT " PERIOD_COLS " FROM periods"
                " WHERE run_id = ?1 AND period > ?2 ORDER BY period"
                " LIMIT ?3",
                id, what, err))
        goto done;
    st_bind_int64(st, 2, after);
    st_bind_int64(st, 3, limit < 0 ? INT64_MAX : limit);
    if (st_collect_rows(s, st, sizeof(train_period), period_from_row, &ps, &cnt,
                     what, err))
        goto done;
    st_finalize(st);
    st = NULL;
    if (st_tx_commit(s, what, err)) goto done;
    *out = ps;
    *n = cnt;
    ps = NULL;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    free(ps);
    return st_rc(s, rc);
}
/* Reads the confusion of set "validation" or "test" into *out.
 * STORE_NOT_FOUND when not recorded (or the run is unknown); -1 for
 * another set. */
int store_confusion_get(store *s, int64_t id, const char *set,
                        eval_result *out, mn_err *err)
{
    const char *what = "confusion_get";
    int rc = -1;
    st_stmt *st = NULL;

    memset(out, 0, sizeof *out);
    if (!set || (strcmp(set, "validation") && strcmp(set, "test")))
        return mn_errf(err, "store: %s: set must be validation or test",
                       what);
    if (st_prep(s, &st,
             "SELECT counts, accuracy, log_loss, examples FROM confusions"
             " WHERE run_id = ?1 AND set_name = ?2",
             what, err))
        goto done;
    st_bind_int64(st, 1, id);
    if (st_bind_text(st, 2, set) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    const void *c = st_col_blob(st, 0);
    if (!c || st_col_bytes(st, 0) != STORE_COUNTS_BYTES) {
        mn_errf(err, "store: %s: corrupt row: counts of run %lld are not "
                "%d bytes", what, (long long)id, STORE_COUNTS_BYTES);
        goto done;
    }
    counts_decode(c, out->confusion);
    out->accuracy = st_col_real(st, 1);
    out->log_loss = st_col_real(st, 2);
    if (st_col_u32(st, 3, &out->examples, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    if (rc) memset(out, 0, sizeof *out);
    return st_rc(s, rc);
}

/* Records a test evaluation: runs.test_accuracy = e->accuracy and the
 * 'test' confusion, in one write transaction. STORE_NOT_FOUND for an
 * unknown run (the caller checks the run's state). */
int store_test_put(store *s, int64_t id, const eval_result *e, mn_err *err)
{
    const char *what = "test_put";
    int rc = -1;
    st_stmt *st = NULL;
    run_status cur;

    if (st_tx_write(s, what, err)) goto done;
    int r = st_run_state(s, id, &cur, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (st_prep(s, &st, "UPDATE runs SET test_accuracy = ?2 WHERE id = ?1",
             what, err))
        goto done;
    st_bind_int64(st, 1, id);
    st_bind_real(st, 2, e->accuracy);
    if (st_step_later(s, st, what, err)) goto done;
    if (confusion_upsert(s, id, "test", e, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

