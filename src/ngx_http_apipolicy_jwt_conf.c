
/*
 * Copyright (C) apipolicy authors
 *
 * The JWT directives and the JWT conf: creation, merge, and the handlers
 * of apipolicy_jwt, apipolicy_jwt_key_file, apipolicy_jwt_secret,
 * apipolicy_jwt_algorithms, apipolicy_jwt_issuer/audience,
 * apipolicy_jwt_require and apipolicy_jwt_typ.  Everything here runs at
 * configuration time; ngx_http_apipolicy_jwt.c reads the result.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_jwt_key.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_jwks.h"
#include "ngx_http_apipolicy_crypto.h"
#include "ngx_http_apipolicy_util.h"


#define NGX_HTTP_APIPOLICY_JWT_MAX_SIZE     8192


static char *ngx_http_apipolicy_jwt_merge_typs(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *prev, ngx_http_apipolicy_jwt_conf_t *conf);
static char *ngx_http_apipolicy_jwt_merge_keys(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *c);
static ngx_array_t *ngx_http_apipolicy_jwt_keys(ngx_conf_t *cf,
    void *conf);
static ngx_int_t ngx_http_apipolicy_jwt_key_params(ngx_conf_t *cf,
    ngx_uint_t hmac, ngx_uint_t *alg, ngx_str_t *kid, ngx_str_t *issuer);
static ngx_int_t ngx_http_apipolicy_jwt_rule_path(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_rule_t *rule, ngx_str_t *claim);
static char *ngx_http_apipolicy_jwt_rule_op(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_rule_t *rule, ngx_str_t *value, ngx_uint_t n);


void
ngx_http_apipolicy_jwt_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *conf)
{
    /*
     * zeroed with the location conf:
     *
     *     conf->realm = { 0, NULL };
     *     conf->file = { 0, NULL };
     *     conf->line = 0;
     *     conf->policy = NULL;
     *     conf->key_issuers = 0;
     */

    conf->mode = NGX_CONF_UNSET_UINT;
    conf->keys = NGX_CONF_UNSET_PTR;
    conf->algs = NGX_CONF_UNSET_UINT;
    conf->issuers = NGX_CONF_UNSET_PTR;
    conf->audiences = NGX_CONF_UNSET_PTR;
    conf->typs = NGX_CONF_UNSET_PTR;
    conf->rules = NGX_CONF_UNSET_PTR;
    conf->token = NGX_CONF_UNSET_PTR;
    conf->leeway = NGX_CONF_UNSET;
    conf->max_size = NGX_CONF_UNSET_SIZE;
    conf->require_exp = NGX_CONF_UNSET;
    conf->typ_absent = NGX_CONF_UNSET;
    conf->typ_any = NGX_CONF_UNSET;
    conf->jwks = NGX_CONF_UNSET_PTR;
    conf->cache = NGX_CONF_UNSET;
}


/* a JWT directive was written in this block */

static ngx_uint_t
ngx_http_apipolicy_jwt_conf_own(ngx_http_apipolicy_jwt_conf_t *c)
{
    return c->mode != NGX_CONF_UNSET_UINT
           || c->keys != NGX_CONF_UNSET_PTR
           || c->algs != NGX_CONF_UNSET_UINT
           || c->issuers != NGX_CONF_UNSET_PTR
           || c->audiences != NGX_CONF_UNSET_PTR
           || c->typs != NGX_CONF_UNSET_PTR
           || c->rules != NGX_CONF_UNSET_PTR
           || c->token != NGX_CONF_UNSET_PTR
           || c->leeway != NGX_CONF_UNSET
           || c->max_size != NGX_CONF_UNSET_SIZE
           || c->require_exp != NGX_CONF_UNSET
           || c->jwks != NGX_CONF_UNSET_PTR
           || c->cache != NGX_CONF_UNSET;
}


char *
ngx_http_apipolicy_jwt_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *prev, ngx_http_apipolicy_jwt_conf_t *conf)
{
    /*
     * the policy's identity: this block's when a JWT directive is written
     * here, else the parent's (a parent never merged, the http block's,
     * is its own)
     */

    if (ngx_http_apipolicy_jwt_conf_own(conf)) {
        conf->policy = conf;

    } else {
        conf->policy = prev->policy ? prev->policy : prev;
    }

    if (conf->mode == NGX_CONF_UNSET_UINT) {
        conf->file = prev->file;
        conf->line = prev->line;
    }

    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_APIPOLICY_JWT_OFF);
    ngx_conf_merge_str_value(conf->realm, prev->realm, "api");
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_uint_value(conf->algs, prev->algs,
                              NGX_HTTP_APIPOLICY_JWT_ALL);
    ngx_conf_merge_ptr_value(conf->issuers, prev->issuers, NULL);
    ngx_conf_merge_ptr_value(conf->audiences, prev->audiences, NULL);
    ngx_conf_merge_ptr_value(conf->rules, prev->rules, NULL);
    ngx_conf_merge_ptr_value(conf->token, prev->token, NULL);
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway, 0);
    ngx_conf_merge_size_value(conf->max_size, prev->max_size,
                              NGX_HTTP_APIPOLICY_JWT_MAX_SIZE);
    ngx_conf_merge_value(conf->require_exp, prev->require_exp, 1);
    ngx_conf_merge_ptr_value(conf->jwks, prev->jwks, NULL);
    ngx_conf_merge_value(conf->cache, prev->cache, 1);

    if (ngx_http_apipolicy_jwt_merge_typs(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->mode == NGX_HTTP_APIPOLICY_JWT_OFF) {
        return NGX_CONF_OK;
    }

    return ngx_http_apipolicy_jwt_merge_keys(cf, conf);
}


/* apipolicy_jwt_typ: inherited as a whole; by default "JWT", "at+jwt" */

static char *
ngx_http_apipolicy_jwt_merge_typs(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *prev, ngx_http_apipolicy_jwt_conf_t *conf)
{
    ngx_str_t  *typ;

    if (conf->typs == NGX_CONF_UNSET_PTR) {
        conf->typs = prev->typs;
        conf->typ_absent = prev->typ_absent;
        conf->typ_any = prev->typ_any;
    }

    if (conf->typs != NGX_CONF_UNSET_PTR) {
        return NGX_CONF_OK;
    }

    conf->typs = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (conf->typs == NULL) {
        return NGX_CONF_ERROR;
    }

    typ = ngx_array_push_n(conf->typs, 2);
    if (typ == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&typ[0], "JWT");
    ngx_str_set(&typ[1], "at+jwt");
    conf->typ_absent = 1;
    conf->typ_any = 0;

    return NGX_CONF_OK;
}


/*
 * The keys of a location where JWT is on: their identity for the
 * verified-token cache, whether "iss" picks them, and that some key can
 * verify an allowed algorithm
 */

static char *
ngx_http_apipolicy_jwt_merge_keys(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_conf_t *c)
{
    ngx_uint_t                     i, algs;
    ngx_http_apipolicy_jwt_key_t  *key;

    if (ngx_http_apipolicy_jwt_cache_id(c->keys, NULL, NULL, c->id)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    key = c->keys ? c->keys->elts : NULL;

    for (i = 0; c->keys && i < c->keys->nelts; i++) {
        if (key[i].issuer.len) {
            c->key_issuers = 1;
        }
    }

    if (c->jwks && ngx_http_apipolicy_jwks_issuer(c->jwks)->len) {
        c->key_issuers = 1;
    }

    if (c->jwks) {
        return NGX_CONF_OK;         /* the fetched keys decide */
    }

    if (c->keys == NULL || c->keys->nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"apipolicy_jwt\" is enabled in %V:%ui but no key "
                      "is configured for it: add apipolicy_jwt_key_file, "
                      "apipolicy_jwt_secret or apipolicy_jwt_key_request "
                      "at the same level or above", &c->file, c->line);
        return NGX_CONF_ERROR;
    }

    algs = 0;
    key = c->keys->elts;

    for (i = 0; i < c->keys->nelts; i++) {
        algs |= key[i].algs;
    }

    if (!(algs & c->algs)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "none of the JWT keys for \"apipolicy_jwt\" in %V:%ui "
                      "can verify an algorithm listed in "
                      "apipolicy_jwt_algorithms", &c->file, c->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_apipolicy_jwt_phases(ngx_http_apipolicy_jwt_conf_t *conf)
{
    return conf->mode == NGX_HTTP_APIPOLICY_JWT_OFF
           ? 0 : NGX_HTTP_APIPOLICY_ACCESS;
}


/* apipolicy_jwt on|off|optional [realm=TEXT] */

char *
ngx_http_apipolicy_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                         *p;
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_apipolicy_jwt_conf_t  *jcf;

    jcf = &((ngx_http_apipolicy_loc_conf_t *) conf)->jwt;

    if (jcf->mode != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        jcf->mode = NGX_HTTP_APIPOLICY_JWT_ON;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        jcf->mode = NGX_HTTP_APIPOLICY_JWT_OFF;

    } else if (ngx_strcmp(value[1].data, "optional") == 0) {
        jcf->mode = NGX_HTTP_APIPOLICY_JWT_OPTIONAL;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": use \"on\", \"off\" or "
                           "\"optional\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "realm=", 6) != 0) {
            ngx_http_apipolicy_conf_bad_param(cf, &value[i], "realm=");
            return NGX_CONF_ERROR;
        }

        jcf->realm.data = value[i].data + 6;
        jcf->realm.len = value[i].len - 6;

        for (p = jcf->realm.data; p < jcf->realm.data + jcf->realm.len; p++) {
            if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "the realm may only hold printable ASCII "
                                   "without '\"' and '\\'");
                return NGX_CONF_ERROR;
            }
        }
    }

    jcf->file = cf->conf_file->file.name;
    jcf->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * the key list of the location that apipolicy_jwt_key_file and
 * apipolicy_jwt_secret (conf is their loc conf) add to
 */

static ngx_array_t *
ngx_http_apipolicy_jwt_keys(ngx_conf_t *cf, void *conf)
{
    ngx_http_apipolicy_jwt_conf_t  *jcf;

    jcf = &((ngx_http_apipolicy_loc_conf_t *) conf)->jwt;

    if (jcf->keys == NGX_CONF_UNSET_PTR) {
        jcf->keys = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_apipolicy_jwt_key_t));
        if (jcf->keys == NULL) {
            return NULL;
        }
    }

    return jcf->keys;
}


/*
 * alg=, kid= and issuer= of apipolicy_jwt_key_file and (hmac: HS256,
 * HS384 or HS512 only) apipolicy_jwt_secret
 */

static ngx_int_t
ngx_http_apipolicy_jwt_key_params(ngx_conf_t *cf, ngx_uint_t hmac,
    ngx_uint_t *alg, ngx_str_t *kid, ngx_str_t *issuer)
{
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;
    *alg = 0;
    ngx_str_null(kid);
    ngx_str_null(issuer);

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_http_apipolicy_jwt_issuer_param(&value[i], issuer)) {
            continue;
        }

        if (ngx_strncmp(value[i].data, "alg=", 4) == 0) {
            *alg = ngx_http_apipolicy_jwt_alg_parse(value[i].data + 4,
                                                    value[i].len - 4);
            if (hmac
                && (*alg == 0
                    || ngx_http_apipolicy_jwt_alg_hmac_min(*alg) == 0))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "a secret verifies HS256, HS384 or HS512 "
                                   "only, not \"%s\"", value[i].data + 4);
                return NGX_ERROR;
            }

            if (*alg == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown JWT algorithm \"%s\"",
                                   value[i].data + 4);
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "kid=", 4) == 0
            && value[i].len > 4)
        {
            kid->data = value[i].data + 4;
            kid->len = value[i].len - 4;
            continue;
        }

        ngx_http_apipolicy_conf_bad_param(cf, &value[i],
                                          "alg=, kid= and issuer=");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* apipolicy_jwt_key_file FILE [alg=ALG] [kid=KID] */

char *
ngx_http_apipolicy_jwt_key_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                     *value, name, text, kid, err, issuer;
    ngx_uint_t                     alg, first;
    ngx_array_t                   *keys;
    ngx_http_apipolicy_jwt_key_t  *key;

    keys = ngx_http_apipolicy_jwt_keys(cf, conf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    if (ngx_http_apipolicy_jwt_key_params(cf, 0, &alg, &kid, &issuer)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    name = value[1];

    if (ngx_http_apipolicy_crypto_read_file(cf, &name, &text) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (p = text.data; p < text.data + text.len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            break;
        }
    }

    if (p < text.data + text.len && *p == '{') {

        if (kid.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"kid=\" cannot be used with the JWKS file "
                               "\"%V\": its keys carry their own \"kid\"",
                               &name);
            return NGX_CONF_ERROR;
        }

        first = keys->nelts;

        rc = ngx_http_apipolicy_jwt_jwks_parse(cf->pool, cf->log, text.data,
                                               text.len, alg, keys, &err);
        if (rc != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the JWKS file \"%V\" %V", &name, &err);
            return NGX_CONF_ERROR;
        }

        ngx_http_apipolicy_jwt_keys_bind(keys, first, &issuer);

        return NGX_CONF_OK;
    }

    key = ngx_array_push(keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_apipolicy_jwt_pem_parse(cf->pool, text.data, text.len, key,
                                         &err)
        != NGX_OK
        || ngx_http_apipolicy_jwt_key_pin(key, alg, &err, cf->pool) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key file \"%V\" %V", &name, &err);
        return NGX_CONF_ERROR;
    }

    key->kid = kid;
    key->issuer = issuer;

    return NGX_CONF_OK;
}


/* apipolicy_jwt_secret VALUE|base64:..|base64url:..|file:PATH [alg=] [kid=] */

char *
ngx_http_apipolicy_jwt_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                     *value, err;
    ngx_uint_t                     alg;
    ngx_array_t                   *keys;
    ngx_http_apipolicy_jwt_key_t  *key;

    keys = ngx_http_apipolicy_jwt_keys(cf, conf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    key = ngx_array_push(keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(key, sizeof(ngx_http_apipolicy_jwt_key_t));

    value = cf->args->elts;

    if (ngx_http_apipolicy_jwt_key_params(cf, 1, &alg, &key->kid,
                                          &key->issuer)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_apipolicy_crypto_secret(cf, &value[1], &key->secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_apipolicy_jwt_secret_key(cf->pool, key, &err) != NGX_OK
        || ngx_http_apipolicy_jwt_key_pin(key, alg, &err, cf->pool) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "apipolicy_jwt_secret: %V",
                           &err);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* apipolicy_jwt_algorithms ALG ... */

char *
ngx_http_apipolicy_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t                      *value;
    ngx_uint_t                      i, alg;
    ngx_http_apipolicy_jwt_conf_t  *jcf;

    jcf = &((ngx_http_apipolicy_loc_conf_t *) conf)->jwt;

    if (jcf->algs != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    jcf->algs = 0;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcasecmp(value[i].data, (u_char *) "none") == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"none\" can never be allowed: unsigned "
                               "tokens prove nothing (RFC 8725 section 3.1)");
            return NGX_CONF_ERROR;
        }

        alg = ngx_http_apipolicy_jwt_alg_parse(value[i].data, value[i].len);

        if (alg == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown JWT algorithm \"%V\" (HS256, HS384, "
                               "HS512, RS256, RS384, RS512, PS256, PS384, "
                               "PS512, ES256, ES384, ES512, EdDSA, Ed25519)",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        jcf->algs |= alg;
    }

    return NGX_CONF_OK;
}


/* apipolicy_jwt_issuer / apipolicy_jwt_audience VALUE ... (repeatable) */

char *
ngx_http_apipolicy_jwt_strings(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                      *value, *s;
    ngx_uint_t                      i;
    ngx_array_t                   **a;

    a = (ngx_array_t **) ((char *) conf + cmd->offset);

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];
    }

    return NGX_CONF_OK;
}


/* apipolicy_jwt_require CLAIM OP [VALUE ...] [error=401|403] */

typedef struct {
    ngx_str_t                          name;
    ngx_uint_t                         op;
    ngx_uint_t                         values;  /* 0: none, 1: exactly one,
                                                   2: one or more */
} ngx_http_apipolicy_jwt_op_t;


static ngx_http_apipolicy_jwt_op_t  ngx_http_apipolicy_jwt_ops[] = {
    { ngx_string("eq"), NGX_HTTP_APIPOLICY_JWT_OP_EQ, 1 },
    { ngx_string("ne"), NGX_HTTP_APIPOLICY_JWT_OP_NE, 1 },
    { ngx_string("in"), NGX_HTTP_APIPOLICY_JWT_OP_IN, 2 },
    { ngx_string("contains"), NGX_HTTP_APIPOLICY_JWT_OP_CONTAINS, 2 },
    { ngx_string("gt"), NGX_HTTP_APIPOLICY_JWT_OP_GT, 1 },
    { ngx_string("ge"), NGX_HTTP_APIPOLICY_JWT_OP_GE, 1 },
    { ngx_string("lt"), NGX_HTTP_APIPOLICY_JWT_OP_LT, 1 },
    { ngx_string("le"), NGX_HTTP_APIPOLICY_JWT_OP_LE, 1 },
    { ngx_string("exists"), NGX_HTTP_APIPOLICY_JWT_OP_EXISTS, 0 },
    { ngx_string("present"), NGX_HTTP_APIPOLICY_JWT_OP_EXISTS, 0 },
    { ngx_string("absent"), NGX_HTTP_APIPOLICY_JWT_OP_ABSENT, 0 },
    { ngx_null_string, 0, 0 }
};


char *
ngx_http_apipolicy_jwt_require(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                      *value;
    ngx_uint_t                      n;
    ngx_http_apipolicy_jwt_rule_t  *rule;
    ngx_http_apipolicy_jwt_conf_t  *jcf;

    jcf = &((ngx_http_apipolicy_loc_conf_t *) conf)->jwt;

    if (jcf->rules == NGX_CONF_UNSET_PTR) {
        jcf->rules = ngx_array_create(cf->pool, 4,
                                      sizeof(ngx_http_apipolicy_jwt_rule_t));
        if (jcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(jcf->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_apipolicy_jwt_rule_t));

    value = cf->args->elts;
    n = cf->args->nelts;
    rule->status = NGX_HTTP_UNAUTHORIZED;

    if (ngx_strncmp(value[n - 1].data, "error=", 6) == 0) {

        if (ngx_strcmp(value[n - 1].data, "error=401") == 0) {
            rule->status = NGX_HTTP_UNAUTHORIZED;

        } else if (ngx_strcmp(value[n - 1].data, "error=403") == 0) {
            rule->status = NGX_HTTP_FORBIDDEN;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": use error=401 or "
                               "error=403", &value[n - 1]);
            return NGX_CONF_ERROR;
        }

        n--;
    }

    if (n < 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_jwt_require needs a claim and an "
                           "operator, as in \"apipolicy_jwt_require scope "
                           "contains read\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_apipolicy_jwt_rule_path(cf, rule, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return ngx_http_apipolicy_jwt_rule_op(cf, rule, value, n);
}


/* the claim: "a.b.c" is a nested claim */

static ngx_int_t
ngx_http_apipolicy_jwt_rule_path(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_rule_t *rule, ngx_str_t *claim)
{
    u_char     *p, *start, *last;
    ngx_str_t  *s;

    rule->claim = *claim;
    rule->path = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (rule->path == NULL) {
        return NGX_ERROR;
    }

    p = claim->data;
    last = p + claim->len;

    while (p <= last) {
        start = p;

        while (p < last && *p != '.') {
            p++;
        }

        if (p == start) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid claim name \"%V\"", claim);
            return NGX_ERROR;
        }

        s = ngx_array_push(rule->path);
        if (s == NULL) {
            return NGX_ERROR;
        }

        s->data = start;
        s->len = p - start;
        p++;
    }

    rule->scope = (claim->len == 5
                   && ngx_strncmp(claim->data, "scope", 5) == 0)
                  || (claim->len == 3
                      && ngx_strncmp(claim->data, "scp", 3) == 0);

    return NGX_OK;
}


/* the operator, its values, a number for gt/ge/lt/le */

static char *
ngx_http_apipolicy_jwt_rule_op(ngx_conf_t *cf,
    ngx_http_apipolicy_jwt_rule_t *rule, ngx_str_t *value, ngx_uint_t n)
{
    char                         *end;
    ngx_str_t                    *s, *op;
    ngx_uint_t                    i, nvalues;
    ngx_http_apipolicy_jwt_op_t  *ops;

    ops = ngx_http_apipolicy_jwt_ops;

    op = &value[2];

    for (i = 0; ops[i].op; i++) {
        if (ops[i].name.len == op->len
            && ngx_strncmp(ops[i].name.data, op->data, op->len) == 0)
        {
            break;
        }
    }

    if (ops[i].op == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown operator \"%V\" (eq, ne, in, contains, "
                           "gt, ge, lt, le, exists, absent)", op);
        return NGX_CONF_ERROR;
    }

    rule->op = ops[i].op;
    nvalues = n - 3;

    if ((ops[i].values == 0 && nvalues != 0)
        || (ops[i].values == 1 && nvalues != 1)
        || (ops[i].values == 2 && nvalues == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "operator \"%V\" takes %s", op,
                           ops[i].values == 0 ? "no value"
                           : ops[i].values == 1 ? "exactly one value"
                           : "one or more values");
        return NGX_CONF_ERROR;
    }

    if (nvalues) {
        rule->values = ngx_array_create(cf->pool, nvalues, sizeof(ngx_str_t));
        if (rule->values == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 3; i < n; i++) {
            s = ngx_array_push(rule->values);
            if (s == NULL) {
                return NGX_CONF_ERROR;
            }

            *s = value[i];
        }
    }

    if (rule->op >= NGX_HTTP_APIPOLICY_JWT_OP_GT
        && rule->op <= NGX_HTTP_APIPOLICY_JWT_OP_LE)
    {
        rule->number = strtod((char *) value[3].data, &end);

        if (value[3].len == 0 || *end != '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "operator \"%V\" compares numbers; \"%V\" is "
                               "not one", op, &value[3]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* apipolicy_jwt_typ off | [absent] TYPE ... */

char *
ngx_http_apipolicy_jwt_typ(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t                      *value, *s;
    ngx_uint_t                      i;
    ngx_http_apipolicy_jwt_conf_t  *jcf;

    jcf = &((ngx_http_apipolicy_loc_conf_t *) conf)->jwt;

    if (jcf->typs != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    jcf->typs = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (jcf->typs == NULL) {
        return NGX_CONF_ERROR;
    }

    jcf->typ_absent = 0;
    jcf->typ_any = 0;

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        jcf->typ_any = 1;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "absent") == 0) {
            jcf->typ_absent = 1;
            continue;
        }

        s = ngx_array_push(jcf->typs);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];

        if (s->len > 12
            && ngx_strncasecmp(s->data, (u_char *) "application/", 12) == 0)
        {
            s->data += 12;
            s->len -= 12;
        }
    }

    return NGX_CONF_OK;
}
