/* The id map (idmap.h): linear probing from a multiplicative hash, and
 * backward-shift deletion (Knuth, vol. 3, 6.4, algorithm R). */
#include "core/idmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

static size_t home(const tt_idmap *m, uint32_t id)
{
    /* Fibonacci hashing: the top bits of id * 2^32 / phi. */
    return (size_t)((uint32_t)(id * 2654435769u) >> (32 - m->bits));
}

int tt_idmap_init(tt_idmap *m, size_t cap)
{
    unsigned bits = 4;
    while (((size_t)1 << bits) < cap && bits < 31)
        bits++;
    m->e = calloc((size_t)1 << bits, sizeof *m->e);
    if (m->e == NULL)
        return -ENOMEM;
    m->bits = bits;
    m->mask = ((size_t)1 << bits) - 1;
    m->n = 0;
    return 0;
}

void tt_idmap_free(tt_idmap *m)
{
    free(m->e);
    m->e = NULL;
    m->n = 0;
}

/* The slot of ID, or of the free slot where its probe ends. */
static size_t find(const tt_idmap *m, uint32_t id)
{
    size_t i = home(m, id);
    while (m->e[i].val != NULL && m->e[i].id != id)
        i = (i + 1) & m->mask;
    return i;
}

void *tt_idmap_get(const tt_idmap *m, uint32_t id)
{
    if (m->e == NULL)
        return NULL;
    return m->e[find(m, id)].val;
}

int tt_idmap_put(tt_idmap *m, uint32_t id, void *val)
{
    /* One slot always stays free, so that every probe ends. */
    if (m->e == NULL || m->n + 1 > m->mask)
        return -ENOSPC;
    size_t i = find(m, id);
    m->e[i].id = id;
    m->e[i].val = val;
    m->n++;
    return 0;
}

void *tt_idmap_del(tt_idmap *m, uint32_t id)
{
    if (m->e == NULL)
        return NULL;
    size_t hole = find(m, id);
    void *val = m->e[hole].val;
    if (val == NULL)
        return NULL;
    m->e[hole].val = NULL;
    m->n--;
    /* Entries after the hole whose probe passed through it move back into
     * it, so that no probe meets a free slot before its entry. */
    for (size_t j = (hole + 1) & m->mask; m->e[j].val != NULL; j = (j + 1) & m->mask) {
        size_t h = home(m, m->e[j].id);
        /* Whether h lies cyclically in (hole, j]: then the entry stays. */
        bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
        if (stays)
            continue;
        m->e[hole] = m->e[j];
        m->e[j].val = NULL;
        hole = j;
    }
    return val;
}
