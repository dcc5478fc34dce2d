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
    /* The leg ended (ERR) without the session ending: reconnect, or linger. */
    void (*leg_lost)(tt_sess *s, int err);
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

struct tt_sess {
    tt_link base; /* the session link */
    const sess_role *role;
    void *owner; /* the role's object: the client carrier or the server table */
    tt_sess_core core;
    tt_sess_reader rd;
    tt_link *leg; /* the carrier connection now, or NULL while detached */
    uint8_t id[TT_SESS_ID_LEN];
    char name[20]; /* "s1a2b3c4d" for log lines */
    uint32_t counter;
    uv_timer_t ack_timer, live_timer, role_timer;
    uv_idle_t idle; /* deferred work: stashed input, the owner's error */
    uint8_t *stash;
    size_t stash_len;
    uint64_t last_rx_ms;
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

    /* Client. */
    struct tt_carrier_dial *first; /* the pool's dial, until the first join */
    tt_carrier_dial *dreq;         /* the inner carrier's dial under way */
    tt_link *jleg;                 /* a leg waiting for JOINED */
    uint8_t jbuf[TT_SESS_JOINED_LEN];
    size_t jhave;
    uint8_t jmac[TT_SESS_MAC_LEN];
    unsigned attempt;
    uint64_t lost_ms; /* when the last leg was lost */
    bool moving;      /* joining a new leg while the old one still works */

    /* Server. */
    bool in_table;
};

/* A new session link on LOOP for ROLE (OWNER its object), with reading off
 * and no leg. Returns NULL when out of memory. */
tt_sess *tt_sess_new(uv_loop_t *loop, const sess_role *role, void *owner,
                     const uint8_t id[TT_SESS_ID_LEN]);

/* Hands S the leg LEG (owned from now on) after a successful join, with the
 * EARLY bytes that followed the join message. The caller has already set
 * the sending state from the peer's received offset (tt_sess_core_rejoin).
 * Closes an older leg. */
void tt_sess_attach(tt_sess *s, tt_link *leg, const uint8_t *early, size_t n);

/* Ends S: closes its leg (sending CLOSE with an abort when SEND_CLOSE) and
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
