/* Tests of the tunnel's DNS codec on golden messages written out byte by
 * byte here (the base32 text was made with Python's base64.b32encode, an
 * implementation independent of ours): the query a client writes, its
 * capacity per domain length, the server's decoding of it whatever the
 * letter case, the answers in TXT and NULL and the client's decoding of
 * them, the authoritative replies (SOA, NS, NODATA, NXDOMAIN, REFUSED,
 * FORMERR, NOTIMP, BADVERS, silence), and the refusal of malformed names
 * and answers. */
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

/* Client 0x01020304, nonce 0x05060708, payload "hi", zone t.ex, id 0x1234:
 * base32(01..08 'h' 'i') is "aebagbafaydqq2dj". */
static const uint8_t QUERY[] = {
    0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* header */
    16,   'a',  'e',  'b',  'a',  'g',  'b',  'a',  'f',  'a',  'y',  'd',
    'q',  'q',  '2',  'd',  'j',  1,    't',  2,    'e',  'x',  0,    /* name */
    0x00, 0x10, 0x00, 0x01,                                           /* TXT IN */
    0,    0x00, 0x29, 0x04, 0xd0, 0,    0,    0,    0,    0x00, 0x00, /* OPT 1232 */
};

/* The server's answer to it carrying the datagram "ok": AA, RD copied, one
 * TXT record (owner pointing at the question, TTL 0) of one string: the
 * two-byte length and "ok"; then the OPT. */
static const uint8_t ANSWER[] = {
    0x12, 0x34, 0x85, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, /* header */
    16,   'a',  'e',  'b',  'a',  'g',  'b',  'a',  'f',  'a',  'y',  'd',  'q',  'q',
    '2',  'd',  'j',  1,    't',  2,    'e',  'x',  0,    0x00, 0x10, 0x00, 0x01, /* question */
    0xc0, 12,   0x00, 0x10, 0x00, 0x01, 0,    0,    0,    0,    0x00, 0x05,       /* TXT, TTL 0 */
    4,    0,    2,    'o',  'k',                                                  /* one string */
    0,    0x00, 0x29, 0x04, 0xd0, 0,    0,    0,    0,    0x00, 0x00,             /* OPT */
};

Test(dnstun, query_is_base32_labels_under_the_domain_with_edns)
{
    tt_dnstun_zone z = zone("t.ex");
    uint8_t out[TT_DNSTUN_QUERY_MAX];
    size_t n = tt_dnstun_query_encode(&z, 0x1234, TT_DNSTUN_TYPE_TXT, 0x01020304, 0x05060708,
                                      (const uint8_t *)"hi", 2, out);
    cr_assert_eq(n, sizeof QUERY);
    cr_assert_arr_eq(out, QUERY, sizeof QUERY);
    cr_assert_eq(tt_dnstun_query_encode(&z, 1, 1 /* A */, 1, 1, NULL, 0, out), 0);
}

/* The name of the longest query for DOMAIN: length of its wire form. */
static size_t name_len(const uint8_t *q)
{
    size_t p = 12;
    while (q[p] != 0) {
        cr_assert_leq(q[p], 63);
        p += 1u + q[p];
    }
    return p + 1 - 12;
}

Test(dnstun, capacity_fills_the_name_to_255_bytes_and_no_further)
{
    static const struct {
        const char *domain;
        size_t cap;
    } cases[] = {
        /* 4 labels of 236 characters: 147 bytes, 8 of them head. */
        {"t.example.com", 139},
        {"a", 147},
        {"tunnel.some-longer-domain.example.org", 124},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tt_dnstun_zone z = zone(cases[i].domain);
        size_t cap = tt_dnstun_query_capacity(&z);
        cr_expect_eq(cap, cases[i].cap, "%s: %zu", cases[i].domain, cap);
        uint8_t payload[TT_DNSTUN_QUERY_PAYLOAD_MAX] = {0};
        uint8_t out[TT_DNSTUN_QUERY_MAX];
        size_t n = tt_dnstun_query_encode(&z, 1, TT_DNSTUN_TYPE_TXT, 1, 2, payload, cap, out);
        cr_assert_gt(n, 0);
        cr_assert_leq(name_len(out), 255);
        cr_assert_eq(tt_dnstun_query_encode(&z, 1, TT_DNSTUN_TYPE_TXT, 1, 2, payload, cap + 1, out),
                     0);
    }
    const char *why;
    tt_dnstun_zone z;
    char longname[240];
    memset(longname, 'a', sizeof longname);
    for (size_t i = 60; i < sizeof longname; i += 61)
        longname[i] = '.';
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(tt_dnstun_zone_init(&z, longname, NULL, 1, &why), -EINVAL);
}

Test(dnstun, server_decodes_a_query_whatever_the_letter_case)
{
    tt_dnstun_zone z = zone("T.ex");
    uint8_t q[sizeof QUERY];
    memcpy(q, QUERY, sizeof q);
    /* What a resolver's 0x20 does to the name. */
    for (size_t i = 13; i < 36; i += 2)
        if (q[i] >= 'a' && q[i] <= 'z')
            q[i] = (uint8_t)(q[i] - 32);
    tt_dnstun_req r;
    uint8_t out[TT_DNSTUN_MSG_MAX];
    cr_assert_eq(tt_dnstun_serve(&z, q, sizeof q, &r, out), 0);
    cr_assert_eq(r.kind, TT_DNSTUN_DATA, "%s", r.why);
    cr_assert_eq(r.client, 0x01020304);
    cr_assert_eq(r.nonce, 0x05060708);
    cr_assert_eq(r.len, 2);
    cr_assert_arr_eq(r.payload, "hi", 2);
    cr_assert(r.q.edns);
    cr_assert_eq(r.q.udp_max, 1232);
    cr_assert_eq(r.q.qtype, TT_DNSTUN_TYPE_TXT);
    /* The question is kept as it came, the key lowercased. */
    cr_assert_arr_eq(r.q.question, q + 12, r.q.qlen);
    cr_assert_arr_eq(r.q.key, QUERY + 12, r.q.key_len - 4);
}

Test(dnstun, answer_in_txt_golden_and_decoded_by_the_client)
{
    tt_dnstun_zone z = zone("t.ex");
    tt_dnstun_req r;
    uint8_t out[TT_DNSTUN_MSG_MAX];
    tt_dnstun_serve(&z, QUERY, sizeof QUERY, &r, out);
    cr_assert_eq(r.kind, TT_DNSTUN_DATA);
    uint8_t payload[16];
    size_t used = 0;
    cr_assert(tt_dnstun_pack(payload, sizeof payload, &used, (const uint8_t *)"ok", 2));
    size_t n = tt_dnstun_answer_encode(&r.q, payload, used, r.q.udp_max, out);
    cr_assert_eq(n, sizeof ANSWER);
    cr_assert_arr_eq(out, ANSWER, sizeof ANSWER);

    uint8_t got[TT_DNSTUN_MSG_MAX];
    size_t glen;
    const char *why = NULL;
    cr_assert_eq(
        tt_dnstun_answer_decode(ANSWER, sizeof ANSWER, QUERY, sizeof QUERY, got, &glen, &why), 0,
        "%s", why);
    size_t off = 0;
    const uint8_t *d;
    size_t dlen;
    cr_assert_eq(tt_dnstun_unpack(got, glen, &off, &d, &dlen), 1);
    cr_assert_eq(dlen, 2);
    cr_assert_arr_eq(d, "ok", 2);
    cr_assert_eq(tt_dnstun_unpack(got, glen, &off, &d, &dlen), 0);
}

Test(dnstun, long_payloads_in_txt_strings_of_255_and_in_null)
{
    tt_dnstun_zone z = zone("t.ex");
    uint8_t data[900];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    for (int null = 0; null < 2; null++) {
        uint16_t qtype = null ? TT_DNSTUN_TYPE_NULL : TT_DNSTUN_TYPE_TXT;
        uint8_t query[TT_DNSTUN_QUERY_MAX];
        size_t qlen = tt_dnstun_query_encode(&z, 9, qtype, 1, 2, NULL, 0, query);
        tt_dnstun_req r;
        uint8_t out[TT_DNSTUN_MSG_MAX];
        tt_dnstun_serve(&z, query, qlen, &r, out);
        cr_assert_eq(r.kind, TT_DNSTUN_DATA);
        cr_assert_eq(r.len, 0);
        uint8_t payload[TT_DNSTUN_MSG_MAX];
        size_t used = 0;
        cr_assert(tt_dnstun_pack(payload, sizeof payload, &used, data, sizeof data));
        size_t n = tt_dnstun_answer_encode(&r.q, payload, used, 1232, out);
        cr_assert_gt(n, 0);
        /* The record's data: 902 bytes, as 255+255+255+137 with 4 length
         * bytes in TXT, as they are in NULL. */
        size_t rr = 12 + qlen - 12 - 11;
        cr_assert_eq(out[rr + 10] << 8 | out[rr + 11], null ? 902 : 906);
        if (!null) {
            cr_assert_eq(out[rr + 12], 255);
            cr_assert_eq(out[rr + 12 + 256], 255);
            cr_assert_eq(out[rr + 12 + 512], 255);
            cr_assert_eq(out[rr + 12 + 768], 137);
        }
        uint8_t got[TT_DNSTUN_MSG_MAX];
        size_t glen;
        const char *why = NULL;
        cr_assert_eq(tt_dnstun_answer_decode(out, n, query, qlen, got, &glen, &why), 0, "%s", why);
        cr_assert_eq(glen, used);
        cr_assert_arr_eq(got, payload, used);
        /* An empty answer: one empty string, or no data at all. */
        n = tt_dnstun_answer_encode(&r.q, NULL, 0, 1232, out);
        cr_assert_eq(tt_dnstun_answer_decode(out, n, query, qlen, got, &glen, &why), 0, "%s", why);
        cr_assert_eq(glen, 0);
    }
}

Test(dnstun, answer_room_fits_1232_bytes_exactly)
{
    size_t room = tt_dnstun_answer_room_min();
    /* 1232 - header 12 - question 259 - record 12 - OPT 11 = 938 bytes of
     * TXT data: 934 bytes in 4 strings. */
    cr_assert_eq(room, 934);
    tt_dnstun_q q = {.qtype = TT_DNSTUN_TYPE_TXT, .edns = true, .qlen = TT_DNSTUN_QUESTION_MAX};
    uint8_t payload[TT_DNSTUN_MSG_MAX] = {0};
    uint8_t out[TT_DNSTUN_MSG_MAX];
    cr_assert_eq(tt_dnstun_answer_encode(&q, payload, room, 1232, out), 1232);
    cr_assert_eq(tt_dnstun_answer_encode(&q, payload, room + 1, 1232, out), 0);
    /* Without EDNS the asker takes 512 bytes. */
    q.edns = false;
    cr_assert_eq(tt_dnstun_answer_room(&q, 512), 512 - 12 - 259 - 12 - 1);
}

/* A query for NAME (dotted, written as is) of QTYPE and QCLASS, with an
 * OPT when EDNS. */
static size_t ask(uint8_t *q, const char *name, uint16_t qtype, uint16_t qclass, bool edns)
{
    static const uint8_t head[] = {0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(q, head, 12);
    q[11] = edns ? 1 : 0;
    size_t o = 12 + tt_dns_name_encode(name, q + 12);
    q[o++] = (uint8_t)(qtype >> 8);
    q[o++] = (uint8_t)qtype;
    q[o++] = (uint8_t)(qclass >> 8);
    q[o++] = (uint8_t)qclass;
    if (edns) {
        static const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
        memcpy(q + o, opt, sizeof opt);
        o += sizeof opt;
    }
    return o;
}

static unsigned rcode(const uint8_t *m)
{
    return m[3] & 0xFu;
}

Test(dnstun, soa_and_ns_at_the_apex_golden)
{
    tt_dnstun_zone z = zone("t.ex");
    uint8_t q[300], out[TT_DNSTUN_MSG_MAX];
    tt_dnstun_req r;
    size_t n = tt_dnstun_serve(&z, q, ask(q, "T.Ex", 6, 1, false), &r, out);
    static const uint8_t soa[] =
        {
            0xbe, 0xef, 0x85, 0x00, 0,   1,    0,    1,    0,   0,
            0,    0,                                                  /* AA RD, NOERROR, 1 answer */
            1,    'T',  2,    'E',  'x', 0,    0,    6,    0,   1,    /* question as asked */
            0xc0, 12,   0,    6,    0,   1,    0,    0,    1,   0x2c, /* SOA, TTL 300 */
            0,    38,   2,    'n',  's', 0xc0, 12,                    /* ns.<apex> */
            10,   'h',  'o',  's',  't', 'm',  'a',  's',  't', 'e',
            'r',  0xc0, 12, /* hostmaster */
            0,    0,    0,    7,    0,   0,    0x0e, 0x10, 0,   0,
            0x02, 0x58,                                  /* serial 7, 3600, 600 */
            0,    1,    0x51, 0x80, 0,   0,    0,    60, /* 86400, minimum 60 */
        };
    cr_assert_eq(r.kind, TT_DNSTUN_REPLY);
    cr_assert_eq(n, sizeof soa);
    cr_assert_arr_eq(out, soa, sizeof soa);

    n = tt_dnstun_serve(&z, q, ask(q, "t.ex", 2, 1, false), &r, out);
    static const uint8_t ns[] = {
        0xbe, 0xef, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0,    0,    1, 't', 2, 'e', 'x', 0,    0,  2,
        0,    1,    0xc0, 12,   0, 2, 0, 1, 0, 0, 0x0e, 0x10, 0, 5,   2, 'n', 's', 0xc0, 12,
    };
    cr_assert_eq(n, sizeof ns);
    cr_assert_arr_eq(out, ns, sizeof ns);
}

Test(dnstun, nodata_nxdomain_and_refused_as_an_authority_answers)
{
    tt_dnstun_zone z = zone("t.ex");
    uint8_t q[300], out[TT_DNSTUN_MSG_MAX];
    tt_dnstun_req r;
    size_t n;
    /* The apex and the nameserver exist: NODATA with the SOA. */
    n = tt_dnstun_serve(&z, q, ask(q, "t.ex", 1, 1, true), &r, out);
    cr_assert_eq(rcode(out), 0);
    cr_assert(out[2] & 0x04, "AA");
    cr_assert_eq(out[7], 0);
    cr_assert_eq(out[9], 1);
    cr_assert_eq(out[11], 1, "the OPT is answered");
    n = tt_dnstun_serve(&z, q, ask(q, "ns.t.ex", 1, 1, false), &r, out);
    cr_assert_eq(rcode(out), 0);
    cr_assert_eq(out[9], 1);
    /* Another name in the zone: NXDOMAIN, the SOA's owner pointing into the
     * question at the apex. */
    n = tt_dnstun_serve(&z, q, ask(q, "www.t.ex", 1, 1, false), &r, out);
    cr_assert_eq(rcode(out), 3);
    cr_assert(out[2] & 0x04, "AA");
    cr_assert_eq(out[9], 1);
    size_t qend = 12 + 10 + 4;
    cr_assert_eq(out[qend], 0xc0);
    cr_assert_eq(out[qend + 1], 12 + 4);
    /* A tunnel name asked for A exists (NODATA), a name that is not
     * base32 does not. */
    n = tt_dnstun_serve(&z, q, ask(q, "aebagbafaydqq2dj.t.ex", 1, 1, false), &r, out);
    cr_assert_eq(rcode(out), 0);
    cr_assert_eq(out[7], 0);
    cr_assert_eq(out[9], 1);
    n = tt_dnstun_serve(&z, q, ask(q, "www-1.t.ex", 16, 1, false), &r, out);
    cr_assert_eq(rcode(out), 3);
    cr_assert_str_eq(r.why, "a data label is not base32");
    /* Outside the zone, another class, a transfer: REFUSED, not AA. */
    n = tt_dnstun_serve(&z, q, ask(q, "example.com", 1, 1, false), &r, out);
    cr_assert_eq(n, 12 + 13 + 4);
    cr_assert_eq(rcode(out), 5);
    cr_assert_eq(out[2] & 0x04, 0);
    cr_assert_eq(tt_dnstun_serve(&z, q, ask(q, "xt.ex", 1, 1, false), &r, out), 12 + 7 + 4);
    cr_assert_eq(rcode(out), 5);
    tt_dnstun_serve(&z, q, ask(q, "t.ex", 6, 3 /* CH */, false), &r, out);
    cr_assert_eq(rcode(out), 5);
    tt_dnstun_serve(&z, q, ask(q, "t.ex", 252, 1, false), &r, out);
    cr_assert_eq(rcode(out), 5);
}

Test(dnstun, malformed_queries_get_formerr_notimp_badvers_or_silence)
{
    tt_dnstun_zone z = zone("t.ex");
    uint8_t q[300], out[TT_DNSTUN_MSG_MAX];
    tt_dnstun_req r;
    size_t len = ask(q, "t.ex", 6, 1, true);
    /* Shorter than a header, or a response: silence. */
    cr_assert_eq(tt_dnstun_serve(&z, q, 11, &r, out), 0);
    cr_assert_eq(r.kind, TT_DNSTUN_DROP);
    q[2] |= 0x80;
    cr_assert_eq(tt_dnstun_serve(&z, q, len, &r, out), 0);
    cr_assert_eq(r.kind, TT_DNSTUN_DROP);
    q[2] &= 0x7f;
    /* Cut inside the question: FORMERR of the header alone. */
    cr_assert_eq(tt_dnstun_serve(&z, q, 15, &r, out), 12);
    cr_assert_eq(r.kind, TT_DNSTUN_REPLY);
    cr_assert_eq(rcode(out), 1);
    cr_assert_eq(out[5], 0);
    /* Cut inside the OPT: FORMERR, no OPT. */
    cr_assert_eq(tt_dnstun_serve(&z, q, len - 3, &r, out), 12);
    cr_assert_eq(rcode(out), 1);
    cr_assert_eq(out[11], 0);
    /* Two questions. */
    q[5] = 2;
    tt_dnstun_serve(&z, q, len, &r, out);
    cr_assert_eq(rcode(out), 1);
    q[5] = 1;
    /* A compression loop in the question. */
    uint8_t loop[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    tt_dnstun_serve(&z, loop, sizeof loop, &r, out);
    cr_assert_eq(rcode(out), 1);
    /* A compression loop in an additional record's owner. */
    uint8_t q2[300];
    size_t l2 = ask(q2, "t.ex", 6, 1, true);
    size_t at = l2 - 11;
    q2[at] = 0xc0;
    q2[at + 1] = (uint8_t)at; /* points at itself */
    l2 = at + 2;
    tt_dnstun_serve(&z, q2, l2, &r, out);
    cr_assert_eq(rcode(out), 1);
    /* NOTIFY: NOTIMP. */
    q[2] = 0x20;
    tt_dnstun_serve(&z, q, len, &r, out);
    cr_assert_eq(rcode(out), 4);
    cr_assert_eq(out[2] & 0x78, 0x20, "the opcode echoed");
    q[2] = 0x01;
    /* EDNS version 1: BADVERS, 16, in the OPT's extended RCODE. */
    q[len - 11 + 6] = 1;
    size_t n = tt_dnstun_serve(&z, q, len, &r, out);
    cr_assert_eq(rcode(out), 0);
    cr_assert_eq(out[n - 11 + 5], 1);
}

Test(dnstun, malformed_tunnel_names_are_refused_with_a_reason)
{
    tt_dnstun_zone z = zone("t.ex");
    uint8_t q[300], out[TT_DNSTUN_MSG_MAX];
    tt_dnstun_req r;
    static const struct {
        const char *name, *why;
    } cases[] = {
        /* base32 of 8 bytes is "32w353yaaaaac": 65 bits, the last one
         * unused; here it is set. */
        {"32w353yaaaaad.t.ex", "the base32 data is not canonical"},
        /* A length no byte count encodes to (17 characters). */
        {"aebagbafaydqq2dja.t.ex", "the base32 data is not canonical"},
        /* Cut where the encoder does not cut. */
        {"aebagbafa.ydqq2dj.t.ex", "a data label other than the last is not 63 characters"},
        /* Five bytes: no room for a client id and a nonce. */
        {"aebagbaf.t.ex", "the data is shorter than a client id and a nonce"},
        {"aeba_gbafaydqq2dj.t.ex", "a data label is not base32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tt_dnstun_serve(&z, q, ask(q, cases[i].name, 16, 1, false), &r, out);
        cr_expect_eq(r.kind, TT_DNSTUN_REPLY, "%s", cases[i].name);
        cr_expect_eq(rcode(out), 3, "%s", cases[i].name);
        cr_expect_str_eq(r.why, cases[i].why, "%s", cases[i].name);
    }
}

Test(dnstun, client_refuses_answers_that_are_not_or_carry_nothing)
{
    uint8_t a[sizeof ANSWER], got[TT_DNSTUN_MSG_MAX];
    size_t glen;
    const char *why;
    memcpy(a, ANSWER, sizeof a);
    a[1] ^= 1;
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why),
                 -EINVAL);
    a[1] ^= 1;
    a[20] = 'x'; /* another question */
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why),
                 -EINVAL);
    /* The question in upper case is the same question. */
    a[20] = 'F';
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why), 0,
                 "%s", why);
    memcpy(a, ANSWER, sizeof a);
    a[3] = 0x02; /* SERVFAIL */
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why),
                 -EPROTO);
    cr_assert_str_eq(why, "SERVFAIL");
    memcpy(a, ANSWER, sizeof a);
    a[2] |= 0x02; /* TC */
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why),
                 -EPROTO);
    memcpy(a, ANSWER, sizeof a);
    a[53] = 3; /* the datagram's length runs past the payload */
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why),
                 -EPROTO);
    cr_assert_str_eq(why, "the payload's framing is broken");
    memcpy(a, ANSWER, sizeof a);
    a[51] = 5; /* the TXT string runs past its record */
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why),
                 -EPROTO);
    memcpy(a, ANSWER, sizeof a);
    a[41] = 0x11; /* a record of another type */
    cr_assert_eq(tt_dnstun_answer_decode(a, sizeof a, QUERY, sizeof QUERY, got, &glen, &why),
                 -EPROTO);
    cr_assert_eq(tt_dnstun_answer_decode(a, 40, QUERY, sizeof QUERY, got, &glen, &why), -EPROTO);
}

Test(dnstun, pack_and_unpack_bounds)
{
    uint8_t buf[8];
    size_t used = 0;
    cr_assert(tt_dnstun_pack(buf, sizeof buf, &used, (const uint8_t *)"abc", 3));
    cr_assert_not(tt_dnstun_pack(buf, sizeof buf, &used, (const uint8_t *)"abc", 2 + 2));
    cr_assert_not(tt_dnstun_pack(buf, sizeof buf, &used, (const uint8_t *)"", 0));
    cr_assert(tt_dnstun_pack(buf, sizeof buf, &used, (const uint8_t *)"d", 1));
    cr_assert_eq(used, 8);
    size_t off = 0;
    const uint8_t *d;
    size_t dlen;
    cr_assert_eq(tt_dnstun_unpack(buf, used, &off, &d, &dlen), 1);
    cr_assert_eq(tt_dnstun_unpack(buf, used, &off, &d, &dlen), 1);
    cr_assert_eq(tt_dnstun_unpack(buf, used, &off, &d, &dlen), 0);
    off = 0;
    cr_assert_eq(tt_dnstun_unpack(buf, 4, &off, &d, &dlen), -1);
    static const uint8_t zero[] = {0, 0};
    off = 0;
    cr_assert_eq(tt_dnstun_unpack(zero, 2, &off, &d, &dlen), -1);
}
