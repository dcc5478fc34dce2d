/* Fuzz harness for the SOCKS5 client codec (what a proxy answers).
 *
 * Input layout:
 *   byte 0     flags: bit 0 log in with username/password; bits 1-2 the
 *              target's type (IPv4, IPv6, a name)
 *   the rest   the bytes the proxy sends
 *
 * Each input runs twice, fed in one piece and a byte at a time. Besides the
 * invariants of every result, both runs must give the same results, the same
 * messages to send and the same count of consumed bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "codec/socks5.h"
#include "codec/socks5c.h"

#include "fuzz_check.h"

typedef struct transcript {
    uint8_t bytes[4096];
    size_t len;
    size_t consumed;
    bool finished;
} transcript;

static void put(transcript *tr, const void *p, size_t n)
{
    CHECK(tr->len + n <= sizeof tr->bytes);
    memcpy(tr->bytes + tr->len, p, n);
    tr->len += n;
}

static void run(const uint8_t *in, size_t n, bool auth, const tt_target *t, bool bytewise,
                transcript *tr)
{
    tt_socks5c s;
    uint8_t out[TT_SOCKS5C_MSG_MAX];
    size_t len = tt_socks5c_start(&s, t, auth ? "user" : NULL, auth ? "pass" : NULL, out);
    CHECK(len == 3 && out[0] == 5 && out[1] == 1);
    memset(tr, 0, sizeof *tr);
    size_t off = 0;
    while (off < n) {
        size_t chunk = bytewise ? 1 : n - off;
        enum tt_socks5c_result res;
        size_t out_len = 0;
        int rep = -1;
        const char *why = NULL;
        size_t used = tt_socks5c_feed(&s, in + off, chunk, &res, out, &out_len, &rep, &why);
        CHECK(used <= chunk);
        off += used;
        tr->consumed = off;
        switch (res) {
        case TT_S5C_MORE:
            CHECK(used == chunk && out_len == 0);
            break;
        case TT_S5C_SEND:
            CHECK(out_len > 0 && out_len <= TT_SOCKS5C_MSG_MAX);
            CHECK((out[0] == 5 && out[1] == 1 && out[2] == 0) || (out[0] == 1 && auth));
            put(tr, "S", 1);
            put(tr, out, out_len);
            break;
        case TT_S5C_DONE:
        case TT_S5C_FAIL:
            CHECK(out_len == 0 && rep >= 0 && rep <= 255);
            CHECK(res == TT_S5C_DONE || why != NULL);
            put(tr, res == TT_S5C_DONE ? "D" : "F", 1);
            put(tr, &rep, sizeof rep);
            tr->finished = true;
            /* Nothing more is taken after the end. */
            CHECK(tt_socks5c_feed(&s, in, n, &res, out, &out_len, &rep, &why) == 0);
            CHECK(res == TT_S5C_FAIL);
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool auth = data[0] & 1;
    tt_target t;
    switch ((data[0] >> 1) & 3) {
    case 0:
        tt_target_set(&t, "192.0.2.1", 80);
        break;
    case 1:
        tt_target_set(&t, "2001:db8::1", 443);
        break;
    default:
        tt_target_set(&t, "example.com", 8080);
        break;
    }
    transcript a, b;
    run(data + 1, size - 1, auth, &t, false, &a);
    run(data + 1, size - 1, auth, &t, true, &b);
    CHECK(a.len == b.len && memcmp(a.bytes, b.bytes, a.len) == 0);
    CHECK(a.finished == b.finished);
    /* A whole feed stops where the reply ends; bytewise feeding stops at the
     * same byte. Without an end, both took everything. */
    CHECK(a.consumed == b.consumed);
    return 0;
}
