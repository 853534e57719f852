
/*
 * Copyright (C) apipolicy authors
 *
 * The one shared-types header of apipolicy: main and location
 * configuration, the per-request context, and the types that cross
 * areas.  Area headers (ngx_http_apipolicy_<area>.h) declare only that
 * area's entry points.
 */


#ifndef _NGX_HTTP_APIPOLICY_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


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


/* ---- CORS (ngx_http_apipolicy_cors.c) ---------------------------------- */

#define NGX_HTTP_APIPOLICY_CORS_EXACT     0
#define NGX_HTTP_APIPOLICY_CORS_WILDCARD  1
#define NGX_HTTP_APIPOLICY_CORS_REGEX     2
#define NGX_HTTP_APIPOLICY_CORS_ANY       3

typedef struct {
    ngx_uint_t                         kind;
    ngx_str_t                          value;   /* exact: the origin;
                                                   wildcard: "https://" */
    ngx_str_t                          suffix;  /* wildcard: ".example.com",
                                                   then ":port" if any */
#if (NGX_PCRE)
    ngx_regex_t                       *regex;
#endif
} ngx_http_apipolicy_cors_origin_t;

#define NGX_HTTP_APIPOLICY_CORS_UPSTREAM_REPLACE  1
#define NGX_HTTP_APIPOLICY_CORS_UPSTREAM_PASS     2

typedef struct {
    ngx_array_t                       *origins;     /* cors_origin_t; NULL:
                                                       "off" */
    ngx_array_t                       *methods;     /* ngx_str_t */
    ngx_array_t                       *headers;     /* ngx_str_t, lowercase */
    ngx_array_t                       *expose;      /* ngx_str_t */
    ngx_flag_t                         credentials;
    ngx_flag_t                         private_network;
    ngx_flag_t                         reject;      /* 403 for a disallowed
                                                       origin */
    time_t                             max_age;
    ngx_uint_t                         upstream;    /* replace | pass */
    ngx_str_t                          file;        /* where the origins */
    ngx_uint_t                         line;        /* were listed */

    /* derived at merge time */
    ngx_flag_t                         any_origin;  /* "*" listed */
    ngx_flag_t                         headers_any; /* "*" in headers */
    ngx_str_t                          methods_value;
    ngx_str_t                          expose_value;
    ngx_str_t                          max_age_value;
} ngx_http_apipolicy_cors_conf_t;

typedef struct {
    ngx_http_apipolicy_cors_conf_t    *conf;        /* decided for */
    ngx_str_t                          origin;      /* allowed Origin */
    ngx_str_t                          allow_headers;  /* preflight answer */
    ngx_uint_t                         owned;       /* Access-Control-*
                                                       names the gateway
                                                       answered, by bit */
    unsigned                           decided:1;
    unsigned                           filtered:1;  /* its headers written */
    unsigned                           has_origin:1; /* one or more sent */
    unsigned                           allowed:1;
    unsigned                           preflight:1;
    unsigned                           private_network:1;
} ngx_http_apipolicy_cors_ctx_t;


/* ---- API version deprecation (ngx_http_apipolicy_version.c) ----------- */

typedef struct {
    ngx_flag_t                         enabled;     /* NGX_CONF_UNSET: inherit;
                                                       0: "off" */
    time_t                             deprecated;
    time_t                             sunset;      /* -1: none */
    time_t                             announce;    /* -1: say nothing before
                                                       the deprecation date */
    ngx_uint_t                         after_sunset; /* 410, or 0: pass */

    /* precomputed header values */
    ngx_str_t                          deprecation_value; /* @1700000000 */
    ngx_str_t                          sunset_value;      /* HTTP-date */
    ngx_str_t                          link_value;        /* <..>; rel=.. */
    ngx_str_t                          gone_detail;       /* 410 detail */
} ngx_http_apipolicy_version_conf_t;

#define NGX_HTTP_APIPOLICY_VERSION_CURRENT     0
#define NGX_HTTP_APIPOLICY_VERSION_ANNOUNCED   1
#define NGX_HTTP_APIPOLICY_VERSION_DEPRECATED  2
#define NGX_HTTP_APIPOLICY_VERSION_SUNSET      3

typedef struct {
    ngx_http_apipolicy_version_conf_t *conf;        /* decided for */
    ngx_uint_t                         state;
} ngx_http_apipolicy_version_ctx_t;


/* ---- JWT (ngx_http_apipolicy_jwt*.c) --------------------------------- */

typedef struct ngx_http_apipolicy_jwt_conf_s  ngx_http_apipolicy_jwt_conf_t;
typedef struct ngx_http_apipolicy_jwt_ctx_s   ngx_http_apipolicy_jwt_ctx_t;
typedef struct ngx_http_apipolicy_jwks_s      ngx_http_apipolicy_jwks_t;

#define NGX_HTTP_APIPOLICY_JWT_OFF        0
#define NGX_HTTP_APIPOLICY_JWT_ON         1
#define NGX_HTTP_APIPOLICY_JWT_OPTIONAL   2

/* JWS algorithms, one bit each (RFC 7518, RFC 8037) */
#define NGX_HTTP_APIPOLICY_JWT_HS256      0x0001
#define NGX_HTTP_APIPOLICY_JWT_HS384      0x0002
#define NGX_HTTP_APIPOLICY_JWT_HS512      0x0004
#define NGX_HTTP_APIPOLICY_JWT_RS256      0x0008
#define NGX_HTTP_APIPOLICY_JWT_RS384      0x0010
#define NGX_HTTP_APIPOLICY_JWT_RS512      0x0020
#define NGX_HTTP_APIPOLICY_JWT_PS256      0x0040
#define NGX_HTTP_APIPOLICY_JWT_PS384      0x0080
#define NGX_HTTP_APIPOLICY_JWT_PS512      0x0100
#define NGX_HTTP_APIPOLICY_JWT_ES256      0x0200
#define NGX_HTTP_APIPOLICY_JWT_ES384      0x0400
#define NGX_HTTP_APIPOLICY_JWT_ES512      0x0800
#define NGX_HTTP_APIPOLICY_JWT_EDDSA      0x1000
#define NGX_HTTP_APIPOLICY_JWT_ED25519    0x2000  /* RFC 9864 */
#define NGX_HTTP_APIPOLICY_JWT_ALL        0x3fff
#define NGX_HTTP_APIPOLICY_JWT_NALGS      14

#define NGX_HTTP_APIPOLICY_JWT_KTY_OCT    1
#define NGX_HTTP_APIPOLICY_JWT_KTY_RSA    2
#define NGX_HTTP_APIPOLICY_JWT_KTY_EC     3
#define NGX_HTTP_APIPOLICY_JWT_KTY_OKP    4

/*
 * One verification key.  Keys come from apipolicy_jwt_key_file and
 * apipolicy_jwt_secret at configuration time, or from JWKS text parsed
 * at run time by ngx_http_apipolicy_jwt_jwks_parse(); the parsed key
 * (EVP_PKEY) or secret lives as long as the pool it was parsed on.
 */
typedef struct {
    ngx_str_t                          kid;       /* empty: none */
    ngx_uint_t                         kty;       /* ..._JWT_KTY_* */
    ngx_uint_t                         algs;      /* algorithms it may
                                                     verify: kty (and curve)
                                                     narrowed by its "alg" */
    void                              *pkey;      /* EVP_PKEY; NULL for oct */
    ngx_str_t                          secret;    /* oct */
    void                              *fast;      /* verification state
                                                     prepared at parse time
                                                     (jwt_key.c) */
    ngx_str_t                          issuer;    /* issuer=: verifies only
                                                     tokens of this "iss";
                                                     empty: any */
} ngx_http_apipolicy_jwt_key_t;

#define NGX_HTTP_APIPOLICY_JWT_OP_EQ        1
#define NGX_HTTP_APIPOLICY_JWT_OP_NE        2
#define NGX_HTTP_APIPOLICY_JWT_OP_IN        3
#define NGX_HTTP_APIPOLICY_JWT_OP_CONTAINS  4
#define NGX_HTTP_APIPOLICY_JWT_OP_GT        5
#define NGX_HTTP_APIPOLICY_JWT_OP_GE        6
#define NGX_HTTP_APIPOLICY_JWT_OP_LT        7
#define NGX_HTTP_APIPOLICY_JWT_OP_LE        8
#define NGX_HTTP_APIPOLICY_JWT_OP_EXISTS    9
#define NGX_HTTP_APIPOLICY_JWT_OP_ABSENT    10

typedef struct {
    ngx_str_t                          claim;     /* "a.b.c" as written */
    ngx_array_t                       *path;      /* ngx_str_t segments */
    ngx_uint_t                         op;
    ngx_array_t                       *values;    /* ngx_str_t */
    double                             number;    /* gt/ge/lt/le */
    ngx_uint_t                         status;    /* 401 or 403 */
    ngx_flag_t                         scope;     /* a "scope"/"scp" rule:
                                                     403 names the scope */
} ngx_http_apipolicy_jwt_rule_t;

struct ngx_http_apipolicy_jwt_conf_s {
    ngx_uint_t                         mode;      /* ..._JWT_OFF/ON/OPTIONAL */
    ngx_str_t                          realm;
    ngx_array_t                       *keys;      /* jwt_key_t: key files and
                                                     secrets; all-or-nothing
                                                     inheritance */
    ngx_uint_t                         algs;      /* allowlist bits */
    ngx_array_t                       *issuers;   /* ngx_str_t */
    ngx_array_t                       *audiences; /* ngx_str_t */
    ngx_array_t                       *typs;      /* ngx_str_t, lowercase */
    ngx_array_t                       *rules;     /* jwt_rule_t */
    ngx_http_complex_value_t          *token;     /* apipolicy_jwt_token */
    time_t                             leeway;
    size_t                             max_size;
    ngx_flag_t                         require_exp;
    ngx_flag_t                         typ_absent; /* typ may be absent */
    ngx_flag_t                         typ_any;    /* "apipolicy_jwt_typ off" */
    ngx_http_apipolicy_jwks_t         *jwks;      /* apipolicy_jwt_key_request,
                                                     or NULL */
    ngx_flag_t                         cache;     /* apipolicy_jwt_cache
                                                     on|off */
    u_char                             id[32];    /* identity of "keys" for
                                                     the verified-token
                                                     cache (merge time) */

    ngx_str_t                          file;      /* where "apipolicy_jwt" */
    ngx_uint_t                         line;      /* was set */
    unsigned                           merged:1;
    unsigned                           key_issuers:1; /* a key set has
                                                     issuer=: "iss" is read
                                                     before verifying */
};

/*
 * Per request.  Lives in the apipolicy context (never in a conf); the
 * jansson objects are released by ngx_http_apipolicy_jwt_cleanup() from
 * the context's request-pool cleanup.
 */
struct ngx_http_apipolicy_jwt_ctx_s {
    ngx_http_apipolicy_jwt_conf_t     *conf;      /* verified for */
    ngx_str_t                          token;
    ngx_str_t                          kid;
    ngx_uint_t                         alg;       /* one ..._JWT_* bit */
    ngx_str_t                          signing_input; /* header.payload */
    ngx_str_t                          signature; /* decoded */
    ngx_str_t                          payload;   /* base64url, undecoded */
    ngx_str_t                          iss;       /* read before verifying
                                                     when keys are bound to
                                                     issuers; else empty */
    struct ngx_http_apipolicy_json_s  *header;    /* JSON objects, in the */
    struct ngx_http_apipolicy_json_s  *claims;    /* request pool */
    u_char                             hash[32];  /* verified-token cache
                                                     entry key */
    void                              *fetch;     /* the JWKS fetch this
                                                     request started */
    ngx_uint_t                         cache_status;
    unsigned                           verified:1;
    unsigned                           anonymous:1; /* optional, no token */
    unsigned                           waiting:1; /* keys being fetched */
    unsigned                           fetched:1; /* waited for a fetch
                                                     once already */
};


/* ---- rate limiting (ngx_http_apipolicy_ratelimit.c) ----------------- */

typedef struct ngx_http_apipolicy_rl_zone_s  ngx_http_apipolicy_rl_zone_t;

/* apipolicy_ratelimit_tier NAME rate=N r/s|r/m|r/h|r/d [burst=N] */
typedef struct {
    ngx_str_t                          name;
    ngx_uint_t                         rate;      /* per window */
    ngx_uint_t                         burst;
    ngx_uint_t                         quota;     /* rate + burst */
    ngx_msec_t                         window;    /* 1s, 1m, 1h, 1d */
    ngx_str_t                          policy;    /* "name";q=..;w=.. */
} ngx_http_apipolicy_rl_tier_t;

/* apipolicy_ratelimit zone= key= [tier=] [cost=] [dry_run] */
typedef struct {
    ngx_http_apipolicy_rl_zone_t      *zone;
    ngx_http_complex_value_t           key;
    ngx_http_complex_value_t          *tier;      /* NULL: "default" */
    ngx_uint_t                         cost;
    ngx_flag_t                         dry_run;
} ngx_http_apipolicy_rl_limit_t;

#define NGX_HTTP_APIPOLICY_RL_HEADERS_IETF    0x01
#define NGX_HTTP_APIPOLICY_RL_HEADERS_LEGACY  0x02

#define NGX_HTTP_APIPOLICY_RL_MAX_LIMITS      8   /* per location */

#define NGX_HTTP_APIPOLICY_RL_PASSED          1
#define NGX_HTTP_APIPOLICY_RL_REJECTED        2
#define NGX_HTTP_APIPOLICY_RL_DRY_RUN         3   /* would have rejected */

/* one applied limit's outcome, for the response headers and the metrics */
typedef struct {
    ngx_http_apipolicy_rl_zone_t      *zone;
    ngx_http_apipolicy_rl_tier_t      *tier;
    ngx_uint_t                         status;    /* _RL_PASSED ... */
    ngx_uint_t                         remaining;
    ngx_uint_t                         reset;     /* s */
    ngx_str_t                          key;       /* "tier:key", for pk= */
} ngx_http_apipolicy_rl_result_t;

typedef struct {
    ngx_uint_t                         status;    /* _RL_PASSED ... */
    ngx_uint_t                         nresults;
    ngx_uint_t                         retry_after; /* s, when rejected */
    ngx_uint_t                         headers;   /* _RL_HEADERS_* */
    ngx_http_apipolicy_rl_result_t     results[NGX_HTTP_APIPOLICY_RL_MAX_LIMITS];
} ngx_http_apipolicy_rl_ctx_t;


/* ---- webhook signatures (ngx_http_apipolicy_webhook.c) -------------- */

typedef struct ngx_http_apipolicy_webhook_conf_s
    ngx_http_apipolicy_webhook_conf_t;

typedef struct {
    ngx_int_t                          status;    /* NGX_OK or the refusal */
    ngx_uint_t                         scheme;    /* for the metrics */
    u_char                             id[32];    /* delivery id, hashed */
    unsigned                           done:1;
    unsigned                           has_id:1;
    unsigned                           stored:1;
} ngx_http_apipolicy_webhook_ctx_t;


/* ---- Idempotency-Key (ngx_http_apipolicy_idempotency.c) ------------- */

typedef struct ngx_http_apipolicy_idem_conf_s  ngx_http_apipolicy_idem_conf_t;
typedef struct ngx_http_apipolicy_idem_ctx_s   ngx_http_apipolicy_idem_ctx_t;


/* ---- configuration --------------------------------------------------- */

typedef struct {
    ngx_flag_t                         used;      /* any apipolicy directive
                                                     in this http{} */
    ngx_shm_zone_t                    *jwt_cache; /* apipolicy_jwt_cache */
    ngx_array_t                       *rl_tiers;  /* rl_tier_t */
    ngx_array_t                       *rl_zones;  /* rl_zone_t * */
    struct ngx_http_apipolicy_redis_s *redis;     /* apipolicy_redis */
    struct ngx_http_apipolicy_redis_ssl_s *redis_ssl; /* ..._redis_ssl_* */
    ngx_array_t                       *webhook_zones; /* ngx_shm_zone_t * */
    ngx_array_t                       *idem_zones;    /* ngx_shm_zone_t * */
    ngx_flag_t                         idem_redis;    /* a zone has redis=on */
    ngx_shm_zone_t                    *status;    /* the counters */
    ngx_array_t                       *jwks;      /* jwks_t *: every
                                                     apipolicy_jwt_key_request,
                                                     checked at
                                                     postconfiguration and
                                                     shown by the metrics */
} ngx_http_apipolicy_main_conf_t;


typedef struct {
    ngx_uint_t                         phases;    /* NGX_HTTP_APIPOLICY_* */

    ngx_http_apipolicy_cors_conf_t     cors;
    ngx_http_apipolicy_version_conf_t  version;
    ngx_http_apipolicy_jwt_conf_t     *jwt;       /* NULL: no JWT directive
                                                     here or above */

    ngx_http_apipolicy_webhook_conf_t *webhook;   /* NULL: none or "off" */
    ngx_http_apipolicy_idem_conf_t    *idempotency; /* NULL: none or "off" */

    ngx_array_t                       *ratelimits; /* rl_limit_t */
    ngx_uint_t                         ratelimit_status;
    ngx_uint_t                         ratelimit_headers;

    ngx_uint_t                         status_format; /* apipolicy_status */
} ngx_http_apipolicy_loc_conf_t;


/* ---- per-request context --------------------------------------------- */

typedef struct {
    ngx_http_request_t                *request;

    /* the rejection this request got, if any */
    const ngx_http_apipolicy_problem_t *problem;
    ngx_uint_t                         problem_status;
    ngx_str_t                          problem_detail;
    unsigned                           problem_builtin:1; /* nginx's own page
                                                             will be sent */
    unsigned                           problem_body:1;    /* body filter
                                                             replaces it */
    unsigned                           problem_sent:1;
    ngx_buf_t                         *problem_buf;

    ngx_uint_t                         added;     /* NGX_HTTP_APIPOLICY_HDR_* */

    ngx_http_apipolicy_cors_ctx_t      cors;
    ngx_http_apipolicy_version_ctx_t   version;
    ngx_http_apipolicy_jwt_ctx_t      *jwt;
    ngx_http_apipolicy_rl_ctx_t       *rl;
    ngx_http_apipolicy_webhook_ctx_t  *webhook;
    ngx_http_apipolicy_idem_ctx_t     *idem;
} ngx_http_apipolicy_ctx_t;


extern ngx_module_t  ngx_http_apipolicy_module;


ngx_http_apipolicy_ctx_t *ngx_http_apipolicy_get_ctx(ngx_http_request_t *r);
ngx_http_apipolicy_ctx_t *ngx_http_apipolicy_create_ctx(
    ngx_http_request_t *r);


#endif /* _NGX_HTTP_APIPOLICY_H_INCLUDED_ */
