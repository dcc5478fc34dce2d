#include "codec/resolvconf.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

/* Longer than any line with an address on it; a longer line is skipped. */
#define LINE_MAX_LEN 256

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Reads the address of one "nameserver" line's argument (LINE, N bytes,
 * after the keyword) into *NS. Returns true when it is one. */
static bool parse_addr(const char *arg, size_t n, tt_resolvconf_ns *ns)
{
    size_t i = 0;
    while (i < n && is_space(arg[i]))
        i++;
    size_t j = i;
    while (j < n && !is_space(arg[j]) && arg[j] != '#' && arg[j] != ';')
        j++;
    char buf[INET6_ADDRSTRLEN + 1];
    size_t alen = j - i;
    const char *pct = memchr(arg + i, '%', alen);
    if (pct != NULL)
        alen = (size_t)(pct - (arg + i));
    if (alen == 0 || alen >= sizeof buf)
        return false;
    memcpy(buf, arg + i, alen);
    buf[alen] = '\0';
    memset(ns, 0, sizeof *ns);
    if (inet_pton(AF_INET, buf, ns->addr) == 1) {
        ns->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, buf, ns->addr) == 1) {
        ns->family = 6;
        return true;
    }
    return false;
}

static bool seen(const tt_resolvconf_ns *out, size_t n, const tt_resolvconf_ns *ns)
{
    for (size_t i = 0; i < n; i++)
        if (out[i].family == ns->family && memcmp(out[i].addr, ns->addr, 16) == 0)
            return true;
    return false;
}

size_t tt_resolvconf_parse(const char *text, size_t len, tt_resolvconf_ns out[TT_RESOLVCONF_MAX_NS])
{
    static const char kw[] = "nameserver";
    const size_t kwlen = sizeof kw - 1;
    if (len > TT_RESOLVCONF_MAX)
        len = TT_RESOLVCONF_MAX;
    size_t n = 0;
    size_t p = 0;
    while (p < len && n < TT_RESOLVCONF_MAX_NS) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *line = text + p;
        size_t llen = end - p;
        p = end + 1;
        if (llen > LINE_MAX_LEN)
            continue;
        size_t i = 0;
        while (i < llen && is_space(line[i]))
            i++;
        if (llen - i <= kwlen || memcmp(line + i, kw, kwlen) != 0 || !is_space(line[i + kwlen]))
            continue;
        tt_resolvconf_ns ns;
        if (parse_addr(line + i + kwlen, llen - i - kwlen, &ns) && !seen(out, n, &ns))
            out[n++] = ns;
    }
    return n;
}
