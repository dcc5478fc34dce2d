/* Fuzz harness for the WebSocket link's frame reader (src/link/ws.c: wslay
 * for the headers, tt's own checks and payload streaming), driven over an
 * in-memory lower link.
 *
 * Input layout:
 *   byte 0   bit 0: client end (expects unmasked frames), bits 1-6: chunk
 *            size - 1, bit 7: end with an abort instead of a close
 *   byte 1   bit 0: stop reading after every delivery, bit 1: hand the
 *            first third to the link as early bytes
 *   the rest the bytes the peer sends
 *
 * Invariants: never more payload than input, at most one EOF and one error,
 * no empty deliveries, and every byte of memory freed after the close. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "link/ws.h"
#include "memlink.h"

#include "fuzz_check.h"

static uv_loop_t g_loop;
static bool g_inited;
static size_t g_got;
static int g_eofs, g_errs;
static bool g_stop_next;

static void on_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    (void)ud;
    CHECK(n > 0);
    /* Touch both ends: the lent buffer must be valid for the whole call. */
    volatile uint8_t x = (uint8_t)(d[0] ^ d[n - 1]);
    (void)x;
    g_got += n;
    if (g_stop_next) {
        tt_link_read_stop(l);
        g_stop_next = false;
    }
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l, (void)ud;
    CHECK(++g_eofs == 1);
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l, (void)ud, (void)err;
    CHECK(++g_errs == 1);
}

static const tt_link_handler handler = {on_data, on_eof, on_error, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_inited) {
        uv_loop_init(&g_loop);
        g_inited = true;
    }
    if (size < 2)
        return 0;
    bool client = data[0] & 1;
    size_t step = (size_t)((data[0] >> 1) & 0x3f) + 1;
    bool abort_end = data[0] & 0x80;
    bool stopper = data[1] & 1;
    bool early = data[1] & 2;
    data += 2;
    size -= 2;
    g_got = 0;
    g_eofs = g_errs = 0;
    g_stop_next = false;

    memlink m;
    memlink_init(&m, &g_loop);
    size_t e = early ? size / 3 : 0;
    tt_ws_opts o = {.max_frame = 100};
    tt_link *l = tt_ws_link_new(&m.base, client, data, e, &o);
    CHECK(l != NULL);
    tt_link_set_handler(l, &handler, NULL);
    tt_link_read_start(l);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    size_t off = e;
    while (off < size) {
        size_t n = size - off < step ? size - off : step;
        if (!memlink_deliver(&m, data + off, n)) {
            if (g_errs)
                break;
            tt_link_read_start(l);
            uv_run(&g_loop, UV_RUN_NOWAIT);
            continue;
        }
        off += n;
        g_stop_next = stopper;
        /* Writes interleaved with reads, bounded. */
        if (m.written_len < 4096)
            tt_link_write1(l, data, size < 300 ? size : 300);
    }
    CHECK(g_got <= size);
    if (abort_end)
        tt_link_abort(l, NULL, NULL);
    else
        tt_link_close(l, NULL, NULL);
    if (off < size && m.reading)
        memlink_deliver(&m, data + off, size - off);
    memlink_eof(&m);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    memlink_free(&m);
    return 0;
}
