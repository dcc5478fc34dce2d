/* The server side of resumable sessions: a table of sessions by id. The
 * stream layer hands over every connection whose first byte after the
 * carrier's handshake starts a JOIN (codec/sess.h); the table checks the join
 * (its MAC under the key from -k, its time stamp, its nonce against the
 * replay memory, the session's join counter), answers JOINED, and then
 * either makes a new session, whose session link it hands to ON_SESSION (the
 * stream layer runs a mux server over it), or attaches the connection to an
 * existing one as its new leg (closing the older leg).
 *
 * A session without a leg lingers for LINGER_MS, then is dropped: its
 * session link fails with UV_ECONNRESET (the mux resets its streams) and a
 * later rejoin is told "unknown session". */
#ifndef TT_SESSION_SERVER_H
#define TT_SESSION_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "link/link.h"

typedef struct tt_sess_server tt_sess_server;

typedef struct tt_sess_server_cfg {
    const uint8_t *psk;            /* the 32-byte master key, or NULL: joins are refused */
    unsigned linger_ms;            /* 0: 60 s */
    unsigned handshake_timeout_ms; /* for the JOIN to arrive; 0: 10 s */
    unsigned window_ms;            /* accepted clock difference of a JOIN; 0: 120 s */
    unsigned max_sessions;         /* 0: 4096 */
    /* A new session: LINK is the session link, owned by the callee. */
    void (*on_session)(void *ud, tt_link *link);
    void *ud;
} tt_sess_server_cfg;

/* Returns the table, or NULL when out of memory or the key cannot be
 * derived. CFG is copied (the key is derived at once). */
tt_sess_server *tt_sess_server_new(uv_loop_t *loop, const tt_sess_server_cfg *cfg);

/* Takes LINK (owned from now on), whose reading is stopped and whose first
 * bytes, EARLY (copied), start a JOIN. */
void tt_sess_server_accept(tt_sess_server *srv, tt_link *link, const uint8_t *early, size_t n);

/* Sessions in the table, and bytes they hold (tests, statistics). */
unsigned tt_sess_server_count(const tt_sess_server *srv);
size_t tt_sess_server_held(const tt_sess_server *srv);

/* Lets go of the table: joins under way are closed; sessions live on until
 * their owners close them (SIGTERM cuts them all through the mux). The
 * memory goes with the last. */
void tt_sess_server_close(tt_sess_server *srv);

#endif
