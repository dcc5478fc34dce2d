/* The link: one bidirectional byte stream, whatever carries it. A TCP socket
 * is a link; later layers (TLS, WebSocket, the tt protocol, a mux stream, an
 * ssh child's stdio) are links that wrap a lower link. Entries, exits and the
 * relay speak only this interface, so any of them works over any carrier.
 *
 * Contract:
 * - Writes never block and never fail for lack of room: what cannot be sent at
 *   once is copied and queued. tt_link_pending() tells how much is queued; a
 *   producer that cares about memory (the relay) stops reading its source
 *   while that is above its bound and resumes on the drained callback.
 * - Data passed to on_data is valid only during the call; keep a copy if
 *   needed. Reading is off until read_start, and read_stop takes effect at
 *   once (no on_data after it returns).
 * - shutdown half-closes: queued data is sent first, then the write side is
 *   closed. Reading continues.
 * - close is asynchronous. It may be called from inside any callback of this
 *   or another link. After close no handler callback runs; CB (if not NULL)
 *   runs later from the loop, after which the link's memory is gone.
 * - on_error reports a fatal error (negative libuv/errno code); the owner is
 *   expected to close. on_eof reports the peer's half-close.
 */
#ifndef TT_LINK_LINK_H
#define TT_LINK_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tt_link tt_link;

typedef struct tt_link_handler {
    void (*on_data)(tt_link *l, void *ud, const uint8_t *data, size_t len);
    void (*on_eof)(tt_link *l, void *ud);
    void (*on_error)(tt_link *l, void *ud, int err);
    /* Runs when the write queue becomes empty after having held data. */
    void (*on_drained)(tt_link *l, void *ud);
} tt_link_handler;

typedef void (*tt_link_close_cb)(void *ud);

/* The next bytes of the stream in NBUFS pieces, taken exactly as one
 * on_data of their concatenation; valid only during the call. */
typedef void (*tt_link_datav_cb)(tt_link *l, void *ud, const uv_buf_t *bufs, unsigned nbufs);

typedef struct tt_link_ops {
    int (*write)(tt_link *l, const uv_buf_t *bufs, unsigned nbufs);
    int (*read_start)(tt_link *l);
    void (*read_stop)(tt_link *l);
    int (*shutdown)(tt_link *l);
    void (*close)(tt_link *l, tt_link_close_cb cb, void *ud);
    size_t (*pending)(const tt_link *l);
    /* As close, but tells the peer the stream failed (a TCP reset) instead of
     * ending it cleanly; NULL means close. */
    void (*abort)(tt_link *l, tt_link_close_cb cb, void *ud);
    /* The remote address as text, for log lines; wrappers ask their lower link. */
    const char *(*peer)(tt_link *l, char *buf, size_t len);
    /* The kernel socket that carries this link's bytes unchanged, with
     * nothing held in user space but the write queue (pending); -1 when
     * there is none. NULL means none: every wrapper transforms its bytes. */
    int (*socket_fd)(tt_link *l);
} tt_link_ops;

struct tt_link {
    const tt_link_ops *ops;         /* read-only: set by the implementation */
    const tt_link_handler *handler; /* public: set with tt_link_set_handler */
    void *ud;                       /* public: handler's context */
    uv_loop_t *loop;                /* read-only */
    uint64_t id;                    /* read-only: for log lines */
    tt_link_datav_cb on_datav;      /* public: optional, see tt_link_set_datav */
};

/* Points the link's callbacks at H with context UD. A link changes hands this
 * way, e.g. from a handshake to the relay. */
static inline void tt_link_set_handler(tt_link *l, const tt_link_handler *h, void *ud)
{
    l->handler = h;
    l->ud = ud;
    l->on_datav = NULL;
}

/* Says that the handler (set before, with the same context) also takes
 * the bytes of one read in pieces through CB. A link whose read yields its
 * bytes in pieces (the session link: the payloads of several frames,
 * separated by their headers) then hands them over in one call instead of
 * joining them into one buffer, which would cost a copy of every byte; a
 * handler that copies what it receives anyway (the mux) takes them as
 * they are. Links that do not yield pieces ignore it; a new handler
 * (tt_link_set_handler) clears it. */
static inline void tt_link_set_datav(tt_link *l, tt_link_datav_cb cb)
{
    l->on_datav = cb;
}

static inline int tt_link_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    return l->ops->write(l, bufs, nbufs);
}

/* Writes LEN bytes at DATA; see tt_link_write. */
int tt_link_write1(tt_link *l, const void *data, size_t len);

static inline int tt_link_read_start(tt_link *l)
{
    return l->ops->read_start(l);
}

static inline void tt_link_read_stop(tt_link *l)
{
    l->ops->read_stop(l);
}

static inline int tt_link_shutdown(tt_link *l)
{
    return l->ops->shutdown(l);
}

static inline void tt_link_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    l->ops->close(l, cb, ud);
}

/* Closes L so that its peer sees a failure, not an end of stream: a
 * transfer cut short upstream must not look complete downstream. */
static inline void tt_link_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    if (l->ops->abort)
        l->ops->abort(l, cb, ud);
    else
        l->ops->close(l, cb, ud);
}

static inline size_t tt_link_pending(const tt_link *l)
{
    return l->ops->pending(l);
}

/* The peer's address text (or "?") in BUF; returns BUF. */
static inline const char *tt_link_peer(tt_link *l, char *buf, size_t len)
{
    if (l->ops->peer)
        return l->ops->peer(l, buf, len);
    if (len > 0)
        buf[0] = '\0';
    return buf;
}

/* The descriptor of the kernel socket under L when L's bytes are that
 * socket's own, so that they may be moved without L (splice(2)) while L's
 * queue is empty and L is not reading; -1 otherwise. L keeps the socket. */
static inline int tt_link_socket_fd(tt_link *l)
{
    return l->ops->socket_fd ? l->ops->socket_fd(l) : -1;
}

/* A fresh id for log lines ("c17"). */
uint64_t tt_link_next_id(void);

#endif
