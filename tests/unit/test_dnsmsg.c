/* Tests of the forwarder's DNS message helpers and its cache, on golden
 * messages written out byte by byte here: the question key (lowercased)
 * and the client's UDP size, the time an answer may be kept (smallest TTL;
 * SOA for negative answers; never for SERVFAIL, TC, or a negative answer
 * without a SOA), aging of the TTLs, the SERVFAIL and TC answers a
 * forwarder makes, malformed input, and the cache's expiry, id rewrite,
 * aging and bounds. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "codec/dnsmsg.h"
#include "entry/dnscache.h"

/* A query for Www.Example.COM A IN, id 0xabcd, RD, with an OPT of 4096. */
static const uint8_t QUERY[] = {
    0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* header */
    3,    'W',  'w',  'w',  7,    'E',  'x',  'a',  'm',  'p',  'l',  'e',
    3,    'C',  'O',  'M',  0,    0x00, 0x01, 0x00, 0x01,             /* question */
    0,    0x00, 0x29, 0x10, 0x00, 0,    0,    0,    0,    0x00, 0x00, /* OPT 4096 */
};

/* Its answer: a CNAME (TTL 300) and an A (TTL 60), both owners compressed. */
static const uint8_t ANSWER[] =
    {
        0xab, 0xcd, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, /* header */
        3,    'w',  'w',  'w',  7,    'e',  'x',  'a',  'm',  'p',  'l',  'e',  3,    'c', 'o',
        'm',  0,    0x00, 0x01, 0x00, 0x01, /* question */
        0xc0, 12,   0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x02, 0xc0, 16, /* CNAME
                                                                                           */
        0xc0, 16,   0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 192,  0,   2,
        1, /* A 192.0.2.1, TTL 60 */
};

/* NXDOMAIN for the same question with a SOA in authority: TTL 3600,
 * MINIMUM 30. */
static const uint8_t NXDOMAIN[] = {
    0xab, 0xcd, 0x81, 0x83, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 3,  'w',  'w',  'w',
    7,    'e',  'x',  'a',  'm',  'p',  'l',  'e',  3,    'c',  'o',  'm',  0,  0x00, 0x01, 0x00,
    0x01, 0xc0, 16,   0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 24, /* SOA */
    0xc0, 16,   0xc0, 16,   0,    0,    0,    1,    0,    0,    0,    2,    0,  0,    0,    3,
    0,    0,    0,    4,    0,    0,    0,    30,
};

Test(dnsmsg, question_key_is_lowercased_with_type_class_and_udp_size)
{
    tt_dnsmsg_q q;
    const char *why = NULL;
    cr_assert_eq(tt_dnsmsg_question(QUERY, sizeof QUERY, true, &q, &why), 0, "%s", why);
    static const uint8_t key[] = {3,   'w', 'w', 'w', 7,   'e', 'x', 'a', 'm', 'p', 'l',
                                  'e', 3,   'c', 'o', 'm', 0,   0,   1,   0,   1};
    cr_assert_eq(q.key_len, sizeof key);
    cr_assert_arr_eq(q.key, key, sizeof key);
    cr_assert_eq(q.id, 0xabcd);
    cr_assert_eq(q.qtype, 1);
    cr_assert_eq(q.qend, 12 + 17 + 4);
    cr_assert_eq(q.udp_max, 4096);
    /* The answer's question gives the same key. */
    tt_dnsmsg_q a;
    cr_assert_eq(tt_dnsmsg_question(ANSWER, sizeof ANSWER, false, &a, &why), 0, "%s", why);
    cr_assert_arr_eq(a.key, key, sizeof key);
    /* Without the OPT, the client takes 512 bytes. */
    uint8_t plain[sizeof QUERY];
    memcpy(plain, QUERY, sizeof QUERY);
    plain[11] = 0;
    cr_assert_eq(tt_dnsmsg_question(plain, sizeof QUERY - 11, true, &q, &why), 0);
    cr_assert_eq(q.udp_max, 512);
}

Test(dnsmsg, refuses_what_is_not_one_plain_question)
{
    tt_dnsmsg_q q;
    const char *why = NULL;
    cr_assert_eq(tt_dnsmsg_question(QUERY, 11, true, &q, &why), -EPROTO);
    cr_assert_eq(tt_dnsmsg_question(ANSWER, sizeof ANSWER, true, &q, &why), -EPROTO);
    cr_assert_eq(tt_dnsmsg_question(QUERY, sizeof QUERY, false, &q, &why), -EPROTO);
    for (size_t n = 12; n < 12 + 17 + 4; n++)
        cr_assert_eq(tt_dnsmsg_question(QUERY, n, true, &q, &why), -EPROTO, "cut at %zu", n);
    uint8_t m[sizeof QUERY];
    memcpy(m, QUERY, sizeof m);
    m[5] = 2; /* two questions */
    cr_assert_eq(tt_dnsmsg_question(m, sizeof m, true, &q, &why), -EPROTO);
    memcpy(m, QUERY, sizeof m);
    m[12] = 0xc0; /* a compressed question */
    cr_assert_eq(tt_dnsmsg_question(m, sizeof m, true, &q, &why), -EPROTO);
    cr_assert_not_null(why);
}

Test(dnsmsg, cache_ttl_is_the_smallest_or_the_soa_minimum)
{
    uint32_t ttl = 0;
    cr_assert_eq(tt_dnsmsg_cache_ttl(ANSWER, sizeof ANSWER, &ttl), 0);
    cr_assert_eq(ttl, 60);
    cr_assert_eq(tt_dnsmsg_cache_ttl(NXDOMAIN, sizeof NXDOMAIN, &ttl), 0);
    cr_assert_eq(ttl, 30);
    uint8_t m[sizeof NXDOMAIN];
    memcpy(m, NXDOMAIN, sizeof m);
    m[3] = 0x82; /* SERVFAIL */
    cr_assert_eq(tt_dnsmsg_cache_ttl(m, sizeof m, &ttl), -1);
    memcpy(m, NXDOMAIN, sizeof m);
    m[9] = 0; /* no SOA: nothing says how long */
    cr_assert_eq(tt_dnsmsg_cache_ttl(m, 12 + 21, &ttl), -1);
    uint8_t a[sizeof ANSWER];
    memcpy(a, ANSWER, sizeof a);
    a[2] |= 0x02; /* TC */
    cr_assert_eq(tt_dnsmsg_cache_ttl(a, sizeof a, &ttl), -1);
    for (size_t n = 0; n < sizeof ANSWER; n++)
        cr_assert_eq(tt_dnsmsg_cache_ttl(ANSWER, n, &ttl), -1, "cut at %zu", n);
}

Test(dnsmsg, age_lowers_every_ttl_down_to_zero)
{
    uint8_t a[sizeof ANSWER];
    memcpy(a, ANSWER, sizeof a);
    cr_assert_eq(tt_dnsmsg_age(a, sizeof a, 100), 0);
    uint32_t ttl;
    cr_assert_eq(tt_dnsmsg_cache_ttl(a, sizeof a, &ttl), 0);
    cr_assert_eq(ttl, 0);
    /* The CNAME's 300 became 200, the A's 60 became 0. */
    cr_assert_eq(a[33 + 6] << 24 | a[33 + 7] << 16 | a[33 + 8] << 8 | a[33 + 9], 200);
    cr_assert_eq(a[47 + 9], 0);
}

Test(dnsmsg, reply_empty_makes_servfail_and_tc)
{
    uint8_t m[sizeof QUERY];
    memcpy(m, QUERY, sizeof m);
    size_t n = tt_dnsmsg_reply_empty(m, 33, TT_DNS_RCODE_SERVFAIL, false);
    cr_assert_eq(n, 33);
    static const uint8_t hdr[] = {0xab, 0xcd, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0};
    cr_assert_arr_eq(m, hdr, 12);
    memcpy(m, QUERY, sizeof m);
    tt_dnsmsg_reply_empty(m, 33, TT_DNS_RCODE_NOERROR, true);
    cr_assert_eq(m[2], 0x83);
    cr_assert_eq(m[3], 0x80);
}

Test(dnscache, hit_rewrites_the_id_and_ages_then_expires)
{
    tt_dnscache *c = tt_dnscache_new();
    tt_dnsmsg_q q;
    const char *why = NULL;
    cr_assert_eq(tt_dnsmsg_question(QUERY, sizeof QUERY, true, &q, &why), 0);
    cr_assert(tt_dnscache_put(c, q.key, q.key_len, ANSWER, sizeof ANSWER, 1000));
    uint8_t out[512];
    cr_assert_eq(tt_dnscache_get(c, q.key, q.key_len, 0x0102, out, sizeof out, 1000),
                 0 + sizeof ANSWER);
    cr_assert_eq(out[0], 0x01);
    cr_assert_eq(out[1], 0x02);
    cr_assert_arr_eq(out + 2, ANSWER + 2, sizeof ANSWER - 2);
    /* 20.5 s later: TTLs lowered by 20. */
    cr_assert_eq(tt_dnscache_get(c, q.key, q.key_len, 7, out, sizeof out, 21500), sizeof ANSWER);
    cr_assert_eq(out[47 + 9], 40);
    /* Too small a buffer: a miss, the entry stays. */
    cr_assert_eq(tt_dnscache_get(c, q.key, q.key_len, 7, out, 10, 21500), 0);
    /* At 60 s the answer is gone. */
    cr_assert_eq(tt_dnscache_get(c, q.key, q.key_len, 7, out, sizeof out, 61000), 0);
    cr_assert_eq(tt_dnscache_count(c), 0);
    /* What may not be cached is not. */
    uint8_t a[sizeof ANSWER];
    memcpy(a, ANSWER, sizeof a);
    a[3] = 0x82;
    cr_assert_not(tt_dnscache_put(c, q.key, q.key_len, a, sizeof a, 0));
    tt_dnscache_free(c);
}

Test(dnscache, bounded_with_the_least_recently_used_evicted)
{
    tt_dnscache *c = tt_dnscache_new();
    uint8_t key[8] = {5, 'n', 'a', 'm', 'e', 0, 0, 1};
    uint8_t out[512];
    for (unsigned i = 0; i < TT_DNSCACHE_MAX + 10; i++) {
        key[5] = (uint8_t)i;
        key[6] = (uint8_t)(i >> 8);
        cr_assert(tt_dnscache_put(c, key, sizeof key, ANSWER, sizeof ANSWER, 0));
        if (i == TT_DNSCACHE_MAX - 1) {
            /* Key 0 used again: the first key evicted will be 1. */
            key[5] = 0;
            key[6] = 0;
            cr_assert_gt(tt_dnscache_get(c, key, sizeof key, 1, out, sizeof out, 0), 0);
        }
    }
    cr_assert_eq(tt_dnscache_count(c), TT_DNSCACHE_MAX);
    key[5] = 0;
    key[6] = 0;
    cr_assert_gt(tt_dnscache_get(c, key, sizeof key, 1, out, sizeof out, 0), 0);
    key[5] = 1;
    cr_assert_eq(tt_dnscache_get(c, key, sizeof key, 1, out, sizeof out, 0), 0);
    tt_dnscache_free(c);
}
