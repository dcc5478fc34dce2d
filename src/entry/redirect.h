/* The redirect entry (tt client --redirect): connections that nftables
 * redirected to a listener of tt's, each carried to the destination the
 * application meant, which the kernel kept (SO_ORIGINAL_DST). The rules
 * themselves are entry/nftables.h's and codec/nftrules.h's. */
#ifndef TT_ENTRY_REDIRECT_H
#define TT_ENTRY_REDIRECT_H

#include "entry/entry.h"
#include "link/tcp.h"

/* Listens on HOST (an IP literal, port chosen by the kernel) for redirected
 * connections, and carries each through CFG's carrier, which must outlive
 * the listener. A connection that was not redirected (made to the listener
 * itself) is refused: its destination would be tt again. Returns 0 with *OUT
 * set, or a negative libuv code with *WHY a phrase for the user. */
int tt_redirect_entry_start(uv_loop_t *loop, const char *host, const tt_entry_cfg *cfg,
                            tt_tcp_listener **out, const char **why);

#endif
