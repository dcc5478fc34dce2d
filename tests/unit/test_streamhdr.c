/* Tests of the stream-open header and reply codec: golden bytes, round trips
 * in every split, the longest name, and every malformed header. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/streamhdr.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static tt_target v4_target(void)
{
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = TT_TARGET_IPV4;
    t.port = 80;
    const uint8_t a[4] = {192, 0, 2, 1};
    memcpy(t.u.v4, a, 4);
    return t;
}

static tt_target v6_target(void)
{
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = TT_TARGET_IPV6;
    t.port = 443;
    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::2", t.u.v6), 1);
    return t;
}

static tt_target name_target(const char *name, uint16_t port)
{
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = TT_TARGET_NAME;
    t.port = port;
    t.name_len = (uint8_t)strlen(name);
    memcpy(t.u.name, name, t.name_len);
    return t;
}

static const uint8_t hdr_v4[] = {0x01, 0x00, 0x01, 192, 0, 2, 1, 0x00, 0x50};
static const uint8_t hdr_v6[] = {0x01, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0,    0,   0,
                                 0,    0,    0,    0,    0,    0,    0,    2, 0x01, 0xbb};
static const uint8_t hdr_name[] = {0x01, 0x00, 0x03, 11,  'e', 'x', 'a',  'm', 'p',
                                   'l',  'e',  '.',  'c', 'o', 'm', 0x1f, 0x90};

/* Compares the meaningful fields of two targets. */
static void assert_target_eq(const tt_target *a, const tt_target *b)
{
    cr_assert_eq(a->type, b->type, "type %u vs %u", a->type, b->type);
    cr_assert_eq(a->port, b->port, "port %u vs %u", a->port, b->port);
    if (a->type == TT_TARGET_IPV4) {
        cr_assert_arr_eq(a->u.v4, b->u.v4, 4);
    } else if (a->type == TT_TARGET_IPV6) {
        cr_assert_arr_eq(a->u.v6, b->u.v6, 16);
    } else {
        cr_assert_eq(a->name_len, b->name_len);
        cr_assert_str_eq(a->u.name, b->u.name);
        cr_assert_eq(strlen(a->u.name), a->name_len, "name is not NUL-terminated at name_len");
    }
}

/* Outcome of parsing one input fed in chunks. */
typedef struct outcome {
    int rc;          /* final return value */
    size_t used;     /* bytes taken from the input before the final result */
    const char *why; /* set with -EPROTO */
    tt_target t;     /* filled with 1 */
} outcome;

/* Feeds IN in chunks ending at the offsets in CUTS (LEN implied last) and
 * stops at the first nonzero result. */
static outcome parse_cuts(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts)
{
    tt_streamhdr_parser p;
    tt_streamhdr_parser_init(&p);
    outcome o;
    memset(&o, 0, sizeof o);

    size_t start = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        size_t used = (size_t)-1;
        const char *why = NULL;
        int rc = tt_streamhdr_parse(&p, in + start, end - start, &used, &o.t, &why);
        cr_assert(rc == 1 || rc == 0 || rc == -EPROTO, "unexpected result %d", rc);
        if (rc >= 0)
            cr_assert_leq(used, end - start);
        if (rc == 0)
            cr_assert_eq(used, end - start, "0 returned without taking all input");
        if (rc != 0) {
            o.rc = rc;
            o.used += rc == 1 ? used : 0;
            o.why = why;
            return o;
        }
        o.used += used;
        start = end;
    }
    o.rc = 0;
    return o;
}

/* Parses IN whole, split in two at every offset, and in chunks of 1..7 bytes,
 * asserting that every run agrees with the whole one, which is returned. */
static outcome parse_all_splits(const uint8_t *in, size_t len)
{
    outcome whole = parse_cuts(in, len, NULL, 0);
    size_t cuts[600];
    cr_assert_lt(len, LEN(cuts));

    for (size_t k = 0; k <= len; k++) {
        char how[64];
        snprintf(how, sizeof how, "split at %zu", k);
        outcome o = parse_cuts(in, len, &k, 1);
        cr_assert_eq(o.rc, whole.rc, "%s: rc %d vs %d", how, o.rc, whole.rc);
        if (whole.rc == 1) {
            cr_assert_eq(o.used, whole.used, "%s: used %zu vs %zu", how, o.used, whole.used);
            assert_target_eq(&o.t, &whole.t);
        } else if (whole.rc < 0) {
            cr_assert_str_eq(o.why, whole.why, "%s", how);
        }
    }
    for (size_t step = 1; step <= 7; step++) {
        size_t n = 0;
        for (size_t k = step; k < len; k += step)
            cuts[n++] = k;
        outcome o = parse_cuts(in, len, cuts, n);
        cr_assert_eq(o.rc, whole.rc, "chunks of %zu: rc %d vs %d", step, o.rc, whole.rc);
        if (whole.rc == 1) {
            cr_assert_eq(o.used, whole.used, "chunks of %zu: used differs", step);
            assert_target_eq(&o.t, &whole.t);
        } else if (whole.rc < 0) {
            cr_assert_str_eq(o.why, whole.why, "chunks of %zu", step);
        }
    }
    return whole;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                   */

Test(streamhdr, encode_ipv4_golden)
{
    tt_target t = v4_target();
    uint8_t out[TT_STREAMHDR_MAX];
    cr_assert_eq(tt_streamhdr_encode(&t, out), sizeof hdr_v4);
    cr_assert_arr_eq(out, hdr_v4, sizeof hdr_v4);
}

Test(streamhdr, encode_ipv6_golden)
{
    tt_target t = v6_target();
    uint8_t out[TT_STREAMHDR_MAX];
    cr_assert_eq(tt_streamhdr_encode(&t, out), sizeof hdr_v6);
    cr_assert_arr_eq(out, hdr_v6, sizeof hdr_v6);
}

Test(streamhdr, encode_name_golden)
{
    tt_target t = name_target("example.com", 8080);
    uint8_t out[TT_STREAMHDR_MAX];
    cr_assert_eq(tt_streamhdr_encode(&t, out), sizeof hdr_name);
    cr_assert_arr_eq(out, hdr_name, sizeof hdr_name);
}

Test(streamhdr, encode_refuses_invalid_targets)
{
    uint8_t out[TT_STREAMHDR_MAX];
    tt_target t = v4_target();
    t.type = 2;
    cr_assert_eq(tt_streamhdr_encode(&t, out), 0);
    t.type = 0;
    cr_assert_eq(tt_streamhdr_encode(&t, out), 0);
    t.type = 5;
    cr_assert_eq(tt_streamhdr_encode(&t, out), 0);

    tt_target empty = name_target("", 1);
    cr_assert_eq(tt_streamhdr_encode(&empty, out), 0);

    tt_target nul = name_target("abcd", 1);
    nul.u.name[2] = '\0';
    cr_assert_eq(tt_streamhdr_encode(&nul, out), 0);
}

Test(streamhdr, encode_max_name)
{
    char name[256];
    memset(name, 'z', 255);
    name[255] = '\0';
    tt_target t = name_target(name, 65535);
    uint8_t out[TT_STREAMHDR_MAX];
    /* VER FLAGS ATYP LEN NAME PORT. TT_STREAMHDR_MAX is one byte more than
     * this, which only makes buffers sized by it a little generous. */
    size_t want = 3 + 1 + 255 + 2;
    cr_assert_leq(want, TT_STREAMHDR_MAX);
    cr_assert_eq(tt_streamhdr_encode(&t, out), want);
    cr_assert_eq(out[3], 255);
    cr_assert_arr_eq(out + 4, name, 255);
    cr_assert_eq(out[want - 2], 0xFF);
    cr_assert_eq(out[want - 1], 0xFF);
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                    */

/* Encodes T, appends PAYLOAD_LEN bytes of payload, parses the result in every
 * split and checks that the header comes back whole and the payload is left. */
static void round_trip(const tt_target *t, size_t payload_len)
{
    uint8_t in[TT_STREAMHDR_MAX + 64];
    size_t n = tt_streamhdr_encode(t, in);
    cr_assert_gt(n, 0);
    cr_assert_leq(payload_len, 64);
    memset(in + n, 0x01, payload_len);
    outcome o = parse_all_splits(in, n + payload_len);
    cr_assert_eq(o.rc, 1);
    cr_assert_eq(o.used, n, "used %zu, header is %zu", o.used, n);
    assert_target_eq(&o.t, t);
}

Test(streamhdr, round_trip_ipv4)
{
    tt_target t = v4_target();
    round_trip(&t, 0);
    round_trip(&t, 10);
}

Test(streamhdr, round_trip_ipv6)
{
    tt_target t = v6_target();
    round_trip(&t, 0);
    round_trip(&t, 10);
}

Test(streamhdr, round_trip_name)
{
    tt_target t = name_target("example.com", 8080);
    round_trip(&t, 0);
    round_trip(&t, 10);
    tt_target one = name_target("x", 0);
    round_trip(&one, 3);
}

Test(streamhdr, round_trip_max_name)
{
    char name[256];
    for (size_t i = 0; i < 255; i++)
        name[i] = (char)('a' + i % 26);
    name[255] = '\0';
    tt_target t = name_target(name, 1);
    round_trip(&t, 0);
    round_trip(&t, 64);
}

Test(streamhdr, parse_golden_bytes)
{
    outcome o = parse_all_splits(hdr_v4, sizeof hdr_v4);
    cr_assert_eq(o.rc, 1);
    tt_target v4 = v4_target();
    assert_target_eq(&o.t, &v4);

    o = parse_all_splits(hdr_v6, sizeof hdr_v6);
    cr_assert_eq(o.rc, 1);
    tt_target v6 = v6_target();
    assert_target_eq(&o.t, &v6);

    o = parse_all_splits(hdr_name, sizeof hdr_name);
    cr_assert_eq(o.rc, 1);
    cr_assert_eq(o.t.name_len, 11);
    cr_assert_str_eq(o.t.u.name, "example.com");
    cr_assert_eq(o.t.port, 8080);
}

Test(streamhdr, partial_header_needs_more)
{
    for (size_t k = 0; k < sizeof hdr_name; k++) {
        outcome o = parse_cuts(hdr_name, k, NULL, 0);
        cr_assert_eq(o.rc, 0, "prefix of %zu bytes gave %d", k, o.rc);
        cr_assert_eq(o.used, k);
    }
}

Test(streamhdr, payload_is_left_in_one_feed)
{
    uint8_t in[sizeof hdr_v4 + 5];
    memcpy(in, hdr_v4, sizeof hdr_v4);
    memcpy(in + sizeof hdr_v4, "hello", 5);
    tt_streamhdr_parser p;
    tt_streamhdr_parser_init(&p);
    size_t used = 0;
    tt_target t;
    const char *why = NULL;
    cr_assert_eq(tt_streamhdr_parse(&p, in, sizeof in, &used, &t, &why), 1);
    cr_assert_eq(used, sizeof hdr_v4);
    cr_assert_eq(t.port, 80);
}

Test(streamhdr, parse_after_complete_takes_nothing)
{
    tt_streamhdr_parser p;
    tt_streamhdr_parser_init(&p);
    size_t used = 0;
    tt_target t;
    const char *why = NULL;
    cr_assert_eq(tt_streamhdr_parse(&p, hdr_name, sizeof hdr_name, &used, &t, &why), 1);
    memset(&t, 0, sizeof t);
    cr_assert_eq(tt_streamhdr_parse(&p, hdr_v4, sizeof hdr_v4, &used, &t, &why), 1);
    cr_assert_eq(used, 0);
    cr_assert_str_eq(t.u.name, "example.com");

    /* Init makes the parser ready for a new header. */
    tt_streamhdr_parser_init(&p);
    cr_assert_eq(tt_streamhdr_parse(&p, hdr_v4, sizeof hdr_v4, &used, &t, &why), 1);
    cr_assert_eq(used, sizeof hdr_v4);
    cr_assert_eq(t.type, TT_TARGET_IPV4);
}

/* Parses IN in every split and asserts -EPROTO with a reason. */
static void expect_malformed(const uint8_t *in, size_t len)
{
    outcome o = parse_all_splits(in, len);
    cr_assert_eq(o.rc, -EPROTO, "rc %d, want -EPROTO", o.rc);
    cr_assert_not_null(o.why);
    cr_assert_gt(strlen(o.why), 0);
}

Test(streamhdr, bad_version)
{
    const uint8_t v0[] = {0x00, 0x00, 0x01, 1, 2, 3, 4, 0, 80};
    expect_malformed(v0, sizeof v0);
    const uint8_t v2[] = {0x02, 0x00, 0x01, 1, 2, 3, 4, 0, 80};
    expect_malformed(v2, sizeof v2);
    /* A SOCKS5 greeting sent to the wrong port. */
    const uint8_t s5[] = {0x05, 0x01, 0x00};
    expect_malformed(s5, sizeof s5);
    /* Detected from the first byte alone. */
    expect_malformed(v2, 1);
}

Test(streamhdr, nonzero_flags)
{
    const uint8_t f1[] = {0x01, 0x01, 0x01, 1, 2, 3, 4, 0, 80};
    expect_malformed(f1, sizeof f1);
    const uint8_t f80[] = {0x01, 0x80, 0x01, 1, 2, 3, 4, 0, 80};
    expect_malformed(f80, 2);
}

Test(streamhdr, unknown_address_type)
{
    for (unsigned a = 0; a < 256; a++) {
        if (a == TT_TARGET_IPV4 || a == TT_TARGET_IPV6 || a == TT_TARGET_NAME)
            continue;
        const uint8_t in[] = {0x01, 0x00, (uint8_t)a, 1, 2, 3, 4, 0, 80};
        outcome o = parse_cuts(in, sizeof in, NULL, 0);
        cr_assert_eq(o.rc, -EPROTO, "type %u accepted", a);
    }
    const uint8_t two[] = {0x01, 0x00, 0x02, 1, 2, 3, 4, 0, 80};
    expect_malformed(two, sizeof two);
    const uint8_t five[] = {0x01, 0x00, 0x05};
    expect_malformed(five, sizeof five);
}

Test(streamhdr, empty_name)
{
    const uint8_t in[] = {0x01, 0x00, 0x03, 0x00, 0x00, 0x50};
    expect_malformed(in, sizeof in);
    expect_malformed(in, 4);
}

Test(streamhdr, nul_in_name)
{
    const uint8_t mid[] = {0x01, 0x00, 0x03, 3, 'a', 0, 'b', 0x00, 0x50};
    expect_malformed(mid, sizeof mid);
    const uint8_t first[] = {0x01, 0x00, 0x03, 1, 0, 0x00, 0x50, 'x'};
    expect_malformed(first, sizeof first);
}

Test(streamhdr, error_is_sticky)
{
    tt_streamhdr_parser p;
    tt_streamhdr_parser_init(&p);
    size_t used = 0;
    tt_target t;
    const char *why = NULL;
    const uint8_t bad[] = {0x01, 0x07};
    cr_assert_eq(tt_streamhdr_parse(&p, bad, sizeof bad, &used, &t, &why), -EPROTO);
    why = NULL;
    cr_assert_eq(tt_streamhdr_parse(&p, hdr_v4, sizeof hdr_v4, &used, &t, &why), -EPROTO);
    cr_assert_not_null(why);
}

/* ------------------------------------------------------------------------ */
/* Reply                                                                      */

Test(streamhdr, reply_golden)
{
    uint8_t out[TT_STREAMREPLY_LEN];
    cr_assert_eq(tt_streamreply_encode(0x00, out), 2);
    const uint8_t ok[] = {0x01, 0x00};
    cr_assert_arr_eq(out, ok, 2);
    cr_assert_eq(tt_streamreply_encode(0x05, out), 2);
    const uint8_t refused[] = {0x01, 0x05};
    cr_assert_arr_eq(out, refused, 2);
}

Test(streamhdr, reply_round_trip_every_code)
{
    for (unsigned code = 0; code < 256; code++) {
        uint8_t out[TT_STREAMREPLY_LEN];
        cr_assert_eq(tt_streamreply_encode((uint8_t)code, out), TT_STREAMREPLY_LEN);
        cr_assert_eq(tt_streamreply_parse(out), (int)code);
    }
}

Test(streamhdr, reply_bad_version)
{
    const uint8_t v0[] = {0x00, 0x00};
    cr_assert_eq(tt_streamreply_parse(v0), -EPROTO);
    const uint8_t v5[] = {0x05, 0x00};
    cr_assert_eq(tt_streamreply_parse(v5), -EPROTO);
    const uint8_t vff[] = {0xFF, 0x01};
    cr_assert_eq(tt_streamreply_parse(vff), -EPROTO);
}

Test(streamhdr, the_reserved_nameserver_name)
{
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "nameserver.tt.invalid", 53), 0);
    cr_assert(tt_target_is_nameserver(&t));
    cr_assert_eq(tt_target_set(&t, "NameServer.TT.Invalid", 1), 0);
    cr_assert(tt_target_is_nameserver(&t), "any case, any port");
    cr_assert_eq(tt_target_set(&t, "nameserver.tt.invalid.", 53), 0);
    cr_assert_not(tt_target_is_nameserver(&t), "another name");
    cr_assert_eq(tt_target_set(&t, "nameserver.tt.inval", 53), 0);
    cr_assert_not(tt_target_is_nameserver(&t), "a prefix");
    cr_assert_eq(tt_target_set(&t, "10.0.0.1", 53), 0);
    cr_assert_not(tt_target_is_nameserver(&t));
}
