/* The session link: the tt_link the mux runs over, whose bytes travel on one
 * carrier connection (leg) at a time through the sans-I/O core (core.h).
 *
 * Writes are copied into the core's buffer and framed onto the leg while its
 * queue is under TT_SESS_LEG_BOUND and the in-flight bound allows; what waits
 * is the link's pending, so the mux's own backpressure stops the streams
 * while a leg is missing or slow. Input from the leg is decoded in place and
 * delivered to the owner without a copy, unless the owner stopped reading:
 * then the rest of that read is stashed and the leg's reading stopped.
 *
 * A leg that ends or fails without a CLOSE frame does not end the session:
 * the role reconnects (client) or lingers (server), and the next leg resumes
 * from the offsets exchanged in the join. Errors reach the owner from the
 * loop (idle handle), never inside the owner's own calls.
 *
 * A split session has two legs, up and down (internal.h): this side's DATA
 * goes on one, the peer's arrives on the other, and each brings back only
 * the acknowledgments of its own direction, so either can break and be
 * replaced while the other keeps moving.
 *
 * Lifetime: refs counts the four timers, the idle handle, every leg still
 * closing and the owner; the memory goes at zero, after which the owner's
 * close callback runs. */
#include "session/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "link/linger.h"
#include "link/scratch.h"

/* The DATA of one read of the leg reaches the owner in one call, as a
 * carrier link hands over all the frames of one read at once: the mux then
 * writes once per read to each stream's destination, not once per frame.
 * The payloads stay where they are, between their frames' headers, and go
 * over as pieces (on_datav), which the mux copies into its per-stream
 * buffers anyway; joining them here first cost a copy of every byte. For
 * an owner without on_datav (tt_link_set_datav) they are still joined. */
#define PIECES_MAX 16
TT_SCRATCH_DEFINE(join_scratch, 256u * 1024);

typedef struct gather {
    uv_buf_t piece[PIECES_MAX];
    unsigned n;
} gather;

uint64_t tt_sess_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void unref(tt_sess *s)
{
    if (--s->refs > 0)
        return;
    tt_link_close_cb cb = s->close_cb;
    void *ud = s->close_ud;
    tt_sess_core_free(&s->core);
    free(s->stash);
    free(s);
    if (cb)
        cb(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    unref(h->data);
}

static void on_leg_closed(void *ud)
{
    unref(ud);
}

static void pump(tt_sess *s, bool from_owner);
static void leg_input(tt_sess *s, int slot, const uint8_t *data, size_t len);

const char *tt_sess_leg_name(const tt_sess *s, int slot)
{
    if (!s->split)
        return "";
    return slot == TT_SESS_UP ? " (up leg)" : " (down leg)";
}

/* Lets go of the leg in SLOT: with CLOSE_CODE >= 0 a CLOSE frame is written
 * first and the leg lingers so that it arrives; else it is closed at once. */
static void drop_leg(tt_sess *s, int slot, int close_code)
{
    tt_link *leg = s->leg[slot];
    if (leg == NULL)
        return;
    s->leg[slot] = NULL;
    if (s->leg[0] == NULL && s->leg[1] == NULL)
        uv_timer_stop(&s->live_timer);
    if (slot == tt_sess_rx(s)) {
        uv_timer_stop(&s->ack_timer);
        /* What the owner left unread is this leg's raw bytes: the next leg
         * brings them again from what was taken (a rejoin can replace a
         * leg the session still holds). */
        free(s->stash);
        s->stash = NULL;
        s->stash_len = 0;
    }
    if (close_code >= 0) {
        uint8_t f[TT_SESS_HDR_LEN];
        tt_sess_hdr_encode(TT_SESS_CLOSE, (uint8_t)close_code, 0, 0, f);
        if (tt_link_write1(leg, f, sizeof f) == 0) {
            tt_link_linger(leg, 2000);
            return;
        }
    }
    s->refs++;
    tt_link_close(leg, on_leg_closed, s);
}

static void drop_all(tt_sess *s, int close_code)
{
    drop_leg(s, TT_SESS_UP, close_code);
    drop_leg(s, TT_SESS_DOWN, close_code);
}

static int slot_of(const tt_sess *s, const tt_link *l)
{
    return s->leg[TT_SESS_DOWN] == l ? TT_SESS_DOWN : TT_SESS_UP;
}

/* Whether the owner's reading decides the reading of SLOT's leg: the leg
 * with the peer's DATA; a split session's other leg brings ACKs alone,
 * which are always taken. */
static bool owner_paced(const tt_sess *s, int slot)
{
    return slot == tt_sess_rx(s);
}

static void on_idle(uv_idle_t *h)
{
    tt_sess *s = h->data;
    uv_idle_stop(h);
    if (s->closing)
        return;
    if (s->err_pending) {
        int err = s->err_pending;
        s->err_pending = 0;
        if (s->base.handler && s->base.handler->on_error)
            s->base.handler->on_error(&s->base, s->base.ud, err);
        return;
    }
    int rx = tt_sess_rx(s);
    if (s->stash && s->reading) {
        uint8_t *b = s->stash;
        size_t n = s->stash_len;
        s->stash = NULL;
        s->stash_len = 0;
        leg_input(s, rx, b, n);
        free(b);
    }
    if (!s->closing && !s->dead && s->stash == NULL && s->reading && s->leg[rx] &&
        tt_link_read_start(s->leg[rx]) < 0)
        tt_sess_fail(s, UV_EIO, "cannot read from the carrier connection", false);
}

void tt_sess_fail(tt_sess *s, int err, const char *why, bool send_close)
{
    if (s->dead)
        return;
    s->dead = true;
    s->why = why;
    drop_all(s, send_close ? TT_SESS_CLOSE_ABORT : -1);
    uv_timer_stop(&s->role_timer[0]);
    uv_timer_stop(&s->role_timer[1]);
    free(s->stash);
    s->stash = NULL;
    s->stash_len = 0;
    s->err_pending = err;
    if (!s->closing)
        uv_idle_start(&s->idle, on_idle);
}

/* The leg in SLOT ended without a CLOSE: the session lives on without it. */
static void leg_broken(tt_sess *s, int slot, int err)
{
    if (s->dead || s->closing || s->peer_done || s->leg[slot] == NULL)
        return;
    drop_leg(s, slot, -1);
    tt_sess_reader_init(&s->rd[slot]);
    s->role->leg_lost(s, slot, err);
}

static void deliver_eof(tt_sess *s)
{
    if (s->base.handler && s->base.handler->on_eof)
        s->base.handler->on_eof(&s->base, s->base.ud);
}

/* ACKs go back on the leg that brought the DATA. */
static void send_ack(tt_sess *s)
{
    uint8_t f[TT_SESS_ACK_MAX];
    int rx = tt_sess_rx(s);
    size_t n = tt_sess_core_ack_frame(&s->core, f);
    uv_timer_stop(&s->ack_timer);
    if (s->leg[rx] && tt_link_write1(s->leg[rx], f, n) < 0)
        leg_broken(s, rx, UV_EIO);
}

static void on_ack_timer(uv_timer_t *t)
{
    tt_sess *s = t->data;
    if (s->leg[tt_sess_rx(s)] && tt_sess_core_ack_owed(&s->core))
        send_ack(s);
}

/* Hands what G holds to the owner; returns false when input must stop (the
 * owner closed, or the session died). */
static bool gather_flush(tt_sess *s, gather *g)
{
    unsigned n = g->n;
    g->n = 0;
    const tt_link_handler *h = s->base.handler;
    if (n == 0 || h == NULL || h->on_data == NULL)
        return !s->closing && !s->dead;
    if (n > 1 && s->base.on_datav) {
        s->base.on_datav(&s->base, s->base.ud, g->piece, n);
        return !s->closing && !s->dead;
    }
    /* One call still, so that a handler that changes hands or stops
     * reading during it sees what a carrier link would show it. */
    const uint8_t *p = (const uint8_t *)g->piece[0].base;
    size_t len = g->piece[0].len;
    uint8_t *joined = NULL;
    if (n > 1) {
        for (unsigned i = 1; i < n; i++)
            len += g->piece[i].len;
        joined = tt_scratch_take(&join_scratch, len, len, NULL);
        if (joined == NULL) {
            tt_sess_fail(s, UV_ENOMEM, "out of memory", true);
            return false;
        }
        size_t at = 0;
        for (unsigned i = 0; i < n; i++) {
            memcpy(joined + at, g->piece[i].base, g->piece[i].len);
            at += g->piece[i].len;
        }
        p = joined;
    }
    h->on_data(&s->base, s->base.ud, p, len);
    tt_scratch_give(&join_scratch, joined);
    return !s->closing && !s->dead;
}

static bool gather_add(tt_sess *s, gather *g, const uint8_t *p, size_t n)
{
    if (g->n == PIECES_MAX && !gather_flush(s, g))
        return false;
    g->piece[g->n++] = (uv_buf_t){.base = (char *)(uintptr_t)p, .len = n};
    return true;
}

/* Handles one decoded event from SLOT's leg, DATA joining G; returns false
 * when input must stop (the owner closed, stopped reading, the leg went or
 * the session died). */
static bool take_event(tt_sess *s, int slot, const tt_sess_ev *ev, gather *g)
{
    switch (ev->kind) {
    case TT_SESS_EV_DATA: {
        if (slot != tt_sess_rx(s)) {
            tt_sess_fail(s, UV_EPROTO, "DATA on the leg of the other direction", true);
            return false;
        }
        size_t skip = 0;
        bool eof_now = false;
        if (tt_sess_core_input(&s->core, ev->offset, ev->len, ev->fin, &skip, &eof_now) < 0) {
            tt_sess_fail(s, UV_EPROTO, "the peer skipped bytes of the session", true);
            return false;
        }
        if (ev->len > skip && !gather_add(s, g, ev->data + skip, ev->len - skip))
            return false;
        if (eof_now) {
            if (!gather_flush(s, g))
                return false;
            deliver_eof(s);
            if (s->closing || s->dead)
                return false;
        }
        if (tt_sess_core_ack_due(&s->core))
            send_ack(s);
        else if (tt_sess_core_ack_owed(&s->core) && !uv_is_active((uv_handle_t *)&s->ack_timer))
            uv_timer_start(&s->ack_timer, on_ack_timer, TT_SESS_ACK_DELAY_MS, 0);
        return s->leg[slot] != NULL;
    }
    case TT_SESS_EV_ACK:
        if (slot != tt_sess_tx(s)) {
            tt_sess_fail(s, UV_EPROTO, "an ACK on the leg of the other direction", true);
            return false;
        }
        if (tt_sess_core_ack(&s->core, ev->cum) < 0) {
            tt_sess_fail(s, UV_EPROTO, "the peer acknowledged bytes never sent", true);
            return false;
        }
        pump(s, false);
        return !s->closing && !s->dead && s->leg[slot] != NULL;
    case TT_SESS_EV_CLOSE:
        if (!gather_flush(s, g))
            return false;
        if (ev->code == TT_SESS_CLOSE_DONE && slot != tt_sess_rx(s)) {
            /* A clean end on the leg without the peer's DATA: the other
             * leg's CLOSE, behind the peer's FIN, says the rest. */
            drop_leg(s, slot, -1);
            return false;
        }
        s->peer_done = true;
        if (ev->code == TT_SESS_CLOSE_DONE && s->core.eof) {
            /* A clean end: both directions ended before. */
            drop_all(s, -1);
            return false;
        }
        tt_sess_fail(s, UV_ECONNRESET, "the peer cut the session", false);
        return false;
    default:
        return false;
    }
}

static void leg_input(tt_sess *s, int slot, const uint8_t *data, size_t len)
{
    tt_link *leg = s->leg[slot];
    s->last_rx_ms[slot] = uv_now(s->base.loop);
    gather g = {0};
    size_t i = 0;
    while (i < len && !s->dead && !s->closing && s->leg[slot] == leg && leg) {
        if (!s->reading && owner_paced(s, slot)) {
            /* The owner stopped reading: keep the rest for read_start. */
            uint8_t *b = malloc(len - i);
            if (b == NULL) {
                tt_sess_fail(s, UV_ENOMEM, "out of memory", true);
                break;
            }
            memcpy(b, data + i, len - i);
            s->stash = b;
            s->stash_len = len - i;
            tt_link_read_stop(leg);
            break;
        }
        size_t used = 0;
        tt_sess_ev ev;
        const char *why = NULL;
        int rc = tt_sess_read(&s->rd[slot], data + i, len - i, &used, &ev, &why);
        i += used;
        if (rc < 0) {
            tt_warn("session %s%s: %s", s->name, tt_sess_leg_name(s, slot), why);
            tt_sess_fail(s, UV_EPROTO, why, true);
            break;
        }
        if (rc == 0 || !take_event(s, slot, &ev, &g))
            break;
    }
    if (!s->dead && !s->closing)
        gather_flush(s, &g);
}

/* Leg callbacks. */

static void on_leg_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    tt_sess *s = ud;
    leg_input(s, slot_of(s, l), data, len);
}

static void on_leg_eof(tt_link *l, void *ud)
{
    tt_sess *s = ud;
    leg_broken(s, slot_of(s, l), UV_EOF);
}

static void on_leg_error(tt_link *l, void *ud, int err)
{
    tt_sess *s = ud;
    leg_broken(s, slot_of(s, l), err);
}

static void on_leg_drained(tt_link *l, void *ud)
{
    (void)l;
    pump(ud, false);
}

static const tt_link_handler leg_handler = {on_leg_data, on_leg_eof, on_leg_error, on_leg_drained};

static void on_live_timer(uv_timer_t *t)
{
    tt_sess *s = t->data;
    for (int slot = 0; slot < 2; slot++) {
        if (s->leg[slot] == NULL)
            continue;
        uint64_t quiet = uv_now(s->base.loop) - s->last_rx_ms[slot];
        /* Only the leg of this side's DATA brings acknowledgments of it. */
        bool waiting = slot == tt_sess_tx(s) && s->core.snd_nxt > s->core.snd_una;
        if ((waiting && quiet >= TT_SESS_LIVE_MS) || quiet >= TT_SESS_IDLE_MS) {
            tt_info("session %s%s: the connection is silent for %llu s; taking it as lost", s->name,
                    tt_sess_leg_name(s, slot), (unsigned long long)(quiet / 1000));
            leg_broken(s, slot, UV_ETIMEDOUT);
            if (s->dead || s->closing)
                return;
        }
    }
}

void tt_sess_attach(tt_sess *s, int slot, tt_link *leg, const uint8_t *early, size_t n)
{
    drop_leg(s, slot, -1);
    s->leg[slot] = leg;
    s->made[slot] = true;
    tt_sess_reader_init(&s->rd[slot]);
    /* The join told the peer what arrived: that is an acknowledgment. */
    if (slot == tt_sess_rx(s))
        s->core.rcv_acked = s->core.rcv_nxt;
    s->last_rx_ms[slot] = uv_now(s->base.loop);
    tt_link_set_handler(leg, &leg_handler, s);
    if (!uv_is_active((uv_handle_t *)&s->live_timer))
        uv_timer_start(&s->live_timer, on_live_timer, TT_SESS_LIVE_MS / 4, TT_SESS_LIVE_MS / 4);
    if (n > 0)
        leg_input(s, slot, early, n);
    if (s->leg[slot] != leg || s->dead || s->closing)
        return;
    bool read = owner_paced(s, slot) ? s->reading && s->stash == NULL : true;
    if (read && tt_link_read_start(leg) < 0) {
        leg_broken(s, slot, UV_EIO);
        return;
    }
    if (slot == tt_sess_rx(s) && tt_sess_core_ack_owed(&s->core))
        send_ack(s);
    pump(s, false);
}

/* Frames what may go onto LEG (the leg of this side's DATA, or one whose
 * join is under way), several frames per write, while its queue is under
 * TT_SESS_LEG_BOUND. Returns 0 or the write's error. */
static int frame_onto(tt_sess *s, tt_link *leg)
{
    enum { FRAMES = 16 };
    while (tt_link_pending(leg) < TT_SESS_LEG_BOUND) {
        uint8_t hdr[FRAMES][TT_SESS_HDR_LEN];
        uv_buf_t iov[2 * FRAMES];
        unsigned niov = 0, nf = 0;
        size_t bytes = 0;
        while (nf < FRAMES && bytes < TT_SESS_LEG_BOUND) {
            const uint8_t *d = NULL;
            size_t len = 0;
            if (!tt_sess_core_next(&s->core, hdr[nf], &d, &len))
                break;
            iov[niov++] = uv_buf_init((char *)hdr[nf], TT_SESS_HDR_LEN);
            if (len)
                iov[niov++] = uv_buf_init((char *)(uintptr_t)d, (unsigned)len);
            bytes += len;
            nf++;
        }
        if (nf == 0)
            return 0;
        int rc = tt_link_write(leg, iov, niov);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int tt_sess_send_early(tt_sess *s, tt_link *leg)
{
    return frame_onto(s, leg);
}

/* Frames what may go onto the leg of this side's DATA. FROM_OWNER: called
 * inside the owner's write, where no callback of the owner may run. */
static void pump(tt_sess *s, bool from_owner)
{
    int tx = tt_sess_tx(s);
    /* Bytes pending now may have been seen by the owner, which stops
     * writing while its lower link's pending is high, without a write of
     * its own: a rejoin moves the send point back, and the owner may look
     * (from its input, say) before this pump sends them. So it hears when
     * they are gone. */
    if (tt_sess_core_unsent(&s->core) > 0)
        s->drain_wanted = true;
    /* After a failed write the bytes left wait for the next leg, and the
     * owner, which may stop writing on seeing them pending, must hear when
     * they leave: so the note below is taken on this path too. */
    if (s->leg[tx] && !s->dead && frame_onto(s, s->leg[tx]) < 0)
        leg_broken(s, tx, UV_EIO);
    /* Bytes left unsent are pending in the owner's eyes: it may be waiting
     * for on_drained. */
    if (tt_sess_core_unsent(&s->core) > 0)
        s->drain_wanted = true;
    if (from_owner)
        return;
    if (s->drain_wanted && tt_sess_core_unsent(&s->core) == 0 && !s->closing && !s->dead) {
        s->drain_wanted = false;
        if (s->base.handler && s->base.handler->on_drained)
            s->base.handler->on_drained(&s->base, s->base.ud);
    }
}

/* The link operations of the session link. */

static int sl_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    tt_sess *s = (tt_sess *)l;
    if (s->dead)
        return s->err_pending ? s->err_pending : UV_EPIPE;
    int rc = tt_sess_core_write(&s->core, bufs, nbufs);
    if (rc < 0)
        return rc == -ENOMEM ? UV_ENOMEM : UV_EPIPE;
    pump(s, true);
    return 0;
}

static int sl_read_start(tt_link *l)
{
    tt_sess *s = (tt_sess *)l;
    s->reading = true;
    if (s->dead)
        return 0;
    if (s->stash) {
        uv_idle_start(&s->idle, on_idle);
        return 0;
    }
    int rx = tt_sess_rx(s);
    return s->leg[rx] ? tt_link_read_start(s->leg[rx]) : 0;
}

static void sl_read_stop(tt_link *l)
{
    tt_sess *s = (tt_sess *)l;
    s->reading = false;
    int rx = tt_sess_rx(s);
    if (s->leg[rx])
        tt_link_read_stop(s->leg[rx]);
}

static int sl_shutdown(tt_link *l)
{
    tt_sess *s = (tt_sess *)l;
    if (s->dead)
        return UV_EPIPE;
    tt_sess_core_shutdown(&s->core);
    pump(s, true);
    return 0;
}

static size_t sl_pending(const tt_link *l)
{
    const tt_sess *s = (const tt_sess *)l;
    return tt_sess_core_unsent(&s->core);
}

static void sl_close_as(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    tt_sess *s = (tt_sess *)l;
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_ud = ud;
    /* A close is an end of stream, as a TCP socket's is: what was written
     * goes out with a FIN behind it, and CLOSE says "done" only when all of
     * it is on the leg; else (an abort, no leg, bytes held by the in-flight
     * bound) the peer's streams must fail, not look complete. */
    bool clean = false;
    int tx = tt_sess_tx(s);
    if (!abort && !s->dead && !s->peer_done && s->leg[tx]) {
        if (!s->core.fin_queued)
            tt_sess_core_shutdown(&s->core);
        pump(s, true);
        clean = s->leg[tx] && tt_sess_core_unsent(&s->core) == 0 && s->core.fin_sent;
    }
    s->clean = clean || (s->peer_done && !s->dead);
    /* CLOSE on every leg; a clean one on the leg of the other direction
     * only tells the peer not to wait for that leg. */
    if (!s->dead && !s->peer_done)
        drop_all(s, clean ? TT_SESS_CLOSE_DONE : TT_SESS_CLOSE_ABORT);
    else
        drop_all(s, -1);
    s->role->released(s);
    uv_close((uv_handle_t *)&s->ack_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->live_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->role_timer[0], on_handle_closed);
    uv_close((uv_handle_t *)&s->role_timer[1], on_handle_closed);
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    unref(s);
}

static void sl_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    sl_close_as(l, cb, ud, false);
}

static void sl_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    sl_close_as(l, cb, ud, true);
}

static const char *sl_peer(tt_link *l, char *buf, size_t len)
{
    tt_sess *s = (tt_sess *)l;
    tt_link *leg = s->leg[TT_SESS_UP] ? s->leg[TT_SESS_UP] : s->leg[TT_SESS_DOWN];
    if (leg)
        return tt_link_peer(leg, buf, len);
    snprintf(buf, len, "session %s", s->name);
    return buf;
}

static const tt_link_ops sess_ops = {
    .write = sl_write,
    .read_start = sl_read_start,
    .read_stop = sl_read_stop,
    .shutdown = sl_shutdown,
    .close = sl_close,
    .pending = sl_pending,
    .abort = sl_abort,
    .peer = sl_peer,
};

tt_sess *tt_sess_new(uv_loop_t *loop, const sess_role *role, void *owner,
                     const uint8_t id[TT_SESS_ID_LEN])
{
    tt_sess *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->base.ops = &sess_ops;
    s->base.loop = loop;
    s->base.id = tt_link_next_id();
    s->role = role;
    s->owner = owner;
    memcpy(s->id, id, TT_SESS_ID_LEN);
    snprintf(s->name, sizeof s->name, "s%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
    tt_sess_core_init(&s->core);
    tt_sess_reader_init(&s->rd[0]);
    tt_sess_reader_init(&s->rd[1]);
    uv_timer_init(loop, &s->ack_timer);
    uv_timer_init(loop, &s->live_timer);
    uv_timer_init(loop, &s->role_timer[0]);
    uv_timer_init(loop, &s->role_timer[1]);
    uv_idle_init(loop, &s->idle);
    s->ack_timer.data = s->live_timer.data = s->idle.data = s;
    s->role_timer[0].data = s->role_timer[1].data = s;
    s->refs = 6; /* five handles and the owner */
    return s;
}

void tt_sess_destroy(tt_sess *s, tt_link_close_cb cb, void *ud)
{
    sl_close_as(&s->base, cb, ud, true);
}

void tt_sess_hold(tt_sess *s)
{
    s->refs++;
}

void tt_sess_unref(tt_sess *s)
{
    unref(s);
}

void tt_sess_close_link(tt_sess *s, tt_link *link)
{
    s->refs++;
    tt_link_close(link, on_leg_closed, s);
}
