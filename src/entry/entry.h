/* What every entry needs to turn an application connection into a stream:
 * the carrier to the server and the client's timeouts. */
#ifndef TT_ENTRY_ENTRY_H
#define TT_ENTRY_ENTRY_H

#include "carrier/carrier.h"

typedef struct tt_cred {
    char *user;
    char *pass;
} tt_cred;

typedef struct tt_entry_cfg {
    tt_carrier *carrier;
    unsigned handshake_timeout_ms; /* the application's SOCKS negotiation */
    unsigned open_timeout_ms;      /* the server's answer to a stream open */
    unsigned idle_timeout_ms;
    const tt_cred *creds; /* SOCKS5 username/password pairs; none: no auth */
    unsigned n_creds;
    /* SOCKS5: answer CONNECT at once, before the server has connected (as
     * ss-local does), so the application's first bytes travel with the
     * stream's open; a failed open then resets the connection instead of
     * answering with a SOCKS5 error. */
    bool early_reply;
} tt_entry_cfg;

#endif
