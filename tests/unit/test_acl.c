/* Tests of the exit's access list: every built-in refused range at its edges
 * and just outside, the IPv4 addresses hidden in IPv6 ones, --allow opening a
 * range (in both its IPv4 and IPv4-mapped forms), --deny beating --allow, and
 * the list limits. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "exit/acl.h"

/* Builds a socket address for the literal IP (either family) with PORT. */
static struct sockaddr_storage sa_of(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1, "bad test address %s", ip);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1, "bad test address %s", ip);
    }
    return ss;
}

static bool permits(const tt_acl *acl, const char *ip)
{
    struct sockaddr_storage ss = sa_of(ip, 443);
    return tt_acl_permits(acl, (const struct sockaddr *)&ss);
}

static void add(tt_acl *acl, bool allow, const char *cidr)
{
    const char *why = NULL;
    int rc = tt_acl_add(acl, allow, cidr, &why);
    cr_assert_eq(rc, 0, "adding %s: %d (%s)", cidr, rc, why ? why : "-");
}

static void expect_refused(const tt_acl *acl, const char *const *ips, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_expect_not(permits(acl, ips[i]), "%s should be refused", ips[i]);
}

static void expect_permitted(const tt_acl *acl, const char *const *ips, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cr_expect(permits(acl, ips[i]), "%s should be permitted", ips[i]);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

Test(acl_defaults, named_addresses)
{
    tt_acl acl;
    tt_acl_init(&acl);
    static const char *const refused[] = {
        "169.254.169.254", "100.64.0.1", "10.1.2.3",  "127.0.0.1", "::1",
        "fd00::1",         "fe80::1",    "0.0.0.0",   "::",        "255.255.255.255",
        "192.168.1.1",     "172.16.5.4", "224.0.0.1", "ff02::1",   "2001:db8::1",
    };
    expect_refused(&acl, refused, N(refused));
}

Test(acl_defaults, ipv4_ranges_at_their_edges)
{
    tt_acl acl;
    tt_acl_init(&acl);
    /* First and last address of each built-in IPv4 range. */
    static const char *const refused[] = {
        "0.0.0.0",         "0.255.255.255",   "10.0.0.0",    "10.255.255.255",
        "100.64.0.0",      "100.127.255.255", "127.0.0.0",   "127.255.255.255",
        "169.254.0.0",     "169.254.255.255", "172.16.0.0",  "172.31.255.255",
        "192.0.0.0",       "192.0.0.255",     "192.0.2.0",   "192.0.2.255",
        "192.168.0.0",     "192.168.255.255", "198.18.0.0",  "198.19.255.255",
        "198.51.100.0",    "198.51.100.255",  "203.0.113.0", "203.0.113.255",
        "224.0.0.0",       "239.255.255.255", "240.0.0.0",   "255.255.255.254",
        "255.255.255.255",
    };
    /* The neighbours just outside each range. */
    static const char *const permitted[] = {
        "1.0.0.0",      "9.255.255.255",   "11.0.0.0",    "100.63.255.255",
        "100.128.0.0",  "126.255.255.255", "128.0.0.0",   "169.253.255.255",
        "169.255.0.0",  "172.15.255.255",  "172.32.0.0",  "191.255.255.255",
        "192.0.1.0",    "192.0.1.255",     "192.0.3.0",   "192.167.255.255",
        "192.169.0.0",  "198.17.255.255",  "198.20.0.0",  "198.51.99.255",
        "198.51.101.0", "203.0.112.255",   "203.0.114.0", "223.255.255.255",
    };
    expect_refused(&acl, refused, N(refused));
    expect_permitted(&acl, permitted, N(permitted));
}

Test(acl_defaults, ipv6_ranges_at_their_edges)
{
    tt_acl acl;
    tt_acl_init(&acl);
    static const char *const refused[] = {
        "::",
        "::1",
        "fc00::",
        "fc00::1",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe80::",
        "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fec0::",
        "fec0::1",
        "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "ff00::",
        "ff02::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db8::",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        "100::",
        "100::1",
        "100::ffff:ffff:ffff:ffff",
    };
    static const char *const permitted[] = {
        "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe00::",
        "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "100:0:0:1::",
        "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    };
    expect_refused(&acl, refused, N(refused));
    expect_permitted(&acl, permitted, N(permitted));
}

Test(acl_defaults, embedded_ipv4)
{
    tt_acl acl;
    tt_acl_init(&acl);
    static const char *const refused[] = {
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "::127.0.0.1",
        "::2",
        "::ffff:0:7f00:1", /* IPv4-translated (SIIT), 127.0.0.1 */
        "::ffff:0:a9fe:a9fe",
        "64:ff9b::a00:1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::a9fe:a9fe",
        "2002:7f00:1::1",
        "2002:a00:1::",
        "2002:c0a8:101::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe", /* Teredo, client 127.0.0.1 */
        "2001::f5ff:fffe",                      /* Teredo, client 10.0.0.1 */
    };
    expect_refused(&acl, refused, N(refused));
}

Test(acl_defaults, public_addresses)
{
    tt_acl acl;
    tt_acl_init(&acl);
    static const char *const permitted[] = {
        "93.184.216.34",
        "1.1.1.1",
        "8.8.8.8",
        "2606:4700::1",
        "2a00:1450:4001:80b::200e",
        "::ffff:93.184.216.34",
        "::ffff:0:5db8:d822",
        "64:ff9b::5db8:d822",
        "2002:5db8:d822::1",
        "2001:0:4136:e378:8000:63bf:a247:27dd", /* Teredo, client 93.184.216.34 */
    };
    expect_permitted(&acl, permitted, N(permitted));
}

Test(acl_allow, opens_loopback_in_both_forms)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "127.0.0.0/8");
    static const char *const permitted[] = {"127.0.0.1",        "127.255.255.254",
                                            "::ffff:127.0.0.1", "::ffff:0:7f00:1",
                                            "64:ff9b::7f00:1",  "2002:7f00:1::1"};
    static const char *const refused[] = {"::1", "10.0.0.1", "::ffff:10.0.0.1", "169.254.169.254"};
    expect_permitted(&acl, permitted, N(permitted));
    expect_refused(&acl, refused, N(refused));
}

Test(acl_allow, ipv6_range)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "fd00::/8");
    cr_expect(permits(&acl, "fd00::1"));
    cr_expect(permits(&acl, "fdff::1"));
    cr_expect_not(permits(&acl, "fc00::1"));
    cr_expect_not(permits(&acl, "fe80::1"));
}

Test(acl_allow, single_address)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "10.0.0.5");
    cr_expect(permits(&acl, "10.0.0.5"));
    cr_expect_not(permits(&acl, "10.0.0.4"));
    cr_expect_not(permits(&acl, "10.0.0.6"));
}

Test(acl_allow, ipv6_side_alone_does_not_open_embedded)
{
    /* Both the IPv6 address and the IPv4 one it carries must pass. */
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "::ffff:0:0/96");
    add(&acl, true, "64:ff9b::/96");
    cr_expect_not(permits(&acl, "::ffff:127.0.0.1"));
    cr_expect_not(permits(&acl, "64:ff9b::a00:1"));
    cr_expect(permits(&acl, "::ffff:93.184.216.34"));
}

Test(acl_deny, beats_allow)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "10.0.0.0/8");
    add(&acl, false, "10.1.0.0/16");
    cr_expect_not(permits(&acl, "10.1.2.3"));
    cr_expect_not(permits(&acl, "::ffff:10.1.2.3"));
    cr_expect(permits(&acl, "10.2.0.1"));
    cr_expect(permits(&acl, "::ffff:10.2.0.1"));
}

Test(acl_deny, beats_allow_whatever_the_order)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, false, "127.0.0.1");
    add(&acl, true, "127.0.0.0/8");
    add(&acl, true, "0.0.0.0/0");
    cr_expect_not(permits(&acl, "127.0.0.1"));
    cr_expect_not(permits(&acl, "::ffff:127.0.0.1"));
    cr_expect(permits(&acl, "127.0.0.2"));
}

Test(acl_deny, identical_ranges)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "192.168.0.0/16");
    add(&acl, false, "192.168.0.0/16");
    cr_expect_not(permits(&acl, "192.168.1.1"));
}

Test(acl_deny, public_range_in_every_form)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, false, "93.184.216.0/24");
    static const char *const refused[] = {
        "93.184.216.34",      "::ffff:93.184.216.34", "::ffff:0:5db8:d822",
        "64:ff9b::5db8:d822", "2002:5db8:d822::1",    "2001:0:4136:e378:8000:63bf:a247:27dd",
    };
    expect_refused(&acl, refused, N(refused));
    cr_expect(permits(&acl, "93.184.217.1"));
}

Test(acl_deny, ipv6_range)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, false, "2606:4700::/32");
    cr_expect_not(permits(&acl, "2606:4700::1"));
    cr_expect(permits(&acl, "2606:4701::1"));
    cr_expect(permits(&acl, "1.1.1.1"));
}

Test(acl_add, bad_text)
{
    tt_acl acl;
    tt_acl_init(&acl);
    const char *why = NULL;
    cr_expect_eq(tt_acl_add(&acl, true, "10.0.0.1/8", &why), -EINVAL);
    cr_expect_str_eq(why ? why : "(null)", "host bits set");
    why = NULL;
    cr_expect_eq(tt_acl_add(&acl, false, "10.0.0.0/33", &why), -EINVAL);
    cr_expect_str_eq(why ? why : "(null)", "prefix length out of range");
    cr_expect_eq(tt_acl_add(&acl, false, "", NULL), -EINVAL);
    cr_expect_eq(tt_acl_add(&acl, false, NULL, NULL), -EINVAL);
    cr_expect_eq(acl.n_allow, 0);
    cr_expect_eq(acl.n_deny, 0);
}

Test(acl_add, list_full)
{
    tt_acl acl;
    tt_acl_init(&acl);
    char text[32];
    for (unsigned i = 0; i < TT_ACL_MAX; i++) {
        snprintf(text, sizeof text, "10.%u.0.0/16", i);
        add(&acl, true, text);
    }
    cr_assert_eq(acl.n_allow, TT_ACL_MAX);

    const char *why = NULL;
    cr_expect_eq(tt_acl_add(&acl, true, "10.200.0.0/16", &why), -ENOSPC);
    cr_expect_str_eq(why ? why : "(null)", "too many ranges");
    cr_expect_eq(acl.n_allow, TT_ACL_MAX);
    cr_expect_not(permits(&acl, "10.200.0.1"), "the refused addition must not apply");
    /* Bad text is still reported as bad text on a full list. */
    cr_expect_eq(tt_acl_add(&acl, true, "nonsense", NULL), -EINVAL);

    /* The deny list has its own room. */
    add(&acl, false, "10.63.0.0/16");
    cr_expect_eq(acl.n_deny, 1);
    cr_expect(permits(&acl, "10.0.0.1"));
    cr_expect(permits(&acl, "10.62.255.255"));
    cr_expect_not(permits(&acl, "10.63.0.1"));

    for (unsigned i = 1; i < TT_ACL_MAX; i++)
        add(&acl, false, "192.0.2.0/24");
    cr_expect_eq(tt_acl_add(&acl, false, "192.0.2.0/24", NULL), -ENOSPC);
}

Test(acl_init, clears_lists)
{
    tt_acl acl;
    memset(&acl, 0xff, sizeof acl);
    tt_acl_init(&acl);
    cr_expect_eq(acl.n_allow, 0);
    cr_expect_eq(acl.n_deny, 0);
    add(&acl, true, "127.0.0.0/8");
    cr_expect(permits(&acl, "127.0.0.1"));
    tt_acl_init(&acl);
    cr_expect_not(permits(&acl, "127.0.0.1"), "init must forget earlier ranges");
}

Test(acl_permits, other_families_and_null)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "0.0.0.0/0");
    add(&acl, true, "::/0");
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    cr_expect_not(tt_acl_permits(&acl, (const struct sockaddr *)&un));
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNSPEC;
    cr_expect_not(tt_acl_permits(&acl, (const struct sockaddr *)&ss));
    cr_expect_not(tt_acl_permits(&acl, NULL));
    struct sockaddr_storage pub = sa_of("1.1.1.1", 53);
    cr_expect_not(tt_acl_permits(NULL, (const struct sockaddr *)&pub));
}

Test(acl_permits, port_does_not_matter)
{
    tt_acl acl;
    tt_acl_init(&acl);
    const uint16_t ports[] = {0, 1, 22, 443, 65535};
    for (size_t i = 0; i < N(ports); i++) {
        struct sockaddr_storage lo = sa_of("127.0.0.1", ports[i]);
        struct sockaddr_storage pub = sa_of("93.184.216.34", ports[i]);
        cr_expect_not(tt_acl_permits(&acl, (const struct sockaddr *)&lo));
        cr_expect(tt_acl_permits(&acl, (const struct sockaddr *)&pub));
    }
}

Test(acl_permits, allow_all_still_checks_embedded_deny)
{
    tt_acl acl;
    tt_acl_init(&acl);
    add(&acl, true, "0.0.0.0/0");
    add(&acl, true, "::/0");
    cr_expect(permits(&acl, "127.0.0.1"));
    cr_expect(permits(&acl, "::1"));
    cr_expect(permits(&acl, "::ffff:10.0.0.1"));
    add(&acl, false, "10.0.0.0/8");
    cr_expect_not(permits(&acl, "::ffff:10.0.0.1"));
    cr_expect_not(permits(&acl, "2002:a00:1::1"));
}
