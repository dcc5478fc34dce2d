/* Private to src/mux/: the types of a session and its streams, and what the
 * four files of the session share. session.c: a session's life, its lower
 * link, timers and end; stream.c: streams, their table and their link
 * operations; send.c: queued bytes, batches and flushing; recv.c: frames in,
 * delivery, stashes and flow control. The design is described in session.c;
 * each function's contract is at its definition. */
#ifndef TT_MUX_INTERNAL_H
#define TT_MUX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "codec/mux.h"
#include "link/link.h"
#include "mux/session.h"

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

/* Intrusive lists (circular, with the session's node as the sentinel). */

static inline void q_init(qnode *h)
{
    h->prev = h->next = h;
}

static inline bool q_empty(const qnode *h)
{
    return h->next == h;
}

static inline bool q_in(const qnode *n)
{
    return n->next != NULL;
}

static inline void q_push(qnode *h, qnode *n)
{
    if (q_in(n))
        return;
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void q_del(qnode *n)
{
    if (!q_in(n))
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

/* Moves every node of FROM to TO (empty), so a pass handles only what was
 * there when it started. */
static inline void q_take(qnode *from, qnode *to)
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

/* session.c */

void tt_mux_arm_idle(tt_mux_session *s);
int tt_mux_code_err(uint32_t code);
void tt_mux_fail(tt_mux_session *s, int err, const char *why, uint32_t code, bool abort_lower);
void tt_mux_kick(tt_mux_session *s);
void tt_mux_protocol_fail(tt_mux_session *s, const char *why);
void tt_mux_send_goaway(tt_mux_session *s);
void tt_mux_unref(tt_mux_session *s);

/* stream.c */

mstream *tt_mux_accept_stream(tt_mux_session *s, uint32_t id);
bool tt_mux_known_id(const tt_mux_session *s, uint32_t id);
mstream *tt_mux_lookup(tt_mux_session *s, uint32_t id);
void tt_mux_st_free(tt_mux_session *s, mstream *st);
void tt_mux_st_kill(tt_mux_session *s, mstream *st, int err, uint32_t code);
mstream *tt_mux_stream_alloc(tt_mux_session *s);
void tt_mux_table_add(tt_mux_session *s, mstream *st);
void tt_mux_table_del(tt_mux_session *s, mstream *st);

/* send.c */

bool tt_mux_can_flush(const tt_mux_session *s);
int tt_mux_ctrl_add(tt_mux_session *s, const uint8_t *frame, size_t n);
void tt_mux_dl_add(tt_mux_session *s, mstream *st);
void tt_mux_flush(tt_mux_session *s);
bool tt_mux_has_work(const tt_mux_session *s);
bool tt_mux_on_wire(const mstream *st);
int tt_mux_q_append(tt_mux_session *s, mstream *st, const uint8_t *p, size_t n);
void tt_mux_q_drop(tt_mux_session *s, mstream *st);
void tt_mux_reap_add(tt_mux_session *s, mstream *st);
bool tt_mux_st_sendable(const mstream *st);
void tt_mux_stash_drop(tt_mux_session *s, mstream *st);
void tt_mux_wu_add(tt_mux_session *s, mstream *st);

/* recv.c */

void tt_mux_consumed(tt_mux_session *s, mstream *st, size_t n);
void tt_mux_deliver(tt_mux_session *s, mstream *st, const uint8_t *data, size_t n);
int tt_mux_gather_slot_of(const tt_mux_session *s, const mstream *st);
void tt_mux_take_input(tt_mux_session *s, const uint8_t *data, size_t len);
/* As tt_mux_take_input, for input in NBUFS pieces taken as one. */
void tt_mux_take_inputv(tt_mux_session *s, const uv_buf_t *bufs, unsigned nbufs);

#endif
