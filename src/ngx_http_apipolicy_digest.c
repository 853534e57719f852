
/*
 * Copyright (C) apipolicy authors
 *
 * SHA-2 and HMAC for the request path through OpenSSL's low-level
 * SHA256_* and SHA512_* functions, the state held by value: an HMAC
 * secret is absorbed once into the states after key ^ ipad and
 * key ^ opad (two blocks a verification saved), and a request copies
 * those states with a structure assignment.
 *
 * Why not EVP: OpenSSL 3.0 allocates the algorithm state on every
 * EVP_MD_CTX_copy_ex() and EVP_DigestInit_ex2() (from 3.5 on a copy into
 * a context of the same digest allocates nothing), and frees and clears
 * it again; measured with callgrind on the full-stack bench scenario,
 * one HS256 verification cost about 1,800 instructions more through
 * EVP (malloc and free, the provider's dispatch, OPENSSL_cleanse) than
 * here, on top of the three SHA-256 blocks (about 6,100).  The low-level
 * functions are deprecated in OpenSSL 3.0 but present in every 3.x
 * release (also when built without the legacy provider), use the same
 * block functions (the CPU's SHA extensions included), and cannot fail;
 * the deprecation warnings are silenced for this file only.
 *
 * Nothing a request leaves on its stack is worth the secret: after
 * ngx_http_apipolicy_hmac_end() the scratch state holds the outer
 * hash's result (the MAC), the inner one the inner hash; a state left
 * between begin and end on an error is cleared by the caller
 * (ngx_http_apipolicy_sha_clear).
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_digest.h"

#include <openssl/crypto.h>


#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif


void
ngx_http_apipolicy_sha_init(ngx_http_apipolicy_sha_t *md, ngx_uint_t sha)
{
    md->sha = sha;

    switch (sha) {

    case NGX_HTTP_APIPOLICY_SHA256:
        SHA256_Init(&md->u.sha256);
        break;

    case NGX_HTTP_APIPOLICY_SHA384:
        SHA384_Init(&md->u.sha512);
        break;

    default:
        SHA512_Init(&md->u.sha512);
    }
}


void
ngx_http_apipolicy_sha_update(ngx_http_apipolicy_sha_t *md,
    const void *data, size_t len)
{
    if (md->sha == NGX_HTTP_APIPOLICY_SHA256) {
        SHA256_Update(&md->u.sha256, data, len);

    } else {
        SHA512_Update(&md->u.sha512, data, len);   /* SHA-384 as well */
    }
}


size_t
ngx_http_apipolicy_sha_final(ngx_http_apipolicy_sha_t *md, u_char *out)
{
    switch (md->sha) {

    case NGX_HTTP_APIPOLICY_SHA256:
        SHA256_Final(out, &md->u.sha256);
        return SHA256_DIGEST_LENGTH;

    case NGX_HTTP_APIPOLICY_SHA384:
        SHA384_Final(out, &md->u.sha512);
        return SHA384_DIGEST_LENGTH;

    default:
        SHA512_Final(out, &md->u.sha512);
        return SHA512_DIGEST_LENGTH;
    }
}


ngx_int_t
ngx_http_apipolicy_sha256(u_char *data, size_t len, u_char *out)
{
    SHA256_CTX  c;

    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);

    return NGX_OK;
}


void
ngx_http_apipolicy_hmac_begin(ngx_http_apipolicy_hmac_t *hmac,
    ngx_http_apipolicy_sha_t *md)
{
    *md = hmac->pad[0];
}


size_t
ngx_http_apipolicy_hmac_end(ngx_http_apipolicy_hmac_t *hmac,
    ngx_http_apipolicy_sha_t *md, u_char *mac)
{
    u_char  inner[SHA512_DIGEST_LENGTH];
    size_t  n;

    n = ngx_http_apipolicy_sha_final(md, inner);

    *md = hmac->pad[1];
    ngx_http_apipolicy_sha_update(md, inner, n);

    return ngx_http_apipolicy_sha_final(md, mac);
}


size_t
ngx_http_apipolicy_hmac(ngx_http_apipolicy_hmac_t *hmac, u_char *data,
    size_t len, u_char *mac)
{
    ngx_http_apipolicy_sha_t  md;

    ngx_http_apipolicy_hmac_begin(hmac, &md);
    ngx_http_apipolicy_sha_update(&md, data, len);

    return ngx_http_apipolicy_hmac_end(hmac, &md, mac);
}


ngx_int_t
ngx_http_apipolicy_digest_feed(void *data, u_char *p, size_t len)
{
    ngx_http_apipolicy_sha_update(data, p, len);

    return NGX_OK;
}
