/* Zero-copy relaying with splice(2); the contract is in splice.h.
 *
 * Each socket is watched through a duplicate of its descriptor with a
 * uv_poll_t: libuv keeps one watcher per descriptor number, and the
 * socket's own number belongs to its uv_tcp_t, which stays idle but alive
 * (it closes or resets the socket at the end). The duplicate shares the
 * socket, its O_NONBLOCK flag included, so a shutdown through it is the
 * socket's. */
#include "link/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* How many times a direction refills its pipe per wake before it lets the
 * loop serve other connections; the poll is level-triggered, so what is
 * left is taken at the next turn. */
#define PUMP_ROUNDS 16

/* Empty pipes kept for the next spliced stream: making one is two system
 * calls plus the resize. */
#define POOL_MAX 4

typedef struct dir {
    int rd, wr;    /* the pipe, -1 once the direction is over */
    size_t queued; /* bytes in the pipe */
    bool eof;      /* the source reported EOF (or did before the splice) */
} dir;

struct tt_splice {
    int fd[2]; /* duplicates of the sockets */
    uv_poll_t poll[2];
    int events[2]; /* what poll[k] watches; 0 when stopped */
    dir dir[2];    /* dir[d]: from socket d to socket 1 - d */
    const tt_splice_handler *h;
    void *ud;
    bool closing;
    bool failed;
    int open; /* poll handles not yet closed */
    tt_splice_close_cb close_cb;
    void *close_ud;
};

static int g_pool[POOL_MAX][2];
static int g_pool_n;

bool tt_splice_enabled(void)
{
    static int enabled = -1;
    if (enabled < 0) {
        const char *v = getenv("TT_SPLICE");
        enabled = !(v && strcmp(v, "0") == 0);
    }
    return enabled;
}

static int pipe_get(dir *x)
{
    if (g_pool_n > 0) {
        g_pool_n--;
        x->rd = g_pool[g_pool_n][0];
        x->wr = g_pool[g_pool_n][1];
        return 0;
    }
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    /* A bigger pipe means fewer round trips per megabyte; where the
     * user's pipe quota refuses, the default size still works. */
    (void)fcntl(p[1], F_SETPIPE_SZ, TT_SPLICE_PIPE_SIZE);
    x->rd = p[0];
    x->wr = p[1];
    return 0;
}

/* Gives the direction's pipe back: to the pool when it is empty, else
 * closed, which drops its bytes. */
static void pipe_put(dir *x)
{
    if (x->rd < 0)
        return;
    if (x->queued == 0 && g_pool_n < POOL_MAX) {
        g_pool[g_pool_n][0] = x->rd;
        g_pool[g_pool_n][1] = x->wr;
        g_pool_n++;
    } else {
        close(x->rd);
        close(x->wr);
    }
    x->rd = x->wr = -1;
    x->queued = 0;
}

static void fail(tt_splice *s, int side, int err)
{
    if (s->failed || s->closing)
        return;
    s->failed = true;
    s->h->on_error(s->ud, side, err);
}

static void on_poll(uv_poll_t *p, int status, int events);

/* Watches each socket for what its directions wait on: readable while its
 * own direction's pipe is empty, writable while the other direction's pipe
 * holds bytes for it. Returns 0, or a libuv error with *SIDE the socket
 * whose poll failed. */
static int watch(tt_splice *s, int *side)
{
    for (int k = 0; k < 2; k++) {
        const dir *in = &s->dir[k], *out = &s->dir[1 - k];
        int want = 0;
        if (!in->eof && in->rd >= 0 && in->queued == 0)
            want |= UV_READABLE;
        if (out->queued > 0)
            want |= UV_WRITABLE;
        if (want == s->events[k])
            continue;
        int rc = want ? uv_poll_start(&s->poll[k], want, on_poll) : uv_poll_stop(&s->poll[k]);
        if (rc < 0) {
            *side = k;
            return rc;
        }
        s->events[k] = want;
    }
    return 0;
}

static void update_polls(tt_splice *s)
{
    int side = 0;
    int rc = s->closing ? 0 : watch(s, &side);
    if (rc < 0)
        fail(s, side, rc);
}

/* Moves direction D as far as it goes now: empties its pipe into the sink,
 * refills it from the source, up to PUMP_ROUNDS times. */
static void pump(tt_splice *s, int d)
{
    dir *x = &s->dir[d];
    int src = s->fd[d], dst = s->fd[1 - d];
    for (int round = 0; round < PUMP_ROUNDS && !s->closing && x->rd >= 0;) {
        if (x->queued > 0) {
            ssize_t n =
                splice(x->rd, NULL, dst, NULL, x->queued, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                break; /* the sink is full: wait until it is writable */
            if (n <= 0) {
                fail(s, 1 - d, n < 0 ? -errno : UV_EPIPE);
                return;
            }
            x->queued -= (size_t)n;
            continue;
        }
        if (x->eof) {
            /* Everything the source sent is out: pass its EOF on. A
             * failed shutdown means the sink is gone, which its own
             * direction reports. */
            pipe_put(x);
            (void)shutdown(dst, SHUT_WR);
            s->h->on_eof(s->ud, d);
            break;
        }
        ssize_t n =
            splice(src, NULL, x->wr, NULL, TT_SPLICE_PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break; /* the source is empty (the pipe was) */
        if (n < 0) {
            fail(s, d, -errno);
            return;
        }
        if (n == 0) {
            /* Not a round: the EOF must be passed on in this call, since
             * nothing is watched for a direction that saw it. */
            x->eof = true;
            continue;
        }
        round++;
        x->queued += (size_t)n;
        s->h->on_moved(s->ud, d, (size_t)n);
    }
    update_polls(s);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    tt_splice *s = p->data;
    int k = p == &s->poll[0] ? 0 : 1;
    if (status < 0) {
        /* libuv reports a socket error (POLLERR) as a status and stops the
         * handle; the socket says which error. */
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(s->fd[k], SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0)
            err = ECONNRESET;
        s->events[k] = 0;
        fail(s, k, -err);
        return;
    }
    if (events & UV_WRITABLE)
        pump(s, 1 - k);
    if ((events & UV_READABLE) && !s->closing)
        pump(s, k);
}

/* Drops what a failed start made: the pipes and the duplicates. */
static void undo_start(tt_splice *s)
{
    for (int d = 0; d < 2; d++)
        pipe_put(&s->dir[d]);
    for (int k = 0; k < 2; k++)
        if (s->fd[k] >= 0)
            close(s->fd[k]);
}

static void on_poll_closed(uv_handle_t *h);

int tt_splice_start(uv_loop_t *loop, const int fd[2], const bool ended[2],
                    const tt_splice_handler *h, void *ud, tt_splice **out)
{
    tt_splice *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->h = h;
    s->ud = ud;
    s->fd[0] = s->fd[1] = -1;
    int rc = 0;
    for (int d = 0; d < 2; d++) {
        s->dir[d].rd = s->dir[d].wr = -1;
        s->dir[d].eof = ended[d];
    }
    for (int k = 0; k < 2 && rc == 0; k++) {
        s->fd[k] = fcntl(fd[k], F_DUPFD_CLOEXEC, 0);
        if (s->fd[k] < 0)
            rc = -errno;
        else if (!ended[k])
            rc = pipe_get(&s->dir[k]);
    }
    /* A poll that failed to initialise has nothing to close. */
    if (rc == 0)
        rc = uv_poll_init_socket(loop, &s->poll[0], s->fd[0]);
    if (rc != 0) {
        undo_start(s);
        free(s);
        return rc;
    }
    s->poll[0].data = s->poll[1].data = s;
    if ((rc = uv_poll_init_socket(loop, &s->poll[1], s->fd[1])) != 0) {
        /* poll[0] exists now: S goes in its close callback. */
        s->closing = true;
        s->open = 1;
        uv_close((uv_handle_t *)&s->poll[0], on_poll_closed);
        undo_start(s);
        return rc;
    }
    s->open = 2;
    /* A failure to watch is the caller's to hear as a return value, not
     * through the handler from inside this call. */
    int side;
    if ((rc = watch(s, &side)) < 0) {
        s->closing = true;
        for (int k = 0; k < 2; k++)
            uv_close((uv_handle_t *)&s->poll[k], on_poll_closed);
        undo_start(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
    tt_splice *s = h->data;
    if (--s->open > 0)
        return;
    tt_splice_close_cb cb = s->close_cb;
    void *ud = s->close_ud;
    free(s);
    if (cb)
        cb(ud);
}

void tt_splice_close(tt_splice *s, tt_splice_close_cb cb, void *ud)
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_ud = ud;
    for (int d = 0; d < 2; d++)
        pipe_put(&s->dir[d]);
    for (int k = 0; k < 2; k++) {
        /* uv_close stops the watcher at once, so the duplicate can go now:
         * the socket itself ends when its link closes it (or resets it). */
        uv_close((uv_handle_t *)&s->poll[k], on_poll_closed);
        close(s->fd[k]);
    }
}
