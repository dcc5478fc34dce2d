/* The WebSocket opening handshake (RFC 6455 section 4) and tt's
 * authentication token, sans-I/O: randomness and time are passed in.
 *
 * The client's request is the one a desktop Chrome sends when a page opens
 * a WebSocket, header for header and in its order (docs/PROTOCOL.md has it
 * whole): Host, Connection, Pragma, Cache-Control, its User-Agent, Upgrade,
 * Origin, Sec-WebSocket-Version, Accept-Encoding, Accept-Language, Cookie,
 * Sec-WebSocket-Key, Sec-WebSocket-Extensions (permessage-deflate offered,
 * which a server may decline, and tt's does). The token rides in the
 * cookie, where a page's session value would be: random-looking text of a
 * varying length.
 *
 * The server answers 101 with Sec-WebSocket-Accept =
 * base64(SHA-1(key text || "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). A
 * request that is not exactly such an upgrade to the configured path gets
 * whatever an ordinary web server answers (the caller's choice), so the
 * endpoint cannot be told from a web site by its answers.
 *
 * The token (protocol "tt-ws2"), a cookie's value:
 *
 *   TOKEN = base64url, without padding (RFC 4648 section 5), of
 *           NONCE || (TIME xor MASK) || MAC || PAD
 *   NONCE = 16 random bytes, fresh for each connection
 *   TIME  = 8 bytes: the client's Unix time in seconds, big-endian
 *   MASK  = the first 8 bytes of HMAC-SHA256(KEY, "tt-ws2 time" || NONCE)
 *   MAC   = the first 16 bytes of
 *           HMAC-SHA256(KEY, "tt-ws2" || NONCE || TIME || PAD_LEN || PAD || PATH)
 *   PAD   = 0 to TT_WS_PAD_MAX random bytes (the length varies); PAD_LEN
 *           its length in one byte
 *   KEY   = the 32-byte WebSocket authentication key (derived by the caller)
 *   PATH  = the configured request path, as bytes, without any query
 *
 * Every byte of it is random to whoever lacks KEY (the time is masked, so
 * tokens do not share a prefix). TOKEN is 54 to 118 characters from A-Z a-z
 * 0-9 - _, canonical (the unused low bits of the last character are zero).
 * The server accepts it when the text is canonical, |TIME - now| <= its
 * window, and MAC matches (compared in constant time); it then remembers
 * NONCE for at least the window (src/core/replay.h) and refuses a token
 * whose nonce it has seen. The cookie's name is one of a few common session
 * cookie names, fixed by KEY (tt_ws_cookie_name); the server tries the
 * value of every cookie, so the name is not a secret it checks. */
#ifndef TT_CODEC_WSHS_H
#define TT_CODEC_WSHS_H

#include <stddef.h>
#include <stdint.h>

#include "codec/http1.h"

#define TT_WS_KEY_LEN 16      /* raw Sec-WebSocket-Key bytes */
#define TT_WS_KEY_TEXT_LEN 24 /* its base64 */
#define TT_WS_ACCEPT_LEN 28   /* base64 of a SHA-1 */

#define TT_WS_AUTH_KEY_LEN 32
#define TT_WS_NONCE_LEN 16
#define TT_WS_MAC_LEN 16
#define TT_WS_PAD_MAX 48
#define TT_WS_TOKEN_RAW_MIN (TT_WS_NONCE_LEN + 8 + TT_WS_MAC_LEN)
#define TT_WS_TOKEN_RAW_MAX (TT_WS_TOKEN_RAW_MIN + TT_WS_PAD_MAX)
#define TT_WS_TOKEN_MIN 54   /* base64url of the shortest token, no padding */
#define TT_WS_TOKEN_MAX 118  /* ... and of the longest */
#define TT_WS_COOKIES_MAX 16 /* cookies of a request the server tries */

/* Standard base64 (with padding) of LEN bytes at IN into OUT, NUL-terminated.
 * OUT needs 4 * ((LEN + 2) / 3) + 1 bytes. Returns the text length. */
size_t tt_ws_base64(const uint8_t *in, size_t len, char *out);

/* Base64url without padding (RFC 4648 section 5) of LEN bytes at IN into
 * OUT, NUL-terminated (OUT needs (4 * LEN + 2) / 3 + 1 bytes). Returns the
 * text length. The tokens of the web carriers are written with it. */
size_t tt_ws_b64url(const uint8_t *in, size_t len, char *out);

/* Decodes the canonical base64url text TEXT (LEN characters, no padding,
 * zero unused bits) into exactly OUT_LEN bytes. Returns 0 or -EINVAL. */
int tt_ws_b64url_decode(const char *text, size_t len, uint8_t *out, size_t out_len);

/* HMAC-SHA256 under KEY of the N pieces P[i] (L[i] bytes) into OUT.
 * Returns 0, or -EIO if HMAC-SHA256 is unavailable. */
int tt_ws_hmac_parts(const uint8_t key[TT_WS_AUTH_KEY_LEN], const void *const *p, const size_t *l,
                     size_t n, uint8_t out[32]);

/* Writes Sec-WebSocket-Accept for the key text KEY (KEY_LEN bytes, as sent)
 * and a NUL into OUT. Returns 0, or -EIO if SHA-1 is unavailable. */
int tt_ws_accept(const char *key, size_t key_len, char out[TT_WS_ACCEPT_LEN + 1]);

/* The User-Agent the request carries: a desktop Chrome's. */
extern const char tt_ws_user_agent[];

/* Builds the client's upgrade request into OUT (CAP bytes). HOST is the
 * Host value ("name" or "name:port"), ORIGIN the page's origin
 * ("https://name"), PATH the target (starting with '/'), KEY 16 random
 * bytes, COOKIE the Cookie value ("name=value") or NULL (header left out).
 * Returns the length, or 0 when it does not fit or a value holds a byte
 * outside printable ASCII (which could inject a header line). */
size_t tt_ws_client_request(char *out, size_t cap, const char *host, const char *origin,
                            const char *path, const uint8_t key[TT_WS_KEY_LEN], const char *cookie);

/* Checks the server's answer head to a request sent with KEY: status 101,
 * HTTP/1.1, Upgrade holding "websocket", Connection holding "upgrade",
 * exactly one Sec-WebSocket-Accept equal to the expected value, and no
 * extension or subprotocol (permessage-deflate is offered only as a browser
 * offers it; a server that takes it is refused). Returns 0, or -EPROTO with *WHY. */
int tt_ws_client_check(const tt_http_head *resp, const uint8_t key[TT_WS_KEY_LEN],
                       const char **why);

/* What the server learns from an upgrade request it accepts. All point
 * into the request's buffer. */
typedef struct tt_ws_upgrade {
    tt_http_str key; /* Sec-WebSocket-Key text (24 characters) */
    /* The values of the request's cookies, in order, from every Cookie
     * header (the first TT_WS_COOKIES_MAX): the token is one of them. */
    tt_http_str cookies[TT_WS_COOKIES_MAX];
    size_t ncookies;
} tt_ws_upgrade;

/* Checks a parsed request against the configured PATH (NUL-terminated,
 * compared with the target up to any '?'). Returns:
 *   0        an upgrade for us: method GET, HTTP/1.1, the path, Upgrade
 *            holding "websocket" and Connection holding "upgrade" (any case),
 *            exactly one Sec-WebSocket-Version "13", exactly one
 *            Sec-WebSocket-Key of canonical base64 for 16 bytes (the
 *            cookies' values in UP->cookies);
 *   -ENOENT  not an upgrade to our path at all (another path, method, no
 *            Upgrade): answer as the web site;
 *   -EINVAL  an upgrade to our path that is malformed: answer as the web
 *            site too (the distinction is for logs).
 * *WHY is set on failure. The token itself is not checked here: see
 * tt_ws_token_check. */
int tt_ws_server_check(const tt_http_head *req, const char *path, tt_ws_upgrade *up,
                       const char **why);

/* Builds the 101 answer for the key text KEY into OUT (CAP bytes). With
 * SERVER (not NULL) it carries Server: SERVER and Date: NOW first, as nginx
 * passing on a WebSocket upgrade does; nothing in it is tt's own. Returns the
 * length, or 0 if it does not fit, SERVER is unsafe to print, or SHA-1 is
 * unavailable. */
size_t tt_ws_server_response(char *out, size_t cap, tt_http_str key, const char *server,
                             int64_t now);

/* The cookie name the client sends its token under, fixed by KEY. */
const char *tt_ws_cookie_name(const uint8_t key[TT_WS_AUTH_KEY_LEN]);

/* Writes the token for KEY, the client time NOW (Unix seconds), NONCE (16
 * fresh random bytes), PAD_LEN (at most TT_WS_PAD_MAX) random bytes PAD and
 * PATH into OUT, NUL-terminated. Returns its length, or -EINVAL for a
 * PAD_LEN too large, -EIO if HMAC-SHA256 is unavailable. */
int tt_ws_token_make(const uint8_t key[TT_WS_AUTH_KEY_LEN], uint64_t now,
                     const uint8_t nonce[TT_WS_NONCE_LEN], const uint8_t *pad, size_t pad_len,
                     const char *path, char out[TT_WS_TOKEN_MAX + 1]);

/* Checks the token TEXT (LEN bytes, not NUL-terminated) for KEY and PATH at
 * the server time NOW, allowing WINDOW_S seconds of clock difference either
 * way. Returns 0 with the token's nonce in NONCE and its time in *MADE (for
 * the caller's replay memory), or -EINVAL with *WHY for text that is no
 * token, -ETIMEDOUT for a time outside the window, -EACCES for a wrong MAC
 * (wrong key, path or a changed byte), -EIO if HMAC-SHA256 is unavailable. */
int tt_ws_token_check(const uint8_t key[TT_WS_AUTH_KEY_LEN], const char *text, size_t len,
                      const char *path, uint64_t now, uint64_t window_s,
                      uint8_t nonce[TT_WS_NONCE_LEN], uint64_t *made, const char **why);

#endif
