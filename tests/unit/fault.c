/* fault.c: the allocation wrappers of fault.h (linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc). */
#include "tests/unit/fault.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdlib.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

/* Per thread: allocations left before the failing one (0 = unarmed), and
 * whether the armed failure was injected. */
static _Thread_local long fault_left;
static _Thread_local int fault_fired;
/* Whether this thread's SQLite allocations count (fault_sqlite). */
static _Thread_local int fault_sqlite_on;
/* Process-wide (fault_sqlite_all): every SQLite allocation fails while
 * set; how many did. */
static atomic_int fault_sqlite_everywhere;
static atomic_long fault_sqlite_refused;

void fault_arm(long n)
{
    fault_left = n > 0 ? n : 0;
    fault_fired = 0;
}

int fault_disarm(void)
{
    int fired = fault_fired;
    fault_left = 0;
    fault_fired = 0;
    return fired;
}

/* Counts one allocation; 1 when it is the one to fail. */
static int fault_now(void)
{
    if (fault_left == 0 || --fault_left > 0) return 0;
    fault_fired = 1;
    errno = ENOMEM;
    return 1;
}

void *__wrap_malloc(size_t size)
{
    return fault_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fault_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return fault_now() ? NULL : __real_realloc(p, size);
}

/* ---- SQLite's allocator: SQLite's default methods, counted ---- */

/* SQLite's own methods, read once before it is initialised (written only
 * by the constructor below, read-only afterwards). */
static sqlite3_mem_methods fault_sqlite_real;

/* 1 when this SQLite allocation is to fail. */
static int fault_sqlite_now(void)
{
    if (atomic_load(&fault_sqlite_everywhere)) {
        atomic_fetch_add(&fault_sqlite_refused, 1);
        return 1;
    }
    return fault_sqlite_on && fault_now();
}

static void *fault_sqlite_malloc(int n)
{
    return fault_sqlite_now() ? NULL : fault_sqlite_real.xMalloc(n);
}

static void fault_sqlite_free(void *p) { fault_sqlite_real.xFree(p); }

static void *fault_sqlite_realloc(void *p, int n)
{
    return fault_sqlite_now() ? NULL : fault_sqlite_real.xRealloc(p, n);
}

static int fault_sqlite_size(void *p) { return fault_sqlite_real.xSize(p); }

static int fault_sqlite_roundup(int n) { return fault_sqlite_real.xRoundup(n); }

static int fault_sqlite_init(void *app)
{
    (void)app;
    return fault_sqlite_real.xInit(fault_sqlite_real.pAppData);
}

static void fault_sqlite_shutdown(void *app)
{
    (void)app;
    fault_sqlite_real.xShutdown(fault_sqlite_real.pAppData);
}

/* Runs before main, so before anything initialises SQLite (sqlite3_config
 * is refused afterwards). The lookaside cache goes: it would serve most
 * small allocations of a statement without asking the allocator. */
__attribute__((constructor)) static void fault_sqlite_install(void)
{
    static const sqlite3_mem_methods counted = {
        fault_sqlite_malloc, fault_sqlite_free, fault_sqlite_realloc,
        fault_sqlite_size, fault_sqlite_roundup, fault_sqlite_init,
        fault_sqlite_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &fault_sqlite_real) !=
            SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MALLOC, &counted) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK)
        abort();
}

void fault_sqlite(int on) { fault_sqlite_on = on; }

long fault_sqlite_all(int on)
{
    if (on && !atomic_load(&fault_sqlite_everywhere))
        atomic_store(&fault_sqlite_refused, 0);
    atomic_store(&fault_sqlite_everywhere, on);
    return atomic_load(&fault_sqlite_refused);
}

long fault_each(int (*fn)(void *ctx), void *ctx)
{
    long reported = 0;
    for (long n = 1; n < FAULT_MAX_N; n++) {
        fault_arm(n);
        int rc = fn(ctx);
        int fired = fault_disarm();
        if (!fired) {
            cr_assert_eq(rc, 0, "the call without an injected failure failed");
            return reported;
        }
        if (rc) reported++;
    }
    cr_assert_fail("still failing after %d injected failures", FAULT_MAX_N);
    return -1;
}
