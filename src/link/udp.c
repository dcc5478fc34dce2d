/* UDP datagram layers. Receives go into one buffer shared by the process,
 * as TCP links' reads do (the handler consumes a datagram before returning).
 * Sends try the socket at once and queue a copy only when it is full, within
 * a bound past which datagrams are refused, as a full network queue drops
 * them. */
#include "link/udp.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "link/dgq.h"

typedef struct udp_dgram {
    tt_dgram base;
    uv_udp_t udp;
    bool connected;
    bool closing;
    size_t queued;
    tt_dgram_close_cb close_cb;
    void *close_ud;
} udp_dgram;

typedef struct udp_send {
    uv_udp_send_t req;
    udp_dgram *u;
    size_t len;
    char data[];
} udp_send;

static char g_recv_buf[64 * 1024];
static bool g_recv_busy;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    if (g_recv_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    g_recv_busy = true;
    *buf = uv_buf_init(g_recv_buf, sizeof g_recv_buf);
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                    unsigned flags)
{
    udp_dgram *u = h->data;
    if (buf->base == g_recv_buf)
        g_recv_busy = false;
    if (u->closing || (n == 0 && from == NULL))
        return;
    if (n < 0) {
        u->base.handler->on_error(&u->base, u->base.ud, (int)n);
        return;
    }
    /* A datagram larger than the buffer arrives cut: it is not the message
     * that was sent, so it is dropped as a loss. */
    if (flags & UV_UDP_PARTIAL)
        return;
    u->base.handler->on_datagram(&u->base, u->base.ud, (const uint8_t *)buf->base, (size_t)n, from);
}

static void on_sent(uv_udp_send_t *req, int status)
{
    udp_send *s = (udp_send *)req;
    (void)status; /* a lost datagram is not an error of the layer */
    s->u->queued -= s->len;
    free(s);
}

static int udp_send_dgram(tt_dgram *d, const uv_buf_t *bufs, unsigned nbufs,
                          const struct sockaddr *to)
{
    udp_dgram *u = (udp_dgram *)d;
    if (u->closing)
        return UV_EPIPE;
    size_t total = tt_dgq_len(bufs, nbufs);
    if (total > TT_UDP_MAX_DATAGRAM)
        return UV_EMSGSIZE;
    const struct sockaddr *dest = u->connected ? NULL : to;
    if (!u->connected && to == NULL)
        return UV_EDESTADDRREQ;
    if (u->queued == 0) {
        int n = uv_udp_try_send(&u->udp, bufs, nbufs, dest);
        if (n >= 0)
            return 0;
        if (n != UV_EAGAIN)
            return n;
    }
    if (u->queued + total > TT_UDP_QUEUE_MAX)
        return UV_ENOBUFS;
    udp_send *s = malloc(sizeof *s + total);
    if (s == NULL)
        return UV_ENOBUFS;
    tt_dgq_gather((uint8_t *)s->data, bufs, nbufs);
    s->u = u;
    s->len = total;
    uv_buf_t b = uv_buf_init(s->data, (unsigned)total);
    int rc = uv_udp_send(&s->req, &u->udp, &b, 1, dest, on_sent);
    if (rc < 0) {
        free(s);
        return rc;
    }
    u->queued += total;
    return 0;
}

static int udp_recv_start(tt_dgram *d)
{
    udp_dgram *u = (udp_dgram *)d;
    if (u->closing)
        return UV_EINVAL;
    int rc = uv_udp_recv_start(&u->udp, on_alloc, on_recv);
    return rc == UV_EALREADY ? 0 : rc;
}

static void udp_recv_stop(tt_dgram *d)
{
    udp_dgram *u = (udp_dgram *)d;
    if (!u->closing)
        uv_udp_recv_stop(&u->udp);
}

static size_t udp_max_size(const tt_dgram *d)
{
    (void)d;
    return TT_UDP_MAX_DATAGRAM;
}

static void on_closed(uv_handle_t *h)
{
    udp_dgram *u = h->data;
    tt_dgram_close_cb cb = u->close_cb;
    void *ud = u->close_ud;
    free(u);
    if (cb)
        cb(ud);
}

static void udp_close(tt_dgram *d, tt_dgram_close_cb cb, void *ud)
{
    udp_dgram *u = (udp_dgram *)d;
    if (u->closing)
        return;
    u->closing = true;
    u->close_cb = cb;
    u->close_ud = ud;
    /* Queued sends complete with UV_ECANCELED before on_closed. */
    uv_close((uv_handle_t *)&u->udp, on_closed);
}

static const tt_dgram_ops udp_ops = {
    .send = udp_send_dgram,
    .recv_start = udp_recv_start,
    .recv_stop = udp_recv_stop,
    .max_size = udp_max_size,
    .close = udp_close,
};

int tt_udp_open(uv_loop_t *loop, const char *host, int port, const struct sockaddr *peer,
                tt_dgram **out)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return UV_EINVAL;
    udp_dgram *u = calloc(1, sizeof *u);
    if (u == NULL)
        return UV_ENOMEM;
    uv_udp_init(loop, &u->udp);
    u->udp.data = u;
    u->base.ops = &udp_ops;
    u->base.loop = loop;
    int rc = uv_udp_bind(&u->udp, (struct sockaddr *)&ss, 0);
    if (rc == 0 && peer != NULL) {
        rc = uv_udp_connect(&u->udp, peer);
        u->connected = rc == 0;
    }
    if (rc < 0) {
        udp_close(&u->base, NULL, NULL);
        return rc;
    }
    *out = &u->base;
    return 0;
}

int tt_udp_port(const tt_dgram *d)
{
    const udp_dgram *u = (const udp_dgram *)d;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_udp_getsockname(&u->udp, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
