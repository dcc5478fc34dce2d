/* The client side of a stream: ask the carrier for a link to the server, send
 * the stream-open header (with any payload the application already sent, so
 * it rides in the same write), and wait for the server's connect result. */
#ifndef TT_STREAM_OPEN_H
#define TT_STREAM_OPEN_H

#include <stddef.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "core/target.h"
#include "link/link.h"

typedef struct tt_stream_open tt_stream_open;

/* REP is a SOCKS5 reply code. With REP 0, LINK is the stream (now owned by
 * the callee, with reading stopped) and LEFTOVER/LEN are stream bytes that arrived with the reply,
 * valid only during the call. Otherwise LINK is NULL. */
typedef void (*tt_stream_open_cb)(void *ud, uint8_t rep, tt_link *link, const uint8_t *leftover,
                                  size_t len);

/* Starts opening a stream to T over C, sending EARLY (may be NULL/0) after
 * the header. Gives up with TT_S5_REP_TTL_EXPIRED after TIMEOUT_MS (0: none).
 * The callback runs once, never from inside this call, unless the open is
 * cancelled. Returns 0 or a negative code. */
int tt_stream_open_start(tt_carrier *c, const tt_target *t, const uint8_t *early, size_t early_len,
                         unsigned timeout_ms, tt_stream_open_cb cb, void *ud, tt_stream_open **out);

/* Early data: what the application sends while the open is under way,
 * before the server's answer. While the carrier is still dialing it joins
 * the header (one write); once the header is out it goes straight to the
 * server, which reads it after it has connected to the destination. Returns
 * 1 when TT_STREAM_EARLY_MAX bytes or more are waiting (the caller should
 * stop reading the application until the callback), 0 to read on, or a
 * negative code when it cannot be sent (the caller cancels the open). Only
 * before the callback has run. */
#define TT_STREAM_EARLY_MAX (64 * 1024)
int tt_stream_open_feed(tt_stream_open *o, const uint8_t *data, size_t len);

/* Abandons an open whose callback has not run; the callback will not run. */
void tt_stream_open_cancel(tt_stream_open *o);

#endif
