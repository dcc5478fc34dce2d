/* What a stock nginx (Debian 12, nginx 1.22) answers, sans-I/O: its error
 * pages, redirects and static-file heads, byte for byte; byte ranges, ETags
 * and MIME types as it computes them; and how it maps a request target onto
 * a file under its root. The decoy web site (decoy/www.h) answers with
 * these, so that a tt server asked something other than a tunnel upgrade
 * answers exactly like a plain nginx. Heads are parsed by codec/http1.h. */
#ifndef TT_DECOY_NGINX_H
#define TT_DECOY_NGINX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/http1.h"

/* The ETag nginx gives a static file, quotes included: "hex(mtime)-hex(size)"
 * in lower-case hex without leading zeros. Writes it and a NUL into OUT;
 * returns its length. */
#define TT_HTTP_ETAG_MAX 40
size_t tt_http_etag(int64_t mtime, uint64_t size, char out[TT_HTTP_ETAG_MAX]);

/* The MIME type nginx's stock mime.types gives PATH by its extension
 * (ignoring case), or "application/octet-stream" (nginx's default_type). */
const char *tt_http_mime_type(const char *path);

/* nginx's internal status for a plain HTTP request sent to its TLS port:
 * sent as "400 Bad Request" with its own page, and the connection ends. */
#define TT_HTTP_STATUS_TO_HTTPS 497

/* Whether nginx always ends the connection after answering STATUS (400,
 * 413, 414, 494, 497, 500, 501, 505 and 408). */
bool tt_http_status_closes(int status);

/* The reason phrase nginx writes for STATUS (e.g. "Not Allowed" for 405), or
 * NULL for a status without one here. */
const char *tt_http_reason(int status);

/* Builds the complete answer a stock nginx sends for an error STATUS (400,
 * 403, 404, 405, 408, 412, 413, 414, 416, 494 and 497 (sent as 400), 500,
 * 501, 502, 503, 504 or 505): status line, Server: SERVER, Date: NOW,
 * Content-Type: text/html, Content-Length, Connection, and its HTML page
 * signed SERVER (e.g. "nginx/1.22.1", or "nginx" as with server_tokens off).
 * The connection stays open only when KEEP_ALIVE and the status allows it
 * (see tt_http_status_closes). HEAD (a HEAD request) leaves the page out but
 * keeps its Content-Length, as nginx does. Returns the length written into
 * OUT (CAP bytes; 1024 is always enough for a SERVER of up to 64 bytes), or
 * 0 when STATUS is unknown, SERVER is unsafe to print (a byte outside
 * printable ASCII) or CAP is too small. */
size_t tt_http_error_page(char *out, size_t cap, int status, const char *server, int64_t now,
                          bool keep_alive, bool head);

/* As tt_http_error_page for nginx's "301 Moved Permanently" to LOCATION
 * (printable ASCII, at most TT_HTTP_LINE_MAX bytes), as sent for a
 * directory asked for without its final slash. */
size_t tt_http_redirect(char *out, size_t cap, const char *server, int64_t now,
                        const char *location, bool keep_alive, bool head);

/* Writes into OUT the head nginx sends for a static file: STATUS 200 (with
 * Content-Type, Content-Length: SIZE and Accept-Ranges: bytes) or 304 (with
 * neither), with Server, Date: NOW, Last-Modified: MTIME, Connection and
 * ETag, in nginx's order. Returns the length, or 0 if CAP (512 is always
 * enough for a SERVER of up to 64 bytes and CONTENT_TYPE of up to 100) is
 * too small or an argument is unsafe to print. */
size_t tt_http_file_head(char *out, size_t cap, int status, const char *server, int64_t now,
                         const char *content_type, uint64_t size, int64_t mtime, bool keep_alive);

/* One byte range of a file, both ends included. */
typedef struct tt_http_range {
    uint64_t first, last;
} tt_http_range;

/* Reads a Range value for a file of SIZE bytes as nginx's range filter
 * does. Returns 0 when it is to be ignored (not "bytes=", or nothing after
 * it: answer 200), 1 for one satisfiable range (*R set: answer 206), 2 for
 * several (nginx answers multipart/byteranges, *R is the first), or 416 when
 * it is malformed or nothing in it is satisfiable. Spaces around numbers are
 * taken; a range's end past the file is cut to it; "-N" is the last N
 * bytes. */
int tt_http_range_parse(tt_http_str value, uint64_t size, tt_http_range *r);

/* As tt_http_file_head, also for STATUS 206 with RANGE (not NULL only then):
 * Content-Length of the range and Content-Range: bytes FIRST-LAST/SIZE after
 * ETag, without Accept-Ranges, as nginx sends it. */
size_t tt_http_range_head(char *out, size_t cap, int status, const char *server, int64_t now,
                          const char *content_type, uint64_t size, int64_t mtime, bool keep_alive,
                          const tt_http_range *range);

/* nginx's 416 answer for a file of SIZE bytes: its error page, with
 * Content-Range: bytes * /SIZE (no space) after Connection. */
size_t tt_http_range_refused(char *out, size_t cap, const char *server, int64_t now, uint64_t size,
                             bool keep_alive, bool head);

/* The largest relative path tt_http_map_path writes, NUL included. */
#define TT_HTTP_PATH_MAX 4096

/* Maps a request TARGET onto a relative path under a static directory, as
 * nginx resolves a URI under its root: an absolute-form target
 * ("http://host/x") is reduced to its path; the query and fragment are
 * dropped; %XX escapes are decoded; empty and "." segments are dropped and
 * ".." removes the segment before it; a path that ends in "/" (or in "." or
 * "..") names a directory and gets "index.html" appended, and *DIR (when DIR
 * is not NULL) tells whether it did. Writes the result (never with a leading
 * "/", never holding a ".." segment) and a NUL into OUT (TT_HTTP_PATH_MAX
 * bytes). Pure: it touches no file.
 *
 * Returns 0, or the status to answer: 400 for a target that is not a path
 * ("*", "a.css"), a bad %-escape, an encoded NUL, or ".." above the root;
 * 404 for a backslash or control byte in the decoded path (names no
 * sensible file would have) or a path longer than TT_HTTP_PATH_MAX. */
int tt_http_map_path(tt_http_str target, char out[TT_HTTP_PATH_MAX], bool *dir);

#endif
