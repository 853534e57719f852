
/*
 * Copyright (C) apipolicy authors
 *
 * Redis over nginx's own non-blocking sockets, hiredis only as the RESP
 * reply parser (nginx's OCSP client is the model: ngx_event_connect_peer(),
 * timers on both events, no blocking call).
 *
 *   every area of this worker hands its batches to one object; a batch
 *   goes to a node's queue and is pipelined on that node's connection
 *   (opened on first use and kept) behind the batches already there:
 *   several are in flight at once, each gets its replies in order;
 *   a fresh connection sends AUTH and SELECT in front of the batches;
 *   connect_timeout bounds the connect, timeout each batch from the
 *   moment it was handed over;
 *   on any failure the connection is closed, the handlers of all its
 *   batches hear NGX_ERROR, and the next attempt waits (100 ms,
 *   doubling up to 5 s);
 *   the change between reachable and unreachable is logged once, naming
 *   the node: "error" when it goes away, "notice" when it is back;
 *   every attempt in between is logged at "info" at most.
 *
 * With tls=on the connection speaks TLS through nginx's own SSL layer
 * (as the upstream module does): an ngx_ssl_t made at configuration
 * time, ngx_ssl_create_connection() and a non-blocking ngx_ssl_handshake()
 * bounded by connect_timeout, the server's certificate checked against
 * apipolicy_redis_ssl_trusted_certificate and its name (SNI sent), the
 * session kept for the next connection.
 *
 * The addresses are parsed (and names resolved) at configuration time.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_redis.h"
#include "ngx_http_apipolicy_status.h"


#define NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MAX  5000
#define NGX_HTTP_APIPOLICY_REDIS_READ         16384
#define NGX_HTTP_APIPOLICY_REDIS_ERROR_LEN    120

/* what the replies of a handshake answer */
#define NGX_HTTP_APIPOLICY_REDIS_HS_AUTH      1
#define NGX_HTTP_APIPOLICY_REDIS_HS_SELECT    2
#define NGX_HTTP_APIPOLICY_REDIS_HS_ROLE      3

/* Sentinel: asked again at most this often while no master answers */
#define NGX_HTTP_APIPOLICY_REDIS_DISCOVER_MIN  100
#define NGX_HTTP_APIPOLICY_REDIS_DISCOVER_MAX  2000
#define NGX_HTTP_APIPOLICY_REDIS_HS_MAX       4

/* Cluster: 16384 slots; a command follows at most this many redirections */
#define NGX_HTTP_APIPOLICY_REDIS_SLOTS        16384
#define NGX_HTTP_APIPOLICY_REDIS_HOPS         5
#define NGX_HTTP_APIPOLICY_REDIS_DISCARD      ((ngx_uint_t) -1)
#define NGX_HTTP_APIPOLICY_REDIS_AGAIN        25      /* ms, -TRYAGAIN */


typedef struct ngx_http_apipolicy_redis_node_s  ngx_http_apipolicy_redis_node_t;


/* apipolicy_redis_ssl_* (any order, before or after apipolicy_redis) */

struct ngx_http_apipolicy_redis_ssl_s {
    ngx_str_t                          trusted_certificate;
    ngx_flag_t                         verify;
    ngx_str_t                          name;
    ngx_str_t                          certificate;
    ngx_str_t                          certificate_key;
    ngx_uint_t                         protocols;
};

typedef struct ngx_http_apipolicy_redis_ssl_s  ngx_http_apipolicy_redis_ssl_t;


/* a caller's batch: its replies, and how many node parts are still out */

typedef struct {
    ngx_http_apipolicy_redis_done_pt   done;
    void                              *data;
    ngx_uint_t                         n;
    ngx_uint_t                         parts;
    ngx_int_t                          rc;
    ngx_msec_t                         deadline;  /* timeout= from send */
    redisReply                       **replies;
} ngx_http_apipolicy_redis_req_t;


/* what one node is sent for one batch (or for its handshake: no req) */

typedef struct {
    ngx_queue_t                        queue;     /* in the node's */
    ngx_http_apipolicy_redis_req_t    *req;
    u_char                            *buf;       /* the commands */
    size_t                             len;
    size_t                             sent;
    ngx_uint_t                         n;         /* replies to come */
    ngx_uint_t                         got;
    ngx_uint_t                        *index;     /* reply i goes to
                                                     req->replies[index[i]],
                                                     NULL: to [i] */
    size_t                            *off;       /* command i is buf +
                                                     off[i] to off[i + 1]
                                                     (cluster=: kept for
                                                     a MOVED or ASK) */
    ngx_uint_t                         hops;      /* redirections so far */
    ngx_uint_t                         slot;      /* of its command, once
                                                     redirected */
    ngx_msec_t                         deadline;
    struct timeval                     written;   /* for the round trip */
} ngx_http_apipolicy_redis_part_t;


/* an address of the configuration: a server, a Sentinel */

typedef struct {
    ngx_str_t                          name;
    ngx_str_t                          host;
    struct sockaddr                   *sockaddr;
    socklen_t                          socklen;
} ngx_http_apipolicy_redis_addr_t;


struct ngx_http_apipolicy_redis_node_s {
    ngx_str_t                          name;      /* host:port */
    struct sockaddr                   *sockaddr;
    socklen_t                          socklen;
    ngx_http_apipolicy_redis_t        *rd;
    const char                        *role;

    /* how it is spoken to */
    ngx_str_t                         *username;
    ngx_str_t                         *password;
    ngx_uint_t                         db;
    ngx_uint_t                         master;    /* a Sentinel's answer:
                                                     ROLE checked */
    ngx_uint_t                         known;     /* its address is */
    ngx_uint_t                         stale;     /* said -READONLY */
    ngx_uint_t                         seed;      /* one of cluster= */
    ngx_uint_t                         subscriber; /* +switch-master */
    ngx_uint_t                         slots;     /* it serves, in the map */
    ngx_uint_t                         batch;     /* commands of the batch
                                                     being split */
    size_t                             batch_len;
    ngx_http_apipolicy_redis_part_t   *part;      /* ... and their part */
    ngx_sockaddr_t                     sockaddr_buf;
    u_char                             name_buf[NGX_SOCKADDR_STRLEN];

    ngx_peer_connection_t              pc;
    redisReader                       *reader;
    ngx_queue_t                        parts;     /* in the order sent */
    ngx_uint_t                         ready;     /* connected */
    ngx_uint_t                         fresh;     /* no reply yet */
    ngx_uint_t                         nhs;
    u_char                             hs[NGX_HTTP_APIPOLICY_REDIS_HS_MAX];
    ngx_event_t                        timer;     /* the oldest deadline */
    ngx_log_t                          quiet;     /* for retries */

    ngx_uint_t                         down;      /* last logged state */
    ngx_uint_t                         used;
    ngx_msec_t                         backoff;
    ngx_msec_t                         retry_at;

    /* for apipolicy_status */
    ngx_uint_t                         reconnects;
    ngx_uint_t                         commands;
    ngx_uint_t                         replies;
    ngx_uint_t                         errors;
    ngx_uint_t                         rtt;       /* microseconds, last */
    ngx_uint_t                         tls_resumed;
    ngx_uint_t                         moved;     /* redirections it sent */
    ngx_uint_t                         asked;
    size_t                             error_len;
    u_char                             error[NGX_HTTP_APIPOLICY_REDIS_ERROR_LEN];

#if (NGX_SSL)
    ngx_ssl_session_t                 *session;   /* for the next connect */
#endif
};


struct ngx_http_apipolicy_redis_s {
    /* configuration */
    ngx_str_t                          name;      /* as written */
    ngx_addr_t                        *addr;
    ngx_str_t                          username;
    ngx_str_t                          password;
    ngx_uint_t                         db;
    ngx_msec_t                         connect_timeout;
    ngx_msec_t                         timeout;
    ngx_str_t                          prefix;
    ngx_array_t                       *sentinels; /* redis_addr_t */
    ngx_array_t                       *seeds;     /* cluster=, redis_addr_t */
    ngx_str_t                          db_arg;    /* db= as written */
    ngx_str_t                          master;    /* master= */
    ngx_str_t                          sentinel_username;
    ngx_str_t                          sentinel_password;
    ngx_flag_t                         tls;
    ngx_str_t                          host;      /* of the address */

#if (NGX_SSL)
    ngx_ssl_t                         *ssl;
    ngx_str_t                          ssl_name;  /* null-terminated */
    ngx_flag_t                         ssl_verify;
#endif

    /* this worker's (made after fork) */
    ngx_log_t                         *log;
    ngx_http_apipolicy_redis_node_t   *node;      /* the server, the master */

    /* Sentinel: who is asked next, and when */
    ngx_http_apipolicy_redis_node_t  **sentinel;
    ngx_uint_t                         nsentinels;
    ngx_uint_t                         next;
    ngx_uint_t                         asked;     /* in this round */
    ngx_uint_t                         asking;
    ngx_uint_t                         lost;      /* logged: no master */
    ngx_msec_t                         discover_backoff;
    ngx_msec_t                         discover_at;
    ngx_event_t                        discover_ev;
    ngx_http_apipolicy_redis_node_t   *sub;       /* subscribed to one */
    ngx_uint_t                         sub_next;

    /* Cluster: every node met (seeds first), the slot map (index + 1
     * into "nodes", 0: nobody known), asked for again when stale */
    ngx_array_t                       *nodes;     /* redis_node_t * */
    uint16_t                          *slots;
    ngx_uint_t                         mapped;
    ngx_uint_t                         refreshing;
    ngx_pool_t                        *pool;      /* the cycle's */
    ngx_queue_t                        again;     /* parts that met
                                                     -TRYAGAIN */
    ngx_event_t                        again_ev;
};


static ngx_int_t ngx_http_apipolicy_redis_sentinel_init(
    ngx_http_apipolicy_redis_t *rd, ngx_pool_t *pool);
static ngx_http_apipolicy_redis_node_t *ngx_http_apipolicy_redis_node(
    ngx_http_apipolicy_redis_t *rd, ngx_pool_t *pool, ngx_str_t *name,
    struct sockaddr *sockaddr, socklen_t socklen);
static ngx_int_t ngx_http_apipolicy_redis_send_node(
    ngx_http_apipolicy_redis_node_t *node, ngx_http_apipolicy_redis_cmd_t *cmds,
    ngx_uint_t ncmds, ngx_http_apipolicy_redis_done_pt done, void *data);
static void ngx_http_apipolicy_redis_discover(ngx_http_apipolicy_redis_t *rd);
static ngx_uint_t ngx_http_apipolicy_redis_discover_wait(
    ngx_http_apipolicy_redis_t *rd);
static void ngx_http_apipolicy_redis_discover_later(
    ngx_http_apipolicy_redis_t *rd);
static ngx_array_t *ngx_http_apipolicy_redis_addrs(ngx_conf_t *cf,
    ngx_str_t *arg, size_t skip, in_port_t port);
static ngx_int_t ngx_http_apipolicy_redis_param(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_str_t *arg);
static ngx_int_t ngx_http_apipolicy_redis_address(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_str_t *arg);
static ngx_int_t ngx_http_apipolicy_redis_time(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_str_t *arg);
static ngx_int_t ngx_http_apipolicy_redis_check(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd);
static ngx_int_t ngx_http_apipolicy_redis_check_cluster(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd);
#if (NGX_SSL)
static ngx_int_t ngx_http_apipolicy_redis_ssl_context(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_http_apipolicy_redis_ssl_t *ssl);
static ngx_int_t ngx_http_apipolicy_redis_ssl_trust(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_http_apipolicy_redis_ssl_t *ssl);
#endif
static void ngx_http_apipolicy_redis_discover_handler(ngx_event_t *ev);
static void ngx_http_apipolicy_redis_discovered(void *data,
    redisReply **replies, ngx_uint_t n, ngx_int_t rc);
static void ngx_http_apipolicy_redis_subscribe(ngx_http_apipolicy_redis_t *rd);
static void ngx_http_apipolicy_redis_switch(
    ngx_http_apipolicy_redis_node_t *sub, redisReply *r);
static void ngx_http_apipolicy_redis_moved_master(
    ngx_http_apipolicy_redis_t *rd, ngx_http_apipolicy_redis_node_t *sentinel,
    u_char *text, size_t len);
static ngx_int_t ngx_http_apipolicy_redis_queue(
    ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part);
static ngx_int_t ngx_http_apipolicy_redis_connect(
    ngx_http_apipolicy_redis_node_t *node);
static ngx_http_apipolicy_redis_part_t *ngx_http_apipolicy_redis_handshake(
    ngx_http_apipolicy_redis_node_t *node);
static void ngx_http_apipolicy_redis_write_handler(ngx_event_t *wev);
static void ngx_http_apipolicy_redis_read_handler(ngx_event_t *rev);
static const char *ngx_http_apipolicy_redis_io_error(
    ngx_http_apipolicy_redis_node_t *node, const char *otherwise);
static ngx_int_t ngx_http_apipolicy_redis_reply(
    ngx_http_apipolicy_redis_node_t *node, redisReply *r);
static void ngx_http_apipolicy_redis_timeout(ngx_event_t *ev);
static void ngx_http_apipolicy_redis_arm(ngx_http_apipolicy_redis_node_t *node);
static void ngx_http_apipolicy_redis_fail(
    ngx_http_apipolicy_redis_node_t *node, const char *why, ngx_str_t *detail);
static void ngx_http_apipolicy_redis_part_end(
    ngx_http_apipolicy_redis_part_t *part, ngx_int_t rc);
static void ngx_http_apipolicy_redis_req_end(
    ngx_http_apipolicy_redis_req_t *req);
static void ngx_http_apipolicy_redis_node_close(
    ngx_http_apipolicy_redis_node_t *node);
static void ngx_http_apipolicy_redis_drop(
    ngx_http_apipolicy_redis_node_t *node);
static void ngx_http_apipolicy_redis_connected(
    ngx_http_apipolicy_redis_node_t *node);
static ngx_int_t ngx_http_apipolicy_redis_hs_reply(
    ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part, redisReply *r);
static ngx_int_t ngx_http_apipolicy_redis_error(
    ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part, redisReply *r);
static ngx_int_t ngx_http_apipolicy_redis_cluster_init(
    ngx_http_apipolicy_redis_t *rd);
static ngx_uint_t ngx_http_apipolicy_redis_slot(ngx_str_t *key);
static ngx_http_apipolicy_redis_node_t *ngx_http_apipolicy_redis_cluster_add(
    ngx_http_apipolicy_redis_t *rd, ngx_str_t *name,
    struct sockaddr *sockaddr, socklen_t socklen, ngx_uint_t copy);
static ngx_http_apipolicy_redis_node_t *ngx_http_apipolicy_redis_cluster_node(
    ngx_http_apipolicy_redis_t *rd, u_char *text, size_t len);
static ngx_uint_t ngx_http_apipolicy_redis_waiting(
    ngx_http_apipolicy_redis_node_t *node);
static ngx_int_t ngx_http_apipolicy_redis_cluster_send(
    ngx_http_apipolicy_redis_t *rd, ngx_http_apipolicy_redis_cmd_t *cmds,
    ngx_uint_t ncmds, ngx_http_apipolicy_redis_done_pt done, void *data);
static ngx_uint_t ngx_http_apipolicy_redis_split(
    ngx_http_apipolicy_redis_req_t *req, ngx_http_apipolicy_redis_cmd_t *cmds,
    ngx_http_apipolicy_redis_node_t **list,
    ngx_http_apipolicy_redis_node_t **masters);
static ngx_int_t ngx_http_apipolicy_redis_redirect(
    ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part, redisReply *r);
static ngx_http_apipolicy_redis_part_t *ngx_http_apipolicy_redis_forward(
    ngx_http_apipolicy_redis_part_t *part, ngx_uint_t ask, ngx_uint_t slot);
static ngx_int_t ngx_http_apipolicy_redis_again(
    ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part);
static void ngx_http_apipolicy_redis_again_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_apipolicy_redis_index(
    ngx_http_apipolicy_redis_t *rd, ngx_http_apipolicy_redis_node_t *node);
static void ngx_http_apipolicy_redis_cluster_refresh(
    ngx_http_apipolicy_redis_t *rd);
static void ngx_http_apipolicy_redis_cluster_handler(ngx_event_t *ev);
static void ngx_http_apipolicy_redis_mapped(void *data, redisReply **replies,
    ngx_uint_t n, ngx_int_t rc);
static ngx_int_t ngx_http_apipolicy_redis_map(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_node_t *node, redisReply *r);
static size_t ngx_http_apipolicy_redis_map_addr(
    ngx_http_apipolicy_redis_node_t *node, redisReply *m, u_char *text);
#if (NGX_SSL)
static void ngx_http_apipolicy_redis_ssl_start(
    ngx_http_apipolicy_redis_node_t *node);
static void ngx_http_apipolicy_redis_ssl_done(ngx_connection_t *c);
static ngx_int_t ngx_http_apipolicy_redis_ssl_name_ok(ngx_connection_t *c,
    ngx_str_t *name);
#endif


/* this worker's Redis, made from the configuration in init_process */

static ngx_http_apipolicy_redis_t  *ngx_http_apipolicy_redis_worker;


ngx_int_t
ngx_http_apipolicy_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_apipolicy_redis_t       *rd;
    ngx_http_apipolicy_main_conf_t   *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_apipolicy_module);

    if (amcf == NULL || amcf->redis == NULL) {
        return NGX_OK;
    }

    rd = ngx_palloc(cycle->pool, sizeof(ngx_http_apipolicy_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    *rd = *amcf->redis;
    rd->log = cycle->log;
    rd->pool = cycle->pool;

    if (rd->seeds) {
        if (ngx_http_apipolicy_redis_cluster_init(rd) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_apipolicy_redis_worker = rd;

        return NGX_OK;
    }

    if (rd->sentinels == NULL) {
        rd->node = ngx_http_apipolicy_redis_node(rd, cycle->pool, &rd->name,
                                                 rd->addr->sockaddr,
                                                 rd->addr->socklen);
        if (rd->node == NULL) {
            return NGX_ERROR;
        }

        rd->node->known = 1;
        ngx_http_apipolicy_redis_worker = rd;

        return NGX_OK;
    }

    if (ngx_http_apipolicy_redis_sentinel_init(rd, cycle->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_apipolicy_redis_worker = rd;

    return NGX_OK;
}


/* Sentinel: the master is asked for as soon as the worker runs */

static ngx_int_t
ngx_http_apipolicy_redis_sentinel_init(ngx_http_apipolicy_redis_t *rd,
    ngx_pool_t *pool)
{
    ngx_uint_t                        i;
    ngx_http_apipolicy_redis_addr_t  *addr;
    ngx_http_apipolicy_redis_node_t  *node;

    rd->node = ngx_http_apipolicy_redis_node(rd, pool, &rd->master,
                                             NULL, 0);
    if (rd->node == NULL) {
        return NGX_ERROR;
    }

    rd->node->master = 1;

    addr = rd->sentinels->elts;
    rd->nsentinels = rd->sentinels->nelts;

    rd->sentinel = ngx_palloc(pool, rd->nsentinels * sizeof(void *));
    if (rd->sentinel == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < rd->nsentinels; i++) {
        node = ngx_http_apipolicy_redis_node(rd, pool, &addr[i].name,
                                             addr[i].sockaddr,
                                             addr[i].socklen);
        if (node == NULL) {
            return NGX_ERROR;
        }

        node->known = 1;
        node->role = "sentinel";
        node->username = &rd->sentinel_username;
        node->password = &rd->sentinel_password;
        node->db = 0;

        rd->sentinel[i] = node;
    }

    /* a connection of its own, subscribed to +switch-master */

    rd->sub = ngx_http_apipolicy_redis_node(rd, pool, &addr[0].name,
                                            addr[0].sockaddr,
                                            addr[0].socklen);
    if (rd->sub == NULL) {
        return NGX_ERROR;
    }

    rd->sub->known = 1;
    rd->sub->role = "sentinel";
    rd->sub->username = &rd->sentinel_username;
    rd->sub->password = &rd->sentinel_password;
    rd->sub->db = 0;
    rd->sub->subscriber = 1;

    rd->discover_ev.handler = ngx_http_apipolicy_redis_discover_handler;
    rd->discover_ev.data = rd;
    rd->discover_ev.log = rd->log;
    rd->discover_ev.cancelable = 1;

    ngx_add_timer(&rd->discover_ev, 1);

    return NGX_OK;
}


static ngx_http_apipolicy_redis_node_t *
ngx_http_apipolicy_redis_node(ngx_http_apipolicy_redis_t *rd,
    ngx_pool_t *pool, ngx_str_t *name, struct sockaddr *sockaddr,
    socklen_t socklen)
{
    ngx_http_apipolicy_redis_node_t  *node;

    node = ngx_pcalloc(pool, sizeof(ngx_http_apipolicy_redis_node_t));
    if (node == NULL) {
        return NULL;
    }

    node->name = *name;
    node->sockaddr = sockaddr;
    node->socklen = socklen;
    node->rd = rd;
    node->role = rd->sentinels ? "master" : "server";
    node->username = &rd->username;
    node->password = &rd->password;
    node->db = rd->db;

    node->quiet = *rd->log;
    node->quiet.log_level = NGX_LOG_ALERT;

    ngx_queue_init(&node->parts);

    node->timer.handler = ngx_http_apipolicy_redis_timeout;
    node->timer.data = node;
    node->timer.log = rd->log;
    node->timer.cancelable = 1;

    return node;
}


ngx_http_apipolicy_redis_t *
ngx_http_apipolicy_redis_get(ngx_cycle_t *cycle)
{
    return ngx_http_apipolicy_redis_worker;
}


ngx_str_t *
ngx_http_apipolicy_redis_prefix(ngx_http_apipolicy_redis_t *rd)
{
    return &rd->prefix;
}


ngx_str_t *
ngx_http_apipolicy_redis_name(ngx_http_apipolicy_redis_t *rd)
{
    return &rd->name;
}


ngx_int_t
ngx_http_apipolicy_redis_state(ngx_http_apipolicy_redis_t *rd)
{
    ngx_http_apipolicy_redis_node_t  *node;

    ngx_uint_t                         i, used;
    ngx_http_apipolicy_redis_node_t  **nodes;

    node = rd->node;

    if (rd->lost) {
        return NGX_ERROR;               /* no Sentinel or cluster node
                                           names a master */
    }

    if (rd->seeds) {

        /* Cluster: down when one master in the map is */

        nodes = rd->nodes->elts;

        for (used = 0, i = 0; i < rd->nodes->nelts; i++) {
            if (nodes[i]->used && (nodes[i]->slots || !rd->mapped)) {
                if (nodes[i]->down) {
                    return NGX_ERROR;
                }

                used = 1;
            }
        }

        return used ? NGX_OK : NGX_DECLINED;
    }

    if (node == NULL || !node->used) {
        return NGX_DECLINED;
    }

    return node->down ? NGX_ERROR : NGX_OK;
}


ngx_uint_t
ngx_http_apipolicy_redis_nodes(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_node_info_t *info)
{
    ngx_uint_t                        i, n;
    ngx_http_apipolicy_redis_node_t  *node;

    for (n = 0, i = 0; ; i++) {
        if (rd->seeds) {
            node = (i < rd->nodes->nelts)
                   ? ((ngx_http_apipolicy_redis_node_t **) rd->nodes->elts)[i]
                   : NULL;

        } else {
            node = (i == 0) ? rd->node
                   : (i <= rd->nsentinels) ? rd->sentinel[i - 1] : NULL;
        }

        if (node == NULL || n == NGX_HTTP_APIPOLICY_REDIS_NODES_MAX) {
            break;
        }

        if (!node->known) {
            continue;                   /* no master named yet */
        }

        info[n].address = node->name;
        info[n].role = !rd->seeds ? node->role
                       : node->slots ? "master"
                       : node->seed ? "seed" : "unassigned";
        info[n].state = !node->used ? "unused" : node->down ? "down" : "up";
        info[n].error.data = node->error;
        info[n].error.len = node->error_len;
        info[n].reconnects = node->reconnects;
        info[n].commands = node->commands;
        info[n].replies = node->replies;
        info[n].errors = node->errors;
        info[n].rtt = node->rtt;
        info[n].tls_resumed = node->tls_resumed;
        info[n].moved = node->moved;
        info[n].asked = node->asked;
        n++;
    }

    return n;
}


size_t
ngx_http_apipolicy_redis_command_len(ngx_str_t *argv, ngx_uint_t argc)
{
    size_t      len;
    ngx_uint_t  i;

    len = 1 + NGX_INT_T_LEN + 2;

    for (i = 0; i < argc; i++) {
        len += 1 + NGX_INT_T_LEN + 2 + argv[i].len + 2;
    }

    return len;
}


u_char *
ngx_http_apipolicy_redis_command(u_char *p, ngx_str_t *argv, ngx_uint_t argc)
{
    ngx_uint_t  i;

    p = ngx_sprintf(p, "*%ui\r\n", argc);

    for (i = 0; i < argc; i++) {
        p = ngx_sprintf(p, "$%uz\r\n%V\r\n", argv[i].len, &argv[i]);
    }

    return p;
}


/* ---- batches ----------------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_redis_send(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_http_apipolicy_redis_done_pt done, void *data)
{
    ngx_http_apipolicy_redis_node_t  *node;

    if (rd->seeds) {
        return ngx_http_apipolicy_redis_cluster_send(rd, cmds, ncmds, done,
                                                     data);
    }

    node = rd->node;

    if (!node->known) {

        /* Sentinel: no master known yet, or it went away: ask */

        ngx_http_apipolicy_redis_discover(rd);

        if (!node->known) {
            return NGX_DECLINED;
        }
    }

    return ngx_http_apipolicy_redis_send_node(node, cmds, ncmds, done, data);
}


static ngx_int_t
ngx_http_apipolicy_redis_send_node(ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_http_apipolicy_redis_done_pt done, void *data)
{
    u_char                           *p;
    size_t                            len;
    ngx_uint_t                        i;
    ngx_http_apipolicy_redis_req_t   *req;
    ngx_http_apipolicy_redis_part_t  *part;

    if (ncmds == 0) {
        return NGX_ERROR;
    }

    if (node->pc.connection == NULL && node->retry_at
        && (ngx_msec_int_t) (node->retry_at - ngx_current_msec) > 0)
    {
        return NGX_DECLINED;
    }

    /* the batch, its replies, its part and a copy of its commands at once */

    len = 0;

    for (i = 0; i < ncmds; i++) {
        len += cmds[i].cmd.len;
    }

    req = ngx_alloc(sizeof(ngx_http_apipolicy_redis_req_t)
                    + ncmds * sizeof(redisReply *)
                    + sizeof(ngx_http_apipolicy_redis_part_t) + len,
                    node->rd->log);
    if (req == NULL) {
        return NGX_ERROR;
    }

    req->done = done;
    req->data = data;
    req->n = ncmds;
    req->parts = 1;
    req->rc = NGX_OK;
    req->deadline = ngx_current_msec + node->rd->timeout;
    req->replies = (redisReply **) (req + 1);

    ngx_memzero(req->replies, ncmds * sizeof(redisReply *));

    part = (ngx_http_apipolicy_redis_part_t *) (req->replies + ncmds);
    ngx_memzero(part, sizeof(ngx_http_apipolicy_redis_part_t));

    part->req = req;
    part->buf = (u_char *) (part + 1);
    part->n = ncmds;
    part->deadline = req->deadline;

    p = part->buf;

    for (i = 0; i < ncmds; i++) {
        p = ngx_cpymem(p, cmds[i].cmd.data, cmds[i].cmd.len);
    }

    part->len = p - part->buf;

    if (ngx_http_apipolicy_redis_queue(node, part) != NGX_OK) {
        ngx_free(req);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a part goes behind those already on the node: connect if needed */

static ngx_int_t
ngx_http_apipolicy_redis_queue(ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part)
{
    ngx_connection_t  *c;

    if (node->pc.connection == NULL) {
        if (ngx_http_apipolicy_redis_connect(node) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (part->deadline == 0) {
        part->deadline = ngx_current_msec + node->rd->timeout;
    }

    ngx_queue_insert_tail(&node->parts, &part->queue);

    ngx_http_apipolicy_redis_arm(node);

    /* written from the event loop: what is queued meanwhile goes along */

    c = node->pc.connection;

    if (node->ready && c->write->ready && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_redis_connect(ngx_http_apipolicy_redis_node_t *node)
{
    ngx_int_t                         rc;
    ngx_connection_t                 *c;
    ngx_http_apipolicy_redis_part_t  *hs;

    ngx_memzero(&node->pc, sizeof(ngx_peer_connection_t));

    node->pc.sockaddr = node->sockaddr;
    node->pc.socklen = node->socklen;
    node->pc.name = &node->name;
    node->pc.get = ngx_event_get_peer;
    node->pc.log = node->rd->log;
    node->pc.log_error = NGX_ERROR_INFO;     /* our own line says it once */

    if (node->used) {
        node->reconnects++;
    }

    node->used = 1;
    node->ready = 0;
    node->fresh = 1;

    rc = ngx_event_connect_peer(&node->pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (node->pc.connection) {
            ngx_close_connection(node->pc.connection);
            node->pc.connection = NULL;
        }

        ngx_http_apipolicy_redis_fail(node, "cannot be connected to", NULL);
        return NGX_ERROR;
    }

    c = node->pc.connection;
    c->data = node;

    /*
     * while the node is down, what nginx's socket and SSL layers say of
     * each attempt stays out of the log (crit included): the node's own
     * line said it once
     */

    c->log = node->down ? &node->quiet : node->rd->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = ngx_http_apipolicy_redis_read_handler;
    c->write->handler = ngx_http_apipolicy_redis_write_handler;

    if (node->reader) {
        redisReaderFree(node->reader);
    }

    node->reader = redisReaderCreate();
    if (node->reader == NULL) {
        ngx_http_apipolicy_redis_node_close(node);
        return NGX_ERROR;
    }

    /* AUTH and SELECT go first */

    hs = ngx_http_apipolicy_redis_handshake(node);

    if (hs == NGX_CONF_ERROR) {
        ngx_http_apipolicy_redis_node_close(node);
        return NGX_ERROR;
    }

    if (hs) {
        hs->deadline = ngx_current_msec + node->rd->timeout;
        ngx_queue_insert_tail(&node->parts, &hs->queue);
    }

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, node->rd->connect_timeout);
        return NGX_OK;
    }

    ngx_http_apipolicy_redis_connected(node);

    return NGX_OK;
}


/* TCP is up: TLS first if asked for, then the commands may go */

static void
ngx_http_apipolicy_redis_connected(ngx_http_apipolicy_redis_node_t *node)
{
#if (NGX_SSL)
    if (node->rd->ssl) {
        ngx_http_apipolicy_redis_ssl_start(node);
        return;
    }
#endif

    node->ready = 1;
}


#if (NGX_SSL)

static void
ngx_http_apipolicy_redis_ssl_start(ngx_http_apipolicy_redis_node_t *node)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_apipolicy_redis_t  *rd;

    rd = node->rd;
    c = node->pc.connection;

    /* the SSL connection lives in a pool of the connection's own */

    c->pool = ngx_create_pool(1024, c->log);

    if (c->pool == NULL
        || ngx_ssl_create_connection(rd->ssl, c, NGX_SSL_CLIENT) != NGX_OK)
    {
        ngx_http_apipolicy_redis_fail(node, "TLS cannot be set up", NULL);
        return;
    }

    /* SNI: a name, never an IP address */

    if (rd->ssl_name.len
        && ngx_inet_addr(rd->ssl_name.data, rd->ssl_name.len) == INADDR_NONE
        && ngx_strlchr(rd->ssl_name.data,
                       rd->ssl_name.data + rd->ssl_name.len, ':') == NULL
        && SSL_set_tlsext_host_name(c->ssl->connection,
                                    (char *) rd->ssl_name.data) == 0)
    {
        ngx_http_apipolicy_redis_fail(node, "TLS cannot be set up (SNI)",
                                      NULL);
        return;
    }

    if (node->session
        && ngx_ssl_set_session(c, node->session) != NGX_OK)
    {
        ngx_http_apipolicy_redis_fail(node, "TLS cannot be set up "
                                      "(session)", NULL);
        return;
    }

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        if (!c->write->timer_set) {
            ngx_add_timer(c->write, rd->connect_timeout);
        }

        c->ssl->handler = ngx_http_apipolicy_redis_ssl_done;
        return;
    }

    ngx_http_apipolicy_redis_ssl_done(c);
}


static void
ngx_http_apipolicy_redis_ssl_done(ngx_connection_t *c)
{
    long                              v;
    ngx_str_t                         detail;
    ngx_http_apipolicy_redis_t       *rd;
    ngx_http_apipolicy_redis_node_t  *node;

    node = c->data;
    rd = node->rd;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (!c->ssl->handshaked) {
        ngx_http_apipolicy_redis_fail(node, c->write->timedout
                                            || c->read->timedout
                                      ? "TLS handshake timed out"
                                      : "TLS handshake failed (protocol, "
                                        "client certificate or not TLS: the "
                                        "info line before says)", NULL);
        return;
    }

    if (rd->ssl_verify) {
        v = SSL_get_verify_result(c->ssl->connection);

        if (v != X509_V_OK) {
            detail.data = (u_char *) X509_verify_cert_error_string(v);
            detail.len = ngx_strlen(detail.data);
            ngx_http_apipolicy_redis_fail(node, "TLS certificate not "
                                          "verified", &detail);
            return;
        }

        if (ngx_http_apipolicy_redis_ssl_name_ok(c, &rd->ssl_name)
            != NGX_OK)
        {
            ngx_http_apipolicy_redis_fail(node, "TLS certificate does not "
                                          "match", &rd->ssl_name);
            return;
        }
    }

    if (SSL_session_reused(c->ssl->connection)) {
        node->tls_resumed++;
    }

    c->read->handler = ngx_http_apipolicy_redis_read_handler;
    c->write->handler = ngx_http_apipolicy_redis_write_handler;

    node->ready = 1;

    ngx_http_apipolicy_redis_write_handler(c->write);
}


/* the certificate names the server: a host name, or an IP address */

static ngx_int_t
ngx_http_apipolicy_redis_ssl_name_ok(ngx_connection_t *c, ngx_str_t *name)
{
    X509       *cert;
    ngx_int_t   rc;

    if (name->len == 0) {
        return NGX_OK;              /* a unix socket: nothing to match */
    }

    if (ngx_inet_addr(name->data, name->len) == INADDR_NONE
        && ngx_strlchr(name->data, name->data + name->len, ':') == NULL)
    {
        return ngx_ssl_check_host(c, name);
    }

    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert == NULL) {
        return NGX_ERROR;
    }

    rc = (X509_check_ip_asc(cert, (char *) name->data, 0) == 1)
         ? NGX_OK : NGX_ERROR;

    X509_free(cert);

    return rc;
}

#endif


/* the commands a fresh connection starts with (NULL: none) */

static ngx_http_apipolicy_redis_part_t *
ngx_http_apipolicy_redis_handshake(ngx_http_apipolicy_redis_node_t *node)
{
    u_char                           *p, db[NGX_INT_T_LEN];
    size_t                            len;
    ngx_str_t                         argv[3];
    ngx_http_apipolicy_redis_t       *rd;
    ngx_http_apipolicy_redis_part_t  *part;

    rd = node->rd;
    node->nhs = 0;

    if (node->password->len == 0 && node->db == 0 && !node->master) {
        return NULL;
    }

    len = sizeof(ngx_http_apipolicy_redis_part_t)
          + 3 * (3 * (1 + NGX_INT_T_LEN + 2) + 1 + NGX_INT_T_LEN + 2)
          + sizeof("AUTH") + node->username->len + node->password->len
          + sizeof("SELECT") + NGX_INT_T_LEN + sizeof("ROLE");

    part = ngx_alloc(len, rd->log);
    if (part == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(part, sizeof(ngx_http_apipolicy_redis_part_t));

    part->buf = (u_char *) (part + 1);
    p = part->buf;

    if (node->password->len) {
        ngx_str_set(&argv[0], "AUTH");

        if (node->username->len) {
            argv[1] = *node->username;
            argv[2] = *node->password;
            p = ngx_http_apipolicy_redis_command(p, argv, 3);

        } else {
            argv[1] = *node->password;
            p = ngx_http_apipolicy_redis_command(p, argv, 2);
        }

        node->hs[node->nhs++] = NGX_HTTP_APIPOLICY_REDIS_HS_AUTH;
    }

    if (node->db) {
        ngx_str_set(&argv[0], "SELECT");
        argv[1].data = db;
        argv[1].len = ngx_sprintf(db, "%ui", node->db) - db;
        p = ngx_http_apipolicy_redis_command(p, argv, 2);

        node->hs[node->nhs++] = NGX_HTTP_APIPOLICY_REDIS_HS_SELECT;
    }

    if (node->master) {
        /* what a Sentinel names may have been demoted since */
        ngx_str_set(&argv[0], "ROLE");
        p = ngx_http_apipolicy_redis_command(p, argv, 1);

        node->hs[node->nhs++] = NGX_HTTP_APIPOLICY_REDIS_HS_ROLE;
    }

    part->len = p - part->buf;
    part->n = node->nhs;

    return part;
}


static void
ngx_http_apipolicy_redis_write_handler(ngx_event_t *wev)
{
    ssize_t                           n;
    ngx_queue_t                      *q;
    ngx_connection_t                 *c;
    ngx_http_apipolicy_redis_part_t  *part;
    ngx_http_apipolicy_redis_node_t  *node;

    c = wev->data;
    node = c->data;

    if (wev->timedout) {
        ngx_http_apipolicy_redis_fail(node, "connect timed out", NULL);
        return;
    }

    if (!node->ready) {

        /* connected */

        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        ngx_http_apipolicy_redis_connected(node);

        if (!node->ready) {
            return;                     /* the TLS handshake runs */
        }
    }

    for (q = ngx_queue_head(&node->parts);
         q != ngx_queue_sentinel(&node->parts);
         q = ngx_queue_next(q))
    {
        part = ngx_queue_data(q, ngx_http_apipolicy_redis_part_t, queue);

        while (part->sent < part->len) {

            n = c->send(c, part->buf + part->sent, part->len - part->sent);

            if (n == NGX_ERROR) {
                ngx_http_apipolicy_redis_fail(node,
                                              ngx_http_apipolicy_redis_io_error(
                                                  node, "cannot be written to"),
                                              NULL);
                return;
            }

            if (n == NGX_AGAIN) {
                goto wait;
            }

            part->sent += n;
        }

        if (part->written.tv_sec == 0) {
            ngx_gettimeofday(&part->written);

            if (part->req) {
                node->commands += part->n;
            }
        }
    }

wait:

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_http_apipolicy_redis_fail(node, "cannot wait to send", NULL);
    }
}


/* why a send or recv failed, as well as can be told */

static const char *
ngx_http_apipolicy_redis_io_error(ngx_http_apipolicy_redis_node_t *node,
    const char *otherwise)
{
    if (!node->fresh) {
        return otherwise;
    }

#if (NGX_SSL)
    if (node->pc.connection->ssl) {
        return "broke off TLS before any reply (a client certificate "
               "missing or refused?)";
    }
#endif

    return "refused the connection or cannot be reached";
}


static void
ngx_http_apipolicy_redis_read_handler(ngx_event_t *rev)
{
    void                             *reply;
    ssize_t                           n;
    ngx_connection_t                 *c;
    ngx_http_apipolicy_redis_node_t  *node;
    u_char                            buf[NGX_HTTP_APIPOLICY_REDIS_READ];

    c = rev->data;
    node = c->data;

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_http_apipolicy_redis_fail(node, n == 0
                                          ? "closed the connection"
                                          : ngx_http_apipolicy_redis_io_error(
                                                node, "cannot be read from"),
                                          NULL);
            return;
        }

        if (ngx_queue_empty(&node->parts) && !node->subscriber) {
            ngx_http_apipolicy_redis_fail(node, "sent data nobody asked for",
                                          NULL);
            return;
        }

        if (redisReaderFeed(node->reader, (char *) buf, (size_t) n)
            != REDIS_OK)
        {
            ngx_http_apipolicy_redis_fail(node, "sent a reply that is not "
                                          "RESP", NULL);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(node->reader, &reply) != REDIS_OK) {
                ngx_http_apipolicy_redis_fail(node, "sent a reply that is "
                                              "not RESP", NULL);
                return;
            }

            if (reply == NULL) {
                break;
            }

            if (ngx_http_apipolicy_redis_reply(node, reply) != NGX_OK) {
                return;                     /* the connection is gone */
            }
        }
    }

    if (node->pc.connection
        && ngx_handle_read_event(node->pc.connection->read, 0) != NGX_OK)
    {
        ngx_http_apipolicy_redis_fail(node, "cannot wait to read", NULL);
    }
}


/* one reply: it belongs to the oldest part on the node */

static ngx_int_t
ngx_http_apipolicy_redis_reply(ngx_http_apipolicy_redis_node_t *node,
    redisReply *r)
{
    ngx_uint_t                        i;
    struct timeval                    tv;
    ngx_queue_t                      *q;
    ngx_http_apipolicy_redis_part_t  *part;

    if (ngx_queue_empty(&node->parts)) {
        if (node->subscriber) {
            ngx_http_apipolicy_redis_switch(node, r);
            freeReplyObject(r);
            return node->pc.connection ? NGX_OK : NGX_ERROR;
        }

        freeReplyObject(r);
        ngx_http_apipolicy_redis_fail(node, "sent a reply nobody asked for",
                                      NULL);
        return NGX_ERROR;
    }

    q = ngx_queue_head(&node->parts);
    part = ngx_queue_data(q, ngx_http_apipolicy_redis_part_t, queue);

    node->fresh = 0;

    if (part->req == NULL) {
        return ngx_http_apipolicy_redis_hs_reply(node, part, r);
    }

    node->replies++;

    i = part->index ? part->index[part->got] : part->got;

    if (i == NGX_HTTP_APIPOLICY_REDIS_DISCARD) {
        freeReplyObject(r);                 /* ASKING said OK */

    } else if (r->type == REDIS_REPLY_ERROR
               && ngx_http_apipolicy_redis_error(node, part, r) == NGX_DONE)
    {
        freeReplyObject(r);                 /* sent on to another node */

    } else {
        part->req->replies[i] = r;
    }

    part->got++;

    if (part->got < part->n) {
        return NGX_OK;
    }

    /* the part is complete */

    ngx_gettimeofday(&tv);

    node->rtt = (tv.tv_sec - part->written.tv_sec) * 1000000
                + tv.tv_usec - part->written.tv_usec;

    ngx_http_apipolicy_status_redis(NGX_HTTP_APIPOLICY_STATUS_REDIS_ANSWERED,
                                    node->rtt);

    node->backoff = 0;
    node->retry_at = 0;

    if (node->down) {
        node->down = 0;
        ngx_log_error(NGX_LOG_NOTICE, node->rd->log, 0,
                      "apipolicy redis: %V is reachable again", &node->name);
    }

    ngx_queue_remove(q);
    ngx_http_apipolicy_redis_arm(node);

    ngx_http_apipolicy_redis_part_end(part, NGX_OK);

    if (node->stale && node->pc.connection) {
        ngx_http_apipolicy_redis_fail(node, "answered -READONLY: a replica "
                                      "now", NULL);
    }

    return node->pc.connection ? NGX_OK : NGX_ERROR;
}


/* a reply of the handshake: AUTH and SELECT must say OK, ROLE master */

static ngx_int_t
ngx_http_apipolicy_redis_hs_reply(ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part, redisReply *r)
{
    ngx_str_t   detail;
    ngx_uint_t  kind;

    kind = node->hs[part->got++];

    if (r->type == REDIS_REPLY_ERROR) {
        detail.data = (u_char *) r->str;
        detail.len = r->len;

        ngx_http_apipolicy_redis_fail(node,
                                      kind == NGX_HTTP_APIPOLICY_REDIS_HS_AUTH
                                      ? "refused AUTH (check username= "
                                        "and password=)"
                                      : "refused SELECT (check db=)",
                                      &detail);
        freeReplyObject(r);
        return NGX_ERROR;
    }

    if (kind == NGX_HTTP_APIPOLICY_REDIS_HS_ROLE
        && (r->type != REDIS_REPLY_ARRAY || r->elements == 0
            || r->element[0]->type != REDIS_REPLY_STRING
            || ngx_strncmp(r->element[0]->str, "master", 6) != 0))
    {
        detail.data = (u_char *) "ROLE";
        detail.len = 4;

        if (r->type == REDIS_REPLY_ARRAY && r->elements
            && r->element[0]->type == REDIS_REPLY_STRING)
        {
            detail.data = (u_char *) r->element[0]->str;
            detail.len = r->element[0]->len;
        }

        ngx_http_apipolicy_redis_fail(node, "is not the master now, "
                                      "its role", &detail);
        freeReplyObject(r);
        return NGX_ERROR;
    }

    freeReplyObject(r);

    if (part->got == part->n) {
        node->nhs = 0;
        ngx_queue_remove(&part->queue);
        ngx_free(part);
        ngx_http_apipolicy_redis_arm(node);
    }

    return NGX_OK;
}


/*
 * An error reply to a command of a batch.  With cluster=, -MOVED and
 * -ASK send the command on to the node named (NGX_DONE: the reply is
 * not the command's); -CLUSTERDOWN, -TRYAGAIN and a redirection that
 * cannot be followed fail the batch (Redis is down for it).
 */

static ngx_int_t
ngx_http_apipolicy_redis_error(ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part, redisReply *r)
{
    ngx_http_apipolicy_redis_t  *rd;

    rd = node->rd;

    if (rd->seeds && part->off
        && ((r->len > 6 && ngx_strncmp(r->str, "MOVED ", 6) == 0)
            || (r->len > 4 && ngx_strncmp(r->str, "ASK ", 4) == 0)))
    {
        if (ngx_http_apipolicy_redis_redirect(node, part, r) == NGX_OK) {
            return NGX_DONE;
        }

        part->req->rc = NGX_ERROR;
    }

    if (rd->seeds && r->len >= 8 && ngx_strncmp(r->str, "TRYAGAIN", 8) == 0)
    {
        /* a multi-key command in a slot being moved: again shortly */

        if (ngx_http_apipolicy_redis_again(node, part) == NGX_OK) {
            return NGX_DONE;
        }

        part->req->rc = NGX_ERROR;
    }

    if (rd->seeds && r->len >= 11
        && ngx_strncmp(r->str, "CLUSTERDOWN", 11) == 0)
    {
        /* the slot has no master: not this time */

        part->req->rc = NGX_ERROR;
        ngx_http_apipolicy_redis_cluster_refresh(rd);
    }

    node->errors++;

    if (node->master && r->len >= 8
        && ngx_strncmp(r->str, "READONLY", 8) == 0)
    {
        node->stale = 1;        /* a replica now: ask the Sentinels */
    }

    /* a script not cached yet is part of the EVALSHA dance */

    if (r->len < 8 || ngx_strncmp(r->str, "NOSCRIPT", 8) != 0) {
        ngx_http_apipolicy_status_redis(
                       NGX_HTTP_APIPOLICY_STATUS_REDIS_ERROR_REPLY, 0);
    }

    node->error_len = ngx_min((size_t) r->len,
                              NGX_HTTP_APIPOLICY_REDIS_ERROR_LEN);
    ngx_memcpy(node->error, r->str, node->error_len);

    return NGX_OK;
}


/* the timer follows the earliest deadline of the parts on the node */

static void
ngx_http_apipolicy_redis_arm(ngx_http_apipolicy_redis_node_t *node)
{
    ngx_queue_t                      *q;
    ngx_msec_int_t                    left, l;
    ngx_http_apipolicy_redis_part_t  *part;

    if (ngx_queue_empty(&node->parts)) {
        if (node->timer.timer_set) {
            ngx_del_timer(&node->timer);
        }

        return;
    }

    /* a part redirected here keeps its batch's deadline: not always the
     * first part's */

    left = NGX_MAX_INT_T_VALUE;

    for (q = ngx_queue_head(&node->parts);
         q != ngx_queue_sentinel(&node->parts);
         q = ngx_queue_next(q))
    {
        part = ngx_queue_data(q, ngx_http_apipolicy_redis_part_t, queue);
        l = (ngx_msec_int_t) (part->deadline - ngx_current_msec);

        if (l < left) {
            left = l;
        }
    }

    ngx_add_timer(&node->timer, left > 0 ? (ngx_msec_t) left : 1);
}


static void
ngx_http_apipolicy_redis_timeout(ngx_event_t *ev)
{
    ngx_http_apipolicy_redis_node_t  *node = ev->data;

    if (!ngx_queue_empty(&node->parts)) {
        ngx_http_apipolicy_redis_fail(node, "timed out", NULL);
    }
}


/* a part ended: its replies are in the batch; the last part ends it */

static void
ngx_http_apipolicy_redis_part_end(ngx_http_apipolicy_redis_part_t *part,
    ngx_int_t rc)
{
    ngx_http_apipolicy_redis_req_t  *req;

    req = part->req;

    if (req == NULL) {
        ngx_free(part);                 /* a handshake */
        return;
    }

    if (rc != NGX_OK) {
        req->rc = rc;
    }

    if ((u_char *) part != (u_char *) (req->replies + req->n)) {
        ngx_free(part);                 /* not the one made with req */
    }

    if (--req->parts == 0) {
        ngx_http_apipolicy_redis_req_end(req);
    }
}


static void
ngx_http_apipolicy_redis_req_end(ngx_http_apipolicy_redis_req_t *req)
{
    ngx_uint_t  i;

    if (req->done) {
        req->done(req->data, req->replies,
                  req->rc == NGX_OK ? req->n : 0, req->rc);
    }

    for (i = 0; i < req->n; i++) {
        if (req->replies[i]) {
            freeReplyObject(req->replies[i]);
        }
    }

    ngx_free(req);
}


static void
ngx_http_apipolicy_redis_fail(ngx_http_apipolicy_redis_node_t *node,
    const char *why, ngx_str_t *detail)
{
    u_char                           *p;
    ngx_queue_t                      *q;
    ngx_http_apipolicy_redis_part_t  *part;

    ngx_http_apipolicy_redis_drop(node);

    node->nhs = 0;
    node->stale = 0;
    node->errors++;

    ngx_http_apipolicy_status_redis(NGX_HTTP_APIPOLICY_STATUS_REDIS_FAILED, 0);

    p = ngx_snprintf(node->error, NGX_HTTP_APIPOLICY_REDIS_ERROR_LEN, "%s%s%*s",
                     why, detail ? ": " : "", detail ? detail->len : 0,
                     detail ? detail->data : (u_char *) "");
    node->error_len = p - node->error;

    node->backoff = node->backoff
                    ? ngx_min(node->backoff * 2,
                              NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MAX)
                    : NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MIN;
    node->retry_at = ngx_current_msec + node->backoff;

    if (node->retry_at == 0) {
        node->retry_at = 1;
    }

    if (!node->down) {
        node->down = 1;
        ngx_log_error(NGX_LOG_ERR, node->rd->log, 0,
                      "apipolicy redis: %V %*s; working without it until "
                      "it answers again", &node->name, node->error_len,
                      node->error);

    } else {
        ngx_log_error(NGX_LOG_INFO, node->rd->log, 0,
                      "apipolicy redis: %V %*s", &node->name,
                      node->error_len, node->error);
    }

    if (node->timer.timer_set) {
        ngx_del_timer(&node->timer);
    }

    /* a master from a Sentinel: it may have moved, ask again */

    if (node->master) {
        node->known = 0;
    }

    /* every part on the node fails; their handlers may queue anew */

    while (!ngx_queue_empty(&node->parts)) {
        q = ngx_queue_head(&node->parts);
        ngx_queue_remove(q);

        part = ngx_queue_data(q, ngx_http_apipolicy_redis_part_t, queue);
        ngx_http_apipolicy_redis_part_end(part, NGX_ERROR);
    }

    if (node->master) {
        ngx_http_apipolicy_redis_discover(node->rd);
    }

    /* the subscription: again after the back-off, on the next Sentinel */

    if (node->subscriber && !node->rd->discover_ev.timer_set && !ngx_exiting)
    {
        ngx_add_timer(&node->rd->discover_ev, node->backoff);
    }

    /* Cluster: a replica may be taking over its slots */

    if (node->rd->seeds) {
        ngx_http_apipolicy_redis_cluster_refresh(node->rd);
    }
}


/*
 * Sentinel discovery and cluster slot refresh share one pace: a round
 * that found nothing waits discover_backoff (doubling from
 * NGX_HTTP_APIPOLICY_REDIS_DISCOVER_MIN to _MAX) before the next.
 * discover_wait(): 1 while that wait lasts (the timer armed), else 0.
 */

static ngx_uint_t
ngx_http_apipolicy_redis_discover_wait(ngx_http_apipolicy_redis_t *rd)
{
    if (rd->discover_at
        && (ngx_msec_int_t) (rd->discover_at - ngx_current_msec) > 0)
    {
        if (!rd->discover_ev.timer_set) {
            ngx_add_timer(&rd->discover_ev,
                          rd->discover_at - ngx_current_msec);
        }

        return 1;
    }

    return 0;
}


/* a round found nothing: the next one after a longer wait */

static void
ngx_http_apipolicy_redis_discover_later(ngx_http_apipolicy_redis_t *rd)
{
    rd->discover_backoff = rd->discover_backoff
                           ? ngx_min(rd->discover_backoff * 2,
                                     NGX_HTTP_APIPOLICY_REDIS_DISCOVER_MAX)
                           : NGX_HTTP_APIPOLICY_REDIS_DISCOVER_MIN;
    rd->discover_at = ngx_current_msec + rd->discover_backoff;

    if (rd->discover_at == 0) {
        rd->discover_at = 1;
    }

    if (rd->discover_ev.timer_set) {
        ngx_del_timer(&rd->discover_ev);
    }

    ngx_add_timer(&rd->discover_ev, rd->discover_backoff);
}


/* ---- Sentinel ---------------------------------------------------------- */

/*
 * The Sentinels are asked in turn (each bounded by connect_timeout and
 * timeout) for the master of master=; a round that finds none is tried
 * again after 100 ms, doubling up to 2 s.
 */

static void
ngx_http_apipolicy_redis_discover(ngx_http_apipolicy_redis_t *rd)
{
    u_char                          *p;
    ngx_str_t                        argv[3];
    ngx_http_apipolicy_redis_cmd_t   cmd;
    u_char                           buf[128 + NGX_HTTP_APIPOLICY_REDIS_PREFIX_MAX];

    if (rd->sentinel == NULL || rd->asking || ngx_exiting) {
        return;
    }

    if (ngx_http_apipolicy_redis_discover_wait(rd)) {
        return;
    }

    ngx_str_set(&argv[0], "SENTINEL");
    ngx_str_set(&argv[1], "get-master-addr-by-name");
    argv[2] = rd->master;

    if (ngx_http_apipolicy_redis_command_len(argv, 3) > sizeof(buf)) {
        return;
    }

    p = ngx_http_apipolicy_redis_command(buf, argv, 3);

    cmd.cmd.data = buf;
    cmd.cmd.len = p - buf;
    ngx_str_null(&cmd.key);

    while (rd->asked < rd->nsentinels) {
        rd->asked++;

        if (ngx_http_apipolicy_redis_send_node(rd->sentinel[rd->next], &cmd,
                                               1,
                                               ngx_http_apipolicy_redis_discovered,
                                               rd)
            == NGX_OK)
        {
            rd->asking = 1;
            return;
        }

        rd->next = (rd->next + 1) % rd->nsentinels;
    }

    /* every Sentinel was asked in vain: a while before the next round */

    rd->asked = 0;

    if (!rd->lost) {
        rd->lost = 1;
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "apipolicy redis: no Sentinel of \"%V\" names a "
                      "master for \"%V\"; working without Redis until one "
                      "does", &rd->name, &rd->master);
    }

    ngx_http_apipolicy_redis_discover_later(rd);
}


static void
ngx_http_apipolicy_redis_discover_handler(ngx_event_t *ev)
{
    ngx_http_apipolicy_redis_t  *rd = ev->data;

    if (!rd->node->known) {
        ngx_http_apipolicy_redis_discover(rd);
    }

    ngx_http_apipolicy_redis_subscribe(rd);
}


/*
 * +switch-master: one connection to a Sentinel (the next one after each
 * failure), subscribed, so that a failover moves the master as soon as
 * the Sentinels announce it, not at the next failed batch
 */

static void
ngx_http_apipolicy_redis_subscribe(ngx_http_apipolicy_redis_t *rd)
{
    ngx_http_apipolicy_redis_cmd_t    cmd;
    ngx_http_apipolicy_redis_node_t  *sub, *s;

    sub = rd->sub;

    if (sub == NULL || sub->pc.connection || ngx_exiting) {
        return;
    }

    if (ngx_http_apipolicy_redis_waiting(sub)) {
        if (!rd->discover_ev.timer_set) {
            ngx_add_timer(&rd->discover_ev, sub->retry_at - ngx_current_msec);
        }

        return;
    }

    s = rd->sentinel[rd->sub_next++ % rd->nsentinels];

    sub->name = s->name;
    sub->sockaddr = s->sockaddr;
    sub->socklen = s->socklen;

    ngx_str_set(&cmd.cmd,
                "*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n");
    ngx_str_null(&cmd.key);

    (void) ngx_http_apipolicy_redis_send_node(sub, &cmd, 1, NULL, NULL);
}


/* ["message", "+switch-master", "NAME OLDIP OLDPORT NEWIP NEWPORT"] */

static void
ngx_http_apipolicy_redis_switch(ngx_http_apipolicy_redis_node_t *sub,
    redisReply *r)
{
    u_char                      *p, *last, *f[5], *t;
    size_t                       len[5];
    ngx_uint_t                   i;
    ngx_http_apipolicy_redis_t  *rd;
    u_char                       text[NGX_SOCKADDR_STRLEN];

    rd = sub->rd;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[0]->len != 7
        || ngx_strncmp(r->element[0]->str, "message", 7) != 0
        || r->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    p = (u_char *) r->element[2]->str;
    last = p + r->element[2]->len;

    for (i = 0; i < 5; i++) {
        f[i] = p;

        while (p < last && *p != ' ') {
            p++;
        }

        len[i] = p - f[i];

        if (i < 4) {
            if (p == last) {
                return;
            }

            p++;
        }
    }

    if (len[0] != rd->master.len
        || ngx_strncmp(f[0], rd->master.data, len[0]) != 0
        || len[3] + len[4] + 4 > sizeof(text))
    {
        return;
    }

    t = ngx_strlchr(f[3], f[3] + len[3], ':')
        ? ngx_sprintf(text, "[%*s]:%*s", len[3], f[3], len[4], f[4])
        : ngx_sprintf(text, "%*s:%*s", len[3], f[3], len[4], f[4]);

    if (rd->node->name.len == (size_t) (t - text)
        && ngx_strncmp(rd->node->name.data, text, t - text) == 0
        && rd->node->sockaddr)
    {
        return;                         /* known already */
    }

    ngx_http_apipolicy_redis_moved_master(rd, sub, text, t - text);
}


/* a Sentinel answered: [ip, port] of the master, or nil */

static void
ngx_http_apipolicy_redis_discovered(void *data, redisReply **replies,
    ngx_uint_t n, ngx_int_t rc)
{
    ngx_http_apipolicy_redis_t *rd = data;

    u_char                           *p;
    size_t                            len;
    redisReply                       *r;
    ngx_http_apipolicy_redis_node_t  *node, *sentinel;
    u_char                            text[NGX_SOCKADDR_STRLEN];

    rd->asking = 0;
    node = rd->node;
    sentinel = rd->sentinel[rd->next];

    r = (rc == NGX_OK && n == 1) ? replies[0] : NULL;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING
        || r->element[0]->len + r->element[1]->len + 3 > sizeof(text))
    {
        if (r) {
            ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                          "apipolicy redis: Sentinel %V knows no master "
                          "\"%V\"", &sentinel->name, &rd->master);
        }

        rd->next = (rd->next + 1) % rd->nsentinels;
        ngx_http_apipolicy_redis_discover(rd);
        return;
    }

    /* IPv6 in brackets, as nginx writes addresses */

    p = text;

    if (ngx_strlchr((u_char *) r->element[0]->str,
                    (u_char *) r->element[0]->str + r->element[0]->len, ':'))
    {
        p = ngx_sprintf(p, "[%*s]:%*s", r->element[0]->len,
                        r->element[0]->str, r->element[1]->len,
                        r->element[1]->str);
    } else {
        p = ngx_sprintf(p, "%*s:%*s", r->element[0]->len, r->element[0]->str,
                        r->element[1]->len, r->element[1]->str);
    }

    len = p - text;

    rd->asked = 0;
    rd->discover_backoff = 0;
    rd->discover_at = ngx_current_msec + NGX_HTTP_APIPOLICY_REDIS_DISCOVER_MIN;
    rd->lost = 0;

    if (node->name.len == len && ngx_strncmp(node->name.data, text, len) == 0
        && node->sockaddr)
    {
        node->known = 1;                /* the same: its back-off holds */
        return;
    }

    ngx_http_apipolicy_redis_moved_master(rd, sentinel, text, len);
}


/* the master is at another address now */

static void
ngx_http_apipolicy_redis_moved_master(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_node_t *sentinel, u_char *text, size_t len)
{
    ngx_addr_t                        addr;
    ngx_pool_t                       *pool;
    ngx_http_apipolicy_redis_node_t  *node;

    node = rd->node;

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, rd->log);
    if (pool == NULL) {
        return;
    }

    if (ngx_parse_addr_port(pool, &addr, text, len) != NGX_OK
        || addr.socklen > sizeof(ngx_sockaddr_t))
    {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "apipolicy redis: Sentinel %V names \"%*s\" as the "
                      "master of \"%V\", not an address",
                      &sentinel->name, len, text, &rd->master);
        ngx_destroy_pool(pool);
        return;
    }

    /* the master moved: what was on the old one fails, the new one is
     * tried at once */

    if (node->pc.connection || !ngx_queue_empty(&node->parts)) {
        ngx_http_apipolicy_redis_fail(node, "is no longer the master", NULL);
    }

    ngx_memcpy(&node->sockaddr_buf, addr.sockaddr, addr.socklen);
    node->sockaddr = &node->sockaddr_buf.sockaddr;
    node->socklen = addr.socklen;

    ngx_destroy_pool(pool);

    ngx_memcpy(node->name_buf, text, len);
    node->name.data = node->name_buf;
    node->name.len = len;

    node->known = 1;
    node->backoff = 0;
    node->retry_at = 0;

    ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                  "apipolicy redis: Sentinel %V names %V as the master of "
                  "\"%V\"", &sentinel->name, &node->name, &rd->master);
}


static void
ngx_http_apipolicy_redis_node_close(ngx_http_apipolicy_redis_node_t *node)
{
    ngx_queue_t                      *q;
    ngx_http_apipolicy_redis_part_t  *part;

    if (node->timer.timer_set) {
        ngx_del_timer(&node->timer);
    }

    ngx_http_apipolicy_redis_drop(node);

#if (NGX_SSL)
    if (node->session) {
        ngx_ssl_free_session(node->session);
        node->session = NULL;
    }
#endif

    if (node->reader) {
        redisReaderFree(node->reader);
        node->reader = NULL;
    }

    while (!ngx_queue_empty(&node->parts)) {
        q = ngx_queue_head(&node->parts);
        ngx_queue_remove(q);

        part = ngx_queue_data(q, ngx_http_apipolicy_redis_part_t, queue);

        if (part->req) {
            part->req->done = NULL;     /* nobody to tell at exit */
        }

        ngx_http_apipolicy_redis_part_end(part, NGX_ERROR);
    }
}


/* the connection goes (its TLS session is kept for the next one) */

static void
ngx_http_apipolicy_redis_drop(ngx_http_apipolicy_redis_node_t *node)
{
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    c = node->pc.connection;
    node->ready = 0;

    if (c == NULL) {
        return;
    }

#if (NGX_SSL)
    if (c->ssl) {
        if (c->ssl->handshaked) {
            if (node->session) {
                ngx_ssl_free_session(node->session);
            }

            node->session = ngx_ssl_get_session(c);
        }

        c->ssl->no_wait_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }
#endif

    pool = c->pool;

    ngx_close_connection(c);
    node->pc.connection = NULL;

    if (pool) {
        ngx_destroy_pool(pool);
    }
}


void
ngx_http_apipolicy_redis_close(ngx_http_apipolicy_redis_t *rd)
{
    ngx_uint_t                        i;
    ngx_queue_t                      *q;
    ngx_http_apipolicy_redis_part_t  *part;

    if (rd->discover_ev.timer_set) {
        ngx_del_timer(&rd->discover_ev);
    }

    if (rd->node) {
        ngx_http_apipolicy_redis_node_close(rd->node);
    }

    for (i = 0; i < rd->nsentinels; i++) {
        ngx_http_apipolicy_redis_node_close(rd->sentinel[i]);
    }

    if (rd->sub) {
        ngx_http_apipolicy_redis_node_close(rd->sub);
    }

    for (i = 0; rd->nodes && i < rd->nodes->nelts; i++) {
        ngx_http_apipolicy_redis_node_close(
                    ((ngx_http_apipolicy_redis_node_t **) rd->nodes->elts)[i]);
    }

    if (rd->seeds) {
        if (rd->again_ev.timer_set) {
            ngx_del_timer(&rd->again_ev);
        }

        while (!ngx_queue_empty(&rd->again)) {
            q = ngx_queue_head(&rd->again);
            ngx_queue_remove(q);

            part = ngx_queue_data(q, ngx_http_apipolicy_redis_part_t, queue);
            part->req->done = NULL;     /* nobody to tell at exit */
            ngx_http_apipolicy_redis_part_end(part, NGX_ERROR);
        }
    }
}


/* ---- Cluster ----------------------------------------------------------- */

/*
 * cluster=: the nodes are asked in turn for the slot map (CLUSTER SLOTS)
 * and each command goes to the master of its key's slot (CRC16 of the
 * key, or of its {hash tag}, mod 16384).  A batch is split into one part
 * per master, pipelined on that master's connection behind what is
 * already there; the replies go back into the batch in its order.
 * -MOVED updates the slot, asks for the map again (at most every 100 ms)
 * and sends the command on to the node named; -ASK sends ASKING and the
 * command to the node named, this once.  A command follows at most
 * NGX_HTTP_APIPOLICY_REDIS_HOPS redirections, and none of them extends
 * its batch's deadline.
 */

static uint16_t  ngx_http_apipolicy_redis_crc16[256];


static ngx_int_t
ngx_http_apipolicy_redis_cluster_init(ngx_http_apipolicy_redis_t *rd)
{
    uint16_t                          crc;
    ngx_uint_t                        i, k;
    ngx_http_apipolicy_redis_addr_t  *addr;
    ngx_http_apipolicy_redis_node_t  *node;

    /* CRC16-CCITT (XMODEM), the hash of Redis Cluster */

    for (i = 0; i < 256; i++) {
        crc = (uint16_t) (i << 8);

        for (k = 0; k < 8; k++) {
            crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021)
                                 : (uint16_t) (crc << 1);
        }

        ngx_http_apipolicy_redis_crc16[i] = crc;
    }

    rd->slots = ngx_pcalloc(rd->pool,
                            NGX_HTTP_APIPOLICY_REDIS_SLOTS * sizeof(uint16_t));
    if (rd->slots == NULL) {
        return NGX_ERROR;
    }

    rd->nodes = ngx_array_create(rd->pool, rd->seeds->nelts + 4,
                                 sizeof(ngx_http_apipolicy_redis_node_t *));
    if (rd->nodes == NULL) {
        return NGX_ERROR;
    }

    addr = rd->seeds->elts;

    for (i = 0; i < rd->seeds->nelts; i++) {
        node = ngx_http_apipolicy_redis_cluster_add(rd, &addr[i].name,
                                                    addr[i].sockaddr,
                                                    addr[i].socklen, 0);
        if (node == NULL) {
            return NGX_ERROR;
        }

        node->seed = 1;
    }

    rd->discover_ev.handler = ngx_http_apipolicy_redis_cluster_handler;
    rd->discover_ev.data = rd;
    rd->discover_ev.log = rd->log;
    rd->discover_ev.cancelable = 1;

    ngx_add_timer(&rd->discover_ev, 1);

    ngx_queue_init(&rd->again);

    rd->again_ev.handler = ngx_http_apipolicy_redis_again_handler;
    rd->again_ev.data = rd;
    rd->again_ev.log = rd->log;
    rd->again_ev.cancelable = 1;

    return NGX_OK;
}


/* the slot of a key: of its {hash tag} when it has a non-empty one */

static ngx_uint_t
ngx_http_apipolicy_redis_slot(ngx_str_t *key)
{
    u_char    *p, *last, *open, *close;
    uint16_t   crc;

    p = key->data;
    last = p + key->len;

    open = ngx_strlchr(p, last, '{');

    if (open) {
        close = ngx_strlchr(open + 1, last, '}');

        if (close && close > open + 1) {
            p = open + 1;
            last = close;
        }
    }

    for (crc = 0; p < last; p++) {
        crc = (uint16_t) (crc << 8)
              ^ ngx_http_apipolicy_redis_crc16[((crc >> 8) ^ *p) & 0xff];
    }

    return crc & (NGX_HTTP_APIPOLICY_REDIS_SLOTS - 1);
}


/* a node by its address: the one met before, or a new one */

static ngx_http_apipolicy_redis_node_t *
ngx_http_apipolicy_redis_cluster_add(ngx_http_apipolicy_redis_t *rd,
    ngx_str_t *name, struct sockaddr *sockaddr, socklen_t socklen,
    ngx_uint_t copy)
{
    ngx_uint_t                         i;
    ngx_http_apipolicy_redis_node_t   *node, **nodes;

    nodes = rd->nodes->elts;

    for (i = 0; i < rd->nodes->nelts; i++) {
        if (ngx_cmp_sockaddr(nodes[i]->sockaddr, nodes[i]->socklen,
                             sockaddr, socklen, 1)
            == NGX_OK)
        {
            return nodes[i];
        }
    }

    if (rd->nodes->nelts == 65535
        || (copy && (socklen > sizeof(ngx_sockaddr_t)
                     || name->len > NGX_SOCKADDR_STRLEN)))
    {
        return NULL;
    }

    node = ngx_http_apipolicy_redis_node(rd, rd->pool, name, sockaddr,
                                         socklen);
    if (node == NULL) {
        return NULL;
    }

    if (copy) {
        ngx_memcpy(&node->sockaddr_buf, sockaddr, socklen);
        node->sockaddr = &node->sockaddr_buf.sockaddr;

        ngx_memcpy(node->name_buf, name->data, name->len);
        node->name.data = node->name_buf;
    }

    node->known = 1;

    nodes = ngx_array_push(rd->nodes);
    if (nodes == NULL) {
        return NULL;
    }

    *nodes = node;

    return node;
}


/* a node named "ip:port" by the cluster (a map, a -MOVED, an -ASK) */

static ngx_http_apipolicy_redis_node_t *
ngx_http_apipolicy_redis_cluster_node(ngx_http_apipolicy_redis_t *rd,
    u_char *text, size_t len)
{
    ngx_str_t                         name;
    ngx_uint_t                        i;
    ngx_addr_t                        addr;
    ngx_pool_t                       *pool;
    ngx_http_apipolicy_redis_node_t  *node, **nodes;

    nodes = rd->nodes->elts;

    for (i = 0; i < rd->nodes->nelts; i++) {
        if (nodes[i]->name.len == len
            && ngx_strncmp(nodes[i]->name.data, text, len) == 0)
        {
            return nodes[i];
        }
    }

    pool = ngx_create_pool(1024, rd->log);
    if (pool == NULL) {
        return NULL;
    }

    if (ngx_parse_addr_port(pool, &addr, text, len) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "apipolicy redis: the cluster names \"%*s\", not an "
                      "IP address and port (with host names, set "
                      "cluster-preferred-endpoint-type ip)", len, text);
        ngx_destroy_pool(pool);
        return NULL;
    }

    name.data = text;
    name.len = len;

    node = ngx_http_apipolicy_redis_cluster_add(rd, &name, addr.sockaddr,
                                                addr.socklen, 1);

    ngx_destroy_pool(pool);

    return node;
}


/* a node is not tried while its back-off runs */

static ngx_uint_t
ngx_http_apipolicy_redis_waiting(ngx_http_apipolicy_redis_node_t *node)
{
    return node->pc.connection == NULL && node->retry_at
           && (ngx_msec_int_t) (node->retry_at - ngx_current_msec) > 0;
}


/*
 * A batch split by master: every key's master must be known and not in
 * its back-off, else the batch is not sent (NGX_DECLINED: Redis is down
 * for it) and the map is asked for again.
 */

static ngx_int_t
ngx_http_apipolicy_redis_cluster_send(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_cmd_t *cmds, ngx_uint_t ncmds,
    ngx_http_apipolicy_redis_done_pt done, void *data)
{
    ngx_uint_t                         i, s, nparts;
    ngx_http_apipolicy_redis_req_t    *req;
    ngx_http_apipolicy_redis_node_t  **list, **masters, **nodes, *node;

    if (ncmds == 0) {
        return NGX_ERROR;
    }

    if (!rd->mapped) {
        ngx_http_apipolicy_redis_cluster_refresh(rd);
        return NGX_DECLINED;
    }

    list = ngx_alloc(2 * ncmds * sizeof(ngx_http_apipolicy_redis_node_t *),
                     rd->log);
    if (list == NULL) {
        return NGX_ERROR;
    }

    masters = list + ncmds;

    nodes = rd->nodes->elts;

    for (i = 0; i < ncmds; i++) {
        s = rd->slots[ngx_http_apipolicy_redis_slot(&cmds[i].key)];
        node = s ? nodes[s - 1] : NULL;

        if (node == NULL || ngx_http_apipolicy_redis_waiting(node)) {
            ngx_free(list);
            ngx_http_apipolicy_redis_cluster_refresh(rd);
            return NGX_DECLINED;
        }

        list[i] = node;
    }

    req = ngx_alloc(sizeof(ngx_http_apipolicy_redis_req_t)
                    + ncmds * sizeof(redisReply *), rd->log);
    if (req == NULL) {
        ngx_free(list);
        return NGX_ERROR;
    }

    req->done = done;
    req->data = data;
    req->n = ncmds;
    req->parts = 1;                     /* held until every part is out */
    req->rc = NGX_OK;
    req->deadline = ngx_current_msec + rd->timeout;
    req->replies = (redisReply **) (req + 1);

    ngx_memzero(req->replies, ncmds * sizeof(redisReply *));

    nparts = ngx_http_apipolicy_redis_split(req, cmds, list, masters);

    if (nparts == 0) {
        ngx_free(list);
        ngx_free(req);
        return NGX_ERROR;
    }

    for (i = 0; i < nparts; i++) {
        node = masters[i];

        req->parts++;

        if (ngx_http_apipolicy_redis_queue(node, node->part) != NGX_OK) {
            req->parts--;
            req->rc = NGX_ERROR;
            ngx_free(node->part);
        }

        node->part = NULL;
    }

    ngx_free(list);

    if (--req->parts == 0) {
        ngx_free(req);                  /* nothing went: nobody is told */
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The parts of a batch, one per master: command i goes to list[i]; the
 * masters are put in masters[], each with its part in node->part.
 * Returns how many, 0 when out of memory (nothing made).
 */

static ngx_uint_t
ngx_http_apipolicy_redis_split(ngx_http_apipolicy_redis_req_t *req,
    ngx_http_apipolicy_redis_cmd_t *cmds,
    ngx_http_apipolicy_redis_node_t **list,
    ngx_http_apipolicy_redis_node_t **masters)
{
    ngx_uint_t                        i, k, n;
    ngx_http_apipolicy_redis_part_t  *part;
    ngx_http_apipolicy_redis_node_t  *node;

    for (i = 0; i < req->n; i++) {
        list[i]->batch++;
        list[i]->batch_len += cmds[i].cmd.len;
    }

    for (n = 0, i = 0; i < req->n; i++) {
        node = list[i];

        if (node->part) {
            continue;
        }

        part = ngx_alloc(sizeof(ngx_http_apipolicy_redis_part_t)
                         + node->batch * sizeof(ngx_uint_t)
                         + (node->batch + 1) * sizeof(size_t)
                         + node->batch_len, node->rd->log);
        if (part == NULL) {
            break;
        }

        ngx_memzero(part, sizeof(ngx_http_apipolicy_redis_part_t));

        part->req = req;
        part->index = (ngx_uint_t *) (part + 1);
        part->off = (size_t *) (part->index + node->batch);
        part->buf = (u_char *) (part->off + node->batch + 1);
        part->slot = NGX_HTTP_APIPOLICY_REDIS_SLOTS;    /* several */
        part->deadline = req->deadline;

        node->part = part;
        masters[n++] = node;
    }

    if (i < req->n) {
        for (k = 0; k < n; k++) {
            ngx_free(masters[k]->part);
            masters[k]->part = NULL;
        }

        for (i = 0; i < req->n; i++) {
            list[i]->batch = 0;
            list[i]->batch_len = 0;
        }

        return 0;
    }

    /* each command, in the batch's order, behind those of its master */

    for (i = 0; i < req->n; i++) {
        part = list[i]->part;

        part->index[part->n] = i;
        part->off[part->n] = part->len;
        ngx_memcpy(part->buf + part->len, cmds[i].cmd.data, cmds[i].cmd.len);
        part->len += cmds[i].cmd.len;
        part->n++;
    }

    for (k = 0; k < n; k++) {
        part = masters[k]->part;
        part->off[part->n] = part->len;
        masters[k]->batch = 0;
        masters[k]->batch_len = 0;
    }

    return n;
}


/* "-MOVED SLOT IP:PORT", "-ASK SLOT IP:PORT": the command goes there */

static ngx_int_t
ngx_http_apipolicy_redis_redirect(ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part, redisReply *r)
{
    u_char                           *p, *last, *addr;
    ngx_int_t                         slot;
    ngx_uint_t                        ask;
    ngx_http_apipolicy_redis_t       *rd;
    ngx_http_apipolicy_redis_part_t  *next;
    ngx_http_apipolicy_redis_node_t  *target;

    rd = node->rd;
    ask = (r->str[0] == 'A');

    p = (u_char *) r->str + (ask ? 4 : 6);
    last = (u_char *) r->str + r->len;

    addr = ngx_strlchr(p, last, ' ');
    if (addr == NULL) {
        return NGX_ERROR;
    }

    slot = ngx_atoi(p, addr - p);
    addr++;

    if (slot == NGX_ERROR || slot >= NGX_HTTP_APIPOLICY_REDIS_SLOTS
        || part->hops >= NGX_HTTP_APIPOLICY_REDIS_HOPS)
    {
        return NGX_ERROR;
    }

    target = ngx_http_apipolicy_redis_cluster_node(rd, addr, last - addr);
    if (target == NULL) {
        return NGX_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, rd->log, 0,
                   "apipolicy redis: %V answered %s %i: sent to %V",
                   &node->name, ask ? "ASK" : "MOVED", slot, &target->name);

    if (ask) {
        node->asked++;

    } else {
        /* the slot has moved for good: the rest of the map may have too */

        node->moved++;
        rd->slots[slot] = (uint16_t) (ngx_http_apipolicy_redis_index(rd,
                                                                    target)
                                      + 1);
        ngx_http_apipolicy_redis_cluster_refresh(rd);
    }

    if (ngx_http_apipolicy_redis_waiting(target)) {
        return NGX_ERROR;
    }

    next = ngx_http_apipolicy_redis_forward(part, ask, (ngx_uint_t) slot);
    if (next == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_redis_queue(target, next) != NGX_OK) {
        next->req->parts--;
        ngx_free(next);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The command a part is at, alone in a part of its own for the same
 * batch (behind ASKING for an -ASK), counted in the batch's parts
 */

static ngx_http_apipolicy_redis_part_t *
ngx_http_apipolicy_redis_forward(ngx_http_apipolicy_redis_part_t *part,
    ngx_uint_t ask, ngx_uint_t slot)
{
    size_t                            len, pre;
    ngx_uint_t                        i, k;
    ngx_http_apipolicy_redis_part_t  *next;

    static u_char  asking[] = "*1\r\n$6\r\nASKING\r\n";

    i = part->got;
    len = part->off[i + 1] - part->off[i];
    pre = ask ? sizeof(asking) - 1 : 0;
    k = ask ? 2 : 1;

    next = ngx_alloc(sizeof(ngx_http_apipolicy_redis_part_t)
                     + k * sizeof(ngx_uint_t) + (k + 1) * sizeof(size_t)
                     + pre + len, ngx_cycle->log);
    if (next == NULL) {
        return NULL;
    }

    ngx_memzero(next, sizeof(ngx_http_apipolicy_redis_part_t));

    next->req = part->req;
    next->index = (ngx_uint_t *) (next + 1);
    next->off = (size_t *) (next->index + k);
    next->buf = (u_char *) (next->off + k + 1);
    next->n = k;
    next->hops = part->hops + 1;
    next->slot = slot;
    next->deadline = part->deadline;

    ngx_memcpy(next->buf, asking, pre);
    ngx_memcpy(next->buf + pre, part->buf + part->off[i], len);
    next->len = pre + len;

    next->index[0] = NGX_HTTP_APIPOLICY_REDIS_DISCARD;
    next->index[k - 1] = part->index ? part->index[i] : i;
    next->off[0] = 0;
    next->off[1] = pre;
    next->off[k] = pre + len;

    next->req->parts++;

    return next;
}


/*
 * -TRYAGAIN (a command of several keys met a slot half moved): the
 * command goes again to the slot's master in 25 ms, as long as its
 * batch's deadline allows
 */

static ngx_int_t
ngx_http_apipolicy_redis_again(ngx_http_apipolicy_redis_node_t *node,
    ngx_http_apipolicy_redis_part_t *part)
{
    ngx_http_apipolicy_redis_t       *rd;
    ngx_http_apipolicy_redis_part_t  *next;

    rd = node->rd;

    if (part->slot >= NGX_HTTP_APIPOLICY_REDIS_SLOTS
        || (ngx_msec_int_t) (part->deadline - ngx_current_msec)
           <= NGX_HTTP_APIPOLICY_REDIS_AGAIN)
    {
        return NGX_ERROR;
    }

    next = ngx_http_apipolicy_redis_forward(part, 0, part->slot);
    if (next == NULL) {
        return NGX_ERROR;
    }

    next->hops = 0;         /* bounded by the deadline: 25 ms a turn */

    ngx_queue_insert_tail(&rd->again, &next->queue);

    if (!rd->again_ev.timer_set) {
        ngx_add_timer(&rd->again_ev, NGX_HTTP_APIPOLICY_REDIS_AGAIN);
    }

    return NGX_OK;
}


static void
ngx_http_apipolicy_redis_again_handler(ngx_event_t *ev)
{
    ngx_http_apipolicy_redis_t *rd = ev->data;

    ngx_uint_t                         s;
    ngx_queue_t                        again, *q;
    ngx_http_apipolicy_redis_part_t   *part;
    ngx_http_apipolicy_redis_node_t   *target, **nodes;

    /* those queued from here on wait for the next turn */

    ngx_queue_init(&again);

    if (!ngx_queue_empty(&rd->again)) {
        again = rd->again;
        again.next->prev = &again;
        again.prev->next = &again;
        ngx_queue_init(&rd->again);
    }

    while (!ngx_queue_empty(&again)) {
        q = ngx_queue_head(&again);
        ngx_queue_remove(q);

        part = ngx_queue_data(q, ngx_http_apipolicy_redis_part_t, queue);

        nodes = rd->nodes->elts;
        s = rd->slots[part->slot];
        target = s ? nodes[s - 1] : NULL;

        if (target == NULL || ngx_exiting
            || ngx_http_apipolicy_redis_waiting(target)
            || ngx_http_apipolicy_redis_queue(target, part) != NGX_OK)
        {
            ngx_http_apipolicy_redis_part_end(part, NGX_ERROR);
        }
    }
}


static ngx_uint_t
ngx_http_apipolicy_redis_index(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_node_t *node)
{
    ngx_uint_t                         i;
    ngx_http_apipolicy_redis_node_t  **nodes;

    nodes = rd->nodes->elts;

    for (i = 0; nodes[i] != node; i++) { /* void */ }

    return i;
}


/*
 * The map is asked of the nodes in turn (each bounded by connect_timeout
 * and timeout), the one that answered last first; at most every 100 ms,
 * and a round that finds none is tried again after 100 ms, doubling up
 * to 2 s.
 */

static void
ngx_http_apipolicy_redis_cluster_refresh(ngx_http_apipolicy_redis_t *rd)
{
    ngx_uint_t                         n;
    ngx_http_apipolicy_redis_cmd_t     cmd;
    ngx_http_apipolicy_redis_node_t  **nodes;

    if (rd->asking || rd->refreshing || ngx_exiting) {
        return;
    }

    if (ngx_http_apipolicy_redis_discover_wait(rd)) {
        return;
    }

    ngx_str_set(&cmd.cmd, "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n");
    ngx_str_null(&cmd.key);

    rd->refreshing = 1;

    nodes = rd->nodes->elts;
    n = rd->nodes->nelts;

    while (rd->asked < n) {
        rd->asked++;
        rd->next %= n;

        if (ngx_http_apipolicy_redis_send_node(nodes[rd->next], &cmd, 1,
                                               ngx_http_apipolicy_redis_mapped,
                                               nodes[rd->next])
            == NGX_OK)
        {
            rd->asking = 1;
            rd->refreshing = 0;
            return;
        }

        rd->next = (rd->next + 1) % n;
    }

    rd->refreshing = 0;
    rd->asked = 0;

    if (!rd->lost) {
        rd->lost = 1;
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "apipolicy redis: no node of \"%V\" answers CLUSTER "
                      "SLOTS; working without Redis until one does",
                      &rd->name);
    }

    ngx_http_apipolicy_redis_discover_later(rd);
}


static void
ngx_http_apipolicy_redis_cluster_handler(ngx_event_t *ev)
{
    ngx_http_apipolicy_redis_cluster_refresh(ev->data);
}


/* a node answered CLUSTER SLOTS (or failed to): the map, or the next */

static void
ngx_http_apipolicy_redis_mapped(void *data, redisReply **replies,
    ngx_uint_t n, ngx_int_t rc)
{
    ngx_http_apipolicy_redis_node_t *node = data;

    redisReply                  *r;
    ngx_http_apipolicy_redis_t  *rd;

    rd = node->rd;
    rd->asking = 0;

    r = (rc == NGX_OK && n == 1) ? replies[0] : NULL;

    if (r == NULL || ngx_http_apipolicy_redis_map(rd, node, r) != NGX_OK) {
        if (r) {
            ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                          "apipolicy redis: %V gave no slot map%s%*s",
                          &node->name,
                          r->type == REDIS_REPLY_ERROR ? ": " : "",
                          r->type == REDIS_REPLY_ERROR ? r->len : 0,
                          r->type == REDIS_REPLY_ERROR ? r->str : "");
        }

        rd->next = (rd->next + 1) % rd->nodes->nelts;
        ngx_http_apipolicy_redis_cluster_refresh(rd);
        return;
    }

    /* the next refresh asks the same node first, not before 100 ms */

    rd->asked = 0;
    rd->discover_backoff = 0;
    rd->discover_at = ngx_current_msec + NGX_HTTP_APIPOLICY_REDIS_DISCOVER_MIN;

    if (rd->discover_at == 0) {
        rd->discover_at = 1;
    }
}


/*
 * CLUSTER SLOTS: [[first, last, [ip, port, id, ...], replicas...], ...];
 * an empty ip is the answering node's, "?" a master with no address yet
 * (its slots stay unknown).  Logged when the map changes.
 */

static ngx_int_t
ngx_http_apipolicy_redis_map(ngx_http_apipolicy_redis_t *rd,
    ngx_http_apipolicy_redis_node_t *node, redisReply *r)
{
    size_t                             len;
    uint16_t                          *map;
    ngx_uint_t                         i, s, first, last, covered, masters,
                                       level;
    redisReply                        *e, *m;
    ngx_http_apipolicy_redis_node_t   *target, **nodes;
    u_char                             text[NGX_SOCKADDR_STRLEN];

    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < r->elements; i++) {
        e = r->element[i];

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3
            || e->element[0]->type != REDIS_REPLY_INTEGER
            || e->element[1]->type != REDIS_REPLY_INTEGER
            || e->element[0]->integer < 0
            || e->element[0]->integer > e->element[1]->integer
            || e->element[1]->integer >= NGX_HTTP_APIPOLICY_REDIS_SLOTS
            || e->element[2]->type != REDIS_REPLY_ARRAY
            || e->element[2]->elements < 2
            || e->element[2]->element[0]->type != REDIS_REPLY_STRING
            || e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        {
            return NGX_ERROR;
        }
    }

    map = ngx_calloc(NGX_HTTP_APIPOLICY_REDIS_SLOTS * sizeof(uint16_t),
                     rd->log);
    if (map == NULL) {
        return NGX_ERROR;
    }

    nodes = rd->nodes->elts;

    for (i = 0; i < rd->nodes->nelts; i++) {
        nodes[i]->slots = 0;
    }

    covered = 0;

    for (i = 0; i < r->elements; i++) {
        e = r->element[i];
        m = e->element[2];

        len = ngx_http_apipolicy_redis_map_addr(node, m, text);
        if (len == 0) {
            continue;                   /* no address yet */
        }

        target = ngx_http_apipolicy_redis_cluster_node(rd, text, len);
        if (target == NULL) {
            continue;
        }

        first = (ngx_uint_t) e->element[0]->integer;
        last = (ngx_uint_t) e->element[1]->integer;
        s = ngx_http_apipolicy_redis_index(rd, target) + 1;

        target->slots += last - first + 1;
        covered += last - first + 1;

        for ( /* void */ ; first <= last; first++) {
            map[first] = (uint16_t) s;
        }
    }

    nodes = rd->nodes->elts;            /* the map may have added some */

    for (masters = 0, i = 0; i < rd->nodes->nelts; i++) {
        masters += nodes[i]->slots ? 1 : 0;
    }

    if (!rd->mapped || rd->lost
        || ngx_memcmp(map, rd->slots,
                      NGX_HTTP_APIPOLICY_REDIS_SLOTS * sizeof(uint16_t)) != 0)
    {
        level = (covered == NGX_HTTP_APIPOLICY_REDIS_SLOTS)
                ? NGX_LOG_NOTICE : NGX_LOG_WARN;

        ngx_log_error(level, rd->log, 0,
                      "apipolicy redis: cluster map from %V: %ui masters "
                      "serve %ui of 16384 slots", &node->name, masters,
                      covered);
    }

    ngx_memcpy(rd->slots, map,
               NGX_HTTP_APIPOLICY_REDIS_SLOTS * sizeof(uint16_t));
    ngx_free(map);

    rd->mapped = 1;
    rd->lost = 0;

    return NGX_OK;
}


/* "ip:port" of a master in a map (IPv6 in brackets); 0: none */

static size_t
ngx_http_apipolicy_redis_map_addr(ngx_http_apipolicy_redis_node_t *node,
    redisReply *m, u_char *text)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   ip;
    u_char      own[NGX_SOCKADDR_STRLEN];

    ip.data = (u_char *) m->element[0]->str;
    ip.len = m->element[0]->len;

    if (ip.len == 1 && ip.data[0] == '?') {
        return 0;
    }

    if (ip.len == 0) {
        /* the node answering, which does not know its own address */
        ip.len = ngx_sock_ntop(node->sockaddr, node->socklen, own,
                               sizeof(own), 0);
        ip.data = own;
    }

    if (ip.len + NGX_INT_T_LEN + 4 > NGX_SOCKADDR_STRLEN) {
        return 0;
    }

    len = ip.len;

    p = ngx_strlchr(ip.data, ip.data + len, ':')
        ? ngx_sprintf(text, "[%V]:%i", &ip, (ngx_int_t) m->element[1]->integer)
        : ngx_sprintf(text, "%V:%i", &ip, (ngx_int_t) m->element[1]->integer);

    return p - text;
}


/* ---- configuration --------------------------------------------------- */

/* the parameters that are a string each */

typedef struct {
    ngx_str_t                          name;
    size_t                             offset;
} ngx_http_apipolicy_redis_param_t;


static ngx_http_apipolicy_redis_param_t  ngx_http_apipolicy_redis_strings[] = {
    { ngx_string("username="),
      offsetof(ngx_http_apipolicy_redis_t, username) },
    { ngx_string("password="),
      offsetof(ngx_http_apipolicy_redis_t, password) },
    { ngx_string("prefix="),
      offsetof(ngx_http_apipolicy_redis_t, prefix) },
    { ngx_string("master="),
      offsetof(ngx_http_apipolicy_redis_t, master) },
    { ngx_string("sentinel_username="),
      offsetof(ngx_http_apipolicy_redis_t, sentinel_username) },
    { ngx_string("sentinel_password="),
      offsetof(ngx_http_apipolicy_redis_t, sentinel_password) },
    { ngx_null_string, 0 }
};


char *
ngx_http_apipolicy_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                       *value;
    ngx_uint_t                       i;
    ngx_http_apipolicy_redis_t      *rd;
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (amcf->redis) {
        return "is duplicate";
    }

    value = cf->args->elts;

    rd = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_redis_t));
    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

    rd->connect_timeout = 1000;
    rd->timeout = 1000;
    ngx_str_set(&rd->prefix, "apipolicy:");

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_apipolicy_redis_param(cf, rd, &value[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_apipolicy_redis_check(cf, rd) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    amcf->redis = rd;
    amcf->used = 1;

    return NGX_CONF_OK;
}


/* one parameter of apipolicy_redis */

static ngx_int_t
ngx_http_apipolicy_redis_param(ngx_conf_t *cf, ngx_http_apipolicy_redis_t *rd,
    ngx_str_t *arg)
{
    ngx_str_t                         s, *str;
    ngx_int_t                         n;
    ngx_http_apipolicy_redis_addr_t  *addr;
    ngx_http_apipolicy_redis_param_t *sp;

    s = *arg;

    if (ngx_strlchr(s.data, s.data + s.len, '=') == NULL) {
        return ngx_http_apipolicy_redis_address(cf, rd, arg);
    }

    if (ngx_strncmp(s.data, "sentinel=", 9) == 0
        || ngx_strncmp(s.data, "cluster=", 8) == 0)
    {
        rd->name = s;

        if (s.data[0] == 's') {
            rd->sentinels = ngx_http_apipolicy_redis_addrs(cf, arg, 9, 26379);
            return rd->sentinels ? NGX_OK : NGX_ERROR;
        }

        rd->seeds = ngx_http_apipolicy_redis_addrs(cf, arg, 8, 6379);
        if (rd->seeds == NULL) {
            return NGX_ERROR;
        }

        addr = rd->seeds->elts;
        rd->host = addr[0].host;        /* the TLS name, unless set */

        return NGX_OK;
    }

    for (sp = ngx_http_apipolicy_redis_strings; sp->name.len; sp++) {
        if (s.len >= sp->name.len
            && ngx_strncmp(s.data, sp->name.data, sp->name.len) == 0)
        {
            str = (ngx_str_t *) ((u_char *) rd + sp->offset);
            str->data = s.data + sp->name.len;
            str->len = s.len - sp->name.len;
            return NGX_OK;
        }
    }

    if (ngx_strcmp(s.data, "tls=on") == 0
        || ngx_strcmp(s.data, "tls=off") == 0)
    {
        rd->tls = (s.data[5] == 'n');
        return NGX_OK;
    }

    if (ngx_strncmp(s.data, "db=", 3) == 0) {
        n = ngx_atoi(s.data + 3, s.len - 3);

        if (n == NGX_ERROR || n > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": a database number", arg);
            return NGX_ERROR;
        }

        rd->db = (ngx_uint_t) n;
        rd->db_arg = s;
        return NGX_OK;
    }

    if (ngx_strncmp(s.data, "connect_timeout=", 16) == 0
        || ngx_strncmp(s.data, "timeout=", 8) == 0)
    {
        return ngx_http_apipolicy_redis_time(cf, rd, arg);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", arg);
    return NGX_ERROR;
}


/* the address of one server */

static ngx_int_t
ngx_http_apipolicy_redis_address(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_str_t *arg)
{
    ngx_url_t  u;

    if (rd->addr) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a second Redis address \"%V\": one server, or "
                           "sentinel=, or cluster=", arg);
        return NGX_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *arg;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Redis address \"%V\"%s%s: use "
                           "host:port, an IP address, or "
                           "unix:/path/to/socket",
                           arg, u.err ? ": " : "", u.err ? u.err : "");
        return NGX_ERROR;
    }

    rd->name = *arg;
    rd->addr = &u.addrs[0];
    rd->host = u.host;

    return NGX_OK;
}


/* connect_timeout= and timeout= */

static ngx_int_t
ngx_http_apipolicy_redis_time(ngx_conf_t *cf, ngx_http_apipolicy_redis_t *rd,
    ngx_str_t *arg)
{
    size_t       skip;
    ngx_str_t    s;
    ngx_msec_t  *mp;

    if (arg->data[0] == 'c') {
        mp = &rd->connect_timeout;
        skip = sizeof("connect_timeout=") - 1;

    } else {
        mp = &rd->timeout;
        skip = sizeof("timeout=") - 1;
    }

    s.data = arg->data + skip;
    s.len = arg->len - skip;

    *mp = ngx_parse_time(&s, 0);

    if (*mp == (ngx_msec_t) NGX_ERROR || *mp == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": a time, as in \"200ms\"", arg);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the parameters together: one way to find Redis, and what goes with it */

static ngx_int_t
ngx_http_apipolicy_redis_check(ngx_conf_t *cf, ngx_http_apipolicy_redis_t *rd)
{
    if (rd->prefix.len > NGX_HTTP_APIPOLICY_REDIS_PREFIX_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"prefix=\" is longer than %d bytes",
                           NGX_HTTP_APIPOLICY_REDIS_PREFIX_MAX);
        return NGX_ERROR;
    }

    if ((rd->addr != NULL) + (rd->sentinels != NULL) + (rd->seeds != NULL)
        != 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           rd->addr || rd->sentinels || rd->seeds
                           ? "\"%V\": give one of a Redis address, "
                             "sentinel=HOST:PORT,... or cluster=HOST:PORT,..."
                           : "no Redis address: give host:port (or "
                             "unix:/path), or sentinel=HOST:PORT,... with "
                             "master=NAME, or cluster=HOST:PORT,...",
                           &rd->name);
        return NGX_ERROR;
    }

    if (rd->sentinels && rd->master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sentinel=\" needs \"master=NAME\" (the name "
                           "the Sentinels monitor it by)");
        return NGX_ERROR;
    }

    if ((rd->master.len || rd->sentinel_username.len
         || rd->sentinel_password.len)
        && rd->sentinels == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"master=\" and \"sentinel_*=\" are for "
                           "\"sentinel=\"");
        return NGX_ERROR;
    }

    if (rd->seeds && ngx_http_apipolicy_redis_check_cluster(cf, rd)
                     != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rd->sentinel_username.len && rd->sentinel_password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sentinel_username=\" needs "
                           "\"sentinel_password=\"");
        return NGX_ERROR;
    }

    if (rd->username.len && rd->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"username=\" needs \"password=\" (Redis ACL "
                           "users authenticate with both)");
        return NGX_ERROR;
    }

#if !(NGX_SSL)

    if (rd->tls) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tls=on\" needs nginx built with SSL "
                           "(--with-http_ssl_module)");
        return NGX_ERROR;
    }

#endif

    return NGX_OK;
}


/*
 * cluster=: database 0 only, and no braces in prefix= (a hash tag there
 * would put every key in one slot, "{}" would part a limit's windows)
 */

static ngx_int_t
ngx_http_apipolicy_redis_check_cluster(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd)
{
    u_char  *last;

    if (rd->db_arg.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot be used with \"cluster=\": Redis "
                           "Cluster has database 0 only; remove db= "
                           "(prefix= keeps several users of one cluster "
                           "apart)", &rd->db_arg);
        return NGX_ERROR;
    }

    last = rd->prefix.data + rd->prefix.len;

    if (ngx_strlchr(rd->prefix.data, last, '{')
        || ngx_strlchr(rd->prefix.data, last, '}'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"prefix=%V\" cannot be used with \"cluster=\": "
                           "no \"{\" or \"}\" (each key already carries the "
                           "hash tag that places it in its slot)",
                           &rd->prefix);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "sentinel=HOST:PORT,..." and "cluster=HOST:PORT,...": each resolved now */

static ngx_array_t *
ngx_http_apipolicy_redis_addrs(ngx_conf_t *cf, ngx_str_t *arg, size_t skip,
    in_port_t port)
{
    u_char                           *p, *last, *comma;
    ngx_url_t                         u;
    ngx_array_t                      *a;
    ngx_http_apipolicy_redis_addr_t  *addr;

    a = ngx_array_create(cf->pool, 4, sizeof(ngx_http_apipolicy_redis_addr_t));
    if (a == NULL) {
        return NULL;
    }

    p = arg->data + skip;
    last = arg->data + arg->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url.data = p;
        u.url.len = comma - p;
        u.default_port = port;

        if (u.url.len == 0 || ngx_parse_url(cf->pool, &u) != NGX_OK
            || u.naddrs == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address \"%V\" in \"%V\"%s%s: use "
                               "HOST:PORT,HOST:PORT,...", &u.url, arg,
                               u.err ? ": " : "", u.err ? u.err : "");
            return NULL;
        }

        if (a->nelts == NGX_HTTP_APIPOLICY_REDIS_NODES_MAX - 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" names more than %d addresses", arg,
                               NGX_HTTP_APIPOLICY_REDIS_NODES_MAX - 1);
            return NULL;
        }

        addr = ngx_array_push(a);
        if (addr == NULL) {
            return NULL;
        }

        addr->name = u.url;
        addr->host = u.host;
        addr->sockaddr = u.addrs[0].sockaddr;
        addr->socklen = u.addrs[0].socklen;

        p = comma + 1;
    }

    if (a->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" names no address: use "
                           "HOST:PORT,HOST:PORT,...", arg);
        return NULL;
    }

    return a;
}


/* apipolicy_redis_ssl_*: one table, nginx's own slot setters */

static ngx_conf_bitmask_t  ngx_http_apipolicy_redis_ssl_protocols[] = {
#if (NGX_SSL)
    { ngx_string("TLSv1"), NGX_SSL_TLSv1 },
    { ngx_string("TLSv1.1"), NGX_SSL_TLSv1_1 },
    { ngx_string("TLSv1.2"), NGX_SSL_TLSv1_2 },
    { ngx_string("TLSv1.3"), NGX_SSL_TLSv1_3 },
#endif
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_apipolicy_redis_ssl_commands[] = {

    { ngx_string("apipolicy_redis_ssl_trusted_certificate"), 0,
      ngx_conf_set_str_slot, 0,
      offsetof(ngx_http_apipolicy_redis_ssl_t, trusted_certificate), NULL },

    { ngx_string("apipolicy_redis_ssl_verify"), 0,
      ngx_conf_set_flag_slot, 0,
      offsetof(ngx_http_apipolicy_redis_ssl_t, verify), NULL },

    { ngx_string("apipolicy_redis_ssl_name"), 0,
      ngx_conf_set_str_slot, 0,
      offsetof(ngx_http_apipolicy_redis_ssl_t, name), NULL },

    { ngx_string("apipolicy_redis_ssl_certificate"), 0,
      ngx_conf_set_str_slot, 0,
      offsetof(ngx_http_apipolicy_redis_ssl_t, certificate), NULL },

    { ngx_string("apipolicy_redis_ssl_certificate_key"), 0,
      ngx_conf_set_str_slot, 0,
      offsetof(ngx_http_apipolicy_redis_ssl_t, certificate_key), NULL },

    { ngx_string("apipolicy_redis_ssl_protocols"), 0,
      ngx_conf_set_bitmask_slot, 0,
      offsetof(ngx_http_apipolicy_redis_ssl_t, protocols),
      &ngx_http_apipolicy_redis_ssl_protocols },

      ngx_null_command
};


char *
ngx_http_apipolicy_redis_ssl(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_apipolicy_main_conf_t *amcf = conf;

    ngx_command_t                   *c;
    ngx_http_apipolicy_redis_ssl_t  *ssl;

    ssl = amcf->redis_ssl;

    if (ssl == NULL) {
        ssl = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_redis_ssl_t));
        if (ssl == NULL) {
            return NGX_CONF_ERROR;
        }

        ssl->verify = NGX_CONF_UNSET;
        amcf->redis_ssl = ssl;
    }

    for (c = ngx_http_apipolicy_redis_ssl_commands; c->name.len; c++) {
        if (c->name.len == cmd->name.len
            && ngx_strncmp(c->name.data, cmd->name.data, c->name.len) == 0)
        {
            return c->set(cf, c, ssl);
        }
    }

    return NGX_CONF_ERROR;
}


/*
 * After the http{} block: with tls=on, the SSL context every worker's
 * connections use (the apipolicy_redis_ssl_* directives may come before
 * or after apipolicy_redis).
 */

ngx_int_t
ngx_http_apipolicy_redis_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_apipolicy_redis_t      *rd;
    ngx_http_apipolicy_redis_ssl_t  *ssl;
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    rd = amcf->redis;
    ssl = amcf->redis_ssl;

    if (rd == NULL || !rd->tls) {
        if (ssl) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "apipolicy_redis_ssl_* directives are ignored: "
                          "%s", rd ? "apipolicy_redis has no \"tls=on\""
                                   : "there is no apipolicy_redis");
        }

        return NGX_OK;
    }

#if (NGX_SSL)

    if (ssl == NULL) {
        ssl = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_redis_ssl_t));
        if (ssl == NULL) {
            return NGX_ERROR;
        }

        ssl->verify = NGX_CONF_UNSET;
    }

    ngx_conf_init_value(ssl->verify, 1);

    if (ssl->protocols == 0) {
        ssl->protocols = NGX_CONF_BITMASK_SET|NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3;
    }

    if (ngx_http_apipolicy_redis_ssl_context(cf, rd, ssl) != NGX_OK
        || ngx_http_apipolicy_redis_ssl_trust(cf, rd, ssl) != NGX_OK)
    {
        return NGX_ERROR;
    }

#endif

    return NGX_OK;
}


#if (NGX_SSL)

/* the SSL context, with the client certificate if one is given */

static ngx_int_t
ngx_http_apipolicy_redis_ssl_context(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_http_apipolicy_redis_ssl_t *ssl)
{
    ngx_pool_cleanup_t  *cln;

    rd->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (rd->ssl == NULL) {
        return NGX_ERROR;
    }

    rd->ssl->log = cf->log;

    if (ngx_ssl_create(rd->ssl, ssl->protocols, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(rd->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = rd->ssl;

    if (ssl->certificate.len) {
        if (ssl->certificate_key.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "apipolicy_redis_ssl_certificate \"%V\" needs "
                          "apipolicy_redis_ssl_certificate_key (the private "
                          "key of the client certificate)",
                          &ssl->certificate);
            return NGX_ERROR;
        }

        return ngx_ssl_certificate(cf, rd->ssl, &ssl->certificate,
                                   &ssl->certificate_key, NULL);
    }

    if (ssl->certificate_key.len) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "apipolicy_redis_ssl_certificate_key \"%V\" needs "
                      "apipolicy_redis_ssl_certificate",
                      &ssl->certificate_key);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* what the server's certificate is checked against, the session cache */

static ngx_int_t
ngx_http_apipolicy_redis_ssl_trust(ngx_conf_t *cf,
    ngx_http_apipolicy_redis_t *rd, ngx_http_apipolicy_redis_ssl_t *ssl)
{
    ngx_str_t  name;

    rd->ssl_verify = ssl->verify;

    if (ssl->verify) {
        if (ssl->trusted_certificate.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "apipolicy_redis \"%V\" has \"tls=on\": the "
                          "server's certificate is verified against "
                          "apipolicy_redis_ssl_trusted_certificate (a file "
                          "of CA certificates), which is missing; or set "
                          "\"apipolicy_redis_ssl_verify off\"", &rd->name);
            return NGX_ERROR;
        }

        /* a chain of up to 4 (managed services use an intermediate CA) */

        if (ngx_ssl_trusted_certificate(cf, rd->ssl,
                                        &ssl->trusted_certificate, 4)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ssl_client_session_cache(cf, rd->ssl, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the name checked and sent (SNI): as set, else the address's host */

    name = ssl->name.len ? ssl->name : rd->host;

    rd->ssl_name.data = ngx_pnalloc(cf->pool, name.len + 1);
    if (rd->ssl_name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rd->ssl_name.data, name.data, name.len);
    rd->ssl_name.data[name.len] = '\0';
    rd->ssl_name.len = name.len;

    return NGX_OK;
}

#endif
