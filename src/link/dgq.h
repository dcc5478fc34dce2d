/* A FIFO of datagram copies with a byte bound, for layers that hold
 * datagrams until they can go: the DNS client until a query slot is free,
 * the DNS server until a client asks. */
#ifndef TT_LINK_DGQ_H
#define TT_LINK_DGQ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct tt_dgq_item {
    struct tt_dgq_item *next;
    size_t len;
    uint8_t data[];
} tt_dgq_item;

typedef struct tt_dgq {
    tt_dgq_item *head, *tail;
    size_t bytes; /* of the datagrams queued */
} tt_dgq;

/* The length of the datagram made of BUFS. */
size_t tt_dgq_len(const uv_buf_t *bufs, unsigned nbufs);

/* Copies the datagram made of BUFS to OUT (room for tt_dgq_len bytes). */
void tt_dgq_gather(uint8_t *out, const uv_buf_t *bufs, unsigned nbufs);

/* Appends a copy of the datagram made of BUFS. Returns 0, or UV_ENOBUFS when
 * the queue would then hold more than MAX bytes (or memory ran out). */
int tt_dgq_push(tt_dgq *q, const uv_buf_t *bufs, unsigned nbufs, size_t max);

/* Takes the oldest datagram off the queue (NULL when empty); the caller
 * frees it. */
tt_dgq_item *tt_dgq_pop(tt_dgq *q);

/* Frees every datagram queued. */
void tt_dgq_clear(tt_dgq *q);

#endif
