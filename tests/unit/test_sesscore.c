/* Tests of the session core (session/core.h), sans-I/O: two cores exchange
 * frames through the frame reader; a leg is "lost" by dropping what was in
 * flight, and the rejoin must resend exactly what the peer lacks. Also the
 * bounds: the in-flight limit, chunks freed on acknowledgment (an idle
 * session holds no buffer), duplicates dropped, gaps refused. And the
 * session link over in-memory legs (session/internal.h). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memlink.h"
#include "session/core.h"
#include "session/internal.h"

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 9));
}

static void write_pattern(tt_sess_core *c, uint64_t from, size_t n)
{
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = pattern(from + i);
    uv_buf_t buf = uv_buf_init((char *)b, (unsigned)n);
    cr_assert_eq(tt_sess_core_write(c, &buf, 1), 0);
    free(b);
}

/* The wire between two cores: bytes framed by the sender, read by the
 * receiver, which checks every delivered byte against the pattern. */
typedef struct wire {
    uint8_t *buf;
    size_t len, cap;
} wire;

static void wire_put(wire *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2;
        w->buf = realloc(w->buf, w->cap);
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* Frames everything TX may send now onto W; returns the payload bytes. */
static size_t send_all(tt_sess_core *tx, wire *w)
{
    size_t total = 0;
    uint8_t hdr[TT_SESS_HDR_LEN];
    const uint8_t *d;
    size_t n;
    while (tt_sess_core_next(tx, hdr, &d, &n)) {
        wire_put(w, hdr, sizeof hdr);
        if (n)
            wire_put(w, d, n);
        total += n;
    }
    return total;
}

typedef struct rx {
    tt_sess_core core;
    tt_sess_reader rd;
    uint64_t delivered;
    bool eof;
} rx;

/* Reads W into R, checking the pattern; clears W. */
static void receive(rx *r, wire *w)
{
    size_t at = 0;
    while (at < w->len) {
        size_t used = 0;
        tt_sess_ev ev;
        const char *why = NULL;
        int rc = tt_sess_read(&r->rd, w->buf + at, w->len - at, &used, &ev, &why);
        cr_assert_geq(rc, 0, "%s", why);
        at += used;
        if (rc == 0)
            break;
        cr_assert_eq(ev.kind, TT_SESS_EV_DATA);
        size_t skip;
        bool eof_now;
        cr_assert_eq(tt_sess_core_input(&r->core, ev.offset, ev.len, ev.fin, &skip, &eof_now), 0);
        for (size_t i = skip; i < ev.len; i++)
            cr_assert_eq(ev.data[i], pattern(r->delivered + i - skip), "byte %llu",
                         (unsigned long long)(r->delivered + i - skip));
        r->delivered += ev.len - skip;
        if (eof_now)
            r->eof = true;
    }
    w->len = 0;
}

Test(sess_core, resend_after_rejoin_loses_and_repeats_nothing)
{
    tt_sess_core tx;
    tt_sess_core_init(&tx);
    tx.inflight_max = 256 * 1024;
    rx r = {0};
    tt_sess_core_init(&r.core);
    tt_sess_reader_init(&r.rd);
    wire w = {0};
    uint64_t written = 0;
    for (int round = 0; round < 20; round++) {
        write_pattern(&tx, written, 100000 + 777 * (size_t)round);
        written += 100000 + 777 * (size_t)round;
        send_all(&tx, &w);
        /* Part of the flight arrives; the leg breaks mid-frame. */
        size_t keep = w.len * (size_t)(round % 5) / 5 + (size_t)round;
        if (keep > w.len)
            keep = w.len;
        w.len = keep;
        receive(&r, &w);
        /* The new leg: the receiver says what it has; the reader restarts. */
        tt_sess_reader_init(&r.rd);
        cr_assert_eq(tt_sess_core_rejoin(&tx, r.core.rcv_nxt), 0);
        cr_assert_eq(tx.snd_una, r.core.rcv_nxt);
        cr_assert_eq(tx.snd_nxt, r.core.rcv_nxt);
    }
    /* The last leg holds: everything arrives, once. */
    tt_sess_core_shutdown(&tx);
    while (!r.eof) {
        send_all(&tx, &w);
        receive(&r, &w);
        uint8_t ack[TT_SESS_ACK_MAX];
        tt_sess_core_ack_frame(&r.core, ack);
        cr_assert_eq(tt_sess_core_ack(&tx, r.core.rcv_acked), 0);
    }
    cr_assert_eq(r.delivered, written);
    cr_assert(tx.fin_acked);
    cr_assert_eq(tx.held, 0, "acknowledged chunks are freed");
    tt_sess_core_free(&tx);
    free(w.buf);
}

/* Writes that end on a chunk's edge, acknowledged in full, leave no chunk
 * behind; the next write starts afresh. The freed tail used to stay the
 * tail: the next write linked a new chunk from it (inside the spare list),
 * and the head stayed NULL. */
Test(sess_core, acks_on_a_chunk_edge_leave_nothing_behind)
{
    tt_sess_core tx;
    tt_sess_core_init(&tx);
    rx r = {0};
    tt_sess_core_init(&r.core);
    tt_sess_reader_init(&r.rd);
    wire w = {0};
    uint64_t written = 0;
    for (int round = 0; round < 4; round++) {
        size_t n = round % 2 ? 100 : 2 * TT_SESS_CHUNK;
        write_pattern(&tx, written, n);
        written += n;
        send_all(&tx, &w);
        receive(&r, &w);
        cr_assert_eq(tt_sess_core_ack(&tx, r.core.rcv_nxt), 0);
        cr_assert_null(tx.head);
        cr_assert_null(tx.tail, "no freed chunk stays the tail");
        cr_assert_eq(tx.held, 0);
    }
    cr_assert_eq(r.delivered, written);
    /* After a rejoin that resends nothing, a write into the partial tail
     * is still sent. */
    write_pattern(&tx, written, 100);
    written += 100;
    send_all(&tx, &w);
    receive(&r, &w);
    cr_assert_eq(tt_sess_core_rejoin(&tx, tx.snd_una), 0);
    write_pattern(&tx, written, TT_SESS_CHUNK);
    written += TT_SESS_CHUNK;
    send_all(&tx, &w);
    receive(&r, &w);
    cr_assert_eq(r.delivered, written, "every byte once, in order");
    tt_sess_core_free(&tx);
    tt_sess_core_free(&r.core);
    free(w.buf);
}

/* A client rejoining resends from what the server acknowledged, before the
 * server's answer says what it has; the server's offset (or an ACK) past
 * that send point, up to what was ever sent, is taken, and sending goes on
 * from there. A split session's other leg said "out of range" and reset. */
Test(sess_core, acks_past_a_send_point_moved_back_are_taken)
{
    tt_sess_core tx;
    tt_sess_core_init(&tx);
    rx r = {0};
    tt_sess_core_init(&r.core);
    tt_sess_reader_init(&r.rd);
    wire w = {0};
    write_pattern(&tx, 0, 300000);
    send_all(&tx, &w);
    receive(&r, &w);
    cr_assert_eq(tt_sess_core_ack(&tx, 1000), 0);
    /* The leg breaks: resend from what was acknowledged. */
    cr_assert_eq(tt_sess_core_rejoin(&tx, tx.snd_una), 0);
    cr_assert_eq(tx.snd_nxt, 1000);
    /* The other leg's join answer says the peer has it all but 100. */
    cr_assert_eq(tt_sess_core_ack(&tx, 300000 - 100), 0);
    cr_assert_eq(tx.snd_nxt, 300000 - 100, "sending goes on from the peer's offset");
    cr_assert_eq(tt_sess_core_ack(&tx, 300001), -EPROTO, "never sent");
    write_pattern(&tx, 300000, 5000);
    tt_sess_reader_init(&r.rd);
    send_all(&tx, &w);
    receive(&r, &w);
    cr_assert_eq(r.delivered, 305000, "every byte once, in order");
    cr_assert_eq(tt_sess_core_ack(&tx, r.core.rcv_nxt), 0);
    cr_assert_eq(tx.held, 0);
    tt_sess_core_free(&tx);
    tt_sess_core_free(&r.core);
    free(w.buf);
}

Test(sess_core, in_flight_is_bounded_and_acks_release_it)
{
    tt_sess_core tx;
    tt_sess_core_init(&tx);
    tx.inflight_max = 64 * 1024;
    write_pattern(&tx, 0, 1 << 20);
    wire w = {0};
    cr_assert_eq(send_all(&tx, &w), 64 * 1024, "no more than the bound in flight");
    cr_assert_eq(tt_sess_core_unsent(&tx), (1 << 20) - 64 * 1024, "the rest is pending");
    cr_assert_eq(send_all(&tx, &w), 0);
    cr_assert_eq(tt_sess_core_ack(&tx, 32 * 1024), 0);
    cr_assert_eq(send_all(&tx, &w), 32 * 1024);
    cr_assert_eq(tt_sess_core_ack(&tx, 200 * 1024), -EPROTO, "acknowledging unsent bytes");
    cr_assert_eq(tt_sess_core_ack(&tx, 10), 0, "an old acknowledgment is harmless");
    cr_assert_eq(tx.snd_una, 32 * 1024);
    /* Chunks below the acknowledged offset are gone. */
    cr_assert_leq(tx.held, (1 << 20) - 32 * 1024 + TT_SESS_CHUNK + 64);
    tt_sess_core_free(&tx);
    free(w.buf);
}

Test(sess_core, duplicates_dropped_gaps_refused)
{
    tt_sess_core c;
    tt_sess_core_init(&c);
    size_t skip;
    bool eof;
    cr_assert_eq(tt_sess_core_input(&c, 0, 100, false, &skip, &eof), 0);
    cr_assert_eq(skip, 0);
    cr_assert_eq(tt_sess_core_input(&c, 50, 100, false, &skip, &eof), 0);
    cr_assert_eq(skip, 50, "the first 50 bytes were delivered before");
    cr_assert_eq(c.rcv_nxt, 150);
    cr_assert_eq(tt_sess_core_input(&c, 0, 150, false, &skip, &eof), 0);
    cr_assert_eq(skip, 150, "a whole duplicate");
    cr_assert_eq(tt_sess_core_input(&c, 151, 10, false, &skip, &eof), -EPROTO, "a gap");
    cr_assert_eq(tt_sess_core_input(&c, 150, 0, true, &skip, &eof), 0);
    cr_assert(eof);
    cr_assert_eq(c.rcv_nxt, 151, "the FIN counts one");
    cr_assert_eq(tt_sess_core_input(&c, 140, 10, true, &skip, &eof), 0);
    cr_assert_eq(skip, 10);
    cr_assert_not(eof, "a repeated FIN is a duplicate");
    cr_assert_eq(tt_sess_core_input(&c, 150, 5, false, &skip, &eof), -EPROTO, "data after the FIN");
    tt_sess_core_free(&c);
}

Test(sess_core, rejoin_offsets)
{
    tt_sess_core c;
    tt_sess_core_init(&c);
    write_pattern(&c, 0, 1000);
    wire w = {0};
    send_all(&c, &w);
    cr_assert_eq(tt_sess_core_ack(&c, 400), 0);
    cr_assert_eq(tt_sess_core_rejoin(&c, 1001), -EPROTO, "beyond what was written");
    cr_assert_eq(c.snd_una, 400, "a refused rejoin changes nothing");
    cr_assert_eq(c.snd_nxt, 1000);
    /* An offset below what the peer acknowledged (an ACK on the old leg
     * crossed the join): the peer has those bytes; resend from the ACK. */
    cr_assert_eq(tt_sess_core_rejoin(&c, 300), 0);
    cr_assert_eq(c.snd_una, 400);
    cr_assert_eq(c.snd_nxt, 400);
    cr_assert_eq(tt_sess_core_unsent(&c), 600);
    cr_assert_eq(tt_sess_core_rejoin(&c, 1000), 0);
    cr_assert_eq(tt_sess_core_unsent(&c), 0);
    tt_sess_core_free(&c);
    free(w.buf);
}

Test(sess_core, ack_policy)
{
    tt_sess_core c;
    tt_sess_core_init(&c);
    c.inflight_max = 4096;
    size_t skip;
    bool eof;
    cr_assert_not(tt_sess_core_ack_owed(&c));
    tt_sess_core_input(&c, 0, 1000, false, &skip, &eof);
    cr_assert(tt_sess_core_ack_owed(&c));
    cr_assert_not(tt_sess_core_ack_due(&c), "less than a quarter of the bound: wait");
    tt_sess_core_input(&c, 1000, 24, false, &skip, &eof);
    cr_assert(tt_sess_core_ack_due(&c), "a quarter of the bound: now");
    uint8_t f[TT_SESS_ACK_MAX];
    cr_assert_eq(tt_sess_core_ack_frame(&c, f), 16);
    static const uint8_t want[] = {1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0x10, 0};
    cr_assert_arr_eq(f, want, sizeof want);
    cr_assert_not(tt_sess_core_ack_owed(&c));
    tt_sess_core_free(&c);
}

/* The session link over in-memory legs. */

typedef struct side {
    tt_sess *s;
    memlink *leg;
    size_t taken; /* bytes of leg->written already passed on */
    int lost;
    uint8_t *got;
    size_t got_len;
    bool eof;
    int drained;     /* on_drained calls the owner got */
    unsigned calls;  /* on_data and on_datav calls */
    unsigned pieces; /* pieces of the last on_datav */
} side;

static void role_lost(tt_sess *s, int slot, int err)
{
    (void)err, (void)slot;
    side *me = s->owner;
    me->lost++;
}

static void role_released(tt_sess *s)
{
    (void)s;
}

static const sess_role test_role = {role_lost, role_released};

static void keep(side *me, const void *d, size_t n)
{
    me->got = realloc(me->got, me->got_len + n);
    memcpy(me->got + me->got_len, d, n);
    me->got_len += n;
}

static void on_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    (void)l;
    side *me = ud;
    me->calls++;
    keep(me, d, n);
}

static void on_datav(tt_link *l, void *ud, const uv_buf_t *bufs, unsigned n)
{
    (void)l;
    side *me = ud;
    me->calls++;
    me->pieces = n;
    for (unsigned i = 0; i < n; i++)
        keep(me, bufs[i].base, bufs[i].len);
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    ((side *)ud)->eof = true;
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l, (void)ud;
    cr_assert_fail("session error %d", err);
}

static void on_drained(tt_link *l, void *ud)
{
    (void)l;
    ((side *)ud)->drained++;
}

static const tt_link_handler owner = {on_data, on_eof, on_error, on_drained};

/* Passes what each side's leg wrote to the other, until both are quiet. */
static void shuttle(side *a, side *b, uv_loop_t *loop)
{
    for (int i = 0; i < 1000; i++) {
        bool moved = false;
        side *pair[2][2] = {{a, b}, {b, a}};
        for (int k = 0; k < 2; k++) {
            side *from = pair[k][0], *to = pair[k][1];
            if (from->leg == NULL || to->leg == NULL)
                continue;
            size_t n = from->leg->written_len - from->taken;
            if (n > 0 && memlink_deliver(to->leg, from->leg->written + from->taken, n)) {
                from->taken += n;
                moved = true;
            }
        }
        uv_run(loop, UV_RUN_NOWAIT);
        if (!moved)
            return;
    }
}

static void new_leg(side *me, uv_loop_t *loop, uint64_t peer_rcv)
{
    me->leg = calloc(1, sizeof *me->leg);
    memlink_init(me->leg, loop);
    me->taken = 0;
    cr_assert_eq(tt_sess_core_rejoin(&me->s->core, peer_rcv), 0);
    tt_sess_attach(me->s, TT_SESS_UP, &me->leg->base, NULL, 0);
}

/* Two session links A and B (owned by A and B, reading) for the same id. */
static void open_pair(side *a, side *b, uv_loop_t *loop, uint8_t first_id_byte)
{
    uint8_t id[TT_SESS_ID_LEN] = {first_id_byte, 2, 3, 4};
    a->s = tt_sess_new(loop, &test_role, a, id);
    b->s = tt_sess_new(loop, &test_role, b, id);
    tt_link_set_handler(&a->s->base, &owner, a);
    tt_link_set_handler(&b->s->base, &owner, b);
    tt_link_read_start(&a->s->base);
    tt_link_read_start(&b->s->base);
}

/* N bytes of the pattern, malloc'd. */
static uint8_t *pattern_buf(size_t n)
{
    uint8_t *src = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = pattern(i);
    return src;
}

Test(sess_link, survives_lost_legs_and_idles_without_buffers)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    side a = {0}, b = {0};
    open_pair(&a, &b, &loop, 1);
    new_leg(&a, &loop, 0);
    new_leg(&b, &loop, 0);

    enum { TOTAL = 3 << 20, STEP = 100000 };
    uint8_t *src = pattern_buf(TOTAL);
    memlink *old[64];
    int nold = 0;
    for (size_t at = 0; at < TOTAL; at += STEP) {
        size_t n = TOTAL - at < STEP ? TOTAL - at : STEP;
        cr_assert_eq(tt_link_write1(&a.s->base, src + at, n), 0);
        shuttle(&a, &b, &loop);
        if ((at / STEP) % 7 == 3) {
            /* Both legs break; what was written but not passed on is lost. */
            old[nold++] = a.leg;
            old[nold++] = b.leg;
            memlink_error(a.leg, UV_ECONNRESET);
            memlink_error(b.leg, UV_ECONNRESET);
            uv_run(&loop, UV_RUN_NOWAIT);
            new_leg(&a, &loop, b.s->core.rcv_nxt);
            new_leg(&b, &loop, a.s->core.rcv_nxt);
            shuttle(&a, &b, &loop);
        }
    }
    tt_link_shutdown(&a.s->base);
    tt_link_shutdown(&b.s->base);
    shuttle(&a, &b, &loop);
    /* The delayed acknowledgments. */
    uv_run(&loop, UV_RUN_ONCE);
    shuttle(&a, &b, &loop);
    cr_assert_eq(b.got_len, TOTAL);
    cr_assert_arr_eq(b.got, src, TOTAL, "every byte once, in order");
    cr_assert(b.eof && a.eof);
    cr_assert_gt(a.lost, 0);
    /* Idle: everything acknowledged, no buffer left. */
    cr_assert_eq(a.s->core.held, 0);
    cr_assert_eq(b.s->core.held, 0);
    cr_assert_lt(sizeof(tt_sess), 16 * 1024, "an idle session is its struct");
    cr_log_info("idle session: %zu bytes", sizeof(tt_sess));

    tt_link_close(&a.s->base, NULL, NULL);
    tt_link_close(&b.s->base, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    old[nold++] = a.leg;
    old[nold++] = b.leg;
    for (int i = 0; i < nold; i++) {
        memlink_free(old[i]);
        free(old[i]);
    }
    free(src);
    free(a.got);
    free(b.got);
    tt_test_close_loop(&loop);
}

/* The owner, the mux, stops writing while its lower link's pending is high
 * and waits for on_drained; bytes that become pending in the session while
 * no leg can take them must give it when a new leg sends them.
 * FAILED_WRITE: the owner's write meets a leg that fails it (the write skipped
 * the note that the owner waits). Else a rejoin moves the send point back
 * over bytes that had left, so the owner's pending grows without a write of
 * its own (the mux looks at it from its input). */
static void drained_after_rejoin(bool failed_write)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    side a = {0}, b = {0};
    open_pair(&a, &b, &loop, failed_write ? 3 : 4);
    new_leg(&a, &loop, 0);
    new_leg(&b, &loop, 0);
    enum { N = 1 << 20 };
    uint8_t *src = pattern_buf(N);
    memlink *old[2] = {a.leg, b.leg};
    if (failed_write)
        a.leg->shut = true;
    cr_assert_eq(tt_link_write1(&a.s->base, src, N), 0);
    if (failed_write) {
        cr_assert_eq(a.lost, 1, "the failed write broke the leg");
        cr_assert_gt(tt_link_pending(&a.s->base), 0, "the owner sees bytes pending");
    } else {
        memlink_error(a.leg, UV_ECONNRESET);
    }
    memlink_error(b.leg, UV_ECONNRESET);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (!failed_write) {
        cr_assert_eq(tt_sess_core_rejoin(&a.s->core, b.s->core.rcv_nxt), 0);
        cr_assert_eq(tt_link_pending(&a.s->base), N, "what goes again is pending");
        a.drained = 0;
    }
    new_leg(&b, &loop, a.s->core.snd_una);
    new_leg(&a, &loop, b.s->core.rcv_nxt);
    shuttle(&a, &b, &loop);
    cr_assert_eq(tt_link_pending(&a.s->base), 0);
    cr_assert_geq(a.drained, 1, "the owner heard that its bytes left");
    cr_assert_eq(b.got_len, N);
    cr_assert_arr_eq(b.got, src, N, "every byte once, in order");

    tt_link_close(&a.s->base, NULL, NULL);
    tt_link_close(&b.s->base, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    memlink *all[4] = {old[0], old[1], a.leg, b.leg};
    for (int i = 0; i < 4; i++) {
        memlink_free(all[i]);
        free(all[i]);
    }
    free(src);
    free(b.got);
    tt_test_close_loop(&loop);
}

Test(sess_link, a_write_into_a_failing_leg_is_drained_after_the_rejoin)
{
    drained_after_rejoin(true);
}

Test(sess_link, bytes_a_rejoin_makes_pending_are_drained)
{
    drained_after_rejoin(false);
}

/* The DATA frames of one leg read reach the owner in one call: joined for
 * an owner that takes only on_data, in place as pieces for one that takes
 * on_datav (the mux), without a copy. */
Test(sess_link, one_read_is_one_delivery)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    side a = {0}, b = {0};
    open_pair(&a, &b, &loop, 9);
    new_leg(&a, &loop, 0);
    new_leg(&b, &loop, 0);
    enum { N = 100000 }; /* four DATA frames: three whole 32 KiB chunks and a rest */
    uint8_t *src = pattern_buf(2 * N);
    cr_assert_eq(tt_link_write1(&a.s->base, src, N), 0);
    shuttle(&a, &b, &loop);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.got_len, N);

    tt_link_set_datav(&b.s->base, on_datav);
    cr_assert_eq(tt_link_write1(&a.s->base, src + N, N), 0);
    shuttle(&a, &b, &loop);
    cr_assert_eq(b.calls, 2);
    cr_assert_eq(b.pieces, (N + TT_SESS_CHUNK - 1) / TT_SESS_CHUNK);
    cr_assert_eq(b.got_len, 2 * N);
    cr_assert_arr_eq(b.got, src, 2 * N);

    tt_link_close(&a.s->base, NULL, NULL);
    tt_link_close(&b.s->base, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    memlink_free(a.leg);
    memlink_free(b.leg);
    free(a.leg);
    free(b.leg);
    free(src);
    free(a.got);
    free(b.got);
    tt_test_close_loop(&loop);
}

/* Split paths: a client side and a server side with an up leg and a down
 * leg each (in memory). */
typedef struct sside {
    side base; /* first: the owner callbacks take it as a side */
    memlink *legs[2];
    size_t taken[2];
} sside;

static void split_shuttle(sside *a, sside *b, uv_loop_t *loop)
{
    for (int i = 0; i < 1000; i++) {
        bool moved = false;
        for (int slot = 0; slot < 2; slot++) {
            sside *pair[2][2] = {{a, b}, {b, a}};
            for (int k = 0; k < 2; k++) {
                sside *from = pair[k][0], *to = pair[k][1];
                memlink *f = from->legs[slot], *t = to->legs[slot];
                if (f == NULL || t == NULL)
                    continue;
                size_t n = f->written_len - from->taken[slot];
                if (n > 0 && memlink_deliver(t, f->written + from->taken[slot], n)) {
                    from->taken[slot] += n;
                    moved = true;
                }
            }
        }
        uv_run(loop, UV_RUN_NOWAIT);
        if (!moved)
            return;
    }
}

/* Counts the DATA frames (and their bytes) in what a leg wrote. */
static size_t data_bytes(const memlink *m)
{
    tt_sess_reader rd;
    tt_sess_reader_init(&rd);
    size_t i = 0, n = 0;
    while (i < m->written_len) {
        size_t used = 0;
        tt_sess_ev ev;
        const char *why = NULL;
        int rc = tt_sess_read(&rd, m->written + i, m->written_len - i, &used, &ev, &why);
        cr_assert_geq(rc, 0, "%s", why ? why : "");
        i += used;
        if (rc == 1 && ev.kind == TT_SESS_EV_DATA)
            n += ev.len + 1;
        if (rc == 0)
            break;
    }
    return n;
}

static void split_leg(sside *me, int slot, uv_loop_t *loop)
{
    me->legs[slot] = calloc(1, sizeof *me->legs[slot]);
    memlink_init(me->legs[slot], loop);
    me->taken[slot] = 0;
    tt_sess_attach(me->base.s, slot, &me->legs[slot]->base, NULL, 0);
}

Test(sess_link, split_legs_carry_one_direction_each_and_break_alone)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sside a = {0}, b = {0};
    open_pair(&a.base, &b.base, &loop, 5);
    a.base.s->split = b.base.s->split = true;
    b.base.s->is_server = true;
    for (int slot = 0; slot < 2; slot++) {
        split_leg(&a, slot, &loop);
        split_leg(&b, slot, &loop);
    }
    enum { TOTAL = 1 << 20, STEP = 65536 };
    uint8_t *src = pattern_buf(TOTAL);
    memlink *old[6];
    int nold = 0;
    for (size_t at = 0; at < TOTAL; at += STEP) {
        cr_assert_eq(tt_link_write1(&a.base.s->base, src + at, STEP), 0);
        cr_assert_eq(tt_link_write1(&b.base.s->base, src + at, STEP), 0);
        split_shuttle(&a, &b, &loop);
        if (at == 4 * STEP) {
            /* The down leg breaks at both ends; the up leg goes on. */
            old[nold++] = a.legs[1];
            old[nold++] = b.legs[1];
            memlink_error(a.legs[1], UV_ECONNRESET);
            memlink_error(b.legs[1], UV_ECONNRESET);
            a.legs[1] = b.legs[1] = NULL;
            uv_run(&loop, UV_RUN_NOWAIT);
            cr_assert_eq(a.base.lost, 1);
            size_t up_before = b.base.got_len, down_before = a.base.got_len;
            cr_assert_eq(tt_link_write1(&a.base.s->base, src, 1000), 0);
            cr_assert_eq(tt_link_write1(&b.base.s->base, src, 1000), 0);
            split_shuttle(&a, &b, &loop);
            cr_assert_eq(b.base.got_len, up_before + 1000, "the up leg moves alone");
            cr_assert_eq(a.base.got_len, down_before, "the server's bytes wait");
            /* The down leg rejoins: the server resends from what the
             * client received; the client only takes the server's offset
             * as an acknowledgment. */
            cr_assert_eq(tt_sess_core_rejoin(&b.base.s->core, a.base.s->core.rcv_nxt), 0);
            cr_assert_eq(tt_sess_core_ack(&a.base.s->core, b.base.s->core.rcv_nxt), 0);
            split_leg(&a, 1, &loop);
            split_leg(&b, 1, &loop);
            split_shuttle(&a, &b, &loop);
            cr_assert_eq(a.base.got_len, down_before + 1000,
                         "the waiting bytes arrive (%zu of %zu)", a.base.got_len - down_before,
                         (size_t)1000);
        }
    }
    uv_run(&loop, UV_RUN_ONCE);
    split_shuttle(&a, &b, &loop);
    cr_assert_eq(b.base.got_len, TOTAL + 1000);
    cr_assert_eq(a.base.got_len, TOTAL + 1000);
    /* Each leg carried one direction's DATA; the other way, ACKs only. */
    cr_assert_eq(data_bytes(b.legs[0]), 0, "the server's DATA never goes up");
    cr_assert_eq(data_bytes(a.legs[1]), 0, "the client's DATA never goes down");
    cr_assert_gt(data_bytes(a.legs[0]), 0);
    cr_assert_gt(data_bytes(b.legs[1]), 0);

    tt_link_close(&a.base.s->base, NULL, NULL);
    tt_link_close(&b.base.s->base, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int slot = 0; slot < 2; slot++) {
        old[nold++] = a.legs[slot];
        old[nold++] = b.legs[slot];
    }
    for (int i = 0; i < nold; i++) {
        memlink_free(old[i]);
        free(old[i]);
    }
    free(src);
    free(a.base.got);
    free(b.base.got);
    tt_test_close_loop(&loop);
}
