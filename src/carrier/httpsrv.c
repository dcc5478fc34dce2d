/* The HTTP streaming carriers' server (docs/HTTP.md).
 *
 * Every accepted connection (after TLS for https://) is read one request
 * head at a time, as a keep-alive web server does:
 * - a GET to the path with a valid token (kind GET, nonce not seen) opens
 *   a tunnel: the answer is a streaming 200, the connection carries the
 *   tunnel's downstream from then on, and the tunnel (a link) goes to the
 *   stream layer;
 * - a POST to the path with a valid token (kind POST) for a live tunnel
 *   carries upstream bytes: the body of sequence number N is read when the
 *   tunnel has read N - 1, streamed to the tunnel's owner as it comes (no
 *   body is buffered whole), and answered 200 once read; POSTs ahead of
 *   their turn (up to TT_HTTP_REORDER) wait unread, which TCP turns into
 *   backpressure on their senders; the connection then takes the next
 *   request;
 * - anything else goes to the web site (--www, --fallback) with every byte
 *   it sent, as from the other web carriers.
 * The tunnel ends cleanly with an end record after the owner's shutdown;
 * a GET connection that ends before that, or a POST cut in its body,
 * fails the tunnel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/children.h"
#include "carrier/http.h"
#include "codec/http1.h"
#include "core/log.h"
#include "decoy/decoy.h"
#include "link/linger.h"
#include "link/tcp.h"
#include "link/tls.h"

#define REPLAY_CAP (1u << 16)

enum sstate { S_HEAD, S_BODY, S_PARKED, S_DISCARD };

typedef struct sconn sconn;

struct tt_http_stun {
    tt_link base;
    tt_http_carrier *c; /* NULL once the carrier has closed */
    tt_http_stun *next; /* in the table's bucket */
    uint8_t id[TT_HTS_ID_LEN];
    tt_link *down;
    bool chunked;
    uint32_t next_seq;
    sconn *cur;                     /* the POST being read: seq == next_seq */
    sconn *parked[TT_HTTP_REORDER]; /* by seq - next_seq (slot 0 unused) */
    bool reading, eof_rcvd, eof_pending, end_sent, failed, closing, down_gone;
    uv_timer_t resume;
    int outstanding;
    tt_link_close_cb close_cb;
    void *close_ud;
};

struct sconn {
    tt_http_carrier *c;
    tt_child child; /* in c->w.children while reading a head */
    bool is_child;
    tt_link *link;
    uv_timer_t timer;
    uint8_t *buf; /* the head being read; then bytes kept while not read */
    size_t have;
    tt_http_head head; /* the head being read, parsed as it comes (S_HEAD) */
    bool head_live;    /* HEAD holds a parse under way */
    uint64_t deadline;
    enum sstate state;
    tt_http_stun *t; /* S_BODY, S_PARKED */
    uint32_t seq;
    bool fin, close_after;
    uint64_t left; /* body bytes to come */
    bool closed;
    char peer[64];
};

static void sconn_process(sconn *s);
static void stun_fail(tt_http_stun *t, int err, const char *why);
static void kick_resume(tt_http_stun *t);

/* --- the table ---------------------------------------------------------- */

static unsigned bucket(const uint8_t id[TT_HTS_ID_LEN])
{
    return id[0] % TT_HTTP_TABLE;
}

static tt_http_stun *table_find(tt_http_carrier *c, const uint8_t id[TT_HTS_ID_LEN])
{
    for (tt_http_stun *t = c->table[bucket(id)]; t; t = t->next) {
        if (memcmp(t->id, id, TT_HTS_ID_LEN) == 0)
            return t;
    }
    return NULL;
}

static void table_remove(tt_http_stun *t)
{
    if (t->c == NULL)
        return;
    for (tt_http_stun **pp = &t->c->table[bucket(t->id)]; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->c = NULL;
}

void tt_http_server_forget(tt_http_carrier *c)
{
    for (size_t i = 0; i < TT_HTTP_TABLE; i++) {
        while (c->table[i]) {
            tt_http_stun *t = c->table[i];
            c->table[i] = t->next;
            t->c = NULL;
            if (t->cur)
                t->cur->c = NULL;
            for (int k = 0; k < TT_HTTP_REORDER; k++) {
                if (t->parked[k])
                    t->parked[k]->c = NULL;
            }
        }
    }
}

/* --- connections -------------------------------------------------------- */

static void sconn_timer_closed(uv_handle_t *h)
{
    sconn *s = h->data;
    if (s->head_live)
        tt_http_head_free(&s->head);
    free(s->buf);
    free(s);
}

/* Frees S once its link has been closed or handed on. */
static void sconn_end(sconn *s)
{
    if (s->is_child)
        tt_child_remove(&s->child);
    s->is_child = false;
    s->closed = true;
    s->link = NULL;
    uv_close((uv_handle_t *)&s->timer, sconn_timer_closed);
}

static void sconn_close(sconn *s, bool abort)
{
    if (s->closed)
        return;
    if (abort)
        tt_link_abort(s->link, NULL, NULL);
    else
        tt_link_close(s->link, NULL, NULL);
    sconn_end(s);
}

/* Detaches S from its tunnel. */
static void detach(sconn *s)
{
    tt_http_stun *t = s->t;
    if (t == NULL)
        return;
    if (t->cur == s)
        t->cur = NULL;
    for (int i = 0; i < TT_HTTP_REORDER; i++) {
        if (t->parked[i] == s)
            t->parked[i] = NULL;
    }
    s->t = NULL;
}

static void to_web(sconn *s, const char *why)
{
    tt_link *l = s->link;
    tt_link_read_stop(l);
    if (s->c == NULL) {
        sconn_close(s, false);
        return;
    }
    tt_info("c%llu %s: not a tt client (%s)", (unsigned long long)l->id, s->peer, why);
    tt_decoy_answer(l, &s->c->w.cfg, s->buf, s->have, s->peer, s->deadline);
    sconn_end(s);
}

static void on_sconn_timeout(uv_timer_t *timer)
{
    sconn *s = timer->data;
    if (s->state != S_HEAD)
        return;
    tt_debug("c%llu %s: no request in time", (unsigned long long)s->link->id, s->peer);
    if (s->have > 0)
        tt_tls_link_close_quietly(s->link);
    sconn_close(s, false);
}

/* The carrier closes: a connection still reading a head goes with it. */
static void sconn_child_close(void *ud)
{
    sconn *s = ud;
    s->is_child = false;
    sconn_close(s, false);
}

/* Waits for the next request on S (keep-alive), with the bytes already
 * in S->buf. */
static void await_head(sconn *s)
{
    s->state = S_HEAD;
    if (s->c == NULL) {
        sconn_close(s, false);
        return;
    }
    if (!s->is_child) {
        tt_child_add(&s->c->w.children, &s->child, sconn_child_close, s);
        s->is_child = true;
    }
    uint64_t now = uv_now(s->link->loop);
    s->deadline = now + s->c->w.cfg.header_timeout_ms;
    uv_timer_start(&s->timer, on_sconn_timeout, s->c->w.cfg.keepalive_timeout_ms, 0);
    if (tt_link_read_start(s->link) < 0)
        sconn_close(s, false);
    else if (s->have > 0)
        sconn_process(s);
}

/* Drops the first N bytes of S->buf. */
static void consume(sconn *s, size_t n)
{
    memmove(s->buf, s->buf + n, s->have - n);
    s->have -= n;
}

/* --- the tunnel link ---------------------------------------------------- */

static void stun_release(void *ud)
{
    tt_http_stun *t = ud;
    if (--t->outstanding > 0)
        return;
    tt_link_close_cb cb = t->close_cb;
    void *cud = t->close_ud;
    free(t);
    if (cb)
        cb(cud);
}

static void stun_handle_closed(uv_handle_t *h)
{
    stun_release(h->data);
}

static bool stun_stopped(tt_http_stun *t)
{
    return t->closing || t->failed || !t->reading;
}

static void stun_deliver_eof(tt_http_stun *t)
{
    if (stun_stopped(t))
        return;
    t->eof_pending = false;
    t->base.handler->on_eof(&t->base, t->base.ud);
}

static void post_answer(sconn *s)
{
    char ans[256];
    size_t n = tt_hts_post_answer(ans, sizeof ans, (int64_t)(s->c ? tt_webbase_now(&s->c->w) : 0),
                                  s->close_after);
    if (n == 0 || tt_link_write1(s->link, ans, n) != 0)
        s->close_after = true;
}

/* S's body is read whole: answer it, pass the turn on, take the next
 * request on S. */
static void body_done(sconn *s)
{
    tt_http_stun *t = s->t;
    post_answer(s);
    if (t != NULL) {
        detach(s);
        t->next_seq++;
        if (s->fin) {
            t->eof_rcvd = true;
            t->eof_pending = true;
        }
        /* The next in line, if it came already. */
        sconn *n = t->parked[1];
        memmove(&t->parked[0], &t->parked[1], (TT_HTTP_REORDER - 1) * sizeof t->parked[0]);
        t->parked[TT_HTTP_REORDER - 1] = NULL;
        t->parked[0] = NULL;
        if (n != NULL) {
            t->cur = n;
            n->state = S_BODY;
        }
        if (t->reading)
            kick_resume(t);
    }
    if (s->close_after) {
        /* The answer must not be lost to a reset: half-close after it,
         * and close on the peer's end. */
        tt_link *l = s->link;
        tt_link_read_stop(l);
        sconn_end(s);
        tt_link_linger(l, 5000);
        return;
    }
    await_head(s);
}

/* Reads body bytes of S (the tunnel's current POST) from S->buf, as far as
 * the owner takes them. */
static void feed_body(sconn *s)
{
    tt_http_stun *t = s->t;
    while (s->left > 0 && s->have > 0) {
        if (t == NULL || stun_stopped(t))
            return;
        size_t n = s->have < s->left ? s->have : (size_t)s->left;
        s->left -= n;
        /* The handler may stop, close, or write: the bytes are handed on
         * from the buffer, which is not touched until it returns. */
        uint8_t *b = s->buf;
        s->buf = NULL;
        size_t have = s->have;
        s->have = 0;
        t->base.handler->on_data(&t->base, t->base.ud, b, n);
        if (s->closed) {
            free(b);
            return;
        }
        if (have > n) {
            memmove(b, b + n, have - n);
            s->buf = b;
            s->have = have - n;
        } else {
            free(b);
        }
        t = s->t;
    }
    if (s->left == 0)
        body_done(s);
}

/* Reads what can be read for T: the current POST's kept bytes, then its
 * connection; an end of the upstream once every POST before it was read. */
static void stun_on_resume(uv_timer_t *timer)
{
    tt_http_stun *t = timer->data;
    while (!stun_stopped(t)) {
        if (t->eof_pending) {
            stun_deliver_eof(t);
            return;
        }
        sconn *s = t->cur;
        if (s == NULL)
            return;
        if (s->have > 0) {
            feed_body(s);
            continue;
        }
        if (s->left == 0) {
            body_done(s);
            continue;
        }
        if (tt_link_read_start(s->link) < 0)
            stun_fail(t, UV_EIO, NULL);
        return;
    }
}

/* Reports a fatal error to T's owner once. */
static void stun_fail(tt_http_stun *t, int err, const char *why)
{
    if (t->failed || t->closing)
        return;
    t->failed = true;
    if (why)
        tt_debug("c%llu: http tunnel: %s", (unsigned long long)t->base.id, why);
    t->base.handler->on_error(&t->base, t->base.ud, err);
}

static void kick_resume(tt_http_stun *t)
{
    if (!t->closing)
        uv_timer_start(&t->resume, stun_on_resume, 0, 0);
}

static int stun_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    tt_http_stun *t = (tt_http_stun *)l;
    if (t->closing || t->end_sent || t->down_gone)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (total > TT_HTS_REC_MAX) {
        /* One record per piece, each under the bound. */
        for (unsigned i = 0; i < nbufs; i++) {
            for (size_t off = 0; off < bufs[i].len; off += TT_HTS_REC_MAX) {
                size_t n = bufs[i].len - off < TT_HTS_REC_MAX ? bufs[i].len - off : TT_HTS_REC_MAX;
                uv_buf_t b = uv_buf_init(bufs[i].base + off, (unsigned)n);
                int rc = stun_write(l, &b, 1);
                if (rc != 0)
                    return rc;
            }
        }
        return 0;
    }
    uv_buf_t stack[66], *iov = stack;
    if (nbufs + 2 > 66) {
        iov = malloc((nbufs + 2) * sizeof *iov);
        if (iov == NULL)
            return UV_ENOMEM;
    }
    char hdr[32];
    size_t hn = 0;
    if (t->chunked)
        hn = (size_t)snprintf(hdr, sizeof hdr, "%zx\r\n", total + TT_HTS_REC_HDR);
    tt_hts_rec_header((uint8_t *)hdr + hn, TT_HTS_REC_DATA, total);
    hn += TT_HTS_REC_HDR;
    unsigned k = 0;
    iov[k++] = uv_buf_init(hdr, (unsigned)hn);
    for (unsigned i = 0; i < nbufs; i++)
        iov[k++] = bufs[i];
    static char crlf[] = "\r\n";
    if (t->chunked)
        iov[k++] = uv_buf_init(crlf, 2);
    int rc = tt_link_write(t->down, iov, k);
    if (iov != stack)
        free(iov);
    return rc;
}

static int stun_shutdown(tt_link *l)
{
    tt_http_stun *t = (tt_http_stun *)l;
    if (t->closing || t->down_gone)
        return UV_EPIPE;
    if (t->end_sent)
        return 0;
    t->end_sent = true;
    char b[32];
    size_t n = 0;
    if (t->chunked)
        n = (size_t)snprintf(b, sizeof b, "%x\r\n", TT_HTS_REC_HDR);
    tt_hts_rec_header((uint8_t *)b + n, TT_HTS_REC_END, 0);
    n += TT_HTS_REC_HDR;
    if (t->chunked) {
        memcpy(b + n, "\r\n0\r\n\r\n", 7);
        n += 7;
    }
    int rc = tt_link_write1(t->down, b, n);
    /* Without chunked framing the body ends with the connection. */
    if (rc == 0 && !t->chunked)
        rc = tt_link_shutdown(t->down);
    return rc;
}

static int stun_read_start(tt_link *l)
{
    tt_http_stun *t = (tt_http_stun *)l;
    if (t->closing)
        return UV_EINVAL;
    if (t->reading)
        return 0;
    t->reading = true;
    if (!t->failed)
        kick_resume(t);
    return 0;
}

static void stun_read_stop(tt_http_stun *t)
{
    t->reading = false;
    if (t->closing)
        return;
    uv_timer_stop(&t->resume);
    if (t->cur && !t->cur->closed)
        tt_link_read_stop(t->cur->link);
}

static void stun_read_stop_op(tt_link *l)
{
    stun_read_stop((tt_http_stun *)l);
}

static size_t stun_pending(const tt_link *l)
{
    const tt_http_stun *t = (const tt_http_stun *)l;
    return t->down && !t->closing ? tt_link_pending(t->down) : 0;
}

static void stun_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    tt_http_stun *t = (tt_http_stun *)l;
    if (t->closing)
        return;
    t->closing = true;
    t->reading = false;
    t->close_cb = cb;
    t->close_ud = ud;
    table_remove(t);
    /* POSTs still attached end with the tunnel. */
    sconn *all[TT_HTTP_REORDER + 1];
    int n = 0;
    if (t->cur)
        all[n++] = t->cur;
    for (int i = 0; i < TT_HTTP_REORDER; i++) {
        if (t->parked[i])
            all[n++] = t->parked[i];
    }
    for (int i = 0; i < n; i++) {
        detach(all[i]);
        sconn_close(all[i], true);
    }
    t->outstanding = 2;
    if (abort || t->failed || !t->end_sent)
        tt_link_abort(t->down, stun_release, t);
    else
        tt_link_close(t->down, stun_release, t);
    t->down = NULL;
    uv_close((uv_handle_t *)&t->resume, stun_handle_closed);
}

static void stun_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    stun_end(l, cb, ud, false);
}

static void stun_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    stun_end(l, cb, ud, true);
}

static const char *stun_peer(tt_link *l, char *buf, size_t len)
{
    tt_http_stun *t = (tt_http_stun *)l;
    if (t->down)
        return tt_link_peer(t->down, buf, len);
    if (len > 0)
        buf[0] = '\0';
    return buf;
}

static const tt_link_ops stun_ops = {
    .write = stun_write,
    .read_start = stun_read_start,
    .read_stop = stun_read_stop_op,
    .shutdown = stun_shutdown,
    .close = stun_close,
    .pending = stun_pending,
    .abort = stun_abort,
    .peer = stun_peer,
};

/* The GET's connection: the client sends nothing more on it; its end
 * before the end record means the client is gone. */
static void down_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    (void)ud;
    (void)data;
    (void)len;
}

static void down_gone(tt_http_stun *t, int err)
{
    t->down_gone = true;
    if (t->down)
        tt_link_read_stop(t->down);
    if (!t->end_sent)
        stun_fail(t, err, "the client's GET connection ended");
}

static void down_eof(tt_link *l, void *ud)
{
    (void)l;
    down_gone(ud, UV_ECONNRESET);
}

static void down_error(tt_link *l, void *ud, int err)
{
    (void)l;
    down_gone(ud, err);
}

static void down_drained(tt_link *l, void *ud)
{
    (void)l;
    tt_http_stun *t = ud;
    if (!t->closing && t->base.handler->on_drained)
        t->base.handler->on_drained(&t->base, t->base.ud);
}

static const tt_link_handler down_handler = {down_data, down_eof, down_error, down_drained};

/* --- requests ----------------------------------------------------------- */

/* The first cookie of S's request that holds a valid token of KIND, into
 * *TOK. Returns NULL, or why none does. */
static const char *find_token(sconn *s, const tt_http_str *cookies, size_t n, int kind,
                              tt_hts_token *tok)
{
    /* Without a key (a fixed destination, -d) tokens are made under the
     * all-zero key: they still carry the tunnel's id and the POSTs'
     * numbers. */
    tt_http_carrier *c = s->c;
    const char *why = "no token";
    uint64_t now = tt_webbase_now(&c->w);
    for (size_t i = 0; i < n; i++) {
        const char *w = NULL;
        int rc = tt_hts_token_check(c->w.auth, cookies[i].p, cookies[i].len, c->w.cfg.url.path, now,
                                    c->w.cfg.replay_window_s, tok, &w);
        if (rc == 0 && tok->kind != kind)
            w = "token of the other method";
        else if (rc == 0)
            return NULL;
        if (strcmp(why, "no token") == 0 || strcmp(w, "malformed token") != 0)
            why = w;
    }
    return why;
}

static void open_tunnel(sconn *s, const tt_http_head *h, const tt_hts_token *tok)
{
    tt_http_carrier *c = s->c;
    if (c->w.has_key) {
        if (!tt_replay_covers(&c->replay, tok->time)) {
            to_web(s, "token made before this server started");
            return;
        }
        int rc = tt_replay_check(&c->replay, tok->nonce, tt_webbase_now(&c->w));
        if (rc != 0) {
            to_web(s, rc == -EEXIST ? "replayed token" : "token memory full");
            return;
        }
    }
    if (table_find(c, tok->id) != NULL) {
        to_web(s, "tunnel id in use");
        return;
    }
    tt_http_stun *t = calloc(1, sizeof *t);
    if (t == NULL) {
        sconn_close(s, false);
        return;
    }
    bool chunked = h->minor == 1;
    char ans[512];
    size_t n = tt_hts_down_head(ans, sizeof ans, (int64_t)tt_webbase_now(&c->w), chunked);
    tt_link *l = s->link;
    tt_link_read_stop(l);
    if (n == 0 || tt_link_write1(l, ans, n) != 0) {
        free(t);
        sconn_close(s, false);
        return;
    }
    t->base.ops = &stun_ops;
    t->base.loop = l->loop;
    t->base.id = l->id;
    t->c = c;
    memcpy(t->id, tok->id, TT_HTS_ID_LEN);
    t->down = l;
    t->chunked = chunked;
    uv_timer_init(l->loop, &t->resume);
    t->resume.data = t;
    t->next = c->table[bucket(t->id)];
    c->table[bucket(t->id)] = t;
    tt_link_set_handler(l, &down_handler, t);
    sconn_end(s); /* the connection is the tunnel's now */
    tt_tcp_link_trust(l);
    if (tt_link_read_start(l) < 0) {
        /* Noticed at its first write. */
        t->down_gone = true;
    }
    c->w.accept_cb(c->w.accept_ud, &t->base);
}

static void take_post(sconn *s, const tt_http_head *h, const tt_hts_token *tok)
{
    tt_http_carrier *c = s->c;
    uint64_t len = 0;
    const char *why = NULL;
    if (tt_http_transfer_encoding(h) != TT_HTTP_TE_NONE ||
        tt_http_content_length(h, &len, &why) != 1 || len > TT_HTTP_POST_TAKE) {
        to_web(s, "POST without a Content-Length in bounds");
        return;
    }
    tt_http_stun *t = table_find(c, tok->id);
    if (t == NULL || t->closing) {
        to_web(s, "POST for no live tunnel");
        return;
    }
    s->close_after = h->minor == 0 || tt_http_header_has(h, "Connection", "close");
    s->left = len;
    s->seq = tok->seq;
    s->fin = (tok->flags & TT_HTS_FIN) != 0;
    size_t head_len = h->head_len;
    uv_timer_stop(&s->timer);
    tt_tcp_link_trust(s->link);
    uint32_t ahead = tok->seq - t->next_seq;
    if (tok->seq < t->next_seq) {
        /* A POST sent again whose first copy was read: its body goes. It
         * stays the carrier's child, as it belongs to no tunnel. */
        s->state = S_DISCARD;
        consume(s, head_len);
        sconn_process(s);
        return;
    }
    if (ahead >= TT_HTTP_REORDER || (ahead == 0 && t->cur != NULL) ||
        (ahead > 0 && t->parked[ahead] != NULL) || t->eof_rcvd) {
        to_web(s, "POST out of its window");
        return;
    }
    consume(s, head_len);
    /* The tunnel owns it now (tt_http_server_forget). */
    if (s->is_child)
        tt_child_remove(&s->child);
    s->is_child = false;
    s->t = t;
    tt_link_read_stop(s->link);
    if (ahead > 0) {
        s->state = S_PARKED;
        t->parked[ahead] = s;
        return;
    }
    s->state = S_BODY;
    t->cur = s;
    if (t->reading)
        kick_resume(t);
}

static void on_head(sconn *s, const tt_http_head *h);

/* Parses on with the bytes that came since the last call, so a head sent a
 * byte at a time costs each byte once. A decided head is taken out of S
 * before it is acted on: acting on it may start the next request's parse. */
static void on_request(sconn *s)
{
    const char *why = NULL;
    if (!s->head_live) {
        tt_http_head_init(&s->head, true);
        s->head_live = true;
    }
    int rc = tt_http_head_parse(&s->head, s->buf, s->have, &why);
    if (rc == 0)
        return;
    tt_http_head h = s->head;
    s->head_live = false;
    if (rc < 0)
        to_web(s, why);
    else
        on_head(s, &h);
    tt_http_head_free(&h);
}

static void on_head(sconn *s, const tt_http_head *h)
{
    const char *why = NULL;
    tt_http_str cookies[TT_HTS_COOKIES_MAX];
    size_t n = 0;
    int kind = tt_hts_server_check(h, s->c->w.cfg.url.path, cookies, &n);
    if (kind == 0) {
        to_web(s, "not the tunnel's path or method");
        return;
    }
    tt_hts_token tok;
    why = find_token(s, cookies, n, kind, &tok);
    if (why != NULL) {
        to_web(s, why);
        return;
    }
    if (kind == TT_HTS_GET)
        open_tunnel(s, h, &tok);
    else
        take_post(s, h, &tok);
}

static void sconn_process(sconn *s)
{
    switch (s->state) {
    case S_HEAD:
        on_request(s);
        break;
    case S_DISCARD: {
        size_t n = s->have < s->left ? s->have : (size_t)s->left;
        consume(s, n);
        s->left -= n;
        if (s->left == 0)
            body_done(s);
        break;
    }
    case S_BODY:
        feed_body(s);
        break;
    case S_PARKED:
        break;
    }
}

static void sconn_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    sconn *s = ud;
    if (s->state == S_BODY && s->have == 0 && s->t != NULL && !stun_stopped(s->t)) {
        /* The common case: body bytes go on where they lie. */
        size_t n = len < s->left ? len : (size_t)s->left;
        s->left -= n;
        tt_http_stun *t = s->t;
        t->base.handler->on_data(&t->base, t->base.ud, data, n);
        if (s->closed)
            return;
        data += n;
        len -= n;
        if (len == 0 && s->left > 0)
            return;
    }
    /* A body that ended with the read leaves nothing to keep; a realloc to
     * zero bytes would free the buffer (and look like a failure). */
    if (len > 0) {
        uint8_t *b = realloc(s->buf, s->have + len);
        if (b == NULL) {
            if (s->t)
                stun_fail(s->t, UV_ENOMEM, NULL);
            detach(s);
            sconn_close(s, false);
            return;
        }
        s->buf = b;
        memcpy(s->buf + s->have, data, len);
        s->have += len;
    }
    if (s->state == S_BODY && s->t && stun_stopped(s->t)) {
        tt_link_read_stop(l);
        return;
    }
    sconn_process(s);
}

static void sconn_gone(sconn *s, int err)
{
    tt_http_stun *t = s->t;
    bool mid = s->state == S_BODY || s->state == S_PARKED;
    detach(s);
    if (s->state == S_HEAD && s->have > 0 && err == UV_EOF) {
        tt_info("c%llu %s: not a tt client (closed during the request)",
                (unsigned long long)s->link->id, s->peer);
        tt_tls_link_close_quietly(s->link);
    }
    sconn_close(s, false);
    if (t && mid)
        stun_fail(t, err == UV_EOF ? UV_ECONNRESET : err, "a POST was cut");
}

static void sconn_eof(tt_link *l, void *ud)
{
    (void)l;
    sconn_gone(ud, UV_EOF);
}

static void sconn_error(tt_link *l, void *ud, int err)
{
    (void)l;
    sconn_gone(ud, err);
}

static const tt_link_handler sconn_handler = {sconn_data, sconn_eof, sconn_error, NULL};

static void on_conn(tt_webbase *w, tt_link *link, uint64_t deadline)
{
    tt_http_carrier *c = (tt_http_carrier *)w;
    sconn *s = calloc(1, sizeof *s);
    if (s == NULL) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    s->c = c;
    s->link = link;
    s->deadline = deadline;
    tt_link_peer(link, s->peer, sizeof s->peer);
    uv_timer_init(w->base.loop, &s->timer);
    s->timer.data = s;
    tt_child_add(&w->children, &s->child, sconn_child_close, s);
    s->is_child = true;
    uint64_t now = uv_now(w->base.loop);
    uv_timer_start(&s->timer, on_sconn_timeout, deadline > now ? deadline - now : 0, 0);
    tt_link_set_handler(link, &sconn_handler, s);
    if (tt_link_read_start(link) < 0)
        sconn_close(s, false);
}

int tt_http_server_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb,
                       void *ud, tt_carrier **out, const char **why)
{
    tt_http_carrier *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    const tt_carrier_type *ops = tt_http_type_for(cfg);
    c->w.accept_cb = cb;
    c->w.accept_ud = ud;
    tt_replay_init(&c->replay, REPLAY_CAP, 2 * (uint64_t)cfg->replay_window_s + 1);
    int rc = tt_webbase_init(&c->w, loop, ops, cfg, true, strcmp(cfg->url.scheme, "https") == 0,
                             "tt-http1 auth", why);
    if (rc == 0 && c->w.has_key)
        uv_sleep((unsigned)tt_replay_begin(&c->replay, tt_webbase_now_ms(&c->w)));
    if (rc == 0)
        rc = tt_webbase_listen(&c->w, on_conn, why);
    if (rc != 0) {
        tt_webbase_free(&c->w);
        tt_replay_free(&c->replay);
        free(c);
        return rc;
    }
    *out = &c->w.base;
    return 0;
}
