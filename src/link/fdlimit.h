/* Running out of file descriptors. A server flooded with idle connections
 * reaches RLIMIT_NOFILE; libuv then accepts and closes whatever waits in
 * the backlog without telling anyone (its reserve-descriptor trick), and
 * connects to destinations fail with "too many open files". This module
 * says when the process is short, keeping a reserve below the limit for the
 * connects that authenticated clients need, and reports shortages in a
 * warning that is rate-limited (the first at once, then at most one line
 * per TT_FD_REPORT_MS with the counts since). The policy of what to close
 * is the TCP listener's (link/tcp.c). */
#ifndef TT_LINK_FDLIMIT_H
#define TT_LINK_FDLIMIT_H

#include <stdbool.h>
#include <uv.h>

#define TT_FD_REPORT_MS 10000

typedef enum tt_fd_event {
    TT_FD_SHED,    /* an unauthenticated connection was closed to make room */
    TT_FD_REFUSED, /* a new connection was closed at once: nothing to shed */
    TT_FD_CONNECT, /* a connect failed for want of a descriptor */
} tt_fd_event;

/* Records, once, how many descriptors the process holds before its first
 * connection: the lowest free descriptor number at the first call. */
void tt_fd_baseline(void);

/* True when the process is in the reserve: fewer descriptors are left below
 * the soft RLIMIT_NOFILE than an eighth of it (at least 16, at most 1024),
 * counting the baseline plus SOCKETS held for connections, or FD (a
 * descriptor just opened, -1 for none) is itself that high. */
bool tt_fd_short(int fd, int sockets);

/* Counts EV and logs a warning if none was logged in the last
 * TT_FD_REPORT_MS (loop time of LOOP). */
void tt_fd_report(uv_loop_t *loop, tt_fd_event ev);

#endif
