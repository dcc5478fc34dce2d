/* The HTTP streaming carriers' wire format (http://, https://;
 * docs/HTTP.md), sans-I/O: randomness and time are passed in.
 *
 * A tunnel is one long GET whose response body carries the server's
 * bytes (downstream), and POSTs with bodies of bounded length that carry
 * the client's bytes (upstream), all to the configured path, so that any
 * HTTP/1.1 front end (nginx with proxy_buffering off, a CDN) passes them.
 * Every request carries a token in a session cookie, as the WebSocket
 * carriers' upgrade does (codec/wshs.h):
 *
 *   TOKEN  = base64url, without padding, of NONCE || SEALED || MAC || PAD
 *   NONCE  = 16 random bytes, fresh for every request
 *   SEALED = PLAIN xor the first 24 bytes of HMAC-SHA256(KEY, "tt-http1 mask" || NONCE)
 *   PLAIN  = TIME (8, Unix seconds) || ID (8) || SEQ (4) || KIND (1) || FLAGS (1) || 0 0
 *   MAC    = the first 16 bytes of
 *            HMAC-SHA256(KEY, "tt-http1" || NONCE || PLAIN || PAD_LEN || PAD || PATH)
 *   PAD    = 0 to TT_HTS_PAD_MAX random bytes; PAD_LEN its length in one byte
 *
 * ID names the tunnel (chosen by the client for its GET), SEQ numbers its
 * POSTs from 0, KIND is 1 for the GET and 2 for a POST, FLAGS bit 0 (FIN)
 * marks the POST after whose body the client's stream ends. Integers are
 * big-endian. Every byte of the token is random to whoever lacks KEY.
 *
 * The GET's response body is a sequence of records, so that a cut stream
 * is told from a finished one whatever the front end does to the HTTP
 * framing (re-chunking, or a body that ends with the connection):
 *
 *   RECORD = TYPE (1) || LEN (3, big-endian) || LEN bytes
 *   TYPE 0: data; 1: the end of the server's stream (LEN 0); 2: padding
 *   (ignored). Any other type is an error. */
#ifndef TT_CODEC_HTS_H
#define TT_CODEC_HTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/http1.h"

#define TT_HTS_NONCE_LEN 16
#define TT_HTS_PLAIN_LEN 24
#define TT_HTS_MAC_LEN 16
#define TT_HTS_PAD_MAX 48
#define TT_HTS_RAW_MIN (TT_HTS_NONCE_LEN + TT_HTS_PLAIN_LEN + TT_HTS_MAC_LEN)
#define TT_HTS_RAW_MAX (TT_HTS_RAW_MIN + TT_HTS_PAD_MAX)
#define TT_HTS_TOKEN_MIN 75  /* base64url of the shortest token */
#define TT_HTS_TOKEN_MAX 139 /* ... and of the longest */
#define TT_HTS_ID_LEN 8
#define TT_HTS_COOKIES_MAX 16

enum tt_hts_kind {
    TT_HTS_GET = 1,
    TT_HTS_POST = 2,
};

#define TT_HTS_FIN 0x01

/* What a token says. */
typedef struct tt_hts_token {
    uint8_t nonce[TT_HTS_NONCE_LEN];
    uint64_t time;
    uint8_t id[TT_HTS_ID_LEN];
    uint32_t seq;
    uint8_t kind;  /* enum tt_hts_kind */
    uint8_t flags; /* TT_HTS_FIN */
} tt_hts_token;

/* Writes the token for T under KEY with PAD_LEN (at most TT_HTS_PAD_MAX)
 * bytes of PAD and PATH into OUT, NUL-terminated. Returns its length, or
 * -EINVAL (PAD_LEN too large), -EIO (no HMAC-SHA256). */
int tt_hts_token_make(const uint8_t key[32], const tt_hts_token *t, const uint8_t *pad,
                      size_t pad_len, const char *path, char out[TT_HTS_TOKEN_MAX + 1]);

/* Checks the token TEXT (LEN bytes) for KEY and PATH at server time NOW
 * (seconds), allowing WINDOW_S of clock difference. Returns 0 with *T
 * filled, or -EINVAL with *WHY (not a token: wrong length, alphabet, a
 * reserved byte or an unknown kind), -EACCES (wrong MAC: another key, path
 * or a changed byte), -ETIMEDOUT (time outside the window), -EIO. */
int tt_hts_token_check(const uint8_t key[32], const char *text, size_t len, const char *path,
                       uint64_t now, uint64_t window_s, tt_hts_token *t, const char **why);

/* The client's requests, a desktop Chrome's fetch, header for header.
 * HOST is the Host value, ORIGIN the page's origin, PATH the target,
 * COOKIE "name=value" or NULL. The GET asks for an event stream
 * (Accept: text/event-stream) and no content coding, so that no front end
 * compresses it; the POST head announces LEN body bytes. Return the length,
 * or 0 when it does not fit or a value is not printable ASCII. */
size_t tt_hts_get_request(char *out, size_t cap, const char *host, const char *path,
                          const char *cookie);
size_t tt_hts_post_head(char *out, size_t cap, const char *host, const char *origin,
                        const char *path, const char *cookie, uint64_t len);

/* The server's answers, as nginx passing on an upstream's: the GET's 200
 * head (chunked for HTTP/1.1, else a body that ends with the connection),
 * and a POST's 200 with an empty body (CLOSE: Connection: close, for an
 * HTTP/1.0 request). NOW is the Date. Return the length, or 0. */
size_t tt_hts_down_head(char *out, size_t cap, int64_t now, bool chunked);
size_t tt_hts_post_answer(char *out, size_t cap, int64_t now, bool close);

/* Whether a request is for the carrier at all: PATH (compared up to any
 * '?'), GET or POST. Returns the kind it claims, or 0 (the web site
 * answers). Its cookies go into COOKIES (at most TT_HTS_COOKIES_MAX),
 * their number into *N. */
int tt_hts_server_check(const tt_http_head *req, const char *path, tt_http_str *cookies, size_t *n);

/* Checks the client's view of the GET's answer: 200, no content coding,
 * and how the body is framed (*CHUNKED, else it ends with the
 * connection; a Content-Length is refused: the stream has no length).
 * Returns 0 or -EPROTO with *WHY. */
int tt_hts_down_check(const tt_http_head *resp, bool *chunked, const char **why);

#define TT_HTS_REC_HDR 4
#define TT_HTS_REC_MAX 0xFFFFFF

enum tt_hts_rec_type {
    TT_HTS_REC_DATA = 0,
    TT_HTS_REC_END = 1,
    TT_HTS_REC_PAD = 2,
};

/* Writes a record header of TYPE and LEN (at most TT_HTS_REC_MAX) into H. */
void tt_hts_rec_header(uint8_t h[TT_HTS_REC_HDR], unsigned type, size_t len);

/* The incremental record reader. All fields are private. */
typedef struct tt_hts_rec {
    uint8_t hdr[TT_HTS_REC_HDR];
    size_t have;
    unsigned type;
    size_t left; /* bytes of the current record still to come */
    bool in_body;
    bool ended; /* the end record was read */
} tt_hts_rec;

void tt_hts_rec_init(tt_hts_rec *r);

/* Reads from P (LEN bytes): returns 1 with *DATA the next data bytes
 * (pointing into P), 2 at the end record, 0 when all LEN bytes were taken
 * without either, or -EPROTO with *WHY (an unknown type, bytes after the
 * end, a non-empty end record). *USED is what was consumed; call again
 * with the rest. */
int tt_hts_rec_read(tt_hts_rec *r, const uint8_t *p, size_t len, size_t *used, tt_http_str *data,
                    const char **why);

#endif
