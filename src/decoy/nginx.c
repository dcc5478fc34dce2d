/* What a stock nginx answers, byte for byte as nginx 1.22 (Debian 12) was
 * seen to send it apart from the values passed in (server name, times,
 * sizes): its error pages, redirects and static-file heads, ranges, ETags
 * and MIME types, and how it maps a request target onto a file. */
#include "decoy/nginx.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* --- answers ----------------------------------------------------------------- */

size_t tt_http_etag(int64_t mtime, uint64_t size, char out[TT_HTTP_ETAG_MAX])
{
    int n = snprintf(out, TT_HTTP_ETAG_MAX, "\"%llx-%llx\"", (unsigned long long)mtime,
                     (unsigned long long)size);
    return (size_t)n;
}

typedef struct mime {
    const char *ext;
    const char *type;
} mime;

/* From nginx's stock mime.types (Debian 12), the types a small site uses. */
static const mime mime_types[] = {
    {"html", "text/html"},
    {"htm", "text/html"},
    {"shtml", "text/html"},
    {"css", "text/css"},
    {"xml", "text/xml"},
    {"gif", "image/gif"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "application/javascript"},
    {"atom", "application/atom+xml"},
    {"rss", "application/rss+xml"},
    {"txt", "text/plain"},
    {"avif", "image/avif"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"bmp", "image/x-ms-bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"json", "application/json"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"zip", "application/zip"},
    {"xhtml", "application/xhtml+xml"},
    {"eot", "application/vnd.ms-fontobject"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"m4a", "audio/x-m4a"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mpeg", "video/mpeg"},
    {"mpg", "video/mpeg"},
    {"mov", "video/quicktime"},
};

const char *tt_http_mime_type(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot != NULL) {
        tt_http_str ext = {dot + 1, strlen(dot + 1)};
        for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++) {
            if (tt_http_str_ieq(ext, mime_types[i].ext))
                return mime_types[i].type;
        }
    }
    return "application/octet-stream";
}

bool tt_http_status_closes(int status)
{
    switch (status) {
    case 400:
    case 408:
    case 413:
    case 414:
    case TT_HTTP_STATUS_HEADER_TOO_LARGE:
    case TT_HTTP_STATUS_TO_HTTPS:
    case 500:
    case 501:
    case 505:
        return true;
    default:
        return false;
    }
}

const char *tt_http_reason(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Moved Temporarily";
    case 304:
        return "Not Modified";
    case 400:
    case TT_HTTP_STATUS_HEADER_TOO_LARGE:
    case TT_HTTP_STATUS_TO_HTTPS:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Not Allowed";
    case 408:
        return "Request Time-out";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 414:
        return "Request-URI Too Large";
    case 416:
        return "Requested Range Not Satisfiable";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Temporarily Unavailable";
    case 504:
        return "Gateway Time-out";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return NULL;
    }
}

/* The HTML page nginx sends with STATUS, signed SERVER, into OUT (CAP).
 * Returns its length or 0. */
static size_t error_body(char *out, size_t cap, int status, const char *server)
{
    size_t n = 0;
    bool ok = cap > 0;
    if (status == TT_HTTP_STATUS_HEADER_TOO_LARGE) {
        tt_http_put(
            out, cap, &n, &ok,
            "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title></head>\r\n"
            "<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
            "<center>Request Header Or Cookie Too Large</center>\r\n");
    } else if (status == TT_HTTP_STATUS_TO_HTTPS) {
        tt_http_put(out, cap, &n, &ok,
                    "<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port"
                    "</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
                    "<center>The plain HTTP request was sent to HTTPS port</center>\r\n");
    } else {
        const char *r = tt_http_reason(status);
        tt_http_put(out, cap, &n, &ok,
                    "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n"
                    "<center><h1>%d %s</h1></center>\r\n",
                    status, r, status, r);
    }
    tt_http_put(out, cap, &n, &ok, "<hr><center>%s</center>\r\n</body>\r\n</html>\r\n", server);
    return ok ? n : 0;
}

/* An error page or a redirect: the head (with LOCATION when not NULL, and
 * Content-Range: bytes * /RANGE_SIZE after Connection when RANGE_SIZE is not
 * negative, as nginx's 416), then the page unless HEAD. */
static size_t page(char *out, size_t cap, int status, const char *server, int64_t now,
                   const char *location, int64_t range_size, bool keep_alive, bool head)
{
    const char *reason = tt_http_reason(status);
    if (reason == NULL || status < 300 || status == 304 || !tt_http_printable(server, 64) ||
        (location != NULL && !tt_http_printable(location, TT_HTTP_LINE_MAX)))
        return 0;
    char body[512];
    size_t blen = error_body(body, sizeof body, status, server);
    if (blen == 0)
        return 0;
    char date[TT_HTTP_DATE_LEN + 1];
    tt_http_date(now, date);
    bool close = !keep_alive || tt_http_status_closes(status);
    int wire = status == TT_HTTP_STATUS_HEADER_TOO_LARGE || status == TT_HTTP_STATUS_TO_HTTPS
                   ? 400
                   : status;

    size_t n = 0;
    bool ok = cap > 0;
    tt_http_put(out, cap, &n, &ok,
                "HTTP/1.1 %d %s\r\nServer: %s\r\nDate: %s\r\nContent-Type: text/html\r\n"
                "Content-Length: %zu\r\n",
                wire, reason, server, date, blen);
    if (location != NULL)
        tt_http_put(out, cap, &n, &ok, "Location: %s\r\n", location);
    tt_http_put(out, cap, &n, &ok, "Connection: %s\r\n", close ? "close" : "keep-alive");
    if (range_size >= 0)
        tt_http_put(out, cap, &n, &ok, "Content-Range: bytes */%lld\r\n", (long long)range_size);
    tt_http_put(out, cap, &n, &ok, "\r\n");
    if (!head && ok) {
        if (cap - n < blen) {
            ok = false;
        } else {
            memcpy(out + n, body, blen);
            n += blen;
        }
    }
    return ok ? n : 0;
}

size_t tt_http_error_page(char *out, size_t cap, int status, const char *server, int64_t now,
                          bool keep_alive, bool head)
{
    if (status < 400)
        return 0;
    return page(out, cap, status, server, now, NULL, -1, keep_alive, head);
}

size_t tt_http_redirect(char *out, size_t cap, const char *server, int64_t now,
                        const char *location, bool keep_alive, bool head)
{
    return page(out, cap, 301, server, now, location, -1, keep_alive, head);
}

size_t tt_http_range_refused(char *out, size_t cap, const char *server, int64_t now, uint64_t size,
                             bool keep_alive, bool head)
{
    if (size > (uint64_t)INT64_MAX)
        return 0;
    return page(out, cap, 416, server, now, NULL, (int64_t)size, keep_alive, head);
}

/* Skips spaces at *I in V. */
static void skip_spaces(tt_http_str v, size_t *i)
{
    while (*i < v.len && v.p[*i] == ' ')
        (*i)++;
}

/* Reads a decimal number at *I in V (at most 18 digits). Returns false
 * when there is none or it is too long. */
static bool range_number(tt_http_str v, size_t *i, uint64_t *x)
{
    size_t start = *i;
    *x = 0;
    while (*i < v.len && v.p[*i] >= '0' && v.p[*i] <= '9') {
        if (*i - start >= 18)
            return false;
        *x = *x * 10 + (uint64_t)(v.p[(*i)++] - '0');
    }
    return *i > start;
}

int tt_http_range_parse(tt_http_str v, uint64_t size, tt_http_range *r)
{
    static const char unit[] = "bytes=";
    size_t i = sizeof unit - 1;
    if (v.len < i || !tt_http_str_ieq((tt_http_str){v.p, i}, unit))
        return 0;
    if (v.len == i)
        return 0;
    size_t satisfiable = 0;
    for (;;) {
        uint64_t first = 0, last = 0;
        bool suffix = false;
        skip_spaces(v, &i);
        if (i < v.len && v.p[i] == '-') {
            suffix = true;
        } else if (!range_number(v, &i, &first)) {
            return 416;
        }
        skip_spaces(v, &i);
        if (i >= v.len || v.p[i] != '-')
            return 416;
        i++;
        skip_spaces(v, &i);
        bool has_last = range_number(v, &i, &last);
        skip_spaces(v, &i);
        if (i < v.len && v.p[i] != ',')
            return 416;
        if (suffix) {
            /* The last LAST bytes. */
            if (!has_last || last == 0)
                return 416;
            first = last >= size ? 0 : size - last;
            last = size ? size - 1 : 0;
            if (size == 0)
                first = 1; /* nothing to send: unsatisfiable */
        } else {
            if (has_last && last < first)
                return 416;
            if (!has_last || last >= size)
                last = size ? size - 1 : 0;
        }
        if (first < size && first <= last) {
            if (satisfiable++ == 0) {
                r->first = first;
                r->last = last;
            }
        }
        if (i >= v.len)
            break;
        i++; /* the comma */
        skip_spaces(v, &i);
        if (i >= v.len)
            return 416;
    }
    if (satisfiable == 0)
        return 416;
    return satisfiable == 1 ? 1 : 2;
}

size_t tt_http_file_head(char *out, size_t cap, int status, const char *server, int64_t now,
                         const char *content_type, uint64_t size, int64_t mtime, bool keep_alive)
{
    return tt_http_range_head(out, cap, status, server, now, content_type, size, mtime, keep_alive,
                              NULL);
}

size_t tt_http_range_head(char *out, size_t cap, int status, const char *server, int64_t now,
                          const char *content_type, uint64_t size, int64_t mtime, bool keep_alive,
                          const tt_http_range *range)
{
    if ((status != 200 && status != 304 && status != 206) || (status == 206) != (range != NULL) ||
        !tt_http_printable(server, 64) || !tt_http_printable(content_type, 100))
        return 0;
    char date[TT_HTTP_DATE_LEN + 1], lm[TT_HTTP_DATE_LEN + 1], etag[TT_HTTP_ETAG_MAX];
    tt_http_date(now, date);
    tt_http_date(mtime, lm);
    tt_http_etag(mtime, size, etag);
    const char *conn = keep_alive ? "keep-alive" : "close";

    size_t n = 0;
    bool ok = cap > 0;
    if (status == 200) {
        tt_http_put(out, cap, &n, &ok,
                    "HTTP/1.1 200 OK\r\nServer: %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                    "Content-Length: %llu\r\nLast-Modified: %s\r\nConnection: %s\r\nETag: %s\r\n"
                    "Accept-Ranges: bytes\r\n\r\n",
                    server, date, content_type, (unsigned long long)size, lm, conn, etag);
    } else if (status == 206) {
        if (range->first > range->last || range->last >= size)
            return 0;
        tt_http_put(out, cap, &n, &ok,
                    "HTTP/1.1 206 Partial Content\r\nServer: %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                    "Content-Length: %llu\r\nLast-Modified: %s\r\nConnection: %s\r\nETag: %s\r\n"
                    "Content-Range: bytes %llu-%llu/%llu\r\n\r\n",
                    server, date, content_type,
                    (unsigned long long)(range->last - range->first + 1), lm, conn, etag,
                    (unsigned long long)range->first, (unsigned long long)range->last,
                    (unsigned long long)size);
    } else {
        tt_http_put(out, cap, &n, &ok,
                    "HTTP/1.1 304 Not Modified\r\nServer: %s\r\nDate: %s\r\nLast-Modified: %s\r\n"
                    "Connection: %s\r\nETag: %s\r\n\r\n",
                    server, date, lm, conn, etag);
    }
    return ok ? n : 0;
}

/* --- static paths ------------------------------------------------------------ */

/* The value of the hex digit C, or -1. */
static int hex_digit(uint8_t c)
{
    static const char digits[] = "0123456789abcdef";
    const char *p = c != 0 ? strchr(digits, tolower(c)) : NULL;
    return p ? (int)(p - digits) : -1;
}

int tt_http_map_path(tt_http_str target, char out[TT_HTTP_PATH_MAX], bool *is_dir)
{
    if (is_dir != NULL)
        *is_dir = false;
    const char *p = target.p;
    size_t n = target.len;

    /* Absolute form: drop the scheme and authority. */
    size_t skip = 0;
    if (n >= 7 && tt_http_str_ieq((tt_http_str){p, 7}, "http://"))
        skip = 7;
    else if (n >= 8 && tt_http_str_ieq((tt_http_str){p, 8}, "https://"))
        skip = 8;
    if (skip > 0) {
        size_t i = skip;
        while (i < n && p[i] != '/' && p[i] != '?' && p[i] != '#')
            i++;
        if (i == skip)
            return 400;
        p += i;
        n -= i;
        if (n == 0 || p[0] != '/') {
            /* "http://host" or "http://host?q": the root. */
            p = "/";
            n = 1;
        }
    }
    if (n == 0 || p[0] != '/')
        return 400;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '?' || p[i] == '#') {
            n = i;
            break;
        }
    }

    /* Decode first, then resolve: an encoded "/" (%2F) separates segments
     * and "%2e%2e" is "..", as in nginx, so no encoding slips a ".." past
     * the resolution. The decoded path is never longer than the target,
     * which is shorter than a head. */
    char dec[TT_HTTP_LINE_MAX];
    size_t d = 0;
    if (n > sizeof dec)
        return 404;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)p[i];
        if (c == '%') {
            int hi = i + 1 < n ? hex_digit((uint8_t)p[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit((uint8_t)p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return 400;
            c = (uint8_t)(hi << 4 | lo);
            i += 2;
            if (c == '\0')
                return 400;
        }
        dec[d++] = (char)c;
    }

    /* Resolve segment by segment into OUT, where each kept segment but a
     * final file name ends in '/'. */
    size_t o = 0;
    bool dir = false; /* whether the path names a directory */
    size_t i = 1;     /* dec[0] is the leading '/' */
    while (i <= d) {
        size_t s = i;
        while (i < d && dec[i] != '/')
            i++;
        size_t len = i - s;
        bool last = i == d;
        i++; /* past the '/' (or the end) */
        if (len == 0 || (len == 1 && dec[s] == '.')) {
            dir = last;
            continue;
        }
        if (len == 2 && dec[s] == '.' && dec[s + 1] == '.') {
            if (o == 0)
                return 400;
            /* Drop the segment before: back past its '/'. */
            o--;
            while (o > 0 && out[o - 1] != '/')
                o--;
            dir = last;
            continue;
        }
        for (size_t k = s; k < s + len; k++) {
            uint8_t c = (uint8_t)dec[k];
            if (c == '\\' || c < 0x20 || c == 0x7f)
                return 404;
        }
        if (o + len + 1 >= TT_HTTP_PATH_MAX)
            return 404;
        memcpy(out + o, dec + s, len);
        o += len;
        if (!last)
            out[o++] = '/';
        dir = false;
    }
    /* OUT holds segments each followed by '/', except a last file name. */
    if (dir || o == 0) {
        static const char index[] = "index.html";
        if (o + sizeof index > TT_HTTP_PATH_MAX)
            return 404;
        memcpy(out + o, index, sizeof index);
        if (is_dir != NULL)
            *is_dir = true;
        return 0;
    }
    out[o] = '\0';
    return 0;
}
