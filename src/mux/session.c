/* Mux sessions and their streams (docs/MUX.md).
 *
 * Sending. A stream's write goes straight to the lower link when the lower
 * link's queue is under LOWER_BOUND: the frames are built over the caller's
 * buffers (header iovecs in between), so nothing is copied here; what does
 * not fit (no credit, lower link busy) is copied into the stream's queue.
 * flush() builds batches: the preface once, control frames, window updates,
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
#include "mux/session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mux.h"
#include "link/linger.h"

/* What the lower link may hold before flushing waits for its drained
 * callback, and the size of one batch: a 128 KiB batch halves the write
 * calls of a bulk transfer against 64 KiB, and the lower link's own queue
 * then stays under 192 KiB. */
#define LOWER_BOUND (64 * 1024)
#define BATCH_BYTES (128 * 1024)
#define BATCH_IOV 128
#define BATCH_FRAMES 64
#define BATCH_WU 32
/* Queued bytes live in blocks of BLOCK_DATA bytes (CHUNK_MIN for a small
 * remainder, so small writes share one small block). Freed big blocks are
 * kept in a small process-wide cache: allocating and freeing a quarter
 * megabyte per relay read otherwise makes the allocator trim and regrow its
 * heap, which cost a third of the throughput of several bulk streams. */
#define CHUNK_MIN 4096
#define BLOCK_DATA (64 * 1024)
#define BLOCK_CACHE 8
/* Control frames waiting for the lower link; past this the peer is flooding
 * us while not reading. */
#define CTRL_CAP (16 * 1024)
/* Streams gathered at once, and payload per on_data call. */
#define GATHER_SLOTS 4
#define GATHER_SLOT (256 * 1024)
#define TABLE_SIZE 64
#define LINGER_DEFAULT_MS 5000

typedef struct qnode {
    struct qnode *prev, *next; /* next NULL: not in a list */
} qnode;

typedef struct chunk {
    struct chunk *next;
    size_t off, len, cap; /* unsent bytes are data[off, len) */
    uint8_t data[];
} chunk;

typedef struct mstream {
    tt_link base;
    tt_mux_session *s;
    uint32_t id; /* 0: a client stream not on the wire yet */
    struct mstream *hnext;
    qnode all, ring, wu, dl, reap;
    /* Sending. */
    chunk *qhead, *qtail;
    size_t qbytes;   /* queued bytes (with a write's own buffers during the write) */
    uint32_t credit; /* what the peer lets us send */
    bool open_sent;  /* the peer knows the stream */
    bool fin_queued, fin_sent;
    bool notify_drained; /* owned bytes were queued: tell the owner when they are gone */
    bool drained_pending;
    /* Receiving. */
    uint32_t rwin;    /* credit the peer holds */
    uint32_t grant;   /* the window we give */
    uint32_t unacked; /* consumed, not yet returned as credit */
    uint8_t *stash;
    size_t stash_len, stash_cap;
    bool fin_rcvd, eof_done;
    bool reading;
    /* Lifetime. */
    bool reset;       /* over on the wire: reset either way, or the session ended */
    int err;          /* why it was cut, for later writes */
    bool err_pending; /* the owner has yet to hear of ERR */
    bool closing, cb_done;
    tt_link_close_cb close_cb;
    void *close_ud;
} mstream;

struct tt_mux_session {
    tt_link *lower;
    uv_loop_t *loop;
    tt_mux_cfg cfg;
    tt_mux_callbacks cb;
    void *ud;
    bool client;
    tt_mux_reader rd;
    mstream *table[TABLE_SIZE];
    qnode all, ring, wu, dl, reap;
    unsigned nactive;    /* streams not closed by their owners */
    unsigned unassigned; /* client: open streams without an id */
    uint32_t next_id;    /* client: the next id to give */
    uint32_t last_peer;  /* server: the highest id the client opened */
    uint8_t *ctrl;
    size_t ctrl_len, ctrl_cap;
    size_t mem;
    size_t granted; /* the sum of the streams' grants */
    bool preface_sent;
    bool started;   /* server: the early bytes were processed */
    bool dead;      /* failed: the lower link is closed, streams cut */
    bool finishing; /* ended gracefully: the lower link is lingering */
    bool owner_closed, end_pending, ended;
    bool goaway_sent, goaway_rcvd;
    bool goaway_queued; /* our GO-AWAY frame is on its way */
    bool flushing, want_drain;
    bool torn;
    int err;
    const char *why;
    /* A write being sent from the caller's buffers. */
    mstream *direct;
    const uv_buf_t *dbufs;
    unsigned dn, di;
    size_t doff;
    /* Receiving. */
    mstream *rx_cur;            /* the stream of the DATA frame being read (NULL: discard) */
    mstream *gst[GATHER_SLOTS]; /* the stream of each gather slot */
    size_t glen[GATHER_SLOTS];
    bool in_rx;
    uint8_t *backlog; /* input that arrived while input was being processed */
    size_t backlog_len;
    uint64_t rx_bytes, last_rx;
    uint8_t *early;
    size_t early_len;
    /* Timers. */
    uv_idle_t idle;
    uv_timer_t ping, idle_timer;
    bool ping_out;
    uint64_t ping_at, ping_mark, ping_seq;
    int refs, handles;
    struct tt_mux_session *gprev, *gnext;
};

static tt_mux_session *g_sessions;
static chunk *g_blocks; /* free big blocks */
static unsigned g_nblocks;
static uint8_t g_gather[GATHER_SLOTS][GATHER_SLOT];
/* The session whose input processing uses the slots now. */
static tt_mux_session *g_gather_owner;

static void flush(tt_mux_session *s);
static void kick(tt_mux_session *s);
static void fail(tt_mux_session *s, int err, const char *why, uint32_t code, bool abort_lower);
static void unref(tt_mux_session *s);
static void st_kill(tt_mux_session *s, mstream *st, int err, uint32_t code);
static void arm_idle(tt_mux_session *s);
static void send_goaway(tt_mux_session *s);

/* Intrusive lists (circular, with the session's node as the sentinel). */

static void q_init(qnode *h)
{
    h->prev = h->next = h;
}

static bool q_empty(const qnode *h)
{
    return h->next == h;
}

static bool q_in(const qnode *n)
{
    return n->next != NULL;
}

static void q_push(qnode *h, qnode *n)
{
    if (q_in(n))
        return;
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static void q_del(qnode *n)
{
    if (!q_in(n))
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Moves every node of FROM to TO (empty), so a pass handles only what was
 * there when it started. */
static void q_take(qnode *from, qnode *to)
{
    q_init(to);
    if (q_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    q_init(from);
}

#define ST_OF(node, field) ((mstream *)((char *)(node)-offsetof(mstream, field)))

/* The stream table. */

static mstream **slot_of(tt_mux_session *s, uint32_t id)
{
    return &s->table[(id >> 1) % TABLE_SIZE];
}

static mstream *lookup(tt_mux_session *s, uint32_t id)
{
    for (mstream *st = *slot_of(s, id); st; st = st->hnext)
        if (st->id == id)
            return st;
    return NULL;
}

static void table_add(tt_mux_session *s, mstream *st)
{
    mstream **slot = slot_of(s, st->id);
    st->hnext = *slot;
    *slot = st;
}

/* Takes ST out of the table: frames for its id are ignored from now on. */
static void table_del(tt_mux_session *s, mstream *st)
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
static bool known_id(const tt_mux_session *s, uint32_t id)
{
    if ((id & 1) == 0)
        return false;
    return s->client ? id < s->next_id : id <= s->last_peer;
}

/* Memory. */

static chunk *chunk_new(size_t cap)
{
    chunk *c;
    if (cap == BLOCK_DATA && g_blocks) {
        c = g_blocks;
        g_blocks = c->next;
        g_nblocks--;
    } else {
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
    }
    c->next = NULL;
    c->off = c->len = 0;
    c->cap = cap;
    return c;
}

static void chunk_free(chunk *c)
{
    if (c->cap == BLOCK_DATA && g_nblocks < BLOCK_CACHE) {
        c->next = g_blocks;
        g_blocks = c;
        g_nblocks++;
        return;
    }
    free(c);
}

static void q_drop(tt_mux_session *s, mstream *st)
{
    chunk *c = st->qhead;
    while (c) {
        chunk *next = c->next;
        s->mem -= c->len - c->off;
        chunk_free(c);
        c = next;
    }
    st->qhead = st->qtail = NULL;
    if (s->direct != st)
        st->qbytes = 0;
}

static void stash_drop(tt_mux_session *s, mstream *st)
{
    s->mem -= st->stash_len;
    free(st->stash);
    st->stash = NULL;
    st->stash_len = st->stash_cap = 0;
}

static int q_append(tt_mux_session *s, mstream *st, const uint8_t *p, size_t n)
{
    chunk *t = st->qtail;
    if (t && t->cap > t->len) {
        size_t k = n < t->cap - t->len ? n : t->cap - t->len;
        memcpy(t->data + t->len, p, k);
        t->len += k;
        p += k;
        n -= k;
        s->mem += k;
    }
    while (n > 0) {
        chunk *c = chunk_new(n >= CHUNK_MIN ? BLOCK_DATA : CHUNK_MIN);
        if (c == NULL)
            return UV_ENOMEM;
        size_t k = n < c->cap ? n : c->cap;
        memcpy(c->data, p, k);
        c->len = k;
        if (st->qtail)
            st->qtail->next = c;
        else
            st->qhead = c;
        st->qtail = c;
        p += k;
        n -= k;
        s->mem += k;
    }
    return 0;
}

static int ctrl_add(tt_mux_session *s, const uint8_t *frame, size_t n)
{
    if (s->ctrl_len + n > CTRL_CAP) {
        fail(s, UV_ENOBUFS, "control frames pile up while the peer does not read", TT_MUX_OK, true);
        return UV_ENOBUFS;
    }
    if (s->ctrl_len + n > s->ctrl_cap) {
        size_t cap = s->ctrl_cap ? s->ctrl_cap * 2 : 256;
        while (cap < s->ctrl_len + n)
            cap *= 2;
        uint8_t *p = realloc(s->ctrl, cap);
        if (p == NULL) {
            fail(s, UV_ENOMEM, "out of memory", TT_MUX_INTERNAL, false);
            return UV_ENOMEM;
        }
        s->ctrl = p;
        s->ctrl_cap = cap;
    }
    memcpy(s->ctrl + s->ctrl_len, frame, n);
    s->ctrl_len += n;
    s->mem += n;
    return 0;
}

/* Scheduling. */

static bool st_sendable(const mstream *st)
{
    if (st->reset)
        return false;
    if (st->qbytes > 0)
        return st->credit > 0;
    return st->fin_queued && !st->fin_sent;
}

static bool has_work(const tt_mux_session *s)
{
    return s->ctrl_len > 0 || !q_empty(&s->ring) || !q_empty(&s->wu);
}

static void wu_add(tt_mux_session *s, mstream *st)
{
    q_push(&s->wu, &st->wu);
}

static void dl_add(tt_mux_session *s, mstream *st)
{
    q_push(&s->dl, &st->dl);
    kick(s);
}

static void reap_add(tt_mux_session *s, mstream *st)
{
    q_push(&s->reap, &st->reap);
    kick(s);
}

/* Whether the peer has heard of ST (so a reset must be sent to end it). */
static bool on_wire(const mstream *st)
{
    return st->open_sent;
}

/* Batches. */

typedef struct batch {
    uv_buf_t iov[BATCH_IOV];
    unsigned niov;
    uint8_t hdr[BATCH_FRAMES][TT_MUX_HDR_LEN];
    unsigned nhdr;
    uint8_t wu[BATCH_WU * TT_MUX_CTRL_MAX];
    size_t bytes;
    chunk *done; /* blocks fully taken, freed after the write */
} batch;

/* Adds up to WANT payload bytes of ST to B; returns how many. */
static size_t take_payload(tt_mux_session *s, mstream *st, batch *b, size_t want)
{
    size_t got = 0;
    if (s->direct == st) {
        while (got < want && b->niov < BATCH_IOV && s->di < s->dn) {
            const uv_buf_t *u = &s->dbufs[s->di];
            size_t avail = u->len - s->doff;
            size_t n = avail < want - got ? avail : want - got;
            if (n > 0)
                b->iov[b->niov++] = uv_buf_init(u->base + s->doff, (unsigned)n);
            s->doff += n;
            got += n;
            if (s->doff == u->len) {
                s->di++;
                s->doff = 0;
            }
        }
        return got;
    }
    while (got < want && b->niov < BATCH_IOV && st->qhead) {
        chunk *c = st->qhead;
        size_t avail = c->len - c->off;
        size_t n = avail < want - got ? avail : want - got;
        b->iov[b->niov++] = uv_buf_init((char *)c->data + c->off, (unsigned)n);
        c->off += n;
        got += n;
        if (c->off == c->len) {
            st->qhead = c->next;
            if (st->qhead == NULL)
                st->qtail = NULL;
            c->next = b->done;
            b->done = c;
        }
    }
    s->mem -= got;
    return got;
}

/* Adds ST's next frame to B: as much payload as its queue, its credit and
 * TT_MUX_FRAME_MAX allow, with OPEN on a client stream's first frame and FIN
 * on the frame that empties a shut-down stream's queue. */
static void build_frame(tt_mux_session *s, mstream *st, batch *b)
{
    uint8_t flags = 0;
    if (!st->open_sent) {
        st->id = s->next_id;
        s->next_id += 2;
        s->unassigned--;
        table_add(s, st);
        st->open_sent = true;
        flags |= TT_MUX_FLAG_OPEN;
        /* More window than the initial one is granted once the open is out,
         * so the update cannot overtake it. */
        if (st->grant > st->rwin) {
            st->unacked += st->grant - st->rwin;
            wu_add(s, st);
        }
    }
    size_t want = st->qbytes;
    if (want > st->credit)
        want = st->credit;
    if (want > TT_MUX_FRAME_MAX)
        want = TT_MUX_FRAME_MAX;
    unsigned hslot = b->niov++;
    size_t got = want > 0 ? take_payload(s, st, b, want) : 0;
    st->qbytes -= got;
    st->credit -= (uint32_t)got;
    if (st->fin_queued && st->qbytes == 0) {
        flags |= TT_MUX_FLAG_FIN;
        st->fin_sent = true;
    }
    if (got == 0 && flags == 0) {
        b->niov--; /* nothing to say: never an empty frame without flags */
        return;
    }
    tt_mux_hdr h = {.type = TT_MUX_DATA, .flags = flags, .len = (uint16_t)got, .stream = st->id};
    tt_mux_hdr_encode(&h, b->hdr[b->nhdr]);
    b->iov[hslot] = uv_buf_init((char *)b->hdr[b->nhdr], TT_MUX_HDR_LEN);
    b->nhdr++;
    b->bytes += TT_MUX_HDR_LEN + got;
}

/* Window updates for what owners consumed. */
static void add_window_updates(tt_mux_session *s, batch *b)
{
    size_t off = 0;
    unsigned n = 0;
    while (!q_empty(&s->wu) && n < BATCH_WU) {
        mstream *st = ST_OF(s->wu.next, wu);
        q_del(&st->wu);
        if (st->reset || st->fin_rcvd || st->unacked == 0)
            continue;
        off += tt_mux_window_encode(st->id, st->unacked, b->wu + off);
        st->rwin += st->unacked;
        st->unacked = 0;
        n++;
    }
    if (off > 0) {
        b->iov[b->niov++] = uv_buf_init((char *)b->wu, (unsigned)off);
        b->bytes += off;
    }
}

static bool can_flush(const tt_mux_session *s)
{
    return !s->flushing && !s->dead && !s->finishing && s->lower != NULL && s->started;
}

static void flush(tt_mux_session *s)
{
    if (!can_flush(s))
        return;
    s->flushing = true;
    while (!s->dead && tt_link_pending(s->lower) < LOWER_BOUND) {
        batch b;
        b.niov = 0;
        b.nhdr = 0;
        b.bytes = 0;
        b.done = NULL;
        /* Slot 0 is kept for the preface, which goes only with a frame. */
        bool preface = !s->preface_sent;
        if (preface)
            b.niov = 1;
        size_t ctrl = s->ctrl_len;
        if (ctrl > 0) {
            b.iov[b.niov++] = uv_buf_init((char *)s->ctrl, (unsigned)ctrl);
            b.bytes += ctrl;
        }
        add_window_updates(s, &b);
        while (!q_empty(&s->ring) && b.bytes < BATCH_BYTES && b.nhdr < BATCH_FRAMES &&
               b.niov + 2 <= BATCH_IOV) {
            mstream *st = ST_OF(s->ring.next, ring);
            q_del(&st->ring);
            build_frame(s, st, &b);
            if (st_sendable(st))
                q_push(&s->ring, &st->ring); /* to the back: round-robin */
            else if (st->closing && st->cb_done)
                reap_add(s, st); /* its last frame is out: free it */
            if (st->qbytes == 0 && st->notify_drained) {
                st->notify_drained = false;
                st->drained_pending = true;
                dl_add(s, st);
            }
        }
        if (b.niov == (preface ? 1u : 0u))
            break;
        if (preface) {
            b.iov[0] = uv_buf_init((char *)(uintptr_t)tt_mux_preface, TT_MUX_PREFACE_LEN);
            s->preface_sent = true;
        }
        int rc = tt_link_write(s->lower, b.iov, b.niov);
        while (b.done) {
            chunk *c = b.done;
            b.done = c->next;
            chunk_free(c);
        }
        if (ctrl > 0) {
            /* Nothing adds control frames while a batch is built. */
            s->mem -= ctrl;
            s->ctrl_len = 0;
            free(s->ctrl);
            s->ctrl = NULL;
            s->ctrl_cap = 0;
        }
        if (rc < 0) {
            fail(s, rc, "cannot write to the carrier connection", TT_MUX_OK, true);
            break;
        }
    }
    s->flushing = false;
    s->want_drain = !s->dead && has_work(s);
    send_goaway(s); /* the last open may just have gone out */
    if (!s->dead && (s->goaway_sent || s->goaway_rcvd) && s->nactive == 0)
        kick(s); /* the end may be near: checked from the loop */
}

/* Session end. */

static void on_lower_closed(void *ud)
{
    unref(ud);
}

static int code_err(uint32_t code)
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
static void fail(tt_mux_session *s, int err, const char *why, uint32_t code, bool abort_lower)
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
            reap_add(s, st);
    }
    while (!q_empty(&s->wu))
        q_del(s->wu.next);
    for (qnode *n = s->all.next; n != &s->all; n = n->next) {
        mstream *st = ST_OF(n, all);
        table_del(s, st);
        if (st->closing)
            continue;
        if (st->fin_sent && st->fin_rcvd)
            continue; /* complete: its stash and EOF are still delivered */
        st_kill(s, st, err, TT_MUX_OK);
    }
    s->end_pending = true;
    kick(s);
}

static void protocol_fail(tt_mux_session *s, const char *why)
{
    fail(s, UV_EPROTO, why, TT_MUX_PROTOCOL, false);
}

/* The graceful end: once going away, with no stream and nothing queued, the
 * lower link is handed to linger (half-close after our last bytes, wait for
 * the peer's close, bounded). */
static void maybe_finish(tt_mux_session *s)
{
    if (s->dead || s->finishing || !(s->goaway_sent || s->goaway_rcvd) || !s->started)
        return;
    if (s->nactive > 0 || has_work(s) || s->flushing || (s->goaway_sent && !s->goaway_queued))
        return;
    s->finishing = true;
    uv_timer_stop(&s->ping);
    uv_timer_stop(&s->idle_timer);
    tt_link *lower = s->lower;
    s->lower = NULL;
    tt_link_linger(lower, s->cfg.linger_ms);
    s->end_pending = true;
    kick(s);
    unref(s);
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
static void st_kill(tt_mux_session *s, mstream *st, int err, uint32_t code)
{
    if (st->reset)
        return;
    st->reset = true;
    table_del(s, st);
    q_del(&st->ring);
    q_del(&st->wu);
    q_drop(s, st);
    stash_drop(s, st);
    st->notify_drained = st->drained_pending = false;
    st->err = err ? err : UV_EPIPE;
    if (!st->closing && err != 0) {
        st->err_pending = true;
        dl_add(s, st);
    }
    /* Last, as it may fail the whole session. */
    if (code != TT_MUX_OK && on_wire(st) && !s->dead && !s->finishing) {
        uint8_t f[TT_MUX_CTRL_MAX];
        ctrl_add(s, f, tt_mux_reset_encode(st->id, code, f));
    }
}

/* The owner consumed N bytes of ST: credit goes back once a quarter of the
 * window is due, so updates are few and the peer never runs dry. */
static void consumed(tt_mux_session *s, mstream *st, size_t n)
{
    if (st->reset || st->fin_rcvd || st->closing)
        return;
    st->unacked += (uint32_t)n;
    if (st->unacked >= st->grant / 4)
        wu_add(s, st);
}

static void deliver(tt_mux_session *s, mstream *st, const uint8_t *data, size_t n)
{
    st->base.handler->on_data(&st->base, st->base.ud, data, n);
    consumed(s, st, n);
}

static void stash_add(tt_mux_session *s, mstream *st, const uint8_t *data, size_t n)
{
    if (s->mem + n > s->cfg.mem_max) {
        st_kill(s, st, UV_ENOBUFS, TT_MUX_OVERLOAD);
        return;
    }
    if (st->stash_len + n > st->stash_cap) {
        size_t cap = st->stash_cap ? st->stash_cap : 4096;
        while (cap < st->stash_len + n)
            cap *= 2;
        uint8_t *p = realloc(st->stash, cap);
        if (p == NULL) {
            st_kill(s, st, UV_ENOMEM, TT_MUX_INTERNAL);
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
        deliver(s, st, g_gather[i], n);
    else
        stash_add(s, st, g_gather[i], n);
}

static int gather_slot_of(const tt_mux_session *s, const mstream *st)
{
    for (int i = 0; i < GATHER_SLOTS; i++)
        if (s->gst[i] == st)
            return i;
    return -1;
}

/* Before anything else reaches ST (its EOF, its reset), its gathered bytes. */
static void gather_flush_stream(tt_mux_session *s, mstream *st)
{
    int i = gather_slot_of(s, st);
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
    int i = gather_slot_of(s, st);
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
        deliver(s, st, data, n);
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

static void st_free(tt_mux_session *s, mstream *st)
{
    q_del(&st->all);
    s->granted -= st->grant;
    q_drop(s, st);
    stash_drop(s, st);
    free(st);
    unref(s);
}

static const tt_link_ops mstream_ops;

static mstream *stream_alloc(tt_mux_session *s)
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
static mstream *accept_stream(tt_mux_session *s, uint32_t id)
{
    mstream *st = NULL;
    if (!s->owner_closed && !s->goaway_sent && !s->goaway_rcvd && s->cb.on_stream &&
        s->nactive < s->cfg.max_streams)
        st = stream_alloc(s);
    if (st == NULL) {
        uint8_t f[TT_MUX_CTRL_MAX];
        ctrl_add(s, f, tt_mux_reset_encode(id, TT_MUX_REFUSED, f));
        return NULL;
    }
    st->id = id;
    st->open_sent = true;
    table_add(s, st);
    if (st->grant > st->rwin) {
        st->unacked = st->grant - st->rwin;
        wu_add(s, st);
    }
    s->cb.on_stream(s->ud, &st->base);
    return st;
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
    wu_add(s, st);
}

static void on_data_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    if (f->first) {
        uint32_t id = f->hdr.stream;
        mstream *st;
        s->rx_cur = NULL;
        if (f->hdr.flags & TT_MUX_FLAG_OPEN) {
            if (s->client) {
                protocol_fail(s, "the server opened a stream");
                return;
            }
            if ((id & 1) == 0 || id <= s->last_peer) {
                protocol_fail(s, "a new stream's id is even or not above the previous one");
                return;
            }
            s->last_peer = id;
            st = accept_stream(s, id);
            if (s->dead || st == NULL || st->closing)
                return;
        } else {
            st = lookup(s, id);
            if (st == NULL) {
                if (!known_id(s, id))
                    protocol_fail(s, "data for a stream that was never opened");
                return; /* a stream that is gone: its data is dropped */
            }
        }
        if (st->fin_rcvd) {
            protocol_fail(s, "data after the end of a stream");
            return;
        }
        if (f->hdr.len > st->rwin) {
            protocol_fail(s, "data beyond the stream's window");
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
    mstream *st = lookup(s, f->hdr.stream);
    if (st == NULL) {
        if (!known_id(s, f->hdr.stream))
            protocol_fail(s, "window update for a stream that was never opened");
        return;
    }
    if ((uint64_t)st->credit + f->value > TT_MUX_WINDOW_MAX) {
        protocol_fail(s, "window update past 2^31-1");
        return;
    }
    st->credit += f->value;
    if (st_sendable(st))
        q_push(&s->ring, &st->ring);
}

static void on_reset_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    mstream *st = lookup(s, f->hdr.stream);
    if (st == NULL) {
        if (!known_id(s, f->hdr.stream))
            protocol_fail(s, "reset of a stream that was never opened");
        return;
    }
    gather_flush_stream(s, st);
    st_kill(s, st, code_err(f->value), TT_MUX_OK);
}

static void on_goaway_frame(tt_mux_session *s, const tt_mux_frame *f)
{
    if (f->value != TT_MUX_OK) {
        fail(s, code_err(f->value), "the peer ended the session after an error", TT_MUX_OK, false);
        return;
    }
    s->goaway_rcvd = true;
    kick(s); /* the end is checked from the loop */
    if (!s->client)
        return;
    /* Streams the server will not process: not sent yet, or above its last. */
    for (qnode *n = s->all.next; n != &s->all; n = n->next) {
        mstream *st = ST_OF(n, all);
        if (!st->closing && (st->id == 0 || st->id > f->last_stream))
            st_kill(s, st, UV_ECONNREFUSED, TT_MUX_OK);
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
            ctrl_add(s, b, tt_mux_ping_encode(true, f->opaque, b));
        }
        break;
    default:
        on_goaway_frame(s, f);
        break;
    }
}

/* The lower link. */

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
            protocol_fail(s, why);
            break;
        }
        if (rc == 0)
            break;
        on_frame(s, &f);
    }
    gather_flush_all(s);
}

/* Processes input; what arrives while input is being processed (a lower
 * link that delivers from inside a write made by a callback) waits for the
 * end of the current input, so each stream's bytes stay in order. */
static void take_input(tt_mux_session *s, const uint8_t *data, size_t len)
{
    if (s->in_rx) {
        uint8_t *p = realloc(s->backlog, s->backlog_len + len);
        if (p == NULL) {
            fail(s, UV_ENOMEM, "out of memory", TT_MUX_INTERNAL, false);
            return;
        }
        memcpy(p + s->backlog_len, data, len);
        s->backlog = p;
        s->backlog_len += len;
        return;
    }
    s->in_rx = true;
    bool owner = g_gather_owner == NULL;
    if (owner)
        g_gather_owner = s;
    rx(s, data, len);
    while (s->backlog_len > 0 && !s->dead && !s->finishing) {
        uint8_t *b = s->backlog;
        size_t n = s->backlog_len;
        s->backlog = NULL;
        s->backlog_len = 0;
        rx(s, b, n);
        free(b);
    }
    if (owner)
        g_gather_owner = NULL;
    s->in_rx = false;
    flush(s);
}

static void on_lower_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    tt_mux_session *s = ud;
    if (!s->dead && !s->finishing)
        take_input(s, data, len);
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
        fail(s, 0, NULL, TT_MUX_OK, false);
        return;
    }
    fail(s, UV_ECONNRESET, "the carrier connection ended under open streams", TT_MUX_OK, false);
}

static void on_lower_error(tt_link *l, void *ud, int err)
{
    (void)l;
    fail(ud, err, "the carrier connection failed", TT_MUX_OK, true);
}

static void on_lower_drained(tt_link *l, void *ud)
{
    (void)l;
    tt_mux_session *s = ud;
    if (s->want_drain)
        flush(s);
}

static const tt_link_handler lower_handler = {
    .on_data = on_lower_data,
    .on_eof = on_lower_eof,
    .on_error = on_lower_error,
    .on_drained = on_lower_drained,
};

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
    if (st->qbytes == 0 && st->credit > 0 && can_flush(s) &&
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
        flush(s);
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
        if (q_append(s, st, p, len) < 0) {
            st_kill(s, st, UV_ENOMEM, TT_MUX_INTERNAL);
            return UV_ENOMEM;
        }
        st->qbytes += len;
    }
    if (st->qbytes > 0) {
        st->notify_drained = true;
        if (st_sendable(st))
            q_push(&s->ring, &st->ring);
        flush(s);
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
        dl_add(st->s, st);
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
    if (st_sendable(st))
        q_push(&s->ring, &st->ring);
    flush(s);
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
    int slot = gather_slot_of(s, st);
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
    if (!st->reset && !s->dead && !s->finishing && on_wire(st)) {
        if (clean) {
            table_del(s, st);
            if (!st->fin_sent) {
                st->fin_queued = true;
                q_push(&s->ring, &st->ring);
            }
        } else {
            st_kill(s, st, 0, TT_MUX_CANCEL);
        }
    } else {
        st->reset = true;
        table_del(s, st);
        q_del(&st->ring);
    }
    q_drop(s, st);
    stash_drop(s, st);
    reap_add(s, st);
    arm_idle(s);
    flush(s);
    send_goaway(s);
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

/* The loop side: deferred deliveries, close callbacks, the end. */

static void on_idle(uv_idle_t *h);

static void kick(tt_mux_session *s)
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
        deliver(s, st, buf, n);
        free(buf);
        if (st->closing)
            return;
        if (st->stash_len > 0) {
            if (st->reading)
                dl_add(s, st);
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

static void start_server(tt_mux_session *s);

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
            st_free(s, st);
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
    flush(s);
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
        fail(s, UV_ETIMEDOUT, "the session could not end in time", TT_MUX_OK, true);
        return;
    }
    if (s->nactive == 0)
        tt_mux_goaway(s);
}

static void arm_idle(tt_mux_session *s)
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
            fail(s, UV_ETIMEDOUT, "the peer stopped answering (ping timeout)", TT_MUX_OK, true);
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
    if (ctrl_add(s, f, tt_mux_ping_encode(false, opaque, f)) < 0)
        return;
    s->ping_out = true;
    s->ping_at = now;
    s->ping_mark = s->rx_bytes;
    flush(s);
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

static void unref(tt_mux_session *s)
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
    if (s->cfg.ping_interval_ms)
        uv_timer_start(&s->ping, on_ping, s->cfg.ping_interval_ms, 0);
    arm_idle(s);
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
        fail(s, rc, "cannot read from the carrier connection", TT_MUX_OK, true);
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
        take_input(s, e, n);
        free(e);
    }
    if (s->dead || s->finishing)
        return;
    int rc = tt_link_read_start(s->lower);
    if (rc < 0)
        fail(s, rc, "cannot read from the carrier connection", TT_MUX_OK, true);
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
            fail(s, UV_ENOMEM, "out of memory", TT_MUX_OK, true);
            return s;
        }
        memcpy(s->early, early, early_len);
        s->early_len = early_len;
    }
    kick(s);
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
    mstream *st = stream_alloc(s);
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
static void send_goaway(tt_mux_session *s)
{
    if (!s->goaway_sent || s->goaway_queued || s->dead || s->finishing || s->flushing)
        return;
    if (s->client && s->unassigned > 0)
        return;
    s->goaway_queued = true;
    uint8_t f[TT_MUX_CTRL_MAX];
    if (ctrl_add(s, f, tt_mux_goaway_encode(s->client ? 0 : s->last_peer, TT_MUX_OK, f)) < 0)
        return;
    flush(s);
}

void tt_mux_goaway(tt_mux_session *s)
{
    if (s->goaway_sent || s->dead || s->finishing)
        return;
    s->goaway_sent = true;
    uv_timer_stop(&s->idle_timer);
    send_goaway(s);
    kick(s);
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
            fail(s, UV_ECANCELED, "closed with streams open", TT_MUX_OK, true);
        }
    }
    unref(s);
}

void tt_mux_close_all(void)
{
    for (tt_mux_session *s = g_sessions; s != NULL; s = s->gnext)
        fail(s, UV_ECANCELED, "shutting down", TT_MUX_OK, true);
}
