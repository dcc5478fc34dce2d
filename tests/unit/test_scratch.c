/* Tests of the process-wide scratch buffers: the shared buffer while it is
 * free and big enough, a heap block of the asked size otherwise (a nested
 * use, a larger need), and each given back the way it came. */
#include <criterion/criterion.h>

#include "link/scratch.h"

TT_SCRATCH_DEFINE(g_s, 64);

Test(scratch, shared_then_heap_when_nested)
{
    size_t cap = 0;
    uint8_t *a = tt_scratch_take(&g_s, 10, 100, &cap);
    cr_assert(tt_scratch_shared(&g_s, a));
    cr_assert_eq(cap, 64);
    /* A use inside the first gets its own block, of the size asked. */
    uint8_t *b = tt_scratch_take(&g_s, 10, 100, &cap);
    cr_assert(b != NULL && !tt_scratch_shared(&g_s, b));
    cr_assert_eq(cap, 100);
    b[99] = 1; /* ASan: the whole block is there */
    tt_scratch_give(&g_s, b);
    tt_scratch_give(&g_s, a);
    /* Given back, the shared buffer is free again. */
    uint8_t *c = tt_scratch_take(&g_s, 0, 1, NULL);
    cr_assert_eq(c, a);
    tt_scratch_give(&g_s, c);
}

Test(scratch, heap_when_the_need_does_not_fit)
{
    size_t cap = 0;
    uint8_t *a = tt_scratch_take(&g_s, 65, 65, &cap);
    cr_assert(a != NULL && !tt_scratch_shared(&g_s, a));
    cr_assert_eq(cap, 65);
    /* The shared buffer was not taken by the failed fit. */
    uint8_t *b = tt_scratch_take(&g_s, 64, 1, &cap);
    cr_assert(tt_scratch_shared(&g_s, b));
    tt_scratch_give(&g_s, b);
    tt_scratch_give(&g_s, a);
    tt_scratch_give(&g_s, NULL);
}
