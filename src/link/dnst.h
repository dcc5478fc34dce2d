/* Datagram layers (link/dgram.h) over DNS, the two ends of the tunnel whose
 * messages codec/dnstun.h writes (docs/DNS.md).
 *
 * The client (dnsc.c) turns each datagram it is given into a query to one of
 * several resolvers and hands the datagrams the answers bring to
 * on_datagram. The server (dnss.c) is an authoritative nameserver on UDP and
 * TCP: tunnel queries surface as datagrams from their client, and what the
 * upper layer sends to a client waits in that client's queue for the answer
 * to one of its next queries.
 *
 * Peers are clients, not addresses: both layers name the far end with a
 * pseudo-address (family AF_UNSPEC, the 32-bit client id inside) that
 * tt_dnst_addr writes and tt_dnst_addr_client reads. The client's
 * on_datagram gets its own id's address whatever resolver answered, so an
 * upper layer keyed by address sees one peer.
 *
 * The poll model. The server can only answer queries, so the client keeps
 * queries in flight for it to answer into: a query carrying data is answered
 * at once (with whatever the client's queue holds, perhaps nothing), and an
 * empty query (a poll) is held by the server until something is queued for
 * its client or the hold time passes, then answered empty. The client keeps
 * up to max_polls polls in flight while answers bring data, one fewer after
 * each empty answer down to one, and then spaces its polls out, doubling a
 * delay up to idle_poll_ms; data from above, data from below or
 * tt_dnsc_poll bring it back. Queries that carry data use any free slot up
 * to the window, which starts at max_inflight and grows with the path's
 * round trip up to max_window (dnsc.c).
 *
 * The client's tt_dgram_max_size follows the spelling its probe chose: it
 * grows when the path keeps case or 8-bit bytes and shrinks on a fallback
 * (a datagram queued before that and too long for base32 is dropped).
 *
 * The client reaches its resolvers over UDP, TCP, TLS or HTTPS: one query
 * transport (link/dnsq.h) per resolver. When every resolver's secure
 * transport fails its handshake before any answer (a certificate that does
 * not verify), the client layer fails with on_error(UV_EPROTO). */
#ifndef TT_LINK_DNST_H
#define TT_LINK_DNST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "link/dgram.h"
#include "link/dnsq.h"

/* The pseudo-address of client ID. */
void tt_dnst_addr(uint32_t id, struct sockaddr_storage *out);

/* The client id in the pseudo-address SA; -1 when SA is not one. */
int64_t tt_dnst_addr_client(const struct sockaddr *sa);

typedef struct tt_dnsc_cfg {
    const char *domain;                       /* the zone the server answers for */
    const struct sockaddr_storage *resolvers; /* where queries go */
    unsigned nresolvers;                      /* 1 to TT_DNSC_RESOLVERS_MAX */
    uint32_t client_id;                       /* 0: a random one */
    unsigned max_inflight; /* queries outstanding at first, and at least; 0: 16 */
    unsigned max_window;   /* queries outstanding at most; 0: TT_DNSC_WINDOW_MAX */
    bool base32_only;      /* no probe, no denser names (codec/dnstun.h) */
    unsigned max_polls;    /* polls outstanding at most; 0: 8 */
    unsigned idle_poll_ms; /* longest gap between idle polls; 0: 1000 */
    unsigned hold_ms;      /* how long the server holds a poll (its hold_ms); 0: 200 */
    size_t queue_max;      /* bytes of datagrams waiting for a query; 0: 64 KiB */
    uint16_t qtype;        /* 0: TXT, falling back to NULL; else that type only */
    /* How queries reach each resolver (link/dnsq.h), its addr replaced by
     * the resolver's; NULL: UDP. Over UDP a truncated answer (TC) is asked
     * again over TCP to the same resolver. */
    const tt_dnsq_cfg *transport;
} tt_dnsc_cfg;

#define TT_DNSC_RESOLVERS_MAX 8
#define TT_DNSC_INFLIGHT_MAX 128
#define TT_DNSC_WINDOW_MAX 128

/* Opens a client layer with CFG (copied). Its send takes datagrams of at
 * most tt_dgram_max_size bytes (the query capacity of the domain) to the
 * server, whatever the address given. Returns 0 with *OUT set, or a negative
 * code with *WHY set. Reception starts with tt_dgram_recv_start; polling
 * starts with it. */
int tt_dnsc_open(uv_loop_t *loop, const tt_dnsc_cfg *cfg, tt_dgram **out, const char **why);

/* Asks the client to keep N polls in flight now (at most max_polls), for an
 * upper layer that expects data down soon: after a request, or while its
 * peer has data unacknowledged. */
void tt_dnsc_poll(tt_dgram *d, unsigned n);

typedef struct tt_dnsc_stats {
    uint64_t queries;    /* queries sent */
    uint64_t polls;      /* of them, without payload */
    uint64_t answers;    /* answers that decoded */
    uint64_t empty;      /* of them, without datagrams */
    uint64_t bad;        /* answers refused (malformed, an error RCODE, TC) */
    uint64_t truncated;  /* UDP answers with TC, asked again over TCP */
    uint64_t lost;       /* queries lost with a TCP or TLS connection */
    uint64_t timeouts;   /* queries given up at their timeout */
    uint64_t overtaken;  /* queries given up as later ones were answered */
    uint64_t late;       /* queries given up and answered after all (used) */
    uint64_t up_bytes;   /* payload bytes sent up */
    uint64_t down_bytes; /* datagram bytes received */
    uint64_t refused;    /* sends refused for a full queue */
    uint64_t fallbacks;  /* returns to base32 after a dense name was refused */
    uint16_t qtype;      /* the record type in use */
    uint8_t enc;         /* the spelling of data queries now (TT_DNSTUN_ENC_...) */
    unsigned window;     /* queries allowed in flight now */
    uint32_t client_id;
} tt_dnsc_stats;

void tt_dnsc_get_stats(const tt_dgram *d, tt_dnsc_stats *st);

typedef struct tt_dnss_cfg {
    const char *host; /* an IP literal to listen on */
    int port;         /* UDP and TCP; 0: the kernel picks (UDP's, then TCP on the same) */
    const char *domain;
    const char *ns;       /* the NS record's target; NULL: ns.DOMAIN */
    unsigned hold_ms;     /* how long a poll waits for data; 0: 200 */
    unsigned idle_ms;     /* a client unseen this long is forgotten; 0: 60000 */
    size_t queue_max;     /* bytes queued per client; 0: 64 KiB */
    unsigned max_clients; /* 0: 1024; past it the least recently seen goes */
    bool no_tcp;          /* UDP only */
} tt_dnss_cfg;

/* Opens a server layer with CFG (copied) and starts answering queries at
 * once; tunnel datagrams reach on_datagram only after tt_dgram_recv_start
 * (before it, tunnel queries are answered as if their payload were lost).
 * Its send queues a datagram of at most tt_dgram_max_size bytes for the
 * client whose pseudo-address is TO: UV_EHOSTUNREACH for a client it does
 * not know (never seen, or forgotten), UV_ENOBUFS past the client's queue.
 * Returns 0 with *OUT set, or a negative code with *WHY set. */
int tt_dnss_open(uv_loop_t *loop, const tt_dnss_cfg *cfg, tt_dgram **out, const char **why);

/* The ports the server listens on (TCP: 0 when it does not). */
int tt_dnss_udp_port(const tt_dgram *d);
int tt_dnss_tcp_port(const tt_dgram *d);

typedef struct tt_dnss_stats {
    uint64_t queries;   /* messages received, UDP and TCP */
    uint64_t tunnel;    /* of them, tunnel queries */
    uint64_t retries;   /* tunnel queries answered again from the cache */
    uint64_t dense;     /* tunnel queries in base64 or base128 names */
    uint64_t authority; /* answered as a nameserver (SOA, NXDOMAIN, FORMERR ...) */
    uint64_t dropped;   /* not answered */
    uint64_t truncated; /* answered with TC */
    uint64_t up_bytes, down_bytes;
    unsigned clients; /* known now */
    unsigned held;    /* polls held now */
} tt_dnss_stats;

void tt_dnss_get_stats(const tt_dgram *d, tt_dnss_stats *st);

#endif
