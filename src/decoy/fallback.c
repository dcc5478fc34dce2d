#include "decoy/fallback.h"

#include <stdio.h>

#include "core/log.h"
#include "core/target.h"
#include "link/relay.h"

int tt_fallback_dial(uv_loop_t *loop, const tt_carrier_cfg *cfg, tt_dial_cb cb, void *ud)
{
    tt_target t;
    int rc = tt_target_set(&t, cfg->fallback.host, cfg->fallback.port);
    if (rc != 0)
        return rc;
    tt_dial_opts opts = {
        .acl = NULL, .timeout_ms = cfg->connect_timeout_ms, .resolver = cfg->resolver};
    return tt_dial_start(loop, &t, &opts, cb, ud, NULL);
}

void tt_fallback_unreachable(const tt_link *l, const char *peer, int err)
{
    /* The connection ends (or drains) as if the site had gone away. */
    tt_info("c%llu %s: fallback unreachable: %s", (unsigned long long)l->id, peer,
            uv_strerror(err));
}

void tt_fallback_relay(tt_link *l, tt_link *fb, const uint8_t *bytes, size_t len, unsigned idle_ms,
                       const char *peer)
{
    if (len > 0 && tt_link_write1(fb, bytes, len) < 0) {
        tt_link_close(fb, NULL, NULL);
        tt_link_close(l, NULL, NULL);
        return;
    }
    char label[TT_RELAY_LABEL_MAX];
    snprintf(label, sizeof label, "c%llu %s -> fallback", (unsigned long long)l->id, peer);
    tt_relay_opts ro = {.idle_timeout_ms = idle_ms, .label = label};
    tt_relay_start(l, fb, &ro);
}
