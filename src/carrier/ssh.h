/* What the ssh:// carrier offers besides the carrier interface: the ssh
 * command line for a one-shot remote command, as its child would log in. */
#ifndef TT_CARRIER_SSH_H
#define TT_CARRIER_SSH_H

#include "carrier/carrier.h"

/* The command line (NULL-terminated, for execvp) that runs REMOTE (a
 * command for the remote user's shell) on the host of CFG, an ssh:// client
 * configuration, with its --ssh-command, port, user, connect timeout and
 * the child's options (BatchMode among them), stdin from /dev/null. REMOTE
 * must outlive the result, which is one block for free(). Returns NULL when
 * out of memory or --ssh-command is empty. */
char **tt_ssh_exec_argv(const tt_carrier_cfg *cfg, const char *remote);

#endif
