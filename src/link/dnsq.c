/* The choice of a DNS client's query transport (link/dnsq.h). */
#include "link/dnsq.h"

int tt_dnsq_open(uv_loop_t *loop, const tt_dnsq_cfg *cfg, tt_dnsq **out, const char **why)
{
    switch (cfg->kind) {
    case TT_DNSQ_UDP:
        return tt_dnsq_udp_open(loop, cfg, out, why);
    case TT_DNSQ_TCP:
    case TT_DNSQ_TLS:
        return tt_dnsq_stream_open(loop, cfg, out, why);
    case TT_DNSQ_HTTPS:
        return tt_dnsq_https_open(loop, cfg, out, why);
    }
    *why = "this build has no such DNS transport";
    return UV_ENOTSUP;
}
