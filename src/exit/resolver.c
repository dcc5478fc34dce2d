/* The asynchronous stub resolver.
 *
 * A resolution (tt_resolve) holds up to two questions (struct sub), one per
 * address family. Each question lives on its own handles: a UDP socket, a
 * retransmission timer and, after a truncated answer, a TCP socket. The
 * resolution's own timer bounds the whole, and it is also what every
 * outcome decided inside tt_resolve_start or tt_resolve_cancel is reported
 * through: its close callback runs from the loop, so the callback never runs
 * inside those calls. An outcome reached in a libuv callback is reported at
 * once, as the dialer does.
 *
 * Memory is freed once every handle has closed (OPEN counts them); libuv
 * completes pending connect and write requests with UV_ECANCELED before a
 * handle's close callback, so those callbacks still find their memory. */
#include "exit/resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crypto.h"
#include "core/log.h"

struct tt_resolver {
    uv_loop_t *loop;
    struct sockaddr_storage server;
    unsigned retry_ms;
};

enum sub_state { SUB_UDP, SUB_TCP, SUB_DONE };

typedef struct sub {
    tt_resolve *req;
    uint16_t qtype;
    uint16_t id;
    bool edns;
    enum sub_state state;
    int status; /* once done: 0 or a negative libuv code */
    tt_dns_answer ans;
    unsigned retry_ms; /* delay before the next retransmission */
    uv_udp_t udp;
    uv_timer_t timer;
    uv_tcp_t tcp;
    bool udp_open, timer_open, tcp_open; /* initialised and not yet closing */
    uv_connect_t conn;
    uv_write_t wr;
    /* The query, after two bytes that hold its length over TCP. */
    uint8_t query[2 + TT_DNS_QUERY_MAX];
    size_t qlen;
    /* The answer over TCP: its length prefix, then its bytes. */
    uint8_t lenbuf[2];
    size_t have; /* bytes received, prefix included */
    size_t resp_len;
    uint8_t *resp;
} sub;

struct tt_resolve {
    uv_loop_t *loop;
    struct sockaddr_storage server;
    char name[TT_DNS_NAME_MAX + 1];
    uint64_t deadline;
    unsigned retry_ms; /* the first retransmission's delay */
    sub subs[2];
    unsigned nsubs;
    uv_timer_t timer; /* the deadline, then the grace period */
    bool grace;       /* the timer has been cut to the grace period */
    tt_resolve_cb cb;
    void *ud;
    int open; /* handles not yet closed */
    bool finished;
    bool in_api; /* inside tt_resolve_start or tt_resolve_cancel */
    bool reported;
    int status;
    tt_resolve_result result;
};

/* Every UDP socket reads into this one buffer, as every TCP link shares one
 * (src/link/tcp.c): libuv asks for it only when a datagram is waiting, and
 * the answer is parsed before the callback returns. 64 KiB holds any
 * datagram, so none is ever cut. */
static char g_udp_buf[65536];
static bool g_udp_buf_busy;

static void sub_done(sub *s, int status);
static void handle_answer(sub *s, const uint8_t *msg, size_t len, bool over_tcp);

int tt_resolver_new(uv_loop_t *loop, const struct sockaddr *server, const tt_resolver_opts *opts,
                    tt_resolver **out)
{
    size_t salen;
    if (server->sa_family == AF_INET && ((const struct sockaddr_in *)server)->sin_port != 0)
        salen = sizeof(struct sockaddr_in);
    else if (server->sa_family == AF_INET6 && ((const struct sockaddr_in6 *)server)->sin6_port != 0)
        salen = sizeof(struct sockaddr_in6);
    else
        return -EINVAL;
    tt_resolver *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->loop = loop;
    memcpy(&r->server, server, salen);
    r->retry_ms = opts && opts->retry_ms ? opts->retry_ms : TT_RESOLVE_RETRY_MS;
    *out = r;
    return 0;
}

void tt_resolver_free(tt_resolver *r)
{
    free(r);
}

/* Reporting and freeing. */

static void report(tt_resolve *q)
{
    if (q->reported)
        return;
    q->reported = true;
    q->cb(q->ud, q->status, q->status == 0 ? &q->result : NULL);
}

static void release(tt_resolve *q)
{
    if (--q->open > 0)
        return;
    report(q);
    for (unsigned i = 0; i < q->nsubs; i++)
        free(q->subs[i].resp);
    free(q);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(h->data);
}

static void on_sub_handle_closed(uv_handle_t *h)
{
    sub *s = h->data;
    release(s->req);
}

static void close_sub_handle(uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    uv_close(h, on_sub_handle_closed);
}

static void close_sub(sub *s)
{
    close_sub_handle((uv_handle_t *)&s->udp, &s->udp_open);
    close_sub_handle((uv_handle_t *)&s->timer, &s->timer_open);
    close_sub_handle((uv_handle_t *)&s->tcp, &s->tcp_open);
}

static void finish(tt_resolve *q, int status)
{
    if (q->finished)
        return;
    q->finished = true;
    q->status = status;
    for (unsigned i = 0; i < q->nsubs; i++)
        close_sub(&q->subs[i]);
    uv_close((uv_handle_t *)&q->timer, on_timer_closed);
    if (!q->in_api)
        report(q);
}

/* The outcome. */

/* True when the host could send to the IPv6 address A: it has a route and a
 * source address for it. A UDP connect() sends nothing. */
static bool v6_usable(const uint8_t a[16])
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(53);
    memcpy(&sa.sin6_addr, a, 16);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* Interleaves the two families into Q's result (see resolver.h). */
static void build_result(tt_resolve *q)
{
    const tt_dns_answer *v4 = NULL, *v6 = NULL;
    for (unsigned i = 0; i < q->nsubs; i++) {
        const sub *s = &q->subs[i];
        if (s->state != SUB_DONE || s->status != 0)
            continue;
        if (s->qtype == TT_DNS_TYPE_A)
            v4 = &s->ans;
        else
            v6 = &s->ans;
    }
    unsigned n4 = v4 ? v4->naddrs : 0, n6 = v6 ? v6->naddrs : 0;
    bool six = n6 > 0 && (n4 == 0 || v6_usable(v6->addrs[0].addr));
    tt_resolve_result *res = &q->result;
    res->count = 0;
    for (unsigned i = 0; i < n4 || i < n6; i++) {
        if (six && i < n6)
            res->addrs[res->count++] = v6->addrs[i];
        if (i < n4)
            res->addrs[res->count++] = v4->addrs[i];
        if (!six && i < n6)
            res->addrs[res->count++] = v6->addrs[i];
    }
}

/* Ends Q with what its questions have given. Before every question is
 * answered, that is at the deadline or the end of the grace period, an
 * answer still missing counts as a timeout. */
static void conclude(tt_resolve *q)
{
    bool all_done = true, any_addr = false, nodata_only = true;
    int nxdomain = 0, other = 0;
    for (unsigned i = 0; i < q->nsubs; i++) {
        const sub *s = &q->subs[i];
        if (s->state != SUB_DONE) {
            all_done = false;
            continue;
        }
        if (s->status == 0)
            any_addr = true;
        else if (s->status == UV_EAI_NONAME)
            nxdomain = s->status;
        else if (s->status != UV_EAI_NODATA && other == 0)
            other = s->status;
        if (s->status != UV_EAI_NODATA)
            nodata_only = false;
    }
    if (any_addr) {
        build_result(q);
        finish(q, 0);
    } else if (nxdomain) {
        finish(q, nxdomain);
    } else if (!all_done) {
        finish(q, UV_ETIMEDOUT);
    } else if (nodata_only) {
        finish(q, UV_EAI_NODATA);
    } else {
        /* NODATA for one family and an error for the other: the error says
         * more, as the other family might have had addresses. */
        finish(q, other);
    }
}

static void on_deadline(uv_timer_t *t)
{
    conclude(t->data);
}

/* Decides whether Q can end after one of its questions was answered. */
static void progress(tt_resolve *q)
{
    bool all_done = true, any_addr = false, nxdomain = false;
    for (unsigned i = 0; i < q->nsubs; i++) {
        const sub *s = &q->subs[i];
        if (s->state != SUB_DONE)
            all_done = false;
        else if (s->status == 0)
            any_addr = true;
        else if (s->status == UV_EAI_NONAME)
            nxdomain = true;
    }
    /* NXDOMAIN says the name does not exist, whatever the type asked; the
     * other family cannot change that, so it is not waited for. */
    if (all_done || nxdomain) {
        conclude(q);
        return;
    }
    if (any_addr && !q->grace) {
        q->grace = true;
        uint64_t now = uv_now(q->loop);
        if (q->deadline > now + TT_RESOLVE_GRACE_MS)
            uv_timer_start(&q->timer, on_deadline, TT_RESOLVE_GRACE_MS, 0);
    }
}

static void sub_done(sub *s, int status)
{
    s->state = SUB_DONE;
    s->status = status;
    close_sub(s);
    progress(s->req);
}

/* UDP. */

static bool from_server(const tt_resolve *q, const struct sockaddr *sa)
{
    const struct sockaddr *srv = (const struct sockaddr *)&q->server;
    if (sa->sa_family != srv->sa_family)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        const struct sockaddr_in *b = (const struct sockaddr_in *)srv;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)srv;
    return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
}

/* Sends the query once. A full socket buffer is not an error: the next
 * retransmission tries again. */
static int udp_send(sub *s)
{
    uv_buf_t b = uv_buf_init((char *)s->query + 2, (unsigned)s->qlen);
    int rc = uv_udp_try_send(&s->udp, &b, 1, NULL);
    return rc == UV_EAGAIN ? 0 : rc < 0 ? rc : 0;
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    if (g_udp_buf_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    g_udp_buf_busy = true;
    *buf = uv_buf_init(g_udp_buf, sizeof g_udp_buf);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    sub *s = h->data;
    if (buf->base == g_udp_buf)
        g_udp_buf_busy = false;
    if (s->state != SUB_UDP || s->req->finished)
        return;
    if (nread == UV_ENOBUFS)
        return;
    if (nread < 0) {
        /* On a connected socket this is the server's ICMP error (port
         * unreachable): nobody is answering there. */
        tt_debug("resolver: %s: %s", s->req->name, uv_strerror((int)nread));
        sub_done(s, UV_EAI_AGAIN);
        return;
    }
    if (addr == NULL || nread == 0 || (flags & UV_UDP_PARTIAL))
        return;
    if (!from_server(s->req, addr))
        return;
    handle_answer(s, (const uint8_t *)buf->base, (size_t)nread, false);
}

static void on_retry(uv_timer_t *t)
{
    sub *s = t->data;
    if (s->state != SUB_UDP)
        return;
    int rc = udp_send(s);
    if (rc < 0) {
        tt_debug("resolver: %s: %s", s->req->name, uv_strerror(rc));
        sub_done(s, UV_EAI_AGAIN);
        return;
    }
    s->retry_ms = s->retry_ms < 3600000u ? s->retry_ms * 2 : s->retry_ms;
    uv_timer_start(&s->timer, on_retry, s->retry_ms, 0);
}

static int udp_start(sub *s)
{
    tt_resolve *q = s->req;
    int rc = uv_udp_init(q->loop, &s->udp);
    if (rc != 0)
        return rc;
    s->udp.data = s;
    s->udp_open = true;
    q->open++;
    /* Connecting binds the socket to a fresh ephemeral port, which Linux
     * picks at random, and makes the kernel drop datagrams from any other
     * address. */
    rc = uv_udp_connect(&s->udp, (const struct sockaddr *)&q->server);
    if (rc == 0)
        rc = uv_udp_recv_start(&s->udp, on_udp_alloc, on_udp_recv);
    if (rc == 0)
        rc = udp_send(s);
    if (rc != 0)
        return rc;
    uv_timer_start(&s->timer, on_retry, s->retry_ms, 0);
    return 0;
}

/* TCP, after a truncated answer. */

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sub *s = h->data;
    if (s->have < 2) {
        *buf = uv_buf_init((char *)s->lenbuf + s->have, (unsigned)(2 - s->have));
        return;
    }
    if (s->resp == NULL)
        s->resp = malloc(s->resp_len);
    if (s->resp == NULL) {
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    size_t got = s->have - 2;
    *buf = uv_buf_init((char *)s->resp + got, (unsigned)(s->resp_len - got));
}

static void on_tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    sub *s = st->data;
    if (s->state != SUB_TCP || s->req->finished || nread == 0)
        return;
    if (nread < 0) {
        tt_debug("resolver: %s over TCP: %s", s->req->name, uv_strerror((int)nread));
        sub_done(s, UV_EAI_AGAIN);
        return;
    }
    s->have += (size_t)nread;
    if (s->have == 2) {
        s->resp_len = (size_t)s->lenbuf[0] << 8 | s->lenbuf[1];
        if (s->resp_len < TT_DNS_HEADER_LEN) {
            sub_done(s, UV_EAI_FAIL);
            return;
        }
    }
    if (s->have >= 2 && s->have == 2 + s->resp_len) {
        uv_read_stop(st);
        handle_answer(s, s->resp, s->resp_len, true);
    }
}

static void on_tcp_written(uv_write_t *w, int status)
{
    sub *s = w->data;
    if (status < 0 && s->state == SUB_TCP && !s->req->finished) {
        tt_debug("resolver: %s over TCP: %s", s->req->name, uv_strerror(status));
        sub_done(s, UV_EAI_AGAIN);
    }
}

static void on_tcp_connected(uv_connect_t *c, int status)
{
    sub *s = c->data;
    if (s->state != SUB_TCP || s->req->finished)
        return;
    int rc = status;
    if (rc == 0) {
        uv_buf_t b = uv_buf_init((char *)s->query, (unsigned)(s->qlen + 2));
        rc = uv_write(&s->wr, (uv_stream_t *)&s->tcp, &b, 1, on_tcp_written);
    }
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&s->tcp, on_tcp_alloc, on_tcp_read);
    if (rc != 0) {
        tt_debug("resolver: %s over TCP: %s", s->req->name, uv_strerror(rc));
        sub_done(s, UV_EAI_AGAIN);
    }
}

static void tcp_start(sub *s)
{
    tt_resolve *q = s->req;
    /* The UDP socket is of no more use: a late UDP answer would be the
     * same truncated one. */
    close_sub_handle((uv_handle_t *)&s->udp, &s->udp_open);
    uv_timer_stop(&s->timer);
    s->state = SUB_TCP;
    s->query[0] = (uint8_t)(s->qlen >> 8);
    s->query[1] = (uint8_t)s->qlen;
    int rc = uv_tcp_init(q->loop, &s->tcp);
    if (rc == 0) {
        s->tcp.data = s;
        s->tcp_open = true;
        q->open++;
        s->conn.data = s;
        s->wr.data = s;
        rc = uv_tcp_connect(&s->conn, &s->tcp, (const struct sockaddr *)&q->server,
                            on_tcp_connected);
    }
    if (rc != 0) {
        tt_debug("resolver: %s over TCP: %s", q->name, uv_strerror(rc));
        sub_done(s, UV_EAI_AGAIN);
    }
}

/* Answers. */

static void handle_answer(sub *s, const uint8_t *msg, size_t len, bool over_tcp)
{
    tt_resolve *q = s->req;
    const char *why = NULL;
    int rc = tt_dns_response_parse(msg, len, s->id, q->name, s->qtype, &s->ans, &why);
    if (rc != 0) {
        /* Over UDP anyone can send a datagram: an answer that does not fit
         * the query is dropped and the real one awaited. Over TCP the
         * connection is the server's, so a bad answer is the answer. */
        tt_debug("resolver: %s: %s answer: %s", q->name, over_tcp ? "bad" : "ignoring", why);
        if (over_tcp)
            sub_done(s, UV_EAI_FAIL);
        return;
    }
    if (s->ans.truncated) {
        if (over_tcp)
            sub_done(s, UV_EAI_FAIL);
        else
            tcp_start(s);
        return;
    }
    if (s->edns && !over_tcp &&
        (s->ans.rcode == TT_DNS_RCODE_FORMERR || s->ans.rcode == TT_DNS_RCODE_NOTIMP)) {
        /* A server from before EDNS0 (RFC 6891 section 7): ask plainly,
         * under a new id, so that the same refusal of a retransmitted
         * EDNS0 query, arriving late, is not taken for the answer. */
        s->edns = false;
        tt_random(&s->id, sizeof s->id);
        s->qlen = tt_dns_query_encode(s->id, q->name, s->qtype, false, s->query + 2);
        s->retry_ms = q->retry_ms;
        rc = udp_send(s);
        if (rc < 0)
            sub_done(s, UV_EAI_AGAIN);
        else
            uv_timer_start(&s->timer, on_retry, s->retry_ms, 0);
        return;
    }
    switch (s->ans.rcode) {
    case TT_DNS_RCODE_NOERROR:
        sub_done(s, s->ans.naddrs > 0 ? 0 : UV_EAI_NODATA);
        break;
    case TT_DNS_RCODE_NXDOMAIN:
        sub_done(s, UV_EAI_NONAME);
        break;
    case TT_DNS_RCODE_SERVFAIL:
        sub_done(s, UV_EAI_AGAIN);
        break;
    default:
        sub_done(s, UV_EAI_FAIL);
        break;
    }
}

/* Starting and cancelling. */

/* Answers an IP literal without asking anyone. Returns false when NAME is
 * not one. */
static bool literal(tt_resolve *q, const char *name, int family)
{
    tt_dns_addr a;
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, name, a.addr) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, name, a.addr) == 1)
        a.family = AF_INET6;
    else
        return false;
    if (family != AF_UNSPEC && family != a.family) {
        finish(q, UV_EAI_ADDRFAMILY);
        return true;
    }
    q->result.count = 1;
    q->result.addrs[0] = a;
    finish(q, 0);
    return true;
}

int tt_resolve_start(const tt_resolver *r, const char *name, int family, unsigned timeout_ms,
                     tt_resolve_cb cb, void *ud, tt_resolve **req)
{
    if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
        return -EINVAL;
    tt_resolve *q = calloc(1, sizeof *q);
    if (q == NULL)
        return -ENOMEM;
    q->loop = r->loop;
    q->server = r->server;
    q->cb = cb;
    q->ud = ud;
    q->retry_ms = r->retry_ms;
    q->in_api = true;
    if (timeout_ms == 0)
        timeout_ms = TT_RESOLVE_TIMEOUT_MS;
    q->deadline = uv_now(q->loop) + timeout_ms;
    uv_timer_init(q->loop, &q->timer);
    q->timer.data = q;
    q->open = 1;

    size_t n = strlen(name);
    if (n > TT_DNS_NAME_MAX) {
        finish(q, UV_EAI_NONAME);
        goto out;
    }
    memcpy(q->name, name, n + 1);
    if (literal(q, name, family))
        goto out;

    if (family != AF_INET6)
        q->subs[q->nsubs++].qtype = TT_DNS_TYPE_A;
    if (family != AF_INET)
        q->subs[q->nsubs++].qtype = TT_DNS_TYPE_AAAA;
    for (unsigned i = 0; i < q->nsubs; i++) {
        sub *s = &q->subs[i];
        s->req = q;
        s->state = SUB_UDP;
        s->edns = true;
        s->retry_ms = r->retry_ms;
        tt_random(&s->id, sizeof s->id);
        s->qlen = tt_dns_query_encode(s->id, q->name, s->qtype, true, s->query + 2);
        if (s->qlen == 0) {
            /* What getaddrinfo says of a name that cannot be a DNS name. */
            finish(q, UV_EAI_NONAME);
            goto out;
        }
        uv_timer_init(q->loop, &s->timer);
        s->timer.data = s;
        s->timer_open = true;
        q->open++;
    }
    uv_timer_start(&q->timer, on_deadline, timeout_ms, 0);
    for (unsigned i = 0; i < q->nsubs && !q->finished; i++) {
        sub *s = &q->subs[i];
        int rc = udp_start(s);
        if (rc != 0) {
            tt_debug("resolver: %s: %s", q->name, uv_strerror(rc));
            sub_done(s, UV_EAI_AGAIN);
        }
    }
out:
    q->in_api = false;
    if (req)
        *req = q->finished ? NULL : q;
    return 0;
}

void tt_resolve_cancel(tt_resolve *req)
{
    if (req->finished)
        return;
    req->in_api = true;
    finish(req, UV_ECANCELED);
    req->in_api = false;
}
