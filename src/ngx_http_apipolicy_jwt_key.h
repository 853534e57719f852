
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_JWT_KEY_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_JWT_KEY_H_INCLUDED_


#include "ngx_http_apipolicy.h"


/* algorithm names and properties */
ngx_uint_t ngx_http_apipolicy_jwt_alg_parse(u_char *name, size_t len);
ngx_str_t *ngx_http_apipolicy_jwt_alg_name(ngx_uint_t alg);
ngx_uint_t ngx_http_apipolicy_jwt_alg_hmac_min(ngx_uint_t alg);

/*
 * Key parsing.  Each parsed EVP_PKEY is freed by a cleanup on "pool", so
 * keys parsed on cf->pool go with the cycle and keys parsed at run time
 * (fetched JWKS) go with the pool the caller chose.  On failure "err"
 * holds one sentence for the operator.
 *
 * ngx_http_apipolicy_jwt_jwks_parse() accepts a JWK Set ({"keys":[...]})
 * or a single JWK.  Keys that cannot be used (unknown kty or crv,
 * "use" other than "sig", RSA under 2048 bits, HMAC secret under 32
 * bytes, ...) are skipped with a warning on "log".  Returns NGX_OK when
 * at least one key was added, NGX_DECLINED when none was usable,
 * NGX_ERROR on malformed text.  "alg" (0 or one algorithm bit) pins every
 * key of the set to that algorithm.
 */
ngx_int_t ngx_http_apipolicy_jwt_jwks_parse(ngx_pool_t *pool, ngx_log_t *log,
    u_char *text, size_t len, ngx_uint_t alg, ngx_array_t *keys,
    ngx_str_t *err);
ngx_int_t ngx_http_apipolicy_jwt_pem_parse(ngx_pool_t *pool, u_char *text,
    size_t len, ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err);
ngx_int_t ngx_http_apipolicy_jwt_key_pin(ngx_http_apipolicy_jwt_key_t *key,
    ngx_uint_t alg, ngx_str_t *err, ngx_pool_t *pool);
ngx_int_t ngx_http_apipolicy_jwt_secret_key(ngx_pool_t *pool,
    ngx_http_apipolicy_jwt_key_t *key, ngx_str_t *err);
const char *ngx_http_apipolicy_jwt_kty_name(ngx_uint_t kty);

/*
 * issuer=ISS of the key directives: 1 when "value" is that parameter;
 * keys_bind() binds the keys from "first" on to that issuer
 */
ngx_uint_t ngx_http_apipolicy_jwt_issuer_param(ngx_str_t *value,
    ngx_str_t *issuer);
void ngx_http_apipolicy_jwt_keys_bind(ngx_array_t *keys, ngx_uint_t first,
    ngx_str_t *issuer);

/*
 * Verification with one key: NGX_OK when the signature is valid,
 * NGX_DECLINED when it is not, NGX_ERROR on an OpenSSL failure.  The
 * caller has checked that "alg" is in key->algs.
 */
ngx_int_t ngx_http_apipolicy_jwt_key_verify(ngx_http_apipolicy_jwt_key_t *key,
    ngx_uint_t alg, ngx_str_t *data, ngx_str_t *sig, ngx_log_t *log);


/* a key bound to "bound" (empty: to none) may verify a token of "iss" */

static ngx_inline ngx_uint_t
ngx_http_apipolicy_jwt_key_for_issuer(ngx_str_t *bound, ngx_str_t *iss)
{
    return bound->len == 0
           || (bound->len == iss->len
               && ngx_strncmp(bound->data, iss->data, iss->len) == 0);
}


#endif /* _NGX_HTTP_APIPOLICY_JWT_KEY_H_INCLUDED_ */
