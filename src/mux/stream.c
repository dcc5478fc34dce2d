/* Mux streams: the stream table, a stream's life, and the link operations
 * its owner calls (the design is described in session.c). */
#include "mux/internal.h"

#include <stdio.h>
#include <stdlib.h>

/* The stream table. */

static mstream **slot_of(tt_mux_session *s, uint32_t id)
{
    return &s->table[(id >> 1) % TABLE_SIZE];
}

mstream *tt_mux_lookup(tt_mux_session *s, uint32_t id)
{
    for (mstream *st = *slot_of(s, id); st; st = st->hnext)
        if (st->id == id)
            return st;
    return NULL;
}

void tt_mux_table_add(tt_mux_session *s, mstream *st)
{
    mstream **slot = slot_of(s, st->id);
    st->hnext = *slot;
    *slot = st;
}

/* Takes ST out of the table: frames for its id are ignored from now on. */
void tt_mux_table_del(tt_mux_session *s, mstream *st)
{
    if (s->rx_cur == st)
        s->rx_cur = NULL;
    if (st->id == 0)
        return;
    for (mstream **p = slot_of(s, st->id); *p; p = &(*p)->hnext) {
        if (*p == st) {
            *p = st->hnext;
            st->hnext = NULL;
            return;
        }
    }
}

/* Whether the peer may name ID: it was opened once, even if gone now. */
bool tt_mux_known_id(const tt_mux_session *s, uint32_t id)
{
    if ((id & 1) == 0)
        return false;
    return s->client ? id < s->next_id : id <= s->last_peer;
}

/* Streams. */

static void nop_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    (void)l, (void)ud, (void)d, (void)n;
}

static void nop_event(tt_link *l, void *ud)
{
    (void)l, (void)ud;
}

static void nop_error(tt_link *l, void *ud, int err)
{
    (void)l, (void)ud, (void)err;
}

/* Until the owner sets its own. */
static const tt_link_handler nop_handler = {nop_data, nop_event, nop_error, nop_event};

/* Ends ST on the wire: sends a reset with CODE (unless TT_MUX_OK or the peer
 * never heard of it), drops what it holds, and reports ERR to its owner from
 * the loop. */
void tt_mux_st_kill(tt_mux_session *s, mstream *st, int err, uint32_t code)
{
    if (st->reset)
        return;
    st->reset = true;
    tt_mux_table_del(s, st);
    q_del(&st->ring);
    q_del(&st->wu);
    tt_mux_q_drop(s, st);
    tt_mux_stash_drop(s, st);
    st->notify_drained = st->drained_pending = false;
    st->err = err ? err : UV_EPIPE;
    if (!st->closing && err != 0) {
        st->err_pending = true;
        tt_mux_dl_add(s, st);
    }
    /* Last, as it may fail the whole session. */
    if (code != TT_MUX_OK && tt_mux_on_wire(st) && !s->dead && !s->finishing) {
        uint8_t f[TT_MUX_CTRL_MAX];
        tt_mux_ctrl_add(s, f, tt_mux_reset_encode(st->id, code, f));
    }
}

static mstream *st_new(tt_mux_session *s)
{
    mstream *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->s = s;
    st->credit = TT_MUX_INITIAL_WINDOW;
    st->rwin = TT_MUX_INITIAL_WINDOW;
    st->grant = s->cfg.stream_window;
    s->granted += st->grant;
    q_push(&s->all, &st->all);
    s->refs++;
    s->nactive++;
    uv_timer_stop(&s->idle_timer);
    return st;
}

void tt_mux_st_free(tt_mux_session *s, mstream *st)
{
    q_del(&st->all);
    s->granted -= st->grant;
    tt_mux_q_drop(s, st);
    tt_mux_stash_drop(s, st);
    free(st);
    tt_mux_unref(s);
}

static const tt_link_ops mstream_ops;

mstream *tt_mux_stream_alloc(tt_mux_session *s)
{
    mstream *st = st_new(s);
    if (st == NULL)
        return NULL;
    st->base.ops = &mstream_ops;
    st->base.handler = &nop_handler;
    st->base.loop = s->loop;
    st->base.id = tt_link_next_id();
    return st;
}

/* Server: a stream the client opens with ID. Refused (reset) when closing,
 * going away or at the limit. */
mstream *tt_mux_accept_stream(tt_mux_session *s, uint32_t id)
{
    mstream *st = NULL;
    if (!s->owner_closed && !s->goaway_sent && !s->goaway_rcvd && s->cb.on_stream &&
        s->nactive < s->cfg.max_streams)
        st = tt_mux_stream_alloc(s);
    if (st == NULL) {
        uint8_t f[TT_MUX_CTRL_MAX];
        tt_mux_ctrl_add(s, f, tt_mux_reset_encode(id, TT_MUX_REFUSED, f));
        return NULL;
    }
    st->id = id;
    st->open_sent = true;
    tt_mux_table_add(s, st);
    if (st->grant > st->rwin) {
        st->unacked = st->grant - st->rwin;
        tt_mux_wu_add(s, st);
    }
    s->cb.on_stream(s->ud, &st->base);
    return st;
}

/* Stream link operations. */

static int st_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    mstream *st = (mstream *)l;
    tt_mux_session *s = st->s;
    if (st->closing || st->fin_queued)
        return UV_EPIPE;
    if (st->reset || s->dead || s->finishing)
        return st->err ? st->err : UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (s->mem + total > s->cfg.mem_max)
        return UV_ENOBUFS;
    unsigned from = 0;
    size_t skip = 0;
    if (st->qbytes == 0 && st->credit > 0 && tt_mux_can_flush(s) &&
        tt_link_pending(s->lower) < LOWER_BOUND) {
        /* Frames straight from the caller's buffers; only the rest is
         * copied. */
        s->direct = st;
        s->dbufs = bufs;
        s->dn = nbufs;
        s->di = 0;
        s->doff = 0;
        st->qbytes = total;
        q_push(&s->ring, &st->ring);
        tt_mux_flush(s);
        s->direct = NULL;
        if (st->reset || s->dead) {
            st->qbytes = 0;
            return st->err ? st->err : UV_EPIPE;
        }
        from = s->di;
        skip = s->doff;
        st->qbytes = 0;
    }
    for (unsigned i = from; i < nbufs; i++) {
        size_t len = bufs[i].len - (i == from ? skip : 0);
        const uint8_t *p = (const uint8_t *)bufs[i].base + (i == from ? skip : 0);
        if (len == 0)
            continue;
        if (tt_mux_q_append(s, st, p, len) < 0) {
            tt_mux_st_kill(s, st, UV_ENOMEM, TT_MUX_INTERNAL);
            return UV_ENOMEM;
        }
        st->qbytes += len;
    }
    if (st->qbytes > 0) {
        st->notify_drained = true;
        if (tt_mux_st_sendable(st))
            q_push(&s->ring, &st->ring);
        tt_mux_flush(s);
    }
    return 0;
}

static int st_read_start(tt_link *l)
{
    mstream *st = (mstream *)l;
    if (st->closing)
        return UV_EINVAL;
    st->reading = true;
    if (st->stash_len > 0 || (st->fin_rcvd && !st->eof_done) || st->err_pending)
        tt_mux_dl_add(st->s, st);
    return 0;
}

static void st_read_stop(tt_link *l)
{
    ((mstream *)l)->reading = false;
}

static int st_shutdown(tt_link *l)
{
    mstream *st = (mstream *)l;
    tt_mux_session *s = st->s;
    if (st->closing || st->fin_queued || st->reset)
        return 0;
    if (s->dead || s->finishing)
        return UV_EPIPE;
    st->fin_queued = true;
    if (tt_mux_st_sendable(st))
        q_push(&s->ring, &st->ring);
    tt_mux_flush(s);
    return 0;
}

static size_t st_pending(const tt_link *l)
{
    return ((const mstream *)l)->qbytes;
}

/* Close and abort. A close after both directions ended (or with only our FIN
 * still to send) is clean; otherwise bytes would be lost one way or the
 * other, and the stream is reset so the peer sees a failure, as TCP does. */
static void st_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    mstream *st = (mstream *)l;
    tt_mux_session *s = st->s;
    if (st->closing)
        return;
    /* Bytes gathered for it are dropped, never handed over inside close. */
    int slot = tt_mux_gather_slot_of(s, st);
    bool lost = slot >= 0 && s->glen[slot] > 0;
    if (slot >= 0) {
        s->gst[slot] = NULL;
        s->glen[slot] = 0;
    }
    st->closing = true;
    st->reading = false;
    st->close_cb = cb;
    st->close_ud = ud;
    s->nactive--;
    if (!st->open_sent)
        s->unassigned--;
    q_del(&st->dl);
    q_del(&st->wu);
    st->err_pending = false;
    bool clean = !abort && !lost && st->qbytes == 0 && st->fin_rcvd && st->stash_len == 0;
    if (!st->reset && !s->dead && !s->finishing && tt_mux_on_wire(st)) {
        if (clean) {
            tt_mux_table_del(s, st);
            if (!st->fin_sent) {
                st->fin_queued = true;
                q_push(&s->ring, &st->ring);
            }
        } else {
            tt_mux_st_kill(s, st, 0, TT_MUX_CANCEL);
        }
    } else {
        st->reset = true;
        tt_mux_table_del(s, st);
        q_del(&st->ring);
    }
    tt_mux_q_drop(s, st);
    tt_mux_stash_drop(s, st);
    tt_mux_reap_add(s, st);
    tt_mux_arm_idle(s);
    tt_mux_flush(s);
    tt_mux_send_goaway(s);
}

static void st_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    st_end(l, cb, ud, false);
}

static void st_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    st_end(l, cb, ud, true);
}

static const char *st_peer(tt_link *l, char *buf, size_t len)
{
    tt_mux_session *s = ((mstream *)l)->s;
    if (s->lower)
        return tt_link_peer(s->lower, buf, len);
    if (len > 0)
        snprintf(buf, len, "?");
    return buf;
}

static const tt_link_ops mstream_ops = {
    .write = st_write,
    .read_start = st_read_start,
    .read_stop = st_read_stop,
    .shutdown = st_shutdown,
    .close = st_close,
    .pending = st_pending,
    .abort = st_abort,
    .peer = st_peer,
};
