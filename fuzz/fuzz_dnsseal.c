/* Fuzz harness for the dns:// carrier's sealed-packet path, past the DNS
 * codec (which fuzz_dnstun covers): the server's dispatch of a tunnel
 * datagram to a connection by client id and salt, a new connection's
 * checks (stamp, replay, the key, the start of the stream), the answer to a
 * connection it does not know; and the client's answer path, from a DNS
 * answer to its query through the layer's decode and unpacking to the
 * connection's open and its engine. The carrier (src/carrier/dns.c) and the
 * client layer (src/link/dnsc.c) are included, so their static functions
 * are driven directly, as wireguard-tools' harnesses do.
 *
 * The input is a script of ops, each one byte (the low 3 bits pick it):
 *   0 ID(1) SALT(1) LEN(1) BYTES  to the server: an engine packet BYTES
 *                                 (a packet number and frames), sealed under
 *                                 client ID's key (1 of 3) with salt SALT (1
 *                                 of 6: fresh ones, a stale stamp, one from
 *                                 before the server started, one from the
 *                                 future)
 *   1 ID(1) LEN(1) BYTES          to the server: a raw datagram
 *   2 K(1) N(1) then N times       the client's next query in slot K is
 *     (KIND(1) LEN(1) BYTES)       answered with N datagrams: KIND bit 0
 *                                 raw or sealed under the client's down key
 *                                 (BYTES a packet number and frames); bit 1
 *                                 flips a byte of the answer (at LEN)
 *   3 N(1)                        the client's application writes 64 * N
 *                                 bytes (queries go out)
 *   4 I(1) WHAT(1)                accepted server connection I: writes,
 *                                 shuts down, closes or aborts
 *   5                             the client's connection aborts
 *   6, 7                          the loop runs once
 *
 * Every datagram the server sends must open under the down key of its
 * client and salt and decode as an engine packet; nothing may leak, crash
 * or trip a sanitizer; every connection must be gone at the end. */
#include "carrier/dns.c"
#include "link/dnsc.c"

#include "codec/arqwire.h"
#include "session/arq.h"

#include "fuzz_check.h"

#define IDS 3
#define SALTS 6
#define LINKS_MAX 16

static uv_loop_t loop;
static const uint8_t psk[32] = "fuzz-dnsseal-key-0123456789abcd";

/* The carrier's clock (wall_s in dns.c). */
static uint64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

/* N bytes off the script into OUT (zeros past its end, as u8 reads). */
static void take(cursor *c, uint8_t *out, size_t n)
{
    size_t have = c->off < c->n ? c->n - c->off : 0;
    if (have > n)
        have = n;
    if (have > 0)
        memcpy(out, c->p + c->off, have);
    memset(out + have, 0, n - have);
    c->off += have;
}

static void be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* ---- sealing as a peer would (dnslink.h has the wire) ---- */

static void key_of(uint32_t id, const uint8_t salt[8], bool up, uint8_t key[TT_AEAD_KEY_LEN])
{
    uint8_t info[14] = {up ? 'u' : 'd',      up ? 'p' : 'n',     (uint8_t)(id >> 24),
                        (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    memcpy(info + 6, salt, 8);
    CHECK(tt_hkdf(psk, 32, (const uint8_t *)"tt-dns-v1", 9, info, sizeof info, key,
                  TT_AEAD_KEY_LEN) == 0);
}

/* Seals the engine packet PKT (N bytes; its packet number read off its
 * head, or 0 when it has none) into OUT; returns the length. */
static size_t seal(uint32_t id, const uint8_t salt[8], bool up, const uint8_t *pkt, size_t n,
                   uint8_t *out)
{
    uint64_t pn = 0;
    size_t hl = 0;
    if (tt_arq_packet_pn(pkt, n, &pn, &hl) != 0) {
        static const uint8_t zero = 0;
        pkt = &zero;
        n = hl = 1;
    }
    uint8_t key[TT_AEAD_KEY_LEN], ad[32];
    key_of(id, salt, up, key);
    tt_aead a;
    CHECK(tt_aead_init(&a, TT_AEAD_AES_256_GCM, key, true) == 0);
    size_t off = 0, adl = 0;
    if (up) {
        memcpy(out, salt, 8);
        off = 8;
        be32(ad, id);
        memcpy(ad + 4, salt, 8);
        adl = 12;
    }
    memcpy(out + off, pkt, hl);
    memcpy(ad + adl, pkt, hl);
    tt_aead_set_counter(&a, pn);
    CHECK(tt_aead_seal_ad(&a, ad, adl + hl, pkt + hl, n - hl, 0, out + off + hl) == 0);
    tt_aead_free(&a);
    return off + n + TT_AEAD_TAG_LEN;
}

/* Whether the down datagram D opens under ID and SALT's key as a packet
 * that decodes. */
static bool opens_down(uint32_t id, const uint8_t salt[8], const uint8_t *d, size_t n)
{
    uint64_t pn;
    size_t hl;
    if (tt_arq_packet_pn(d, n, &pn, &hl) != 0 || n < hl + TT_AEAD_TAG_LEN + 1)
        return false;
    uint8_t key[TT_AEAD_KEY_LEN], plain[2048];
    key_of(id, salt, false, key);
    tt_aead a;
    CHECK(tt_aead_init(&a, TT_AEAD_AES_256_GCM, key, false) == 0);
    tt_aead_set_counter(&a, pn);
    memcpy(plain, d, hl);
    bool ok = n - TT_AEAD_TAG_LEN <= sizeof plain &&
              tt_aead_open_ad(&a, d, hl, d + hl, n - hl, plain + hl) == 0;
    tt_aead_free(&a);
    tt_arq_pkt p;
    const char *why;
    return ok && tt_arq_pkt_decode(plain, n - TT_AEAD_TAG_LEN, &p, &why) == 0;
}

/* ---- the server's datagram layer, in memory ---- */

static uint8_t salts[SALTS][8];
static unsigned live; /* connections not yet freed */

static int mem_send(tt_dgram *d, const uv_buf_t *bufs, unsigned nbufs, const struct sockaddr *to)
{
    (void)d;
    uint8_t buf[2048];
    size_t n = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        CHECK(n + bufs[i].len <= sizeof buf);
        memcpy(buf + n, bufs[i].base, bufs[i].len);
        n += bufs[i].len;
    }
    CHECK(n <= 932);
    int64_t id = tt_dnst_addr_client(to);
    CHECK(id > 0 && id <= IDS);
    bool any = false;
    for (unsigned s = 0; s < SALTS && !any; s++)
        any = opens_down((uint32_t)id, salts[s], buf, n);
    CHECK(any);
    return 0;
}

static int mem_recv_start(tt_dgram *d)
{
    (void)d;
    return 0;
}

static void mem_recv_stop(tt_dgram *d)
{
    (void)d;
}

static size_t mem_max_size(const tt_dgram *d)
{
    (void)d;
    return 932;
}

static void mem_close(tt_dgram *d, tt_dgram_close_cb cb, void *ud)
{
    (void)d;
    if (cb)
        cb(ud);
}

static const tt_dgram_ops mem_ops = {mem_send, mem_recv_start, mem_recv_stop, mem_max_size,
                                     mem_close};

/* ---- the server's connections, as the stream layer would hold them ---- */

static tt_link *links[LINKS_MAX];
static unsigned nlinks;

static void on_link_closed(void *ud)
{
    (void)ud;
    live--;
}

static void drop_link(tt_link *l, bool abort)
{
    for (unsigned i = 0; i < nlinks; i++)
        if (links[i] == l) {
            links[i] = links[--nlinks];
            if (abort)
                tt_link_abort(l, on_link_closed, NULL);
            else
                tt_link_close(l, on_link_closed, NULL);
            return;
        }
}

/* Both ends' received bytes: the engine's checks are fuzz_arq's. */
static void ignore_data(tt_link *l, void *ud, const uint8_t *data, size_t len)
{
    (void)l;
    (void)ud;
    (void)data;
    (void)len;
}

static void s_eof(tt_link *l, void *ud)
{
    (void)ud;
    drop_link(l, false);
}

static void s_error(tt_link *l, void *ud, int err)
{
    (void)ud;
    (void)err;
    drop_link(l, true);
}

static const tt_link_handler server_link_handler = {ignore_data, s_eof, s_error, NULL};

static void on_accept(void *ud, tt_link *l)
{
    (void)ud;
    live++;
    if (nlinks == LINKS_MAX) {
        tt_link_abort(l, on_link_closed, NULL);
        return;
    }
    links[nlinks++] = l;
    tt_link_set_handler(l, &server_link_handler, NULL);
    CHECK(tt_link_read_start(l) == 0);
}

static dns_carrier *server_new(tt_dgram *mem)
{
    dns_carrier *c = calloc(1, sizeof *c);
    CHECK(c != NULL);
    c->base.type = &tt_carrier_dns;
    c->base.loop = &loop;
    memcpy(c->psk, psk, 32);
    strcpy(c->domain, "t.example.com");
    c->idle_ms = SERVER_IDLE_MS;
    c->cfg.replay_window_ms = 120000;
    c->accept_cb = on_accept;
    c->dnss = mem;
    CHECK(tt_idmap_init(&c->byid, 2 * CONNS_MAX) == 0);
    tt_replay_init(&c->replay, 4096, 120);
    /* As if it had started a few seconds ago: stamps of now are its own. */
    (void)tt_replay_begin(&c->replay, (wall_now() - 5) * 1000);
    return c;
}

/* ---- the client: its layer and its connection ---- */

static void c_end(tt_link *l, void *ud)
{
    (void)l;
    *(bool *)ud = true;
}

static void c_error(tt_link *l, void *ud, int err)
{
    (void)l;
    (void)err;
    *(bool *)ud = true;
}

static const tt_link_handler client_link_handler = {ignore_data, c_end, c_error, NULL};

static void client_closed(void *ud)
{
    *(bool *)ud = true;
}

/* Answers the query in a live or late slot of the client's layer near K
 * with the datagrams the script gives (read off it even when DC, the
 * client's layer, is gone: NULL). */
static void answer(dnsc *dc, cursor *cur, uint32_t id, const uint8_t salt[8])
{
    unsigned k = u8(cur), n = u8(cur) % 8;
    slot *s = NULL;
    for (unsigned i = 0; dc != NULL && i < dc->nslots && s == NULL; i++) {
        slot *x = &dc->slots[(k + i) % dc->nslots];
        if (x->state != SLOT_FREE && !x->probe)
            s = x;
    }
    uint8_t payload[TT_DNSTUN_MSG_MAX], d[1024], msg[TT_DNSTUN_MSG_MAX];
    size_t used = 0, flip = SIZE_MAX;
    for (unsigned i = 0; i < n; i++) {
        unsigned kind = u8(cur), len = u8(cur);
        uint8_t bytes[256];
        take(cur, bytes, len);
        size_t dl = len;
        if (kind & 1)
            dl = seal(id, salt, false, bytes, len, d);
        else
            memcpy(d, bytes, len);
        if (kind & 2)
            flip = len;
        (void)tt_dnstun_pack(payload, 900, &used, d, dl);
    }
    if (s == NULL)
        return;
    static tt_dnstun_req req;
    uint8_t reply[TT_DNSTUN_MSG_MAX];
    (void)tt_dnstun_serve(&dc->zone, s->q, s->qlen, &req, reply);
    CHECK(req.kind == TT_DNSTUN_DATA);
    size_t m = tt_dnstun_answer_encode(&req.q, payload, used, 1232, msg);
    CHECK(m > 0);
    if (flip != SIZE_MAX)
        msg[flip % m] ^= 0x40;
    on_answer(dc->res[s->res].q, &dc->res[s->res], msg, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        init = true;
        uv_loop_init(&loop);
        tt_log_set_level(TT_LOG_ERROR);
    }
    cursor cur = {data, size, 0};
    uint64_t now = wall_now();
    /* Salts: three fresh, one stale (outside the replay window), one from
     * before the server started, one from the future. */
    static const int64_t age[SALTS] = {0, 0, 0, 1000, 8, -1000};
    for (unsigned i = 0; i < SALTS; i++) {
        uint64_t t = (uint64_t)((int64_t)now - age[i]);
        be32(salts[i], (uint32_t)t);
        be32(salts[i] + 4, 0x5a5a0000u + i);
    }

    tt_dgram mem = {.ops = &mem_ops, .loop = &loop};
    dns_carrier *srv = server_new(&mem);
    tt_dgram_set_handler(&mem, &server_handler, srv);

    /* The client: id 1 with the first fresh salt, asking a resolver that
     * does not exist (the discard port: its queries go nowhere). */
    struct sockaddr_storage res;
    CHECK(parse_ip("127.0.0.1", 9, &res) == 0);
    tt_dnsc_cfg dcfg = {.domain = "t.example.com",
                        .resolvers = &res,
                        .nresolvers = 1,
                        .client_id = 1,
                        .max_inflight = 16};
    tt_dgram *cdg = NULL;
    const char *why = NULL;
    CHECK(tt_dnsc_open(&loop, &dcfg, &cdg, &why) == 0);
    tt_dnslink_cfg lc = {.dg = cdg,
                         .client_id = 1,
                         .psk = psk,
                         .idle_ms = CLIENT_IDLE_MS,
                         .linger_ms = 0,
                         .window_pkts = 16};
    memcpy(lc.salt, salts[0], 8);
    tt_dnslink *cl = tt_dnslink_new(&loop, &lc);
    CHECK(cl != NULL);
    tt_link *clink = tt_dnslink_link(cl);
    bool c_over = false, c_closed = false;
    tt_link_set_handler(clink, &client_link_handler, &c_over);
    CHECK(tt_link_read_start(clink) == 0);
    CHECK(tt_dgram_recv_start(cdg) == 0);
    bool c_open = true;

    static uint8_t blob[64 * 255];
    while (cur.off < cur.n) {
        unsigned op = u8(&cur) & 7;
        if (op == 0 || op == 1) {
            uint32_t id = 1 + u8(&cur) % IDS;
            unsigned salt = op == 0 ? u8(&cur) % SALTS : 0;
            size_t len = u8(&cur);
            uint8_t bytes[256], dg[512];
            take(&cur, bytes, len);
            size_t n = len;
            if (op == 0)
                n = seal(id, salts[salt], true, bytes, len, dg);
            else
                memcpy(dg, bytes, len);
            struct sockaddr_storage from;
            tt_dnst_addr(id, &from);
            on_server_datagram(&mem, srv, dg, n, (const struct sockaddr *)&from);
        } else if (op == 2) {
            answer(c_closed ? NULL : (dnsc *)cdg, &cur, 1, salts[0]);
        } else if (op == 3) {
            size_t n = 64 * (size_t)u8(&cur);
            if (c_open && !c_over && n > 0) {
                uv_buf_t b = uv_buf_init((char *)blob, (unsigned)n);
                (void)tt_link_write(clink, &b, 1);
            }
        } else if (op == 4) {
            unsigned i = u8(&cur), what = u8(&cur) % 4;
            if (nlinks > 0) {
                tt_link *l = links[i % nlinks];
                uv_buf_t b = uv_buf_init((char *)blob, 3000);
                if (what == 0)
                    (void)tt_link_write(l, &b, 1);
                else if (what == 1)
                    (void)tt_link_shutdown(l);
                else
                    drop_link(l, what == 3);
            }
        } else if (op == 5) {
            if (c_open) {
                c_open = false;
                tt_link_abort(clink, client_closed, &c_closed);
            }
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }

    /* The end: the client goes at once, the server's connections fail as
     * when its nameserver goes, and every one must be freed. */
    if (!c_closed) {
        /* An aborted one lingers for its RESET: an orphan goes now. */
        tt_dnslink_orphan(cl);
        if (c_open)
            tt_link_close(clink, client_closed, &c_closed);
    }
    while (srv->nconns > 0)
        tt_dnslink_detach(srv->conns[--srv->nconns]);
    for (int i = 0; i < 1000 && (live > 0 || !c_closed); i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(live == 0 && nlinks == 0);
    CHECK(c_closed);
    tt_replay_free(&srv->replay);
    tt_idmap_free(&srv->byid);
    free(srv);
    return 0;
}
