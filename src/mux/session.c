/* Mux sessions and their streams (docs/MUX.md).
 *
 * Sending. A stream's write goes straight to the lower link when the lower
 * link's queue is under LOWER_BOUND: the frames are built over the caller's
 * buffers (header iovecs in between), so nothing is copied here; what does
 * not fit (no credit, lower link busy) is copied into the stream's queue.
 * tt_mux_flush() (send.c) builds batches: the preface once, control frames, window updates,
 * then one frame per queued stream in turn (round-robin) until the batch is
 * full, and writes each batch with one tt_link_write. It stops while the
 * lower link holds LOWER_BOUND bytes and resumes on its drained callback, so
 * what waits, waits here, where the round-robin can interleave a small stream
 * between a bulk stream's frames.
 *
 * Receiving. DATA payload comes from the reader in place. The pieces of each
 * stream are gathered into slots of one buffer shared by every session and
 * handed over in one on_data call per stream per lower read (so the relay
 * makes one write to the destination per read, not one per 16 KiB frame, even
 * when several streams' frames alternate). A stream that is not reading gets
 * its bytes stashed; credit goes back to the peer only as the owner consumes,
 * so a stash is bounded by the window.
 *
 * Callbacks. Besides on_data and on_eof, which run while a lower read is
 * processed (as a TCP link's would), everything reaches owners from the loop
 * through one idle handle: deferred deliveries after read_start, stream
 * errors, drained notices, close callbacks, on_end. So no owner sees a
 * callback inside one of its own calls. Stream memory is freed only there
 * too, which keeps every pointer held across a callback valid.
 *
 * Lifetime. refs counts the owner, the lower link and each stream; at zero
 * the handles are closed and the last close callback frees the session.
 *
 * The gather slots and the block cache are shared by every session of the
 * process, which (like link/tcp.c's read buffer) assumes one loop thread. */
#include "mux/internal.h"

#include <stdlib.h>
#include <string.h>

#include "link/linger.h"

static tt_mux_session *g_sessions;

static void on_idle(uv_idle_t *h);
static void start_server(tt_mux_session *s);

/* Session end. */

static void on_lower_closed(void *ud)
{
    tt_mux_unref(ud);
}

int tt_mux_code_err(uint32_t code)
{
    switch (code) {
    case TT_MUX_PROTOCOL:
        return UV_EPROTO;
    case TT_MUX_TIMEOUT:
        return UV_ETIMEDOUT;
    case TT_MUX_REFUSED:
        return UV_ECONNREFUSED;
    case TT_MUX_OVERLOAD:
        return UV_ENOBUFS;
    default:
        return UV_ECONNRESET;
    }
}

/* Ends the session at once: streams that had not ended both ways get ERR,
 * the owner on_end(ERR). With a CODE other than TT_MUX_OK a go-away carrying
 * it is written first (best effort) and the lower link closed so that it can
 * still leave; otherwise ABORT_LOWER chooses abort over close. */
void tt_mux_fail(tt_mux_session *s, int err, const char *why, uint32_t code, bool abort_lower)
{
    if (s->dead || s->finishing)
        return;
    s->dead = true;
    s->err = err;
    s->why = why;
    uv_timer_stop(&s->ping);
    uv_timer_stop(&s->idle_timer);
    tt_link *lower = s->lower;
    s->lower = NULL;
    if (lower) {
        if (code != TT_MUX_OK && !s->flushing) {
            uint8_t buf[TT_MUX_PREFACE_LEN + TT_MUX_CTRL_MAX];
            size_t n = 0;
            if (!s->preface_sent) {
                memcpy(buf, tt_mux_preface, TT_MUX_PREFACE_LEN);
                n = TT_MUX_PREFACE_LEN;
            }
            n += tt_mux_goaway_encode(s->client ? 0 : s->last_peer, code, buf + n);
            (void)tt_link_write1(lower, buf, n);
            abort_lower = false;
        }
        if (abort_lower)
            tt_link_abort(lower, on_lower_closed, s);
        else
            tt_link_close(lower, on_lower_closed, s);
    }
    s->mem -= s->ctrl_len;
    s->ctrl_len = 0;
    while (!q_empty(&s->ring)) {
        mstream *st = ST_OF(s->ring.next, ring);
        q_del(&st->ring);
        if (st->closing && st->cb_done)
            tt_mux_reap_add(s, st);
    }
    while (!q_empty(&s->wu))
        q_del(s->wu.next);
    for (qnode *n = s->all.next; n != &s->all; n = n->next) {
        mstream *st = ST_OF(n, all);
        tt_mux_table_del(s, st);
        if (st->closing)
            continue;
        if (st->fin_sent && st->fin_rcvd)
            continue; /* complete: its stash and EOF are still delivered */
        tt_mux_st_kill(s, st, err, TT_MUX_OK);
    }
    s->end_pending = true;
    tt_mux_kick(s);
}

void tt_mux_protocol_fail(tt_mux_session *s, const char *why)
{
    tt_mux_fail(s, UV_EPROTO, why, TT_MUX_PROTOCOL, false);
}

/* The graceful end: once going away, with no stream and nothing queued, the
 * lower link is handed to linger (half-close after our last bytes, wait for
 * the peer's close, bounded). */
static void maybe_finish(tt_mux_session *s)
{
    if (s->dead || s->finishing || !(s->goaway_sent || s->goaway_rcvd) || !s->started)
        return;
    if (s->nactive > 0 || tt_mux_has_work(s) || s->flushing ||
        (s->goaway_sent && !s->goaway_queued))
        return;
    s->finishing = true;
    uv_timer_stop(&s->ping);
    uv_timer_stop(&s->idle_timer);
    tt_link *lower = s->lower;
    s->lower = NULL;
    tt_link_linger(lower, s->cfg.linger_ms);
    s->end_pending = true;
    tt_mux_kick(s);
    tt_mux_unref(s);
}

static void on_lower_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    tt_mux_session *s = ud;
    if (!s->dead && !s->finishing)
        tt_mux_take_input(s, data, len);
}

static void on_lower_datav(tt_link *l, void *ud, const uv_buf_t *bufs, unsigned nbufs)
{
    (void)l;
    tt_mux_session *s = ud;
    if (!s->dead && !s->finishing)
        tt_mux_take_inputv(s, bufs, nbufs);
}

static void on_lower_eof(tt_link *l, void *ud)
{
    (void)l;
    tt_mux_session *s = ud;
    /* Only a stream that had not ended both ways is cut; with none, the
     * peer just ended the connection (after its go-away, or idle). */
    bool cut = tt_mux_reader_partial(&s->rd);
    for (qnode *n = s->all.next; n != &s->all && !cut; n = n->next) {
        const mstream *st = ST_OF(n, all);
        cut = !st->closing && !st->reset && !(st->fin_sent && st->fin_rcvd);
    }
    if (!cut) {
        s->goaway_rcvd = true;
        tt_mux_fail(s, 0, NULL, TT_MUX_OK, false);
        return;
    }
    tt_mux_fail(s, UV_ECONNRESET, "the carrier connection ended under open streams", TT_MUX_OK,
                false);
}

static void on_lower_error(tt_link *l, void *ud, int err)
{
    (void)l;
    tt_mux_fail(ud, err, "the carrier connection failed", TT_MUX_OK, true);
}

static void on_lower_drained(tt_link *l, void *ud)
{
    (void)l;
    tt_mux_session *s = ud;
    if (s->want_drain)
        tt_mux_flush(s);
}

static const tt_link_handler lower_handler = {
    .on_data = on_lower_data,
    .on_eof = on_lower_eof,
    .on_error = on_lower_error,
    .on_drained = on_lower_drained,
};

/* The loop side: deferred deliveries, close callbacks, the end. */

void tt_mux_kick(tt_mux_session *s)
{
    if (!s->torn)
        uv_idle_start(&s->idle, on_idle);
}

/* Hands ST what waited for the loop: an error, stashed bytes, the EOF, a
 * drained notice. */
static void dl_one(tt_mux_session *s, mstream *st)
{
    if (st->closing)
        return;
    if (st->err_pending) {
        st->err_pending = false;
        st->base.handler->on_error(&st->base, st->base.ud, st->err);
        return;
    }
    if (st->reading && st->stash_len > 0) {
        uint8_t *buf = st->stash;
        size_t n = st->stash_len;
        st->stash = NULL;
        st->stash_len = st->stash_cap = 0;
        s->mem -= n;
        tt_mux_deliver(s, st, buf, n);
        free(buf);
        if (st->closing)
            return;
        if (st->stash_len > 0) {
            if (st->reading)
                tt_mux_dl_add(s, st);
            return;
        }
    }
    if (st->reading && st->stash_len == 0 && st->fin_rcvd && !st->eof_done && !st->reset) {
        st->eof_done = true;
        st->base.handler->on_eof(&st->base, st->base.ud);
        if (st->closing)
            return;
    }
    if (st->drained_pending) {
        st->drained_pending = false;
        if (st->qbytes == 0 && !st->reset && st->base.handler->on_drained)
            st->base.handler->on_drained(&st->base, st->base.ud);
    }
}

static void on_idle(uv_idle_t *h)
{
    tt_mux_session *s = h->data;
    if (!s->started)
        start_server(s);
    qnode list;
    q_take(&s->dl, &list);
    while (!q_empty(&list)) {
        mstream *st = ST_OF(list.next, dl);
        q_del(&st->dl);
        dl_one(s, st);
    }
    q_take(&s->reap, &list);
    while (!q_empty(&list)) {
        mstream *st = ST_OF(list.next, reap);
        q_del(&st->reap);
        if (!st->cb_done) {
            st->cb_done = true;
            if (st->close_cb)
                st->close_cb(st->close_ud);
        }
        /* One with its FIN still queued is freed once that is sent. */
        if (!q_in(&st->ring))
            tt_mux_st_free(s, st);
    }
    if (s->torn)
        return;
    if (s->end_pending && !s->ended) {
        s->end_pending = false;
        s->ended = true;
        if (!s->owner_closed && s->cb.on_end)
            s->cb.on_end(s->ud, s->err);
        if (s->torn)
            return;
    }
    tt_mux_flush(s);
    maybe_finish(s);
    if (!s->torn && q_empty(&s->dl) && q_empty(&s->reap) && !s->end_pending)
        uv_idle_stop(&s->idle);
}

/* Timers. */

static void on_idle_timeout(uv_timer_t *t)
{
    tt_mux_session *s = t->data;
    if (s->owner_closed) {
        /* The graceful end asked for by tt_mux_close did not come in time. */
        tt_mux_fail(s, UV_ETIMEDOUT, "the session could not end in time", TT_MUX_OK, true);
        return;
    }
    if (s->nactive == 0)
        tt_mux_goaway(s);
}

void tt_mux_arm_idle(tt_mux_session *s)
{
    if (s->cfg.idle_timeout_ms && s->nactive == 0 && !s->dead && !s->finishing && !s->goaway_sent &&
        !s->owner_closed)
        uv_timer_start(&s->idle_timer, on_idle_timeout, s->cfg.idle_timeout_ms, 0);
}

/* Pings only when nothing arrived for an interval, and the peer is dead when
 * nothing at all (not only the pong) arrives for the timeout after a ping.
 * The timer is not re-armed per read: it wakes, compares with the stamps and
 * sleeps for the rest. */
static void on_ping(uv_timer_t *t)
{
    tt_mux_session *s = t->data;
    if (s->dead || s->finishing)
        return;
    uint64_t now = uv_now(s->loop);
    if (s->ping_out) {
        if (s->rx_bytes != s->ping_mark) {
            s->ping_out = false;
        } else if (now - s->ping_at >= s->cfg.ping_timeout_ms) {
            tt_mux_fail(s, UV_ETIMEDOUT, "the peer stopped answering (ping timeout)", TT_MUX_OK,
                        true);
            return;
        } else {
            uv_timer_start(t, on_ping, s->ping_at + s->cfg.ping_timeout_ms - now, 0);
            return;
        }
    }
    uint64_t idle = now - s->last_rx;
    if (idle < s->cfg.ping_interval_ms) {
        uv_timer_start(t, on_ping, s->cfg.ping_interval_ms - idle, 0);
        return;
    }
    uint8_t opaque[8], f[TT_MUX_CTRL_MAX];
    uint64_t seq = ++s->ping_seq;
    for (int i = 0; i < 8; i++)
        opaque[i] = (uint8_t)(seq >> (56 - 8 * i));
    if (tt_mux_ctrl_add(s, f, tt_mux_ping_encode(false, opaque, f)) < 0)
        return;
    s->ping_out = true;
    s->ping_at = now;
    s->ping_mark = s->rx_bytes;
    tt_mux_flush(s);
    if (!s->dead)
        uv_timer_start(t, on_ping, s->cfg.ping_timeout_ms, 0);
}

/* Construction and teardown. */

static void on_handle_closed(uv_handle_t *h)
{
    tt_mux_session *s = h->data;
    if (--s->handles > 0)
        return;
    free(s->ctrl);
    free(s->early);
    free(s->backlog);
    free(s);
}

void tt_mux_unref(tt_mux_session *s)
{
    if (--s->refs > 0)
        return;
    s->torn = true;
    if (s->gprev)
        s->gprev->gnext = s->gnext;
    else
        g_sessions = s->gnext;
    if (s->gnext)
        s->gnext->gprev = s->gprev;
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    uv_close((uv_handle_t *)&s->ping, on_handle_closed);
    uv_close((uv_handle_t *)&s->idle_timer, on_handle_closed);
}

void tt_mux_cfg_default(tt_mux_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->stream_window = TT_MUX_INITIAL_WINDOW;
    cfg->mem_max = TT_MUX_MEM_DEFAULT;
    cfg->max_streams = TT_MUX_STREAMS_DEFAULT;
    cfg->ping_interval_ms = 30000;
    cfg->ping_timeout_ms = 15000;
    cfg->linger_ms = LINGER_DEFAULT_MS;
}

static tt_mux_session *session_new(tt_link *lower, const tt_mux_cfg *cfg,
                                   const tt_mux_callbacks *cb, void *ud, bool client)
{
    tt_mux_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        tt_link_close(lower, NULL, NULL);
        return NULL;
    }
    if (cfg)
        s->cfg = *cfg;
    else
        tt_mux_cfg_default(&s->cfg);
    if (s->cfg.stream_window < TT_MUX_INITIAL_WINDOW)
        s->cfg.stream_window = TT_MUX_INITIAL_WINDOW;
    if (s->cfg.stream_window > TT_MUX_WINDOW_MAX)
        s->cfg.stream_window = TT_MUX_WINDOW_MAX;
    if (s->cfg.mem_max == 0)
        s->cfg.mem_max = TT_MUX_MEM_DEFAULT;
    if (s->cfg.max_streams == 0)
        s->cfg.max_streams = TT_MUX_STREAMS_DEFAULT;
    if (s->cfg.ping_timeout_ms == 0)
        s->cfg.ping_timeout_ms = s->cfg.ping_interval_ms;
    if (s->cfg.linger_ms == 0)
        s->cfg.linger_ms = LINGER_DEFAULT_MS;
    if (cb)
        s->cb = *cb;
    s->ud = ud;
    s->client = client;
    s->lower = lower;
    s->loop = lower->loop;
    s->next_id = 1;
    tt_mux_reader_init(&s->rd, true);
    q_init(&s->all);
    q_init(&s->ring);
    q_init(&s->wu);
    q_init(&s->dl);
    q_init(&s->reap);
    uv_idle_init(s->loop, &s->idle);
    uv_timer_init(s->loop, &s->ping);
    uv_timer_init(s->loop, &s->idle_timer);
    s->idle.data = s->ping.data = s->idle_timer.data = s;
    s->handles = 3;
    s->refs = 2; /* the owner and the lower link */
    s->last_rx = uv_now(s->loop);
    s->gnext = g_sessions;
    if (g_sessions)
        g_sessions->gprev = s;
    g_sessions = s;
    tt_link_set_handler(lower, &lower_handler, s);
    tt_link_set_datav(lower, on_lower_datav);
    if (s->cfg.ping_interval_ms)
        uv_timer_start(&s->ping, on_ping, s->cfg.ping_interval_ms, 0);
    tt_mux_arm_idle(s);
    return s;
}

tt_mux_session *tt_mux_client(tt_link *lower, const tt_mux_cfg *cfg, const tt_mux_callbacks *cb,
                              void *ud)
{
    tt_mux_session *s = session_new(lower, cfg, cb, ud, true);
    if (s == NULL)
        return NULL;
    s->started = true;
    int rc = tt_link_read_start(lower);
    if (rc < 0)
        tt_mux_fail(s, rc, "cannot read from the carrier connection", TT_MUX_OK, true);
    return s;
}

/* Server: the bytes read before the session existed, then the lower link. */
static void start_server(tt_mux_session *s)
{
    s->started = true;
    if (s->early_len > 0) {
        uint8_t *e = s->early;
        size_t n = s->early_len;
        s->early = NULL;
        s->early_len = 0;
        tt_mux_take_input(s, e, n);
        free(e);
    }
    if (s->dead || s->finishing)
        return;
    int rc = tt_link_read_start(s->lower);
    if (rc < 0)
        tt_mux_fail(s, rc, "cannot read from the carrier connection", TT_MUX_OK, true);
}

tt_mux_session *tt_mux_server(tt_link *lower, const tt_mux_cfg *cfg, const tt_mux_callbacks *cb,
                              void *ud, const uint8_t *early, size_t early_len)
{
    tt_mux_session *s = session_new(lower, cfg, cb, ud, false);
    if (s == NULL)
        return NULL;
    /* Nothing may arrive before the early bytes are processed. */
    tt_link_read_stop(lower);
    if (early_len > 0) {
        s->early = malloc(early_len);
        if (s->early == NULL) {
            s->started = true;
            tt_mux_fail(s, UV_ENOMEM, "out of memory", TT_MUX_OK, true);
            return s;
        }
        memcpy(s->early, early, early_len);
        s->early_len = early_len;
    }
    tt_mux_kick(s);
    return s;
}

bool tt_mux_can_open(const tt_mux_session *s)
{
    return s->client && !s->dead && !s->finishing && !s->owner_closed && !s->goaway_sent &&
           !s->goaway_rcvd && s->nactive < s->cfg.max_streams &&
           (uint64_t)s->next_id + 2u * s->unassigned <= TT_MUX_ID_MAX;
}

tt_link *tt_mux_open(tt_mux_session *s)
{
    if (!tt_mux_can_open(s))
        return NULL;
    mstream *st = tt_mux_stream_alloc(s);
    if (st == NULL)
        return NULL;
    s->unassigned++;
    return &st->base;
}

unsigned tt_mux_active(const tt_mux_session *s)
{
    return s->nactive;
}

size_t tt_mux_held(const tt_mux_session *s)
{
    return s->mem;
}

const char *tt_mux_why(const tt_mux_session *s)
{
    return s->why;
}

/* Queues our GO-AWAY once it can be sent: a client's waits until every
 * stream it handed out has sent its open (or was closed), since the server
 * refuses opens that come after it. */
void tt_mux_send_goaway(tt_mux_session *s)
{
    if (!s->goaway_sent || s->goaway_queued || s->dead || s->finishing || s->flushing)
        return;
    if (s->client && s->unassigned > 0)
        return;
    s->goaway_queued = true;
    uint8_t f[TT_MUX_CTRL_MAX];
    if (tt_mux_ctrl_add(s, f, tt_mux_goaway_encode(s->client ? 0 : s->last_peer, TT_MUX_OK, f)) < 0)
        return;
    tt_mux_flush(s);
}

void tt_mux_goaway(tt_mux_session *s)
{
    if (s->goaway_sent || s->dead || s->finishing)
        return;
    s->goaway_sent = true;
    uv_timer_stop(&s->idle_timer);
    tt_mux_send_goaway(s);
    tt_mux_kick(s);
}

void tt_mux_close(tt_mux_session *s)
{
    if (s->owner_closed)
        return;
    s->owner_closed = true;
    if (!s->dead && !s->finishing) {
        if (s->nactive == 0) {
            tt_mux_goaway(s);
            if (!s->dead && !s->finishing)
                uv_timer_start(&s->idle_timer, on_idle_timeout, s->cfg.linger_ms, 0);
        } else {
            tt_mux_fail(s, UV_ECANCELED, "closed with streams open", TT_MUX_OK, true);
        }
    }
    tt_mux_unref(s);
}

void tt_mux_close_all(void)
{
    for (tt_mux_session *s = g_sessions; s != NULL; s = s->gnext)
        tt_mux_fail(s, UV_ECANCELED, "shutting down", TT_MUX_OK, true);
}
