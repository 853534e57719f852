
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_RATELIMIT_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_RATELIMIT_H_INCLUDED_


#include "ngx_http_apipolicy.h"


/* directives (ngx_http_apipolicy_module.c, "rate limiting" block) */
char *ngx_http_apipolicy_ratelimit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_ratelimit_tier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_ratelimit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_ratelimit_headers(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

void ngx_http_apipolicy_ratelimit_create_conf(
    ngx_http_apipolicy_loc_conf_t *alcf);
char *ngx_http_apipolicy_ratelimit_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_loc_conf_t *prev, ngx_http_apipolicy_loc_conf_t *conf);

/*
 * The PRECONTENT step: NGX_DECLINED (passed, or no limit here) or the
 * configured status (429) through ngx_http_apipolicy_reject().  Runs once
 * per request: an internal redirect does not count the request again.
 */
ngx_int_t ngx_http_apipolicy_ratelimit_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);

/* for the metrics: a zone's index in amcf->rl_zones, and its name */
ngx_uint_t ngx_http_apipolicy_ratelimit_zone_index(
    ngx_http_apipolicy_main_conf_t *amcf, ngx_http_apipolicy_rl_zone_t *zone);
ngx_str_t *ngx_http_apipolicy_ratelimit_zone_name(
    ngx_http_apipolicy_main_conf_t *amcf, ngx_uint_t i);

/* per worker: the Redis sync timers (apipolicy_redis + sync=) */
ngx_int_t ngx_http_apipolicy_ratelimit_init_process(ngx_cycle_t *cycle);

/* header filter: RateLimit, RateLimit-Policy, X-RateLimit-*, Retry-After */
ngx_int_t ngx_http_apipolicy_ratelimit_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);

ngx_int_t ngx_http_apipolicy_ratelimit_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_apipolicy_ratelimit_tier_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_APIPOLICY_RATELIMIT_H_INCLUDED_ */
