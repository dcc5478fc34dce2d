/* Fuzz harness for the forwarder's DNS helpers and cache.
 *
 * Input: a message, taken as a query and as an answer.
 *
 * Invariants: the question parser returns 0 or -EPROTO with a reason, and
 * on success a key of at most TT_DNSMSG_KEY_MAX bytes, lowercased, whose
 * question ends inside the message; the cache TTL is at most 2^31-1;
 * aging by 0 changes nothing and aging by 2^32-1 leaves a message whose
 * cache TTL is 0; an answer the cache keeps comes back with the id asked
 * and the same length; a SERVFAIL made from a query parses as a response
 * with the same key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/dnsmsg.h"
#include "entry/dnscache.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65535)
        return 0;
    tt_dnsmsg_q q;
    const char *why = NULL;
    for (int query = 0; query < 2; query++) {
        int rc = tt_dnsmsg_question(data, size, query, &q, &why);
        CHECK(rc == 0 || rc == -EPROTO);
        if (rc != 0) {
            CHECK(why != NULL && why[0] != '\0');
            continue;
        }
        CHECK(q.key_len >= 5 && q.key_len <= TT_DNSMSG_KEY_MAX);
        CHECK(q.qend <= size);
        for (size_t i = 0; q.key[i] != 0; i += 1u + q.key[i]) {
            CHECK(i + 1u + q.key[i] + 4 < q.key_len);
            for (size_t j = 1; j <= q.key[i]; j++)
                CHECK(!(q.key[i + j] >= 'A' && q.key[i + j] <= 'Z'));
        }
        if (query) {
            uint8_t *m = malloc(q.qend);
            CHECK(m != NULL);
            memcpy(m, data, q.qend);
            size_t n = tt_dnsmsg_reply_empty(m, q.qend, TT_DNS_RCODE_SERVFAIL, false);
            tt_dnsmsg_q r;
            CHECK(tt_dnsmsg_question(m, n, false, &r, &why) == 0);
            CHECK(r.key_len == q.key_len && memcmp(r.key, q.key, q.key_len) == 0);
            free(m);
        }
    }
    uint32_t ttl, ttl0;
    int cacheable = tt_dnsmsg_cache_ttl(data, size, &ttl);
    if (cacheable == 0)
        CHECK(ttl <= 0x7FFFFFFFu);
    uint8_t *m = malloc(size + 1);
    CHECK(m != NULL);
    memcpy(m, data, size);
    int aged = tt_dnsmsg_age(m, size, 0);
    /* Aging by 0 only turns TTLs with the top bit set into 0, which the
     * cache TTL already reads as 0. */
    if (cacheable == 0) {
        CHECK(aged == 0);
        CHECK(tt_dnsmsg_cache_ttl(m, size, &ttl0) == 0 && ttl0 == ttl);
    }
    if (aged == 0) {
        CHECK(tt_dnsmsg_age(m, size, 0xFFFFFFFFu) == 0);
        if (tt_dnsmsg_cache_ttl(m, size, &ttl) == 0)
            CHECK(ttl == 0);
    }
    if (tt_dnsmsg_question(data, size, false, &q, &why) == 0) {
        tt_dnscache *c = tt_dnscache_new();
        CHECK(c != NULL);
        static uint8_t out[65535];
        if (tt_dnscache_put(c, q.key, q.key_len, data, size, 0)) {
            size_t n = tt_dnscache_get(c, q.key, q.key_len, 0x5a5a, out, sizeof out, 999);
            CHECK(n == size && out[0] == 0x5a && out[1] == 0x5a);
        }
        tt_dnscache_free(c);
    }
    free(m);
    return 0;
}
