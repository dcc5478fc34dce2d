/* The sans-I/O core of a resumable session (see core.h). */
#include "session/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tt_sess_chunk {
    tt_sess_chunk *next;
    uint64_t off; /* offset of data[0] */
    size_t len;
    uint8_t data[TT_SESS_CHUNK];
};

/* Spare chunks, shared by every session of the process. Acknowledgments free
 * a megabyte of chunks at a time during a transfer, which glibc answers by
 * trimming the top of its heap and growing it again at the next write (a
 * brk pair per megabyte); a bounded cache keeps those. It is process-wide,
 * like the links' scratch buffers, so an idle session still holds none. */
#define SPARE_MAX 32
static tt_sess_chunk *spare;
static unsigned nspare;

static tt_sess_chunk *chunk_new(void)
{
    tt_sess_chunk *k = spare;
    if (k) {
        spare = k->next;
        nspare--;
        return k;
    }
    return malloc(sizeof *k);
}

static void chunk_free(tt_sess_chunk *k)
{
    if (nspare < SPARE_MAX) {
        k->next = spare;
        spare = k;
        nspare++;
        return;
    }
    free(k);
}

void tt_sess_core_init(tt_sess_core *c)
{
    memset(c, 0, sizeof *c);
}

void tt_sess_core_free(tt_sess_core *c)
{
    while (c->head) {
        tt_sess_chunk *k = c->head;
        c->head = k->next;
        chunk_free(k);
    }
    c->tail = c->cur = NULL;
    c->held = 0;
}

static uint32_t inflight_max(const tt_sess_core *c)
{
    return c->inflight_max ? c->inflight_max : TT_SESS_INFLIGHT_MAX;
}

int tt_sess_core_write(tt_sess_core *c, const uv_buf_t *bufs, unsigned nbufs)
{
    if (c->fin_queued)
        return -EPIPE;
    for (unsigned i = 0; i < nbufs; i++) {
        const uint8_t *p = (const uint8_t *)bufs[i].base;
        size_t n = bufs[i].len;
        while (n > 0) {
            tt_sess_chunk *k = c->tail;
            if (k == NULL || k->len == TT_SESS_CHUNK) {
                k = chunk_new();
                if (k == NULL)
                    return -ENOMEM;
                k->next = NULL;
                k->off = c->snd_end;
                k->len = 0;
                if (c->tail)
                    c->tail->next = k;
                else
                    c->head = k;
                c->tail = k;
                c->held += sizeof *k;
            }
            /* No send point means everything written was sent: the bytes
             * to send next start in the chunk written now. */
            if (c->cur == NULL)
                c->cur = k;
            size_t take = TT_SESS_CHUNK - k->len;
            if (take > n)
                take = n;
            memcpy(k->data + k->len, p, take);
            k->len += take;
            c->snd_end += take;
            p += take;
            n -= take;
        }
    }
    return 0;
}

void tt_sess_core_shutdown(tt_sess_core *c)
{
    c->fin_queued = true;
}

size_t tt_sess_core_unsent(const tt_sess_core *c)
{
    return (size_t)(c->snd_end - (c->snd_nxt < c->snd_end ? c->snd_nxt : c->snd_end));
}

/* Points cur at the chunk holding snd_nxt (after a rejoin moved it back). */
static void seek(tt_sess_core *c)
{
    tt_sess_chunk *k = c->head;
    while (k && k->off + k->len <= c->snd_nxt)
        k = k->next;
    c->cur = k;
}

bool tt_sess_core_next(tt_sess_core *c, uint8_t hdr[TT_SESS_HDR_LEN], const uint8_t **data,
                       size_t *len)
{
    if (c->snd_nxt < c->snd_end) {
        if (c->snd_nxt - c->snd_una >= inflight_max(c))
            return false;
        tt_sess_chunk *k = c->cur;
        while (k && k->off + k->len <= c->snd_nxt)
            k = k->next;
        c->cur = k;
        if (k == NULL)
            return false; /* cannot happen: unacknowledged bytes are kept */
        size_t at = (size_t)(c->snd_nxt - k->off);
        size_t n = k->len - at;
        if (n > TT_SESS_DATA_MAX)
            n = TT_SESS_DATA_MAX;
        /* The FIN rides on the last DATA frame when it is queued already. */
        bool fin = c->fin_queued && c->snd_nxt + n == c->snd_end;
        tt_sess_hdr_encode(TT_SESS_DATA, fin ? TT_SESS_FLAG_FIN : 0, (uint16_t)n, c->snd_nxt, hdr);
        *data = k->data + at;
        *len = n;
        c->snd_nxt += n + (fin ? 1 : 0);
        if (c->snd_nxt > c->snd_max)
            c->snd_max = c->snd_nxt;
        if (fin)
            c->fin_sent = true;
        return true;
    }
    if (c->fin_queued && !c->fin_sent) {
        tt_sess_hdr_encode(TT_SESS_DATA, TT_SESS_FLAG_FIN, 0, c->snd_end, hdr);
        *data = NULL;
        *len = 0;
        c->snd_nxt = c->snd_end + 1;
        if (c->snd_nxt > c->snd_max)
            c->snd_max = c->snd_nxt;
        c->fin_sent = true;
        return true;
    }
    return false;
}

int tt_sess_core_ack(tt_sess_core *c, uint64_t cum)
{
    uint64_t top = c->snd_max > c->snd_nxt ? c->snd_max : c->snd_nxt;
    if (cum > top)
        return -EPROTO;
    if (cum <= c->snd_una)
        return 0;
    bool skip = cum > c->snd_nxt;
    if (skip) {
        /* Acknowledged past the send point that a rejoin moved back: those
         * bytes need not go again. */
        c->snd_nxt = cum;
        c->fin_sent = c->fin_queued && cum == c->snd_end + 1;
    }
    c->snd_una = cum;
    if (c->fin_queued && cum == c->snd_end + 1)
        c->fin_acked = true;
    while (c->head && c->head->off + c->head->len <= cum && c->head->len == TT_SESS_CHUNK) {
        tt_sess_chunk *k = c->head;
        c->head = k->next;
        if (c->cur == k)
            c->cur = c->head;
        chunk_free(k);
        c->held -= sizeof *k;
    }
    if (c->head == NULL) {
        /* Every chunk was full and is acknowledged: none may be pointed at
         * (a freed tail would be written into and linked from). */
        c->tail = c->cur = NULL;
        return 0;
    }
    /* The last chunk goes too once all of it is acknowledged, so an idle
     * session holds no buffer; the next write starts a new one. */
    if (c->head && c->head == c->tail && c->head->off + c->head->len <= cum) {
        chunk_free(c->head);
        c->held -= sizeof(tt_sess_chunk);
        c->head = c->tail = c->cur = NULL;
    }
    if (skip)
        seek(c);
    return 0;
}

int tt_sess_core_rejoin(tt_sess_core *c, uint64_t peer_rcv)
{
    uint64_t top = c->snd_end + (c->fin_queued ? 1 : 0);
    if (peer_rcv > top)
        return -EPROTO;
    /* A peer that joins a new leg while the old one still carries data may
     * acknowledge more on the old leg after its JOIN (or JOINED) reported
     * less: what it acknowledged, it has. */
    if (peer_rcv < c->snd_una)
        peer_rcv = c->snd_una;
    /* What the peer has is acknowledged; the rest goes again. */
    c->snd_nxt = top;
    int rc = tt_sess_core_ack(c, peer_rcv);
    c->snd_nxt = peer_rcv;
    c->fin_sent = c->fin_queued && peer_rcv == top;
    seek(c);
    return rc;
}

int tt_sess_core_input(tt_sess_core *c, uint64_t offset, size_t len, bool fin, size_t *skip,
                       bool *eof_now)
{
    *skip = 0;
    *eof_now = false;
    if (c->eof) {
        /* Everything after the FIN is a duplicate of what came before. */
        if (offset + len + (fin ? 1 : 0) <= c->rcv_nxt) {
            *skip = len;
            return 0;
        }
        return -EPROTO;
    }
    if (offset > c->rcv_nxt)
        return -EPROTO;
    uint64_t dup = c->rcv_nxt - offset;
    *skip = dup < len ? (size_t)dup : len;
    c->rcv_nxt += len - *skip;
    if (fin && offset + len == c->rcv_nxt) {
        c->rcv_nxt++;
        c->eof = true;
        *eof_now = true;
    }
    return 0;
}

bool tt_sess_core_ack_due(const tt_sess_core *c)
{
    return c->rcv_nxt - c->rcv_acked >= inflight_max(c) / 4 ||
           (c->eof && c->rcv_acked < c->rcv_nxt);
}

bool tt_sess_core_ack_owed(const tt_sess_core *c)
{
    return c->rcv_acked < c->rcv_nxt;
}

size_t tt_sess_core_ack_frame(tt_sess_core *c, uint8_t out[TT_SESS_ACK_MAX])
{
    c->rcv_acked = c->rcv_nxt;
    return tt_sess_ack_encode(c->rcv_nxt, inflight_max(c), NULL, 0, out);
}
