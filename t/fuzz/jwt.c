
/*
 * Copyright (C) apipolicy authors
 *
 * A bearer token as a client sends it: the Authorization value
 * (ngx_http_apipolicy_jwt_bearer), the split into three segments, the
 * base64url of header and payload, the header checks (alg, crit, typ,
 * kid: ngx_http_apipolicy_jwt_decode), the payload through the strict
 * JSON parser, the claim checks (exp, nbf, iat), and each claim formatted
 * as $jwt_claim_* and $jwt_payload would give it.  No signature is
 * checked: that needs a key, and the parsers above run before it.
 *
 * Input: the Authorization header value.
 */

#include "../../src/ngx_http_apipolicy_jwt.c"
#include "fuzz.h"


static ngx_http_apipolicy_jwt_conf_t  *fuzz_jcf;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_str_t   *typ;
    ngx_pool_t  *pool;

    fuzz_init();
    pool = fuzz_pool();

    /* the defaults of a location with apipolicy_jwt on */

    fuzz_jcf = ngx_pcalloc(pool, sizeof(ngx_http_apipolicy_jwt_conf_t));
    if (fuzz_jcf == NULL) {
        abort();
    }

    ngx_http_apipolicy_jwt_create_loc_conf(NULL, fuzz_jcf);

    fuzz_jcf->algs = NGX_HTTP_APIPOLICY_JWT_ALL;
    fuzz_jcf->max_size = 8192;
    fuzz_jcf->leeway = 0;
    fuzz_jcf->require_exp = 1;
    fuzz_jcf->issuers = NULL;
    fuzz_jcf->audiences = NULL;
    fuzz_jcf->rules = NULL;
    fuzz_jcf->typ_absent = 1;
    fuzz_jcf->typ_any = 0;
    fuzz_jcf->typs = ngx_array_create(pool, 2, sizeof(ngx_str_t));
    typ = ngx_array_push_n(fuzz_jcf->typs, 2);
    if (typ == NULL) {
        abort();
    }

    ngx_str_set(&typ[0], "jwt");
    ngx_str_set(&typ[1], "at+jwt");

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t                      value, detail, out;
    ngx_uint_t                     err;
    ngx_pool_t                    *pool;
    ngx_http_request_t            *r;
    ngx_http_apipolicy_json_t     *e;
    ngx_http_apipolicy_jwt_ctx_t  *jctx;
    ngx_http_apipolicy_jwt_rule_t *failed;

    pool = fuzz_pool();
    r = fuzz_request(pool, (const uint8_t *) "", 0);

    value.data = fuzz_copy(pool, data, size);
    value.len = size;

    jctx = ngx_pcalloc(pool, sizeof(ngx_http_apipolicy_jwt_ctx_t));
    if (jctx == NULL) {
        abort();
    }

    ngx_str_null(&detail);

    if (ngx_http_apipolicy_jwt_bearer(&value, &jctx->token) != NGX_OK) {
        goto done;
    }

    err = ngx_http_apipolicy_jwt_decode(r, fuzz_jcf, jctx, &detail);

    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        if (detail.len == 0) {
            abort();                    /* every refusal says why */
        }

        goto done;
    }

    jctx->claims = ngx_http_apipolicy_jwt_json(r, jctx->payload.data,
                                               jctx->payload.len, "payload",
                                               &detail);
    if (jctx->claims == NULL) {
        goto done;
    }

    failed = NULL;
    (void) ngx_http_apipolicy_jwt_check_claims(r, fuzz_jcf, jctx, &detail,
                                               &failed);

    /* what the variables give */

    if (ngx_http_apipolicy_json_compact(pool, jctx->claims, &out) != NGX_OK) {
        abort();
    }

    if (jctx->claims->type == NGX_HTTP_APIPOLICY_JSON_OBJECT) {
        for (e = jctx->claims->child; e; e = e->next) {
            if (ngx_http_apipolicy_jwt_format(pool, e, &out) != NGX_OK) {
                abort();
            }
        }
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
