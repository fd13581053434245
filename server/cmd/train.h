/* cmd_train.h: the `mnistd train` command. */
#ifndef MN_CMD_TRAIN_H
#define MN_CMD_TRAIN_H

/* Runs `mnistd train` with argv[0] == "train". Returns the exit code:
 * 0 success, 1 runtime failure (data, training), 2 bad flags. */
int cmd_train(int argc, char **argv);

#endif
