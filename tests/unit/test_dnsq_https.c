/* The DNS client's https transport (link/dnsq_https.c) against a DoH
 * resolver played by the test on loopback: tt's own TLS link as the
 * server end (a self-signed certificate, ALPN h2, pinned by the client)
 * and an nghttp2 server session that answers each POST with its body, id
 * kept and QR set. Queries share one connection; a GOAWAY lets the streams
 * it names finish while the next query opens a new connection; a resolver
 * that closes with queries outstanding makes them lost; a close with
 * everything in flight frees all. Every test runs its loop to the end and
 * fails if a handle is left. */
#include <criterion/criterion.h>

#include <signal.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/tlsctx.h"
#include "link/dnsq.h"
#include "link/tcp.h"
#include "link/tls.h"
#include "memlink.h"

#define CONNS_MAX 4

static uv_loop_t loop;
static tt_tls_ctx *server_ctx, *client_ctx;
static tt_tcp_listener *listener;

/* One connection of the resolver. */
typedef struct sconn {
    tt_link *link;
    nghttp2_session *s;
    unsigned requests; /* complete requests seen */
    bool eof;          /* the client ended the connection */
    bool ping_acked;   /* the client answered our PING */
    int32_t ids[16];
    uint8_t bodies[16][64];
    size_t lens[16];
} sconn;

/* The resolver's behaviour and what it saw. */
static struct {
    sconn conns[CONNS_MAX];
    unsigned accepted;
    unsigned goaway_after; /* 0: never; N: GOAWAY naming the first stream at N requests */
    unsigned close_after;  /* 0: never; N: close the connection at N requests, unanswered */
} res;

/* What the client's handlers saw. */
static struct {
    unsigned answers, lost;
    uint8_t last[64];
    size_t last_len;
    bool closed;
} got;

static tt_dnsq *q;

static void setup(void)
{
    /* As tt does: a write to a connection the resolver closed is an
     * error, not the end of the process. */
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    memset(&res, 0, sizeof res);
    memset(&got, 0, sizeof got);
    const char *why = NULL;
    tt_tls_server_opts so = {.name = "resolver.test", .alpn = "h2"};
    cr_assert_eq(tt_tls_server_ctx_new(&so, &server_ctx, &why), 0, "%s", why);
    tt_tls_client_opts co = {.pin = tt_tls_ctx_fingerprint(server_ctx), .alpn = "h2"};
    cr_assert_eq(tt_tls_client_ctx_new(&co, &client_ctx, &why), 0, "%s", why);
}

static void teardown(void)
{
    for (unsigned i = 0; i < res.accepted; i++) {
        if (res.conns[i].link)
            tt_link_close(res.conns[i].link, NULL, NULL);
        nghttp2_session_del(res.conns[i].s);
    }
    if (listener)
        tt_tcp_listener_close(listener);
    listener = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_tls_ctx_free(server_ctx);
    tt_tls_ctx_free(client_ctx);
    tt_test_close_loop(&loop);
}

TestSuite(dnsq_https, .init = setup, .fini = teardown, .timeout = 30);

static void s_flush(sconn *c)
{
    const uint8_t *p;
    ssize_t n;
    while (c->link && (n = nghttp2_session_mem_send(c->s, &p)) > 0)
        cr_assert_eq(tt_link_write1(c->link, p, (size_t)n), 0);
}

static ssize_t s_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *ud)
{
    (void)s, (void)id, (void)ud;
    sconn *c = src->ptr;
    for (unsigned i = 0; i < c->requests; i++) {
        if (c->ids[i] != id)
            continue;
        cr_assert_geq(len, c->lens[i]);
        memcpy(buf, c->bodies[i], c->lens[i]);
        buf[2] |= 0x80; /* QR: an answer */
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)c->lens[i];
    }
    cr_assert_fail("no request %d", id);
    return 0;
}

static void answer(sconn *c, int32_t id)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/dns-message", 12, 23,
         NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = s_read};
    cr_assert_eq(nghttp2_submit_response(c->s, id, nv, 2, &dp), 0);
}

static int s_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                  void *ud)
{
    (void)s, (void)flags;
    sconn *c = ud;
    unsigned i = c->requests;
    cr_assert_lt(i, 16);
    cr_assert_leq(len, sizeof c->bodies[i]);
    c->ids[i] = id;
    memcpy(c->bodies[i], data, len);
    c->lens[i] = len;
    return 0;
}

/* A request is complete: the resolver answers it, or not, as the test
 * asked. */
static int s_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    sconn *c = ud;
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
        c->ping_acked = true;
    if (f->hd.type != NGHTTP2_DATA || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    c->requests++;
    if (res.close_after && c->requests == res.close_after) {
        tt_link_close(c->link, NULL, NULL);
        c->link = NULL;
        return 0;
    }
    if (res.goaway_after && c->requests == res.goaway_after) {
        /* Only the first stream will be answered, when the test says; the
         * PING's ACK tells the test that the client has read the GOAWAY. */
        cr_assert_eq(
            nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, c->ids[0], NGHTTP2_NO_ERROR, NULL, 0), 0);
        cr_assert_eq(nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, NULL), 0);
        return 0;
    }
    if (!res.goaway_after)
        answer(c, f->hd.stream_id);
    return 0;
}

static void s_on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    sconn *c = ud;
    cr_assert_eq(nghttp2_session_mem_recv(c->s, data, len), (ssize_t)len);
    s_flush(c);
}

static void s_on_eof(tt_link *l, void *ud)
{
    (void)l;
    sconn *c = ud;
    c->eof = true;
}

static void s_on_error(tt_link *l, void *ud, int err)
{
    (void)l, (void)err;
    sconn *c = ud;
    c->eof = true;
}

static const tt_link_handler s_handler = {
    .on_data = s_on_data, .on_eof = s_on_eof, .on_error = s_on_error};

static void s_ready(void *ud, tt_link *link, int status)
{
    sconn *c = ud;
    cr_assert_eq(status, 0);
    tt_link_set_handler(link, &s_handler, c);
    cr_assert_eq(tt_link_read_start(link), 0);
    s_flush(c);
}

static void on_accept(void *ud, tt_link *link)
{
    (void)ud;
    cr_assert_lt(res.accepted, CONNS_MAX);
    sconn *c = &res.conns[res.accepted++];
    nghttp2_session_callbacks *cb;
    cr_assert_eq(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, s_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, s_frame);
    cr_assert_eq(nghttp2_session_server_new(&c->s, cb, c), 0);
    nghttp2_session_callbacks_del(cb);
    cr_assert_eq(nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, NULL, 0), 0);
    c->link = tt_tls_link_server(link, server_ctx, NULL, 0, 5000, s_ready, c);
    cr_assert_not_null(c->link);
}

static void on_answer(tt_dnsq *t, void *ud, const uint8_t *msg, size_t len)
{
    (void)t, (void)ud;
    got.answers++;
    cr_assert_leq(len, sizeof got.last);
    memcpy(got.last, msg, len);
    got.last_len = len;
}

static void on_lost(tt_dnsq *t, void *ud, int err, const char *why)
{
    (void)t, (void)ud, (void)err, (void)why;
    got.lost++;
}

static const tt_dnsq_handler handler = {.on_answer = on_answer, .on_lost = on_lost};

static void open_transport(void)
{
    cr_assert_eq(tt_tcp_listen(&loop, "127.0.0.1", 0, on_accept, NULL, &listener), 0);
    tt_dnsq_cfg cfg = {.kind = TT_DNSQ_HTTPS, .tls = client_ctx, .name = "resolver.test"};
    cr_assert_eq(
        uv_ip4_addr("127.0.0.1", tt_tcp_listener_port(listener), (struct sockaddr_in *)&cfg.addr),
        0);
    const char *why = NULL;
    cr_assert_eq(tt_dnsq_open(&loop, &cfg, &q, &why), 0, "%s", why);
    tt_dnsq_set_handler(q, &handler, NULL);
}

static void on_closed(void *ud)
{
    (void)ud;
    got.closed = true;
}

static void close_transport(void)
{
    tt_dnsq_close(q, on_closed, NULL);
    while (!got.closed)
        uv_run(&loop, UV_RUN_ONCE);
}

/* A query of N bytes whose id is ID. */
static void send_query(uint16_t id)
{
    uint8_t m[12] = {(uint8_t)(id >> 8), (uint8_t)id, 1, 0};
    cr_assert_eq(tt_dnsq_send(q, m, sizeof m), 0);
}

#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
    } while (0)

Test(dnsq_https, queries_share_one_connection_and_come_back_as_answers)
{
    open_transport();
    for (uint16_t i = 1; i <= 5; i++)
        send_query(i); /* before the connection is up: they wait in the session */
    RUN_UNTIL(got.answers == 5);
    send_query(6);
    RUN_UNTIL(got.answers == 6);
    cr_assert_eq(got.last[0] << 8 | got.last[1], 6);
    cr_assert(got.last[2] & 0x80);
    cr_assert_eq(res.accepted, 1);
    cr_assert_eq(got.lost, 0);
    close_transport();
    RUN_UNTIL(res.conns[0].eof);
}

Test(dnsq_https, after_a_goaway_new_queries_go_to_a_new_connection_while_the_old_drains)
{
    res.goaway_after = 2;
    open_transport();
    send_query(1);
    send_query(2);
    RUN_UNTIL(res.accepted == 1 && res.conns[0].ping_acked);
    /* The client has the GOAWAY; stream 1 is still open on the old
     * connection, and the next query does not wait for it. */
    res.goaway_after = 0;
    send_query(3);
    RUN_UNTIL(got.answers == 1);
    cr_assert_eq(got.last[1], 3);
    cr_assert_eq(res.accepted, 2);
    cr_assert_not(res.conns[0].eof, "the old connection drains");
    sconn *old = &res.conns[0];
    answer(old, old->ids[0]);
    s_flush(old);
    RUN_UNTIL(got.answers == 2);
    cr_assert_eq(got.last[1], 1, "the stream the GOAWAY named is answered");
    /* Nothing left on it: the transport ends it. The query the GOAWAY
     * refused is not reported lost (its deadline is the client's). */
    RUN_UNTIL(old->eof);
    cr_assert_eq(got.lost, 0);
    close_transport();
}

Test(dnsq_https, a_connection_closed_with_queries_on_it_loses_them_and_the_next_reconnects)
{
    res.close_after = 2;
    open_transport();
    send_query(1);
    send_query(2);
    RUN_UNTIL(got.lost == 1);
    cr_assert_eq(got.answers, 0);
    res.close_after = 0;
    send_query(3);
    RUN_UNTIL(got.answers == 1);
    cr_assert_eq(res.accepted, 2);
    close_transport();
}

Test(dnsq_https, closing_with_queries_in_flight_frees_everything)
{
    res.goaway_after = 100; /* never answers */
    open_transport();
    send_query(1);
    send_query(2);
    RUN_UNTIL(res.accepted == 1 && res.conns[0].requests == 2);
    close_transport();
    cr_assert_eq(got.lost, 0, "no handler after close");
}

Test(dnsq_https, closing_before_the_connection_is_up)
{
    open_transport();
    send_query(1);
    close_transport();
    cr_assert_eq(got.answers, 0);
}
