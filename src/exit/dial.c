/* The exit dialer. One dial walks: resolve (thread pool, or the configured
 * resolver) -> for each address:
 * access check -> connect -> done. A single timer bounds the whole walk, and
 * every outcome is reported from the timer's close callback, which libuv runs
 * from the loop: so the callback never runs inside tt_dial_start or
 * tt_dial_cancel, whatever path ended the dial. */
#include "exit/dial.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/socks5.h"
#include "core/log.h"
#include "link/tcp.h"

/* One address from the configured resolver, in the form the walk takes. */
typedef struct dial_addr {
    struct addrinfo ai;
    union {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } sa;
} dial_addr;

struct tt_dial {
    uv_loop_t *loop;
    tt_target target;
    const tt_acl *acl;
    unsigned timeout_ms;
    bool fast_open;
    uint64_t deadline;
    tt_dial_cb cb;
    void *ud;
    uv_getaddrinfo_t gai;
    bool resolving;
    struct addrinfo *ai, *cur;
    tt_resolve *dns;             /* the resolver's request while it runs */
    struct dial_addr *dns_addrs; /* its addresses as an addrinfo list */
    struct sockaddr_storage literal;
    struct addrinfo literal_ai;
    tt_tcp_connect *conn;
    uv_timer_t timer;
    bool finished;
    uint8_t rep;
    int err;
    bool refused_by_acl; /* at least one address was refused by the ACL */
    int last_err;        /* the last connect error, 0 if none was tried */
    tt_link *link;
    int outstanding; /* callbacks still to come: timer close, resolve, connect */
    bool in_api;     /* inside tt_dial_start or tt_dial_cancel */
    bool reported;   /* the callback has run */
};

uint8_t tt_dial_rep_for_error(int err)
{
    switch (err) {
    case 0:
        return TT_S5_REP_OK;
    case UV_ECONNREFUSED:
        return TT_S5_REP_REFUSED;
    case UV_ENETUNREACH:
    case UV_ENETDOWN:
        return TT_S5_REP_NET_UNREACH;
    case UV_EHOSTUNREACH:
    case UV_EHOSTDOWN:
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
    case UV_EAI_ADDRFAMILY:
        return TT_S5_REP_HOST_UNREACH;
    case UV_ETIMEDOUT:
        return TT_S5_REP_TTL_EXPIRED;
    default:
        return TT_S5_REP_GENERAL;
    }
}

/* A cancelled resolve or connect still calls back later, so the dial's
 * memory lives until every callback it started has run. */
static void dial_release(tt_dial *d)
{
    if (--d->outstanding > 0)
        return;
    if (d->ai)
        uv_freeaddrinfo(d->ai);
    free(d->dns_addrs);
    free(d);
}

static void dial_report(tt_dial *d)
{
    if (d->reported)
        return;
    d->reported = true;
    d->cb(d->ud, d->rep, d->err, d->link);
}

static void on_timer_closed(uv_handle_t *h)
{
    tt_dial *d = h->data;
    dial_report(d);
    dial_release(d);
}

static void dial_finish(tt_dial *d, uint8_t rep, int err, tt_link *link)
{
    d->finished = true;
    d->rep = rep;
    d->err = err;
    d->link = link;
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    /* Inside tt_dial_start or tt_dial_cancel the report waits for the timer
     * to close (never a callback inside the caller's call); from a libuv
     * callback it goes out at once, saving a loop turn per connection. */
    if (!d->in_api)
        dial_report(d);
}

static void try_next(tt_dial *d);

static void on_connected(void *ud, int status, tt_link *link)
{
    tt_dial *d = ud;
    d->conn = NULL;
    if (d->finished) {
        /* Cancelled or timed out while connecting: the outcome is decided. */
        if (link)
            tt_link_close(link, NULL, NULL);
        dial_release(d);
        return;
    }
    d->outstanding--; /* the timer close still holds the dial */
    if (status == 0) {
        dial_finish(d, TT_S5_REP_OK, 0, link);
        return;
    }
    d->last_err = status;
    d->cur = d->cur->ai_next;
    try_next(d);
}

static void try_next(tt_dial *d)
{
    for (; d->cur != NULL; d->cur = d->cur->ai_next) {
        const struct sockaddr *sa = d->cur->ai_addr;
        if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
            continue;
        if (d->acl && !tt_acl_permits(d->acl, sa)) {
            char buf[64];
            tt_debug("refusing %s: address not allowed", tt_sockaddr_format(sa, buf, sizeof buf));
            d->refused_by_acl = true;
            continue;
        }
        unsigned left = 0;
        if (d->timeout_ms) {
            uint64_t now = uv_now(d->loop);
            left = d->deadline > now ? (unsigned)(d->deadline - now) : 1;
        }
        int rc = tt_tcp_connect_start_ex(d->loop, sa, left, d->fast_open ? TT_TCP_FAST_OPEN : 0,
                                         on_connected, d, &d->conn);
        if (rc == 0) {
            d->outstanding++;
            return;
        }
        d->last_err = rc;
    }
    if (d->last_err != 0)
        dial_finish(d, tt_dial_rep_for_error(d->last_err), d->last_err, NULL);
    else if (d->refused_by_acl)
        dial_finish(d, TT_S5_REP_NOT_ALLOWED, 0, NULL);
    else
        dial_finish(d, TT_S5_REP_HOST_UNREACH, UV_EAI_NODATA, NULL);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tt_dial *d = req->data;
    d->resolving = false;
    if (d->finished) {
        if (res)
            uv_freeaddrinfo(res);
        dial_release(d);
        return;
    }
    d->outstanding--;
    if (status < 0) {
        dial_finish(d, tt_dial_rep_for_error(status), status, NULL);
        return;
    }
    d->ai = res;
    d->cur = res;
    try_next(d);
}

/* Turns the resolver's addresses into an addrinfo list for try_next, in the
 * resolver's order. Returns NULL when out of memory. */
static dial_addr *dns_to_addrinfo(const tt_resolve_result *res, uint16_t port)
{
    dial_addr *a = calloc(res->count, sizeof *a);
    if (a == NULL)
        return NULL;
    for (unsigned i = 0; i < res->count; i++) {
        const tt_dns_addr *r = &res->addrs[i];
        if (r->family == AF_INET) {
            a[i].sa.v4.sin_family = AF_INET;
            a[i].sa.v4.sin_port = htons(port);
            memcpy(&a[i].sa.v4.sin_addr, r->addr, 4);
            a[i].ai.ai_addrlen = sizeof a[i].sa.v4;
        } else {
            a[i].sa.v6.sin6_family = AF_INET6;
            a[i].sa.v6.sin6_port = htons(port);
            memcpy(&a[i].sa.v6.sin6_addr, r->addr, 16);
            a[i].ai.ai_addrlen = sizeof a[i].sa.v6;
        }
        a[i].ai.ai_family = r->family;
        a[i].ai.ai_socktype = SOCK_STREAM;
        a[i].ai.ai_protocol = IPPROTO_TCP;
        a[i].ai.ai_addr = (struct sockaddr *)&a[i].sa;
        a[i].ai.ai_next = i + 1 < res->count ? &a[i + 1].ai : NULL;
    }
    return a;
}

static void on_dns(void *ud, int status, const tt_resolve_result *res)
{
    tt_dial *d = ud;
    d->dns = NULL;
    if (d->finished) {
        dial_release(d);
        return;
    }
    d->outstanding--;
    /* The resolver's codes are getaddrinfo's (UV_EAI_NONAME for NXDOMAIN
     * and so on), so the replies are those of the system path. */
    if (status < 0) {
        dial_finish(d, tt_dial_rep_for_error(status), status, NULL);
        return;
    }
    d->dns_addrs = dns_to_addrinfo(res, d->target.port);
    if (d->dns_addrs == NULL) {
        dial_finish(d, TT_S5_REP_GENERAL, UV_ENOMEM, NULL);
        return;
    }
    d->cur = &d->dns_addrs[0].ai;
    try_next(d);
}

static void on_timeout(uv_timer_t *t)
{
    tt_dial *d = t->data;
    if (d->finished)
        return;
    if (d->dns)
        tt_resolve_cancel(d->dns);
    if (d->resolving)
        uv_cancel((uv_req_t *)&d->gai);
    if (d->conn)
        tt_tcp_connect_cancel(d->conn);
    dial_finish(d, TT_S5_REP_TTL_EXPIRED, UV_ETIMEDOUT, NULL);
}

int tt_dial_start(uv_loop_t *loop, const tt_target *t, const tt_dial_opts *opts, tt_dial_cb cb,
                  void *ud, tt_dial **out)
{
    tt_dial *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->loop = loop;
    d->target = *t;
    d->acl = opts ? opts->acl : NULL;
    d->timeout_ms = opts ? opts->timeout_ms : 0;
    d->fast_open = opts && opts->fast_open;
    d->deadline = uv_now(loop) + d->timeout_ms;
    d->cb = cb;
    d->ud = ud;
    d->in_api = true;
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->gai.data = d;
    d->outstanding = 1;

    if (t->type == TT_TARGET_IPV4 || t->type == TT_TARGET_IPV6) {
        memset(&d->literal, 0, sizeof d->literal);
        if (t->type == TT_TARGET_IPV4) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&d->literal;
            sin->sin_family = AF_INET;
            sin->sin_port = htons(t->port);
            memcpy(&sin->sin_addr, t->u.v4, 4);
            d->literal_ai.ai_addrlen = sizeof *sin;
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->literal;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(t->port);
            memcpy(&sin6->sin6_addr, t->u.v6, 16);
            d->literal_ai.ai_addrlen = sizeof *sin6;
        }
        d->literal_ai.ai_addr = (struct sockaddr *)&d->literal;
        d->cur = &d->literal_ai;
        /* Connect at once: every outcome, even an immediate refusal, is
         * reported through the timer's close callback, so the caller's
         * callback still never runs inside this call. */
        if (d->timeout_ms)
            uv_timer_start(&d->timer, on_timeout, d->timeout_ms, 0);
        try_next(d);
    } else if (opts && opts->resolver) {
        /* The resolver answers IP literals itself, without a query. It
         * calls back exactly once, never inside this call, even when
         * cancelled; an out-of-memory start reports nothing. */
        int rc = tt_resolve_start(opts->resolver, t->u.name, AF_UNSPEC, d->timeout_ms, on_dns, d,
                                  &d->dns);
        if (rc < 0) {
            dial_finish(d, TT_S5_REP_GENERAL, rc == -ENOMEM ? UV_ENOMEM : rc, NULL);
        } else {
            d->outstanding++;
            if (d->timeout_ms)
                uv_timer_start(&d->timer, on_timeout, d->timeout_ms, 0);
        }
    } else {
        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        char port[8];
        snprintf(port, sizeof port, "%u", (unsigned)t->port);
        int rc = uv_getaddrinfo(loop, &d->gai, on_resolved, t->u.name, port, &hints);
        if (rc < 0) {
            dial_finish(d, tt_dial_rep_for_error(rc), rc, NULL);
        } else {
            d->resolving = true;
            d->outstanding++;
            if (d->timeout_ms)
                uv_timer_start(&d->timer, on_timeout, d->timeout_ms, 0);
        }
    }
    d->in_api = false;
    if (out)
        *out = d->finished ? NULL : d;
    return 0;
}

void tt_dial_cancel(tt_dial *d)
{
    if (d->finished)
        return;
    d->in_api = true;
    if (d->dns)
        tt_resolve_cancel(d->dns);
    if (d->resolving)
        uv_cancel((uv_req_t *)&d->gai);
    if (d->conn)
        tt_tcp_connect_cancel(d->conn);
    dial_finish(d, TT_S5_REP_GENERAL, UV_ECANCELED, NULL);
    d->in_api = false;
}
