
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_RATELIMIT_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_RATELIMIT_H_INCLUDED_


#include "ngx_http_apipolicy.h"

#include <math.h>


typedef struct ngx_http_apipolicy_ratelimit_zone_s
    ngx_http_apipolicy_ratelimit_zone_t;

/* apipolicy_ratelimit_tier NAME rate=N r/s|r/m|r/h|r/d [burst=N] */
typedef struct {
    ngx_str_t                          name;
    ngx_uint_t                         rate;      /* per window */
    ngx_uint_t                         burst;
    ngx_uint_t                         quota;     /* rate + burst */
    ngx_msec_t                         window;    /* 1s, 1m, 1h, 1d */
    ngx_str_t                          policy;    /* "name";q=..;w=.. */
    ngx_str_t                          item;      /* "name";r= */
    ngx_uint_t                         index;     /* in amcf's list */
} ngx_http_apipolicy_ratelimit_tier_t;

/* apipolicy_ratelimit zone= key= [tier=] [cost=] [dry_run] */
typedef struct {
    ngx_http_apipolicy_ratelimit_zone_t *zone;
    ngx_http_complex_value_t           key;
    ngx_http_complex_value_t          *tier;      /* NULL: "default" */
    ngx_int_t                          key_var;   /* key= a lone variable:
                                                     its index, else
                                                     NGX_ERROR */
    ngx_int_t                          tier_var;  /* the same for tier= */
    ngx_int_t                          tier_index; /* the tier when fixed
                                                      (none or literal),
                                                      else NGX_ERROR */
    ngx_uint_t                         default_index; /* "default" */
    ngx_uint_t                         cost;
    ngx_flag_t                         dry_run;
} ngx_http_apipolicy_ratelimit_limit_t;

/* a location's rate limits: ngx_http_apipolicy_loc_conf_t's "ratelimit" */
typedef struct {
    ngx_array_t                       *limits;    /* ratelimit_limit_t */
    ngx_uint_t                         status;    /* of a refusal: 429 */
    ngx_uint_t                         headers;   /* _RATELIMIT_HEADERS_* */
} ngx_http_apipolicy_ratelimit_conf_t;

#define NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_IETF    0x01
#define NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_LEGACY  0x02

#define NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS  8   /* per location */

#define NGX_HTTP_APIPOLICY_RATELIMIT_PASSED    1
#define NGX_HTTP_APIPOLICY_RATELIMIT_REJECTED  2
#define NGX_HTTP_APIPOLICY_RATELIMIT_DRY_RUN   3   /* would have rejected */

/* one applied limit's outcome, for the response headers and the metrics */
typedef struct {
    ngx_http_apipolicy_ratelimit_zone_t *zone;
    ngx_http_apipolicy_ratelimit_tier_t *tier;
    ngx_uint_t                         status;    /* _RATELIMIT_PASSED ... */
    ngx_uint_t                         remaining;
    ngx_uint_t                         reset;     /* s */
    ngx_str_t                          key;       /* "tier:key", for pk= */
} ngx_http_apipolicy_ratelimit_result_t;

typedef struct {
    ngx_uint_t                         status;    /* _RATELIMIT_PASSED ... */
    ngx_uint_t                         nresults;
    ngx_uint_t                         retry_after; /* s, when rejected */
    ngx_uint_t                         headers;   /* _RATELIMIT_HEADERS_* */
    ngx_http_apipolicy_ratelimit_result_t  *results;  /* one a limit of the
                                                     location, after it */
} ngx_http_apipolicy_ratelimit_ctx_t;



/* directives (ngx_http_apipolicy_module.c, "rate limiting" block) */
char *ngx_http_apipolicy_ratelimit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_ratelimit_tier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_ratelimit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* apipolicy_ratelimit_headers (ngx_http_apipolicy_conf_set_enum_slot) */
extern ngx_conf_enum_t  ngx_http_apipolicy_ratelimit_headers[];

void ngx_http_apipolicy_ratelimit_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_ratelimit_conf_t *conf);
char *ngx_http_apipolicy_ratelimit_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_ratelimit_conf_t *prev,
    ngx_http_apipolicy_ratelimit_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_ratelimit_added(
    ngx_http_apipolicy_ratelimit_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_ratelimit_phases(
    ngx_http_apipolicy_ratelimit_conf_t *conf);

/*
 * The PRECONTENT step: NGX_DECLINED (passed, or no limit here) or the
 * configured status (429) through ngx_http_apipolicy_reject().  Runs once
 * per request: an internal redirect does not count the request again.
 */
ngx_int_t ngx_http_apipolicy_ratelimit_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);

/* for the metrics: the name of the zone at "i" in amcf->ratelimit_zones */
ngx_str_t *ngx_http_apipolicy_ratelimit_zone_name(
    ngx_http_apipolicy_main_conf_t *amcf, ngx_uint_t i);

/* warns of a zone with sync= but no apipolicy_redis */
ngx_int_t ngx_http_apipolicy_ratelimit_postconfiguration(ngx_conf_t *cf);

/* per worker: the Redis sync timers (ngx_http_apipolicy_ratelimit_sync.c) */
ngx_int_t ngx_http_apipolicy_ratelimit_init_process(ngx_cycle_t *cycle);

/* header filter: RateLimit, RateLimit-Policy, X-RateLimit-*, Retry-After */
ngx_int_t ngx_http_apipolicy_ratelimit_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);

ngx_int_t ngx_http_apipolicy_ratelimit_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_apipolicy_ratelimit_tier_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/* ---- shared by the limiter and its Redis sync ------------------------ */

#define NGX_HTTP_APIPOLICY_RATELIMIT_SHARE_ONE  65536   /* a share of 1 */

/*
 * One (tier, key) in a zone.  The counts are those of the window
 * "index" (cur) and the one before (prev); "seen" counts what was asked
 * (passed or not: the demand), for the shares of the quota.
 */
typedef struct {
    u_char                             color;
    u_char                             len;       /* key length */
    u_char                             dirty;     /* in the dirty queue */
    u_char                             pad;
    uint32_t                           window;    /* ms */
    ngx_queue_t                        queue;     /* LRU */
    ngx_queue_t                        dq;        /* changed, not pushed */
    uint64_t                           index;     /* current window, as
                                                     now_ms / window */
    uint64_t                           born;      /* first request, ms */
    uint32_t                           cur;       /* this gateway */
    uint32_t                           prev;
    uint32_t                           seen;      /* this gateway's demand */
    uint32_t                           pseen;
    uint32_t                           rcur;      /* the other gateways, */
    uint32_t                           rprev;     /* from the Redis sync */
    uint32_t                           share;     /* of the quota, in
                                                     1/65536; 0: none yet */
    uint32_t                           quota;     /* the tier's, for the
                                                     sync */
    u_char                             key[1];    /* "tier:key" */
} ngx_http_apipolicy_ratelimit_node_t;


typedef struct {
    uint64_t                           magic;
    ngx_rbtree_t                       rbtree;
    ngx_rbtree_node_t                  sentinel;
    ngx_queue_t                        queue;     /* most recent first */
    ngx_queue_t                        dirty;     /* oldest change first */
    ngx_uint_t                         nodes;
    ngx_uint_t                         ndirty;
    uint64_t                           synced;    /* last round began, ms */
    uint64_t                           answered;  /* last answer, ms */
    ngx_uint_t                         gateways;  /* alive, from Redis */
    ngx_uint_t                         resync;    /* push every node */
} ngx_http_apipolicy_ratelimit_sh_t;


typedef struct ngx_http_apipolicy_ratelimit_sync_s
    ngx_http_apipolicy_ratelimit_sync_t;

struct ngx_http_apipolicy_ratelimit_zone_s {
    ngx_str_t                          name;
    ngx_uint_t                         index;     /* in amcf's list */
    ngx_shm_zone_t                    *shm_zone;
    ngx_msec_t                         sync;      /* 0: off */
    ngx_str_t                          file;      /* of sync=, to warn */
    ngx_uint_t                         line;
    ngx_http_apipolicy_ratelimit_sh_t *sh;
    ngx_slab_pool_t                   *shpool;
    ngx_http_apipolicy_ratelimit_sync_t *sync_state; /* this worker's */
};


/* zone locked: find (or make) a node, most recently used first */
ngx_http_apipolicy_ratelimit_node_t *ngx_http_apipolicy_ratelimit_lookup(
    ngx_http_apipolicy_ratelimit_zone_t *zone, ngx_str_t *key, uint32_t hash,
    ngx_uint_t create);
/* zone locked: move a node to the window "index" */
void ngx_http_apipolicy_ratelimit_roll(ngx_http_apipolicy_ratelimit_node_t *rn,
    uint64_t index);
/* zone locked: queue a node for the next push */
void ngx_http_apipolicy_ratelimit_mark(
    ngx_http_apipolicy_ratelimit_zone_t *zone,
    ngx_http_apipolicy_ratelimit_node_t *rn);
/* zone locked: are the shares from Redis current (Redis answers)? */
ngx_uint_t ngx_http_apipolicy_ratelimit_shares_live(
    ngx_http_apipolicy_ratelimit_zone_t *zone, uint64_t now);
/* wall-clock milliseconds: windows line up across gateways */
uint64_t ngx_http_apipolicy_ratelimit_now(void);

/*
 * The sliding window's estimate: the previous window's count weighted by
 * the part of the window ("w") that still overlaps it ("left"), and the
 * current window's count.
 */
static ngx_inline double
ngx_http_apipolicy_ratelimit_slide(double prev, double cur, double left,
    double w)
{
    return floor(prev * left / w) + cur;
}

#define ngx_http_apipolicy_ratelimit_rbnode(rn)                              \
    ((ngx_rbtree_node_t *) ((u_char *) (rn)                                  \
                            - offsetof(ngx_rbtree_node_t, color)))

#define ngx_http_apipolicy_ratelimit_node(node)                              \
    ((ngx_http_apipolicy_ratelimit_node_t *) &(node)->color)


/*
 * For the metrics: how many limits applied to the request (0: none), and
 * the outcome of the one at "i" (_RATELIMIT_PASSED, _REJECTED, _DRY_RUN)
 * with the places of its zone and tier in amcf's lists.
 */
ngx_uint_t ngx_http_apipolicy_ratelimit_applied(ngx_http_apipolicy_ctx_t *ctx);
ngx_uint_t ngx_http_apipolicy_ratelimit_outcome(ngx_http_apipolicy_ctx_t *ctx,
    ngx_uint_t i, ngx_uint_t *zone, ngx_uint_t *tier);

#endif /* _NGX_HTTP_APIPOLICY_RATELIMIT_H_INCLUDED_ */
