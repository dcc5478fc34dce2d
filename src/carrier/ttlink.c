#include "carrier/ttlink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "carrier/ttpad.h"
#include "core/crypto.h"
#include "core/log.h"
#include "link/scratch.h"

typedef struct ttlink {
    tt_link base;
    tt_link *lower;
    tt_ttlink_params p;
    bool client;
    uint64_t ts; /* client: the hello's timestamp */
    uint8_t salt[TT_SALT_LEN];
    tt_x25519_key eph;       /* our ephemeral key pair; freed once the keys are derived */
    uint8_t pub[TT_PUB_LEN]; /* its public half, for the hello */
    tt_aead hello_tx;        /* client: hello c2s; server: hello s2c */
    tt_aead hello_rx;        /* client: reads the server hello */
    tt_frame_writer tx;      /* session key of our direction */
    tt_frame_reader rx;
    bool hello_sent;
    bool refill_asked;        /* the owner was told to refill its spare key pair */
    bool keys_ready;          /* tx and rx hold session keys */
    bool hello_rcvd;          /* client: the server hello was opened */
    bool answer_told;         /* client: p.answered was called */
    uint64_t born;            /* loop time when the link began */
    bool derive_pending;      /* the peer's public key is known, the keys not yet made */
    uint8_t peer[TT_PUB_LEN]; /* the peer's ephemeral public key */
    /* Client: the server hello being assembled. */
    uint8_t *hbuf;
    size_t hhave, hneed;
    bool hlen_done;
    /* Client: what was written before the session keys, sent once they come. */
    uint8_t *q;
    size_t qlen;
    bool q_fin;
    bool fin_sent, fin_rcvd;
    bool lower_eof; /* the lower link ended; reported after stashed input */
    bool eof_done;  /* the lower EOF was dealt with */
    /* Input received while not reading: plaintext (server early data) first,
     * then ciphertext. */
    uint8_t *early;
    size_t early_len;
    uint8_t *in;
    size_t in_len;
    bool reading, closing;
    uv_timer_t resume;
    int outstanding;
    tt_link_close_cb close_cb;
    void *close_ud;
    uint64_t rng;
} ttlink;

/* The padding of frame I of NFRAMES in one write. The uniform profile pads
 * every frame alike; the shaped one pads only the write's last frame, by
 * SHAPED (tt_pad_write_tail), since an observer sees a write's size, not its
 * frames. */
static size_t frame_pad(ttlink *t, size_t i, size_t nframes, size_t shaped)
{
    if (t->p.pad_profile == TT_PAD_UNIFORM)
        return tt_pad_uniform(&t->rng, t->p.frame_pad_max);
    return i + 1 == nframes ? shaped : 0;
}

static void fail(ttlink *t, int err)
{
    if (t->closing)
        return;
    t->base.handler->on_error(&t->base, t->base.ud, err);
}

static int send_lower(ttlink *t, uint8_t *buf, size_t len)
{
    int rc = tt_link_write1(t->lower, buf, len);
    free(buf);
    return rc;
}

/* Sealed frames are written from a buffer shared by every link of the
 * process (one loop thread; the lower link copies what it cannot send at
 * once), so that a bulk transfer allocates nothing per write. */
#define SEAL_SHARED (320 * 1024)
TT_SCRATCH_DEFINE(g_seal, SEAL_SHARED);

/* Tells the owner, once, that this link's handshake arithmetic is done and
 * it waits for the other end, so the owner's spare key pair may be made
 * now (tt_ttlink_params.refill). The client asks after sending its hello;
 * the server after its first data frame, since the first bytes after its
 * hello (a destination's banner, the answer to the client's request) must
 * not wait behind a key generation. */
static void ask_refill(ttlink *t)
{
    if (t->refill_asked || t->p.refill == NULL)
        return;
    t->refill_asked = true;
    t->p.refill(t->p.refill_ud);
}

/* A read position in a write's pieces. */
typedef struct pieces {
    const uv_buf_t *b;
    unsigned n;
    size_t off; /* within b[0] */
} pieces;

static pieces pieces_of(const uv_buf_t *bufs, unsigned nbufs)
{
    pieces c = {bufs, nbufs, 0};
    while (c.n > 0 && c.b->len == 0) {
        c.b++;
        c.n--;
    }
    return c;
}

/* Callers never ask for more than the pieces hold (a write's LEN is their
 * sum); the count is checked all the same, so that a mistake stops at the
 * end of the array instead of reading past it. */
static void pieces_skip(pieces *c, size_t n)
{
    while (n > 0 && c->n > 0) {
        size_t left = c->b->len - c->off;
        size_t k = n < left ? n : left;
        c->off += k;
        n -= k;
        if (c->off == c->b->len) {
            c->b++;
            c->n--;
            c->off = 0;
        }
    }
    while (c->n > 0 && c->b->len == 0) {
        c->b++;
        c->n--;
    }
}

/* The next N bytes where they lie, if they lie in one piece; else NULL. */
static const uint8_t *pieces_contig(const pieces *c, size_t n)
{
    if (c->n == 0 || c->b->len - c->off < n)
        return NULL;
    return (const uint8_t *)c->b->base + c->off;
}

/* Copies the next N bytes into DST. */
static void pieces_take(pieces *c, uint8_t *dst, size_t n)
{
    while (n > 0 && c->n > 0) {
        size_t left = c->b->len - c->off;
        size_t k = n < left ? n : left;
        memcpy(dst, c->b->base + c->off, k);
        dst += k;
        n -= k;
        pieces_skip(c, k);
    }
}

/* Seals the next LEN bytes of C as frames (and a FIN frame after them when
 * FIN) in one write. A frame's data is sealed from where it lies when it is
 * in one piece and has no padding; otherwise it is gathered into its place
 * in the output first (padding is sealed in the same call as the data,
 * which costs less than a second cipher call), so pieces are never joined
 * into a buffer of their own. */
static int send_frames(ttlink *t, pieces *c, size_t len, bool fin)
{
    size_t f = t->p.frame_data;
    size_t nframes = (len + f - 1) / f + (fin ? 1 : 0);
    size_t cap = len + nframes * (TT_FRAME_OVERHEAD + t->p.frame_pad_max);
    uint8_t *out = tt_scratch_take(&g_seal, cap, cap, NULL);
    if (out == NULL)
        return UV_ENOMEM;
    /* The plaintext in the write's last data frame: what the shaped padding
     * has to hide. It goes on the write's last frame, the FIN frame when
     * there is one, so the write's size is the same either way. */
    size_t tail = len == 0 ? 0 : len - (len - 1) / f * f;
    size_t shaped = t->p.pad_profile == TT_PAD_SHAPED
                        ? tt_pad_write_tail(tail, t->p.frame_pad_max, &t->rng)
                        : 0;
    size_t off = 0, i = 0;
    while (len > 0) {
        size_t n = len < f ? len : f;
        size_t pad = frame_pad(t, i++, nframes, shaped);
        const uint8_t *src = pad == 0 ? pieces_contig(c, n) : NULL;
        if (src != NULL) {
            pieces_skip(c, n);
        } else {
            uint8_t *body = out + off + TT_FRAME_HDR_LEN;
            pieces_take(c, body, n);
            src = body;
        }
        size_t w = tt_frame_seal(&t->tx, TT_FRAME_DATA, src, n, pad, out + off);
        if (w == 0)
            goto fail;
        off += w;
        len -= n;
    }
    if (fin) {
        size_t w = tt_frame_seal(&t->tx, TT_FRAME_FIN, NULL, 0, frame_pad(t, i, nframes, shaped),
                                 out + off);
        if (w == 0)
            goto fail;
        off += w;
    }
    int rc = tt_link_write1(t->lower, out, off);
    tt_scratch_give(&g_seal, out);
    if (rc == 0)
        ask_refill(t);
    return rc;
fail:
    tt_scratch_give(&g_seal, out);
    return UV_EIO;
}

static int ensure_keys(ttlink *t);

/* Client: tells the owner, once per connection, how the server took the
 * first flight (tt_ttlink_params.answered). */
static void tell_answer(ttlink *t, enum tt_ttlink_answer answer)
{
    if (!t->client || t->answer_told || t->p.answered == NULL)
        return;
    t->answer_told = true;
    t->p.answered(t->p.answered_ud, &t->base, answer, uv_now(t->base.loop) - t->born);
}

static int send_hello(ttlink *t, const uint8_t *data, size_t len)
{
    size_t bare = t->client ? tt_client_hello_size(len, 0) : tt_server_hello_size(len, 0);
    size_t pad = tt_pad_hello(t->p.pad_profile, t->client, bare, t->p.hello_pad_max, &t->rng);
    size_t size = t->client ? tt_client_hello_size(len, pad) : tt_server_hello_size(len, pad);
    uint8_t *out = malloc(size);
    if (out == NULL)
        return UV_ENOMEM;
    int rc = t->client
                 ? tt_client_hello_seal(&t->hello_tx, t->salt, t->ts, t->pub, data, len, pad, out)
                 : tt_server_hello_seal(&t->hello_tx, t->pub, data, len, pad, out);
    if (rc < 0) {
        free(out);
        return UV_EIO;
    }
    t->hello_sent = true;
    tt_aead_free(&t->hello_tx);
    rc = send_lower(t, out, size);
    /* The server's keys, now that its hello (and the reply) is on its way. */
    if (rc == 0 && !t->client)
        rc = ensure_keys(t);
    if (rc == 0 && t->client)
        ask_refill(t);
    return rc;
}

/* Sends the hello with the first bytes of C (at most TT_HELLO_MAX_DATA, of
 * LEN), joined first when they span pieces (once per connection). */
static int send_hello_from(ttlink *t, pieces *c, size_t len)
{
    size_t h = len < TT_HELLO_MAX_DATA ? len : TT_HELLO_MAX_DATA;
    const uint8_t *data = pieces_contig(c, h);
    uint8_t *joined = NULL;
    if (data == NULL && h > 0) {
        joined = malloc(h);
        if (joined == NULL)
            return UV_ENOMEM;
        pieces_take(c, joined, h);
        data = joined;
    } else {
        pieces_skip(c, h);
    }
    int rc = send_hello(t, data, h);
    free(joined);
    return rc < 0 ? rc : (int)h;
}

static int queue_add(ttlink *t, pieces *c, size_t len)
{
    uint8_t *q = realloc(t->q, t->qlen + len);
    if (q == NULL)
        return UV_ENOMEM;
    pieces_take(c, q + t->qlen, len);
    t->q = q;
    t->qlen += len;
    return 0;
}

static int tl_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    ttlink *t = (ttlink *)l;
    if (t->closing || t->fin_sent || t->q_fin)
        return UV_EPIPE;
    size_t len = 0;
    for (unsigned i = 0; i < nbufs; i++)
        len += bufs[i].len;
    pieces c = pieces_of(bufs, nbufs);
    if (!t->hello_sent) {
        int h = send_hello_from(t, &c, len);
        if (h < 0)
            return h;
        len -= (size_t)h;
    }
    if (len == 0)
        return 0;
    if (!t->keys_ready || t->qlen > 0)
        return queue_add(t, &c, len);
    return send_frames(t, &c, len, false);
}

static int tl_shutdown(tt_link *l)
{
    ttlink *t = (ttlink *)l;
    if (t->closing || t->fin_sent || t->q_fin)
        return 0;
    if (!t->hello_sent) {
        int rc = send_hello(t, NULL, 0);
        if (rc < 0)
            return rc;
    }
    if (!t->keys_ready || t->qlen > 0) {
        t->q_fin = true;
        return 0;
    }
    t->fin_sent = true;
    pieces none = {NULL, 0, 0};
    int rc = send_frames(t, &none, 0, true);
    return rc < 0 ? rc : tt_link_shutdown(t->lower);
}

static size_t tl_pending(const tt_link *l)
{
    const ttlink *t = (const ttlink *)l;
    return tt_link_pending(t->lower) + t->qlen;
}

static int flush_queue(ttlink *t)
{
    if (t->qlen == 0 && !t->q_fin)
        return 0;
    uv_buf_t b = {.base = (char *)t->q, .len = t->qlen};
    pieces c = pieces_of(&b, 1);
    int rc = send_frames(t, &c, t->qlen, t->q_fin);
    free(t->q);
    t->q = NULL;
    t->qlen = 0;
    if (t->q_fin) {
        t->q_fin = false;
        t->fin_sent = true;
        if (rc == 0)
            rc = tt_link_shutdown(t->lower);
    }
    return rc;
}

/* Makes the session keys from our ephemeral key and the peer's, once both
 * are known. It is deliberately late: the server runs it after writing its
 * hello (which carries the stream reply) and the client after handing on the
 * hello's data (the reply), so the X25519 arithmetic overlaps the other end's
 * work instead of delaying the reply. Sends what waited for the keys. */
static int ensure_keys(ttlink *t)
{
    if (t->keys_ready)
        return 0;
    /* No peer key yet, or an earlier derivation failed: there are no keys,
     * and nothing may be sealed or opened. */
    if (!t->derive_pending)
        return UV_EPROTO;
    t->derive_pending = false;
    const uint8_t *cpub = t->client ? t->pub : t->peer;
    const uint8_t *spub = t->client ? t->peer : t->pub;
    uint8_t shared[32], c2s[32], s2c[32];
    int rc = tt_x25519_derive(&t->eph, t->peer, shared);
    if (rc == 0)
        rc = tt_proto_session_keys(t->p.psk, t->salt, shared, cpub, spub, c2s, s2c);
    if (rc == 0)
        rc = tt_frame_writer_init(&t->tx, t->p.alg, t->client ? c2s : s2c);
    if (rc == 0)
        rc = tt_aead_init(&t->rx.aead, t->p.alg, t->client ? s2c : c2s, false);
    OPENSSL_cleanse(shared, sizeof shared);
    OPENSSL_cleanse(c2s, sizeof c2s);
    OPENSSL_cleanse(s2c, sizeof s2c);
    tt_x25519_free(&t->eph);
    if (rc < 0)
        return UV_EPROTO;
    t->keys_ready = true;
    if (t->closing)
        return 0;
    size_t before = tl_pending(&t->base);
    rc = flush_queue(t);
    if (rc < 0)
        return rc;
    /* Our pending count fell with the queue: tell a waiting producer. */
    if (before > 0 && tl_pending(&t->base) == 0 && t->base.handler->on_drained)
        t->base.handler->on_drained(&t->base, t->base.ud);
    return 0;
}

/* Client: takes server-hello bytes; returns bytes used, or a negative code. */
static long take_server_hello(ttlink *t, const uint8_t *data, size_t len)
{
    if (t->hbuf == NULL) {
        t->hbuf = malloc(TT_HELLO_HDR_LEN + TT_SERVER_HELLO_FIXED + TT_HELLO_MAX_DATA +
                         TT_HELLO_MAX_PAD + TT_AEAD_TAG_LEN);
        if (t->hbuf == NULL)
            return UV_ENOMEM;
        t->hneed = TT_HELLO_HDR_LEN;
    }
    size_t take = t->hneed - t->hhave;
    if (take > len)
        take = len;
    memcpy(t->hbuf + t->hhave, data, take);
    t->hhave += take;
    if (t->hhave < t->hneed)
        return (long)take;
    if (!t->hlen_done) {
        size_t body;
        if (tt_hello_open_len(&t->hello_rx, t->hbuf, false, &body, NULL) != 0) {
            tell_answer(t, TT_TTLINK_HELLO_GARBLED);
            return UV_EPROTO;
        }
        t->hlen_done = true;
        t->hhave = 0;
        t->hneed = body;
        return (long)take;
    }
    tt_server_hello sh;
    if (tt_server_hello_open(&t->hello_rx, t->hbuf, t->hneed, &sh) != 0) {
        tell_answer(t, TT_TTLINK_HELLO_GARBLED);
        return UV_EPROTO;
    }
    tell_answer(t, TT_TTLINK_HELLO_OK);
    tt_aead_free(&t->hello_rx);
    memcpy(t->peer, sh.spub, TT_PUB_LEN);
    t->hello_rcvd = true;
    t->derive_pending = true;
    /* The reply first, the keys after (see ensure_keys). */
    if (sh.dlen > 0)
        t->base.handler->on_data(&t->base, t->base.ud, sh.data, sh.dlen);
    free(t->hbuf);
    t->hbuf = NULL;
    int rc = ensure_keys(t);
    return rc < 0 ? rc : (long)take;
}

static int stash(ttlink *t, const uint8_t *data, size_t len)
{
    uint8_t *p = realloc(t->in, t->in_len + len);
    if (p == NULL)
        return UV_ENOMEM;
    memcpy(p + t->in_len, data, len);
    t->in = p;
    t->in_len += len;
    return 0;
}

static void report_lower_eof(ttlink *t)
{
    if (t->eof_done || t->closing)
        return;
    t->eof_done = true;
    /* A server closes a first flight it refused without a byte of answer;
     * only the client can say what that silence probably means. */
    if (!t->hello_rcvd)
        tell_answer(t, t->hhave > 0 || t->hlen_done ? TT_TTLINK_HELLO_GARBLED
                                                    : TT_TTLINK_HELLO_SILENCE);
    /* A clean end is a FIN frame; a connection that just stops may have been
     * cut by someone else, and saying "EOF" would hide the truncation. */
    if (!t->fin_rcvd)
        fail(t, UV_EPROTO);
}

/* Plaintext of consecutive frames is gathered and handed over in one call,
 * so the consumer (the relay) makes one write per read from the network
 * instead of one per frame. Frames are decrypted straight into the gather
 * buffer (the reader's out), which is shared by every link of the process
 * (one loop thread) so that a read allocates nothing; a delivery that
 * re-enters another link's processing makes that one use a buffer of its
 * own. A frame's room is its largest body, padding included. */
#define DELIVER_MAX (128 * 1024)
#define FRAME_ROOM (TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD)
TT_SCRATCH_DEFINE(g_gather, DELIVER_MAX);

typedef struct gather {
    uint8_t *buf;
    size_t len;
} gather;

static void deliver(ttlink *t, gather *g)
{
    if (g->len > 0 && !t->closing)
        t->base.handler->on_data(&t->base, t->base.ud, g->buf, g->len);
    g->len = 0;
}

/* Appends gathered plaintext to the plaintext stash. */
static int keep_plain(ttlink *t, gather *g)
{
    if (g->len == 0)
        return 0;
    uint8_t *e = realloc(t->early, t->early_len + g->len);
    if (e == NULL)
        return UV_ENOMEM;
    memcpy(e + t->early_len, g->buf, g->len);
    t->early = e;
    t->early_len += g->len;
    g->len = 0;
    return 0;
}

/* Decrypts and delivers DATA while the owner reads; keeps the rest. */
static void process(ttlink *t, const uint8_t *data, size_t len)
{
    gather g = {NULL, 0};
    size_t off = 0;
    while (off < len) {
        if (t->closing)
            goto out;
        if (!t->reading) {
            /* The owner stopped reading during a delivery: keep what is
             * decrypted already (plaintext, delivered first) and what is
             * not (ciphertext), in that order, for read_start. */
            if (keep_plain(t, &g) < 0 || stash(t, data + off, len - off) < 0)
                fail(t, UV_ENOMEM);
            goto out;
        }
        if (t->client && !t->hello_rcvd) {
            long n = take_server_hello(t, data + off, len - off);
            if (n < 0) {
                tt_debug("c%llu: bad server hello (wrong key?)", (unsigned long long)t->base.id);
                fail(t, (int)n);
                goto out;
            }
            off += (size_t)n;
            continue;
        }
        if (!t->keys_ready && ensure_keys(t) < 0) {
            fail(t, UV_EPROTO);
            goto out;
        }
        if (g.buf == NULL) {
            g.buf = tt_scratch_take(&g_gather, 0, DELIVER_MAX, NULL);
            if (g.buf == NULL) {
                fail(t, UV_ENOMEM);
                goto out;
            }
        }
        if (g.len + FRAME_ROOM > DELIVER_MAX)
            deliver(t, &g);
        if (t->closing || !t->reading)
            continue;
        t->rx.out = g.buf + g.len;
        size_t used;
        uint8_t type;
        const uint8_t *p;
        size_t n;
        int rc = tt_frame_reader_feed(&t->rx, data + off, len - off, &used, &type, &p, &n);
        t->rx.out = NULL;
        off += used;
        if (rc < 0 || (rc > 0 && t->fin_rcvd)) {
            tt_debug("c%llu: frame rejected (%s)", (unsigned long long)t->base.id,
                     rc == -EBADMSG ? "authentication failed" : "malformed");
            deliver(t, &g);
            fail(t, UV_EPROTO);
            goto out;
        }
        if (rc == 0)
            break;
        if (type == TT_FRAME_FIN) {
            deliver(t, &g);
            t->fin_rcvd = true;
            if (!t->closing)
                t->base.handler->on_eof(&t->base, t->base.ud);
            continue;
        }
        /* A body that was assembled across reads comes from the reader's
         * own buffer. */
        if (n > 0 && p != g.buf + g.len)
            memmove(g.buf + g.len, p, n);
        g.len += n;
    }
    if (t->reading)
        deliver(t, &g);
    else if (keep_plain(t, &g) < 0)
        fail(t, UV_ENOMEM);
out:
    tt_scratch_give(&g_gather, g.buf);
    tt_frame_reader_trim(&t->rx);
}

static void on_lower_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    process(ud, data, len);
}

static void on_lower_eof(tt_link *l, void *ud)
{
    (void)l;
    ttlink *t = ud;
    t->lower_eof = true;
    if (t->in_len == 0 && t->early_len == 0)
        report_lower_eof(t);
}

static void on_lower_error(tt_link *l, void *ud, int err)
{
    (void)l;
    fail(ud, err);
}

static void on_lower_drained(tt_link *l, void *ud)
{
    (void)l;
    ttlink *t = ud;
    if (t->qlen == 0 && !t->closing && t->base.handler->on_drained)
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
    ttlink *t = timer->data;
    if (t->closing || !t->reading)
        return;
    if (t->early_len > 0) {
        uint8_t *e = t->early;
        size_t n = t->early_len;
        t->early = NULL;
        t->early_len = 0;
        t->base.handler->on_data(&t->base, t->base.ud, e, n);
        free(e);
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
        if (t->closing || !t->reading)
            return;
    }
    if (t->lower_eof)
        report_lower_eof(t);
    else if (tt_link_read_start(t->lower) < 0)
        fail(t, UV_EIO);
}

static int tl_read_start(tt_link *l)
{
    ttlink *t = (ttlink *)l;
    if (t->closing)
        return UV_EINVAL;
    t->reading = true;
    /* Stashed input is delivered from the loop, not from inside this call,
     * so a caller never sees its handler run before read_start returns. */
    if (t->early_len > 0 || t->in_len > 0 || t->lower_eof) {
        uv_timer_start(&t->resume, on_resume, 0, 0);
        return 0;
    }
    return tt_link_read_start(t->lower);
}

static void tl_read_stop(tt_link *l)
{
    ttlink *t = (ttlink *)l;
    t->reading = false;
    uv_timer_stop(&t->resume);
    if (!t->closing)
        tt_link_read_stop(t->lower);
}

static void release(void *ud)
{
    ttlink *t = ud;
    if (--t->outstanding > 0)
        return;
    tt_aead_free(&t->hello_tx);
    tt_aead_free(&t->hello_rx);
    tt_frame_writer_free(&t->tx);
    tt_frame_reader_free(&t->rx);
    free(t->hbuf);
    free(t->q);
    free(t->in);
    free(t->early);
    tt_x25519_free(&t->eph);
    tt_link_close_cb cb = t->close_cb;
    void *cud = t->close_ud;
    free(t);
    if (cb)
        cb(cud);
}

static void on_resume_closed(uv_handle_t *h)
{
    release(h->data);
}

/* Closes (or, with ABORT, aborts) the lower link and the resume timer. */
static void tl_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    ttlink *t = (ttlink *)l;
    if (t->closing)
        return;
    t->closing = true;
    t->reading = false;
    t->close_cb = cb;
    t->close_ud = ud;
    if (abort)
        tt_link_abort(t->lower, release, t);
    else
        tt_link_close(t->lower, release, t);
    uv_close((uv_handle_t *)&t->resume, on_resume_closed);
}

static void tl_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    tl_end(l, cb, ud, false);
}

static void tl_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    tl_end(l, cb, ud, true);
}

static const char *tl_peer(tt_link *l, char *buf, size_t len)
{
    return tt_link_peer(((ttlink *)l)->lower, buf, len);
}

static const tt_link_ops ttlink_ops = {
    .write = tl_write,
    .read_start = tl_read_start,
    .read_stop = tl_read_stop,
    .shutdown = tl_shutdown,
    .close = tl_close,
    .pending = tl_pending,
    .abort = tl_abort,
    .peer = tl_peer,
};

/* Takes the owner's spare key pair if there is one, else makes one. */
static int take_keypair(ttlink *t)
{
    int rc = 0;
    if (t->p.spare && t->p.spare->pkey)
        tt_x25519_move(&t->eph, t->p.spare);
    else
        rc = tt_x25519_generate(&t->eph);
    if (rc == 0)
        memcpy(t->pub, t->eph.pub, TT_PUB_LEN);
    return rc;
}

static ttlink *ttlink_new(tt_link *lower, const tt_ttlink_params *p, bool client)
{
    ttlink *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->base.ops = &ttlink_ops;
    t->base.loop = lower->loop;
    t->base.id = lower->id;
    t->lower = lower;
    t->p = *p;
    if (t->p.frame_data == 0 || t->p.frame_data > TT_FRAME_MAX_DATA)
        t->p.frame_data = TT_FRAME_MAX_DATA;
    if (t->p.frame_pad_max > TT_FRAME_MAX_PAD)
        t->p.frame_pad_max = TT_FRAME_MAX_PAD;
    if (t->p.hello_pad_max > TT_HELLO_MAX_PAD)
        t->p.hello_pad_max = TT_HELLO_MAX_PAD;
    t->client = client;
    t->born = uv_now(lower->loop);
    tt_random(&t->rng, sizeof t->rng);
    t->rng |= 1;
    tt_frame_reader_init(&t->rx, TT_FRAME_MAX_DATA);
    uv_timer_init(lower->loop, &t->resume);
    t->resume.data = t;
    t->outstanding = 2;
    tt_link_set_handler(lower, &lower_handler, t);
    return t;
}

/* Frees a link that was never handed out. */
static void ttlink_abort(ttlink *t)
{
    tl_close(&t->base, NULL, NULL);
}

tt_link *tt_ttlink_client(tt_link *lower, const tt_ttlink_params *p, uint64_t now_s)
{
    ttlink *t = ttlink_new(lower, p, true);
    if (t == NULL) {
        tt_link_close(lower, NULL, NULL);
        return NULL;
    }
    t->ts = now_s;
    uint8_t c2s[32], s2c[32];
    tt_random(t->salt, sizeof t->salt);
    int rc = take_keypair(t);
    if (rc == 0)
        rc = tt_proto_hello_keys(p->psk, t->salt, c2s, s2c);
    if (rc == 0)
        rc = tt_aead_init(&t->hello_tx, p->alg, c2s, true);
    if (rc == 0)
        rc = tt_aead_init(&t->hello_rx, p->alg, s2c, false);
    OPENSSL_cleanse(c2s, sizeof c2s);
    OPENSSL_cleanse(s2c, sizeof s2c);
    if (rc < 0) {
        ttlink_abort(t);
        return NULL;
    }
    return &t->base;
}

tt_link *tt_ttlink_server(tt_link *lower, const tt_ttlink_params *p,
                          const uint8_t salt[TT_SALT_LEN], const uint8_t cpub[TT_PUB_LEN],
                          const uint8_t *early, size_t elen, const uint8_t *extra, size_t xlen)
{
    ttlink *t = ttlink_new(lower, p, false);
    if (t == NULL) {
        tt_link_close(lower, NULL, NULL);
        return NULL;
    }
    memcpy(t->salt, salt, TT_SALT_LEN);
    memcpy(t->peer, cpub, TT_PUB_LEN);
    t->derive_pending = true;
    uint8_t hc2s[32], hs2c[32];
    int rc = take_keypair(t);
    if (rc == 0)
        rc = tt_proto_hello_keys(p->psk, salt, hc2s, hs2c);
    if (rc == 0)
        rc = tt_aead_init(&t->hello_tx, p->alg, hs2c, true);
    OPENSSL_cleanse(hc2s, sizeof hc2s);
    OPENSSL_cleanse(hs2c, sizeof hs2c);
    if (rc == 0 && elen > 0) {
        t->early = malloc(elen);
        if (t->early == NULL)
            rc = -ENOMEM;
        else
            memcpy(t->early, early, elen);
        t->early_len = elen;
    }
    if (rc == 0 && xlen > 0)
        rc = stash(t, extra, xlen);
    if (rc < 0) {
        ttlink_abort(t);
        return NULL;
    }
    return &t->base;
}
