/* Tests of the nginx look-alike web server over the in-memory link: the test
 * plays the browser, feeds requests and reads the answers back with the
 * HTTP codec. Files come from a directory the test creates. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "decoy/www.h"
#include "decoy/nginx.h"
#include "memlink.h"

#define SERVER "nginx/1.22.1"
#define BIG_LEN (1024 * 1024 + 12345)

static uv_loop_t loop;
static char dir[64];
static uint8_t *big;

static void write_file(const char *rel, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void make_dir(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    cr_assert_eq(mkdir(path, 0755), 0, "%s", path);
}

static void setup(void)
{
    uv_loop_init(&loop);
    strcpy(dir, "/tmp/tt-www-test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    write_file("index.html", "<h1>hi</h1>\n", 12);
    write_file("a.css", "body{}\n", 7);
    write_file("empty.txt", "", 0);
    make_dir("sub");
    write_file("sub/index.html", "sub\n", 4);
    make_dir("emptydir");
    big = malloc(BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = (uint8_t)(i * 31 + (i >> 11));
    write_file("big.bin", big, BIG_LEN);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
    free(big);
}

TestSuite(www, .init = setup, .fini = teardown, .timeout = 30);

/* Runs the loop until COND holds (Criterion's timeout catches a hang). A
 * non-blocking turn first: a blocking one could sleep until the idle timer
 * after already doing the work COND waits for. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond)) {                                                                          \
            uv_run(&loop, UV_RUN_NOWAIT);                                                          \
            if (cond)                                                                              \
                break;                                                                             \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
        }                                                                                          \
    } while (0)

static void serve(memlink *m, const char *d, const char *early, unsigned idle_ms)
{
    memlink_init(m, &loop);
    tt_www_serve(&m->base, d, (const uint8_t *)early, early ? strlen(early) : 0, idle_ms, SERVER);
    /* Nothing is answered inside the call. */
    cr_assert_eq(m->written_len, 0);
}

static void send_text(memlink *m, const char *s)
{
    RUN_UNTIL(m->reading || m->closing);
    cr_assert(memlink_deliver(m, s, strlen(s)), "the server is not reading");
}

/* One answer read back from the bytes written. */
typedef struct answer {
    int status;
    tt_http_head h;
    const uint8_t *body;
    size_t body_len;
    size_t total; /* head and body */
} answer;

/* Parses the answer at *OFF in what M received, if it is complete (a HEAD
 * answer has no body whatever its Content-Length). */
static bool take_answer(const memlink *m, size_t *off, bool head, answer *a)
{
    const uint8_t *p = m->written + *off;
    size_t n = m->written_len - *off;
    const char *why = NULL;
    int rc = tt_http_parse_response(p, n, &a->h, &why);
    if (rc == 0)
        return false;
    cr_assert_eq(rc, 1, "bad answer head: %s\n%.*s", why, (int)n, p);
    uint64_t len = 0;
    tt_http_header cl;
    if (tt_http_find(&a->h, "Content-Length", &cl) && !head && a->h.status != 304 &&
        a->h.status >= 200)
        len = strtoull(cl.value.p, NULL, 10);
    if (n < a->h.head_len + len)
        return false;
    a->status = a->h.status;
    a->body = p + a->h.head_len;
    a->body_len = (size_t)len;
    a->total = a->h.head_len + (size_t)len;
    *off += a->total;
    return true;
}

/* Runs until the next answer is complete and returns it. */
static answer next_answer(memlink *m, size_t *off, bool head)
{
    answer a;
    memset(&a, 0, sizeof a);
    RUN_UNTIL(take_answer(m, off, head, &a) || m->closed);
    cr_assert_neq(a.status, 0, "no answer came: %zu bytes written", m->written_len - *off);
    return a;
}

static void assert_header(const answer *a, const char *name, const char *value)
{
    tt_http_header f;
    cr_assert(tt_http_find(&a->h, name, &f), "no %s", name);
    cr_assert_eq(f.value.len, strlen(value), "%s: %.*s", name, (int)f.value.len, f.value.p);
    cr_assert_eq(memcmp(f.value.p, value, f.value.len), 0, "%s: %.*s", name, (int)f.value.len,
                 f.value.p);
}

static void assert_body(const answer *a, const void *data, size_t len)
{
    cr_assert_eq(a->body_len, len, "body of %zu bytes, want %zu", a->body_len, len);
    cr_assert_eq(memcmp(a->body, data, len), 0);
}

/* The peer closes; the server must end the link (asynchronously). */
static void peer_ends(memlink *m)
{
    if (!m->closing)
        memlink_eof(m);
    RUN_UNTIL(m->closed);
    memlink_free(m);
}

/* The 404 page nginx signs SERVER. */
static void assert_404(const answer *a)
{
    cr_assert_eq(a->status, 404);
    assert_header(a, "Server", SERVER);
    assert_header(a, "Content-Type", "text/html");
    assert_header(a, "Connection", "keep-alive");
    static const char page[] = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
                               "<center><h1>404 Not Found</h1></center>\r\n"
                               "<hr><center>" SERVER "</center>\r\n</body>\r\n</html>\r\n";
    assert_body(a, page, sizeof page - 1);
}

Test(www, serves_a_file_as_nginx)
{
    memlink m;
    serve(&m, dir, "GET /a.css HTTP/1.1\r\nHost: example.com\r\n\r\n", 5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "body{}\n", 7);
    assert_header(&a, "Server", SERVER);
    assert_header(&a, "Content-Type", "text/css");
    assert_header(&a, "Content-Length", "7");
    assert_header(&a, "Connection", "keep-alive");
    assert_header(&a, "Accept-Ranges", "bytes");

    /* ETag and Last-Modified from the file's times, in nginx's forms. */
    char path[256];
    snprintf(path, sizeof path, "%s/a.css", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    char etag[TT_HTTP_ETAG_MAX], lm[TT_HTTP_DATE_LEN + 1];
    tt_http_etag(st.st_mtime, 7, etag);
    tt_http_date(st.st_mtime, lm);
    assert_header(&a, "ETag", etag);
    assert_header(&a, "Last-Modified", lm);
    /* nginx's order of fields. */
    static const char *const order[] = {"Server",         "Date",          "Content-Type",
                                        "Content-Length", "Last-Modified", "Connection",
                                        "ETag",           "Accept-Ranges"};
    cr_assert_eq(a.h.nheaders, 8);
    for (size_t i = 0; i < 8; i++)
        cr_assert(tt_http_str_ieq(tt_http_header_at(&a.h, i).name, order[i]), "field %zu", i);

    /* The connection stays for the next request; "/" is the index. */
    send_text(&m, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_header(&a, "Content-Type", "text/html");
    assert_body(&a, "<h1>hi</h1>\n", 12);

    /* An empty file. */
    send_text(&m, "GET /empty.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_header(&a, "Content-Length", "0");
    assert_header(&a, "Content-Type", "text/plain");
    cr_assert_not(m.closing);
    peer_ends(&m);
    cr_assert_eq(off, m.written_len);
}

Test(www, not_found_head_and_methods)
{
    memlink m;
    serve(&m, dir, "GET /nope.html HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    assert_404(&a);

    /* HEAD: heads only, with the length the body would have. */
    send_text(&m, "HEAD /a.css HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, true);
    cr_assert_eq(a.status, 200);
    assert_header(&a, "Content-Length", "7");
    send_text(&m, "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, true);
    cr_assert_eq(a.status, 404);
    assert_header(&a, "Content-Length", "153");

    /* Other methods: 405 on a file, and POST's body is dropped. */
    send_text(&m, "DELETE /a.css HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 405);
    assert_header(&a, "Connection", "keep-alive");
    send_text(&m, "POST /a.css HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 405);
    send_text(&m, "cde");
    /* POST to what does not exist is a 404, as in nginx. */
    send_text(&m, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz");
    a = next_answer(&m, &off, false);
    assert_404(&a);
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "body{}\n", 7);
    cr_assert_eq(off, m.written_len, "stray bytes after the answers");
    peer_ends(&m);
}

Test(www, pipelined_requests_in_order)
{
    memlink m;
    serve(&m, dir,
          "GET /a.css HTTP/1.1\r\nHost: x\r\n\r\n"
          "HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n",
          5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "body{}\n", 7);
    a = next_answer(&m, &off, true);
    cr_assert_eq(a.status, 200);
    assert_header(&a, "Content-Length", "12");
    a = next_answer(&m, &off, false);
    assert_404(&a);
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, big, BIG_LEN);
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "sub\n", 4);
    peer_ends(&m);
    cr_assert_eq(off, m.written_len);
}

/* The expected answer bytes for REQ, without the Date line (it moves). */
static char *answer_without_date(const memlink *m)
{
    char *s = malloc(m->written_len + 1);
    memcpy(s, m->written, m->written_len);
    s[m->written_len] = '\0';
    char *d = strstr(s, "Date: ");
    cr_assert_not_null(d);
    char *e = strstr(d, "\r\n") + 2;
    memmove(d, e, strlen(e) + 1);
    return s;
}

Test(www, request_split_at_every_byte)
{
    static const char req[] = "GET /a.css?v=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    size_t len = strlen(req);

    memlink ref;
    serve(&ref, dir, req, 5000);
    size_t off = 0;
    next_answer(&ref, &off, false);
    char *want = answer_without_date(&ref);
    peer_ends(&ref);

    for (size_t cut = 0; cut <= len; cut++) {
        /* Part as the carrier's early bytes, the rest as reads of one and
         * then all remaining bytes. */
        char early[128];
        memcpy(early, req, cut);
        early[cut] = '\0';
        memlink m;
        serve(&m, dir, early, 5000);
        if (cut < len) {
            RUN_UNTIL(m.reading);
            cr_assert(memlink_deliver(&m, req + cut, 1));
            if (cut + 1 < len)
                cr_assert(memlink_deliver(&m, req + cut + 1, len - cut - 1));
        }
        off = 0;
        next_answer(&m, &off, false);
        char *got = answer_without_date(&m);
        cr_assert_str_eq(got, want, "cut at %zu", cut);
        free(got);
        peer_ends(&m);
    }
    free(want);
}

Test(www, garbage_gets_400_and_close)
{
    static const char *const junk[] = {
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "garbage\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", /* no Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "get / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX : y\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        memlink m;
        serve(&m, dir, junk[i], 5000);
        size_t off = 0;
        answer a = next_answer(&m, &off, false);
        cr_assert_eq(a.status, 400, "case %zu: %d", i, a.status);
        assert_header(&a, "Connection", "close");
        cr_assert_eq(off, m.written_len);
        /* A lingering close: half-closed at once, closed on the peer's EOF. */
        RUN_UNTIL(m.shut);
        cr_assert_not(m.closed);
        peer_ends(&m);
    }
}

Test(www, other_refusals_as_nginx)
{
    static const struct {
        const char *req;
        int status;
        bool closes;
    } cases[] = {
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, true},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, true},

        {"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, true},
        {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, true},
        {"PUT /nope HTTP/1.1\r\nHost: x\r\n\r\n", 405, false},
        {"GET /emptydir/ HTTP/1.1\r\nHost: x\r\n\r\n", 403, false},
        {"GET /a.css/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
        {"GET /nope/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
        {"GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memlink m;
        serve(&m, dir, cases[i].req, 5000);
        size_t off = 0;
        answer a = next_answer(&m, &off, false);
        cr_assert_eq(a.status, cases[i].status, "case %zu: %d", i, a.status);
        assert_header(&a, "Connection", cases[i].closes ? "close" : "keep-alive");
        if (cases[i].closes)
            RUN_UNTIL(m.shut);
        else
            cr_assert_not(m.shut);
        peer_ends(&m);
    }

    /* A body over the limit: 413, and the body is read to its end before
     * the lingering close, as nginx does. */
    {
        memlink m;
        serve(&m, dir, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\nabc", 5000);
        size_t off = 0;
        answer a = next_answer(&m, &off, false);
        cr_assert_eq(a.status, 413);
        assert_header(&a, "Connection", "close");
        uv_run(&loop, UV_RUN_NOWAIT);
        cr_assert_not(m.shut, "half-closed while the body was still coming");
        char *body = calloc(1, 1048577);
        cr_assert(memlink_deliver(&m, body, 1048577 - 3));
        free(body);
        RUN_UNTIL(m.shut);
        cr_assert_eq(off, m.written_len);
        peer_ends(&m);
    }

    /* A request line that does not fit: 414; a head that does not: 494's
     * page (a 400). */
    char *line = malloc(TT_HTTP_LINE_MAX + 64);
    memcpy(line, "GET /", 5);
    memset(line + 5, 'a', TT_HTTP_LINE_MAX);
    line[TT_HTTP_LINE_MAX + 5] = '\0';
    memlink m;
    serve(&m, dir, line, 5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 414);
    peer_ends(&m);
    snprintf(line, 40, "GET / HTTP/1.1\r\nX: ");
    memset(line + 19, 'b', TT_HTTP_LINE_MAX);
    line[TT_HTTP_LINE_MAX + 19] = '\0';
    serve(&m, dir, line, 5000);
    off = 0;
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 400);
    cr_assert(memmem(a.body, a.body_len, "Request Header Or Cookie Too Large", 34) != NULL);
    peer_ends(&m);
    free(line);
}

Test(www, directories)
{
    memlink m;
    serve(&m, dir, "GET /sub?x=1 HTTP/1.1\r\nHost: Example.COM.:8080\r\n\r\n", 5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 301);
    /* nginx shows its own port, not the one in Host (none here). */
    assert_header(&a, "Location", "http://example.com/sub/?x=1");
    assert_header(&a, "Connection", "keep-alive");

    send_text(&m, "GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "sub\n", 4);

    send_text(&m, "GET /emptydir/. HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 403);
    peer_ends(&m);

    /* HTTP/1.0 without Host: the default host, and the connection ends. */
    tt_www_opts o = {.dir = dir, .server_name = "nginx", .https = true, .default_host = "h.test"};
    memlink_init(&m, &loop);
    static const char req[] = "GET /emptydir HTTP/1.0\r\n\r\n";
    tt_www_serve_opts(&m.base, &o, (const uint8_t *)req, strlen(req));
    off = 0;
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 301);
    assert_header(&a, "Location", "https://h.test/emptydir/");
    assert_header(&a, "Connection", "close");
    assert_header(&a, "Server", "nginx");
    RUN_UNTIL(m.shut);
    peer_ends(&m);

    /* A port other than the scheme's default shows; the default does not. */
    static const struct {
        bool https;
        int port;
        const char *location;
    } ports[] = {
        {true, 8443, "https://[::1]:8443/sub/"},
        {true, 443, "https://[::1]/sub/"},
        {false, 80, "http://[::1]/sub/"},
        {false, 443, "http://[::1]:443/sub/"},
    };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        tt_www_opts po = {.dir = dir, .https = ports[i].https, .port = ports[i].port};
        static const char preq[] = "GET /sub HTTP/1.1\r\nHost: [::1]:9\r\n\r\n";
        memlink_init(&m, &loop);
        tt_www_serve_opts(&m.base, &po, (const uint8_t *)preq, strlen(preq));
        off = 0;
        a = next_answer(&m, &off, false);
        cr_assert_eq(a.status, 301);
        assert_header(&a, "Location", ports[i].location);
        peer_ends(&m);
    }
}

Test(www, conditional_requests)
{
    char path[256];
    snprintf(path, sizeof path, "%s/a.css", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    char etag[TT_HTTP_ETAG_MAX], lm[TT_HTTP_DATE_LEN + 1], req[512];
    tt_http_etag(st.st_mtime, 7, etag);
    tt_http_date(st.st_mtime, lm);

    memlink m;
    snprintf(req, sizeof req,
             "GET /a.css HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"x\", W/%s\r\n\r\n", etag);
    serve(&m, dir, req, 5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 304);
    assert_header(&a, "ETag", etag);
    cr_assert_not(tt_http_find(&a.h, "Content-Length", NULL));

    snprintf(req, sizeof req, "GET /a.css HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: %s\r\n\r\n",
             lm);
    send_text(&m, req);
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 304);

    /* Both present: both must hold. */
    snprintf(
        req, sizeof req,
        "GET /a.css HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: %s\r\nIf-None-Match: \"x\"\r\n\r\n",
        lm);
    send_text(&m, req);
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "body{}\n", 7);

    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\n"
                  "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);

    /* One range: 206 with that part; none satisfiable: 416; If-Range that
     * names another version: the whole file. */
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 206);
    assert_header(&a, "Content-Range", "bytes 4-6/7");
    assert_body(&a, "{}\n", 3);
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\nRange: bytes=7-\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 416);
    assert_header(&a, "Content-Range", "bytes */7");
    snprintf(req, sizeof req,
             "GET /a.css HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2\r\nIf-Range: %s\r\n\r\n", etag);
    send_text(&m, req);
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 206);
    assert_body(&a, "od", 2);
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2\r\nIf-Range: \"x\"\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "body{}\n", 7);
    /* A range deep in a large file. */
    send_text(&m, "GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100000-300000\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 206);
    assert_body(&a, big + 100000, 200001);

    /* 100 Continue before a file answer, as nginx sends it. */
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 100);
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "body{}\n", 7);
    peer_ends(&m);
}

Test(www, bodies_are_dropped)
{
    memlink m;
    serve(&m, dir,
          "GET /a.css HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
          "3;x=y\r\nabc\r\n",
          5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    /* The rest of the body in pieces, then the next request. */
    send_text(&m, "A\r\n0123456789\r\n0\r\nTrailer: t\r\n");
    send_text(&m, "\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_body(&a, "<h1>hi</h1>\n", 12);

    /* A long Content-Length body arriving in many reads. */
    send_text(&m, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    a = next_answer(&m, &off, false);
    assert_404(&a);
    char junk[1000];
    memset(junk, 'G', sizeof junk); /* would look like requests if not dropped */
    for (int i = 0; i < 100; i++)
        cr_assert(memlink_deliver(&m, junk, sizeof junk));
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);

    /* A chunked body that turns bad after its answer: the connection goes. */
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    send_text(&m, "3\r\nabcdef\r\n");
    RUN_UNTIL(m.closed);
    cr_assert_eq(off, m.written_len);
    memlink_free(&m);
}

Test(www, large_file_respects_backpressure)
{
    memlink m;
    serve(&m, dir, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
    m.hold = true;
    size_t max_pending = 0, off = 0;
    int drains = 0;
    answer a;
    memset(&a, 0, sizeof a);
    while (!take_answer(&m, &off, false, &a)) {
        uv_run(&loop, UV_RUN_ONCE);
        if (m.pending > max_pending)
            max_pending = m.pending;
        /* The server must stop reading the file past its window; only
         * then does the peer take what is queued. */
        if (m.pending > 256 * 1024) {
            memlink_drain(&m);
            drains++;
        }
    }
    cr_assert_leq(max_pending, 256 * 1024 + 64 * 1024, "%zu bytes queued", max_pending);
    cr_assert_geq(drains, 3);
    cr_assert_eq(a.status, 200);
    assert_body(&a, big, BIG_LEN);
    /* The peer's EOF with the tail still queued: the close waits for it. */
    memlink_eof(&m);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_not(m.closing, "closed with bytes still queued");
    memlink_drain(&m);
    RUN_UNTIL(m.closed);
    memlink_free(&m);
}

Test(www, no_directory_is_all_404)
{
    memlink m;
    serve(&m, NULL, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    assert_404(&a);
    send_text(&m, "GET /a.css HTTP/1.1\r\nHost: x\r\n\r\nHEAD /x HTTP/1.1\r\nHost: x\r\n\r\n");
    a = next_answer(&m, &off, false);
    assert_404(&a);
    a = next_answer(&m, &off, true);
    cr_assert_eq(a.status, 404);
    peer_ends(&m);
}

Test(www, endings)
{
    /* Connection: close and HTTP/1.0: answered, then a lingering close. */
    memlink m;
    serve(&m, dir, "GET /a.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5000);
    size_t off = 0;
    answer a = next_answer(&m, &off, false);
    cr_assert_eq(a.status, 200);
    assert_header(&a, "Connection", "close");
    RUN_UNTIL(m.shut);
    peer_ends(&m);

    serve(&m, dir, "GET /a.css HTTP/1.0\r\n\r\n", 5000);
    off = 0;
    a = next_answer(&m, &off, false);
    assert_header(&a, "Connection", "close");
    RUN_UNTIL(m.shut);
    peer_ends(&m);

    serve(&m, dir, "GET /a.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 5000);
    off = 0;
    a = next_answer(&m, &off, false);
    assert_header(&a, "Connection", "keep-alive");
    cr_assert_not(m.shut);
    peer_ends(&m);

    /* The peer's EOF right after a request: the answer, then the close. */
    serve(&m, dir, NULL, 5000);
    send_text(&m, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    memlink_eof(&m);
    RUN_UNTIL(m.closed);
    off = 0;
    a = next_answer(&m, &off, false);
    assert_body(&a, big, BIG_LEN);
    memlink_free(&m);

    /* Silence: closed after the idle time, with nothing said (no 408). */
    serve(&m, dir, "GET / HTTP/1.1\r\n", 50);
    RUN_UNTIL(m.closed);
    cr_assert_eq(m.written_len, 0);
    memlink_free(&m);

    /* A peer that stops reading is dropped too. */
    serve(&m, dir, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", 50);
    m.hold = true;
    RUN_UNTIL(m.closed);
    cr_assert_lt(m.written_len, BIG_LEN);
    memlink_free(&m);

    /* An error on the link. */
    serve(&m, dir, NULL, 5000);
    RUN_UNTIL(m.reading);
    memlink_error(&m, UV_ECONNRESET);
    RUN_UNTIL(m.closed);
    memlink_free(&m);

    /* Closing while a file read is in flight frees everything (ASan). */
    serve(&m, dir, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", 5000);
    RUN_UNTIL(m.written_len > 0);
    memlink_error(&m, UV_ECONNRESET);
    RUN_UNTIL(m.closed);
    memlink_free(&m);
}
