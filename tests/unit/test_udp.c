/* The UDP datagram layer on loopback: datagrams both ways with the sender's
 * address, a connected layer that needs no address, the size limit, and
 * the bound on queued sends. */
#include <criterion/criterion.h>

#include <string.h>

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

TestSuite(udp, .init = setup, .fini = teardown, .timeout = 10);

typedef struct got {
    char data[2048];
    size_t len;
    int port_from;
    int n;
} got;

static void on_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                        const struct sockaddr *from)
{
    got *g = ud;
    memcpy(g->data, data, len);
    g->len = len;
    g->port_from = ntohs(((const struct sockaddr_in *)from)->sin_port);
    g->n++;
    tt_dgram_recv_stop(d);
}

static void on_error(tt_dgram *d, void *ud, int err)
{
    (void)d, (void)ud;
    cr_assert_fail("error %d", err);
}

static const tt_dgram_handler handler = {on_datagram, on_error};

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    return sa;
}

Test(udp, datagrams_both_ways_whole)
{
    tt_dgram *a, *b;
    got ga = {0}, gb = {0};
    cr_assert_eq(tt_udp_open(&loop, "127.0.0.1", 0, NULL, &a), 0);
    cr_assert_eq(tt_udp_open(&loop, "127.0.0.1", 0, NULL, &b), 0);
    tt_dgram_set_handler(a, &handler, &ga);
    tt_dgram_set_handler(b, &handler, &gb);
    /* Each side receives only while the test waits for it, so that the loop
     * ends when its datagram has arrived (the handler stops receiving). */
    cr_assert_eq(tt_dgram_recv_start(b), 0);
    struct sockaddr_in to_b = loopback(tt_udp_port(b));
    uv_buf_t parts[2] = {uv_buf_init((char *)"one ", 4), uv_buf_init((char *)"datagram", 8)};
    cr_assert_eq(tt_dgram_send(a, parts, 2, (struct sockaddr *)&to_b), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(gb.n, 1);
    cr_assert_eq(gb.len, 12);
    cr_assert_eq(memcmp(gb.data, "one datagram", 12), 0);
    cr_assert_eq(gb.port_from, tt_udp_port(a));
    /* The answer goes back to where it came from. */
    cr_assert_eq(tt_dgram_recv_start(a), 0);
    struct sockaddr_in to_a = loopback(gb.port_from);
    uv_buf_t back = uv_buf_init((char *)"back", 4);
    cr_assert_eq(tt_dgram_send(b, &back, 1, (struct sockaddr *)&to_a), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(ga.n, 1);
    cr_assert_eq(ga.len, 4);
    tt_dgram_close(a, NULL, NULL);
    tt_dgram_close(b, NULL, NULL);
}

Test(udp, connected_layer_and_limits)
{
    tt_dgram *srv, *cli;
    got gs = {0};
    cr_assert_eq(tt_udp_open(&loop, "127.0.0.1", 0, NULL, &srv), 0);
    tt_dgram_set_handler(srv, &handler, &gs);
    cr_assert_eq(tt_dgram_recv_start(srv), 0);
    struct sockaddr_in peer = loopback(tt_udp_port(srv));
    cr_assert_eq(tt_udp_open(&loop, "127.0.0.1", 0, (struct sockaddr *)&peer, &cli), 0);
    cr_assert_eq(tt_dgram_max_size(cli), TT_UDP_MAX_DATAGRAM);
    static char big[TT_UDP_MAX_DATAGRAM + 1];
    uv_buf_t b = uv_buf_init(big, sizeof big);
    cr_assert_eq(tt_dgram_send(cli, &b, 1, NULL), UV_EMSGSIZE);
    b.len = TT_UDP_MAX_DATAGRAM;
    cr_assert_eq(tt_dgram_send(cli, &b, 1, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(gs.n, 1);
    cr_assert_eq(gs.len, TT_UDP_MAX_DATAGRAM);
    tt_dgram_close(srv, NULL, NULL);
    tt_dgram_close(cli, NULL, NULL);
}

Test(udp, unconnected_send_needs_an_address_and_bad_host_is_refused)
{
    tt_dgram *d;
    cr_assert_eq(tt_udp_open(&loop, "not-an-address", 0, NULL, &d), UV_EINVAL);
    cr_assert_eq(tt_udp_open(&loop, "127.0.0.1", 0, NULL, &d), 0);
    uv_buf_t b = uv_buf_init((char *)"x", 1);
    cr_assert_eq(tt_dgram_send(d, &b, 1, NULL), UV_EDESTADDRREQ);
    tt_dgram_close(d, NULL, NULL);
}
