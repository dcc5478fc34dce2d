/* An in-memory link for unit tests: the test plays the peer. It records what
 * is written, can hold writes as pending to simulate a slow socket, and
 * closes asynchronously like a real link. */
#ifndef TT_TEST_MEMLINK_H
#define TT_TEST_MEMLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link/link.h"

typedef struct memlink {
    tt_link base;
    bool reading;
    bool shut;
    bool closing;
    bool closed;  /* the close callback has run */
    bool aborted; /* closed with tt_link_abort */
    bool hold;    /* writes stay pending until memlink_drain */
    size_t pending;
    uint8_t *written;
    size_t written_len;
    uv_timer_t timer; /* drives the asynchronous close */
    tt_link_close_cb close_cb;
    void *close_ud;
} memlink;

void memlink_init(memlink *m, uv_loop_t *loop);
/* The peer sends DATA: delivered only while the link is reading. Returns
 * whether it was delivered. */
bool memlink_deliver(memlink *m, const void *data, size_t len);
void memlink_eof(memlink *m);
void memlink_error(memlink *m, int err);
/* The peer took everything pending. */
void memlink_drain(memlink *m);
/* Frees the record buffer; call after the loop has run the close. */
void memlink_free(memlink *m);

/* Closes LOOP, whose callbacks must all have run. A handle left open is a
 * failure: the handles are listed and the test process aborts, which
 * Criterion reports as a crash also from a suite's fini, where a failed
 * assertion does not fail the test. */
void tt_test_close_loop(uv_loop_t *loop);

#endif
