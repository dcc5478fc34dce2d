/* What every fuzz harness shares: the libFuzzer entry point's prototype and
 * CHECK, which aborts (a finding) when an invariant of the code under test
 * does not hold. */
#ifndef TT_FUZZ_CHECK_H
#define TT_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Reads fields off the input; past its end every byte is zero, so a short
 * input still drives every path with defined values. */
typedef struct cursor {
    const uint8_t *p;
    size_t n, off;
} cursor;

static inline uint8_t u8(cursor *c)
{
    return c->off < c->n ? c->p[c->off++] : 0;
}

static inline size_t u16(cursor *c)
{
    size_t hi = u8(c);
    return (hi << 8) | u8(c);
}

static inline size_t u32(cursor *c)
{
    size_t v = 0;
    for (int i = 0; i < 4; i++)
        v = (v << 8) | u8(c);
    return v;
}

static inline uint64_t u64(cursor *c)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | u8(c);
    return v;
}

#endif
