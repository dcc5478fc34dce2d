/* wsbench: how fast the WebSocket link (src/link/ws.c) moves bulk data, to
 * show whether it could be the bottleneck of a ws:// or wss:// tunnel.
 *
 *   wsbench [MEGABYTES] [FRAME]
 *
 * A ws client end and a ws server end over one TCP connection on 127.0.0.1,
 * both in this one thread and loop, send MEGABYTES (default 256) each way in
 * turn, with FRAME bytes per data frame (default: the link's own, 64 KiB).
 * Bare TCP links between the same loop give the baseline in the same run.
 * Prints MB/s (10^6 bytes) and CPU seconds per GB (10^9 bytes) for each; as
 * both ends share the thread, a figure is the cost of the two ends together.
 * Use the release build (build/bench/wsbench): sanitizers change the
 * figures several times over. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "link/tcp.h"
#include "link/ws.h"

static uv_loop_t loop;

/* One end's owner: writes its pattern while the link's queue is short, and
 * counts what it receives. */
typedef struct end {
    tt_link *l;
    size_t received;
    size_t to_send;
    bool closed;
    int err;
} end;

static uint8_t g_chunk[256 * 1024];

__attribute__((noreturn)) static void die(const char *what, int err)
{
    fprintf(stderr, "wsbench: %s: %s\n", what, err ? uv_strerror(err) : "failed");
    exit(1);
}

static void pump(end *e)
{
    while (e->to_send > 0 && tt_link_pending(e->l) < 1024 * 1024) {
        size_t n = e->to_send < sizeof g_chunk ? e->to_send : sizeof g_chunk;
        int rc = tt_link_write1(e->l, g_chunk, n);
        if (rc < 0)
            die("write", rc);
        e->to_send -= n;
    }
}

static void on_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    (void)l;
    (void)d;
    ((end *)ud)->received += n;
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    (void)ud;
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    ((end *)ud)->err = err;
}

static void on_drained(tt_link *l, void *ud)
{
    (void)l;
    pump(ud);
}

static const tt_link_handler handler = {on_data, on_eof, on_error, on_drained};

static void on_closed(void *ud)
{
    ((end *)ud)->closed = true;
}

/* Runs the loop until COND holds; dies if the loop runs dry or an end fails. */
#define RUN_UNTIL(cond, a, b)                                                                      \
    do {                                                                                           \
        while (!(cond)) {                                                                          \
            if ((a)->err || (b)->err)                                                              \
                die("a link failed", (a)->err ? (a)->err : (b)->err);                              \
            if (uv_run(&loop, UV_RUN_ONCE) == 0 && !(cond))                                        \
                die("the loop ran dry waiting for: " #cond, 0);                                    \
        }                                                                                          \
    } while (0)

typedef struct tcp_pair {
    tt_link *c, *s;
    int status;
} tcp_pair;

static void pair_accept(void *ud, tt_link *l)
{
    ((tcp_pair *)ud)->s = l;
}

static void pair_connect(void *ud, int status, tt_link *l)
{
    ((tcp_pair *)ud)->status = status;
    ((tcp_pair *)ud)->c = l;
}

/* Two TCP links connected over 127.0.0.1. */
static tcp_pair tcp_pair_make(void)
{
    tcp_pair p = {NULL, NULL, 0};
    tt_tcp_listener *ls;
    int rc = tt_tcp_listen(&loop, "127.0.0.1", 0, pair_accept, &p, &ls);
    if (rc < 0)
        die("listen on 127.0.0.1", rc);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", tt_tcp_listener_port(ls), &sa);
    rc = tt_tcp_connect_start(&loop, (struct sockaddr *)&sa, 5000, pair_connect, &p, NULL);
    if (rc < 0)
        die("connect to 127.0.0.1", rc);
    while (!(p.s && (p.c || p.status))) {
        if (uv_run(&loop, UV_RUN_ONCE) == 0)
            die("the loop ran dry while connecting", 0);
    }
    if (p.status)
        die("connect to 127.0.0.1", p.status);
    tt_tcp_listener_close(ls);
    return p;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct rate {
    double mb_s;     /* 10^6 bytes per second */
    double cpu_s_gb; /* CPU seconds (both ends, one thread) per 10^9 bytes */
} rate;

static rate transfer(end *w, end *r, size_t total)
{
    r->received = 0;
    w->to_send = total;
    uint64_t t0 = uv_hrtime();
    double c0 = cpu_s();
    pump(w);
    RUN_UNTIL(r->received == total, w, r);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    return (rate){(double)total / secs / 1e6, (cpu_s() - c0) / ((double)total / 1e9)};
}

/* Sends TOTAL bytes from the client end to the server end, then back, over
 * C and S (already wrapped or not); closes both. */
static void both_ways(tt_link *c, tt_link *s, size_t total, rate *up, rate *down)
{
    end ce = {.l = c}, se = {.l = s};
    tt_link_set_handler(c, &handler, &ce);
    tt_link_set_handler(s, &handler, &se);
    if (tt_link_read_start(c) < 0 || tt_link_read_start(s) < 0)
        die("read_start", 0);
    *up = transfer(&ce, &se, total);
    *down = transfer(&se, &ce, total);
    tt_link_close(c, on_closed, &ce);
    tt_link_close(s, on_closed, &se);
    RUN_UNTIL(ce.closed && se.closed, &ce, &se);
}

int main(int argc, char **argv)
{
    long mb = argc > 1 ? atol(argv[1]) : 256;
    long frame = argc > 2 ? atol(argv[2]) : 0;
    if (argc > 3 || mb <= 0 || frame < 0) {
        fprintf(stderr, "usage: wsbench [MEGABYTES] [FRAME]\n");
        return 2;
    }
    size_t total = (size_t)mb * 1000 * 1000;
    for (size_t i = 0; i < sizeof g_chunk; i++)
        g_chunk[i] = (uint8_t)((i * 2654435761u) >> 13);
    uv_loop_init(&loop);

    tt_ws_opts o = {.max_frame = (size_t)frame};
    tcp_pair p = tcp_pair_make();
    tt_link *c = tt_ws_link_new(p.c, true, NULL, 0, &o);
    tt_link *s = tt_ws_link_new(p.s, false, NULL, 0, &o);
    if (!c || !s)
        die("tt_ws_link_new", 0);
    rate up, down, raw_up, raw_down;
    both_ways(c, s, total, &up, &down);
    p = tcp_pair_make();
    both_ways(p.c, p.s, total, &raw_up, &raw_down);

    printf("%ld MB over loopback, both ends in one thread (MB/s, CPU s/GB):\n"
           "  ws client->server (masked)  %6.0f  %.2f\n"
           "  ws server->client           %6.0f  %.2f\n"
           "  bare TCP links              %6.0f  %.2f\n",
           mb, up.mb_s, up.cpu_s_gb, down.mb_s, down.cpu_s_gb, (raw_up.mb_s + raw_down.mb_s) / 2,
           (raw_up.cpu_s_gb + raw_down.cpu_s_gb) / 2);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
