/* The DNS tunnel's client: datagrams up in query names, down in answers,
 * through one or more recursive resolvers (link/dnst.h has the poll model).
 *
 * Every query has a slot until its answer comes or its time runs out; a
 * query is never sent again (a lost one is a lost datagram, which the
 * session layer above resends), so every answer is a clean round-trip
 * sample for its resolver. The time a query may take is its resolver's
 * SRTT plus four deviations (RFC 6298's form, with a floor of RTO_MIN),
 * doubled after a timeout; three timeouts in a row take a resolver out of
 * use for a second, doubling up to 30 s, after which one query probes it.
 * Queries go to the usable resolver with the least (outstanding + 1) x
 * timeout, which spreads them in proportion to how fast each answers.
 *
 * A query whose time ran out gives its place among the max_inflight to a
 * new one at once, but its record stays (LATE) for LATE_MS, so an answer
 * that was only slow is still taken: on a lossy path the timeout can then
 * be short (a lost query holds a place for a few round trips, not for a
 * fixed 300 ms), and a timeout set too short costs one more query, never a
 * datagram. There are four times as many records as places at the start
 * (a burst of timeouts when the resolver stalls must not push out the
 * answers still coming), as many as the fixed 64 there were for the
 * default 16 places, and twice the largest window if that is more (256
 * for the default 128).
 *
 * A query is also given up before its time when REORDER_QUERIES queries of
 * its kind sent after it to the same resolver were answered and it is
 * SRTT + 2 RTTVAR old (RFC 9002's loss detection, for queries): a resolver
 * answers queries with data about in the order they came, and the server
 * answers held polls oldest first, so under steady traffic a lost query
 * gives its place back within about a round trip. This says nothing
 * against the resolver (it answers), so its timeout is not doubled.
 *
 * The window. max_inflight is where the limit on queries in flight
 * starts and its floor; it grows by one for each answer that came back in
 * time while the limit held queries back (up to 32: doubling per round
 * trip), then by one per window/16 such answers (about 16 a round trip),
 * up to max_window, and falls by a quarter,
 * at most once a round trip, when a query times out or an answer is an
 * error (a resolver at its limit answers SERVFAIL or REFUSED). On a long
 * round trip the queries a resolver can take in flight, not its rate, are
 * what bounds the tunnel (bandwidth x delay): docs/DNS.md.
 *
 * The spelling. Data queries are written in base32 until a probe (at the
 * start, and again after a fallback) shows that the path keeps letter
 * case, or case and 8-bit bytes: then in base64 or base128 names, which
 * carry a third or a half more per query. Polls stay base32: they carry
 * nothing. NXDOMAIN for a dense query (the server's answer to a name
 * that fails its check), or DENSE_LOST of them in a row never answered
 * (not even late, within LATE_MS), is a sign that the path changes names
 * after all: back to base32, and a new probe after a delay that doubles
 * each time up to PROBE_MAX_MS.
 *
 * Resolvers that mangle TXT show as answers that do not decode; after
 * BAD_SWITCH of them in a row without a good one the client asks for NULL
 * records instead (unless the type was fixed).
 *
 * Each resolver is reached through its own query transport (link/dnsq.h):
 * UDP, or TCP, TLS or HTTPS for the carrier's variants. A UDP answer with
 * TC is asked again, with the same message, over a TCP transport to the
 * same resolver, opened at the first truncation. Queries lost with a
 * stream transport's connection free their slots at once; they are not
 * timeouts, so the resolver is not backed off for them. */
#include "link/dnst.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/dnstun.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/tlsctx.h"
#include "link/dgq.h"

#define RTO_INITIAL 1500
#define RTO_MIN 50
#define LATE_MS 5000
#define RTO_MAX 5000
#define DOWN_AFTER 3
#define DOWN_FIRST_MS 1000
#define DOWN_MAX_MS 30000
#define POLL_DELAY_FIRST_MS 50
#define BAD_SWITCH 4
#define REORDER_QUERIES 3
#define PROBE_FIRST_MS 2000
#define PROBE_MAX_MS 60000
#define DENSE_LOST 8
/* Past 2 x GROW_DIV, window/GROW_DIV answers in time make it one larger. */
#define GROW_DIV 16

enum { SLOT_FREE, SLOT_LIVE, SLOT_LATE };

typedef struct slot {
    uint8_t state;
    bool poll;
    bool probe;
    uint8_t enc;  /* the spelling of its name */
    bool via_tcp; /* asked again over TCP after a truncated answer */
    uint16_t id;
    unsigned res;
    uint64_t sent, deadline;
    uint64_t seq; /* the order of sending */
    size_t qlen;
    uint8_t q[TT_DNSTUN_QUERY_MAX];
} slot;

typedef struct dnsc dnsc;

typedef struct resolver {
    struct sockaddr_storage addr;
    dnsc *c;
    unsigned index;
    tt_dnsq *q;    /* the transport its queries go by */
    tt_dnsq *tcp;  /* over UDP: TCP for the retries of truncated answers */
    bool answered; /* an answer came through Q */
    bool broken;   /* Q failed its handshake before any answer */
    char why[160]; /* the last failure logged, so that it is logged once */
    unsigned out;  /* queries outstanding */
    bool have_rtt;
    double srtt, rttvar;
    unsigned rto;
    unsigned fails; /* timeouts in a row */
    /* The latest-sent query answered, of each kind (0: data, 1: polls),
     * plus one (0: none yet). */
    uint64_t answered_seq[2];
    uint64_t down_until;
    unsigned down_ms;
} resolver;

struct dnsc {
    tt_dgram base;
    tt_dnsc_cfg cfg;
    tt_dnsq_cfg transport; /* the template: kind, TLS context, name */
    char tls_name[256];
    tt_dnstun_zone zone;
    resolver res[TT_DNSC_RESOLVERS_MAX];
    slot *slots; /* 4 x max_inflight or 2 x max_window records, the more */
    unsigned nslots;
    unsigned inflight, polls_out;
    unsigned window;      /* queries in flight allowed now */
    unsigned grow;        /* answers in time towards the next increase */
    uint64_t cut_until;   /* no second cut of the window before */
    unsigned enc;         /* the spelling of data queries */
    bool probing;         /* a probe is in flight */
    uint64_t probe_at;    /* when to probe (UINT64_MAX: not) */
    unsigned probe_gap;   /* the delay before the next probe after a fallback */
    unsigned dense_fails; /* dense queries lost in a row */
    tt_dgq queue;         /* datagrams waiting for a free slot */
    uv_timer_t timer;
    bool receiving, closing;
    unsigned closes;
    tt_dgram_close_cb close_cb;
    void *close_ud;
    uint32_t nonce;
    uint16_t qtype;
    unsigned bad_streak;
    unsigned level;         /* polls wanted in flight */
    unsigned poll_delay_ms; /* between polls at level 1 */
    uint64_t next_poll;
    uint64_t seq; /* queries sent, for their order */
    tt_dnsc_stats st;
};

static uint64_t now_ms(const dnsc *c)
{
    return uv_now(c->base.loop);
}

/* The resolver for the next query: the usable one with the least
 * (outstanding + 1) x timeout; when all are out of use, the one back
 * soonest, as a probe. */
static unsigned pick_resolver(dnsc *c, uint64_t now)
{
    unsigned best = 0;
    double best_cost = 0;
    bool found = false;
    for (unsigned i = 0; i < c->cfg.nresolvers; i++) {
        resolver *r = &c->res[i];
        if (r->down_until > now)
            continue;
        double cost = (double)(r->out + 1) * r->rto;
        if (!found || cost < best_cost) {
            best = i;
            best_cost = cost;
            found = true;
        }
    }
    if (found)
        return best;
    for (unsigned i = 1; i < c->cfg.nresolvers; i++)
        if (c->res[i].down_until < c->res[best].down_until)
            best = i;
    return best;
}

/* Sends a query carrying D (LEN bytes; NULL for a poll), or the probe.
 * Returns 0 or a negative code (the datagram is then lost, as the network
 * would lose it). */
static int send_query(dnsc *c, const uint8_t *d, size_t len, bool probe)
{
    if (c->inflight >= c->window)
        return UV_ENOBUFS;
    /* A free record, else the oldest late one: its answer is given up. */
    slot *s = NULL;
    for (unsigned i = 0; i < c->nslots; i++) {
        slot *x = &c->slots[i];
        if (x->state == SLOT_FREE) {
            s = x;
            break;
        }
        if (x->state == SLOT_LATE && (s == NULL || x->sent < s->sent))
            s = x;
    }
    if (s == NULL)
        return UV_ENOBUFS;
    s->state = SLOT_FREE;
    uint64_t now = now_ms(c);
    unsigned ri = pick_resolver(c, now);
    resolver *r = &c->res[ri];
    /* Ids are unique among the queries in flight, or an answer could be
     * matched against the wrong one and the right one time out. */
    for (bool taken = true; taken;) {
        tt_random(&s->id, sizeof s->id);
        taken = false;
        for (unsigned i = 0; i < c->nslots && !taken; i++)
            taken = c->slots[i].state != SLOT_FREE && c->slots[i].id == s->id;
    }
    /* A datagram queued before a fallback may not fit base32 any more: it
     * is lost, and the session above resends its bytes in smaller ones. */
    s->enc = (uint8_t)(len > 0 ? c->enc : TT_DNSTUN_ENC_B32);
    if (probe)
        s->qlen = tt_dnstun_probe_encode(&c->zone, s->id, c->qtype, c->nonce++, s->q);
    else
        s->qlen = tt_dnstun_query_encode_enc(&c->zone, s->enc, s->id, c->qtype, c->cfg.client_id,
                                             c->nonce++, d, len, s->q);
    if (s->qlen == 0)
        return UV_EMSGSIZE;
    s->poll = len == 0 && !probe;
    s->probe = probe;
    int rc = tt_dnsq_send(r->q, s->q, s->qlen);
    if (rc != 0)
        return rc;
    s->state = SLOT_LIVE;
    s->via_tcp = false;
    s->res = ri;
    s->sent = now;
    s->seq = c->seq++;
    /* A poll may be held by the server before it is answered. */
    s->deadline = now + r->rto + (s->poll ? c->cfg.hold_ms : 0);
    r->out++;
    c->inflight++;
    c->st.queries++;
    c->st.up_bytes += len;
    if (s->poll) {
        c->polls_out++;
        c->st.polls++;
    }
    /* A probe of a resolver out of use: one at a time. */
    if (r->down_until > now)
        r->down_until = now + r->rto;
    return 0;
}

/* A live query stops counting as in flight (answered, or given up). */
static void slot_unlive(dnsc *c, slot *s)
{
    if (s->state != SLOT_LIVE)
        return;
    c->res[s->res].out--;
    c->inflight--;
    if (s->poll)
        c->polls_out--;
}

/* A live query stops counting as in flight but its answer is still taken
 * for LATE_MS. */
static void slot_late(dnsc *c, slot *s, uint64_t now)
{
    slot_unlive(c, s);
    s->state = SLOT_LATE;
    s->deadline = now + LATE_MS;
}

static void on_timer(uv_timer_t *t);

/* A sign that the path is at its limit (a timeout, an error answer): the
 * window falls by a quarter, once a round trip, never below max_inflight. */
static void window_cut(dnsc *c, uint64_t now)
{
    c->grow = 0;
    if (now < c->cut_until)
        return;
    unsigned w = c->window - c->window / 4;
    c->window = w < c->cfg.max_inflight ? c->cfg.max_inflight : w;
    const resolver *r = &c->res[0];
    c->cut_until = now + (r->have_rtt ? (uint64_t)r->srtt + 1 : 100);
}

/* An answer came in time while the window held queries back. */
static void window_grow(dnsc *c)
{
    if (c->window >= c->cfg.max_window)
        return;
    if (++c->grow >= (c->window <= GROW_DIV ? 1 : c->window / GROW_DIV)) {
        c->grow = 0;
        c->window++;
    }
}

static void probe_later(dnsc *c, uint64_t now)
{
    c->probing = false;
    c->probe_at = now + c->probe_gap;
    c->probe_gap = c->probe_gap * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : c->probe_gap * 2;
}

/* The path changed a dense name (WHY): back to base32, probe again later. */
static void fall_back(dnsc *c, uint64_t now, const char *why)
{
    c->dense_fails = 0;
    if (c->enc == TT_DNSTUN_ENC_B32)
        return;
    tt_warn("dns client: %s: back to base32 query names, probing again in %u ms", why,
            c->probe_gap);
    c->enc = TT_DNSTUN_ENC_B32;
    c->st.fallbacks++;
    if (!c->probing)
        probe_later(c, now);
}

/* The probe's answer (RC, and its datagram in PAYLOAD) sets the spelling. */
static void probe_done(dnsc *c, const slot *s, int rc, const uint8_t *payload, size_t plen,
                       uint64_t now)
{
    size_t off = 0;
    const uint8_t *echo;
    size_t elen;
    if (rc != 0 || tt_dnstun_unpack(payload, plen, &off, &echo, &elen) != 1) {
        probe_later(c, now);
        return;
    }
    c->probing = false;
    c->probe_at = UINT64_MAX;
    unsigned enc = tt_dnstun_probe_result(s->q, s->qlen, echo, elen);
    static const char *const names[] = {"base32", "base64", "base128"};
    tt_info("dns client: the path keeps %s: %s query names, %zu bytes a query",
            enc == TT_DNSTUN_ENC_B128  ? "case and 8-bit bytes"
            : enc == TT_DNSTUN_ENC_B64 ? "letter case"
                                       : "neither case nor 8-bit bytes",
            names[enc], tt_dnstun_query_capacity_enc(&c->zone, enc));
    c->enc = enc;
    c->st.enc = (uint8_t)enc;
}

/* Sends what is queued and the polls wanted, then arms the timer for the
 * next deadline or poll. */
static void pump(dnsc *c)
{
    if (c->closing)
        return;
    uint64_t now = now_ms(c);
    if (c->receiving && !c->probing && now >= c->probe_at && c->inflight < c->window) {
        if (send_query(c, NULL, 0, true) == 0) {
            c->probing = true;
        } else {
            c->probe_at = UINT64_MAX; /* no room for it under this domain */
        }
    }
    while (c->queue.head != NULL && c->inflight < c->window) {
        tt_dgq_item *it = tt_dgq_pop(&c->queue);
        (void)send_query(c, it->data, it->len, false);
        free(it);
    }
    bool poll_wait = false;
    while (c->receiving && c->polls_out < c->level && c->inflight < c->window) {
        if (c->poll_delay_ms > 0 && now < c->next_poll) {
            poll_wait = true;
            break;
        }
        if (send_query(c, NULL, 0, false) != 0)
            break;
        c->next_poll = now + c->poll_delay_ms;
    }
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < c->nslots; i++)
        if (c->slots[i].state == SLOT_LIVE && c->slots[i].deadline < next)
            next = c->slots[i].deadline;
    if (poll_wait && c->next_poll < next)
        next = c->next_poll;
    /* A probe due but held back by a full window goes with the next answer
     * or timeout, which pump again: no timer for it, or it would spin. */
    if (c->receiving && !c->probing && c->probe_at > now && c->probe_at < next)
        next = c->probe_at;
    if (next == UINT64_MAX)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, next > now ? next - now : 0, 0);
}

/* R failed a query (a timeout, or a connection that failed under it):
 * DOWN_AFTER failures in a row take it out of use for a while. */
static void failed(resolver *r, uint64_t now, const char *what)
{
    if (++r->fails < DOWN_AFTER)
        return;
    r->down_ms = r->down_ms == 0                ? DOWN_FIRST_MS
                 : r->down_ms * 2 > DOWN_MAX_MS ? DOWN_MAX_MS
                                                : r->down_ms * 2;
    r->down_until = now + r->down_ms;
    tt_debug("dns client: resolver %u: %u %s in a row, out of use for %u ms", r->index, r->fails,
             what, r->down_ms);
}

static void on_timer(uv_timer_t *t)
{
    dnsc *c = t->data;
    uint64_t now = now_ms(c);
    for (unsigned i = 0; i < c->nslots; i++) {
        slot *s = &c->slots[i];
        if (s->state == SLOT_LATE && s->deadline <= now) {
            /* Given up and never answered, even late: lost. */
            s->state = SLOT_FREE;
            if (s->enc != TT_DNSTUN_ENC_B32 && ++c->dense_fails >= DENSE_LOST)
                fall_back(c, now, "dense queries get no answer");
        }
        if (s->state != SLOT_LIVE || s->deadline > now)
            continue;
        resolver *r = &c->res[s->res];
        c->st.timeouts++;
        window_cut(c, now);
        if (s->probe)
            probe_later(c, now);
        r->rto = r->rto * 2 > RTO_MAX ? RTO_MAX : r->rto * 2;
        failed(r, now, "timeouts");
        slot_late(c, s, now);
    }
    pump(c);
}

/* An answer came from R: it is in use again. */
static void alive(resolver *r)
{
    r->fails = 0;
    r->down_until = 0;
    r->down_ms = 0;
}

/* Takes an answer's round-trip time into its resolver's estimate. Only
 * answers to queries with data count: polls wait at the server. */
static void sample(resolver *r, double rtt)
{
    if (!r->have_rtt) {
        r->srtt = rtt;
        r->rttvar = rtt / 2;
        r->have_rtt = true;
    } else {
        double err = rtt > r->srtt ? rtt - r->srtt : r->srtt - rtt;
        r->rttvar = 0.75 * r->rttvar + 0.25 * err;
        r->srtt = 0.875 * r->srtt + 0.125 * rtt;
    }
    double rto = r->srtt + 4 * r->rttvar;
    r->rto = rto < RTO_MIN ? RTO_MIN : rto > RTO_MAX ? RTO_MAX : (unsigned)rto;
}

/* An answer came to query S: gives up the queries of its kind sent to the
 * same resolver REORDER_QUERIES or more before it, once they are the
 * resolver's SRTT + 2 RTTVAR old (9/8 SRTT, RFC 9002's, gave up too many
 * that resolvers had only reordered). */
static void detect_lost(dnsc *c, const slot *s, uint64_t now)
{
    resolver *r = &c->res[s->res];
    uint64_t *top = &r->answered_seq[s->poll];
    if (s->seq + 1 > *top)
        *top = s->seq + 1;
    if (*top <= REORDER_QUERIES)
        return;
    uint64_t before = *top - 1 - REORDER_QUERIES;
    uint64_t wait = r->have_rtt ? (uint64_t)(r->srtt + 2 * r->rttvar) : 0;
    for (unsigned i = 0; i < c->nslots; i++) {
        slot *x = &c->slots[i];
        if (x->state != SLOT_LIVE || x->poll != s->poll || x->res != s->res || x->seq > before ||
            now < x->sent + wait)
            continue;
        c->st.overtaken++;
        slot_late(c, x, now);
    }
}

static const tt_dnsq_handler answer_handler;

/* Asks the query of S again over TCP to its resolver, after a truncated
 * answer over UDP. Returns 0, or a negative code (the query is then lost). */
static int retry_over_tcp(dnsc *c, slot *s)
{
    resolver *r = &c->res[s->res];
    if (r->tcp == NULL) {
        tt_dnsq_cfg tc = {.kind = TT_DNSQ_TCP, .addr = r->addr};
        const char *why = NULL;
        int rc = tt_dnsq_open(c->base.loop, &tc, &r->tcp, &why);
        if (rc != 0) {
            tt_debug("dns client: no TCP for a truncated answer: %s", why);
            return rc;
        }
        tt_dnsq_set_handler(r->tcp, &answer_handler, r);
    }
    int rc = tt_dnsq_send(r->tcp, s->q, s->qlen);
    if (rc != 0)
        return rc;
    s->via_tcp = true;
    uint64_t now = now_ms(c);
    s->deadline = now + r->rto + (s->poll ? c->cfg.hold_ms : 0);
    return 0;
}

static void on_answer(tt_dnsq *q, void *ud, const uint8_t *data, size_t len)
{
    resolver *r = ud;
    dnsc *c = r->c;
    if (len < 2)
        return;
    uint16_t id = (uint16_t)(data[0] << 8 | data[1]);
    slot *s = NULL;
    for (unsigned i = 0; i < c->nslots; i++)
        if (c->slots[i].state != SLOT_FREE && c->slots[i].id == id && c->slots[i].res == r->index) {
            s = &c->slots[i];
            break;
        }
    if (s == NULL)
        return;
    uint8_t payload[TT_DNSTUN_MSG_MAX];
    size_t plen;
    const char *why = NULL;
    int rc = tt_dnstun_answer_decode(data, len, s->q, s->qlen, payload, &plen, &why);
    if (rc == -EINVAL)
        return; /* not the answer to this query: the real one may still come */
    if (q == r->q) {
        r->answered = true;
        r->broken = false;
    }
    uint64_t now = now_ms(c);
    alive(r);
    bool truncated = rc == -EPROTO && len >= 4 && (data[2] & 0x02) != 0;
    if (truncated && s->state == SLOT_LIVE && !s->via_tcp && q != r->tcp) {
        c->st.truncated++;
        if (retry_over_tcp(c, s) == 0)
            return;
    }
    /* A late answer is a sample too: the timeout was too short. */
    if (!s->poll && !s->via_tcp)
        sample(r, (double)(now - s->sent));
    detect_lost(c, s, now);
    bool was_poll = s->poll;
    bool in_time = s->state == SLOT_LIVE;
    bool limited = c->queue.head != NULL || c->inflight >= c->window;
    if (s->state == SLOT_LATE)
        c->st.late++;
    slot_unlive(c, s);
    s->state = SLOT_FREE;
    /* Any answer, even an empty or late one, shows the name came through. */
    if (s->enc != TT_DNSTUN_ENC_B32)
        c->dense_fails = 0;
    if (s->probe) {
        if (rc != 0)
            c->st.bad++;
        probe_done(c, s, rc, payload, plen, now);
        pump(c);
        return;
    }
    if (rc != 0) {
        c->st.bad++;
        window_cut(c, now);
        /* NXDOMAIN is what the server says to a dense name that fails its
         * check; SERVFAIL or REFUSED is a busy resolver, not a mangled name. */
        if (s->enc != TT_DNSTUN_ENC_B32 && len >= 4 && (data[3] & 0x0F) == 3)
            fall_back(c, now, "a dense query name did not come through intact");
        tt_debug("dns client: an answer refused: %s", why);
        /* Only a NOERROR answer without TC whose record is missing or
         * does not decode says something about the record type; an
         * error RCODE or a truncation does not. */
        bool mangled = len >= 4 && (data[2] & 0x02) == 0 && (data[3] & 0x0F) == 0;
        if (mangled && ++c->bad_streak >= BAD_SWITCH && c->cfg.qtype == 0 &&
            c->qtype == TT_DNSTUN_TYPE_TXT) {
            tt_warn("dns client: %u answers in a row did not decode (%s): asking for NULL "
                    "records instead of TXT",
                    c->bad_streak, why);
            c->qtype = TT_DNSTUN_TYPE_NULL;
            c->bad_streak = 0;
        }
        pump(c);
        return;
    }
    c->bad_streak = 0;
    c->st.answers++;
    if (in_time && limited)
        window_grow(c);
    if (plen == 0) {
        c->st.empty++;
        if (was_poll) {
            if (c->level > 1)
                c->level--;
            else
                c->poll_delay_ms = c->poll_delay_ms == 0 ? POLL_DELAY_FIRST_MS
                                   : c->poll_delay_ms * 2 > c->cfg.idle_poll_ms
                                       ? c->cfg.idle_poll_ms
                                       : c->poll_delay_ms * 2;
        }
        pump(c);
        return;
    }
    /* Data came: the server may have more, so keep it supplied. */
    c->level = c->cfg.max_polls;
    c->poll_delay_ms = 0;
    struct sockaddr_storage peer;
    tt_dnst_addr(c->cfg.client_id, &peer);
    size_t off = 0;
    const uint8_t *dg;
    size_t dlen;
    while (tt_dnstun_unpack(payload, plen, &off, &dg, &dlen) == 1) {
        c->st.down_bytes += dlen;
        if (!c->receiving)
            break;
        c->base.handler->on_datagram(&c->base, c->base.ud, dg, dlen,
                                     (const struct sockaddr *)&peer);
        if (c->closing)
            return;
    }
    pump(c);
}

/* The connection of a stream transport ended with queries on it: their
 * slots are free at once (the session layer resends what it needs). A
 * secure transport that never brought an answer and failed its handshake
 * marks its resolver broken; when all are, the layer fails. */
static void on_lost(tt_dnsq *q, void *ud, int err, const char *why)
{
    resolver *r = ud;
    dnsc *c = r->c;
    bool via_tcp = q == r->tcp;
    for (unsigned i = 0; i < c->nslots; i++) {
        slot *s = &c->slots[i];
        if (s->state != SLOT_FREE && s->res == r->index && s->via_tcp == via_tcp) {
            c->st.lost++;
            slot_unlive(c, s);
            s->state = SLOT_FREE;
        }
    }
    char ip[64] = "";
    unsigned port;
    if (r->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&r->addr;
        uv_ip6_name(a6, ip, sizeof ip);
        port = ntohs(a6->sin6_port);
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&r->addr;
        uv_ip4_name(a4, ip, sizeof ip);
        port = ntohs(a4->sin_port);
    }
    /* WHY is NULL for a resolver's close of a connection that was in use
     * (its idle timeout): normal. Anything else is a failure of the
     * resolver, which keeps it out of use after a few, as timeouts do. */
    if (why != NULL)
        failed(r, now_ms(c), "failed connections");
    if (why != NULL && strcmp(why, r->why) != 0) {
        tt_warn("dns client: resolver %s%s%s:%u over %s: %s",
                r->addr.ss_family == AF_INET6 ? "[" : "", ip,
                r->addr.ss_family == AF_INET6 ? "]" : "", port, q->ops->name, why);
        snprintf(r->why, sizeof r->why, "%s", why);
    }
    if (!via_tcp && !r->answered && err == UV_EPROTO &&
        (c->transport.kind == TT_DNSQ_TLS || c->transport.kind == TT_DNSQ_HTTPS)) {
        r->broken = true;
        unsigned broken = 0;
        for (unsigned i = 0; i < c->cfg.nresolvers; i++)
            broken += c->res[i].broken;
        if (broken == c->cfg.nresolvers) {
            c->base.handler->on_error(&c->base, c->base.ud, UV_EPROTO);
            return;
        }
    }
    pump(c);
}

static const tt_dnsq_handler answer_handler = {.on_answer = on_answer, .on_lost = on_lost};

static int dnsc_send(tt_dgram *d, const uv_buf_t *bufs, unsigned nbufs, const struct sockaddr *to)
{
    (void)to; /* there is one peer: the server */
    dnsc *c = (dnsc *)d;
    if (c->closing)
        return UV_EPIPE;
    size_t total = tt_dgq_len(bufs, nbufs);
    /* An empty datagram could not be told from a poll. */
    if (total == 0 || total > tt_dgram_max_size(d))
        return UV_EMSGSIZE;
    c->poll_delay_ms = 0;
    if (c->queue.head == NULL && c->inflight < c->window) {
        uint8_t flat[TT_DNSTUN_QUERY_PAYLOAD_MAX];
        tt_dgq_gather(flat, bufs, nbufs);
        int rc = send_query(c, flat, total, false);
        pump(c);
        return rc == UV_ENOBUFS ? UV_ENOBUFS : 0;
    }
    int rc = tt_dgq_push(&c->queue, bufs, nbufs, c->cfg.queue_max);
    if (rc != 0)
        c->st.refused++;
    return rc;
}

static int dnsc_recv_start(tt_dgram *d)
{
    dnsc *c = (dnsc *)d;
    if (c->closing)
        return UV_EINVAL;
    c->receiving = true;
    pump(c);
    return 0;
}

static void dnsc_recv_stop(tt_dgram *d)
{
    ((dnsc *)d)->receiving = false;
}

static size_t dnsc_max_size(const tt_dgram *d)
{
    const dnsc *c = (const dnsc *)d;
    return tt_dnstun_query_capacity_enc(&c->zone, c->enc);
}

static void maybe_done(dnsc *c)
{
    if (c->closes > 0)
        return;
    tt_dgram_close_cb cb = c->close_cb;
    void *ud = c->close_ud;
    free(c->slots);
    free(c);
    if (cb)
        cb(ud);
}

static void on_part_closed(void *ud)
{
    dnsc *c = ud;
    c->closes--;
    maybe_done(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}

/* Closes every resolver's transports, counting them in CLOSES when CB is
 * not NULL. */
static void close_transports(dnsc *c, tt_dnsq_close_cb cb)
{
    for (unsigned i = 0; i < c->cfg.nresolvers; i++) {
        tt_dnsq **qs[2] = {&c->res[i].q, &c->res[i].tcp};
        for (unsigned k = 0; k < 2; k++) {
            if (*qs[k] == NULL)
                continue;
            if (cb)
                c->closes++;
            tt_dnsq_close(*qs[k], cb, c);
            *qs[k] = NULL;
        }
    }
}

static void dnsc_close(tt_dgram *d, tt_dgram_close_cb cb, void *ud)
{
    dnsc *c = (dnsc *)d;
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    c->close_ud = ud;
    tt_dgq_clear(&c->queue);
    c->closes = 1;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    close_transports(c, on_part_closed);
    tt_tls_ctx_free(c->transport.tls);
}

static const tt_dgram_ops dnsc_ops = {
    .send = dnsc_send,
    .recv_start = dnsc_recv_start,
    .recv_stop = dnsc_recv_stop,
    .max_size = dnsc_max_size,
    .close = dnsc_close,
};

int tt_dnsc_open(uv_loop_t *loop, const tt_dnsc_cfg *cfg, tt_dgram **out, const char **why)
{
    if (cfg->nresolvers == 0 || cfg->nresolvers > TT_DNSC_RESOLVERS_MAX) {
        *why = "between 1 and 8 resolvers are needed";
        return UV_EINVAL;
    }
    if (cfg->qtype != 0 && cfg->qtype != TT_DNSTUN_TYPE_TXT && cfg->qtype != TT_DNSTUN_TYPE_NULL) {
        *why = "the record type is neither TXT nor NULL";
        return UV_EINVAL;
    }
    dnsc *c = calloc(1, sizeof *c);
    if (c == NULL) {
        *why = "out of memory";
        return UV_ENOMEM;
    }
    c->cfg = *cfg;
    c->cfg.domain = NULL; /* not kept */
    c->cfg.resolvers = NULL;
    if (c->cfg.max_inflight == 0 || c->cfg.max_inflight > TT_DNSC_INFLIGHT_MAX)
        c->cfg.max_inflight = c->cfg.max_inflight == 0 ? 16 : TT_DNSC_INFLIGHT_MAX;
    if (c->cfg.max_window == 0)
        c->cfg.max_window = TT_DNSC_WINDOW_MAX;
    if (c->cfg.max_window < c->cfg.max_inflight)
        c->cfg.max_window = c->cfg.max_inflight;
    if (c->cfg.max_window > TT_DNSC_INFLIGHT_MAX)
        c->cfg.max_window = TT_DNSC_INFLIGHT_MAX;
    c->window = c->cfg.max_inflight;
    c->probe_at = c->cfg.base32_only ? UINT64_MAX : 0;
    c->probe_gap = PROBE_FIRST_MS;
    c->nslots = 4 * c->cfg.max_inflight > 2 * c->cfg.max_window ? 4 * c->cfg.max_inflight
                                                                : 2 * c->cfg.max_window;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    if (c->slots == NULL) {
        free(c);
        *why = "out of memory";
        return UV_ENOMEM;
    }
    if (c->cfg.max_polls == 0)
        c->cfg.max_polls = 8;
    if (c->cfg.max_polls > c->cfg.max_inflight)
        c->cfg.max_polls = c->cfg.max_inflight;
    if (c->cfg.idle_poll_ms == 0)
        c->cfg.idle_poll_ms = 1000;
    if (c->cfg.hold_ms == 0)
        c->cfg.hold_ms = 200;
    if (c->cfg.queue_max == 0)
        c->cfg.queue_max = 64 * 1024;
    while (c->cfg.client_id == 0)
        tt_random(&c->cfg.client_id, sizeof c->cfg.client_id);
    tt_random(&c->nonce, sizeof c->nonce);
    c->qtype = cfg->qtype != 0 ? cfg->qtype : TT_DNSTUN_TYPE_TXT;
    c->level = c->cfg.max_polls;
    int rc = tt_dnstun_zone_init(&c->zone, cfg->domain, NULL, 0, why);
    if (rc != 0)
        goto fail;
    if (cfg->transport != NULL) {
        c->transport = *cfg->transport;
        if (cfg->transport->name != NULL) {
            snprintf(c->tls_name, sizeof c->tls_name, "%s", cfg->transport->name);
            c->transport.name = c->tls_name;
        }
        if (c->transport.tls != NULL)
            tt_tls_ctx_ref(c->transport.tls);
    }
    c->cfg.transport = NULL; /* kept in c->transport */
    for (unsigned i = 0; i < cfg->nresolvers; i++) {
        resolver *r = &c->res[i];
        r->addr = cfg->resolvers[i];
        r->rto = RTO_INITIAL;
        r->c = c;
        r->index = i;
        tt_dnsq_cfg qc = c->transport;
        qc.addr = r->addr;
        rc = tt_dnsq_open(loop, &qc, &r->q, why);
        if (rc != 0)
            goto fail;
        tt_dnsq_set_handler(r->q, &answer_handler, r);
    }
    c->base.ops = &dnsc_ops;
    c->base.loop = loop;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->st.client_id = c->cfg.client_id;
    *out = &c->base;
    return 0;
fail:
    /* The transports close on their own; nothing waits for them. */
    close_transports(c, NULL);
    tt_tls_ctx_free(c->transport.tls);
    free(c->slots);
    free(c);
    return rc;
}

void tt_dnsc_poll(tt_dgram *d, unsigned n)
{
    dnsc *c = (dnsc *)d;
    if (n > c->cfg.max_polls)
        n = c->cfg.max_polls;
    if (n > c->level)
        c->level = n;
    c->poll_delay_ms = 0;
    pump(c);
}

void tt_dnsc_get_stats(const tt_dgram *d, tt_dnsc_stats *st)
{
    const dnsc *c = (const dnsc *)d;
    *st = c->st;
    st->qtype = c->qtype;
    st->enc = (uint8_t)c->enc;
    st->window = c->window;
}
