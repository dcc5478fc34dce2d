/* Fuzz harness for the tt/1 hellos (tt_hello_open_len, tt_client_hello_open,
 * tt_server_hello_open), under a fixed PSK.
 *
 * Byte 0 picks the mode (its value % 4) and the cipher (bit 2); the rest is:
 *
 *   0 raw        a client first flight (SALT, sealed head, body) opened as
 *                the server does, under both ciphers, the body from a heap
 *                copy of exactly the size the length announced (or what the
 *                input has); and the same bytes as a server hello opened as
 *                the client does. Random bytes almost never authenticate:
 *                this checks junk is refused safely.
 *   1 client     TS(8) ELEN(2) PAD(2) SALT?(1) SALT(32) CPUB(32) POS(2)
 *                FLIP(1) SHORT(1) EARLY...
 *                The harness seals a valid first flight with these fields
 *                (EARLY bytes from the input, repeated when ELEN asks for
 *                more), flips the bits FLIP at byte POS, and opens it as the
 *                server. Unmodified, it must open and every field round-trip;
 *                modified, it must be refused. SHORT hands the body opener
 *                fewer bytes than announced: refused.
 *   2 server     DLEN(2) PAD(2) SPUB(32) POS(2) FLIP(1) SHORT(1) DATA...
 *                The same for a server hello, opened as the client.
 *   3 plaintext  CLIENT(1) LEN(2) BODY...
 *                The harness seals a length field LEN and the plaintext BODY
 *                under the hello key, which reaches what no random input can:
 *                the parsing after authentication. The results must match a
 *                model of the protocol's rules exactly.
 *
 * Missing input bytes read as zero, so every input is a valid layout. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ttproto.h"

#include "fuzz_check.h"

/* The PSK of docs/tt1-vectors.md (bytes 0x00..0x1f), so seeds made for the
 * vectors authenticate here. */
static const uint8_t psk[TT_PSK_LEN] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                        11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                        22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
/* The salt a client-side check assumes it sent (0x20..0x3f, as there). */
static const uint8_t own_salt[TT_SALT_LEN] = {32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42,
                                              43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
                                              54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

static const enum tt_aead_alg algs[2] = {TT_AEAD_CHACHA20_POLY1305, TT_AEAD_AES_256_GCM};

static void bytes(cursor *c, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = u8(c);
}

static volatile uint8_t sink;

/* Reads every byte of a range the codec said is valid, so ASan checks it. */
static void touch(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sink ^= p[i];
}

static bool known_error(int rc)
{
    return rc == -EBADMSG || rc == -EPROTO;
}

/* A heap copy of exactly N bytes (ASan sees any read past it). */
static uint8_t *copy_of(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    CHECK(b != NULL);
    if (n)
        memcpy(b, p, n);
    return b;
}

/* The server's side: opens the first flight IN (N bytes) with ALG as
 * src/carrier/tt.c does. Returns 0 with *CH filled and *BODY (the caller
 * frees it) holding the opened body, or the first error. SHORT bytes are
 * withheld from the body opener. */
static int server_open(enum tt_aead_alg alg, const uint8_t *in, size_t n, size_t shorten,
                       tt_client_hello *ch, uint64_t *ts, uint8_t **body_out)
{
    *body_out = NULL;
    if (n < TT_CLIENT_PREFIX_LEN)
        return -EAGAIN;
    uint8_t c2s[32], s2c[32];
    CHECK(tt_proto_hello_keys(psk, in, c2s, s2c) == 0);
    tt_aead rx;
    CHECK(tt_aead_init(&rx, alg, c2s, false) == 0);
    size_t body = 0;
    int rc = tt_hello_open_len(&rx, in + TT_SALT_LEN, true, &body, ts);
    CHECK(rc == 0 || known_error(rc));
    if (rc == 0) {
        CHECK(body >= TT_CLIENT_HELLO_FIXED + TT_AEAD_TAG_LEN);
        CHECK(body <=
              TT_CLIENT_HELLO_FIXED + TT_HELLO_MAX_DATA + TT_HELLO_MAX_PAD + TT_AEAD_TAG_LEN);
        size_t have = n - TT_CLIENT_PREFIX_LEN;
        size_t blen = have < body ? have : body;
        blen = shorten < blen ? blen - shorten : 0;
        uint8_t *b = copy_of(in + TT_CLIENT_PREFIX_LEN, blen);
        rc = tt_client_hello_open(&rx, b, blen, ch);
        CHECK(rc == 0 || known_error(rc));
        if (rc == 0) {
            size_t plain = blen - TT_AEAD_TAG_LEN;
            CHECK(ch->elen <= TT_HELLO_MAX_DATA);
            CHECK(ch->early == b + TT_CLIENT_HELLO_FIXED);
            CHECK(TT_CLIENT_HELLO_FIXED + ch->elen <= plain);
            touch(ch->early, ch->elen);
            *body_out = b;
        } else {
            free(b);
        }
    }
    tt_aead_free(&rx);
    return rc;
}

/* The client's side: opens a server hello IN (N bytes) with ALG under the
 * hello s2c key of OWN_SALT. Like server_open. */
static int client_open(enum tt_aead_alg alg, const uint8_t *in, size_t n, size_t shorten,
                       tt_server_hello *sh, uint8_t **body_out)
{
    *body_out = NULL;
    if (n < TT_HELLO_HDR_LEN)
        return -EAGAIN;
    uint8_t c2s[32], s2c[32];
    CHECK(tt_proto_hello_keys(psk, own_salt, c2s, s2c) == 0);
    tt_aead rx;
    CHECK(tt_aead_init(&rx, alg, s2c, false) == 0);
    size_t body = 0;
    int rc = tt_hello_open_len(&rx, in, false, &body, NULL);
    CHECK(rc == 0 || known_error(rc));
    if (rc == 0) {
        CHECK(body >= TT_SERVER_HELLO_FIXED + TT_AEAD_TAG_LEN);
        CHECK(body <=
              TT_SERVER_HELLO_FIXED + TT_HELLO_MAX_DATA + TT_HELLO_MAX_PAD + TT_AEAD_TAG_LEN);
        size_t have = n - TT_HELLO_HDR_LEN;
        size_t blen = have < body ? have : body;
        blen = shorten < blen ? blen - shorten : 0;
        uint8_t *b = copy_of(in + TT_HELLO_HDR_LEN, blen);
        rc = tt_server_hello_open(&rx, b, blen, sh);
        CHECK(rc == 0 || known_error(rc));
        if (rc == 0) {
            size_t plain = blen - TT_AEAD_TAG_LEN;
            CHECK(sh->dlen <= TT_HELLO_MAX_DATA);
            CHECK(sh->data == b + TT_SERVER_HELLO_FIXED);
            CHECK(TT_SERVER_HELLO_FIXED + sh->dlen <= plain);
            touch(sh->data, sh->dlen);
            *body_out = b;
        } else {
            free(b);
        }
    }
    tt_aead_free(&rx);
    return rc;
}

static void run_raw(const uint8_t *in, size_t n)
{
    for (int a = 0; a < 2; a++) {
        tt_client_hello ch;
        tt_server_hello sh;
        uint8_t *b;
        uint64_t ts;
        server_open(algs[a], in, n, 0, &ch, &ts, &b);
        free(b);
        client_open(algs[a], in, n, 0, &sh, &b);
        free(b);
    }
}

/* Fills OUT with N bytes of SRC repeated (a pattern when SRC is empty). */
static void fill_from(const uint8_t *src, size_t nsrc, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = nsrc ? src[i % nsrc] : (uint8_t)(i * 7);
}

static void run_client(enum tt_aead_alg alg, cursor *c)
{
    uint64_t ts = u64(c);
    size_t elen = u16(c) % (TT_HELLO_MAX_DATA + 1);
    size_t pad = u16(c) % (TT_HELLO_MAX_PAD + 1);
    bool input_salt = u8(c) & 1;
    uint8_t salt[32], cpub[32];
    bytes(c, salt, 32);
    if (!input_salt)
        memcpy(salt, own_salt, 32);
    bytes(c, cpub, 32);
    size_t pos = u16(c);
    uint8_t flip = u8(c);
    size_t shorten = u8(c) % 4 == 0 ? u8(c) : 0;
    uint8_t *early = malloc(elen ? elen : 1);
    CHECK(early != NULL);
    fill_from(c->p + c->off, c->n - c->off, early, elen);

    uint8_t hc2s[32], hs2c[32];
    CHECK(tt_proto_hello_keys(psk, salt, hc2s, hs2c) == 0);
    tt_aead tx;
    CHECK(tt_aead_init(&tx, alg, hc2s, true) == 0);
    size_t size = tt_client_hello_size(elen, pad);
    uint8_t *flight = malloc(size);
    CHECK(flight != NULL);
    CHECK(tt_client_hello_seal(&tx, salt, ts, cpub, early, elen, pad, flight) == 0);
    tt_aead_free(&tx);

    bool modified = flip != 0;
    if (modified)
        flight[pos % size] ^= flip;
    tt_client_hello ch;
    uint8_t *b;
    uint64_t got_ts = 0;
    int rc = server_open(alg, flight, size, shorten, &ch, &got_ts, &b);
    if (modified || shorten) {
        CHECK(rc < 0);
    } else {
        CHECK(rc == 0);
        CHECK(got_ts == ts);
        CHECK(memcmp(ch.cpub, cpub, 32) == 0);
        CHECK(ch.elen == elen);
        CHECK(elen == 0 || memcmp(ch.early, early, elen) == 0);
        for (size_t i = 0; i < pad; i++)
            CHECK(ch.early[elen + i] == 0);
    }
    free(b);
    /* The other cipher never opens it. */
    rc = server_open(algs[alg == algs[0]], flight, size, 0, &ch, &got_ts, &b);
    CHECK(rc == -EBADMSG);
    free(b);
    free(flight);
    free(early);
}

static void run_server(enum tt_aead_alg alg, cursor *c)
{
    size_t dlen = u16(c) % (TT_HELLO_MAX_DATA + 1);
    size_t pad = u16(c) % (TT_HELLO_MAX_PAD + 1);
    uint8_t spub[32];
    bytes(c, spub, 32);
    size_t pos = u16(c);
    uint8_t flip = u8(c);
    size_t shorten = u8(c) % 4 == 0 ? u8(c) : 0;
    uint8_t *data = malloc(dlen ? dlen : 1);
    CHECK(data != NULL);
    fill_from(c->p + c->off, c->n - c->off, data, dlen);

    uint8_t hc2s[32], hs2c[32];
    CHECK(tt_proto_hello_keys(psk, own_salt, hc2s, hs2c) == 0);
    tt_aead tx;
    CHECK(tt_aead_init(&tx, alg, hs2c, true) == 0);
    size_t size = tt_server_hello_size(dlen, pad);
    uint8_t *hello = malloc(size);
    CHECK(hello != NULL);
    CHECK(tt_server_hello_seal(&tx, spub, data, dlen, pad, hello) == 0);
    tt_aead_free(&tx);

    bool modified = flip != 0;
    if (modified)
        hello[pos % size] ^= flip;
    tt_server_hello sh;
    uint8_t *b;
    int rc = client_open(alg, hello, size, shorten, &sh, &b);
    if (modified || shorten) {
        CHECK(rc < 0);
    } else {
        CHECK(rc == 0);
        CHECK(memcmp(sh.spub, spub, 32) == 0);
        CHECK(sh.dlen == dlen);
        CHECK(dlen == 0 || memcmp(sh.data, data, dlen) == 0);
        for (size_t i = 0; i < pad; i++)
            CHECK(sh.data[dlen + i] == 0);
    }
    free(b);
    free(hello);
    free(data);
}

/* The rules of docs/PROTOCOL.md for a hello whose plaintext body is BODY (N
 * bytes) and whose length field says LEN. Returns the expected result of
 * opening the length, then (when that passes) of opening the body. */
static int model_len(bool client, size_t len)
{
    size_t fixed = client ? TT_CLIENT_HELLO_FIXED : TT_SERVER_HELLO_FIXED;
    return len >= fixed && len <= fixed + TT_HELLO_MAX_DATA + TT_HELLO_MAX_PAD ? 0 : -EPROTO;
}

static int model_body(bool client, const uint8_t *body, size_t n, size_t *dlen)
{
    size_t fixed = client ? TT_CLIENT_HELLO_FIXED : TT_SERVER_HELLO_FIXED;
    if (n < fixed || body[0] != TT_PROTO_VERSION)
        return -EPROTO;
    *dlen = ((size_t)body[fixed - 2] << 8) | body[fixed - 1];
    if (*dlen > TT_HELLO_MAX_DATA || *dlen > n - fixed)
        return -EPROTO;
    return 0;
}

static void run_plaintext(enum tt_aead_alg alg, cursor *c)
{
    bool client = u8(c) & 1;
    size_t len = u16(c);
    const uint8_t *body = c->p + c->off;
    size_t n = c->n - c->off;

    uint8_t hc2s[32], hs2c[32];
    CHECK(tt_proto_hello_keys(psk, own_salt, hc2s, hs2c) == 0);
    const uint8_t *k = client ? hc2s : hs2c;
    tt_aead tx, rx;
    CHECK(tt_aead_init(&tx, alg, k, true) == 0);
    CHECK(tt_aead_init(&rx, alg, k, false) == 0);
    /* A client's head carries a time stamp after the length. */
    uint8_t hdr[TT_CLIENT_HDR_LEN],
        lf[10] = {(uint8_t)(len >> 8), (uint8_t)len, 1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t *sealed = malloc(n + TT_AEAD_TAG_LEN);
    CHECK(sealed != NULL);
    CHECK(tt_aead_seal(&tx, lf, client ? 10 : 2, hdr) == 0);
    CHECK(tt_aead_seal(&tx, body, n, sealed) == 0);
    tt_aead_free(&tx);

    size_t blen = 0;
    uint64_t ts = 0;
    int rc = tt_hello_open_len(&rx, hdr, client, &blen, &ts);
    CHECK(rc == model_len(client, len));
    if (rc == 0) {
        CHECK(blen == len + TT_AEAD_TAG_LEN);
        /* Open what was sealed, whatever the length field claimed: the
         * body's own checks are what this mode is for. */
        size_t want_dlen = 0;
        int want = model_body(client, body, n, &want_dlen);
        if (client) {
            tt_client_hello ch;
            rc = tt_client_hello_open(&rx, sealed, n + TT_AEAD_TAG_LEN, &ch);
            CHECK(rc == want);
            if (rc == 0) {
                CHECK(ch.elen == want_dlen);
                CHECK(ch.early == sealed + TT_CLIENT_HELLO_FIXED);
                CHECK(memcmp(ch.cpub, body + 1, 32) == 0);
                CHECK(ts == UINT64_C(0x0102030405060708));
                CHECK(memcmp(ch.early, body + TT_CLIENT_HELLO_FIXED, ch.elen) == 0);
            }
        } else {
            tt_server_hello sh;
            rc = tt_server_hello_open(&rx, sealed, n + TT_AEAD_TAG_LEN, &sh);
            CHECK(rc == want);
            if (rc == 0) {
                CHECK(sh.dlen == want_dlen);
                CHECK(sh.data == sealed + TT_SERVER_HELLO_FIXED);
                CHECK(memcmp(sh.spub, body + 1, 32) == 0);
                CHECK(memcmp(sh.data, body + TT_SERVER_HELLO_FIXED, sh.dlen) == 0);
            }
        }
    }
    tt_aead_free(&rx);
    free(sealed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    cursor c = {data, size, 1};
    enum tt_aead_alg alg = (data[0] & 4) ? TT_AEAD_AES_256_GCM : TT_AEAD_CHACHA20_POLY1305;
    switch (data[0] % 4) {
    case 0:
        run_raw(data + 1, size - 1);
        break;
    case 1:
        run_client(alg, &c);
        break;
    case 2:
        run_server(alg, &c);
        break;
    default:
        run_plaintext(alg, &c);
        break;
    }
    return 0;
}
