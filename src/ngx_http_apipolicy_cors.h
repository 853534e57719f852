
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_CORS_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_CORS_H_INCLUDED_


#include "ngx_http_apipolicy.h"


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
    ngx_uint_t                         expose_usual; /* HDR_* the location
                                                        adds to a usual
                                                        response */
    ngx_str_t                          expose_usual_value; /* and the
                                                        Expose-Headers then */
} ngx_http_apipolicy_cors_conf_t;

typedef struct {
    ngx_http_apipolicy_cors_conf_t    *conf;        /* decided for */
    ngx_str_t                          origin;      /* allowed Origin */
    ngx_str_t                          allow_headers;  /* preflight answer */
    ngx_uint_t                         owned;       /* Access-Control-*
                                                       names the gateway
                                                       answered, by bit */
    ngx_list_part_t                   *later_part;  /* where the response */
    ngx_uint_t                         later_i;     /* headers added after
                                                       its own begin */
    unsigned                           decided:1;
    unsigned                           filtered:1;  /* its headers written */
    unsigned                           has_origin:1; /* one or more sent */
    unsigned                           allowed:1;
    unsigned                           preflight:1;
    unsigned                           private_network:1;
    unsigned                           vary_origin:1; /* the upstream's Vary
                                                         names Origin */
} ngx_http_apipolicy_cors_ctx_t;



void ngx_http_apipolicy_cors_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf);
char *ngx_http_apipolicy_cors_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *prev,
    ngx_http_apipolicy_cors_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_cors_phases(
    ngx_http_apipolicy_cors_conf_t *conf);
char *ngx_http_apipolicy_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_cors_tokens(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_apipolicy_cors_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_cors_expose_usual(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf, ngx_uint_t added);
ngx_int_t ngx_http_apipolicy_cors_upstream_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
ngx_int_t ngx_http_apipolicy_cors_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);

/* origin matching, exposed for the unit tests */
ngx_int_t ngx_http_apipolicy_cors_parse_origin(ngx_pool_t *pool,
    ngx_str_t *value, ngx_http_apipolicy_cors_origin_t *o, char **err);
ngx_int_t ngx_http_apipolicy_cors_match(ngx_array_t *origins,
    ngx_str_t *origin);


/* what CORS decided, for the metrics */
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_NONE        0  /* not decided, or
                                                         no Origin */
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_PREFLIGHT   1  /* allowed preflight
                                                         answered */
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_ALLOWED     2
#define NGX_HTTP_APIPOLICY_CORS_OUTCOME_DISALLOWED  3

ngx_uint_t ngx_http_apipolicy_cors_outcome(ngx_http_apipolicy_ctx_t *ctx);

#endif /* _NGX_HTTP_APIPOLICY_CORS_H_INCLUDED_ */
