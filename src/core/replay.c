#include "core/replay.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void tt_replay_init(tt_replay *r, size_t cap, uint64_t span)
{
    memset(r, 0, sizeof *r);
    size_t c = 64;
    while (c < cap)
        c <<= 1;
    r->cap = c;
    r->span = span ? span : 1;
}

/* Salts are random, so their first bytes are already a good hash. */
static size_t slot_of(const tt_replay *r, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)h & (r->cap - 1);
}

static bool is_empty(const uint8_t *slot)
{
    static const uint8_t zero[TT_REPLAY_KEY_LEN];
    return memcmp(slot, zero, TT_REPLAY_KEY_LEN) == 0;
}

/* Returns the slot holding KEY, or the empty slot where it would go. */
static uint8_t *find(const tt_replay *r, uint8_t *table, const uint8_t *key)
{
    size_t i = slot_of(r, key);
    for (;;) {
        uint8_t *s = table + i * TT_REPLAY_KEY_LEN;
        if (is_empty(s) || memcmp(s, key, TT_REPLAY_KEY_LEN) == 0)
            return s;
        i = (i + 1) & (r->cap - 1);
    }
}

static void rotate(tt_replay *r, uint64_t now)
{
    if (now < r->start + r->span)
        return;
    free(r->old);
    if (now >= r->start + 2 * r->span) {
        /* Both generations are stale. */
        free(r->cur);
        r->old = NULL;
        r->n_old = 0;
        r->start = now;
    } else {
        /* Generations keep their fixed boundaries: starting the new one at
         * NOW would let sparse traffic keep old salts past 2 * SPAN. */
        r->old = r->cur;
        r->n_old = r->n_cur;
        r->start += r->span;
    }
    r->cur = NULL;
    r->n_cur = 0;
}

/* The all-zero key marks an empty slot; a salt that starts with 16 zero
 * bytes (probability 2^-128) shares a key with another. */
static void key_of(const uint8_t *salt, uint8_t key[TT_REPLAY_KEY_LEN])
{
    memcpy(key, salt, TT_REPLAY_KEY_LEN);
    if (is_empty(key))
        key[0] = 1;
}

bool tt_replay_seen(const tt_replay *r, const uint8_t *salt)
{
    uint8_t key[TT_REPLAY_KEY_LEN];
    key_of(salt, key);
    return (r->old && !is_empty(find(r, r->old, key))) ||
           (r->cur && !is_empty(find(r, r->cur, key)));
}

int tt_replay_check(tt_replay *r, const uint8_t *salt, uint64_t now)
{
    uint8_t key[TT_REPLAY_KEY_LEN];
    key_of(salt, key);
    rotate(r, now);
    if (r->old && !is_empty(find(r, r->old, key)))
        return -EEXIST;
    if (r->cur == NULL) {
        r->cur = calloc(r->cap, TT_REPLAY_KEY_LEN);
        if (r->cur == NULL)
            return -ENOMEM;
    }
    uint8_t *s = find(r, r->cur, key);
    if (!is_empty(s))
        return -EEXIST;
    if (r->n_cur >= r->cap / 4 * 3)
        return -ENOSPC;
    memcpy(s, key, TT_REPLAY_KEY_LEN);
    r->n_cur++;
    return 0;
}

uint64_t tt_replay_begin(tt_replay *r, uint64_t now_ms)
{
    r->first = now_ms / 1000 + 1;
    return r->first * 1000 - now_ms;
}

bool tt_replay_covers(const tt_replay *r, uint64_t stamp)
{
    return stamp >= r->first;
}

void tt_replay_free(tt_replay *r)
{
    free(r->cur);
    free(r->old);
    r->cur = r->old = NULL;
}
