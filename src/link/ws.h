/* The WebSocket link: wraps a lower link (TCP, or TLS for wss://) on which
 * the HTTP upgrade has already been done, and carries the tunnel's byte
 * stream in WebSocket binary messages (RFC 6455), as docs/WS.md specifies.
 *
 * It keeps the whole link contract of link/link.h, including the two things
 * WebSocket itself lacks:
 * - Half-close: shutdown sends an empty binary message after the queued
 *   data; receiving one is on_eof. Reading goes on.
 * - A clean end is told from a cut one: only the empty message ends the
 *   incoming stream cleanly. A close frame before it, a close frame with a
 *   status other than 1000, or a lower link that ends without a close frame
 *   is on_error, so a truncated transfer never looks complete.
 *
 * Errors passed to on_error: UV_EPROTO for a protocol violation (the link
 * has sent a close frame 1002) or a cut stream, UV_ECONNRESET for a peer that
 * closed with a failure code (1011 from an abort, 1001, ...), or the lower
 * link's own error.
 *
 * When both streams have ended (sent and received the empty message) the
 * link sends a close frame 1000 by itself. close sends the empty message (if
 * not sent) and a close frame 1000 (if not sent), waits for the peer's close
 * frame (a client also for the server to end TCP), at most
 * close_timeout_ms, then closes the lower link. abort sends a close frame
 * 1011 and aborts the lower link. Once the peer has closed, write and
 * shutdown fail with UV_EPIPE: our stream can no longer be completed. */
#ifndef TT_LINK_WS_H
#define TT_LINK_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link/link.h"

/* Payload bytes per data frame sent, by default. Frames are cut from each
 * write; larger frames mean fewer headers to parse per byte, and the
 * receiver streams them, so the size costs no buffering (docs/WS.md). */
#define TT_WS_DEFAULT_FRAME (64 * 1024)
/* The largest max_frame accepted; larger values are clamped to it. */
#define TT_WS_MAX_FRAME (16 * 1024 * 1024)
/* How long close waits for the peer's close frame, by default. */
#define TT_WS_DEFAULT_CLOSE_TIMEOUT_MS 2000

typedef struct tt_ws_opts {
    size_t max_frame;          /* payload per sent data frame; 0: TT_WS_DEFAULT_FRAME */
    unsigned ping_ms;          /* send a ping after this long without traffic; 0: never */
    unsigned close_timeout_ms; /* wait for the peer's close frame; 0: the default */
} tt_ws_opts;

/* Wraps LOWER (now owned by the link; its handler is replaced) after the
 * HTTP upgrade. IS_CLIENT: masks the frames it sends and requires unmasked
 * frames from the peer; a server requires masked frames and sends unmasked
 * ones. EARLY (EARLY_LEN bytes, copied) are bytes already read from LOWER
 * after the HTTP head; they are parsed first, once reading starts, and
 * delivered from the loop. OPTS may be NULL for the defaults. Reading is off
 * until tt_link_read_start. Returns NULL (LOWER closed) on failure. */
tt_link *tt_ws_link_new(tt_link *lower, bool is_client, const uint8_t *early, size_t early_len,
                        const tt_ws_opts *opts);

#endif
