/* TLS contexts for the tls:// and wss:// carriers: one per listener or per
 * configured server, built once from the command line's options and shared by
 * every connection (src/link/tls.h). All policy lives here (versions, suites,
 * verification, pinning, ALPN, session tickets); the link only moves bytes.
 *
 * Policy: a server takes TLS 1.3, or TLS 1.2 with ECDHE AEAD suites only,
 * renegotiation off, session tickets on. A client is set up as curl sets
 * up the same OpenSSL, so that its ClientHello is curl's (OpenSSL's default
 * versions and suites: the server chooses). A client verifies the server against
 * the system CAs (or --ca FILE) and the name it was given, or accepts exactly
 * one certificate by its SHA-256 fingerprint (--pin), or, only when asked,
 * anything (--insecure-skip-verify). Failures return -EINVAL (or -ENOMEM) and
 * point *WHY (when WHY is not NULL) at a static sentence for the user. */
#ifndef TT_CORE_TLSCTX_H
#define TT_CORE_TLSCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#define TT_TLS_FP_LEN 32  /* a SHA-256 fingerprint */
#define TT_TLS_FP_TEXT 96 /* its text, "AB:CD:...:EF", with the NUL */
#define TT_TLS_SESSIONS 4 /* sessions a client context keeps for resumption */
#define TT_TLS_DEFAULT_NAME "localhost"

typedef struct tt_tls_server_opts {
    /* PEM files: the certificate (followed by its chain, if any) and its
     * unencrypted private key. Both NULL: a self-signed certificate for NAME
     * (src/core/selfsigned.h), kept in STATE_DIR (NULL: made anew). */
    const char *cert_file;
    const char *key_file;
    const char *state_dir;
    /* The self-signed certificate's subjectAltName (a dNSName, or an
     * iPAddress for an IP literal); NULL: TT_TLS_DEFAULT_NAME. */
    const char *name;
    /* Protocols the server accepts, comma-separated in its order of
     * preference; NULL: nginx's "http/1.1,http/1.0,http/0.9"; "": no ALPN.
     * A client that offers no ALPN connects with no protocol selected; one
     * that offers only other protocols is refused with the fatal alert
     * no_application_protocol (120), as nginx refuses it. */
    const char *alpn;
} tt_tls_server_opts;

typedef struct tt_tls_client_opts {
    const char *ca_file; /* PEM trust anchors instead of the system's; NULL: system */
    /* The server certificate's SHA-256 fingerprint in hex, with or without
     * colons, any case. It replaces CA and name verification: exactly that
     * certificate is accepted. The safe way to reach a self-signed server. */
    const char *pin;
    /* Accept any certificate. The caller must log a loud warning. */
    bool insecure_skip_verify;
    /* Protocols offered, comma-separated ("http/1.1"); NULL or "": none. */
    const char *alpn;
} tt_tls_client_opts;

typedef struct tt_tls_ctx tt_tls_ctx;

/* Builds a server context. Returns 0 with *OUT set, or -EINVAL/-ENOMEM with
 * *WHY set. */
int tt_tls_server_ctx_new(const tt_tls_server_opts *o, tt_tls_ctx **out, const char **why);

/* Builds a client context; it keeps the most recent sessions it was given
 * (TT_TLS_SESSIONS, each used once) and offers one to the next connection to
 * the same name. Returns 0 with *OUT set, or -EINVAL/-ENOMEM with *WHY set. */
int tt_tls_client_ctx_new(const tt_tls_client_opts *o, tt_tls_ctx **out, const char **why);

/* Client: offer the protocols LIST (as in tt_tls_client_opts.alpn) to
 * connections made from now on. Returns 0 or -EINVAL. */
int tt_tls_ctx_set_alpn(tt_tls_ctx *c, const char *list);

/* Drops the caller's reference. Links made from C hold their own, so C may
 * be freed while they live; the memory goes with the last of them. */
void tt_tls_ctx_free(tt_tls_ctx *c);

/* The OpenSSL context, for settings this module does not offer (tests cap
 * the version with it). Changes apply to links made afterwards. */
SSL_CTX *tt_tls_ctx_ssl_ctx(tt_tls_ctx *c);

bool tt_tls_ctx_is_server(const tt_tls_ctx *c);
/* Client: verification is off (--insecure-skip-verify). */
bool tt_tls_ctx_insecure(const tt_tls_ctx *c);
/* Client: the server is checked by fingerprint (--pin). */
bool tt_tls_ctx_pinned(const tt_tls_ctx *c);
/* Server: the certificate is self-signed, made by tt. */
bool tt_tls_ctx_self_signed(const tt_tls_ctx *c);

/* Server with a self-signed certificate: where it came from (an enum
 * tt_selfsigned_origin), with *PATH the file it is kept in ("" when none)
 * and *WHY, when it could not be saved there, why (else NULL). 0 for a
 * certificate from --cert. */
int tt_tls_ctx_self_signed_origin(const tt_tls_ctx *c, const char **path, const char **why);

/* Server: the SHA-256 fingerprint text of its certificate (the value for a
 * client's --pin); client: "". */
const char *tt_tls_ctx_fingerprint(const tt_tls_ctx *c);

/* Parses a --pin value: 64 hex digits, optionally with a colon between each
 * pair, any case. Returns 0 or -EINVAL. */
int tt_tls_parse_pin(const char *text, uint8_t out[TT_TLS_FP_LEN]);

/* Formats a fingerprint as upper-case hex pairs joined by colons, as
 * `openssl x509 -fingerprint -sha256` prints it. */
void tt_tls_fingerprint_text(const uint8_t fp[TT_TLS_FP_LEN], char out[TT_TLS_FP_TEXT]);

/* The SHA-256 of CERT's DER encoding, raw and as text (either may be NULL).
 * Returns 0 or -EINVAL. */
int tt_tls_cert_fingerprint(X509 *cert, uint8_t raw[TT_TLS_FP_LEN], char text[TT_TLS_FP_TEXT]);

/* The fingerprint text of the first certificate in the PEM file PATH.
 * Returns 0, or -EINVAL with *WHY set. */
int tt_tls_fingerprint_file(const char *path, char out[TT_TLS_FP_TEXT], const char **why);

/* NAME without IPv6 brackets: BUF (LEN bytes) holds the copy when there
 * were brackets; otherwise NAME itself is returned. */
const char *tt_tls_bare_name(const char *name, char *buf, size_t len);

/* True when NAME is an IPv4 or IPv6 literal (brackets allowed): verified as
 * an address, and never sent as SNI. */
bool tt_tls_is_ip_literal(const char *name);

/* For the TLS link (src/link/tls.c). */

/* A new connection object: the server's, or a client's set up to reach NAME
 * (SNI unless an IP literal; the verified name unless pinned or insecure;
 * the key for session resumption). A verifying client needs a NAME. Returns
 * NULL on failure with *WHY set. */
SSL *tt_tls_ctx_new_ssl(tt_tls_ctx *c, const char *name, const char **why);

/* Takes a reference for a link; tt_tls_ctx_free drops it. */
void tt_tls_ctx_ref(tt_tls_ctx *c);

#endif
