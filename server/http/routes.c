/* routes.c: the one route table. "{}" matches one path segment, which the
 * handler reads as c->arg. */
#include "server/http/routes.h"

const route http_routes[] = {
    {"POST", "/runs", BODY_JSON, runs_create, "runs_create"},
    {"GET", "/runs", BODY_NONE, runs_list, "runs_list"},
    {"GET", "/runs/{}", BODY_NONE, runs_get, "runs_get"},
    {"DELETE", "/runs/{}", BODY_NONE, runs_delete, "runs_delete"},
    {"GET", "/runs/{}/periods", BODY_NONE, runs_periods, "runs_periods"},
    {"POST", "/runs/{}/cancel", BODY_NONE, runs_cancel, "runs_cancel"},
    {"GET", "/runs/{}/confusion", BODY_NONE, runs_confusion, "runs_confusion"},
    {"POST", "/runs/{}/evaluate", BODY_JSON, runs_evaluate, "runs_evaluate"},
    {"GET", "/runs/{}/weights", BODY_NONE, runs_weights, "runs_weights"},
    {"GET", "/runs/{}/model.onnx", BODY_NONE, runs_onnx, "runs_onnx"},
    {"GET", "/runs/{}/confusion.png", BODY_NONE, pictures_confusion,
     "pictures_confusion"},
    {"GET", "/runs/{}/weights.png", BODY_NONE, pictures_weights,
     "pictures_weights"},
    {"GET", "/runs/{}/loss.png", BODY_NONE, pictures_loss,
     "pictures_loss"},
    {"GET", "/runs/{}/events", BODY_NONE, events_get, "events_get"},
    {"POST", "/predict", BODY_PREDICT, predict_post, "predict_post"},
    {"GET", "/datasets", BODY_NONE, datasets_list, "datasets_list"},
    {"POST", "/datasets", BODY_CSV, datasets_upload, "datasets_upload"},
    {"GET", "/datasets/{}", BODY_NONE, datasets_get, "datasets_get"},
    {"DELETE", "/datasets/{}", BODY_NONE, datasets_delete,
     "datasets_delete"},
    {"GET", "/datasets/{}/examples/{}", BODY_NONE, pictures_example,
     "pictures_example"},
    {"GET", "/healthz", BODY_NONE, misc_healthz, "misc_healthz"},
    {"GET", "/openapi.yaml", BODY_NONE, misc_openapi, "misc_openapi"},
    {"GET", "/", BODY_NONE, static_index, "static_index"},
    {"GET", "/static/{}", BODY_NONE, static_file, "static_file"},
    {"GET", "/metrics", BODY_NONE, misc_metrics, "misc_metrics"},
};
const size_t http_n_routes = sizeof http_routes / sizeof http_routes[0];
