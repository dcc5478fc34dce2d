/* The WebSocket carriers, ws:// and wss:// (WebSocket inside TLS): streams
 * in WebSocket binary messages after an HTTP/1.1 upgrade on the URL's path,
 * so that they pass through nginx, Apache or a CDN as mos-tls-tunnel's do.
 *
 * The client's upgrade is a browser's (codec/wshs.h). With -k it carries a
 * token in a session cookie (a nonce, the masked time and an HMAC under a
 * key derived from -k, padded to a random length) that the server checks
 * against its clock window and a memory of seen nonces. A request that is not a valid
 * upgrade for us (another path, no upgrade, a missing, wrong or replayed
 * token) gets what the web site answers (--fallback or --www), so knowing
 * the path alone gets nothing but a web page. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/carrier.h"
#include "carrier/children.h"
#include "carrier/webbase.h"
#include "codec/http1.h"
#include "codec/wshs.h"
#include "core/crypto.h"
#include "core/log.h"
#include "core/replay.h"
#include "decoy/decoy.h"
#include "link/tls.h"
#include "link/ws.h"

extern const tt_carrier_type tt_carrier_ws;
extern const tt_carrier_type tt_carrier_wss;

#define REPLAY_CAP (1u << 16)
#define SERVER_NAME "nginx"

typedef struct wsc {
    tt_webbase w; /* first: the carrier is a tt_webbase */
    tt_replay replay;
    char host_header[300]; /* client */
    char origin[310];      /* client: the page the upgrade claims to come from */
} wsc;

static const tt_carrier_type *ops_for(const tt_carrier_cfg *cfg)
{
    return strcmp(cfg->url.scheme, "wss") == 0 ? &tt_carrier_wss : &tt_carrier_ws;
}

static int ws_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                         const char **why)
{
    wsc *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    const tt_carrier_type *ops = ops_for(cfg);
    int rc =
        tt_webbase_init(&c->w, loop, ops, cfg, false, ops == &tt_carrier_wss, "tt-ws1 auth", why);
    if (rc != 0) {
        tt_webbase_free(&c->w);
        free(c);
        return rc;
    }
    /* Host names the site as the browser would: the TLS name when one was
     * given (a CDN's domain in front of an address), with the port only
     * when it is not the scheme's. */
    const char *host = cfg->tls_name ? cfg->tls_name : cfg->url.hp.host;
    bool v6 = strchr(host, ':') != NULL;
    unsigned dflt = ops == &tt_carrier_wss ? 443 : 80;
    if (cfg->url.hp.port == dflt)
        snprintf(c->host_header, sizeof c->host_header, v6 ? "[%s]" : "%s", host);
    else
        snprintf(c->host_header, sizeof c->host_header, v6 ? "[%s]:%u" : "%s:%u", host,
                 cfg->url.hp.port);
    /* A browser's WebSocket carries its page's origin: the same site. */
    snprintf(c->origin, sizeof c->origin, "%s://%s", ops == &tt_carrier_wss ? "https" : "http",
             c->host_header);
    *out = &c->w.base;
    return 0;
}

/* Client dial: connect, upgrade, wrap. */

struct tt_carrier_dial {
    wsc *c;
    tt_webbase_connect *conn;
    tt_link *link; /* during the upgrade */
    uv_timer_t timer;
    uint8_t key[TT_WS_KEY_LEN];
    uint8_t *buf; /* the answer's head */
    size_t have;
    tt_http_head resp; /* its parse so far */
    bool cancelled;
    tt_carrier_dial_cb cb;
    void *ud;
};

static void dial_timer_closed(uv_handle_t *h)
{
    tt_carrier_dial *d = h->data;
    tt_http_head_free(&d->resp);
    free(d->buf);
    free(d);
}

/* Reports and frees D; LINK (may be NULL) goes to the callback. */
static void dial_done(tt_carrier_dial *d, int status, tt_link *link, const char *why)
{
    if (status != 0 && status != UV_ECANCELED)
        tt_info("cannot reach the %s:// server %s: %s", d->c->w.cfg.url.scheme,
                d->c->w.cfg.url.hp.host, why ? why : uv_strerror(status));
    d->cb(d->ud, status, link);
    uv_close((uv_handle_t *)&d->timer, dial_timer_closed);
}

static void dial_fail(tt_carrier_dial *d, int status, const char *why)
{
    tt_link *l = d->link;
    d->link = NULL;
    if (l)
        tt_link_close(l, NULL, NULL);
    dial_done(d, status, NULL, why);
}

static void up_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    tt_carrier_dial *d = ud;
    size_t room = TT_HTTP_RESPONSE_MAX - d->have;
    size_t take = len < room ? len : room;
    memcpy(d->buf + d->have, data, take);
    d->have += take;
    tt_http_head *h = &d->resp;
    const char *why = NULL;
    int rc = tt_http_head_parse(h, d->buf, d->have, &why);
    if (rc == 0)
        return;
    if (rc < 0) {
        dial_fail(d, UV_EPROTO, why);
        return;
    }
    if (tt_ws_client_check(h, d->key, &why) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "the upgrade was refused (HTTP %d: %s)", h->status, why);
        dial_fail(d, UV_EPROTO, msg);
        return;
    }
    /* The bytes after the head are the server's first frames. */
    size_t head_in_data = h->head_len - (d->have - take);
    tt_link_read_stop(l);
    d->link = NULL;
    tt_link *ws = tt_ws_link_new(l, true, data + head_in_data, len - head_in_data, NULL);
    if (ws == NULL)
        dial_done(d, UV_ENOMEM, NULL, "out of memory");
    else
        dial_done(d, 0, ws, NULL);
}

static void up_eof(tt_link *l, void *ud)
{
    (void)l;
    dial_fail(ud, UV_EPROTO, "the server closed during the upgrade");
}

static void up_error(tt_link *l, void *ud, int err)
{
    (void)l;
    dial_fail(ud, err, NULL);
}

static const tt_link_handler up_handler = {up_data, up_eof, up_error, NULL};

static void on_up_timeout(uv_timer_t *t)
{
    dial_fail(t->data, UV_ETIMEDOUT, "no answer to the upgrade");
}

static void on_cancel_closed(void *ud)
{
    dial_done(ud, UV_ECANCELED, NULL, NULL);
}

static void on_connected(void *ud, int status, tt_link *link, const char *why)
{
    tt_carrier_dial *d = ud;
    d->conn = NULL;
    if (status != 0) {
        dial_done(d, status, NULL, why);
        return;
    }
    wsc *c = d->c;
    d->link = link;
    const char *h2why = NULL;
    int h2 = tt_webbase_need_h1(&c->w, link, "the WebSocket upgrade", &h2why);
    if (h2 != 0) {
        d->link = NULL;
        int rc = h2 < 0 ? h2 : tt_webbase_connect_start(&c->w, on_connected, d, &d->conn);
        if (rc != 0)
            dial_done(d, h2 < 0 ? UV_EPROTO : rc, NULL, h2 < 0 ? h2why : "cannot connect again");
        return;
    }
    /* The token is a session cookie's value; its length varies with the
     * padding, as session values of different sites and frameworks do. */
    char cookie[32 + TT_WS_TOKEN_MAX + 1];
    if (c->w.has_key) {
        uint8_t rnd[TT_WS_NONCE_LEN + 1 + TT_WS_PAD_MAX];
        tt_random(rnd, sizeof rnd);
        const char *name = tt_ws_cookie_name(c->w.auth);
        size_t off = strlen(name) + 1;
        snprintf(cookie, sizeof cookie, "%s=", name);
        if (tt_ws_token_make(c->w.auth, tt_webbase_now(&c->w), rnd, rnd + TT_WS_NONCE_LEN + 1,
                             rnd[TT_WS_NONCE_LEN] % (TT_WS_PAD_MAX + 1), c->w.cfg.url.path,
                             cookie + off) < 0) {
            dial_fail(d, UV_EIO, "cannot make the token");
            return;
        }
    }
    tt_random(d->key, sizeof d->key);
    char req[2048];
    size_t n = tt_ws_client_request(req, sizeof req, c->host_header, c->origin, c->w.cfg.url.path,
                                    d->key, c->w.has_key ? cookie : NULL);
    d->buf = malloc(TT_HTTP_RESPONSE_MAX);
    tt_http_head_init(&d->resp, false);
    if (n == 0 || d->buf == NULL) {
        dial_fail(d, UV_ENOMEM, "cannot build the upgrade request");
        return;
    }
    tt_link_set_handler(link, &up_handler, d);
    if (tt_link_write1(link, req, n) != 0 || tt_link_read_start(link) != 0) {
        dial_fail(d, UV_EIO, NULL);
        return;
    }
    uv_timer_start(&d->timer, on_up_timeout, c->w.cfg.handshake_timeout_ms, 0);
}

static int ws_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                   tt_carrier_dial **out)
{
    (void)t; /* the target goes in the stream header */
    tt_carrier_dial *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->c = (wsc *)base;
    d->cb = cb;
    d->ud = ud;
    int rc = tt_webbase_connect_start(&d->c->w, on_connected, d, &d->conn);
    if (rc != 0) {
        free(d);
        return rc;
    }
    uv_timer_init(base->loop, &d->timer);
    d->timer.data = d;
    if (out)
        *out = d;
    return 0;
}

static void ws_dial_cancel(tt_carrier_dial *d)
{
    if (d->cancelled)
        return;
    d->cancelled = true;
    if (d->conn) {
        tt_webbase_connect_cancel(d->conn);
    } else if (d->link) {
        tt_link *l = d->link;
        d->link = NULL;
        uv_timer_stop(&d->timer);
        tt_link_close(l, on_cancel_closed, d);
    }
}

/* Server: read the request head; upgrade, or answer as the web site. */

typedef struct up {
    wsc *c;
    tt_child child; /* in c->w.children until the upgrade ends */
    tt_link *link;
    uv_timer_t timer;
    uint8_t *buf; /* the request so far, grown as it comes */
    size_t have, cap;
    bool got;          /* bytes came (empty lines may have been dropped) */
    tt_http_head req;  /* its parse so far */
    uint64_t deadline; /* the head's, from the accept */
    char peer[64];
} up;

static void up_timer_closed(uv_handle_t *h)
{
    up *u = h->data;
    tt_http_head_free(&u->req);
    free(u->buf);
    free(u);
}

static void up_end(up *u)
{
    tt_child_remove(&u->child);
    u->link = NULL;
    uv_close((uv_handle_t *)&u->timer, up_timer_closed);
}

static void to_web(up *u, const char *why)
{
    tt_link *l = u->link;
    tt_link_read_stop(l);
    tt_info("c%llu %s: not a tt client (%s)", (unsigned long long)l->id, u->peer, why);
    tt_decoy_answer(l, &u->c->w.cfg, u->buf, u->have, u->peer, u->deadline);
    up_end(u);
}

/* Checks one token text. Returns NULL when it passes, else why not. */
static const char *check_one(wsc *c, tt_http_str text, uint64_t now)
{
    uint8_t nonce[TT_WS_NONCE_LEN];
    uint64_t made;
    const char *why = NULL;
    int rc = tt_ws_token_check(c->w.auth, text.p, text.len, c->w.cfg.url.path, now,
                               c->w.cfg.replay_window_s, nonce, &made, &why);
    if (rc == -ETIMEDOUT)
        return "token time outside the window";
    if (rc == -EACCES)
        return "wrong token";
    if (rc != 0)
        return why ? why : "bad token";
    /* As tt/1's first flights (tt.c): the memory begins empty with this
     * process, so a token made before it started is refused. */
    if (!tt_replay_covers(&c->replay, made))
        return "token made before this server started";
    rc = tt_replay_check(&c->replay, nonce, now);
    if (rc == -EEXIST)
        return "replayed token";
    if (rc != 0) {
        tt_warn("token memory full: refusing new connections for now");
        return "token memory full";
    }
    return NULL;
}

/* Checks the cookies of an upgrade for our path: one must hold a token.
 * Returns NULL when one does, else why not (for the most telling cookie:
 * one that decoded as a token says more than the site's own cookies). */
static const char *check_token(wsc *c, const tt_ws_upgrade *upg)
{
    if (!c->w.has_key)
        return NULL;
    const char *why = "no token";
    uint64_t now = tt_webbase_now(&c->w);
    for (size_t i = 0; i < upg->ncookies; i++) {
        const char *w = check_one(c, upg->cookies[i], now);
        if (w == NULL)
            return NULL;
        if (strcmp(why, "no token") == 0 || strcmp(w, "malformed token") != 0)
            why = w;
    }
    return why;
}

static void srv_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    up *u = ud;
    if (len > u->cap - u->have) {
        /* The buffer grows with the head (nginx's buffers are 1 KiB, then
         * up to four of 8 KiB), not to its largest size at once. */
        size_t cap = u->cap * 2;
        while (cap < u->have + len)
            cap *= 2;
        uint8_t *b = realloc(u->buf, cap);
        if (b == NULL) {
            tt_link_close(l, NULL, NULL);
            up_end(u);
            return;
        }
        u->buf = b;
        u->cap = cap;
    }
    memcpy(u->buf + u->have, data, len);
    u->have += len;
    u->got = u->got || len > 0;
    tt_http_head *h = &u->req;
    const char *why = NULL;
    int rc = tt_http_head_parse(h, u->buf, u->have, &why);
    if (rc == 0) {
        /* Empty lines before the request line are done with (nginx takes
         * any number of them): the buffer holds at most a head. */
        size_t drop = tt_http_head_drop_lead(h);
        memmove(u->buf, u->buf + drop, u->have - drop);
        u->have -= drop;
        return;
    }
    if (rc < 0) {
        to_web(u, why);
        return;
    }
    tt_ws_upgrade upg;
    wsc *c = u->c;
    rc = tt_ws_server_check(h, c->w.cfg.url.path, &upg, &why);
    if (rc != 0) {
        to_web(u, why);
        return;
    }
    why = check_token(c, &upg);
    if (why != NULL) {
        to_web(u, why);
        return;
    }
    char resp[512];
    size_t n = tt_ws_server_response(resp, sizeof resp, upg.key, SERVER_NAME,
                                     (int64_t)tt_webbase_now(&c->w));
    tt_link_read_stop(l);
    if (n == 0 || tt_link_write1(l, resp, n) != 0) {
        tt_link_close(l, NULL, NULL);
        up_end(u);
        return;
    }
    tt_link *ws = tt_ws_link_new(l, false, u->buf + h->head_len, u->have - h->head_len, NULL);
    up_end(u);
    if (ws != NULL) {
        tt_tcp_link_trust(ws); /* never shed when descriptors run short */
        c->w.accept_cb(c->w.accept_ud, ws);
    }
}

static void srv_eof(tt_link *l, void *ud)
{
    up *u = ud;
    /* A request cut short by the client's half-close: nginx closes such a
     * connection without an answer, and so does the site here (its own
     * reader would never see this EOF again and would wait out its
     * timeout). */
    tt_info("c%llu %s: not a tt client (closed during the request)", (unsigned long long)l->id,
            u->peer);
    /* Over TLS, no close_notify in return, as from nginx to a peer that
     * sent its own. */
    tt_tls_link_close_quietly(l);
    tt_link_close(l, NULL, NULL);
    up_end(u);
}

static void srv_error(tt_link *l, void *ud, int err)
{
    up *u = ud;
    tt_debug("c%llu %s: %s during the request", (unsigned long long)l->id, u->peer,
             uv_strerror(err));
    tt_link_close(l, NULL, NULL);
    up_end(u);
}

static const tt_link_handler srv_handler = {srv_data, srv_eof, srv_error, NULL};

static void on_srv_timeout(uv_timer_t *t)
{
    up *u = t->data;
    /* nginx closes a connection that sends no complete head in time,
     * without an answer; over TLS with close_notify after silence, without
     * one in the middle of a head. */
    tt_debug("c%llu %s: no request in time", (unsigned long long)u->link->id, u->peer);
    if (u->got)
        tt_tls_link_close_quietly(u->link);
    tt_link_close(u->link, NULL, NULL);
    up_end(u);
}

/* The carrier closes. */
static void up_close(void *ud)
{
    up *u = ud;
    tt_link_close(u->link, NULL, NULL);
    up_end(u);
}

static void on_conn(tt_webbase *w, tt_link *link, uint64_t deadline)
{
    wsc *c = (wsc *)w;
    up *u = calloc(1, sizeof *u);
    uint8_t *buf = malloc(TT_HTTP_FIRST_BUF);
    if (u == NULL || buf == NULL) {
        free(u);
        free(buf);
        tt_link_close(link, NULL, NULL);
        return;
    }
    u->c = c;
    u->link = link;
    u->buf = buf;
    u->cap = TT_HTTP_FIRST_BUF;
    tt_http_head_init(&u->req, true);
    u->deadline = deadline;
    tt_link_peer(link, u->peer, sizeof u->peer);
    tt_child_add(&w->children, &u->child, up_close, u);
    uv_timer_init(w->base.loop, &u->timer);
    u->timer.data = u;
    /* nginx's client_header_timeout, from the accept. */
    uint64_t now = uv_now(w->base.loop);
    uv_timer_start(&u->timer, on_srv_timeout, deadline > now ? deadline - now : 0, 0);
    tt_link_set_handler(link, &srv_handler, u);
    if (tt_link_read_start(link) < 0) {
        tt_link_close(link, NULL, NULL);
        up_end(u);
    }
}

static int ws_server_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb,
                         void *ud, tt_carrier **out, const char **why)
{
    wsc *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    const tt_carrier_type *ops = ops_for(cfg);
    c->w.accept_cb = cb;
    c->w.accept_ud = ud;
    /* A nonce is remembered as long as its token's time stays acceptable. */
    tt_replay_init(&c->replay, REPLAY_CAP, 2 * (uint64_t)cfg->replay_window_s + 1);
    int rc =
        tt_webbase_init(&c->w, loop, ops, cfg, true, ops == &tt_carrier_wss, "tt-ws1 auth", why);
    /* Listening begins with the first second the replay memory covers. */
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

static const char *ws_describe(tt_carrier *base, char *buf, size_t len)
{
    return tt_webbase_describe((tt_webbase *)base, buf, len);
}

static void ws_close(tt_carrier *base)
{
    wsc *c = (wsc *)base;
    tt_webbase_free(&c->w);
    tt_replay_free(&c->replay);
    free(c);
}

static const tt_carrier_optgroup *const ws_groups[] = {
    &tt_carrier_key_opts,
    &tt_carrier_replay_opts,
    &tt_carrier_decoy_opts,
    &tt_carrier_www_opts,
    NULL,
};

static const tt_carrier_optgroup *const wss_groups[] = {
    &tt_carrier_key_opts,        &tt_carrier_replay_opts,
    &tt_carrier_decoy_opts,      &tt_carrier_www_opts,
    &tt_carrier_tls_opts,        &tt_carrier_tls_server_opts,
    &tt_carrier_tls_client_opts, NULL,
};

const tt_carrier_type tt_carrier_ws = {
    .scheme = "ws",
    .url_form = "ws://HOST[:PORT]/PATH",
    .summary = "WebSocket on a path (behind a TLS-terminating reverse proxy or CDN)",
    .default_port = 80,
    .flags = TT_CARRIER_KEY_GUARDS | TT_CARRIER_PATH,
    .groups = ws_groups,
    .client_new = ws_client_new,
    .server_new = ws_server_new,
    .dial = ws_dial,
    .dial_cancel = ws_dial_cancel,
    .describe = ws_describe,
    .close = ws_close,
};

const tt_carrier_type tt_carrier_wss = {
    .scheme = "wss",
    .url_form = "wss://HOST[:PORT]/PATH",
    .summary = "WebSocket inside TLS on a path, as a web site serves it",
    .default_port = 443,
    .flags = TT_CARRIER_KEY_GUARDS | TT_CARRIER_PATH,
    .groups = wss_groups,
    .client_new = ws_client_new,
    .server_new = ws_server_new,
    .dial = ws_dial,
    .dial_cancel = ws_dial_cancel,
    .describe = ws_describe,
    .close = ws_close,
};
