/* The two-byte length framing of DNS over TCP (codec/dnsframe.h). */
#include "codec/dnsframe.h"

#include <string.h>

void tt_dnsframe_init(tt_dnsframe *f, uint8_t *buf, size_t cap)
{
    memset(f, 0, sizeof *f);
    f->buf = buf;
    f->cap = cap;
}

void tt_dnsframe_prefix(uint8_t out[2], size_t len)
{
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
}

size_t tt_dnsframe_feed(tt_dnsframe *f, const uint8_t *in, size_t n, const uint8_t **msg,
                        size_t *len)
{
    size_t used = 0;
    *msg = NULL;
    *len = 0;
    while (used < n) {
        if (f->skip > 0) {
            size_t k = n - used < f->skip ? n - used : f->skip;
            f->skip -= k;
            used += k;
            continue;
        }
        if (f->lenhave < 2) {
            f->lenb[f->lenhave++] = in[used++];
            if (f->lenhave < 2)
                continue;
            f->need = (size_t)f->lenb[0] << 8 | f->lenb[1];
            f->have = 0;
            if (f->need == 0 || f->need > f->cap) {
                /* Dropped whole; the next prefix follows it. */
                f->skipped++;
                f->skip = f->need;
                f->lenhave = 0;
            }
            continue;
        }
        size_t want = f->need - f->have;
        if (f->have == 0 && n - used >= want) {
            /* Whole in the caller's bytes: lent from there, not copied. */
            *msg = in + used;
        } else {
            size_t k = n - used < want ? n - used : want;
            memcpy(f->buf + f->have, in + used, k);
            f->have += k;
            used += k;
            if (f->have < f->need)
                continue;
            *msg = f->buf;
            want = 0;
        }
        used += want;
        *len = f->need;
        f->lenhave = 0;
        return used;
    }
    return used;
}
