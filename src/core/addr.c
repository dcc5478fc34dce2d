#include "core/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* The longest text any parser here looks at. A URL is at most a 15-byte
 * scheme, "://", a bracketed 255-byte host, ':', a port and a 255-byte path,
 * well under this; the limit exists so that a runaway argument is refused with
 * a clear message after a bounded scan instead of being walked to its end. */
#define TEXT_MAX 1024

/* A CIDR is at most an IPv6 literal (45 bytes), '/' and three digits; the
 * limit leaves room for a few leading zeros in the prefix length. */
#define CIDR_TEXT_MAX 64

/* RFC 1035 limits one label of a DNS name to 63 bytes. */
#define LABEL_MAX 63

static int fail(const char **why, const char *phrase)
{
    if (why != NULL)
        *why = phrase;
    return -EINVAL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Measures S with a bounded scan and refuses empty or over-long text and any
 * space, control or non-ASCII byte. Doing this once up front means every
 * later error message is about structure, and a stray tab or newline is
 * reported as what it is rather than as, say, a bad port. */
static int check_text(const char *s, size_t max, size_t *len, const char **why)
{
    if (s == NULL)
        return fail(why, "empty");
    size_t n = strnlen(s, max + 1);
    if (n == 0)
        return fail(why, "empty");
    if (n > max)
        return fail(why, "too long");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ')
            return fail(why, "contains a space");
        if (c < 0x20 || c == 0x7f)
            return fail(why, "contains a control character");
        if (c >= 0x80)
            return fail(why, "contains a non-ASCII byte");
    }
    *len = n;
    return 0;
}

/* Parses N bytes at P as a decimal port. Only digits are accepted, so signs,
 * blanks and trailing junk all fail, whatever the value before them; the value
 * is checked after every digit, so no amount of digits can overflow. */
static int parse_port(const char *p, size_t n, bool allow_zero, uint16_t *out, const char **why)
{
    if (n == 0)
        return fail(why, "missing port");
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return fail(why, "port is not a number");
    }
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (unsigned long)(p[i] - '0');
        if (v > 65535)
            return fail(why, "port out of range");
    }
    if (v == 0 && !allow_zero)
        return fail(why, "port out of range");
    *out = (uint16_t)v;
    return 0;
}

/* Checks N bytes at H as the inside of "[...]" and copies it to OUT. */
static int check_v6_host(const char *h, size_t n, char out[TT_HOST_MAX + 1], const char **why)
{
    char buf[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    if (n == 0)
        return fail(why, "missing host");
    if (n >= sizeof buf)
        return fail(why, "bad IPv6 address");
    memcpy(buf, h, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET6, buf, bin) != 1)
        return fail(why, "bad IPv6 address");
    memcpy(out, buf, n + 1);
    return 0;
}

/* True when the last label of NAME looks numeric: all digits, or "0x" and hex
 * digits. Such a name is no DNS name (no top-level domain is numeric), but
 * many resolvers would read it as an IPv4 address in a legacy form such as
 * "127.1" or "0x7f000001", so it is refused rather than passed on. */
static bool last_label_numeric(const char *name, size_t n)
{
    if (n > 0 && name[n - 1] == '.')
        n--;
    size_t start = n;
    while (start > 0 && name[start - 1] != '.')
        start--;
    const char *l = name + start;
    size_t ln = n - start;
    if (ln == 0)
        return false;
    size_t i = 0;
    bool hex = ln > 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X');
    if (hex)
        i = 2;
    for (; i < ln; i++) {
        if (hex ? !is_hex(l[i]) : !is_digit(l[i]))
            return false;
    }
    return true;
}

/* Checks N bytes at H as an unbracketed host (an IPv4 literal or a DNS name)
 * and copies it to OUT. */
static int check_plain_host(const char *h, size_t n, char out[TT_HOST_MAX + 1], const char **why)
{
    if (n == 0)
        return fail(why, "missing host");
    if (n > TT_HOST_MAX)
        return fail(why, "host too long");
    if (memchr(h, ':', n) != NULL)
        return fail(why, "IPv6 address must be in brackets");

    char buf[TT_HOST_MAX + 1];
    memcpy(buf, h, n);
    buf[n] = '\0';
    unsigned char bin[4];
    if (inet_pton(AF_INET, buf, bin) == 1) {
        memcpy(out, buf, n + 1);
        return 0;
    }

    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (c == '.') {
            /* An empty label (leading dot or "..") is always a typo; a single
             * trailing dot is the legitimate fully-qualified form. */
            if (label == 0)
                return fail(why, "empty label in host name");
            label = 0;
            continue;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
            return fail(why, "bad character in host");
        if (++label > LABEL_MAX)
            return fail(why, "host name label too long");
    }
    if (last_label_numeric(buf, n))
        return fail(why, "bad IPv4 address");
    memcpy(out, buf, n + 1);
    return 0;
}

/* Parses N bytes at S (already through check_text) as "HOST:PORT" or
 * "[IPV6]:PORT" into OUT, which is written only on success. */
static int split_hostport(const char *s, size_t n, bool allow_zero, bool port_optional,
                          tt_hostport *out, const char **why)
{
    tt_hostport tmp;
    memset(&tmp, 0, sizeof tmp);
    const char *port;
    size_t port_len;
    int rc;

    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return fail(why, "missing ']'");
        const char *rest = close + 1;
        size_t rest_len = n - (size_t)(rest - s);
        if (rest_len == 0 && port_optional) {
            rc = check_v6_host(s + 1, (size_t)(close - (s + 1)), tmp.host, why);
            if (rc == 0)
                *out = tmp;
            return rc;
        }
        if (rest_len == 0)
            return fail(why, "missing port");
        if (rest[0] != ':')
            return fail(why, "expected ':' after ']'");
        rc = check_v6_host(s + 1, (size_t)(close - (s + 1)), tmp.host, why);
        if (rc != 0)
            return rc;
        port = rest + 1;
        port_len = rest_len - 1;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon == NULL && port_optional) {
            rc = check_plain_host(s, n, tmp.host, why);
            if (rc == 0)
                *out = tmp;
            return rc;
        }
        if (colon == NULL)
            return fail(why, "missing port");
        port = colon + 1;
        port_len = n - (size_t)(port - s);
        /* A second colon means an IPv6 literal without brackets; guessing
         * which colon starts the port would silently pick the wrong one for
         * "::1:443", so it is an error. */
        if (memchr(port, ':', port_len) != NULL)
            return fail(why, "IPv6 address must be in brackets");
        rc = check_plain_host(s, (size_t)(colon - s), tmp.host, why);
        if (rc != 0)
            return rc;
    }
    rc = parse_port(port, port_len, allow_zero, &tmp.port, why);
    if (rc != 0)
        return rc;
    *out = tmp;
    return 0;
}

int tt_hostport_parse(const char *s, tt_hostport *out, const char **why)
{
    size_t n;
    if (out == NULL)
        return fail(why, "no output");
    int rc = check_text(s, TEXT_MAX, &n, why);
    if (rc != 0)
        return rc;
    return split_hostport(s, n, false, false, out, why);
}

/* Fills OUT->host from the caller's default, which may be an IPv6 literal
 * with or without brackets ("::" is the usual way to write "any"). */
static int set_default_host(const char *h, tt_hostport *out, const char **why)
{
    size_t n;
    if (h == NULL)
        return fail(why, "missing host");
    int rc = check_text(h, TT_HOST_MAX + 2, &n, why);
    if (rc != 0)
        return rc;
    if (h[0] == '[') {
        if (n < 2 || h[n - 1] != ']')
            return fail(why, "missing ']'");
        return check_v6_host(h + 1, n - 2, out->host, why);
    }
    if (memchr(h, ':', n) != NULL)
        return check_v6_host(h, n, out->host, why);
    return check_plain_host(h, n, out->host, why);
}

int tt_listen_parse(const char *s, const char *default_host, bool allow_zero, tt_hostport *out,
                    const char **why)
{
    size_t n;
    if (out == NULL)
        return fail(why, "no output");
    int rc = check_text(s, TEXT_MAX, &n, why);
    if (rc != 0)
        return rc;

    /* Only digits: a bare port on the default host. */
    size_t digits = 0;
    while (digits < n && is_digit(s[digits]))
        digits++;
    if (digits < n)
        return split_hostport(s, n, allow_zero, false, out, why);

    tt_hostport tmp;
    memset(&tmp, 0, sizeof tmp);
    rc = parse_port(s, n, allow_zero, &tmp.port, why);
    if (rc != 0)
        return rc;
    rc = set_default_host(default_host, &tmp, why);
    if (rc != 0)
        return rc;
    *out = tmp;
    return 0;
}

/* Checks N bytes at S as a URL scheme and stores it lower-cased in OUT. */
static int parse_scheme(const char *s, size_t n, char out[TT_SCHEME_MAX + 1], const char **why)
{
    if (n == 0)
        return fail(why, "missing scheme");
    if (n > TT_SCHEME_MAX)
        return fail(why, "scheme too long");
    if (!is_alpha(s[0]))
        return fail(why, "scheme must start with a letter");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return fail(why, "bad character in scheme");
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return 0;
}

/* Checks N bytes at S as the user of "USER@HOST" and copies it to OUT. The
 * characters are those of user names on Unix systems; a leading '-' is
 * refused so that the name can never pass for an option of a program it is
 * handed to (ssh -l USER). */
static int parse_user(const char *s, size_t n, char out[TT_USER_MAX + 1], const char **why)
{
    if (n == 0)
        return fail(why, "empty user before '@'");
    if (memchr(s, ':', n) != NULL)
        return fail(why, "a password in the URL is not supported");
    if (memchr(s, '@', n) != NULL)
        return fail(why, "more than one '@'");
    if (n > TT_USER_MAX)
        return fail(why, "user too long");
    if (s[0] == '-')
        return fail(why, "user must not start with '-'");
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '.' && c != '_' && c != '-')
            return fail(why, "bad character in user");
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int tt_url_parse_ex(const char *s, bool port_optional, tt_url *out, const char **why)
{
    size_t n;
    if (out == NULL)
        return fail(why, "no output");
    int rc = check_text(s, TEXT_MAX, &n, why);
    if (rc != 0)
        return rc;

    tt_url tmp;
    memset(&tmp, 0, sizeof tmp);
    const char *auth = s;

    /* "://" introduces a scheme only when it comes before any other '/': a
     * path may legitimately contain "://" (a proxied URL, say), and the path
     * is the first thing after the authority to contain a '/'. */
    const char *sep = strstr(s, "://");
    if (sep != NULL && strchr(s, '/') == sep + 1) {
        rc = parse_scheme(s, (size_t)(sep - s), tmp.scheme, why);
        if (rc != 0)
            return rc;
        auth = sep + 3;
    }

    const char *path = strchr(auth, '/');
    size_t auth_len = path != NULL ? (size_t)(path - auth) : strlen(auth);
    /* The last '@' ends the user, so that "a@b@host" is reported as a user
     * with two '@' rather than as a strange host. */
    const char *at = NULL;
    for (size_t i = auth_len; i > 0 && at == NULL; i--) {
        if (auth[i - 1] == '@')
            at = auth + i - 1;
    }
    if (at != NULL) {
        rc = parse_user(auth, (size_t)(at - auth), tmp.user, why);
        if (rc != 0)
            return rc;
        auth_len -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    if (auth_len == 0)
        return fail(why, "missing host");
    rc = split_hostport(auth, auth_len, false, port_optional, &tmp.hp, why);
    if (rc != 0)
        return rc;

    if (path != NULL) {
        /* check_text has already refused spaces, control and non-ASCII
         * bytes, so what remains is printable ASCII; only length is left. */
        size_t path_len = strlen(path);
        if (path_len > TT_PATH_MAX)
            return fail(why, "path too long");
        memcpy(tmp.path, path, path_len + 1);
    }
    *out = tmp;
    return 0;
}

int tt_cidr_parse(const char *s, tt_cidr *out, const char **why)
{
    size_t n;
    if (out == NULL)
        return fail(why, "no output");
    int rc = check_text(s, CIDR_TEXT_MAX, &n, why);
    if (rc != 0)
        return rc;

    tt_cidr tmp;
    memset(&tmp, 0, sizeof tmp);
    const char *slash = memchr(s, '/', n);
    size_t addr_len = slash != NULL ? (size_t)(slash - s) : n;
    if (addr_len == 0)
        return fail(why, "missing address");

    char buf[INET6_ADDRSTRLEN];
    bool v6 = memchr(s, ':', addr_len) != NULL;
    if (addr_len >= sizeof buf)
        return fail(why, v6 ? "bad IPv6 address" : "bad IPv4 address");
    memcpy(buf, s, addr_len);
    buf[addr_len] = '\0';
    if (v6) {
        if (inet_pton(AF_INET6, buf, tmp.addr) != 1)
            return fail(why, "bad IPv6 address");
        tmp.family = 6;
    } else {
        if (inet_pton(AF_INET, buf, tmp.addr) != 1)
            return fail(why, "bad IPv4 address");
        tmp.family = 4;
    }
    unsigned bits = tmp.family == 4 ? 32 : 128;

    unsigned prefix = bits;
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t pn = n - addr_len - 1;
        if (pn == 0)
            return fail(why, "missing prefix length");
        for (size_t i = 0; i < pn; i++) {
            if (!is_digit(p[i]))
                return fail(why, "prefix length is not a number");
        }
        /* Checked per digit, so a long run of digits cannot overflow. */
        prefix = 0;
        for (size_t i = 0; i < pn; i++) {
            prefix = prefix * 10 + (unsigned)(p[i] - '0');
            if (prefix > bits)
                return fail(why, "prefix length out of range");
        }
    }
    tmp.prefix = (uint8_t)prefix;

    for (unsigned i = prefix; i < bits; i++) {
        if (tmp.addr[i / 8] & (0x80u >> (i % 8)))
            return fail(why, "host bits set");
    }
    *out = tmp;
    return 0;
}

bool tt_cidr_contains(const tt_cidr *c, int family, const uint8_t *addr)
{
    if (c == NULL || addr == NULL || family != c->family)
        return false;
    unsigned bits;
    if (family == 4)
        bits = 32;
    else if (family == 6)
        bits = 128;
    else
        return false;
    /* A prefix longer than the family allows comes from no parser. Such a
     * range matches nothing, which also keeps the byte comparison below
     * within the address. */
    if (c->prefix > bits)
        return false;

    unsigned full = c->prefix / 8;
    unsigned rem = c->prefix % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rem != 0) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rem));
        if (((c->addr[full] ^ addr[full]) & mask) != 0)
            return false;
    }
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

bool tt_addr_embedded_v4(const uint8_t v6[16], uint8_t v4[4])
{
    static const uint8_t nat64_wkp[12] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};

    if (v6 == NULL || v4 == NULL)
        return false;

    /* IPv4-mapped ::ffff:a.b.c.d: what a dual-stack socket sends as IPv4. */
    if (all_zero(v6, 10) && v6[10] == 0xff && v6[11] == 0xff) {
        memcpy(v4, v6 + 12, 4);
        return true;
    }
    /* IPv4-translated ::ffff:0:a.b.c.d (SIIT, RFC 2765): a translator on the
     * path turns it into a.b.c.d, as NAT64 does its prefix below. RFC 6145
     * dropped the form, but nothing stops a translator from still using it. */
    if (all_zero(v6, 8) && v6[8] == 0xff && v6[9] == 0xff && v6[10] == 0 && v6[11] == 0) {
        memcpy(v4, v6 + 12, 4);
        return true;
    }
    /* IPv4-compatible ::a.b.c.d (deprecated, but some stacks still route it).
     * :: and ::1 are the unspecified and loopback addresses, not IPv4. */
    if (all_zero(v6, 12)) {
        if (all_zero(v6 + 12, 3) && v6[15] <= 1)
            return false;
        memcpy(v4, v6 + 12, 4);
        return true;
    }
    /* NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits. */
    if (memcmp(v6, nat64_wkp, sizeof nat64_wkp) == 0) {
        memcpy(v4, v6 + 12, 4);
        return true;
    }
    /* NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215). The operator picks
     * the translation prefix inside it; the address is read the way the
     * well-known prefix is, from the last 32 bits, which is the layout of
     * the /96 prefixes that translators use in practice. */
    if (memcmp(v6, nat64_local, sizeof nat64_local) == 0) {
        memcpy(v4, v6 + 12, 4);
        return true;
    }
    /* 6to4 2002:AABB:CCDD::/48 (RFC 3056): the IPv4 address is bits 16..47. */
    if (v6[0] == 0x20 && v6[1] == 0x02) {
        memcpy(v4, v6 + 2, 4);
        return true;
    }
    /* Teredo 2001:0::/32 (RFC 4380): the client's address is the last 32
     * bits, inverted. */
    if (v6[0] == 0x20 && v6[1] == 0x01 && v6[2] == 0x00 && v6[3] == 0x00) {
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)(v6[12 + i] ^ 0xffu);
        return true;
    }
    return false;
}

const char *tt_url_format(const char *scheme, const char *user, const char *host, unsigned port,
                          const char *path, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return buf;
    char portbuf[12] = "";
    if (port)
        snprintf(portbuf, sizeof portbuf, ":%u", port);
    bool v6 = strchr(host, ':') != NULL;
    bool has_user = user && *user;
    snprintf(buf, len, "%s://%s%s%s%s%s%s%s", scheme, has_user ? user : "", has_user ? "@" : "",
             v6 ? "[" : "", host, v6 ? "]" : "", portbuf, path ? path : "");
    return buf;
}

const char *tt_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return buf;
    if (sa == NULL) {
        snprintf(buf, len, "(none)");
        return buf;
    }

    /* The address is copied into a correctly typed local so that a
     * struct sockaddr that is only byte-aligned is never read through a
     * wider type. */
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        if (inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip) != NULL) {
            snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(in.sin_port));
            return buf;
        }
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        if (inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip) != NULL) {
            if (in6.sin6_scope_id != 0)
                snprintf(buf, len, "[%s%%%u]:%u", ip, (unsigned)in6.sin6_scope_id,
                         (unsigned)ntohs(in6.sin6_port));
            else
                snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(in6.sin6_port));
            return buf;
        }
    }
    snprintf(buf, len, "(address family %u)", (unsigned)sa->sa_family);
    return buf;
}

int tt_url_parse(const char *s, tt_url *out, const char **why)
{
    return tt_url_parse_ex(s, false, out, why);
}
