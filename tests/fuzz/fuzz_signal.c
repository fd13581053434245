/* fuzz_signal.c: the reader of the store's NOTIFY payloads
 * (store_signal_parse, server/store/signal_parse.c).
 *
 * Input: a payload (a NUL ends it early).
 *
 * Promises checked: a rejected payload leaves *out all zero; an accepted
 * one has a known kind, a run id > 0 and no name for a run's kind, a name
 * of 1..63 bytes and no run for dataset_deleted, and written back as the
 * triggers write it ("<word> <id>" or "dataset_deleted <name>") it is the
 * input, byte for byte: nothing is read that is not there. */
#include <stdio.h>

#include "server/store/store.h"
#include "tests/fuzz/fuzz.h"

static int fuzz_signal(const uint8_t *data, size_t size)
{
    static const char *const words[] = {
        [STORE_SIG_QUEUED] = "queued", [STORE_SIG_CANCEL] = "cancel",
        [STORE_SIG_DELETED] = "deleted", [STORE_SIG_PERIOD] = "period",
        [STORE_SIG_DATASET_DELETED] = "dataset_deleted",
    };
    char *payload = malloc(size + 1);
    if (!payload) return 0;
    memcpy(payload, data, size);
    payload[size] = '\0';
    store_signal sig;
    memset(&sig, 0xa5, sizeof sig);
    int r = store_signal_parse(payload, &sig);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r == -1) {
        store_signal zero;
        memset(&zero, 0, sizeof zero);
        FUZZ_CHECK(memcmp(&sig, &zero, sizeof sig) == 0);
    } else {
        FUZZ_CHECK(sig.kind >= STORE_SIG_QUEUED &&
                   sig.kind <= STORE_SIG_DATASET_DELETED);
        char back[128];
        if (sig.kind == STORE_SIG_DATASET_DELETED) {
            size_t n = strnlen(sig.dataset, sizeof sig.dataset);
            FUZZ_CHECK(sig.run == 0 && n >= 1 && n < sizeof sig.dataset);
            snprintf(back, sizeof back, "%s %s", words[sig.kind],
                     sig.dataset);
        } else {
            FUZZ_CHECK(sig.run > 0 && sig.dataset[0] == '\0');
            snprintf(back, sizeof back, "%s %lld", words[sig.kind],
                     (long long)sig.run);
        }
        FUZZ_CHECK(strcmp(back, payload) == 0);
    }
    free(payload);
    return 0;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_signal(data, size);
}
#endif
