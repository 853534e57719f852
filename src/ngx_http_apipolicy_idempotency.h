
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_IDEMPOTENCY_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_IDEMPOTENCY_H_INCLUDED_


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_shm.h"
#include "ngx_http_apipolicy_redis.h"


/* entry states; INFLIGHT and LOCKED are pinned until their lease ends */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT  1   /* the upstream runs */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_DONE      2   /* a response is kept */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_LOCKED    3   /* outcome unknown */

/* decisions */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_PASS      1
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_CAPTURE   2
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_REPLAY    3

/* Redis values: "i" FP TOKEN (in flight), "d" FP STATUS HLEN "\n" ... */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_CLAIM_LEN (1 + 64 + 16)

/*
 * a kept answer of known length up to this size (headers included) is
 * gathered in the request's pool and copied into the zone at the commit,
 * under the lock the commit takes anyway; a larger one is written straight
 * into the zone
 */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_SMALL     1024


typedef struct ngx_http_apipolicy_idempotency_ctx_s
    ngx_http_apipolicy_idempotency_ctx_t;
typedef struct ngx_http_apipolicy_idempotency_op_s
    ngx_http_apipolicy_idempotency_op_t;


/*
 * An entry; begins as ngx_http_apipolicy_hnode_t (the index and LRU).
 * Until the entry is DONE, "blob" is NULL or a spare slot of "hlen" bytes
 * that the entry evicted for it left (the commit takes it when the answer
 * needs a slot of that size); freed with the entry.
 */

typedef struct {
    void                                  *next;
    u_char                                 pinned;  /* not DONE */
    u_char                                 state;
    u_char                                 pad;
    uint32_t                               expires; /* ngx_time() based */
    ngx_queue_t                            queue;
    u_char                                 key[32];
    uint32_t                               status;
    u_char                                 fp[32];
    u_char                                *blob;    /* slab: headers, body */
    size_t                                 hlen;
    size_t                                 blen;
} ngx_http_apipolicy_idempotency_node_t;


/* apipolicy_idempotency_zone */

typedef struct {
    ngx_http_apipolicy_shm_t               shm;     /* first: the zone's
                                                       data */
    time_t                                 ttl;
    time_t                                 lease;
    size_t                                 max_body;
    ngx_flag_t                             redis;   /* redis=on */
    ngx_flag_t                             fail_closed; /* redis_fail=
                                                           closed */
    u_char                                *file;    /* of the directive */
    ngx_uint_t                             line;
} ngx_http_apipolicy_idempotency_zone_t;


/* apipolicy_idempotency, in the location configuration */

typedef struct {
    ngx_http_apipolicy_idempotency_zone_t *zone;    /* NULL: "off";
                                                       NGX_CONF_UNSET_PTR:
                                                       inherited */
    ngx_uint_t                             methods; /* NGX_HTTP_POST|... */
    ngx_flag_t                             required;
    ngx_flag_t                             keep_5xx; /* keep=5xx */
    ngx_http_complex_value_t              *scope;
} ngx_http_apipolicy_idempotency_conf_t;


/* one Redis command of this worker, in the Redis queue */

struct ngx_http_apipolicy_idempotency_op_s {
    ngx_http_apipolicy_idempotency_ctx_t  *ictx;    /* a waiting request */
};


/* a kept response on its way to Redis, tried again while the claim lasts */

typedef struct {
    ngx_event_t                            ev;      /* the next try */
    ngx_http_apipolicy_redis_cmd_t         set;     /* the response */
    ngx_http_apipolicy_redis_cmd_t         extend;  /* the claim, lease=
                                                       more */
    ngx_http_apipolicy_idempotency_zone_t *zone;
    size_t                                 size;
    time_t                                 deadline; /* the claim ends */
    ngx_msec_t                             delay;
    ngx_uint_t                             tries;
} ngx_http_apipolicy_idempotency_commit_t;


/* per request */

struct ngx_http_apipolicy_idempotency_ctx_s {
    ngx_http_apipolicy_idempotency_zone_t *zone;
    ngx_uint_t                             decision;
    ngx_int_t                              status;  /* of the decision */
    u_char                                 key[32];
    u_char                                 fp[32];
    unsigned                               done:1;  /* decided */
    unsigned                               owner:1; /* our in-flight entry */
    unsigned                               stored:1;
    unsigned                               redis_owner:1; /* our Redis
                                                             claim */
    unsigned                               no_cookies:1;  /* no scope= */
    unsigned                               keep_5xx:1;    /* keep=5xx */
    unsigned                               reached:1;     /* the request
                                                             went to an
                                                             upstream */

    ngx_uint_t                             retry;   /* Retry-After on a
                                                       409, 503 */
    const char                            *unknown; /* why the outcome is */

    ngx_http_request_t                    *request;
    ngx_http_apipolicy_idempotency_op_t   *op;      /* waiting for Redis */
    void                                  *node;    /* our entry, a hint */
    u_char                   claim[NGX_HTTP_APIPOLICY_IDEMPOTENCY_CLAIM_LEN];

    ngx_http_handler_pt                    content; /* the location's */
    ngx_queue_t                            owned;   /* in the worker's list
                                                       of leases to renew */
    ngx_msec_t                             renew;   /* when next */

    /*
     * the response being captured, written once as it passes: its
     * headers ("Name: value\n" lines, hlen bytes), then its body, in
     * "kept": the zone's memory itself when its length is known
     * (in_zone), else request memory that grows
     */
    ngx_uint_t                             rstatus;
    u_char                                *kept;
    size_t                                 len;     /* body bytes so far */
    size_t                                 size;    /* room for the body */
    unsigned                               in_zone:1;

    /* a replay */
    ngx_str_t                              blob;
    size_t                                 hlen;    /* also of the
                                                       capture */
};


void ngx_http_apipolicy_idempotency_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_conf_t *conf);
char *ngx_http_apipolicy_idempotency_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_conf_t *prev,
    ngx_http_apipolicy_idempotency_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_idempotency_phases(
    ngx_http_apipolicy_idempotency_conf_t *conf);


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

/*
 * The PRECONTENT step, after the rate limit: NGX_DECLINED (no key, or a
 * first request whose response will be kept), NGX_DONE (reading the
 * body, or a stored response was replayed), or 400/409/422 through
 * ngx_http_apipolicy_reject().
 */
ngx_int_t ngx_http_apipolicy_idempotency_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);

/* what became of the key, for counters and $apipolicy_idempotency_status */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_NONE      0
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_STORED    1
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_REPLAYED  2

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
