/* optim.h: optimizers (SGD, Adagrad, Adam) and clipping by global norm.
 *
 * Conventions, as the reference exercise's TensorFlow 1 estimators:
 * - Adagrad: acc starts at 0.1; acc += g^2; p -= lr * g / sqrt(acc).
 * - Adam: beta1 0.9, beta2 0.999, eps 1e-8, bias correction folded into the
 *   step size: p -= lr * sqrt(1-beta2^t)/(1-beta1^t) * m / (sqrt(v) + eps).
 * - SGD: p -= lr * g.
 * Gradients are those of the loss summed over the batch.
 *
 * Ownership: an optim owns its state block (one allocation: Adagrad's
 * accumulators, or Adam's m then v); free it with optim_free. */
#ifndef MN_OPTIM_H
#define MN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum optim_kind {
    OPTIM_SGD = 0,
    OPTIM_ADAGRAD = 1,
    OPTIM_ADAM = 2,
} optim_kind;

#define OPTIM_ADAGRAD_INIT 0.1f
#define OPTIM_ADAM_BETA1 0.9
#define OPTIM_ADAM_BETA2 0.999
#define OPTIM_ADAM_EPS 1e-8f

typedef struct optim {
    optim_kind kind;
    float lr;
    size_t n;        /* parameters */
    size_t n_state;  /* floats in state: 0 (SGD), n (Adagrad), 2n (Adam) */
    float *state;    /* [n_state], owned */
    uint64_t t;      /* steps taken */
} optim;

/* "sgd", "adagrad", "adam" -> kind; returns -1 for an unknown name. */
int optim_parse(const char *name, optim_kind *out);
const char *optim_name(optim_kind k);

/* Floats of state an optimizer keeps for n parameters. */
size_t optim_state_count(optim_kind k, size_t n);

/* Sets up *o with initial state (Adagrad accumulators at 0.1). */
int optim_init(optim *o, optim_kind kind, float lr, size_t n, mn_err *err);
void optim_free(optim *o);

/* The global L2 norm of grads [n]. */
double optim_global_norm(const float *grads, size_t n);

/* Clipping by global norm as a factor for the gradients: clip / norm when
 * the norm exceeds clip, else 1 (and always 1 when clip <= 0). */
float optim_clip_factor(double norm, float clip);

/* One update of params from grads * gscale (the clip factor, applied on
 * the fly instead of in a pass of its own). params, grads: [o->n] */
void optim_step(optim *o, float *params, const float *grads, float gscale);

#endif
