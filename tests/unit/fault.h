/* fault.h: allocation failures on demand, for the unit tests' error paths.
 *
 * The Makefile links build/unit_tests with -Wl,--wrap=malloc,calloc,realloc,
 * so every malloc, calloc and realloc that the engine, the server and the
 * tests themselves call goes through fault.c (the libraries they use, such
 * as libpng and jansson, allocate unwrapped). SQLite's allocations can be
 * counted as well: fault.c installs its own allocator in SQLite
 * (sqlite3_config(SQLITE_CONFIG_MALLOC) at the start of the process, with
 * the lookaside cache off so that every allocation of a statement reaches
 * it), and a thread that calls fault_sqlite(1) has SQLite's allocations
 * counted with the others. Off by default: an
 * unarmed wrapper only forwards the call. Armed with fault_arm(n), the nth
 * wrapped allocation from then on in the calling thread returns NULL (with
 * errno ENOMEM), once; the state is per thread (Criterion also runs each
 * test in a process of its own), so another thread's allocations neither
 * count nor fail.
 *
 * The habit: call the function under test with fault_arm(1), (2), ... until
 * it succeeds with no failure injected, asserting that each injected
 * failure gives a clean error (fault_each does the loop). Under `make san`
 * ASan then reports any leak on those paths. Not a test file: it defines
 * no Test(). */
#ifndef MN_TEST_FAULT_H
#define MN_TEST_FAULT_H

/* Arms the calling thread: its nth wrapped allocation from now (n >= 1)
 * fails; n = 0 disarms. */
void fault_arm(long n);

/* Disarms the calling thread. Returns 1 if the armed failure was injected
 * since fault_arm, 0 if not (the code under test made fewer allocations). */
int fault_disarm(void);

/* on = 1: the calling thread's SQLite allocations count (and fail) like
 * the wrapped ones; 0 (the default): they are never counted. The failure
 * SQLite sees is an SQLITE_NOMEM of the call that allocated. */
void fault_sqlite(int on);

/* on = 1: from now every SQLite allocation of every thread fails, until
 * fault_sqlite_all(0) (a store that is out of service for a while, for
 * threads such as the worker pool's that a test cannot arm one by one).
 * Returns how many have failed since it was turned on (calling it with 1
 * again only asks). */
long fault_sqlite_all(int on);

/* Calls fn(ctx) armed with fault_arm(n) for n = 1, 2, ... until a call
 * has no failure injected, and asserts that this last call returned 0.
 * fn returns 0 on success, nonzero on an error; after an injected failure
 * it may do either (some allocations have a fallback, such as a block
 * shrunk in place), and it frees what it got either way, so that a leak on
 * an error path shows under ASan. Returns how many injected failures fn
 * reported as errors (fails the test past FAULT_MAX_N calls). */
#define FAULT_MAX_N 100000
long fault_each(int (*fn)(void *ctx), void *ctx);

#endif
