/* The session layer's wire format (docs/SESSION.md): the authenticated join
 * that opens each carrier connection (leg) of a resumable session, and the
 * frames that travel on a leg afterwards. Sans-I/O: bytes in, bytes or
 * events out; the time and the keys are passed in.
 *
 *   JOIN   (client, 73 bytes): F5 74 73 01, flags, id[16], nonce[16],
 *          time ms u64, counter u32, received offset u64, mac[16]
 *   JOINED (server, 26 bytes): status, flags, received offset u64, mac[16]
 *   frame: TYPE(1) FLAGS(1) LEN(2) VALUE(8) PAYLOAD(LEN), big-endian
 *
 * The first byte of a JOIN (0xF5) is neither the mux preface's (0xF7) nor
 * the stream-open header's version (0x01), so the server's stream layer tells
 * the three apart by the first byte after the carrier's handshake. */
#ifndef TT_CODEC_SESS_H
#define TT_CODEC_SESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_SESS_MAGIC0 0xF5
#define TT_SESS_VERSION 0x01
#define TT_SESS_ID_LEN 16
#define TT_SESS_NONCE_LEN 16
#define TT_SESS_MAC_LEN 16
#define TT_SESS_KEY_LEN 32
#define TT_SESS_JOIN_LEN 73
#define TT_SESS_JOINED_LEN 26
#define TT_SESS_HDR_LEN 12
/* Largest payload of a DATA frame (the LEN field's range). */
#define TT_SESS_DATA_MAX 65535u
/* SACK blocks an ACK may carry, and the longest ACK frame. */
#define TT_SESS_SACK_MAX 16
#define TT_SESS_ACK_MAX (TT_SESS_HDR_LEN + 4 + 16 * TT_SESS_SACK_MAX)
/* Offsets stay below this, so OFFSET + LEN + 1 (a FIN) never overflows. */
#define TT_SESS_OFFSET_MAX (UINT64_C(1) << 62)

/* JOIN flags. */
#define TT_SESS_JOIN_REJOIN 0x01 /* attach to an existing session; else create it */
#define TT_SESS_ROLE_SHIFT 1     /* bits 1-2: the leg's role */
#define TT_SESS_ROLE_MASK 0x06
enum tt_sess_role {
    TT_SESS_ROLE_BOTH = 0, /* carries both directions */
    TT_SESS_ROLE_UP = 1,   /* client-to-server data only (split paths) */
    TT_SESS_ROLE_DOWN = 2, /* server-to-client data only (split paths) */
};

/* JOINED status. */
enum tt_sess_status {
    TT_SESS_OK = 0,
    TT_SESS_UNKNOWN = 1, /* no such session: never made, or dropped after its linger */
    TT_SESS_STALE = 2,   /* the join counter is not newer than the last one: a replay */
    TT_SESS_IN_USE = 3,  /* a new session whose id is already taken */
    TT_SESS_FULL = 4,    /* the server holds as many sessions as it takes */
    TT_SESS_RANGE = 5,   /* the received offset is beyond what the server sent */
    TT_SESS_ROLE = 6,    /* the leg role is not supported by this server */
};

/* Frame types. */
enum tt_sess_type {
    TT_SESS_DATA = 0,  /* VALUE: the offset of the payload's first byte */
    TT_SESS_ACK = 1,   /* VALUE: cumulative; payload: window u32, SACK blocks */
    TT_SESS_CLOSE = 2, /* FLAGS: a code; the session is over */
    TT_SESS_PING = 3,  /* reserved for lossy legs (ARQ): refused by this version */
    TT_SESS_PONG = 4,  /* reserved likewise */
};
#define TT_SESS_FLAG_FIN 0x01 /* DATA: the sender's last byte is at VALUE + LEN - 1 */

/* CLOSE codes; unknown codes are taken as TT_SESS_CLOSE_ABORT. */
enum tt_sess_close_code {
    TT_SESS_CLOSE_DONE = 0,  /* both directions ended: a clean end */
    TT_SESS_CLOSE_ABORT = 1, /* the session was cut: its streams must fail */
};

typedef struct tt_sess_join {
    uint8_t flags;
    uint8_t id[TT_SESS_ID_LEN];
    uint8_t nonce[TT_SESS_NONCE_LEN];
    uint64_t time_ms; /* the client's wall clock */
    uint32_t counter; /* joins of this session so far: 0 for the one that made it */
    uint64_t offset;  /* the bytes of the session the client has received */
    uint8_t mac[TT_SESS_MAC_LEN];
} tt_sess_join;

/* The join key from the 32-byte master key (the carriers' -k, derived with
 * tt_psk_derive): HKDF-SHA256, salt "tt-session-v1", info "join". Returns 0
 * or -EIO. */
int tt_sess_join_key(const uint8_t psk[32], uint8_t key[TT_SESS_KEY_LEN]);

/* Whether the byte B starts a JOIN. */
static inline bool tt_sess_is_join(uint8_t b)
{
    return b == TT_SESS_MAGIC0;
}

/* Writes J (its mac field is computed and stored into J) into OUT. */
void tt_sess_join_encode(tt_sess_join *j, const uint8_t key[TT_SESS_KEY_LEN],
                         uint8_t out[TT_SESS_JOIN_LEN]);

/* Reads a JOIN from IN. Returns 0; -EPROTO with *WHY for a malformed one
 * (bad magic or version, undefined flags, offset out of range); -EBADMSG
 * with *WHY when the MAC is wrong (another key). The MAC is checked in
 * constant time before anything else is believed. */
int tt_sess_join_decode(const uint8_t in[TT_SESS_JOIN_LEN], const uint8_t key[TT_SESS_KEY_LEN],
                        tt_sess_join *j, const char **why);

/* Writes the answer to the JOIN whose MAC is JOIN_MAC into OUT. */
void tt_sess_joined_encode(uint8_t status, uint64_t offset, const uint8_t join_mac[TT_SESS_MAC_LEN],
                           const uint8_t key[TT_SESS_KEY_LEN], uint8_t out[TT_SESS_JOINED_LEN]);

/* Reads the answer to the JOIN whose MAC is JOIN_MAC. Returns 0 with
 * *STATUS and *OFFSET, or -EBADMSG / -EPROTO with *WHY. */
int tt_sess_joined_decode(const uint8_t in[TT_SESS_JOINED_LEN], const uint8_t key[TT_SESS_KEY_LEN],
                          const uint8_t join_mac[TT_SESS_MAC_LEN], uint8_t *status,
                          uint64_t *offset, const char **why);

/* A status as a phrase for log lines. */
const char *tt_sess_status_str(uint8_t status);

/* Writes a frame header into OUT; returns TT_SESS_HDR_LEN. */
size_t tt_sess_hdr_encode(uint8_t type, uint8_t flags, uint16_t len, uint64_t value,
                          uint8_t out[TT_SESS_HDR_LEN]);

/* Writes a whole ACK frame (cumulative CUM, WINDOW, N SACK blocks of
 * [start, end) pairs in SACK, N at most TT_SESS_SACK_MAX) into OUT
 * (TT_SESS_ACK_MAX bytes); returns its length. */
size_t tt_sess_ack_encode(uint64_t cum, uint32_t window, const uint64_t (*sack)[2], unsigned n,
                          uint8_t out[TT_SESS_ACK_MAX]);

/* What the frame reader reports. DATA payloads are reported in pieces as they
 * arrive (no copy; DATA points into the input); FIN is set on the piece that
 * ends a frame with the FIN flag (possibly an empty one). */
enum tt_sess_ev_kind {
    TT_SESS_EV_DATA = 1,
    TT_SESS_EV_ACK = 2,
    TT_SESS_EV_CLOSE = 3,
};

typedef struct tt_sess_ev {
    int kind;
    uint64_t offset;     /* DATA: of the piece's first byte */
    const uint8_t *data; /* DATA: the piece */
    size_t len;
    bool fin; /* DATA: the stream ends at offset + len */
    uint64_t cum;
    uint32_t window;
    unsigned nsack;
    uint64_t sack[TT_SESS_SACK_MAX][2];
    uint8_t code; /* CLOSE */
} tt_sess_ev;

typedef struct tt_sess_reader {
    uint8_t buf[TT_SESS_ACK_MAX]; /* private: a header, or a whole ACK */
    size_t have;                  /* private */
    size_t need;                  /* private: bytes buf must hold before decoding */
    uint64_t data_off;            /* private: offset of the next DATA byte */
    size_t data_left;             /* private: payload bytes of the current DATA frame */
    bool data_fin;                /* private */
    bool in_data;                 /* private */
} tt_sess_reader;

void tt_sess_reader_init(tt_sess_reader *r);

/* True when the reader is inside a frame (a leg that ends now ends mid-frame). */
bool tt_sess_reader_partial(const tt_sess_reader *r);

/* Reads from IN[0..N): returns 1 with *EV and *USED (bytes consumed) when an
 * event is complete, 0 when all N bytes were consumed without one, or
 * -EPROTO with *WHY for a frame this version refuses (unknown or reserved
 * type, undefined flags, a length the type does not allow, an empty DATA
 * frame without FIN, SACK blocks out of order or below the cumulative
 * offset, an offset out of range). */
int tt_sess_read(tt_sess_reader *r, const uint8_t *in, size_t n, size_t *used, tt_sess_ev *ev,
                 const char **why);

#endif
