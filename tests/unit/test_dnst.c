/* The DNS datagram layers on loopback, both in one loop: a datagram up and
 * one down between a client and a server, the pseudo-addresses naming the
 * client, the sizes each side takes, the server's bounds (clients, the
 * per-client queue, idle clients forgotten), and its memory of answers for
 * resolvers' retries. */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <string.h>

#include "codec/dnstun.h"
#include "link/dnsretry.h"
#include "link/dnst.h"
#include "link/udp.h"
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

TestSuite(dnst, .init = setup, .fini = teardown, .timeout = 20);

static tt_dgram *open_server(const tt_dnss_cfg *extra)
{
    tt_dnss_cfg cfg = {.host = "127.0.0.1", .port = 0, .domain = "t.example.com", .hold_ms = 50};
    if (extra != NULL) {
        cfg.max_clients = extra->max_clients;
        cfg.queue_max = extra->queue_max;
        cfg.idle_ms = extra->idle_ms;
    }
    tt_dgram *s;
    const char *why = NULL;
    cr_assert_eq(tt_dnss_open(&loop, &cfg, &s, &why), 0, "%s", why);
    return s;
}

static tt_dgram *open_client(tt_dgram *server)
{
    struct sockaddr_storage res;
    uv_ip4_addr("127.0.0.1", tt_dnss_udp_port(server), (struct sockaddr_in *)&res);
    tt_dnsc_cfg cfg = {.domain = "t.example.com", .resolvers = &res, .nresolvers = 1};
    tt_dgram *c;
    const char *why = NULL;
    cr_assert_eq(tt_dnsc_open(&loop, &cfg, &c, &why), 0, "%s", why);
    return c;
}

typedef struct pair {
    tt_dgram *server, *client;
    int64_t from_server_side; /* the client id the server saw */
    char down[64];
    size_t down_len;
    struct sockaddr_storage down_from;
} pair;

static void on_error(tt_dgram *d, void *ud, int err)
{
    (void)d, (void)ud;
    cr_assert_fail("layer error %d", err);
}

static void server_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                            const struct sockaddr *from)
{
    pair *p = ud;
    cr_assert_eq(len, 5);
    cr_assert_arr_eq(data, "hello", 5);
    p->from_server_side = tt_dnst_addr_client(from);
    uv_buf_t b = uv_buf_init((char *)"world!", 6);
    cr_assert_eq(tt_dgram_send(d, &b, 1, from), 0);
}

static void client_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                            const struct sockaddr *from)
{
    (void)d;
    pair *p = ud;
    memcpy(p->down, data, len);
    p->down_len = len;
    memcpy(&p->down_from, from, sizeof p->down_from);
    tt_dgram_close(p->client, NULL, NULL);
    tt_dgram_close(p->server, NULL, NULL);
}

static const tt_dgram_handler server_handler = {server_datagram, on_error};
static const tt_dgram_handler client_handler = {client_datagram, on_error};

Test(dnst, a_datagram_up_and_one_down)
{
    pair p = {0};
    p.server = open_server(NULL);
    p.client = open_client(p.server);
    tt_dgram_set_handler(p.server, &server_handler, &p);
    tt_dgram_set_handler(p.client, &client_handler, &p);
    cr_assert_eq(tt_dgram_recv_start(p.server), 0);
    cr_assert_eq(tt_dgram_recv_start(p.client), 0);
    uv_buf_t b = uv_buf_init((char *)"hello", 5);
    cr_assert_eq(tt_dgram_send(p.client, &b, 1, NULL), 0);
    tt_dnsc_stats st;
    tt_dnsc_get_stats(p.client, &st);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(p.down_len, 6);
    cr_assert_arr_eq(p.down, "world!", 6);
    /* Both sides name the far end by the client's id. */
    cr_assert_eq(p.from_server_side, (int64_t)st.client_id);
    cr_assert_eq(tt_dnst_addr_client((struct sockaddr *)&p.down_from), (int64_t)st.client_id);
}

static void no_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                        const struct sockaddr *from)
{
    (void)d, (void)ud, (void)data, (void)len, (void)from;
}

static const tt_dgram_handler quiet = {no_datagram, on_error};

Test(dnst, sizes_each_side_takes)
{
    tt_dgram *s = open_server(NULL);
    tt_dgram *c = open_client(s);
    tt_dgram_set_handler(s, &quiet, NULL);
    tt_dgram_set_handler(c, &quiet, NULL);
    cr_assert_eq(tt_dgram_max_size(c), 139);
    cr_assert_eq(tt_dgram_max_size(s), 932);
    static char big[1000];
    uv_buf_t b = uv_buf_init(big, 140);
    cr_assert_eq(tt_dgram_send(c, &b, 1, NULL), UV_EMSGSIZE);
    b.len = 0;
    cr_assert_eq(tt_dgram_send(c, &b, 1, NULL), UV_EMSGSIZE);
    /* A client the server has never seen. */
    struct sockaddr_storage nobody;
    tt_dnst_addr(42, &nobody);
    b.len = 10;
    cr_assert_eq(tt_dgram_send(s, &b, 1, (struct sockaddr *)&nobody), UV_EHOSTUNREACH);
    struct sockaddr_in ip;
    uv_ip4_addr("127.0.0.1", 1, &ip);
    cr_assert_eq(tt_dgram_send(s, &b, 1, (struct sockaddr *)&ip), UV_EAFNOSUPPORT);
    tt_dgram_close(c, NULL, NULL);
    tt_dgram_close(s, NULL, NULL);
}

/* Raw tunnel queries from a UDP socket, as resolvers would send them. */
typedef struct raw {
    tt_dgram *udp;
    tt_dgram *server;
    tt_dnstun_zone zone;
    unsigned answers;
} raw;

static void raw_answer(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                       const struct sockaddr *from)
{
    (void)d, (void)data, (void)len, (void)from;
    ((raw *)ud)->answers++;
}

static const tt_dgram_handler raw_handler = {raw_answer, on_error};

static void ask(raw *r, uint32_t client, uint32_t nonce)
{
    uint8_t q[TT_DNSTUN_QUERY_MAX];
    size_t n = tt_dnstun_query_encode(&r->zone, (uint16_t)nonce, TT_DNSTUN_TYPE_TXT, client, nonce,
                                      (const uint8_t *)"x", 1, q);
    struct sockaddr_in to;
    uv_ip4_addr("127.0.0.1", tt_dnss_udp_port(r->server), &to);
    uv_buf_t b = uv_buf_init((char *)q, (unsigned)n);
    cr_assert_eq(tt_dgram_send(r->udp, &b, 1, (struct sockaddr *)&to), 0);
}

static void stop_when_answered(uv_timer_t *t)
{
    raw *r = t->data;
    if (r->answers >= 10) {
        uv_timer_stop(t);
        uv_stop(&loop);
    }
}

static void stop_loop(uv_timer_t *t)
{
    uv_timer_stop(t);
    uv_stop(&loop);
}

Test(dnst, clients_queues_and_idle_clients_are_bounded)
{
    tt_dnss_cfg bounds = {.max_clients = 4, .queue_max = 1000, .idle_ms = 200};
    raw r = {0};
    r.server = open_server(&bounds);
    tt_dgram_set_handler(r.server, &quiet, NULL);
    cr_assert_eq(tt_dgram_recv_start(r.server), 0);
    const char *why;
    cr_assert_eq(tt_dnstun_zone_init(&r.zone, "t.example.com", NULL, 1, &why), 0);
    cr_assert_eq(tt_udp_open(&loop, "127.0.0.1", 0, NULL, &r.udp), 0);
    tt_dgram_set_handler(r.udp, &raw_handler, &r);
    cr_assert_eq(tt_dgram_recv_start(r.udp), 0);
    /* Ten clients, one query each: the server answers all (they carry
     * data) and keeps the four seen last. */
    for (uint32_t i = 1; i <= 10; i++)
        ask(&r, i, i);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &r;
    uv_timer_start(&t, stop_when_answered, 5, 5);
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_dnss_stats st;
    tt_dnss_get_stats(r.server, &st);
    cr_assert_eq(r.answers, 10);
    cr_assert_eq(st.clients, 4);
    /* The first clients are gone, the last ones are known and their queue
     * holds 1000 bytes. */
    struct sockaddr_storage a;
    static char dgram[900];
    uv_buf_t b = uv_buf_init(dgram, sizeof dgram);
    tt_dnst_addr(1, &a);
    cr_assert_eq(tt_dgram_send(r.server, &b, 1, (struct sockaddr *)&a), UV_EHOSTUNREACH);
    tt_dnst_addr(10, &a);
    cr_assert_eq(tt_dgram_send(r.server, &b, 1, (struct sockaddr *)&a), 0);
    cr_assert_eq(tt_dgram_send(r.server, &b, 1, (struct sockaddr *)&a), UV_ENOBUFS);
    /* Unseen for longer than idle_ms, every client is forgotten, queue and
     * all. */
    uv_timer_start(&t, stop_loop, 500, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_dnss_get_stats(r.server, &st);
    cr_assert_eq(st.clients, 0);
    cr_assert_eq(tt_dgram_send(r.server, &b, 1, (struct sockaddr *)&a), UV_EHOSTUNREACH);
    uv_close((uv_handle_t *)&t, NULL);
    tt_dgram_close(r.udp, NULL, NULL);
    tt_dgram_close(r.server, NULL, NULL);
    /* The timer lives on this stack: it must be closed before returning. */
    uv_run(&loop, UV_RUN_DEFAULT);
}

Test(dnst, answers_kept_for_retries_within_their_bounds)
{
    /* Room for three entries, or for 400 bytes. */
    tt_dnsretry *r = tt_dnsretry_new(3, 400);
    cr_assert_not_null(r);
    const uint8_t *p;
    size_t len;
    tt_dnsretry_put(r, (const uint8_t *)"k1", 2, (const uint8_t *)"one", 3);
    tt_dnsretry_put(r, (const uint8_t *)"k2", 2, (const uint8_t *)"two", 3);
    tt_dnsretry_put(r, (const uint8_t *)"k3", 2, NULL, 0);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k1", 2, &p, &len), 1);
    cr_assert_eq(len, 3);
    cr_assert_arr_eq(p, "one", 3);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k3", 2, &p, &len), 1);
    cr_assert_eq(len, 0);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k4", 2, &p, &len), 0);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k", 1, &p, &len), 0);
    /* A fourth forgets the oldest. */
    tt_dnsretry_put(r, (const uint8_t *)"k4", 2, (const uint8_t *)"four", 4);
    cr_assert_eq(tt_dnsretry_count(r), 3);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k1", 2, &p, &len), 0);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k2", 2, &p, &len), 1);
    /* A large one forgets as many as its bytes need, and one larger than
     * the whole bound is not kept. */
    static uint8_t big[1000];
    tt_dnsretry_put(r, (const uint8_t *)"k5", 2, big, 300);
    cr_assert_leq(tt_dnsretry_bytes(r), 400);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k5", 2, &p, &len), 1);
    cr_assert_eq(len, 300);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k2", 2, &p, &len), 0);
    tt_dnsretry_put(r, (const uint8_t *)"k6", 2, big, sizeof big);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k6", 2, &p, &len), 0);
    cr_assert_eq(tt_dnsretry_get(r, (const uint8_t *)"k5", 2, &p, &len), 1);
    tt_dnsretry_free(r);
}

typedef struct spread {
    tt_dgram *a, *b, *client;
    unsigned echoes;
} spread;

static void echo_back(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                      const struct sockaddr *from)
{
    (void)ud;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
    tt_dgram_send(d, &b, 1, from);
}

static void count_echo(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                       const struct sockaddr *from)
{
    (void)d, (void)data, (void)len, (void)from;
    spread *sp = ud;
    if (++sp->echoes == 200)
        uv_stop(&loop);
}

static const tt_dgram_handler echo_handler = {echo_back, on_error};
static const tt_dgram_handler count_handler = {count_echo, on_error};

Test(dnst, queries_spread_over_two_resolvers)
{
    spread sp = {0};
    sp.a = open_server(NULL);
    sp.b = open_server(NULL);
    struct sockaddr_storage res[2];
    uv_ip4_addr("127.0.0.1", tt_dnss_udp_port(sp.a), (struct sockaddr_in *)&res[0]);
    uv_ip4_addr("127.0.0.1", tt_dnss_udp_port(sp.b), (struct sockaddr_in *)&res[1]);
    tt_dnsc_cfg cfg = {.domain = "t.example.com", .resolvers = res, .nresolvers = 2};
    const char *why = NULL;
    cr_assert_eq(tt_dnsc_open(&loop, &cfg, &sp.client, &why), 0, "%s", why);
    tt_dgram_set_handler(sp.a, &echo_handler, NULL);
    tt_dgram_set_handler(sp.b, &echo_handler, NULL);
    tt_dgram_set_handler(sp.client, &count_handler, &sp);
    tt_dgram_recv_start(sp.a);
    tt_dgram_recv_start(sp.b);
    tt_dgram_recv_start(sp.client);
    /* 200 datagrams, sent as fast as the client takes them (its queue
     * holds what its 16 slots cannot). */
    for (unsigned i = 0; i < 200; i++) {
        uv_buf_t b = uv_buf_init((char *)"ping", 4);
        cr_assert_eq(tt_dgram_send(sp.client, &b, 1, NULL), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(sp.echoes, 200);
    tt_dnss_stats sa, sb;
    tt_dnss_get_stats(sp.a, &sa);
    tt_dnss_get_stats(sp.b, &sb);
    /* Both answer as fast: each gets a fair share. */
    cr_assert_geq(sa.up_bytes, 4 * 50, "%" PRIu64 " bytes through the first", sa.up_bytes);
    cr_assert_geq(sb.up_bytes, 4 * 50, "%" PRIu64 " bytes through the second", sb.up_bytes);
    cr_assert_eq(sa.up_bytes + sb.up_bytes, 4 * 200);
    tt_dgram_close(sp.client, NULL, NULL);
    tt_dgram_close(sp.a, NULL, NULL);
    tt_dgram_close(sp.b, NULL, NULL);
}

static void stop_after(uv_timer_t *t)
{
    uv_stop(t->loop);
}

Test(dnst, polls_decay_when_idle_and_come_back_on_request)
{
    tt_dgram *s = open_server(NULL); /* holds polls 50 ms */
    tt_dgram *c = open_client(s);
    tt_dgram_set_handler(s, &quiet, NULL);
    tt_dgram_set_handler(c, &quiet, NULL);
    tt_dgram_recv_start(s);
    tt_dgram_recv_start(c);
    tt_dnsc_stats st0, st1, st2;
    tt_dnsc_get_stats(c, &st0);
    /* At first every poll slot is out. */
    cr_assert_eq(st0.polls, 8);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, stop_after, 1500, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_dnsc_get_stats(c, &st1);
    tt_dnss_stats ss;
    tt_dnss_get_stats(s, &ss);
    /* Idle: the polls went down to one, then spaced out; the server holds
     * at most one. */
    cr_assert_leq(ss.held, 1);
    cr_assert_lt(st1.polls, 8 + 1500 / 50, "%" PRIu64 " polls in 1.5 s", st1.polls);
    /* An upper layer expecting data asks for four at once. */
    tt_dnsc_poll(c, 4);
    tt_dnsc_get_stats(c, &st2);
    cr_assert_geq(st2.polls, st1.polls + 3);
    uv_close((uv_handle_t *)&t, NULL);
    tt_dgram_close(c, NULL, NULL);
    tt_dgram_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}
