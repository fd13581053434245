/* bench_cnn.c: training throughput of the default cnn (conv 16x5 pool 2,
 * conv 32x5 pool 2, dense 100, Adam, clip 5, one BLAS thread) on the
 * 60,000-image MNIST set at batch 32 and 128, by the wall clock and by
 * the thread's CPU time; its ceiling (the step's floating-point work as
 * im2col and cblas_sgemm would do it, timed alone by CPU time on the
 * shapes and leading dimensions of the engine's chunks). The engine's
 * backward of a pooled convolution does not go through sgemm: it works
 * only at each window's maximum, about a quarter of that work
 * (layers.h), so the engine can pass this ceiling (bench/NOTES.md).
 * Prints one line per figure: name, value (parsed by scripts/bench.sh). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/blas.h"
#include "engine/cnn.h"
#include "engine/ds.h"
#include "engine/layers.h"
#include "engine/optim.h"
#include "engine/train.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The calling thread's CPU time (s): on a shared machine it leaves out the
 * time other processes hold the core. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void default_cnn(model_arch *a)
{
    memset(a, 0, sizeof *a);
    a->n_in = DS_PIXELS;
    a->n_out = 10;
    cnn_conv conv[] = {{16, 5, 2, 0}, {32, 5, 2, 0}};
    cnn_arch(a, 2, conv, 1, (const int[]){100}, 0.0f, NULL);
}

/* Median samples/s of 3 repetitions of `steps` steps at batch B, by the
 * wall clock (returned) and by the thread's CPU time (*cpu_rate). */
static double bench_steps(const ds_dataset *d, const ds_packed *pk, int B,
                          int steps, double *cpu_rate)
{
    enum { REPS = 3 };
    model_arch a;
    default_cnn(&a);
    model *m = model_new(&a, 1, NULL);
    model_ws *ws = model_ws_new(&a, B, NULL);
    optim o;
    rng_state r;
    rng_seed(&r, 1);
    model_init(m, &r);
    optim_init(&o, OPTIM_ADAM, 0.001f, m->n_params, NULL);
    float *x = malloc(sizeof(float) * B * DS_PIXELS);
    uint8_t *y = malloc(B);
    uint32_t *idx = malloc(sizeof(uint32_t) * B);
    double t[REPS], tc[REPS];
    uint32_t pos = 0;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now(), c0 = cpu_now();
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < B; i++) idx[i] = (pos++ * 7919u) % d->n;
            train_step(m, ws, &o, d, pk, idx, x, y, B, 5.0f, &r);
        }
        t[rep] = (double)steps * B / (now() - t0);
        tc[rep] = (double)steps * B / (cpu_now() - c0);
    }
    qsort(t, REPS, sizeof t[0], cmp_d);
    qsort(tc, REPS, sizeof tc[0], cmp_d);
    *cpu_rate = tc[REPS / 2];
    free(idx); free(y); free(x);
    optim_free(&o);
    model_ws_free(ws);
    model_free(m);
    return t[REPS / 2];
}

/* The default cnn's convolutions as nn_conv2d_dims, and the images per
 * chunk the engine gives each (engine/cnn.c: columns of at most
 * CNN_COL_FLOATS floats). */
static const nn_conv2d_dims *conv_dims(int l, int *nb)
{
    static nn_conv2d_dims d[2];
    nn_conv2d_dims_set(&d[0], 1, 28, 28, 16, 5, 0);
    nn_conv2d_dims_set(&d[1], 16, 12, 12, 32, 5, 0);
    size_t col = (size_t)d[l].C * d[l].K * d[l].K * d[l].OH * d[l].OW;
    *nb = col >= CNN_COL_FLOATS ? 1 : (int)(CNN_COL_FLOATS / col);
    return &d[l];
}

/* GFLOP/s of the step's sgemm calls alone at batch B as im2col would
 * make them, per chunk of nb images as the engine chunks its forward
 * (forward, weight gradient, and but for the first convolution the
 * columns' gradient; the dense layers' three: the engine makes the
 * forward and dense ones), by the thread's CPU time (a rate of the
 * library, whatever else the machine runs), median of 5;
 * *flops_per_sample gets the work. */
static double bench_sgemm(int B, double *flops_per_sample)
{
    int dense[2][2] = {{512, 100}, {100, 10}};
    double flops = 0;
    size_t big = (size_t)B * 16 * 576; /* the largest [OC, B*N] map */
    float *A = calloc(CNN_COL_FLOATS + 400 * 64, 4), *W = calloc(400 * 32, 4),
          *O = calloc(big, 4), *G = calloc(400 * 32, 4);
    float *DA = calloc((size_t)B * 512, 4), *DO = calloc((size_t)B * 512, 4),
          *DW = calloc(512 * 100, 4), *DG = calloc(512 * 100, 4);
    for (int l = 0; l < 2; l++) {
        int nb;
        const nn_conv2d_dims *d = conv_dims(l, &nb);
        double mnk = (double)d->OC * d->OH * d->OW * d->C * d->K * d->K;
        flops += 2 * mnk * B * (l == 0 ? 2 : 3);
    }
    for (int l = 0; l < 2; l++)
        flops += 2.0 * dense[l][0] * dense[l][1] * B * 3;
    *flops_per_sample = flops / B;
    double t[5];
    int iters = 20;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = cpu_now();
        for (int it = 0; it < iters; it++) {
            for (int l = 0; l < 2; l++) {
                int nb;
                const nn_conv2d_dims *d = conv_dims(l, &nb);
                int CKK = d->C * d->K * d->K, N = d->OH * d->OW, OC = d->OC,
                    BN = B * N;
                for (int i0 = 0; i0 < B; i0 += nb) {
                    int n = B - i0 < nb ? B - i0 : nb;
                    float *o = O + (size_t)i0 * N;
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC,
                                n * N, CKK, 1, W, OC, A, n * N, 1, o, BN);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, CKK,
                                OC, n * N, 1, A, n * N, o, BN, 1, G, OC);
                    if (l > 0)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                    CKK, n * N, OC, 1, W, OC, o, BN, 0, A,
                                    n * N);
                }
            }
            for (int l = 0; l < 2; l++) {
                int C = dense[l][0], OC = dense[l][1];
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, OC, C,
                            1, DA, C, DW, OC, 0, DO, OC);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, OC, B,
                            1, DA, C, DO, OC, 1, DG, OC);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, C, OC,
                            1, DO, OC, DW, OC, 0, DA, C);
            }
        }
        t[rep] = flops * iters / (cpu_now() - t0) / 1e9;
    }
    qsort(t, 5, sizeof t[0], cmp_d);
    free(A); free(W); free(O); free(G);
    free(DA); free(DO); free(DW); free(DG);
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
        fprintf(stderr, "bench_cnn: %s\n", err.msg);
        return 1;
    }
    uint32_t *all = malloc(sizeof(uint32_t) * d.n);
    ds_packed pk;
    for (uint32_t i = 0; i < d.n; i++) all[i] = i;
    if (!all || ds_packed_new(&pk, &d, all, d.n, 1.0, &err)) {
        fprintf(stderr, "bench_cnn: cannot pack the set\n");
        return 1;
    }
    int batches[2] = {32, 128};
    for (int i = 0; i < 2; i++) {
        int B = batches[i];
        double fps;
        double gf = bench_sgemm(B, &fps);
        double cps, sps = bench_steps(&d, &pk, B, 6400 / B, &cps);
        printf("cnn_train_samples_per_s_b%d %.0f\n", B, sps);
        printf("cnn_train_cpu_samples_per_s_b%d %.0f\n", B, cps);
        printf("cnn_sgemm_gflops_b%d %.2f\n", B, gf);
        printf("cnn_sgemm_ceiling_samples_per_s_b%d %.0f\n", B, gf * 1e9 / fps);
        if (i == 0) printf("cnn_flops_per_sample %.0f\n", fps);
    }
    ds_packed_free(&pk);
    free(all);
    ds_free(&d);
    return 0;
}
