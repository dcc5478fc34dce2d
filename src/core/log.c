#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum tt_log_level g_level = TT_LOG_INFO;

static const char *const g_names[] = {"error", "warn", "info", "debug", "trace"};

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
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
