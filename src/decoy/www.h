/* A web server that answers like a stock nginx (Debian 12, nginx 1.22):
 * what a tt server does with a connection that is not a tunnel (another
 * path, no upgrade, bad authentication), so that probing it shows an
 * ordinary web site.
 *
 * It serves GET and HEAD of the files under a directory over any link, with
 * nginx's answers: its error pages, its heads (Last-Modified, ETag
 * "hex(mtime)-hex(size)", Accept-Ranges), 304 for If-None-Match and
 * If-Modified-Since (exact), 206 for one byte range (with If-Range), 416
 * for a range nothing satisfies, 301 to "DIR/" for a directory named without its
 * slash, 403 for a directory without index.html or an unreadable file, 404
 * for what is missing, 405 for other methods (and for POST to a file), 400 or
 * 501/505 for what nginx refuses, 413 for a Content-Length over 1 MiB.
 * Request bodies are read and dropped (Content-Length or chunked). Requests
 * on one connection are answered in order (keep-alive, pipelining); the
 * connection ends after an answer that says "Connection: close" (with a
 * lingering close, as nginx), after the peer's EOF once the answer in
 * progress is out, and silently (no 408) on nginx's timers: a request head
 * must be whole HEADER_TIMEOUT_MS after its first byte (the first one
 * FIRST_DEADLINE), whatever trickles in meanwhile (client_header_timeout);
 * a kept-alive connection waits KEEPALIVE_TIMEOUT_MS for the next request
 * (keepalive_timeout); a body or the peer's reading may stall for
 * IDLE_TIMEOUT_MS (client_body_timeout, send_timeout); the 1000th request
 * or the first after an hour is answered with "Connection: close"
 * (keepalive_requests, keepalive_time). As nginx, a TLS
 * connection given up on in the middle of a request ends without
 * close_notify, an idle kept-alive one with it.
 *
 * Files are read with libuv's thread-pool file calls on the link's loop, in
 * 64 KiB pieces, and reading stops while the link holds more than 256 KiB:
 * memory per connection is bounded by one head (8 KiB), one network read
 * and that window.
 *
 * Checked against nginx 1.22.1 on Debian 12: ~120 requests (valid, odd and
 * malformed) give the same bytes apart from Date. Not done (nginx does them;
 * none is visible without asking for it): several ranges in one request
 * (nginx answers multipart/byteranges; this sends the whole file),
 * If-Match/If-Unmodified-Since (412), HTTP/0.9 requests (this waits for a
 * version and times out), MSIE padding of error pages. */
#ifndef TT_DECOY_WWW_H
#define TT_DECOY_WWW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link/link.h"

typedef struct tt_www_opts {
    /* Directory to serve, or NULL: then every GET, HEAD or POST is a 404. */
    const char *dir;
    /* The Server value and the signature of error pages: "nginx" as with
     * server_tokens off, "nginx/1.22.1" as Debian's default. NULL: "nginx". */
    const char *server_name;
    /* Ends a connection whose body or reader stalls this long; 0: 60000. */
    unsigned idle_timeout_ms;
    /* A request head must be whole this long after its first byte; 0:
     * 60000. */
    unsigned header_timeout_ms;
    /* A kept-alive connection waits this long for its next request; 0:
     * 75000. */
    unsigned keepalive_timeout_ms;
    /* The loop time (uv_now) by which the first request head must be
     * whole, when it began before (a TLS handshake, a carrier's own check);
     * 0: HEADER_TIMEOUT_MS from now. */
    uint64_t first_deadline;
    /* The link is plain TCP on a TLS port: every request nginx would serve
     * gets its "400 The plain HTTP request was sent to HTTPS port". */
    bool plain_on_https;
    /* Scheme of redirect locations: whether the link is TLS. */
    bool https;
    /* The port clients connect to, shown in redirect locations as nginx
     * shows its listening port; 0 or the scheme's default port: none. */
    int port;
    /* Host in redirect locations for a request without Host (HTTP/1.0);
     * NULL: "localhost". */
    const char *default_host;
} tt_www_opts;

/* Serves HTTP on L, which it takes over (its handler is replaced; it is
 * closed when done). EARLY (EARLY_LEN bytes, copied) is what was already
 * read from L: the start of the first request. Nothing is answered from
 * inside this call; the work starts from the loop. The strings in O are
 * copied. */
void tt_www_serve_opts(tt_link *l, const tt_www_opts *o, const uint8_t *early, size_t early_len);

/* tt_www_serve_opts with DIR_OR_NULL and SERVER_NAME, over plain HTTP,
 * with one timeout for everything: IDLE_TIMEOUT_MS for the idle, header
 * and keep-alive timers alike. */
void tt_www_serve(tt_link *l, const char *dir_or_null, const uint8_t *early, size_t early_len,
                  unsigned idle_timeout_ms, const char *server_name);

#endif
