/* The server's nameserver for clients' DNS; see nameserver.h. */
#include "exit/nameserver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/resolvconf.h"
#include "core/addr.h"

int tt_resolvconf_read(const char *path, tt_resolvconf_ns out[TT_RESOLVCONF_MAX_NS])
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char *text = malloc(TT_RESOLVCONF_MAX);
    size_t len = text ? fread(text, 1, TT_RESOLVCONF_MAX, f) : 0;
    fclose(f);
    size_t n = text ? tt_resolvconf_parse(text, len, out) : 0;
    free(text);
    return text ? (int)n : -ENOMEM;
}

int tt_nameserver_find(const char *resolver_text, const char *path, tt_target *ns)
{
    if (resolver_text) {
        tt_hostport hp;
        const char *why = NULL;
        if (tt_hostport_parse(resolver_text, &hp, &why) != 0 ||
            tt_target_set(ns, hp.host, hp.port) != 0 || ns->type == TT_TARGET_NAME)
            return -EINVAL;
        return 0;
    }
    tt_resolvconf_ns found[TT_RESOLVCONF_MAX_NS];
    if (tt_resolvconf_read(path, found) <= 0)
        return -ENOENT;
    memset(ns, 0, sizeof *ns);
    ns->type = found[0].family == 4 ? TT_TARGET_IPV4 : TT_TARGET_IPV6;
    memcpy(ns->u.v6, found[0].addr, found[0].family == 4 ? 4 : 16);
    ns->port = 53;
    return 0;
}

void tt_nameserver_acl(const tt_acl *acl, const tt_target *ns, tt_acl *out)
{
    tt_acl_init(out);
    memcpy(out->deny, acl->deny, acl->n_deny * sizeof acl->deny[0]);
    out->n_deny = acl->n_deny;
    tt_cidr *c = &out->allow[out->n_allow++];
    c->family = ns->type == TT_TARGET_IPV4 ? 4 : 6;
    c->prefix = c->family == 4 ? 32 : 128;
    memcpy(c->addr, ns->u.v6, c->family == 4 ? 4 : 16);
}
