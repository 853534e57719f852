
/*
 * Copyright (C) apipolicy authors
 *
 * apipolicy: API policy enforcement at the nginx gateway.
 *
 * This file holds the module definition, the directive table, main and
 * location configuration create/merge, phase registration and the filter
 * splice, and the worker process hooks.  Each area lives in
 * src/ngx_http_apipolicy_<area>.{c,h}; shared types are in
 * src/ngx_http_apipolicy.h.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_phase.h"
#include "ngx_http_apipolicy_filter.h"
#include "ngx_http_apipolicy_var.h"
#include "ngx_http_apipolicy_util.h"
#include "ngx_http_apipolicy_cors.h"
#include "ngx_http_apipolicy_version.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_jwks.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_redis.h"
#include "ngx_http_apipolicy_webhook.h"
#include "ngx_http_apipolicy_idempotency.h"
#include "ngx_http_apipolicy_status.h"


static void *ngx_http_apipolicy_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_apipolicy_create_loc_conf(ngx_conf_t *cf);
static ngx_uint_t ngx_http_apipolicy_merge_areas(
    ngx_http_apipolicy_loc_conf_t *conf);
static char *ngx_http_apipolicy_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_apipolicy_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_apipolicy_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_apipolicy_init_process(ngx_cycle_t *cycle);
static void ngx_http_apipolicy_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_apipolicy_cors_upstream[] = {
    { ngx_string("replace"), NGX_HTTP_APIPOLICY_CORS_UPSTREAM_REPLACE },
    { ngx_string("pass"), NGX_HTTP_APIPOLICY_CORS_UPSTREAM_PASS },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_apipolicy_ratelimit_status_bounds = {
    ngx_conf_check_num_bounds, 400, 599
};


/*
 * Directives of some blocks only, answered with where they belong when
 * they are elsewhere (ngx_http_apipolicy_conf_where())
 */

static ngx_http_apipolicy_conf_where_t  ngx_http_apipolicy_in_srv_jwks = {
    NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF,
    "a server or a location (its URI is resolved in the server)",
    ngx_http_apipolicy_jwks_key_request
};

static ngx_http_apipolicy_conf_where_t
    ngx_http_apipolicy_in_http_webhook_zone = {
    NGX_HTTP_MAIN_CONF, "the http block (a zone all servers share)",
    ngx_http_apipolicy_webhook_zone
};

static ngx_http_apipolicy_conf_where_t
    ngx_http_apipolicy_in_http_idempotency_zone = {
    NGX_HTTP_MAIN_CONF, "the http block (a zone all servers share)",
    ngx_http_apipolicy_idempotency_zone
};

static ngx_http_apipolicy_conf_where_t  ngx_http_apipolicy_in_loc_status = {
    NGX_HTTP_LOC_CONF,
    "a location (it answers the requests of that location)",
    ngx_http_apipolicy_status
};

static ngx_http_apipolicy_conf_where_t  ngx_http_apipolicy_in_http_redis = {
    NGX_HTTP_MAIN_CONF, "the http block (one Redis for the whole gateway)",
    ngx_http_apipolicy_redis
};

static ngx_http_apipolicy_conf_where_t
    ngx_http_apipolicy_in_http_ratelimit_zone = {
    NGX_HTTP_MAIN_CONF, "the http block (a zone all servers share)",
    ngx_http_apipolicy_ratelimit_zone
};

static ngx_http_apipolicy_conf_where_t
    ngx_http_apipolicy_in_http_ratelimit_tier = {
    NGX_HTTP_MAIN_CONF,
    "the http block (tiers are shared by every rate limit)",
    ngx_http_apipolicy_ratelimit_tier
};


static ngx_command_t  ngx_http_apipolicy_commands[] = {

    /* CORS */

    { ngx_string("apipolicy_cors_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_cors_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_cors_methods"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_cors_tokens,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.methods),
      NULL },

    { ngx_string("apipolicy_cors_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_cors_tokens,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.headers),
      NULL },

    { ngx_string("apipolicy_cors_expose"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_cors_tokens,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.expose),
      NULL },

    { ngx_string("apipolicy_cors_credentials"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.credentials),
      NULL },

    { ngx_string("apipolicy_cors_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.max_age),
      NULL },

    { ngx_string("apipolicy_cors_private_network"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.private_network),
      NULL },

    { ngx_string("apipolicy_cors_reject"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.reject),
      NULL },

    { ngx_string("apipolicy_cors_upstream"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, cors.upstream),
      &ngx_http_apipolicy_cors_upstream },

    /* API version deprecation */

    { ngx_string("apipolicy_version"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_version,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* JWT */

    { ngx_string("apipolicy_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_apipolicy_jwt,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_jwt_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_apipolicy_jwt_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_jwt_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_apipolicy_jwt_secret,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_jwt_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_jwt_algorithms,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_jwt_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, jwt.issuers),
      NULL },

    { ngx_string("apipolicy_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_jwt_strings,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, jwt.audiences),
      NULL },

    { ngx_string("apipolicy_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, jwt.leeway),
      NULL },

    { ngx_string("apipolicy_jwt_require"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_apipolicy_jwt_require,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_jwt_require_exp"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, jwt.require_exp),
      NULL },

    { ngx_string("apipolicy_jwt_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, jwt.token),
      NULL },

    { ngx_string("apipolicy_jwt_typ"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_jwt_typ,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_jwt_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, jwt.max_size),
      NULL },

    { ngx_string("apipolicy_jwt_key_request"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_conf_where,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_apipolicy_in_srv_jwks },

    { ngx_string("apipolicy_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_apipolicy_jwt_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, jwt.cache),
      NULL },

    /* webhook signatures */

    { ngx_string("apipolicy_webhook"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_webhook,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_webhook_zone"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_conf_where,
      0,
      0,
      &ngx_http_apipolicy_in_http_webhook_zone },

    /* Idempotency-Key */

    { ngx_string("apipolicy_idempotency_zone"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_conf_where,
      0,
      0,
      &ngx_http_apipolicy_in_http_idempotency_zone },

    { ngx_string("apipolicy_idempotency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_idempotency,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* observability */

    { ngx_string("apipolicy_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
      |NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_apipolicy_conf_where,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_apipolicy_in_loc_status },

    /* Redis, shared by the gateways */

    { ngx_string("apipolicy_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_conf_where,
      0,
      0,
      &ngx_http_apipolicy_in_http_redis },

    { ngx_string("apipolicy_redis_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_redis_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_http_apipolicy_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_redis_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_redis_ssl_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_redis_ssl_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_redis_ssl_protocols"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_redis_ssl,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* rate limiting */

    { ngx_string("apipolicy_ratelimit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_apipolicy_conf_where,
      0,
      0,
      &ngx_http_apipolicy_in_http_ratelimit_zone },

    { ngx_string("apipolicy_ratelimit_tier"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_apipolicy_conf_where,
      0,
      0,
      &ngx_http_apipolicy_in_http_ratelimit_tier },

    { ngx_string("apipolicy_ratelimit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_apipolicy_ratelimit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("apipolicy_ratelimit_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_conf_set_status_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, ratelimit.status),
      &ngx_http_apipolicy_ratelimit_status_bounds },

    { ngx_string("apipolicy_ratelimit_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_apipolicy_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_apipolicy_loc_conf_t, ratelimit.headers),
      ngx_http_apipolicy_ratelimit_headers },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_apipolicy_module_ctx = {
    ngx_http_apipolicy_preconfiguration,   /* preconfiguration */
    ngx_http_apipolicy_postconfiguration,  /* postconfiguration */

    ngx_http_apipolicy_create_main_conf,   /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_apipolicy_create_loc_conf,    /* create location configuration */
    ngx_http_apipolicy_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_apipolicy_module = {
    NGX_MODULE_V1,
    &ngx_http_apipolicy_module_ctx,        /* module context */
    ngx_http_apipolicy_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_apipolicy_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_apipolicy_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_apipolicy_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     amcf->used = 0;
     *     amcf->jwt_cache = NULL;
     */

    return amcf;
}


static void *
ngx_http_apipolicy_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_apipolicy_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     alcf->phases = 0;
     *     alcf->areas = 0;
     */

    ngx_http_apipolicy_cors_create_loc_conf(cf, &alcf->cors);
    ngx_http_apipolicy_version_create_loc_conf(cf, &alcf->version);
    ngx_http_apipolicy_jwt_create_loc_conf(cf, &alcf->jwt);
    ngx_http_apipolicy_ratelimit_create_loc_conf(cf, &alcf->ratelimit);
    ngx_http_apipolicy_webhook_create_loc_conf(cf, &alcf->webhook);
    ngx_http_apipolicy_idempotency_create_loc_conf(cf, &alcf->idempotency);
    ngx_http_apipolicy_status_create_loc_conf(cf, &alcf->status);

    return alcf;
}


/* the areas a location has: those that need a phase or the filter */

static ngx_uint_t
ngx_http_apipolicy_merge_areas(ngx_http_apipolicy_loc_conf_t *conf)
{
    ngx_uint_t  areas;

    areas = 0;

    if (ngx_http_apipolicy_cors_phases(&conf->cors)) {
        areas |= NGX_HTTP_APIPOLICY_AREA_CORS;
    }

    if (ngx_http_apipolicy_version_phases(&conf->version)) {
        areas |= NGX_HTTP_APIPOLICY_AREA_VERSION;
    }

    if (ngx_http_apipolicy_jwt_phases(&conf->jwt)) {
        areas |= NGX_HTTP_APIPOLICY_AREA_JWT;
    }

    if (ngx_http_apipolicy_ratelimit_phases(&conf->ratelimit)) {
        areas |= NGX_HTTP_APIPOLICY_AREA_RATELIMIT;
    }

    if (ngx_http_apipolicy_webhook_phases(&conf->webhook)) {
        areas |= NGX_HTTP_APIPOLICY_AREA_WEBHOOK;
    }

    if (ngx_http_apipolicy_idempotency_phases(&conf->idempotency)) {
        areas |= NGX_HTTP_APIPOLICY_AREA_IDEMPOTENCY;
    }

    return areas;
}


static char *
ngx_http_apipolicy_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_apipolicy_loc_conf_t  *prev = parent;
    ngx_http_apipolicy_loc_conf_t  *conf = child;

    conf->phases = 0;

    if (ngx_http_apipolicy_version_merge(cf, &prev->version, &conf->version)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->phases |= ngx_http_apipolicy_version_phases(&conf->version);

    if (ngx_http_apipolicy_cors_merge(cf, &prev->cors, &conf->cors)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->phases |= ngx_http_apipolicy_cors_phases(&conf->cors);

    if (ngx_http_apipolicy_jwt_merge(cf, &prev->jwt, &conf->jwt)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->phases |= ngx_http_apipolicy_jwt_phases(&conf->jwt);

    if (ngx_http_apipolicy_ratelimit_merge(cf, &prev->ratelimit,
                                           &conf->ratelimit)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->phases |= ngx_http_apipolicy_ratelimit_phases(&conf->ratelimit);

    if (ngx_http_apipolicy_webhook_merge(cf, &prev->webhook, &conf->webhook)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->phases |= ngx_http_apipolicy_webhook_phases(&conf->webhook);

    if (ngx_http_apipolicy_idempotency_merge(cf, &prev->idempotency,
                                             &conf->idempotency)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->phases |= ngx_http_apipolicy_idempotency_phases(&conf->idempotency);

    if (ngx_http_apipolicy_status_merge(cf, &prev->status, &conf->status)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    conf->phases |= ngx_http_apipolicy_status_phases(&conf->status);

    conf->areas = ngx_http_apipolicy_merge_areas(conf);

    /* CORS: the Access-Control-Expose-Headers of a usual response, once */

    if (ngx_http_apipolicy_cors_expose_usual(cf, &conf->cors,
                              ngx_http_apipolicy_version_added(&conf->version)
                              | ngx_http_apipolicy_ratelimit_added(
                                                            &conf->ratelimit))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_apipolicy_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_apipolicy_add_variables(cf);
}


static ngx_int_t
ngx_http_apipolicy_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_apipolicy_idempotency_postconfiguration(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_apipolicy_jwt_postconfiguration(cf);
    ngx_http_apipolicy_jwks_postconfiguration(cf);

    if (ngx_http_apipolicy_redis_postconfiguration(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_status_postconfiguration(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_ratelimit_postconfiguration(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_phase_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_filter_init(cf);
}


/*
 * Worker hooks.  init_process also runs in the cache manager and loader
 * helpers, which serve no requests: per-worker work (Redis connections,
 * sync timers) starts only in workers or in single-process mode.
 */

static ngx_int_t
ngx_http_apipolicy_init_process(ngx_cycle_t *cycle)
{
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_apipolicy_module)
        == NULL)
    {
        return NGX_OK;              /* no http{} block */
    }

    if (ngx_http_apipolicy_status_init_process(cycle) != NGX_OK
        || ngx_http_apipolicy_redis_init_process(cycle) != NGX_OK
        || ngx_http_apipolicy_idempotency_init_process(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_ratelimit_init_process(cycle);
}


static void
ngx_http_apipolicy_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_apipolicy_redis_t  *rd;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_apipolicy_module)
        == NULL)
    {
        return;
    }

    /* or nginx reports the socket left open at exit */

    rd = ngx_http_apipolicy_redis_get(cycle);

    if (rd) {
        ngx_http_apipolicy_redis_close(rd);
    }

    ngx_http_apipolicy_idempotency_exit_process(cycle);
}
