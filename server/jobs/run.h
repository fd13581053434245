/* run.h: the service's run vocabulary, each part one table: the statuses
 * a training run goes through (and which of them are ends), and the model
 * kinds a run may train (the name, the defaults that differ per kind,
 * which fields apply). The store, the worker pool, the routes, the event
 * hub, the metrics and the run specification all speak these, so a new
 * status or model kind is one line here (statuses) or in run.c (kinds).
 *
 * The names are what the database stores and what the API shows and
 * accepts (openapi.yaml lists them). The schema checks the status names
 * (migrations/0001_init.sql), so a new status also needs a migration.
 *
 * Ownership: names and table entries are static (borrowed, never freed). */
#ifndef MN_RUN_H
#define MN_RUN_H

#include <stddef.h>

/* X(id, name, ended): every status of a run, in the order the metrics and
 * error messages list them. `ended` marks the final ones. `pruned`: a
 * trial of a hyperparameter search stopped early by the search's early
 * stopping rule (server/jobs/sweep.h); it keeps its periods and its
 * latest checkpoint, as a cancelled run does. */
#define RUN_STATUS_TABLE(X)              \
    X(RUN_QUEUED, "queued", 0)           \
    X(RUN_RUNNING, "running", 0)         \
    X(RUN_SUCCEEDED, "succeeded", 1)     \
    X(RUN_FAILED, "failed", 1)           \
    X(RUN_CANCELLED, "cancelled", 1)     \
    X(RUN_PRUNED, "pruned", 1)

typedef enum run_status {
#define RUN_STATUS_ENUM(id, name, ended) id,
    RUN_STATUS_TABLE(RUN_STATUS_ENUM)
#undef RUN_STATUS_ENUM
    RUN_N_STATUSES
} run_status;

/* The status's name ("queued", ...); "?" for a value outside the enum. */
const char *run_status_name(run_status s);

/* Finds the status called name. 0, or -1 if name is none (or NULL). */
int run_status_parse(const char *name, run_status *out);

/* 1 if s is a final status (succeeded, failed, cancelled, pruned), else
 * 0. */
int run_status_ended(run_status s);

/* Writes every status name, ", "-separated in table order, into buf[len]
 * (truncated to fit, always terminated): for error messages. */
void run_status_names(char *buf, size_t len);

/* The engine's model family that trains a kind (engine/mlp.h: linear is
 * an mlp without hidden layers; engine/cnn.h). */
typedef enum run_engine_model { RUN_ENGINE_MLP, RUN_ENGINE_CNN } run_engine_model;

/* A model kind: what the API's `model` field may name. */
typedef struct run_model_kind {
    const char *name;            /* "linear", "dnn", "cnn" */
    run_engine_model engine;     /* the family that trains it */
    int hidden;                  /* 1: hidden_units and dropout apply */
    int hidden_layers;           /* default hidden_units: this many ... */
    int hidden_width;            /* ... layers of this width */
    double learning_rate;        /* default learning rate */
    const char *optimizer;       /* default optimizer's name (optim.h) */
    int conv;                    /* 1: conv_layers apply */
} run_model_kind;

/* The kind called name, or NULL if none (or name is NULL). */
const run_model_kind *run_model_find(const char *name);

/* Writes the kinds' names into buf[len] for messages (truncated to fit,
 * always terminated), in table order, the last two joined by " or " and
 * the others by ", ", each in double quotes if quoted ("\"linear\",
 * \"dnn\" or \"cnn\"", or "linear, dnn or cnn"); only the kinds with
 * hidden layers if
 * hidden_only. */
void run_model_names(char *buf, size_t len, int quoted, int hidden_only);

#endif
