/* Tests of the user-input parsers in core/addr: HOST:PORT, listen addresses,
 * URLs and CIDR ranges, each with the valid forms and every way to get them
 * wrong (and the exact phrase reported); CIDR containment at every awkward
 * prefix; the IPv4 addresses embedded in IPv6 ones; and sockaddr formatting. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "core/addr.h"

/* Text of N copies of C followed by SUFFIX, in a static buffer. */
static const char *repeat(char c, size_t n, const char *suffix)
{
    static char buf[200000];
    cr_assert_lt(n + strlen(suffix), sizeof buf);
    memset(buf, c, n);
    strcpy(buf + n, suffix);
    return buf;
}

/* A valid DNS name of exactly N bytes (N >= 1), made of labels of at most 63
 * bytes, followed by SUFFIX. */
static const char *long_name(size_t n, const char *suffix)
{
    static char buf[4096];
    cr_assert_lt(n + strlen(suffix), sizeof buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (i % 64 == 63) ? '.' : 'a';
    if (buf[n - 1] == '.')
        buf[n - 1] = 'a';
    strcpy(buf + n, suffix);
    return buf;
}

/* ---- HOST:PORT ---------------------------------------------------------- */

static void hp_ok(const char *s, const char *host, uint16_t port)
{
    tt_hostport hp;
    const char *why = NULL;
    int rc = tt_hostport_parse(s, &hp, &why);
    cr_expect_eq(rc, 0, "\"%s\": rc %d (%s)", s, rc, why ? why : "-");
    if (rc == 0) {
        cr_expect_str_eq(hp.host, host, "\"%s\"", s);
        cr_expect_eq(hp.port, port, "\"%s\": port %u", s, (unsigned)hp.port);
    }
}

static void hp_bad(const char *s, const char *want_why)
{
    const char *shown = s != NULL ? s : "(null)";
    tt_hostport hp;
    memset(&hp, 0x5a, sizeof hp);
    tt_hostport before = hp;
    const char *why = NULL;
    int rc = tt_hostport_parse(s, &hp, &why);
    cr_expect_eq(rc, -EINVAL, "\"%s\": rc %d", shown, rc);
    cr_expect_str_eq(why ? why : "(null)", want_why, "\"%s\"", shown);
    cr_expect_eq(memcmp(&hp, &before, sizeof hp), 0, "\"%s\": output changed on failure", shown);
}

Test(hostport, valid)
{
    hp_ok("example.com:443", "example.com", 443);
    hp_ok("1.2.3.4:80", "1.2.3.4", 80);
    hp_ok("0.0.0.0:1", "0.0.0.0", 1);
    hp_ok("[::1]:8080", "::1", 8080);
    hp_ok("[2001:db8::1]:65535", "2001:db8::1", 65535);
    hp_ok("[::ffff:1.2.3.4]:1", "::ffff:1.2.3.4", 1);
    hp_ok("[::]:22", "::", 22);
    hp_ok("a:1", "a", 1);
    hp_ok("localhost:1080", "localhost", 1080);
    hp_ok("my_host-1.Example.ORG.:22", "my_host-1.Example.ORG.", 22);
    hp_ok("xn--bcher-kva.example:443", "xn--bcher-kva.example", 443);
    hp_ok("1.example:80", "1.example", 80);
    hp_ok("h:080", "h", 80);
    hp_ok("h:0000065535", "h", 65535);
}

Test(hostport, longest_host)
{
    const char *s = long_name(255, ":9");
    char host[256];
    memcpy(host, s, 255);
    host[255] = '\0';
    hp_ok(s, host, 9);
}

Test(hostport, empty_and_null)
{
    hp_bad("", "empty");
    hp_bad(NULL, "empty");
    tt_hostport hp;
    cr_expect_eq(tt_hostport_parse("h:1", NULL, NULL), -EINVAL);
    cr_expect_eq(tt_hostport_parse("", &hp, NULL), -EINVAL, "a NULL why must be allowed");
}

Test(hostport, missing_parts)
{
    hp_bad("example.com", "missing port");
    hp_bad("example.com:", "missing port");
    hp_bad("1.2.3.4", "missing port");
    hp_bad(":80", "missing host");
    hp_bad(":", "missing host");
    hp_bad("[::1]", "missing port");
    hp_bad("[::1]:", "missing port");
    hp_bad("[]:80", "missing host");
}

Test(hostport, bad_ports)
{
    hp_bad("h:0", "port out of range");
    hp_bad("h:00", "port out of range");
    hp_bad("h:65536", "port out of range");
    hp_bad("h:99999", "port out of range");
    hp_bad("h:18446744073709551697", "port out of range");
    hp_bad("h:080x", "port is not a number");
    hp_bad("h:99999x", "port is not a number");
    hp_bad("h:+80", "port is not a number");
    hp_bad("h:-80", "port is not a number");
    hp_bad("h:0x50", "port is not a number");
    hp_bad("h:http", "port is not a number");
    hp_bad("h:80/", "port is not a number");
    hp_bad("[::1]:80a", "port is not a number");
}

Test(hostport, ipv6_needs_brackets)
{
    hp_bad("::1", "IPv6 address must be in brackets");
    hp_bad("::1:443", "IPv6 address must be in brackets");
    hp_bad("2001:db8::1:443", "IPv6 address must be in brackets");
    hp_bad("fe80::1%eth0:80", "IPv6 address must be in brackets");
    hp_bad("h:80:81", "IPv6 address must be in brackets");
}

Test(hostport, bad_brackets)
{
    hp_bad("[::1:443", "missing ']'");
    hp_bad("[::1]443", "expected ':' after ']'");
    hp_bad("[::1]]:443", "expected ':' after ']'");
    hp_bad("[1.2.3.4]:80", "bad IPv6 address");
    hp_bad("[example.com]:80", "bad IPv6 address");
    hp_bad("[fe80::1%eth0]:80", "bad IPv6 address");
    hp_bad("[[::1]]:80", "expected ':' after ']'");
    hp_bad("[[::1]:80", "bad IPv6 address");
    hp_bad("[::1:2:3:4:5:6:7:8:9]:80", "bad IPv6 address");
    hp_bad("[0000:0000:0000:0000:0000:0000:0000:0000:0000]:80", "bad IPv6 address");
}

Test(hostport, bad_hosts)
{
    hp_bad("exa$mple.com:80", "bad character in host");
    hp_bad("user@host:80", "bad character in host");
    hp_bad("a/b:80", "bad character in host");
    hp_bad("a[b]:80", "bad character in host");
    hp_bad(".example.com:80", "empty label in host name");
    hp_bad("a..b:80", "empty label in host name");
    hp_bad(".:80", "empty label in host name");
    hp_bad("example.com..:80", "empty label in host name");
    hp_bad(repeat('a', 64, ".com:80"), "host name label too long");
}

Test(hostport, numeric_non_ipv4_hosts)
{
    /* Names that resolvers would read as IPv4 in a legacy form. */
    hp_bad("1.2.3:80", "bad IPv4 address");
    hp_bad("127.1:80", "bad IPv4 address");
    hp_bad("256.1.1.1:80", "bad IPv4 address");
    hp_bad("1.2.3.4.5:80", "bad IPv4 address");
    hp_bad("1.2.3.4.:80", "bad IPv4 address");
    hp_bad("2130706433:80", "bad IPv4 address");
    hp_bad("0x7f000001:80", "bad IPv4 address");
    hp_bad("0x7f.1:80", "bad IPv4 address");
    hp_bad("01.2.3.4:80", "bad IPv4 address");
    /* A numeric label that is not the last one is fine. */
    hp_ok("1.2.3.example:80", "1.2.3.example", 80);
    hp_bad("0xfeed:80", "bad IPv4 address");
    hp_ok("0xfeed.example:80", "0xfeed.example", 80);
    hp_ok("0x:80", "0x", 80);
}

Test(hostport, overlong)
{
    hp_bad(long_name(256, ":80"), "host too long");
    hp_bad(repeat('a', 1025, ":80"), "too long");
    hp_bad(repeat('a', 100000, ""), "too long");
    char s[300];
    memset(s, '1', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    s[0] = 'h';
    s[1] = ':';
    hp_bad(s, "port out of range");
}

Test(hostport, control_space_and_non_ascii)
{
    hp_bad("ex ample.com:80", "contains a space");
    hp_bad("example.com: 80", "contains a space");
    hp_bad(" example.com:80", "contains a space");
    hp_bad("example.com:80\n", "contains a control character");
    hp_bad("exa\tmple.com:80", "contains a control character");
    hp_bad("example.com:80\r", "contains a control character");
    hp_bad("\x01:80", "contains a control character");
    hp_bad("a\x7f:80", "contains a control character");
    hp_bad("\xc3\xa9.example:80", "contains a non-ASCII byte");
    hp_bad("h:8\xff", "contains a non-ASCII byte");
}

Test(hostport, embedded_nul_ends_text)
{
    const char s1[] = "h:80\0junk";
    hp_ok(s1, "h", 80);
    const char s2[] = "exa\0mple.com:80";
    hp_bad(s2, "missing port");
}

/* ---- listen addresses --------------------------------------------------- */

static void listen_ok(const char *s, const char *dflt, bool zero, const char *host, uint16_t port)
{
    tt_hostport hp;
    const char *why = NULL;
    int rc = tt_listen_parse(s, dflt, zero, &hp, &why);
    cr_expect_eq(rc, 0, "\"%s\": rc %d (%s)", s, rc, why ? why : "-");
    if (rc == 0) {
        cr_expect_str_eq(hp.host, host, "\"%s\"", s);
        cr_expect_eq(hp.port, port, "\"%s\"", s);
    }
}

static void listen_bad(const char *s, const char *dflt, bool zero, const char *want_why)
{
    const char *shown = s != NULL ? s : "(null)";
    tt_hostport hp;
    memset(&hp, 0x5a, sizeof hp);
    tt_hostport before = hp;
    const char *why = NULL;
    int rc = tt_listen_parse(s, dflt, zero, &hp, &why);
    cr_expect_eq(rc, -EINVAL, "\"%s\": rc %d", shown, rc);
    cr_expect_str_eq(why ? why : "(null)", want_why, "\"%s\"", shown);
    cr_expect_eq(memcmp(&hp, &before, sizeof hp), 0, "\"%s\": output changed", shown);
}

Test(listen, bare_port_uses_default_host)
{
    listen_ok("8080", "127.0.0.1", false, "127.0.0.1", 8080);
    listen_ok("1", "0.0.0.0", false, "0.0.0.0", 1);
    listen_ok("65535", "localhost", false, "localhost", 65535);
    listen_ok("443", "::", false, "::", 443);
    listen_ok("443", "[::1]", false, "::1", 443);
    listen_ok("0080", "127.0.0.1", false, "127.0.0.1", 80);
}

Test(listen, host_and_port)
{
    listen_ok("0.0.0.0:1080", "127.0.0.1", false, "0.0.0.0", 1080);
    listen_ok("[::]:1080", "127.0.0.1", false, "::", 1080);
    listen_ok("localhost:9", NULL, false, "localhost", 9);
}

Test(listen, port_zero)
{
    listen_ok("0", "127.0.0.1", true, "127.0.0.1", 0);
    listen_ok("[::1]:0", "127.0.0.1", true, "::1", 0);
    listen_ok("localhost:0", NULL, true, "localhost", 0);
    listen_bad("0", "127.0.0.1", false, "port out of range");
    listen_bad("[::1]:0", "127.0.0.1", false, "port out of range");
    listen_bad("localhost:0", NULL, false, "port out of range");
}

Test(listen, invalid)
{
    listen_bad("", "127.0.0.1", false, "empty");
    listen_bad(NULL, "127.0.0.1", false, "empty");
    listen_bad("65536", "127.0.0.1", true, "port out of range");
    listen_bad("99999999999999999999999", "127.0.0.1", true, "port out of range");
    listen_bad("8080", NULL, false, "missing host");
    listen_bad("8080", "", false, "empty");
    listen_bad("8080", "not a host", false, "contains a space");
    listen_bad("8080", "[::1", false, "missing ']'");
    listen_bad("8080", "1:2", false, "bad IPv6 address");
    listen_bad(":8080", "127.0.0.1", false, "missing host");
    listen_bad("080x", "127.0.0.1", false, "missing port");
    listen_bad("h:080x", "127.0.0.1", false, "port is not a number");
    listen_bad("::1:80", "127.0.0.1", false, "IPv6 address must be in brackets");
    listen_bad("8080\n", "127.0.0.1", false, "contains a control character");
    listen_bad(repeat('1', 2000, ""), "127.0.0.1", false, "too long");
    cr_expect_eq(tt_listen_parse("80", "h", false, NULL, NULL), -EINVAL);
}

/* ---- URLs --------------------------------------------------------------- */

static void url_ok(const char *s, const char *scheme, const char *host, uint16_t port,
                   const char *path)
{
    tt_url u;
    const char *why = NULL;
    int rc = tt_url_parse(s, &u, &why);
    cr_expect_eq(rc, 0, "\"%s\": rc %d (%s)", s, rc, why ? why : "-");
    if (rc == 0) {
        cr_expect_str_eq(u.scheme, scheme, "\"%s\"", s);
        cr_expect_str_eq(u.hp.host, host, "\"%s\"", s);
        cr_expect_eq(u.hp.port, port, "\"%s\"", s);
        cr_expect_str_eq(u.path, path, "\"%s\"", s);
    }
}

static void url_bad(const char *s, const char *want_why)
{
    const char *shown = s != NULL ? s : "(null)";
    tt_url u;
    memset(&u, 0x5a, sizeof u);
    tt_url before = u;
    const char *why = NULL;
    int rc = tt_url_parse(s, &u, &why);
    cr_expect_eq(rc, -EINVAL, "\"%s\": rc %d", shown, rc);
    cr_expect_str_eq(why ? why : "(null)", want_why, "\"%s\"", shown);
    cr_expect_eq(memcmp(&u, &before, sizeof u), 0, "\"%s\": output changed", shown);
}

Test(url, valid)
{
    url_ok("tcp://[::1]:443/ws/path", "tcp", "::1", 443, "/ws/path");
    url_ok("tcp://example.com:443", "tcp", "example.com", 443, "");
    url_ok("tls://1.2.3.4:8443/", "tls", "1.2.3.4", 8443, "/");
    url_ok("wss://h:1/a/b?c=d&e=%20#frag", "wss", "h", 1, "/a/b?c=d&e=%20#frag");
    url_ok("a.b-c+d9://h:1", "a.b-c+d9", "h", 1, "");
    url_ok("h:1//double", "", "h", 1, "//double");
}

Test(url, format)
{
    char buf[300];
    cr_assert_str_eq(tt_url_format("tcp", NULL, "127.0.0.1", 80, NULL, buf, sizeof buf),
                     "tcp://127.0.0.1:80");
    cr_assert_str_eq(tt_url_format("wss", "", "::1", 443, "/ws", buf, sizeof buf),
                     "wss://[::1]:443/ws");
    cr_assert_str_eq(tt_url_format("ssh", "root", "fd77::2", 0, "", buf, sizeof buf),
                     "ssh://root@[fd77::2]");
    cr_assert_str_eq(tt_url_format("tt", NULL, "example.com", 0, NULL, buf, 8), "tt://ex");
}

Test(url, scheme_is_lower_cased)
{
    url_ok("TCP://Example.COM:80", "tcp", "Example.COM", 80, "");
    url_ok("WsS+Tls://h:2/P", "wss+tls", "h", 2, "/P");
}

Test(url, schemeless)
{
    url_ok("example.com:443", "", "example.com", 443, "");
    url_ok("[::1]:443/ws", "", "::1", 443, "/ws");
    url_ok("h:1/x://y", "", "h", 1, "/x://y");
}

Test(url, scheme_limits)
{
    url_ok("abcdefghijklmno://h:1", "abcdefghijklmno", "h", 1, "");
    url_bad("abcdefghijklmnop://h:1", "scheme too long");
    url_bad(repeat('a', 900, "://h:1"), "scheme too long");
    url_bad("://h:1", "missing scheme");
    url_bad("1tcp://h:1", "scheme must start with a letter");
    url_bad("+tcp://h:1", "scheme must start with a letter");
    url_bad("tc_p://h:1", "bad character in scheme");
    url_bad("t:p://h:1", "bad character in scheme");
    url_bad("[::1]://h:1", "scheme must start with a letter");
}

Test(url, path_limits)
{
    char s[600];
    strcpy(s, "tcp://h:1/");
    memset(s + 10, 'p', 254);
    s[264] = '\0';
    tt_url u;
    cr_assert_eq(tt_url_parse(s, &u, NULL), 0);
    cr_assert_eq(strlen(u.path), 255);
    cr_assert_eq(u.path[0], '/');

    strcat(s, "p");
    url_bad(s, "path too long");
    url_bad("tcp://h:1/a b", "contains a space");
    url_bad("tcp://h:1/a\x01", "contains a control character");
    url_bad("tcp://h:1/\xe2\x82\xac", "contains a non-ASCII byte");
}

Test(url, bad_authority)
{
    url_bad("", "empty");
    url_bad(NULL, "empty");
    url_bad("tcp://", "missing host");
    url_bad("tcp:///path", "missing host");
    url_bad("/path", "missing host");
    url_bad("tcp://h", "missing port");
    url_bad("tcp://h/x", "missing port");
    url_bad("tcp://h:/x", "missing port");
    url_bad("tcp://h:0", "port out of range");
    url_bad("tcp://h:65536/", "port out of range");
    url_bad("tcp://h:080x", "port is not a number");
    url_bad("tcp://::1:443/x", "IPv6 address must be in brackets");
    url_bad("tcp://[::1/x]:443", "missing ']'");
    url_bad("tcp://h:1?q", "port is not a number");
    url_bad(repeat('a', 1100, ""), "too long");
    cr_expect_eq(tt_url_parse("h:1", NULL, NULL), -EINVAL);
}

Test(url, user)
{
    tt_url u;
    cr_assert_eq(tt_url_parse("ssh://alice@example.com:22", &u, NULL), 0);
    cr_expect_str_eq(u.user, "alice");
    cr_expect_str_eq(u.hp.host, "example.com");
    cr_expect_eq(u.hp.port, 22);
    cr_assert_eq(tt_url_parse_ex("ssh://a.b_c-d9@[::1]/p", true, &u, NULL), 0);
    cr_expect_str_eq(u.user, "a.b_c-d9");
    cr_expect_str_eq(u.hp.host, "::1");
    cr_expect_eq(u.hp.port, 0);
    cr_expect_str_eq(u.path, "/p");
    cr_assert_eq(tt_url_parse_ex("ssh://myalias", true, &u, NULL), 0);
    cr_expect_str_eq(u.user, "");
    cr_expect_str_eq(u.hp.host, "myalias");
    /* The path may contain '@': only the authority has a user. */
    url_ok("wss://h:1/a@b", "wss", "h", 1, "/a@b");
    url_ok("u@h:1", "", "h", 1, "");

    url_bad("ssh://@h:1", "empty user before '@'");
    url_bad("ssh://u:pw@h:1", "a password in the URL is not supported");
    url_bad("ssh://a@b@h:1", "more than one '@'");
    url_bad("ssh://-oProxyCommand@h:1", "user must not start with '-'");
    url_bad("ssh://u%20@h:1", "bad character in user");
    url_bad("ssh://u@:1", "missing host");
    url_bad("ssh://u@", "missing host");
    char s[200];
    snprintf(s, sizeof s, "ssh://%s@h:1", repeat('u', 64, ""));
    cr_expect_eq(tt_url_parse(s, &u, NULL), 0);
    cr_expect_eq(strlen(u.user), 64);
    snprintf(s, sizeof s, "ssh://%s@h:1", repeat('u', 65, ""));
    url_bad(s, "user too long");
}

Test(url, host_length)
{
    char s[600];
    strcpy(s, "tcp://");
    strcat(s, long_name(255, ":7/p"));
    tt_url u;
    cr_assert_eq(tt_url_parse(s, &u, NULL), 0);
    cr_assert_eq(strlen(u.hp.host), 255);
    cr_assert_str_eq(u.path, "/p");

    strcpy(s, "tcp://");
    strcat(s, long_name(256, ":7/p"));
    url_bad(s, "host too long");
}

/* ---- CIDR parsing ------------------------------------------------------- */

static void cidr_ok(const char *s, int family, int prefix, const char *net)
{
    tt_cidr c;
    const char *why = NULL;
    int rc = tt_cidr_parse(s, &c, &why);
    cr_expect_eq(rc, 0, "\"%s\": rc %d (%s)", s, rc, why ? why : "-");
    if (rc != 0)
        return;
    cr_expect_eq(c.family, family, "\"%s\"", s);
    cr_expect_eq(c.prefix, prefix, "\"%s\"", s);
    uint8_t want[16] = {0};
    cr_assert_eq(inet_pton(family == 4 ? AF_INET : AF_INET6, net, want), 1);
    cr_expect_arr_eq(c.addr, want, family == 4 ? 4 : 16, "\"%s\"", s);
}

static void cidr_bad(const char *s, const char *want_why)
{
    const char *shown = s != NULL ? s : "(null)";
    tt_cidr c;
    memset(&c, 0x5a, sizeof c);
    tt_cidr before = c;
    const char *why = NULL;
    int rc = tt_cidr_parse(s, &c, &why);
    cr_expect_eq(rc, -EINVAL, "\"%s\": rc %d", shown, rc);
    cr_expect_str_eq(why ? why : "(null)", want_why, "\"%s\"", shown);
    cr_expect_eq(memcmp(&c, &before, sizeof c), 0, "\"%s\": output changed", shown);
}

Test(cidr_parse, valid)
{
    cidr_ok("10.0.0.0/8", 4, 8, "10.0.0.0");
    cidr_ok("0.0.0.0/0", 4, 0, "0.0.0.0");
    cidr_ok("1.2.3.4", 4, 32, "1.2.3.4");
    cidr_ok("1.2.3.4/32", 4, 32, "1.2.3.4");
    cidr_ok("1.2.3.4/31", 4, 31, "1.2.3.4");
    cidr_ok("1.2.3.128/25", 4, 25, "1.2.3.128");
    cidr_ok("100.64.0.0/10", 4, 10, "100.64.0.0");
    cidr_ok("10.0.0.0/008", 4, 8, "10.0.0.0");
    cidr_ok("::/0", 6, 0, "::");
    cidr_ok("::1", 6, 128, "::1");
    cidr_ok("::1/128", 6, 128, "::1");
    cidr_ok("fc00::/7", 6, 7, "fc00::");
    cidr_ok("FE80::/10", 6, 10, "fe80::");
    cidr_ok("2001:db8::/32", 6, 32, "2001:db8::");
    cidr_ok("::ffff:0:0/96", 6, 96, "::ffff:0:0");
    cidr_ok("::ffff:10.0.0.0/104", 6, 104, "::ffff:10.0.0.0");
    cidr_ok("2001:db8::/127", 6, 127, "2001:db8::");
    cidr_ok("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", 6, 128,
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

Test(cidr_parse, host_bits_set)
{
    cidr_bad("10.0.0.1/8", "host bits set");
    cidr_bad("1.2.3.5/31", "host bits set");
    cidr_bad("1.2.3.129/25", "host bits set");
    cidr_bad("128.0.0.0/0", "host bits set");
    cidr_bad("0.0.0.1/0", "host bits set");
    cidr_bad("100.96.0.0/10", "host bits set");
    cidr_bad("::1/127", "host bits set");
    cidr_bad("fd00::/7", "host bits set");
    cidr_bad("8000::/0", "host bits set");
    cidr_bad("2001:db8::1/64", "host bits set");
}

Test(cidr_parse, prefix_errors)
{
    cidr_bad("10.0.0.0/33", "prefix length out of range");
    cidr_bad("10.0.0.0/999", "prefix length out of range");
    cidr_bad("10.0.0.0/00000000000000000000000000000033", "prefix length out of range");
    cidr_bad("::/129", "prefix length out of range");
    cidr_bad("::/1000", "prefix length out of range");
    cidr_bad("10.0.0.0/", "missing prefix length");
    cidr_bad("10.0.0.0/x", "prefix length is not a number");
    cidr_bad("10.0.0.0/-8", "prefix length is not a number");
    cidr_bad("10.0.0.0/+8", "prefix length is not a number");
    cidr_bad("10.0.0.0/8/8", "prefix length is not a number");
    cidr_bad("fc00::/7x", "prefix length is not a number");
    cidr_bad("10.0.0.0/255.0.0.0", "prefix length is not a number");
}

Test(cidr_parse, address_errors)
{
    cidr_bad("", "empty");
    cidr_bad(NULL, "empty");
    cidr_bad("/", "missing address");
    cidr_bad("/8", "missing address");
    cidr_bad("//", "missing address");
    cidr_bad("10.0.0/8", "bad IPv4 address");
    cidr_bad("10.0.0.256/32", "bad IPv4 address");
    cidr_bad("010.0.0.0/8", "bad IPv4 address");
    cidr_bad("example.com/8", "bad IPv4 address");
    cidr_bad("gg::/16", "bad IPv6 address");
    cidr_bad("[::1]/128", "bad IPv6 address");
    cidr_bad("fe80::1%eth0/128", "bad IPv6 address");
    cidr_bad("1:2:3:4:5:6:7:8:9/128", "bad IPv6 address");
    cidr_bad("0000:0000:0000:0000:0000:0000:0000:0000:0/64", "bad IPv6 address");
    cidr_bad("10.0.0.0 /8", "contains a space");
    cidr_bad("10.0.0.0/8\n", "contains a control character");
    cidr_bad(repeat('1', 65, ""), "too long");
    cidr_bad(repeat('1', 5000, ""), "too long");
    cr_expect_eq(tt_cidr_parse("::/0", NULL, NULL), -EINVAL);
}

/* ---- CIDR containment --------------------------------------------------- */

static tt_cidr cidr(const char *s)
{
    tt_cidr c;
    const char *why = NULL;
    cr_assert_eq(tt_cidr_parse(s, &c, &why), 0, "\"%s\": %s", s, why ? why : "-");
    return c;
}

static bool in4(const char *range, const char *ip)
{
    tt_cidr c = cidr(range);
    uint8_t a[4];
    cr_assert_eq(inet_pton(AF_INET, ip, a), 1, "%s", ip);
    return tt_cidr_contains(&c, 4, a);
}

static bool in6(const char *range, const char *ip)
{
    tt_cidr c = cidr(range);
    uint8_t a[16];
    cr_assert_eq(inet_pton(AF_INET6, ip, a), 1, "%s", ip);
    return tt_cidr_contains(&c, 6, a);
}

Test(cidr_contains, v4_prefix_0)
{
    cr_expect(in4("0.0.0.0/0", "0.0.0.0"));
    cr_expect(in4("0.0.0.0/0", "127.0.0.1"));
    cr_expect(in4("0.0.0.0/0", "255.255.255.255"));
}

Test(cidr_contains, v4_prefix_1)
{
    cr_expect(in4("128.0.0.0/1", "128.0.0.0"));
    cr_expect(in4("128.0.0.0/1", "255.255.255.255"));
    cr_expect_not(in4("128.0.0.0/1", "127.255.255.255"));
    cr_expect(in4("0.0.0.0/1", "127.255.255.255"));
    cr_expect_not(in4("0.0.0.0/1", "128.0.0.0"));
}

Test(cidr_contains, v4_prefix_31_and_32)
{
    cr_expect(in4("10.0.0.0/31", "10.0.0.0"));
    cr_expect(in4("10.0.0.0/31", "10.0.0.1"));
    cr_expect_not(in4("10.0.0.0/31", "10.0.0.2"));
    cr_expect_not(in4("10.0.0.2/31", "10.0.0.1"));
    cr_expect_not(in4("10.0.0.0/31", "9.255.255.255"));
    cr_expect(in4("10.0.0.1/32", "10.0.0.1"));
    cr_expect(in4("10.0.0.1", "10.0.0.1"));
    cr_expect_not(in4("10.0.0.1/32", "10.0.0.0"));
    cr_expect_not(in4("10.0.0.1/32", "10.0.0.2"));
    cr_expect_not(in4("10.0.0.1/32", "138.0.0.1"));
}

Test(cidr_contains, v4_mid_byte_prefixes)
{
    cr_expect(in4("100.64.0.0/10", "100.64.0.0"));
    cr_expect(in4("100.64.0.0/10", "100.127.255.255"));
    cr_expect_not(in4("100.64.0.0/10", "100.63.255.255"));
    cr_expect_not(in4("100.64.0.0/10", "100.128.0.0"));
    cr_expect(in4("172.16.0.0/12", "172.31.255.255"));
    cr_expect_not(in4("172.16.0.0/12", "172.32.0.0"));
    cr_expect(in4("198.18.0.0/15", "198.19.1.1"));
    cr_expect_not(in4("198.18.0.0/15", "198.20.0.0"));
    cr_expect_not(in4("1.2.2.0/23", "1.2.4.0"));
    cr_expect_not(in4("1.2.2.0/23", "1.2.1.255"));
    cr_expect(in4("1.2.2.0/23", "1.2.3.255"));
}

Test(cidr_contains, v6_prefix_0_and_1)
{
    cr_expect(in6("::/0", "::"));
    cr_expect(in6("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect(in6("8000::/1", "8000::"));
    cr_expect(in6("8000::/1", "ffff::1"));
    cr_expect_not(in6("8000::/1", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect(in6("::/1", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect_not(in6("::/1", "8000::"));
}

Test(cidr_contains, v6_prefix_127_and_128)
{
    cr_expect(in6("2001:db8::/127", "2001:db8::"));
    cr_expect(in6("2001:db8::/127", "2001:db8::1"));
    cr_expect_not(in6("2001:db8::/127", "2001:db8::2"));
    cr_expect_not(in6("2001:db8::2/127", "2001:db8::1"));
    cr_expect(in6("::1/128", "::1"));
    cr_expect(in6("::1", "::1"));
    cr_expect_not(in6("::1/128", "::"));
    cr_expect_not(in6("::1/128", "::3"));
    cr_expect_not(in6("::1/128", "8000::1"));
}

Test(cidr_contains, v6_mid_byte_prefixes)
{
    cr_expect(in6("fc00::/7", "fc00::"));
    cr_expect(in6("fc00::/7", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect_not(in6("fc00::/7", "fe00::"));
    cr_expect_not(in6("fc00::/7", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect(in6("fe80::/10", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect_not(in6("fe80::/10", "fec0::"));
    cr_expect(in6("2001:db8::/33", "2001:db8:7fff::1"));
    cr_expect_not(in6("2001:db8::/33", "2001:db8:8000::"));
}

Test(cidr_contains, families_never_mix)
{
    tt_cidr all4 = cidr("0.0.0.0/0");
    tt_cidr all6 = cidr("::/0");
    uint8_t z[16] = {0};
    cr_expect_not(tt_cidr_contains(&all4, 6, z));
    cr_expect_not(tt_cidr_contains(&all6, 4, z));
    /* Socket-API family numbers are not the 4/6 that the contract uses. */
    cr_expect_not(tt_cidr_contains(&all4, AF_INET, z));
    cr_expect_not(tt_cidr_contains(&all6, AF_INET6, z));
    cr_expect_not(tt_cidr_contains(&all4, 0, z));
    cr_expect_not(tt_cidr_contains(NULL, 4, z));
    cr_expect_not(tt_cidr_contains(&all4, 4, NULL));
}

Test(cidr_contains, impossible_prefix_matches_nothing)
{
    tt_cidr c = {.family = 4, .prefix = 33};
    uint8_t z[16] = {0};
    cr_expect_not(tt_cidr_contains(&c, 4, z));
    tt_cidr d = {.family = 6, .prefix = 200};
    cr_expect_not(tt_cidr_contains(&d, 6, z));
    tt_cidr e = {.family = 5, .prefix = 0};
    cr_expect_not(tt_cidr_contains(&e, 5, z));
}

/* ---- embedded IPv4 ------------------------------------------------------ */

static void embeds(const char *v6text, const char *v4text)
{
    uint8_t v6[16], v4[4], want[4];
    memset(v4, 0xee, sizeof v4);
    cr_assert_eq(inet_pton(AF_INET6, v6text, v6), 1, "%s", v6text);
    bool got = tt_addr_embedded_v4(v6, v4);
    if (v4text == NULL) {
        cr_expect_not(got, "%s should embed nothing", v6text);
        return;
    }
    cr_assert_eq(inet_pton(AF_INET, v4text, want), 1, "%s", v4text);
    cr_expect(got, "%s should embed %s", v6text, v4text);
    cr_expect_arr_eq(v4, want, 4, "%s should embed %s", v6text, v4text);
}

Test(embedded_v4, mapped_and_compatible)
{
    embeds("::ffff:127.0.0.1", "127.0.0.1");
    embeds("::ffff:10.0.0.1", "10.0.0.1");
    embeds("::ffff:0.0.0.0", "0.0.0.0");
    embeds("::1.2.3.4", "1.2.3.4");
    embeds("::127.0.0.1", "127.0.0.1");
    embeds("::2", "0.0.0.2");
    embeds("::1:0", "0.1.0.0");
    embeds("::", NULL);
    embeds("::1", NULL);
    embeds("::fffe:1.2.3.4", NULL);
    embeds("1::ffff:1.2.3.4", NULL);
}

Test(embedded_v4, translated)
{
    /* SIIT's IPv4-translated form, ::ffff:0:a.b.c.d (RFC 2765). */
    embeds("::ffff:0:7f00:1", "127.0.0.1");
    embeds("::ffff:0:1.2.3.4", "1.2.3.4");
    embeds("::ffff:0:0.0.0.0", "0.0.0.0");
    embeds("::ffff:1:7f00:1", NULL);
    embeds("::fffe:0:7f00:1", NULL);
    embeds("::1:ffff:0:7f00:1", NULL);
    embeds("1::ffff:0:7f00:1", NULL);
}

Test(embedded_v4, nat64)
{
    embeds("64:ff9b::a00:1", "10.0.0.1");
    embeds("64:ff9b::127.0.0.1", "127.0.0.1");
    embeds("64:ff9b::5db8:d822", "93.184.216.34");
    embeds("64:ff9b:1::7f00:1", "127.0.0.1");
    embeds("64:ff9b:1:ffff::a9fe:a9fe", "169.254.169.254");
    embeds("64:ff9b:2::a00:1", NULL);
    embeds("64:ff9b:0:0:1::a00:1", NULL);
    embeds("64:ff9a::a00:1", NULL);
}

Test(embedded_v4, six_to_four)
{
    embeds("2002:7f00:1::1", "127.0.0.1");
    embeds("2002:a9fe:a9fe:1:2:3:4:5", "169.254.169.254");
    embeds("2002:5db8:d822::", "93.184.216.34");
    embeds("2003:7f00:1::1", NULL);
}

Test(embedded_v4, teredo)
{
    /* The client address is stored inverted: 127.0.0.1 is 80ff:fffe. */
    embeds("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1");
    embeds("2001::ffff:ffff", "0.0.0.0");
    embeds("2001:0:4136:e378:8000:63bf:a247:27dd", "93.184.216.34");
    embeds("2001:db8::1", NULL);
    embeds("2001:1::80ff:fffe", NULL);
}

Test(embedded_v4, plain_ipv6)
{
    embeds("2606:4700::1", NULL);
    embeds("fe80::1", NULL);
    embeds("ff02::1", NULL);
    cr_expect_not(tt_addr_embedded_v4(NULL, (uint8_t[4]){0}));
}

/* ---- sockaddr formatting ------------------------------------------------ */

Test(sockaddr_format, ipv4)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8080)};
    cr_assert_eq(inet_pton(AF_INET, "192.0.2.1", &in.sin_addr), 1);
    char buf[64];
    cr_assert_eq(tt_sockaddr_format((const struct sockaddr *)&in, buf, sizeof buf), buf);
    cr_assert_str_eq(buf, "192.0.2.1:8080");
}

Test(sockaddr_format, ipv6)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    cr_assert_eq(inet_pton(AF_INET6, "::1", &in6.sin6_addr), 1);
    char buf[64];
    tt_sockaddr_format((const struct sockaddr *)&in6, buf, sizeof buf);
    cr_assert_str_eq(buf, "[::1]:443");

    cr_assert_eq(inet_pton(AF_INET6, "2001:db8::ffff:1", &in6.sin6_addr), 1);
    in6.sin6_port = htons(65535);
    tt_sockaddr_format((const struct sockaddr *)&in6, buf, sizeof buf);
    cr_assert_str_eq(buf, "[2001:db8::ffff:1]:65535");
}

Test(sockaddr_format, ipv6_scope)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
    cr_assert_eq(inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr), 1);
    in6.sin6_scope_id = 2;
    char buf[64];
    tt_sockaddr_format((const struct sockaddr *)&in6, buf, sizeof buf);
    cr_assert_str_eq(buf, "[fe80::1%2]:80");
}

Test(sockaddr_format, longest_fits_and_truncation)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(65535)};
    cr_assert_eq(
        inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &in6.sin6_addr), 1);
    char buf[INET6_ADDRSTRLEN + 8];
    tt_sockaddr_format((const struct sockaddr *)&in6, buf, sizeof buf);
    cr_assert_str_eq(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

    char small[8];
    memset(small, 'X', sizeof small);
    tt_sockaddr_format((const struct sockaddr *)&in6, small, 4);
    cr_assert_str_eq(small, "[ff");
    cr_assert_eq(small[4], 'X');

    char none[2] = "q";
    cr_assert_eq(tt_sockaddr_format((const struct sockaddr *)&in6, none, 0), none);
    cr_assert_eq(none[0], 'q');
}

Test(sockaddr_format, other_families)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char buf[64];
    tt_sockaddr_format((const struct sockaddr *)&un, buf, sizeof buf);
    cr_assert_str_eq(buf, "(address family 1)");
    tt_sockaddr_format(NULL, buf, sizeof buf);
    cr_assert_str_eq(buf, "(none)");
}
