/* A carrier moves streams between the client and the server machines: on the
 * client it dials and yields a link; on the server it listens and yields a
 * link per incoming connection. What a carrier does on the way (encryption,
 * TLS, WebSocket framing, a SOCKS5 proxy, DNS) is its own business.
 *
 * A carrier is a *type* (tt_carrier_type: its scheme, default port, whether
 * it needs a key, its own options and their checks, its help line, its
 * operations) and *instances* (tt_carrier) made from a URL and the options.
 *
 * A new carrier is one file under src/carrier/ that defines a
 * tt_carrier_type (with its own option groups, when it has options) and one
 * row in the table of carrier.c; nothing else changes: the commands take
 * their options and help from the types. */
#ifndef TT_CARRIER_CARRIER_H
#define TT_CARRIER_CARRIER_H

#include <stdbool.h>
#include <uv.h>

#include "core/addr.h"
#include "core/opts.h"
#include "core/target.h"
#include "link/link.h"

typedef struct tt_carrier tt_carrier;
typedef struct tt_carrier_type tt_carrier_type;
typedef struct tt_carrier_dial tt_carrier_dial;

enum tt_carrier_side {
    TT_SIDE_CLIENT = 1,
    TT_SIDE_SERVER = 2,
    TT_SIDE_BOTH = 3,
};

/* A group of options that one or more carrier types take (tt://'s -m and
 * -r; the TLS options of tls:// and wss://; a SOCKS5 proxy's login). The
 * commands parse every group of every type, refuse a group's option when the
 * chosen carrier does not list the group, and hand the chosen carrier its
 * groups' settings (tt_carrier_settings). */
typedef struct tt_carrier_optgroup {
    unsigned sides;     /* enum tt_carrier_side: where the options exist */
    const tt_opt *opts; /* rows store at offsets into the settings struct */
    size_t n_opts;
    /* Bytes of the settings struct. 0: the rows store into tt_carrier_cfg
     * itself (the options shared by several carriers, see below). */
    size_t size;
    /* Sets the defaults (NULL: all zero). */
    void (*init)(void *settings);
    /* After parsing, when the chosen carrier lists the group: completes
     * SETTINGS (text into values) and checks them for the SERVER side or the
     * client's; SET tells which options were given. Returns 0, or -EINVAL
     * with one sentence in WHY (LEN bytes). NULL: nothing to check. */
    int (*check)(void *settings, const tt_opt_set *set, bool server, char *why, size_t len);
} tt_carrier_optgroup;

/* The groups of options shared by several carriers, defined in carrier.c;
 * their rows store into tt_carrier_cfg. Every type takes tt_carrier_net_opts. */
extern const tt_carrier_optgroup tt_carrier_net_opts; /* --resolver, --fast-open, --clock-offset */
extern const tt_carrier_optgroup tt_carrier_key_opts; /* -k/--key (also TT_KEY) */
extern const tt_carrier_optgroup tt_carrier_replay_opts; /* server: --replay-window */
extern const tt_carrier_optgroup tt_carrier_decoy_opts;  /* server: --fallback */

/* nginx's client_header_timeout and keepalive_timeout (defaults of nginx
 * 1.22, which Debian's nginx.conf keeps): the web face's. */
#define TT_WEB_HEADER_TIMEOUT_MS 60000
#define TT_WEB_HEADER_TIMEOUT_TEXT "60s"
#define TT_WEB_KEEPALIVE_TIMEOUT_MS 75000
#define TT_WEB_KEEPALIVE_TIMEOUT_TEXT "75s"
/* server: --www, --header-timeout, --keepalive-timeout */
extern const tt_carrier_optgroup tt_carrier_www_opts;
extern const tt_carrier_optgroup tt_carrier_tls_opts;        /* -n/--name */
extern const tt_carrier_optgroup tt_carrier_tls_server_opts; /* --cert, --tls-key */
extern const tt_carrier_optgroup
    tt_carrier_tls_client_opts; /* --ca, --pin, --insecure-skip-verify */

#define TT_CARRIER_GROUPS_MAX 12

/* What an instance is made from: the endpoint, the command's settings, the
 * shared options, and the settings of the type's own groups. */
typedef struct tt_carrier_cfg {
    const tt_carrier_type *type;
    tt_url url;                    /* the -s (client) or -l (server) endpoint */
    bool insecure;                 /* server: allow an unencrypted carrier off loopback */
    unsigned connect_timeout_ms;   /* client: connecting to the server */
    unsigned handshake_timeout_ms; /* both: the carrier's own handshake */
    unsigned idle_timeout_ms;      /* server: for connections handed to --fallback */

    /* tt_carrier_net_opts. */
    const char *resolver_text; /* --resolver as typed; the command makes the resolver */
    bool fast_open;            /* TCP Fast Open on the carrier's connections */
    const char *clock_offset_text;
    long clock_offset_s; /* test-only: added to the wall clock */
    /* Client: resolves the server's name (and the server's --fallback)
     * instead of the system's resolver; NULL: the system's. */
    const struct tt_resolver *resolver;

    /* tt_carrier_key_opts: the base64 key or password; NULL without one. */
    const char *key;
    /* tt_carrier_replay_opts: accepted clock difference of a client's hello. */
    unsigned replay_window_ms;
    unsigned replay_window_s;
    /* tt_carrier_decoy_opts: hand unauthenticated connections to a web server. */
    const char *fallback_text;
    bool has_fallback;
    tt_hostport fallback;
    /* tt_carrier_www_opts: static site answering what is not a tunnel client,
     * and the web face's timeouts (nginx's by default): from the accept to
     * a whole request head, TLS handshake and the carrier's own check
     * included; and from an answer to the next request on a kept-alive
     * connection. */
    const char *www_dir;
    unsigned header_timeout_ms;
    unsigned keepalive_timeout_ms;
    /* tt_carrier_tls_opts, _tls_server, _tls_client. */
    const char *tls_name;             /* -n: server certificate name; client SNI and name checked */
    const char *cert_file, *key_file; /* server: PEM files; neither: self-signed */
    const char *ca_file;              /* client: trust these CAs instead of the system's */
    const char *pin;                  /* client: accept exactly the certificate with this SHA-256 */
    bool skip_verify;                 /* client: accept any certificate (loudly) */

    /* The settings of type->groups[i] (NULL for the shared groups, whose
     * values are the fields above). Read with tt_carrier_settings. */
    const void *settings[TT_CARRIER_GROUPS_MAX];
} tt_carrier_cfg;

/* The settings of group G of CFG's type, or NULL when the type does not
 * list G. */
const void *tt_carrier_settings(const tt_carrier_cfg *cfg, const tt_carrier_optgroup *g);

/* How a stream is asked for over a link that the carrier dialed: a sans-I/O
 * exchange of request and reply bytes. The default (a type with opener
 * NULL) is tt's own stream-open header, answered by a tt server; a carrier
 * whose far end is an existing proxy (socks5://, ssh -D) speaks that proxy's
 * request instead. */
#define TT_OPEN_MSG_MAX 520
typedef struct tt_carrier_opener {
    size_t state_size; /* bytes of zeroed state the stream layer keeps per open */
    /* True when the application's first bytes may follow the request at
     * once (0-RTT); false: they wait for the reply. */
    bool early_with_request;
    /* Writes the first request for T into OUT (at most TT_OPEN_MSG_MAX
     * bytes) and returns its length, or a negative code with *WHY. */
    int (*begin)(void *state, const tt_carrier *c, const tt_target *t, uint8_t *out,
                 const char **why);
    /* Takes reply bytes IN[0..N) and returns how many it consumed: all of
     * them until the outcome is known, then only those of the reply (what
     * follows is the stream's). Sets *REP to a SOCKS5 reply code once the
     * outcome is known (it stays -1 before); may put the next request into
     * OUT (*OUT_LEN bytes, 0 for none). A malformed reply sets *REP to a
     * failure code and *WHY to a phrase for the log. */
    size_t (*input)(void *state, const tt_carrier *c, const uint8_t *in, size_t n, int *rep,
                    uint8_t *out, size_t *out_len, const char **why);
} tt_carrier_opener;

/* The SOCKS5 exchange of socks5:// without a login (socks5.c), for a
 * carrier whose far end is a SOCKS5 proxy of its own making (ssh -D). */
extern const tt_carrier_opener tt_carrier_socks5_opener;

/* STATUS is 0 with LINK set (now owned by the callee), or a negative code
 * with LINK NULL. UV_ECANCELED after tt_carrier_dial_cancel. */
typedef void (*tt_carrier_dial_cb)(void *ud, int status, tt_link *link);

/* Each accepted, carrier-handshaken connection as a link the callee owns. */
typedef void (*tt_carrier_accept_cb)(void *ud, tt_link *link);

enum tt_carrier_flags {
    /* -k is required on both ends. */
    TT_CARRIER_NEEDS_KEY = 1u << 0,
    /* The server refuses to run without -k unless -d fixes the destination
     * (without a key the server would be an open proxy). */
    TT_CARRIER_KEY_GUARDS = 1u << 1,
    /* The URL has a path (default "/"). */
    TT_CARRIER_PATH = 1u << 2,
    /* A URL without a port is valid and means something other than
     * default_port (tt://: the hopping ports). */
    TT_CARRIER_PORT_OPTIONAL = 1u << 3,
    /* The URL may name a user ("ssh://USER@HOST"); others refuse one. */
    TT_CARRIER_USER = 1u << 4,
};

struct tt_carrier_type {
    const char *scheme;   /* "tcp" */
    const char *url_form; /* "tcp://HOST:PORT" for --help */
    const char *summary;  /* what it is, one line for --help */
    uint16_t default_port;
    unsigned flags; /* enum tt_carrier_flags */
    /* Its option groups, NULL-terminated; tt_carrier_net_opts is implied. */
    const tt_carrier_optgroup *const *groups;
    /* How streams are opened over what dial yields; NULL: tt's header. */
    const tt_carrier_opener *opener;

    /* Client side: validates CFG and prepares to dial. On error returns a
     * negative code and sets *WHY to one readable sentence. */
    int (*client_new)(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier **out,
                      const char **why);
    /* Server side (NULL: the carrier has no server, such as socks5://):
     * validates CFG, starts listening, reports connections to CB. */
    int (*server_new)(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_carrier_accept_cb cb, void *ud,
                      tt_carrier **out, const char **why);
    /* Client: opens a new connection to the server for a stream to T (NULL
     * when the connection will carry many, as a mux session). Most carriers
     * ignore T; one whose connection is per destination (ssh -W) needs it.
     * The callback runs exactly once and never from inside this call. *REQ
     * (may be NULL) is valid until then. */
    int (*dial)(tt_carrier *c, const tt_target *t, tt_carrier_dial_cb cb, void *ud,
                tt_carrier_dial **req);
    void (*dial_cancel)(tt_carrier_dial *req);
    /* The address text for log lines: where a server listens, where a
     * client connects. */
    const char *(*describe)(tt_carrier *c, char *buf, size_t len);
    /* Optional: why a dial failed with STATUS, in words for "cannot reach
     * X: ..." (the carrier may know more than the code, such as the error
     * a helper process printed). NULL: the code's own text. */
    const char *(*dial_error)(tt_carrier *c, int status, char *buf, size_t len);
    /* Optional: milliseconds from now until a connection dialed now should
     * give way to a new one (tt://'s hopping ports: its port's slot ends),
     * or 0 when a connection may live as long as it likes. A resumable
     * session with --hop-migrate moves to a new connection then
     * (session/client.c). NULL: always 0. */
    uint64_t (*leg_lifetime)(tt_carrier *c);
    /* Stops listening (server) and frees the carrier. Established links live on. */
    void (*close)(tt_carrier *c);
};

struct tt_carrier {
    const tt_carrier_type *type; /* read-only */
    uv_loop_t *loop;             /* read-only */
};

/* Applies CFG's socket options (TCP Fast Open) to a listener a server
 * carrier opened; a kernel that refuses is logged once, not an error. */
struct tt_tcp_listener;
void tt_carrier_listener_setup(const tt_carrier_cfg *cfg, struct tt_tcp_listener *ls);

/* A carrier whose close finishes later (a child process to end and reap)
 * counts itself here from its close until it has finished; before the
 * program exits, the commands run the loop until the count is back at 0
 * (tt_carrier_closing). */
void tt_carrier_closing_add(int delta);
unsigned tt_carrier_closing(void);

/* The carrier type for SCHEME, or NULL. */
const tt_carrier_type *tt_carrier_find(const char *scheme);

/* The known types, in the order of carrier.c's table: the Ith, or NULL past
 * the end. */
const tt_carrier_type *tt_carrier_type_at(size_t i);

/* True when type T has SERVER's side (a server_new, or a client_new). */
bool tt_carrier_type_on_side(const tt_carrier_type *t, bool server);

/* "tls://, wss://" into BUF (returned): the schemes of SERVER's side, those
 * that take group G, or all of them with G NULL. */
const char *tt_carrier_schemes(const tt_carrier_optgroup *g, bool server, char *buf, size_t len);

/* True when type T lists group G (tt_carrier_net_opts: every type). */
bool tt_carrier_type_has(const tt_carrier_type *t, const tt_carrier_optgroup *g);

#endif
