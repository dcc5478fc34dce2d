/* Ending a link politely: after a final message (a SOCKS error reply, a
 * stream reply), closing at once could reset the connection and lose that
 * message. tt_link_linger half-closes, discards whatever the peer still sends,
 * and closes when the peer closes or after TIMEOUT_MS, whichever is first. */
#ifndef TT_LINK_LINGER_H
#define TT_LINK_LINGER_H

#include "link/link.h"

/* Takes ownership of L (its handler is replaced). */
void tt_link_linger(tt_link *l, unsigned timeout_ms);

#endif
