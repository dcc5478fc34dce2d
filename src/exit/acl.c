#include "exit/acl.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

/* Ranges an exit never connects to unless told to with --allow: places that
 * are private to the exit's host or network (loopback, RFC 1918, CGNAT,
 * link-local with its cloud metadata address 169.254.169.254, unique-local),
 * and addresses that are not unicast destinations at all (unspecified,
 * multicast, reserved, documentation, benchmarking, discard-only). Without
 * them a tunnel would hand its users the exit's internal network. */
static const tt_cidr builtin_refused[] = {
    {.family = 4, .prefix = 8, .addr = {0, 0, 0, 0}},              /* "this network" */
    {.family = 4, .prefix = 8, .addr = {10, 0, 0, 0}},             /* RFC 1918 */
    {.family = 4, .prefix = 10, .addr = {100, 64, 0, 0}},          /* CGNAT, RFC 6598 */
    {.family = 4, .prefix = 8, .addr = {127, 0, 0, 0}},            /* loopback */
    {.family = 4, .prefix = 16, .addr = {169, 254, 0, 0}},         /* link-local, metadata */
    {.family = 4, .prefix = 12, .addr = {172, 16, 0, 0}},          /* RFC 1918 */
    {.family = 4, .prefix = 24, .addr = {192, 0, 0, 0}},           /* IETF protocol assignments */
    {.family = 4, .prefix = 24, .addr = {192, 0, 2, 0}},           /* TEST-NET-1 */
    {.family = 4, .prefix = 16, .addr = {192, 168, 0, 0}},         /* RFC 1918 */
    {.family = 4, .prefix = 15, .addr = {198, 18, 0, 0}},          /* benchmarking */
    {.family = 4, .prefix = 24, .addr = {198, 51, 100, 0}},        /* TEST-NET-2 */
    {.family = 4, .prefix = 24, .addr = {203, 0, 113, 0}},         /* TEST-NET-3 */
    {.family = 4, .prefix = 4, .addr = {224, 0, 0, 0}},            /* multicast */
    {.family = 4, .prefix = 4, .addr = {240, 0, 0, 0}},            /* reserved, broadcast */
    {.family = 6, .prefix = 128, .addr = {0}},                     /* unspecified :: */
    {.family = 6, .prefix = 128, .addr = {[15] = 1}},              /* loopback ::1 */
    {.family = 6, .prefix = 7, .addr = {0xfc}},                    /* unique-local */
    {.family = 6, .prefix = 10, .addr = {0xfe, 0x80}},             /* link-local */
    {.family = 6, .prefix = 10, .addr = {0xfe, 0xc0}},             /* old site-local */
    {.family = 6, .prefix = 8, .addr = {0xff}},                    /* multicast */
    {.family = 6, .prefix = 32, .addr = {0x20, 0x01, 0x0d, 0xb8}}, /* documentation */
    {.family = 6, .prefix = 64, .addr = {0x01, 0x00}},             /* discard-only, RFC 6666 */
};

void tt_acl_init(tt_acl *acl)
{
    memset(acl, 0, sizeof *acl);
}

int tt_acl_add(tt_acl *acl, bool allow, const char *cidr, const char **why)
{
    tt_cidr c;
    if (acl == NULL) {
        if (why != NULL)
            *why = "no access list";
        return -EINVAL;
    }
    /* Bad text is reported before a full list, so that the user fixes the
     * argument they can see before learning about the limit. */
    int rc = tt_cidr_parse(cidr, &c, why);
    if (rc != 0)
        return rc;
    tt_cidr *list = allow ? acl->allow : acl->deny;
    unsigned *n = allow ? &acl->n_allow : &acl->n_deny;
    if (*n >= TT_ACL_MAX) {
        if (why != NULL)
            *why = "too many ranges";
        return -ENOSPC;
    }
    list[*n] = c;
    (*n)++;
    return 0;
}

static bool list_contains(const tt_cidr *list, unsigned n, int family, const uint8_t *addr)
{
    for (unsigned i = 0; i < n; i++) {
        if (tt_cidr_contains(&list[i], family, addr))
            return true;
    }
    return false;
}

/* The verdict for one address of FAMILY (4 or 6), in the order acl.h gives. */
static bool permits_one(const tt_acl *acl, int family, const uint8_t *addr)
{
    if (list_contains(acl->deny, acl->n_deny, family, addr))
        return false;
    if (list_contains(acl->allow, acl->n_allow, family, addr))
        return true;
    return !list_contains(builtin_refused, sizeof builtin_refused / sizeof builtin_refused[0],
                          family, addr);
}

bool tt_acl_permits(const tt_acl *acl, const struct sockaddr *sa)
{
    if (acl == NULL || sa == NULL)
        return false;

    /* The address is copied out rather than read through a cast, so that a
     * struct sockaddr with only byte alignment is safe to pass. */
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        uint8_t v4[4];
        memcpy(v4, &in.sin_addr, sizeof v4);
        return permits_one(acl, 4, v4);
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        uint8_t v6[16], v4[4];
        memcpy(v6, &in6.sin6_addr, sizeof v6);
        if (!permits_one(acl, 6, v6))
            return false;
        /* A packet to ::ffff:127.0.0.1, or through a NAT64 or 6to4 relay, ends
         * up at the embedded IPv4 address, so that address must pass too. */
        if (tt_addr_embedded_v4(v6, v4))
            return permits_one(acl, 4, v4);
        return true;
    }
    return false;
}
