
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

/* the counts a decision saw, for the headers */
typedef struct {
    double                                 w;         /* the window, ms */
    double                                 elapsed;   /* of it, ms */
    uint64_t                               index;     /* the window's */
    double                                 prev;      /* all gateways' */
    double                                 cur;       /* ..., after it */
    double                                 oprev;     /* this gateway's */
    double                                 ocur;
    double                                 cap;       /* this gateway's
                                                         part of the quota */
    ngx_uint_t                             shared;
} ngx_http_apipolicy_ratelimit_counts_t;


static ngx_int_t ngx_http_apipolicy_ratelimit_key(ngx_http_request_t *r,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit,
    ngx_http_apipolicy_ratelimit_taken_t *t);
static ngx_int_t ngx_http_apipolicy_ratelimit_value(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_int_t var, ngx_str_t *value);
static ngx_http_apipolicy_ratelimit_tier_t *
    ngx_http_apipolicy_ratelimit_pick_tier(ngx_http_request_t *r,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit);
static ngx_int_t ngx_http_apipolicy_ratelimit_refuse(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_http_apipolicy_ratelimit_taken_t *taken, ngx_uint_t retry);
static ngx_int_t ngx_http_apipolicy_ratelimit_account(ngx_http_request_t *r,
    ngx_http_apipolicy_ratelimit_taken_t *t, uint64_t now,
    ngx_http_apipolicy_ratelimit_result_t *res, ngx_uint_t *retry);
static ngx_int_t ngx_http_apipolicy_ratelimit_count(
    ngx_http_apipolicy_ratelimit_zone_t *zone,
    ngx_http_apipolicy_ratelimit_taken_t *t, uint64_t now,
    ngx_http_apipolicy_ratelimit_counts_t *c);
static void ngx_http_apipolicy_ratelimit_left(
    ngx_http_apipolicy_ratelimit_taken_t *t,
    ngx_http_apipolicy_ratelimit_counts_t *c, ngx_int_t rc,
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
static ngx_int_t ngx_http_apipolicy_ratelimit_ietf(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_ratelimit_pks(
    ngx_http_apipolicy_ratelimit_ctx_t *rctx, ngx_str_t *pk,
    u_char (*pkbuf)[NGX_HTTP_APIPOLICY_RATELIMIT_PK_LEN]);
static ngx_int_t ngx_http_apipolicy_ratelimit_pk(
    ngx_http_apipolicy_ratelimit_result_t *res, ngx_str_t *pk, u_char *buf);
static ngx_int_t ngx_http_apipolicy_ratelimit_policy(ngx_http_request_t *r,
    ngx_http_apipolicy_ratelimit_ctx_t *rctx, ngx_str_t *pk,
    ngx_str_t *value);
static ngx_int_t ngx_http_apipolicy_ratelimit_legacy(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_ratelimit_number(ngx_http_request_t *r,
    ngx_str_t *name, ngx_uint_t n);
static u_char *ngx_http_apipolicy_ratelimit_uint(u_char *p, ngx_uint_t n);
static ngx_http_apipolicy_ratelimit_tier_t *
    ngx_http_apipolicy_ratelimit_tier_add(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf, ngx_str_t *name);
static ngx_int_t ngx_http_apipolicy_ratelimit_rate(
    ngx_http_apipolicy_ratelimit_tier_t *t, ngx_str_t *s);
static ngx_int_t ngx_http_apipolicy_ratelimit_tier_items(ngx_conf_t *cf,
    ngx_http_apipolicy_ratelimit_tier_t *t);
static ngx_int_t ngx_http_apipolicy_ratelimit_limit_param(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit, ngx_str_t *value);
static ngx_http_apipolicy_ratelimit_zone_t *
    ngx_http_apipolicy_ratelimit_find_zone(
    ngx_http_apipolicy_main_conf_t *amcf, ngx_str_t *name);
static ngx_int_t ngx_http_apipolicy_ratelimit_limit_check(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit);
static ngx_int_t ngx_http_apipolicy_ratelimit_var(ngx_conf_t *cf,
    ngx_http_complex_value_t *cv);


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
    uint64_t                               now;
    ngx_int_t                              rc;
    ngx_uint_t                             i, n, retry, dry;
    ngx_http_apipolicy_ratelimit_ctx_t    *rctx;
    ngx_http_apipolicy_ratelimit_limit_t  *limit;
    ngx_http_apipolicy_ratelimit_taken_t  *t;
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

    /* every field is set below, the results up to nresults */

    n = alcf->ratelimit.limits->nelts;

    rctx = ngx_palloc(r->pool, sizeof(ngx_http_apipolicy_ratelimit_ctx_t)
                          + n * sizeof(ngx_http_apipolicy_ratelimit_result_t));
    if (rctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rctx->results = (ngx_http_apipolicy_ratelimit_result_t *) &rctx[1];
    ctx->ratelimit = rctx;
    rctx->headers = alcf->ratelimit.headers;
    rctx->retry_after = 0;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);
    now = ngx_http_apipolicy_ratelimit_now();

    limit = alcf->ratelimit.limits->elts;
    n = 0;
    dry = 0;
    retry = 0;

    for (i = 0; i < alcf->ratelimit.limits->nelts; i++) {
        t = &taken[n];

        rc = ngx_http_apipolicy_ratelimit_key(r, amcf, &limit[i], t);

        if (rc == NGX_DECLINED) {
            continue;                   /* as limit_req: no key, no limit */
        }

        if (rc == NGX_OK) {
            rc = ngx_http_apipolicy_ratelimit_account(r, t, now,
                                                      &rctx->results[n],
                                                      &retry);
        }

        if (rc == NGX_ERROR) {
            rctx->nresults = 0;
            rctx->status = 0;
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

            if (!limit[i].dry_run) {
                rctx->nresults = n;
                return ngx_http_apipolicy_ratelimit_refuse(r, alcf, ctx,
                                                           taken, retry);
            }

            dry = 1;
        }
    }

    rctx->nresults = n;
    rctx->status = dry ? NGX_HTTP_APIPOLICY_RATELIMIT_DRY_RUN
                       : NGX_HTTP_APIPOLICY_RATELIMIT_PASSED;

    if (dry) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "apipolicy: over the rate limit (dry run)");
    }

    return NGX_DECLINED;
}


/*
 * A limit's key: "tier:key" for its node, keys too long for a node
 * hashed.  NGX_DECLINED: the key is empty (the limit does not apply).
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_key(ngx_http_request_t *r,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit,
    ngx_http_apipolicy_ratelimit_taken_t *t)
{
    u_char                               *p;
    ngx_str_t                             value;
    ngx_uint_t                            hashed;
    ngx_http_apipolicy_ratelimit_tier_t  *tier;

    if (ngx_http_apipolicy_ratelimit_value(r, &limit->key, limit->key_var,
                                           &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (value.len == 0) {
        return NGX_DECLINED;
    }

    tier = ngx_http_apipolicy_ratelimit_pick_tier(r, amcf, limit);
    if (tier == NULL) {
        return NGX_ERROR;
    }

    hashed = (value.len > NGX_HTTP_APIPOLICY_RATELIMIT_KEY_MAX
                          - tier->name.len - 1);

    t->key.len = tier->name.len + 1 + (hashed ? 32 : value.len);
    t->key.data = ngx_pnalloc(r->pool, t->key.len);
    if (t->key.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(t->key.data, tier->name.data, tier->name.len);
    *p++ = ':';

    if (hashed) {
        if (ngx_http_apipolicy_sha256(value.data, value.len, p) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        ngx_memcpy(p, value.data, value.len);
    }

    t->limit = limit;
    t->tier = tier;
    t->hash = ngx_crc32_short(t->key.data, t->key.len);
    t->counted = 0;

    return NGX_OK;
}


/*
 * The value of a key= or tier=: a lone variable read directly (as the
 * complex value would, flushed), anything else through the complex value.
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_value(ngx_http_request_t *r,
    ngx_http_complex_value_t *cv, ngx_int_t var, ngx_str_t *value)
{
    ngx_http_variable_value_t  *vv;

    if (var == NGX_ERROR) {
        return ngx_http_complex_value(r, cv, value);
    }

    vv = ngx_http_get_flushed_variable(r, var);

    if (vv == NULL || vv->not_found) {
        ngx_str_null(value);
        return NGX_OK;
    }

    value->data = vv->data;
    value->len = vv->len;

    return NGX_OK;
}


/* the tier of tier= (one named literally was found at configuration) */

static ngx_http_apipolicy_ratelimit_tier_t *
ngx_http_apipolicy_ratelimit_pick_tier(ngx_http_request_t *r,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit)
{
    ngx_str_t                             name;
    ngx_http_apipolicy_ratelimit_tier_t  *tiers, *t;

    tiers = amcf->ratelimit_tiers->elts;

    if (limit->tier_index != NGX_ERROR) {
        return &tiers[limit->tier_index];
    }

    if (ngx_http_apipolicy_ratelimit_value(r, limit->tier, limit->tier_var,
                                           &name)
        != NGX_OK)
    {
        return NULL;
    }

    t = ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers, &name);

    /* an empty or unknown name: "default" (checked at configuration) */

    return t ? t : &tiers[limit->default_index];
}


/*
 * Refused: the limits that passed give their count back, and the
 * request gets the configured status with the last limit's tier named.
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_refuse(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_http_apipolicy_ratelimit_taken_t *taken, ngx_uint_t retry)
{
    ngx_str_t                             detail;
    ngx_uint_t                            i;
    ngx_http_apipolicy_ratelimit_ctx_t   *rctx;
    ngx_http_apipolicy_ratelimit_tier_t  *t;

    rctx = ctx->ratelimit;

    for (i = 0; i < rctx->nresults; i++) {
        ngx_http_apipolicy_ratelimit_give_back(&taken[i]);
    }

    rctx->status = NGX_HTTP_APIPOLICY_RATELIMIT_REJECTED;
    rctx->retry_after = retry ? retry : 1;

    t = taken[rctx->nresults - 1].tier;

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
    ngx_int_t                              rc;
    ngx_http_apipolicy_ratelimit_zone_t   *zone;
    ngx_http_apipolicy_ratelimit_counts_t  c;

    zone = t->limit->zone;

    c.w = (double) t->tier->window;
    c.index = now / t->tier->window;
    c.elapsed = (double) (now - c.index * t->tier->window);

    ngx_shmtx_lock(&zone->shpool->mutex);
    rc = ngx_http_apipolicy_ratelimit_count(zone, t, now, &c);
    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "apipolicy: could not allocate a node in rate limit "
                      "zone \"%V\"", &zone->name);
        return NGX_ERROR;
    }

    res->tier = t->tier;
    res->key = t->key;

    ngx_http_apipolicy_ratelimit_left(t, &c, rc, res, retry);

    return rc;
}


/*
 * Zone locked: the node of the limit's key in the current window, the
 * decision, and the counts after it (in "c", for the headers).
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_count(ngx_http_apipolicy_ratelimit_zone_t *zone,
    ngx_http_apipolicy_ratelimit_taken_t *t, uint64_t now,
    ngx_http_apipolicy_ratelimit_counts_t *c)
{
    double                                estimate, own, quota, cost;
    ngx_int_t                             rc;
    ngx_http_apipolicy_ratelimit_node_t  *rn;

    ngx_http_apipolicy_ratelimit_expire(zone, now, 0);

    rn = ngx_http_apipolicy_ratelimit_lookup(zone, &t->key, t->hash, 1);
    if (rn == NULL) {
        return NGX_ERROR;
    }

    rn->window = (uint32_t) t->tier->window;
    rn->quota = (uint32_t) ngx_min(t->tier->quota, NGX_MAX_UINT32_VALUE);
    ngx_http_apipolicy_ratelimit_roll(rn, c->index);

    if (rn->born == 0) {
        rn->born = now;
    }

    quota = (double) t->tier->quota;
    cost = (double) t->limit->cost;

    c->prev = (double) rn->prev + rn->rprev;
    estimate = ngx_http_apipolicy_ratelimit_slide(c->prev,
                                           (double) rn->cur + rn->rcur,
                                           c->w - c->elapsed, c->w);
    own = ngx_http_apipolicy_ratelimit_slide(rn->prev, rn->cur,
                                             c->w - c->elapsed, c->w);

    c->cap = quota;
    c->shared = 0;

    if (zone->sync && ngx_http_apipolicy_ratelimit_shares_live(zone, now)) {
        c->shared = 1;
        c->cap = rn->share
                 ? quota * rn->share / NGX_HTTP_APIPOLICY_RATELIMIT_SHARE_ONE
                 : quota / (double) ngx_max(zone->sh->gateways, 1);
    }

    /* the demand counts whatever the answer: it sizes the shares */

    rn->seen += (uint32_t) t->limit->cost;

    if (zone->sync) {
        ngx_http_apipolicy_ratelimit_mark(zone, rn);
    }

    rc = NGX_DECLINED;

    if (estimate + cost <= quota && own + cost <= c->cap) {
        rn->cur += (uint32_t) t->limit->cost;
        t->counted = 1;
        t->index = c->index;
        rc = NGX_OK;

    } else if (t->limit->dry_run) {
        /* not limited, but counted as served */
        rn->cur += (uint32_t) t->limit->cost;
    }

    /* the counts after this request, for the headers */

    c->oprev = (double) rn->prev;
    c->ocur = (double) rn->cur;
    c->cur = c->ocur + rn->rcur;

    return rc;
}


/*
 * What is left of the quota after a decision, and when it resets; for a
 * refused limit, the seconds until a request of this cost would pass.
 */

static void
ngx_http_apipolicy_ratelimit_left(ngx_http_apipolicy_ratelimit_taken_t *t,
    ngx_http_apipolicy_ratelimit_counts_t *c, ngx_int_t rc,
    ngx_http_apipolicy_ratelimit_result_t *res, ngx_uint_t *retry)
{
    double      estimate, own, left, quota, cost;
    ngx_uint_t  s, wait;

    quota = (double) t->tier->quota;
    cost = (double) t->limit->cost;

    estimate = ngx_http_apipolicy_ratelimit_slide(c->prev, c->cur,
                                                  c->w - c->elapsed, c->w);
    own = ngx_http_apipolicy_ratelimit_slide(c->oprev, c->ocur,
                                             c->w - c->elapsed, c->w);
    left = ngx_min(quota - estimate, floor(c->cap - own));

    res->remaining = (left > 0) ? (ngx_uint_t) left : 0;

    if (rc == NGX_OK && res->remaining >= t->limit->cost) {
        /* the seconds until the current window's count starts to decay */
        res->reset = (ngx_uint_t) ((c->w - c->elapsed + 999) / 1000);
        return;
    }

    /*
     * The next request of this cost would be refused: when would it
     * pass, with the counts known now.  RateLimit t= says the same as
     * Retry-After.
     */

    wait = ngx_http_apipolicy_ratelimit_wait(c->prev, c->cur, quota, cost,
                                             c->w, c->elapsed);

    if (c->shared) {
        wait = ngx_max(wait, ngx_http_apipolicy_ratelimit_wait(c->oprev,
                                                               c->ocur,
                                                               c->cap, cost,
                                                               c->w,
                                                               c->elapsed));
    }

    s = (wait + 999) / 1000;
    res->reset = s;

    if (rc == NGX_DECLINED) {
        s = ngx_max(s, 1);

        if (s > *retry) {
            *retry = s;
        }
    }
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
    ngx_http_apipolicy_ratelimit_ctx_t  *rctx;

    rctx = ctx->ratelimit;

    if (rctx == NULL || rctx->nresults == 0) {
        return NGX_OK;
    }

    if ((rctx->headers & NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_IETF)
        && ngx_http_apipolicy_ratelimit_ietf(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((rctx->headers & NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_LEGACY)
        && ngx_http_apipolicy_ratelimit_legacy(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rctx->status == NGX_HTTP_APIPOLICY_RATELIMIT_REJECTED
        && r->headers_out.status == (ngx_uint_t) ctx->problem_status
        && ctx->problem == &ngx_http_apipolicy_ratelimit_problem)
    {
        if (ngx_http_apipolicy_ratelimit_number(r,
                                      &ngx_http_apipolicy_ratelimit_retry_name,
                                      rctx->retry_after)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ctx->added |= NGX_HTTP_APIPOLICY_HDR_RETRY_AFTER;
    }

    return NGX_OK;
}


/*
 * RateLimit-Policy: "tier";q=100;w=60, ... and RateLimit: "tier";r=42;
 * t=17, ...; the items' beginnings are made at configuration.
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_ietf(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    u_char                                 *p;
    size_t                                  len;
    ngx_str_t                               value;
    ngx_uint_t                              i;
    ngx_http_apipolicy_ratelimit_ctx_t     *rctx;
    ngx_http_apipolicy_ratelimit_result_t  *res;
    ngx_str_t                  pk[NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS];
    u_char                     pkbuf[NGX_HTTP_APIPOLICY_RATELIMIT_MAX_LIMITS]
                                    [NGX_HTTP_APIPOLICY_RATELIMIT_PK_LEN];

    rctx = ctx->ratelimit;
    res = rctx->results;

    if (ngx_http_apipolicy_ratelimit_pks(rctx, pk, pkbuf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_ratelimit_policy(r, rctx, pk, &value) != NGX_OK
        || ngx_http_apipolicy_add_header(r,
                                   &ngx_http_apipolicy_ratelimit_policy_name,
                                   &value)
           == NULL)
    {
        return NGX_ERROR;
    }

    len = 0;

    for (i = 0; i < rctx->nresults; i++) {
        len += res[i].tier->item.len + pk[i].len
               + sizeof(";t=, ") - 1 + 2 * NGX_INT_T_LEN;
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

        p = ngx_cpymem(p, res[i].tier->item.data, res[i].tier->item.len);
        p = ngx_http_apipolicy_ratelimit_uint(p, res[i].remaining);
        *p++ = ';'; *p++ = 't'; *p++ = '=';
        p = ngx_http_apipolicy_ratelimit_uint(p, res[i].reset);
        p = ngx_cpymem(p, pk[i].data, pk[i].len);
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

    return NGX_OK;
}


/*
 * Two limits of one tier: each item gets the partition key parameter,
 * pk=, a digest of its zone and key, to tell them apart.
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_pks(ngx_http_apipolicy_ratelimit_ctx_t *rctx,
    ngx_str_t *pk, u_char (*pkbuf)[NGX_HTTP_APIPOLICY_RATELIMIT_PK_LEN])
{
    ngx_uint_t                              i, j;
    ngx_http_apipolicy_ratelimit_result_t  *res;

    res = rctx->results;

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

    return NGX_OK;
}


/* RateLimit-Policy: one limit's is its tier's, made at configuration */

static ngx_int_t
ngx_http_apipolicy_ratelimit_policy(ngx_http_request_t *r,
    ngx_http_apipolicy_ratelimit_ctx_t *rctx, ngx_str_t *pk,
    ngx_str_t *value)
{
    u_char                                 *p;
    size_t                                  len;
    ngx_uint_t                              i;
    ngx_http_apipolicy_ratelimit_result_t  *res;

    res = rctx->results;

    if (rctx->nresults == 1 && pk[0].len == 0) {
        *value = res[0].tier->policy;
        return NGX_OK;
    }

    len = 0;

    for (i = 0; i < rctx->nresults; i++) {
        len += res[i].tier->policy.len + 2 + pk[i].len;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value->data = p;

    for (i = 0; i < rctx->nresults; i++) {
        if (i) {
            *p++ = ','; *p++ = ' ';
        }

        p = ngx_cpymem(p, res[i].tier->policy.data, res[i].tier->policy.len);
        p = ngx_cpymem(p, pk[i].data, pk[i].len);
    }

    value->len = p - value->data;

    return NGX_OK;
}


/* X-RateLimit-Limit, -Remaining, -Reset: of the most restrictive limit */

static ngx_int_t
ngx_http_apipolicy_ratelimit_legacy(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_uint_t                              i, min;
    ngx_http_apipolicy_ratelimit_ctx_t     *rctx;
    ngx_http_apipolicy_ratelimit_result_t  *res;

    rctx = ctx->ratelimit;
    res = rctx->results;
    min = 0;

    for (i = 1; i < rctx->nresults; i++) {
        if (res[i].remaining < res[min].remaining) {
            min = i;
        }
    }

    if (ngx_http_apipolicy_ratelimit_number(r,
                                         &ngx_http_apipolicy_ratelimit_x_limit,
                                         res[min].tier->quota)
        != NGX_OK
        || ngx_http_apipolicy_ratelimit_number(r,
                                     &ngx_http_apipolicy_ratelimit_x_remaining,
                                     res[min].remaining)
           != NGX_OK
        || ngx_http_apipolicy_ratelimit_number(r,
                                         &ngx_http_apipolicy_ratelimit_x_reset,
                                         res[min].reset)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->added |= NGX_HTTP_APIPOLICY_HDR_X_RATELIMIT;

    return NGX_OK;
}


/* a response header whose value is a whole number */

static ngx_int_t
ngx_http_apipolicy_ratelimit_number(ngx_http_request_t *r, ngx_str_t *name,
    ngx_uint_t n)
{
    u_char     *p;
    ngx_str_t   value;

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value.data = p;
    value.len = ngx_http_apipolicy_ratelimit_uint(p, n) - p;

    if (ngx_http_apipolicy_add_header(r, name, &value) == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "%ui" without ngx_sprintf()'s format parsing, for every response: the
 * digits counted, then written in place from the last, two a division
 */

static u_char *
ngx_http_apipolicy_ratelimit_uint(u_char *p, ngx_uint_t n)
{
    u_char      *q, *last;
    ngx_uint_t   d, len, m;

    static u_char  pairs[] =
        "0001020304050607080910111213141516171819"
        "2021222324252627282930313233343536373839"
        "4041424344454647484950515253545556575859"
        "6061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";

    for (len = 1, m = n; m >= 100; m /= 100) {
        len += 2;
    }

    if (m >= 10) {
        len++;
    }

    last = p + len;
    q = last;

    while (n >= 100) {
        d = (n % 100) * 2;
        n /= 100;
        *--q = pairs[d + 1];
        *--q = pairs[d];
    }

    if (n >= 10) {
        *--q = pairs[n * 2 + 1];
        *--q = pairs[n * 2];

    } else {
        *--q = (u_char) ('0' + n);
    }

    return last;
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
    ngx_str_t                            *value, s;
    ngx_int_t                             n;
    ngx_uint_t                            i;
    ngx_http_apipolicy_ratelimit_tier_t  *t;
    ngx_http_apipolicy_main_conf_t       *amcf;

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    t = ngx_http_apipolicy_ratelimit_tier_add(cf, amcf, &value[1]);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        s = value[i];

        if (ngx_http_apipolicy_ratelimit_param(&s, "rate=")) {
            if (ngx_http_apipolicy_ratelimit_rate(t, &s) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid rate \"%V\": use \"rate=N r/s\", "
                                   "r/m, r/h or r/d, as in \"rate=100r/m\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

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

    if (ngx_http_apipolicy_ratelimit_tier_items(cf, t) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    amcf->used = 1;

    return NGX_CONF_OK;
}


/* a new tier "name", checked (said when bad) */

static ngx_http_apipolicy_ratelimit_tier_t *
ngx_http_apipolicy_ratelimit_tier_add(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf, ngx_str_t *name)
{
    u_char                               *p;
    ngx_http_apipolicy_ratelimit_tier_t  *t;

    for (p = name->data; p < name->data + name->len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'
              || *p == '.'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid tier name \"%V\": use letters, "
                               "digits, \"-\", \"_\" and \".\"", name);
            return NULL;
        }
    }

    /* "tier:key" must fit a node's key with a hashed key (255 bytes) */

    if (name->len > NGX_HTTP_APIPOLICY_RATELIMIT_TIER_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the tier name \"%V\" is longer than %d bytes",
                           name, NGX_HTTP_APIPOLICY_RATELIMIT_TIER_MAX);
        return NULL;
    }

    if (ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers, name))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the tier \"%V\" is already defined", name);
        return NULL;
    }

    if (amcf->ratelimit_tiers == NULL) {
        amcf->ratelimit_tiers = ngx_array_create(cf->pool, 4,
                                  sizeof(ngx_http_apipolicy_ratelimit_tier_t));
        if (amcf->ratelimit_tiers == NULL) {
            return NULL;
        }
    }

    t = ngx_array_push(amcf->ratelimit_tiers);
    if (t == NULL) {
        return NULL;
    }

    ngx_memzero(t, sizeof(ngx_http_apipolicy_ratelimit_tier_t));
    t->name = *name;
    t->index = amcf->ratelimit_tiers->nelts - 1;

    return t;
}


/* "N r/s" (r/m, r/h, r/d) of rate= */

static ngx_int_t
ngx_http_apipolicy_ratelimit_rate(ngx_http_apipolicy_ratelimit_tier_t *t,
    ngx_str_t *s)
{
    ngx_int_t  n;

    if (s->len < 4 || s->data[s->len - 3] != 'r' || s->data[s->len - 2] != '/')
    {
        return NGX_ERROR;
    }

    switch (s->data[s->len - 1]) {
    case 's': t->window = 1000; break;
    case 'm': t->window = 60000; break;
    case 'h': t->window = 3600000; break;
    case 'd': t->window = 86400000; break;
    default: return NGX_ERROR;
    }

    n = ngx_atoi(s->data, s->len - 3);

    if (n <= 0 || n > 100000000) {
        return NGX_ERROR;
    }

    t->rate = (ngx_uint_t) n;

    return NGX_OK;
}


/*
 * What the response headers say of a tier, made once: its quota, its
 * RateLimit-Policy item ("name";q=..;w=..) and the beginning of its
 * RateLimit item ("name";r=)
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_tier_items(ngx_conf_t *cf,
    ngx_http_apipolicy_ratelimit_tier_t *t)
{
    t->quota = t->rate + t->burst;

    t->policy.data = ngx_pnalloc(cf->pool, t->name.len + 2 * NGX_INT_T_LEN
                                           + sizeof("\"\";q=;w="));
    if (t->policy.data == NULL) {
        return NGX_ERROR;
    }

    t->policy.len = ngx_sprintf(t->policy.data, "\"%V\";q=%ui;w=%M",
                                &t->name, t->quota, t->window / 1000)
                    - t->policy.data;

    t->item.data = ngx_pnalloc(cf->pool, t->name.len + sizeof("\"\";r="));
    if (t->item.data == NULL) {
        return NGX_ERROR;
    }

    t->item.len = ngx_sprintf(t->item.data, "\"%V\";r=", &t->name)
                  - t->item.data;

    return NGX_OK;
}


/* apipolicy_ratelimit zone=NAME key=$var [tier=$var] [cost=N] [dry_run] */

char *
ngx_http_apipolicy_ratelimit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_apipolicy_loc_conf_t  *alcf = conf;

    ngx_str_t                             *value;
    ngx_uint_t                             i;
    ngx_http_apipolicy_ratelimit_conf_t   *rlcf;
    ngx_http_apipolicy_ratelimit_limit_t  *limit;
    ngx_http_apipolicy_main_conf_t        *amcf;

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
        if (ngx_http_apipolicy_ratelimit_limit_param(cf, amcf, limit,
                                                     &value[i])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_apipolicy_ratelimit_limit_check(cf, amcf, limit) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* one parameter of apipolicy_ratelimit (said when bad) */

static ngx_int_t
ngx_http_apipolicy_ratelimit_limit_param(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit, ngx_str_t *value)
{
    ngx_str_t                          s;
    ngx_int_t                          n;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    s = *value;

    if (ngx_http_apipolicy_ratelimit_param(&s, "zone=")) {
        limit->zone = ngx_http_apipolicy_ratelimit_find_zone(amcf, &s);

        if (limit->zone == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown rate limit zone \"%V\": declare "
                               "it with apipolicy_ratelimit_zone at http "
                               "level, before this line", &s);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_apipolicy_ratelimit_param(&s, "key=")
        || ngx_http_apipolicy_ratelimit_param(&s, "tier="))
    {
        if (value->data[0] == 'k') {
            cv = &limit->key;

        } else {
            cv = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
            if (cv == NULL) {
                return NGX_ERROR;
            }

            limit->tier = cv;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = cv;

        return ngx_http_compile_complex_value(&ccv);
    }

    if (ngx_http_apipolicy_ratelimit_param(&s, "cost=")) {
        n = ngx_atoi(s.data, s.len);

        if (n <= 0 || n > 1000000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid cost \"%V\": a whole number from "
                               "1 to 1000000", value);
            return NGX_ERROR;
        }

        limit->cost = (ngx_uint_t) n;
        return NGX_OK;
    }

    if (value->len == 7 && ngx_strncmp(value->data, "dry_run", 7) == 0) {
        limit->dry_run = 1;
        return NGX_OK;
    }

    ngx_http_apipolicy_conf_bad_param(cf, value,
                                      "zone=, key=, tier=, cost= "
                                      "and dry_run");
    return NGX_ERROR;
}


static ngx_http_apipolicy_ratelimit_zone_t *
ngx_http_apipolicy_ratelimit_find_zone(ngx_http_apipolicy_main_conf_t *amcf,
    ngx_str_t *name)
{
    ngx_uint_t                             i;
    ngx_http_apipolicy_ratelimit_zone_t  **zp;

    if (amcf->ratelimit_zones == NULL) {
        return NULL;
    }

    zp = amcf->ratelimit_zones->elts;

    for (i = 0; i < amcf->ratelimit_zones->nelts; i++) {
        if (zp[i]->name.len == name->len
            && ngx_strncmp(zp[i]->name.data, name->data, name->len) == 0)
        {
            return zp[i];
        }
    }

    return NULL;
}


/*
 * A limit as a whole: what is required, and the tiers it names; then
 * what requests need not work out again (the tier when it is fixed, the
 * variables read directly).
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_limit_check(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf,
    ngx_http_apipolicy_ratelimit_limit_t *limit)
{
    ngx_http_apipolicy_ratelimit_tier_t  *deflt, *t;

    if (limit->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"zone=\" is required, as in "
                           "\"apipolicy_ratelimit zone=api key=$jwt_claim_sub "
                           "tier=$plan;\"");
        return NGX_ERROR;
    }

    if (limit->key.value.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"key=\" is required: the variable a client is "
                           "counted by, as in \"key=$binary_remote_addr\"");
        return NGX_ERROR;
    }

    if (limit->key.lengths == NULL) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"key=%V\" has no variable: every client is "
                           "counted in one bucket; a variable starts with "
                           "\"$\", as in \"key=$binary_remote_addr\"",
                           &limit->key.value);
    }

    deflt = ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers,
                                         &ngx_http_apipolicy_ratelimit_default);
    if (deflt == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no tier \"default\" is defined: it is used "
                           "when a request names no tier or an unknown one; "
                           "add \"apipolicy_ratelimit_tier default rate=...\" "
                           "at http level, before this line");
        return NGX_ERROR;
    }

    limit->default_index = deflt->index;
    limit->tier_index = deflt->index;
    limit->key_var = ngx_http_apipolicy_ratelimit_var(cf, &limit->key);
    limit->tier_var = NGX_ERROR;

    if (limit->tier == NULL) {
        return NGX_OK;
    }

    if (limit->tier->lengths) {
        limit->tier_index = NGX_ERROR;
        limit->tier_var = ngx_http_apipolicy_ratelimit_var(cf, limit->tier);
        return NGX_OK;
    }

    /* a tier named literally must exist: a typo would mean "default" */

    t = ngx_http_apipolicy_ratelimit_find_tier(amcf->ratelimit_tiers,
                                               &limit->tier->value);
    if (t == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown tier \"%V\": declare it with "
                           "\"apipolicy_ratelimit_tier %V rate=...\" at http "
                           "level, before this line, or pick the tier with "
                           "a variable", &limit->tier->value,
                           &limit->tier->value);
        return NGX_ERROR;
    }

    limit->tier_index = t->index;

    return NGX_OK;
}


/*
 * The index of a key= or tier= that is one variable alone ("$name",
 * "${name}"), read directly at request time; NGX_ERROR otherwise (the
 * complex value does the work: text, several variables, a capture)
 */

static ngx_int_t
ngx_http_apipolicy_ratelimit_var(ngx_conf_t *cf,
    ngx_http_complex_value_t *cv)
{
    u_char      ch;
    ngx_str_t   name;
    ngx_uint_t  i;

    if (cv->lengths == NULL || cv->value.len < 2 || cv->value.data[0] != '$')
    {
        return NGX_ERROR;
    }

    name.data = cv->value.data + 1;
    name.len = cv->value.len - 1;

    if (name.data[0] == '{') {
        if (name.len < 3 || name.data[name.len - 1] != '}') {
            return NGX_ERROR;
        }

        name.data++;
        name.len -= 2;
    }

    if (name.data[0] >= '0' && name.data[0] <= '9') {
        return NGX_ERROR;               /* $1: a regex capture */
    }

    for (i = 0; i < name.len; i++) {
        ch = name.data[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_'))
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_get_variable_index(cf, &name);
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


/*
 * the headers (NGX_HTTP_APIPOLICY_HDR_*) a response within the limits
 * gets (Retry-After only comes with a refusal)
 */

ngx_uint_t
ngx_http_apipolicy_ratelimit_added(ngx_http_apipolicy_ratelimit_conf_t *conf)
{
    ngx_uint_t  added;

    added = 0;

    if (conf->limits == NULL) {
        return 0;
    }

    if (conf->headers & NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_IETF) {
        added |= NGX_HTTP_APIPOLICY_HDR_RATELIMIT
                 |NGX_HTTP_APIPOLICY_HDR_RATELIMIT_POLICY;
    }

    if (conf->headers & NGX_HTTP_APIPOLICY_RATELIMIT_HEADERS_LEGACY) {
        added |= NGX_HTTP_APIPOLICY_HDR_X_RATELIMIT;
    }

    return added;
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
