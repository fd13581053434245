/* main.c: the mnistd command: `train` (the exercise from the command line)
 * and `serve` (the HTTP service). */
#include <cblas.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "engine/blas.h"
#include "server/cmd/serve.h"
#include "server/cmd/train.h"
#include "server/cmd/users.h"

int main(int argc, char **argv)
{
    /* OpenBLAS's fastest kernels for this CPU (may re-execute mnistd) */
    blas_pick_kernels(argv);
    /* one BLAS thread per training job: the worker pool gives parallelism */
    openblas_set_num_threads(1);
    /* libsodium's CSPRNG and hashes (users' tokens), before any thread */
    if (sodium_init() < 0) {
        fprintf(stderr, "mnistd: cannot initialise libsodium\n");
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "train") == 0)
        return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "users") == 0)
        return cmd_users(argc - 1, argv + 1);
    fprintf(stderr, "usage: mnistd train [flags] | mnistd serve [flags] | "
                    "mnistd users SUBCOMMAND\n"
                    "       mnistd <command> --help\n");
    return 2;
}
