/* The tunnel's DNS codec: query names, answers, and the authoritative face.
 *
 * Base32 is RFC 4648's alphabet without padding, written lowercase. Only
 * canonical text is accepted: a length that no byte count encodes to, or
 * leftover bits that are not zero, is refused, and so are labels not cut as
 * the encoder cuts them (63 characters but the last). A name therefore has
 * exactly one spelling but for letter case, which is what lets the server
 * key its cache of answers by the lowercased name.
 *
 * The server's replies are made in one buffer of TT_DNSTUN_MSG_MAX bytes.
 * Names in them point back to the question (the apex is always a suffix of
 * the question's name in the replies that carry it), so an authoritative
 * reply stays far below the 512 bytes of a client without EDNS. */
#include "codec/dnstun.h"

#include <errno.h>
#include <string.h>

#include "codec/dnsmsg.h"
#include "core/bytes.h"

#define FLAG_QR 0x8000u
#define FLAG_AA 0x0400u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define FLAG_CD 0x0010u
#define OPCODE(f) (((f) >> 11) & 0xFu)

#define TYPE_NS 2
#define TYPE_SOA 6
#define TYPE_IXFR 251
#define TYPE_AXFR 252
#define TYPE_ANY 255
#define RCODE_BADVERS 16

/* The SOA's timers. MINIMUM bounds the time a negative answer may be
 * cached (RFC 2308): long enough that a resolver does not ask again for
 * the nameserver's missing address with every tunnel query, short enough
 * for a zone that changes. Tunnel names are unique, so caching the NODATA
 * or NXDOMAIN of one costs nothing. */
#define SOA_TTL 300
#define NS_TTL 3600
#define SOA_REFRESH 3600
#define SOA_RETRY 600
#define SOA_EXPIRE 86400
#define SOA_MINIMUM 60

#define LABEL_MAX 63

/* The three spellings of data in a name (codec/dnstun.h). Each packs the
 * bytes into characters of BITS bits, most significant first. */
static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static unsigned enc_bits(unsigned enc)
{
    return 5 + enc;
}

/* Characters for N bytes. */
static size_t enc_chars(unsigned enc, size_t n)
{
    return (n * 8 + enc_bits(enc) - 1) / enc_bits(enc);
}

/* Base128 is base64's alphabet plus the 64 bytes 0xC0 to 0xFF: no dot, no
 * zero, no byte a resolver might treat as an escape or a separator. */
static uint8_t enc_char(unsigned enc, unsigned v)
{
    if (enc == TT_DNSTUN_ENC_B32)
        return (uint8_t)b32[v];
    return v < 64 ? (uint8_t)b64[v] : (uint8_t)(0xC0 + (v - 64));
}

/* The value of C as a digit of ENC, or -1. Base32 is read without regard
 * to case; the others are case-sensitive. */
static int enc_value(unsigned enc, uint8_t c)
{
    if (enc == TT_DNSTUN_ENC_B32) {
        if (c >= 'a' && c <= 'z')
            return c - 'a';
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= '2' && c <= '7')
            return c - '2' + 26;
        return -1;
    }
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    if (enc == TT_DNSTUN_ENC_B128 && c >= 0xC0)
        return c - 0xC0 + 64;
    return -1;
}

static void text_encode(unsigned enc, const uint8_t *in, size_t n, uint8_t *out)
{
    unsigned k = enc_bits(enc), mask = (1u << k) - 1;
    unsigned acc = 0, bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | in[i]) & 0x7FFFu;
        bits += 8;
        while (bits >= k) {
            bits -= k;
            out[o++] = enc_char(enc, (acc >> bits) & mask);
        }
    }
    if (bits > 0)
        out[o++] = enc_char(enc, (acc << (k - bits)) & mask);
}

/* The marker, the first character of a dense name's first label: a digit
 * base32 never writes, so the server tells the spellings apart per query. */
static const uint8_t marker[] = {0, '8', '9'};
#define PROBE_MARKER '0'

/* Fletcher-16 over the decoded bytes of a dense name: a name whose case or
 * 8-bit bytes were changed on the way decodes to bytes that fail it. */
static uint16_t check16(const uint8_t *p, size_t n)
{
    unsigned a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 255;
        b = (b + a) % 255;
    }
    return (uint16_t)(b << 8 | a);
}

/* Bytes in front of and behind the payload, and marker characters. */
static size_t enc_head(unsigned enc)
{
    return TT_DNSTUN_HEAD_LEN + (enc == TT_DNSTUN_ENC_B32 ? 0 : 2);
}

static size_t enc_mark(unsigned enc)
{
    return enc == TT_DNSTUN_ENC_B32 ? 0 : 1;
}

/* Length of the name part of a wire name NAME (LEN bytes, ending in the
 * root's zero) under the suffix SUF; true when NAME ends with SUF at a
 * label boundary. *PREFIX receives the bytes before the suffix. */
static bool under(const uint8_t *name, size_t len, const uint8_t *suf, size_t suf_len,
                  size_t *prefix)
{
    size_t p = 0;
    while (p < len) {
        if (len - p == suf_len && memcmp(name + p, suf, suf_len) == 0) {
            *prefix = p;
            return true;
        }
        if (name[p] == 0)
            return false;
        p += 1u + name[p];
    }
    return false;
}

/* Lowercases the LEN bytes at P (ASCII letters only; a label's length is at
 * most 63 and never a letter). */
static void lower(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (uint8_t)(p[i] + ('a' - 'A'));
}

int tt_dnstun_zone_init(tt_dnstun_zone *z, const char *domain, const char *ns, uint32_t serial,
                        const char **why)
{
    memset(z, 0, sizeof *z);
    z->apex_len = tt_dns_name_encode(domain, z->apex);
    if (z->apex_len == 0) {
        *why = "the domain is not a valid name";
        return -EINVAL;
    }
    lower(z->apex, z->apex_len);
    if (ns != NULL) {
        z->ns_len = tt_dns_name_encode(ns, z->ns);
        if (z->ns_len == 0) {
            *why = "the nameserver is not a valid name";
            return -EINVAL;
        }
        lower(z->ns, z->ns_len);
    } else {
        if (z->apex_len + 3 > TT_DNS_NAME_MAX) {
            *why = "the domain is too long";
            return -EINVAL;
        }
        memcpy(z->ns, "\002ns", 3);
        memcpy(z->ns + 3, z->apex, z->apex_len);
        z->ns_len = z->apex_len + 3;
    }
    z->serial = serial;
    if (tt_dnstun_query_capacity(z) < 16) {
        *why = "the domain is too long to leave room for data in a query name";
        return -EINVAL;
    }
    return 0;
}

size_t tt_dnstun_query_capacity_enc(const tt_dnstun_zone *z, unsigned enc)
{
    if (z->apex_len >= TT_DNS_NAME_MAX || enc > TT_DNSTUN_ENC_B128)
        return 0;
    size_t budget = TT_DNS_NAME_MAX - z->apex_len;
    for (size_t p = TT_DNSTUN_QUERY_PAYLOAD_MAX; p > 0; p--) {
        size_t n = enc_mark(enc) + enc_chars(enc, enc_head(enc) + p);
        if (n + (n + LABEL_MAX - 1) / LABEL_MAX <= budget)
            return p;
    }
    return 0;
}

size_t tt_dnstun_query_capacity(const tt_dnstun_zone *z)
{
    return tt_dnstun_query_capacity_enc(z, TT_DNSTUN_ENC_B32);
}

/* The header of a query with id ID and one question, recursion desired. */
static size_t query_head(uint16_t id, uint8_t *out)
{
    tt_put16(out, id);
    tt_put16(out + 2, FLAG_RD);
    tt_put16(out + 4, 1);
    tt_put16(out + 6, 0);
    tt_put16(out + 8, 0);
    tt_put16(out + 10, 1);
    return TT_DNS_HEADER_LEN;
}

/* Ends a query at O: the apex, QTYPE, class IN and the OPT record (RFC
 * 6891: root owner, our UDP size in the class field, extended RCODE,
 * version and flags zero). Returns its length. */
static size_t query_tail(const tt_dnstun_zone *z, uint16_t qtype, uint8_t *out, size_t o)
{
    memcpy(out + o, z->apex, z->apex_len);
    o += z->apex_len;
    tt_put16(out + o, qtype);
    tt_put16(out + o + 2, TT_DNS_CLASS_IN);
    o += 4;
    out[o++] = 0;
    tt_put16(out + o, TT_DNS_TYPE_OPT);
    tt_put16(out + o + 2, TT_DNSTUN_EDNS_SIZE);
    memset(out + o + 4, 0, 6);
    return o + 10;
}

size_t tt_dnstun_query_encode_enc(const tt_dnstun_zone *z, unsigned enc, uint16_t id,
                                  uint16_t qtype, uint32_t client, uint32_t nonce,
                                  const uint8_t *payload, size_t len,
                                  uint8_t out[TT_DNSTUN_QUERY_MAX])
{
    if ((qtype != TT_DNSTUN_TYPE_TXT && qtype != TT_DNSTUN_TYPE_NULL) || enc > TT_DNSTUN_ENC_B128 ||
        len > tt_dnstun_query_capacity_enc(z, enc))
        return 0;
    uint8_t raw[TT_DNSTUN_HEAD_LEN + TT_DNSTUN_QUERY_PAYLOAD_MAX + 2];
    tt_put32(raw, client);
    tt_put32(raw + 4, nonce);
    if (len > 0)
        memcpy(raw + TT_DNSTUN_HEAD_LEN, payload, len);
    size_t rn = TT_DNSTUN_HEAD_LEN + len;
    if (enc != TT_DNSTUN_ENC_B32) {
        tt_put16(raw + rn, check16(raw, rn));
        rn += 2;
    }
    uint8_t text[1 + (TT_DNSTUN_HEAD_LEN + TT_DNSTUN_QUERY_PAYLOAD_MAX + 2) * 8 / 5 + 1];
    size_t m = enc_mark(enc);
    text[0] = marker[enc];
    size_t n = m + enc_chars(enc, rn);
    text_encode(enc, raw, rn, text + m);

    size_t o = query_head(id, out);
    for (size_t i = 0; i < n; i += LABEL_MAX) {
        size_t lab = n - i < LABEL_MAX ? n - i : LABEL_MAX;
        out[o++] = (uint8_t)lab;
        memcpy(out + o, text + i, lab);
        o += lab;
    }
    return query_tail(z, qtype, out, o);
}

size_t tt_dnstun_query_encode(const tt_dnstun_zone *z, uint16_t id, uint16_t qtype, uint32_t client,
                              uint32_t nonce, const uint8_t *payload, size_t len,
                              uint8_t out[TT_DNSTUN_QUERY_MAX])
{
    return tt_dnstun_query_encode_enc(z, TT_DNSTUN_ENC_B32, id, qtype, client, nonce, payload, len,
                                      out);
}

/* The probe's labels after its first: every letter in both cases and every
 * base128 byte, so that the echo shows what the path changed. */
static size_t probe_pattern(uint8_t *out)
{
    size_t o = 0;
    out[o++] = 62;
    memcpy(out + o, b64, 62);
    o += 62;
    out[o++] = 34;
    out[o++] = '-';
    out[o++] = '_';
    for (unsigned v = 0; v < 64; v++) {
        if (v == 32)
            out[o++] = 32;
        out[o++] = (uint8_t)(0xC0 + v);
    }
    return o;
}

size_t tt_dnstun_probe_encode(const tt_dnstun_zone *z, uint16_t id, uint16_t qtype, uint32_t nonce,
                              uint8_t out[TT_DNSTUN_QUERY_MAX])
{
    size_t o = query_head(id, out);
    uint8_t raw[4];
    tt_put32(raw, nonce);
    /* "0", then the nonce in base32: every probe name is new. */
    out[o++] = 8;
    out[o++] = PROBE_MARKER;
    text_encode(TT_DNSTUN_ENC_B32, raw, 4, out + o);
    o += 7;
    uint8_t pat[TT_DNSTUN_PROBE_PATTERN_LEN];
    size_t pn = probe_pattern(pat);
    if (o - TT_DNS_HEADER_LEN + pn + z->apex_len > TT_DNS_NAME_MAX ||
        (qtype != TT_DNSTUN_TYPE_TXT && qtype != TT_DNSTUN_TYPE_NULL))
        return 0;
    memcpy(out + o, pat, pn);
    o += pn;
    return query_tail(z, qtype, out, o);
}

unsigned tt_dnstun_probe_result(const uint8_t *query, size_t qlen, const uint8_t *echo, size_t len)
{
    /* The probe's name before the apex, as written: 9 bytes of marker and
     * nonce, then the pattern. */
    size_t at = TT_DNS_HEADER_LEN + 9;
    uint8_t pat[TT_DNSTUN_PROBE_PATTERN_LEN];
    size_t pn = probe_pattern(pat);
    if (qlen < at + pn || len != 9 + pn || memcmp(echo, query + TT_DNS_HEADER_LEN, 9) != 0)
        return TT_DNSTUN_ENC_B32;
    /* Letters and digits, both cases, then '-' and '_' came through. */
    if (memcmp(echo + 9, pat, 66) != 0)
        return TT_DNSTUN_ENC_B32;
    return memcmp(echo + 9, pat, pn) == 0 ? TT_DNSTUN_ENC_B128 : TT_DNSTUN_ENC_B64;
}

/* Decodes the data labels of a tunnel name (wire form, PREFIX bytes
 * before the apex, case as received) into R's encoding, client, nonce and
 * payload. Base32 is read from the lowercased KEY, the dense spellings
 * from NAME. Returns 0, or -1 with R->why set. */
static int decode_name(const uint8_t *name, const uint8_t *key, size_t prefix, tt_dnstun_req *r)
{
    unsigned enc = TT_DNSTUN_ENC_B32;
    if (prefix >= 2 && name[1] == marker[TT_DNSTUN_ENC_B64])
        enc = TT_DNSTUN_ENC_B64;
    else if (prefix >= 2 && name[1] == marker[TT_DNSTUN_ENC_B128])
        enc = TT_DNSTUN_ENC_B128;
    else
        name = key;
    uint8_t raw[TT_DNSTUN_HEAD_LEN + TT_DNSTUN_QUERY_PAYLOAD_MAX + 2];
    size_t o = 0;
    size_t chars = 0;
    unsigned k = enc_bits(enc), acc = 0, bits = 0;
    size_t p = 0;
    while (p < prefix) {
        uint8_t lab = name[p];
        /* Every label but the last is full; the encoder cuts no other way. */
        if (p + 1u + lab < prefix && lab != LABEL_MAX) {
            r->why = "a data label other than the last is not 63 characters";
            return -1;
        }
        for (size_t i = (p == 0 ? enc_mark(enc) : 0) + 1; i <= lab; i++) {
            int v = enc_value(enc, name[p + i]);
            if (v < 0) {
                static const char *const not_in[] = {"a data label is not base32",
                                                     "a data label is not base64",
                                                     "a data label is not base128"};
                r->why = not_in[enc];
                return -1;
            }
            acc = (acc << k | (unsigned)v) & 0x7FFFu;
            bits += k;
            if (bits >= 8) {
                bits -= 8;
                if (o == sizeof raw) {
                    r->why = "too much data for a query name";
                    return -1;
                }
                raw[o++] = (uint8_t)(acc >> bits);
            }
            chars++;
        }
        p += 1u + lab;
    }
    if (chars != enc_chars(enc, o) || (acc & ((1u << bits) - 1)) != 0) {
        static const char *const odd[] = {"the base32 data is not canonical",
                                          "the base64 data is not canonical",
                                          "the base128 data is not canonical"};
        r->why = odd[enc];
        return -1;
    }
    size_t head = enc_head(enc);
    if (o < head) {
        r->why = "the data is shorter than a client id and a nonce";
        return -1;
    }
    if (enc != TT_DNSTUN_ENC_B32) {
        o -= 2;
        if (tt_get16(raw + o) != check16(raw, o)) {
            r->why = "a dense name's check failed (case or bytes changed on the way)";
            return -1;
        }
    }
    r->enc = enc;
    r->client = tt_get32(raw);
    r->nonce = tt_get32(raw + 4);
    r->len = o - TT_DNSTUN_HEAD_LEN;
    memcpy(r->payload, raw + TT_DNSTUN_HEAD_LEN, r->len);
    return 0;
}

/* The header of a reply to Q, with COUNTS for the answer, authority and
 * additional sections (OPT excluded: added here when Q had one) and the
 * question after it. Returns the offset after the question. */
static size_t reply_head(const tt_dnstun_q *q, unsigned rcode, bool aa, unsigned an, unsigned ns,
                         uint8_t *out)
{
    /* The opcode is echoed: a reply to NOTIFY must say NOTIFY. */
    unsigned f = FLAG_QR | (q->flags & (0x7800u | FLAG_RD | FLAG_CD)) | (rcode & 0xFu);
    if (aa)
        f |= FLAG_AA;
    tt_put16(out, q->id);
    tt_put16(out + 2, f);
    tt_put16(out + 4, q->qlen > 0 ? 1 : 0);
    tt_put16(out + 6, an);
    tt_put16(out + 8, ns);
    tt_put16(out + 10, q->edns ? 1 : 0);
    memcpy(out + TT_DNS_HEADER_LEN, q->question, q->qlen);
    return TT_DNS_HEADER_LEN + q->qlen;
}

/* Appends the OPT record of a reply (when the query had one); RCODE's upper
 * bits go in its TTL field. */
static size_t put_opt(const tt_dnstun_q *q, unsigned rcode, uint8_t *out, size_t o)
{
    if (!q->edns)
        return o;
    out[o++] = 0;
    tt_put16(out + o, TT_DNS_TYPE_OPT);
    tt_put16(out + o + 2, TT_DNSTUN_EDNS_SIZE);
    out[o + 4] = (uint8_t)(rcode >> 4);
    memset(out + o + 5, 0, 5);
    return o + 10;
}

/* Appends the fixed part of a record: owner as a pointer to OWNER, type,
 * class IN, TTL; returns the offset of RDLENGTH, filled in by the caller. */
static size_t put_rr(uint8_t *out, size_t o, size_t owner, uint16_t type, uint32_t ttl)
{
    tt_put16(out + o, 0xC000u | (unsigned)owner);
    tt_put16(out + o + 2, type);
    tt_put16(out + o + 4, TT_DNS_CLASS_IN);
    tt_put32(out + o + 6, ttl);
    return o + 10;
}

/* Appends NAME (wire form), as its labels before the apex and a pointer
 * to APEX_OFF when it lies under the zone's apex, else whole. */
static size_t put_name(const tt_dnstun_zone *z, const uint8_t *name, size_t len, size_t apex_off,
                       uint8_t *out, size_t o)
{
    size_t prefix;
    if (under(name, len, z->apex, z->apex_len, &prefix)) {
        memcpy(out + o, name, prefix);
        o += prefix;
        tt_put16(out + o, 0xC000u | (unsigned)apex_off);
        return o + 2;
    }
    memcpy(out + o, name, len);
    return o + len;
}

/* Appends the zone's SOA record, owner at APEX_OFF. */
static size_t put_soa(const tt_dnstun_zone *z, size_t apex_off, uint8_t *out, size_t o)
{
    size_t rdlen_at = put_rr(out, o, apex_off, TYPE_SOA, SOA_TTL);
    size_t d = rdlen_at + 2;
    d = put_name(z, z->ns, z->ns_len, apex_off, out, d);
    memcpy(out + d, "\012hostmaster", 11);
    d += 11;
    tt_put16(out + d, 0xC000u | (unsigned)apex_off);
    d += 2;
    tt_put32(out + d, z->serial);
    tt_put32(out + d + 4, SOA_REFRESH);
    tt_put32(out + d + 8, SOA_RETRY);
    tt_put32(out + d + 12, SOA_EXPIRE);
    tt_put32(out + d + 16, SOA_MINIMUM);
    d += 20;
    tt_put16(out + rdlen_at, (unsigned)(d - rdlen_at - 2));
    return d;
}

static size_t put_ns(const tt_dnstun_zone *z, size_t apex_off, uint8_t *out, size_t o)
{
    size_t rdlen_at = put_rr(out, o, apex_off, TYPE_NS, NS_TTL);
    size_t d = put_name(z, z->ns, z->ns_len, apex_off, out, rdlen_at + 2);
    tt_put16(out + rdlen_at, (unsigned)(d - rdlen_at - 2));
    return d;
}

size_t tt_dnstun_reply_empty(const tt_dnstun_q *q, unsigned rcode, bool tc,
                             uint8_t out[TT_DNSTUN_MSG_MAX])
{
    bool aa = rcode == TT_DNS_RCODE_NOERROR || rcode == TT_DNS_RCODE_NXDOMAIN;
    size_t o = reply_head(q, rcode, aa, 0, 0, out);
    if (tc)
        tt_put16(out + 2, tt_get16(out + 2) | FLAG_TC);
    return put_opt(q, rcode, out, o);
}

/* The authoritative reply to Q, whose name lies in the zone with PREFIX
 * bytes before the apex; a TUNNEL name exists (it has TXT and NULL data). */
static size_t authoritative(const tt_dnstun_zone *z, tt_dnstun_req *r, size_t prefix, bool tunnel,
                            uint8_t *out)
{
    const tt_dnstun_q *q = &r->q;
    size_t apex_off = TT_DNS_HEADER_LEN + prefix;
    size_t name_len = q->key_len - 4;
    bool at_apex = prefix == 0;
    bool at_ns = name_len == z->ns_len && memcmp(q->key, z->ns, z->ns_len) == 0;
    if (!at_apex && !at_ns && !tunnel) {
        r->rcode = TT_DNS_RCODE_NXDOMAIN;
        size_t o = reply_head(q, r->rcode, true, 0, 1, out);
        o = put_soa(z, apex_off, out, o);
        return put_opt(q, 0, out, o);
    }
    r->rcode = TT_DNS_RCODE_NOERROR;
    unsigned an = 0;
    bool soa = at_apex && (q->qtype == TYPE_SOA || q->qtype == TYPE_ANY);
    bool ns = at_apex && (q->qtype == TYPE_NS || q->qtype == TYPE_ANY);
    an = (soa ? 1u : 0u) + (ns ? 1u : 0u);
    size_t o = reply_head(q, r->rcode, true, an, an == 0 ? 1 : 0, out);
    if (soa)
        o = put_soa(z, apex_off, out, o);
    if (ns)
        o = put_ns(z, apex_off, out, o);
    if (an == 0) /* NODATA: the SOA in the authority section (RFC 2308) */
        o = put_soa(z, apex_off, out, o);
    return put_opt(q, 0, out, o);
}

/* Reads the question of MSG into R->q with the forwarder's question
 * parser; returns 0, or -1 with R->why. */
static int read_question(const uint8_t *msg, size_t len, tt_dnstun_req *r, size_t *qend)
{
    tt_dnsmsg_q mq;
    if (tt_dnsmsg_question(msg, len, true, &mq, &r->why) != 0)
        return -1;
    tt_dnstun_q *q = &r->q;
    q->qtype = mq.qtype;
    q->qclass = mq.qclass;
    q->qlen = mq.qend - TT_DNS_HEADER_LEN;
    memcpy(q->question, msg + TT_DNS_HEADER_LEN, q->qlen);
    memcpy(q->key, mq.key, mq.key_len);
    q->key_len = mq.key_len;
    *qend = mq.qend;
    return 0;
}

/* Reads the records after the question for the OPT record. Returns 0, -1
 * (malformed, R->why set) or 1 (an EDNS version other than 0). */
static int read_records(const uint8_t *msg, size_t len, size_t p, tt_dnstun_req *r)
{
    tt_dnstun_q *q = &r->q;
    unsigned an = tt_get16(msg + 6), ns = tt_get16(msg + 8), ar = tt_get16(msg + 10);
    for (unsigned i = 0; i < an + ns + ar; i++) {
        uint8_t name[TT_DNS_NAME_MAX];
        size_t name_len;
        if (tt_dns_name_read(msg, len, p, len, name, &name_len, &p, &r->why) != 0)
            return -1;
        if (len - p < 10) {
            r->why = "a record runs past the message";
            return -1;
        }
        uint16_t type = tt_get16(msg + p);
        size_t rdlen = tt_get16(msg + p + 8);
        if (type == TT_DNS_TYPE_OPT) {
            if (i < an + ns || q->edns || name_len != 1) {
                r->why = "a misplaced or second OPT record";
                return -1;
            }
            q->edns = true;
            uint16_t size = tt_get16(msg + p + 2);
            q->udp_max = size > TT_DNS_UDP_MAX ? size : TT_DNS_UDP_MAX;
            if (msg[p + 5] != 0) {
                r->why = "an EDNS version other than 0";
                return 1;
            }
        }
        p += 10;
        if (len - p < rdlen) {
            r->why = "a record's data runs past the message";
            return -1;
        }
        p += rdlen;
    }
    return 0;
}

/* The answer to a probe: its name before the apex as received, as one
 * datagram (tt_dnstun_pack), so that the client sees what the path did to
 * it. */
static size_t probe_echo(const tt_dnstun_q *q, size_t prefix, tt_dnstun_req *r,
                         uint8_t out[TT_DNSTUN_MSG_MAX])
{
    uint8_t p[TT_DNS_NAME_MAX + 2];
    size_t used = 0;
    r->why = "a probe";
    r->rcode = TT_DNS_RCODE_NOERROR;
    if (!tt_dnstun_pack(p, sizeof p, &used, q->question, prefix))
        return 0;
    return tt_dnstun_answer_encode(q, p, used, q->udp_max, out);
}

size_t tt_dnstun_serve(const tt_dnstun_zone *z, const uint8_t *msg, size_t len, tt_dnstun_req *r,
                       uint8_t out[TT_DNSTUN_MSG_MAX])
{
    memset(r, 0, sizeof *r);
    r->kind = TT_DNSTUN_DROP;
    if (len < TT_DNS_HEADER_LEN) {
        r->why = "shorter than a DNS header";
        return 0;
    }
    tt_dnstun_q *q = &r->q;
    q->id = tt_get16(msg);
    q->flags = tt_get16(msg + 2);
    q->udp_max = TT_DNS_UDP_MAX;
    /* Answering a response could set two servers answering each other. */
    if (q->flags & FLAG_QR) {
        r->why = "a response, not a query";
        return 0;
    }
    r->kind = TT_DNSTUN_REPLY;
    size_t qend = 0;
    bool have_q = tt_get16(msg + 4) == 1 && read_question(msg, len, r, &qend) == 0;
    if (!have_q)
        q->qlen = 0;
    if (OPCODE(q->flags) != 0) {
        r->why = "an opcode other than QUERY";
        r->rcode = TT_DNS_RCODE_NOTIMP;
        q->edns = false;
        return tt_dnstun_reply_empty(q, r->rcode, false, out);
    }
    if (!have_q) {
        if (tt_get16(msg + 4) != 1)
            r->why = "not exactly one question";
        r->rcode = TT_DNS_RCODE_FORMERR;
        return tt_dnstun_reply_empty(q, r->rcode, false, out);
    }
    int rc = read_records(msg, len, qend, r);
    if (rc < 0) {
        /* An OPT seen before the fault is not answered in kind: the query
         * as a whole is malformed. */
        q->edns = false;
        r->rcode = TT_DNS_RCODE_FORMERR;
        return tt_dnstun_reply_empty(q, r->rcode, false, out);
    }
    if (rc > 0) {
        r->rcode = RCODE_BADVERS;
        return tt_dnstun_reply_empty(q, r->rcode, false, out);
    }
    size_t prefix;
    if (!under(q->key, q->key_len - 4, z->apex, z->apex_len, &prefix)) {
        r->why = "a name outside the zone";
        r->rcode = TT_DNS_RCODE_REFUSED;
        return tt_dnstun_reply_empty(q, r->rcode, false, out);
    }
    if (q->qclass != TT_DNS_CLASS_IN) {
        r->why = "a class other than IN";
        r->rcode = TT_DNS_RCODE_REFUSED;
        return tt_dnstun_reply_empty(q, r->rcode, false, out);
    }
    if (q->qtype == TYPE_AXFR || q->qtype == TYPE_IXFR) {
        r->why = "a zone transfer";
        r->rcode = TT_DNS_RCODE_REFUSED;
        return tt_dnstun_reply_empty(q, r->rcode, false, out);
    }
    bool tunnel_type = q->qtype == TT_DNSTUN_TYPE_TXT || q->qtype == TT_DNSTUN_TYPE_NULL;
    if (tunnel_type && prefix > 1 && q->question[1] == PROBE_MARKER)
        return probe_echo(q, prefix, r, out);
    bool tunnel_name = prefix > 0 && decode_name(q->question, q->key, prefix, r) == 0;
    if (tunnel_name && tunnel_type) {
        r->kind = TT_DNSTUN_DATA;
        r->why = NULL;
        return 0;
    }
    /* A tunnel name asked for another type exists, without data of that
     * type (NODATA): that is what a resolver minimising query names
     * (RFC 9156) asks first, with type A, and NXDOMAIN would make unbound
     * ask once more to check it (harden-below-nxdomain) before the real
     * query. */
    if (tunnel_name)
        r->why = "a tunnel name asked for another type";
    if (prefix == 0)
        r->why = "a query for the zone's apex";
    r->len = 0;
    return authoritative(z, r, prefix, tunnel_name, out);
}

/* Bytes of TXT data for a payload of LEN bytes: a length byte per string
 * of up to 255, and one empty string for an empty payload. */
static size_t txt_rdlen(size_t len)
{
    return len == 0 ? 1 : len + (len + 254) / 255;
}

size_t tt_dnstun_answer_room(const tt_dnstun_q *q, size_t limit)
{
    if (limit > TT_DNSTUN_MSG_MAX)
        limit = TT_DNSTUN_MSG_MAX;
    size_t fixed = TT_DNS_HEADER_LEN + q->qlen + 12 + (q->edns ? 11 : 0);
    if (limit <= fixed)
        return 0;
    size_t rd = limit - fixed;
    if (q->qtype == TT_DNSTUN_TYPE_NULL)
        return rd;
    /* The largest P with txt_rdlen(P) <= RD. */
    size_t p = rd - (rd + 255) / 256;
    while (p > 0 && txt_rdlen(p) > rd)
        p--;
    return p;
}

size_t tt_dnstun_answer_room_min(void)
{
    tt_dnstun_q q = {.qtype = TT_DNSTUN_TYPE_TXT, .edns = true, .qlen = TT_DNSTUN_QUESTION_MAX};
    return tt_dnstun_answer_room(&q, TT_DNSTUN_EDNS_SIZE);
}

size_t tt_dnstun_answer_encode(const tt_dnstun_q *q, const uint8_t *payload, size_t len,
                               size_t limit, uint8_t out[TT_DNSTUN_MSG_MAX])
{
    if (len > tt_dnstun_answer_room(q, limit))
        return 0;
    size_t o = reply_head(q, TT_DNS_RCODE_NOERROR, true, 1, 0, out);
    size_t rdlen_at = put_rr(out, o, TT_DNS_HEADER_LEN, q->qtype, 0);
    size_t d = rdlen_at + 2;
    if (q->qtype == TT_DNSTUN_TYPE_NULL) {
        if (len > 0)
            memcpy(out + d, payload, len);
        d += len;
    } else {
        size_t i = 0;
        do {
            size_t n = len - i < 255 ? len - i : 255;
            out[d++] = (uint8_t)n;
            if (n > 0)
                memcpy(out + d, payload + i, n);
            d += n;
            i += n;
        } while (i < len);
    }
    tt_put16(out + rdlen_at, (unsigned)(d - rdlen_at - 2));
    return put_opt(q, 0, out, d);
}

bool tt_dnstun_pack(uint8_t *out, size_t room, size_t *used, const uint8_t *d, size_t len)
{
    if (len == 0 || len > 0xFFFF || *used > room || room - *used < len + 2)
        return false;
    tt_put16(out + *used, (unsigned)len);
    memcpy(out + *used + 2, d, len);
    *used += len + 2;
    return true;
}

int tt_dnstun_unpack(const uint8_t *p, size_t len, size_t *off, const uint8_t **d, size_t *dlen)
{
    if (*off >= len)
        return 0;
    if (len - *off < 2)
        return -1;
    size_t n = tt_get16(p + *off);
    if (n == 0 || len - *off - 2 < n)
        return -1;
    *d = p + *off + 2;
    *dlen = n;
    *off += 2 + n;
    return 1;
}

/* Copies the data of a TXT record (RDLEN bytes at RD) into OUT, the
 * character-strings joined. Returns the length, or -1 when a string runs
 * past the record. */
static long txt_join(const uint8_t *rd, size_t rdlen, uint8_t *out)
{
    size_t o = 0;
    for (size_t p = 0; p < rdlen;) {
        size_t n = rd[p++];
        if (rdlen - p < n)
            return -1;
        memcpy(out + o, rd + p, n);
        o += n;
        p += n;
    }
    return (long)o;
}

static int answer_decode(const uint8_t *msg, size_t len, const uint8_t *query, size_t qlen,
                         uint8_t *out, size_t *out_len, const char **why)
{
    if (qlen < TT_DNS_HEADER_LEN + 5 || len < TT_DNS_HEADER_LEN) {
        *why = "shorter than a DNS header";
        return -EINVAL;
    }
    if (tt_get16(msg) != tt_get16(query)) {
        *why = "another id";
        return -EINVAL;
    }
    unsigned flags = tt_get16(msg + 2);
    if (!(flags & FLAG_QR) || OPCODE(flags) != 0 || tt_get16(msg + 4) != 1) {
        *why = "not a response to a standard query with one question";
        return -EINVAL;
    }
    uint8_t want[TT_DNS_NAME_MAX], got[TT_DNS_NAME_MAX];
    size_t want_len, got_len, qpos, pos;
    if (tt_dns_name_read(query, qlen, TT_DNS_HEADER_LEN, qlen, want, &want_len, &qpos, why) != 0 ||
        qlen - qpos < 4)
        return -EINVAL;
    if (tt_dns_name_read(msg, len, TT_DNS_HEADER_LEN, len, got, &got_len, &pos, why) != 0)
        return -EINVAL;
    uint16_t qtype = tt_get16(query + qpos);
    if (got_len != want_len || memcmp(got, want, want_len) != 0 || len - pos < 4 ||
        tt_get16(msg + pos) != qtype || tt_get16(msg + pos + 2) != TT_DNS_CLASS_IN) {
        *why = "an answer to another question";
        return -EINVAL;
    }
    pos += 4;
    if (flags & FLAG_TC) {
        *why = "a truncated answer";
        return -EPROTO;
    }
    if ((flags & 0xFu) != TT_DNS_RCODE_NOERROR) {
        *why = (flags & 0xFu) == TT_DNS_RCODE_SERVFAIL   ? "SERVFAIL"
               : (flags & 0xFu) == TT_DNS_RCODE_NXDOMAIN ? "NXDOMAIN"
               : (flags & 0xFu) == TT_DNS_RCODE_REFUSED  ? "REFUSED"
                                                         : "an error RCODE";
        return -EPROTO;
    }
    unsigned an = tt_get16(msg + 6);
    bool found = false;
    for (unsigned i = 0; i < an; i++) {
        if (tt_dns_name_read(msg, len, pos, len, got, &got_len, &pos, why) != 0)
            return -EPROTO;
        if (len - pos < 10) {
            *why = "a record runs past the message";
            return -EPROTO;
        }
        uint16_t type = tt_get16(msg + pos);
        uint16_t class = tt_get16(msg + pos + 2);
        size_t rdlen = tt_get16(msg + pos + 8);
        pos += 10;
        if (len - pos < rdlen) {
            *why = "a record's data runs past the message";
            return -EPROTO;
        }
        if (!found && type == qtype && class == TT_DNS_CLASS_IN && got_len == want_len &&
            memcmp(got, want, want_len) == 0) {
            /* The data is never longer than the message it came in. */
            if (type == TT_DNSTUN_TYPE_NULL) {
                memcpy(out, msg + pos, rdlen);
                *out_len = rdlen;
            } else {
                long n = txt_join(msg + pos, rdlen, out);
                if (n < 0) {
                    *why = "a TXT string runs past its record";
                    return -EPROTO;
                }
                *out_len = (size_t)n;
            }
            found = true;
        }
        pos += rdlen;
    }
    if (!found) {
        *why = "no record of the query's type for its name";
        return -EPROTO;
    }
    size_t off = 0;
    const uint8_t *d;
    size_t dlen;
    int rc;
    while ((rc = tt_dnstun_unpack(out, *out_len, &off, &d, &dlen)) > 0)
        ;
    if (rc < 0) {
        *why = "the payload's framing is broken";
        return -EPROTO;
    }
    return 0;
}

int tt_dnstun_answer_decode(const uint8_t *msg, size_t len, const uint8_t *query, size_t qlen,
                            uint8_t out[TT_DNSTUN_MSG_MAX], size_t *out_len, const char **why)
{
    const char *dummy;
    *out_len = 0;
    /* A message longer than the buffer cannot be an answer of ours, and
     * bounding it here bounds what a record can copy into OUT. */
    if (len > TT_DNSTUN_MSG_MAX) {
        if (why)
            *why = "longer than any answer of the tunnel";
        return -EPROTO;
    }
    int rc = answer_decode(msg, len, query, qlen, out, out_len, why ? why : &dummy);
    if (rc != 0)
        *out_len = 0;
    return rc;
}
