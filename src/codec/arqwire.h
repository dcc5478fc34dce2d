/* The ARQ packet format: sans-I/O encoders and a strict decoder for the
 * packets the selective-repeat engine (src/session/arq.h) exchanges over a
 * lossy datagram carrier. The format is specified in docs/ARQ.md.
 *
 *   packet = PN frame...              PN: the packet number, a varint
 *   PADDING 00
 *   PING    01
 *   ACK     02|FIN LARGEST DELAY CUM LIMIT COUNT (GAP LEN)*COUNT
 *   DATA    04|FIN OFFSET LEN BYTES
 *   BACKLOG 06 BYTES
 *   RESET   08 CODE
 *
 * Every integer is a QUIC-style variable-length integer (RFC 9000, 16): the
 * top two bits of the first byte give the length, 1, 2, 4 or 8 bytes, for
 * values up to 2^62 - 1. */
#ifndef TT_CODEC_ARQWIRE_H
#define TT_CODEC_ARQWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest value a varint holds; also the bound on every stream offset. */
#define TT_ARQ_VARINT_MAX ((UINT64_C(1) << 62) - 1)
/* Most selective-acknowledgment ranges one ACK frame may carry. */
#define TT_ARQ_SACK_MAX 16

enum tt_arq_frame_type {
    TT_ARQ_PADDING = 0x00,
    TT_ARQ_PING = 0x01,
    TT_ARQ_ACK = 0x02,
    TT_ARQ_DATA = 0x04,
    TT_ARQ_BACKLOG = 0x06,
    TT_ARQ_RESET = 0x08,
};

/* The codes of a RESET frame: why the sender ends the exchange at once. A
 * receiver takes any code (one it does not know as ABORT). */
enum tt_arq_reset_code {
    TT_ARQ_RESET_ABORT = 0,   /* the sender's side was aborted, or gave up */
    TT_ARQ_RESET_UNKNOWN = 1, /* the sender knows no such exchange (it restarted, or forgot it) */
};

/* The packet number of a RESET sent by an end that has no engine for the
 * exchange (an "unknown" answer): one no engine reaches, so that sealing
 * it under the exchange's key never reuses a nonce of the engine's; every
 * such packet for one key is the same bytes. */
#define TT_ARQ_RESET_PN TT_ARQ_VARINT_MAX
/* ACK and DATA carry the FIN flag in their type's low bit. */
#define TT_ARQ_FLAG_FIN 0x01

/* Stream bytes [start, end). */
typedef struct tt_arq_range {
    uint64_t start, end;
} tt_arq_range;

/* An ACK frame: the receiver holds every byte below CUM and the bytes of the
 * ranges R (ascending, disjoint, not touching, each above CUM and below
 * LIMIT); it accepts bytes below LIMIT; FIN says the sender's FIN was
 * received at CUM. LARGEST is the highest packet number the receiver has
 * seen, DELAY_US how long it held that packet before this ACK. */
typedef struct tt_arq_ack {
    uint64_t largest, delay_us, cum, limit;
    bool fin;
    unsigned n;
    tt_arq_range r[TT_ARQ_SACK_MAX];
} tt_arq_ack;

/* A decoded packet. DATA points into the decoded buffer. */
typedef struct tt_arq_pkt {
    uint64_t pn;
    bool ping;
    bool has_ack;
    tt_arq_ack ack;
    bool has_data, fin;
    uint64_t off;
    size_t len;
    const uint8_t *data;
    bool has_backlog;
    uint64_t backlog;
    bool has_reset;
    uint64_t reset_code;
} tt_arq_pkt;

/* Bytes the varint encoding of V takes (V at most TT_ARQ_VARINT_MAX). */
size_t tt_arq_varint_len(uint64_t v);

/* Writes V (at most TT_ARQ_VARINT_MAX) at P, which has room for
 * tt_arq_varint_len(V) bytes; returns that length. */
size_t tt_arq_varint_put(uint8_t *p, uint64_t v);

/* Reads a varint from the N bytes at P into *V; returns the bytes used, or
 * 0 when N is too short. */
size_t tt_arq_varint_get(const uint8_t *p, size_t n, uint64_t *v);

/* Writes the ACK frame A into the ROOM bytes at P with as many of A's
 * ranges as fit, lowest first (a frame with fewer ranges is still true).
 * Returns the frame's length, or 0 when not even its head fits. A must be
 * valid as tt_arq_pkt_decode would check it. */
size_t tt_arq_ack_put(uint8_t *p, size_t room, const tt_arq_ack *a);

/* Bytes the head of a DATA frame at OFF with LEN bytes takes. */
size_t tt_arq_data_head_len(uint64_t off, size_t len);

/* Writes the head of a DATA frame (type, OFF, LEN) at P, which has room for
 * tt_arq_data_head_len(OFF, LEN) bytes; the LEN payload bytes follow it.
 * OFF + LEN is at most TT_ARQ_VARINT_MAX. Returns the head's length. */
size_t tt_arq_data_head_put(uint8_t *p, uint64_t off, size_t len, bool fin);

/* Writes the packet PN || RESET(CODE) into the ROOM bytes at P; returns its
 * length, or 0 when it does not fit. PN and CODE are at most
 * TT_ARQ_VARINT_MAX. */
size_t tt_arq_reset_put(uint8_t *p, size_t room, uint64_t pn, uint64_t code);

/* Decodes the N-byte packet at P into OUT, checking every rule of the
 * format: each frame whole, no frame type twice, at least one frame other
 * than PADDING, DATA not empty unless it carries FIN, offsets and ranges
 * within TT_ARQ_VARINT_MAX, ACK ranges ascending and apart, CUM <= LIMIT and
 * every range below LIMIT. Returns 0, or -EPROTO with *WHY a static phrase.
 * Whether the values make sense for a given engine is the engine's check. */
int tt_arq_pkt_decode(const uint8_t *p, size_t n, tt_arq_pkt *out, const char **why);

#endif
