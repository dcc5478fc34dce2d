/* Fuzz harness for the resolv.conf reader.
 *
 * Input: the file's bytes.
 *
 * Invariants: at most TT_RESOLVCONF_MAX_NS nameservers, each of family 4
 * (with the 12 unused bytes zero) or 6, no two the same; the same result
 * for the text with a NUL after it (the reader does not rely on one). */
#include <stdlib.h>
#include <string.h>

#include "codec/resolvconf.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tt_resolvconf_ns a[TT_RESOLVCONF_MAX_NS], b[TT_RESOLVCONF_MAX_NS];
    size_t n = tt_resolvconf_parse((const char *)data, size, a);
    CHECK(n <= TT_RESOLVCONF_MAX_NS);
    static const uint8_t zero[12];
    for (size_t i = 0; i < n; i++) {
        CHECK(a[i].family == 4 || a[i].family == 6);
        if (a[i].family == 4)
            CHECK(memcmp(a[i].addr + 4, zero, 12) == 0);
        for (size_t j = 0; j < i; j++)
            CHECK(a[j].family != a[i].family || memcmp(a[j].addr, a[i].addr, 16) != 0);
    }
    char *copy = malloc(size + 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    CHECK(tt_resolvconf_parse(copy, size, b) == n);
    CHECK(n == 0 || memcmp(a, b, n * sizeof a[0]) == 0);
    free(copy);
    return 0;
}
