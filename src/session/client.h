/* The client side of resumable sessions (--resume): a carrier that wraps
 * another. Its dial (with no target: the mux pool's) makes a session with a
 * random 128-bit id, dials the inner carrier for a first leg, joins, and
 * yields the session link, over which the pool runs its mux unchanged.
 *
 * When a leg breaks, the session dials the inner carrier again, after a
 * delay drawn with full jitter from an exponential backoff (MIN_MS doubling
 * up to MAX_MS, one log line per attempt), rejoins with the offset it has
 * received, and resends from the offset the server has: the mux and its
 * streams see a pause. A server that no longer knows the session (it
 * lingered too long) answers so, and the session link fails with
 * UV_ECONNRESET, so every stream on it fails (a reset, never an EOF). */
#ifndef TT_SESSION_CLIENT_H
#define TT_SESSION_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "carrier/carrier.h"

typedef struct tt_sess_client_cfg {
    const uint8_t *psk;        /* the 32-byte master key (tt_psk_derive of -k) */
    unsigned reconnect_min_ms; /* first backoff bound; 0: 100 ms */
    unsigned reconnect_max_ms; /* largest backoff bound; 0: 30 s */
    unsigned join_timeout_ms;  /* for the server's answer to a join; 0: 10 s */
    /* Move each session to a new connection when the inner carrier says the
     * current one has lived long enough (its leg_lifetime: tt://'s port
     * slots), joining the new one before leaving the old (--hop-migrate). */
    bool migrate;
} tt_sess_client_cfg;

/* Wraps INNER (owned from now on; closed with the wrapper). With DOWN (also
 * owned) each session is split: its up leg is dialled with INNER and
 * carries the client's bytes, its down leg is dialled with DOWN and carries
 * the server's; each leg breaks and rejoins on its own, with its own
 * backoff. DOWN NULL: one leg carries both directions. CFG is copied.
 * Returns 0 with *OUT, or -ENOMEM / -EIO (INNER and DOWN are then closed). */
int tt_sess_client_new(uv_loop_t *loop, tt_carrier *inner, tt_carrier *down,
                       const tt_sess_client_cfg *cfg, tt_carrier **out);

/* Bytes the client's sessions hold in their buffers now (tests, bench). */
size_t tt_sess_client_held(const tt_carrier *c);

#endif
