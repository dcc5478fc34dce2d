/* Tests of the replay memory (src/core/replay.c) against its contract in
 * replay.h: a salt is remembered for at least SPAN seconds and at most
 * 2 * SPAN, there are no false "seen" answers, and a full generation refuses
 * rather than forgets. Time is passed in, so every case is exact. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/replay.h"

#define SPAN 10
#define T0 1700000000u

/* A distinct salt for each N: the number in its first bytes and a marker in
 * the last, so two different N never share the 16-byte key. */
static void salt_of(uint32_t n, uint8_t salt[32])
{
    memset(salt, 0xa5, 32);
    memcpy(salt, &n, sizeof n);
    salt[4] = 0x5a;
}

Test(replay, unseen_then_seen)
{
    tt_replay r;
    tt_replay_init(&r, 1000, SPAN);
    uint8_t a[32], b[32];
    tt_random(a, 32);
    memcpy(b, a, 32);
    b[0] ^= 1;
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert_eq(tt_replay_check(&r, a, T0), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, a, T0 + 1), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, b, T0), 0, "a different salt taken for a");
    cr_assert_eq(tt_replay_check(&r, b, T0), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, a, T0), -EEXIST);
    tt_replay_free(&r);
}

Test(replay, seen_looks_without_remembering)
{
    /* A server judges a first flight's salt before the flight is complete:
     * the look must not make a later check of the same salt fail. */
    tt_replay r;
    tt_replay_init(&r, 1000, SPAN);
    uint8_t a[32];
    tt_random(a, 32);
    cr_assert_not(tt_replay_seen(&r, a), "an empty memory saw a salt");
    cr_assert_not(tt_replay_seen(&r, a), "looking remembered the salt");
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert(tt_replay_seen(&r, a));
    cr_assert(tt_replay_seen(&r, a), "looking forgot the salt");
    tt_replay_free(&r);
}

Test(replay, key_is_the_first_16_bytes)
{
    /* As documented: bytes 16..31 do not take part. */
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t a[32], b[32];
    tt_random(a, 32);
    memcpy(b, a, 32);
    b[31] ^= 0xff;
    b[16] ^= 0xff;
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert_eq(tt_replay_check(&r, b, T0), -EEXIST);
    b[15] ^= 1;
    cr_assert_eq(tt_replay_check(&r, b, T0), 0);
    tt_replay_free(&r);
}

Test(replay, init_rounds_capacity)
{
    static const size_t in[][2] = {
        {0, 64}, {1, 64}, {64, 64}, {65, 128}, {1000, 1024}, {1024, 1024}, {1u << 17, 1u << 17}};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        tt_replay r;
        tt_replay_init(&r, in[i][0], SPAN);
        cr_assert_eq(r.cap, in[i][1], "cap %zu -> %zu, want %zu", in[i][0], r.cap, in[i][1]);
        cr_assert_null(r.cur, "memory allocated before first use");
        cr_assert_null(r.old);
        tt_replay_free(&r);
    }
    tt_replay r;
    tt_replay_init(&r, 64, 0);
    cr_assert_eq(r.span, 1, "a zero span would never rotate");
    tt_replay_free(&r);
}

/* Inserts salt A at T0 + OFF in a memory whose generation began at T0 and
 * checks it is still known DELAY seconds later. */
static int check_after(uint64_t off, uint64_t delay)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t first[32], a[32];
    salt_of(1, first);
    salt_of(2, a);
    cr_assert_eq(tt_replay_check(&r, first, T0), 0);
    cr_assert_eq(tt_replay_check(&r, a, T0 + off), 0);
    int rc = tt_replay_check(&r, a, T0 + off + delay);
    tt_replay_free(&r);
    return rc;
}

Test(replay, remembered_for_at_least_span)
{
    /* Whatever moment of its generation a salt came in. */
    for (uint64_t off = 0; off < SPAN; off++)
        for (uint64_t d = 0; d <= SPAN; d++)
            cr_assert_eq(check_after(off, d), -EEXIST, "inserted at +%llu, checked %llu later",
                         (unsigned long long)off, (unsigned long long)d);
}

Test(replay, remembered_at_least_span_under_steady_traffic)
{
    /* One new salt every second, and the probe checked along the way: the
     * probe must stay known for SPAN seconds after it was inserted, wherever
     * the rotations fall. */
    for (uint64_t off = 0; off < 2 * SPAN; off++) {
        tt_replay r;
        tt_replay_init(&r, 1024, SPAN);
        uint8_t probe[32], s[32];
        salt_of(0xffffff, probe);
        uint32_t n = 0;
        for (uint64_t t = T0; t <= T0 + off; t++) {
            salt_of(n++, s);
            cr_assert_eq(tt_replay_check(&r, s, t), 0);
        }
        cr_assert_eq(tt_replay_check(&r, probe, T0 + off), 0);
        for (uint64_t t = T0 + off; t <= T0 + off + SPAN; t++) {
            salt_of(n++, s);
            cr_assert_eq(tt_replay_check(&r, s, t), 0);
            cr_assert_eq(tt_replay_check(&r, probe, t), -EEXIST, "probe of +%llu lost at +%llu",
                         (unsigned long long)off, (unsigned long long)(t - T0));
        }
        tt_replay_free(&r);
    }
}

Test(replay, forgotten_after_two_spans_when_idle)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t a[32];
    salt_of(7, a);
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert_eq(tt_replay_check(&r, a, T0 + 2 * SPAN), 0, "still known after 2 * SPAN");
    /* And it was put back. */
    cr_assert_eq(tt_replay_check(&r, a, T0 + 2 * SPAN), -EEXIST);
    tt_replay_free(&r);
}

Test(replay, forgotten_after_two_spans_under_steady_traffic)
{
    /* A new salt every second; the probe must be gone 2 * SPAN seconds after
     * it came in. */
    for (uint64_t off = 0; off < SPAN; off++) {
        tt_replay r;
        tt_replay_init(&r, 1024, SPAN);
        uint8_t probe[32], s[32];
        salt_of(0xffffff, probe);
        uint32_t n = 0;
        for (uint64_t t = T0; t < T0 + off; t++) {
            salt_of(n++, s);
            cr_assert_eq(tt_replay_check(&r, s, t), 0);
        }
        cr_assert_eq(tt_replay_check(&r, probe, T0 + off), 0);
        for (uint64_t t = T0 + off; t < T0 + off + 2 * SPAN; t++) {
            salt_of(n++, s);
            cr_assert_eq(tt_replay_check(&r, s, t), 0);
        }
        cr_assert_eq(tt_replay_check(&r, probe, T0 + off + 2 * SPAN), 0,
                     "probe of +%llu known %d s later", (unsigned long long)off, 2 * SPAN);
        tt_replay_free(&r);
    }
}

Test(replay, forgotten_after_two_spans_with_sparse_traffic)
{
    /* replay.h: "every salt is remembered for at least SPAN seconds and at
     * most 2 * SPAN". Here the only other handshake arrives just before the
     * first generation would have expired; A must still be gone 2 * SPAN
     * after it came in. */
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t a[32], b[32];
    salt_of(1, a);
    salt_of(2, b);
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert_eq(tt_replay_check(&r, b, T0 + 2 * SPAN - 1), 0);
    /* cr_expect, so the memory is freed whatever the outcome. */
    cr_expect_eq(tt_replay_check(&r, a, T0 + 2 * SPAN), 0, "A still known %d s after it came in",
                 2 * SPAN);
    tt_replay_free(&r);

    /* The same, checked later still: nearly 3 * SPAN. */
    tt_replay_init(&r, 64, SPAN);
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert_eq(tt_replay_check(&r, b, T0 + 2 * SPAN - 1), 0);
    cr_expect_eq(tt_replay_check(&r, a, T0 + 3 * SPAN - 2), 0,
                 "A still known %d s after it came in", 3 * SPAN - 2);
    tt_replay_free(&r);
}

Test(replay, rotation_keeps_the_old_generation_for_lookup)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t a[32], b[32], c[32];
    salt_of(1, a);
    salt_of(2, b);
    salt_of(3, c);
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    /* One SPAN later: a new generation; A moves to the old one. */
    cr_assert_eq(tt_replay_check(&r, b, T0 + SPAN), 0);
    cr_assert_not_null(r.old, "no old generation after a rotation");
    cr_assert_eq(r.n_old, 1);
    cr_assert_eq(r.n_cur, 1);
    cr_assert_eq(tt_replay_check(&r, a, T0 + SPAN), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, b, T0 + SPAN), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, a, T0 + 2 * SPAN - 1), -EEXIST);
    /* Two SPANs: A's generation is dropped, B's is the old one. */
    cr_assert_eq(tt_replay_check(&r, c, T0 + 2 * SPAN), 0);
    cr_assert_eq(tt_replay_check(&r, b, T0 + 2 * SPAN), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, c, T0 + 2 * SPAN), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, a, T0 + 2 * SPAN), 0, "A outlived its generation");
    /* Far later: everything is stale at once. */
    cr_assert_eq(tt_replay_check(&r, b, T0 + 100 * SPAN), 0);
    cr_assert_eq(tt_replay_check(&r, c, T0 + 100 * SPAN), 0);
    cr_assert_null(r.old);
    tt_replay_free(&r);
}

Test(replay, a_clock_step_back_forgets_nothing)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t a[32];
    salt_of(1, a);
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert_eq(tt_replay_check(&r, a, T0 - 1000), -EEXIST);
    cr_assert_eq(tt_replay_check(&r, a, T0 + 1), -EEXIST);
    tt_replay_free(&r);
}

Test(replay, full_generation_refuses)
{
    static const size_t caps[] = {64, 128, 1024};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        tt_replay r;
        tt_replay_init(&r, caps[c], SPAN);
        size_t limit = caps[c] / 4 * 3;
        uint8_t s[32];
        uint32_t n = 0;
        for (size_t i = 0; i < limit; i++) {
            salt_of(n++, s);
            cr_assert_eq(tt_replay_check(&r, s, T0), 0, "cap %zu: salt %zu", caps[c], i);
        }
        salt_of(n++, s);
        cr_assert_eq(tt_replay_check(&r, s, T0), -ENOSPC, "cap %zu: no refusal at 3/4", caps[c]);
        cr_assert_eq(tt_replay_check(&r, s, T0 + 1), -ENOSPC);
        /* A known salt is still reported as seen, not as "full". */
        uint8_t known[32];
        salt_of(0, known);
        cr_assert_eq(tt_replay_check(&r, known, T0), -EEXIST);
        /* The next generation has room again, and still remembers. */
        cr_assert_eq(tt_replay_check(&r, s, T0 + SPAN), 0);
        cr_assert_eq(tt_replay_check(&r, known, T0 + SPAN), -EEXIST);
        tt_replay_free(&r);
    }
}

Test(replay, zero_salt)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t z[32] = {0}, z2[32] = {0};
    z2[20] = 9; /* zero key, nonzero tail */
    cr_assert_eq(tt_replay_check(&r, z, T0), 0);
    cr_assert_eq(tt_replay_check(&r, z, T0), -EEXIST, "the all-zero key taken for a free slot");
    cr_assert_eq(tt_replay_check(&r, z2, T0), -EEXIST);
    cr_assert_eq(r.n_cur, 1);
    /* Other salts are unaffected. */
    uint8_t a[32];
    salt_of(3, a);
    cr_assert_eq(tt_replay_check(&r, a, T0), 0);
    cr_assert_eq(tt_replay_check(&r, z, T0 + SPAN), -EEXIST, "lost in the old generation");
    tt_replay_free(&r);
}

Test(replay, colliding_slots_probe_and_wrap)
{
    /* Salts whose first 8 bytes are equal land in the same slot; with all
     * ones that slot is the last, so probing must wrap to the start. */
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    uint8_t s[32];
    for (uint32_t i = 0; i < 40; i++) {
        memset(s, 0xff, 32);
        memcpy(s + 8, &i, sizeof i);
        cr_assert_eq(tt_replay_check(&r, s, T0), 0, "salt %u", i);
    }
    for (uint32_t i = 0; i < 40; i++) {
        memset(s, 0xff, 32);
        memcpy(s + 8, &i, sizeof i);
        cr_assert_eq(tt_replay_check(&r, s, T0), -EEXIST, "salt %u", i);
        /* And after a rotation, from the old generation. */
        cr_assert_eq(tt_replay_check(&r, s, T0 + SPAN), -EEXIST, "old salt %u", i);
    }
    memset(s, 0xff, 32);
    s[15] = 0;
    cr_assert_eq(tt_replay_check(&r, s, T0 + SPAN), 0);
    tt_replay_free(&r);
}

Test(replay, many_random_salts_no_false_positives)
{
    enum { N = 40000 };
    tt_replay r;
    tt_replay_init(&r, 1u << 16, SPAN);
    uint8_t(*salts)[32] = malloc(2 * N * sizeof *salts);
    cr_assert_not_null(salts);
    tt_random(salts, 2 * N * sizeof *salts);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(tt_replay_check(&r, salts[i], T0), 0, "fresh salt %zu taken as seen", i);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(tt_replay_check(&r, salts[i], T0 + 1), -EEXIST, "salt %zu forgotten", i);
    /* Rotated into the old generation: the second batch must still all be
     * new, and the first batch still known. */
    for (size_t i = N; i < 2 * N; i++)
        cr_assert_eq(tt_replay_check(&r, salts[i], T0 + SPAN), 0, "fresh salt %zu taken as seen",
                     i);
    for (size_t i = 0; i < 2 * N; i++)
        cr_assert_eq(tt_replay_check(&r, salts[i], T0 + SPAN + 1), -EEXIST, "salt %zu", i);
    free(salts);
    tt_replay_free(&r);
}

Test(replay, free_is_safe_before_use_and_twice)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    tt_replay_free(&r);
    tt_replay_free(&r);
    cr_assert_null(r.cur);
    cr_assert_null(r.old);
}

Test(replay, stamps_before_the_first_whole_second_after_start_are_not_covered)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    /* Started 300 ms into second T0: a stamp of T0 may belong to a message
     * that a process stopped earlier in that second accepted. */
    cr_assert_eq(tt_replay_begin(&r, (uint64_t)T0 * 1000 + 300), 700);
    cr_assert(!tt_replay_covers(&r, T0 - 100));
    cr_assert(!tt_replay_covers(&r, T0));
    cr_assert(tt_replay_covers(&r, T0 + 1));
    cr_assert(tt_replay_covers(&r, T0 + 1000));
    /* Started exactly on a second: the wait is the whole next second, as
     * the stamp of that second may already have been used. */
    cr_assert_eq(tt_replay_begin(&r, (uint64_t)T0 * 1000), 1000);
    cr_assert(!tt_replay_covers(&r, T0));
    cr_assert(tt_replay_covers(&r, T0 + 1));
    tt_replay_free(&r);
}

Test(replay, a_memory_never_begun_covers_every_stamp)
{
    tt_replay r;
    tt_replay_init(&r, 64, SPAN);
    cr_assert(tt_replay_covers(&r, 0));
    cr_assert(tt_replay_covers(&r, T0));
}
