/* DNS over HTTPS (RFC 8484), the client's HTTP/2 side: DNS queries in,
 * HTTP/2 bytes out; HTTP/2 bytes in, DNS answers out. Sans-I/O around
 * nghttp2 (nghttp2_session_mem_recv and _mem_send): no sockets, no clock,
 * no TLS. The transport (link/dnsq_https.c) moves the bytes through a TLS
 * link that negotiated "h2", and owns the timers.
 *
 * One object is one HTTP/2 connection. Each query is one request on a
 * stream of its own:
 *
 *   :method POST, :scheme https, :authority AUTHORITY, :path PATH,
 *   accept and content-type application/dns-message, content-length,
 *   and the query's bytes as the body.
 *
 * An answer is the body of a response with :status 200 and content-type
 * application/dns-message (parameters after ';' allowed), at most
 * max_answer bytes; anything else ends that query as failed, with a
 * reason, and the connection goes on. nghttp2 checks the HTTP/2 framing
 * and messaging rules (content-length against the body, header syntax) and
 * holds requests past the resolver's SETTINGS_MAX_CONCURRENT_STREAMS
 * until streams close; this module bounds how many queries may be
 * outstanding at all (max_streams), so no queue grows without bound.
 *
 * Events are pulled, not called back: after tt_doh_feed, the caller takes
 * them one at a time with tt_doh_next, so its handlers may free the object
 * between two of them without nghttp2 being on the stack. */
#ifndef TT_CODEC_DOH_H
#define TT_CODEC_DOH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The media type of RFC 8484's messages. */
#define TT_DOH_MEDIA_TYPE "application/dns-message"
/* The path when none is given. */
#define TT_DOH_DEFAULT_PATH "/dns-query"

typedef struct tt_doh tt_doh;

typedef struct tt_doh_cfg {
    const char *authority; /* :authority, the resolver's name (and :port) */
    const char *path;      /* :path, absolute; NULL: TT_DOH_DEFAULT_PATH */
    unsigned max_streams;  /* queries outstanding at most; 0: 64 */
    size_t max_answer;     /* the longest answer body taken; 0: 4096 */
} tt_doh_cfg;

enum tt_doh_event_kind {
    TT_DOH_ANSWER = 1, /* MSG, LEN: one whole answer body */
    TT_DOH_FAILED,     /* one query will not be answered; WHY says why */
};

typedef struct tt_doh_event {
    enum tt_doh_event_kind kind;
    const uint8_t *msg; /* valid until the next call into the object */
    size_t len;
    const char *why; /* TT_DOH_FAILED: one line, valid as MSG is */
} tt_doh_event;

/* A new connection's session with CFG (the strings are copied). Its
 * connection preface and SETTINGS are ready at once in tt_doh_output.
 * Returns 0 with *OUT set, or -EINVAL (a path that is not absolute, an
 * empty authority) or -ENOMEM with *WHY set to a sentence. */
int tt_doh_new(const tt_doh_cfg *cfg, tt_doh **out, const char **why);

/* Frees D and every query it still holds, without a word to the peer:
 * the caller closes the connection. NULL is allowed. */
void tt_doh_free(tt_doh *d);

/* Submits the query MSG (LEN bytes, copied). Returns 0, -ENOBUFS when
 * max_streams queries are outstanding, -EPIPE when the connection takes no
 * new requests (GOAWAY received, stream ids spent, a fatal error: see
 * tt_doh_accepting), -EMSGSIZE for an empty or over-long (65535) message,
 * or -ENOMEM. */
int tt_doh_query(tt_doh *d, const uint8_t *msg, size_t len);

/* Takes LEN bytes the peer sent. Returns 0, or -EPROTO after a fatal
 * error (the peer broke HTTP/2, or went beyond a limit) with *WHY set to a
 * line; the connection is then over, though the GOAWAY that says so may
 * wait in tt_doh_output. Events wait for tt_doh_next. */
int tt_doh_feed(tt_doh *d, const uint8_t *data, size_t len, const char **why);

/* Copies up to CAP bytes to send into BUF; returns how many (0: nothing
 * now). Call until it returns 0 after every tt_doh_new, tt_doh_query,
 * tt_doh_feed and tt_doh_next, or the queries and window updates they made
 * stay unsent. */
size_t tt_doh_output(tt_doh *d, uint8_t *buf, size_t cap);

/* The next event: returns true with *EV set (valid until the next call
 * into D), false when there is none. */
bool tt_doh_next(tt_doh *d, tt_doh_event *ev);

/* True while new queries are taken: no GOAWAY received or sent, stream
 * ids remain, no fatal error. */
bool tt_doh_accepting(tt_doh *d);

/* True when the connection has nothing left to do: it takes no new
 * queries and every query it took has ended (or can no longer be sent),
 * and nothing waits in tt_doh_output; the caller may close it. */
bool tt_doh_done(tt_doh *d);

/* Queries submitted and not yet ended by an event. */
unsigned tt_doh_outstanding(const tt_doh *d);

/* Queues an HTTP/2 PING, whose ACK shows the peer alive (its arrival is
 * bytes fed like any). Returns 0 or -ENOMEM. */
int tt_doh_ping(tt_doh *d);

/* True once the peer's SETTINGS came: an HTTP/2 server sends them first,
 * so a peer that has not after a while does not speak HTTP/2 at all. */
bool tt_doh_settled(const tt_doh *d);

/* What the peer's GOAWAY said, for a log line ("NO_ERROR", ...), or NULL
 * when none came. */
const char *tt_doh_goaway(const tt_doh *d);

#endif
