#include "stream/accept.h"

#include <stdlib.h>
#include <string.h>

#include "codec/mux.h"
#include "codec/sess.h"
#include "codec/socks5.h"
#include "codec/streamhdr.h"
#include "core/log.h"
#include "exit/dial.h"
#include "link/linger.h"
#include "link/relay.h"
#include "link/tcp.h"
#include "mux/session.h"
#include "session/server.h"

typedef struct sstream {
    tt_link *link;
    const tt_stream_server_cfg *cfg;
    tt_streamhdr_parser parser;
    tt_target target;
    tt_dial *dial;
    uv_timer_t timer;
    uint8_t *early; /* payload that came with the header */
    size_t early_len;
    int outstanding; /* link close, timer close, dial callback */
    bool have_header;
    bool closed;
    bool in_mux;     /* a stream of a mux session: no session inside it */
    bool in_session; /* the link of a resumable session: no session inside it */
    bool seen_data;  /* some byte arrived: too late to start a mux session */
    char peer[64];
} sstream;

static void ss_release(void *ud)
{
    sstream *s = ud;
    if (--s->outstanding > 0)
        return;
    free(s->early);
    free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    ss_release(h->data);
}

static void ss_close(sstream *s)
{
    if (s->closed)
        return;
    s->closed = true;
    if (s->link)
        tt_link_close(s->link, ss_release, s);
    else
        s->outstanding--;
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    if (s->dial)
        tt_dial_cancel(s->dial);
}

static void on_timeout(uv_timer_t *t)
{
    sstream *s = t->data;
    tt_info("c%llu %s: no stream header in time", (unsigned long long)s->link->id, s->peer);
    ss_close(s);
}

/* Answers a failed stream with REP and lets the link linger so the answer
 * is not lost to a reset. */
static void ss_end(sstream *s, uint8_t rep)
{
    uint8_t out[TT_STREAMREPLY_LEN];
    tt_link *link = s->link;
    s->link = NULL;
    ss_close(s);
    if (tt_link_write1(link, out, tt_streamreply_encode(rep, out)) < 0) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    tt_link_linger(link, s->cfg->handshake_timeout_ms);
}

static void on_dialed(void *ud, uint8_t rep, int err, tt_link *dest)
{
    sstream *s = ud;
    s->dial = NULL;
    s->outstanding--;
    if (s->closed) {
        if (dest)
            tt_link_close(dest, NULL, NULL);
        return;
    }
    char tbuf[TT_TARGET_STRLEN];
    tt_target_format(&s->target, tbuf, sizeof tbuf);
    if (rep != TT_S5_REP_OK) {
        tt_info("c%llu %s: %s: %s%s%s", (unsigned long long)s->link->id, s->peer, tbuf,
                tt_socks5_rep_str(rep), err ? ": " : "", err ? uv_strerror(err) : "");
        ss_end(s, rep);
        return;
    }
    tt_debug("c%llu %s: connected to %s", (unsigned long long)s->link->id, s->peer, tbuf);
    uint8_t out[TT_STREAMREPLY_LEN];
    int rc = tt_link_write1(s->link, out, tt_streamreply_encode(TT_S5_REP_OK, out));
    if (rc == 0 && s->early_len)
        rc = tt_link_write1(dest, s->early, s->early_len);
    if (rc < 0) {
        tt_link_close(dest, NULL, NULL);
        ss_close(s);
        return;
    }
    char label[TT_RELAY_LABEL_MAX];
    snprintf(label, sizeof label, "c%llu %s -> %s", (unsigned long long)s->link->id, s->peer, tbuf);
    tt_relay_opts ro = {.idle_timeout_ms = s->cfg->idle_timeout_ms, .label = label};
    tt_link *link = s->link;
    s->link = NULL;
    ss_close(s);
    tt_relay_start(link, dest, &ro);
}

static void accept_stream(tt_link *link, const tt_stream_server_cfg *cfg, bool in_mux,
                          bool in_session);

/* A connection whose first byte starts a mux preface carries a mux session,
 * each of whose streams starts with its own stream header: the server takes
 * muxed and plain connections on one listener without being told. */
typedef struct muxconn {
    tt_mux_session *session;
    const tt_stream_server_cfg *cfg;
} muxconn;

static void mux_on_stream(void *ud, tt_link *stream)
{
    muxconn *m = ud;
    accept_stream(stream, m->cfg, true, false);
}

static void mux_on_end(void *ud, int err)
{
    muxconn *m = ud;
    if (err != 0)
        tt_info("mux session ended: %s",
                tt_mux_why(m->session) ? tt_mux_why(m->session) : uv_strerror(err));
    tt_mux_close(m->session);
    free(m);
}

static void start_mux(sstream *s, const uint8_t *data, size_t len)
{
    tt_link *link = s->link;
    tt_link_read_stop(link);
    s->link = NULL;
    ss_close(s);
    muxconn *m = calloc(1, sizeof *m);
    if (m == NULL) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    m->cfg = s->cfg;
    tt_mux_cfg mc;
    tt_mux_cfg_default(&mc);
    if (s->in_session)
        mc.ping_interval_ms = 0;
    static const tt_mux_callbacks cbs = {mux_on_stream, mux_on_end};
    m->session = tt_mux_server(link, &mc, &cbs, m, data, len);
    if (m->session == NULL)
        free(m);
}

/* A connection that starts with a JOIN is a leg of a resumable session. */
static void start_session(sstream *s, const uint8_t *data, size_t len)
{
    tt_link *link = s->link;
    tt_link_read_stop(link);
    s->link = NULL;
    ss_close(s);
    if (s->cfg->sessions == NULL) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    tt_sess_server_accept(s->cfg->sessions, link, data, len);
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    sstream *s = ud;
    if (s->have_header) {
        /* Reading stopped at the header; nothing arrives here. */
        return;
    }
    if (!s->seen_data && len > 0) {
        s->seen_data = true;
        if (!s->in_mux && tt_mux_is_preface(data, 1) != 0) {
            start_mux(s, data, len);
            return;
        }
        if (!s->in_mux && !s->in_session && tt_sess_is_join(data[0])) {
            start_session(s, data, len);
            return;
        }
    }
    size_t used = 0;
    const char *why = NULL;
    int rc = tt_streamhdr_parse(&s->parser, data, len, &used, &s->target, &why);
    if (rc == 0)
        return;
    if (rc < 0) {
        tt_info("c%llu %s: bad stream header: %s", (unsigned long long)l->id, s->peer, why);
        ss_end(s, TT_S5_REP_GENERAL);
        return;
    }
    s->have_header = true;
    uv_timer_stop(&s->timer);
    tt_link_read_stop(l);
    if (len > used) {
        s->early_len = len - used;
        s->early = malloc(s->early_len);
        if (s->early == NULL) {
            ss_close(s);
            return;
        }
        memcpy(s->early, data + used, s->early_len);
    }
    if (s->cfg->has_fixed_dest) {
        s->target = s->cfg->fixed_dest;
    } else if (tt_target_is_none(&s->target)) {
        tt_info("c%llu %s: the stream names no destination (a client's -L without =DEST), and "
                "this server has no -d",
                (unsigned long long)l->id, s->peer);
        ss_end(s, TT_S5_REP_NOT_ALLOWED);
        return;
    }
    tt_dial_opts opts = {
        .acl = s->cfg->acl, .timeout_ms = s->cfg->connect_timeout_ms, .resolver = s->cfg->resolver};
    if (!s->cfg->has_fixed_dest && tt_target_is_nameserver(&s->target)) {
        if (!s->cfg->has_nameserver) {
            tt_info("c%llu %s: asks for the server's nameserver, and this server has none "
                    "(no nameserver in /etc/resolv.conf)",
                    (unsigned long long)l->id, s->peer);
            ss_end(s, TT_S5_REP_NOT_ALLOWED);
            return;
        }
        s->target = s->cfg->nameserver;
        opts.acl = &s->cfg->nameserver_acl;
    }
    if (tt_dial_start(l->loop, &s->target, &opts, on_dialed, s, &s->dial) < 0) {
        ss_end(s, TT_S5_REP_GENERAL);
        return;
    }
    s->outstanding++;
}

static void on_eof(tt_link *l, void *ud)
{
    sstream *s = ud;
    tt_debug("c%llu %s: closed before the stream header", (unsigned long long)l->id, s->peer);
    ss_close(s);
}

static void on_error(tt_link *l, void *ud, int err)
{
    sstream *s = ud;
    tt_info("c%llu %s: %s before the stream header", (unsigned long long)l->id, s->peer,
            uv_strerror(err));
    ss_close(s);
}

static const tt_link_handler accept_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drained = NULL,
};

void tt_stream_accept(tt_link *link, const tt_stream_server_cfg *cfg)
{
    accept_stream(link, cfg, false, false);
}

void tt_stream_accept_session(tt_link *link, const tt_stream_server_cfg *cfg)
{
    accept_stream(link, cfg, false, true);
}

static void accept_stream(tt_link *link, const tt_stream_server_cfg *cfg, bool in_mux,
                          bool in_session)
{
    sstream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    s->link = link;
    s->cfg = cfg;
    s->in_mux = in_mux;
    s->in_session = in_session;
    s->outstanding = 2;
    tt_streamhdr_parser_init(&s->parser);
    tt_link_peer(link, s->peer, sizeof s->peer);
    uv_timer_init(link->loop, &s->timer);
    s->timer.data = s;
    tt_link_set_handler(link, &accept_handler, s);
    if (tt_link_read_start(link) < 0) {
        ss_close(s);
        return;
    }
    if (cfg->handshake_timeout_ms)
        uv_timer_start(&s->timer, on_timeout, cfg->handshake_timeout_ms, 0);
}
