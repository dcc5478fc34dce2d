/* Byte ring and range set of the ARQ engine. */
#include "session/arqbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RING_MIN 4096

int tt_arq_ring_reserve(tt_arq_ring *r, uint64_t base, size_t used, size_t need, size_t cap)
{
    if (need <= r->size)
        return 0;
    size_t size = r->size ? r->size : RING_MIN;
    while (size < need)
        size *= 2;
    if (size > cap)
        size = cap;
    uint8_t *p = malloc(size);
    if (p == NULL)
        return -ENOMEM;
    /* The kept bytes move to where the new size places their offsets. */
    for (size_t done = 0; done < used;) {
        const uint8_t *src;
        size_t n = tt_arq_ring_span(r, base + done, used - done, &src);
        size_t at = (size_t)((base + done) % size);
        size_t room = size - at;
        if (n > room)
            n = room;
        memcpy(p + at, src, n);
        done += n;
    }
    free(r->p);
    r->p = p;
    r->size = size;
    return 0;
}

void tt_arq_ring_put(tt_arq_ring *r, uint64_t off, const uint8_t *src, size_t n)
{
    while (n > 0) {
        size_t at = (size_t)(off % r->size);
        size_t k = r->size - at < n ? r->size - at : n;
        memcpy(r->p + at, src, k);
        src += k;
        off += k;
        n -= k;
    }
}

void tt_arq_ring_get(const tt_arq_ring *r, uint64_t off, uint8_t *dst, size_t n)
{
    while (n > 0) {
        const uint8_t *src;
        size_t k = tt_arq_ring_span(r, off, n, &src);
        memcpy(dst, src, k);
        dst += k;
        off += k;
        n -= k;
    }
}

size_t tt_arq_ring_span(const tt_arq_ring *r, uint64_t off, size_t n, const uint8_t **p)
{
    if (r->size == 0) {
        *p = NULL;
        return 0;
    }
    size_t at = (size_t)(off % r->size);
    *p = r->p + at;
    return r->size - at < n ? r->size - at : n;
}

void tt_arq_ring_release(tt_arq_ring *r)
{
    free(r->p);
    r->p = NULL;
    r->size = 0;
}

/* Removes slot I, shifting the ones above down. */
static void drop(tt_arq_set *s, unsigned i)
{
    memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof s->r[0]);
    s->n--;
}

int tt_arq_set_add(tt_arq_set *s, uint64_t start, uint64_t end, enum tt_arq_set_full full)
{
    /* The first range that ends at or after START could touch the new one. */
    unsigned i = 0;
    while (i < s->n && s->r[i].end < start)
        i++;
    if (i < s->n && s->r[i].start <= end) {
        /* Overlaps or touches slot I: widen it, then swallow what follows. */
        if (start < s->r[i].start)
            s->r[i].start = start;
        if (end > s->r[i].end)
            s->r[i].end = end;
        while (i + 1 < s->n && s->r[i + 1].start <= s->r[i].end) {
            if (s->r[i + 1].end > s->r[i].end)
                s->r[i].end = s->r[i + 1].end;
            drop(s, i + 1);
        }
        return 0;
    }
    if (s->n == TT_ARQ_SET_MAX) {
        if (full == TT_ARQ_SET_REFUSE)
            return -ENOSPC;
        if (full == TT_ARQ_SET_DROP_HIGH) {
            if (i == s->n)
                return 0; /* the new range is the highest: it is what goes */
            s->n--;
        } else {
            /* Merge the closest neighbours; the new range then goes in. */
            unsigned best = 0;
            for (unsigned k = 1; k + 1 < s->n; k++)
                if (s->r[k + 1].start - s->r[k].end < s->r[best + 1].start - s->r[best].end)
                    best = k;
            s->r[best].end = s->r[best + 1].end;
            drop(s, best + 1);
            /* With a slot free, the addition goes as any other (it may now
             * lie inside the widened range). */
            return tt_arq_set_add(s, start, end, full);
        }
    }
    memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof s->r[0]);
    s->r[i].start = start;
    s->r[i].end = end;
    s->n++;
    return 0;
}

void tt_arq_set_trim(tt_arq_set *s, uint64_t off)
{
    unsigned k = 0;
    while (k < s->n && s->r[k].end <= off)
        k++;
    if (k > 0) {
        memmove(&s->r[0], &s->r[k], (s->n - k) * sizeof s->r[0]);
        s->n -= k;
    }
    if (s->n > 0 && s->r[0].start < off)
        s->r[0].start = off;
}

bool tt_arq_set_covers(const tt_arq_set *s, uint64_t start, uint64_t end)
{
    if (start >= end)
        return true;
    for (unsigned i = 0; i < s->n; i++) {
        if (s->r[i].start > start)
            return false;
        if (s->r[i].end >= end)
            return true;
        if (s->r[i].end > start)
            return false;
    }
    return false;
}

uint64_t tt_arq_set_hole(const tt_arq_set *s, uint64_t from, uint64_t *next)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (s->r[i].end <= from)
            continue;
        if (s->r[i].start > from) {
            *next = s->r[i].start;
            return from;
        }
        /* FROM is inside range I: the hole starts at its end; ranges never
         * touch, so the next one starts strictly later. */
        from = s->r[i].end;
        *next = i + 1 < s->n ? s->r[i + 1].start : UINT64_MAX;
        return from;
    }
    *next = UINT64_MAX;
    return from;
}

uint64_t tt_arq_set_bytes(const tt_arq_set *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < s->n; i++)
        n += s->r[i].end - s->r[i].start;
    return n;
}
