#include "copenssl.h"

long copenssl_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
long copenssl_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_max_proto_version(ctx, v); }
long copenssl_ssl_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
int copenssl_sk_x509_num(const STACK_OF(X509) *s) { return sk_X509_num(s); }
X509 *copenssl_sk_x509_value(const STACK_OF(X509) *s, int i) { return sk_X509_value(s, i); }
void copenssl_sk_x509_pop_free(STACK_OF(X509) *s) { sk_X509_pop_free(s, X509_free); }
STACK_OF(X509) *copenssl_sk_x509_new_null(void) { return sk_X509_new_null(); }
int copenssl_sk_x509_push(STACK_OF(X509) *s, X509 *c) { return sk_X509_push(s, c); }
