/* A link over a child process: what is written goes to the child's standard
 * input, what the child writes to its standard output comes back, and a
 * half-close is the child's end of input. The child's standard error is
 * handed over line by line. It is how a carrier speaks through a program
 * (ssh -W, a ProxyCommand-like helper).
 *
 * The child's stdin and stdout are one Unix socket (a socketpair), so a
 * shutdown reaches the child as EOF while its answers still flow.
 *
 * Closing the link ends the child: SIGTERM, then SIGKILL if it has not
 * exited 2 s later; the close callback runs once the child has been reaped,
 * so no zombie outlives the link. */
#ifndef TT_LINK_PROC_H
#define TT_LINK_PROC_H

#include <uv.h>

#include "link/link.h"

/* One line the child wrote to its standard error, without its newline
 * (lines longer than 511 bytes arrive in pieces). */
typedef void (*tt_proc_line_cb)(void *ud, const char *line);

/* Called once when the child has exited: its exit status, or the signal
 * that ended it (0 when it exited). */
typedef void (*tt_proc_exit_cb)(void *ud, int64_t status, int signal);

typedef struct tt_proc_opts {
    tt_proc_line_cb on_stderr; /* NULL: log each line at warn level */
    tt_proc_exit_cb on_exit;   /* NULL: nothing */
    void *ud;
} tt_proc_opts;

/* Starts ARGV (NULL-terminated; ARGV[0] is looked up in PATH) and wraps it
 * as a link (reading off until read_start). Returns 0 with *OUT set, or a
 * negative code with *WHY one readable phrase (the program is missing, say).
 * OPTS may be NULL. */
int tt_proc_link_spawn(uv_loop_t *loop, char **argv, const tt_proc_opts *opts, tt_link **out,
                       const char **why);

/* The child's process id, for log lines. */
int tt_proc_link_pid(const tt_link *l);

#endif
