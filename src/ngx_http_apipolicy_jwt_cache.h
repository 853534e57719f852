
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_JWT_CACHE_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_JWT_CACHE_H_INCLUDED_


#include "ngx_http_apipolicy.h"


#define NGX_HTTP_APIPOLICY_JWT_CACHE_ID_LEN  32      /* SHA-256 */

/* what the cache did for a request ($apipolicy_jwt_cache_status) */
#define NGX_HTTP_APIPOLICY_JWT_CACHE_NONE    0
#define NGX_HTTP_APIPOLICY_JWT_CACHE_MISS    1
#define NGX_HTTP_APIPOLICY_JWT_CACHE_HIT     2


/* apipolicy_jwt_cache NAME:SIZE [max_ttl=TIME] (http) | on | off */
char *ngx_http_apipolicy_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* a zone of 32-byte keys with expiries (LRU); NULL on error (logged) */
ngx_shm_zone_t *ngx_http_apipolicy_key_zone_add(ngx_conf_t *cf,
    ngx_str_t *name, ssize_t size, time_t max_ttl);

/*
 * The identity of a key set: SHA-256 over every key's kid, type,
 * algorithm pins and material (the DER public key, or the secret).  A
 * token verified under one identity is never a hit under another.
 * "prev" (NULL or an identity) is mixed in first, so that keys fetched
 * at run time extend the identity of the configured ones.
 */
ngx_int_t ngx_http_apipolicy_jwt_cache_id(ngx_array_t *keys, u_char *prev,
    ngx_str_t *extra, u_char *id);

/*
 * Request time.  ngx_http_apipolicy_jwt_cache_key() derives the entry key
 * SHA-256(id || token) into "key"; lookup answers NGX_OK (a verified
 * entry that has not expired) or NGX_DECLINED; store remembers the key
 * until "exp" (0: the token has none), capped by max_ttl.
 */
ngx_int_t ngx_http_apipolicy_jwt_cache_key(u_char *id, ngx_str_t *token,
    u_char *key);
ngx_int_t ngx_http_apipolicy_jwt_cache_lookup(ngx_http_request_t *r,
    ngx_shm_zone_t *shm_zone, u_char *key);
void ngx_http_apipolicy_jwt_cache_store(ngx_http_request_t *r,
    ngx_shm_zone_t *shm_zone, u_char *key, time_t exp);

/*
 * The two calls the ACCESS step makes: check() before the signature is
 * verified (NGX_OK: a hit, skip it; NGX_DECLINED: no cache or a miss;
 * NGX_ERROR), update() once the token passed every check.  "id" is the
 * identity of the key set the token is verified with.
 */
ngx_int_t ngx_http_apipolicy_jwt_cache_check(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    u_char *id);
void ngx_http_apipolicy_jwt_cache_update(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx);

ngx_int_t ngx_http_apipolicy_jwt_cache_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


#endif /* _NGX_HTTP_APIPOLICY_JWT_CACHE_H_INCLUDED_ */
