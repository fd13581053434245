/* snapshots.h: reading a run's weight snapshots (the first layer's weights
 * at some period ends, engine/wsnap.h) back from the store. They are
 * written with their period by store_period_add_snapshot (store.h) and go
 * with their run (store_run_delete).
 *
 * Same conventions as store.h: 0, STORE_NOT_FOUND, or < 0 with the reason
 * in err (STORE_UNAVAILABLE when transient); returned arrays and blobs are
 * malloc'd, owned by the caller (free()). One thread at a time per store. */
#ifndef MN_SNAPSHOTS_H
#define MN_SNAPSHOTS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/err.h"
#include "server/store/store.h"

typedef struct store_snapshot_info {
    uint32_t period;            /* 1-based */
    uint32_t step;              /* steps done at that period's end */
    uint32_t bytes;             /* size of the encoded snapshot */
} store_snapshot_info;

/* Run id's snapshots in period order: *out is a new array (NULL with *n 0
 * when it has none). STORE_NOT_FOUND for an unknown run. */
int store_snapshot_list(store *s, int64_t id, store_snapshot_info **out,
                        size_t *n, mn_err *err);

/* Run id's snapshot of `period` (wsnap_encode's bytes) into *buf (new) and
 * *len; *step (may be NULL) receives its step. STORE_NOT_FOUND when the
 * run or that period's snapshot does not exist. */
int store_snapshot_get(store *s, int64_t id, uint32_t period, uint8_t **buf,
                       size_t *len, uint32_t *step, mn_err *err);

#endif
