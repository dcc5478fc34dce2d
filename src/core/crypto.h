/* The cryptographic primitives tt uses, over OpenSSL 3: an AEAD with
 * counter nonces (one context per direction, keyed once), HKDF-SHA256,
 * scrypt, X25519, HOTP (RFC 4226) and random bytes. No state is hidden in
 * statics: every context is the caller's. */
#ifndef TT_CORE_CRYPTO_H
#define TT_CORE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tt_aead_alg {
    TT_AEAD_CHACHA20_POLY1305 = 0,
    TT_AEAD_AES_256_GCM = 1,
};

#define TT_AEAD_KEY_LEN 32
#define TT_AEAD_TAG_LEN 16
#define TT_AEAD_NONCE_LEN 12

/* Parses "chacha20-poly1305" or "aes-256-gcm"; returns the alg or -1. */
int tt_aead_parse(const char *name);
const char *tt_aead_name(enum tt_aead_alg alg);

typedef struct tt_aead {
    void *ctx;        /* private: EVP_CIPHER_CTX */
    uint64_t counter; /* the next nonce; starts at 0 (see tt_aead_set_counter) */
    bool encrypt;     /* read-only */
} tt_aead;

/* Keys CTX for sealing (ENCRYPT) or opening. Returns 0 or -ENOMEM/-EINVAL.
 * The nonce of message i is i as a 96-bit little-endian number, so messages
 * must be opened in the order they were sealed: a dropped, reordered or
 * replayed message fails to open. */
int tt_aead_init(tt_aead *a, enum tt_aead_alg alg, const uint8_t key[TT_AEAD_KEY_LEN],
                 bool encrypt);
void tt_aead_free(tt_aead *a);

/* Seals LEN bytes of IN into OUT (LEN + 16 bytes: ciphertext then tag) with
 * the next nonce. IN and OUT may be the same buffer. Returns 0 or -EIO. */
int tt_aead_seal(tt_aead *a, const uint8_t *in, size_t len, uint8_t *out);

/* Opens LEN bytes (ciphertext and tag, LEN >= 16) of IN into OUT (LEN - 16
 * bytes) with the next nonce. IN and OUT may be the same. Returns 0, or
 * -EBADMSG when authentication fails (the counter still advances: the
 * connection is to be abandoned). */
int tt_aead_open(tt_aead *a, const uint8_t *in, size_t len, uint8_t *out);

/* As tt_aead_seal for the message IN followed by PAD zero bytes (PAD at most
 * 4096; OUT receives LEN + PAD + 16 bytes; IN may equal OUT), with AD_LEN
 * bytes of additional data AD authenticated but not sent (AD may be NULL
 * when AD_LEN is 0). */
int tt_aead_seal_ad(tt_aead *a, const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len,
                    size_t pad, uint8_t *out);

/* As tt_aead_open, with additional data AD that must match the sealer's. */
int tt_aead_open_ad(tt_aead *a, const uint8_t *ad, size_t ad_len, const uint8_t *in, size_t len,
                    uint8_t *out);

/* Makes N the nonce of the next message sealed or opened with A, for
 * messages that carry their own number (a packet number sent in the clear
 * and authenticated as additional data): the caller guarantees that no
 * number is sealed twice under one key. */
static inline void tt_aead_set_counter(tt_aead *a, uint64_t n)
{
    a->counter = n;
}

/* Nonces whose last byte has its top bit set are never message nonces (a
 * counter would need 2^95 messages to reach them); they name keystream
 * blocks instead. */
#define TT_AEAD_KEYSTREAM_BIT 0x80

/* Writes into OUT the first LEN bytes (at most 4096) of the ciphertext of LEN
 * zero bytes sealed under the nonce BLOCK (little-endian, low 8 bytes) with
 * TT_AEAD_KEYSTREAM_BIT in its last byte: keystream that no message shares.
 * Works on a context keyed for sealing or for opening and leaves the message
 * counter alone. Returns 0 or -EIO. */
int tt_aead_keystream(tt_aead *a, uint64_t block, uint8_t *out, size_t len);

/* HKDF-SHA256 (RFC 5869), extract and expand. Returns 0 or -EIO. */
int tt_hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
            const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* scrypt (RFC 7914) with r = 8, p = 1 and the given N (a power of two).
 * Returns 0 or -EIO. */
int tt_scrypt(const char *pass, size_t pass_len, const uint8_t *salt, size_t salt_len, uint64_t n,
              uint8_t *out, size_t out_len);

/* An ephemeral X25519 key pair. Kept as OpenSSL's key object, because
 * re-importing the private bytes would recompute the public key: a second
 * scalar multiplication on every handshake. */
typedef struct tt_x25519_key {
    void *pkey;      /* private: EVP_PKEY, NULL when empty */
    uint8_t pub[32]; /* read-only */
} tt_x25519_key;

/* Generates a key pair into K (which must be empty). Returns 0 or -EIO. */
int tt_x25519_generate(tt_x25519_key *k);

/* The shared secret of K and PEER. Returns 0, or -EIO (also for a peer key
 * that gives the all-zero secret). */
int tt_x25519_derive(const tt_x25519_key *k, const uint8_t peer[32], uint8_t shared[32]);

/* Frees the key (if any) and leaves K empty. */
void tt_x25519_free(tt_x25519_key *k);

/* Moves the key in FROM to TO (which must be empty), leaving FROM empty. */
void tt_x25519_move(tt_x25519_key *to, tt_x25519_key *from);

/* A fresh X25519 key pair as raw bytes (tests, vectors). Returns 0 or -EIO. */
int tt_x25519_keypair(uint8_t priv[32], uint8_t pub[32]);

/* The X25519 shared secret of PRIV and PEER. Returns 0, or -EIO (including
 * for a peer key that gives the all-zero secret). */
int tt_x25519(const uint8_t priv[32], const uint8_t peer[32], uint8_t shared[32]);

/* HOTP's dynamically truncated 31-bit value (RFC 4226 section 5.3, "Snum")
 * for KEY and COUNTER; the 6-digit code is this modulo 10^6. */
uint32_t tt_hotp(const uint8_t *key, size_t key_len, uint64_t counter);

/* HMAC-SHA256 of the LEN bytes at MSG under KEY into OUT (32 bytes). Aborts
 * if OpenSSL cannot compute it (as tt_hotp does): there is no safe way on. */
void tt_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                    uint8_t out[32]);

/* Fills BUF with cryptographically random bytes; aborts if the system
 * cannot provide them (there is no safe way on). */
void tt_random(void *buf, size_t len);

/* A uniformly random number in [LO, HI]. */
uint32_t tt_random_range(uint32_t lo, uint32_t hi);

#endif
