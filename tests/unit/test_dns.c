/* Tests of the DNS codec: golden query bytes, and answers built by hand with
 * a small message writer (compression pointers written explicitly). */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "codec/dns.h"

#define ID 0x1234

typedef struct msg {
    uint8_t b[4096];
    size_t n;
} msg;

static void u8(msg *m, unsigned v)
{
    cr_assert_lt(m->n, sizeof m->b);
    m->b[m->n++] = (uint8_t)v;
}

static void u16(msg *m, unsigned v)
{
    u8(m, v >> 8);
    u8(m, v & 0xFF);
}

static void u32(msg *m, uint32_t v)
{
    u16(m, v >> 16);
    u16(m, v & 0xFFFF);
}

static void bytes(msg *m, const void *p, size_t n)
{
    cr_assert_leq(m->n + n, sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

/* Writes the labels of TEXT ("a.b") and, unless PTR is nonzero, the final
 * zero; with PTR a compression pointer to offset PTR ends the name. Returns
 * the name's offset. */
static size_t name_ptr(msg *m, const char *text, unsigned ptr)
{
    size_t at = m->n;
    while (*text) {
        const char *dot = strchr(text, '.');
        size_t len = dot ? (size_t)(dot - text) : strlen(text);
        u8(m, (unsigned)len);
        bytes(m, text, len);
        text += len;
        if (*text == '.')
            text++;
    }
    if (ptr)
        u16(m, 0xC000 | ptr);
    else
        u8(m, 0);
    return at;
}

static size_t name(msg *m, const char *text)
{
    return name_ptr(m, text, 0);
}

static void header(msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns,
                   unsigned ar)
{
    m->n = 0;
    u16(m, id);
    u16(m, flags);
    u16(m, qd);
    u16(m, an);
    u16(m, ns);
    u16(m, ar);
}

/* Header (a NOERROR answer with RD and RA set) and the question QNAME/QTYPE;
 * the question's name sits at offset 12. */
static void start(msg *m, unsigned an, const char *qname, unsigned qtype)
{
    header(m, ID, 0x8180, 1, an, 0, 0);
    name(m, qname);
    u16(m, qtype);
    u16(m, TT_DNS_CLASS_IN);
}

/* The fixed part of a record after its owner name. */
static void rr_head(msg *m, unsigned type, uint32_t ttl, unsigned rdlen)
{
    u16(m, type);
    u16(m, TT_DNS_CLASS_IN);
    u32(m, ttl);
    u16(m, rdlen);
}

static void rr_a(msg *m, uint32_t ttl, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    rr_head(m, TT_DNS_TYPE_A, ttl, 4);
    u8(m, a);
    u8(m, b);
    u8(m, c);
    u8(m, d);
}

static int parse(const msg *m, const char *qname, unsigned qtype, tt_dns_answer *a,
                 const char **why)
{
    *why = NULL;
    return tt_dns_response_parse(m->b, m->n, ID, qname, (uint16_t)qtype, a, why);
}

static void assert_v4(const tt_dns_addr *a, uint8_t x, uint8_t y, uint8_t z, uint8_t w)
{
    uint8_t want[4] = {x, y, z, w};
    cr_assert_eq(a->family, AF_INET);
    cr_assert_arr_eq(a->addr, want, 4);
}

/* Encoding. */

Test(dns, golden_query_a_with_edns)
{
    uint8_t out[TT_DNS_QUERY_MAX];
    size_t n = tt_dns_query_encode(0xBEEF, "svc.Test", TT_DNS_TYPE_A, true, out);
    static const uint8_t want[] = {
        0xBE, 0xEF, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* header */
        3,    's',  'v',  'c',  4,    'T',  'e',  's',  't',  0,                /* name */
        0x00, 0x01, 0x00, 0x01,                                                 /* A IN */
        0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       /* OPT */
    };
    cr_assert_eq(n, sizeof want);
    cr_assert_arr_eq(out, want, sizeof want);
}

Test(dns, golden_query_aaaa_plain)
{
    uint8_t out[TT_DNS_QUERY_MAX];
    size_t n = tt_dns_query_encode(0x0001, "a.b.", TT_DNS_TYPE_AAAA, false, out);
    static const uint8_t want[] = {
        0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 1,    'a',  1,    'b',  0,    0x00, 0x1C, 0x00, 0x01,
    };
    cr_assert_eq(n, sizeof want);
    cr_assert_arr_eq(out, want, sizeof want);
}

Test(dns, query_refuses_other_types)
{
    uint8_t out[TT_DNS_QUERY_MAX];
    cr_assert_eq(tt_dns_query_encode(1, "a.b", TT_DNS_TYPE_CNAME, false, out), 0);
}

Test(dns, name_limits)
{
    uint8_t out[TT_DNS_NAME_MAX];
    cr_assert_eq(tt_dns_name_encode("", out), 0);
    cr_assert_eq(tt_dns_name_encode(".", out), 0);
    cr_assert_eq(tt_dns_name_encode("a..b", out), 0);
    cr_assert_eq(tt_dns_name_encode(".a", out), 0);
    cr_assert_eq(tt_dns_name_encode("a..", out), 0);
    cr_assert_eq(tt_dns_name_encode("a", out), 3);

    char label[70];
    memset(label, 'x', 63);
    label[63] = '\0';
    cr_assert_eq(tt_dns_name_encode(label, out), 65);
    label[63] = 'x';
    label[64] = '\0';
    cr_assert_eq(tt_dns_name_encode(label, out), 0);

    /* 253 characters is the longest text name: 255 bytes in wire form. */
    char longest[260];
    size_t o = 0;
    while (o < 253) {
        size_t take = 253 - o < 63 ? 253 - o : 63;
        memset(longest + o, 'y', take);
        o += take;
        if (o < 253) {
            longest[o - 1] = '.';
        }
    }
    longest[253] = '\0';
    cr_assert_eq(strlen(longest), 253);
    cr_assert_eq(tt_dns_name_encode(longest, out), 255);
    longest[253] = 'z';
    longest[254] = '\0';
    cr_assert_eq(tt_dns_name_encode(longest, out), 0);
}

/* Answers. */

Test(dns, a_records)
{
    msg m;
    start(&m, 2, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_a(&m, 300, 127, 0, 0, 1);
    name_ptr(&m, "", 12);
    rr_a(&m, 60, 10, 1, 2, 3);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.rcode, 0);
    cr_assert_not(a.truncated);
    cr_assert_eq(a.naddrs, 2);
    cr_assert_eq(a.cnames, 0);
    cr_assert_eq(a.min_ttl, 60);
    assert_v4(&a.addrs[0], 127, 0, 0, 1);
    assert_v4(&a.addrs[1], 10, 1, 2, 3);
}

Test(dns, aaaa_record)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_AAAA);
    name_ptr(&m, "", 12);
    rr_head(&m, TT_DNS_TYPE_AAAA, 10, 16);
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    bytes(&m, v6, 16);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test.", TT_DNS_TYPE_AAAA, &a, &why), 0, "%s", why);
    cr_assert_eq(a.naddrs, 1);
    cr_assert_eq(a.addrs[0].family, AF_INET6);
    cr_assert_arr_eq(a.addrs[0].addr, v6, 16);
}

Test(dns, question_compared_without_case)
{
    msg m;
    start(&m, 1, "SvC.TEST", TT_DNS_TYPE_A);
    name(&m, "svc.Test");
    rr_a(&m, 5, 1, 2, 3, 4);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "Svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.naddrs, 1);
}

Test(dns, other_records_ignored)
{
    msg m;
    start(&m, 4, "svc.test", TT_DNS_TYPE_A);
    name(&m, "other.test"); /* another name */
    rr_a(&m, 5, 9, 9, 9, 9);
    name_ptr(&m, "", 12); /* another class */
    u16(&m, TT_DNS_TYPE_A);
    u16(&m, 3);
    u32(&m, 5);
    u16(&m, 4);
    u32(&m, 0x08080808);
    name_ptr(&m, "", 12); /* another type: a TXT record */
    rr_head(&m, 16, 5, 3);
    bytes(&m, "\x02hi", 3);
    name_ptr(&m, "", 12);
    rr_a(&m, 5, 1, 2, 3, 4);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.naddrs, 1);
    assert_v4(&a.addrs[0], 1, 2, 3, 4);
}

/* svc.test CNAME a.test CNAME b.test A 1.2.3.4, compressed throughout. */
static void cname_chain(msg *m, bool shuffled)
{
    start(m, 3, "svc.test", TT_DNS_TYPE_A);
    if (shuffled) {
        /* The address first, the links after it: order does not matter. */
        size_t b = name_ptr(m, "b", 16); /* "test" of the question */
        rr_a(m, 30, 1, 2, 3, 4);
        name_ptr(m, "", 12);
        rr_head(m, TT_DNS_TYPE_CNAME, 100, 4);
        name_ptr(m, "a", (unsigned)b + 2);
        size_t a = m->n - 4;
        name_ptr(m, "", (unsigned)a);
        rr_head(m, TT_DNS_TYPE_CNAME, 20, 2);
        name_ptr(m, "", (unsigned)b);
    } else {
        name_ptr(m, "", 12);
        rr_head(m, TT_DNS_TYPE_CNAME, 100, 4);
        size_t a = name_ptr(m, "a", 16);
        name_ptr(m, "", (unsigned)a);
        rr_head(m, TT_DNS_TYPE_CNAME, 20, 4);
        size_t b = name_ptr(m, "b", 16);
        name_ptr(m, "", (unsigned)b);
        rr_a(m, 30, 1, 2, 3, 4);
    }
}

Test(dns, cname_chain)
{
    for (int shuffled = 0; shuffled < 2; shuffled++) {
        msg m;
        cname_chain(&m, shuffled);
        tt_dns_answer a;
        const char *why;
        cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%d: %s", shuffled, why);
        cr_assert_eq(a.cnames, 2);
        cr_assert_eq(a.naddrs, 1);
        cr_assert_eq(a.min_ttl, 20);
        assert_v4(&a.addrs[0], 1, 2, 3, 4);
    }
}

Test(dns, cname_without_address_is_nodata)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_head(&m, TT_DNS_TYPE_CNAME, 100, 9);
    name(&m, "x.other");
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.cnames, 1);
    cr_assert_eq(a.naddrs, 0);
}

/* A chain of LINKS CNAMEs n0 -> n1 -> ... -> nLINKS, then an A record for
 * the last name (or for n0 again with LOOP). */
static void long_chain(msg *m, unsigned links, bool loop)
{
    start(m, links + (loop ? 0 : 1), "n0.test", TT_DNS_TYPE_A);
    for (unsigned i = 0; i < links; i++) {
        char from[16], to[16];
        snprintf(from, sizeof from, "n%u", i);
        snprintf(to, sizeof to, "n%u", loop && i + 1 == links ? 0 : i + 1);
        name_ptr(m, from, 15);
        rr_head(m, TT_DNS_TYPE_CNAME, 60, (unsigned)strlen(to) + 3);
        name_ptr(m, to, 15);
    }
    if (!loop) {
        char last[16];
        snprintf(last, sizeof last, "n%u", links);
        name_ptr(m, last, 15);
        rr_a(m, 60, 10, 0, 0, (uint8_t)links);
    }
}

Test(dns, cname_chain_bounded)
{
    msg m;
    tt_dns_answer a;
    const char *why;
    long_chain(&m, TT_DNS_MAX_CNAMES, false);
    cr_assert_eq(parse(&m, "n0.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.cnames, TT_DNS_MAX_CNAMES);
    cr_assert_eq(a.naddrs, 1);
    assert_v4(&a.addrs[0], 10, 0, 0, TT_DNS_MAX_CNAMES);

    long_chain(&m, TT_DNS_MAX_CNAMES + 1, false);
    cr_assert_eq(parse(&m, "n0.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
    cr_assert_str_eq(why, "CNAME chain too long");
}

Test(dns, cname_loop)
{
    msg m;
    tt_dns_answer a;
    const char *why;
    long_chain(&m, 2, true);
    cr_assert_eq(parse(&m, "n0.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
    long_chain(&m, 1, true); /* n0 CNAME n0 */
    cr_assert_eq(parse(&m, "n0.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
}

Test(dns, two_cnames_for_one_name)
{
    msg m;
    start(&m, 2, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_head(&m, TT_DNS_TYPE_CNAME, 1, 2);
    u16(&m, 0xC000 | 16);
    name_ptr(&m, "", 12);
    rr_head(&m, TT_DNS_TYPE_CNAME, 1, 2);
    u16(&m, 0xC000 | 16);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
}

Test(dns, cname_data_must_be_exactly_its_name)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_head(&m, TT_DNS_TYPE_CNAME, 1, 3);
    u16(&m, 0xC000 | 16);
    u8(&m, 0); /* a stray byte inside the record data */
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);

    /* A name that runs past the data's end into the next bytes. */
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_head(&m, TT_DNS_TYPE_CNAME, 1, 2);
    name(&m, "abc");
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
}

Test(dns, at_most_max_addresses)
{
    msg m;
    start(&m, TT_DNS_MAX_ADDRS + 5, "svc.test", TT_DNS_TYPE_A);
    for (unsigned i = 0; i < TT_DNS_MAX_ADDRS + 5; i++) {
        name_ptr(&m, "", 12);
        rr_a(&m, 60, 10, 0, 0, (uint8_t)i);
    }
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.naddrs, TT_DNS_MAX_ADDRS);
    assert_v4(&a.addrs[TT_DNS_MAX_ADDRS - 1], 10, 0, 0, TT_DNS_MAX_ADDRS - 1);
}

Test(dns, address_of_wrong_length)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_head(&m, TT_DNS_TYPE_A, 1, 5);
    bytes(&m, "\1\2\3\4\5", 5);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
}

Test(dns, ttl_with_top_bit_is_zero)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_a(&m, 0x80000001u, 1, 2, 3, 4);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.min_ttl, 0);
}

Test(dns, error_codes)
{
    static const unsigned codes[] = {TT_DNS_RCODE_NXDOMAIN, TT_DNS_RCODE_SERVFAIL,
                                     TT_DNS_RCODE_REFUSED, TT_DNS_RCODE_FORMERR};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        msg m;
        start(&m, 1, "svc.test", TT_DNS_TYPE_A);
        m.b[3] = (uint8_t)(0x80 | codes[i]);
        /* An address beside an error code is not taken. */
        name_ptr(&m, "", 12);
        rr_a(&m, 60, 1, 2, 3, 4);
        tt_dns_answer a;
        const char *why;
        cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
        cr_assert_eq(a.rcode, codes[i]);
        cr_assert_eq(a.naddrs, 0);
    }
}

Test(dns, nxdomain_with_soa)
{
    msg m;
    header(&m, ID, 0x8183, 1, 0, 1, 0);
    name(&m, "nx.test");
    u16(&m, TT_DNS_TYPE_A);
    u16(&m, 1);
    name_ptr(&m, "", 15); /* "test" */
    rr_head(&m, 6, 3600, 22);
    u16(&m, 0xC000 | 15);
    u16(&m, 0xC000 | 15);
    u32(&m, 1);
    u32(&m, 2);
    u32(&m, 3);
    u32(&m, 4);
    u32(&m, 5);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "nx.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.rcode, TT_DNS_RCODE_NXDOMAIN);
    cr_assert_eq(a.naddrs, 0);
}

Test(dns, extended_rcode_from_opt)
{
    msg m;
    header(&m, ID, 0x8180, 1, 0, 0, 1);
    name(&m, "svc.test");
    u16(&m, TT_DNS_TYPE_A);
    u16(&m, 1);
    u8(&m, 0);
    u16(&m, TT_DNS_TYPE_OPT);
    u16(&m, 1232);
    u32(&m, 0x01000000); /* extended RCODE 1: BADVERS (16) */
    u16(&m, 0);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.rcode, 16);
}

Test(dns, misplaced_opt)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    u8(&m, 0);
    rr_head(&m, TT_DNS_TYPE_OPT, 0, 0);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);

    /* Two OPT records. */
    header(&m, ID, 0x8180, 1, 0, 0, 2);
    name(&m, "svc.test");
    u16(&m, TT_DNS_TYPE_A);
    u16(&m, 1);
    for (int i = 0; i < 2; i++) {
        u8(&m, 0);
        rr_head(&m, TT_DNS_TYPE_OPT, 0, 0);
    }
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
}

Test(dns, truncated_answer)
{
    msg m;
    start(&m, 7, "svc.test", TT_DNS_TYPE_A);
    m.b[2] |= 0x02; /* TC */
    /* The rest may be cut anywhere, even inside a record. */
    name_ptr(&m, "", 12);
    u16(&m, TT_DNS_TYPE_A);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert(a.truncated);
    cr_assert_eq(a.naddrs, 0);
}

Test(dns, not_our_answer)
{
    msg m;
    tt_dns_answer a;
    const char *why;

    start(&m, 0, "svc.test", TT_DNS_TYPE_A);
    cr_assert_eq(tt_dns_response_parse(m.b, m.n, ID + 1, "svc.test", TT_DNS_TYPE_A, &a, &why),
                 -EINVAL);
    cr_assert_str_eq(why, "answer id does not match the query");

    m.b[2] &= 0x7F; /* a query, not a response */
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EINVAL);

    start(&m, 0, "svc.test", TT_DNS_TYPE_A);
    m.b[2] |= 0x10; /* opcode 2: STATUS */
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EINVAL);

    start(&m, 0, "svc.test", TT_DNS_TYPE_A);
    cr_assert_eq(parse(&m, "svc.tes", TT_DNS_TYPE_A, &a, &why), -EINVAL);
    cr_assert_eq(parse(&m, "svc.test.x", TT_DNS_TYPE_A, &a, &why), -EINVAL);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_AAAA, &a, &why), -EINVAL);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_CNAME, &a, &why), -EINVAL);

    start(&m, 0, "svc.test", TT_DNS_TYPE_A);
    m.b[m.n - 1] = 3; /* class CH */
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EINVAL);

    start(&m, 0, "svc.test", TT_DNS_TYPE_A);
    m.b[5] = 0; /* no question */
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EINVAL);
    m.b[5] = 2; /* two */
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EINVAL);
}

Test(dns, trailing_bytes_ignored)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_a(&m, 5, 1, 2, 3, 4);
    bytes(&m, "junk", 4);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.naddrs, 1);
}

/* Every prefix of a valid answer is refused, and nothing reads past it
 * (each prefix sits in a heap block of its exact size for ASan). */
Test(dns, truncated_at_every_length)
{
    msg m;
    header(&m, ID, 0x8180, 1, 3, 1, 1);
    cname_chain(&m, false);
    m.b[7] = 3;
    m.b[9] = 1;
    m.b[11] = 1;
    name_ptr(&m, "", 16);
    rr_head(&m, 2, 60, 2);
    u16(&m, 0xC000 | 12);
    u8(&m, 0);
    rr_head(&m, TT_DNS_TYPE_OPT, 0, 4);
    bytes(&m, "\0\0\0\0", 4);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.naddrs, 1);
    for (size_t len = 0; len < m.n; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, m.b, len);
        int rc = tt_dns_response_parse(copy, len, ID, "svc.test", TT_DNS_TYPE_A, &a, &why);
        free(copy);
        cr_assert(rc == -EPROTO, "length %zu: %d", len, rc);
        cr_assert_not_null(why);
    }
}

Test(dns, compression_pointer_loops)
{
    msg m;
    tt_dns_answer a;
    const char *why;

    /* An owner name that points at itself. */
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    size_t at = m.n;
    u16(&m, 0xC000 | (unsigned)at);
    rr_a(&m, 1, 1, 2, 3, 4);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
    cr_assert_str_eq(why, "compression pointer does not point backwards");

    /* A pointer forwards. */
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    at = m.n;
    u16(&m, 0xC000 | (unsigned)(at + 2));
    rr_a(&m, 1, 1, 2, 3, 4);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);

    /* A label, then a pointer back to that label: the classic loop. */
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    at = m.n;
    name_ptr(&m, "x", (unsigned)at);
    rr_a(&m, 1, 1, 2, 3, 4);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);

    /* Two pointers that point at each other, inside the data of a record
     * that is otherwise skipped, and an owner that points at the second. */
    start(&m, 2, "svc.test", TT_DNS_TYPE_A);
    name_ptr(&m, "", 12);
    rr_head(&m, 99, 1, 4);
    size_t x = m.n;
    u16(&m, 0xC000 | (unsigned)(x + 2));
    u16(&m, 0xC000 | (unsigned)x);
    u16(&m, 0xC000 | (unsigned)(x + 2));
    rr_a(&m, 1, 1, 2, 3, 4);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
    cr_assert_str_eq(why, "compression pointer does not point backwards");

    /* In the question, a pointer can only go into the header: here to a
     * byte that is itself a pointer to the first byte. */
    header(&m, ID, 0x8180, 1, 0, 0, 0);
    m.b[0] = 0xC0;
    m.b[1] = 0x00;
    u16(&m, 0xC000);
    u16(&m, TT_DNS_TYPE_A);
    u16(&m, 1);
    cr_assert_eq(tt_dns_response_parse(m.b, m.n, 0xC000, "svc.test", TT_DNS_TYPE_A, &a, &why),
                 -EPROTO);
}

/* A chain of N pointers, each to the one before, ending at a root name,
 * inside the data of a skipped record; the next record's owner points at
 * the last of them. */
static void pointer_chain(msg *m, unsigned n)
{
    start(m, 2, "svc.test", TT_DNS_TYPE_A);
    name_ptr(m, "", 12);
    rr_head(m, 99, 1, 1 + 2 * n);
    size_t root = m->n;
    u8(m, 0);
    for (unsigned i = 0; i < n; i++)
        u16(m, 0xC000 | (unsigned)(i == 0 ? root : root + 1 + 2 * (i - 1)));
    u16(m, 0xC000 | (unsigned)(m->n - 2));
    rr_a(m, 1, 1, 2, 3, 4);
}

Test(dns, pointer_chains_are_bounded)
{
    msg m;
    tt_dns_answer a;
    const char *why;
    /* Backwards all along, and within the bound: the owner is the root,
     * not our name, so the address is not taken. */
    pointer_chain(&m, 40);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), 0, "%s", why);
    cr_assert_eq(a.naddrs, 0);
    pointer_chain(&m, 100);
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
    cr_assert_str_eq(why, "too many compression pointers");
}

Test(dns, names_longer_than_255_through_pointers)
{
    /* A question of 127 one-byte labels is 255 bytes; one more label added
     * through a pointer makes the owner too long. */
    msg m;
    char q[300];
    size_t o = 0;
    for (int i = 0; i < 127; i++) {
        q[o++] = 'a';
        q[o++] = '.';
    }
    q[o - 1] = '\0';
    start(&m, 1, q, TT_DNS_TYPE_A);
    name_ptr(&m, "b", 12);
    rr_a(&m, 1, 1, 2, 3, 4);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, q, TT_DNS_TYPE_A, &a, &why), -EPROTO);
    cr_assert_str_eq(why, "name longer than 255 bytes");
}

Test(dns, extended_label_types_refused)
{
    msg m;
    start(&m, 1, "svc.test", TT_DNS_TYPE_A);
    u8(&m, 0x41); /* 01xxxxxx: extended label type */
    u8(&m, 0);
    rr_a(&m, 1, 1, 2, 3, 4);
    tt_dns_answer a;
    const char *why;
    cr_assert_eq(parse(&m, "svc.test", TT_DNS_TYPE_A, &a, &why), -EPROTO);
    cr_assert_str_eq(why, "unknown label type");
}
