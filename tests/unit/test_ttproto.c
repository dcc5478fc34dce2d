/* Tests of the tt/1 codec (src/codec/ttproto.c): the PSK and key schedule,
 * port hopping, a whole handshake in memory with both ciphers, frames fed in
 * every split, every rejection the protocol specifies, and golden vectors
 * (docs/tt1-vectors.md) that pin the wire format byte for byte.
 *
 * The golden bytes were computed by an independent implementation of
 * docs/PROTOCOL.md (Python's cryptography package), not by this codec, so they
 * check the codec against the specification rather than against itself. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "codec/ttproto.h"
#include "core/crypto.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The stream-open header for 127.0.0.1:80 (docs/PROTOCOL.md). */
static const uint8_t open_127_80[9] = {0x01, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x50};
static const enum tt_aead_alg both_algs[2] = {TT_AEAD_CHACHA20_POLY1305, TT_AEAD_AES_256_GCM};

/* Asserts that GOT holds exactly the bytes of WANT_HEX, printing both in hex
 * when not, so a changed vector can be read off the failure. */
static void expect_hex(const uint8_t *got, size_t n, const char *want_hex, const char *what)
{
    cr_assert_eq(strlen(want_hex), 2 * n, "%s: %zu bytes, the vector has %zu", what, n,
                 strlen(want_hex) / 2);
    char *g = malloc(2 * n + 1);
    cr_assert_not_null(g);
    for (size_t i = 0; i < n; i++)
        snprintf(g + 2 * i, 3, "%02x", got[i]);
    cr_assert_str_eq(g, want_hex, "%s differs:\n got  %s\n want %s", what, g, want_hex);
    free(g);
}

static void fill_seq(uint8_t *p, size_t n, uint8_t first)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(first + i);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* PSK */

Test(ttproto, psk_generated_key_decodes_to_its_bytes)
{
    for (int i = 0; i < 20; i++) {
        char text[45];
        memset(text, 'x', sizeof text);
        tt_psk_generate(text);
        cr_assert_eq(strlen(text), 44);
        cr_assert_eq(text[43], '=');
        uint8_t want[33], psk[TT_PSK_LEN];
        cr_assert_eq(EVP_DecodeBlock(want, (const unsigned char *)text, 44), 33);
        bool is_password = true;
        cr_assert_eq(tt_psk_derive(text, psk, &is_password), 0);
        cr_assert_not(is_password, "%s taken for a password", text);
        cr_assert_arr_eq(psk, want, TT_PSK_LEN);
    }
}

Test(ttproto, psk_known_base64_key)
{
    /* Base64 of the bytes 0x00..0x1f. */
    uint8_t psk[TT_PSK_LEN], want[TT_PSK_LEN];
    bool is_password = true;
    fill_seq(want, sizeof want, 0);
    cr_assert_eq(tt_psk_derive("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", psk, &is_password),
                 0);
    cr_assert_not(is_password);
    cr_assert_arr_eq(psk, want, TT_PSK_LEN);
}

Test(ttproto, psk_generated_keys_differ)
{
    char a[45], b[45];
    tt_psk_generate(a);
    tt_psk_generate(b);
    cr_assert_str_neq(a, b);
}

/* Derives TEXT twice, checks it is a password both times and that both
 * agree, and returns the key in PSK. */
static void derive_password(const char *text, uint8_t psk[TT_PSK_LEN])
{
    uint8_t again[TT_PSK_LEN];
    bool p1 = false, p2 = false;
    cr_assert_eq(tt_psk_derive(text, psk, &p1), 0, "%s", text);
    cr_assert(p1, "\"%s\" not taken for a password", text);
    cr_assert_eq(tt_psk_derive(text, again, &p2), 0);
    cr_assert(p2);
    cr_assert_arr_eq(psk, again, TT_PSK_LEN, "two derivations of \"%s\" differ", text);
}

Test(ttproto, psk_near_base64_texts_are_passwords, .timeout = 120)
{
    char key[45], text[64];
    tt_psk_generate(key);
    uint8_t raw[33];
    cr_assert_eq(EVP_DecodeBlock(raw, (const unsigned char *)key, 44), 33);

    const char *cases[5];
    char c43[44], c45[46], bang[45], twoeq[45];
    /* 43 characters: the key without its '='. */
    memcpy(c43, key, 43);
    c43[43] = '\0';
    /* 45 characters: one more. */
    snprintf(c45, sizeof c45, "%sA", key);
    /* 44 characters ending in '=' but not base64. */
    memset(bang, '!', 43);
    bang[43] = '=';
    bang[44] = '\0';
    /* 44 characters of base64 with "==": 31 bytes, not a key. */
    memcpy(twoeq, key, 45);
    twoeq[42] = '=';
    cases[0] = c43;
    cases[1] = c45;
    cases[2] = bang;
    cases[3] = twoeq;
    cases[4] = "correct horse battery staple";
    uint8_t keys[5][TT_PSK_LEN];
    for (size_t i = 0; i < LEN(cases); i++) {
        snprintf(text, sizeof text, "%s", cases[i]);
        derive_password(text, keys[i]);
        cr_assert(memcmp(keys[i], raw, TT_PSK_LEN) != 0, "\"%s\" decoded as base64", text);
    }
    for (size_t i = 0; i < LEN(cases); i++)
        for (size_t j = i + 1; j < LEN(cases); j++)
            cr_assert(memcmp(keys[i], keys[j], TT_PSK_LEN) != 0, "cases %zu and %zu agree", i, j);
}

Test(ttproto, psk_equals_sign_inside_is_password, .timeout = 60)
{
    /* 44 characters ending in one '=', but with a '=' inside as well: not
     * base64 (RFC 4648 allows '=' only as final padding), so by
     * docs/PROTOCOL.md a password. A lenient decoder reads the inner '=' as
     * 'A' and would take this text for the key 00 01 02 .. 1f. */
    static const char *const texts[] = {
        "AAEC=wQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "====AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    };
    for (size_t i = 0; i < LEN(texts); i++) {
        uint8_t psk[TT_PSK_LEN], lenient[33];
        bool is_password = false;
        cr_assert_eq(EVP_DecodeBlock(lenient, (const unsigned char *)texts[i], 44), 33);
        cr_assert_eq(tt_psk_derive(texts[i], psk, &is_password), 0);
        cr_expect(is_password, "\"%s\" taken for a base64 key", texts[i]);
        cr_expect(memcmp(psk, lenient, TT_PSK_LEN) != 0, "\"%s\" used as its lenient decoding",
                  texts[i]);
    }
}

Test(ttproto, psk_password_known_answer, .timeout = 60)
{
    /* scrypt(P = text, S = "tt/1 password", N = 2^15, r = 8, p = 1, 32). */
    uint8_t psk[TT_PSK_LEN];
    derive_password("correct horse battery staple", psk);
    expect_hex(psk, sizeof psk, "a1a80b0debde14c6ce44dc508afcbce9c1d12c94407e900dc17b78dc41953de1",
               "password PSK");
}

Test(ttproto, psk_empty_text_is_einval)
{
    uint8_t psk[TT_PSK_LEN];
    bool is_password = false;
    cr_assert_eq(tt_psk_derive("", psk, &is_password), -EINVAL);
    cr_assert_eq(tt_psk_derive(NULL, psk, &is_password), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* Key schedule */

Test(ttproto, hello_keys_deterministic_and_separated)
{
    uint8_t psk[32], salt[32], salt2[32], psk2[32];
    tt_random(psk, sizeof psk);
    tt_random(salt, sizeof salt);
    memcpy(salt2, salt, sizeof salt);
    salt2[31] ^= 1;
    memcpy(psk2, psk, sizeof psk);
    psk2[0] ^= 0x80;

    uint8_t c1[32], s1[32], c2[32], s2[32], c3[32], s3[32], c4[32], s4[32];
    cr_assert_eq(tt_proto_hello_keys(psk, salt, c1, s1), 0);
    cr_assert_eq(tt_proto_hello_keys(psk, salt, c2, s2), 0);
    cr_assert_arr_eq(c1, c2, 32);
    cr_assert_arr_eq(s1, s2, 32);
    cr_assert(memcmp(c1, s1, 32) != 0, "c2s == s2c");
    cr_assert_eq(tt_proto_hello_keys(psk, salt2, c3, s3), 0);
    cr_assert(memcmp(c1, c3, 32) != 0 && memcmp(s1, s3, 32) != 0, "salt ignored");
    cr_assert_eq(tt_proto_hello_keys(psk2, salt, c4, s4), 0);
    cr_assert(memcmp(c1, c4, 32) != 0 && memcmp(s1, s4, 32) != 0, "psk ignored");
}

Test(ttproto, session_keys_depend_on_every_input)
{
    uint8_t in[5][32]; /* shared, psk, salt, cpub, spub */
    for (int i = 0; i < 5; i++)
        tt_random(in[i], 32);
    uint8_t c[32], s[32], c2[32], s2[32];
    cr_assert_eq(tt_proto_session_keys(in[1], in[2], in[0], in[3], in[4], c, s), 0);
    cr_assert_eq(tt_proto_session_keys(in[1], in[2], in[0], in[3], in[4], c2, s2), 0);
    cr_assert_arr_eq(c, c2, 32);
    cr_assert_arr_eq(s, s2, 32);
    cr_assert(memcmp(c, s, 32) != 0, "c2s == s2c");

    static const char *const names[5] = {"shared", "psk", "salt", "cpub", "spub"};
    for (int which = 0; which < 5; which++) {
        for (int byte = 0; byte < 32; byte += 31) {
            uint8_t m[5][32];
            memcpy(m, in, sizeof m);
            m[which][byte] ^= 0x01;
            cr_assert_eq(tt_proto_session_keys(m[1], m[2], m[0], m[3], m[4], c2, s2), 0);
            cr_assert(memcmp(c, c2, 32) != 0, "c2s ignores %s[%d]", names[which], byte);
            cr_assert(memcmp(s, s2, 32) != 0, "s2c ignores %s[%d]", names[which], byte);
        }
    }
    /* The two public keys play different parts: swapping them changes the
     * keys, so a reflected hello cannot reuse a session. */
    cr_assert_eq(tt_proto_session_keys(in[1], in[2], in[0], in[4], in[3], c2, s2), 0);
    cr_assert(memcmp(c, c2, 32) != 0 && memcmp(s, s2, 32) != 0, "cpub/spub order ignored");

    /* And they are not the hello keys of the same PSK and salt. */
    uint8_t hc[32], hs[32];
    cr_assert_eq(tt_proto_hello_keys(in[1], in[2], hc, hs), 0);
    cr_assert(memcmp(c, hc, 32) != 0 && memcmp(s, hs, 32) != 0);
}

Test(ttproto, port_key)
{
    uint8_t psk[32], psk2[32], k1[32], k2[32], k3[32], hc[32], hs[32], zero[32] = {0};
    tt_random(psk, sizeof psk);
    memcpy(psk2, psk, sizeof psk);
    psk2[17] ^= 4;
    cr_assert_eq(tt_proto_port_key(psk, k1), 0);
    cr_assert_eq(tt_proto_port_key(psk, k2), 0);
    cr_assert_arr_eq(k1, k2, 32);
    cr_assert(memcmp(k1, psk, 32) != 0 && memcmp(k1, zero, 32) != 0);
    cr_assert_eq(tt_proto_port_key(psk2, k3), 0);
    cr_assert(memcmp(k1, k3, 32) != 0, "psk ignored");
    /* A salt of zeros must not make the hello keys equal to the port key. */
    cr_assert_eq(tt_proto_hello_keys(psk, zero, hc, hs), 0);
    cr_assert(memcmp(k1, hc, 32) != 0 && memcmp(k1, hs, 32) != 0);
}

Test(ttproto, hop_port_within_range_and_by_formula)
{
    uint8_t key[32];
    tt_random(key, sizeof key);
    static const uint16_t ranges[][2] = {
        {1024, 65535}, {0, 65535}, {10000, 10009}, {5000, 5001}, {0, 0}, {65535, 65535}, {443, 443},
    };
    for (size_t r = 0; r < LEN(ranges); r++) {
        uint16_t lo = ranges[r][0], hi = ranges[r][1];
        uint32_t span = (uint32_t)hi - lo + 1;
        bool seen_lo = false, seen_hi = false;
        for (uint64_t slot = 0; slot < 2000; slot++) {
            uint64_t s = slot < 1000 ? slot : UINT64_MAX - (slot - 1000);
            uint16_t p = tt_proto_hop_port(key, s, lo, hi);
            cr_assert(p >= lo && p <= hi, "slot %llu: %u outside %u-%u", (unsigned long long)s, p,
                      lo, hi);
            cr_assert_eq(p, (uint16_t)(lo + tt_hotp(key, 32, s) % span));
            seen_lo |= p == lo;
            seen_hi |= p == hi;
        }
        if (span <= 10)
            cr_assert(seen_lo && seen_hi, "%u-%u: an end never chosen", lo, hi);
    }
    /* Different slots give different ports (a fixed port is not hopping). */
    int differ = 0;
    for (uint64_t s = 1; s < 50; s++)
        differ += tt_proto_hop_port(key, s, 1024, 65535) != tt_proto_hop_port(key, 0, 1024, 65535);
    cr_assert_gt(differ, 40);
}

Test(ttproto, hop_slots_begin_off_the_interval_grid)
{
    uint8_t key[32];
    tt_random(key, sizeof key);
    const uint64_t iv = 60000, t0 = UINT64_C(1700000000000);
    uint64_t first = tt_proto_hop_slot(key, t0, iv);
    int on_grid = 0;
    uint64_t shortest = UINT64_MAX, longest = 0;
    for (uint64_t s = first; s < first + 500; s++) {
        uint64_t b = tt_proto_hop_start(key, s, iv), e = tt_proto_hop_start(key, s + 1, iv);
        cr_assert(b >= s * iv && b < s * iv + iv / 2, "boundary %llu off its half interval",
                  (unsigned long long)s);
        cr_assert_eq(b, s * iv + tt_hotp(key, 32, s ^ (UINT64_C(1) << 63)) % (iv / 2));
        /* The slot of each boundary's millisecond, and of the one before. */
        cr_assert_eq(tt_proto_hop_slot(key, b, iv), s);
        cr_assert_eq(tt_proto_hop_slot(key, b - 1, iv), s - 1);
        cr_assert_eq(tt_proto_hop_slot(key, e - 1, iv), s);
        on_grid += b % 1000 == 0;
        shortest = e - b < shortest ? e - b : shortest;
        longest = e - b > longest ? e - b : longest;
    }
    /* Not on whole seconds (let alone minutes), and of uneven lengths. */
    cr_assert_lt(on_grid, 5);
    cr_assert(shortest < iv * 3 / 4 && longest > iv * 5 / 4, "%llu..%llu",
              (unsigned long long)shortest, (unsigned long long)longest);
    /* The smallest interval. */
    for (uint64_t ms = 0; ms < 5000; ms++) {
        uint64_t s = tt_proto_hop_slot(key, ms + 10000, 1000);
        cr_assert(tt_proto_hop_start(key, s, 1000) <= ms + 10000 &&
                  ms + 10000 < tt_proto_hop_start(key, s + 1, 1000));
    }
}

/* ------------------------------------------------------------------------ */
/* Frames: helpers */

typedef struct spec {
    uint8_t type;
    size_t len, pad;
} spec;

/* The payload of frame I, byte J: distinct per frame so a mixed-up frame
 * shows. */
static uint8_t payload_byte(size_t i, size_t j)
{
    return (uint8_t)(i * 71 + j * 13 + (j >> 8));
}

static size_t stream_size(const spec *s, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += TT_FRAME_OVERHEAD + s[i].len + s[i].pad;
    return total;
}

/* Writes a frame as PROTOCOL.md describes it, with no limits checked: the
 * header masked with its share of keystream block i / 32 and authenticated
 * as the body's additional data. Written from the spec rather than with the
 * codec's own masking, so that a frame the sealer refuses can be made. */
static void forge_frame(tt_frame_writer *tx, uint8_t type, size_t len, size_t pad,
                        const uint8_t *data, uint8_t *out)
{
    uint64_t i = tx->aead.counter;
    uint8_t ks[TT_FRAME_MASK_BLOCK];
    cr_assert_eq(tt_aead_keystream(&tx->aead, i / 32, ks, sizeof ks), 0);
    uint8_t hdr[5] = {type, (uint8_t)(len >> 8), (uint8_t)len, (uint8_t)(pad >> 8), (uint8_t)pad};
    for (size_t j = 0; j < 5; j++)
        out[j] = hdr[j] ^ ks[(i % 32) * 5 + j];
    cr_assert_eq(tt_aead_seal_ad(&tx->aead, hdr, 5, data, len, pad, out + 5), 0);
}

/* Seals the frames S with TX into a new buffer of *SIZE bytes; *ENDS (if not
 * NULL) gets the offset just past each frame. */
static uint8_t *seal_stream(tt_frame_writer *tx, const spec *s, size_t n, size_t *size,
                            size_t *ends)
{
    size_t total = stream_size(s, n);
    uint8_t *buf = malloc(total > 0 ? total : 1);
    uint8_t *data = malloc(TT_FRAME_MAX_DATA + 64);
    cr_assert(buf != NULL && data != NULL);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < s[i].len; j++)
            data[j] = payload_byte(i, j);
        size_t w;
        if (s[i].len <= TT_FRAME_MAX_DATA && s[i].pad <= TT_FRAME_MAX_PAD) {
            w = tt_frame_seal(tx, s[i].type, data, s[i].len, s[i].pad, buf + off);
        } else {
            /* The sealer refuses frames over the limits, so forge them with
             * the AEAD directly to test that the reader refuses them too. */
            forge_frame(tx, s[i].type, s[i].len, s[i].pad, data, buf + off);
            w = TT_FRAME_OVERHEAD + s[i].len + s[i].pad;
        }
        cr_assert_eq(w, TT_FRAME_OVERHEAD + s[i].len + s[i].pad);
        off += w;
        if (ends)
            ends[i] = off;
    }
    free(data);
    *size = total;
    return buf;
}

/* What the reader delivered, checked against the frames expected. */
typedef struct expect {
    const spec *s;
    size_t n, got;
} expect;

static void on_frame(expect *e, uint8_t type, const uint8_t *data, size_t len)
{
    cr_assert_lt(e->got, e->n, "more frames than sealed");
    const spec *s = &e->s[e->got];
    cr_assert_eq(type, s->type, "frame %zu: type %u, want %u", e->got, type, s->type);
    cr_assert_eq(len, s->len, "frame %zu: %zu bytes, want %zu", e->got, len, s->len);
    for (size_t j = 0; j < len; j++)
        cr_assert_eq(data[j], payload_byte(e->got, j), "frame %zu byte %zu", e->got, j);
    e->got++;
}

/* Feeds one piece, taking every frame it completes. Returns 0 when the piece
 * is used up, or the reader's error. */
static int feed_piece(tt_frame_reader *r, const uint8_t *p, size_t len, expect *e)
{
    size_t off = 0;
    for (;;) {
        size_t used = 99999, dlen = 0;
        uint8_t type = 0xee;
        const uint8_t *data = NULL;
        int rc = tt_frame_reader_feed(r, p + off, len - off, &used, &type, &data, &dlen);
        if (rc < 0)
            return rc;
        cr_assert_leq(used, len - off);
        off += used;
        if (rc == 0) {
            cr_assert_eq(off, len, "0 returned with %zu bytes unused", len - off);
            return 0;
        }
        cr_assert_eq(rc, 1);
        on_frame(e, type, data, dlen);
        if (off == len)
            return 0;
    }
}

/* Feeds IN in pieces cut at CUT (0 or N: one piece), stopping at an error. */
static int feed_split(tt_frame_reader *r, const uint8_t *in, size_t n, size_t cut, expect *e)
{
    int rc = feed_piece(r, in, cut, e);
    return rc < 0 ? rc : feed_piece(r, in + cut, n - cut, e);
}

/* Feeds IN STEP bytes at a time. */
static int feed_step(tt_frame_reader *r, const uint8_t *in, size_t n, size_t step, expect *e)
{
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        int rc = feed_piece(r, in + off, k, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void reader_keyed(tt_frame_reader *r, enum tt_aead_alg alg, const uint8_t key[32],
                         size_t max_data)
{
    tt_frame_reader_init(r, max_data);
    cr_assert_eq(tt_aead_init(&r->aead, alg, key, false), 0);
}

/* A sealer and a matching reader under a fixed key, so that what a
 * misplaced frame's header unmasks to (and so whether the reader refuses it
 * at once or first waits for a body) is the same on every run. */
static void keyed_pair(enum tt_aead_alg alg, tt_frame_writer *tx, tt_frame_reader *rx,
                       size_t max_data)
{
    uint8_t key[32];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(0x5a ^ i);
    cr_assert_eq(tt_frame_writer_init(tx, alg, key), 0);
    reader_keyed(rx, alg, key, max_data);
}

/* Opens STREAM with a fresh reader under KEY in every way the brief of the
 * reader allows: whole, split at every byte boundary, one byte at a time and
 * in a few odd steps; each must give exactly the frames S. */
static void check_all_splits(enum tt_aead_alg alg, const uint8_t key[32], const uint8_t *stream,
                             size_t size, const spec *s, size_t n, bool every_split)
{
    size_t steps[] = {size, 1, 2, 7, 21, 22, 37, 4096};
    /* Every other run decrypts into an owner's buffer of exactly the room
     * the reader's contract asks for (ASan sees a byte past it). */
    uint8_t *out = malloc(TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD);
    cr_assert_not_null(out);
    for (size_t i = 0; i < 2 * LEN(steps); i++) {
        size_t step = steps[i / 2];
        tt_frame_reader r;
        reader_keyed(&r, alg, key, TT_FRAME_MAX_DATA);
        if (i & 1)
            r.out = out;
        expect e = {s, n, 0};
        cr_assert_eq(feed_step(&r, stream, size, step, &e), 0, "step %zu", step);
        cr_assert_eq(e.got, n, "step %zu: %zu of %zu frames", step, e.got, n);
        cr_assert_not(tt_frame_reader_partial(&r));
        tt_frame_reader_free(&r);
    }
    free(out);
    if (!every_split)
        return;
    for (size_t cut = 0; cut <= size; cut++) {
        tt_frame_reader r;
        reader_keyed(&r, alg, key, TT_FRAME_MAX_DATA);
        expect e = {s, n, 0};
        cr_assert_eq(feed_split(&r, stream, size, cut, &e), 0, "cut %zu", cut);
        cr_assert_eq(e.got, n, "cut %zu: %zu of %zu frames", cut, e.got, n);
        tt_frame_reader_free(&r);
    }
}

/* ------------------------------------------------------------------------ */
/* A whole handshake in memory */

typedef struct session {
    uint8_t c2s[32], s2c[32];
} session;

static void handshake(enum tt_aead_alg alg, session *out)
{
    uint8_t psk[32], salt[32], cpriv[32], cpub[32], spriv[32], spub[32];
    tt_random(psk, sizeof psk);
    tt_random(salt, sizeof salt);
    cr_assert_eq(tt_x25519_keypair(cpriv, cpub), 0);
    cr_assert_eq(tt_x25519_keypair(spriv, spub), 0);

    /* Client: first flight with a stream-open header, early payload and
     * padding. */
    uint8_t chc2s[32], chs2c[32];
    cr_assert_eq(tt_proto_hello_keys(psk, salt, chc2s, chs2c), 0);
    tt_aead c_htx, c_hrx;
    cr_assert_eq(tt_aead_init(&c_htx, alg, chc2s, true), 0);
    cr_assert_eq(tt_aead_init(&c_hrx, alg, chs2c, false), 0);
    uint8_t early[9 + 14];
    memcpy(early, open_127_80, 9);
    memcpy(early + 9, "GET / HTTP/1.0", 14);
    const size_t elen = sizeof early, cpad = 37;
    const uint64_t ts = 1700000123;
    size_t fsz = tt_client_hello_size(elen, cpad);
    cr_assert_eq(fsz, 32 + 26 + 35 + elen + cpad + 16);
    uint8_t *flight = malloc(fsz);
    cr_assert_not_null(flight);
    cr_assert_eq(tt_client_hello_seal(&c_htx, salt, ts, cpub, early, elen, cpad, flight), 0);
    cr_assert_eq(c_htx.counter, 2, "a client hello is two messages");
    cr_assert_arr_eq(flight, salt, 32, "the salt leads the flight in clear");

    /* Server: hello keys from the salt it read, the length, then the body
     * from a buffer of exactly its size. */
    uint8_t shc2s[32], shs2c[32];
    cr_assert_eq(tt_proto_hello_keys(psk, flight, shc2s, shs2c), 0);
    cr_assert_arr_eq(shc2s, chc2s, 32);
    tt_aead s_hrx, s_htx;
    cr_assert_eq(tt_aead_init(&s_hrx, alg, shc2s, false), 0);
    cr_assert_eq(tt_aead_init(&s_htx, alg, shs2c, true), 0);
    size_t body = 0;
    uint64_t hts = 0;
    cr_assert_eq(tt_hello_open_len(&s_hrx, flight + TT_SALT_LEN, true, &body, &hts), 0);
    cr_assert_eq(hts, ts);
    cr_assert_eq(body, 35 + elen + cpad + 16);
    cr_assert_eq(TT_CLIENT_PREFIX_LEN + body, fsz);
    uint8_t *cb = malloc(body);
    cr_assert_not_null(cb);
    memcpy(cb, flight + TT_CLIENT_PREFIX_LEN, body);
    tt_client_hello ch;
    memset(&ch, 0, sizeof ch);
    cr_assert_eq(tt_client_hello_open(&s_hrx, cb, body, &ch), 0);
    cr_assert_arr_eq(ch.cpub, cpub, 32);
    cr_assert_eq(ch.elen, elen);
    cr_assert_eq(ch.early, cb + TT_CLIENT_HELLO_FIXED);
    cr_assert_arr_eq(ch.early, early, elen);
    cr_assert(all_zero(ch.early + elen, cpad), "padding is zeros before encryption");

    /* Server hello with the stream reply and a first payload byte. */
    static const uint8_t sdata[] = {0x01, 0x00, 'o', 'k'};
    const size_t spad = 100;
    size_t ssz = tt_server_hello_size(sizeof sdata, spad);
    cr_assert_eq(ssz, 18 + 35 + sizeof sdata + spad + 16);
    uint8_t *sh = malloc(ssz);
    cr_assert_not_null(sh);
    cr_assert_eq(tt_server_hello_seal(&s_htx, spub, sdata, sizeof sdata, spad, sh), 0);

    /* Client opens it. */
    size_t sbody = 0;
    cr_assert_eq(tt_hello_open_len(&c_hrx, sh, false, &sbody, NULL), 0);
    cr_assert_eq(TT_HELLO_HDR_LEN + sbody, ssz);
    uint8_t *sb = malloc(sbody);
    cr_assert_not_null(sb);
    memcpy(sb, sh + TT_HELLO_HDR_LEN, sbody);
    tt_server_hello shv;
    cr_assert_eq(tt_server_hello_open(&c_hrx, sb, sbody, &shv), 0);
    cr_assert_arr_eq(shv.spub, spub, 32);
    cr_assert_eq(shv.dlen, sizeof sdata);
    cr_assert_eq(shv.data, sb + TT_SERVER_HELLO_FIXED);
    cr_assert_arr_eq(shv.data, sdata, sizeof sdata);
    cr_assert(all_zero(shv.data + shv.dlen, spad));

    /* Both derive the session keys; they must agree. */
    uint8_t cshared[32], sshared[32], cc2s[32], cs2c[32], sc2s[32], ss2c[32];
    cr_assert_eq(tt_x25519(cpriv, shv.spub, cshared), 0);
    cr_assert_eq(tt_x25519(spriv, ch.cpub, sshared), 0);
    cr_assert_arr_eq(cshared, sshared, 32);
    cr_assert_eq(tt_proto_session_keys(psk, salt, cshared, cpub, shv.spub, cc2s, cs2c), 0);
    cr_assert_eq(tt_proto_session_keys(psk, flight, sshared, ch.cpub, spub, sc2s, ss2c), 0);
    cr_assert_arr_eq(cc2s, sc2s, 32);
    cr_assert_arr_eq(cs2c, ss2c, 32);
    cr_assert(memcmp(cc2s, cs2c, 32) != 0);
    cr_assert(memcmp(cc2s, chc2s, 32) != 0 && memcmp(cs2c, chs2c, 32) != 0);
    memcpy(out->c2s, cc2s, 32);
    memcpy(out->s2c, cs2c, 32);

    tt_aead_free(&c_htx);
    tt_aead_free(&c_hrx);
    tt_aead_free(&s_htx);
    tt_aead_free(&s_hrx);
    free(flight);
    free(cb);
    free(sh);
    free(sb);
}

/* Frames of many shapes, ending with a FIN. */
static const spec mixed[] = {
    {TT_FRAME_DATA, 5, 0},   {TT_FRAME_DATA, 0, 0},     {TT_FRAME_DATA, 1, 31},
    {TT_FRAME_DATA, 0, 1},   {TT_FRAME_DATA, 300, 7},   {TT_FRAME_DATA, 1000, 1024},
    {TT_FRAME_DATA, 21, 21}, {TT_FRAME_DATA, 256, 255}, {TT_FRAME_FIN, 0, 0},
};

/* One direction: seal MIXED (and, unless SMALL, a largest frame) with KEY and
 * read them back in every way. */
static void frames_one_way(enum tt_aead_alg alg, const uint8_t key[32])
{
    tt_frame_writer tx;
    cr_assert_eq(tt_frame_writer_init(&tx, alg, key), 0);
    size_t size = 0;
    uint8_t *stream = seal_stream(&tx, mixed, LEN(mixed), &size, NULL);
    check_all_splits(alg, key, stream, size, mixed, LEN(mixed), true);
    free(stream);

    /* The largest frame, then a FIN with the largest padding, continuing the
     * same sealer's counter. */
    static const spec big[] = {
        {TT_FRAME_DATA, TT_FRAME_MAX_DATA, TT_FRAME_MAX_PAD},
        {TT_FRAME_DATA, TT_FRAME_MAX_DATA, 0},
        {TT_FRAME_FIN, 0, TT_FRAME_MAX_PAD},
    };
    tt_frame_writer_free(&tx);
    cr_assert_eq(tt_frame_writer_init(&tx, alg, key), 0);
    stream = seal_stream(&tx, big, LEN(big), &size, NULL);
    check_all_splits(alg, key, stream, size, big, LEN(big), false);
    free(stream);
    tt_frame_writer_free(&tx);
}

static void full_handshake_and_frames(enum tt_aead_alg alg)
{
    session s;
    handshake(alg, &s);
    frames_one_way(alg, s.c2s);
    frames_one_way(alg, s.s2c);

    /* Keys of one direction do not open the other. */
    tt_frame_writer tx;
    tt_frame_reader r;
    cr_assert_eq(tt_frame_writer_init(&tx, alg, s.c2s), 0);
    reader_keyed(&r, alg, s.s2c, TT_FRAME_MAX_DATA);
    size_t size;
    uint8_t *stream = seal_stream(&tx, mixed, 1, &size, NULL);
    expect e = {mixed, 1, 0};
    /* The header unmasks to noise: refused at once, or (if it happens to
     * look valid) a body is awaited that will not authenticate. */
    int rc = feed_piece(&r, stream, size, &e);
    cr_assert(rc < 0 || tt_frame_reader_partial(&r), "rc %d", rc);
    cr_assert_eq(e.got, 0);
    free(stream);
    tt_frame_writer_free(&tx);
    tt_frame_reader_free(&r);
}

Test(ttproto, handshake_and_frames_chacha20_poly1305, .timeout = 120)
{
    full_handshake_and_frames(TT_AEAD_CHACHA20_POLY1305);
}

Test(ttproto, handshake_and_frames_aes_256_gcm, .timeout = 120)
{
    full_handshake_and_frames(TT_AEAD_AES_256_GCM);
}

Test(ttproto, hello_limits_round_trip)
{
    /* The largest early data and padding, and the empty ones, both ways. */
    static const size_t shapes[][2] = {{0, 0},
                                       {TT_HELLO_MAX_DATA, 0},
                                       {0, TT_HELLO_MAX_PAD},
                                       {TT_HELLO_MAX_DATA, TT_HELLO_MAX_PAD}};
    uint8_t *data = malloc(TT_HELLO_MAX_DATA);
    uint8_t *buf = malloc(tt_client_hello_size(TT_HELLO_MAX_DATA, TT_HELLO_MAX_PAD));
    cr_assert(data && buf);
    for (size_t i = 0; i < TT_HELLO_MAX_DATA; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    uint8_t key[32], salt[32], pub[32];
    tt_random(key, 32);
    tt_random(salt, 32);
    tt_random(pub, 32);
    for (size_t a = 0; a < 2; a++) {
        for (size_t i = 0; i < LEN(shapes); i++) {
            size_t dl = shapes[i][0], pad = shapes[i][1];
            tt_aead tx, rx;
            tt_client_hello ch;
            tt_server_hello sh;
            size_t body = 0;

            cr_assert_eq(tt_aead_init(&tx, both_algs[a], key, true), 0);
            cr_assert_eq(tt_aead_init(&rx, both_algs[a], key, false), 0);
            cr_assert_eq(tt_client_hello_seal(&tx, salt, UINT64_MAX, pub, data, dl, pad, buf), 0);
            uint64_t hts = 0;
            cr_assert_eq(tt_hello_open_len(&rx, buf + 32, true, &body, &hts), 0);
            cr_assert_eq(hts, UINT64_MAX);
            cr_assert_eq(body, 35 + dl + pad + 16);
            cr_assert_eq(tt_client_hello_open(&rx, buf + TT_CLIENT_PREFIX_LEN, body, &ch), 0);
            cr_assert_eq(ch.elen, dl);
            cr_assert_arr_eq(ch.cpub, pub, 32);
            if (dl)
                cr_assert_arr_eq(ch.early, data, dl);

            cr_assert_eq(tt_server_hello_seal(&tx, pub, data, dl, pad, buf), 0);
            cr_assert_eq(tt_hello_open_len(&rx, buf, false, &body, NULL), 0);
            cr_assert_eq(body, 35 + dl + pad + 16);
            cr_assert_eq(tt_server_hello_open(&rx, buf + TT_HELLO_HDR_LEN, body, &sh), 0);
            cr_assert_eq(sh.dlen, dl);
            cr_assert_arr_eq(sh.spub, pub, 32);
            if (dl)
                cr_assert_arr_eq(sh.data, data, dl);
            tt_aead_free(&tx);
            tt_aead_free(&rx);
        }
    }
    free(data);
    free(buf);
}

Test(ttproto, hello_seal_refuses_oversize)
{
    uint8_t key[32] = {1}, salt[32] = {2}, pub[32] = {3};
    uint8_t *data = calloc(1, TT_HELLO_MAX_DATA + 1);
    uint8_t *buf = malloc(tt_client_hello_size(TT_HELLO_MAX_DATA + 1, TT_HELLO_MAX_PAD + 1));
    cr_assert(data && buf);
    tt_aead tx;
    cr_assert_eq(tt_aead_init(&tx, TT_AEAD_CHACHA20_POLY1305, key, true), 0);
    cr_assert_eq(tt_client_hello_seal(&tx, salt, 1, pub, data, TT_HELLO_MAX_DATA + 1, 0, buf),
                 -EINVAL);
    cr_assert_eq(tt_client_hello_seal(&tx, salt, 1, pub, data, 0, TT_HELLO_MAX_PAD + 1, buf),
                 -EINVAL);
    cr_assert_eq(tt_server_hello_seal(&tx, pub, data, TT_HELLO_MAX_DATA + 1, 0, buf), -EINVAL);
    cr_assert_eq(tt_server_hello_seal(&tx, pub, data, 0, TT_HELLO_MAX_PAD + 1, buf), -EINVAL);
    tt_aead_free(&tx);
    free(data);
    free(buf);
}

Test(ttproto, frame_seal_in_place_matches)
{
    uint8_t key[32];
    tt_random(key, 32);
    tt_frame_writer a, b;
    cr_assert_eq(tt_frame_writer_init(&a, TT_AEAD_AES_256_GCM, key), 0);
    cr_assert_eq(tt_frame_writer_init(&b, TT_AEAD_AES_256_GCM, key), 0);
    uint8_t data[200], x[TT_FRAME_OVERHEAD + 200 + 9], y[sizeof x];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    memset(y, 0xaa, sizeof y);
    memcpy(y + TT_FRAME_HDR_LEN, data, sizeof data);
    cr_assert_eq(tt_frame_seal(&a, TT_FRAME_DATA, data, sizeof data, 9, x), sizeof x);
    cr_assert_eq(tt_frame_seal(&b, TT_FRAME_DATA, y + TT_FRAME_HDR_LEN, sizeof data, 9, y),
                 sizeof y);
    cr_assert_arr_eq(x, y, sizeof x);
    tt_frame_writer_free(&a);
    tt_frame_writer_free(&b);
}

Test(ttproto, several_frames_in_one_buffer_one_feed_each)
{
    tt_frame_writer tx;
    tt_frame_reader r;
    keyed_pair(TT_AEAD_CHACHA20_POLY1305, &tx, &r, TT_FRAME_MAX_DATA);
    size_t size, ends[LEN(mixed)];
    uint8_t *stream = seal_stream(&tx, mixed, LEN(mixed), &size, ends);
    /* Each call returns exactly one frame and reports where it ended. */
    size_t off = 0;
    expect e = {mixed, LEN(mixed), 0};
    for (size_t i = 0; i < LEN(mixed); i++) {
        size_t used, len;
        uint8_t type;
        const uint8_t *data;
        cr_assert_eq(tt_frame_reader_feed(&r, stream + off, size - off, &used, &type, &data, &len),
                     1);
        off += used;
        cr_assert_eq(off, ends[i], "frame %zu ends at %zu, want %zu", i, off, ends[i]);
        on_frame(&e, type, data, len);
    }
    size_t used = 5;
    uint8_t type;
    const uint8_t *data;
    size_t len;
    cr_assert_eq(tt_frame_reader_feed(&r, stream + off, 0, &used, &type, &data, &len), 0);
    cr_assert_eq(used, 0);
    free(stream);
    tt_frame_writer_free(&tx);
    tt_frame_reader_free(&r);
}

/* ------------------------------------------------------------------------ */
/* Rejections: hellos */

/* Seals a client first flight with hello keys from PSK and SALT; returns it
 * (*SIZE bytes). */
static uint8_t *client_flight(enum tt_aead_alg alg, const uint8_t psk[32], const uint8_t salt[32],
                              size_t pad, size_t *size)
{
    uint8_t c2s[32], s2c[32], cpub[32];
    memset(cpub, 0x42, sizeof cpub);
    cr_assert_eq(tt_proto_hello_keys(psk, salt, c2s, s2c), 0);
    tt_aead tx;
    cr_assert_eq(tt_aead_init(&tx, alg, c2s, true), 0);
    *size = tt_client_hello_size(sizeof open_127_80, pad);
    uint8_t *f = malloc(*size);
    cr_assert_not_null(f);
    cr_assert_eq(
        tt_client_hello_seal(&tx, salt, 1700000000, cpub, open_127_80, sizeof open_127_80, pad, f),
        0);
    tt_aead_free(&tx);
    return f;
}

/* What a server does with a first flight of SIZE bytes: 0 when it accepts
 * it, else the first error. */
static int server_open(enum tt_aead_alg alg, const uint8_t psk[32], const uint8_t *f, size_t size)
{
    uint8_t c2s[32], s2c[32];
    cr_assert_geq(size, TT_CLIENT_PREFIX_LEN);
    cr_assert_eq(tt_proto_hello_keys(psk, f, c2s, s2c), 0);
    tt_aead rx;
    cr_assert_eq(tt_aead_init(&rx, alg, c2s, false), 0);
    size_t body = 0;
    int rc = tt_hello_open_len(&rx, f + TT_SALT_LEN, true, &body, NULL);
    if (rc == 0) {
        cr_assert_eq(TT_CLIENT_PREFIX_LEN + body, size, "a flipped bit changed the length");
        uint8_t *b = malloc(body);
        cr_assert_not_null(b);
        memcpy(b, f + TT_CLIENT_PREFIX_LEN, body);
        tt_client_hello ch;
        rc = tt_client_hello_open(&rx, b, body, &ch);
        free(b);
    }
    tt_aead_free(&rx);
    return rc;
}

Test(ttproto, wrong_psk_fails_at_the_length)
{
    for (size_t a = 0; a < 2; a++) {
        uint8_t psk[32], other[32], salt[32];
        tt_random(psk, 32);
        tt_random(salt, 32);
        memcpy(other, psk, 32);
        other[5] ^= 0x10;
        size_t size;
        uint8_t *f = client_flight(both_algs[a], psk, salt, 3, &size);
        cr_assert_eq(server_open(both_algs[a], psk, f, size), 0);
        uint8_t c2s[32], s2c[32];
        cr_assert_eq(tt_proto_hello_keys(other, f, c2s, s2c), 0);
        tt_aead rx;
        cr_assert_eq(tt_aead_init(&rx, both_algs[a], c2s, false), 0);
        size_t body = 12345;
        cr_assert_eq(tt_hello_open_len(&rx, f + TT_SALT_LEN, true, &body, NULL), -EBADMSG);
        cr_assert_eq(body, 12345, "*body written on failure");
        tt_aead_free(&rx);
        /* The other cipher with the right key fails there too (a server
         * trying its methods in turn). */
        cr_assert_eq(tt_proto_hello_keys(psk, f, c2s, s2c), 0);
        cr_assert_eq(tt_aead_init(&rx, both_algs[1 - a], c2s, false), 0);
        cr_assert_eq(tt_hello_open_len(&rx, f + TT_SALT_LEN, true, &body, NULL), -EBADMSG);
        tt_aead_free(&rx);
        free(f);
    }
}

Test(ttproto, flipped_bit_in_client_hello_rejected)
{
    for (size_t a = 0; a < 2; a++) {
        uint8_t psk[32], salt[32];
        tt_random(psk, 32);
        tt_random(salt, 32);
        size_t size;
        uint8_t *f = client_flight(both_algs[a], psk, salt, 5, &size);
        for (size_t i = 0; i < size; i++) {
            for (int bit = 0; bit < 8; bit++) {
                f[i] ^= (uint8_t)(1u << bit);
                cr_assert_eq(server_open(both_algs[a], psk, f, size), -EBADMSG, "byte %zu bit %d",
                             i, bit);
                f[i] ^= (uint8_t)(1u << bit);
            }
        }
        cr_assert_eq(server_open(both_algs[a], psk, f, size), 0);
        free(f);
    }
}

Test(ttproto, flipped_bit_in_server_hello_rejected)
{
    for (size_t a = 0; a < 2; a++) {
        uint8_t key[32], spub[32];
        tt_random(key, 32);
        tt_random(spub, 32);
        tt_aead tx;
        cr_assert_eq(tt_aead_init(&tx, both_algs[a], key, true), 0);
        static const uint8_t d[2] = {1, 0};
        size_t size = tt_server_hello_size(2, 4);
        uint8_t *h = malloc(size), *b = malloc(size);
        cr_assert(h && b);
        cr_assert_eq(tt_server_hello_seal(&tx, spub, d, 2, 4, h), 0);
        for (size_t i = 0; i <= size * 8; i++) {
            bool flip = i < size * 8; /* the last round: unmodified */
            if (flip)
                h[i / 8] ^= (uint8_t)(1u << (i % 8));
            tt_aead rx;
            cr_assert_eq(tt_aead_init(&rx, both_algs[a], key, false), 0);
            size_t body = 0;
            tt_server_hello sh;
            int rc = tt_hello_open_len(&rx, h, false, &body, NULL);
            if (rc == 0) {
                cr_assert_eq(body, size - TT_HELLO_HDR_LEN);
                memcpy(b, h + TT_HELLO_HDR_LEN, body);
                rc = tt_server_hello_open(&rx, b, body, &sh);
            }
            cr_assert_eq(rc, flip ? -EBADMSG : 0, "bit %zu", i);
            tt_aead_free(&rx);
            if (flip)
                h[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        tt_aead_free(&tx);
        free(h);
        free(b);
    }
}

/* Seals a hello head (a 2-byte length field LEN; for a client, IS_CLIENT,
 * then the time stamp 1) and a body of plaintext BODY (BLEN bytes) as a
 * hello would, so the opener sees fields the sealers never write. OUT
 * holds TT_CLIENT_HDR_LEN + BLEN + 16 bytes; returns the head's size. */
static size_t seal_raw_hello(tt_aead *tx, bool is_client, size_t len, const uint8_t *body,
                             size_t blen, uint8_t *out)
{
    uint8_t h[10] = {(uint8_t)(len >> 8), (uint8_t)len, 0, 0, 0, 0, 0, 0, 0, 1};
    size_t hn = is_client ? 10 : 2;
    cr_assert_eq(tt_aead_seal(tx, h, hn, out), 0);
    cr_assert_eq(tt_aead_seal(tx, body, blen, out + hn + TT_AEAD_TAG_LEN), 0);
    return hn + TT_AEAD_TAG_LEN;
}

/* Opens a sealed length field of value LEN with IS_CLIENT's limits. */
static int open_len_of(size_t len, bool is_client, size_t *body)
{
    uint8_t key[32] = {9}, hdr[TT_CLIENT_HDR_LEN + TT_AEAD_TAG_LEN];
    tt_aead tx, rx;
    cr_assert_eq(tt_aead_init(&tx, TT_AEAD_CHACHA20_POLY1305, key, true), 0);
    cr_assert_eq(tt_aead_init(&rx, TT_AEAD_CHACHA20_POLY1305, key, false), 0);
    seal_raw_hello(&tx, is_client, len, NULL, 0, hdr);
    uint64_t ts = 0;
    int rc = tt_hello_open_len(&rx, hdr, is_client, body, &ts);
    if (rc == 0 && is_client)
        cr_assert_eq(ts, 1);
    tt_aead_free(&tx);
    tt_aead_free(&rx);
    return rc;
}

Test(ttproto, hello_length_field_range)
{
    const size_t cmin = TT_CLIENT_HELLO_FIXED, smin = TT_SERVER_HELLO_FIXED;
    const size_t extra = TT_HELLO_MAX_DATA + TT_HELLO_MAX_PAD;
    struct {
        size_t len;
        bool is_client;
        int rc;
    } cases[] = {
        {0, true, -EPROTO},       {cmin - 1, true, -EPROTO},          {cmin, true, 0},
        {cmin + extra, true, 0},  {cmin + extra + 1, true, -EPROTO},  {0xffff, true, -EPROTO},
        {0, false, -EPROTO},      {smin - 1, false, -EPROTO},         {smin, false, 0},
        {smin + extra, false, 0}, {smin + extra + 1, false, -EPROTO}, {0xffff, false, -EPROTO},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        size_t body = 777;
        int rc = open_len_of(cases[i].len, cases[i].is_client, &body);
        cr_assert_eq(rc, cases[i].rc, "len %zu %s: %d", cases[i].len,
                     cases[i].is_client ? "client" : "server", rc);
        if (rc == 0)
            cr_assert_eq(body, cases[i].len + TT_AEAD_TAG_LEN);
    }
}

/* A client hello body in plaintext: VER CPUB ELEN, then TAIL bytes. */
static size_t client_body(uint8_t *b, uint8_t ver, size_t elen_field, size_t tail)
{
    b[0] = ver;
    memset(b + 1, 0x33, 32);
    b[33] = (uint8_t)(elen_field >> 8);
    b[34] = (uint8_t)elen_field;
    for (size_t i = 0; i < tail; i++)
        b[35 + i] = (uint8_t)i;
    return 35 + tail;
}

/* Seals BODY (N bytes) as a client hello and opens it as a server would. */
static int open_client_body(const uint8_t *body, size_t n, tt_client_hello *ch)
{
    uint8_t key[32] = {7};
    uint8_t *wire = malloc(TT_CLIENT_HDR_LEN + n + 16);
    cr_assert_not_null(wire);
    tt_aead tx, rx;
    cr_assert_eq(tt_aead_init(&tx, TT_AEAD_AES_256_GCM, key, true), 0);
    cr_assert_eq(tt_aead_init(&rx, TT_AEAD_AES_256_GCM, key, false), 0);
    size_t hn = seal_raw_hello(&tx, true, n, body, n, wire);
    size_t blen = 0;
    uint64_t ts = 0;
    int rc = tt_hello_open_len(&rx, wire, true, &blen, &ts);
    if (rc == 0) {
        cr_assert_eq(blen, n + 16);
        cr_assert_eq(ts, 1);
        rc = tt_client_hello_open(&rx, wire + hn, blen, ch);
    }
    tt_aead_free(&tx);
    tt_aead_free(&rx);
    free(wire);
    return rc;
}

Test(ttproto, client_hello_version_and_elen_checked)
{
    uint8_t *b = malloc(35 + 10240);
    cr_assert_not_null(b);
    tt_client_hello ch;
    size_t n;

    n = client_body(b, 1, 5, 5);
    cr_assert_eq(open_client_body(b, n, &ch), 0);
    cr_assert_eq(ch.elen, 5);
    n = client_body(b, 1, 0, 5); /* all padding */
    cr_assert_eq(open_client_body(b, n, &ch), 0);
    cr_assert_eq(ch.elen, 0);

    static const uint8_t bad_versions[] = {0, 2, 0x81, 0xff};
    for (size_t i = 0; i < LEN(bad_versions); i++) {
        n = client_body(b, bad_versions[i], 5, 5);
        cr_assert_eq(open_client_body(b, n, &ch), -EPROTO, "version %u", bad_versions[i]);
    }
    n = client_body(b, 1, 6, 5); /* elen one past the body */
    cr_assert_eq(open_client_body(b, n, &ch), -EPROTO);
    n = client_body(b, 1, 1, 0);
    cr_assert_eq(open_client_body(b, n, &ch), -EPROTO);
    n = client_body(b, 1, 0xffff, 100);
    cr_assert_eq(open_client_body(b, n, &ch), -EPROTO);
    /* Within the body but above the early-data limit. */
    n = client_body(b, 1, TT_HELLO_MAX_DATA + 1, TT_HELLO_MAX_DATA + 1);
    cr_assert_eq(open_client_body(b, n, &ch), -EPROTO);
    n = client_body(b, 1, TT_HELLO_MAX_DATA, TT_HELLO_MAX_DATA);
    cr_assert_eq(open_client_body(b, n, &ch), 0);
    cr_assert_eq(ch.elen, TT_HELLO_MAX_DATA);
    free(b);
}

/* A server hello body in plaintext: VER SPUB DLEN, then TAIL bytes. */
static size_t server_body(uint8_t *b, uint8_t ver, size_t dlen_field, size_t tail)
{
    b[0] = ver;
    memset(b + 1, 0x44, 32);
    b[33] = (uint8_t)(dlen_field >> 8);
    b[34] = (uint8_t)dlen_field;
    memset(b + 35, 0x55, tail);
    return 35 + tail;
}

static int open_server_body(const uint8_t *body, size_t n, tt_server_hello *sh)
{
    uint8_t key[32] = {8};
    uint8_t *wire = malloc(TT_HELLO_HDR_LEN + n + 16);
    cr_assert_not_null(wire);
    tt_aead tx, rx;
    cr_assert_eq(tt_aead_init(&tx, TT_AEAD_CHACHA20_POLY1305, key, true), 0);
    cr_assert_eq(tt_aead_init(&rx, TT_AEAD_CHACHA20_POLY1305, key, false), 0);
    seal_raw_hello(&tx, false, n, body, n, wire);
    size_t blen = 0;
    int rc = tt_hello_open_len(&rx, wire, false, &blen, NULL);
    if (rc == 0)
        rc = tt_server_hello_open(&rx, wire + TT_HELLO_HDR_LEN, blen, sh);
    tt_aead_free(&tx);
    tt_aead_free(&rx);
    free(wire);
    return rc;
}

Test(ttproto, server_hello_version_and_dlen_checked)
{
    uint8_t *b = malloc(35 + 10240);
    cr_assert_not_null(b);
    tt_server_hello sh;
    size_t n = server_body(b, 1, 2, 2);
    cr_assert_eq(open_server_body(b, n, &sh), 0);
    cr_assert_eq(sh.dlen, 2);
    n = server_body(b, 0, 2, 2);
    cr_assert_eq(open_server_body(b, n, &sh), -EPROTO);
    n = server_body(b, 2, 2, 2);
    cr_assert_eq(open_server_body(b, n, &sh), -EPROTO);
    n = server_body(b, 1, 3, 2);
    cr_assert_eq(open_server_body(b, n, &sh), -EPROTO);
    n = server_body(b, 1, TT_HELLO_MAX_DATA + 1, TT_HELLO_MAX_DATA + 1);
    cr_assert_eq(open_server_body(b, n, &sh), -EPROTO);
    free(b);
}

Test(ttproto, hello_open_short_body_is_eproto)
{
    /* Bodies shorter than the fixed part plus a tag, whatever the caller
     * read, are refused before any decryption. */
    uint8_t key[32] = {1}, buf[TT_CLIENT_HELLO_FIXED + TT_AEAD_TAG_LEN] = {0};
    tt_aead rx;
    cr_assert_eq(tt_aead_init(&rx, TT_AEAD_CHACHA20_POLY1305, key, false), 0);
    tt_client_hello ch;
    tt_server_hello sh;
    for (size_t n = 0; n < TT_CLIENT_HELLO_FIXED + TT_AEAD_TAG_LEN; n++)
        cr_assert_eq(tt_client_hello_open(&rx, buf, n, &ch), -EPROTO, "client %zu", n);
    for (size_t n = 0; n < TT_SERVER_HELLO_FIXED + TT_AEAD_TAG_LEN; n++)
        cr_assert_eq(tt_server_hello_open(&rx, buf, n, &sh), -EPROTO, "server %zu", n);
    /* Random bytes of the right size fail authentication. */
    cr_assert_eq(tt_client_hello_open(&rx, buf, sizeof buf, &ch), -EBADMSG);
    tt_aead_free(&rx);
}

/* ------------------------------------------------------------------------ */
/* Rejections: frames */

/* Seals S with a fresh pair, feeds the stream whole and returns the result;
 * *GOT is the number of frames delivered before it. */
static int run_stream(enum tt_aead_alg alg, const spec *s, size_t n, size_t max_data, size_t *got)
{
    tt_frame_writer tx;
    tt_frame_reader r;
    keyed_pair(alg, &tx, &r, max_data);
    size_t size;
    uint8_t *stream = seal_stream(&tx, s, n, &size, NULL);
    expect e = {s, n, 0};
    int rc = feed_piece(&r, stream, size, &e);
    *got = e.got;
    if (rc < 0) {
        /* After an error every later call fails, with input or without. */
        size_t used = 1, len;
        uint8_t type;
        const uint8_t *data;
        cr_assert_lt(tt_frame_reader_feed(&r, stream, size, &used, &type, &data, &len), 0);
        cr_assert_lt(tt_frame_reader_feed(&r, stream, 0, &used, &type, &data, &len), 0);
    }
    free(stream);
    tt_frame_writer_free(&tx);
    tt_frame_reader_free(&r);
    return rc;
}

Test(ttproto, flipped_bit_in_frames_rejected)
{
    for (size_t a = 0; a < 2; a++) {
        static const spec s[] = {
            {TT_FRAME_DATA, 3, 2}, {TT_FRAME_DATA, 0, 0}, {TT_FRAME_FIN, 0, 1}};
        uint8_t key[32];
        tt_random(key, 32);
        tt_frame_writer tx;
        cr_assert_eq(tt_frame_writer_init(&tx, both_algs[a], key), 0);
        size_t size, ends[LEN(s)];
        uint8_t *stream = seal_stream(&tx, s, LEN(s), &size, ends);
        for (size_t i = 0; i < size * 8; i++) {
            stream[i / 8] ^= (uint8_t)(1u << (i % 8));
            size_t frame = 0;
            while (ends[frame] <= i / 8)
                frame++;
            tt_frame_reader r;
            reader_keyed(&r, both_algs[a], key, TT_FRAME_MAX_DATA);
            expect e = {s, LEN(s), 0};
            /* A flipped body or tag bit fails authentication; a flipped
             * header bit is refused by the header's checks, or makes the
             * reader wait for (or read) a body of the wrong length, which
             * then fails: never is the frame taken. */
            int rc = feed_piece(&r, stream, size, &e);
            cr_assert(rc == -EBADMSG || rc == -EPROTO || (rc == 0 && tt_frame_reader_partial(&r)),
                      "bit %zu: rc %d", i, rc);
            if (i / 8 >= (frame ? ends[frame - 1] : 0) + TT_FRAME_HDR_LEN)
                cr_assert_eq(rc, -EBADMSG, "bit %zu (body)", i);
            cr_assert_eq(e.got, frame, "bit %zu: %zu frames before the bad one, want %zu", i, e.got,
                         frame);
            tt_frame_reader_free(&r);
            stream[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        free(stream);
        tt_frame_writer_free(&tx);
    }
}

/* Seals frames 0..2 separately so a test can deliver them out of order. */
typedef struct three {
    uint8_t *f[3];
    size_t n[3];
} three;

static void seal_three(tt_frame_writer *tx, three *t)
{
    uint8_t d[10];
    memset(d, 'z', sizeof d);
    for (int i = 0; i < 3; i++) {
        t->n[i] = TT_FRAME_OVERHEAD + sizeof d;
        t->f[i] = malloc(t->n[i]);
        cr_assert_not_null(t->f[i]);
        d[0] = (uint8_t)i;
        tt_frame_seal(tx, TT_FRAME_DATA, d, sizeof d, 0, t->f[i]);
    }
}

static void free_three(three *t)
{
    for (int i = 0; i < 3; i++)
        free(t->f[i]);
}

/* Feeds the frames of T in ORDER (indices, N of them); returns the result of
 * the last feed and checks each earlier one delivered its frame. */
static int feed_order(enum tt_aead_alg alg, const int *order, size_t n)
{
    tt_frame_writer tx;
    tt_frame_reader r;
    keyed_pair(alg, &tx, &r, TT_FRAME_MAX_DATA);
    three t;
    seal_three(&tx, &t);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t used, len;
        uint8_t type;
        const uint8_t *data;
        rc = tt_frame_reader_feed(&r, t.f[order[i]], t.n[order[i]], &used, &type, &data, &len);
        if (i + 1 < n) {
            cr_assert_eq(rc, 1, "feed %zu", i);
            cr_assert_eq(data[0], order[i]);
        }
    }
    /* A misplaced frame's header unmasks to noise: refused at once, or, if
     * the noise looks like a valid header, a body is awaited. Whatever then
     * fills that body (here zeros, one largest frame's worth) must fail to
     * authenticate. */
    if (rc == 0) {
        cr_assert(tt_frame_reader_partial(&r));
        static const uint8_t zeros[TT_FRAME_OVERHEAD + TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD];
        size_t used, len;
        uint8_t type;
        const uint8_t *data;
        rc = tt_frame_reader_feed(&r, zeros, sizeof zeros, &used, &type, &data, &len);
        cr_assert_lt(rc, 0, "garbage was taken as a frame");
    }
    free_three(&t);
    tt_frame_writer_free(&tx);
    tt_frame_reader_free(&r);
    return rc;
}

Test(ttproto, counter_nonces_refuse_drop_reorder_replay)
{
    for (size_t a = 0; a < 2; a++) {
        static const int in_order[] = {0, 1, 2};
        static const int dropped[] = {0, 2};
        static const int first_missing[] = {1};
        static const int reordered[] = {0, 2, 1};
        static const int replayed[] = {0, 0};
        static const int replayed_later[] = {0, 1, 1};
        cr_assert_eq(feed_order(both_algs[a], in_order, 3), 1);
        cr_assert_lt(feed_order(both_algs[a], dropped, 2), 0);
        cr_assert_lt(feed_order(both_algs[a], first_missing, 1), 0);
        cr_assert_lt(feed_order(both_algs[a], reordered, 2), 0);
        cr_assert_lt(feed_order(both_algs[a], replayed, 2), 0);
        cr_assert_lt(feed_order(both_algs[a], replayed_later, 3), 0);
    }
}

Test(ttproto, bad_frame_type_is_eproto)
{
    static const uint8_t types[] = {2, 3, 0x80, 0xff};
    for (size_t a = 0; a < 2; a++) {
        for (size_t i = 0; i < LEN(types); i++) {
            spec s[] = {{TT_FRAME_DATA, 4, 0}, {types[i], 4, 0}};
            size_t got;
            cr_assert_eq(run_stream(both_algs[a], s, 2, TT_FRAME_MAX_DATA, &got), -EPROTO,
                         "type %u", types[i]);
            cr_assert_eq(got, 1);
            spec z[] = {{types[i], 0, 0}};
            cr_assert_eq(run_stream(both_algs[a], z, 1, TT_FRAME_MAX_DATA, &got), -EPROTO);
        }
    }
}

Test(ttproto, fin_with_data_is_eproto)
{
    spec s[] = {{TT_FRAME_FIN, 1, 0}};
    size_t got;
    cr_assert_eq(run_stream(TT_AEAD_CHACHA20_POLY1305, s, 1, TT_FRAME_MAX_DATA, &got), -EPROTO);
    spec s2[] = {{TT_FRAME_DATA, 1, 0}, {TT_FRAME_FIN, 100, 3}};
    cr_assert_eq(run_stream(TT_AEAD_AES_256_GCM, s2, 2, TT_FRAME_MAX_DATA, &got), -EPROTO);
    cr_assert_eq(got, 1);
    /* A FIN with padding only is fine, and data may follow it on the wire
     * (the codec does not judge what comes after a half-close). */
    spec ok[] = {{TT_FRAME_FIN, 0, 9}};
    cr_assert_eq(run_stream(TT_AEAD_AES_256_GCM, ok, 1, TT_FRAME_MAX_DATA, &got), 0);
    cr_assert_eq(got, 1);
}

Test(ttproto, sealer_refuses_frames_over_the_limits)
{
    uint8_t key[32] = {0};
    tt_frame_writer tx;
    cr_assert_eq(tt_frame_writer_init(&tx, TT_AEAD_CHACHA20_POLY1305, key), 0);
    uint8_t *out = malloc(TT_FRAME_MAX_DATA + 2 * TT_FRAME_MAX_PAD + TT_FRAME_OVERHEAD);
    uint8_t *data = calloc(1, TT_FRAME_MAX_DATA + 1);
    cr_assert_eq(tt_frame_seal(&tx, TT_FRAME_DATA, data, TT_FRAME_MAX_DATA + 1, 0, out), 0);
    cr_assert_eq(tt_frame_seal(&tx, TT_FRAME_DATA, data, 1, TT_FRAME_MAX_PAD + 1, out), 0);
    cr_assert_eq(tt_frame_seal(&tx, TT_FRAME_DATA, data, TT_FRAME_MAX_DATA, TT_FRAME_MAX_PAD, out),
                 TT_FRAME_OVERHEAD + TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD);
    free(out);
    free(data);
    tt_frame_writer_free(&tx);
}

Test(ttproto, length_and_padding_limits)
{
    size_t got;
    spec at[] = {{TT_FRAME_DATA, 100, 0}};
    cr_assert_eq(run_stream(TT_AEAD_CHACHA20_POLY1305, at, 1, 100, &got), 0);
    cr_assert_eq(got, 1);
    spec over[] = {{TT_FRAME_DATA, 100, 0}, {TT_FRAME_DATA, 101, 0}};
    cr_assert_eq(run_stream(TT_AEAD_CHACHA20_POLY1305, over, 2, 100, &got), -EPROTO);
    cr_assert_eq(got, 1);
    spec zero_max[] = {{TT_FRAME_DATA, 0, 5}, {TT_FRAME_FIN, 0, 0}, {TT_FRAME_DATA, 1, 0}};
    cr_assert_eq(run_stream(TT_AEAD_CHACHA20_POLY1305, zero_max, 3, 0, &got), -EPROTO);
    cr_assert_eq(got, 2);
    /* The limit is clamped to the protocol's. */
    tt_frame_reader r;
    tt_frame_reader_init(&r, 1000000);
    cr_assert_eq(r.max_data, TT_FRAME_MAX_DATA);
    cr_assert_null(r.buf);
    tt_frame_reader_free(&r);
    spec big[] = {{TT_FRAME_DATA, TT_FRAME_MAX_DATA + 1, 0}};
    cr_assert_eq(run_stream(TT_AEAD_AES_256_GCM, big, 1, 1000000, &got), -EPROTO);
    spec pad[] = {{TT_FRAME_DATA, 1, TT_FRAME_MAX_PAD}, {TT_FRAME_DATA, 1, TT_FRAME_MAX_PAD + 1}};
    cr_assert_eq(run_stream(TT_AEAD_AES_256_GCM, pad, 2, TT_FRAME_MAX_DATA, &got), -EPROTO);
    cr_assert_eq(got, 1);
    spec huge[] = {{TT_FRAME_DATA, 0, 4 * TT_FRAME_MAX_PAD}};
    cr_assert_eq(run_stream(TT_AEAD_AES_256_GCM, huge, 1, TT_FRAME_MAX_DATA, &got), -EPROTO);
}

Test(ttproto, error_is_sticky)
{
    tt_frame_writer tx;
    tt_frame_reader r;
    keyed_pair(TT_AEAD_CHACHA20_POLY1305, &tx, &r, TT_FRAME_MAX_DATA);
    three t;
    seal_three(&tx, &t);
    size_t used, len;
    uint8_t type;
    const uint8_t *data;
    /* Frame 0 with its tag damaged: refused. Then frame 0 intact, which
     * alone would open, is refused too, and so is everything after. */
    t.f[0][t.n[0] - 1] ^= 1;
    cr_assert_eq(tt_frame_reader_feed(&r, t.f[0], t.n[0], &used, &type, &data, &len), -EBADMSG);
    t.f[0][t.n[0] - 1] ^= 1;
    for (int i = 0; i < 3; i++)
        cr_assert_lt(tt_frame_reader_feed(&r, t.f[i], t.n[i], &used, &type, &data, &len), 0);
    cr_assert_lt(tt_frame_reader_feed(&r, t.f[0], 1, &used, &type, &data, &len), 0);
    free_three(&t);
    tt_frame_writer_free(&tx);
    tt_frame_reader_free(&r);
}

Test(ttproto, garbage_fails_within_one_largest_frame)
{
    /* Random bytes: the reader refuses them within one largest frame (a
     * header that unmasks to valid values and the body it claims), so
     * garbage can hold a reader for a bounded number of bytes only. */
    static const size_t most = TT_FRAME_OVERHEAD + TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD;
    uint8_t *junk = malloc(most);
    cr_assert_not_null(junk);
    for (int round = 0; round < 200; round++) {
        tt_frame_reader r;
        uint8_t key[32];
        tt_random(key, 32);
        tt_random(junk, most);
        reader_keyed(&r, both_algs[round & 1], key, TT_FRAME_MAX_DATA);
        expect e = {mixed, 0, 0};
        cr_assert_eq(feed_piece(&r, junk, TT_FRAME_HDR_LEN - 1, &e), 0);
        cr_assert(tt_frame_reader_partial(&r));
        int rc = feed_piece(&r, junk + TT_FRAME_HDR_LEN - 1, most - (TT_FRAME_HDR_LEN - 1), &e);
        cr_assert(rc == -EPROTO || rc == -EBADMSG, "round %d: rc %d", round, rc);
        tt_frame_reader_free(&r);
    }
    free(junk);
}

/* With an owner's buffer (out), a body that arrives whole in one feed is
 * decrypted there and nowhere else; one split across feeds is assembled and
 * opened in the reader's own buffer. Either way the payload is right. */
Test(ttproto, reader_decrypts_whole_bodies_into_the_owners_buffer)
{
    for (size_t a = 0; a < 2; a++) {
        tt_frame_writer tx;
        tt_frame_reader r;
        keyed_pair(both_algs[a], &tx, &r, TT_FRAME_MAX_DATA);
        static const spec s[] = {{TT_FRAME_DATA, 3000, 9}, {TT_FRAME_DATA, 3000, 0}};
        size_t size, ends[2];
        uint8_t *stream = seal_stream(&tx, s, 2, &size, ends);
        uint8_t *out = malloc(TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD);
        cr_assert_not_null(out);
        r.out = out;
        size_t used, len;
        uint8_t type;
        const uint8_t *data;
        cr_assert_eq(tt_frame_reader_feed(&r, stream, ends[0], &used, &type, &data, &len), 1);
        cr_assert_eq(data, out, "a whole body goes to the owner's buffer");
        cr_assert_eq(len, 3000);
        for (size_t j = 0; j < len; j++)
            cr_assert_eq(data[j], payload_byte(0, j));
        /* The second frame in two feeds: its body is split. */
        memset(out, 0xee, 4000);
        size_t half = ends[0] + (ends[1] - ends[0]) / 2;
        cr_assert_eq(
            tt_frame_reader_feed(&r, stream + ends[0], half - ends[0], &used, &type, &data, &len),
            0);
        cr_assert_eq(
            tt_frame_reader_feed(&r, stream + half, size - half, &used, &type, &data, &len), 1);
        cr_assert_neq(data, out, "a split body is opened where it was assembled");
        cr_assert_eq(out[0], 0xee, "and the owner's buffer is left alone");
        for (size_t j = 0; j < len; j++)
            cr_assert_eq(data[j], payload_byte(1, j));
        free(out);
        free(stream);
        tt_frame_writer_free(&tx);
        tt_frame_reader_free(&r);
    }
}

/* ------------------------------------------------------------------------ */
/* Buffer release */

Test(ttproto, trim_releases_only_when_idle)
{
    tt_frame_writer tx;
    tt_frame_reader r;
    keyed_pair(TT_AEAD_AES_256_GCM, &tx, &r, TT_FRAME_MAX_DATA);
    cr_assert_null(r.buf, "an idle reader holds no buffer");
    tt_frame_reader_trim(&r);
    cr_assert_null(r.buf);

    static const spec s[] = {{TT_FRAME_DATA, 50, 3}, {TT_FRAME_DATA, 7, 0}, {TT_FRAME_FIN, 0, 0}};
    size_t size, ends[3];
    uint8_t *stream = seal_stream(&tx, s, 3, &size, ends);
    expect e = {s, 3, 0};

    /* Part of a header: partial, the buffer holds it and trim keeps it. */
    cr_assert_eq(feed_piece(&r, stream, 10, &e), 0);
    cr_assert(tt_frame_reader_partial(&r));
    cr_assert_not_null(r.buf);
    tt_frame_reader_trim(&r);
    cr_assert_not_null(r.buf, "trim freed a partial header");
    /* The whole header and part of the body. */
    cr_assert_eq(feed_piece(&r, stream + 10, TT_FRAME_HDR_LEN + 5 - 10, &e), 0);
    cr_assert(tt_frame_reader_partial(&r));
    tt_frame_reader_trim(&r);
    cr_assert_not_null(r.buf, "trim freed a partial body");
    /* The rest of frame 0: it is intact after the trims. */
    cr_assert_eq(feed_piece(&r, stream + TT_FRAME_HDR_LEN + 5, ends[0] - TT_FRAME_HDR_LEN - 5, &e),
                 0);
    cr_assert_eq(e.got, 1);
    cr_assert_not(tt_frame_reader_partial(&r));
    tt_frame_reader_trim(&r);
    cr_assert_null(r.buf, "trim kept the buffer of an idle reader");

    /* A header that arrives whole, with its body still missing: partial
     * although no byte sits in the buffer. */
    cr_assert_eq(feed_piece(&r, stream + ends[0], TT_FRAME_HDR_LEN, &e), 0);
    cr_assert(tt_frame_reader_partial(&r));
    tt_frame_reader_trim(&r);
    cr_assert_eq(feed_piece(&r, stream + ends[0] + TT_FRAME_HDR_LEN,
                            ends[1] - ends[0] - TT_FRAME_HDR_LEN, &e),
                 0);
    cr_assert_eq(e.got, 2);
    tt_frame_reader_trim(&r);
    cr_assert_null(r.buf);

    /* A whole frame in one feed, then trim. */
    cr_assert_eq(feed_piece(&r, stream + ends[1], size - ends[1], &e), 0);
    cr_assert_eq(e.got, 3);
    cr_assert_not(tt_frame_reader_partial(&r));
    tt_frame_reader_trim(&r);
    cr_assert_null(r.buf);

    free(stream);
    tt_frame_writer_free(&tx);
    tt_frame_reader_free(&r);
    cr_assert_null(r.buf);
}

/* ------------------------------------------------------------------------ */
/* Golden vectors (docs/tt1-vectors.md) */

typedef struct vectors {
    const char *client_flight, *server_hello, *c2s, *s2c;
    const char *long_sha256; /* 40 one-byte frames and a FIN: masks of two blocks */
} vectors;

static const char v_cpub[] = "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a";
static const char v_spub[] = "675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f";
static const char v_shared[] = "d6fb939511b2381bc8599b4b8edc5968829450dfd7a87aebe78a703cd04cd54e";
static const char v_hc2s[] = "c040710ac4f2b4290ea96eba9635412602d91520ab8e35a5568d1a5074018467";
static const char v_hs2c[] = "fddca19fa2409c00880e78277d905a556af2b5730af228140099c610bddd9aa6";
static const char v_sc2s[] = "49b006d7c4abd61679c5424380a03198a4bc885dc46032ffcd1a9e962ab63fd0";
static const char v_ss2c[] = "aaa7c928b57abcc175a761157e178086c510c77c1546e9bc12f21751de13fae4";
static const char v_port_key[] = "2210c4053dca4ea58d0d231c7e1cd5c7f076699b5f508b95c3580bc73c717be7";
static const char v_client_head[] = "002c000000006553f100";
static const char v_client_body[] =
    "0179a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a5"
    "1a00090100017f0000010050";
static const char v_server_body[] =
    "01675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea5"
    "2f00020100";
static const uint32_t v_hotp0 = 621472461;
static const uint16_t v_port0 = 29389; /* slot 0 in 1024-65535 */
/* 60 s slots: the slot of TS and when it begins (off the minute). */
static const uint64_t v_slot_ts = 28333333, v_slot_start = UINT64_C(1699999984131);
static const uint16_t v_port_ts = 47671;

static const vectors v_chacha = {
    .client_flight = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                     "aabdb45e139f974daffa363be9c6c80274c5341b6740dcbb72414983f15981d3"
                     "97a6083c8d4b43939ca25a968ff6f77fda58911cd3f0ac99adb5a0aacb5f0ec8"
                     "5b88efe0eadb6d4837facdd48d429387d6db69517691",
    .server_hello = "96e3fb27afa5087cffd4550b8bc4a7f30f45347e4f4016d9cd8bbff624e1b5e1"
                    "6a4748222e2813627434b5b011186e1b0405f63c93f9d17971e8da534c6ac1b5"
                    "fe179e21bec8c7",
    .c2s = "e98561b6ddbbd4637b4d6bada33b53d854f5f21d4d2f10f27cf8653e50ae9819"
           "13f84b97e697f51ee4be64c16cda72",
    .s2c = "0e28cddc897949685d31284bea108338ffc3e97a8ac6acbd58644c9ad7d70451"
           "58bffc1cee22596f1e6bd974133f5a",
    .long_sha256 = "4b78f2f08606e30fb5b9e0eefdf7e57266577d2981fbf4f168a5629e175d7576",
};

static const vectors v_aes = {
    .client_flight = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                     "85f9078d9f1232a38e74f47976257635ce1e70799cd449b97c76c1f9ecdee6c2"
                     "95b738158a0dec54237ca87cbe29dc7d9e09d25e1472e4e0cc179f6d5ee5178f"
                     "cee74850f97df127a0361e3b51c506836a0490ec515d",
    .server_hello = "1716f6414b747c5c186a3cfa206a355a398c7193f3f77770bbad2dd7bb83c329"
                    "5705593cef15bb9db92c04711335078cc7417954385d9bcfd3281feb5159f903"
                    "4a1185d7220620",
    .c2s = "5f4f0ca00ff47517e464fa312d9f089e682eacb5994a0ab9d5eb9a58e4af891b"
           "de64f24ac89b281d1e36dbbcbea914",
    .s2c = "d8f19b19d65d5bcae9640a20460cd0007f8f2f313ca437a9b3ca467c53795a2f"
           "157ba3c2bdea74eab21dacc954f23e",
    .long_sha256 = "e3743aa2040979d06f4a9a93e81ad738eb73f951c72c6413409ae82bb378387a",
};

/* The X25519 public key of PRIV, computed by OpenSSL directly rather than
 * through the code under test. */
static void x25519_pub(const uint8_t priv[32], uint8_t pub[32])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    cr_assert_not_null(k);
    size_t len = 32;
    cr_assert_eq(EVP_PKEY_get_raw_public_key(k, pub, &len), 1);
    cr_assert_eq(len, 32);
    EVP_PKEY_free(k);
}

/* One direction's frames: DATA "hello" and FIN, no padding. */
static void vector_frames(enum tt_aead_alg alg, const uint8_t key[32], const char *want,
                          const char *what)
{
    tt_frame_writer tx;
    cr_assert_eq(tt_frame_writer_init(&tx, alg, key), 0);
    uint8_t out[2 * TT_FRAME_OVERHEAD + 5];
    size_t n = tt_frame_seal(&tx, TT_FRAME_DATA, (const uint8_t *)"hello", 5, 0, out);
    n += tt_frame_seal(&tx, TT_FRAME_FIN, NULL, 0, 0, out + n);
    cr_assert_eq(n, sizeof out);
    expect_hex(out, n, want, what);
    tt_frame_writer_free(&tx);

    /* And the reader takes the golden bytes back. */
    tt_frame_reader r;
    reader_keyed(&r, alg, key, TT_FRAME_MAX_DATA);
    size_t used, len;
    uint8_t type;
    const uint8_t *data;
    cr_assert_eq(tt_frame_reader_feed(&r, out, n, &used, &type, &data, &len), 1);
    cr_assert_eq(type, TT_FRAME_DATA);
    cr_assert_eq(len, 5);
    cr_assert_arr_eq(data, "hello", 5);
    cr_assert_eq(tt_frame_reader_feed(&r, out + used, n - used, &used, &type, &data, &len), 1);
    cr_assert_eq(type, TT_FRAME_FIN);
    cr_assert_eq(len, 0);
    tt_frame_reader_free(&r);
}

/* The long stream: frame i (0..39) is DATA with the one byte i and i % 3
 * bytes of padding, then a FIN; its SHA-256, and the reader takes it back. */
static void vector_long(enum tt_aead_alg alg, const uint8_t key[32], const char *want)
{
    tt_frame_writer tx;
    cr_assert_eq(tt_frame_writer_init(&tx, alg, key), 0);
    uint8_t out[41 * TT_FRAME_OVERHEAD + 40 + 39];
    size_t n = 0;
    for (int i = 0; i < 40; i++) {
        uint8_t b = (uint8_t)i;
        n += tt_frame_seal(&tx, TT_FRAME_DATA, &b, 1, (size_t)(i % 3), out + n);
    }
    n += tt_frame_seal(&tx, TT_FRAME_FIN, NULL, 0, 0, out + n);
    cr_assert_eq(n, sizeof out);
    tt_frame_writer_free(&tx);
    uint8_t md[32];
    unsigned mdlen = 0;
    cr_assert_eq(EVP_Digest(out, n, md, &mdlen, EVP_sha256(), NULL), 1);
    expect_hex(md, 32, want, "long stream SHA-256");

    tt_frame_reader r;
    reader_keyed(&r, alg, key, TT_FRAME_MAX_DATA);
    size_t off = 0;
    for (int i = 0; i <= 40; i++) {
        size_t used, len;
        uint8_t type;
        const uint8_t *data;
        cr_assert_eq(tt_frame_reader_feed(&r, out + off, n - off, &used, &type, &data, &len), 1);
        off += used;
        cr_assert_eq(type, i < 40 ? TT_FRAME_DATA : TT_FRAME_FIN);
        cr_assert_eq(len, i < 40 ? 1u : 0u);
        if (i < 40)
            cr_assert_eq(data[0], i);
    }
    cr_assert_eq(off, n);
    tt_frame_reader_free(&r);
}

static void check_vectors(enum tt_aead_alg alg, const vectors *v)
{
    uint8_t psk[32], salt[32], cpriv[32], spriv[32], cpub[32], spub[32];
    fill_seq(psk, 32, 0x00);
    fill_seq(salt, 32, 0x20);
    fill_seq(cpriv, 32, 0x40);
    fill_seq(spriv, 32, 0x60);
    x25519_pub(cpriv, cpub);
    x25519_pub(spriv, spub);
    expect_hex(cpub, 32, v_cpub, "client public key");
    expect_hex(spub, 32, v_spub, "server public key");

    uint8_t pk[32];
    cr_assert_eq(tt_proto_port_key(psk, pk), 0);
    expect_hex(pk, 32, v_port_key, "port key");
    cr_assert_eq(tt_hotp(pk, 32, 0), v_hotp0);
    cr_assert_eq(tt_proto_hop_port(pk, 0, 1024, 65535), v_port0);
    cr_assert_eq(tt_proto_hop_slot(pk, UINT64_C(1700000000) * 1000, 60000), v_slot_ts);
    cr_assert_eq(tt_proto_hop_start(pk, v_slot_ts, 60000), v_slot_start);
    cr_assert_eq(tt_proto_hop_port(pk, v_slot_ts, 1024, 65535), v_port_ts);

    uint8_t hc2s[32], hs2c[32];
    cr_assert_eq(tt_proto_hello_keys(psk, salt, hc2s, hs2c), 0);
    expect_hex(hc2s, 32, v_hc2s, "hello c2s key");
    expect_hex(hs2c, 32, v_hs2c, "hello s2c key");

    /* Client first flight. */
    tt_aead tx;
    cr_assert_eq(tt_aead_init(&tx, alg, hc2s, true), 0);
    uint8_t flight[32 + 26 + 35 + 9 + 16];
    cr_assert_eq(tt_client_hello_size(9, 0), sizeof flight);
    cr_assert_eq(tt_client_hello_seal(&tx, salt, 1700000000, cpub, open_127_80, 9, 0, flight), 0);
    expect_hex(flight, sizeof flight, v->client_flight, "client first flight");
    tt_aead_free(&tx);

    /* Server hello. */
    static const uint8_t reply[2] = {0x01, 0x00};
    cr_assert_eq(tt_aead_init(&tx, alg, hs2c, true), 0);
    uint8_t sh[18 + 35 + 2 + 16];
    cr_assert_eq(tt_server_hello_size(2, 0), sizeof sh);
    cr_assert_eq(tt_server_hello_seal(&tx, spub, reply, 2, 0, sh), 0);
    expect_hex(sh, sizeof sh, v->server_hello, "server hello");
    tt_aead_free(&tx);

    /* The golden hellos open to the inputs. */
    tt_aead rx;
    size_t body;
    tt_client_hello ch;
    uint8_t head[10];
    cr_assert_eq(tt_aead_init(&rx, alg, hc2s, false), 0);
    cr_assert_eq(tt_aead_open(&rx, flight + 32, TT_CLIENT_HDR_LEN, head), 0);
    expect_hex(head, sizeof head, v_client_head, "client hello head plaintext");
    tt_aead_free(&rx);
    cr_assert_eq(tt_aead_init(&rx, alg, hc2s, false), 0);
    uint64_t ts = 0;
    cr_assert_eq(tt_hello_open_len(&rx, flight + 32, true, &body, &ts), 0);
    cr_assert_eq(ts, 1700000000);
    cr_assert_eq(body, 35 + 9 + 16);
    cr_assert_eq(tt_client_hello_open(&rx, flight + TT_CLIENT_PREFIX_LEN, body, &ch), 0);
    cr_assert_eq(ch.elen, 9);
    cr_assert_arr_eq(ch.early, open_127_80, 9);
    cr_assert_arr_eq(ch.cpub, cpub, 32);
    expect_hex(flight + TT_CLIENT_PREFIX_LEN, body - 16, v_client_body, "client hello plaintext");
    tt_aead_free(&rx);
    tt_server_hello shv;
    cr_assert_eq(tt_aead_init(&rx, alg, hs2c, false), 0);
    cr_assert_eq(tt_hello_open_len(&rx, sh, false, &body, NULL), 0);
    cr_assert_eq(body, 35 + 2 + 16);
    cr_assert_eq(tt_server_hello_open(&rx, sh + TT_HELLO_HDR_LEN, body, &shv), 0);
    cr_assert_arr_eq(shv.spub, spub, 32);
    cr_assert_eq(shv.dlen, 2);
    cr_assert_arr_eq(shv.data, reply, 2);
    expect_hex(sh + TT_HELLO_HDR_LEN, body - 16, v_server_body, "server hello plaintext");
    tt_aead_free(&rx);

    /* Session keys, from both ends. */
    uint8_t shared[32], shared2[32], c2s[32], s2c[32];
    cr_assert_eq(tt_x25519(cpriv, spub, shared), 0);
    cr_assert_eq(tt_x25519(spriv, cpub, shared2), 0);
    cr_assert_arr_eq(shared, shared2, 32);
    expect_hex(shared, 32, v_shared, "X25519 shared secret");
    cr_assert_eq(tt_proto_session_keys(psk, salt, shared, cpub, spub, c2s, s2c), 0);
    expect_hex(c2s, 32, v_sc2s, "session c2s key");
    expect_hex(s2c, 32, v_ss2c, "session s2c key");

    vector_frames(alg, c2s, v->c2s, "c2s frames");
    vector_frames(alg, s2c, v->s2c, "s2c frames");
    vector_long(alg, c2s, v->long_sha256);
}

Test(ttproto_vectors, chacha20_poly1305)
{
    check_vectors(TT_AEAD_CHACHA20_POLY1305, &v_chacha);
}

Test(ttproto_vectors, aes_256_gcm)
{
    check_vectors(TT_AEAD_AES_256_GCM, &v_aes);
}
