/* The WebSocket opening handshake (RFC 6455 section 4) and tt's
 * authentication token, sans-I/O: randomness and time are passed in.
 *
 * The client sends
 *
 *   GET PATH HTTP/1.1
 *   Host: HOST
 *   User-Agent: UA                        (only when given)
 *   Upgrade: websocket
 *   Connection: Upgrade
 *   Sec-WebSocket-Key: base64(16 random bytes)
 *   Sec-WebSocket-Version: 13
 *   Authorization: Bearer TOKEN           (only when given)
 *
 * and the server answers 101 with Sec-WebSocket-Accept =
 * base64(SHA-1(key text || "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). A
 * request that is not exactly such an upgrade to the configured path gets
 * whatever an ordinary web server answers (the caller's choice), so the
 * endpoint cannot be told from a web site by its answers.
 *
 * The token (protocol "tt-ws1"), carried as `Authorization: Bearer TOKEN`
 * so that a reverse proxy in front passes it on unchanged:
 *
 *   TOKEN = base64url, without padding (RFC 4648 section 5), of the 40 bytes
 *           TIME || NONCE || MAC
 *   TIME  = 8 bytes: the client's Unix time in seconds, big-endian
 *   NONCE = 16 random bytes, fresh for each connection
 *   MAC   = the first 16 bytes of HMAC-SHA256(KEY, "tt-ws1" || TIME || NONCE || PATH)
 *   KEY   = the 32-byte WebSocket authentication key (derived by the caller)
 *   PATH  = the configured request path, as bytes, without any query
 *
 * TOKEN is always 54 characters from A-Z a-z 0-9 - _, and the unused low 4
 * bits of the last character are zero (canonical encoding: one token text
 * per byte string). The server accepts it when the text is canonical, |TIME
 * - now| <= its window, and MAC matches (compared in constant time); it then
 * remembers NONCE for at least the window (src/core/replay.h) and refuses a
 * token whose nonce it has seen. */
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
#define TT_WS_TOKEN_RAW_LEN (8 + TT_WS_NONCE_LEN + TT_WS_MAC_LEN)
#define TT_WS_TOKEN_LEN 54 /* base64url of the 40 raw bytes, no padding */

/* Standard base64 (with padding) of LEN bytes at IN into OUT, NUL-terminated.
 * OUT needs 4 * ((LEN + 2) / 3) + 1 bytes. Returns the text length. */
size_t tt_ws_base64(const uint8_t *in, size_t len, char *out);

/* Writes Sec-WebSocket-Accept for the key text KEY (KEY_LEN bytes, as sent)
 * and a NUL into OUT. Returns 0, or -EIO if SHA-1 is unavailable. */
int tt_ws_accept(const char *key, size_t key_len, char out[TT_WS_ACCEPT_LEN + 1]);

/* Builds the client's upgrade request into OUT (CAP bytes). HOST is the
 * Host value ("name" or "name:port"), PATH the target (starting with '/'),
 * KEY 16 random bytes, USER_AGENT and TOKEN may be NULL (header left out).
 * Returns the length, or 0 when it does not fit or a value holds a byte
 * outside printable ASCII (which could inject a header line). */
size_t tt_ws_client_request(char *out, size_t cap, const char *host, const char *path,
                            const uint8_t key[TT_WS_KEY_LEN], const char *user_agent,
                            const char *token);

/* Checks the server's answer head to a request sent with KEY: status 101,
 * HTTP/1.1, Upgrade holding "websocket", Connection holding "upgrade",
 * exactly one Sec-WebSocket-Accept equal to the expected value, and no
 * extension or subprotocol (none was offered; RFC 6455 section 4.1 says to
 * fail then). Returns 0, or -EPROTO with *WHY. */
int tt_ws_client_check(const tt_http_head *resp, const uint8_t key[TT_WS_KEY_LEN],
                       const char **why);

/* What the server learns from an upgrade request it accepts. Both point
 * into the request's buffer. */
typedef struct tt_ws_upgrade {
    tt_http_str key;   /* Sec-WebSocket-Key text (24 characters) */
    tt_http_str token; /* the Bearer token; len 0 when there is none */
} tt_ws_upgrade;

/* Checks a parsed request against the configured PATH (NUL-terminated,
 * compared with the target up to any '?'). Returns:
 *   0        an upgrade for us: method GET, HTTP/1.1, the path, Upgrade
 *            holding "websocket" and Connection holding "upgrade" (any case),
 *            exactly one Sec-WebSocket-Version "13", exactly one
 *            Sec-WebSocket-Key of canonical base64 for 16 bytes, at most one
 *            Authorization (its Bearer token in UP->token);
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

/* Writes the token for KEY, the client time NOW (Unix seconds), NONCE (16
 * fresh random bytes) and PATH into OUT (TT_WS_TOKEN_LEN characters and a
 * NUL). Returns 0, or -EIO if HMAC-SHA256 is unavailable. */
int tt_ws_token_make(const uint8_t key[TT_WS_AUTH_KEY_LEN], uint64_t now,
                     const uint8_t nonce[TT_WS_NONCE_LEN], const char *path,
                     char out[TT_WS_TOKEN_LEN + 1]);

/* Checks the token TEXT (LEN bytes, not NUL-terminated) for KEY and PATH at
 * the server time NOW, allowing WINDOW_S seconds of clock difference either
 * way. Returns 0 with the token's nonce in NONCE (for the caller's replay
 * memory), or -EINVAL with *WHY for a malformed token, -ETIMEDOUT for a time
 * outside the window, -EACCES for a wrong MAC (wrong key, path or a changed
 * byte), -EIO if HMAC-SHA256 is unavailable. */
int tt_ws_token_check(const uint8_t key[TT_WS_AUTH_KEY_LEN], const char *text, size_t len,
                      const char *path, uint64_t now, uint64_t window_s,
                      uint8_t nonce[TT_WS_NONCE_LEN], const char **why);

/* The time (Unix seconds) a token TEXT of LEN bytes says it was made, in
 * *T, for the caller's replay memory (tt_replay_covers) once
 * tt_ws_token_check has accepted it. Returns 0, or -EINVAL for a malformed
 * token. */
int tt_ws_token_time(const char *text, size_t len, uint64_t *t);

#endif
