/* routes_models.c: the /models resource, a registry of named models: a
 * model has numbered versions (1, 2, ...), each a succeeded run, and
 * aliases (production, staging, ...) that point at a version. POST
 * /predict, the Open Inference Protocol (routes_v2.c) and TensorFlow
 * Serving's API (routes_tfs.c) serve a model by name through
 * infer_resolve_model. The store keeps all of it (store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/http/auth.h"
#include "server/http/routes.h"
#include "server/jobs/spec.h"
#include "server/render/enc.h"
#include "server/serving/mnames.h"
#include "server/store/store.h"

/* The rule a model or alias name follows (spec_valid_name's). */
#define MODELS_NAME_RULE                                                    \
    "lower-case letters, digits, '-' and '_', starting with a letter or "  \
    "digit, at most 63 characters"

/* A run id as the API writes it (a string). New reference. */
static json_t *run_ref(int64_t id)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)id);
    return json_string(s);
}

/* The list item of a model: {"name", "description", "versions",
 * "latest_version", "owner", "shared"}. New reference. */
static json_t *model_item(const store_model *m)
{
    return json_pack("{s:s, s:s, s:I, s:o, s:o, s:b}", "name", m->name,
                     "description", m->description ? m->description : "",
                     "versions", (json_int_t)m->versions, "latest_version",
                     m->latest ? json_integer(m->latest) : json_null(),
                     "owner", m->owner[0] ? json_string(m->owner) : json_null(),
                     "shared", m->shared);
}

/* GET /models/<name>'s object: the list item with "versions" as the
 * versions themselves (version, run, model kind, accuracies) and
 * "aliases" as {alias: version}. New reference. */
static json_t *model_json(const store_model *m, const store_model_version *v,
                          size_t nv, const store_model_alias *a, size_t na)
{
    json_t *o = model_item(m);
    json_t *vs = json_array(), *as = json_object();
    for (size_t i = 0; i < nv; i++)
        json_array_append_new(
            vs, json_pack("{s:I, s:o, s:s, s:o, s:o}", "version",
                          (json_int_t)v[i].version, "run",
                          run_ref(v[i].run_id), "model", v[i].model,
                          "validation_accuracy",
                          enc_real(v[i].validation_accuracy),
                          "test_accuracy", enc_real(v[i].test_accuracy)));
    for (size_t i = 0; i < na; i++)
        json_object_set_new(as, a[i].alias, json_integer(a[i].version));
    if (!o || !vs || !as || json_object_set_new(o, "versions", vs) ||
        json_object_set_new(o, "aliases", as)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Replies with model `name` as GET /models/<name> shows it, with status
 * and (located) a Location header. */
static enum MHD_Result reply_model(http_ctx *c, unsigned status,
                                   const char *name, int located)
{
    enum MHD_Result rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_model m;
    store_model_version *v = NULL;
    store_model_alias *a = NULL;
    size_t nv = 0, na = 0;
    mn_err err = {{0}};
    int s = store_model_get(db, name, &m, &v, &nv, &a, &na, &err);
    if (s)
        return http_store_error(c, s, &err, "not_found", "no model '%s'",
                                name);
    json_t *o = model_json(&m, v, nv, a, na);
    store_model_free(&m);
    free(v);
    free(a);
    if (!located) return http_json(c, status, o);
    char loc[96];
    snprintf(loc, sizeof loc, "/models/%s", name);
    return http_json_at(c, status, o, loc);
}

/* The model named by the path (c->arg): 1 when it is a name, else a 404
 * was queued (*rc). */
static int model_name(http_ctx *c, enum MHD_Result *rc)
{
    if (spec_valid_name(c->arg)) return 1;
    *rc = http_error(c, 404, "not_found", "no model '%s'", c->arg);
    return 0;
}

enum MHD_Result models_create(http_ctx *c)
{
    enum MHD_Result rc;
    json_t *body = http_body_json(c, &rc);
    if (!body) return rc;
    const char *name = NULL, *description = NULL, *key;
    json_t *v;
    if (!json_is_object(body)) {
        rc = http_error(c, 400, "bad_field", "the body must be an object "
                        "{\"name\": ..., \"description\": ...}");
        goto done;
    }
    json_object_foreach(body, key, v) {
        if (strcmp(key, "name") && strcmp(key, "description")) {
            rc = http_error(c, 400, "bad_field", "unknown field '%s': a "
                            "model has a name and a description", key);
            goto done;
        }
    }
    v = json_object_get(body, "name");
    name = json_string_value(v);
    if (!name || !spec_valid_name(name)) {
        rc = http_error(c, 400, "bad_field", "name must be a model name: "
                        MODELS_NAME_RULE);
        goto done;
    }
    v = json_object_get(body, "description");
    if (v && !json_is_string(v)) {
        rc = http_error(c, 400, "bad_field", "description must be a string");
        goto done;
    }
    description = v ? json_string_value(v) : "";
    store *db = http_db_or_reply(c, &rc);
    if (!db) goto done;
    mn_err err = {{0}};
    int s = store_model_create_owned(db, name, description, auth_owner(c),
                                     &err);
    if (s)
        rc = http_store_error(c, s, &err, "model_exists", "model '%s' "
                              "already exists", name);
    else
        rc = reply_model(c, 201, name, 1);
done:
    json_decref(body);
    return rc;
}

enum MHD_Result models_list(http_ctx *c)
{
    enum MHD_Result rc;
    const char *owner;
    if (!auth_list_owner(c, &owner, &rc)) return rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    store_model *ms = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_model_list(db, &ms, &n, &err);
    if (s) return http_store_error(c, s, &err, NULL, NULL);
    /* a user lists its own models and the shared ones (an admin's); an
     * admin's ?owner=NAME that user's */
    int user = c->req->role == AUTH_USER;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        int mine = owner && strcmp(ms[i].owner, owner) == 0;
        if (user ? mine || ms[i].shared : !owner || mine)
            json_array_append_new(arr, model_item(&ms[i]));
    }
    store_models_free(ms, n);
    return http_json(c, 200, json_pack("{s:o}", "models", arr));
}

enum MHD_Result models_get(http_ctx *c)
{
    enum MHD_Result rc;
    if (!model_name(c, &rc)) return rc;
    return reply_model(c, 200, c->arg, 0);
}

enum MHD_Result models_delete(http_ctx *c)
{
    enum MHD_Result rc;
    if (!model_name(c, &rc)) return rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    mn_err err = {{0}};
    int s = store_model_delete(db, c->arg, &err);
    if (s)
        return http_store_error(c, s, &err, "not_found", "no model '%s'",
                                c->arg);
    mnames_clear(c->app->names);
    return http_bytes(c, 204, NULL, "", 0);
}

enum MHD_Result models_version_add(http_ctx *c)
{
    enum MHD_Result rc;
    if (!model_name(c, &rc)) return rc;
    json_t *body = http_body_json(c, &rc);
    if (!body) return rc;
    json_t *run = json_is_object(body) ? json_object_get(body, "run") : NULL;
    char id[24] = "";
    if (json_is_string(run))
        snprintf(id, sizeof id, "%s", json_string_value(run));
    else if (json_is_integer(run))
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(run));
    if (!run || json_object_size(body) != 1 || !id[0]) {
        rc = http_error(c, 400, "bad_field", "the body must be {\"run\": "
                        "\"<id>\"}: the succeeded run to register");
        goto done;
    }
    store_run r = {0};
    infer_src src = runs_infer_src(c);
    mn_err err = {{0}};
    infer_status st = infer_find_run(&src, id, &r, &err);
    if (!st && !auth_sees(c, r.owner, 0)) {    /* another user's run */
        mn_errf(&err, "no run '%s'", id);
        st = INFER_NOT_FOUND;
    }
    if (st) {
        store_run_free(&r);
        rc = runs_infer_error(c, st, &err);
        goto done;
    }
    int64_t version = 0;
    int s = store_model_version_add(http_db(c), c->arg, r.id, &version, &err);
    if (s == STORE_CONFLICT)
        rc = http_error(c, 409, "run_not_succeeded", "run %s is %s; only a "
                        "succeeded run can be a model version", id,
                        run_status_name(r.status));
    else if (s)
        rc = http_store_error(c, s, &err, "not_found", "no model '%s'",
                              c->arg);
    else {
        mnames_clear(c->app->names);
        char loc[128];
        snprintf(loc, sizeof loc, "/models/%s/versions/%lld", c->arg,
                 (long long)version);
        rc = http_json_at(c, 201,
                          json_pack("{s:s, s:I, s:o}", "model", c->arg,
                                    "version", (json_int_t)version, "run",
                                    run_ref(r.id)),
                          loc);
    }
    store_run_free(&r);
done:
    json_decref(body);
    return rc;
}

enum MHD_Result models_alias_put(http_ctx *c)
{
    enum MHD_Result rc;
    if (!model_name(c, &rc)) return rc;
    if (!spec_valid_name(c->arg2))
        return http_error(c, 400, "bad_alias", "'%s' is not an alias name: "
                          MODELS_NAME_RULE, c->arg2);
    json_t *body = http_body_json(c, &rc);
    if (!body) return rc;
    json_t *v = json_is_object(body) ? json_object_get(body, "version")
                                     : NULL;
    if (!json_is_integer(v) || json_object_size(body) != 1 ||
        json_integer_value(v) < 1) {
        rc = http_error(c, 400, "bad_field", "the body must be {\"version\": "
                        "n}, n a version of the model (1, 2, ...)");
        goto done;
    }
    int64_t version = json_integer_value(v);
    store *db = http_db_or_reply(c, &rc);
    if (!db) goto done;
    mn_err err = {{0}};
    store_model m;
    int s = store_model_get(db, c->arg, &m, NULL, NULL, NULL, NULL, &err);
    if (s) {
        rc = http_store_error(c, s, &err, "not_found", "no model '%s'",
                              c->arg);
        goto done;
    }
    store_model_free(&m);
    int created = 0;
    s = store_model_alias_set(db, c->arg, c->arg2, version, &created, &err);
    if (s) {
        rc = http_store_error(c, s, &err, "not_found", "model '%s' has no "
                              "version %lld", c->arg, (long long)version);
        goto done;
    }
    mnames_clear(c->app->names);
    rc = http_json(c, created ? 201 : 200,
                   json_pack("{s:s, s:s, s:I}", "model", c->arg, "alias",
                             c->arg2, "version", (json_int_t)version));
done:
    json_decref(body);
    return rc;
}

enum MHD_Result models_alias_delete(http_ctx *c)
{
    enum MHD_Result rc;
    if (!model_name(c, &rc)) return rc;
    store *db = http_db_or_reply(c, &rc);
    if (!db) return rc;
    mn_err err = {{0}};
    int s = store_model_alias_delete(db, c->arg, c->arg2, &err);
    if (s)
        return http_store_error(c, s, &err, "not_found", "model '%s' has no "
                                "alias '%s'", c->arg, c->arg2);
    mnames_clear(c->app->names);
    return http_bytes(c, 204, NULL, "", 0);
}

enum MHD_Result models_version_onnx(http_ctx *c)
{
    int64_t want = infer_parse_id(c->arg2), v = 0;
    if (!want)
        return http_error(c, 404, "not_found", "model '%s' has no version "
                          "'%s'", c->arg, c->arg2);
    infer_src src = runs_infer_src(c);
    mn_err err = {{0}};
    char run[24];
    infer_status st = infer_resolve_model(&src, c->arg, want, NULL, run, &v,
                                          &err);
    if (st) return runs_infer_error(c, st, &err);
    return runs_onnx_of(c, run);
}

int models_versions(http_ctx *c, int64_t **versions, size_t *n,
                    enum MHD_Result *rc)
{
    store_model m;
    store_model_version *vs = NULL;
    mn_err err = {{0}};
    *versions = NULL;
    *n = 0;
    if (store_model_get(http_db(c), c->arg, &m, &vs, n, NULL, NULL, &err)) {
        *rc = http_error_text(c, 503, "%s", err.msg);
        return 0;
    }
    store_model_free(&m);
    *versions = malloc(sizeof **versions * (*n ? *n : 1));
    if (!*versions) {
        free(vs);
        *rc = http_error_text(c, 503, "out of memory");
        return 0;
    }
    for (size_t i = 0; i < *n; i++) (*versions)[i] = vs[i].version;
    free(vs);
    return 1;
}

int models_target(http_ctx *c, const char *version, const char *alias,
                  char run[24], int64_t *v, enum MHD_Result *rc)
{
    int64_t want = 0;
    if (version && *version && !(want = infer_parse_id(version))) {
        *rc = http_error_text(c, 404, "model '%s' has no version '%s'",
                              c->arg, version);
        return 0;
    }
    infer_src src = runs_infer_src(c);
    mn_err err = {{0}};
    infer_status st = infer_resolve_model(&src, c->arg, want, alias, run, v,
                                          &err);
    if (st) {
        const char *code;
        *rc = http_error_text(c, runs_infer_http(st, &code), "%s", err.msg);
        return 0;
    }
    return 1;
}
