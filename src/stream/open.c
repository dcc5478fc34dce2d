#include "stream/open.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/socks5.h"
#include "codec/streamhdr.h"
#include "core/log.h"

struct tt_stream_open {
    tt_carrier *carrier;
    tt_carrier_dial *dial; /* while dialing */
    tt_link *link;         /* after dialing, until handed over */
    uv_timer_t timer;
    tt_stream_open_cb cb;
    void *ud;
    bool done;       /* the outcome is decided (or cancelled) */
    bool cancelled;  /* the callback must not run */
    int outstanding; /* callbacks still to come: timer close, carrier dial */
    size_t have;
    uint8_t reply[TT_STREAMREPLY_LEN];
    size_t hdr_len, hdr_cap, hdr_base; /* hdr_base: the header's own length */
    uint8_t *hdr;                      /* header + early payload, until written */
};

static void open_release(tt_stream_open *o)
{
    if (--o->outstanding > 0)
        return;
    free(o->hdr);
    free(o);
}

static void on_timer_closed(uv_handle_t *h)
{
    open_release(h->data);
}

/* Reports REP (unless cancelled) and tears down what is left. */
static void open_finish(tt_stream_open *o, uint8_t rep, const uint8_t *left, size_t n)
{
    if (o->done)
        return;
    o->done = true;
    tt_link *link = o->link;
    o->link = NULL;
    if (o->dial) {
        o->carrier->ops->dial_cancel(o->dial);
        o->dial = NULL;
    }
    uv_close((uv_handle_t *)&o->timer, on_timer_closed);
    if (rep != TT_S5_REP_OK && link) {
        tt_link_close(link, NULL, NULL);
        link = NULL;
    }
    if (o->cancelled) {
        if (link)
            tt_link_close(link, NULL, NULL);
        return;
    }
    /* Hand the link over quiet, so no read reaches this object's handler
     * after it is gone; the new owner starts reading when it is ready. */
    if (link)
        tt_link_read_stop(link);
    o->cb(o->ud, rep, link, left, n);
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    tt_stream_open *o = ud;
    (void)l;
    size_t take = TT_STREAMREPLY_LEN - o->have;
    if (take > len)
        take = len;
    memcpy(o->reply + o->have, data, take);
    o->have += take;
    if (o->have < TT_STREAMREPLY_LEN)
        return;
    int code = tt_streamreply_parse(o->reply);
    if (code < 0) {
        tt_warn("c%llu: the server sent a malformed stream reply", (unsigned long long)l->id);
        open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
        return;
    }
    open_finish(o, (uint8_t)code, data + take, len - take);
}

static void on_eof(tt_link *l, void *ud)
{
    tt_warn("c%llu: the server closed the stream before answering", (unsigned long long)l->id);
    open_finish(ud, TT_S5_REP_GENERAL, NULL, 0);
}

static void on_error(tt_link *l, void *ud, int err)
{
    tt_warn("c%llu: stream to the server failed before its answer: %s", (unsigned long long)l->id,
            uv_strerror(err));
    open_finish(ud, TT_S5_REP_GENERAL, NULL, 0);
}

static const tt_link_handler open_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drained = NULL,
};

static void on_dialed(void *ud, int status, tt_link *link)
{
    tt_stream_open *o = ud;
    o->dial = NULL;
    if (o->done) {
        if (link)
            tt_link_close(link, NULL, NULL);
        open_release(o);
        return;
    }
    o->outstanding--;
    if (status < 0) {
        tt_warn("cannot reach the tunnel server: %s", uv_strerror(status));
        open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
        return;
    }
    o->link = link;
    tt_link_set_handler(link, &open_handler, o);
    int rc = tt_link_write1(link, o->hdr, o->hdr_len);
    free(o->hdr);
    o->hdr = NULL;
    if (rc == 0)
        rc = tt_link_read_start(link);
    if (rc < 0)
        open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
}

static void on_timeout(uv_timer_t *t)
{
    tt_warn("no answer from the tunnel server in time");
    open_finish(t->data, TT_S5_REP_TTL_EXPIRED, NULL, 0);
}

int tt_stream_open_start(tt_carrier *c, const tt_target *t, const uint8_t *early, size_t early_len,
                         unsigned timeout_ms, tt_stream_open_cb cb, void *ud, tt_stream_open **out)
{
    tt_stream_open *o = calloc(1, sizeof *o);
    if (o == NULL)
        return -ENOMEM;
    o->hdr_cap = TT_STREAMHDR_MAX + early_len;
    o->hdr = malloc(o->hdr_cap);
    if (o->hdr == NULL) {
        free(o);
        return -ENOMEM;
    }
    o->hdr_len = tt_streamhdr_encode(t, o->hdr);
    if (o->hdr_len == 0) {
        free(o->hdr);
        free(o);
        return -EINVAL;
    }
    o->hdr_base = o->hdr_len;
    if (early_len)
        memcpy(o->hdr + o->hdr_len, early, early_len);
    o->hdr_len += early_len;
    o->carrier = c;
    o->cb = cb;
    o->ud = ud;
    uv_timer_init(c->loop, &o->timer);
    o->timer.data = o;
    o->outstanding = 2;
    int rc = c->ops->dial(c, on_dialed, o, &o->dial);
    if (rc < 0) {
        o->outstanding = 1;
        o->done = true;
        o->cancelled = true;
        uv_close((uv_handle_t *)&o->timer, on_timer_closed);
        return rc;
    }
    if (timeout_ms)
        uv_timer_start(&o->timer, on_timeout, timeout_ms, 0);
    *out = o;
    return 0;
}

int tt_stream_open_feed(tt_stream_open *o, const uint8_t *data, size_t len)
{
    if (o->done)
        return UV_ECANCELED;
    if (o->hdr != NULL) {
        /* Still dialing: it rides with the header. */
        if (len > o->hdr_cap - o->hdr_len) {
            size_t cap = o->hdr_cap * 2;
            while (cap - o->hdr_len < len)
                cap *= 2;
            uint8_t *p = realloc(o->hdr, cap);
            if (p == NULL)
                return UV_ENOMEM;
            o->hdr = p;
            o->hdr_cap = cap;
        }
        memcpy(o->hdr + o->hdr_len, data, len);
        o->hdr_len += len;
        return o->hdr_len - o->hdr_base >= TT_STREAM_EARLY_MAX ? 1 : 0;
    }
    int rc = tt_link_write1(o->link, data, len);
    if (rc < 0)
        return rc;
    return tt_link_pending(o->link) >= TT_STREAM_EARLY_MAX ? 1 : 0;
}

void tt_stream_open_cancel(tt_stream_open *o)
{
    o->cancelled = true;
    open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
}
