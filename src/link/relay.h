/* The relay: the one place where bytes move between two links, in both
 * directions, with half-close, backpressure and an idle timeout. Entries and
 * exits hand their two links to it and are done.
 *
 * Per direction A->B: data read from A is written to B; while B's queue holds
 * more than the high watermark, reading A stops, and resumes when B drains.
 * EOF from A shuts down B's write side once B's queue is sent. The relay ends
 * when both directions have ended, on an error on either link, or after the
 * idle timeout without data in either direction; it then closes both links and
 * frees itself. */
#ifndef TT_LINK_RELAY_H
#define TT_LINK_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "link/link.h"

typedef struct tt_relay_opts {
    unsigned idle_timeout_ms; /* 0: none */
    size_t high_watermark;    /* 0: TT_RELAY_HIGH_WATERMARK */
    const char *label; /* for the closing log line, e.g. "c3 127.0.0.1:5000 -> example.com:80" */
    bool a_eof;        /* A reported its EOF before the relay began (a half-close during an open):
                          B is shut down at once and A is never read */
} tt_relay_opts;

#define TT_RELAY_HIGH_WATERMARK (256 * 1024)

/* Room for a label: an id, a peer address and a target. */
#define TT_RELAY_LABEL_MAX 400

/* Starts relaying between A and B; the relay owns both links from now on.
 * Either may already have bytes queued for writing. Returns 0, or -ENOMEM
 * after closing both links. */
int tt_relay_start(tt_link *a, tt_link *b, const tt_relay_opts *opts);

/* Closes every running relay (both links each), for a clean shutdown. */
void tt_relay_close_all(void);

#endif
