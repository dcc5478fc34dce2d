/* The subcommands and what they share: log set-up and running the loop
 * until a signal asks to stop. */
#ifndef TT_CMD_CMD_H
#define TT_CMD_CMD_H

#include <uv.h>

#include "core/opts.h"

#include "carrier/carrier.h"

/* Each returns the process exit status: 0, 1 (runtime failure), 2 (usage). */
int tt_cmd_client(int argc, char **argv);
int tt_cmd_server(int argc, char **argv);
int tt_cmd_keygen(int argc, char **argv);

/* The options of every carrier type for one side, parsed together with a
 * command's own: sets[0] is left for the command's table, sets[1..n] are the
 * carrier groups. */
#define TT_CMD_GROUPS_MAX 24
typedef struct tt_carrier_opts {
    bool server;
    tt_carrier_cfg cfg;                                       /* the shared groups store here */
    const tt_carrier_optgroup *groups[TT_CMD_GROUPS_MAX + 1]; /* [i] belongs to sets[i] */
    void *settings[TT_CMD_GROUPS_MAX + 1];                    /* NULL for the shared groups */
    tt_opt_set sets[TT_CMD_GROUPS_MAX + 1];
    size_t n_sets; /* including sets[0] */
} tt_carrier_opts;

/* Prepares O for SERVER's side or the client's: every group of every type
 * on that side, with its defaults. Returns 0 or -ENOMEM. */
int tt_carrier_opts_init(tt_carrier_opts *o, bool server);
void tt_carrier_opts_free(tt_carrier_opts *o);

/* "Carriers:" and a line per type of O's side, for the end of --help. */
const char *tt_carrier_opts_help(const tt_carrier_opts *o);

/* After parsing: reads the endpoint URL_TEXT (given as option OPT;
 * schemeless means tt://), finds its type, refuses options of groups the
 * type does not take, checks the type's groups and completes O->cfg.
 * Returns 0, or 2 after printing one error line. */
int tt_cmd_carrier_cfg(const tt_cmd_spec *spec, const char *opt, const char *url_text,
                       tt_carrier_opts *o);

/* The frame of the client and server commands: parses ARGV with the
 * command's own OPTS (into CFG) and every carrier group of its side, prints
 * --help with the carriers listed, and calls RUN(CFG, carrier options).
 * Returns the exit status (0 after --help). */
int tt_cmd_main(tt_cmd_spec *spec, const tt_opt *opts, size_t n_opts, void *cfg, bool server,
                int argc, char **argv, int (*run)(void *cfg, tt_carrier_opts *co));

/* With --resolver given, makes the resolver on LOOP into *OUT (NULL
 * without one). Returns 0, or 2 after printing an error. */
struct tt_resolver;
int tt_cmd_resolver(const tt_cmd_spec *spec, const tt_carrier_cfg *cfg, uv_loop_t *loop,
                    struct tt_resolver **out);

/* Applies LOG_LEVEL from the environment, then --log-level, then -v counts
 * (each -v one step more verbose than the level so far). Returns 0 or 2 after
 * printing an error. */
int tt_cmd_setup_log(const tt_cmd_spec *spec, const char *level, int verbose);

/* Runs LOOP until SIGINT or SIGTERM; then calls STOP(UD) so the command can
 * close its listeners, and returns. */
void tt_cmd_run(uv_loop_t *loop, void (*stop)(void *ud), void *ud);

/* Runs LOOP until the carriers closed so far have finished closing (a child
 * process reaped); bounded by their own timers. */
void tt_cmd_wait_closes(uv_loop_t *loop);

#endif
