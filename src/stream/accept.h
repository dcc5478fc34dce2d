/* The server side of a stream: read the stream-open header from a carrier
 * link, dial the destination through the exit, answer with the result, and
 * hand both links to the relay. */
#ifndef TT_STREAM_ACCEPT_H
#define TT_STREAM_ACCEPT_H

#include <stdbool.h>

#include "core/target.h"
#include "exit/acl.h"
#include "link/link.h"

typedef struct tt_stream_server_cfg {
    const tt_acl *acl;
    bool has_fixed_dest; /* -d: every stream goes to fixed_dest */
    tt_target fixed_dest;
    unsigned connect_timeout_ms;
    unsigned handshake_timeout_ms; /* for the header to arrive */
    unsigned idle_timeout_ms;
    const struct tt_resolver *resolver; /* --resolver; NULL: the system's */
    /* Where the reserved destination TT_STREAM_NAMESERVER goes (the
     * server's own nameserver, exit/nameserver.h), with its access list;
     * without has_nameserver it is refused. */
    bool has_nameserver;
    tt_target nameserver;
    tt_acl nameserver_acl;
    /* Resumable sessions (src/session/server.h): connections that start with
     * a session JOIN go there. NULL: they are refused. */
    struct tt_sess_server *sessions;
} tt_stream_server_cfg;

/* Takes ownership of LINK, a new stream from a carrier. CFG must outlive
 * every stream (it is the server's configuration). */
void tt_stream_accept(tt_link *link, const tt_stream_server_cfg *cfg);

/* As tt_stream_accept for the session link of a new resumable session: it
 * carries a mux session (or one stream), never another session. The mux
 * over it does not ping: the session layer watches its connections and
 * keeps the session across their loss. */
void tt_stream_accept_session(tt_link *link, const tt_stream_server_cfg *cfg);

#endif
