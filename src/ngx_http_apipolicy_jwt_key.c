
/*
 * Copyright (C) apipolicy authors
 *
 * JWT keys and signatures: PEM and JWK parsing into EVP_PKEY (once, on a
 * pool), strict base64url, and JWS verification with OpenSSL for
 * HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512, EdDSA and
 * Ed25519 (RFC 9864).
 * Nothing here looks at a request; ngx_http_apipolicy_jwt.c does.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_jwt_key.h"
#include "ngx_http_apipolicy_crypto.h"
#include "ngx_http_apipolicy_digest.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>


#if (OPENSSL_VERSION_NUMBER < 0x30000000L)
#error apipolicy needs OpenSSL 3.0 or newer
#endif


#define NGX_HTTP_APIPOLICY_JWT_RSA_MIN_BITS  2048

#define NGX_HTTP_APIPOLICY_JWT_HS  (NGX_HTTP_APIPOLICY_JWT_HS256            \
                                    |NGX_HTTP_APIPOLICY_JWT_HS384           \
                                    |NGX_HTTP_APIPOLICY_JWT_HS512)
#define NGX_HTTP_APIPOLICY_JWT_RS  (NGX_HTTP_APIPOLICY_JWT_RS256            \
                                    |NGX_HTTP_APIPOLICY_JWT_RS384           \
                                    |NGX_HTTP_APIPOLICY_JWT_RS512)
#define NGX_HTTP_APIPOLICY_JWT_PS  (NGX_HTTP_APIPOLICY_JWT_PS256            \
                                    |NGX_HTTP_APIPOLICY_JWT_PS384           \
                                    |NGX_HTTP_APIPOLICY_JWT_PS512)
#define NGX_HTTP_APIPOLICY_JWT_OKP_ALGS  (NGX_HTTP_APIPOLICY_JWT_EDDSA      \
                                          |NGX_HTTP_APIPOLICY_JWT_ED25519)


/*
 * What verification needs of a key, prepared once when the key is
 * parsed: HMAC-SHA-2 inner and outer states after the padded key, and
 * for RSA and EC keys one EVP_PKEY_CTX per algorithm, initialised for
 * verification with its padding and digest.  A request then hashes the
 * signing input and calls EVP_PKEY_verify(): no algorithm fetch.  The
 * contexts are scratch state of this process (each worker has its own
 * copy after fork()); they hold no request data between calls.
 */
typedef struct {
    ngx_http_apipolicy_hmac_t  hs[3];     /* HS256, HS384, HS512 */
    EVP_PKEY_CTX              *pctx[NGX_HTTP_APIPOLICY_JWT_NALGS];
                                          /* by algorithm bit */
} ngx_http_apipolicy_jwt_fast_t;


typedef struct {
    ngx_str_t                  name;
    ngx_uint_t                 alg;
    ngx_uint_t                 kty;
    const EVP_MD            *(*md)(void);
    size_t                     size;      /* HS: minimum secret length;
                                             ES: bytes per coordinate */
} ngx_http_apipolicy_jwt_alg_t;


static ngx_int_t ngx_http_apipolicy_jwt_key_from_pkey(ngx_pool_t *pool,
    EVP_PKEY *pkey, ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err);
static ngx_int_t ngx_http_apipolicy_jwt_key_classify(ngx_pool_t *pool,
    EVP_PKEY *pkey, ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err);
static ngx_int_t ngx_http_apipolicy_jwt_key_prepare(ngx_pool_t *pool,
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err);
static void ngx_http_apipolicy_jwt_fast_cleanup(void *data);
static ngx_uint_t ngx_http_apipolicy_jwt_alg_index(ngx_uint_t alg);
static ngx_int_t ngx_http_apipolicy_jwt_jwk_parse(ngx_pool_t *pool,
    json_t *jwk, ngx_uint_t alg, ngx_http_apipolicy_jwt_key_t *key,
    ngx_str_t *err);
static EVP_PKEY *ngx_http_apipolicy_jwt_jwk_rsa(ngx_pool_t *pool,
    json_t *jwk, ngx_str_t *err);
static EVP_PKEY *ngx_http_apipolicy_jwt_jwk_ec(ngx_pool_t *pool,
    json_t *jwk, ngx_str_t *err);
static EVP_PKEY *ngx_http_apipolicy_jwt_jwk_okp(ngx_pool_t *pool,
    json_t *jwk, ngx_str_t *err);
static ngx_int_t ngx_http_apipolicy_jwt_ec_der(
    ngx_http_apipolicy_jwt_alg_t *a, ngx_str_t *sig, u_char *der,
    size_t size, size_t *len);
static ngx_int_t ngx_http_apipolicy_jwt_key_verify_evp(
    ngx_http_apipolicy_jwt_key_t *key, ngx_http_apipolicy_jwt_alg_t *a,
    ngx_str_t *data, const u_char *s, size_t siglen, ngx_log_t *log);
static ngx_int_t ngx_http_apipolicy_jwt_jwk_usage(ngx_pool_t *pool,
    json_t *jwk, ngx_str_t *err);
static ngx_int_t ngx_http_apipolicy_jwt_jwk_alg_kid(ngx_pool_t *pool,
    json_t *jwk, ngx_uint_t *jalg, ngx_str_t *kid, ngx_str_t *err);
static ngx_int_t ngx_http_apipolicy_jwt_jwk_material(ngx_pool_t *pool,
    json_t *jwk, const char *kty, ngx_http_apipolicy_jwt_key_t *key,
    ngx_str_t *err);
static ngx_int_t ngx_http_apipolicy_jwt_jwk_member(ngx_pool_t *pool,
    json_t *jwk, const char *name, ngx_str_t *out, ngx_str_t *err);
static ngx_int_t ngx_http_apipolicy_jwt_secret_algs(
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err, ngx_pool_t *pool);
static ngx_int_t ngx_http_apipolicy_jwt_pkey_cleanup_add(ngx_pool_t *pool,
    EVP_PKEY *pkey);
static void ngx_http_apipolicy_jwt_pkey_cleanup(void *data);
static void ngx_http_apipolicy_jwt_key_error(ngx_pool_t *pool,
    ngx_str_t *err, const char *fmt, ...);
static ngx_http_apipolicy_jwt_alg_t *ngx_http_apipolicy_jwt_alg_get(
    ngx_uint_t alg);


static ngx_http_apipolicy_jwt_alg_t  ngx_http_apipolicy_jwt_algs[] = {
    { ngx_string("HS256"), NGX_HTTP_APIPOLICY_JWT_HS256,
      NGX_HTTP_APIPOLICY_JWT_KTY_OCT, EVP_sha256, 32 },
    { ngx_string("HS384"), NGX_HTTP_APIPOLICY_JWT_HS384,
      NGX_HTTP_APIPOLICY_JWT_KTY_OCT, EVP_sha384, 48 },
    { ngx_string("HS512"), NGX_HTTP_APIPOLICY_JWT_HS512,
      NGX_HTTP_APIPOLICY_JWT_KTY_OCT, EVP_sha512, 64 },
    { ngx_string("RS256"), NGX_HTTP_APIPOLICY_JWT_RS256,
      NGX_HTTP_APIPOLICY_JWT_KTY_RSA, EVP_sha256, 0 },
    { ngx_string("RS384"), NGX_HTTP_APIPOLICY_JWT_RS384,
      NGX_HTTP_APIPOLICY_JWT_KTY_RSA, EVP_sha384, 0 },
    { ngx_string("RS512"), NGX_HTTP_APIPOLICY_JWT_RS512,
      NGX_HTTP_APIPOLICY_JWT_KTY_RSA, EVP_sha512, 0 },
    { ngx_string("PS256"), NGX_HTTP_APIPOLICY_JWT_PS256,
      NGX_HTTP_APIPOLICY_JWT_KTY_RSA, EVP_sha256, 0 },
    { ngx_string("PS384"), NGX_HTTP_APIPOLICY_JWT_PS384,
      NGX_HTTP_APIPOLICY_JWT_KTY_RSA, EVP_sha384, 0 },
    { ngx_string("PS512"), NGX_HTTP_APIPOLICY_JWT_PS512,
      NGX_HTTP_APIPOLICY_JWT_KTY_RSA, EVP_sha512, 0 },
    { ngx_string("ES256"), NGX_HTTP_APIPOLICY_JWT_ES256,
      NGX_HTTP_APIPOLICY_JWT_KTY_EC, EVP_sha256, 32 },
    { ngx_string("ES384"), NGX_HTTP_APIPOLICY_JWT_ES384,
      NGX_HTTP_APIPOLICY_JWT_KTY_EC, EVP_sha384, 48 },
    { ngx_string("ES512"), NGX_HTTP_APIPOLICY_JWT_ES512,
      NGX_HTTP_APIPOLICY_JWT_KTY_EC, EVP_sha512, 66 },
    { ngx_string("EdDSA"), NGX_HTTP_APIPOLICY_JWT_EDDSA,
      NGX_HTTP_APIPOLICY_JWT_KTY_OKP, NULL, 0 },
    { ngx_string("Ed25519"), NGX_HTTP_APIPOLICY_JWT_ED25519,
      NGX_HTTP_APIPOLICY_JWT_KTY_OKP, NULL, 0 },
    { ngx_null_string, 0, 0, NULL, 0 }
};


/* ---- algorithms ------------------------------------------------------ */

ngx_uint_t
ngx_http_apipolicy_jwt_alg_parse(u_char *name, size_t len)
{
    ngx_http_apipolicy_jwt_alg_t  *a;

    /* "alg" values are case-sensitive (RFC 7515 section 4.1.1) */

    for (a = ngx_http_apipolicy_jwt_algs; a->alg; a++) {
        if (a->name.len == len && ngx_strncmp(a->name.data, name, len) == 0) {
            return a->alg;
        }
    }

    return 0;
}


static ngx_http_apipolicy_jwt_alg_t *
ngx_http_apipolicy_jwt_alg_get(ngx_uint_t alg)
{
    ngx_http_apipolicy_jwt_alg_t  *a;

    for (a = ngx_http_apipolicy_jwt_algs; a->alg; a++) {
        if (a->alg == alg) {
            return a;
        }
    }

    return NULL;
}


ngx_str_t *
ngx_http_apipolicy_jwt_alg_name(ngx_uint_t alg)
{
    static ngx_str_t               unknown = ngx_string("?");
    ngx_http_apipolicy_jwt_alg_t  *a;

    a = ngx_http_apipolicy_jwt_alg_get(alg);

    return a ? &a->name : &unknown;
}


ngx_uint_t
ngx_http_apipolicy_jwt_alg_hmac_min(ngx_uint_t alg)
{
    ngx_http_apipolicy_jwt_alg_t  *a;

    a = ngx_http_apipolicy_jwt_alg_get(alg);

    return (a && a->kty == NGX_HTTP_APIPOLICY_JWT_KTY_OCT) ? a->size : 0;
}


const char *
ngx_http_apipolicy_jwt_kty_name(ngx_uint_t kty)
{
    switch (kty) {
    case NGX_HTTP_APIPOLICY_JWT_KTY_OCT:
        return "oct (HMAC secret)";
    case NGX_HTTP_APIPOLICY_JWT_KTY_RSA:
        return "RSA";
    case NGX_HTTP_APIPOLICY_JWT_KTY_EC:
        return "EC";
    case NGX_HTTP_APIPOLICY_JWT_KTY_OKP:
        return "OKP (Ed25519/Ed448)";
    default:
        return "unknown";
    }
}


/* ---- keys bound to an issuer (issuer=) ------------------------------ */

/* issuer=ISS of a key directive: 1 when "value" is that parameter */

ngx_uint_t
ngx_http_apipolicy_jwt_issuer_param(ngx_str_t *value, ngx_str_t *issuer)
{
    if (value->len <= 7 || ngx_strncmp(value->data, "issuer=", 7) != 0) {
        return 0;
    }

    issuer->data = value->data + 7;
    issuer->len = value->len - 7;

    return 1;
}


void
ngx_http_apipolicy_jwt_keys_bind(ngx_array_t *keys, ngx_uint_t first,
    ngx_str_t *issuer)
{
    ngx_uint_t                     i;
    ngx_http_apipolicy_jwt_key_t  *key;

    key = keys->elts;

    for (i = first; i < keys->nelts; i++) {
        key[i].issuer = *issuer;
    }
}


/* ---- key parsing ----------------------------------------------------- */

static void
ngx_http_apipolicy_jwt_key_error(ngx_pool_t *pool, ngx_str_t *err,
    const char *fmt, ...)
{
    u_char   *p, buf[512];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    err->len = 0;
    err->data = ngx_pnalloc(pool, p - buf);

    if (err->data) {
        err->len = p - buf;
        ngx_memcpy(err->data, buf, err->len);
    }

    ERR_clear_error();
}


static ngx_int_t
ngx_http_apipolicy_jwt_pkey_cleanup_add(ngx_pool_t *pool, EVP_PKEY *pkey)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(pkey);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_apipolicy_jwt_pkey_cleanup;
    cln->data = pkey;

    return NGX_OK;
}


static void
ngx_http_apipolicy_jwt_pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
}


ngx_int_t
ngx_http_apipolicy_jwt_pem_parse(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err)
{
    BIO       *bio;
    X509      *x509;
    EVP_PKEY  *pkey;

    ngx_memzero(key, sizeof(ngx_http_apipolicy_jwt_key_t));

    bio = BIO_new_mem_buf(text, (int) len);
    if (bio == NULL) {
        ngx_http_apipolicy_jwt_key_error(pool, err, "BIO_new_mem_buf() failed");
        return NGX_ERROR;
    }

    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);

    if (pkey == NULL) {
        ERR_clear_error();
        (void) BIO_reset(bio);

        x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x509) {
            pkey = X509_get_pubkey(x509);
            X509_free(x509);
        }
    }

    BIO_free(bio);

    if (pkey == NULL) {

        if (ngx_strlcasestrn(text, text + len, (u_char *) "PRIVATE KEY", 10)
            != NULL)
        {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                "holds a private key; the gateway only needs the public "
                "key (openssl pkey -pubout)");

        } else if (ngx_strlcasestrn(text, text + len, (u_char *) "-----BEGIN",
                                    9)
                   == NULL)
        {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                "is neither a PEM public key or certificate nor a JWKS");

        } else {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                "holds no usable public key or certificate "
                "(\"BEGIN PUBLIC KEY\" or \"BEGIN CERTIFICATE\")");
        }

        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_jwt_pkey_cleanup_add(pool, pkey) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_jwt_key_from_pkey(pool, pkey, key, err);
}


static ngx_int_t
ngx_http_apipolicy_jwt_key_from_pkey(ngx_pool_t *pool, EVP_PKEY *pkey,
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err)
{
    if (ngx_http_apipolicy_jwt_key_classify(pool, pkey, key, err) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_jwt_key_prepare(pool, key, err);
}


static ngx_int_t
ngx_http_apipolicy_jwt_key_classify(ngx_pool_t *pool, EVP_PKEY *pkey,
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err)
{
    int     bits;
    char    group[64];
    size_t  len;

    key->pkey = pkey;

    switch (EVP_PKEY_get_base_id(pkey)) {

    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        key->kty = NGX_HTTP_APIPOLICY_JWT_KTY_RSA;
        key->algs = (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA)
                    ? NGX_HTTP_APIPOLICY_JWT_RS|NGX_HTTP_APIPOLICY_JWT_PS
                    : NGX_HTTP_APIPOLICY_JWT_PS;

        bits = EVP_PKEY_get_bits(pkey);

        if (bits < NGX_HTTP_APIPOLICY_JWT_RSA_MIN_BITS) {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                "is a %d-bit RSA key; at least %d bits are required "
                "(RFC 7518 section 3.3)",
                bits, NGX_HTTP_APIPOLICY_JWT_RSA_MIN_BITS);
            return NGX_ERROR;
        }

        return NGX_OK;

    case EVP_PKEY_EC:
        key->kty = NGX_HTTP_APIPOLICY_JWT_KTY_EC;

        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &len)
            != 1)
        {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                "is an EC key without a named curve");
            return NGX_ERROR;
        }

        if (ngx_strcmp(group, "prime256v1") == 0) {
            key->algs = NGX_HTTP_APIPOLICY_JWT_ES256;

        } else if (ngx_strcmp(group, "secp384r1") == 0) {
            key->algs = NGX_HTTP_APIPOLICY_JWT_ES384;

        } else if (ngx_strcmp(group, "secp521r1") == 0) {
            key->algs = NGX_HTTP_APIPOLICY_JWT_ES512;

        } else {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                "is an EC key on curve \"%s\"; JWS uses P-256, P-384 "
                "or P-521", group);
            return NGX_ERROR;
        }

        return NGX_OK;

    case EVP_PKEY_ED25519:
        /* "EdDSA" (RFC 8037) or its fully specified name (RFC 9864) */
        key->kty = NGX_HTTP_APIPOLICY_JWT_KTY_OKP;
        key->algs = NGX_HTTP_APIPOLICY_JWT_EDDSA|NGX_HTTP_APIPOLICY_JWT_ED25519;
        return NGX_OK;

    case EVP_PKEY_ED448:
        key->kty = NGX_HTTP_APIPOLICY_JWT_KTY_OKP;
        key->algs = NGX_HTTP_APIPOLICY_JWT_EDDSA;
        return NGX_OK;

    default:
        ngx_http_apipolicy_jwt_key_error(pool, err,
            "holds a key of a type JWS does not use (%s)",
            OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
        return NGX_ERROR;
    }
}


ngx_int_t
ngx_http_apipolicy_jwt_key_pin(ngx_http_apipolicy_jwt_key_t *key,
    ngx_uint_t alg, ngx_str_t *err, ngx_pool_t *pool)
{
    ngx_uint_t                     min;
    ngx_http_apipolicy_jwt_alg_t  *a;

    if (alg == 0) {
        return NGX_OK;
    }

    a = ngx_http_apipolicy_jwt_alg_get(alg);

    if (!(key->algs & alg)) {

        if (key->kty == NGX_HTTP_APIPOLICY_JWT_KTY_OCT && a
            && a->kty == NGX_HTTP_APIPOLICY_JWT_KTY_OCT)
        {
            min = ngx_http_apipolicy_jwt_alg_hmac_min(alg);

            ngx_http_apipolicy_jwt_key_error(pool, err,
                "a secret of %uz bytes is too short; %V needs at least %ui "
                "bytes (RFC 7518 section 3.2)", key->secret.len, &a->name,
                min);
            return NGX_ERROR;
        }

        ngx_http_apipolicy_jwt_key_error(pool, err,
            "is an %s key, which cannot verify %V",
            ngx_http_apipolicy_jwt_kty_name(key->kty),
            ngx_http_apipolicy_jwt_alg_name(alg));
        return NGX_ERROR;
    }

    /* "EdDSA" and "Ed25519" name one computation on an Ed25519 key */

    key->algs = (alg & NGX_HTTP_APIPOLICY_JWT_OKP_ALGS)
                ? key->algs & NGX_HTTP_APIPOLICY_JWT_OKP_ALGS : alg;

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_jwt_secret_algs(ngx_http_apipolicy_jwt_key_t *key,
    ngx_str_t *err, ngx_pool_t *pool)
{
    key->kty = NGX_HTTP_APIPOLICY_JWT_KTY_OCT;
    key->algs = 0;

    if (key->secret.len >= 32) {
        key->algs |= NGX_HTTP_APIPOLICY_JWT_HS256;
    }

    if (key->secret.len >= 48) {
        key->algs |= NGX_HTTP_APIPOLICY_JWT_HS384;
    }

    if (key->secret.len >= 64) {
        key->algs |= NGX_HTTP_APIPOLICY_JWT_HS512;
    }

    if (key->algs == 0) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
            "a secret of %uz bytes is too short; HS256 needs at least 32 "
            "bytes (RFC 7518 section 3.2)", key->secret.len);
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_jwt_key_prepare(pool, key, err);
}


static ngx_uint_t
ngx_http_apipolicy_jwt_alg_index(ngx_uint_t alg)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_APIPOLICY_JWT_NALGS - 1 && (alg >> i) != 1; i++)
    {
        /* void */
    }

    return i;
}


static ngx_int_t
ngx_http_apipolicy_jwt_key_prepare(ngx_pool_t *pool,
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err)
{
    ngx_uint_t                      bit, n;
    EVP_PKEY_CTX                   *pctx;
    ngx_pool_cleanup_t             *cln;
    ngx_http_apipolicy_jwt_alg_t   *a;
    ngx_http_apipolicy_jwt_fast_t  *fast;

    cln = ngx_pool_cleanup_add(pool, sizeof(ngx_http_apipolicy_jwt_fast_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    fast = cln->data;
    ngx_memzero(fast, sizeof(ngx_http_apipolicy_jwt_fast_t));

    cln->handler = ngx_http_apipolicy_jwt_fast_cleanup;
    key->fast = fast;

    if (key->kty == NGX_HTTP_APIPOLICY_JWT_KTY_OCT) {
        for (n = 0; n < 3; n++) {
            if (ngx_http_apipolicy_crypto_hmac_key(pool, &fast->hs[n], n,
                                                   &key->secret)
                != NGX_OK)
            {
                goto failed;
            }
        }

        return NGX_OK;
    }

    if (key->kty != NGX_HTTP_APIPOLICY_JWT_KTY_RSA
        && key->kty != NGX_HTTP_APIPOLICY_JWT_KTY_EC)
    {
        return NGX_OK;                  /* EdDSA signs the message itself */
    }

    for (bit = 1; bit <= NGX_HTTP_APIPOLICY_JWT_EDDSA; bit <<= 1) {

        if (!(key->algs & bit)) {
            continue;
        }

        a = ngx_http_apipolicy_jwt_alg_get(bit);
        n = ngx_http_apipolicy_jwt_alg_index(bit);

        pctx = EVP_PKEY_CTX_new(key->pkey, NULL);
        if (pctx == NULL) {
            goto failed;
        }

        fast->pctx[n] = pctx;

        if (EVP_PKEY_verify_init(pctx) != 1) {
            goto failed;
        }

        if (bit & NGX_HTTP_APIPOLICY_JWT_PS) {
            if ((EVP_PKEY_get_base_id(key->pkey) == EVP_PKEY_RSA
                 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING)
                    != 1)
                || EVP_PKEY_CTX_set_signature_md(pctx, a->md()) != 1
                || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, a->md()) != 1
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                    RSA_PSS_SALTLEN_DIGEST)
                   != 1)
            {
                goto failed;
            }

        } else if (bit & NGX_HTTP_APIPOLICY_JWT_RS) {
            if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1
                || EVP_PKEY_CTX_set_signature_md(pctx, a->md()) != 1)
            {
                goto failed;
            }

        } else if (EVP_PKEY_CTX_set_signature_md(pctx, a->md()) != 1) {
            goto failed;
        }
    }

    return NGX_OK;

failed:

    ERR_clear_error();
    ngx_http_apipolicy_jwt_key_error(pool, err,
        "could not be set up for verification with OpenSSL");

    return NGX_ERROR;
}


static void
ngx_http_apipolicy_jwt_fast_cleanup(void *data)
{
    ngx_http_apipolicy_jwt_fast_t  *fast = data;

    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_APIPOLICY_JWT_NALGS; i++) {
        if (fast->pctx[i]) {
            EVP_PKEY_CTX_free(fast->pctx[i]);
        }
    }
}


ngx_int_t
ngx_http_apipolicy_jwt_secret_key(ngx_pool_t *pool,
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err)
{
    return ngx_http_apipolicy_jwt_secret_algs(key, err, pool);
}


ngx_int_t
ngx_http_apipolicy_jwt_jwks_parse(ngx_pool_t *pool, ngx_log_t *log,
    u_char *text, size_t len, ngx_uint_t alg, ngx_array_t *keys,
    ngx_str_t *err)
{
    size_t                         i, n;
    json_t                        *root, *set, *jwk;
    ngx_str_t                      why;
    ngx_uint_t                     added;
    json_error_t                   jerr;
    ngx_http_apipolicy_jwt_key_t   key, *k;

    root = json_loadb((const char *) text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
            "is not valid JSON (line %d: %s)", jerr.line, jerr.text);
        return NGX_ERROR;
    }

    if (!json_is_object(root)) {
        json_decref(root);
        ngx_http_apipolicy_jwt_key_error(pool, err,
            "is JSON but not a JWK Set object ({\"keys\":[...]})");
        return NGX_ERROR;
    }

    set = json_object_get(root, "keys");

    if (set == NULL && json_object_get(root, "kty")) {
        n = 1;                              /* a single JWK */

    } else if (json_is_array(set)) {
        n = json_array_size(set);

    } else {
        json_decref(root);
        ngx_http_apipolicy_jwt_key_error(pool, err,
            "is JSON but has no \"keys\" array");
        return NGX_ERROR;
    }

    added = 0;

    for (i = 0; i < n; i++) {
        jwk = (set == NULL) ? root : json_array_get(set, i);

        if (ngx_http_apipolicy_jwt_jwk_parse(pool, jwk, alg, &key, &why)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "apipolicy: JWK #%uz skipped: %V", i, &why);
            continue;
        }

        k = ngx_array_push(keys);
        if (k == NULL) {
            json_decref(root);
            ngx_http_apipolicy_jwt_key_error(pool, err, "out of memory");
            return NGX_ERROR;
        }

        *k = key;
        added++;
    }

    json_decref(root);

    if (added == 0) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
            "has no usable key (%uz listed; see the warnings above)", n);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_jwt_jwk_parse(ngx_pool_t *pool, json_t *jwk,
    ngx_uint_t alg, ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err)
{
    ngx_str_t    kid;
    ngx_uint_t   jalg;
    const char  *kty;

    ngx_memzero(key, sizeof(ngx_http_apipolicy_jwt_key_t));

    if (!json_is_object(jwk)) {
        ngx_http_apipolicy_jwt_key_error(pool, err, "not a JSON object");
        return NGX_ERROR;
    }

    kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL) {
        ngx_http_apipolicy_jwt_key_error(pool, err, "no \"kty\"");
        return NGX_ERROR;
    }


    if (ngx_http_apipolicy_jwt_jwk_usage(pool, jwk, err) != NGX_OK
        || ngx_http_apipolicy_jwt_jwk_alg_kid(pool, jwk, &jalg, &kid, err)
           != NGX_OK
        || ngx_http_apipolicy_jwt_jwk_material(pool, jwk, kty, key, err)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    key->kid = kid;

    if (ngx_http_apipolicy_jwt_key_pin(key, jalg, err, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    if (alg && ngx_http_apipolicy_jwt_key_pin(key, alg, err, pool) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "use" (if any) is "sig", "key_ops" (if any) has "verify" */

static ngx_int_t
ngx_http_apipolicy_jwt_jwk_usage(ngx_pool_t *pool, json_t *jwk,
    ngx_str_t *err)
{
    size_t       i;
    json_t      *v, *op;
    ngx_uint_t   ok;
    const char  *s;

    v = json_object_get(jwk, "use");
    if (v && (!json_is_string(v) || ngx_strcmp(json_string_value(v), "sig"))) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                         "\"use\" is not \"sig\"");
        return NGX_ERROR;
    }

    v = json_object_get(jwk, "key_ops");
    if (v) {
        ok = 0;

        for (i = 0; json_is_array(v) && i < json_array_size(v); i++) {
            op = json_array_get(v, i);
            s = json_string_value(op);

            if (s && ngx_strcmp(s, "verify") == 0) {
                ok = 1;
            }
        }

        if (!ok) {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                                         "\"key_ops\" lacks \"verify\"");
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the key's own "alg" (0: none) and "kid" (empty: none) */

static ngx_int_t
ngx_http_apipolicy_jwt_jwk_alg_kid(ngx_pool_t *pool, json_t *jwk,
    ngx_uint_t *jalg, ngx_str_t *kid, ngx_str_t *err)
{
    json_t      *v;
    const char  *s;

    *jalg = 0;
    v = json_object_get(jwk, "alg");

    if (v) {
        s = json_string_value(v);

        if (s == NULL
            || (*jalg = ngx_http_apipolicy_jwt_alg_parse((u_char *) s,
                                                         ngx_strlen(s)))
               == 0)
        {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                                             "unsupported \"alg\"");
            return NGX_ERROR;
        }
    }

    v = json_object_get(jwk, "kid");

    if (v) {
        if (!json_is_string(v)) {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                                             "\"kid\" is not a string");
            return NGX_ERROR;
        }

        kid->len = json_string_length(v);
        kid->data = ngx_pnalloc(pool, kid->len + 1);
        if (kid->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(kid->data, json_string_value(v), kid->len);
        kid->data[kid->len] = '\0';

    } else {
        ngx_str_null(kid);
    }

    return NGX_OK;
}


/* the secret ("oct") or the public key, by "kty" */

static ngx_int_t
ngx_http_apipolicy_jwt_jwk_material(ngx_pool_t *pool, json_t *jwk,
    const char *kty, ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err)
{
    EVP_PKEY  *pkey;

    if (ngx_strcmp(kty, "oct") == 0) {

        if (ngx_http_apipolicy_jwt_jwk_member(pool, jwk, "k", &key->secret,
                                              err)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_apipolicy_jwt_secret_algs(key, err, pool) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {

        if (ngx_strcmp(kty, "RSA") == 0) {
            pkey = ngx_http_apipolicy_jwt_jwk_rsa(pool, jwk, err);

        } else if (ngx_strcmp(kty, "EC") == 0) {
            pkey = ngx_http_apipolicy_jwt_jwk_ec(pool, jwk, err);

        } else if (ngx_strcmp(kty, "OKP") == 0) {
            pkey = ngx_http_apipolicy_jwt_jwk_okp(pool, jwk, err);

        } else {
            ngx_http_apipolicy_jwt_key_error(pool, err,
                                             "unsupported \"kty\"");
            return NGX_ERROR;
        }

        if (pkey == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_apipolicy_jwt_pkey_cleanup_add(pool, pkey) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_apipolicy_jwt_key_from_pkey(pool, pkey, key, err)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_jwt_jwk_member(ngx_pool_t *pool, json_t *jwk,
    const char *name, ngx_str_t *out, ngx_str_t *err)
{
    json_t  *v;

    v = json_object_get(jwk, name);

    if (!json_is_string(v)) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                         "no \"%s\" member", name);
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_crypto_base64url_decode(pool,
                                         (u_char *) json_string_value(v),
                                         json_string_length(v), out)
        != NGX_OK
        || out->len == 0)
    {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                   "\"%s\" is not base64url", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static EVP_PKEY *
ngx_http_apipolicy_jwt_fromdata(ngx_pool_t *pool, const char *type,
    OSSL_PARAM_BLD *bld, ngx_str_t *err)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *pctx;

    pkey = NULL;
    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || pctx == NULL
        || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    {
        pkey = NULL;
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                         "OpenSSL refused the %s key", type);
    }

    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);

    return pkey;
}


static EVP_PKEY *
ngx_http_apipolicy_jwt_jwk_rsa(ngx_pool_t *pool, json_t *jwk, ngx_str_t *err)
{
    BIGNUM          *n, *e;
    EVP_PKEY        *pkey;
    ngx_str_t        ns, es;
    OSSL_PARAM_BLD  *bld;

    if (ngx_http_apipolicy_jwt_jwk_member(pool, jwk, "n", &ns, err) != NGX_OK
        || ngx_http_apipolicy_jwt_jwk_member(pool, jwk, "e", &es, err)
           != NGX_OK)
    {
        return NULL;
    }

    pkey = NULL;
    n = BN_bin2bn(ns.data, (int) ns.len, NULL);
    e = BN_bin2bn(es.data, (int) es.len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n && e && bld
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
    {
        pkey = ngx_http_apipolicy_jwt_fromdata(pool, "RSA", bld, err);

    } else {
        ngx_http_apipolicy_jwt_key_error(pool, err, "bad RSA parameters");
    }

    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);

    return pkey;
}


static EVP_PKEY *
ngx_http_apipolicy_jwt_jwk_ec(ngx_pool_t *pool, json_t *jwk, ngx_str_t *err)
{
    u_char          *point;
    size_t           size;
    EVP_PKEY        *pkey;
    ngx_str_t        xs, ys;
    const char      *crv, *group;
    EVP_PKEY_CTX    *pctx;
    OSSL_PARAM_BLD  *bld;

    crv = json_string_value(json_object_get(jwk, "crv"));

    if (crv && ngx_strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        size = 32;

    } else if (crv && ngx_strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        size = 48;

    } else if (crv && ngx_strcmp(crv, "P-521") == 0) {
        group = "secp521r1";
        size = 66;

    } else {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                         "unsupported EC \"crv\" (P-256, P-384, P-521)");
        return NULL;
    }

    if (ngx_http_apipolicy_jwt_jwk_member(pool, jwk, "x", &xs, err) != NGX_OK
        || ngx_http_apipolicy_jwt_jwk_member(pool, jwk, "y", &ys, err)
           != NGX_OK)
    {
        return NULL;
    }

    if (xs.len != size || ys.len != size) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                         "EC coordinates must be %uz bytes for %s", size, crv);
        return NULL;
    }

    point = ngx_pnalloc(pool, 1 + 2 * size);
    if (point == NULL) {
        return NULL;
    }

    point[0] = 0x04;                        /* uncompressed */
    ngx_memcpy(point + 1, xs.data, size);
    ngx_memcpy(point + 1 + size, ys.data, size);

    pkey = NULL;
    bld = OSSL_PARAM_BLD_new();

    if (bld
        && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, 0)
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            point, 1 + 2 * size))
    {
        pkey = ngx_http_apipolicy_jwt_fromdata(pool, "EC", bld, err);
    }

    OSSL_PARAM_BLD_free(bld);

    if (pkey == NULL) {
        return NULL;
    }

    /* the point must be on the curve */

    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (pctx == NULL || EVP_PKEY_public_check(pctx) != 1) {
        EVP_PKEY_CTX_free(pctx);
        EVP_PKEY_free(pkey);
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                         "EC point is not on the curve");
        return NULL;
    }

    EVP_PKEY_CTX_free(pctx);

    return pkey;
}


static EVP_PKEY *
ngx_http_apipolicy_jwt_jwk_okp(ngx_pool_t *pool, json_t *jwk, ngx_str_t *err)
{
    int          type;
    size_t       size;
    EVP_PKEY    *pkey;
    ngx_str_t    xs;
    const char  *crv;

    crv = json_string_value(json_object_get(jwk, "crv"));

    if (crv && ngx_strcmp(crv, "Ed25519") == 0) {
        type = EVP_PKEY_ED25519;
        size = 32;

    } else if (crv && ngx_strcmp(crv, "Ed448") == 0) {
        type = EVP_PKEY_ED448;
        size = 57;

    } else {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                "unsupported OKP \"crv\" (Ed25519, Ed448)");
        return NULL;
    }

    if (ngx_http_apipolicy_jwt_jwk_member(pool, jwk, "x", &xs, err) != NGX_OK)
    {
        return NULL;
    }

    if (xs.len != size) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                "\"x\" must be %uz bytes for %s", size, crv);
        return NULL;
    }

    pkey = EVP_PKEY_new_raw_public_key(type, NULL, xs.data, xs.len);
    if (pkey == NULL) {
        ngx_http_apipolicy_jwt_key_error(pool, err,
                                         "OpenSSL refused the %s key", crv);
    }

    return pkey;
}


/* ---- verification ---------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_jwt_key_verify(ngx_http_apipolicy_jwt_key_t *key,
    ngx_uint_t alg, ngx_str_t *data, ngx_str_t *sig, ngx_log_t *log)
{
    int                            rc;
    u_char                         der[256], mac[EVP_MAX_MD_SIZE];
    size_t                         siglen;
    const EVP_MD                  *md;
    const u_char                  *s;
    ngx_uint_t                     n;
    unsigned int                   maclen;
    EVP_PKEY_CTX                  *pctx;
    ngx_http_apipolicy_sha_t       sctx;
    ngx_http_apipolicy_jwt_alg_t  *a;
    ngx_http_apipolicy_jwt_fast_t *fast;

    a = ngx_http_apipolicy_jwt_alg_get(alg);

    if (a == NULL || !(key->algs & alg)) {
        return NGX_DECLINED;
    }

    fast = key->fast;

    if (a->kty == NGX_HTTP_APIPOLICY_JWT_KTY_OCT) {

        n = (alg == NGX_HTTP_APIPOLICY_JWT_HS256) ? NGX_HTTP_APIPOLICY_SHA256
            : (alg == NGX_HTTP_APIPOLICY_JWT_HS384) ? NGX_HTTP_APIPOLICY_SHA384
            : NGX_HTTP_APIPOLICY_SHA512;

        maclen = ngx_http_apipolicy_hmac(&fast->hs[n], data->data, data->len,
                                         mac);

        if (sig->len != maclen
            || !ngx_http_apipolicy_crypto_equal(mac, sig->data, maclen))
        {
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    md = a->md ? a->md() : NULL;
    s = sig->data;
    siglen = sig->len;

    if (a->kty == NGX_HTTP_APIPOLICY_JWT_KTY_EC) {
        rc = ngx_http_apipolicy_jwt_ec_der(a, sig, der, sizeof(der), &siglen);
        if (rc != NGX_OK) {
            return rc;
        }

        s = der;
    }

    pctx = fast ? fast->pctx[ngx_http_apipolicy_jwt_alg_index(alg)] : NULL;

    if (pctx) {
        maclen = EVP_MD_get_size(md);
        n = (maclen == 32) ? NGX_HTTP_APIPOLICY_SHA256
            : (maclen == 48) ? NGX_HTTP_APIPOLICY_SHA384
            : NGX_HTTP_APIPOLICY_SHA512;

        ngx_http_apipolicy_sha_init(&sctx, n);
        ngx_http_apipolicy_sha_update(&sctx, data->data, data->len);
        ngx_http_apipolicy_sha_final(&sctx, mac);

        rc = EVP_PKEY_verify(pctx, s, siglen, mac, maclen);

        ERR_clear_error();

        return (rc == 1) ? NGX_OK : NGX_DECLINED;
    }

    return ngx_http_apipolicy_jwt_key_verify_evp(key, a, data, s, siglen, log);
}


/* JOSE sends an ECDSA signature as R || S, fixed length; EVP wants DER */

static ngx_int_t
ngx_http_apipolicy_jwt_ec_der(ngx_http_apipolicy_jwt_alg_t *a, ngx_str_t *sig,
    u_char *der, size_t size, size_t *len)
{
    int         rc;
    u_char     *p;
    BIGNUM     *br, *bs;
    ECDSA_SIG  *es;

    if (sig->len != 2 * a->size) {
        return NGX_DECLINED;
    }

    es = ECDSA_SIG_new();
    br = BN_bin2bn(sig->data, (int) a->size, NULL);
    bs = BN_bin2bn(sig->data + a->size, (int) a->size, NULL);

    if (es == NULL || br == NULL || bs == NULL
        || ECDSA_SIG_set0(es, br, bs) != 1)
    {
        ECDSA_SIG_free(es);
        BN_free(br);
        BN_free(bs);
        ERR_clear_error();
        return NGX_ERROR;
    }

    if (i2d_ECDSA_SIG(es, NULL) > (int) size) {
        ECDSA_SIG_free(es);
        return NGX_DECLINED;
    }

    p = der;
    rc = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);

    if (rc <= 0) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    *len = (size_t) rc;

    return NGX_OK;
}


/* the signature through EVP_DigestVerify (no context prepared) */

static ngx_int_t
ngx_http_apipolicy_jwt_key_verify_evp(ngx_http_apipolicy_jwt_key_t *key,
    ngx_http_apipolicy_jwt_alg_t *a, ngx_str_t *data, const u_char *s,
    size_t siglen, ngx_log_t *log)
{
    int            rc;
    EVP_MD_CTX    *mctx;
    EVP_PKEY_CTX  *pctx;
    const EVP_MD  *md;

    md = a->md ? a->md() : NULL;

    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        return NGX_ERROR;
    }

    pctx = NULL;

    if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, key->pkey) != 1) {
        goto failed;
    }

    if (a->alg & NGX_HTTP_APIPOLICY_JWT_PS) {
        if ((EVP_PKEY_get_base_id(key->pkey) == EVP_PKEY_RSA
             && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING)
                != 1)
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1)
        {
            goto failed;
        }

    } else if (a->alg & NGX_HTTP_APIPOLICY_JWT_RS) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
            goto failed;
        }
    }

    rc = EVP_DigestVerify(mctx, s, siglen, data->data, data->len);

    EVP_MD_CTX_free(mctx);
    ERR_clear_error();

    return (rc == 1) ? NGX_OK : NGX_DECLINED;

failed:

    EVP_MD_CTX_free(mctx);
    ERR_clear_error();

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  "apipolicy: could not set up %V verification",
                  &a->name);

    return NGX_ERROR;
}
