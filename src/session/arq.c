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
#include "session/arqint.h"

/* What the next packet carries from the send buffer: bytes declared lost,
 * new bytes, or (for a probe) the oldest bytes not yet acknowledged. */
enum chunk_kind { CHUNK_RESEND, CHUNK_NEW, CHUNK_OLDEST };

typedef struct chunk {
    uint64_t off, len;
    enum chunk_kind kind;
} chunk;

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
    cfg->min_cwnd = 0;
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
    if (c->min_cwnd < 2 * (uint64_t)c->mss)
        c->min_cwnd = 2 * (uint64_t)c->mss;
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
    if (a->cwnd < a->cfg.min_cwnd)
        a->cwnd = a->cfg.min_cwnd;
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

size_t tt_arq_unsent(const tt_arq *a)
{
    return a->snd_end > a->snd_nxt ? (size_t)(a->snd_end - a->snd_nxt) : 0;
}

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

uint64_t tt_arq_linger_us(const tt_arq *a)
{
    return 3 * tt_arq_pto_period(a);
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
    if (a->aborted || a->peer_reset)
        return 0;
    tt_arq_pkt p;
    int rc = tt_arq_pkt_decode(pkt, len, &p, why);
    if (rc == 0 && p.has_reset) {
        /* The peer's engine is gone: nothing else it says matters. */
        a->st.pkts_recv++;
        a->peer_reset = true;
        a->peer_reset_code = p.reset_code;
        return 0;
    }
    if (rc == 0 && p.has_ack)
        rc = tt_arq_check_ack(a, &p.ack, why);
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
        tt_arq_on_ack(a, now, &p.ack);
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
    return a->rec_n < a->cfg.max_records || tt_arq_rec_at(a, 0)->state != REC_FLIGHT;
}

unsigned tt_arq_wants(tt_arq *a, uint64_t now)
{
    if (a->aborted || a->peer_reset)
        return 0;
    tt_arq_run_timers(a, now);
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
    if (a->aborted || a->peer_reset)
        return UINT64_MAX;
    if (tt_arq_wants(a, now) != 0)
        return now;
    uint64_t t = a->loss_time != 0 ? a->loss_time : tt_arq_pto_deadline(a);
    if (a->rx_any && a->ack_deadline < t)
        t = a->ack_deadline;
    return t < now ? now : t;
}

/* Marks the records in flight that carry bytes of [START, END), which a
 * probe is sending again. */
static void mark_copied(tt_arq *a, uint64_t start, uint64_t end)
{
    for (size_t i = 0; i < a->rec_n; i++) {
        rec *r = tt_arq_rec_at(a, i);
        if (r->state == REC_FLIGHT && r->off < end && r->off + r->len > start)
            r->flags |= REC_COPIED;
    }
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
    if (a->aborted || a->peer_reset)
        return 0;
    tt_arq_run_timers(a, now);
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
    if ((data || ping) && !tt_arq_rec_evict(a, now, probe)) {
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
        rec *r = tt_arq_rec_at(a, a->rec_n++);
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

/* ---- the end at once ---- */

size_t tt_arq_abort(tt_arq *a, uint64_t code, uint8_t *buf, size_t max)
{
    if (!a->aborted) {
        a->aborted = true;
        a->abort_pn = a->next_pn++;
        a->abort_code = code > TT_ARQ_VARINT_MAX ? TT_ARQ_RESET_ABORT : code;
        a->st.pkts_sent++;
    }
    return tt_arq_reset_put(buf, max, a->abort_pn, a->abort_code);
}

bool tt_arq_peer_reset(const tt_arq *a, uint64_t *code)
{
    if (a->peer_reset && code != NULL)
        *code = a->peer_reset_code;
    return a->peer_reset;
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
