/* The DNS entry (tt client --dns): queries that nftables redirected from the
 * system's nameservers to tt's listeners (UDP and TCP on loopback), each
 * answered from the cache (entry/dnscache.h) or sent through the tunnel to
 * a nameserver on the far side over DNS-over-TCP. All queries share one
 * stream, pipelined: each gets a fresh id on it, so clients' ids never
 * clash, and the answer goes back to the client with its own id, on the
 * socket the query came in on (for UDP, conntrack then undoes the redirect
 * and the application sees the nameserver it asked answer).
 *
 * The stream is opened on the first query and again, for the queries still
 * waiting, after it ends. At most TT_DNSCAP_PENDING queries wait at once
 * (more are answered SERVFAIL), each at most TT_DNSCAP_QUERY_TIMEOUT_MS,
 * after which its client gets SERVFAIL. */
#ifndef TT_ENTRY_DNSCAP_H
#define TT_ENTRY_DNSCAP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/target.h"
#include "entry/entry.h"

#define TT_DNSCAP_PENDING 512
#define TT_DNSCAP_QUERY_TIMEOUT_MS 5000
/* TCP clients at once; more are refused. */
#define TT_DNSCAP_TCP_CLIENTS 64

typedef struct tt_dnscap tt_dnscap;

/* Listens with UDP and TCP on 127.0.0.1 (when V4) and ::1 (when V6), ports
 * chosen by the kernel, and carries queries through CFG's carrier (CFG must
 * outlive the entry) to UPSTREAM. Returns 0 with *OUT set, or a negative
 * libuv code with *WHY a phrase for the user. */
int tt_dnscap_start(uv_loop_t *loop, const tt_entry_cfg *cfg, const tt_target *upstream, bool v4,
                    bool v6, tt_dnscap **out, const char **why);

/* The ports of the listeners of FAMILY (4 or 6): UDP and TCP. */
void tt_dnscap_ports(const tt_dnscap *d, int family, uint16_t *udp, uint16_t *tcp);

/* Closes every socket and the stream; the memory goes once they are closed. */
void tt_dnscap_close(tt_dnscap *d);

#endif
