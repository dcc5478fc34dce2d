/* The query transport of the DNS tunnel's client (link/dnsc.c): how a query
 * message reaches one resolver and how the answers come back. The client
 * writes the queries, keeps their slots, deadlines and ids, and matches
 * every answer to a query by ID and question (docs/DNS.md, "Transports");
 * a transport only moves whole DNS messages, one transport per resolver:
 *
 *   udp    one datagram per message, a socket connected to the resolver
 *   tcp    RFC 7766: one connection, every message behind a two-byte
 *          length, queries pipelined, answers in any order
 *   tls    RFC 7858: the same framing inside TLS (port 853), the resolver
 *          verified as the tls:// carrier verifies its server
 *   https  RFC 8484: a POST of application/dns-message per query over one
 *          HTTP/2 connection (link/dnsq_https.c, when built)
 *
 * Contract:
 * - send takes one whole query message (at most TT_DNSQ_MSG_MAX bytes) and
 *   never blocks: a connection that is not up yet is opened, and the query
 *   waits (bounded by max_queued) until it is. It returns 0, UV_ENOBUFS
 *   when the transport's bound is reached (the query is lost, as the
 *   network would lose it), UV_EMSGSIZE, or another negative code. A
 *   query accepted is answered through on_answer, or reported lost
 *   through on_lost, or forgotten by its sender's own deadline (a UDP
 *   datagram the network dropped).
 * - on_answer lends one whole message for the duration of the call: the
 *   bytes the resolver sent, not checked beyond their framing (the client
 *   checks ID, question and everything else). It may be a duplicate, late,
 *   or unrelated: the client decides.
 * - on_lost says that every query accepted before it and not yet answered
 *   will never be: the connection that carried them closed (a resolver's
 *   idle timeout, RFC 7766 6.2.3), failed, or never came up. ERR is the
 *   reason (a negative code). WHY is NULL when the resolver closed a
 *   connection that had brought answers (its idle timeout: normal), else
 *   one line for the user: "certificate verify failed: ...", "connection
 *   refused". The next send opens a new
 *   connection (after a delay that doubles, from 100 ms to 10 s, while
 *   connections keep failing before any answer). A datagram transport
 *   never calls it.
 * - A stream transport with no query outstanding keeps its connection
 *   open until the resolver closes it; close ends it. close is
 *   asynchronous: no handler runs once it is called, CB (if not NULL) runs
 *   from the loop when the memory is gone.
 * - Handlers run from loop callbacks only, never from inside send or
 *   close; a handler may call send, and may close the transport. */
#ifndef TT_LINK_DNSQ_H
#define TT_LINK_DNSQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/tlsctx.h"

/* The largest query or answer a transport carries: DNS over TCP allows
 * 65535, but the tunnel's messages are at most 1232 bytes; 4096 is what
 * the tunnel's server takes over TCP (link/dnss.c). Longer answers are
 * skipped by the stream transports. */
#define TT_DNSQ_MSG_MAX 4096

enum tt_dnsq_kind {
    TT_DNSQ_UDP = 0,
    TT_DNSQ_TCP,
    TT_DNSQ_TLS,
    TT_DNSQ_HTTPS,
};

typedef struct tt_dnsq tt_dnsq;

typedef struct tt_dnsq_handler {
    void (*on_answer)(tt_dnsq *q, void *ud, const uint8_t *msg, size_t len);
    void (*on_lost)(tt_dnsq *q, void *ud, int err, const char *why);
} tt_dnsq_handler;

typedef void (*tt_dnsq_close_cb)(void *ud);

typedef struct tt_dnsq_ops {
    const char *name; /* "udp", "tcp", "tls", "https": for log lines */
    int (*send)(tt_dnsq *q, const uint8_t *msg, size_t len);
    void (*close)(tt_dnsq *q, tt_dnsq_close_cb cb, void *ud);
} tt_dnsq_ops;

struct tt_dnsq {
    const tt_dnsq_ops *ops;         /* read-only */
    const tt_dnsq_handler *handler; /* public: set with tt_dnsq_set_handler */
    void *ud;                       /* public */
    uv_loop_t *loop;                /* read-only */
};

/* How to reach one resolver. The client copies it per resolver with ADDR
 * set to that resolver's address. */
typedef struct tt_dnsq_cfg {
    enum tt_dnsq_kind kind;
    struct sockaddr_storage addr; /* the resolver's address and port */
    /* tls and https: the client context (src/core/tlsctx.h: --ca, --pin,
     * --insecure-skip-verify; https also its ALPN "h2"); the transport
     * takes a reference. NAME is the name verified and sent as SNI (https:
     * also the :authority); NULL: the address. */
    tt_tls_ctx *tls;
    const char *name;
    const char *path; /* https: the request path; NULL: "/dns-query" */
    /* Stream transports: bounds the connect and the TLS handshake; 0:
     * 5000 ms. */
    unsigned connect_timeout_ms;
    /* Stream transports: queries accepted and not answered, waiting for
     * the connection or on it; 0: 64 (the client's most in flight). */
    unsigned max_queued;
} tt_dnsq_cfg;

/* Opens a transport of CFG->kind (CFG and the strings it points to are
 * copied). Returns 0 with *OUT set, or a negative code with *WHY set to a
 * sentence (UV_ENOTSUP for a kind this build does not have). A stream
 * transport connects at its first send. */
int tt_dnsq_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why);

static inline void tt_dnsq_set_handler(tt_dnsq *q, const tt_dnsq_handler *h, void *ud)
{
    q->handler = h;
    q->ud = ud;
}

static inline int tt_dnsq_send(tt_dnsq *q, const uint8_t *msg, size_t len)
{
    return q->ops->send(q, msg, len);
}

static inline void tt_dnsq_close(tt_dnsq *q, tt_dnsq_close_cb cb, void *ud)
{
    q->ops->close(q, cb, ud);
}

/* The transports; tt_dnsq_open picks one by kind. Each has the contract
 * above. */
int tt_dnsq_udp_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why);
/* tcp and tls. */
int tt_dnsq_stream_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why);
/* https: CFG->tls must offer ALPN "h2"; a resolver that selects anything
 * else fails the connection (on_lost, UV_EPROTO). */
int tt_dnsq_https_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why);

#endif
