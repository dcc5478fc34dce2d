/* A server carrier's children: the objects that serve one of its incoming
 * connections until the connection is handed on (tt://'s handshake, the TLS
 * handshake of the web carriers, tls://'s token reader, the WebSocket
 * upgrade reader). Each keeps a pointer to its carrier, so none may outlive
 * it: a child registers with its carrier when it starts, leaves when it
 * ends, and the carrier's close closes those still registered.
 *
 * Why not reference counts: a carrier closes when the server stops, and a
 * handshake that kept it alive would keep the process waiting for a client
 * that may never finish; a half-done handshake is worth nothing once the
 * carrier is gone, so it ends with it. */
#ifndef TT_CARRIER_CHILDREN_H
#define TT_CARRIER_CHILDREN_H

typedef struct tt_children tt_children;

/* Embedded in the child. All fields are private. */
typedef struct tt_child {
    struct tt_child *prev, *next;
    tt_children *set; /* NULL when not registered */
    void (*close)(void *ud);
    void *ud;
} tt_child;

/* Embedded in the carrier; zero-initialised is empty. */
struct tt_children {
    tt_child *head;
};

/* Registers CH (not registered) with SET. CLOSE(UD) is how the carrier ends
 * the child: it must stop every callback that could still reach the carrier
 * (close the child's links and timers) and may free the child later, from
 * those closes' callbacks. */
void tt_child_add(tt_children *set, tt_child *ch, void (*close)(void *ud), void *ud);

/* Unregisters CH, when the child ends or hands its connection on; a child
 * not registered (never, or already) is left alone. */
void tt_child_remove(tt_child *ch);

/* Closes every child in SET, each unregistered before its CLOSE runs, so
 * that a CLOSE that unregisters again is harmless. SET is empty after. */
void tt_children_close(tt_children *set);

#endif
