/* HTTP/1.1 heads (RFC 9112), sans-I/O: a bounded parser for request and
 * response heads, helpers over the parsed header fields, request-body
 * framing (Content-Length, a chunked-body skipper), HTTP dates, and the text
 * helpers that answers are built with. What a stock nginx answers (the web
 * site a tt server shows to whoever is not a tunnel client) is built on
 * this in src/decoy/nginx.h.
 *
 * Parsing rules (strict where RFC 9112 says a recipient must be):
 * - Request heads are bounded as nginx 1.22 bounds them with its defaults
 *   (client_header_buffer_size 1k, large_client_header_buffers 4 8k): the
 *   head is read into a first buffer of TT_HTTP_FIRST_BUF bytes; each time a
 *   buffer fills before the head ends, the line in progress (from its first
 *   byte) moves to the start of a new TT_HTTP_LINE_MAX buffer, at most
 *   TT_HTTP_LARGE_BUFS of them. So a line, its line end included, must fit
 *   in TT_HTTP_LINE_MAX bytes, and the lines must pack, in order and each
 *   whole in one buffer, into the first buffer and the large ones: a
 *   request line that cannot is refused with 414, a field line or a head
 *   that cannot with TT_HTTP_STATUS_HEADER_TOO_LARGE, at the byte where the
 *   buffer fills, as nginx does. A head is thus at most TT_HTTP_HEAD_MAX
 *   bytes. More than TT_HTTP_FIELDS_MAX field lines whose names nginx takes
 *   (letters, digits and '-') are refused as nginx refuses them
 *   (TT_HTTP_STATUS_HEADER_TOO_LARGE, when the line after the last allowed
 *   one ends). Response heads are at most TT_HTTP_RESPONSE_MAX bytes.
 * - Lines end with CRLF or with a bare LF. RFC 9112 section 2.2 allows a
 *   recipient to take a lone LF as a line end, nginx does, and answering such
 *   a request with 400 would set tt apart from it. A CR anywhere else (a bare
 *   CR) is refused: that is where the smuggling ambiguities are.
 * - Empty lines before a request line are skipped (RFC 9112 section 2.2; a
 *   client may send a CRLF after a body). As in nginx, they do not count
 *   towards the limits.
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
 * - Malformed input is refused at the first byte that shows it, so that
 *   e.g. a TLS ClientHello gets its 400 at once, as from nginx, instead of
 *   after a timeout.
 *
 * The parser is incremental: it keeps its place in a tt_http_head, so that
 * a caller that calls again after every read with the whole head so far
 * costs only the new bytes (a sender that trickles a 32 KiB head byte by
 * byte costs linear work, not quadratic). */
#ifndef TT_CODEC_HTTP1_H
#define TT_CODEC_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* nginx's client_header_buffer_size and large_client_header_buffers. */
#define TT_HTTP_FIRST_BUF 1024
#define TT_HTTP_LINE_MAX 8192
#define TT_HTTP_LARGE_BUFS 4
/* The most bytes a request head holds, leading empty lines aside. */
#define TT_HTTP_HEAD_MAX (TT_HTTP_FIRST_BUF + TT_HTTP_LARGE_BUFS * TT_HTTP_LINE_MAX)
/* The most field lines nginx takes in a request head. */
#define TT_HTTP_FIELDS_MAX 1000
/* The most bytes of a response head. */
#define TT_HTTP_RESPONSE_MAX 8192

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

/* Where a field line's pieces are, from the start of the head: kept as
 * offsets, since the caller's buffer may move between reads. */
typedef struct tt_http_field {
    uint32_t name;      /* private */
    uint16_t name_len;  /* private */
    uint16_t value;     /* private: from NAME */
    uint16_t value_len; /* private */
} tt_http_field;

/* Fields kept inside a head before it allocates room for more. */
#define TT_HTTP_FIELDS_INLINE 24

/* A head being parsed, and once complete the parsed head. The public
 * fields are valid after a parse returned 1 (and STATUS after -EINVAL);
 * their tt_http_str point into the buffer of that call, which must outlive
 * their use. A head holding more than TT_HTTP_FIELDS_INLINE fields owns
 * memory: tt_http_head_free releases it (always safe to call). */
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

    /* Private: the parser's place. */
    const char *base; /* the buffer of the last call */
    bool request;
    int rc; /* 1 or -EINVAL once decided, else 0 */
    const char *why;
    int state;           /* where in which line */
    bool cr;             /* the last byte was a CR */
    size_t pos;          /* bytes looked at */
    size_t line;         /* where the current line starts */
    size_t mark1, mark2; /* line positions: ends of method and target, colon */
    size_t method_off, method_len, target_off, target_len, reason_off, reason_len;
    size_t value_start;                 /* first non-blank byte of the value, or 0 */
    size_t value_end;                   /* after its last non-blank byte */
    bool name_ok;                       /* the name is one nginx counts */
    unsigned counted;                   /* field lines nginx counts */
    size_t buf_cap, buf_fill, buf_line; /* nginx's buffer in use */
    unsigned bufs;                      /* large buffers taken */
    tt_http_field *fields;              /* allocated, or NULL: in INLINE_FIELDS */
    size_t fields_cap;
    tt_http_field inline_fields[TT_HTTP_FIELDS_INLINE];
    uint64_t steps; /* bytes examined in all: a test's measure of work */
} tt_http_head;

/* Starts H for a request (REQUEST) or response head. H must hold no memory
 * (new, or released by tt_http_head_free). */
void tt_http_head_init(tt_http_head *h, bool request);

/* Releases what H holds; H may then be started again. */
void tt_http_head_free(tt_http_head *h);

/* Parses on: BUF (LEN bytes) holds the head from its first byte, the bytes
 * given to earlier calls first (possibly at another address) and then any
 * new ones. Returns 1 when a complete head is there (the public fields of H
 * set, H->head_len its length; the bytes after it are body or the next
 * message), 0 when more bytes are needed, or -EINVAL with *WHY set to a
 * static phrase and H->status set as described above. Once decided, calls
 * return the same. Each call costs the new bytes only; the result does not
 * depend on how the bytes were split. */
int tt_http_head_parse(tt_http_head *h, const uint8_t *buf, size_t len, const char **why);

/* Starts H, a complete request head, again for the next request on the
 * same connection, whose first byte came BODY bytes after H's head and was
 * already read with it (a pipelined request). nginx parses such a request
 * on in the buffer where the previous head ended, with the large buffers
 * that remain, so its limits differ from a fresh connection's; H keeps
 * them. (A request whose bytes came later starts as on a new connection:
 * tt_http_head_free and tt_http_head_init.) */
void tt_http_head_restart(tt_http_head *h, size_t body);

/* While H has seen only empty lines before a request line: how many of its
 * first bytes the caller may drop (they are done with), after which it
 * calls again with the head starting that much later. nginx starts its
 * buffer over when such lines fill it, so a peer may send any number of
 * them; dropping them keeps the caller's buffer bounded too. */
size_t tt_http_head_drop_lead(tt_http_head *h);

/* Field I of a parsed head (I < H->nheaders), pointing into its buffer. */
tt_http_header tt_http_header_at(const tt_http_head *h, size_t i);

/* One-shot forms: start H and parse BUF. Call tt_http_head_free after. */
int tt_http_parse_request(const uint8_t *buf, size_t len, tt_http_head *h, const char **why);
int tt_http_parse_response(const uint8_t *buf, size_t len, tt_http_head *h, const char **why);

/* Whether S equals the NUL-terminated TEXT, ignoring ASCII case. */
bool tt_http_str_ieq(tt_http_str s, const char *text);

/* Whether a field is named NAME (ignoring case); the first such into *OUT
 * (unless NULL). */
bool tt_http_find(const tt_http_head *h, const char *name, tt_http_header *out);

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
 * extensions are skipped; trailer lines are skipped up to TT_HTTP_LINE_MAX
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
