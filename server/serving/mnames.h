/* mnames.h: the cache of model name resolutions: which run serves named
 * model M at version V, at alias A, or at its highest version, so that a
 * request through /v2, /v1 or /predict by model name asks the store only
 * on a miss (the store's answer costs more than the inference of one
 * image).
 *
 * Only successful resolutions are kept. Every change to the registry (a
 * version added, an alias set or removed, a model deleted) calls
 * mnames_clear once it is committed: the cache is then emptied, and a
 * resolution read from the store before the clear is not entered (a
 * generation count, as mcache does for drops). So after mnames_clear
 * returns, no lookup gives an answer older than the change. This holds
 * for the registry writes of this process: one server per database. On a
 * store shared by several nodes (store_is_shared) another node may change
 * the registry, so the routes cache no names there (runs_infer_src).
 *
 * DESIGN (concurrency): one mutex over a small fixed table (MNAMES_SLOTS
 * entries, replaced round robin); every call may come from any request
 * thread. */
#ifndef MN_MNAMES_H
#define MN_MNAMES_H

#include <stdint.h>

#define MNAMES_SLOTS 64

typedef struct mnames mnames;

/* What a lookup asks: model `model` at `version` (> 0), else at `alias`
 * (non-NULL), else at its highest version. Strings are borrowed. */
typedef struct mnames_key {
    const char *model;
    int64_t version;
    const char *alias;
} mnames_key;

/* A new empty cache, or NULL when out of memory. */
mnames *mnames_new(void);
void mnames_free(mnames *c);

/* The cached resolution of k: 1 with *run and *version set, else 0.
 * *gen receives the generation to hand to mnames_put after a miss. */
int mnames_get(mnames *c, const mnames_key *k, int64_t *run,
               int64_t *version, uint64_t *gen);

/* Enters k's resolution read from the store, unless the registry changed
 * since generation gen (mnames_get's) or a name is too long to keep. */
void mnames_put(mnames *c, const mnames_key *k, uint64_t gen, int64_t run,
                int64_t version);

/* Forgets everything: the registry changed (call after the commit). */
void mnames_clear(mnames *c);

#endif
