/* nftables through libnftables, for the redirect entry: installs a script
 * (codec/nftrules.h makes it) on a netlink socket that stays open for the
 * process's lifetime, so a table with the owner flag lives exactly as long
 * as tt. */
#ifndef TT_ENTRY_NFTABLES_H
#define TT_ENTRY_NFTABLES_H

#include <stddef.h>

typedef struct tt_nft tt_nft;

/* Runs SCRIPT in a new libnftables context and keeps the context. Returns
 * it, or NULL with the first line of nftables' complaint in ERR (LEN bytes),
 * followed by a hint when it is a matter of permission. The context's
 * sockets are made close-on-exec, so children (the ssh carrier) do not keep
 * an owned table alive after tt. */
tt_nft *tt_nft_install(const char *script, char *err, size_t len);

/* Runs SCRIPT (may be NULL: nothing to run) on N's context, then frees it,
 * which closes its socket. Errors are logged. */
void tt_nft_remove(tt_nft *n, const char *script);

/* The kernel's version as MAJOR * 1000 + MINOR (5.12 is 5012), 0 when
 * unknown; the owner flag needs 5012. */
unsigned tt_nft_kernel_version(void);

#endif
