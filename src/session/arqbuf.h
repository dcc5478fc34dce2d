/* The two bounded containers of the ARQ engine (src/session/arq.c):
 *
 * - a byte ring addressed by stream offset, which grows by doubling up to a
 *   cap and is released when it holds nothing, so an idle engine keeps no
 *   data buffer;
 * - a set of byte ranges with a fixed number of slots, whose owner says
 *   what an addition that needs one slot too many does: be refused (the
 *   receiver then drops the data it cannot track), widen the closest pair
 *   into one (a superset: right for what must be resent, where resending a
 *   few bytes too many is harmless), or drop the highest ranges (a subset:
 *   right for what the peer acknowledged, where forgetting a range only
 *   costs a resend). */
#ifndef TT_SESSION_ARQBUF_H
#define TT_SESSION_ARQBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/arqwire.h"

/* A ring of SIZE bytes (0: none allocated) in which stream offset O lives
 * at P[O % SIZE]. Its owner knows which offsets it holds. */
typedef struct tt_arq_ring {
    uint8_t *p;
    size_t size;
} tt_arq_ring;

/* Makes R hold offsets [BASE, BASE + NEED), keeping the bytes of [BASE,
 * BASE + USED) (USED <= NEED). Grows by doubling from 4 KiB, never past
 * CAP (NEED <= CAP). Returns 0 or -ENOMEM, R unchanged. */
int tt_arq_ring_reserve(tt_arq_ring *r, uint64_t base, size_t used, size_t need, size_t cap);

/* Copies N bytes in at offset OFF / out from offset OFF. The offsets lie
 * within what was reserved. */
void tt_arq_ring_put(tt_arq_ring *r, uint64_t off, const uint8_t *src, size_t n);
void tt_arq_ring_get(const tt_arq_ring *r, uint64_t off, uint8_t *dst, size_t n);

/* The longest contiguous piece of the N bytes at OFF: sets *P, returns its
 * length (at most N). */
size_t tt_arq_ring_span(const tt_arq_ring *r, uint64_t off, size_t n, const uint8_t **p);

/* Frees the ring's memory. */
void tt_arq_ring_release(tt_arq_ring *r);

#define TT_ARQ_SET_MAX 32

/* Ranges kept ascending, disjoint and not touching. */
typedef struct tt_arq_set {
    unsigned n;
    tt_arq_range r[TT_ARQ_SET_MAX];
} tt_arq_set;

enum tt_arq_set_full {
    TT_ARQ_SET_REFUSE,    /* leave the set as it was and return -ENOSPC */
    TT_ARQ_SET_WIDEN,     /* merge the two closest ranges (gap included) */
    TT_ARQ_SET_DROP_HIGH, /* drop the highest range */
};

/* Adds [START, END) (START < END), merging with what it overlaps or
 * touches. Returns 0, or -ENOSPC under TT_ARQ_SET_REFUSE. */
int tt_arq_set_add(tt_arq_set *s, uint64_t start, uint64_t end, enum tt_arq_set_full full);

/* Removes every byte below OFF. */
void tt_arq_set_trim(tt_arq_set *s, uint64_t off);

/* Whether [START, END) lies wholly in one range of S (an empty range does). */
bool tt_arq_set_covers(const tt_arq_set *s, uint64_t start, uint64_t end);

/* The lowest offset at or above FROM that S does not hold; *NEXT is the
 * start of the next range above it (UINT64_MAX if none), so [result, *NEXT)
 * is a hole. */
uint64_t tt_arq_set_hole(const tt_arq_set *s, uint64_t from, uint64_t *next);

/* Bytes held in S. */
uint64_t tt_arq_set_bytes(const tt_arq_set *s);

#endif
