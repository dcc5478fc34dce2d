/* Fuzz harness for CIDR parsing and matching, the embedded-IPv4 reader and
 * the exit's access list.
 *
 * Input layout:
 *   TEXT [NUL ADDR [FLAGS]]
 * TEXT (up to the first NUL, or all of the input) is given to tt_cidr_parse.
 * ADDR is the next 16 bytes, zero-padded when the input is shorter; it is the
 * address matched against the range, read for embedded IPv4, and checked by
 * the ACL as an IPv6 address and (its first 4 bytes) as an IPv4 one. FLAGS,
 * the byte after ADDR, selects whether a parsed range is added to the ACL's
 * allow list (bit 0 set) or its deny list.
 *
 * tt_cidr_contains is compared with a bit-by-bit reference, and the ACL
 * verdicts are checked against the rules in acl.h that hold whatever the
 * built-in ranges are. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/addr.h"
#include "exit/acl.h"

#include "fuzz_check.h"

static bool bit(const uint8_t *a, unsigned i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1;
}

/* The obvious, slow definition of containment, to compare against. */
static bool ref_contains(const tt_cidr *c, int family, const uint8_t *a)
{
    if (family != c->family)
        return false;
    for (unsigned i = 0; i < c->prefix; i++) {
        if (bit(c->addr, i) != bit(a, i))
            return false;
    }
    return true;
}

static void check_contains(const tt_cidr *c, int family, const uint8_t *a)
{
    CHECK(tt_cidr_contains(c, family, a) == ref_contains(c, family, a));
}

/* Checks a parsed range against the contract and round-trips it as text. */
static void check_cidr(const tt_cidr *c)
{
    CHECK(c->family == 4 || c->family == 6);
    unsigned bits = c->family == 4 ? 32 : 128;
    CHECK(c->prefix <= bits);
    for (unsigned i = c->prefix; i < bits; i++)
        CHECK(!bit(c->addr, i));
    if (c->family == 4) {
        for (unsigned i = 4; i < 16; i++)
            CHECK(c->addr[i] == 0);
    }

    /* The network address and the last address are inside; the addresses
     * that differ in the last prefix bit are not; nothing of the other
     * family is. */
    uint8_t a[16];
    memcpy(a, c->addr, sizeof a);
    CHECK(tt_cidr_contains(c, c->family, a));
    for (unsigned i = c->prefix; i < bits; i++)
        a[i / 8] |= (uint8_t)(0x80u >> (i % 8));
    CHECK(tt_cidr_contains(c, c->family, a));
    if (c->prefix > 0) {
        unsigned i = c->prefix - 1u;
        a[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
        CHECK(!tt_cidr_contains(c, c->family, a));
    }
    CHECK(!tt_cidr_contains(c, c->family == 4 ? 6 : 4, c->addr));

    char ip[INET6_ADDRSTRLEN];
    CHECK(inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, ip, sizeof ip) != NULL);
    char text[INET6_ADDRSTRLEN + 8];
    snprintf(text, sizeof text, "%s/%u", ip, (unsigned)c->prefix);
    tt_cidr back;
    const char *why = NULL;
    CHECK(tt_cidr_parse(text, &back, &why) == 0);
    CHECK(back.family == c->family && back.prefix == c->prefix);
    CHECK(memcmp(back.addr, c->addr, sizeof back.addr) == 0);
}

/* Independent reading of the embedded-IPv4 forms, for comparison. */
static bool ref_embedded(const uint8_t *a, uint8_t *v4)
{
    static const uint8_t zero[12];
    static const uint8_t mapped[12] = {[10] = 0xff, 0xff};
    static const uint8_t translated[12] = {[8] = 0xff, 0xff};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, translated, 12) == 0 || memcmp(a, nat64, 12) == 0 ||
        memcmp(a, nat64_local, 6) == 0) {
        memcpy(v4, a + 12, 4);
        return true;
    }
    if (memcmp(a, zero, 12) == 0) {
        uint32_t low = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15];
        if (low <= 1)
            return false;
        memcpy(v4, a + 12, 4);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x02) {
        memcpy(v4, a + 2, 4);
        return true;
    }
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)~a[12 + i];
        return true;
    }
    return false;
}

/* Socket addresses in heap blocks of exactly their size, so that reading an
 * AF_INET address as if it were the larger AF_INET6 one is caught. */
static bool permits_v4(const tt_acl *acl, const uint8_t *a)
{
    struct sockaddr_in *in = calloc(1, sizeof *in);
    CHECK(in != NULL);
    in->sin_family = AF_INET;
    in->sin_port = htons(443);
    memcpy(&in->sin_addr, a, 4);
    bool ok = tt_acl_permits(acl, (const struct sockaddr *)in);
    char buf[64];
    tt_sockaddr_format((const struct sockaddr *)in, buf, sizeof buf);
    CHECK(strchr(buf, ':') != NULL && buf[0] != '[');
    free(in);
    return ok;
}

static bool permits_v6(const tt_acl *acl, const uint8_t *a)
{
    struct sockaddr_in6 *in6 = calloc(1, sizeof *in6);
    CHECK(in6 != NULL);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(443);
    memcpy(&in6->sin6_addr, a, 16);
    bool ok = tt_acl_permits(acl, (const struct sockaddr *)in6);
    char buf[64];
    tt_sockaddr_format((const struct sockaddr *)in6, buf, sizeof buf);
    CHECK(buf[0] == '[' && strstr(buf, "]:443") != NULL);
    free(in6);
    return ok;
}

/* Checks the rules of acl.h that do not depend on the built-in list. RANGE,
 * when not NULL, is the one explicit range in ACL, on the list ALLOW says. */
static void check_acl(const tt_acl *acl, const tt_cidr *range, bool allow, const uint8_t *a)
{
    bool p4 = permits_v4(acl, a);
    bool p6 = permits_v6(acl, a);

    if (range != NULL && range->family == 4 && tt_cidr_contains(range, 4, a))
        CHECK(p4 == allow);

    /* A permitted IPv6 address carries no refused IPv4 one. */
    uint8_t v4[4];
    bool embeds = tt_addr_embedded_v4(a, v4);
    if (embeds && p6)
        CHECK(permits_v4(acl, v4));
    if (range != NULL && range->family == 6 && tt_cidr_contains(range, 6, a)) {
        if (!allow)
            CHECK(!p6);
        else
            CHECK(p6 == (!embeds || permits_v4(acl, v4)));
    }

    /* No list opens an address of any other family. */
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    CHECK(!tt_acl_permits(acl, (const struct sockaddr *)&un));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t text_len = nul != NULL ? (size_t)(nul - data) : size;
    char *text = malloc(text_len + 1);
    if (text == NULL)
        return 0;
    if (text_len > 0)
        memcpy(text, data, text_len);
    text[text_len] = '\0';

    uint8_t a[16] = {0};
    uint8_t flags = 0;
    if (nul != NULL) {
        size_t rest = size - text_len - 1;
        memcpy(a, nul + 1, rest < 16 ? rest : 16);
        if (rest > 16)
            flags = nul[17];
    }
    bool allow = flags & 1;

    tt_cidr c;
    const char *why = NULL;
    int rc = tt_cidr_parse(text, &c, &why);
    if (rc != 0) {
        CHECK(rc == -EINVAL);
        CHECK(why != NULL && why[0] != '\0');
    } else {
        check_cidr(&c);
        check_contains(&c, 4, a);
        check_contains(&c, 6, a);
    }

    uint8_t v4[4], ref_v4[4];
    bool e = tt_addr_embedded_v4(a, v4);
    CHECK(e == ref_embedded(a, ref_v4));
    if (e)
        CHECK(memcmp(v4, ref_v4, 4) == 0);

    tt_acl *acl = malloc(sizeof *acl);
    CHECK(acl != NULL);
    tt_acl_init(acl);
    check_acl(acl, NULL, false, a);

    why = NULL;
    int arc = tt_acl_add(acl, allow, text, &why);
    CHECK(arc == rc);
    if (arc == 0) {
        CHECK((allow ? acl->n_allow : acl->n_deny) == 1);
        check_acl(acl, &c, allow, a);
    } else {
        CHECK(why != NULL);
        CHECK(acl->n_allow == 0 && acl->n_deny == 0);
    }
    free(acl);
    free(text);
    return 0;
}
