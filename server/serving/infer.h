/* infer.h: the inference core: which run serves, its pinned model, and
 * class probabilities for a batch of images. It knows nothing of HTTP or
 * JSON: a protocol (POST /predict today) is a codec that decodes its body
 * into an infer_input, calls infer_predict and encodes the infer_output or
 * maps the infer_status to its own error reply.
 *
 * DESIGN (concurrency): no state of its own. Every call may run on any
 * request thread at once; models are shared read-only through the model
 * cache (mcache.h), which locks for itself, and each call has its own
 * workspace.
 *
 * Errors: every function returns INFER_OK (0) or an infer_status, with a
 * one-line message in the caller's mn_err. */
#ifndef MN_INFER_H
#define MN_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"
#include "engine/model.h"
#include "server/serving/mcache.h"
#include "server/serving/mnames.h"
#include "server/store/store.h"

/* Why inference could not be done. */
typedef enum infer_status {
    INFER_OK = 0,
    INFER_NOT_FOUND,         /* no run of that id */
    INFER_NO_MODEL,          /* no run has succeeded yet, or the run has
                                no checkpoint */
    INFER_NOT_SUCCEEDED,     /* the run has not succeeded (queued, running,
                                failed or cancelled) */
    INFER_NO_STORE,          /* the store cannot be used now (cannot be
                              * opened, or STORE_UNAVAILABLE) */
    INFER_STORE_ERROR,       /* a store query failed */
    INFER_MODEL_UNAVAILABLE, /* the checkpoint cannot be read or decoded */
    INFER_SHAPE_MISMATCH,    /* the model takes other inputs than given */
    INFER_NO_MEMORY,         /* out of memory */
} infer_status;

/* Where runs and models come from. models: the shared model cache. db:
 * the caller's store connection, opened on first use (cls its argument);
 * NULL when the store is unavailable. It is not called when a run's model
 * (or a model name's resolution, names) is already cached. On a store
 * shared by several nodes, a run deleted through another node leaves this
 * node's cache when its `deleted` signal arrives (jobs/signals.h;
 * milliseconds), and the whole cache when the listener had to reconnect:
 * a cached model costs no store read per request. */
typedef struct infer_src {
    mcache *models;
    struct store *(*db)(void *cls);
    void *cls;
    mnames *names;      /* model name resolutions (NULL: none cached) */
} infer_src;

/* A batch of n images of P pixels each: either x [n, P] floats in 0..1,
 * or (x NULL) bytes [n, P] raw uint8 pixels (0..255). Borrowed. */
typedef struct infer_input {
    const float *x;
    const uint8_t *bytes;
    size_t n;
    int P;
} infer_input;

/* What infer_predict returns: probs [n, K] (malloc'd, the caller frees it)
 * for K classes, computed by run `run`'s model. */
typedef struct infer_output {
    int64_t run;
    int K;
    float *probs;
} infer_output;

/* A run id as a path segment or query value writes it: 1..18 decimal
 * digits. Returns the id, or 0 if s is not one. */
int64_t infer_parse_id(const char *s);

/* Loads the run named by `name` (an id string; NULL: the newest succeeded
 * run) into *r, which the caller frees with store_run_free. Errors:
 * INFER_NOT_FOUND, INFER_NO_MODEL (name NULL and no run succeeded),
 * INFER_NO_STORE, INFER_STORE_ERROR. */
infer_status infer_find_run(const infer_src *s, const char *name,
                            store_run *r, mn_err *err);

/* Pins the model of run r (borrowed; unpin with infer_unpin) into *m.
 * Errors: INFER_NOT_SUCCEEDED, INFER_NO_STORE, INFER_NO_MODEL (no
 * checkpoint), INFER_MODEL_UNAVAILABLE. */
infer_status infer_pin(const infer_src *s, const store_run *r,
                       const model **m, mn_err *err);

/* Unpins a model from infer_pin (NULL: nothing to do). */
void infer_unpin(const infer_src *s, const model *m);

/* Classifies the images of in with the model of run `run` (an id string;
 * NULL: the newest succeeded run): out->probs [in->n, out->K] is the
 * softmax of each image, out->run the run that computed them. A cached
 * model is used without a store query. Errors: those of infer_find_run
 * and infer_pin, INFER_SHAPE_MISMATCH (the model does not take P inputs),
 * INFER_NO_MEMORY; out->probs is NULL then. */
infer_status infer_predict(const infer_src *s, const char *run,
                           const infer_input *in, infer_output *out,
                           mn_err *err);

/* The run that serves named model `model` at `version` (> 0), else at
 * `alias` (non-NULL), else at its highest version: its id as a string
 * into run[24] (what infer_predict takes) and the version into
 * *version_out; a resolution in s->names is used without a store query.
 * Errors: INFER_NOT_FOUND (no such model, version or alias,
 * or no version yet: err says which), INFER_NO_STORE, INFER_STORE_ERROR. */
infer_status infer_resolve_model(const infer_src *s, const char *model,
                                 int64_t version, const char *alias,
                                 char run[24], int64_t *version_out,
                                 mn_err *err);

#endif
