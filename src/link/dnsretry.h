/* The DNS tunnel server's memory of recent answers, so that a resolver's
 * retry of a query (same name, perhaps another letter case and id) gets the
 * same datagrams again instead of a second hand-up of its payload
 * (docs/DNS.md, "Retries and duplicates").
 *
 * Entries are keyed by the lowercased question and kept oldest-first within
 * two bounds, a count and a byte total; adding past either forgets the
 * oldest. Lookups go through a hash table, so a query costs the same however
 * many answers are kept. */
#ifndef TT_LINK_DNSRETRY_H
#define TT_LINK_DNSRETRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_dnsretry tt_dnsretry;

/* A memory of at most MAX_ENTRIES answers and MAX_BYTES bytes of keys and
 * payloads (and the entries' own bookkeeping); NULL without memory. */
tt_dnsretry *tt_dnsretry_new(size_t max_entries, size_t max_bytes);

void tt_dnsretry_free(tt_dnsretry *r);

/* Remembers PAYLOAD (LEN bytes) as the answer to KEY (KEY_LEN bytes). An
 * entry that cannot be kept (no memory, larger than the whole bound) is
 * not kept: the cost is a duplicate, which the session layer drops. */
void tt_dnsretry_put(tt_dnsretry *r, const uint8_t *key, size_t key_len, const uint8_t *payload,
                     size_t len);

/* The answer remembered for KEY: returns 1 with *PAYLOAD (valid until the
 * next put) and *LEN set, or 0. */
int tt_dnsretry_get(const tt_dnsretry *r, const uint8_t *key, size_t key_len,
                    const uint8_t **payload, size_t *len);

/* Entries and bytes kept now. */
size_t tt_dnsretry_count(const tt_dnsretry *r);
size_t tt_dnsretry_bytes(const tt_dnsretry *r);

#endif
