
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_


#include "ngx_http_apipolicy.h"


char *ngx_http_apipolicy_jwt_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_loc_conf_t *prev, ngx_http_apipolicy_loc_conf_t *conf);
ngx_int_t ngx_http_apipolicy_jwt_enabled(ngx_http_apipolicy_loc_conf_t *alcf);

ngx_int_t ngx_http_apipolicy_jwt_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);
void ngx_http_apipolicy_jwt_cleanup(ngx_http_apipolicy_ctx_t *ctx);

ngx_int_t ngx_http_apipolicy_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_apipolicy_jwt_header_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_ */
