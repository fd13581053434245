/* mcache.h: the cache of trained models serving predictions.
 *
 * A succeeded run's model is decoded from its checkpoint once and kept,
 * read-only, shared by every request thread. Entries are reference
 * counted so that eviction (least recently used beyond `capacity`) or a
 * deleted run never frees a model a request still uses.
 *
 * DESIGN (concurrency): one mutex over the table; decoding happens outside
 * it. Two threads missing the same run at once may both decode it; the
 * second insert is dropped in favour of the first (cheap, and simpler than
 * a loading state).
 *
 * A load races a delete: a request may read a run's checkpoint just before
 * DELETE removes it and insert the model after mcache_drop ran. So the
 * cache counts its drops (a generation); a load notes the count before it
 * reads the store, and if any drop happened meanwhile its model is handed
 * to that request only (entered already dropped, freed at its mcache_put),
 * never cached. After mcache_drop(id) returns, no later mcache_get or
 * mcache_peek yields run id's model unless it is loaded from the store
 * again.
 *
 * Ownership: mcache_get returns a borrowed model pinned until the matching
 * mcache_put. */
#ifndef MN_MCACHE_H
#define MN_MCACHE_H

#include <stdint.h>

#include "engine/err.h"
#include "engine/model.h"

struct store;
typedef struct mcache mcache;

mcache *mcache_new(unsigned capacity);
void mcache_free(mcache *c);

/* The model of run id (loaded from db's 'latest' checkpoint on a miss).
 * NULL with a reason if it cannot be loaded (*not_found when the run has
 * no checkpoint). */
const model *mcache_get(mcache *c, struct store *db, int64_t id,
                        int *not_found, mn_err *err);

/* The model of run id if it is cached (pinned: unpin with mcache_put),
 * else NULL. Only succeeded runs' models are ever cached, so a hit means
 * the run succeeded; the store is not consulted. */
const model *mcache_peek(mcache *c, int64_t id);

/* Unpins a model returned by mcache_get. */
void mcache_put(mcache *c, const model *m);

/* Forgets run id (deleted); frees it once no request holds it. Call it
 * after the run is gone from the store: a load that began before then is
 * not cached (see DESIGN). */
void mcache_drop(mcache *c, int64_t id);

/* Forgets every model, as mcache_drop does one: for a node that may have
 * missed deletions made by another node (its listener reconnected,
 * jobs/signals.h). The next requests load again from the store. */
void mcache_drop_all(mcache *c);

#endif
