#include "core/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

/* Algorithm handles, fetched once: OpenSSL 3 looks implementations up by
 * name on every implicit fetch, which costs more than a whole handshake's
 * arithmetic. They hold no key material. The loop thread is the only user. */
static EVP_CIPHER *g_cipher[2];
static EVP_KDF *g_scrypt;

static EVP_CIPHER *cipher_of(enum tt_aead_alg alg)
{
    int i = alg == TT_AEAD_AES_256_GCM ? 1 : 0;
    if (g_cipher[i] == NULL)
        g_cipher[i] = EVP_CIPHER_fetch(NULL, i ? "AES-256-GCM" : "ChaCha20-Poly1305", NULL);
    return g_cipher[i];
}

static EVP_KDF *kdf_of(EVP_KDF **slot, const char *name)
{
    if (*slot == NULL)
        *slot = EVP_KDF_fetch(NULL, name, NULL);
    return *slot;
}

int tt_aead_parse(const char *name)
{
    if (strcmp(name, "chacha20-poly1305") == 0 || strcmp(name, "chacha20-ietf-poly1305") == 0)
        return TT_AEAD_CHACHA20_POLY1305;
    if (strcmp(name, "aes-256-gcm") == 0)
        return TT_AEAD_AES_256_GCM;
    return -1;
}

const char *tt_aead_name(enum tt_aead_alg alg)
{
    return alg == TT_AEAD_AES_256_GCM ? "aes-256-gcm" : "chacha20-poly1305";
}

int tt_aead_init(tt_aead *a, enum tt_aead_alg alg, const uint8_t key[TT_AEAD_KEY_LEN], bool encrypt)
{
    memset(a, 0, sizeof *a);
    EVP_CIPHER *c = cipher_of(alg);
    EVP_CIPHER_CTX *ctx = c ? EVP_CIPHER_CTX_new() : NULL;
    if (ctx == NULL)
        return -ENOMEM;
    /* Keying once and changing only the nonce per message keeps the key
     * schedule out of the per-frame cost. */
    if (EVP_CipherInit_ex2(ctx, c, key, NULL, encrypt ? 1 : 0, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return -EINVAL;
    }
    a->ctx = ctx;
    a->encrypt = encrypt;
    return 0;
}

void tt_aead_free(tt_aead *a)
{
    EVP_CIPHER_CTX_free(a->ctx);
    a->ctx = NULL;
}

static void make_nonce(uint64_t counter, uint8_t nonce[TT_AEAD_NONCE_LEN])
{
    memset(nonce, 0, TT_AEAD_NONCE_LEN);
    for (int i = 0; i < 8; i++)
        nonce[i] = (uint8_t)(counter >> (8 * i));
}

/* Zeros for padding, so padding is sealed without being copied first. */
static const uint8_t g_zeros[4096];

int tt_aead_seal_ad(tt_aead *a, const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len,
                    size_t pad, uint8_t *out)
{
    uint8_t nonce[TT_AEAD_NONCE_LEN];
    make_nonce(a->counter++, nonce);
    EVP_CIPHER_CTX *ctx = a->ctx;
    int n = 0, m = 0, f = 0, x = 0;
    if (len > INT32_MAX || pad > sizeof g_zeros || ad_len > INT32_MAX)
        return -EIO;
    /* The tag goes through the params interface directly: the ctrl
     * interface translates to it on every call, which costs more than
     * sealing a small message. */
    OSSL_PARAM tag[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                                           out + len + pad, TT_AEAD_TAG_LEN),
                         OSSL_PARAM_construct_end()};
    if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
        (ad_len > 0 && EVP_CipherUpdate(ctx, NULL, &x, ad, (int)ad_len) != 1) ||
        (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1) ||
        (pad > 0 && EVP_CipherUpdate(ctx, out + n, &m, g_zeros, (int)pad) != 1) ||
        EVP_CipherFinal_ex(ctx, out + n + m, &f) != 1 || EVP_CIPHER_CTX_get_params(ctx, tag) != 1)
        return -EIO;
    return 0;
}

int tt_aead_seal(tt_aead *a, const uint8_t *in, size_t len, uint8_t *out)
{
    return tt_aead_seal_ad(a, NULL, 0, in, len, 0, out);
}

int tt_aead_open_ad(tt_aead *a, const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len,
                    uint8_t *out)
{
    uint8_t nonce[TT_AEAD_NONCE_LEN];
    make_nonce(a->counter++, nonce);
    if (len < TT_AEAD_TAG_LEN || len - TT_AEAD_TAG_LEN > INT32_MAX || ad_len > INT32_MAX)
        return -EBADMSG;
    size_t clen = len - TT_AEAD_TAG_LEN;
    uint8_t tagbuf[TT_AEAD_TAG_LEN];
    /* Copy the tag first: with IN == OUT the plaintext overwrites nothing of
     * it, but this keeps the rule simple. */
    memcpy(tagbuf, in + clen, TT_AEAD_TAG_LEN);
    OSSL_PARAM tag[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tagbuf, TT_AEAD_TAG_LEN),
        OSSL_PARAM_construct_end()};
    EVP_CIPHER_CTX *ctx = a->ctx;
    int n = 0, f = 0, x = 0;
    if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 0, NULL) != 1 ||
        (ad_len > 0 && EVP_CipherUpdate(ctx, NULL, &x, ad, (int)ad_len) != 1) ||
        (clen > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)clen) != 1) ||
        EVP_CIPHER_CTX_set_params(ctx, tag) != 1 || EVP_CipherFinal_ex(ctx, out + n, &f) != 1)
        return -EBADMSG;
    return 0;
}

int tt_aead_open(tt_aead *a, const uint8_t *in, size_t len, uint8_t *out)
{
    return tt_aead_open_ad(a, NULL, 0, in, len, out);
}

int tt_aead_keystream(tt_aead *a, uint64_t block, uint8_t *out, size_t len)
{
    uint8_t nonce[TT_AEAD_NONCE_LEN];
    make_nonce(block, nonce);
    nonce[TT_AEAD_NONCE_LEN - 1] = TT_AEAD_KEYSTREAM_BIT;
    int n = 0;
    if (len > sizeof g_zeros)
        return -EIO;
    /* Both ciphers encrypt and decrypt by adding the same keystream, so
     * passing zeros through the context in either direction yields it. The
     * tag is never computed: the next message's nonce resets the context. */
    if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, a->encrypt ? 1 : 0, NULL) != 1 ||
        EVP_CipherUpdate(a->ctx, out, &n, g_zeros, (int)len) != 1 || (size_t)n != len)
        return -EIO;
    return 0;
}

/* HMAC-SHA256 over one reusable context: OpenSSL's KDF objects cost more
 * to set up per call than the two or three HMACs HKDF needs. */
static EVP_MAC_CTX *g_hmac;

static int hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
                       const uint8_t *b, size_t b_len, const uint8_t *c, size_t c_len,
                       uint8_t out[32])
{
    if (g_hmac == NULL) {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        g_hmac = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac);
        if (g_hmac == NULL)
            return -EIO;
        OSSL_PARAM p[2] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end()};
        if (EVP_MAC_CTX_set_params(g_hmac, p) != 1)
            return -EIO;
    }
    /* HMAC treats an empty key as zeros; OpenSSL wants a non-NULL pointer. */
    static const uint8_t nokey[1];
    size_t n = 0;
    if (EVP_MAC_init(g_hmac, key_len ? key : nokey, key_len, NULL) != 1 ||
        (a_len && EVP_MAC_update(g_hmac, a, a_len) != 1) ||
        (b_len && EVP_MAC_update(g_hmac, b, b_len) != 1) ||
        (c_len && EVP_MAC_update(g_hmac, c, c_len) != 1) ||
        EVP_MAC_final(g_hmac, out, &n, 32) != 1 || n != 32)
        return -EIO;
    return 0;
}

int tt_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
            const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    /* RFC 5869: PRK = HMAC(salt, IKM); T(i) = HMAC(PRK, T(i-1) | info | i). */
    if (out_len > 255 * 32)
        return -EINVAL;
    uint8_t prk[32], t[32];
    int rc = hmac_sha256(salt, salt_len, ikm, ikm_len, NULL, 0, NULL, 0, prk);
    size_t done = 0, tlen = 0;
    for (uint8_t i = 1; rc == 0 && done < out_len; i++) {
        rc = hmac_sha256(prk, sizeof prk, t, tlen, info, info_len, &i, 1, t);
        tlen = sizeof t;
        size_t n = out_len - done < 32 ? out_len - done : 32;
        memcpy(out + done, t, n);
        done += n;
    }
    OPENSSL_cleanse(prk, sizeof prk);
    OPENSSL_cleanse(t, sizeof t);
    return rc;
}

int tt_scrypt(const char *pass, size_t pass_len, const uint8_t *salt, size_t salt_len, uint64_t n,
              uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = kdf_of(&g_scrypt, "SCRYPT");
    if (kdf == NULL)
        return -EIO;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL)
        return -EIO;
    uint32_t r = 8, p = 1;
    /* scrypt needs 128 * r * N bytes; allow that plus slack. */
    uint64_t maxmem = 128 * (uint64_t)r * n + (1u << 20);
    OSSL_PARAM params[7];
    int i = 0;
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                                    (void *)(uintptr_t)pass, pass_len);
    params[i++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)(uintptr_t)salt, salt_len);
    params[i++] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[i++] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    params[i++] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    params[i++] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    params[i] = OSSL_PARAM_construct_end();
    int rc = EVP_KDF_derive(kctx, out, out_len, params) == 1 ? 0 : -EIO;
    EVP_KDF_CTX_free(kctx);
    return rc;
}

int tt_x25519_keypair(uint8_t priv[32], uint8_t pub[32])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    if (k == NULL)
        return -EIO;
    size_t pl = 32, ql = 32;
    int ok = EVP_PKEY_get_raw_private_key(k, priv, &pl) == 1 &&
             EVP_PKEY_get_raw_public_key(k, pub, &ql) == 1 && pl == 32 && ql == 32;
    EVP_PKEY_free(k);
    return ok ? 0 : -EIO;
}

int tt_x25519(const uint8_t priv[32], const uint8_t peer[32], uint8_t shared[32])
{
    int rc = -EIO;
    EVP_PKEY *me = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    EVP_PKEY *them = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    EVP_PKEY_CTX *ctx = me ? EVP_PKEY_CTX_new(me, NULL) : NULL;
    size_t len = 32;
    /* OpenSSL refuses a derivation that yields the all-zero secret (a
     * low-order peer key), which is what RFC 7748 asks for. */
    if (ctx && them && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, them) == 1 &&
        EVP_PKEY_derive(ctx, shared, &len) == 1 && len == 32)
        rc = 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(them);
    EVP_PKEY_free(me);
    return rc;
}

static EVP_PKEY_CTX *g_keygen;

int tt_x25519_generate(tt_x25519_key *k)
{
    /* One keygen context for the process: creating it fetches the
     * implementation by name, which costs as much as the arithmetic. */
    if (g_keygen == NULL) {
        g_keygen = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
        if (g_keygen == NULL || EVP_PKEY_keygen_init(g_keygen) != 1) {
            EVP_PKEY_CTX_free(g_keygen);
            g_keygen = NULL;
            return -EIO;
        }
    }
    EVP_PKEY *pk = NULL;
    size_t len = 32;
    if (EVP_PKEY_keygen(g_keygen, &pk) != 1 || EVP_PKEY_get_raw_public_key(pk, k->pub, &len) != 1 ||
        len != 32) {
        EVP_PKEY_free(pk);
        return -EIO;
    }
    k->pkey = pk;
    return 0;
}

int tt_x25519_derive(const tt_x25519_key *k, const uint8_t peer[32], uint8_t shared[32])
{
    int rc = -EIO;
    EVP_PKEY *them = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    EVP_PKEY_CTX *ctx = k->pkey ? EVP_PKEY_CTX_new(k->pkey, NULL) : NULL;
    size_t len = 32;
    if (ctx && them && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, them) == 1 &&
        EVP_PKEY_derive(ctx, shared, &len) == 1 && len == 32)
        rc = 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(them);
    return rc;
}

void tt_x25519_free(tt_x25519_key *k)
{
    EVP_PKEY_free(k->pkey);
    k->pkey = NULL;
}

void tt_x25519_move(tt_x25519_key *to, tt_x25519_key *from)
{
    *to = *from;
    from->pkey = NULL;
}

uint32_t tt_hotp(const uint8_t *key, size_t key_len, uint64_t counter)
{
    uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    for (int i = 0; i < 8; i++)
        msg[i] = (uint8_t)(counter >> (56 - 8 * i));
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, key, key_len, msg, sizeof msg, mac, sizeof mac,
                  &mac_len) == NULL ||
        mac_len != 20) {
        fprintf(stderr, "tt: HMAC-SHA1 unavailable\n");
        abort();
    }
    unsigned off = mac[19] & 0x0f;
    return ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
           ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
}

void tt_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                    uint8_t out[32])
{
    size_t mac_len = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, msg, len, out, 32, &mac_len) ==
            NULL ||
        mac_len != 32) {
        fprintf(stderr, "tt: HMAC-SHA256 unavailable\n");
        abort();
    }
}

void tt_random(void *buf, size_t len)
{
    if (len > INT32_MAX || RAND_bytes(buf, (int)len) != 1) {
        fprintf(stderr, "tt: the system random generator failed\n");
        abort();
    }
}

uint32_t tt_random_range(uint32_t lo, uint32_t hi)
{
    uint64_t span = (uint64_t)hi - lo + 1;
    /* Rejection sampling avoids the modulo bias. */
    uint64_t limit = (UINT64_C(1) << 32) - ((UINT64_C(1) << 32) % span);
    for (;;) {
        uint32_t r;
        tt_random(&r, sizeof r);
        if (r < limit)
            return lo + (uint32_t)(r % span);
    }
}
