/* TCP links. Reads go into one buffer shared by every TCP link of the
 * process: libuv asks for a buffer only when a socket is readable, and the
 * contract of on_data is that the data is consumed (written on or copied)
 * before the callback returns, so one buffer serves all sockets and an idle
 * connection holds no data buffer at all.
 *
 * Writes try the socket at once (uv_try_write) and queue only the remainder,
 * as one heap block holding both the write request and the bytes. */
#include "link/tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/log.h"
#include "link/fdlimit.h"
#include "link/trim.h"

#define TT_TCP_READ_BUF (256 * 1024)

typedef struct tcp_link {
    tt_link base;
    uv_tcp_t *tcp;
    size_t pending;
    bool closing;
    bool reading;
    bool shut;
    bool provisional; /* in the shedding list (see shed_one) */
    uint8_t src_len;  /* while provisional: the peer's source (see source_of) */
    uint8_t src[8];
    struct tcp_link *prev, *next;
    tt_link_close_cb close_cb;
    void *close_ud;
} tcp_link;

/* Sockets of TCP links and of connects in progress: with the descriptors
 * open at start, how many the process holds. The number of a new descriptor
 * alone says too little: descriptors are allocated lowest first, so one
 * freed by shedding is reused by the next accept, which looks harmless. */
static int g_sockets;

/* G_SOCKETS changes by DELTA; the trimmer (link/trim.h) watches it. */
static void sockets_add(uv_loop_t *loop, int delta)
{
    g_sockets += delta;
    tt_trim_note(loop, g_sockets);
}

/* Accepted connections not yet authenticated, oldest first, from listeners
 * with shedding on: the first to go when descriptors run short. */
static tcp_link *g_prov_head, *g_prov_tail;

static void prov_remove(tcp_link *t)
{
    if (!t->provisional)
        return;
    t->provisional = false;
    if (t->prev)
        t->prev->next = t->next;
    else
        g_prov_head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        g_prov_tail = t->prev;
    t->prev = t->next = NULL;
}

static void prov_append(tcp_link *t)
{
    t->provisional = true;
    t->prev = g_prov_tail;
    t->next = NULL;
    if (g_prov_tail)
        g_prov_tail->next = t;
    else
        g_prov_head = t;
    g_prov_tail = t;
}

typedef struct tcp_wreq {
    uv_write_t req;
    tcp_link *link;
    size_t len;
    char data[];
} tcp_wreq;

static char g_read_buf[TT_TCP_READ_BUF];
static bool g_read_buf_busy;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* Never reentered: libuv reads one socket at a time and the buffer is
     * released at the end of on_read. The flag guards the assumption. */
    if (g_read_buf_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    g_read_buf_busy = true;
    *buf = uv_buf_init(g_read_buf, sizeof g_read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tcp_link *t = s->data;
    if (buf->base == g_read_buf)
        g_read_buf_busy = false;
    if (t->closing || nread == 0)
        return;
    if (nread > 0) {
        t->base.handler->on_data(&t->base, t->base.ud, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    /* Reading ends with EOF or an error; libuv stops reading by itself. */
    t->reading = false;
    uv_read_stop(s);
    if (nread == UV_EOF)
        t->base.handler->on_eof(&t->base, t->base.ud);
    else
        t->base.handler->on_error(&t->base, t->base.ud, (int)nread);
}

static void on_write(uv_write_t *req, int status)
{
    tcp_wreq *w = (tcp_wreq *)req;
    tcp_link *t = w->link;
    t->pending -= w->len;
    free(w);
    if (t->closing)
        return;
    if (status < 0) {
        t->base.handler->on_error(&t->base, t->base.ud, status);
        return;
    }
    if (t->pending == 0 && t->base.handler->on_drained)
        t->base.handler->on_drained(&t->base, t->base.ud);
}

static int tcp_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    tcp_link *t = (tcp_link *)l;
    if (t->closing || t->shut)
        return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    size_t done = 0;
    if (t->pending == 0) {
        int n = uv_try_write((uv_stream_t *)t->tcp, bufs, nbufs);
        if (n < 0 && n != UV_EAGAIN)
            return n;
        if (n > 0)
            done = (size_t)n;
    }
    if (done == total)
        return 0;
    tcp_wreq *w = malloc(sizeof *w + (total - done));
    if (w == NULL)
        return UV_ENOMEM;
    /* Copy the unsent tail of the iovec into the request's own block. */
    size_t skip = done, off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    w->link = t;
    w->len = off;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)off);
    int rc = uv_write(&w->req, (uv_stream_t *)t->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    t->pending += off;
    return 0;
}

static int tcp_read_start(tt_link *l)
{
    tcp_link *t = (tcp_link *)l;
    if (t->closing)
        return UV_EINVAL;
    if (t->reading)
        return 0;
    int rc = uv_read_start((uv_stream_t *)t->tcp, on_alloc, on_read);
    if (rc == 0)
        t->reading = true;
    return rc;
}

static void tcp_read_stop(tt_link *l)
{
    tcp_link *t = (tcp_link *)l;
    if (t->reading && !t->closing)
        uv_read_stop((uv_stream_t *)t->tcp);
    t->reading = false;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    /* A failed shutdown means the connection is already gone; the read side
     * reports that on its own, so nothing to do here. */
    free(req);
}

static int tcp_shutdown(tt_link *l)
{
    tcp_link *t = (tcp_link *)l;
    if (t->closing || t->shut)
        return 0;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req == NULL)
        return UV_ENOMEM;
    /* libuv sends every queued write before the FIN. */
    int rc = uv_shutdown(req, (uv_stream_t *)t->tcp, on_shutdown);
    if (rc < 0) {
        free(req);
        return rc;
    }
    t->shut = true;
    return 0;
}

static void on_close(uv_handle_t *h)
{
    tcp_link *t = h->data;
    free(t->tcp);
    tt_link_close_cb cb = t->close_cb;
    void *ud = t->close_ud;
    free(t);
    if (cb)
        cb(ud);
}

/* Closes, or with ABORT resets, the socket. Pending write requests complete
 * with UV_ECANCELED before on_close, and free themselves. */
static void tcp_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    tcp_link *t = (tcp_link *)l;
    if (t->closing)
        return;
    t->closing = true;
    prov_remove(t);
    sockets_add(t->base.loop, -1); /* uv_close closes the socket at once */
    t->close_cb = cb;
    t->close_ud = ud;
    /* A reset (SO_LINGER 0) drops queued data and tells the peer the stream
     * failed; fall back to a plain close if it cannot be set. */
    if (!abort || t->tcp->type != UV_TCP || uv_tcp_close_reset(t->tcp, on_close) != 0)
        uv_close((uv_handle_t *)t->tcp, on_close);
}

static void tcp_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    tcp_end(l, cb, ud, false);
}

static void tcp_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    tcp_end(l, cb, ud, true);
}

static size_t tcp_pending(const tt_link *l)
{
    return ((const tcp_link *)l)->pending;
}

static const char *tcp_peer(tt_link *l, char *buf, size_t len);

static int tcp_socket_fd(tt_link *l)
{
    /* TCP only: the relay splices kernel TCP sockets, and a Unix socket or
     * pipe under this link is another program's stdio. */
    tcp_link *t = (tcp_link *)l;
    uv_os_fd_t fd;
    if (t->closing || t->tcp->type != UV_TCP || uv_fileno((uv_handle_t *)t->tcp, &fd) != 0)
        return -1;
    return fd;
}

static const tt_link_ops tcp_ops = {
    .write = tcp_write,
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .pending = tcp_pending,
    .abort = tcp_abort,
    .peer = tcp_peer,
    .socket_fd = tcp_socket_fd,
};

static void on_close_free(uv_handle_t *h)
{
    free(h);
}

tt_link *tt_stream_link_wrap(uv_stream_t *stream)
{
    /* Every stream handle (a TCP socket, a Unix socket or pipe) reads,
     * writes and shuts down alike; only the reset and the peer's address are
     * TCP's, and those check the handle's type. */
    return tt_tcp_link_wrap((uv_tcp_t *)stream);
}

tt_link *tt_tcp_link_wrap(uv_tcp_t *tcp)
{
    tcp_link *t = calloc(1, sizeof *t);
    if (t == NULL) {
        uv_close((uv_handle_t *)tcp, on_close_free);
        return NULL;
    }
    t->base.ops = &tcp_ops;
    t->base.loop = tcp->loop;
    t->base.id = tt_link_next_id();
    t->tcp = tcp;
    sockets_add(tcp->loop, 1);
    tcp->data = t;
    /* Interactive traffic (ssh, first bytes of a request) should not wait for
     * Nagle; the relay already writes in large blocks. */
    if (tcp->type == UV_TCP)
        uv_tcp_nodelay(tcp, 1);
    return &t->base;
}

uv_tcp_t *tt_tcp_link_handle(tt_link *l)
{
    if (l->ops != &tcp_ops || ((tcp_link *)l)->tcp->type != UV_TCP)
        return NULL;
    return ((tcp_link *)l)->tcp;
}

static const char *tcp_peer(tt_link *l, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int n = sizeof ss;
    uv_tcp_t *tcp = tt_tcp_link_handle(l);
    if (tcp == NULL || uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n) != 0) {
        snprintf(buf, len, "?");
        return buf;
    }
    return tt_sockaddr_format((struct sockaddr *)&ss, buf, len);
}

/* Listener. */

struct tt_tcp_listener {
    uv_tcp_t tcp;
    tt_tcp_accept_cb cb;
    void *ud;
    bool shed; /* accepted links are provisional until tt_tcp_link_trust */
};

/* The source a connection is counted against: its IPv4 address (also when
 * IPv4-mapped), or the /64 of its IPv6 address, since one host holds a whole
 * /64. Returns the length in OUT, 0 if unknown. */
static uint8_t source_of(uv_tcp_t *tcp, uint8_t out[8])
{
    struct sockaddr_storage ss;
    int n = sizeof ss;
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n) != 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        memcpy(out, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return 4;
    }
    if (ss.ss_family != AF_INET6)
        return 0;
    const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {[10] = 0xff, 0xff};
    if (memcmp(a, mapped, sizeof mapped) == 0) {
        memcpy(out, a + 12, 4);
        return 4;
    }
    memcpy(out, a, 8);
    return 8;
}

/* How far from the oldest shed_one looks for a connection of the new one's
 * source: a bound on the work per accept whatever the flood. */
#define SHED_LOOK 64

/* Closes a connection not yet authenticated, at once: the oldest one from
 * the source SRC (SRC_LEN bytes) of the connection that needs the room,
 * among the SHED_LOOK oldest, else the oldest of all. A flood from one
 * source thus displaces itself, and a real client from elsewhere that has
 * not yet authenticated is not closed however fast the flood comes. The
 * owner hears UV_ECONNABORTED and closes the link, which frees the
 * descriptor inside that call (uv_close closes the socket synchronously).
 * Returns whether there was one. */
static bool shed_one(const uint8_t *src, uint8_t src_len)
{
    /* An owner that cannot close at once (one waiting for a fallback dial
     * ignores errors until then) leaves the list without freeing anything;
     * then another goes, a few times at most. */
    for (int tries = 0; tries < 4; tries++) {
        tcp_link *t = g_prov_head;
        if (t == NULL)
            return false;
        int look = 0;
        for (tcp_link *u = g_prov_head; u != NULL && look < SHED_LOOK && src_len > 0;
             u = u->next, look++) {
            if (u->src_len == src_len && memcmp(u->src, src, src_len) == 0) {
                t = u;
                break;
            }
        }
        prov_remove(t);
        if (t->reading) {
            uv_read_stop((uv_stream_t *)t->tcp);
            t->reading = false;
        }
        t->base.handler->on_error(&t->base, t->base.ud, UV_ECONNABORTED);
        if (t->closing)
            return true;
    }
    return false;
}

void tt_tcp_link_trust(tt_link *l)
{
    /* Wrappers keep their lower link's id. An authenticating connection is
     * nearly always among the newest, so the walk starts there. */
    for (tcp_link *t = g_prov_tail; t != NULL; t = t->prev) {
        if (t->base.id == l->id) {
            prov_remove(t);
            return;
        }
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    tt_tcp_listener *ls = server->data;
    if (status < 0) {
        tt_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    uv_tcp_t *c = malloc(sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(server->loop, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, on_close_free);
        return;
    }
    /* Short of descriptors, an unauthenticated connection makes room for
     * this one, or this one goes: the reserve stays for the connects of the
     * clients being served, and the process never meets EMFILE at accept,
     * where libuv closes the waiting connections silently. */
    uv_os_fd_t fd;
    uint8_t src[8];
    uint8_t src_len = ls->shed ? source_of(c, src) : 0;
    if (uv_fileno((uv_handle_t *)c, &fd) == 0 && tt_fd_short(fd, g_sockets)) {
        if (shed_one(src, src_len)) {
            tt_fd_report(server->loop, TT_FD_SHED);
        } else {
            tt_fd_report(server->loop, TT_FD_REFUSED);
            uv_close((uv_handle_t *)c, on_close_free);
            return;
        }
    }
    tt_link *l = tt_tcp_link_wrap(c);
    if (l == NULL)
        return;
    if (ls->shed) {
        tcp_link *t = (tcp_link *)l;
        t->src_len = src_len;
        memcpy(t->src, src, src_len);
        prov_append(t);
    }
    ls->cb(ls->ud, l);
}

void tt_tcp_listener_shed(tt_tcp_listener *ls)
{
    ls->shed = true;
}

int tt_tcp_listen(uv_loop_t *loop, const char *host, int port, tt_tcp_accept_cb cb, void *ud,
                  tt_tcp_listener **out)
{
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc != 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    if (rc != 0)
        return UV_EINVAL;
    tt_tcp_listener *ls = calloc(1, sizeof *ls);
    if (ls == NULL)
        return UV_ENOMEM;
    uv_tcp_init(loop, &ls->tcp);
    ls->tcp.data = ls;
    ls->cb = cb;
    ls->ud = ud;
    tt_fd_baseline();
    rc = uv_tcp_bind(&ls->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ls->tcp, 1024, on_connection);
    if (rc != 0) {
        uv_close((uv_handle_t *)&ls->tcp, on_close_free);
        return rc;
    }
    *out = ls;
    return 0;
}

int tt_tcp_listener_fast_open(tt_tcp_listener *ls, int qlen)
{
    uv_os_fd_t fd;
    int rc = uv_fileno((uv_handle_t *)&ls->tcp, &fd);
    if (rc != 0)
        return rc;
    if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof qlen) != 0)
        return -errno;
    return 0;
}

int tt_tcp_listener_port(const tt_tcp_listener *ls)
{
    struct sockaddr_storage ss;
    int n = sizeof ss;
    if (uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&ss, &n) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void tt_tcp_listener_close(tt_tcp_listener *ls)
{
    /* The listener struct begins with its handle, so freeing the handle
     * frees the listener. */
    uv_close((uv_handle_t *)&ls->tcp, on_close_free);
}

/* Connector. */

struct tt_tcp_connect {
    uv_connect_t req;
    uv_timer_t timer;
    uv_tcp_t *tcp;
    tt_tcp_connect_cb cb;
    void *ud;
    int result;    /* 0 or error to report once the handles are closed */
    int open;      /* handles still to close before freeing */
    bool finished; /* the connect attempt has an outcome */
    bool connected;
    bool in_api;   /* inside tt_tcp_connect_start or _cancel */
    bool reported; /* the callback has run */
    bool counted;  /* the socket exists and is in g_sockets */
};

/* Reports the outcome once. The socket goes to the caller as a link; the
 * request's own memory waits for its handles to close. */
static void connect_report(tt_tcp_connect *c)
{
    if (c->reported)
        return;
    c->reported = true;
    tt_link *l = NULL;
    int status = c->result;
    if (c->connected && status == 0) {
        if (c->counted)
            sockets_add(c->tcp->loop, -1); /* the link counts it now */
        c->counted = false;
        l = tt_tcp_link_wrap(c->tcp);
        if (l == NULL)
            status = UV_ENOMEM;
    }
    c->cb(c->ud, status, l);
}

static void connect_release(tt_tcp_connect *c)
{
    if (--c->open > 0)
        return;
    connect_report(c);
    free(c);
}

static void on_connect_handle_closed(uv_handle_t *h)
{
    tt_tcp_connect *c = h->data;
    if ((uv_tcp_t *)h == c->tcp) {
        free(c->tcp);
        c->tcp = NULL;
    }
    connect_release(c);
}

static void connect_finish(tt_tcp_connect *c, int status)
{
    if (c->finished)
        return;
    c->finished = true;
    c->result = status;
    uv_close((uv_handle_t *)&c->timer, on_connect_handle_closed);
    if (status != 0) {
        if (c->counted)
            sockets_add(c->tcp->loop, -1);
        c->counted = false;
        uv_close((uv_handle_t *)c->tcp, on_connect_handle_closed);
    } else
        c->open--; /* the socket lives on as the link */
    /* From a libuv callback the outcome goes out at once; from inside this
     * module's own API calls it waits for the handles to close, so a caller
     * never sees its callback run inside its call. Waiting always would
     * cost a loop turn on every connection. */
    if (!c->in_api)
        connect_report(c);
}

static void on_connected(uv_connect_t *req, int status)
{
    tt_tcp_connect *c = req->data;
    /* A cancel or timeout already closed the socket; libuv then reports
     * UV_ECANCELED here, and the outcome is already decided. */
    if (c->finished) {
        return;
    }
    c->connected = (status == 0);
    connect_finish(c, status);
}

static void on_connect_timeout(uv_timer_t *t)
{
    connect_finish(t->data, UV_ETIMEDOUT);
}

static uint32_t connect_mark;

void tt_tcp_set_connect_mark(uint32_t mark)
{
    connect_mark = mark;
}

int tt_tcp_connect_start(uv_loop_t *loop, const struct sockaddr *sa, unsigned timeout_ms,
                         tt_tcp_connect_cb cb, void *ud, tt_tcp_connect **req)
{
    return tt_tcp_connect_start_ex(loop, sa, timeout_ms, 0, cb, ud, req);
}

int tt_tcp_connect_start_ex(uv_loop_t *loop, const struct sockaddr *sa, unsigned timeout_ms,
                            unsigned flags, tt_tcp_connect_cb cb, void *ud, tt_tcp_connect **req)
{
    tt_tcp_connect *c = calloc(1, sizeof *c);
    if (c == NULL)
        return UV_ENOMEM;
    c->tcp = malloc(sizeof *c->tcp);
    if (c->tcp == NULL) {
        free(c);
        return UV_ENOMEM;
    }
    c->cb = cb;
    c->ud = ud;
    c->req.data = c;
    /* The socket is made now (not at connect) so that options can be set;
     * if that fails (no descriptors left), connect meets the same error. */
    if (uv_tcp_init_ex(loop, c->tcp, sa->sa_family) != 0)
        uv_tcp_init(loop, c->tcp);
    c->tcp->data = c;
    if (connect_mark != 0) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)c->tcp, &fd) == 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_MARK, &connect_mark, sizeof connect_mark);
    }
    if (flags & TT_TCP_FAST_OPEN) {
        /* The SYN then carries the first write, once the kernel holds a
         * cookie from this server; connect() itself returns at once. A
         * kernel without it is not an error: the connection is ordinary. */
        uv_os_fd_t fd;
        int one = 1;
        if (uv_fileno((uv_handle_t *)c->tcp, &fd) == 0)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one);
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open = 2;
    c->in_api = true;
    int rc = uv_tcp_connect(&c->req, c->tcp, sa, on_connected);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)c->tcp, &fd) == 0) {
        c->counted = true;
        sockets_add(loop, 1);
    }
    if (rc == UV_EMFILE || rc == UV_ENFILE)
        tt_fd_report(loop, TT_FD_CONNECT);
    if (rc != 0) {
        /* Report asynchronously, as promised, through the normal path. */
        connect_finish(c, rc);
    } else if (timeout_ms > 0) {
        uv_timer_start(&c->timer, on_connect_timeout, timeout_ms, 0);
    }
    c->in_api = false;
    if (req)
        *req = c->finished ? NULL : c;
    return 0;
}

void tt_tcp_connect_cancel(tt_tcp_connect *req)
{
    req->in_api = true;
    connect_finish(req, UV_ECANCELED);
    req->in_api = false;
}
