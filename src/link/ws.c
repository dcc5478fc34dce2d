/* The WebSocket link (docs/WS.md). Where the bytes go:
 *
 * Sending. A write becomes binary frames of at most max_frame payload bytes,
 * all handed to the lower link in one write (batches of iovecs for a very
 * large one). A server's frames are its header bytes, in a small array on the
 * stack, next to the caller's own buffers: no copy. A client must mask, which
 * is a copy anyway, so it masks straight into one outgoing buffer, 8 bytes per
 * step. wslay_frame_send is not used: it masks one byte at a time through a
 * 4 KiB stack buffer and hands over every frame in several callbacks, so it
 * can do neither the single iovec write nor the one-pass masking.
 *
 * Receiving. wslay decodes every frame header (opcode, FIN, reserved bits,
 * the length field and its minimal-encoding rules, the limits on control
 * frames). It does not see the payload: wslay_frame_recv copies each payload
 * byte through its own 4 KiB buffer and unmasks byte by byte (measured:
 * 0.5 GB/s masked), which would make the link the bottleneck and rule out
 * handing unmasked payload on without a copy. So the header is fed to wslay
 * with its masking key taken out (this link unmasks, 8 bytes per step), and
 * the payload is only counted into wslay, never copied (see parse_header).
 * Payload is then streamed: nothing waits for the end of a frame or message,
 * so frames of any length cost no memory. Unmasked payload (a client's input)
 * is handed on straight from the lower link's buffer when the piece is large.
 * Small pieces, and masked payload (a server's input, which is unmasked into
 * a copy anyway), are gathered, so that the frames of one lower read make as
 * few on_data calls as possible. */
#include "link/ws.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "core/crypto.h"
#include "core/log.h"
#include "link/scratch.h"

enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xA,
};

#define FIN 0x80
#define HDR_MAX 14 /* 2 + 8 length bytes + 4 key bytes */
#define CTL_MAX 125

#define CLOSE_NORMAL 1000
#define CLOSE_PROTOCOL 1002
#define CLOSE_INTERNAL 1011
#define CLOSE_NO_STATUS 1005 /* never sent: "the close frame had no code" */

/* Received payload is gathered up to this much per on_data call, as much as
 * one TCP read (link/tcp.c) holds. */
#define GATHER_MAX (256 * 1024)
/* Unmasked payload pieces this large are handed on where they lie; smaller
 * ones are worth a copy to save the consumer a write each. */
#define DIRECT_MIN (16 * 1024)
/* A client masks into an outgoing buffer of this much payload (plus room for
 * the headers of its frames), written out each time it fills. */
#define SCRATCH_MAX (256 * 1024 + 4096)
/* Server frames per lower write: header slots and iovecs. */
#define BATCH_HDR 32
#define BATCH_IOV 64
/* Payload bytes counted into wslay by feeding it (one call per 4 KiB) up to
 * this length; beyond, a fresh wslay context is cheaper (measured: about
 * 20 ns per call against 60-100 ns for a new context). */
#define SKIP_MAX (16 * 1024)

typedef struct ws_link {
    tt_link base;
    tt_link *lower;
    bool client;
    size_t max_frame;
    unsigned ping_ms;
    unsigned close_timeout_ms;

    /* Receiving: the frame header being assembled, then the frame. */
    uint8_t hbuf[HDR_MAX];
    size_t hhave;
    bool in_payload; /* between a header and the end of its payload */
    uint8_t op;      /* the current frame's opcode */
    bool fin;
    bool masked;      /* the current frame is (a client's frames are) */
    uint8_t key[4];   /* its masking key */
    uint64_t rem;     /* payload bytes of the current frame still to come */
    uint64_t poff;    /* payload bytes of the current frame already seen */
    bool in_msg;      /* a fragmented data message continues */
    uint64_t msg_len; /* payload bytes of the current data message */
    uint8_t ctl[CTL_MAX];
    size_t ctl_len;
    /* The payload of the latest ping not yet answered (see answer_ping). */
    uint8_t pong[CTL_MAX];
    size_t pong_len;
    bool pong_owed;

    /* Input kept while the owner does not read (early bytes, or the rest of
     * a lower read after read_stop). At most one lower read: the lower link
     * is stopped meanwhile. */
    uint8_t *in;
    size_t in_len;

    bool reading;
    bool closing;  /* close or abort was called: no handler calls any more */
    bool finished; /* the lower link and the timers are being closed */
    bool eof_sent, eof_rcvd;
    bool eof_pending; /* the end-of-stream message awaits delivery (reading was off) */
    bool close_sent, close_rcvd;
    bool failed;     /* an error was reported: input is ignored */
    bool lower_eof;  /* the lower link ended */
    bool lower_done; /* ... and that was dealt with */
    bool lower_dead; /* the lower link failed or ended: nothing more goes through it */
    uint64_t last_act;
    uv_timer_t resume; /* delivers kept input from the loop after read_start */
    uv_timer_t timer;  /* keepalive pings; then the close handshake's deadline */
    int outstanding;
    tt_link_close_cb close_cb;
    void *close_ud;
} ws_link;

/* Process-wide scratch (link/scratch.h); a nested use (a handler that
 * feeds another WebSocket link synchronously) gets its own heap block. */
TT_SCRATCH_DEFINE(g_gather, GATHER_MAX);
TT_SCRATCH_DEFINE(g_scratch, SCRATCH_MAX);

/* Masking keys come from a pool refilled from the system's generator, so a
 * frame does not cost a RAND call. */
static uint8_t g_keys[512];
static size_t g_keys_off = sizeof g_keys;

static void mask_key(uint8_t key[4])
{
    if (g_keys_off + 4 > sizeof g_keys) {
        tt_random(g_keys, sizeof g_keys);
        g_keys_off = 0;
    }
    memcpy(key, g_keys + g_keys_off, 4);
    g_keys_off += 4;
}

/* DST = SRC xor KEY (RFC 6455 5.3) for N payload bytes that start at offset
 * OFF of their frame. DST may equal SRC. Eight bytes per step: the key
 * repeats every four bytes, so an 8-byte pattern rotated to OFF covers it. */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
                      uint64_t off)
{
    uint8_t pat[8];
    for (unsigned j = 0; j < 8; j++)
        pat[j] = key[(off + j) & 3];
    uint64_t m;
    memcpy(&m, pat, 8);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t v[4];
        memcpy(v, src + i, 32);
        v[0] ^= m;
        v[1] ^= m;
        v[2] ^= m;
        v[3] ^= m;
        memcpy(dst + i, v, 32);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= m;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ pat[i & 7];
}

/* Writes a frame header (RFC 6455 5.2) with first byte B0, payload length
 * LEN and, if KEY, the mask bit and key. Returns its length. */
static size_t put_header(uint8_t *h, uint8_t b0, uint64_t len, const uint8_t *key)
{
    uint8_t m = key ? 0x80 : 0;
    size_t n;
    h[0] = b0;
    if (len < 126) {
        h[1] = m | (uint8_t)len;
        n = 2;
    } else if (len <= 0xFFFF) {
        h[1] = m | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = m | 127;
        for (unsigned i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (key) {
        memcpy(h + n, key, 4);
        n += 4;
    }
    return n;
}

/* Header parsing through wslay. One wslay frame context serves every link:
 * each header is fed whole and its payload counted in before parse_header
 * returns, so between calls the context is always at a frame boundary with
 * an empty buffer. Bytes "received" for the payload are never written into
 * wslay's buffer: with the mask bit cleared wslay only moves its cursor over
 * them, and this link ignores what wslay returns as payload. */

typedef struct feed {
    const uint8_t *hdr; /* header bytes not yet given to wslay */
    size_t hlen;
    uint64_t virt; /* payload bytes wslay may count */
} feed;

static wslay_frame_context_ptr g_parser;
static feed g_feed;

static ssize_t parser_recv(uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (g_feed.hlen > 0) {
        size_t n = g_feed.hlen < len ? g_feed.hlen : len;
        memcpy(buf, g_feed.hdr, n);
        g_feed.hdr += n;
        g_feed.hlen -= n;
        return (ssize_t)n;
    }
    size_t n = g_feed.virt < len ? (size_t)g_feed.virt : len;
    g_feed.virt -= n;
    return (ssize_t)n; /* 0 is wslay's "want read" */
}

static const struct wslay_frame_callbacks parser_cbs = {NULL, parser_recv, NULL};

static void parser_reset(void)
{
    if (g_parser) {
        wslay_frame_context_free(g_parser);
        g_parser = NULL;
    }
}

/* Length of a header from its first two bytes. */
static size_t header_len(const uint8_t *h)
{
    size_t n = 2;
    uint8_t lc = h[1] & 0x7F;
    if (lc == 126)
        n += 2;
    else if (lc == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

static bool valid_close_code(unsigned c)
{
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* Decodes the complete header in t->hbuf (HLEN bytes) into the frame state.
 * Returns 0, or a negative code with *WHY set. */
static int parse_header(ws_link *t, size_t hlen, const char **why)
{
    uint8_t h[HDR_MAX];
    bool masked = (t->hbuf[1] & 0x80) != 0;
    size_t n = hlen;
    memcpy(h, t->hbuf, hlen);
    if (masked) {
        memcpy(t->key, t->hbuf + hlen - 4, 4);
        h[1] &= 0x7F;
        n -= 4;
    }
    if (g_parser == NULL && wslay_frame_context_init(&g_parser, &parser_cbs, NULL) != 0) {
        *why = "out of memory";
        return UV_ENOMEM;
    }
    /* One payload byte makes wslay report the header; the rest is counted
     * in below, so that the context ends at the next frame boundary. */
    g_feed = (feed){h, n, 1};
    struct wslay_frame_iocb io;
    ssize_t r = wslay_frame_recv(g_parser, &io);
    if (r < 0) {
        parser_reset();
        *why = "malformed frame header";
        return UV_EPROTO;
    }
    uint64_t rest = io.payload_length > 0 ? io.payload_length - 1 : 0;
    if (rest > SKIP_MAX) {
        parser_reset();
    } else {
        g_feed.virt = rest;
        while (g_feed.virt > 0) {
            r = wslay_frame_recv(g_parser, &io);
            if (r <= 0) {
                parser_reset();
                *why = "frame parser out of step";
                return UV_EPROTO;
            }
        }
    }
    if (io.rsv != 0) {
        *why = "reserved bits set";
        return UV_EPROTO;
    }
    if (masked != !t->client) {
        *why = masked ? "masked frame from the server" : "unmasked frame from the client";
        return UV_EPROTO;
    }
    switch (io.opcode) {
    case OP_CONT:
        if (!t->in_msg) {
            *why = "continuation frame outside a message";
            return UV_EPROTO;
        }
        break;
    case OP_BINARY:
        if (t->in_msg) {
            *why = "new message inside a fragmented one";
            return UV_EPROTO;
        }
        if (t->eof_rcvd) {
            *why = "data after the end of the stream";
            return UV_EPROTO;
        }
        t->msg_len = 0;
        break;
    case OP_TEXT:
        *why = "text frame";
        return UV_EPROTO;
    case OP_CLOSE:
    case OP_PING:
    case OP_PONG:
        /* wslay has checked FIN and the 125-byte limit. */
        t->ctl_len = 0;
        break;
    default:
        *why = "unknown opcode";
        return UV_EPROTO;
    }
    t->op = io.opcode;
    t->fin = io.fin != 0;
    t->masked = masked;
    t->rem = io.payload_length;
    t->poff = 0;
    t->in_payload = true;
    return 0;
}

/* Sending. */

/* A frame of at most CTL_MAX payload bytes (control frames, the empty
 * message), in one lower write. */
static int send_small(ws_link *t, uint8_t b0, const uint8_t *payload, size_t len)
{
    uint8_t frame[HDR_MAX + CTL_MAX];
    size_t h;
    if (t->client) {
        uint8_t key[4];
        mask_key(key);
        h = put_header(frame, b0, len, key);
        mask_copy(frame + h, payload, len, key, 0);
    } else {
        h = put_header(frame, b0, len, NULL);
        if (len > 0)
            memcpy(frame + h, payload, len);
    }
    return tt_link_write1(t->lower, frame, h + len);
}

/* Answers the latest ping, if one is owed and the lower link's queue is
 * empty. A peer that sends pings and never reads would otherwise fill the
 * queue with pongs without bound (measured before this rule: a server grew
 * by 386 MiB/s from one such connection, docs/BENCHMARKS.md). RFC 6455 5.5.3 allows answering only
 * the most recent ping, so a ping that arrives while bytes are queued replaces the one owed, and
 * the pong goes out when the queue drains; the pings of one lower read get one pong, one write
 * instead of one per ping. What pongs hold is thus one frame queued and one payload kept, whatever
 * the peer sends, and the connection stays readable: no backpressure couples the peer's input to
 * its reading, so a legitimate peer that pings during a download is not
 * stalled. A pong waits behind queued data, where it would have been
 * queued anyway. */
static void answer_ping(ws_link *t)
{
    if (!t->pong_owed)
        return;
    if (t->close_sent || t->closing || t->lower_dead) {
        t->pong_owed = false; /* no pong after our close frame */
        return;
    }
    if (tt_link_pending(t->lower) > 0)
        return;
    t->pong_owed = false;
    send_small(t, FIN | OP_PONG, t->pong, t->pong_len);
}

static int send_close(ws_link *t, unsigned code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    t->close_sent = true;
    if (t->lower_dead)
        return UV_EPIPE;
    /* A ping received before the close is still answered, once: nothing
     * may follow the close frame. */
    if (t->pong_owed) {
        t->pong_owed = false;
        send_small(t, FIN | OP_PONG, t->pong, t->pong_len);
    }
    if (code == CLOSE_NO_STATUS)
        return send_small(t, FIN | OP_CLOSE, NULL, 0);
    return send_small(t, FIN | OP_CLOSE, p, 2);
}

/* Walks the caller's buffers. */
typedef struct cursor {
    const uv_buf_t *bufs;
    unsigned i;
    size_t off;
} cursor;

/* The next piece of at most MAX bytes; the caller knows there is one. */
static const uint8_t *cursor_take(cursor *c, size_t max, size_t *len)
{
    while (c->off == c->bufs[c->i].len) {
        c->i++;
        c->off = 0;
    }
    size_t n = c->bufs[c->i].len - c->off;
    if (n > max)
        n = max;
    const uint8_t *p = (const uint8_t *)c->bufs[c->i].base + c->off;
    c->off += n;
    *len = n;
    return p;
}

/* Server: headers on the stack, payload where the caller has it. */
static int write_plain(ws_link *t, cursor *c, size_t total)
{
    uv_buf_t iov[BATCH_IOV];
    uint8_t hdr[BATCH_HDR][HDR_MAX];
    unsigned niov = 0, nhdr = 0;
    while (total > 0) {
        size_t flen = total < t->max_frame ? total : t->max_frame;
        total -= flen;
        if (nhdr == BATCH_HDR || niov + 2 > BATCH_IOV) {
            int rc = tt_link_write(t->lower, iov, niov);
            if (rc < 0)
                return rc;
            niov = nhdr = 0;
        }
        size_t h = put_header(hdr[nhdr], FIN | OP_BINARY, flen, NULL);
        iov[niov++] = uv_buf_init((char *)hdr[nhdr++], (unsigned)h);
        while (flen > 0) {
            if (niov == BATCH_IOV) {
                /* The lower link copies what it does not send at once, so
                 * the header slots can be reused after this. */
                int rc = tt_link_write(t->lower, iov, niov);
                if (rc < 0)
                    return rc;
                niov = nhdr = 0;
            }
            size_t n;
            const uint8_t *p = cursor_take(c, flen, &n);
            iov[niov++] = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
            flen -= n;
        }
    }
    return niov > 0 ? tt_link_write(t->lower, iov, niov) : 0;
}

/* Client: each frame masked with its own key into one outgoing buffer. */
static int write_masked(ws_link *t, cursor *c, size_t total)
{
    size_t want = total + HDR_MAX * (total / t->max_frame + 1);
    size_t cap;
    uint8_t *buf = tt_scratch_take(&g_scratch, 0, want < SCRATCH_MAX ? want : SCRATCH_MAX, &cap);
    if (buf == NULL)
        return UV_ENOMEM;
    size_t used = 0;
    int rc = 0;
    while (total > 0 && rc == 0) {
        size_t flen = total < t->max_frame ? total : t->max_frame;
        total -= flen;
        if (cap - used < HDR_MAX + 1) {
            rc = tt_link_write1(t->lower, buf, used);
            used = 0;
            if (rc < 0)
                break;
        }
        uint8_t key[4];
        mask_key(key);
        used += put_header(buf + used, FIN | OP_BINARY, flen, key);
        uint64_t poff = 0;
        while (poff < flen) {
            if (used == cap) {
                rc = tt_link_write1(t->lower, buf, used);
                used = 0;
                if (rc < 0)
                    break;
            }
            size_t room = cap - used, n;
            const uint8_t *p = cursor_take(c, flen - poff < room ? flen - poff : room, &n);
            mask_copy(buf + used, p, n, key, poff);
            used += n;
            poff += n;
        }
    }
    if (rc == 0 && used > 0)
        rc = tt_link_write1(t->lower, buf, used);
    tt_scratch_give(&g_scratch, buf);
    return rc;
}

static int ws_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    ws_link *t = (ws_link *)l;
    if (t->closing || t->eof_sent || t->close_sent || t->close_rcvd || t->failed || t->lower_dead)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    /* No frame for nothing: an empty message means the end of the stream. */
    if (total == 0)
        return 0;
    t->last_act = uv_now(t->base.loop);
    cursor c = {bufs, 0, 0};
    int rc = t->client ? write_masked(t, &c, total) : write_plain(t, &c, total);
    if (rc < 0)
        t->lower_dead = true; /* part of a frame may be out: the stream is broken */
    return rc;
}

/* Sends the close frame 1000 once both directions have ended, so the close
 * handshake is under way before the owners close. */
static void maybe_close_handshake(ws_link *t)
{
    if (t->eof_sent && t->eof_rcvd && !t->close_sent && !t->closing)
        send_close(t, CLOSE_NORMAL);
}

static int ws_shutdown(tt_link *l)
{
    ws_link *t = (ws_link *)l;
    if (t->closing || t->eof_sent)
        return 0;
    /* The peer closed before our stream ended: it cannot be completed. */
    if (t->close_sent || t->close_rcvd || t->failed || t->lower_dead)
        return UV_EPIPE;
    int rc = send_small(t, FIN | OP_BINARY, NULL, 0);
    if (rc < 0)
        return rc;
    t->eof_sent = true;
    t->last_act = uv_now(t->base.loop);
    maybe_close_handshake(t);
    return 0;
}

static size_t ws_pending(const tt_link *l)
{
    const ws_link *t = (const ws_link *)l;
    return t->finished ? 0 : tt_link_pending(t->lower);
}

/* Ending. */

static void release(void *ud)
{
    ws_link *t = ud;
    if (--t->outstanding > 0)
        return;
    free(t->in);
    tt_link_close_cb cb = t->close_cb;
    void *cud = t->close_ud;
    free(t);
    if (cb)
        cb(cud);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

/* Closes (or aborts) the lower link and the timers; the memory goes when all
 * three have called back. */
static void finish(ws_link *t, bool abort)
{
    if (t->finished)
        return;
    t->finished = true;
    if (abort)
        tt_link_abort(t->lower, release, t);
    else
        tt_link_close(t->lower, release, t);
    uv_close((uv_handle_t *)&t->resume, on_handle_closed);
    uv_close((uv_handle_t *)&t->timer, on_handle_closed);
}

/* While closing: done once the peer's close frame is in and ours is out. A
 * client also waits for the server to end TCP first (RFC 6455 7.1.1), which
 * leaves the TIME_WAIT state with the client. */
static void maybe_finish(ws_link *t)
{
    if (t->closing && t->close_rcvd && tt_link_pending(t->lower) == 0 &&
        (!t->client || t->lower_eof))
        finish(t, false);
}

/* Receiving. */

typedef struct gather {
    uint8_t *buf;
    size_t len;
} gather;

static int gather_get(gather *g)
{
    if (g->buf)
        return 0;
    g->buf = tt_scratch_take(&g_gather, 0, GATHER_MAX, NULL);
    return g->buf ? 0 : UV_ENOMEM;
}

static void gather_put(gather *g)
{
    tt_scratch_give(&g_gather, g->buf);
    g->buf = NULL;
}

static void deliver(ws_link *t, const uint8_t *p, size_t n)
{
    if (n > 0 && !t->closing && !t->failed)
        t->base.handler->on_data(&t->base, t->base.ud, p, n);
}

static void flush(ws_link *t, gather *g)
{
    size_t n = g->len;
    g->len = 0;
    deliver(t, g->buf, n);
}

/* Reports a fatal error once; input is ignored from then on. */
static void fail(ws_link *t, gather *g, int err)
{
    if (t->failed)
        return;
    if (g)
        flush(t, g);
    t->failed = true;
    if (!t->closing)
        tt_link_read_stop(t->lower);
    if (!t->closing)
        t->base.handler->on_error(&t->base, t->base.ud, err);
}

static void protocol_error(ws_link *t, gather *g, const char *why)
{
    tt_debug("c%llu: websocket: %s", (unsigned long long)t->base.id, why);
    if (!t->close_sent)
        send_close(t, CLOSE_PROTOCOL);
    if (t->closing)
        finish(t, false);
    else
        fail(t, g, UV_EPROTO);
}

static void deliver_eof(ws_link *t, gather *g)
{
    flush(t, g);
    if (t->closing || t->failed || !t->reading)
        return; /* still pending: delivered after read_start */
    t->eof_pending = false;
    t->base.handler->on_eof(&t->base, t->base.ud);
    maybe_close_handshake(t);
}

static void on_close_frame(ws_link *t, gather *g)
{
    t->close_rcvd = true;
    unsigned code = CLOSE_NO_STATUS;
    if (t->ctl_len == 1) {
        protocol_error(t, g, "close frame with a 1-byte payload");
        return;
    }
    if (t->ctl_len >= 2) {
        code = (unsigned)t->ctl[0] << 8 | t->ctl[1];
        if (!valid_close_code(code)) {
            protocol_error(t, g, "invalid close code");
            return;
        }
    }
    if (t->closing) {
        maybe_finish(t);
        return;
    }
    /* Answer at once (RFC 6455 5.5.1), echoing the code. */
    if (!t->close_sent)
        send_close(t, code);
    if (code != CLOSE_NORMAL) {
        tt_debug("c%llu: websocket: peer closed with %u", (unsigned long long)t->base.id, code);
        bool proto = code == 1002 || code == 1003 || code == 1007 || code == 1009 || code == 1010;
        fail(t, g, proto ? UV_EPROTO : UV_ECONNRESET);
    } else if (!t->eof_rcvd) {
        /* 1000 without the end-of-stream message: the stream was cut. */
        tt_debug("c%llu: websocket: closed before the end of the stream",
                 (unsigned long long)t->base.id);
        fail(t, g, UV_EPROTO);
    }
    /* Else a clean end: the owner has had on_eof; writing is over. */
}

/* The current frame's payload is complete. */
static void frame_end(ws_link *t, gather *g)
{
    t->in_payload = false;
    switch (t->op) {
    case OP_BINARY:
    case OP_CONT:
        t->in_msg = !t->fin;
        if (t->fin && t->msg_len == 0 && !t->closing) {
            /* The empty message: the peer's stream has ended. */
            t->eof_rcvd = true;
            t->eof_pending = true;
            deliver_eof(t, g);
        }
        break;
    case OP_PING:
        /* Answered at the end of the read, by answer_ping. */
        memcpy(t->pong, t->ctl, t->ctl_len);
        t->pong_len = t->ctl_len;
        t->pong_owed = true;
        break;
    case OP_CLOSE:
        on_close_frame(t, g);
        break;
    default: /* a pong: proof of life, nothing to do */
        break;
    }
}

static void stash(ws_link *t, const uint8_t *data, size_t len)
{
    uint8_t *p = realloc(t->in, t->in_len + len);
    if (p == NULL) {
        fail(t, NULL, UV_ENOMEM);
        return;
    }
    memcpy(p + t->in_len, data, len);
    t->in = p;
    t->in_len += len;
}

/* Parses DATA and hands the payload on. While closing it only looks for the
 * peer's close frame. */
static void process(ws_link *t, const uint8_t *data, size_t len)
{
    gather g = {NULL, 0};
    size_t off = 0;
    while (off < len) {
        if (t->finished || t->failed || t->close_rcvd)
            break;
        if (!t->closing && !t->reading) {
            /* The owner stopped during a delivery; g is empty here (every
             * handler call is preceded by a flush). */
            stash(t, data + off, len - off);
            break;
        }
        if (t->eof_pending && !t->closing) {
            deliver_eof(t, &g);
            continue;
        }
        if (!t->in_payload) {
            size_t need = t->hhave < 2 ? 2 : header_len(t->hbuf);
            if (t->hhave < need) {
                size_t take = need - t->hhave < len - off ? need - t->hhave : len - off;
                memcpy(t->hbuf + t->hhave, data + off, take);
                t->hhave += take;
                off += take;
                /* The first two bytes tell the header's full length. */
                if (t->hhave == 2)
                    need = header_len(t->hbuf);
                if (t->hhave < need)
                    continue;
            }
            const char *why = NULL;
            int rc = parse_header(t, need, &why);
            t->hhave = 0;
            if (rc < 0) {
                protocol_error(t, &g, why);
                break;
            }
            if (t->rem == 0)
                frame_end(t, &g);
            continue;
        }
        size_t n = t->rem < len - off ? (size_t)t->rem : len - off;
        const uint8_t *p = data + off;
        if (t->op == OP_BINARY || t->op == OP_CONT) {
            if (t->closing) {
                /* Discarded: nobody reads any more. */
            } else if (!t->masked && (n >= DIRECT_MIN || (g.len == 0 && n == len - off))) {
                /* Handed on where it lies: no copy. The frame state moves
                 * first, as the handler may stop reading. */
                if (g.len > 0) {
                    flush(t, &g);
                    continue;
                }
                off += n;
                t->rem -= n;
                t->poff += n;
                t->msg_len += n;
                if (t->rem == 0)
                    frame_end(t, &g);
                deliver(t, p, n);
                continue;
            } else {
                if (gather_get(&g) < 0) {
                    fail(t, NULL, UV_ENOMEM);
                    break;
                }
                if (g.len == GATHER_MAX) {
                    flush(t, &g);
                    continue;
                }
                if (n > GATHER_MAX - g.len)
                    n = GATHER_MAX - g.len;
                /* Masked payload is unmasked on the way into the gather. */
                if (t->masked)
                    mask_copy(g.buf + g.len, p, n, t->key, t->poff);
                else
                    memcpy(g.buf + g.len, p, n);
                g.len += n;
            }
            t->msg_len += n;
        } else if (t->masked) {
            mask_copy(t->ctl + t->ctl_len, p, n, t->key, t->poff);
            t->ctl_len += n;
        } else {
            memcpy(t->ctl + t->ctl_len, p, n);
            t->ctl_len += n;
        }
        off += n;
        t->rem -= n;
        t->poff += n;
        if (t->rem == 0)
            frame_end(t, &g);
    }
    if (t->eof_pending && !t->closing)
        deliver_eof(t, &g);
    else if (g.len > 0)
        flush(t, &g);
    if (g.buf)
        gather_put(&g);
    answer_ping(t);
}

/* The lower link ended (TCP FIN). */
static void lower_ended(ws_link *t)
{
    if (t->lower_done)
        return;
    t->lower_done = true;
    if (t->closing) {
        finish(t, false);
        return;
    }
    if (t->close_rcvd || t->failed)
        return; /* after the close handshake, or already reported */
    t->lower_dead = true;
    tt_debug("c%llu: websocket: connection ended without a close frame",
             (unsigned long long)t->base.id);
    fail(t, NULL, UV_EPROTO);
}

static void on_lower_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    ws_link *t = ud;
    t->last_act = uv_now(t->base.loop);
    process(t, data, len);
}

static void on_lower_eof(tt_link *l, void *ud)
{
    (void)l;
    ws_link *t = ud;
    t->lower_eof = true;
    /* Input still kept is delivered first; then the end is dealt with. */
    if (t->in_len == 0 && !t->eof_pending)
        lower_ended(t);
}

static void on_lower_error(tt_link *l, void *ud, int err)
{
    (void)l;
    ws_link *t = ud;
    t->lower_dead = true;
    if (t->closing)
        finish(t, false);
    else
        fail(t, NULL, err);
}

static void on_lower_drained(tt_link *l, void *ud)
{
    (void)l;
    ws_link *t = ud;
    if (t->closing) {
        maybe_finish(t);
        return;
    }
    answer_ping(t);
    if (t->base.handler->on_drained)
        t->base.handler->on_drained(&t->base, t->base.ud);
}

static const tt_link_handler lower_handler = {
    .on_data = on_lower_data,
    .on_eof = on_lower_eof,
    .on_error = on_lower_error,
    .on_drained = on_lower_drained,
};

static void on_resume(uv_timer_t *timer)
{
    ws_link *t = timer->data;
    if (t->closing || !t->reading)
        return;
    if (t->eof_pending) {
        gather g = {NULL, 0};
        deliver_eof(t, &g);
        if (t->closing || !t->reading)
            return;
    }
    if (t->in_len > 0) {
        uint8_t *in = t->in;
        size_t n = t->in_len;
        t->in = NULL;
        t->in_len = 0;
        process(t, in, n);
        free(in);
        if (t->closing || !t->reading || t->in_len > 0)
            return;
    }
    if (t->failed)
        return;
    if (t->lower_eof)
        lower_ended(t);
    else if (tt_link_read_start(t->lower) < 0)
        fail(t, NULL, UV_EIO);
}

static int ws_read_start(tt_link *l)
{
    ws_link *t = (ws_link *)l;
    if (t->closing)
        return UV_EINVAL;
    if (t->reading)
        return 0;
    t->reading = true;
    if (t->failed)
        return 0;
    /* Kept input is delivered from the loop, never inside this call. */
    if (t->in_len > 0 || t->eof_pending || t->lower_eof) {
        uv_timer_start(&t->resume, on_resume, 0, 0);
        return 0;
    }
    return tt_link_read_start(t->lower);
}

static void ws_read_stop(tt_link *l)
{
    ws_link *t = (ws_link *)l;
    t->reading = false;
    if (t->closing)
        return;
    uv_timer_stop(&t->resume);
    tt_link_read_stop(t->lower);
}

static void on_close_timeout(uv_timer_t *timer)
{
    finish(timer->data, false);
}

static void ws_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    ws_link *t = (ws_link *)l;
    if (t->closing)
        return;
    t->closing = true;
    t->reading = false;
    t->close_cb = cb;
    t->close_ud = ud;
    uv_timer_stop(&t->resume);
    uv_timer_stop(&t->timer);
    if (abort) {
        /* The peer must see a failure: a close frame 1011 if one can still
         * go out, then a reset of the lower link. */
        if (!t->close_sent && !t->lower_dead)
            send_close(t, CLOSE_INTERNAL);
        finish(t, true);
        return;
    }
    if (t->failed || t->lower_dead) {
        finish(t, false);
        return;
    }
    /* A clean close ends our stream first, as closing a socket sends FIN. */
    if (!t->close_sent) {
        int rc = 0;
        if (!t->eof_sent && !t->close_rcvd)
            rc = send_small(t, FIN | OP_BINARY, NULL, 0);
        t->eof_sent = true;
        if (rc == 0)
            rc = send_close(t, CLOSE_NORMAL);
        if (rc < 0) {
            finish(t, false);
            return;
        }
    }
    /* Kept input may hold the peer's close frame. */
    if (t->in_len > 0) {
        uint8_t *in = t->in;
        size_t n = t->in_len;
        t->in = NULL;
        t->in_len = 0;
        process(t, in, n);
        free(in);
    }
    if (t->finished)
        return;
    if (t->lower_eof) {
        /* Nothing more can arrive. */
        finish(t, false);
        return;
    }
    maybe_finish(t);
    if (t->finished)
        return;
    if (tt_link_read_start(t->lower) < 0) {
        finish(t, false);
        return;
    }
    uv_timer_start(&t->timer, on_close_timeout, t->close_timeout_ms, 0);
}

static void ws_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    ws_end(l, cb, ud, false);
}

static void ws_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    ws_end(l, cb, ud, true);
}

static const char *ws_peer(tt_link *l, char *buf, size_t len)
{
    return tt_link_peer(((ws_link *)l)->lower, buf, len);
}

static const tt_link_ops ws_ops = {
    .write = ws_write,
    .read_start = ws_read_start,
    .read_stop = ws_read_stop,
    .shutdown = ws_shutdown,
    .close = ws_close,
    .pending = ws_pending,
    .abort = ws_abort,
    .peer = ws_peer,
};

/* Keepalive: a ping once the link has been quiet for ping_ms. The timer is
 * not re-armed per read or write; it compares with the last activity. */
static void on_ping_timer(uv_timer_t *timer)
{
    ws_link *t = timer->data;
    if (t->closing || t->close_sent || t->failed || t->lower_dead)
        return;
    uint64_t now = uv_now(t->base.loop);
    uint64_t idle = now - t->last_act;
    if (idle >= t->ping_ms) {
        /* A ping behind bytes the peer has not taken would tell nothing
         * and only add to a queue that nobody reads. */
        if (tt_link_pending(t->lower) == 0 && send_small(t, FIN | OP_PING, NULL, 0) < 0)
            return;
        t->last_act = now;
        idle = 0;
    }
    uv_timer_start(timer, on_ping_timer, t->ping_ms - idle, 0);
}

tt_link *tt_ws_link_new(tt_link *lower, bool is_client, const uint8_t *early, size_t early_len,
                        const tt_ws_opts *opts)
{
    ws_link *t = calloc(1, sizeof *t);
    if (t == NULL) {
        tt_link_close(lower, NULL, NULL);
        return NULL;
    }
    t->base.ops = &ws_ops;
    t->base.loop = lower->loop;
    t->base.id = lower->id;
    t->lower = lower;
    t->client = is_client;
    t->max_frame = opts && opts->max_frame ? opts->max_frame : TT_WS_DEFAULT_FRAME;
    if (t->max_frame > TT_WS_MAX_FRAME)
        t->max_frame = TT_WS_MAX_FRAME;
    t->ping_ms = opts ? opts->ping_ms : 0;
    t->close_timeout_ms =
        opts && opts->close_timeout_ms ? opts->close_timeout_ms : TT_WS_DEFAULT_CLOSE_TIMEOUT_MS;
    t->last_act = uv_now(lower->loop);
    uv_timer_init(lower->loop, &t->resume);
    uv_timer_init(lower->loop, &t->timer);
    t->resume.data = t;
    t->timer.data = t;
    t->outstanding = 3;
    tt_link_set_handler(lower, &lower_handler, t);
    if (early_len > 0) {
        t->in = malloc(early_len);
        if (t->in == NULL) {
            /* Never handed out: no close handshake, just the teardown. */
            t->closing = true;
            finish(t, false);
            return NULL;
        }
        memcpy(t->in, early, early_len);
        t->in_len = early_len;
    }
    if (t->ping_ms > 0)
        uv_timer_start(&t->timer, on_ping_timer, t->ping_ms, 0);
    return &t->base;
}
