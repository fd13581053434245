/* test_tls.c: reading the HTTPS certificate and key (server/http/tls.c)
 * where the HTTP tests (tests/http/test_tls.py: missing, empty, junk,
 * password-protected and mismatched files) cannot reach: a file larger
 * than TLS_MAX_FILE, and each allocation failing in turn, which must be a
 * one-line error naming the flag and file, or (the shrinking realloc) no
 * error at all. The pair is made with openssl (as test_tls.py does) in
 * the test's own temporary directory under /tmp, removed afterwards. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http/tls.h"
#include "tests/unit/fault.h"
#include "tests/unit/helpers.h"

static char tmp_dir[64];
static char cert[128], key[128];

static void setup(void)
{
    th_tmpdir_make(tmp_dir, sizeof tmp_dir, "tls");
    snprintf(cert, sizeof cert, "%s/cert.pem", tmp_dir);
    snprintf(key, sizeof key, "%s/key.pem", tmp_dir);
}

static void teardown(void) { th_tmpdir_remove(tmp_dir); }

TestSuite(tls, .init = setup, .fini = teardown);

/* A self-signed P-256 certificate and its unencrypted key at cert, key. */
static void make_pair(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256"
             " -nodes -keyout '%s' -out '%s' -days 2 -subj /CN=127.0.0.1"
             " >/dev/null 2>&1", key, cert);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(tls, a_file_larger_than_tls_max_file_is_refused_by_name)
{
    make_pair();
    /* the real certificate, then padding past the limit: PEM readers
     * would skip the padding, so only the size check refuses it */
    FILE *f = fopen(cert, "ab");
    cr_assert_not_null(f);
    for (unsigned i = 0; i <= TLS_MAX_FILE / 32; i++) /* 59 bytes */
        fputs("# padding padding padding padding padding padding padding\n",
              f);
    cr_assert_eq(fclose(f), 0);

    tls_pem p = {(char *)1, (char *)1};
    mn_err err = {{0}};
    cr_assert_eq(tls_pem_load(&p, cert, key, &err), -1);
    cr_assert_null(p.cert);
    cr_assert_null(p.key);
    char want[256];
    snprintf(want, sizeof want, "--tls-cert %s: cannot read it: larger than"
             " %u bytes", cert, TLS_MAX_FILE);
    cr_assert_str_eq(err.msg, want);
}

static int load(void *ctx)
{
    (void)ctx;
    tls_pem p;
    mn_err err = {{0}};
    int rc = tls_pem_load(&p, cert, key, &err);
    if (rc) {
        cr_assert_null(p.cert);
        cr_assert_null(p.key);
        cr_assert(strstr(err.msg, "out of memory"), "%s", err.msg);
        cr_assert(strstr(err.msg, "--tls-cert") || strstr(err.msg, "--tls-key"),
                  "%s", err.msg);
        return rc;
    }
    /* the PEM text read back whole, whichever buffer it is in */
    cr_assert(strstr(p.cert, "-----BEGIN CERTIFICATE-----"));
    cr_assert(strstr(p.cert, "-----END CERTIFICATE-----\n"));
    cr_assert(strstr(p.key, "PRIVATE KEY-----"));
    tls_pem_free(&p);
    cr_assert_null(p.cert);
    return 0;
}

Test(tls, each_allocation_failing_is_a_clean_error_or_none)
{
    make_pair();
    /* two buffers read, two shrunk: the reads fail, the shrinks fall
     * back to the buffer they were given */
    cr_assert_eq(fault_each(load, NULL), 2);
    tls_pem_free(NULL);
}
