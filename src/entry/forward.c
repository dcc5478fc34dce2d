#include "entry/forward.h"

#include <stdlib.h>

#include "codec/socks5.h"
#include "core/log.h"
#include "link/relay.h"
#include "stream/open.h"

typedef struct fwconn {
    tt_link *app;
    const tt_entry_cfg *cfg;
    tt_target dest;
    tt_stream_open *open;
    bool app_eof; /* the application half-closed during the open */
    char peer[64];
} fwconn;

static void on_opened(void *ud, uint8_t rep, tt_link *link, const uint8_t *left, size_t n)
{
    fwconn *c = ud;
    tt_link *app = c->app;
    c->open = NULL;
    tt_link_read_stop(app);
    char tbuf[TT_TARGET_STRLEN];
    tt_target_format(&c->dest, tbuf, sizeof tbuf);
    if (rep != TT_S5_REP_OK) {
        /* There is no protocol to report the reason to the application;
         * the reset is the only signal, and the log says why. */
        tt_info("c%llu %s: forward to %s: %s", (unsigned long long)app->id, c->peer, tbuf,
                tt_socks5_rep_str(rep));
        /* A reset, not an EOF: its first bytes may have been taken, and an
         * EOF would look like an empty answer. */
        tt_link_abort(app, NULL, NULL);
        free(c);
        return;
    }
    int rc = n ? tt_link_write1(app, left, n) : 0;
    tt_relay_opts ro = {.idle_timeout_ms = c->cfg->idle_timeout_ms, .a_eof = c->app_eof};
    char label[TT_RELAY_LABEL_MAX];
    snprintf(label, sizeof label, "c%llu %s -> %s", (unsigned long long)app->id, c->peer, tbuf);
    free(c);
    if (rc < 0) {
        tt_link_close(app, NULL, NULL);
        tt_link_close(link, NULL, NULL);
        return;
    }
    ro.label = label;
    tt_relay_start(app, link, &ro);
}

/* While the stream opens, what the application sends goes ahead (a
 * forward's application expects no answer before it speaks), so its first
 * bytes travel with the open instead of a round trip later. */
static void early_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    fwconn *c = ud;
    int rc = tt_stream_open_feed(c->open, data, len);
    if (rc < 0) {
        tt_info("c%llu %s: cannot send early data: %s", (unsigned long long)l->id, c->peer,
                uv_strerror(rc));
        tt_stream_open_cancel(c->open);
        tt_link_abort(l, NULL, NULL);
        free(c);
    } else if (rc > 0) {
        tt_link_read_stop(l);
    }
}

static void early_eof(tt_link *l, void *ud)
{
    fwconn *c = ud;
    tt_link_read_stop(l);
    c->app_eof = true;
    tt_debug("c%llu %s: half-closed while the stream opens", (unsigned long long)l->id, c->peer);
}

static void early_error(tt_link *l, void *ud, int err)
{
    fwconn *c = ud;
    (void)err;
    tt_stream_open_cancel(c->open);
    tt_link_close(l, NULL, NULL);
    free(c);
}

static const tt_link_handler early_handler = {early_data, early_eof, early_error, NULL};

void tt_forward_conn_start(const tt_entry_cfg *cfg, tt_link *app, const tt_target *dest)
{
    fwconn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        tt_link_close(app, NULL, NULL);
        return;
    }
    c->app = app;
    c->cfg = cfg;
    c->dest = *dest;
    tt_link_peer(app, c->peer, sizeof c->peer);
    if (tt_stream_open_start(cfg->carrier, &c->dest, NULL, 0, cfg->open_timeout_ms, on_opened, c,
                             &c->open) < 0) {
        tt_link_close(app, NULL, NULL);
        free(c);
        return;
    }
    tt_link_set_handler(app, &early_handler, c);
    if (tt_link_read_start(app) < 0)
        early_error(app, c, UV_EIO);
}

static void on_accept(void *ud, tt_link *app)
{
    tt_forward *fw = ud;
    tt_forward_conn_start(fw->cfg, app, &fw->dest);
}

int tt_forward_entry_start(uv_loop_t *loop, const tt_hostport *hp, tt_forward *fw,
                           tt_tcp_listener **out, const char **why)
{
    int rc = tt_tcp_listen(loop, hp->host, hp->port, on_accept, fw, out);
    if (rc < 0)
        *why = rc == UV_EINVAL ? "the listen address must be an IP address" : uv_strerror(rc);
    return rc;
}
