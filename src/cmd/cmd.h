/* The subcommands and what they share: log set-up and running the loop
 * until a signal asks to stop. */
#ifndef TT_CMD_CMD_H
#define TT_CMD_CMD_H

#include <uv.h>

#include "cmd/opts.h"

/* Each returns the process exit status: 0, 1 (runtime failure), 2 (usage). */
int tt_cmd_client(int argc, char **argv);
int tt_cmd_server(int argc, char **argv);

/* Applies LOG_LEVEL from the environment, then --log-level, then -v counts
 * (each -v one step more verbose than the level so far). Returns 0 or 2 after
 * printing an error. */
int tt_cmd_setup_log(const tt_cmd_spec *spec, const char *level, int verbose);

/* Runs LOOP until SIGINT or SIGTERM; then calls STOP(UD) so the command can
 * close its listeners, and returns. */
void tt_cmd_run(uv_loop_t *loop, void (*stop)(void *ud), void *ud);

#endif
