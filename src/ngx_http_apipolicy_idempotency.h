
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_IDEMPOTENCY_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_IDEMPOTENCY_H_INCLUDED_


#include "ngx_http_apipolicy.h"


typedef struct ngx_http_apipolicy_idem_conf_s  ngx_http_apipolicy_idem_conf_t;
typedef struct ngx_http_apipolicy_idem_ctx_s   ngx_http_apipolicy_idem_ctx_t;



/* apipolicy_idempotency_zone NAME:SIZE [ttl=] [max_body=] [redis=on|off]
 *                            [redis_fail=open|closed] (http) */
char *ngx_http_apipolicy_idempotency_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* apipolicy_idempotency zone=NAME [required] [methods=..] [scope=$var]
 *                       [keep=5xx] */
char *ngx_http_apipolicy_idempotency(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* redis=on checked against apipolicy_redis, its connection made */
ngx_int_t ngx_http_apipolicy_idempotency_postconfiguration(ngx_conf_t *cf);

/* this worker's use of Redis */
ngx_int_t ngx_http_apipolicy_idempotency_init_process(ngx_cycle_t *cycle);
void ngx_http_apipolicy_idempotency_exit_process(ngx_cycle_t *cycle);

char *ngx_http_apipolicy_idempotency_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_loc_conf_t *prev, ngx_http_apipolicy_loc_conf_t *conf);

/*
 * The PRECONTENT step, after the rate limit: NGX_DECLINED (no key, or a
 * first request whose response will be kept), NGX_DONE (reading the
 * body, or a stored response was replayed), or 400/409/422 through
 * ngx_http_apipolicy_reject().
 */
ngx_int_t ngx_http_apipolicy_idempotency_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);

/* what became of the key, for counters and $apipolicy_idempotency_status */
#define NGX_HTTP_APIPOLICY_IDEM_OUTCOME_NONE      0
#define NGX_HTTP_APIPOLICY_IDEM_OUTCOME_STORED    1
#define NGX_HTTP_APIPOLICY_IDEM_OUTCOME_REPLAYED  2

ngx_uint_t ngx_http_apipolicy_idempotency_outcome(
    ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_idempotency_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* filters: the first request's response, captured */
ngx_int_t ngx_http_apipolicy_idempotency_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_idempotency_body(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_chain_t *in);


#endif /* _NGX_HTTP_APIPOLICY_IDEMPOTENCY_H_INCLUDED_ */
