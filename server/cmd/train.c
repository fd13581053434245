/* train.c: `mnistd train`, the reference exercise from the command line.
 * Flags are named like the HTTP fields (--learning-rate for learning_rate)
 * and are turned into the same JSON object, so that one validator serves
 * both the CLI and POST /runs. */
#include "server/cmd/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/render/enc.h"
#include "engine/ds.h"
#include "server/jobs/spec.h"

typedef enum { F_STR, F_INT, F_NUM, F_LIST, F_JSON } flag_kind;

static const struct {
    const char *flag;
    const char *field;
    flag_kind kind;
} train_flags[] = {
    {"--model", "model", F_STR},
    {"--hidden-units", "hidden_units", F_LIST},
    {"--conv-layers", "conv_layers", F_JSON},
    {"--dropout", "dropout", F_NUM},
    {"--optimizer", "optimizer", F_STR},
    {"--learning-rate", "learning_rate", F_NUM},
    {"--clip-norm", "clip_norm", F_NUM},
    {"--steps", "steps", F_INT},
    {"--batch-size", "batch_size", F_INT},
    {"--periods", "periods", F_INT},
    {"--examples", "examples", F_INT},
    {"--validation-examples", "validation_examples", F_INT},
    {"--seed", "seed", F_INT},
};
#define N_TRAIN_FLAGS (sizeof train_flags / sizeof train_flags[0])

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mnistd train --model linear|dnn|cnn [--hidden-units 100,100] "
            "[--dropout P]\n"
            "       [--conv-layers '[{\"filters\":16,\"kernel\":5,\"pool\":2,"
            "\"padding\":\"valid\"}, ...]']\n"
            "       [--optimizer adagrad|sgd|adam] [--learning-rate LR] "
            "[--clip-norm N]\n"
            "       [--steps N] [--batch-size N] [--periods N] [--examples N]\n"
            "       [--validation-examples N] [--seed N] [--dataset NAME|PATH]\n"
            "       [--labels PATH] [--data-dir DIR] [--json]\n"
            "--dataset: mnist, mnist-test, fashion-mnist, fashion-mnist-test, "
            "a .csv file,\n"
            "or an IDX images file whose labels file is found by name\n"
            "(train-images-idx3-ubyte -> train-labels-idx1-ubyte,\n"
            "train-images.idx3-ubyte -> train-labels.idx1-ubyte, either "
            ".gz or not);\n"
            "--labels names the IDX labels file when its name differs.\n");
}

/* Parses a whole string as a long long; -1 if it is not one. */
static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

/* Converts one flag value into a JSON value (new ref) or NULL if malformed. */
static json_t *flag_value(flag_kind kind, const char *v)
{
    long long i;
    switch (kind) {
    case F_STR:
        return json_string(v);
    case F_INT:
        return parse_ll(v, &i) ? NULL : json_integer(i);
    case F_NUM: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        return (errno || end == v || *end) ? NULL : json_real(d);
    }
    case F_LIST: {
        json_t *arr = json_array();
        char buf[256];
        snprintf(buf, sizeof buf, "%s", v);
        /* comma-separated integers, no empty entries ("100,,100") */
        for (char *tok = buf, *end;; tok = end + 1) {
            end = strchr(tok, ',');
            if (end) *end = 0;
            if (parse_ll(tok, &i)) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, json_integer(i));
            if (!end) break;
        }
        return arr;
    }
    case F_JSON:
        return json_loads(v, JSON_DECODE_ANY, NULL);
    }
    return NULL;
}

static void print_table(const train_result *r, const char *model)
{
    printf("Training %s model...\n", model);
    printf("%6s %7s %15s %20s %20s %8s\n", "period", "step", "train_log_loss",
           "validation_log_loss", "validation_accuracy", "seconds");
    for (uint32_t i = 0; i < r->n_periods; i++) {
        const train_period *p = &r->periods[i];
        printf("%6u %7u %15.4f %20.4f %20.4f %8.3f\n", p->period, p->step,
               p->train_log_loss, p->validation_log_loss,
               p->validation_accuracy, p->seconds);
    }
    printf("Model training finished.\n");
    printf("Final accuracy (on validation data): %.4f\n",
           r->validation.accuracy);
    printf("Final log loss (on validation data): %.4f\n",
           r->validation.log_loss);
    double norm[DS_CLASSES][DS_CLASSES];
    eval_normalize(r->validation.confusion, norm);
    printf("Confusion matrix (rows: true label, columns: predicted; each row "
           "sums to 1):\n     ");
    for (int p = 0; p < DS_CLASSES; p++) printf("%6d", p);
    printf("\n");
    for (int t = 0; t < DS_CLASSES; t++) {
        printf("%4d ", t);
        for (int p = 0; p < DS_CLASSES; p++) printf("%6.3f", norm[t][p]);
        printf("\n");
    }
}

static int print_json(const train_result *r, const run_spec *s,
                      const char *dataset)
{
    json_t *params = spec_to_json(s);
    json_object_set_new(params, "dataset", json_string(dataset));
    json_t *periods = json_array();
    for (uint32_t i = 0; i < r->n_periods; i++)
        json_array_append_new(periods, enc_period(&r->periods[i]));
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o}", "params", params,
                          "periods", periods, "validation_accuracy",
                          enc_real(r->validation.accuracy),
                          "validation_log_loss",
                          enc_real(r->validation.log_loss), "confusion",
                          enc_confusion("validation", &r->validation,
                                        enc_class_names(dataset)));
    if (!o) return -1;
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    printf("\n");
    json_decref(o);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    int rc = 2, want_json = 0;
    const char *data_dir = "data", *dataset = "mnist", *labels = NULL;
    json_t *req = json_object();
    ds_dataset d = {0};
    train_result *res = NULL;
    run_spec s;
    train_params tp;
    mn_err err = {{0}};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            want_json = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            rc = 0;
            goto done;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "mnistd train: unexpected argument '%s' (see "
                    "--help)\n", a);
            goto done;
        }
        /* which flag first: an unknown one is named as such, even last */
        size_t f = 0;
        while (f < N_TRAIN_FLAGS && strcmp(a, train_flags[f].flag)) f++;
        if (f == N_TRAIN_FLAGS && strcmp(a, "--data-dir") &&
            strcmp(a, "--dataset") && strcmp(a, "--labels")) {
            fprintf(stderr, "mnistd train: unknown flag %s (see --help)\n", a);
            goto done;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mnistd train: %s needs a value (see --help)\n", a);
            goto done;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--data-dir") == 0) {
            data_dir = v;
            continue;
        }
        if (strcmp(a, "--dataset") == 0) {
            dataset = v;
            continue;
        }
        if (strcmp(a, "--labels") == 0) {
            labels = v;
            continue;
        }
        json_t *jv = flag_value(train_flags[f].kind, v);
        if (!jv) {
            fprintf(stderr, "mnistd train: %s: '%s' is not a valid value\n", a, v);
            goto done;
        }
        json_object_set_new(req, train_flags[f].field, jv);
    }
    if (spec_from_json(req, &s, &err)) {
        fprintf(stderr, "mnistd train: %s\n", err.msg);
        goto done;
    }
    rc = 1;
    int builtin = ds_builtin_find(dataset) != NULL;
    if (!strchr(dataset, '/') && !strchr(dataset, '.') && !builtin) {
        char names[256] = "";
        for (int i = 0; ds_builtins[i].name; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names),
                     "%s%s", i ? ", " : "", ds_builtins[i].name);
        fprintf(stderr, "mnistd train: --dataset: no dataset '%s': the built-in "
                "ones are %s; otherwise give the path of a .csv file or an "
                "IDX images file\n", dataset, names);
        rc = 2;
        goto done;
    }
    int idx_path = !builtin && !strstr(dataset, ".csv");
    if (labels && !idx_path) {
        fprintf(stderr, "mnistd train: --labels goes with --dataset naming an "
                "IDX images file, not '%s'\n", dataset);
        rc = 2;
        goto done;
    }
    if (labels ? ds_load_idx(&d, dataset, labels, &err)
               : ds_load_named(&d, data_dir, dataset, &err)) {
        fprintf(stderr, "mnistd train: %s%s\n", err.msg,
                idx_path && !labels ? " (name the labels file with --labels "
                                      "PATH)" : "");
        goto done;
    }
    if (spec_to_train(&s, &d, &tp, &err)) {
        fprintf(stderr, "mnistd train: %s\n", err.msg);
        rc = 2;
        goto done;
    }
    res = calloc(1, sizeof *res);
    if (!res) {
        fprintf(stderr, "mnistd train: out of memory\n");
        goto done;
    }
    if (train_run(&tp, &d, NULL, 0, NULL, res, &err)) {
        fprintf(stderr, "mnistd train: %s\n", err.msg);
        goto done;
    }
    if (want_json ? print_json(res, &s, dataset) : (print_table(res, s.model->name), 0))
        goto done;
    rc = 0;
done:
    if (res) train_result_free(res);
    free(res);
    ds_free(&d);
    json_decref(req);
    return rc;
}
