/* dsreg.c: the in-memory dataset registry (see dsreg.h). */
#include "server/serving/dsreg.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store/store.h"

/* One dataset. While linked it is in the table under its name; loading
 * entries are linked too (their d is empty until the load ends). pins
 * counts the dsreg_get callers holding it, the loader included. */
typedef struct dsreg_entry {
    char name[64];
    int loading;            /* a thread is loading it */
    int linked;             /* in the table (not dropped) */
    unsigned pins;
    int64_t created_at;     /* a shared store's upload: the created_at of
                               the row it was loaded from (0: unchecked) */
    ds_dataset d;
    struct dsreg_entry *next;
} dsreg_entry;

struct dsreg {
    char *data_dir;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dsreg_entry *head;      /* linked entries only */
};

dsreg *dsreg_new(const char *data_dir)
{
    dsreg *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->data_dir = strdup(data_dir);
    if (!r->data_dir) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    return r;
}

static void entry_free(dsreg_entry *e)
{
    ds_free(&e->d);
    free(e);
}

void dsreg_free(dsreg *r)
{
    if (!r) return;
    dsreg_entry *e = r->head;
    while (e) {
        dsreg_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->data_dir);
    free(r);
}

int dsreg_is_builtin(const char *name)
{
    return ds_builtin_find(name) != NULL;
}

/* The linked entry called name, or NULL. Caller holds r->mu. */
static dsreg_entry *find(dsreg *r, const char *name)
{
    for (dsreg_entry *e = r->head; e; e = e->next)
        if (strcmp(e->name, name) == 0) return e;
    return NULL;
}

/* Takes e out of the table (no-op when it is out). Caller holds r->mu. */
static void unlink_entry(dsreg *r, dsreg_entry *e)
{
    for (dsreg_entry **pp = &r->head; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    e->linked = 0;
    e->next = NULL;
}

const ds_dataset *dsreg_get(dsreg *r, struct store *db, const char *name,
                            int *not_found, mn_err *err)
{
    *not_found = 0;
    if (strlen(name) >= sizeof ((dsreg_entry *)0)->name) {
        *not_found = 1;
        mn_errf(err, "dataset '%s' does not exist", name);
        return NULL;
    }
    /* a store shared by several nodes: another node may have deleted the
     * upload, or replaced it (deleted, uploaded again): its row says
     * which (one small read; the pixels are read only on a load) */
    int64_t stored_at = 0;
    if (db && !dsreg_is_builtin(name) && store_is_shared(db)) {
        store_dataset_info info;
        int st = store_dataset_info_get(db, name, &info, err);
        if (st == STORE_NOT_FOUND) {
            dsreg_drop(r, name);
            *not_found = 1;
            mn_errf(err, "dataset '%s' does not exist", name);
            return NULL;
        }
        if (st) return NULL;
        stored_at = info.created_at;
    }
    pthread_mutex_lock(&r->mu);
    dsreg_entry *e = find(r, name);
    while (e && e->loading) {
        pthread_cond_wait(&r->cv, &r->mu);
        e = find(r, name);
    }
    if (e && stored_at && e->created_at != stored_at) {
        /* not the stored one any more: as dsreg_drop, then load anew */
        unlink_entry(r, e);
        if (e->pins == 0) entry_free(e);
        e = NULL;
    }
    if (e) {
        e->pins++;
        pthread_mutex_unlock(&r->mu);
        return &e->d;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&r->mu);
        mn_errf(err, "out of memory");
        return NULL;
    }
    strcpy(e->name, name);
    e->created_at = stored_at;
    e->loading = 1;
    e->linked = 1;
    e->pins = 1;
    e->next = r->head;
    r->head = e;
    pthread_mutex_unlock(&r->mu);

    ds_dataset d = {0};
    int rc;
    if (dsreg_is_builtin(name)) {
        rc = ds_load_named(&d, r->data_dir, name, err);
    } else {
        rc = db ? store_dataset_get(db, name, &d, err) : -1;
        if (rc == STORE_NOT_FOUND) {
            *not_found = 1;
            mn_errf(err, "dataset '%s' does not exist", name);
        } else if (!db) {
            mn_errf(err, "dataset '%s' is not loaded", name);
        }
    }

    pthread_mutex_lock(&r->mu);
    e->loading = 0;
    if (rc == 0) {
        e->d = d;   /* dropped meanwhile: ours alone, freed by our put */
    } else {
        /* forget the failed name: unknown names must not pile up */
        unlink_entry(r, e);
        free(e);
        e = NULL;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return e ? &e->d : NULL;
}

void dsreg_put(dsreg *r, const ds_dataset *d)
{
    if (!d) return;
    dsreg_entry *e = (dsreg_entry *)((const char *)d -
                                     offsetof(dsreg_entry, d));
    pthread_mutex_lock(&r->mu);
    int last = --e->pins == 0 && !e->linked;
    pthread_mutex_unlock(&r->mu);
    if (last) entry_free(e);
}

void dsreg_drop(dsreg *r, const char *name)
{
    if (dsreg_is_builtin(name)) return;
    pthread_mutex_lock(&r->mu);
    dsreg_entry *e = find(r, name);
    int last = 0;
    if (e) {
        unlink_entry(r, e);
        last = e->pins == 0;    /* a loading entry holds its loader's pin */
        pthread_cond_broadcast(&r->cv);     /* its waiters look again */
    }
    pthread_mutex_unlock(&r->mu);
    if (last) entry_free(e);
}
