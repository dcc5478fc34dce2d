/* The DNS tunnel's server: an authoritative nameserver on UDP and TCP whose
 * tunnel queries are a datagram layer (link/dnst.h).
 *
 * Memory is bounded everywhere: clients (max_clients, the least recently
 * seen evicted), each client's queue (queue_max bytes), its held polls
 * (HELD_MAX per client), the memory of recent answers (RETRY_ENTRIES, RETRY_BYTES), TCP
 * connections (TCP_MAX, each with one message buffer of TCP_MSG_MAX and a
 * write queue past which it stops reading). A malformed query is answered
 * from the codec's fixed buffer or dropped; it allocates nothing.
 *
 * A resolver that gets no answer in time asks again, with the same name. So
 * every tunnel answer is kept in a small ring keyed by the lowercased
 * question, and a query found there is answered again with the same
 * payload and not handed up a second time: the datagrams of a lost answer
 * reach the client with the retry. A retry of a poll still held replaces
 * the held one's asker, who has given up waiting. */
#include "link/dnst.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/dnstun.h"
#include "core/log.h"
#include "link/dgq.h"
#include "link/dnsretry.h"
#include "link/link.h"
#include "link/tcp.h"
#include "link/udp.h"

#define HELD_MAX 16
/* The memory of recent answers: about a second of queries at the rates
 * unbound sustains here (docs/DNS.md), within 4 MiB. */
#define RETRY_ENTRIES 8192
#define RETRY_BYTES (4 * 1024 * 1024)
#define BUCKETS 256
#define TCP_MAX 64
#define TCP_MSG_MAX 4096
#define TCP_WRITE_MAX (64 * 1024)
#define TCP_IDLE_MS 10000
#define SWEEP_MS 1000

typedef struct dnss dnss;
typedef struct tcpc tcpc;

/* A TCP connection from a resolver. It lives until its link has closed and
 * no held poll refers to it. */
struct tcpc {
    dnss *s;
    tt_link *link;
    tcpc *prev, *next;
    unsigned refs; /* held polls that would answer here */
    bool closing, reading;
    bool eof; /* the asker has sent all its queries */
    uint64_t last;
    size_t have;
    uint8_t buf[2 + TCP_MSG_MAX];
};

/* Where an answer goes: a UDP address, or a TCP connection. */
typedef struct asker {
    tcpc *conn;
    struct sockaddr_storage addr;
} asker;

typedef struct client client;

typedef struct held {
    struct held *prev, *next;   /* the server's list, oldest first */
    struct held *cprev, *cnext; /* the client's list, oldest first */
    client *c;
    uint64_t deadline;
    asker to;
    tt_dnstun_q q;
} held;

struct client {
    client *hnext;         /* hash chain */
    client *lprev, *lnext; /* least recently seen first */
    client *dnext;         /* the list of clients with answers to give */
    bool dirty;
    uint32_t id;
    uint64_t last;
    tt_dgq queue;
    held *hhead, *htail;
    unsigned nheld;
    unsigned enc; /* the densest spelling of its names seen (codec/dnstun.h) */
};

struct dnss {
    tt_dgram base;
    tt_dnss_cfg cfg;
    tt_dnstun_zone zone;
    tt_dgram *udp;
    tt_tcp_listener *tcp;
    uv_timer_t hold_timer, sweep_timer, flush_timer;
    bool receiving, closing;
    unsigned closes; /* handles still closing */
    tt_dgram_close_cb close_cb;
    void *close_ud;

    client *buckets[BUCKETS];
    client *lru_head, *lru_tail;
    client *dirty;
    unsigned nclients;
    held *hhead, *htail;
    unsigned nheld;
    tcpc *conns;
    unsigned nconns;

    tt_dnsretry *answers; /* recent answers, for resolvers' retries */

    tt_dnss_stats st;
    uint8_t out[2 + TT_DNSTUN_MSG_MAX]; /* two bytes for TCP's length */
    tt_dnstun_req req;
};

void tt_dnst_addr(uint32_t id, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    out->ss_family = AF_UNSPEC;
    uint8_t *p = (uint8_t *)out + offsetof(struct sockaddr, sa_data);
    p[0] = (uint8_t)(id >> 24);
    p[1] = (uint8_t)(id >> 16);
    p[2] = (uint8_t)(id >> 8);
    p[3] = (uint8_t)id;
    /* A mark that the rest of an AF_UNSPEC address is ours. */
    memcpy(p + 4, "dnst", 4);
}

int64_t tt_dnst_addr_client(const struct sockaddr *sa)
{
    if (sa == NULL || sa->sa_family != AF_UNSPEC)
        return -1;
    const uint8_t *p = (const uint8_t *)sa + offsetof(struct sockaddr, sa_data);
    if (memcmp(p + 4, "dnst", 4) != 0)
        return -1;
    return (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

static uint64_t now_ms(const dnss *s)
{
    return uv_now(s->base.loop);
}

/* ---- sending replies ---- */

static void tcpc_unref(tcpc *t);

/* Sends the LEN-byte reply in s->out + 2 to TO. */
static void send_reply(dnss *s, const asker *to, size_t len)
{
    if (to->conn != NULL) {
        tcpc *t = to->conn;
        if (t->closing)
            return;
        s->out[0] = (uint8_t)(len >> 8);
        s->out[1] = (uint8_t)len;
        /* A failed write shows up as the link's error. */
        (void)tt_link_write1(t->link, s->out, len + 2);
        if (tt_link_pending(t->link) > TCP_WRITE_MAX && t->reading) {
            tt_link_read_stop(t->link);
            t->reading = false;
        }
        return;
    }
    uv_buf_t b = uv_buf_init((char *)s->out + 2, (unsigned)len);
    /* A refused send is a lost answer; the resolver asks again. */
    (void)tt_dgram_send(s->udp, &b, 1, (const struct sockaddr *)&to->addr);
}

/* The largest reply TO takes for Q. */
static size_t limit_for(const asker *to, const tt_dnstun_q *q)
{
    if (to->conn != NULL)
        return TT_DNSTUN_MSG_MAX;
    return q->udp_max < TT_DNSTUN_MSG_MAX ? q->udp_max : TT_DNSTUN_MSG_MAX;
}

/* Answers Q with the datagrams of C's queue that fit, and keeps the answer
 * for a retry unless it is an empty answer to a poll (a retry of that may
 * as well wait for data like a new poll). A head datagram too long for a
 * UDP asker gets TC, so that the resolver asks again over TCP, and stays
 * queued. DATA says Q carried a datagram. */
static void answer(dnss *s, client *c, const tt_dnstun_q *q, const asker *to, bool data)
{
    size_t limit = limit_for(to, q);
    size_t room = tt_dnstun_answer_room(q, limit);
    uint8_t payload[TT_DNSTUN_MSG_MAX];
    size_t used = 0;
    while (c != NULL && c->queue.head != NULL) {
        tt_dgq_item *it = c->queue.head;
        if (!tt_dnstun_pack(payload, room, &used, it->data, it->len))
            break;
        s->st.down_bytes += it->len;
        free(tt_dgq_pop(&c->queue));
    }
    size_t n;
    if (used == 0 && c != NULL && c->queue.head != NULL) {
        n = tt_dnstun_reply_empty(q, TT_DNS_RCODE_NOERROR, true, s->out + 2);
        s->st.truncated++;
    } else {
        n = tt_dnstun_answer_encode(q, payload, used, limit, s->out + 2);
        if (used > 0 || data)
            tt_dnsretry_put(s->answers, q->key, q->key_len, payload, used);
    }
    send_reply(s, to, n);
}

/* ---- held polls ---- */

static void held_unlink(dnss *s, held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        s->hhead = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        s->htail = h->prev;
    client *c = h->c;
    if (h->cprev)
        h->cprev->cnext = h->cnext;
    else
        c->hhead = h->cnext;
    if (h->cnext)
        h->cnext->cprev = h->cprev;
    else
        c->htail = h->cprev;
    c->nheld--;
    s->nheld--;
}

/* Answers the held poll H with what its client has queued, and frees it. */
static void held_answer(dnss *s, held *h)
{
    held_unlink(s, h);
    answer(s, h->c, &h->q, &h->to, false);
    if (h->to.conn)
        tcpc_unref(h->to.conn);
    free(h);
}

static void on_hold_timer(uv_timer_t *t);

static void arm_hold_timer(dnss *s)
{
    if (s->hhead == NULL) {
        uv_timer_stop(&s->hold_timer);
        return;
    }
    uint64_t now = now_ms(s);
    uint64_t d = s->hhead->deadline > now ? s->hhead->deadline - now : 0;
    uv_timer_start(&s->hold_timer, on_hold_timer, d, 0);
}

static void on_hold_timer(uv_timer_t *t)
{
    dnss *s = t->data;
    uint64_t now = now_ms(s);
    while (s->hhead != NULL && s->hhead->deadline <= now)
        held_answer(s, s->hhead);
    arm_hold_timer(s);
}

static void hold(dnss *s, client *c, const tt_dnstun_q *q, const asker *to)
{
    if (c->nheld >= HELD_MAX)
        held_answer(s, c->hhead);
    held *h = malloc(sizeof *h);
    if (h == NULL) {
        answer(s, c, q, to, false);
        return;
    }
    h->c = c;
    h->q = *q;
    h->to = *to;
    if (to->conn)
        to->conn->refs++;
    h->deadline = now_ms(s) + s->cfg.hold_ms;
    h->next = NULL;
    h->prev = s->htail;
    if (s->htail)
        s->htail->next = h;
    else
        s->hhead = h;
    s->htail = h;
    h->cnext = NULL;
    h->cprev = c->htail;
    if (c->htail)
        c->htail->cnext = h;
    else
        c->hhead = h;
    c->htail = h;
    c->nheld++;
    s->nheld++;
    if (s->hhead == h)
        arm_hold_timer(s);
}

/* A held poll of the same question, if any: a resolver's retry of it. */
static held *held_find(client *c, const tt_dnstun_q *q)
{
    for (held *h = c->hhead; h != NULL; h = h->cnext)
        if (h->q.key_len == q->key_len && memcmp(h->q.key, q->key, q->key_len) == 0)
            return h;
    return NULL;
}

/* ---- clients ---- */

static client *client_find(dnss *s, uint32_t id)
{
    for (client *c = s->buckets[id % BUCKETS]; c != NULL; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static void lru_unlink(dnss *s, client *c)
{
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        s->lru_head = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    else
        s->lru_tail = c->lprev;
}

static void lru_append(dnss *s, client *c)
{
    c->lnext = NULL;
    c->lprev = s->lru_tail;
    if (s->lru_tail)
        s->lru_tail->lnext = c;
    else
        s->lru_head = c;
    s->lru_tail = c;
}

/* Forgets C: its held polls are answered empty first, its queue dropped. */
static void client_free(dnss *s, client *c)
{
    tt_dgq_clear(&c->queue);
    while (c->hhead)
        held_answer(s, c->hhead);
    client **pp = &s->buckets[c->id % BUCKETS];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    if (c->dirty) {
        client **dp = &s->dirty;
        while (*dp != c)
            dp = &(*dp)->dnext;
        *dp = c->dnext;
    }
    lru_unlink(s, c);
    s->nclients--;
    free(c);
}

static client *client_get(dnss *s, uint32_t id)
{
    client *c = client_find(s, id);
    if (c != NULL) {
        lru_unlink(s, c);
        lru_append(s, c);
        c->last = now_ms(s);
        return c;
    }
    if (s->nclients >= s->cfg.max_clients)
        client_free(s, s->lru_head);
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->id = id;
    c->last = now_ms(s);
    c->hnext = s->buckets[id % BUCKETS];
    s->buckets[id % BUCKETS] = c;
    lru_append(s, c);
    s->nclients++;
    tt_debug("dns server: new client %08x (%u known)", id, s->nclients);
    return c;
}

/* ---- queries ---- */

static void tunnel_query(dnss *s, const asker *to)
{
    tt_dnstun_req *r = &s->req;
    s->st.tunnel++;
    const uint8_t *kept;
    size_t kept_len;
    if (tt_dnsretry_get(s->answers, r->q.key, r->q.key_len, &kept, &kept_len)) {
        s->st.retries++;
        size_t n = tt_dnstun_answer_encode(&r->q, kept, kept_len, limit_for(to, &r->q), s->out + 2);
        if (n == 0)
            n = tt_dnstun_reply_empty(&r->q, TT_DNS_RCODE_NOERROR, true, s->out + 2);
        send_reply(s, to, n);
        return;
    }
    client *c = client_get(s, r->client);
    if (c == NULL) {
        send_reply(s, to, tt_dnstun_reply_empty(&r->q, TT_DNS_RCODE_SERVFAIL, false, s->out + 2));
        return;
    }
    if (r->enc != TT_DNSTUN_ENC_B32)
        s->st.dense++;
    if (r->enc > c->enc) {
        c->enc = r->enc;
        tt_info("dns server: client %08x sends %s query names", (unsigned)c->id,
                c->enc == TT_DNSTUN_ENC_B128 ? "base128" : "base64");
    }
    held *h = held_find(c, &r->q);
    if (h != NULL) {
        /* The first asker has given up; answer the one who asks now. */
        if (h->to.conn)
            tcpc_unref(h->to.conn);
        h->q = r->q;
        h->to = *to;
        if (to->conn)
            to->conn->refs++;
        s->st.retries++;
        return;
    }
    /* Copies of what the answer needs: the handler may close the server,
     * or evict this client by sending to another. */
    tt_dnstun_q q = r->q;
    uint32_t id = r->client;
    if (r->len > 0) {
        s->st.up_bytes += r->len;
        if (s->receiving) {
            struct sockaddr_storage from;
            tt_dnst_addr(id, &from);
            s->base.handler->on_datagram(&s->base, s->base.ud, r->payload, r->len,
                                         (const struct sockaddr *)&from);
            if (s->closing)
                return;
            /* The handler may have sent to a client that evicted this one. */
            c = client_find(s, id);
        }
    }
    if (c == NULL || c->queue.head != NULL || r->len > 0 || s->cfg.hold_ms == 0) {
        /* A query with data is answered at once: its client has more to
         * send and needs the slot back. */
        answer(s, c, &q, to, r->len > 0);
        return;
    }
    hold(s, c, &q, to);
}

/* Serves the LEN-byte message MSG from TO. */
static void serve(dnss *s, const uint8_t *msg, size_t len, const asker *to)
{
    s->st.queries++;
    tt_dnstun_req *r = &s->req;
    size_t n = tt_dnstun_serve(&s->zone, msg, len, r, s->out + 2);
    switch (r->kind) {
    case TT_DNSTUN_DROP:
        s->st.dropped++;
        tt_trace("dns server: dropped a message: %s", r->why);
        return;
    case TT_DNSTUN_REPLY:
        s->st.authority++;
        if (r->rcode == TT_DNS_RCODE_FORMERR || r->rcode == TT_DNS_RCODE_NOTIMP)
            tt_debug("dns server: %s answered with rcode %u", r->why, r->rcode);
        if (to->conn == NULL && n > r->q.udp_max) {
            n = tt_dnstun_reply_empty(&r->q, r->rcode, true, s->out + 2);
            s->st.truncated++;
        }
        send_reply(s, to, n);
        return;
    case TT_DNSTUN_DATA:
        tunnel_query(s, to);
        return;
    }
}

static void on_udp(tt_dgram *d, void *ud, const uint8_t *data, size_t len,
                   const struct sockaddr *from)
{
    (void)d;
    dnss *s = ud;
    asker to = {.conn = NULL};
    size_t alen =
        from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    memcpy(&to.addr, from, alen);
    serve(s, data, len, &to);
}

static void on_udp_error(tt_dgram *d, void *ud, int err)
{
    (void)d;
    (void)ud;
    /* ICMP errors from an asker that went away; the socket goes on. */
    tt_debug("dns server: UDP: %s", uv_strerror(err));
}

static const tt_dgram_handler udp_handler = {.on_datagram = on_udp, .on_error = on_udp_error};

/* ---- TCP ---- */

static void maybe_done(dnss *s);

static void tcpc_free(tcpc *t)
{
    dnss *s = t->s;
    if (t->prev)
        t->prev->next = t->next;
    else
        s->conns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    s->nconns--;
    free(t);
    maybe_done(s);
}

static void tcpc_close(tcpc *t);

/* Closes a connection whose asker has finished once every answer owed to
 * it is written: closing earlier would drop queued answers. */
static void tcpc_maybe_end(tcpc *t)
{
    if (t->eof && !t->closing && t->refs == 0 && tt_link_pending(t->link) == 0)
        tcpc_close(t);
}

static void tcpc_unref(tcpc *t)
{
    t->refs--;
    if (t->refs == 0 && t->closing && t->link == NULL) {
        tcpc_free(t);
        return;
    }
    if (!t->closing)
        tcpc_maybe_end(t);
}

static void on_tcpc_closed(void *ud)
{
    tcpc *t = ud;
    t->link = NULL;
    if (t->refs == 0)
        tcpc_free(t);
}

static void tcpc_close(tcpc *t)
{
    if (t->closing)
        return;
    t->closing = true;
    tt_link_close(t->link, on_tcpc_closed, t);
}

static void on_tcp_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    tcpc *t = ud;
    dnss *s = t->s;
    t->last = now_ms(s);
    while (len > 0 && !t->closing) {
        size_t need = t->have < 2 ? 2 : 2 + ((size_t)t->buf[0] << 8 | t->buf[1]);
        size_t take = need - t->have < len ? need - t->have : len;
        memcpy(t->buf + t->have, data, take);
        t->have += take;
        data += take;
        len -= take;
        if (t->have == 2) {
            size_t mlen = (size_t)t->buf[0] << 8 | t->buf[1];
            if (mlen > TCP_MSG_MAX || mlen == 0) {
                tt_debug("dns server: TCP message of %zu bytes: closing", mlen);
                tcpc_close(t);
                return;
            }
            continue;
        }
        if (t->have < need)
            continue;
        asker to = {.conn = t};
        t->refs++; /* serving may close the server, and with it T */
        serve(s, t->buf + 2, t->have - 2, &to);
        t->have = 0;
        bool gone = t->closing;
        tcpc_unref(t);
        if (gone)
            return;
    }
}

static void on_tcp_eof(tt_link *l, void *ud)
{
    (void)l;
    tcpc *t = ud;
    t->eof = true;
    tcpc_maybe_end(t);
}

static void on_tcp_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    tcpc_close(ud);
}

static void on_tcp_drained(tt_link *l, void *ud)
{
    tcpc *t = ud;
    if (!t->reading && !t->closing && !t->eof) {
        t->reading = true;
        tt_link_read_start(l);
    }
    tcpc_maybe_end(t);
}

static const tt_link_handler tcp_handler = {
    .on_data = on_tcp_data,
    .on_eof = on_tcp_eof,
    .on_error = on_tcp_error,
    .on_drained = on_tcp_drained,
};

static void on_accept(void *ud, tt_link *link)
{
    dnss *s = ud;
    tcpc *t = s->nconns < TCP_MAX ? calloc(1, sizeof *t) : NULL;
    if (t == NULL) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    t->s = s;
    t->link = link;
    t->last = now_ms(s);
    t->next = s->conns;
    if (s->conns)
        s->conns->prev = t;
    s->conns = t;
    s->nconns++;
    tt_link_set_handler(link, &tcp_handler, t);
    t->reading = true;
    if (tt_link_read_start(link) != 0)
        tcpc_close(t);
}

/* ---- timers ---- */

static void on_sweep(uv_timer_t *tm)
{
    dnss *s = tm->data;
    uint64_t now = now_ms(s);
    while (s->lru_head != NULL && now - s->lru_head->last >= s->cfg.idle_ms) {
        tt_debug("dns server: client %08x idle: forgotten", s->lru_head->id);
        client_free(s, s->lru_head);
    }
    for (tcpc *t = s->conns, *next; t != NULL; t = next) {
        next = t->next;
        if (!t->closing && t->refs == 0 && now - t->last >= TCP_IDLE_MS)
            tcpc_close(t);
    }
}

/* Answers the held polls of the clients that got data since the last
 * pass: one pass per loop turn, so that datagrams sent together share an
 * answer. */
static void on_flush(uv_timer_t *tm)
{
    dnss *s = tm->data;
    while (s->dirty != NULL) {
        client *c = s->dirty;
        s->dirty = c->dnext;
        c->dirty = false;
        while (c->queue.head != NULL && c->hhead != NULL)
            held_answer(s, c->hhead);
    }
    arm_hold_timer(s);
}

/* ---- the layer ---- */

static int dnss_send(tt_dgram *d, const uv_buf_t *bufs, unsigned nbufs, const struct sockaddr *to)
{
    dnss *s = (dnss *)d;
    if (s->closing)
        return UV_EPIPE;
    int64_t id = tt_dnst_addr_client(to);
    if (id < 0)
        return UV_EAFNOSUPPORT;
    client *c = client_find(s, (uint32_t)id);
    if (c == NULL)
        return UV_EHOSTUNREACH;
    size_t total = tt_dgq_len(bufs, nbufs);
    if (total == 0 || total > tt_dgram_max_size(d))
        return UV_EMSGSIZE;
    int rc = tt_dgq_push(&c->queue, bufs, nbufs, s->cfg.queue_max);
    if (rc != 0)
        return rc;
    if (c->hhead != NULL && !c->dirty) {
        c->dirty = true;
        c->dnext = s->dirty;
        s->dirty = c;
        uv_timer_start(&s->flush_timer, on_flush, 0, 0);
    }
    return 0;
}

static int dnss_recv_start(tt_dgram *d)
{
    dnss *s = (dnss *)d;
    if (s->closing)
        return UV_EINVAL;
    s->receiving = true;
    return 0;
}

static void dnss_recv_stop(tt_dgram *d)
{
    ((dnss *)d)->receiving = false;
}

static size_t dnss_max_size(const tt_dgram *d)
{
    (void)d;
    return tt_dnstun_answer_room_min() - 2;
}

static void maybe_done(dnss *s)
{
    if (!s->closing || s->closes > 0 || s->conns != NULL)
        return;
    tt_dgram_close_cb cb = s->close_cb;
    void *ud = s->close_ud;
    tt_dnsretry_free(s->answers);
    free(s);
    if (cb)
        cb(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    dnss *s = h->data;
    s->closes--;
    maybe_done(s);
}

static void on_udp_closed(void *ud)
{
    dnss *s = ud;
    s->closes--;
    maybe_done(s);
}

static void dnss_close(tt_dgram *d, tt_dgram_close_cb cb, void *ud)
{
    dnss *s = (dnss *)d;
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_ud = ud;
    /* Held polls are dropped, not answered: the resolvers ask again, and
     * a restarted server answers them. */
    while (s->hhead) {
        held *h = s->hhead;
        held_unlink(s, h);
        if (h->to.conn)
            h->to.conn->refs--;
        free(h);
    }
    /* Clients with datagrams waiting for the flush leave that list here,
     * not one by one in client_free (which would walk an emptied list). */
    for (client *c = s->dirty; c != NULL; c = c->dnext)
        c->dirty = false;
    s->dirty = NULL;
    while (s->lru_head)
        client_free(s, s->lru_head);
    s->closes = 4;
    uv_close((uv_handle_t *)&s->hold_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->sweep_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->flush_timer, on_handle_closed);
    if (s->tcp)
        tt_tcp_listener_close(s->tcp);
    for (tcpc *t = s->conns; t != NULL; t = t->next)
        tcpc_close(t);
    /* Connections whose link had closed already and that only waited for
     * their held polls go now. */
    for (tcpc *t = s->conns, *next; t != NULL; t = next) {
        next = t->next;
        if (t->link == NULL && t->refs == 0)
            tcpc_free(t);
    }
    tt_dgram_close(s->udp, on_udp_closed, s);
}

static const tt_dgram_ops dnss_ops = {
    .send = dnss_send,
    .recv_start = dnss_recv_start,
    .recv_stop = dnss_recv_stop,
    .max_size = dnss_max_size,
    .close = dnss_close,
};

int tt_dnss_open(uv_loop_t *loop, const tt_dnss_cfg *cfg, tt_dgram **out, const char **why)
{
    dnss *s = calloc(1, sizeof *s);
    if (s != NULL)
        s->answers = tt_dnsretry_new(RETRY_ENTRIES, RETRY_BYTES);
    if (s == NULL || s->answers == NULL) {
        free(s);
        *why = "out of memory";
        return UV_ENOMEM;
    }
    s->cfg = *cfg;
    if (s->cfg.hold_ms == 0)
        s->cfg.hold_ms = 200;
    if (s->cfg.idle_ms == 0)
        s->cfg.idle_ms = 60000;
    if (s->cfg.queue_max == 0)
        s->cfg.queue_max = 64 * 1024;
    if (s->cfg.max_clients == 0)
        s->cfg.max_clients = 1024;
    s->cfg.domain = s->cfg.ns = s->cfg.host = NULL; /* not kept: used here only */
    int rc = tt_dnstun_zone_init(&s->zone, cfg->domain, cfg->ns, (uint32_t)time(NULL), why);
    if (rc != 0)
        goto fail;
    /* With port 0 the kernel picks UDP's port, which TCP's may have taken
     * already: then another is tried. */
    for (int attempt = 0;; attempt++) {
        rc = tt_udp_open(loop, cfg->host, cfg->port, NULL, &s->udp);
        if (rc != 0) {
            *why = "cannot listen on UDP";
            goto fail;
        }
        if (cfg->no_tcp)
            break;
        rc = tt_tcp_listen(loop, cfg->host, tt_udp_port(s->udp), on_accept, s, &s->tcp);
        if (rc == 0)
            break;
        tt_dgram_close(s->udp, NULL, NULL);
        s->udp = NULL;
        if (cfg->port != 0 || rc != UV_EADDRINUSE || attempt == 15) {
            *why = "cannot listen on TCP";
            goto fail;
        }
    }
    s->base.ops = &dnss_ops;
    s->base.loop = loop;
    tt_dgram_set_handler(s->udp, &udp_handler, s);
    rc = tt_dgram_recv_start(s->udp);
    if (rc != 0) {
        *why = "cannot receive on UDP";
        if (s->tcp)
            tt_tcp_listener_close(s->tcp);
        tt_dgram_close(s->udp, NULL, NULL);
        goto fail;
    }
    uv_timer_init(loop, &s->hold_timer);
    uv_timer_init(loop, &s->sweep_timer);
    uv_timer_init(loop, &s->flush_timer);
    s->hold_timer.data = s->sweep_timer.data = s->flush_timer.data = s;
    uint64_t sweep = s->cfg.idle_ms / 4 < SWEEP_MS ? s->cfg.idle_ms / 4 + 1 : SWEEP_MS;
    uv_timer_start(&s->sweep_timer, on_sweep, sweep, sweep);
    /* The sweep alone must not keep a loop alive. */
    uv_unref((uv_handle_t *)&s->sweep_timer);
    *out = &s->base;
    return 0;
fail:
    tt_dnsretry_free(s->answers);
    free(s);
    return rc;
}

int tt_dnss_udp_port(const tt_dgram *d)
{
    return tt_udp_port(((const dnss *)d)->udp);
}

int tt_dnss_tcp_port(const tt_dgram *d)
{
    const dnss *s = (const dnss *)d;
    return s->tcp ? tt_tcp_listener_port(s->tcp) : 0;
}

void tt_dnss_get_stats(const tt_dgram *d, tt_dnss_stats *st)
{
    const dnss *s = (const dnss *)d;
    *st = s->st;
    st->clients = s->nclients;
    st->held = s->nheld;
}
