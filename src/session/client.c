/* The client side of resumable sessions (see client.h). */
#include "session/client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/log.h"
#include "session/internal.h"

typedef struct sclient {
    tt_carrier base;
    tt_carrier *inner;
    uint8_t key[TT_SESS_KEY_LEN];
    tt_sess_client_cfg cfg;
    tt_sess *list;
    bool closing;
} sclient;

/* The pool's dial until the first join's outcome. */
struct tt_carrier_dial {
    tt_sess *s;
    tt_carrier_dial_cb cb;
    void *ud;
    int status;
};

static void start_leg(tt_sess *s);
static void arm_migrate(tt_sess *s);

static const char *describe_inner(sclient *c, char *buf, size_t len)
{
    if (c->inner->type->describe)
        return c->inner->type->describe(c->inner, buf, len);
    snprintf(buf, len, "%s", c->inner->type->scheme);
    return buf;
}

static void free_client(sclient *c)
{
    c->inner->type->close(c->inner);
    free(c);
}

/* The first join failed or was cancelled: the pool hears it from the loop,
 * once the session is gone. */
static void first_report(void *ud)
{
    struct tt_carrier_dial *d = ud;
    tt_carrier_dial_cb cb = d->cb;
    void *cud = d->ud;
    int status = d->status;
    free(d);
    cb(cud, status, NULL);
}

static void fail_first(tt_sess *s, int status)
{
    struct tt_carrier_dial *d = s->first;
    s->first = NULL;
    d->status = status;
    tt_sess_destroy(s, first_report, d);
}

static void on_retry(uv_timer_t *t)
{
    start_leg(t->data);
}

static void schedule_retry(tt_sess *s, int err)
{
    sclient *c = s->owner;
    uint64_t cap = c->cfg.reconnect_min_ms;
    for (unsigned i = 0; i < s->attempt && cap < c->cfg.reconnect_max_ms; i++)
        cap *= 2;
    if (cap > c->cfg.reconnect_max_ms)
        cap = c->cfg.reconnect_max_ms;
    /* Full jitter: clients cut by the same event do not return together. */
    uint32_t delay = tt_random_range(0, (uint32_t)cap);
    s->attempt++;
    char where[300];
    tt_info("session %s: reconnect attempt %u to %s in %u ms (%s)", s->name, s->attempt,
            describe_inner(c, where, sizeof where), (unsigned)delay, uv_strerror(err));
    uv_timer_start(&s->role_timer, on_retry, delay, 0);
}

/* A dial or a join did not succeed. */
static void attempt_failed(tt_sess *s, int err)
{
    uv_timer_stop(&s->role_timer);
    if (s->jleg) {
        tt_sess_close_link(s, s->jleg);
        s->jleg = NULL;
    }
    if (s->first) {
        fail_first(s, err);
        return;
    }
    schedule_retry(s, err);
}

static void joined(tt_sess *s, uint8_t status, uint64_t offset, const uint8_t *early, size_t n)
{
    sclient *c = s->owner;
    char where[300];
    tt_link *leg = s->jleg;
    s->jleg = NULL;
    if (status != TT_SESS_OK) {
        tt_sess_close_link(s, leg);
        if (s->first) {
            tt_error("%s refused the resumable session: %s", describe_inner(c, where, sizeof where),
                     tt_sess_status_str(status));
            fail_first(s, UV_ECONNREFUSED);
            return;
        }
        tt_error("session %s: %s cannot resume it: %s; its streams are reset", s->name,
                 describe_inner(c, where, sizeof where), tt_sess_status_str(status));
        tt_sess_fail(s, UV_ECONNRESET, "the server no longer has the session", false);
        return;
    }
    uint64_t resend = s->core.snd_nxt > offset ? s->core.snd_nxt - offset : 0;
    if (tt_sess_core_rejoin(&s->core, offset) < 0) {
        tt_sess_close_link(s, leg);
        if (s->first) {
            fail_first(s, UV_EPROTO);
            return;
        }
        tt_error("session %s: the server's offset is out of range; its streams are reset", s->name);
        tt_sess_fail(s, UV_EPROTO, "the server's offset is out of range", false);
        return;
    }
    if (s->moving)
        tt_info("session %s: moved to a new connection, resending %llu bytes", s->name,
                (unsigned long long)resend);
    else if (!s->first)
        tt_info("session %s: resumed after %llu ms (attempt %u), resending %llu bytes", s->name,
                (unsigned long long)(uv_now(s->base.loop) - s->lost_ms), s->attempt,
                (unsigned long long)resend);
    s->attempt = 0;
    s->moving = false;
    tt_sess_attach(s, leg, early, n);
    if (s->leg == leg)
        arm_migrate(s);
    if (s->first) {
        struct tt_carrier_dial *d = s->first;
        s->first = NULL;
        tt_debug("session %s: joined %s", s->name, describe_inner(c, where, sizeof where));
        /* Reached in a libuv callback: report at once. */
        tt_carrier_dial_cb cb = d->cb;
        void *ud = d->ud;
        free(d);
        cb(ud, 0, &s->base);
    }
}

static void on_join_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    tt_sess *s = ud;
    size_t take = TT_SESS_JOINED_LEN - s->jhave;
    if (take > len)
        take = len;
    memcpy(s->jbuf + s->jhave, data, take);
    s->jhave += take;
    if (s->jhave < TT_SESS_JOINED_LEN)
        return;
    uv_timer_stop(&s->role_timer);
    sclient *c = s->owner;
    uint8_t status = 0;
    uint64_t offset = 0;
    const char *why = NULL;
    if (tt_sess_joined_decode(s->jbuf, c->key, s->jmac, &status, &offset, &why) < 0) {
        tt_warn("session %s: %s", s->name, why);
        attempt_failed(s, UV_EPROTO);
        return;
    }
    joined(s, status, offset, data + take, len - take);
}

static void on_join_eof(tt_link *l, void *ud)
{
    (void)l;
    tt_sess *s = ud;
    if (s->first)
        tt_error("the server closed the connection during the session join (a wrong -k, or a "
                 "server without one?)");
    attempt_failed(s, UV_ECONNRESET);
}

static void on_join_error(tt_link *l, void *ud, int err)
{
    (void)l;
    attempt_failed(ud, err);
}

static void on_join_drained(tt_link *l, void *ud)
{
    (void)l, (void)ud;
}

static const tt_link_handler join_handler = {on_join_data, on_join_eof, on_join_error,
                                             on_join_drained};

static void on_join_timeout(uv_timer_t *t)
{
    tt_sess *s = t->data;
    tt_info("session %s: no answer to the join in time", s->name);
    attempt_failed(s, UV_ETIMEDOUT);
}

static void send_join(tt_sess *s, tt_link *leg)
{
    sclient *c = s->owner;
    tt_sess_join j = {0};
    if (!s->first) {
        j.flags = TT_SESS_JOIN_REJOIN;
        j.counter = ++s->counter;
        j.offset = s->core.rcv_nxt;
    }
    memcpy(j.id, s->id, TT_SESS_ID_LEN);
    tt_random(j.nonce, sizeof j.nonce);
    j.time_ms = tt_sess_now_ms();
    uint8_t out[TT_SESS_JOIN_LEN];
    tt_sess_join_encode(&j, c->key, out);
    memcpy(s->jmac, j.mac, TT_SESS_MAC_LEN);
    s->jleg = leg;
    s->jhave = 0;
    tt_link_set_handler(leg, &join_handler, s);
    if (tt_link_write1(leg, out, sizeof out) < 0 || tt_link_read_start(leg) < 0) {
        attempt_failed(s, UV_EIO);
        return;
    }
    uv_timer_start(&s->role_timer, on_join_timeout, c->cfg.join_timeout_ms, 0);
}

static void on_leg_dialed(void *ud, int status, tt_link *link)
{
    tt_sess *s = ud;
    s->dreq = NULL;
    if (s->closing) {
        if (link)
            tt_link_close(link, NULL, NULL);
    } else if (status < 0) {
        attempt_failed(s, status);
    } else {
        send_join(s, link);
    }
    tt_sess_unref(s);
}

static void start_leg(tt_sess *s)
{
    sclient *c = s->owner;
    int rc = c->inner->type->dial(c->inner, NULL, on_leg_dialed, s, &s->dreq);
    if (rc < 0) {
        s->dreq = NULL;
        schedule_retry(s, rc);
        return;
    }
    tt_sess_hold(s);
}

/* The session role. */

static void client_leg_lost(tt_sess *s, int err)
{
    sclient *c = s->owner;
    char where[300];
    s->lost_ms = uv_now(s->base.loop);
    tt_warn("session %s: the connection to %s was lost (%s); resuming", s->name,
            describe_inner(c, where, sizeof where), uv_strerror(err));
    /* A move under way becomes the resumption; else dial again. */
    s->moving = false;
    if (s->jleg == NULL && s->dreq == NULL)
        schedule_retry(s, err);
}

/* --hop-migrate: when the inner carrier says the leg has lived long enough
 * (its port's slot ends), join a new one; the old one carries on until the
 * new one is joined, and the server closes it then. */
static void on_migrate(uv_timer_t *t)
{
    tt_sess *s = t->data;
    if (s->leg == NULL || s->jleg || s->dreq || s->dead || s->closing)
        return;
    tt_info("session %s: moving to a new connection (the port's slot ends)", s->name);
    s->moving = true;
    start_leg(s);
}

static void arm_migrate(tt_sess *s)
{
    sclient *c = s->owner;
    if (!c->cfg.migrate || c->inner->type->leg_lifetime == NULL)
        return;
    uint64_t ms = c->inner->type->leg_lifetime(c->inner);
    if (ms > 0)
        uv_timer_start(&s->role_timer, on_migrate, ms, 0);
}

static void client_released(tt_sess *s)
{
    sclient *c = s->owner;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    if (s->dreq) {
        c->inner->type->dial_cancel(s->dreq);
        s->dreq = NULL;
    }
    if (s->jleg) {
        tt_sess_close_link(s, s->jleg);
        s->jleg = NULL;
    }
    if (c->closing && c->list == NULL)
        free_client(c);
}

static const sess_role client_role = {client_leg_lost, client_released};

/* The carrier. */

static int sc_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                   tt_carrier_dial **req)
{
    (void)t;
    sclient *c = (sclient *)base;
    uint8_t id[TT_SESS_ID_LEN];
    tt_random(id, sizeof id);
    struct tt_carrier_dial *d = calloc(1, sizeof *d);
    tt_sess *s = d ? tt_sess_new(base->loop, &client_role, c, id) : NULL;
    if (s == NULL) {
        free(d);
        return UV_ENOMEM;
    }
    d->s = s;
    d->cb = cb;
    d->ud = ud;
    s->first = d;
    s->next = c->list;
    if (c->list)
        c->list->prev = s;
    c->list = s;
    int rc = c->inner->type->dial(c->inner, NULL, on_leg_dialed, s, &s->dreq);
    if (rc < 0) {
        s->first = NULL;
        s->dreq = NULL;
        free(d);
        tt_sess_destroy(s, NULL, NULL);
        return rc;
    }
    tt_sess_hold(s);
    if (req)
        *req = d;
    return 0;
}

static void sc_dial_cancel(tt_carrier_dial *d)
{
    if (d->s->first != d)
        return;
    d->s->first = NULL;
    d->status = UV_ECANCELED;
    tt_sess_destroy(d->s, first_report, d);
}

static const char *sc_describe(tt_carrier *base, char *buf, size_t len)
{
    return describe_inner((sclient *)base, buf, len);
}

static void sc_close(tt_carrier *base)
{
    sclient *c = (sclient *)base;
    c->closing = true;
    if (c->list == NULL)
        free_client(c);
}

static const tt_carrier_type sclient_type = {
    .scheme = "resume",
    .summary = "resumable sessions over another carrier",
    .dial = sc_dial,
    .dial_cancel = sc_dial_cancel,
    .describe = sc_describe,
    .close = sc_close,
};

int tt_sess_client_new(uv_loop_t *loop, tt_carrier *inner, const tt_sess_client_cfg *cfg,
                       tt_carrier **out)
{
    sclient *c = calloc(1, sizeof *c);
    if (c == NULL) {
        inner->type->close(inner);
        return -ENOMEM;
    }
    c->base.type = &sclient_type;
    c->base.loop = loop;
    c->inner = inner;
    c->cfg = *cfg;
    if (c->cfg.reconnect_min_ms == 0)
        c->cfg.reconnect_min_ms = 100;
    if (c->cfg.reconnect_max_ms == 0)
        c->cfg.reconnect_max_ms = 30000;
    if (c->cfg.reconnect_max_ms < c->cfg.reconnect_min_ms)
        c->cfg.reconnect_max_ms = c->cfg.reconnect_min_ms;
    if (c->cfg.join_timeout_ms == 0)
        c->cfg.join_timeout_ms = 10000;
    c->cfg.psk = NULL;
    if (tt_sess_join_key(cfg->psk, c->key) != 0) {
        free_client(c);
        return -EIO;
    }
    *out = &c->base;
    return 0;
}

size_t tt_sess_client_held(const tt_carrier *base)
{
    const sclient *c = (const sclient *)base;
    size_t n = 0;
    for (const tt_sess *s = c->list; s; s = s->next)
        n += sizeof *s + s->core.held + s->stash_len;
    return n;
}
