/* The tt/1 encrypted link: wraps a lower link (TCP) and speaks the framing
 * of codec/ttproto.h over it. Both ends are links like any other, so the
 * stream layer and the relay use them unchanged.
 *
 * The first write of each side carries its hello: the client's hello holds
 * the first bytes it writes (the stream-open header and any early payload,
 * 0-RTT), the server's hello holds its first bytes (the stream reply). Data
 * the client writes beyond its hello waits, counted as pending, until the
 * server's hello brings the forward-secret keys. */
#ifndef TT_CARRIER_TTLINK_H
#define TT_CARRIER_TTLINK_H

#include <stddef.h>
#include <stdint.h>

#include "codec/ttproto.h"
#include "link/link.h"

typedef struct tt_ttlink_params {
    int alg;            /* enum tt_aead_alg */
    const uint8_t *psk; /* TT_PSK_LEN bytes, outliving the link */
    size_t frame_data;  /* largest plaintext per frame */
    /* Padding: the policy (enum tt_pad_profile, carrier/ttpad.h; 0 is the
     * shaped default) and its limits in bytes, per hello and per frame. */
    int pad_profile;
    unsigned hello_pad_max;
    unsigned frame_pad_max;
    /* A pre-generated ephemeral key pair the link may take (leaving it
     * empty for the owner to refill off the critical path); NULL: none. */
    tt_x25519_key *spare;
    /* Called (if set) once the link has done its part of the handshake's
     * arithmetic and waits for the peer: the client after sending its
     * hello, the server after its first data frame (so that the first
     * bytes it relays never wait behind a key generation). The owner
     * refills SPARE then, while the other end works. */
    void (*refill)(void *ud);
    void *refill_ud;
    /* Client: called (if set) once per connection when it is known how the
     * server took the first flight (enum tt_ttlink_answer), with the
     * milliseconds since the link began. A server that refuses a hello
     * stays silent by design, so this is the only place where the client can
     * tell that from a slow destination and explain it to the user. */
    void (*answered)(void *ud, tt_link *link, int answer, uint64_t waited_ms);
    void *answered_ud;
} tt_ttlink_params;

/* How a server answered a client's first flight. */
enum tt_ttlink_answer {
    TT_TTLINK_HELLO_OK,      /* its hello opened: the key, method and clock were accepted */
    TT_TTLINK_HELLO_SILENCE, /* it closed the connection without sending a byte: refused */
    TT_TTLINK_HELLO_GARBLED, /* it sent bytes that are not a hello under this key and method */
};

/* Client end over LOWER (now owned by the link). NOW_S is the wall-clock
 * time for the hello. Returns NULL (LOWER closed) on failure. */
tt_link *tt_ttlink_client(tt_link *lower, const tt_ttlink_params *p, uint64_t now_s);

/* Server end over LOWER, after the client hello authenticated: SALT and CPUB
 * from it, EARLY its early data, EXTRA bytes that followed it. The early data
 * and extra bytes are delivered once reading starts. Returns NULL (LOWER
 * closed) on failure. */
tt_link *tt_ttlink_server(tt_link *lower, const tt_ttlink_params *p,
                          const uint8_t salt[TT_SALT_LEN], const uint8_t cpub[TT_PUB_LEN],
                          const uint8_t *early, size_t elen, const uint8_t *extra, size_t xlen);

#endif
