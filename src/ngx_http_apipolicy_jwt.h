
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_JWT_H_INCLUDED_


#include "ngx_http_apipolicy.h"


/* directives (ngx_http_apipolicy_module.c, "JWT" block) */
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
char *ngx_http_apipolicy_jwt_sec_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_size_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_flag_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_apipolicy_jwt_cv_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* "VALUE", "base64:..", "base64url:..", "file:PATH" -> the secret's bytes */
ngx_int_t ngx_http_apipolicy_jwt_secret_value(ngx_conf_t *cf, ngx_str_t *src,
    ngx_str_t *out);

/* issuer=ISS of the key directives: 1 when "value" is that parameter */
ngx_uint_t ngx_http_apipolicy_jwt_issuer_param(ngx_str_t *value,
    ngx_str_t *issuer);
void ngx_http_apipolicy_jwt_keys_bind(ngx_array_t *keys, ngx_uint_t first,
    ngx_str_t *issuer);
/* a key bound to "bound" (empty: to none) may verify a token of "iss" */
ngx_uint_t ngx_http_apipolicy_jwt_key_for_issuer(ngx_str_t *bound,
    ngx_str_t *iss);

/* the location's JWT conf, created on the first JWT directive there */
ngx_http_apipolicy_jwt_conf_t *ngx_http_apipolicy_jwt_get_conf(ngx_conf_t *cf,
    void *conf);

char *ngx_http_apipolicy_jwt_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_loc_conf_t *prev, ngx_http_apipolicy_loc_conf_t *conf);
ngx_int_t ngx_http_apipolicy_jwt_enabled(ngx_http_apipolicy_loc_conf_t *alcf);

/*
 * The ACCESS step: NGX_OK (verified), NGX_DECLINED (not configured, or
 * "optional" without a token), 401/403 (refused, through
 * ngx_http_apipolicy_reject()).  Re-entrant: a second call for the same
 * policy returns the stored outcome, and NGX_AGAIN while ctx->jwt->waiting
 * is set (keys being fetched).
 */
ngx_int_t ngx_http_apipolicy_jwt_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);
void ngx_http_apipolicy_jwt_cleanup(ngx_http_apipolicy_ctx_t *ctx);

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
