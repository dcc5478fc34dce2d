/* Tests of the HTTP/1.1 head codec: heads parsed whole and at every length,
 * every malformed form refused with the status a server answers, the field
 * helpers, the chunked-body skipper fed in every split, and dates. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http1.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static tt_http_str S(const char *s)
{
    return (tt_http_str){s, strlen(s)};
}

static void assert_str(tt_http_str got, const char *want)
{
    cr_assert_eq(got.len, strlen(want), "length %zu, want \"%s\"", got.len, want);
    cr_assert_eq(memcmp(got.p, want, got.len), 0, "want \"%s\"", want);
}

/* Parses IN as a request at every length: shorter than the head it must ask
 * for more, from the head's length on it must return the same head. */
static void parse_every_length(const char *in, bool request, size_t want_head_len,
                               tt_http_head *out)
{
    size_t len = strlen(in);
    /* Each prefix sits in its own heap block so ASan sees a read past it. */
    for (size_t k = 0; k <= len; k++) {
        uint8_t *b = malloc(k ? k : 1);
        memcpy(b, in, k);
        tt_http_head h;
        const char *why = NULL;
        int rc = request ? tt_http_parse_request(b, k, &h, &why)
                         : tt_http_parse_response(b, k, &h, &why);
        if (k < want_head_len) {
            cr_assert_eq(rc, 0, "prefix %zu: rc %d (%s)", k, rc, why ? why : "");
        } else {
            cr_assert_eq(rc, 1, "prefix %zu: rc %d (%s)", k, rc, why ? why : "");
            cr_assert_eq(h.head_len, want_head_len);
        }
        free(b);
    }
    const char *why = NULL;
    int rc = request ? tt_http_parse_request((const uint8_t *)in, len, out, &why)
                     : tt_http_parse_response((const uint8_t *)in, len, out, &why);
    cr_assert_eq(rc, 1);
}

Test(http1, request_golden_every_length)
{
    static const char in[] = "GET /chat?x=1 HTTP/1.1\r\n"
                             "Host: example.com\r\n"
                             "Upgrade: \t websocket \t\r\n"
                             "Connection: keep-alive, Upgrade\r\n"
                             "X-Empty:\r\n"
                             "\r\n"
                             "BODY";
    tt_http_head h;
    parse_every_length(in, true, strlen(in) - 4, &h);
    assert_str(h.method, "GET");
    assert_str(h.target, "/chat?x=1");
    cr_assert_eq(h.minor, 1);
    cr_assert_eq(h.nheaders, 4);
    assert_str(tt_http_header_at(&h, 0).name, "Host");
    assert_str(tt_http_header_at(&h, 0).value, "example.com");
    assert_str(tt_http_header_at(&h, 1).value, "websocket");
    assert_str(tt_http_header_at(&h, 2).value, "keep-alive, Upgrade");
    assert_str(tt_http_header_at(&h, 3).name, "X-Empty");
    assert_str(tt_http_header_at(&h, 3).value, "");
    /* Everything found points inside the input. */
    for (size_t i = 0; i < h.nheaders; i++) {
        cr_assert(tt_http_header_at(&h, i).name.p >= in &&
                  tt_http_header_at(&h, i).name.p < in + h.head_len);
        cr_assert(tt_http_header_at(&h, i).value.p + tt_http_header_at(&h, i).value.len <=
                  in + h.head_len);
    }
}

Test(http1, bare_lf_and_leading_empty_lines)
{
    static const char in[] = "\r\n\nGET / HTTP/1.0\nHost: a\r\nX: y\n\n";
    tt_http_head h;
    parse_every_length(in, true, strlen(in), &h);
    assert_str(h.method, "GET");
    cr_assert_eq(h.minor, 0);
    cr_assert_eq(h.nheaders, 2);
    assert_str(tt_http_header_at(&h, 1).value, "y");
}

Test(http1, response_forms)
{
    tt_http_head h;
    static const char a[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    parse_every_length(a, false, strlen(a), &h);
    cr_assert_eq(h.status, 101);
    assert_str(h.reason, "Switching Protocols");
    assert_str(tt_http_header_at(&h, 0).value, "websocket");

    static const char b[] = "HTTP/1.0 404 \r\n\r\n";
    parse_every_length(b, false, strlen(b), &h);
    cr_assert_eq(h.status, 404);
    cr_assert_eq(h.minor, 0);
    assert_str(h.reason, "");

    static const char c[] = "HTTP/1.1 200\r\n\r\n";
    parse_every_length(c, false, strlen(c), &h);
    cr_assert_eq(h.status, 200);
}

typedef struct bad {
    const char *in;
    size_t len; /* 0: strlen */
    int status; /* the answer for a request */
} bad;

/* Feeds IN at every length: never a head, and the whole is refused. */
static void assert_refused(const bad *b, bool request)
{
    size_t len = b->len ? b->len : strlen(b->in);
    int last = 0;
    const char *why = NULL;
    tt_http_head h;
    for (size_t k = 0; k <= len; k++) {
        uint8_t *buf = malloc(k ? k : 1);
        memcpy(buf, b->in, k);
        why = NULL;
        last = request ? tt_http_parse_request(buf, k, &h, &why)
                       : tt_http_parse_response(buf, k, &h, &why);
        free(buf);
        cr_assert_neq(last, 1, "%s: prefix %zu parsed", b->in, k);
        if (last < 0)
            break;
    }
    cr_assert_eq(last, -EINVAL, "\"%s\" was not refused", b->in);
    cr_assert(why != NULL && why[0] != '\0');
    if (request)
        cr_assert_eq(h.status, b->status, "\"%s\": status %d, want %d (%s)", b->in, h.status,
                     b->status, why);
}

Test(http1, malformed_requests)
{
    static const bad cases[] = {
        {" GET / HTTP/1.1\r\n\r\n", 0, 400},
        {"GET  / HTTP/1.1\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1 \r\n\r\n", 0, 400},
        {"GET /\r\n\r\n", 0, 400},
        {"GET\r\n\r\n", 0, 400},
        {"GE(T / HTTP/1.1\r\n\r\n", 0, 400},
        {"GET / http/1.1\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1x\r\n\r\n", 0, 400},
        {"GET / HTTP/11\r\n\r\n", 0, 400},
        {"GET / HTTP/2.0\r\n\r\n", 0, 505},
        {"GET / HTTP/1.2\r\n\r\n", 0, 505},
        {"GET / HTTP/0.9\r\n\r\n", 0, 505},
        {"GET http://h/ HTTP/3.0\r\n\r\n", 0, 505},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 400},
        {"GET /\x7f HTTP/1.1\r\n\r\n", 0, 400},
        {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 0, 400},
        {"GET /a\rb HTTP/1.1\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\r\n\r\n", 0, 400},
        {"\r\r\nGET / HTTP/1.1\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\n\tHost: x\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\n: x\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nA(b: x\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nA: x\x7fy\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nA: x\ry\r\n\r\n", 0, 400},
        {"GET / HTTP/1.1\r\nA: x\0y\r\n\r\n", 24, 400},
        {"GET / HTTP/1.1\r\nA: b\r\r\n", 0, 400},
        /* A TLS ClientHello is refused at its first byte. */
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, 400},
        {"\0", 1, 400},
    };
    for (size_t i = 0; i < LEN(cases); i++)
        assert_refused(&cases[i], true);
}

/* nginx takes a method of upper-case letters, '_' and '-' only, and
 * refuses any other byte where it arrives: "hello" gets its 400 at the "h",
 * with no line end, as from nginx (a lenient token would wait). */
Test(http1, method_bytes_as_nginx)
{
    static const char *const refused[] = {"h",   "hello", "get / HTTP/1.1\r\n", "GEt", "G1",
                                          "G.T", "A\x90"};
    for (size_t i = 0; i < LEN(refused); i++) {
        tt_http_head h;
        const char *why = NULL;
        const char *in = refused[i];
        cr_assert_eq(tt_http_parse_request((const uint8_t *)in, strlen(in), &h, &why), -EINVAL,
                     "%s", in);
        cr_assert_eq(h.status, 400, "%s", in);
    }
    static const char *const waiting[] = {"A", "GET", "M-SEARCH", "X_Y", "\r\n\r\n"};
    for (size_t i = 0; i < LEN(waiting); i++) {
        tt_http_head h;
        const char *why = NULL;
        const char *in = waiting[i];
        cr_assert_eq(tt_http_parse_request((const uint8_t *)in, strlen(in), &h, &why), 0, "%s", in);
    }
}

Test(http1, malformed_responses)
{
    static const bad cases[] = {
        {"HTTP/1.1 20 OK\r\n\r\n", 0, 0},      {"HTTP/1.1 2000 OK\r\n\r\n", 0, 0},
        {"HTTP/1.1 099 X\r\n\r\n", 0, 0},      {"HTTP/1.1 600 X\r\n\r\n", 0, 0},
        {"HTTP/1.1  200 OK\r\n\r\n", 0, 0},    {"HTTP/1.1 200 O\x01K\r\n\r\n", 0, 0},
        {"HTTP/2 200\r\n\r\n", 0, 0},          {"HTTP/1.3 200 OK\r\n\r\n", 0, 0},
        {"\r\nHTTP/1.1 200 OK\r\n\r\n", 0, 0}, {"HTTP/1.1 200 OK\r\nA : b\r\n\r\n", 0, 0},
        {"SSH-2.0-OpenSSH_9.2\r\n", 0, 0},
    };
    for (size_t i = 0; i < LEN(cases); i++)
        assert_refused(&cases[i], false);
}

/* A request head as the e2e probes build them: a request line of REQ bytes
 * (its CRLF included), "Host: x", COUNT field lines of LINE bytes each (CRLF
 * included), "Connection: close" and the empty line. Sets *LEN. */
static char *shaped_request(size_t req, size_t line, size_t count, size_t *len)
{
    size_t cap = req + 16 + count * (line + 8) + 32;
    char *b = malloc(cap);
    cr_assert_not_null(b);
    size_t n = 0;
    memcpy(b, "GET /", 5);
    n = 5;
    memset(b + n, 'a', req - 16);
    n += req - 16;
    memcpy(b + n, " HTTP/1.1\r\nHost: x\r\n", 20);
    n += 20;
    for (size_t i = 0; i < count; i++) {
        if (line < 6) {
            memcpy(b + n, "X:\r\n", 4);
            n += 4;
            continue;
        }
        memcpy(b + n, "X-", 2);
        memset(b + n + 2, 'b', line - 6);
        memcpy(b + n + line - 4, ": \r\n", 4);
        n += line;
    }
    memcpy(b + n, "Connection: close\r\n\r\n", 21);
    n += 21;
    *len = n;
    return b;
}

/* Parses IN whole and, with a new head, in reads of STEP bytes: both must
 * give RC (and, refused, STATUS). */
static void assert_outcome(const char *in, size_t len, size_t step, int rc, int status,
                           const char *what)
{
    tt_http_head h;
    const char *why = NULL;
    int got = tt_http_parse_request((const uint8_t *)in, len, &h, &why);
    cr_assert_eq(got, rc, "%s: rc %d (%s)", what, got, why ? why : "");
    if (rc < 0)
        cr_assert_eq(h.status, status, "%s: status %d", what, h.status);
    tt_http_head_free(&h);
    tt_http_head_init(&h, true);
    for (size_t k = step < len ? step : len;; k = k + step < len ? k + step : len) {
        got = tt_http_head_parse(&h, (const uint8_t *)in, k, &why);
        if (got != 0 || k == len)
            break;
    }
    cr_assert_eq(got, rc, "%s in steps of %zu: rc %d", what, step, got);
    if (rc < 0)
        cr_assert_eq(h.status, status, "%s in steps: status %d", what, h.status);
    tt_http_head_free(&h);
}

/* What nginx 1.22 answered to these heads (tests/e2e/test_stealth_nginx.py
 * measures the same against a running nginx): 0 for served. */
static const struct shape {
    size_t req, line, count;
    int status;
} shapes[] = {
    /* Request lines: one of 8192 bytes with its CRLF fits a large buffer. */
    {1024, 0, 0, 0},
    {4096, 0, 0, 0},
    {8192, 0, 0, 0},
    {8193, 0, 0, 414},
    {9216, 0, 0, 414},
    /* One field line. */
    {100, 1024, 1, 0},
    {100, 7168, 1, 0},
    {100, 8192, 1, 0},
    {100, 8193, 1, TT_HTTP_STATUS_HEADER_TOO_LARGE},
    /* Heads of many lines: they pack, each whole, into 1k + 4 x 8k. */
    {60, 100, 92, 0},
    {60, 1000, 16, 0},
    {60, 4000, 7, 0},
    {60, 8000, 3, 0},
    {60, 100, 327, 0},
    {60, 1000, 32, 0},
    {60, 100, 337, TT_HTTP_STATUS_HEADER_TOO_LARGE},
    {60, 1000, 33, TT_HTTP_STATUS_HEADER_TOO_LARGE},
    {60, 4000, 8, 0},
    {60, 8000, 4, 0},
    {60, 4000, 10, TT_HTTP_STATUS_HEADER_TOO_LARGE},
    {60, 8000, 5, TT_HTTP_STATUS_HEADER_TOO_LARGE},
    /* Field counts: 1000 fields nginx takes (Host and Connection among
     * them) are served, one more is refused. */
    {40, 10, 64, 0},
    {40, 10, 100, 0},
    {40, 10, 998, 0},
    {40, 10, 999, TT_HTTP_STATUS_HEADER_TOO_LARGE},
    {40, 10, 2000, TT_HTTP_STATUS_HEADER_TOO_LARGE},
};

Test(http1, limits_are_nginx)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape *sh = &shapes[i];
        size_t len;
        char *in = shaped_request(sh->req, sh->line, sh->count, &len);
        char what[80];
        snprintf(what, sizeof what, "request line %zu, %zu lines of %zu", sh->req, sh->count,
                 sh->line);
        assert_outcome(in, len, 997, sh->status ? -EINVAL : 1, sh->status, what);
        assert_outcome(in, len, 8192, sh->status ? -EINVAL : 1, sh->status, what);
        free(in);
    }
}

Test(http1, limits)
{
    tt_http_head h;
    const char *why = NULL;

    /* A field line whose name nginx ignores (an underscore) does not count
     * towards the 1000. */
    size_t cap = 40 + 1200 * 10;
    char *buf = malloc(cap);
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 200; i++)
        n += (size_t)sprintf(buf + n, "X_b: a\r\n");
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(buf + n, "X-b: a\r\n");
    strcpy(buf + n, "\r\n");
    cr_assert_eq(tt_http_parse_request((uint8_t *)buf, n + 2, &h, &why), 1, "%s", why);
    cr_assert_eq(h.nheaders, 1200);
    assert_str(tt_http_header_at(&h, 1199).name, "X-b");
    tt_http_head_free(&h);
    /* The 1001st is refused as soon as its line ends. */
    strcpy(buf + n, "Y: z\r\n");
    cr_assert_eq(tt_http_parse_request((uint8_t *)buf, n + 6, &h, &why), -EINVAL);
    cr_assert_eq(h.status, TT_HTTP_STATUS_HEADER_TOO_LARGE);
    tt_http_head_free(&h);
    free(buf);

    /* Empty lines before the request line do not count (nginx starts its
     * buffer over when they fill it). */
    size_t lead = 20000;
    buf = malloc(lead + 64);
    memset(buf, '\n', lead);
    n = lead + (size_t)sprintf(buf + lead, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(tt_http_parse_request((uint8_t *)buf, n, &h, &why), 1, "%s", why);
    free(buf);

    /* A request line refused at the byte where nginx's buffer fills. */
    buf = malloc(TT_HTTP_LINE_MAX + 10);
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', TT_HTTP_LINE_MAX + 5);
    cr_assert_eq(tt_http_parse_request((uint8_t *)buf, TT_HTTP_LINE_MAX - 1, &h, &why), 0);
    cr_assert_eq(tt_http_parse_request((uint8_t *)buf, TT_HTTP_LINE_MAX, &h, &why), -EINVAL);
    cr_assert_eq(h.status, 414);
    free(buf);

    /* Only the head's bytes are looked at: what follows may be anything. */
    size_t big_len = TT_HTTP_HEAD_MAX * 3;
    uint8_t *tail = malloc(big_len);
    memset(tail, 0, big_len);
    memcpy(tail, "GET / HTTP/1.1\r\n\r\n", 18);
    cr_assert_eq(tt_http_parse_request(tail, big_len, &h, &why), 1);
    cr_assert_eq(h.head_len, 18);
    free(tail);

    /* Responses: at most TT_HTTP_RESPONSE_MAX bytes. */
    buf = malloc(TT_HTTP_RESPONSE_MAX + 10);
    memcpy(buf, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(buf + 20, 'v', TT_HTTP_RESPONSE_MAX - 24);
    memcpy(buf + TT_HTTP_RESPONSE_MAX - 4, "\r\n\r\n", 4);
    cr_assert_eq(tt_http_parse_response((uint8_t *)buf, TT_HTTP_RESPONSE_MAX, &h, &why), 1);
    memcpy(buf + TT_HTTP_RESPONSE_MAX - 4, "v\r\n\r\n", 5);
    cr_assert_eq(tt_http_parse_response((uint8_t *)buf, TT_HTTP_RESPONSE_MAX + 1, &h, &why),
                 -EINVAL);
    free(buf);
}

Test(http1, leading_empty_lines_are_dropped)
{
    /* A reader that drops what tt_http_head_drop_lead allows keeps no more
     * of them than one read brought, however many come, and gets the same
     * head. */
    static const char req[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t lead = 30000, len = lead + strlen(req);
    char *in = malloc(len);
    for (size_t i = 0; i < lead; i++)
        in[i] = i % 2 ? '\n' : '\r';
    memcpy(in + lead, req, strlen(req));
    tt_http_head h;
    tt_http_head_init(&h, true);
    size_t start = 0, end = 0, most = 0;
    const char *why = NULL;
    int rc = 0;
    while (rc == 0 && end < len) {
        end = end + 7 < len ? end + 7 : len;
        rc = tt_http_head_parse(&h, (const uint8_t *)in + start, end - start, &why);
        if (rc == 0)
            start += tt_http_head_drop_lead(&h);
        if (end - start > most && end <= lead)
            most = end - start;
    }
    cr_assert_eq(rc, 1, "%s", why ? why : "");
    /* Dropped up to the read that brought the request line. */
    cr_assert(start <= lead && start + 8 >= lead, "dropped %zu of %zu", start, lead);
    cr_assert_leq(most, 8);
    assert_str(h.target, "/x");
    cr_assert_eq(h.head_len, len - start);
    tt_http_head_free(&h);
    free(in);
}

Test(http1, pipelined_request_goes_on_in_the_same_buffer)
{
    /* A request line of 1000 bytes, Host, four field lines of 8190 bytes:
     * from a fresh 1 KiB buffer it fits (as nginx serves it), but behind a
     * 27-byte request in the same buffer its Host line spills into a large
     * buffer and the four long lines need a fifth (nginx answers 494). */
    static const char first[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t len = 0;
    char *in = shaped_request(1000, 8190, 4, &len);
    /* No "Connection: close" line: the shape is the nginx-measured one. */
    len -= 21;
    memcpy(in + len, "\r\n", 2);
    len += 2;
    tt_http_head h;
    const char *why = NULL;
    cr_assert_eq(tt_http_parse_request((const uint8_t *)first, strlen(first), &h, &why), 1);
    tt_http_head_restart(&h, 0);
    cr_assert_eq(tt_http_head_parse(&h, (const uint8_t *)in, len, &why), -EINVAL);
    cr_assert_eq(h.status, TT_HTTP_STATUS_HEADER_TOO_LARGE);
    tt_http_head_free(&h);
    cr_assert_eq(tt_http_parse_request((const uint8_t *)in, len, &h, &why), 1, "%s", why);
    tt_http_head_free(&h);
    /* A body that reaches the buffer's end: the next request starts fresh. */
    cr_assert_eq(tt_http_parse_request((const uint8_t *)first, strlen(first), &h, &why), 1);
    tt_http_head_restart(&h, TT_HTTP_FIRST_BUF);
    cr_assert_eq(tt_http_head_parse(&h, (const uint8_t *)in, len, &why), 1, "%s", why);
    tt_http_head_free(&h);
    free(in);
}

Test(http1, trickled_head_costs_linear_work)
{
    /* A 32 KiB head (the most nginx takes, in lines of 8 KiB) fed one byte
     * per read: each read must cost its own byte, not the whole head again
     * (which would be 32768 * 32768 / 2 = 537 million steps). */
    size_t len;
    char *in = shaped_request(60, 8000, 4, &len);
    cr_assert_gt(len, 32000);
    tt_http_head h;
    tt_http_head_init(&h, true);
    const char *why = NULL;
    int rc = 0;
    for (size_t k = 1; k <= len && rc == 0; k++)
        rc = tt_http_head_parse(&h, (const uint8_t *)in, k, &why);
    cr_assert_eq(rc, 1, "%s", why ? why : "");
    cr_assert_eq(h.head_len, len);
    cr_assert_leq(h.steps, len, "%llu steps for %zu bytes", (unsigned long long)h.steps, len);
    tt_http_head_free(&h);
    free(in);
}

static tt_http_head parsed(const char *in)
{
    tt_http_head h;
    const char *why = NULL;
    int rc = tt_http_parse_request((const uint8_t *)in, strlen(in), &h, &why);
    cr_assert_eq(rc, 1, "%s: %s", in, why ? why : "");
    return h;
}

Test(http1, field_helpers)
{
    tt_http_head h = parsed("GET / HTTP/1.1\r\nconnection: keep-alive\r\nHOST: a\r\n"
                            "Connection: , Upgrade ,x\r\nUpgrade: WebSocket\r\nHost: b\r\n\r\n");
    tt_http_header f;
    cr_assert(tt_http_find(&h, "host", &f));
    assert_str(f.value, "a");
    cr_assert_eq(tt_http_count(&h, "Host"), 2);
    cr_assert_eq(tt_http_count(&h, "connection"), 2);
    cr_assert_not(tt_http_find(&h, "Hos", NULL));
    cr_assert_eq(tt_http_count(&h, "Content-Length"), 0);

    cr_assert(tt_http_header_has(&h, "Connection", "upgrade"));
    cr_assert(tt_http_header_has(&h, "Connection", "KEEP-ALIVE"));
    cr_assert(tt_http_header_has(&h, "upgrade", "websocket"));
    cr_assert_not(tt_http_header_has(&h, "Connection", "close"));
    cr_assert_not(tt_http_header_has(&h, "Connection", "upgrad"));
    cr_assert_not(tt_http_header_has(&h, "Connection", ""));

    cr_assert(tt_http_list_has(S("a,b"), "b"));
    cr_assert(tt_http_list_has(S(" a\t,\tb "), "a"));
    cr_assert_not(tt_http_list_has(S("ab"), "a"));
    cr_assert_not(tt_http_list_has(S("a b"), "a"));
    cr_assert_not(tt_http_list_has(S(""), "a"));
    cr_assert(tt_http_str_ieq(S("Keep-Alive"), "keep-alive"));
    cr_assert_not(tt_http_str_ieq(S("Keep-Alive"), "keep-aliv"));
}

Test(http1, content_length)
{
    uint64_t n = 99;
    const char *why = NULL;
    tt_http_head h = parsed("POST / HTTP/1.1\r\n\r\n");
    cr_assert_eq(tt_http_content_length(&h, &n, &why), 0);
    cr_assert_eq(n, 0);
    h = parsed("POST / HTTP/1.1\r\nContent-Length: 0042 \r\n\r\n");
    cr_assert_eq(tt_http_content_length(&h, &n, &why), 1);
    cr_assert_eq(n, 42);
    h = parsed("POST / HTTP/1.1\r\nContent-Length: 9007199254740991\r\n\r\n");
    cr_assert_eq(tt_http_content_length(&h, &n, &why), 1);
    cr_assert_eq(n, TT_HTTP_CONTENT_LENGTH_MAX);

    static const char *const bad_values[] = {
        "Content-Length: 9007199254740992\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length: +3\r\n",
        "Content-Length: -3\r\n",
        "Content-Length: 3 4\r\n",
        "Content-Length: 3,3\r\n",
        "Content-Length: 0x10\r\n",
        "Content-Length:\r\n",
        "Content-Length: 3\r\ncontent-length: 3\r\n",
    };
    for (size_t i = 0; i < LEN(bad_values); i++) {
        char req[256];
        snprintf(req, sizeof req, "POST / HTTP/1.1\r\n%s\r\n", bad_values[i]);
        h = parsed(req);
        why = NULL;
        cr_assert_eq(tt_http_content_length(&h, &n, &why), -EINVAL, "%s", bad_values[i]);
        cr_assert_not_null(why);
    }
}

Test(http1, transfer_encoding)
{
    tt_http_head h = parsed("POST / HTTP/1.1\r\n\r\n");
    cr_assert_eq(tt_http_transfer_encoding(&h), TT_HTTP_TE_NONE);
    h = parsed("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n");
    cr_assert_eq(tt_http_transfer_encoding(&h), TT_HTTP_TE_CHUNKED);
    h = parsed("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    cr_assert_eq(tt_http_transfer_encoding(&h), TT_HTTP_TE_OTHER);
    h = parsed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
    cr_assert_eq(tt_http_transfer_encoding(&h), TT_HTTP_TE_OTHER);
}

/* Feeds a chunked body split at CUT (and then in one piece): returns the
 * result and the bytes taken. */
static int chunked_split(const char *in, size_t len, size_t cut, size_t *taken)
{
    tt_http_chunked c;
    tt_http_chunked_init(&c);
    const char *why = NULL;
    size_t used = 0, total = 0;
    int rc = tt_http_chunked_feed(&c, (const uint8_t *)in, cut, &used, &why);
    total += used;
    if (rc == 0) {
        cr_assert_eq(used, cut);
        rc = tt_http_chunked_feed(&c, (const uint8_t *)in + cut, len - cut, &used, &why);
        total += used;
    }
    if (rc < 0)
        cr_assert(why != NULL && why[0] != '\0');
    *taken = total;
    return rc;
}

Test(http1, chunked_every_split)
{
    static const char body[] = "3;name=value\r\nabc\r\n"
                               "10\r\n0123456789abcdef\r\n"
                               "A \t; x\nXXXXXXXXXX\n"
                               "000\r\n"
                               "Trailer: 1\r\nOther: x\n"
                               "\r\n"
                               "NEXT";
    size_t len = strlen(body), want = len - 4;
    for (size_t cut = 0; cut <= len; cut++) {
        size_t taken = 0;
        cr_assert_eq(chunked_split(body, len, cut, &taken), 1, "cut %zu", cut);
        cr_assert_eq(taken, want, "cut %zu", cut);
    }

    /* Without trailers, and a repeated call after the end. */
    tt_http_chunked c;
    tt_http_chunked_init(&c);
    size_t used = 0;
    const char *why = NULL;
    cr_assert_eq(tt_http_chunked_feed(&c, (const uint8_t *)"0\r\n\r\nX", 6, &used, &why), 1);
    cr_assert_eq(used, 5);
    cr_assert_eq(tt_http_chunked_feed(&c, (const uint8_t *)"X", 1, &used, &why), 1);
    cr_assert_eq(used, 0);
}

Test(http1, chunked_malformed)
{
    static const char *const cases[] = {
        "zz\r\n",
        "\r\n",
        "-1\r\n",
        "3\r\nabcd\r\n0\r\n\r\n",
        "3\rX",
        "3\r\nabc\rX",
        "0\r\nTrailer\r\rX",
        "0\r\n\rX",
        "0\r\n Folded: x\r\n\r\n",
        "3;\x01\r\n",
        "11111111111111111\r\n",
        "000000000000000000000000000000001\r\n",
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        size_t len = strlen(cases[i]);
        for (size_t cut = 0; cut <= len; cut++) {
            size_t taken = 0;
            int rc = chunked_split(cases[i], len, cut, &taken);
            cr_assert_eq(rc, -EINVAL, "\"%s\" cut %zu: %d", cases[i], cut, rc);
        }
    }
    /* A failed skipper stays failed. */
    tt_http_chunked c;
    tt_http_chunked_init(&c);
    size_t used;
    const char *why;
    cr_assert_eq(tt_http_chunked_feed(&c, (const uint8_t *)"x", 1, &used, &why), -EINVAL);
    cr_assert_eq(tt_http_chunked_feed(&c, (const uint8_t *)"0\r\n\r\n", 5, &used, &why), -EINVAL);

    /* Trailers are bounded. */
    tt_http_chunked_init(&c);
    char *t = malloc(TT_HTTP_LINE_MAX + 100);
    memcpy(t, "0\r\n", 3);
    memset(t + 3, 'a', TT_HTTP_LINE_MAX + 97);
    cr_assert_eq(tt_http_chunked_feed(&c, (uint8_t *)t, TT_HTTP_LINE_MAX + 100, &used, &why),
                 -EINVAL);
    free(t);
}

Test(http1, dates)
{
    char d[TT_HTTP_DATE_LEN + 1];
    cr_assert_eq(tt_http_date(784111777, d), TT_HTTP_DATE_LEN);
    cr_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    tt_http_date(0, d);
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    tt_http_date(-5, d);
    cr_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    tt_http_date(INT64_MAX, d);
    cr_assert_str_eq(d, "Fri, 31 Dec 9999 23:59:59 GMT");
    tt_http_date(951782400, d); /* a leap day */
    cr_assert_str_eq(d, "Tue, 29 Feb 2000 00:00:00 GMT");

    int64_t t = 0;
    cr_assert_eq(tt_http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), &t), 0);
    cr_assert_eq(t, 784111777);
    static const int64_t times[] = {0,          1,          951782400,  951868800,
                                    1700000000, 1798761599, 4102444800, 253402300799};
    for (size_t i = 0; i < LEN(times); i++) {
        tt_http_date(times[i], d);
        cr_assert_eq(tt_http_date_parse(S(d), &t), 0, "%s", d);
        cr_assert_eq(t, times[i], "%s", d);
    }
    static const char *const bad_dates[] = {
        "Sun, 06 Nov 1994 08:49:37 UTC", "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",      "Sun, 6 Nov 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nob 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT", "Sun, 31 Apr 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1969 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ",
    };
    for (size_t i = 0; i < LEN(bad_dates); i++)
        cr_assert_eq(tt_http_date_parse(S(bad_dates[i]), &t), -EINVAL, "%s", bad_dates[i]);
}
