/* DNS queries over UDP (link/dnsq.h): one datagram per message, on a
 * socket connected to the resolver, so that only its datagrams arrive and
 * an ICMP error (nothing listens there) is the socket's, not another
 * resolver's. */
#include <stdlib.h>

#include "core/log.h"
#include "link/dnsq.h"
#include "link/udp.h"

typedef struct dnsq_udp {
    tt_dnsq base;
    tt_dgram *udp;
    tt_dnsq_close_cb close_cb;
    void *close_ud;
    bool closing;
} dnsq_udp;

static void on_datagram(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                        const struct sockaddr *from)
{
    (void)d, (void)from;
    dnsq_udp *u = ud;
    if (!u->closing)
        u->base.handler->on_answer(&u->base, u->base.ud, data, len);
}

static void on_udp_error(tt_dgram *d, void *ud, int err)
{
    (void)d, (void)ud;
    /* A refused datagram is a lost query; its deadline says so. */
    tt_debug("dns client: UDP: %s", uv_strerror(err));
}

static const tt_dgram_handler udp_handler = {.on_datagram = on_datagram, .on_error = on_udp_error};

static int udp_send(tt_dnsq *q, const uint8_t *msg, size_t len)
{
    dnsq_udp *u = (dnsq_udp *)q;
    if (u->closing)
        return UV_EPIPE;
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)msg, (unsigned)len);
    return tt_dgram_send(u->udp, &b, 1, NULL);
}

static void on_udp_closed(void *ud)
{
    dnsq_udp *u = ud;
    tt_dnsq_close_cb cb = u->close_cb;
    void *cud = u->close_ud;
    free(u);
    if (cb)
        cb(cud);
}

static void udp_close(tt_dnsq *q, tt_dnsq_close_cb cb, void *ud)
{
    dnsq_udp *u = (dnsq_udp *)q;
    if (u->closing)
        return;
    u->closing = true;
    u->close_cb = cb;
    u->close_ud = ud;
    tt_dgram_close(u->udp, on_udp_closed, u);
}

static const tt_dnsq_ops udp_ops = {.name = "udp", .send = udp_send, .close = udp_close};

int tt_dnsq_udp_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why)
{
    dnsq_udp *u = calloc(1, sizeof *u);
    if (u == NULL) {
        *why = "out of memory";
        return UV_ENOMEM;
    }
    bool v6 = cfg->addr.ss_family == AF_INET6;
    int rc =
        tt_udp_open(loop, v6 ? "::" : "0.0.0.0", 0, (const struct sockaddr *)&cfg->addr, &u->udp);
    if (rc == 0) {
        tt_dgram_set_handler(u->udp, &udp_handler, u);
        rc = tt_dgram_recv_start(u->udp);
        if (rc != 0)
            tt_dgram_close(u->udp, NULL, NULL);
    }
    if (rc != 0) {
        free(u);
        *why = "cannot open a UDP socket to the resolver";
        return rc;
    }
    u->base.ops = &udp_ops;
    u->base.loop = loop;
    *out = &u->base;
    return 0;
}
