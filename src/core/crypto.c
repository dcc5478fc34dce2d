#include "core/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

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
    const EVP_CIPHER *c = alg == TT_AEAD_AES_256_GCM ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
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

int tt_aead_seal_pad(tt_aead *a, const uint8_t *in, size_t len, size_t pad, uint8_t *out)
{
    uint8_t nonce[TT_AEAD_NONCE_LEN];
    make_nonce(a->counter++, nonce);
    EVP_CIPHER_CTX *ctx = a->ctx;
    int n = 0, m = 0, f = 0;
    if (len > INT32_MAX || pad > sizeof g_zeros)
        return -EIO;
    /* The tag goes through the params interface directly: the ctrl
     * interface translates to it on every call, which costs more than
     * sealing a small message. */
    OSSL_PARAM tag[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG,
                                                           out + len + pad, TT_AEAD_TAG_LEN),
                         OSSL_PARAM_construct_end()};
    if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
        (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1) ||
        (pad > 0 && EVP_CipherUpdate(ctx, out + n, &m, g_zeros, (int)pad) != 1) ||
        EVP_CipherFinal_ex(ctx, out + n + m, &f) != 1 || EVP_CIPHER_CTX_get_params(ctx, tag) != 1)
        return -EIO;
    return 0;
}

int tt_aead_seal(tt_aead *a, const uint8_t *in, size_t len, uint8_t *out)
{
    return tt_aead_seal_pad(a, in, len, 0, out);
}

int tt_aead_open(tt_aead *a, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t nonce[TT_AEAD_NONCE_LEN];
    make_nonce(a->counter++, nonce);
    if (len < TT_AEAD_TAG_LEN || len - TT_AEAD_TAG_LEN > INT32_MAX)
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
    int n = 0, f = 0;
    if (EVP_CipherInit_ex2(ctx, NULL, NULL, nonce, 0, NULL) != 1 ||
        (clen > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)clen) != 1) ||
        EVP_CIPHER_CTX_set_params(ctx, tag) != 1 || EVP_CipherFinal_ex(ctx, out + n, &f) != 1)
        return -EBADMSG;
    return 0;
}

int tt_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
            const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL)
        return -EIO;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (kctx == NULL)
        return -EIO;
    OSSL_PARAM params[5];
    int i = 0;
    params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[i++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)ikm, ikm_len);
    /* An absent salt means zeros (RFC 5869); OpenSSL wants no parameter then. */
    if (salt_len > 0)
        params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                        (void *)(uintptr_t)salt, salt_len);
    params[i++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)(uintptr_t)info, info_len);
    params[i] = OSSL_PARAM_construct_end();
    int rc = EVP_KDF_derive(kctx, out, out_len, params) == 1 ? 0 : -EIO;
    EVP_KDF_CTX_free(kctx);
    return rc;
}

int tt_scrypt(const char *pass, size_t pass_len, const uint8_t *salt, size_t salt_len, uint64_t n,
              uint8_t *out, size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    if (kdf == NULL)
        return -EIO;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
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
