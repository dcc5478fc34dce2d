/* Sans-I/O server side of SOCKS5 (RFC 1928) with username/password
 * authentication (RFC 1929). It takes bytes as they arrive, in any split, and
 * returns events and the exact reply bytes to send; it never touches a socket.
 *
 * Use: tt_socks5_init, then call tt_socks5_feed with received bytes until it
 * has consumed them all, acting on each event:
 *   NEED_MORE  all given bytes were consumed; wait for more.
 *   SEND       write ev.out (ev.out_len bytes) to the client and feed on.
 *   AUTH       check ev.user / ev.pass, then call tt_socks5_auth_result and
 *              write what it returns; on failure close after that write.
 *   REQUEST    a CONNECT to ev.target. Stop feeding: bytes after the request
 *              are the application's payload. Answer with tt_socks5_reply.
 *   FAIL       protocol error or unsupported request; write ev.out (may be
 *              empty), then close. ev.why says what was wrong.
 * After REQUEST or FAIL, further feeds return FAIL with no output.
 * Internal buffering is bounded by the largest message (513 bytes, the
 * RFC 1929 subnegotiation). tt_socks5_auth_result outside an AUTH event fails
 * the session and returns 0. */
#ifndef TT_CODEC_SOCKS5_H
#define TT_CODEC_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/target.h"

/* Reply codes of RFC 1928 section 6. */
enum tt_socks5_rep {
    TT_S5_REP_OK = 0x00,
    TT_S5_REP_GENERAL = 0x01,
    TT_S5_REP_NOT_ALLOWED = 0x02,
    TT_S5_REP_NET_UNREACH = 0x03,
    TT_S5_REP_HOST_UNREACH = 0x04,
    TT_S5_REP_REFUSED = 0x05,
    TT_S5_REP_TTL_EXPIRED = 0x06,
    TT_S5_REP_CMD_UNSUPPORTED = 0x07,
    TT_S5_REP_ATYP_UNSUPPORTED = 0x08,
};

enum tt_socks5_ev_type {
    TT_S5_EV_NEED_MORE,
    TT_S5_EV_SEND,
    TT_S5_EV_AUTH,
    TT_S5_EV_REQUEST,
    TT_S5_EV_FAIL,
};

/* Largest reply the codec produces: a CONNECT reply with an IPv6 address. */
#define TT_SOCKS5_REPLY_MAX 22

typedef struct tt_socks5_event {
    enum tt_socks5_ev_type type;
    uint8_t out[TT_SOCKS5_REPLY_MAX];
    size_t out_len;
    const char *why;  /* FAIL: a short static phrase for the log */
    const char *user; /* AUTH: NUL-terminated, valid until the next feed */
    const char *pass; /* AUTH: NUL-terminated, valid until the next feed */
    tt_target target; /* REQUEST */
} tt_socks5_event;

typedef struct tt_socks5 {
    int state;         /* private */
    bool require_auth; /* read-only after init */
    size_t have;       /* private: bytes in buf */
    uint8_t buf[515];  /* private: the message being assembled */
    char user[256];    /* private */
    char pass[256];    /* private */
} tt_socks5;

/* REQUIRE_AUTH: offer only method 0x02 (username/password); otherwise only
 * 0x00 (no authentication). */
void tt_socks5_init(tt_socks5 *s, bool require_auth);

/* Consumes up to LEN bytes of DATA and fills EV with the next event. Returns
 * the number of bytes consumed. Call again with the remainder after SEND or
 * AUTH; stop after REQUEST and FAIL. */
size_t tt_socks5_feed(tt_socks5 *s, const uint8_t *data, size_t len, tt_socks5_event *ev);

/* After an AUTH event: writes the RFC 1929 status reply (2 bytes) to OUT and
 * returns its length. With OK false the session is failed. */
size_t tt_socks5_auth_result(tt_socks5 *s, bool ok, uint8_t out[2]);

/* Encodes a CONNECT reply with code REP and bound address BOUND (AF_INET or
 * AF_INET6; NULL means 0.0.0.0:0) into OUT; returns its length (10 or 22). */
size_t tt_socks5_reply(uint8_t rep, const struct sockaddr *bound, uint8_t out[TT_SOCKS5_REPLY_MAX]);

/* A short English name of a reply code for log lines. */
const char *tt_socks5_rep_str(uint8_t rep);

#endif
