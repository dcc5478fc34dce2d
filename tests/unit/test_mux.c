/* Tests of the mux frame codec: golden bytes, a whole conversation read in
 * every two-piece split and byte by byte, DATA payload handed out in place,
 * and every malformed header and payload. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/mux.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

Test(mux_codec, golden_preface_and_headers)
{
    static const uint8_t preface[] = {0xF7, 0x54, 0x4D, 0x01};
    cr_assert_arr_eq(tt_mux_preface, preface, 4);
    cr_assert_neq(tt_mux_preface[0], 0x01, "the plain stream header starts with 0x01");

    uint8_t out[TT_MUX_CTRL_MAX];
    tt_mux_hdr h = {.type = TT_MUX_DATA, .flags = TT_MUX_FLAG_OPEN, .len = 5, .stream = 1};
    static const uint8_t data_open[] = {0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01};
    cr_assert_eq(tt_mux_hdr_encode(&h, out), 8);
    cr_assert_arr_eq(out, data_open, 8);

    h = (tt_mux_hdr){
        .type = TT_MUX_DATA, .flags = TT_MUX_FLAG_FIN, .len = 16384, .stream = 0x7fffffff};
    static const uint8_t data_fin[] = {0x00, 0x02, 0x40, 0x00, 0x7f, 0xff, 0xff, 0xff};
    tt_mux_hdr_encode(&h, out);
    cr_assert_arr_eq(out, data_fin, 8);

    static const uint8_t window[] = {0x01, 0x00, 0x00, 0x04, 0x00, 0x00,
                                     0x00, 0x03, 0x00, 0x01, 0x00, 0x00};
    cr_assert_eq(tt_mux_window_encode(3, 65536, out), sizeof window);
    cr_assert_arr_eq(out, window, sizeof window);

    static const uint8_t reset[] = {0x02, 0x00, 0x00, 0x04, 0x00, 0x00,
                                    0x00, 0x05, 0x00, 0x00, 0x00, 0x05};
    cr_assert_eq(tt_mux_reset_encode(5, TT_MUX_CANCEL, out), sizeof reset);
    cr_assert_arr_eq(out, reset, sizeof reset);

    static const uint8_t opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t ping[] = {0x03, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
                                   1,    2,    3,    4,    5,    6,    7,    8};
    cr_assert_eq(tt_mux_ping_encode(false, opaque, out), sizeof ping);
    cr_assert_arr_eq(out, ping, sizeof ping);
    static const uint8_t pong[] = {0x03, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
                                   1,    2,    3,    4,    5,    6,    7,    8};
    tt_mux_ping_encode(true, opaque, out);
    cr_assert_arr_eq(out, pong, sizeof pong);

    static const uint8_t goaway[] = {0x04, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01};
    cr_assert_eq(tt_mux_goaway_encode(7, TT_MUX_PROTOCOL, out), sizeof goaway);
    cr_assert_arr_eq(out, goaway, sizeof goaway);
}

Test(mux_codec, preface_detection)
{
    static const uint8_t plain[] = {0x01, 0x00, 0x01, 127, 0, 0, 1, 0, 80};
    cr_assert_eq(tt_mux_is_preface(plain, sizeof plain), 0);
    cr_assert_eq(tt_mux_is_preface(plain, 1), 0, "the first byte decides a plain stream");
    cr_assert_eq(tt_mux_is_preface(tt_mux_preface, 1), -1);
    cr_assert_eq(tt_mux_is_preface(tt_mux_preface, 3), -1);
    cr_assert_eq(tt_mux_is_preface(tt_mux_preface, 4), 1);
    static const uint8_t more[] = {0xF7, 0x54, 0x4D, 0x01, 0x00, 0x01};
    cr_assert_eq(tt_mux_is_preface(more, sizeof more), 1);
    static const uint8_t near[] = {0xF7, 0x54, 0x4E};
    cr_assert_eq(tt_mux_is_preface(near, sizeof near), 0);
    cr_assert_eq(tt_mux_is_preface(near, 0), -1);
}

/* One frame as the reader reported it, with DATA pieces joined. */
typedef struct rec {
    tt_mux_hdr hdr;
    uint8_t payload[TT_MUX_FRAME_MAX];
    size_t len;
    uint32_t value, last_stream;
    uint8_t opaque[8];
    unsigned pieces;
} rec;

typedef struct run {
    rec *recs;
    size_t n;
    int rc; /* 0: ended needing more; -EPROTO */
    const char *why;
    size_t taken; /* bytes taken before the end */
} run;

/* Reads IN fed in pieces ending at CUTS, checking the per-call contract. */
static run read_cuts(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts, bool preface)
{
    tt_mux_reader r;
    tt_mux_reader_init(&r, preface);
    run out = {.recs = calloc(64, sizeof(rec))};
    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        size_t off = start;
        for (;;) {
            tt_mux_frame f;
            size_t used = (size_t)-1;
            const char *why = NULL;
            int rc = tt_mux_reader_feed(&r, in + off, end - off, &used, &f, &why);
            cr_assert_leq(used, end - off);
            off += used;
            if (rc < 0) {
                cr_assert_eq(rc, -EPROTO);
                cr_assert_not_null(why);
                out.rc = rc;
                out.why = why;
                out.taken = off;
                /* Refusals stick. */
                const char *again = NULL;
                cr_assert_eq(tt_mux_reader_feed(&r, in, len, &used, &f, &again), -EPROTO);
                cr_assert_eq(used, 0);
                cr_assert_str_eq(again, why);
                return out;
            }
            if (rc == 0) {
                cr_assert_eq(off, end, "0 means all of the input was taken");
                break;
            }
            cr_assert_eq(rc, 1);
            if (f.first) {
                cr_assert_lt(out.n, 64);
                rec *x = &out.recs[out.n++];
                x->hdr = f.hdr;
                x->value = f.value;
                x->last_stream = f.last_stream;
                memcpy(x->opaque, f.opaque, 8);
            }
            cr_assert_gt(out.n, 0, "a piece before any first piece");
            rec *x = &out.recs[out.n - 1];
            if (f.hdr.type == TT_MUX_DATA) {
                if (f.len > 0) {
                    /* Payload comes in place, from the bytes just fed. */
                    cr_assert(f.data >= in + start && f.data + f.len <= in + end);
                } else {
                    cr_assert_eq(f.hdr.len, 0, "empty pieces only for empty frames");
                }
                if (f.len > 0)
                    memcpy(x->payload + x->len, f.data, f.len);
                x->len += f.len;
                x->pieces++;
                cr_assert_eq(f.last, x->len == f.hdr.len);
            } else {
                cr_assert(f.first && f.last);
            }
        }
        start = end;
    }
    out.taken = len;
    return out;
}

static void assert_same(const run *a, const run *b)
{
    cr_assert_eq(a->rc, b->rc);
    cr_assert_eq(a->n, b->n, "%zu frames vs %zu", a->n, b->n);
    cr_assert_eq(a->taken, b->taken);
    if (a->why)
        cr_assert_str_eq(a->why, b->why);
    for (size_t i = 0; i < a->n; i++) {
        const rec *x = &a->recs[i], *y = &b->recs[i];
        cr_assert_eq(x->hdr.type, y->hdr.type);
        cr_assert_eq(x->hdr.flags, y->hdr.flags);
        cr_assert_eq(x->hdr.len, y->hdr.len);
        cr_assert_eq(x->hdr.stream, y->hdr.stream);
        cr_assert_eq(x->len, y->len);
        cr_assert_arr_eq(x->payload, y->payload, x->len);
        cr_assert_eq(x->value, y->value);
        cr_assert_eq(x->last_stream, y->last_stream);
        cr_assert_arr_eq(x->opaque, y->opaque, 8);
    }
}

/* A conversation: preface, an open with data, a window update, a ping, a
 * second open that is empty and ends at once, data with FIN, a reset, a
 * go-away. */
static size_t conversation(uint8_t *buf)
{
    size_t n = 0;
    memcpy(buf, tt_mux_preface, 4);
    n += 4;
    tt_mux_hdr h = {.type = TT_MUX_DATA, .flags = TT_MUX_FLAG_OPEN, .len = 11, .stream = 1};
    n += tt_mux_hdr_encode(&h, buf + n);
    memcpy(buf + n, "hello world", 11);
    n += 11;
    n += tt_mux_window_encode(1, 1000, buf + n);
    static const uint8_t op[8] = {9, 8, 7, 6, 5, 4, 3, 2};
    n += tt_mux_ping_encode(false, op, buf + n);
    h = (tt_mux_hdr){.type = TT_MUX_DATA, .flags = TT_MUX_FLAG_OPEN | TT_MUX_FLAG_FIN, .stream = 3};
    n += tt_mux_hdr_encode(&h, buf + n);
    h = (tt_mux_hdr){.type = TT_MUX_DATA, .flags = TT_MUX_FLAG_FIN, .len = 300, .stream = 1};
    n += tt_mux_hdr_encode(&h, buf + n);
    for (int i = 0; i < 300; i++)
        buf[n++] = (uint8_t)(i * 13);
    n += tt_mux_reset_encode(3, TT_MUX_REFUSED, buf + n);
    n += tt_mux_goaway_encode(3, TT_MUX_OK, buf + n);
    return n;
}

Test(mux_codec, every_split_agrees)
{
    uint8_t buf[1024];
    size_t len = conversation(buf);
    run whole = read_cuts(buf, len, NULL, 0, true);
    cr_assert_eq(whole.rc, 0);
    cr_assert_eq(whole.n, 7);
    cr_assert_eq(whole.recs[0].len, 11);
    cr_assert_arr_eq(whole.recs[0].payload, "hello world", 11);
    cr_assert_eq(whole.recs[0].pieces, 1);
    cr_assert_eq(whole.recs[1].hdr.type, TT_MUX_WINDOW);
    cr_assert_eq(whole.recs[1].value, 1000);
    cr_assert_eq(whole.recs[2].hdr.type, TT_MUX_PING);
    cr_assert_eq(whole.recs[2].opaque[0], 9);
    cr_assert_eq(whole.recs[3].hdr.flags, TT_MUX_FLAG_OPEN | TT_MUX_FLAG_FIN);
    cr_assert_eq(whole.recs[3].len, 0);
    cr_assert_eq(whole.recs[4].len, 300);
    cr_assert_eq(whole.recs[5].value, TT_MUX_REFUSED);
    cr_assert_eq(whole.recs[6].hdr.type, TT_MUX_GOAWAY);
    cr_assert_eq(whole.recs[6].last_stream, 3);

    for (size_t cut = 0; cut <= len; cut++) {
        run r = read_cuts(buf, len, &cut, 1, true);
        assert_same(&whole, &r);
        free(r.recs);
    }
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    run bytewise = read_cuts(buf, len, cuts, len, true);
    assert_same(&whole, &bytewise);
    cr_assert_eq(bytewise.recs[4].pieces, 300, "one piece per byte fed");
    free(bytewise.recs);
    free(cuts);
    free(whole.recs);
}

Test(mux_codec, without_preface_and_partial_state)
{
    uint8_t buf[1024];
    size_t len = conversation(buf);
    run r = read_cuts(buf + 4, len - 4, NULL, 0, false);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.n, 7);
    free(r.recs);

    tt_mux_reader rd;
    tt_mux_reader_init(&rd, true);
    cr_assert_not(tt_mux_reader_partial(&rd));
    tt_mux_frame f;
    size_t used;
    const char *why;
    cr_assert_eq(tt_mux_reader_feed(&rd, buf, 2, &used, &f, &why), 0);
    cr_assert(tt_mux_reader_partial(&rd), "inside the preface");
    cr_assert_eq(tt_mux_reader_feed(&rd, buf + 2, 2, &used, &f, &why), 0);
    cr_assert_not(tt_mux_reader_partial(&rd), "between frames");
    cr_assert_eq(tt_mux_reader_feed(&rd, buf + 4, 10, &used, &f, &why), 1);
    cr_assert_eq(used, 10);
    cr_assert_eq(f.len, 2);
    cr_assert(f.first && !f.last);
    cr_assert(tt_mux_reader_partial(&rd), "inside a data frame");
}

typedef struct bad {
    const char *name;
    uint8_t bytes[24];
    size_t len;
    size_t taken; /* bytes taken up to the refusal */
    const char *why;
} bad;

static const bad bads[] = {
    {"bad preface", {0x01, 0x00, 0x01}, 3, 1, "the connection does not start with the mux preface"},
    {"bad preface last byte",
     {0xF7, 0x54, 0x4D, 0x02},
     4,
     4,
     "the connection does not start with the mux preface"},
    {"unknown type",
     {0xF7, 0x54, 0x4D, 0x01, 5, 0, 0, 0, 0, 0, 0, 0},
     12,
     12,
     "unknown frame type"},
    {"data flags",
     {0xF7, 0x54, 0x4D, 0x01, 0, 4, 0, 1, 0, 0, 0, 1},
     12,
     12,
     "unknown flags on a data frame"},
    {"data too long",
     {0xF7, 0x54, 0x4D, 0x01, 0, 0, 0x40, 0x01, 0, 0, 0, 1},
     12,
     12,
     "data frame longer than 16384 bytes"},
    {"data on 0",
     {0xF7, 0x54, 0x4D, 0x01, 0, 1, 0, 1, 0, 0, 0, 0},
     12,
     12,
     "data frame on stream 0"},
    {"empty data",
     {0xF7, 0x54, 0x4D, 0x01, 0, 0, 0, 0, 0, 0, 0, 1},
     12,
     12,
     "empty data frame without flags"},
    {"reserved bit",
     {0xF7, 0x54, 0x4D, 0x01, 0, 1, 0, 1, 0x80, 0, 0, 1},
     12,
     12,
     "reserved bit set in a stream id"},
    {"window len",
     {0xF7, 0x54, 0x4D, 0x01, 1, 0, 0, 8, 0, 0, 0, 1},
     12,
     12,
     "window update whose length is not 4"},
    {"window flags",
     {0xF7, 0x54, 0x4D, 0x01, 1, 1, 0, 4, 0, 0, 0, 1},
     12,
     12,
     "flags on a window update"},
    {"window on 0",
     {0xF7, 0x54, 0x4D, 0x01, 1, 0, 0, 4, 0, 0, 0, 0},
     12,
     12,
     "window update on stream 0"},
    {"window zero",
     {0xF7, 0x54, 0x4D, 0x01, 1, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0},
     16,
     16,
     "window increment out of range"},
    {"window huge",
     {0xF7, 0x54, 0x4D, 0x01, 1, 0, 0, 4, 0, 0, 0, 1, 0x80, 0, 0, 0},
     16,
     16,
     "window increment out of range"},
    {"reset len",
     {0xF7, 0x54, 0x4D, 0x01, 2, 0, 0, 0, 0, 0, 0, 1},
     12,
     12,
     "reset whose length is not 4"},
    {"reset on 0", {0xF7, 0x54, 0x4D, 0x01, 2, 0, 0, 4, 0, 0, 0, 0}, 12, 12, "reset on stream 0"},
    {"ping flags",
     {0xF7, 0x54, 0x4D, 0x01, 3, 2, 0, 8, 0, 0, 0, 0},
     12,
     12,
     "unknown flags on a ping"},
    {"ping len",
     {0xF7, 0x54, 0x4D, 0x01, 3, 0, 0, 4, 0, 0, 0, 0},
     12,
     12,
     "ping whose length is not 8"},
    {"ping on stream",
     {0xF7, 0x54, 0x4D, 0x01, 3, 0, 0, 8, 0, 0, 0, 1},
     12,
     12,
     "ping on a stream"},
    {"goaway on stream",
     {0xF7, 0x54, 0x4D, 0x01, 4, 0, 0, 8, 0, 0, 0, 1},
     12,
     12,
     "go-away on a stream"},
    {"goaway reserved",
     {0xF7, 0x54, 0x4D, 0x01, 4, 0, 0, 8, 0, 0, 0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0},
     20,
     20,
     "reserved bit set in a go-away stream id"},
};

Test(mux_codec, malformed_in_every_split)
{
    for (size_t i = 0; i < LEN(bads); i++) {
        const bad *b = &bads[i];
        /* Trailing bytes after the refusal are never taken. */
        uint8_t in[40];
        memcpy(in, b->bytes, b->len);
        memset(in + b->len, 0xAA, 8);
        size_t len = b->len + 8;
        for (size_t cut = 0; cut <= len; cut++) {
            run r = read_cuts(in, len, &cut, 1, true);
            cr_assert_eq(r.rc, -EPROTO, "%s: accepted", b->name);
            cr_assert_str_eq(r.why, b->why, "%s: %s", b->name, r.why);
            cr_assert_eq(r.taken, b->taken, "%s (cut %zu): refused after %zu bytes, not %zu",
                         b->name, cut, r.taken, b->taken);
            free(r.recs);
        }
    }
}

Test(mux_codec, header_check_accepts_what_the_spec_allows)
{
    const char *why = NULL;
    tt_mux_hdr ok[] = {
        {TT_MUX_DATA, TT_MUX_FLAG_OPEN, 0, 1},
        {TT_MUX_DATA, TT_MUX_FLAG_FIN, 0, 2},
        {TT_MUX_DATA, 0, 1, 3},
        {TT_MUX_DATA, TT_MUX_FLAG_OPEN | TT_MUX_FLAG_FIN, 16384, TT_MUX_ID_MAX},
        {TT_MUX_WINDOW, 0, 4, 1},
        {TT_MUX_RESET, 0, 4, 9},
        {TT_MUX_PING, 0, 8, 0},
        {TT_MUX_PING, TT_MUX_FLAG_ACK, 8, 0},
        {TT_MUX_GOAWAY, 0, 8, 0},
    };
    for (size_t i = 0; i < LEN(ok); i++)
        cr_assert_eq(tt_mux_hdr_check(&ok[i], &why), 0, "header %zu refused: %s", i, why);
}
