/* Tests of the resolv.conf reader: nameserver lines among others, comments,
 * IPv6 with a zone, bad addresses and long lines skipped, duplicates once,
 * the count bounded, and no NUL needed. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "codec/resolvconf.h"

Test(resolvconf, nameservers_of_a_typical_file)
{
    const char *text = "# generated\n"
                       "search example.org\n"
                       "nameserver 10.0.0.53 # the first\n"
                       "  nameserver\tfd00::53%eth0\n"
                       "; nameserver 10.9.9.9\n"
                       "nameserver 300.1.1.1\n"
                       "nameservers 10.8.8.8\n"
                       "nameserver 10.0.0.53\n"
                       "options edns0\n"
                       "nameserver 127.0.0.53";
    tt_resolvconf_ns ns[TT_RESOLVCONF_MAX_NS];
    size_t n = tt_resolvconf_parse(text, strlen(text), ns);
    cr_assert_eq(n, 3);
    static const uint8_t a0[4] = {10, 0, 0, 53}, a2[4] = {127, 0, 0, 53};
    static const uint8_t a1[16] = {0xfd, [15] = 0x53};
    cr_assert_eq(ns[0].family, 4);
    cr_assert_arr_eq(ns[0].addr, a0, 4);
    cr_assert_eq(ns[1].family, 6);
    cr_assert_arr_eq(ns[1].addr, a1, 16);
    cr_assert_eq(ns[2].family, 4);
    cr_assert_arr_eq(ns[2].addr, a2, 4);
}

Test(resolvconf, bounded_and_without_a_nul)
{
    char text[4096] = "";
    for (int i = 0; i < 20; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "nameserver 10.0.0.%d\n", i);
    tt_resolvconf_ns ns[TT_RESOLVCONF_MAX_NS];
    cr_assert_eq(tt_resolvconf_parse(text, strlen(text), ns), TT_RESOLVCONF_MAX_NS);
    /* The text cut in the middle of an address: "nameserver 10.0.0." */
    cr_assert_eq(tt_resolvconf_parse(text, 18, ns), 0);
    cr_assert_eq(tt_resolvconf_parse(text, 19, ns), 1);
    /* A line too long to be a real one is skipped whole. */
    memset(text, ' ', 300);
    memcpy(text + 300, "nameserver 10.0.0.1\nnameserver 10.0.0.2\n", 40);
    memcpy(text, "nameserver", 10);
    cr_assert_eq(tt_resolvconf_parse(text, 340, ns), 1);
    cr_assert_eq(ns[0].addr[3], 2);
}
