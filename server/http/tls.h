/* tls.h: the certificate and private key that the HTTP daemon serves
 * HTTPS with (libmicrohttpd's own TLS, over GnuTLS), read and checked at
 * start-up: an unreadable file, a file that is not PEM, or a key that does
 * not belong to the certificate is a start-up error naming the file, never
 * a daemon that starts and then fails every handshake.
 *
 * Ownership: a tls_pem owns its two buffers; tls_pem_free wipes the key's
 * before freeing it. */
#ifndef MN_TLS_H
#define MN_TLS_H

#include <stddef.h>

#include "engine/err.h"

/* Bytes a certificate or key file may hold: a chain of a few certificates
 * fits many times over; anything larger is not one. */
#define TLS_MAX_FILE (1u << 20)

typedef struct tls_pem {
    char *cert;     /* the certificate chain, PEM text (leaf first), owned,
                       NUL-terminated, as MHD_OPTION_HTTPS_MEM_CERT takes */
    char *key;      /* its private key, unencrypted PEM (PKCS#1, SEC1 or
                       PKCS#8), owned, NUL-terminated, as
                       MHD_OPTION_HTTPS_MEM_KEY takes */
} tls_pem;

/* Reads cert_path and key_path into *out and checks them with GnuTLS the
 * way libmicrohttpd will load them (gnutls_certificate_set_x509_key_mem2,
 * PEM): the certificate file must hold at least one PEM certificate, the
 * key file one PEM private key without a password, and the key must be
 * the one of the first certificate's public key. 0 with *out filled (free
 * it with tls_pem_free), or -1 with *out zeroed and a one-line reason in
 * err that names the flag and the file at fault (or says that this
 * libmicrohttpd has no TLS, MHD_FEATURE_TLS):
 *   "--tls-cert FILE: cannot read it: <errno text>" (also: empty, larger
 *   than TLS_MAX_FILE), "--tls-cert FILE: no PEM certificate in it
 *   (GnuTLS: ...)", "--tls-key FILE: no unencrypted PEM private key in it
 *   (GnuTLS: ...)", "--tls-key FILE is not the key of the certificate in --tls-cert
 *   FILE". Paths are borrowed. */
int tls_pem_load(tls_pem *out, const char *cert_path, const char *key_path,
                 mn_err *err);

/* Wipes the key and frees both buffers; *p is zeroed. NULL is ignored. */
void tls_pem_free(tls_pem *p);

#endif
