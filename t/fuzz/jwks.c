
/*
 * Copyright (C) apipolicy authors
 *
 * A JWK Set as an identity provider's URL serves it:
 * ngx_http_apipolicy_jwt_jwks_parse() (jansson, then each key: kty, crv,
 * alg, use, kid, base64url members, RSA/EC/OKP/oct keys built with
 * OpenSSL).  The text comes from the network (apipolicy_jwt_key_request).
 *
 * Input: the JWK Set text.
 */

#include "../../src/ngx_http_apipolicy_jwt_key.c"
#define FUZZ_INIT_ONLY
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char       *text;
    ngx_str_t     err;
    ngx_pool_t   *pool;
    ngx_array_t  *keys;

    pool = fuzz_pool();

    text = fuzz_copy(pool, data, size);

    keys = ngx_array_create(pool, 4, sizeof(ngx_http_apipolicy_jwt_key_t));
    if (keys == NULL) {
        abort();
    }

    ngx_str_null(&err);

    if (ngx_http_apipolicy_jwt_jwks_parse(pool, &fuzz_log, text, size, 0,
                                          keys, &err)
        == NGX_ERROR
        && err.len == 0)
    {
        abort();                        /* every refusal says why */
    }

    ngx_destroy_pool(pool);

    return 0;
}
