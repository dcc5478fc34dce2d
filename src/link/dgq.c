/* The bounded datagram FIFO (link/dgq.h). */
#include "link/dgq.h"

#include <stdlib.h>
#include <string.h>

size_t tt_dgq_len(const uv_buf_t *bufs, unsigned nbufs)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    return total;
}

void tt_dgq_gather(uint8_t *out, const uv_buf_t *bufs, unsigned nbufs)
{
    size_t off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        memcpy(out + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
}

int tt_dgq_push(tt_dgq *q, const uv_buf_t *bufs, unsigned nbufs, size_t max)
{
    size_t total = tt_dgq_len(bufs, nbufs);
    if (q->bytes + total > max)
        return UV_ENOBUFS;
    tt_dgq_item *it = malloc(sizeof *it + total);
    if (it == NULL)
        return UV_ENOBUFS;
    tt_dgq_gather(it->data, bufs, nbufs);
    it->len = total;
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->bytes += total;
    return 0;
}

tt_dgq_item *tt_dgq_pop(tt_dgq *q)
{
    tt_dgq_item *it = q->head;
    if (it == NULL)
        return NULL;
    q->head = it->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->bytes -= it->len;
    return it;
}

void tt_dgq_clear(tt_dgq *q)
{
    tt_dgq_item *it;
    while ((it = tt_dgq_pop(q)) != NULL)
        free(it);
}
