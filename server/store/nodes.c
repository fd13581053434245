/* nodes.c: the store's nodes and leases (store.h's "nodes and leases"
 * section): the nodes table, and the lease a claimed run carries
 * (runs.node, runs.lease_expires_at), renewed by its node's heartbeat,
 * reaped when it expires, handed back when the node leaves. Written once
 * in the common dialect for both backends; the schema is
 * migrations/<backend>/0007_nodes.sql.
 *
 * DESIGN (after the Postgres job queues). A claim marks the run with its
 * node, one more attempt and a lease (store_run_claim, runs.c), as
 * graphile-worker's get_job sets locked_by, locked_at and attempts + 1
 * and River's fetch sets attempted_by and attempt + 1. Where those rescue
 * a job only after a fixed hour-long timeout (River's rescuer, Oban's
 * Lifeline plugin, graphile-worker's 4-hour lock expiry), mnistd's leases
 * are short and renewed by the node's heartbeat every second, so that a
 * dead node's runs come back within the lease. The reaper requeues the
 * runs whose lease expired, and ends `failed` a run that has lost its
 * node max_attempts times, as Oban's Lifeline discards a job whose
 * attempts are exhausted "to prevent infinitely crashing nodes"; unlike
 * those, a graceful hand-back (SIGTERM: store_node_leave, and the pool's
 * requeue at shutdown) does not count, since only lost leases count
 * (runs.crashes). A leave is graphile-worker's force_unlock_workers.
 *
 * Concurrency: every change is one write transaction. The reaper locks
 * the runs it changes (FOR UPDATE SKIP LOCKED on PostgreSQL: several
 * nodes reaping at once each take a different expired run, and never one
 * that a heartbeat or a finish is changing); the heartbeat's renewal and
 * the leave touch only the node's own runs. Lease times are ms since the
 * epoch on each node's clock: nodes on several machines need clocks
 * within a fraction of the lease (NTP). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store.h"
#include "server/store/store_internal.h"

/* The lease length in ms: lease_seconds (> 0, at most a day). 0, or -1
 * with err. */
static int lease_ms(double lease_seconds, int64_t *out, const char *what,
                    mn_err *err)
{
    if (!(lease_seconds > 0 && lease_seconds <= 86400))
        return mn_errf(err, "store: %s: lease must be in (0, 86400] seconds",
                       what);
    *out = (int64_t)(lease_seconds * 1000.0 + 0.5);
    if (*out < 1) *out = 1;
    return 0;
}

/* 0 when node is a name of 1..STORE_NODE_NAME_MAX bytes, else -1. */
int st_node_name_check(const char *node, const char *what, mn_err *err)
{
    if (!node || !*node || strlen(node) > STORE_NODE_NAME_MAX)
        return mn_errf(err, "store: %s: node name must be 1..%d bytes", what,
                       STORE_NODE_NAME_MAX);
    return 0;
}

/* Upserts the node's row: started_at and heartbeat_at = now, workers,
 * busy 0. */
int store_node_register(store *s, const char *node, int workers, mn_err *err)
{
    const char *what = "node_register";
    int rc = -1;
    st_stmt *st = NULL;

    if (st_node_name_check(node, what, err)) return -1;
    if (workers < 0)
        return mn_errf(err, "store: %s: workers must be >= 0", what);
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep(s, &st,
                "INSERT INTO nodes (name, started_at, heartbeat_at, workers,"
                " busy) VALUES (?1, ?2, ?2, ?3, 0)"
                " ON CONFLICT (name) DO UPDATE SET"
                " started_at = excluded.started_at,"
                " heartbeat_at = excluded.heartbeat_at,"
                " workers = excluded.workers, busy = 0",
                what, err))
        goto done;
    if (st_bind_text(st, 1, node)) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 2, st_now_ms());
    st_bind_int64(st, 3, workers);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* heartbeat_at = now, busy; then lease_expires_at = now + lease for the
 * node's running runs. STORE_NOT_FOUND (nothing written) when the node
 * has no row. */
int store_node_heartbeat(store *s, const char *node, int busy,
                         double lease_seconds, mn_err *err)
{
    const char *what = "node_heartbeat";
    int rc = -1;
    st_stmt *st = NULL;
    int64_t lease = 0;

    if (st_node_name_check(node, what, err) ||
        lease_ms(lease_seconds, &lease, what, err))
        return -1;
    if (busy < 0) return mn_errf(err, "store: %s: busy must be >= 0", what);
    int64_t now = st_now_ms();
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep_name(s, &st,
                     "UPDATE nodes SET heartbeat_at = ?2, busy = ?3"
                     " WHERE name = ?1",
                     node, what, err))
        goto done;
    st_bind_int64(st, 2, now);
    st_bind_int64(st, 3, busy);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_changes(s) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: node %s is not registered", what, node);
        goto done;
    }
    if (st_prep_name(s, &st,
                     "UPDATE runs SET lease_expires_at = ?2"
                     " WHERE node = ?1 AND status = 'running'",
                     node, what, err))
        goto done;
    st_bind_int64(st, 2, now + lease);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* The running runs whose lease expired (or that carry none: claimed
 * before migration 0007, or expired by store_lease_expire) go back to
 * the queue, node and lease cleared, one more crash counted; one whose
 * crashes reach max_attempts ends failed instead. */
int store_lease_reap(store *s, int max_attempts, int *n_requeued,
                     mn_err *err)
{
    const char *what = "lease_reap";
    int rc = -1;
    st_stmt *st = NULL;
    int64_t *ids = NULL;
    int64_t *crashes = NULL;
    size_t n = 0, cap = 0, ccap = 0;
    int requeued = 0;

    if (n_requeued) *n_requeued = 0;
    if (max_attempts < 1)
        return mn_errf(err, "store: %s: max_attempts must be >= 1", what);
    int64_t now = st_now_ms();
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep(s, &st,
                "SELECT id, crashes FROM runs WHERE status = 'running'"
                " AND (lease_expires_at IS NULL OR lease_expires_at < ?1)"
                " ORDER BY id FOR UPDATE SKIP LOCKED",
                what, err))
        goto done;
    st_bind_int64(st, 1, now);
    for (;;) {
        int r = st_step_row(s, st, what, err);
        if (r < 0) goto done;
        if (r == 0) break;
        int64_t *g = st_grow(ids, &cap, n + 1, sizeof *ids);
        if (g) ids = g;
        int64_t *gc = g ? st_grow(crashes, &ccap, n + 1, sizeof *crashes)
                        : NULL;
        if (gc) crashes = gc;
        if (!g || !gc) {
            mn_errf(err, "store: %s: out of memory", what);
            goto done;
        }
        ids[n] = st_col_int64(st, 0);
        crashes[n] = st_col_int64(st, 1) + 1;
        n++;
    }
    char why[160];  /* bound (borrowed) until the statement is stepped */
    for (size_t i = 0; i < n; i++) {
        if (crashes[i] >= max_attempts) {
            snprintf(why, sizeof why,
                     "its training was lost with its node %lld times (the "
                     "node died or stopped renewing its lease); given up "
                     "after %d", (long long)crashes[i], max_attempts);
            if (st_prep(s, &st,
                        "UPDATE runs SET status = 'failed', finished_at = ?2,"
                        " error = ?3, crashes = ?4, lease_expires_at = NULL"
                        " WHERE id = ?1",
                        what, err))
                goto done;
            if (st_bind_text(st, 3, why)) {
                st_fail(s, what, err);
                goto done;
            }
            st_bind_int64(st, 2, now);
        } else {
            if (st_prep(s, &st,
                        "UPDATE runs SET status = 'queued', node = NULL,"
                        " lease_expires_at = NULL, crashes = ?4"
                        " WHERE id = ?1",
                        what, err))
                goto done;
            requeued++;
        }
        st_bind_int64(st, 1, ids[i]);
        st_bind_int64(st, 4, crashes[i]);
        if (st_step_done(s, st, what, err)) goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    if (n_requeued) *n_requeued = requeued;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    free(ids);
    free(crashes);
    return st_rc(s, rc);
}

/* The node's running runs (every node's when node is NULL) get an
 * expired lease: the next store_lease_reap takes them. */
int store_lease_expire(store *s, const char *node, int *n, mn_err *err)
{
    const char *what = "lease_expire";
    int rc = -1;
    st_stmt *st = NULL;

    if (n) *n = 0;
    if (node && st_node_name_check(node, what, err)) return -1;
    if (st_tx_write(s, what, err)) goto done;
    if (node ? st_prep_name(s, &st,
                            "UPDATE runs SET lease_expires_at = 0"
                            " WHERE status = 'running' AND node = ?1",
                            node, what, err)
             : st_prep(s, &st,
                       "UPDATE runs SET lease_expires_at = 0"
                       " WHERE status = 'running'",
                       what, err))
        goto done;
    if (st_step_done(s, st, what, err)) goto done;
    int64_t changed = st_changes(s);
    if (st_tx_commit(s, what, err)) goto done;
    if (n) *n = (int)changed;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* The node's running runs (every running run when node is NULL) go back
 * to the queue at once (node and lease cleared; no crash counted) and its
 * row (every row) is deleted. */
int store_node_leave(store *s, const char *node, mn_err *err)
{
    const char *what = "node_leave";
    int rc = -1;
    st_stmt *st = NULL;

    if (node && st_node_name_check(node, what, err)) return -1;
    if (st_tx_write(s, what, err)) goto done;
    if ((node ? st_prep_name(s, &st,
                             "UPDATE runs SET status = 'queued', node = NULL,"
                             " lease_expires_at = NULL"
                             " WHERE node = ?1 AND status = 'running'",
                             node, what, err)
              : st_prep(s, &st,
                        "UPDATE runs SET status = 'queued', node = NULL,"
                        " lease_expires_at = NULL WHERE status = 'running'",
                        what, err)) ||
        st_step_done(s, st, what, err))
        goto done;
    if ((node ? st_prep_name(s, &st, "DELETE FROM nodes WHERE name = ?1", node,
                             what, err)
              : st_prep(s, &st, "DELETE FROM nodes", what, err)) ||
        st_step_done(s, st, what, err))
        goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Deletes the rows of the nodes whose heartbeat is older than before_ms
 * and that hold no running run. */
int store_node_forget(store *s, int64_t before_ms, int *n, mn_err *err)
{
    const char *what = "node_forget";
    int rc = -1;
    st_stmt *st = NULL;

    if (n) *n = 0;
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep(s, &st,
                "DELETE FROM nodes WHERE heartbeat_at < ?1 AND NOT EXISTS"
                " (SELECT 1 FROM runs WHERE runs.status = 'running'"
                " AND runs.node = nodes.name)",
                what, err))
        goto done;
    st_bind_int64(st, 1, before_ms);
    if (st_step_done(s, st, what, err)) goto done;
    int64_t gone = st_changes(s);
    if (st_tx_commit(s, what, err)) goto done;
    if (n) *n = (int)gone;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* 1 when run id is running with node = node, 0 when not (another node's,
 * queued, ended or gone), -1 on error. */
int store_run_held(store *s, int64_t id, const char *node, mn_err *err)
{
    const char *what = "run_held";
    int rc = -1;
    st_stmt *st = NULL;

    if (st_node_name_check(node, what, err)) return -1;
    if (st_prep_id(s, &st,
                   "SELECT 1 FROM runs WHERE id = ?1 AND status = 'running'"
                   " AND node = ?2",
                   id, what, err))
        goto done;
    if (st_bind_text(st, 2, node)) {
        st_fail(s, what, err);
        goto done;
    }
    rc = st_step_row(s, st, what, err);
done:
    st_finalize(st);
    return st_rc(s, rc);
}

/* Fills *dst (a store_node) from a row of name, started_at, heartbeat_at,
 * workers, busy; an st_row_fill. */
static int node_from_row(st_stmt *st, void *dst, const char *what,
                         mn_err *err)
{
    store_node *n = dst;
    memset(n, 0, sizeof *n);
    if (st_col_text_into(st, 0, n->name, sizeof n->name, what, err) ||
        st_col_u32(st, 3, &n->workers, what, err) ||
        st_col_u32(st, 4, &n->busy, what, err)) {
        memset(n, 0, sizeof *n);
        return -1;
    }
    n->started_at = st_col_time(st, 1);
    n->heartbeat_at = st_col_time(st, 2);
    return 0;
}

/* Every registered node by name. */
int store_node_list(store *s, store_node **out, size_t *n, mn_err *err)
{
    const char *what = "node_list";
    int rc = -1;
    st_stmt *st = NULL;
    void *arr = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (st_prep(s, &st,
                "SELECT name, started_at, heartbeat_at, workers, busy"
                " FROM nodes ORDER BY name",
                what, err) ||
        st_collect_rows(s, st, sizeof(store_node), node_from_row, &arr, &cnt,
                        what, err))
        goto done;
    *out = arr;
    *n = cnt;
    arr = NULL;
    rc = 0;
done:
    st_finalize(st);
    free(arr);
    return st_rc(s, rc);
}
