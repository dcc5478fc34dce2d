/* Tests of the padding policies (src/carrier/ttpad.c) with a seeded
 * generator, so each run draws the same values: the shaped first flights
 * have no hard edge and no plateau and reach beyond the old uniform range,
 * a small write's size does not tell a 1-byte write from a 100-byte one,
 * bulk writes pay little, and every draw stays within its limit. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "carrier/ttpad.h"
#include "codec/ttproto.h"

#define DRAWS 20000

/* The smallest client first flight (a 9-byte stream-open header) and server
 * hello (the 2-byte reply) without padding. */
#define CLIENT_BARE 118
#define SERVER_BARE 73

Test(ttpad, profiles_parse_by_name)
{
    cr_assert_eq(tt_pad_profile_parse("shaped"), TT_PAD_SHAPED);
    cr_assert_eq(tt_pad_profile_parse("uniform"), TT_PAD_UNIFORM);
    cr_assert_eq(tt_pad_profile_parse("off"), TT_PAD_OFF);
    cr_assert_eq(tt_pad_profile_parse("tls"), -1);
    cr_assert_eq(tt_pad_profile_parse(""), -1);
}

Test(ttpad, the_same_seed_draws_the_same_sizes)
{
    uint64_t a = 42, b = 42, c = 43;
    int same_c = 0;
    for (int i = 0; i < 100; i++) {
        size_t x = tt_pad_hello(TT_PAD_SHAPED, true, CLIENT_BARE, TT_HELLO_MAX_PAD, &a);
        cr_assert_eq(x, tt_pad_hello(TT_PAD_SHAPED, true, CLIENT_BARE, TT_HELLO_MAX_PAD, &b));
        same_c += x == tt_pad_hello(TT_PAD_SHAPED, true, CLIENT_BARE, TT_HELLO_MAX_PAD, &c);
    }
    cr_assert_lt(same_c, 10, "another seed draws other sizes");
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Draws DRAWS first-flight totals into OUT, sorted. */
static void flights(bool client, size_t bare, size_t max, size_t *out)
{
    uint64_t s = client ? 7 : 8;
    for (int i = 0; i < DRAWS; i++) {
        size_t pad = tt_pad_hello(TT_PAD_SHAPED, client, bare, max, &s);
        cr_assert_leq(pad, max);
        out[i] = bare + pad;
    }
    qsort(out, DRAWS, sizeof *out, cmp_size);
}

/* The share of draws (sorted in S) within WIDTH bytes of either end of their
 * range: a uniform draw over the old range puts 2 x WIDTH / range there, a
 * density that falls to nothing at the ends almost none. */
static double at_edges(const size_t *s, size_t width)
{
    size_t lo = s[0], hi = s[DRAWS - 1], n = 0;
    for (int i = 0; i < DRAWS; i++)
        n += s[i] < lo + width || s[i] + width > hi;
    return (double)n / DRAWS;
}

static void no_hard_edge(bool client, size_t bare)
{
    size_t *s = malloc(DRAWS * sizeof *s);
    flights(client, bare, TT_HELLO_MAX_PAD, s);
    double edges = at_edges(s, 20);
    cr_assert_lt(edges, 0.005, "%.4f of the flights lie within 20 bytes of %zu or %zu", edges, s[0],
                 s[DRAWS - 1]);
    /* The old uniform padding, for contrast: the same measure sees its edges. */
    uint64_t u = 9;
    for (int i = 0; i < DRAWS; i++)
        s[i] = bare + tt_pad_hello(TT_PAD_UNIFORM, client, bare, 1024, &u);
    qsort(s, DRAWS, sizeof *s, cmp_size);
    double old = at_edges(s, 20);
    free(s);
    cr_assert_gt(old, 0.03, "uniform padding: %.4f at the edges", old);
}

Test(ttpad, shaped_first_flights_have_no_hard_edge)
{
    no_hard_edge(true, CLIENT_BARE);
    no_hard_edge(false, SERVER_BARE);
}

Test(ttpad, shaped_client_flights_leave_the_old_range_and_gather_where_hellos_do)
{
    size_t *s = malloc(DRAWS * sizeof *s);
    flights(true, CLIENT_BARE, TT_HELLO_MAX_PAD, s);
    size_t above = 0, near517 = 0;
    for (int i = 0; i < DRAWS; i++) {
        above += s[i] > 1141;
        near517 += s[i] >= 497 && s[i] <= 537;
    }
    cr_assert_gt(above, DRAWS / 10, "flights above the old upper bound of 1141: %zu", above);
    /* 40 bytes around 517 hold far more than a uniform spread over the
     * range would put there (about 2%). */
    cr_assert_gt(near517, DRAWS / 8, "flights within 20 bytes of 517: %zu", near517);
    free(s);
}

Test(ttpad, a_hello_never_exceeds_its_limit)
{
    uint64_t s = 11;
    size_t limits[] = {0, 1, 31, 200, 1024, TT_HELLO_MAX_PAD};
    size_t bares[] = {SERVER_BARE, CLIENT_BARE, 600, 3000, 8300};
    for (size_t l = 0; l < sizeof limits / sizeof *limits; l++)
        for (size_t b = 0; b < sizeof bares / sizeof *bares; b++)
            for (int p = TT_PAD_SHAPED; p <= TT_PAD_OFF; p++)
                for (int i = 0; i < 500; i++) {
                    size_t pad = tt_pad_hello(p, i & 1, bares[b], limits[l], &s);
                    cr_assert_leq(pad, limits[l]);
                    if (p == TT_PAD_OFF)
                        cr_assert_eq(pad, 0);
                }
}

Test(ttpad, a_frame_never_exceeds_its_limit)
{
    uint64_t s = 12;
    size_t limits[] = {0, 1, 31, 200, TT_FRAME_MAX_PAD};
    for (size_t l = 0; l < sizeof limits / sizeof *limits; l++)
        for (size_t tail = 0; tail <= TT_FRAME_MAX_DATA; tail += 97)
            for (int i = 0; i < 20; i++)
                cr_assert_leq(tt_pad_write_tail(tail, limits[l], &s), limits[l]);
}

/* Kolmogorov-Smirnov distance between the wire sizes of writes of A and of B
 * plaintext bytes: the largest gap between their cumulative distributions,
 * which bounds how much better than a coin any threshold on the size
 * guesses which of the two was written. */
static double ks_distance(size_t a, size_t b, size_t max)
{
    enum { TOP = 4096 };
    static unsigned ha[TOP], hb[TOP];
    memset(ha, 0, sizeof ha);
    memset(hb, 0, sizeof hb);
    uint64_t s = 13;
    for (int i = 0; i < DRAWS; i++) {
        ha[a + tt_pad_write_tail(a, max, &s)]++;
        hb[b + tt_pad_write_tail(b, max, &s)]++;
    }
    double fa = 0, fb = 0, d = 0;
    for (int i = 0; i < TOP; i++) {
        fa += (double)ha[i] / DRAWS;
        fb += (double)hb[i] / DRAWS;
        d = fa - fb > d ? fa - fb : fb - fa > d ? fb - fa : d;
    }
    return d;
}

Test(ttpad, small_writes_of_different_sizes_look_alike)
{
    double d = ks_distance(1, 100, TT_FRAME_MAX_PAD);
    cr_assert_lt(d, 0.1, "1-byte and 100-byte writes: KS distance %.3f", d);
    d = ks_distance(0, 40, TT_FRAME_MAX_PAD);
    cr_assert_lt(d, 0.05, "a FIN alone and a 40-byte write: KS distance %.3f", d);
    /* Padding of at most 31 bytes (the old default) cannot hide a 99-byte
     * difference: the sizes do not overlap at all. */
    cr_assert_gt(ks_distance(1, 100, 31), 0.99);
}

Test(ttpad, bulk_writes_pay_little)
{
    uint64_t s = 14;
    size_t total = 0;
    for (int i = 0; i < DRAWS; i++)
        total += tt_pad_write_tail(4096, TT_FRAME_MAX_PAD, &s);
    double mean = (double)total / DRAWS;
    /* An eighth of the frame at most, so about a sixteenth on average: 0.4%
     * of a 64 KiB write of which this is the last frame. */
    cr_assert_lt(mean, 300, "mean padding of a full last frame: %.1f", mean);
    cr_assert_gt(mean, 200);
}
