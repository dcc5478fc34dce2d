/* The client's mux pool: streams over as few carrier connections as the
 * per-connection limit allows. A request gets a stream on a session with room
 * if there is one, else joins a dial already under way that still has room,
 * else dials a new carrier connection and opens a session on it. Sessions
 * close themselves after their idle timeout without streams (cfg), and a
 * session that dies is dropped; later requests dial anew.
 *
 * The pool is also a tt_carrier (tt_mux_pool_carrier): its dial op is
 * tt_mux_pool_open, so the stream layer (stream/open.c) runs over it
 * unchanged, writing the stream-open header as the first bytes of each mux
 * stream. */
#ifndef TT_MUX_POOL_H
#define TT_MUX_POOL_H

#include <stdbool.h>
#include <uv.h>

#include "carrier/carrier.h"
#include "mux/session.h"

typedef struct tt_mux_pool tt_mux_pool;
typedef struct tt_mux_pool_req tt_mux_pool_req;

/* A pool over CARRIER, which it owns from now on (closed when the pool is
 * freed). CFG (copied; NULL for the defaults) configures each session, with
 * max_streams replaced by MAX_STREAMS_PER_CONN (1..TT_MUX_STREAMS_DEFAULT, 0:
 * 4). Returns NULL when out of memory (CARRIER is then closed). */
tt_mux_pool *tt_mux_pool_new(uv_loop_t *loop, tt_carrier *carrier, const tt_mux_cfg *cfg,
                             unsigned max_streams_per_conn);

/* Asks for a stream. CB runs exactly once, never inside this call: with 0
 * and a new stream (owned by the callee, reading stopped, nothing sent yet:
 * the open travels with its first write), or with a negative code and NULL
 * (the dial failed, or UV_ECANCELED when the pool closed first). *REQ (may be
 * NULL) is valid until then. Returns 0 or a negative code (the callback will
 * not run). */
int tt_mux_pool_open(tt_mux_pool *p, tt_carrier_dial_cb cb, void *ud, tt_mux_pool_req **req);

/* Abandons a request whose callback has not run; the callback will not run.
 * A dial no other request waits for is cancelled too. */
void tt_mux_pool_cancel(tt_mux_pool_req *req);

/* The pool as a carrier: dial is tt_mux_pool_open, dial_cancel is
 * tt_mux_pool_cancel, describe is the inner carrier's, close is
 * tt_mux_pool_close(p, false). */
tt_carrier *tt_mux_pool_carrier(tt_mux_pool *p);

/* Closes the pool: no new requests; dials under way are cancelled (their
 * requests get UV_ECANCELED). With ABORT every session is cut at once: open
 * streams get on_error(UV_ECANCELED), and requests holding a stream not yet
 * handed over get UV_ECANCELED. Otherwise each session goes away gracefully,
 * its open streams finishing first, and held streams are still handed over.
 * The memory (and the inner carrier) goes when the last dial and session are
 * done, from the loop. */
void tt_mux_pool_close(tt_mux_pool *p, bool abort);

/* Live sessions and dials under way, for tests and statistics. */
unsigned tt_mux_pool_sessions(const tt_mux_pool *p);
unsigned tt_mux_pool_dials(const tt_mux_pool *p);

#endif
