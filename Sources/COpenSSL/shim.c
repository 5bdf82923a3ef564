#include "copenssl.h"

long copenssl_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
long copenssl_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_max_proto_version(ctx, v); }
long copenssl_ssl_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
int copenssl_sk_x509_num(const STACK_OF(X509) *s) { return sk_X509_num(s); }
X509 *copenssl_sk_x509_value(const STACK_OF(X509) *s, int i) { return sk_X509_value(s, i); }
void copenssl_sk_x509_pop_free(STACK_OF(X509) *s) { sk_X509_pop_free(s, X509_free); }
STACK_OF(X509) *copenssl_sk_x509_new_null(void) { return sk_X509_new_null(); }
int copenssl_sk_x509_push(STACK_OF(X509) *s, X509 *c) { return sk_X509_push(s, c); }
void copenssl_sk_x509_free(STACK_OF(X509) *s) { sk_X509_free(s); }
void copenssl_free(void *p) { OPENSSL_free(p); }
long copenssl_bio_get_mem_data(BIO *b, char **d) { return BIO_get_mem_data(b, d); }

void *copenssl_x509_get_ext_d2i(const X509 *x, int nid) { return X509_get_ext_d2i(x, nid, NULL, NULL); }
int copenssl_sk_general_name_num(const GENERAL_NAMES *n) { return sk_GENERAL_NAME_num(n); }
int copenssl_general_name_at(const GENERAL_NAMES *n, int i, const unsigned char **data, int *length) {
    int type = 0;
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(n, i);
    void *value = GENERAL_NAME_get0_value(g, &type);
    *data = NULL; *length = 0;
    if (type == GEN_DNS || type == GEN_EMAIL || type == GEN_URI || type == GEN_IPADD) {
        const ASN1_STRING *s = value;
        *data = ASN1_STRING_get0_data(s);
        *length = ASN1_STRING_length(s);
    }
    return type;
}
void copenssl_general_names_free(GENERAL_NAMES *n) { GENERAL_NAMES_free(n); }

int copenssl_sk_asn1_object_num(const EXTENDED_KEY_USAGE *e) { return sk_ASN1_OBJECT_num(e); }
int copenssl_eku_oid_at(const EXTENDED_KEY_USAGE *e, int i, char *buffer, int size) {
    return OBJ_obj2txt(buffer, size, sk_ASN1_OBJECT_value(e, i), 1);
}
void copenssl_eku_free(EXTENDED_KEY_USAGE *e) { EXTENDED_KEY_USAGE_free(e); }

int copenssl_revoked_reason(const X509_REVOKED *r) {
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
    if (reason == NULL) return -1;
    long code = ASN1_ENUMERATED_get(reason);
    ASN1_ENUMERATED_free(reason);
    return (int)code;
}

int copenssl_x509_name_print_rfc2253(BIO *bio, const X509_NAME *name) {
    return X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
}

long copenssl_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *cert) { return SSL_CTX_add1_chain_cert(ctx, cert); }
void copenssl_ssl_ctx_ignore_unexpected_eof(SSL_CTX *ctx) { SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF); }
