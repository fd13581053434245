/* cmd_serve.h: the `mnistd serve` command. */
#ifndef MN_CMD_SERVE_H
#define MN_CMD_SERVE_H

/* Runs the HTTP service until SIGTERM/SIGINT with argv[0] == "serve".
 * Returns the exit code: 0 after a clean stop, 1 on a start-up failure,
 * 2 on bad flags. */
int cmd_serve(int argc, char **argv);

#endif
