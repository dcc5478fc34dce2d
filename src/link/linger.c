#include "link/linger.h"

#include <stdbool.h>
#include <stdlib.h>

typedef struct lingerer {
    tt_link *link;
    uv_timer_t timer;
    int outstanding; /* link close, timer close */
    bool closed;
    bool eof;
} lingerer;

static void linger_release(void *ud)
{
    lingerer *g = ud;
    if (--g->outstanding == 0)
        free(g);
}

static void on_timer_closed(uv_handle_t *h)
{
    linger_release(h->data);
}

static void linger_close(lingerer *g)
{
    if (g->closed)
        return;
    g->closed = true;
    tt_link_close(g->link, linger_release, g);
    uv_close((uv_handle_t *)&g->timer, on_timer_closed);
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    (void)ud;
    (void)data;
    (void)len;
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    lingerer *g = ud;
    /* The peer is done too; close once our last bytes are out. */
    g->eof = true;
    if (tt_link_pending(g->link) == 0)
        linger_close(g);
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    linger_close(ud);
}

static void on_drained(tt_link *l, void *ud)
{
    (void)l;
    lingerer *g = ud;
    if (g->eof)
        linger_close(g);
}

static const tt_link_handler linger_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drained = on_drained,
};

static void on_timeout(uv_timer_t *t)
{
    linger_close(t->data);
}

void tt_link_linger(tt_link *l, unsigned timeout_ms)
{
    lingerer *g = calloc(1, sizeof *g);
    if (g == NULL) {
        tt_link_close(l, NULL, NULL);
        return;
    }
    g->link = l;
    g->outstanding = 2;
    uv_timer_init(l->loop, &g->timer);
    g->timer.data = g;
    tt_link_set_handler(l, &linger_handler, g);
    if (tt_link_shutdown(l) < 0 || tt_link_read_start(l) < 0) {
        linger_close(g);
        return;
    }
    uv_timer_start(&g->timer, on_timeout, timeout_ms ? timeout_ms : 1000, 0);
}
