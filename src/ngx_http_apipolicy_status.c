
/*
 * Copyright (C) apipolicy authors
 *
 * What the gateway did, for operators: counters in a small shared-memory
 * zone ("apipolicy_status", made whenever an apipolicy directive is
 * used), bumped once per request in the LOG phase from what the request
 * context holds (no area counts for itself), and the apipolicy_status
 * content handler that shows them with the zones and the Redis state, as
 * JSON or as Prometheus text:
 *
 *   location = /apipolicy/status { apipolicy_status; allow 10.0.0.0/8;
 *                                  deny all; }
 *   location = /metrics { apipolicy_status prometheus; }
 *
 * The counters count since the zone was made: a reload keeps them, a
 * restart starts afresh (as nginx's stub_status).
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_status.h"
#include "ngx_http_apipolicy_idempotency.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_redis.h"
#include "ngx_http_apipolicy_util.h"


#define NGX_HTTP_APIPOLICY_STATUS_MAGIC   0x6170697374613031  /* apista01 */
#define NGX_HTTP_APIPOLICY_STATUS_SIZE    (64 * 1024)

#define NGX_HTTP_APIPOLICY_STATUS_JSON        0
#define NGX_HTTP_APIPOLICY_STATUS_PROMETHEUS  1


/* the counters; the names are those of the JSON and of the metrics */

enum {
    ngx_http_apipolicy_st_requests = 0,
    ngx_http_apipolicy_st_jwt_verified,
    ngx_http_apipolicy_st_jwt_anonymous,
    ngx_http_apipolicy_st_jwt_cache_hits,
    ngx_http_apipolicy_st_jwt_cache_misses,
    ngx_http_apipolicy_st_rl_passed,
    ngx_http_apipolicy_st_rl_rejected,
    ngx_http_apipolicy_st_rl_dry_run,
    ngx_http_apipolicy_st_idem_stored,
    ngx_http_apipolicy_st_idem_replayed,
    ngx_http_apipolicy_st_webhook_verified,
    ngx_http_apipolicy_st_cors_preflights,
    ngx_http_apipolicy_st_cors_allowed,
    ngx_http_apipolicy_st_cors_denied,
    ngx_http_apipolicy_st_version_deprecated,
    ngx_http_apipolicy_st_version_sunset,
    ngx_http_apipolicy_st_ncounters
};


typedef struct {
    const char                        *section;   /* JSON object */
    const char                        *name;      /* its member */
    const char                        *help;      /* metric HELP */
} ngx_http_apipolicy_st_name_t;


static ngx_http_apipolicy_st_name_t  ngx_http_apipolicy_st_names[] = {
    { NULL, "requests", "Requests that met an apipolicy directive." },
    { "jwt", "verified", "Requests with a verified token." },
    { "jwt", "anonymous", "Requests without a token let through by "
                          "\"optional\"." },
    { "jwt", "cache_hits", "Tokens found in the verified-token cache." },
    { "jwt", "cache_misses", "Tokens verified and put in the cache." },
    { "ratelimit", "passed", "Requests within their rate limits." },
    { "ratelimit", "rejected", "Requests refused by a rate limit." },
    { "ratelimit", "dry_run", "Requests a dry_run limit would have "
                              "refused." },
    { "idempotency", "stored", "Responses kept for an Idempotency-Key." },
    { "idempotency", "replayed", "Kept responses replayed." },
    { "webhook", "verified", "Webhook deliveries with a valid signature." },
    { "cors", "preflights", "CORS preflights answered." },
    { "cors", "allowed", "Requests from an allowed origin." },
    { "cors", "denied", "Requests from an origin not allowed." },
    { "version", "deprecated", "Responses of deprecated API versions." },
    { "version", "sunset", "Requests to API versions past their sunset." },
};


/* every problem code the gateway answers with; anything else: "OTHER" */

static ngx_str_t  ngx_http_apipolicy_st_codes[] = {
    ngx_string("ORIGIN_NOT_ALLOWED"),
    ngx_string("API_VERSION_SUNSET"),
    ngx_string("TOKEN_MISSING"),
    ngx_string("TOKEN_MALFORMED"),
    ngx_string("TOKEN_AMBIGUOUS"),
    ngx_string("TOKEN_EXPIRED"),
    ngx_string("TOKEN_NOT_YET_VALID"),
    ngx_string("TOKEN_TYPE_REJECTED"),
    ngx_string("SIGNATURE_INVALID"),
    ngx_string("ALGORITHM_NOT_ALLOWED"),
    ngx_string("KEY_NOT_FOUND"),
    ngx_string("KEYS_UNAVAILABLE"),
    ngx_string("ISSUER_REJECTED"),
    ngx_string("AUDIENCE_REJECTED"),
    ngx_string("CLAIM_REJECTED"),
    ngx_string("RATE_LIMITED"),
    ngx_string("IDEMPOTENCY_KEY_MISSING"),
    ngx_string("IDEMPOTENCY_KEY_INVALID"),
    ngx_string("IDEMPOTENCY_KEY_IN_USE"),
    ngx_string("IDEMPOTENCY_KEY_REUSED"),
    ngx_string("IDEMPOTENCY_UNAVAILABLE"),
    ngx_string("SIGNATURE_MISSING"),
    ngx_string("TIMESTAMP_OUT_OF_TOLERANCE"),
    ngx_string("WEBHOOK_REPLAYED"),
    ngx_string("INTERNAL_ERROR"),
    ngx_string("OTHER")
};

#define NGX_HTTP_APIPOLICY_ST_NCODES                                         \
    (sizeof(ngx_http_apipolicy_st_codes) / sizeof(ngx_str_t))


/* one zone of apipolicy's, as shown */
typedef struct {
    ngx_str_t                          name;
    size_t                             size;
    size_t                             free;
} ngx_http_apipolicy_st_zone_t;


typedef struct {
    uint64_t                           magic;
    ngx_atomic_t                       counters[ngx_http_apipolicy_st_ncounters];
    ngx_atomic_t                       rejections[NGX_HTTP_APIPOLICY_ST_NCODES];
} ngx_http_apipolicy_st_sh_t;


static ngx_int_t ngx_http_apipolicy_status_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_apipolicy_status_handler(ngx_http_request_t *r);
static ngx_array_t *ngx_http_apipolicy_status_zones(ngx_http_request_t *r);
static u_char *ngx_http_apipolicy_status_json(u_char *p,
    ngx_http_apipolicy_st_sh_t *sh, ngx_array_t *zones,
    ngx_http_apipolicy_main_conf_t *amcf);
static u_char *ngx_http_apipolicy_status_prometheus(u_char *p,
    ngx_http_apipolicy_st_sh_t *sh, ngx_array_t *zones,
    ngx_http_apipolicy_main_conf_t *amcf);
static const char *ngx_http_apipolicy_status_redis(
    ngx_http_apipolicy_main_conf_t *amcf);


static ngx_str_t  ngx_http_apipolicy_status_zone_name =
    ngx_string("apipolicy_status");
static ngx_str_t  ngx_http_apipolicy_status_cc = ngx_string("Cache-Control");
static ngx_str_t  ngx_http_apipolicy_status_no_store = ngx_string("no-store");


#define ngx_http_apipolicy_st_inc(sh, i)                                     \
    (void) ngx_atomic_fetch_add(&(sh)->counters[i], 1)


/* ---- counting (LOG phase) -------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_status_log(ngx_http_request_t *r)
{
    ngx_uint_t                       i, outcome;
    ngx_http_apipolicy_ctx_t        *ctx;
    ngx_http_apipolicy_st_sh_t      *sh;
    ngx_http_apipolicy_main_conf_t  *amcf;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_apipolicy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_OK;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);
    sh = amcf->status ? ((ngx_shm_zone_t *) amcf->status)->data : NULL;

    if (sh == NULL) {
        return NGX_OK;
    }

    ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_requests);

    if (ctx->problem) {
        for (i = 0; i < NGX_HTTP_APIPOLICY_ST_NCODES - 1; i++) {
            if (ctx->problem->code.len == ngx_http_apipolicy_st_codes[i].len
                && ngx_memcmp(ctx->problem->code.data,
                              ngx_http_apipolicy_st_codes[i].data,
                              ctx->problem->code.len)
                   == 0)
            {
                break;
            }
        }

        (void) ngx_atomic_fetch_add(&sh->rejections[i], 1);
    }

    if (ctx->jwt) {
        if (ctx->jwt->verified) {
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_jwt_verified);

        } else if (ctx->jwt->anonymous) {
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_jwt_anonymous);
        }

        if (ctx->jwt->cache_status == NGX_HTTP_APIPOLICY_JWT_CACHE_HIT) {
            ngx_http_apipolicy_st_inc(sh,
                                      ngx_http_apipolicy_st_jwt_cache_hits);

        } else if (ctx->jwt->cache_status == NGX_HTTP_APIPOLICY_JWT_CACHE_MISS)
        {
            ngx_http_apipolicy_st_inc(sh,
                                      ngx_http_apipolicy_st_jwt_cache_misses);
        }
    }

    if (ctx->rl) {
        switch (ctx->rl->status) {

        case NGX_HTTP_APIPOLICY_RL_PASSED:
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_rl_passed);
            break;

        case NGX_HTTP_APIPOLICY_RL_REJECTED:
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_rl_rejected);
            break;

        case NGX_HTTP_APIPOLICY_RL_DRY_RUN:
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_rl_dry_run);
            break;
        }
    }

    if (ctx->idem) {
        outcome = ngx_http_apipolicy_idempotency_outcome(ctx);

        if (outcome == NGX_HTTP_APIPOLICY_IDEM_OUTCOME_STORED) {
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_idem_stored);

        } else if (outcome == NGX_HTTP_APIPOLICY_IDEM_OUTCOME_REPLAYED) {
            ngx_http_apipolicy_st_inc(sh,
                                      ngx_http_apipolicy_st_idem_replayed);
        }
    }

    if (ctx->webhook && ctx->webhook->done
        && ctx->webhook->status == NGX_OK)
    {
        ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_webhook_verified);
    }

    if (ctx->cors.decided) {
        if (ctx->cors.preflight && ctx->cors.allowed) {
            ngx_http_apipolicy_st_inc(sh,
                                      ngx_http_apipolicy_st_cors_preflights);

        } else if (ctx->cors.allowed) {
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_cors_allowed);

        } else if (ctx->cors.has_origin) {
            ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_cors_denied);
        }
    }

    if (ctx->version.state == NGX_HTTP_APIPOLICY_VERSION_DEPRECATED) {
        ngx_http_apipolicy_st_inc(sh,
                                  ngx_http_apipolicy_st_version_deprecated);

    } else if (ctx->version.state == NGX_HTTP_APIPOLICY_VERSION_SUNSET) {
        ngx_http_apipolicy_st_inc(sh, ngx_http_apipolicy_st_version_sunset);
    }

    return NGX_OK;
}


/* ---- the content handler --------------------------------------------- */

static ngx_int_t
ngx_http_apipolicy_status_handler(ngx_http_request_t *r)
{
    size_t                           len;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_uint_t                       format;
    ngx_chain_t                      out;
    ngx_array_t                     *zones;
    ngx_http_apipolicy_st_sh_t      *sh;
    ngx_http_apipolicy_loc_conf_t   *alcf;
    ngx_http_apipolicy_main_conf_t  *amcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

    format = alcf->status_format;
    sh = ((ngx_shm_zone_t *) amcf->status)->data;

    zones = ngx_http_apipolicy_status_zones(r);
    if (zones == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* room: the counters, the codes, the zones (names of 128 at most) */

    len = 4096 + NGX_HTTP_APIPOLICY_ST_NCODES * 160
          + ngx_http_apipolicy_st_ncounters * 256 + zones->nelts * 512;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (format == NGX_HTTP_APIPOLICY_STATUS_PROMETHEUS) {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
        b->last = ngx_http_apipolicy_status_prometheus(b->last, sh, zones,
                                                       amcf);

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        b->last = ngx_http_apipolicy_status_json(b->last, sh, zones, amcf);
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    /* counters change every moment: never cached */

    if (ngx_http_apipolicy_add_header(r, &ngx_http_apipolicy_status_cc,
                                      &ngx_http_apipolicy_status_no_store)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* each zone of apipolicy's: its name, size, and the room left */

static ngx_array_t *
ngx_http_apipolicy_status_zones(ngx_http_request_t *r)
{
    ngx_uint_t                     i;
    ngx_array_t                   *zones;
    ngx_list_part_t               *part;
    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_apipolicy_st_zone_t  *z;

    zones = ngx_array_create(r->pool, 8, sizeof(ngx_http_apipolicy_st_zone_t));
    if (zones == NULL) {
        return NULL;
    }

    part = &((ngx_cycle_t *) ngx_cycle)->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].tag != &ngx_http_apipolicy_module
            || shm_zone[i].shm.addr == NULL)
        {
            continue;
        }

        z = ngx_array_push(zones);
        if (z == NULL) {
            return NULL;
        }

        shpool = (ngx_slab_pool_t *) shm_zone[i].shm.addr;

        z->name = shm_zone[i].shm.name;
        z->name.len = ngx_min(z->name.len, 128);
        z->size = shm_zone[i].shm.size;
        z->free = shpool->pfree * ngx_pagesize;
    }

    return zones;
}


static u_char *
ngx_http_apipolicy_status_json(u_char *p, ngx_http_apipolicy_st_sh_t *sh,
    ngx_array_t *zones, ngx_http_apipolicy_main_conf_t *amcf)
{
    ngx_uint_t                     n;
    const char                    *section;
    ngx_http_apipolicy_st_zone_t  *z;

    p = ngx_sprintf(p, "{\"apipolicy\":\"%s\",\"nginx\":\"%s\",",
                    NGX_HTTP_APIPOLICY_VERSION, NGINX_VERSION);

    section = NULL;

    for (n = 0; n < ngx_http_apipolicy_st_ncounters; n++) {

        if (ngx_http_apipolicy_st_names[n].section != section) {
            if (section) {
                *p++ = '}';
                *p++ = ',';
            }

            section = ngx_http_apipolicy_st_names[n].section;

            if (section) {
                p = ngx_sprintf(p, "\"%s\":{", section);
            }

        } else if (section) {
            *p++ = ',';
        }

        p = ngx_sprintf(p, "\"%s\":%uA", ngx_http_apipolicy_st_names[n].name,
                        sh->counters[n]);

        if (section == NULL) {
            *p++ = ',';
        }
    }

    if (section) {
        *p++ = '}';
        *p++ = ',';
    }

    p = ngx_cpymem(p, "\"rejections\":{", sizeof("\"rejections\":{") - 1);

    for (n = 0; n < NGX_HTTP_APIPOLICY_ST_NCODES; n++) {
        p = ngx_sprintf(p, "%s\"%V\":%uA", n ? "," : "",
                        &ngx_http_apipolicy_st_codes[n], sh->rejections[n]);
    }

    p = ngx_cpymem(p, "},\"zones\":{", sizeof("},\"zones\":{") - 1);

    z = zones->elts;

    for (n = 0; n < zones->nelts; n++) {
        p = ngx_sprintf(p, "%s\"%V\":{\"size\":%uz,\"free\":%uz}",
                        n ? "," : "", &z[n].name, z[n].size, z[n].free);
    }

    p = ngx_cpymem(p, "},", 2);

    if (amcf->redis) {
        p = ngx_sprintf(p, "\"redis\":{\"address\":\"%V\",\"state\":\"%s\"}}",
                        ngx_http_apipolicy_redis_name(amcf->redis),
                        ngx_http_apipolicy_status_redis(amcf));

    } else {
        p = ngx_cpymem(p, "\"redis\":null}", sizeof("\"redis\":null}") - 1);
    }

    *p++ = '\n';

    return p;
}


static u_char *
ngx_http_apipolicy_status_prometheus(u_char *p, ngx_http_apipolicy_st_sh_t *sh,
    ngx_array_t *zones, ngx_http_apipolicy_main_conf_t *amcf)
{
    ngx_uint_t                     n;
    const char                    *section;
    ngx_http_apipolicy_st_zone_t  *z;

    for (n = 0; n < ngx_http_apipolicy_st_ncounters; n++) {
        section = ngx_http_apipolicy_st_names[n].section;

        p = ngx_sprintf(p, "# HELP apipolicy_%s%s%s_total %s\n"
                           "# TYPE apipolicy_%s%s%s_total counter\n"
                           "apipolicy_%s%s%s_total %uA\n",
                        section ? section : "", section ? "_" : "",
                        ngx_http_apipolicy_st_names[n].name,
                        ngx_http_apipolicy_st_names[n].help,
                        section ? section : "", section ? "_" : "",
                        ngx_http_apipolicy_st_names[n].name,
                        section ? section : "", section ? "_" : "",
                        ngx_http_apipolicy_st_names[n].name,
                        sh->counters[n]);
    }

    p = ngx_sprintf(p, "# HELP apipolicy_rejections_total Requests the "
                       "gateway refused, by problem code.\n"
                       "# TYPE apipolicy_rejections_total counter\n");

    for (n = 0; n < NGX_HTTP_APIPOLICY_ST_NCODES; n++) {
        p = ngx_sprintf(p, "apipolicy_rejections_total{code=\"%V\"} %uA\n",
                        &ngx_http_apipolicy_st_codes[n], sh->rejections[n]);
    }

    p = ngx_sprintf(p, "# HELP apipolicy_zone_size_bytes Size of a shared "
                       "memory zone.\n"
                       "# TYPE apipolicy_zone_size_bytes gauge\n");

    z = zones->elts;

    for (n = 0; n < zones->nelts; n++) {
        p = ngx_sprintf(p, "apipolicy_zone_size_bytes{zone=\"%V\"} %uz\n",
                        &z[n].name, z[n].size);
    }

    p = ngx_sprintf(p, "# HELP apipolicy_zone_free_bytes Free pages of a "
                       "shared memory zone, in bytes.\n"
                       "# TYPE apipolicy_zone_free_bytes gauge\n");

    for (n = 0; n < zones->nelts; n++) {
        p = ngx_sprintf(p, "apipolicy_zone_free_bytes{zone=\"%V\"} %uz\n",
                        &z[n].name, z[n].free);
    }

    if (amcf->redis) {
        p = ngx_sprintf(p, "# HELP apipolicy_redis_up 1 when this worker "
                           "last reached Redis, 0 when it could not.\n"
                           "# TYPE apipolicy_redis_up gauge\n"
                           "apipolicy_redis_up{address=\"%V\"} %d\n",
                        ngx_http_apipolicy_redis_name(amcf->redis),
                        ngx_strcmp(ngx_http_apipolicy_status_redis(amcf),
                                   "down") != 0);
    }

    return p;
}


/* this worker's view: "up", "down", or "unused" (nothing sent yet) */

static const char *
ngx_http_apipolicy_status_redis(ngx_http_apipolicy_main_conf_t *amcf)
{
    ngx_int_t                    state;
    ngx_http_apipolicy_redis_t  *rd;

    rd = ngx_http_apipolicy_redis_get((ngx_cycle_t *) ngx_cycle);
    state = rd ? ngx_http_apipolicy_redis_state(rd) : NGX_DECLINED;

    switch (state) {
    case NGX_OK:
        return "up";
    case NGX_ERROR:
        return "down";
    default:
        return "unused";
    }
}


/* ---- configuration --------------------------------------------------- */

/* apipolicy_status [json|prometheus] (location) */

char *
ngx_http_apipolicy_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_apipolicy_loc_conf_t  *alcf = conf;

    ngx_str_t                       *value;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_apipolicy_main_conf_t  *amcf;

    if (alcf->status_format != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    alcf->status_format = NGX_HTTP_APIPOLICY_STATUS_JSON;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "prometheus") == 0) {
            alcf->status_format = NGX_HTTP_APIPOLICY_STATUS_PROMETHEUS;

        } else if (ngx_strcmp(value[1].data, "json") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid format \"%V\": use \"json\" or "
                               "\"prometheus\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_apipolicy_status_handler;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);
    amcf->used = 1;

    return NGX_CONF_OK;
}


/* the zone, once any apipolicy directive is used (postconfiguration) */

ngx_int_t
ngx_http_apipolicy_status_postconfiguration(ngx_conf_t *cf)
{
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (!amcf->used) {
        return NGX_OK;
    }

    /* the counters' address is set by the init function */

    shm_zone = ngx_http_apipolicy_conf_shm_add(cf,
                                         &ngx_http_apipolicy_status_zone_name,
                                         NGX_HTTP_APIPOLICY_STATUS_SIZE,
                                         ngx_http_apipolicy_status_init_zone,
                                         NULL);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    amcf->status = shm_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_status_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t             *shpool;
    ngx_http_apipolicy_st_sh_t  *sh;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data) {
        sh = data;

        if (sh->magic == NGX_HTTP_APIPOLICY_STATUS_MAGIC) {
            shm_zone->data = sh;
            return NGX_OK;
        }
    }

    if (shm_zone->shm.exists && shpool->data) {
        sh = shpool->data;

        if (sh->magic == NGX_HTTP_APIPOLICY_STATUS_MAGIC) {
            shm_zone->data = sh;
            return NGX_OK;
        }
    }

    /* a new zone, or counters of another layout (a new module): afresh */

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_apipolicy_st_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->magic = NGX_HTTP_APIPOLICY_STATUS_MAGIC;
    shpool->data = sh;
    shm_zone->data = sh;

    return NGX_OK;
}
