#include "core/selfsigned.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/tlsctx.h"

#define RENEW_MARGIN_S (24 * 3600) /* a file valid for less than this is replaced */
#define SERIAL_BITS 159            /* what `openssl req` draws (apps/lib/apps.c) */

static int add_san(X509 *x, const char *name)
{
    char buf[256];
    const char *bare = tt_tls_bare_name(name, buf, sizeof buf);
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = GENERAL_NAME_new();
    int rc = -1;
    if (gens == NULL || g == NULL)
        goto out;
    if (tt_tls_is_ip_literal(name)) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(bare);
        if (ip == NULL)
            goto out;
        GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
    } else {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (dns == NULL || ASN1_STRING_set(dns, name, -1) != 1) {
            ASN1_IA5STRING_free(dns);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, dns);
    }
    if (sk_GENERAL_NAME_push(gens, g) <= 0)
        goto out;
    g = NULL;
    rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -1;
out:
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(gens);
    return rc;
}

/* One extension from its configuration text, as openssl req's v3_ca
 * section writes it. */
static int add_conf_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

int tt_selfsigned_make(const char *name, int64_t now, X509 **cert, EVP_PKEY **key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *bn = BN_new();
    time_t t = (time_t)now;
    int rc = -ENOMEM;
    if (k == NULL || x == NULL || bn == NULL || X509_set_version(x, X509_VERSION_3) != 1)
        goto out;
    /* 159 random bits: positive, 20 bytes long unless the draw starts with
     * zeros, as openssl req makes them. */
    if (BN_rand(bn, SERIAL_BITS, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto out;
    if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &t) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), TT_SELFSIGNED_DAYS, 0, &t) == NULL)
        goto out;
    X509_NAME *subj = X509_get_subject_name(x);
    /* The common name holds 64 bytes at most; the SAN is what counts. */
    if (strlen(name) <= 64 &&
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1,
                                   0) != 1)
        goto out;
    if (X509_set_issuer_name(x, subj) != 1 || X509_set_pubkey(x, k) != 1)
        goto out;
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    if (add_conf_ext(x, &v3, NID_subject_key_identifier, "hash") < 0 ||
        add_conf_ext(x, &v3, NID_authority_key_identifier, "keyid:always,issuer") < 0 ||
        add_conf_ext(x, &v3, NID_basic_constraints, "critical,CA:true") < 0 ||
        add_san(x, name) < 0 || X509_sign(x, k, EVP_sha256()) <= 0)
        goto out;
    *cert = x;
    *key = k;
    x = NULL;
    k = NULL;
    rc = 0;
out:
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(k);
    ERR_clear_error();
    return rc;
}

const char *tt_selfsigned_dir(char *buf, size_t len)
{
    const char *v = getenv("TT_STATE_DIR");
    int n = -1;
    if (v && *v) {
        n = snprintf(buf, len, "%s", v);
    } else if ((v = getenv("STATE_DIRECTORY")) && *v) {
        /* systemd's StateDirectory=: a colon-separated list, ours first. */
        n = snprintf(buf, len, "%.*s", (int)strcspn(v, ":"), v);
    } else if ((v = getenv("XDG_STATE_HOME")) && *v) {
        n = snprintf(buf, len, "%s/tt", v);
    } else if (geteuid() == 0) {
        n = snprintf(buf, len, "/var/lib/tt");
    } else if ((v = getenv("HOME")) && *v) {
        n = snprintf(buf, len, "%s/.local/state/tt", v);
    }
    return n > 0 && (size_t)n < len ? buf : NULL;
}

/* Encrypted keys would make OpenSSL prompt on the terminal; refuse them. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static bool names_match(X509 *x, const char *name)
{
    char buf[256];
    if (tt_tls_is_ip_literal(name))
        return X509_check_ip_asc(x, tt_tls_bare_name(name, buf, sizeof buf), 0) == 1;
    return X509_check_host(x, name, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
}

/* The file's certificate when it fits: its key, NAME, valid now and for
 * another RENEW_MARGIN_S. */
static int load(const char *path, const char *name, int64_t now, X509 **cert, EVP_PKEY **key)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, no_password, NULL);
    X509 *x = k ? PEM_read_X509(f, NULL, no_password, NULL) : NULL;
    fclose(f);
    time_t t = (time_t)now, later = (time_t)(now + RENEW_MARGIN_S);
    bool ok = x != NULL && X509_check_private_key(x, k) == 1 && names_match(x, name) &&
              X509_cmp_time(X509_get0_notBefore(x), &t) < 0 &&
              X509_cmp_time(X509_get0_notAfter(x), &later) > 0;
    ERR_clear_error();
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(k);
        return -EINVAL;
    }
    *cert = x;
    *key = k;
    return 0;
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *dir)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return -ENAMETOOLONG;
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s == '/' || end) {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return -errno;
            if (end)
                return 0;
            *s = '/';
        }
    }
}

/* Writes KEY and CERT to PATH through a temporary file renamed over it. */
static int store(const char *dir, const char *path, X509 *cert, EVP_PKEY *key)
{
    int rc = make_dirs(dir);
    if (rc < 0)
        return rc;
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = mkstemp(tmp); /* mode 0600: the file holds a private key */
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        rc = -errno;
        close(fd);
        unlink(tmp);
        return rc;
    }
    bool ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1 &&
              PEM_write_X509(f, cert) == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    rc = ok ? 0 : -(errno ? errno : EIO);
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    ERR_clear_error();
    return rc;
}

int tt_selfsigned_get(const char *name, const char *dir, int64_t now, X509 **cert, EVP_PKEY **key,
                      enum tt_selfsigned_origin *origin, char *path, size_t len, const char **why)
{
    *why = NULL;
    path[0] = '\0';
    bool existed = false;
    if (dir != NULL) {
        /* The name as a file name: anything but letters, digits, '.', '-'
         * and '_' (an IPv6 address's colons, a slash) becomes '_'. */
        char safe[256];
        size_t i = 0;
        for (; name[i] && i < sizeof safe - 1; i++) {
            char ch = name[i];
            bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
            safe[i] = keep && !(i == 0 && ch == '.') ? ch : '_';
        }
        safe[i] = '\0';
        if (snprintf(path, len, "%s/selfsigned-%s.pem", dir, safe) >= (int)len) {
            path[0] = '\0';
            *why = "the file name is too long";
        } else if (load(path, name, now, cert, key) == 0) {
            *origin = TT_SELFSIGNED_LOADED;
            return 0;
        } else {
            existed = access(path, F_OK) == 0;
        }
    }
    int rc = tt_selfsigned_make(name, now, cert, key);
    if (rc < 0)
        return rc;
    *origin = TT_SELFSIGNED_UNSAVED;
    if (path[0] != '\0') {
        rc = store(dir, path, *cert, *key);
        if (rc == 0)
            *origin = existed ? TT_SELFSIGNED_RENEWED : TT_SELFSIGNED_NEW;
        else
            *why = strerror(-rc);
    }
    return 0;
}
