/* A hash table of chained entries, with a doubly linked list in order of
 * use for eviction. The table has twice as many buckets as entries may be
 * held, so chains stay short; FNV-1a over the key spreads them. */
#include "entry/dnscache.h"

#include <stdlib.h>
#include <string.h>

#include "codec/dnsmsg.h"

#define BUCKETS (2 * TT_DNSCACHE_MAX)

typedef struct entry {
    struct entry *chain;       /* next in the bucket */
    struct entry *prev, *next; /* use order: head is the most recent */
    uint64_t stored_ms, expires_ms;
    uint32_t hash;
    uint8_t key[TT_DNSMSG_KEY_MAX];
    size_t klen;
    size_t len;
    uint8_t msg[]; /* the answer, LEN bytes */
} entry;

struct tt_dnscache {
    entry *bucket[BUCKETS];
    entry *head, *tail;
    size_t count, bytes;
};

static uint32_t hash(const uint8_t *k, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 16777619u;
    return h;
}

tt_dnscache *tt_dnscache_new(void)
{
    return calloc(1, sizeof(tt_dnscache));
}

static void unlink_use(tt_dnscache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(tt_dnscache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void drop(tt_dnscache *c, entry *e)
{
    entry **pp = &c->bucket[e->hash % BUCKETS];
    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    unlink_use(c, e);
    c->count--;
    c->bytes -= e->len;
    free(e);
}

static entry *find(tt_dnscache *c, const uint8_t *key, size_t klen, uint32_t h)
{
    for (entry *e = c->bucket[h % BUCKETS]; e; e = e->chain)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

void tt_dnscache_free(tt_dnscache *c)
{
    if (c == NULL)
        return;
    while (c->head)
        drop(c, c->head);
    free(c);
}

bool tt_dnscache_put(tt_dnscache *c, const uint8_t *key, size_t klen, const uint8_t *msg,
                     size_t len, uint64_t now_ms)
{
    uint32_t ttl;
    if (klen == 0 || klen > TT_DNSMSG_KEY_MAX || len > TT_DNSCACHE_ANSWER_MAX ||
        tt_dnsmsg_cache_ttl(msg, len, &ttl) != 0 || ttl == 0)
        return false;
    uint32_t h = hash(key, klen);
    entry *old = find(c, key, klen, h);
    if (old)
        drop(c, old);
    while (c->tail && (c->count >= TT_DNSCACHE_MAX || c->bytes + len > TT_DNSCACHE_BYTES))
        drop(c, c->tail);
    entry *e = malloc(sizeof *e + len);
    if (e == NULL)
        return false;
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->hash = h;
    e->len = len;
    memcpy(e->msg, msg, len);
    e->stored_ms = now_ms;
    e->expires_ms = now_ms + (uint64_t)ttl * 1000;
    e->chain = c->bucket[h % BUCKETS];
    c->bucket[h % BUCKETS] = e;
    push_front(c, e);
    c->count++;
    c->bytes += len;
    return true;
}

size_t tt_dnscache_get(tt_dnscache *c, const uint8_t *key, size_t klen, uint16_t id, uint8_t *out,
                       size_t cap, uint64_t now_ms)
{
    if (klen == 0 || klen > TT_DNSMSG_KEY_MAX)
        return 0;
    entry *e = find(c, key, klen, hash(key, klen));
    if (e == NULL)
        return 0;
    if (now_ms >= e->expires_ms) {
        drop(c, e);
        return 0;
    }
    if (e->len > cap)
        return 0;
    unlink_use(c, e);
    push_front(c, e);
    memcpy(out, e->msg, e->len);
    tt_dnsmsg_set_id(out, id);
    (void)tt_dnsmsg_age(out, e->len, (uint32_t)((now_ms - e->stored_ms) / 1000));
    return e->len;
}

size_t tt_dnscache_count(const tt_dnscache *c)
{
    return c->count;
}
