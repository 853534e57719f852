
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_DIGEST_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_DIGEST_H_INCLUDED_


#include "ngx_http_apipolicy.h"

#include <openssl/evp.h>


#define NGX_HTTP_APIPOLICY_SHA256  0
#define NGX_HTTP_APIPOLICY_SHA384  1
#define NGX_HTTP_APIPOLICY_SHA512  2


/*
 * HMAC (RFC 2104) prepared once for a secret: the digest states after
 * key ^ ipad and key ^ opad, freed with the pool they were made on.
 */
typedef struct {
    EVP_MD_CTX                *pad[2];
} ngx_http_apipolicy_hmac_t;


/*
 * SHA-2 through EVP, each algorithm fetched once per process.  A request
 * hashes in this process's one scratch context: begin, updates (directly
 * with EVP_DigestUpdate() or through the body walker with
 * ngx_http_apipolicy_digest_feed), end, with nothing else hashed in
 * between (nothing here waits for an event).  begin returns NULL on an
 * OpenSSL failure, end NGX_ERROR.
 */
EVP_MD_CTX *ngx_http_apipolicy_sha_begin(ngx_uint_t sha);
ngx_int_t ngx_http_apipolicy_sha_end(EVP_MD_CTX *md, u_char *out);
ngx_int_t ngx_http_apipolicy_sha256(u_char *data, size_t len, u_char *out);

ngx_int_t ngx_http_apipolicy_hmac_key(ngx_pool_t *pool,
    ngx_http_apipolicy_hmac_t *hmac, ngx_uint_t sha, ngx_str_t *secret);
EVP_MD_CTX *ngx_http_apipolicy_hmac_begin(ngx_http_apipolicy_hmac_t *hmac);
ngx_int_t ngx_http_apipolicy_hmac_end(ngx_http_apipolicy_hmac_t *hmac,
    EVP_MD_CTX *md, u_char *mac);
ngx_int_t ngx_http_apipolicy_hmac(ngx_http_apipolicy_hmac_t *hmac,
    u_char *data, size_t len, u_char *mac);

/* an ngx_http_apipolicy_feed_pt: data is the EVP_MD_CTX */
ngx_int_t ngx_http_apipolicy_digest_feed(void *data, u_char *p, size_t len);


#endif /* _NGX_HTTP_APIPOLICY_DIGEST_H_INCLUDED_ */
