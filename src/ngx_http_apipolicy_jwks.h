
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_JWKS_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_JWKS_H_INCLUDED_


#include "ngx_http_apipolicy.h"


/* apipolicy_jwt_key_request URI [issuer=] [refresh=] [cooldown=] [max_stale=] */
char *ngx_http_apipolicy_jwks_key_request(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_str_t *ngx_http_apipolicy_jwks_issuer(ngx_http_apipolicy_jwks_t *src);

/*
 * Warns when the location a key request is answered by proxies over
 * https without proxy_ssl_verify (anyone on that path could supply keys)
 */
void ngx_http_apipolicy_jwks_postconfiguration(ngx_conf_t *cf);

/*
 * The keys fetched for the location's apipolicy_jwt_key_request, as this
 * worker last parsed them, and the identity of that key set (for the
 * verified-token cache).
 *
 *   NGX_OK        *keys and id are set (the keys may be older than
 *                 refresh=: a refetch has then been started, and the
 *                 request goes on with the current keys)
 *   NGX_AGAIN     no usable keys yet: a fetch runs, jctx->waiting is
 *                 set and the request is resumed when it ends
 *   NGX_DECLINED  no usable keys, and none coming (the last fetch failed
 *                 less than cooldown= ago, or this request waited once)
 *   NGX_ERROR
 */
ngx_int_t ngx_http_apipolicy_jwks_keys(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_array_t **keys, u_char *id);

/*
 * The token names a kid the keys do not have: NGX_AGAIN when a refetch
 * was started (or one is running) and the request waits for it,
 * NGX_DECLINED when not (one per cooldown=; a request waits once).
 */
/* for the metrics (ngx_http_apipolicy_status.c) */
ngx_str_t *ngx_http_apipolicy_jwks_stats(ngx_http_apipolicy_jwks_t *src,
    ngx_uint_t *ok, ngx_uint_t *failed, time_t *age);
ngx_str_t *ngx_http_apipolicy_jwks_zone_label(
    ngx_http_apipolicy_main_conf_t *amcf, ngx_shm_zone_t *shm_zone);

ngx_int_t ngx_http_apipolicy_jwks_unknown_kid(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx);


#endif /* _NGX_HTTP_APIPOLICY_JWKS_H_INCLUDED_ */
