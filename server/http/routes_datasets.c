/* routes_datasets.c: the /datasets resource: the built-in MNIST sets and
 * CSV uploads (streamed and validated row by row while they arrive; a bad
 * row is a 400 naming its line, and nothing is stored), and the deletion
 * of uploaded ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/http/auth.h"
#include "server/http/quota.h"
#include "server/http/routes.h"
#include "server/render/enc.h"
#include "server/jobs/spec.h"
#include "server/store/store.h"

/* {"name","examples","rows","cols","builtin","label_counts","owner",
 * "public"}, and "class_names" for a dataset whose classes have names
 * (new ref). info: an upload's row (owner, public); NULL for a built-in
 * (no owner, public). */
static json_t *dataset_json(const char *name, const ds_dataset *d,
                            const store_dataset_info *info)
{
    uint32_t counts[DS_CLASSES] = {0};
    for (uint32_t i = 0; i < d->n; i++)
        if (d->labels[i] < DS_CLASSES) counts[d->labels[i]]++;
    json_t *lc = json_array();
    for (int k = 0; k < DS_CLASSES; k++) json_array_append_new(lc, json_integer(counts[k]));
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:b, s:o}", "name", name,
                          "examples", (json_int_t)d->n, "rows",
                          (json_int_t)d->rows, "cols", (json_int_t)d->cols,
                          "builtin", dsreg_is_builtin(name), "label_counts",
                          lc);
    const char *const *names = enc_class_names(name);
    if (o && names) {
        json_t *cn = json_array();
        for (int k = 0; k < DS_CLASSES; k++)
            json_array_append_new(cn, json_string(names[k]));
        json_object_set_new(o, "class_names", cn);
    }
    if (o && (json_object_set_new(o, "owner", info && info->owner[0]
                                                  ? json_string(info->owner)
                                                  : json_null()) ||
              json_object_set_new(o, "public",
                                  json_boolean(!info || info->public_)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The dataset of a name, pinned (dsreg_put), or a reply (404 / 503) and
 * NULL. */
static const ds_dataset *find_dataset(http_ctx *c, const char *name,
                                      enum MHD_Result *rc)
{
    if (!spec_valid_name(name)) {
        *rc = http_error(c, 404, "not_found", "no dataset '%s'", name);
        return NULL;
    }
    int not_found = 0;
    mn_err err = {{0}};
    const ds_dataset *d = auth_dsreg_get(c, http_db(c), name,
                                    &not_found, &err);
    if (!d)
        *rc = not_found ? http_error(c, 404, "not_found", "no dataset '%s'", name)
                        : http_error(c, 503, "dataset_unavailable", "%s", err.msg);
    return d;
}

enum MHD_Result datasets_list(http_ctx *c)
{
    enum MHD_Result rc;
    const char *owner;
    if (!auth_list_owner(c, &owner, &rc)) return rc;
    /* a user sees the built-ins, its uploads and the public ones; an
     * admin's ?owner=NAME lists that user's uploads only */
    int user = c->req->role == AUTH_USER;
    json_t *arr = json_array();
    for (int i = 0; (user || !owner) && ds_builtins[i].name; i++) {
        int not_found;
        mn_err err;
        const char *name = ds_builtins[i].name;
        const ds_dataset *d = dsreg_get(c->app->datasets, NULL, name,
                                        &not_found, &err);
        if (d) json_array_append_new(arr, dataset_json(name, d, NULL));
        dsreg_put(c->app->datasets, d);
    }
    store *db = http_db_or_reply(c, &rc);
    if (!db) {
        json_decref(arr);
        return rc;
    }
    store_dataset_info *infos = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_dataset_list(db, &infos, &n, &err);
    if (s) {
        json_decref(arr);
        return http_store_error(c, s, &err, NULL, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        enum MHD_Result ignored;
        int mine = owner && strcmp(infos[i].owner, owner) == 0;
        if (user ? !mine && !infos[i].public_ : owner && !mine) continue;
        const ds_dataset *d = find_dataset(c, infos[i].name, &ignored);
        if (d)
            json_array_append_new(arr, dataset_json(infos[i].name, d,
                                                    &infos[i]));
        dsreg_put(c->app->datasets, d);
    }
    free(infos);
    return http_json(c, 200, json_pack("{s:o}", "datasets", arr));
}

/* The reply of an upload's dataset object (its row read again for its
 * owner and public flag), or of a built-in's. */
static enum MHD_Result reply_dataset(http_ctx *c, unsigned status,
                                     const char *name, const ds_dataset *d,
                                     const char *location)
{
    if (dsreg_is_builtin(name))
        return http_json_at(c, status, dataset_json(name, d, NULL), location);
    enum MHD_Result rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_dataset_info info;
    mn_err err = {{0}};
    int s = store_dataset_info_get(db, name, &info, &err);
    if (s) return http_store_error(c, s, &err, "not_found", "no dataset '%s'",
                                   name);
    return http_json_at(c, status, dataset_json(name, d, &info), location);
}

enum MHD_Result datasets_get(http_ctx *c)
{
    enum MHD_Result rc;
    const ds_dataset *d = find_dataset(c, c->arg, &rc);
    if (!d) return rc;
    rc = reply_dataset(c, 200, c->arg, d, NULL);
    dsreg_put(c->app->datasets, d);
    return rc;
}

/* PATCH /datasets/<name> {"public": true|false}: marks an upload public
 * (every user may read it and train on it) or private again. Its owner
 * or an admin only (another user's is 404, auth.h). */
enum MHD_Result datasets_patch(http_ctx *c)
{
    const char *name = c->arg;
    if (!spec_valid_name(name))
        return http_error(c, 404, "not_found", "no dataset '%s'", name);
    enum MHD_Result rc;
    json_t *body = http_body_json(c, &rc);
    if (!body) return rc;
    json_t *pub = json_is_object(body) ? json_object_get(body, "public") : NULL;
    const char *key;
    json_t *v;
    int extra = 0;
    if (json_is_object(body))
        json_object_foreach(body, key, v) extra |= strcmp(key, "public") != 0;
    int is_bool = json_is_boolean(pub), public_ = json_is_true(pub);
    json_decref(body);
    if (!is_bool || extra)
        return http_error(c, 400, "bad_field", "send {\"public\": true} or "
                          "{\"public\": false}; public is the only field");
    if (dsreg_is_builtin(name))
        return http_error(c, 409, "dataset_builtin", "'%s' is a built-in "
                          "dataset: it is everyone's already", name);
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    mn_err err = {{0}};
    int s = store_dataset_set_public(db, name, public_, &err);
    if (s) return http_store_error(c, s, &err, "not_found", "no dataset '%s'",
                                   name);
    const ds_dataset *d = find_dataset(c, name, &rc);
    if (!d) return rc;
    rc = reply_dataset(c, 200, name, d, NULL);
    dsreg_put(c->app->datasets, d);
    return rc;
}

enum MHD_Result datasets_upload(http_ctx *c)
{
    const char *name = http_query(c, "name");
    if (!name)
        return http_error(c, 400, "bad_query", "name is required: "
                          "POST /datasets?name=<name>");
    if (!spec_valid_name(name))
        return http_error(c, 400, "bad_query", "name '%.64s' is not a dataset "
                          "name: lower-case letters, digits, '-' and '_', "
                          "starting with a letter or digit, at most 63 "
                          "characters", name);
    if (dsreg_is_builtin(name))
        return http_error(c, 409, "dataset_exists", "'%s' is a built-in "
                          "dataset", name);
    enum MHD_Result rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_dataset_info info;
    mn_err err = {{0}};
    int s = store_dataset_info_get(db, name, &info, &err);
    if (s == 0)
        return http_error(c, 409, "dataset_exists", "dataset '%s' already "
                          "exists", name);
    if (s < 0) return http_store_error(c, s, &err, NULL, NULL);
    ds_dataset d = {0};
    if (ds_csv_finish(c->req->csv, &d, &err))
        return http_error(c, 400, "bad_csv", "%s", err.msg);
    /* the user's bytes are counted in the insert's transaction, its size
     * as stored: a byte per pixel and one for the label */
    store_limit bytes_limit;
    quota_limit_of(c, QUOTA_UPLOAD_BYTES, &bytes_limit);
    s = store_dataset_put_owned(db, name, &d, auth_owner(c), 0, &bytes_limit,
                                &err);
    if (s == STORE_LIMIT) {
        uint64_t adding = (uint64_t)d.n * ((uint64_t)d.rows * d.cols + 1);
        ds_free(&d);
        return quota_refuse(c, QUOTA_UPLOAD_BYTES, bytes_limit.used, adding);
    }
    if (s) {
        ds_free(&d);
        return http_store_error(c, s, &err, "dataset_exists", "dataset '%s' "
                                "already exists", name);
    }
    /* the registry reads it back from the store on first use: it holds
     * nothing the store does not (see dsreg.h) */
    char loc[96];
    snprintf(loc, sizeof loc, "/datasets/%s", name);
    enum MHD_Result r = reply_dataset(c, 201, name, &d, loc);
    ds_free(&d);
    return r;
}

enum MHD_Result datasets_delete(http_ctx *c)
{
    const char *name = c->arg;
    if (!spec_valid_name(name))
        return http_error(c, 404, "not_found", "no dataset '%s'", name);
    if (dsreg_is_builtin(name))
        return http_error(c, 409, "dataset_builtin", "'%s' is a built-in "
                          "dataset: it cannot be deleted", name);
    store *db = http_db(c);
    if (!db) return http_error(c, 503, "store_unavailable",
                               "the database cannot be reached now");
    int64_t run_id = 0;
    run_status run_st = RUN_QUEUED;
    mn_err err = {{0}};
    int s = store_dataset_delete(db, name, &run_id, &run_st, &err);
    if (s == STORE_NOT_FOUND)
        return http_error(c, 404, "not_found", "no dataset '%s'", name);
    if (s == STORE_CONFLICT)
        return http_error(c, 409, "dataset_in_use", "dataset '%s' is used by "
                          "run %lld, which is %s: cancel it or wait for it "
                          "to end", name, (long long)run_id,
                          run_status_name(run_st));
    if (s) return http_store_error(c, s, &err, NULL, NULL);
    dsreg_drop(c->app->datasets, name);
    return http_bytes(c, 204, NULL, "", 0);
}
