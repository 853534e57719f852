
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_PROBLEM_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_PROBLEM_H_INCLUDED_


#include "ngx_http_apipolicy.h"


ngx_int_t ngx_http_apipolicy_reject(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_uint_t status,
    const ngx_http_apipolicy_problem_t *problem, ngx_uint_t level,
    ngx_str_t *detail);
ngx_int_t ngx_http_apipolicy_problem_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_problem_body(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_chain_t *in,
    ngx_http_output_body_filter_pt next);


#endif /* _NGX_HTTP_APIPOLICY_PROBLEM_H_INCLUDED_ */
