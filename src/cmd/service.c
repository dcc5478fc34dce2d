/* Running as a service: where the log goes, the pid file, and --daemon's
 * detach, whose parent waits for the daemon to report that it is ready. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/log.h"

/* Both absolute: the daemon works in / and must still find them. "" when
 * not given. */
static char g_pid_path[PATH_MAX];
static bool g_pid_written;
/* The daemon's stderr is the pipe to its waiting parent until it is ready. */
static bool g_parent_waits;

static int absolute(const char *path, char *out, size_t len)
{
    char cwd[PATH_MAX];
    int n;
    if (path[0] == '/')
        n = snprintf(out, len, "%s", path);
    else if (getcwd(cwd, sizeof cwd) != NULL)
        n = snprintf(out, len, "%s/%s", cwd, path);
    else
        return -errno;
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int setup_level(const tt_cmd_spec *spec, const char *level, int verbose)
{
    int lv = TT_LOG_INFO;
    const char *env = getenv("LOG_LEVEL");
    if (env && *env) {
        lv = tt_log_parse_level(env);
        if (lv < 0)
            return tt_opts_fail(spec, "invalid LOG_LEVEL '%s' (error, warn, info, debug, trace)",
                                env);
    }
    if (level) {
        lv = tt_log_parse_level(level);
        if (lv < 0)
            return tt_opts_fail(spec, "invalid --log-level '%s' (error, warn, info, debug, trace)",
                                level);
    }
    lv += verbose;
    if (lv > TT_LOG_TRACE)
        lv = TT_LOG_TRACE;
    tt_log_set_level((enum tt_log_level)lv);
    return 0;
}

/* The pid written in PATH, or 0. */
static long read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

/* The pid that PATH names when that process is alive, else 0. */
static long running_pid(const char *path)
{
    long pid = read_pid(path);
    if (pid <= 0 || pid > INT_MAX || pid == (long)getpid())
        return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM ? pid : 0;
}

/* The parent's side: copies what the daemon writes to its stderr (an error
 * line) to ours until the NUL byte that says it is ready, then exits 0. At
 * the end of the pipe without one, the daemon has failed: exits with its
 * status. Runs no atexit handler: the daemon owns the process's work. */
static _Noreturn void wait_ready(int fd, pid_t child)
{
    char buf[512];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        char *nul = memchr(buf, '\0', (size_t)n);
        ssize_t w = write(STDERR_FILENO, buf, nul ? (size_t)(nul - buf) : (size_t)n);
        (void)w;
        if (nul)
            _exit(0);
    }
    int st = 0;
    while (waitpid(child, &st, 0) < 0 && errno == EINTR)
        ;
    _exit(WIFEXITED(st) && WEXITSTATUS(st) != 0 ? WEXITSTATUS(st) : 1);
}

static int detach(const tt_cmd_spec *spec)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return tt_opts_fail(spec, "--daemon: cannot make a pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return tt_opts_fail(spec, "--daemon: cannot fork: %s", strerror(e));
    }
    if (pid > 0) {
        close(p[1]);
        wait_ready(p[0], pid);
    }
    close(p[0]);
    /* A session of its own: no controlling terminal, and the terminal's
     * hangup or ^C does not reach it. The working directory is left so
     * that no mount stays busy. */
    setsid();
    if (chdir("/") != 0)
        tt_warn("--daemon: cannot change to /: %s", strerror(errno));
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        close(null);
    }
    dup2(p[1], STDERR_FILENO);
    close(p[1]);
    /* A parent gone before the report (its terminal closed) must not make
     * the report's write end the daemon. */
    signal(SIGPIPE, SIG_IGN);
    g_parent_waits = true;
    tt_log_mirror_errors(1);
    return 0;
}

void tt_cmd_stop_signals(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(how, &set, NULL);
}

int tt_cmd_service_start(const tt_cmd_spec *spec, tt_cmd_service *svc)
{
    /* A SIGTERM right after readiness (a service manager that stops what
     * it just started) must find the handlers of tt_cmd_run, not the
     * default action that ends tt without its clean stop: the signals
     * wait, blocked, until tt_cmd_run watches them. */
    tt_cmd_stop_signals(SIG_BLOCK);
    int rc = setup_level(spec, svc->log_level, svc->verbose);
    if (rc)
        return rc;
    if (svc->log_file && svc->syslog)
        return tt_opts_fail(spec, "--log-file and --syslog: choose one");
    if (svc->log_file) {
        char path[PATH_MAX];
        rc = absolute(svc->log_file, path, sizeof path);
        if (rc == 0)
            rc = tt_log_to_file(path);
        if (rc < 0)
            return tt_opts_fail(spec, "cannot open --log-file %s: %s", svc->log_file,
                                strerror(-rc));
    } else if (svc->syslog || svc->daemon) {
        /* A daemon's stderr leads nowhere. */
        tt_log_to_syslog();
    }
    if (svc->pid_file) {
        rc = absolute(svc->pid_file, g_pid_path, sizeof g_pid_path);
        if (rc < 0)
            return tt_opts_fail(spec, "invalid --pid-file %s: %s", svc->pid_file, strerror(-rc));
        long pid = running_pid(g_pid_path);
        if (pid > 0)
            return tt_opts_fail(spec,
                                "--pid-file %s names process %ld, which is running: another "
                                "tt already uses this pid file",
                                svc->pid_file, pid);
    }
    return svc->daemon ? detach(spec) : 0;
}

/* Writes the pid to a file beside the pid file and renames it into place,
 * so that a reader never sees a half-written one. */
static int write_pid_file(void)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", g_pid_path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    char text[32];
    int n = snprintf(text, sizeof text, "%d\n", (int)getpid());
    int rc = write(fd, text, (size_t)n) == n ? 0 : -EIO;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, g_pid_path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int tt_cmd_service_ready(void)
{
    if (g_pid_path[0]) {
        int rc = write_pid_file();
        if (rc < 0) {
            tt_error("cannot write --pid-file %s: %s", g_pid_path, strerror(-rc));
            return 1;
        }
        g_pid_written = true;
    }
    if (g_parent_waits) {
        ssize_t w = write(STDERR_FILENO, "", 1);
        (void)w;
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDERR_FILENO);
            close(null);
        }
        g_parent_waits = false;
        tt_log_mirror_errors(0);
    }
    return 0;
}

void tt_cmd_service_stop(void)
{
    if (!g_pid_written)
        return;
    g_pid_written = false;
    /* Another tt may have taken the file over since; only ours goes. */
    if (read_pid(g_pid_path) == (long)getpid() && unlink(g_pid_path) != 0)
        tt_warn("cannot remove --pid-file %s: %s", g_pid_path, strerror(errno));
}
