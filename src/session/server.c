/* The server side of resumable sessions (see server.h).
 *
 * Order of the checks on a JOIN, so that nothing a third party can send
 * harms a real session: the MAC first (without the key nothing else is
 * looked at, and the connection is closed without an answer, as a probe
 * would be); then the time stamp and the nonce (a replayed JOIN is refused
 * before it reaches the table); then the table. Only a JOIN that passed all
 * of them, with a counter above the session's last, moves the session to
 * the new connection. */
#include "session/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/replay.h"
#include "link/linger.h"
#include "session/internal.h"

struct tt_sess_server {
    uv_loop_t *loop;
    tt_sess_server_cfg cfg;
    uint8_t key[TT_SESS_KEY_LEN];
    bool has_key;
    tt_replay replay;
    tt_sess *list;
    unsigned n;
    struct joiner *joiners;
    bool closing;
};

typedef struct joiner {
    tt_sess_server *srv;
    tt_link *link;
    uv_timer_t timer;
    uint8_t buf[TT_SESS_JOIN_LEN];
    size_t have;
    int outstanding; /* link close, timer close */
    bool done;
    char peer[64];
    struct joiner *prev, *next;
} joiner;

static void maybe_free(tt_sess_server *srv)
{
    if (!srv->closing || srv->list || srv->joiners)
        return;
    tt_replay_free(&srv->replay);
    free(srv);
}

static void joiner_release(void *ud)
{
    joiner *j = ud;
    if (--j->outstanding > 0)
        return;
    free(j);
}

static void on_joiner_timer_closed(uv_handle_t *h)
{
    joiner_release(h->data);
}

/* Ends J; its link goes to LINK_TO (NULL: closed). */
static void joiner_end(joiner *j, bool keep_link)
{
    if (j->done)
        return;
    j->done = true;
    tt_sess_server *srv = j->srv;
    if (j->prev)
        j->prev->next = j->next;
    else
        srv->joiners = j->next;
    if (j->next)
        j->next->prev = j->prev;
    if (keep_link)
        j->outstanding--;
    else
        tt_link_close(j->link, joiner_release, j);
    uv_close((uv_handle_t *)&j->timer, on_joiner_timer_closed);
    maybe_free(srv);
}

/* The role of a server session. */

static void remove_from_table(tt_sess *s)
{
    tt_sess_server *srv = s->owner;
    if (!s->in_table)
        return;
    s->in_table = false;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    srv->n--;
}

static void on_linger(uv_timer_t *t)
{
    tt_sess *s = t->data;
    tt_sess_server *srv = s->owner;
    tt_info("session %s: no connection%s for %u ms; dropped, its streams are reset", s->name,
            s->split ? " on one of its legs" : "", srv->cfg.linger_ms);
    /* Out of the table first: a late rejoin hears "unknown session". */
    remove_from_table(s);
    tt_sess_fail(s, UV_ECONNRESET, "dropped after --session-linger", false);
}

/* The linger runs while a leg the session needs is missing: from the
 * earliest such loss, for --session-linger. lost_ms[slot] is when the
 * slot's leg went (0 while it is there). */
static void arm_linger(tt_sess *s)
{
    tt_sess_server *srv = s->owner;
    uint64_t since = 0;
    for (int slot = 0; slot < tt_sess_slots(s); slot++) {
        if (s->leg[slot] == NULL && s->lost_ms[slot] && (since == 0 || s->lost_ms[slot] < since))
            since = s->lost_ms[slot];
    }
    if (since == 0) {
        uv_timer_stop(&s->role_timer[0]);
        return;
    }
    uint64_t now = uv_now(srv->loop), end = since + srv->cfg.linger_ms;
    uv_timer_start(&s->role_timer[0], on_linger, end > now ? end - now : 0, 0);
}

static void server_leg_lost(tt_sess *s, int slot, int err)
{
    tt_sess_server *srv = s->owner;
    tt_info("session %s: its connection%s ended (%s); keeping it %u ms for the client to resume",
            s->name, tt_sess_leg_name(s, slot), uv_strerror(err), srv->cfg.linger_ms);
    s->lost_ms[slot] = uv_now(srv->loop);
    arm_linger(s);
}

static void server_released(tt_sess *s)
{
    tt_sess_server *srv = s->owner;
    tt_info("session %s: %s", s->name,
            s->clean  ? "ended"
            : s->dead ? "closed after its failure"
                      : "cut, its streams reset");
    remove_from_table(s);
    maybe_free(srv);
}

static const sess_role server_role = {server_leg_lost, server_released};

static tt_sess *find(tt_sess_server *srv, const uint8_t id[TT_SESS_ID_LEN])
{
    for (tt_sess *s = srv->list; s; s = s->next) {
        if (memcmp(s->id, id, TT_SESS_ID_LEN) == 0)
            return s;
    }
    return NULL;
}

/* Answers J's JOIN with STATUS and lets the connection linger. */
static void refuse(joiner *j, const tt_sess_join *jn, uint8_t status)
{
    tt_info("c%llu %s: session join refused: %s", (unsigned long long)j->link->id, j->peer,
            tt_sess_status_str(status));
    uint8_t out[TT_SESS_JOINED_LEN];
    tt_sess_joined_encode(status, 0, jn->mac, j->srv->key, out);
    tt_link *link = j->link;
    joiner_end(j, true);
    if (tt_link_write1(link, out, sizeof out) < 0) {
        tt_link_close(link, NULL, NULL);
        return;
    }
    tt_link_linger(link, 2000);
}

static void take_join(joiner *j, const uint8_t *early, size_t n)
{
    tt_sess_server *srv = j->srv;
    unsigned long long cid = (unsigned long long)j->link->id;
    if (!srv->has_key) {
        tt_info("c%llu %s: a client asks for a resumable session (--resume), which needs -k on "
                "this server; refused",
                cid, j->peer);
        joiner_end(j, false);
        return;
    }
    tt_sess_join jn;
    const char *why = NULL;
    if (tt_sess_join_decode(j->buf, srv->key, &jn, &why) < 0) {
        tt_info("c%llu %s: session join refused: %s", cid, j->peer, why);
        joiner_end(j, false);
        return;
    }
    uint64_t now = tt_sess_now_ms();
    uint64_t skew = now > jn.time_ms ? now - jn.time_ms : jn.time_ms - now;
    if (skew > srv->cfg.window_ms) {
        tt_info("c%llu %s: session join refused: stamped %llu s away from this server's clock", cid,
                j->peer, (unsigned long long)(skew / 1000));
        joiner_end(j, false);
        return;
    }
    int rc = tt_replay_check(&srv->replay, jn.nonce, now / 1000);
    if (rc != 0) {
        tt_info("c%llu %s: session join refused: %s", cid, j->peer,
                rc == -EEXIST ? "replayed" : "the replay memory is full");
        joiner_end(j, false);
        return;
    }
    int role = (jn.flags & TT_SESS_ROLE_MASK) >> TT_SESS_ROLE_SHIFT;
    int slot = role == TT_SESS_ROLE_DOWN ? TT_SESS_DOWN : TT_SESS_UP;
    bool split = role != TT_SESS_ROLE_BOTH;
    tt_sess *s = find(srv, jn.id);
    bool rejoin = jn.flags & TT_SESS_JOIN_REJOIN;
    bool fresh = false; /* this JOIN makes the session */
    if (s && (s->dead || s->split != split)) {
        refuse(j, &jn, s->dead ? TT_SESS_UNKNOWN : TT_SESS_ROLE);
        return;
    }
    if (!rejoin && s == NULL) {
        if (srv->n >= srv->cfg.max_sessions) {
            refuse(j, &jn, TT_SESS_FULL);
            return;
        }
        s = tt_sess_new(srv->loop, &server_role, srv, jn.id);
        if (s == NULL) {
            joiner_end(j, false);
            return;
        }
        s->is_server = true;
        s->split = split;
        s->next = srv->list;
        if (srv->list)
            srv->list->prev = s;
        srv->list = s;
        s->in_table = true;
        srv->n++;
        fresh = true;
        /* The other leg of a split session has its linger from now. */
        s->lost_ms[!slot] = uv_now(srv->loop);
        tt_info("c%llu %s: session %s%s begins", cid, j->peer, s->name, tt_sess_leg_name(s, slot));
    } else if (!rejoin) {
        /* A split session's legs join in either order, each first with a
         * new JOIN; a second new JOIN for a slot, or for another kind of
         * session, is a clash of ids. */
        if (!split || s->made[slot] || s->leg[slot]) {
            refuse(j, &jn, TT_SESS_IN_USE);
            return;
        }
        tt_info("c%llu %s: session %s%s joins", cid, j->peer, s->name, tt_sess_leg_name(s, slot));
    } else {
        if (s == NULL) {
            refuse(j, &jn, TT_SESS_UNKNOWN);
            return;
        }
        if (jn.counter <= s->counter[slot]) {
            refuse(j, &jn, TT_SESS_STALE);
            return;
        }
        /* The client's offset restarts the server's sending when this leg
         * carries it; on a split session's up leg it only acknowledges. */
        uint64_t resend = 0;
        int arc;
        if (slot == tt_sess_tx(s)) {
            resend = s->core.snd_nxt > jn.offset ? s->core.snd_nxt - jn.offset : 0;
            arc = tt_sess_core_rejoin(&s->core, jn.offset);
        } else {
            arc = tt_sess_core_ack(&s->core, jn.offset);
        }
        if (arc < 0) {
            refuse(j, &jn, TT_SESS_RANGE);
            return;
        }
        s->counter[slot] = jn.counter;
        tt_info("c%llu %s: session %s%s resumed (join %u), resending %llu bytes", cid, j->peer,
                s->name, tt_sess_leg_name(s, slot), (unsigned)jn.counter,
                (unsigned long long)resend);
    }
    uint8_t out[TT_SESS_JOINED_LEN];
    tt_sess_joined_encode(TT_SESS_OK, s->core.rcv_nxt, jn.mac, srv->key, out);
    tt_link *link = j->link;
    joiner_end(j, true);
    if (tt_link_write1(link, out, sizeof out) < 0) {
        tt_link_close(link, NULL, NULL);
        if (fresh)
            tt_sess_destroy(s, NULL, NULL);
        return;
    }
    s->lost_ms[slot] = 0;
    arm_linger(s);
    tt_sess_attach(s, slot, link, early, n);
    if (fresh)
        srv->cfg.on_session(srv->cfg.ud, &s->base);
}

static void on_join_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    joiner *j = ud;
    size_t take = TT_SESS_JOIN_LEN - j->have;
    if (take > len)
        take = len;
    memcpy(j->buf + j->have, data, take);
    j->have += take;
    if (j->have == TT_SESS_JOIN_LEN) {
        tt_link_read_stop(j->link);
        take_join(j, data + take, len - take);
    }
}

static void on_join_eof(tt_link *l, void *ud)
{
    (void)l;
    joiner *j = ud;
    tt_debug("c%llu %s: closed during the session join", (unsigned long long)j->link->id, j->peer);
    joiner_end(j, false);
}

static void on_join_error(tt_link *l, void *ud, int err)
{
    (void)l;
    joiner *j = ud;
    tt_info("c%llu %s: %s during the session join", (unsigned long long)j->link->id, j->peer,
            uv_strerror(err));
    joiner_end(j, false);
}

static void on_join_drained(tt_link *l, void *ud)
{
    (void)l, (void)ud;
}

static const tt_link_handler join_handler = {on_join_data, on_join_eof, on_join_error,
                                             on_join_drained};

static void on_join_timeout(uv_timer_t *t)
{
    joiner *j = t->data;
    tt_info("c%llu %s: no session join in time", (unsigned long long)j->link->id, j->peer);
    joiner_end(j, false);
}

void tt_sess_server_accept(tt_sess_server *srv, tt_link *link, const uint8_t *early, size_t n)
{
    joiner *j = calloc(1, sizeof *j);
    if (j == NULL || srv->closing) {
        free(j);
        tt_link_close(link, NULL, NULL);
        return;
    }
    j->srv = srv;
    j->link = link;
    j->outstanding = 2;
    tt_link_peer(link, j->peer, sizeof j->peer);
    uv_timer_init(srv->loop, &j->timer);
    j->timer.data = j;
    j->next = srv->joiners;
    if (srv->joiners)
        srv->joiners->prev = j;
    srv->joiners = j;
    tt_link_set_handler(link, &join_handler, j);
    uv_timer_start(&j->timer, on_join_timeout, srv->cfg.handshake_timeout_ms, 0);
    if (n > 0)
        on_join_data(link, j, early, n);
    if (!j->done && tt_link_read_start(link) < 0)
        joiner_end(j, false);
}

tt_sess_server *tt_sess_server_new(uv_loop_t *loop, const tt_sess_server_cfg *cfg)
{
    tt_sess_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->loop = loop;
    srv->cfg = *cfg;
    if (srv->cfg.linger_ms == 0)
        srv->cfg.linger_ms = 60000;
    if (srv->cfg.handshake_timeout_ms == 0)
        srv->cfg.handshake_timeout_ms = 10000;
    if (srv->cfg.window_ms == 0)
        srv->cfg.window_ms = 120000;
    if (srv->cfg.max_sessions == 0)
        srv->cfg.max_sessions = 4096;
    if (cfg->psk) {
        if (tt_sess_join_key(cfg->psk, srv->key) != 0) {
            free(srv);
            return NULL;
        }
        srv->has_key = true;
    }
    srv->cfg.psk = NULL;
    /* A nonce is remembered for at least the window, so a JOIN replayed
     * within its time stamp's validity is always recognised. */
    tt_replay_init(&srv->replay, 4096, srv->cfg.window_ms / 1000 + 1);
    return srv;
}

unsigned tt_sess_server_count(const tt_sess_server *srv)
{
    return srv->n;
}

size_t tt_sess_server_held(const tt_sess_server *srv)
{
    size_t n = 0;
    for (const tt_sess *s = srv->list; s; s = s->next)
        n += sizeof *s + s->core.held + s->stash_len;
    return n;
}

void tt_sess_server_close(tt_sess_server *srv)
{
    /* Marked closing only after the joins end: ending the last one would
     * otherwise free SRV (maybe_free) while this loop still reads it. */
    while (srv->joiners)
        joiner_end(srv->joiners, false);
    srv->closing = true;
    maybe_free(srv);
}
