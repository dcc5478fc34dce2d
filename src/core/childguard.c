/* The parent-death guard for supervised children; see childguard.h. */
#include "core/childguard.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

const char *tt_child_guard_wrap(char *const *argv, char **out, char pid[16])
{
    snprintf(pid, 16, "%ld", (long)getpid());
    out[0] = "tt";
    out[1] = TT_CHILD_GUARD_CMD;
    out[2] = pid;
    out[3] = "--";
    size_t n = 0;
    for (; argv[n] != NULL; n++)
        out[TT_CHILD_GUARD_ARGS + n] = argv[n];
    out[TT_CHILD_GUARD_ARGS + n] = NULL;
    /* The child is a fork of tt, so this names tt's binary even if the
     * file was replaced or deleted since tt started. */
    return "/proc/self/exe";
}

int tt_child_guard_main(int argc, char **argv)
{
    char *end = NULL;
    long ppid = argc >= 5 ? strtol(argv[2], &end, 10) : 0;
    if (argc < 5 || end == argv[2] || *end != '\0' || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "tt: '%s' is internal (tt %s PPID -- PROGRAM ARGS...)\n",
                TT_CHILD_GUARD_CMD, TT_CHILD_GUARD_CMD);
        return 2;
    }
    /* The signal must not find itself blocked: tt blocks its stop signals
     * until its loop watches them, and a mask survives execve. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
        fprintf(stderr, "tt: cannot ask for a signal at tt's end: %s\n", strerror(errno));
        return 127;
    }
    /* tt died before the request took effect: nobody would send it. */
    if (getppid() != (pid_t)ppid)
        return 1;
    execvp(argv[4], argv + 4);
    fprintf(stderr, "cannot run %s: %s\n", argv[4], strerror(errno));
    return 127;
}
