/* optim.c: SGD, Adagrad and Adam updates, and global-norm clipping. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Hot loops compiled for AVX+FMA and for any x86-64 (see layers.c). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPTIM_HOT __attribute__((target_clones("fma", "default")))
#else
#define OPTIM_HOT
#endif

static const char *const optim_names[] = {"sgd", "adagrad", "adam"};

int optim_parse(const char *name, optim_kind *out)
{
    for (int k = 0; k < 3; k++)
        if (strcmp(name, optim_names[k]) == 0) {
            *out = (optim_kind)k;
            return 0;
        }
    return -1;
}

const char *optim_name(optim_kind k)
{
    return (unsigned)k < 3 ? optim_names[k] : "unknown";
}

size_t optim_state_count(optim_kind k, size_t n)
{
    return k == OPTIM_ADAGRAD ? n : k == OPTIM_ADAM ? 2 * n : 0;
}

int optim_init(optim *o, optim_kind kind, float lr, size_t n, mn_err *err)
{
    memset(o, 0, sizeof *o);
    if ((unsigned)kind > OPTIM_ADAM) return mn_errf(err, "unknown optimizer");
    o->kind = kind;
    o->lr = lr;
    o->n = n;
    o->n_state = optim_state_count(kind, n);
    if (o->n_state) {
        o->state = malloc(o->n_state * sizeof(float));
        if (!o->state) return mn_errf(err, "out of memory for optimizer state");
    }
    if (kind == OPTIM_ADAGRAD)
        for (size_t i = 0; i < n; i++) o->state[i] = OPTIM_ADAGRAD_INIT;
    else if (kind == OPTIM_ADAM)
        memset(o->state, 0, o->n_state * sizeof(float));
    return 0;
}

void optim_free(optim *o)
{
    free(o->state);
    o->state = NULL;
}

/* Sum of squares in eight independent double lanes (vectorisable without
 * reassociating anything), then the lanes added in a fixed order. */
OPTIM_HOT double optim_global_norm(const float *restrict g, size_t n)
{
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lane[k] += (double)g[i + k] * g[i + k];
    double ss = 0.0;
    for (int k = 0; k < 8; k++) ss += lane[k];
    for (; i < n; i++) ss += (double)g[i] * g[i];
    return sqrt(ss);
}

float optim_clip_factor(double norm, float clip)
{
    return clip > 0.0f && norm > clip ? (float)(clip / norm) : 1.0f;
}

OPTIM_HOT void optim_step(optim *o, float *restrict params,
                          const float *restrict grads, float gscale)
{
    size_t n = o->n;
    float lr = o->lr;
    o->t++;
    switch (o->kind) {
    case OPTIM_SGD:
        for (size_t i = 0; i < n; i++) params[i] -= lr * (grads[i] * gscale);
        break;
    case OPTIM_ADAGRAD: {
        float *restrict acc = o->state;
        for (size_t i = 0; i < n; i++) {
            float g = grads[i] * gscale;
            acc[i] += g * g;
            params[i] -= lr * g / sqrtf(acc[i]);
        }
        break;
    }
    case OPTIM_ADAM: {
        float *restrict m = o->state, *restrict v = o->state + n;
        double t = (double)o->t;
        float b1 = (float)OPTIM_ADAM_BETA1, b2 = (float)OPTIM_ADAM_BETA2;
        float lr_t = (float)(lr * sqrt(1.0 - pow(OPTIM_ADAM_BETA2, t)) /
                             (1.0 - pow(OPTIM_ADAM_BETA1, t)));
        for (size_t i = 0; i < n; i++) {
            float g = grads[i] * gscale;
            m[i] = b1 * m[i] + (1.0f - b1) * g;
            v[i] = b2 * v[i] + (1.0f - b2) * g * g;
            params[i] -= lr_t * m[i] / (sqrtf(v[i]) + OPTIM_ADAM_EPS);
        }
        break;
    }
    }
}
