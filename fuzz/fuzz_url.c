/* Fuzz harness for the text parsers that take user input: tt_url_parse,
 * tt_hostport_parse and tt_listen_parse, with tt_target_set and
 * tt_target_format on what they accept.
 *
 * The whole input, copied into a heap buffer of SIZE + 1 bytes with a NUL at
 * the end, is the text; an embedded NUL simply ends it early, as it would for
 * a C string from argv. Beyond "no crash", each successful parse must satisfy
 * the contract's invariants (port in range, strings terminated within their
 * arrays, scheme lower case, path empty or absolute), and formatting the
 * result back to text must parse to the same result. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/addr.h"
#include "core/target.h"

#include "fuzz_check.h"

/* True when BUF of CAP bytes holds a NUL, i.e. the string ends inside it. */
static bool terminated(const char *buf, size_t cap)
{
    return memchr(buf, '\0', cap) != NULL;
}

/* A failed parse must say why, with a phrase the user can read. */
static void check_failure(int rc, const char *why)
{
    CHECK(rc == -EINVAL);
    CHECK(why != NULL);
    CHECK(why[0] != '\0');
    CHECK(strlen(why) < 80);
}

static void check_hostport(const tt_hostport *hp, bool zero_ok)
{
    CHECK(terminated(hp->host, sizeof hp->host));
    size_t n = strlen(hp->host);
    CHECK(n > 0 && n <= TT_HOST_MAX);
    CHECK(zero_ok || hp->port != 0);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)hp->host[i];
        CHECK(c > 0x20 && c < 0x7f);
        CHECK(c != '[' && c != ']' && c != '/' && c != '@');
    }
    /* A host with a colon is an IPv6 literal, and only then. */
    uint8_t bin[16];
    if (strchr(hp->host, ':') != NULL)
        CHECK(inet_pton(AF_INET6, hp->host, bin) == 1);
}

/* Writes HP back as text, bracketing an IPv6 host. */
static void format_hostport(const tt_hostport *hp, char *buf, size_t len)
{
    bool v6 = strchr(hp->host, ':') != NULL;
    int n = snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", hp->host, (unsigned)hp->port);
    CHECK(n > 0 && (size_t)n < len);
}

static bool same_hostport(const tt_hostport *a, const tt_hostport *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port;
}

/* The target made from an accepted host must format to text that parses back
 * to the same place. */
static void check_target(const tt_hostport *hp)
{
    tt_target t;
    CHECK(tt_target_set(&t, hp->host, hp->port) == 0);
    CHECK(t.port == hp->port);
    uint8_t bin[16];
    if (inet_pton(AF_INET, hp->host, bin) == 1) {
        CHECK(t.type == TT_TARGET_IPV4);
        CHECK(memcmp(t.u.v4, bin, 4) == 0);
    } else if (inet_pton(AF_INET6, hp->host, bin) == 1) {
        CHECK(t.type == TT_TARGET_IPV6);
        CHECK(memcmp(t.u.v6, bin, 16) == 0);
    } else {
        CHECK(t.type == TT_TARGET_NAME);
        CHECK(t.name_len == strlen(hp->host));
        CHECK(strcmp(t.u.name, hp->host) == 0);
    }

    char text[TT_TARGET_STRLEN];
    CHECK(tt_target_format(&t, text, sizeof text) == text);
    CHECK(strlen(text) < sizeof text);
    if (hp->port == 0)
        return;
    tt_hostport back;
    const char *why = NULL;
    CHECK(tt_hostport_parse(text, &back, &why) == 0);
    CHECK(back.port == hp->port);
    if (t.type == TT_TARGET_IPV6) {
        CHECK(inet_pton(AF_INET6, back.host, bin) == 1);
        CHECK(memcmp(bin, t.u.v6, 16) == 0);
    } else {
        CHECK(strcmp(back.host, hp->host) == 0);
    }

    /* Truncated formatting must still terminate inside the buffer. */
    char small[7];
    memset(small, 'X', sizeof small);
    tt_target_format(&t, small, 5);
    CHECK(memchr(small, '\0', 5) != NULL);
    CHECK(small[5] == 'X' && small[6] == 'X');
}

static void fuzz_hostport(const char *s)
{
    tt_hostport hp;
    const char *why = NULL;
    int rc = tt_hostport_parse(s, &hp, &why);
    if (rc != 0) {
        check_failure(rc, why);
        return;
    }
    check_hostport(&hp, false);

    char text[TT_HOST_MAX + 16];
    format_hostport(&hp, text, sizeof text);
    tt_hostport back;
    CHECK(tt_hostport_parse(text, &back, &why) == 0);
    CHECK(same_hostport(&hp, &back));

    /* Every HOST:PORT is also a listen address, with the same meaning. */
    CHECK(tt_listen_parse(s, "127.0.0.1", false, &back, &why) == 0);
    CHECK(same_hostport(&hp, &back));

    check_target(&hp);
}

static void fuzz_listen(const char *s)
{
    static const char *const defaults[] = {"127.0.0.1", "::", "[::1]", "localhost"};
    for (size_t d = 0; d < sizeof defaults / sizeof defaults[0]; d++) {
        tt_hostport strict, loose;
        const char *why = NULL;
        int rc = tt_listen_parse(s, defaults[d], false, &strict, &why);
        const char *why2 = NULL;
        int rc2 = tt_listen_parse(s, defaults[d], true, &loose, &why2);
        if (rc2 != 0) {
            /* Allowing port 0 can only widen what is accepted. */
            check_failure(rc2, why2);
            CHECK(rc != 0);
        } else {
            check_hostport(&loose, true);
        }
        if (rc != 0) {
            check_failure(rc, why);
            continue;
        }
        check_hostport(&strict, false);
        CHECK(rc2 == 0 && same_hostport(&strict, &loose));

        /* A bare port takes the default host; anything else parses as
         * HOST:PORT to the same result. */
        bool bare = strspn(s, "0123456789") == strlen(s);
        tt_hostport hp;
        if (bare) {
            const char *want = defaults[d][0] == '[' ? "::1" : defaults[d];
            CHECK(strcmp(strict.host, want) == 0);
        } else {
            CHECK(tt_hostport_parse(s, &hp, &why) == 0);
            CHECK(same_hostport(&hp, &strict));
        }
    }
}

static void fuzz_url(const char *s)
{
    tt_url u;
    const char *why = NULL;
    int rc = tt_url_parse(s, &u, &why);
    if (rc != 0) {
        check_failure(rc, why);
        return;
    }
    check_hostport(&u.hp, false);

    CHECK(terminated(u.scheme, sizeof u.scheme));
    size_t sn = strlen(u.scheme);
    if (sn > 0)
        CHECK(u.scheme[0] >= 'a' && u.scheme[0] <= 'z');
    for (size_t i = 0; i < sn; i++) {
        char c = u.scheme[i];
        CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
    }

    CHECK(terminated(u.path, sizeof u.path));
    size_t pn = strlen(u.path);
    CHECK(pn == 0 || u.path[0] == '/');
    for (size_t i = 0; i < pn; i++) {
        unsigned char c = (unsigned char)u.path[i];
        CHECK(c > 0x20 && c < 0x7f);
    }

    CHECK(terminated(u.user, sizeof u.user));
    size_t un = strlen(u.user);
    CHECK(un == 0 || u.user[0] != '-');
    for (size_t i = 0; i < un; i++) {
        char c = u.user[i];
        CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-');
    }

    /* Formatting the pieces back must give the same URL. */
    char auth[TT_HOST_MAX + 16];
    format_hostport(&u.hp, auth, sizeof auth);
    char text[TT_SCHEME_MAX + TT_USER_MAX + sizeof auth + TT_PATH_MAX + 8];
    int n = snprintf(text, sizeof text, "%s%s%s%s%s%s", u.scheme, sn > 0 ? "://" : "", u.user,
                     un > 0 ? "@" : "", auth, u.path);
    CHECK(n > 0 && (size_t)n < sizeof text);
    tt_url back;
    CHECK(tt_url_parse(text, &back, &why) == 0);
    CHECK(strcmp(back.scheme, u.scheme) == 0);
    CHECK(strcmp(back.user, u.user) == 0);
    CHECK(same_hostport(&back.hp, &u.hp));
    CHECK(strcmp(back.path, u.path) == 0);

    /* The authority alone is a HOST:PORT. */
    tt_hostport hp;
    CHECK(tt_hostport_parse(auth, &hp, &why) == 0);
    CHECK(same_hostport(&hp, &u.hp));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';

    fuzz_url(s);
    fuzz_hostport(s);
    fuzz_listen(s);

    /* NULL WHY must be accepted, and the result must not depend on it. */
    tt_url u;
    const char *why = NULL;
    CHECK((tt_url_parse(s, &u, NULL) == 0) == (tt_url_parse(s, &u, &why) == 0));

    free(s);
    return 0;
}
