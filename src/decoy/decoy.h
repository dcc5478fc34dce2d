/* Answering what is not a tunnel client the way a web site would. The web
 * carriers (tls://, ws://, wss://) hand every connection that fails their
 * checks (a browser, a scanner, a wrong path, a bad token) here, with every
 * byte it sent, so that from outside the server is an ordinary web server:
 * either the real one named by --fallback (the bytes are replayed to it and
 * the two are relayed), or tt's own static site (--www DIR, or nginx's 404
 * page without a DIR). */
#ifndef TT_DECOY_DECOY_H
#define TT_DECOY_DECOY_H

#include <stddef.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "link/link.h"

/* Takes ownership of L, whose reading must be stopped. BYTES (LEN) are what
 * the peer sent so far, in the clear (after TLS); they are copied. CFG must
 * outlive the connection (it is the carrier's). PEER is for log lines.
 * DEADLINE is the loop time (uv_now) by which the request begun by BYTES
 * must be whole, counted from the accept as nginx counts it (0: the header
 * timeout from now); the --fallback server keeps its own time. */
void tt_decoy_answer(tt_link *l, const tt_carrier_cfg *cfg, const uint8_t *bytes, size_t len,
                     const char *peer, uint64_t deadline);

/* Takes ownership of L, a plain TCP connection to a TLS port whose first
 * bytes (BYTES, LEN, copied) are not a TLS record: answers as nginx answers
 * plain HTTP on its "ssl" listener ("400 The plain HTTP request was sent to
 * HTTPS port", or its plain 400 for what is not HTTP), with or without
 * --fallback (the fallback server speaks plain HTTP on its port, and would
 * serve the request). DEADLINE as for tt_decoy_answer. */
void tt_decoy_plain_on_tls(tt_link *l, const tt_carrier_cfg *cfg, const uint8_t *bytes, size_t len,
                           uint64_t deadline);

#endif
