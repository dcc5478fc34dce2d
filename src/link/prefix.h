/* A link that puts bytes back in front of another link's input. A carrier
 * that had to read past its own handshake (an authentication token followed
 * by the stream-open header in one TLS record, say) hands the stream layer a
 * prefix link, and the stream layer reads those bytes as if they had just
 * arrived. Everything else passes straight through to the lower link. */
#ifndef TT_LINK_PREFIX_H
#define TT_LINK_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#include "link/link.h"

/* Wraps LOWER (now owned by the new link), whose reading must be stopped.
 * The LEN bytes at DATA are copied and delivered first, from the loop after
 * read_start. With LEN 0 returns LOWER itself. Returns NULL (LOWER closed)
 * when out of memory. */
tt_link *tt_prefix_link(tt_link *lower, const uint8_t *data, size_t len);

#endif
