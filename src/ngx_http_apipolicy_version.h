
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_VERSION_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_VERSION_H_INCLUDED_


#include "ngx_http_apipolicy.h"


typedef struct {
    ngx_flag_t                         enabled;     /* NGX_CONF_UNSET: inherit;
                                                       0: "off" */
    time_t                             deprecated;
    time_t                             sunset;      /* -1: none */
    time_t                             announce;    /* -1: say nothing before
                                                       the deprecation date */
    ngx_uint_t                         after_sunset; /* 410, or 0: pass */

    /* precomputed header values */
    ngx_str_t                          deprecation_value; /* @1700000000 */
    ngx_str_t                          sunset_value;      /* HTTP-date */
    ngx_str_t                          link_value;        /* <..>; rel=.. */
    ngx_str_t                          gone_detail;       /* 410 detail */
} ngx_http_apipolicy_version_conf_t;

#define NGX_HTTP_APIPOLICY_VERSION_CURRENT     0
#define NGX_HTTP_APIPOLICY_VERSION_ANNOUNCED   1
#define NGX_HTTP_APIPOLICY_VERSION_DEPRECATED  2
#define NGX_HTTP_APIPOLICY_VERSION_SUNSET      3

typedef struct {
    ngx_http_apipolicy_version_conf_t *conf;        /* decided for */
    ngx_uint_t                         state;
} ngx_http_apipolicy_version_ctx_t;



void ngx_http_apipolicy_version_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *conf);
char *ngx_http_apipolicy_version_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *prev,
    ngx_http_apipolicy_version_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_version_added(
    ngx_http_apipolicy_version_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_version_phases(
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
