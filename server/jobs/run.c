/* run.c: the tables of run statuses and model kinds (see run.h). */
#include "server/jobs/run.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int ended;
} run_statuses[RUN_N_STATUSES] = {
#define RUN_STATUS_ROW(id, name, ended) [id] = {name, ended},
    RUN_STATUS_TABLE(RUN_STATUS_ROW)
#undef RUN_STATUS_ROW
};

/* The model kinds: the exercise's linear classifier and its DNN (two
 * hidden layers of 100, a higher learning rate), both with Adagrad; the
 * convolutional network (the default conv_layers are spec.c's) with one
 * hidden layer of 100 and Adam at 0.001, the usual recipe. */
static const run_model_kind run_models[] = {
    {"linear", RUN_ENGINE_MLP, 0, 0, 0, 0.03, "adagrad", 0},
    {"dnn", RUN_ENGINE_MLP, 1, 2, 100, 0.05, "adagrad", 0},
    {"cnn", RUN_ENGINE_CNN, 1, 1, 100, 0.001, "adam", 1},
};
#define RUN_N_MODELS (sizeof run_models / sizeof run_models[0])

const char *run_status_name(run_status s)
{
    return (unsigned)s < RUN_N_STATUSES ? run_statuses[s].name : "?";
}

int run_status_parse(const char *name, run_status *out)
{
    for (int i = 0; name && i < RUN_N_STATUSES; i++)
        if (strcmp(name, run_statuses[i].name) == 0) {
            *out = (run_status)i;
            return 0;
        }
    return -1;
}

int run_status_ended(run_status s)
{
    return (unsigned)s < RUN_N_STATUSES && run_statuses[s].ended;
}

/* Writes the n names to buf[len]: sep between them, last_sep before the
 * last one, each between quote characters. */
static void join_names(char *buf, size_t len, const char *const *names,
                       size_t n, const char *sep, const char *last_sep,
                       const char *quote)
{
    size_t used = 0;
    if (len == 0) return;
    buf[0] = 0;
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s%s%s",
                         i == 0 ? "" : i + 1 == n ? last_sep : sep, quote,
                         names[i], quote);
        if (w < 0) return;
        used += (size_t)w;
    }
}

void run_status_names(char *buf, size_t len)
{
    const char *names[RUN_N_STATUSES];
    for (size_t i = 0; i < RUN_N_STATUSES; i++) names[i] = run_statuses[i].name;
    join_names(buf, len, names, RUN_N_STATUSES, ", ", ", ", "");
}

const run_model_kind *run_model_find(const char *name)
{
    for (size_t i = 0; name && i < RUN_N_MODELS; i++)
        if (strcmp(name, run_models[i].name) == 0) return &run_models[i];
    return NULL;
}

void run_model_names(char *buf, size_t len, int quoted, int hidden_only)
{
    const char *names[RUN_N_MODELS];
    size_t n = 0;
    for (size_t i = 0; i < RUN_N_MODELS; i++)
        if (!hidden_only || run_models[i].hidden) names[n++] = run_models[i].name;
    join_names(buf, len, names, n, ", ", " or ", quoted ? "\"" : "");
}
