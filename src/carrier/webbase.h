/* What the web carriers (tls://, ws://, wss://) share: the TLS context made
 * from the options, the authentication keys derived from -k, the client's
 * connect (TCP, then TLS when the scheme has it) and the server's accept
 * (TCP, then the TLS handshake). Each carrier adds its own exchange on top:
 * tls:// a token bound to the TLS session, ws:// and wss:// the HTTP
 * upgrade. */
#ifndef TT_CARRIER_WEBBASE_H
#define TT_CARRIER_WEBBASE_H

#include <stdbool.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "carrier/children.h"
#include "core/target.h"
#include "core/tlsctx.h"
#include "link/tcp.h"

typedef struct tt_webbase tt_webbase;

/* Server: a connection whose transport is ready (TLS handshaken when the
 * carrier uses TLS), with reading stopped; the callee owns LINK. DEADLINE
 * is the loop time (uv_now) by which the first request must be whole:
 * --header-timeout after the accept, as nginx's client_header_timeout
 * (for the carrier's own check, and for the web site after it). */
typedef void (*tt_webbase_conn_cb)(tt_webbase *w, tt_link *link, uint64_t deadline);

struct tt_webbase {
    tt_carrier base;
    tt_carrier_cfg cfg;
    bool tls;         /* read-only: the scheme runs over TLS */
    tt_tls_ctx *ctx;  /* read-only: when tls */
    bool has_key;     /* read-only: -k was given */
    uint8_t auth[32]; /* read-only: the carrier's authentication key, from -k */
    tt_target server; /* read-only, client: where to connect */
    char name[256];   /* read-only, client: the TLS name (-n, else the URL's host) */
    bool h1_only;     /* client: the server chose h2 once; offer http/1.1 alone */
    /* Server. */
    tt_tcp_listener *listener;
    tt_carrier_accept_cb accept_cb;
    void *accept_ud;
    tt_webbase_conn_cb on_conn;
    /* Server: what serves a connection before it is handed on (the TLS
     * handshake here, the carrier's own exchange) and refers to W; closed
     * with W by tt_webbase_free. */
    tt_children children;
};

/* Fills W from CFG for a client or a server: the TLS context (logging the
 * server certificate's fingerprint, or warning about skipped verification)
 * and the authentication key derived from -k with INFO as HKDF's label.
 * Returns 0, or a negative code with *WHY set. */
int tt_webbase_init(tt_webbase *w, uv_loop_t *loop, const tt_carrier_type *ops,
                    const tt_carrier_cfg *cfg, bool server, bool tls, const char *info,
                    const char **why);

/* Server: listens on the URL's address and calls ON_CONN for each ready
 * connection. Returns 0, or a negative code with *WHY set. */
int tt_webbase_listen(tt_webbase *w, tt_webbase_conn_cb on_conn, const char **why);

/* Closes W's children and frees what init and listen made (not W
 * itself). */
void tt_webbase_free(tt_webbase *w);

/* The wall clock in seconds, with the test-only --clock-offset. */
uint64_t tt_webbase_now(const tt_webbase *w);

/* The same in milliseconds. */
uint64_t tt_webbase_now_ms(const tt_webbase *w);

/* "tls://127.0.0.1:443/path" for the start-up line, in BUF. */
const char *tt_webbase_describe(tt_webbase *w, char *buf, size_t len);

typedef struct tt_webbase_connect tt_webbase_connect;

/* Client: STATUS 0 with LINK (owned by the callee, ready: TLS handshaken
 * when the carrier uses TLS), else a negative code (UV_ECANCELED after
 * cancel) and LINK NULL. WHY explains a failure for the log (may be NULL). */
typedef void (*tt_webbase_connect_cb)(void *ud, int status, tt_link *link, const char *why);

/* Client: connects to the server. The callback runs exactly once, never
 * inside this call. Returns 0 or -ENOMEM. */
int tt_webbase_connect_start(tt_webbase *w, tt_webbase_connect_cb cb, void *ud,
                             tt_webbase_connect **out);

/* Client: whether LINK, just connected, may carry HTTP/1.1. The client
 * offers h2 as curl does; a front end that takes it (nginx with http2 on
 * this listener) cannot pass an HTTP/1.1 upgrade or stream on to tt. Then
 * W offers http/1.1 alone from now on, as a browser does for a WebSocket's
 * connection, and WHAT (the carrier's phrase) says so once. Returns 0 when
 * LINK speaks HTTP/1.1; 1 when LINK was closed and the caller should
 * connect again; -EPROTO with *WHY when h2 was chosen though only
 * http/1.1 was offered. */
int tt_webbase_need_h1(tt_webbase *w, tt_link *link, const char *what, const char **why);

/* Client: abandons a connect; its callback runs with UV_ECANCELED. */
void tt_webbase_connect_cancel(tt_webbase_connect *c);

#endif
