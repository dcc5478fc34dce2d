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
 * outlive the connection (it is the carrier's). PEER is for log lines. */
void tt_decoy_answer(tt_link *l, const tt_carrier_cfg *cfg, const uint8_t *bytes, size_t len,
                     const char *peer);

#endif
