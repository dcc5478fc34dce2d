/* A stream's destination: an IPv4 or IPv6 address or a domain name, and a
 * port. The type values are the SOCKS5 address types (RFC 1928), which the
 * stream-open header reuses, so a target passes from the SOCKS5 entry to the
 * wire without translation. */
#ifndef TT_CORE_TARGET_H
#define TT_CORE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tt_target_type {
    TT_TARGET_IPV4 = 1,
    TT_TARGET_NAME = 3,
    TT_TARGET_IPV6 = 4,
};

#define TT_TARGET_NAME_MAX 255
/* Longest text tt_target_format writes: a 255-byte name, ':', 5 digits, NUL. */
#define TT_TARGET_STRLEN (TT_TARGET_NAME_MAX + 8)

typedef struct tt_target {
    uint8_t type;     /* enum tt_target_type */
    uint8_t name_len; /* bytes in u.name when type is TT_TARGET_NAME (1..255) */
    uint16_t port;    /* host byte order */
    union {
        uint8_t v4[4];
        uint8_t v6[16];
        char name[TT_TARGET_NAME_MAX + 1]; /* NUL-terminated */
    } u;
} tt_target;

/* Fills T from a host text and a port: an IPv4 or IPv6 literal (without
 * brackets) becomes an address, anything else a name. Returns 0, or -EINVAL
 * when HOST is empty, longer than 255 bytes, or contains a NUL or control
 * byte. */
int tt_target_set(tt_target *t, const char *host, uint16_t port);

/* "No destination": 0.0.0.0 port 0, which no stream can reach. A client
 * sends it when the server's fixed destination (-d) is meant; a server
 * without one refuses it. */
void tt_target_none(tt_target *t);
bool tt_target_is_none(const tt_target *t);

/* Writes "1.2.3.4:80", "[::1]:80" or "example.com:80" into BUF (always
 * NUL-terminated when LEN > 0) and returns BUF, so it can sit inside a log
 * call. */
const char *tt_target_format(const tt_target *t, char *buf, size_t len);

#endif
