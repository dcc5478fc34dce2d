/* Mux sessions back to back: a client session and a server session joined
 * by an in-memory pipe (below) that delivers at most CHUNK bytes per loop
 * turn and counts what is not yet delivered as the writer's pending, like a
 * socket with no kernel buffer. One test also runs over real TCP links on
 * 127.0.0.1. Checked: many streams both ways byte for byte, 0-RTT opens,
 * half-close each way, resets, flow control, fairness, the memory cap, pings,
 * go-away, the lower link failing, closes inside callbacks, and (with
 * ASan) that nothing leaks. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "codec/mux.h"
#include "link/relay.h"
#include "link/tcp.h"
#include "memlink.h"
#include "mux/pool.h"
#include "mux/session.h"

static uv_loop_t loop;

/* The pipe. */

typedef struct pend {
    tt_link base;
    struct pend *peer;
    uint8_t *in; /* what the peer wrote, not yet delivered here */
    size_t in_len, in_cap;
    bool reading, eof_in, eof_done, shut, closing, want_drain;
    int err_in;
    size_t chunk;
    unsigned pieces;        /* >1: hand each chunk over in pieces (on_datav) */
    size_t deliveries;      /* chunks handed over by this end */
    size_t writes, written; /* by this end */
    uint8_t *first;         /* a copy of this end's first write */
    size_t first_len;
    uv_timer_t timer;
    tt_link_close_cb close_cb;
    void *close_ud;
} pend;

static void pend_tick(uv_timer_t *t);

static void pend_schedule(pend *p)
{
    if (!p->closing)
        uv_timer_start(&p->timer, pend_tick, 0, 0);
}

static void pend_tick(uv_timer_t *t)
{
    pend *p = t->data;
    if (p->closing)
        return;
    if (p->err_in) {
        int err = p->err_in;
        p->err_in = 0;
        p->base.handler->on_error(&p->base, p->base.ud, err);
        return;
    }
    if (!p->reading)
        return;
    if (p->in_len > 0) {
        size_t n = p->in_len < p->chunk ? p->in_len : p->chunk;
        uint8_t *tmp = malloc(n);
        memcpy(tmp, p->in, n);
        memmove(p->in, p->in + n, p->in_len - n);
        p->in_len -= n;
        pend *w = p->peer;
        bool drained = w && w->want_drain && p->in_len == 0;
        if (drained)
            w->want_drain = false;
        p->deliveries++;
        if (p->pieces > 1 && p->base.on_datav) {
            /* Cut points that move from chunk to chunk, so that frame
             * headers and payloads are split everywhere, down to single
             * bytes. */
            uv_buf_t b[16];
            unsigned k = 0;
            size_t at = 0;
            while (at < n && k < p->pieces && k < 16) {
                size_t left = n - at;
                size_t take =
                    k + 1 == p->pieces ? left : 1 + (p->deliveries * 7919 + k * 104729) % left;
                b[k++] = (uv_buf_t){.base = (char *)tmp + at, .len = take};
                at += take;
            }
            p->base.on_datav(&p->base, p->base.ud, b, k);
        } else {
            p->base.handler->on_data(&p->base, p->base.ud, tmp, n);
        }
        free(tmp);
        if (drained && !w->closing && w->base.handler->on_drained)
            w->base.handler->on_drained(&w->base, w->base.ud);
        if (!p->closing && (p->in_len > 0 || p->eof_in))
            pend_schedule(p);
        return;
    }
    if (p->eof_in && !p->eof_done) {
        p->eof_done = true;
        p->reading = false;
        p->base.handler->on_eof(&p->base, p->base.ud);
    }
}

static int pend_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    pend *p = (pend *)l;
    if (p->closing || p->shut)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (p->writes++ == 0) {
        p->first = malloc(total ? total : 1);
        for (unsigned i = 0; i < nbufs; i++) {
            memcpy(p->first + p->first_len, bufs[i].base, bufs[i].len);
            p->first_len += bufs[i].len;
        }
    }
    p->written += total;
    pend *r = p->peer;
    if (r == NULL)
        return 0; /* the peer is gone; the bytes are lost as on a socket */
    if (r->in_len + total > r->in_cap) {
        size_t cap = r->in_cap ? r->in_cap : 4096;
        while (cap < r->in_len + total)
            cap *= 2;
        r->in = realloc(r->in, cap);
        r->in_cap = cap;
    }
    for (unsigned i = 0; i < nbufs; i++) {
        memcpy(r->in + r->in_len, bufs[i].base, bufs[i].len);
        r->in_len += bufs[i].len;
    }
    if (r->in_len > 0)
        p->want_drain = true;
    pend_schedule(r);
    return 0;
}

static int pend_read_start(tt_link *l)
{
    pend *p = (pend *)l;
    if (p->closing)
        return UV_EINVAL;
    p->reading = true;
    pend_schedule(p);
    return 0;
}

static void pend_read_stop(tt_link *l)
{
    ((pend *)l)->reading = false;
}

static int pend_shutdown(tt_link *l)
{
    pend *p = (pend *)l;
    if (p->closing || p->shut)
        return 0;
    p->shut = true;
    if (p->peer) {
        p->peer->eof_in = true;
        pend_schedule(p->peer);
    }
    return 0;
}

static size_t pend_pending(const tt_link *l)
{
    const pend *p = (const pend *)l;
    return p->peer ? p->peer->in_len : 0;
}

static void pend_closed(uv_handle_t *h)
{
    pend *p = h->data;
    tt_link_close_cb cb = p->close_cb;
    void *ud = p->close_ud;
    free(p->in);
    free(p->first);
    free(p);
    if (cb)
        cb(ud);
}

static void pend_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    pend *p = (pend *)l;
    if (p->closing)
        return;
    p->closing = true;
    p->reading = false;
    p->close_cb = cb;
    p->close_ud = ud;
    pend *r = p->peer;
    if (r) {
        r->peer = NULL;
        if (abort) {
            r->err_in = UV_ECONNRESET;
            r->in_len = 0;
        } else {
            r->eof_in = true;
        }
        pend_schedule(r);
    }
    p->peer = NULL;
    uv_close((uv_handle_t *)&p->timer, pend_closed);
}

static void pend_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    pend_end(l, cb, ud, false);
}

static void pend_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    pend_end(l, cb, ud, true);
}

static const char *pend_peer(tt_link *l, char *buf, size_t len)
{
    (void)l;
    snprintf(buf, len, "pipe");
    return buf;
}

static const tt_link_ops pend_ops = {
    .write = pend_write,
    .read_start = pend_read_start,
    .read_stop = pend_read_stop,
    .shutdown = pend_shutdown,
    .close = pend_close,
    .pending = pend_pending,
    .abort = pend_abort,
    .peer = pend_peer,
};

static pend *pend_new(size_t chunk)
{
    pend *p = calloc(1, sizeof *p);
    p->base.ops = &pend_ops;
    p->base.loop = &loop;
    p->base.id = tt_link_next_id();
    p->chunk = chunk;
    uv_timer_init(&loop, &p->timer);
    p->timer.data = p;
    return p;
}

static void pipe_pair(pend **a, pend **b, size_t chunk)
{
    *a = pend_new(chunk);
    *b = pend_new(chunk);
    (*a)->peer = *b;
    (*b)->peer = *a;
}

/* Stream endpoints: record what arrives, optionally echo it. */

typedef struct ep {
    tt_link *l;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    bool eof;
    int err;
    int drained;
    bool echo;          /* write back what arrives, shut down on EOF */
    bool auto_close;    /* close once EOF came and everything went out, or on error */
    bool read;          /* server streams: start reading at once */
    bool close_in_data; /* close from inside on_data */
    bool paused;
    size_t stop_at; /* read_stop once this much arrived (0: never) */
    bool closed, close_cb_ran;
    struct ep *watch; /* fairness: WATCH's rx_len when the first byte came */
    size_t watch_seen;
    bool watch_set;
    size_t ndata; /* on_data calls */
} ep;

static void ep_closed(void *ud)
{
    ((ep *)ud)->close_cb_ran = true;
}

static void ep_close(ep *e)
{
    if (e->closed)
        return;
    e->closed = true;
    tt_link_close(e->l, ep_closed, e);
}

static void ep_maybe_close(ep *e)
{
    if (e->auto_close && e->eof && tt_link_pending(e->l) == 0)
        ep_close(e);
}

static void ep_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    ep *e = ud;
    cr_assert_not(e->closed, "on_data after close");
    e->ndata++;
    if (e->rx_len + n > e->rx_cap) {
        size_t cap = e->rx_cap ? e->rx_cap : 4096;
        while (cap < e->rx_len + n)
            cap *= 2;
        e->rx = realloc(e->rx, cap);
        e->rx_cap = cap;
    }
    memcpy(e->rx + e->rx_len, d, n);
    e->rx_len += n;
    if (e->watch && !e->watch_set) {
        e->watch_set = true;
        e->watch_seen = e->watch->rx_len;
    }
    if (e->echo) {
        cr_assert_eq(tt_link_write1(l, d, n), 0);
        if (tt_link_pending(l) > 256 * 1024) {
            tt_link_read_stop(l);
            e->paused = true;
        }
    }
    if (e->stop_at && e->rx_len >= e->stop_at)
        tt_link_read_stop(l);
    if (e->close_in_data)
        ep_close(e);
}

static void ep_eof(tt_link *l, void *ud)
{
    ep *e = ud;
    cr_assert_not(e->closed, "on_eof after close");
    e->eof = true;
    if (e->echo)
        tt_link_shutdown(l);
    ep_maybe_close(e);
}

static void ep_error(tt_link *l, void *ud, int err)
{
    (void)l;
    ep *e = ud;
    cr_assert_not(e->closed, "on_error after close");
    e->err = err;
    if (e->auto_close)
        ep_close(e);
}

static void ep_drained(tt_link *l, void *ud)
{
    ep *e = ud;
    cr_assert_not(e->closed, "on_drained after close");
    e->drained++;
    if (e->paused) {
        e->paused = false;
        tt_link_read_start(l);
    }
    ep_maybe_close(e);
}

static const tt_link_handler ep_handler = {ep_data, ep_eof, ep_error, ep_drained};

/* Sessions. */

typedef struct sess {
    tt_mux_session *s;
    int ended;
    int end_err;
    bool close_on_end;
} sess;

static pend *cl, *sl; /* the lower links of the client and the server */
static sess cs, ss;
static ep srv_tmpl;
#define MAXS 64
static ep srv[MAXS];
static unsigned nsrv;

static void on_end(void *ud, int err)
{
    sess *x = ud;
    x->ended++;
    x->end_err = err;
    if (x->close_on_end) {
        tt_mux_close(x->s);
        x->s = NULL;
    }
}

static void on_stream(void *ud, tt_link *l)
{
    (void)ud;
    cr_assert_lt(nsrv, MAXS);
    ep *e = &srv[nsrv++];
    *e = srv_tmpl;
    e->l = l;
    tt_link_set_handler(l, &ep_handler, e);
    if (e->read)
        cr_assert_eq(tt_link_read_start(l), 0);
}

static const tt_mux_callbacks client_cbs = {NULL, on_end};
static const tt_mux_callbacks server_cbs = {on_stream, on_end};

static tt_mux_cfg quiet_cfg(void)
{
    tt_mux_cfg c;
    tt_mux_cfg_default(&c);
    c.ping_interval_ms = 0;
    return c;
}

static void start_pair(const tt_mux_cfg *ccfg, const tt_mux_cfg *scfg, size_t chunk)
{
    pipe_pair(&cl, &sl, chunk);
    cs.s = tt_mux_client(&cl->base, ccfg, &client_cbs, &cs);
    ss.s = tt_mux_server(&sl->base, scfg, &server_cbs, &ss, NULL, 0);
    cr_assert_not_null(cs.s);
    cr_assert_not_null(ss.s);
}

/* Runs the loop until nothing is left to do (no timers in these tests). */
static void settle(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
}

/* Runs the loop until COND holds. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond)) {                                                                          \
            if (uv_run(&loop, UV_RUN_ONCE) == 0 && !(cond))                                        \
                cr_assert_fail("the loop ran dry before " #cond);                                  \
        }                                                                                          \
    } while (0)

/* Client-side endpoints the test made, closed at teardown if still open. */
static ep *g_cli[MAXS];
static unsigned ncli;

static void ep_track(ep *e)
{
    cr_assert_lt(ncli, MAXS);
    g_cli[ncli++] = e;
}

static void ep_open(ep *e)
{
    ep_track(e);
    e->l = tt_mux_open(cs.s);
    cr_assert_not_null(e->l);
    tt_link_set_handler(e->l, &ep_handler, e);
    cr_assert_eq(tt_link_read_start(e->l), 0);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
    return p;
}

static void setup(void)
{
    uv_loop_init(&loop);
    memset(&cs, 0, sizeof cs);
    memset(&ss, 0, sizeof ss);
    memset(&srv_tmpl, 0, sizeof srv_tmpl);
    memset(srv, 0, sizeof srv);
    nsrv = 0;
    ncli = 0;
}

static void teardown(void)
{
    for (unsigned i = 0; i < nsrv; i++)
        if (srv[i].l)
            ep_close(&srv[i]);
    for (unsigned i = 0; i < ncli; i++)
        ep_close(g_cli[i]);
    if (cs.s)
        tt_mux_close(cs.s);
    if (ss.s)
        tt_mux_close(ss.s);
    cs.s = ss.s = NULL;
    settle();
    tt_test_close_loop(&loop);
    for (unsigned i = 0; i < nsrv; i++)
        free(srv[i].rx);
    for (unsigned i = 0; i < ncli; i++)
        free(g_cli[i]->rx);
}

TestSuite(mux_session, .init = setup, .fini = teardown, .timeout = 30);

/* Opens N streams to echoing server streams, stream I sending BASE + I *
 * STEP bytes of pattern SEED + I and shutting down, runs the loop to the
 * end and checks that each got its bytes back and closed cleanly. Returns
 * the server streams' on_data calls. */
static size_t echo_streams(int n, size_t base, size_t step, unsigned seed)
{
    srv_tmpl = (ep){.echo = true, .auto_close = true, .read = true};
    static ep c[MAXS];
    uint8_t *want[MAXS];
    size_t len[MAXS];
    cr_assert_leq(n, MAXS);
    for (int i = 0; i < n; i++) {
        c[i] = (ep){0};
        ep_open(&c[i]);
        c[i].auto_close = true;
        len[i] = base + (size_t)i * step;
        want[i] = pattern(len[i], seed + (unsigned)i);
        cr_assert_eq(tt_link_write1(c[i].l, want[i], len[i]), 0);
        cr_assert_eq(tt_link_shutdown(c[i].l), 0);
    }
    settle();
    cr_assert_eq(nsrv, (unsigned)n);
    size_t calls = 0;
    for (int i = 0; i < n; i++) {
        cr_assert_eq(c[i].err, 0, "stream %d: %s", i, uv_strerror(c[i].err));
        cr_assert(c[i].eof);
        cr_assert_eq(c[i].rx_len, len[i], "stream %d: %zu of %zu bytes", i, c[i].rx_len, len[i]);
        cr_assert_arr_eq(c[i].rx, want[i], len[i]);
        cr_assert(c[i].close_cb_ran);
        cr_assert(srv[i].close_cb_ran);
        calls += srv[i].ndata;
        free(want[i]);
    }
    cr_assert_eq(tt_mux_active(cs.s), 0);
    cr_assert_eq(tt_mux_active(ss.s), 0);
    cr_assert_eq(tt_mux_held(cs.s), 0);
    cr_assert_eq(tt_mux_held(ss.s), 0);
    return calls;
}

Test(mux_session, many_streams_echo_both_ways)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    echo_streams(10, 50000, 37011, 0);
    cr_assert_eq(cs.ended + ss.ended, 0, "the sessions stay up between streams");
}

/* A lower link that hands over each read in pieces (the session link,
 * whose frames' payloads lie between their headers): the mux takes them as
 * one input, whatever the cuts split (frame headers included), and a
 * stream's bytes of one read still reach it in one delivery. */
Test(mux_session, input_in_pieces_is_one_input)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    cl->pieces = sl->pieces = 5;
    enum { N = 4 };
    size_t calls = echo_streams(N, 300000, 77777, 40);
    /* At most one delivery per stream and read: the pieces are gathered. */
    cr_assert_leq(calls, sl->deliveries * N, "%zu deliveries for %zu reads", calls, sl->deliveries);
}

Test(mux_session, open_rides_with_the_first_write)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep c = {0};
    ep_open(&c);
    cr_assert_eq(cl->writes, 0, "nothing is sent before the first write");
    cr_assert_eq(tt_link_write1(c.l, "\x01\x00\x01\x7f\x00\x00\x01\x00\x50GET", 12), 0);
    cr_assert_eq(cl->writes, 1);
    /* Preface, DATA|OPEN header for stream 1, the bytes: one lower write. */
    static const uint8_t want[] = {0xF7, 0x54, 0x4D, 0x01, 0x00, 0x01, 0x00, 0x0c,
                                   0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x01, 0x7f,
                                   0x00, 0x00, 0x01, 0x00, 0x50, 'G',  'E',  'T'};
    cr_assert_eq(cl->first_len, sizeof want);
    cr_assert_arr_eq(cl->first, want, sizeof want);
    settle();
    cr_assert_eq(nsrv, 1);
    cr_assert_eq(srv[0].rx_len, 12);
    /* The server's answer starts with its own preface. */
    cr_assert_eq(tt_link_write1(srv[0].l, "\x01\x00", 2), 0);
    cr_assert_eq(sl->first_len, 4 + 8 + 2);
    cr_assert_arr_eq(sl->first, tt_mux_preface, 4);
    settle();
    cr_assert_eq(c.rx_len, 2);
    ep_close(&c);
    settle();
    cr_assert_eq(srv[0].err, UV_ECONNRESET, "closed mid-stream: a reset");
}

Test(mux_session, half_close_each_way)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep c = {0};
    ep_open(&c);
    cr_assert_eq(tt_link_write1(c.l, "ask", 3), 0);
    cr_assert_eq(tt_link_shutdown(c.l), 0);
    cr_assert_eq(tt_link_write1(c.l, "x", 1), UV_EPIPE, "no write after shutdown");
    settle();
    cr_assert_eq(nsrv, 1);
    ep *s = &srv[0];
    cr_assert(s->eof);
    cr_assert_eq(s->rx_len, 3);
    cr_assert_not(c.eof);
    /* The server can still answer after the client's half-close. */
    cr_assert_eq(tt_link_write1(s->l, "late answer", 11), 0);
    settle();
    cr_assert_eq(c.rx_len, 11);
    cr_assert_not(c.eof);
    cr_assert_eq(tt_link_shutdown(s->l), 0);
    settle();
    cr_assert(c.eof);
    cr_assert_eq(c.err + s->err, 0);
    /* Both directions ended: closing is clean on both sides. */
    ep_close(&c);
    ep_close(s);
    settle();
    cr_assert(c.close_cb_ran && s->close_cb_ran);
    cr_assert_eq(c.err + s->err, 0);
}

Test(mux_session, reset_either_way)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep a = {0}, b = {0};
    ep_open(&a);
    ep_open(&b);
    cr_assert_eq(tt_link_write1(a.l, "a", 1), 0);
    cr_assert_eq(tt_link_write1(b.l, "b", 1), 0);
    settle();
    cr_assert_eq(nsrv, 2);
    a.closed = true;
    tt_link_abort(a.l, ep_closed, &a);
    settle();
    cr_assert_eq(srv[0].err, UV_ECONNRESET);
    cr_assert_eq(tt_link_write1(srv[0].l, "x", 1), UV_ECONNRESET, "writes fail after a reset");
    srv[1].closed = true;
    tt_link_abort(srv[1].l, ep_closed, &srv[1]);
    settle();
    cr_assert_eq(b.err, UV_ECONNRESET);
    cr_assert(a.close_cb_ran && srv[1].close_cb_ran);
    /* The session lives on. */
    static ep c = {0};
    ep_open(&c);
    cr_assert_eq(tt_link_write1(c.l, "c", 1), 0);
    settle();
    cr_assert_eq(nsrv, 3);
    cr_assert_eq(srv[2].rx_len, 1);
    ep_close(&b);
    ep_close(&c);
}

Test(mux_session, flow_control_holds_a_window_and_resumes)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = false}; /* the server's owner does not read */
    static ep c = {0};
    ep_open(&c);
    size_t n = 1024 * 1024;
    uint8_t *data = pattern(n, 7);
    cr_assert_eq(tt_link_write1(c.l, data, n), 0);
    settle();
    cr_assert_eq(nsrv, 1);
    /* Exactly the window left; the rest waits in the client stream. */
    cr_assert_eq(tt_mux_held(ss.s), TT_MUX_INITIAL_WINDOW);
    cr_assert_eq(tt_link_pending(c.l), n - TT_MUX_INITIAL_WINDOW);
    cr_assert_eq(c.drained, 0);
    cr_assert_eq(srv[0].rx_len, 0);
    /* Reading resumes the flow, from the loop. */
    cr_assert_eq(tt_link_read_start(srv[0].l), 0);
    cr_assert_eq(srv[0].rx_len, 0, "stashed bytes come from the loop, not inside read_start");
    settle();
    cr_assert_eq(srv[0].rx_len, n);
    cr_assert_arr_eq(srv[0].rx, data, n);
    cr_assert_eq(tt_link_pending(c.l), 0);
    cr_assert_eq(c.drained, 1);
    cr_assert_eq(tt_mux_held(ss.s), 0);
    cr_assert_eq(tt_mux_held(cs.s), 0);
    ep_close(&c);
    free(data);
}

Test(mux_session, read_stop_mid_delivery_keeps_order_and_eof_last)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 1 << 20);
    srv_tmpl = (ep){.read = true, .stop_at = 1000};
    static ep c = {0};
    ep_open(&c);
    size_t n = 200000;
    uint8_t *data = pattern(n, 3);
    /* Small writes, each its own frame, arriving in one lower read. */
    for (size_t off = 0; off < n; off += 500)
        cr_assert_eq(tt_link_write1(c.l, data + off, 500), 0);
    cr_assert_eq(tt_link_shutdown(c.l), 0);
    settle();
    ep *s = &srv[0];
    cr_assert_geq(s->rx_len, 1000);
    cr_assert_lt(s->rx_len, n, "read_stop took effect at once");
    cr_assert_not(s->eof, "the EOF waits behind the stashed bytes");
    s->stop_at = 0;
    cr_assert_eq(tt_link_read_start(s->l), 0);
    settle();
    cr_assert_eq(s->rx_len, n);
    cr_assert_arr_eq(s->rx, data, n);
    cr_assert(s->eof);
    ep_close(&c);
    free(data);
}

Test(mux_session, bulk_does_not_stall_a_small_stream)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep bulk = {0}, small = {0};
    ep_open(&bulk);
    ep_open(&small);
    size_t n = 4 * 1024 * 1024;
    uint8_t *data = pattern(n, 11);
    cr_assert_eq(tt_link_write1(bulk.l, "B", 1), 0);
    cr_assert_eq(tt_link_write1(small.l, "S", 1), 0);
    settle();
    cr_assert_eq(nsrv, 2);
    srv[1].watch = &srv[0];
    srv[1].watch_set = false;
    srv[1].rx_len = 0;
    cr_assert_eq(tt_link_write1(bulk.l, data, n), 0);
    cr_assert_gt(tt_link_pending(bulk.l), n / 2, "most of the bulk waits in the session");
    cr_assert_eq(tt_link_write1(small.l, "ping", 4), 0);
    settle();
    cr_assert_eq(srv[1].rx_len, 4);
    cr_assert_eq(srv[0].rx_len, n + 1);
    cr_assert_arr_eq(srv[0].rx + 1, data, n);
    cr_assert_lt(srv[1].watch_seen, 300 * 1024, "the small stream waited behind %zu bulk bytes",
                 srv[1].watch_seen);
    ep_close(&bulk);
    ep_close(&small);
    free(data);
}

Test(mux_session, memory_cap_on_both_sides)
{
    tt_mux_cfg ccfg = quiet_cfg(), scfg = quiet_cfg();
    ccfg.mem_max = 300 * 1024;
    scfg.mem_max = 100 * 1024;
    start_pair(&ccfg, &scfg, 64 * 1024);
    srv_tmpl = (ep){.read = false};
    static ep a = {0}, b = {0};
    ep_open(&a);
    ep_open(&b);
    uint8_t *data = pattern(250 * 1024, 5);
    cr_assert_eq(tt_link_write1(a.l, data, 250 * 1024), 0);
    cr_assert_gt(tt_mux_held(cs.s), 100 * 1024, "what the lower link cannot take is held");
    cr_assert_eq(tt_link_write1(b.l, data, 200 * 1024), UV_ENOBUFS, "over the client's cap");
    cr_assert_eq(tt_link_write1(b.l, data, 1024), 0, "a write under the cap still goes");
    settle();
    /* The server stashes for a reader that does not read, up to its cap,
     * then resets the stream. */
    cr_assert_eq(nsrv, 2);
    cr_assert_eq(srv[0].err, UV_ENOBUFS);
    cr_assert_eq(a.err, UV_ENOBUFS, "the client learns its stream was reset for overload");
    cr_assert_eq(srv[1].err, 0);
    cr_assert_leq(tt_mux_held(ss.s), 100 * 1024);
    ep_close(&a);
    ep_close(&b);
    free(data);
}

Test(mux_session, larger_window_is_granted_on_open)
{
    tt_mux_cfg cfg = quiet_cfg();
    cfg.stream_window = 1024 * 1024;
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = false};
    static ep c = {0};
    ep_open(&c);
    size_t n = 3 * 1024 * 1024;
    uint8_t *data = pattern(n, 9);
    cr_assert_eq(tt_link_write1(c.l, data, n), 0);
    settle();
    cr_assert_eq(tt_mux_held(ss.s), 1024 * 1024);
    cr_assert_eq(tt_link_pending(c.l), n - 1024 * 1024);
    cr_assert_eq(tt_link_read_start(srv[0].l), 0);
    settle();
    cr_assert_eq(srv[0].rx_len, n);
    cr_assert_arr_eq(srv[0].rx, data, n);
    ep_close(&c);
    free(data);
}

/* Auto-tuning: a reader that keeps up earns a larger window, which is
 * what it holds once it stops; one that never read holds only the initial
 * window (flow_control_holds_a_window_and_resumes). */
Test(mux_session, window_grows_for_a_reader_that_keeps_up)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true, .stop_at = 4 * 1024 * 1024};
    static ep c = {0};
    ep_open(&c);
    size_t n = 12 * 1024 * 1024;
    uint8_t *data = pattern(n, 10);
    cr_assert_eq(tt_link_write1(c.l, data, n), 0);
    settle();
    cr_assert_eq(nsrv, 1);
    cr_assert_geq(srv[0].rx_len, 4 * 1024 * 1024);
    cr_assert_lt(srv[0].rx_len, n);
    cr_assert_gt(tt_mux_held(ss.s), TT_MUX_INITIAL_WINDOW, "the window grew");
    cr_assert_leq(tt_mux_held(ss.s), TT_MUX_WINDOW_AUTO_MAX);
    srv[0].stop_at = 0;
    cr_assert_eq(tt_link_read_start(srv[0].l), 0);
    settle();
    cr_assert_eq(srv[0].rx_len, n);
    cr_assert_arr_eq(srv[0].rx, data, n);
    cr_assert_eq(tt_mux_held(ss.s), 0);
    ep_close(&c);
    free(data);
}

Test(mux_session, server_refuses_past_its_limit)
{
    tt_mux_cfg ccfg = quiet_cfg(), scfg = quiet_cfg();
    scfg.max_streams = 2;
    start_pair(&ccfg, &scfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep c[3] = {0};
    for (int i = 0; i < 3; i++) {
        ep_open(&c[i]);
        cr_assert_eq(tt_link_write1(c[i].l, "hi", 2), 0);
    }
    settle();
    cr_assert_eq(nsrv, 2);
    cr_assert_eq(c[0].err, 0);
    cr_assert_eq(c[1].err, 0);
    cr_assert_eq(c[2].err, UV_ECONNREFUSED);
    for (int i = 0; i < 3; i++)
        ep_close(&c[i]);
    settle();
    /* Room again once the server's owners close theirs. */
    ep_close(&srv[0]);
    settle();
    static ep d = {0};
    ep_open(&d);
    cr_assert_eq(tt_link_write1(d.l, "again", 5), 0);
    settle();
    cr_assert_eq(nsrv, 3);
    cr_assert_eq(d.err, 0);
    ep_close(&d);
}

Test(mux_session, client_limit_and_open_on_a_dead_session)
{
    tt_mux_cfg cfg = quiet_cfg();
    cfg.max_streams = 2;
    start_pair(&cfg, &cfg, 64 * 1024);
    static ep a = {0}, b = {0};
    ep_open(&a);
    ep_open(&b);
    cr_assert_not(tt_mux_can_open(cs.s));
    cr_assert_null(tt_mux_open(cs.s));
    ep_close(&a);
    cr_assert(tt_mux_can_open(cs.s));
    ep_close(&b);
    settle();
}

Test(mux_session, ping_timeout_cuts_a_silent_peer)
{
    tt_mux_cfg ccfg = quiet_cfg(), scfg = quiet_cfg();
    ccfg.ping_interval_ms = 30;
    ccfg.ping_timeout_ms = 60;
    start_pair(&ccfg, &scfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep c = {0};
    ep_open(&c);
    cr_assert_eq(tt_link_write1(c.l, "hello", 5), 0);
    RUN_UNTIL(nsrv > 0);
    /* The server's process hangs: its connection is no longer read. */
    tt_link_read_stop(&sl->base);
    RUN_UNTIL(c.err != 0);
    cr_assert_eq(c.err, UV_ETIMEDOUT);
    RUN_UNTIL(cs.ended != 0);
    cr_assert_eq(cs.end_err, UV_ETIMEDOUT);
    cr_assert_not_null(tt_mux_why(cs.s));
    ep_close(&c);
}

static void on_timer_flag(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

Test(mux_session, pings_keep_a_quiet_session_alive)
{
    tt_mux_cfg cfg = quiet_cfg();
    cfg.ping_interval_ms = 10;
    cfg.ping_timeout_ms = 20;
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep c = {0};
    ep_open(&c);
    cr_assert_eq(tt_link_write1(c.l, "x", 1), 0);
    size_t before = cl->written;
    bool done = false;
    static uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &done;
    uv_timer_start(&t, on_timer_flag, 150, 0);
    RUN_UNTIL(done);
    uv_close((uv_handle_t *)&t, on_timer_closed);
    cr_assert_eq(c.err, 0);
    cr_assert_eq(cs.ended + ss.ended, 0);
    cr_assert_gt(cl->written, before + 16, "pings were sent");
    ep_close(&c);
}

Test(mux_session, goaway_lets_streams_finish_then_ends)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true, .echo = true, .auto_close = true};
    static ep c = {0};
    ep_open(&c);
    c.auto_close = true;
    cr_assert_eq(tt_link_write1(c.l, "one", 3), 0);
    settle();
    tt_mux_goaway(ss.s);
    settle();
    cr_assert_not(tt_mux_can_open(cs.s), "no new stream after the server's go-away");
    cr_assert_null(tt_mux_open(cs.s));
    cr_assert_eq(cs.ended + ss.ended, 0, "the open stream keeps the sessions");
    /* The stream still works and ends normally. */
    cr_assert_eq(tt_link_write1(c.l, "two", 3), 0);
    cr_assert_eq(tt_link_shutdown(c.l), 0);
    settle();
    cr_assert_eq(c.err, 0);
    cr_assert_eq(c.rx_len, 6);
    cr_assert_arr_eq(c.rx, "onetwo", 6);
    cr_assert(c.close_cb_ran);
    cr_assert_eq(cs.ended, 1);
    cr_assert_eq(ss.ended, 1);
    cr_assert_eq(cs.end_err, 0);
    cr_assert_eq(ss.end_err, 0);
    cr_assert_null(tt_mux_why(cs.s));
}

Test(mux_session, client_goaway_and_idle_timeout)
{
    tt_mux_cfg ccfg = quiet_cfg(), scfg = quiet_cfg();
    ccfg.idle_timeout_ms = 20;
    start_pair(&ccfg, &scfg, 64 * 1024);
    srv_tmpl = (ep){.read = true, .echo = true, .auto_close = true};
    static ep c = {0};
    ep_open(&c);
    c.auto_close = true;
    cr_assert_eq(tt_link_write1(c.l, "x", 1), 0);
    cr_assert_eq(tt_link_shutdown(c.l), 0);
    /* The stream ends, the client idles out, goes away, both end. */
    settle();
    cr_assert(c.close_cb_ran);
    cr_assert_eq(cs.ended, 1);
    cr_assert_eq(ss.ended, 1);
    cr_assert_eq(cs.end_err, 0);
    cr_assert_eq(ss.end_err, 0);
}

Test(mux_session, lower_error_and_eof_cut_open_streams)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    static ep a = {0}, done = {0};
    ep_open(&a);
    ep_open(&done);
    cr_assert_eq(tt_link_write1(a.l, "a", 1), 0);
    cr_assert_eq(tt_link_shutdown(done.l), 0);
    settle();
    cr_assert_eq(nsrv, 2);
    cr_assert_eq(tt_link_shutdown(srv[1].l), 0);
    settle();
    cr_assert(done.eof);
    /* The client's connection fails. */
    cl->err_in = UV_ECONNRESET;
    pend_schedule(cl);
    settle();
    cr_assert_eq(a.err, UV_ECONNRESET);
    cr_assert_eq(done.err, 0, "a stream that had ended both ways is not cut");
    cr_assert_eq(cs.ended, 1);
    cr_assert_eq(cs.end_err, UV_ECONNRESET);
    cr_assert_eq(tt_link_write1(a.l, "x", 1), UV_ECONNRESET);
    cr_assert_null(tt_mux_open(cs.s));
    /* The server saw its connection aborted under an open stream. */
    cr_assert_eq(srv[0].err, UV_ECONNRESET);
    cr_assert_eq(srv[1].err, 0);
    cr_assert_eq(ss.ended, 1);
    ep_close(&a);
    ep_close(&done);
}

Test(mux_session, lower_eof_without_streams_is_a_clean_end)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    ss.close_on_end = true;
    tt_mux_close(cs.s); /* no stream: graceful */
    cs.s = NULL;
    settle();
    cr_assert_eq(ss.ended, 1);
    cr_assert_eq(ss.end_err, 0);
    cr_assert_eq(cs.ended, 0, "no callback after tt_mux_close");
}

Test(mux_session, close_with_streams_open_cancels_them)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true, .auto_close = true};
    static ep a = {0};
    ep_open(&a);
    cr_assert_eq(tt_link_write1(a.l, "a", 1), 0);
    settle();
    tt_mux_close(cs.s);
    cs.s = NULL;
    settle();
    cr_assert_eq(a.err, UV_ECANCELED);
    cr_assert_eq(srv[0].err, UV_ECONNRESET, "the server sees its connection aborted");
    cr_assert_eq(cs.ended, 0);
    ep_close(&a);
}

/* Closes that come from inside callbacks. */

static void closer_on_stream(void *ud, tt_link *l)
{
    on_stream(ud, l);
    ep *e = &srv[nsrv - 1];
    /* Refuse by closing at once, inside the callback. */
    ep_close(e);
}

static const tt_mux_callbacks closer_cbs = {closer_on_stream, on_end};

Test(mux_session, closes_inside_callbacks)
{
    tt_mux_cfg cfg = quiet_cfg();
    pipe_pair(&cl, &sl, 64 * 1024);
    cs.s = tt_mux_client(&cl->base, &cfg, &client_cbs, &cs);
    ss.s = tt_mux_server(&sl->base, &cfg, &closer_cbs, &ss, NULL, 0);
    static ep a = {0};
    ep_open(&a);
    cr_assert_eq(tt_link_write1(a.l, "hello", 5), 0);
    settle();
    cr_assert_eq(a.err, UV_ECONNRESET, "closed by the server inside on_stream");
    ep_close(&a);
    settle();
}

Test(mux_session, close_stream_and_session_inside_on_data)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true, .close_in_data = true};
    static ep a = {0}, b = {0};
    ep_open(&a);
    ep_open(&b);
    a.close_in_data = true;
    cr_assert_eq(tt_link_write1(a.l, "a", 1), 0);
    cr_assert_eq(tt_link_write1(b.l, "b", 1), 0);
    settle();
    cr_assert_eq(nsrv, 2);
    cr_assert_eq(a.err + b.err, UV_ECONNRESET * 2, "both server streams closed mid-stream");
    ep_close(&b);
    /* The client session, closed from inside a stream's on_data. */
    static ep c = {0};
    ep_open(&c);
    srv_tmpl = (ep){.read = true, .echo = true};
    cr_assert_eq(tt_link_write1(c.l, "c", 1), 0);
    c.close_in_data = true;
    RUN_UNTIL(c.rx_len > 0);
    tt_mux_close(cs.s);
    cs.s = NULL;
    settle();
}

Test(mux_session, a_peer_without_mux_is_a_protocol_error)
{
    tt_mux_cfg cfg = quiet_cfg();
    pend *other;
    pipe_pair(&cl, &other, 64 * 1024);
    cs.s = tt_mux_client(&cl->base, &cfg, &client_cbs, &cs);
    static ep a = {0};
    ep_open(&a);
    cr_assert_eq(tt_link_write1(a.l, "\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 9), 0);
    /* An old server answers as for a plain stream: bad version. */
    tt_link_set_handler(&other->base, &ep_handler, &srv[0]);
    srv[0].l = &other->base;
    nsrv = 1;
    cr_assert_eq(tt_link_write1(&other->base, "\x01\x01", 2), 0);
    settle();
    cr_assert_eq(a.err, UV_EPROTO);
    cr_assert_eq(cs.end_err, UV_EPROTO);
    cr_assert_str_eq(tt_mux_why(cs.s), "the connection does not start with the mux preface");
    ep_close(&a);
}

Test(mux_session, protocol_violation_ends_the_session_with_goaway)
{
    tt_mux_cfg cfg = quiet_cfg();
    pend *peer;
    pipe_pair(&peer, &sl, 64 * 1024);
    ss.s = tt_mux_server(&sl->base, &cfg, &server_cbs, &ss, NULL, 0);
    srv_tmpl = (ep){.read = true};
    static ep probe = {0};
    ep_track(&probe);
    probe.l = &peer->base;
    tt_link_set_handler(&peer->base, &ep_handler, &probe);
    cr_assert_eq(tt_link_read_start(&peer->base), 0);
    uint8_t buf[64];
    size_t n = 0;
    memcpy(buf, tt_mux_preface, 4);
    n = 4;
    tt_mux_hdr h = {.type = TT_MUX_DATA, .flags = TT_MUX_FLAG_OPEN, .len = 1, .stream = 1};
    n += tt_mux_hdr_encode(&h, buf + n);
    buf[n++] = 'x';
    /* Stream 1 again: an id that is not above the last one. */
    n += tt_mux_hdr_encode(&h, buf + n);
    buf[n++] = 'y';
    cr_assert_eq(tt_link_write1(&peer->base, buf, n), 0);
    settle();
    cr_assert_eq(nsrv, 1);
    cr_assert_eq(srv[0].err, UV_EPROTO);
    cr_assert_eq(ss.end_err, UV_EPROTO);
    /* What the server sent last: preface, go-away(last 1, PROTOCOL). */
    cr_assert_geq(probe.rx_len, 4 + 16);
    uint8_t ga[16];
    tt_mux_goaway_encode(1, TT_MUX_PROTOCOL, ga);
    cr_assert_arr_eq(probe.rx, tt_mux_preface, 4);
    cr_assert_arr_eq(probe.rx + probe.rx_len - 16, ga, 16);
    cr_assert(probe.eof, "then closed");
    ep_close(&probe);
}

Test(mux_session, server_takes_early_bytes_split_in_the_preface)
{
    tt_mux_cfg cfg = quiet_cfg();
    pend *peer;
    pipe_pair(&peer, &sl, 64 * 1024);
    srv_tmpl = (ep){.read = true};
    uint8_t buf[64];
    memcpy(buf, tt_mux_preface, 4);
    tt_mux_hdr h = {.type = TT_MUX_DATA, .flags = TT_MUX_FLAG_OPEN, .len = 3, .stream = 1};
    size_t n = 4 + tt_mux_hdr_encode(&h, buf + 4);
    memcpy(buf + n, "abc", 3);
    n += 3;
    static ep probe = {0};
    ep_track(&probe);
    probe.l = &peer->base;
    tt_link_set_handler(&peer->base, &ep_handler, &probe);
    /* The accept path read one byte; the rest arrives later. */
    ss.s = tt_mux_server(&sl->base, &cfg, &server_cbs, &ss, buf, 1);
    cr_assert_eq(nsrv, 0, "nothing happens inside tt_mux_server");
    cr_assert_eq(tt_link_write1(&peer->base, buf + 1, n - 1), 0);
    settle();
    cr_assert_eq(nsrv, 1);
    cr_assert_eq(srv[0].rx_len, 3);
    cr_assert_arr_eq(srv[0].rx, "abc", 3);
}

/* The relay over a mux stream: the server's stream relayed to a slow
 * destination (an in-memory link that holds writes). */

static memlink g_dest;

static void relay_on_stream(void *ud, tt_link *l)
{
    (void)ud;
    tt_relay_opts o = {.label = "mux test"};
    cr_assert_eq(tt_relay_start(l, &g_dest.base, &o), 0);
}

static const tt_mux_callbacks relay_cbs = {relay_on_stream, on_end};

Test(mux_session, relay_backpressure_and_half_close_through_the_mux)
{
    tt_mux_cfg cfg = quiet_cfg();
    memlink_init(&g_dest, &loop);
    g_dest.hold = true;
    pipe_pair(&cl, &sl, 64 * 1024);
    cs.s = tt_mux_client(&cl->base, &cfg, &client_cbs, &cs);
    ss.s = tt_mux_server(&sl->base, &cfg, &relay_cbs, &ss, NULL, 0);
    static ep c = {0};
    ep_open(&c);
    size_t n = 2 * 1024 * 1024;
    uint8_t *data = pattern(n, 21);
    cr_assert_eq(tt_link_write1(c.l, data, n), 0);
    settle();
    /* The relay stopped reading the stream once the destination held more
     * than its mark. */
    cr_assert_gt(g_dest.written_len, TT_RELAY_HIGH_WATERMARK);
    cr_assert_lt(g_dest.written_len, n / 2);
    /* The destination took its first bytes at once, so the window may
     * have grown (auto-tuning), but never past its cap; everything else is
     * still at the client, or in the pipe between them (64 KiB). */
    cr_assert_leq(tt_mux_held(ss.s), TT_MUX_WINDOW_AUTO_MAX);
    cr_assert_geq(tt_link_pending(c.l), n - g_dest.written_len - tt_mux_held(ss.s) - 64 * 1024);
    /* The destination drains, bit by bit: everything arrives, in order. */
    while (g_dest.written_len < n) {
        size_t before = g_dest.written_len;
        memlink_drain(&g_dest);
        settle();
        cr_assert_gt(g_dest.written_len, before, "no progress after a drain");
    }
    memlink_drain(&g_dest);
    cr_assert_arr_eq(g_dest.written, data, n);
    cr_assert_eq(tt_link_pending(c.l), 0);
    /* Half-close end to end, then the answer and the close. */
    cr_assert_eq(tt_link_shutdown(c.l), 0);
    settle();
    cr_assert(g_dest.shut, "the client's FIN reached the destination");
    memlink_deliver(&g_dest, "bye", 3);
    memlink_eof(&g_dest);
    settle();
    cr_assert_eq(c.rx_len, 3);
    cr_assert(c.eof);
    cr_assert(g_dest.closed, "the relay ended and closed both sides");
    cr_assert_eq(tt_mux_active(ss.s), 0);
    ep_close(&c);
    settle();
    cr_assert_eq(c.err, 0);
    free(data);
    memlink_free(&g_dest);
}

Test(mux_session, close_all_cuts_every_session)
{
    tt_mux_cfg cfg = quiet_cfg();
    start_pair(&cfg, &cfg, 64 * 1024);
    srv_tmpl = (ep){.read = true, .auto_close = true};
    static ep c = {0};
    ep_open(&c);
    cr_assert_eq(tt_link_write1(c.l, "x", 1), 0);
    settle();
    tt_mux_close_all();
    settle();
    cr_assert_eq(c.err, UV_ECANCELED);
    cr_assert_eq(srv[0].err, UV_ECANCELED);
    cr_assert_eq(cs.end_err, UV_ECANCELED);
    cr_assert_eq(ss.end_err, UV_ECANCELED);
    cr_assert_null(tt_mux_open(cs.s));
}

/* Over real TCP links. */

typedef struct tcp_ctx {
    tt_link *accepted;
    tt_link *connected;
} tcp_ctx;

static void on_tcp_accept(void *ud, tt_link *l)
{
    ((tcp_ctx *)ud)->accepted = l;
}

static void on_tcp_connect(void *ud, int status, tt_link *l)
{
    cr_assert_eq(status, 0);
    ((tcp_ctx *)ud)->connected = l;
}

Test(mux_session, bulk_both_ways_over_tcp)
{
    tcp_ctx t = {0};
    tt_tcp_listener *ls;
    cr_assert_eq(tt_tcp_listen(&loop, "127.0.0.1", 0, on_tcp_accept, &t, &ls), 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", tt_tcp_listener_port(ls), &sa);
    cr_assert_eq(
        tt_tcp_connect_start(&loop, (struct sockaddr *)&sa, 5000, on_tcp_connect, &t, NULL), 0);
    while (t.accepted == NULL || t.connected == NULL)
        uv_run(&loop, UV_RUN_ONCE);
    tt_tcp_listener_close(ls);
    tt_mux_cfg cfg = quiet_cfg();
    cs.s = tt_mux_client(t.connected, &cfg, &client_cbs, &cs);
    ss.s = tt_mux_server(t.accepted, &cfg, &server_cbs, &ss, NULL, 0);
    srv_tmpl = (ep){.echo = true, .auto_close = true, .read = true};
    enum { N = 4 };
    static ep c[N] = {0};
    uint8_t *want[N];
    size_t len = 4 * 1024 * 1024;
    for (int i = 0; i < N; i++) {
        ep_open(&c[i]);
        c[i].auto_close = true;
        want[i] = pattern(len, 100 + (unsigned)i);
        /* In pieces, as a relay would write them. */
        for (size_t off = 0; off < len; off += 256 * 1024)
            cr_assert_eq(tt_link_write1(c[i].l, want[i] + off, 256 * 1024), 0);
        cr_assert_eq(tt_link_shutdown(c[i].l), 0);
    }
    RUN_UNTIL(c[0].close_cb_ran && c[1].close_cb_ran && c[2].close_cb_ran && c[3].close_cb_ran);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(c[i].err, 0, "stream %d: %s", i, uv_strerror(c[i].err));
        cr_assert_eq(c[i].rx_len, len);
        cr_assert_arr_eq(c[i].rx, want[i], len);
        free(want[i]);
    }
}

/* The pool, over a fake carrier whose dials complete from the loop with one
 * end of a pipe; the other end gets a server session. */

typedef struct fake_carrier {
    tt_carrier base;
    int dials, cancels;
    int fail; /* dials fail with this code */
    bool closed;
} fake_carrier;

typedef struct fdial {
    uv_timer_t t;
    fake_carrier *fc;
    tt_carrier_dial_cb cb;
    void *ud;
    bool cancelled;
} fdial;

#define MAXF 8
static sess fss[MAXF];  /* server sessions made by the fake carrier */
static pend *fcl[MAXF]; /* their clients' lower links */
static unsigned nfss;
static bool g_fake_closed;

static void fdial_closed(uv_handle_t *h)
{
    free(h->data);
}

static void fdial_fire(uv_timer_t *t)
{
    fdial *d = t->data;
    uv_close((uv_handle_t *)&d->t, fdial_closed);
    if (d->cancelled) {
        d->cb(d->ud, UV_ECANCELED, NULL);
        return;
    }
    if (d->fc->fail) {
        d->cb(d->ud, d->fc->fail, NULL);
        return;
    }
    cr_assert_lt(nfss, MAXF);
    pend *a, *b;
    pipe_pair(&a, &b, 64 * 1024);
    tt_mux_cfg cfg = quiet_cfg();
    sess *x = &fss[nfss];
    fcl[nfss++] = a;
    x->close_on_end = true;
    x->s = tt_mux_server(&b->base, &cfg, &server_cbs, x, NULL, 0);
    d->cb(d->ud, 0, &a->base);
}

static int fake_dial(tt_carrier *c, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                     tt_carrier_dial **req)
{
    (void)t;
    fake_carrier *fc = (fake_carrier *)c;
    fdial *d = calloc(1, sizeof *d);
    d->fc = fc;
    d->cb = cb;
    d->ud = ud;
    uv_timer_init(&loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, fdial_fire, 1, 0);
    fc->dials++;
    if (req)
        *req = (tt_carrier_dial *)d;
    return 0;
}

static void fake_dial_cancel(tt_carrier_dial *req)
{
    fdial *d = (fdial *)req;
    d->cancelled = true;
    d->fc->cancels++;
    uv_timer_start(&d->t, fdial_fire, 0, 0);
}

static void fake_close(tt_carrier *c)
{
    g_fake_closed = true;
    free(c);
}

static const tt_carrier_type fake_ops = {
    .scheme = "fake",
    .dial = fake_dial,
    .dial_cancel = fake_dial_cancel,
    .close = fake_close,
};

static fake_carrier *fake_new(void)
{
    fake_carrier *fc = calloc(1, sizeof *fc);
    fc->base.type = &fake_ops;
    fc->base.loop = &loop;
    return fc;
}

typedef struct preq {
    bool done;
    int status;
    ep e;
} preq;

static void on_pool_stream(void *ud, int status, tt_link *l)
{
    preq *r = ud;
    cr_assert_not(r->done, "a pool callback ran twice");
    r->done = true;
    r->status = status;
    if (l) {
        ep_track(&r->e);
        r->e.l = l;
        tt_link_set_handler(l, &ep_handler, &r->e);
        cr_assert_eq(tt_link_read_start(l), 0);
    }
}

static tt_mux_pool *g_pool;

static void pool_teardown(void)
{
    if (g_pool)
        tt_mux_pool_close(g_pool, false);
    g_pool = NULL;
    for (unsigned i = 0; i < ncli; i++)
        ep_close(g_cli[i]);
    settle();
    for (unsigned i = 0; i < nfss; i++)
        if (fss[i].s && fss[i].ended == 0) {
            tt_mux_close(fss[i].s);
            fss[i].s = NULL;
        }
    teardown();
}

static void pool_setup(void)
{
    setup();
    memset(fss, 0, sizeof fss);
    nfss = 0;
    g_fake_closed = false;
}

TestSuite(mux_pool, .init = pool_setup, .fini = pool_teardown, .timeout = 30);

Test(mux_pool, shares_dials_and_packs_streams)
{
    fake_carrier *fc = fake_new();
    tt_mux_cfg cfg = quiet_cfg();
    g_pool = tt_mux_pool_new(&loop, &fc->base, &cfg, 2);
    srv_tmpl = (ep){.read = true, .echo = true};
    static preq r[6];
    for (int i = 0; i < 5; i++)
        cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &r[i], NULL), 0);
    cr_assert_eq(fc->dials, 3, "five requests at two per connection share three dials");
    cr_assert_eq(tt_mux_pool_dials(g_pool), 3);
    for (int i = 0; i < 5; i++)
        cr_assert_not(r[i].done, "no callback inside tt_mux_pool_open");
    RUN_UNTIL(r[0].done && r[1].done && r[2].done && r[3].done && r[4].done);
    cr_assert_eq(tt_mux_pool_sessions(g_pool), 3);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(r[i].status, 0);
        char msg[16];
        int n = snprintf(msg, sizeof msg, "stream %d", i);
        cr_assert_eq(tt_link_write1(r[i].e.l, msg, (size_t)n), 0);
    }
    settle();
    for (int i = 0; i < 5; i++)
        cr_assert_eq(r[i].e.rx_len, 8, "stream %d got %zu bytes back", i, r[i].e.rx_len);
    /* The sixth fits the session that has one stream: no new dial, and the
     * callback still comes from the loop. */
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &r[5], NULL), 0);
    cr_assert_not(r[5].done);
    cr_assert_eq(fc->dials, 3);
    RUN_UNTIL(r[5].done);
    cr_assert_eq(r[5].status, 0);
    cr_assert_eq(tt_mux_pool_sessions(g_pool), 3);
}

Test(mux_pool, cancel_a_waiting_and_a_ready_request)
{
    fake_carrier *fc = fake_new();
    tt_mux_cfg cfg = quiet_cfg();
    g_pool = tt_mux_pool_new(&loop, &fc->base, &cfg, 4);
    srv_tmpl = (ep){.read = true};
    static preq a, b, c;
    tt_mux_pool_req *ra, *rc;
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &a, &ra), 0);
    tt_mux_pool_cancel(ra);
    cr_assert_eq(fc->cancels, 1, "nobody else waits: the dial is cancelled");
    settle();
    cr_assert_not(a.done);
    cr_assert_eq(tt_mux_pool_sessions(g_pool), 0);
    /* A session exists: the next request is ready at once, then cancelled. */
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &b, NULL), 0);
    RUN_UNTIL(b.done);
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &c, &rc), 0);
    cr_assert_eq(fc->dials, 2);
    tt_mux_pool_cancel(rc);
    settle();
    cr_assert_not(c.done);
    cr_assert_eq(tt_mux_pool_sessions(g_pool), 1);
}

Test(mux_pool, idle_sessions_close_and_later_requests_dial_anew)
{
    fake_carrier *fc = fake_new();
    tt_mux_cfg cfg = quiet_cfg();
    cfg.idle_timeout_ms = 10;
    g_pool = tt_mux_pool_new(&loop, &fc->base, &cfg, 4);
    srv_tmpl = (ep){.read = true, .auto_close = true};
    static preq a, b;
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &a, NULL), 0);
    RUN_UNTIL(a.done);
    cr_assert_eq(tt_link_write1(a.e.l, "x", 1), 0);
    ep_close(&a.e);
    RUN_UNTIL(tt_mux_pool_sessions(g_pool) == 0);
    RUN_UNTIL(fss[0].ended == 1);
    cr_assert_eq(fss[0].end_err, 0, "the idle session went away gracefully");
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &b, NULL), 0);
    RUN_UNTIL(b.done);
    cr_assert_eq(b.status, 0);
    cr_assert_eq(fc->dials, 2);
}

Test(mux_pool, a_dead_session_is_dropped)
{
    fake_carrier *fc = fake_new();
    tt_mux_cfg cfg = quiet_cfg();
    g_pool = tt_mux_pool_new(&loop, &fc->base, &cfg, 4);
    srv_tmpl = (ep){.read = true};
    static preq a, b;
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &a, NULL), 0);
    RUN_UNTIL(a.done);
    cr_assert_eq(tt_link_write1(a.e.l, "x", 1), 0);
    /* The connection breaks. */
    fcl[0]->err_in = UV_ECONNRESET;
    pend_schedule(fcl[0]);
    RUN_UNTIL(a.e.err != 0);
    cr_assert_eq(a.e.err, UV_ECONNRESET);
    RUN_UNTIL(tt_mux_pool_sessions(g_pool) == 0);
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &b, NULL), 0);
    RUN_UNTIL(b.done);
    cr_assert_eq(b.status, 0);
    cr_assert_eq(fc->dials, 2);
}

Test(mux_pool, dial_failure_reaches_every_waiter)
{
    fake_carrier *fc = fake_new();
    fc->fail = UV_ECONNREFUSED;
    g_pool = tt_mux_pool_new(&loop, &fc->base, NULL, 3);
    static preq r[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &r[i], NULL), 0);
    cr_assert_eq(fc->dials, 1);
    RUN_UNTIL(r[0].done && r[1].done && r[2].done);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(r[i].status, UV_ECONNREFUSED);
}

Test(mux_pool, close_cuts_or_drains_sessions_and_frees_the_carrier)
{
    fake_carrier *fc = fake_new();
    tt_mux_cfg cfg = quiet_cfg();
    g_pool = tt_mux_pool_new(&loop, &fc->base, &cfg, 4);
    srv_tmpl = (ep){.read = true};
    static preq a, waiting;
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &a, NULL), 0);
    RUN_UNTIL(a.done);
    cr_assert_eq(tt_link_write1(a.e.l, "x", 1), 0);
    settle();
    /* The carrier view: a dial through it is a pool request. */
    tt_carrier *view = tt_mux_pool_carrier(g_pool);
    cr_assert_eq(view->type->dial(view, NULL, on_pool_stream, &waiting, NULL), 0);
    cr_assert_not(waiting.done);
    tt_mux_pool_close(g_pool, true);
    g_pool = NULL;
    settle();
    cr_assert_eq(a.e.err, UV_ECANCELED);
    cr_assert(waiting.done, "a request holding a stream hears of its end");
    cr_assert_eq(waiting.status, UV_ECANCELED);
    cr_assert(g_fake_closed, "the inner carrier is closed with the pool");
}

Test(mux_pool, graceful_close_lets_open_streams_finish)
{
    fake_carrier *fc = fake_new();
    tt_mux_cfg cfg = quiet_cfg();
    g_pool = tt_mux_pool_new(&loop, &fc->base, &cfg, 4);
    srv_tmpl = (ep){.read = true, .echo = true, .auto_close = true};
    static preq a;
    cr_assert_eq(tt_mux_pool_open(g_pool, on_pool_stream, &a, NULL), 0);
    RUN_UNTIL(a.done);
    a.e.auto_close = true;
    tt_mux_pool_close(g_pool, false);
    g_pool = NULL;
    settle();
    cr_assert_not(g_fake_closed, "a session with an open stream keeps the pool");
    cr_assert_eq(tt_link_write1(a.e.l, "still here", 10), 0);
    cr_assert_eq(tt_link_shutdown(a.e.l), 0);
    settle();
    cr_assert_eq(a.e.err, 0);
    cr_assert_eq(a.e.rx_len, 10);
    cr_assert(a.e.eof);
    cr_assert(fss[0].ended && fss[0].end_err == 0, "the server saw a graceful end");
    cr_assert(g_fake_closed, "then the pool and its carrier are freed");
}
