
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_WEBHOOK_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_WEBHOOK_H_INCLUDED_


#include "ngx_http_apipolicy.h"


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



/* the schemes by number (1..6; 0 unused), as written in apipolicy_webhook */
#define NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES  7

/* the name of scheme 1..6, as in the directive and the metrics */
ngx_str_t *ngx_http_apipolicy_webhook_scheme_name(ngx_uint_t scheme);

/* apipolicy_webhook SCHEME secret=... [...] | off */
char *ngx_http_apipolicy_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* apipolicy_webhook_zone NAME:SIZE (http): delivered message ids */
char *ngx_http_apipolicy_webhook_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

char *ngx_http_apipolicy_webhook_merge_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_loc_conf_t *prev, ngx_http_apipolicy_loc_conf_t *conf);

/*
 * The ACCESS step: reads the body without blocking (NGX_DONE while it
 * arrives), then NGX_OK (the signature verified), or 401/409 through
 * ngx_http_apipolicy_reject().  Re-entrant.
 */
ngx_int_t ngx_http_apipolicy_webhook_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);

/* header filter: a 2xx answer marks the delivery's id as seen */
ngx_int_t ngx_http_apipolicy_webhook_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);


/* what the webhook step decided, for the metrics; *scheme its scheme */
#define NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_NONE      0  /* no step, or it
                                                          has not ended */
#define NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_VERIFIED  1
#define NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_REFUSED   2

ngx_uint_t ngx_http_apipolicy_webhook_outcome(ngx_http_apipolicy_ctx_t *ctx,
    ngx_uint_t *scheme);

#endif /* _NGX_HTTP_APIPOLICY_WEBHOOK_H_INCLUDED_ */
