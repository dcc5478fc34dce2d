#include "carrier/carrier.h"

#include <string.h>

/* Each carrier file defines one of these. */
extern const tt_carrier_ops tt_carrier_tcp;
extern const tt_carrier_ops tt_carrier_tt;

static const tt_carrier_ops *const g_carriers[] = {
    &tt_carrier_tt,
    &tt_carrier_tcp,
};

#define N_CARRIERS (sizeof g_carriers / sizeof g_carriers[0])

const tt_carrier_ops *tt_carrier_find(const char *scheme)
{
    for (size_t i = 0; i < N_CARRIERS; i++) {
        if (strcmp(g_carriers[i]->scheme, scheme) == 0)
            return g_carriers[i];
    }
    return NULL;
}

const char *tt_carrier_schemes(void)
{
    static char buf[256];
    if (buf[0] == '\0') {
        for (size_t i = 0; i < N_CARRIERS; i++) {
            if (i > 0)
                strcat(buf, ", ");
            strcat(buf, g_carriers[i]->scheme);
            strcat(buf, "://");
        }
    }
    return buf;
}
