/* A time-bounded memory of seen random salts, to refuse replayed
 * handshakes. Two generations of hash sets, each covering SPAN seconds:
 * lookups check both, inserts go to the current one, and when the current one
 * is SPAN old the older is dropped. So every salt is remembered for at least
 * SPAN seconds and at most 2 * SPAN, in memory bounded by twice the
 * capacity. Exact, unlike a Bloom filter: no false "seen". Time is passed in. */
#ifndef TT_CORE_REPLAY_H
#define TT_CORE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_REPLAY_KEY_LEN 16

typedef struct tt_replay {
    size_t cap;          /* read-only: slots per generation, a power of two */
    uint64_t span;       /* read-only: seconds per generation */
    uint64_t start;      /* private: when the current generation began */
    uint8_t *cur, *old;  /* private: cap * TT_REPLAY_KEY_LEN bytes each, or NULL */
    size_t n_cur, n_old; /* private */
    uint64_t first;      /* read-only: the first second whose stamps the memory covers */
} tt_replay;

/* CAP slots per generation (rounded up to a power of two, at least 64);
 * SPAN seconds per generation. Memory is allocated on first use. */
void tt_replay_init(tt_replay *r, size_t cap, uint64_t span);

/* Checks SALT (its first 16 bytes are the key) at time NOW (seconds). Returns
 * 0 when unseen (it is now remembered), -EEXIST when seen, -ENOSPC when the
 * current generation is three quarters full (refusing is safer than
 * forgetting), or -ENOMEM. */
int tt_replay_check(tt_replay *r, const uint8_t *salt, uint64_t now);

/* Whether SALT is remembered, without remembering it: for judging a first
 * flight before it is complete. May say "seen" of a salt that a lookup with
 * tt_replay_check would have forgotten by now (the generations rotate only
 * there), never the reverse. */
bool tt_replay_seen(const tt_replay *r, const uint8_t *salt);

/* The memory is empty when its process starts, so it cannot say whether a
 * message stamped before then was seen by the process before this one. This
 * marks the start, at NOW_MS (wall clock, milliseconds): from here on, stamps
 * before the next whole second are refused by tt_replay_covers (a stamp in
 * the start's own second may have been seen by a process that stopped
 * earlier in that second). Returns the milliseconds until that second: the
 * owner takes no connection before then, so that no client whose clock is
 * right is refused. */
uint64_t tt_replay_begin(tt_replay *r, uint64_t now_ms);

/* True when a message stamped STAMP (seconds) is one the memory can judge:
 * stamped no earlier than the first whole second after tt_replay_begin. */
bool tt_replay_covers(const tt_replay *r, uint64_t stamp);

void tt_replay_free(tt_replay *r);

#endif
