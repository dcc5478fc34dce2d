#include "entry/dnsfar.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec/resolvconf.h"

extern char **environ;

/* What the child wrote on one of its pipes, bounded. */
typedef struct sink {
    int fd;
    char *buf;
    size_t len, cap;
} sink;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads what is there; returns false at EOF or an error. Bytes past CAP
 * are read and dropped, so the child is never blocked on a full pipe. */
static bool drain(sink *s)
{
    char tmp[4096];
    ssize_t n = read(s->fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    size_t take = (size_t)n < s->cap - s->len ? (size_t)n : s->cap - s->len;
    memcpy(s->buf + s->len, tmp, take);
    s->len += take;
    return true;
}

/* The last non-empty line of TEXT, into OUT. */
static void last_line(const char *text, size_t len, char *out, size_t outlen)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    snprintf(out, outlen, "%.*s", (int)(len - start), text + start);
}

int tt_dnsfar_read(char *const argv[], unsigned timeout_ms, tt_target *out, char *err, size_t len)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(err, len, "pipe: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (outp[i] >= 0)
                close(outp[i]);
            if (errp[i] >= 0)
                close(errp[i]);
        }
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(outp[1]);
    close(errp[1]);
    static char obuf[TT_RESOLVCONF_MAX], ebuf[4096];
    sink sinks[2] = {{outp[0], obuf, 0, sizeof obuf}, {errp[0], ebuf, 0, sizeof ebuf}};
    if (rc != 0) {
        snprintf(err, len, "cannot run %s: %s", argv[0], strerror(rc));
        close(outp[0]);
        close(errp[0]);
        return -1;
    }
    uint64_t deadline = now_ms() + timeout_ms;
    bool open[2] = {true, true}, late = false;
    while (open[0] || open[1]) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            late = true;
            break;
        }
        struct pollfd pf[2];
        nfds_t n = 0;
        int which[2];
        for (int i = 0; i < 2; i++) {
            if (open[i]) {
                pf[n] = (struct pollfd){.fd = sinks[i].fd, .events = POLLIN};
                which[n++] = i;
            }
        }
        int r = poll(pf, n, (int)(deadline - now));
        if (r < 0 && errno != EINTR)
            break;
        for (nfds_t k = 0; r > 0 && k < n; k++)
            if (pf[k].revents && !drain(&sinks[which[k]]))
                open[which[k]] = false;
    }
    close(outp[0]);
    close(errp[0]);
    if (late)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (late) {
        snprintf(err, len, "no answer within %us", (timeout_ms + 999) / 1000);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char line[256];
        last_line(ebuf, sinks[1].len, line, sizeof line);
        if (line[0] != '\0')
            snprintf(err, len, "%s", line);
        else if (WIFEXITED(status))
            snprintf(err, len, "%s exited with status %d", argv[0], WEXITSTATUS(status));
        else
            snprintf(err, len, "%s was killed by signal %d", argv[0], WTERMSIG(status));
        return -1;
    }
    tt_resolvconf_ns ns[TT_RESOLVCONF_MAX_NS];
    if (tt_resolvconf_parse(obuf, sinks[0].len, ns) == 0) {
        snprintf(err, len, "the remote /etc/resolv.conf names no nameserver");
        return -1;
    }
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(ns[0].family == 4 ? AF_INET : AF_INET6, ns[0].addr, ip, sizeof ip);
    if (tt_target_set(out, ip, 53) != 0) {
        snprintf(err, len, "cannot use the nameserver %s", ip);
        return -1;
    }
    return 0;
}
