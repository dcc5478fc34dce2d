#include "codec/ttproto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t get16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Decodes standard base64 of exactly 32 bytes (44 characters, one '='). */
static bool decode_key(const char *text, uint8_t out[TT_PSK_LEN])
{
    if (strlen(text) != 44 || text[43] != '=')
        return false;
    /* EVP_DecodeBlock reads '=' anywhere as zero bits, so check the alphabet
     * first: only a real key may be used as one, all else is a password. */
    for (int i = 0; i < 43; i++) {
        char ch = text[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return false;
    }
    uint8_t tmp[33];
    if (EVP_DecodeBlock(tmp, (const unsigned char *)text, 44) != 33)
        return false;
    memcpy(out, tmp, TT_PSK_LEN);
    return true;
}

int tt_psk_derive(const char *text, uint8_t psk[TT_PSK_LEN], bool *is_password)
{
    if (text == NULL || *text == '\0')
        return -EINVAL;
    if (decode_key(text, psk)) {
        *is_password = false;
        return 0;
    }
    *is_password = true;
    /* The salt is fixed because both ends must derive the same key with no
     * exchange; scrypt's cost is what slows guessing a captured session. */
    static const char salt[] = "tt/1 password";
    return tt_scrypt(text, strlen(text), (const uint8_t *)salt, sizeof salt - 1, 1u << 15, psk,
                     TT_PSK_LEN);
}

void tt_psk_generate(char out[45])
{
    uint8_t key[TT_PSK_LEN];
    tt_random(key, sizeof key);
    EVP_EncodeBlock((unsigned char *)out, key, sizeof key);
}

static int label_kdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                     const char *label, const uint8_t *ctx, size_t ctx_len, uint8_t out[32])
{
    uint8_t info[64 + 2 * TT_PUB_LEN];
    size_t ll = strlen(label);
    memcpy(info, label, ll);
    if (ctx_len)
        memcpy(info + ll, ctx, ctx_len);
    return tt_hkdf(ikm, ikm_len, salt, salt_len, info, ll + ctx_len, out, 32);
}

int tt_proto_port_key(const uint8_t psk[TT_PSK_LEN], uint8_t out[32])
{
    return label_kdf(psk, TT_PSK_LEN, NULL, 0, "tt/1 port hopping", NULL, 0, out);
}

uint16_t tt_proto_hop_port(const uint8_t key[32], uint64_t slot, uint16_t lo, uint16_t hi)
{
    uint32_t span = (uint32_t)hi - lo + 1;
    return (uint16_t)(lo + tt_hotp(key, 32, slot) % span);
}

uint64_t tt_proto_hop_start(const uint8_t key[32], uint64_t slot, uint64_t interval_ms)
{
    /* The top bit keeps these HOTP counters apart from the ports' (a slot
     * never reaches 2^63). */
    uint64_t jitter = tt_hotp(key, 32, slot ^ (UINT64_C(1) << 63)) % (interval_ms / 2);
    return slot * interval_ms + jitter;
}

uint64_t tt_proto_hop_slot(const uint8_t key[32], uint64_t ms, uint64_t interval_ms)
{
    /* Boundary k lies in [k * I, k * I + I / 2), so MS belongs to slot
     * floor(MS / I) or, before that slot's boundary, to the one before. */
    uint64_t slot = ms / interval_ms;
    return ms < tt_proto_hop_start(key, slot, interval_ms) ? slot - 1 : slot;
}

int tt_proto_hello_keys(const uint8_t psk[TT_PSK_LEN], const uint8_t salt[TT_SALT_LEN],
                        uint8_t c2s[32], uint8_t s2c[32])
{
    if (label_kdf(psk, TT_PSK_LEN, salt, TT_SALT_LEN, "tt/1 hello c2s", NULL, 0, c2s) != 0 ||
        label_kdf(psk, TT_PSK_LEN, salt, TT_SALT_LEN, "tt/1 hello s2c", NULL, 0, s2c) != 0)
        return -EIO;
    return 0;
}

int tt_proto_session_keys(const uint8_t psk[TT_PSK_LEN], const uint8_t salt[TT_SALT_LEN],
                          const uint8_t shared[32], const uint8_t cpub[TT_PUB_LEN],
                          const uint8_t spub[TT_PUB_LEN], uint8_t c2s[32], uint8_t s2c[32])
{
    /* Both secrets feed the keys: the X25519 one gives forward secrecy, the
     * PSK keeps an active attacker without it out even if X25519 failed. */
    uint8_t ikm[64], ctx[2 * TT_PUB_LEN];
    memcpy(ikm, shared, 32);
    memcpy(ikm + 32, psk, TT_PSK_LEN);
    memcpy(ctx, cpub, TT_PUB_LEN);
    memcpy(ctx + TT_PUB_LEN, spub, TT_PUB_LEN);
    int rc = 0;
    if (label_kdf(ikm, sizeof ikm, salt, TT_SALT_LEN, "tt/1 session c2s", ctx, sizeof ctx, c2s) !=
            0 ||
        label_kdf(ikm, sizeof ikm, salt, TT_SALT_LEN, "tt/1 session s2c", ctx, sizeof ctx, s2c) !=
            0)
        rc = -EIO;
    OPENSSL_cleanse(ikm, sizeof ikm);
    return rc;
}

size_t tt_client_hello_size(size_t elen, size_t pad)
{
    return TT_SALT_LEN + TT_CLIENT_HDR_LEN + TT_CLIENT_HELLO_FIXED + elen + pad + TT_AEAD_TAG_LEN;
}

size_t tt_server_hello_size(size_t dlen, size_t pad)
{
    return TT_HELLO_HDR_LEN + TT_SERVER_HELLO_FIXED + dlen + pad + TT_AEAD_TAG_LEN;
}

/* Seals the head (the 2-byte length, then HEAD_EXTRA bytes already at
 * OUT + 2) and then BODY, built in place after the sealed head. */
static int seal_hello(tt_aead *k, size_t head_extra, size_t body_len, uint8_t *out)
{
    put16(out, body_len);
    if (tt_aead_seal(k, out, 2 + head_extra, out) != 0)
        return -EIO;
    uint8_t *body = out + 2 + head_extra + TT_AEAD_TAG_LEN;
    return tt_aead_seal(k, body, body_len, body) == 0 ? 0 : -EIO;
}

int tt_client_hello_seal(tt_aead *k, const uint8_t salt[TT_SALT_LEN], uint64_t ts,
                         const uint8_t cpub[TT_PUB_LEN], const uint8_t *early, size_t elen,
                         size_t pad, uint8_t *out)
{
    if (elen > TT_HELLO_MAX_DATA || pad > TT_HELLO_MAX_PAD)
        return -EINVAL;
    memcpy(out, salt, TT_SALT_LEN);
    put64(out + TT_SALT_LEN + 2, ts);
    uint8_t *b = out + TT_SALT_LEN + TT_CLIENT_HDR_LEN;
    b[0] = TT_PROTO_VERSION;
    memcpy(b + 1, cpub, TT_PUB_LEN);
    put16(b + 1 + TT_PUB_LEN, elen);
    if (elen)
        memcpy(b + TT_CLIENT_HELLO_FIXED, early, elen);
    memset(b + TT_CLIENT_HELLO_FIXED + elen, 0, pad);
    return seal_hello(k, 8, TT_CLIENT_HELLO_FIXED + elen + pad, out + TT_SALT_LEN);
}

int tt_server_hello_seal(tt_aead *k, const uint8_t spub[TT_PUB_LEN], const uint8_t *data,
                         size_t dlen, size_t pad, uint8_t *out)
{
    if (dlen > TT_HELLO_MAX_DATA || pad > TT_HELLO_MAX_PAD)
        return -EINVAL;
    uint8_t *b = out + TT_HELLO_HDR_LEN;
    b[0] = TT_PROTO_VERSION;
    memcpy(b + 1, spub, TT_PUB_LEN);
    put16(b + 1 + TT_PUB_LEN, dlen);
    if (dlen)
        memcpy(b + TT_SERVER_HELLO_FIXED, data, dlen);
    memset(b + TT_SERVER_HELLO_FIXED + dlen, 0, pad);
    return seal_hello(k, 0, TT_SERVER_HELLO_FIXED + dlen + pad, out);
}

int tt_hello_open_len(tt_aead *k, const uint8_t *in, bool is_client, size_t *body, uint64_t *ts)
{
    uint8_t head[TT_CLIENT_HDR_LEN - TT_AEAD_TAG_LEN];
    if (tt_aead_open(k, in, is_client ? TT_CLIENT_HDR_LEN : TT_HELLO_HDR_LEN, head) != 0)
        return -EBADMSG;
    if (is_client && ts != NULL)
        *ts = get64(head + 2);
    size_t fixed = is_client ? TT_CLIENT_HELLO_FIXED : TT_SERVER_HELLO_FIXED;
    size_t n = get16(head);
    if (n < fixed || n > fixed + TT_HELLO_MAX_DATA + TT_HELLO_MAX_PAD)
        return -EPROTO;
    *body = n + TT_AEAD_TAG_LEN;
    return 0;
}

/* Opens a hello body of LEN bytes in place; *N is its plaintext length. */
static int open_hello_body(tt_aead *k, uint8_t *in, size_t len, size_t fixed, size_t *n)
{
    if (len < fixed + TT_AEAD_TAG_LEN)
        return -EPROTO;
    if (tt_aead_open(k, in, len, in) != 0)
        return -EBADMSG;
    *n = len - TT_AEAD_TAG_LEN;
    return in[0] == TT_PROTO_VERSION ? 0 : -EPROTO;
}

int tt_client_hello_open(tt_aead *k, uint8_t *in, size_t len, tt_client_hello *out)
{
    size_t n;
    int rc = open_hello_body(k, in, len, TT_CLIENT_HELLO_FIXED, &n);
    if (rc != 0)
        return rc;
    memcpy(out->cpub, in + 1, TT_PUB_LEN);
    out->elen = get16(in + 1 + TT_PUB_LEN);
    if (out->elen > TT_HELLO_MAX_DATA || out->elen > n - TT_CLIENT_HELLO_FIXED)
        return -EPROTO;
    out->early = in + TT_CLIENT_HELLO_FIXED;
    return 0;
}

int tt_server_hello_open(tt_aead *k, uint8_t *in, size_t len, tt_server_hello *out)
{
    size_t n;
    int rc = open_hello_body(k, in, len, TT_SERVER_HELLO_FIXED, &n);
    if (rc != 0)
        return rc;
    memcpy(out->spub, in + 1, TT_PUB_LEN);
    out->dlen = get16(in + 1 + TT_PUB_LEN);
    if (out->dlen > TT_HELLO_MAX_DATA || out->dlen > n - TT_SERVER_HELLO_FIXED)
        return -EPROTO;
    out->data = in + TT_SERVER_HELLO_FIXED;
    return 0;
}

int tt_frame_writer_init(tt_frame_writer *w, enum tt_aead_alg alg, const uint8_t key[32])
{
    memset(&w->mask, 0, sizeof w->mask);
    return tt_aead_init(&w->aead, alg, key, true);
}

void tt_frame_writer_free(tt_frame_writer *w)
{
    tt_aead_free(&w->aead);
    memset(&w->mask, 0, sizeof w->mask);
}

/* XORs the mask of frame I (the frame sealed or opened with nonce I) into
 * HDR, making the next keystream block when I enters it. */
static int apply_mask(tt_aead *k, tt_frame_mask *m, uint64_t i, uint8_t hdr[TT_FRAME_HDR_LEN])
{
    uint64_t block = i / TT_FRAME_MASKS_PER_BLOCK;
    if (m->loaded != block + 1) {
        if (tt_aead_keystream(k, block, m->ks, sizeof m->ks) != 0)
            return -EIO;
        m->loaded = block + 1;
    }
    const uint8_t *ks = m->ks + (i % TT_FRAME_MASKS_PER_BLOCK) * TT_FRAME_HDR_LEN;
    for (size_t j = 0; j < TT_FRAME_HDR_LEN; j++)
        hdr[j] ^= ks[j];
    return 0;
}

size_t tt_frame_seal(tt_frame_writer *w, uint8_t type, const uint8_t *data, size_t len, size_t pad,
                     uint8_t *out)
{
    if (len > TT_FRAME_MAX_DATA || pad > TT_FRAME_MAX_PAD)
        return 0;
    uint8_t hdr[TT_FRAME_HDR_LEN] = {type, (uint8_t)(len >> 8), (uint8_t)len, (uint8_t)(pad >> 8),
                                     (uint8_t)pad};
    uint8_t masked[TT_FRAME_HDR_LEN];
    memcpy(masked, hdr, sizeof hdr);
    if (apply_mask(&w->aead, &w->mask, w->aead.counter, masked) != 0)
        return 0;
    /* The body is sealed before the header is written: DATA may already sit
     * at OUT + TT_FRAME_HDR_LEN, but never under the header itself. With
     * padding, the data is first copied next to its zeros so that one
     * cipher call covers both: a second call for a few bytes of padding
     * costs chacha20-poly1305 more than copying 4 KiB. */
    uint8_t *body = out + TT_FRAME_HDR_LEN;
    size_t size = TT_FRAME_OVERHEAD + len + pad;
    if (pad > 0) {
        if (len > 0 && data != body)
            memmove(body, data, len);
        memset(body + len, 0, pad);
        data = body;
        len += pad;
        pad = 0;
    }
    if (tt_aead_seal_ad(&w->aead, hdr, sizeof hdr, data, len, pad, body) != 0)
        return 0;
    memcpy(out, masked, sizeof masked);
    return size;
}

enum { R_HDR, R_BODY };

void tt_frame_reader_init(tt_frame_reader *r, size_t max_data)
{
    memset(r, 0, sizeof *r);
    r->max_data = max_data > TT_FRAME_MAX_DATA ? TT_FRAME_MAX_DATA : max_data;
    r->state = R_HDR;
    r->need = TT_FRAME_HDR_LEN;
}

static int reader_fail(tt_frame_reader *r, int err)
{
    r->failed = true;
    return err;
}

static int ensure_buf(tt_frame_reader *r)
{
    if (r->buf == NULL) {
        r->buf = malloc(TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD + TT_AEAD_TAG_LEN);
        if (r->buf == NULL)
            return -ENOMEM;
    }
    return 0;
}

int tt_frame_reader_feed(tt_frame_reader *r, const uint8_t *in, size_t n, size_t *used,
                         uint8_t *type, const uint8_t **data, size_t *len)
{
    size_t off = 0;
    *used = 0;
    if (r->failed)
        return -EPROTO;
    for (;;) {
        const uint8_t *whole = NULL;
        bool assembled = false;
        size_t avail = n - off;
        if (r->have == 0 && avail >= r->need) {
            /* The piece is all in IN: open it from there, no copy. */
            whole = in + off;
            off += r->need;
        } else {
            size_t take = r->need - r->have;
            if (take > avail)
                take = avail;
            if (take > 0) {
                if (ensure_buf(r) != 0)
                    return reader_fail(r, -ENOMEM);
                memcpy(r->buf + r->have, in + off, take);
                r->have += take;
                off += take;
            }
            if (r->have < r->need) {
                *used = off;
                return 0;
            }
            whole = r->buf;
            assembled = true;
        }
        if (r->state == R_HDR) {
            memcpy(r->hdr, whole, TT_FRAME_HDR_LEN);
            if (apply_mask(&r->aead, &r->mask, r->aead.counter, r->hdr) != 0)
                return reader_fail(r, -EIO);
            const uint8_t *h = r->hdr;
            r->type = h[0];
            r->len = get16(h + 1);
            r->pad = get16(h + 3);
            /* Checked before the body is read, so a corrupted header cannot
             * make the reader wait for more than the largest frame. */
            if (r->type > TT_FRAME_FIN || r->len > r->max_data || r->pad > TT_FRAME_MAX_PAD ||
                (r->type == TT_FRAME_FIN && r->len != 0))
                return reader_fail(r, -EPROTO);
            r->state = R_BODY;
            r->need = r->len + r->pad + TT_AEAD_TAG_LEN;
            r->have = 0;
            continue;
        }
        /* The body: into the owner's buffer when it came whole, else in
         * place in the reader's buffer, where it was assembled. */
        uint8_t *dst = assembled || r->out == NULL ? NULL : r->out;
        if (dst == NULL) {
            if (ensure_buf(r) != 0)
                return reader_fail(r, -ENOMEM);
            dst = r->buf;
        }
        if (tt_aead_open_ad(&r->aead, r->hdr, TT_FRAME_HDR_LEN, whole, r->need, dst) != 0)
            return reader_fail(r, -EBADMSG);
        *type = r->type;
        *data = dst;
        *len = r->len;
        r->state = R_HDR;
        r->need = TT_FRAME_HDR_LEN;
        r->have = 0;
        *used = off;
        return 1;
    }
}

bool tt_frame_reader_partial(const tt_frame_reader *r)
{
    return r->have > 0 || r->state != R_HDR;
}

void tt_frame_reader_trim(tt_frame_reader *r)
{
    if (!tt_frame_reader_partial(r)) {
        free(r->buf);
        r->buf = NULL;
    }
}

void tt_frame_reader_free(tt_frame_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    tt_aead_free(&r->aead);
}
