#include "link/fdlimit.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/log.h"

static long soft_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur > INT32_MAX)
        return INT32_MAX;
    return (long)rl.rlim_cur;
}

static int reserve_of(long limit)
{
    long r = limit / 8;
    return r < 16 ? 16 : r > 1024 ? 1024 : (int)r;
}

static int g_baseline = -1;

void tt_fd_baseline(void)
{
    if (g_baseline >= 0)
        return;
    int fd = fcntl(0, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        fd = fcntl(2, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) {
        g_baseline = fd;
        close(fd);
    }
}

bool tt_fd_short(int fd, int sockets)
{
    /* One getrlimit per accepted connection: a system call of well under a
     * microsecond, against the accept itself, and it follows a limit changed
     * at run time (prlimit). */
    long limit = soft_limit();
    long high = limit - reserve_of(limit);
    long used = (g_baseline > 0 ? g_baseline : 0) + (long)sockets;
    return used >= high || (long)fd >= high;
}

/* Events since the last line, and when it was written. */
static unsigned g_count[3];
static uint64_t g_last;
static bool g_reported;

void tt_fd_report(uv_loop_t *loop, tt_fd_event ev)
{
    g_count[ev]++;
    uint64_t now = uv_now(loop);
    if (g_reported && now - g_last < TT_FD_REPORT_MS)
        return;
    long limit = soft_limit();
    if (!g_reported) {
        static const char *const what[] = {
            [TT_FD_SHED] = "closed a connection not yet authenticated",
            [TT_FD_REFUSED] = "refused a new connection",
            [TT_FD_CONNECT] = "a connect to a destination failed",
        };
        tt_warn("out of file descriptors (RLIMIT_NOFILE %ld, %d kept for connects): %s; "
                "connections not yet authenticated make room, the oldest from the newcomer's "
                "source first, new ones are refused when none is left (logged at most every "
                "%ds)",
                limit, reserve_of(limit), what[ev], TT_FD_REPORT_MS / 1000);
    } else {
        tt_warn("still out of file descriptors (RLIMIT_NOFILE %ld): in the last %llus %u "
                "connections not yet authenticated closed, %u new connections refused, %u "
                "connects failed",
                limit, (unsigned long long)((now - g_last) / 1000), g_count[TT_FD_SHED],
                g_count[TT_FD_REFUSED], g_count[TT_FD_CONNECT]);
    }
    g_reported = true;
    g_last = now;
    g_count[TT_FD_SHED] = g_count[TT_FD_REFUSED] = g_count[TT_FD_CONNECT] = 0;
}
