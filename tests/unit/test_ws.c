/* The WebSocket link. Two kinds of test:
 * - A client and a server end back to back over real TCP on 127.0.0.1 in one
 *   loop: bulk data both ways with backpressure, half-closes, close versus
 *   abort. (bench/wsbench.c measures the link's throughput.)
 * - One end over an in-memory lower link (memlink.c), the test playing the
 *   peer byte by byte: the exact frames written, every protocol error, ping,
 *   fragmentation, early bytes, stopping mid-read, closing inside on_data. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "link/tcp.h"
#include "link/ws.h"
#include "memlink.h"

static uv_loop_t loop;

/* What one end's owner saw. */
typedef struct sink {
    tt_link *l;
    uint8_t *buf;
    size_t len, cap;
    int calls;
    int eofs;
    int err;
    int drained;
    bool closed;
    bool in_api;         /* inside a call that must not call back */
    bool reentered;      /* a handler ran inside such a call */
    int stop_after;      /* read_stop after this many deliveries (0: never) */
    int stop_every;      /* read_stop every so many deliveries, resumed from the loop */
    bool close_in_data;  /* close the link from inside on_data */
    size_t pump_left;    /* bytes still to write on each drain */
    size_t pump_off;     /* pattern offset of the next pumped byte */
    uint8_t salt;        /* pattern of the pumped bytes */
    uv_timer_t *restart; /* resumes reading after stop_every */
} sink;

static sink cs, ss; /* the client end's and the server end's owners */
static uv_timer_t restart[2];
static memlink ml;   /* lower link for the single-end tests */
static bool ml_live; /* ml has been initialised */

static uint8_t pat(uint64_t i, uint8_t salt)
{
    return (uint8_t)(((i * 2654435761u) >> 13) ^ (i >> 20) ^ salt);
}

static void on_closed(void *ud)
{
    ((sink *)ud)->closed = true;
}

static void on_restart(uv_timer_t *t)
{
    sink *s = t->data;
    if (!s->closed && s->l)
        cr_assert_eq(tt_link_read_start(s->l), 0);
}

static void on_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    sink *s = ud;
    if (s->in_api)
        s->reentered = true;
    cr_assert_gt(n, 0, "empty delivery");
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, d, n);
    s->len += n;
    s->calls++;
    if (s->close_in_data) {
        tt_link_close(l, on_closed, s);
        return;
    }
    if (s->stop_after && s->calls == s->stop_after)
        tt_link_read_stop(l);
    if (s->stop_every && s->calls % s->stop_every == 0) {
        tt_link_read_stop(l);
        uv_timer_start(s->restart, on_restart, 0, 0);
    }
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    sink *s = ud;
    if (s->in_api)
        s->reentered = true;
    s->eofs++;
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    sink *s = ud;
    if (s->in_api)
        s->reentered = true;
    s->err = err;
}

static uint8_t g_chunk[256 * 1024];

/* The largest control frame payload (RFC 6455 5.5). */
#define CTL_PAYLOAD 125

/* Writes pattern bytes while the link's queue is short; the rest on drain. */
static void pump(sink *s)
{
    while (s->pump_left > 0 && tt_link_pending(s->l) < 1024 * 1024) {
        size_t n = s->pump_left < sizeof g_chunk ? s->pump_left : sizeof g_chunk;
        for (size_t i = 0; i < n; i++)
            g_chunk[i] = pat(s->pump_off + i, s->salt);
        cr_assert_eq(tt_link_write1(s->l, g_chunk, n), 0);
        s->pump_left -= n;
        s->pump_off += n;
    }
}

static void on_drained(tt_link *l, void *ud)
{
    (void)l;
    sink *s = ud;
    s->drained++;
    if (s->pump_left > 0)
        pump(s);
}

static const tt_link_handler h = {on_data, on_eof, on_error, on_drained};

/* Forgets what S saw (its restart timer stays). */
static void sink_reset(sink *s)
{
    uv_timer_t *t = s->restart;
    free(s->buf);
    memset(s, 0, sizeof *s);
    s->restart = t;
    t->data = s;
}

/* A new memlink in ml; the old one (closed by its ws link, or not) goes. */
static void ml_fresh(void)
{
    if (ml_live) {
        if (!ml.closing)
            uv_close((uv_handle_t *)&ml.timer, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        memlink_free(&ml);
    }
    memlink_init(&ml, &loop);
    ml_live = true;
}

static void setup(void)
{
    uv_loop_init(&loop);
    for (int i = 0; i < 2; i++)
        uv_timer_init(&loop, &restart[i]);
    cs.restart = &restart[0];
    ss.restart = &restart[1];
    sink_reset(&cs);
    sink_reset(&ss);
    ml_fresh();
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&restart[i], NULL);
    if (!ml.closing)
        uv_close((uv_handle_t *)&ml.timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
    free(cs.buf);
    free(ss.buf);
    memlink_free(&ml);
    ml_live = false;
}

/* Runs the loop until COND holds; fails if the loop runs dry first. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond)) {                                                                          \
            if (uv_run(&loop, UV_RUN_ONCE) == 0 && !(cond))                                        \
                cr_assert_fail("the loop ran dry waiting for: %s", #cond);                         \
        }                                                                                          \
    } while (0)

/* Frames as the peer writes them. A masked frame uses the key of the example
 * in RFC 6455 5.7. */
static const uint8_t rfc_key[4] = {0x37, 0xfa, 0x21, 0x3d};

static size_t mkframe(uint8_t *out, uint8_t b0, const void *payload, size_t len, bool mask)
{
    size_t n = 0;
    uint8_t m = mask ? 0x80 : 0;
    out[n++] = b0;
    if (len < 126) {
        out[n++] = m | (uint8_t)len;
    } else if (len < 65536) {
        out[n++] = m | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    if (mask) {
        memcpy(out + n, rfc_key, 4);
        n += 4;
    }
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[n + i] = mask ? (uint8_t)(p[i] ^ rfc_key[i & 3]) : p[i];
    return n + len;
}

/* One frame as the link wrote it, unmasked. */
typedef struct frame {
    uint8_t b0;
    bool masked;
    uint8_t key[4];
    uint8_t *payload; /* malloc'd */
    size_t len;
} frame;

/* Decodes the frame at BUF (N bytes); returns its size, 0 if incomplete. */
static size_t parse_frame(const uint8_t *buf, size_t n, frame *f)
{
    if (n < 2)
        return 0;
    size_t off = 2;
    uint64_t len = buf[1] & 0x7F;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)buf[2] << 8 | buf[3];
        off = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | buf[2 + i];
        off = 10;
    }
    f->b0 = buf[0];
    f->masked = (buf[1] & 0x80) != 0;
    if (f->masked) {
        if (n < off + 4)
            return 0;
        memcpy(f->key, buf + off, 4);
        off += 4;
    }
    if (n < off + len)
        return 0;
    f->len = (size_t)len;
    f->payload = malloc(f->len + 1);
    for (size_t i = 0; i < f->len; i++)
        f->payload[i] = buf[off + i] ^ (f->masked ? f->key[i & 3] : 0);
    return off + (size_t)len;
}

/* All frames in BUF; returns how many (at most MAX). */
static int parse_all(const uint8_t *buf, size_t n, frame *fs, int max)
{
    int k = 0;
    size_t off = 0;
    while (off < n && k < max) {
        size_t used = parse_frame(buf + off, n - off, &fs[k]);
        cr_assert_gt(used, 0, "a truncated frame at offset %zu", off);
        off += used;
        k++;
    }
    cr_assert_eq(off, n, "more frames than expected");
    return k;
}

static void free_frames(frame *fs, int n)
{
    for (int i = 0; i < n; i++)
        free(fs[i].payload);
}

/* A ws end over the memlink, owned by sink S, reading. */
static tt_link *mem_end(bool client, sink *s, const tt_ws_opts *o)
{
    tt_link *l = tt_ws_link_new(&ml.base, client, NULL, 0, o);
    cr_assert_not_null(l);
    s->l = l;
    tt_link_set_handler(l, &h, s);
    cr_assert_eq(tt_link_read_start(l), 0);
    return l;
}

static void peer_sends(const void *bytes, size_t n)
{
    cr_assert(memlink_deliver(&ml, bytes, n), "the link is not reading its lower link");
}

TestSuite(ws, .init = setup, .fini = teardown, .timeout = 30);

/* Frames written. */

Test(ws, server_frames_are_exact)
{
    tt_ws_opts o = {.max_frame = 100000};
    tt_link *l = mem_end(false, &ss, &o);
    cr_assert_eq(tt_link_write1(l, "Hello", 5), 0);
    static const uint8_t hello[] = {0x82, 0x05, 'H', 'e', 'l', 'l', 'o'};
    cr_assert_eq(ml.written_len, sizeof hello);
    cr_assert_eq(memcmp(ml.written, hello, sizeof hello), 0);

    /* 16-bit and 64-bit lengths (RFC 6455 5.7's 256-byte and 64 KiB examples). */
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = pat(i, 1);
    size_t at = ml.written_len;
    cr_assert_eq(tt_link_write1(l, big, 256), 0);
    static const uint8_t h256[] = {0x82, 0x7E, 0x01, 0x00};
    cr_assert_eq(memcmp(ml.written + at, h256, 4), 0);
    cr_assert_eq(memcmp(ml.written + at + 4, big, 256), 0);
    at = ml.written_len;
    cr_assert_eq(tt_link_write1(l, big, 65536), 0);
    static const uint8_t h64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    cr_assert_eq(memcmp(ml.written + at, h64k, 10), 0);
    cr_assert_eq(memcmp(ml.written + at + 10, big, 65536), 0);

    /* Nothing for an empty write; the end of the stream is an empty message. */
    at = ml.written_len;
    cr_assert_eq(tt_link_write1(l, "", 0), 0);
    cr_assert_eq(ml.written_len, at);
    cr_assert_eq(tt_link_shutdown(l), 0);
    cr_assert_eq(ml.written_len, at + 2);
    cr_assert_eq(memcmp(ml.written + at, "\x82\x00", 2), 0);
    cr_assert_eq(tt_link_write1(l, "x", 1), UV_EPIPE, "no writes after shutdown");

    /* Close: a close frame 1000 (the stream has ended already), then the
     * peer's answer ends it at once. */
    at = ml.written_len;
    tt_link_close(l, on_closed, &ss);
    cr_assert_eq(ml.written_len, at + 4);
    cr_assert_eq(memcmp(ml.written + at, "\x88\x02\x03\xE8", 4), 0);
    uint8_t f[16];
    size_t n = mkframe(f, 0x88, "\x03\xE8", 2, true);
    peer_sends(f, n);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert(ss.closed, "the close handshake was complete");
    cr_assert_not(ml.aborted);
    cr_assert_eq(ss.eofs + ss.calls, 0, "no handler after close");
}

Test(ws, a_write_is_cut_into_frames_across_buffers)
{
    tt_ws_opts o = {.max_frame = 1000};
    tt_link *l = mem_end(false, &ss, &o);
    static uint8_t src[2500];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = pat(i, 2);
    uv_buf_t b[3] = {uv_buf_init((char *)src, 700), uv_buf_init((char *)src + 700, 1),
                     uv_buf_init((char *)src + 701, 1799)};
    cr_assert_eq(tt_link_write(l, b, 3), 0);
    frame fs[4];
    cr_assert_eq(parse_all(ml.written, ml.written_len, fs, 4), 3);
    static const size_t want[] = {1000, 1000, 500};
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(fs[i].b0, 0x82);
        cr_assert_not(fs[i].masked);
        cr_assert_eq(fs[i].len, want[i]);
        cr_assert_eq(memcmp(fs[i].payload, src + off, want[i]), 0);
        off += want[i];
    }
    free_frames(fs, 3);
    tt_link_close(l, on_closed, &ss);
    tt_link_close(l, on_closed, &ss); /* twice is harmless */
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(ss.closed, "the close timed out and called back");
}

Test(ws, client_frames_are_masked_with_fresh_keys)
{
    tt_ws_opts o = {.max_frame = 1024};
    tt_link *l = mem_end(true, &cs, &o);
    static uint8_t src[3000];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = pat(i, 3);
    /* Odd buffer edges, so that masking continues mid-key across them. */
    uv_buf_t b[3] = {uv_buf_init((char *)src, 3), uv_buf_init((char *)src + 3, 1030),
                     uv_buf_init((char *)src + 1033, 1967)};
    cr_assert_eq(tt_link_write(l, b, 3), 0);
    cr_assert_eq(tt_link_shutdown(l), 0);
    frame fs[5];
    cr_assert_eq(parse_all(ml.written, ml.written_len, fs, 5), 4);
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(fs[i].b0, 0x82);
        cr_assert(fs[i].masked, "client frames are masked");
        cr_assert_eq(memcmp(fs[i].payload, src + off, fs[i].len), 0, "frame %d", i);
        off += fs[i].len;
    }
    cr_assert_eq(off, sizeof src);
    cr_assert(memcmp(fs[0].key, fs[1].key, 4) != 0 || memcmp(fs[1].key, fs[2].key, 4) != 0,
              "a fresh key per frame");
    cr_assert_eq(fs[3].b0, 0x82);
    cr_assert(fs[3].masked);
    cr_assert_eq(fs[3].len, 0, "the end of the stream is an empty message");
    free_frames(fs, 4);

    /* A large write goes out the same way (more than one outgoing buffer). */
    size_t at = ml.written_len;
    tt_link_close(l, on_closed, &cs);
    frame c;
    cr_assert_eq(parse_frame(ml.written + at, ml.written_len - at, &c), ml.written_len - at);
    cr_assert_eq(c.b0, 0x88);
    cr_assert(c.masked);
    cr_assert_eq(c.len, 2);
    cr_assert_eq(memcmp(c.payload, "\x03\xE8", 2), 0);
    free(c.payload);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(cs.closed);
}

Test(ws, large_client_write_spans_buffers)
{
    tt_ws_opts o = {.max_frame = 300000};
    tt_link *l = mem_end(true, &cs, &o);
    size_t total = 1000000;
    uint8_t *src = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = pat(i, 4);
    cr_assert_eq(tt_link_write1(l, src, total), 0);
    frame fs[5];
    cr_assert_eq(parse_all(ml.written, ml.written_len, fs, 5), 4);
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(memcmp(fs[i].payload, src + off, fs[i].len), 0, "frame %d", i);
        off += fs[i].len;
    }
    cr_assert_eq(off, total);
    free_frames(fs, 4);
    free(src);
    tt_link_abort(l, on_closed, &cs);
    uv_run(&loop, UV_RUN_DEFAULT);
}

Test(ws, pending_and_drained_follow_the_lower_link)
{
    tt_link *l = mem_end(false, &ss, NULL);
    ml.hold = true;
    cr_assert_eq(tt_link_write1(l, "abc", 3), 0);
    cr_assert_eq(tt_link_pending(l), 5);
    memlink_drain(&ml);
    cr_assert_eq(tt_link_pending(l), 0);
    cr_assert_eq(ss.drained, 1);
    tt_link_abort(l, on_closed, &ss);
    memlink_drain(&ml); /* while closing: no handler */
    cr_assert_eq(ss.drained, 1);
}

Test(ws, abort_sends_1011_and_aborts_the_lower_link)
{
    tt_link *l = mem_end(false, &ss, NULL);
    cr_assert_eq(tt_link_write1(l, "partial", 7), 0);
    size_t at = ml.written_len;
    tt_link_abort(l, on_closed, &ss);
    cr_assert_eq(ml.written_len, at + 4);
    cr_assert_eq(memcmp(ml.written + at, "\x88\x02\x03\xF3", 4), 0);
    cr_assert(ml.aborted);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(ss.closed);
}

/* Frames read. */

Test(ws, ping_is_answered_with_pong)
{
    /* RFC 6455 5.7: an unmasked ping "Hello" to a client... */
    tt_link *l = mem_end(true, &cs, NULL);
    static const uint8_t ping[] = {0x89, 0x05, 'H', 'e', 'l', 'l', 'o'};
    peer_sends(ping, sizeof ping);
    frame f;
    cr_assert_eq(parse_frame(ml.written, ml.written_len, &f), ml.written_len);
    cr_assert_eq(f.b0, 0x8A);
    cr_assert(f.masked);
    cr_assert_eq(f.len, 5);
    cr_assert_eq(memcmp(f.payload, "Hello", 5), 0);
    free(f.payload);
    cr_assert_eq(cs.calls + cs.eofs + cs.err, 0);
    tt_link_abort(l, NULL, NULL);
}

Test(ws, masked_ping_to_a_server)
{
    tt_link *l = mem_end(false, &ss, NULL);
    /* ... and the masked form of RFC 6455 5.7, as a ping to a server. */
    static const uint8_t ping[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    peer_sends(ping, sizeof ping);
    static const uint8_t pong[] = {0x8A, 0x05, 'H', 'e', 'l', 'l', 'o'};
    cr_assert_eq(ml.written_len, sizeof pong);
    cr_assert_eq(memcmp(ml.written, pong, sizeof pong), 0);
    tt_link_abort(l, NULL, NULL);
}

/* A peer that sends pings and never reads: before pongs were bounded, each
 * ping queued a pong, and one such connection grew a server by 115 MB/s. */
Test(ws, pings_from_a_peer_that_never_reads_cost_bounded_memory)
{
    tt_link *l = mem_end(false, &ss, NULL);
    ml.hold = true; /* nothing written is ever taken */
    static uint8_t batch[1000 * (6 + CTL_PAYLOAD)];
    uint8_t payload[CTL_PAYLOAD];
    uint32_t seq = 0;
    for (int round = 0; round < 200; round++) {
        size_t n = 0;
        for (int i = 0; i < 1000; i++, seq++) {
            memset(payload, 'a' + (int)(seq % 26), sizeof payload);
            memcpy(payload, &seq, sizeof seq);
            n += mkframe(batch + n, 0x89, payload, sizeof payload, true);
        }
        peer_sends(batch, n);
        /* One pong went out at the first read; every later ping replaces
         * the one owed while it waits. */
        cr_assert_leq(tt_link_pending(l), 2 + CTL_PAYLOAD, "round %d: %zu bytes queued", round,
                      tt_link_pending(l));
    }
    cr_assert_eq(ss.calls + ss.eofs + ss.err, 0);
    /* The queue drains: one pong more, for the latest ping (RFC 6455 5.5.3). */
    memlink_drain(&ml);
    frame fs[3];
    int k = parse_all(ml.written, ml.written_len, fs, 3);
    cr_assert_eq(k, 2);
    uint32_t first, last;
    memcpy(&first, fs[0].payload, sizeof first);
    memcpy(&last, fs[1].payload, sizeof last);
    cr_assert_eq(fs[0].b0, 0x8A);
    cr_assert_eq(fs[1].b0, 0x8A);
    cr_assert_eq(fs[1].len, CTL_PAYLOAD);
    cr_assert_eq(first, 999, "the first read's pings get one pong, for the last of them");
    cr_assert_eq(last, seq - 1);
    free_frames(fs, k);
    /* A ping to a link whose queue is empty is answered at once. */
    ml.hold = false;
    memlink_drain(&ml);
    size_t at = ml.written_len;
    size_t n = mkframe(batch, 0x89, "now", 3, true);
    peer_sends(batch, n);
    cr_assert_eq(ml.written_len, at + 5);
    cr_assert_eq(memcmp(ml.written + at, "\x8A\x03now", 5), 0);
    tt_link_abort(l, NULL, NULL);
}

Test(ws, a_ping_owed_is_answered_before_the_close_frame)
{
    tt_link *l = mem_end(false, &ss, NULL);
    ml.hold = true;
    cr_assert_eq(tt_link_write1(l, "queued", 6), 0);
    uint8_t buf[64];
    size_t n = mkframe(buf, 0x89, "p1", 2, true);
    n += mkframe(buf + n, 0x82, "", 0, true);         /* end of stream */
    n += mkframe(buf + n, 0x88, "\x03\xE8", 2, true); /* close 1000 */
    size_t at = ml.written_len;
    peer_sends(buf, n);
    frame fs[3];
    int k = parse_all(ml.written + at, ml.written_len - at, fs, 3);
    cr_assert_eq(k, 2);
    cr_assert_eq(fs[0].b0, 0x8A);
    cr_assert_eq(memcmp(fs[0].payload, "p1", 2), 0);
    cr_assert_eq(fs[1].b0, 0x88);
    free_frames(fs, k);
    tt_link_close(l, on_closed, &ss);
    memlink_drain(&ml);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(ss.closed);
}

/* A stream of frames with everything a peer may do: fragments with control
 * frames between them, a pong, a 40 KB frame and a 70 KB frame, then the
 * end-of-stream message and a close 1000. */
static size_t rich_stream(uint8_t *out, uint8_t *expect, size_t *elen)
{
    size_t n = 0, e = 0;
    n += mkframe(out + n, 0x02, "ab", 2, true); /* binary, not FIN */
    n += mkframe(out + n, 0x89, "p", 1, true);  /* ping in between */
    n += mkframe(out + n, 0x00, "cd", 2, true); /* continuation */
    n += mkframe(out + n, 0x8A, "", 0, true);   /* pong */
    n += mkframe(out + n, 0x00, "", 0, true);   /* empty continuation */
    n += mkframe(out + n, 0x80, "ef", 2, true); /* last fragment */
    memcpy(expect + e, "abcdef", 6);
    e += 6;
    static uint8_t mid[40000], big[70000];
    for (size_t i = 0; i < sizeof mid; i++)
        mid[i] = pat(i, 5);
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = pat(i, 6);
    n += mkframe(out + n, 0x82, mid, sizeof mid, true);
    memcpy(expect + e, mid, sizeof mid);
    e += sizeof mid;
    n += mkframe(out + n, 0x82, big, sizeof big, true);
    memcpy(expect + e, big, sizeof big);
    e += sizeof big;
    n += mkframe(out + n, 0x82, "", 0, true);         /* end of stream */
    n += mkframe(out + n, 0x88, "\x03\xE8", 2, true); /* close 1000 */
    *elen = e;
    return n;
}

Test(ws, fragments_and_control_frames_split_at_every_byte)
{
    static uint8_t stream[120000], expect[120000];
    size_t elen;
    size_t n = rich_stream(stream, expect, &elen);
    /* Every split point in the headers and the small frames, and a sample in
     * the big payloads. */
    for (size_t cut = 0; cut <= n; cut += (cut < 100 || cut > n - 100) ? 1 : 997) {
        ml_fresh();
        sink_reset(&ss);
        tt_link *l = mem_end(false, &ss, NULL);
        if (cut > 0)
            peer_sends(stream, cut);
        if (cut < n)
            peer_sends(stream + cut, n - cut);
        cr_assert_eq(ss.err, 0, "cut %zu: error %d", cut, ss.err);
        cr_assert_eq(ss.len, elen, "cut %zu: %zu bytes", cut, ss.len);
        cr_assert_eq(memcmp(ss.buf, expect, elen), 0, "cut %zu", cut);
        cr_assert_eq(ss.eofs, 1, "cut %zu", cut);
        /* The pong for the ping, the close answer (our end of stream was not
         * sent: the stream still could not be finished, so no error, but
         * writing is over). */
        frame fs[4];
        int k = parse_all(ml.written, ml.written_len, fs, 4);
        cr_assert_eq(k, 2, "cut %zu", cut);
        cr_assert_eq(fs[0].b0, 0x8A);
        cr_assert_eq(fs[0].len, 1);
        cr_assert_eq(fs[1].b0, 0x88);
        cr_assert_eq(memcmp(fs[1].payload, "\x03\xE8", 2), 0);
        free_frames(fs, k);
        cr_assert_eq(tt_link_write1(l, "x", 1), UV_EPIPE);
        tt_link_close(l, on_closed, &ss);
        uv_run(&loop, UV_RUN_DEFAULT);
        cr_assert(ss.closed);
    }
}

Test(ws, client_takes_unmasked_frames_without_copy_in_few_calls)
{
    tt_link *l = mem_end(true, &cs, NULL);
    /* Three large frames and a few small ones in one read. */
    static uint8_t in[200000], expect[200000];
    size_t n = 0, e = 0;
    for (int f = 0; f < 3; f++) {
        static uint8_t p[30000];
        for (size_t i = 0; i < sizeof p; i++)
            p[i] = pat(i, (uint8_t)(10 + f));
        n += mkframe(in + n, 0x82, p, sizeof p, false);
        memcpy(expect + e, p, sizeof p);
        e += sizeof p;
    }
    for (int f = 0; f < 5; f++) {
        n += mkframe(in + n, 0x82, "small", 5, false);
        memcpy(expect + e, "small", 5);
        e += 5;
    }
    peer_sends(in, n);
    cr_assert_eq(cs.len, e);
    cr_assert_eq(memcmp(cs.buf, expect, e), 0);
    cr_assert_eq(cs.calls, 4, "each large frame as it lies, the small ones together");
    tt_link_abort(l, NULL, NULL);
}

Test(ws, server_gathers_a_read_into_one_call)
{
    tt_link *l = mem_end(false, &ss, NULL);
    static uint8_t in[200000], expect[200000];
    size_t n = 0, e = 0;
    for (int f = 0; f < 50; f++) {
        uint8_t p[1000];
        for (size_t i = 0; i < sizeof p; i++)
            p[i] = pat(i + (size_t)f, 7);
        n += mkframe(in + n, 0x82, p, sizeof p, true);
        memcpy(expect + e, p, sizeof p);
        e += sizeof p;
    }
    peer_sends(in, n);
    cr_assert_eq(ss.len, e);
    cr_assert_eq(memcmp(ss.buf, expect, e), 0);
    cr_assert_eq(ss.calls, 1, "one read, one delivery");
    tt_link_abort(l, NULL, NULL);
}

Test(ws, a_huge_frame_is_streamed_not_buffered)
{
    tt_link *l = mem_end(false, &ss, NULL);
    size_t total = 3 * 1024 * 1024;
    uint8_t *p = malloc(total), *f = malloc(total + 14);
    for (size_t i = 0; i < total; i++)
        p[i] = pat(i, 8);
    size_t n = mkframe(f, 0x82, p, total, true);
    size_t first = 14 + 1000001; /* the header and an odd part of the payload */
    peer_sends(f, first);
    cr_assert_eq(ss.len, 1000001, "payload is handed on before the frame ends");
    peer_sends(f + first, n - first);
    cr_assert_eq(ss.len, total);
    cr_assert_eq(memcmp(ss.buf, p, total), 0);
    cr_assert_eq(ss.err, 0);
    /* The frame after it is parsed normally. */
    uint8_t g[16];
    peer_sends(g, mkframe(g, 0x82, "next", 4, true));
    cr_assert_eq(ss.len, total + 4);
    cr_assert_eq(memcmp(ss.buf + total, "next", 4), 0);
    free(p);
    free(f);
    tt_link_abort(l, NULL, NULL);
}

Test(ws, stopping_mid_read_keeps_the_rest_for_read_start)
{
    /* Client: large unmasked frames are separate deliveries. */
    tt_link *l = mem_end(true, &cs, NULL);
    cs.stop_after = 1;
    static uint8_t in[300000], expect[300000];
    size_t n = 0, e = 0;
    for (int f = 0; f < 8; f++) {
        static uint8_t p[20000];
        for (size_t i = 0; i < sizeof p; i++)
            p[i] = pat(i, (uint8_t)(20 + f));
        n += mkframe(in + n, 0x82, p, sizeof p, false);
        memcpy(expect + e, p, sizeof p);
        e += sizeof p;
    }
    n += mkframe(in + n, 0x89, "", 0, false); /* a ping after the stop waits too */
    n += mkframe(in + n, 0x82, "", 0, false);
    peer_sends(in, n);
    cr_assert_eq(cs.calls, 1, "read_stop takes effect at once");
    cr_assert_eq(cs.eofs, 0);
    cr_assert_eq(ml.written_len, 0, "nothing past the stop was processed");
    cr_assert_not(ml.reading, "the lower link is stopped too: memory stays bounded");

    cs.in_api = true;
    cr_assert_eq(tt_link_read_start(l), 0);
    cs.in_api = false;
    cr_assert_not(cs.reentered, "kept input comes from the loop, not from read_start");
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(cs.len, e);
    cr_assert_eq(memcmp(cs.buf, expect, e), 0);
    cr_assert_eq(cs.eofs, 1);
    cr_assert_eq(ml.written_len, 6, "the pong (masked, empty) went out");
    cr_assert(ml.reading);
    tt_link_abort(l, NULL, NULL);
}

Test(ws, stopping_before_the_end_of_stream_delays_it)
{
    tt_link *l = mem_end(false, &ss, NULL);
    ss.stop_after = 1;
    uint8_t in[64];
    size_t n = mkframe(in, 0x82, "data", 4, true);
    n += mkframe(in + n, 0x82, "", 0, true);
    peer_sends(in, n);
    cr_assert_eq(ss.len, 4);
    cr_assert_eq(ss.eofs, 0, "no end of stream while stopped");
    cr_assert_eq(tt_link_read_start(l), 0);
    cr_assert_eq(ss.eofs, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(ss.eofs, 1);
    tt_link_abort(l, NULL, NULL);
}

Test(ws, server_stops_mid_gathered_read)
{
    /* More than one gathered delivery's worth (256 KiB) in one read. */
    tt_link *l = mem_end(false, &ss, NULL);
    ss.stop_after = 1;
    size_t total = 600000;
    uint8_t *p = malloc(total), *in = malloc(total + 64);
    for (size_t i = 0; i < total; i++)
        p[i] = pat(i, 9);
    size_t n = mkframe(in, 0x82, p, total, true);
    n += mkframe(in + n, 0x82, "", 0, true);
    peer_sends(in, n);
    cr_assert_lt(ss.len, total);
    cr_assert_eq(ss.calls, 1);
    ss.stop_after = 0;
    cr_assert_eq(tt_link_read_start(l), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(ss.len, total);
    cr_assert_eq(memcmp(ss.buf, p, total), 0);
    cr_assert_eq(ss.eofs, 1);
    free(p);
    free(in);
    tt_link_abort(l, NULL, NULL);
}

Test(ws, early_bytes_are_delivered_from_the_loop)
{
    uint8_t in[128];
    size_t a = mkframe(in, 0x82, "early!", 6, true);
    size_t b = mkframe(in + a, 0x82, "rest", 4, true);
    /* The early bytes end in the middle of the second frame's header. */
    size_t split = a + 1;
    tt_link *l = tt_ws_link_new(&ml.base, false, in, split, NULL);
    cr_assert_not_null(l);
    ss.l = l;
    tt_link_set_handler(l, &h, &ss);
    ss.in_api = true;
    cr_assert_eq(tt_link_read_start(l), 0);
    ss.in_api = false;
    cr_assert_not(ss.reentered);
    cr_assert_eq(ss.len, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(ss.len, 6);
    cr_assert_eq(memcmp(ss.buf, "early!", 6), 0);
    peer_sends(in + split, a + b - split);
    cr_assert_eq(ss.len, 10);
    cr_assert_eq(memcmp(ss.buf + 6, "rest", 4), 0);
    tt_link_abort(l, NULL, NULL);
}

Test(ws, early_bytes_with_the_end_of_stream_on_a_client)
{
    uint8_t in[64];
    size_t n = mkframe(in, 0x82, "reply", 5, false);
    n += mkframe(in + n, 0x82, "", 0, false);
    tt_link *l = tt_ws_link_new(&ml.base, true, in, n, NULL);
    cs.l = l;
    tt_link_set_handler(l, &h, &cs);
    cr_assert_eq(tt_link_read_start(l), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(cs.len, 5);
    cr_assert_eq(cs.eofs, 1);
    tt_link_abort(l, NULL, NULL);
}

/* Errors: each input must fail the link with UV_EPROTO, and the link must
 * have told the peer with a close frame 1002. */
static void expect_protocol_error(bool client, const uint8_t *in, size_t n, const char *what)
{
    ml_fresh();
    sink_reset(&cs);
    tt_link *l = mem_end(client, &cs, NULL);
    peer_sends(in, n);
    cr_assert_eq(cs.err, UV_EPROTO, "%s: error %d", what, cs.err);
    cr_assert_eq(cs.eofs, 0, "%s", what);
    frame fs[4];
    int k = parse_all(ml.written, ml.written_len, fs, 4);
    cr_assert_geq(k, 1, "%s: no close frame", what);
    cr_assert_eq(fs[k - 1].b0, 0x88, "%s", what);
    cr_assert_eq(fs[k - 1].masked, client);
    cr_assert_eq(memcmp(fs[k - 1].payload, "\x03\xEA", 2), 0, "%s: not 1002", what);
    free_frames(fs, k);
    /* Nothing more comes out after the error. */
    uint8_t g[16];
    size_t gn = mkframe(g, 0x82, "late", 4, !client);
    size_t before = cs.len;
    memlink_deliver(&ml, g, gn);
    cr_assert_eq(cs.len, before, "%s", what);
    tt_link_close(l, on_closed, &cs);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(cs.closed);
}

Test(ws, protocol_errors)
{
    uint8_t f[64];
    size_t n;
    /* RFC 6455 5.7's masked text "Hello": tt carries binary only. */
    static const uint8_t text[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    expect_protocol_error(false, text, sizeof text, "text frame");
    n = mkframe(f, 0x82, "abc", 3, false);
    expect_protocol_error(false, f, n, "unmasked frame to a server");
    n = mkframe(f, 0x82, "abc", 3, true);
    expect_protocol_error(true, f, n, "masked frame to a client");
    n = mkframe(f, 0xC2, "abc", 3, true);
    expect_protocol_error(false, f, n, "RSV1");
    n = mkframe(f, 0x92, "abc", 3, true);
    expect_protocol_error(false, f, n, "RSV3");
    static const uint8_t ping126[] = {0x89, 0xFE, 0x00, 0x7E, 1, 2, 3, 4};
    expect_protocol_error(false, ping126, sizeof ping126, "oversize ping");
    n = mkframe(f, 0x09, "p", 1, true);
    expect_protocol_error(false, f, n, "fragmented ping");
    n = mkframe(f, 0x80, "abc", 3, true);
    expect_protocol_error(false, f, n, "continuation without a message");
    n = mkframe(f, 0x02, "ab", 2, true);
    n += mkframe(f + n, 0x82, "cd", 2, true);
    expect_protocol_error(false, f, n, "binary inside a fragmented message");
    n = mkframe(f, 0x83, "abc", 3, true);
    expect_protocol_error(false, f, n, "reserved opcode 3");
    n = mkframe(f, 0x8B, "abc", 3, true);
    expect_protocol_error(false, f, n, "reserved opcode 0xB");
    static const uint8_t toplen[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    expect_protocol_error(false, toplen, sizeof toplen, "64-bit length with the top bit");
    static const uint8_t short16[] = {0x82, 0xFE, 0x00, 0x05, 1, 2, 3, 4};
    expect_protocol_error(false, short16, sizeof short16, "16-bit length below 126");
    static const uint8_t short64[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 5};
    expect_protocol_error(true, short64, sizeof short64, "64-bit length below 65536");
    n = mkframe(f, 0x88, "\x03", 1, true);
    expect_protocol_error(false, f, n, "close with one byte");
    n = mkframe(f, 0x88, "\x03\xE7", 2, true);
    expect_protocol_error(false, f, n, "close code 999");
    n = mkframe(f, 0x88, "\x03\xED", 2, true);
    expect_protocol_error(false, f, n, "close code 1005");
    n = mkframe(f, 0x82, "", 0, true);
    n += mkframe(f + n, 0x82, "more", 4, true);
    /* Data after the end of the stream (on_eof comes first, then the error). */
    ml_fresh();
    sink_reset(&cs);
    tt_link *l = mem_end(false, &cs, NULL);
    peer_sends(f, n);
    cr_assert_eq(cs.eofs, 1);
    cr_assert_eq(cs.err, UV_EPROTO);
    cr_assert_eq(cs.len, 0);
    tt_link_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

Test(ws, close_codes_and_lower_eof)
{
    uint8_t f[64];
    size_t n;
    /* 1011 after data: the peer failed. */
    tt_link *l = mem_end(true, &cs, NULL);
    n = mkframe(f, 0x82, "abc", 3, false);
    n += mkframe(f + n, 0x88, "\x03\xF3", 2, false);
    peer_sends(f, n);
    cr_assert_eq(cs.len, 3, "data before the close is delivered first");
    cr_assert_eq(cs.err, UV_ECONNRESET);
    cr_assert_eq(cs.eofs, 0);
    tt_link_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* 1000 but without the end-of-stream message: cut. */
    ml_fresh();
    l = mem_end(false, &ss, NULL);
    n = mkframe(f, 0x82, "abc", 3, true);
    n += mkframe(f + n, 0x88, "\x03\xE8", 2, true);
    peer_sends(f, n);
    cr_assert_eq(ss.len, 3);
    cr_assert_eq(ss.err, UV_EPROTO);
    cr_assert_eq(ss.eofs, 0);
    tt_link_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* The lower link ends without a close frame: an error, even after the
     * end-of-stream message. */
    ml_fresh();
    sink_reset(&ss);
    l = mem_end(false, &ss, NULL);
    n = mkframe(f, 0x82, "abc", 3, true);
    n += mkframe(f + n, 0x82, "", 0, true);
    peer_sends(f, n);
    cr_assert_eq(ss.eofs, 1);
    memlink_eof(&ml);
    cr_assert_eq(ss.err, UV_EPROTO);
    tt_link_close(l, on_closed, &ss);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(ss.closed);

    /* And with no data at all. */
    ml_fresh();
    sink_reset(&cs);
    l = mem_end(true, &cs, NULL);
    memlink_eof(&ml);
    cr_assert_eq(cs.err, UV_EPROTO);
    tt_link_close(l, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
}

Test(ws, clean_end_then_close_exchange)
{
    tt_link *l = mem_end(false, &ss, NULL);
    uint8_t f[64];
    size_t n = mkframe(f, 0x82, "abc", 3, true);
    n += mkframe(f + n, 0x82, "", 0, true);
    peer_sends(f, n);
    cr_assert_eq(ss.eofs, 1);
    cr_assert_eq(ml.written_len, 0, "our stream is still open: no close yet");
    /* Our end of stream completes both: the close frame 1000 follows it. */
    cr_assert_eq(tt_link_shutdown(l), 0);
    cr_assert_eq(ml.written_len, 6);
    cr_assert_eq(memcmp(ml.written, "\x82\x00\x88\x02\x03\xE8", 6), 0);
    n = mkframe(f, 0x88, "\x03\xE8", 2, true);
    peer_sends(f, n);
    cr_assert_eq(ss.err, 0, "a clean end is no error");
    cr_assert_eq(ml.written_len, 6, "no second close frame");
    tt_link_close(l, on_closed, &ss);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert(ss.closed, "a server closes at once after the handshake");
}

Test(ws, close_inside_on_data_stops_all_handlers)
{
    tt_link *l = mem_end(true, &cs, NULL);
    cs.close_in_data = true;
    static uint8_t in[100000];
    static uint8_t p[20000];
    memset(p, 'x', sizeof p);
    size_t n = mkframe(in, 0x82, p, sizeof p, false);
    n += mkframe(in + n, 0x82, p, sizeof p, false);
    n += mkframe(in + n, 0x82, "", 0, false);
    n += mkframe(in + n, 0x88, "\x03\xE8", 2, false);
    peer_sends(in, n);
    cr_assert_eq(cs.calls, 1, "no delivery after close");
    cr_assert_eq(cs.eofs + cs.err, 0);
    cr_assert_not(cs.closed, "the close callback comes from the loop");
    /* It sent its end of stream and a close frame. */
    frame fs[3];
    cr_assert_eq(parse_all(ml.written, ml.written_len, fs, 3), 2);
    cr_assert_eq(fs[0].b0, 0x82);
    cr_assert_eq(fs[0].len, 0);
    cr_assert_eq(fs[1].b0, 0x88);
    free_frames(fs, 2);
    /* It had the peer's close already; a client waits for the server to end
     * TCP. */
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_not(cs.closed);
    memlink_eof(&ml);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(cs.closed);
    (void)l;
}

Test(ws, close_waits_for_the_peer_then_times_out)
{
    tt_ws_opts o = {.close_timeout_ms = 20};
    tt_link *l = mem_end(false, &ss, &o);
    cr_assert_eq(tt_link_write1(l, "abc", 3), 0);
    /* The close timer counts from the loop's cached time: refreshed here, so
     * that a stale one (a busy machine) does not make the wait look short. */
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    tt_link_close(l, on_closed, &ss);
    static const uint8_t want[] = {0x82, 0x03, 'a', 'b', 'c', 0x82, 0x00, 0x88, 0x02, 0x03, 0xE8};
    cr_assert_eq(ml.written_len, sizeof want);
    cr_assert_eq(memcmp(ml.written, want, sizeof want), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_not(ss.closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(ss.closed);
    cr_assert_geq(uv_now(&loop) - t0, 20);
    cr_assert_not(ml.aborted);
}

Test(ws, keepalive_ping_when_idle)
{
    tt_ws_opts o = {.ping_ms = 10};
    tt_link *l = mem_end(false, &ss, &o);
    RUN_UNTIL(ml.written_len >= 2);
    cr_assert_eq(memcmp(ml.written, "\x89\x00", 2), 0);
    tt_link_abort(l, NULL, NULL);
}

/* Over TCP. */

typedef struct tcp_pair {
    tt_link *c, *s;
} tcp_pair;

static void pair_accept(void *ud, tt_link *l)
{
    ((tcp_pair *)ud)->s = l;
}

static void pair_connect(void *ud, int status, tt_link *l)
{
    cr_assert_eq(status, 0);
    ((tcp_pair *)ud)->c = l;
}

/* Two TCP links connected over 127.0.0.1. */
static void tcp_pair_make(tcp_pair *p)
{
    tt_tcp_listener *ls;
    cr_assert_eq(tt_tcp_listen(&loop, "127.0.0.1", 0, pair_accept, p, &ls), 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", tt_tcp_listener_port(ls), &sa);
    cr_assert_eq(tt_tcp_connect_start(&loop, (struct sockaddr *)&sa, 5000, pair_connect, p, NULL),
                 0);
    RUN_UNTIL(p->c && p->s);
    tt_tcp_listener_close(ls);
}

/* Gives links C and S to the sinks, reading. */
static void attach(tt_link *c, tt_link *s)
{
    cr_assert(c && s);
    cs.l = c;
    ss.l = s;
    tt_link_set_handler(cs.l, &h, &cs);
    tt_link_set_handler(ss.l, &h, &ss);
    cr_assert_eq(tt_link_read_start(cs.l), 0);
    cr_assert_eq(tt_link_read_start(ss.l), 0);
}

/* A ws client and server end connected over 127.0.0.1, both reading. */
static void ws_pair(const tt_ws_opts *o)
{
    tcp_pair p = {NULL, NULL};
    tcp_pair_make(&p);
    attach(tt_ws_link_new(p.c, true, NULL, 0, o), tt_ws_link_new(p.s, false, NULL, 0, o));
}

static void check_pattern(const sink *s, size_t n, uint8_t salt)
{
    cr_assert_eq(s->len, n);
    for (size_t i = 0; i < n; i++)
        if (s->buf[i] != pat(i, salt))
            cr_assert_fail("byte %zu differs", i);
}

Test(ws, tcp_bulk_both_ways_with_backpressure)
{
    ws_pair(NULL);
    tt_link_read_stop(ss.l);
    size_t total = 16 * 1024 * 1024;
    /* Everything written at once: the writes never fail, the queue grows. */
    size_t off = 0;
    static uint8_t b[100003];
    while (off < total) {
        size_t n = total - off < sizeof b ? total - off : sizeof b;
        for (size_t i = 0; i < n; i++)
            b[i] = pat(off + i, 0x11);
        if (n > 10) {
            uv_buf_t v[2] = {uv_buf_init((char *)b, 7),
                             uv_buf_init((char *)b + 7, (unsigned)n - 7)};
            cr_assert_eq(tt_link_write(cs.l, v, 2), 0);
        } else {
            cr_assert_eq(tt_link_write1(cs.l, b, n), 0);
        }
        off += n;
    }
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    size_t queued = tt_link_pending(cs.l);
    cr_assert_gt(queued, 0, "the server is not reading: the client's queue must hold bytes");
    cr_assert_eq(cs.drained, 0);
    cr_assert_eq(ss.len, 0);

    /* The other direction pumps on drain; both receivers stop and resume
     * every few deliveries. */
    ss.pump_left = total;
    ss.salt = 0x22;
    pump(&ss);
    cs.stop_every = 3;
    ss.stop_every = 2;
    cr_assert_eq(tt_link_read_start(ss.l), 0);
    RUN_UNTIL(ss.len == total && cs.len == total);
    cr_assert_geq(cs.drained, 1, "the client's queue drained");
    cr_assert_eq(tt_link_pending(cs.l), 0);
    check_pattern(&ss, total, 0x11);
    check_pattern(&cs, total, 0x22);
    cr_assert_eq(cs.err + ss.err, 0);

    cr_assert_eq(tt_link_shutdown(cs.l), 0);
    cr_assert_eq(tt_link_shutdown(ss.l), 0);
    RUN_UNTIL(cs.eofs == 1 && ss.eofs == 1);
    tt_link_close(cs.l, on_closed, &cs);
    tt_link_close(ss.l, on_closed, &ss);
    RUN_UNTIL(cs.closed && ss.closed);
    cr_assert_eq(cs.err + ss.err, 0);
}

static void half_close(bool client_first)
{
    ws_pair(NULL);
    sink *a = client_first ? &cs : &ss; /* ends its stream first */
    sink *b = client_first ? &ss : &cs; /* keeps writing */
    cr_assert_eq(tt_link_write1(a->l, "last words", 10), 0);
    cr_assert_eq(tt_link_shutdown(a->l), 0);
    RUN_UNTIL(b->eofs == 1);
    cr_assert_eq(b->len, 10);
    /* The other direction still flows, both ways of reading. */
    b->pump_left = 3 * 1024 * 1024;
    b->salt = 0x33;
    pump(b);
    RUN_UNTIL(a->len == 3 * 1024 * 1024);
    check_pattern(a, a->len, 0x33);
    cr_assert_eq(a->eofs, 0);
    cr_assert_eq(tt_link_write1(a->l, "x", 1), UV_EPIPE);
    cr_assert_eq(tt_link_shutdown(b->l), 0);
    RUN_UNTIL(a->eofs == 1);
    cr_assert_eq(a->err + b->err, 0);
    char peer[64];
    cr_assert_eq(strncmp(tt_link_peer(cs.l, peer, sizeof peer), "127.0.0.1:", 10), 0, "%s", peer);
    tt_link_close(a->l, on_closed, a);
    tt_link_close(b->l, on_closed, b);
    RUN_UNTIL(cs.closed && ss.closed);
}

Test(ws, tcp_half_close_client_first)
{
    half_close(true);
}

Test(ws, tcp_half_close_server_first)
{
    half_close(false);
}

Test(ws, tcp_close_is_an_end_abort_is_a_failure)
{
    ws_pair(NULL);
    cr_assert_eq(tt_link_write1(ss.l, "bye", 3), 0);
    tt_link_close(ss.l, on_closed, &ss);
    RUN_UNTIL(cs.eofs == 1);
    cr_assert_eq(cs.len, 3);
    /* The peer is gone: writing is refused, but nothing was cut. */
    RUN_UNTIL(ss.closed);
    cr_assert_eq(tt_link_write1(cs.l, "x", 1), UV_EPIPE);
    cr_assert_eq(tt_link_shutdown(cs.l), UV_EPIPE);
    cr_assert_eq(cs.err, 0);
    tt_link_close(cs.l, on_closed, &cs);
    RUN_UNTIL(cs.closed && ss.closed);

    sink_reset(&cs);
    sink_reset(&ss);
    ws_pair(NULL);
    cr_assert_eq(tt_link_write1(cs.l, "half a", 6), 0);
    tt_link_abort(cs.l, on_closed, &cs);
    RUN_UNTIL(ss.err != 0);
    cr_assert_eq(ss.eofs, 0, "an abort is never an end of stream");
    tt_link_close(ss.l, on_closed, &ss);
    RUN_UNTIL(cs.closed && ss.closed);
}

Test(ws, tcp_peer_without_websocket_ends_without_close)
{
    /* A raw TCP peer sends one unmasked frame and then FIN. */
    tcp_pair p = {NULL, NULL};
    tcp_pair_make(&p);
    cs.l = tt_ws_link_new(p.c, true, NULL, 0, NULL);
    tt_link_set_handler(cs.l, &h, &cs);
    cr_assert_eq(tt_link_read_start(cs.l), 0);
    uint8_t f[16];
    cr_assert_eq(tt_link_write1(p.s, f, mkframe(f, 0x82, "hi", 2, false)), 0);
    cr_assert_eq(tt_link_shutdown(p.s), 0);
    RUN_UNTIL(cs.err != 0);
    cr_assert_eq(cs.err, UV_EPROTO);
    cr_assert_eq(cs.len, 2);
    cr_assert_eq(cs.eofs, 0);
    tt_link_close(cs.l, on_closed, &cs);
    tt_link_close(p.s, NULL, NULL);
    RUN_UNTIL(cs.closed);
}
