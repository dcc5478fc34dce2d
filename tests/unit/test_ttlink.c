/* The tt/1 link over in-memory lower links: a client and a server end, the
 * test carrying bytes between them. Checks that 0-RTT data, replies, large
 * transfers and half-closes arrive exactly, including when the consumer stops
 * reading in the middle of a burst of frames. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/ttlink.h"
#include "carrier/ttpad.h"
#include "codec/ttproto.h"
#include "memlink.h"

static uv_loop_t loop;
static memlink lc, ls; /* lower links of the client and server ends */
static uint8_t psk[TT_PSK_LEN];
static tt_ttlink_params params;

typedef struct sink {
    uint8_t *buf;
    size_t len;
    bool eof;
    int err;
    int stop_after; /* read_stop after this many deliveries (0: never) */
    int calls;
} sink;

static void on_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    sink *s = ud;
    s->buf = realloc(s->buf, s->len + n);
    memcpy(s->buf + s->len, d, n);
    s->len += n;
    if (++s->calls == s->stop_after)
        tt_link_read_stop(l);
}

static void on_eof(tt_link *l, void *ud)
{
    (void)l;
    ((sink *)ud)->eof = true;
}

static void on_error(tt_link *l, void *ud, int err)
{
    (void)l;
    ((sink *)ud)->err = err;
}

static const tt_link_handler h = {on_data, on_eof, on_error, NULL};

static void setup(void)
{
    uv_loop_init(&loop);
    memlink_init(&lc, &loop);
    memlink_init(&ls, &loop);
    tt_random(psk, sizeof psk);
    params = (tt_ttlink_params){.alg = TT_AEAD_CHACHA20_POLY1305,
                                .psk = psk,
                                .frame_data = 4096,
                                .hello_pad_max = 64,
                                .frame_pad_max = 31};
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
    memlink_free(&lc);
    memlink_free(&ls);
}

TestSuite(ttlink, .init = setup, .fini = teardown, .timeout = 20);

/* Moves what LOWER's owner wrote into TO, as the network would. */
static size_t carry(memlink *from, memlink *to, size_t *off)
{
    size_t n = from->written_len - *off;
    if (n > 0)
        cr_assert(memlink_deliver(to, from->written + *off, n), "the receiving end is not reading");
    *off = from->written_len;
    return n;
}

/* As carry, in pieces of CHUNK bytes, as a network may cut them: frame
 * bodies then arrive split across reads. */
static void carry_chunked(memlink *from, memlink *to, size_t *off, size_t chunk)
{
    while (*off < from->written_len) {
        size_t n = from->written_len - *off;
        if (n > chunk)
            n = chunk;
        cr_assert(memlink_deliver(to, from->written + *off, n), "the receiving end is not reading");
        *off += n;
    }
}

/* The server end, built from the client's first flight as the carrier does. */
static tt_link *accept_flight(const uint8_t *flight, size_t len, size_t *hello_len)
{
    uint8_t c2s[32], s2c[32];
    cr_assert_eq(tt_proto_hello_keys(psk, flight, c2s, s2c), 0);
    tt_aead rx;
    cr_assert_eq(tt_aead_init(&rx, params.alg, c2s, false), 0);
    size_t body;
    cr_assert_eq(tt_hello_open_len(&rx, flight + TT_SALT_LEN, true, &body, NULL), 0);
    cr_assert_geq(len, TT_CLIENT_PREFIX_LEN + body);
    uint8_t *b = malloc(body);
    memcpy(b, flight + TT_CLIENT_PREFIX_LEN, body);
    tt_client_hello ch;
    cr_assert_eq(tt_client_hello_open(&rx, b, body, &ch), 0);
    tt_link *s = tt_ttlink_server(&ls.base, &params, flight, ch.cpub, ch.early, ch.elen, NULL, 0);
    free(b);
    tt_aead_free(&rx);
    *hello_len = TT_CLIENT_PREFIX_LEN + body;
    return s;
}

/* Closes both ends and frees what the test collected. */
static void end_pair(tt_link *c, tt_link *s, sink *cs, sink *ss, void *extra)
{
    tt_link_close(c, NULL, NULL);
    tt_link_close(s, NULL, NULL);
    free(extra);
    free(cs->buf);
    free(ss->buf);
}

Test(ttlink, zero_rtt_reply_bulk_and_half_close)
{
    sink cs = {0}, ss = {0};
    tt_link *c = tt_ttlink_client(&lc.base, &params, 1700000000);
    tt_link_set_handler(c, &h, &cs);
    cr_assert_eq(tt_link_read_start(c), 0);
    cr_assert_eq(tt_link_write1(c, "open-header+early", 17), 0);
    cr_assert_eq(tt_link_write1(c, "queued until keys", 17), 0);
    cr_assert_eq(tt_link_pending(c), 17, "data after the hello waits for the server hello");

    size_t hello_len, coff = 0, soff = 0;
    tt_link *s = accept_flight(lc.written, lc.written_len, &hello_len);
    coff = hello_len;
    tt_link_set_handler(s, &h, &ss);
    cr_assert_eq(tt_link_read_start(s), 0);
    uv_run(&loop, UV_RUN_NOWAIT); /* delivers the early data */
    cr_assert_eq(ss.len, 17);
    cr_assert_eq(memcmp(ss.buf, "open-header+early", 17), 0);

    /* The reply rides in the server hello; then a bulk transfer. */
    size_t big = 300000;
    uint8_t *payload = malloc(big);
    for (size_t i = 0; i < big; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    cr_assert_eq(tt_link_write1(s, "\x01\x00", 2), 0);
    cr_assert_eq(tt_link_write1(s, payload, big), 0);
    cr_assert_eq(tt_link_shutdown(s), 0);
    carry(&ls, &lc, &soff);
    cr_assert_eq(cs.len, 2 + big);
    cr_assert_eq(memcmp(cs.buf + 2, payload, big), 0);
    cr_assert(cs.eof, "the FIN frame is a half-close");
    cr_assert_eq(cs.err, 0);

    /* The queued client data went out once the keys came. */
    cr_assert_eq(tt_link_pending(c), 0);
    carry(&lc, &ls, &coff);
    cr_assert_eq(ss.len, 34);
    cr_assert_eq(memcmp(ss.buf + 17, "queued until keys", 17), 0);
    cr_assert_eq(tt_link_shutdown(c), 0);
    carry(&lc, &ls, &coff);
    cr_assert(ss.eof);

    end_pair(c, s, &cs, &ss, payload);
}

Test(ttlink, stopping_mid_burst_loses_nothing)
{
    /* The first delivery is the data inside the server hello; the second is
     * the first burst of frames, where the stop matters. */
    sink cs = {.stop_after = 2}, ss = {0};
    tt_link *c = tt_ttlink_client(&lc.base, &params, 1700000000);
    tt_link_set_handler(c, &h, &cs);
    cr_assert_eq(tt_link_read_start(c), 0);
    cr_assert_eq(tt_link_write1(c, "x", 1), 0);
    size_t hello_len, soff = 0;
    tt_link *s = accept_flight(lc.written, lc.written_len, &hello_len);
    tt_link_set_handler(s, &h, &ss);

    /* Far more than one delivery's worth of frames, arriving in one read. */
    size_t big = 1000000;
    uint8_t *payload = malloc(big);
    for (size_t i = 0; i < big; i++)
        payload[i] = (uint8_t)(i ^ (i >> 9));
    cr_assert_eq(tt_link_write1(s, payload, big), 0);
    cr_assert_eq(tt_link_shutdown(s), 0);
    carry(&ls, &lc, &soff);
    cr_assert_lt(cs.len, big, "the consumer stopped after its second delivery");
    cr_assert_not(cs.eof);

    /* Resuming delivers the rest, in order, then the half-close. */
    cs.stop_after = 0;
    cr_assert_eq(tt_link_read_start(c), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(cs.len, big, "bytes were lost: %zu of %zu", cs.len, big);
    cr_assert_eq(memcmp(cs.buf, payload, big), 0);
    cr_assert(cs.eof);

    end_pair(c, s, &cs, &ss, payload);
}

Test(ttlink, tampered_frame_is_an_error_and_lower_eof_without_fin_too)
{
    sink cs = {0}, ss = {0};
    tt_link *c = tt_ttlink_client(&lc.base, &params, 1700000000);
    tt_link_set_handler(c, &h, &cs);
    cr_assert_eq(tt_link_read_start(c), 0);
    cr_assert_eq(tt_link_write1(c, "x", 1), 0);
    size_t hello_len;
    tt_link *s = accept_flight(lc.written, lc.written_len, &hello_len);
    tt_link_set_handler(s, &h, &ss);
    cr_assert_eq(tt_link_write1(s, "reply", 5), 0);
    cr_assert_eq(tt_link_write1(s, "more data", 9), 0);
    /* Deliver the hello intact, then a frame with one bit flipped. */
    uint8_t *w = malloc(ls.written_len);
    memcpy(w, ls.written, ls.written_len);
    w[ls.written_len - 3] ^= 0x10;
    cr_assert(memlink_deliver(&lc, w, ls.written_len));
    cr_assert_eq(cs.err, UV_EPROTO, "a tampered frame must fail the link");
    free(w);
    tt_link_close(c, NULL, NULL);

    /* A lower EOF with no FIN frame before it: truncation, not an end. */
    memlink lc2;
    memlink_init(&lc2, &loop);
    sink c2 = {0};
    tt_link *c2l = tt_ttlink_client(&lc2.base, &params, 1700000000);
    tt_link_set_handler(c2l, &h, &c2);
    cr_assert_eq(tt_link_read_start(c2l), 0);
    memlink_eof(&lc2);
    cr_assert_eq(c2.err, UV_EPROTO);
    cr_assert_not(c2.eof);
    tt_link_close(c2l, NULL, NULL);
    tt_link_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    memlink_free(&lc2);
    free(cs.buf);
    free(ss.buf);
}

Test(ttlink, failed_key_derivation_is_an_error_never_an_unkeyed_read)
{
    /* A client key of all zeros gives the all-zero shared secret, which is
     * refused; only a peer that knows the PSK can get this far. */
    sink ss = {0};
    uint8_t salt[TT_SALT_LEN] = {1}, zero[TT_PUB_LEN] = {0};
    tt_link *s = tt_ttlink_server(&ls.base, &params, salt, zero, NULL, 0, NULL, 0);
    cr_assert_not_null(s);
    tt_link_set_handler(s, &h, &ss);
    cr_assert_eq(tt_link_read_start(s), 0);
    cr_assert_eq(tt_link_write1(s, "\x01\x00", 2), UV_EPROTO, "no keys: the write must fail");
    /* Input after that must be refused, not opened with an unkeyed context. */
    static const uint8_t junk[64] = {0};
    cr_assert(memlink_deliver(&ls, junk, sizeof junk));
    cr_assert_eq(ss.err, UV_EPROTO);
    tt_link_close(s, NULL, NULL);
    /* No client end in this test: its lower link is closed here. */
    tt_link_close(&lc.base, NULL, NULL);
}

/* Writes of several pieces (as the mux and the relay make them): empty
 * pieces, pieces smaller than a frame and pieces that cross frame
 * boundaries, before the keys (queued) and after, in the hello and in
 * frames, with and without padding; every byte arrives, in order. */
static void pieces_arrive_whole(int profile, unsigned frame_pad_max)
{
    params.pad_profile = profile;
    params.frame_pad_max = frame_pad_max;
    sink cs = {0}, ss = {0};
    tt_link *c = tt_ttlink_client(&lc.base, &params, 1700000000);
    tt_link_set_handler(c, &h, &cs);
    cr_assert_eq(tt_link_read_start(c), 0);

    size_t total = 200000;
    uint8_t *src = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (uint8_t)(i * 13 + (i >> 8));
    /* The hello's data spans three pieces; then a queued write. */
    uv_buf_t first[] = {uv_buf_init((char *)src, 3), uv_buf_init((char *)src + 3, 0),
                        uv_buf_init((char *)src + 3, 5), uv_buf_init((char *)src + 8, 9)};
    cr_assert_eq(tt_link_write(c, first, 4), 0);
    uv_buf_t queued[] = {uv_buf_init((char *)src + 17, 4000), uv_buf_init((char *)src + 4017, 983)};
    cr_assert_eq(tt_link_write(c, queued, 2), 0);
    size_t hello_len, coff, soff = 0;
    tt_link *s = accept_flight(lc.written, lc.written_len, &hello_len);
    coff = hello_len;
    tt_link_set_handler(s, &h, &ss);
    cr_assert_eq(tt_link_read_start(s), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(ss.len, 17);
    cr_assert_eq(tt_link_write1(s, "\x01\x00", 2), 0);
    carry(&ls, &lc, &soff);
    carry(&lc, &ls, &coff);
    cr_assert_eq(ss.len, 5000);

    /* After the keys: pieces of odd sizes, around and across 4096-byte frames. */
    static const size_t sizes[] = {1, 0, 4095, 2, 4096, 4097, 7, 0, 12000, 3, 8191, 30000};
    size_t off = 5000;
    while (off < total) {
        uv_buf_t b[sizeof sizes / sizeof sizes[0]];
        unsigned n = 0;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && off < total; i++) {
            size_t k = sizes[i] < total - off ? sizes[i] : total - off;
            b[n++] = uv_buf_init((char *)src + off, (unsigned)k);
            off += k;
        }
        cr_assert_eq(tt_link_write(c, b, n), 0);
    }
    cr_assert_eq(tt_link_shutdown(c), 0);
    carry_chunked(&lc, &ls, &coff, 1777);
    cr_assert_eq(ss.len, total, "%zu of %zu bytes", ss.len, total);
    cr_assert_eq(memcmp(ss.buf, src, total), 0);
    cr_assert(ss.eof);
    cr_assert_eq(ss.err, 0);

    end_pair(c, s, &cs, &ss, src);
}

Test(ttlink, written_pieces_arrive_whole_with_padding)
{
    pieces_arrive_whole(TT_PAD_UNIFORM, 31);
}

Test(ttlink, written_pieces_arrive_whole_with_shaped_padding)
{
    params.hello_pad_max = TT_HELLO_MAX_PAD;
    pieces_arrive_whole(TT_PAD_SHAPED, TT_FRAME_MAX_PAD);
}

Test(ttlink, written_pieces_arrive_whole_without_padding)
{
    pieces_arrive_whole(TT_PAD_OFF, 0);
}
