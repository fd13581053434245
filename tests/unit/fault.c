/* fault.c: the allocation wrappers of fault.h (linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc). */
#include "tests/unit/fault.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stddef.h>

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
