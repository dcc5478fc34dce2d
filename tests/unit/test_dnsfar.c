/* Tests of reading the far nameserver from a command's output (the ssh
 * one-shot of tt client --dns), with sh standing in for ssh: the first
 * nameserver, the command's complaint on failure, its exit status when it
 * says nothing, the time limit, and a file naming no nameserver. */
#include <criterion/criterion.h>

#include <string.h>

#include "entry/dnsfar.h"

static int run(const char *script, unsigned timeout_ms, tt_target *t, char *err, size_t len)
{
    char *argv[] = {"sh", "-c", (char *)(uintptr_t)script, NULL};
    return tt_dnsfar_read(argv, timeout_ms, t, err, len);
}

Test(dnsfar, first_nameserver_on_port_53)
{
    tt_target t;
    char err[256] = "";
    cr_assert_eq(run("printf 'search x\\nnameserver fd00::53\\nnameserver 10.0.0.1\\n'", 5000, &t,
                     err, sizeof err),
                 0, "%s", err);
    char buf[TT_TARGET_STRLEN];
    cr_assert_str_eq(tt_target_format(&t, buf, sizeof buf), "[fd00::53]:53");
}

Test(dnsfar, failures_say_why)
{
    tt_target t;
    char err[256];
    cr_assert_eq(run("echo 'warning\nPermission denied (publickey).' >&2; exit 255", 5000, &t, err,
                     sizeof err),
                 -1);
    cr_assert_str_eq(err, "Permission denied (publickey).");
    cr_assert_eq(run("exit 3", 5000, &t, err, sizeof err), -1);
    cr_assert_str_eq(err, "sh exited with status 3");
    cr_assert_eq(run("echo '# nothing'", 5000, &t, err, sizeof err), -1);
    cr_assert_str_eq(err, "the remote /etc/resolv.conf names no nameserver");
    cr_assert_eq(run("exec sleep 30", 200, &t, err, sizeof err), -1);
    cr_assert_str_eq(err, "no answer within 1s");
    char *argv[] = {"/nonexistent/ssh", NULL};
    cr_assert_eq(tt_dnsfar_read(argv, 1000, &t, err, sizeof err), -1);
    cr_assert(strstr(err, "cannot run /nonexistent/ssh") != NULL, "%s", err);
}
