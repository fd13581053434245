/* spec.h: a training run's specification: the hyperparameters a user sends
 * (POST /runs JSON, or `mnistd train` flags turned into the same JSON),
 * validated, with the exercise's defaults filled in.
 *
 * Ownership: run_spec is plain data. spec_to_json returns a new reference. */
#ifndef MN_SPEC_H
#define MN_SPEC_H

#include <jansson.h>
#include <stdint.h>

#include "engine/cnn.h"
#include "engine/ds.h"
#include "engine/err.h"
#include "engine/mlp.h"
#include "engine/optim.h"
#include "engine/train.h"
#include "server/jobs/run.h"

#define SPEC_NAME_MAX 64

typedef struct run_spec {
    const run_model_kind *model;    /* from run.h's table (static) */
    char dataset[SPEC_NAME_MAX];    /* dataset name */
    int n_hidden;
    int hidden[MODEL_MAX_LAYERS];
    int n_conv;                     /* conv_layers (a kind with conv) */
    cnn_conv conv[MODEL_MAX_LAYERS];
    double dropout;
    optim_kind optimizer;
    double learning_rate;
    double clip_norm;
    uint32_t steps, batch_size, periods, examples, validation_examples;
    int examples_given, validation_given; /* set by the user, not defaults */
    uint64_t seed;
} run_spec;

/* Fills *s from a JSON object: `model` is required, the rest default to the
 * exercise's recipe for that model (validation_examples: a quarter of
 * examples). Unknown fields, wrong types and values
 * out of range are errors naming the field. A missing seed is drawn at
 * random (and then recorded in *s). Dataset-dependent limits (examples vs
 * the dataset's size) are checked later by spec_to_train. */
int spec_from_json(const json_t *obj, run_spec *s, mn_err *err);

/* Checks the spec against the dataset it will train on and fills the
 * engine's parameters. Defaults that depend on the dataset are resolved
 * in *s: without `examples`, a dataset smaller than 10,000 rows is used
 * whole (and without `validation_examples`, a quarter of it validates). */
int spec_to_train(run_spec *s, const ds_dataset *d, train_params *tp,
                  mn_err *err);

/* The resolved hyperparameters as the `params` JSON object (new ref). */
json_t *spec_to_json(const run_spec *s);

/* True if name is a valid dataset name: [a-z0-9][a-z0-9_-]{0,62}. */
int spec_valid_name(const char *name);

#endif
