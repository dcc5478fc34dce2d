/* dnstun-echo: both ends of the DNS datagram layers (link/dnst.h) for the
 * end-to-end tests and the measurements in docs/DNS.md, before a carrier
 * uses them.
 *
 *   dnstun-echo server HOST PORT DOMAIN [HOLD_MS]
 *       Serves DOMAIN on HOST:PORT (UDP and TCP; port 0: any) and answers
 *       each tunnel datagram by its first byte: 'E' echoes it, 'U' answers
 *       'A' and its 4-byte sequence number, 'D' (seq, count 4 bytes, size 2
 *       bytes) sends COUNT datagrams of SIZE bytes ('d', index, filler).
 *       Logs "listening udp N tcp N" on stderr; on SIGTERM prints its
 *       counters as one JSON line on stdout and exits 0.
 *
 *   dnstun-echo client DOMAIN MODE COUNT SIZE RESOLVER[,RESOLVER...]
 *                      [INFLIGHT] [TYPE] [TRANSPORT]
 *       MODE echo: COUNT datagrams of SIZE bytes (0: the most a query
 *       takes), each compared with its echo. up: the same, answered with a
 *       short ack. down: one request for COUNT datagrams of SIZE bytes (0:
 *       the most an answer takes). At most INFLIGHT (default 16) datagrams
 *       wait for their echo or ack at once, and as many queries are in
 *       flight, half of them polls at most; a datagram unanswered after 3 s
 *       is lost.
 *       RESOLVER is IP:PORT ([IPv6]:PORT). TYPE is txt, null or auto.
 *       TRANSPORT is udp (the default) or tcp (link/dnsq.h).
 *       Prints one JSON line on stdout: counts, loss, duplicates, rates.
 *       Exits 0 when the run finished, 1 on a corrupt datagram, 2 on usage.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "codec/dnstun.h"
#include "core/bytes.h"
#include "core/addr.h"
#include "link/dnst.h"

#define LOST_MS 3000
#define MAX_COUNT 1000000

static uv_loop_t *loop;
static uv_signal_t sig_term, sig_int;
static tt_dgram *layer;

/* ---- server ---- */

typedef struct down_job {
    struct sockaddr_storage to;
    uint32_t next, count;
    size_t size;
    bool active;
} down_job;

static down_job job;
static uv_timer_t refill;

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7);
}

/* Queues the down job's datagrams until the client's queue is full; the
 * timer tries again, as the answers drain it. */
static void on_refill(uv_timer_t *t)
{
    (void)t;
    uint8_t d[TT_DNSTUN_MSG_MAX];
    while (job.active && job.next < job.count) {
        d[0] = 'd';
        tt_put32(d + 1, job.next);
        fill(d + 5, job.size - 5, job.next);
        uv_buf_t b = uv_buf_init((char *)d, (unsigned)job.size);
        int rc = tt_dgram_send(layer, &b, 1, (const struct sockaddr *)&job.to);
        if (rc == UV_ENOBUFS)
            return;
        if (rc != 0) {
            job.active = false;
            break;
        }
        job.next++;
    }
    job.active = false;
    uv_timer_stop(&refill);
}

static void server_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                            const struct sockaddr *from)
{
    (void)ud;
    if (len < 5)
        return;
    uv_buf_t b;
    uint8_t ack[5];
    switch (data[0]) {
    case 'E':
        b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
        (void)tt_dgram_send(d, &b, 1, from);
        break;
    case 'U':
        ack[0] = 'A';
        memcpy(ack + 1, data + 1, 4);
        b = uv_buf_init((char *)ack, 5);
        (void)tt_dgram_send(d, &b, 1, from);
        break;
    case 'D':
        if (len < 11 || job.active)
            return;
        memcpy(&job.to, from, sizeof job.to);
        job.next = 0;
        job.count = tt_get32(data + 5);
        job.size = (size_t)data[9] << 8 | data[10];
        if (job.size < 5 || job.size > tt_dgram_max_size(d) || job.count > MAX_COUNT)
            return;
        job.active = true;
        uv_timer_start(&refill, on_refill, 0, 2);
        break;
    }
}

static void server_error(tt_dgram *d, void *ud, int err)
{
    (void)d, (void)ud;
    fprintf(stderr, "dnstun-echo: server error: %s\n", uv_strerror(err));
}

static const tt_dgram_handler server_handler = {server_datagram, server_error};

static void on_closed(void *ud)
{
    (void)ud;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s, (void)signum;
    tt_dnss_stats st;
    tt_dnss_get_stats(layer, &st);
    printf("{\"queries\": %" PRIu64 ", \"tunnel\": %" PRIu64 ", \"retries\": %" PRIu64
           ", \"authority\": %" PRIu64 ", \"dropped\": %" PRIu64 ", \"truncated\": %" PRIu64
           ", \"up_bytes\": %" PRIu64 ", \"down_bytes\": %" PRIu64 ", \"clients\": %u}\n",
           st.queries, st.tunnel, st.retries, st.authority, st.dropped, st.truncated, st.up_bytes,
           st.down_bytes, st.clients);
    fflush(stdout);
    tt_dgram_close(layer, on_closed, NULL);
    uv_close((uv_handle_t *)&refill, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
}

static int run_server(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    tt_dnss_cfg cfg = {.host = argv[2], .port = atoi(argv[3]), .domain = argv[4]};
    if (argc > 5)
        cfg.hold_ms = (unsigned)atoi(argv[5]);
    const char *why = NULL;
    int rc = tt_dnss_open(loop, &cfg, &layer, &why);
    if (rc != 0) {
        fprintf(stderr, "dnstun-echo: %s: %s\n", why, uv_strerror(rc));
        return 1;
    }
    tt_dgram_set_handler(layer, &server_handler, NULL);
    tt_dgram_recv_start(layer);
    uv_timer_init(loop, &refill);
    fprintf(stderr, "listening udp %d tcp %d\n", tt_dnss_udp_port(layer), tt_dnss_tcp_port(layer));
    return 0;
}

/* ---- client ---- */

enum mode { M_ECHO, M_UP, M_DOWN };

static enum mode mode;
static uint32_t count, sent, done_n, got_n, dups, corrupt, lost;
static size_t size;
static unsigned window;
static uint64_t *sent_at; /* per sequence number: when sent, 0 once answered or lost */
static uint8_t *seen;     /* per sequence number: answers received */
static uint64_t t_start, t_last_rx;
static uv_timer_t tick;
static bool finished;

static void finish(void)
{
    if (finished)
        return;
    finished = true;
    double secs = (double)(uv_now(loop) - t_start) / 1000.0;
    if (secs <= 0)
        secs = 0.001;
    tt_dnsc_stats st;
    tt_dnsc_get_stats(layer, &st);
    const char *m = mode == M_ECHO ? "echo" : mode == M_UP ? "up" : "down";
    uint32_t units = mode == M_DOWN ? count : sent;
    printf("{\"mode\": \"%s\", \"count\": %u, \"size\": %zu, \"received\": %u, \"lost\": %u, "
           "\"duplicates\": %u, \"corrupt\": %u, \"seconds\": %.3f, \"datagrams_per_s\": %.1f, "
           "\"bytes_per_s\": %.0f, \"queries\": %" PRIu64 ", \"polls\": %" PRIu64
           ", \"answers\": %" PRIu64 ", \"empty\": %" PRIu64 ", \"bad\": %" PRIu64
           ", \"timeouts\": %" PRIu64 ", \"overtaken\": %" PRIu64 ", \"late\": %" PRIu64
           ", \"lost_queries\": %" PRIu64 ", \"truncated\": %" PRIu64
           ", \"qtype\": %u, \"max_up\": %zu}\n",
           m, units, size, got_n, mode == M_DOWN ? count - got_n : lost, dups, corrupt, secs,
           got_n / secs, (double)got_n * (double)size / secs, st.queries, st.polls, st.answers,
           st.empty, st.bad, st.timeouts, st.overtaken, st.late, st.lost, st.truncated, st.qtype,
           tt_dgram_max_size(layer));
    fflush(stdout);
    tt_dgram_close(layer, on_closed, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
}

static void send_down_request(void)
{
    uint8_t d[11];
    d[0] = 'D';
    tt_put32(d + 1, 0);
    tt_put32(d + 5, count);
    d[9] = (uint8_t)(size >> 8);
    d[10] = (uint8_t)size;
    uv_buf_t b = uv_buf_init((char *)d, sizeof d);
    (void)tt_dgram_send(layer, &b, 1, NULL);
    sent_at[0] = uv_now(loop);
}

/* Sends while fewer than WINDOW wait, and declares lost what waited too
 * long. */
static void client_pump(void)
{
    uint64_t now = uv_now(loop);
    if (mode == M_DOWN) {
        /* The request is resent until data comes; the end is 3 s without
         * anything new, or everything. */
        if (got_n == 0 && now - sent_at[0] >= LOST_MS)
            send_down_request();
        if (got_n == count || (got_n > 0 && now - t_last_rx >= LOST_MS))
            finish();
        return;
    }
    for (uint32_t i = done_n; i < sent; i++)
        if (sent_at[i] != 0 && now - sent_at[i] >= LOST_MS) {
            sent_at[i] = 0;
            lost++;
        }
    while (done_n < sent && sent_at[done_n] == 0)
        done_n++;
    while (sent < count && sent - done_n < window) {
        uint8_t d[TT_DNSTUN_QUERY_PAYLOAD_MAX];
        d[0] = mode == M_ECHO ? 'E' : 'U';
        tt_put32(d + 1, sent);
        fill(d + 5, size - 5, sent);
        uv_buf_t b = uv_buf_init((char *)d, (unsigned)size);
        if (tt_dgram_send(layer, &b, 1, NULL) != 0)
            break;
        sent_at[sent++] = now;
    }
    if (done_n == count)
        finish();
}

static void client_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                            const struct sockaddr *from)
{
    (void)d, (void)ud, (void)from;
    if (len < 5)
        return;
    uint32_t seq = tt_get32(data + 1);
    if (seq >= count)
        return;
    uint8_t want[TT_DNSTUN_MSG_MAX];
    t_last_rx = uv_now(loop);
    if (data[0] == 'E' || data[0] == 'd') {
        want[0] = data[0];
        tt_put32(want + 1, seq);
        fill(want + 5, size - 5, seq);
        if (len != size || memcmp(data, want, len) != 0) {
            corrupt++;
            return;
        }
    } else if (data[0] != 'A' || len != 5) {
        corrupt++;
        return;
    }
    if (seen[seq]++) {
        dups++;
        return;
    }
    got_n++;
    if (mode != M_DOWN) {
        if (sent_at[seq] == 0)
            lost--; /* late, after it was counted lost */
        sent_at[seq] = 0;
    }
    client_pump();
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    client_pump();
}

static void on_client_signal(uv_signal_t *s, int signum)
{
    (void)s, (void)signum;
    finish();
}

static const tt_dgram_handler client_handler = {client_datagram, server_error};

static int run_client(int argc, char **argv)
{
    if (argc < 7)
        return 2;
    const char *domain = argv[2];
    mode = strcmp(argv[3], "echo") == 0 ? M_ECHO : strcmp(argv[3], "up") == 0 ? M_UP : M_DOWN;
    if (mode == M_DOWN && strcmp(argv[3], "down") != 0)
        return 2;
    count = (uint32_t)strtoul(argv[4], NULL, 10);
    size = strtoul(argv[5], NULL, 10);
    window = argc > 7 ? (unsigned)atoi(argv[7]) : 16;
    if (count == 0 || count > MAX_COUNT || window == 0)
        return 2;
    struct sockaddr_storage res[TT_DNSC_RESOLVERS_MAX];
    unsigned n = 0;
    char *list = argv[6];
    for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ",")) {
        tt_hostport hp;
        const char *bad = NULL;
        if (n == TT_DNSC_RESOLVERS_MAX || tt_hostport_parse(tok, &hp, &bad) != 0 ||
            (uv_ip4_addr(hp.host, hp.port, (struct sockaddr_in *)&res[n]) != 0 &&
             uv_ip6_addr(hp.host, hp.port, (struct sockaddr_in6 *)&res[n]) != 0)) {
            fprintf(stderr, "dnstun-echo: bad resolver %s\n", tok);
            return 2;
        }
        n++;
    }
    /* The window is also the layer's: queries in flight, half of them
     * polls at most. */
    tt_dnsc_cfg cfg = {.domain = domain,
                       .resolvers = res,
                       .nresolvers = n,
                       .max_inflight = window,
                       .max_window = window,
                       .max_polls = window / 2 > 0 ? window / 2 : 1};
    if (argc > 8)
        cfg.qtype = strcmp(argv[8], "null") == 0  ? TT_DNSTUN_TYPE_NULL
                    : strcmp(argv[8], "txt") == 0 ? TT_DNSTUN_TYPE_TXT
                                                  : 0;
    tt_dnsq_cfg tcp = {.kind = TT_DNSQ_TCP};
    if (argc > 9 && strcmp(argv[9], "tcp") == 0)
        cfg.transport = &tcp;
    const char *why = NULL;
    int rc = tt_dnsc_open(loop, &cfg, &layer, &why);
    if (rc != 0) {
        fprintf(stderr, "dnstun-echo: %s: %s\n", why, uv_strerror(rc));
        return 1;
    }
    tt_dgram_set_handler(layer, &client_handler, NULL);
    size_t max_up = tt_dgram_max_size(layer);
    size_t max_down = tt_dnstun_answer_room_min() - 2;
    if (size == 0)
        size = mode == M_DOWN ? max_down : max_up;
    if (size < 5 || size > (mode == M_DOWN ? max_down : max_up)) {
        fprintf(stderr, "dnstun-echo: size %zu out of range\n", size);
        tt_dgram_close(layer, on_closed, NULL);
        return 2;
    }
    sent_at = calloc(count, sizeof *sent_at);
    seen = calloc(count, 1);
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 100, 100);
    t_start = uv_now(loop);
    tt_dgram_recv_start(layer);
    if (mode == M_DOWN)
        send_down_request();
    else
        client_pump();
    return 0;
}

int main(int argc, char **argv)
{
    loop = uv_default_loop();
    int rc;
    /* A TCP peer that goes away must not kill the process with its
     * writes, as tt ignores it too (src/cmd/common.c). */
    signal(SIGPIPE, SIG_IGN);
    bool server = argc > 1 && strcmp(argv[1], "server") == 0;
    if (server)
        rc = run_server(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "client") == 0)
        rc = run_client(argc, argv);
    else
        rc = 2;
    if (rc == 2)
        fprintf(stderr, "usage: dnstun-echo server HOST PORT DOMAIN [HOLD_MS]\n"
                        "       dnstun-echo client DOMAIN echo|up|down COUNT SIZE "
                        "RESOLVER[,RESOLVER...] [INFLIGHT] [txt|null|auto] [udp|tcp]\n");
    if (rc != 0)
        return rc;
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, server ? on_signal : on_client_signal, SIGTERM);
    uv_signal_start(&sig_int, server ? on_signal : on_client_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    free(sent_at);
    free(seen);
    return corrupt > 0 ? 1 : 0;
}
