/* Tests of the --redirect ruleset text: the exact script for a typical
 * client (golden text, which nft itself accepts in the end-to-end tests),
 * the order that keeps tt's own traffic out of the redirect, the prerouting
 * chain, a family without a listener, the delete script, the loopback
 * check and the buffer limits. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "codec/nftrules.h"

static tt_cidr cidr(const char *text)
{
    tt_cidr c;
    const char *why = NULL;
    cr_assert_eq(tt_cidr_parse(text, &c, &why), 0, "bad test range %s: %s", text, why);
    return c;
}

static char buf[8192];

Test(nftrules, golden_output_chain)
{
    tt_cidr red[] = {cidr("10.0.0.0/8"), cidr("fd00::/8")};
    tt_cidr exc[] = {cidr("10.1.0.0/16")};
    tt_nft_endpoint car[] = {{cidr("192.0.2.1"), 443}, {cidr("2001:db8::1"), 0}};
    tt_nftrules r = {.id = 1234,
                     .owner = true,
                     .mark = 0x7474,
                     .port4 = 40000,
                     .port6 = 40001,
                     .redirect = red,
                     .n_redirect = 2,
                     .exclude = exc,
                     .n_exclude = 1,
                     .carrier = car,
                     .n_carrier = 2};
    const char *want = "table inet tt_1234 {\n"
                       "\tflags owner;\n"
                       "\tchain output {\n"
                       "\t\ttype nat hook output priority -100; policy accept;\n"
                       "\t\tmeta l4proto != tcp return\n"
                       "\t\tmeta mark 0x00007474 return\n"
                       "\t\tfib daddr type local return\n"
                       "\t\tip daddr 127.0.0.0/8 return\n"
                       "\t\tip6 daddr ::1 return\n"
                       "\t\tip daddr 192.0.2.1/32 tcp dport 443 return\n"
                       "\t\tip6 daddr 2001:db8::1/128 return\n"
                       "\t\tip daddr 10.1.0.0/16 return\n"
                       "\t\tmeta l4proto tcp ip daddr 10.0.0.0/8 redirect to :40000\n"
                       "\t\tmeta l4proto tcp ip6 daddr fd00::/8 redirect to :40001\n"
                       "\t}\n"
                       "}\n";
    int n = tt_nftrules_format(&r, buf, sizeof buf);
    cr_assert_str_eq(buf, want);
    cr_assert_eq(n, (int)strlen(want));
}

Test(nftrules, forwarded_adds_prerouting_without_the_mark)
{
    tt_cidr red[] = {cidr("0.0.0.0/0")};
    tt_nftrules r = {
        .id = 7, .forwarded = true, .mark = 0x7474, .port4 = 1, .redirect = red, .n_redirect = 1};
    cr_assert_gt(tt_nftrules_format(&r, buf, sizeof buf), 0);
    const char *pre = strstr(buf, "\tchain prerouting {\n"
                                  "\t\ttype nat hook prerouting priority -100; policy accept;\n"
                                  "\t\tmeta l4proto != tcp return\n"
                                  "\t\tfib daddr type local return\n");
    cr_assert_not_null(pre, "%s", buf);
    cr_assert_not_null(strstr(pre, "meta l4proto tcp ip daddr 0.0.0.0/0 redirect to :1\n"));
    /* The mark is the client's own connections: only the output chain. */
    cr_assert_lt(strstr(buf, "meta mark"), pre);
    cr_assert_null(strstr(pre, "meta mark"));
    cr_assert_null(strstr(buf, "flags owner"));
}

Test(nftrules, exemptions_come_before_every_redirect)
{
    tt_cidr red[] = {cidr("0.0.0.0/0"), cidr("::/0")};
    tt_cidr exc[] = {cidr("203.0.113.0/24")};
    tt_nft_endpoint car[] = {{cidr("198.51.100.7"), 22}};
    tt_nftrules r = {.id = 1,
                     .mark = 1,
                     .port4 = 5,
                     .port6 = 6,
                     .redirect = red,
                     .n_redirect = 2,
                     .exclude = exc,
                     .n_exclude = 1,
                     .carrier = car,
                     .n_carrier = 1};
    cr_assert_gt(tt_nftrules_format(&r, buf, sizeof buf), 0);
    const char *first = strstr(buf, "redirect to");
    cr_assert_not_null(first);
    const char *before[] = {
        "meta mark 0x00000001 return",    "ip daddr 127.0.0.0/8 return",
        "ip6 daddr ::1 return",           "ip daddr 198.51.100.7/32 tcp dport 22 return",
        "ip daddr 203.0.113.0/24 return", "fib daddr type local return"};
    for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
        const char *at = strstr(buf, before[i]);
        cr_assert(at != NULL && at < first, "'%s' not before the redirects in:\n%s", before[i],
                  buf);
    }
}

Test(nftrules, family_without_a_port_gets_no_redirect)
{
    tt_cidr red[] = {cidr("10.0.0.0/8"), cidr("fd00::/8")};
    tt_nftrules r = {.id = 1, .port4 = 9, .redirect = red, .n_redirect = 2};
    cr_assert_gt(tt_nftrules_format(&r, buf, sizeof buf), 0);
    cr_assert_not_null(strstr(buf, "ip daddr 10.0.0.0/8 redirect to :9"));
    cr_assert_null(strstr(buf, "fd00::/8"));
    cr_assert_null(strstr(buf, "meta mark"), "mark 0 means no mark rule");
}

Test(nftrules, delete_script)
{
    tt_nftrules r = {.id = 4242};
    const char *want = "delete table inet tt_4242\n";
    cr_assert_eq(tt_nftrules_format_delete(&r, buf, sizeof buf), (int)strlen(want));
    cr_assert_str_eq(buf, want);
}

Test(nftrules, too_small_a_buffer)
{
    tt_cidr red[] = {cidr("10.0.0.0/8")};
    tt_nftrules r = {.id = 1, .port4 = 9, .redirect = red, .n_redirect = 1};
    int n = tt_nftrules_format(&r, buf, sizeof buf);
    cr_assert_gt(n, 0);
    /* Exactly enough (with the NUL) fits; one byte less does not, and the
     * partial text is not left behind. */
    char small[1024];
    cr_assert_eq(tt_nftrules_format(&r, small, (size_t)n + 1), n);
    cr_assert_eq(tt_nftrules_format(&r, small, (size_t)n), -ENOSPC);
    cr_assert_str_eq(small, "");
    cr_assert_eq(tt_nftrules_format(&r, NULL, 0), -ENOSPC);
}

Test(nftrules, loopback_ranges)
{
    const char *loop[] = {"127.0.0.0/8", "127.0.0.1", "127.5.0.0/16", "::1"};
    const char *not_loop[] = {"0.0.0.0/0", "126.0.0.0/7", "::/0", "::/127", "10.0.0.0/8"};
    for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++) {
        tt_cidr c = cidr(loop[i]);
        cr_assert(tt_nftrules_cidr_is_loopback(&c), "%s", loop[i]);
    }
    for (size_t i = 0; i < sizeof not_loop / sizeof not_loop[0]; i++) {
        tt_cidr c = cidr(not_loop[i]);
        cr_assert(!tt_nftrules_cidr_is_loopback(&c), "%s", not_loop[i]);
    }
}

Test(nftrules, dns_capture_comes_first_after_the_mark)
{
    tt_cidr ns[] = {cidr("10.0.0.53"), cidr("127.0.0.53"), cidr("fd00::53")};
    tt_nftrules r = {.id = 7,
                     .mark = 0x7474,
                     .dns = ns,
                     .n_dns = 3,
                     .dns_udp4 = 5301,
                     .dns_tcp4 = 5302,
                     .dns_udp6 = 5303,
                     .dns_tcp6 = 0};
    const char *want = "table inet tt_7 {\n"
                       "\tchain output {\n"
                       "\t\ttype nat hook output priority -100; policy accept;\n"
                       "\t\tmeta mark 0x00007474 return\n"
                       "\t\tip daddr 10.0.0.53/32 udp dport 53 redirect to :5301\n"
                       "\t\tip daddr 10.0.0.53/32 tcp dport 53 redirect to :5302\n"
                       "\t\tip daddr 127.0.0.53/32 udp dport 53 redirect to :5301\n"
                       "\t\tip daddr 127.0.0.53/32 tcp dport 53 redirect to :5302\n"
                       "\t\tip6 daddr fd00::53/128 udp dport 53 redirect to :5303\n"
                       "\t\tmeta l4proto != tcp return\n"
                       "\t\tmeta mark 0x00007474 return\n"
                       "\t\tfib daddr type local return\n"
                       "\t\tip daddr 127.0.0.0/8 return\n"
                       "\t\tip6 daddr ::1 return\n"
                       "\t}\n"
                       "}\n";
    tt_nftrules_format(&r, buf, sizeof buf);
    cr_assert_str_eq(buf, want);
}
