#include "carrier/webbase.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "codec/ttproto.h"
#include "core/crypto.h"
#include "core/selfsigned.h"
#include "core/log.h"
#include "decoy/decoy.h"
#include "exit/dial.h"
#include "link/tls.h"

/* Says where a self-signed certificate came from, so that a user who
 * pinned it knows whether the pin still holds. */
static void log_self_signed(tt_tls_ctx *ctx, const char *name)
{
    const char *path, *save_why;
    int origin = tt_tls_ctx_self_signed_origin(ctx, &path, &save_why);
    const char *fp = tt_tls_ctx_fingerprint(ctx);
    if (origin == TT_SELFSIGNED_LOADED)
        tt_info("self-signed certificate for %s, SHA-256 %s (clients: --pin with this), from %s",
                name, fp, path);
    else if (origin == TT_SELFSIGNED_NEW)
        tt_info("self-signed certificate for %s, SHA-256 %s (clients: --pin with this), new, "
                "kept in %s",
                name, fp, path);
    else if (origin == TT_SELFSIGNED_RENEWED)
        tt_warn("self-signed certificate for %s, SHA-256 %s (clients: --pin with this), new: the "
                "one in %s had expired or was for another name, and is replaced",
                name, fp, path);
    else if (save_why)
        tt_warn("self-signed certificate for %s, SHA-256 %s (clients: --pin with this), new; "
                "cannot keep it in %s (%s), so it changes at each start",
                name, fp, *path ? path : "the state directory", save_why);
    else
        tt_warn("self-signed certificate for %s, SHA-256 %s (clients: --pin with this), new; no "
                "state directory (set TT_STATE_DIR), so it changes at each start",
                name, fp);
}

int tt_webbase_init(tt_webbase *w, uv_loop_t *loop, const tt_carrier_type *ops,
                    const tt_carrier_cfg *cfg, bool server, bool tls, const char *info,
                    const char **why)
{
    w->base.type = ops;
    w->base.loop = loop;
    w->cfg = *cfg;
    w->tls = tls;
    if (cfg->key != NULL) {
        uint8_t psk[TT_PSK_LEN];
        bool is_password;
        if (tt_psk_derive(cfg->key, psk, &is_password) != 0) {
            *why = "the key (-k) is empty";
            return -EINVAL;
        }
        int rc = tt_hkdf(psk, sizeof psk, NULL, 0, (const uint8_t *)info, strlen(info), w->auth,
                         sizeof w->auth);
        OPENSSL_cleanse(psk, sizeof psk);
        if (rc != 0) {
            *why = "cannot derive the authentication key";
            return -EIO;
        }
        w->has_key = true;
    }
    if (!server) {
        if (tt_target_set(&w->server, cfg->url.hp.host, cfg->url.hp.port) != 0) {
            *why = "the server address is not a valid host";
            return -EINVAL;
        }
        snprintf(w->name, sizeof w->name, "%s", cfg->tls_name ? cfg->tls_name : cfg->url.hp.host);
    }
    if (!tls)
        return 0;
    /* The client offers what curl offers, h2 and then http/1.1 (its whole
     * hello is curl's, src/core/tlsctx.c); tt's server accepts what nginx
     * without HTTP/2 accepts (http/1.1 first) and so picks http/1.1, the
     * protocol a WebSocket upgrade needs. tls:// offers and picks the
     * same, so that it looks no different. A front end that picks h2
     * cannot carry the upgrade: ws.c says so. */
    int rc;
    if (server) {
        /* Without -n the certificate names the machine, as a certificate
         * made by hand with `openssl req` usually does; a fixed name would
         * mark every tt server. */
        char host[256] = "", dir[PATH_MAX];
        const char *name = cfg->tls_name;
        if (name == NULL && (gethostname(host, sizeof host) != 0 || host[0] == '\0'))
            snprintf(host, sizeof host, "%s", TT_TLS_DEFAULT_NAME);
        if (name == NULL)
            name = host;
        tt_tls_server_opts o = {.cert_file = cfg->cert_file,
                                .key_file = cfg->key_file,
                                .state_dir = tt_selfsigned_dir(dir, sizeof dir),
                                .name = name,
                                .alpn = NULL};
        rc = tt_tls_server_ctx_new(&o, &w->ctx, why);
        if (rc == 0 && tt_tls_ctx_self_signed(w->ctx))
            log_self_signed(w->ctx, name);
        else if (rc == 0)
            tt_info("certificate %s, SHA-256 %s", cfg->cert_file, tt_tls_ctx_fingerprint(w->ctx));
    } else {
        tt_tls_client_opts o = {.ca_file = cfg->ca_file,
                                .pin = cfg->pin,
                                .insecure_skip_verify = cfg->skip_verify,
                                .alpn = "h2,http/1.1"};
        rc = tt_tls_client_ctx_new(&o, &w->ctx, why);
        if (rc == 0 && cfg->skip_verify)
            tt_warn("--insecure-skip-verify: the server's certificate is NOT checked; anyone on "
                    "the path can read and change this tunnel's traffic (use --pin instead)");
    }
    return rc;
}

static void on_tcp_accept(void *ud, tt_link *link);

int tt_webbase_listen(tt_webbase *w, tt_webbase_conn_cb on_conn, const char **why)
{
    const char *host = w->cfg.url.hp.host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    unsigned char tmp[16];
    if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1) {
        *why = "the listen address must be an IP address (0.0.0.0, ::, 127.0.0.1, ...)";
        return -EINVAL;
    }
    w->on_conn = on_conn;
    int rc = tt_tcp_listen(w->base.loop, host, w->cfg.url.hp.port, on_tcp_accept, w, &w->listener);
    if (rc != 0) {
        *why = uv_strerror(rc);
        return rc;
    }
    tt_carrier_listener_setup(&w->cfg, w->listener);
    /* Connections not yet through TLS and the carrier's check go first
     * when descriptors run short. */
    tt_tcp_listener_shed(w->listener);
    return 0;
}

void tt_webbase_free(tt_webbase *w)
{
    tt_children_close(&w->children);
    if (w->listener)
        tt_tcp_listener_close(w->listener);
    w->listener = NULL;
    if (w->ctx)
        tt_tls_ctx_free(w->ctx);
    w->ctx = NULL;
    OPENSSL_cleanse(w->auth, sizeof w->auth);
}

uint64_t tt_webbase_now_ms(const tt_webbase *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = ((int64_t)ts.tv_sec + w->cfg.clock_offset_s) * 1000 + ts.tv_nsec / 1000000;
    return ms > 0 ? (uint64_t)ms : 0;
}

uint64_t tt_webbase_now(const tt_webbase *w)
{
    return tt_webbase_now_ms(w) / 1000;
}

const char *tt_webbase_describe(tt_webbase *w, char *buf, size_t len)
{
    const char *host = w->cfg.url.hp.host;
    int port = w->listener ? tt_tcp_listener_port(w->listener) : w->cfg.url.hp.port;
    return tt_url_format(w->cfg.url.scheme, NULL, host, (unsigned)port,
                         strcmp(w->cfg.url.scheme, "tls") == 0 ? "" : w->cfg.url.path, buf, len);
}

/* Server: what an accepted connection is, then its TLS handshake.
 *
 * nginx's "ssl" listener looks at the first byte before it starts TLS: a
 * handshake record (0x16) or an SSLv2 hello (high bit set) goes to
 * OpenSSL, anything else is read as plain HTTP and answered "400 The plain
 * HTTP request was sent to HTTPS port" (or its plain 400). One timer,
 * client_header_timeout, runs from the accept through the handshake to the
 * end of the first request head, however the bytes trickle in. The server
 * here does the same (--header-timeout), and hands the deadline on to the
 * carrier's own check and to the web site. */

typedef struct accept_hs {
    tt_webbase *w;
    tt_child child;    /* in w->children until the connection is handed on */
    tt_link *link;     /* TCP while the first bytes are awaited, then TLS */
    uv_timer_t timer;  /* the deadline while the first bytes are awaited */
    uint64_t deadline; /* loop time by which the first request must be whole */
    char peer[64];
} accept_hs;

static void accept_hs_free(uv_handle_t *h)
{
    free(h->data);
}

static void accept_hs_end(accept_hs *a)
{
    tt_child_remove(&a->child);
    a->link = NULL;
    uv_close((uv_handle_t *)&a->timer, accept_hs_free);
}

/* The carrier closes: the ready callback will not run after the close. */
static void accept_hs_close(void *ud)
{
    accept_hs *a = ud;
    tt_link_close(a->link, NULL, NULL);
    accept_hs_end(a);
}

/* What is left of the deadline, in milliseconds (at least 1: 0 would mean
 * no timeout to the TLS link). */
static unsigned left_ms(uv_loop_t *loop, uint64_t deadline)
{
    uint64_t now = uv_now(loop);
    return deadline > now ? (unsigned)(deadline - now) : 1;
}

static void on_server_ready(void *ud, tt_link *link, int status)
{
    accept_hs *a = ud;
    tt_webbase *w = a->w;
    uint64_t deadline = a->deadline;
    if (status != 0) {
        char why[160];
        tt_debug("c%llu %s: TLS handshake failed: %s", (unsigned long long)link->id, a->peer,
                 tt_tls_link_why(link, why, sizeof why));
    }
    accept_hs_end(a);
    if (status != 0)
        tt_link_close(link, NULL, NULL);
    else
        w->on_conn(w, link, deadline);
}

static void sniff_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    accept_hs *a = ud;
    tt_webbase *w = a->w;
    tt_link_read_stop(l);
    uv_timer_stop(&a->timer);
    if (data[0] != 0x16 && (data[0] & 0x80) == 0) {
        tt_info("c%llu %s: not a tt client (no TLS)", (unsigned long long)l->id, a->peer);
        uint64_t deadline = a->deadline;
        accept_hs_end(a);
        tt_decoy_plain_on_tls(l, &w->cfg, data, len, deadline);
        return;
    }
    /* The TLS link copies what it does not use at once. */
    a->link = tt_tls_link_server(l, w->ctx, data, len, left_ms(w->base.loop, a->deadline),
                                 on_server_ready, a);
    if (a->link == NULL)
        accept_hs_end(a);
}

/* Nothing sent, then the half-close, a reset, or the deadline: nginx
 * closes without a word. */
static void sniff_eof(tt_link *l, void *ud)
{
    tt_link_close(l, NULL, NULL);
    accept_hs_end(ud);
}

static void sniff_error(tt_link *l, void *ud, int err)
{
    (void)err;
    sniff_eof(l, ud);
}

static void on_sniff_timeout(uv_timer_t *t)
{
    accept_hs *a = t->data;
    sniff_eof(a->link, a);
}

static const tt_link_handler sniff_handler = {sniff_data, sniff_eof, sniff_error, NULL};

static void on_tcp_accept(void *ud, tt_link *link)
{
    tt_webbase *w = ud;
    uint64_t deadline = uv_now(w->base.loop) + w->cfg.header_timeout_ms;
    if (!w->tls) {
        w->on_conn(w, link, deadline);
        return;
    }
    accept_hs *a = calloc(1, sizeof *a);
    if (a == NULL) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    a->w = w;
    a->link = link;
    a->deadline = deadline;
    tt_link_peer(link, a->peer, sizeof a->peer);
    uv_timer_init(w->base.loop, &a->timer);
    a->timer.data = a;
    tt_child_add(&w->children, &a->child, accept_hs_close, a);
    tt_link_set_handler(link, &sniff_handler, a);
    if (tt_link_read_start(link) < 0) {
        tt_link_close(link, NULL, NULL);
        accept_hs_end(a);
        return;
    }
    uv_timer_start(&a->timer, on_sniff_timeout, w->cfg.header_timeout_ms, 0);
}

/* Client: TCP connect, then TLS. */

struct tt_webbase_connect {
    tt_webbase *w;
    tt_webbase_connect_cb cb;
    void *ud;
    tt_dial *dial;  /* while connecting */
    tt_link *link;  /* during the TLS handshake */
    bool cancelled; /* the callback reports UV_ECANCELED */
};

static void finish(tt_webbase_connect *c, int status, tt_link *link, const char *why)
{
    tt_webbase_connect_cb cb = c->cb;
    void *ud = c->ud;
    free(c);
    cb(ud, status, link, why);
}

static void on_cancel_closed(void *ud)
{
    finish(ud, UV_ECANCELED, NULL, NULL);
}

static void on_client_ready(void *ud, tt_link *link, int status)
{
    tt_webbase_connect *c = ud;
    c->link = NULL;
    if (status != 0) {
        char why[160];
        tt_tls_link_why(link, why, sizeof why);
        tt_link_close(link, NULL, NULL);
        finish(c, status, NULL, why);
        return;
    }
    finish(c, 0, link, NULL);
}

static void on_tcp_dialed(void *ud, uint8_t rep, int err, tt_link *link)
{
    tt_webbase_connect *c = ud;
    (void)rep;
    c->dial = NULL;
    if (link == NULL) {
        finish(c, c->cancelled ? UV_ECANCELED : err != 0 ? err : UV_ECONNREFUSED, NULL, NULL);
        return;
    }
    if (c->cancelled) {
        tt_link_close(link, NULL, NULL);
        finish(c, UV_ECANCELED, NULL, NULL);
        return;
    }
    if (!c->w->tls) {
        finish(c, 0, link, NULL);
        return;
    }
    c->link = tt_tls_link_client(link, c->w->ctx, c->w->name, c->w->cfg.handshake_timeout_ms,
                                 on_client_ready, c);
    if (c->link == NULL)
        finish(c, UV_ENOMEM, NULL, "cannot set up TLS");
}

int tt_webbase_need_h1(tt_webbase *w, tt_link *link, const char *what, const char **why)
{
    char alpn[16];
    if (!w->tls || strcmp(tt_tls_link_alpn(link, alpn, sizeof alpn), "h2") != 0)
        return 0;
    tt_link_close(link, NULL, NULL);
    if (w->h1_only || tt_tls_ctx_set_alpn(w->ctx, "http/1.1") != 0) {
        *why = "the server chose HTTP/2 (ALPN h2), which cannot carry this carrier";
        return -EPROTO;
    }
    w->h1_only = true;
    tt_warn("the %s:// server %s chose HTTP/2 (ALPN h2), which cannot carry %s: offering only "
            "http/1.1 from now on (better: turn http2 off on the front end's listener for this "
            "site, so that the first connection works too)",
            w->cfg.url.scheme, w->cfg.url.hp.host, what);
    return 1;
}

int tt_webbase_connect_start(tt_webbase *w, tt_webbase_connect_cb cb, void *ud,
                             tt_webbase_connect **out)
{
    tt_webbase_connect *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->w = w;
    c->cb = cb;
    c->ud = ud;
    tt_dial_opts opts = {.acl = NULL,
                         .timeout_ms = w->cfg.connect_timeout_ms,
                         .resolver = w->cfg.resolver,
                         .fast_open = w->cfg.fast_open};
    int rc = tt_dial_start(w->base.loop, &w->server, &opts, on_tcp_dialed, c, &c->dial);
    if (rc != 0) {
        free(c);
        return rc;
    }
    if (out)
        *out = c;
    return 0;
}

void tt_webbase_connect_cancel(tt_webbase_connect *c)
{
    if (c->cancelled)
        return;
    c->cancelled = true;
    if (c->dial) {
        tt_dial_cancel(c->dial);
    } else if (c->link) {
        /* The handshake's ready callback will not run after close; the
         * close callback reports the cancel from the loop. */
        tt_link *l = c->link;
        c->link = NULL;
        tt_link_close(l, on_cancel_closed, c);
    }
}
