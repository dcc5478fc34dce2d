/* Recent answers of the DNS tunnel server (link/dnsretry.h): a FIFO of
 * entries, each one allocation holding its key and payload, and a hash
 * table of chains over them. The table has a bucket per expected entry, so
 * chains stay short; the hash is FNV-1a, and the full key is compared, so a
 * crafted collision costs a longer chain, never a wrong answer. */
#include "link/dnsretry.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    struct entry *hnext; /* bucket chain */
    struct entry *fnext; /* the next younger entry */
    uint64_t hash;
    size_t key_len, len;
    uint8_t data[]; /* key, then payload */
} entry;

struct tt_dnsretry {
    size_t max_entries, max_bytes;
    size_t count, bytes;
    entry *oldest, *youngest;
    size_t nbuckets;
    entry *buckets[];
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211u;
    return h;
}

static size_t cost(const entry *e)
{
    return sizeof *e + e->key_len + e->len;
}

tt_dnsretry *tt_dnsretry_new(size_t max_entries, size_t max_bytes)
{
    size_t nb = 1;
    while (nb < max_entries)
        nb <<= 1;
    tt_dnsretry *r = calloc(1, sizeof *r + nb * sizeof(entry *));
    if (r == NULL)
        return NULL;
    r->max_entries = max_entries;
    r->max_bytes = max_bytes;
    r->nbuckets = nb;
    return r;
}

static void forget_oldest(tt_dnsretry *r)
{
    entry *e = r->oldest;
    entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    r->oldest = e->fnext;
    if (r->oldest == NULL)
        r->youngest = NULL;
    r->count--;
    r->bytes -= cost(e);
    free(e);
}

void tt_dnsretry_free(tt_dnsretry *r)
{
    if (r == NULL)
        return;
    while (r->oldest != NULL)
        forget_oldest(r);
    free(r);
}

void tt_dnsretry_put(tt_dnsretry *r, const uint8_t *key, size_t key_len, const uint8_t *payload,
                     size_t len)
{
    if (sizeof(entry) + key_len + len > r->max_bytes || r->max_entries == 0)
        return;
    entry *e = malloc(sizeof *e + key_len + len);
    if (e == NULL)
        return;
    e->hash = fnv(key, key_len);
    e->key_len = key_len;
    e->len = len;
    memcpy(e->data, key, key_len);
    if (len > 0)
        memcpy(e->data + key_len, payload, len);
    while (r->count > 0 && (r->count + 1 > r->max_entries || r->bytes + cost(e) > r->max_bytes))
        forget_oldest(r);
    entry **b = &r->buckets[e->hash & (r->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    e->fnext = NULL;
    if (r->youngest)
        r->youngest->fnext = e;
    else
        r->oldest = e;
    r->youngest = e;
    r->count++;
    r->bytes += cost(e);
}

int tt_dnsretry_get(const tt_dnsretry *r, const uint8_t *key, size_t key_len,
                    const uint8_t **payload, size_t *len)
{
    uint64_t h = fnv(key, key_len);
    for (const entry *e = r->buckets[h & (r->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->key_len == key_len && memcmp(e->data, key, key_len) == 0) {
            *payload = e->data + key_len;
            *len = e->len;
            return 1;
        }
    return 0;
}

size_t tt_dnsretry_count(const tt_dnsretry *r)
{
    return r->count;
}

size_t tt_dnsretry_bytes(const tt_dnsretry *r)
{
    return r->bytes;
}
