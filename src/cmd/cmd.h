/* The subcommands and what they share: log set-up and running the loop
 * until a signal asks to stop. */
#ifndef TT_CMD_CMD_H
#define TT_CMD_CMD_H

#include <stddef.h>
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

/* As tt_cmd_carrier_cfg for N endpoints at once (the server's several -l,
 * the client's -s and --down): URL_TEXTS[k], given as OPTS[k], into
 * OUT[k], each with the shared options of O->cfg. An option is refused
 * only when none of the N carriers takes it. O->cfg is left as it was.
 * Returns 0, or 2 after printing one error line. */
int tt_cmd_carrier_cfgs(const tt_cmd_spec *spec, const char *const *opts,
                        const char *const *url_texts, size_t n, tt_carrier_opts *o,
                        tt_carrier_cfg *out);

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

/* The options every long-running command shares: logging and running as a
 * service. A command keeps one of these in its config struct as FIELD. */
typedef struct tt_cmd_service {
    const char *log_level;
    int verbose;
    const char *log_file;
    bool syslog;
    bool daemon;
    const char *pid_file;
} tt_cmd_service;

/* The rows of tt_cmd_service for a command's option table (TYPE is its
 * config struct); one definition keeps the commands' options alike. */
// clang-format off
#define TT_CMD_SERVICE_OPTS(type, field)                                                           \
    {0, "log-level", "LEVEL", TT_OPT_STRING, offsetof(type, field.log_level),                     \
     "error, warn, info (default), debug or trace; also LOG_LEVEL in the environment", 0, 0},     \
    {'v', "verbose", NULL, TT_OPT_COUNT, offsetof(type, field.verbose),                           \
     "log more; repeat for more still", 0, 0},                                                     \
    {0, "log-file", "FILE", TT_OPT_STRING, offsetof(type, field.log_file),                        \
     "append the log to FILE instead of stderr; SIGHUP reopens it (for logrotate)", 0, 0},        \
    {0, "syslog", NULL, TT_OPT_FLAG, offsetof(type, field.syslog),                                \
     "log to syslog (facility daemon) instead of stderr", 0, 0},                                   \
    {0, "daemon", NULL, TT_OPT_FLAG, offsetof(type, field.daemon),                                \
     "run in the background: return 0 once listening, or the error and non-zero; logs to "        \
     "syslog unless --log-file", 0, 0},                                                            \
    {0, "pid-file", "FILE", TT_OPT_STRING, offsetof(type, field.pid_file),                        \
     "write the process id to FILE once listening; removed on SIGTERM or SIGINT", 0, 0}
// clang-format on

/* Sets up logging as SVC says (LOG_LEVEL from the environment, then
 * --log-level, then each -v one step more verbose; the sink), refuses a
 * --pid-file that names a running process and, with --daemon, detaches:
 * the calling process waits there for the daemon's tt_cmd_service_ready (or
 * its failure) and exits, never returning. Must run before libuv is used.
 * Returns 0 (in the daemon, or without --daemon) or 2 after one error line
 * on stderr. */
int tt_cmd_service_start(const tt_cmd_spec *spec, tt_cmd_service *svc);

/* Blocks (HOW = SIG_BLOCK) or unblocks (SIG_UNBLOCK) SIGINT, SIGTERM and
 * SIGHUP in the calling thread: blocked from tt_cmd_service_start until
 * tt_cmd_run has its handlers in place. */
void tt_cmd_stop_signals(int how);

/* Called once the listeners (and rules) are in place: writes the pid file
 * and lets a waiting parent exit 0. Returns 0, or 1 after an error line. */
int tt_cmd_service_ready(void);

/* Removes the pid file that tt_cmd_service_ready wrote, if it still names
 * this process. */
void tt_cmd_service_stop(void);

/* Runs LOOP until SIGINT or SIGTERM (SIGHUP reopens the log file); then calls
 * STOP(UD) so the command can close its listeners, removes the pid file and
 * returns. */
void tt_cmd_run(uv_loop_t *loop, void (*stop)(void *ud), void *ud);

/* Runs LOOP until the carriers closed so far have finished closing (a child
 * process reaped); bounded by their own timers. */
void tt_cmd_wait_closes(uv_loop_t *loop);

#endif
