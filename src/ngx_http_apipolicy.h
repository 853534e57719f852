
/*
 * Copyright (C) apipolicy authors
 *
 * The umbrella header of apipolicy, in the manner of ngx_http.h: the
 * types that cross areas (problems, phase and header flags), then every
 * area header (each holds that area's own types and entry points), then
 * the module's main and location configuration and the per-request
 * context, which embed them.  Source files include it first.
 */


#ifndef _NGX_HTTP_APIPOLICY_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <hiredis/hiredis.h>


/*
 * Nothing of apipolicy is called from outside the module (nginx finds a
 * dynamic module through ngx_modules, which the generated
 * ..._modules.c defines): with every declaration of the module's headers
 * hidden, its files call one another directly rather than through the
 * PLT, and reach ngx_http_apipolicy_module without the GOT.  The system
 * headers those headers use are included above, outside the hidden part.
 */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif


#define NGX_HTTP_APIPOLICY_VERSION        "0.1.0"

/* status codes nginx 1.22 has no macro for */
#define NGX_HTTP_APIPOLICY_GONE           410
#define NGX_HTTP_APIPOLICY_UNPROCESSABLE  422


/* which request-path hooks a location needs (computed by merge) */
#define NGX_HTTP_APIPOLICY_PREACCESS      0x01
#define NGX_HTTP_APIPOLICY_ACCESS         0x02
#define NGX_HTTP_APIPOLICY_PRECONTENT     0x04
#define NGX_HTTP_APIPOLICY_HEADERS        0x08


/*
 * which areas a location has (computed by merge), and a request met in
 * the locations it went through: the phase handlers and the header
 * filter call only those areas' steps
 */
#define NGX_HTTP_APIPOLICY_AREA_CORS         0x01
#define NGX_HTTP_APIPOLICY_AREA_VERSION      0x02
#define NGX_HTTP_APIPOLICY_AREA_JWT          0x04
#define NGX_HTTP_APIPOLICY_AREA_RATELIMIT    0x08
#define NGX_HTTP_APIPOLICY_AREA_WEBHOOK      0x10
#define NGX_HTTP_APIPOLICY_AREA_IDEMPOTENCY  0x20


/*
 * Response headers the gateway itself adds; the CORS step lists them in
 * Access-Control-Expose-Headers so browsers may read them.
 */
#define NGX_HTTP_APIPOLICY_HDR_RATELIMIT         0x01
#define NGX_HTTP_APIPOLICY_HDR_RATELIMIT_POLICY  0x02
#define NGX_HTTP_APIPOLICY_HDR_RETRY_AFTER       0x04
#define NGX_HTTP_APIPOLICY_HDR_DEPRECATION       0x08
#define NGX_HTTP_APIPOLICY_HDR_SUNSET            0x10
#define NGX_HTTP_APIPOLICY_HDR_LINK              0x20
#define NGX_HTTP_APIPOLICY_HDR_IDEMPOTENT        0x40
#define NGX_HTTP_APIPOLICY_HDR_WWW_AUTHENTICATE  0x80
#define NGX_HTTP_APIPOLICY_HDR_X_RATELIMIT       0x700   /* -Limit, -Remaining,
                                                            -Reset */


/*
 * A problem type (RFC 9457).  Areas declare them as static data with
 * ngx_http_apipolicy_problem(); the rejection helper turns one into an
 * application/problem+json response.
 */
typedef struct {
    ngx_str_t                          code;    /* TOKEN_EXPIRED */
    ngx_str_t                          type;    /* urn:apipolicy:... */
    ngx_str_t                          title;   /* Token expired */
} ngx_http_apipolicy_problem_t;

#define ngx_http_apipolicy_problem(code, slug, title)                        \
    { ngx_string(code), ngx_string("urn:apipolicy:problem:" slug),           \
      ngx_string(title) }


/* the module's configuration and request context, defined below */
typedef struct ngx_http_apipolicy_main_conf_s  ngx_http_apipolicy_main_conf_t;
typedef struct ngx_http_apipolicy_loc_conf_s   ngx_http_apipolicy_loc_conf_t;
typedef struct ngx_http_apipolicy_ctx_s        ngx_http_apipolicy_ctx_t;


/*
 * Each area's own types, embedded below.  Like ngx_http.h, this header
 * includes the area headers; every source file includes it first.
 */
#include "ngx_http_apipolicy_cors.h"
#include "ngx_http_apipolicy_version.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_webhook.h"
#include "ngx_http_apipolicy_idempotency.h"
#include "ngx_http_apipolicy_status.h"


/* ---- configuration --------------------------------------------------- */

struct ngx_http_apipolicy_main_conf_s {
    ngx_flag_t                         used;      /* any apipolicy directive
                                                     in this http{} */
    ngx_shm_zone_t                    *jwt_cache; /* apipolicy_jwt_cache */
    ngx_array_t                       *ratelimit_tiers; /* of tier_t */
    ngx_array_t                       *ratelimit_zones; /* of zone_t * */
    struct ngx_http_apipolicy_redis_s *redis;     /* apipolicy_redis */
    struct ngx_http_apipolicy_redis_ssl_s *redis_ssl; /* ..._redis_ssl_* */
    ngx_array_t                       *webhook_zones; /* ngx_shm_zone_t * */
    ngx_array_t                       *idempotency_zones; /* ngx_shm_zone_t *
                                                           */
    ngx_flag_t                         idempotency_redis; /* a zone has
                                                             redis=on */
    ngx_shm_zone_t                    *status;    /* the counters */
    ngx_array_t                       *jwks;      /* jwks_t *: every
                                                     apipolicy_jwt_key_request,
                                                     checked at
                                                     postconfiguration and
                                                     shown by the metrics */
};


struct ngx_http_apipolicy_loc_conf_s {
    ngx_uint_t                         phases;    /* NGX_HTTP_APIPOLICY_* */
    ngx_uint_t                         areas;     /* ..._AREA_* */

    ngx_http_apipolicy_cors_conf_t     cors;
    ngx_http_apipolicy_version_conf_t  version;
    ngx_http_apipolicy_jwt_conf_t      jwt;
    ngx_http_apipolicy_ratelimit_conf_t  ratelimit;

    ngx_http_apipolicy_webhook_conf_t  webhook;
    ngx_http_apipolicy_idempotency_conf_t idempotency;

    ngx_http_apipolicy_status_conf_t   status;
};


/* ---- per-request context --------------------------------------------- */

struct ngx_http_apipolicy_ctx_s {
    /* the rejection this request got, if any */
    const ngx_http_apipolicy_problem_t *problem;
    ngx_uint_t                         problem_status;
    ngx_str_t                          problem_detail;
    unsigned                           problem_builtin:1; /* nginx's own page
                                                             will be sent */
    unsigned                           problem_body:1;    /* body filter
                                                             replaces it */
    unsigned                           problem_sent:1;
    unsigned                           body:2;    /* ..._BODY_*: see
                                                     ngx_http_apipolicy_read_body()
                                                   */
    ngx_buf_t                         *problem_buf;

    ngx_uint_t                         added;     /* NGX_HTTP_APIPOLICY_HDR_* */
    ngx_uint_t                         areas;     /* ..._AREA_* of the
                                                     locations its phase
                                                     handlers ran in */

    ngx_http_apipolicy_cors_ctx_t      cors;
    ngx_http_apipolicy_version_ctx_t   version;
    ngx_http_apipolicy_jwt_ctx_t      *jwt;
    ngx_http_apipolicy_ratelimit_ctx_t *ratelimit;
    ngx_http_apipolicy_webhook_ctx_t  *webhook;
    ngx_http_apipolicy_idempotency_ctx_t *idempotency;
};


extern ngx_module_t  ngx_http_apipolicy_module;


ngx_http_apipolicy_ctx_t *ngx_http_apipolicy_get_ctx(ngx_http_request_t *r);
ngx_http_apipolicy_ctx_t *ngx_http_apipolicy_create_ctx(
    ngx_http_request_t *r);


/* the module's other headers, hidden too */
#include "ngx_http_apipolicy_crypto.h"
#include "ngx_http_apipolicy_digest.h"
#include "ngx_http_apipolicy_filter.h"
#include "ngx_http_apipolicy_json.h"
#include "ngx_http_apipolicy_jwks.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_jwt_key.h"
#include "ngx_http_apipolicy_phase.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_redis.h"
#include "ngx_http_apipolicy_shm.h"
#include "ngx_http_apipolicy_util.h"
#include "ngx_http_apipolicy_var.h"

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* _NGX_HTTP_APIPOLICY_H_INCLUDED_ */
