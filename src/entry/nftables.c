#include "entry/nftables.h"

#include <dirent.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "core/log.h"

struct tt_nft {
    struct nft_ctx *ctx;
};

/* libnftables opens its netlink socket without SOCK_CLOEXEC and does not
 * expose it, so every netlink socket of the process is marked here (tt
 * opens none of its own that a child should inherit). */
static void cloexec_netlink(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        int domain = 0;
        socklen_t len = sizeof domain;
        if (fd > 2 && fd != dirfd(d) && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
            domain == AF_NETLINK) {
            int fl = fcntl(fd, F_GETFD);
            if (fl >= 0)
                (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
    }
    closedir(d);
}

/* Copies the first line of nftables' error text that says something (it
 * starts with the offending input's location), trimmed. */
static void first_line(const char *text, char *out, size_t len)
{
    const char *p = text ? text : "";
    const char *err = strstr(p, "Error: ");
    if (err != NULL)
        p = err + 7;
    size_t n = strcspn(p, "\n");
    if (n == 0) {
        p = "libnftables gave no reason";
        n = strlen(p);
    }
    snprintf(out, len, "%.*s", (int)n, p);
}

tt_nft *tt_nft_install(const char *script, char *err, size_t len)
{
    tt_nft *n = calloc(1, sizeof *n);
    if (n == NULL || (n->ctx = nft_ctx_new(NFT_CTX_DEFAULT)) == NULL) {
        free(n);
        snprintf(err, len, "cannot make a libnftables context");
        return NULL;
    }
    cloexec_netlink();
    nft_ctx_buffer_error(n->ctx);
    if (nft_run_cmd_from_buffer(n->ctx, script) != 0) {
        char line[256];
        first_line(nft_ctx_get_error_buffer(n->ctx), line, sizeof line);
        bool perm = strstr(line, "Operation not permitted") != NULL;
        snprintf(err, len, "%s%s", line,
                 perm ? " (changing nftables needs root or CAP_NET_ADMIN)" : "");
        nft_ctx_free(n->ctx);
        free(n);
        return NULL;
    }
    return n;
}

void tt_nft_remove(tt_nft *n, const char *script)
{
    if (n == NULL)
        return;
    if (script != NULL && nft_run_cmd_from_buffer(n->ctx, script) != 0) {
        char line[256];
        first_line(nft_ctx_get_error_buffer(n->ctx), line, sizeof line);
        tt_warn("cannot remove the nftables rules: %s", line);
    }
    nft_ctx_free(n->ctx);
    free(n);
}

unsigned tt_nft_kernel_version(void)
{
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
        return 0;
    return major * 1000 + minor;
}
