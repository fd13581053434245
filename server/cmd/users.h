/* users.h: the `mnistd users` command: add, list, revoke and rotate the
 * users of a service on its database (issue 16; server/http/auth.h says
 * what a user may do). */
#ifndef MN_CMD_USERS_H
#define MN_CMD_USERS_H

/* Runs `mnistd users SUBCOMMAND ...` with argv[0] == "users":
 *   add NAME [--admin]   prints the new user's token (once, on stdout)
 *   list                 one line per user: name, role, created, revoked
 *   revoke NAME          the token stops working at the server's next
 *                        request
 *   rotate NAME          prints a new token; the old one stops working
 *                        (a revoked user is reinstated)
 * each with [--db DB] (default MNISTD_DB, else mnistd.db: the server's
 * database, SQLite or PostgreSQL; a running server sees the change at its
 * next request). Returns the exit code: 0 success, 1 failure (the user
 * exists or does not, the database cannot be used: one line on stderr),
 * 2 bad usage (unknown subcommand or flag, a name that breaks the naming
 * rule, the reserved name "token": the shared --token's). */
int cmd_users(int argc, char **argv);

#endif
