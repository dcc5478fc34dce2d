/* The self-signed certificate of a TLS server without --cert: made as
 * `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 365
 * -subj /CN=NAME -addext subjectAltName=...` makes one with Debian 12's
 * default configuration, so that nothing in it says tt (version 3, a random
 * positive serial of 159 bits, valid from the moment it is made for 365
 * days, subject and issuer CN=NAME as a UTF8String, the extensions subject
 * and authority key identifiers, critical basicConstraints CA:TRUE, then
 * subjectAltName; ECDSA P-256 with SHA-256), and kept in a file so that it,
 * and a client's --pin, survive restarts.
 *
 * The file (the key and the certificate, PEM, mode 0600) is
 * DIR/selfsigned-NAME.pem, DIR being tt_selfsigned_dir's. It is used while
 * it holds a key matching a certificate for NAME that is valid for at least
 * another day; otherwise a new one replaces it (written to a temporary file
 * and renamed, so that servers starting together never read half a file). */
#ifndef TT_CORE_SELFSIGNED_H
#define TT_CORE_SELFSIGNED_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#define TT_SELFSIGNED_DAYS 365

/* Where the certificate came from. */
enum tt_selfsigned_origin {
    TT_SELFSIGNED_LOADED = 1, /* from the file */
    TT_SELFSIGNED_NEW,        /* made now and saved: there was no file */
    TT_SELFSIGNED_RENEWED,    /* made now and saved: the file's had expired or did not fit */
    TT_SELFSIGNED_UNSAVED,    /* made now, not saved (no directory, or it cannot be written) */
};

/* A new certificate for NAME (a DNS name or an IP literal, brackets
 * allowed; at most 253 bytes) at the Unix time NOW. Returns 0 with *CERT
 * and *KEY set (the caller frees them), or -ENOMEM. */
int tt_selfsigned_make(const char *name, int64_t now, X509 **cert, EVP_PKEY **key);

/* The directory for tt's state, in BUF: $TT_STATE_DIR, else systemd's
 * $STATE_DIRECTORY (its first entry), else $XDG_STATE_HOME/tt, else
 * /var/lib/tt for root, else $HOME/.local/state/tt. Returns BUF, or NULL
 * when none can be named (no HOME). */
const char *tt_selfsigned_dir(char *buf, size_t len);

/* The certificate for NAME from DIR's file (see above), or a new one,
 * saved there when possible (DIR NULL: never). Returns 0 with *CERT, *KEY
 * and *ORIGIN set, PATH (LEN bytes) the file's name (or "") and, for
 * TT_SELFSIGNED_UNSAVED with a DIR, *WHY saying why it was not saved; or
 * -ENOMEM. */
int tt_selfsigned_get(const char *name, const char *dir, int64_t now, X509 **cert, EVP_PKEY **key,
                      enum tt_selfsigned_origin *origin, char *path, size_t len, const char **why);

#endif
