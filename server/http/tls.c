/* tls.c: reads and checks the HTTPS certificate and key (see tls.h). */
#include "server/http/tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the file at path (given by flag) into a new NUL-terminated buffer
 * (*out, owned by the caller). 0, or -1 with the reason in err. */
static int read_pem_file(const char *flag, const char *path, char **out,
                         mn_err *err)
{
    int rc = -1;
    char *buf = NULL;
    size_t n = 0;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        mn_errf(err, "%s %s: cannot read it: %s", flag, path, strerror(errno));
        goto done;
    }
    buf = malloc(TLS_MAX_FILE + 1);
    if (!buf) {
        mn_errf(err, "%s %s: out of memory", flag, path);
        goto done;
    }
    n = fread(buf, 1, TLS_MAX_FILE + 1, f);
    if (ferror(f)) {
        mn_errf(err, "%s %s: cannot read it: %s", flag, path, strerror(errno));
        goto done;
    }
    if (n > TLS_MAX_FILE) {
        mn_errf(err, "%s %s: cannot read it: larger than %u bytes", flag,
                path, TLS_MAX_FILE);
        goto done;
    }
    if (n == 0) {
        mn_errf(err, "%s %s: cannot read it: the file is empty", flag, path);
        goto done;
    }
    buf[n] = 0;
    char *fit = realloc(buf, n + 1);
    *out = fit ? fit : buf;
    buf = NULL;
    rc = 0;
done:
    if (buf) {
        explicit_bzero(buf, n);  /* it may hold a key */
        free(buf);
    }
    if (f) fclose(f);
    return rc;
}

static gnutls_datum_t datum(char *pem)
{
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
    return d;
}

/* Checks that cert holds a PEM certificate, key a PEM private key, and
 * that the key belongs to the first certificate: the last with the call
 * libmicrohttpd makes when its daemon starts. 0, or -1 with the reason in
 * err. */
static int check_pair(char *cert, char *key, const char *cert_path,
                      const char *key_path, mn_err *err)
{
    int rc = -1;
    gnutls_x509_crt_t *crts = NULL;
    unsigned n_crts = 0;
    gnutls_x509_privkey_t pk = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_datum_t c = datum(cert), k = datum(key);

    int g = gnutls_x509_crt_list_import2(&crts, &n_crts, &c,
                                         GNUTLS_X509_FMT_PEM, 0);
    if (g < 0 || n_crts == 0) {
        mn_errf(err, "--tls-cert %s: no PEM certificate in it (GnuTLS: %s)",
                cert_path, g < 0 ? gnutls_strerror(g) : "none found");
        goto done;
    }
    if ((g = gnutls_x509_privkey_init(&pk)) < 0 ||
        (g = gnutls_x509_privkey_import2(pk, &k, GNUTLS_X509_FMT_PEM, NULL,
                                         0)) < 0) {
        mn_errf(err, "--tls-key %s: no unencrypted PEM private key in it "
                "(GnuTLS: %s)", key_path, gnutls_strerror(g));
        goto done;
    }
    if ((g = gnutls_certificate_allocate_credentials(&cred)) < 0) {
        mn_errf(err, "GnuTLS: %s", gnutls_strerror(g));
        goto done;
    }
    g = gnutls_certificate_set_x509_key_mem2(cred, &c, &k,
                                             GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
        mn_errf(err, "--tls-key %s is not the key of the certificate in "
                "--tls-cert %s", key_path, cert_path);
        goto done;
    }
    if (g < 0) {
        mn_errf(err, "--tls-cert %s with --tls-key %s: GnuTLS cannot use "
                "them: %s", cert_path, key_path, gnutls_strerror(g));
        goto done;
    }
    rc = 0;
done:
    if (cred) gnutls_certificate_free_credentials(cred);
    if (pk) gnutls_x509_privkey_deinit(pk);
    for (unsigned i = 0; i < n_crts; i++) gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    return rc;
}

int tls_pem_load(tls_pem *out, const char *cert_path, const char *key_path,
                 mn_err *err)
{
    int rc = -1;
    tls_pem p = {NULL, NULL};
    memset(out, 0, sizeof *out);
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        mn_errf(err, "--tls-cert: this libmicrohttpd is built without TLS "
                "(MHD_FEATURE_TLS): it cannot serve HTTPS");
        goto done;
    }
    if (read_pem_file("--tls-cert", cert_path, &p.cert, err) ||
        read_pem_file("--tls-key", key_path, &p.key, err) ||
        check_pair(p.cert, p.key, cert_path, key_path, err))
        goto done;
    *out = p;
    p.cert = p.key = NULL;
    rc = 0;
done:
    tls_pem_free(&p);
    return rc;
}

void tls_pem_free(tls_pem *p)
{
    if (!p) return;
    if (p->key) {
        /* explicit_bzero: a plain memset before free may be optimised away */
        explicit_bzero(p->key, strlen(p->key));
        free(p->key);
    }
    free(p->cert);
    p->cert = p->key = NULL;
}
