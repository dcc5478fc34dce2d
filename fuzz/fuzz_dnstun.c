/* Fuzz harness for the tunnel's DNS codec, both decoders.
 *
 * Input: a message, taken as a query arriving at the server of zone t.ex,
 * and as the answer to a fixed tunnel query of the client.
 *
 * Invariants: the server drops, replies or decodes, with a reason for all
 * but a decoded query; a reply fits the buffer, is a response with the
 * query's id and is a few hundred bytes at most; a decoded query carries
 * at most the zone's capacity in its spelling (base32, base64, base128),
 * encodes back (with the same client, nonce
 * and payload) to a name with the same key, and its answer with a payload
 * of the room's size decodes back to that payload at the client. The
 * client's decoder returns 0, -EINVAL or -EPROTO, with a reason for the
 * refusals, and a payload no longer than the message whose framing unpacks
 * to the end. */
#include <errno.h>
#include <string.h>

#include "codec/dnstun.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65535)
        return 0;
    static tt_dnstun_zone z;
    static bool ready;
    const char *why = NULL;
    if (!ready) {
        CHECK(tt_dnstun_zone_init(&z, "t.ex", NULL, 1, &why) == 0);
        ready = true;
    }
    static uint8_t out[TT_DNSTUN_MSG_MAX];
    static tt_dnstun_req r;
    size_t n = tt_dnstun_serve(&z, data, size, &r, out);
    if (r.kind == TT_DNSTUN_DROP) {
        CHECK(n == 0 && r.why != NULL);
    } else if (r.kind == TT_DNSTUN_REPLY) {
        CHECK(r.why != NULL);
        CHECK(n >= 12 && n <= 700);
        CHECK((out[2] & 0x80) && out[0] == data[0] && out[1] == data[1]);
    } else {
        CHECK(r.kind == TT_DNSTUN_DATA && n == 0);
        CHECK(r.len <= tt_dnstun_query_capacity_enc(&z, r.enc));
        CHECK(r.q.qtype == TT_DNSTUN_TYPE_TXT || r.q.qtype == TT_DNSTUN_TYPE_NULL);
        static uint8_t q[TT_DNSTUN_QUERY_MAX];
        size_t qlen = tt_dnstun_query_encode_enc(&z, r.enc, r.q.id, r.q.qtype, r.client, r.nonce,
                                                 r.payload, r.len, q);
        CHECK(qlen > 0);
        static tt_dnstun_req back;
        tt_dnstun_serve(&z, q, qlen, &back, out);
        CHECK(back.kind == TT_DNSTUN_DATA && back.enc == r.enc);
        /* A dense name is read case-sensitively: the same bytes. */
        CHECK(r.enc == TT_DNSTUN_ENC_B32 || memcmp(back.q.question, r.q.question, r.q.qlen) == 0);
        CHECK(back.q.key_len == r.q.key_len && memcmp(back.q.key, r.q.key, r.q.key_len) == 0);
        /* The most the answer can carry, as many small datagrams. */
        static uint8_t payload[TT_DNSTUN_MSG_MAX];
        size_t room = tt_dnstun_answer_room(&back.q, TT_DNSTUN_EDNS_SIZE);
        size_t used = 0;
        while (tt_dnstun_pack(payload, room, &used, data, size < 7 ? size : 7))
            ;
        size_t alen = tt_dnstun_answer_encode(&back.q, payload, used, TT_DNSTUN_EDNS_SIZE, out);
        CHECK(alen > 0 && alen <= TT_DNSTUN_EDNS_SIZE);
        static uint8_t got[TT_DNSTUN_MSG_MAX];
        size_t glen;
        CHECK(tt_dnstun_answer_decode(out, alen, q, qlen, got, &glen, &why) == 0);
        CHECK(glen == used && memcmp(got, payload, used) == 0);
    }

    /* The client's side: the input as the answer to a poll. */
    static uint8_t query[TT_DNSTUN_QUERY_MAX];
    size_t qlen =
        tt_dnstun_query_encode(&z, size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0,
                               TT_DNSTUN_TYPE_TXT, 0x01020304, 0x05060708, NULL, 0, query);
    static uint8_t got[TT_DNSTUN_MSG_MAX];
    size_t glen = 99;
    why = NULL;
    int rc = tt_dnstun_answer_decode(data, size, query, qlen, got, &glen, &why);
    CHECK(rc == 0 || rc == -EINVAL || rc == -EPROTO);
    if (rc != 0) {
        CHECK(why != NULL && glen == 0);
        return 0;
    }
    CHECK(glen <= size);
    size_t off = 0;
    const uint8_t *d;
    size_t dlen;
    int k;
    while ((k = tt_dnstun_unpack(got, glen, &off, &d, &dlen)) == 1)
        CHECK(dlen > 0 && d + dlen <= got + glen);
    CHECK(k == 0);
    return 0;
}
