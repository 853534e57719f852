
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_CORS_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_CORS_H_INCLUDED_


#include "ngx_http_apipolicy.h"


void ngx_http_apipolicy_cors_create_conf(ngx_http_apipolicy_cors_conf_t *c);
char *ngx_http_apipolicy_cors_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *prev,
    ngx_http_apipolicy_cors_conf_t *conf);
char *ngx_http_apipolicy_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_cors_tokens(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_apipolicy_cors_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_cors_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);

/* origin matching, exposed for the unit tests */
ngx_int_t ngx_http_apipolicy_cors_parse_origin(ngx_pool_t *pool,
    ngx_str_t *value, ngx_http_apipolicy_cors_origin_t *o, char **err);
ngx_int_t ngx_http_apipolicy_cors_match(ngx_array_t *origins,
    ngx_str_t *origin);


/* what CORS decided, for the metrics */
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_NONE        0  /* not decided, or
                                                         no Origin */
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_PREFLIGHT   1  /* allowed preflight
                                                         answered */
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_ALLOWED     2
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_DISALLOWED  3

ngx_uint_t ngx_http_apipolicy_cors_outcome(ngx_http_apipolicy_ctx_t *ctx);

#endif /* _NGX_HTTP_APIPOLICY_CORS_H_INCLUDED_ */
