/* routes_datasets.c: the /datasets resource: the built-in MNIST sets and
 * CSV uploads (streamed and validated row by row while they arrive; a bad
 * row is a 400 naming its line, and nothing is stored), and the deletion
 * of uploaded ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/http/quota.h"
#include "server/http/routes.h"
#include "server/render/enc.h"
#include "server/jobs/spec.h"
#include "server/store/store.h"

/* {"name","examples","rows","cols","builtin","label_counts"}, and
 * "class_names" for a dataset whose classes have names (new ref). */
static json_t *dataset_json(const char *name, const ds_dataset *d)
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
    const ds_dataset *d = dsreg_get(c->app->datasets, http_db(c), name,
                                    &not_found, &err);
    if (!d)
        *rc = not_found ? http_error(c, 404, "not_found", "no dataset '%s'", name)
                        : http_error(c, 503, "dataset_unavailable", "%s", err.msg);
    return d;
}

enum MHD_Result datasets_list(http_ctx *c)
{
    json_t *arr = json_array();
    for (int i = 0; ds_builtins[i].name; i++) {
        int not_found;
        mn_err err;
        const char *name = ds_builtins[i].name;
        const ds_dataset *d = dsreg_get(c->app->datasets, NULL, name,
                                        &not_found, &err);
        if (d) json_array_append_new(arr, dataset_json(name, d));
        dsreg_put(c->app->datasets, d);
    }
    enum MHD_Result rc;
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
        const ds_dataset *d = find_dataset(c, infos[i].name, &ignored);
        if (d) json_array_append_new(arr, dataset_json(infos[i].name, d));
        dsreg_put(c->app->datasets, d);
    }
    free(infos);
    return http_json(c, 200, json_pack("{s:o}", "datasets", arr));
}

enum MHD_Result datasets_get(http_ctx *c)
{
    enum MHD_Result rc;
    const ds_dataset *d = find_dataset(c, c->arg, &rc);
    if (!d) return rc;
    json_t *o = dataset_json(c->arg, d);
    dsreg_put(c->app->datasets, d);
    return http_json(c, 200, o);
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
    /* its size as stored: a byte per pixel and one for the label */
    if (!quota_check(c, QUOTA_UPLOAD_BYTES,
                     (uint64_t)d.n * ((uint64_t)d.rows * d.cols + 1), &rc)) {
        ds_free(&d);
        return rc;
    }
    s = store_dataset_put(db, name, &d, &err);
    if (s) {
        ds_free(&d);
        return http_store_error(c, s, &err, "dataset_exists", "dataset '%s' "
                                "already exists", name);
    }
    /* the registry reads it back from the store on first use: it holds
     * nothing the store does not (see dsreg.h) */
    json_t *o = dataset_json(name, &d);
    ds_free(&d);
    char loc[96];
    snprintf(loc, sizeof loc, "/datasets/%s", name);
    return http_json_at(c, 201, o, loc);
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
