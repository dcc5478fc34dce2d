/* Children that do not outlive tt. A child tt supervises (the ssh://
 * carrier's `ssh -N -D`) is ended by tt when tt ends cleanly; when tt is
 * killed outright (SIGKILL, the OOM killer) nothing of tt runs, so the
 * kernel must do it: PR_SET_PDEATHSIG sends the child a signal when its
 * parent dies. libuv's uv_spawn has no hook between fork and exec to set
 * it, so the child is started as tt itself in a small internal mode (the
 * guard) that sets it and then executes the real program, which keeps it
 * across execve. The guard checks that tt is still its parent after
 * setting it, which closes the window in which tt could die first. */
#ifndef TT_CORE_CHILDGUARD_H
#define TT_CORE_CHILDGUARD_H

#include <stddef.h>

/* The internal command name main() dispatches to tt_child_guard_main. */
#define TT_CHILD_GUARD_CMD "_guard"

/* Pointers tt_child_guard_wrap puts in front of the program's argv. */
#define TT_CHILD_GUARD_ARGS 4

/* Fills OUT with ARGV (NULL-terminated) behind the guard, for uv_spawn:
 * OUT must have room for TT_CHILD_GUARD_ARGS more pointers than ARGV;
 * PID (16 bytes) holds the text of tt's pid that OUT points into. Returns
 * the file to execute: tt's own binary. */
const char *tt_child_guard_wrap(char *const *argv, char **out, char pid[16]);

/* The guard: ARGV is "tt _guard PPID -- PROGRAM ARGS...". Asks for
 * SIGTERM when the parent dies, exits at once if the parent is no longer
 * PPID, and executes PROGRAM (looked up in PATH). Returns (as an exit
 * status) only on failure: 127 if PROGRAM cannot be run, with a line on
 * stderr. */
int tt_child_guard_main(int argc, char **argv);

#endif
