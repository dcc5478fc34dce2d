/* The ssh:// carrier: streams leave through one long-lived `ssh -N -D`
 * child, so the far end needs nothing but sshd. Each stream is a SOCKS5
 * CONNECT to the child's dynamic-forwarding port on 127.0.0.1 (the opener of
 * socks5://); the child itself is supervised here:
 *
 * - Readiness. ssh opens its -D port only after it has logged in, and with
 *   ExitOnForwardFailure it exits if it cannot, so a connect to the port
 *   that succeeds means the link is up. The carrier tries one from a timer,
 *   10 ms after the start and then at doubling intervals up to 0.1 s (a
 *   loopback connect is cheap; a stream waits for the next one).
 * - Streams that arrive while the child is starting wait for it, up to the
 *   client's --connect-timeout. Once a start has failed before readiness (a
 *   host key or login refused), new streams fail at once with ssh's own
 *   error instead of waiting for the next attempt, which may never succeed.
 * - A child that exits is started again after a backoff (0.5 s doubling to
 *   30 s; back to 0.5 s after a run that worked for 10 s), on a fresh port.
 *   Its stderr lines are logged once each at warn level (a repeat of a line
 *   already shown is debug), with one summary line per exit.
 * - Closing the carrier ends the child (SIGTERM, SIGKILL 2 s later); the
 *   close finishes once it has been reaped (tt_carrier_closing).
 *
 * BatchMode is on: tt cannot answer a password or host-key prompt. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carrier/ssh.h"
#include "core/childguard.h"
#include "core/lines.h"
#include "core/log.h"
#include "exit/dial.h"

extern const tt_carrier_type tt_carrier_ssh;
static const tt_carrier_optgroup ssh_group;

#define USER_ARGS_MAX 64
#define FIXED_ARGS_MAX 32
#define PROBE_FIRST_MS 10
#define PROBE_MAX_MS 100
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 10000
#define GRACE_MS 300
#define KILL_AFTER_MS 2000
#define SEEN_MAX 16

typedef struct ssh_settings {
    const char *command; /* --ssh-command as typed */
} ssh_settings;

typedef struct ssh_carrier ssh_carrier;

/* One dial: waiting in the carrier's queue, then connecting to the port. */
struct tt_carrier_dial {
    ssh_carrier *c;
    tt_carrier_dial *next, *prev; /* in the queue */
    uint64_t deadline;            /* 0: no limit */
    int status;                   /* set: report this from the queue */
    tt_dial *dial;                /* while connecting to the -D port */
    tt_carrier_dial_cb cb;
    void *ud;
};

/* A readiness probe: one connect to the -D port. */
typedef struct ssh_probe {
    uv_tcp_t tcp;
    uv_connect_t req;
    struct ssh_run *run; /* NULL once the run no longer waits for it */
} ssh_probe;

/* One child process, from its start until it has been reaped and its
 * stderr read to the end. */
typedef struct ssh_run {
    ssh_carrier *c; /* NULL once finished */
    uv_process_t proc;
    uv_pipe_t err;
    uv_timer_t timer; /* the next probe; the grace after exit; SIGKILL */
    ssh_probe *probe;
    int handles; /* open handles: freed at 0 */
    uint16_t port;
    bool exited, err_eof, ready, killing, finished;
    int64_t status;
    int sig;
    unsigned probe_ms;
    uint64_t ready_at;
    tt_lines lines;
} ssh_run;

struct ssh_carrier {
    tt_carrier base;
    tt_carrier_cfg cfg;
    char *args;                     /* --ssh-command, split in place */
    char *user_argv[USER_ARGS_MAX]; /* its words */
    size_t n_user;
    ssh_run *run;                 /* the current child; NULL between runs */
    uv_timer_t restart;           /* the backoff between runs */
    uv_timer_t kick;              /* the queue's reports and deadlines */
    tt_carrier_dial *head, *tail; /* dials waiting for the child */
    unsigned backoff_ms;
    uint64_t retry_at; /* when the next run starts (no run) */
    bool last_ready;   /* the last run reached readiness */
    bool closing;
    int handles; /* the two timers and the current run: freed at 0 */
    char last_error[256];
    uint32_t seen[SEEN_MAX]; /* hashes of the stderr lines already logged */
    unsigned n_seen, seen_next;
    char text[TT_USER_MAX + TT_HOST_MAX + 20]; /* "ssh://USER@HOST:PORT" */
};

static void start_run(ssh_carrier *c);
static void kick(ssh_carrier *c, uint64_t delay_ms);

static void carrier_release(ssh_carrier *c)
{
    if (--c->handles > 0)
        return;
    free(c->args);
    free(c);
    tt_carrier_closing_add(-1);
}

static void on_carrier_handle_closed(uv_handle_t *h)
{
    carrier_release(h->data);
}

/* ---- stderr ---------------------------------------------------------------- */

static uint32_t hash_line(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Debug output stays debug; anything else is shown once per distinct line,
 * so a login refused at every restart is said once, not every 30 s. */
static void on_line(void *ud, const char *text)
{
    ssh_run *r = ud;
    ssh_carrier *c = r->c;
    /* What ssh prints may quote the server (a banner): no control bytes
     * reach the log. */
    char line[TT_LINES_MAX];
    size_t n = 0;
    for (; text[n] && n < sizeof line - 1; n++)
        line[n] = (unsigned char)text[n] < 0x20 || text[n] == 0x7f ? '?' : text[n];
    line[n] = '\0';
    if (n == 0)
        return;
    if (strncmp(line, "debug", 5) == 0) {
        tt_debug("ssh %d: %s", r->proc.pid, line);
        return;
    }
    const char *msg = strncmp(line, "ssh: ", 5) == 0 ? line + 5 : line;
    if (c == NULL) {
        tt_debug("ssh %d: %s", r->proc.pid, msg);
        return;
    }
    /* A stream's failure at the far end ("channel 3: open failed: connect
     * failed: Connection refused") and the note on a host key learned are
     * news about one stream or nothing at all, not about the link. */
    if (strncmp(msg, "channel ", 8) == 0 || strncmp(msg, "Warning: Permanently added", 26) == 0) {
        tt_info("ssh: %s", msg);
        return;
    }
    snprintf(c->last_error, sizeof c->last_error, "%.*s", (int)sizeof c->last_error - 1, msg);
    uint32_t h = hash_line(msg);
    for (unsigned i = 0; i < c->n_seen; i++) {
        if (c->seen[i] == h) {
            tt_debug("ssh: %s", msg);
            return;
        }
    }
    c->seen[c->seen_next] = h;
    c->seen_next = (c->seen_next + 1) % SEEN_MAX;
    if (c->n_seen < SEEN_MAX)
        c->n_seen++;
    tt_warn("ssh: %s", msg);
}

static void err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ssh_run *r = h->data;
    size_t n;
    (void)suggested;
    char *space = tt_lines_space(&r->lines, &n);
    *buf = uv_buf_init(space, (unsigned)n);
}

static void finish_run(ssh_run *r);
static void on_run_timer(uv_timer_t *t);

static void err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ssh_run *r = s->data;
    (void)buf;
    if (n >= 0) {
        tt_lines_commit(&r->lines, (size_t)n, on_line, r);
        return;
    }
    tt_lines_flush(&r->lines, on_line, r);
    uv_read_stop(s);
    r->err_eof = true;
    if (r->exited)
        finish_run(r);
}

/* ---- the child ------------------------------------------------------------- */

static void on_run_handle_closed(uv_handle_t *h)
{
    ssh_run *r = h->data;
    if (--r->handles == 0)
        free(r);
}

static void probe_closed(uv_handle_t *h)
{
    free(h->data);
}

static void probe_drop(ssh_run *r)
{
    if (r->probe == NULL)
        return;
    r->probe->run = NULL;
    if (!uv_is_closing((uv_handle_t *)&r->probe->tcp))
        uv_close((uv_handle_t *)&r->probe->tcp, probe_closed);
    r->probe = NULL;
}

static void on_ready(ssh_run *r)
{
    ssh_carrier *c = r->c;
    r->ready = true;
    r->ready_at = uv_now(c->base.loop);
    c->last_ready = true;
    c->last_error[0] = '\0';
    c->n_seen = c->seen_next = 0;
    tt_info("%s is up (ssh pid %d, SOCKS5 on 127.0.0.1:%u)", c->text, r->proc.pid, r->port);
    kick(c, 0);
}

static void on_probe(uv_connect_t *req, int status)
{
    ssh_probe *p = req->data;
    ssh_run *r = p->run;
    if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, probe_closed);
    if (r == NULL)
        return;
    r->probe = NULL;
    if (status == 0) {
        on_ready(r);
        return;
    }
    r->probe_ms = r->probe_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : r->probe_ms * 2;
    uv_timer_start(&r->timer, on_run_timer, r->probe_ms, 0);
}

static void probe_start(ssh_run *r)
{
    struct sockaddr_in sa;
    ssh_probe *p = calloc(1, sizeof *p);
    if (p != NULL) {
        uv_ip4_addr("127.0.0.1", r->port, &sa);
        uv_tcp_init(r->c->base.loop, &p->tcp);
        p->tcp.data = p;
        p->req.data = p;
        p->run = r;
        r->probe = p;
        if (uv_tcp_connect(&p->req, &p->tcp, (struct sockaddr *)&sa, on_probe) == 0)
            return;
        probe_drop(r);
    }
    /* No probe this time (no memory, no socket): the next one later. */
    uv_timer_start(&r->timer, on_run_timer, PROBE_MAX_MS, 0);
}

static void on_run_timer(uv_timer_t *t)
{
    ssh_run *r = t->data;
    if (r->exited) {
        finish_run(r); /* stderr did not end after the exit: stop waiting */
    } else if (r->killing) {
        tt_warn("ssh %d did not end on SIGTERM; killing it", r->proc.pid);
        uv_process_kill(&r->proc, SIGKILL);
    } else if (!r->ready && r->probe == NULL) {
        probe_start(r);
    }
}

static void on_exit_cb(uv_process_t *h, int64_t status, int sig)
{
    ssh_run *r = h->data;
    r->exited = true;
    r->status = status;
    r->sig = sig;
    probe_drop(r);
    uv_timer_stop(&r->timer);
    if (r->err_eof)
        finish_run(r);
    else
        uv_timer_start(&r->timer, on_run_timer, GRACE_MS, 0);
}

static void run_close_handles(ssh_run *r)
{
    r->handles = 3;
    uv_close((uv_handle_t *)&r->proc, on_run_handle_closed);
    uv_close((uv_handle_t *)&r->err, on_run_handle_closed);
    uv_close((uv_handle_t *)&r->timer, on_run_handle_closed);
}

static void on_restart(uv_timer_t *t)
{
    start_run(t->data);
}

/* The backoff before the next run, after one that reached readiness or
 * not; schedules it and returns the delay. */
static unsigned schedule_restart(ssh_carrier *c, const ssh_run *r)
{
    uint64_t now = uv_now(c->base.loop);
    c->last_ready = r->ready;
    if (r->ready && now - r->ready_at >= STABLE_MS)
        c->backoff_ms = BACKOFF_FIRST_MS;
    unsigned delay = c->backoff_ms;
    c->backoff_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    c->retry_at = now + delay;
    uv_timer_start(&c->restart, on_restart, delay, 0);
    kick(c, 0);
    return delay;
}

/* The child has exited and its stderr has been read: say so once, and
 * schedule the next run. */
static void run_ended(ssh_carrier *c, ssh_run *r)
{
    c->run = NULL;
    if (c->closing) {
        tt_debug("ssh %d ended", r->proc.pid);
        carrier_release(c);
        return;
    }
    c->handles--; /* the run's; the timers still hold the carrier */
    unsigned delay = schedule_restart(c, r);
    char how[64];
    if (r->sig)
        snprintf(how, sizeof how, "was killed by signal %d", r->sig);
    else
        snprintf(how, sizeof how, "exited with status %lld", (long long)r->status);
    tt_warn("ssh %d to %s %s; restarting in %u.%us", r->proc.pid, c->text, how, delay / 1000,
            delay % 1000 / 100);
}

static void finish_run(ssh_run *r)
{
    if (r->finished)
        return;
    r->finished = true;
    tt_lines_flush(&r->lines, on_line, r);
    ssh_carrier *c = r->c;
    r->c = NULL;
    run_close_handles(r);
    if (c)
        run_ended(c, r);
}

/* A loopback port that is free now, for the child's -D. Another program
 * may take it before ssh binds it; ssh then exits (ExitOnForwardFailure)
 * and the next run picks another. */
static int free_port(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        rc = -errno;
    close(fd);
    *port = ntohs(sa.sin_port);
    return rc;
}

/* The -o options tt adds. The child is a connection of its own, neither a
 * connection-sharing master nor a client of one: a forward held by a master
 * that outlives the child would escape the supervision here. */
static char *ssh_options[] = {
    "ExitOnForwardFailure=yes", "BatchMode=yes",    "ServerAliveInterval=15",
    "ServerAliveCountMax=3",    "ControlMaster=no", "ControlPath=none",
};

/* Appends to ARGV (N words so far, the user's first: for -o options ssh
 * keeps the first value it reads, so --ssh-command can override these)
 * the options every ssh of CFG's takes, then the host; PORT (8 bytes) and
 * TIMEOUT (40) hold words it formats. Returns the new count. */
static size_t put_options(char **argv, size_t n, const tt_carrier_cfg *cfg, char *port,
                          char *timeout)
{
    snprintf(port, 8, "%u", cfg->url.hp.port);
    snprintf(timeout, 40, "ConnectTimeout=%u",
             cfg->connect_timeout_ms ? (cfg->connect_timeout_ms + 999) / 1000 : 0);
    for (size_t i = 0; i < sizeof ssh_options / sizeof ssh_options[0]; i++) {
        argv[n++] = "-o";
        argv[n++] = ssh_options[i];
    }
    if (cfg->connect_timeout_ms) {
        argv[n++] = "-o";
        argv[n++] = timeout;
    }
    if (cfg->url.hp.port) {
        argv[n++] = "-p";
        argv[n++] = port;
    }
    if (cfg->url.user[0]) {
        argv[n++] = "-l";
        argv[n++] = (char *)(uintptr_t)cfg->url.user;
    }
    /* The host as typed, so that an ssh_config alias works; after "--" it
     * can never be read as an option. */
    argv[n++] = "--";
    argv[n++] = (char *)(uintptr_t)cfg->url.hp.host;
    return n;
}

char **tt_ssh_exec_argv(const tt_carrier_cfg *cfg, const char *remote)
{
    const ssh_settings *o = tt_carrier_settings(cfg, &ssh_group);
    const char *command = o && o->command ? o->command : "ssh";
    size_t clen = strlen(command) + 1;
    size_t cap = USER_ARGS_MAX + FIXED_ARGS_MAX;
    /* One block: the pointers, then the words they point into. */
    char **argv = malloc(cap * sizeof *argv + clen + 8 + 40);
    if (argv == NULL)
        return NULL;
    char *words = (char *)(argv + cap);
    memcpy(words, command, clen);
    char *port = words + clen, *timeout = port + 8;
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(words, " \t", &save); w && n < USER_ARGS_MAX;
         w = strtok_r(NULL, " \t", &save))
        argv[n++] = w;
    if (n == 0) {
        free(argv);
        return NULL;
    }
    argv[n++] = "-n"; /* stdin from /dev/null */
    n = put_options(argv, n, cfg, port, timeout);
    argv[n++] = (char *)(uintptr_t)remote;
    argv[n] = NULL;
    return argv;
}

static void start_run(ssh_carrier *c)
{
    ssh_run *r = calloc(1, sizeof *r);
    if (r == NULL) {
        tt_error("%s: out of memory starting ssh", c->text);
        return;
    }
    r->c = c;
    r->probe_ms = PROBE_FIRST_MS;
    uv_pipe_init(c->base.loop, &r->err, 0);
    uv_timer_init(c->base.loop, &r->timer);
    r->proc.data = r->err.data = r->timer.data = r;

    char dyn[32], port[8], timeout[40];
    int rc = free_port(&r->port);
    snprintf(dyn, sizeof dyn, "127.0.0.1:%u", r->port);
    char *argv[USER_ARGS_MAX + FIXED_ARGS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < c->n_user; i++)
        argv[n++] = c->user_argv[i];
    argv[n++] = "-N";
    argv[n++] = "-D";
    argv[n++] = dyn;
    n = put_options(argv, n, &c->cfg, port, timeout);
    argv[n] = NULL;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->err},
    };
    /* Behind the guard, so that it ends with tt even when tt is killed
     * (core/childguard.h): the guard executes ssh in the same process, so
     * the pid is ssh's. */
    char *guarded[TT_CHILD_GUARD_ARGS + USER_ARGS_MAX + FIXED_ARGS_MAX], ppid[16];
    const char *file = tt_child_guard_wrap(argv, guarded, ppid);
    /* Detached (its own session): a Ctrl-C at the terminal reaches tt, which
     * then ends the child, instead of both at once. */
    uv_process_options_t po = {
        .exit_cb = on_exit_cb,
        .file = file,
        .args = guarded,
        .stdio_count = 3,
        .stdio = stdio,
        .flags = UV_PROCESS_DETACHED,
    };
    if (rc < 0) {
        r->handles = 2;
        uv_close((uv_handle_t *)&r->err, on_run_handle_closed);
        uv_close((uv_handle_t *)&r->timer, on_run_handle_closed);
    } else if ((rc = uv_spawn(c->base.loop, &r->proc, &po)) < 0) {
        /* uv_spawn leaves its handle to close even when it fails. */
        run_close_handles(r);
    }
    if (rc < 0) {
        snprintf(c->last_error, sizeof c->last_error, "cannot start %s: %s", argv[0],
                 uv_strerror(rc));
        unsigned delay = schedule_restart(c, r);
        tt_warn("%s: %s; retrying in %u.%us", c->text, c->last_error, delay / 1000,
                delay % 1000 / 100);
        return;
    }
    c->handles++;
    c->run = r;
    r->handles = 3;
    if (tt_log_enabled(TT_LOG_DEBUG)) {
        char line[1024];
        size_t k = 0;
        for (size_t i = 0; argv[i] && k < sizeof line; i++)
            k += (size_t)snprintf(line + k, sizeof line - k, "%s%s", i ? " " : "", argv[i]);
        tt_debug("started ssh %d: %s", r->proc.pid, line);
    }
    uv_read_start((uv_stream_t *)&r->err, err_alloc, err_read);
    uv_timer_start(&r->timer, on_run_timer, r->probe_ms, 0);
}

/* ---- the queue of dials ---------------------------------------------------- */

static void queue_unlink(ssh_carrier *c, tt_carrier_dial *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        c->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        c->tail = d->prev;
    d->next = d->prev = NULL;
}

static void report(tt_carrier_dial *d, int status, tt_link *link)
{
    tt_carrier_dial_cb cb = d->cb;
    void *ud = d->ud;
    free(d);
    cb(ud, status, link);
}

static void on_connected(void *ud, uint8_t rep, int err, tt_link *link)
{
    (void)rep;
    report(ud, link ? 0 : err ? err : UV_ECONNREFUSED, link);
}

/* A dial whose child is ready connects to its port; the SOCKS5 exchange
 * that follows is the stream layer's, with the socks5:// opener. */
static void connect_port(ssh_carrier *c, tt_carrier_dial *d)
{
    tt_target t;
    tt_target_set(&t, "127.0.0.1", c->run->port);
    tt_dial_opts opts = {.timeout_ms = c->cfg.connect_timeout_ms};
    int rc = tt_dial_start(c->base.loop, &t, &opts, on_connected, d, &d->dial);
    if (rc != 0)
        report(d, rc, NULL);
}

/* Settles what can be settled: cancelled dials, all dials once the child is
 * ready, all of them at once while the last start failed before readiness,
 * and those past their deadline; the rest wait. Reports run from here, never
 * from inside dial. */
static void on_kick(uv_timer_t *t)
{
    ssh_carrier *c = t->data;
    uint64_t now = uv_now(c->base.loop);
    bool ready = c->run && c->run->ready;
    bool hopeless = c->run == NULL && !c->last_ready;
    tt_carrier_dial *next;
    for (tt_carrier_dial *d = c->head; d; d = next) {
        next = d->next;
        int status = c->closing ? UV_ECANCELED : d->status;
        if (status == 0 && !ready && hopeless)
            status = UV_ENOTCONN;
        if (status == 0 && !ready && d->deadline && now >= d->deadline)
            status = UV_ETIMEDOUT;
        if (status == 0 && !ready)
            continue;
        queue_unlink(c, d);
        if (status != 0)
            report(d, status, NULL);
        else
            connect_port(c, d);
    }
    if (c->closing) {
        uv_close((uv_handle_t *)&c->kick, on_carrier_handle_closed);
        uv_close((uv_handle_t *)&c->restart, on_carrier_handle_closed);
        return;
    }
    /* The queue is in arrival order and every dial waits as long, so the
     * first one has the nearest deadline. */
    if (c->head && c->head->deadline)
        kick(c, c->head->deadline > now ? c->head->deadline - now : 0);
}

static void kick(ssh_carrier *c, uint64_t delay_ms)
{
    if (!uv_is_closing((uv_handle_t *)&c->kick))
        uv_timer_start(&c->kick, on_kick, delay_ms, 0);
}

static int ssh_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                    tt_carrier_dial **out)
{
    (void)t; /* the destination goes in the SOCKS5 request */
    ssh_carrier *c = (ssh_carrier *)base;
    if (c->closing)
        return UV_ECANCELED;
    tt_carrier_dial *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->c = c;
    d->cb = cb;
    d->ud = ud;
    if (c->cfg.connect_timeout_ms)
        d->deadline = uv_now(base->loop) + c->cfg.connect_timeout_ms;
    d->prev = c->tail;
    if (c->tail)
        c->tail->next = d;
    else
        c->head = d;
    c->tail = d;
    if (c->run == NULL || !c->run->ready)
        tt_debug("%s: a stream waits for ssh to be ready", c->text);
    kick(c, 0);
    if (out)
        *out = d;
    return 0;
}

/* A dial waiting in the queue is reported cancelled from the queue; one
 * connecting is cancelled by its dialer, which reports. */
static void ssh_dial_cancel(tt_carrier_dial *d)
{
    if (d->dial) {
        tt_dial_cancel(d->dial);
        return;
    }
    d->status = UV_ECANCELED;
    kick(d->c, 0);
}

static const char *ssh_dial_error(tt_carrier *base, int status, char *buf, size_t len)
{
    ssh_carrier *c = (ssh_carrier *)base;
    if (status != UV_ENOTCONN && status != UV_ETIMEDOUT)
        return uv_strerror(status);
    const char *said = c->last_error[0] ? c->last_error : "no error from ssh yet";
    if (status == UV_ETIMEDOUT)
        snprintf(buf, len, "ssh was not ready in time (%s)", said);
    else if (c->run == NULL && !c->closing && c->retry_at > uv_now(base->loop)) {
        uint64_t ms = c->retry_at - uv_now(base->loop);
        snprintf(buf, len, "ssh is not connected (%s); next attempt in %llu.%llus", said,
                 (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000 / 100));
    } else
        snprintf(buf, len, "ssh is not connected (%s)", said);
    return buf;
}

/* ---- the carrier ------------------------------------------------------------ */

/* True when PROG (a path, or a name looked up in PATH) can be run: checked
 * before anything starts, so that a typo is one line at start-up rather
 * than a restart loop. */
static bool runnable(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    char buf[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 &&
            (size_t)snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog) < sizeof buf) {
            struct stat st;
            if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
                return true;
        }
        path += n + (path[n] == ':');
    }
    return false;
}

static int ssh_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                          const char **why)
{
    const ssh_settings *o = tt_carrier_settings(cfg, &ssh_group);
    const char *command = o && o->command ? o->command : "ssh";
    ssh_carrier *c = calloc(1, sizeof *c);
    if (c == NULL || (c->args = strdup(command)) == NULL) {
        free(c);
        *why = "out of memory";
        return -ENOMEM;
    }
    for (char *save = NULL, *w = strtok_r(c->args, " \t", &save); w && c->n_user < USER_ARGS_MAX;
         w = strtok_r(NULL, " \t", &save))
        c->user_argv[c->n_user++] = w;
    if (c->n_user == 0 || !runnable(c->user_argv[0])) {
        static char msg[300];
        snprintf(msg, sizeof msg, "cannot run '%s' (--ssh-command): not found or not executable",
                 c->n_user ? c->user_argv[0] : "");
        *why = msg;
        free(c->args);
        free(c);
        return -ENOENT;
    }
    c->cfg = *cfg;
    c->base.type = &tt_carrier_ssh;
    c->base.loop = loop;
    c->backoff_ms = BACKOFF_FIRST_MS;
    const tt_url *u = &cfg->url;
    tt_url_format("ssh", u->user, u->hp.host, u->hp.port, NULL, c->text, sizeof c->text);
    uv_timer_init(loop, &c->restart);
    uv_timer_init(loop, &c->kick);
    c->restart.data = c->kick.data = c;
    c->handles = 2;
    /* Started at once, so that it is ready by the first stream. */
    start_run(c);
    *out = &c->base;
    return 0;
}

static const char *ssh_describe(tt_carrier *base, char *buf, size_t len)
{
    snprintf(buf, len, "%s", ((ssh_carrier *)base)->text);
    return buf;
}

/* Ends the child and cancels waiting dials; the memory goes once the child
 * is reaped and the timers are closed. */
static void ssh_close(tt_carrier *base)
{
    ssh_carrier *c = (ssh_carrier *)base;
    c->closing = true;
    tt_carrier_closing_add(1);
    uv_timer_stop(&c->restart);
    ssh_run *r = c->run;
    if (r && !r->exited) {
        probe_drop(r);
        r->killing = true;
        if (uv_process_kill(&r->proc, SIGTERM) != 0)
            uv_process_kill(&r->proc, SIGKILL);
        uv_timer_start(&r->timer, on_run_timer, KILL_AFTER_MS, 0);
    }
    kick(c, 0);
}

/* ---- its options ------------------------------------------------------------ */

#define O(field) offsetof(ssh_settings, field)
static const tt_opt ssh_rows[] = {
    {0, "ssh-command", "CMD", TT_OPT_STRING, O(command),
     "the ssh program and its options, split at spaces without shell quoting (default 'ssh'); "
     "tt adds -N -D and -o options",
     0, 0},
};
#undef O

static int ssh_check(void *p, const tt_opt_set *set, bool server, char *why, size_t len)
{
    ssh_settings *o = p;
    (void)set, (void)server;
    if (o->command == NULL)
        return 0;
    size_t words = 0;
    for (const char *s = o->command; *s;) {
        s += strspn(s, " \t");
        if (*s) {
            words++;
            s += strcspn(s, " \t");
        }
    }
    if (words == 0 || words > USER_ARGS_MAX) {
        snprintf(why, len, "--ssh-command takes a program and its options, %d words at most",
                 USER_ARGS_MAX);
        return -EINVAL;
    }
    return 0;
}

static const tt_carrier_optgroup ssh_group = {
    .sides = TT_SIDE_CLIENT,
    .opts = ssh_rows,
    .n_opts = sizeof ssh_rows / sizeof ssh_rows[0],
    .size = sizeof(ssh_settings),
    .check = ssh_check,
};

static const tt_carrier_optgroup *const ssh_groups[] = {&ssh_group, NULL};

const tt_carrier_type tt_carrier_ssh = {
    .scheme = "ssh",
    .url_form = "ssh://[USER@]HOST[:PORT]",
    .summary = "through an `ssh -N -D` child: the far end needs only sshd; client only",
    .default_port = 0,
    .flags = TT_CARRIER_PORT_OPTIONAL | TT_CARRIER_USER,
    .groups = ssh_groups,
    .opener = &tt_carrier_socks5_opener,
    .client_new = ssh_client_new,
    .server_new = NULL,
    .dial = ssh_dial,
    .dial_cancel = ssh_dial_cancel,
    .dial_error = ssh_dial_error,
    .describe = ssh_describe,
    .close = ssh_close,
};
