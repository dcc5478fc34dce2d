/* The exit dialer: from a target to a connected TCP link. Names are resolved
 * on libuv's thread pool with the system's resolver, or by the configured DNS
 * server (exit/resolver.h), never blocking the loop; every resolved address is
 * checked against the access list before it is tried; addresses are tried in
 * the resolver's order within one overall timeout. The result carries the
 * SOCKS5 reply code that describes it, so entries can report it exactly. */
#ifndef TT_EXIT_DIAL_H
#define TT_EXIT_DIAL_H

#include <stdint.h>
#include <uv.h>

#include "core/target.h"
#include "exit/acl.h"
#include "exit/resolver.h"
#include "link/link.h"

typedef struct tt_dial tt_dial;

typedef struct tt_dial_opts {
    const tt_acl *acl;   /* NULL: no access check (the client dialing its server) */
    unsigned timeout_ms; /* whole attempt, resolution included; 0 = no limit */
    /* NULL: the system's getaddrinfo. Else names are asked of this resolver,
     * which must run on the dial's loop and outlive the tt_dial_start call;
     * IP literals given as names are still never sent to it. */
    const tt_resolver *resolver;
    bool fast_open; /* TCP Fast Open: the first write rides in the SYN once a cookie is held */
} tt_dial_opts;

/* REP is a SOCKS5 reply code: 0 with LINK set (owned by the callee), else LINK
 * is NULL and ERR holds the underlying negative code (0 when refused by the
 * access list). */
typedef void (*tt_dial_cb)(void *ud, uint8_t rep, int err, tt_link *link);

/* Starts dialing T. The callback runs exactly once and never from inside this
 * call. *OUT (may be NULL) is valid until then. Returns 0 or -ENOMEM. */
int tt_dial_start(uv_loop_t *loop, const tt_target *t, const tt_dial_opts *opts, tt_dial_cb cb,
                  void *ud, tt_dial **out);

/* Aborts a dial; its callback runs with TT_S5_REP_GENERAL and UV_ECANCELED. */
void tt_dial_cancel(tt_dial *d);

/* The SOCKS5 reply code for a libuv error from resolving or connecting. */
uint8_t tt_dial_rep_for_error(int err);

#endif
