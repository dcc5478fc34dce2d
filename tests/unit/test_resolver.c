/* Tests of the asynchronous resolver and of the dialer using it. A small DNS
 * server runs on 127.0.0.1 in the test's own loop (UDP and TCP on one port);
 * what it does depends on the name asked:
 *
 *   svc.test      A 127.0.0.1, no AAAA
 *   both.test     A 127.0.0.1 127.0.0.2, AAAA ::1 ::2
 *   cname.test    CNAME svc.test, and svc.test's A
 *   drop.test     as svc.test, but the first query of each type is dropped
 *   tc.test       over UDP: TC set and nothing else; over TCP: A 127.0.0.3
 *   nx.test       NXDOMAIN
 *   nxa.test      NXDOMAIN for A, nothing at all for AAAA
 *   servfail.test SERVFAIL
 *   silent.test   nothing at all
 *   tcfail.test   over UDP: TC set; over TCP: the connection closed unanswered
 *   formerr.test  FORMERR to a query with EDNS0, sent twice (as to a query and
 *                 its retransmission), A 127.0.0.4 to one without
 *   spoof.test    first a forged answer from another port, then one with a
 *                 wrong id, then the real one: A 127.0.0.5
 *   noaaaa.test   A 127.0.0.1, nothing at all for AAAA
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "codec/dns.h"
#include "codec/socks5.h"
#include "exit/dial.h"
#include "exit/resolver.h"
#include "link/tcp.h"
#include "memlink.h"

/* Most tests must not see a retransmission, so they use a resolver that
 * waits a second for one; those about retransmission use a quick one, and
 * assert only what a stalled test machine cannot change. */
#define SLOW_RETRY_MS 1000
#define RETRY_MS 50

static uv_loop_t loop;

/* The test server. */

typedef struct tcp_conn {
    uv_tcp_t tcp;
    uint8_t buf[2 + 512];
    size_t have;
    uv_write_t wr;
    uint8_t out[2 + 1024];
} tcp_conn;

static struct {
    uv_udp_t udp;
    uv_udp_t other; /* a second socket: answers from a wrong port */
    uv_tcp_t tcp;
    int port;
    unsigned udp_queries;
    unsigned udp_edns_queries;
    unsigned tcp_queries;
    unsigned drop_seen[2];
} srv;

static tt_resolver *resolver;
static bool in_api; /* inside a call that must not call back */

typedef struct reply {
    uint8_t b[1024];
    size_t n;
} reply;

static void put(reply *r, const void *p, size_t n)
{
    cr_assert_leq(r->n + n, sizeof r->b);
    memcpy(r->b + r->n, p, n);
    r->n += n;
}

static void put16(reply *r, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(r, b, 2);
}

/* A record owned by the question's name (a pointer to offset 12). */
static void rec(reply *r, unsigned type, const void *data, size_t len)
{
    put16(r, 0xC00C);
    put16(r, type);
    put16(r, TT_DNS_CLASS_IN);
    put16(r, 0);
    put16(r, 60);
    put16(r, (unsigned)len);
    put(r, data, len);
}

static void rec_a(reply *r, const char *ip)
{
    uint8_t a[4];
    cr_assert_eq(inet_pton(AF_INET, ip, a), 1);
    rec(r, TT_DNS_TYPE_A, a, 4);
}

static void rec_aaaa(reply *r, const char *ip)
{
    uint8_t a[16];
    cr_assert_eq(inet_pton(AF_INET6, ip, a), 1);
    rec(r, TT_DNS_TYPE_AAAA, a, 16);
}

/* The parts of a query the server looks at. */
typedef struct query {
    uint16_t id;
    char name[256];
    uint16_t qtype;
    bool edns;
    size_t qend; /* end of the question */
} query;

static bool read_query(const uint8_t *b, size_t n, query *q)
{
    if (n < 12)
        return false;
    q->id = (uint16_t)(b[0] << 8 | b[1]);
    q->edns = b[11] != 0;
    size_t p = 12, o = 0;
    while (p < n && b[p] != 0) {
        size_t len = b[p];
        if (len > 63 || p + 1 + len >= n || o + len + 1 >= sizeof q->name)
            return false;
        if (o)
            q->name[o++] = '.';
        for (size_t i = 0; i < len; i++) {
            char c = (char)b[p + 1 + i];
            q->name[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        p += 1 + len;
    }
    q->name[o] = '\0';
    if (p + 5 > n)
        return false;
    q->qtype = (uint16_t)(b[p + 1] << 8 | b[p + 2]);
    q->qend = p + 5;
    return true;
}

/* Starts a reply to Q (whose bytes are B) with RCODE and flags. */
static void begin(reply *r, const query *q, const uint8_t *b, unsigned rcode, bool tc)
{
    r->n = 0;
    put(r, b, q->qend);
    r->b[2] = (uint8_t)(0x81 | (tc ? 0x02 : 0));
    r->b[3] = (uint8_t)(0x80 | rcode);
    memset(r->b + 6, 0, 6);
}

static void set_count(reply *r, unsigned an)
{
    r->b[6] = (uint8_t)(an >> 8);
    r->b[7] = (uint8_t)an;
}

/* Fills R with the server's answer to the query in B. Returns false to stay
 * silent. */
static bool respond(const uint8_t *b, size_t n, bool over_tcp, reply *r)
{
    query q;
    if (!read_query(b, n, &q))
        return false;
    bool a = q.qtype == TT_DNS_TYPE_A;
    const char *name = q.name;
    if (strcmp(name, "silent.test") == 0)
        return false;
    if (strcmp(name, "drop.test") == 0) {
        if (srv.drop_seen[a ? 0 : 1]++ == 0)
            return false;
        name = "svc.test";
    }
    if ((strcmp(name, "nxa.test") == 0 || strcmp(name, "noaaaa.test") == 0) && !a)
        return false;
    if (strcmp(name, "nx.test") == 0 || strcmp(name, "nxa.test") == 0) {
        begin(r, &q, b, TT_DNS_RCODE_NXDOMAIN, false);
        return true;
    }
    if (strcmp(name, "servfail.test") == 0) {
        begin(r, &q, b, TT_DNS_RCODE_SERVFAIL, false);
        return true;
    }
    if (strcmp(name, "formerr.test") == 0 && q.edns) {
        begin(r, &q, b, TT_DNS_RCODE_FORMERR, false);
        return true;
    }
    if (strcmp(name, "tcfail.test") == 0 && over_tcp)
        return false;
    if ((strcmp(name, "tc.test") == 0 || strcmp(name, "tcfail.test") == 0) && !over_tcp) {
        begin(r, &q, b, 0, true);
        return true;
    }
    begin(r, &q, b, 0, false);
    unsigned an = 0;
    if (strcmp(name, "svc.test") == 0 || strcmp(name, "noaaaa.test") == 0) {
        if (a) {
            rec_a(r, "127.0.0.1");
            an++;
        }
    } else if (strcmp(name, "both.test") == 0) {
        if (a) {
            rec_a(r, "127.0.0.1");
            rec_a(r, "127.0.0.2");
        } else {
            rec_aaaa(r, "::1");
            rec_aaaa(r, "::2");
        }
        an = 2;
    } else if (strcmp(name, "cname.test") == 0) {
        static const uint8_t target[] = {3, 's', 'v', 'c', 0xC0, 18}; /* "svc" + "test" */
        rec(r, TT_DNS_TYPE_CNAME, target, sizeof target);
        an++;
        if (a) {
            size_t owner = r->n - sizeof target;
            put16(r, 0xC000 | (unsigned)owner);
            put16(r, TT_DNS_TYPE_A);
            put16(r, 1);
            put16(r, 0);
            put16(r, 60);
            put16(r, 4);
            put(r, "\x7f\0\0\x01", 4);
            an++;
        }
    } else if (strcmp(name, "tc.test") == 0) {
        if (a) {
            rec_a(r, "127.0.0.3");
            an++;
        }
    } else if (strcmp(name, "formerr.test") == 0) {
        if (a) {
            rec_a(r, "127.0.0.4");
            an++;
        }
    } else if (strcmp(name, "spoof.test") == 0) {
        if (a) {
            rec_a(r, "127.0.0.5");
            an++;
        }
    } else {
        r->b[3] = 0x80 | TT_DNS_RCODE_NXDOMAIN;
    }
    set_count(r, an);
    return true;
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char b[2048];
    *buf = uv_buf_init(b, sizeof b);
}

static void udp_reply(uv_udp_t *from, reply *r, const struct sockaddr *to)
{
    uv_buf_t b = uv_buf_init((char *)r->b, (unsigned)r->n);
    cr_assert_eq(uv_udp_try_send(from, &b, 1, to), (int)r->n);
}

static void srv_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
    (void)h;
    (void)flags;
    if (nread <= 0 || addr == NULL)
        return;
    const uint8_t *b = (const uint8_t *)buf->base;
    srv.udp_queries++;
    if ((size_t)nread > 11 && b[11] != 0)
        srv.udp_edns_queries++;
    reply r;
    if (!respond(b, (size_t)nread, false, &r))
        return;
    query q;
    cr_assert(read_query(b, (size_t)nread, &q));
    if (strcmp(q.name, "spoof.test") == 0) {
        /* A forged answer from another port: the right id, a wrong address. */
        reply f = r;
        f.b[f.n - 4] = 6;
        udp_reply(&srv.other, &f, addr);
        /* From the right port, with a wrong id. */
        f.b[0] ^= 0xFF;
        f.b[f.n - 4] = 7;
        udp_reply(&srv.udp, &f, addr);
    }
    if (strcmp(q.name, "formerr.test") == 0 && q.edns)
        udp_reply(&srv.udp, &r, addr);
    udp_reply(&srv.udp, &r, addr);
}

static void conn_closed(uv_handle_t *h)
{
    free(h);
}

static void conn_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, conn_closed);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tcp_conn *c = (tcp_conn *)h;
    *buf = uv_buf_init((char *)c->buf + c->have, (unsigned)(sizeof c->buf - c->have));
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    tcp_conn *c = (tcp_conn *)s;
    if (nread < 0) {
        uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    c->have += (size_t)nread;
    if (c->have < 2)
        return;
    size_t len = (size_t)c->buf[0] << 8 | c->buf[1];
    if (c->have < 2 + len)
        return;
    uv_read_stop(s);
    srv.tcp_queries++;
    reply r;
    if (!respond(c->buf + 2, len, true, &r)) {
        uv_close((uv_handle_t *)s, conn_closed);
        return;
    }
    c->out[0] = (uint8_t)(r.n >> 8);
    c->out[1] = (uint8_t)r.n;
    memcpy(c->out + 2, r.b, r.n);
    uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)(r.n + 2));
    cr_assert_eq(uv_write(&c->wr, s, &b, 1, conn_written), 0);
}

static void srv_accept(uv_stream_t *server, int status)
{
    cr_assert_eq(status, 0);
    tcp_conn *c = calloc(1, sizeof *c);
    uv_tcp_init(&loop, &c->tcp);
    cr_assert_eq(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

static int bound_port(const uv_handle_t *h)
{
    struct sockaddr_in sa;
    int len = sizeof sa;
    if (h->type == UV_UDP)
        cr_assert_eq(uv_udp_getsockname((const uv_udp_t *)h, (struct sockaddr *)&sa, &len), 0);
    else
        cr_assert_eq(uv_tcp_getsockname((const uv_tcp_t *)h, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

static void server_start(void)
{
    memset(&srv, 0, sizeof srv);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    cr_assert_eq(uv_udp_init(&loop, &srv.other), 0);
    cr_assert_eq(uv_udp_bind(&srv.other, (struct sockaddr *)&sa, 0), 0);
    /* UDP takes a free port; TCP must get the same one, which another
     * program may hold, so try a few. */
    for (int tries = 0; tries < 20; tries++) {
        uv_ip4_addr("127.0.0.1", 0, &sa);
        cr_assert_eq(uv_udp_init(&loop, &srv.udp), 0);
        cr_assert_eq(uv_udp_bind(&srv.udp, (struct sockaddr *)&sa, 0), 0);
        srv.port = bound_port((uv_handle_t *)&srv.udp);
        uv_ip4_addr("127.0.0.1", srv.port, &sa);
        cr_assert_eq(uv_tcp_init(&loop, &srv.tcp), 0);
        if (uv_tcp_bind(&srv.tcp, (struct sockaddr *)&sa, 0) == 0 &&
            uv_listen((uv_stream_t *)&srv.tcp, 16, srv_accept) == 0)
            break;
        uv_close((uv_handle_t *)&srv.udp, NULL);
        uv_close((uv_handle_t *)&srv.tcp, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
        srv.port = 0;
    }
    cr_assert_neq(srv.port, 0, "no port free for both UDP and TCP");
    cr_assert_eq(uv_udp_recv_start(&srv.udp, srv_alloc, srv_recv), 0);
}

static void make_resolver(int port, unsigned retry_ms)
{
    if (resolver)
        tt_resolver_free(resolver);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    tt_resolver_opts o = {.retry_ms = retry_ms};
    cr_assert_eq(tt_resolver_new(&loop, (struct sockaddr *)&sa, &o, &resolver), 0);
}

static void setup(void)
{
    uv_loop_init(&loop);
    server_start();
    make_resolver(srv.port, SLOW_RETRY_MS);
}

static void teardown(void)
{
    if (resolver)
        tt_resolver_free(resolver);
    resolver = NULL;
    uv_close((uv_handle_t *)&srv.udp, NULL);
    uv_close((uv_handle_t *)&srv.other, NULL);
    uv_close((uv_handle_t *)&srv.tcp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
}

TestSuite(resolver, .init = setup, .fini = teardown, .timeout = 30);

#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
    } while (0)

/* Resolutions. */

typedef struct outcome {
    int calls;
    int status;
    tt_resolve_result res;
    uint64_t at; /* loop time of the callback */
} outcome;

static void on_resolved(void *ud, int status, const tt_resolve_result *res)
{
    outcome *o = ud;
    cr_assert_not(in_api, "callback inside the call");
    o->calls++;
    o->status = status;
    o->at = uv_now(&loop);
    if (status == 0) {
        cr_assert_not_null(res);
        cr_assert(res->count >= 1 && res->count <= TT_RESOLVE_MAX_ADDRS);
        o->res = *res;
    } else {
        cr_assert_null(res);
    }
}

static tt_resolve *start(const char *name, int family, unsigned timeout_ms, outcome *o)
{
    memset(o, 0, sizeof *o);
    tt_resolve *req = NULL;
    in_api = true;
    cr_assert_eq(tt_resolve_start(resolver, name, family, timeout_ms, on_resolved, o, &req), 0);
    in_api = false;
    cr_assert_eq(o->calls, 0);
    return req;
}

/* Resolves NAME and returns the outcome once the callback has run. */
static outcome resolve(const char *name, int family, unsigned timeout_ms)
{
    outcome o;
    start(name, family, timeout_ms, &o);
    RUN_UNTIL(o.calls > 0);
    return o;
}

static void assert_addr(const tt_dns_addr *a, const char *ip)
{
    uint8_t want[16] = {0};
    int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
    cr_assert_eq(inet_pton(family, ip, want), 1);
    cr_assert_eq(a->family, family, "%s", ip);
    cr_assert_arr_eq(a->addr, want, family == AF_INET ? 4 : 16, "%s", ip);
}

Test(resolver, a_record)
{
    outcome o = resolve("svc.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, 0, "%s", uv_strerror(o.status));
    cr_assert_eq(o.res.count, 1);
    assert_addr(&o.res.addrs[0], "127.0.0.1");
    cr_assert_eq(srv.udp_queries, 2); /* A and AAAA, at once */
    cr_assert_eq(srv.udp_edns_queries, 2);
    cr_assert_eq(srv.tcp_queries, 0);
}

Test(resolver, family_hint)
{
    outcome o = resolve("both.test", AF_INET, 3000);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.res.count, 2);
    assert_addr(&o.res.addrs[0], "127.0.0.1");
    assert_addr(&o.res.addrs[1], "127.0.0.2");
    cr_assert_eq(srv.udp_queries, 1);

    o = resolve("both.test", AF_INET6, 3000);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.res.count, 2);
    assert_addr(&o.res.addrs[0], "::1");
    assert_addr(&o.res.addrs[1], "::2");

    o = resolve("svc.test", AF_INET6, 3000);
    cr_assert_eq(o.status, UV_EAI_NODATA);
}

Test(resolver, families_interleaved)
{
    outcome o = resolve("both.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.res.count, 4);
    /* IPv6 leads only when the host can reach ::1 (it has loopback IPv6);
     * either way the families alternate, each in the server's order. */
    bool six = o.res.addrs[0].family == AF_INET6;
    const char *v4[] = {"127.0.0.1", "127.0.0.2"}, *v6[] = {"::1", "::2"};
    for (int i = 0; i < 4; i++) {
        bool is6 = (i % 2 == 0) == six;
        assert_addr(&o.res.addrs[i], is6 ? v6[i / 2] : v4[i / 2]);
    }
}

Test(resolver, cname)
{
    outcome o = resolve("cname.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, 0, "%s", uv_strerror(o.status));
    cr_assert_eq(o.res.count, 1);
    assert_addr(&o.res.addrs[0], "127.0.0.1");
}

Test(resolver, retransmits_a_lost_query)
{
    make_resolver(srv.port, RETRY_MS);
    uint64_t t0 = uv_now(&loop);
    outcome o = resolve("drop.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, 0, "%s", uv_strerror(o.status));
    assert_addr(&o.res.addrs[0], "127.0.0.1");
    cr_assert_geq(srv.udp_queries, 4);
    cr_assert_geq(o.at - t0, RETRY_MS);
    cr_assert_lt(o.at - t0, SLOW_RETRY_MS);
}

Test(resolver, truncated_answer_asked_over_tcp)
{
    outcome o = resolve("tc.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, 0, "%s", uv_strerror(o.status));
    cr_assert_eq(o.res.count, 1);
    assert_addr(&o.res.addrs[0], "127.0.0.3");
    cr_assert_eq(srv.tcp_queries, 2);
    cr_assert_eq(srv.udp_queries, 2);
}

Test(resolver, tcp_without_answer)
{
    outcome o = resolve("tcfail.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_AGAIN, "%s", uv_strerror(o.status));
    cr_assert_eq(srv.tcp_queries, 2);
}

Test(resolver, nxdomain)
{
    outcome o = resolve("nx.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_NONAME);
}

Test(resolver, nxdomain_ends_without_the_other_family)
{
    uint64_t t0 = uv_now(&loop);
    outcome o = resolve("nxa.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_NONAME);
    cr_assert_lt(o.at - t0, 1000);
}

Test(resolver, servfail)
{
    outcome o = resolve("servfail.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_AGAIN);
}

Test(resolver, timeout)
{
    make_resolver(srv.port, RETRY_MS);
    uint64_t t0 = uv_now(&loop);
    outcome o = resolve("silent.test", AF_UNSPEC, 300);
    cr_assert_eq(o.status, UV_ETIMEDOUT);
    cr_assert_geq(o.at - t0, 300);
    /* Sent at 0, 50 and 150 ms (the next would be at 350), per family; a
     * stalled machine may delay a retransmission past the deadline. */
    cr_assert_geq(srv.udp_queries, 4);
    cr_assert_leq(srv.udp_queries, 6);
}

Test(resolver, edns_refused_then_plain)
{
    outcome o = resolve("formerr.test", AF_INET, 3000);
    cr_assert_eq(o.status, 0, "%s", uv_strerror(o.status));
    assert_addr(&o.res.addrs[0], "127.0.0.4");
    /* The second FORMERR, arriving after the plain query went out, is not
     * taken for the answer to it. */
    cr_assert_eq(srv.udp_queries, 2);
    cr_assert_eq(srv.udp_edns_queries, 1);
}

Test(resolver, forged_answers_ignored)
{
    outcome o = resolve("spoof.test", AF_INET, 3000);
    cr_assert_eq(o.status, 0, "%s", uv_strerror(o.status));
    cr_assert_eq(o.res.count, 1);
    assert_addr(&o.res.addrs[0], "127.0.0.5");
}

Test(resolver, missing_family_waits_only_the_grace)
{
    uint64_t t0 = uv_now(&loop);
    outcome o = resolve("noaaaa.test", AF_UNSPEC, 5000);
    cr_assert_eq(o.status, 0, "%s", uv_strerror(o.status));
    cr_assert_eq(o.res.count, 1);
    assert_addr(&o.res.addrs[0], "127.0.0.1");
    cr_assert_geq(o.at - t0, TT_RESOLVE_GRACE_MS);
    cr_assert_lt(o.at - t0, 2000);
}

static void cancel_later(uv_timer_t *t)
{
    tt_resolve_cancel(t->data);
}

Test(resolver, cancel)
{
    make_resolver(srv.port, RETRY_MS);
    outcome o;
    tt_resolve *req = start("silent.test", AF_UNSPEC, 3000, &o);
    cr_assert_not_null(req);
    RUN_UNTIL(srv.udp_queries >= 2);
    in_api = true;
    tt_resolve_cancel(req);
    in_api = false;
    cr_assert_eq(o.calls, 0);
    RUN_UNTIL(o.calls > 0);
    cr_assert_eq(o.status, UV_ECANCELED);

    /* Cancelled from a callback, after retransmissions. */
    req = start("silent.test", AF_UNSPEC, 3000, &o);
    static uv_timer_t t; /* closes after the test returns */
    uv_timer_init(&loop, &t);
    t.data = req;
    uv_timer_start(&t, cancel_later, 2 * RETRY_MS + 10, 0);
    RUN_UNTIL(o.calls > 0);
    cr_assert_eq(o.status, UV_ECANCELED);
    uv_close((uv_handle_t *)&t, NULL);
}

static void stop_loop(uv_timer_t *t)
{
    (void)t;
}

Test(resolver, nothing_sent_after_cancel)
{
    make_resolver(srv.port, RETRY_MS);
    outcome o;
    tt_resolve *req = start("silent.test", AF_UNSPEC, 3000, &o);
    RUN_UNTIL(srv.udp_queries >= 2);
    unsigned sent = srv.udp_queries;
    tt_resolve_cancel(req);
    static uv_timer_t t; /* closes after the test returns */
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_loop, 4 * RETRY_MS, 0);
    uv_run(&loop, UV_RUN_ONCE);
    while (uv_is_active((uv_handle_t *)&t))
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    cr_assert_eq(o.calls, 1);
    cr_assert_eq(o.status, UV_ECANCELED);
    cr_assert_eq(srv.udp_queries, sent);
}

Test(resolver, literals_are_not_asked)
{
    outcome o = resolve("127.0.0.9", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.res.count, 1);
    assert_addr(&o.res.addrs[0], "127.0.0.9");
    o = resolve("2001:db8::7", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, 0);
    assert_addr(&o.res.addrs[0], "2001:db8::7");
    o = resolve("::1", AF_INET, 3000);
    cr_assert_eq(o.status, UV_EAI_ADDRFAMILY);
    cr_assert_eq(srv.udp_queries, 0);
}

Test(resolver, invalid_names)
{
    outcome o = resolve("a..b", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_NONAME);
    o = resolve("", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_NONAME);
    char long_name[300];
    memset(long_name, 'a', 299);
    long_name[299] = '\0';
    o = resolve(long_name, AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_NONAME);
    cr_assert_eq(srv.udp_queries, 0);
    cr_assert_eq(tt_resolve_start(resolver, "x", AF_UNIX, 0, on_resolved, &o, NULL), -EINVAL);
}

Test(resolver, unreachable_server)
{
    /* A port nobody listens on: the kernel's ICMP answer ends it at once. */
    uv_udp_t u;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_udp_init(&loop, &u);
    cr_assert_eq(uv_udp_bind(&u, (struct sockaddr *)&sa, 0), 0);
    int port = bound_port((uv_handle_t *)&u);
    uv_close((uv_handle_t *)&u, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    make_resolver(port, SLOW_RETRY_MS);

    uint64_t t0 = uv_now(&loop);
    outcome o = resolve("svc.test", AF_UNSPEC, 3000);
    cr_assert_eq(o.status, UV_EAI_AGAIN, "%s", uv_strerror(o.status));
    cr_assert_lt(o.at - t0, 1000);
}

Test(resolver, resolver_freed_while_resolving)
{
    make_resolver(srv.port, RETRY_MS);
    outcome o;
    start("drop.test", AF_UNSPEC, 3000, &o);
    tt_resolver_free(resolver);
    resolver = NULL;
    RUN_UNTIL(o.calls > 0);
    cr_assert_eq(o.status, 0);
}

Test(resolver, bad_servers)
{
    tt_resolver *r = NULL;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    cr_assert_eq(tt_resolver_new(&loop, (struct sockaddr *)&sa, NULL, &r), -EINVAL);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    cr_assert_eq(tt_resolver_new(&loop, (struct sockaddr *)&ss, NULL, &r), -EINVAL);
    struct sockaddr_in6 s6;
    uv_ip6_addr("::1", 53, &s6);
    cr_assert_eq(tt_resolver_new(&loop, (struct sockaddr *)&s6, NULL, &r), 0);
    tt_resolver_free(r);
}

/* Dialing through the resolver. */

static tt_tcp_listener *listener;
static int accepted;

static void on_accept(void *ud, tt_link *l)
{
    (void)ud;
    accepted++;
    tt_link_close(l, NULL, NULL);
}

typedef struct dialed {
    int calls;
    uint8_t rep;
    int err;
} dialed;

static void on_dialed(void *ud, uint8_t rep, int err, tt_link *link)
{
    dialed *d = ud;
    cr_assert_not(in_api, "dial callback inside the call");
    d->calls++;
    d->rep = rep;
    d->err = err;
    if (link)
        tt_link_close(link, NULL, NULL);
}

static int listen_port(void)
{
    accepted = 0;
    cr_assert_eq(tt_tcp_listen(&loop, "127.0.0.1", 0, on_accept, NULL, &listener), 0);
    return tt_tcp_listener_port(listener);
}

static tt_dial *dial(const char *host, int port, const tt_acl *acl, unsigned timeout_ms, dialed *d)
{
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = TT_TARGET_NAME;
    t.port = (uint16_t)port;
    t.name_len = (uint8_t)strlen(host);
    strcpy(t.u.name, host);
    tt_dial_opts opts = {.acl = acl, .timeout_ms = timeout_ms, .resolver = resolver};
    memset(d, 0, sizeof *d);
    tt_dial *h = NULL;
    in_api = true;
    cr_assert_eq(tt_dial_start(&loop, &t, &opts, on_dialed, d, &h), 0);
    in_api = false;
    return h;
}

Test(resolver, dial_by_name)
{
    int port = listen_port();
    dialed d;
    dial("svc.test", port, NULL, 3000, &d);
    RUN_UNTIL(d.calls > 0);
    cr_assert_eq(d.rep, TT_S5_REP_OK, "rep %d err %s", d.rep, uv_strerror(d.err));
    RUN_UNTIL(accepted == 1);
    cr_assert_eq(srv.udp_queries, 2);
    tt_tcp_listener_close(listener);
}

Test(resolver, dial_literal_name_skips_resolver)
{
    int port = listen_port();
    dialed d;
    dial("127.0.0.1", port, NULL, 3000, &d);
    RUN_UNTIL(d.calls > 0);
    cr_assert_eq(d.rep, TT_S5_REP_OK);
    cr_assert_eq(srv.udp_queries, 0);
    tt_tcp_listener_close(listener);
}

Test(resolver, dial_nxdomain)
{
    dialed d;
    dial("nx.test", 80, NULL, 3000, &d);
    RUN_UNTIL(d.calls > 0);
    cr_assert_eq(d.rep, TT_S5_REP_HOST_UNREACH);
    cr_assert_eq(d.err, UV_EAI_NONAME);
    /* The same reply as the system's resolver gives for a missing name. */
    cr_assert_eq(tt_dial_rep_for_error(UV_EAI_NONAME), TT_S5_REP_HOST_UNREACH);
}

Test(resolver, dial_checks_resolved_addresses)
{
    int port = listen_port();
    tt_acl acl;
    tt_acl_init(&acl); /* refuses loopback */
    dialed d;
    dial("svc.test", port, &acl, 3000, &d);
    RUN_UNTIL(d.calls > 0);
    cr_assert_eq(d.rep, TT_S5_REP_NOT_ALLOWED);
    cr_assert_eq(accepted, 0);
    tt_tcp_listener_close(listener);
}

Test(resolver, dial_cancel_while_resolving)
{
    dialed d;
    tt_dial *h = dial("silent.test", 80, NULL, 3000, &d);
    cr_assert_not_null(h);
    RUN_UNTIL(srv.udp_queries >= 2);
    in_api = true;
    tt_dial_cancel(h);
    in_api = false;
    cr_assert_eq(d.calls, 0);
    RUN_UNTIL(d.calls > 0);
    cr_assert_eq(d.rep, TT_S5_REP_GENERAL);
    cr_assert_eq(d.err, UV_ECANCELED);
    cr_assert_eq(srv.udp_queries, 2);
}

Test(resolver, dial_times_out_while_resolving)
{
    dialed d;
    dial("silent.test", 80, NULL, 200, &d);
    RUN_UNTIL(d.calls > 0);
    cr_assert_eq(d.rep, TT_S5_REP_TTL_EXPIRED);
    cr_assert_eq(d.err, UV_ETIMEDOUT);
}
