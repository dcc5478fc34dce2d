/* The framing of DNS over TCP and TLS (RFC 1035 4.2.2, RFC 7766 8): every
 * message behind its length as two bytes, big-endian. A sans-I/O reader:
 * bytes in as they come (any split), whole messages out.
 *
 * Bounded: a message longer than the reader's buffer is skipped (its bytes
 * read and dropped, counted in skipped), so one oversized answer costs
 * neither memory nor the connection; an empty message (length 0) is
 * skipped too. */
#ifndef TT_CODEC_DNSFRAME_H
#define TT_CODEC_DNSFRAME_H

#include <stddef.h>
#include <stdint.h>

typedef struct tt_dnsframe {
    uint8_t *buf;     /* the caller's buffer for a message split across reads */
    size_t cap;       /* its size: the longest message delivered */
    uint8_t lenb[2];  /* the length prefix as read so far */
    unsigned lenhave; /* bytes of it */
    size_t need;      /* the current message's length, once lenhave is 2 */
    size_t have;      /* bytes of it in buf */
    size_t skip;      /* bytes still to drop of an oversized message */
    uint64_t skipped; /* messages dropped (oversized or empty) */
} tt_dnsframe;

/* Makes F a reader that delivers messages of at most CAP bytes, gathering
 * split ones in BUF (CAP bytes, the caller's, kept until the reader is no
 * longer used). */
void tt_dnsframe_init(tt_dnsframe *f, uint8_t *buf, size_t cap);

/* Takes bytes IN[0..N) and returns how many it consumed. When a message is
 * complete it stops right after its last byte and sets *MSG and *LEN (a
 * pointer into IN when the message lay whole in it, else into the buffer:
 * valid until the next call); else *MSG is NULL. Call again with the rest
 * until it returns 0 with *MSG NULL. */
size_t tt_dnsframe_feed(tt_dnsframe *f, const uint8_t *in, size_t n, const uint8_t **msg,
                        size_t *len);

/* Writes the two-byte prefix of a message of LEN bytes (at most 65535). */
void tt_dnsframe_prefix(uint8_t out[2], size_t len);

#endif
