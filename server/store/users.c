/* users.c: the users of a service with several users (issue 16): their
 * token hashes, admin flag and revocation, and the owner of a resource as
 * the HTTP layer checks it (store_owner_get). Tokens themselves are never
 * stored; server/http/auth.h makes and hashes them. */
#include "server/store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store_internal.h"

/* Fills a store_user from a row (name, admin, created_at, revoked_at). */
static int user_from_row(st_stmt *st, void *dst, const char *what,
                         mn_err *err)
{
    store_user *u = dst;
    memset(u, 0, sizeof *u);
    if (st_col_text_into(st, 0, u->name, sizeof u->name, what, err))
        return -1;
    u->admin = st_col_int64(st, 1) != 0;
    u->created_at = st_col_time(st, 2);
    u->revoked_at = st_col_time(st, 3);
    return 0;
}

/* Checks a user name's length (the HTTP and CLI layers check the naming
 * rule itself, spec_valid_name). */
static int user_name_ok(const char *name, const char *what, mn_err *err)
{
    if (!name || !*name || strlen(name) > STORE_NAME_MAX)
        return mn_errf(err, "store: %s: user name must be 1..%d bytes", what,
                       STORE_NAME_MAX);
    return 0;
}

int store_user_add(store *s, const char *name, const uint8_t *hash,
                   int admin, mn_err *err)
{
    const char *what = "user_add";
    int rc = -1;
    st_stmt *st = NULL;

    if (user_name_ok(name, what, err)) return -1;
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep(s, &st,
                "INSERT INTO users (name, token_hash, admin, created_at)"
                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                what, err))
        goto done;
    if (st_bind_text(st, 1, name) != 0 ||
        st_bind_blob(st, 2, hash, STORE_TOKEN_HASH_BYTES) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    st_bind_int64(st, 3, admin ? 1 : 0);
    st_bind_int64(st, 4, st_now_ms());
    if (st_step_done(s, st, what, err)) goto done;
    if (st_changes(s) == 0) {
        rc = STORE_CONFLICT;
        mn_errf(err, "user '%s' exists", name);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_user_get(store *s, const char *name, store_user *out,
                   uint8_t *hash, mn_err *err)
{
    const char *what = "user_get";
    int rc = -1;
    st_stmt *st = NULL;

    memset(out, 0, sizeof *out);
    if (user_name_ok(name, what, err)) return -1;
    if (st_prep_name(s, &st,
                     "SELECT name, admin, created_at, revoked_at, token_hash"
                     " FROM users WHERE name = ?1",
                     name, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "no user '%s'", name);
        goto done;
    }
    if (user_from_row(st, out, what, err)) goto done;
    if (hash) {
        const void *h = st_col_blob(st, 4);
        if (!h || st_col_bytes(st, 4) != STORE_TOKEN_HASH_BYTES) {
            mn_errf(err, "store: %s: corrupt row: user %s's token hash is "
                    "not %d bytes", what, name, STORE_TOKEN_HASH_BYTES);
            goto done;
        }
        memcpy(hash, h, STORE_TOKEN_HASH_BYTES);
    }
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}

int store_user_list(store *s, store_user **out, size_t *n, mn_err *err)
{
    const char *what = "user_list";
    int rc = -1;
    st_stmt *st = NULL;
    void *v = NULL;
    size_t cnt = 0;

    *out = NULL;
    *n = 0;
    if (st_prep(s, &st,
                "SELECT name, admin, created_at, revoked_at FROM users"
                " ORDER BY name",
                what, err))
        goto done;
    if (st_collect_rows(s, st, sizeof(store_user), user_from_row, &v, &cnt,
                        what, err))
        goto done;
    *out = v;
    *n = cnt;
    v = NULL;
    rc = 0;
done:
    st_finalize(st);
    free(v);
    return st_rc(s, rc);
}

int store_user_revoke(store *s, const char *name, mn_err *err)
{
    const char *what = "user_revoke";
    int rc = -1;
    st_stmt *st = NULL;

    if (user_name_ok(name, what, err)) return -1;
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep_name(s, &st,
                     "SELECT revoked_at FROM users WHERE name = ?1 FOR UPDATE",
                     name, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "no user '%s'", name);
        goto done;
    }
    if (!st_col_null(st, 0)) {
        rc = STORE_CONFLICT;
        mn_errf(err, "user '%s' is already revoked", name);
        goto done;
    }
    if (st_prep_name(s, &st, "UPDATE users SET revoked_at = ?2 WHERE name = ?1",
                     name, what, err))
        goto done;
    st_bind_int64(st, 2, st_now_ms());
    if (st_step_done(s, st, what, err)) goto done;
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_user_rotate(store *s, const char *name, const uint8_t *hash,
                      mn_err *err)
{
    const char *what = "user_rotate";
    int rc = -1;
    st_stmt *st = NULL;

    if (user_name_ok(name, what, err)) return -1;
    if (st_tx_write(s, what, err)) goto done;
    if (st_prep_name(s, &st,
                     "UPDATE users SET token_hash = ?2, revoked_at = NULL"
                     " WHERE name = ?1",
                     name, what, err))
        goto done;
    if (st_bind_blob(st, 2, hash, STORE_TOKEN_HASH_BYTES) != 0) {
        st_fail(s, what, err);
        goto done;
    }
    if (st_step_done(s, st, what, err)) goto done;
    if (st_changes(s) == 0) {
        rc = STORE_NOT_FOUND;
        mn_errf(err, "no user '%s'", name);
        goto done;
    }
    if (st_tx_commit(s, what, err)) goto done;
    rc = 0;
done:
    st_finalize(st);
    st_tx_end(s);
    return st_rc(s, rc);
}

int store_user_any(store *s, int *yes, mn_err *err)
{
    const char *what = "user_any";
    int rc = -1;
    st_stmt *st = NULL;

    *yes = 0;
    if (st_prep(s, &st, "SELECT 1 FROM users LIMIT 1", what, err)) goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    *yes = r;
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}

/* The owner query of each kind of resource (store_owner_kind order):
 * ?1 the key; columns owner, shared. */
static const char *const owner_sql[] = {
    [STORE_OWNED_RUN] = "SELECT owner, 0 FROM runs WHERE id = ?1",
    [STORE_OWNED_SWEEP] = "SELECT owner, 0 FROM sweeps WHERE id = ?1",
    [STORE_OWNED_DATASET] =
        "SELECT owner, public FROM datasets WHERE name = ?1",
    /* a model made by an admin (or by no user) is every user's to read */
    [STORE_OWNED_MODEL] =
        "SELECT m.owner, CASE WHEN m.owner IS NULL OR EXISTS (SELECT 1 FROM"
        " users u WHERE u.name = m.owner AND u.admin <> 0) THEN 1 ELSE 0 END"
        " FROM models m WHERE m.name = ?1",
};

int store_owner_get(store *s, store_owner_kind kind, int64_t id,
                    const char *name, char owner[64], int *shared,
                    mn_err *err)
{
    const char *what = "owner_get";
    int rc = -1;
    st_stmt *st = NULL;

    owner[0] = 0;
    *shared = 0;
    if ((unsigned)kind >= sizeof owner_sql / sizeof owner_sql[0])
        return mn_errf(err, "store: %s: bad kind %d", what, (int)kind);
    int by_id = kind == STORE_OWNED_RUN || kind == STORE_OWNED_SWEEP;
    if (!by_id && !name) return mn_errf(err, "store: %s: no name", what);
    if (by_id ? st_prep_id(s, &st, owner_sql[kind], id, what, err)
              : st_prep_name(s, &st, owner_sql[kind], name, what, err))
        goto done;
    int r = st_step_row(s, st, what, err);
    if (r < 0) goto done;
    if (r == 0) {
        rc = STORE_NOT_FOUND;
        goto done;
    }
    if (!st_col_null(st, 0) &&
        st_col_text_into(st, 0, owner, 64, what, err))
        goto done;
    *shared = st_col_int64(st, 1) != 0;
    rc = 0;
done:
    st_finalize(st);
    return st_rc(s, rc);
}
