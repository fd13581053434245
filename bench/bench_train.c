/* bench_train.c: training throughput of the engine (dnn [100,100], Adagrad,
 * clip 5, one BLAS thread) on the 60,000-image MNIST set, and the ceiling:
 * the same step's matrix products timed alone through cblas_sgemm.
 * Prints one line per figure: name, value, unit (parsed by scripts/bench.sh). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/blas.h"
#include "engine/ds.h"
#include "engine/mlp.h"
#include "engine/optim.h"
#include "engine/train.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of REPS timings of `steps` training steps at batch B, drawing
 * batches from the whole set packed once, as train_run packs its split. */
static double bench_steps(const ds_dataset *d, const ds_packed *pk, int B,
                          int steps)
{
    enum { REPS = 5 };
    model_arch a = {.n_in = DS_PIXELS, .n_out = 10};
    mlp_arch(&a, 2, (const int[]){100, 100}, 0.0f);
    model *m = model_new(&a, 1, NULL);
    model_ws *ws = model_ws_new(&a, B, NULL);
    optim o;
    rng_state r;
    rng_seed(&r, 1);
    model_init(m, &r);
    optim_init(&o, OPTIM_ADAGRAD, 0.05f, m->n_params, NULL);
    float *x = malloc(sizeof(float) * B * DS_PIXELS);
    uint8_t *y = malloc(B);
    uint32_t *idx = malloc(sizeof(uint32_t) * B);
    double t[REPS];
    uint32_t pos = 0;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now();
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < B; i++) idx[i] = (pos++ * 7919u) % d->n;
            train_step(m, ws, &o, d, pk, idx, x, y, B, 5.0f, &r);
        }
        t[rep] = (double)steps * B / (now() - t0);
    }
    qsort(t, REPS, sizeof t[0], cmp_d);
    free(idx); free(y); free(x);
    optim_free(&o);
    model_ws_free(ws);
    model_free(m);
    return t[REPS / 2];
}

/* The ceiling: GFLOP/s of the step's sgemm calls alone, median of 5. */
static double bench_sgemm(int B, double *flops_per_sample)
{
    int dims[3][2] = {{784, 100}, {100, 100}, {100, 10}};
    double flops = 0;
    float *A = calloc((size_t)B * 784, 4), *W = calloc(784 * 100, 4),
          *O = calloc((size_t)B * 784, 4), *G = calloc(784 * 100, 4);
    for (int l = 0; l < 3; l++) {
        double mk = (double)dims[l][0] * dims[l][1];
        flops += 2 * mk * B * (l == 0 ? 2 : 3); /* fwd, dW, (dX) */
    }
    *flops_per_sample = flops / B;
    double t[5];
    int iters = 2000;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (int it = 0; it < iters; it++)
            for (int l = 0; l < 3; l++) {
                int C = dims[l][0], OC = dims[l][1];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, OC, C,
                            1, A, C, W, OC, 0, O, OC);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, B,
                            1, A, C, O, OC, 1, G, OC);
                if (l > 0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, C,
                                OC, 1, O, OC, W, OC, 0, A, C);
            }
        t[rep] = flops * iters / (now() - t0) / 1e9;
    }
    qsort(t, 5, sizeof t[0], cmp_d);
    free(A); free(W); free(O); free(G);
    return t[2];
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "data";
    blas_pick_kernels(argv); /* as mnistd does (engine/blas.h) */
    openblas_set_num_threads(1);
    ds_dataset d = {0};
    mn_err err;
    if (ds_load_named(&d, dir, "mnist", &err)) {
        fprintf(stderr, "bench_train: %s\n", err.msg);
        return 1;
    }
    uint32_t *all = malloc(sizeof(uint32_t) * d.n);
    ds_packed pk;
    for (uint32_t i = 0; i < d.n; i++) all[i] = i;
    if (!all || ds_packed_new(&pk, &d, all, d.n, 1.0, &err)) {
        fprintf(stderr, "bench_train: cannot pack the set\n");
        return 1;
    }
    int batches[2] = {30, 128};
    for (int i = 0; i < 2; i++) {
        int B = batches[i];
        double fps;
        double gf = bench_sgemm(B, &fps);
        double sps = bench_steps(&d, &pk, B, 60000 / B);
        printf("train_samples_per_s_b%d %.0f\n", B, sps);
        printf("sgemm_gflops_b%d %.2f\n", B, gf);
        printf("sgemm_ceiling_samples_per_s_b%d %.0f\n", B, gf * 1e9 / fps);
    }
    ds_packed_free(&pk);
    free(all);
    ds_free(&d);
    return 0;
}
