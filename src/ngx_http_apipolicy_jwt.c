
/*
 * Copyright (C) apipolicy authors
 *
 * JWT verification in the ACCESS phase (RFC 7519, RFC 7515, RFC 8725),
 * with RFC 6750 Bearer challenges.
 *
 *   token      Authorization: Bearer, and/or apipolicy_jwt_token $var
 *   decode     size and charset bounds, three segments, strict
 *              base64url, header JSON (duplicates refused, depth bound),
 *              alg/typ/crit/kid
 *   keys       the configured keys, and those fetched at run time
 *              (apipolicy_jwt_key_request): the handler returns NGX_AGAIN
 *              while the first set, or a set with an unknown kid, is
 *              fetched
 *   cache      a verified-token cache hit skips the signature check
 *   verify     key picked by kid, algorithm pinned to the key's type
 *              and "alg" and to the allowlist; EVP / HMAC
 *   claims     exp/nbf/iat with leeway, iss, aud, apipolicy_jwt_require
 *
 * Claims and header stay in the request context (ctx->jwt) for the
 * $jwt_claim_* and $jwt_header_* variables; configuration is never
 * written to while serving requests.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_jwt_key.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_jwks.h"
#include "ngx_http_apipolicy_crypto.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_util.h"

#include "ngx_http_apipolicy_json.h"


#define NGX_HTTP_APIPOLICY_JWT_MAX_DEPTH    16
#define NGX_HTTP_APIPOLICY_JWT_DETAIL_LEN   200


/* why a token was refused; indexes ngx_http_apipolicy_jwt_errors[] */
#define NGX_HTTP_APIPOLICY_JWT_E_OK         0
#define NGX_HTTP_APIPOLICY_JWT_E_MISSING    1
#define NGX_HTTP_APIPOLICY_JWT_E_MALFORMED  2
#define NGX_HTTP_APIPOLICY_JWT_E_AMBIGUOUS  3
#define NGX_HTTP_APIPOLICY_JWT_E_ALG        4
#define NGX_HTTP_APIPOLICY_JWT_E_TYPE       5
#define NGX_HTTP_APIPOLICY_JWT_E_KEY        6
#define NGX_HTTP_APIPOLICY_JWT_E_SIGNATURE  7
#define NGX_HTTP_APIPOLICY_JWT_E_EXPIRED    8
#define NGX_HTTP_APIPOLICY_JWT_E_NOT_YET    9
#define NGX_HTTP_APIPOLICY_JWT_E_ISSUER     10
#define NGX_HTTP_APIPOLICY_JWT_E_AUDIENCE   11
#define NGX_HTTP_APIPOLICY_JWT_E_CLAIM      12
#define NGX_HTTP_APIPOLICY_JWT_E_INTERNAL   13
#define NGX_HTTP_APIPOLICY_JWT_E_NO_KEYS    14


typedef struct {
    ngx_http_apipolicy_problem_t       problem;
    ngx_uint_t                         level;     /* log level */
    char                              *error;     /* RFC 6750 error code */
} ngx_http_apipolicy_jwt_error_t;


/* the key sets a token is verified with */
typedef struct {
    ngx_array_t                       *set[2];    /* configured, fetched */
    ngx_uint_t                         nsets;
    u_char                            *id;        /* room for an identity
                                                     covering both sets */
    u_char                            *idp;       /* the verified-token
                                                     cache identity */
    ngx_uint_t                         jwks_down; /* the fetched set is
                                                     missing */
} ngx_http_apipolicy_jwt_sets_t;


/*
 * What the checks read of a token's header.  Tokens of one issuer carry
 * the same header, so each worker keeps the last header segment it
 * parsed with these facts (copied): a token with that segment skips
 * decoding and parsing it again.  The header object itself is parsed
 * again only for the $jwt_header_* variables.
 */

#define NGX_HTTP_APIPOLICY_JWT_ABSENT  ((ngx_uint_t) -1)

typedef struct {
    ngx_uint_t                         type;      /* a JSON type, or
                                                     ..._JWT_ABSENT */
    ngx_str_t                          value;     /* a string's text */
} ngx_http_apipolicy_jwt_fact_t;

#define NGX_HTTP_APIPOLICY_JWT_H_ALG   0
#define NGX_HTTP_APIPOLICY_JWT_H_TYP   1
#define NGX_HTTP_APIPOLICY_JWT_H_KID   2

typedef struct {
    ngx_http_apipolicy_jwt_fact_t      fact[3];   /* alg, typ, kid */
    ngx_uint_t                         alg;       /* the alg string's
                                                     ..._JWT_* bit, 0: none
                                                     this module knows */
    ngx_uint_t                         crit;      /* present, not [] */
    ngx_array_t                       *typ_for;   /* the apipolicy_jwt_typ
                                                     list typ_ok was found
                                                     for, or NULL */
    ngx_uint_t                         typ_ok;
    ngx_uint_t                         memo;      /* these are the memo's
                                                     facts */
} ngx_http_apipolicy_jwt_header_t;

#define NGX_HTTP_APIPOLICY_JWT_MEMO_SEG  256
#define NGX_HTTP_APIPOLICY_JWT_MEMO_STR  128

typedef struct {
    size_t                             seg_len;   /* 0: empty */
    u_char                             seg[NGX_HTTP_APIPOLICY_JWT_MEMO_SEG];
    ngx_http_apipolicy_jwt_header_t    facts;
    u_char                             str[3][NGX_HTTP_APIPOLICY_JWT_MEMO_STR];
} ngx_http_apipolicy_jwt_memo_t;

static ngx_http_apipolicy_jwt_memo_t  ngx_http_apipolicy_jwt_memo;


static ngx_int_t ngx_http_apipolicy_jwt_start(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf);
static ngx_int_t ngx_http_apipolicy_jwt_token(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_jwt_key_sets(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_http_apipolicy_jwt_sets_t *sets, ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_jwt_signature(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_http_apipolicy_jwt_sets_t *sets, ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_jwt_extract(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_str_t *token, ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_jwt_bearer(ngx_str_t *value,
    ngx_str_t *token);
static ngx_uint_t ngx_http_apipolicy_jwt_decode(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_str_t *detail);
static ngx_uint_t ngx_http_apipolicy_jwt_split(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    u_char **dot, ngx_uint_t *hit, ngx_str_t *detail);
static ngx_uint_t ngx_http_apipolicy_jwt_signature_chars(
    ngx_http_request_t *r, ngx_http_apipolicy_jwt_ctx_t *jctx, u_char *dot,
    u_char *last);
static ngx_uint_t ngx_http_apipolicy_jwt_segments(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx, u_char **dot, ngx_uint_t hit,
    ngx_http_apipolicy_jwt_header_t **hdr, ngx_str_t *detail);
static void ngx_http_apipolicy_jwt_header_facts(
    ngx_http_apipolicy_json_t *header, ngx_http_apipolicy_jwt_header_t *hdr);
static ngx_uint_t ngx_http_apipolicy_jwt_memo_store(u_char *seg, size_t len,
    ngx_http_apipolicy_jwt_header_t *hdr);
static ngx_uint_t ngx_http_apipolicy_jwt_typ_check(
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_header_t *hdr);
static ngx_uint_t ngx_http_apipolicy_jwt_header_check(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_http_apipolicy_jwt_header_t *hdr, ngx_str_t *detail);
static ngx_uint_t ngx_http_apipolicy_jwt_typ_ok(
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_fact_t *f);
static ngx_uint_t ngx_http_apipolicy_jwt_case_eq(u_char *a, u_char *b,
    size_t len);
static ngx_http_apipolicy_json_t *ngx_http_apipolicy_jwt_header_object(
    ngx_http_request_t *r, ngx_http_apipolicy_jwt_ctx_t *jctx);
static ngx_int_t ngx_http_apipolicy_jwt_issuer(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx, ngx_str_t *detail);
static ngx_uint_t ngx_http_apipolicy_jwt_verify(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx, ngx_array_t **sets, ngx_uint_t nsets,
    ngx_str_t *detail);
static ngx_uint_t ngx_http_apipolicy_jwt_check_claims(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_str_t *detail, ngx_http_apipolicy_jwt_rule_t **failed);
static ngx_uint_t ngx_http_apipolicy_jwt_check_times(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_json_t *claims,
    ngx_str_t *detail);
static ngx_uint_t ngx_http_apipolicy_jwt_listed(ngx_array_t *list,
    ngx_str_t *str);
static ngx_uint_t ngx_http_apipolicy_jwt_check_iss_aud(
    ngx_http_request_t *r, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_http_apipolicy_json_t *claims, ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_jwt_rule(
    ngx_http_apipolicy_jwt_rule_t *rule, ngx_http_apipolicy_json_t *claims);
static void ngx_http_apipolicy_jwt_keys_scan(
    ngx_http_apipolicy_jwt_ctx_t *jctx, ngx_array_t **sets, ngx_uint_t nsets,
    ngx_uint_t *bound, ngx_uint_t *named);
static ngx_int_t ngx_http_apipolicy_jwt_scope(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_apipolicy_jwt_rule_t *rule, ngx_str_t *scope);
static ngx_uint_t ngx_http_apipolicy_jwt_contains(
    ngx_http_apipolicy_json_t *v, ngx_str_t *want);
static ngx_int_t ngx_http_apipolicy_jwt_scalar_eq(
    ngx_http_apipolicy_json_t *j, ngx_str_t *s);
static ngx_http_apipolicy_json_t *ngx_http_apipolicy_jwt_json(
    ngx_http_request_t *r, u_char *data, size_t len, const char *what,
    ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_jwt_fail(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_uint_t err, ngx_uint_t status, ngx_str_t *detail,
    ngx_http_apipolicy_jwt_rule_t *rule);
static void ngx_http_apipolicy_jwt_detail(ngx_http_request_t *r,
    ngx_str_t *detail, const char *fmt, ...);
static ngx_int_t ngx_http_apipolicy_jwt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data, size_t prefix,
    ngx_uint_t what);
static ngx_http_apipolicy_json_t *ngx_http_apipolicy_jwt_lookup(
    ngx_http_apipolicy_json_t *obj, u_char *name, size_t len);
static ngx_http_apipolicy_json_t *ngx_http_apipolicy_jwt_member(
    ngx_http_apipolicy_json_t *obj, u_char *name, size_t len);
static ngx_int_t ngx_http_apipolicy_jwt_format_array(ngx_pool_t *pool,
    ngx_http_apipolicy_json_t *j, ngx_str_t *out);
static ngx_int_t ngx_http_apipolicy_jwt_format(ngx_pool_t *pool,
    ngx_http_apipolicy_json_t *j, ngx_str_t *out);


static ngx_http_apipolicy_jwt_error_t  ngx_http_apipolicy_jwt_errors[] = {
    { ngx_http_apipolicy_problem("OK", "ok", "OK"), 0, NULL },

    { ngx_http_apipolicy_problem("TOKEN_MISSING", "token-missing",
                                 "Bearer token required"),
      NGX_LOG_INFO, NULL },

    { ngx_http_apipolicy_problem("TOKEN_MALFORMED", "token-malformed",
                                 "Malformed token"),
      NGX_LOG_INFO, "invalid_token" },

    /* RFC 6750 sections 2 and 3.1: one method per request, else 400 */
    { ngx_http_apipolicy_problem("TOKEN_AMBIGUOUS", "token-ambiguous",
                                 "Token sent by more than one method"),
      NGX_LOG_INFO, "invalid_request" },

    { ngx_http_apipolicy_problem("ALGORITHM_NOT_ALLOWED",
                                 "algorithm-not-allowed",
                                 "Token algorithm not allowed"),
      NGX_LOG_ERR, "invalid_token" },

    { ngx_http_apipolicy_problem("TOKEN_TYPE_REJECTED", "token-type-rejected",
                                 "Token type not accepted"),
      NGX_LOG_ERR, "invalid_token" },

    { ngx_http_apipolicy_problem("KEY_NOT_FOUND", "key-not-found",
                                 "No key for this token"),
      NGX_LOG_ERR, "invalid_token" },

    { ngx_http_apipolicy_problem("SIGNATURE_INVALID", "signature-invalid",
                                 "Token signature invalid"),
      NGX_LOG_ERR, "invalid_token" },

    { ngx_http_apipolicy_problem("TOKEN_EXPIRED", "token-expired",
                                 "Token expired"),
      NGX_LOG_INFO, "invalid_token" },

    { ngx_http_apipolicy_problem("TOKEN_NOT_YET_VALID", "token-not-yet-valid",
                                 "Token not yet valid"),
      NGX_LOG_INFO, "invalid_token" },

    { ngx_http_apipolicy_problem("ISSUER_REJECTED", "issuer-rejected",
                                 "Token issuer not accepted"),
      NGX_LOG_ERR, "invalid_token" },

    { ngx_http_apipolicy_problem("AUDIENCE_REJECTED", "audience-rejected",
                                 "Token audience not accepted"),
      NGX_LOG_ERR, "invalid_token" },

    { ngx_http_apipolicy_problem("CLAIM_REJECTED", "claim-rejected",
                                 "Token claim rejected"),
      NGX_LOG_ERR, "invalid_token" },

    { ngx_http_apipolicy_problem("INTERNAL_ERROR", "internal-error",
                                 "Internal error"),
      NGX_LOG_ALERT, NULL },

    { ngx_http_apipolicy_problem("KEYS_UNAVAILABLE", "keys-unavailable",
                                 "Verification keys unavailable"),
      NGX_LOG_ERR, "invalid_token" }
};


/* ---- the ACCESS step ------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_jwt_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    u_char                          id[32];
    ngx_int_t                       rc;
    ngx_str_t                       detail;
    ngx_uint_t                      err;
    ngx_http_apipolicy_jwt_ctx_t   *jctx;
    ngx_http_apipolicy_jwt_conf_t  *jcf;
    ngx_http_apipolicy_jwt_rule_t  *rule;
    ngx_http_apipolicy_jwt_sets_t   sets;

    jcf = &alcf->jwt;

    if (jcf->mode == NGX_HTTP_APIPOLICY_JWT_OFF) {
        return NGX_DECLINED;
    }

    rc = ngx_http_apipolicy_jwt_start(r, ctx, jcf);
    if (rc != NGX_DONE) {
        return rc;
    }

    jctx = ctx->jwt;
    ngx_str_null(&detail);

    rc = ngx_http_apipolicy_jwt_token(r, ctx, jcf, &detail);
    if (rc != NGX_DONE) {
        return rc;
    }

    sets.id = id;

    rc = ngx_http_apipolicy_jwt_key_sets(r, ctx, jcf, &sets, &detail);
    if (rc != NGX_DONE) {
        return rc;
    }

    /* the verified-token cache, when on (checked here, without a call) */

    if (jcf->cache) {
        rc = ngx_http_apipolicy_jwt_cache_check(r, jcf, jctx, sets.idp);

    } else {
        jctx->cache_status = NGX_HTTP_APIPOLICY_JWT_CACHE_NONE;
        rc = NGX_DECLINED;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        rc = ngx_http_apipolicy_jwt_signature(r, ctx, jcf, &sets, &detail);
        if (rc != NGX_DONE) {
            return rc;
        }
    }

    if (jctx->claims == NULL) {
        jctx->claims = ngx_http_apipolicy_jwt_json(r, jctx->payload.data,
                                                   jctx->payload.len,
                                                   "payload", &detail);
    }

    if (jctx->claims == NULL) {
        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf,
                                           NGX_HTTP_APIPOLICY_JWT_E_MALFORMED,
                                           0, &detail, NULL);
    }

    rule = NULL;

    err = ngx_http_apipolicy_jwt_check_claims(r, jcf, jctx, &detail, &rule);
    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf, err,
                                           rule ? rule->status : 0,
                                           &detail, rule);
    }

    if (jctx->cache_status == NGX_HTTP_APIPOLICY_JWT_CACHE_MISS) {
        ngx_http_apipolicy_jwt_cache_update(r, jctx);
    }

    jctx->verified = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy jwt: verified, alg %V",
                   ngx_http_apipolicy_jwt_alg_name(jctx->alg));

    return NGX_OK;
}


/*
 * The request's JWT state: NGX_DONE to decide (again), or what the
 * handler returns (a decision already made, a key fetch under way).
 */

static ngx_int_t
ngx_http_apipolicy_jwt_start(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf)
{
    ngx_uint_t                     fetched;
    ngx_http_apipolicy_jwt_ctx_t  *jctx;

    jctx = ctx->jwt;

    /* decided before this internal redirect, under the same policy */

    if (jctx && jctx->conf && jctx->conf->policy == jcf->policy) {

        if (jctx->waiting) {
            return NGX_AGAIN;
        }

        if (jctx->verified) {
            return NGX_OK;
        }

        if (jctx->anonymous) {
            return NGX_DECLINED;
        }

        /* refused before: decide again, the response may be a new one */
    }

    if (jctx == NULL) {
        jctx = ngx_palloc(r->pool, sizeof(ngx_http_apipolicy_jwt_ctx_t));
        if (jctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_apipolicy_memzero(jctx, NGX_HTTP_APIPOLICY_JWT_CTX_ZEROED);

        ctx->jwt = jctx;

    } else {
        /* a request waits for a key fetch once, whatever comes after */
        fetched = jctx->fetched;

        ngx_http_apipolicy_memzero(jctx, NGX_HTTP_APIPOLICY_JWT_CTX_ZEROED);

        jctx->fetched = fetched;
    }

    jctx->conf = jcf;

    return NGX_DONE;
}


/* the token found and decoded: NGX_DONE, else what the handler returns */

static ngx_int_t
ngx_http_apipolicy_jwt_token(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_str_t *detail)
{
    ngx_int_t                      rc;
    ngx_uint_t                     err;
    ngx_http_apipolicy_jwt_ctx_t  *jctx;

    jctx = ctx->jwt;

    rc = ngx_http_apipolicy_jwt_extract(r, jcf, &jctx->token, detail);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {

        if (jcf->mode == NGX_HTTP_APIPOLICY_JWT_OPTIONAL) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "apipolicy jwt: no token, optional");
            jctx->anonymous = 1;
            return NGX_DECLINED;
        }

        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf,
                                           NGX_HTTP_APIPOLICY_JWT_E_MISSING,
                                           0, detail, NULL);
    }

    if (rc != NGX_OK) {
        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf, (ngx_uint_t) rc, 0,
                                           detail, NULL);
    }

    err = ngx_http_apipolicy_jwt_decode(r, jcf, jctx, detail);
    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf, err, 0, detail, NULL);
    }

    return NGX_DONE;
}


/*
 * The keys: configured ones first, then those fetched at run time, and
 * the verified-token cache identity covering both; with keys bound to
 * issuers, the token's "iss".  NGX_DONE, else what the handler returns.
 */

static ngx_int_t
ngx_http_apipolicy_jwt_key_sets(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_http_apipolicy_jwt_sets_t *sets, ngx_str_t *detail)
{
    ngx_int_t                      rc;
    ngx_str_t                      sid;
    ngx_array_t                   *fetched_keys;
    ngx_http_apipolicy_jwt_ctx_t  *jctx;

    jctx = ctx->jwt;

    sets->nsets = 0;
    sets->jwks_down = 0;
    sets->idp = jcf->id;

    if (jcf->keys && jcf->keys->nelts) {
        sets->set[sets->nsets++] = jcf->keys;
    }

    if (jcf->jwks) {
        rc = ngx_http_apipolicy_jwks_keys(r, jcf, jctx, &fetched_keys,
                                          sets->id);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_OK) {
            sets->set[sets->nsets++] = fetched_keys;

            /* the cache identity covers both sets */

            sid.data = sets->id;
            sid.len = 32;

            if (ngx_http_apipolicy_jwt_cache_id(NULL, jcf->id, &sid, sets->id)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            sets->idp = sets->id;

        } else if (sets->nsets == 0) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the keys could not be fetched");
            return ngx_http_apipolicy_jwt_fail(r, ctx, jcf,
                                             NGX_HTTP_APIPOLICY_JWT_E_NO_KEYS,
                                             0, detail, NULL);

        } else {
            sets->jwks_down = 1;
        }
    }

    if (jcf->key_issuers
        && ngx_http_apipolicy_jwt_issuer(r, jctx, detail) != NGX_OK)
    {
        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf,
                                           NGX_HTTP_APIPOLICY_JWT_E_MALFORMED,
                                           0, detail, NULL);
    }

    return NGX_DONE;
}


/*
 * The signature checked (no verified-token cache hit): decoded, verified
 * with the keys that may verify it, and on a kid the keys lack the set
 * fetched again.  NGX_DONE, else what the handler returns.
 */

static ngx_int_t
ngx_http_apipolicy_jwt_signature(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_http_apipolicy_jwt_sets_t *sets, ngx_str_t *detail)
{
    ngx_int_t                      rc;
    ngx_uint_t                     err;
    ngx_http_apipolicy_jwt_ctx_t  *jctx;

    jctx = ctx->jwt;

    if (!jctx->signature_decoded
        && ngx_http_apipolicy_crypto_base64url_decode(r->pool,
                                                      jctx->signature.data,
                                                      jctx->signature.len,
                                                      &jctx->signature)
           != NGX_OK)
    {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the signature is not base64url");
        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf,
                                           NGX_HTTP_APIPOLICY_JWT_E_MALFORMED,
                                           0, detail, NULL);
    }

    err = ngx_http_apipolicy_jwt_verify(r, jctx, sets->set, sets->nsets,
                                        detail);

    if (err == NGX_HTTP_APIPOLICY_JWT_E_KEY && jcf->jwks && jctx->kid.len) {

        /* a kid the keys lack: the provider may have rotated them */

        rc = ngx_http_apipolicy_jwks_unknown_kid(r, jcf, jctx);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if ((err == NGX_HTTP_APIPOLICY_JWT_E_ISSUER
         || err == NGX_HTTP_APIPOLICY_JWT_E_KEY)
        && sets->jwks_down
        && ngx_http_apipolicy_jwks_issuer(jcf->jwks)->len
        && ngx_http_apipolicy_jwt_key_for_issuer(
               ngx_http_apipolicy_jwks_issuer(jcf->jwks), &jctx->iss))
    {
        /* the token's issuer's keys are the fetched ones, and missing */

        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the keys could not be fetched");
        err = NGX_HTTP_APIPOLICY_JWT_E_NO_KEYS;
    }

    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        return ngx_http_apipolicy_jwt_fail(r, ctx, jcf, err, 0, detail,
                                           NULL);
    }

    return NGX_DONE;
}


/*
 * NGX_OK with the token, NGX_DECLINED without one, or an error index
 * (malformed bearer credentials, a token sent by two methods).
 */

static ngx_int_t
ngx_http_apipolicy_jwt_extract(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_str_t *token, ngx_str_t *detail)
{
    ngx_str_t         value, bearer, var;
    ngx_int_t         rc;
    ngx_uint_t        count;
    ngx_table_elt_t  *h;

    ngx_str_null(&bearer);
    ngx_str_null(&var);

    /*
     * nginx keeps the Authorization header in headers_in; 1.22 answers a
     * second one with 400 itself, later versions chain them
     */

    h = r->headers_in.authorization;
    count = (h != NULL);

#if (nginx_version >= 1023000)
    if (h && h->next) {
        count = 2;
    }
#endif

    if (count > 1) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                   "several Authorization headers were sent");
        return NGX_HTTP_APIPOLICY_JWT_E_AMBIGUOUS;
    }

    if (h) {
        rc = ngx_http_apipolicy_jwt_bearer(&h->value, &bearer);

        if (rc == NGX_ERROR) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the Bearer credentials are empty");
            return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
        }
    }

    if (jcf->token) {
        if (ngx_http_complex_value(r, jcf->token, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        if (value.len) {
            /* "Bearer " in front is accepted, as in Authorization */
            if (ngx_http_apipolicy_jwt_bearer(&value, &var) != NGX_OK) {
                var = value;
            }
        }
    }

    if (var.len && bearer.len) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                      "a token was sent both in the Authorization header "
                      "and by another method");
        return NGX_HTTP_APIPOLICY_JWT_E_AMBIGUOUS;
    }

    *token = var.len ? var : bearer;

    if (token->len == 0) {
        if (h && !bearer.len) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                               "the Authorization header is not a Bearer one");
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* NGX_OK: a Bearer token; NGX_DECLINED: another scheme; NGX_ERROR: empty */

static ngx_int_t
ngx_http_apipolicy_jwt_bearer(ngx_str_t *value, ngx_str_t *token)
{
    u_char    *p, *last;
#if (NGX_HAVE_LITTLE_ENDIAN)
    uint64_t   w;
#endif

    p = value->data;
    last = p + value->len;

#if (NGX_HAVE_LITTLE_ENDIAN)

    /*
     * "Bearer", in any case, and a space, first thing (most values): the
     * six letters with bit 0x20 set in one load, little-endian
     */

    if (last - p >= 8) {
        ngx_memcpy(&w, p, 8);

        if (((w | 0x202020202020) & 0xffffffffffff) == 0x726572616562
            && p[6] == ' ')
        {
            p += 7;
            goto scheme;
        }
    }

#endif

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    /* "bearer" in any case, compared inline (ASCII letters: | 0x20) */

    if (last - p < 6
        || (p[0] | 0x20) != 'b' || (p[1] | 0x20) != 'e'
        || (p[2] | 0x20) != 'a' || (p[3] | 0x20) != 'r'
        || (p[4] | 0x20) != 'e' || (p[5] | 0x20) != 'r')
    {
        return NGX_DECLINED;
    }

    p += 6;

    if (p < last && *p != ' ' && *p != '\t') {
        return NGX_DECLINED;                /* "Bearerx" */
    }

#if (NGX_HAVE_LITTLE_ENDIAN)
scheme:
#endif

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    if (p == last) {
        return NGX_ERROR;
    }

    token->data = p;
    token->len = last - p;

    return NGX_OK;
}


/* only base64url characters (and dots) from p to last */

static ngx_uint_t
ngx_http_apipolicy_jwt_b64u_only(u_char *p, u_char *last)
{
    for ( /* void */ ; p < last; p++) {
        if (ngx_http_apipolicy_crypto_b64u[*p] == 0xff && *p != '.') {
            return 0;
        }
    }

    return 1;
}


static ngx_uint_t
ngx_http_apipolicy_jwt_decode(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_str_t *detail)
{
    u_char                           *dot[2];
    ngx_uint_t                        err, hit;
    ngx_http_apipolicy_jwt_header_t   parsed, *hdr;

    err = ngx_http_apipolicy_jwt_split(r, jcf, jctx, dot, &hit, detail);
    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        return err;
    }

    /* the facts of a header as the memo's are the memo's, not a copy */

    hdr = &parsed;

    err = ngx_http_apipolicy_jwt_segments(r, jctx, dot, hit, &hdr, detail);
    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        return err;
    }

    return ngx_http_apipolicy_jwt_header_check(r, jcf, jctx, hdr, detail);
}


/* size bounds, three segments, the signature's characters */

static ngx_uint_t
ngx_http_apipolicy_jwt_split(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    u_char **dot, ngx_uint_t *hit, ngx_str_t *detail)
{
    u_char                         *p, *last, *s;
    size_t                          len;
    ngx_uint_t                      dots;
    ngx_http_apipolicy_jwt_memo_t  *memo;

    p = jctx->token.data;
    last = p + jctx->token.len;

    if (jctx->token.len > jcf->max_size) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the token is longer than %uz bytes",
                                      jcf->max_size);
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    /*
     * The dots are found first; the characters are checked where the
     * segments are decoded, in an order that gives a token with a
     * character outside base64url the same answer as checking them all
     * first.  The signature's are checked here: a short one (HMAC,
     * ECDSA) is decoded here too, which checks them at about the same
     * cost; a long one (RSA) is decoded only when it is verified (not on
     * a verified-token cache hit).  A signature of base64url characters
     * that does not decode (its length, its last character's unused
     * bits) is refused where it is verified, either way.
     */

    /*
     * the first two dots: a third one is refused with the signature.  A
     * header as the memo's (most tokens a gateway sees share one) ends at
     * the first dot: the memo's segment has none.
     */

    memo = &ngx_http_apipolicy_jwt_memo;
    len = memo->seg_len;

    *hit = (len && len < jctx->token.len && p[len] == '.'
            && ngx_memcmp(memo->seg, p, len) == 0);

    dots = 0;

    if (*hit) {
        dot[dots++] = p + len;
    }

    for (s = dots ? dot[0] + 1 : p; dots < 2; s++) {
        s = memchr(s, '.', last - s);

        if (s == NULL) {
            break;
        }

        dot[dots++] = s;
    }

    if (dots != 2 || !ngx_http_apipolicy_jwt_signature_chars(r, jctx, dot[1],
                                                              last))
    {
        /* the dots counted (up to five) for the answer */

        dots = 0;

        for (s = p; dots < 5; s++) {
            s = memchr(s, '.', last - s);

            if (s == NULL) {
                break;
            }

            dots++;
        }

        if (!ngx_http_apipolicy_jwt_b64u_only(p, last)) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                         "the token has characters outside base64url");
            return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
        }

        if (dots == 4) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                         "encrypted tokens (JWE) are not supported");
            return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
        }

        ngx_http_apipolicy_jwt_detail(r, detail,
                         "the token does not have three segments");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    jctx->signing_input.data = p;
    jctx->signing_input.len = dot[1] - p;

    return NGX_HTTP_APIPOLICY_JWT_E_OK;
}


/*
 * 1 when the signature (after the second dot) has only base64url
 * characters; a short one is decoded (jctx->signature_decoded), else
 * jctx->signature is its text
 */

static ngx_uint_t
ngx_http_apipolicy_jwt_signature_chars(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx, u_char *dot, u_char *last)
{
    u_char     *p;
    ngx_str_t   sig;

    p = dot + 1;

    jctx->signature.data = p;
    jctx->signature.len = last - p;

    if (last - p > NGX_HTTP_APIPOLICY_JWT_SIG_EARLY) {
        return ngx_http_apipolicy_crypto_base64url_valid(p, last - p);
    }

    if (ngx_http_apipolicy_crypto_base64url_decode_to(jctx->sig, p, last - p,
                                                      &sig)
        == NGX_OK)
    {
        jctx->signature = sig;
        jctx->signature_decoded = 1;
        return 1;
    }

    return ngx_http_apipolicy_crypto_base64url_valid(p, last - p);
}


/*
 * header and payload decoded, the header parsed (or its facts found in
 * the memo: *hdr points there); the signature's bounds
 */

static ngx_uint_t
ngx_http_apipolicy_jwt_segments(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx, u_char **dot, ngx_uint_t hit,
    ngx_http_apipolicy_jwt_header_t **hdr, ngx_str_t *detail)
{
    u_char                         *p, *last;
    size_t                          len;
    ngx_int_t                       hrc, prc;
    ngx_str_t                       decoded;
    ngx_http_apipolicy_jwt_memo_t  *memo;

    p = jctx->token.data;
    last = p + jctx->token.len;
    len = dot[0] - p;

    memo = &ngx_http_apipolicy_jwt_memo;

    hrc = hit ? NGX_OK
              : ngx_http_apipolicy_crypto_base64url_decode(r->pool, p, len,
                                                           &decoded);

    prc = ngx_http_apipolicy_crypto_base64url_decode(r->pool, dot[0] + 1,
                                                     dot[1] - dot[0] - 1,
                                                     &jctx->payload);

    if ((hrc != NGX_OK || prc != NGX_OK)
        && !ngx_http_apipolicy_jwt_b64u_only(p, dot[1]))
    {
        ngx_http_apipolicy_jwt_detail(r, detail,
                         "the token has characters outside base64url");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    if (hrc != NGX_OK) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the header is not base64url");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    if (hit) {
        *hdr = &memo->facts;

    } else {
        jctx->header = ngx_http_apipolicy_jwt_json(r, decoded.data,
                                                   decoded.len, "header",
                                                   detail);
        if (jctx->header == NULL) {
            return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
        }

        ngx_http_apipolicy_jwt_header_facts(jctx->header, *hdr);
        (*hdr)->memo = ngx_http_apipolicy_jwt_memo_store(p, len, *hdr);
    }

    /* payload: only checked for syntax here, parsed once verified */

    if (prc != NGX_OK || jctx->payload.len == 0) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the payload is not base64url");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    /* signature */

    p = dot[1] + 1;

    if (p == last) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the token has no signature");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    /* jctx->signature: ngx_http_apipolicy_jwt_signature_chars() */

    if ((last - p) % 4 == 1) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the signature is not base64url");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    return NGX_HTTP_APIPOLICY_JWT_E_OK;
}


static void
ngx_http_apipolicy_jwt_header_facts(ngx_http_apipolicy_json_t *header,
    ngx_http_apipolicy_jwt_header_t *hdr)
{
    ngx_uint_t                      i;
    ngx_http_apipolicy_json_t      *v;
    ngx_http_apipolicy_jwt_fact_t  *f;
    static u_char                  *names[3] = {
        (u_char *) "alg", (u_char *) "typ", (u_char *) "kid"
    };

    for (i = 0; i < 3; i++) {
        v = ngx_http_apipolicy_json_get(header, names[i], 3);
        f = &hdr->fact[i];

        f->type = v ? v->type : NGX_HTTP_APIPOLICY_JWT_ABSENT;

        if (v && v->type == NGX_HTTP_APIPOLICY_JSON_STRING) {
            f->value = v->value;

        } else {
            ngx_str_null(&f->value);
        }
    }

    f = &hdr->fact[NGX_HTTP_APIPOLICY_JWT_H_ALG];

    hdr->alg = (f->type == NGX_HTTP_APIPOLICY_JSON_STRING)
               ? ngx_http_apipolicy_jwt_alg_parse(f->value.data, f->value.len)
               : 0;

    v = ngx_http_apipolicy_json_get_literal(header, "crit");

    hdr->crit = (v && !(v->type == NGX_HTTP_APIPOLICY_JSON_ARRAY
                        && v->count == 0));

    hdr->typ_for = NULL;
    hdr->memo = 0;
}


/* the header segment and its facts kept for the next token (when short) */

static ngx_uint_t
ngx_http_apipolicy_jwt_memo_store(u_char *seg, size_t len,
    ngx_http_apipolicy_jwt_header_t *hdr)
{
    ngx_uint_t                      i;
    ngx_http_apipolicy_jwt_memo_t  *memo;

    memo = &ngx_http_apipolicy_jwt_memo;
    memo->seg_len = 0;

    if (len > NGX_HTTP_APIPOLICY_JWT_MEMO_SEG) {
        return 0;
    }

    for (i = 0; i < 3; i++) {
        if (hdr->fact[i].value.len > NGX_HTTP_APIPOLICY_JWT_MEMO_STR) {
            return 0;
        }
    }

    memo->facts = *hdr;
    memo->facts.typ_for = NULL;
    memo->facts.memo = 1;

    for (i = 0; i < 3; i++) {
        memo->facts.fact[i].value.data = memo->str[i];
        ngx_memcpy(memo->str[i], hdr->fact[i].value.data,
                   hdr->fact[i].value.len);
    }

    ngx_memcpy(memo->seg, seg, len);
    memo->seg_len = len;

    return 1;
}


/*
 * A new configuration may put a typ list where an old one was: the memo
 * (and the typ verdict it keeps) starts empty with each
 */

void
ngx_http_apipolicy_jwt_postconfiguration(ngx_conf_t *cf)
{
    ngx_memzero(&ngx_http_apipolicy_jwt_memo,
                sizeof(ngx_http_apipolicy_jwt_memo_t));
}


/*
 * alg, crit, typ and kid of the header; the kid is copied to the request
 * (the facts may be the memo's, which the next token replaces)
 */

static ngx_uint_t
ngx_http_apipolicy_jwt_header_check(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_http_apipolicy_jwt_header_t *hdr, ngx_str_t *detail)
{
    u_char                         *s;
    size_t                          len;
    ngx_uint_t                      alg;
    ngx_http_apipolicy_jwt_fact_t  *f;

    /* alg (RFC 8725 section 3.1) */

    f = &hdr->fact[NGX_HTTP_APIPOLICY_JWT_H_ALG];

    if (f->type != NGX_HTTP_APIPOLICY_JSON_STRING) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the header has no alg string");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    s = f->value.data;
    len = f->value.len;

    if (len == 4 && ngx_strncasecmp((u_char *) s, (u_char *) "none", 4) == 0)
    {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "unsigned tokens (alg none) are refused");
        return NGX_HTTP_APIPOLICY_JWT_E_ALG;
    }

    alg = hdr->alg;                 /* parsed with the header */

    if (alg == 0) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the token's algorithm is not supported");
        return NGX_HTTP_APIPOLICY_JWT_E_ALG;
    }

    jctx->alg = alg;

    if (!(jcf->algs & alg)) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "algorithm %V is not allowed here",
                                      ngx_http_apipolicy_jwt_alg_name(alg));
        return NGX_HTTP_APIPOLICY_JWT_E_ALG;
    }

    /* crit (RFC 7515 section 4.1.11): no extension is understood */

    if (hdr->crit) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                         "the header lists critical extensions (crit) "
                         "this gateway does not understand");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    /* typ (RFC 8725 section 3.11) */

    f = &hdr->fact[NGX_HTTP_APIPOLICY_JWT_H_TYP];

    if (f->type != NGX_HTTP_APIPOLICY_JWT_ABSENT
        && f->type != NGX_HTTP_APIPOLICY_JSON_STRING)
    {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the header's typ is not a string");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    if (!jcf->typ_any && !ngx_http_apipolicy_jwt_typ_check(jcf, hdr)) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                f->type == NGX_HTTP_APIPOLICY_JSON_STRING
                ? "the token type (typ) is not accepted here"
                : "the token has no type (typ) and one is required");
        return NGX_HTTP_APIPOLICY_JWT_E_TYPE;
    }

    /* kid */

    f = &hdr->fact[NGX_HTTP_APIPOLICY_JWT_H_KID];

    if (f->type == NGX_HTTP_APIPOLICY_JWT_ABSENT) {
        return NGX_HTTP_APIPOLICY_JWT_E_OK;
    }

    if (f->type != NGX_HTTP_APIPOLICY_JSON_STRING) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the header's kid is not a string");
        return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
    }

    jctx->kid.data = ngx_pnalloc(r->pool, f->value.len);
    if (jctx->kid.data == NULL && f->value.len) {
        return NGX_HTTP_APIPOLICY_JWT_E_INTERNAL;
    }

    ngx_memcpy(jctx->kid.data, f->value.data, f->value.len);
    jctx->kid.len = f->value.len;

    return NGX_HTTP_APIPOLICY_JWT_E_OK;
}


/*
 * the typ verdict for this location's list: the memo keeps the last one,
 * as most tokens share a header and most locations a list
 */

static ngx_uint_t
ngx_http_apipolicy_jwt_typ_check(ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_http_apipolicy_jwt_header_t *hdr)
{
    ngx_uint_t  ok;

    if (hdr->typ_for == jcf->typs) {
        return hdr->typ_ok;
    }

    ok = ngx_http_apipolicy_jwt_typ_ok(jcf,
                                   &hdr->fact[NGX_HTTP_APIPOLICY_JWT_H_TYP]);

    if (hdr->memo) {
        ngx_http_apipolicy_jwt_memo.facts.typ_for = jcf->typs;
        ngx_http_apipolicy_jwt_memo.facts.typ_ok = ok;
    }

    return ok;
}


/* the typ (a string, or absent) is one of apipolicy_jwt_typ's */

static ngx_uint_t
ngx_http_apipolicy_jwt_typ_ok(ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_http_apipolicy_jwt_fact_t *f)
{
    u_char     *s;
    size_t      i, len;
    ngx_str_t  *typ;

    if (f->type == NGX_HTTP_APIPOLICY_JWT_ABSENT) {
        return jcf->typ_absent;
    }

    s = f->value.data;
    len = f->value.len;

    if (len > 12 && ngx_strncasecmp(s, (u_char *) "application/", 12) == 0) {
        s += 12;
        len -= 12;
    }

    typ = jcf->typs->elts;

    for (i = 0; i < jcf->typs->nelts; i++) {
        if (typ[i].len == len
            && ngx_http_apipolicy_jwt_case_eq(typ[i].data, s, len))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * ASCII letters compared without case, inline (a "typ" is a few
 * characters): two bytes differing only in bit 0x20 are equal when they
 * are letters
 */

static ngx_uint_t
ngx_http_apipolicy_jwt_case_eq(u_char *a, u_char *b, size_t len)
{
    u_char  c;
    size_t  i;

    /* the common case first: the same bytes, case and all */

    for (i = 0; i < len && a[i] == b[i]; i++) { /* void */ }

    for ( /* void */ ; i < len; i++) {
        c = a[i] | 0x20;

        if (a[i] != b[i]
            && ((a[i] ^ b[i]) != 0x20 || c < 'a' || c > 'z'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * Keys bound to issuers (issuer= of apipolicy_jwt_key_file,
 * apipolicy_jwt_key_request, apipolicy_jwt_secret) need the token's
 * "iss" before a key is picked, so the payload is parsed first there
 * (with the same strict parser; nothing of it is used before the
 * signature verified but "iss" to choose keys).
 */

static ngx_int_t
ngx_http_apipolicy_jwt_issuer(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx, ngx_str_t *detail)
{
    ngx_http_apipolicy_json_t  *v;

    jctx->claims = ngx_http_apipolicy_jwt_json(r, jctx->payload.data,
                                               jctx->payload.len, "payload",
                                               detail);
    if (jctx->claims == NULL) {
        return NGX_ERROR;
    }

    v = ngx_http_apipolicy_json_get_literal(jctx->claims, "iss");

    if (v && v->type == NGX_HTTP_APIPOLICY_JSON_STRING) {
        jctx->iss = v->value;
    }

    return NGX_OK;
}


/*
 * Picks the keys that may verify the token: those whose kid equals the
 * token's, or, when none has it (or the token has no kid), the keys
 * without a kid (or all keys); of those only the keys bound to the
 * token's algorithm.  An HS256 token meets no RSA or EC key here: the
 * algorithm comes from the key, never from the token alone.
 */

static ngx_uint_t
ngx_http_apipolicy_jwt_verify(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx, ngx_array_t **sets, ngx_uint_t nsets,
    ngx_str_t *detail)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i, n, pass, named, candidates, tried, bound;
    ngx_http_apipolicy_jwt_key_t  *key;

    if (nsets == 0) {
        ngx_http_apipolicy_jwt_detail(r, detail, "no key is configured");
        return NGX_HTTP_APIPOLICY_JWT_E_KEY;
    }

    /* keys bound to another issuer are not there for this token */

    ngx_http_apipolicy_jwt_keys_scan(jctx, sets, nsets, &bound, &named);

    if (bound == 0) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                      jctx->iss.len ? "no key is bound to the token's "
                                      "issuer (iss)"
                                    : "the token has no issuer (iss) and "
                                      "every key is bound to one");
        return NGX_HTTP_APIPOLICY_JWT_E_ISSUER;
    }

    /* pass 1: keys with the token's kid; pass 2: keys without a kid */
    pass = named ? 1 : 2;

    candidates = 0;
    tried = 0;

    for (n = 0; n < nsets; n++) {
        key = sets[n]->elts;

        for (i = 0; i < sets[n]->nelts; i++) {

            if (!ngx_http_apipolicy_jwt_key_for_issuer(&key[i].issuer,
                                                       &jctx->iss))
            {
                continue;
            }

            if (pass == 1) {
                if (key[i].kid.len != jctx->kid.len
                    || ngx_strncmp(key[i].kid.data, jctx->kid.data,
                                   jctx->kid.len) != 0)
                {
                    continue;
                }

            } else if (jctx->kid.len && key[i].kid.len) {
                continue;
            }

            candidates++;

            if (!(key[i].algs & jctx->alg)) {
                continue;
            }

            tried++;

            rc = ngx_http_apipolicy_jwt_key_verify(&key[i], jctx->alg,
                                                   &jctx->signing_input,
                                                   &jctx->signature,
                                                   r->connection->log);
            if (rc == NGX_OK) {
                return NGX_HTTP_APIPOLICY_JWT_E_OK;
            }

            if (rc == NGX_ERROR) {
                return NGX_HTTP_APIPOLICY_JWT_E_INTERNAL;
            }
        }
    }

    if (tried) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the %V signature does not verify",
                                      ngx_http_apipolicy_jwt_alg_name(
                                                                 jctx->alg));
        return NGX_HTTP_APIPOLICY_JWT_E_SIGNATURE;
    }

    if (candidates) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "no key for this token accepts %V",
                                      ngx_http_apipolicy_jwt_alg_name(
                                                                 jctx->alg));
        return NGX_HTTP_APIPOLICY_JWT_E_ALG;
    }

    ngx_http_apipolicy_jwt_detail(r, detail,
                                  "no key matches the token's kid");
    return NGX_HTTP_APIPOLICY_JWT_E_KEY;
}


/*
 * Whether a key is bound to the token's issuer (or to none), and whether
 * one of them has the token's kid
 */

static void
ngx_http_apipolicy_jwt_keys_scan(ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_array_t **sets, ngx_uint_t nsets, ngx_uint_t *bound,
    ngx_uint_t *named)
{
    ngx_uint_t                     i, n;
    ngx_http_apipolicy_jwt_key_t  *key;

    *bound = 0;

    for (n = 0; n < nsets && !*bound; n++) {
        key = sets[n]->elts;

        for (i = 0; i < sets[n]->nelts; i++) {
            if (ngx_http_apipolicy_jwt_key_for_issuer(&key[i].issuer,
                                                      &jctx->iss))
            {
                *bound = 1;
                break;
            }
        }
    }

    *named = 0;

    for (n = 0; jctx->kid.len && n < nsets && !*named; n++) {
        key = sets[n]->elts;

        for (i = 0; i < sets[n]->nelts; i++) {
            if (!ngx_http_apipolicy_jwt_key_for_issuer(&key[i].issuer,
                                                       &jctx->iss))
            {
                continue;
            }

            if (key[i].kid.len == jctx->kid.len
                && ngx_strncmp(key[i].kid.data, jctx->kid.data,
                               jctx->kid.len) == 0)
            {
                *named = 1;
                break;
            }
        }
    }
}


static ngx_uint_t
ngx_http_apipolicy_jwt_check_claims(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_str_t *detail, ngx_http_apipolicy_jwt_rule_t **failed)
{
    size_t                          i;
    ngx_uint_t                      err;
    ngx_http_apipolicy_jwt_rule_t  *rule;

    err = ngx_http_apipolicy_jwt_check_times(r, jcf, jctx->claims, detail);
    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        return err;
    }

    err = ngx_http_apipolicy_jwt_check_iss_aud(r, jcf, jctx->claims, detail);
    if (err != NGX_HTTP_APIPOLICY_JWT_E_OK) {
        return err;
    }

    /* apipolicy_jwt_require */

    if (jcf->rules) {
        rule = jcf->rules->elts;

        for (i = 0; i < jcf->rules->nelts; i++) {

            if (ngx_http_apipolicy_jwt_rule(&rule[i], jctx->claims)
                == NGX_OK)
            {
                continue;
            }

            *failed = &rule[i];

            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the %V claim does not satisfy "
                                          "the policy", &rule[i].claim);

            return NGX_HTTP_APIPOLICY_JWT_E_CLAIM;
        }
    }

    return NGX_HTTP_APIPOLICY_JWT_E_OK;
}


/*
 * exp, nbf, iat (RFC 7519 section 4.1), found in one walk of the claims
 * and checked in that order
 */

static ngx_uint_t
ngx_http_apipolicy_jwt_check_times(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_json_t *claims,
    ngx_str_t *detail)
{
    u_char                     *k;
    double                      now, leeway;
    ngx_uint_t                  i;
    ngx_http_apipolicy_json_t  *e, *t[3];
    static const char          *names[3] = { "exp", "nbf", "iat" };

    t[0] = NULL;
    t[1] = NULL;
    t[2] = NULL;

    for (e = claims->child; e; e = e->next) {
        if (e->key.len != 3) {
            continue;
        }

        k = e->key.data;

        i = (k[0] == 'e' && k[1] == 'x' && k[2] == 'p') ? 0
            : (k[0] == 'n' && k[1] == 'b' && k[2] == 'f') ? 1
            : (k[0] == 'i' && k[1] == 'a' && k[2] == 't') ? 2 : 3;

        if (i < 3 && t[i] == NULL) {
            t[i] = e;
        }
    }

    now = (double) ngx_time();
    leeway = (double) jcf->leeway;

    for (i = 0; i < 3; i++) {

        if (t[i] == NULL) {
            if (i == 0 && jcf->require_exp) {
                ngx_http_apipolicy_jwt_detail(r, detail,
                                              "the token has no exp claim");
                return NGX_HTTP_APIPOLICY_JWT_E_CLAIM;
            }

            continue;
        }

        if (t[i]->type != NGX_HTTP_APIPOLICY_JSON_NUMBER) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the %s claim is not a number",
                                          names[i]);
            return NGX_HTTP_APIPOLICY_JWT_E_MALFORMED;
        }

        if (i == 0 && now >= t[0]->number + leeway) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the token has expired");
            return NGX_HTTP_APIPOLICY_JWT_E_EXPIRED;
        }

        if (i > 0 && now + leeway < t[i]->number) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                                 i == 1 ? "the token is not valid yet (nbf)"
                                 : "the token was issued in the future (iat)");
            return NGX_HTTP_APIPOLICY_JWT_E_NOT_YET;
        }
    }

    return NGX_HTTP_APIPOLICY_JWT_E_OK;
}


/* 1 if str is one of the strings of list (accepted issuers, audiences) */

static ngx_uint_t
ngx_http_apipolicy_jwt_listed(ngx_array_t *list, ngx_str_t *str)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (s[i].len == str->len
            && ngx_strncmp(s[i].data, str->data, str->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* iss and aud (a string or an array of strings, one of them ours) */

static ngx_uint_t
ngx_http_apipolicy_jwt_check_iss_aud(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_json_t *claims,
    ngx_str_t *detail)
{
    ngx_uint_t                  ok;
    ngx_http_apipolicy_json_t  *v, *a;

    if (jcf->issuers) {
        v = ngx_http_apipolicy_json_get_literal(claims, "iss");
        ok = 0;

        if (v && v->type == NGX_HTTP_APIPOLICY_JSON_STRING) {
            ok = ngx_http_apipolicy_jwt_listed(jcf->issuers, &v->value);
        }

        if (!ok) {
            ngx_http_apipolicy_jwt_detail(r, detail,
                    v ? "the token's issuer (iss) is not accepted here"
                      : "the token has no issuer (iss)");
            return NGX_HTTP_APIPOLICY_JWT_E_ISSUER;
        }
    }

    if (jcf->audiences == NULL) {
        return NGX_HTTP_APIPOLICY_JWT_E_OK;
    }

    v = ngx_http_apipolicy_json_get_literal(claims, "aud");
    ok = 0;

    a = (v && v->type == NGX_HTTP_APIPOLICY_JSON_ARRAY) ? v->child : v;

    for ( /* void */ ; !ok && a; a = (a == v) ? NULL : a->next) {

        if (a->type == NGX_HTTP_APIPOLICY_JSON_STRING) {
            ok = ngx_http_apipolicy_jwt_listed(jcf->audiences, &a->value);
        }
    }

    if (!ok) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                v ? "the token is not meant for this audience (aud)"
                  : "the token has no audience (aud)");
        return NGX_HTTP_APIPOLICY_JWT_E_AUDIENCE;
    }

    return NGX_HTTP_APIPOLICY_JWT_E_OK;
}


static ngx_int_t
ngx_http_apipolicy_jwt_rule(ngx_http_apipolicy_jwt_rule_t *rule,
    ngx_http_apipolicy_json_t *claims)
{
    double                      d;
    ngx_str_t                  *val;
    ngx_uint_t                  i;
    ngx_http_apipolicy_json_t  *v;

    v = claims;
    val = rule->path->elts;

    for (i = 0; v && i < rule->path->nelts; i++) {
        v = ngx_http_apipolicy_jwt_member(v, val[i].data, val[i].len);
    }

    if (v && v->type == NGX_HTTP_APIPOLICY_JSON_NULL) {
        v = NULL;
    }

    if (rule->op == NGX_HTTP_APIPOLICY_JWT_OP_ABSENT) {
        return v == NULL ? NGX_OK : NGX_DECLINED;
    }

    if (v == NULL) {
        return NGX_DECLINED;                /* fail closed */
    }

    val = rule->values ? rule->values->elts : NULL;

    switch (rule->op) {

    case NGX_HTTP_APIPOLICY_JWT_OP_EXISTS:
        return NGX_OK;

    case NGX_HTTP_APIPOLICY_JWT_OP_EQ:
        return ngx_http_apipolicy_jwt_scalar_eq(v, &val[0]);

    case NGX_HTTP_APIPOLICY_JWT_OP_NE:
        return (ngx_http_apipolicy_jwt_scalar_eq(v, &val[0]) == NGX_OK)
               ? NGX_DECLINED : NGX_OK;

    case NGX_HTTP_APIPOLICY_JWT_OP_IN:
        for (i = 0; i < rule->values->nelts; i++) {
            if (ngx_http_apipolicy_jwt_scalar_eq(v, &val[i]) == NGX_OK) {
                return NGX_OK;
            }
        }

        return NGX_DECLINED;

    case NGX_HTTP_APIPOLICY_JWT_OP_CONTAINS:

        /* every value must be an element (array) or a word (string) */

        for (i = 0; i < rule->values->nelts; i++) {
            if (!ngx_http_apipolicy_jwt_contains(v, &val[i])) {
                return NGX_DECLINED;
            }
        }

        return NGX_OK;

    default:    /* gt, ge, lt, le */

        if (v->type != NGX_HTTP_APIPOLICY_JSON_NUMBER) {
            return NGX_DECLINED;
        }

        d = v->number;

        switch (rule->op) {
        case NGX_HTTP_APIPOLICY_JWT_OP_GT:
            return d > rule->number ? NGX_OK : NGX_DECLINED;
        case NGX_HTTP_APIPOLICY_JWT_OP_GE:
            return d >= rule->number ? NGX_OK : NGX_DECLINED;
        case NGX_HTTP_APIPOLICY_JWT_OP_LT:
            return d < rule->number ? NGX_OK : NGX_DECLINED;
        default:
            return d <= rule->number ? NGX_OK : NGX_DECLINED;
        }
    }
}


/* "contains": an element of an array, or a word of a string, is "want" */

static ngx_uint_t
ngx_http_apipolicy_jwt_contains(ngx_http_apipolicy_json_t *v, ngx_str_t *want)
{
    u_char                     *p, *last, *start;
    ngx_str_t                   word;
    ngx_uint_t                  found;
    ngx_http_apipolicy_json_t  *e;

    found = 0;

    if (v->type == NGX_HTTP_APIPOLICY_JSON_ARRAY) {
        for (e = v->child; e; e = e->next) {
            if (ngx_http_apipolicy_jwt_scalar_eq(e, want) == NGX_OK) {
                found = 1;
                break;
            }
        }

    } else if (v->type == NGX_HTTP_APIPOLICY_JSON_STRING) {
        p = v->value.data;
        last = p + v->value.len;

        while (p < last && !found) {
            while (p < last && *p == ' ') {
                p++;
            }

            start = p;

            while (p < last && *p != ' ') {
                p++;
            }

            word.data = start;
            word.len = p - start;

            if (word.len == want->len
                && ngx_strncmp(word.data, want->data, word.len) == 0)
            {
                found = 1;
            }
        }
    }

    return found;
}


/*
 * A JSON scalar against a configured string: strings, numbers, booleans.
 * Integers compare as written ("42"), other numbers by value ("1.50" is
 * 1.5).
 */

static ngx_int_t
ngx_http_apipolicy_jwt_scalar_eq(ngx_http_apipolicy_json_t *j, ngx_str_t *s)
{
    char    *end;
    double   d;

    switch (j->type) {

    case NGX_HTTP_APIPOLICY_JSON_STRING:
        return (j->value.len == s->len
                && ngx_strncmp(j->value.data, s->data, s->len) == 0)
               ? NGX_OK : NGX_DECLINED;

    case NGX_HTTP_APIPOLICY_JSON_NUMBER:
        if (j->value.len == s->len
            && ngx_strncmp(j->value.data, s->data, s->len) == 0)
        {
            return NGX_OK;
        }

        if (j->integer) {
            return NGX_DECLINED;
        }

        /* configuration strings are NUL-terminated */
        d = strtod((char *) s->data, &end);

        return (s->len && *end == '\0' && d == j->number)
               ? NGX_OK : NGX_DECLINED;

    case NGX_HTTP_APIPOLICY_JSON_TRUE:
        return (s->len == 4 && ngx_strncmp(s->data, "true", 4) == 0)
               ? NGX_OK : NGX_DECLINED;

    case NGX_HTTP_APIPOLICY_JSON_FALSE:
        return (s->len == 5 && ngx_strncmp(s->data, "false", 5) == 0)
               ? NGX_OK : NGX_DECLINED;

    default:
        return NGX_DECLINED;
    }
}


static ngx_http_apipolicy_json_t *
ngx_http_apipolicy_jwt_json(ngx_http_request_t *r, u_char *data, size_t len,
    const char *what, ngx_str_t *detail)
{
    ngx_uint_t                  err;
    ngx_http_apipolicy_json_t  *j;

    j = ngx_http_apipolicy_json_parse(r->pool, data, len,
                                      NGX_HTTP_APIPOLICY_JWT_MAX_DEPTH, &err);

    if (j == NULL) {
        switch (err) {

        case NGX_HTTP_APIPOLICY_JSON_E_DUP:
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the %s has a duplicate member",
                                          what);
            break;

        case NGX_HTTP_APIPOLICY_JSON_E_DEPTH:
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the %s nests deeper than %d levels",
                                          what,
                                          NGX_HTTP_APIPOLICY_JWT_MAX_DEPTH);
            break;

        case NGX_HTTP_APIPOLICY_JSON_E_MEMBERS:
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the %s has an object with more "
                                          "than %d members", what,
                                          NGX_HTTP_APIPOLICY_JSON_MAX_MEMBERS);
            break;

        default:
            ngx_http_apipolicy_jwt_detail(r, detail,
                                          "the %s is not valid JSON", what);
        }

        return NULL;
    }

    if (j->type != NGX_HTTP_APIPOLICY_JSON_OBJECT) {
        ngx_http_apipolicy_jwt_detail(r, detail,
                                      "the %s is not a JSON object", what);
        return NULL;
    }

    return j;
}


/* ---- answers --------------------------------------------------------- */

static void
ngx_http_apipolicy_jwt_detail(ngx_http_request_t *r, ngx_str_t *detail,
    const char *fmt, ...)
{
    u_char   *p, buf[NGX_HTTP_APIPOLICY_JWT_DETAIL_LEN];
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    detail->len = 0;
    detail->data = ngx_pnalloc(r->pool, p - buf);

    if (detail->data) {
        detail->len = p - buf;
        ngx_memcpy(detail->data, buf, detail->len);
    }
}


/*
 * The challenge (RFC 6750 section 3) and the problem answer.  Texts in
 * the challenge are quoted-strings restricted to printable ASCII without
 * '"' and '\': anything else in a detail (a claim name from the
 * configuration) becomes '?', in the problem body as well.
 */

static ngx_int_t
ngx_http_apipolicy_jwt_fail(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_jwt_conf_t *jcf,
    ngx_uint_t err, ngx_uint_t status, ngx_str_t *detail,
    ngx_http_apipolicy_jwt_rule_t *rule)
{
    u_char                          *p, *q;
    size_t                           len, i;
    ngx_str_t                        scope;
    ngx_table_elt_t                 *h;
    ngx_http_apipolicy_jwt_error_t  *e;

    if (err == NGX_HTTP_APIPOLICY_JWT_E_INTERNAL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    e = &ngx_http_apipolicy_jwt_errors[err];

    if (status == 0) {
        /* invalid_request is a 400 (RFC 6750 section 3.1) */
        status = (err == NGX_HTTP_APIPOLICY_JWT_E_AMBIGUOUS)
                 ? NGX_HTTP_BAD_REQUEST : NGX_HTTP_UNAUTHORIZED;
    }

    for (i = 0; i < detail->len; i++) {
        if (detail->data[i] < 0x20 || detail->data[i] > 0x7e
            || detail->data[i] == '"' || detail->data[i] == '\\')
        {
            detail->data[i] = '?';
        }
    }

    if (ngx_http_apipolicy_jwt_scope(r, status, rule, &scope) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof("Bearer realm=\"\", error=\"insufficient_scope\", "
                 "error_description=\"\", scope=\"\"") - 1
          + jcf->realm.len + detail->len + scope.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_sprintf(p, "Bearer realm=\"%V\"", &jcf->realm);

    if (status == NGX_HTTP_FORBIDDEN) {
        q = ngx_sprintf(q, ", error=\"insufficient_scope\"");

    } else if (e->error) {
        q = ngx_sprintf(q, ", error=\"%s\"", e->error);
    }

    if ((e->error || status == NGX_HTTP_FORBIDDEN) && detail->len) {
        q = ngx_sprintf(q, ", error_description=\"%V\"", detail);
    }

    if (scope.len) {
        q = ngx_sprintf(q, ", scope=\"%V\"", &scope);
    }

    h = r->headers_out.www_authenticate;

    if (h == NULL) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.www_authenticate = h;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value.data = p;
    h->value.len = q - p;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return ngx_http_apipolicy_reject(r, ctx, status, &e->problem, e->level,
                                     detail);
}


/* scope= of a 403 for a "scope"/"scp" rule: the scopes it asks for */

static ngx_int_t
ngx_http_apipolicy_jwt_scope(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_apipolicy_jwt_rule_t *rule, ngx_str_t *scope)
{
    u_char      *p, *q;
    size_t       i;
    ngx_str_t   *val;

    ngx_str_null(scope);

    if (status != NGX_HTTP_FORBIDDEN || rule == NULL || !rule->scope
        || rule->values == NULL)
    {
        return NGX_OK;
    }

    val = rule->values->elts;

    for (i = 0; i < rule->values->nelts; i++) {
        scope->len += val[i].len + 1;
    }

    scope->data = ngx_pnalloc(r->pool, scope->len);
    if (scope->data == NULL) {
        return NGX_ERROR;
    }

    p = scope->data;

    for (i = 0; i < rule->values->nelts; i++) {
        if (i) {
            *p++ = ' ';
        }

        for (q = val[i].data; q < val[i].data + val[i].len; q++) {
            *p++ = (*q < 0x21 || *q > 0x7e || *q == '"' || *q == '\\')
                   ? '?' : *q;
        }
    }

    scope->len = p - scope->data;

    return NGX_OK;
}


/* ---- variables ------------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_apipolicy_jwt_variable(r, v, data,
                                           sizeof("jwt_claim_") - 1, 0);
}


ngx_int_t
ngx_http_apipolicy_jwt_header_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_apipolicy_jwt_variable(r, v, data,
                                           sizeof("jwt_header_") - 1, 1);
}


/*
 * $jwt_payload: the verified claims set as compact JSON (the token's own
 * text without the white space between tokens, so it fits in a header)
 */

ngx_int_t
ngx_http_apipolicy_jwt_payload_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    return ngx_http_apipolicy_jwt_variable(r, v, data, 0, 2);
}


/* what: 0 a claim, 1 a header parameter, 2 the whole claims set */

static ngx_int_t
ngx_http_apipolicy_jwt_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data, size_t prefix,
    ngx_uint_t what)
{
    ngx_str_t                     *name, value;
    ngx_http_apipolicy_ctx_t      *ctx;
    ngx_http_apipolicy_json_t     *j;
    ngx_http_apipolicy_jwt_ctx_t  *jctx;

    name = (ngx_str_t *) data;
    ctx = ngx_http_apipolicy_get_ctx(r->main);
    jctx = ctx ? ctx->jwt : NULL;

    /* only a verified token speaks */

    if (jctx == NULL || !jctx->verified || (what < 2 && name->len <= prefix))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    if (what == 1 && jctx->header == NULL) {
        jctx->header = ngx_http_apipolicy_jwt_header_object(r, jctx);
    }

    j = (what == 2) ? jctx->claims
        : ngx_http_apipolicy_jwt_lookup(what ? jctx->header : jctx->claims,
                                        name->data + prefix,
                                        name->len - prefix);

    if (j == NULL || j->type == NGX_HTTP_APIPOLICY_JSON_NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ngx_http_apipolicy_jwt_format(r->pool, j, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    v->data = value.data;
    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * The header object of a verified token whose header segment was found
 * in the memo (ngx_http_apipolicy_jwt_segments): it parsed before, so it
 * parses again; NULL only when memory runs out.
 */

static ngx_http_apipolicy_json_t *
ngx_http_apipolicy_jwt_header_object(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx)
{
    u_char                     *dot;
    ngx_str_t                   decoded;
    ngx_uint_t                  err;
    ngx_http_apipolicy_json_t  *j;

    dot = memchr(jctx->token.data, '.', jctx->token.len);

    if (dot == NULL
        || ngx_http_apipolicy_crypto_base64url_decode(r->pool,
                                                  jctx->token.data,
                                                  dot - jctx->token.data,
                                                  &decoded)
           != NGX_OK)
    {
        return NULL;
    }

    j = ngx_http_apipolicy_json_parse(r->pool, decoded.data, decoded.len,
                                      NGX_HTTP_APIPOLICY_JWT_MAX_DEPTH, &err);

    return (j && j->type == NGX_HTTP_APIPOLICY_JSON_OBJECT) ? j : NULL;
}


/*
 * $jwt_claim_NAME: NAME is looked up as a top-level claim (nginx gives
 * variable names lowercased, so an exact match is tried first, then a
 * case-insensitive one); when there is none, "__" separates the levels
 * of a nested claim: $jwt_claim_address__country.
 */

static ngx_http_apipolicy_json_t *
ngx_http_apipolicy_jwt_lookup(ngx_http_apipolicy_json_t *obj, u_char *name,
    size_t len)
{
    u_char                     *p, *last, *sep, *end;
    ngx_http_apipolicy_json_t  *j;

    j = ngx_http_apipolicy_jwt_member(obj, name, len);
    if (j) {
        return j;
    }

    p = name;
    last = name + len;

    if (ngx_strlcasestrn(p, last, (u_char *) "__", 1) == NULL) {
        return NULL;
    }

    for ( ;; ) {
        sep = ngx_strlcasestrn(p, last, (u_char *) "__", 1);
        end = sep ? sep : last;

        if (end == p) {
            return NULL;
        }

        obj = ngx_http_apipolicy_jwt_member(obj, p, end - p);

        if (obj == NULL || sep == NULL) {
            return obj;
        }

        p = sep + 2;
    }
}


static ngx_http_apipolicy_json_t *
ngx_http_apipolicy_jwt_member(ngx_http_apipolicy_json_t *obj, u_char *name,
    size_t len)
{
    ngx_http_apipolicy_json_t  *j;

    j = ngx_http_apipolicy_json_get(obj, name, len);
    if (j) {
        return j;
    }

    return ngx_http_apipolicy_json_get_ci(obj, name, len);
}


/* an array: its elements' text joined with commas (arrays inside compact) */

static ngx_int_t
ngx_http_apipolicy_jwt_format_array(ngx_pool_t *pool,
    ngx_http_apipolicy_json_t *j, ngx_str_t *out)
{
    size_t                      i, len;
    u_char                     *p;
    ngx_str_t                  *parts;
    ngx_http_apipolicy_json_t  *e;

    if (j->count == 0) {
        ngx_str_set(out, "");
        return NGX_OK;
    }

    parts = ngx_palloc(pool, j->count * sizeof(ngx_str_t));
    if (parts == NULL) {
        return NGX_ERROR;
    }

    len = 0;

    for (i = 0, e = j->child; e; i++, e = e->next) {

        if (e->type == NGX_HTTP_APIPOLICY_JSON_ARRAY) {
            if (ngx_http_apipolicy_json_compact(pool, e, &parts[i])
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (ngx_http_apipolicy_jwt_format(pool, e, &parts[i])
                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        len += parts[i].len + 1;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < j->count; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, parts[i].data, parts[i].len);
    }

    out->len = p - out->data;
    return NGX_OK;
}


/*
 * A claim as variable text: strings as they are, numbers and booleans in
 * JSON form, arrays joined with commas, objects as compact JSON.  Control
 * characters become spaces so that a value cannot split a header line in
 * proxy_set_header.
 */

static ngx_int_t
ngx_http_apipolicy_jwt_format(ngx_pool_t *pool, ngx_http_apipolicy_json_t *j,
    ngx_str_t *out)
{
    size_t      i;
    ngx_str_t   s;

    switch (j->type) {

    case NGX_HTTP_APIPOLICY_JSON_ARRAY:
        return ngx_http_apipolicy_jwt_format_array(pool, j, out);

    case NGX_HTTP_APIPOLICY_JSON_OBJECT:
        if (ngx_http_apipolicy_json_compact(pool, j, out) != NGX_OK) {
            return NGX_ERROR;
        }

        goto sanitize;

    case NGX_HTTP_APIPOLICY_JSON_TRUE:
        ngx_str_set(out, "true");
        return NGX_OK;

    case NGX_HTTP_APIPOLICY_JSON_FALSE:
        ngx_str_set(out, "false");
        return NGX_OK;

    case NGX_HTTP_APIPOLICY_JSON_NULL:
        ngx_str_set(out, "");
        return NGX_OK;

    case NGX_HTTP_APIPOLICY_JSON_NUMBER:
        *out = j->value;                /* as written: no control bytes */
        return NGX_OK;

    default:                            /* string */
        if (j->printable) {
            *out = j->value;            /* scanned as printable ASCII */
            return NGX_OK;
        }

        s = j->value;
    }

    /* a string without control characters is its own text, not a copy */

    for (i = 0; i < s.len; i++) {
        if (s.data[i] < 0x20 || s.data[i] == 0x7f) {
            break;
        }
    }

    if (i == s.len) {
        *out = s;
        return NGX_OK;
    }

    out->data = ngx_pnalloc(pool, s.len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s.data, s.len);
    out->len = s.len;

sanitize:

    for (i = 0; i < out->len; i++) {
        if (out->data[i] < 0x20 || out->data[i] == 0x7f) {
            out->data[i] = ' ';
        }
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_apipolicy_jwt_outcome(ngx_http_apipolicy_ctx_t *ctx,
    ngx_uint_t *cache)
{
    ngx_http_apipolicy_jwt_ctx_t  *jctx;

    jctx = ctx->jwt;

    if (jctx == NULL) {
        *cache = 0;
        return NGX_HTTP_APIPOLICY_JWT_OUTCOME_NONE;
    }

    *cache = jctx->cache_status;

    if (jctx->verified) {
        return NGX_HTTP_APIPOLICY_JWT_OUTCOME_VERIFIED;
    }

    if (jctx->anonymous) {
        return NGX_HTTP_APIPOLICY_JWT_OUTCOME_ANONYMOUS;
    }

    return NGX_HTTP_APIPOLICY_JWT_OUTCOME_OTHER;
}
