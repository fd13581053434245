/* model.h: a classifier of some kind behind one interface, in the manner of
 * SQLite's sqlite3_io_methods: a model_kind is a const table of functions
 * (parameter count, workspace, init, forward, backward, first-layer
 * filters), and the generic model_* functions dispatch through it, so that
 * a new kind of model (a convolutional one) is a new file with its own
 * table, not a branch inside an existing kind.
 *
 * A model_arch names its kind and lists its hidden layers in order (dense,
 * and for later kinds conv and pool entries); every kind ends in a dense
 * layer to n_out logits and a softmax, which the list leaves implied.
 *
 * Ownership: a model owns one parameter block and (when made for training)
 * one gradient block of the same layout, which the kind defines. A model
 * used for inference is read-only and may be shared by threads, each with
 * its own model_ws. A model_ws owns the buffers of forward and backward
 * passes for batches of up to max_batch rows. */
#ifndef MN_MODEL_H
#define MN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "rng.h"

#define MODEL_MAX_LAYERS 8      /* hidden layers in an architecture */

/* What a layer entry is. The values are recorded in checkpoints. */
typedef enum model_layer_type {
    MODEL_LAYER_DENSE = 1,      /* size = units */
    MODEL_LAYER_CONV = 2,       /* size = output channels, kernel, stride;
                                   no padding ("valid") */
    MODEL_LAYER_POOL = 3,       /* max pooling: kernel, stride */
    MODEL_LAYER_CONV_SAME = 4   /* MODEL_LAYER_CONV with the zero padding
                                   that keeps the map's size ("same") */
} model_layer_type;

typedef struct model_layer {
    uint32_t type;              /* model_layer_type */
    uint32_t size;              /* units or channels; 0 for pool */
    uint32_t kernel;            /* square kernel side; 0 for dense */
    uint32_t stride;            /* 0 for dense */
} model_layer;

typedef struct model_kind model_kind;

typedef struct model_arch {
    const model_kind *kind;     /* borrowed: an entry of model_kinds */
    int n_in;                   /* input features (784) */
    int n_out;                  /* classes (10) */
    int n_layers;               /* hidden layers; 0 = softmax regression */
    model_layer layers[MODEL_MAX_LAYERS];
    float dropout;              /* drop probability on hidden outputs,
                                   train only */
} model_arch;

typedef struct model {
    model_arch arch;
    size_t n_params;            /* floats in params (and grads) */
    float *params;              /* [n_params], owned */
    float *grads;               /* [n_params], owned; NULL for inference */
} model;

typedef struct model_ws {
    const model_kind *kind;     /* whose kind_ws this is */
    int max_batch;
    float *probs;               /* [B, n_out] softmax output */
    /* the input of the last forward pass (borrowed from the caller):
     * packed rows when sparse_in, else in [B, n_in] */
    const float *in;
    int sparse_in;
    const uint32_t *in_rowptr;  /* CSR: row i's nonzeros are */
    const uint32_t *in_idx;     /*   in_idx/in_val[in_rowptr[i] .. */
    const float *in_val;        /*   in_rowptr[i+1]) */
    /* the workspace's own packing buffers (model_forward and callers
     * packing a batch) */
    uint32_t *sp_rowptr;        /* [B+1] */
    uint32_t *sp_idx;           /* [B*n_in] */
    float *sp_val;              /* [B*n_in] */
    void *sp_block;             /* their one allocation */
    void *kind_ws;              /* the kind's own buffers, owned */
} model_ws;

/* A dense view of one layer's parameters: w [n_in, n_out], b [n_out],
 * borrowed from the model's parameter block. */
typedef struct model_weights {
    const float *w;
    const float *b;
    int n_in, n_out;
} model_weights;

/* The per-kind interface. Every function gets an architecture that
 * `check` accepted. */
struct model_kind {
    const char *name;
    uint32_t id;                /* recorded in checkpoints; never reused */
    /* 0, or -1 with a reason naming what is wrong */
    int (*check)(const model_arch *a, mn_err *err);
    size_t (*param_count)(const model_arch *a);
    /* the kind's own workspace (model_ws.kind_ws) for max_batch rows */
    size_t (*ws_bytes)(const model_arch *a, int max_batch);
    void *(*ws_new)(const model_arch *a, int max_batch, mn_err *err);
    void (*ws_free)(void *kind_ws);
    /* fills m->params (which are zero) */
    void (*init)(model *m, rng_state *rng);
    /* reads the input ws describes, leaves probabilities in ws->probs;
     * dropout when train (rng required); returns the summed
     * cross-entropy when labels is non-NULL, else 0 */
    double (*forward)(const model *m, model_ws *ws, const uint8_t *labels,
                      int B, int train, rng_state *rng);
    /* gradients of the summed loss of the last forward into m->grads
     * (zeroed first) */
    void (*backward)(model *m, model_ws *ws, const uint8_t *labels, int B);
    /* layers with weights (the output layer included), and the dense view
     * of layer l (0 .. layer_count-1) */
    int (*layer_count)(const model_arch *a);
    void (*layer_weights)(const model *m, int l, model_weights *out);
    /* the first layer's filters, for pictures: n of them, each h x w
     * values; filter writes filter i's values v[k] to out[k * stride] */
    void (*filters)(const model_arch *a, int *n, int *h, int *w);
    void (*filter)(const model *m, int i, float *out, size_t stride);
};

/* The kinds, in a const table ended by NULL. */
extern const model_kind *const model_kinds[];

/* The kind recorded under id, or NULL. */
const model_kind *model_kind_by_id(uint32_t id);

/* Checks an architecture (its kind, then the kind's rules); 0 or -1 with a
 * reason. */
int model_arch_check(const model_arch *a, mn_err *err);

/* 1 if a and b describe the same architecture, else 0. */
int model_arch_equal(const model_arch *a, const model_arch *b);

/* Number of floats in the parameter block of a checked architecture. */
size_t model_param_count(const model_arch *a);

/* New model with zeroed parameters; with_grads allocates the gradient
 * block too. Returns NULL with a reason on failure. Free with model_free. */
model *model_new(const model_arch *a, int with_grads, mn_err *err);
void model_free(model *m);

/* The kind's initialisation (the reference estimators' for the mlp). */
void model_init(model *m, rng_state *rng);

/* Bytes a model_ws for batches of max_batch rows allocates. */
size_t model_ws_bytes(const model_arch *a, int max_batch);

/* Workspace for batches of up to max_batch rows (NULL on failure). */
model_ws *model_ws_new(const model_arch *a, int max_batch, mn_err *err);
void model_ws_free(model_ws *ws);

/* The input is read packed (compressed sparse rows) when at most this
 * fraction of it is nonzero; denser inputs go through cblas_sgemm. */
#define MODEL_SPARSE_MAX_DENSITY 0.5

/* Forward pass over B <= ws->max_batch rows. With train != 0 dropout is
 * applied (rng required); otherwise not. Returns the summed cross-entropy
 * if labels is non-NULL. Probabilities land in ws->probs [B, n_out].
 * x: [B, n_in] (borrowed until model_backward)  labels: [B] or NULL */
double model_forward(const model *m, model_ws *ws, const float *x,
                     const uint8_t *labels, int B, int train, rng_state *rng);

/* model_forward for an input already packed as compressed sparse rows
 * (e.g. by ds_pack straight from a dataset's bytes, or a slice of a
 * ds_packed set). The arrays are borrowed and must stay valid until
 * model_backward.
 * rowptr: [B+1] offsets into idx/val (need not start at 0) */
double model_forward_csr(const model *m, model_ws *ws, const uint32_t *rowptr,
                         const uint32_t *idx, const float *val,
                         const uint8_t *labels, int B, int train,
                         rng_state *rng);

/* Backward pass of the last forward (whose input must still be valid) for
 * the summed loss: zeroes m->grads, then fills them. labels: [B] */
void model_backward(model *m, model_ws *ws, const uint8_t *labels, int B);

/* Layers with weights, the output layer included (1 for linear). */
int model_layer_count(const model_arch *a);

/* Dense view of layer l's weights (l < model_layer_count). */
void model_layer_weights(const model *m, int l, model_weights *out);

/* The first layer's filters: *n of them, each *h x *w values. */
void model_filters(const model_arch *a, int *n, int *h, int *w);

/* Writes filter i's values v[k] to out[k * stride].
 * out: [h * w * stride] */
void model_filter(const model *m, int i, float *out, size_t stride);

#endif
