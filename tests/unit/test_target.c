/* Tests of tt_target: classifying host text as an IPv4 or IPv6 address or a
 * name, refusing empty, over-long and control-laden text, and formatting each
 * kind for logs, including truncation and names that came off the wire. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "core/target.h"

/* A target filled with a byte pattern, to show what a failed call left. */
static tt_target sentinel(void)
{
    tt_target t;
    memset(&t, 0xa5, sizeof t);
    return t;
}

Test(target_set, ipv4_literal)
{
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "192.0.2.7", 8080), 0);
    cr_assert_eq(t.type, TT_TARGET_IPV4);
    cr_assert_eq(t.port, 8080);
    const uint8_t want[4] = {192, 0, 2, 7};
    cr_assert_arr_eq(t.u.v4, want, 4);
}

Test(target_set, ipv6_literal)
{
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "2001:db8::1", 443), 0);
    cr_assert_eq(t.type, TT_TARGET_IPV6);
    cr_assert_eq(t.port, 443);
    const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    cr_assert_arr_eq(t.u.v6, want, 16);

    cr_assert_eq(tt_target_set(&t, "::1", 1), 0);
    cr_assert_eq(t.type, TT_TARGET_IPV6);
    const uint8_t lo[16] = {[15] = 1};
    cr_assert_arr_eq(t.u.v6, lo, 16);
}

Test(target_set, ipv4_mapped_stays_ipv6)
{
    /* The ACL handles the embedded address; the target keeps what was typed. */
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "::ffff:127.0.0.1", 80), 0);
    cr_assert_eq(t.type, TT_TARGET_IPV6);
    const uint8_t want[16] = {[10] = 0xff, 0xff, 127, 0, 0, 1};
    cr_assert_arr_eq(t.u.v6, want, 16);
}

Test(target_set, name)
{
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "example.com", 80), 0);
    cr_assert_eq(t.type, TT_TARGET_NAME);
    cr_assert_eq(t.name_len, 11);
    cr_assert_str_eq(t.u.name, "example.com");
    cr_assert_eq(t.port, 80);
}

Test(target_set, non_literals_are_names)
{
    /* Text that is not exactly an inet_pton literal is a name: legacy numeric
     * forms, bracketed IPv6 and zone-qualified addresses included. */
    const char *names[] = {"1.2.3",        "127.1",    "0x7f000001", "[::1]",
                           "fe80::1%eth0", "01.2.3.4", "1.2.3.4.",   "localhost"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tt_target t;
        cr_expect_eq(tt_target_set(&t, names[i], 1), 0, "%s", names[i]);
        cr_expect_eq(t.type, TT_TARGET_NAME, "%s", names[i]);
        cr_expect_eq(t.name_len, strlen(names[i]), "%s", names[i]);
        cr_expect_str_eq(t.u.name, names[i]);
    }
}

Test(target_set, port_zero_and_max_are_stored)
{
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "h", 0), 0);
    cr_assert_eq(t.port, 0);
    cr_assert_eq(tt_target_set(&t, "h", 65535), 0);
    cr_assert_eq(t.port, 65535);
}

Test(target_set, longest_name)
{
    char name[256];
    memset(name, 'a', 255);
    name[255] = '\0';
    tt_target t;
    cr_assert_eq(tt_target_set(&t, name, 53), 0);
    cr_assert_eq(t.type, TT_TARGET_NAME);
    cr_assert_eq(t.name_len, 255);
    cr_assert_str_eq(t.u.name, name);
}

Test(target_set, too_long_name)
{
    char name[300];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    tt_target t = sentinel(), before = t;
    cr_assert_eq(tt_target_set(&t, name, 53), -EINVAL);
    cr_assert_eq(memcmp(&t, &before, sizeof t), 0, "target changed on failure");

    name[256] = '\0';
    cr_assert_eq(tt_target_set(&t, name, 53), -EINVAL);
}

Test(target_set, empty_and_null)
{
    tt_target t = sentinel(), before = t;
    cr_assert_eq(tt_target_set(&t, "", 80), -EINVAL);
    cr_assert_eq(tt_target_set(&t, NULL, 80), -EINVAL);
    cr_assert_eq(tt_target_set(NULL, "h", 80), -EINVAL);
    cr_assert_eq(memcmp(&t, &before, sizeof t), 0, "target changed on failure");
}

Test(target_set, control_bytes)
{
    const char *bad[] = {"a\tb", "exa\nmple.com", "\r", "x\x01", "\x1f", "del\x7f", "a\x1b[31m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tt_target t;
        cr_expect_eq(tt_target_set(&t, bad[i], 80), -EINVAL, "case %zu", i);
    }
}

Test(target_set, embedded_nul_ends_host)
{
    /* A C string cannot carry a NUL; whatever follows one is not seen. */
    const char host[] = "good\0evil";
    tt_target t;
    cr_assert_eq(tt_target_set(&t, host, 80), 0);
    cr_assert_eq(t.name_len, 4);
    cr_assert_str_eq(t.u.name, "good");
}

Test(target_set, utf8_name_is_allowed)
{
    /* Only control bytes are refused; UTF-8 is left to the resolver. */
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "\xc3\xa9t\xc3\xa9.example", 80), 0);
    cr_assert_eq(t.type, TT_TARGET_NAME);
    cr_assert_eq(t.name_len, 13);
}

Test(target_set, reuse_clears_old_bytes)
{
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "a-rather-long-name.example.org", 80), 0);
    cr_assert_eq(tt_target_set(&t, "ab", 81), 0);
    cr_assert_eq(t.name_len, 2);
    for (size_t i = 2; i < sizeof t.u.name; i++)
        cr_assert_eq(t.u.name[i], 0, "stale byte at %zu", i);
}

static const char *fmt(const char *host, uint16_t port, char *buf, size_t len)
{
    tt_target t;
    cr_assert_eq(tt_target_set(&t, host, port), 0, "%s", host);
    const char *r = tt_target_format(&t, buf, len);
    cr_assert_eq(r, buf);
    return r;
}

Test(target_format, each_kind)
{
    char buf[TT_TARGET_STRLEN];
    cr_expect_str_eq(fmt("1.2.3.4", 80, buf, sizeof buf), "1.2.3.4:80");
    cr_expect_str_eq(fmt("::1", 80, buf, sizeof buf), "[::1]:80");
    cr_expect_str_eq(fmt("2001:0db8:0:0:0:0:0:0001", 65535, buf, sizeof buf),
                     "[2001:db8::1]:65535");
    cr_expect_str_eq(fmt("::ffff:10.0.0.1", 1, buf, sizeof buf), "[::ffff:10.0.0.1]:1");
    cr_expect_str_eq(fmt("example.com", 80, buf, sizeof buf), "example.com:80");
    cr_expect_str_eq(fmt("h", 0, buf, sizeof buf), "h:0");
}

Test(target_format, longest_fits)
{
    char name[256];
    memset(name, 'z', 255);
    name[255] = '\0';
    char buf[TT_TARGET_STRLEN];
    fmt(name, 65535, buf, sizeof buf);
    cr_assert_eq(strlen(buf), 255 + 6);
    cr_assert_eq(memcmp(buf, name, 255), 0);
    cr_assert_str_eq(buf + 255, ":65535");
}

Test(target_format, truncates_with_nul)
{
    char buf[8];
    memset(buf, 'X', sizeof buf);
    fmt("192.168.100.200", 8080, buf, 5);
    cr_assert_str_eq(buf, "192.");
    cr_assert_eq(buf[5], 'X', "wrote past LEN");

    fmt("[::1]", 80, buf, 1);
    cr_assert_eq(buf[0], '\0');
}

Test(target_format, zero_length_buffer_untouched)
{
    char buf[4] = "abc";
    tt_target t;
    cr_assert_eq(tt_target_set(&t, "1.2.3.4", 1), 0);
    cr_assert_eq(tt_target_format(&t, buf, 0), buf);
    cr_assert_str_eq(buf, "abc");
}

Test(target_format, wire_name_with_control_bytes)
{
    /* A name decoded from the wire may hold any byte; logs must not. */
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = TT_TARGET_NAME;
    t.port = 80;
    memcpy(t.u.name, "ev\nil\x1b\xff", 7);
    t.name_len = 7;
    char buf[TT_TARGET_STRLEN];
    cr_assert_str_eq(tt_target_format(&t, buf, sizeof buf), "ev?il??:80");
}

Test(target_format, wire_name_uses_name_len)
{
    /* name_len, not the terminator, bounds a name from the wire. */
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = TT_TARGET_NAME;
    t.port = 443;
    memcpy(t.u.name, "abcdef", 7);
    t.name_len = 3;
    char buf[TT_TARGET_STRLEN];
    cr_assert_str_eq(tt_target_format(&t, buf, sizeof buf), "abc:443");
}

Test(target_format, bad_type)
{
    tt_target t;
    memset(&t, 0, sizeof t);
    t.type = 9;
    char buf[TT_TARGET_STRLEN];
    cr_assert_str_eq(tt_target_format(&t, buf, sizeof buf), "(bad target type 9)");
}
