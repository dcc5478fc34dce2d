#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum tt_log_level g_level = TT_LOG_INFO;

static const char *const g_names[] = {"error", "warn", "info", "debug", "trace"};

enum sink { SINK_STDERR, SINK_FILE, SINK_SYSLOG };
static enum sink g_sink = SINK_STDERR;
static int g_fd = STDERR_FILENO;
static char g_path[PATH_MAX];
static int g_mirror;

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    return fd < 0 ? -errno : fd;
}

int tt_log_to_file(const char *path)
{
    if (strlen(path) >= sizeof g_path)
        return -ENAMETOOLONG;
    int fd = open_log(path);
    if (fd < 0)
        return fd;
    if (g_sink == SINK_FILE)
        close(g_fd);
    strcpy(g_path, path);
    g_fd = fd;
    g_sink = SINK_FILE;
    return 0;
}

void tt_log_to_syslog(void)
{
    openlog("tt", LOG_PID, LOG_DAEMON);
    g_sink = SINK_SYSLOG;
}

int tt_log_reopen(void)
{
    if (g_sink != SINK_FILE)
        return 0;
    int fd = open_log(g_path);
    if (fd < 0)
        return fd;
    /* dup2 swaps the file under the same descriptor, so no line is ever
     * written to a closed one. */
    if (dup2(fd, g_fd) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    close(fd);
    return 1;
}

void tt_log_mirror_errors(int on)
{
    g_mirror = on;
}

void tt_log_set_level(enum tt_log_level level)
{
    g_level = level;
}

int tt_log_enabled(enum tt_log_level level)
{
    return level <= g_level;
}

int tt_log_parse_level(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < (int)(sizeof g_names / sizeof g_names[0]); i++) {
        if (strcmp(s, g_names[i]) == 0)
            return i;
    }
    if (s[0] >= '0' && s[0] <= '4' && s[1] == '\0')
        return s[0] - '0';
    return -1;
}

void tt_log(enum tt_log_level level, const char *fmt, ...)
{
    char line[1024];
    if (g_sink == SINK_SYSLOG) {
        /* syslog adds the time and the pid itself; the level becomes the
         * priority. */
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG};
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (m < 0)
            return;
        syslog(prio[level], "%s", line);
        if (!(g_mirror && level == TT_LOG_ERROR))
            return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ tt[%d] %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, (int)getpid(), g_names[level]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line, so lines from several processes sharing a log file
     * do not interleave. */
    ssize_t w;
    if (g_sink != SINK_SYSLOG)
        w = write(g_fd, line, len);
    if (g_sink != SINK_STDERR && g_mirror && level == TT_LOG_ERROR)
        w = write(STDERR_FILENO, line, len);
    (void)w;
}
