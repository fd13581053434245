/* lock.c: one server per SQLite database file (a flock on a sidecar
 * lock file). */
#include "server/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* ------------------------------------------------------- the file lock */

struct store_lock {
    int fd;          /* the open lock file, flock'ed LOCK_EX */
    char path[4096]; /* its name, for messages */
};

/* Replaces the lock file's text with "<pid> <port>\n". 0 or -1. */
static int lock_write(int fd, unsigned port, const char *path, mn_err *err)
{
    char line[48];
    int n = snprintf(line, sizeof line, "%ld %u\n", (long)getpid(), port);
    if (ftruncate(fd, 0) || pwrite(fd, line, (size_t)n, 0) != n)
        return mn_errf(err, "store: lock %s: %s", path, strerror(errno));
    return 0;
}

int store_lock_take(const char *db_path, store_lock **out, long *holder_pid,
                    unsigned *holder_port, mn_err *err)
{
    int rc = -1;
    int fd = -1;
    char path[sizeof ((store_lock *)0)->path];

    *out = NULL;
    *holder_pid = 0;
    *holder_port = 0;
    if (snprintf(path, sizeof path, "%s.lock", db_path) >= (int)sizeof path)
        return mn_errf(err, "store: lock: path too long");
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        mn_errf(err, "store: lock %s: %s", path, strerror(errno));
        goto done;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        if (errno != EWOULDBLOCK) {
            mn_errf(err, "store: lock %s: %s", path, strerror(errno));
            goto done;
        }
        char text[48] = {0};
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        if (n > 0) sscanf(text, "%ld %u", holder_pid, holder_port);
        mn_errf(err, "store: %s is locked by another process", path);
        rc = STORE_CONFLICT;
        goto done;
    }
    if (lock_write(fd, 0, path, err)) goto done;
    *out = malloc(sizeof **out);
    if (!*out) {
        mn_errf(err, "store: lock %s: out of memory", path);
        goto done;
    }
    (*out)->fd = fd;
    memcpy((*out)->path, path, sizeof path);
    fd = -1;
    rc = 0;
done:
    if (fd >= 0) close(fd);
    return rc;
}

int store_lock_note_port(store_lock *l, unsigned port, mn_err *err)
{
    return lock_write(l->fd, port, l->path, err);
}

void store_lock_release(store_lock *l)
{
    if (!l) return;
    close(l->fd); /* closing the only descriptor releases the flock */
    free(l);
}
