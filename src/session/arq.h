/* A sans-I/O selective-repeat ARQ engine: one reliable, ordered, flow- and
 * congestion-controlled byte stream in each direction over a carrier whose
 * datagrams may be lost, duplicated or reordered (DNS, UDP). Bytes in and
 * out, packets in and out, time passed in: no clock, no socket, no loop.
 * Its loss recovery follows QUIC's (RFC 9002): RTT estimation, a probe
 * timeout with exponential backoff, loss by packet and time thresholds,
 * NewReno congestion control. The packet format is docs/ARQ.md.
 *
 * Use:
 *   - tt_arq_write queues application bytes (it takes what fits: the
 *     caller stops reading its source while it takes less than offered);
 *     tt_arq_close queues the end of the stream (FIN) after them.
 *   - Whenever the carrier may send a datagram, tt_arq_poll fills one of
 *     the size the carrier allows at that moment; call it until it returns
 *     0. tt_arq_wants says whether it would return a packet, for a carrier
 *     that sends only on request (a DNS client deciding whether to query).
 *   - Each datagram received goes to tt_arq_input; tt_arq_read (or peek and
 *     consume) then takes the bytes that are in order.
 *   - Arm one timer at tt_arq_next_timeout; when it fires, poll.
 *
 * Time is in microseconds from any fixed origin, never decreasing between
 * calls. Memory is bounded by the configuration (tt_arq_memory); the data
 * buffers are allocated on demand and released when drained. */
#ifndef TT_SESSION_ARQ_H
#define TT_SESSION_ARQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tt_arq tt_arq;

/* Bytes each side may send before it has heard the peer's window: every
 * engine's receive window is at least this. */
#define TT_ARQ_INITIAL_WINDOW 16384u
/* The smallest packet tt_arq_poll fills; below it, it returns 0. */
#define TT_ARQ_MIN_PACKET 24u

typedef struct tt_arq_cfg {
    /* Most bytes written and not yet acknowledged (the send buffer). */
    size_t snd_cap;
    /* The receive window: most bytes held for the reader, in order or not. */
    size_t rcv_cap;
    /* The usual packet size, the unit of the congestion window (its start
     * is 10 of them, its floor 2). */
    size_t mss;
    /* Most packets awaiting acknowledgment (each costs 40 bytes). */
    size_t max_records;
    /* The RTT assumed before the first sample. */
    uint64_t initial_rtt_us;
    /* How long the receiver may hold an acknowledgment; also what the
     * sender allows for the peer's. */
    uint64_t max_ack_delay_us;
    /* Longest probe timeout the backoff reaches. */
    uint64_t max_pto_us;
    /* The congestion window after a loss, in percent of the window before
     * (50 to 90): 50 is NewReno's halving. A carrier whose losses are
     * mostly not congestion (a lossy resolver path) may choose more. */
    unsigned loss_reduction_pct;
    /* The congestion window's floor in bytes (0, or below 2 mss: 2 mss,
     * RFC 9002's minimum); the window starts at least there. A carrier
     * that bounds its packets in flight itself (the DNS client's query
     * slots) may set that bound: losses, which over such a carrier are
     * mostly not congestion, then never cut the window below what the
     * carrier allows anyway. */
    uint64_t min_cwnd;
} tt_arq_cfg;

/* Defaults: 256 KiB send buffer and window, mss 1200, 4096 records, RTT
 * 333 ms, acknowledgments within 25 ms, probes at most 60 s apart, the
 * window halved at a loss, never below 2 mss. */
void tt_arq_cfg_default(tt_arq_cfg *cfg);

/* A new engine, or NULL when out of memory. Values out of range in CFG are
 * clamped (rcv_cap to at least TT_ARQ_INITIAL_WINDOW, mss to at least
 * TT_ARQ_MIN_PACKET, max_records to at least 16). */
tt_arq *tt_arq_new(const tt_arq_cfg *cfg);
void tt_arq_free(tt_arq *a);

/* Queues up to LEN bytes of DATA for the peer; returns how many it took
 * (0 when the send buffer is full, after tt_arq_close, or out of memory). */
size_t tt_arq_write(tt_arq *a, const uint8_t *data, size_t len);

/* Room left in the send buffer. */
size_t tt_arq_writable(const tt_arq *a);

/* Bytes written and never sent yet (waiting for the window). */
size_t tt_arq_unsent(const tt_arq *a);

/* Ends the outgoing stream after the bytes written so far: the peer reads
 * them all and then an end of stream. Returns 0, or -EALREADY. */
int tt_arq_close(tt_arq *a);

/* Copies up to MAX bytes of in-order data into OUT; returns how many. */
size_t tt_arq_read(tt_arq *a, uint8_t *out, size_t max);

/* In-order bytes ready: sets *P to the first contiguous piece and returns
 * its length (0: none); tt_arq_consume(N) then takes N bytes of it. */
size_t tt_arq_peek(const tt_arq *a, const uint8_t **p);
void tt_arq_consume(tt_arq *a, size_t n);

/* In-order bytes ready in all. */
size_t tt_arq_readable(const tt_arq *a);

/* True once the peer's FIN arrived and every byte before it was read: the
 * stream ended. A stream that stops without this was cut. */
bool tt_arq_eof(const tt_arq *a);

/* True once the peer acknowledged our FIN (every byte and the end). */
bool tt_arq_fin_acked(const tt_arq *a);

/* Both: the exchange is complete. The caller keeps the engine a little
 * longer (tt_arq_linger_us) to acknowledge a FIN the peer resends because
 * our acknowledgment was lost, then frees it. */
bool tt_arq_done(const tt_arq *a);
uint64_t tt_arq_linger_us(const tt_arq *a);

/* Takes one received packet. Returns 0, or -EPROTO with *WHY a static
 * phrase when the packet is malformed or contradicts what this engine sent
 * or was told (acknowledges a packet or bytes never sent, data beyond the
 * window or past the FIN, a second FIN at another offset); a refused
 * packet changes nothing. A well-formed packet with a RESET frame is taken
 * for that alone (tt_arq_peer_reset), its other frames unchecked and
 * ignored. After a reset either way, packets are ignored (0). */
int tt_arq_input(tt_arq *a, uint64_t now, const uint8_t *pkt, size_t len, const char **why);

/* What tt_arq_poll would put in a packet now (0: it would return 0). */
#define TT_ARQ_WANT_ACK 1u   /* an acknowledgment is due */
#define TT_ARQ_WANT_DATA 2u  /* data, a retransmission or the FIN may go */
#define TT_ARQ_WANT_PROBE 4u /* a probe or a PING is due */
unsigned tt_arq_wants(tt_arq *a, uint64_t now);

/* tt_arq_poll flag: a datagram goes out anyway (a DNS answer, a poll
 * query), so add an acknowledgment to it even if none is due yet. Every
 * call with it makes a packet once anything was received, so use it once
 * per datagram, not in a loop until 0. */
#define TT_ARQ_POLL_ACK 1u

/* Fills BUF with one packet of at most MAX bytes, if there is something
 * to send now; returns its length, or 0. Packets are numbered from 0 in
 * the order they are made; the number (tt_arq_packet_pn) is unique in this
 * direction and can be the seal's nonce. */
size_t tt_arq_poll(tt_arq *a, uint64_t now, uint8_t *buf, size_t max, unsigned flags);

/* The time by which tt_arq_poll should be called again (a timer expires:
 * a delayed acknowledgment, loss detection, a probe), NOW if it is due
 * already, UINT64_MAX when no timer runs. A carrier that sends only when
 * asked (a DNS server) needs no timer: the engine catches up on its timers
 * at the next poll. */
uint64_t tt_arq_next_timeout(tt_arq *a, uint64_t now);

/* Asks for a PING in the next packet (a keepalive, or an RTT sample). */
void tt_arq_ping(tt_arq *a);

/* Bytes the peer said it had ready to send beyond what it had sent, in its
 * latest packet (0 if it did not say). A carrier that can only answer
 * (DNS) uses it to decide how many requests to keep outstanding. */
uint64_t tt_arq_peer_backlog(const tt_arq *a);

/* Bytes ready to send now if the carrier gave the chance (retransmissions
 * and new data within the peer's window). */
uint64_t tt_arq_backlog(const tt_arq *a);

/* Ends the exchange at once: fills BUF (MAX bytes, at least
 * TT_ARQ_MIN_PACKET) with a packet carrying a RESET frame with CODE (a
 * tt_arq_reset_code, codec/arqwire.h) and returns its length. From then on
 * the engine sends nothing and takes nothing; a later call returns the same
 * packet (the same number), which the carrier may send more than once, as
 * the peer cannot acknowledge it. */
size_t tt_arq_abort(tt_arq *a, uint64_t code, uint8_t *buf, size_t max);

/* True once the peer sent a RESET (its code in *CODE when CODE is not
 * NULL): the exchange is over, and bytes not yet delivered never come. The
 * engine then sends nothing and takes nothing. */
bool tt_arq_peer_reset(const tt_arq *a, uint64_t *code);

/* Memory the engine holds now: its struct and its buffers. */
size_t tt_arq_memory(const tt_arq *a);

/* The bound tt_arq_memory never exceeds under CFG. */
size_t tt_arq_memory_max(const tt_arq_cfg *cfg);

typedef struct tt_arq_stats {
    uint64_t pkts_sent, pkts_recv, pkts_refused;
    uint64_t bytes_new;     /* stream bytes sent for the first time */
    uint64_t bytes_resent;  /* stream bytes sent again */
    uint64_t bytes_dup;     /* stream bytes received that were held already */
    uint64_t bytes_dropped; /* received out of order and not kept (no slot) */
    uint64_t lost;          /* packets declared lost */
    uint64_t ptos;          /* probe timeouts */
    uint64_t congestion;    /* congestion events (window halved) */
    uint64_t persistent;    /* persistent congestion (window collapsed) */
    uint64_t spurious;      /* losses declared that were reordering */
    uint64_t undone;        /* congestion events undone as spurious */
    uint64_t srtt_us, rttvar_us, min_rtt_us;
    uint64_t cwnd, ssthresh, in_flight;
} tt_arq_stats;

void tt_arq_get_stats(const tt_arq *a, tt_arq_stats *st);

/* Reads the packet number at the head of a packet: sets *PN and *HEAD_LEN
 * (the bytes it takes). Returns 0, or -EPROTO if LEN is too short. A
 * carrier's seal leaves these bytes clear (as associated data) and derives
 * its nonce from *PN. */
int tt_arq_packet_pn(const uint8_t *pkt, size_t len, uint64_t *pn, size_t *head_len);

#endif
