/* The TLS link: TLS over any lower link (a TCP link), itself a link, so
 * WebSocket, the stream layer and the relay stack on it unchanged. OpenSSL
 * works on memory only (a BIO that reads the lower link's lent buffer and
 * gathers records for one lower write); the loop and the sockets stay tt's.
 * Policy (versions, verification, ALPN, resumption) comes from the context,
 * src/core/tlsctx.h.
 *
 * Beyond the link contract (src/link/link.h):
 * - The handshake starts in the constructor. The ready callback runs exactly
 *   once, from a loop callback, never inside the constructor: STATUS 0 when
 *   the handshake completed (the peer verified, if the context verifies),
 *   else a negative code: UV_EPROTO (handshake or verification failed),
 *   UV_ETIMEDOUT, UV_EOF (the lower link ended first) or the lower link's
 *   error. tt_tls_link_why() explains a failure. After a failure the owner
 *   closes the link; after success, failures come through on_error. Closing
 *   (or aborting) the link before the callback cancels it.
 * - The owner sets its handler before or inside the ready callback; no
 *   handler runs before the ready callback.
 * - Writes before the handshake completes are queued as plaintext and sent
 *   right after it; so is a shutdown. pending() counts that plaintext plus the
 *   ciphertext queued in the lower link (records add ~22 bytes per 16 KiB).
 * - shutdown sends close_notify after the queued data, then half-closes the
 *   lower link; reading goes on (TLS 1.3 half-close; works on 1.2 with tt
 *   peers). A received close_notify is on_eof; the lower link ending without
 *   one is on_error(UV_EPROTO): a truncated stream must not look complete.
 * - close sends close_notify first when it can (the handshake is done and no
 *   error occurred), so a close ends the stream cleanly as on TCP; abort sends
 *   nothing and aborts the lower link (the peer sees a reset).
 * - While the owner has stopped reading, the lower link is stopped too; what
 *   was already read (at most one lower read) waits in the link. */
#ifndef TT_LINK_TLS_H
#define TT_LINK_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tlsctx.h"
#include "link/link.h"

/* See above. LINK is the TLS link (the constructor's return value). */
typedef void (*tt_tls_ready_cb)(void *ud, tt_link *link, int status);

enum tt_tls_failure {
    TT_TLS_FAIL_NONE = 0,
    TT_TLS_FAIL_VERIFY,    /* the peer's certificate was refused */
    TT_TLS_FAIL_HANDSHAKE, /* the handshake failed (no TLS peer, no common parameters, alert) */
    TT_TLS_FAIL_TIMEOUT,   /* the handshake did not complete in time */
    TT_TLS_FAIL_TRANSPORT, /* the lower link failed or ended during the handshake */
    TT_TLS_FAIL_RECORD,    /* a bad record or alert after the handshake */
    TT_TLS_FAIL_TRUNCATED, /* the lower link ended without close_notify */
    TT_TLS_FAIL_LOCAL,     /* out of memory, or the lower link refused a write */
};

/* Client end over LOWER (now owned by the link, which takes a reference to
 * CTX). NAME is the server name: SNI (unless an IP literal) and, unless CTX
 * pins or skips verification, the name (or address) the certificate must
 * match; the caller passes -n NAME, else the host of the server URL.
 * TIMEOUT_MS bounds the handshake (0: no limit). Returns NULL (LOWER closed,
 * no callback) if the link cannot be made: out of memory, or a verifying CTX
 * and no NAME. */
tt_link *tt_tls_link_client(tt_link *lower, tt_tls_ctx *ctx, const char *name, unsigned timeout_ms,
                            tt_tls_ready_cb cb, void *ud);

/* Server end over LOWER (owned from now on). EARLY holds bytes already read
 * from LOWER (by a protocol sniffer), processed before anything else; they
 * are copied. As tt_tls_link_client otherwise. */
tt_link *tt_tls_link_server(tt_link *lower, tt_tls_ctx *ctx, const uint8_t *early, size_t early_len,
                            unsigned timeout_ms, tt_tls_ready_cb cb, void *ud);

/* Makes L's coming close end the connection without close_notify, as a
 * web server ends one it gave up on (a timed-out request); L must not be
 * written to any more. Nothing for another kind of link. */
void tt_tls_link_close_quietly(tt_link *l);

/* True when L is a TLS link. The functions below return false, NULL or
 * UV_EINVAL for other links. */
bool tt_tls_link_is(const tt_link *l);

/* What failed (TT_TLS_FAIL_NONE while all is well). */
enum tt_tls_failure tt_tls_link_failure(tt_link *l);

/* One line for a log explaining the failure, e.g. "certificate verify
 * failed: hostname mismatch", in BUF; returns BUF. */
const char *tt_tls_link_why(tt_link *l, char *buf, size_t len);

/* Keying material exporter (RFC 5705, RFC 8446 section 7.5) with LABEL and
 * no context: both ends of a connection get the same LEN bytes, which no one
 * else can know. Lets the carrier bind tunnel authentication to this TLS
 * connection. Only after a successful handshake. Returns 0, UV_EINVAL or
 * UV_EPROTO. */
int tt_tls_link_export(tt_link *l, const char *label, uint8_t *out, size_t len);

/* The session was resumed (no certificate exchange). */
bool tt_tls_link_resumed(tt_link *l);

/* The protocol selected by ALPN, or "" when none, in BUF; returns BUF. */
const char *tt_tls_link_alpn(tt_link *l, char *buf, size_t len);

/* Server: the name the client sent as SNI, or NULL. Valid while L lives. */
const char *tt_tls_link_sni(tt_link *l);

/* "TLSv1.3" and the cipher suite's name, for log lines (NULL before the
 * handshake). Static strings. */
const char *tt_tls_link_version(tt_link *l);
const char *tt_tls_link_cipher(tt_link *l);

/* The SHA-256 fingerprint text of the peer's certificate (kept across a
 * resumption on the client). Returns 0, or UV_EINVAL when there is none (a
 * server whose client sent no certificate, or before the handshake). */
int tt_tls_link_peer_fingerprint(tt_link *l, char out[TT_TLS_FP_TEXT]);

#endif
