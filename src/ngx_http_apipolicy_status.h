
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_STATUS_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_STATUS_H_INCLUDED_


#include "ngx_http_apipolicy.h"


#define NGX_HTTP_APIPOLICY_STATUS_JSON        0
#define NGX_HTTP_APIPOLICY_STATUS_PROMETHEUS  1

typedef struct {
    ngx_uint_t                         format;    /* apipolicy_status here:
                                                     ..._STATUS_JSON or
                                                     _PROMETHEUS; not
                                                     inherited (a content
                                                     handler) */
} ngx_http_apipolicy_status_conf_t;


void ngx_http_apipolicy_status_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_status_conf_t *conf);
char *ngx_http_apipolicy_status_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_status_conf_t *prev,
    ngx_http_apipolicy_status_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_status_phases(
    ngx_http_apipolicy_status_conf_t *conf);

/* apipolicy_status [json|prometheus] (location): the content handler */
char *ngx_http_apipolicy_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the counters' zone, when any apipolicy directive is used */
ngx_int_t ngx_http_apipolicy_status_postconfiguration(ngx_conf_t *cf);

/* LOG phase: what this request met, counted once */
ngx_int_t ngx_http_apipolicy_status_log(ngx_http_request_t *r);

/* per worker: its slot for the Redis state */
ngx_int_t ngx_http_apipolicy_status_init_process(ngx_cycle_t *cycle);

/*
 * The Redis client (ngx_http_apipolicy_redis.c): a batch was answered
 * after "usec" microseconds, a connection failed, or Redis sent an error
 * reply; kept per gateway in the zone
 */
#define NGX_HTTP_APIPOLICY_STATUS_REDIS_ANSWERED     0
#define NGX_HTTP_APIPOLICY_STATUS_REDIS_FAILED       1
#define NGX_HTTP_APIPOLICY_STATUS_REDIS_ERROR_REPLY  2

void ngx_http_apipolicy_status_redis(ngx_uint_t event, ngx_uint_t usec);


#endif /* _NGX_HTTP_APIPOLICY_STATUS_H_INCLUDED_ */
