/* The TLS carrier, tls://: streams inside TLS (1.3 preferred, 1.2 accepted),
 * as stunnel or mos-tls-tunnel carry them. With -k the client proves that it
 * knows the key before anything else: its first 16 bytes inside TLS are
 *
 *   TOKEN = HKDF-SHA256(IKM = K_tls, SALT = EXPORTER, INFO = "tt-tls1 token", 16)
 *   K_tls = HKDF-SHA256(IKM = PSK, SALT = "", INFO = "tt-tls1 auth", 32)
 *   EXPORTER = the TLS exporter (RFC 8446 7.5) "EXPORTER-tt-tls1", 32 bytes
 *
 * Bound to the TLS session, the token cannot be replayed on another
 * connection, and needs no clock. A connection whose first bytes are not the
 * token (a browser's GET, a scanner) is handed, with those bytes, to the web
 * site (--fallback or --www): the server answers as the web server it looks
 * like. Without -k (only with a fixed -d destination) there is no token. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "carrier/carrier.h"
#include "carrier/children.h"
#include "carrier/webbase.h"
#include "core/crypto.h"
#include "core/log.h"
#include "decoy/decoy.h"
#include "link/prefix.h"
#include "link/tls.h"

extern const tt_carrier_type tt_carrier_tls;

#define TOKEN_LEN 16
#define EXPORTER_LABEL "EXPORTER-tt-tls1"

static int session_token(tt_webbase *w, tt_link *l, uint8_t token[TOKEN_LEN])
{
    uint8_t exp[32];
    if (tt_tls_link_export(l, EXPORTER_LABEL, exp, sizeof exp) != 0)
        return -EIO;
    static const char info[] = "tt-tls1 token";
    int rc = tt_hkdf(w->auth, sizeof w->auth, exp, sizeof exp, (const uint8_t *)info,
                     sizeof info - 1, token, TOKEN_LEN);
    OPENSSL_cleanse(exp, sizeof exp);
    return rc;
}

static int tls_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                          const char **why)
{
    tt_webbase *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    int rc = tt_webbase_init(w, loop, &tt_carrier_tls, cfg, false, true, "tt-tls1 auth", why);
    if (rc != 0) {
        tt_webbase_free(w);
        free(w);
        return rc;
    }
    *out = &w->base;
    return 0;
}

/* Client dial: the TLS connection, then the token. */

struct tt_carrier_dial {
    tt_webbase_connect *conn;
    tt_webbase *w;
    tt_carrier_dial_cb cb;
    void *ud;
};

static void on_connected(void *ud, int status, tt_link *link, const char *why)
{
    tt_carrier_dial *d = ud;
    tt_webbase *w = d->w;
    if (status == 0 && w->has_key) {
        uint8_t token[TOKEN_LEN];
        if (session_token(w, link, token) != 0 || tt_link_write1(link, token, sizeof token) != 0) {
            tt_link_close(link, NULL, NULL);
            link = NULL;
            status = UV_EPROTO;
            why = "cannot compute the session token";
        }
    }
    if (status != 0 && status != UV_ECANCELED)
        tt_info("cannot reach the tls:// server %s: %s", w->cfg.url.hp.host,
                why ? why : uv_strerror(status));
    tt_carrier_dial_cb cb = d->cb;
    void *cud = d->ud;
    free(d);
    cb(cud, status, link);
}

static int tls_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                    tt_carrier_dial **out)
{
    (void)t; /* the target goes in the stream header */
    tt_carrier_dial *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->w = (tt_webbase *)base;
    d->cb = cb;
    d->ud = ud;
    int rc = tt_webbase_connect_start(d->w, on_connected, d, &d->conn);
    if (rc != 0) {
        free(d);
        return rc;
    }
    if (out)
        *out = d;
    return 0;
}

static void tls_dial_cancel(tt_carrier_dial *d)
{
    tt_webbase_connect_cancel(d->conn);
}

/* Server: check the token, or answer as the web site. */

typedef struct auth {
    tt_webbase *w;
    tt_child child; /* in w->children until done */
    tt_link *link;
    uv_timer_t timer;
    uint8_t expect[TOKEN_LEN];
    uint8_t got[TOKEN_LEN];
    size_t have;
    uint64_t deadline; /* the first request's, from the accept */
    bool done;
    char peer[64];
} auth;

static void auth_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void auth_end(auth *a)
{
    a->done = true;
    tt_child_remove(&a->child);
    OPENSSL_cleanse(a->expect, sizeof a->expect);
    uv_close((uv_handle_t *)&a->timer, auth_timer_closed);
}

static void auth_fail(auth *a, const uint8_t *rest, size_t rest_len, const char *why)
{
    tt_link *l = a->link;
    tt_link_read_stop(l);
    tt_info("c%llu %s: not a tt client (%s)", (unsigned long long)l->id, a->peer, why);
    /* The web site gets every byte the peer sent inside TLS. */
    size_t n = a->have + rest_len;
    uint8_t *all = malloc(n > 0 ? n : 1);
    if (all == NULL) {
        tt_link_close(l, NULL, NULL);
    } else {
        memcpy(all, a->got, a->have);
        if (rest_len > 0)
            memcpy(all + a->have, rest, rest_len);
        tt_decoy_answer(l, &a->w->cfg, all, n, a->peer, a->deadline);
        free(all);
    }
    auth_end(a);
}

static void auth_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    auth *a = ud;
    size_t take = TOKEN_LEN - a->have;
    if (take > len)
        take = len;
    /* Compared as the bytes come, so that a browser's request, which differs
     * at its first byte, is answered at once instead of after a timeout.
     * The token is valid for this TLS session only, so the early exit tells
     * an attacker nothing that would help on another connection. */
    for (size_t i = 0; i < take; i++) {
        if (data[i] != a->expect[a->have + i]) {
            auth_fail(a, data, len, "wrong token");
            return;
        }
    }
    memcpy(a->got + a->have, data, take);
    a->have += take;
    if (a->have < TOKEN_LEN)
        return;
    tt_link_read_stop(l);
    tt_webbase *w = a->w;
    auth_end(a);
    tt_link *s = tt_prefix_link(l, data + take, len - take);
    if (s != NULL) {
        tt_tcp_link_trust(s); /* never shed when descriptors run short */
        w->accept_cb(w->accept_ud, s);
    }
}

static void auth_eof(tt_link *l, void *ud)
{
    auth *a = ud;
    /* Fewer bytes than a token, then the client's half-close: no request a
     * web server could answer, so the connection closes without an answer,
     * as nginx closes one cut short (the fallback's relay would never see
     * this EOF again). */
    tt_info("c%llu %s: not a tt client (closed before the token)", (unsigned long long)l->id,
            a->peer);
    /* No close_notify in return, as from nginx to a peer that sent its own. */
    tt_tls_link_close_quietly(l);
    tt_link_close(l, NULL, NULL);
    auth_end(a);
}

static void auth_error(tt_link *l, void *ud, int err)
{
    auth *a = ud;
    tt_debug("c%llu %s: %s before the token", (unsigned long long)l->id, a->peer, uv_strerror(err));
    tt_link_close(l, NULL, NULL);
    auth_end(a);
}

static const tt_link_handler auth_handler = {auth_data, auth_eof, auth_error, NULL};

static void on_auth_timeout(uv_timer_t *t)
{
    auth *a = t->data;
    tt_debug("c%llu %s: no token in time", (unsigned long long)a->link->id, a->peer);
    /* As nginx at its client_header_timeout: close_notify after silence,
     * none in the middle of a request (the start of a token). */
    if (a->have > 0)
        tt_tls_link_close_quietly(a->link);
    tt_link_close(a->link, NULL, NULL);
    auth_end(a);
}

/* The carrier closes. */
static void auth_close(void *ud)
{
    auth *a = ud;
    tt_link_close(a->link, NULL, NULL);
    auth_end(a);
}

static void on_conn(tt_webbase *w, tt_link *link, uint64_t deadline)
{
    if (!w->has_key) {
        tt_tcp_link_trust(link);
        w->accept_cb(w->accept_ud, link);
        return;
    }
    auth *a = calloc(1, sizeof *a);
    if (a == NULL || session_token(w, link, a->expect) != 0) {
        free(a);
        tt_link_close(link, NULL, NULL);
        return;
    }
    a->w = w;
    a->link = link;
    a->deadline = deadline;
    tt_link_peer(link, a->peer, sizeof a->peer);
    tt_child_add(&w->children, &a->child, auth_close, a);
    uv_timer_init(w->base.loop, &a->timer);
    a->timer.data = a;
    /* The token comes at once from a tt client; anything else is a web
     * client, which nginx would give its client_header_timeout from the
     * accept. */
    uint64_t now = uv_now(w->base.loop);
    uv_timer_start(&a->timer, on_auth_timeout, deadline > now ? deadline - now : 0, 0);
    tt_link_set_handler(link, &auth_handler, a);
    if (tt_link_read_start(link) < 0) {
        tt_link_close(link, NULL, NULL);
        auth_end(a);
    }
}

static int tls_server_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb,
                          void *ud, tt_carrier **out, const char **why)
{
    tt_webbase *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -ENOMEM;
    w->accept_cb = cb;
    w->accept_ud = ud;
    int rc = tt_webbase_init(w, loop, &tt_carrier_tls, cfg, true, true, "tt-tls1 auth", why);
    if (rc == 0)
        rc = tt_webbase_listen(w, on_conn, why);
    if (rc != 0) {
        tt_webbase_free(w);
        free(w);
        return rc;
    }
    *out = &w->base;
    return 0;
}

static const char *tls_describe(tt_carrier *base, char *buf, size_t len)
{
    return tt_webbase_describe((tt_webbase *)base, buf, len);
}

static void tls_close(tt_carrier *base)
{
    tt_webbase *w = (tt_webbase *)base;
    tt_webbase_free(w);
    free(w);
}

static const tt_carrier_optgroup *const tls_groups[] = {
    &tt_carrier_key_opts,
    &tt_carrier_decoy_opts,
    &tt_carrier_www_opts,
    &tt_carrier_tls_opts,
    &tt_carrier_tls_server_opts,
    &tt_carrier_tls_client_opts,
    NULL,
};

const tt_carrier_type tt_carrier_tls = {
    .scheme = "tls",
    .url_form = "tls://HOST[:PORT]",
    .summary = "TLS 1.3/1.2 (a self-signed certificate with --pin, or a CA's)",
    .default_port = 443,
    .flags = TT_CARRIER_KEY_GUARDS,
    .groups = tls_groups,
    .client_new = tls_client_new,
    .server_new = tls_server_new,
    .dial = tls_dial,
    .dial_cancel = tls_dial_cancel,
    .describe = tls_describe,
    .close = tls_close,
};
