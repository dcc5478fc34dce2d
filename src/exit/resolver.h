/* An asynchronous stub resolver on the libuv loop: asks one configured DNS
 * server (mos-tls-tunnel's -fallback-dns, tt's --resolver) instead of the
 * system's resolver, without blocking the loop or using the thread pool.
 *
 * A resolution sends the A and AAAA questions at once, over UDP, each from
 * its own socket (so its own kernel-chosen random source port) with its own
 * random id, connected to the server so that the kernel drops datagrams
 * from anywhere else; an answer that is not exactly the answer to the query
 * (see tt_dns_response_parse) is ignored. A question is sent again after
 * retry_ms, then after twice that, and so on, until the timeout. An answer
 * with TC set is asked again over TCP (RFC 7766). A server that rejects
 * EDNS0 with FORMERR is asked again without it.
 *
 * There is no cache, no search list and no /etc/hosts: the name is asked as
 * it is. An IP literal is never sent; it is its own answer.
 *
 * Address order: the IPv6 and IPv4 addresses are interleaved (RFC 8305
 * section 4), starting with IPv6 only when the host has a route and a
 * source address for the first IPv6 address (the check is a connect() of a
 * UDP socket, which sends nothing; getaddrinfo's RFC 6724 sort makes the
 * same check). A dial that walks the list in order thus tries both families
 * early, and a host without IPv6 tries IPv4 first.
 *
 * Once one family has addresses the other gets at most a further
 * TT_RESOLVE_GRACE_MS: a server that never answers AAAA then costs a short
 * wait, not the whole timeout. */
#ifndef TT_EXIT_RESOLVER_H
#define TT_EXIT_RESOLVER_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "codec/dns.h"

#define TT_RESOLVE_MAX_ADDRS (2 * TT_DNS_MAX_ADDRS)
#define TT_RESOLVE_RETRY_MS 1000
#define TT_RESOLVE_TIMEOUT_MS 5000
#define TT_RESOLVE_GRACE_MS 300

typedef struct tt_resolver tt_resolver;
typedef struct tt_resolve tt_resolve;

typedef struct tt_resolver_opts {
    unsigned retry_ms; /* first retransmission after this; 0 = TT_RESOLVE_RETRY_MS */
} tt_resolver_opts;

typedef struct tt_resolve_result {
    unsigned count; /* 1..TT_RESOLVE_MAX_ADDRS on success */
    tt_dns_addr addrs[TT_RESOLVE_MAX_ADDRS];
} tt_resolve_result;

/* STATUS is 0 with RES holding at least one address, or a negative libuv
 * code with RES NULL: UV_EAI_NONAME (NXDOMAIN, or an invalid name),
 * UV_EAI_NODATA (the name has no address of the family asked),
 * UV_EAI_AGAIN (SERVFAIL, or the server unreachable or refusing over
 * ICMP or TCP), UV_EAI_FAIL (another error code, or a broken answer over
 * TCP), UV_EAI_ADDRFAMILY (an IP literal of the other family),
 * UV_ETIMEDOUT (no answer in time), UV_ECANCELED (tt_resolve_cancel).
 * RES is valid only during the call. */
typedef void (*tt_resolve_cb)(void *ud, int status, const tt_resolve_result *res);

/* Makes a resolver that asks the DNS server at SERVER (AF_INET or AF_INET6
 * with a port) on LOOP. OPTS may be NULL for the defaults. Returns 0 with
 * *OUT set, -EINVAL for another address family or port 0, or -ENOMEM. */
int tt_resolver_new(uv_loop_t *loop, const struct sockaddr *server, const tt_resolver_opts *opts,
                    tt_resolver **out);

/* Frees R. Resolutions in progress keep running: each holds a copy of what
 * it needs. */
void tt_resolver_free(tt_resolver *r);

/* Starts resolving NAME (a DNS name or an IP literal) for FAMILY (AF_UNSPEC
 * for both, AF_INET for A only, AF_INET6 for AAAA only) within TIMEOUT_MS
 * (0 = TT_RESOLVE_TIMEOUT_MS). The callback runs exactly once and never
 * from inside this call; *REQ (may be NULL) is valid until then. Returns 0,
 * -EINVAL for another FAMILY, or -ENOMEM (then no callback runs). */
int tt_resolve_start(const tt_resolver *r, const char *name, int family, unsigned timeout_ms,
                     tt_resolve_cb cb, void *ud, tt_resolve **req);

/* Stops a resolution at once (its sockets are closed now); the callback runs
 * later from the loop with UV_ECANCELED. Only before the callback has run. */
void tt_resolve_cancel(tt_resolve *req);

#endif
