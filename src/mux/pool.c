/* The client's mux pool (see pool.h).
 *
 * Requests are in one of two places: waiting on a dial (at most
 * max-streams-per-connection per dial, so concurrent requests share a dial
 * instead of each making one), or ready, holding a stream already opened on
 * a session and waiting for the loop to hand it over (callbacks never run
 * inside tt_mux_pool_open). A ready request keeps its stream under a handler
 * of its own, so an error before the handover fails the request instead of
 * reaching nobody.
 *
 * The pool's memory goes once it is closed and its last dial, session and
 * ready request are gone, in the close callback of its idle handle. */
#include "mux/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"

typedef struct pdial pdial;
typedef struct pconn pconn;

struct tt_mux_pool_req {
    tt_mux_pool *p;
    tt_carrier_dial_cb cb;
    void *ud;
    pdial *dial;     /* waiting on this dial; NULL once ready */
    tt_link *stream; /* ready: the stream to hand over (NULL: ERR) */
    int err;
    tt_mux_pool_req *prev, *next;
};

struct pdial {
    tt_mux_pool *p;
    tt_carrier_dial *req; /* the carrier's handle, until its callback */
    tt_mux_pool_req *waiters;
    unsigned n;
    bool done;      /* the carrier's callback ran */
    bool cancelled; /* dial_cancel was called */
    pdial *prev, *next;
};

struct pconn {
    tt_mux_pool *p;
    tt_mux_session *s;
    pconn *prev, *next;
};

struct tt_mux_pool {
    tt_carrier base; /* the pool seen as a carrier */
    tt_carrier *carrier;
    tt_mux_cfg cfg;
    pconn *conns;
    pdial *dials;
    tt_mux_pool_req *ready;
    unsigned nconns, ndials;
    uv_idle_t kick;
    bool closing, freed;
};

/* Doubly linked lists with a head pointer: the same three lines for each
 * node type. */
#define LIST_ADD(head, node)                                                                       \
    do {                                                                                           \
        (node)->prev = NULL;                                                                       \
        (node)->next = (head);                                                                     \
        if (head)                                                                                  \
            (head)->prev = (node);                                                                 \
        (head) = (node);                                                                           \
    } while (0)
#define LIST_DEL(head, node)                                                                       \
    do {                                                                                           \
        if ((node)->prev)                                                                          \
            (node)->prev->next = (node)->next;                                                     \
        else                                                                                       \
            (head) = (node)->next;                                                                 \
        if ((node)->next)                                                                          \
            (node)->next->prev = (node)->prev;                                                     \
        (node)->prev = (node)->next = NULL;                                                        \
    } while (0)

static void on_kick_closed(uv_handle_t *h)
{
    tt_mux_pool *p = h->data;
    p->carrier->type->close(p->carrier);
    free(p);
}

/* Frees a closed pool once nothing refers to it. */
static void maybe_free(tt_mux_pool *p)
{
    if (!p->closing || p->freed || p->conns || p->dials || p->ready)
        return;
    p->freed = true;
    uv_close((uv_handle_t *)&p->kick, on_kick_closed);
}

/* Ready requests. */

static void held_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    (void)l, (void)ud, (void)d, (void)n;
}

static void held_event(tt_link *l, void *ud)
{
    (void)l, (void)ud;
}

static void held_error(tt_link *l, void *ud, int err)
{
    tt_mux_pool_req *r = ud;
    tt_link_close(l, NULL, NULL);
    r->stream = NULL;
    r->err = err;
}

/* What a stream not yet handed over hears: only an error can come. */
static const tt_link_handler held_handler = {held_data, held_event, held_error, held_event};

static void on_kick(uv_idle_t *h)
{
    tt_mux_pool *p = h->data;
    uv_idle_stop(h);
    /* Requests made inside these callbacks wait for the next turn. */
    tt_mux_pool_req *list = p->ready;
    p->ready = NULL;
    while (list) {
        tt_mux_pool_req *r = list;
        LIST_DEL(list, r);
        r->p = NULL; /* no longer cancellable */
        if (r->stream)
            r->cb(r->ud, 0, r->stream);
        else
            r->cb(r->ud, r->err ? r->err : UV_ECONNRESET, NULL);
        free(r);
    }
    maybe_free(p);
}

static void make_ready(tt_mux_pool *p, tt_mux_pool_req *r, tt_link *stream)
{
    r->dial = NULL;
    r->stream = stream;
    tt_link_set_handler(stream, &held_handler, r);
    LIST_ADD(p->ready, r);
    uv_idle_start(&p->kick, on_kick);
}

/* Sessions. */

static void on_session_end(void *ud, int err)
{
    pconn *c = ud;
    if (err != 0 && err != UV_ECANCELED)
        tt_info("mux session ended: %s", tt_mux_why(c->s) ? tt_mux_why(c->s) : uv_strerror(err));
    tt_mux_pool *p = c->p;
    LIST_DEL(p->conns, c);
    p->nconns--;
    tt_mux_close(c->s);
    free(c);
    maybe_free(p);
}

static const tt_mux_callbacks pool_session_cbs = {.on_stream = NULL, .on_end = on_session_end};

/* A stream on a live session with room, or NULL. */
static tt_link *open_on_existing(tt_mux_pool *p)
{
    for (pconn *c = p->conns; c; c = c->next) {
        tt_link *l = tt_mux_open(c->s);
        if (l)
            return l;
    }
    return NULL;
}

/* Dials. */

static void dial_detach(pdial *d, tt_mux_pool_req *r)
{
    LIST_DEL(d->waiters, r);
    d->n--;
    r->dial = NULL;
}

static void on_dialed(void *ud, int status, tt_link *link)
{
    pdial *d = ud;
    tt_mux_pool *p = d->p;
    d->done = true;
    d->req = NULL;
    LIST_DEL(p->dials, d);
    p->ndials--;
    if (status == 0 && (d->cancelled || p->closing)) {
        tt_link_close(link, NULL, NULL);
        status = UV_ECANCELED;
    }
    pconn *c = NULL;
    if (status == 0) {
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            tt_link_close(link, NULL, NULL);
            status = UV_ENOMEM;
        } else {
            c->p = p;
            c->s = tt_mux_client(link, &p->cfg, &pool_session_cbs, c);
            if (c->s == NULL) {
                free(c);
                c = NULL;
                status = UV_ENOMEM;
            } else {
                LIST_ADD(p->conns, c);
                p->nconns++;
            }
        }
    }
    /* The outcome is reached in a callback from the loop: report it at once.
     * A waiter's callback may cancel another waiter, so take them one by one
     * from the list. */
    while (d->waiters) {
        tt_mux_pool_req *r = d->waiters;
        dial_detach(d, r);
        tt_link *l = c ? tt_mux_open(c->s) : NULL;
        if (l == NULL && c)
            l = open_on_existing(p);
        tt_carrier_dial_cb cb = r->cb;
        void *rud = r->ud;
        free(r);
        if (l)
            cb(rud, 0, l);
        else
            cb(rud, status < 0 ? status : UV_ECONNREFUSED, NULL);
    }
    free(d);
    maybe_free(p);
}

static pdial *dial_new(tt_mux_pool *p, int *rc)
{
    pdial *d = calloc(1, sizeof *d);
    if (d == NULL) {
        *rc = UV_ENOMEM;
        return NULL;
    }
    d->p = p;
    *rc = p->carrier->type->dial(p->carrier, NULL, on_dialed, d, &d->req);
    if (*rc < 0) {
        free(d);
        return NULL;
    }
    LIST_ADD(p->dials, d);
    p->ndials++;
    return d;
}

/* API. */

int tt_mux_pool_open(tt_mux_pool *p, tt_carrier_dial_cb cb, void *ud, tt_mux_pool_req **out)
{
    if (p->closing)
        return UV_ECANCELED;
    tt_mux_pool_req *r = calloc(1, sizeof *r);
    if (r == NULL)
        return UV_ENOMEM;
    r->p = p;
    r->cb = cb;
    r->ud = ud;
    tt_link *l = open_on_existing(p);
    if (l) {
        make_ready(p, r, l);
    } else {
        pdial *d = NULL;
        for (pdial *x = p->dials; x; x = x->next) {
            if (!x->cancelled && x->n < p->cfg.max_streams) {
                d = x;
                break;
            }
        }
        int rc = 0;
        if (d == NULL)
            d = dial_new(p, &rc);
        if (d == NULL) {
            free(r);
            return rc;
        }
        r->dial = d;
        LIST_ADD(d->waiters, r);
        d->n++;
    }
    if (out)
        *out = r;
    return 0;
}

void tt_mux_pool_cancel(tt_mux_pool_req *r)
{
    tt_mux_pool *p = r->p;
    if (p == NULL)
        return; /* being handed over */
    pdial *d = r->dial;
    if (d) {
        dial_detach(d, r);
        if (d->n == 0 && !d->done && !d->cancelled) {
            /* Nobody else waits: the connection is not needed. */
            d->cancelled = true;
            p->carrier->type->dial_cancel(d->req);
        }
    } else {
        LIST_DEL(p->ready, r);
        if (r->stream)
            tt_link_close(r->stream, NULL, NULL);
    }
    free(r);
    maybe_free(p);
}

void tt_mux_pool_close(tt_mux_pool *p, bool abort)
{
    if (p->closing)
        return;
    p->closing = true;
    for (pdial *d = p->dials; d; d = d->next) {
        if (!d->cancelled) {
            d->cancelled = true;
            p->carrier->type->dial_cancel(d->req);
        }
    }
    if (abort) {
        /* Streams not handed over yet are cut with their sessions. */
        for (tt_mux_pool_req *r = p->ready; r; r = r->next) {
            if (r->stream) {
                tt_link_close(r->stream, NULL, NULL);
                r->stream = NULL;
                r->err = UV_ECANCELED;
            }
        }
    }
    /* tt_mux_close cuts a session with streams and lets an idle one go
     * away; on_end is not called after it, so the entry goes here. */
    pconn *c = p->conns;
    while (c) {
        pconn *next = c->next;
        if (abort || tt_mux_active(c->s) == 0) {
            LIST_DEL(p->conns, c);
            p->nconns--;
            tt_mux_close(c->s);
            free(c);
        } else {
            tt_mux_goaway(c->s);
        }
        c = next;
    }
    maybe_free(p);
}

unsigned tt_mux_pool_sessions(const tt_mux_pool *p)
{
    return p->nconns;
}

unsigned tt_mux_pool_dials(const tt_mux_pool *p)
{
    return p->ndials;
}

/* The carrier view. */

/* A pool's connections each carry many streams, so the target goes in each
 * stream's header, never to the carrier's dial. */
static int pool_dial(tt_carrier *c, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                     tt_carrier_dial **req)
{
    (void)t;
    tt_mux_pool_req *r;
    int rc = tt_mux_pool_open((tt_mux_pool *)c, cb, ud, &r);
    if (rc == 0 && req)
        *req = (tt_carrier_dial *)r;
    return rc;
}

/* The carrier contract differs from tt_mux_pool_cancel's: after a carrier
 * dial_cancel the callback still runs, with UV_ECANCELED, from the loop (the
 * stream layer counts on it to release its state). */
typedef struct cancelled_dial {
    uv_timer_t timer;
    tt_carrier_dial_cb cb;
    void *ud;
} cancelled_dial;

static void cancelled_closed(uv_handle_t *h)
{
    cancelled_dial *x = h->data;
    tt_carrier_dial_cb cb = x->cb;
    void *ud = x->ud;
    free(x);
    cb(ud, UV_ECANCELED, NULL);
}

static void pool_dial_cancel(tt_carrier_dial *req)
{
    tt_mux_pool_req *r = (tt_mux_pool_req *)req;
    if (r->p == NULL)
        return; /* being handed over: its callback runs anyway */
    cancelled_dial *x = malloc(sizeof *x);
    uv_loop_t *loop = r->p->base.loop;
    tt_carrier_dial_cb cb = r->cb;
    void *ud = r->ud;
    tt_mux_pool_cancel(r);
    if (x == NULL) {
        /* Without memory the callback cannot be deferred; running it now is
         * the lesser harm than never. */
        free(x);
        cb(ud, UV_ECANCELED, NULL);
        return;
    }
    x->cb = cb;
    x->ud = ud;
    uv_timer_init(loop, &x->timer);
    x->timer.data = x;
    uv_close((uv_handle_t *)&x->timer, cancelled_closed);
}

static const char *pool_describe(tt_carrier *c, char *buf, size_t len)
{
    tt_carrier *inner = ((tt_mux_pool *)c)->carrier;
    if (inner->type->describe)
        return inner->type->describe(inner, buf, len);
    snprintf(buf, len, "mux");
    return buf;
}

static void pool_carrier_close(tt_carrier *c)
{
    tt_mux_pool_close((tt_mux_pool *)c, false);
}

static const tt_carrier_type pool_type = {
    .scheme = "mux",
    .summary = "streams multiplexed over the connections of another carrier",
    .client_new = NULL,
    .server_new = NULL,
    .dial = pool_dial,
    .dial_cancel = pool_dial_cancel,
    .describe = pool_describe,
    .close = pool_carrier_close,
};

tt_carrier *tt_mux_pool_carrier(tt_mux_pool *p)
{
    return &p->base;
}

tt_mux_pool *tt_mux_pool_new(uv_loop_t *loop, tt_carrier *carrier, const tt_mux_cfg *cfg,
                             unsigned max_streams_per_conn)
{
    tt_mux_pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        carrier->type->close(carrier);
        return NULL;
    }
    p->base.type = &pool_type;
    p->base.loop = loop;
    p->carrier = carrier;
    if (cfg)
        p->cfg = *cfg;
    else
        tt_mux_cfg_default(&p->cfg);
    if (max_streams_per_conn == 0)
        max_streams_per_conn = 4;
    if (max_streams_per_conn > TT_MUX_STREAMS_DEFAULT)
        max_streams_per_conn = TT_MUX_STREAMS_DEFAULT;
    p->cfg.max_streams = max_streams_per_conn;
    uv_idle_init(loop, &p->kick);
    p->kick.data = p;
    return p;
}
