/* The session layer's wire format (see sess.h and docs/SESSION.md). */
#include "codec/sess.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/bytes.h"
#include "core/crypto.h"

static const uint8_t join_magic[4] = {TT_SESS_MAGIC0, 0x74, 0x73, TT_SESS_VERSION};
static const char joined_label[] = "tt-session joined";

/* Offsets inside a JOIN. */
enum {
    J_FLAGS = 4,
    J_ID = 5,
    J_NONCE = 21,
    J_TIME = 37,
    J_COUNTER = 45,
    J_OFFSET = 49,
    J_MAC = 57,
};

int tt_sess_join_key(const uint8_t psk[32], uint8_t key[TT_SESS_KEY_LEN])
{
    static const char salt[] = "tt-session-v1", info[] = "join";
    return tt_hkdf(psk, 32, (const uint8_t *)salt, sizeof salt - 1, (const uint8_t *)info,
                   sizeof info - 1, key, TT_SESS_KEY_LEN);
}

static void join_mac(const uint8_t key[TT_SESS_KEY_LEN], const uint8_t *msg,
                     uint8_t mac[TT_SESS_MAC_LEN])
{
    uint8_t full[32];
    tt_hmac_sha256(key, TT_SESS_KEY_LEN, msg, J_MAC, full);
    memcpy(mac, full, TT_SESS_MAC_LEN);
}

void tt_sess_join_encode(tt_sess_join *j, const uint8_t key[TT_SESS_KEY_LEN],
                         uint8_t out[TT_SESS_JOIN_LEN])
{
    memcpy(out, join_magic, sizeof join_magic);
    out[J_FLAGS] = j->flags;
    memcpy(out + J_ID, j->id, TT_SESS_ID_LEN);
    memcpy(out + J_NONCE, j->nonce, TT_SESS_NONCE_LEN);
    tt_put64(out + J_TIME, j->time_ms);
    tt_put32(out + J_COUNTER, j->counter);
    tt_put64(out + J_OFFSET, j->offset);
    join_mac(key, out, j->mac);
    memcpy(out + J_MAC, j->mac, TT_SESS_MAC_LEN);
}

int tt_sess_join_decode(const uint8_t in[TT_SESS_JOIN_LEN], const uint8_t key[TT_SESS_KEY_LEN],
                        tt_sess_join *j, const char **why)
{
    if (memcmp(in, join_magic, 3) != 0) {
        *why = "not a session join";
        return -EPROTO;
    }
    if (in[3] != TT_SESS_VERSION) {
        *why = "unknown session protocol version";
        return -EPROTO;
    }
    uint8_t mac[TT_SESS_MAC_LEN];
    join_mac(key, in, mac);
    if (CRYPTO_memcmp(mac, in + J_MAC, TT_SESS_MAC_LEN) != 0) {
        *why = "bad join MAC (another key?)";
        return -EBADMSG;
    }
    j->flags = in[J_FLAGS];
    if ((j->flags & ~(TT_SESS_JOIN_REJOIN | TT_SESS_ROLE_MASK)) != 0 ||
        (j->flags & TT_SESS_ROLE_MASK) == TT_SESS_ROLE_MASK) {
        *why = "undefined join flags";
        return -EPROTO;
    }
    memcpy(j->id, in + J_ID, TT_SESS_ID_LEN);
    memcpy(j->nonce, in + J_NONCE, TT_SESS_NONCE_LEN);
    j->time_ms = tt_get64(in + J_TIME);
    j->counter = tt_get32(in + J_COUNTER);
    j->offset = tt_get64(in + J_OFFSET);
    memcpy(j->mac, mac, TT_SESS_MAC_LEN);
    if (j->offset >= TT_SESS_OFFSET_MAX) {
        *why = "join offset out of range";
        return -EPROTO;
    }
    if (!(j->flags & TT_SESS_JOIN_REJOIN) && (j->counter != 0 || j->offset != 0)) {
        *why = "a new session's join must have counter and offset 0";
        return -EPROTO;
    }
    return 0;
}

static void joined_mac(const uint8_t key[TT_SESS_KEY_LEN], const uint8_t join[TT_SESS_MAC_LEN],
                       const uint8_t *head, uint8_t mac[TT_SESS_MAC_LEN])
{
    uint8_t msg[sizeof joined_label - 1 + TT_SESS_MAC_LEN + 10], full[32];
    memcpy(msg, joined_label, sizeof joined_label - 1);
    memcpy(msg + sizeof joined_label - 1, join, TT_SESS_MAC_LEN);
    memcpy(msg + sizeof joined_label - 1 + TT_SESS_MAC_LEN, head, 10);
    tt_hmac_sha256(key, TT_SESS_KEY_LEN, msg, sizeof msg, full);
    memcpy(mac, full, TT_SESS_MAC_LEN);
}

void tt_sess_joined_encode(uint8_t status, uint64_t offset,
                           const uint8_t join_mac_[TT_SESS_MAC_LEN],
                           const uint8_t key[TT_SESS_KEY_LEN], uint8_t out[TT_SESS_JOINED_LEN])
{
    out[0] = status;
    out[1] = 0;
    tt_put64(out + 2, offset);
    joined_mac(key, join_mac_, out, out + 10);
}

int tt_sess_joined_decode(const uint8_t in[TT_SESS_JOINED_LEN], const uint8_t key[TT_SESS_KEY_LEN],
                          const uint8_t join_mac_[TT_SESS_MAC_LEN], uint8_t *status,
                          uint64_t *offset, const char **why)
{
    uint8_t mac[TT_SESS_MAC_LEN];
    joined_mac(key, join_mac_, in, mac);
    if (CRYPTO_memcmp(mac, in + 10, TT_SESS_MAC_LEN) != 0) {
        *why = "bad answer MAC (another key?)";
        return -EBADMSG;
    }
    if (in[1] != 0) {
        *why = "undefined answer flags";
        return -EPROTO;
    }
    *status = in[0];
    *offset = tt_get64(in + 2);
    if (*offset >= TT_SESS_OFFSET_MAX) {
        *why = "answer offset out of range";
        return -EPROTO;
    }
    return 0;
}

const char *tt_sess_status_str(uint8_t status)
{
    switch (status) {
    case TT_SESS_OK:
        return "joined";
    case TT_SESS_UNKNOWN:
        return "unknown session (the server dropped it, or never had it)";
    case TT_SESS_STALE:
        return "stale join (replayed, or older than the last)";
    case TT_SESS_IN_USE:
        return "session id in use";
    case TT_SESS_FULL:
        return "the server holds too many sessions";
    case TT_SESS_RANGE:
        return "received offset out of range";
    case TT_SESS_ROLE:
        return "the leg's role does not fit the session";
    default:
        return "unknown status";
    }
}

size_t tt_sess_hdr_encode(uint8_t type, uint8_t flags, uint16_t len, uint64_t value,
                          uint8_t out[TT_SESS_HDR_LEN])
{
    out[0] = type;
    out[1] = flags;
    tt_put16(out + 2, len);
    tt_put64(out + 4, value);
    return TT_SESS_HDR_LEN;
}

size_t tt_sess_ack_encode(uint64_t cum, uint32_t window, const uint64_t (*sack)[2], unsigned n,
                          uint8_t out[TT_SESS_ACK_MAX])
{
    if (n > TT_SESS_SACK_MAX)
        n = TT_SESS_SACK_MAX;
    size_t len = 4 + 16 * (size_t)n;
    tt_sess_hdr_encode(TT_SESS_ACK, 0, (uint16_t)len, cum, out);
    tt_put32(out + TT_SESS_HDR_LEN, window);
    for (unsigned i = 0; i < n; i++) {
        tt_put64(out + TT_SESS_HDR_LEN + 4 + 16 * i, sack[i][0]);
        tt_put64(out + TT_SESS_HDR_LEN + 12 + 16 * i, sack[i][1]);
    }
    return TT_SESS_HDR_LEN + len;
}

void tt_sess_reader_init(tt_sess_reader *r)
{
    memset(r, 0, sizeof *r);
    r->need = TT_SESS_HDR_LEN;
}

bool tt_sess_reader_partial(const tt_sess_reader *r)
{
    return r->in_data || r->have > 0;
}

/* Checks the header in R->buf; sets R->need to the whole frame's length for
 * an ACK, or starts a DATA frame. Returns 0, 1 when a CLOSE is complete (EV
 * set), or -EPROTO. */
static int take_header(tt_sess_reader *r, tt_sess_ev *ev, const char **why)
{
    const uint8_t *b = r->buf;
    uint8_t type = b[0], flags = b[1];
    uint16_t len = tt_get16(b + 2);
    uint64_t value = tt_get64(b + 4);
    switch (type) {
    case TT_SESS_DATA:
        if (flags & ~TT_SESS_FLAG_FIN) {
            *why = "undefined DATA flags";
            return -EPROTO;
        }
        if (len == 0 && !(flags & TT_SESS_FLAG_FIN)) {
            *why = "empty DATA frame without FIN";
            return -EPROTO;
        }
        if (value >= TT_SESS_OFFSET_MAX) {
            *why = "DATA offset out of range";
            return -EPROTO;
        }
        r->in_data = true;
        r->data_off = value;
        r->data_left = len;
        r->data_fin = flags & TT_SESS_FLAG_FIN;
        r->have = 0;
        return 0;
    case TT_SESS_ACK:
        if (flags != 0) {
            *why = "undefined ACK flags";
            return -EPROTO;
        }
        if (len < 4 || (len - 4) % 16 != 0 || (len - 4) / 16 > TT_SESS_SACK_MAX) {
            *why = "bad ACK length";
            return -EPROTO;
        }
        if (value >= TT_SESS_OFFSET_MAX) {
            *why = "ACK offset out of range";
            return -EPROTO;
        }
        r->need = TT_SESS_HDR_LEN + len;
        return 0;
    case TT_SESS_CLOSE:
        if (len != 0 || value != 0) {
            *why = "CLOSE frame with a payload";
            return -EPROTO;
        }
        memset(ev, 0, sizeof *ev);
        ev->kind = TT_SESS_EV_CLOSE;
        ev->code = flags;
        r->have = 0;
        return 1;
    case TT_SESS_PING:
    case TT_SESS_PONG:
        *why = "PING/PONG frames are for lossy legs, not supported by this version";
        return -EPROTO;
    default:
        *why = "unknown session frame type";
        return -EPROTO;
    }
}

/* Decodes the whole ACK in R->buf into EV. */
static int take_ack(tt_sess_reader *r, tt_sess_ev *ev, const char **why)
{
    const uint8_t *b = r->buf;
    memset(ev, 0, sizeof *ev);
    ev->kind = TT_SESS_EV_ACK;
    ev->cum = tt_get64(b + 4);
    ev->window = tt_get32(b + TT_SESS_HDR_LEN);
    ev->nsack = (unsigned)((r->need - TT_SESS_HDR_LEN - 4) / 16);
    uint64_t floor = ev->cum;
    for (unsigned i = 0; i < ev->nsack; i++) {
        uint64_t s = tt_get64(b + TT_SESS_HDR_LEN + 4 + 16 * i);
        uint64_t e = tt_get64(b + TT_SESS_HDR_LEN + 12 + 16 * i);
        /* Blocks lie above the cumulative offset, in order, apart. */
        if (s <= floor || e <= s || e >= TT_SESS_OFFSET_MAX) {
            *why = "SACK blocks out of order";
            return -EPROTO;
        }
        ev->sack[i][0] = s;
        ev->sack[i][1] = e;
        floor = e;
    }
    r->have = 0;
    r->need = TT_SESS_HDR_LEN;
    return 1;
}

int tt_sess_read(tt_sess_reader *r, const uint8_t *in, size_t n, size_t *used, tt_sess_ev *ev,
                 const char **why)
{
    size_t i = 0;
    for (;;) {
        if (r->in_data) {
            size_t take = n - i < r->data_left ? n - i : r->data_left;
            if (take == 0 && r->data_left > 0) {
                *used = i;
                return 0;
            }
            memset(ev, 0, sizeof *ev);
            ev->kind = TT_SESS_EV_DATA;
            ev->offset = r->data_off;
            ev->data = in + i;
            ev->len = take;
            r->data_off += take;
            r->data_left -= take;
            i += take;
            if (r->data_left == 0) {
                ev->fin = r->data_fin;
                r->in_data = false;
                r->need = TT_SESS_HDR_LEN;
            }
            *used = i;
            return 1;
        }
        if (i == n) {
            *used = i;
            return 0;
        }
        size_t take = r->need - r->have;
        if (take > n - i)
            take = n - i;
        memcpy(r->buf + r->have, in + i, take);
        r->have += take;
        i += take;
        if (r->have < r->need)
            continue;
        int rc = r->need == TT_SESS_HDR_LEN ? take_header(r, ev, why) : take_ack(r, ev, why);
        if (rc != 0) {
            *used = i;
            return rc;
        }
    }
}
