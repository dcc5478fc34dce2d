/* The native carrier, tt://. Client: connect to the server's port of the
 * moment (or a fixed one) and wrap the connection in a tt/1 link. Server:
 * listen on the ports of the current time slot and its neighbours, check each
 * client hello (key, clock window, replay), and treat everything that fails
 * in one indistinguishable way. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "carrier/carrier.h"
#include "carrier/children.h"
#include "carrier/ttlink.h"
#include "carrier/ttpad.h"
#include "codec/ttproto.h"
#include "core/log.h"
#include "core/replay.h"
#include "core/target.h"
#include "decoy/fallback.h"
#include "exit/dial.h"
#include "link/tcp.h"

extern const tt_carrier_type tt_carrier_tt;

/* tt://'s own options, as typed and then as checked. */
typedef struct tt_settings {
    const char *methods_text; /* -m */
    const char *range_text;   /* -r */
    unsigned hop_interval_ms;
    unsigned buffer_size;   /* largest plaintext per frame */
    const char *pad_text;   /* --padding-profile */
    unsigned hello_pad_max; /* padding of each first flight: at most this */
    unsigned frame_pad_max; /* padding of each frame: at most this */
    /* Filled by the check. */
    int methods[2]; /* AEADs, preferred first (a client uses methods[0]) */
    unsigned n_methods;
    int pad_profile;           /* enum tt_pad_profile */
    uint16_t port_lo, port_hi; /* the hopping range */
    unsigned hop_interval_s;   /* length of a port-hopping slot */
} tt_settings;

static const tt_carrier_optgroup tt_opts;

#define HOP_LISTENERS 3
#define REPLAY_CAP (1u << 17)
/* With --fallback, a first flight whose head authenticated (fresh, salt
 * unseen) but whose body stops arriving for this long is handed to the web
 * server. Everything else that is not a client is handed over at once; only
 * the key's holder, or someone replaying a real flight that never reached
 * this server within the replay window, can make the server wait this long
 * (docs/PROTOCOL.md, Probes). */
#define STALL_MS 1000
#define EXPLAIN_EVERY_MS (10 * 60 * 1000)

typedef struct hop_listener {
    uint16_t port;
    tt_tcp_listener *ls;
} hop_listener;

typedef struct ttc {
    tt_carrier base;
    tt_carrier_cfg cfg;
    tt_settings o;
    uint8_t psk[TT_PSK_LEN];
    uint8_t port_key[32];
    tt_ttlink_params lp[2]; /* per method */
    tt_target server;       /* client */
    /* Client: a server's refusals are explained once (not per stream),
     * again only after it has accepted a connection in between and at most
     * once in EXPLAIN_EVERY_MS, so that a server that sometimes refuses
     * (a clock at the window's edge) does not fill the log. */
    bool refusal_told, ports_told;
    uint64_t refusal_at, ports_at; /* loop time of the last explanation; 0: none */
    /* Server. */
    char host[TT_HOST_MAX + 1];
    hop_listener hops[HOP_LISTENERS];
    tt_tcp_listener *fixed;
    uv_timer_t hop_timer;
    bool hop_timer_on;
    tt_replay replay;
    tt_carrier_accept_cb accept_cb;
    void *accept_ud;
    /* One pre-generated ephemeral key pair: a handshake takes it, and the
     * next one is made as soon as that handshake waits for the other end
     * (the link's refill callback, through a zero timer so that it runs
     * after the write that started the wait). */
    tt_x25519_key spare;
    uv_timer_t refill;
    int handles;            /* open handles to close before freeing */
    tt_children handshakes; /* server: handshakes not yet closed, closed with the carrier */
} ttc;

static void schedule_refill(void *ud);
static void on_answered(void *ud, tt_link *link, int answer, uint64_t waited_ms);

static uint64_t wall_ms(const ttc *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms =
        (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (int64_t)c->cfg.clock_offset_s * 1000;
    return ms > 0 ? (uint64_t)ms : 0;
}

static uint64_t slot_of(const ttc *c, uint64_t ms)
{
    return tt_proto_hop_slot(c->port_key, ms, (uint64_t)c->o.hop_interval_s * 1000);
}

static uint16_t port_of(const ttc *c, uint64_t slot)
{
    return tt_proto_hop_port(c->port_key, slot, c->o.port_lo, c->o.port_hi);
}

static int common_init(ttc *c, uv_loop_t *loop, const tt_carrier_cfg *cfg, const char **why)
{
    c->cfg = *cfg;
    const tt_settings *o = tt_carrier_settings(cfg, &tt_opts);
    if (o == NULL) {
        *why = "internal: tt:// without its settings";
        return -EINVAL;
    }
    c->o = *o;
    c->base.type = &tt_carrier_tt;
    c->base.loop = loop;
    if (cfg->key == NULL) {
        *why = "tt:// needs a key: -k KEY (a password, or a key from 'tt keygen')";
        return -EINVAL;
    }
    bool is_password;
    if (tt_psk_derive(cfg->key, c->psk, &is_password) != 0 ||
        tt_proto_port_key(c->psk, c->port_key) != 0) {
        *why = "cannot derive keys from -k";
        return -EINVAL;
    }
    if (is_password)
        tt_debug("-k is a password; stretched with scrypt");
    uv_timer_init(loop, &c->refill);
    c->refill.data = c;
    c->handles = 1;
    for (unsigned i = 0; i < c->o.n_methods; i++) {
        c->lp[i] = (tt_ttlink_params){.alg = c->o.methods[i],
                                      .psk = c->psk,
                                      .frame_data = c->o.buffer_size,
                                      .pad_profile = c->o.pad_profile,
                                      .hello_pad_max = c->o.hello_pad_max,
                                      .frame_pad_max = c->o.frame_pad_max,
                                      .spare = &c->spare,
                                      .refill = schedule_refill,
                                      .refill_ud = c,
                                      .answered = on_answered,
                                      .answered_ud = c};
    }
    return 0;
}

static void on_refill(uv_timer_t *h)
{
    ttc *c = h->data;
    if (c->spare.pkey == NULL && tt_x25519_generate(&c->spare) != 0)
        tt_warn("cannot pre-generate a key pair");
}

/* A handshake took the spare key and now waits for the other end: the next
 * key is made in the meantime. Refilling on a later timer instead (2 ms)
 * put the work in the middle of the next connection's handshake whenever
 * connections came faster than that, and a handshake that found no spare
 * made its key pair on its own path. */
static void schedule_refill(void *ud)
{
    ttc *c = ud;
    if (c->spare.pkey == NULL && !uv_is_active((uv_handle_t *)&c->refill))
        uv_timer_start(&c->refill, on_refill, 0, 0);
}

static void ttc_close(tt_carrier *base);

/* Client. */

/* Whether an explanation last given at *AT may be given again now. */
static bool explain_now(ttc *c, bool *told, uint64_t *at)
{
    uint64_t now = uv_now(c->base.loop);
    if (*told || (*at != 0 && now - *at < EXPLAIN_EVERY_MS))
        return false;
    *told = true;
    *at = now;
    return true;
}

/* A server refuses a first flight (a wrong key or method, a clock out of
 * its window) with the same silence as any probe, and closes 1-2 handshake
 * timeouts later: the client cannot tell a refusal from a slow destination
 * before that close, and nothing earlier can be said without weakening the
 * server. At the close it names the likely causes, once per server, since
 * every stream meets the same refusal. */
static void on_answered(void *ud, tt_link *link, int answer, uint64_t waited_ms)
{
    ttc *c = ud;
    if (answer == TT_TTLINK_HELLO_OK) {
        c->refusal_told = false;
        return;
    }
    if (!explain_now(c, &c->refusal_told, &c->refusal_at))
        return;
    char peer[64];
    tt_link_peer(link, peer, sizeof peer);
    if (answer == TT_TTLINK_HELLO_SILENCE)
        tt_warn("tt server %s (%s) closed the connection %.1f s after this client's first "
                "message without answering: it refused it. Likely causes: a different key (-k), "
                "a method it does not accept (-m), or this machine's clock more than the "
                "server's --replay-window (default 120s) from its clock, or behind the clock of "
                "a server that has just restarted. A server answers every refused connection "
                "with this silence, so this is said once, not per stream",
                c->cfg.url.hp.host, peer, (double)waited_ms / 1000);
    else
        tt_warn("tt server %s (%s) answered with bytes that are not a tt/1 hello for this key "
                "and method. Likely causes: a different key (-k) or method (-m) (a server with "
                "--fallback hands such a client to its web site), or no tt server at that "
                "address. Said once, not per stream",
                c->cfg.url.hp.host, peer);
}

/* Hopping: no port of the moment took the connection. The ports come from
 * the key, -r, --hop-interval and the clock, so a mismatch in any of them
 * looks like a server that is not there; said once until a dial succeeds. */
static void tell_no_port(ttc *c, uint64_t slot, int err)
{
    if (!explain_now(c, &c->ports_told, &c->ports_at))
        return;
    tt_warn("tt server %s: no connection on ports %u, %u or %u, this moment's hopping ports "
            "(%s). Likely causes: different hop settings (-r, --hop-interval) or key (-k; the "
            "ports derive from it), clocks more than one --hop-interval apart, or no server "
            "running. Said once, not per stream",
            c->cfg.url.hp.host, port_of(c, slot), port_of(c, slot + 1), port_of(c, slot - 1),
            uv_strerror(err));
}

struct tt_carrier_dial {
    ttc *c;
    tt_dial *dial;
    tt_carrier_dial_cb cb;
    void *ud;
    uint64_t slot;
    int attempt; /* hopping: 0 current slot, 1 next, 2 previous */
    bool cancelled;
};

static int dial_attempt(tt_carrier_dial *d);

static void on_dialed(void *ud, uint8_t rep, int err, tt_link *lower)
{
    tt_carrier_dial *d = ud;
    ttc *c = d->c;
    d->dial = NULL;
    (void)rep;
    if (lower == NULL && !d->cancelled && c->cfg.url.hp.port == 0 && d->attempt < 2) {
        /* The clocks may straddle a slot boundary: try the neighbours. */
        d->attempt++;
        if (dial_attempt(d) == 0)
            return;
    }
    if (c->cfg.url.hp.port == 0 && !d->cancelled) {
        if (lower == NULL)
            tell_no_port(c, d->slot, err != 0 ? err : UV_ECONNREFUSED);
        else
            c->ports_told = false;
    }
    tt_carrier_dial_cb cb = d->cb;
    void *cud = d->ud;
    free(d);
    if (lower == NULL) {
        cb(cud, err != 0 ? err : UV_ECONNREFUSED, NULL);
        return;
    }
    tt_link *l = tt_ttlink_client(lower, &c->lp[0], wall_ms(c) / 1000);
    cb(cud, l ? 0 : UV_ENOMEM, l);
}

static int dial_attempt(tt_carrier_dial *d)
{
    ttc *c = d->c;
    tt_target t = c->server;
    if (c->cfg.url.hp.port != 0) {
        t.port = c->cfg.url.hp.port;
    } else {
        static const int delta[3] = {0, 1, -1};
        t.port = port_of(c, d->slot + (uint64_t)(int64_t)delta[d->attempt]);
    }
    tt_dial_opts opts = {.acl = NULL,
                         .timeout_ms = c->cfg.connect_timeout_ms,
                         .resolver = c->cfg.resolver,
                         .fast_open = c->cfg.fast_open};
    return tt_dial_start(c->base.loop, &t, &opts, on_dialed, d, &d->dial);
}

static int ttc_dial(tt_carrier *base, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                    tt_carrier_dial **out)
{
    (void)t; /* the target goes in the stream header */
    ttc *c = (ttc *)base;
    tt_carrier_dial *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->c = c;
    d->cb = cb;
    d->ud = ud;
    if (c->cfg.url.hp.port == 0)
        d->slot = slot_of(c, wall_ms(c));
    int rc = dial_attempt(d);
    if (rc < 0) {
        free(d);
        return rc;
    }
    if (out)
        *out = d;
    return 0;
}

/* Hopping ports: until the next slot begins, and a little more, so that a
 * client whose clock is slightly behind the server's already dials the new
 * slot's port (the server listens on the neighbouring slots' ports too). */
static uint64_t ttc_leg_lifetime(tt_carrier *base)
{
    ttc *c = (ttc *)base;
    if (c->cfg.url.hp.port != 0)
        return 0;
    uint64_t now = wall_ms(c);
    uint64_t next =
        tt_proto_hop_start(c->port_key, slot_of(c, now) + 1, (uint64_t)c->o.hop_interval_s * 1000);
    return (next > now ? next - now : 0) + 200;
}

static void ttc_dial_cancel(tt_carrier_dial *d)
{
    d->cancelled = true;
    if (d->dial)
        tt_dial_cancel(d->dial);
}

static int ttc_client_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                          const char **why)
{
    ttc *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    int rc = common_init(c, loop, cfg, why);
    if (rc == 0 && tt_target_set(&c->server, cfg->url.hp.host, 1) != 0) {
        *why = "the server address is not a valid host";
        rc = -EINVAL;
    }
    if (rc < 0) {
        ttc_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* Server: the handshake of one incoming connection. */

typedef struct hs {
    ttc *c;
    tt_child child; /* in c->handshakes while not closed */
    tt_link *lower;
    tt_link *fb; /* --fallback: the web server's connection, parked until judged */
    uv_timer_t timer;
    uint64_t deadline; /* loop time at which an unauthenticated connection closes */
    uint8_t *buf;
    size_t have, need;
    size_t body; /* 0 until the length is known */
    uint64_t ts; /* the flight's time stamp, once the length is known */
    int method;
    tt_aead hello_rx;
    bool read_any;   /* a first read arrived */
    bool failed;     /* not authenticated: draining or handed to the fallback */
    bool fb_dialing; /* the fallback dial is in flight */
    int fb_err;      /* why the fallback could not be reached, told at the failure */
    bool closed;
    int outstanding; /* link close, timer close, fallback dial */
    char peer[64];
} hs;

#define HS_MAX                                                                                     \
    (TT_CLIENT_PREFIX_LEN + TT_CLIENT_HELLO_FIXED + TT_HELLO_MAX_DATA + TT_HELLO_MAX_PAD +         \
     TT_AEAD_TAG_LEN)

static void hs_release(void *ud)
{
    hs *h = ud;
    if (--h->outstanding > 0)
        return;
    tt_aead_free(&h->hello_rx);
    free(h->buf);
    free(h);
}

static void hs_timer_closed(uv_handle_t *t)
{
    hs_release(t->data);
}

/* After this, nothing of the handshake uses its carrier: its links and timer
 * are closed (no more callbacks) and a fallback dial still in flight finds it
 * closed. So the carrier may go away with handshakes still releasing. */
static void hs_close(hs *h)
{
    if (h->closed)
        return;
    h->closed = true;
    tt_child_remove(&h->child);
    if (h->fb)
        tt_link_close(h->fb, NULL, NULL);
    h->fb = NULL;
    if (h->lower)
        tt_link_close(h->lower, hs_release, h);
    else
        h->outstanding--;
    uv_close((uv_handle_t *)&h->timer, hs_timer_closed);
}

static void hs_close_child(void *ud)
{
    hs_close(ud);
}

static void hs_fail(hs *h, const char *why, const uint8_t *rest, size_t rest_len);

static void on_deadline(uv_timer_t *t)
{
    hs *h = t->data;
    /* Without a fallback, or when it cannot be reached, the deadline ends
     * every connection that did not authenticate. With one, a hello that
     * stalled (or never began) is handed over like any other failure. */
    if (!h->failed && h->c->cfg.has_fallback) {
        hs_fail(h, uv_now(t->loop) < h->deadline ? "stalled during the hello" : "no first flight",
                NULL, 0);
        return;
    }
    hs_close(h);
}

/* The peer's connection, with every byte it sent, now belongs to the web
 * server: from here on what the peer sees is the web server's doing,
 * including when and how the connection ends. */
static void hs_hand_over(hs *h)
{
    tt_link *lower = h->lower, *fb = h->fb;
    h->lower = NULL;
    h->fb = NULL;
    tt_link_read_stop(lower);
    tt_link_read_stop(fb);
    tt_fallback_relay(lower, fb, h->buf, h->have, h->c->cfg.idle_timeout_ms, h->peer);
    hs_close(h);
}

/* The parked web server connection: a web server does not speak first, so
 * its bytes or its end mean it gave up waiting (its own idle timeout) or
 * is not a web server; either way the peer meets it now. */
static void parked_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    hs *h = ud;
    (void)l;
    if (tt_link_write1(h->lower, data, len) < 0) {
        hs_close(h);
        return;
    }
    hs_fail(h, "the fallback spoke first", NULL, 0);
}

static void parked_end(hs *h)
{
    /* Its end reaches the peer as the web server's close would. */
    hs_close(h);
}

static void parked_eof(tt_link *l, void *ud)
{
    (void)l;
    parked_end(ud);
}

static void parked_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    parked_end(ud);
}

static const tt_link_handler parked_handler = {
    .on_data = parked_data,
    .on_eof = parked_eof,
    .on_error = parked_error,
    .on_drained = NULL,
};

static void on_fallback(void *ud, uint8_t rep, int err, tt_link *fb)
{
    hs *h = ud;
    h->outstanding--;
    h->fb_dialing = false;
    (void)rep;
    if (h->closed) {
        if (fb)
            tt_link_close(fb, NULL, NULL);
        return;
    }
    if (fb == NULL) {
        /* Told only for a connection that needed it: a real client's
         * handshake does not log the web server's absence. */
        h->fb_err = err != 0 ? err : UV_ECONNREFUSED;
        if (h->failed)
            tt_fallback_unreachable(h->lower, h->peer, h->fb_err);
        /* Keep draining until the deadline, as without a fallback. */
        uint64_t now = uv_now(h->c->base.loop);
        uv_timer_start(&h->timer, on_deadline, h->deadline > now ? h->deadline - now : 0, 0);
        if (h->failed && tt_link_read_start(h->lower) < 0)
            hs_close(h);
        return;
    }
    h->fb = fb;
    if (h->failed) {
        hs_hand_over(h);
        return;
    }
    tt_link_set_handler(fb, &parked_handler, h);
    if (tt_link_read_start(fb) < 0)
        hs_close(h);
}

/* Not a client that knows the key (or a replay, or a stale clock): from
 * here on the connection behaves the same whatever the reason. REST is what
 * the current read held beyond the bytes already kept: the fallback must get
 * every byte the peer sent.
 *
 * Without a fallback nothing changes for the peer: the connection is read
 * and discarded until the deadline drawn when it was accepted, whatever it
 * sends, a FIN included. With one, the bytes go to the web server at once
 * (its connection was opened at accept, so no dial is waited for). */
static void hs_fail(hs *h, const char *why, const uint8_t *rest, size_t rest_len)
{
    if (h->failed)
        return;
    h->failed = true;
    ttc *c = h->c;
    tt_info("c%llu %s: not a tt client (%s)", (unsigned long long)h->lower->id, h->peer, why);
    if (!c->cfg.has_fallback)
        return;
    if (rest_len > 0) {
        uint8_t *b = realloc(h->buf, h->have + rest_len);
        if (b != NULL) {
            memcpy(b + h->have, rest, rest_len);
            h->buf = b;
            h->have += rest_len;
        }
    }
    if (h->fb) {
        hs_hand_over(h);
        return;
    }
    if (h->fb_dialing) {
        tt_link_read_stop(h->lower);
        return;
    }
    /* The fallback was unreachable: drain until the deadline. */
    tt_fallback_unreachable(h->lower, h->peer, h->fb_err);
    uint64_t now = uv_now(c->base.loop);
    uv_timer_start(&h->timer, on_deadline, h->deadline > now ? h->deadline - now : 0, 0);
}

/* The sealed head is open: why a flight with this stamp and salt cannot
 * be accepted, or NULL. Judged before the body arrives, so that a recorded
 * flight's beginning (stale, or with a salt already seen) is refused at
 * once rather than waited for. */
static const char *hs_refusal(hs *h)
{
    ttc *c = h->c;
    uint64_t now = wall_ms(c) / 1000;
    uint64_t skew = h->ts > now ? h->ts - now : now - h->ts;
    if (skew > c->cfg.replay_window_s)
        return "clock outside the window";
    /* The replay memory begins empty with this process, so a first flight
     * that a process before it accepted (a restart) would find no trace of
     * itself here. Flights stamped before the start are refused: a real
     * client's stamp is its clock, so only a client whose clock is behind
     * the server's pays, for as long as it is behind, once after each start
     * (docs/PROTOCOL.md). */
    if (!tt_replay_covers(&c->replay, h->ts))
        return "stamped before this server started";
    if (tt_replay_seen(&c->replay, h->buf))
        return "replayed hello";
    return NULL;
}

static void hs_accepted(hs *h, const tt_client_hello *ch, const uint8_t *extra, size_t xlen)
{
    ttc *c = h->c;
    uint64_t now = wall_ms(c) / 1000;
    /* Checked again with the body in: the clock moved, and the same flight
     * may have been accepted on another connection meanwhile. */
    const char *why = hs_refusal(h);
    if (why != NULL) {
        hs_fail(h, why, extra, xlen);
        return;
    }
    int rc = tt_replay_check(&c->replay, h->buf, now);
    if (rc == -EEXIST) {
        hs_fail(h, "replayed hello", extra, xlen);
        return;
    }
    if (rc < 0) {
        tt_warn("replay memory full: refusing new connections for now");
        hs_fail(h, "replay memory full", extra, xlen);
        return;
    }
    tt_link *lower = h->lower;
    tt_link_read_stop(lower);
    h->lower = NULL;
    tt_link *l = tt_ttlink_server(lower, &c->lp[h->method], h->buf, ch->cpub, ch->early, ch->elen,
                                  extra, xlen);
    hs_close(h); /* also closes the parked fallback connection */
    if (l != NULL) {
        tt_tcp_link_trust(l); /* never shed when descriptors run short */
        c->accept_cb(c->accept_ud, l);
    }
}

/* The salt and sealed head are in: which method, if any, opens it. */
static int hs_open_len(hs *h, size_t *body)
{
    ttc *c = h->c;
    uint8_t hc2s[32], hs2c[32];
    if (tt_proto_hello_keys(c->psk, h->buf, hc2s, hs2c) != 0)
        return -1;
    OPENSSL_cleanse(hs2c, sizeof hs2c);
    int found = -1;
    for (unsigned i = 0; i < c->o.n_methods && found < 0; i++) {
        tt_aead_free(&h->hello_rx);
        if (tt_aead_init(&h->hello_rx, c->o.methods[i], hc2s, false) == 0 &&
            tt_hello_open_len(&h->hello_rx, h->buf + TT_SALT_LEN, true, body, &h->ts) == 0)
            found = (int)i;
    }
    OPENSSL_cleanse(hc2s, sizeof hc2s);
    return found;
}

static void hs_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    hs *h = ud;
    (void)l;
    if (h->failed)
        return; /* drained: read and dropped, however much arrives */
    ttc *c = h->c;
    bool first = !h->read_any;
    h->read_any = true;
    size_t take = h->need - h->have;
    if (take > len)
        take = len;
    memcpy(h->buf + h->have, data, take);
    h->have += take;
    /* A client writes its whole first flight at once, so its first read
     * holds at least the salt and sealed head (58 bytes, in one TCP
     * segment). Anything shorter is judged at once, so that a short request
     * reaches the fallback web server without waiting for bytes that will
     * not come. */
    if (first && h->have < TT_CLIENT_PREFIX_LEN && c->cfg.has_fallback) {
        hs_fail(h, "first read too short for a first flight", NULL, 0);
        return;
    }
    if (h->have < h->need) {
        if (c->cfg.has_fallback && h->body != 0) {
            /* An authenticated length whose body stops arriving. */
            uint64_t now = uv_now(c->base.loop);
            uint64_t t = now + STALL_MS < h->deadline ? STALL_MS : h->deadline - now;
            uv_timer_start(&h->timer, on_deadline, t, 0);
        }
        return;
    }
    if (h->body == 0) {
        size_t body = 0;
        int found = hs_open_len(h, &body);
        if (found < 0) {
            hs_fail(h, "authentication failed", data + take, len - take);
            return;
        }
        h->method = found;
        const char *why = hs_refusal(h);
        if (why != NULL) {
            hs_fail(h, why, data + take, len - take);
            return;
        }
        h->body = body;
        h->need = TT_CLIENT_PREFIX_LEN + body;
        hs_data(l, ud, data + take, len - take);
        return;
    }
    /* Open a copy: decryption writes before it verifies, and a connection
     * that fails must reach the fallback with the bytes it really sent. */
    uint8_t *body = malloc(h->body);
    if (body == NULL) {
        hs_close(h);
        return;
    }
    memcpy(body, h->buf + TT_CLIENT_PREFIX_LEN, h->body);
    tt_client_hello ch;
    if (tt_client_hello_open(&h->hello_rx, body, h->body, &ch) != 0)
        hs_fail(h, "authentication failed", data + take, len - take);
    else
        hs_accepted(h, &ch, data + take, len - take);
    OPENSSL_cleanse(body, h->body);
    free(body);
}

static void hs_eof(tt_link *l, void *ud)
{
    (void)l;
    hs *h = ud;
    /* A FIN changes nothing a prober can see: without a fallback the
     * connection still ends at its deadline (closing at the FIN would tell
     * where the server stopped waiting); with one, the web server gets the
     * bytes now, since no more can come. */
    if (!h->failed)
        hs_fail(h, "closed during the hello", NULL, 0);
}

static void hs_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    hs_close(ud);
}

static const tt_link_handler hs_handler = {
    .on_data = hs_data,
    .on_eof = hs_eof,
    .on_error = hs_error,
    .on_drained = NULL,
};

static void on_accept(void *ud, tt_link *lower)
{
    ttc *c = ud;
    hs *h = calloc(1, sizeof *h);
    if (h != NULL)
        h->buf = malloc(HS_MAX);
    if (h == NULL || h->buf == NULL) {
        free(h);
        tt_link_close(lower, NULL, NULL);
        return;
    }
    h->c = c;
    tt_child_add(&c->handshakes, &h->child, hs_close_child, h);
    h->lower = lower;
    h->need = TT_CLIENT_PREFIX_LEN;
    h->outstanding = 2;
    tt_link_peer(lower, h->peer, sizeof h->peer);
    uv_timer_init(c->base.loop, &h->timer);
    h->timer.data = h;
    /* Whatever happens, an unauthenticated connection ends at a random
     * moment between one and two handshake timeouts after it began, so its
     * end reveals nothing about what was received. */
    unsigned t = c->cfg.handshake_timeout_ms ? c->cfg.handshake_timeout_ms : 10000;
    h->deadline = uv_now(c->base.loop) + tt_random_range(t, 2 * t);
    uv_timer_start(&h->timer, on_deadline, h->deadline - uv_now(c->base.loop), 0);
    tt_link_set_handler(lower, &hs_handler, h);
    /* With a fallback the web server is connected now, beside the
     * handshake: what is not a tt client reaches it without waiting for a
     * dial, and a peer that sends nothing meets the web server's own idle
     * close, timed from its connect as it would be. A real client's
     * connection to it is closed unused. */
    if (c->cfg.has_fallback) {
        int rc = tt_fallback_dial(c->base.loop, &c->cfg, on_fallback, h);
        if (rc == 0) {
            h->outstanding++;
            h->fb_dialing = true;
        } else {
            h->fb_err = rc;
        }
    }
    if (tt_link_read_start(lower) < 0)
        hs_close(h);
}

/* Server: listeners. */

static void hop_update(ttc *c);

static void on_hop_timer(uv_timer_t *t)
{
    hop_update(t->data);
}

static bool port_wanted(const uint16_t *want, uint16_t port)
{
    for (int i = 0; i < HOP_LISTENERS; i++) {
        if (want[i] == port)
            return true;
    }
    return false;
}

/* Listens on the ports of the previous, current and next slots and closes
 * the others; established connections are not affected by a listener's end. */
static void hop_update(ttc *c)
{
    uint64_t now = wall_ms(c);
    uint64_t slot = slot_of(c, now);
    uint16_t want[HOP_LISTENERS] = {port_of(c, slot - 1), port_of(c, slot), port_of(c, slot + 1)};
    for (int i = 0; i < HOP_LISTENERS; i++) {
        if (c->hops[i].ls && !port_wanted(want, c->hops[i].port)) {
            tt_debug("hopping: closing port %u", c->hops[i].port);
            tt_tcp_listener_close(c->hops[i].ls);
            c->hops[i].ls = NULL;
        }
    }
    for (int w = 0; w < HOP_LISTENERS; w++) {
        bool have = false;
        for (int i = 0; i < HOP_LISTENERS; i++)
            have |= c->hops[i].ls && c->hops[i].port == want[w];
        if (have)
            continue;
        for (int i = 0; i < HOP_LISTENERS; i++) {
            if (c->hops[i].ls)
                continue;
            int rc = tt_tcp_listen(c->base.loop, c->host, want[w], on_accept, c, &c->hops[i].ls);
            if (rc < 0) {
                tt_warn("hopping: cannot listen on %s port %u: %s", c->host, want[w],
                        uv_strerror(rc));
                c->hops[i].ls = NULL;
            } else {
                c->hops[i].port = want[w];
                tt_carrier_listener_setup(&c->cfg, c->hops[i].ls);
                tt_tcp_listener_shed(c->hops[i].ls);
                tt_debug("hopping: listening on port %u", want[w]);
            }
            break;
        }
    }
    uint64_t next = tt_proto_hop_start(c->port_key, slot + 1, (uint64_t)c->o.hop_interval_s * 1000);
    uv_timer_start(&c->hop_timer, on_hop_timer, next > now ? next - now + 1 : 1, 0);
}

static int ttc_server_new(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb,
                          void *ud, tt_carrier **out, const char **why)
{
    ttc *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    int rc = common_init(c, loop, cfg, why);
    const char *host = cfg->url.hp.host;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    snprintf(c->host, sizeof c->host, "%s", host);
    c->accept_cb = cb;
    c->accept_ud = ud;
    tt_replay_init(&c->replay, REPLAY_CAP, 2 * (uint64_t)cfg->replay_window_s + 1);
    /* Listening begins with the next whole second, the first one the
     * replay memory covers: a client that connected earlier would be
     * refused for its stamp. */
    if (rc == 0)
        uv_sleep((unsigned)tt_replay_begin(&c->replay, wall_ms(c)));
    uv_timer_init(loop, &c->hop_timer);
    c->hop_timer.data = c;
    c->hop_timer_on = true;
    c->handles++;
    if (rc == 0 && cfg->url.hp.port != 0) {
        rc = tt_tcp_listen(loop, c->host, cfg->url.hp.port, on_accept, c, &c->fixed);
        if (rc < 0)
            *why = rc == UV_EINVAL ? "the listen address must be an IP address" : uv_strerror(rc);
        else
            tt_carrier_listener_setup(cfg, c->fixed);
        if (rc == 0) /* unauthenticated connections go first when descriptors run short */
            tt_tcp_listener_shed(c->fixed);
    } else if (rc == 0) {
        struct sockaddr_storage ss;
        if (uv_ip4_addr(c->host, 0, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(c->host, 0, (struct sockaddr_in6 *)&ss) != 0) {
            *why = "the listen address must be an IP address";
            rc = -EINVAL;
        } else {
            hop_update(c);
        }
    }
    if (rc < 0) {
        c->base.type->close(&c->base);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static const char *ttc_describe(tt_carrier *base, char *buf, size_t len)
{
    ttc *c = (ttc *)base;
    char url[TT_HOST_MAX + 32];
    if (c->accept_cb == NULL) {
        /* A client: where it connects; with hopping, the port of the moment
         * (a dial also tries the neighbouring slots'). */
        const tt_hostport *hp = &c->cfg.url.hp;
        unsigned port = hp->port ? hp->port : port_of(c, slot_of(c, wall_ms(c)));
        tt_url_format("tt", NULL, hp->host, port, NULL, url, sizeof url);
        snprintf(buf, len, "%s%s", url, hp->port ? "" : " (hopping port)");
        return buf;
    }
    unsigned port = c->fixed ? (unsigned)tt_tcp_listener_port(c->fixed) : 0;
    tt_url_format("tt", NULL, c->host, port, NULL, url, sizeof url);
    if (c->fixed)
        snprintf(buf, len, "%s (%s)", url, tt_aead_name(c->o.methods[0]));
    else
        snprintf(buf, len, "%s, ports hopping in %u-%u every %u s (%s)", url, c->o.port_lo,
                 c->o.port_hi, c->o.hop_interval_s, tt_aead_name(c->o.methods[0]));
    return buf;
}

static void on_handle_closed(uv_handle_t *h)
{
    ttc *c = h->data;
    if (--c->handles > 0)
        return;
    tt_replay_free(&c->replay);
    tt_x25519_free(&c->spare);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static void ttc_close(tt_carrier *base)
{
    ttc *c = (ttc *)base;
    /* A handshake keeps a pointer to its carrier: none may outlive it open. */
    tt_children_close(&c->handshakes);
    for (int i = 0; i < HOP_LISTENERS; i++) {
        if (c->hops[i].ls)
            tt_tcp_listener_close(c->hops[i].ls);
        c->hops[i].ls = NULL;
    }
    if (c->fixed)
        tt_tcp_listener_close(c->fixed);
    c->fixed = NULL;
    if (c->hop_timer_on)
        uv_close((uv_handle_t *)&c->hop_timer, on_handle_closed);
    if (c->refill.loop != NULL)
        uv_close((uv_handle_t *)&c->refill, on_handle_closed);
    if (c->handles == 0) {
        /* Failed before any handle existed. */
        OPENSSL_cleanse(c, sizeof *c);
        free(c);
    }
}

#define O(field) offsetof(tt_settings, field)
static const tt_opt tt_rows[] = {
    {'m', "methods", "METHODS", TT_OPT_STRING, O(methods_text),
     "AEAD: chacha20-poly1305 (default) or aes-256-gcm; a server accepts a comma list", 0, 0},
    {'r', "port-range", "LO-HI", TT_OPT_STRING, O(range_text),
     "the port-hopping range (default 1024-65535)", 0, 0},
    /* The name this option had before TT's own --port-range. */
    {0, "range", "LO-HI", TT_OPT_STRING, O(range_text), NULL, 0, 0},
    {0, "hop-interval", "DURATION", TT_OPT_DURATION, O(hop_interval_ms),
     "average length of a port-hopping slot (default 60s; its start derives from the key)", 0, 0},
    {0, "buffer-size", "N", TT_OPT_UINT, O(buffer_size),
     "largest plaintext bytes per frame (default 4096, at most 16384)", 1, 16384},
    {0, "padding-profile", "PROFILE", TT_OPT_STRING, O(pad_text),
     "sizes on the wire: shaped (default: first flights sized like common ones, small writes "
     "padded to a random size), uniform (0..N on every hello and frame) or off",
     0, 0},
    {0, "hello-padding", "N", TT_OPT_UINT, O(hello_pad_max),
     "most padding of a first flight (default 2048 shaped, 1024 uniform; at most 2048)", 0, 2048},
    {0, "frame-padding", "N", TT_OPT_UINT, O(frame_pad_max),
     "most padding of a frame (default 1024 shaped, 31 uniform; at most 1024)", 0, 1024},
};
#undef O

static void tt_opts_init(void *p)
{
    tt_settings *o = p;
    o->hop_interval_ms = 60000;
    o->buffer_size = 4096;
    o->hello_pad_max = TT_HELLO_MAX_PAD;
    o->frame_pad_max = TT_FRAME_MAX_PAD;
}

/* A client offers one AEAD; a server may accept both. */
static int parse_methods(const char *text, tt_settings *o, bool server)
{
    char buf[64];
    if (strlen(text) >= sizeof buf)
        return -EINVAL;
    strcpy(buf, text);
    o->n_methods = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int m = tt_aead_parse(tok);
        if (m < 0 || o->n_methods == 2 || (!server && o->n_methods == 1))
            return -EINVAL;
        if (o->n_methods == 1 && o->methods[0] == m)
            return -EINVAL;
        o->methods[o->n_methods++] = m;
    }
    return o->n_methods > 0 ? 0 : -EINVAL;
}

static int tt_opts_check(void *p, const tt_opt_set *set, bool server, char *why, size_t len)
{
    tt_settings *o = p;
    if (parse_methods(o->methods_text ? o->methods_text : "chacha20-poly1305", o, server) != 0) {
        snprintf(why, len,
                 server ? "invalid -m '%s': chacha20-poly1305 and/or aes-256-gcm, comma-separated"
                        : "invalid -m '%s': chacha20-poly1305 or aes-256-gcm",
                 o->methods_text);
        return -EINVAL;
    }
    o->port_lo = 1024;
    o->port_hi = 65535;
    if (o->range_text) {
        unsigned a, b;
        int n = 0;
        if (sscanf(o->range_text, "%5u-%5u%n", &a, &b, &n) != 2 || o->range_text[n] != '\0' ||
            a < 1 || b > 65535 || a > b) {
            snprintf(why, len, "invalid -r '%s': expected LO-HI within 1-65535", o->range_text);
            return -EINVAL;
        }
        o->port_lo = (uint16_t)a;
        o->port_hi = (uint16_t)b;
    }
    if (o->hop_interval_ms < 1000) {
        snprintf(why, len, "--hop-interval must be at least 1s");
        return -EINVAL;
    }
    o->hop_interval_s = o->hop_interval_ms / 1000;
    o->pad_profile = tt_pad_profile_parse(o->pad_text ? o->pad_text : "shaped");
    if (o->pad_profile < 0) {
        snprintf(why, len, "invalid --padding-profile '%s': shaped, uniform or off", o->pad_text);
        return -EINVAL;
    }
    /* The uniform profile keeps the limits it had before the shaped one
     * (whose draws need room up to the protocol's limits). */
    if (o->pad_profile == TT_PAD_UNIFORM && !tt_opts_given(set, "hello-padding"))
        o->hello_pad_max = 1024;
    if (o->pad_profile == TT_PAD_UNIFORM && !tt_opts_given(set, "frame-padding"))
        o->frame_pad_max = 31;
    if (o->buffer_size < 1400)
        tt_warn("--buffer-size %u is below 1400: small frames leave a recognisable traffic "
                "pattern",
                o->buffer_size);
    return 0;
}

static const tt_carrier_optgroup tt_opts = {
    .sides = TT_SIDE_BOTH,
    .opts = tt_rows,
    .n_opts = sizeof tt_rows / sizeof tt_rows[0],
    .size = sizeof(tt_settings),
    .init = tt_opts_init,
    .check = tt_opts_check,
};

static const tt_carrier_optgroup *const tt_groups[] = {
    &tt_carrier_key_opts, &tt_carrier_replay_opts, &tt_carrier_decoy_opts, &tt_opts, NULL,
};

const tt_carrier_type tt_carrier_tt = {
    .scheme = "tt",
    .url_form = "[tt://]HOST[:PORT]",
    .summary = "tt/1: encrypted (AEAD, forward secrecy), hopping ports without a PORT, probe "
               "resistance",
    .flags = TT_CARRIER_NEEDS_KEY | TT_CARRIER_PORT_OPTIONAL,
    .groups = tt_groups,
    .client_new = ttc_client_new,
    .server_new = ttc_server_new,
    .dial = ttc_dial,
    .dial_cancel = ttc_dial_cancel,
    .describe = ttc_describe,
    .leg_lifetime = ttc_leg_lifetime,
    .close = ttc_close,
};
