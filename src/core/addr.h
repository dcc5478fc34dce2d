/* Parsers for what users type: HOST:PORT, listen addresses, endpoint URLs and
 * CIDR ranges. All are bounded and never touch the network; on failure they
 * return -EINVAL and point *WHY (when WHY is not NULL) at a static phrase that
 * completes "invalid ...: " for the user, such as "port out of range". */
#ifndef TT_CORE_ADDR_H
#define TT_CORE_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define TT_HOST_MAX 255
#define TT_SCHEME_MAX 15
#define TT_PATH_MAX 255
#define TT_USER_MAX 64

typedef struct tt_hostport {
    char host[TT_HOST_MAX + 1]; /* without IPv6 brackets; NUL-terminated */
    uint16_t port;
} tt_hostport;

/* Parses "HOST:PORT", "[IPV6]:PORT". The port is 1..65535 and required.
 * HOST is an IPv4/IPv6 literal or a DNS name (letters, digits, '-', '_', '.'). */
int tt_hostport_parse(const char *s, tt_hostport *out, const char **why);

/* Parses a listen address: "HOST:PORT", "[IPV6]:PORT" or a bare "PORT", which
 * means DEFAULT_HOST. Port 0 is allowed only when ALLOW_ZERO (ask the kernel). */
int tt_listen_parse(const char *s, const char *default_host, bool allow_zero, tt_hostport *out,
                    const char **why);

typedef struct tt_url {
    char scheme[TT_SCHEME_MAX + 1]; /* lower case; "" when the text had no "scheme://" */
    char user[TT_USER_MAX + 1];     /* "" or the USER of "USER@HOST" (no password part) */
    tt_hostport hp;
    char path[TT_PATH_MAX + 1]; /* "" or starting with '/' */
} tt_url;

/* Parses "SCHEME://[USER@]HOST:PORT[/PATH]" or, without a scheme,
 * "[USER@]HOST:PORT[/PATH]" (scheme left empty for the caller to default). A
 * scheme is letters, digits, '+', '-', '.', starting with a letter, at most
 * 15 bytes. A USER is 1 to 64 letters, digits, '.', '_', '-', not starting
 * with '-'; "USER:PASSWORD@" is refused (a password does not belong on a
 * command line). Which carriers take a USER is the caller's business. */
int tt_url_parse(const char *s, tt_url *out, const char **why);

/* As tt_url_parse; with PORT_OPTIONAL a missing ":PORT" leaves hp.port 0
 * (the tt carrier then hops between ports). */
int tt_url_parse_ex(const char *s, bool port_optional, tt_url *out, const char **why);

typedef struct tt_cidr {
    uint8_t family;   /* 4 or 6 */
    uint8_t prefix;   /* 0..32 or 0..128 */
    uint8_t addr[16]; /* network address, host bits cleared; 4 bytes used for IPv4 */
} tt_cidr;

/* Parses "A.B.C.D/N", "IPV6/N", or a bare address (a /32 or /128). Host bits
 * set below the prefix are an error ("host bits set"), as a typo there usually
 * means the user meant another range. */
int tt_cidr_parse(const char *s, tt_cidr *out, const char **why);

/* True when ADDR (4 bytes for family 4, 16 for family 6) is inside C. A range
 * of one family never contains an address of the other. */
bool tt_cidr_contains(const tt_cidr *c, int family, const uint8_t *addr);

/* Returns true and fills V4 when a 16-byte IPv6 address carries an IPv4
 * address that a packet to it would reach: IPv4-mapped ::ffff:0:0/96,
 * IPv4-translated ::ffff:0:0:0/96 (SIIT), IPv4-compatible ::/96 (except ::
 * and ::1), NAT64 64:ff9b::/96 and
 * 64:ff9b:1::/48, 6to4 2002::/16, and Teredo 2001::/32 (client address). */
bool tt_addr_embedded_v4(const uint8_t v6[16], uint8_t v4[4]);

/* Formats an endpoint as a URL: "SCHEME://[USER@]HOST[:PORT][PATH]", an
 * IPv6 host in brackets; USER and PATH may be NULL or empty, PORT 0 leaves
 * the port out. Always NUL-terminates BUF (LEN > 0) and returns it. */
const char *tt_url_format(const char *scheme, const char *user, const char *host, unsigned port,
                          const char *path, char *buf, size_t len);

/* Formats a socket address as "1.2.3.4:80" or "[::1]:80" into BUF and returns
 * BUF. */
const char *tt_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
