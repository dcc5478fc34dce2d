/* Whole-message DNS helpers for the forwarder of tt client --dns.
 *
 * Records are walked in order, names skipped by their labels up to the end
 * or the first compression pointer, which is all a forwarder needs: it never
 * compares names inside records, only the question's, which is never
 * compressed. */
#include "codec/dnsmsg.h"

#include <errno.h>
#include <string.h>

#include "core/bytes.h"

#define FLAG_QR 0x8000u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define FLAG_RA 0x0080u
#define OPCODE(f) (((f) >> 11) & 0xFu)
#define RCODE(f) ((f)&0xFu)
#define TYPE_SOA 6

/* Skips the name at *POS; returns 0 with *POS after it, or -1. */
static int skip_name(const uint8_t *msg, size_t len, size_t *pos)
{
    size_t p = *pos;
    for (size_t wire = 0;;) {
        if (p >= len)
            return -1;
        uint8_t l = msg[p];
        if ((l & 0xC0) == 0xC0) {
            if (p + 2 > len)
                return -1;
            *pos = p + 2;
            return 0;
        }
        if (l & 0xC0)
            return -1;
        wire += 1u + l;
        if (wire > TT_DNS_NAME_MAX)
            return -1;
        p += 1u + l;
        if (l == 0) {
            *pos = p;
            return 0;
        }
    }
}

int tt_dnsmsg_question(const uint8_t *msg, size_t len, bool query, tt_dnsmsg_q *q, const char **why)
{
    memset(q, 0, sizeof *q);
    if (len < TT_DNS_HEADER_LEN) {
        *why = "shorter than a header";
        return -EPROTO;
    }
    q->id = tt_get16(msg);
    q->flags = tt_get16(msg + 2);
    if (((q->flags & FLAG_QR) != 0) == query) {
        *why = query ? "a response, not a query" : "a query, not a response";
        return -EPROTO;
    }
    if (tt_get16(msg + 4) != 1) {
        *why = "not exactly one question";
        return -EPROTO;
    }
    size_t p = TT_DNS_HEADER_LEN;
    size_t k = 0;
    for (;;) {
        if (p >= len) {
            *why = "question runs past the message";
            return -EPROTO;
        }
        uint8_t l = msg[p];
        if (l & 0xC0) {
            *why = "compressed or invalid name in the question";
            return -EPROTO;
        }
        if (k + 1u + l > TT_DNS_NAME_MAX || p + 1u + l > len) {
            *why = "question name too long";
            return -EPROTO;
        }
        q->key[k++] = l;
        for (unsigned i = 0; i < l; i++) {
            uint8_t c = msg[p + 1 + i];
            q->key[k++] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
        }
        p += 1u + l;
        if (l == 0)
            break;
    }
    if (p + 4 > len) {
        *why = "question runs past the message";
        return -EPROTO;
    }
    q->qtype = tt_get16(msg + p);
    q->qclass = tt_get16(msg + p + 2);
    memcpy(q->key + k, msg + p, 4);
    q->key_len = k + 4;
    q->qend = p + 4;
    q->udp_max = TT_DNS_UDP_MAX;
    if (!query)
        return 0;
    /* The OPT record, if any, is in the additional section; the answer and
     * authority sections of a query are normally empty but are skipped. */
    unsigned n = (unsigned)tt_get16(msg + 6) + tt_get16(msg + 8) + tt_get16(msg + 10);
    unsigned add_from = (unsigned)tt_get16(msg + 6) + tt_get16(msg + 8);
    p = q->qend;
    for (unsigned i = 0; i < n; i++) {
        if (skip_name(msg, len, &p) != 0 || p + 10 > len) {
            *why = "record runs past the message";
            return -EPROTO;
        }
        uint16_t type = tt_get16(msg + p);
        size_t rdlen = tt_get16(msg + p + 8);
        if (i >= add_from && type == TT_DNS_TYPE_OPT) {
            uint16_t size = tt_get16(msg + p + 2);
            q->udp_max = size > TT_DNS_UDP_MAX ? size : TT_DNS_UDP_MAX;
        }
        p += 10;
        if (p + rdlen > len) {
            *why = "record data runs past the message";
            return -EPROTO;
        }
        p += rdlen;
    }
    return 0;
}

/* Calls FN for every record after the question, with the offset of its
 * fixed part (type, class, TTL, rdlength) and of its data. Returns 0 or -1
 * when the message is malformed. */
typedef void (*rr_fn)(void *ud, uint8_t *msg, size_t fixed, size_t rdata, unsigned section);

static int walk(uint8_t *msg, size_t len, rr_fn fn, void *ud)
{
    if (len < TT_DNS_HEADER_LEN)
        return -1;
    unsigned count[3] = {tt_get16(msg + 6), tt_get16(msg + 8), tt_get16(msg + 10)};
    size_t p = TT_DNS_HEADER_LEN;
    for (unsigned i = tt_get16(msg + 4); i > 0; i--) {
        if (skip_name(msg, len, &p) != 0 || p + 4 > len)
            return -1;
        p += 4;
    }
    for (unsigned s = 0; s < 3; s++) {
        for (unsigned i = 0; i < count[s]; i++) {
            if (skip_name(msg, len, &p) != 0 || p + 10 > len)
                return -1;
            size_t fixed = p;
            size_t rdlen = tt_get16(msg + p + 8);
            p += 10;
            if (p + rdlen > len)
                return -1;
            fn(ud, msg, fixed, p, s);
            p += rdlen;
        }
    }
    return 0;
}

typedef struct ttl_scan {
    bool any;     /* a record other than OPT was seen */
    bool soa;     /* an authority SOA was seen */
    uint32_t min; /* smallest TTL of those records */
    uint32_t soa_ttl;
} ttl_scan;

static void ttl_rr(void *ud, uint8_t *msg, size_t fixed, size_t rdata, unsigned section)
{
    ttl_scan *t = ud;
    uint16_t type = tt_get16(msg + fixed);
    if (type == TT_DNS_TYPE_OPT)
        return;
    /* A TTL with the top bit set counts as 0 (RFC 2181 section 8). */
    uint32_t ttl = tt_get32(msg + fixed + 4);
    if (ttl > 0x7FFFFFFFu)
        ttl = 0;
    if (!t->any || ttl < t->min)
        t->min = ttl;
    t->any = true;
    size_t rdlen = tt_get16(msg + fixed + 8);
    /* MINIMUM is the SOA data's last field. */
    if (section == 1 && type == TYPE_SOA && rdlen >= 22) {
        uint32_t minimum = tt_get32(msg + rdata + rdlen - 4);
        uint32_t v = minimum < ttl ? minimum : ttl;
        if (!t->soa || v < t->soa_ttl)
            t->soa_ttl = v;
        t->soa = true;
    }
}

int tt_dnsmsg_cache_ttl(const uint8_t *msg, size_t len, uint32_t *ttl)
{
    if (len < TT_DNS_HEADER_LEN)
        return -1;
    uint16_t flags = tt_get16(msg + 2);
    if (!(flags & FLAG_QR) || (flags & FLAG_TC) || OPCODE(flags) != 0)
        return -1;
    unsigned rcode = RCODE(flags);
    if (rcode != TT_DNS_RCODE_NOERROR && rcode != TT_DNS_RCODE_NXDOMAIN)
        return -1;
    ttl_scan t = {0};
    /* walk only reads through FN here; its pointer is not const because
     * tt_dnsmsg_age shares it. */
    if (walk((uint8_t *)(uintptr_t)msg, len, ttl_rr, &t) != 0)
        return -1;
    bool negative = rcode == TT_DNS_RCODE_NXDOMAIN || tt_get16(msg + 6) == 0;
    if (negative) {
        if (!t.soa)
            return -1;
        *ttl = t.soa_ttl;
        return 0;
    }
    *ttl = t.min;
    return 0;
}

static void age_rr(void *ud, uint8_t *msg, size_t fixed, size_t rdata, unsigned section)
{
    (void)rdata;
    (void)section;
    uint32_t elapsed = *(const uint32_t *)ud;
    if (tt_get16(msg + fixed) == TT_DNS_TYPE_OPT)
        return;
    uint32_t ttl = tt_get32(msg + fixed + 4);
    if (ttl > 0x7FFFFFFFu)
        ttl = 0;
    tt_put32(msg + fixed + 4, ttl > elapsed ? ttl - elapsed : 0);
}

int tt_dnsmsg_age(uint8_t *msg, size_t len, uint32_t elapsed)
{
    return walk(msg, len, age_rr, &elapsed);
}

void tt_dnsmsg_set_id(uint8_t *msg, uint16_t id)
{
    tt_put16(msg, id);
}

size_t tt_dnsmsg_reply_empty(uint8_t *msg, size_t qend, unsigned rcode, bool tc)
{
    uint16_t flags = tt_get16(msg + 2);
    unsigned f = FLAG_QR | FLAG_RA | (flags & FLAG_RD) | (flags & 0x7800u) | (rcode & 0xFu);
    if (tc)
        f |= FLAG_TC;
    tt_put16(msg + 2, f);
    tt_put16(msg + 4, 1);
    tt_put16(msg + 6, 0);
    tt_put16(msg + 8, 0);
    tt_put16(msg + 10, 0);
    return qend;
}
