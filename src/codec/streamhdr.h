/* The stream-open header and its reply: the first bytes a client sends on a
 * new stream, whatever the carrier, and the server's answer once it knows the
 * connect result. Wire format (docs/PROTOCOL.md):
 *
 *   open:  VER(1)=0x01  FLAGS(1)=0  ATYP(1)  ADDR(4 | 1+len | 16)  PORT(2, big-endian)
 *   reply: VER(1)=0x01  CODE(1)     (CODE is a SOCKS5 reply code, 0 = success)
 *
 * ATYP is the SOCKS5 address type (1 IPv4, 3 name, 4 IPv6). A name is 1..255
 * bytes with no NUL. FLAGS is reserved: a receiver refuses nonzero flags so the
 * byte can be given a meaning later. Parsing is incremental and bounded. */
#ifndef TT_CODEC_STREAMHDR_H
#define TT_CODEC_STREAMHDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/target.h"

#define TT_STREAMHDR_VERSION 0x01
#define TT_STREAMHDR_MAX (3 + 1 + 255 + 2)
#define TT_STREAMREPLY_LEN 2

/* The reserved destination that asks a tt server for its own nameserver
 * (docs/PROTOCOL.md, "The server's nameserver"): a name in .invalid (RFC
 * 6761), so a server that does not know it fails to resolve it and answers
 * 0x04 instead of connecting anywhere. The client's --dns sends its
 * DNS-over-TCP stream there, port 53. */
#define TT_STREAM_NAMESERVER "nameserver.tt.invalid"

/* True when T is the reserved name (in any case; any port). */
bool tt_target_is_nameserver(const tt_target *t);

/* Writes the open header for T into OUT (at least TT_STREAMHDR_MAX bytes) and
 * returns its length, or 0 when T is invalid (unknown type, empty name). */
size_t tt_streamhdr_encode(const tt_target *t, uint8_t *out);

typedef struct tt_streamhdr_parser {
    size_t have;                   /* private */
    uint8_t buf[TT_STREAMHDR_MAX]; /* private */
} tt_streamhdr_parser;

void tt_streamhdr_parser_init(tt_streamhdr_parser *p);

/* Feeds LEN bytes. Returns 1 when the header is complete (T filled, *USED =
 * bytes taken from DATA; the rest is stream payload), 0 when all of DATA was
 * taken and more is needed, or -EPROTO with *WHY set for a malformed header
 * (bad version, nonzero flags, unknown address type, empty name, NUL in name). */
int tt_streamhdr_parse(tt_streamhdr_parser *p, const uint8_t *data, size_t len, size_t *used,
                       tt_target *t, const char **why);

/* Writes the 2-byte reply carrying CODE into OUT; returns 2. */
size_t tt_streamreply_encode(uint8_t code, uint8_t out[TT_STREAMREPLY_LEN]);

/* Parses a complete 2-byte reply. Returns the code (0..255), or -EPROTO for a
 * bad version. */
int tt_streamreply_parse(const uint8_t in[TT_STREAMREPLY_LEN]);

#endif
