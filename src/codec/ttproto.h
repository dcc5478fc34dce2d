/* Sans-I/O codec of tt/1, the native carrier's protocol (docs/PROTOCOL.md):
 * key schedule, the two hellos and the frames. No sockets, no clock (times
 * are passed in), no hidden buffers.
 *
 * On the wire, everything after the client's 32-byte random salt is AEAD
 * output, so a connection is indistinguishable from random bytes:
 *
 *   client: SALT(32) | seal_h(LEN(2) TS(8)) | seal_h(VER CPUB(32) ELEN(2) EARLY PAD) | frames...
 *   server:            seal_h(LEN(2))       | seal_h(VER SPUB(32) DLEN(2) DATA PAD)   | frames...
 *   frame:  HDR(5) ^ MASK_i | seal_i(ad = HDR, DATA(LEN) ZEROS(PAD))   HDR = TYPE(1) LEN(2) PAD(2)
 *
 * seal_h uses keys from the pre-shared key and the salt; frames use keys from
 * an ephemeral X25519 exchange as well (forward secrecy). Every seal takes
 * the next counter nonce of its direction; a frame header is hidden by
 * keystream of the same key (MASK_i, made 32 headers at a time) and
 * authenticated as its body's additional data, so a frame costs one AEAD
 * operation. */
#ifndef TT_CODEC_TTPROTO_H
#define TT_CODEC_TTPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"

#define TT_PROTO_VERSION 1
#define TT_PSK_LEN 32
#define TT_SALT_LEN 32
#define TT_PUB_LEN 32
/* The sealed head of a hello: the server's holds its body's length, the
 * client's the length and its time stamp, so that a server judges a first
 * flight's key, freshness and salt before its body arrives. */
#define TT_HELLO_HDR_LEN (2 + TT_AEAD_TAG_LEN)
#define TT_CLIENT_HDR_LEN (2 + 8 + TT_AEAD_TAG_LEN)
#define TT_CLIENT_HELLO_FIXED (1 + TT_PUB_LEN + 2)
#define TT_SERVER_HELLO_FIXED (1 + TT_PUB_LEN + 2)
/* Bytes a server reads before it can tell whether a client knows the key. */
#define TT_CLIENT_PREFIX_LEN (TT_SALT_LEN + TT_CLIENT_HDR_LEN)
#define TT_HELLO_MAX_DATA 8192
#define TT_HELLO_MAX_PAD 2048
#define TT_FRAME_HDR_LEN 5
#define TT_FRAME_MAX_DATA 16384
#define TT_FRAME_MAX_PAD 1024
#define TT_FRAME_OVERHEAD (TT_FRAME_HDR_LEN + TT_AEAD_TAG_LEN)
/* Header masks per keystream block, and the block's size. */
#define TT_FRAME_MASKS_PER_BLOCK 32
#define TT_FRAME_MASK_BLOCK (TT_FRAME_MASKS_PER_BLOCK * TT_FRAME_HDR_LEN)

enum tt_frame_type {
    TT_FRAME_DATA = 0,
    TT_FRAME_FIN = 1, /* the sender will send no more data: a half-close */
};

/* The master key from the user's text: a base64 32-byte key (as `tt keygen`
 * prints) is used as is; anything else is a password, stretched with scrypt
 * (N = 2^15, r = 8, p = 1, 32 MiB, a fixed salt). Returns 0, or -EINVAL for
 * an empty text. *IS_PASSWORD tells which it was. */
int tt_psk_derive(const char *text, uint8_t psk[TT_PSK_LEN], bool *is_password);

/* Writes a fresh random key in base64 (44 characters and NUL) into OUT. */
void tt_psk_generate(char out[45]);

/* The HOTP key for port hopping. */
int tt_proto_port_key(const uint8_t psk[TT_PSK_LEN], uint8_t out[32]);

/* The port for time slot SLOT in [LO, HI]: LO + HOTP(KEY, SLOT) mod the
 * range's size (RFC 4226's truncated value before its decimal step). */
uint16_t tt_proto_hop_port(const uint8_t key[32], uint64_t slot, uint16_t lo, uint16_t hi);

/* Port-hopping slots are INTERVAL_MS long on average but do not begin on
 * multiples of it (a scanner would see the ports change at every whole
 * minute): slot SLOT begins SLOT * INTERVAL_MS + J(SLOT) milliseconds after
 * the Unix epoch, where J(SLOT) = HOTP(KEY, SLOT ^ 2^63) mod
 * (INTERVAL_MS / 2), so each boundary falls at its own key-dependent moment
 * and slots last between half and one and a half intervals. INTERVAL_MS is
 * at least 2. */
uint64_t tt_proto_hop_start(const uint8_t key[32], uint64_t slot, uint64_t interval_ms);

/* The slot that holds MS (milliseconds of Unix time), by the boundaries of
 * tt_proto_hop_start; slot arithmetic wraps modulo 2^64. */
uint64_t tt_proto_hop_slot(const uint8_t key[32], uint64_t ms, uint64_t interval_ms);

/* The hello keys, from the PSK and the client's salt. */
int tt_proto_hello_keys(const uint8_t psk[TT_PSK_LEN], const uint8_t salt[TT_SALT_LEN],
                        uint8_t c2s[32], uint8_t s2c[32]);

/* The frame keys, once both public keys are known. */
int tt_proto_session_keys(const uint8_t psk[TT_PSK_LEN], const uint8_t salt[TT_SALT_LEN],
                          const uint8_t shared[32], const uint8_t cpub[TT_PUB_LEN],
                          const uint8_t spub[TT_PUB_LEN], uint8_t c2s[32], uint8_t s2c[32]);

/* Size of a client hello (salt included) carrying ELEN early bytes and PAD
 * padding bytes. */
size_t tt_client_hello_size(size_t elen, size_t pad);

/* Writes the client's first flight prefix: SALT, then the sealed length and
 * time stamp TS, then the sealed body, using K (keyed with the hello c2s key, counter 0). EARLY is
 * at most TT_HELLO_MAX_DATA and PAD at most TT_HELLO_MAX_PAD bytes. OUT holds
 * tt_client_hello_size(ELEN, PAD) bytes. Returns 0 or a negative code. */
int tt_client_hello_seal(tt_aead *k, const uint8_t salt[TT_SALT_LEN], uint64_t ts,
                         const uint8_t cpub[TT_PUB_LEN], const uint8_t *early, size_t elen,
                         size_t pad, uint8_t *out);

/* Size of a server hello carrying DLEN data bytes and PAD padding bytes. */
size_t tt_server_hello_size(size_t dlen, size_t pad);

/* Writes the server hello with K (keyed with the hello s2c key). */
int tt_server_hello_seal(tt_aead *k, const uint8_t spub[TT_PUB_LEN], const uint8_t *data,
                         size_t dlen, size_t pad, uint8_t *out);

/* Opens a hello's sealed head with K: for a client hello (IS_CLIENT)
 * TT_CLIENT_HDR_LEN bytes, whose time stamp goes to *TS (when TS is not
 * NULL); for a server hello TT_HELLO_HDR_LEN bytes (TS unused). Returns the
 * size of the sealed body that follows (tag included) in *BODY, checked
 * against the limits of that hello. Returns 0, -EBADMSG (wrong key or not
 * tt) or -EPROTO (length out of range). */
int tt_hello_open_len(tt_aead *k, const uint8_t *in, bool is_client, size_t *body, uint64_t *ts);

typedef struct tt_client_hello {
    uint8_t cpub[TT_PUB_LEN];
    const uint8_t *early; /* points into the opened buffer */
    size_t elen;
} tt_client_hello;

/* Opens a client hello body of LEN bytes in place with K. Returns 0,
 * -EBADMSG or -EPROTO (bad version or inner length). */
int tt_client_hello_open(tt_aead *k, uint8_t *in, size_t len, tt_client_hello *out);

typedef struct tt_server_hello {
    uint8_t spub[TT_PUB_LEN];
    const uint8_t *data; /* points into the opened buffer */
    size_t dlen;
} tt_server_hello;

int tt_server_hello_open(tt_aead *k, uint8_t *in, size_t len, tt_server_hello *out);

/* The keystream block that the current header masks come from. */
typedef struct tt_frame_mask {
    uint8_t ks[TT_FRAME_MASK_BLOCK]; /* private */
    uint64_t loaded;                 /* private: 1 + the block held in KS; 0: none */
} tt_frame_mask;

/* One direction's sending side: the session key and its header masks. */
typedef struct tt_frame_writer {
    tt_aead aead;       /* public: read-only after tt_frame_writer_init */
    tt_frame_mask mask; /* private */
} tt_frame_writer;

/* Keys W for sealing frames with KEY. Returns 0 or a negative code. */
int tt_frame_writer_init(tt_frame_writer *w, enum tt_aead_alg alg, const uint8_t key[32]);
void tt_frame_writer_free(tt_frame_writer *w);

/* Writes one frame (header and body) with W into OUT, which holds
 * TT_FRAME_OVERHEAD + LEN + PAD bytes; returns that size, or 0 when LEN or
 * PAD is over its limit or sealing fails. DATA may alias
 * OUT + TT_FRAME_HDR_LEN (sealing in place). LEN <= TT_FRAME_MAX_DATA,
 * PAD <= TT_FRAME_MAX_PAD. */
size_t tt_frame_seal(tt_frame_writer *w, uint8_t type, const uint8_t *data, size_t len, size_t pad,
                     uint8_t *out);

/* Incremental frame reader. Its buffer is allocated while a frame is being
 * assembled and released by tt_frame_reader_trim, so an idle connection holds
 * no buffer. */
typedef struct tt_frame_reader {
    tt_aead aead;    /* public: keyed by the owner */
    size_t max_data; /* public: largest LEN accepted (<= TT_FRAME_MAX_DATA) */
    /* public: where a body that arrives whole in one feed is decrypted, with
     * room for TT_FRAME_MAX_DATA + TT_FRAME_MAX_PAD bytes; NULL: the
     * reader's own buffer. Lets the owner gather payload without a copy. */
    uint8_t *out;
    tt_frame_mask mask;            /* private */
    uint8_t hdr[TT_FRAME_HDR_LEN]; /* private: the open header */
    uint8_t *buf;                  /* private */
    size_t have, need;             /* private */
    int state;                     /* private */
    uint8_t type;                  /* private */
    size_t len, pad;               /* private */
    bool failed;                   /* private */
} tt_frame_reader;

void tt_frame_reader_init(tt_frame_reader *r, size_t max_data);

/* Feeds N bytes. Returns 1 when a frame is complete: *USED bytes of IN were
 * taken, *TYPE is its type and *DATA and *LEN its payload (valid until the
 * next call; *DATA is R->out when the body was decrypted there). Returns 0
 * when all of IN was taken and more is needed. Returns -EBADMSG
 * (authentication failed), -EPROTO (bad type, length over the limit, FIN
 * with data), -ENOMEM, or -EIO (the cipher failed to make header masks);
 * after an error every call fails. */
int tt_frame_reader_feed(tt_frame_reader *r, const uint8_t *in, size_t n, size_t *used,
                         uint8_t *type, const uint8_t **data, size_t *len);

/* True when a frame is partly received. */
bool tt_frame_reader_partial(const tt_frame_reader *r);

/* Releases the buffer if no frame is partly received. */
void tt_frame_reader_trim(tt_frame_reader *r);

/* Frees the buffer and the AEAD context. */
void tt_frame_reader_free(tt_frame_reader *r);

#endif
