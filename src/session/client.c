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
    tt_carrier *inner[2]; /* the up (or only) leg's carrier, the down leg's or NULL */
    uint8_t key[TT_SESS_KEY_LEN];
    tt_sess_client_cfg cfg;
    tt_sess *list;
    bool closing;
} sclient;

/* The pool's dial until the first joins' outcome. */
struct tt_carrier_dial {
    tt_sess *s;
    tt_carrier_dial_cb cb;
    void *ud;
    int status;
};

static void start_leg(tt_sess *s, int slot);
static void arm_migrate(tt_sess *s, int slot);

static tt_carrier *inner_of(sclient *c, int slot)
{
    return c->inner[slot] ? c->inner[slot] : c->inner[0];
}

static const char *describe_inner(sclient *c, int slot, char *buf, size_t len)
{
    tt_carrier *in = inner_of(c, slot);
    if (in->type->describe)
        return in->type->describe(in, buf, len);
    snprintf(buf, len, "%s", in->type->scheme);
    return buf;
}

static void free_client(sclient *c)
{
    for (int i = 0; i < 2; i++) {
        if (c->inner[i])
            c->inner[i]->type->close(c->inner[i]);
    }
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

static int timer_slot(tt_sess *s, uv_timer_t *t)
{
    return t == &s->role_timer[TT_SESS_DOWN] ? TT_SESS_DOWN : TT_SESS_UP;
}

static void on_retry(uv_timer_t *t)
{
    tt_sess *s = t->data;
    start_leg(s, timer_slot(s, t));
}

/* Each slot has its own backoff: a leg that cannot get through does not
 * delay the other. */
static void schedule_retry(tt_sess *s, int slot, int err)
{
    sclient *c = s->owner;
    uint64_t cap = c->cfg.reconnect_min_ms;
    for (unsigned i = 0; i < s->attempt[slot] && cap < c->cfg.reconnect_max_ms; i++)
        cap *= 2;
    if (cap > c->cfg.reconnect_max_ms)
        cap = c->cfg.reconnect_max_ms;
    /* Full jitter: clients cut by the same event do not return together. */
    uint32_t delay = tt_random_range(0, (uint32_t)cap);
    s->attempt[slot]++;
    char where[300];
    tt_info("session %s%s: reconnect attempt %u to %s in %u ms (%s)", s->name,
            tt_sess_leg_name(s, slot), s->attempt[slot],
            describe_inner(c, slot, where, sizeof where), (unsigned)delay, uv_strerror(err));
    uv_timer_start(&s->role_timer[slot], on_retry, delay, 0);
}

/* A dial or a join of SLOT did not succeed. */
static void attempt_failed(tt_sess *s, int slot, int err)
{
    uv_timer_stop(&s->role_timer[slot]);
    if (s->jleg[slot]) {
        tt_sess_close_link(s, s->jleg[slot]);
        s->jleg[slot] = NULL;
    }
    if (s->first) {
        fail_first(s, err);
        return;
    }
    schedule_retry(s, slot, err);
}

static void joined(tt_sess *s, int slot, uint8_t status, uint64_t offset, const uint8_t *early,
                   size_t n)
{
    sclient *c = s->owner;
    char where[300];
    tt_link *leg = s->jleg[slot];
    s->jleg[slot] = NULL;
    const char *lname = tt_sess_leg_name(s, slot);
    if (status != TT_SESS_OK) {
        tt_sess_close_link(s, leg);
        if (s->first) {
            tt_error("%s refused the resumable session%s: %s",
                     describe_inner(c, slot, where, sizeof where), lname,
                     tt_sess_status_str(status));
            fail_first(s, UV_ECONNREFUSED);
            return;
        }
        tt_error("session %s%s: %s cannot resume it: %s; its streams are reset", s->name, lname,
                 describe_inner(c, slot, where, sizeof where), tt_sess_status_str(status));
        tt_sess_fail(s, UV_ECONNRESET, "the server no longer has the session", false);
        return;
    }
    /* The server's offset restarts this side's sending on the leg that
     * carries it; on a split session's down leg it only acknowledges. */
    uint64_t resend = 0;
    int rc;
    if (slot == tt_sess_tx(s) && s->sent_early[slot] && offset <= s->core.snd_nxt) {
        /* The resend went behind the JOIN, from what the server had
         * acknowledged; what it received beyond that it drops. */
        resend = s->core.snd_nxt - offset;
        rc = tt_sess_core_ack(&s->core, offset);
    } else if (slot == tt_sess_tx(s)) {
        resend = s->core.snd_nxt > offset ? s->core.snd_nxt - offset : 0;
        rc = tt_sess_core_rejoin(&s->core, offset);
    } else {
        rc = tt_sess_core_ack(&s->core, offset);
    }
    s->sent_early[slot] = false;
    if (rc < 0) {
        tt_sess_close_link(s, leg);
        if (s->first) {
            fail_first(s, UV_EPROTO);
            return;
        }
        tt_error("session %s: the server's offset is out of range; its streams are reset", s->name);
        tt_sess_fail(s, UV_EPROTO, "the server's offset is out of range", false);
        return;
    }
    if (s->moving[slot])
        tt_info("session %s%s: moved to a new connection, resending %llu bytes", s->name, lname,
                (unsigned long long)resend);
    else if (!s->first)
        tt_info("session %s%s: resumed after %llu ms (attempt %u), resending %llu bytes", s->name,
                lname, (unsigned long long)(uv_now(s->base.loop) - s->lost_ms[slot]),
                s->attempt[slot], (unsigned long long)resend);
    s->attempt[slot] = 0;
    s->moving[slot] = false;
    tt_sess_attach(s, slot, leg, early, n);
    if (s->leg[slot] == leg)
        arm_migrate(s, slot);
    if (s->first && !s->dead && s->leg[TT_SESS_UP] && (!s->split || s->leg[TT_SESS_DOWN])) {
        struct tt_carrier_dial *d = s->first;
        s->first = NULL;
        tt_debug("session %s: joined %s", s->name, describe_inner(c, 0, where, sizeof where));
        /* Reached in a libuv callback: report at once. */
        tt_carrier_dial_cb cb = d->cb;
        void *ud = d->ud;
        free(d);
        cb(ud, 0, &s->base);
    }
}

static int jslot(tt_sess *s, tt_link *l)
{
    return s->jleg[TT_SESS_DOWN] == l ? TT_SESS_DOWN : TT_SESS_UP;
}

static void on_join_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    tt_sess *s = ud;
    int slot = jslot(s, l);
    size_t take = TT_SESS_JOINED_LEN - s->jhave[slot];
    if (take > len)
        take = len;
    memcpy(s->jbuf[slot] + s->jhave[slot], data, take);
    s->jhave[slot] += take;
    if (s->jhave[slot] < TT_SESS_JOINED_LEN)
        return;
    uv_timer_stop(&s->role_timer[slot]);
    sclient *c = s->owner;
    uint8_t status = 0;
    uint64_t offset = 0;
    const char *why = NULL;
    if (tt_sess_joined_decode(s->jbuf[slot], c->key, s->jmac[slot], &status, &offset, &why) < 0) {
        tt_warn("session %s%s: %s", s->name, tt_sess_leg_name(s, slot), why);
        attempt_failed(s, slot, UV_EPROTO);
        return;
    }
    joined(s, slot, status, offset, data + take, len - take);
}

static void on_join_eof(tt_link *l, void *ud)
{
    tt_sess *s = ud;
    if (s->first)
        tt_error("the server closed the connection during the session join (a wrong -k, or a "
                 "server without one?)");
    attempt_failed(s, jslot(s, l), UV_ECONNRESET);
}

static void on_join_error(tt_link *l, void *ud, int err)
{
    tt_sess *s = ud;
    attempt_failed(s, jslot(s, l), err);
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
    int slot = timer_slot(s, t);
    tt_info("session %s%s: no answer to the join in time", s->name, tt_sess_leg_name(s, slot));
    attempt_failed(s, slot, UV_ETIMEDOUT);
}

static void send_join(tt_sess *s, int slot, tt_link *leg)
{
    sclient *c = s->owner;
    tt_sess_join j = {0};
    /* Each slot's first JOIN is a new one (counter 0): a split session's
     * two legs may then join in either order; later ones count per slot. */
    if (s->made[slot]) {
        j.flags = TT_SESS_JOIN_REJOIN;
        j.counter = ++s->counter[slot];
        j.offset = s->core.rcv_nxt;
    }
    if (s->split)
        j.flags |= (uint8_t)((slot == TT_SESS_UP ? TT_SESS_ROLE_UP : TT_SESS_ROLE_DOWN)
                             << TT_SESS_ROLE_SHIFT);
    memcpy(j.id, s->id, TT_SESS_ID_LEN);
    tt_random(j.nonce, sizeof j.nonce);
    j.time_ms = tt_sess_now_ms();
    uint8_t out[TT_SESS_JOIN_LEN];
    tt_sess_join_encode(&j, c->key, out);
    memcpy(s->jmac[slot], j.mac, TT_SESS_MAC_LEN);
    s->jleg[slot] = leg;
    s->jhave[slot] = 0;
    tt_link_set_handler(leg, &join_handler, s);
    if (tt_link_write1(leg, out, sizeof out) < 0 || tt_link_read_start(leg) < 0) {
        attempt_failed(s, slot, UV_EIO);
        return;
    }
    /* A leg that replaces a lost one carries the resend right behind the
     * JOIN, from the last offset the server acknowledged, instead of a
     * round trip later: the server drops what it already has (docs/
     * SESSION.md). A move (the old leg still sending) waits for the
     * answer, so that nothing goes twice. */
    s->sent_early[slot] = false;
    if (s->made[slot] && slot == tt_sess_tx(s) && s->leg[slot] == NULL && !s->dead) {
        if (tt_sess_core_rejoin(&s->core, s->core.snd_una) == 0) {
            s->sent_early[slot] = true;
            if (tt_sess_send_early(s, leg) < 0) {
                attempt_failed(s, slot, UV_EIO);
                return;
            }
        }
    }
    uv_timer_start(&s->role_timer[slot], on_join_timeout, c->cfg.join_timeout_ms, 0);
}

/* The dial callbacks carry the slot in the pointer's lowest bit (a
 * tt_sess is at least pointer-aligned). */
static void *slot_ud(tt_sess *s, int slot)
{
    return (void *)((uintptr_t)s | (uintptr_t)slot);
}

static void on_leg_dialed(void *ud, int status, tt_link *link)
{
    tt_sess *s = (tt_sess *)((uintptr_t)ud & ~(uintptr_t)1);
    int slot = (int)((uintptr_t)ud & 1);
    s->dreq[slot] = NULL;
    if (s->closing) {
        if (link)
            tt_link_close(link, NULL, NULL);
    } else if (status < 0) {
        attempt_failed(s, slot, status);
    } else {
        send_join(s, slot, link);
    }
    tt_sess_unref(s);
}

/* Dials SLOT's carrier; returns 0 or the dial's error. */
static int dial_leg(tt_sess *s, int slot)
{
    tt_carrier *in = inner_of(s->owner, slot);
    int rc = in->type->dial(in, NULL, on_leg_dialed, slot_ud(s, slot), &s->dreq[slot]);
    if (rc < 0) {
        s->dreq[slot] = NULL;
        return rc;
    }
    tt_sess_hold(s);
    return 0;
}

static void start_leg(tt_sess *s, int slot)
{
    int rc = dial_leg(s, slot);
    if (rc < 0)
        schedule_retry(s, slot, rc);
}

/* The session role. */

static void client_leg_lost(tt_sess *s, int slot, int err)
{
    sclient *c = s->owner;
    char where[300];
    s->lost_ms[slot] = uv_now(s->base.loop);
    tt_warn("session %s%s: the connection to %s was lost (%s); resuming", s->name,
            tt_sess_leg_name(s, slot), describe_inner(c, slot, where, sizeof where),
            uv_strerror(err));
    /* A move under way becomes the resumption; else dial again. */
    s->moving[slot] = false;
    if (s->jleg[slot] == NULL && s->dreq[slot] == NULL)
        schedule_retry(s, slot, err);
}

/* --hop-migrate: when the inner carrier says the leg has lived long enough
 * (its port's slot ends), join a new one; the old one carries on until the
 * new one is joined, and the server closes it then. */
static void on_migrate(uv_timer_t *t)
{
    tt_sess *s = t->data;
    int slot = timer_slot(s, t);
    if (s->leg[slot] == NULL || s->jleg[slot] || s->dreq[slot] || s->dead || s->closing)
        return;
    tt_info("session %s%s: moving to a new connection (the port's slot ends)", s->name,
            tt_sess_leg_name(s, slot));
    s->moving[slot] = true;
    start_leg(s, slot);
}

static void arm_migrate(tt_sess *s, int slot)
{
    sclient *c = s->owner;
    tt_carrier *in = inner_of(c, slot);
    if (!c->cfg.migrate || in->type->leg_lifetime == NULL)
        return;
    uint64_t ms = in->type->leg_lifetime(in);
    if (ms > 0)
        uv_timer_start(&s->role_timer[slot], on_migrate, ms, 0);
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
    for (int slot = 0; slot < 2; slot++) {
        if (s->dreq[slot]) {
            inner_of(c, slot)->type->dial_cancel(s->dreq[slot]);
            s->dreq[slot] = NULL;
        }
        if (s->jleg[slot]) {
            tt_sess_close_link(s, s->jleg[slot]);
            s->jleg[slot] = NULL;
        }
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
    s->split = c->inner[TT_SESS_DOWN] != NULL;
    /* A split session dials both legs at once: either may join first. */
    int rc = 0;
    for (int slot = 0; slot < tt_sess_slots(s) && rc == 0; slot++)
        rc = dial_leg(s, slot);
    if (rc < 0) {
        s->first = NULL;
        free(d);
        tt_sess_destroy(s, NULL, NULL);
        return rc;
    }
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
    sclient *c = (sclient *)base;
    if (c->inner[TT_SESS_DOWN] == NULL)
        return describe_inner(c, TT_SESS_UP, buf, len);
    char up[300], down[300];
    snprintf(buf, len, "%s (up), %s (down)", describe_inner(c, TT_SESS_UP, up, sizeof up),
             describe_inner(c, TT_SESS_DOWN, down, sizeof down));
    return buf;
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

int tt_sess_client_new(uv_loop_t *loop, tt_carrier *inner, tt_carrier *down,
                       const tt_sess_client_cfg *cfg, tt_carrier **out)
{
    sclient *c = calloc(1, sizeof *c);
    if (c == NULL) {
        inner->type->close(inner);
        if (down)
            down->type->close(down);
        return -ENOMEM;
    }
    c->base.type = &sclient_type;
    c->base.loop = loop;
    c->inner[TT_SESS_UP] = inner;
    c->inner[TT_SESS_DOWN] = down;
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
