/* tt-mux frames: many streams over one carrier connection. Sans-I/O encoder
 * and incremental reader; the wire format is specified in docs/MUX.md.
 *
 *   preface: F7 54 4D 01 (once per direction, before any frame)
 *   frame:   TYPE(1) FLAGS(1) LEN(2) STREAM(4) PAYLOAD(LEN), big-endian
 *
 * The first byte of the preface is never 0x01, the version byte of the plain
 * stream-open header, so a server tells a muxed connection from a plain one by
 * its first byte. */
#ifndef TT_CODEC_MUX_H
#define TT_CODEC_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_MUX_PREFACE_LEN 4
#define TT_MUX_HDR_LEN 8
/* Largest DATA payload: a bulk stream yields to the others between frames. */
#define TT_MUX_FRAME_MAX 16384
/* Credit each stream starts with, in each direction. */
#define TT_MUX_INITIAL_WINDOW (256u * 1024u)
/* Largest credit a sender may hold, and largest stream id. */
#define TT_MUX_WINDOW_MAX 0x7fffffffu
#define TT_MUX_ID_MAX 0x7fffffffu
/* Room for the longest control frame (header and 8-byte payload). */
#define TT_MUX_CTRL_MAX (TT_MUX_HDR_LEN + 8)

enum tt_mux_type {
    TT_MUX_DATA = 0,
    TT_MUX_WINDOW = 1,
    TT_MUX_RESET = 2,
    TT_MUX_PING = 3,
    TT_MUX_GOAWAY = 4,
};

/* DATA flags. */
#define TT_MUX_FLAG_OPEN 0x01 /* the first frame of a new stream */
#define TT_MUX_FLAG_FIN 0x02  /* the sender's last frame on the stream: a half-close */
/* PING flag. */
#define TT_MUX_FLAG_ACK 0x01 /* a pong: the answer to a ping */

/* Codes carried by RESET and GOAWAY. Receivers treat unknown codes as
 * TT_MUX_INTERNAL. */
enum tt_mux_code {
    TT_MUX_OK = 0,       /* GOAWAY: a graceful end */
    TT_MUX_PROTOCOL = 1, /* the peer broke this specification */
    TT_MUX_INTERNAL = 2, /* a local failure (out of memory, ...) */
    TT_MUX_REFUSED = 3,  /* RESET: the stream was not accepted (limit, going away) */
    TT_MUX_OVERLOAD = 4, /* RESET: the receiver's memory cap was reached */
    TT_MUX_CANCEL = 5,   /* RESET: the application abandoned the stream */
    TT_MUX_TIMEOUT = 6,  /* GOAWAY: the peer stopped answering */
};

/* The four bytes every muxed direction starts with. */
extern const uint8_t tt_mux_preface[TT_MUX_PREFACE_LEN];

/* Decides whether the first LEN bytes of a connection are a mux preface:
 * 1 yes, 0 no, -1 they agree so far and more bytes are needed. A server can
 * call it with the first byte alone. */
int tt_mux_is_preface(const uint8_t *buf, size_t len);

typedef struct tt_mux_hdr {
    uint8_t type;
    uint8_t flags;
    uint16_t len;    /* payload bytes */
    uint32_t stream; /* 0 for PING and GOAWAY */
} tt_mux_hdr;

/* Writes the 8-byte header H into OUT; returns TT_MUX_HDR_LEN. The caller
 * keeps to the rules tt_mux_hdr_check enforces. */
size_t tt_mux_hdr_encode(const tt_mux_hdr *h, uint8_t out[TT_MUX_HDR_LEN]);

/* Checks a header on its own: a known type, only defined flags, the length
 * and stream id that type requires. Returns 0, or -EPROTO with *WHY set. */
int tt_mux_hdr_check(const tt_mux_hdr *h, const char **why);

/* Whole control frames into OUT (at least TT_MUX_CTRL_MAX bytes); each
 * returns the frame's length. INC is 1..TT_MUX_WINDOW_MAX; LAST is at most
 * TT_MUX_ID_MAX. */
size_t tt_mux_window_encode(uint32_t stream, uint32_t inc, uint8_t *out);
size_t tt_mux_reset_encode(uint32_t stream, uint32_t code, uint8_t *out);
size_t tt_mux_ping_encode(bool ack, const uint8_t opaque[8], uint8_t *out);
size_t tt_mux_goaway_encode(uint32_t last, uint32_t code, uint8_t *out);

/* One event from the reader. */
typedef struct tt_mux_frame {
    tt_mux_hdr hdr;
    /* DATA: a piece of the payload, pointing into the input just fed (valid
     * until the caller reuses that input). FIRST marks the frame's first
     * piece, LAST its final one; a frame of length 0 is one piece with both
     * set. Pieces are as long as the input allows, never empty otherwise. */
    const uint8_t *data;
    size_t len;
    bool first, last;
    /* Control frames come whole (FIRST and LAST set), decoded: */
    uint32_t value;       /* WINDOW: the increment; RESET, GOAWAY: the code */
    uint32_t last_stream; /* GOAWAY: the last stream id the sender processed */
    uint8_t opaque[8];    /* PING: echoed in the pong */
} tt_mux_frame;

/* Incremental reader. It holds at most one header and one control payload
 * (16 bytes); DATA payload is handed out in place, never buffered. */
typedef struct tt_mux_reader {
    size_t preface;    /* private: preface bytes still expected */
    uint8_t buf[16];   /* private: header, then control payload */
    size_t have;       /* private */
    tt_mux_hdr hdr;    /* private: the frame being read */
    bool in_payload;   /* private: the header is done */
    bool first;        /* private: no piece of this DATA frame handed out yet */
    size_t left;       /* private: DATA payload bytes still to come */
    const char *error; /* private: set once the input was refused */
} tt_mux_reader;

/* Starts a reader; with PREFACE the input must begin with the preface. */
void tt_mux_reader_init(tt_mux_reader *r, bool preface);

/* Feeds N bytes. Returns 1 with an event in *F after taking *USED bytes of
 * IN; call again with the rest. Returns 0 when all of IN was taken (*USED =
 * N) without completing an event. Returns -EPROTO with *WHY set when the
 * input breaks the format (*USED counts the bytes up to and including the
 * offending one); every later call fails the same way. Results do not
 * depend on how the input is split. */
int tt_mux_reader_feed(tt_mux_reader *r, const uint8_t *in, size_t n, size_t *used, tt_mux_frame *f,
                       const char **why);

/* True when the reader is inside the preface or a frame. */
bool tt_mux_reader_partial(const tt_mux_reader *r);

#endif
