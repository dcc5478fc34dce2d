/* DNS query encoder and answer parser.
 *
 * Names read from a message are copied into a 255-byte buffer in wire form,
 * lowercased, so that comparing two names is one memcmp; a length byte is
 * at most 63 and so never changed by the lowercasing.
 *
 * A compression pointer must point before the start of the stretch of labels
 * it ends, that is before the name itself or before the previous pointer's
 * target. The positions read therefore strictly decrease from jump to jump,
 * which rules out loops whatever the input; the jump count is capped as well,
 * so a chain of pointers to pointers stays cheap.
 *
 * The answer section is scanned once per CNAME link rather than copied into
 * a table: the chain is at most TT_DNS_MAX_CNAMES long, so the work stays
 * bounded by a small multiple of the message length and needs no memory. */
#include "codec/dns.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define FLAG_QR 0x8000u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define OPCODE(f) (((f) >> 11) & 0xFu)
#define RCODE(f) ((f)&0xFu)

/* Enough for any legitimate name: each jump must at least go backwards past
 * a whole label or pointer. */
#define MAX_JUMPS 64

/* A name in wire form, lowercased. */
typedef struct wname {
    uint8_t b[TT_DNS_NAME_MAX];
    size_t len;
} wname;

/* The fixed part of a resource record and where its data is. */
typedef struct rr {
    uint16_t type, class;
    uint32_t ttl;
    size_t rdata, rdlen;
} rr;

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

size_t tt_dns_name_encode(const char *name, uint8_t out[TT_DNS_NAME_MAX])
{
    size_t n = strlen(name);
    /* One trailing dot marks the name as absolute; it changes nothing here,
     * as no search list is applied. */
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0)
        return 0;
    size_t o = 0;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && name[j] != '.')
            j++;
        size_t lab = j - i;
        if (lab == 0 || lab > 63)
            return 0;
        /* The label, its length byte and the final zero must still fit. */
        if (o + 1 + lab + 1 > TT_DNS_NAME_MAX)
            return 0;
        out[o++] = (uint8_t)lab;
        memcpy(out + o, name + i, lab);
        o += lab;
        i = j + 1;
    }
    out[o++] = 0;
    return o;
}

size_t tt_dns_query_encode(uint16_t id, const char *name, uint16_t qtype, bool edns,
                           uint8_t out[TT_DNS_QUERY_MAX])
{
    if (qtype != TT_DNS_TYPE_A && qtype != TT_DNS_TYPE_AAAA)
        return 0;
    size_t nl = tt_dns_name_encode(name, out + TT_DNS_HEADER_LEN);
    if (nl == 0)
        return 0;
    put16(out, id);
    put16(out + 2, FLAG_RD);
    put16(out + 4, 1);
    put16(out + 6, 0);
    put16(out + 8, 0);
    put16(out + 10, edns ? 1 : 0);
    size_t o = TT_DNS_HEADER_LEN + nl;
    put16(out + o, qtype);
    put16(out + o + 2, TT_DNS_CLASS_IN);
    o += 4;
    if (edns) {
        /* OPT (RFC 6891): root owner, the UDP size in the class field, and
         * extended RCODE, version and flags (all zero) in the TTL field. */
        out[o++] = 0;
        put16(out + o, TT_DNS_TYPE_OPT);
        put16(out + o + 2, TT_DNS_EDNS_UDP_SIZE);
        memset(out + o + 4, 0, 6);
        o += 10;
    }
    return o;
}

/* The contract is in dns.h; the tunnel codec reads names with it too. */
int tt_dns_name_read(const uint8_t *msg, size_t len, size_t pos, size_t end,
                     uint8_t out[TT_DNS_NAME_MAX], size_t *out_len, size_t *next, const char **why)
{
    size_t p = pos;
    size_t limit = pos; /* every pointer must point before this */
    size_t stop = end;  /* labels must end before this */
    unsigned jumps = 0;
    size_t o = 0;
    for (;;) {
        if (p >= stop) {
            *why = "name runs past its end";
            return -EPROTO;
        }
        uint8_t c = msg[p];
        if (c == 0) {
            out[o++] = 0;
            *out_len = o;
            if (jumps == 0)
                *next = p + 1;
            return 0;
        }
        if ((c & 0xC0) == 0xC0) {
            if (p + 1 >= stop) {
                *why = "name runs past its end";
                return -EPROTO;
            }
            size_t t = (size_t)(c & 0x3F) << 8 | msg[p + 1];
            if (t >= limit) {
                *why = "compression pointer does not point backwards";
                return -EPROTO;
            }
            if (++jumps > MAX_JUMPS) {
                *why = "too many compression pointers";
                return -EPROTO;
            }
            if (jumps == 1)
                *next = p + 2;
            limit = t;
            stop = len;
            p = t;
            continue;
        }
        if (c & 0xC0) {
            *why = "unknown label type";
            return -EPROTO;
        }
        if (p + 1 + c > stop) {
            *why = "name runs past its end";
            return -EPROTO;
        }
        if (o + 1 + c + 1 > TT_DNS_NAME_MAX) {
            *why = "name longer than 255 bytes";
            return -EPROTO;
        }
        out[o++] = c;
        for (size_t k = 0; k < c; k++)
            out[o++] = lower(msg[p + 1 + k]);
        p += 1 + (size_t)c;
    }
}

/* Reads the name at POS into *NAME (see tt_dns_name_read). */
static int read_name(const uint8_t *msg, size_t len, size_t pos, size_t end, wname *name,
                     size_t *next, const char **why)
{
    return tt_dns_name_read(msg, len, pos, end, name->b, &name->len, next, why);
}

static bool same_name(const wname *a, const wname *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* Reads the record at *POS, its owner into *OWNER, and moves *POS past it. */
static int read_rr(const uint8_t *msg, size_t len, size_t *pos, wname *owner, rr *r,
                   const char **why)
{
    size_t p;
    int rc = read_name(msg, len, *pos, len, owner, &p, why);
    if (rc != 0)
        return rc;
    if (len - p < 10) {
        *why = "record header runs past the end";
        return -EPROTO;
    }
    r->type = get16(msg + p);
    r->class = get16(msg + p + 2);
    r->ttl = get32(msg + p + 4);
    r->rdlen = get16(msg + p + 8);
    r->rdata = p + 10;
    if (len - r->rdata < r->rdlen) {
        *why = "record data runs past the end";
        return -EPROTO;
    }
    *pos = r->rdata + r->rdlen;
    return 0;
}

/* RFC 2181 section 8: a TTL with the top bit set counts as zero. */
static uint32_t ttl_value(uint32_t ttl)
{
    return ttl & 0x80000000u ? 0 : ttl;
}

/* Follows the chain from QNAME through the answer section (COUNT records
 * from START) and collects the addresses of its last name into OUT. */
static int collect(const uint8_t *msg, size_t len, size_t start, unsigned count, const wname *qname,
                   uint16_t qtype, tt_dns_answer *out, const char **why)
{
    wname cur = *qname;
    bool any_ttl = false;
    uint32_t min_ttl = 0;
    size_t alen = qtype == TT_DNS_TYPE_A ? 4 : 16;
    for (;;) {
        bool have_next = false;
        wname next = {.len = 0};
        uint32_t next_ttl = 0;
        unsigned naddrs = 0;
        uint32_t addr_ttl = 0;
        size_t pos = start;
        for (unsigned i = 0; i < count; i++) {
            wname owner;
            rr r;
            int rc = read_rr(msg, len, &pos, &owner, &r, why);
            if (rc != 0)
                return rc;
            if (r.class != TT_DNS_CLASS_IN || !same_name(&owner, &cur))
                continue;
            if (r.type == TT_DNS_TYPE_CNAME) {
                if (have_next) {
                    *why = "two CNAME records for one name";
                    return -EPROTO;
                }
                size_t after;
                rc = read_name(msg, len, r.rdata, r.rdata + r.rdlen, &next, &after, why);
                if (rc != 0)
                    return rc;
                if (after != r.rdata + r.rdlen) {
                    *why = "CNAME data longer than its name";
                    return -EPROTO;
                }
                have_next = true;
                next_ttl = ttl_value(r.ttl);
            } else if (r.type == qtype) {
                if (r.rdlen != alen) {
                    *why = "address record of the wrong length";
                    return -EPROTO;
                }
                uint32_t t = ttl_value(r.ttl);
                if (naddrs == 0 || t < addr_ttl)
                    addr_ttl = t;
                /* Addresses beyond the maximum are dropped, not an error:
                 * a long list is valid, and the first ones suffice. */
                if (naddrs < TT_DNS_MAX_ADDRS) {
                    tt_dns_addr *a = &out->addrs[naddrs];
                    memset(a, 0, sizeof *a);
                    a->family = qtype == TT_DNS_TYPE_A ? AF_INET : AF_INET6;
                    memcpy(a->addr, msg + r.rdata, alen);
                }
                naddrs++;
            }
        }
        if (!have_next) {
            out->naddrs = naddrs < TT_DNS_MAX_ADDRS ? naddrs : TT_DNS_MAX_ADDRS;
            if (naddrs > 0 && (!any_ttl || addr_ttl < min_ttl))
                min_ttl = addr_ttl;
            out->min_ttl = min_ttl;
            return 0;
        }
        /* A name with a CNAME has no other data (RFC 1034 section 3.6.2);
         * addresses seen beside one are not the answer, so they are
         * dropped and the chain followed. A loop ends here too. */
        if (out->cnames == TT_DNS_MAX_CNAMES) {
            *why = "CNAME chain too long";
            return -EPROTO;
        }
        out->cnames++;
        if (!any_ttl || next_ttl < min_ttl)
            min_ttl = next_ttl;
        any_ttl = true;
        cur = next;
    }
}

static int parse(const uint8_t *msg, size_t len, uint16_t id, const char *name, uint16_t qtype,
                 tt_dns_answer *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (qtype != TT_DNS_TYPE_A && qtype != TT_DNS_TYPE_AAAA) {
        *why = "query type is neither A nor AAAA";
        return -EINVAL;
    }
    if (len < TT_DNS_HEADER_LEN) {
        *why = "message shorter than a DNS header";
        return -EPROTO;
    }
    if (get16(msg) != id) {
        *why = "answer id does not match the query";
        return -EINVAL;
    }
    unsigned flags = get16(msg + 2);
    if (!(flags & FLAG_QR)) {
        *why = "message is not a response";
        return -EINVAL;
    }
    if (OPCODE(flags) != 0) {
        *why = "response is not to a standard query";
        return -EINVAL;
    }
    if (get16(msg + 4) != 1) {
        *why = "response does not carry one question";
        return -EINVAL;
    }

    wname qname;
    qname.len = tt_dns_name_encode(name, qname.b);
    if (qname.len == 0) {
        *why = "invalid query name";
        return -EINVAL;
    }
    for (size_t i = 0; i < qname.len; i++)
        qname.b[i] = lower(qname.b[i]);
    wname echo;
    size_t pos;
    int rc = read_name(msg, len, TT_DNS_HEADER_LEN, len, &echo, &pos, why);
    if (rc != 0)
        return rc;
    if (len - pos < 4) {
        *why = "question runs past the end";
        return -EPROTO;
    }
    if (!same_name(&echo, &qname)) {
        *why = "response is for another name";
        return -EINVAL;
    }
    if (get16(msg + pos) != qtype || get16(msg + pos + 2) != TT_DNS_CLASS_IN) {
        *why = "response is for another type or class";
        return -EINVAL;
    }
    pos += 4;

    out->rcode = RCODE(flags);
    /* A truncated message may end anywhere, even inside a record (servers
     * used to cut at 512 bytes); only its header and question count. */
    if (flags & FLAG_TC) {
        out->truncated = true;
        return 0;
    }

    unsigned an = get16(msg + 6), ns = get16(msg + 8), ar = get16(msg + 10);
    size_t an_start = pos;
    bool have_opt = false;
    for (unsigned i = 0; i < an + ns + ar; i++) {
        wname owner;
        rr r;
        rc = read_rr(msg, len, &pos, &owner, &r, why);
        if (rc != 0)
            return rc;
        if (r.type != TT_DNS_TYPE_OPT)
            continue;
        if (i < an + ns || have_opt || owner.len != 1) {
            *why = "misplaced OPT record";
            return -EPROTO;
        }
        have_opt = true;
        /* The OPT TTL's top byte holds the upper 8 bits of a 12-bit RCODE. */
        out->rcode |= (r.ttl >> 24) << 4;
    }
    if (out->rcode != TT_DNS_RCODE_NOERROR)
        return 0;
    return collect(msg, len, an_start, an, &qname, qtype, out, why);
}

int tt_dns_response_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                          uint16_t qtype, tt_dns_answer *out, const char **why)
{
    const char *dummy;
    int rc = parse(msg, len, id, name, qtype, out, why ? why : &dummy);
    /* A refused message leaves nothing half-read behind. */
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}
