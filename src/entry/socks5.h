/* The SOCKS5 entry: a listener speaking SOCKS5 (RFC 1928, RFC 1929) to
 * applications. Each CONNECT becomes a stream; the reply is sent only once
 * the server has reported the connect result, so the application sees the
 * destination's real outcome (refused, unreachable, timed out ...). */
#ifndef TT_ENTRY_SOCKS5_H
#define TT_ENTRY_SOCKS5_H

#include "core/addr.h"
#include "entry/entry.h"
#include "link/tcp.h"

/* Listens on HP with CFG (which must outlive the listener). On failure sets
 * *WHY and returns a negative code. */
int tt_socks5_entry_start(uv_loop_t *loop, const tt_hostport *hp, const tt_entry_cfg *cfg,
                          tt_tcp_listener **out, const char **why);

#endif
