/* Sans-I/O SOCKS5 server codec (RFC 1928, RFC 1929 username/password).
 *
 * The codec appends received bytes to one message buffer a byte at a time and
 * re-examines the message after every byte. Each decision therefore depends
 * only on the prefix received so far, never on how the bytes were split into
 * feeds, which is what makes the codec give identical events for any split.
 * The messages are at most a few hundred bytes, so the per-byte cost is
 * irrelevant next to a system call.
 *
 * Decisions where the RFCs leave room, made here once:
 *   - A greeting whose version is not 5 gets no reply: the peer does not speak
 *     SOCKS5 (it may be SOCKS4 or HTTP), so any SOCKS5 reply is noise to it.
 *   - A greeting with zero methods gets 05 FF: no method can be acceptable.
 *   - A subnegotiation whose version is not 1 gets no reply for the same
 *     reason as a bad greeting version. An empty username or password gets the
 *     failure status 01 01, because RFC 1929 sizes both fields 1..255, and
 *     so does a NUL byte in either, which a C string could not carry.
 *   - The request's reserved byte is not checked. RFC 1928 says it is 0, but
 *     refusing a nonzero value buys nothing and only breaks sloppy clients.
 *   - A request whose version is not 5 is answered with "general failure":
 *     the client did complete a SOCKS5 greeting, so it can read the reply.
 *   - Commands are judged as soon as the command byte arrives and address
 *     types as soon as the type byte arrives. For an unknown address type that
 *     is the only option, since the length of the rest is unknown.
 *   - An empty domain name or one containing a NUL byte is answered with
 *     "general failure": the request is malformed rather than unsupported,
 *     and RFC 1928 has no code closer to that. */
#include "codec/socks5.h"

#include <netinet/in.h>
#include <string.h>

enum s5_state {
    ST_GREETING,  /* reading VER NMETHODS METHODS */
    ST_SUBNEG,    /* reading VER ULEN UNAME PLEN PASSWD */
    ST_AUTH_WAIT, /* AUTH event given, waiting for tt_socks5_auth_result */
    ST_REQUEST,   /* reading VER CMD RSV ATYP DST.ADDR DST.PORT */
    ST_DONE,      /* REQUEST event given */
    ST_FAILED,    /* FAIL event given, or authentication refused */
};

#define S5_VERSION 0x05
#define S5_SUBNEG_VERSION 0x01
#define S5_METHOD_NONE 0x00
#define S5_METHOD_USERPASS 0x02
#define S5_METHOD_UNACCEPTABLE 0xFF
#define S5_CMD_CONNECT 0x01
#define S5_CMD_BIND 0x02
#define S5_CMD_UDP 0x03
#define S5_AUTH_OK 0x00
#define S5_AUTH_FAILURE 0x01

/* Marks the session failed and describes why. OUT_LEN bytes of EV->out, if
 * any, were already written by the caller. */
static bool fail(tt_socks5 *s, tt_socks5_event *ev, const char *why, size_t out_len)
{
    s->state = ST_FAILED;
    ev->type = TT_S5_EV_FAIL;
    ev->why = why;
    ev->out_len = out_len;
    return true;
}

/* Fails a request with a full CONNECT-style reply carrying REP, which is the
 * form RFC 1928 prescribes for refusing a request. */
static bool fail_request(tt_socks5 *s, tt_socks5_event *ev, uint8_t rep, const char *why)
{
    return fail(s, ev, why, tt_socks5_reply(rep, NULL, ev->out));
}

/* Each step function looks at the message assembled so far, whose last byte
 * just arrived, and returns true when it produced an event. */
static bool step_greeting(tt_socks5 *s, tt_socks5_event *ev)
{
    const uint8_t *b = s->buf;

    if (s->have == 1) {
        if (b[0] != S5_VERSION)
            return fail(s, ev, "not a SOCKS5 greeting", 0);
        return false;
    }
    if (s->have == 2 && b[1] == 0) {
        ev->out[0] = S5_VERSION;
        ev->out[1] = S5_METHOD_UNACCEPTABLE;
        return fail(s, ev, "greeting offers no methods", 2);
    }
    if (s->have < 2 + (size_t)b[1])
        return false;

    uint8_t want = s->require_auth ? S5_METHOD_USERPASS : S5_METHOD_NONE;
    ev->out[0] = S5_VERSION;
    if (memchr(b + 2, want, b[1]) == NULL) {
        ev->out[1] = S5_METHOD_UNACCEPTABLE;
        return fail(s, ev, "no acceptable authentication method", 2);
    }
    ev->out[1] = want;
    ev->out_len = 2;
    ev->type = TT_S5_EV_SEND;
    s->state = s->require_auth ? ST_SUBNEG : ST_REQUEST;
    s->have = 0;
    return true;
}

/* Fails the subnegotiation with the RFC 1929 failure status. */
static bool fail_auth(tt_socks5 *s, tt_socks5_event *ev, const char *why)
{
    ev->out[0] = S5_SUBNEG_VERSION;
    ev->out[1] = S5_AUTH_FAILURE;
    return fail(s, ev, why, 2);
}

static bool step_subneg(tt_socks5 *s, tt_socks5_event *ev)
{
    const uint8_t *b = s->buf;

    if (s->have == 1) {
        if (b[0] != S5_SUBNEG_VERSION)
            return fail(s, ev, "bad authentication version", 0);
        return false;
    }
    if (s->have == 2) {
        if (b[1] == 0)
            return fail_auth(s, ev, "empty username");
        return false;
    }

    size_t ulen = b[1];
    if (s->have < 3 + ulen)
        return false;
    size_t plen = b[2 + ulen];
    if (s->have == 3 + ulen) {
        if (plen == 0)
            return fail_auth(s, ev, "empty password");
        return false;
    }
    if (s->have < 3 + ulen + plen)
        return false;

    /* The AUTH event hands out C strings, so a NUL inside a field would
     * silently cut it short and let "user\0junk" pass as "user". Refuse such
     * credentials instead of checking a different string than was sent. */
    if (memchr(b + 2, 0, ulen) != NULL || memchr(b + 3 + ulen, 0, plen) != NULL)
        return fail_auth(s, ev, "NUL byte in credentials");

    memcpy(s->user, b + 2, ulen);
    s->user[ulen] = '\0';
    memcpy(s->pass, b + 3 + ulen, plen);
    s->pass[plen] = '\0';
    ev->type = TT_S5_EV_AUTH;
    ev->user = s->user;
    ev->pass = s->pass;
    s->state = ST_AUTH_WAIT;
    s->have = 0;
    return true;
}

/* Length of the whole request once its address type (and, for a name, its
 * length byte) has arrived; 0 while it is not yet known. */
static size_t request_len(const tt_socks5 *s)
{
    if (s->have < 4)
        return 0;
    switch (s->buf[3]) {
    case TT_TARGET_IPV4:
        return 4 + 4 + 2;
    case TT_TARGET_IPV6:
        return 4 + 16 + 2;
    case TT_TARGET_NAME:
        return s->have < 5 ? 0 : 4 + 1 + (size_t)s->buf[4] + 2;
    default:
        return 0;
    }
}

static bool step_request(tt_socks5 *s, tt_socks5_event *ev)
{
    const uint8_t *b = s->buf;

    switch (s->have) {
    case 1:
        if (b[0] != S5_VERSION)
            return fail_request(s, ev, TT_S5_REP_GENERAL, "not a SOCKS5 request");
        return false;
    case 2:
        if (b[1] == S5_CMD_CONNECT)
            return false;
        if (b[1] == S5_CMD_BIND)
            return fail_request(s, ev, TT_S5_REP_CMD_UNSUPPORTED, "BIND not supported");
        if (b[1] == S5_CMD_UDP)
            return fail_request(s, ev, TT_S5_REP_CMD_UNSUPPORTED, "UDP ASSOCIATE not supported");
        return fail_request(s, ev, TT_S5_REP_CMD_UNSUPPORTED, "unknown command");
    case 3:
        /* RSV: deliberately not checked, see the top of the file. */
        return false;
    case 4:
        if (b[3] != TT_TARGET_IPV4 && b[3] != TT_TARGET_IPV6 && b[3] != TT_TARGET_NAME)
            return fail_request(s, ev, TT_S5_REP_ATYP_UNSUPPORTED, "address type not supported");
        return false;
    case 5:
        if (b[3] == TT_TARGET_NAME && b[4] == 0)
            return fail_request(s, ev, TT_S5_REP_GENERAL, "empty domain name");
        break;
    default:
        break;
    }

    size_t total = request_len(s);
    if (s->have < total)
        return false;

    tt_target *t = &ev->target;
    t->type = b[3];
    t->port = (uint16_t)((unsigned)b[total - 2] << 8 | b[total - 1]);
    if (t->type == TT_TARGET_IPV4) {
        memcpy(t->u.v4, b + 4, 4);
    } else if (t->type == TT_TARGET_IPV6) {
        memcpy(t->u.v6, b + 4, 16);
    } else {
        size_t n = b[4];
        if (memchr(b + 5, 0, n) != NULL) {
            memset(t, 0, sizeof *t);
            return fail_request(s, ev, TT_S5_REP_GENERAL, "NUL byte in domain name");
        }
        memcpy(t->u.name, b + 5, n);
        t->u.name[n] = '\0';
        t->name_len = (uint8_t)n;
    }
    ev->type = TT_S5_EV_REQUEST;
    s->state = ST_DONE;
    s->have = 0;
    return true;
}

void tt_socks5_init(tt_socks5 *s, bool require_auth)
{
    memset(s, 0, sizeof *s);
    s->state = ST_GREETING;
    s->require_auth = require_auth;
}

size_t tt_socks5_feed(tt_socks5 *s, const uint8_t *data, size_t len, tt_socks5_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = TT_S5_EV_NEED_MORE;

    /* The credentials only have to outlive the AUTH event, which ends with
     * this feed; do not keep a password in memory longer than that. */
    if (s->state != ST_AUTH_WAIT) {
        memset(s->user, 0, sizeof s->user);
        memset(s->pass, 0, sizeof s->pass);
    }

    switch (s->state) {
    case ST_DONE:
    case ST_FAILED:
        fail(s, ev, "SOCKS5 session already finished", 0);
        return 0;
    case ST_AUTH_WAIT:
        fail(s, ev, "fed before the authentication result", 0);
        return 0;
    default:
        break;
    }

    size_t used = 0;
    while (used < len) {
        /* Every state ends its message within the buffer (the longest is a
         * 513-byte subnegotiation), so this only guards against a bug. */
        if (s->have >= sizeof s->buf) {
            fail(s, ev, "SOCKS5 message too long", 0);
            return used;
        }
        s->buf[s->have++] = data[used++];

        bool done;
        if (s->state == ST_GREETING)
            done = step_greeting(s, ev);
        else if (s->state == ST_SUBNEG)
            done = step_subneg(s, ev);
        else
            done = step_request(s, ev);
        if (done)
            return used;
    }
    return used;
}

size_t tt_socks5_auth_result(tt_socks5 *s, bool ok, uint8_t out[2])
{
    /* Called out of turn, the caller has lost track of the session; fail it
     * and give nothing to send, so the next feed reports the failure. */
    if (s->state != ST_AUTH_WAIT) {
        s->state = ST_FAILED;
        return 0;
    }
    out[0] = S5_SUBNEG_VERSION;
    out[1] = ok ? S5_AUTH_OK : S5_AUTH_FAILURE;
    s->state = ok ? ST_REQUEST : ST_FAILED;
    s->have = 0;
    return 2;
}

size_t tt_socks5_reply(uint8_t rep, const struct sockaddr *bound, uint8_t out[TT_SOCKS5_REPLY_MAX])
{
    out[0] = S5_VERSION;
    out[1] = rep;
    out[2] = 0;

    /* The structures are copied out rather than cast to, so BOUND need only
     * be as large as its family says, with no alignment assumption. The
     * address and port stay in network byte order, as on the wire. */
    if (bound != NULL && bound->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, bound, sizeof sin6);
        out[3] = TT_TARGET_IPV6;
        memcpy(out + 4, &sin6.sin6_addr, 16);
        memcpy(out + 20, &sin6.sin6_port, 2);
        return 22;
    }
    out[3] = TT_TARGET_IPV4;
    if (bound != NULL && bound->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, bound, sizeof sin);
        memcpy(out + 4, &sin.sin_addr, 4);
        memcpy(out + 8, &sin.sin_port, 2);
    } else {
        /* No bound address, or a family SOCKS5 cannot express: 0.0.0.0:0. */
        memset(out + 4, 0, 6);
    }
    return 10;
}

const char *tt_socks5_rep_str(uint8_t rep)
{
    switch (rep) {
    case TT_S5_REP_OK:
        return "succeeded";
    case TT_S5_REP_GENERAL:
        return "general failure";
    case TT_S5_REP_NOT_ALLOWED:
        return "not allowed by ruleset";
    case TT_S5_REP_NET_UNREACH:
        return "network unreachable";
    case TT_S5_REP_HOST_UNREACH:
        return "host unreachable";
    case TT_S5_REP_REFUSED:
        return "connection refused";
    case TT_S5_REP_TTL_EXPIRED:
        return "TTL expired";
    case TT_S5_REP_CMD_UNSUPPORTED:
        return "command not supported";
    case TT_S5_REP_ATYP_UNSUPPORTED:
        return "address type not supported";
    default:
        return "unknown";
    }
}
