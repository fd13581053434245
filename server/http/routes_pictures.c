/* routes_pictures.c: pictures of training as the exercise shows it, and
 * single dataset examples:
 *   GET /runs/<id>/confusion.png   row-normalised confusion heatmap
 *   GET /runs/<id>/weights.png     first-layer weights, one tile per unit
 *                                  (?period=k: the snapshot of period k)
 *   GET /runs/<id>/loss.png        log loss per period, both splits
 *   GET /datasets/<name>/examples/<n>[.png]  one example (JSON or PNG)
 * Drawing is plot.c's; this file maps requests and states to statuses.
 * Errors are JSON as everywhere else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "server/serving/dsreg.h"
#include "server/serving/mcache.h"
#include "server/render/enc.h"
#include "server/render/plot.h"
#include "server/http/auth.h"
#include "server/http/routes.h"
#include "server/jobs/spec.h"
#include "server/store/store.h"

/* "run 7 (dnn [100, 100]): <what>" into buf. */
static void run_title(const store_run *r, const char *what, char *buf,
                      size_t len)
{
    char arch[96] = "";
    json_error_t je;
    json_t *params = r->params_json ? json_loads(r->params_json, 0, &je) : NULL;
    json_t *hu = json_object_get(params, "hidden_units");
    if (json_is_array(hu) && json_array_size(hu) > 0) {
        size_t at = 0;
        size_t i;
        json_t *v;
        json_array_foreach(hu, i, v) {
            int k = snprintf(arch + at, sizeof arch - at, "%s%lld",
                             i ? ", " : " [", (long long)json_integer_value(v));
            if (k < 0 || (size_t)k >= sizeof arch - at - 2) break;
            at += (size_t)k;
        }
        snprintf(arch + at, sizeof arch - at, "]");
    }
    json_decref(params);
    snprintf(buf, len, "run %lld (%s%s): %s", (long long)r->id, r->model,
             arch, what);
}

/* Replies 200 image/png with the buffer's bytes and frees the buffer. */
static enum MHD_Result reply_png(http_ctx *c, pngenc_buf *png)
{
    enum MHD_Result rc = http_bytes(c, 200, "image/png", png->data, png->len);
    pngenc_buf_free(png);
    return rc;
}

/* A picture could not be drawn (out of memory, a cairo or libpng error):
 * not the client's fault, so 503. */
static enum MHD_Result plot_failed(http_ctx *c, const mn_err *err)
{
    return http_error(c, 503, "unavailable", "cannot draw the picture now: %s",
                      err->msg);
}

enum MHD_Result pictures_confusion(http_ctx *c)
{
    enum MHD_Result rc;
    const char *set = http_query(c, "set");
    if (!set) set = "validation";
    if (strcmp(set, "validation") != 0 && strcmp(set, "test") != 0)
        return http_error(c, 400, "bad_query",
                          "set must be validation or test");
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    eval_result e;
    mn_err err = {{0}};
    int s = store_confusion_get(http_db(c), r.id, set, &e, &err);
    if (s == STORE_NOT_FOUND) {
        rc = strcmp(set, "test") == 0
                 ? http_error(c, 409, "not_evaluated", "run %lld has no test "
                              "evaluation yet: POST /runs/%lld/evaluate",
                              (long long)r.id, (long long)r.id)
                 : http_error(c, 409, "no_metrics", "run %lld has not finished "
                              "a period yet", (long long)r.id);
    } else if (s) {
        rc = http_store_error(c, s, &err, NULL, NULL);
    } else {
        char what[96], title[200];
        snprintf(what, sizeof what, "%s confusion, accuracy %.3f", set,
                 e.accuracy);
        run_title(&r, what, title, sizeof title);
        pngenc_buf png;
        rc = plot_confusion(e.confusion, title, &png, &err)
                 ? plot_failed(c, &err)
                 : reply_png(c, &png);
    }
    store_run_free(&r);
    return rc;
}

enum MHD_Result pictures_weights(http_ctx *c)
{
    enum MHD_Result rc;
    long layer = 0, scale = 0; /* 0: not given */
    uint32_t period = 0, step = 0;
    store_run r = {0};
    const model *m = NULL;
    wsnap snap = {0};
    float *filters = NULL;
    static const char drawn[] = " (only layer 0 can be drawn)";
    if (!runs_layer(c, NULL, drawn, &layer, &rc)) return rc;
    if (http_query_long(c, "scale", 1, PLOT_MAX_SCALE, &scale))
        return http_error(c, 400, "bad_query", "scale must be an integer in "
                          "1..%d", PLOT_MAX_SCALE);
    if (!runs_period_query(c, layer, &period, &rc)) return rc;
    if (!runs_load(c, &r, &rc)) goto done;
    int units, fh, fw, n_in;
    if (period) {
        /* the snapshot of that period, whatever the run's status */
        if (!runs_snapshot(c, &r, period, &snap, &step, &rc)) goto done;
        units = snap.units;
        fh = snap.tile_h;
        fw = snap.tile_w;
        n_in = snap.inputs;
    } else {
        if (!(m = runs_model(c, &r, &rc))) goto done;
        if (!runs_layer(c, m, drawn, &layer, &rc)) goto done;
        if (layer != 0) {
            model_weights lw;
            model_layer_weights(m, (int)layer, &lw);
            rc = http_error(c, 400, "bad_query", "layer %ld's inputs are the "
                            "%d units of hidden layer %ld, not the pixels of "
                            "an image: only layer 0 can be drawn as %dx%d "
                            "tiles", layer, lw.n_in, layer - 1, DS_ROWS,
                            DS_COLS);
            goto done;
        }
        model_filters(&m->arch, &units, &fh, &fw);
        n_in = m->arch.n_in;
    }
    /* a dense first layer's filters are flat images; a convolution's are
     * its own kernels, drawn about as large as an image's tile */
    uint32_t rows = DS_ROWS, cols = DS_COLS;
    if (fh > 1) {
        rows = (uint32_t)fh;
        cols = (uint32_t)fw;
        if (!scale) scale = 3 * DS_ROWS / fh < PLOT_MAX_SCALE
                                ? 3 * DS_ROWS / fh : PLOT_MAX_SCALE;
    } else if (fh * fw != DS_PIXELS) {
        rc = http_error(c, 400, "bad_query", "the model's inputs are %d "
                        "values, not %dx%d pixels: its weights cannot be "
                        "drawn as images", n_in, DS_ROWS, DS_COLS);
        goto done;
    }
    if (!scale) scale = 3;
    uint64_t w, h;
    plot_weights_size(units, rows, cols, (int)scale, &w, &h);
    if (w * h > PLOT_MAX_PIXELS) {
        rc = http_error(c, 400, "bad_query", "at scale %ld the %d tiles make "
                        "%llux%llu pixels, over the limit of %u: use a smaller "
                        "scale", scale, units, (unsigned long long)w,
                        (unsigned long long)h, PLOT_MAX_PIXELS);
        goto done;
    }
    /* the filters side by side, [pixels, units], as plot_weights reads */
    size_t px = (size_t)rows * cols;
    filters = malloc(sizeof(float) * px * (size_t)units);
    if (!filters) {
        rc = http_error(c, 503, "out_of_memory", "no memory for the picture");
        goto done;
    }
    for (int u = 0; u < units; u++) {
        if (!period) {
            model_filter(m, u, filters + u, (size_t)units);
            continue;
        }
        for (size_t k = 0; k < px; k++)
            filters[k * (size_t)units + (size_t)u] =
                wsnap_value(&snap, u, (int)k);
    }
    pngenc_buf png;
    mn_err err = {{0}};
    rc = plot_weights(filters, rows, cols, units, (int)scale, &png, &err)
             ? plot_failed(c, &err)
             : reply_png(c, &png);
done:
    free(filters);
    wsnap_free(&snap);
    mcache_put(c->app->models, m);
    store_run_free(&r);
    return rc;
}

enum MHD_Result pictures_loss(http_ctx *c)
{
    enum MHD_Result rc;
    store_run r = {0};
    if (!runs_load(c, &r, &rc)) return rc;
    train_period *ps = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    int s = store_periods_get(http_db(c), r.id, &ps, &n, &err);
    if (s) {
        rc = http_store_error(c, s, &err, "not_found", "no run '%s'", c->arg);
    } else if (n == 0) {
        rc = http_error(c, 409, "no_metrics", "run %lld has not finished a "
                        "period yet", (long long)r.id);
    } else {
        char title[200];
        run_title(&r, "log loss per period", title, sizeof title);
        pngenc_buf png;
        rc = plot_loss(ps, n, title, &png, &err) ? plot_failed(c, &err)
                                                 : reply_png(c, &png);
    }
    free(ps);
    store_run_free(&r);
    return rc;
}

/* GET /datasets/<name>/examples/<n> and .../<n>.png: c->arg is the name,
 * c->arg2 the index with or without ".png". */
enum MHD_Result pictures_example(http_ctx *c)
{
    const char *name = c->arg;
    char idx[24];
    size_t len = strlen(c->arg2);
    int as_png = len > 4 && strcmp(c->arg2 + len - 4, ".png") == 0;
    if (as_png) len -= 4;
    int digits = len > 0 && len <= 10;
    for (size_t i = 0; digits && i < len; i++)
        digits = c->arg2[i] >= '0' && c->arg2[i] <= '9';
    if (!digits)
        return http_error(c, 404, "not_found", "no example '%s' in dataset "
                          "'%s': examples are numbered 0, 1, ...", c->arg2,
                          name);
    memcpy(idx, c->arg2, len);
    idx[len] = 0;
    long scale = 4;
    if (as_png && http_query_long(c, "scale", 1, PLOT_MAX_SCALE, &scale))
        return http_error(c, 400, "bad_query", "scale must be an integer in "
                          "1..%d", PLOT_MAX_SCALE);
    if (!spec_valid_name(name))
        return http_error(c, 404, "not_found", "no dataset '%s'", name);
    int not_found = 0;
    mn_err err = {{0}};
    const ds_dataset *d = auth_dsreg_get(c, http_db(c), name,
                                    &not_found, &err);
    if (!d)
        return not_found
                   ? http_error(c, 404, "not_found", "no dataset '%s'", name)
                   : http_error(c, 503, "dataset_unavailable", "%s", err.msg);
    enum MHD_Result rc;
    unsigned long long n = strtoull(idx, NULL, 10);
    size_t P = (size_t)d->rows * d->cols;
    if (n >= d->n) {
        rc = http_error(c, 404, "not_found", "no example %s in dataset "
                        "'%s': it has %u examples, 0..%u", idx, name, d->n,
                        d->n - 1);
    } else if (as_png) {
        pngenc_buf png;
        rc = plot_example(d->pixels + (size_t)n * P, d->rows, d->cols,
                          (int)scale, &png, &err)
                 ? plot_failed(c, &err)
                 : reply_png(c, &png);
    } else {
        const uint8_t *px = d->pixels + (size_t)n * P;
        json_t *pixels = json_array();
        for (size_t i = 0; i < P; i++)
            json_array_append_new(pixels, json_integer(px[i]));
        json_t *o = json_pack("{s:s, s:I, s:i, s:o}", "dataset", name,
                              "index", (json_int_t)n, "label",
                              (int)d->labels[n], "pixels", pixels);
        const char *const *names = enc_class_names(name);
        if (o && names)
            json_object_set_new(o, "class_name",
                                json_string(names[d->labels[n]]));
        rc = http_json(c, 200, o);
    }
    dsreg_put(c->app->datasets, d);
    return rc;
}
