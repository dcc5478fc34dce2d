/* The relay. Both directions run through the same three handlers; the index
 * of the link that called tells the direction. */
#include "link/relay.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "link/splice.h"

/* Bytes a relay moves through user space before it hands a pair of plain
 * TCP sockets to splice(2): a stream that gets this far is a bulk one, and
 * the short exchanges most streams are stay as cheap as before (splicing
 * costs a duplicate descriptor per socket and two pipes). */
#define SPLICE_AFTER (128 * 1024)

typedef struct relay {
    tt_link *link[2];
    bool eof[2];       /* link[i] reported EOF */
    bool paused[2];    /* reading link[i] stopped: link[1-i]'s queue is over the mark */
    uint64_t bytes[2]; /* bytes read from link[i] */
    size_t high;
    unsigned idle_ms;
    uint64_t started, last_active;
    uv_timer_t idle;
    int open; /* handles (two links, one timer, the splice) not yet closed */
    bool closing;
    tt_splice *splice;         /* the kernel moves the bytes (link/splice.h) */
    bool no_splice;            /* the links cannot be spliced: do not ask again */
    struct relay *prev, *next; /* all live relays, for tt_relay_close_all */
    char label[TT_RELAY_LABEL_MAX];
} relay;

static relay *g_relays;

static void relay_close(relay *r, const char *reason);
static void relay_abort(relay *r, int failed, const char *reason);

static int side_of(const relay *r, const tt_link *l)
{
    return l == r->link[0] ? 0 : 1;
}

static void maybe_finish(relay *r)
{
    /* Done when both peers have half-closed and everything they sent has been
     * handed to the kernel; closing earlier would drop queued bytes. */
    if (r->eof[0] && r->eof[1] && tt_link_pending(r->link[0]) == 0 &&
        tt_link_pending(r->link[1]) == 0)
        relay_close(r, "done");
}

static void splice_moved(void *ud, int from, size_t n)
{
    relay *r = ud;
    r->bytes[from] += n;
    r->last_active = uv_now(r->idle.loop);
}

static void splice_eof(void *ud, int from)
{
    /* The splice shut the other socket down itself, after the bytes. */
    relay *r = ud;
    r->eof[from] = true;
    maybe_finish(r);
}

static void splice_error(void *ud, int side, int err)
{
    relay_abort(ud, side, uv_err_name(err));
}

static const tt_splice_handler splice_handler = {
    .on_moved = splice_moved,
    .on_eof = splice_eof,
    .on_error = splice_error,
};

/* Hands the pair to splice(2) once the stream has proved to be a bulk one,
 * both links are kernel sockets and neither holds queued bytes (they would
 * be overtaken). Otherwise the relay goes on copying. */
static void try_splice(relay *r)
{
    if (r->no_splice || r->bytes[0] + r->bytes[1] < SPLICE_AFTER)
        return;
    if (tt_link_pending(r->link[0]) > 0 || tt_link_pending(r->link[1]) > 0)
        return; /* later, from another read or a drained queue */
    int fd[2] = {tt_link_socket_fd(r->link[0]), tt_link_socket_fd(r->link[1])};
    r->no_splice = true;
    if (fd[0] < 0 || fd[1] < 0 || !tt_splice_enabled())
        return;
    int rc = tt_splice_start(r->idle.loop, fd, r->eof, &splice_handler, r, &r->splice);
    if (rc < 0) {
        tt_debug("%s: copying on: %s", r->label, uv_strerror(rc));
        return;
    }
    r->open++;
    for (int i = 0; i < 2; i++) {
        tt_link_read_stop(r->link[i]);
        r->paused[i] = false;
    }
}

static void on_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    relay *r = ud;
    int i = side_of(r, l);
    tt_link *dst = r->link[1 - i];
    r->bytes[i] += len;
    r->last_active = uv_now(l->loop);
    int rc = tt_link_write1(dst, data, len);
    if (rc < 0) {
        relay_close(r, "write failed");
        return;
    }
    if (tt_link_pending(dst) > r->high) {
        tt_link_read_stop(l);
        r->paused[i] = true;
        return;
    }
    try_splice(r);
}

static void on_eof(tt_link *l, void *ud)
{
    relay *r = ud;
    int i = side_of(r, l);
    r->eof[i] = true;
    if (tt_link_shutdown(r->link[1 - i]) < 0) {
        relay_close(r, "shutdown failed");
        return;
    }
    maybe_finish(r);
}

static void on_error(tt_link *l, void *ud, int err)
{
    relay *r = ud;
    relay_abort(r, side_of(r, l), uv_err_name(err));
}

static void on_drained(tt_link *l, void *ud)
{
    relay *r = ud;
    int j = side_of(r, l);
    int src = 1 - j;
    if (r->paused[src] && !r->eof[src]) {
        r->paused[src] = false;
        if (tt_link_read_start(r->link[src]) < 0) {
            relay_close(r, "read failed");
            return;
        }
    }
    maybe_finish(r);
    /* A sink slower than its source rarely has an empty queue right after
     * a read; now it has. */
    if (!r->closing)
        try_splice(r);
}

static const tt_link_handler relay_handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_drained = on_drained,
};

static void relay_release(void *ud)
{
    relay *r = ud;
    if (--r->open > 0)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        g_relays = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
    relay_release(h->data);
}

static void relay_close(relay *r, const char *reason)
{
    if (r->closing)
        return;
    r->closing = true;
    uint64_t ms = uv_now(r->idle.loop) - r->started;
    tt_debug("%s: closed (%s) after %llu.%03llu s, %llu bytes up, %llu bytes down%s", r->label,
             reason, (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000),
             (unsigned long long)r->bytes[0], (unsigned long long)r->bytes[1],
             r->splice ? ", spliced" : "");
    /* The splice lets go of its duplicates first, so that a reset below
     * reaches the peer. */
    if (r->splice)
        tt_splice_close(r->splice, relay_release, r);
    for (int i = 0; i < 2; i++) {
        if (r->link[i])
            tt_link_close(r->link[i], relay_release, r);
    }
    uv_close((uv_handle_t *)&r->idle, on_timer_closed);
}

/* A failure on one side is passed on as a failure (a reset) to the other,
 * so an application never mistakes a cut stream for a complete one. */
static void relay_abort(relay *r, int failed, const char *reason)
{
    if (r->closing)
        return;
    tt_link *other = r->link[1 - failed];
    /* Take the other link out of relay_close's hands, then abort it. */
    r->link[1 - failed] = NULL;
    relay_close(r, reason);
    tt_link_abort(other, relay_release, r);
}

static void on_idle(uv_timer_t *t)
{
    relay *r = t->data;
    uint64_t idle = uv_now(t->loop) - r->last_active;
    if (idle >= r->idle_ms) {
        relay_close(r, "idle timeout");
        return;
    }
    /* Data moved since the timer was set: sleep for the rest of the period
     * instead of re-arming the timer on every read. */
    uv_timer_start(t, on_idle, r->idle_ms - idle, 0);
}

int tt_relay_start(tt_link *a, tt_link *b, const tt_relay_opts *opts)
{
    relay *r = calloc(1, sizeof *r);
    if (r == NULL) {
        tt_link_close(a, NULL, NULL);
        tt_link_close(b, NULL, NULL);
        return -ENOMEM;
    }
    r->link[0] = a;
    r->link[1] = b;
    r->high = opts && opts->high_watermark ? opts->high_watermark : TT_RELAY_HIGH_WATERMARK;
    r->idle_ms = opts ? opts->idle_timeout_ms : 0;
    snprintf(r->label, sizeof r->label, "%s", opts && opts->label ? opts->label : "relay");
    r->open = 3;
    uv_timer_init(a->loop, &r->idle);
    r->idle.data = r;
    r->started = r->last_active = uv_now(a->loop);
    r->next = g_relays;
    if (g_relays)
        g_relays->prev = r;
    g_relays = r;

    for (int i = 0; i < 2; i++)
        tt_link_set_handler(r->link[i], &relay_handler, r);
    if (r->idle_ms > 0)
        uv_timer_start(&r->idle, on_idle, r->idle_ms, 0);
    if (opts && opts->a_eof) {
        r->eof[0] = true;
        if (tt_link_shutdown(b) < 0) {
            relay_close(r, "shutdown failed");
            return 0;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (r->eof[i])
            continue;
        /* A sink that already holds more than the mark (bytes queued during
         * a handshake) keeps its source paused until it drains. */
        if (tt_link_pending(r->link[1 - i]) > r->high) {
            r->paused[i] = true;
            continue;
        }
        if (tt_link_read_start(r->link[i]) < 0) {
            relay_close(r, "read failed");
            break;
        }
    }
    return 0;
}

void tt_relay_close_all(void)
{
    for (relay *r = g_relays; r != NULL; r = r->next)
        relay_close(r, "shutting down");
}
