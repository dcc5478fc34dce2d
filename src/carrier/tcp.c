/* The plain carrier: streams travel over TCP as they are, one connection per
 * stream, with the stream-open header in front. Nothing is encrypted, so the
 * server refuses to listen off loopback unless told --insecure: the user then
 * knows the traffic is readable on the way (or another layer protects it, as
 * an ssh tunnel or a VPN would). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/carrier.h"
#include "core/log.h"
#include "core/target.h"
#include "exit/dial.h"
#include "link/tcp.h"

extern const tt_carrier_type tt_carrier_tcp;

typedef struct tcp_carrier {
    tt_carrier base;
    tt_carrier_cfg cfg;
    tt_target server; /* client: where to dial */
    tt_tcp_listener *listener;
    tt_carrier_accept_cb accept_cb;
    void *accept_ud;
} tcp_carrier;

struct tt_carrier_dial {
    tt_dial *dial;
    tt_carrier_dial_cb cb;
    void *ud;
};

static int tcp_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                          const char **why)
{
    tcp_carrier *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->cfg = *cfg;
    if (tt_target_set(&c->server, cfg->url.hp.host, cfg->url.hp.port) != 0) {
        free(c);
        *why = "the server address is not a valid host";
        return -EINVAL;
    }
    c->base.type = &tt_carrier_tcp;
    c->base.loop = loop;
    *out = &c->base;
    return 0;
}

static bool is_loopback(const char *host)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(a, one, 16) == 0;
    }
    return false;
}

static void on_accept(void *ud, tt_link *link)
{
    tcp_carrier *c = ud;
    /* No carrier handshake: the link goes straight to the stream layer. */
    c->accept_cb(c->accept_ud, link);
}

static int tcp_server_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb,
                          void *ud, tt_carrier **out, const char **why)
{
    const char *host = cfg->url.hp.host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    unsigned char tmp[16];
    if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1) {
        *why = "the listen address must be an IP address (0.0.0.0, ::, 127.0.0.1, ...)";
        return -EINVAL;
    }
    if (!is_loopback(host) && !cfg->insecure) {
        *why = "tcp:// carries streams unencrypted; refusing to listen off loopback "
               "(use 127.0.0.1, or --insecure if another layer protects the traffic)";
        return -EPERM;
    }
    tcp_carrier *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->cfg = *cfg;
    c->accept_cb = cb;
    c->accept_ud = ud;
    c->base.type = &tt_carrier_tcp;
    c->base.loop = loop;
    int rc = tt_tcp_listen(loop, host, cfg->url.hp.port, on_accept, c, &c->listener);
    if (rc != 0) {
        free(c);
        *why = uv_strerror(rc);
        return rc;
    }
    tt_carrier_listener_setup(cfg, c->listener);
    if (!is_loopback(host))
        tt_warn("tcp:// server on %s: streams are NOT encrypted (--insecure)", host);
    *out = &c->base;
    return 0;
}

static void on_dialed(void *ud, uint8_t rep, int err, tt_link *link)
{
    tt_carrier_dial *req = ud;
    int status = 0;
    if (link == NULL)
        status = err != 0 ? err : UV_ECONNREFUSED;
    (void)rep;
    tt_carrier_dial_cb cb = req->cb;
    void *cud = req->ud;
    free(req);
    cb(cud, status, link);
}

static int tcp_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                    tt_carrier_dial **out)
{
    (void)t; /* the target goes in the stream header */
    tcp_carrier *c = (tcp_carrier *)base;
    tt_carrier_dial *req = calloc(1, sizeof *req);
    if (req == NULL)
        return -ENOMEM;
    req->cb = cb;
    req->ud = ud;
    tt_dial_opts opts = {.acl = NULL,
                         .timeout_ms = c->cfg.connect_timeout_ms,
                         .resolver = c->cfg.resolver,
                         .fast_open = c->cfg.fast_open};
    int rc = tt_dial_start(base->loop, &c->server, &opts, on_dialed, req, &req->dial);
    if (rc != 0) {
        free(req);
        return rc;
    }
    if (out)
        *out = req;
    return 0;
}

static void tcp_dial_cancel(tt_carrier_dial *req)
{
    if (req->dial)
        tt_dial_cancel(req->dial);
}

static const char *tcp_describe(tt_carrier *base, char *buf, size_t len)
{
    tcp_carrier *c = (tcp_carrier *)base;
    const char *host = c->cfg.url.hp.host;
    int port = c->listener ? tt_tcp_listener_port(c->listener) : c->cfg.url.hp.port;
    return tt_url_format("tcp", NULL, host, (unsigned)port, NULL, buf, len);
}

static void tcp_close(tt_carrier *base)
{
    tcp_carrier *c = (tcp_carrier *)base;
    if (c->listener)
        tt_tcp_listener_close(c->listener);
    free(c);
}

/* tcp:// has no key of its own; -k authenticates resumable sessions
 * (--resume) over it. */
static const tt_carrier_optgroup *const tcp_groups[] = {&tt_carrier_key_opts, NULL};

const tt_carrier_type tt_carrier_tcp = {
    .scheme = "tcp",
    .url_form = "tcp://HOST:PORT",
    .summary = "plain TCP, unencrypted (loopback, or inside another secure layer)",
    .groups = tcp_groups,
    .client_new = tcp_client_new,
    .server_new = tcp_server_new,
    .dial = tcp_dial,
    .dial_cancel = tcp_dial_cancel,
    .describe = tcp_describe,
    .close = tcp_close,
};
