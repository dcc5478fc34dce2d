/* Fuzz harness for the ARQ engine (src/session/arq.c) and its packet
 * decoder.
 *
 * Two engines, A and B, are driven by a script read off the input:
 *   byte 0     the configuration of both: bit 0 small buffers (send
 *              buffers of 2000 bytes, windows at their minimum), bit 1
 *              few packet records (16)
 *   then ops, each one byte (the low 3 bits pick it) and its operands:
 *     0 LEN(2) BYTES  a packet of arbitrary bytes into A
 *     1 MAX(1) FLAGS  A polls a packet of 24 + 4 * MAX bytes at most;
 *                     FLAGS bit 0 asks for an ACK; bit 1 delivers it to B,
 *                     bit 2 flips one of its bytes (at FLAGS >> 3) first
 *     2 MAX(1)        B polls likewise and delivers to A
 *     3 N(1)          A writes 64 * N bytes; N = 255 closes A instead
 *     4 N(2)          A reads up to N bytes
 *     5 DT(2)         the time advances by DT * 100 microseconds
 *     6               A is asked for a PING
 *     7 N(1)          B writes 64 * N bytes and reads up to 64 KiB
 *
 * Every packet either engine makes must decode, fit the size asked for
 * and carry a larger packet number than the one before; each engine must
 * accept every packet the other makes, and read exactly the bytes the
 * other wrote, with the end of the stream only after all of them, until a
 * flipped or arbitrary packet was accepted (then the two may rightly
 * disagree, as real peers cannot under the carrier's AEAD); memory must
 * stay within the bound and the timers must never lie in the past. A
 * refused packet must leave a clear reason. ASan reports leaks at the
 * end. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "codec/arqwire.h"
#include "session/arq.h"

#include "fuzz_check.h"

typedef struct side {
    tt_arq *a;
    tt_arq_cfg cfg;
    uint64_t last_pn;
    bool sent_any;
    uint64_t written, read; /* stream bytes so far */
    bool closed;
} side;

/* The byte at stream offset OFF: a function of the offset, so a reader
 * can check what it gets without a copy of what was sent. */
static uint8_t byte_at(uint64_t off, uint8_t salt)
{
    return (uint8_t)((off * 31 + off / 251) ^ salt);
}

/* Once an engine took a packet that did not come from its peer as the
 * peer made it, the two may rightly disagree about the stream: what is
 * read is then no longer checked against what was written. */
static bool consistent;

static void write_some(side *s, size_t n, uint8_t salt)
{
    static uint8_t buf[64 * 255];
    if (n > sizeof buf)
        n = sizeof buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = byte_at(s->written + i, salt);
    size_t took = tt_arq_write(s->a, buf, n);
    CHECK(took <= n);
    CHECK(took == n || tt_arq_writable(s->a) < n);
    s->written += took;
}

/* Reads up to MAX bytes from S, written by PEER with SALT. */
static void read_some(side *s, const side *peer, size_t max, uint8_t salt)
{
    static uint8_t buf[65536];
    if (max > sizeof buf)
        max = sizeof buf;
    size_t got = tt_arq_read(s->a, buf, max);
    CHECK(got <= max);
    for (size_t i = 0; consistent && i < got; i++)
        CHECK(buf[i] == byte_at(s->read + i, salt));
    s->read += got;
    if (consistent) {
        CHECK(s->read <= peer->written);
        if (tt_arq_eof(s->a))
            CHECK(peer->closed && s->read == peer->written);
    }
}

static void check_bounds(side *s, uint64_t now)
{
    CHECK(tt_arq_memory(s->a) <= tt_arq_memory_max(&s->cfg));
    uint64_t t = tt_arq_next_timeout(s->a, now);
    CHECK(t >= now);
    if (tt_arq_eof(s->a))
        CHECK(tt_arq_readable(s->a) == 0);
}

/* Polls S for a packet of at most MAX bytes into OUT; checks it. */
static size_t poll_one(side *s, uint64_t now, uint8_t *out, size_t max, unsigned flags)
{
    size_t n = tt_arq_poll(s->a, now, out, max, flags);
    if (n == 0)
        return 0;
    CHECK(n <= max);
    tt_arq_pkt p;
    const char *why = NULL;
    CHECK(tt_arq_pkt_decode(out, n, &p, &why) == 0);
    CHECK(!s->sent_any || p.pn > s->last_pn);
    uint64_t pn;
    size_t head;
    CHECK(tt_arq_packet_pn(out, n, &pn, &head) == 0 && pn == p.pn && head < n);
    s->last_pn = p.pn;
    s->sent_any = true;
    return n;
}

/* Feeds a packet to S; returns whether it was accepted. */
static bool input(side *s, uint64_t now, const uint8_t *p, size_t n, bool must_accept)
{
    const char *why = NULL;
    int rc = tt_arq_input(s->a, now, p, n, &why);
    if (rc < 0)
        CHECK(rc == -EPROTO && why != NULL && !must_accept);
    else
        CHECK(rc == 0);
    return rc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor c = {data, size, 0};
    uint8_t conf = u8(&c);
    side sa = {0}, sb = {0};
    tt_arq_cfg_default(&sa.cfg);
    if (conf & 1) {
        sa.cfg.snd_cap = 2000;
        sa.cfg.rcv_cap = TT_ARQ_INITIAL_WINDOW;
    }
    if (conf & 2)
        sa.cfg.max_records = 16;
    sa.cfg.mss = 500;
    sb.cfg = sa.cfg;
    sa.a = tt_arq_new(&sa.cfg);
    sb.a = tt_arq_new(&sb.cfg);
    CHECK(sa.a != NULL && sb.a != NULL);

    static uint8_t pkt[65536];
    uint64_t now = 0;
    unsigned ops = 0;
    consistent = true;
    while (c.off < c.n && ops++ < 4096) {
        uint8_t op = u8(&c);
        switch (op & 7) {
        case 0: {
            size_t len = u16(&c);
            if (len > c.n - c.off)
                len = c.n - c.off;
            if (input(&sa, now, c.p + c.off, len, false))
                consistent = false;
            c.off += len;
            break;
        }
        case 1:
        case 2: {
            side *from = (op & 7) == 1 ? &sa : &sb, *to = (op & 7) == 1 ? &sb : &sa;
            size_t max = 24 + 4 * (size_t)u8(&c);
            uint8_t flags = u8(&c);
            size_t n = poll_one(from, now, pkt, max, flags & 1);
            if (n == 0)
                break;
            bool flip = (flags & 4) != 0;
            if (flip)
                pkt[(flags >> 3) % n] ^= 0x5a;
            if (((op & 7) == 2 || (flags & 2)) && input(to, now, pkt, n, consistent && !flip) &&
                flip)
                consistent = false;
            break;
        }
        case 3: {
            uint8_t k = u8(&c);
            if (k == 255) {
                (void)tt_arq_close(sa.a);
                sa.closed = true;
            } else {
                write_some(&sa, 64 * (size_t)k, 0xa5);
            }
            break;
        }
        case 4:
            read_some(&sa, &sb, u16(&c), 0x3c);
            break;
        case 5:
            now += 100 * (uint64_t)u16(&c);
            break;
        case 6:
            tt_arq_ping(sa.a);
            break;
        default:
            write_some(&sb, 64 * (size_t)u8(&c), 0x3c);
            read_some(&sb, &sa, SIZE_MAX, 0xa5);
            break;
        }
        check_bounds(&sa, now);
        check_bounds(&sb, now);
    }
    tt_arq_free(sa.a);
    tt_arq_free(sb.a);
    return 0;
}
