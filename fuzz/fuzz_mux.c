/* Fuzz harness for the mux frame reader and the server session.
 *
 * Input layout:
 *   byte 0        bits 0-2: K, the number of chunk sizes that follow;
 *                 bit 3: the server's streams read; bit 4: they echo;
 *                 bit 5: they close on their first bytes; bit 6: the lower
 *                 link holds writes (pending grows) until drained between
 *                 chunks; bit 7: the input ends with an EOF
 *   bytes 1..1+K  chunk sizes, used in turn (byte % 64; 0 means an empty feed)
 *   the rest      bytes from the client, fed in those chunks
 *
 * The reader is fed the bytes whole and in chunks; both must report the
 * same frames (DATA pieces joined) and the same refusal at the same byte.
 * Then a server session reads the same bytes over an in-memory lower link
 * in the chunks, with streams handled as the flags say; it must not crash,
 * must keep what it holds under its cap, and must free everything once
 * closed (the loop closes cleanly; ASan reports leaks). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mux.h"
#include "mux/session.h"

#include "fuzz_check.h"

#define MAX_FRAMES 4096

typedef struct rec {
    tt_mux_hdr hdr;
    size_t len;   /* payload bytes seen */
    uint64_t sum; /* of the payload, position-weighted */
    uint32_t value, last_stream;
    uint8_t opaque[8];
} rec;

typedef struct result {
    rec *recs;
    size_t n;
    int rc;
    const char *why;
    size_t taken;
} result;

typedef struct chunker {
    const uint8_t *sizes;
    size_t count, next;
} chunker;

static size_t next_chunk(chunker *c, size_t left)
{
    if (c->sizes == NULL)
        return left;
    size_t n = c->sizes[c->next] % 64;
    c->next = (c->next + 1) % c->count;
    return n < left ? n : left;
}

/* Feeds IN[*OFF, END) to the reader, recording events in R. Returns false
 * once the reader refused the input. */
static bool feed_range(tt_mux_reader *rd, const uint8_t *in, size_t len, size_t *off, size_t end,
                       result *r)
{
    for (;;) {
        tt_mux_frame f;
        size_t used = (size_t)-1;
        const char *why = NULL;
        int rc = tt_mux_reader_feed(rd, in + *off, end - *off, &used, &f, &why);
        CHECK(used <= end - *off);
        *off += used;
        if (rc < 0) {
            CHECK(rc == -EPROTO && why != NULL);
            r->rc = rc;
            r->why = why;
            r->taken = *off;
            return false;
        }
        if (rc == 0) {
            CHECK(*off == end);
            return true;
        }
        CHECK(rc == 1);
        if (f.first) {
            CHECK(r->n < MAX_FRAMES);
            rec *x = &r->recs[r->n++];
            memset(x, 0, sizeof *x);
            x->hdr = f.hdr;
            x->value = f.value;
            x->last_stream = f.last_stream;
            memcpy(x->opaque, f.opaque, 8);
        }
        CHECK(r->n > 0);
        rec *x = &r->recs[r->n - 1];
        if (f.hdr.type == TT_MUX_DATA) {
            CHECK(f.len > 0 || f.hdr.len == 0);
            CHECK(f.len == 0 || (f.data >= in && f.data + f.len <= in + len));
            for (size_t i = 0; i < f.len; i++)
                x->sum += (uint64_t)f.data[i] * (x->len + i + 1);
            x->len += f.len;
            CHECK(x->len <= f.hdr.len);
            CHECK(f.last == (x->len == f.hdr.len));
        } else {
            CHECK(f.first && f.last);
            size_t want = f.hdr.type == TT_MUX_WINDOW || f.hdr.type == TT_MUX_RESET ? 4 : 8;
            CHECK(f.hdr.len == want);
        }
        const char *why2 = NULL;
        CHECK(tt_mux_hdr_check(&f.hdr, &why2) == 0);
    }
}

static void read_all(const uint8_t *in, size_t len, chunker *c, result *r)
{
    tt_mux_reader rd;
    tt_mux_reader_init(&rd, true);
    r->n = 0;
    r->rc = 0;
    r->why = NULL;
    size_t off = 0;
    do {
        size_t n = next_chunk(c, len - off);
        if (n == 0) {
            /* An empty feed, then one byte. */
            if (!feed_range(&rd, in, len, &off, off, r))
                return;
            n = len - off > 0 ? 1 : 0;
        }
        if (!feed_range(&rd, in, len, &off, off + n, r))
            return;
    } while (off < len);
    r->taken = off;
}

static void compare(const result *a, const result *b)
{
    CHECK(a->rc == b->rc);
    CHECK(a->n == b->n);
    CHECK(a->taken == b->taken);
    if (a->why)
        CHECK(strcmp(a->why, b->why) == 0);
    for (size_t i = 0; i < a->n; i++) {
        const rec *x = &a->recs[i], *y = &b->recs[i];
        CHECK(memcmp(&x->hdr, &y->hdr, sizeof x->hdr) == 0);
        CHECK(x->len == y->len && x->sum == y->sum);
        CHECK(x->value == y->value && x->last_stream == y->last_stream);
        CHECK(memcmp(x->opaque, y->opaque, 8) == 0);
    }
}

/* An in-memory lower link: the harness plays the client. */

typedef struct lower {
    tt_link base;
    bool reading, closing, hold;
    size_t pending;
    uv_timer_t timer;
    tt_link_close_cb cb;
    void *ud;
} lower;

static int lw_write(tt_link *l, const uv_buf_t *bufs, unsigned n)
{
    lower *w = (lower *)l;
    if (w->closing)
        return UV_EPIPE;
    for (unsigned i = 0; i < n; i++) {
        CHECK(bufs[i].len == 0 || bufs[i].base != NULL);
        if (w->hold)
            w->pending += bufs[i].len;
    }
    return 0;
}

static int lw_read_start(tt_link *l)
{
    ((lower *)l)->reading = true;
    return 0;
}

static void lw_read_stop(tt_link *l)
{
    ((lower *)l)->reading = false;
}

static int lw_shutdown(tt_link *l)
{
    (void)l;
    return 0;
}

static void lw_closed(uv_handle_t *h)
{
    lower *w = h->data;
    if (w->cb)
        w->cb(w->ud);
}

static void lw_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    lower *w = (lower *)l;
    CHECK(!w->closing);
    w->closing = true;
    w->reading = false;
    w->cb = cb;
    w->ud = ud;
    uv_close((uv_handle_t *)&w->timer, lw_closed);
}

static size_t lw_pending(const tt_link *l)
{
    return ((const lower *)l)->pending;
}

static const tt_link_ops lw_ops = {
    .write = lw_write,
    .read_start = lw_read_start,
    .read_stop = lw_read_stop,
    .shutdown = lw_shutdown,
    .close = lw_close,
    .pending = lw_pending,
    .abort = NULL,
    .peer = NULL,
};

/* The server's streams. */

#define MAX_STREAMS 64

typedef struct harness {
    uint8_t flags;
    tt_link *streams[MAX_STREAMS];
    bool closed[MAX_STREAMS];
    unsigned n;
    bool ended;
    tt_mux_session *s;
} harness;

static harness *g_h;

static int index_of(harness *h, tt_link *l)
{
    for (unsigned i = 0; i < h->n; i++)
        if (h->streams[i] == l)
            return (int)i;
    CHECK(false);
    return -1;
}

static void close_stream(harness *h, tt_link *l)
{
    int i = index_of(h, l);
    if (!h->closed[i]) {
        h->closed[i] = true;
        tt_link_close(l, NULL, NULL);
    }
}

static void st_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    harness *h = ud;
    CHECK(!h->closed[index_of(h, l)]);
    if (h->flags & 0x10)
        (void)tt_link_write1(l, d, n);
    if (h->flags & 0x20)
        close_stream(h, l);
}

static void st_eof(tt_link *l, void *ud)
{
    harness *h = ud;
    CHECK(!h->closed[index_of(h, l)]);
    (void)tt_link_shutdown(l);
}

static void st_error(tt_link *l, void *ud, int err)
{
    harness *h = ud;
    CHECK(err < 0);
    close_stream(h, l);
}

static const tt_link_handler st_handler = {st_data, st_eof, st_error, NULL};

static void on_stream(void *ud, tt_link *l)
{
    harness *h = ud;
    if (h->n == MAX_STREAMS) {
        tt_link_close(l, NULL, NULL);
        return;
    }
    h->streams[h->n++] = l;
    tt_link_set_handler(l, &st_handler, h);
    if (h->flags & 0x08)
        CHECK(tt_link_read_start(l) == 0);
}

static void on_end(void *ud, int err)
{
    harness *h = ud;
    CHECK(!h->ended);
    CHECK(err <= 0);
    h->ended = true;
}

static void run_session(const uint8_t *in, size_t len, uint8_t flags, chunker *c)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    harness h = {.flags = flags};
    g_h = &h;
    lower w;
    memset(&w, 0, sizeof w);
    w.base.ops = &lw_ops;
    w.base.loop = &loop;
    w.hold = (flags & 0x40) != 0;
    uv_timer_init(&loop, &w.timer);
    w.timer.data = &w;
    tt_mux_cfg cfg;
    tt_mux_cfg_default(&cfg);
    cfg.ping_interval_ms = 0;
    cfg.linger_ms = 1;
    cfg.mem_max = 1024 * 1024;
    cfg.max_streams = 8;
    static const tt_mux_callbacks cbs = {on_stream, on_end};
    /* Like the accept path: the first byte was read before the session. */
    size_t early = len > 0 ? 1 : 0;
    h.s = tt_mux_server(&w.base, &cfg, &cbs, &h, in, early);
    CHECK(h.s != NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    size_t off = early;
    while (off < len && !w.closing) {
        size_t n = next_chunk(c, len - off);
        if (n == 0)
            n = 1;
        if (w.reading)
            w.base.handler->on_data(&w.base, w.base.ud, in + off, n);
        off += n;
        CHECK(tt_mux_held(h.s) <= cfg.mem_max);
        if (w.hold && w.pending > 0 && !w.closing) {
            w.pending = 0;
            w.base.handler->on_drained(&w.base, w.base.ud);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    if ((flags & 0x80) && !w.closing) {
        w.reading = false;
        w.base.handler->on_eof(&w.base, w.base.ud);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    for (unsigned i = 0; i < h.n; i++)
        close_stream(&h, h.streams[i]);
    tt_mux_close(h.s);
    /* The lower link may be lingering: let it finish. */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    g_h = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    size_t k = flags & 7;
    if (size < 1 + k)
        return 0;
    const uint8_t *in = data + 1 + k;
    size_t len = size - 1 - k;

    static rec ra[MAX_FRAMES], rb[MAX_FRAMES];
    result whole = {.recs = ra}, parts = {.recs = rb};
    chunker one = {0};
    read_all(in, len, &one, &whole);
    chunker many = {.sizes = k ? data + 1 : NULL, .count = k};
    read_all(in, len, &many, &parts);
    compare(&whole, &parts);

    chunker again = {.sizes = k ? data + 1 : NULL, .count = k};
    run_session(in, len, flags, &again);
    return 0;
}
