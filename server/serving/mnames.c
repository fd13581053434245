/* mnames.c: the cache of model name resolutions (mnames.h). */
#include "server/serving/mnames.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct mn_slot {
    int used;
    char model[64];
    int64_t version;        /* asked: > 0, or 0 */
    char alias[64];         /* asked, "" when none */
    int has_alias;
    int64_t run, served;    /* the answer: run and its version */
} mn_slot;

struct mnames {
    pthread_mutex_t mu;
    uint64_t gen;           /* mnames_clear calls */
    unsigned next;          /* round-robin replacement */
    mn_slot slot[MNAMES_SLOTS];
};

mnames *mnames_new(void)
{
    mnames *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void mnames_free(mnames *c)
{
    if (!c) return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Does slot s hold the answer to k? (under the lock) */
static int same(const mn_slot *s, const mnames_key *k)
{
    if (!s->used || strcmp(s->model, k->model) != 0) return 0;
    if (k->version > 0) return s->version == k->version;
    if (s->version > 0) return 0;
    if (k->alias) return s->has_alias && strcmp(s->alias, k->alias) == 0;
    return !s->has_alias;
}

int mnames_get(mnames *c, const mnames_key *k, int64_t *run,
               int64_t *version, uint64_t *gen)
{
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    *gen = c->gen;
    for (unsigned i = 0; i < MNAMES_SLOTS && !hit; i++) {
        if (!same(&c->slot[i], k)) continue;
        *run = c->slot[i].run;
        *version = c->slot[i].served;
        hit = 1;
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void mnames_put(mnames *c, const mnames_key *k, uint64_t gen, int64_t run,
                int64_t version)
{
    if (strlen(k->model) >= sizeof c->slot[0].model ||
        (k->alias && strlen(k->alias) >= sizeof c->slot[0].alias))
        return;
    pthread_mutex_lock(&c->mu);
    if (gen == c->gen) {
        mn_slot *s = &c->slot[c->next];
        c->next = (c->next + 1) % MNAMES_SLOTS;
        memset(s, 0, sizeof *s);
        s->used = 1;
        strcpy(s->model, k->model);
        s->version = k->version > 0 ? k->version : 0;
        if (s->version == 0 && k->alias) {
            s->has_alias = 1;
            strcpy(s->alias, k->alias);
        }
        s->run = run;
        s->served = version;
    }
    pthread_mutex_unlock(&c->mu);
}

void mnames_clear(mnames *c)
{
    pthread_mutex_lock(&c->mu);
    c->gen++;
    memset(c->slot, 0, sizeof c->slot);
    c->next = 0;
    pthread_mutex_unlock(&c->mu);
}
