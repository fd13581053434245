/* signal_parse.c: store_signal_parse (store.h), the reader of the payloads
 * that migrations/postgresql/0008_run_signals.sql's triggers send. On its
 * own, without the store's drivers, so that its fuzz target
 * (tests/fuzz/fuzz_signal.c) links it alone. */
#include <stdint.h>
#include <string.h>

#include "server/store/store.h"

/* The kinds by payload word (0008_run_signals.sql). */
static const struct {
    const char *word;
    store_signal_kind kind;
} signal_words[] = {
    {"queued", STORE_SIG_QUEUED},
    {"cancel", STORE_SIG_CANCEL},
    {"deleted", STORE_SIG_DELETED},
    {"period", STORE_SIG_PERIOD},
    {"dataset_deleted", STORE_SIG_DATASET_DELETED},
};

/* A run id as the triggers write it (PostgreSQL's BIGINT text): 1 to 18
 * decimal digits without a leading zero. 0 when s is not one. */
static int64_t parse_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || s[0] == '0') return 0;
    int64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return 0;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

int store_signal_parse(const char *payload, store_signal *out)
{
    memset(out, 0, sizeof *out);
    const char *sp = payload ? strchr(payload, ' ') : NULL;
    if (!sp || !sp[1]) return -1;
    size_t wlen = (size_t)(sp - payload);
    const char *arg = sp + 1;
    for (size_t i = 0; i < sizeof signal_words / sizeof signal_words[0]; i++) {
        if (strlen(signal_words[i].word) != wlen ||
            memcmp(signal_words[i].word, payload, wlen) != 0)
            continue;
        if (signal_words[i].kind == STORE_SIG_DATASET_DELETED) {
            size_t n = strlen(arg);
            if (n >= sizeof out->dataset) return -1;
            memcpy(out->dataset, arg, n + 1);
        } else if (!(out->run = parse_id(arg))) {
            return -1;
        }
        out->kind = signal_words[i].kind;
        return 0;
    }
    return -1;
}
