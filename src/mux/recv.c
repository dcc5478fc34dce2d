/* Mux receiving: frames from the lower link, delivery to streams (gathered
 * per read), stashes, and flow control (the design is described in
 * session.c). */
#include "mux/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint8_t g_gather[GATHER_SLOTS][GATHER_SLOT];
/* The session whose input processing uses the slots now. */
static tt_mux_session *g_gather_owner;

/* The owner consumed N bytes of ST: credit goes back once a quarter of the
 * window is due, so updates are few and the peer never runs dry. */
void tt_mux_consumed(tt_mux_session *s, mstream *st, size_t n)
{
    if (st->reset || st->fin_rcvd || st->closing)
        return;
    st->unacked += (uint32_t)n;
    if (st->unacked >= st->grant / 4)
        tt_mux_wu_add(s, st);
}

void tt_mux_deliver(tt_mux_session *s, mstream *st, const uint8_t *data, size_t n)
{
    st->base.handler->on_data(&st->base, st->base.ud, data, n);
    tt_mux_consumed(s, st, n);
}

static void stash_add(tt_mux_session *s, mstream *st, const uint8_t *data, size_t n)
{
    if (s->mem + n > s->cfg.mem_max) {
        tt_mux_st_kill(s, st, UV_ENOBUFS, TT_MUX_OVERLOAD);
        return;
    }
    if (st->stash_len + n > st->stash_cap) {
        size_t cap = st->stash_cap ? st->stash_cap : 4096;
        while (cap < st->stash_len + n)
            cap *= 2;
        uint8_t *p = realloc(st->stash, cap);
        if (p == NULL) {
            tt_mux_st_kill(s, st, UV_ENOMEM, TT_MUX_INTERNAL);
            return;
        }
        st->stash = p;
        st->stash_cap = cap;
    }
    memcpy(st->stash + st->stash_len, data, n);
    st->stash_len += n;
    s->mem += n;
}

/* Hands slot I's bytes to their stream (or its stash, if it stopped reading
 * meanwhile). */
static void gather_flush_slot(tt_mux_session *s, int i)
{
    mstream *st = s->gst[i];
    if (st == NULL)
        return;
    size_t n = s->glen[i];
    s->gst[i] = NULL;
    s->glen[i] = 0;
    if (st->closing || st->reset)
        return;
    if (st->reading)
        tt_mux_deliver(s, st, g_gather[i], n);
    else
        stash_add(s, st, g_gather[i], n);
}

int tt_mux_gather_slot_of(const tt_mux_session *s, const mstream *st)
{
    for (int i = 0; i < GATHER_SLOTS; i++)
        if (s->gst[i] == st)
            return i;
    return -1;
}

/* Before anything else reaches ST (its EOF, its reset), its gathered bytes. */
static void gather_flush_stream(tt_mux_session *s, mstream *st)
{
    int i = tt_mux_gather_slot_of(s, st);
    if (i >= 0)
        gather_flush_slot(s, i);
}

static void gather_flush_all(tt_mux_session *s)
{
    for (int i = 0; i < GATHER_SLOTS; i++)
        gather_flush_slot(s, i);
}

static void rx_payload(tt_mux_session *s, mstream *st, const uint8_t *data, size_t n)
{
    int i = tt_mux_gather_slot_of(s, st);
    if (i >= 0 && (!st->reading || s->glen[i] + n > GATHER_SLOT)) {
        gather_flush_slot(s, i);
        i = -1;
    }
    /* A delivery may have closed or stopped the stream. */
    if (st->closing || st->reset)
        return;
    if (!st->reading || st->stash_len > 0) {
        stash_add(s, st, data, n);
        return;
    }
    if (g_gather_owner != s) {
        /* Another session is processing its input (a peer in the same
         * process, called from its delivery): hand this piece over as it is. */
        tt_mux_deliver(s, st, data, n);
        return;
    }
    if (i < 0) {
        for (int k = 0; k < GATHER_SLOTS && i < 0; k++)
            if (s->gst[k] == NULL)
                i = k;
        if (i < 0) {
            /* All slots taken: free the fullest. */
            i = 0;
            for (int k = 1; k < GATHER_SLOTS; k++)
                if (s->glen[k] > s->glen[i])
                    i = k;
            gather_flush_slot(s, i);
            if (st->closing || st->reset)
                return;
            if (!st->reading || st->stash_len > 0) {
                stash_add(s, st, data, n);
                return;
            }
        }
        s->gst[i] = st;
    }
    memcpy(g_gather[i] + s->glen[i], data, n);
    s->glen[i] += n;
}

static void rx_fin(tt_mux_session *s, mstream *st)
{
    gather_flush_stream(s, st);
    st->fin_rcvd = true;
    q_del(&st->wu);
    if (st->closing || st->reset)
        return;
    if (st->reading && st->stash_len == 0) {
        st->eof_done = true;
        st->base.handler->on_eof(&st->base, st->base.ud);
    }
}

/* Auto-tuning. A peer that has used more than half its credit while the
 * stream's owner keeps up (reading, nothing stashed) has more bytes in
 * flight than the updates can replenish in time: the window, not the
 * reader, holds it back, and the window doubles. A slow reader never earns a bigger window, so
 * what a stash can hold stays small where it would only wait. */
static void maybe_grow(tt_mux_session *s, mstream *st)
{
    if (st->rwin >= st->grant / 2 || !st->reading || st->stash_len > 0 || st->closing ||
        st->reset || st->grant >= TT_MUX_WINDOW_AUTO_MAX)
        return;
    uint32_t add = st->grant < TT_MUX_WINDOW_AUTO_MAX - st->grant
                       ? st->grant
                       : TT_MUX_WINDOW_AUTO_MAX - st->grant;
    if (s->granted + add > s->cfg.mem_max / 2)
        return;
    st->grant += add;
    s->granted += add;
    st->unacked += add;
    tt_mux_wu_add(s, st);
}

static void on_data_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    if (f->first) {
        uint32_t id = f->hdr.stream;
        mstream *st;
        s->rx_cur = NULL;
        if (f->hdr.flags & TT_MUX_FLAG_OPEN) {
            if (s->client) {
                tt_mux_protocol_fail(s, "the server opened a stream");
                return;
            }
            if ((id & 1) == 0 || id <= s->last_peer) {
                tt_mux_protocol_fail(s, "a new stream's id is even or not above the previous one");
                return;
            }
            s->last_peer = id;
            st = tt_mux_accept_stream(s, id);
            if (s->dead || st == NULL || st->closing)
                return;
        } else {
            st = tt_mux_lookup(s, id);
            if (st == NULL) {
                if (!tt_mux_known_id(s, id))
                    tt_mux_protocol_fail(s, "data for a stream that was never opened");
                return; /* a stream that is gone: its data is dropped */
            }
        }
        if (st->fin_rcvd) {
            tt_mux_protocol_fail(s, "data after the end of a stream");
            return;
        }
        if (f->hdr.len > st->rwin) {
            tt_mux_protocol_fail(s, "data beyond the stream's window");
            return;
        }
        st->rwin -= f->hdr.len;
        s->rx_cur = st;
        if (!(f->hdr.flags & TT_MUX_FLAG_FIN))
            maybe_grow(s, st);
    }
    mstream *st = s->rx_cur;
    if (st == NULL)
        return;
    if (f->len > 0)
        rx_payload(s, st, f->data, f->len);
    if (f->last && (f->hdr.flags & TT_MUX_FLAG_FIN) && s->rx_cur == st)
        rx_fin(s, st);
}

static void on_window_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    mstream *st = tt_mux_lookup(s, f->hdr.stream);
    if (st == NULL) {
        if (!tt_mux_known_id(s, f->hdr.stream))
            tt_mux_protocol_fail(s, "window update for a stream that was never opened");
        return;
    }
    if ((uint64_t)st->credit + f->value > TT_MUX_WINDOW_MAX) {
        tt_mux_protocol_fail(s, "window update past 2^31-1");
        return;
    }
    st->credit += f->value;
    if (tt_mux_st_sendable(st))
        q_push(&s->ring, &st->ring);
}

static void on_reset_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    mstream *st = tt_mux_lookup(s, f->hdr.stream);
    if (st == NULL) {
        if (!tt_mux_known_id(s, f->hdr.stream))
            tt_mux_protocol_fail(s, "reset of a stream that was never opened");
        return;
    }
    gather_flush_stream(s, st);
    tt_mux_st_kill(s, st, tt_mux_code_err(f->value), TT_MUX_OK);
}

static void on_goaway_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    if (f->value != TT_MUX_OK) {
        tt_mux_fail(s, tt_mux_code_err(f->value), "the peer ended the session after an error",
                    TT_MUX_OK, false);
        return;
    }
    s->goaway_rcvd = true;
    tt_mux_kick(s); /* the end is checked from the loop */
    if (!s->client)
        return;
    /* Streams the server will not process: not sent yet, or above its last. */
    for (qnode *n = s->all.next; n != &s->all; n = n->next) {
        mstream *st = ST_OF(n, all);
        if (!st->closing && (st->id == 0 || st->id > f->last_stream))
            tt_mux_st_kill(s, st, UV_ECONNREFUSED, TT_MUX_OK);
    }
}

static void on_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    switch (f->hdr.type) {
    case TT_MUX_DATA:
        on_data_frame(s, f);
        break;
    case TT_MUX_WINDOW:
        on_window_frame(s, f);
        break;
    case TT_MUX_RESET:
        on_reset_frame(s, f);
        break;
    case TT_MUX_PING:
        if (!(f->hdr.flags & TT_MUX_FLAG_ACK)) {
            uint8_t b[TT_MUX_CTRL_MAX];
            tt_mux_ctrl_add(s, b, tt_mux_ping_encode(true, f->opaque, b));
        }
        break;
    default:
        on_goaway_frame(s, f);
        break;
    }
}

/* The lower link. */

/* Takes the frames in DATA; what they carry waits in the gather slots,
 * flushed by the caller once its whole input is taken. */
static void rx(tt_mux_session *s, const uint8_t *data, size_t len)
{
    s->rx_bytes += len;
    s->last_rx = uv_now(s->loop);
    size_t off = 0;
    while (off < len && !s->dead && !s->finishing) {
        tt_mux_frame f;
        size_t used;
        const char *why = NULL;
        int rc = tt_mux_reader_feed(&s->rd, data + off, len - off, &used, &f, &why);
        off += used;
        if (rc < 0) {
            gather_flush_all(s);
            tt_mux_protocol_fail(s, why);
            break;
        }
        if (rc == 0)
            break;
        on_frame(s, &f);
    }
}

/* Keeps input that arrives while input is being processed. */
static bool backlog_add(tt_mux_session *s, const uint8_t *data, size_t len)
{
    uint8_t *p = realloc(s->backlog, s->backlog_len + len);
    if (p == NULL) {
        tt_mux_fail(s, UV_ENOMEM, "out of memory", TT_MUX_INTERNAL, false);
        return false;
    }
    memcpy(p + s->backlog_len, data, len);
    s->backlog = p;
    s->backlog_len += len;
    return true;
}

/* Processes input; what arrives while input is being processed (a lower
 * link that delivers from inside a write made by a callback) waits for the
 * end of the current input, so each stream's bytes stay in order. The
 * pieces of one call are gathered as one input: a stream's bytes in several
 * of them reach it in one delivery. */
void tt_mux_take_inputv(tt_mux_session *s, const uv_buf_t *bufs, unsigned nbufs)
{
    if (s->in_rx) {
        for (unsigned i = 0; i < nbufs; i++)
            if (!backlog_add(s, (const uint8_t *)bufs[i].base, bufs[i].len))
                return;
        return;
    }
    s->in_rx = true;
    bool owner = g_gather_owner == NULL;
    if (owner)
        g_gather_owner = s;
    for (unsigned i = 0; i < nbufs && !s->dead && !s->finishing; i++)
        rx(s, (const uint8_t *)bufs[i].base, bufs[i].len);
    gather_flush_all(s);
    while (s->backlog_len > 0 && !s->dead && !s->finishing) {
        uint8_t *b = s->backlog;
        size_t n = s->backlog_len;
        s->backlog = NULL;
        s->backlog_len = 0;
        rx(s, b, n);
        gather_flush_all(s);
        free(b);
    }
    if (owner)
        g_gather_owner = NULL;
    s->in_rx = false;
    tt_mux_flush(s);
}

void tt_mux_take_input(tt_mux_session *s, const uint8_t *data, size_t len)
{
    uv_buf_t b = {.base = (char *)(uintptr_t)data, .len = len};
    tt_mux_take_inputv(s, &b, 1);
}
