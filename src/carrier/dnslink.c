/* One dns:// connection: an ARQ engine between a tt_link and a datagram
 * layer, each packet sealed (dnslink.h has the wire).
 *
 * Everything happens in pump(): bytes written and not yet taken by the
 * engine go in, in-order bytes go to the owner, and the engine's packets go
 * out, until nothing moves; then one timer is armed for the engine's next
 * deadline, the idle limit and the keepalive. Both sides send whenever the
 * engine has a packet, as over UDP: the client's layer turns each into a
 * query, the server's queues it for the next answer to its client (a full
 * queue is a loss, which the engine's congestion control answers).
 *
 * Lifetime: the owner's close starts a linger in which the engine delivers
 * what it still holds and its FIN; the memory goes when that is
 * acknowledged, the linger ends, the peer is silent too long, or the
 * server's layer goes. The owner's close callback runs then. A close from
 * inside a handler frees nothing until the loop runs the timer's close.
 *
 * An end that is not the FIN exchange (the owner aborts, the peer is silent
 * too long, the linger ends first) sends the peer a RESET, so that it
 * learns at once instead of by its own timeout; a RESET from the peer
 * fails the link with UV_ECONNRESET. The server answers a packet of a
 * connection it does not know with a RESET of its own (tt_dnslink_refuse). */
#include "carrier/dnslink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/arqwire.h"
#include "core/crypto.h"
#include "core/log.h"
#include "link/dnst.h"
#include "session/arq.h"

#define PKT_MAX 1500
/* Polls the client asks the server to hold while it says it has data. */
#define POLLS_MAX 8
/* A client's RESET goes in this many queries (a lost one would leave the
 * server waiting for its idle timeout), and its link stays this long for
 * its layer to find free query slots for them. The server's goes once:
 * every later packet of the client's gets the "unknown" answer. */
#define RESET_COPIES 3
#define RESET_LINGER_US 500000

struct tt_dnslink {
    tt_link base;
    tt_dnslink_cfg cfg;
    tt_arq *arq;
    tt_aead seal, open;
    bool keyed;
    uv_timer_t timer;
    struct sockaddr_storage peer; /* the server's: the client's pseudo-address */
    size_t down_room;             /* client: the payload an answer brings, for polls */
    /* Written and not yet taken by the engine (its send buffer was full). */
    uint8_t *ovf;
    size_t ovf_off, ovf_len, ovf_cap;
    uint64_t last_rx_us, last_tx_us, linger_end_us;
    bool reading, eof_told, shut, fin_queued;
    bool closed;   /* the owner closed: no handler runs any more */
    bool failed;   /* an error was reported to the owner */
    bool freeing;  /* the timer is closing; memory goes after */
    bool detached; /* server: the datagram layer is gone */
    bool orphaned; /* client: the carrier is gone; a close does not linger */
    bool in_pump, pump_again;
    bool in_write;     /* inside the owner's write: no owner callback */
    bool drain_wanted; /* the owner saw bytes pending: tell it when none are */
    bool stats_logged;
    bool reset_sent; /* the engine is aborted; the link goes at reset_end_us */
    uint64_t reset_end_us;
    /* Server: a new connection on trial sends nothing, not even an ACK: if
     * it is refused, bytes it acknowledged would never be resent to the
     * connection that replaces it. */
    bool quiet;
    tt_link_close_cb close_cb;
    void *close_ud;
};

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

static void pump(tt_dnslink *l);
static void destroy(tt_dnslink *l);
static void on_timer(uv_timer_t *t);
static void finish(tt_dnslink *l);

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The key of one direction: HKDF of the master key, with the client id and
 * the connection's salt, so that no two connections share a key. */
static int derive(const tt_dnslink_cfg *cfg, const char *dir, uint8_t key[TT_AEAD_KEY_LEN])
{
    uint8_t info[2 + 4 + TT_DNSLINK_SALT_LEN];
    memcpy(info, dir, 2);
    put32(info + 2, cfg->client_id);
    memcpy(info + 6, cfg->salt, TT_DNSLINK_SALT_LEN);
    static const uint8_t salt[] = "tt-dns-v1";
    return tt_hkdf(cfg->psk, 32, salt, sizeof salt - 1, info, sizeof info, key, TT_AEAD_KEY_LEN);
}

static size_t up_overhead(void)
{
    return TT_DNSLINK_SALT_LEN + TT_AEAD_TAG_LEN;
}

/* The associated data of a packet: the client id and salt going up (so a
 * packet cannot be moved to another connection's name), the PN always. */
static size_t make_ad(const tt_dnslink *l, bool up, const uint8_t *pn, size_t pn_len, uint8_t *ad)
{
    size_t n = 0;
    if (up) {
        put32(ad, l->cfg.client_id);
        memcpy(ad + 4, l->cfg.salt, TT_DNSLINK_SALT_LEN);
        n = 4 + TT_DNSLINK_SALT_LEN;
    }
    memcpy(ad + n, pn, pn_len);
    return n + pn_len;
}

/* The room for one engine packet in one datagram. */
static size_t packet_room(const tt_dnslink *l)
{
    if (l->cfg.dg == NULL)
        return 0;
    size_t max = tt_dgram_max_size(l->cfg.dg);
    size_t over = l->cfg.server ? TT_AEAD_TAG_LEN : up_overhead();
    if (max > PKT_MAX)
        max = PKT_MAX;
    return max > over + TT_ARQ_MIN_PACKET ? max - over : 0;
}

static void send_packet(tt_dnslink *l, const uint8_t *pkt, size_t n)
{
    uint64_t pn;
    size_t hl;
    if (tt_arq_packet_pn(pkt, n, &pn, &hl) != 0)
        return;
    uint8_t out[PKT_MAX + 64], ad[32];
    size_t off = 0;
    bool up = !l->cfg.server;
    if (up) {
        memcpy(out, l->cfg.salt, TT_DNSLINK_SALT_LEN);
        off = TT_DNSLINK_SALT_LEN;
    }
    memcpy(out + off, pkt, hl);
    size_t ad_len = make_ad(l, up, pkt, hl, ad);
    tt_aead_set_counter(&l->seal, pn);
    if (tt_aead_seal_ad(&l->seal, ad, ad_len, pkt + hl, n - hl, 0, out + off + hl) != 0)
        return;
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)(off + n + TT_AEAD_TAG_LEN));
    /* A refusal (a full queue) is a lost datagram: the engine resends. */
    int rc = tt_dgram_send(l->cfg.dg, &b, 1, l->cfg.server ? (struct sockaddr *)&l->peer : NULL);
    if (rc != 0 && rc != UV_ENOBUFS)
        tt_debug("dns c%llu: send: %s", (unsigned long long)l->base.id, uv_strerror(rc));
    l->last_tx_us = now_us();
}

static void send_all(tt_dnslink *l, uint64_t now, unsigned flags)
{
    size_t room = packet_room(l);
    if (room == 0 || l->quiet)
        return;
    uint8_t pkt[PKT_MAX];
    for (;;) {
        size_t n = tt_arq_poll(l->arq, now, pkt, room, flags);
        if (n == 0)
            break;
        send_packet(l, pkt, n);
        flags = 0;
    }
}

/* Moves written bytes into the engine; queues the FIN once all are in. */
static void feed(tt_dnslink *l)
{
    size_t left = l->ovf_len - l->ovf_off;
    if (left > 0) {
        l->ovf_off += tt_arq_write(l->arq, l->ovf + l->ovf_off, left);
        if (l->ovf_off == l->ovf_len) {
            l->ovf_off = l->ovf_len = 0;
            /* Nothing queued: give the buffer back (bounded memory). */
            free(l->ovf);
            l->ovf = NULL;
            l->ovf_cap = 0;
        }
    }
    if (l->shut && !l->fin_queued && l->ovf_len == l->ovf_off) {
        tt_arq_close(l->arq);
        l->fin_queued = true;
    }
}

static void deliver(tt_dnslink *l)
{
    while (l->reading && !l->closed) {
        const uint8_t *p;
        size_t n = tt_arq_peek(l->arq, &p);
        if (n == 0)
            break;
        /* The engine keeps the bytes until consumed; consume first so that
         * a write from inside the handler sees the window open. */
        uint8_t tmp[16384];
        if (n > sizeof tmp)
            n = sizeof tmp;
        memcpy(tmp, p, n);
        tt_arq_consume(l->arq, n);
        l->base.handler->on_data(&l->base, l->base.ud, tmp, n);
    }
    if (l->reading && !l->closed && !l->eof_told && tt_arq_eof(l->arq)) {
        l->eof_told = true;
        l->base.handler->on_eof(&l->base, l->base.ud);
    }
}

static void fail(tt_dnslink *l, int err)
{
    if (l->closed) {
        finish(l);
        return;
    }
    if (l->failed)
        return;
    l->failed = true;
    l->reading = false;
    l->base.handler->on_error(&l->base, l->base.ud, err);
}

/* Tells the peer that this end is gone (a RESET), unless the exchange ended
 * cleanly, the peer reset it, or nothing can be sent. */
static void send_reset(tt_dnslink *l)
{
    if (l->reset_sent || l->cfg.dg == NULL || l->quiet || l->orphaned ||
        tt_arq_peer_reset(l->arq, NULL) || tt_arq_done(l->arq))
        return;
    uint8_t pkt[64];
    size_t n = tt_arq_abort(l->arq, TT_ARQ_RESET_ABORT, pkt, sizeof pkt);
    if (n == 0)
        return;
    l->reset_sent = true;
    unsigned copies = l->cfg.server ? 1 : RESET_COPIES;
    for (unsigned i = 0; i < copies; i++)
        send_packet(l, pkt, n);
    l->reset_end_us = now_us() + (l->cfg.server ? 0 : RESET_LINGER_US);
}

/* The link goes: at once, or when its RESET had the time to leave. */
static void finish(tt_dnslink *l)
{
    uint64_t now = now_us();
    if (l->reset_sent && now < l->reset_end_us && !l->freeing) {
        uv_timer_start(&l->timer, on_timer, (l->reset_end_us - now + 999) / 1000, 0);
        return;
    }
    destroy(l);
}

static void on_timer(uv_timer_t *t)
{
    tt_dnslink *l = t->data;
    uint64_t now = now_us();
    if (l->reset_sent) {
        /* Only finish() arms the timer once the RESET went. */
        if (l->closed)
            destroy(l);
        return;
    }
    if (l->detached) {
        fail(l, UV_ECONNABORTED);
        return;
    }
    if (l->failed)
        return;
    if (l->cfg.idle_ms && now >= l->last_rx_us + (uint64_t)l->cfg.idle_ms * 1000) {
        tt_debug("dns c%llu: nothing from the peer for %u ms", (unsigned long long)l->base.id,
                 l->cfg.idle_ms);
        send_reset(l);
        fail(l, UV_ETIMEDOUT);
        return;
    }
    if (l->closed && now >= l->linger_end_us) {
        send_reset(l);
        finish(l);
        return;
    }
    if (!l->cfg.server && !l->closed && l->cfg.keepalive_ms &&
        now >= l->last_tx_us + (uint64_t)l->cfg.keepalive_ms * 1000)
        tt_arq_ping(l->arq);
    pump(l);
}

static void arm(tt_dnslink *l, uint64_t now)
{
    if (l->freeing || l->failed)
        return;
    uint64_t at = tt_arq_next_timeout(l->arq, now);
    if (l->cfg.idle_ms) {
        uint64_t idle = l->last_rx_us + (uint64_t)l->cfg.idle_ms * 1000;
        if (idle < at)
            at = idle;
    }
    if (!l->cfg.server && !l->closed && l->cfg.keepalive_ms) {
        uint64_t ka = l->last_tx_us + (uint64_t)l->cfg.keepalive_ms * 1000;
        if (ka < at)
            at = ka;
    }
    if (l->closed && l->linger_end_us < at)
        at = l->linger_end_us;
    uint64_t ms = at <= now ? 0 : (at - now + 999) / 1000;
    uv_timer_start(&l->timer, on_timer, ms, 0);
}

/* What the owner sees pending: bytes the engine could not take, and bytes
 * it took but has not sent once. Counting the second keeps the owner's
 * queue short (the mux stops at its bound), so that a stream opened behind
 * a bulk transfer waits behind that bound, not behind the whole send
 * buffer: at a DNS path's upload rate, 256 KiB are seconds. */
static size_t pending_bytes(const tt_dnslink *l)
{
    return l->ovf_len - l->ovf_off + tt_arq_unsent(l->arq);
}

static void pump(tt_dnslink *l)
{
    if (l->freeing || l->failed || l->reset_sent)
        return;
    if (l->in_pump) {
        l->pump_again = true;
        return;
    }
    l->in_pump = true;
    do {
        l->pump_again = false;
        feed(l);
        deliver(l);
        if (l->freeing || l->failed)
            break;
        send_all(l, now_us(), 0);
        if (l->drain_wanted && !l->in_write && !l->closed && pending_bytes(l) == 0) {
            l->drain_wanted = false;
            if (l->base.handler && l->base.handler->on_drained)
                l->base.handler->on_drained(&l->base, l->base.ud);
        }
    } while (l->pump_again && !l->freeing && !l->failed);
    l->in_pump = false;
    if (l->freeing || l->failed)
        return;
    if (l->closed && tt_arq_fin_acked(l->arq)) {
        destroy(l);
        return;
    }
    arm(l, now_us());
}

int tt_dnslink_input(tt_dnslink *l, const uint8_t *data, size_t len)
{
    if (l->freeing || l->failed || l->reset_sent)
        return 0;
    uint64_t pn;
    size_t hl;
    if (tt_arq_packet_pn(data, len, &pn, &hl) != 0 || len < hl + TT_AEAD_TAG_LEN + 1)
        return -EBADMSG;
    uint8_t plain[PKT_MAX + 64], ad[32];
    if (len - hl - TT_AEAD_TAG_LEN + hl > sizeof plain)
        return -EBADMSG;
    size_t ad_len = make_ad(l, l->cfg.server, data, hl, ad);
    memcpy(plain, data, hl);
    tt_aead_set_counter(&l->open, pn);
    if (tt_aead_open_ad(&l->open, ad, ad_len, data + hl, len - hl, plain + hl) != 0)
        return -EBADMSG;
    uint64_t now = now_us();
    const char *why = NULL;
    if (tt_arq_input(l->arq, now, plain, len - TT_AEAD_TAG_LEN, &why) != 0) {
        tt_debug("dns c%llu: packet refused: %s", (unsigned long long)l->base.id, why);
        return -EPROTO;
    }
    l->last_rx_us = now;
    uint64_t code;
    if (tt_arq_peer_reset(l->arq, &code)) {
        if (l->quiet)
            return -ECONNRESET; /* a connection on trial: nothing to end */
        if (code == TT_ARQ_RESET_UNKNOWN)
            tt_info("dns c%llu: the %s does not know this connection (it restarted, or forgot "
                    "it): reset",
                    (unsigned long long)l->base.id, l->cfg.server ? "client" : "server");
        else
            tt_debug("dns c%llu: reset by the peer", (unsigned long long)l->base.id);
        fail(l, UV_ECONNRESET);
        return -ECONNRESET;
    }
    if (l->cfg.server) {
        /* The answer to this query goes out anyway: an acknowledgment in it
         * costs nothing and keeps the client's window moving. */
        send_all(l, now, TT_ARQ_POLL_ACK);
    } else {
        /* The server can only answer: while it says it has more, keep
         * enough polls at it for that much. */
        uint64_t backlog = tt_arq_peer_backlog(l->arq);
        if (backlog > 0 && l->cfg.dg) {
            uint64_t n = 1 + backlog / (l->down_room ? l->down_room : 900);
            tt_dnsc_poll(l->cfg.dg, n > POLLS_MAX ? POLLS_MAX : (unsigned)n);
        }
    }
    pump(l);
    return 0;
}

bool tt_dnslink_started(const tt_dnslink *l)
{
    return tt_arq_readable(l->arq) > 0;
}

static int l_write(tt_link *base, const uv_buf_t *bufs, unsigned nbufs)
{
    tt_dnslink *l = (tt_dnslink *)base;
    if (l->closed || l->shut || l->failed)
        return UV_EPIPE;
    for (unsigned i = 0; i < nbufs; i++) {
        const uint8_t *p = (const uint8_t *)bufs[i].base;
        size_t n = bufs[i].len;
        if (l->ovf_len == l->ovf_off) {
            size_t took = tt_arq_write(l->arq, p, n);
            p += took;
            n -= took;
        }
        if (n == 0)
            continue;
        if (l->ovf_len + n > l->ovf_cap) {
            /* Compact first, then grow. */
            if (l->ovf_off > 0) {
                memmove(l->ovf, l->ovf + l->ovf_off, l->ovf_len - l->ovf_off);
                l->ovf_len -= l->ovf_off;
                l->ovf_off = 0;
            }
            if (l->ovf_len + n > l->ovf_cap) {
                size_t cap = l->ovf_cap ? l->ovf_cap : 16384;
                while (cap < l->ovf_len + n)
                    cap *= 2;
                uint8_t *nb = realloc(l->ovf, cap);
                if (nb == NULL)
                    return UV_ENOMEM;
                l->ovf = nb;
                l->ovf_cap = cap;
            }
        }
        memcpy(l->ovf + l->ovf_len, p, n);
        l->ovf_len += n;
    }
    l->in_write = true;
    pump(l);
    l->in_write = false;
    if (pending_bytes(l) > 0)
        l->drain_wanted = true;
    return 0;
}

static int l_read_start(tt_link *base)
{
    tt_dnslink *l = (tt_dnslink *)base;
    if (l->closed || l->failed)
        return UV_EINVAL;
    l->reading = true;
    /* Bytes already held go out from the loop, not inside this call. */
    if (!l->freeing)
        uv_timer_start(&l->timer, on_timer, 0, 0);
    return 0;
}

static void l_read_stop(tt_link *base)
{
    ((tt_dnslink *)base)->reading = false;
}

static int l_shutdown(tt_link *base)
{
    tt_dnslink *l = (tt_dnslink *)base;
    if (l->closed || l->failed)
        return UV_ENOTCONN;
    l->shut = true;
    pump(l);
    return 0;
}

static void on_dg_closed(void *ud)
{
    tt_dnslink *l = ud;
    tt_link_close_cb cb = l->closed ? l->close_cb : NULL;
    void *cud = l->close_ud;
    if (l->cfg.on_free)
        l->cfg.on_free(l->cfg.owner, l);
    tt_arq_free(l->arq);
    if (l->keyed) {
        tt_aead_free(&l->seal);
        tt_aead_free(&l->open);
    }
    free(l->ovf);
    free(l);
    if (cb)
        cb(cud);
}

static void on_timer_closed(uv_handle_t *h)
{
    tt_dnslink *l = h->data;
    if (!l->cfg.server && l->cfg.dg) {
        tt_dgram_close(l->cfg.dg, on_dg_closed, l);
        return;
    }
    on_dg_closed(l);
}

/* One line per connection that goes (or is left by its carrier), for
 * tuning: what the engine did and, at the client, what its queries did. */
static void log_stats(tt_dnslink *l)
{
    /* A connection refused on trial did nothing worth a line. */
    if (l->stats_logged || l->quiet || !tt_log_enabled(TT_LOG_DEBUG))
        return;
    l->stats_logged = true;
    tt_arq_stats as;
    tt_arq_get_stats(l->arq, &as);
    char dq[256] = "";
    if (!l->cfg.server && l->cfg.dg) {
        tt_dnsc_stats ds;
        tt_dnsc_get_stats(l->cfg.dg, &ds);
        snprintf(
            dq, sizeof dq,
            "; queries %llu (polls %llu), empty %llu, timeouts %llu, overtaken %llu, late %llu",
            (unsigned long long)ds.queries, (unsigned long long)ds.polls,
            (unsigned long long)ds.empty, (unsigned long long)ds.timeouts,
            (unsigned long long)ds.overtaken, (unsigned long long)ds.late);
    }
    tt_debug("dns c%llu: closing: packets %llu sent, %llu received; bytes %llu new, %llu resent; "
             "lost %llu (spurious %llu), probes %llu, congestion %llu; srtt %llu us%s",
             (unsigned long long)l->base.id, (unsigned long long)as.pkts_sent,
             (unsigned long long)as.pkts_recv, (unsigned long long)as.bytes_new,
             (unsigned long long)as.bytes_resent, (unsigned long long)as.lost,
             (unsigned long long)as.spurious, (unsigned long long)as.ptos,
             (unsigned long long)as.congestion, (unsigned long long)as.srtt_us, dq);
}

static void destroy(tt_dnslink *l)
{
    if (l->freeing)
        return;
    log_stats(l);
    l->freeing = true;
    l->reading = false;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

static void close_common(tt_dnslink *l, tt_link_close_cb cb, void *ud, bool abort)
{
    l->closed = true;
    l->reading = false;
    l->close_cb = cb;
    l->close_ud = ud;
    if (abort || l->failed || l->detached || l->orphaned || l->freeing) {
        if (abort)
            send_reset(l);
        finish(l);
        return;
    }
    /* Deliver what is written and the FIN, then go. */
    l->shut = true;
    l->linger_end_us = now_us() + (uint64_t)l->cfg.linger_ms * 1000;
    pump(l);
}

static void l_close(tt_link *base, tt_link_close_cb cb, void *ud)
{
    close_common((tt_dnslink *)base, cb, ud, false);
}

static void l_abort(tt_link *base, tt_link_close_cb cb, void *ud)
{
    close_common((tt_dnslink *)base, cb, ud, true);
}

static size_t l_pending(const tt_link *base)
{
    return pending_bytes((const tt_dnslink *)base);
}

static const char *l_peer(tt_link *base, char *buf, size_t len)
{
    tt_dnslink *l = (tt_dnslink *)base;
    snprintf(buf, len, "dns client %08x", (unsigned)l->cfg.client_id);
    return buf;
}

static const tt_link_ops dnslink_ops = {
    .write = l_write,
    .read_start = l_read_start,
    .read_stop = l_read_stop,
    .shutdown = l_shutdown,
    .close = l_close,
    .abort = l_abort,
    .pending = l_pending,
    .peer = l_peer,
};

static void on_client_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                               const struct sockaddr *from)
{
    (void)d;
    (void)from;
    tt_dnslink *l = ud;
    if (len > TT_AEAD_TAG_LEN && len - TT_AEAD_TAG_LEN > l->down_room)
        l->down_room = len - TT_AEAD_TAG_LEN;
    /* A datagram that does not open is not the server's: dropped. */
    (void)tt_dnslink_input(l, data, len);
}

static void on_client_dg_error(tt_dgram *d, void *ud, int err)
{
    (void)d;
    fail(ud, err);
}

static const tt_dgram_handler client_dg_handler = {
    .on_datagram = on_client_datagram,
    .on_error = on_client_dg_error,
};

tt_dnslink *tt_dnslink_new(uv_loop_t *loop, const tt_dnslink_cfg *cfg)
{
    tt_dnslink *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->cfg = *cfg;
    uint8_t up[TT_AEAD_KEY_LEN], down[TT_AEAD_KEY_LEN];
    if (derive(cfg, "up", up) != 0 || derive(cfg, "dn", down) != 0)
        goto fail;
    if (tt_aead_init(&l->seal, TT_AEAD_AES_256_GCM, cfg->server ? down : up, true) != 0)
        goto fail;
    if (tt_aead_init(&l->open, TT_AEAD_AES_256_GCM, cfg->server ? up : down, false) != 0) {
        tt_aead_free(&l->seal);
        goto fail;
    }
    l->keyed = true;
    tt_arq_cfg ac;
    tt_arq_cfg_default(&ac);
    size_t room = packet_room(l);
    ac.mss = room > TT_ARQ_MIN_PACKET ? room : TT_ARQ_MIN_PACKET;
    /* Most losses on a resolver path are drops by a busy resolver or a
     * lossy link, not a full queue: cut the window less than NewReno does,
     * and never below what the query slots allow anyway (the client's
     * layer bounds its queries in flight, and every answer needs one). */
    ac.loss_reduction_pct = 70;
    ac.min_cwnd = (uint64_t)cfg->window_pkts * ac.mss;
    l->arq = tt_arq_new(&ac);
    if (l->arq == NULL)
        goto fail;
    l->base.ops = &dnslink_ops;
    l->base.loop = loop;
    l->base.id = tt_link_next_id();
    tt_dnst_addr(cfg->client_id, &l->peer);
    uv_timer_init(loop, &l->timer);
    l->timer.data = l;
    l->last_rx_us = l->last_tx_us = now_us();
    if (!cfg->server)
        tt_dgram_set_handler(cfg->dg, &client_dg_handler, l);
    l->quiet = cfg->server;
    return l;
fail:
    if (l->keyed) {
        tt_aead_free(&l->seal);
        tt_aead_free(&l->open);
    }
    free(l);
    return NULL;
}

tt_link *tt_dnslink_link(tt_dnslink *l)
{
    return &l->base;
}

void tt_dnslink_release(tt_dnslink *l)
{
    l->quiet = false;
    send_all(l, now_us(), TT_ARQ_POLL_ACK);
    arm(l, now_us());
}

void tt_dnslink_refuse(tt_dnslink *l)
{
    uint8_t pkt[32];
    size_t n = tt_arq_reset_put(pkt, sizeof pkt, TT_ARQ_RESET_PN, TT_ARQ_RESET_UNKNOWN);
    if (n > 0 && l->cfg.dg != NULL)
        send_packet(l, pkt, n);
}

void tt_dnslink_discard(tt_dnslink *l)
{
    l->closed = true;
    l->close_cb = NULL;
    destroy(l);
}

void tt_dnslink_detach(tt_dnslink *l)
{
    log_stats(l);
    l->detached = true;
    l->cfg.dg = NULL;
    l->cfg.on_free = NULL; /* the owner is going */
    if (l->closed || l->failed) {
        destroy(l);
        return;
    }
    /* The owner hears of it from the loop, not inside the carrier's close. */
    if (!l->freeing)
        uv_timer_start(&l->timer, on_timer, 0, 0);
}

void tt_dnslink_orphan(tt_dnslink *l)
{
    log_stats(l);
    l->cfg.on_free = NULL;
    l->orphaned = true;
    if (l->closed)
        destroy(l);
}

uint32_t tt_dnslink_client_id(const tt_dnslink *l)
{
    return l->cfg.client_id;
}

const uint8_t *tt_dnslink_salt(const tt_dnslink *l)
{
    return l->cfg.salt;
}
