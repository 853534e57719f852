
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_REDIS_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_REDIS_H_INCLUDED_


#include "ngx_http_apipolicy.h"

#include <hiredis/hiredis.h>


typedef struct ngx_http_apipolicy_redis_s  ngx_http_apipolicy_redis_t;

#define NGX_HTTP_APIPOLICY_REDIS_PREFIX_MAX  128      /* prefix= bytes */

/*
 * A batch ended: rc NGX_OK with one reply per command (freed after the
 * call), or NGX_ERROR (no reply: Redis is down, slow or refused us).
 */
typedef void (*ngx_http_apipolicy_redis_done_pt)(void *data,
    redisReply **replies, ngx_uint_t n, ngx_int_t rc);


/* apipolicy_redis ADDRESS [password=] [db=] [connect_timeout=] [timeout=]
 *                 [prefix=]  (http) */
char *ngx_http_apipolicy_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/*
 * The connection of this worker (made in init_process from the
 * configuration, which stays untouched), or NULL when no apipolicy_redis
 */
ngx_int_t ngx_http_apipolicy_redis_init_process(ngx_cycle_t *cycle);
ngx_http_apipolicy_redis_t *ngx_http_apipolicy_redis_get(ngx_cycle_t *cycle);
ngx_str_t *ngx_http_apipolicy_redis_prefix(ngx_http_apipolicy_redis_t *rd);

/*
 * Sends "ncmds" RESP commands (in "cmds", which must stay alive until
 * the handler runs) on this worker's connection, connecting first if
 * needed; the handler runs from the event loop.  Returns NGX_OK (sent or
 * queued), NGX_BUSY (a batch is in flight), NGX_DECLINED (Redis is down
 * and the next attempt is not due yet), NGX_ERROR.  Never blocks.
 */
ngx_int_t ngx_http_apipolicy_redis_send(ngx_http_apipolicy_redis_t *rd,
    ngx_str_t *cmds, ngx_uint_t ncmds, ngx_http_apipolicy_redis_done_pt done,
    void *data);

/* RESP encoding of one command into "p" (room: ..._command_len()) */
size_t ngx_http_apipolicy_redis_command_len(ngx_str_t *argv, ngx_uint_t argc);
u_char *ngx_http_apipolicy_redis_command(u_char *p, ngx_str_t *argv,
    ngx_uint_t argc);

void ngx_http_apipolicy_redis_close(ngx_http_apipolicy_redis_t *rd);

/* as written in apipolicy_redis; this worker's view: NGX_OK (connected),
 * NGX_ERROR (could not reach it), NGX_DECLINED (not used yet) */
ngx_str_t *ngx_http_apipolicy_redis_name(ngx_http_apipolicy_redis_t *rd);
ngx_int_t ngx_http_apipolicy_redis_state(ngx_http_apipolicy_redis_t *rd);

/* another connection with the settings of "rd", in "pool" (a worker's) */
ngx_http_apipolicy_redis_t *ngx_http_apipolicy_redis_clone(ngx_pool_t *pool,
    ngx_log_t *log, ngx_http_apipolicy_redis_t *rd);


#endif /* _NGX_HTTP_APIPOLICY_REDIS_H_INCLUDED_ */
