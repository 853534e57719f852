
/*
 * Copyright (C) apipolicy authors
 *
 * Redis over nginx's own non-blocking sockets, hiredis only as the RESP
 * reply parser (nginx's OCSP client is the model: ngx_event_connect_peer(),
 * timers on both events, no blocking call).
 *
 *   one connection per worker, opened on first use and kept; commands
 *   go in batches (pipelined), one batch in flight at a time;
 *   a fresh connection sends AUTH and SELECT in front of the batch;
 *   connect_timeout bounds the connect, timeout the whole batch;
 *   on any failure the connection is closed, the batch's handler hears
 *   NGX_ERROR, and the next attempt waits (100 ms, doubling up to 5 s);
 *   the change between reachable and unreachable is logged once: "error"
 *   when Redis goes away, "notice" when it is back.
 *
 * The address is parsed (and a name resolved) at configuration time.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_redis.h"


#define NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MAX  5000
#define NGX_HTTP_APIPOLICY_REDIS_READ         16384


struct ngx_http_apipolicy_redis_s {
    /* configuration */
    ngx_str_t                          name;      /* as written */
    ngx_addr_t                        *addr;
    ngx_str_t                          password;
    ngx_uint_t                         db;
    ngx_msec_t                         connect_timeout;
    ngx_msec_t                         timeout;
    ngx_str_t                          prefix;

    /* this worker's connection (set up after fork) */
    ngx_peer_connection_t              pc;
    redisReader                       *reader;
    ngx_uint_t                         fresh;     /* send AUTH/SELECT */
    ngx_uint_t                         busy;
    ngx_uint_t                         down;      /* last logged state */
    ngx_msec_t                         backoff;
    ngx_msec_t                         retry_at;
    ngx_event_t                        timer;     /* the batch deadline */

    u_char                            *out;       /* what is left to send */
    u_char                            *out_last;
    u_char                            *buf;       /* the batch as sent */
    size_t                             buf_size;
    ngx_uint_t                         skip;      /* replies to AUTH/SELECT */
    ngx_uint_t                         expect;
    ngx_uint_t                         got;
    redisReply                       **replies;
    ngx_uint_t                         replies_size;
    ngx_http_apipolicy_redis_done_pt   done;
    void                              *data;
};


static ngx_int_t ngx_http_apipolicy_redis_connect(
    ngx_http_apipolicy_redis_t *rd);
static void ngx_http_apipolicy_redis_write_handler(ngx_event_t *wev);
static void ngx_http_apipolicy_redis_read_handler(ngx_event_t *rev);
static void ngx_http_apipolicy_redis_timeout(ngx_event_t *ev);
static void ngx_http_apipolicy_redis_fail(ngx_http_apipolicy_redis_t *rd,
    const char *why);
static void ngx_http_apipolicy_redis_finish(ngx_http_apipolicy_redis_t *rd,
    ngx_int_t rc);


/* this worker's connection, made from the configuration in init_process */

static ngx_http_apipolicy_redis_t  *ngx_http_apipolicy_redis_worker;


ngx_int_t
ngx_http_apipolicy_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_apipolicy_module);

    if (amcf == NULL || amcf->redis == NULL) {
        return NGX_OK;
    }

    ngx_http_apipolicy_redis_worker =
        ngx_http_apipolicy_redis_clone(cycle->pool, cycle->log, amcf->redis);

    return ngx_http_apipolicy_redis_worker ? NGX_OK : NGX_ERROR;
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
    if (rd->down) {
        return NGX_ERROR;
    }

    return rd->pc.connection ? NGX_OK : NGX_DECLINED;
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


ngx_int_t
ngx_http_apipolicy_redis_send(ngx_http_apipolicy_redis_t *rd,
    ngx_str_t *cmds, ngx_uint_t ncmds, ngx_http_apipolicy_redis_done_pt done,
    void *data)
{
    u_char      *p, db[NGX_INT_T_LEN];
    size_t       len;
    ngx_str_t    argv[2];
    ngx_uint_t   i;

    if (rd->busy) {
        return NGX_BUSY;
    }

    if (rd->pc.connection == NULL) {

        if (rd->retry_at && (ngx_msec_int_t) (rd->retry_at - ngx_current_msec)
                            > 0)
        {
            return NGX_DECLINED;
        }

        if (ngx_http_apipolicy_redis_connect(rd) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    /* the batch: AUTH and SELECT on a fresh connection, then the commands */

    len = 0;

    for (i = 0; i < ncmds; i++) {
        len += cmds[i].len;
    }

    if (rd->fresh) {
        len += rd->password.len + 64 + NGX_INT_T_LEN;
    }

    if (len > rd->buf_size) {
        ngx_free(rd->buf);

        rd->buf = ngx_alloc(len, ngx_cycle->log);
        if (rd->buf == NULL) {
            rd->buf_size = 0;
            return NGX_ERROR;
        }

        rd->buf_size = len;
    }

    if (ncmds + 2 > rd->replies_size) {
        ngx_free(rd->replies);

        rd->replies = ngx_alloc((ncmds + 2) * sizeof(redisReply *),
                                ngx_cycle->log);
        if (rd->replies == NULL) {
            rd->replies_size = 0;
            return NGX_ERROR;
        }

        rd->replies_size = ncmds + 2;
    }

    p = rd->buf;
    rd->skip = 0;

    if (rd->fresh) {
        if (rd->password.len) {
            ngx_str_set(&argv[0], "AUTH");
            argv[1] = rd->password;
            p = ngx_http_apipolicy_redis_command(p, argv, 2);
            rd->skip++;
        }

        if (rd->db) {
            ngx_str_set(&argv[0], "SELECT");
            argv[1].data = db;
            argv[1].len = ngx_sprintf(db, "%ui", rd->db) - db;
            p = ngx_http_apipolicy_redis_command(p, argv, 2);
            rd->skip++;
        }
    }

    for (i = 0; i < ncmds; i++) {
        p = ngx_cpymem(p, cmds[i].data, cmds[i].len);
    }

    rd->out = rd->buf;
    rd->out_last = p;
    rd->expect = rd->skip + ncmds;
    rd->got = 0;
    rd->done = done;
    rd->data = data;
    rd->busy = 1;

    ngx_add_timer(&rd->timer, rd->timeout);

    if (rd->pc.connection->write->ready) {
        ngx_http_apipolicy_redis_write_handler(rd->pc.connection->write);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_redis_connect(ngx_http_apipolicy_redis_t *rd)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    ngx_memzero(&rd->pc, sizeof(ngx_peer_connection_t));

    rd->pc.sockaddr = rd->addr->sockaddr;
    rd->pc.socklen = rd->addr->socklen;
    rd->pc.name = &rd->name;
    rd->pc.get = ngx_event_get_peer;
    rd->pc.log = ngx_cycle->log;
    rd->pc.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&rd->pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (rd->pc.connection) {
            ngx_close_connection(rd->pc.connection);
            rd->pc.connection = NULL;
        }

        ngx_http_apipolicy_redis_fail(rd, "cannot connect");
        return NGX_ERROR;
    }

    c = rd->pc.connection;
    c->data = rd;
    c->log = ngx_cycle->log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = ngx_http_apipolicy_redis_read_handler;
    c->write->handler = ngx_http_apipolicy_redis_write_handler;

    if (rd->reader) {
        redisReaderFree(rd->reader);
    }

    rd->reader = redisReaderCreate();
    if (rd->reader == NULL) {
        ngx_close_connection(c);
        rd->pc.connection = NULL;
        return NGX_ERROR;
    }

    rd->fresh = 1;

    /* the connect is bounded apart from the batch */

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, rd->connect_timeout);
    }

    return NGX_OK;
}


static void
ngx_http_apipolicy_redis_write_handler(ngx_event_t *wev)
{
    ssize_t                      n;
    ngx_connection_t            *c;
    ngx_http_apipolicy_redis_t  *rd;

    c = wev->data;
    rd = c->data;

    if (wev->timedout) {
        ngx_http_apipolicy_redis_fail(rd, "connect timed out");
        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);             /* connected */
    }

    while (rd->busy && rd->out < rd->out_last) {

        n = ngx_send(c, rd->out, rd->out_last - rd->out);

        if (n == NGX_ERROR) {
            ngx_http_apipolicy_redis_fail(rd, rd->fresh
                                          ? "refused the connection or cannot "
                                            "be reached"
                                          : "cannot be written to");
            return;
        }

        if (n == NGX_AGAIN) {
            break;
        }

        rd->out += n;
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_http_apipolicy_redis_fail(rd, "cannot wait to send");
    }
}


static void
ngx_http_apipolicy_redis_read_handler(ngx_event_t *rev)
{
    void                        *reply;
    ssize_t                      n;
    redisReply                  *r;
    ngx_connection_t            *c;
    ngx_http_apipolicy_redis_t  *rd;
    u_char                       buf[NGX_HTTP_APIPOLICY_REDIS_READ];

    c = rev->data;
    rd = c->data;

    for ( ;; ) {
        n = ngx_recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_http_apipolicy_redis_fail(rd, n == 0 ? "closed the connection"
                                          : rd->fresh
                                          ? "refused the connection or cannot "
                                            "be reached"
                                          : "cannot be read from");
            return;
        }

        if (!rd->busy) {
            ngx_http_apipolicy_redis_fail(rd, "sent data nobody asked for");
            return;
        }

        if (redisReaderFeed(rd->reader, (char *) buf, (size_t) n)
            != REDIS_OK)
        {
            ngx_http_apipolicy_redis_fail(rd, "sent a reply that is not RESP");
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(rd->reader, &reply) != REDIS_OK) {
                ngx_http_apipolicy_redis_fail(rd,
                                              "sent a reply that is not RESP");
                return;
            }

            if (reply == NULL) {
                break;
            }

            r = reply;

            if (rd->got < rd->skip) {
                rd->got++;

                if (r->type == REDIS_REPLY_ERROR) {
                    freeReplyObject(r);
                    ngx_http_apipolicy_redis_fail(rd,
                                    "refused AUTH or SELECT (check password= "
                                    "and db=)");
                    return;
                }

                freeReplyObject(r);
                continue;
            }

            rd->replies[rd->got - rd->skip] = r;
            rd->got++;

            if (rd->got == rd->expect) {
                rd->fresh = 0;
                ngx_http_apipolicy_redis_finish(rd, NGX_OK);
                break;
            }
        }
    }

    if (rd->pc.connection
        && ngx_handle_read_event(rd->pc.connection->read, 0) != NGX_OK)
    {
        ngx_http_apipolicy_redis_fail(rd, "cannot wait to read");
    }
}


static void
ngx_http_apipolicy_redis_timeout(ngx_event_t *ev)
{
    ngx_http_apipolicy_redis_t  *rd = ev->data;

    if (rd->busy) {
        ngx_http_apipolicy_redis_fail(rd, "timed out");
    }
}


/* the batch ended: hand the replies over, free them */

static void
ngx_http_apipolicy_redis_finish(ngx_http_apipolicy_redis_t *rd, ngx_int_t rc)
{
    ngx_uint_t                         i, n;
    ngx_http_apipolicy_redis_done_pt   done;

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    n = (rc == NGX_OK) ? rd->expect - rd->skip : 0;
    done = rd->done;

    rd->busy = 0;
    rd->done = NULL;

    if (rc == NGX_OK) {
        rd->backoff = 0;
        rd->retry_at = 0;

        if (rd->down) {
            rd->down = 0;
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "apipolicy redis: %V is reachable again",
                          &rd->name);
        }
    }

    if (done) {
        done(rd->data, rd->replies, n, rc);
    }

    if (rc == NGX_OK) {
        for (i = 0; i < n; i++) {
            freeReplyObject(rd->replies[i]);
        }
    }
}


static void
ngx_http_apipolicy_redis_fail(ngx_http_apipolicy_redis_t *rd,
    const char *why)
{
    ngx_uint_t  i;

    /* replies of a batch cut short */

    for (i = rd->skip; rd->busy && i < rd->got; i++) {
        freeReplyObject(rd->replies[i - rd->skip]);
    }

    rd->got = 0;

    if (rd->pc.connection) {
        ngx_close_connection(rd->pc.connection);
        rd->pc.connection = NULL;
    }

    rd->backoff = rd->backoff ? ngx_min(rd->backoff * 2,
                                        NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MAX)
                              : NGX_HTTP_APIPOLICY_REDIS_BACKOFF_MIN;
    rd->retry_at = ngx_current_msec + rd->backoff;

    if (rd->retry_at == 0) {
        rd->retry_at = 1;
    }

    if (!rd->down) {
        rd->down = 1;
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "apipolicy redis: %V %s; working without it until it "
                      "answers again", &rd->name, why);

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "apipolicy redis: %V %s", &rd->name, why);
    }

    if (rd->busy) {
        ngx_http_apipolicy_redis_finish(rd, NGX_ERROR);
    }
}


void
ngx_http_apipolicy_redis_close(ngx_http_apipolicy_redis_t *rd)
{
    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    if (rd->pc.connection) {
        ngx_close_connection(rd->pc.connection);
        rd->pc.connection = NULL;
    }

    if (rd->reader) {
        redisReaderFree(rd->reader);
        rd->reader = NULL;
    }

    ngx_free(rd->buf);
    ngx_free(rd->replies);

    rd->buf = NULL;
    rd->buf_size = 0;
    rd->replies = NULL;
    rd->replies_size = 0;
    rd->busy = 0;
}


/* ---- configuration --------------------------------------------------- */

/*
 * A second connection to the same server, for an area whose batches
 * must not queue behind another's (idempotency waits on its answers;
 * the rate limit sync never does), made by each worker for itself.
 */

ngx_http_apipolicy_redis_t *
ngx_http_apipolicy_redis_clone(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_apipolicy_redis_t *rd)
{
    ngx_http_apipolicy_redis_t  *clone;

    clone = ngx_pcalloc(pool, sizeof(ngx_http_apipolicy_redis_t));
    if (clone == NULL) {
        return NULL;
    }

    clone->name = rd->name;
    clone->addr = rd->addr;
    clone->password = rd->password;
    clone->db = rd->db;
    clone->connect_timeout = rd->connect_timeout;
    clone->timeout = rd->timeout;
    clone->prefix = rd->prefix;

    clone->timer.handler = ngx_http_apipolicy_redis_timeout;
    clone->timer.data = clone;
    clone->timer.log = log;

    return clone;
}


char *
ngx_http_apipolicy_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                       *value, s;
    ngx_int_t                        n;
    ngx_url_t                        u;
    ngx_uint_t                       i;
    ngx_msec_t                      *mp;
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

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.default_port = 6379;
    u.no_resolve = 0;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Redis address \"%V\"%s%s: use host:port, "
                           "an IP address, or unix:/path/to/socket",
                           &value[1], u.err ? ": " : "", u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    rd->name = value[1];
    rd->addr = &u.addrs[0];
    rd->connect_timeout = 1000;
    rd->timeout = 1000;
    ngx_str_set(&rd->prefix, "apipolicy:");

    for (i = 2; i < cf->args->nelts; i++) {
        s = value[i];

        if (ngx_strncmp(s.data, "password=", 9) == 0) {
            rd->password.data = s.data + 9;
            rd->password.len = s.len - 9;
            continue;
        }

        if (ngx_strncmp(s.data, "prefix=", 7) == 0) {
            rd->prefix.data = s.data + 7;
            rd->prefix.len = s.len - 7;

            if (rd->prefix.len > NGX_HTTP_APIPOLICY_REDIS_PREFIX_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"prefix=\" is longer than %d bytes",
                                   NGX_HTTP_APIPOLICY_REDIS_PREFIX_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(s.data, "db=", 3) == 0) {
            n = ngx_atoi(s.data + 3, s.len - 3);

            if (n == NGX_ERROR || n > 65535) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a database number",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            rd->db = (ngx_uint_t) n;
            continue;
        }

        mp = NULL;

        if (ngx_strncmp(s.data, "connect_timeout=", 16) == 0) {
            mp = &rd->connect_timeout;
            s.data += 16;
            s.len -= 16;

        } else if (ngx_strncmp(s.data, "timeout=", 8) == 0) {
            mp = &rd->timeout;
            s.data += 8;
            s.len -= 8;
        }

        if (mp) {
            *mp = ngx_parse_time(&s, 0);

            if (*mp == (ngx_msec_t) NGX_ERROR || *mp == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a time, as in \"200ms\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    rd->timer.handler = ngx_http_apipolicy_redis_timeout;
    rd->timer.data = rd;
    rd->timer.log = cf->cycle->log;

    amcf->redis = rd;
    amcf->used = 1;

    return NGX_CONF_OK;
}
