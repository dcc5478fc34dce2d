/* Whole DNS messages as a forwarder sees them (RFC 1035): the question of a
 * query, which keys a cache; the time an answer may be kept (its smallest
 * TTL, or for a negative answer the SOA's, RFC 2308); the TTLs aged by the
 * time it was kept; and the short answers a forwarder makes itself
 * (SERVFAIL, and a truncated answer that sends a UDP client to TCP).
 * Sans-I/O and bounded: every function reads or rewrites the LEN bytes it is
 * given and nothing else, and refuses a message whose sections do not lie
 * inside it. Names are skipped, never followed, so no input can loop. */
#ifndef TT_CODEC_DNSMSG_H
#define TT_CODEC_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/dns.h"

/* A question's name in wire form (uncompressed, lowercased), type and class:
 * the cache's key. */
#define TT_DNSMSG_KEY_MAX (TT_DNS_NAME_MAX + 4)

typedef struct tt_dnsmsg_q {
    uint16_t id;
    uint16_t flags;
    uint16_t qtype, qclass;
    size_t qend;      /* offset just past the question */
    uint16_t udp_max; /* the client's UDP size: its OPT's, or 512 */
    uint8_t key[TT_DNSMSG_KEY_MAX];
    size_t key_len;
} tt_dnsmsg_q;

/* Parses the header and the single question of MSG (a query when QUERY,
 * else a response), and for a query the OPT record's UDP size if one is in
 * the additional section. The name must not be compressed (a question
 * never needs to be). Returns 0 with *Q set, or -EPROTO with *WHY set. */
int tt_dnsmsg_question(const uint8_t *msg, size_t len, bool query, tt_dnsmsg_q *q,
                       const char **why);

/* How long the answer MSG may be cached, in seconds: the smallest TTL of
 * its records (OPT aside); for NXDOMAIN or an empty NOERROR answer, the
 * smaller of the authority SOA's TTL and its MINIMUM field. Returns 0 with
 * *TTL set, or -1 when it must not be cached: malformed, truncated (TC),
 * another RCODE, or negative without a SOA. */
int tt_dnsmsg_cache_ttl(const uint8_t *msg, size_t len, uint32_t *ttl);

/* Subtracts ELAPSED seconds from the TTL of every record of MSG (OPT aside),
 * stopping at 0. Returns 0, or -1 when MSG is malformed (then unchanged up to
 * the record where it stopped). */
int tt_dnsmsg_age(uint8_t *msg, size_t len, uint32_t elapsed);

/* Sets the id of MSG (at least TT_DNS_HEADER_LEN bytes). */
void tt_dnsmsg_set_id(uint8_t *msg, uint16_t id);

/* Turns the query MSG whose question ends at QEND (tt_dnsmsg_q.qend) into a
 * response of its header and question only, with RCODE and TC as given and
 * RD copied; returns its length (QEND). */
size_t tt_dnsmsg_reply_empty(uint8_t *msg, size_t qend, unsigned rcode, bool tc);

#endif
