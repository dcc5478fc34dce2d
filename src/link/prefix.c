#include "link/prefix.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct prefix_link {
    tt_link base;
    tt_link *lower;
    uint8_t *buf; /* the bytes to deliver first; NULL once delivered */
    size_t len;
    bool reading;
    bool closing;
    uv_timer_t timer; /* delivers the prefix from the loop, not inside read_start */
    int outstanding;  /* the lower link's close and the timer's close */
    tt_link_close_cb close_cb;
    void *close_ud;
} prefix_link;

static void lower_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    prefix_link *p = ud;
    p->base.handler->on_data(&p->base, p->base.ud, data, len);
}

static void lower_eof(tt_link *l, void *ud)
{
    (void)l;
    prefix_link *p = ud;
    p->base.handler->on_eof(&p->base, p->base.ud);
}

static void lower_error(tt_link *l, void *ud, int err)
{
    (void)l;
    prefix_link *p = ud;
    p->base.handler->on_error(&p->base, p->base.ud, err);
}

static void lower_drained(tt_link *l, void *ud)
{
    (void)l;
    prefix_link *p = ud;
    if (p->base.handler->on_drained)
        p->base.handler->on_drained(&p->base, p->base.ud);
}

static const tt_link_handler lower_handler = {lower_data, lower_eof, lower_error, lower_drained};

static void on_timer(uv_timer_t *t)
{
    prefix_link *p = t->data;
    if (p->closing || !p->reading || p->buf == NULL)
        return;
    uint8_t *buf = p->buf;
    size_t len = p->len;
    p->buf = NULL;
    p->base.handler->on_data(&p->base, p->base.ud, buf, len);
    free(buf);
    /* The handler may have stopped reading or closed the link meanwhile. */
    if (!p->closing && p->reading && tt_link_read_start(p->lower) < 0)
        p->base.handler->on_error(&p->base, p->base.ud, UV_EIO);
}

static int p_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    return tt_link_write(((prefix_link *)l)->lower, bufs, nbufs);
}

static int p_read_start(tt_link *l)
{
    prefix_link *p = (prefix_link *)l;
    p->reading = true;
    if (p->buf != NULL)
        return uv_timer_start(&p->timer, on_timer, 0, 0);
    return tt_link_read_start(p->lower);
}

static void p_read_stop(tt_link *l)
{
    prefix_link *p = (prefix_link *)l;
    p->reading = false;
    uv_timer_stop(&p->timer);
    tt_link_read_stop(p->lower);
}

static int p_shutdown(tt_link *l)
{
    return tt_link_shutdown(((prefix_link *)l)->lower);
}

static void part_done(void *ud)
{
    prefix_link *p = ud;
    if (--p->outstanding > 0)
        return;
    tt_link_close_cb cb = p->close_cb;
    void *cud = p->close_ud;
    free(p->buf);
    free(p);
    if (cb)
        cb(cud);
}

static void timer_closed(uv_handle_t *h)
{
    part_done(h->data);
}

static void p_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    prefix_link *p = (prefix_link *)l;
    if (p->closing)
        return;
    p->closing = true;
    p->close_cb = cb;
    p->close_ud = ud;
    p->outstanding = 2;
    uv_close((uv_handle_t *)&p->timer, timer_closed);
    if (abort)
        tt_link_abort(p->lower, part_done, p);
    else
        tt_link_close(p->lower, part_done, p);
}

static void p_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    p_end(l, cb, ud, false);
}

static void p_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    p_end(l, cb, ud, true);
}

static size_t p_pending(const tt_link *l)
{
    return tt_link_pending(((const prefix_link *)l)->lower);
}

static const char *p_peer(tt_link *l, char *buf, size_t len)
{
    return tt_link_peer(((prefix_link *)l)->lower, buf, len);
}

static const tt_link_ops prefix_ops = {
    .write = p_write,
    .read_start = p_read_start,
    .read_stop = p_read_stop,
    .shutdown = p_shutdown,
    .close = p_close,
    .pending = p_pending,
    .abort = p_abort,
    .peer = p_peer,
};

tt_link *tt_prefix_link(tt_link *lower, const uint8_t *data, size_t len)
{
    if (len == 0)
        return lower;
    prefix_link *p = calloc(1, sizeof *p);
    uint8_t *buf = malloc(len);
    if (p == NULL || buf == NULL) {
        free(p);
        free(buf);
        tt_link_close(lower, NULL, NULL);
        return NULL;
    }
    memcpy(buf, data, len);
    p->buf = buf;
    p->len = len;
    p->lower = lower;
    p->base.ops = &prefix_ops;
    p->base.loop = lower->loop;
    p->base.id = lower->id;
    uv_timer_init(lower->loop, &p->timer);
    p->timer.data = p;
    tt_link_set_handler(lower, &lower_handler, p);
    return &p->base;
}
