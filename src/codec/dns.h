/* DNS messages (RFC 1035), as far as a stub resolver needs them: a query for
 * the A or AAAA records of one name, and the addresses in the answer to it.
 * Sans-I/O: bytes in, bytes or a parsed answer out.
 *
 * The parser is strict and bounded. It accepts a message only as the answer
 * to the query it is given (same id, QR set, opcode QUERY, exactly one
 * question that echoes ours, name compared without regard to ASCII case) and
 * only when every section is well formed and inside the message. Compressed
 * names are followed only backwards, each pointer to before the previous
 * one, so no input can make it loop; a name is at most 255 bytes. CNAMEs in
 * the answer section are followed from the queried name for at most
 * TT_DNS_MAX_CNAMES links, and only the addresses of the last name of the
 * chain are taken, at most TT_DNS_MAX_ADDRS of them. */
#ifndef TT_CODEC_DNS_H
#define TT_CODEC_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_DNS_TYPE_A 1
#define TT_DNS_TYPE_CNAME 5
#define TT_DNS_TYPE_AAAA 28
#define TT_DNS_TYPE_OPT 41
#define TT_DNS_CLASS_IN 1

#define TT_DNS_RCODE_NOERROR 0
#define TT_DNS_RCODE_FORMERR 1
#define TT_DNS_RCODE_SERVFAIL 2
#define TT_DNS_RCODE_NXDOMAIN 3
#define TT_DNS_RCODE_NOTIMP 4
#define TT_DNS_RCODE_REFUSED 5

#define TT_DNS_HEADER_LEN 12
/* The longest name in wire form, the terminating zero included. */
#define TT_DNS_NAME_MAX 255
/* The longest query: header, question, OPT record. */
#define TT_DNS_QUERY_MAX (TT_DNS_HEADER_LEN + TT_DNS_NAME_MAX + 4 + 11)
/* The UDP payload size announced with EDNS0: the size that avoids IP
 * fragmentation on practically every path (DNS Flag Day 2020). */
#define TT_DNS_EDNS_UDP_SIZE 1232
/* A reply without EDNS0 fits in this over UDP (RFC 1035 section 4.2.1). */
#define TT_DNS_UDP_MAX 512

#define TT_DNS_MAX_ADDRS 16
#define TT_DNS_MAX_CNAMES 8

typedef struct tt_dns_addr {
    uint8_t family;   /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* 4 bytes used for AF_INET */
} tt_dns_addr;

typedef struct tt_dns_answer {
    unsigned rcode;   /* RCODE, with EDNS0's extended bits when an OPT came */
    bool truncated;   /* TC: the answer did not fit; ask again over TCP */
    unsigned cnames;  /* CNAME links followed */
    unsigned naddrs;  /* addresses in ADDRS */
    uint32_t min_ttl; /* smallest TTL of the records used; 0 when none */
    tt_dns_addr addrs[TT_DNS_MAX_ADDRS];
} tt_dns_answer;

/* Writes NAME ("example.com" or "example.com.") in wire form into OUT and
 * returns its length with the terminating zero, or 0 when NAME is not a
 * valid name: empty, the root alone, an empty label, a label over 63 bytes,
 * or over 255 bytes in wire form. Bytes are taken as they are (no escapes). */
size_t tt_dns_name_encode(const char *name, uint8_t out[TT_DNS_NAME_MAX]);

/* Reads the possibly compressed name at POS of the LEN-byte message MSG into
 * OUT in wire form, lowercased (ASCII), with its length in *OUT_LEN. Its
 * labels must lie before END until the first compression pointer, and
 * anywhere in the message after it; every pointer must point before the
 * previous one, so no input loops. *NEXT receives the position after the
 * name where it sits (after its first pointer, if any). Returns 0, or
 * -EPROTO with *WHY set. */
int tt_dns_name_read(const uint8_t *msg, size_t len, size_t pos, size_t end,
                     uint8_t out[TT_DNS_NAME_MAX], size_t *out_len, size_t *next, const char **why);

/* Writes a standard query with id ID and RD set for the QTYPE (A or AAAA)
 * records of NAME into OUT; with EDNS, an OPT record announcing
 * TT_DNS_EDNS_UDP_SIZE follows. Returns the length, or 0 when NAME is not
 * valid (see tt_dns_name_encode) or QTYPE is neither A nor AAAA. */
size_t tt_dns_query_encode(uint16_t id, const char *name, uint16_t qtype, bool edns,
                           uint8_t out[TT_DNS_QUERY_MAX]);

/* Parses the LEN bytes at MSG as the answer to the query (ID, NAME, QTYPE).
 * Returns 0 with *OUT filled when it is one; the caller then looks at
 * rcode and truncated (the answer section is read only for NOERROR without
 * TC). Returns -EINVAL with *WHY set when the message is not an answer to
 * this query (another id, not a response, another question), or -EPROTO
 * with *WHY set when it is malformed or a CNAME chain is too long or loops.
 * Bytes after the last record are ignored. WHY may be NULL; after a
 * refusal *OUT is all zero. */
int tt_dns_response_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                          uint16_t qtype, tt_dns_answer *out, const char **why);

#endif
