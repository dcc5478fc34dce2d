/* Fuzz harness for the --redirect ruleset: what the user types (the
 * --redirect and --exclude ranges, read by tt_cidr_parse) and what tt adds
 * (the server's endpoints, the listener ports, the mark) turned into nft
 * script text by tt_nftrules_format.
 *
 * Input layout: a header of 7 bytes, then lines separated by '\n':
 *   FLAGS      bit 0: owner flag; bit 1: --redirect-forwarded
 *   PORT4 PORT6 (2 bytes each, big-endian; 0: no listener for that family)
 *   CAP        (2 bytes) the output buffer size for the small-buffer check
 *   lines      'r' CIDR (a --redirect), 'x' CIDR (an --exclude),
 *              'c' CIDR (a server endpoint; the port is the line's
 *              position), anything else ignored
 * A range that tt_cidr_parse refuses is dropped, as the client refuses it.
 *
 * The script must fit a buffer sized for the most ranges the client
 * accepts; every accepted range must appear in it once per chain; every
 * redirect must come after the last exemption; braces must balance; and a
 * buffer too small by one byte must give -ENOSPC and an empty string. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/nftrules.h"
#include "core/addr.h"

#include "fuzz_check.h"

#define MAX_RANGES 64
#define MAX_ENDS 8
#define OUT_MAX (64 * 1024)

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cursor cur = {data, size, 0};
    uint8_t flags = u8(&cur);
    uint16_t port4 = (uint16_t)u16(&cur);
    uint16_t port6 = (uint16_t)u16(&cur);
    size_t cap = u16(&cur);
    size_t off = cur.off < size ? cur.off : size;

    static tt_cidr red[MAX_RANGES], exc[MAX_RANGES];
    static tt_nft_endpoint ends[MAX_ENDS];
    size_t n_red = 0, n_exc = 0, n_ends = 0;
    unsigned lineno = 0;
    while (off < size) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
        char line[128];
        if (len >= 2 && len < sizeof line) {
            memcpy(line, data + off, len);
            line[len] = '\0';
            tt_cidr c;
            const char *why = NULL;
            if (tt_cidr_parse(line + 1, &c, &why) == 0) {
                if (line[0] == 'r' && n_red < MAX_RANGES)
                    red[n_red++] = c;
                else if (line[0] == 'x' && n_exc < MAX_RANGES)
                    exc[n_exc++] = c;
                else if (line[0] == 'c' && n_ends < MAX_ENDS)
                    ends[n_ends++] = (tt_nft_endpoint){c, (uint16_t)lineno};
            }
        }
        lineno++;
        off += len + 1;
    }

    tt_nftrules r = {.id = 4294967295ul,
                     .owner = flags & 1,
                     .forwarded = flags & 2,
                     .mark = 0x7474,
                     .port4 = port4,
                     .port6 = port6,
                     .redirect = red,
                     .n_redirect = n_red,
                     .exclude = exc,
                     .n_exclude = n_exc,
                     .carrier = ends,
                     .n_carrier = n_ends};
    char *out = malloc(OUT_MAX);
    CHECK(out != NULL);
    int n = tt_nftrules_format(&r, out, OUT_MAX);
    /* The client's limits always fit the client's buffer. */
    CHECK(n > 0);
    CHECK((size_t)n == strlen(out));
    CHECK(out[n - 1] == '\n');
    CHECK(count(out, "{") == count(out, "}"));
    size_t chains = r.forwarded ? 2 : 1;
    CHECK(count(out, "\tchain ") == chains);
    CHECK(count(out, "flags owner;") == (r.owner ? 1u : 0u));

    size_t want_redirects = 0;
    for (size_t i = 0; i < n_red; i++)
        want_redirects += (red[i].family == 4 ? port4 : port6) != 0;
    CHECK(count(out, " redirect to :") == want_redirects * chains);
    CHECK(count(out, " return\n") == chains * (5 + n_ends + n_exc) - (r.forwarded ? 1 : 0));

    /* In each chain, no exemption after the first redirect. */
    const char *chain = out;
    while ((chain = strstr(chain, "\tchain ")) != NULL) {
        const char *end = strstr(chain, "\n\t}\n");
        CHECK(end != NULL);
        const char *first = strstr(chain, "redirect to");
        if (first != NULL && first < end) {
            const char *ret = strstr(first, " return\n");
            CHECK(ret == NULL || ret > end);
        }
        chain = end;
    }

    /* Exactly enough room works; one byte less fails cleanly. */
    char *small = malloc((size_t)n + 1);
    CHECK(small != NULL);
    CHECK(tt_nftrules_format(&r, small, (size_t)n + 1) == n);
    CHECK(memcmp(small, out, (size_t)n + 1) == 0);
    CHECK(tt_nftrules_format(&r, small, (size_t)n) == -ENOSPC);
    CHECK(small[0] == '\0');
    free(small);
    if (cap > 0 && cap < (size_t)n) {
        char *tiny = malloc(cap);
        CHECK(tiny != NULL);
        CHECK(tt_nftrules_format(&r, tiny, cap) == -ENOSPC);
        CHECK(tiny[0] == '\0');
        free(tiny);
    }
    free(out);
    return 0;
}
