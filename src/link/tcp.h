/* TCP links over libuv, and the listener and connector that make them. */
#ifndef TT_LINK_TCP_H
#define TT_LINK_TCP_H

#include <uv.h>

#include "link/link.h"

/* Wraps an accepted or connected uv_tcp_t that the caller allocated with
 * malloc and initialised. The link takes ownership of TCP (it closes and frees
 * it). Returns NULL on allocation failure, after closing TCP. */
tt_link *tt_tcp_link_wrap(uv_tcp_t *tcp);

/* As tt_tcp_link_wrap for any stream handle (a Unix socket, a pipe), which
 * the caller allocated with malloc and initialised. */
tt_link *tt_stream_link_wrap(uv_stream_t *stream);

/* The uv_tcp_t under a TCP link, for socket options; NULL for other links. */
uv_tcp_t *tt_tcp_link_handle(tt_link *l);

typedef struct tt_tcp_listener tt_tcp_listener;

/* Called with each accepted connection as a link the callee now owns. */
typedef void (*tt_tcp_accept_cb)(void *ud, tt_link *link);

/* Binds and listens on HOST:PORT (an IP literal; use "::" or "0.0.0.0" for
 * any). On success *OUT is set and 0 returned; else a negative libuv code. */
int tt_tcp_listen(uv_loop_t *loop, const char *host, int port, tt_tcp_accept_cb cb, void *ud,
                  tt_tcp_listener **out);

/* Accepts TCP Fast Open connections (data in the SYN) with a queue of QLEN
 * pending ones. The kernel must allow it (net.ipv4.tcp_fastopen bit 2).
 * Returns 0 or a negative errno. */
int tt_tcp_listener_fast_open(tt_tcp_listener *ls, int qlen);

/* Turns shedding on: connections accepted from LS are provisional until
 * their owner calls tt_tcp_link_trust. When descriptors run short
 * (link/fdlimit.h), each new connection first closes a provisional one of
 * the process (the oldest from its own source, else the oldest), whose owner
 * gets on_error UV_ECONNABORTED and must close it; with none left the new
 * connection is refused. Listeners without
 * shedding (the client's) only refuse. */
void tt_tcp_listener_shed(tt_tcp_listener *ls);

/* The connection under L (L itself, or the accepted TCP link that L wraps:
 * wrappers keep its id) has authenticated: it is never shed. Anything else
 * is ignored. */
void tt_tcp_link_trust(tt_link *l);

/* The port actually bound (useful with port 0). */
int tt_tcp_listener_port(const tt_tcp_listener *ls);

/* Stops listening; memory is freed asynchronously. */
void tt_tcp_listener_close(tt_tcp_listener *ls);

typedef struct tt_tcp_connect tt_tcp_connect;

/* STATUS is 0 with LINK set, or a negative libuv code with LINK NULL
 * (UV_ETIMEDOUT after TIMEOUT_MS, UV_ECANCELED after tt_tcp_connect_cancel). */
typedef void (*tt_tcp_connect_cb)(void *ud, int status, tt_link *link);

/* Connects to the resolved address SA within TIMEOUT_MS (0 = no limit). The
 * callback runs exactly once, never from inside this call. *REQ (may be NULL)
 * receives a handle valid until the callback runs. */
int tt_tcp_connect_start(uv_loop_t *loop, const struct sockaddr *sa, unsigned timeout_ms,
                         tt_tcp_connect_cb cb, void *ud, tt_tcp_connect **req);

/* Flags of tt_tcp_connect_start_ex. */
#define TT_TCP_FAST_OPEN 1u /* TCP Fast Open: data in the SYN when the kernel has a cookie */

/* As tt_tcp_connect_start, with FLAGS. */
int tt_tcp_connect_start_ex(uv_loop_t *loop, const struct sockaddr *sa, unsigned timeout_ms,
                            unsigned flags, tt_tcp_connect_cb cb, void *ud, tt_tcp_connect **req);

/* Aborts a pending connect: its callback runs with UV_ECANCELED. */
void tt_tcp_connect_cancel(tt_tcp_connect *req);

#endif
