/* --fallback: a connection that is not a tunnel client is handed to a real
 * web server, which first gets every byte the peer sent, as if the peer had
 * been connected to it from the start, and the two are then relayed. The
 * tt:// handshake and the web carriers' decoy (decoy/decoy.h) both hand
 * over this way, so a prober meets the same behaviour and log lines on
 * every carrier. */
#ifndef TT_DECOY_FALLBACK_H
#define TT_DECOY_FALLBACK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "carrier/carrier.h"
#include "exit/dial.h"
#include "link/link.h"

/* Dials CFG's --fallback with its connect timeout and resolver (no access
 * list: the operator named it). CB runs as tt_dial_start's does: once, never
 * inside this call. Returns 0, or a negative code and CB never runs. */
int tt_fallback_dial(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_dial_cb cb, void *ud);

/* Logs that the fallback could not be reached (ERR) for connection L from
 * PEER. */
void tt_fallback_unreachable(const tt_link *l, const char *peer, int err);

/* Takes L (reading stopped) and FB, the fallback's link: writes the LEN
 * bytes at BYTES (copied; LEN may be 0) to FB, then relays the two with an
 * idle timeout of IDLE_MS, logging as "cN PEER -> fallback". If the write
 * fails both links are closed. */
void tt_fallback_relay(tt_link *l, tt_link *fb, const uint8_t *bytes, size_t len, unsigned idle_ms,
                       const char *peer);

#endif
