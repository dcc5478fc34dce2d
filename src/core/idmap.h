/* A fixed-size hash map from 32-bit ids to pointers: open addressing with
 * linear probing, and deletion by shifting the entries after it back (no
 * tombstones), so a lookup stays short however many entries came and went.
 * For a table of connections found by an id on every datagram (the dns://
 * server's clients).
 *
 * The capacity is fixed at init; the owner bounds its entries below it (a
 * map at most half full keeps probes short). Ids must be unique in the
 * map. Ids that an untrusted party chooses could be made to collide: use
 * it only for entries that were authenticated before they were added. */
#ifndef TT_CORE_IDMAP_H
#define TT_CORE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_idmap_entry {
    uint32_t id;
    void *val; /* NULL: a free slot */
} tt_idmap_entry;

typedef struct tt_idmap {
    tt_idmap_entry *e; /* private */
    size_t mask;       /* private: capacity - 1 */
    unsigned bits;     /* private */
    size_t n;          /* read-only: entries */
} tt_idmap;

/* Room for at least CAP entries (rounded up to a power of two, at least 16).
 * Returns 0 or -ENOMEM. */
int tt_idmap_init(tt_idmap *m, size_t cap);
void tt_idmap_free(tt_idmap *m);

/* The value of ID, or NULL. */
void *tt_idmap_get(const tt_idmap *m, uint32_t id);

/* Adds ID (not in the map) with VAL (not NULL). Returns 0, or -ENOSPC when
 * the map is full. */
int tt_idmap_put(tt_idmap *m, uint32_t id, void *val);

/* Removes ID if present; returns its value, or NULL. */
void *tt_idmap_del(tt_idmap *m, uint32_t id);

#endif
