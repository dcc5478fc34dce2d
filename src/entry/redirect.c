#include "entry/redirect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "entry/forward.h"

/* IP6T_SO_ORIGINAL_DST: linux/netfilter_ipv6/ip6_tables.h defines it, but
 * that header pulls in the whole ip6tables interface; the value is part of
 * the kernel's ABI. */
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

/* Reads the destination the application connected to before nftables
 * redirected it into FD. Returns 0 with T set, or a negative errno. */
static int original_dst(int fd, tt_target *t)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    int family = ss.ss_family;
    len = sizeof ss;
    int rc = family == AF_INET6 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len)
                                : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
    if (rc != 0)
        return -errno;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        t->type = TT_TARGET_IPV4;
        memcpy(t->u.v4, &in->sin_addr, 4);
        t->port = ntohs(in->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        t->type = TT_TARGET_IPV6;
        memcpy(t->u.v6, &in6->sin6_addr, 16);
        t->port = ntohs(in6->sin6_port);
    } else {
        return -EAFNOSUPPORT;
    }
    return 0;
}

/* True when the original destination is the listener's own address: the
 * connection came straight to tt, not through a redirect rule, and
 * carrying it would ask the server for tt's loopback port. */
static bool is_self(int fd, const tt_target *t)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return true;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        return t->type == TT_TARGET_IPV4 && memcmp(t->u.v4, &in->sin_addr, 4) == 0 &&
               t->port == ntohs(in->sin_port);
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    return t->type == TT_TARGET_IPV6 && memcmp(t->u.v6, &in6->sin6_addr, 16) == 0 &&
           t->port == ntohs(in6->sin6_port);
}

static void on_accept(void *ud, tt_link *app)
{
    const tt_entry_cfg *cfg = ud;
    char peer[64];
    tt_link_peer(app, peer, sizeof peer);
    uv_tcp_t *tcp = tt_tcp_link_handle(app);
    uv_os_fd_t fd;
    tt_target dest;
    memset(&dest, 0, sizeof dest);
    int rc = tcp != NULL ? uv_fileno((uv_handle_t *)tcp, &fd) : UV_EINVAL;
    if (rc == 0)
        rc = original_dst(fd, &dest);
    if (rc == 0 && is_self(fd, &dest))
        rc = -ELOOP;
    if (rc != 0) {
        tt_info("c%llu %s: no redirected destination (%s); closing", (unsigned long long)app->id,
                peer,
                rc == -ELOOP ? "it connected to the redirect listener itself" : strerror(-rc));
        tt_link_abort(app, NULL, NULL);
        return;
    }
    char tbuf[TT_TARGET_STRLEN];
    tt_debug("c%llu %s: redirected to %s", (unsigned long long)app->id, peer,
             tt_target_format(&dest, tbuf, sizeof tbuf));
    tt_forward_conn_start(cfg, app, &dest);
}

int tt_redirect_entry_start(uv_loop_t *loop, const char *host, const tt_entry_cfg *cfg,
                            tt_tcp_listener **out, const char **why)
{
    /* The listener API takes a mutable user pointer; on_accept only reads. */
    int rc = tt_tcp_listen(loop, host, 0, on_accept, (void *)(uintptr_t)cfg, out);
    if (rc < 0)
        *why = uv_strerror(rc);
    return rc;
}
