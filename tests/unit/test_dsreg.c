/* test_dsreg.c: the dataset registry of server/serving/dsreg.c over a
 * real store: pins (one load shared by every dsreg_get), a drop while
 * pinned (the pinned data stays readable, the next get reads the store
 * again), unknown names, built-ins never dropped, and readers racing
 * drops and re-uploads of one name (each sees a whole dataset of one
 * version or not-found; run under `make san` this also checks that no
 * freed dataset is read). */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/serving/dsreg.h"
#include "server/store/store.h"
#include "tests/unit/fault.h"
#include "tests/unit/helpers.h"

static char tmp_dir[64];
static char db_path[128];

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "dsreg");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
}

static void teardown(void) { th_tmpdir_remove(tmp_dir); }

TestSuite(dsreg, .init = setup, .fini = teardown);

static store *open_db(void)
{
    store *s = NULL;
    mn_err err = {{0}};
    cr_assert_eq(store_open(&s, db_path, &err), 0, "%s", err.msg);
    return s;
}

/* n examples of 2x2 pixels, every pixel and label of example i = (i + v)
 * % 10: version v is recognisable from any example. */
static void put_version(store *s, const char *name, uint32_t n, uint8_t v)
{
    ds_dataset d = {.n = n, .rows = 2, .cols = 2};
    d.pixels = malloc((size_t)n * 4);
    d.labels = malloc(n);
    cr_assert(d.pixels && d.labels);
    for (uint32_t i = 0; i < n; i++) {
        d.labels[i] = (uint8_t)((i + v) % 10);
        memset(d.pixels + (size_t)i * 4, d.labels[i], 4);
    }
    mn_err err = {{0}};
    cr_assert_eq(store_dataset_put(s, name, &d, &err), 0, "%s", err.msg);
    ds_free(&d);
}

/* The version of a whole dataset, or -1 if its examples disagree. */
static int version_of(const ds_dataset *d)
{
    int v = (d->labels[0] + 10) % 10;
    for (uint32_t i = 0; i < d->n; i++) {
        uint8_t want = (uint8_t)((i + (uint32_t)v) % 10);
        if (d->labels[i] != want) return -1;
        for (int k = 0; k < 4; k++)
            if (d->pixels[(size_t)i * 4 + k] != want) return -1;
    }
    return v;
}

Test(dsreg, pins_drop_and_reload)
{
    store *s = open_db();
    dsreg *r = dsreg_new(tmp_dir);
    cr_assert_not_null(r);
    mn_err err = {{0}};
    int not_found = 0;

    cr_assert_null(dsreg_get(r, s, "up", &not_found, &err));
    cr_assert_eq(not_found, 1);

    put_version(s, "up", 30, 1);
    const ds_dataset *a = dsreg_get(r, s, "up", &not_found, &err);
    cr_assert_not_null(a, "%s", err.msg);
    const ds_dataset *b = dsreg_get(r, s, "up", &not_found, &err);
    cr_assert_eq(a, b, "one load, shared");
    dsreg_put(r, b);

    /* deleted from the store and dropped while pinned: a stays readable,
     * the next get reads the store (not found, then the new upload) */
    cr_assert_eq(store_dataset_delete(s, "up", NULL, NULL, &err), 0, "%s",
                 err.msg);
    dsreg_drop(r, "up");
    cr_assert_null(dsreg_get(r, s, "up", &not_found, &err));
    cr_assert_eq(not_found, 1);
    put_version(s, "up", 20, 7);
    const ds_dataset *c = dsreg_get(r, s, "up", &not_found, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->n, 20);
    cr_assert_eq(version_of(c), 7);
    cr_assert_eq(a->n, 30);
    cr_assert_eq(version_of(a), 1);
    dsreg_put(r, a);        /* frees the dropped one */
    dsreg_put(r, c);
    dsreg_put(r, NULL);     /* a no-op */

    /* dropping an unknown name or a built-in one does nothing */
    dsreg_drop(r, "never");
    dsreg_drop(r, "mnist");
    cr_assert(dsreg_is_builtin("mnist") && dsreg_is_builtin("mnist-test"));
    cr_assert(!dsreg_is_builtin("up"));

    /* an unpinned dataset is freed by the drop itself */
    dsreg_drop(r, "up");
    c = dsreg_get(r, s, "up", &not_found, &err);
    cr_assert_not_null(c, "%s", err.msg);
    dsreg_put(r, c);
    dsreg_free(r);
    store_close(s);
}

typedef struct reader {
    dsreg *r;
    atomic_int *stop;
    int bad;            /* a dataset read with mixed versions */
    atomic_int seen;    /* datasets read */
} reader;

static void *read_loop(void *arg)
{
    reader *rd = arg;
    store *s = open_db();
    while (!atomic_load(rd->stop)) {
        mn_err err = {{0}};
        int not_found = 0;
        const ds_dataset *d = dsreg_get(rd->r, s, "x", &not_found, &err);
        if (!d) {
            if (!not_found) rd->bad++;
            continue;
        }
        if (version_of(d) < 0) rd->bad++;
        rd->seen++;
        dsreg_put(rd->r, d);
    }
    store_close(s);
    return NULL;
}

/* Readers pin and release "x" while the main thread deletes, drops and
 * uploads it again with another version, 100 times. At the end the
 * registry agrees with the store. */
Test(dsreg, readers_race_drops_and_reuploads)
{
    store *s = open_db();
    dsreg *r = dsreg_new(tmp_dir);
    cr_assert_not_null(r);
    atomic_int stop = 0;
    reader rd[3];
    pthread_t th[3];
    put_version(s, "x", 200, 0);
    for (int i = 0; i < 3; i++) {
        rd[i] = (reader){r, &stop, 0, 0};
        atomic_init(&rd[i].seen, 0);
        cr_assert_eq(pthread_create(&th[i], NULL, read_loop, &rd[i]), 0);
    }
    /* the races begin once every reader has read "x" (on a busy machine
     * the 100 rounds could otherwise end before a reader has started) */
    for (int i = 0; i < 3; i++)
        while (!atomic_load(&rd[i].seen)) sched_yield();
    mn_err err = {{0}};
    for (int k = 1; k <= 100; k++) {
        cr_assert_eq(store_dataset_delete(s, "x", NULL, NULL, &err), 0, "%s",
                     err.msg);
        dsreg_drop(r, "x");
        put_version(s, "x", 200 + (uint32_t)k, (uint8_t)(k % 10));
    }
    atomic_store(&stop, 1);
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(rd[i].bad, 0);
        seen += rd[i].seen;
    }
    cr_assert_gt(seen, 0);
    int not_found = 0;
    const ds_dataset *d = dsreg_get(r, s, "x", &not_found, &err);
    cr_assert_not_null(d, "%s", err.msg);
    cr_assert_eq(d->n, 300, "the registry holds the store's version");
    cr_assert_eq(version_of(d), 0);
    dsreg_put(r, d);
    dsreg_free(r);
    store_close(s);
}

/* ---- error paths ---- */

typedef struct oom_ctx {
    store *s;
    const char *dir;
} oom_ctx;

/* A registry made, a dataset loaded from the store twice (the second a
 * shared pin), dropped while pinned, freed. */
static int oom_call(void *ctx)
{
    oom_ctx *c = ctx;
    dsreg *r = dsreg_new(c->dir);
    if (!r) return -1;
    mn_err err = {{0}};
    int not_found = 0;
    const ds_dataset *a = dsreg_get(r, c->s, "up", &not_found, &err);
    if (!a) {
        cr_assert_eq(not_found, 0, "out of memory reported as not found");
        cr_assert_neq(err.msg[0], '\0');
        dsreg_free(r);
        return -1;
    }
    const ds_dataset *b = dsreg_get(r, c->s, "up", &not_found, &err);
    cr_assert_eq(a, b);
    dsreg_drop(r, "up");
    dsreg_put(r, a);
    dsreg_put(r, b);
    dsreg_free(r);
    return 0;
}

Test(dsreg, out_of_memory_anywhere_is_an_error_and_no_leak)
{
    store *s = open_db();
    put_version(s, "up", 30, 3);
    oom_ctx c = {s, tmp_dir};
    /* the registry's allocations, then SQLite's too */
    cr_assert_gt(fault_each(oom_call, &c), 0);
    fault_sqlite(1);
    cr_assert_gt(fault_each(oom_call, &c), 0);
    fault_sqlite(0);
    store_close(s);
}

Test(dsreg, names_it_cannot_load)
{
    dsreg *r = dsreg_new(tmp_dir);     /* a data dir without MNIST */
    cr_assert_not_null(r);
    mn_err err = {{0}};
    int not_found = 0;
    char longname[80];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_null(dsreg_get(r, NULL, longname, &not_found, &err));
    cr_assert_eq(not_found, 1);
    /* no store to read an uploaded one from */
    cr_assert_null(dsreg_get(r, NULL, "up", &not_found, &err));
    cr_assert_eq(not_found, 0);
    cr_assert_not_null(strstr(err.msg, "is not loaded"), "%s", err.msg);
    /* a built-in one whose files are missing: an error, not not-found,
     * and not remembered (the next get tries again, here with the files) */
    cr_assert_null(dsreg_get(r, NULL, "mnist-test", &not_found, &err));
    cr_assert_eq(not_found, 0);
    cr_assert_neq(err.msg[0], '\0');
    dsreg_free(r);
    r = dsreg_new(th_data_dir());
    cr_assert_not_null(r);
    const ds_dataset *d = dsreg_get(r, NULL, "mnist-test", &not_found, &err);
    cr_assert_not_null(d, "%s", err.msg);
    cr_assert_eq(d->n, 10000);
    dsreg_put(r, d);
    dsreg_free(r);
}

typedef struct getter {
    dsreg *r;
    store *s;
    const ds_dataset *d;
    int not_found;
    mn_err err;
} getter;

static void *get_one(void *arg)
{
    getter *g = arg;
    g->d = dsreg_get(g->r, g->s, "big", &g->not_found, &g->err);
    return NULL;
}

/* Several threads ask for one large dataset at once (one loads, the
 * others wait for it), and it is dropped while they load: each gets a
 * whole dataset or not-found, and every pin is put back. */
Test(dsreg, concurrent_loads_of_one_name_and_a_drop_meanwhile)
{
    store *s = open_db();
    put_version(s, "big", 1u << 21, 4);   /* 8 MiB of pixels */
    for (int round = 0; round < 5; round++) {
        dsreg *r = dsreg_new(tmp_dir);
        cr_assert_not_null(r);
        enum { T = 4 };
        getter g[T];
        pthread_t th[T];
        for (int i = 0; i < T; i++) {
            g[i] = (getter){.r = r, .err = {{0}}};
            g[i].s = open_db();
            cr_assert_eq(pthread_create(&th[i], NULL, get_one, &g[i]), 0);
        }
        if (round % 2) dsreg_drop(r, "big");
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            cr_assert_not_null(g[i].d, "%s", g[i].err.msg);
            cr_assert_eq(version_of(g[i].d), 4);
        }
        dsreg_drop(r, "big");
        for (int i = 0; i < T; i++) {
            dsreg_put(r, g[i].d);
            store_close(g[i].s);
        }
        dsreg_free(r);
    }
    store_close(s);
}
