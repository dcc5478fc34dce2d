/* Mux sending: queued bytes, control frames, and the batches tt_mux_flush() writes
 * to the lower link (the design is described in session.c). */
#include "mux/internal.h"

#include <stdlib.h>
#include <string.h>

static chunk *g_blocks; /* free big blocks */
static unsigned g_nblocks;

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

void tt_mux_q_drop(tt_mux_session *s, mstream *st)
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

void tt_mux_stash_drop(tt_mux_session *s, mstream *st)
{
    s->mem -= st->stash_len;
    free(st->stash);
    st->stash = NULL;
    st->stash_len = st->stash_cap = 0;
}

int tt_mux_q_append(tt_mux_session *s, mstream *st, const uint8_t *p, size_t n)
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

int tt_mux_ctrl_add(tt_mux_session *s, const uint8_t *frame, size_t n)
{
    if (s->ctrl_len + n > CTRL_CAP) {
        tt_mux_fail(s, UV_ENOBUFS, "control frames pile up while the peer does not read", TT_MUX_OK,
                    true);
        return UV_ENOBUFS;
    }
    if (s->ctrl_len + n > s->ctrl_cap) {
        size_t cap = s->ctrl_cap ? s->ctrl_cap * 2 : 256;
        while (cap < s->ctrl_len + n)
            cap *= 2;
        uint8_t *p = realloc(s->ctrl, cap);
        if (p == NULL) {
            tt_mux_fail(s, UV_ENOMEM, "out of memory", TT_MUX_INTERNAL, false);
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

bool tt_mux_st_sendable(const mstream *st)
{
    if (st->reset)
        return false;
    if (st->qbytes > 0)
        return st->credit > 0;
    return st->fin_queued && !st->fin_sent;
}

bool tt_mux_has_work(const tt_mux_session *s)
{
    return s->ctrl_len > 0 || !q_empty(&s->ring) || !q_empty(&s->wu);
}

void tt_mux_wu_add(tt_mux_session *s, mstream *st)
{
    q_push(&s->wu, &st->wu);
}

void tt_mux_dl_add(tt_mux_session *s, mstream *st)
{
    q_push(&s->dl, &st->dl);
    tt_mux_kick(s);
}

void tt_mux_reap_add(tt_mux_session *s, mstream *st)
{
    q_push(&s->reap, &st->reap);
    tt_mux_kick(s);
}

/* Whether the peer has heard of ST (so a reset must be sent to end it). */
bool tt_mux_on_wire(const mstream *st)
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
        tt_mux_table_add(s, st);
        st->open_sent = true;
        flags |= TT_MUX_FLAG_OPEN;
        /* More window than the initial one is granted once the open is out,
         * so the update cannot overtake it. */
        if (st->grant > st->rwin) {
            st->unacked += st->grant - st->rwin;
            tt_mux_wu_add(s, st);
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

bool tt_mux_can_flush(const tt_mux_session *s)
{
    return !s->flushing && !s->dead && !s->finishing && s->lower != NULL && s->started;
}

void tt_mux_flush(tt_mux_session *s)
{
    if (!tt_mux_can_flush(s))
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
            if (tt_mux_st_sendable(st))
                q_push(&s->ring, &st->ring); /* to the back: round-robin */
            else if (st->closing && st->cb_done)
                tt_mux_reap_add(s, st); /* its last frame is out: free it */
            if (st->qbytes == 0 && st->notify_drained) {
                st->notify_drained = false;
                st->drained_pending = true;
                tt_mux_dl_add(s, st);
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
            tt_mux_fail(s, rc, "cannot write to the carrier connection", TT_MUX_OK, true);
            break;
        }
    }
    s->flushing = false;
    s->want_drain = !s->dead && tt_mux_has_work(s);
    tt_mux_send_goaway(s); /* the last open may just have gone out */
    if (!s->dead && (s->goaway_sent || s->goaway_rcvd) && s->nactive == 0)
        tt_mux_kick(s); /* the end may be near: checked from the loop */
}
