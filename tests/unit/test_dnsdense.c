/* Tests of the dense spellings of query names (codec/dnstun.h): base64 and
 * base128 names round-trip at every payload length within the 63-byte
 * label and 255-byte name limits, each carries more than base32, a name
 * whose case or 8-bit bytes changed on the way fails its check, and the
 * probe's echo tells the client which spelling the path carried. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "codec/dnstun.h"

static tt_dnstun_zone zone(const char *domain)
{
    tt_dnstun_zone z;
    const char *why = NULL;
    cr_assert_eq(tt_dnstun_zone_init(&z, domain, NULL, 7, &why), 0, "%s", why);
    return z;
}

/* The wire length of the query name in Q (from offset 12), read by the
 * general name parser, which refuses labels over 63 octets and names over
 * 255. */
static size_t name_len(const uint8_t *q)
{
    uint8_t name[TT_DNS_NAME_MAX];
    size_t n = 0, next;
    const char *why = NULL;
    cr_assert_eq(
        tt_dns_name_read(q, TT_DNSTUN_QUERY_MAX, 12, TT_DNSTUN_QUERY_MAX, name, &n, &next, &why), 0,
        "%s", why);
    cr_assert_eq(next - 12, n);
    return n;
}

Test(dnsdense, every_spelling_round_trips_at_every_length_within_the_limits)
{
    static const char *const domains[] = {"t.ex", "t.example.com", "a",
                                          "tunnel.some-longer-domain.example.org"};
    for (size_t d = 0; d < sizeof domains / sizeof domains[0]; d++) {
        tt_dnstun_zone z = zone(domains[d]);
        size_t prev = 0;
        for (unsigned enc = TT_DNSTUN_ENC_B32; enc <= TT_DNSTUN_ENC_B128; enc++) {
            size_t cap = tt_dnstun_query_capacity_enc(&z, enc);
            cr_assert_gt(cap, prev, "%s: spelling %u carries %zu", domains[d], enc, cap);
            prev = cap;
            uint8_t payload[TT_DNSTUN_QUERY_PAYLOAD_MAX];
            for (size_t i = 0; i < sizeof payload; i++)
                payload[i] = (uint8_t)(i * 37 + enc);
            uint8_t q[TT_DNSTUN_QUERY_MAX], out[TT_DNSTUN_MSG_MAX];
            for (size_t len = 0; len <= cap; len++) {
                size_t n = tt_dnstun_query_encode_enc(&z, enc, 0x4242, TT_DNSTUN_TYPE_NULL,
                                                      0xA1B2C3D4, (uint32_t)len, payload, len, q);
                cr_assert_gt(n, 0);
                cr_assert_leq(name_len(q), 255);
                tt_dnstun_req r;
                tt_dnstun_serve(&z, q, n, &r, out);
                cr_assert_eq(r.kind, TT_DNSTUN_DATA, "%s enc %u len %zu: %s", domains[d], enc, len,
                             r.why);
                cr_assert_eq(r.enc, enc);
                cr_assert_eq(r.client, 0xA1B2C3D4);
                cr_assert_eq(r.nonce, (uint32_t)len);
                cr_assert_eq(r.len, len);
                cr_assert_arr_eq(r.payload, payload, len);
            }
            cr_assert_eq(tt_dnstun_query_encode_enc(&z, enc, 1, TT_DNSTUN_TYPE_TXT, 1, 2, payload,
                                                    cap + 1, q),
                         0);
        }
        /* The densest fills the name: one more byte would pass 255. */
        uint8_t q[TT_DNSTUN_QUERY_MAX], payload[TT_DNSTUN_QUERY_PAYLOAD_MAX] = {0};
        size_t cap = tt_dnstun_query_capacity_enc(&z, TT_DNSTUN_ENC_B128);
        tt_dnstun_query_encode_enc(&z, TT_DNSTUN_ENC_B128, 1, TT_DNSTUN_TYPE_TXT, 1, 2, payload,
                                   cap, q);
        cr_assert_geq(name_len(q), 248, "%s", domains[d]);
    }
    cr_assert_eq(tt_dnstun_query_capacity_enc(&(tt_dnstun_zone){0}, 3), 0);
}

Test(dnsdense, dense_names_carry_what_the_benchmark_domain_needs)
{
    /* t.example.com: base32 139 bytes, base64 166, base128 195 (iodine's
     * Base128 carries 179 under a domain of this length). */
    tt_dnstun_zone z = zone("t.example.com");
    cr_expect_eq(tt_dnstun_query_capacity_enc(&z, TT_DNSTUN_ENC_B32), 139);
    cr_expect_eq(tt_dnstun_query_capacity_enc(&z, TT_DNSTUN_ENC_B64), 166);
    cr_expect_eq(tt_dnstun_query_capacity_enc(&z, TT_DNSTUN_ENC_B128), 195);
}

/* A dense query for 40 bytes under t.ex, flipped per MODE at the first
 * letter of its data: the server refuses it as a name it does not have. */
static void expect_refused(unsigned enc, int mode)
{
    tt_dnstun_zone z = zone("t.ex");
    uint8_t payload[40], q[TT_DNSTUN_QUERY_MAX], out[TT_DNSTUN_MSG_MAX];
    memset(payload, 0x5A, sizeof payload);
    size_t n = tt_dnstun_query_encode_enc(&z, enc, 7, TT_DNSTUN_TYPE_TXT, 9, 10, payload,
                                          sizeof payload, q);
    size_t i = 14; /* after the length byte and the marker */
    if (mode == 0) {
        /* What a resolver's 0x20 does to one letter. */
        while (!((q[i] | 0x20) >= 'a' && (q[i] | 0x20) <= 'z'))
            i++;
        q[i] ^= 0x20;
    } else {
        /* A resolver that strips the eighth bit. */
        while (q[i] < 0xC0)
            i++;
        q[i] &= 0x7F;
    }
    tt_dnstun_req r;
    tt_dnstun_serve(&z, q, n, &r, out);
    cr_assert_eq(r.kind, TT_DNSTUN_REPLY);
    cr_assert_eq(out[3] & 0x0F, 3, "NXDOMAIN");
    cr_assert_not_null(r.why);
}

Test(dnsdense, a_case_flipped_or_stripped_dense_name_is_detected)
{
    expect_refused(TT_DNSTUN_ENC_B64, 0);
    expect_refused(TT_DNSTUN_ENC_B128, 0);
    expect_refused(TT_DNSTUN_ENC_B128, 1);
}

/* Sends the probe through a path that applies MANGLE to its name, and
 * returns the spelling the client concludes. */
static unsigned probe_through(void (*mangle)(uint8_t *name, size_t len))
{
    tt_dnstun_zone z = zone("t.example.com");
    uint8_t q[TT_DNSTUN_QUERY_MAX], seen[TT_DNSTUN_QUERY_MAX], out[TT_DNSTUN_MSG_MAX];
    size_t n = tt_dnstun_probe_encode(&z, 0x99, TT_DNSTUN_TYPE_TXT, 5, q);
    cr_assert_gt(n, 0);
    cr_assert_leq(name_len(q), 255);
    memcpy(seen, q, n);
    if (mangle)
        mangle(seen + 12, name_len(q));
    tt_dnstun_req r;
    size_t m = tt_dnstun_serve(&z, seen, n, &r, out);
    cr_assert_eq(r.kind, TT_DNSTUN_REPLY);
    cr_assert_str_eq(r.why, "a probe");
    /* The resolver restores the case it changed before answering. */
    memcpy(out + 12, q + 12, name_len(q));
    uint8_t got[TT_DNSTUN_MSG_MAX];
    size_t glen, off = 0, elen;
    const uint8_t *echo;
    cr_assert_eq(tt_dnstun_answer_decode(out, m, q, n, got, &glen, NULL), 0);
    cr_assert_eq(tt_dnstun_unpack(got, glen, &off, &echo, &elen), 1);
    return tt_dnstun_probe_result(q, n, echo, elen);
}

static void flip_case(uint8_t *name, size_t len)
{
    for (size_t i = 0; i < len; i += 3)
        if ((name[i] | 0x20) >= 'a' && (name[i] | 0x20) <= 'z')
            name[i] ^= 0x20;
}

static void strip_8bit(uint8_t *name, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (name[i] >= 0xC0)
            name[i] = '-';
}

Test(dnsdense, the_probe_echo_chooses_the_densest_spelling_the_path_kept)
{
    cr_assert_eq(probe_through(NULL), TT_DNSTUN_ENC_B128);
    cr_assert_eq(probe_through(strip_8bit), TT_DNSTUN_ENC_B64);
    cr_assert_eq(probe_through(flip_case), TT_DNSTUN_ENC_B32);
    /* An echo that is not this probe's says nothing. */
    tt_dnstun_zone z = zone("t.ex");
    uint8_t q[TT_DNSTUN_QUERY_MAX];
    size_t n = tt_dnstun_probe_encode(&z, 1, TT_DNSTUN_TYPE_TXT, 5, q);
    cr_assert_eq(tt_dnstun_probe_result(q, n, q + 12, 3), TT_DNSTUN_ENC_B32);
    /* No room for the probe under a long domain: base32 only. */
    char longd[120];
    memset(longd, 'a', sizeof longd);
    longd[60] = '.';
    longd[119] = '\0';
    tt_dnstun_zone lz = zone(longd);
    cr_assert_eq(tt_dnstun_probe_encode(&lz, 1, TT_DNSTUN_TYPE_TXT, 5, q), 0);
}
