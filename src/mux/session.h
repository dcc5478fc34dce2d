/* A mux session: many streams over one lower link (a carrier connection of
 * any kind), speaking the frames of docs/MUX.md. Each stream is itself a
 * tt_link that keeps the link contract, so the stream layer, the relay and
 * the entries use a mux stream exactly like a carrier link: the stream-open
 * header is the first thing written on it.
 *
 * Only the client opens streams (odd ids); the server receives them through
 * on_stream. The session
 * - copies what a stream writes only when it cannot go to the lower link at
 *   once, and counts it in that stream's pending, so the relay's backpressure
 *   works through the mux;
 * - keeps the lower link's queue under a small bound and, when the lower link
 *   drains, serves queued streams round-robin one frame (at most 16 KiB) at a
 *   time, several frames per lower write: a bulk stream never stalls an
 *   interactive one for more than a frame;
 * - returns a stream's credit to the peer as its owner consumes the data (not
 *   when it arrives): a stream whose reading stops holds at most its window;
 * - caps the bytes it holds (queued + stashed + control) per session;
 * - pings when no byte came for a while, and declares the peer dead when no
 *   byte comes for the timeout after a ping;
 * - ends gracefully with go-away: no new streams, the open ones finish, then
 *   the lower link is half-closed and closed.
 *
 * Stream links: writes never fail for lack of room (but fail with
 * UV_ENOBUFS past the session's memory cap); read_stop is effective at once,
 * what arrives meanwhile is stashed (bounded by the window) and delivered
 * from the loop after read_start; shutdown sends a FIN after the queued data;
 * close is asynchronous, its callback runs from the loop and no handler runs
 * after it; a close before both directions ended (or tt_link_abort) resets
 * the stream, so the peer sees a failure; peer() is the lower link's peer.
 * on_error may run while reading is stopped: UV_ECONNRESET (the peer reset
 * the stream, or the session's connection ended under it), UV_ECONNREFUSED
 * (the server refused the stream or is going away), UV_ENOBUFS (memory cap),
 * UV_ETIMEDOUT (the peer stopped answering), UV_EPROTO (the peer broke the
 * protocol), or the lower link's error. A stream that had ended both ways
 * when the session ended gets no error.
 *
 * Lifetime: the owner calls tt_mux_close exactly once (typically from
 * on_end); the memory goes after that, after the lower link's close callback
 * and after every stream's owner closed its stream. */
#ifndef TT_MUX_SESSION_H
#define TT_MUX_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link/link.h"

typedef struct tt_mux_session tt_mux_session;

typedef struct tt_mux_cfg {
    uint32_t stream_window;    /* receive window granted per stream; at least (and 0 means)
                                  TT_MUX_INITIAL_WINDOW, at most TT_MUX_WINDOW_MAX */
    size_t mem_max;            /* cap on the bytes held: queued + stashed + control frames;
                                  0: TT_MUX_MEM_DEFAULT */
    unsigned max_streams;      /* streams open at once; 0: TT_MUX_STREAMS_DEFAULT */
    unsigned ping_interval_ms; /* ping after this long without a received byte; 0: never */
    unsigned ping_timeout_ms;  /* the peer is dead this long after a ping without a byte;
                                  0: the interval */
    unsigned idle_timeout_ms;  /* go away this long after the last stream closed; 0: never */
    unsigned linger_ms;        /* graceful end: wait this long for the peer's close; 0: 5 s */
} tt_mux_cfg;

#define TT_MUX_MEM_DEFAULT (16u * 1024 * 1024)
/* Receive windows tune themselves (docs/MUX.md, flow control) up to this (a
 * gigabit per second over a 30 ms path needs about 4 MB in flight), while
 * all the windows of a session stay within half its memory cap; the other
 * half is for queued bytes. */
#define TT_MUX_WINDOW_AUTO_MAX (4u * 1024 * 1024)
#define TT_MUX_STREAMS_DEFAULT 64

/* Fills CFG with the defaults: window 256 KiB, 16 MiB memory cap, 64
 * streams, ping after 30 s idle with a 15 s timeout, no idle timeout. */
void tt_mux_cfg_default(tt_mux_cfg *cfg);

typedef struct tt_mux_callbacks {
    /* Server: a new stream from the client, owned by the callee, reading
     * stopped. Set its handler before returning (an error may come next);
     * its first bytes are the stream-open header. NULL refuses every stream. */
    void (*on_stream)(void *ud, tt_link *stream);
    /* The session ended and takes no more streams: ERR is 0 after a graceful
     * end (go-away, or the peer closed the connection with no stream left
     * unfinished), else why it died.
     * Runs once, from the loop, never after tt_mux_close. Streams that were
     * cut got on_error before. */
    void (*on_end)(void *ud, int err);
} tt_mux_callbacks;

/* A client session over LOWER, which it owns from now on (LOWER's handler is
 * replaced and reading started). Nothing is written until the first stream
 * writes: the preface travels with the first frame (0-RTT over carriers that
 * send data in their first flight). Returns NULL, after closing LOWER, when
 * out of memory. CFG and CB are copied. */
tt_mux_session *tt_mux_client(tt_link *lower, const tt_mux_cfg *cfg, const tt_mux_callbacks *cb,
                              void *ud);

/* A server session over LOWER (owned from now on). EARLY/EARLY_LEN are bytes
 * already read from LOWER, starting with (part of) the client's preface
 * (tt_mux_is_preface in codec/mux.h decides from the first byte); they are
 * copied and processed from the loop before LOWER is read again. Returns NULL,
 * after closing LOWER, when out of memory. */
tt_mux_session *tt_mux_server(tt_link *lower, const tt_mux_cfg *cfg, const tt_mux_callbacks *cb,
                              void *ud, const uint8_t *early, size_t early_len);

/* Client: a new stream, usable at once (reading stopped; set its handler).
 * Nothing is sent until its first write or shutdown, which carries the open
 * (0-RTT). NULL when the session cannot take one: ended, going away (either
 * side), at max_streams, or out of stream ids. */
tt_link *tt_mux_open(tt_mux_session *s);

/* Whether tt_mux_open would succeed now. */
bool tt_mux_can_open(const tt_mux_session *s);

/* Streams whose owners have not closed them. */
unsigned tt_mux_active(const tt_mux_session *s);

/* Bytes the session holds now (queued, stashed, control), for tests and
 * statistics. */
size_t tt_mux_held(const tt_mux_session *s);

/* Why the session died, one phrase for a log line; NULL while it lives or
 * after a graceful end. */
const char *tt_mux_why(const tt_mux_session *s);

/* Graceful end: tells the peer no new streams will be taken (go-away), lets
 * the open streams finish, then ends (on_end with 0). */
void tt_mux_goaway(tt_mux_session *s);

/* The owner lets go of S. A live session with no open stream ends
 * gracefully; one with open streams is cut (they get on_error with
 * UV_ECANCELED and the lower link is aborted). No session callback runs
 * after this; the memory goes when the last part is closed. */
void tt_mux_close(tt_mux_session *s);

/* Cuts every live session (SIGTERM): open streams get on_error with
 * UV_ECANCELED and the owners on_end with UV_ECANCELED; they still call
 * tt_mux_close. */
void tt_mux_close_all(void);

#endif
