/* A carrier moves streams between the client and the server machines: on the
 * client it dials the server and yields a link; on the server it listens and
 * yields a link per incoming connection. What a carrier does on the way
 * (encryption, TLS, WebSocket framing, DNS) is its own business; the links it
 * yields carry the stream-open header and then the stream's bytes.
 *
 * A new carrier is one file under src/carrier/ that defines a tt_carrier_ops
 * and one row in the table of carrier.c; nothing else changes. */
#ifndef TT_CARRIER_CARRIER_H
#define TT_CARRIER_CARRIER_H

#include <stdbool.h>
#include <uv.h>

#include "core/addr.h"
#include "link/link.h"

typedef struct tt_carrier tt_carrier;
typedef struct tt_carrier_dial tt_carrier_dial;

/* Settings common to every carrier; each carrier reads what it needs. */
typedef struct tt_carrier_cfg {
    tt_url url;                    /* the -s (client) or -l (server) endpoint */
    bool insecure;                 /* server: allow an unencrypted carrier off loopback */
    unsigned connect_timeout_ms;   /* client: connecting to the server */
    unsigned handshake_timeout_ms; /* both: the carrier's own handshake */
    unsigned idle_timeout_ms;      /* server: for connections handed to --fallback */

    /* Encrypted carriers (tt://). */
    const char *key; /* -k: base64 key or password */
    int methods[2];  /* AEADs, preferred first (client uses methods[0]) */
    unsigned n_methods;
    uint16_t port_lo, port_hi; /* -r: the hopping range */
    unsigned hop_interval_s;   /* length of a port-hopping slot */
    unsigned replay_window_s;  /* server: accepted clock difference */
    long clock_offset_s;       /* test-only: added to the wall clock */
    size_t buffer_size;        /* largest plaintext per frame */
    unsigned hello_pad_max;    /* random padding of each first flight: 0..max */
    unsigned frame_pad_max;    /* random padding of each frame: 0..max */
    bool has_fallback;         /* server: hand unauthenticated connections on */
    tt_hostport fallback;

    /* TLS (tls://, wss://). */
    const char *cert_file, *key_file; /* server: PEM files; neither: self-signed */
    const char *tls_name;             /* -n: server certificate name; client SNI and name checked */
    const char *ca_file;              /* client: trust these CAs instead of the system's */
    const char *pin;                  /* client: accept exactly the certificate with this SHA-256 */
    bool skip_verify;                 /* client: accept any certificate (loudly) */
    /* Web carriers (ws://, wss://, tls://). */
    const char *www_dir; /* server: static site answering what is not a tunnel client */
    bool fast_open;      /* TCP Fast Open on the carrier's connections */
    /* Client: resolves the server's name (and the server's --fallback)
     * instead of the system's resolver; NULL: the system's. */
    const struct tt_resolver *resolver;
} tt_carrier_cfg;

/* STATUS is 0 with LINK set (now owned by the callee), or a negative code
 * with LINK NULL. UV_ECANCELED after tt_carrier_dial_cancel. */
typedef void (*tt_carrier_dial_cb)(void *ud, int status, tt_link *link);

/* Each accepted, carrier-handshaken connection as a link the callee owns. */
typedef void (*tt_carrier_accept_cb)(void *ud, tt_link *link);

typedef struct tt_carrier_ops {
    const char *scheme;  /* "tcp" */
    const char *summary; /* one line for --help */
    /* Client side: validates CFG and prepares to dial. On error returns a
     * negative code and sets *WHY to one readable sentence. */
    int (*client_new)(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                      const char **why);
    /* Server side: validates CFG, starts listening, reports connections to CB. */
    int (*server_new)(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb, void *ud,
                      tt_carrier **out, const char **why);
    /* Client: opens a new connection to the server. The callback runs exactly
     * once and never from inside this call. *REQ (may be NULL) is valid until
     * then. */
    int (*dial)(tt_carrier *c, tt_carrier_dial_cb cb, void *ud, tt_carrier_dial **req);
    void (*dial_cancel)(tt_carrier_dial *req);
    /* Server: the listening address text, for the start-up log line. */
    const char *(*describe)(tt_carrier *c, char *buf, size_t len);
    /* Stops listening (server) and frees the carrier. Established links live on. */
    void (*close)(tt_carrier *c);
} tt_carrier_ops;

struct tt_carrier {
    const tt_carrier_ops *ops; /* read-only */
    uv_loop_t *loop;           /* read-only */
};

/* Applies CFG's socket options (TCP Fast Open) to a listener a server
 * carrier opened; a kernel that refuses is logged once, not an error. */
struct tt_tcp_listener;
void tt_carrier_listener_setup(const tt_carrier_cfg *cfg, struct tt_tcp_listener *ls);

/* The carrier for SCHEME, or NULL. */
const tt_carrier_ops *tt_carrier_find(const char *scheme);

/* "tcp://, ..." for messages listing the known schemes. */
const char *tt_carrier_schemes(void);

#endif
