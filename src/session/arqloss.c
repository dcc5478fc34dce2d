/* Loss recovery of the ARQ engine (arq.h): the records of packets in
 * flight, acknowledgments, RTT samples, loss detection, the probe timer
 * and NewReno (RFC 9002, with the deviations docs/ARQ.md gives). */
#include <errno.h>
#include <stdlib.h>

#include "session/arqint.h"

static uint64_t min_window(const tt_arq *a)
{
    return a->cfg.min_cwnd;
}

/* ---- records ---- */

/* The record of packet PN, or NULL. Records are in packet-number order. */
static rec *rec_find(const tt_arq *a, uint64_t pn)
{
    size_t lo = 0, hi = a->rec_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        rec *r = tt_arq_rec_at(a, mid);
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
    while (a->rec_n > 0 && tt_arq_rec_at(a, 0)->state == REC_ACKED) {
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
        n[i] = *tt_arq_rec_at(a, i);
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
    uint64_t pc_period = tt_arq_pto_period(a) * PERSISTENT_FACTOR;

    bool persistent = false;
    unsigned lost = 0;
    uint64_t largest_lost_sent = 0;
    /* A run of consecutive lost records, for persistent congestion. */
    bool in_run = false, run_new = false;
    uint64_t run_start = 0;
    for (size_t i = 0; i < a->rec_n; i++) {
        rec *r = tt_arq_rec_at(a, i);
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

int tt_arq_check_ack(const tt_arq *a, const tt_arq_ack *k, const char **why)
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

void tt_arq_on_ack(tt_arq *a, uint64_t now, const tt_arq_ack *k)
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
        rec *r = tt_arq_rec_at(a, i);
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

uint64_t tt_arq_pto_deadline(const tt_arq *a)
{
    if (a->flight_n == 0 && !window_blocked(a))
        return UINT64_MAX;
    uint64_t d = tt_arq_pto_period(a);
    for (unsigned i = 0; i < a->pto_count && d < a->cfg.max_pto_us; i++)
        d *= 2;
    if (d > a->cfg.max_pto_us)
        d = a->cfg.max_pto_us;
    return a->last_eliciting + d;
}

void tt_arq_run_timers(tt_arq *a, uint64_t now)
{
    if (a->loss_time != 0 && a->loss_time <= now) {
        detect_lost(a, now, false);
        rec_pop(a);
        return;
    }
    if (a->loss_time == 0 && tt_arq_pto_deadline(a) <= now) {
        a->pto_count++;
        a->probes = PTO_PROBES;
        a->st.ptos++;
    }
}

/* Makes room for one more record when all max_records are taken, by
 * forgetting the oldest: a lost one whose bytes wait in the resend set
 * anyway (only the check for a spurious loss is given up), or, for a
 * probe, one still in flight, which is then declared lost. */
bool tt_arq_rec_evict(tt_arq *a, uint64_t now, bool probe)
{
    if (rec_room(a))
        return true;
    rec *r = tt_arq_rec_at(a, 0);
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
