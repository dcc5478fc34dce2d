#include "link/scratch.h"

#include <stdlib.h>

uint8_t *tt_scratch_take(tt_scratch *s, size_t need, size_t heap_cap, size_t *cap)
{
    uint8_t *buf;
    size_t n;
    if (!s->busy && need <= s->size) {
        s->busy = true;
        buf = s->mem;
        n = s->size;
    } else {
        buf = malloc(heap_cap > 0 ? heap_cap : 1);
        n = heap_cap;
    }
    if (cap != NULL)
        *cap = buf != NULL ? n : 0;
    return buf;
}

bool tt_scratch_shared(const tt_scratch *s, const uint8_t *buf)
{
    return buf == s->mem;
}

void tt_scratch_give(tt_scratch *s, uint8_t *buf)
{
    if (buf == s->mem)
        s->busy = false;
    else
        free(buf);
}
