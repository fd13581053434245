/* mcache.c: reference-counted LRU cache of read-only models (mcache.h). */
#include "server/serving/mcache.h"

#include <pthread.h>
#include <stdlib.h>

#include "engine/ckpt.h"
#include "server/store/store.h"

typedef struct mc_entry {
    int64_t id;
    model *m;
    unsigned refs;
    int dropped;            /* no longer findable; free at refs == 0 */
    uint64_t used;          /* LRU clock */
    struct mc_entry *next;
} mc_entry;

struct mcache {
    pthread_mutex_t mu;
    unsigned capacity, count;
    uint64_t clock;
    uint64_t drops;         /* mcache_drop calls: a load's generation */
    mc_entry *head;
};

mcache *mcache_new(unsigned capacity)
{
    mcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->capacity = capacity ? capacity : 1;
    return c;
}

void mcache_free(mcache *c)
{
    if (!c) return;
    mc_entry *e = c->head;
    while (e) {
        mc_entry *next = e->next;
        model_free(e->m);
        free(e);
        e = next;
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Unlinks and frees unpinned dropped entries, then evicts the least
 * recently used unpinned entries while over capacity. Lock held. */
static void sweep(mcache *c)
{
    for (;;) {
        mc_entry **victim = NULL;
        unsigned live = 0;
        for (mc_entry **pp = &c->head; *pp; pp = &(*pp)->next) {
            mc_entry *e = *pp;
            if (e->dropped) {
                if (e->refs == 0) {
                    victim = pp;
                    break;
                }
                continue;
            }
            live++;
        }
        if (!victim && live > c->capacity) {
            for (mc_entry **pp = &c->head; *pp; pp = &(*pp)->next)
                if (!(*pp)->dropped && (*pp)->refs == 0 &&
                    (!victim || (*pp)->used < (*victim)->used))
                    victim = pp;
        }
        if (!victim) break;
        mc_entry *e = *victim;
        *victim = e->next;
        model_free(e->m);
        free(e);
    }
}

const model *mcache_peek(mcache *c, int64_t id)
{
    const model *m = NULL;
    pthread_mutex_lock(&c->mu);
    for (mc_entry *e = c->head; e; e = e->next)
        if (e->id == id && !e->dropped) {
            e->refs++;
            e->used = ++c->clock;
            m = e->m;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    return m;
}

const model *mcache_get(mcache *c, struct store *db, int64_t id,
                        int *not_found, mn_err *err)
{
    *not_found = 0;
    const model *hit = mcache_peek(c, id);
    if (hit) return hit;
    pthread_mutex_lock(&c->mu);
    uint64_t gen = c->drops;     /* before the store is read */
    pthread_mutex_unlock(&c->mu);

    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t step;
    model *m = NULL;
    int rc = store_checkpoint_get(db, id, "latest", &buf, &len, &step, err);
    if (rc == STORE_NOT_FOUND) {
        *not_found = 1;
        mn_errf(err, "run %lld has no trained model", (long long)id);
        return NULL;
    }
    if (rc) return NULL;
    rc = ckpt_decode(buf, len, 0, &m, NULL, NULL, NULL, err);
    free(buf);
    if (rc) return NULL;

    mc_entry *ne = calloc(1, sizeof *ne);
    if (!ne) {
        model_free(m);
        mn_errf(err, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    for (mc_entry *e = c->head; e; e = e->next)
        if (e->id == id && !e->dropped) { /* lost the race: use the first */
            e->refs++;
            e->used = ++c->clock;
            pthread_mutex_unlock(&c->mu);
            model_free(m);
            free(ne);
            return e->m;
        }
    ne->id = id;
    ne->m = m;
    ne->refs = 1;
    ne->dropped = c->drops != gen; /* maybe deleted since: not cached */
    ne->used = ++c->clock;
    ne->next = c->head;
    c->head = ne;
    sweep(c);
    pthread_mutex_unlock(&c->mu);
    return m;
}

void mcache_put(mcache *c, const model *m)
{
    if (!m) return;
    pthread_mutex_lock(&c->mu);
    for (mc_entry *e = c->head; e; e = e->next)
        if (e->m == m) {
            e->refs--;
            break;
        }
    sweep(c);
    pthread_mutex_unlock(&c->mu);
}

void mcache_drop_all(mcache *c)
{
    pthread_mutex_lock(&c->mu);
    c->drops++;
    for (mc_entry *e = c->head; e; e = e->next) e->dropped = 1;
    sweep(c);
    pthread_mutex_unlock(&c->mu);
}

void mcache_drop(mcache *c, int64_t id)
{
    pthread_mutex_lock(&c->mu);
    c->drops++;
    for (mc_entry *e = c->head; e; e = e->next)
        if (e->id == id) e->dropped = 1;
    sweep(c);
    pthread_mutex_unlock(&c->mu);
}
