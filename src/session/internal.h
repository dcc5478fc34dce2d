/* What the three files of the session layer share. sess.c: the session link
 * (the tt_link the mux runs over) and its current leg; client.c: the client's
 * carrier wrapper, its join and reconnection; server.c: the server's table of
 * sessions, joins and linger. */
#ifndef TT_SESSION_INTERNAL_H
#define TT_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "codec/sess.h"
#include "link/link.h"
#include "session/core.h"

typedef struct tt_sess tt_sess;

/* What a role does when its session's leg is lost or the owner lets go. */
typedef struct sess_role {
    /* The leg in SLOT ended (ERR) without the session ending: reconnect it,
     * or linger. */
    void (*leg_lost)(tt_sess *s, int slot, int err);
    /* The owner closed the session link: forget S (cancel dials, leave the
     * table). Runs once; no role callback follows. */
    void (*released)(tt_sess *s);
} sess_role;

/* A leg silent this long while data waits for its acknowledgment is taken
 * as broken; silent this long at all (the client's mux pings every 30 s),
 * too. */
#define TT_SESS_LIVE_MS 20000u
#define TT_SESS_IDLE_MS 100000u
/* Delay of an acknowledgment that is not yet due. */
#define TT_SESS_ACK_DELAY_MS 20u
/* The leg's queue is kept under this; more waits in the session's buffer. */
#define TT_SESS_LEG_BOUND (256u * 1024)

/* A session's legs. One that carries both directions uses slot 0 alone; a
 * split session (docs/SESSION.md, "Split paths") has its up leg (the
 * client's DATA, the server's ACKs) in slot 0 and its down leg (the
 * server's DATA, the client's ACKs) in slot 1. */
#define TT_SESS_UP 0
#define TT_SESS_DOWN 1

struct tt_sess {
    tt_link base; /* the session link */
    const sess_role *role;
    void *owner; /* the role's object: the client carrier or the server table */
    tt_sess_core core;
    tt_sess_reader rd[2];
    tt_link *leg[2]; /* the carrier connections now, or NULL while missing */
    uint64_t last_rx_ms[2];
    uint32_t counter[2]; /* the last join counter of each slot */
    bool made[2];        /* the slot has joined once */
    bool split;          /* up and down legs (else one leg, slot 0, both ways) */
    bool is_server;
    uint8_t id[TT_SESS_ID_LEN];
    char name[20]; /* "s1a2b3c4d" for log lines */
    /* role_timer: the client's per slot (retry, join answer, migration);
     * the server's linger in [0]. */
    uv_timer_t ack_timer, live_timer, role_timer[2];
    uv_idle_t idle; /* deferred work: stashed input, the owner's error */
    uint8_t *stash;
    size_t stash_len;
    int err_pending; /* an error for the owner, delivered from the loop */
    const char *why; /* why the session died, for the log */
    int refs;        /* handle closes and leg closes still to come, plus the owner */
    bool reading;    /* the owner reads */
    bool dead;       /* failed: no leg, no more input */
    bool closing;    /* the owner closed the link */
    bool drain_wanted;
    bool peer_done; /* the peer's CLOSE arrived */
    bool clean;     /* closed after both directions ended (set before released) */
    tt_link_close_cb close_cb;
    void *close_ud;
    tt_sess *prev, *next; /* the role's list */

    /* Client, per slot. */
    struct tt_carrier_dial *first; /* the pool's dial, until every slot joined */
    tt_carrier_dial *dreq[2];      /* the inner carrier's dial under way */
    tt_link *jleg[2];              /* a leg waiting for JOINED */
    uint8_t jbuf[2][TT_SESS_JOINED_LEN];
    size_t jhave[2];
    uint8_t jmac[2][TT_SESS_MAC_LEN];
    unsigned attempt[2];
    uint64_t lost_ms[2]; /* client: when the slot's last leg was lost; server: 0 when present */
    bool moving[2];      /* joining a new leg while the old one still works */
    bool sent_early[2];  /* DATA went out behind the JOIN, before its answer */

    /* Server. */
    bool in_table;
};

/* The slot of the leg that carries this side's DATA (and brings the
 * peer's ACKs of it), and that of the leg that brings the peer's DATA
 * (and takes this side's ACKs). The same slot unless split. */
static inline int tt_sess_tx(const tt_sess *s)
{
    return s->split && s->is_server ? TT_SESS_DOWN : TT_SESS_UP;
}

static inline int tt_sess_rx(const tt_sess *s)
{
    return s->split && !s->is_server ? TT_SESS_DOWN : TT_SESS_UP;
}

/* How many slots S uses. */
static inline int tt_sess_slots(const tt_sess *s)
{
    return s->split ? 2 : 1;
}

/* " (up leg)", " (down leg)" or "" for log lines. */
const char *tt_sess_leg_name(const tt_sess *s, int slot);

/* A new session link on LOOP for ROLE (OWNER its object), with reading off
 * and no leg. Returns NULL when out of memory. */
tt_sess *tt_sess_new(uv_loop_t *loop, const sess_role *role, void *owner,
                     const uint8_t id[TT_SESS_ID_LEN]);

/* Hands S the leg LEG (owned from now on) for SLOT after a successful join,
 * with the EARLY bytes that followed the join message. The caller has
 * already set the sending state from the peer's received offset
 * (tt_sess_core_rejoin for the slot that carries this side's DATA). Closes
 * an older leg of the slot. */
void tt_sess_attach(tt_sess *s, int slot, tt_link *leg, const uint8_t *early, size_t n);

/* Frames what this side may send onto LEG, a leg whose JOIN is written but
 * not yet answered, as pump does onto the current leg. Returns 0 or the
 * write's error. */
int tt_sess_send_early(tt_sess *s, tt_link *leg);

/* Ends S: closes its legs (sending CLOSE with an abort when SEND_CLOSE) and
 * tells the owner ERR from the loop. */
void tt_sess_fail(tt_sess *s, int err, const char *why, bool send_close);

/* Frees S before it was ever handed to an owner (its role's released runs);
 * CB(UD) runs from the loop once it is gone. */
void tt_sess_destroy(tt_sess *s, tt_link_close_cb cb, void *ud);

/* A callback still to come that S must outlive (an inner dial): hold adds
 * one, unref drops it (and may free S). */
void tt_sess_hold(tt_sess *s);
void tt_sess_unref(tt_sess *s);

/* Closes LINK (not the current leg), keeping S alive until it is closed. */
void tt_sess_close_link(tt_sess *s, tt_link *link);

/* Milliseconds of the wall clock, for join stamps. */
uint64_t tt_sess_now_ms(void);

#endif
