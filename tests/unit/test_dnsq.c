/* The DNS client's stream transport (link/dnsq_stream.c, tcp) against a
 * resolver played by the test on loopback: queries pipelined on one
 * connection, answers taken in whatever order they come, a connection
 * the resolver closes with queries on it reported lost and replaced by a
 * new one at the next query, the queue bound, and a close while
 * connecting. Every test runs its loop to the end and fails if a handle
 * is left. */
#include <criterion/criterion.h>

#include <string.h>

#include "link/dnsq.h"
#include "memlink.h"

static uv_loop_t loop;

static void setup(void)
{
    uv_loop_init(&loop);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
}

TestSuite(dnsq, .init = setup, .fini = teardown, .timeout = 20);

/* The resolver: accepts connections, reads framed messages and, once it
 * has AFTER of them on a connection, answers those last first (each answer
 * is the query with QR set) and drops any others, then closes the
 * connection if CLOSE. */
typedef struct resolver {
    uv_tcp_t listener;
    uv_tcp_t conns[4];
    unsigned accepted;
    unsigned after;
    bool close;
    uint8_t buf[4096];
    size_t have;
    uint8_t msgs[8][64];
    size_t lens[8];
    unsigned nmsgs;
} resolver;

static resolver res;

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h, (void)sz;
    *b = uv_buf_init((char *)res.buf + res.have, (unsigned)(sizeof res.buf - res.have));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, NULL);
        return;
    }
    res.have += (size_t)n;
    while (res.have >= 2) {
        size_t len = (size_t)res.buf[0] << 8 | res.buf[1];
        if (res.have < 2 + len)
            break;
        memcpy(res.msgs[res.nmsgs], res.buf + 2, len);
        res.lens[res.nmsgs++] = len;
        memmove(res.buf, res.buf + 2 + len, res.have - 2 - len);
        res.have -= 2 + len;
    }
    if (res.nmsgs < res.after)
        return;
    /* The first AFTER are answered, the rest (if any) dropped. */
    for (unsigned i = res.after; i-- > 0;) {
        uint8_t *out = malloc(2 + res.lens[i]);
        out[0] = 0;
        out[1] = (uint8_t)res.lens[i];
        memcpy(out + 2, res.msgs[i], res.lens[i]);
        out[4] |= 0x80;
        uv_buf_t ob = uv_buf_init((char *)out, (unsigned)(2 + res.lens[i]));
        cr_assert_eq(uv_try_write(s, &ob, 1), (int)ob.len);
        free(out);
    }
    res.nmsgs = 0;
    if (res.close)
        uv_close((uv_handle_t *)s, NULL);
}

static void on_conn(uv_stream_t *l, int status)
{
    cr_assert_eq(status, 0);
    cr_assert_lt(res.accepted, 4);
    uv_tcp_t *c = &res.conns[res.accepted++];
    uv_tcp_init(&loop, c);
    cr_assert_eq(uv_accept(l, (uv_stream_t *)c), 0);
    res.have = 0;
    uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

static struct sockaddr_storage resolver_start(unsigned after, bool close)
{
    memset(&res, 0, sizeof res);
    res.after = after;
    res.close = close;
    uv_tcp_init(&loop, &res.listener);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    cr_assert_eq(uv_tcp_bind(&res.listener, (const struct sockaddr *)&a, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&res.listener, 8, on_conn), 0);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&res.listener, (struct sockaddr *)&ss, &len);
    return ss;
}

static void resolver_stop(void)
{
    uv_close((uv_handle_t *)&res.listener, NULL);
    for (unsigned i = 0; i < res.accepted; i++)
        if (!uv_is_closing((uv_handle_t *)&res.conns[i]))
            uv_close((uv_handle_t *)&res.conns[i], NULL);
}

/* The client's side: answers and losses as they come. */
typedef struct seen {
    unsigned answers, lost;
    uint8_t first[8]; /* the first byte (the id's high byte) of each answer */
    int lost_err;
    bool stop_after; /* stops the loop at the next event */
    bool closed;
} seen;

static void on_answer(tt_dnsq *q, void *ud, const uint8_t *msg, size_t len)
{
    (void)q;
    seen *s = ud;
    cr_assert_geq(len, 3);
    cr_assert(msg[2] & 0x80, "the resolver's mark");
    if (s->answers < 8)
        s->first[s->answers] = msg[0];
    s->answers++;
}

static void on_lost(tt_dnsq *q, void *ud, int err, const char *why)
{
    (void)q, (void)why;
    seen *s = ud;
    s->lost++;
    s->lost_err = err;
}

static const tt_dnsq_handler handler = {.on_answer = on_answer, .on_lost = on_lost};

static void on_closed(void *ud)
{
    ((seen *)ud)->closed = true;
}

/* Closes Q and the resolver and runs the loop out: Q's close must call
 * back. */
static void finish(tt_dnsq *q, seen *s)
{
    tt_dnsq_close(q, on_closed, s);
    resolver_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(s->closed);
}

static tt_dnsq *open_tcp(const struct sockaddr_storage *addr, unsigned max_queued, seen *s)
{
    tt_dnsq_cfg cfg = {.kind = TT_DNSQ_TCP, .addr = *addr, .max_queued = max_queued};
    tt_dnsq *q = NULL;
    const char *why = NULL;
    cr_assert_eq(tt_dnsq_open(&loop, &cfg, &q, &why), 0, "%s", why);
    tt_dnsq_set_handler(q, &handler, s);
    return q;
}

static void send_id(tt_dnsq *q, uint8_t id)
{
    uint8_t msg[12] = {id, 0x01, 0x01, 0x00};
    cr_assert_eq(tt_dnsq_send(q, msg, sizeof msg), 0);
}

static void run_until(bool (*cond)(const seen *), const seen *s)
{
    while (!cond(s)) {
        int more = uv_run(&loop, UV_RUN_ONCE);
        cr_assert(more != 0 || cond(s), "the loop ran dry");
    }
}

static bool three_answers(const seen *s)
{
    return s->answers >= 3;
}

Test(dnsq, pipelined_queries_answered_in_any_order)
{
    struct sockaddr_storage a = resolver_start(3, false);
    seen s = {0};
    tt_dnsq *q = open_tcp(&a, 0, &s);
    send_id(q, 1);
    send_id(q, 2);
    send_id(q, 3);
    run_until(three_answers, &s);
    /* One connection, all three on it, answered last first. */
    cr_assert_eq(res.accepted, 1);
    cr_assert_eq(s.first[0], 3);
    cr_assert_eq(s.first[1], 2);
    cr_assert_eq(s.first[2], 1);
    cr_assert_eq(s.lost, 0);
    finish(q, &s);
}

static bool one_lost(const seen *s)
{
    return s->lost >= 1;
}

static bool two_answers(const seen *s)
{
    return s->answers >= 2;
}

Test(dnsq, a_closed_connection_loses_its_queries_and_the_next_query_reconnects)
{
    /* The resolver answers one query of two and closes: the other is
     * lost; a query after that goes on a new connection. */
    struct sockaddr_storage a = resolver_start(1, true);
    seen s = {0};
    tt_dnsq *q = open_tcp(&a, 0, &s);
    send_id(q, 1);
    send_id(q, 2);
    run_until(one_lost, &s);
    cr_assert_eq(s.lost_err, UV_EOF);
    cr_assert_eq(s.answers, 1);
    send_id(q, 3);
    run_until(two_answers, &s);
    cr_assert_eq(res.accepted, 2);
    finish(q, &s);
}

Test(dnsq, queries_past_the_bound_are_refused)
{
    struct sockaddr_storage a = resolver_start(8, false);
    seen s = {0};
    tt_dnsq *q = open_tcp(&a, 2, &s);
    send_id(q, 1);
    send_id(q, 2);
    uint8_t msg[12] = {3};
    cr_assert_eq(tt_dnsq_send(q, msg, sizeof msg), UV_ENOBUFS);
    cr_assert_eq(tt_dnsq_send(q, msg, 0), UV_EMSGSIZE);
    /* Closed while the connection is being made: nothing leaks, no
     * handler runs. */
    finish(q, &s);
    cr_assert_eq(s.answers + s.lost, 0);
}

Test(dnsq, a_resolver_that_refuses_is_reported_lost)
{
    /* A port nothing listens on: the queue is lost with the connect's
     * error, once. */
    struct sockaddr_storage a = resolver_start(1, false);
    resolver_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    seen s = {0};
    tt_dnsq *q = open_tcp(&a, 0, &s);
    send_id(q, 1);
    send_id(q, 2);
    run_until(one_lost, &s);
    cr_assert_eq(s.lost, 1);
    cr_assert_eq(s.lost_err, UV_ECONNREFUSED);
    tt_dnsq_close(q, on_closed, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(s.closed);
}
