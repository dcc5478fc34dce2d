/* Fuzz harness for the DNS codec.
 *
 * Input layout:
 *   byte 0     bit 0: ask AAAA (else A); bit 1: expect id 0xBEEF (else the
 *              message's own first two bytes, so the id check passes and
 *              the rest of the parser is reached)
 *   the rest   a message, parsed as the answer to "www.example.com"
 *
 * Invariants: the parser returns one of its three codes, a reason with
 * every refusal, at most TT_DNS_MAX_ADDRS addresses of the family asked,
 * each of which occurs in the input; nothing from the answer section when
 * the answer is truncated or an error; the same result for the question
 * name in another case. The message bytes are also taken as a name for the
 * query encoder, whose query, turned into an empty response, must parse. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "codec/dns.h"

#include "fuzz_check.h"

#define QNAME "www.example.com"
#define QNAME_UPPER "WWW.Example.COM."

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

static void check_answer(const uint8_t *msg, size_t len, uint16_t qtype, int rc,
                         const tt_dns_answer *a, const char *why)
{
    CHECK(rc == 0 || rc == -EINVAL || rc == -EPROTO);
    if (rc != 0) {
        CHECK(why != NULL && why[0] != '\0');
        return;
    }
    CHECK(len >= TT_DNS_HEADER_LEN);
    CHECK(a->naddrs <= TT_DNS_MAX_ADDRS);
    CHECK(a->cnames <= TT_DNS_MAX_CNAMES);
    CHECK(a->rcode < 4096);
    if (a->truncated || a->rcode != 0)
        CHECK(a->naddrs == 0 && a->cnames == 0);
    static const uint8_t zero[16];
    for (unsigned i = 0; i < a->naddrs; i++) {
        const tt_dns_addr *x = &a->addrs[i];
        if (qtype == TT_DNS_TYPE_A) {
            CHECK(x->family == AF_INET);
            CHECK(memcmp(x->addr + 4, zero, 12) == 0);
            CHECK(contains(msg, len, x->addr, 4));
        } else {
            CHECK(x->family == AF_INET6);
            CHECK(contains(msg, len, x->addr, 16));
        }
    }
}

static bool same_answer(const tt_dns_answer *a, const tt_dns_answer *b)
{
    if (a->rcode != b->rcode || a->truncated != b->truncated || a->cnames != b->cnames ||
        a->naddrs != b->naddrs || a->min_ttl != b->min_ttl)
        return false;
    for (unsigned i = 0; i < a->naddrs; i++)
        if (a->addrs[i].family != b->addrs[i].family ||
            memcmp(a->addrs[i].addr, b->addrs[i].addr, 16) != 0)
            return false;
    return true;
}

/* Encodes a query for the name in IN (up to its first NUL) and checks that
 * the query, answered with nothing, parses as an empty answer. */
static void check_query(const uint8_t *in, size_t len, uint16_t qtype, bool edns)
{
    char name[300];
    size_t n = len < sizeof name - 1 ? len : sizeof name - 1;
    memcpy(name, in, n);
    name[n] = '\0';
    uint8_t q[TT_DNS_QUERY_MAX];
    size_t ql = tt_dns_query_encode(0x4242, name, qtype, edns, q);
    if (ql == 0)
        return;
    CHECK(ql <= TT_DNS_QUERY_MAX);
    CHECK(ql >= TT_DNS_HEADER_LEN + 2 + 4);
    q[2] |= 0x80; /* QR */
    tt_dns_answer a;
    const char *why = NULL;
    int rc = tt_dns_response_parse(q, ql, 0x4242, name, qtype, &a, &why);
    CHECK(rc == 0);
    CHECK(a.rcode == 0 && !a.truncated && a.naddrs == 0 && a.cnames == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint16_t qtype = (data[0] & 1) ? TT_DNS_TYPE_AAAA : TT_DNS_TYPE_A;
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    uint16_t id = 0xBEEF;
    if (!(data[0] & 2) && len >= 2)
        id = (uint16_t)(msg[0] << 8 | msg[1]);

    tt_dns_answer a, b;
    const char *why = NULL, *why2 = NULL;
    int rc = tt_dns_response_parse(msg, len, id, QNAME, qtype, &a, &why);
    check_answer(msg, len, qtype, rc, &a, why);
    int rc2 = tt_dns_response_parse(msg, len, id, QNAME_UPPER, qtype, &b, &why2);
    CHECK(rc2 == rc);
    if (rc == 0)
        CHECK(same_answer(&a, &b));
    else
        CHECK(strcmp(why, why2) == 0);

    check_query(msg, len, qtype, (data[0] & 4) != 0);
    return 0;
}
