/* The sans-I/O core of a resumable session: what one side has sent, what the
 * peer acknowledged, and what it has received. No sockets, no clock: bytes
 * and acknowledgments in, frames out (docs/SESSION.md).
 *
 * Sending. Every byte the session's owner writes gets an offset and is kept
 * in a buffer of chunks until the peer acknowledges it; chunks go as soon as
 * they are acknowledged, so an idle session holds no data buffer. Frames
 * point into the buffer (no copy); at most the in-flight bound is sent
 * beyond the acknowledged offset, the rest waits (the owner sees it as
 * pending and stops writing). After a new leg joins, sending restarts from
 * the offset the peer says it has received: nothing lost, nothing twice.
 *
 * Receiving. DATA below the received offset is a duplicate and dropped;
 * DATA above it would be a gap, which a reliable leg cannot produce (the
 * lossy-leg machinery, src/session/arq.h, will handle it); the rest is
 * delivered in order. Acknowledgments are cumulative: one is due when a
 * quarter of the bound was received since the last, or (the owner's timer)
 * a short delay after the first unacknowledged byte. */
#ifndef TT_SESSION_CORE_H
#define TT_SESSION_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "codec/sess.h"

/* Bytes sent and not yet acknowledged, at most. */
#define TT_SESS_INFLIGHT_MAX (4u * 1024 * 1024)
/* Size of the send buffer's chunks. */
#define TT_SESS_CHUNK (32u * 1024)

typedef struct tt_sess_chunk tt_sess_chunk;

typedef struct tt_sess_core {
    /* Sending (offsets in the owner's byte stream). */
    uint64_t snd_una;           /* read-only: the peer has everything below */
    uint64_t snd_nxt;           /* read-only: next byte to put in a frame */
    uint64_t snd_end;           /* read-only: bytes written so far */
    uint64_t snd_max;           /* read-only: the highest snd_nxt reached (sent once) */
    uint32_t inflight_max;      /* public: the in-flight bound (0: TT_SESS_INFLIGHT_MAX) */
    bool fin_queued;            /* read-only: the owner shut down; FIN at snd_end */
    bool fin_sent;              /* read-only: the FIN frame went out on this leg */
    bool fin_acked;             /* read-only */
    tt_sess_chunk *head, *tail; /* private: chunks, oldest first */
    tt_sess_chunk *cur;         /* private: the chunk that holds snd_nxt */
    size_t held;                /* read-only: bytes of chunk memory */
    /* Receiving. */
    uint64_t rcv_nxt;   /* read-only: bytes received and delivered, plus 1 after a FIN */
    uint64_t rcv_acked; /* read-only: the last cumulative offset acknowledged */
    bool eof;           /* read-only: the peer's FIN arrived */
} tt_sess_core;

void tt_sess_core_init(tt_sess_core *c);
/* Frees the buffer. */
void tt_sess_core_free(tt_sess_core *c);

/* Takes the owner's bytes (copied). Returns 0, -ENOMEM, or -EPIPE after
 * shutdown. */
int tt_sess_core_write(tt_sess_core *c, const uv_buf_t *bufs, unsigned nbufs);

/* The owner shut down: a FIN follows the last byte. */
void tt_sess_core_shutdown(tt_sess_core *c);

/* Bytes written and not yet put in a frame (the session link's pending). */
size_t tt_sess_core_unsent(const tt_sess_core *c);

/* The next frame to send, if any: its header into HDR and its payload (in the
 * buffer, valid until the next call that changes C) into *DATA and *LEN. Returns
 * false when nothing may be sent now (all sent, or the in-flight bound is
 * reached). Advances snd_nxt as if the frame were sent. */
bool tt_sess_core_next(tt_sess_core *c, uint8_t hdr[TT_SESS_HDR_LEN], const uint8_t **data,
                       size_t *len);

/* A cumulative acknowledgment CUM arrived. Frees what it covers. Returns 0,
 * or -EPROTO when CUM acknowledges bytes never sent. A rejoin moves snd_nxt
 * back before the peer says what it has, so CUM may be past snd_nxt (up to
 * snd_max): the peer has those bytes, and sending resumes at CUM. */
int tt_sess_core_ack(tt_sess_core *c, uint64_t cum);

/* A new leg: the peer has received everything below PEER_RCV. Sending
 * restarts there (everything below counts as acknowledged), or at what the
 * peer acknowledged when that is more (an ACK on the old leg that crossed
 * the join). Returns 0, or -EPROTO when PEER_RCV is beyond what was
 * written. */
int tt_sess_core_rejoin(tt_sess_core *c, uint64_t peer_rcv);

/* A DATA piece arrived (an event of tt_sess_read). Sets *SKIP to how many of
 * its first bytes are duplicates (to drop) and *FIN when it completes the
 * peer's stream; advances rcv_nxt over what the caller then delivers. Returns
 * 0, or -EPROTO for a gap (an offset above rcv_nxt) or data after the FIN. */
int tt_sess_core_input(tt_sess_core *c, uint64_t offset, size_t len, bool fin, size_t *skip,
                       bool *eof_now);

/* Whether an acknowledgment is due at once (a quarter of the in-flight bound
 * received since the last), and whether one is owed at all. */
bool tt_sess_core_ack_due(const tt_sess_core *c);
bool tt_sess_core_ack_owed(const tt_sess_core *c);

/* Writes the ACK frame for what was received into OUT; returns its length. */
size_t tt_sess_core_ack_frame(tt_sess_core *c, uint8_t out[TT_SESS_ACK_MAX]);

#endif
