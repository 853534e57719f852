
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
 * One command of a batch: "cmd" in RESP (..._command() makes it) and
 * "key", the Redis key it works on (for EVAL the first of KEYS): with
 * cluster= the node is the one serving the key's slot, computed from
 * the key's {hash tag} if it has one.  An empty key: any node.  Both
 * are copied by ..._send(): they need not outlive the call.
 */
typedef struct {
    ngx_str_t                          cmd;
    ngx_str_t                          key;
} ngx_http_apipolicy_redis_cmd_t;

/*
 * A batch ended: rc NGX_OK with one reply per command, in order (freed
 * after the call), or NGX_ERROR (no reply: Redis is down, slow or
 * refused us).  Always called from the event loop, never from inside
 * ..._send().
 */
typedef void (*ngx_http_apipolicy_redis_done_pt)(void *data,
    redisReply **replies, ngx_uint_t n, ngx_int_t rc);


/* apipolicy_redis ADDRESS | sentinel=.. master=.. | cluster=..
 *                 [username=] [password=] [db=] [connect_timeout=]
 *                 [timeout=] [prefix=] [tls=on|off]  (http) */
char *ngx_http_apipolicy_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* apipolicy_redis_ssl_* (http), and the SSL context made after http{} */
char *ngx_http_apipolicy_redis_ssl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_apipolicy_redis_postconfiguration(ngx_conf_t *cf);

/*
 * This worker's Redis (made in init_process from the configuration,
 * which stays untouched), or NULL when no apipolicy_redis.  Every area
 * uses this one object: its batches queue and are pipelined on one
 * connection per Redis node.
 */
ngx_int_t ngx_http_apipolicy_redis_init_process(ngx_cycle_t *cycle);
ngx_http_apipolicy_redis_t *ngx_http_apipolicy_redis_get(ngx_cycle_t *cycle);
ngx_str_t *ngx_http_apipolicy_redis_prefix(ngx_http_apipolicy_redis_t *rd);

/*
 * Sends "ncmds" commands as one batch, connecting first if needed; the
 * handler runs from the event loop once every reply is in, or with
 * NGX_ERROR when the batch failed or "timeout=" passed.  Batches of
 * several callers queue behind each other.  Returns NGX_OK (queued:
 * the handler will run), NGX_DECLINED (Redis is down and the next
 * attempt is not due yet; with cluster=, also while the slot map is
 * unknown or a key's master is down: the handler will not run),
 * NGX_ERROR.  Never blocks.  With cluster= the batch is split per
 * master, and redirections (-MOVED, -ASK, -TRYAGAIN) are followed
 * within the same "timeout=": the handler sees the replies in order.
 */
ngx_int_t ngx_http_apipolicy_redis_send(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_http_apipolicy_redis_done_pt done, void *data);

/* RESP encoding of one command into "p" (room: ..._command_len()) */
size_t ngx_http_apipolicy_redis_command_len(ngx_str_t *argv, ngx_uint_t argc);
u_char *ngx_http_apipolicy_redis_command(u_char *p, ngx_str_t *argv,
    ngx_uint_t argc);

void ngx_http_apipolicy_redis_close(ngx_http_apipolicy_redis_t *rd);

/*
 * This worker's Redis nodes for apipolicy_status: the server (or the
 * master a Sentinel named), then the Sentinels; or every Cluster node
 * met (the seeds first, then the masters the map or a redirection
 * named); counters are this worker's since it started
 */
#define NGX_HTTP_APIPOLICY_REDIS_NODES_MAX  16

typedef struct {
    ngx_str_t                          address;
    const char                        *role;      /* server, master,
                                                     sentinel, seed,
                                                     unassigned */
    const char                        *state;     /* up, down, unused */
    ngx_str_t                          error;     /* the last, or empty */
    ngx_uint_t                         reconnects;
    ngx_uint_t                         commands;
    ngx_uint_t                         replies;
    ngx_uint_t                         errors;
    ngx_uint_t                         rtt;       /* microseconds, last */
    ngx_uint_t                         tls_resumed; /* TLS sessions reused */
    ngx_uint_t                         moved;     /* -MOVED it answered */
    ngx_uint_t                         asked;     /* -ASK it answered */
} ngx_http_apipolicy_redis_node_info_t;

ngx_uint_t ngx_http_apipolicy_redis_nodes(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_node_info_t *info);

/* as written in apipolicy_redis; this worker's view: NGX_OK (connected),
 * NGX_ERROR (could not reach it), NGX_DECLINED (not used yet) */
ngx_str_t *ngx_http_apipolicy_redis_name(ngx_http_apipolicy_redis_t *rd);
ngx_int_t ngx_http_apipolicy_redis_state(ngx_http_apipolicy_redis_t *rd);


#endif /* _NGX_HTTP_APIPOLICY_REDIS_H_INCLUDED_ */
