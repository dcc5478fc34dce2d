/* The process link: a thin wrapper around a stream link over one end of a
 * socketpair whose other end is the child's stdin and stdout. The wrapper
 * adds only what a process needs beyond a socket: its standard error, and
 * ending and reaping the child when the link closes. */
#include "link/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/lines.h"
#include "core/log.h"
#include "link/tcp.h"

#define KILL_AFTER_MS 2000

typedef struct proc_link {
    tt_link base;
    tt_link *lower; /* the socketpair end, NULL once closed */
    uv_process_t proc;
    uv_pipe_t err;
    uv_timer_t kill_timer;
    tt_proc_opts opts;
    bool exited;
    bool closing;
    int handles; /* open libuv handles and the lower link: freed at 0 */
    tt_link_close_cb close_cb;
    void *close_ud;
    tt_lines lines; /* the child's stderr */
} proc_link;

static void release(proc_link *p)
{
    if (--p->handles > 0)
        return;
    tt_link_close_cb cb = p->close_cb;
    void *ud = p->close_ud;
    free(p);
    if (cb)
        cb(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    release(h->data);
}

/* The lower link's events are the process link's, unless it is closing. */
static void low_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    proc_link *p = ud;
    (void)l;
    if (!p->closing)
        p->base.handler->on_data(&p->base, p->base.ud, data, len);
}

static void low_eof(tt_link *l, void *ud)
{
    proc_link *p = ud;
    (void)l;
    if (!p->closing)
        p->base.handler->on_eof(&p->base, p->base.ud);
}

static void low_error(tt_link *l, void *ud, int err)
{
    proc_link *p = ud;
    (void)l;
    if (!p->closing)
        p->base.handler->on_error(&p->base, p->base.ud, err);
}

static void low_drained(tt_link *l, void *ud)
{
    proc_link *p = ud;
    (void)l;
    if (!p->closing && p->base.handler->on_drained)
        p->base.handler->on_drained(&p->base, p->base.ud);
}

static const tt_link_handler low_handler = {
    .on_data = low_data,
    .on_eof = low_eof,
    .on_error = low_error,
    .on_drained = low_drained,
};

static void emit_line(void *ud, const char *line)
{
    proc_link *p = ud;
    if (p->opts.on_stderr)
        p->opts.on_stderr(p->opts.ud, line);
    else
        tt_warn("child %d: %s", p->proc.pid, line);
}

static void err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    proc_link *p = h->data;
    size_t n;
    (void)suggested;
    char *space = tt_lines_space(&p->lines, &n);
    *buf = uv_buf_init(space, (unsigned)n);
}

static void err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    proc_link *p = s->data;
    (void)buf;
    if (n < 0) {
        tt_lines_flush(&p->lines, emit_line, p);
        uv_read_stop(s);
        return;
    }
    tt_lines_commit(&p->lines, (size_t)n, emit_line, p);
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig)
{
    proc_link *p = h->data;
    p->exited = true;
    if (p->opts.on_exit && !p->closing)
        p->opts.on_exit(p->opts.ud, status, sig);
    if (p->closing) {
        uv_close((uv_handle_t *)&p->kill_timer, on_handle_closed);
        uv_close((uv_handle_t *)&p->proc, on_handle_closed);
    }
}

static void on_kill_timer(uv_timer_t *t)
{
    proc_link *p = t->data;
    if (!p->exited) {
        tt_warn("child %d did not end on SIGTERM; killing it", p->proc.pid);
        uv_process_kill(&p->proc, SIGKILL);
    }
}

static void lower_closed(void *ud)
{
    release(ud);
}

static void proc_end(tt_link *l, tt_link_close_cb cb, void *ud, bool abort)
{
    proc_link *p = (proc_link *)l;
    if (p->closing)
        return;
    p->closing = true;
    p->close_cb = cb;
    p->close_ud = ud;
    if (abort)
        tt_link_abort(p->lower, lower_closed, p);
    else
        tt_link_close(p->lower, lower_closed, p);
    uv_close((uv_handle_t *)&p->err, on_handle_closed);
    if (p->exited) {
        uv_close((uv_handle_t *)&p->kill_timer, on_handle_closed);
        uv_close((uv_handle_t *)&p->proc, on_handle_closed);
        return;
    }
    /* The process handle stays open until the child is reaped (on_exit_cb
     * closes it); otherwise libuv would stop waiting for it and leave a
     * zombie. A child that ignores SIGTERM gets SIGKILL. */
    if (uv_process_kill(&p->proc, SIGTERM) != 0)
        uv_process_kill(&p->proc, SIGKILL);
    else
        uv_timer_start(&p->kill_timer, on_kill_timer, KILL_AFTER_MS, 0);
}

static void proc_close(tt_link *l, tt_link_close_cb cb, void *ud)
{
    proc_end(l, cb, ud, false);
}

static void proc_abort(tt_link *l, tt_link_close_cb cb, void *ud)
{
    proc_end(l, cb, ud, true);
}

static int proc_write(tt_link *l, const uv_buf_t *bufs, unsigned nbufs)
{
    proc_link *p = (proc_link *)l;
    return p->closing ? UV_EPIPE : tt_link_write(p->lower, bufs, nbufs);
}

static int proc_read_start(tt_link *l)
{
    proc_link *p = (proc_link *)l;
    return p->closing ? UV_EINVAL : tt_link_read_start(p->lower);
}

static void proc_read_stop(tt_link *l)
{
    proc_link *p = (proc_link *)l;
    if (!p->closing)
        tt_link_read_stop(p->lower);
}

static int proc_shutdown(tt_link *l)
{
    proc_link *p = (proc_link *)l;
    return p->closing ? 0 : tt_link_shutdown(p->lower);
}

static size_t proc_pending(const tt_link *l)
{
    const proc_link *p = (const proc_link *)l;
    return p->closing ? 0 : tt_link_pending(p->lower);
}

static const char *proc_peer(tt_link *l, char *buf, size_t len)
{
    snprintf(buf, len, "child %d", ((proc_link *)l)->proc.pid);
    return buf;
}

static const tt_link_ops proc_ops = {
    .write = proc_write,
    .read_start = proc_read_start,
    .read_stop = proc_read_stop,
    .shutdown = proc_shutdown,
    .close = proc_close,
    .pending = proc_pending,
    .abort = proc_abort,
    .peer = proc_peer,
};

int tt_proc_link_pid(const tt_link *l)
{
    return l->ops == &proc_ops ? ((const proc_link *)l)->proc.pid : -1;
}

int tt_proc_link_spawn(uv_loop_t *loop, char **argv, const tt_proc_opts *opts, tt_link **out,
                       const char **why)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        *why = "cannot make a socketpair for the child";
        return -errno;
    }
    proc_link *p = calloc(1, sizeof *p);
    uv_pipe_t *mine = malloc(sizeof *mine);
    if (p == NULL || mine == NULL) {
        free(p);
        free(mine);
        close(sv[0]);
        close(sv[1]);
        *why = "out of memory";
        return UV_ENOMEM;
    }
    if (opts)
        p->opts = *opts;
    uv_pipe_init(loop, &p->err, 0);
    p->err.data = p;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_INHERIT_FD, .data.fd = sv[1]},
        {.flags = UV_INHERIT_FD, .data.fd = sv[1]},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err},
    };
    uv_process_options_t po = {
        .exit_cb = on_exit_cb,
        .file = argv[0],
        .args = argv,
        .stdio_count = 3,
        .stdio = stdio,
    };
    p->proc.data = p;
    int rc = uv_spawn(loop, &p->proc, &po);
    close(sv[1]);
    if (rc < 0) {
        /* uv_spawn leaves a handle to close even when it fails. */
        close(sv[0]);
        free(mine);
        *why = rc == UV_ENOENT ? "program not found" : uv_strerror(rc);
        p->handles = 2;
        uv_close((uv_handle_t *)&p->proc, on_handle_closed);
        uv_close((uv_handle_t *)&p->err, on_handle_closed);
        return rc;
    }
    uv_pipe_init(loop, mine, 0);
    uv_pipe_open(mine, sv[0]);
    p->lower = tt_stream_link_wrap((uv_stream_t *)mine);
    uv_timer_init(loop, &p->kill_timer);
    p->kill_timer.data = p;
    /* The process, the stderr pipe, the timer and the lower link. */
    p->handles = 4;
    if (p->lower == NULL) {
        /* on_exit_cb closes the process and the timer once it is reaped. */
        p->handles--;
        p->closing = true;
        uv_close((uv_handle_t *)&p->err, on_handle_closed);
        uv_process_kill(&p->proc, SIGKILL);
        *why = "out of memory";
        return UV_ENOMEM;
    }
    tt_link_set_handler(p->lower, &low_handler, p);
    uv_read_start((uv_stream_t *)&p->err, err_alloc, err_read);
    p->base.ops = &proc_ops;
    p->base.loop = loop;
    p->base.id = tt_link_next_id();
    *out = &p->base;
    return 0;
}
