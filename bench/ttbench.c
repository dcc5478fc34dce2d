/* ttbench: the load generator of tt's benchmarks (bench/run.py drives it).
 *
 *   ttbench serve --port P [--banner-port B] [--host H] [--copy]
 *   ttbench throughput (--socks H:P | --direct) --target H:P --bytes N --dir up|down
 *   ttbench latency    (--socks H:P | --direct) --target H:P [--count N] [--warmup W]
 *   ttbench firstbyte  (--socks H:P | --direct) --banner H:P [--count N] [--warmup W]
 *   ttbench rtt        (--socks H:P | --direct) --target H:P [--count N] [--warmup W]
 *   ttbench idle       (--socks H:P | --direct) --target H:P
 *
 * The destination server ("serve") gives each connection a role chosen by the
 * first byte the client sends:
 *   'S' sink: reads an 8-byte big-endian length N, then N bytes, then answers
 *       the 8-byte big-endian count it received. The length is announced
 *       rather than ended by EOF because some proxies (microsocks) do not
 *       relay a half-close: they close both ways on the first EOF;
 *   'G' generator: reads an 8-byte big-endian length N, sends N bytes, then
 *       half-closes;
 *   'E' echo: echoes every byte it receives, the 'E' included, so one byte out
 *       and one byte back is a full round trip.
 * On --banner-port the server speaks first: one byte 'B' on accept.
 *
 * latency and firstbyte time, per new connection, connect() + SOCKS5 CONNECT
 * + the first byte back (the echo of our byte, or the banner); rtt times 1-byte
 * echoes on one open connection, which separates the relay's own delay from
 * the cost of setting a stream up.
 *
 * idle holds connections open for a memory measurement: for each line N read
 * from stdin it opens N more (each: connect, SOCKS5 CONNECT to the echo role,
 * one byte each way) and answers one JSON line with the number now open; at
 * EOF on stdin it closes them all and exits. The caller reads the proxy's
 * memory between lines.
 *
 * Everything measured must be the proxy, never this program. On a 2-core
 * machine the load generator's sender and receiver share the CPUs with the
 * proxy's processes, so every cycle spent here is taken from the proxy. Hence:
 * - no copies: bulk data is sent with sendfile(2) from a 1 MiB memfd and
 *   received with splice(2) into a pipe that is spliced on to /dev/null, so
 *   the kernel moves page references instead of copying bytes (--copy uses
 *   send/recv through a 1 MiB buffer instead, to show the difference);
 * - 1 MiB per syscall;
 * - blocking sockets on the client side (one stream needs no event loop, and
 *   a poll per chunk would be one more syscall) and one epoll loop in the
 *   server.
 * Results are printed as one JSON object on stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BIG_BUF (1024 * 1024)
/* An echo connection reads at most this much before its output drains, which
 * bounds the memory one slow echo client can pin. */
#define ECHO_CHUNK (64 * 1024)

static uint8_t g_buf[BIG_BUF];

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ttbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- Bulk data ---------------------------------------------------------- */

static bool g_copy;      /* --copy: send/recv through g_buf */
static int g_memfd = -1; /* g_buf's contents, the source of sendfile */
static int g_pipe[2];    /* splice: socket -> pipe -> /dev/null */
static int g_null = -1;

static void data_init(void)
{
    /* A pattern rather than zeros, in case anything on the path special-cases
     * zero pages or compresses. */
    for (size_t i = 0; i < sizeof g_buf; i++)
        g_buf[i] = (uint8_t)(i * 2654435761u >> 13);
    if (g_copy)
        return;
    g_memfd = memfd_create("ttbench", MFD_CLOEXEC);
    if (g_memfd < 0)
        die("memfd_create: %s (try --copy)", strerror(errno));
    for (size_t off = 0; off < sizeof g_buf;) {
        ssize_t n = write(g_memfd, g_buf + off, sizeof g_buf - off);
        if (n <= 0)
            die("memfd write: %s", strerror(errno));
        off += (size_t)n;
    }
    if (pipe2(g_pipe, O_CLOEXEC) != 0)
        die("pipe2: %s", strerror(errno));
    /* One splice can move at most a pipe's capacity; the default 64 KiB would
     * mean 16 times the syscalls. Failing to grow it is only slower. */
    (void)fcntl(g_pipe[1], F_SETPIPE_SZ, BIG_BUF);
    g_null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (g_null < 0)
        die("/dev/null: %s", strerror(errno));
}

/* Sends up to LEN (<= BIG_BUF) bytes of the pattern; returns as send(2). */
static ssize_t data_send(int fd, size_t len)
{
    if (g_copy)
        return send(fd, g_buf, len, MSG_NOSIGNAL);
    off_t off = 0;
    return sendfile(fd, g_memfd, &off, len);
}

/* Receives up to BIG_BUF bytes and discards them; returns as recv(2). */
static ssize_t data_discard(int fd)
{
    if (g_copy)
        return recv(fd, g_buf, BIG_BUF, 0);
    /* The pipe is empty on entry and on return, so it is never what blocks. */
    ssize_t n = splice(fd, NULL, g_pipe[1], NULL, BIG_BUF, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    for (ssize_t left = n; left > 0;) {
        ssize_t m = splice(g_pipe[0], NULL, g_null, NULL, (size_t)left, SPLICE_F_MOVE);
        if (m <= 0)
            die("splice to /dev/null: %s", m < 0 ? strerror(errno) : "no progress");
        left -= m;
    }
    return n;
}

/* ---- Options ---------------------------------------------------------- */

typedef struct endpoint {
    char host[256];
    uint16_t port;
    bool is_v4; /* host is a dotted IPv4 address, in v4 */
    struct in_addr v4;
} endpoint;

static void parse_endpoint(const char *s, endpoint *ep)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof ep->host)
        die("'%s' is not HOST:PORT", s);
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
        die("bad port in '%s'", s);
    memcpy(ep->host, s, (size_t)(colon - s));
    ep->host[colon - s] = '\0';
    ep->port = (uint16_t)port;
    ep->is_v4 = inet_pton(AF_INET, ep->host, &ep->v4) == 1;
}

/* "1073741824", "1G", "256M", "64K" (binary units). */
static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        die("bad size '%s'", s);
    uint64_t mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1ull << 10;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1ull << 20;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1ull << 30;
        end++;
        break;
    default:
        break;
    }
    if (*end != '\0' || v > UINT64_MAX / mul)
        die("bad size '%s'", s);
    return (uint64_t)v * mul;
}

static long parse_long(const char *s, long min, long max, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        die("bad %s '%s' (%ld..%ld)", what, s, min, max);
    return v;
}

typedef struct client_opts {
    bool direct;
    bool have_socks;
    endpoint socks;
    endpoint target;
    bool have_target;
    uint64_t bytes;
    int dir_up; /* -1: not given */
    long count;
    long warmup; /* -1: default */
    long timeout_s;
} client_opts;

/* ---- Client side: blocking sockets with timeouts ------------------------ */

/* A connection with a small read-ahead buffer. The SOCKS5 reply has a
 * variable length and may arrive in pieces, or together with the first payload
 * bytes (the banner, an echoed byte), so replies are parsed from here and what
 * follows them stays here as payload. */
typedef struct bconn {
    int fd;
    size_t off, have;
    uint8_t buf[512];
} bconn;

static void write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("send: %s", errno == EAGAIN ? "timed out" : strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Makes at least N unread bytes available at c->buf + c->off. */
static void need(bconn *c, size_t n, const char *what)
{
    if (c->have - c->off >= n)
        return;
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->have - c->off);
        c->have -= c->off;
        c->off = 0;
    }
    if (n > sizeof c->buf)
        die("internal: need %zu", n);
    while (c->have < n) {
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r == 0)
            die("%s: connection closed early (%zu of %zu bytes)", what, c->have, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("%s: %s", what, errno == EAGAIN ? "timed out" : strerror(errno));
        }
        c->have += (size_t)r;
    }
}

static const char *socks_rep_name(unsigned rep)
{
    static const char *const names[] = {
        "succeeded",           "general failure",       "not allowed by ruleset",
        "network unreachable", "host unreachable",      "connection refused",
        "TTL expired",         "command not supported", "address type not supported",
    };
    return rep < sizeof names / sizeof names[0] ? names[rep] : "unknown reply";
}

/* SOCKS5, no authentication, CONNECT to T. Each step waits for its answer as
 * common clients (curl, browsers) do, so the latency measured is theirs. */
static void socks5_connect(bconn *c, const endpoint *t)
{
    static const uint8_t hello[3] = {5, 1, 0};
    write_all(c->fd, hello, sizeof hello);
    need(c, 2, "SOCKS5 method reply");
    if (c->buf[c->off] != 5 || c->buf[c->off + 1] != 0)
        die("SOCKS5: server refused no-auth (%02x %02x)", c->buf[c->off], c->buf[c->off + 1]);
    c->off += 2;

    uint8_t req[4 + 1 + 255 + 2];
    size_t n = 0;
    req[n++] = 5;
    req[n++] = 1;
    req[n++] = 0;
    if (t->is_v4) {
        req[n++] = 1;
        memcpy(req + n, &t->v4, 4);
        n += 4;
    } else {
        size_t hl = strlen(t->host);
        if (hl == 0 || hl > 255)
            die("SOCKS5: bad host '%s'", t->host);
        req[n++] = 3;
        req[n++] = (uint8_t)hl;
        memcpy(req + n, t->host, hl);
        n += hl;
    }
    req[n++] = (uint8_t)(t->port >> 8);
    req[n++] = (uint8_t)t->port;
    write_all(c->fd, req, n);

    need(c, 4, "SOCKS5 reply");
    const uint8_t *r = c->buf + c->off;
    if (r[0] != 5)
        die("SOCKS5: bad reply version %u", r[0]);
    if (r[1] != 0)
        die("SOCKS5: CONNECT %s:%u failed: %s (%u)", t->host, t->port, socks_rep_name(r[1]), r[1]);
    size_t alen;
    switch (r[3]) {
    case 1:
        alen = 4;
        break;
    case 4:
        alen = 16;
        break;
    case 3:
        need(c, 5, "SOCKS5 reply");
        alen = 1 + (size_t)c->buf[c->off + 4];
        break;
    default:
        die("SOCKS5: bad address type %u in reply", r[3]);
    }
    need(c, 4 + alen + 2, "SOCKS5 reply");
    c->off += 4 + alen + 2;
}

/* Connects to the target, directly or through the SOCKS5 proxy. */
static void open_conn(const client_opts *o, const endpoint *target, bconn *c)
{
    const endpoint *first = o->direct ? target : &o->socks;
    if (!first->is_v4)
        die("%s: only numeric IPv4 addresses can be dialled", first->host);
    c->off = c->have = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    /* Latency runs send single bytes; they must not wait for Nagle. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Timeouts instead of an event loop: a stuck proxy fails the run instead
     * of hanging it (SO_SNDTIMEO also bounds connect). */
    struct timeval tv = {.tv_sec = o->timeout_s, .tv_usec = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(first->port)};
    sa.sin_addr = first->v4;
    while (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno != EINTR)
            die("connect %s:%u: %s", first->host, first->port, strerror(errno));
    }
    if (!o->direct)
        socks5_connect(c, target);
}

static void cmd_throughput(const client_opts *o)
{
    if (!o->have_target || o->bytes == 0 || o->dir_up < 0)
        die("throughput needs --target, --bytes and --dir");
    bconn c;
    open_conn(o, &o->target, &c);
    uint64_t t0, t1, moved;
    if (o->dir_up) {
        uint8_t req[9];
        req[0] = 'S';
        put_be64(req + 1, o->bytes);
        write_all(c.fd, req, sizeof req);
        t0 = now_ns();
        uint64_t left = o->bytes;
        while (left > 0) {
            size_t chunk = left < BIG_BUF ? (size_t)left : BIG_BUF;
            ssize_t n = data_send(c.fd, chunk);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                die("send: %s", errno == EAGAIN ? "timed out" : strerror(errno));
            }
            left -= (uint64_t)n;
        }
        /* The sink answers once it has every byte, so the time includes
         * their way to the destination, not just into our send buffer. */
        need(&c, 8, "sink count");
        t1 = now_ns();
        moved = get_be64(c.buf + c.off);
        if (moved != o->bytes)
            die("the sink received %" PRIu64 " bytes, not %" PRIu64, moved, o->bytes);
    } else {
        uint8_t req[9];
        req[0] = 'G';
        put_be64(req + 1, o->bytes);
        t0 = now_ns();
        write_all(c.fd, req, sizeof req);
        moved = c.have - c.off;
        for (;;) {
            ssize_t n = data_discard(c.fd);
            if (n == 0)
                break;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                die("recv: %s", errno == EAGAIN ? "timed out" : strerror(errno));
            }
            moved += (uint64_t)n;
        }
        t1 = now_ns();
        if (moved != o->bytes)
            die("received %" PRIu64 " bytes, not %" PRIu64, moved, o->bytes);
    }
    close(c.fd);
    double s = (double)(t1 - t0) / 1e9;
    printf("{\"mode\":\"throughput\",\"dir\":\"%s\",\"copy\":%s,\"bytes\":%" PRIu64
           ",\"seconds\":%.6f,\"MBps\":%.1f}\n",
           o->dir_up ? "up" : "down", g_copy ? "true" : "false", moved, s, (double)moved / s / 1e6);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted V. */
static double pct_us(const uint64_t *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return (double)v[k - 1] / 1e3;
}

enum rt_mode {
    RT_LATENCY,   /* new connection, send 1 byte, time to its echo */
    RT_FIRSTBYTE, /* new connection, time to the server's banner */
    RT_RTT,       /* one connection, time of each 1-byte echo round trip */
};

static const char *const rt_names[] = {"latency", "firstbyte", "rtt"};

/* One sample: the time from connect() (or, for RTT, from the send) to the
 * first byte received. */
static uint64_t rt_sample(const client_opts *o, enum rt_mode m, bconn *c)
{
    uint64_t t0 = now_ns();
    if (m != RT_RTT)
        open_conn(o, &o->target, c);
    if (m != RT_FIRSTBYTE)
        write_all(c->fd, "E", 1);
    need(c, 1, m == RT_FIRSTBYTE ? "banner" : "echo");
    uint64_t t1 = now_ns();
    const uint8_t want = m == RT_FIRSTBYTE ? 'B' : 'E';
    if (c->buf[c->off] != want)
        die("expected '%c', got 0x%02x", want, c->buf[c->off]);
    c->off++;
    if (m != RT_RTT)
        close(c->fd);
    return t1 - t0;
}

static void cmd_roundtrips(const client_opts *o, enum rt_mode m)
{
    if (!o->have_target)
        die("%s needs %s", rt_names[m], m == RT_FIRSTBYTE ? "--banner" : "--target");
    long warm = o->warmup >= 0 ? o->warmup : (o->count / 10 < 20 ? o->count / 10 : 20);
    uint64_t *v = calloc((size_t)o->count, sizeof *v);
    if (v == NULL)
        die("out of memory");
    bconn c;
    if (m == RT_RTT)
        open_conn(o, &o->target, &c);
    for (long i = 0; i < warm + o->count; i++) {
        uint64_t ns = rt_sample(o, m, &c);
        if (i >= warm)
            v[i - warm] = ns;
    }
    if (m == RT_RTT)
        close(c.fd);
    size_t n = (size_t)o->count;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    qsort(v, n, sizeof *v, cmp_u64);
    printf("{\"mode\":\"%s\",\"count\":%zu,\"median_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"min_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}\n",
           rt_names[m], n, pct_us(v, n, 50), pct_us(v, n, 90), pct_us(v, n, 99), (double)v[0] / 1e3,
           (double)v[n - 1] / 1e3, sum / (double)n / 1e3);
    free(v);
}

/* Opens connections on request and keeps them open (see the top comment). */
static void cmd_idle(const client_opts *o)
{
    if (!o->have_target)
        die("idle needs --target");
    /* Every open connection is a descriptor: raise the soft limit to the hard
     * one (the caller raises the hard one if it must). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    size_t open_n = 0, cap = 0;
    int *fds = NULL;
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, " \r\n")] = '\0';
        long more = parse_long(line, 0, 1000000, "count");
        if (open_n + (size_t)more > cap) {
            cap = open_n + (size_t)more;
            fds = realloc(fds, cap * sizeof *fds);
            if (fds == NULL)
                die("out of memory");
        }
        uint64_t t0 = now_ns();
        for (long i = 0; i < more; i++) {
            bconn c;
            open_conn(o, &o->target, &c);
            write_all(c.fd, "E", 1);
            need(&c, 1, "echo");
            if (c.buf[c.off] != 'E')
                die("expected 'E', got 0x%02x", c.buf[c.off]);
            fds[open_n++] = c.fd;
        }
        printf("{\"mode\":\"idle\",\"open\":%zu,\"seconds\":%.6f}\n", open_n,
               (double)(now_ns() - t0) / 1e9);
        fflush(stdout);
    }
    for (size_t i = 0; i < open_n; i++)
        close(fds[i]);
    free(fds);
}

/* ---- Server side: one epoll loop ---------------------------------------- */

enum role {
    R_NEW,  /* waiting for the role byte */
    R_HDR,  /* reading the sink's or generator's length */
    R_SINK, /* counting bytes */
    R_GEN,  /* sending */
    R_ECHO,
    R_DRAIN, /* our part is done: discard input until EOF, then close */
};

typedef struct sconn {
    int fd;
    enum role role;
    uint32_t events; /* the epoll mask in force */
    bool sink;       /* R_HDR: for the sink, not the generator */
    uint64_t n;      /* sink: bytes still expected; generator: bytes left to send */
    uint64_t got;    /* sink: bytes received */
    size_t hdr_have; /* length bytes read so far */
    uint8_t hdr[8];
    bool close_after; /* close once OUT is flushed */
    bool peer_eof;    /* the client half-closed: nothing more to read */
    uint8_t *out;     /* bytes to send before anything else */
    size_t out_off, out_len;
} sconn;

/* Listener tags, compared by address in epoll_event.data.ptr. */
static int g_main_tag, g_banner_tag;
static int g_ep;

static void set_events(sconn *c, uint32_t ev)
{
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->events = ev;
}

static void conn_close(sconn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c->out);
    free(c);
}

/* Sends what is queued in OUT. Returns false when the connection was closed. */
static bool flush_out(sconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;
            conn_close(c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = 0;
    if (c->close_after) {
        conn_close(c);
        return false;
    }
    return true;
}

static void append_out(sconn *c, const uint8_t *p, size_t len)
{
    uint8_t *nb = realloc(c->out, c->out_len + len);
    if (nb == NULL)
        die("out of memory");
    memcpy(nb + c->out_len, p, len);
    c->out = nb;
    c->out_len += len;
}

/* Queues LEN bytes and tries to send them at once. Returns false when the
 * connection was closed. */
static bool queue_out(sconn *c, const uint8_t *p, size_t len)
{
    append_out(c, p, len);
    return flush_out(c);
}

/* The epoll mask a connection needs in its current state: input unless output
 * is backed up (echo) or the peer is done, output while anything is queued. */
static void update_events(sconn *c, bool reading)
{
    uint32_t ev = reading ? EPOLLIN : 0;
    if (c->out_len > 0 || c->role == R_GEN)
        ev |= EPOLLOUT;
    set_events(c, ev);
}

/* Queues the sink's answer and leaves the connection to wait for the
 * client's close. */
static void sink_reply(sconn *c)
{
    uint8_t cnt[8];
    put_be64(cnt, c->got);
    c->role = R_DRAIN;
    append_out(c, cnt, 8);
}

static void on_input(sconn *c)
{
    ssize_t n;
    if (c->role == R_SINK || c->role == R_GEN || c->role == R_DRAIN)
        n = data_discard(c->fd); /* bytes nobody looks at */
    else
        n = recv(c->fd, g_buf, c->role == R_HDR ? 8 - c->hdr_have : ECHO_CHUNK, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close(c);
        return;
    }
    if (n == 0) {
        c->peer_eof = true;
        switch (c->role) {
        case R_SINK:
            /* Early EOF: report the short count, the client will complain. */
            sink_reply(c);
            c->close_after = true;
            if (flush_out(c))
                update_events(c, false);
            return;
        case R_ECHO:
            c->close_after = true;
            if (flush_out(c))
                update_events(c, false);
            return;
        case R_GEN:
            /* The client half-closed while waiting: keep sending. */
            update_events(c, false);
            return;
        default:
            conn_close(c);
            return;
        }
    }
    const uint8_t *p = g_buf;
    size_t len = (size_t)n;
    if (c->role == R_NEW) {
        switch (p[0]) {
        case 'S':
        case 'G':
            c->role = R_HDR;
            c->sink = p[0] == 'S';
            p++, len--;
            break;
        case 'E':
            c->role = R_ECHO; /* the role byte is echoed too */
            break;
        default:
            conn_close(c);
            return;
        }
    }
    if (c->role == R_HDR) {
        size_t take = 8 - c->hdr_have < len ? 8 - c->hdr_have : len;
        memcpy(c->hdr + c->hdr_have, p, take);
        c->hdr_have += take;
        if (c->hdr_have < 8)
            return;
        c->n = get_be64(c->hdr);
        if (!c->sink) {
            c->role = R_GEN; /* anything after the length is ignored */
            update_events(c, true);
            return;
        }
        c->role = R_SINK; /* the rest is sink payload */
        p += take, len -= take;
    }
    switch (c->role) {
    case R_SINK:
        c->got += len;
        if (c->got >= c->n) {
            sink_reply(c);
            if (!flush_out(c))
                return;
            update_events(c, true);
        }
        break;
    case R_ECHO:
        if (len > 0) {
            if (!queue_out(c, p, len))
                return;
            /* Stop reading while the peer does not take its echo. */
            update_events(c, c->out_len == 0);
        }
        break;
    default:
        break; /* R_GEN, R_DRAIN: discard */
    }
}

/* Returns false when C was closed. */
static bool on_output(sconn *c)
{
    if (c->out_len > 0) {
        if (!flush_out(c))
            return false;
        if (c->out_len > 0)
            return true;
        if (c->role != R_GEN) {
            update_events(c, !c->peer_eof);
            return true;
        }
    }
    if (c->role != R_GEN)
        return true;
    while (c->n > 0) {
        size_t chunk = c->n < BIG_BUF ? (size_t)c->n : BIG_BUF;
        ssize_t n = data_send(c->fd, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;
            conn_close(c);
            return false;
        }
        c->n -= (uint64_t)n;
        /* A short send means the socket buffer is full; trying again now
         * would cost a syscall only to get EAGAIN. */
        if ((size_t)n < chunk)
            return true;
    }
    /* Done: FIN now, close when the client closes, so that nothing it may
     * still send turns our close into a reset. */
    shutdown(c->fd, SHUT_WR);
    if (c->peer_eof) {
        conn_close(c);
        return false;
    }
    c->role = R_DRAIN;
    update_events(c, true);
    return true;
}

static int listen_on(const char *host, long port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("--host must be an IPv4 address");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("bind %s:%ld: %s", host, port, strerror(errno));
    if (listen(fd, 4096) != 0)
        die("listen: %s", strerror(errno));
    return fd;
}

static void accept_all(int lfd, bool banner)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or EMFILE and the like: retried on the next event */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sconn *c = calloc(1, sizeof *c);
        if (c == NULL)
            die("out of memory");
        c->fd = fd;
        c->role = banner ? R_DRAIN : R_NEW;
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &e) != 0)
            die("epoll_ctl: %s", strerror(errno));
        if (banner && queue_out(c, (const uint8_t *)"B", 1))
            update_events(c, true);
    }
}

static void cmd_serve(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = -1, bport = -1;
    static const struct option lo[] = {
        {"port", required_argument, NULL, 'p'},
        {"banner-port", required_argument, NULL, 'b'},
        {"host", required_argument, NULL, 'H'},
        {"copy", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "p:b:H:", lo, NULL)) != -1) {
        switch (ch) {
        case 'C':
            g_copy = true;
            break;
        case 'p':
            port = parse_long(optarg, 1, 65535, "port");
            break;
        case 'b':
            bport = parse_long(optarg, 1, 65535, "port");
            break;
        case 'H':
            host = optarg;
            break;
        default:
            exit(2);
        }
    }
    if (port < 0)
        die("serve needs --port");
    data_init();
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        die("epoll_create1: %s", strerror(errno));
    int lfd = listen_on(host, port);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &g_main_tag};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &e);
    int bfd = -1;
    if (bport > 0) {
        bfd = listen_on(host, bport);
        e.data.ptr = &g_banner_tag;
        epoll_ctl(g_ep, EPOLL_CTL_ADD, bfd, &e);
    }
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(g_ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &g_main_tag) {
                accept_all(lfd, false);
                continue;
            }
            if (p == &g_banner_tag) {
                accept_all(bfd, true);
                continue;
            }
            sconn *c = p;
            uint32_t ev = evs[i].events;
            /* Each handler reports whether C still lives; no event of one
             * connection frees another, so the rest of EVS stays valid. */
            if ((ev & EPOLLOUT) && !on_output(c))
                continue;
            if (c->peer_eof) {
                /* Nothing left to read: an error or hangup now only means
                 * the connection is gone. */
                if (ev & (EPOLLERR | EPOLLHUP))
                    conn_close(c);
                continue;
            }
            if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_input(c);
        }
    }
}

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
    fputs("usage:\n"
          "  ttbench serve --port P [--banner-port B] [--host 127.0.0.1] [--copy]\n"
          "  ttbench throughput (--socks H:P | --direct) --target H:P --bytes N[K|M|G] "
          "--dir up|down\n"
          "  ttbench latency    (--socks H:P | --direct) --target H:P [--count N] [--warmup W]\n"
          "  ttbench firstbyte  (--socks H:P | --direct) --banner H:P [--count N] [--warmup W]\n"
          "  ttbench rtt        (--socks H:P | --direct) --target H:P [--count N] [--warmup W]\n"
          "  ttbench idle       (--socks H:P | --direct) --target H:P  (stdin: counts to open)\n"
          "common: --timeout SECONDS (default 60); serve and throughput: --copy moves\n"
          "        bulk data with send/recv instead of sendfile/splice\n",
          stderr);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    const char *mode = argv[1];
    if (strcmp(mode, "serve") == 0) {
        cmd_serve(argc - 1, argv + 1);
        return 0;
    }
    bool tput = strcmp(mode, "throughput") == 0, lat = strcmp(mode, "latency") == 0,
         fb = strcmp(mode, "firstbyte") == 0, rtt = strcmp(mode, "rtt") == 0,
         idle = strcmp(mode, "idle") == 0;
    if (!tput && !lat && !fb && !rtt && !idle) {
        usage();
        return 2;
    }
    client_opts o = {.dir_up = -1, .count = 500, .warmup = -1, .timeout_s = 60};
    static const struct option lo[] = {
        {"socks", required_argument, NULL, 's'},
        {"direct", no_argument, NULL, 'D'},
        {"target", required_argument, NULL, 't'},
        {"banner", required_argument, NULL, 'B'},
        {"bytes", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'c'},
        {"warmup", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 'T'},
        {"copy", no_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's':
            parse_endpoint(optarg, &o.socks);
            o.have_socks = true;
            break;
        case 'D':
            o.direct = true;
            break;
        case 't':
        case 'B':
            if ((ch == 'B') != fb)
                die("%s takes %s", mode, fb ? "--banner" : "--target");
            parse_endpoint(optarg, &o.target);
            o.have_target = true;
            break;
        case 'n':
            o.bytes = parse_size(optarg);
            break;
        case 'd':
            if (strcmp(optarg, "up") != 0 && strcmp(optarg, "down") != 0)
                die("--dir is up or down");
            o.dir_up = strcmp(optarg, "up") == 0;
            break;
        case 'c':
            o.count = parse_long(optarg, 1, 10000000, "count");
            break;
        case 'w':
            o.warmup = parse_long(optarg, 0, 10000000, "warmup");
            break;
        case 'T':
            o.timeout_s = parse_long(optarg, 1, 86400, "timeout");
            break;
        case 'C':
            g_copy = true;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (o.direct == o.have_socks)
        die("give exactly one of --socks HOST:PORT and --direct");
    data_init();
    if (tput)
        cmd_throughput(&o);
    else if (idle)
        cmd_idle(&o);
    else
        cmd_roundtrips(&o, lat ? RT_LATENCY : fb ? RT_FIRSTBYTE : RT_RTT);
    return 0;
}
