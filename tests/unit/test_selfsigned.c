/* Tests of the kept self-signed certificate: made once and read back at
 * later starts; replaced when it expires within a day, is for another
 * name, or the file is damaged; never saved where it cannot be, and then
 * made anew each time. Times are passed in, so expiry needs no waiting. */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/selfsigned.h"
#include "core/tlsctx.h"

#define T0 1800000000 /* 2027-01-15 */
#define DAY 86400

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/tt-selfsigned-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Gets the certificate for NAME at NOW from DIR; returns its origin and
 * its fingerprint in FP. */
static int get(const char *name, const char *d, int64_t now, char fp[TT_TLS_FP_TEXT])
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    enum tt_selfsigned_origin origin = 0;
    char path[PATH_MAX];
    const char *why = NULL;
    cr_assert_eq(tt_selfsigned_get(name, d, now, &x, &k, &origin, path, sizeof path, &why), 0);
    cr_assert_eq(X509_check_private_key(x, k), 1);
    cr_assert_eq(tt_tls_cert_fingerprint(x, NULL, fp), 0);
    if (origin == TT_SELFSIGNED_UNSAVED && d != NULL)
        cr_assert(why != NULL && why[0] != '\0');
    X509_free(x);
    EVP_PKEY_free(k);
    return (int)origin;
}

Test(selfsigned, kept_until_a_day_before_it_expires, .init = make_dir, .fini = remove_dir)
{
    char a[TT_TLS_FP_TEXT], b[TT_TLS_FP_TEXT];
    cr_assert_eq(get("tunnel.example", dir, T0, a), TT_SELFSIGNED_NEW);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/selfsigned-tunnel.example.pem", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "the file holds a private key");

    cr_assert_eq(get("tunnel.example", dir, T0 + 1, b), TT_SELFSIGNED_LOADED);
    cr_assert_str_eq(a, b);
    cr_assert_eq(get("tunnel.example", dir, T0 + 363 * DAY, b), TT_SELFSIGNED_LOADED);
    cr_assert_str_eq(a, b);
    /* Within a day of its end: replaced, and the new one kept. */
    cr_assert_eq(get("tunnel.example", dir, T0 + 364 * DAY + 1, b), TT_SELFSIGNED_RENEWED);
    cr_assert_str_neq(a, b);
    cr_assert_eq(get("tunnel.example", dir, T0 + 365 * DAY, a), TT_SELFSIGNED_LOADED);
    cr_assert_str_eq(a, b);
    /* A clock set back before it was made: not valid yet, replaced. */
    cr_assert_eq(get("tunnel.example", dir, T0, a), TT_SELFSIGNED_RENEWED);
    cr_assert_str_neq(a, b);
}

Test(selfsigned, one_file_per_name, .init = make_dir, .fini = remove_dir)
{
    char a[TT_TLS_FP_TEXT], b[TT_TLS_FP_TEXT], c[TT_TLS_FP_TEXT];
    cr_assert_eq(get("a.example", dir, T0, a), TT_SELFSIGNED_NEW);
    cr_assert_eq(get("192.0.2.7", dir, T0, b), TT_SELFSIGNED_NEW);
    cr_assert_eq(get("[2001:db8::1]", dir, T0, c), TT_SELFSIGNED_NEW);
    cr_assert_eq(get("a.example", dir, T0, b), TT_SELFSIGNED_LOADED);
    cr_assert_str_eq(a, b);
    cr_assert_eq(get("[2001:db8::1]", dir, T0, b), TT_SELFSIGNED_LOADED);
    cr_assert_str_eq(c, b);
    /* A file that names an address as a file name cannot (colons). */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/selfsigned-_2001_db8__1_.pem", dir);
    cr_assert_eq(access(path, F_OK), 0);
}

Test(selfsigned, damaged_or_foreign_files_are_replaced, .init = make_dir, .fini = remove_dir)
{
    char a[TT_TLS_FP_TEXT], b[TT_TLS_FP_TEXT];
    char path[PATH_MAX], other[PATH_MAX];
    snprintf(path, sizeof path, "%s/selfsigned-b.example.pem", dir);
    snprintf(other, sizeof other, "%s/selfsigned-c.example.pem", dir);
    /* Another name's certificate under this name's file. */
    cr_assert_eq(get("c.example", dir, T0, a), TT_SELFSIGNED_NEW);
    cr_assert_eq(rename(other, path), 0);
    cr_assert_eq(get("b.example", dir, T0, b), TT_SELFSIGNED_RENEWED);
    cr_assert_str_neq(a, b);
    /* Garbage, and a file cut in the middle. */
    FILE *f = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64\n", f);
    fclose(f);
    cr_assert_eq(get("b.example", dir, T0, a), TT_SELFSIGNED_RENEWED);
    cr_assert_eq(truncate(path, 300), 0);
    cr_assert_eq(get("b.example", dir, T0, b), TT_SELFSIGNED_RENEWED);
    cr_assert_str_neq(a, b);
    cr_assert_eq(get("b.example", dir, T0, a), TT_SELFSIGNED_LOADED);
    cr_assert_str_eq(a, b);
}

Test(selfsigned, unsaved_when_it_cannot_be_kept, .init = make_dir, .fini = remove_dir)
{
    char a[TT_TLS_FP_TEXT], b[TT_TLS_FP_TEXT];
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%s/a-file", dir);
    FILE *f = fopen(file, "w");
    fclose(f);
    /* The state directory is a file: each start makes a new one. */
    cr_assert_eq(get("tunnel.example", file, T0, a), TT_SELFSIGNED_UNSAVED);
    cr_assert_eq(get("tunnel.example", file, T0, b), TT_SELFSIGNED_UNSAVED);
    cr_assert_str_neq(a, b);
    /* No directory at all. */
    cr_assert_eq(get("tunnel.example", NULL, T0, a), TT_SELFSIGNED_UNSAVED);
    /* A directory that does not exist yet is made, parents included. */
    char deep[PATH_MAX];
    snprintf(deep, sizeof deep, "%s/x/y/tt", dir);
    cr_assert_eq(get("tunnel.example", deep, T0, a), TT_SELFSIGNED_NEW);
    struct stat st;
    cr_assert_eq(stat(deep, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
}

Test(selfsigned, state_directory_from_the_environment)
{
    char buf[PATH_MAX];
    setenv("TT_STATE_DIR", "/srv/tt-state", 1);
    setenv("STATE_DIRECTORY", "/var/lib/tt-unit:/var/lib/other", 1);
    setenv("XDG_STATE_HOME", "/home/u/.state", 1);
    cr_assert_str_eq(tt_selfsigned_dir(buf, sizeof buf), "/srv/tt-state");
    unsetenv("TT_STATE_DIR");
    cr_assert_str_eq(tt_selfsigned_dir(buf, sizeof buf), "/var/lib/tt-unit");
    unsetenv("STATE_DIRECTORY");
    cr_assert_str_eq(tt_selfsigned_dir(buf, sizeof buf), "/home/u/.state/tt");
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/u", 1);
    cr_assert_str_eq(tt_selfsigned_dir(buf, sizeof buf),
                     geteuid() == 0 ? "/var/lib/tt" : "/home/u/.local/state/tt");
    cr_assert_null(tt_selfsigned_dir(buf, 4), "a buffer too small names nothing");
}
