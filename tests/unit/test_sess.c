/* Tests of the session codec (codec/sess.h): the join's test vectors of
 * docs/SESSION.md (made by tests/vectors/sess_vectors.py, an independent
 * implementation), golden frame bytes read whole, in every two-piece split
 * and byte by byte, and every malformed join and frame refused with its
 * reason. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/sess.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* The vectors of docs/SESSION.md. */
static const char v_key[] = "90da0c288fe971835ffc6713a22aa9d2d030211423b346725f23506e787f106c";
static const char v_join_new[] =
    "f574730100101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f0000018bcfe56800"
    "0000000000000000000000008a1aec7a8b7f77bd2387fad7f703760d";
static const char v_join_re[] =
    "f574730101101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f0000018bcfe56800"
    "0000000300000000075bcd159b2bc15382028b1318874fa4bef0c478";
static const char v_ok[] = "0000000000003ade68b1a3e14c816a93a9aaecbf0d0c89702cf3";
static const char v_unknown[] = "01000000000000000000d80723e8a8dbe1881c95302beab12d46";

static void vector_key(uint8_t key[TT_SESS_KEY_LEN])
{
    uint8_t psk[32];
    for (int i = 0; i < 32; i++)
        psk[i] = (uint8_t)i;
    cr_assert_eq(tt_sess_join_key(psk, key), 0);
}

static tt_sess_join vector_join(bool rejoin)
{
    tt_sess_join j = {.flags = rejoin ? TT_SESS_JOIN_REJOIN : 0,
                      .time_ms = 1700000000000ull,
                      .counter = rejoin ? 3 : 0,
                      .offset = rejoin ? 123456789 : 0};
    for (int i = 0; i < 16; i++) {
        j.id[i] = (uint8_t)(0x10 + i);
        j.nonce[i] = (uint8_t)(0x20 + i);
    }
    return j;
}

Test(sess_codec, join_vectors)
{
    uint8_t key[TT_SESS_KEY_LEN], want[TT_SESS_JOIN_LEN], out[TT_SESS_JOIN_LEN];
    vector_key(key);
    unhex(v_key, want, 32);
    cr_assert_arr_eq(key, want, 32, "join key");
    for (int re = 0; re < 2; re++) {
        tt_sess_join j = vector_join(re);
        tt_sess_join_encode(&j, key, out);
        unhex(re ? v_join_re : v_join_new, want, sizeof want);
        cr_assert_arr_eq(out, want, sizeof want, "JOIN %d", re);
        tt_sess_join d;
        const char *why = NULL;
        cr_assert_eq(tt_sess_join_decode(want, key, &d, &why), 0, "%s", why);
        cr_assert_eq(d.flags, j.flags);
        cr_assert_eq(d.counter, j.counter);
        cr_assert_eq(d.offset, j.offset);
        cr_assert_eq(d.time_ms, j.time_ms);
        cr_assert_arr_eq(d.id, j.id, 16);
        cr_assert_arr_eq(d.nonce, j.nonce, 16);
        cr_assert_arr_eq(d.mac, want + 57, 16);
    }
}

Test(sess_codec, joined_vectors)
{
    uint8_t key[TT_SESS_KEY_LEN], join[TT_SESS_JOIN_LEN], want[TT_SESS_JOINED_LEN],
        out[TT_SESS_JOINED_LEN];
    vector_key(key);
    unhex(v_join_re, join, sizeof join);
    const uint8_t *jmac = join + 57;
    tt_sess_joined_encode(TT_SESS_OK, 987654321, jmac, key, out);
    unhex(v_ok, want, sizeof want);
    cr_assert_arr_eq(out, want, sizeof want);
    uint8_t status = 9;
    uint64_t off = 0;
    const char *why = NULL;
    cr_assert_eq(tt_sess_joined_decode(want, key, jmac, &status, &off, &why), 0);
    cr_assert_eq(status, TT_SESS_OK);
    cr_assert_eq(off, 987654321);
    tt_sess_joined_encode(TT_SESS_UNKNOWN, 0, jmac, key, out);
    unhex(v_unknown, want, sizeof want);
    cr_assert_arr_eq(out, want, sizeof want);

    /* Bound to its JOIN: the answer to another JOIN does not verify. */
    uint8_t other[TT_SESS_MAC_LEN];
    memcpy(other, jmac, sizeof other);
    other[0] ^= 1;
    cr_assert_eq(tt_sess_joined_decode(want, key, other, &status, &off, &why), -EBADMSG);
    cr_assert_str_eq(why, "bad answer MAC (another key?)");
    want[1] = 1;
    cr_assert_eq(tt_sess_joined_decode(want, key, jmac, &status, &off, &why), -EBADMSG);
}

/* Encodes J with KEY and expects decode to refuse it with RC and WHY. */
static void join_refused(tt_sess_join j, int rc, const char *reason)
{
    uint8_t key[TT_SESS_KEY_LEN], out[TT_SESS_JOIN_LEN];
    vector_key(key);
    tt_sess_join_encode(&j, key, out);
    tt_sess_join d;
    const char *why = NULL;
    cr_assert_eq(tt_sess_join_decode(out, key, &d, &why), rc, "%s", why ? why : "accepted");
    cr_assert_str_eq(why, reason);
}

Test(sess_codec, malformed_joins)
{
    uint8_t key[TT_SESS_KEY_LEN], in[TT_SESS_JOIN_LEN];
    vector_key(key);
    tt_sess_join d;
    const char *why = NULL;

    unhex(v_join_re, in, sizeof in);
    in[1] = 0x75;
    cr_assert_eq(tt_sess_join_decode(in, key, &d, &why), -EPROTO);
    cr_assert_str_eq(why, "not a session join");
    unhex(v_join_re, in, sizeof in);
    in[3] = 2;
    cr_assert_eq(tt_sess_join_decode(in, key, &d, &why), -EPROTO);
    cr_assert_str_eq(why, "unknown session protocol version");
    /* Any changed byte breaks the MAC, and so does another key. */
    for (size_t i = 4; i < sizeof in; i++) {
        unhex(v_join_re, in, sizeof in);
        in[i] ^= 0x40;
        cr_assert_eq(tt_sess_join_decode(in, key, &d, &why), -EBADMSG, "byte %zu", i);
        cr_assert_str_eq(why, "bad join MAC (another key?)");
    }
    unhex(v_join_re, in, sizeof in);
    key[0] ^= 1;
    cr_assert_eq(tt_sess_join_decode(in, key, &d, &why), -EBADMSG);

    tt_sess_join j = vector_join(true);
    j.flags = 0x08;
    join_refused(j, -EPROTO, "undefined join flags");
    j.flags = TT_SESS_ROLE_MASK;
    join_refused(j, -EPROTO, "undefined join flags");
    j = vector_join(true);
    j.offset = TT_SESS_OFFSET_MAX;
    join_refused(j, -EPROTO, "join offset out of range");
    j = vector_join(false);
    j.counter = 1;
    join_refused(j, -EPROTO, "a new session's join must have counter and offset 0");
    j = vector_join(false);
    j.offset = 5;
    join_refused(j, -EPROTO, "a new session's join must have counter and offset 0");
    /* The roles of split paths are valid on the wire. */
    j = vector_join(true);
    j.flags |= TT_SESS_ROLE_DOWN << TT_SESS_ROLE_SHIFT;
    uint8_t out[TT_SESS_JOIN_LEN];
    vector_key(key);
    tt_sess_join_encode(&j, key, out);
    cr_assert_eq(tt_sess_join_decode(out, key, &d, &why), 0);
    cr_assert_eq((d.flags & TT_SESS_ROLE_MASK) >> TT_SESS_ROLE_SHIFT, TT_SESS_ROLE_DOWN);
}

/* A conversation: DATA "hello" at 7, an ACK with two SACK blocks, an empty
 * DATA with FIN at 12, a CLOSE. */
static const uint8_t convo[] = {
    0x00, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 7, 'h', 'e', 'l', 'l', 'o',
    /* ACK cum 100, window 0x10000, sack [110,120) [130,140) */
    0x01, 0x00, 0x00, 0x24, 0, 0, 0, 0, 0, 0, 0, 100, 0x00, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0,
    110, 0, 0, 0, 0, 0, 0, 0, 120, 0, 0, 0, 0, 0, 0, 0, 130, 0, 0, 0, 0, 0, 0, 0, 140,
    /* DATA FIN, empty, at 12 */
    0x00, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 12,
    /* CLOSE abort */
    0x02, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};

typedef struct seen {
    uint8_t data[16];
    size_t ndata;
    uint64_t first_off;
    int acks, closes, fins;
    tt_sess_ev ack;
    uint8_t code;
} seen;

/* Reads CONVO in pieces of at most STEP bytes (0: split once at SPLIT). */
static void read_convo(size_t split, size_t step, seen *out)
{
    memset(out, 0, sizeof *out);
    out->first_off = UINT64_MAX;
    tt_sess_reader r;
    tt_sess_reader_init(&r);
    size_t at = 0;
    while (at < sizeof convo) {
        size_t n = step ? step : (at < split ? split - at : sizeof convo - at);
        if (at + n > sizeof convo)
            n = sizeof convo - at;
        size_t off = 0;
        while (off < n) {
            size_t used = 0;
            tt_sess_ev ev;
            const char *why = NULL;
            int rc = tt_sess_read(&r, convo + at + off, n - off, &used, &ev, &why);
            cr_assert_geq(rc, 0, "%s", why);
            off += used;
            if (rc == 0)
                break;
            if (ev.kind == TT_SESS_EV_DATA) {
                if (out->first_off == UINT64_MAX && ev.len)
                    out->first_off = ev.offset;
                memcpy(out->data + out->ndata, ev.data, ev.len);
                out->ndata += ev.len;
                out->fins += ev.fin;
            } else if (ev.kind == TT_SESS_EV_ACK) {
                out->acks++;
                out->ack = ev;
            } else {
                out->closes++;
                out->code = ev.code;
            }
        }
        at += n;
    }
    cr_assert_not(tt_sess_reader_partial(&r));
}

Test(sess_codec, frames_in_every_split)
{
    uint8_t hdr[TT_SESS_HDR_LEN];
    tt_sess_hdr_encode(TT_SESS_DATA, 0, 5, 7, hdr);
    cr_assert_arr_eq(hdr, convo, sizeof hdr);
    uint8_t ack[TT_SESS_ACK_MAX];
    const uint64_t sack[2][2] = {{110, 120}, {130, 140}};
    cr_assert_eq(tt_sess_ack_encode(100, 0x10000, sack, 2, ack), 12 + 36);
    cr_assert_arr_eq(ack, convo + 17, 48);

    for (size_t split = 0; split <= sizeof convo; split++) {
        for (size_t step = 0; step <= 2; step++) {
            seen s;
            read_convo(split, step, &s);
            cr_assert_eq(s.ndata, 5);
            cr_assert_arr_eq(s.data, "hello", 5);
            cr_assert_eq(s.first_off, 7);
            cr_assert_eq(s.fins, 1);
            cr_assert_eq(s.acks, 1);
            cr_assert_eq(s.ack.cum, 100);
            cr_assert_eq(s.ack.window, 0x10000);
            cr_assert_eq(s.ack.nsack, 2);
            cr_assert_eq(s.ack.sack[1][0], 130);
            cr_assert_eq(s.ack.sack[1][1], 140);
            cr_assert_eq(s.closes, 1);
            cr_assert_eq(s.code, TT_SESS_CLOSE_ABORT);
            if (step)
                break;
        }
    }
}

/* Feeds IN whole and expects a refusal with REASON. */
static void frame_refused(const uint8_t *in, size_t n, const char *reason)
{
    tt_sess_reader r;
    tt_sess_reader_init(&r);
    size_t at = 0;
    for (;;) {
        size_t used = 0;
        tt_sess_ev ev;
        const char *why = NULL;
        int rc = tt_sess_read(&r, in + at, n - at, &used, &ev, &why);
        at += used;
        if (rc < 0) {
            cr_assert_eq(rc, -EPROTO);
            cr_assert_str_eq(why, reason);
            return;
        }
        cr_assert(rc == 1 && at < n, "accepted: expected '%s'", reason);
    }
}

Test(sess_codec, malformed_frames)
{
    struct {
        uint8_t b[64];
        size_t n;
        const char *why;
    } cases[] = {
        {{9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 12, "unknown session frame type"},
        {{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
         12,
         "PING/PONG frames are for lossy legs, not supported by this version"},
        {{4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
         12,
         "PING/PONG frames are for lossy legs, not supported by this version"},
        {{0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 'x'}, 13, "undefined DATA flags"},
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 12, "empty DATA frame without FIN"},
        {{0, 0, 0, 1, 0x40, 0, 0, 0, 0, 0, 0, 0, 'x'}, 13, "DATA offset out of range"},
        {{1, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 16, "undefined ACK flags"},
        {{1, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 15, "bad ACK length"},
        {{1, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 17, "bad ACK length"},
        {{1, 0, 0x01, 0x14, 0, 0, 0, 0, 0, 0, 0, 0}, 12, "bad ACK length"},
        {{1, 0, 0, 4, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 16, "ACK offset out of range"},
        /* A SACK block at the cumulative offset, and one ending before it starts. */
        {{1, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0,
          0, 0, 0, 0,  0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 12},
         32,
         "SACK blocks out of order"},
        {{1, 0, 0, 20, 0, 0, 0, 0,  0, 0, 0, 9, 0, 0, 0, 0,
          0, 0, 0, 0,  0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 12},
         32,
         "SACK blocks out of order"},
        {{2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 13, "CLOSE frame with a payload"},
        {{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 12, "CLOSE frame with a payload"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        frame_refused(cases[i].b, cases[i].n, cases[i].why);
}

Test(sess_codec, first_byte_tells_the_three_apart)
{
    cr_assert(tt_sess_is_join(0xF5));
    cr_assert_not(tt_sess_is_join(0xF7), "the mux preface");
    cr_assert_not(tt_sess_is_join(0x01), "the stream-open header's version");
}
