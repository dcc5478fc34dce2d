#include "carrier/carrier.h"

#include <string.h>

#include "core/log.h"
#include "link/tcp.h"

void tt_carrier_listener_setup(const tt_carrier_cfg *cfg, struct tt_tcp_listener *ls)
{
    static bool warned;
    if (!cfg->fast_open)
        return;
    int rc = tt_tcp_listener_fast_open(ls, 1024);
    if (rc != 0 && !warned) {
        warned = true;
        tt_warn("--fast-open: the kernel refused TCP Fast Open on the listener (%s)",
                uv_strerror(rc));
    }
}

/* Each carrier file defines one of these. */
extern const tt_carrier_ops tt_carrier_tcp;
extern const tt_carrier_ops tt_carrier_tt;
extern const tt_carrier_ops tt_carrier_tls;
extern const tt_carrier_ops tt_carrier_ws;
extern const tt_carrier_ops tt_carrier_wss;

static const tt_carrier_ops *const g_carriers[] = {
    &tt_carrier_tt, &tt_carrier_tcp, &tt_carrier_tls, &tt_carrier_ws, &tt_carrier_wss,
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
