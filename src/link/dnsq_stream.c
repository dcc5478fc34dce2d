/* DNS queries over TCP (RFC 7766) and over TLS (RFC 7858), link/dnsq.h.
 *
 * One connection to the resolver at a time, opened at the first query and
 * kept while the resolver keeps it: every query is written at once behind
 * its two-byte length (pipelined), and answers come back in whatever order
 * the resolver finishes them; the client matches them by id. Queries sent
 * while the connection is being made wait in a bounded queue and go out
 * when it is up.
 *
 * A connection that ends (the resolver's idle timeout, a reset, a failed
 * handshake) takes its unanswered queries with it: the owner hears so
 * through on_lost and sends what it still needs anew, which opens the next
 * connection. Connections that fail before bringing any answer are
 * retried after a delay that doubles from 100 ms to 10 s, so a resolver
 * that refuses (or a certificate that does not verify) is not hammered. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/dnsframe.h"
#include "core/log.h"
#include "link/dgq.h"
#include "link/dnsq.h"
#include "link/tcp.h"
#include "link/tls.h"

#define CONNECT_TIMEOUT_MS 5000
#define QUEUED_MAX 64
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 10000

typedef struct dnsq_stream {
    tt_dnsq base;
    tt_dnsq_cfg cfg;
    char name[256];       /* TLS: the name verified and sent as SNI */
    tt_tcp_connect *conn; /* a connect in progress */
    tt_link *link;        /* the connection: handshaking (TLS) or up */
    int fd;               /* its TCP socket, for TCP_QUICKACK; -1: none */
    bool up;              /* queries are written as they come */
    bool answered;        /* the current connection brought an answer */
    tt_dgq wait;          /* queries waiting for the connection */
    unsigned nwait, nout; /* queries waiting; written and not answered */
    unsigned backoff_ms;  /* before the next connect; 0: at once */
    uint64_t connect_at;  /* not before this (loop time) */
    uv_timer_t timer;     /* the delayed connect */
    unsigned parts;       /* the timer and links whose close is awaited */
    bool closing;
    tt_dnsq_close_cb close_cb;
    void *close_ud;
    tt_dnsframe fr;
    uint8_t frbuf[TT_DNSQ_MSG_MAX];
} dnsq_stream;

static void maybe_done(dnsq_stream *s)
{
    if (!s->closing || s->parts > 0 || s->conn != NULL)
        return;
    tt_dnsq_close_cb cb = s->close_cb;
    void *ud = s->close_ud;
    tt_tls_ctx_free(s->cfg.tls);
    free(s);
    if (cb)
        cb(ud);
}

static void on_link_closed(void *ud)
{
    dnsq_stream *s = ud;
    s->parts--;
    maybe_done(s);
}

static void drop_link(dnsq_stream *s)
{
    if (s->link == NULL)
        return;
    s->parts++;
    tt_link_close(s->link, on_link_closed, s);
    s->link = NULL;
    s->fd = -1;
    s->up = false;
}

/* The connection is gone (or never came): its queries are lost. From a
 * loop callback only; the handler may close S. */
static void conn_failed(dnsq_stream *s, int err, const char *why)
{
    drop_link(s);
    if (s->answered) {
        s->backoff_ms = 0;
    } else {
        s->backoff_ms = s->backoff_ms == 0                   ? BACKOFF_FIRST_MS
                        : s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                             : s->backoff_ms * 2;
    }
    s->answered = false;
    s->connect_at = uv_now(s->base.loop) + s->backoff_ms;
    tt_dnsframe_init(&s->fr, s->frbuf, sizeof s->frbuf);
    unsigned lost = s->nwait + s->nout;
    tt_dgq_clear(&s->wait);
    s->nwait = s->nout = 0;
    if (lost > 0)
        s->base.handler->on_lost(&s->base, s->base.ud, err, why);
}

static int write_query(dnsq_stream *s, const uint8_t *msg, size_t len)
{
    uint8_t pre[2];
    tt_dnsframe_prefix(pre, len);
    uv_buf_t b[2] = {uv_buf_init((char *)pre, 2),
                     uv_buf_init((char *)(uintptr_t)msg, (unsigned)len)};
    return tt_link_write(s->link, b, 2);
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    dnsq_stream *s = ud;
    /* Resolvers write each answer as it is ready, most with Nagle on
     * (unbound does): an answer written while the one before is not yet
     * acknowledged waits for our ACK, which Linux delays up to 40 ms when
     * we have no query to send at once. Acknowledging every read at once
     * keeps the answers flowing; the kernel turns quick ACKs off again by
     * itself, hence once per read. */
    if (s->fd >= 0)
        (void)setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &(int){1}, sizeof(int));
    while (len > 0) {
        const uint8_t *msg;
        size_t mlen;
        size_t used = tt_dnsframe_feed(&s->fr, data, len, &msg, &mlen);
        data += used;
        len -= used;
        if (msg == NULL)
            continue;
        if (s->nout > 0)
            s->nout--;
        s->answered = true;
        s->backoff_ms = 0;
        s->base.handler->on_answer(&s->base, s->base.ud, msg, mlen);
        /* The handler may have closed the transport. */
        if (s->closing || s->link != l)
            return;
    }
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    dnsq_stream *s = ud;
    tt_debug("dns client: the resolver closed its %s connection (%u queries unanswered)",
             s->base.ops->name, s->nout);
    /* A close before any answer is a refusal, not an idle timeout. */
    conn_failed(s, UV_EOF, s->answered ? NULL : "the resolver closed the connection unanswered");
}

static void on_error(tt_link *l, void *ud, int err)
{
    dnsq_stream *s = ud;
    char buf[256];
    const char *why = tt_tls_link_is(l) && tt_tls_link_failure(l) != TT_TLS_FAIL_NONE
                          ? tt_tls_link_why(l, buf, sizeof buf)
                          : uv_strerror(err);
    tt_debug("dns client: %s connection to the resolver: %s", s->base.ops->name, why);
    conn_failed(s, err, why);
}

static const tt_link_handler link_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
};

/* The connection is ready: what waited goes out. */
static void conn_up(dnsq_stream *s)
{
    tt_link_set_handler(s->link, &link_handler, s);
    int rc = tt_link_read_start(s->link);
    s->up = true;
    for (tt_dgq_item *it; rc == 0 && (it = tt_dgq_pop(&s->wait)) != NULL;) {
        rc = write_query(s, it->data, it->len);
        free(it);
        s->nwait--;
        s->nout++;
    }
    if (rc != 0)
        conn_failed(s, rc, uv_strerror(rc));
}

static void on_tls_ready(void *ud, tt_link *link, int status)
{
    dnsq_stream *s = ud;
    if (status == 0) {
        conn_up(s);
        return;
    }
    char buf[256];
    const char *why = tt_tls_link_why(link, buf, sizeof buf);
    conn_failed(s, status, why);
}

static void on_connected(void *ud, int status, tt_link *link)
{
    dnsq_stream *s = ud;
    s->conn = NULL;
    if (s->closing) {
        if (link)
            tt_link_close(link, NULL, NULL);
        maybe_done(s);
        return;
    }
    if (status != 0) {
        conn_failed(s, status, uv_strerror(status));
        return;
    }
    uv_tcp_t *tcp = tt_tcp_link_handle(link);
    uv_os_fd_t fd;
    s->fd = tcp != NULL && uv_fileno((uv_handle_t *)tcp, &fd) == 0 ? fd : -1;
    if (s->cfg.kind == TT_DNSQ_TLS) {
        s->link = tt_tls_link_client(link, s->cfg.tls, s->name, s->cfg.connect_timeout_ms,
                                     on_tls_ready, s);
        if (s->link == NULL)
            conn_failed(s, UV_ENOMEM, "cannot start TLS");
        return;
    }
    s->link = link;
    conn_up(s);
}

static int start_connect(dnsq_stream *s)
{
    return tt_tcp_connect_start(s->base.loop, (const struct sockaddr *)&s->cfg.addr,
                                s->cfg.connect_timeout_ms, on_connected, s, &s->conn);
}

static void on_timer(uv_timer_t *t)
{
    dnsq_stream *s = t->data;
    int rc = start_connect(s);
    if (rc != 0)
        conn_failed(s, rc, uv_strerror(rc));
}

static int stream_send(tt_dnsq *q, const uint8_t *msg, size_t len)
{
    dnsq_stream *s = (dnsq_stream *)q;
    if (s->closing)
        return UV_EPIPE;
    if (len == 0 || len > TT_DNSQ_MSG_MAX)
        return UV_EMSGSIZE;
    if (s->nwait + s->nout >= s->cfg.max_queued)
        return UV_ENOBUFS;
    if (s->up) {
        int rc = write_query(s, msg, len);
        if (rc == 0)
            s->nout++;
        return rc;
    }
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)msg, (unsigned)len);
    int rc = tt_dgq_push(&s->wait, &b, 1, (size_t)s->cfg.max_queued * TT_DNSQ_MSG_MAX);
    if (rc != 0)
        return rc;
    s->nwait++;
    if (s->link != NULL || s->conn != NULL || uv_is_active((uv_handle_t *)&s->timer))
        return 0; /* a connection is coming */
    uint64_t now = uv_now(s->base.loop);
    if (s->connect_at > now) {
        uv_timer_start(&s->timer, on_timer, s->connect_at - now, 0);
        return 0;
    }
    rc = start_connect(s);
    if (rc != 0) {
        /* Not accepted: the query just queued is the only one waiting. */
        tt_dgq_clear(&s->wait);
        s->nwait = 0;
    }
    return rc;
}

static void on_timer_closed(uv_handle_t *h)
{
    dnsq_stream *s = h->data;
    s->parts--;
    maybe_done(s);
}

static void stream_close(tt_dnsq *q, tt_dnsq_close_cb cb, void *ud)
{
    dnsq_stream *s = (dnsq_stream *)q;
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_ud = ud;
    tt_dgq_clear(&s->wait);
    s->parts++;
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    drop_link(s);
    if (s->conn)
        tt_tcp_connect_cancel(s->conn);
}

static const tt_dnsq_ops tcp_ops = {.name = "tcp", .send = stream_send, .close = stream_close};
static const tt_dnsq_ops tls_ops = {.name = "tls", .send = stream_send, .close = stream_close};

int tt_dnsq_stream_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why)
{
    if (cfg->kind == TT_DNSQ_TLS && cfg->tls == NULL) {
        *why = "DNS over TLS needs a TLS client context";
        return UV_EINVAL;
    }
    dnsq_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        *why = "out of memory";
        return UV_ENOMEM;
    }
    s->cfg = *cfg;
    s->cfg.name = NULL;
    s->cfg.path = NULL;
    if (s->cfg.connect_timeout_ms == 0)
        s->cfg.connect_timeout_ms = CONNECT_TIMEOUT_MS;
    if (s->cfg.max_queued == 0)
        s->cfg.max_queued = QUEUED_MAX;
    if (cfg->name != NULL) {
        snprintf(s->name, sizeof s->name, "%s", cfg->name);
    } else {
        /* The address itself: verified as an iPAddress. */
        const struct sockaddr *sa = (const struct sockaddr *)&cfg->addr;
        if (sa->sa_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)sa, s->name, sizeof s->name);
        else
            uv_ip4_name((const struct sockaddr_in *)sa, s->name, sizeof s->name);
    }
    if (s->cfg.tls)
        tt_tls_ctx_ref(s->cfg.tls);
    tt_dnsframe_init(&s->fr, s->frbuf, sizeof s->frbuf);
    s->fd = -1;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->base.ops = cfg->kind == TT_DNSQ_TLS ? &tls_ops : &tcp_ops;
    s->base.loop = loop;
    *out = &s->base;
    return 0;
}
