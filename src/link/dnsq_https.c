/* DNS queries over HTTPS (RFC 8484), link/dnsq.h: one HTTP/2 connection
 * to the resolver through the TLS link (ALPN "h2"), a POST per query on a
 * stream of its own (codec/doh.h speaks HTTP/2 through nghttp2).
 *
 * A connection's session exists from the first send: queries accepted
 * while it connects (or waits out a back-off) are requests nghttp2 holds
 * until the handshake is done, bounded by max_queued. A connection that
 * ends (the resolver closed it, reset it, failed its handshake or broke
 * HTTP/2) takes its unanswered queries with it: on_lost says so, and the
 * next send opens another, after a delay that doubles from 100 ms to 10 s
 * while connections fail before any answer.
 *
 * A GOAWAY from the resolver (a restart, a reload, its idle limit) lets
 * the streams it names finish: the connection drains on its own while the
 * next send opens a new one, so a restart does not stop the queries. One
 * connection drains at a time; a second GOAWAY before it is done ends it,
 * and whatever it still held is reported lost. Streams the resolver resets
 * or answers with an error are single lost queries, left to the client's
 * deadline as a dropped UDP datagram would be.
 *
 * A connection that goes quiet is found by a watch that runs each second
 * while a connection is up: a peer that completed the TLS handshake but
 * sent no HTTP/2 SETTINGS within the connect timeout is not a DoH server
 * (a DoT port that agreed to "h2" does that); a connection with queries
 * outstanding and nothing received for STALL_MS gets a PING, and one that
 * stays silent STALL_MS more is given up, as if the resolver had closed
 * it, so a resolver that vanished without a word is reconnected to. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/doh.h"
#include "core/log.h"
#include "link/dnsq.h"
#include "link/tcp.h"
#include "link/tls.h"

#define CONNECT_TIMEOUT_MS 5000
#define QUEUED_MAX 64
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000
#define OUT_CHUNK 16384
#define WATCH_MS 1000
#define STALL_MS 5000

typedef struct dnsq_https dnsq_https;

/* One HTTP/2 connection, from its connect to its close. */
typedef struct conn {
    dnsq_https *t;
    tt_doh *doh;
    tt_tcp_connect *connecting; /* the TCP connect in progress */
    tt_link *link;              /* the TLS link: handshaking or up */
    bool up;                    /* the handshake is done: bytes flow */
    bool answered;              /* an answer came on this connection */
    bool dead;                  /* ended; freed when its connect returns */
    uint64_t up_at, last_rx;    /* loop times: the handshake done, the last bytes in */
    uint64_t pinged_at;         /* a PING is out since then; 0: none */
} conn;

struct dnsq_https {
    tt_dnsq base;
    tt_dnsq_cfg cfg;
    char name[256];      /* verified and sent as SNI */
    char authority[300]; /* :authority */
    char *path;
    conn *cur;           /* takes new queries */
    conn *draining;      /* after a GOAWAY, finishing its streams */
    unsigned backoff_ms; /* before the next connect; 0: at once */
    uint64_t connect_at; /* not before this (loop time) */
    uv_timer_t timer;    /* the delayed connect of cur */
    uv_timer_t watch;    /* while a connection is up: its silence */
    uv_prepare_t batch;  /* the flush of the queries sent in this loop turn */
    unsigned parts;      /* the timer and links whose close is awaited */
    bool closing;
    tt_dnsq_close_cb close_cb;
    void *close_ud;
};

static void maybe_done(dnsq_https *t)
{
    if (!t->closing || t->parts > 0)
        return;
    tt_dnsq_close_cb cb = t->close_cb;
    void *ud = t->close_ud;
    tt_tls_ctx_free(t->cfg.tls);
    free(t->path);
    free(t);
    if (cb)
        cb(ud);
}

static void on_part_closed(void *ud)
{
    dnsq_https *t = ud;
    t->parts--;
    maybe_done(t);
}

/* Ends C without a word to anyone: its link closes, its session goes. A
 * connect in progress is cancelled, and C is freed when it returns. */
static void conn_drop(conn *c)
{
    dnsq_https *t = c->t;
    if (t->cur == c)
        t->cur = NULL;
    if (t->draining == c)
        t->draining = NULL;
    tt_doh_free(c->doh);
    c->doh = NULL;
    if (c->link != NULL) {
        t->parts++;
        tt_link_close(c->link, on_part_closed, t);
        c->link = NULL;
    }
    c->dead = true;
    if (c->connecting != NULL) {
        /* on_connected frees C; the transport waits for it. */
        t->parts++;
        tt_tcp_connect_cancel(c->connecting);
    } else {
        free(c);
    }
}

/* C is over: a failure (ERR, WHY) or the end of a drained connection.
 * Queries it held unanswered are reported lost. From a loop callback only;
 * the handler may close the transport. */
static void conn_end(conn *c, int err, const char *why)
{
    dnsq_https *t = c->t;
    unsigned lost = c->doh ? tt_doh_outstanding(c->doh) : 0;
    if (c->answered) {
        t->backoff_ms = 0;
    } else if (err != 0) {
        t->backoff_ms = t->backoff_ms == 0                   ? BACKOFF_FIRST_MS
                        : t->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                             : t->backoff_ms * 2;
    }
    t->connect_at = uv_now(t->base.loop) + t->backoff_ms;
    conn_drop(c);
    if (lost > 0)
        t->base.handler->on_lost(&t->base, t->base.ud, err ? err : UV_ECONNRESET, why);
}

/* Sends what the session has to send. Returns 0 or the link's error. */
static int flush(conn *c)
{
    if (!c->up)
        return 0;
    uint8_t buf[OUT_CHUNK];
    for (size_t n; (n = tt_doh_output(c->doh, buf, sizeof buf)) > 0;) {
        int rc = tt_link_write1(c->link, buf, n);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* After the session took bytes or queries: answers out, bytes out, and
 * the connection's end when it has nothing left. Returns false when C is
 * gone (or the transport is closing). */
static bool conn_settle(conn *c)
{
    dnsq_https *t = c->t;
    tt_doh_event ev;
    while (tt_doh_next(c->doh, &ev)) {
        if (ev.kind == TT_DOH_FAILED) {
            tt_debug("dns client: https: a query got no answer: %s", ev.why);
            continue;
        }
        c->answered = true;
        t->backoff_ms = 0;
        /* The handler may send (a call into the session, which takes the
         * event's memory back) or close: it gets a copy of its own. */
        uint8_t msg[TT_DNSQ_MSG_MAX];
        memcpy(msg, ev.msg, ev.len);
        t->base.handler->on_answer(&t->base, t->base.ud, msg, ev.len);
        if (t->closing || c->dead)
            return false;
    }
    int rc = flush(c);
    if (rc != 0) {
        conn_end(c, rc, uv_strerror(rc));
        return false;
    }
    if (!tt_doh_accepting(c->doh) && t->cur == c) {
        /* A GOAWAY: the next send opens a new connection while this one
         * finishes what it may. */
        const char *g = tt_doh_goaway(c->doh);
        tt_debug("dns client: https: the resolver sent GOAWAY (%s); %u queries on it", g ? g : "?",
                 tt_doh_outstanding(c->doh));
        conn *old = t->draining;
        t->cur = NULL;
        t->draining = c;
        t->backoff_ms = 0;
        t->connect_at = 0;
        if (old != NULL)
            conn_end(old, UV_ECONNRESET, "the resolver sent GOAWAY twice");
        if (t->closing || c->dead)
            return false;
    }
    if (tt_doh_done(c->doh)) {
        conn_end(c, 0, NULL);
        return false;
    }
    return true;
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    conn *c = ud;
    const char *why = NULL;
    c->last_rx = uv_now(c->t->base.loop);
    c->pinged_at = 0;
    if (tt_doh_feed(c->doh, data, len, &why) != 0) {
        char line[160];
        snprintf(line, sizeof line, "HTTP/2 from the resolver: %s", why);
        tt_debug("dns client: https: %s", line);
        (void)flush(c); /* the GOAWAY that says why */
        conn_end(c, UV_EPROTO, line);
        return;
    }
    (void)conn_settle(c);
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    conn *c = ud;
    tt_debug("dns client: https: the resolver closed the connection (%u queries unanswered)",
             tt_doh_outstanding(c->doh));
    conn_end(c, UV_EOF, NULL);
}

static void on_error(tt_link *l, void *ud, int err)
{
    conn *c = ud;
    char buf[256];
    const char *why = tt_tls_link_failure(l) != TT_TLS_FAIL_NONE
                          ? tt_tls_link_why(l, buf, sizeof buf)
                          : uv_strerror(err);
    tt_debug("dns client: https connection to the resolver: %s", why);
    conn_end(c, err, why);
}

static const tt_link_handler link_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
};

/* Looks at C's silence (see the top). Returns false when C ended. */
static bool watch_conn(conn *c, uint64_t now)
{
    dnsq_https *t = c->t;
    char line[160];
    if (!tt_doh_settled(c->doh)) {
        if (now - c->up_at < t->cfg.connect_timeout_ms)
            return true;
        snprintf(line, sizeof line,
                 "the resolver sent no HTTP/2 SETTINGS within %u ms: not a DNS over HTTPS "
                 "service?",
                 t->cfg.connect_timeout_ms);
        conn_end(c, UV_EPROTO, line);
        return false;
    }
    if (tt_doh_outstanding(c->doh) == 0 || now - c->last_rx < STALL_MS)
        return true;
    if (c->pinged_at == 0) {
        c->pinged_at = now;
        int rc = tt_doh_ping(c->doh);
        if (rc == 0)
            rc = flush(c);
        if (rc == 0)
            return true;
    } else if (now - c->pinged_at < STALL_MS) {
        return true;
    }
    snprintf(line, sizeof line, "the resolver said nothing for %u ms, not even to a PING",
             (unsigned)(now - c->last_rx));
    conn_end(c, UV_ETIMEDOUT, line);
    return false;
}

static void on_watch(uv_timer_t *h)
{
    dnsq_https *t = h->data;
    uint64_t now = uv_now(t->base.loop);
    if (t->cur && t->cur->up)
        (void)watch_conn(t->cur, now);
    /* Ending one may have closed the transport (its handler ran). */
    if (!t->closing && t->draining && t->draining->up)
        (void)watch_conn(t->draining, now);
    if (t->closing)
        return;
    if (!(t->cur && t->cur->up) && !(t->draining && t->draining->up))
        uv_timer_stop(&t->watch);
}

static void on_tls_ready(void *ud, tt_link *link, int status)
{
    conn *c = ud;
    char buf[256];
    if (status != 0) {
        conn_end(c, status, tt_tls_link_why(link, buf, sizeof buf));
        return;
    }
    char alpn[32];
    if (strcmp(tt_tls_link_alpn(link, alpn, sizeof alpn), "h2") != 0) {
        snprintf(buf, sizeof buf, "the resolver does not speak HTTP/2 over TLS (ALPN %s%s%s)",
                 alpn[0] ? "'" : "none", alpn, alpn[0] ? "'" : "");
        conn_end(c, UV_EPROTO, buf);
        return;
    }
    tt_link_set_handler(link, &link_handler, c);
    c->up = true;
    c->up_at = c->last_rx = uv_now(c->t->base.loop);
    if (!uv_is_active((uv_handle_t *)&c->t->watch))
        uv_timer_start(&c->t->watch, on_watch, WATCH_MS, WATCH_MS);
    int rc = tt_link_read_start(link);
    if (rc != 0) {
        conn_end(c, rc, uv_strerror(rc));
        return;
    }
    (void)conn_settle(c);
}

static void on_connected(void *ud, int status, tt_link *link)
{
    conn *c = ud;
    dnsq_https *t = c->t;
    c->connecting = NULL;
    if (c->dead) {
        if (link)
            tt_link_close(link, NULL, NULL);
        free(c);
        on_part_closed(t);
        return;
    }
    if (status != 0) {
        conn_end(c, status, uv_strerror(status));
        return;
    }
    c->link =
        tt_tls_link_client(link, t->cfg.tls, t->name, t->cfg.connect_timeout_ms, on_tls_ready, c);
    if (c->link == NULL)
        conn_end(c, UV_ENOMEM, "cannot start TLS");
}

static int conn_connect(conn *c)
{
    dnsq_https *t = c->t;
    return tt_tcp_connect_start(t->base.loop, (const struct sockaddr *)&t->cfg.addr,
                                t->cfg.connect_timeout_ms, on_connected, c, &c->connecting);
}

static void on_timer(uv_timer_t *h)
{
    dnsq_https *t = h->data;
    if (t->cur == NULL)
        return;
    int rc = conn_connect(t->cur);
    if (rc != 0)
        conn_end(t->cur, rc, uv_strerror(rc));
}

/* A new current connection: its session at once, its connect now or
 * after the back-off. Returns 0 or a negative code. */
static int conn_open(dnsq_https *t)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return UV_ENOMEM;
    c->t = t;
    tt_doh_cfg dc = {.authority = t->authority,
                     .path = t->path,
                     .max_streams = t->cfg.max_queued,
                     .max_answer = TT_DNSQ_MSG_MAX};
    const char *why;
    if (tt_doh_new(&dc, &c->doh, &why) != 0) {
        free(c);
        return UV_ENOMEM;
    }
    uint64_t now = uv_now(t->base.loop);
    int rc = 0;
    if (t->connect_at > now)
        uv_timer_start(&t->timer, on_timer, t->connect_at - now, 0);
    else
        rc = conn_connect(c);
    if (rc != 0) {
        tt_doh_free(c->doh);
        free(c);
        return rc;
    }
    t->cur = c;
    return 0;
}

/* Sends what the sends of this loop turn queued. A failed write is not
 * acted on here: the link reports it through its own error callback. */
static void on_batch(uv_prepare_t *h)
{
    dnsq_https *t = h->data;
    uv_prepare_stop(h);
    if (t->cur && t->cur->up)
        (void)flush(t->cur);
}

static int https_send(tt_dnsq *q, const uint8_t *msg, size_t len)
{
    dnsq_https *t = (dnsq_https *)q;
    if (t->closing)
        return UV_EPIPE;
    if (len == 0 || len > TT_DNSQ_MSG_MAX)
        return UV_EMSGSIZE;
    /* The bound covers a draining connection's queries too. */
    unsigned held = t->draining ? tt_doh_outstanding(t->draining->doh) : 0;
    if (t->cur)
        held += tt_doh_outstanding(t->cur->doh);
    if (held >= t->cfg.max_queued)
        return UV_ENOBUFS;
    if (t->cur == NULL) {
        int rc = conn_open(t);
        if (rc != 0)
            return rc;
    }
    conn *c = t->cur;
    int rc = tt_doh_query(c->doh, msg, len);
    if (rc != 0)
        return rc == -ENOBUFS ? UV_ENOBUFS : rc == -EMSGSIZE ? UV_EMSGSIZE : UV_EPIPE;
    /* The queries of one loop turn (the client sends a burst at once) go
     * out together just before the loop waits: one TLS record and one
     * write for all of them, instead of one per query. */
    if (c->up && !uv_is_active((uv_handle_t *)&t->batch))
        uv_prepare_start(&t->batch, on_batch);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}

static void https_close(tt_dnsq *q, tt_dnsq_close_cb cb, void *ud)
{
    dnsq_https *t = (dnsq_https *)q;
    if (t->closing)
        return;
    t->closing = true;
    t->close_cb = cb;
    t->close_ud = ud;
    t->parts += 3;
    uv_close((uv_handle_t *)&t->timer, on_handle_closed);
    uv_close((uv_handle_t *)&t->watch, on_handle_closed);
    uv_close((uv_handle_t *)&t->batch, on_handle_closed);
    if (t->cur)
        conn_drop(t->cur);
    if (t->draining)
        conn_drop(t->draining);
}

static const tt_dnsq_ops https_ops = {.name = "https", .send = https_send, .close = https_close};

int tt_dnsq_https_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why)
{
    if (cfg->tls == NULL) {
        *why = "DNS over HTTPS needs a TLS client context";
        return UV_EINVAL;
    }
    const char *path = cfg->path ? cfg->path : TT_DOH_DEFAULT_PATH;
    if (path[0] != '/') {
        *why = "a DNS over HTTPS path must begin with '/'";
        return UV_EINVAL;
    }
    dnsq_https *t = calloc(1, sizeof *t);
    if (t == NULL || (t->path = strdup(path)) == NULL) {
        free(t);
        *why = "out of memory";
        return UV_ENOMEM;
    }
    t->cfg = *cfg;
    t->cfg.name = NULL;
    t->cfg.path = NULL;
    if (t->cfg.connect_timeout_ms == 0)
        t->cfg.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    if (t->cfg.max_queued == 0)
        t->cfg.max_queued = QUEUED_MAX;
    const struct sockaddr *sa = (const struct sockaddr *)&cfg->addr;
    char ip[64] = "";
    int port = 0;
    if (sa->sa_family == AF_INET6) {
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    } else {
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof ip);
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    /* The name verified is -n NAME, else the address (an iPAddress). The
     * authority names the same host, as a browser would: a name as is, an
     * IPv6 address in brackets; the port unless it is 443. */
    snprintf(t->name, sizeof t->name, "%s", cfg->name ? cfg->name : ip);
    bool v6 = cfg->name == NULL && sa->sa_family == AF_INET6;
    int n = snprintf(t->authority, sizeof t->authority, "%s%s%s", v6 ? "[" : "", t->name,
                     v6 ? "]" : "");
    if (port != 443 && n > 0 && (size_t)n < sizeof t->authority)
        snprintf(t->authority + n, sizeof t->authority - (size_t)n, ":%d", port);
    tt_tls_ctx_ref(t->cfg.tls);
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    uv_timer_init(loop, &t->watch);
    t->watch.data = t;
    uv_prepare_init(loop, &t->batch);
    t->batch.data = t;
    t->base.ops = &https_ops;
    t->base.loop = loop;
    *out = &t->base;
    return 0;
}
