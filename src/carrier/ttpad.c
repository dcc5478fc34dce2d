#include "carrier/ttpad.h"

#include <string.h>

int tt_pad_profile_parse(const char *text)
{
    if (strcmp(text, "shaped") == 0)
        return TT_PAD_SHAPED;
    if (strcmp(text, "uniform") == 0)
        return TT_PAD_UNIFORM;
    if (strcmp(text, "off") == 0)
        return TT_PAD_OFF;
    return -1;
}

uint64_t tt_pad_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

size_t tt_pad_uniform(uint64_t *s, size_t max)
{
    return max ? (size_t)(tt_pad_rand(s) % ((uint64_t)max + 1)) : 0;
}

/* One component of a first flight's size: a bell (the sum of three uniform
 * draws) of CENTER ± HALF bytes, chosen WEIGHT times in 100. A sum of
 * uniforms has no plateau and its density falls to nothing at its ends, so
 * neither a component nor the mixture shows an edge. */
typedef struct bell {
    unsigned weight, center, half;
} bell;

/* Client first flights, where common TLS ClientHellos (the first flight of
 * most connections on the Internet) lie: browsers' hellos padded to 517
 * bytes; shorter hellos of libraries and applications without the padding
 * extension; longer ones with session tickets, PSK or ECH GREASE; and the
 * hellos with a post-quantum key share (X25519MLKEM768, about 1.2 KB more)
 * that current browsers send. The weights are not a census; the aim is mass
 * where real flights put theirs and no shape of tt's own. */
static const bell client_flights[] = {
    {30, 517, 45},
    {30, 330, 180},
    {25, 800, 300},
    {15, 1600, 300},
};

/* Server first flights: resumed TLS 1.3 handshakes (ServerHello,
 * ChangeCipherSpec, EncryptedExtensions, Finished: a few hundred bytes),
 * medium ones, and full handshakes with a certificate chain, as far as the
 * protocol's padding limit reaches (a real chain is often longer). */
static const bell server_flights[] = {
    {40, 240, 120},
    {25, 900, 300},
    {35, 1750, 300},
};

static size_t draw_bell(const bell *b, size_t n, uint64_t *s)
{
    unsigned pick = (unsigned)(tt_pad_rand(s) % 100);
    size_t i = 0;
    while (i + 1 < n && pick >= b[i].weight) {
        pick -= b[i].weight;
        i++;
    }
    size_t third = 2 * b[i].half / 3;
    size_t sum = tt_pad_uniform(s, third) + tt_pad_uniform(s, third) + tt_pad_uniform(s, third);
    return b[i].center - b[i].half + sum;
}

/* Padding that hides a length of about LEN bytes without a target to reach:
 * up to an eighth of it and 15 bytes more, so the uncertainty grows with the
 * size instead of staying a fixed 32 bytes. */
static size_t jitter(size_t len, size_t max, uint64_t *s)
{
    size_t j = len / 8 + 15;
    return tt_pad_uniform(s, j < max ? j : max);
}

size_t tt_pad_hello(enum tt_pad_profile p, bool client, size_t bare, size_t max, uint64_t *s)
{
    if (p == TT_PAD_OFF)
        return 0;
    if (p == TT_PAD_UNIFORM)
        return tt_pad_uniform(s, max);
    const bell *b = client ? client_flights : server_flights;
    size_t n = client ? sizeof client_flights / sizeof *b : sizeof server_flights / sizeof *b;
    /* A target the flight cannot reach (it is already longer, or the limit
     * is lower) is drawn again rather than clipped, since clipping would
     * pile flights up at one size. A flight longer than every target (much
     * early data) gets a jitter instead. */
    for (int tries = 0; tries < 8; tries++) {
        size_t target = draw_bell(b, n, s);
        if (target >= bare && target - bare <= max)
            return target - bare;
    }
    return jitter(bare, max, s);
}

/* The size a small write is padded up to: log-uniform-like over 60..960
 * bytes (an octave 0-2 chosen uniformly, then a uniform point in it, from a
 * base that is itself random so that no octave boundary shows as a step).
 * Many small messages and fewer large ones is how sizes of interactive
 * traffic fall, and a target that is independent of the data means a 1-byte
 * write and a 100-byte write look alike (docs/PROTOCOL.md, Sizes). */
static size_t small_write_target(uint64_t *s)
{
    size_t base = 60 + tt_pad_uniform(s, 59);
    size_t lo = base << tt_pad_uniform(s, 2);
    return lo + tt_pad_uniform(s, lo - 1);
}

size_t tt_pad_write_tail(size_t tail, size_t max, uint64_t *s)
{
    size_t target = small_write_target(s);
    size_t body = (tail > target ? tail : target) + jitter(tail, max, s);
    size_t pad = body - tail;
    return pad <= max ? pad : tt_pad_uniform(s, max);
}
