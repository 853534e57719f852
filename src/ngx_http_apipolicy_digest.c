
/*
 * Copyright (C) apipolicy authors
 *
 * SHA-2 and HMAC for the request path through OpenSSL 3's EVP interface:
 * the algorithms are fetched once per process (EVP_sha256() and the like
 * would fetch again on every initialisation), an HMAC secret is absorbed
 * once into two prepared contexts, and a request copies the prepared
 * state into the process's one scratch context (EVP_MD_CTX_copy_ex)
 * instead of hashing the padded key again.  OpenSSL 3.0 allocates the
 * copy's algorithm state on every copy and initialisation (from 3.5 on a
 * copy into a context of the same digest allocates nothing); there is no
 * non-deprecated interface that hashes without it.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_digest.h"

#include <openssl/crypto.h>
#include <openssl/err.h>


static const char  *ngx_http_apipolicy_sha_names[] = {
    "SHA256", "SHA384", "SHA512"
};

static EVP_MD      *ngx_http_apipolicy_sha_md[3];
static EVP_MD_CTX  *ngx_http_apipolicy_sha_scratch;


static const EVP_MD *
ngx_http_apipolicy_sha_md_get(ngx_uint_t sha)
{
    if (ngx_http_apipolicy_sha_md[sha] == NULL) {
        ngx_http_apipolicy_sha_md[sha] =
                  EVP_MD_fetch(NULL, ngx_http_apipolicy_sha_names[sha], NULL);
    }

    return ngx_http_apipolicy_sha_md[sha];
}


static EVP_MD_CTX *
ngx_http_apipolicy_sha_scratch_get(void)
{
    if (ngx_http_apipolicy_sha_scratch == NULL) {
        ngx_http_apipolicy_sha_scratch = EVP_MD_CTX_new();
    }

    return ngx_http_apipolicy_sha_scratch;
}


EVP_MD_CTX *
ngx_http_apipolicy_sha_begin(ngx_uint_t sha)
{
    EVP_MD_CTX    *md;
    const EVP_MD  *type;

    type = ngx_http_apipolicy_sha_md_get(sha);
    md = ngx_http_apipolicy_sha_scratch_get();

    if (type == NULL || md == NULL || EVP_DigestInit_ex2(md, type, NULL) != 1)
    {
        ERR_clear_error();
        return NULL;
    }

    return md;
}


ngx_int_t
ngx_http_apipolicy_sha_end(EVP_MD_CTX *md, u_char *out)
{
    if (EVP_DigestFinal_ex(md, out, NULL) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_sha256(u_char *data, size_t len, u_char *out)
{
    EVP_MD_CTX  *md;

    md = ngx_http_apipolicy_sha_begin(NGX_HTTP_APIPOLICY_SHA256);

    if (md == NULL || EVP_DigestUpdate(md, data, len) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_sha_end(md, out);
}


static void
ngx_http_apipolicy_hmac_cleanup(void *data)
{
    ngx_http_apipolicy_hmac_t  *hmac = data;

    EVP_MD_CTX_free(hmac->pad[0]);        /* the state is cleared on free */
    EVP_MD_CTX_free(hmac->pad[1]);
}


ngx_int_t
ngx_http_apipolicy_hmac_key(ngx_pool_t *pool, ngx_http_apipolicy_hmac_t *hmac,
    ngx_uint_t sha, ngx_str_t *secret)
{
    u_char               k[128], pad[128];
    size_t               block;
    ngx_int_t            rc;
    ngx_uint_t           i, n;
    EVP_MD_CTX          *md;
    const EVP_MD        *type;
    ngx_pool_cleanup_t  *cln;

    type = ngx_http_apipolicy_sha_md_get(sha);
    if (type == NULL) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    hmac->pad[0] = EVP_MD_CTX_new();
    hmac->pad[1] = EVP_MD_CTX_new();

    cln->handler = ngx_http_apipolicy_hmac_cleanup;
    cln->data = hmac;

    if (hmac->pad[0] == NULL || hmac->pad[1] == NULL) {
        return NGX_ERROR;
    }

    block = (size_t) EVP_MD_get_block_size(type);

    /* a key longer than a block is hashed first (RFC 2104 section 2) */

    ngx_memzero(k, sizeof(k));
    rc = NGX_ERROR;

    if (secret->len > block) {
        md = hmac->pad[0];

        if (EVP_DigestInit_ex2(md, type, NULL) != 1
            || EVP_DigestUpdate(md, secret->data, secret->len) != 1
            || EVP_DigestFinal_ex(md, k, NULL) != 1)
        {
            goto done;
        }

    } else {
        ngx_memcpy(k, secret->data, secret->len);
    }

    for (n = 0; n < 2; n++) {

        for (i = 0; i < block; i++) {
            pad[i] = k[i] ^ (n == 0 ? 0x36 : 0x5c);
        }

        if (EVP_DigestInit_ex2(hmac->pad[n], type, NULL) != 1
            || EVP_DigestUpdate(hmac->pad[n], pad, block) != 1)
        {
            goto done;
        }
    }

    rc = NGX_OK;

done:

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
    ERR_clear_error();

    return rc;
}


EVP_MD_CTX *
ngx_http_apipolicy_hmac_begin(ngx_http_apipolicy_hmac_t *hmac)
{
    EVP_MD_CTX  *md;

    md = ngx_http_apipolicy_sha_scratch_get();

    if (md == NULL || EVP_MD_CTX_copy_ex(md, hmac->pad[0]) != 1) {
        ERR_clear_error();
        return NULL;
    }

    return md;
}


ngx_int_t
ngx_http_apipolicy_hmac_end(ngx_http_apipolicy_hmac_t *hmac, EVP_MD_CTX *md,
    u_char *mac)
{
    u_char        inner[EVP_MAX_MD_SIZE];
    unsigned int  n;
    ngx_int_t     rc;

    /*
     * the copy frees (and clears) the inner state; what stays in the
     * scratch context is the outer hash after its last block
     */

    if (EVP_DigestFinal_ex(md, inner, &n) == 1
        && EVP_MD_CTX_copy_ex(md, hmac->pad[1]) == 1
        && EVP_DigestUpdate(md, inner, n) == 1
        && EVP_DigestFinal_ex(md, mac, NULL) == 1)
    {
        rc = NGX_OK;

    } else {
        EVP_MD_CTX_reset(md);
        ERR_clear_error();
        rc = NGX_ERROR;
    }

    OPENSSL_cleanse(inner, sizeof(inner));

    return rc;
}


ngx_int_t
ngx_http_apipolicy_hmac(ngx_http_apipolicy_hmac_t *hmac, u_char *data,
    size_t len, u_char *mac)
{
    EVP_MD_CTX  *md;

    md = ngx_http_apipolicy_hmac_begin(hmac);
    if (md == NULL) {
        return NGX_ERROR;
    }

    if (EVP_DigestUpdate(md, data, len) != 1) {
        EVP_MD_CTX_reset(md);
        ERR_clear_error();
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_hmac_end(hmac, md, mac);
}


ngx_int_t
ngx_http_apipolicy_digest_feed(void *data, u_char *p, size_t len)
{
    if (EVP_DigestUpdate(data, p, len) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    return NGX_OK;
}
