/* ARQ packet encoders and decoder (docs/ARQ.md). */
#include "codec/arqwire.h"

#include <errno.h>
#include <string.h>

size_t tt_arq_varint_len(uint64_t v)
{
    if (v < (UINT64_C(1) << 6))
        return 1;
    if (v < (UINT64_C(1) << 14))
        return 2;
    if (v < (UINT64_C(1) << 30))
        return 4;
    return 8;
}

size_t tt_arq_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = tt_arq_varint_len(v);
    static const uint8_t prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
    p[0] |= prefix[n];
    return n;
}

size_t tt_arq_varint_get(const uint8_t *p, size_t n, uint64_t *v)
{
    if (n == 0)
        return 0;
    size_t len = (size_t)1 << (p[0] >> 6);
    if (n < len)
        return 0;
    uint64_t x = p[0] & 0x3f;
    for (size_t i = 1; i < len; i++)
        x = x << 8 | p[i];
    *v = x;
    return len;
}

size_t tt_arq_ack_put(uint8_t *p, size_t room, const tt_arq_ack *a)
{
    /* The count is written last, once the ranges that fit are known; it is
     * at most TT_ARQ_SACK_MAX, one byte. */
    size_t head = 1 + tt_arq_varint_len(a->largest) + tt_arq_varint_len(a->delay_us) +
                  tt_arq_varint_len(a->cum) + tt_arq_varint_len(a->limit) + 1;
    if (head > room)
        return 0;
    size_t off = 0;
    p[off++] = (uint8_t)(TT_ARQ_ACK | (a->fin ? TT_ARQ_FLAG_FIN : 0));
    off += tt_arq_varint_put(p + off, a->largest);
    off += tt_arq_varint_put(p + off, a->delay_us);
    off += tt_arq_varint_put(p + off, a->cum);
    off += tt_arq_varint_put(p + off, a->limit);
    size_t count_at = off++;
    unsigned n = 0;
    uint64_t prev = a->cum;
    while (n < a->n && n < TT_ARQ_SACK_MAX) {
        uint64_t gap = a->r[n].start - prev, len = a->r[n].end - a->r[n].start;
        size_t need = tt_arq_varint_len(gap) + tt_arq_varint_len(len);
        if (off + need > room)
            break;
        off += tt_arq_varint_put(p + off, gap);
        off += tt_arq_varint_put(p + off, len);
        prev = a->r[n].end;
        n++;
    }
    p[count_at] = (uint8_t)n;
    return off;
}

size_t tt_arq_data_head_len(uint64_t off, size_t len)
{
    return 1 + tt_arq_varint_len(off) + tt_arq_varint_len(len);
}

size_t tt_arq_data_head_put(uint8_t *p, uint64_t off, size_t len, bool fin)
{
    size_t n = 0;
    p[n++] = (uint8_t)(TT_ARQ_DATA | (fin ? TT_ARQ_FLAG_FIN : 0));
    n += tt_arq_varint_put(p + n, off);
    n += tt_arq_varint_put(p + n, len);
    return n;
}

/* Reads one varint at *OFF of the N-byte packet; false when truncated. */
static bool get(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
    size_t used = tt_arq_varint_get(p + *off, n - *off, v);
    *off += used;
    return used > 0;
}

static int decode_ack(const uint8_t *p, size_t n, size_t *off, tt_arq_ack *a, const char **why)
{
    uint64_t count;
    if (!get(p, n, off, &a->largest) || !get(p, n, off, &a->delay_us) || !get(p, n, off, &a->cum) ||
        !get(p, n, off, &a->limit) || !get(p, n, off, &count)) {
        *why = "truncated ACK frame";
        return -EPROTO;
    }
    if (a->cum > a->limit) {
        *why = "ACK acknowledges bytes beyond its own window";
        return -EPROTO;
    }
    if (count > TT_ARQ_SACK_MAX) {
        *why = "ACK carries too many ranges";
        return -EPROTO;
    }
    a->n = (unsigned)count;
    uint64_t prev = a->cum;
    for (unsigned i = 0; i < a->n; i++) {
        uint64_t gap, len;
        if (!get(p, n, off, &gap) || !get(p, n, off, &len)) {
            *why = "truncated ACK range";
            return -EPROTO;
        }
        /* A zero gap would touch or overlap the range before; a zero length
         * is no range. Both are refused, so ranges are strictly ascending. */
        if (gap == 0 || len == 0) {
            *why = "ACK range empty or touching the one before";
            return -EPROTO;
        }
        if (gap > a->limit - prev || len > a->limit - prev - gap) {
            *why = "ACK range beyond its own window";
            return -EPROTO;
        }
        a->r[i].start = prev + gap;
        a->r[i].end = a->r[i].start + len;
        prev = a->r[i].end;
    }
    return 0;
}

size_t tt_arq_reset_put(uint8_t *p, size_t room, uint64_t pn, uint64_t code)
{
    size_t n = tt_arq_varint_len(pn) + 1 + tt_arq_varint_len(code);
    if (n > room)
        return 0;
    size_t off = tt_arq_varint_put(p, pn);
    p[off++] = TT_ARQ_RESET;
    off += tt_arq_varint_put(p + off, code);
    return off;
}

int tt_arq_pkt_decode(const uint8_t *p, size_t n, tt_arq_pkt *out, const char **why)
{
    memset(out, 0, sizeof *out);
    size_t off = 0;
    if (!get(p, n, &off, &out->pn)) {
        *why = "truncated packet number";
        return -EPROTO;
    }
    unsigned seen = 0; /* one bit per frame type */
    bool any = false;
    while (off < n) {
        uint8_t type = p[off++];
        if (type == TT_ARQ_PADDING)
            continue;
        /* Only ACK and DATA take the FIN bit. */
        uint8_t base = type;
        if ((type & ~TT_ARQ_FLAG_FIN) == TT_ARQ_ACK || (type & ~TT_ARQ_FLAG_FIN) == TT_ARQ_DATA)
            base = (uint8_t)(type & ~TT_ARQ_FLAG_FIN);
        if (base != TT_ARQ_PING && base != TT_ARQ_ACK && base != TT_ARQ_DATA &&
            base != TT_ARQ_BACKLOG && base != TT_ARQ_RESET) {
            *why = "unknown frame type";
            return -EPROTO;
        }
        if (seen & (1u << base)) {
            *why = "frame type repeated in one packet";
            return -EPROTO;
        }
        seen |= 1u << base;
        any = true;
        bool fin = (type & TT_ARQ_FLAG_FIN) != 0;
        if (base == TT_ARQ_PING) {
            out->ping = true;
        } else if (base == TT_ARQ_ACK) {
            out->has_ack = true;
            out->ack.fin = fin;
            int rc = decode_ack(p, n, &off, &out->ack, why);
            if (rc < 0)
                return rc;
        } else if (base == TT_ARQ_RESET) {
            out->has_reset = true;
            if (!get(p, n, &off, &out->reset_code)) {
                *why = "truncated RESET frame";
                return -EPROTO;
            }
        } else if (base == TT_ARQ_BACKLOG) {
            out->has_backlog = true;
            if (!get(p, n, &off, &out->backlog)) {
                *why = "truncated BACKLOG frame";
                return -EPROTO;
            }
        } else {
            uint64_t len;
            if (!get(p, n, &off, &out->off) || !get(p, n, &off, &len)) {
                *why = "truncated DATA frame";
                return -EPROTO;
            }
            if (len > n - off) {
                *why = "DATA frame longer than its packet";
                return -EPROTO;
            }
            if (len > TT_ARQ_VARINT_MAX - out->off) {
                *why = "DATA beyond the largest stream offset";
                return -EPROTO;
            }
            if (len == 0 && !fin) {
                *why = "empty DATA frame without FIN";
                return -EPROTO;
            }
            out->has_data = true;
            out->fin = fin;
            out->len = (size_t)len;
            out->data = p + off;
            off += (size_t)len;
        }
    }
    if (!any) {
        *why = "packet without frames";
        return -EPROTO;
    }
    return 0;
}
