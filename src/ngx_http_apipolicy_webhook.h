
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_WEBHOOK_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_WEBHOOK_H_INCLUDED_


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_digest.h"


/* the schemes by number (1..6; 0: none), as written in apipolicy_webhook */
#define NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES  7

/* the encoding of a signature */
#define NGX_HTTP_APIPOLICY_WEBHOOK_HEX       1
#define NGX_HTTP_APIPOLICY_WEBHOOK_BASE64    2


typedef struct ngx_http_apipolicy_webhook_conf_s
    ngx_http_apipolicy_webhook_conf_t;


/*
 * The headers of a scheme, in families: the first family whose
 * signature header was sent is read, and only it (Svix and Clerk send
 * svix-* for Standard Webhooks; Shopify's newer deliveries drop the X-).
 * An empty name: the scheme has no such header.
 */
typedef struct {
    ngx_str_t                          sig;
    ngx_str_t                          ts;
    ngx_str_t                          id;
} ngx_http_apipolicy_webhook_names_t;


/* what the headers of a delivery gave */
typedef struct {
    ngx_array_t                        sigs;      /* ngx_str_t, 32 bytes
                                                     each: as many as the
                                                     header holds */
    ngx_str_t                          ts;        /* the signed timestamp */
    ngx_str_t                          head[4];   /* signed before the body */
    ngx_uint_t                         nhead;
    ngx_str_t                          id;        /* signed delivery id
                                                     (standard), or empty:
                                                     the MAC is the key */
} ngx_http_apipolicy_webhook_parsed_t;


/*
 * sigs: the signatures of the signature header's value, decoded (and a
 * timestamp it carries, ts_tag=), NGX_OK or NGX_ERROR.  message: what
 * is signed before the body, from the parsed id and timestamp.
 */
typedef ngx_int_t (*ngx_http_apipolicy_webhook_sigs_pt)(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *value,
    ngx_http_apipolicy_webhook_parsed_t *ps);
typedef void (*ngx_http_apipolicy_webhook_message_pt)(
    ngx_http_apipolicy_webhook_parsed_t *ps);


/*
 * A scheme: what apipolicy_webhook, the verification and the metrics
 * read of it.  The challenge of its 401s names the first signature
 * header (or header=).
 */
typedef struct {
    ngx_str_t                          name;      /* the directive's word,
                                                     the metrics' label */
    ngx_http_apipolicy_webhook_names_t names[2]; /* header families */
    ngx_str_t                          prefix;    /* before a signature */
    ngx_uint_t                         encoding;  /* of a signature */
    u_char                             sep;       /* between signatures:
                                                     0 one signature */
    ngx_str_t                          ts_tag;    /* the timestamp in the
                                                     signature header */
    time_t                             tolerance; /* 0: nothing timed */
    unsigned                           id_signed:1;   /* the id is signed
                                                         and required; with
                                                         the others it is
                                                         optional */
    unsigned                           prefix_nocase:1;
    unsigned                           secret_base64:1; /* "whsec_" base64 */
    unsigned                           custom:1;  /* header=, prefix=,
                                                     encoding= */
    ngx_http_apipolicy_webhook_sigs_pt     sigs;
    ngx_http_apipolicy_webhook_message_pt  message;
} ngx_http_apipolicy_webhook_scheme_t;


/*
 * a secret, ready: HMAC-SHA256 states prepared once per secret (no
 * algorithm fetch a delivery, and the padded key is not hashed again)
 */
typedef struct {
    ngx_http_apipolicy_hmac_t          hmac;
} ngx_http_apipolicy_webhook_key_t;


/* apipolicy_webhook, embedded in the location configuration */
struct ngx_http_apipolicy_webhook_conf_s {
    ngx_uint_t                         scheme;    /* 0: none or "off";
                                                     NGX_CONF_UNSET_UINT:
                                                     not set here */
    ngx_http_apipolicy_webhook_scheme_t *desc;   /* its descriptor */
    ngx_array_t                       *secrets;   /* ngx_str_t */
    ngx_array_t                       *keys;      /* webhook_key_t, the same */
    time_t                             tolerance; /* 0: no timestamp */
    ngx_shm_zone_t                    *replay;
    ngx_str_t                          header;    /* the signature */
    ngx_str_t                          prefix;
    ngx_uint_t                         encoding;
    ngx_str_t                          challenge; /* WWW-Authenticate */
};


/* the request's state */
typedef struct {
    ngx_int_t                          status;    /* NGX_OK or the refusal */
    ngx_uint_t                         scheme;    /* for the metrics */
    u_char                             id[32];    /* delivery id, hashed */
    unsigned                           done:1;
    unsigned                           has_id:1;
    unsigned                           stored:1;
} ngx_http_apipolicy_webhook_ctx_t;


/* an id claimed in the replay zone, given back if nothing was delivered */
typedef struct {
    ngx_shm_zone_t                    *zone;
    ngx_http_apipolicy_webhook_ctx_t  *wctx;
} ngx_http_apipolicy_webhook_claim_t;


/* apipolicy_webhook SCHEME secret=... [...] | off */
char *ngx_http_apipolicy_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* apipolicy_webhook_zone NAME:SIZE (http): delivered message ids */
char *ngx_http_apipolicy_webhook_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

void ngx_http_apipolicy_webhook_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *conf);
char *ngx_http_apipolicy_webhook_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *prev,
    ngx_http_apipolicy_webhook_conf_t *conf);
ngx_uint_t ngx_http_apipolicy_webhook_phases(
    ngx_http_apipolicy_webhook_conf_t *conf);

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

/* the name of scheme 1..6, as in the directive and the metrics */
ngx_str_t *ngx_http_apipolicy_webhook_scheme_name(ngx_uint_t scheme);

#endif /* _NGX_HTTP_APIPOLICY_WEBHOOK_H_INCLUDED_ */
