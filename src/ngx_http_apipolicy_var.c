
/*
 * Copyright (C) apipolicy authors
 *
 * Variables.  Registered in preconfiguration from one table; areas
 * provide getters for their own variables.  A getter reports "not found"
 * when its step did not run for the request.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_var.h"
#include "ngx_http_apipolicy_version.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_idempotency.h"


static ngx_int_t ngx_http_apipolicy_reject_reason_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);


#define ngx_http_apipolicy_variable(name, get, flags)                        \
    { ngx_string(name), NULL, get, 0, NGX_HTTP_VAR_NOCACHEABLE|(flags), 0 }


static ngx_http_variable_t  ngx_http_apipolicy_vars[] = {

    ngx_http_apipolicy_variable("apipolicy_reject_reason",
        ngx_http_apipolicy_reject_reason_variable, 0),

    ngx_http_apipolicy_variable("apipolicy_version_status",
        ngx_http_apipolicy_version_variable, 0),

    ngx_http_apipolicy_variable("jwt_claim_",
        ngx_http_apipolicy_jwt_claim_variable, NGX_HTTP_VAR_PREFIX),

    ngx_http_apipolicy_variable("jwt_header_",
        ngx_http_apipolicy_jwt_header_variable, NGX_HTTP_VAR_PREFIX),

    ngx_http_apipolicy_variable("jwt_payload",
        ngx_http_apipolicy_jwt_payload_variable, 0),

    ngx_http_apipolicy_variable("apipolicy_jwt_cache_status",
        ngx_http_apipolicy_jwt_cache_variable, 0),

    ngx_http_apipolicy_variable("apipolicy_ratelimit_status",
        ngx_http_apipolicy_ratelimit_status_variable, 0),

    ngx_http_apipolicy_variable("apipolicy_ratelimit_tier",
        ngx_http_apipolicy_ratelimit_tier_variable, 0),

    ngx_http_apipolicy_variable("apipolicy_idempotency_status",
        ngx_http_apipolicy_idempotency_variable, 0),

      ngx_http_null_variable
};


ngx_int_t
ngx_http_apipolicy_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_apipolicy_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_reject_reason_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_apipolicy_get_ctx(r->main);

    if (ctx == NULL || ctx->problem == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ctx->problem->code.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = ctx->problem->code.data;

    return NGX_OK;
}
