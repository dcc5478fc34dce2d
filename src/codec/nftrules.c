#include "codec/nftrules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* An output buffer that remembers whether anything did not fit, so the
 * formatting reads as a list of lines and is checked once at the end. */
typedef struct out {
    char *buf;
    size_t len, used;
    bool full;
} out;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
put(out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->used) {
        o->full = true;
        return;
    }
    o->used += (size_t)n;
}

/* "ip daddr 10.0.0.0/8" or "ip6 daddr fd00::/8". */
static void put_daddr(out *o, const tt_cidr *c)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, ip, sizeof ip);
    put(o, "%s daddr %s/%u", c->family == 4 ? "ip" : "ip6", ip, (unsigned)c->prefix);
}

/* The --dns rules: the mark first, so tt's own connections pass even if
 * the carrier's server listens on a nameserver's port 53. */
static void put_dns(out *o, const tt_nftrules *r)
{
    if (r->mark != 0)
        put(o, "\t\tmeta mark 0x%08x return\n", (unsigned)r->mark);
    for (size_t i = 0; i < r->n_dns; i++) {
        bool v6 = r->dns[i].family == 6;
        uint16_t ports[2] = {v6 ? r->dns_udp6 : r->dns_udp4, v6 ? r->dns_tcp6 : r->dns_tcp4};
        for (int t = 0; t < 2; t++) {
            if (ports[t] == 0)
                continue;
            put(o, "\t\t");
            put_daddr(o, &r->dns[i]);
            put(o, " %s dport 53 redirect to :%u\n", t ? "tcp" : "udp", (unsigned)ports[t]);
        }
    }
}

static void put_chain(out *o, const tt_nftrules *r, const char *name, bool output)
{
    put(o, "\tchain %s {\n", name);
    put(o, "\t\ttype nat hook %s priority -100; policy accept;\n", name);
    if (output && r->n_dns > 0)
        put_dns(o, r);
    put(o, "\t\tmeta l4proto != tcp return\n");
    if (output && r->mark != 0)
        put(o, "\t\tmeta mark 0x%08x return\n", (unsigned)r->mark);
    put(o, "\t\tfib daddr type local return\n");
    put(o, "\t\tip daddr 127.0.0.0/8 return\n");
    put(o, "\t\tip6 daddr ::1 return\n");
    for (size_t i = 0; i < r->n_carrier; i++) {
        put(o, "\t\t");
        put_daddr(o, &r->carrier[i].addr);
        if (r->carrier[i].port != 0)
            put(o, " tcp dport %u", (unsigned)r->carrier[i].port);
        put(o, " return\n");
    }
    for (size_t i = 0; i < r->n_exclude; i++) {
        put(o, "\t\t");
        put_daddr(o, &r->exclude[i]);
        put(o, " return\n");
    }
    for (size_t i = 0; i < r->n_redirect; i++) {
        uint16_t port = r->redirect[i].family == 4 ? r->port4 : r->port6;
        if (port == 0)
            continue;
        put(o, "\t\tmeta l4proto tcp ");
        put_daddr(o, &r->redirect[i]);
        put(o, " redirect to :%u\n", (unsigned)port);
    }
    put(o, "\t}\n");
}

static int finish(out *o)
{
    if (o->full) {
        if (o->len > 0)
            o->buf[0] = '\0';
        return -ENOSPC;
    }
    return (int)o->used;
}

int tt_nftrules_format(const tt_nftrules *r, char *buf, size_t len)
{
    out o = {buf, len, 0, len == 0};
    put(&o, "table inet tt_%lu {\n", r->id);
    if (r->owner)
        put(&o, "\tflags owner;\n");
    put_chain(&o, r, "output", true);
    if (r->forwarded)
        put_chain(&o, r, "prerouting", false);
    put(&o, "}\n");
    return finish(&o);
}

int tt_nftrules_format_delete(const tt_nftrules *r, char *buf, size_t len)
{
    out o = {buf, len, 0, len == 0};
    put(&o, "delete table inet tt_%lu\n", r->id);
    return finish(&o);
}

bool tt_nftrules_cidr_is_loopback(const tt_cidr *c)
{
    static const uint8_t v6_loop[16] = {[15] = 1};
    if (c->family == 4)
        return c->prefix >= 8 && c->addr[0] == 127;
    return c->prefix == 128 && memcmp(c->addr, v6_loop, 16) == 0;
}
