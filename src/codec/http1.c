/* HTTP/1.1 head parser, body framing, dates and the text helpers of
 * answers.
 *
 * The parser is a byte-at-a-time state machine that keeps its place in the
 * tt_http_head between calls: each byte is checked once, when it first
 * arrives, so a caller that calls again after every read with the whole
 * head so far costs only the new bytes, and an invalid byte is reported as
 * soon as it arrives, with the same phrase whatever the split of the input.
 * Positions are kept as offsets from the head's start, since the caller's
 * buffer may move between calls. Beside the checks it replays nginx's
 * header buffers (see http1.h) to refuse a head exactly where nginx does. */
#include "codec/http1.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* --- the head parser ----------------------------------------------------- */

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

enum {
    S_LEAD,    /* empty lines before a request line */
    S_LEAD_CR, /* a CR there */
    S_METHOD,  /* request line: the method */
    S_TARGET,  /* request line: the target */
    S_VERSION, /* request line: the version */
    S_STATUS,  /* the status line of a response */
    S_FSTART,  /* the first byte of a field line or of the final empty line */
    S_NAME,    /* a field name */
    S_VALUE,   /* a field value */
    S_END_CR,  /* a CR first in a line: the final empty line's */
};

void tt_http_head_init(tt_http_head *h, bool request)
{
    memset(h, 0, sizeof *h);
    h->request = request;
    h->status = request ? 400 : 0;
    h->state = request ? S_LEAD : S_STATUS;
    h->fields_cap = TT_HTTP_FIELDS_INLINE;
    h->buf_cap = TT_HTTP_FIRST_BUF;
}

void tt_http_head_free(tt_http_head *h)
{
    free(h->fields);
    h->fields = NULL;
    h->fields_cap = TT_HTTP_FIELDS_INLINE;
    h->nheaders = 0;
}

static bool in_request_line(int state)
{
    return state == S_METHOD || state == S_TARGET || state == S_VERSION;
}

/* Whether nginx takes C in a field name (else it ignores the line, which
 * then does not count towards its limit on lines). */
static bool is_nginx_name_char(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A refusal: *WHY and the status a server answers with (requests) or 0. */
static int refuse(tt_http_head *h, int status, const char *why)
{
    h->status = h->request ? status : 0;
    h->why = why;
    h->rc = -EINVAL;
    return -EINVAL;
}

/* The request line P[0..N) ended: its last checks. */
static int end_request_line(tt_http_head *h, const uint8_t *buf, size_t n)
{
    const uint8_t *p = buf + h->line;
    if (h->state == S_METHOD)
        return refuse(h, 400, "bad method in request line");
    if (h->state == S_TARGET)
        return refuse(h, 400, "bad request target");
    size_t v = h->mark2 + 1 - h->line;
    int minor = 0;
    int rc = check_version(p + v, n - v, true, &minor);
    if (rc < 0)
        return refuse(h, 400, "bad HTTP version in request line");
    h->method_off = h->line;
    h->method_len = h->mark1 - h->line;
    h->target_off = h->mark1 + 1;
    h->target_len = h->mark2 - h->mark1 - 1;
    if (rc == 1) {
        /* nginx refuses a target that is neither a path nor an absolute URI
         * before it looks at the version ("PRI * HTTP/2.0" gets a 400). */
        tt_http_str t = {(const char *)buf + h->target_off, h->target_len};
        return refuse(h, origin_or_absolute(t) ? 505 : 400, "unsupported HTTP version");
    }
    h->minor = minor;
    h->state = S_FSTART;
    return 0;
}

/* The status line P[0..N) ended: its last checks. */
static int end_status_line(tt_http_head *h, const uint8_t *buf, size_t n)
{
    const uint8_t *p = buf + h->line;
    int minor = 0;
    if (n < 8 || check_version(p, 8, true, &minor) != 0)
        return refuse(h, 0, "bad HTTP version in status line");
    int status = n >= 12 ? (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0') : 0;
    if (n < 12 || status < 100 || status > 599)
        return refuse(h, 0, "bad status code");
    h->minor = minor;
    h->reason_off = h->line + 13;
    h->reason_len = n > 13 ? n - 13 : 0;
    h->status = status;
    h->state = S_FSTART;
    return 0;
}

/* The field line at H->line ended. */
static int end_field_line(tt_http_head *h)
{
    if (h->state == S_NAME)
        return refuse(h, 400, "bad header field name");
    if (h->request && h->name_ok && ++h->counted > TT_HTTP_FIELDS_MAX)
        return refuse(h, TT_HTTP_STATUS_HEADER_TOO_LARGE, "too many header fields");
    if (h->nheaders == h->fields_cap) {
        size_t cap = h->fields_cap * 2;
        tt_http_field *f = realloc(h->fields, cap * sizeof *f);
        if (f == NULL)
            return refuse(h, 500, "out of memory");
        if (h->fields == NULL)
            memcpy(f, h->inline_fields, sizeof h->inline_fields);
        h->fields = f;
        h->fields_cap = cap;
    }
    tt_http_field *f = &(h->fields ? h->fields : h->inline_fields)[h->nheaders++];
    size_t vs = h->value_start ? h->value_start : h->mark1 + 1;
    size_t ve = h->value_start ? h->value_end : vs;
    /* A line is at most TT_HTTP_LINE_MAX (requests) or
     * TT_HTTP_RESPONSE_MAX bytes, so these fit. */
    f->name = (uint32_t)h->line;
    f->name_len = (uint16_t)(h->mark1 - h->line);
    f->value = (uint16_t)(vs - h->line);
    f->value_len = (uint16_t)(ve - vs);
    h->state = S_FSTART;
    return 0;
}

/* The line at H->line ended; its content ends at END (before CR LF). */
static int end_line(tt_http_head *h, const uint8_t *buf, size_t end)
{
    size_t n = end - h->line;
    if (in_request_line(h->state))
        return end_request_line(h, buf, n);
    if (h->state == S_STATUS)
        return end_status_line(h, buf, n);
    return end_field_line(h);
}

/* Checks byte I of the start line or a field line (not CR or LF). */
static int check_byte(tt_http_head *h, const uint8_t *buf, size_t i)
{
    uint8_t c = buf[i];
    size_t k = i - h->line;
    switch (h->state) {
    case S_METHOD:
        if (is_method_char(c))
            return 0;
        if (c != ' ' || k == 0)
            return refuse(h, 400, "bad method in request line");
        h->mark1 = i;
        h->state = S_TARGET;
        return 0;
    case S_TARGET:
        if (is_target_char(c))
            return 0;
        if (c != ' ' || i == h->mark1 + 1)
            return refuse(h, 400, "bad request target");
        h->mark2 = i;
        h->state = S_VERSION;
        return 0;
    case S_VERSION: {
        size_t v = i - h->mark2 - 1;
        int minor;
        if (v >= 8 || check_version(buf + h->mark2 + 1, v + 1, false, &minor) < 0)
            return refuse(h, 400, "bad HTTP version in request line");
        return 0;
    }
    case S_STATUS: {
        int minor;
        if (k < 8) {
            if (check_version(buf + h->line, k + 1, k == 7, &minor) != 0)
                return refuse(h, 0,
                              check_version(buf + h->line, k + 1, false, &minor) < 0
                                  ? "bad HTTP version in status line"
                                  : "unsupported HTTP version");
        } else if (k == 8) {
            if (c != ' ')
                return refuse(h, 0, "bad status line");
        } else if (k < 12) {
            if (c < '0' || c > '9')
                return refuse(h, 0, "bad status code");
        } else if (k == 12) {
            if (c != ' ')
                return refuse(h, 0, "bad status code");
        } else if (!is_value_char(c)) {
            return refuse(h, 0, "bad reason phrase");
        }
        return 0;
    }
    case S_NAME:
        if (is_tchar(c)) {
            h->name_ok = h->name_ok && is_nginx_name_char(c);
            return 0;
        }
        if (c != ':')
            return refuse(
                h, 400, is_ows(c) ? "whitespace before colon in header" : "bad header field name");
        if (k == 0)
            return refuse(h, 400, "empty header field name");
        h->mark1 = i;
        h->value_start = 0;
        h->state = S_VALUE;
        return 0;
    case S_VALUE:
        if (!is_value_char(c))
            return refuse(h, 400, "bad byte in header field value");
        if (!is_ows(c)) {
            if (h->value_start == 0)
                h->value_start = i;
            h->value_end = i + 1;
        }
        return 0;
    default:
        return refuse(h, 400, "bad HTTP head");
    }
}

/* nginx's buffers after byte I was taken (requests): when the buffer in use
 * is full and the head is not complete, the line in progress moves to a new
 * large buffer, or the head is refused. */
static int account(tt_http_head *h, size_t i)
{
    (void)i;
    if (++h->buf_fill < h->buf_cap)
        return 0;
    if (h->state == S_LEAD || h->state == S_LEAD_CR) {
        /* Only line ends so far: nginx starts the buffer over. */
        h->buf_fill = 0;
        return 0;
    }
    bool in_line = h->state != S_FSTART;
    size_t partial = in_line ? h->buf_fill - h->buf_line : 0;
    bool start = in_request_line(h->state);
    if (in_line && partial >= TT_HTTP_LINE_MAX)
        return start ? refuse(h, 414, "request line too long")
                     : refuse(h, TT_HTTP_STATUS_HEADER_TOO_LARGE, "header line too long");
    if (h->bufs == TT_HTTP_LARGE_BUFS)
        return start ? refuse(h, 414, "request line too long")
                     : refuse(h, TT_HTTP_STATUS_HEADER_TOO_LARGE, "request head too large");
    h->bufs++;
    h->buf_cap = TT_HTTP_LINE_MAX;
    h->buf_fill = partial;
    h->buf_line = 0;
    return 0;
}

/* Sets the public pointers of a complete head into BUF. */
static void publish(tt_http_head *h, const uint8_t *buf)
{
    const char *b = (const char *)buf;
    if (h->request) {
        h->method = (tt_http_str){b + h->method_off, h->method_len};
        h->target = (tt_http_str){b + h->target_off, h->target_len};
    } else {
        h->reason =
            h->reason_len ? (tt_http_str){b + h->reason_off, h->reason_len} : (tt_http_str){"", 0};
    }
}

int tt_http_head_parse(tt_http_head *h, const uint8_t *buf, size_t len, const char **why)
{
    h->base = (const char *)buf;
    if (h->rc == 1)
        publish(h, buf);
    if (h->rc != 0) {
        *why = h->why;
        return h->rc;
    }
    size_t i = h->pos;
    int rc = 0;
    for (; i < len && rc == 0; i++) {
        uint8_t c = buf[i];
        h->steps++;
        if (h->cr) {
            /* The byte after a CR: only an LF may follow it. */
            h->cr = false;
            if (c != '\n') {
                rc = refuse(h, 400, "bare CR in HTTP head");
                break;
            }
            if (h->state == S_LEAD_CR) {
                h->state = S_LEAD;
            } else if (h->state == S_END_CR) {
                h->head_len = i + 1;
                h->rc = 1;
                break;
            } else {
                rc = end_line(h, buf, i - 1);
            }
        } else if (h->state == S_LEAD) {
            if (c == '\r') {
                h->state = S_LEAD_CR;
                h->cr = true;
            } else if (c != '\n') {
                h->state = S_METHOD;
                h->line = i;
                h->buf_line = h->buf_fill;
                rc = check_byte(h, buf, i);
            }
        } else if (h->state == S_FSTART) {
            h->line = i;
            h->buf_line = h->buf_fill;
            if (c == '\n') {
                h->head_len = i + 1;
                h->rc = 1;
                break;
            }
            if (c == '\r') {
                h->state = S_END_CR;
                h->cr = true;
            } else if (is_ows(c)) {
                rc = refuse(h, 400, "folded or indented header line");
            } else {
                h->state = S_NAME;
                h->name_ok = true;
                rc = check_byte(h, buf, i);
            }
        } else if (c == '\r') {
            h->cr = true;
        } else if (c == '\n') {
            rc = end_line(h, buf, i);
        } else {
            rc = check_byte(h, buf, i);
        }
        if (rc != 0)
            break;
        if (h->request) {
            rc = account(h, i);
        } else if (i + 1 >= TT_HTTP_RESPONSE_MAX) {
            rc = refuse(h, 0, "response head too large");
        }
    }
    h->pos = i;
    if (h->rc == 1) {
        publish(h, buf);
        return 1;
    }
    if (h->rc != 0) {
        *why = h->why;
        return h->rc;
    }
    return 0;
}

void tt_http_head_restart(tt_http_head *h, size_t body)
{
    /* The head's last byte (its final LF) ended the parse before it was
     * counted in the buffer. */
    size_t cap = h->buf_cap, fill = h->buf_fill + 1 + body;
    bool large = h->bufs > 0, request = h->request;
    tt_http_head_free(h);
    tt_http_head_init(h, request);
    if (fill < cap) {
        /* nginx goes on in that buffer; a large one counts as one of its
         * four. A full buffer (or a body past its end) means the next
         * request was not in it: a fresh start. */
        h->buf_cap = cap;
        h->buf_fill = fill;
        h->bufs = large ? 1 : 0;
    }
}

size_t tt_http_head_drop_lead(tt_http_head *h)
{
    if (h->rc != 0 || (h->state != S_LEAD && h->state != S_LEAD_CR))
        return 0;
    /* A CR waiting for its LF stays: the next byte is checked against it. */
    size_t drop = h->state == S_LEAD_CR ? h->pos - 1 : h->pos;
    h->pos -= drop;
    return drop;
}

tt_http_header tt_http_header_at(const tt_http_head *h, size_t i)
{
    const tt_http_field *f = &(h->fields ? h->fields : h->inline_fields)[i];
    const char *name = h->base + f->name;
    return (tt_http_header){{name, f->name_len}, {name + f->value, f->value_len}};
}

int tt_http_parse_request(const uint8_t *buf, size_t len, tt_http_head *h, const char **why)
{
    tt_http_head_init(h, true);
    return tt_http_head_parse(h, buf, len, why);
}

int tt_http_parse_response(const uint8_t *buf, size_t len, tt_http_head *h, const char **why)
{
    tt_http_head_init(h, false);
    return tt_http_head_parse(h, buf, len, why);
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

bool tt_http_find(const tt_http_head *h, const char *name, tt_http_header *out)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        tt_http_header f = tt_http_header_at(h, i);
        if (tt_http_str_ieq(f.name, name)) {
            if (out != NULL)
                *out = f;
            return true;
        }
    }
    return false;
}

size_t tt_http_count(const tt_http_head *h, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        n += tt_http_str_ieq(tt_http_header_at(h, i).name, name);
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
        tt_http_header f = tt_http_header_at(h, i);
        if (tt_http_str_ieq(f.name, name) && tt_http_list_has(f.value, token))
            return true;
    }
    return false;
}

int tt_http_content_length(const tt_http_head *h, uint64_t *len, const char **why)
{
    *len = 0;
    tt_http_header f;
    if (!tt_http_find(h, "Content-Length", &f))
        return 0;
    if (tt_http_count(h, "Content-Length") > 1) {
        *why = "duplicate Content-Length";
        return -EINVAL;
    }
    tt_http_str v = f.value;
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
    tt_http_header f;
    if (!tt_http_find(h, "Transfer-Encoding", &f))
        return TT_HTTP_TE_NONE;
    if (tt_http_count(h, "Transfer-Encoding") == 1 && tt_http_str_ieq(f.value, "chunked"))
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
        tt_http_header f = tt_http_header_at(h, i);
        if (tt_http_str_ieq(f.name, "Cookie"))
            add_cookies(f.value, out, &n, max);
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
                if (++c->trailer > TT_HTTP_LINE_MAX) {
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
            if (++c->trailer > TT_HTTP_LINE_MAX) {
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
            if (++c->trailer > TT_HTTP_LINE_MAX) {
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
