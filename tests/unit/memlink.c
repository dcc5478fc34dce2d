#include "memlink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ml_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    memlink *m = (memlink *)l;
    if (m->closing || m->shut)
        return UV_EPIPE;
    for (unsigned i = 0; i < nbufs; i++) {
        uint8_t *p = realloc(m->written, m->written_len + bufs[i].len + 1);
        if (p == NULL)
            return UV_ENOMEM;
        m->written = p;
        memcpy(p + m->written_len, bufs[i].base, bufs[i].len);
        m->written_len += bufs[i].len;
        if (m->hold)
            m->pending += bufs[i].len;
    }
    return 0;
}

static int ml_read_start(tt_link *l)
{
    ((memlink *)l)->reading = true;
    return 0;
}

static void ml_read_stop(tt_link *l)
{
    ((memlink *)l)->reading = false;
}

static int ml_shutdown(tt_link *l)
{
    ((memlink *)l)->shut = true;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    memlink *m = h->data;
    m->closed = true;
    if (m->close_cb)
        m->close_cb(m->close_ud);
}

static void ml_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    memlink *m = (memlink *)l;
    if (m->closing)
        return;
    m->closing = true;
    m->reading = false;
    m->close_cb = cb;
    m->close_ud = ud;
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

static void ml_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    ((memlink *)l)->aborted = true;
    ml_close(l, cb, ud);
}

static size_t ml_pending(const tt_link *l)
{
    return ((const memlink *)l)->pending;
}

static const tt_link_ops ml_ops = {
    .write = ml_write,
    .read_start = ml_read_start,
    .read_stop = ml_read_stop,
    .shutdown = ml_shutdown,
    .close = ml_close,
    .pending = ml_pending,
    .abort = ml_abort,
};

void memlink_init(memlink *m, uv_loop_t *loop)
{
    memset(m, 0, sizeof *m);
    m->base.ops = &ml_ops;
    m->base.loop = loop;
    m->base.id = tt_link_next_id();
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
}

bool memlink_deliver(memlink *m, const void *data, size_t len)
{
    if (!m->reading || m->closing)
        return false;
    m->base.handler->on_data(&m->base, m->base.ud, data, len);
    return true;
}

void memlink_eof(memlink *m)
{
    m->reading = false;
    m->base.handler->on_eof(&m->base, m->base.ud);
}

void memlink_error(memlink *m, int err)
{
    m->base.handler->on_error(&m->base, m->base.ud, err);
}

void memlink_drain(memlink *m)
{
    if (m->pending == 0 || m->closing)
        return;
    m->pending = 0;
    m->base.handler->on_drained(&m->base, m->base.ud);
}

void memlink_free(memlink *m)
{
    free(m->written);
    m->written = NULL;
}

void tt_test_close_loop(uv_loop_t *loop)
{
    if (uv_loop_close(loop) == 0)
        return;
    fprintf(stderr, "a handle was left open:\n");
    uv_print_all_handles(loop, stderr);
    abort();
}
