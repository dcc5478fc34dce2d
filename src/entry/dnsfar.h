/* The far side's nameserver for tt client --dns over ssh://, when
 * --dns-server does not name one: the first nameserver of the remote
 * /etc/resolv.conf, read with `ssh HOST cat /etc/resolv.conf` and parsed
 * here (codec/resolvconf.h), so the remote machine needs nothing beyond
 * cat. Read once at start, before the event loop runs: the client waits
 * for it, as it waits for its options to be checked. */
#ifndef TT_ENTRY_DNSFAR_H
#define TT_ENTRY_DNSFAR_H

#include <stddef.h>

#include "core/target.h"

/* The remote command. */
#define TT_DNSFAR_REMOTE "cat /etc/resolv.conf"

/* Runs ARGV (a NULL-terminated command line whose output is a resolv.conf)
 * for at most TIMEOUT_MS, reading at most TT_RESOLVCONF_MAX bytes of its
 * output. Returns 0 with *OUT the first nameserver, port 53, or -1 with a
 * phrase in ERR (LEN bytes): ssh's last line of complaint, its exit status,
 * the time running out, or a file naming no nameserver. */
int tt_dnsfar_read(char *const argv[], unsigned timeout_ms, tt_target *out, char *err, size_t len);

#endif
