/* The process link with real children: bytes both ways through cat, a
 * half-close that reaches the child as EOF, standard error in lines, the
 * exit status, a missing program, and a child that ignores SIGTERM reaped
 * after SIGKILL when the link closes. */
#include <criterion/criterion.h>

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "link/proc.h"
#include "memlink.h"

static uv_loop_t loop;

static void setup(void)
{
    uv_loop_init(&loop);
}

static void teardown(void)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_test_close_loop(&loop);
}

TestSuite(proc, .init = setup, .fini = teardown, .timeout = 20);

typedef struct seen {
    char data[256];
    size_t len;
    bool eof;
    int error;
    char lines[4][64];
    int n_lines;
    bool exited;
    int64_t status;
    bool closed;
    bool keep_open; /* on EOF: leave the link open (to see the exit) */
    tt_link *link;
} seen;

static void on_data(tt_link *l, void *ud, const uint8_t *d, size_t n)
{
    seen *s = ud;
    (void)l;
    cr_assert_leq(s->len + n, sizeof s->data);
    memcpy(s->data + s->len, d, n);
    s->len += n;
}

static void on_closed(void *ud)
{
    ((seen *)ud)->closed = true;
}

static void on_eof(tt_link *l, void *ud)
{
    seen *s = ud;
    s->eof = true;
    if (!s->keep_open)
        tt_link_close(l, on_closed, s);
}

static void on_error(tt_link *l, void *ud, int err)
{
    seen *s = ud;
    s->error = err;
    tt_link_close(l, on_closed, s);
}

static const tt_link_handler handler = {on_data, on_eof, on_error, NULL};

static void on_line(void *ud, const char *line)
{
    seen *s = ud;
    cr_assert_lt(s->n_lines, 4);
    snprintf(s->lines[s->n_lines++], sizeof s->lines[0], "%s", line);
}

static void on_child_exit(void *ud, int64_t status, int sig)
{
    seen *s = ud;
    (void)sig;
    s->exited = true;
    s->status = status;
}

static tt_link *spawn(seen *s, const char *a0, const char *a1, const char *a2)
{
    char *argv[] = {(char *)(uintptr_t)a0, (char *)(uintptr_t)a1, (char *)(uintptr_t)a2, NULL};
    tt_proc_opts o = {.on_stderr = on_line, .on_exit = on_child_exit, .ud = s};
    const char *why = NULL;
    tt_link *l = NULL;
    cr_assert_eq(tt_proc_link_spawn(&loop, argv, &o, &l, &why), 0, "%s", why ? why : "");
    tt_link_set_handler(l, &handler, s);
    cr_assert_eq(tt_link_read_start(l), 0);
    s->link = l;
    return l;
}

Test(proc, cat_echoes_and_half_close_reaches_the_child)
{
    seen s = {0};
    tt_link *l = spawn(&s, "cat", NULL, NULL);
    cr_assert_gt(tt_proc_link_pid(l), 0);
    cr_assert_eq(tt_link_write1(l, "hello, child", 12), 0);
    cr_assert_eq(tt_link_shutdown(l), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(s.len, 12);
    cr_assert_eq(memcmp(s.data, "hello, child", 12), 0);
    cr_assert(s.eof, "cat's EOF after ours");
    cr_assert(s.closed);
}

Test(proc, stderr_lines_and_exit_status)
{
    seen s = {.keep_open = true};
    tt_link *l = spawn(&s, "sh", "-c", "printf 'one\\ntwo\\r\\nthree' >&2; exit 3");
    /* The loop runs until the child has exited and its stdout is at EOF. */
    uv_run(&loop, UV_RUN_DEFAULT);
    tt_link_close(l, on_closed, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(s.eof && s.closed);
    cr_assert_eq(s.n_lines, 3);
    cr_assert_str_eq(s.lines[0], "one");
    cr_assert_str_eq(s.lines[1], "two");
    cr_assert_str_eq(s.lines[2], "three");
    cr_assert(s.exited);
    cr_assert_eq(s.status, 3);
}

Test(proc, missing_program_is_an_error_with_a_reason)
{
    char *argv[] = {(char *)(uintptr_t) "/nonexistent/tt-no-such-program", NULL};
    const char *why = NULL;
    tt_link *l = NULL;
    cr_assert_lt(tt_proc_link_spawn(&loop, argv, NULL, &l, &why), 0);
    cr_assert_null(l);
    cr_assert_str_eq(why, "program not found");
}

Test(proc, close_ends_a_child_that_ignores_sigterm)
{
    seen s = {0};
    /* The child says it is ready once its trap is set. */
    tt_link *l = spawn(&s, "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done");
    while (s.len < 6)
        uv_run(&loop, UV_RUN_ONCE);
    int pid = tt_proc_link_pid(l);
    tt_link_close(l, on_closed, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert(s.closed);
    /* Reaped: the pid is gone, not a zombie. */
    cr_assert_eq(kill(pid, 0), -1);
}
