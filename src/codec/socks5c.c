#include "codec/socks5c.h"

#include <string.h>

#include "codec/socks5.h"
#include "codec/streamhdr.h"

enum {
    ST_METHOD,   /* waiting for the method choice: VER METHOD */
    ST_AUTH,     /* waiting for the RFC 1929 status: VER STATUS */
    ST_REPLY,    /* waiting for the CONNECT reply */
    ST_FINISHED, /* DONE or FAIL reported */
};

/* The CONNECT request: VER CMD RSV ATYP ADDR PORT. The stream header is
 * VER FLAGS ATYP ADDR PORT with the same address types, so its encoder
 * (which refuses what no parser would take) writes the address part. */
static size_t request(const tt_target *t, uint8_t *out)
{
    uint8_t hdr[TT_STREAMHDR_MAX];
    size_t n = tt_streamhdr_encode(t, hdr);
    if (n == 0)
        return 0;
    out[0] = 5;
    out[1] = 1;
    out[2] = 0;
    memcpy(out + 3, hdr + 2, n - 2);
    return n + 1;
}

size_t tt_socks5c_start(tt_socks5c *s, const tt_target *t, const char *user, const char *pass,
                        uint8_t out[TT_SOCKS5C_MSG_MAX])
{
    memset(s, 0, sizeof *s);
    uint8_t probe[TT_SOCKS5C_MSG_MAX];
    if (request(t, probe) == 0)
        return 0;
    s->target = *t;
    s->state = ST_METHOD;
    s->need = 2;
    bool auth = user && pass;
    s->user = auth ? user : NULL;
    s->pass = auth ? pass : NULL;
    out[0] = 5;
    /* Offering "no authentication" beside username/password would let a
     * proxy that needs no login skip it, but also let one choose to skip
     * what the user asked for: only what the user configured is offered. */
    out[1] = 1;
    out[2] = auth ? 0x02 : 0x00;
    return 3;
}

static size_t auth_request(const tt_socks5c *s, uint8_t *out)
{
    size_t ul = strlen(s->user), pl = strlen(s->pass);
    out[0] = 1;
    out[1] = (uint8_t)ul;
    memcpy(out + 2, s->user, ul);
    out[2 + ul] = (uint8_t)pl;
    memcpy(out + 3 + ul, s->pass, pl);
    return 3 + ul + pl;
}

static void fail(tt_socks5c *s, enum tt_socks5c_result *res, int *rep, const char **why, int code,
                 const char *text)
{
    s->state = ST_FINISHED;
    *res = TT_S5C_FAIL;
    *rep = code;
    *why = text;
}

size_t tt_socks5c_feed(tt_socks5c *s, const uint8_t *in, size_t n, enum tt_socks5c_result *res,
                       uint8_t out[TT_SOCKS5C_MSG_MAX], size_t *out_len, int *rep, const char **why)
{
    *out_len = 0;
    *res = TT_S5C_MORE;
    if (s->state == ST_FINISHED) {
        *res = TT_S5C_FAIL;
        *rep = TT_S5_REP_GENERAL;
        *why = "the exchange is over";
        return 0;
    }
    size_t used = 0;
    while (used < n) {
        size_t take = s->need - s->have;
        if (take > n - used)
            take = n - used;
        memcpy(s->buf + s->have, in + used, take);
        s->have += take;
        used += take;
        if (s->have < s->need)
            return used;
        switch (s->state) {
        case ST_METHOD:
            if (s->buf[0] != 5) {
                fail(s, res, rep, why, TT_S5_REP_GENERAL, "not a SOCKS5 proxy");
                return used;
            }
            if (s->buf[1] == 0xFF || s->buf[1] != (s->user ? 0x02 : 0x00)) {
                fail(s, res, rep, why, TT_S5_REP_NOT_ALLOWED,
                     s->user ? "the proxy does not accept username/password login"
                             : "the proxy requires a login (--proxy-user, --proxy-pass)");
                return used;
            }
            s->have = 0;
            s->need = 2;
            if (s->user) {
                s->state = ST_AUTH;
                *out_len = auth_request(s, out);
            } else {
                s->state = ST_REPLY;
                s->need = 5;
                *out_len = request(&s->target, out);
            }
            *res = TT_S5C_SEND;
            return used;
        case ST_AUTH:
            if (s->buf[0] != 1 || s->buf[1] != 0) {
                fail(s, res, rep, why, TT_S5_REP_NOT_ALLOWED,
                     "the proxy refused the username or password");
                return used;
            }
            s->have = 0;
            s->need = 5;
            s->state = ST_REPLY;
            *out_len = request(&s->target, out);
            *res = TT_S5C_SEND;
            return used;
        case ST_REPLY:
            if (s->buf[0] != 5 || s->buf[2] != 0) {
                fail(s, res, rep, why, TT_S5_REP_GENERAL, "malformed reply from the proxy");
                return used;
            }
            if (s->need == 5) {
                /* The first five bytes tell the bound address's length. */
                switch (s->buf[3]) {
                case TT_TARGET_IPV4:
                    s->need = 4 + 4 + 2;
                    break;
                case TT_TARGET_IPV6:
                    s->need = 4 + 16 + 2;
                    break;
                case TT_TARGET_NAME:
                    s->need = 4 + 1 + (size_t)s->buf[4] + 2;
                    break;
                default:
                    fail(s, res, rep, why, TT_S5_REP_GENERAL,
                         "the proxy's reply has an unknown address type");
                    return used;
                }
                if (s->have < s->need)
                    continue;
            }
            s->state = ST_FINISHED;
            *res = TT_S5C_DONE;
            *rep = s->buf[1];
            return used;
        default:
            break;
        }
    }
    return used;
}
