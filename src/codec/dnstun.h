/* The tunnel's DNS codec (docs/DNS.md): datagrams carried up in the names of
 * queries and down in their answers, and the authoritative answers the
 * server gives to every query that is not tunnel traffic. Sans-I/O: bytes in,
 * bytes or a parsed request out; no clock, no sockets.
 *
 * Up: a query for the TXT (or the fallback NULL) records of
 *     BASE32(client id, 4 bytes | nonce, 4 bytes | payload).DOMAIN
 * in labels of 63 characters but the last, lowercase when written and
 * read without regard to case (resolvers randomise it, "0x20"), with an
 * EDNS(0) record announcing TT_DNSTUN_EDNS_SIZE. The nonce makes every name
 * unique, so no cache between the ends answers for the server.
 *
 * Where a probe showed that the path keeps letter case (and 8-bit bytes), a
 * query may spell the same bytes densely instead:
 *     MARKER BASE64-or-BASE128(client id | nonce | payload | check, 2 bytes)
 * MARKER is '8' (base64, case-sensitive) or '9' (base128: base64's
 * characters plus the bytes 0xC0 to 0xFF), digits base32 never writes, so
 * the server tells the spelling of each query from its first character;
 * the check (Fletcher-16 of the bytes) catches a name whose case or bytes
 * were changed on the way. A probe asks for
 *     "0" BASE32(nonce) . LETTERS-AND-DIGITS . "-_" HIGH-BYTES . HIGH-BYTES
 * and its answer carries, as one datagram, the name's labels before the
 * domain exactly as the server received them.
 *
 * Down: the answer echoes the question, sets AA, and carries one record of
 * the query's type with TTL 0: for TXT, the payload cut into
 * character-strings of at most 255 bytes; for NULL, the payload as it is.
 * The payload is a sequence of datagrams, each behind a two-byte length
 * (tt_dnstun_pack), so that one answer can bring several small ones.
 *
 * Every parser is strict and bounded: it reads only the bytes it is given,
 * follows compression pointers only backwards, and refuses anything
 * malformed with a reason. */
#ifndef TT_CODEC_DNSTUN_H
#define TT_CODEC_DNSTUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/dns.h"

#define TT_DNSTUN_TYPE_TXT 16
/* The fallback record type for resolvers that mangle TXT (docs/DNS.md). */
#define TT_DNSTUN_TYPE_NULL 10

/* The bytes in front of the payload in a query name: client id and nonce. */
#define TT_DNSTUN_HEAD_LEN 8
/* The most payload bytes a query can carry (the shortest domain, one
 * label of one byte, leaves room for 146 bytes in base32, 206 in
 * base128). */
#define TT_DNSTUN_QUERY_PAYLOAD_MAX 224
/* The UDP payload size the client announces and the server's answers keep
 * to (what an IPv6 path of 1280 bytes carries unfragmented). */
#define TT_DNSTUN_EDNS_SIZE 1232
/* The longest query the client writes: header, question, OPT record. */
#define TT_DNSTUN_QUERY_MAX (TT_DNS_HEADER_LEN + TT_DNS_NAME_MAX + 4 + 11)
/* The longest message the server writes, and the most answer payload a
 * client can receive. */
#define TT_DNSTUN_MSG_MAX TT_DNSTUN_EDNS_SIZE
/* The length of a question: its name and its type and class. */
#define TT_DNSTUN_QUESTION_MAX (TT_DNS_NAME_MAX + 4)

/* The zone the server is authoritative for, and the name the client asks
 * under. Names are in wire form, lowercased. */
typedef struct tt_dnstun_zone {
    uint8_t apex[TT_DNS_NAME_MAX];
    size_t apex_len;
    uint8_t ns[TT_DNS_NAME_MAX]; /* the NS record's target */
    size_t ns_len;
    uint32_t serial; /* the SOA's serial */
} tt_dnstun_zone;

/* Sets up *Z for DOMAIN ("t.example.com", a trailing dot allowed), with NS
 * as its nameserver's name (NULL: "ns." DOMAIN) and SERIAL in its SOA.
 * Returns 0, or -EINVAL with *WHY set when a name is not valid or DOMAIN
 * leaves no room for a tunnel query (it must leave at least 16 bytes). */
int tt_dnstun_zone_init(tt_dnstun_zone *z, const char *domain, const char *ns, uint32_t serial,
                        const char **why);

/* Payload bytes one query name under Z's domain carries: for a domain of
 * D bytes in wire form, the largest P with
 * 8(P+8)/5 characters + one length byte per 63 of them + D <= 255. */
size_t tt_dnstun_query_capacity(const tt_dnstun_zone *z);

/* The spellings of data in a query name, least dense first. */
enum { TT_DNSTUN_ENC_B32 = 0, TT_DNSTUN_ENC_B64 = 1, TT_DNSTUN_ENC_B128 = 2 };

/* Payload bytes a query name in spelling ENC carries under Z's domain
 * (0 for an unknown ENC). */
size_t tt_dnstun_query_capacity_enc(const tt_dnstun_zone *z, unsigned enc);

/* Client: as tt_dnstun_query_encode, in spelling ENC. */
size_t tt_dnstun_query_encode_enc(const tt_dnstun_zone *z, unsigned enc, uint16_t id,
                                  uint16_t qtype, uint32_t client, uint32_t nonce,
                                  const uint8_t *payload, size_t len,
                                  uint8_t out[TT_DNSTUN_QUERY_MAX]);

/* The probe's labels after the first, in wire form. */
#define TT_DNSTUN_PROBE_PATTERN_LEN 132

/* Client: writes a probe with id ID for QTYPE and NONCE into OUT. Returns
 * its length, or 0 when the domain leaves no room for it (the client then
 * keeps to base32). */
size_t tt_dnstun_probe_encode(const tt_dnstun_zone *z, uint16_t id, uint16_t qtype, uint32_t nonce,
                              uint8_t out[TT_DNSTUN_QUERY_MAX]);

/* Client: the densest spelling the path carries, judged from the datagram
 * ECHO (LEN bytes) that the answer to the probe QUERY (QLEN bytes) brought:
 * B128 when the name came through unchanged, B64 when its letters kept
 * their case but 8-bit bytes did not come through, else B32. */
unsigned tt_dnstun_probe_result(const uint8_t *query, size_t qlen, const uint8_t *echo, size_t len);

/* Client: writes the query with id ID for QTYPE (TXT or NULL) carrying
 * PAYLOAD (LEN bytes, at most tt_dnstun_query_capacity; 0 is a poll) from
 * CLIENT with NONCE into OUT. Returns its length, or 0 when LEN is too
 * long or QTYPE is neither type. */
size_t tt_dnstun_query_encode(const tt_dnstun_zone *z, uint16_t id, uint16_t qtype, uint32_t client,
                              uint32_t nonce, const uint8_t *payload, size_t len,
                              uint8_t out[TT_DNSTUN_QUERY_MAX]);

/* Client: parses MSG (LEN bytes) as the answer to QUERY (QLEN bytes, as
 * tt_dnstun_query_encode wrote it) and copies its payload into OUT, its
 * length into *OUT_LEN; the payload's framing is checked
 * (tt_dnstun_unpack will not fail on it). Returns 0; -EINVAL with *WHY
 * when MSG is not an answer to QUERY (another id or question: ignore it);
 * -EPROTO with *WHY when it is one but carries no payload (malformed, an
 * error RCODE, truncated, no record of the type). WHY may be NULL. */
int tt_dnstun_answer_decode(const uint8_t *msg, size_t len, const uint8_t *query, size_t qlen,
                            uint8_t out[TT_DNSTUN_MSG_MAX], size_t *out_len, const char **why);

/* What the server keeps of a query to answer it, now or later. */
typedef struct tt_dnstun_q {
    uint16_t id;
    uint16_t flags; /* the query's header flags */
    uint16_t qtype, qclass;
    bool edns;                                /* the query had an OPT record */
    uint16_t udp_max;                         /* the largest answer the asker takes over UDP */
    size_t qlen;                              /* bytes in QUESTION */
    uint8_t question[TT_DNSTUN_QUESTION_MAX]; /* as received, case kept */
    /* The question lowercased (name, type, class): the same query asked
     * again (a resolver's retry) has the same key. */
    uint8_t key[TT_DNSTUN_QUESTION_MAX];
    size_t key_len;
} tt_dnstun_q;

enum tt_dnstun_kind {
    TT_DNSTUN_DROP,  /* say nothing: not a query, or too short to answer */
    TT_DNSTUN_REPLY, /* send the reply written to OUT */
    TT_DNSTUN_DATA,  /* a tunnel query: answer it with tt_dnstun_answer_encode */
};

typedef struct tt_dnstun_req {
    enum tt_dnstun_kind kind;
    /* Why the query is not tunnel traffic (DROP, REPLY); NULL for DATA. */
    const char *why;
    unsigned rcode; /* the reply's RCODE (REPLY) */
    tt_dnstun_q q;  /* set for REPLY (when the question was read) and DATA */
    uint32_t client, nonce;
    unsigned enc; /* the query's spelling (DATA) */
    size_t len;   /* payload bytes (DATA) */
    uint8_t payload[TT_DNSTUN_QUERY_PAYLOAD_MAX];
} tt_dnstun_req;

/* Server: takes the LEN-byte message MSG that arrived for zone Z and fills
 * *R. For a tunnel query R->kind is DATA; for any other query it is REPLY
 * and the authoritative answer is in OUT: SOA and NS at the apex (NODATA
 * for its other types), NODATA at the nameserver's name, NXDOMAIN for
 * other names in the zone, REFUSED outside it or for a class other than
 * IN or a zone transfer, NOTIMP for an opcode other than QUERY, FORMERR for
 * a malformed query, BADVERS for an EDNS version other than 0. Responses and
 * messages shorter than a header are DROPped. Returns the reply's length
 * for REPLY, else 0. A probe is a REPLY too: its echo, with why "a probe".
 * A dense name that fails its check is not a tunnel name: NXDOMAIN, which
 * tells the client to fall back to base32. */
size_t tt_dnstun_serve(const tt_dnstun_zone *z, const uint8_t *msg, size_t len, tt_dnstun_req *r,
                       uint8_t out[TT_DNSTUN_MSG_MAX]);

/* Server: how many payload bytes the answer to Q can carry within LIMIT
 * bytes of message (the transport's: Q's udp_max over UDP, 65535 over
 * TCP), never more than TT_DNSTUN_MSG_MAX. */
size_t tt_dnstun_answer_room(const tt_dnstun_q *q, size_t limit);

/* Server's most payload per answer whatever the question: the room left by
 * the longest question, over EDNS. A datagram of at most this minus 2
 * bytes always fits one answer. */
size_t tt_dnstun_answer_room_min(void);

/* Server: writes the answer to Q carrying PAYLOAD (LEN bytes, at most
 * tt_dnstun_answer_room(Q, LIMIT)) into OUT. Returns its length, or 0 when
 * the payload does not fit. */
size_t tt_dnstun_answer_encode(const tt_dnstun_q *q, const uint8_t *payload, size_t len,
                               size_t limit, uint8_t out[TT_DNSTUN_MSG_MAX]);

/* Server: writes a reply to Q of its question only, with RCODE and, when TC,
 * the truncation bit (the asker retries over TCP). Returns its length. */
size_t tt_dnstun_reply_empty(const tt_dnstun_q *q, unsigned rcode, bool tc,
                             uint8_t out[TT_DNSTUN_MSG_MAX]);

/* Appends the datagram D (LEN bytes) behind its two-byte length to the
 * payload OUT, which holds *USED of ROOM bytes. Returns false, changing
 * nothing, when it does not fit or LEN is 0 or over 65535. */
bool tt_dnstun_pack(uint8_t *out, size_t room, size_t *used, const uint8_t *d, size_t len);

/* Reads the next datagram of the payload P (LEN bytes) from *OFF: returns 1
 * with *D and *DLEN set and *OFF moved past it, 0 at the end, -1 when the
 * framing is broken (a length running past the end, or 0). */
int tt_dnstun_unpack(const uint8_t *p, size_t len, size_t *off, const uint8_t **d, size_t *dlen);

#endif
