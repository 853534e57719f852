
/*
 * Copyright (C) apipolicy authors
 *
 * The verified-token cache: a shared-memory zone that remembers which
 * tokens had a valid signature under which key set, so that a token seen
 * again skips the signature check (RS256, ES256 and EdDSA cost 25 to
 * 150 microseconds of CPU each; a lookup costs one SHA-256 and a tree
 * walk).
 *
 *   key      SHA-256(key set identity || token).  The identity is a
 *            SHA-256 of the key material computed at configuration time
 *            (and again per worker for keys fetched at run time), so a
 *            token verified under one location's keys is never a hit in a
 *            location with other keys, and a rotated key set starts cold.
 *   entry    the key and an expiry: the token's "exp", capped by
 *            max_ttl (default 1h, also used for tokens without "exp").
 *            Nothing of the token is stored: no claims, no signature.
 *   checks   only the signature is skipped.  The header is still
 *            decoded and checked (alg allowlist, typ, crit), and the
 *            claims are still parsed and checked (exp/nbf/iat with
 *            leeway, iss, aud, apipolicy_jwt_require) on every request.
 *   bounds   a keyed LRU zone (ngx_http_apipolicy_shm.c): a hit moves
 *            the entry to the front; a store first frees one or two
 *            expired entries from the back and, when the zone is full,
 *            the oldest entries until the new one fits.
 *   reload   the zone is kept when its name and size do not change; the
 *            root carries a magic number checked on adoption.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_jwt_cache.h"

#include "ngx_http_apipolicy_json.h"
#include "ngx_http_apipolicy_util.h"
#include "ngx_http_apipolicy_digest.h"

#include <openssl/evp.h>
#include <openssl/x509.h>


#define NGX_HTTP_APIPOLICY_JWT_CACHE_MAGIC    0x61706a7763303034  /* apjwc004 */
#define NGX_HTTP_APIPOLICY_JWT_CACHE_MAX_TTL  3600


typedef struct {
    ngx_http_apipolicy_shm_sh_t        lru;
    ngx_uint_t                         hits;
    ngx_uint_t                         misses;
} ngx_http_apipolicy_jwt_cache_sh_t;


typedef struct {
    ngx_http_apipolicy_shm_t           shm;       /* first: the zone's data */
    time_t                             max_ttl;
} ngx_http_apipolicy_jwt_cache_ctx_t;


#define ngx_http_apipolicy_jwt_cache_sh(ctx)                                 \
    ((ngx_http_apipolicy_jwt_cache_sh_t *) (ctx)->shm.sh)


/* ---- request time ---------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_jwt_cache_check(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    u_char *id)
{
    ngx_http_apipolicy_main_conf_t  *amcf;

    jctx->cache_status = NGX_HTTP_APIPOLICY_JWT_CACHE_NONE;

    if (!jcf->cache) {
        return NGX_DECLINED;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);

    if (amcf->jwt_cache == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_apipolicy_jwt_cache_key(id, &jctx->token, jctx->hash)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_jwt_cache_lookup(r, amcf->jwt_cache, jctx->hash)
        == NGX_OK)
    {
        jctx->cache_status = NGX_HTTP_APIPOLICY_JWT_CACHE_HIT;
        return NGX_OK;
    }

    jctx->cache_status = NGX_HTTP_APIPOLICY_JWT_CACHE_MISS;

    return NGX_DECLINED;
}


void
ngx_http_apipolicy_jwt_cache_update(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx)
{
    double                           d;
    time_t                           exp;
    ngx_http_apipolicy_json_t       *v;
    ngx_http_apipolicy_main_conf_t  *amcf;

    if (jctx->cache_status != NGX_HTTP_APIPOLICY_JWT_CACHE_MISS) {
        return;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);

    exp = 0;
    v = ngx_http_apipolicy_json_get_literal(jctx->claims, "exp");

    if (v && v->type == NGX_HTTP_APIPOLICY_JSON_NUMBER) {
        d = v->number;

        if (d <= 0) {
            return;
        }

        exp = (d < (double) NGX_MAX_INT32_VALUE) ? (time_t) d
                                                 : NGX_MAX_INT32_VALUE;
    }

    ngx_http_apipolicy_jwt_cache_store(r, amcf->jwt_cache, jctx->hash, exp);
}


ngx_int_t
ngx_http_apipolicy_jwt_cache_key(u_char *id, ngx_str_t *token, u_char *key)
{
    ngx_http_apipolicy_sha_t  md;

    ngx_http_apipolicy_sha_init(&md, NGX_HTTP_APIPOLICY_SHA256);
    ngx_http_apipolicy_sha_update(&md, id, NGX_HTTP_APIPOLICY_JWT_CACHE_ID_LEN);
    ngx_http_apipolicy_sha_update(&md, token->data, token->len);
    ngx_http_apipolicy_sha_final(&md, key);

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_jwt_cache_lookup(ngx_http_request_t *r,
    ngx_shm_zone_t *shm_zone, u_char *key)
{
    ngx_int_t                            rc;
    ngx_http_apipolicy_jwt_cache_ctx_t  *ctx;

    ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shm.shpool->mutex);

    if (ngx_http_apipolicy_shm_find(&ctx->shm, key)) {
        ngx_http_apipolicy_jwt_cache_sh(ctx)->hits++;
        rc = NGX_OK;

    } else {
        ngx_http_apipolicy_jwt_cache_sh(ctx)->misses++;
        rc = NGX_DECLINED;
    }

    ngx_shmtx_unlock(&ctx->shm.shpool->mutex);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy jwt cache: %s", rc == NGX_OK ? "hit" : "miss");

    return rc;
}


void
ngx_http_apipolicy_jwt_cache_store(ngx_http_request_t *r,
    ngx_shm_zone_t *shm_zone, u_char *key, time_t exp)
{
    time_t                               now, expires;
    ngx_http_apipolicy_hnode_t          *hn;
    ngx_http_apipolicy_jwt_cache_ctx_t  *ctx;

    ctx = shm_zone->data;
    now = ngx_time();

    expires = now + ctx->max_ttl;

    if (exp > 0 && exp < expires) {
        expires = exp;
    }

    if (expires <= now) {
        return;                 /* accepted within the leeway only */
    }

    ngx_shmtx_lock(&ctx->shm.shpool->mutex);

    hn = ngx_http_apipolicy_shm_find(&ctx->shm, key);

    if (hn) {
        /* another worker stored it meanwhile */
        hn->expires = (uint32_t) expires;
        ngx_shmtx_unlock(&ctx->shm.shpool->mutex);
        return;
    }

    ngx_http_apipolicy_shm_expire(&ctx->shm, 2);

    hn = ngx_http_apipolicy_shm_insert(&ctx->shm, key,
                                       sizeof(ngx_http_apipolicy_hnode_t),
                                       expires);

    ngx_shmtx_unlock(&ctx->shm.shpool->mutex);

    if (hn == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "apipolicy jwt cache: could not allocate an entry "
                      "in zone \"%V\"", &shm_zone->shm.name);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy jwt cache: stored for %T s", expires - now);
}


/* $apipolicy_jwt_cache_status: HIT, MISS, or not found */

ngx_int_t
ngx_http_apipolicy_jwt_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_apipolicy_get_ctx(r->main);

    if (ctx == NULL || ctx->jwt == NULL
        || ctx->jwt->cache_status == NGX_HTTP_APIPOLICY_JWT_CACHE_NONE)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ctx->jwt->cache_status == NGX_HTTP_APIPOLICY_JWT_CACHE_HIT) {
        v->len = sizeof("HIT") - 1;
        v->data = (u_char *) "HIT";

    } else {
        v->len = sizeof("MISS") - 1;
        v->data = (u_char *) "MISS";
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* ---- configuration --------------------------------------------------- */

/* a key into the identity, length-prefixed: no two key sets hash alike */

static ngx_int_t
ngx_http_apipolicy_jwt_cache_id_key(EVP_MD_CTX *md,
    ngx_http_apipolicy_jwt_key_t *key)
{
    int        n;
    u_char    *der, *p;
    uint64_t   v[4];

    v[0] = key->kid.len;
    v[1] = key->kty;
    v[2] = key->algs;
    v[3] = key->issuer.len;

    if (EVP_DigestUpdate(md, v, sizeof(v)) != 1
        || EVP_DigestUpdate(md, key->kid.data, key->kid.len) != 1
        || EVP_DigestUpdate(md, key->issuer.data, key->issuer.len) != 1)
    {
        return NGX_ERROR;
    }

    if (key->pkey) {
        n = i2d_PUBKEY(key->pkey, NULL);
        if (n <= 0) {
            return NGX_ERROR;
        }

        der = OPENSSL_malloc(n);
        if (der == NULL) {
            return NGX_ERROR;
        }

        p = der;
        n = i2d_PUBKEY(key->pkey, &p);

        v[0] = (uint64_t) n;

        if (n <= 0
            || EVP_DigestUpdate(md, v, sizeof(uint64_t)) != 1
            || EVP_DigestUpdate(md, der, n) != 1)
        {
            OPENSSL_free(der);
            return NGX_ERROR;
        }

        OPENSSL_free(der);

    } else {
        v[0] = key->secret.len;

        if (EVP_DigestUpdate(md, v, sizeof(uint64_t)) != 1
            || EVP_DigestUpdate(md, key->secret.data, key->secret.len) != 1)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_jwt_cache_id(ngx_array_t *keys, u_char *prev,
    ngx_str_t *extra, u_char *id)
{
    uint64_t                       v;
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    unsigned int                   len;
    EVP_MD_CTX                    *md;
    ngx_http_apipolicy_jwt_key_t  *key;

    static u_char  label[] = "apipolicy jwt cache v1";

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(md, label, sizeof(label)) != 1)
    {
        goto done;
    }

    if (prev && EVP_DigestUpdate(md, prev, NGX_HTTP_APIPOLICY_JWT_CACHE_ID_LEN)
                != 1)
    {
        goto done;
    }

    if (extra) {
        v = extra->len;

        if (EVP_DigestUpdate(md, &v, sizeof(uint64_t)) != 1
            || EVP_DigestUpdate(md, extra->data, extra->len) != 1)
        {
            goto done;
        }
    }

    key = keys ? keys->elts : NULL;

    for (i = 0; keys && i < keys->nelts; i++) {
        if (ngx_http_apipolicy_jwt_cache_id_key(md, &key[i]) != NGX_OK) {
            goto done;
        }
    }

    if (EVP_DigestFinal_ex(md, id, &len) == 1) {
        rc = NGX_OK;
    }

done:

    EVP_MD_CTX_free(md);

    return rc;
}


/* the verified-token cache's zone: 32-byte keys with an expiry each */

ngx_shm_zone_t *
ngx_http_apipolicy_key_zone_add(ngx_conf_t *cf, ngx_str_t *name,
    ssize_t size, time_t max_ttl)
{
    ngx_http_apipolicy_jwt_cache_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_jwt_cache_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->max_ttl = max_ttl;
    ctx->shm.directive = "apipolicy_jwt_cache";
    ctx->shm.magic = NGX_HTTP_APIPOLICY_JWT_CACHE_MAGIC;
    ctx->shm.root = sizeof(ngx_http_apipolicy_jwt_cache_sh_t);
    ctx->shm.node = sizeof(ngx_http_apipolicy_hnode_t);

    return ngx_http_apipolicy_shm_add(cf, name, size, &ctx->shm);
}


/*
 * apipolicy_jwt_cache NAME:SIZE [max_ttl=TIME]   http
 * apipolicy_jwt_cache on|off                     http, server, location
 */

char *
ngx_http_apipolicy_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    time_t                           ttl;
    ssize_t                          size;
    ngx_str_t                       *value, name, s;
    ngx_uint_t                       i;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_apipolicy_main_conf_t  *amcf;

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && (ngx_strcmp(value[1].data, "on") == 0
            || ngx_strcmp(value[1].data, "off") == 0))
    {
        return ngx_conf_set_flag_slot(cf, cmd, conf);
    }

    if (cf->cmd_type != NGX_HTTP_MAIN_CONF) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the cache zone is declared at http level; here "
                           "only \"apipolicy_jwt_cache on|off\" is allowed");
        return NGX_CONF_ERROR;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (amcf->jwt_cache) {
        return "is duplicate";
    }

    if (ngx_http_apipolicy_conf_zone(cf, &value[1],
                                     "apipolicy_jwt_cache jwt:10m",
                                     &name, &size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ttl = NGX_HTTP_APIPOLICY_JWT_CACHE_MAX_TTL;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_ttl=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ttl = ngx_parse_time(&s, 1);

            if (ttl == (time_t) NGX_ERROR || ttl == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_ttl \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_http_apipolicy_conf_bad_param(cf, &value[i], "max_ttl=");
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_http_apipolicy_key_zone_add(cf, &name, size, ttl);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf->jwt_cache = shm_zone;

    return NGX_CONF_OK;
}

