/* The server's own nameserver, offered to clients: a stream to the
 * reserved destination TT_STREAM_NAMESERVER (codec/streamhdr.h) is
 * connected to the DNS server the server itself resolves with, so that a
 * client's --dns needs no --dns-server over a tt carrier
 * (docs/PROTOCOL.md, "The server's nameserver"). */
#ifndef TT_EXIT_NAMESERVER_H
#define TT_EXIT_NAMESERVER_H

#include "codec/resolvconf.h"
#include "core/target.h"
#include "exit/acl.h"

/* Reads the resolv.conf at PATH into OUT; returns how many nameservers it
 * names (0 to TT_RESOLVCONF_MAX_NS), or a negative errno when it cannot be
 * read. */
int tt_resolvconf_read(const char *path, tt_resolvconf_ns out[TT_RESOLVCONF_MAX_NS]);

/* Sets *NS to the DNS server the server asks: RESOLVER_TEXT (--resolver,
 * IP:PORT) when not NULL, else the first nameserver of the resolv.conf at
 * PATH, port 53. Returns 0, -ENOENT when PATH cannot be read or names
 * none, or -EINVAL for a RESOLVER_TEXT that is not IP:PORT. */
int tt_nameserver_find(const char *resolver_text, const char *path, tt_target *ns);

/* Fills OUT with the access list for streams to NS: ACL's explicit --deny
 * ranges, which still refuse it, and an allow for NS's address alone, so
 * the built-in refused ranges (loopback, private networks), where a
 * nameserver nearly always is, do not. */
void tt_nameserver_acl(const tt_acl *acl, const tt_target *ns, tt_acl *out);

#endif
