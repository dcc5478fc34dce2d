/* The DNS entry. Three kinds of endpoint meet here: the UDP sockets and the
 * TCP connections of applications (the clients), and the one stream to the
 * far nameserver (upstream). A query waits in a slot of a fixed table from
 * the moment it is sent upstream until its answer comes or its time runs
 * out; the slot keeps the query's bytes, so that queries still unanswered
 * when the stream ends are sent again on the next one, and so that a
 * SERVFAIL can be made from them.
 *
 * Upstream ids come from a counter, skipping those in use: the stream is a
 * TCP connection inside the tunnel, which an off-path attacker cannot
 * inject into, so the ids need to be unique, not unpredictable. */
#include "entry/dnscap.h"

#include <stdlib.h>
#include <string.h>

#include "codec/dnsmsg.h"
#include "codec/socks5.h"
#include "core/log.h"
#include "entry/dnscache.h"
#include "link/tcp.h"
#include "link/udp.h"
#include "stream/open.h"

/* The longest query taken: real ones are a few hundred bytes at most. */
#define QUERY_MAX 4096
/* A client whose answers pile up past this is not reading them. */
#define CLIENT_QUEUE_MAX (256 * 1024)
#define TICK_MS 250
/* The least time between two opens of the stream, so a server that closes
 * it at once is not asked again in a loop. */
#define REOPEN_MS 1000

typedef struct tcp_client tcp_client;

typedef struct slot {
    bool used;
    bool sent; /* written on the current stream */
    uint16_t up_id, client_id;
    tt_dgram *udp; /* the socket it came on, or NULL for TCP */
    struct sockaddr_storage from;
    tcp_client *tcp;
    uint64_t deadline_ms;
    uint16_t udp_max;
    size_t qend;
    size_t klen;
    uint8_t key[TT_DNSMSG_KEY_MAX];
    size_t len;
    uint8_t *query; /* with the upstream id */
} slot;

struct tcp_client {
    tt_dnscap *d;
    tt_link *link;
    unsigned index;   /* in d->clients */
    unsigned waiting; /* slots of its queries */
    bool eof;
    size_t have;
    uint8_t buf[2 + QUERY_MAX];
};

struct tt_dnscap {
    uv_loop_t *loop;
    const tt_entry_cfg *cfg;
    tt_target upstream;
    tt_dgram *udp[2];
    tt_tcp_listener *tcp[2];
    tcp_client *clients[TT_DNSCAP_TCP_CLIENTS];
    slot slots[TT_DNSCAP_PENDING];
    uint16_t by_id[65536]; /* slot index + 1, 0: free */
    uint16_t next_id;
    tt_dnscache *cache;
    tt_stream_open *opening;
    tt_link *up;
    uint8_t *rbuf; /* 2 + 65535 bytes: one whole framed answer */
    size_t rhave;
    uint64_t last_open_ms;
    uv_timer_t timer;
    unsigned closes; /* close callbacks still to come */
    bool closing;
};

/* An answer made or rewritten for a client; one at a time. */
static uint8_t g_out[2 + 65535];

static void maybe_free(tt_dnscap *d)
{
    if (!d->closing || d->closes > 0)
        return;
    tt_dnscache_free(d->cache);
    free(d->rbuf);
    free(d);
}

static void on_closed(void *ud)
{
    tt_dnscap *d = ud;
    d->closes--;
    maybe_free(d);
}

static void client_close(tcp_client *c);

static void slot_free(tt_dnscap *d, slot *s)
{
    if (!s->used)
        return;
    d->by_id[s->up_id] = 0;
    free(s->query);
    tcp_client *c = s->tcp;
    memset(s, 0, sizeof *s);
    if (c != NULL) {
        c->waiting--;
        if (c->eof && c->waiting == 0)
            client_close(c);
    }
}

/* Sends MSG (LEN bytes, the client's id already in it) to S's client. */
static void deliver(slot *s, uint8_t *msg, size_t len)
{
    if (s->udp != NULL) {
        size_t max = s->udp_max < TT_UDP_MAX_DATAGRAM ? s->udp_max : TT_UDP_MAX_DATAGRAM;
        if (len > max) {
            /* Too long for the client's UDP: the question alone with TC,
             * which sends it to TCP (RFC 1035 section 4.2.1). */
            memcpy(g_out, s->query, s->qend);
            tt_dnsmsg_set_id(g_out, s->client_id);
            msg = g_out;
            len = tt_dnsmsg_reply_empty(g_out, s->qend, TT_DNS_RCODE_NOERROR, true);
        }
        uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
        int rc = tt_dgram_send(s->udp, &b, 1, (const struct sockaddr *)&s->from);
        if (rc < 0)
            tt_debug("dns: cannot answer a UDP client: %s", uv_strerror(rc));
        return;
    }
    tcp_client *c = s->tcp;
    if (c == NULL)
        return;
    uint8_t pre[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    uv_buf_t b[2] = {uv_buf_init((char *)pre, 2), uv_buf_init((char *)msg, (unsigned)len)};
    if (tt_link_write(c->link, b, 2) < 0 || tt_link_pending(c->link) > CLIENT_QUEUE_MAX)
        client_close(c);
}

static void servfail(slot *s)
{
    memcpy(g_out, s->query, s->qend);
    tt_dnsmsg_set_id(g_out, s->client_id);
    size_t n = tt_dnsmsg_reply_empty(g_out, s->qend, TT_DNS_RCODE_SERVFAIL, false);
    deliver(s, g_out, n);
}

static int send_up(tt_dnscap *d, slot *s)
{
    uint8_t pre[2] = {(uint8_t)(s->len >> 8), (uint8_t)s->len};
    uv_buf_t b[2] = {uv_buf_init((char *)pre, 2), uv_buf_init((char *)s->query, (unsigned)s->len)};
    int rc = tt_link_write(d->up, b, 2);
    if (rc == 0)
        s->sent = true;
    return rc;
}

static void up_close(tt_dnscap *d)
{
    if (d->up == NULL)
        return;
    d->closes++;
    tt_link_close(d->up, on_closed, d);
    d->up = NULL;
    d->rhave = 0;
    for (unsigned i = 0; i < TT_DNSCAP_PENDING; i++)
        d->slots[i].sent = false;
}

static void on_open(void *ud, uint8_t rep, tt_link *link, const uint8_t *leftover, size_t len);

/* Opens the stream unless it is open, being opened, or was opened too
 * recently (the timer tries again). */
static void ensure_open(tt_dnscap *d)
{
    uint64_t now = uv_now(d->loop);
    if (d->up != NULL || d->opening != NULL || d->closing ||
        (d->last_open_ms != 0 && now - d->last_open_ms < REOPEN_MS))
        return;
    d->last_open_ms = now;
    int rc = tt_stream_open_start(d->cfg->carrier, &d->upstream, NULL, 0, d->cfg->open_timeout_ms,
                                  on_open, d, &d->opening);
    if (rc < 0) {
        d->opening = NULL;
        tt_warn("dns: cannot open a stream to the nameserver: %s", uv_strerror(rc));
    }
}

/* Takes one whole answer from upstream. */
static void on_answer(tt_dnscap *d, uint8_t *msg, size_t len)
{
    if (len < TT_DNS_HEADER_LEN)
        return;
    uint16_t id = (uint16_t)(msg[0] << 8 | msg[1]);
    unsigned idx = d->by_id[id];
    if (idx == 0)
        return; /* its query timed out */
    slot *s = &d->slots[idx - 1];
    tt_dnsmsg_q q;
    const char *why = NULL;
    if (tt_dnsmsg_question(msg, len, false, &q, &why) != 0 || q.key_len != s->klen ||
        memcmp(q.key, s->key, s->klen) != 0) {
        tt_debug("dns: an answer that does not match its query (%s); dropped",
                 why ? why : "another question");
        return;
    }
    tt_dnscache_put(d->cache, s->key, s->klen, msg, len, uv_now(d->loop));
    tt_dnsmsg_set_id(msg, s->client_id);
    deliver(s, msg, len);
    slot_free(d, s);
}

static void up_on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    tt_dnscap *d = ud;
    while (len > 0 && d->up != NULL) {
        size_t need = 2;
        if (d->rhave >= 2)
            need = 2 + ((size_t)d->rbuf[0] << 8 | d->rbuf[1]);
        size_t take = need - d->rhave < len ? need - d->rhave : len;
        memcpy(d->rbuf + d->rhave, data, take);
        d->rhave += take;
        data += take;
        len -= take;
        if (d->rhave >= 2 && d->rhave == 2 + ((size_t)d->rbuf[0] << 8 | d->rbuf[1])) {
            on_answer(d, d->rbuf + 2, d->rhave - 2);
            d->rhave = 0;
        }
    }
}

static bool any_waiting(const tt_dnscap *d)
{
    for (unsigned i = 0; i < TT_DNSCAP_PENDING; i++)
        if (d->slots[i].used)
            return true;
    return false;
}

static void up_on_eof(tt_link *l, void *ud)
{
    (void)l;
    tt_dnscap *d = ud;
    tt_debug("dns: the nameserver ended the stream");
    up_close(d);
    if (any_waiting(d))
        ensure_open(d);
}

static void up_on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    tt_dnscap *d = ud;
    tt_info("dns: the stream to the nameserver failed: %s", uv_strerror(err));
    up_close(d);
    if (any_waiting(d))
        ensure_open(d);
}

static const tt_link_handler up_handler = {
    .on_data = up_on_data,
    .on_eof = up_on_eof,
    .on_error = up_on_error,
};

static void on_open(void *ud, uint8_t rep, tt_link *link, const uint8_t *leftover, size_t len)
{
    tt_dnscap *d = ud;
    d->opening = NULL;
    char tbuf[TT_TARGET_STRLEN];
    if (rep != 0) {
        tt_warn("dns: cannot reach the nameserver %s through the tunnel: %s",
                tt_target_format(&d->upstream, tbuf, sizeof tbuf), tt_socks5_rep_str(rep));
        return;
    }
    tt_debug("dns: stream to %s open", tt_target_format(&d->upstream, tbuf, sizeof tbuf));
    d->up = link;
    tt_link_set_handler(link, &up_handler, d);
    for (unsigned i = 0; i < TT_DNSCAP_PENDING && d->up != NULL; i++)
        if (d->slots[i].used && send_up(d, &d->slots[i]) < 0)
            up_close(d);
    if (d->up != NULL && len > 0)
        up_on_data(link, d, leftover, len);
    if (d->up != NULL && tt_link_read_start(d->up) < 0)
        up_close(d);
}

/* A query from a client: answered from the cache, or sent upstream. UDP
 * and FROM say where it came from when TCP is NULL. */
static void on_query(tt_dnscap *d, const uint8_t *msg, size_t len, tt_dgram *udp,
                     const struct sockaddr *from, tcp_client *tcp)
{
    tt_dnsmsg_q q;
    const char *why = NULL;
    if (len > QUERY_MAX || tt_dnsmsg_question(msg, len, true, &q, &why) != 0) {
        tt_debug("dns: dropping a query: %s", why ? why : "too long");
        return;
    }
    /* What deliver and servfail need of a query that takes no slot: a
     * cached answer too long for UDP is replaced by the question with TC. */
    slot tmp = {.udp = udp,
                .tcp = tcp,
                .udp_max = udp ? q.udp_max : 65535,
                .client_id = q.id,
                .qend = q.qend,
                .query = (uint8_t *)(uintptr_t)msg};
    if (udp != NULL)
        memcpy(&tmp.from, from,
               from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in));
    size_t n =
        tt_dnscache_get(d->cache, q.key, q.key_len, q.id, g_out, sizeof g_out, uv_now(d->loop));
    if (n > 0) {
        tt_debug("dns: answered from the cache");
        deliver(&tmp, g_out, n);
        return;
    }
    slot *s = NULL;
    for (unsigned i = 0; i < TT_DNSCAP_PENDING && s == NULL; i++)
        if (!d->slots[i].used)
            s = &d->slots[i];
    uint8_t *copy = s ? malloc(len) : NULL;
    if (copy == NULL) {
        /* The table is full (or memory is): refuse rather than wait. */
        servfail(&tmp);
        return;
    }
    *s = tmp;
    s->query = NULL;
    s->used = true;
    while (d->by_id[d->next_id] != 0)
        d->next_id++;
    s->up_id = d->next_id++;
    d->by_id[s->up_id] = (uint16_t)(s - d->slots + 1);
    s->client_id = q.id;
    s->qend = q.qend;
    s->klen = q.key_len;
    memcpy(s->key, q.key, q.key_len);
    memcpy(copy, msg, len);
    tt_dnsmsg_set_id(copy, s->up_id);
    s->query = copy;
    s->len = len;
    s->deadline_ms = uv_now(d->loop) + TT_DNSCAP_QUERY_TIMEOUT_MS;
    if (tcp != NULL)
        tcp->waiting++;
    if (d->up != NULL) {
        if (send_up(d, s) < 0)
            up_close(d);
    }
    if (d->up == NULL)
        ensure_open(d);
}

static void udp_on_datagram(tt_dgram *g, void *ud, const uint8_t *data, size_t len,
                            const struct sockaddr *from)
{
    on_query(ud, data, len, g, from, NULL);
}

static void udp_on_error(tt_dgram *g, void *ud, int err)
{
    (void)g;
    (void)ud;
    /* An ICMP error from a client that went away; the socket stays good. */
    tt_debug("dns: UDP socket: %s", uv_strerror(err));
}

static const tt_dgram_handler udp_handler = {
    .on_datagram = udp_on_datagram,
    .on_error = udp_on_error,
};

static void client_closed(void *ud)
{
    tcp_client *c = ud;
    tt_dnscap *d = c->d;
    free(c);
    on_closed(d);
}

static void client_close(tcp_client *c)
{
    tt_dnscap *d = c->d;
    if (d->clients[c->index] != c)
        return; /* already closing */
    d->clients[c->index] = NULL;
    for (unsigned i = 0; i < TT_DNSCAP_PENDING; i++) {
        slot *s = &d->slots[i];
        if (s->used && s->tcp == c) {
            s->tcp = NULL;
            slot_free(d, s);
        }
    }
    d->closes++;
    tt_link_close(c->link, client_closed, c);
}

static void client_on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    tcp_client *c = ud;
    tt_dnscap *d = c->d;
    while (len > 0 && d->clients[c->index] == c) {
        size_t need = 2;
        if (c->have >= 2) {
            need = 2 + ((size_t)c->buf[0] << 8 | c->buf[1]);
            if (need > sizeof c->buf || need == 2) {
                tt_debug("dns: a TCP client sent a query of %zu bytes; closing", need - 2);
                client_close(c);
                return;
            }
        }
        size_t take = need - c->have < len ? need - c->have : len;
        memcpy(c->buf + c->have, data, take);
        c->have += take;
        data += take;
        len -= take;
        if (c->have == need && need > 2) {
            c->have = 0;
            on_query(d, c->buf + 2, need - 2, NULL, NULL, c);
        }
    }
}

static void client_on_eof(tt_link *l, void *ud)
{
    (void)l;
    tcp_client *c = ud;
    c->eof = true;
    if (c->waiting == 0)
        client_close(c);
}

static void client_on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    client_close(ud);
}

static const tt_link_handler client_handler = {
    .on_data = client_on_data,
    .on_eof = client_on_eof,
    .on_error = client_on_error,
};

static void on_accept(void *ud, tt_link *link)
{
    tt_dnscap *d = ud;
    unsigned i = 0;
    while (i < TT_DNSCAP_TCP_CLIENTS && d->clients[i] != NULL)
        i++;
    tcp_client *c = i < TT_DNSCAP_TCP_CLIENTS ? calloc(1, sizeof *c) : NULL;
    if (c == NULL) {
        tt_debug("dns: too many TCP clients; refusing one");
        tt_link_abort(link, NULL, NULL);
        return;
    }
    c->d = d;
    c->link = link;
    c->index = i;
    d->clients[i] = c;
    tt_link_set_handler(link, &client_handler, c);
    if (tt_link_read_start(link) < 0)
        client_close(c);
}

static void on_tick(uv_timer_t *t)
{
    tt_dnscap *d = t->data;
    uint64_t now = uv_now(d->loop);
    bool waiting = false;
    for (unsigned i = 0; i < TT_DNSCAP_PENDING; i++) {
        slot *s = &d->slots[i];
        if (!s->used)
            continue;
        if (now >= s->deadline_ms) {
            tt_debug("dns: a query got no answer in time; SERVFAIL");
            servfail(s);
            slot_free(d, s);
        } else {
            waiting = true;
        }
    }
    if (waiting && d->up == NULL)
        ensure_open(d);
}

int tt_dnscap_start(uv_loop_t *loop, const tt_entry_cfg *cfg, const tt_target *upstream, bool v4,
                    bool v6, tt_dnscap **out, const char **why)
{
    tt_dnscap *d = calloc(1, sizeof *d);
    if (d == NULL || (d->cache = tt_dnscache_new()) == NULL ||
        (d->rbuf = malloc(2 + 65535)) == NULL) {
        if (d != NULL) {
            tt_dnscache_free(d->cache);
            free(d);
        }
        *why = "out of memory";
        return UV_ENOMEM;
    }
    d->loop = loop;
    d->cfg = cfg;
    d->upstream = *upstream;
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_tick, TICK_MS, TICK_MS);
    static const char *const hosts[2] = {"127.0.0.1", "::1"};
    bool want[2] = {v4, v6};
    int rc = 0;
    for (int f = 0; f < 2 && rc == 0; f++) {
        if (!want[f])
            continue;
        rc = tt_udp_open(loop, hosts[f], 0, NULL, &d->udp[f]);
        if (rc == 0) {
            tt_dgram_set_handler(d->udp[f], &udp_handler, d);
            rc = tt_dgram_recv_start(d->udp[f]);
        }
        if (rc == 0)
            rc = tt_tcp_listen(loop, hosts[f], 0, on_accept, d, &d->tcp[f]);
    }
    if (rc < 0) {
        *why = uv_strerror(rc);
        tt_dnscap_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

void tt_dnscap_ports(const tt_dnscap *d, int family, uint16_t *udp, uint16_t *tcp)
{
    int f = family == 6;
    *udp = d->udp[f] ? (uint16_t)tt_udp_port(d->udp[f]) : 0;
    *tcp = d->tcp[f] ? (uint16_t)tt_tcp_listener_port(d->tcp[f]) : 0;
}

static void on_dgram_closed(void *ud)
{
    on_closed(ud);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_closed(h->data);
}

void tt_dnscap_close(tt_dnscap *d)
{
    if (d == NULL || d->closing)
        return;
    d->closing = true;
    d->closes++; /* held until the end of this function */
    d->closes++;
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    for (int f = 0; f < 2; f++) {
        if (d->udp[f] != NULL) {
            d->closes++;
            tt_dgram_close(d->udp[f], on_dgram_closed, d);
        }
        if (d->tcp[f] != NULL)
            tt_tcp_listener_close(d->tcp[f]);
    }
    for (unsigned i = 0; i < TT_DNSCAP_TCP_CLIENTS; i++)
        if (d->clients[i] != NULL)
            client_close(d->clients[i]);
    for (unsigned i = 0; i < TT_DNSCAP_PENDING; i++)
        if (d->slots[i].used)
            slot_free(d, &d->slots[i]);
    if (d->opening != NULL) {
        tt_stream_open_cancel(d->opening);
        d->opening = NULL;
    }
    up_close(d);
    on_closed(d);
}
