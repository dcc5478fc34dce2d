/* Sans-I/O client side of SOCKS5 (RFC 1928) with username/password
 * authentication (RFC 1929): the messages that open a CONNECT through a
 * proxy, one at a time, and the parser of the proxy's answers. It never
 * touches a socket.
 *
 * One message per round trip, never pipelined: some proxies (microsocks)
 * read each message with one recv() and lose whatever follows it.
 *
 * Use: tt_socks5c_start writes the greeting; send it. Feed every byte the
 * proxy sends to tt_socks5c_feed, acting on each result:
 *   MORE  all given bytes were consumed; wait for more.
 *   SEND  write OUT (*OUT_LEN bytes) to the proxy, then feed the rest.
 *   DONE  the proxy answered the CONNECT with *REP (0: connected); the bytes
 *         after the returned count belong to the stream.
 *   FAIL  the proxy broke the protocol or refused us; *REP is the SOCKS5
 *         code to report, *WHY a phrase for the log.
 * Internal buffering is bounded by the longest reply (262 bytes). */
#ifndef TT_CODEC_SOCKS5C_H
#define TT_CODEC_SOCKS5C_H

#include <stddef.h>
#include <stdint.h>

#include "core/target.h"

/* The longest message the client sends: the RFC 1929 request. */
#define TT_SOCKS5C_MSG_MAX 513

enum tt_socks5c_result {
    TT_S5C_MORE,
    TT_S5C_SEND,
    TT_S5C_DONE,
    TT_S5C_FAIL,
};

typedef struct tt_socks5c {
    int state;         /* private */
    size_t have, need; /* private: bytes in buf, bytes the message needs */
    uint8_t buf[262];  /* private: the reply being assembled */
    const char *user;  /* private: NULL without authentication */
    const char *pass;  /* private */
    tt_target target;  /* private */
} tt_socks5c;

/* Starts a CONNECT to T, offering username/password when USER and PASS
 * (each 1 to 255 bytes, living until the exchange ends) are given, and no
 * authentication otherwise. Writes the greeting into OUT and returns its
 * length (3), or 0 when T cannot be requested (an empty name, a NUL in it). */
size_t tt_socks5c_start(tt_socks5c *s, const tt_target *t, const char *user, const char *pass,
                        uint8_t out[TT_SOCKS5C_MSG_MAX]);

/* Consumes up to N bytes of IN and returns how many it consumed; *RES says
 * what to do (see above). OUT receives the next message on SEND. After DONE
 * or FAIL, further feeds consume nothing and fail. */
size_t tt_socks5c_feed(tt_socks5c *s, const uint8_t *in, size_t n, enum tt_socks5c_result *res,
                       uint8_t out[TT_SOCKS5C_MSG_MAX], size_t *out_len, int *rep,
                       const char **why);

#endif
