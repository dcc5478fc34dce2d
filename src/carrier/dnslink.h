/* One dns:// connection as a tt_link: a reliable byte stream made by an ARQ
 * engine (session/arq.h) whose packets are sealed with an AEAD and carried
 * as datagrams of the DNS layers (link/dnst.h). The client side owns its
 * datagram layer (one client id per connection); the server side shares the
 * server's layer and is fed the datagrams of its client id by the carrier.
 *
 * Wire (docs/DNS.md, "The dns:// carrier"):
 *   up   = SALT (8: unix seconds, 4 random bytes) || PN || AEAD(up key, PN, frames)
 *   down = PN || AEAD(down key, PN, frames)
 * The keys are HKDF-SHA256 of the 32-byte key from -k, per direction, with
 * the client id and SALT in the info: every connection has its own keys, so
 * the packet number is a unique nonce. The associated data is the client
 * id, SALT and PN going up, PN going down. */
#ifndef TT_CARRIER_DNSLINK_H
#define TT_CARRIER_DNSLINK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "link/dgram.h"
#include "link/link.h"

#define TT_DNSLINK_SALT_LEN 8

typedef struct tt_dnslink tt_dnslink;

typedef struct tt_dnslink_cfg {
    bool server;
    /* Client: its own layer, closed with the link. Server: the shared one. */
    tt_dgram *dg;
    uint32_t client_id;
    uint8_t salt[TT_DNSLINK_SALT_LEN];
    const uint8_t *psk; /* 32 bytes, copied into the keys */
    /* Without a valid packet from the peer this long, the link fails with
     * UV_ETIMEDOUT (server: Tunneler's idle client timeout). */
    unsigned idle_ms;
    /* Client: a PING after this long without sending, so that the server
     * sees the connection alive. 0: none. */
    unsigned keepalive_ms;
    /* After close, how long the engine stays to deliver what is still
     * unacknowledged and its FIN. */
    unsigned linger_ms;
    /* Packets the client keeps in flight at most (its layer's query slots;
     * the server's answers are bound by them too): the floor of the
     * engine's congestion window, in packets of its side. 0: 2. */
    unsigned window_pkts;
    /* Runs when the link's memory goes (the owner forgets it). */
    void (*on_free)(void *owner, tt_dnslink *l);
    void *owner;
} tt_dnslink_cfg;

/* A new connection, or NULL (out of memory, or the keys could not be made). */
tt_dnslink *tt_dnslink_new(uv_loop_t *loop, const tt_dnslink_cfg *cfg);

/* The link the stream layer and the mux use. */
tt_link *tt_dnslink_link(tt_dnslink *l);

/* Takes one datagram from the peer (the server: without its SALT, which
 * the carrier has matched). Returns 0, or -EBADMSG when it does not open
 * under this connection's key, -EPROTO when the engine refuses it (either
 * way it changed nothing), -ECONNRESET when it is the peer's RESET (the link
 * has failed with UV_ECONNRESET, or, on trial, is to be discarded). */
int tt_dnslink_input(tt_dnslink *l, const uint8_t *data, size_t len);

/* True once in-order bytes from the start of the stream arrived: what the
 * server requires of a new connection's first packet (a packet from the
 * middle of a stream the server does not know is a stale one). */
bool tt_dnslink_started(const tt_dnslink *l);

/* Server: a new connection sends nothing (not even an acknowledgment)
 * until it is accepted with this; then it answers the packets it took. */
void tt_dnslink_release(tt_dnslink *l);

/* Server: answers the packet a link on trial just took (it opened under
 * the connection's key) with a RESET saying that this server does not know
 * the connection, so that its client fails it at once instead of after its
 * idle timeout. The RESET has a packet number no engine reaches
 * (TT_ARQ_RESET_PN), so it never reuses a nonce of the connection's engine
 * before a restart; every such RESET of a connection is the same bytes. */
void tt_dnslink_refuse(tt_dnslink *l);

/* Frees a link that was never handed out (a new connection refused). */
void tt_dnslink_discard(tt_dnslink *l);

/* The server's datagram layer is going: the link stops sending, fails
 * (if still open) and frees itself if it was lingering. */
void tt_dnslink_detach(tt_dnslink *l);

/* Client: the carrier is going. A link its owner closed (lingering to
 * deliver its last bytes) goes now, so that nothing outlives the program's
 * last turns of the loop; an open one lives on, owning its layer, and goes
 * at once when its owner closes it. */
void tt_dnslink_orphan(tt_dnslink *l);

/* The client id and salt, for the server's table. */
uint32_t tt_dnslink_client_id(const tt_dnslink *l);
const uint8_t *tt_dnslink_salt(const tt_dnslink *l);

#endif
