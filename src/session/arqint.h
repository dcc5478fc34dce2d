/* What the two files of the ARQ engine share: arq.c (the application's
 * side, packets in and out) and arqloss.c (loss recovery). Private to
 * them. */
#ifndef TT_SESSION_ARQINT_H
#define TT_SESSION_ARQINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/arqwire.h"
#include "session/arq.h"
#include "session/arqbuf.h"

/* RFC 9002's constants: timer granularity, the packet and time thresholds
 * of loss detection (3 packets, 9/8 of an RTT), the persistent-congestion
 * factor. The thresholds grow, up to the maxima, each time a loss turns
 * out to have been reordering (RFC 9002, 6.1.1 and 6.1.2 allow it):
 * resolvers and multipath routes reorder far more than 3 packets. */
#define GRANULARITY_US 1000u
#define PACKET_THRESHOLD 3u
#define PACKET_THRESHOLD_MAX 64u
#define TIME_THRESHOLD_8THS 9u
#define TIME_THRESHOLD_8THS_MAX 16u
#define PERSISTENT_FACTOR 3u
#define RECORDS_MIN 16u
/* Probes sent when the probe timer fires. */
#define PTO_PROBES 2u
/* Largest packet recorded (a record keeps the size in 16 bits). */
#define PACKET_MAX 65535u

enum rec_state { REC_FLIGHT, REC_ACKED, REC_LOST };
/* The packet carried the FIN. */
#define REC_FIN 1u
/* A probe sent these bytes again while this packet was in flight, so their
 * acknowledgment does not tell which copy arrived. */
#define REC_COPIED 2u

/* A packet that asked for an acknowledgment (DATA or PING), until it is
 * acknowledged, or declared lost and its bytes acknowledged since (a lost
 * record stays to tell whether the loss was real). A PING alone has len 0
 * and no FIN. LOST_PN is the next packet number when it was declared
 * lost: an acknowledgment of its bytes from a peer that has seen no packet
 * from there on shows the original arrived. */
typedef struct rec {
    uint64_t pn, sent, off, lost_pn;
    uint32_t len;
    uint16_t size;
    uint8_t state, flags;
} rec;

/* An engine: what it sends, what it receives, and its loss recovery. */
struct tt_arq {
    tt_arq_cfg cfg;

    /* Sending: the buffer holds [snd_una, snd_end); snd_nxt is the first
     * byte never sent. */
    tt_arq_ring sbuf;
    uint64_t snd_una, snd_nxt, snd_end;
    uint64_t fin_off;
    bool fin_queued, fin_sent, fin_acked, fin_resend;
    uint64_t peer_limit; /* the peer accepts bytes below this */
    tt_arq_set sacked;   /* bytes above snd_una the peer holds */
    tt_arq_set resend;   /* bytes of packets declared lost */
    rec *recs;           /* ring of records in packet-number order */
    size_t rec_cap, rec_head, rec_n;
    uint64_t next_pn;
    uint64_t largest_acked;
    bool any_acked;
    uint64_t in_flight; /* bytes of records in flight */
    size_t flight_n;    /* records in flight */

    /* Congestion control (NewReno, RFC 9002 section 7). */
    uint64_t cwnd, ssthresh, ca_acked;
    uint64_t recovery_start;
    bool in_recovery_ever;
    /* The window before the last congestion event, restored if every loss
     * of that event proves spurious; the counts of its losses. */
    uint64_t undo_cwnd, undo_ssthresh, episode_pn;
    unsigned episode_lost, episode_spurious;
    unsigned reo_packets, reo_time_8ths;

    /* RTT and timers (RFC 9002 sections 5 and 6). */
    uint64_t srtt, rttvar, min_rtt, latest_rtt, first_sample;
    bool rtt_sampled;
    uint64_t loss_time;      /* 0: none */
    uint64_t last_eliciting; /* when the last DATA or PING went */
    unsigned pto_count, probes;
    bool ping_wanted;

    /* Receiving: the buffer holds [rcv_read, the highest byte received);
     * every byte below rcv_cum arrived, ooo holds those above it. */
    tt_arq_ring rbuf;
    uint64_t rcv_read, rcv_cum;
    uint64_t peer_fin;
    bool peer_fin_known;
    tt_arq_set ooo;
    uint64_t rx_largest, rx_largest_time;
    bool rx_any;
    unsigned unacked;      /* packets asking for an ACK since the last one */
    bool ack_now;          /* an ACK goes in the next packet */
    uint64_t ack_deadline; /* UINT64_MAX: none */
    uint64_t limit_sent;   /* the window last advertised */
    uint64_t backlog_pn, peer_backlog;
    bool backlog_any;

    /* The end at once (RESET): ours, in packet ABORT_PN, or the peer's. */
    bool aborted, peer_reset;
    uint64_t abort_pn, abort_code, peer_reset_code;

    tt_arq_stats st;
};

static inline rec *tt_arq_rec_at(const tt_arq *a, size_t i)
{
    return &a->recs[(a->rec_head + i) % a->rec_cap];
}

/* RFC 9002's probe period: srtt + max(4 rttvar, granularity) +
 * max_ack_delay, before the backoff. */
static inline uint64_t tt_arq_pto_period(const tt_arq *a)
{
    uint64_t var = 4 * a->rttvar;
    if (var < GRANULARITY_US)
        var = GRANULARITY_US;
    return a->srtt + var + a->cfg.max_ack_delay_us;
}

/* Checks an ACK against what was sent: 0, or -EPROTO with *WHY. */
int tt_arq_check_ack(const tt_arq *a, const tt_arq_ack *k, const char **why);

/* Applies a checked ACK received at NOW: windows, acknowledged records,
 * an RTT sample, losses, congestion. */
void tt_arq_on_ack(tt_arq *a, uint64_t now, const tt_arq_ack *k);

/* When the probe timer fires (UINT64_MAX: it does not run). */
uint64_t tt_arq_pto_deadline(const tt_arq *a);

/* Runs the timers due at NOW: loss detection, or the probe timer. */
void tt_arq_run_timers(tt_arq *a, uint64_t now);

/* Makes room for one more record (see arqloss.c); false if there is none
 * for a packet that is not a PROBE. */
bool tt_arq_rec_evict(tt_arq *a, uint64_t now, bool probe);

#endif
