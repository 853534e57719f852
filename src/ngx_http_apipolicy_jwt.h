
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_


#include "ngx_http_apipolicy.h"


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

    /*
     * The policy's identity: the conf of the block whose JWT directives
     * this location follows (its own when it has any, else its parent's
     * policy).  A decision made under one policy holds in every location
     * of the same policy (an internal redirect), never in another.
     */
    ngx_http_apipolicy_jwt_conf_t     *policy;
    unsigned                           key_issuers:1; /* a key set has
                                                     issuer=: "iss" is read
                                                     before verifying */
};

/*
 * Per request.  Lives in the apipolicy context (never in a conf); the
 * parsed header and claims live in the request pool.
 */
/* a signature up to this long (base64url; HMAC, ECDSA) decoded early */
#define NGX_HTTP_APIPOLICY_JWT_SIG_EARLY    128

struct ngx_http_apipolicy_jwt_ctx_s {
    ngx_http_apipolicy_jwt_conf_t     *conf;      /* decided in; its
                                                     ->policy says where
                                                     the decision holds */
    ngx_str_t                          token;
    ngx_str_t                          kid;
    ngx_uint_t                         alg;       /* one ..._JWT_* bit */
    ngx_str_t                          signing_input; /* header.payload */
    ngx_str_t                          signature; /* decoded (into sig),
                                                     or its text until
                                                     verified
                                                     (signature_decoded) */
    ngx_str_t                          payload;   /* base64url, undecoded */
    ngx_str_t                          iss;       /* read before verifying
                                                     when keys are bound to
                                                     issuers; else empty */
    struct ngx_http_apipolicy_json_s  *header;    /* JSON objects, in the */
    struct ngx_http_apipolicy_json_s  *claims;    /* request pool */
    ngx_uint_t                         cache_status;
    unsigned                           verified:1;
    unsigned                           anonymous:1; /* optional, no token */
    unsigned                           waiting:1; /* keys being fetched */
    unsigned                           fetched:1; /* waited for a fetch
                                                     once already */
    unsigned                           signature_decoded:1;

    /* from here on written before read: not zeroed (..._JWT_CTX_ZEROED) */
    u_char                             hash[32];  /* verified-token cache
                                                     entry key */
    u_char                             sig[NGX_HTTP_APIPOLICY_JWT_SIG_EARLY
                                           / 4 * 3 + 3];
};

#define NGX_HTTP_APIPOLICY_JWT_CTX_ZEROED                                    \
    offsetof(ngx_http_apipolicy_jwt_ctx_t, hash)



/* directives (ngx_http_apipolicy_module.c, "JWT" block; jwt_conf.c) */
char *ngx_http_apipolicy_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_apipolicy_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_strings(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_require(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_typ(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* the conf of ngx_http_apipolicy_loc_conf_t: create, merge, phases */
void ngx_http_apipolicy_jwt_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *conf);
char *ngx_http_apipolicy_jwt_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *prev, ngx_http_apipolicy_jwt_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_jwt_phases(ngx_http_apipolicy_jwt_conf_t *conf);
void ngx_http_apipolicy_jwt_postconfiguration(ngx_conf_t *cf);

/*
 * The ACCESS step: NGX_OK (verified), NGX_DECLINED (not configured, or
 * "optional" without a token), 401/403 (refused, through
 * ngx_http_apipolicy_reject()).  Re-entrant: a second call for the same
 * policy returns the stored outcome, and NGX_AGAIN while ctx->jwt->waiting
 * is set (keys being fetched).
 */
ngx_int_t ngx_http_apipolicy_jwt_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);

ngx_int_t ngx_http_apipolicy_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_apipolicy_jwt_header_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_apipolicy_jwt_payload_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


/*
 * What the JWT step decided, for the metrics; *cache gets the token
 * cache's answer (0, or NGX_HTTP_APIPOLICY_JWT_CACHE_MISS / _HIT)
 */
#define NGX_HTTP_APIPOLICY_JWT_OUTCOME_NONE       0   /* no JWT step */
#define NGX_HTTP_APIPOLICY_JWT_OUTCOME_VERIFIED   1
#define NGX_HTTP_APIPOLICY_JWT_OUTCOME_ANONYMOUS  2   /* optional, no token */
#define NGX_HTTP_APIPOLICY_JWT_OUTCOME_OTHER      3   /* neither: refused, or
                                                        not decided */

ngx_uint_t ngx_http_apipolicy_jwt_outcome(ngx_http_apipolicy_ctx_t *ctx,
    ngx_uint_t *cache);

#endif /* _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_ */
