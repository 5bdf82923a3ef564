#ifndef PASSERELLE_COPENSSL_H
#define PASSERELLE_COPENSSL_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>
#include <openssl/rand.h>
#include <openssl/bio.h>
#include <openssl/provider.h>
#include <openssl/cms.h>

/* OpenSSL macros that Swift cannot import, as functions. */
long copenssl_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version);
long copenssl_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version);
long copenssl_ssl_set_tlsext_host_name(SSL *ssl, const char *name);
int copenssl_sk_x509_num(const STACK_OF(X509) *stack);
X509 *copenssl_sk_x509_value(const STACK_OF(X509) *stack, int index);
void copenssl_sk_x509_pop_free(STACK_OF(X509) *stack);
STACK_OF(X509) *copenssl_sk_x509_new_null(void);
int copenssl_sk_x509_push(STACK_OF(X509) *stack, X509 *cert);
void copenssl_sk_x509_free(STACK_OF(X509) *stack);
void copenssl_free(void *pointer);
long copenssl_bio_get_mem_data(BIO *bio, char **data);
/* Subject alternative names: count, then type (GEN_*) and the string/octet value of entry i. */
void *copenssl_x509_get_ext_d2i(const X509 *cert, int nid);
int copenssl_sk_general_name_num(const GENERAL_NAMES *names);
int copenssl_general_name_at(const GENERAL_NAMES *names, int index, const unsigned char **data, int *length);
void copenssl_general_names_free(GENERAL_NAMES *names);
/* Extended key usage: number of OIDs, OID i as a NID and as dotted text. */
int copenssl_sk_asn1_object_num(const EXTENDED_KEY_USAGE *eku);
int copenssl_eku_oid_at(const EXTENDED_KEY_USAGE *eku, int index, char *buffer, int size);
void copenssl_eku_free(EXTENDED_KEY_USAGE *eku);
/* CRL revocation reason (CRL_REASON_* code) of a revoked entry, or -1 when absent. */
int copenssl_revoked_reason(const X509_REVOKED *revoked);
/* RFC 2253 form of a name, UTF-8 kept as is (XN_FLAG_RFC2253 is a composite macro). */
int copenssl_x509_name_print_rfc2253(BIO *bio, const X509_NAME *name);
/* TLS: extra chain certificate, tolerate peers that close without close_notify. */
long copenssl_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *cert);
void copenssl_ssl_ctx_ignore_unexpected_eof(SSL_CTX *ctx);
#endif
