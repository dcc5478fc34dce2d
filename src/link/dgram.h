/* The datagram lower layer, beside the byte-stream link: whole messages that
 * may be lost, duplicated or reordered, each at most max_size bytes. A UDP
 * socket is one (link/udp.c); DNS queries and answers, relayed UDP and TUN
 * packets are the messages the coming carriers move over it, with the
 * session layer's reliability on top where streams need it.
 *
 * Contract:
 * - send takes a whole datagram or refuses it: it never blocks, and a
 *   datagram that cannot be queued within the layer's bound is refused with
 *   UV_ENOBUFS (the caller treats that as a loss, as the network would);
 *   one larger than max_size is refused with UV_EMSGSIZE.
 * - on_datagram lends its bytes for the duration of the call, as a link's
 *   on_data does; FROM is the sender's address.
 * - recv_stop takes effect at once; close is asynchronous, and no handler
 *   runs after it. */
#ifndef TT_LINK_DGRAM_H
#define TT_LINK_DGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct tt_dgram tt_dgram;

typedef struct tt_dgram_handler {
    void (*on_datagram)(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                        const struct sockaddr *from);
    /* A fatal error of the layer (negative code); the owner closes it. */
    void (*on_error)(tt_dgram *d, void *ud, int err);
} tt_dgram_handler;

typedef void (*tt_dgram_close_cb)(void *ud);

typedef struct tt_dgram_ops {
    int (*send)(tt_dgram *d, const uv_buf_t *bufs, unsigned nbufs, const struct sockaddr *to);
    int (*recv_start)(tt_dgram *d);
    void (*recv_stop)(tt_dgram *d);
    size_t (*max_size)(const tt_dgram *d);
    void (*close)(tt_dgram *d, tt_dgram_close_cb cb, void *ud);
} tt_dgram_ops;

struct tt_dgram {
    const tt_dgram_ops *ops;         /* read-only */
    const tt_dgram_handler *handler; /* public: set with tt_dgram_set_handler */
    void *ud;                        /* public */
    uv_loop_t *loop;                 /* read-only */
};

static inline void tt_dgram_set_handler(tt_dgram *d, const tt_dgram_handler *h, void *ud)
{
    d->handler = h;
    d->ud = ud;
}

/* Sends one datagram made of BUFS to TO (NULL: the layer's fixed peer, for
 * a connected layer). Returns 0, UV_ENOBUFS, UV_EMSGSIZE or another
 * negative code. */
static inline int tt_dgram_send(tt_dgram *d, const uv_buf_t *bufs, unsigned nbufs,
                                const struct sockaddr *to)
{
    return d->ops->send(d, bufs, nbufs, to);
}

static inline int tt_dgram_recv_start(tt_dgram *d)
{
    return d->ops->recv_start(d);
}

static inline void tt_dgram_recv_stop(tt_dgram *d)
{
    d->ops->recv_stop(d);
}

static inline size_t tt_dgram_max_size(const tt_dgram *d)
{
    return d->ops->max_size(d);
}

static inline void tt_dgram_close(tt_dgram *d, tt_dgram_close_cb cb, void *ud)
{
    d->ops->close(d, cb, ud);
}

#endif
