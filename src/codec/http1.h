/* HTTP/1.1 heads (RFC 9112), sans-I/O: a bounded parser for request and
 * response heads, helpers over the parsed header fields, request-body
 * framing (Content-Length, a chunked-body skipper), HTTP dates, and the text
 * helpers that answers are built with. What a stock nginx answers (the web
 * site a tt server shows to whoever is not a tunnel client) is built on
 * this in src/decoy/nginx.h.
 *
 * Parsing rules (strict where RFC 9112 says a recipient must be):
 * - A head is at most TT_HTTP_HEAD_MAX bytes including the empty line that
 *   ends it, with at most TT_HTTP_HEADERS_MAX field lines.
 * - Lines end with CRLF or with a bare LF. RFC 9112 section 2.2 allows a
 *   recipient to take a lone LF as a line end, nginx does, and answering such
 *   a request with 400 would set tt apart from it. A CR anywhere else (a bare
 *   CR) is refused: that is where the smuggling ambiguities are.
 * - Empty lines before a request line are skipped (RFC 9112 section 2.2; a
 *   client may send a CRLF after a body). They count towards the limit.
 * - Request line: method SP request-target SP HTTP-version, single spaces.
 *   The method is upper-case letters, '_' and '-', as nginx takes it (a
 *   lower-case "get" is refused at its first byte, as by nginx); the
 *   target is visible ASCII; the version is
 *   HTTP/1.0 or HTTP/1.1. Status line: HTTP-version SP 3DIGIT, then SP and a
 *   reason phrase (which may be empty or, leniently, absent altogether).
 * - Field lines: a token name, the colon right after it (no whitespace
 *   before the colon), the value with surrounding spaces and tabs trimmed.
 *   Values hold visible ASCII, obs-text (0x80-0xFF), spaces and tabs: no
 *   NUL, CR, LF or other control bytes. A line starting with whitespace
 *   (obs-fold) is refused.
 * - Malformed input is refused as soon as a complete line shows it, and a
 *   partial request line as soon as its prefix cannot become valid, so that
 *   e.g. a TLS ClientHello gets its 400 at once, as from nginx, instead of
 *   after a timeout. */
#ifndef TT_CODEC_HTTP1_H
#define TT_CODEC_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_HTTP_HEAD_MAX 8192
#define TT_HTTP_HEADERS_MAX 64

/* nginx's internal status for "Request Header Or Cookie Too Large": sent on
 * the wire as 400 with its own page (see tt_http_error_page). */
#define TT_HTTP_STATUS_HEADER_TOO_LARGE 494

/* A piece of the caller's buffer; not NUL-terminated. */
typedef struct tt_http_str {
    const char *p;
    size_t len;
} tt_http_str;

typedef struct tt_http_header {
    tt_http_str name;
    tt_http_str value; /* without leading or trailing spaces and tabs */
} tt_http_header;

/* A parsed head. Every tt_http_str points into the buffer that was parsed,
 * which must outlive the use of this struct. */
typedef struct tt_http_head {
    size_t head_len; /* bytes of the head, up to and including its empty line */
    int minor;       /* 0 or 1: HTTP/1.MINOR */
    /* Requests. */
    tt_http_str method;
    tt_http_str target;
    /* Responses: the status code. After a refused request: the status a
     * server answers with (400, 414 for a request line that does not fit,
     * TT_HTTP_STATUS_HEADER_TOO_LARGE for a head that does not fit or too
     * many fields, 505 for an HTTP version other than 1.0 and 1.1). */
    int status;
    tt_http_str reason;
    size_t nheaders;
    tt_http_header headers[TT_HTTP_HEADERS_MAX];
} tt_http_head;

/* Parses the request head at the start of BUF (LEN bytes). Returns 1 when a
 * complete head is there (H filled, H->head_len set; the bytes after it are
 * body or the next request), 0 when more bytes are needed (only while LEN <
 * TT_HTTP_HEAD_MAX and nothing seen so far is invalid), or -EINVAL with *WHY
 * set to a static phrase and H->status set as described above. Callers keep
 * up to TT_HTTP_HEAD_MAX bytes and call again with all of them after each
 * read; the result does not depend on how the bytes were split. */
int tt_http_parse_request(const uint8_t *buf, size_t len, tt_http_head *h, const char **why);

/* As tt_http_parse_request for a response head (no leading empty lines;
 * H->status and H->reason are set). */
int tt_http_parse_response(const uint8_t *buf, size_t len, tt_http_head *h, const char **why);

/* Whether S equals the NUL-terminated TEXT, ignoring ASCII case. */
bool tt_http_str_ieq(tt_http_str s, const char *text);

/* The first field named NAME (ignoring case), or NULL. */
const tt_http_header *tt_http_find(const tt_http_head *h, const char *name);

/* How many fields are named NAME (ignoring case): lets a caller refuse
 * duplicates such as two Content-Length or two Host fields. */
size_t tt_http_count(const tt_http_head *h, const char *name);

/* Whether the comma-separated list VALUE holds TOKEN as one of its elements
 * (ignoring case and the spaces around elements), as for Connection or
 * Upgrade. Empty elements are skipped. */
bool tt_http_list_has(tt_http_str value, const char *token);

/* tt_http_list_has over every field named NAME, as if they were joined with
 * commas (RFC 9110 section 5.3). */
bool tt_http_header_has(const tt_http_head *h, const char *name, const char *token);

/* Maximum Content-Length accepted by tt_http_content_length: 2^53 - 1 (so it
 * also fits a double, should a caller ever print it as one). */
#define TT_HTTP_CONTENT_LENGTH_MAX ((UINT64_C(1) << 53) - 1)

/* The request's Content-Length. Returns 0 when there is none (*LEN = 0), 1
 * with *LEN set when there is exactly one field of 1 to 16 digits and nothing
 * else (no sign, no spaces inside, no list) not above
 * TT_HTTP_CONTENT_LENGTH_MAX, or -EINVAL with *WHY for anything else,
 * including two Content-Length fields even when equal (nginx refuses those). */
int tt_http_content_length(const tt_http_head *h, uint64_t *len, const char **why);

enum tt_http_te {
    TT_HTTP_TE_NONE = 0,    /* no Transfer-Encoding field */
    TT_HTTP_TE_CHUNKED = 1, /* exactly "chunked" (any case), in one field */
    TT_HTTP_TE_OTHER = 2,   /* anything else: a coding nobody here decodes */
};

/* Classifies the Transfer-Encoding fields of H. A message with both a
 * Transfer-Encoding and a Content-Length must be refused by the caller
 * (RFC 9112 section 6.1 allows a server to; nginx answers 400). */
enum tt_http_te tt_http_transfer_encoding(const tt_http_head *h);

/* A chunked body skipper (RFC 9112 section 7.1): it checks the framing and
 * drops the data, keeping no bytes, so any length costs no memory. Chunk
 * extensions are skipped; trailer lines are skipped up to TT_HTTP_HEAD_MAX
 * bytes in all. Lines may end with a bare LF, as in heads. */
typedef struct tt_http_chunked {
    int state;      /* private */
    uint64_t left;  /* private: data bytes left in the chunk, or size digits */
    size_t line;    /* private: bytes of the current extension or trailer line */
    size_t trailer; /* private: trailer bytes so far */
} tt_http_chunked;

void tt_http_chunked_init(tt_http_chunked *c);

/* Feeds LEN body bytes. Returns 1 when the body ended (*USED bytes belonged to
 * it; the rest is the next message), 0 when all LEN were taken and more are
 * needed, or -EINVAL with *WHY (and *USED up to the bad byte). Calling again
 * after 1 returns 1 and takes nothing. */
int tt_http_chunked_feed(tt_http_chunked *c, const uint8_t *p, size_t len, size_t *used,
                         const char **why);

/* As tt_http_chunked_feed, but hands the data on: returns 2 when it stopped
 * after a run of chunk data, which is *DATA (pointing into P, within the
 * *USED bytes consumed); 1, 0 and -EINVAL as tt_http_chunked_feed. A caller
 * loops, feeding what follows *USED, until 0 or 1. */
int tt_http_chunked_read(tt_http_chunked *c, const uint8_t *p, size_t len, size_t *used,
                         tt_http_str *data, const char **why);

/* Collects the values of the cookies in every Cookie field of H ("a=1;
 * b=2", RFC 6265 section 4.2.1), in order, the first MAX of them, into OUT;
 * pairs without '=' are skipped. Returns how many. */
size_t tt_http_cookies(const tt_http_head *h, tt_http_str *out, size_t max);

/* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT": 29 characters. */
#define TT_HTTP_DATE_LEN 29

/* Writes T (Unix seconds; clamped to years 1970..9999) as an IMF-fixdate and
 * a NUL into OUT. Returns TT_HTTP_DATE_LEN. */
size_t tt_http_date(int64_t t, char out[TT_HTTP_DATE_LEN + 1]);

/* Parses an IMF-fixdate (exactly the format tt_http_date writes, which RFC
 * 9110 requires senders to use). Returns 0 with *T set, or -EINVAL. */
int tt_http_date_parse(tt_http_str s, int64_t *t);

/* Whether S holds only printable ASCII and is at most MAX bytes long: safe
 * to put into a head or a page as it is. */
bool tt_http_printable(const char *s, size_t max);

/* Appends formatted text to OUT at *N (CAP bytes in all), advancing *N;
 * sets *OK false, and appends nothing from then on, once it does not fit. */
__attribute__((format(printf, 5, 6))) void tt_http_put(char *out, size_t cap, size_t *n, bool *ok,
                                                       const char *fmt, ...);

#endif
