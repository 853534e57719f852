
/*
 * Copyright (C) apipolicy authors
 *
 * JWT verification.  The directives and the verifier are not written yet:
 * a location has no JWT policy and the access step abstains.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_jwt.h"


char *
ngx_http_apipolicy_jwt_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_loc_conf_t *prev, ngx_http_apipolicy_loc_conf_t *conf)
{
    if (conf->jwt == NULL) {
        conf->jwt = prev->jwt;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_apipolicy_jwt_enabled(ngx_http_apipolicy_loc_conf_t *alcf)
{
    return alcf->jwt != NULL;
}


ngx_int_t
ngx_http_apipolicy_jwt_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    return NGX_DECLINED;
}


void
ngx_http_apipolicy_jwt_cleanup(ngx_http_apipolicy_ctx_t *ctx)
{
}


ngx_int_t
ngx_http_apipolicy_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;
    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_jwt_header_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;
    return NGX_OK;
}
