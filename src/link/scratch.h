/* Process-wide scratch buffers. A wrapping link (TLS, WebSocket, tt/1)
 * gathers its output or its decrypted input in one large buffer shared by
 * every link of its kind, instead of one per connection, so that a bulk
 * transfer allocates nothing per read or write and an idle connection holds
 * no buffer. That is safe because the loop is single-threaded and each use
 * ends within the call that began it. A use nested inside another (a link
 * stacked on a link of the same kind, whose work runs inside ours) finds the
 * buffer busy and gets a heap block instead. */
#ifndef TT_LINK_SCRATCH_H
#define TT_LINK_SCRATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* All fields are private. */
typedef struct tt_scratch {
    uint8_t *mem;
    size_t size;
    bool busy;
} tt_scratch;

/* Defines NAME, a scratch buffer of SIZE bytes with static storage. */
#define TT_SCRATCH_DEFINE(name, size)                                                              \
    static uint8_t name##_mem[size];                                                               \
    static tt_scratch name = {name##_mem, size, false}

/* The shared buffer of S when it is free and NEED bytes fit in it (*CAP set
 * to its size); otherwise a heap block of HEAP_CAP bytes (*CAP = HEAP_CAP).
 * NULL when out of memory. CAP may be NULL. Give it back with
 * tt_scratch_give before the call that took it returns, or hand a heap block
 * on (tt_scratch_shared tells which it is). */
uint8_t *tt_scratch_take(tt_scratch *s, size_t need, size_t heap_cap, size_t *cap);

/* Whether BUF is S's shared buffer. */
bool tt_scratch_shared(const tt_scratch *s, const uint8_t *buf);

/* Gives back BUF, from tt_scratch_take on S: the shared buffer becomes free,
 * a heap block is freed. NULL is ignored. */
void tt_scratch_give(tt_scratch *s, uint8_t *buf);

#endif
