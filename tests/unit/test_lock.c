/* test_lock.c: the lock file of an SQLite database (server/store/lock.c)
 * when it cannot be taken or written: a path too long for it, a folder
 * that does not exist, a file that cannot grow (RLIMIT_FSIZE = 0, with
 * SIGXFSZ ignored: write(2) then fails with EFBIG, as on a full disk), and
 * out of memory. Each is an error naming the lock file and the reason,
 * never STORE_CONFLICT (that means another server holds it), and leaves
 * the lock free for the next server. The happy path and the conflict are
 * test_store.c's (store::lock_file...). Each test works in its own
 * temporary directory under /tmp, removed afterwards. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server/store/store.h"
#include "tests/unit/fault.h"
#include "tests/unit/helpers.h"

static char tmp_dir[64];
static char db_path[1024];

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "lock");
    snprintf(db_path, sizeof db_path, "%s/test.db", tmp_dir);
}

static void teardown(void) { th_tmpdir_remove(tmp_dir); }

TestSuite(store_lock, .init = setup, .fini = teardown);

/* Takes the lock of db_path, which must succeed, and releases it. */
static void take_and_release(void)
{
    store_lock *l = NULL;
    long pid = -1;
    unsigned port = 1;
    mn_err err = {{0}};
    cr_assert_eq(store_lock_take(db_path, &l, &pid, &port, &err), 0, "%s",
                 err.msg);
    cr_assert_not_null(l);
    store_lock_release(l);
}

/* Sets the largest file this process may write (bytes); returns 0. */
static int fsize_limit(rlim_t n)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = n;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0, "%s", strerror(errno));
    return 0;
}

Test(store_lock, a_path_too_long_for_the_lock_file_is_an_error)
{
    char path[4096 + 8];
    memset(path, 'a', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    store_lock *l = (store_lock *)1;
    long pid = -1;
    unsigned port = 1;
    mn_err err = {{0}};
    cr_assert_eq(store_lock_take(path, &l, &pid, &port, &err), -1);
    cr_assert_null(l);
    cr_assert_eq(pid, 0);
    cr_assert_eq(port, 0);
    cr_assert(strstr(err.msg, "path too long"), "%s", err.msg);
}

Test(store_lock, a_folder_that_does_not_exist_is_an_error_not_a_conflict)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/no-such-dir/test.db", tmp_dir);
    store_lock *l = NULL;
    long pid = -1;
    unsigned port = 1;
    mn_err err = {{0}};
    int rc = store_lock_take(path, &l, &pid, &port, &err);
    cr_assert_eq(rc, -1, "%d", rc);
    cr_assert_null(l);
    cr_assert(strstr(err.msg, "no-such-dir/test.db.lock"), "%s", err.msg);
    cr_assert(strstr(err.msg, "No such file or directory"), "%s", err.msg);
}

Test(store_lock, a_lock_file_that_cannot_be_written_is_an_error_and_stays_free)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);

    store_lock *l = NULL;
    long pid = -1;
    unsigned port = 1;
    mn_err err = {{0}};
    fsize_limit(0);
    int rc = store_lock_take(db_path, &l, &pid, &port, &err);
    fsize_limit(old.rlim_cur); /* before any assertion: gcov writes too */
    cr_assert_eq(rc, -1, "%d: %s", rc, err.msg);
    cr_assert_null(l);
    cr_assert(strstr(err.msg, "test.db.lock"), "%s", err.msg);
    cr_assert(strstr(err.msg, strerror(EFBIG)), "%s", err.msg);
    take_and_release(); /* the failed take did not keep the lock */

    /* the port noted later: the same failure, the lock still held */
    cr_assert_eq(store_lock_take(db_path, &l, &pid, &port, &err), 0, "%s",
                 err.msg);
    err.msg[0] = '\0';
    fsize_limit(0);
    rc = store_lock_note_port(l, 8080, &err);
    fsize_limit(old.rlim_cur);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(err.msg, strerror(EFBIG)), "%s", err.msg);
    store_lock *l2 = NULL;
    cr_assert_eq(store_lock_take(db_path, &l2, &pid, &port, &err),
                 STORE_CONFLICT);
    cr_assert_null(l2);
    store_lock_release(l);
}

Test(store_lock, out_of_memory_is_an_error_and_the_lock_stays_free)
{
    store_lock *l = NULL;
    long pid = -1;
    unsigned port = 1;
    mn_err err = {{0}};
    fault_arm(1);
    int rc = store_lock_take(db_path, &l, &pid, &port, &err);
    cr_assert(fault_disarm(), "store_lock_take allocated nothing");
    cr_assert_eq(rc, -1);
    cr_assert_null(l);
    cr_assert(strstr(err.msg, "out of memory"), "%s", err.msg);
    take_and_release();
}

Test(store_lock, a_holder_that_wrote_nothing_yet_is_a_conflict_without_pid)
{
    /* another server between its flock and its write: an empty file */
    store_lock *l = NULL, *l2 = (store_lock *)1;
    long pid = -1;
    unsigned port = 1;
    mn_err err = {{0}};
    cr_assert_eq(store_lock_take(db_path, &l, &pid, &port, &err), 0, "%s",
                 err.msg);
    char path[1100];
    snprintf(path, sizeof path, "%s.lock", db_path);
    cr_assert_eq(truncate(path, 0), 0);
    cr_assert_eq(store_lock_take(db_path, &l2, &pid, &port, &err),
                 STORE_CONFLICT);
    cr_assert_null(l2);
    cr_assert_eq(pid, 0);
    cr_assert_eq(port, 0);
    cr_assert(strstr(err.msg, "locked by another process"), "%s", err.msg);
    store_lock_release(l);
}
