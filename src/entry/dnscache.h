/* The answer cache of tt client --dns: answers by question (name
 * lowercased, type, class), each kept for the TTL tt_dnsmsg_cache_ttl gives
 * it, at most TT_DNSCACHE_MAX entries and TT_DNSCACHE_BYTES bytes of
 * answers, the least recently used evicted first. Sans-I/O: the caller
 * passes the time (milliseconds of any monotonic clock). */
#ifndef TT_ENTRY_DNSCACHE_H
#define TT_ENTRY_DNSCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_DNSCACHE_MAX 4096
#define TT_DNSCACHE_BYTES (4u * 1024 * 1024)
/* Answers longer than this are not kept: a few such would crowd out many. */
#define TT_DNSCACHE_ANSWER_MAX 8192

typedef struct tt_dnscache tt_dnscache;

/* A new empty cache, or NULL when out of memory. */
tt_dnscache *tt_dnscache_new(void);
void tt_dnscache_free(tt_dnscache *c);

/* Keeps the answer MSG (LEN bytes) to the question KEY (KLEN bytes, as
 * tt_dnsmsg_q.key) if it may be cached, replacing an older one. Returns
 * true when it was kept. */
bool tt_dnscache_put(tt_dnscache *c, const uint8_t *key, size_t klen, const uint8_t *msg,
                     size_t len, uint64_t now_ms);

/* Looks KEY up. On a live hit, copies the answer into OUT (CAP bytes), with
 * ID as its id and its TTLs lowered by the whole seconds it was kept, and
 * returns its length; returns 0 on a miss, an expired entry (which is
 * dropped) or an answer longer than CAP. */
size_t tt_dnscache_get(tt_dnscache *c, const uint8_t *key, size_t klen, uint16_t id, uint8_t *out,
                       size_t cap, uint64_t now_ms);

/* Entries held, for tests and log lines. */
size_t tt_dnscache_count(const tt_dnscache *c);

#endif
