/* Logging: one line per event on stderr, with a level, a timestamp and the
 * caller's context. Text is produced only here, at the edge; the rest of the
 * code passes error codes. */
#ifndef TT_CORE_LOG_H
#define TT_CORE_LOG_H

enum tt_log_level {
    TT_LOG_ERROR = 0,
    TT_LOG_WARN = 1,
    TT_LOG_INFO = 2,
    TT_LOG_DEBUG = 3,
    TT_LOG_TRACE = 4,
};

/* Sets the most verbose level that is printed. */
void tt_log_set_level(enum tt_log_level level);

/* True when a line at LEVEL would be printed; lets callers skip formatting. */
int tt_log_enabled(enum tt_log_level level);

/* Parses "error", "warn", "info", "debug", "trace" (or 0-4). Returns the level,
 * or -1 when S names none of them. */
int tt_log_parse_level(const char *s);

/* Where lines go: stderr (the default), a file opened for appending, or
 * syslog (facility daemon, tagged "tt" with the pid). Each returns 0, or
 * -errno when PATH cannot be opened (the sink is then unchanged). */
int tt_log_to_file(const char *path);
void tt_log_to_syslog(void);

/* With a file as the sink, opens PATH again (after logrotate renamed it) and
 * writes there from now on. Returns 1 when it reopened, 0 when the sink is
 * not a file, or -errno (the old file is kept). */
int tt_log_reopen(void);

/* While ON and the sink is not stderr, error lines also go to stderr, so that
 * a daemon's parent can show a failure during start-up. */
void tt_log_mirror_errors(int on);

/* Prints one line at LEVEL. The format must not end in a newline. */
void tt_log(enum tt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define TT_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if (tt_log_enabled(level))                                                                 \
            tt_log(level, __VA_ARGS__);                                                            \
    } while (0)
#define tt_error(...) TT_LOG(TT_LOG_ERROR, __VA_ARGS__)
#define tt_warn(...) TT_LOG(TT_LOG_WARN, __VA_ARGS__)
#define tt_info(...) TT_LOG(TT_LOG_INFO, __VA_ARGS__)
#define tt_debug(...) TT_LOG(TT_LOG_DEBUG, __VA_ARGS__)
#define tt_trace(...) TT_LOG(TT_LOG_TRACE, __VA_ARGS__)

#endif
