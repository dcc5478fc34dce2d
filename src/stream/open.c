#include "stream/open.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/socks5.h"
#include "codec/streamhdr.h"
#include "core/log.h"

/* The default opener: tt's stream-open header, answered by a tt server with
 * a two-byte reply. */
typedef struct hdr_state {
    size_t have;
    uint8_t reply[TT_STREAMREPLY_LEN];
} hdr_state;

static int hdr_begin(void *st, const tt_carrier *c, const tt_target *t, uint8_t *out,
                     const char **why)
{
    (void)st, (void)c;
    size_t n = tt_streamhdr_encode(t, out);
    if (n == 0) {
        *why = "the destination cannot be encoded";
        return -EINVAL;
    }
    return (int)n;
}

static size_t hdr_input(void *st, const tt_carrier *c, const uint8_t *in, size_t n, int *rep,
                        uint8_t *out, size_t *out_len, const char **why)
{
    hdr_state *h = st;
    (void)c, (void)out;
    *out_len = 0;
    size_t take = TT_STREAMREPLY_LEN - h->have;
    if (take > n)
        take = n;
    memcpy(h->reply + h->have, in, take);
    h->have += take;
    if (h->have < TT_STREAMREPLY_LEN)
        return take;
    int code = tt_streamreply_parse(h->reply);
    if (code >= 0) {
        *rep = code;
        return take;
    }
    *rep = TT_S5_REP_GENERAL;
    /* A web carrier's server answers whatever fails its check as a web
     * site would: the likely reason is a key or path that differs. */
    if (memcmp(h->reply, "HT", 2) == 0)
        *why = "the server answered as a web server (HTTP): a different key (-k) or path, or "
               "not a tt server";
    else
        *why = "the server sent a malformed stream reply (not a tt server?)";
    return take;
}

static const tt_carrier_opener hdr_opener = {
    .state_size = sizeof(hdr_state),
    .early_with_request = true,
    .begin = hdr_begin,
    .input = hdr_input,
};

struct tt_stream_open {
    tt_carrier *carrier;
    const tt_carrier_opener *opener;
    void *ostate;          /* the opener's state */
    tt_carrier_dial *dial; /* while dialing */
    tt_link *link;         /* after dialing, until handed over */
    uv_timer_t timer;
    tt_stream_open_cb cb;
    void *ud;
    bool done;       /* the outcome is decided (or cancelled) */
    bool cancelled;  /* the callback must not run */
    int outstanding; /* callbacks still to come: timer close, carrier dial */
    /* What waits to be written: the first request (req_len bytes, until
     * written) and then the application's early bytes. With an opener that
     * takes early bytes only after its reply, they wait here until then. */
    uint8_t *pend;
    size_t pend_len, pend_cap, req_len;
};

static void open_release(tt_stream_open *o)
{
    if (--o->outstanding > 0)
        return;
    free(o->pend);
    free(o->ostate);
    free(o);
}

static void on_timer_closed(uv_handle_t *h)
{
    open_release(h->data);
}

static const char *carrier_text(tt_carrier *c, char *buf, size_t len)
{
    if (c->type->describe)
        return c->type->describe(c, buf, len);
    snprintf(buf, len, "the tunnel server");
    return buf;
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
        o->carrier->type->dial_cancel(o->dial);
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

/* Writes what waits (the early bytes) once the opener allows them. */
static int flush_pending(tt_stream_open *o)
{
    if (o->pend_len == 0)
        return 0;
    int rc = tt_link_write1(o->link, o->pend, o->pend_len);
    o->pend_len = 0;
    return rc;
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    tt_stream_open *o = ud;
    while (len > 0 && !o->done) {
        int rep = -1;
        uint8_t out[TT_OPEN_MSG_MAX];
        size_t out_len = 0;
        const char *why = NULL;
        size_t used = o->opener->input(o->ostate, o->carrier, data, len, &rep, out, &out_len, &why);
        data += used;
        len -= used;
        if (out_len > 0 && tt_link_write1(l, out, out_len) < 0) {
            open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
            return;
        }
        if (rep < 0) {
            if (used == 0)
                break; /* an opener that takes nothing more waits for more */
            continue;
        }
        if (why) {
            char buf[300];
            tt_warn("c%llu: %s: %s", (unsigned long long)l->id,
                    carrier_text(o->carrier, buf, sizeof buf), why);
        }
        if (rep == TT_S5_REP_OK && flush_pending(o) < 0)
            rep = TT_S5_REP_GENERAL;
        open_finish(o, (uint8_t)rep, data, len);
        return;
    }
}

static void on_eof(tt_link *l, void *ud)
{
    tt_stream_open *o = ud;
    char buf[300];
    tt_warn("c%llu: %s closed the stream before answering", (unsigned long long)l->id,
            carrier_text(o->carrier, buf, sizeof buf));
    open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
}

static void on_error(tt_link *l, void *ud, int err)
{
    tt_stream_open *o = ud;
    char buf[300];
    tt_warn("c%llu: stream to %s failed before its answer: %s", (unsigned long long)l->id,
            carrier_text(o->carrier, buf, sizeof buf), uv_strerror(err));
    open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
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
        char buf[300];
        char ebuf[300];
        const tt_carrier_type *t = o->carrier->type;
        tt_warn("cannot reach %s: %s", carrier_text(o->carrier, buf, sizeof buf),
                t->dial_error ? t->dial_error(o->carrier, status, ebuf, sizeof ebuf)
                              : uv_strerror(status));
        open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
        return;
    }
    o->link = link;
    tt_link_set_handler(link, &open_handler, o);
    /* The request, and the early bytes too when the far end takes them
     * before its answer (0-RTT): one write. */
    size_t n = o->opener->early_with_request ? o->pend_len : o->req_len;
    int rc = tt_link_write1(link, o->pend, n);
    memmove(o->pend, o->pend + n, o->pend_len - n);
    o->pend_len -= n;
    o->req_len = 0;
    if (rc == 0)
        rc = tt_link_read_start(link);
    if (rc < 0)
        open_finish(o, TT_S5_REP_GENERAL, NULL, 0);
}

static void on_timeout(uv_timer_t *t)
{
    tt_stream_open *o = t->data;
    char buf[300];
    tt_warn("no answer from %s in time", carrier_text(o->carrier, buf, sizeof buf));
    open_finish(o, TT_S5_REP_TTL_EXPIRED, NULL, 0);
}

static int pend_reserve(tt_stream_open *o, size_t more)
{
    if (more <= o->pend_cap - o->pend_len)
        return 0;
    size_t cap = o->pend_cap ? o->pend_cap * 2 : 1024;
    while (cap - o->pend_len < more)
        cap *= 2;
    uint8_t *p = realloc(o->pend, cap);
    if (p == NULL)
        return UV_ENOMEM;
    o->pend = p;
    o->pend_cap = cap;
    return 0;
}

int tt_stream_open_start(tt_carrier *c, const tt_target *t, const uint8_t *early, size_t early_len,
                         unsigned timeout_ms, tt_stream_open_cb cb, void *ud, tt_stream_open **out)
{
    tt_stream_open *o = calloc(1, sizeof *o);
    if (o == NULL)
        return -ENOMEM;
    o->opener = c->type->opener ? c->type->opener : &hdr_opener;
    o->ostate = calloc(1, o->opener->state_size ? o->opener->state_size : 1);
    const char *why = NULL;
    int n = -ENOMEM;
    if (o->ostate && pend_reserve(o, TT_OPEN_MSG_MAX + early_len) == 0)
        n = o->opener->begin(o->ostate, c, t, o->pend, &why);
    if (n < 0) {
        if (why)
            tt_warn("cannot open a stream: %s", why);
        free(o->pend);
        free(o->ostate);
        free(o);
        return n;
    }
    o->req_len = o->pend_len = (size_t)n;
    if (early_len)
        memcpy(o->pend + o->pend_len, early, early_len);
    o->pend_len += early_len;
    o->carrier = c;
    o->cb = cb;
    o->ud = ud;
    uv_timer_init(c->loop, &o->timer);
    o->timer.data = o;
    o->outstanding = 2;
    int rc = c->type->dial(c, t, on_dialed, o, &o->dial);
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
    if (o->link == NULL || !o->opener->early_with_request) {
        /* Still dialing, or the far end answers first: the bytes wait. */
        if (pend_reserve(o, len) != 0)
            return UV_ENOMEM;
        memcpy(o->pend + o->pend_len, data, len);
        o->pend_len += len;
        return o->pend_len - o->req_len >= TT_STREAM_EARLY_MAX ? 1 : 0;
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
