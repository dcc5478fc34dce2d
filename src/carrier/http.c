/* The HTTP streaming carriers, http:// and https://: the type and the
 * client (docs/HTTP.md). For front ends and CDNs that pass ordinary HTTP
 * requests but no WebSocket, the idea of Xray's XHTTP: a dial opens one
 * long GET whose response body streams the server's bytes, and the
 * client's bytes follow in POSTs of bounded length, numbered, each on one
 * of a few keep-alive connections. The server (httpsrv.c) puts them back
 * in order. The result is one tt_link, so the stream layer, the mux and
 * the session layer (--resume) run over it unchanged.
 *
 * The client link:
 * - Reading: the GET's body (chunked, or ending with the connection) holds
 *   records (codec/hts.h); their data is handed on where it lies. Input
 *   kept while the owner does not read is stashed: first bytes already
 *   taken out of the chunked framing, then raw bytes.
 * - Writing: bytes are queued (one copy) and cut into POSTs of at most
 *   TT_HTTP_POST_MAX bytes whenever a connection is free; at most
 *   TT_HTTP_POSTS are unanswered. pending() is the queue plus what the
 *   connections have not sent, so the owner's backpressure works.
 * - shutdown: the last POST carries FIN (an empty one if nothing waits).
 * - close waits for the answers to POSTs still in flight (at most
 *   LINGER_MS), so that a front end does not drop the last bytes when the
 *   client's connection goes away; abort resets everything. */
#include "carrier/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/carrier.h"
#include "codec/http1.h"
#include "codec/wshs.h"
#include "core/crypto.h"
#include "core/log.h"
#include "link/tls.h"

extern const tt_carrier_type tt_carrier_http;
extern const tt_carrier_type tt_carrier_https;

#define LINGER_MS 10000
/* An idle POST connection is closed after this long: well before the idle
 * timeouts of front ends (nginx: keepalive_timeout 75 s) and tt's server,
 * so that a POST never races a front end closing its connection. */
#define POST_IDLE_MS 20000

enum pstate { P_NONE = 0, P_CONNECTING, P_IDLE, P_BUSY, P_DEAD };

typedef struct hcl hcl;

/* One connection for POSTs. */
typedef struct pconn {
    hcl *t;
    enum pstate state;
    tt_webbase_connect *conn;
    tt_link *link;
    uint8_t *head; /* the answer's head while it comes */
    size_t have;
    bool in_body;
    bool chunked;
    bool close_after; /* the answer said Connection: close, or has no length */
    uint64_t body_left;
    tt_http_chunked ck;
    uint64_t idle_since; /* loop time it became idle */
} pconn;

struct hcl {
    tt_link base;
    tt_http_carrier *c;
    /* Dialing. */
    tt_carrier_dial_cb dial_cb;
    void *dial_ud;
    bool dialing;
    tt_webbase_connect *dconn;
    /* The GET. */
    tt_link *down;
    uint8_t *dhead;
    size_t dhave;
    bool chunked;
    tt_http_chunked ck;
    tt_hts_rec rec;
    uint8_t *in; /* kept input: IN_DEC bytes out of the chunked framing, then raw ones */
    size_t in_len, in_dec;
    bool down_eof; /* the connection ended (after the kept input) */
    /* The POSTs. */
    uint8_t id[TT_HTS_ID_LEN];
    uint32_t seq;
    uint8_t *q; /* queued bytes: Q[QOFF..QOFF+QLEN) */
    size_t qoff, qlen, qcap;
    bool fin_wanted, fin_sent;
    pconn p[TT_HTTP_POSTS];
    bool was_pending;
    /* State. */
    bool reading, eof_pending, eof_rcvd, failed, closing, finished, aborting;
    uv_timer_t resume; /* delivers kept input from the loop; the dial's and the close's deadline */
    uv_timer_t timer;
    int outstanding;
    tt_link_close_cb close_cb;
    void *close_ud;
};

static void kick(hcl *t);
static void finish(hcl *t);
static void on_post_connected(void *ud, int status, tt_link *link, const char *why);

/* --- the type ----------------------------------------------------------- */

const tt_carrier_type *tt_http_type_for(const tt_carrier_cfg *cfg)
{
    return strcmp(cfg->url.scheme, "https") == 0 ? &tt_carrier_https : &tt_carrier_http;
}

static int http_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                           const char **why)
{
    tt_http_carrier *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    const tt_carrier_type *ops = tt_http_type_for(cfg);
    bool tls = ops == &tt_carrier_https;
    int rc = tt_webbase_init(&c->w, loop, ops, cfg, false, tls, "tt-http1 auth", why);
    if (rc != 0) {
        tt_webbase_free(&c->w);
        free(c);
        return rc;
    }
    const char *host = cfg->tls_name ? cfg->tls_name : cfg->url.hp.host;
    bool v6 = strchr(host, ':') != NULL;
    unsigned dflt = tls ? 443 : 80;
    if (cfg->url.hp.port == dflt)
        snprintf(c->host_header, sizeof c->host_header, v6 ? "[%s]" : "%s", host);
    else
        snprintf(c->host_header, sizeof c->host_header, v6 ? "[%s]:%u" : "%s:%u", host,
                 cfg->url.hp.port);
    snprintf(c->origin, sizeof c->origin, "%s://%s", tls ? "https" : "http", c->host_header);
    c->cookie_name = tt_ws_cookie_name(c->w.auth);
    *out = &c->w.base;
    return 0;
}

/* The Cookie value for a request of KIND, SEQ and FLAGS into OUT, or an
 * empty text without a key. Returns 0 or -EIO. */
static int make_cookie(hcl *t, uint8_t kind, uint32_t seq, uint8_t flags, char *out, size_t cap)
{
    tt_http_carrier *c = t->c;
    /* Without a key the token is made under the all-zero key: it still
     * carries the tunnel's id and the POST's number. */
    tt_hts_token tok = {.time = tt_webbase_now(&c->w), .seq = seq, .kind = kind, .flags = flags};
    uint8_t rnd[TT_HTS_NONCE_LEN + 1 + TT_HTS_PAD_MAX];
    tt_random(rnd, sizeof rnd);
    memcpy(tok.nonce, rnd, TT_HTS_NONCE_LEN);
    memcpy(tok.id, t->id, TT_HTS_ID_LEN);
    char text[TT_HTS_TOKEN_MAX + 1];
    if (tt_hts_token_make(c->w.auth, &tok, rnd + TT_HTS_NONCE_LEN + 1,
                          rnd[TT_HTS_NONCE_LEN] % (TT_HTS_PAD_MAX + 1), c->w.cfg.url.path,
                          text) < 0)
        return -EIO;
    snprintf(out, cap, "%s=%s", c->cookie_name, text);
    return 0;
}

/* --- ending ------------------------------------------------------------- */

static void release(void *ud)
{
    hcl *t = ud;
    if (--t->outstanding > 0)
        return;
    free(t->in);
    free(t->q);
    free(t->dhead);
    for (int i = 0; i < TT_HTTP_POSTS; i++)
        free(t->p[i].head);
    tt_link_close_cb cb = t->close_cb;
    void *cud = t->close_ud;
    bool dialing = t->dialing;
    tt_carrier_dial_cb dcb = t->dial_cb;
    void *dud = t->dial_ud;
    free(t);
    if (dialing)
        dcb(dud, UV_ECANCELED, NULL);
    if (cb)
        cb(cud);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

static void pconn_drop(pconn *p, bool abort)
{
    hcl *t = p->t;
    if (p->link) {
        tt_link *l = p->link;
        p->link = NULL;
        t->outstanding++;
        if (abort)
            tt_link_abort(l, release, t);
        else
            tt_link_close(l, release, t);
    }
    p->state = P_DEAD;
}

/* Closes every connection and timer; the memory goes when all have called
 * back. */
static void finish(hcl *t)
{
    if (t->finished)
        return;
    t->finished = true;
    if (t->dconn) {
        /* Its callback (UV_ECANCELED) releases. */
        t->outstanding++;
        tt_webbase_connect_cancel(t->dconn);
        t->dconn = NULL;
    }
    if (t->down) {
        t->outstanding++;
        if (t->aborting)
            tt_link_abort(t->down, release, t);
        else
            tt_link_close(t->down, release, t);
        t->down = NULL;
    }
    for (int i = 0; i < TT_HTTP_POSTS; i++) {
        pconn *p = &t->p[i];
        if (p->state == P_CONNECTING) {
            t->outstanding++;
            p->state = P_DEAD;
            tt_webbase_connect_cancel(p->conn);
        } else {
            pconn_drop(p, t->aborting);
        }
    }
    uv_close((uv_handle_t *)&t->resume, on_handle_closed);
    uv_close((uv_handle_t *)&t->timer, on_handle_closed);
}

/* Reports a fatal error once. */
static void fail(hcl *t, int err, const char *why)
{
    if (t->failed || t->closing)
        return;
    t->failed = true;
    if (why)
        tt_debug("c%llu: %s:// tunnel: %s", (unsigned long long)t->base.id, t->c->w.cfg.url.scheme,
                 why);
    if (t->down)
        tt_link_read_stop(t->down);
    if (t->dialing) {
        t->dialing = false;
        tt_info("cannot reach the %s:// server %s: %s", t->c->w.cfg.url.scheme,
                t->c->w.cfg.url.hp.host, why ? why : uv_strerror(err));
        tt_carrier_dial_cb cb = t->dial_cb;
        void *ud = t->dial_ud;
        t->closing = true;
        finish(t);
        cb(ud, err, NULL);
        return;
    }
    t->base.handler->on_error(&t->base, t->base.ud, err);
}

/* While closing: done once no POST waits for its answer. */
static void maybe_finish(hcl *t)
{
    if (!t->closing || t->finished)
        return;
    for (int i = 0; i < TT_HTTP_POSTS; i++) {
        if (t->p[i].state == P_BUSY)
            return;
    }
    finish(t);
}

/* --- reading the stream ------------------------------------------------- */

static bool stopped(hcl *t)
{
    return t->closing || t->failed || !t->reading;
}

static void keep(hcl *t, const uint8_t *data, size_t len, bool decoded)
{
    uint8_t *p = realloc(t->in, t->in_len + len);
    if (p == NULL) {
        fail(t, UV_ENOMEM, NULL);
        return;
    }
    if (decoded) {
        /* Decoded bytes go in front of raw ones kept before (none: a
         * stop ends the pass over the input). */
        memmove(p + len, p, t->in_len);
        memcpy(p, data, len);
        t->in_dec += len;
    } else {
        memcpy(p + t->in_len, data, len);
    }
    t->in = p;
    t->in_len += len;
}

static void deliver_eof(hcl *t)
{
    if (stopped(t))
        return;
    t->eof_pending = false;
    t->base.handler->on_eof(&t->base, t->base.ud);
}

/* Takes stream bytes out of the records in P (LEN, out of the HTTP
 * framing). Returns the bytes consumed: fewer than LEN when the owner
 * stopped reading. */
static size_t records(hcl *t, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len && !stopped(t) && !t->eof_pending) {
        size_t used = 0;
        tt_http_str d;
        const char *why = NULL;
        int rc = tt_hts_rec_read(&t->rec, p + off, len - off, &used, &d, &why);
        off += used;
        if (rc < 0) {
            fail(t, UV_EPROTO, why);
            return len;
        }
        if (rc == 1) {
            t->base.handler->on_data(&t->base, t->base.ud, (const uint8_t *)d.p, d.len);
        } else if (rc == 2) {
            t->eof_rcvd = true;
            t->eof_pending = true;
            deliver_eof(t);
        }
    }
    return off;
}

/* The GET's body ended (the last chunk, or the connection's end). */
static void body_ended(hcl *t)
{
    if (!t->rec.ended)
        fail(t, UV_ECONNRESET, "the stream was cut (no end record)");
}

/* Processes raw body bytes. */
static void process(hcl *t, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && !t->failed && !t->closing) {
        if (stopped(t) || t->eof_pending) {
            keep(t, data + off, len - off, false);
            return;
        }
        if (!t->chunked) {
            off += records(t, data + off, len - off);
            continue;
        }
        size_t used = 0;
        tt_http_str d = {NULL, 0};
        const char *why = NULL;
        int rc = tt_http_chunked_read(&t->ck, data + off, len - off, &used, &d, &why);
        off += used;
        if (rc < 0) {
            fail(t, UV_EPROTO, why);
            return;
        }
        if (rc == 2) {
            size_t n = records(t, (const uint8_t *)d.p, d.len);
            if (n < d.len && !t->failed && !t->closing) {
                keep(t, (const uint8_t *)d.p + n, d.len - n, true);
                if (off < len)
                    keep(t, data + off, len - off, false);
                return;
            }
        } else if (rc == 1) {
            body_ended(t);
            return;
        }
    }
}

static void down_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    process(ud, data, len);
}

static void down_ended(hcl *t)
{
    if (t->failed || t->closing)
        return;
    if (!t->rec.ended)
        fail(t, UV_ECONNRESET, "the stream's connection ended before the stream");
}

static void down_eof(tt_link *l, void *ud)
{
    (void)l;
    hcl *t = ud;
    t->down_eof = true;
    if (t->in_len == 0 && !t->eof_pending)
        down_ended(t);
}

static void down_error(tt_link *l, void *ud, int err)
{
    (void)l;
    hcl *t = ud;
    if (t->rec.ended) {
        t->down_eof = true;
        return;
    }
    fail(t, err, "the stream's connection failed");
}

static void maybe_drained(hcl *t);

static void down_drained(tt_link *l, void *ud)
{
    (void)l;
    maybe_drained(ud);
}

static const tt_link_handler down_handler = {down_data, down_eof, down_error, down_drained};

static void on_resume(uv_timer_t *timer)
{
    hcl *t = timer->data;
    if (stopped(t))
        return;
    if (t->eof_pending) {
        deliver_eof(t);
        if (stopped(t))
            return;
    }
    if (t->in_len > 0) {
        uint8_t *in = t->in;
        size_t n = t->in_len, dec = t->in_dec;
        t->in = NULL;
        t->in_len = t->in_dec = 0;
        size_t used = records(t, in, dec);
        if (used < dec && !t->failed && !t->closing) {
            keep(t, in + used, n - used, false);
            t->in_dec = dec - used;
            free(in);
            return;
        }
        process(t, in + dec, n - dec);
        free(in);
        if (stopped(t) || t->in_len > 0)
            return;
    }
    if (t->down_eof)
        down_ended(t);
    else if (t->down && tt_link_read_start(t->down) < 0)
        fail(t, UV_EIO, NULL);
}

/* --- writing: POSTs ----------------------------------------------------- */

static size_t hcl_pending(const tt_link *l)
{
    const hcl *t = (const hcl *)l;
    if (t->finished)
        return 0;
    size_t n = t->qlen;
    for (int i = 0; i < TT_HTTP_POSTS; i++) {
        if (t->p[i].link)
            n += tt_link_pending(t->p[i].link);
    }
    return n;
}

static void maybe_drained(hcl *t)
{
    if (t->closing || t->failed || !t->was_pending || hcl_pending(&t->base) > 0)
        return;
    t->was_pending = false;
    if (t->base.handler->on_drained)
        t->base.handler->on_drained(&t->base, t->base.ud);
}

static void on_idle_timer(uv_timer_t *timer);

/* Runs the idle check while a connection is idle (the timer serves the
 * dial's deadline before, and the close's linger after). */
static void arm_idle(hcl *t)
{
    if (!t->closing && !t->dialing && !t->finished && !uv_is_active((uv_handle_t *)&t->timer))
        uv_timer_start(&t->timer, on_idle_timer, POST_IDLE_MS, 0);
}

static void set_idle(pconn *p)
{
    p->state = P_IDLE;
    p->idle_since = uv_now(p->t->base.loop);
    arm_idle(p->t);
}

static void on_idle_timer(uv_timer_t *timer)
{
    hcl *t = timer->data;
    uint64_t now = uv_now(t->base.loop), next = 0;
    for (int i = 0; i < TT_HTTP_POSTS; i++) {
        pconn *p = &t->p[i];
        if (p->state != P_IDLE)
            continue;
        uint64_t age = now - p->idle_since;
        if (age >= POST_IDLE_MS)
            pconn_drop(p, false);
        else if (next == 0 || POST_IDLE_MS - age < next)
            next = POST_IDLE_MS - age;
    }
    if (next > 0)
        uv_timer_start(&t->timer, on_idle_timer, next, 0);
}

/* The answer to a POST is complete: the connection is free again. */
static void post_answered(pconn *p)
{
    hcl *t = p->t;
    free(p->head);
    p->head = NULL;
    p->have = 0;
    p->in_body = false;
    if (p->close_after)
        pconn_drop(p, false);
    else
        set_idle(p);
    if (t->closing) {
        maybe_finish(t);
        return;
    }
    kick(t);
}

static void post_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    pconn *p = ud;
    hcl *t = p->t;
    size_t off = 0;
    while (off < len) {
        if (p->state != P_BUSY) {
            /* Nothing is expected on an idle connection. */
            pconn_drop(p, false);
            return;
        }
        if (!p->in_body) {
            size_t room = TT_HTTP_HEAD_MAX - p->have;
            size_t take = len - off < room ? len - off : room;
            memcpy(p->head + p->have, data + off, take);
            p->have += take;
            tt_http_head h;
            const char *why = NULL;
            int rc = tt_http_parse_response(p->head, p->have, &h, &why);
            if (rc == 0) {
                tt_http_head_free(&h);
                return;
            }
            if (rc < 0 || h.status != 200) {
                tt_http_head_free(&h);
                char msg[120];
                snprintf(msg, sizeof msg, "a POST was answered %s %d", rc < 0 ? why : "HTTP",
                         h.status);
                if (!t->closing)
                    tt_info("c%llu: %s:// tunnel: %s", (unsigned long long)t->base.id,
                            t->c->w.cfg.url.scheme, msg);
                pconn_drop(p, false);
                if (t->closing)
                    maybe_finish(t);
                else
                    fail(t, UV_EPROTO, NULL);
                return;
            }
            off += h.head_len - (p->have - take);
            uint64_t cl = 0;
            enum tt_http_te te = tt_http_transfer_encoding(&h);
            p->chunked = te == TT_HTTP_TE_CHUNKED;
            p->close_after = h.minor == 0 || tt_http_header_has(&h, "Connection", "close");
            if (!p->chunked && tt_http_content_length(&h, &cl, &why) != 1)
                p->close_after = true;
            p->body_left = cl;
            tt_http_head_free(&h);
            tt_http_chunked_init(&p->ck);
            p->in_body = true;
        }
        if (p->chunked) {
            size_t used = 0;
            const char *why = NULL;
            int rc = tt_http_chunked_feed(&p->ck, data + off, len - off, &used, &why);
            off += used;
            if (rc < 0) {
                p->close_after = true;
                rc = 1;
            }
            if (rc == 1)
                post_answered(p);
        } else {
            size_t n = len - off < p->body_left ? len - off : (size_t)p->body_left;
            off += n;
            p->body_left -= n;
            if (p->body_left == 0)
                post_answered(p);
        }
    }
}

static void post_lost(pconn *p, int err)
{
    hcl *t = p->t;
    bool busy = p->state == P_BUSY;
    pconn_drop(p, false);
    if (t->closing) {
        maybe_finish(t);
        return;
    }
    if (busy)
        fail(t, err, "a POST's connection ended before its answer");
    else
        kick(t);
}

static void post_eof(tt_link *l, void *ud)
{
    (void)l;
    post_lost(ud, UV_ECONNRESET);
}

static void post_error(tt_link *l, void *ud, int err)
{
    (void)l;
    post_lost(ud, err);
}

static void post_drained(tt_link *l, void *ud)
{
    (void)l;
    pconn *p = ud;
    maybe_drained(p->t);
}

static const tt_link_handler post_handler = {post_data, post_eof, post_error, post_drained};

/* Sends the next POST on P: up to TT_HTTP_POST_MAX queued bytes, with FIN
 * when they are the last. */
static void send_post(hcl *t, pconn *p)
{
    size_t n = t->qlen < TT_HTTP_POST_MAX ? t->qlen : TT_HTTP_POST_MAX;
    bool fin = t->fin_wanted && n == t->qlen;
    char cookie[64 + TT_HTS_TOKEN_MAX];
    char head[2048];
    size_t hn = 0;
    if (make_cookie(t, TT_HTS_POST, t->seq, fin ? TT_HTS_FIN : 0, cookie, sizeof cookie) == 0)
        hn = tt_hts_post_head(head, sizeof head, t->c->host_header, t->c->origin,
                              t->c->w.cfg.url.path, cookie, n);
    p->head = malloc(TT_HTTP_HEAD_MAX);
    if (hn == 0 || p->head == NULL) {
        fail(t, UV_ENOMEM, "cannot build a POST");
        return;
    }
    uv_buf_t b[2] = {uv_buf_init(head, (unsigned)hn),
                     uv_buf_init((char *)t->q + t->qoff, (unsigned)n)};
    p->state = P_BUSY;
    p->have = 0;
    p->in_body = false;
    t->seq++;
    t->qoff += n;
    t->qlen -= n;
    if (t->qlen == 0)
        t->qoff = 0;
    if (fin)
        t->fin_sent = true;
    if (tt_link_write(p->link, b, n > 0 ? 2 : 1) != 0 || tt_link_read_start(p->link) != 0)
        fail(t, UV_EIO, "cannot send a POST");
}

/* Moves queued bytes into POSTs on free connections, opening connections
 * as needed. */
static void kick(hcl *t)
{
    if (t->closing || t->failed || t->dialing || t->finished)
        return;
    while (t->qlen > 0 || (t->fin_wanted && !t->fin_sent)) {
        pconn *idle = NULL, *spare = NULL;
        int connecting = 0;
        for (int i = 0; i < TT_HTTP_POSTS; i++) {
            pconn *p = &t->p[i];
            if (p->state == P_IDLE && idle == NULL)
                idle = p;
            else if ((p->state == P_NONE || p->state == P_DEAD) && spare == NULL)
                spare = p;
            else if (p->state == P_CONNECTING)
                connecting++;
        }
        if (idle == NULL) {
            if (spare != NULL && connecting == 0) {
                spare->t = t;
                spare->state = P_CONNECTING;
                if (tt_webbase_connect_start(&t->c->w, on_post_connected, spare, &spare->conn) !=
                    0) {
                    spare->state = P_DEAD;
                    fail(t, UV_ENOMEM, NULL);
                }
            }
            break;
        }
        send_post(t, idle);
        if (t->failed)
            return;
    }
    maybe_drained(t);
}

static void on_post_connected(void *ud, int status, tt_link *link, const char *why)
{
    pconn *p = ud;
    hcl *t = p->t;
    p->conn = NULL;
    if (t->finished) {
        /* Cancelled by finish, which counted this callback. */
        if (link)
            tt_link_close(link, NULL, NULL);
        release(t);
        return;
    }
    if (status == 0) {
        const char *h2why = NULL;
        int h2 = tt_webbase_need_h1(&t->c->w, link, "HTTP streaming", &h2why);
        if (h2 > 0) {
            if (tt_webbase_connect_start(&t->c->w, on_post_connected, p, &p->conn) == 0)
                return;
            status = UV_ENOMEM;
        } else if (h2 < 0) {
            status = UV_EPROTO;
            why = h2why;
        }
        link = h2 != 0 ? NULL : link;
    }
    if (status != 0) {
        p->state = P_DEAD;
        if (t->closing) {
            maybe_finish(t);
            return;
        }
        char msg[200];
        snprintf(msg, sizeof msg, "cannot connect for a POST: %s", why ? why : uv_strerror(status));
        fail(t, status, msg);
        return;
    }
    p->link = link;
    tt_link_set_handler(link, &post_handler, p);
    set_idle(p);
    if (t->closing) {
        maybe_finish(t);
        return;
    }
    kick(t);
}

static int hcl_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    hcl *t = (hcl *)l;
    if (t->closing || t->failed)
        return UV_EPIPE;
    if (t->fin_wanted)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (t->qoff + t->qlen + total > t->qcap) {
        if (t->qoff > 0) {
            memmove(t->q, t->q + t->qoff, t->qlen);
            t->qoff = 0;
        }
        if (t->qlen + total > t->qcap) {
            size_t cap = t->qcap ? t->qcap : 64 * 1024;
            while (cap < t->qlen + total)
                cap *= 2;
            uint8_t *q = realloc(t->q, cap);
            if (q == NULL)
                return UV_ENOMEM;
            t->q = q;
            t->qcap = cap;
        }
    }
    for (unsigned i = 0; i < nbufs; i++) {
        memcpy(t->q + t->qoff + t->qlen, bufs[i].base, bufs[i].len);
        t->qlen += bufs[i].len;
    }
    kick(t);
    if (hcl_pending(l) > 0)
        t->was_pending = true;
    else if (t->qlen == 0 && t->q != NULL && t->qcap > TT_HTTP_POST_MAX) {
        /* An idle tunnel holds no large buffer. */
        free(t->q);
        t->q = NULL;
        t->qcap = 0;
    }
    return 0;
}

static int hcl_shutdown(tt_link *l)
{
    hcl *t = (hcl *)l;
    if (t->closing || t->failed)
        return UV_EPIPE;
    if (t->fin_wanted)
        return 0;
    t->fin_wanted = true;
    kick(t);
    return 0;
}

static int hcl_read_start(tt_link *l)
{
    hcl *t = (hcl *)l;
    if (t->closing)
        return UV_EINVAL;
    if (t->reading)
        return 0;
    t->reading = true;
    if (t->failed)
        return 0;
    if (t->in_len > 0 || t->eof_pending || t->down_eof) {
        uv_timer_start(&t->resume, on_resume, 0, 0);
        return 0;
    }
    if (t->eof_rcvd)
        return 0;
    return tt_link_read_start(t->down);
}

static void hcl_read_stop(tt_link *l)
{
    hcl *t = (hcl *)l;
    t->reading = false;
    if (t->closing)
        return;
    uv_timer_stop(&t->resume);
    if (t->down)
        tt_link_read_stop(t->down);
}

static void on_linger_timeout(uv_timer_t *timer)
{
    finish(timer->data);
}

static void hcl_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    hcl *t = (hcl *)l;
    if (t->closing)
        return;
    t->closing = true;
    t->reading = false;
    t->close_cb = cb;
    t->close_ud = ud;
    t->aborting = abort;
    uv_timer_stop(&t->resume);
    if (t->down)
        tt_link_read_stop(t->down);
    if (abort || t->failed) {
        finish(t);
        return;
    }
    uv_timer_start(&t->timer, on_linger_timeout, LINGER_MS, 0);
    maybe_finish(t);
}

static void hcl_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    hcl_end(l, cb, ud, false);
}

static void hcl_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    hcl_end(l, cb, ud, true);
}

static const char *hcl_peer(tt_link *l, char *buf, size_t len)
{
    hcl *t = (hcl *)l;
    if (t->down)
        return tt_link_peer(t->down, buf, len);
    if (len > 0)
        buf[0] = '\0';
    return buf;
}

static const tt_link_ops hcl_ops = {
    .write = hcl_write,
    .read_start = hcl_read_start,
    .read_stop = hcl_read_stop,
    .shutdown = hcl_shutdown,
    .close = hcl_close,
    .pending = hcl_pending,
    .abort = hcl_abort,
    .peer = hcl_peer,
};

/* --- dialing: the GET --------------------------------------------------- */

static void get_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    hcl *t = ud;
    size_t room = TT_HTTP_HEAD_MAX - t->dhave;
    size_t take = len < room ? len : room;
    memcpy(t->dhead + t->dhave, data, take);
    t->dhave += take;
    tt_http_head h;
    const char *why = NULL;
    int rc = tt_http_parse_response(t->dhead, t->dhave, &h, &why);
    int status = h.status;
    size_t head_len = h.head_len;
    bool bad = rc == 1 && tt_hts_down_check(&h, &t->chunked, &why) != 0;
    tt_http_head_free(&h);
    if (rc == 0)
        return;
    if (rc < 0) {
        fail(t, UV_EPROTO, why);
        return;
    }
    if (bad) {
        char msg[240];
        snprintf(msg, sizeof msg, "HTTP %d: %s", status, why);
        fail(t, UV_EPROTO, msg);
        return;
    }
    size_t head_in_data = head_len - (t->dhave - take);
    free(t->dhead);
    t->dhead = NULL;
    uv_timer_stop(&t->timer);
    tt_link_read_stop(l);
    tt_link_set_handler(l, &down_handler, t);
    tt_http_chunked_init(&t->ck);
    tt_hts_rec_init(&t->rec);
    if (len > head_in_data)
        keep(t, data + head_in_data, len - head_in_data, false);
    t->dialing = false;
    t->dial_cb(t->dial_ud, 0, &t->base);
    /* The first POST's connection is ready when the first bytes come. */
    if (!t->closing && !t->failed) {
        kick(t);
        arm_idle(t);
    }
}

static void get_eof(tt_link *l, void *ud)
{
    (void)l;
    fail(ud, UV_EPROTO, "the server closed before answering the GET");
}

static void get_error(tt_link *l, void *ud, int err)
{
    (void)l;
    fail(ud, err, NULL);
}

static const tt_link_handler get_handler = {get_data, get_eof, get_error, NULL};

static void on_dial_timeout(uv_timer_t *timer)
{
    fail(timer->data, UV_ETIMEDOUT, "no answer to the GET");
}

static void on_get_connected(void *ud, int status, tt_link *link, const char *why)
{
    hcl *t = ud;
    t->dconn = NULL;
    if (t->finished) {
        if (link)
            tt_link_close(link, NULL, NULL);
        release(t);
        return;
    }
    if (status != 0) {
        fail(t, status, why);
        return;
    }
    const char *h2why = NULL;
    int h2 = tt_webbase_need_h1(&t->c->w, link, "HTTP streaming", &h2why);
    if (h2 > 0) {
        if (tt_webbase_connect_start(&t->c->w, on_get_connected, t, &t->dconn) != 0)
            fail(t, UV_ENOMEM, "cannot connect again");
        return;
    }
    if (h2 < 0) {
        fail(t, UV_EPROTO, h2why);
        return;
    }
    t->down = link;
    char cookie[64 + TT_HTS_TOKEN_MAX];
    char req[2048];
    size_t n = 0;
    if (make_cookie(t, TT_HTS_GET, 0, 0, cookie, sizeof cookie) == 0)
        n = tt_hts_get_request(req, sizeof req, t->c->host_header, t->c->w.cfg.url.path, cookie);
    t->dhead = malloc(TT_HTTP_HEAD_MAX);
    if (n == 0 || t->dhead == NULL) {
        fail(t, UV_ENOMEM, "cannot build the GET");
        return;
    }
    tt_link_set_handler(link, &get_handler, t);
    if (tt_link_write1(link, req, n) != 0 || tt_link_read_start(link) != 0) {
        fail(t, UV_EIO, NULL);
        return;
    }
    uv_timer_start(&t->timer, on_dial_timeout, t->c->w.cfg.handshake_timeout_ms, 0);
}

static int http_dial(tt_carrier *base, const tt_target *target, tt_carrier_dial_cb cb, void *ud,
                     tt_carrier_dial **out)
{
    (void)target; /* the target goes in the stream header */
    tt_http_carrier *c = (tt_http_carrier *)base;
    hcl *t = calloc(1, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    t->base.ops = &hcl_ops;
    t->base.loop = base->loop;
    t->base.id = tt_link_next_id();
    t->c = c;
    t->dial_cb = cb;
    t->dial_ud = ud;
    t->dialing = true;
    t->outstanding = 2; /* the two timers' closes; each connection's adds one */
    tt_random(t->id, sizeof t->id);
    for (int i = 0; i < TT_HTTP_POSTS; i++)
        t->p[i].t = t;
    int rc = tt_webbase_connect_start(&c->w, on_get_connected, t, &t->dconn);
    if (rc != 0) {
        free(t);
        return rc;
    }
    uv_timer_init(base->loop, &t->resume);
    uv_timer_init(base->loop, &t->timer);
    t->resume.data = t;
    t->timer.data = t;
    /* The first POST's connection is made while the GET is answered, so
     * that the first bytes up wait for no connect. */
    t->p[0].state = P_CONNECTING;
    if (tt_webbase_connect_start(&c->w, on_post_connected, &t->p[0], &t->p[0].conn) != 0)
        t->p[0].state = P_NONE;
    if (out)
        *out = (tt_carrier_dial *)t;
    return 0;
}

static void http_dial_cancel(tt_carrier_dial *d)
{
    hcl *t = (hcl *)d;
    if (t->closing || !t->dialing)
        return;
    /* release reports the cancel once everything has closed. */
    t->closing = true;
    finish(t);
}

static const char *http_describe(tt_carrier *base, char *buf, size_t len)
{
    return tt_webbase_describe((tt_webbase *)base, buf, len);
}

static void http_close(tt_carrier *base)
{
    tt_http_carrier *c = (tt_http_carrier *)base;
    tt_http_server_forget(c);
    tt_webbase_free(&c->w);
    tt_replay_free(&c->replay);
    free(c);
}

static const tt_carrier_optgroup *const http_groups[] = {
    &tt_carrier_key_opts,
    &tt_carrier_replay_opts,
    &tt_carrier_decoy_opts,
    &tt_carrier_www_opts,
    NULL,
};

static const tt_carrier_optgroup *const https_groups[] = {
    &tt_carrier_key_opts,        &tt_carrier_replay_opts,
    &tt_carrier_decoy_opts,      &tt_carrier_www_opts,
    &tt_carrier_tls_opts,        &tt_carrier_tls_server_opts,
    &tt_carrier_tls_client_opts, NULL,
};

const tt_carrier_type tt_carrier_http = {
    .scheme = "http",
    .url_form = "http://HOST[:PORT]/PATH",
    .summary = "HTTP streaming: a long GET down, POSTs up (behind a TLS-terminating proxy or "
               "CDN without WebSocket)",
    .default_port = 80,
    .flags = TT_CARRIER_KEY_GUARDS | TT_CARRIER_PATH,
    .groups = http_groups,
    .client_new = http_client_new,
    .server_new = tt_http_server_new,
    .dial = http_dial,
    .dial_cancel = http_dial_cancel,
    .describe = http_describe,
    .close = http_close,
};

const tt_carrier_type tt_carrier_https = {
    .scheme = "https",
    .url_form = "https://HOST[:PORT]/PATH",
    .summary = "HTTP streaming inside TLS, for front ends and CDNs that do not pass WebSocket",
    .default_port = 443,
    .flags = TT_CARRIER_KEY_GUARDS | TT_CARRIER_PATH,
    .groups = https_groups,
    .client_new = http_client_new,
    .server_new = tt_http_server_new,
    .dial = http_dial,
    .dial_cancel = http_dial_cancel,
    .describe = http_describe,
    .close = http_close,
};
