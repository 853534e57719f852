
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_CRYPTO_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_CRYPTO_H_INCLUDED_


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_digest.h"


/* strict base64url (RFC 7515 section 2: no padding, no stray bits) */
extern u_char  ngx_http_apipolicy_crypto_b64u[256];

ngx_int_t ngx_http_apipolicy_crypto_base64url_decode_to(u_char *buf,
    u_char *src, size_t len, ngx_str_t *dst);

/* a group's three bytes are stored as four: the last one to spare */
#define ngx_http_apipolicy_crypto_base64url_room(len)  ((len) / 4 * 3 + 3)

/* into the pool; decode_to() into "buf" of base64url_room(len) bytes */

static ngx_inline ngx_int_t
ngx_http_apipolicy_crypto_base64url_decode(ngx_pool_t *pool, u_char *src,
    size_t len, ngx_str_t *dst)
{
    u_char  *buf;

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(pool, ngx_http_apipolicy_crypto_base64url_room(len));
    if (buf == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_crypto_base64url_decode_to(buf, src, len, dst);
}
ngx_uint_t ngx_http_apipolicy_crypto_base64url_valid(u_char *p, size_t len);

/* "VALUE", "base64:..", "base64url:..", "file:PATH" -> the secret's bytes */
ngx_int_t ngx_http_apipolicy_crypto_secret(ngx_conf_t *cf, ngx_str_t *src,
    ngx_str_t *out);

/*
 * A key file named in the configuration (relative to its directory), read
 * whole into cf->pool, NUL-terminated; at most 1 MiB
 */
ngx_int_t ngx_http_apipolicy_crypto_read_file(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *out);

/*
 * An HMAC secret prepared once (RFC 2104): the hash states after
 * key ^ ipad and key ^ opad, cleared when "pool" is destroyed
 */
ngx_int_t ngx_http_apipolicy_crypto_hmac_key(ngx_pool_t *pool,
    ngx_http_apipolicy_hmac_t *hmac, ngx_uint_t sha, ngx_str_t *secret);

/* 1 when the "len" bytes at "a" and "b" are equal, in constant time */
ngx_uint_t ngx_http_apipolicy_crypto_equal(u_char *a, u_char *b, size_t len);


#endif /* _NGX_HTTP_APIPOLICY_CRYPTO_H_INCLUDED_ */
