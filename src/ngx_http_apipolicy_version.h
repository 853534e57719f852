
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_VERSION_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_VERSION_H_INCLUDED_


#include "ngx_http_apipolicy.h"


void ngx_http_apipolicy_version_create_conf(
    ngx_http_apipolicy_version_conf_t *v);
char *ngx_http_apipolicy_version_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *prev,
    ngx_http_apipolicy_version_conf_t *conf);
char *ngx_http_apipolicy_version(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_apipolicy_version_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_version_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_version_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* the requested version's state, NGX_HTTP_APIPOLICY_VERSION_CURRENT ... */
ngx_uint_t ngx_http_apipolicy_version_outcome(ngx_http_apipolicy_ctx_t *ctx);

#endif /* _NGX_HTTP_APIPOLICY_VERSION_H_INCLUDED_ */
