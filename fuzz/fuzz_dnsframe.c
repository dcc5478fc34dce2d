/* Fuzz harness for the DNS-over-TCP length framing reader
 * (codec/dnsframe.c).
 *
 * Input: one byte for the reader's capacity (1 to 256), one for how the
 * stream is cut into reads, then the stream. A reference reads the whole
 * stream at once by the definition (two-byte length, then that many bytes;
 * empty and oversized messages dropped); the reader, fed the stream in
 * pieces, must deliver the same messages in the same order, make progress
 * on every call, and never deliver more than its capacity. */
#include <string.h>

#include "codec/dnsframe.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    size_t cap = (size_t)data[0] + 1;
    unsigned cut = data[1];
    const uint8_t *in = data + 2;
    size_t n = size - 2;

    /* The reference: offsets and lengths of the messages delivered. */
    static size_t ref_off[32768], ref_len[32768];
    size_t nref = 0;
    for (size_t p = 0; p + 2 <= n;) {
        size_t len = (size_t)in[p] << 8 | in[p + 1];
        p += 2;
        if (p + len > n)
            break;
        if (len > 0 && len <= cap) {
            ref_off[nref] = p;
            ref_len[nref++] = len;
        }
        p += len;
    }

    static uint8_t buf[256];
    tt_dnsframe f;
    tt_dnsframe_init(&f, buf, cap);
    size_t got = 0, pos = 0;
    unsigned seed = cut;
    while (pos < n) {
        /* Pieces of 1 to 64 bytes, or the rest, from a small generator. */
        seed = seed * 1103515245u + 12345u;
        size_t piece = (cut & 1) ? n - pos : 1 + (seed >> 16) % 64;
        if (piece > n - pos)
            piece = n - pos;
        const uint8_t *p = in + pos;
        size_t left = piece;
        while (left > 0) {
            const uint8_t *msg;
            size_t len;
            size_t used = tt_dnsframe_feed(&f, p, left, &msg, &len);
            CHECK(used > 0 && used <= left);
            p += used;
            left -= used;
            if (msg == NULL) {
                CHECK(left == 0);
                continue;
            }
            CHECK(got < nref);
            CHECK(len == ref_len[got] && len <= cap);
            CHECK(memcmp(msg, in + ref_off[got], len) == 0);
            got++;
        }
        pos += piece;
    }
    CHECK(got == nref);
    const uint8_t *msg;
    size_t len;
    CHECK(tt_dnsframe_feed(&f, in, 0, &msg, &len) == 0 && msg == NULL);
    return 0;
}
