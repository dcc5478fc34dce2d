/* Running out of descriptors (link/fdlimit.c): where the reserve begins, and
 * a shortage reported once however many events come at once. Each test runs
 * in its own process (Criterion), so it may lower its own RLIMIT_NOFILE. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "link/fdlimit.h"

static void set_limit(rlim_t n)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = n;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static int lowest_free(void)
{
    int fd = fcntl(0, F_DUPFD, 0);
    cr_assert_geq(fd, 0);
    close(fd);
    return fd;
}

Test(fdlimit, the_reserve_is_an_eighth_of_the_limit_at_least_16)
{
    set_limit(800); /* reserve 100: short from 700 descriptors on */
    tt_fd_baseline();
    int base = lowest_free();
    cr_expect_not(tt_fd_short(-1, 699 - base));
    cr_expect(tt_fd_short(-1, 700 - base));
    cr_expect_not(tt_fd_short(699, 0));
    cr_expect(tt_fd_short(700, 0));
    set_limit(64); /* an eighth is 8: the floor of 16 holds */
    cr_expect_not(tt_fd_short(47, 0));
    cr_expect(tt_fd_short(48, 0));
    cr_expect(tt_fd_short(-1, 48 - base));
}

Test(fdlimit, a_shortage_is_reported_once_not_per_event, .init = cr_redirect_stderr)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (int i = 0; i < 1000; i++)
        tt_fd_report(&loop, i % 2 ? TT_FD_SHED : TT_FD_REFUSED);
    tt_fd_report(&loop, TT_FD_CONNECT);
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        n++;
        cr_expect(strstr(line, "warn: out of file descriptors (RLIMIT_NOFILE") != NULL, "%s", line);
        cr_expect(strstr(line, "refused a new connection") != NULL, "%s", line);
    }
    cr_expect_eq(n, 1, "%d lines for 1001 events within the same second", n);
    cr_assert_eq(uv_loop_close(&loop), 0);
}
