
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_DIGEST_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_DIGEST_H_INCLUDED_


#include "ngx_http_apipolicy.h"

#include <openssl/evp.h>
#include <openssl/sha.h>


#define NGX_HTTP_APIPOLICY_SHA256  0
#define NGX_HTTP_APIPOLICY_SHA384  1
#define NGX_HTTP_APIPOLICY_SHA512  2


/*
 * A SHA-2 state held by value (on the stack, in a request's or a key's
 * memory): nothing to allocate or free, a copy is a structure
 * assignment.
 */
typedef struct {
    ngx_uint_t                 sha;
    union {
        SHA256_CTX             sha256;
        SHA512_CTX             sha512;    /* SHA-384 as well */
    } u;
} ngx_http_apipolicy_sha_t;


/*
 * HMAC (RFC 2104) prepared once for a secret: the hash states after
 * key ^ ipad and key ^ opad; cleared when the pool they were made for is
 * destroyed.
 */
typedef struct {
    ngx_http_apipolicy_sha_t   pad[2];
} ngx_http_apipolicy_hmac_t;


/*
 * SHA-2: init, updates (directly or through the body walker with
 * ngx_http_apipolicy_digest_feed), final; none of them can fail.  final
 * returns the digest's length; ngx_http_apipolicy_sha256() NGX_OK.
 */
void ngx_http_apipolicy_sha_init(ngx_http_apipolicy_sha_t *md,
    ngx_uint_t sha);
void ngx_http_apipolicy_sha_update(ngx_http_apipolicy_sha_t *md,
    const void *data, size_t len);
size_t ngx_http_apipolicy_sha_final(ngx_http_apipolicy_sha_t *md,
    u_char *out);
ngx_int_t ngx_http_apipolicy_sha256(u_char *data, size_t len, u_char *out);

/*
 * SHA-256 of a short message (up to NGX_HTTP_APIPOLICY_SHA256_SHORT
 * bytes) written at the start of "block", which has room for two blocks:
 * padded there and given to the block function once or twice, without
 * SHA256_Init(), _Update() and _Final() (about 200 instructions a hash)
 */
#define NGX_HTTP_APIPOLICY_SHA256_SHORT  (2 * 64 - 9)

void ngx_http_apipolicy_sha256_short(u_char *block, size_t len, u_char *out);

void ngx_http_apipolicy_hmac_begin(ngx_http_apipolicy_hmac_t *hmac,
    ngx_http_apipolicy_sha_t *md);
size_t ngx_http_apipolicy_hmac_end(ngx_http_apipolicy_hmac_t *hmac,
    ngx_http_apipolicy_sha_t *md, u_char *mac);
size_t ngx_http_apipolicy_hmac(ngx_http_apipolicy_hmac_t *hmac,
    u_char *data, size_t len, u_char *mac);

/* clears a state left unfinished (an error between begin and end) */
#define ngx_http_apipolicy_sha_clear(md)                                     \
    OPENSSL_cleanse(md, sizeof(ngx_http_apipolicy_sha_t))

/* an ngx_http_apipolicy_feed_pt: data is the ngx_http_apipolicy_sha_t */
ngx_int_t ngx_http_apipolicy_digest_feed(void *data, u_char *p, size_t len);


#endif /* _NGX_HTTP_APIPOLICY_DIGEST_H_INCLUDED_ */
