/* The exit's access list: which resolved addresses a server may connect to.
 * It is checked on each address after name resolution, just before connect,
 * so a name that resolves to a forbidden address is refused too.
 *
 * Verdict for one address: an explicit --deny range wins; then an explicit
 * --allow range permits; then the built-in refused ranges (loopback, RFC 1918,
 * link-local incl. 169.254.169.254, CGNAT 100.64/10, unique-local fc00::/7,
 * unspecified, multicast, reserved, and their IPv6 equivalents) refuse; all
 * else is permitted. An IPv6 address that embeds an IPv4 address (see
 * tt_addr_embedded_v4) is permitted only when both it and the embedded IPv4
 * address are. */
#ifndef TT_EXIT_ACL_H
#define TT_EXIT_ACL_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/addr.h"

#define TT_ACL_MAX 64

typedef struct tt_acl {
    tt_cidr allow[TT_ACL_MAX];
    tt_cidr deny[TT_ACL_MAX];
    unsigned n_allow, n_deny;
} tt_acl;

/* Empties the explicit lists; the built-in refused ranges always apply. */
void tt_acl_init(tt_acl *acl);

/* Adds CIDR text to the allow (ALLOW true) or deny list. Returns 0, -EINVAL
 * with *WHY set for bad text, or -ENOSPC with *WHY set when the list is full. */
int tt_acl_add(tt_acl *acl, bool allow, const char *cidr, const char **why);

/* True when a connection to SA (AF_INET or AF_INET6) may be made; any other
 * family is refused. */
bool tt_acl_permits(const tt_acl *acl, const struct sockaddr *sa);

#endif
