
/*
 * Copyright (C) apipolicy authors
 *
 * The rate limits' Redis sync: several gateways enforce one limit.
 *
 *   when     every sync= interval one worker of each gateway (the first
 *            whose timer finds the interval over, elected through the
 *            zone) starts a round: it pushes every node changed since it
 *            was last pushed (the zone keeps them in a queue, oldest
 *            change first), in pipelined batches of at most
 *            NGX_HTTP_APIPOLICY_RATELIMIT_BATCH nodes, the next batch sent as
 *            soon as the previous one is answered, until the nodes that
 *            were queued when the round began are all pushed.  Redis
 *            work is one script call per node changed, whatever the
 *            number of gateways.
 *   what     per node, one script call (EVALSHA; EVAL with the script
 *            in the first batch and after a NOSCRIPT) on the hashes of
 *            the current and previous windows: this gateway's field
 *            (hostname:master pid) is set to its absolute count (a push
 *            run twice, or late, does no harm) and "d:" + field to its
 *            demand (what it was asked, passed or not, over the sliding
 *            window, as a rate); the script answers the counts of all
 *            gateways in both windows and the demand of all gateways.
 *            The others' counts become part of the estimate, and this
 *            gateway's share of the quota is its demand over the total;
 *            in a key's first window also at most what the others hold
 *            ("r:" + field), so that the gateways together pass at most
 *            the quota in it.
 *   alive    each round also sets this gateway's time in the zone's
 *            registry hash and answers the number of gateways seen within
 *            three intervals: a key no sync has answered for yet gets a
 *            share of 1/G.
 *   failure  a batch that fails puts its nodes back in the queue; once
 *            Redis answers again every node that still counts is pushed
 *            again (Redis may have restarted empty).
 *
 * A request never waits for any of this: it decides on the zone.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_redis.h"

#include <math.h>
#include <openssl/evp.h>


#define NGX_HTTP_APIPOLICY_RATELIMIT_BATCH  2000  /* nodes per batch */
#define NGX_HTTP_APIPOLICY_RATELIMIT_ARGS   15    /* of a count's EVALSHA */


/* one node's push, remembered until Redis answers */
typedef struct {
    ngx_str_t                          key;
    uint32_t                           hash;
    uint32_t                           window;
    uint64_t                           index;
    uint32_t                           cur;       /* our counts, sent */
    uint32_t                           prev;
    uint32_t                           demand;
    uint32_t                           held;      /* of the quota, 1/65536 */
} ngx_http_apipolicy_ratelimit_sent_t;


/* per worker and zone: the sync timer and the batch in flight */
struct ngx_http_apipolicy_ratelimit_sync_s {
    ngx_http_apipolicy_ratelimit_zone_t *zone;
    ngx_event_t                        ev;
    ngx_pool_t                        *pool;      /* the batch's memory */
    ngx_http_apipolicy_ratelimit_sent_t *sent;
    ngx_uint_t                         nsent;
    ngx_uint_t                         skip;      /* replies before sent's */
    ngx_uint_t                         registry;  /* one of them */
    ngx_uint_t                         todo;      /* nodes left this round */
};


/* the scripts, and their SHA1 as EVALSHA names them */
typedef struct {
    ngx_str_t                          text;
    u_char                             sha[40];
} ngx_http_apipolicy_ratelimit_script_t;


static ngx_int_t ngx_http_apipolicy_ratelimit_sync_push(
    ngx_http_apipolicy_ratelimit_sync_t *sync, ngx_uint_t registry);
static ngx_int_t ngx_http_apipolicy_ratelimit_sync_registry(
    ngx_http_apipolicy_ratelimit_sync_t *sync, ngx_str_t *prefix,
    uint64_t now, ngx_http_apipolicy_redis_cmd_t *cmd);
static ngx_int_t ngx_http_apipolicy_ratelimit_sync_node(
    ngx_http_apipolicy_ratelimit_sync_t *sync, ngx_str_t *prefix,
    uint64_t now, ngx_http_apipolicy_ratelimit_sent_t *e,
    ngx_http_apipolicy_redis_cmd_t *cmd);
static ngx_int_t ngx_http_apipolicy_ratelimit_sync_take(
    ngx_http_apipolicy_ratelimit_sync_t *sync, uint64_t now);
static ngx_int_t ngx_http_apipolicy_ratelimit_sync_command(ngx_pool_t *pool,
    ngx_http_apipolicy_redis_cmd_t *cmd, ngx_str_t *argv, ngx_uint_t argc,
    ngx_str_t *key);
static void ngx_http_apipolicy_ratelimit_sync_script(ngx_str_t *argv,
    ngx_http_apipolicy_ratelimit_script_t *script);
static void ngx_http_apipolicy_ratelimit_sync_handler(ngx_event_t *ev);
static void ngx_http_apipolicy_ratelimit_sync_done(void *data,
    redisReply **replies, ngx_uint_t n, ngx_int_t rc);
static uint32_t ngx_http_apipolicy_ratelimit_sync_held(
    ngx_http_apipolicy_ratelimit_zone_t *zone,
    ngx_http_apipolicy_ratelimit_node_t *rn, double left);
static void ngx_http_apipolicy_ratelimit_sync_answer(
    ngx_http_apipolicy_ratelimit_sync_t *sync,
    ngx_http_apipolicy_ratelimit_sent_t *e, redisReply *r);
static void ngx_http_apipolicy_ratelimit_sync_give_back(
    ngx_http_apipolicy_ratelimit_sync_t *sync);
static void ngx_http_apipolicy_ratelimit_sync_all(
    ngx_http_apipolicy_ratelimit_zone_t *zone, uint64_t now);


/* this gateway's field in the hashes: "hostname:master pid" */

static ngx_str_t  ngx_http_apipolicy_ratelimit_gateway;

/* the last batch met a NOSCRIPT: the next one sends the scripts */

static ngx_uint_t  ngx_http_apipolicy_ratelimit_eval;


/*
 * KEYS: the current and the previous window's hash; ARGV: gateway,
 * count, previous window's count, demand, when each hash expires, now
 * (ms), how long a key is young (ms), the gateways alive, what this
 * gateway holds of the quota (1/65536: its share in effect, or what it
 * passed when more).  Answers { all counts now, all counts before, all
 * demand, young, gateways that said their demand, this gateway's share
 * (1/65536) }: a gateway that said nothing in this window yet is taken
 * with its demand from the previous one.  A key is young when the
 * previous window has no demand and the current hash was made ("t0")
 * less than "young" ago: the other gateways may not have said their
 * demand yet.
 *
 * The share is this gateway's demand over all the demand (of the part
 * said / alive while young).  In a key's first window (no demand in the
 * previous one) it is also at most what the others leave: each holds
 * "r:" + field, the most of the quota it may have passed (its share
 * before and after its last push, or its count), and while the key is
 * young each gateway alive that has not said its demand holds 1/G.
 * Shares given one after the other in Redis then add up to at most 1
 * over the whole window, however far apart the gateways estimated
 * their demands.
 */

static ngx_http_apipolicy_ratelimit_script_t
    ngx_http_apipolicy_ratelimit_count = {
    ngx_string(
    "local gw, dg, me = ARGV[1], 'd:' .. ARGV[1], 'r:' .. ARGV[1] "
    "if ARGV[3] ~= '0' then "
    "redis.call('HSET', KEYS[2], gw, ARGV[3]) "
    "redis.call('PEXPIREAT', KEYS[2], ARGV[6]) end "
    "local c, p, d, g = tonumber(ARGV[2]), 0, tonumber(ARGV[4]), 1 "
    "local t0, old, said, r, nr = 0, 0, {[dg] = true}, 0, 0 "
    "local v = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #v, 2 do "
    "local f = v[i] "
    "if f ~= gw and f ~= dg and f ~= me then "
    "local n, k = tonumber(v[i + 1]) or 0, string.sub(f, 1, 2) "
    "if f == 't0' then t0 = n "
    "elseif k == 'd:' then d = d + n g = g + 1 said[f] = true "
    "elseif k == 'r:' then r = r + n nr = nr + 1 "
    "else c = c + n end end end "
    "v = redis.call('HGETALL', KEYS[2]) "
    "for i = 1, #v, 2 do "
    "local n, k = tonumber(v[i + 1]) or 0, string.sub(v[i], 1, 2) "
    "if k == 'd:' then old = 1 "
    "if not said[v[i]] then d = d + n g = g + 1 end "
    "elseif v[i] ~= 't0' and k ~= 'r:' then p = p + n end end "
    "local now = tonumber(ARGV[7]) "
    "if t0 == 0 then t0 = now redis.call('HSET', KEYS[1], 't0', ARGV[7]) end "
    "local young = 0 "
    "if old == 0 and now - t0 < tonumber(ARGV[8]) then young = 1 end "
    "local one, alive, dm = 65536, tonumber(ARGV[9]), tonumber(ARGV[4]) "
    "local s = one "
    "if d > 0 and dm < d then s = math.floor(dm * one / d) end "
    "if young == 1 and g < alive then s = math.floor(s * g / alive) end "
    "if old == 0 then "
    "local room = one - r "
    "if young == 1 and alive > nr + 1 then "
    "room = room - (alive - nr - 1) * math.ceil(one / alive) end "
    "if s > room then s = room end "
    "redis.call('HSET', KEYS[1], gw, ARGV[2], dg, ARGV[4], me, "
    "math.max(s, tonumber(ARGV[10]))) "
    "else redis.call('HSET', KEYS[1], gw, ARGV[2], dg, ARGV[4]) end "
    "redis.call('PEXPIREAT', KEYS[1], ARGV[5]) "
    "if s < 1 then s = 1 end "
    "return {c, p, d, young, g, s}"),
    { 0 }
};

/*
 * KEYS: the zone's registry; ARGV: gateway, now (ms), the oldest time
 * still alive, the registry's TTL (ms).  Answers the gateways alive.
 */

static ngx_http_apipolicy_ratelimit_script_t
    ngx_http_apipolicy_ratelimit_alive = {
    ngx_string(
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[4]) "
    "local n, old = 0, tonumber(ARGV[3]) "
    "local v = redis.call('HGETALL', KEYS[1]) "
    "for i = 1, #v, 2 do "
    "if (tonumber(v[i + 1]) or 0) < old then "
    "redis.call('HDEL', KEYS[1], v[i]) else n = n + 1 end end "
    "return n"),
    { 0 }
};


ngx_int_t
ngx_http_apipolicy_ratelimit_init_process(ngx_cycle_t *cycle)
{
    u_char                                  md[EVP_MAX_MD_SIZE];
    ngx_uint_t                              i;
    unsigned int                            mdlen;
    ngx_http_apipolicy_ratelimit_sync_t    *sync;
    ngx_http_apipolicy_ratelimit_zone_t   **zp;
    ngx_http_apipolicy_ratelimit_script_t  *scripts[2];
    ngx_http_apipolicy_main_conf_t         *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_apipolicy_module);

    if (amcf == NULL || amcf->redis == NULL || amcf->ratelimit_zones == NULL) {
        return NGX_OK;
    }

    scripts[0] = &ngx_http_apipolicy_ratelimit_count;
    scripts[1] = &ngx_http_apipolicy_ratelimit_alive;

    for (i = 0; i < 2; i++) {
        if (EVP_Digest(scripts[i]->text.data, scripts[i]->text.len, md,
                       &mdlen, EVP_sha1(), NULL)
            != 1)
        {
            return NGX_ERROR;
        }

        ngx_hex_dump(scripts[i]->sha, md, 20);
    }

    ngx_http_apipolicy_ratelimit_eval = 1;    /* the first batch loads them */

    /* the master's pid: it changes on a restart, as the zones do */

    ngx_http_apipolicy_ratelimit_gateway.data = ngx_pnalloc(cycle->pool,
                                                          cycle->hostname.len
                                                          + 1 + NGX_INT64_LEN);
    if (ngx_http_apipolicy_ratelimit_gateway.data == NULL) {
        return NGX_ERROR;
    }

    ngx_http_apipolicy_ratelimit_gateway.len =
        ngx_sprintf(ngx_http_apipolicy_ratelimit_gateway.data, "%V:%P",
                    &cycle->hostname,
                    ngx_process == NGX_PROCESS_WORKER ? ngx_parent : ngx_pid)
        - ngx_http_apipolicy_ratelimit_gateway.data;

    zp = amcf->ratelimit_zones->elts;

    for (i = 0; i < amcf->ratelimit_zones->nelts; i++) {

        if (zp[i]->sync == 0) {
            continue;
        }

        sync = ngx_pcalloc(cycle->pool,
                           sizeof(ngx_http_apipolicy_ratelimit_sync_t));
        if (sync == NULL) {
            return NGX_ERROR;
        }

        sync->zone = zp[i];
        sync->ev.handler = ngx_http_apipolicy_ratelimit_sync_handler;
        sync->ev.data = sync;
        sync->ev.log = cycle->log;
        sync->ev.cancelable = 1;

        zp[i]->sync_state = sync;

        /* first runs spread over one interval */
        ngx_add_timer(&sync->ev, 1 + ngx_random() % zp[i]->sync);
    }

    return NGX_OK;
}


/* the timer: a round begins, unless another worker began one lately */

static void
ngx_http_apipolicy_ratelimit_sync_handler(ngx_event_t *ev)
{
    ngx_http_apipolicy_ratelimit_sync_t  *sync = ev->data;

    uint64_t                              now;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    zone = sync->zone;

    if (sync->pool == NULL
        && ngx_http_apipolicy_redis_get((ngx_cycle_t *) ngx_cycle))
    {
        now = ngx_http_apipolicy_ratelimit_now();

        ngx_shmtx_lock(&zone->shpool->mutex);

        if (now - zone->sh->synced >= zone->sync) {
            zone->sh->synced = now;
            sync->todo = zone->sh->ndirty;
            ngx_shmtx_unlock(&zone->shpool->mutex);

            (void) ngx_http_apipolicy_ratelimit_sync_push(sync, 1);

        } else {
            ngx_shmtx_unlock(&zone->shpool->mutex);
        }
    }

    ngx_add_timer(ev, zone->sync);
}


/*
 * One batch: the registry (first batch of a round), then up to _BATCH
 * changed nodes.  NGX_OK: sent, or nothing to send.
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_sync_push(
    ngx_http_apipolicy_ratelimit_sync_t *sync, ngx_uint_t registry)
{
    uint64_t                              now;
    ngx_str_t                            *prefix;
    ngx_int_t                             rc;
    ngx_uint_t                            n, i;
    ngx_http_apipolicy_redis_cmd_t       *cmds;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;
    ngx_http_apipolicy_redis_t           *rd;

    zone = sync->zone;
    rd = ngx_http_apipolicy_redis_get((ngx_cycle_t *) ngx_cycle);
    prefix = ngx_http_apipolicy_redis_prefix(rd);
    now = ngx_http_apipolicy_ratelimit_now();

    sync->pool = ngx_create_pool(16384, sync->ev.log);
    if (sync->pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_ratelimit_sync_take(sync, now) != NGX_OK) {
        goto failed;
    }

    if (sync->nsent == 0 && !registry) {
        ngx_destroy_pool(sync->pool);
        sync->pool = NULL;
        return NGX_OK;
    }

    cmds = ngx_palloc(sync->pool, (sync->nsent + 1)
                                  * sizeof(ngx_http_apipolicy_redis_cmd_t));
    if (cmds == NULL) {
        goto give_back;
    }

    n = 0;

    sync->registry = NGX_CONF_UNSET_UINT;

    if (registry) {
        sync->registry = n;

        if (ngx_http_apipolicy_ratelimit_sync_registry(sync, prefix, now,
                                                       &cmds[n++])
            != NGX_OK)
        {
            goto give_back;
        }
    }

    sync->skip = n;

    for (i = 0; i < sync->nsent; i++) {
        if (ngx_http_apipolicy_ratelimit_sync_node(sync, prefix, now,
                                                   &sync->sent[i],
                                                   &cmds[n++])
            != NGX_OK)
        {
            goto give_back;
        }
    }

    rc = ngx_http_apipolicy_redis_send(rd, cmds, n,
                                       ngx_http_apipolicy_ratelimit_sync_done,
                                       sync);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

give_back:

    /* not sent (Redis is down): push everything once it answers */

    ngx_http_apipolicy_ratelimit_sync_give_back(sync);

    ngx_shmtx_lock(&zone->shpool->mutex);
    zone->sh->resync = 1;
    ngx_shmtx_unlock(&zone->shpool->mutex);

failed:

    ngx_destroy_pool(sync->pool);
    sync->pool = NULL;

    return NGX_ERROR;
}


/* the registry's script on "PREFIXrl:{ZONE}:gateways": this gateway lives */

static ngx_int_t
ngx_http_apipolicy_ratelimit_sync_registry(
    ngx_http_apipolicy_ratelimit_sync_t *sync, ngx_str_t *prefix,
    uint64_t now, ngx_http_apipolicy_redis_cmd_t *cmd)
{
    ngx_str_t                             key;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;
    u_char                                num[2][NGX_INT64_LEN];
    ngx_str_t                   argv[NGX_HTTP_APIPOLICY_RATELIMIT_ARGS];

    zone = sync->zone;

    key.data = ngx_pnalloc(sync->pool, prefix->len + zone->name.len
                                       + sizeof("rl:{}:gateways"));
    if (key.data == NULL) {
        return NGX_ERROR;
    }

    key.len = ngx_sprintf(key.data, "%Vrl:{%V}:gateways", prefix,
                          &zone->name)
              - key.data;

    ngx_http_apipolicy_ratelimit_sync_script(argv,
                                        &ngx_http_apipolicy_ratelimit_alive);
    ngx_str_set(&argv[2], "1");
    argv[3] = key;
    argv[4] = ngx_http_apipolicy_ratelimit_gateway;

    argv[5].data = num[0];
    argv[5].len = ngx_sprintf(num[0], "%uL", now) - num[0];
    argv[6].data = num[1];
    argv[6].len = ngx_sprintf(num[1], "%uL", now - (3 * zone->sync + 2000))
                  - num[1];
    ngx_str_set(&argv[7], "60000");

    return ngx_http_apipolicy_ratelimit_sync_command(sync->pool, cmd, argv,
                                                     8, &key);
}


/*
 * A node's script on "PREFIXrl:{ZONE:KEY}:WINDOW" for the current and
 * the previous window (KEY is "tier:key"; the braces keep both windows
 * in one Redis Cluster slot)
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_sync_node(
    ngx_http_apipolicy_ratelimit_sync_t *sync, ngx_str_t *prefix,
    uint64_t now, ngx_http_apipolicy_ratelimit_sent_t *e,
    ngx_http_apipolicy_redis_cmd_t *cmd)
{
    ngx_str_t                             key[2];
    ngx_uint_t                            k;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;
    u_char                                num[9][NGX_INT64_LEN];
    ngx_str_t                   argv[NGX_HTTP_APIPOLICY_RATELIMIT_ARGS];

    zone = sync->zone;

    for (k = 0; k < 2; k++) {
        key[k].data = ngx_pnalloc(sync->pool,
                                  prefix->len + sizeof("rl:{:}:") - 1
                                  + zone->name.len + e->key.len
                                  + NGX_INT64_LEN);
        if (key[k].data == NULL) {
            return NGX_ERROR;
        }

        key[k].len = ngx_sprintf(key[k].data, "%Vrl:{%V:%V}:%uL", prefix,
                                 &zone->name, &e->key, e->index - k)
                     - key[k].data;
    }

    ngx_http_apipolicy_ratelimit_sync_script(argv,
                                        &ngx_http_apipolicy_ratelimit_count);
    ngx_str_set(&argv[2], "2");
    argv[3] = key[0];
    argv[4] = key[1];
    argv[5] = ngx_http_apipolicy_ratelimit_gateway;

    argv[6].data = num[0];
    argv[6].len = ngx_sprintf(num[0], "%uD", e->cur) - num[0];
    argv[7].data = num[1];
    argv[7].len = ngx_sprintf(num[1], "%uD", e->prev) - num[1];
    argv[8].data = num[2];
    argv[8].len = ngx_sprintf(num[2], "%uD", e->demand) - num[2];

    /* a window's hash lasts until two windows after it began */

    argv[9].data = num[3];
    argv[9].len = ngx_sprintf(num[3], "%uL",
                              (e->index + 2) * e->window + 1000)
                  - num[3];
    argv[10].data = num[4];
    argv[10].len = ngx_sprintf(num[4], "%uL",
                               (e->index + 1) * e->window + 1000)
                   - num[4];
    argv[11].data = num[5];
    argv[11].len = ngx_sprintf(num[5], "%uL", now) - num[5];

    /* young: until every gateway's round has come twice */

    argv[12].data = num[6];
    argv[12].len = ngx_sprintf(num[6], "%M", 2 * zone->sync + 100) - num[6];
    argv[13].data = num[7];
    argv[13].len = ngx_sprintf(num[7], "%ui",
                               ngx_max(zone->sh->gateways, 1)) - num[7];
    argv[14].data = num[8];
    argv[14].len = ngx_sprintf(num[8], "%uD", e->held) - num[8];

    return ngx_http_apipolicy_ratelimit_sync_command(sync->pool, cmd, argv,
                                           NGX_HTTP_APIPOLICY_RATELIMIT_ARGS,
                                           &key[0]);
}


/* takes up to _BATCH nodes off the dirty queue, with what to say of each */

static ngx_int_t
ngx_http_apipolicy_ratelimit_sync_take(
    ngx_http_apipolicy_ratelimit_sync_t *sync, uint64_t now)
{
    double                                w, left, seen, span;
    ngx_uint_t                            max;
    ngx_queue_t                          *q;
    ngx_http_apipolicy_ratelimit_node_t  *rn;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;
    ngx_http_apipolicy_ratelimit_sent_t  *e;

    zone = sync->zone;
    max = ngx_min(sync->todo, NGX_HTTP_APIPOLICY_RATELIMIT_BATCH);

    sync->nsent = 0;
    sync->sent = ngx_palloc(sync->pool,
                            (max ? max : 1)
                            * sizeof(ngx_http_apipolicy_ratelimit_sent_t));
    if (sync->sent == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    while (sync->todo && sync->nsent < max
           && !ngx_queue_empty(&zone->sh->dirty))
    {
        q = ngx_queue_head(&zone->sh->dirty);
        rn = ngx_queue_data(q, ngx_http_apipolicy_ratelimit_node_t, dq);

        sync->todo--;

        if (rn->window == 0) {
            ngx_queue_remove(q);
            rn->dirty = 0;
            zone->sh->ndirty--;
            continue;
        }

        ngx_http_apipolicy_ratelimit_roll(rn, now / rn->window);

        if (rn->cur == 0 && rn->prev == 0 && rn->seen == 0 && rn->pseen == 0)
        {
            /* idle for two windows: nothing to say */
            ngx_queue_remove(q);
            rn->dirty = 0;
            zone->sh->ndirty--;
            continue;
        }

        e = &sync->sent[sync->nsent];

        e->key.data = ngx_pnalloc(sync->pool, rn->len);
        if (e->key.data == NULL) {
            break;                      /* the rest stays queued */
        }

        ngx_queue_remove(q);
        rn->dirty = 0;
        zone->sh->ndirty--;

        e->key.len = rn->len;
        ngx_memcpy(e->key.data, rn->key, rn->len);

        e->hash = (uint32_t) ngx_http_apipolicy_ratelimit_rbnode(rn)->key;
        e->window = rn->window;
        e->index = rn->index;
        e->cur = rn->cur;
        e->prev = rn->prev;

        /*
         * the demand over the sliding window, as the estimate counts,
         * scaled to a whole window when this gateway has seen the key
         * for less: demands said at different times compare as rates
         */

        w = (double) rn->window;
        left = w - (double) (now - rn->index * rn->window);
        seen = ngx_http_apipolicy_ratelimit_slide(rn->pseen, rn->seen,
                                                  left, w);
        span = (double) ngx_max(now - rn->born, 20);

        if (span < w) {
            seen = seen * w / span;
        }

        e->demand = (uint32_t) ngx_min(seen, NGX_MAX_UINT32_VALUE);
        e->held = ngx_http_apipolicy_ratelimit_sync_held(zone, rn, left);

        sync->nsent++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_ratelimit_sync_command(ngx_pool_t *pool,
    ngx_http_apipolicy_redis_cmd_t *cmd, ngx_str_t *argv, ngx_uint_t argc,
    ngx_str_t *key)
{
    cmd->cmd.data = ngx_pnalloc(pool, ngx_http_apipolicy_redis_command_len(
                                          argv, argc));
    if (cmd->cmd.data == NULL) {
        return NGX_ERROR;
    }

    cmd->cmd.len = ngx_http_apipolicy_redis_command(cmd->cmd.data, argv,
                                                    argc)
                   - cmd->cmd.data;
    cmd->key = *key;

    return NGX_OK;
}


/*
 * EVALSHA, or EVAL with the whole script after a NOSCRIPT (Redis
 * restarted, SCRIPT FLUSH, or a Cluster node that never ran it): EVAL
 * leaves the script in the node's cache for the EVALSHAs after it
 */

static void
ngx_http_apipolicy_ratelimit_sync_script(ngx_str_t *argv,
    ngx_http_apipolicy_ratelimit_script_t *script)
{
    if (ngx_http_apipolicy_ratelimit_eval) {
        ngx_str_set(&argv[0], "EVAL");
        argv[1] = script->text;

    } else {
        ngx_str_set(&argv[0], "EVALSHA");
        argv[1].data = script->sha;
        argv[1].len = 40;
    }
}


/* Redis answered (or not): counts, shares, gateways; the next batch */

static void
ngx_http_apipolicy_ratelimit_sync_done(void *data, redisReply **replies,
    ngx_uint_t n, ngx_int_t rc)
{
    ngx_http_apipolicy_ratelimit_sync_t  *sync = data;

    uint64_t                              now;
    ngx_uint_t                            i, more, noscript;
    redisReply                           *r;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;

    zone = sync->zone;

    if (rc != NGX_OK || n != sync->skip + sync->nsent) {
        /* Redis is away (or was): push everything again once it is back */
        ngx_http_apipolicy_ratelimit_eval = 1;
        ngx_http_apipolicy_ratelimit_sync_give_back(sync);

        ngx_shmtx_lock(&zone->shpool->mutex);
        zone->sh->resync = 1;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_destroy_pool(sync->pool);
        sync->pool = NULL;
        return;
    }

    noscript = 0;
    now = ngx_http_apipolicy_ratelimit_now();

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (sync->registry != NGX_CONF_UNSET_UINT) {
        r = replies[sync->registry];

        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            zone->sh->gateways = (ngx_uint_t) r->integer;

        } else if (r->type == REDIS_REPLY_ERROR
                   && ngx_strncmp(r->str, "NOSCRIPT", 8) == 0)
        {
            noscript = 1;
        }
    }

    for (i = 0; i < sync->nsent; i++) {
        r = replies[sync->skip + i];

        if (r->type == REDIS_REPLY_ERROR
            && ngx_strncmp(r->str, "NOSCRIPT", 8) == 0)
        {
            noscript = 1;
            continue;               /* pushed again with everything */
        }

        ngx_http_apipolicy_ratelimit_sync_answer(sync, &sync->sent[i], r);
    }

    zone->sh->answered = now;

    /*
     * Redis forgot the scripts (it restarted, or SCRIPT FLUSH): the next
     * batches send them, and every node is pushed: the counts may be lost
     */

    ngx_http_apipolicy_ratelimit_eval = noscript;

    if (noscript) {
        zone->sh->resync = 1;
    }

    if (zone->sh->resync) {
        ngx_http_apipolicy_ratelimit_sync_all(zone, now);
        zone->sh->resync = 0;
        sync->todo = zone->sh->ndirty;
    }

    more = sync->todo && zone->sh->ndirty;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_destroy_pool(sync->pool);
    sync->pool = NULL;

    if (more && !(ngx_exiting || ngx_quit || ngx_terminate)) {
        /* nodes queued before the round began are still waiting */
        (void) ngx_http_apipolicy_ratelimit_sync_push(sync, 0);
    }
}


/*
 * What this gateway holds of a node's quota, in 1/65536: the share it
 * passes requests under until the answer (1/G before any), or what its
 * own sliding estimate already takes, when more.  "left" is the part of
 * the window still to come, as the batch computed it.  Zone locked.
 */

static uint32_t
ngx_http_apipolicy_ratelimit_sync_held(
    ngx_http_apipolicy_ratelimit_zone_t *zone,
    ngx_http_apipolicy_ratelimit_node_t *rn, double left)
{
    double      own;
    uint64_t    held, one;
    ngx_uint_t  g;

    one = NGX_HTTP_APIPOLICY_RATELIMIT_SHARE_ONE;
    g = ngx_max(zone->sh->gateways, 1);

    held = rn->share ? rn->share : (one + g - 1) / g;

    if (rn->quota) {
        own = ngx_http_apipolicy_ratelimit_slide(rn->prev, rn->cur, left,
                                                 rn->window);
        held = ngx_max(held, (uint64_t) ngx_min(ceil(own * one / rn->quota),
                                                (double) one));
    }

    return (uint32_t) held;
}


/*
 * One node's answer { counts now, counts before, demand, young, said,
 * share }: the others' counts are the totals less ours as sent; our share
 * is what the script gave.  Zone locked.
 */

static void
ngx_http_apipolicy_ratelimit_sync_answer(
    ngx_http_apipolicy_ratelimit_sync_t *sync,
    ngx_http_apipolicy_ratelimit_sent_t *e, redisReply *r)
{
    long long                             tc, tp, young, said, share;
    ngx_uint_t                            i;
    ngx_http_apipolicy_ratelimit_node_t  *rn;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        return;                     /* e.g. WRONGTYPE: someone else's key */
    }

    for (i = 0; i < 6; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER) {
            return;
        }
    }

    tc = r->element[0]->integer;
    tp = r->element[1]->integer;
    young = r->element[3]->integer;
    said = r->element[4]->integer;
    share = r->element[5]->integer;

    rn = ngx_http_apipolicy_ratelimit_lookup(sync->zone, &e->key, e->hash, 0);

    if (rn == NULL) {
        return;
    }

    if (rn->index == e->index) {
        rn->rcur = (tc > (long long) e->cur)
                   ? (uint32_t) ngx_min(tc - e->cur, NGX_MAX_UINT32_VALUE)
                   : 0;
        rn->rprev = (tp > (long long) e->prev)
                    ? (uint32_t) ngx_min(tp - e->prev, NGX_MAX_UINT32_VALUE)
                    : 0;

        /*
         * our share, as the script gave it (a known share is never 0: 0
         * means "none yet", 1/G); a young key whose other gateways have
         * not all said their demand is asked again next round, whether
         * it changes or not
         */

        if (young && said > 0 && (ngx_uint_t) said < sync->zone->sh->gateways)
        {
            ngx_http_apipolicy_ratelimit_mark(sync->zone, rn);
        }

        rn->share = (uint32_t) ngx_max(ngx_min(share,
                                     NGX_HTTP_APIPOLICY_RATELIMIT_SHARE_ONE),
                                     1);

    } else if (rn->index == e->index + 1) {
        rn->rprev = (tc > (long long) e->cur)
                    ? (uint32_t) ngx_min(tc - e->cur, NGX_MAX_UINT32_VALUE)
                    : 0;
    }
}


/* the batch failed: its nodes wait for the next one */

static void
ngx_http_apipolicy_ratelimit_sync_give_back(
    ngx_http_apipolicy_ratelimit_sync_t *sync)
{
    ngx_uint_t                            i;
    ngx_http_apipolicy_ratelimit_node_t  *rn;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;
    ngx_http_apipolicy_ratelimit_sent_t  *e;

    zone = sync->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (i = 0; i < sync->nsent; i++) {
        e = &sync->sent[i];

        rn = ngx_http_apipolicy_ratelimit_lookup(zone, &e->key, e->hash, 0);

        if (rn) {
            ngx_http_apipolicy_ratelimit_mark(zone, rn);
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* Redis is back: every node that still counts is pushed again; locked */

static void
ngx_http_apipolicy_ratelimit_sync_all(ngx_http_apipolicy_ratelimit_zone_t *zone,
    uint64_t now)
{
    ngx_queue_t                          *q;
    ngx_http_apipolicy_ratelimit_node_t  *rn;

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        rn = ngx_queue_data(q, ngx_http_apipolicy_ratelimit_node_t, queue);

        if (rn->window == 0 || now / rn->window >= rn->index + 2) {
            continue;
        }

        if (rn->cur || rn->prev || rn->seen || rn->pseen) {
            ngx_http_apipolicy_ratelimit_mark(zone, rn);
        }
    }
}
