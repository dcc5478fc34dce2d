/* Known-answer tests from the RFCs for the primitives, and the AEAD's
 * counter-nonce rules: a message opens only in its place in the sequence. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/crypto.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
}

Test(crypto, hotp_rfc4226_appendix_d)
{
    static const uint32_t snum[10] = {1284755224, 1094287082, 137359152, 1726969429, 1640338314,
                                      868254676,  1918287922, 82162583,  673399871,  645520489};
    static const uint32_t code[10] = {755224, 287082, 359152, 969429, 338314,
                                      254676, 287922, 162583, 399871, 520489};
    const char *secret = "12345678901234567890";
    for (uint64_t c = 0; c < 10; c++) {
        uint32_t v = tt_hotp((const uint8_t *)secret, 20, c);
        cr_expect_eq(v, snum[c], "count %llu", (unsigned long long)c);
        cr_expect_eq(v % 1000000, code[c]);
    }
}

Test(crypto, hkdf_rfc5869_case1)
{
    uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
          want, 42);
    cr_assert_eq(tt_hkdf(ikm, 22, salt, 13, info, 10, okm, 42), 0);
    cr_assert_arr_eq(okm, want, 42);
}

Test(crypto, scrypt_rfc7914_vector3, .timeout = 60)
{
    uint8_t out[64], want[64];
    unhex("7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d4"
          "9705242a9af9e61e85dc0d651e40dfcf017b45575887",
          want, 64);
    cr_assert_eq(
        tt_scrypt("pleaseletmein", 13, (const uint8_t *)"SodiumChloride", 14, 16384, out, 64), 0);
    cr_assert_arr_eq(out, want, 64);
}

Test(crypto, x25519_rfc7748_section_6_1)
{
    uint8_t a[32], b[32], apub[32], bpub[32], want[32], s1[32], s2[32];
    unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, 32);
    unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b, 32);
    unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", apub, 32);
    unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bpub, 32);
    unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", want, 32);
    cr_assert_eq(tt_x25519(a, bpub, s1), 0);
    cr_assert_eq(tt_x25519(b, apub, s2), 0);
    cr_assert_arr_eq(s1, want, 32);
    cr_assert_arr_eq(s2, want, 32);
}

Test(crypto, x25519_refuses_low_order_point)
{
    uint8_t priv[32], pub[32], zero[32] = {0}, s[32];
    cr_assert_eq(tt_x25519_keypair(priv, pub), 0);
    cr_assert_neq(tt_x25519(priv, zero, s), 0, "an all-zero shared secret must be refused");
}

static void roundtrip(enum tt_aead_alg alg)
{
    uint8_t key[32];
    tt_random(key, sizeof key);
    tt_aead s, o;
    cr_assert_eq(tt_aead_init(&s, alg, key, true), 0);
    cr_assert_eq(tt_aead_init(&o, alg, key, false), 0);
    uint8_t buf[3][100 + TT_AEAD_TAG_LEN];
    for (int i = 0; i < 3; i++) {
        /* Messages 0 and 1 are the same text, so only the nonce can tell
         * their ciphertexts apart; comparing all 116 bytes leaves no chance
         * of a false equality (one byte would match once in 256 runs). */
        memset(buf[i], i == 2 ? 'c' : 'a', 100);
        cr_assert_eq(tt_aead_seal(&s, buf[i], 100, buf[i]), 0); /* in place */
    }
    cr_assert_neq(memcmp(buf[0], buf[1], sizeof buf[0]), 0,
                  "different nonces give different ciphertexts");
    uint8_t out[100];
    cr_assert_eq(tt_aead_open(&o, buf[0], sizeof buf[0], out), 0);
    cr_assert_eq(out[0], 'a');
    /* Skipping message 1 (dropped) or taking it out of order fails. */
    cr_assert_eq(tt_aead_open(&o, buf[2], sizeof buf[2], out), -EBADMSG);
    tt_aead_free(&s);
    tt_aead_free(&o);

    /* A flipped bit fails. */
    cr_assert_eq(tt_aead_init(&s, alg, key, true), 0);
    cr_assert_eq(tt_aead_init(&o, alg, key, false), 0);
    uint8_t m[10 + TT_AEAD_TAG_LEN] = "0123456789";
    cr_assert_eq(tt_aead_seal(&s, m, 10, m), 0);
    m[3] ^= 1;
    cr_assert_eq(tt_aead_open(&o, m, sizeof m, out), -EBADMSG);
    tt_aead_free(&s);
    tt_aead_free(&o);
}

Test(crypto, chacha20_poly1305_counter_nonces)
{
    roundtrip(TT_AEAD_CHACHA20_POLY1305);
}

Test(crypto, aes_256_gcm_counter_nonces)
{
    roundtrip(TT_AEAD_AES_256_GCM);
}

Test(crypto, aead_names)
{
    cr_expect_eq(tt_aead_parse("chacha20-poly1305"), TT_AEAD_CHACHA20_POLY1305);
    cr_expect_eq(tt_aead_parse("aes-256-gcm"), TT_AEAD_AES_256_GCM);
    cr_expect_eq(tt_aead_parse("aes-128-gcm"), -1);
    cr_expect_str_eq(tt_aead_name(TT_AEAD_AES_256_GCM), "aes-256-gcm");
}

Test(crypto, random_range_stays_in_bounds)
{
    for (int i = 0; i < 1000; i++) {
        uint32_t v = tt_random_range(1024, 1030);
        cr_assert(v >= 1024 && v <= 1030);
    }
    cr_assert_eq(tt_random_range(7, 7), 7);
}

/* Additional data is authenticated: a sealer's and an opener's must agree. */
static void additional_data(enum tt_aead_alg alg)
{
    uint8_t key[32] = {7}, msg[40], box[40 + 3 + 16], back[43];
    memset(msg, 'm', sizeof msg);
    tt_aead tx, rx;
    cr_assert_eq(tt_aead_init(&tx, alg, key, true), 0);
    cr_assert_eq(tt_aead_seal_ad(&tx, (const uint8_t *)"hdr1", 4, msg, sizeof msg, 3, box), 0);
    cr_assert_eq(tt_aead_init(&rx, alg, key, false), 0);
    cr_assert_eq(tt_aead_open_ad(&rx, (const uint8_t *)"hdr2", 4, box, sizeof box, back), -EBADMSG);
    tt_aead_free(&rx);
    cr_assert_eq(tt_aead_init(&rx, alg, key, false), 0);
    cr_assert_eq(tt_aead_open(&rx, box, sizeof box, back), -EBADMSG,
                 "no AD opens nothing sealed with one");
    tt_aead_free(&rx);
    cr_assert_eq(tt_aead_init(&rx, alg, key, false), 0);
    cr_assert_eq(tt_aead_open_ad(&rx, (const uint8_t *)"hdr1", 4, box, sizeof box, back), 0);
    cr_assert_arr_eq(back, msg, sizeof msg);
    cr_assert_eq(back[40] | back[41] | back[42], 0, "the padding opens as zeros");
    tt_aead_free(&tx);
    tt_aead_free(&rx);
}

Test(crypto, aead_additional_data)
{
    additional_data(TT_AEAD_CHACHA20_POLY1305);
    additional_data(TT_AEAD_AES_256_GCM);
}

/* Keystream block B is the ciphertext of zeros under the nonce B with the
 * keystream bit: the same from a sealing and an opening context, different
 * per block, and it leaves the message counter where it was. */
static void keystream(enum tt_aead_alg alg)
{
    uint8_t key[32] = {9}, a[160], b[160], c[160], zeros[160] = {0}, box[160 + 16];
    tt_aead tx, rx;
    cr_assert_eq(tt_aead_init(&tx, alg, key, true), 0);
    cr_assert_eq(tt_aead_init(&rx, alg, key, false), 0);
    cr_assert_eq(tt_aead_keystream(&tx, 5, a, sizeof a), 0);
    cr_assert_eq(tt_aead_keystream(&rx, 5, b, sizeof b), 0);
    cr_assert_arr_eq(a, b, sizeof a);
    cr_assert_eq(tt_aead_keystream(&tx, 6, c, sizeof c), 0);
    cr_assert(memcmp(a, c, sizeof a) != 0);
    cr_assert_eq(tx.counter, 0);
    cr_assert_eq(rx.counter, 0);
    /* By the definition, computed with OpenSSL directly: the ciphertext of
     * zeros under the nonce 5 (little-endian) with 0x80 in its last byte. */
    static const char *names[] = {"ChaCha20-Poly1305", "AES-256-GCM"};
    uint8_t nonce[12] = {5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, ref[160];
    EVP_CIPHER *ci = EVP_CIPHER_fetch(NULL, names[alg], NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    cr_assert(ci != NULL && ctx != NULL);
    cr_assert_eq(EVP_EncryptInit_ex2(ctx, ci, key, nonce, NULL), 1);
    cr_assert_eq(EVP_EncryptUpdate(ctx, ref, &n, zeros, sizeof zeros), 1);
    cr_assert_eq(n, 160);
    cr_assert_arr_eq(a, ref, sizeof a);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(ci);
    /* And it is not a message's keystream: message 0's differs. */
    tt_aead plain;
    cr_assert_eq(tt_aead_init(&plain, alg, key, true), 0);
    cr_assert_eq(tt_aead_seal(&plain, zeros, sizeof zeros, box), 0);
    cr_assert(memcmp(a, box, sizeof a) != 0);
    uint8_t z[160];
    cr_assert_eq(tt_aead_keystream(&tx, 0, z, sizeof z), 0);
    cr_assert(memcmp(z, box, sizeof z) != 0, "keystream nonces differ from message nonces");
    /* Messages still seal and open after keystream was drawn in between. */
    uint8_t m[16] = "after keystream", back[16];
    cr_assert_eq(tt_aead_seal(&tx, m, sizeof m, box), 0);
    cr_assert_eq(tt_aead_keystream(&rx, 1, c, sizeof c), 0);
    cr_assert_eq(tt_aead_open(&rx, box, sizeof m + 16, back), 0);
    cr_assert_arr_eq(back, m, sizeof m);
    tt_aead_free(&plain);
    tt_aead_free(&tx);
    tt_aead_free(&rx);
}

Test(crypto, aead_keystream)
{
    keystream(TT_AEAD_CHACHA20_POLY1305);
    keystream(TT_AEAD_AES_256_GCM);
}
