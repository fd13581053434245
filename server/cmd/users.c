/* users.c: `mnistd users` (see users.h). */
#include "server/cmd/users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <time.h>

#include "server/http/auth.h"
#include "server/jobs/spec.h"
#include "server/store/store.h"

static void users_usage(FILE *f)
{
    fprintf(f,
            "usage: mnistd users add NAME [--admin] [--db DB]\n"
            "       mnistd users list [--db DB]\n"
            "       mnistd users revoke NAME [--db DB]\n"
            "       mnistd users rotate NAME [--db DB]\n"
            "  add and rotate print the user's new token once, on stdout:\n"
            "  clients send it as Authorization: Bearer TOKEN. Names follow\n"
            "  the dataset naming rule ([a-z0-9][a-z0-9_-]*, at most 63).\n"
            "  --db (or MNISTD_DB, else mnistd.db): the server's database, an\n"
            "  SQLite file or a PostgreSQL URI; a running server sees the\n"
            "  change within a second.\n");
}

/* Writes t (ms since the epoch; 0: none) as UTC ISO 8601 into buf[24]. */
static const char *iso_time(int64_t t, char buf[24])
{
    if (!t) return "-";
    time_t sec = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(buf, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* The subcommands, and whether each takes a NAME. */
static const struct {
    const char *name;
    int takes_name;
} users_cmds[] = {
    {"add", 1},
    {"list", 0},
    {"revoke", 1},
    {"rotate", 1},
};

int cmd_users(int argc, char **argv)
{
    const char *cmd = argc >= 2 ? argv[1] : NULL;
    if (cmd && (!strcmp(cmd, "-h") || !strcmp(cmd, "--help"))) {
        users_usage(stdout);
        return 0;
    }
    int takes_name = -1;
    for (size_t i = 0; cmd && i < sizeof users_cmds / sizeof users_cmds[0];
         i++)
        if (!strcmp(cmd, users_cmds[i].name))
            takes_name = users_cmds[i].takes_name;
    if (takes_name < 0) {
        if (cmd)
            fprintf(stderr, "mnistd users: unknown subcommand %s (add, list, "
                    "revoke, rotate; see --help)\n", cmd);
        else
            fprintf(stderr, "mnistd users: a subcommand is needed (add, "
                    "list, revoke, rotate; see --help)\n");
        return 2;
    }
    const char *db_path = getenv("MNISTD_DB");
    if (!db_path || !*db_path) db_path = "mnistd.db";
    const char *name = NULL;
    int admin = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--db")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mnistd users: --db needs a value\n");
                return 2;
            }
            db_path = argv[++i];
        } else if (!strcmp(a, "--admin") && !strcmp(cmd, "add")) {
            admin = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "mnistd users %s: unknown flag %s (see --help)\n",
                    cmd, a);
            return 2;
        } else if (takes_name && !name) {
            name = a;
        } else {
            fprintf(stderr, "mnistd users %s: unexpected argument %s (see "
                    "--help)\n", cmd, a);
            return 2;
        }
    }
    if (takes_name && !name) {
        fprintf(stderr, "mnistd users %s: a user NAME is needed\n", cmd);
        return 2;
    }
    if (name && !spec_valid_name(name)) {
        fprintf(stderr, "mnistd users %s: user name '%s' must be "
                "[a-z0-9][a-z0-9_-]*, at most 63 characters\n", cmd, name);
        return 2;
    }
    if (name && !strcmp(cmd, "add") && !strcmp(name, "token")) {
        fprintf(stderr, "mnistd users add: user name 'token' is reserved "
                "(it names the shared --token in audit lines and GET /me)\n");
        return 2;
    }

    int rc = 1;
    store *db = NULL;
    store_user *us = NULL;
    size_t n = 0;
    mn_err err = {{0}};
    char token[AUTH_TOKEN_MAX];
    uint8_t hash[STORE_TOKEN_HASH_BYTES];
    token[0] = 0;
    if (store_open(&db, db_path, &err)) goto done;
    int s = 0;
    if (!strcmp(cmd, "add") || !strcmp(cmd, "rotate")) {
        auth_token_new(name, token);
        auth_token_hash(token, hash);
        s = !strcmp(cmd, "add") ? store_user_add(db, name, hash, admin, &err)
                                : store_user_rotate(db, name, hash, &err);
        if (s) goto done;
        printf("%s\n", token);
    } else if (!strcmp(cmd, "revoke")) {
        if ((s = store_user_revoke(db, name, &err))) goto done;
        fprintf(stderr, "mnistd users: %s revoked\n", name);
    } else {
        if ((s = store_user_list(db, &us, &n, &err))) goto done;
        printf("%-24s %-6s %-21s %s\n", "NAME", "ROLE", "CREATED", "REVOKED");
        for (size_t i = 0; i < n; i++) {
            char t1[24], t2[24];
            printf("%-24s %-6s %-21s %s\n", us[i].name,
                   us[i].admin ? "admin" : "user",
                   iso_time(us[i].created_at, t1),
                   iso_time(us[i].revoked_at, t2));
        }
    }
    if (fflush(stdout) == 0) rc = 0;
done:
    if (rc)
        fprintf(stderr, "mnistd users %s: %s\n", cmd,
                err.msg[0] ? err.msg : "cannot write the output");
    sodium_memzero(token, sizeof token);
    free(us);
    store_close(db);
    return rc;
}
