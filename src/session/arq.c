/* The selective-repeat ARQ engine (arq.h). The design and the reasons for it
 * are in docs/ARQ.md; the loss recovery is RFC 9002's, with the stream's
 * byte ranges as what is acknowledged and packet numbers only for ordering
 * and RTT samples (a lost range can then be resent in packets of another
 * size, which a carrier whose room changes per datagram needs). */
#include "session/arq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/arqwire.h"
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

/* What the next packet carries from the send buffer. */
enum chunk_kind { CHUNK_RESEND, CHUNK_NEW, CHUNK_OLDEST };

typedef struct chunk {
    uint64_t off, len;
    enum chunk_kind kind;
} chunk;

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

    tt_arq_stats st;
};

void tt_arq_cfg_default(tt_arq_cfg *cfg)
{
    cfg->snd_cap = 256 * 1024;
    cfg->rcv_cap = 256 * 1024;
    cfg->mss = 1200;
    cfg->max_records = 4096;
    cfg->initial_rtt_us = 333000;
    cfg->max_ack_delay_us = 25000;
    cfg->max_pto_us = 60000000;
    cfg->loss_reduction_pct = 50;
}

static void clamp(tt_arq_cfg *c)
{
    if (c->rcv_cap < TT_ARQ_INITIAL_WINDOW)
        c->rcv_cap = TT_ARQ_INITIAL_WINDOW;
    if (c->snd_cap < 1)
        c->snd_cap = 1;
    if (c->mss < TT_ARQ_MIN_PACKET)
        c->mss = TT_ARQ_MIN_PACKET;
    if (c->mss > PACKET_MAX)
        c->mss = PACKET_MAX;
    if (c->max_records < RECORDS_MIN)
        c->max_records = RECORDS_MIN;
    if (c->initial_rtt_us < GRANULARITY_US)
        c->initial_rtt_us = GRANULARITY_US;
    if (c->max_pto_us < GRANULARITY_US)
        c->max_pto_us = GRANULARITY_US;
    if (c->loss_reduction_pct < 50)
        c->loss_reduction_pct = 50;
    if (c->loss_reduction_pct > 90)
        c->loss_reduction_pct = 90;
}

static uint64_t min_window(const tt_arq *a)
{
    return 2 * (uint64_t)a->cfg.mss;
}

tt_arq *tt_arq_new(const tt_arq_cfg *cfg)
{
    tt_arq *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->cfg = *cfg;
    clamp(&a->cfg);
    a->peer_limit = TT_ARQ_INITIAL_WINDOW;
    uint64_t mss = a->cfg.mss;
    a->cwnd = 10 * mss < 14720 ? 10 * mss : (2 * mss > 14720 ? 2 * mss : 14720);
    a->ssthresh = UINT64_MAX;
    a->reo_packets = PACKET_THRESHOLD;
    a->reo_time_8ths = TIME_THRESHOLD_8THS;
    a->srtt = a->cfg.initial_rtt_us;
    a->rttvar = a->cfg.initial_rtt_us / 2;
    a->ack_deadline = UINT64_MAX;
    a->limit_sent = TT_ARQ_INITIAL_WINDOW;
    return a;
}

void tt_arq_free(tt_arq *a)
{
    if (a == NULL)
        return;
    tt_arq_ring_release(&a->sbuf);
    tt_arq_ring_release(&a->rbuf);
    free(a->recs);
    free(a);
}

/* ---- the application's side ---- */

size_t tt_arq_writable(const tt_arq *a)
{
    if (a->fin_queued)
        return 0;
    return a->cfg.snd_cap - (size_t)(a->snd_end - a->snd_una);
}

size_t tt_arq_write(tt_arq *a, const uint8_t *data, size_t len)
{
    size_t n = tt_arq_writable(a);
    if (len < n)
        n = len;
    if (n == 0)
        return 0;
    size_t held = (size_t)(a->snd_end - a->snd_una);
    if (tt_arq_ring_reserve(&a->sbuf, a->snd_una, held, held + n, a->cfg.snd_cap) < 0)
        return 0;
    tt_arq_ring_put(&a->sbuf, a->snd_end, data, n);
    a->snd_end += n;
    return n;
}

int tt_arq_close(tt_arq *a)
{
    if (a->fin_queued)
        return -EALREADY;
    a->fin_queued = true;
    a->fin_off = a->snd_end;
    return 0;
}

size_t tt_arq_readable(const tt_arq *a)
{
    return (size_t)(a->rcv_cum - a->rcv_read);
}

size_t tt_arq_peek(const tt_arq *a, const uint8_t **p)
{
    return tt_arq_ring_span(&a->rbuf, a->rcv_read, tt_arq_readable(a), p);
}

static uint64_t rcv_limit(const tt_arq *a)
{
    return a->rcv_read + a->cfg.rcv_cap;
}

void tt_arq_consume(tt_arq *a, size_t n)
{
    if (n > tt_arq_readable(a))
        n = tt_arq_readable(a);
    a->rcv_read += n;
    if (a->rcv_read == a->rcv_cum && a->ooo.n == 0)
        tt_arq_ring_release(&a->rbuf);
    /* Tell the sender of the room as soon as a quarter of the window
     * opened, so a sender that filled it does not wait for a probe. A peer
     * that has finished needs no more room. */
    bool finished = a->peer_fin_known && a->rcv_cum == a->peer_fin;
    if (!finished && rcv_limit(a) - a->limit_sent >= a->cfg.rcv_cap / 4)
        a->ack_now = true;
}

size_t tt_arq_read(tt_arq *a, uint8_t *out, size_t max)
{
    size_t n = tt_arq_readable(a);
    if (max < n)
        n = max;
    if (n == 0)
        return 0;
    tt_arq_ring_get(&a->rbuf, a->rcv_read, out, n);
    tt_arq_consume(a, n);
    return n;
}

bool tt_arq_eof(const tt_arq *a)
{
    return a->peer_fin_known && a->rcv_read == a->peer_fin;
}

bool tt_arq_fin_acked(const tt_arq *a)
{
    return a->fin_acked;
}

bool tt_arq_done(const tt_arq *a)
{
    return a->fin_acked && tt_arq_eof(a);
}

static uint64_t pto_period(const tt_arq *a)
{
    uint64_t var = 4 * a->rttvar;
    if (var < GRANULARITY_US)
        var = GRANULARITY_US;
    return a->srtt + var + a->cfg.max_ack_delay_us;
}

uint64_t tt_arq_linger_us(const tt_arq *a)
{
    return 3 * pto_period(a);
}

void tt_arq_ping(tt_arq *a)
{
    a->ping_wanted = true;
}

uint64_t tt_arq_peer_backlog(const tt_arq *a)
{
    return a->peer_backlog;
}

uint64_t tt_arq_backlog(const tt_arq *a)
{
    uint64_t lim = a->snd_end < a->peer_limit ? a->snd_end : a->peer_limit;
    uint64_t n = lim > a->snd_nxt ? lim - a->snd_nxt : 0;
    return n + tt_arq_set_bytes(&a->resend);
}

/* ---- records ---- */

static rec *rec_at(const tt_arq *a, size_t i)
{
    return &a->recs[(a->rec_head + i) % a->rec_cap];
}

/* The record of packet PN, or NULL. Records are in packet-number order. */
static rec *rec_find(const tt_arq *a, uint64_t pn)
{
    size_t lo = 0, hi = a->rec_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        rec *r = rec_at(a, mid);
        if (r->pn == pn)
            return r;
        if (r->pn < pn)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Drops settled records from the head; frees the ring once empty. */
static void rec_pop(tt_arq *a)
{
    while (a->rec_n > 0 && rec_at(a, 0)->state == REC_ACKED) {
        a->rec_head = (a->rec_head + 1) % a->rec_cap;
        a->rec_n--;
    }
    if (a->rec_n == 0 && a->recs != NULL) {
        free(a->recs);
        a->recs = NULL;
        a->rec_cap = a->rec_head = 0;
    }
}

/* Room for one more record, growing the ring up to max_records. */
static bool rec_room(tt_arq *a)
{
    if (a->rec_n < a->rec_cap)
        return true;
    if (a->rec_cap >= a->cfg.max_records)
        return false;
    size_t cap = a->rec_cap ? 2 * a->rec_cap : RECORDS_MIN;
    if (cap > a->cfg.max_records)
        cap = a->cfg.max_records;
    rec *n = malloc(cap * sizeof *n);
    if (n == NULL)
        return false;
    for (size_t i = 0; i < a->rec_n; i++)
        n[i] = *rec_at(a, i);
    free(a->recs);
    a->recs = n;
    a->rec_cap = cap;
    a->rec_head = 0;
    return true;
}

/* ---- loss recovery ---- */

static bool data_covered(const tt_arq *a, const rec *r)
{
    uint64_t end = r->off + r->len;
    if (end <= a->snd_una)
        return true;
    uint64_t start = r->off > a->snd_una ? r->off : a->snd_una;
    return tt_arq_set_covers(&a->sacked, start, end);
}

static void lose(tt_arq *a, rec *r)
{
    r->state = REC_LOST;
    r->lost_pn = a->next_pn;
    a->in_flight -= r->size;
    a->flight_n--;
    a->st.lost++;
    uint64_t end = r->off + r->len;
    if (r->len > 0 && end > a->snd_una) {
        uint64_t start = r->off > a->snd_una ? r->off : a->snd_una;
        (void)tt_arq_set_add(&a->resend, start, end, TT_ARQ_SET_WIDEN);
    }
    if ((r->flags & REC_FIN) && !a->fin_acked)
        a->fin_resend = true;
}

/* A loss of packets sent at or before LARGEST_SENT; PERSISTENT when a run
 * of them spanned the persistent-congestion period (RFC 9002, 7.6). */
static void on_congestion(tt_arq *a, uint64_t now, uint64_t largest_sent, bool persistent,
                          unsigned lost)
{
    if (!a->in_recovery_ever || largest_sent > a->recovery_start) {
        a->undo_cwnd = a->cwnd;
        a->undo_ssthresh = a->ssthresh;
        a->episode_pn = a->next_pn;
        a->episode_spurious = 0;
        a->episode_lost = 0;
        a->in_recovery_ever = true;
        a->recovery_start = now;
        a->ssthresh = a->cwnd * a->cfg.loss_reduction_pct / 100;
        if (a->ssthresh < min_window(a))
            a->ssthresh = min_window(a);
        a->cwnd = a->ssthresh;
        a->ca_acked = 0;
        a->st.congestion++;
    }
    a->episode_lost += lost;
    if (persistent) {
        a->cwnd = min_window(a);
        a->ca_acked = 0;
        a->in_recovery_ever = false;
        a->st.persistent++;
    }
}

/* Declares lost the records in flight sent before the largest
 * acknowledged one by the packet threshold or by the time threshold, and
 * sets loss_time for the earliest one that may yet be (RFC 9002, 6.1).
 * Persistent congestion (RFC 9002, 7.6) is a run of lost records spanning
 * three probe periods, or losses found by the first ACK after SILENCE: two
 * probe timeouts in a row, which with the backoff is three periods in
 * which nothing sent was acknowledged. The second form is needed because a
 * probe resends the oldest bytes, so when its copy is acknowledged the
 * earlier copies look acknowledged too and break the run. */
static void detect_lost(tt_arq *a, uint64_t now, bool silence)
{
    a->loss_time = 0;
    if (!a->any_acked)
        return;
    uint64_t rtt = a->latest_rtt > a->srtt ? a->latest_rtt : a->srtt;
    uint64_t delay = rtt * a->reo_time_8ths / 8;
    if (delay < GRANULARITY_US)
        delay = GRANULARITY_US;
    uint64_t pc_period = pto_period(a) * PERSISTENT_FACTOR;

    bool persistent = false;
    unsigned lost = 0;
    uint64_t largest_lost_sent = 0;
    /* A run of consecutive lost records, for persistent congestion. */
    bool in_run = false, run_new = false;
    uint64_t run_start = 0;
    for (size_t i = 0; i < a->rec_n; i++) {
        rec *r = rec_at(a, i);
        if (r->pn >= a->largest_acked)
            break;
        if (r->state == REC_FLIGHT) {
            if (a->largest_acked >= r->pn + a->reo_packets || r->sent + delay <= now) {
                lose(a, r);
                lost++;
                run_new = true;
                if (r->sent > largest_lost_sent)
                    largest_lost_sent = r->sent;
            } else {
                uint64_t t = r->sent + delay;
                if (a->loss_time == 0 || t < a->loss_time)
                    a->loss_time = t;
                in_run = false;
                run_new = false;
                continue;
            }
        }
        if (r->state == REC_ACKED || !a->rtt_sampled || r->sent < a->first_sample) {
            in_run = false;
            run_new = false;
            continue;
        }
        if (!in_run) {
            in_run = true;
            run_start = r->sent;
        }
        if (run_new && r->sent - run_start > pc_period)
            persistent = true;
    }
    if (lost > 0)
        on_congestion(a, now, largest_lost_sent, persistent || silence, lost);
}

/* Record R, declared lost, was not: its bytes arrived before anything sent
 * after the loss. The thresholds widen, and when every loss of the last
 * congestion event proves spurious, the window it cut comes back
 * (as Linux's undo and RFC 9002's advice on spurious losses do). */
static void spurious(tt_arq *a, const rec *r)
{
    a->st.spurious++;
    a->reo_packets =
        a->reo_packets * 2 > PACKET_THRESHOLD_MAX ? PACKET_THRESHOLD_MAX : a->reo_packets * 2;
    if (a->reo_time_8ths < TIME_THRESHOLD_8THS_MAX)
        a->reo_time_8ths++;
    if (r->lost_pn < a->episode_pn || a->episode_lost == 0)
        return;
    if (++a->episode_spurious < a->episode_lost)
        return;
    if (a->undo_cwnd > a->cwnd)
        a->cwnd = a->undo_cwnd;
    if (a->undo_ssthresh > a->ssthresh)
        a->ssthresh = a->undo_ssthresh;
    a->episode_lost = 0;
    a->st.undone++;
}

static void rtt_sample(tt_arq *a, uint64_t now, uint64_t sent, uint64_t ack_delay)
{
    uint64_t latest = now > sent ? now - sent : 0;
    a->latest_rtt = latest;
    if (!a->rtt_sampled) {
        a->rtt_sampled = true;
        a->first_sample = now;
        a->min_rtt = latest;
        a->srtt = latest;
        a->rttvar = latest / 2;
        return;
    }
    if (latest < a->min_rtt)
        a->min_rtt = latest;
    if (ack_delay > a->cfg.max_ack_delay_us)
        ack_delay = a->cfg.max_ack_delay_us;
    uint64_t adjusted = latest;
    if (latest >= a->min_rtt + ack_delay)
        adjusted = latest - ack_delay;
    uint64_t diff = a->srtt > adjusted ? a->srtt - adjusted : adjusted - a->srtt;
    a->rttvar = (3 * a->rttvar + diff) / 4;
    a->srtt = (7 * a->srtt + adjusted) / 8;
}

/* NewReno's growth for an acknowledged record (RFC 9002, 7.3), only while
 * the window is used: a sender held back by its application (or by a
 * carrier that sends only when asked) would otherwise grow it without
 * limit. */
static void on_acked(tt_arq *a, const rec *r, uint64_t flight_before)
{
    if (a->in_recovery_ever && r->sent <= a->recovery_start)
        return;
    if (2 * flight_before < a->cwnd)
        return;
    if (a->cwnd < a->ssthresh) {
        a->cwnd += r->size;
        return;
    }
    a->ca_acked += r->size;
    if (a->ca_acked >= a->cwnd) {
        a->ca_acked -= a->cwnd;
        a->cwnd += a->cfg.mss;
    }
}

static int check_ack(const tt_arq *a, const tt_arq_ack *k, const char **why)
{
    if (k->largest >= a->next_pn) {
        *why = "ACK of a packet never sent";
        return -EPROTO;
    }
    if (k->cum > a->snd_nxt || (k->n > 0 && k->r[k->n - 1].end > a->snd_nxt)) {
        *why = "ACK of bytes never sent";
        return -EPROTO;
    }
    if (k->fin && (!a->fin_sent || k->cum != a->fin_off)) {
        *why = "ACK of a FIN never sent";
        return -EPROTO;
    }
    return 0;
}

static void on_ack(tt_arq *a, uint64_t now, const tt_arq_ack *k)
{
    bool silence = a->pto_count >= 2 && a->rtt_sampled;
    if (k->limit > a->peer_limit)
        a->peer_limit = k->limit;
    if (k->cum > a->snd_una)
        a->snd_una = k->cum;
    for (unsigned i = 0; i < k->n; i++)
        if (k->r[i].end > a->snd_una)
            (void)tt_arq_set_add(&a->sacked,
                                 k->r[i].start > a->snd_una ? k->r[i].start : a->snd_una,
                                 k->r[i].end, TT_ARQ_SET_DROP_HIGH);
    tt_arq_set_trim(&a->sacked, a->snd_una);
    tt_arq_set_trim(&a->resend, a->snd_una);
    if (k->fin)
        a->fin_acked = true;

    bool new_largest = !a->any_acked || k->largest > a->largest_acked;
    if (new_largest) {
        a->largest_acked = k->largest;
        a->any_acked = true;
        rec *r = rec_find(a, k->largest);
        if (r != NULL && r->state == REC_FLIGHT)
            rtt_sample(a, now, r->sent, k->delay_us);
    }

    uint64_t flight_before = a->in_flight;
    bool newly = false;
    for (size_t i = 0; i < a->rec_n; i++) {
        rec *r = rec_at(a, i);
        if (r->state == REC_LOST) {
            if (data_covered(a, r) && (!(r->flags & REC_FIN) || a->fin_acked)) {
                r->state = REC_ACKED;
                if (a->largest_acked < r->lost_pn && !(r->flags & REC_COPIED))
                    spurious(a, r);
            }
            continue;
        }
        if (r->state != REC_FLIGHT)
            continue;
        bool done;
        if (r->len == 0 && !(r->flags & REC_FIN))
            done = r->pn <= a->largest_acked; /* a PING has done its job */
        else
            done = data_covered(a, r) && (!(r->flags & REC_FIN) || a->fin_acked);
        if (!done)
            continue;
        r->state = REC_ACKED;
        a->in_flight -= r->size;
        a->flight_n--;
        on_acked(a, r, flight_before);
        newly = true;
    }
    if (newly) {
        /* The path works: the backoff restarts, and probes still queued
         * would only repeat what this ACK settled. */
        a->pto_count = 0;
        a->probes = 0;
    }
    detect_lost(a, now, silence);
    rec_pop(a);
    if (a->snd_una == a->snd_end)
        tt_arq_ring_release(&a->sbuf);
}

/* Whether new data waits for the peer's window with nothing in flight to
 * bring an ACK that would open it: the probe timer then sends PINGs. */
static bool window_blocked(const tt_arq *a)
{
    return a->snd_nxt < a->snd_end && a->snd_nxt >= a->peer_limit;
}

static uint64_t pto_deadline(const tt_arq *a)
{
    if (a->flight_n == 0 && !window_blocked(a))
        return UINT64_MAX;
    uint64_t d = pto_period(a);
    for (unsigned i = 0; i < a->pto_count && d < a->cfg.max_pto_us; i++)
        d *= 2;
    if (d > a->cfg.max_pto_us)
        d = a->cfg.max_pto_us;
    return a->last_eliciting + d;
}

static void run_timers(tt_arq *a, uint64_t now)
{
    if (a->loss_time != 0 && a->loss_time <= now) {
        detect_lost(a, now, false);
        rec_pop(a);
        return;
    }
    if (a->loss_time == 0 && pto_deadline(a) <= now) {
        a->pto_count++;
        a->probes = PTO_PROBES;
        a->st.ptos++;
    }
}

/* ---- packets in ---- */

static int check_data(const tt_arq *a, const tt_arq_pkt *p, const char **why)
{
    uint64_t end = p->off + p->len;
    if (end > rcv_limit(a)) {
        *why = "DATA beyond the receive window";
        return -EPROTO;
    }
    if (a->peer_fin_known) {
        if (end > a->peer_fin) {
            *why = "DATA past the FIN";
            return -EPROTO;
        }
        if (p->fin && end != a->peer_fin) {
            *why = "FIN at a second offset";
            return -EPROTO;
        }
    }
    if (p->fin) {
        uint64_t high = a->rcv_cum;
        if (a->ooo.n > 0 && a->ooo.r[a->ooo.n - 1].end > high)
            high = a->ooo.r[a->ooo.n - 1].end;
        if (high > end) {
            *why = "FIN below bytes already received";
            return -EPROTO;
        }
    }
    return 0;
}

static void on_data(tt_arq *a, const tt_arq_pkt *p)
{
    uint64_t end = p->off + p->len;
    if (p->fin) {
        a->peer_fin = end;
        a->peer_fin_known = true;
    }
    uint64_t start = p->off > a->rcv_cum ? p->off : a->rcv_cum;
    a->st.bytes_dup += start - p->off;
    if (end <= start) {
        /* Nothing new: our ACK may have been lost, so send one now. */
        a->ack_now = true;
        return;
    }
    uint64_t high = a->rcv_cum;
    if (a->ooo.n > 0 && a->ooo.r[a->ooo.n - 1].end > high)
        high = a->ooo.r[a->ooo.n - 1].end;
    size_t used = (size_t)(high - a->rcv_read);
    size_t need = (size_t)((end > high ? end : high) - a->rcv_read);
    if (tt_arq_ring_reserve(&a->rbuf, a->rcv_read, used, need, a->cfg.rcv_cap) < 0) {
        a->st.bytes_dropped += end - start;
        return;
    }
    bool in_order = start == a->rcv_cum;
    if (!in_order) {
        if (tt_arq_set_covers(&a->ooo, start, end)) {
            a->st.bytes_dup += end - start;
            a->ack_now = true;
            return;
        }
        if (tt_arq_set_add(&a->ooo, start, end, TT_ARQ_SET_REFUSE) < 0) {
            a->st.bytes_dropped += end - start;
            a->ack_now = true;
            return;
        }
    }
    tt_arq_ring_put(&a->rbuf, start, p->data + (start - p->off), (size_t)(end - start));
    if (in_order) {
        a->rcv_cum = end;
        /* The bytes may reach into (or past) several ranges held. */
        while (a->ooo.n > 0 && a->ooo.r[0].start <= a->rcv_cum) {
            if (a->ooo.r[0].end > a->rcv_cum)
                a->rcv_cum = a->ooo.r[0].end;
            tt_arq_set_trim(&a->ooo, a->rcv_cum);
            /* A hole filled: the sender learns it at once. */
            a->ack_now = true;
        }
    } else {
        a->ack_now = true;
    }
}

int tt_arq_input(tt_arq *a, uint64_t now, const uint8_t *pkt, size_t len, const char **why)
{
    tt_arq_pkt p;
    int rc = tt_arq_pkt_decode(pkt, len, &p, why);
    if (rc == 0 && p.has_ack)
        rc = check_ack(a, &p.ack, why);
    if (rc == 0 && p.has_data)
        rc = check_data(a, &p, why);
    if (rc < 0) {
        a->st.pkts_refused++;
        return rc;
    }
    a->st.pkts_recv++;
    if (!a->rx_any || p.pn > a->rx_largest) {
        a->rx_any = true;
        a->rx_largest = p.pn;
        a->rx_largest_time = now;
    }
    if (!a->backlog_any || p.pn > a->backlog_pn) {
        a->backlog_any = true;
        a->backlog_pn = p.pn;
        a->peer_backlog = p.has_backlog ? p.backlog : 0;
    }
    if (p.has_ack)
        on_ack(a, now, &p.ack);
    if (p.has_data)
        on_data(a, &p);
    if (p.has_data || p.ping) {
        /* Every second packet, or within max_ack_delay (RFC 9000, 13.2). */
        if (++a->unacked >= 2)
            a->ack_now = true;
        else if (a->ack_deadline == UINT64_MAX)
            a->ack_deadline = now + a->cfg.max_ack_delay_us;
    }
    return 0;
}

/* ---- packets out ---- */

static bool ack_due(const tt_arq *a, uint64_t now)
{
    return a->rx_any && (a->ack_now || a->ack_deadline <= now);
}

/* The lowest bytes of the send buffer to send next, if any: resends of
 * lost packets first, then (PROBE) the oldest bytes not yet acknowledged,
 * then new bytes within the peer's window. A chunk may be empty when only
 * the FIN is to go. */
static bool pick(const tt_arq *a, bool probe, chunk *c)
{
    for (unsigned i = 0; i < a->resend.n; i++) {
        const tt_arq_range *r = &a->resend.r[i];
        uint64_t from = r->start > a->snd_una ? r->start : a->snd_una;
        if (from >= r->end)
            continue;
        uint64_t next;
        uint64_t h = tt_arq_set_hole(&a->sacked, from, &next);
        if (h < r->end) {
            *c = (chunk){h, (next < r->end ? next : r->end) - h, CHUNK_RESEND};
            return true;
        }
    }
    if (a->fin_resend && !a->fin_acked) {
        *c = (chunk){a->fin_off, 0, CHUNK_RESEND};
        return true;
    }
    if (probe) {
        uint64_t next;
        uint64_t h = tt_arq_set_hole(&a->sacked, a->snd_una, &next);
        if (h < a->snd_nxt) {
            *c = (chunk){h, (next < a->snd_nxt ? next : a->snd_nxt) - h, CHUNK_OLDEST};
            return true;
        }
        if (a->fin_sent && !a->fin_acked) {
            *c = (chunk){a->fin_off, 0, CHUNK_OLDEST};
            return true;
        }
    }
    uint64_t lim = a->snd_end < a->peer_limit ? a->snd_end : a->peer_limit;
    if (a->snd_nxt < lim) {
        *c = (chunk){a->snd_nxt, lim - a->snd_nxt, CHUNK_NEW};
        return true;
    }
    if (a->fin_queued && !a->fin_sent && a->snd_nxt == a->snd_end) {
        *c = (chunk){a->fin_off, 0, CHUNK_NEW};
        return true;
    }
    return false;
}

/* Whether a packet that asks for an acknowledgment may go: the congestion
 * window has room and a record can be kept (rec_evict). Probes may always
 * go. */
static bool may_send(const tt_arq *a, bool probe)
{
    if (probe)
        return true;
    if (a->in_flight >= a->cwnd)
        return false;
    return a->rec_n < a->cfg.max_records || rec_at(a, 0)->state != REC_FLIGHT;
}

unsigned tt_arq_wants(tt_arq *a, uint64_t now)
{
    run_timers(a, now);
    unsigned w = 0;
    if (ack_due(a, now))
        w |= TT_ARQ_WANT_ACK;
    if (a->probes > 0 || a->ping_wanted)
        w |= TT_ARQ_WANT_PROBE;
    chunk c;
    if (may_send(a, false) && pick(a, false, &c))
        w |= TT_ARQ_WANT_DATA;
    return w;
}

uint64_t tt_arq_next_timeout(tt_arq *a, uint64_t now)
{
    if (tt_arq_wants(a, now) != 0)
        return now;
    uint64_t t = a->loss_time != 0 ? a->loss_time : pto_deadline(a);
    if (a->rx_any && a->ack_deadline < t)
        t = a->ack_deadline;
    return t < now ? now : t;
}

/* Marks the records in flight that carry bytes of [START, END), which a
 * probe is sending again. */
static void mark_copied(tt_arq *a, uint64_t start, uint64_t end)
{
    for (size_t i = 0; i < a->rec_n; i++) {
        rec *r = rec_at(a, i);
        if (r->state == REC_FLIGHT && r->off < end && r->off + r->len > start)
            r->flags |= REC_COPIED;
    }
}

/* Makes room for one more record when all max_records are taken, by
 * forgetting the oldest: a lost one whose bytes wait in the resend set
 * anyway (only the check for a spurious loss is given up), or, for a
 * probe, one still in flight, which is then declared lost. */
static bool rec_evict(tt_arq *a, uint64_t now, bool probe)
{
    if (rec_room(a))
        return true;
    rec *r = rec_at(a, 0);
    if (r->state == REC_FLIGHT) {
        if (!probe)
            return false;
        lose(a, r);
        on_congestion(a, now, r->sent, false, 1);
    }
    r->state = REC_ACKED;
    rec_pop(a);
    return rec_room(a);
}

static void build_ack(const tt_arq *a, uint64_t now, tt_arq_ack *k)
{
    k->largest = a->rx_largest;
    k->delay_us = now > a->rx_largest_time ? now - a->rx_largest_time : 0;
    k->cum = a->rcv_cum;
    k->limit = rcv_limit(a);
    k->fin = a->peer_fin_known && a->rcv_cum == a->peer_fin;
    k->n = a->ooo.n < TT_ARQ_SACK_MAX ? a->ooo.n : TT_ARQ_SACK_MAX;
    memcpy(k->r, a->ooo.r, k->n * sizeof k->r[0]);
}

size_t tt_arq_poll(tt_arq *a, uint64_t now, uint8_t *buf, size_t max, unsigned flags)
{
    run_timers(a, now);
    if (max < TT_ARQ_MIN_PACKET)
        return 0;
    if (max > PACKET_MAX)
        max = PACKET_MAX;

    bool probe = a->probes > 0;
    chunk c;
    bool data = may_send(a, probe) && pick(a, probe, &c);
    bool ping = !data && (probe || a->ping_wanted);
    bool ack = a->rx_any &&
               (ack_due(a, now) || (flags & TT_ARQ_POLL_ACK) || ((data || ping) && a->unacked > 0));
    if (!data && !ping && !ack)
        return 0;
    if ((data || ping) && !rec_evict(a, now, probe)) {
        data = ping = false;
        if (!ack)
            return 0;
    }

    /* A PING may end the packet (a probe or a PING asked for, when the
     * data does not fit): the ACK and BACKLOG leave it its byte. */
    size_t tail = probe || a->ping_wanted ? 1 : 0;
    size_t pos = tt_arq_varint_put(buf, a->next_pn);
    if (ack) {
        tt_arq_ack k;
        build_ack(a, now, &k);
        /* Leave most of a small packet to the data. */
        size_t room = max - tail - pos;
        if (data && room / 3 > 48)
            room = room / 3;
        else if (data && room > 48)
            room = 48;
        size_t n = tt_arq_ack_put(buf + pos, room, &k);
        if (n > 0) {
            pos += n;
            a->unacked = 0;
            a->ack_now = false;
            a->ack_deadline = UINT64_MAX;
            a->limit_sent = k.limit;
        } else {
            ack = false;
        }
    }
    bool fin = false;
    uint64_t len = 0;
    if (data) {
        uint64_t ready = tt_arq_backlog(a);
        size_t reserve = ready > 0 ? 1 + tt_arq_varint_len(ready) : 0;
        size_t head = tt_arq_data_head_len(c.off, c.len);
        if (pos + reserve + head >= max && !(c.len == 0 && pos + reserve + head <= max)) {
            data = false;
        } else {
            len = max - pos - reserve - head;
            if (len > c.len)
                len = c.len;
            uint64_t end = c.off + len;
            if (c.kind == CHUNK_NEW)
                fin = a->fin_queued && end == a->snd_end;
            else
                fin = a->fin_sent && !a->fin_acked && end == a->fin_off;
            uint64_t left = ready > len ? ready - len : 0;
            if (left > 0) {
                buf[pos++] = TT_ARQ_BACKLOG;
                pos += tt_arq_varint_put(buf + pos, left);
            }
            pos += tt_arq_data_head_put(buf + pos, c.off, (size_t)len, fin);
            tt_arq_ring_get(&a->sbuf, c.off, buf + pos, (size_t)len);
            pos += (size_t)len;
            a->ping_wanted = false; /* DATA asks for an acknowledgment too */
            if (c.kind == CHUNK_NEW) {
                a->snd_nxt = end;
                a->st.bytes_new += len;
                if (fin)
                    a->fin_sent = true;
            } else {
                a->st.bytes_resent += len;
                if (c.kind == CHUNK_RESEND)
                    tt_arq_set_trim(&a->resend, end);
                else
                    mark_copied(a, c.off, end);
                if (fin)
                    a->fin_resend = false;
            }
        }
        if (!data && (probe || a->ping_wanted))
            ping = true;
    } else if (ack) {
        /* An acknowledgment alone (a sender held back by its congestion
         * window, or a DNS answer) still says what waits. */
        uint64_t ready = tt_arq_backlog(a);
        if (ready > 0 && pos + 1 + tt_arq_varint_len(ready) + tail <= max) {
            buf[pos++] = TT_ARQ_BACKLOG;
            pos += tt_arq_varint_put(buf + pos, ready);
        }
    }
    if (ping) {
        buf[pos++] = TT_ARQ_PING;
        a->ping_wanted = false;
    }
    if (!data && !ping && !ack)
        return 0;

    if (data || ping) {
        rec *r = rec_at(a, a->rec_n++);
        *r = (rec){.pn = a->next_pn,
                   .sent = now,
                   .off = data ? c.off : 0,
                   .len = (uint32_t)len,
                   .size = (uint16_t)pos,
                   .flags = fin ? REC_FIN : 0,
                   .state = REC_FLIGHT};
        a->in_flight += pos;
        a->flight_n++;
        a->last_eliciting = now;
        if (probe)
            a->probes--;
    }
    a->next_pn++;
    a->st.pkts_sent++;
    return pos;
}

/* ---- accounting ---- */

size_t tt_arq_memory(const tt_arq *a)
{
    return sizeof *a + a->sbuf.size + a->rbuf.size + a->rec_cap * sizeof(rec);
}

size_t tt_arq_memory_max(const tt_arq_cfg *cfg)
{
    tt_arq_cfg c = *cfg;
    clamp(&c);
    return sizeof(tt_arq) + c.snd_cap + c.rcv_cap + c.max_records * sizeof(rec);
}

void tt_arq_get_stats(const tt_arq *a, tt_arq_stats *st)
{
    *st = a->st;
    st->srtt_us = a->srtt;
    st->rttvar_us = a->rttvar;
    st->min_rtt_us = a->min_rtt;
    st->cwnd = a->cwnd;
    st->ssthresh = a->ssthresh;
    st->in_flight = a->in_flight;
}

int tt_arq_packet_pn(const uint8_t *pkt, size_t len, uint64_t *pn, size_t *head_len)
{
    size_t n = tt_arq_varint_get(pkt, len, pn);
    if (n == 0)
        return -EPROTO;
    *head_len = n;
    return 0;
}
