/* models.c: named models, their numbered versions and aliases. */
#include "server/store/store.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

/* ------------------------------------------------------------------ models */

/* Binds text to ?i; 0 or -1. */
static int bind_text(store *s, st_stmt *st, int i, const char *v,
                     const char *what, mn_err *err)
{
    if (st_bind_text(st, i, v) != 0)
        return st_fail(s, what, err);
    return 0;
}

/* Checks a model or alias name: 1..STORE_MODEL_NAME_MAX bytes. */
static int model_name_ok(const char *name, const char *kind, const char *what,
                         mn_err *err)
{
    if (!name || !*name || strlen(name) > STORE_MODEL_NAME_MAX)
        return mn_errf(err, "store: %s: %s name must be 1..%d bytes", what,
                       kind, STORE_MODEL_NAME_MAX);
    return 0;
}

/* Does model `name` exist? 1, 0 or -1. lock: its row stays locked until
 * the transaction ends (so that versions are numbered one at a time). */
static int model_exists(store *s, const char *name, int lock,
                        const char *what, mn_err *err)
{
    st_stmt *st = NULL;
    int r = -1;
    if (!st_prep(s, &st,
                 lock ? "SELECT 1 FROM models WHERE name = ?1 FOR UPDATE"
                      : "SELECT 1 FROM models WHERE name = ?1",
                 what, err) &&
        !bind_text(s, st, 1, name, what, err))
        r = st_step_row(s, st, what, err);
    st_finalize(st);
    return r;
}

void store_model_free(store_model *m)
{
    if (!m) return;
    free(m->description);
    m->description = NULL;
}

void store_models_free(store_model *ms, size_t n)
{
    for (size_t i = 0; i < n; i++) store_model_free(&ms[i]);
    free(ms);
}

int store_model_create(store *s, const char *name, const char *description,
                       mn_err *err)
{
    return store_model_create_owned(s, name, description, NULL, err);
}

int store_model_create_owned(store *s, const char *name,
                             const char *description, const char *owner,
                             mn_err *err)
{
    const char *what = "model_create";
    int rc = -1;
    st_stmt *st = NULL;

    if (model_name_ok(name, "model", what, err)) return -1;
    if (st_tx_write(s, what, err)) goto done;
    int r = model_exists(s, name, 0, what, err);
    if (r < 0) goto done;
    if (r) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: model %s exists", what, name);
        goto done;
    }
    if (st_prep(s, &st, "INSERT INTO models (name, description, created_at,"
             " owner) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
             what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, description ? description : "", what, err))
        goto done;
    st_bind_int64(st, 3, st_now_ms());
    if (st_bind_text_or_null(st, 4, owner) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    if (st_step_done(s, st, what, err)) goto done;
    if (st_changes(s) == 0) { /* a concurrent create committed first */
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: model %s exists", what, name);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* The columns every model query selects, in model_from_row's order. */
#define MODEL_COLS                                                          \
    "m.name, m.description, m.created_at,"                                  \
    " (SELECT count(*) FROM model_versions v WHERE v.model = m.name),"      \
    " (SELECT coalesce(max(version), 0) FROM model_versions v"              \
    "  WHERE v.model = m.name), m.owner,"                                   \
    " CASE WHEN m.owner IS NULL OR EXISTS (SELECT 1 FROM users u"           \
    "  WHERE u.name = m.owner AND u.admin <> 0) THEN 1 ELSE 0 END"

/* Fills a store_model from a row of MODEL_COLS. */
static int model_from_row(st_stmt *st, void *dst, const char *what,
                          mn_err *err)
{
    store_model *m = dst;
    memset(m, 0, sizeof *m);
    if (st_col_text_into(st, 0, m->name, sizeof m->name, what, err) ||
        st_col_text_dup(st, 1, &m->description, 0, what, err))
        return -1;
    m->created_at = st_col_time(st, 2);
    m->versions = st_col_int64(st, 3);
    m->latest = st_col_int64(st, 4);
    if (!st_col_null(st, 5) &&
        st_col_text_into(st, 5, m->owner, sizeof m->owner, what, err)) {
        store_model_free(m);
        return -1;
    }
    m->shared = st_col_int64(st, 6) != 0;
    return 0;
}

static int version_from_row(st_stmt *st, void *dst, const char *what,
                            mn_err *err)
{
    store_model_version *v = dst;
    memset(v, 0, sizeof *v);
    v->version = st_col_int64(st, 0);
    v->run_id = st_col_int64(st, 1);
    v->created_at = st_col_time(st, 2);
    v->validation_accuracy = st_col_real(st, 4);
    v->test_accuracy = st_col_real(st, 5);
    return st_col_text_into(st, 3, v->model, sizeof v->model, what, err);
}

static int alias_from_row(st_stmt *st, void *dst, const char *what,
                          mn_err *err)
{
    store_model_alias *a = dst;
    memset(a, 0, sizeof *a);
    if (st_col_text_into(st, 0, a->alias, sizeof a->alias, what, err)) return -1;
    a->version = st_col_int64(st, 1);
    return 0;
}

/* Collects the rows of sql (?1 = name) into *out, *n (new array). */
static int model_rows(store *s, const char *sql, const char *name,
                      size_t size, st_row_fill fill, void **out, size_t *n,
                      const char *what, mn_err *err)
{
    st_stmt *st = NULL;
    int rc = -1;
    *out = NULL;
    *n = 0;
    if (!st_prep(s, &st, sql, what, err) && !bind_text(s, st, 1, name, what, err))
        rc = st_collect_rows(s, st, size, fill, out, n, what, err);
    st_finalize(st);
    return rc;
}

int store_model_get(store *s, const char *name, store_model *out,
                    store_model_version **v, size_t *nv,
                    store_model_alias **a, size_t *na, mn_err *err)
{
    const char *what = "model_get";
    int rc = -1;
    st_stmt *st = NULL;
    void *vs = NULL, *as = NULL;
    size_t nvs = 0, nas = 0;

    memset(out, 0, sizeof *out);
    if (st_tx_read(s, what, err)) goto done;
    if (st_prep(s, &st, "SELECT " MODEL_COLS " FROM models m WHERE m.name = ?1",
             what, err) ||
        bind_text(s, st, 1, name, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no model %s", what, name);
        goto done;
    }
    if (model_from_row(st, out, what, err)) goto done;
    if (v && model_rows(s, "SELECT v.version, v.run_id, v.created_at,"
                        " r.model, r.validation_accuracy, r.test_accuracy"
                        " FROM model_versions v JOIN runs r"
                        " ON r.id = v.run_id WHERE v.model = ?1"
                        " ORDER BY v.version",
                        name, sizeof(store_model_version), version_from_row,
                        &vs, &nvs, what, err))
        goto done;
    if (a && model_rows(s, "SELECT alias, version FROM model_aliases"
                        " WHERE model = ?1 ORDER BY alias",
                        name, sizeof(store_model_alias), alias_from_row, &as,
                        &nas, what, err))
        goto done;
    if (v) {
        *v = vs;
        *nv = nvs;
        vs = NULL;
    }
    if (a) {
        *a = as;
        *na = nas;
        as = NULL;
    }
    rc = 0;
done:
    if (rc) store_model_free(out);
    free(vs);
    free(as);
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_model_list(store *s, store_model **out, size_t *n, mn_err *err)
{
    const char *what = "model_list";
    int rc = -1;
    st_stmt *st = NULL;
    void *v = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (st_prep(s, &st, "SELECT " MODEL_COLS " FROM models m ORDER BY m.name",
             what, err))
        goto done;
    if (st_collect_rows(s, st, sizeof(store_model), model_from_row, &v, &cnt,
                     what, err))
        goto done;
    *out = v;
    *n = cnt;
    v = NULL;
    cnt = 0;
    rc = 0;
done:
    st_finalize(st);
    store_models_free(v, cnt);
    return st_rc(s, rc);
}

int store_model_delete(store *s, const char *name, mn_err *err)
{
    const char *what = "model_delete";
    int rc = -1;
    st_stmt *st = NULL;

    if (st_tx_write(s, what, err)) goto done;
    /* aliases first: their foreign key names the versions */
    static const char *const sql[] = {
        "DELETE FROM model_aliases WHERE model = ?1",
        "DELETE FROM model_versions WHERE model = ?1",
        "DELETE FROM models WHERE name = ?1",
    };
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        st_finalize(st);
        st = NULL;
        if (st_prep(s, &st, sql[i], what, err) ||
            bind_text(s, st, 1, name, what, err) ||
            st_step_done(s, st, what, err))
            goto done;
    }
    if (st_changes(s) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no model %s", what, name);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_model_version_add(store *s, const char *name, int64_t run_id,
                            int64_t *version, mn_err *err)
{
    const char *what = "model_version_add";
    int rc = -1;
    st_stmt *st = NULL;
    run_status cur;

    if (st_tx_write(s, what, err)) goto done;
    int r = model_exists(s, name, 1, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: no model %s", what, name);
        goto done;
    }
    r = st_run_state(s, run_id, &cur, NULL, 1, what, err);
    if (r) {
        rc = r > 0 ? r : -1;
        goto done;
    }
    if (cur != RUN_SUCCEEDED) {
        rc = STORE_CONFLICT;
        mn_errf(err, "store: %s: run %lld is %s", what, (long long)run_id,
                run_status_name(cur));
        goto done;
    }
    if (st_prep(s, &st, "INSERT INTO model_versions (model, version, run_id,"
             " created_at) SELECT ?1, coalesce(max(version), 0) + 1, ?2, ?3"
             " FROM model_versions WHERE model = ?1 RETURNING version",
             what, err) ||
        bind_text(s, st, 1, name, what, err))
        goto done;
    st_bind_int64(st, 2, run_id);
    st_bind_int64(st, 3, st_now_ms());
    if (st_step_row(s, st, what, err) != 1) goto done;
    *version = st_col_int64(st, 0);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

/* Does model `name` have `version`? 1, 0 or -1. */
static int version_exists(store *s, const char *name, int64_t version,
                          const char *what, mn_err *err)
{
    st_stmt *st = NULL;
    int r = -1;
    if (!st_prep(s, &st, "SELECT 1 FROM model_versions WHERE model = ?1 AND"
              " version = ?2", what, err) &&
        !bind_text(s, st, 1, name, what, err)) {
        st_bind_int64(st, 2, version);
        r = st_step_row(s, st, what, err);
    }
    st_finalize(st);
    return r;
}

int store_model_alias_set(store *s, const char *name, const char *alias,
                          int64_t version, int *created, mn_err *err)
{
    const char *what = "model_alias_set";
    int rc = -1;
    st_stmt *st = NULL;

    if (model_name_ok(alias, "alias", what, err)) return -1;
    if (st_tx_write(s, what, err)) goto done;
    int r = version_exists(s, name, version, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: model %s has no version %lld", what, name,
                (long long)version);
        goto done;
    }
    if (st_prep(s, &st, "SELECT 1 FROM model_aliases WHERE model = ?1 AND"
             " alias = ?2", what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, alias, what, err))
        goto done;
    if ((r = st_step_row(s, st, what, err)) < 0) goto done;
    *created = r == 0;
    st_finalize(st);
    st = NULL;
    if (st_prep(s, &st, "INSERT INTO model_aliases (model, alias, version)"
             " VALUES (?1, ?2, ?3) ON CONFLICT (model, alias)"
             " DO UPDATE SET version = excluded.version", what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, alias, what, err))
        goto done;
    st_bind_int64(st, 3, version);
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_model_alias_delete(store *s, const char *name, const char *alias,
                             mn_err *err)
{
    const char *what = "model_alias_delete";
    int rc = -1;
    st_stmt *st = NULL;

    if (st_tx_write(s, what, err)) goto done;
    if (st_prep(s, &st, "DELETE FROM model_aliases WHERE model = ?1 AND"
             " alias = ?2", what, err) ||
        bind_text(s, st, 1, name, what, err) ||
        bind_text(s, st, 2, alias, what, err) || st_step_done(s, st, what, err))
        goto done;
    if (st_changes(s) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "store: %s: model %s has no alias %s", what, name, alias);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_model_resolve(store *s, const char *name, int64_t version,
                        const char *alias, int64_t *run_id,
                        int64_t *version_out, mn_err *err)
{
    const char *what = "model_resolve";
    int rc = -1;
    st_stmt *st = NULL;

    if (st_tx_read(s, what, err)) goto done;
    int r = model_exists(s, name, 0, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "no model '%s'", name);
        goto done;
    }
    const char *sql =
        version > 0 ? "SELECT version, run_id FROM model_versions"
                      " WHERE model = ?1 AND version = ?2"
        : alias ? "SELECT v.version, v.run_id FROM model_aliases a"
                  " JOIN model_versions v ON v.model = a.model"
                  " AND v.version = a.version"
                  " WHERE a.model = ?1 AND a.alias = ?3"
                : "SELECT version, run_id FROM model_versions"
                  " WHERE model = ?1 ORDER BY version DESC LIMIT 1";
    if (st_prep(s, &st, sql, what, err) || bind_text(s, st, 1, name, what, err))
        goto done;
    if (version > 0)
        st_bind_int64(st, 2, version);
    else if (alias && st_bind_text(st, 3, alias) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    if ((r = st_step_row(s, st, what, err)) < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        if (version > 0)
            mn_errf(err, "model '%s' has no version %lld", name,
                    (long long)version);
        else if (alias)
            mn_errf(err, "model '%s' has no alias '%s'", name, alias);
        else
            mn_errf(err, "model '%s' has no version yet: register a run with "
                    "POST /models/%s/versions", name, name);
        goto done;
    }
    *version_out = st_col_int64(st, 0);
    *run_id = st_col_int64(st, 1);
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_run_model_version(store *s, int64_t run_id, char model[64],
                            int64_t *version, mn_err *err)
{
    const char *what = "run_model_version";
    st_stmt *st = NULL;
    int rc = -1;
    if (st_prep_id(s, &st, "SELECT model, version FROM model_versions"
                " WHERE run_id = ?1 ORDER BY model, version LIMIT 1", run_id,
                what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (st_col_text_into(st, 0, model, 64, what, err)) goto done;
    *version = st_col_int64(st, 1);
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}

