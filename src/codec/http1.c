/* HTTP/1.1 head parser, body framing, dates and the text helpers of
 * answers.
 *
 * The parser works on complete lines: it finds each line end with memchr,
 * checks the line, and goes on, so one call is linear in the bytes given. A
 * caller that calls again after every read rescans what it had, which costs
 * at most TT_HTTP_HEAD_MAX bytes per read. The last, incomplete line is
 * checked as a prefix with the same code, so an invalid byte is reported as
 * soon as it arrives, with the same phrase as when the line is whole: the
 * outcome never depends on how the input was split. */
#include "codec/http1.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* --- character classes ------------------------------------------------ */

/* tchar (RFC 9110 section 5.6.2). */
static bool is_tchar(uint8_t c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte of a request method as nginx reads it: upper-case letters, '_'
 * and '-' (nginx refuses anything else at the byte it arrives, so that a
 * request that starts "get" or with random bytes gets its 400 at once,
 * before a line end). */
static bool is_method_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

/* A byte of a request target: visible ASCII. */
static bool is_target_char(uint8_t c)
{
    return c > 0x20 && c < 0x7f;
}

/* A byte of a field value or reason phrase: VCHAR, obs-text, SP or HTAB. */
static bool is_value_char(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* --- line scanning ---------------------------------------------------- */

/* Finds the line starting at S. Returns 1 when an LF comes before LIM, with
 * *END at the end of its content (before the LF, and before a CR right
 * before it) and *NEXT after the LF; else 0, with *END at LIM, or at LIM - 1
 * when the last byte is a CR that may start a CRLF. *CR is the position of
 * the first CR inside the content, or END when there is none. */
static int scan_line(const uint8_t *buf, size_t s, size_t lim, size_t *end, size_t *next,
                     size_t *cr)
{
    /* BUF may be NULL when LIM is 0: memchr must not see it then. */
    const uint8_t *lf = lim > s ? memchr(buf + s, '\n', lim - s) : NULL;
    size_t e = lf != NULL ? (size_t)(lf - buf) : lim;
    if (lf != NULL)
        *next = e + 1;
    if (e > s && buf[e - 1] == '\r')
        e--;
    *end = e;
    const uint8_t *c = e > s ? memchr(buf + s, '\r', e - s) : NULL;
    *cr = c != NULL ? (size_t)(c - buf) : e;
    return lf != NULL;
}

/* Checks "HTTP/D.D" at P (N bytes, COMPLETE or a prefix). Returns 0 (and
 * *MINOR for a complete 1.0 or 1.1), 1 for a well-formed version other than
 * 1.0/1.1 (complete only), or -EINVAL. */
static int check_version(const uint8_t *p, size_t n, bool complete, int *minor)
{
    static const char pat[] = "HTTP/D.D";
    if (n > 8 || (complete && n != 8))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (pat[i] == 'D') {
            if (p[i] < '0' || p[i] > '9')
                return -EINVAL;
        } else if (p[i] != (uint8_t)pat[i]) {
            return -EINVAL;
        }
    }
    if (!complete)
        return 0;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return 1;
    *minor = p[7] - '0';
    return 0;
}

/* Whether T is a path ("/...") or starts like an absolute URI
 * ("letters://"). */
static bool origin_or_absolute(tt_http_str t)
{
    if (t.len > 0 && t.p[0] == '/')
        return true;
    size_t i = 0;
    while (i < t.len && ((t.p[i] >= 'a' && t.p[i] <= 'z') || (t.p[i] >= 'A' && t.p[i] <= 'Z')))
        i++;
    return i > 0 && t.len - i >= 3 && memcmp(t.p + i, "://", 3) == 0;
}

/* Checks the request line P (N bytes; COMPLETE, or a prefix of one) and
 * fills H's method, target and minor version when complete. */
static int check_request_line(const uint8_t *p, size_t n, bool complete, tt_http_head *h,
                              const char **why)
{
    size_t i = 0;
    while (i < n && is_method_char(p[i]))
        i++;
    if (i == n && !complete)
        return 0;
    if (i == 0 || i == n || p[i] != ' ') {
        *why = "bad method in request line";
        goto bad;
    }
    h->method = (tt_http_str){(const char *)p, i};

    size_t t = ++i;
    while (i < n && is_target_char(p[i]))
        i++;
    if (i == n && !complete)
        return 0;
    if (i == t || i == n || p[i] != ' ') {
        *why = "bad request target";
        goto bad;
    }
    h->target = (tt_http_str){(const char *)p + t, i - t};

    i++;
    int rc = check_version(p + i, n - i, complete, &h->minor);
    if (rc < 0) {
        *why = "bad HTTP version in request line";
        goto bad;
    }
    if (rc == 1) {
        *why = "unsupported HTTP version";
        /* nginx refuses a target that is neither a path nor an absolute URI
         * before it looks at the version ("PRI * HTTP/2.0" gets a 400). */
        h->status = origin_or_absolute(h->target) ? 505 : 400;
        return -EINVAL;
    }
    return 0;
bad:
    h->status = 400;
    return -EINVAL;
}

/* Checks the status line P (N bytes; COMPLETE or a prefix) and fills H's
 * status, reason and minor version when complete. */
static int check_status_line(const uint8_t *p, size_t n, bool complete, tt_http_head *h,
                             const char **why)
{
    size_t vn = n < 8 ? n : 8;
    int minor = 0;
    int rc = check_version(p, vn, complete || n >= 8, &minor);
    if (rc != 0) {
        *why = rc < 0 ? "bad HTTP version in status line" : "unsupported HTTP version";
        return -EINVAL;
    }
    if (n > 8 && p[8] != ' ') {
        *why = "bad status line";
        return -EINVAL;
    }
    int status = 0;
    for (size_t i = 9; i < 12 && i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            *why = "bad status code";
            return -EINVAL;
        }
        status = status * 10 + (p[i] - '0');
    }
    if (n > 12 && p[12] != ' ') {
        *why = "bad status code";
        return -EINVAL;
    }
    for (size_t i = 13; i < n; i++) {
        if (!is_value_char(p[i])) {
            *why = "bad reason phrase";
            return -EINVAL;
        }
    }
    if (!complete)
        return 0;
    if (n < 12 || status < 100 || status > 599) {
        *why = "bad status code";
        return -EINVAL;
    }
    h->minor = minor;
    h->status = status;
    h->reason = n > 13 ? (tt_http_str){(const char *)p + 13, n - 13} : (tt_http_str){"", 0};
    return 0;
}

/* Checks the field line P (N bytes; COMPLETE or a prefix) and appends it to
 * H when complete. */
static int check_field_line(const uint8_t *p, size_t n, bool complete, tt_http_head *h,
                            const char **why)
{
    if (n > 0 && is_ows(p[0])) {
        *why = "folded or indented header line";
        return -EINVAL;
    }
    size_t i = 0;
    while (i < n && is_tchar(p[i]))
        i++;
    if (i == n && !complete)
        return 0;
    if (i == n || p[i] != ':') {
        *why =
            (i < n && is_ows(p[i])) ? "whitespace before colon in header" : "bad header field name";
        return -EINVAL;
    }
    if (i == 0) {
        *why = "empty header field name";
        return -EINVAL;
    }
    size_t name_len = i++;
    for (size_t k = i; k < n; k++) {
        if (!is_value_char(p[k])) {
            *why = "bad byte in header field value";
            return -EINVAL;
        }
    }
    if (!complete)
        return 0;
    if (h->nheaders == TT_HTTP_HEADERS_MAX) {
        *why = "too many header fields";
        h->status = TT_HTTP_STATUS_HEADER_TOO_LARGE;
        return -EINVAL;
    }
    size_t vs = i, ve = n;
    while (vs < ve && is_ows(p[vs]))
        vs++;
    while (ve > vs && is_ows(p[ve - 1]))
        ve--;
    tt_http_header *f = &h->headers[h->nheaders++];
    f->name = (tt_http_str){(const char *)p, name_len};
    f->value = (tt_http_str){(const char *)p + vs, ve - vs};
    return 0;
}

enum line_kind {
    LINE_REQUEST,
    LINE_STATUS,
    LINE_FIELD,
};

/* Finds and checks the line of KIND at OFF. Returns 1 (complete, *END and
 * *NEXT set), 0 (a valid prefix so far) or -EINVAL. A bare CR is reported
 * only after the bytes before it are checked as a prefix, so that the first
 * bad byte decides the error, whatever the split of the input. */
static int take_line(const uint8_t *buf, size_t off, size_t lim, enum line_kind kind,
                     tt_http_head *h, size_t *end, size_t *next, const char **why)
{
    size_t cr;
    bool complete = scan_line(buf, off, lim, end, next, &cr) == 1;
    size_t n = cr - off;
    bool whole = complete && cr == *end;
    int rc;
    if (kind == LINE_REQUEST)
        rc = check_request_line(buf + off, n, whole, h, why);
    else if (kind == LINE_STATUS)
        rc = check_status_line(buf + off, n, whole, h, why);
    else
        rc = check_field_line(buf + off, n, whole, h, why);
    if (rc < 0)
        return rc;
    if (cr != *end) {
        *why = "bare CR in HTTP head";
        h->status = 400;
        return -EINVAL;
    }
    return complete;
}

static int parse_head(const uint8_t *buf, size_t len, bool request, tt_http_head *h,
                      const char **why)
{
    memset(h, 0, sizeof *h);
    h->status = request ? 400 : 0;
    size_t lim = len < TT_HTTP_HEAD_MAX ? len : TT_HTTP_HEAD_MAX;
    size_t off = 0, end = 0, next = 0;
    int rc;

    if (request) {
        /* Empty lines before the request line. */
        while (off < lim) {
            if (buf[off] == '\n') {
                off++;
            } else if (buf[off] == '\r' && off + 1 < lim && buf[off + 1] == '\n') {
                off += 2;
            } else if (buf[off] == '\r' && off + 1 < lim) {
                *why = "bare CR in HTTP head";
                return -EINVAL;
            } else {
                break;
            }
        }
    }

    /* The start line. */
    rc = take_line(buf, off, lim, request ? LINE_REQUEST : LINE_STATUS, h, &end, &next, why);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        if (len < TT_HTTP_HEAD_MAX)
            return 0;
        *why = request ? "request line too long" : "response head too large";
        h->status = request ? 414 : 0;
        return -EINVAL;
    }

    /* Field lines up to the empty line. */
    for (off = next;;) {
        size_t cr;
        if (scan_line(buf, off, lim, &end, &next, &cr) == 1 && end == off) {
            h->head_len = next;
            return 1;
        }
        rc = take_line(buf, off, lim, LINE_FIELD, h, &end, &next, why);
        if (rc < 0)
            goto fail;
        if (rc == 0)
            break;
        off = next;
    }
    if (len < TT_HTTP_HEAD_MAX)
        return 0;
    *why = request ? "request head too large" : "response head too large";
    if (request)
        h->status = TT_HTTP_STATUS_HEADER_TOO_LARGE;
    return -EINVAL;
fail:
    /* Every error of a request is a plain 400 but those that set their own
     * status (505, and 494 for too many fields); a response has none. */
    if (!request)
        h->status = 0;
    return rc;
}

int tt_http_parse_request(const uint8_t *buf, size_t len, tt_http_head *h, const char **why)
{
    return parse_head(buf, len, true, h, why);
}

int tt_http_parse_response(const uint8_t *buf, size_t len, tt_http_head *h, const char **why)
{
    int rc = parse_head(buf, len, false, h, why);
    if (rc < 0)
        h->status = 0;
    return rc;
}

/* --- header helpers --------------------------------------------------- */

bool tt_http_str_ieq(tt_http_str s, const char *text)
{
    size_t n = strlen(text);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower((uint8_t)s.p[i]) != lower((uint8_t)text[i]))
            return false;
    }
    return true;
}

const tt_http_header *tt_http_find(const tt_http_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (tt_http_str_ieq(h->headers[i].name, name))
            return &h->headers[i];
    }
    return NULL;
}

size_t tt_http_count(const tt_http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        n += tt_http_str_ieq(h->headers[i].name, name);
    return n;
}

bool tt_http_list_has(tt_http_str value, const char *token)
{
    size_t i = 0;
    while (i < value.len) {
        size_t s = i;
        while (i < value.len && value.p[i] != ',')
            i++;
        size_t e = i;
        while (s < e && is_ows((uint8_t)value.p[s]))
            s++;
        while (e > s && is_ows((uint8_t)value.p[e - 1]))
            e--;
        if (e > s && tt_http_str_ieq((tt_http_str){value.p + s, e - s}, token))
            return true;
        i++; /* past the comma */
    }
    return false;
}

bool tt_http_header_has(const tt_http_head *h, const char *name, const char *token)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (tt_http_str_ieq(h->headers[i].name, name) &&
            tt_http_list_has(h->headers[i].value, token))
            return true;
    }
    return false;
}

int tt_http_content_length(const tt_http_head *h, uint64_t *len, const char **why)
{
    *len = 0;
    const tt_http_header *f = tt_http_find(h, "Content-Length");
    if (f == NULL)
        return 0;
    if (tt_http_count(h, "Content-Length") > 1) {
        *why = "duplicate Content-Length";
        return -EINVAL;
    }
    tt_http_str v = f->value;
    if (v.len == 0 || v.len > 16) {
        *why = v.len == 0 ? "empty Content-Length" : "Content-Length too large";
        return -EINVAL;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9') {
            *why = "bad Content-Length";
            return -EINVAL;
        }
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (x > TT_HTTP_CONTENT_LENGTH_MAX) {
        *why = "Content-Length too large";
        return -EINVAL;
    }
    *len = x;
    return 1;
}

enum tt_http_te tt_http_transfer_encoding(const tt_http_head *h)
{
    const tt_http_header *f = tt_http_find(h, "Transfer-Encoding");
    if (f == NULL)
        return TT_HTTP_TE_NONE;
    if (tt_http_count(h, "Transfer-Encoding") == 1 && tt_http_str_ieq(f->value, "chunked"))
        return TT_HTTP_TE_CHUNKED;
    return TT_HTTP_TE_OTHER;
}

/* Adds the values of the cookies in one Cookie field's value V to OUT (*N of
 * MAX used). */
static void add_cookies(tt_http_str v, tt_http_str *out, size_t *n, size_t max)
{
    size_t i = 0;
    while (i < v.len && *n < max) {
        const char *semi = memchr(v.p + i, ';', v.len - i);
        size_t end = semi ? (size_t)(semi - v.p) : v.len;
        const char *eq = memchr(v.p + i, '=', end - i);
        if (eq != NULL) {
            size_t a = (size_t)(eq - v.p) + 1, b = end;
            while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t'))
                b--;
            out[(*n)++] = (tt_http_str){v.p + a, b - a};
        }
        i = end + 1;
    }
}

size_t tt_http_cookies(const tt_http_head *h, tt_http_str *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders; i++) {
        if (tt_http_str_ieq(h->headers[i].name, "Cookie"))
            add_cookies(h->headers[i].value, out, &n, max);
    }
    return n;
}

/* --- chunked bodies ---------------------------------------------------- */

enum {
    CK_SIZE0,      /* expecting the first hex digit of a chunk size */
    CK_SIZE,       /* in the size digits */
    CK_EXT,        /* in the chunk extensions, up to the line end */
    CK_SIZE_LF,    /* a CR ended the size line; its LF must follow */
    CK_DATA,       /* in the chunk data */
    CK_DATA_END,   /* the CRLF (or LF) after the data */
    CK_DATA_LF,    /* a CR after the data; its LF must follow */
    CK_TRAILER,    /* at the start of a trailer line or the final empty line */
    CK_TRAILER_IN, /* inside a trailer line */
    CK_TRAILER_LF, /* a CR inside a trailer line; its LF must follow */
    CK_FINAL_LF,   /* a CR of the final empty line; its LF must follow */
    CK_DONE,
};

/* Longest size line (digits and extensions) and the most size digits. */
#define CK_LINE_MAX 4096
#define CK_DIGITS_MAX 32

void tt_http_chunked_init(tt_http_chunked *c)
{
    memset(c, 0, sizeof *c);
    c->state = CK_SIZE0;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* After a size line: the data, or the trailers after the last chunk. */
static int after_size_line(const tt_http_chunked *c)
{
    return c->left == 0 ? CK_TRAILER : CK_DATA;
}

/* The one chunked-body reader behind tt_http_chunked_feed (DATA NULL: data
 * is skipped) and tt_http_chunked_read (DATA set: it stops after the first
 * run of chunk data and points *DATA at it). */
static int chunked_run(tt_http_chunked *c, const uint8_t *p, size_t len, size_t *used,
                       tt_http_str *data, const char **why)
{
    size_t i = 0;
    while (i < len && c->state != CK_DONE) {
        uint8_t b = p[i];
        switch (c->state) {
        case CK_SIZE0:
        case CK_SIZE: {
            int v = hexval(b);
            if (v >= 0) {
                if (++c->line > CK_DIGITS_MAX || c->left > (UINT64_MAX >> 4)) {
                    *why = "chunk size too large";
                    goto bad;
                }
                c->left = c->left << 4 | (uint64_t)v;
                c->state = CK_SIZE;
                break;
            }
            if (c->state == CK_SIZE0) {
                *why = "bad chunk size";
                goto bad;
            }
            if (b == '\n') {
                c->line = 0;
                c->state = after_size_line(c);
            } else if (b == '\r') {
                c->state = CK_SIZE_LF;
            } else if (b == ';' || is_ows(b)) {
                c->state = CK_EXT;
            } else {
                *why = "bad chunk size";
                goto bad;
            }
            break;
        }
        case CK_EXT:
            if (b == '\n') {
                c->line = 0;
                c->state = after_size_line(c);
            } else if (b == '\r') {
                c->state = CK_SIZE_LF;
            } else if (!is_value_char(b)) {
                *why = "bad byte in chunk extension";
                goto bad;
            } else if (++c->line > CK_LINE_MAX) {
                *why = "chunk extension too long";
                goto bad;
            }
            break;
        case CK_SIZE_LF:
            if (b != '\n') {
                *why = "bare CR in chunk size line";
                goto bad;
            }
            c->line = 0;
            c->state = after_size_line(c);
            break;
        case CK_DATA: {
            size_t n = len - i;
            if (n > c->left)
                n = (size_t)c->left;
            c->left -= n;
            if (c->left == 0)
                c->state = CK_DATA_END;
            if (data != NULL && n > 0) {
                *data = (tt_http_str){(const char *)p + i, n};
                *used = i + n;
                return 2;
            }
            i += n;
            continue;
        }
        case CK_DATA_END:
            if (b == '\n') {
                c->state = CK_SIZE0;
            } else if (b == '\r') {
                c->state = CK_DATA_LF;
            } else {
                *why = "chunk data longer than its size";
                goto bad;
            }
            break;
        case CK_DATA_LF:
            if (b != '\n') {
                *why = "chunk data longer than its size";
                goto bad;
            }
            c->state = CK_SIZE0;
            break;
        case CK_TRAILER:
            if (b == '\n') {
                c->state = CK_DONE;
            } else if (b == '\r') {
                c->state = CK_FINAL_LF;
            } else if (!is_value_char(b) || is_ows(b)) {
                *why = "bad trailer line";
                goto bad;
            } else {
                c->state = CK_TRAILER_IN;
                if (++c->trailer > TT_HTTP_HEAD_MAX) {
                    *why = "trailers too large";
                    goto bad;
                }
            }
            break;
        case CK_TRAILER_IN:
            if (b == '\n') {
                c->state = CK_TRAILER;
            } else if (b == '\r') {
                c->state = CK_TRAILER_LF;
            } else if (!is_value_char(b)) {
                *why = "bad trailer line";
                goto bad;
            }
            if (++c->trailer > TT_HTTP_HEAD_MAX) {
                *why = "trailers too large";
                goto bad;
            }
            break;
        case CK_TRAILER_LF:
            if (b != '\n') {
                *why = "bare CR in trailer line";
                goto bad;
            }
            c->state = CK_TRAILER;
            if (++c->trailer > TT_HTTP_HEAD_MAX) {
                *why = "trailers too large";
                goto bad;
            }
            break;
        case CK_FINAL_LF:
            if (b != '\n') {
                *why = "bare CR after trailers";
                goto bad;
            }
            c->state = CK_DONE;
            break;
        default:
            *why = "chunked body already failed";
            goto bad;
        }
        i++;
    }
    *used = i;
    return c->state == CK_DONE ? 1 : 0;
bad:
    /* A failed skipper stays failed: a repeated call reports an error again
     * instead of going on from a state that no longer means anything. */
    c->state = -1;
    *used = i;
    return -EINVAL;
}

int tt_http_chunked_feed(tt_http_chunked *c, const uint8_t *p, size_t len, size_t *used,
                         const char **why)
{
    return chunked_run(c, p, len, used, NULL, why);
}

int tt_http_chunked_read(tt_http_chunked *c, const uint8_t *p, size_t len, size_t *used,
                         tt_http_str *data, const char **why)
{
    return chunked_run(c, p, len, used, data, why);
}

/* --- dates ---------------------------------------------------------------- */

static const char wdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Seconds of 9999-12-31 23:59:59 UTC, the last time a four-digit year holds. */
#define DATE_T_MAX INT64_C(253402300799)

/* Days since 1970-01-01 of the civil date Y-M-D (proleptic Gregorian), by
 * counting in 400-year eras that start on March 1st, so that the leap day is
 * the last day of its year. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);                       /* 0..399 */
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + (int64_t)doe - 719468;
}

/* Writes V as N decimal digits with leading zeros at P. */
static void put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

size_t tt_http_date(int64_t t, char out[TT_HTTP_DATE_LEN + 1])
{
    if (t < 0)
        t = 0;
    if (t > DATE_T_MAX)
        t = DATE_T_MAX;
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    /* Written by hand: every field has a fixed width here, which snprintf
     * cannot be told. */
    memcpy(out, wdays[tm.tm_wday], 3);
    memcpy(out + 3, ", ", 2);
    put_digits(out + 5, tm.tm_mday, 2);
    out[7] = ' ';
    memcpy(out + 8, months[tm.tm_mon], 3);
    out[11] = ' ';
    put_digits(out + 12, tm.tm_year + 1900, 4);
    out[16] = ' ';
    put_digits(out + 17, tm.tm_hour, 2);
    out[19] = ':';
    put_digits(out + 20, tm.tm_min, 2);
    out[22] = ':';
    put_digits(out + 23, tm.tm_sec, 2);
    memcpy(out + 25, " GMT", 5);
    return TT_HTTP_DATE_LEN;
}

/* Reads N decimal digits at P; returns the value or -1. */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

int tt_http_date_parse(tt_http_str s, int64_t *t)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    const char *p = s.p;
    if (s.len != TT_HTTP_DATE_LEN || p[3] != ',' || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' ||
        p[16] != ' ' || p[19] != ':' || p[22] != ':' || p[25] != ' ' ||
        memcmp(p + 26, "GMT", 3) != 0)
        return -EINVAL;
    int wd = -1, mon = -1;
    for (int i = 0; i < 7; i++) {
        if (memcmp(p, wdays[i], 3) == 0)
            wd = i;
    }
    for (int i = 0; i < 12; i++) {
        if (memcmp(p + 8, months[i], 3) == 0)
            mon = i;
    }
    int day = digits(p + 5, 2), year = digits(p + 12, 4);
    int hh = digits(p + 17, 2), mm = digits(p + 20, 2), ss = digits(p + 23, 2);
    if (wd < 0 || mon < 0 || day < 1 || day > 31 || year < 1970 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 60)
        return -EINVAL;
    int64_t days = days_from_civil(year, (unsigned)mon + 1, (unsigned)day);
    /* A day that does not exist in its month (Feb 30) rolls over in the
     * arithmetic; refuse it by checking the day comes back the same. */
    if (days_from_civil(year, (unsigned)mon + 1, 1) + day - 1 != days ||
        (mon < 11 && days >= days_from_civil(year, (unsigned)mon + 2, 1)))
        return -EINVAL;
    *t = days * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

bool tt_http_printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if (n >= max || (uint8_t)s[n] < 0x20 || (uint8_t)s[n] >= 0x7f)
            return false;
    }
    return true;
}

void tt_http_put(char *out, size_t cap, size_t *n, bool *ok, const char *fmt, ...)
{
    if (!*ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(out + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= cap - *n) {
        *ok = false;
        return;
    }
    *n += (size_t)r;
}
