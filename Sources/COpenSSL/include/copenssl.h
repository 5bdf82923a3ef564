#ifndef PASSERELLE_COPENSSL_H
#define PASSERELLE_COPENSSL_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/rand.h>
#include <openssl/bio.h>

/* OpenSSL macros that Swift cannot import, as functions. */
long copenssl_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version);
long copenssl_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version);
long copenssl_ssl_set_tlsext_host_name(SSL *ssl, const char *name);
int copenssl_sk_x509_num(const STACK_OF(X509) *stack);
X509 *copenssl_sk_x509_value(const STACK_OF(X509) *stack, int index);
void copenssl_sk_x509_pop_free(STACK_OF(X509) *stack);
STACK_OF(X509) *copenssl_sk_x509_new_null(void);
int copenssl_sk_x509_push(STACK_OF(X509) *stack, X509 *cert);
#endif
