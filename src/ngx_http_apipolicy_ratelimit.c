
/*
 * Copyright (C) apipolicy authors
 *
 * Tiered rate limiting in shared memory (PRECONTENT), with IETF
 * RateLimit / RateLimit-Policy headers (draft-ietf-httpapi-ratelimit-
 * headers) and 429 + Retry-After.
 *
 *   tiers    apipolicy_ratelimit_tier NAME rate=N r/s|r/m|r/h|r/d
 *            [burst=N]: a quota of N + burst requests per window of one
 *            second, minute, hour or day.  A limit picks its tier per
 *            request from a variable (a JWT claim through a map, say);
 *            an empty or unknown name picks the tier "default".
 *   counting a sliding window over two fixed windows: the estimate is
 *            prev * (time left in the current window / window), rounded
 *            down, + cur.
 *            A request passes when estimate + cost <= quota and is then
 *            counted; a rejected request is not counted (as limit_req).
 *            Windows are aligned on the wall clock, so that every
 *            gateway counts the same window and counts can be added up.
 *   shared   one node per (tier, key) in an rbtree with an LRU queue;
 *            idle nodes (two windows without a request) go first, the
 *            least recently used one when the zone is full.  A node holds
 *            this gateway's counts and, for the Redis sync, the other
 *            gateways' counts and what has not been pushed yet.
 *   several  up to 8 apipolicy_ratelimit lines per location: every limit
 *            must pass; when one refuses, the counts the others took are
 *            given back.
 *   Redis    with apipolicy_redis, every sync= interval one worker (the
 *            first whose timer finds the interval over, elected through
 *            the zone) pushes what this gateway counted since the last
 *            push, per node and window: each key is a hash with one
 *            field per gateway (hostname:master pid) holding that
 *            gateway's count, set to the absolute value (a push that
 *            timed out and was run late does no harm: the next one sets
 *            the same or a larger count), and a script answers the sum
 *            of the fields; the other gateways' share becomes part of
 *            the estimate.  Keys expire with PEXPIREAT two windows after
 *            their window began.  A
 *            request never waits for Redis: it decides on the zone.  When
 *            Redis is down, counts stay in the zone (pushed later while
 *            their window lasts) and limiting goes on with local counts.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_util.h"
#include "ngx_http_apipolicy_redis.h"
#include "ngx_http_apipolicy_digest.h"

#include <math.h>


/* "aprl0002" */
#define NGX_HTTP_APIPOLICY_RATELIMIT_MAGIC     0x6170726c30303032
#define NGX_HTTP_APIPOLICY_RATELIMIT_KEY_MAX   255  /* longer: SHA-256 */
#define NGX_HTTP_APIPOLICY_RATELIMIT_TIER_MAX  64   /* a tier's name */
#define NGX_HTTP_APIPOLICY_RATELIMIT_PK_LEN    (sizeof(";pk=::") - 1 + 12)


/* what one limit decided, kept until all limits of the location ran */
typedef struct {
    ngx_http_apipolicy_ratelimit_limit_t  *limit;
    ngx_http_apipolicy_ratelimit_tier_t   *tier;
    ngx_str_t                              key;
    uint32_t                               hash;
    uint64_t                               index;
    ngx_uint_t                             counted;
} ngx_http_apipolicy_ratelimit_taken_t;


static ngx_int_t ngx_http_apipolicy_ratelimit_account(ngx_http_request_t *r,
    ngx_http_apipolicy_ratelimit_taken_t *t, uint64_t now,
    ngx_http_apipolicy_ratelimit_result_t *res, ngx_uint_t *retry);
static void ngx_http_apipolicy_ratelimit_give_back(
    ngx_http_apipolicy_ratelimit_taken_t *t);
static ngx_uint_t ngx_http_apipolicy_ratelimit_wait(double prev, double cur,
    double cap, double cost, double w, double elapsed);
static void ngx_http_apipolicy_ratelimit_expire(
    ngx_http_apipolicy_ratelimit_zone_t *zone, uint64_t now,
    ngx_uint_t force);
static void ngx_http_apipolicy_ratelimit_rbtree_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static ngx_http_apipolicy_ratelimit_tier_t *
    ngx_http_apipolicy_ratelimit_find_tier(ngx_array_t *tiers,
    ngx_str_t *name);
static ngx_int_t ngx_http_apipolicy_ratelimit_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);


/* apipolicy_ratelimit_headers ietf | legacy | both | off */

ngx_conf_enum_t  ngx_http_apipolicy_ratelimit_headers[] = {
    { ngx_string("ietf"), NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_IETF },
    { ngx_string("legacy"), NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_LEGACY },
    { ngx_string("both"), NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_IETF
                          |NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_LEGACY },
    { ngx_string("off"), 0 },
    { ngx_null_string, 0 }
};


static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_ratelimit_problem =
    ngx_http_apipolicy_problem("RATE_LIMITED", "rate-limited",
                               "Too many requests");

static ngx_str_t  ngx_http_apipolicy_ratelimit_default =
    ngx_string("default");

static ngx_str_t  ngx_http_apipolicy_ratelimit_policy_name =
    ngx_string("RateLimit-Policy");
static ngx_str_t  ngx_http_apipolicy_ratelimit_name = ngx_string("RateLimit");
static ngx_str_t  ngx_http_apipolicy_ratelimit_retry_name =
    ngx_string("Retry-After");
static ngx_str_t  ngx_http_apipolicy_ratelimit_x_limit =
    ngx_string("X-RateLimit-Limit");
static ngx_str_t  ngx_http_apipolicy_ratelimit_x_remaining =
    ngx_string("X-RateLimit-Remaining");
static ngx_str_t  ngx_http_apipolicy_ratelimit_x_reset =
    ngx_string("X-RateLimit-Reset");


/* ---- request time ---------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_ratelimit_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    u_char                                *p, hash[32];
    uint64_t                               now;
    ngx_int_t                              rc;
    ngx_str_t                              value, tier, detail;
    ngx_uint_t                             i, n, retry, rejected, dry;
    ngx_http_apipolicy_ratelimit_ctx_t    *rctx;
    ngx_http_apipolicy_ratelimit_tier_t   *t;
    ngx_http_apipolicy_ratelimit_limit_t  *limit;
    ngx_http_apipolicy_main_conf_t        *amcf;
    ngx_http_apipolicy_ratelimit_taken_t
                              taken[NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS];

    if (alcf->ratelimit.limits == NULL) {
        return NGX_DECLINED;
    }

    if (ctx->ratelimit) {
        /*
         * decided before an internal redirect (try_files, or the
         * error_page that shows a rejection): counted once, refused once
         */
        return NGX_DECLINED;
    }

    rctx = ngx_pcalloc(r->pool, sizeof(ngx_http_apipolicy_ratelimit_ctx_t));
    if (rctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->ratelimit = rctx;
    rctx->headers = alcf->ratelimit.headers;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);
    now = ngx_http_apipolicy_ratelimit_now();

    limit = alcf->ratelimit.limits->elts;
    n = 0;
    rejected = 0;
    dry = 0;
    retry = 0;

    for (i = 0; i < alcf->ratelimit.limits->nelts; i++) {

        if (ngx_http_complex_value(r, &limit[i].key, &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (value.len == 0) {
            continue;                   /* as limit_req: no key, no limit */
        }

        ngx_str_null(&tier);

        if (limit[i].tier
            && ngx_http_complex_value(r, limit[i].tier, &tier) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        t = ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers,
                                                   &tier);

        if (t == NULL) {
            t = ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers,
                                         &ngx_http_apipolicy_ratelimit_default);
        }

        if (t == NULL) {
            /* no "default" tier: checked at configuration time */
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* the node key: "tier:key", keys too long for a node hashed */

        taken[n].key.len = t->name.len + 1
                           + (value.len > NGX_HTTP_APIPOLICY_RATELIMIT_KEY_MAX
                              - t->name.len - 1 ? 32 : value.len);
        taken[n].key.data = ngx_pnalloc(r->pool, taken[n].key.len);
        if (taken[n].key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(taken[n].key.data, t->name.data, t->name.len);
        *p++ = ':';

        if (value.len > NGX_HTTP_APIPOLICY_RATELIMIT_KEY_MAX - t->name.len - 1)
        {
            if (ngx_http_apipolicy_sha256(value.data, value.len, hash)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(p, hash, 32);

        } else {
            ngx_memcpy(p, value.data, value.len);
        }

        taken[n].limit = &limit[i];
        taken[n].tier = t;
        taken[n].hash = ngx_crc32_short(taken[n].key.data, taken[n].key.len);
        taken[n].counted = 0;

        rc = ngx_http_apipolicy_ratelimit_account(r, &taken[n], now,
                                                  &rctx->results[n], &retry);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rctx->results[n].zone = limit[i].zone;
        rctx->results[n].status = (rc != NGX_DECLINED)
                                  ? NGX_HTTP_APIPOLICY_RATELIMIT_PASSED
                                  : (limit[i].dry_run
                                     ? NGX_HTTP_APIPOLICY_RATELIMIT_DRY_RUN
                                     : NGX_HTTP_APIPOLICY_RATELIMIT_REJECTED);
        n++;

        if (rc == NGX_DECLINED) {

            if (limit[i].dry_run) {
                dry = 1;
                continue;
            }

            rejected = 1;
            break;
        }
    }

    rctx->nresults = n;

    if (!rejected) {
        rctx->status = dry ? NGX_HTTP_APIPOLICY_RATELIMIT_DRY_RUN
                           : NGX_HTTP_APIPOLICY_RATELIMIT_PASSED;

        if (dry) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "apipolicy: over the rate limit (dry run)");
        }

        return NGX_DECLINED;
    }

    /* refused: the limits that passed give their count back */

    for (i = 0; i < n; i++) {
        ngx_http_apipolicy_ratelimit_give_back(&taken[i]);
    }

    rctx->status = NGX_HTTP_APIPOLICY_RATELIMIT_REJECTED;
    rctx->retry_after = retry ? retry : 1;

    t = taken[n - 1].tier;

    /* room for the tier's own name, however long the operator made it */

    detail.data = ngx_pnalloc(r->pool,
                              sizeof("the \"\" tier allows  requests per ; "
                                     "retry in  s")
                              + t->name.len
                              + 2 * NGX_INT_T_LEN + sizeof("minute"));
    if (detail.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    detail.len = ngx_sprintf(detail.data,
                             "the \"%V\" tier allows %ui requests per %s; "
                             "retry in %ui s", &t->name, t->quota,
                             t->window == 1000 ? "second"
                             : t->window == 60000 ? "minute"
                             : t->window == 3600000 ? "hour" : "day",
                             rctx->retry_after)
                 - detail.data;

    return ngx_http_apipolicy_reject(r, ctx, alcf->ratelimit.status,
                                     &ngx_http_apipolicy_ratelimit_problem,
                                     NGX_LOG_INFO, &detail);
}


/*
 * One limit: NGX_OK (counted), NGX_DECLINED (over the quota: not
 * counted, *retry set to the seconds until it would pass), NGX_ERROR.
 *
 * Two caps, both on the sliding window estimate:
 *   all gateways   floor(prev * (w - elapsed) / w) + cur + cost <= quota,
 *                  prev and cur being this gateway's counts plus the
 *                  others' as of the last sync;
 *   this gateway   with a Redis sync, the same estimate over this
 *                  gateway's own counts <= quota * share, the share being
 *                  its part of the demand of all gateways (from the last
 *                  sync), or 1/G (G gateways alive) for a key not synced
 *                  yet.  The shares add up to 1, so the gateways together
 *                  cannot pass more than the quota however stale the
 *                  others' counts are.
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_account(ngx_http_request_t *r,
    ngx_http_apipolicy_ratelimit_taken_t *t, uint64_t now,
    ngx_http_apipolicy_ratelimit_result_t *res, ngx_uint_t *retry)
{
    double                                estimate, own, prev, cur, oprev,
                                          ocur, quota, cap, cost, elapsed, w,
                                          left;
    uint64_t                              index;
    ngx_int_t                             rc;
    ngx_uint_t                            s, wait, shared;
    ngx_http_apipolicy_ratelimit_node_t  *rn;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;

    zone = t->limit->zone;
    w = (double) t->tier->window;
    index = now / t->tier->window;
    elapsed = (double) (now - index * t->tier->window);
    quota = (double) t->tier->quota;
    cost = (double) t->limit->cost;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_apipolicy_ratelimit_expire(zone, now, 0);

    rn = ngx_http_apipolicy_ratelimit_lookup(zone, &t->key, t->hash, 1);

    if (rn == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "apipolicy: could not allocate a node in rate limit "
                      "zone \"%V\"", &zone->name);
        return NGX_ERROR;
    }

    rn->window = (uint32_t) t->tier->window;
    ngx_http_apipolicy_ratelimit_roll(rn, index);

    if (rn->born == 0) {
        rn->born = now;
    }

    prev = (double) rn->prev + rn->rprev;
    cur = (double) rn->cur + rn->rcur;
    estimate = floor(prev * (w - elapsed) / w) + cur;
    own = floor((double) rn->prev * (w - elapsed) / w) + rn->cur;

    cap = quota;
    shared = 0;

    if (zone->sync && ngx_http_apipolicy_ratelimit_shares_live(zone, now)) {
        shared = 1;
        cap = rn->share
              ? quota * rn->share / NGX_HTTP_APIPOLICY_RATELIMIT_SHARE_ONE
              : quota / (double) ngx_max(zone->sh->gateways, 1);
    }

    /* the demand counts whatever the answer: it sizes the shares */

    rn->seen += (uint32_t) t->limit->cost;

    if (zone->sync) {
        ngx_http_apipolicy_ratelimit_mark(zone, rn);
    }

    if (estimate + cost <= quota && own + cost <= cap) {
        rn->cur += (uint32_t) t->limit->cost;
        t->counted = 1;
        t->index = index;
        rc = NGX_OK;

    } else if (t->limit->dry_run) {
        /* not limited, but counted as served */
        rn->cur += (uint32_t) t->limit->cost;
        rc = NGX_DECLINED;

    } else {
        rc = NGX_DECLINED;
    }

    /* the counts after this request, for the headers */

    oprev = (double) rn->prev;
    ocur = (double) rn->cur;
    cur = ocur + rn->rcur;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    estimate = floor(prev * (w - elapsed) / w) + cur;
    own = floor(oprev * (w - elapsed) / w) + ocur;
    left = ngx_min(quota - estimate, floor(cap - own));

    res->tier = t->tier;
    res->key = t->key;
    res->remaining = (left > 0) ? (ngx_uint_t) left : 0;

    if (rc == NGX_OK && res->remaining >= t->limit->cost) {
        /* the seconds until the current window's count starts to decay */
        res->reset = (ngx_uint_t) ((w - elapsed + 999) / 1000);
        return rc;
    }

    /*
     * The next request of this cost would be refused: when would it
     * pass, with the counts known now.  RateLimit t= says the same as
     * Retry-After.
     */

    wait = ngx_http_apipolicy_ratelimit_wait(prev, cur, quota, cost, w,
                                             elapsed);

    if (shared) {
        wait = ngx_max(wait, ngx_http_apipolicy_ratelimit_wait(oprev, ocur,
                                                               cap, cost, w,
                                                               elapsed));
    }

    s = (wait + 999) / 1000;
    res->reset = s;

    if (rc == NGX_DECLINED) {
        s = ngx_max(s, 1);

        if (s > *retry) {
            *retry = s;
        }
    }

    return rc;
}


/*
 * Milliseconds until floor(prev * (w - e) / w) + cur + cost <= cap with
 * the counts given: later in this window as the previous window's share
 * decays, else in the next one (whose previous window is this one).
 */

static ngx_uint_t
ngx_http_apipolicy_ratelimit_wait(double prev, double cur, double cap,
    double cost, double w, double elapsed)
{
    double  need, at;

    need = cap - cur - cost;

    if (need >= 0) {
        if (prev < need + 1) {
            return 0;
        }

        /* floor(prev * (w - e) / w) <= need once e > at */
        at = w * (1 - (need + 1) / prev);

        if (at < elapsed) {
            return 0;
        }

        return (ngx_uint_t) (at - elapsed) + 1;
    }

    need = cap - cost;

    if (need < 0) {
        return (ngx_uint_t) w;          /* a cost no window allows */
    }

    if (cur < need + 1) {
        return (ngx_uint_t) (w - elapsed);
    }

    at = w * (1 - (need + 1) / cur);

    return (ngx_uint_t) (w - elapsed + at) + 1;
}


static void
ngx_http_apipolicy_ratelimit_give_back(ngx_http_apipolicy_ratelimit_taken_t *t)
{
    ngx_http_apipolicy_ratelimit_node_t  *rn;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;

    if (!t->counted) {
        return;
    }

    zone = t->limit->zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    rn = ngx_http_apipolicy_ratelimit_lookup(zone, &t->key, t->hash, 0);

    if (rn && rn->index == t->index) {
        rn->cur -= ngx_min(rn->cur, (uint32_t) t->limit->cost);
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* moves a node to the window "index" */

void
ngx_http_apipolicy_ratelimit_roll(ngx_http_apipolicy_ratelimit_node_t *rn,
    uint64_t index)
{
    if (rn->index == index) {
        return;
    }

    if (rn->index + 1 == index) {
        rn->prev = rn->cur;
        rn->pseen = rn->seen;
        rn->rprev = rn->rcur;

    } else {
        /*
         * two windows or more without a request: nothing counts, and the
         * demand is measured afresh (from the next request on)
         */
        rn->prev = 0;
        rn->pseen = 0;
        rn->rprev = 0;
        rn->share = 0;
        rn->born = 0;
    }

    rn->cur = 0;
    rn->seen = 0;
    rn->rcur = 0;
    rn->index = index;
}


void
ngx_http_apipolicy_ratelimit_mark(ngx_http_apipolicy_ratelimit_zone_t *zone,
    ngx_http_apipolicy_ratelimit_node_t *rn)
{
    if (!rn->dirty) {
        rn->dirty = 1;
        ngx_queue_insert_tail(&zone->sh->dirty, &rn->dq);
        zone->sh->ndirty++;
    }
}


ngx_uint_t
ngx_http_apipolicy_ratelimit_shares_live(
    ngx_http_apipolicy_ratelimit_zone_t *zone, uint64_t now)
{
    /* Redis answered within three intervals (and a second) */
    return zone->sh->answered
           && now - zone->sh->answered <= 3 * zone->sync + 1000;
}


/* finds or creates the node of "key", most recent first; zone locked */

ngx_http_apipolicy_ratelimit_node_t *
ngx_http_apipolicy_ratelimit_lookup(ngx_http_apipolicy_ratelimit_zone_t *zone,
    ngx_str_t *key, uint32_t hash, ngx_uint_t create)
{
    size_t                                size;
    ngx_int_t                             rc;
    ngx_rbtree_node_t                    *node, *sentinel;
    ngx_http_apipolicy_ratelimit_node_t  *rn;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        rn = ngx_http_apipolicy_ratelimit_node(node);

        rc = ngx_memn2cmp(key->data, rn->key, key->len, (size_t) rn->len);

        if (rc == 0) {
            ngx_queue_remove(&rn->queue);
            ngx_queue_insert_head(&zone->sh->queue, &rn->queue);
            return rn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    if (!create) {
        return NULL;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_apipolicy_ratelimit_node_t, key) + key->len;

    node = ngx_slab_alloc_locked(zone->shpool, size);

    if (node == NULL) {
        ngx_http_apipolicy_ratelimit_expire(zone, 0, 1);

        node = ngx_slab_alloc_locked(zone->shpool, size);
        if (node == NULL) {
            return NULL;
        }
    }

    node->key = hash;

    rn = ngx_http_apipolicy_ratelimit_node(node);
    ngx_memzero(rn, offsetof(ngx_http_apipolicy_ratelimit_node_t, key));

    rn->len = (u_char) key->len;
    ngx_memcpy(rn->key, key->data, key->len);

    ngx_rbtree_insert(&zone->sh->rbtree, node);
    ngx_queue_insert_head(&zone->sh->queue, &rn->queue);
    zone->sh->nodes++;

    return rn;
}


/*
 * force == 0: free up to two nodes idle for two windows from the back of
 * the queue (nothing of them counts any more, and their windows are over
 * in Redis too); force == 1: free the least recently used node whatever its
 * state, then as above.  Zone locked.
 */

static void
ngx_http_apipolicy_ratelimit_expire(ngx_http_apipolicy_ratelimit_zone_t *zone,
    uint64_t now, ngx_uint_t force)
{
    ngx_uint_t                            n;
    ngx_queue_t                          *q;
    ngx_rbtree_node_t                    *node;
    ngx_http_apipolicy_ratelimit_node_t  *rn;

    for (n = 0; n < 3; n++) {

        if (ngx_queue_empty(&zone->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&zone->sh->queue);
        rn = ngx_queue_data(q, ngx_http_apipolicy_ratelimit_node_t, queue);

        if (!(n == 0 && force)) {
            if (rn->window == 0 || now / rn->window < rn->index + 2) {
                return;
            }
        }

        node = ngx_http_apipolicy_ratelimit_rbnode(rn);

        if (rn->dirty) {
            /* not pushed yet: lost to the other gateways when forced */
            ngx_queue_remove(&rn->dq);
            zone->sh->ndirty--;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&zone->sh->rbtree, node);
        ngx_slab_free_locked(zone->shpool, node);
        zone->sh->nodes--;
    }
}


static void
ngx_http_apipolicy_ratelimit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                   **p;
    ngx_http_apipolicy_ratelimit_node_t  *rn, *rnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            rn = ngx_http_apipolicy_ratelimit_node(node);
            rnt = ngx_http_apipolicy_ratelimit_node(temp);

            p = (ngx_memn2cmp(rn->key, rnt->key, rn->len, rnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_apipolicy_ratelimit_tier_t *
ngx_http_apipolicy_ratelimit_find_tier(ngx_array_t *tiers, ngx_str_t *name)
{
    ngx_uint_t                            i;
    ngx_http_apipolicy_ratelimit_tier_t  *t;

    if (tiers == NULL || name->len == 0) {
        return NULL;
    }

    t = tiers->elts;

    for (i = 0; i < tiers->nelts; i++) {
        if (t[i].name.len == name->len
            && ngx_strncmp(t[i].name.data, name->data, name->len) == 0)
        {
            return &t[i];
        }
    }

    return NULL;
}


/* wall-clock milliseconds: windows line up across gateways */

uint64_t
ngx_http_apipolicy_ratelimit_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/* ---- response headers ------------------------------------------------ */

/*
 * ";pk=:...:" (a structured-field byte sequence): the first 9 bytes of
 * SHA-256 over "zone:tier:key", so that a client tells two limits of one
 * tier apart without learning the key the gateway counts it by
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_pk(ngx_http_apipolicy_ratelimit_result_t *res,
    ngx_str_t *pk, u_char *buf)
{
    u_char       md[EVP_MAX_MD_SIZE];
    ngx_str_t    src, dst;
    EVP_MD_CTX  *md_ctx;

    md_ctx = EVP_MD_CTX_new();
    if (md_ctx == NULL) {
        return NGX_ERROR;
    }

    if (EVP_DigestInit_ex(md_ctx, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(md_ctx, res->zone->name.data,
                            res->zone->name.len)
           != 1
        || EVP_DigestUpdate(md_ctx, ":", 1) != 1
        || EVP_DigestUpdate(md_ctx, res->key.data, res->key.len) != 1
        || EVP_DigestFinal_ex(md_ctx, md, NULL) != 1)
    {
        EVP_MD_CTX_free(md_ctx);
        return NGX_ERROR;
    }

    EVP_MD_CTX_free(md_ctx);

    src.data = md;
    src.len = 9;

    dst.data = ngx_cpymem(buf, ";pk=:", 5);
    ngx_encode_base64(&dst, &src);

    dst.data[dst.len] = ':';

    pk->data = buf;
    pk->len = 5 + dst.len + 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_ratelimit_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    u_char                                 *p;
    size_t                                  len;
    ngx_str_t                               value;
    ngx_uint_t                              i, j, min;
    ngx_http_apipolicy_ratelimit_ctx_t     *rctx;
    ngx_http_apipolicy_ratelimit_result_t  *res;
    ngx_str_t                  pk[NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS];
    u_char                     pkbuf[NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS]
                                    [NGX_HTTP_APIPOLICY_RATELIMIT_PK_LEN];

    rctx = ctx->ratelimit;

    if (rctx == NULL || rctx->nresults == 0) {
        return NGX_OK;
    }

    res = rctx->results;

    if (rctx->headers & NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_IETF) {

        /*
         * two limits of one tier: each item gets the partition key
         * parameter, pk=, a digest of its zone and key, to tell them apart
         */

        for (i = 0; i < rctx->nresults; i++) {
            pk[i].len = 0;

            for (j = 0; j < rctx->nresults; j++) {
                if (j != i && res[j].tier == res[i].tier) {
                    if (ngx_http_apipolicy_ratelimit_pk(&res[i], &pk[i],
                                                        pkbuf[i])
                        != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                    break;
                }
            }
        }

        /* RateLimit-Policy: "tier";q=100;w=60, ... */

        len = 0;

        for (i = 0; i < rctx->nresults; i++) {
            len += res[i].tier->policy.len + 2 + pk[i].len;
        }

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;

        for (i = 0; i < rctx->nresults; i++) {
            if (i) {
                *p++ = ','; *p++ = ' ';
            }

            p = ngx_cpymem(p, res[i].tier->policy.data,
                           res[i].tier->policy.len);
            p = ngx_cpymem(p, pk[i].data, pk[i].len);
        }

        value.len = p - value.data;

        if (ngx_http_apipolicy_add_header(r,
                                   &ngx_http_apipolicy_ratelimit_policy_name,
                                   &value)
            == NULL)
        {
            return NGX_ERROR;
        }

        /* RateLimit: "tier";r=42;t=17, ... */

        len = 0;

        for (i = 0; i < rctx->nresults; i++) {
            len += res[i].tier->name.len + pk[i].len
                   + sizeof("\"\";r=;t=, ") - 1 + 2 * NGX_INT_T_LEN;
        }

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;

        for (i = 0; i < rctx->nresults; i++) {
            p = ngx_sprintf(p, "%s\"%V\";r=%ui;t=%ui%V", i ? ", " : "",
                            &res[i].tier->name, res[i].remaining,
                            res[i].reset, &pk[i]);
        }

        value.len = p - value.data;

        if (ngx_http_apipolicy_add_header(r, &ngx_http_apipolicy_ratelimit_name,
                                          &value)
            == NULL)
        {
            return NGX_ERROR;
        }

        ctx->added |= NGX_HTTP_APIPOLICY_HDR_RATELIMIT
                      |NGX_HTTP_APIPOLICY_HDR_RATELIMIT_POLICY;
    }

    if (rctx->headers & NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_LEGACY) {

        /* the most restrictive limit */

        min = 0;

        for (i = 1; i < rctx->nresults; i++) {
            if (res[i].remaining < res[min].remaining) {
                min = i;
            }
        }

        p = ngx_pnalloc(r->pool, 3 * NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", res[min].tier->quota) - p;
        p += value.len;

        if (ngx_http_apipolicy_add_header(r,
                                          &ngx_http_apipolicy_ratelimit_x_limit,
                                          &value)
            == NULL)
        {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", res[min].remaining) - p;
        p += value.len;

        if (ngx_http_apipolicy_add_header(r,
                                     &ngx_http_apipolicy_ratelimit_x_remaining,
                                     &value)
            == NULL)
        {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", res[min].reset) - p;

        if (ngx_http_apipolicy_add_header(r,
                                          &ngx_http_apipolicy_ratelimit_x_reset,
                                          &value)
            == NULL)
        {
            return NGX_ERROR;
        }

        ctx->added |= NGX_HTTP_APIPOLICY_HDR_X_RATELIMIT;
    }

    if (rctx->status == NGX_HTTP_APIPOLICY_RATELIMIT_REJECTED
        && r->headers_out.status == (ngx_uint_t) ctx->problem_status
        && ctx->problem == &ngx_http_apipolicy_ratelimit_problem)
    {
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", rctx->retry_after) - p;

        if (ngx_http_apipolicy_add_header(r,
                                      &ngx_http_apipolicy_ratelimit_retry_name,
                                      &value)
            == NULL)
        {
            return NGX_ERROR;
        }

        ctx->added |= NGX_HTTP_APIPOLICY_HDR_RETRY_AFTER;
    }

    return NGX_OK;
}


/* $apipolicy_ratelimit_status: PASSED, REJECTED, REJECTED_DRY_RUN */

ngx_int_t
ngx_http_apipolicy_ratelimit_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_apipolicy_ctx_t  *ctx;

    static ngx_str_t  names[] = {
        ngx_null_string,
        ngx_string("PASSED"),
        ngx_string("REJECTED"),
        ngx_string("REJECTED_DRY_RUN")
    };

    ctx = ngx_http_apipolicy_get_ctx(r->main);

    if (ctx == NULL || ctx->ratelimit == NULL || ctx->ratelimit->status == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = names[ctx->ratelimit->status].data;
    v->len = names[ctx->ratelimit->status].len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* $apipolicy_ratelimit_tier: the tier of the first limit that applied */

ngx_int_t
ngx_http_apipolicy_ratelimit_tier_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_apipolicy_get_ctx(r->main);

    if (ctx == NULL || ctx->ratelimit == NULL
        || ctx->ratelimit->nresults == 0)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->ratelimit->results[0].tier->name.data;
    v->len = ctx->ratelimit->results[0].tier->name.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* ---- configuration --------------------------------------------------- */

static ngx_str_t *
ngx_http_apipolicy_ratelimit_param(ngx_str_t *value, const char *name)
{
    size_t  n;

    n = ngx_strlen(name);

    if (value->len > n && ngx_strncmp(value->data, name, n) == 0) {
        value->data += n;
        value->len -= n;
        return value;
    }

    return NULL;
}


/* apipolicy_ratelimit_zone NAME:SIZE [sync=TIME|off] */

char *
ngx_http_apipolicy_ratelimit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ssize_t                               size;
    ngx_str_t                            *value, name, s;
    ngx_uint_t                            i;
    ngx_uint_t                            line;
    ngx_msec_t                            sync;
    ngx_shm_zone_t                       *shm_zone;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;
    ngx_http_apipolicy_main_conf_t       *amcf;

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (ngx_http_apipolicy_conf_zone(cf, &value[1],
                                     "apipolicy_ratelimit_zone api:10m",
                                     &name, &size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    sync = 200;
    line = 0;

    for (i = 2; i < cf->args->nelts; i++) {
        s = value[i];

        if (ngx_http_apipolicy_ratelimit_param(&s, "sync=")) {

            if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
                sync = 0;
                continue;
            }

            sync = ngx_parse_time(&s, 0);

            if (sync == (ngx_msec_t) NGX_ERROR || sync < 10) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": use \"off\" or a time of "
                                   "at least 10ms, as in \"sync=200ms\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            line = cf->conf_file->line;     /* said: warn without Redis */
            continue;
        }

        ngx_http_apipolicy_conf_bad_param(cf, &value[i], "sync=");
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_ratelimit_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->name = name;
    zone->index = amcf->ratelimit_zones ? amcf->ratelimit_zones->nelts : 0;
    zone->sync = sync;
    zone->line = line;
    zone->file = cf->conf_file->file.name;

    shm_zone = ngx_http_apipolicy_conf_shm_add(cf, &name, size,
                                     ngx_http_apipolicy_ratelimit_init_zone,
                                     zone);
    if (shm_zone == NULL
        || ngx_http_apipolicy_conf_list_add(cf, &amcf->ratelimit_zones, zone)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zone->shm_zone = shm_zone;
    amcf->used = 1;

    return NGX_CONF_OK;
}


/* apipolicy_ratelimit_tier NAME rate=N r/s|r/m|r/h|r/d [burst=N] */

char *
ngx_http_apipolicy_ratelimit_tier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                               *p;
    ngx_str_t                            *value, s;
    ngx_int_t                             n;
    ngx_uint_t                            i;
    ngx_http_apipolicy_ratelimit_tier_t  *t;
    ngx_http_apipolicy_main_conf_t       *amcf;

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'
              || *p == '.'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid tier name \"%V\": use letters, "
                               "digits, \"-\", \"_\" and \".\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    /* "tier:key" must fit a node's key with a hashed key (255 bytes) */

    if (value[1].len > NGX_HTTP_APIPOLICY_RATELIMIT_TIER_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the tier name \"%V\" is longer than %d bytes",
                           &value[1], NGX_HTTP_APIPOLICY_RATELIMIT_TIER_MAX);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers,
                                               &value[1]))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the tier \"%V\" is already defined", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (amcf->ratelimit_tiers == NULL) {
        amcf->ratelimit_tiers = ngx_array_create(cf->pool, 4,
                                  sizeof(ngx_http_apipolicy_ratelimit_tier_t));
        if (amcf->ratelimit_tiers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    t = ngx_array_push(amcf->ratelimit_tiers);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(t, sizeof(ngx_http_apipolicy_ratelimit_tier_t));
    t->name = value[1];
    t->index = amcf->ratelimit_tiers->nelts - 1;

    for (i = 2; i < cf->args->nelts; i++) {
        s = value[i];

        if (ngx_http_apipolicy_ratelimit_param(&s, "rate=")) {

            if (s.len < 4 || s.data[s.len - 3] != 'r'
                || s.data[s.len - 2] != '/')
            {
                goto bad_rate;
            }

            switch (s.data[s.len - 1]) {
            case 's': t->window = 1000; break;
            case 'm': t->window = 60000; break;
            case 'h': t->window = 3600000; break;
            case 'd': t->window = 86400000; break;
            default: goto bad_rate;
            }

            n = ngx_atoi(s.data, s.len - 3);

            if (n <= 0 || n > 100000000) {
                goto bad_rate;
            }

            t->rate = (ngx_uint_t) n;
            continue;
        }

        if (ngx_http_apipolicy_ratelimit_param(&s, "burst=")) {
            n = ngx_atoi(s.data, s.len);

            if (n == NGX_ERROR || n > 100000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid burst \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            t->burst = (ngx_uint_t) n;
            continue;
        }

        ngx_http_apipolicy_conf_bad_param(cf, &value[i], "rate= and burst=");
        return NGX_CONF_ERROR;
    }

    if (t->rate == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the tier \"%V\" has no rate: add "
                           "\"rate=Nr/s\" (or r/m, r/h, r/d), as in "
                           "\"rate=60r/m\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    t->quota = t->rate + t->burst;

    t->policy.data = ngx_pnalloc(cf->pool, t->name.len + 2 * NGX_INT_T_LEN
                                           + sizeof("\"\";q=;w="));
    if (t->policy.data == NULL) {
        return NGX_CONF_ERROR;
    }

    t->policy.len = ngx_sprintf(t->policy.data, "\"%V\";q=%ui;w=%M",
                                &t->name, t->quota, t->window / 1000)
                    - t->policy.data;

    amcf->used = 1;

    return NGX_CONF_OK;

bad_rate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid rate \"%V\": use \"rate=N r/s\", r/m, r/h "
                       "or r/d, as in \"rate=100r/m\"", &value[i]);
    return NGX_CONF_ERROR;
}


/* apipolicy_ratelimit zone=NAME key=$var [tier=$var] [cost=N] [dry_run] */

char *
ngx_http_apipolicy_ratelimit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_apipolicy_loc_conf_t  *alcf = conf;

    ngx_str_t                             *value, s;
    ngx_int_t                              n;
    ngx_uint_t                             i;
    ngx_http_apipolicy_ratelimit_zone_t  **zp;
    ngx_http_apipolicy_ratelimit_conf_t   *rlcf;
    ngx_http_apipolicy_ratelimit_limit_t  *limit;
    ngx_http_apipolicy_main_conf_t        *amcf;
    ngx_http_compile_complex_value_t       ccv;

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    rlcf = &alcf->ratelimit;

    if (rlcf->limits == NGX_CONF_UNSET_PTR) {
        rlcf->limits = ngx_array_create(cf->pool, 2,
                                 sizeof(ngx_http_apipolicy_ratelimit_limit_t));
        if (rlcf->limits == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (rlcf->limits->nelts == NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d apipolicy_ratelimit lines apply to "
                           "one location",
                           NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS);
        return NGX_CONF_ERROR;
    }

    limit = ngx_array_push(rlcf->limits);
    if (limit == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(limit, sizeof(ngx_http_apipolicy_ratelimit_limit_t));
    limit->cost = 1;

    for (i = 1; i < cf->args->nelts; i++) {
        s = value[i];

        if (ngx_http_apipolicy_ratelimit_param(&s, "zone=")) {
            zp = amcf->ratelimit_zones ? amcf->ratelimit_zones->elts : NULL;

            for (n = 0;
                 zp && n < (ngx_int_t) amcf->ratelimit_zones->nelts;
                 n++)
            {
                if (zp[n]->name.len == s.len
                    && ngx_strncmp(zp[n]->name.data, s.data, s.len) == 0)
                {
                    limit->zone = zp[n];
                    break;
                }
            }

            if (limit->zone == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown rate limit zone \"%V\": declare "
                                   "it with apipolicy_ratelimit_zone at http "
                                   "level, before this line", &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_http_apipolicy_ratelimit_param(&s, "key=")
            || ngx_http_apipolicy_ratelimit_param(&s, "tier="))
        {
            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;

            if (value[i].data[0] == 'k') {
                ccv.complex_value = &limit->key;

            } else {
                limit->tier = ngx_palloc(cf->pool,
                                         sizeof(ngx_http_complex_value_t));
                if (limit->tier == NULL) {
                    return NGX_CONF_ERROR;
                }

                ccv.complex_value = limit->tier;
            }

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_http_apipolicy_ratelimit_param(&s, "cost=")) {
            n = ngx_atoi(s.data, s.len);

            if (n <= 0 || n > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid cost \"%V\": a whole number from "
                                   "1 to 1000000", &value[i]);
                return NGX_CONF_ERROR;
            }

            limit->cost = (ngx_uint_t) n;
            continue;
        }

        if (value[i].len == 7 && ngx_strncmp(value[i].data, "dry_run", 7) == 0)
        {
            limit->dry_run = 1;
            continue;
        }

        ngx_http_apipolicy_conf_bad_param(cf, &value[i],
                                          "zone=, key=, tier=, cost= "
                                          "and dry_run");
        return NGX_CONF_ERROR;
    }

    if (limit->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"zone=\" is required, as in "
                           "\"apipolicy_ratelimit zone=api key=$jwt_claim_sub "
                           "tier=$plan;\"");
        return NGX_CONF_ERROR;
    }

    if (limit->key.value.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"key=\" is required: the variable a client is "
                           "counted by, as in \"key=$binary_remote_addr\"");
        return NGX_CONF_ERROR;
    }

    if (limit->key.lengths == NULL) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"key=%V\" has no variable: every client is "
                           "counted in one bucket; a variable starts with "
                           "\"$\", as in \"key=$binary_remote_addr\"",
                           &limit->key.value);
    }

    if (ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers,
                                         &ngx_http_apipolicy_ratelimit_default)
        == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no tier \"default\" is defined: it is used "
                           "when a request names no tier or an unknown one; "
                           "add \"apipolicy_ratelimit_tier default rate=...\" "
                           "at http level, before this line");
        return NGX_CONF_ERROR;
    }

    /* a tier named literally must exist: a typo would mean "default" */

    if (limit->tier && limit->tier->lengths == NULL
        && limit->tier->value.len
        && ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers,
                                                  &limit->tier->value)
           == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown tier \"%V\": declare it with "
                           "\"apipolicy_ratelimit_tier %V rate=...\" at http "
                           "level, before this line, or pick the tier with "
                           "a variable", &limit->tier->value,
                           &limit->tier->value);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void
ngx_http_apipolicy_ratelimit_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_ratelimit_conf_t *conf)
{
    conf->limits = NGX_CONF_UNSET_PTR;
    conf->status = NGX_CONF_UNSET_UINT;
    conf->headers = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_apipolicy_ratelimit_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_ratelimit_conf_t *prev,
    ngx_http_apipolicy_ratelimit_conf_t *conf)
{
    ngx_conf_merge_ptr_value(conf->limits, prev->limits, NULL);
    ngx_conf_merge_uint_value(conf->status, prev->status,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_uint_value(conf->headers, prev->headers,
                              NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_IETF);

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_apipolicy_ratelimit_phases(ngx_http_apipolicy_ratelimit_conf_t *conf)
{
    return conf->limits ? NGX_HTTP_APIPOLICY_PRECONTENT : 0;
}


/* a zone's sync= without apipolicy_redis: said, and off */

ngx_int_t
ngx_http_apipolicy_ratelimit_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                             i;
    ngx_http_apipolicy_ratelimit_zone_t  **zp;
    ngx_http_apipolicy_main_conf_t        *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (amcf->redis || amcf->ratelimit_zones == NULL) {
        return NGX_OK;
    }

    zp = amcf->ratelimit_zones->elts;

    for (i = 0; i < amcf->ratelimit_zones->nelts; i++) {

        if (zp[i]->sync && zp[i]->line) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "\"sync=\" of apipolicy_ratelimit_zone \"%V\" in "
                          "%V:%ui has no effect: there is no apipolicy_redis "
                          "to share the counts through, so this gateway "
                          "counts alone", &zp[i]->name, &zp[i]->file,
                          zp[i]->line);
        }

        zp[i]->sync = 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_ratelimit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_int_t                             rc;
    ngx_http_apipolicy_ratelimit_sh_t    *sh;
    ngx_http_apipolicy_ratelimit_zone_t  *zone;

    zone = shm_zone->data;

    rc = ngx_http_apipolicy_shm_root(shm_zone, data,
                                     "apipolicy_ratelimit_zone",
                                     NGX_HTTP_APIPOLICY_RATELIMIT_MAGIC,
                                     sizeof(ngx_http_apipolicy_ratelimit_sh_t),
                                     (void **) &sh);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    zone->sh = sh;
    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (rc == NGX_DECLINED) {
        ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                        ngx_http_apipolicy_ratelimit_rbtree_insert_value);
        ngx_queue_init(&sh->queue);
        ngx_queue_init(&sh->dirty);
    }

    return NGX_OK;
}


/* for the metrics: a zone's name, the request's outcome */

ngx_str_t *
ngx_http_apipolicy_ratelimit_zone_name(ngx_http_apipolicy_main_conf_t *amcf,
    ngx_uint_t i)
{
    ngx_http_apipolicy_ratelimit_zone_t  **zp;

    zp = amcf->ratelimit_zones->elts;

    return &zp[i]->name;
}


ngx_uint_t
ngx_http_apipolicy_ratelimit_applied(ngx_http_apipolicy_ctx_t *ctx)
{
    return ctx->ratelimit ? ctx->ratelimit->nresults : 0;
}


ngx_uint_t
ngx_http_apipolicy_ratelimit_outcome(ngx_http_apipolicy_ctx_t *ctx,
    ngx_uint_t i, ngx_uint_t *zone, ngx_uint_t *tier)
{
    ngx_http_apipolicy_ratelimit_result_t  *res;

    res = &ctx->ratelimit->results[i];

    *zone = res->zone->index;
    *tier = res->tier->index;

    return res->status;
}
