/* How much padding tt/1 puts where (docs/PROTOCOL.md, Sizes). Padding
 * lengths are the sender's choice and the receiver accepts any within the
 * protocol's limits, so these are policies, not wire format. Sans-I/O: the
 * randomness comes from a generator state the caller owns (and a test
 * seeds), so every draw is reproducible from the seed.
 *
 * Profiles:
 *  - shaped (the default): a first flight's total size is drawn from a
 *    smooth mixture placed where common first flights lie, and each write's
 *    last frame is padded so that the write's size says little about a
 *    small plaintext (below);
 *  - uniform: tt's padding before issue 11, 0..max uniformly on every hello
 *    and every frame;
 *  - off: no padding. */
#ifndef TT_CARRIER_TTPAD_H
#define TT_CARRIER_TTPAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tt_pad_profile {
    TT_PAD_SHAPED = 0,
    TT_PAD_UNIFORM,
    TT_PAD_OFF,
};

/* The profile named TEXT ("shaped", "uniform", "off"), or -1. */
int tt_pad_profile_parse(const char *text);

/* The next value of the generator whose state is *S (xorshift64*). *S must
 * not be 0; it never becomes 0. Padding lengths need to be unpredictable
 * only through the ciphertext, so a fast generator seeded from the system's
 * is enough. */
uint64_t tt_pad_rand(uint64_t *s);

/* A uniform value in 0..MAX from *S. */
size_t tt_pad_uniform(uint64_t *s, size_t max);

/* Padding for a hello (CLIENT: the client's first flight, else the server's)
 * whose size without padding is BARE bytes on the wire, at most MAX bytes
 * (MAX <= TT_HELLO_MAX_PAD). */
size_t tt_pad_hello(enum tt_pad_profile p, bool client, size_t bare, size_t max, uint64_t *s);

/* Shaped profile: the padding of the last frame of a write whose last frame
 * carries TAIL plaintext bytes (0 for a FIN frame that ends the write), at
 * most MAX bytes (MAX <= TT_FRAME_MAX_PAD). The other frames of a shaped
 * write are full and carry no padding. */
size_t tt_pad_write_tail(size_t tail, size_t max, uint64_t *s);

#endif
