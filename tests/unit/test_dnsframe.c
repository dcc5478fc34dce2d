/* Tests of the DNS-over-TCP framing reader (codec/dnsframe.c) on streams
 * written out byte by byte: whole messages lent from the input, a message
 * split at every possible point, several in one read, the prefix split
 * between reads, oversized and empty messages skipped without losing the
 * next one, and the prefix writer. */
#include <criterion/criterion.h>

#include <string.h>

#include "codec/dnsframe.h"

/* Two messages: "\x12\x34ab" (4 bytes) and "xyz" (3 bytes). */
static const uint8_t STREAM[] = {0x00, 0x04, 0x12, 0x34, 'a', 'b', 0x00, 0x03, 'x', 'y', 'z'};

typedef struct got {
    unsigned n;
    size_t len[8];
    uint8_t msg[8][16];
    bool lent[8]; /* pointed into the input */
} got;

static void feed_all(tt_dnsframe *f, const uint8_t *in, size_t n, got *g)
{
    while (n > 0) {
        const uint8_t *msg;
        size_t len;
        size_t used = tt_dnsframe_feed(f, in, n, &msg, &len);
        cr_assert_gt(used, 0);
        if (msg != NULL) {
            cr_assert_lt(g->n, 8);
            cr_assert_leq(len, 16);
            g->lent[g->n] = msg >= in && msg < in + n;
            memcpy(g->msg[g->n], msg, len);
            g->len[g->n++] = len;
        } else {
            cr_assert_eq(used, n);
        }
        in += used;
        n -= used;
    }
}

Test(dnsframe, whole_messages_are_lent_from_the_input)
{
    uint8_t buf[64];
    tt_dnsframe f;
    tt_dnsframe_init(&f, buf, sizeof buf);
    got g = {0};
    feed_all(&f, STREAM, sizeof STREAM, &g);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.len[0], 4);
    cr_assert_arr_eq(g.msg[0],
                     "\x12\x34"
                     "ab",
                     4);
    cr_assert_eq(g.len[1], 3);
    cr_assert_arr_eq(g.msg[1], "xyz", 3);
    cr_assert(g.lent[0] && g.lent[1]);
}

Test(dnsframe, every_split_gives_the_same_messages)
{
    for (size_t cut = 1; cut < sizeof STREAM; cut++) {
        uint8_t buf[64];
        tt_dnsframe f;
        tt_dnsframe_init(&f, buf, sizeof buf);
        got g = {0};
        feed_all(&f, STREAM, cut, &g);
        feed_all(&f, STREAM + cut, sizeof STREAM - cut, &g);
        cr_assert_eq(g.n, 2, "cut at %zu", cut);
        cr_assert_arr_eq(g.msg[0],
                         "\x12\x34"
                         "ab",
                         4);
        cr_assert_arr_eq(g.msg[1], "xyz", 3);
    }
}

Test(dnsframe, one_byte_at_a_time)
{
    uint8_t buf[64];
    tt_dnsframe f;
    tt_dnsframe_init(&f, buf, sizeof buf);
    got g = {0};
    for (size_t i = 0; i < sizeof STREAM; i++)
        feed_all(&f, STREAM + i, 1, &g);
    cr_assert_eq(g.n, 2);
    cr_assert_eq(g.len[1], 3);
    cr_assert(!g.lent[0] && !g.lent[1]);
}

Test(dnsframe, oversized_and_empty_messages_are_skipped)
{
    /* Capacity 4: a 5-byte message is dropped, an empty one too, and the
     * 4-byte message after them arrives. */
    static const uint8_t in[] = {0x00, 0x05, 1,    2,   3,   4,   5,  0x00,
                                 0x00, 0x00, 0x04, 'o', 'k', '!', '!'};
    uint8_t buf[4];
    tt_dnsframe f;
    tt_dnsframe_init(&f, buf, sizeof buf);
    got g = {0};
    feed_all(&f, in, 3, &g); /* the oversized message split */
    feed_all(&f, in + 3, sizeof in - 3, &g);
    cr_assert_eq(g.n, 1);
    cr_assert_eq(g.len[0], 4);
    cr_assert_arr_eq(g.msg[0], "ok!!", 4);
    cr_assert_eq(f.skipped, 2);
}

Test(dnsframe, the_prefix_is_big_endian)
{
    uint8_t p[2];
    tt_dnsframe_prefix(p, 0x1234);
    cr_assert_eq(p[0], 0x12);
    cr_assert_eq(p[1], 0x34);
    tt_dnsframe_prefix(p, 1232);
    cr_assert_eq(p[0], 0x04);
    cr_assert_eq(p[1], 0xD0);
}
