/* The forward entry (-L LISTEN=DEST): every connection accepted on LISTEN
 * becomes a stream to the fixed destination DEST. */
#ifndef TT_ENTRY_FORWARD_H
#define TT_ENTRY_FORWARD_H

#include "core/addr.h"
#include "core/target.h"
#include "entry/entry.h"
#include "link/tcp.h"

/* One forward's settings; the caller owns it and keeps it alive as long as
 * the listener. */
typedef struct tt_forward {
    const tt_entry_cfg *cfg;
    tt_target dest;
} tt_forward;

/* Carries the accepted connection APP (now owned by the callee) to DEST
 * through CFG's carrier: its first bytes go with the stream's open, then the
 * relay takes over; a failed open resets APP. CFG must outlive the
 * connection; DEST is copied. Other entries whose destination is known at
 * accept time (--redirect) use it too. */
void tt_forward_conn_start(const tt_entry_cfg *cfg, tt_link *app, const tt_target *dest);

/* Listens on HP and forwards every connection to FW->dest. */
int tt_forward_entry_start(uv_loop_t *loop, const tt_hostport *hp, tt_forward *fw,
                           tt_tcp_listener **out, const char **why);

#endif
