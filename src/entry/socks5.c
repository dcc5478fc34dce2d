#include "entry/socks5.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "codec/socks5.h"
#include "core/log.h"
#include "link/linger.h"
#include "link/relay.h"
#include "stream/open.h"

typedef struct s5conn {
    tt_link *app;
    const tt_entry_cfg *cfg;
    tt_socks5 codec;
    tt_stream_open *open;
    uv_timer_t timer;
    tt_target target;
    int outstanding; /* app link close, timer close */
    bool closed;
    bool requested; /* a CONNECT is being opened */
    bool early;     /* ... and was answered already (early_reply) */
    bool app_eof;   /* early: the application half-closed meanwhile */
    char peer[64];
} s5conn;

static void s5_release(void *ud)
{
    s5conn *c = ud;
    if (--c->outstanding == 0)
        free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    s5_release(h->data);
}

static void s5_close(s5conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    if (c->open) {
        tt_stream_open_cancel(c->open);
        c->open = NULL;
    }
    if (c->app)
        tt_link_close(c->app, s5_release, c);
    else
        c->outstanding--;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* Sends a last message to the application and lets the link linger. */
static void s5_fail(s5conn *c, const uint8_t *out, size_t len)
{
    tt_link *app = c->app;
    c->app = NULL;
    s5_close(c);
    if (len > 0 && tt_link_write1(app, out, len) < 0) {
        tt_link_close(app, NULL, NULL);
        return;
    }
    tt_link_linger(app, 2000);
}

static bool creds_ok(const tt_entry_cfg *cfg, const char *user, const char *pass)
{
    bool ok = false;
    size_t ul = strlen(user), pl = strlen(pass);
    for (unsigned i = 0; i < cfg->n_creds; i++) {
        const tt_cred *cr = &cfg->creds[i];
        /* Compare in constant time so response timing reveals nothing about
         * how much of a password was right. */
        bool u = strlen(cr->user) == ul && CRYPTO_memcmp(cr->user, user, ul) == 0;
        bool p = strlen(cr->pass) == pl && CRYPTO_memcmp(cr->pass, pass, pl) == 0;
        ok |= u & p;
    }
    return ok;
}

/* Ends an early-answered connection whose open failed: the application
 * was told it is connected, so a reset is the only way left to say that it
 * is not (an EOF would look like an empty answer). */
static void s5_reset(s5conn *c)
{
    tt_link *app = c->app;
    c->app = NULL;
    s5_close(c);
    tt_link_abort(app, NULL, NULL);
}

static void on_opened(void *ud, uint8_t rep, tt_link *link, const uint8_t *left, size_t n)
{
    s5conn *c = ud;
    c->open = NULL;
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    size_t len = c->early ? 0 : tt_socks5_reply(rep, NULL, out);
    char tbuf[TT_TARGET_STRLEN];
    tt_target_format(&c->target, tbuf, sizeof tbuf);
    if (rep != TT_S5_REP_OK) {
        tt_info("c%llu %s: CONNECT %s: %s%s", (unsigned long long)c->app->id, c->peer, tbuf,
                tt_socks5_rep_str(rep), c->early ? " (answered early: reset)" : "");
        if (c->early)
            s5_reset(c);
        else
            s5_fail(c, out, len);
        return;
    }
    tt_debug("c%llu %s: CONNECT %s: ok", (unsigned long long)c->app->id, c->peer, tbuf);
    tt_link *app = c->app;
    /* Early: reading may still be on (the relay takes over) or have stopped
     * at the early-data limit or the application's EOF. */
    tt_link_read_stop(app);
    int rc = len > 0 ? tt_link_write1(app, out, len) : 0;
    if (rc == 0 && n > 0)
        rc = tt_link_write1(app, left, n);
    if (rc < 0) {
        tt_link_close(link, NULL, NULL);
        s5_close(c);
        return;
    }
    char label[TT_RELAY_LABEL_MAX];
    snprintf(label, sizeof label, "c%llu %s -> %s", (unsigned long long)app->id, c->peer, tbuf);
    tt_relay_opts ro = {
        .idle_timeout_ms = c->cfg->idle_timeout_ms, .label = label, .a_eof = c->app_eof};
    c->app = NULL;
    s5_close(c);
    tt_relay_start(app, link, &ro);
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    s5conn *c = ud;
    if (c->requested) {
        /* Only when answered early: the stream's first bytes. */
        int rc = tt_stream_open_feed(c->open, data, len);
        if (rc < 0) {
            tt_info("c%llu %s: cannot send early data: %s", (unsigned long long)l->id, c->peer,
                    uv_strerror(rc));
            s5_reset(c);
        } else if (rc > 0) {
            tt_link_read_stop(l);
        }
        return;
    }
    while (len > 0) {
        tt_socks5_event ev;
        size_t used = tt_socks5_feed(&c->codec, data, len, &ev);
        data += used;
        len -= used;
        switch (ev.type) {
        case TT_S5_EV_NEED_MORE:
            return;
        case TT_S5_EV_SEND:
            if (tt_link_write1(l, ev.out, ev.out_len) < 0) {
                s5_close(c);
                return;
            }
            break;
        case TT_S5_EV_AUTH: {
            bool ok = creds_ok(c->cfg, ev.user, ev.pass);
            uint8_t out[2];
            size_t n = tt_socks5_auth_result(&c->codec, ok, out);
            if (!ok) {
                tt_info("c%llu %s: SOCKS5 authentication failed", (unsigned long long)l->id,
                        c->peer);
                s5_fail(c, out, n);
                return;
            }
            if (tt_link_write1(l, out, n) < 0) {
                s5_close(c);
                return;
            }
            break;
        }
        case TT_S5_EV_FAIL:
            tt_info("c%llu %s: SOCKS5: %s", (unsigned long long)l->id, c->peer,
                    ev.why ? ev.why : "protocol error");
            s5_fail(c, ev.out, ev.out_len);
            return;
        case TT_S5_EV_REQUEST: {
            c->requested = true;
            c->target = ev.target;
            uv_timer_stop(&c->timer);
            /* Bytes sent before our reply (an optimistic client) travel with
             * the stream-open header. */
            int rc = tt_stream_open_start(c->cfg->carrier, &c->target, data, len,
                                          c->cfg->open_timeout_ms, on_opened, c, &c->open);
            uint8_t out[TT_SOCKS5_REPLY_MAX];
            if (rc < 0) {
                s5_fail(c, out, tt_socks5_reply(TT_S5_REP_GENERAL, NULL, out));
                return;
            }
            if (!c->cfg->early_reply) {
                tt_link_read_stop(l);
                return;
            }
            /* Early: "connected" now; what the application sends next is
             * fed to the open (on_data) and rides with it. */
            c->early = true;
            if (tt_link_write1(l, out, tt_socks5_reply(TT_S5_REP_OK, NULL, out)) < 0)
                s5_close(c);
            return;
        }
        }
    }
}

static void on_eof(tt_link *l, void *ud)
{
    s5conn *c = ud;
    if (c->early) {
        /* A request sent whole, then a half-close: the open goes on, and
         * the relay starts with this direction ended. */
        tt_link_read_stop(l);
        c->app_eof = true;
        tt_debug("c%llu %s: half-closed while the stream opens", (unsigned long long)l->id,
                 c->peer);
        return;
    }
    s5_close(c);
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    s5_close(ud);
}

static const tt_link_handler s5_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drained = NULL,
};

static void on_timeout(uv_timer_t *t)
{
    s5conn *c = t->data;
    tt_info("c%llu %s: SOCKS5 negotiation timed out", (unsigned long long)c->app->id, c->peer);
    s5_close(c);
}

static void on_accept(void *ud, tt_link *app)
{
    const tt_entry_cfg *cfg = ud;
    s5conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        tt_link_close(app, NULL, NULL);
        return;
    }
    c->app = app;
    c->cfg = cfg;
    c->outstanding = 2;
    tt_socks5_init(&c->codec, cfg->n_creds > 0);
    tt_link_peer(app, c->peer, sizeof c->peer);
    uv_timer_init(app->loop, &c->timer);
    c->timer.data = c;
    tt_link_set_handler(app, &s5_handler, c);
    if (tt_link_read_start(app) < 0) {
        s5_close(c);
        return;
    }
    if (cfg->handshake_timeout_ms)
        uv_timer_start(&c->timer, on_timeout, cfg->handshake_timeout_ms, 0);
}

int tt_socks5_entry_start(uv_loop_t *loop, const tt_hostport *hp, const tt_entry_cfg *cfg,
                          tt_tcp_listener **out, const char **why)
{
    int rc = tt_tcp_listen(loop, hp->host, hp->port, on_accept, (void *)(uintptr_t)cfg, out);
    if (rc < 0)
        *why = rc == UV_EINVAL ? "the listen address must be an IP address" : uv_strerror(rc);
    return rc;
}
