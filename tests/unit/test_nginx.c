/* Tests of what the decoy answers as nginx: the answers against bytes
 * captured from nginx 1.22.1, MIME types, byte ranges, and the mapping of
 * request targets onto static paths. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoy/nginx.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static tt_http_str S(const char *s)
{
    return (tt_http_str){s, strlen(s)};
}

/* Bytes nginx 1.22.1 (Debian 12, stock config) sent, with the date shown
 * here; the tests pass the same time in. */
#define NOW 1795323542 /* Sun, 22 Nov 2026 04:59:02 GMT */
#define DATE "Sun, 22 Nov 2026 04:59:02 GMT"

static void assert_bytes(const char *got, size_t n, const char *want)
{
    cr_assert_eq(n, strlen(want), "length %zu, want %zu:\n%.*s", n, strlen(want), (int)n, got);
    cr_assert_eq(memcmp(got, want, n), 0, "got:\n%.*s\nwant:\n%s", (int)n, got, want);
}

Test(nginx, error_pages_as_nginx)
{
    char out[1024];
    size_t n = tt_http_error_page(out, sizeof out, 404, "nginx/1.22.1", NOW, true, false);
    assert_bytes(out, n,
                 "HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\nDate: " DATE "\r\n"
                 "Content-Type: text/html\r\nContent-Length: 153\r\nConnection: keep-alive\r\n\r\n"
                 "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
                 "<center><h1>404 Not Found</h1></center>\r\n"
                 "<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n");

    /* 400 always closes, even when the caller would keep the connection. */
    n = tt_http_error_page(out, sizeof out, 400, "nginx", NOW, true, false);
    assert_bytes(out, n,
                 "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nDate: " DATE "\r\n"
                 "Content-Type: text/html\r\nContent-Length: 150\r\nConnection: close\r\n\r\n"
                 "<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n"
                 "<center><h1>400 Bad Request</h1></center>\r\n"
                 "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n");

    n = tt_http_error_page(out, sizeof out, TT_HTTP_STATUS_HEADER_TOO_LARGE, "nginx/1.22.1", NOW,
                           true, false);
    assert_bytes(out, n,
                 "HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nDate: " DATE "\r\n"
                 "Content-Type: text/html\r\nContent-Length: 233\r\nConnection: close\r\n\r\n"
                 "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>\r\n"
                 "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
                 "<center>Request Header Or Cookie Too Large</center>\r\n"
                 "<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n");

    /* HEAD: the head with the page's length, no page. */
    n = tt_http_error_page(out, sizeof out, 405, "nginx/1.22.1", NOW, false, true);
    assert_bytes(out, n,
                 "HTTP/1.1 405 Not Allowed\r\nServer: nginx/1.22.1\r\nDate: " DATE "\r\n"
                 "Content-Type: text/html\r\nContent-Length: 157\r\nConnection: close\r\n\r\n");

    /* The Content-Length nginx/1.22.1 sent for each status, and whether it
     * kept the connection open. */
    static const struct {
        int status;
        size_t body;
        bool closes;
        const char *line;
    } seen[] = {
        {400, 157, true, "400 Bad Request"},
        {403, 153, false, "403 Forbidden"},
        {404, 153, false, "404 Not Found"},
        {405, 157, false, "405 Not Allowed"},
        {412, 173, false, "412 Precondition Failed"},
        {413, 183, true, "413 Request Entity Too Large"},
        {414, 177, true, "414 Request-URI Too Large"},
        {416, 197, false, "416 Requested Range Not Satisfiable"},
        {500, 177, true, "500 Internal Server Error"},
        {501, 165, true, "501 Not Implemented"},
        {502, 157, false, "502 Bad Gateway"},
        {503, 197, false, "503 Service Temporarily Unavailable"},
        {504, 167, false, "504 Gateway Time-out"},
        {505, 187, true, "505 HTTP Version Not Supported"},
        {408, 0, true, "408 Request Time-out"},
    };
    for (size_t i = 0; i < LEN(seen); i++) {
        n = tt_http_error_page(out, sizeof out, seen[i].status, "nginx/1.22.1", NOW, true, false);
        cr_assert_gt(n, 0);
        out[n] = '\0';
        char want[128];
        snprintf(want, sizeof want, "HTTP/1.1 %s\r\n", seen[i].line);
        cr_assert_eq(strncmp(out, want, strlen(want)), 0, "%s", out);
        char *body = strstr(out, "\r\n\r\n") + 4;
        if (seen[i].body)
            cr_assert_eq(strlen(body), seen[i].body, "%d: page of %zu bytes", seen[i].status,
                         strlen(body));
        cr_assert_eq(strstr(out, "Connection: close\r\n") != NULL, seen[i].closes, "%d",
                     seen[i].status);
        cr_assert_eq(tt_http_status_closes(seen[i].status), seen[i].closes);
    }

    /* Refusals: unknown status, a server name that could inject a line, no
     * room. */
    cr_assert_eq(tt_http_error_page(out, sizeof out, 418, "nginx", NOW, true, false), 0);
    cr_assert_eq(tt_http_error_page(out, sizeof out, 200, "nginx", NOW, true, false), 0);
    cr_assert_eq(tt_http_error_page(out, sizeof out, 404, "ngi\r\nnx", NOW, true, false), 0);
    cr_assert_eq(tt_http_error_page(out, 200, 404, "nginx", NOW, true, false), 0);
    cr_assert_eq(tt_http_error_page(out, 0, 404, "nginx", NOW, true, false), 0);
}

Test(nginx, redirect_and_file_heads_as_nginx)
{
    char out[1024];
    size_t n =
        tt_http_redirect(out, sizeof out, "nginx/1.22.1", NOW, "http://x:18081/sub/", true, false);
    assert_bytes(out, n,
                 "HTTP/1.1 301 Moved Permanently\r\nServer: nginx/1.22.1\r\nDate: " DATE "\r\n"
                 "Content-Type: text/html\r\nContent-Length: 169\r\n"
                 "Location: http://x:18081/sub/\r\nConnection: keep-alive\r\n\r\n"
                 "<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n"
                 "<center><h1>301 Moved Permanently</h1></center>\r\n"
                 "<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n");
    cr_assert_eq(tt_http_redirect(out, sizeof out, "nginx", NOW, "http://x/\n", true, false), 0);

    n = tt_http_file_head(out, sizeof out, 200, "nginx/1.22.1", NOW, "text/html", 12, NOW, true);
    assert_bytes(out, n,
                 "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: " DATE "\r\n"
                 "Content-Type: text/html\r\nContent-Length: 12\r\n"
                 "Last-Modified: " DATE "\r\nConnection: keep-alive\r\n"
                 "ETag: \"6b027696-c\"\r\nAccept-Ranges: bytes\r\n\r\n");
    n = tt_http_file_head(out, sizeof out, 304, "nginx", NOW, "text/css", 7, NOW, false);
    assert_bytes(out, n,
                 "HTTP/1.1 304 Not Modified\r\nServer: nginx\r\nDate: " DATE "\r\n"
                 "Last-Modified: " DATE "\r\nConnection: close\r\n"
                 "ETag: \"6b027696-7\"\r\n\r\n");
    cr_assert_eq(tt_http_file_head(out, sizeof out, 206, "nginx", NOW, "a/b", 1, 0, true), 0);
    cr_assert_eq(tt_http_file_head(out, 100, 200, "nginx", NOW, "a/b", 1, 0, true), 0);

    char etag[TT_HTTP_ETAG_MAX];
    cr_assert_eq(tt_http_etag(0x6b027696, 12, etag), 12);
    cr_assert_str_eq(etag, "\"6b027696-c\"");
    tt_http_etag(0, 0, etag);
    cr_assert_str_eq(etag, "\"0-0\"");
}

Test(nginx, mime_types)
{
    cr_assert_str_eq(tt_http_mime_type("index.html"), "text/html");
    cr_assert_str_eq(tt_http_mime_type("a/b/STYLE.CSS"), "text/css");
    cr_assert_str_eq(tt_http_mime_type("app.js"), "application/javascript");
    cr_assert_str_eq(tt_http_mime_type("d.json"), "application/json");
    cr_assert_str_eq(tt_http_mime_type("i.png"), "image/png");
    cr_assert_str_eq(tt_http_mime_type("i.jpg"), "image/jpeg");
    cr_assert_str_eq(tt_http_mime_type("i.jpeg"), "image/jpeg");
    cr_assert_str_eq(tt_http_mime_type("i.gif"), "image/gif");
    cr_assert_str_eq(tt_http_mime_type("i.svg"), "image/svg+xml");
    cr_assert_str_eq(tt_http_mime_type("favicon.ico"), "image/x-icon");
    cr_assert_str_eq(tt_http_mime_type("robots.txt"), "text/plain");
    cr_assert_str_eq(tt_http_mime_type("f.woff2"), "font/woff2");
    cr_assert_str_eq(tt_http_mime_type("README"), "application/octet-stream");
    cr_assert_str_eq(tt_http_mime_type("dir.html/file"), "application/octet-stream");
    cr_assert_str_eq(tt_http_mime_type("a.tar.gz"), "application/octet-stream");
    cr_assert_str_eq(tt_http_mime_type("trailing."), "application/octet-stream");
}

Test(nginx, map_path)
{
    static const struct {
        const char *target;
        int rc;
        const char *path;
        bool dir; /* index.html was appended */
    } cases[] = {
        {"/", 0, "index.html", true},
        {"/a.css", 0, "a.css", false},
        {"/a.css?x=1/../..", 0, "a.css", false},
        {"/a.css#frag", 0, "a.css", false},
        {"/sub/", 0, "sub/index.html", true},
        {"/sub", 0, "sub", false},
        {"//a//b", 0, "a/b", false},
        {"/./a/./b/.", 0, "a/b/index.html", true},
        {"/a/../b", 0, "b", false},
        {"/a/b/../../c", 0, "c", false},
        {"/a/..", 0, "index.html", true},
        {"/sub/%2e%2e/a.css", 0, "a.css", false},
        {"/a%2ecss", 0, "a.css", false},
        {"/a%2Fb", 0, "a/b", false},
        {"/%41%62", 0, "Ab", false},
        {"/caf%C3%A9", 0, "caf\xc3\xa9", false},
        {"/.well-known/x", 0, ".well-known/x", false},
        {"/sub/index.html", 0, "sub/index.html", false},
        {"/...", 0, "...", false},
        {"/..a", 0, "..a", false},
        {"http://example.com/x/y?z", 0, "x/y", false},
        {"HTTPS://example.com", 0, "index.html", true},
        {"http://example.com?q", 0, "index.html", true},
        {"/..", 400, NULL, false},
        {"/../a", 400, NULL, false},
        {"/a/../../b", 400, NULL, false},
        {"/%2e%2e/a", 400, NULL, false},
        {"/a%2F..%2F..%2Fetc/passwd", 400, NULL, false},
        {"/a%00b", 400, NULL, false},
        {"/a%zz", 400, NULL, false},
        {"/a%4", 400, NULL, false},
        {"/a%", 400, NULL, false},
        {"a.css", 400, NULL, false},
        {"*", 400, NULL, false},
        {"", 400, NULL, false},
        {"http:///x", 400, NULL, false},
        {"/a\\b", 404, NULL, false},
        {"/a%5c..%5cb", 404, NULL, false},
        {"/a%0ab", 404, NULL, false},
    };
    char out[TT_HTTP_PATH_MAX];
    bool dir = false;
    for (size_t i = 0; i < LEN(cases); i++) {
        int rc = tt_http_map_path(S(cases[i].target), out, &dir);
        cr_assert_eq(rc, cases[i].rc, "%s: %d", cases[i].target, rc);
        if (rc == 0) {
            cr_assert_str_eq(out, cases[i].path, "%s", cases[i].target);
            cr_assert_eq(dir, cases[i].dir, "%s", cases[i].target);
        }
    }

    /* Too long for a path: 404, never an overflow. */
    size_t n = TT_HTTP_LINE_MAX - 100;
    char *t = malloc(n + 1);
    t[0] = '/';
    memset(t + 1, 'a', n - 1);
    t[n] = '\0';
    cr_assert_eq(tt_http_map_path(S(t), out, NULL), 404);
    memset(t + 1, '/', n - 1); /* all slashes: collapses to the root */
    cr_assert_eq(tt_http_map_path(S(t), out, &dir), 0);
    cr_assert(dir);
    cr_assert_str_eq(out, "index.html");
    free(t);
}

Test(nginx, ranges_as_nginx)
{
    static const struct {
        const char *value;
        int kind;
        uint64_t first, last;
    } cases[] = {
        /* What nginx 1.22.1 answered for a 7-byte file. */
        {"bytes=0-1", 1, 0, 1},
        {"bytes=2-", 1, 2, 6},
        {"bytes=-3", 1, 4, 6},
        {"bytes=5-100", 1, 5, 6},
        {"bytes=-100", 1, 0, 6},
        {"Bytes=0-1", 1, 0, 1},
        {"bytes= 1 - 2", 1, 1, 2},
        {"bytes=1-2 ", 1, 1, 2},
        {"bytes=00001-2", 1, 1, 2},
        {"bytes=9-,0-1", 1, 0, 1},
        {"bytes=0-0,2-3", 2, 0, 0},
        {"bytes=7-", 416, 0, 0},
        {"bytes=3-2", 416, 0, 0},
        {"bytes=abc", 416, 0, 0},
        {"bytes=-0", 416, 0, 0},
        {"bytes=-", 416, 0, 0},
        {"bytes=0-1,", 416, 0, 0},
        {"bytes=0-1x", 416, 0, 0},
        {"bytes=1234567890123456789-", 416, 0, 0},
        {"items=0-1", 0, 0, 0},
        {"bytes=", 0, 0, 0},
        {"bytes", 0, 0, 0},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        tt_http_range r = {99, 99};
        int kind = tt_http_range_parse(S(cases[i].value), 7, &r);
        cr_assert_eq(kind, cases[i].kind, "%s: %d", cases[i].value, kind);
        if (kind == 1 || kind == 2) {
            cr_assert_eq(r.first, cases[i].first, "%s", cases[i].value);
            cr_assert_eq(r.last, cases[i].last, "%s", cases[i].value);
        }
    }
    tt_http_range r;
    cr_assert_eq(tt_http_range_parse(S("bytes=0-"), 0, &r), 416);
    cr_assert_eq(tt_http_range_parse(S("bytes=-5"), 0, &r), 416);

    char out[1024];
    r = (tt_http_range){0, 1};
    size_t n = tt_http_range_head(out, sizeof out, 206, "nginx", NOW, "text/css", 7, NOW, true, &r);
    assert_bytes(out, n,
                 "HTTP/1.1 206 Partial Content\r\nServer: nginx\r\nDate: " DATE "\r\n"
                 "Content-Type: text/css\r\nContent-Length: 2\r\n"
                 "Last-Modified: " DATE "\r\nConnection: keep-alive\r\n"
                 "ETag: \"6b027696-7\"\r\nContent-Range: bytes 0-1/7\r\n\r\n");
    cr_assert_eq(tt_http_range_head(out, sizeof out, 206, "nginx", NOW, "a/b", 7, NOW, true, NULL),
                 0);
    r = (tt_http_range){3, 7};
    cr_assert_eq(tt_http_range_head(out, sizeof out, 206, "nginx", NOW, "a/b", 7, NOW, true, &r),
                 0);
    n = tt_http_range_refused(out, sizeof out, "nginx/1.22.1", NOW, 7, true, false);
    out[n] = '\0';
    cr_assert(strstr(out, "HTTP/1.1 416 Requested Range Not Satisfiable\r\n") == out);
    cr_assert(strstr(out, "Content-Length: 197\r\nConnection: keep-alive\r\n"
                          "Content-Range: bytes */7\r\n\r\n<html>") != NULL,
              "%s", out);
}
