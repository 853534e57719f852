
/*
 * Copyright (C) apipolicy authors
 *
 * Webhook signature verification in the ACCESS phase, over the raw body
 * as received (in memory or buffered to a temporary file).
 *
 *   scheme    header(s)                          signed content    MAC
 *   standard  webhook-id, -timestamp, -signature id.ts.body        b64
 *             (or svix-*; "v1,SIG v1,SIG": several allowed; the secret
 *             is base64, "whsec_" in front or not, as the SDKs read it)
 *   stripe    Stripe-Signature: t=TS,v1=SIG,...   ts.body           hex
 *             (the whsec_ secret is used as it is, as Stripe does)
 *   github    X-Hub-Signature-256: sha256=SIG     body              hex
 *   slack     X-Slack-Signature: v0=SIG,          v0:ts:body        hex
 *             X-Slack-Request-Timestamp
 *   shopify   X-Shopify-Hmac-Sha256: SIG          body              b64
 *             (or shopify-hmac-sha256)
 *   hmac      header=NAME [prefix=P] [encoding=hex|base64], body
 *
 * All are HMAC-SHA256.  Every configured secret is tried (rotation) and
 * every signature the header carries, compared in constant time.  A
 * timestamp must be within tolerance= of now, in either direction.  With
 * replay_zone=, a delivery is keyed on what only the secret can make
 * (the signed webhook-id, else the signature that verified) and claimed
 * when it verifies: a copy seen before or in flight gets 409; the claim
 * is given back when the upstream's answer is not 2xx or the request
 * ends without one, so a provider's retry still gets through.  Every
 * 401 carries WWW-Authenticate: Webhook-Signature.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_webhook.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_util.h"
#include "ngx_http_apipolicy_shm.h"
#include "ngx_http_apipolicy_digest.h"
#include "ngx_http_apipolicy_crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>


#define NGX_HTTP_APIPOLICY_WEBHOOK_MAX_HEADER 4096
#define NGX_HTTP_APIPOLICY_WEBHOOK_REPLAY_TTL 86400
#define NGX_HTTP_APIPOLICY_WEBHOOK_CLAIM_TTL  600   /* an id claimed by a
                                                       request that never
                                                       ended */

/*
 * The replay zone's magic, its own since the keyed zones' index changed
 * layout: a zone kept across a reload from a build with the old index
 * (which shared the verified-token cache's value) is refused, not misread
 */
#define NGX_HTTP_APIPOLICY_WEBHOOK_MAGIC      0x617077686b303031  /* apwhk001 */


static void ngx_http_apipolicy_webhook_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_apipolicy_webhook_body_in(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_webhook_refuse(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_http_apipolicy_problem_t *problem, ngx_uint_t level,
    ngx_str_t *detail);
static void ngx_http_apipolicy_webhook_unclaim(void *data);
static ngx_int_t ngx_http_apipolicy_webhook_verify(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_webhook_claim(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_http_apipolicy_webhook_parsed_t *ps, u_char *matched);
static ngx_int_t ngx_http_apipolicy_webhook_parse(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf,
    ngx_http_apipolicy_webhook_parsed_t *ps, ngx_str_t *detail);
static ngx_http_apipolicy_webhook_names_t *ngx_http_apipolicy_webhook_family(
    ngx_http_request_t *r, ngx_http_apipolicy_webhook_scheme_t *desc);
static ngx_int_t ngx_http_apipolicy_webhook_timed(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf,
    ngx_http_apipolicy_webhook_names_t *names,
    ngx_http_apipolicy_webhook_parsed_t *ps, ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_webhook_sigs_list(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *value,
    ngx_http_apipolicy_webhook_parsed_t *ps);
static ngx_int_t ngx_http_apipolicy_webhook_sigs_one(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *value,
    ngx_http_apipolicy_webhook_parsed_t *ps);
static void ngx_http_apipolicy_webhook_message_standard(
    ngx_http_apipolicy_webhook_parsed_t *ps);
static void ngx_http_apipolicy_webhook_message_stripe(
    ngx_http_apipolicy_webhook_parsed_t *ps);
static void ngx_http_apipolicy_webhook_message_slack(
    ngx_http_apipolicy_webhook_parsed_t *ps);
static void ngx_http_apipolicy_webhook_message_body(
    ngx_http_apipolicy_webhook_parsed_t *ps);
static ngx_int_t ngx_http_apipolicy_webhook_mac(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_key_t *key,
    ngx_http_apipolicy_webhook_parsed_t *ps, u_char *mac);
static ngx_int_t ngx_http_apipolicy_webhook_sig(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_parsed_t *ps, u_char *p, size_t len,
    ngx_uint_t encoding);
static ngx_int_t ngx_http_apipolicy_webhook_timestamp(ngx_str_t *ts,
    time_t tolerance, ngx_str_t *detail);
static ngx_table_elt_t *ngx_http_apipolicy_webhook_get(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *detail, ngx_int_t *rc);

static ngx_int_t ngx_http_apipolicy_webhook_replay_claim(
    ngx_http_request_t *r, ngx_shm_zone_t *zone, u_char *key);
static void ngx_http_apipolicy_webhook_replay_keep(ngx_http_request_t *r,
    ngx_shm_zone_t *zone, u_char *key);
static void ngx_http_apipolicy_webhook_replay_full(ngx_http_request_t *r,
    ngx_shm_zone_t *zone);
static void ngx_http_apipolicy_webhook_replay_forget(ngx_shm_zone_t *zone,
    u_char *key);
static ngx_int_t ngx_http_apipolicy_webhook_conf_parse(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf);
static ngx_int_t ngx_http_apipolicy_webhook_conf_secret(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *arg);
static ngx_int_t ngx_http_apipolicy_webhook_conf_custom(
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *s);
static ngx_int_t ngx_http_apipolicy_webhook_conf_validate(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf);
static ngx_int_t ngx_http_apipolicy_webhook_conf_precompute(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf);


#define ngx_http_apipolicy_webhook_null                                      \
    { ngx_null_string, ngx_null_string, ngx_null_string }

/* the schemes by number, as the head of this file describes them */

static ngx_http_apipolicy_webhook_scheme_t
    ngx_http_apipolicy_webhook_scheme_table[] = {

    { ngx_null_string, { ngx_http_apipolicy_webhook_null,
                         ngx_http_apipolicy_webhook_null },
      ngx_null_string, 0, 0, ngx_null_string, 0, 0, 0, 0, 0, NULL, NULL },

    { ngx_string("standard"),
      { { ngx_string("webhook-signature"), ngx_string("webhook-timestamp"),
          ngx_string("webhook-id") },
        { ngx_string("svix-signature"), ngx_string("svix-timestamp"),
          ngx_string("svix-id") } },
      ngx_string("v1,"), NGX_HTTP_APIPOLICY_WEBHOOK_BASE64, ' ',
      ngx_null_string,
      300, 1, 0, 1, 0,
      ngx_http_apipolicy_webhook_sigs_list,
      ngx_http_apipolicy_webhook_message_standard },

    { ngx_string("stripe"),
      { { ngx_string("Stripe-Signature"), ngx_null_string, ngx_null_string },
        ngx_http_apipolicy_webhook_null },
      ngx_string("v1="), NGX_HTTP_APIPOLICY_WEBHOOK_HEX, ',', ngx_string("t="),
      300, 0, 0, 0, 0,
      ngx_http_apipolicy_webhook_sigs_list,
      ngx_http_apipolicy_webhook_message_stripe },

    { ngx_string("github"),
      { { ngx_string("X-Hub-Signature-256"), ngx_null_string,
          ngx_string("X-GitHub-Delivery") },
        ngx_http_apipolicy_webhook_null },
      ngx_string("sha256="), NGX_HTTP_APIPOLICY_WEBHOOK_HEX, 0, ngx_null_string,
      0, 0, 1, 0, 0,
      ngx_http_apipolicy_webhook_sigs_one,
      ngx_http_apipolicy_webhook_message_body },

    { ngx_string("slack"),
      { { ngx_string("X-Slack-Signature"),
          ngx_string("X-Slack-Request-Timestamp"), ngx_null_string },
        ngx_http_apipolicy_webhook_null },
      ngx_string("v0="), NGX_HTTP_APIPOLICY_WEBHOOK_HEX, 0, ngx_null_string,
      300, 0, 0, 0, 0,
      ngx_http_apipolicy_webhook_sigs_one,
      ngx_http_apipolicy_webhook_message_slack },

    { ngx_string("shopify"),
      { { ngx_string("X-Shopify-Hmac-Sha256"), ngx_null_string,
          ngx_string("X-Shopify-Webhook-Id") },
        { ngx_string("shopify-hmac-sha256"), ngx_null_string,
          ngx_string("shopify-webhook-id") } },
      ngx_null_string, NGX_HTTP_APIPOLICY_WEBHOOK_BASE64, 0, ngx_null_string,
      0, 0, 1, 0, 0,
      ngx_http_apipolicy_webhook_sigs_one,
      ngx_http_apipolicy_webhook_message_body },

    { ngx_string("hmac"),
      { ngx_http_apipolicy_webhook_null, ngx_http_apipolicy_webhook_null },
      ngx_null_string, NGX_HTTP_APIPOLICY_WEBHOOK_HEX, 0, ngx_null_string,
      0, 0, 1, 0, 1,
      ngx_http_apipolicy_webhook_sigs_one,
      ngx_http_apipolicy_webhook_message_body },

    { ngx_null_string, { ngx_http_apipolicy_webhook_null,
                         ngx_http_apipolicy_webhook_null },
      ngx_null_string, 0, 0, ngx_null_string, 0, 0, 0, 0, 0, NULL, NULL }
};


static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_webhook_missing =
    ngx_http_apipolicy_problem("SIGNATURE_MISSING", "signature-missing",
                               "Webhook signature required");

static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_webhook_invalid =
    ngx_http_apipolicy_problem("SIGNATURE_INVALID", "signature-invalid",
                               "Webhook signature invalid");

static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_webhook_time =
    ngx_http_apipolicy_problem("TIMESTAMP_OUT_OF_TOLERANCE",
                               "timestamp-out-of-tolerance",
                               "Webhook timestamp out of tolerance");

static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_webhook_replayed =
    ngx_http_apipolicy_problem("WEBHOOK_REPLAYED", "webhook-replayed",
                               "Webhook already delivered");


/* ---- request time ---------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_webhook_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_int_t                          rc;
    ngx_http_apipolicy_webhook_ctx_t  *wctx;

    if (alcf->webhook.scheme == 0) {
        return NGX_DECLINED;
    }

    wctx = ctx->webhook;

    if (wctx) {
        return wctx->done ? wctx->status : NGX_AGAIN;
    }

    wctx = ngx_pcalloc(r->pool, sizeof(ngx_http_apipolicy_webhook_ctx_t));
    if (wctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->webhook = wctx;

    rc = ngx_http_apipolicy_read_body(r, ctx, ngx_http_apipolicy_webhook_body);

    if (rc != NGX_OK) {
        return rc;
    }

    /* the body was all there */

    return ngx_http_apipolicy_webhook_body_in(r, alcf, ctx);
}


/* the body is in: verified, the verdict kept for the phase handler */

static ngx_int_t
ngx_http_apipolicy_webhook_body_in(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    ctx->webhook->scheme = alcf->webhook.scheme;
    ctx->webhook->status = ngx_http_apipolicy_webhook_verify(r, &alcf->webhook,
                                                             ctx);
    ctx->webhook->done = 1;

    return ctx->webhook->status;
}


static void
ngx_http_apipolicy_webhook_body(ngx_http_request_t *r)
{
    ngx_http_apipolicy_ctx_t       *ctx;
    ngx_http_apipolicy_loc_conf_t  *alcf;

    ctx = ngx_http_apipolicy_get_ctx(r);

    if (ngx_http_apipolicy_body_at_once(ctx)) {
        return;                     /* the phase handler goes on */
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

    if (ctx == NULL || ctx->webhook == NULL || alcf->webhook.scheme == 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    (void) ngx_http_apipolicy_webhook_body_in(r, alcf, ctx);

    ngx_http_apipolicy_resume(r);
}


static ngx_int_t
ngx_http_apipolicy_webhook_verify(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_http_apipolicy_ctx_t *ctx)
{
    u_char                               mac[EVP_MAX_MD_SIZE], matched[32];
    ngx_int_t                            rc;
    ngx_str_t                            detail, *sig;
    ngx_uint_t                           i, j, ok;
    ngx_http_apipolicy_webhook_key_t    *key;
    ngx_http_apipolicy_webhook_parsed_t  ps;

    ngx_memzero(&ps, sizeof(ngx_http_apipolicy_webhook_parsed_t));
    ngx_str_null(&detail);

    rc = ngx_http_apipolicy_webhook_parse(r, wcf, &ps, &detail);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_apipolicy_webhook_refuse(r, wcf, ctx,
                        rc == NGX_DECLINED ? &ngx_http_apipolicy_webhook_missing
                        : rc == NGX_ABORT ? &ngx_http_apipolicy_webhook_time
                        : &ngx_http_apipolicy_webhook_invalid,
                        rc == NGX_DECLINED ? NGX_LOG_INFO : NGX_LOG_ERR,
                        &detail);
    }

    /* every secret against every signature, in constant time */

    ok = 0;
    key = wcf->keys->elts;
    sig = ps.sigs.elts;

    for (i = 0; i < wcf->keys->nelts; i++) {

        if (ngx_http_apipolicy_webhook_mac(r, &key[i], &ps, mac)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (j = 0; j < ps.sigs.nelts; j++) {
            if (ngx_http_apipolicy_crypto_equal(sig[j].data, mac, 32)) {
                ngx_memcpy(matched, mac, 32);
                ok = 1;
            }
        }

        OPENSSL_cleanse(mac, sizeof(mac));
    }

    if (!ok) {
        ngx_str_set(&detail, "no signature matches the body and a secret");
        return ngx_http_apipolicy_webhook_refuse(r, wcf, ctx,
                                           &ngx_http_apipolicy_webhook_invalid,
                                           NGX_LOG_ERR, &detail);
    }

    if (wcf->replay) {
        rc = ngx_http_apipolicy_webhook_claim(r, wcf, ctx, &ps, matched);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    OPENSSL_cleanse(matched, sizeof(matched));

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy webhook: %V signature verified",
                   &wcf->desc->name);

    return NGX_OK;
}


/* a 401 of the webhook area, with its challenge (RFC 9110 section 15.5.2) */

static ngx_int_t
ngx_http_apipolicy_webhook_refuse(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_http_apipolicy_problem_t *problem, ngx_uint_t level,
    ngx_str_t *detail)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value = wcf->challenge;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    if (r->headers_out.www_authenticate == NULL) {
        r->headers_out.www_authenticate = h;
    }

    return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_UNAUTHORIZED, problem,
                                     level, detail);
}


/* the request ended: an id it claimed but did not deliver is free again */

static void
ngx_http_apipolicy_webhook_unclaim(void *data)
{
    ngx_http_apipolicy_webhook_claim_t  *claim = data;

    if (claim->wctx->has_id && !claim->wctx->stored) {
        ngx_http_apipolicy_webhook_replay_forget(claim->zone,
                                                 claim->wctx->id);
        claim->wctx->stored = 1;
    }
}


/*
 * The replay zone, a keyed LRU zone (ngx_http_apipolicy_shm.c) of
 * delivery ids.  claim: the id taken for CLAIM_TTL seconds, so that a
 * concurrent copy finds it (NGX_OK: taken now, NGX_DECLINED: a live
 * entry has it, NGX_ERROR: no room, said), and pinned: a zone full of
 * other deliveries frees older ones, never the claim of a request
 * still in flight, whose copy would then pass; keep: delivered, kept
 * for REPLAY_TTL, no longer pinned; forget: given back.
 */

static ngx_int_t
ngx_http_apipolicy_webhook_replay_claim(ngx_http_request_t *r,
    ngx_shm_zone_t *zone, u_char *key)
{
    ngx_int_t                    rc;
    ngx_http_apipolicy_shm_t    *shm;
    ngx_http_apipolicy_hnode_t  *hn;

    shm = zone->data;
    rc = NGX_OK;

    ngx_shmtx_lock(&shm->shpool->mutex);

    if (ngx_http_apipolicy_shm_find(shm, key)) {
        rc = NGX_DECLINED;

    } else {
        ngx_http_apipolicy_shm_expire(shm, 2);

        hn = ngx_http_apipolicy_shm_insert(shm, key,
                                       sizeof(ngx_http_apipolicy_hnode_t),
                                       ngx_time()
                                       + NGX_HTTP_APIPOLICY_WEBHOOK_CLAIM_TTL);
        if (hn) {
            hn->pinned = 1;         /* in flight: never evicted for room */

        } else {
            rc = NGX_ERROR;
        }
    }

    ngx_shmtx_unlock(&shm->shpool->mutex);

    if (rc == NGX_ERROR) {
        ngx_http_apipolicy_webhook_replay_full(r, zone);
    }

    return rc;
}


static void
ngx_http_apipolicy_webhook_replay_keep(ngx_http_request_t *r,
    ngx_shm_zone_t *zone, u_char *key)
{
    time_t                       expires;
    ngx_http_apipolicy_shm_t    *shm;
    ngx_http_apipolicy_hnode_t  *hn;

    shm = zone->data;
    expires = ngx_time() + NGX_HTTP_APIPOLICY_WEBHOOK_REPLAY_TTL;

    ngx_shmtx_lock(&shm->shpool->mutex);

    hn = ngx_http_apipolicy_shm_find(shm, key);

    if (hn == NULL) {
        /* the claim was freed meanwhile: the id is taken again */
        ngx_http_apipolicy_shm_expire(shm, 2);
        hn = ngx_http_apipolicy_shm_insert(shm, key,
                                           sizeof(ngx_http_apipolicy_hnode_t),
                                           expires);
    }

    if (hn) {
        hn->expires = (uint32_t) expires;
        hn->pinned = 0;
    }

    ngx_shmtx_unlock(&shm->shpool->mutex);

    if (hn == NULL) {
        ngx_http_apipolicy_webhook_replay_full(r, zone);
    }
}


/* every entry a claim in flight: the delivery goes without a replay check */

static void
ngx_http_apipolicy_webhook_replay_full(ngx_http_request_t *r,
    ngx_shm_zone_t *zone)
{
    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "apipolicy webhook: could not allocate an entry in zone "
                  "\"%V\"", &zone->shm.name);
}


static void
ngx_http_apipolicy_webhook_replay_forget(ngx_shm_zone_t *zone, u_char *key)
{
    ngx_http_apipolicy_shm_t    *shm;
    ngx_http_apipolicy_hnode_t  *hn;

    shm = zone->data;

    ngx_shmtx_lock(&shm->shpool->mutex);

    hn = ngx_http_apipolicy_shm_find(shm, key);

    if (hn) {
        ngx_http_apipolicy_shm_delete(shm, hn);
    }

    ngx_shmtx_unlock(&shm->shpool->mutex);
}


/*
 * A delivery seen before, or being delivered now.  The key is what
 * nobody can change without the secret: the signed delivery id for
 * "standard", else the signature that verified (it covers the body,
 * and the timestamp where there is one), never a header's text
 * (which "t=..,v1=..,v0=x" or upper-case hex would vary).  It is
 * claimed now, so that a concurrent copy gets 409 at once, and given
 * back when the upstream fails or the request ends without an answer.
 *
 * NGX_OK (claimed, or no room to: no replay check), or the status
 * to end the request with.
 */

static ngx_int_t
ngx_http_apipolicy_webhook_claim(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_http_apipolicy_webhook_parsed_t *ps, u_char *matched)
{
    ngx_int_t                            rc;
    ngx_str_t                            detail;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_apipolicy_sha_t             md;
    ngx_http_apipolicy_webhook_claim_t  *claim;

    ngx_http_apipolicy_sha_init(&md, NGX_HTTP_APIPOLICY_SHA256);
    ngx_http_apipolicy_sha_update(&md, wcf->desc->name.data,
                                  wcf->desc->name.len);
    ngx_http_apipolicy_sha_update(&md, ps->id.len ? ":id:" : ":mac:",
                                  ps->id.len ? 4 : 5);
    ngx_http_apipolicy_sha_update(&md, ps->id.len ? ps->id.data : matched,
                                  ps->id.len ? ps->id.len : 32);
    ngx_http_apipolicy_sha_final(&md, ctx->webhook->id);

    rc = ngx_http_apipolicy_webhook_replay_claim(r, wcf->replay,
                                                 ctx->webhook->id);

    if (rc == NGX_DECLINED) {
        ngx_str_set(&detail, "this delivery was already accepted, or "
                             "is being delivered");
        return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_CONFLICT,
                                         &ngx_http_apipolicy_webhook_replayed,
                                         NGX_LOG_INFO, &detail);
    }

    if (rc == NGX_OK) {
        cln = ngx_pool_cleanup_add(r->pool,
                                   sizeof(ngx_http_apipolicy_webhook_claim_t));
        if (cln == NULL) {
            ngx_http_apipolicy_webhook_replay_forget(wcf->replay,
                                                     ctx->webhook->id);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        claim = cln->data;
        claim->zone = wcf->replay;
        claim->wctx = ctx->webhook;
        cln->handler = ngx_http_apipolicy_webhook_unclaim;

        ctx->webhook->has_id = 1;
    }

    /* NGX_ERROR: no room in the zone (said): no replay check */

    return NGX_OK;
}


/*
 * The scheme's headers: NGX_OK with the signatures and what is signed
 * before the body, NGX_DECLINED (a header is missing), NGX_ABORT (the
 * timestamp is out of tolerance), NGX_BUSY (malformed), NGX_ERROR.
 */

static ngx_int_t
ngx_http_apipolicy_webhook_parse(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf,
    ngx_http_apipolicy_webhook_parsed_t *ps, ngx_str_t *detail)
{
    ngx_int_t                            rc;
    ngx_uint_t                           count;
    ngx_table_elt_t                     *h, *hid, *hts;
    ngx_http_apipolicy_webhook_names_t  *names;

    rc = NGX_OK;
    hid = NULL;
    hts = NULL;

    if (ngx_array_init(&ps->sigs, r->pool, 4, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    names = ngx_http_apipolicy_webhook_family(r, wcf->desc);

    if (names->id.len && wcf->desc->id_signed) {
        hid = ngx_http_apipolicy_webhook_get(r, &names->id, detail, &rc);

    } else if (names->id.len && wcf->replay) {

        /*
         * an unsigned delivery id is no replay key (anyone may change
         * it), but the upstream may act on it: with replay protection
         * on, one sent twice or empty is refused, not guessed at
         */

        (void) ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                              &names->id, &count);
        if (count) {
            (void) ngx_http_apipolicy_webhook_get(r, &names->id, detail,
                                                  &rc);
        }
    }

    if (names->ts.len) {
        hts = ngx_http_apipolicy_webhook_get(r, &names->ts, detail, &rc);
    }

    h = ngx_http_apipolicy_webhook_get(r, names->sig.len ? &names->sig
                                                         : &wcf->header,
                                       detail, &rc);
    if (rc != NGX_OK) {
        return rc;
    }

    if (hts) {
        ps->ts = hts->value;
    }

    if (hid) {
        ps->id = hid->value;
    }

    if (wcf->desc->sigs(r, wcf, &h->value, ps) != NGX_OK) {
        return NGX_ERROR;
    }

    if (wcf->desc->tolerance) {
        rc = ngx_http_apipolicy_webhook_timed(r, wcf, names, ps, detail);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ps->sigs.nelts == 0) {
        ngx_str_set(detail, "the signature header holds no signature of the "
                            "expected form");
        return NGX_BUSY;
    }

    wcf->desc->message(ps);

    return NGX_OK;
}


/* the family of headers: the first whose signature header was sent */

static ngx_http_apipolicy_webhook_names_t *
ngx_http_apipolicy_webhook_family(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_scheme_t *desc)
{
    ngx_uint_t  count;

    if (desc->names[1].sig.len == 0) {
        return &desc->names[0];
    }

    (void) ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                          &desc->names[0].sig, &count);
    if (count) {
        return &desc->names[0];
    }

    (void) ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                          &desc->names[1].sig, &count);

    return count ? &desc->names[1] : &desc->names[0];
}


/*
 * The signed timestamp: there (Stripe's is in the signature header, the
 * others' headers are required) and within tolerance
 */

static ngx_int_t
ngx_http_apipolicy_webhook_timed(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf,
    ngx_http_apipolicy_webhook_names_t *names,
    ngx_http_apipolicy_webhook_parsed_t *ps, ngx_str_t *detail)
{
    u_char  *p;

    if (ps->ts.len == 0) {
        p = ngx_pnalloc(r->pool, sizeof("the  header has no ") - 1
                                 + names->sig.len + wcf->desc->ts_tag.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        detail->data = p;
        detail->len = ngx_sprintf(p, "the %V header has no %V",
                                  &names->sig, &wcf->desc->ts_tag)
                      - p;
        return NGX_BUSY;
    }

    return ngx_http_apipolicy_webhook_timestamp(&ps->ts, wcf->tolerance,
                                                detail);
}


/*
 * Signatures in a list ("v1,SIG v1,SIG" of Standard Webhooks, separated
 * by spaces; "t=TS,v1=SIG,v0=..." of Stripe, by commas): those with the
 * scheme's version tag, other versions (v1a, v0) skipped.
 */

static ngx_int_t
ngx_http_apipolicy_webhook_sigs_list(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *value,
    ngx_http_apipolicy_webhook_parsed_t *ps)
{
    u_char                               *p, *last, *start;
    size_t                                len;
    ngx_http_apipolicy_webhook_scheme_t  *desc;

    desc = wcf->desc;
    p = value->data;
    last = p + value->len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == desc->sep)) {
            p++;
        }

        start = p;

        while (p < last && *p != desc->sep) {
            p++;
        }

        len = p - start;

        if (desc->ts_tag.len && len > desc->ts_tag.len
            && ngx_strncmp(start, desc->ts_tag.data, desc->ts_tag.len) == 0)
        {
            ps->ts.data = start + desc->ts_tag.len;
            ps->ts.len = len - desc->ts_tag.len;

        } else if (len > wcf->prefix.len
                   && ngx_strncmp(start, wcf->prefix.data, wcf->prefix.len)
                      == 0)
        {
            if (ngx_http_apipolicy_webhook_sig(r, ps,
                                               start + wcf->prefix.len,
                                               len - wcf->prefix.len,
                                               wcf->encoding)
                == NGX_ERROR)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* one signature: the whole value, after the prefix */

static ngx_int_t
ngx_http_apipolicy_webhook_sigs_one(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *value,
    ngx_http_apipolicy_webhook_parsed_t *ps)
{
    ngx_int_t  rc;

    if (value->len <= wcf->prefix.len) {
        return NGX_OK;
    }

    if (wcf->desc->prefix_nocase) {
        rc = ngx_strncasecmp(value->data, wcf->prefix.data, wcf->prefix.len);

    } else {
        rc = ngx_strncmp(value->data, wcf->prefix.data, wcf->prefix.len);
    }

    if (rc != 0) {
        return NGX_OK;
    }

    return ngx_http_apipolicy_webhook_sig(r, ps,
                                          value->data + wcf->prefix.len,
                                          value->len - wcf->prefix.len,
                                          wcf->encoding);
}


/* what each scheme signs before the body */

static void
ngx_http_apipolicy_webhook_message_standard(
    ngx_http_apipolicy_webhook_parsed_t *ps)
{
    ps->head[0] = ps->id;
    ngx_str_set(&ps->head[1], ".");
    ps->head[2] = ps->ts;
    ngx_str_set(&ps->head[3], ".");
    ps->nhead = 4;
}


static void
ngx_http_apipolicy_webhook_message_stripe(
    ngx_http_apipolicy_webhook_parsed_t *ps)
{
    ps->head[0] = ps->ts;
    ngx_str_set(&ps->head[1], ".");
    ps->nhead = 2;
}


static void
ngx_http_apipolicy_webhook_message_slack(
    ngx_http_apipolicy_webhook_parsed_t *ps)
{
    ngx_str_set(&ps->head[0], "v0:");
    ps->head[1] = ps->ts;
    ngx_str_set(&ps->head[2], ":");
    ps->nhead = 3;
}


/* github, shopify, hmac: the body alone */

static void
ngx_http_apipolicy_webhook_message_body(
    ngx_http_apipolicy_webhook_parsed_t *ps)
{
    ps->nhead = 0;
}


/* HMAC-SHA256(secret, head.. [.] body), the body read from memory or file */

static ngx_int_t
ngx_http_apipolicy_webhook_mac(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_key_t *key,
    ngx_http_apipolicy_webhook_parsed_t *ps, u_char *mac)
{
    ngx_uint_t                i;
    ngx_http_apipolicy_sha_t  md;

    ngx_http_apipolicy_hmac_begin(&key->hmac, &md);

    for (i = 0; i < ps->nhead; i++) {
        ngx_http_apipolicy_sha_update(&md, ps->head[i].data, ps->head[i].len);
    }

    if (ngx_http_apipolicy_request_body_feed(r,
                                             ngx_http_apipolicy_digest_feed,
                                             &md)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "apipolicy webhook: the body could not be read");
        ngx_http_apipolicy_sha_clear(&md);
        return NGX_ERROR;
    }

    ngx_http_apipolicy_hmac_end(&key->hmac, &md, mac);

    return NGX_OK;
}


/*
 * A request header that must be there once: NULL with *rc = NGX_DECLINED
 * (missing) or NGX_BUSY (several, empty or too long).
 */

static ngx_table_elt_t *
ngx_http_apipolicy_webhook_get(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *detail, ngx_int_t *rc)
{
    u_char           *p;
    size_t            len;
    ngx_uint_t        count;
    const char       *fmt;
    ngx_table_elt_t  *h;

    if (*rc != NGX_OK) {
        return NULL;                    /* an earlier header failed */
    }

    h = ngx_http_apipolicy_find_header(&r->headers_in.headers, name, &count);

    if (count == 1 && h->value.len
        && h->value.len <= NGX_HTTP_APIPOLICY_WEBHOOK_MAX_HEADER)
    {
        return h;
    }

    /*
     * One format per outcome, and the room for the longest of them: the
     * message is written with ngx_snprintf() into that room, never past it
     */

    if (count == 0) {
        fmt = "the %V header is missing";
        *rc = NGX_DECLINED;

    } else if (count > 1) {
        fmt = "several %V headers were sent";
        *rc = NGX_BUSY;

    } else {
        fmt = "the %V header is empty or too long";
        *rc = NGX_BUSY;
    }

    len = name->len + ngx_max(sizeof("several  headers were sent"),
                          sizeof("the  header is empty or too long"));

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        *rc = NGX_ERROR;
        return NULL;
    }

    detail->data = p;
    detail->len = ngx_snprintf(p, len, fmt, name) - p;

    return NULL;
}


/*
 * One signature from a header, decoded; wrong lengths are kept out.  No
 * count limit: the header is at most NGX_HTTP_APIPOLICY_WEBHOOK_MAX_HEADER
 * bytes, so it holds at most about a hundred signatures.
 */

static ngx_int_t
ngx_http_apipolicy_webhook_sig(ngx_http_request_t *r,
    ngx_http_apipolicy_webhook_parsed_t *ps, u_char *p, size_t len,
    ngx_uint_t encoding)
{
    u_char    *d, c, v;
    size_t     i;
    ngx_str_t  src, dst, *sig;

    if (encoding == NGX_HTTP_APIPOLICY_WEBHOOK_HEX) {

        if (len != 64) {
            return NGX_OK;
        }

        d = ngx_pnalloc(r->pool, 32);
        if (d == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < 64; i++) {
            c = p[i];

            if (c >= '0' && c <= '9') {
                v = c - '0';

            } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                v = (c | 0x20) - 'a' + 10;

            } else {
                return NGX_OK;
            }

            d[i / 2] = (i % 2) ? (d[i / 2] | v) : (u_char) (v << 4);
        }

        dst.data = d;
        dst.len = 32;

    } else {
        if (len != 44) {                /* 32 bytes in base64 */
            return NGX_OK;
        }

        src.data = p;
        src.len = len;

        dst.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(len));
        if (dst.data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_decode_base64(&dst, &src) != NGX_OK || dst.len != 32) {
            return NGX_OK;
        }
    }

    sig = ngx_array_push(&ps->sigs);
    if (sig == NULL) {
        return NGX_ERROR;
    }

    *sig = dst;

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_webhook_timestamp(ngx_str_t *ts, time_t tolerance,
    ngx_str_t *detail)
{
    time_t  t, now;

    t = ngx_atotm(ts->data, ts->len);

    if (t == NGX_ERROR) {
        ngx_str_set(detail, "the timestamp is not a number of seconds");
        return NGX_BUSY;
    }

    now = ngx_time();

    if (t < now - tolerance || t > now + tolerance) {
        ngx_str_set(detail, "the timestamp is too far from the gateway's "
                            "clock");
        return NGX_ABORT;
    }

    return NGX_OK;
}


/*
 * The answer decides the claimed id: a 2xx delivered it (kept a day);
 * anything else gives it back, so the provider's retry gets through.
 */

ngx_int_t
ngx_http_apipolicy_webhook_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_http_apipolicy_loc_conf_t  *alcf;

    if (ctx->webhook == NULL || !ctx->webhook->has_id
        || ctx->webhook->stored)
    {
        return NGX_OK;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

    if (alcf->webhook.replay == NULL) {
        return NGX_OK;      /* the cleanup gives the id back */
    }

    if (r->headers_out.status >= 200 && r->headers_out.status < 300) {
        ngx_http_apipolicy_webhook_replay_keep(r, alcf->webhook.replay,
                                               ctx->webhook->id);

    } else {
        ngx_http_apipolicy_webhook_replay_forget(alcf->webhook.replay,
                                                 ctx->webhook->id);
    }

    ctx->webhook->stored = 1;

    return NGX_OK;
}


/* ---- configuration --------------------------------------------------- */

/* apipolicy_webhook_zone NAME:SIZE */

char *
ngx_http_apipolicy_webhook_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ssize_t                          size;
    ngx_str_t                       *value, name;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_apipolicy_shm_t        *shm;
    ngx_http_apipolicy_main_conf_t  *amcf;

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (ngx_http_apipolicy_conf_zone(cf, &value[1],
                                     "apipolicy_webhook_zone hooks:1m",
                                     &name, &size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    shm = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_shm_t));
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    shm->directive = "apipolicy_webhook_zone";
    shm->magic = NGX_HTTP_APIPOLICY_WEBHOOK_MAGIC;
    shm->root = sizeof(ngx_http_apipolicy_shm_sh_t);
    shm->node = sizeof(ngx_http_apipolicy_hnode_t);

    shm_zone = ngx_http_apipolicy_shm_add(cf, &name, size, shm);
    if (shm_zone == NULL
        || ngx_http_apipolicy_conf_list_add(cf, &amcf->webhook_zones,
                                            shm_zone)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    amcf->used = 1;

    return NGX_CONF_OK;
}


/*
 * apipolicy_webhook standard|stripe|github|slack|shopify|hmac
 *     secret=VALUE [secret=VALUE ...] [tolerance=TIME] [replay_zone=NAME]
 *     [header=NAME] [prefix=TEXT] [encoding=hex|base64]
 * apipolicy_webhook off
 */

char *
ngx_http_apipolicy_webhook(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_apipolicy_loc_conf_t  *alcf = conf;

    ngx_str_t                          *value;
    ngx_http_apipolicy_webhook_conf_t  *wcf;

    wcf = &alcf->webhook;

    if (wcf->scheme != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    wcf->scheme = 0;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            return "takes no parameters after \"off\"";
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_apipolicy_webhook_conf_parse(cf, wcf) == NGX_OK
        && ngx_http_apipolicy_webhook_conf_validate(cf, wcf) == NGX_OK
        && ngx_http_apipolicy_webhook_conf_precompute(cf, wcf) == NGX_OK)
    {
        return NGX_CONF_OK;
    }

    return NGX_CONF_ERROR;
}


/* the directive's words, each said when it is wrong */

static ngx_int_t
ngx_http_apipolicy_webhook_conf_parse(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf)
{
    ngx_str_t                            *value, s;
    ngx_uint_t                            i, n;
    ngx_http_apipolicy_main_conf_t       *amcf;
    ngx_http_apipolicy_webhook_scheme_t  *desc;

    value = cf->args->elts;
    desc = ngx_http_apipolicy_webhook_scheme_table;

    for (n = 1; desc[n].name.len; n++) {
        if (value[1].len == desc[n].name.len
            && ngx_strcmp(value[1].data, desc[n].name.data) == 0)
        {
            wcf->scheme = n;
            wcf->desc = &desc[n];
            break;
        }
    }

    if (wcf->scheme == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown webhook scheme \"%V\": use standard, "
                           "stripe, github, slack, shopify or hmac",
                           &value[1]);
        return NGX_ERROR;
    }

    wcf->tolerance = NGX_CONF_UNSET;
    wcf->prefix = wcf->desc->prefix;
    wcf->encoding = wcf->desc->encoding;

    wcf->secrets = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (wcf->secrets == NULL) {
        return NGX_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        s = value[i];

        if (s.len > 7 && ngx_strncmp(s.data, "secret=", 7) == 0) {
            if (ngx_http_apipolicy_webhook_conf_secret(cf, wcf, &value[i])
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (s.len > 10 && ngx_strncmp(s.data, "tolerance=", 10) == 0) {
            s.data += 10;
            s.len -= 10;

            wcf->tolerance = ngx_parse_time(&s, 1);

            if (wcf->tolerance == (time_t) NGX_ERROR || wcf->tolerance == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a time, as in "
                                   "\"tolerance=5m\"", &value[i]);
                return NGX_ERROR;
            }

            continue;
        }

        if (s.len > 12 && ngx_strncmp(s.data, "replay_zone=", 12) == 0) {
            s.data += 12;
            s.len -= 12;

            amcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_apipolicy_module);

            wcf->replay = ngx_http_apipolicy_conf_zone_find(cf,
                              amcf->webhook_zones, &s, "replay",
                              "apipolicy_webhook_zone");
            if (wcf->replay == NULL) {
                return NGX_ERROR;
            }

            continue;
        }

        if (wcf->desc->custom
            && ngx_http_apipolicy_webhook_conf_custom(wcf, &s) == NGX_OK)
        {
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"%s", &value[i],
                           !wcf->desc->custom
                           && (ngx_strncmp(s.data, "header=", 7) == 0
                               || ngx_strncmp(s.data, "prefix=", 7) == 0
                               || ngx_strncmp(s.data, "encoding=", 9) == 0)
                           ? ": header=, prefix= and encoding= belong to the "
                             "hmac scheme" : "");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* secret=VALUE: in any form the crypto helpers read, never empty */

static ngx_int_t
ngx_http_apipolicy_webhook_conf_secret(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf, ngx_str_t *arg)
{
    ngx_str_t  *secret, raw, b64;

    raw.data = arg->data + 7;
    raw.len = arg->len - 7;

    secret = ngx_array_push(wcf->secrets);
    if (secret == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_crypto_secret(cf, &raw, secret) != NGX_OK) {
        return NGX_ERROR;
    }

    if (wcf->desc->secret_base64
        && !(raw.len > 7 && ngx_strncmp(raw.data, "base64:", 7) == 0)
        && !(raw.len > 10 && ngx_strncmp(raw.data, "base64url:", 10) == 0))
    {
        /*
         * Standard Webhooks: the secret is base64, "whsec_" in front or
         * not, inline or in a file, as the SDKs read it ("base64:" and
         * "base64url:" give the key's bytes)
         */

        b64 = *secret;

        if (b64.len > 6 && ngx_strncmp(b64.data, "whsec_", 6) == 0) {
            b64.data += 6;
            b64.len -= 6;
        }

        secret->data = ngx_pnalloc(cf->pool,
                                   ngx_base64_decoded_length(b64.len));
        if (secret->data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_decode_base64(secret, &b64) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "a Standard Webhooks secret is base64, "
                               "with or without \"whsec_\" in front "
                               "(inline or in the file:): \"%V\" "
                               "is not", arg);
            return NGX_ERROR;
        }
    }

    if (secret->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "an empty secret can sign nothing");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* header=, prefix=, encoding= of the hmac scheme; NGX_DECLINED: none */

static ngx_int_t
ngx_http_apipolicy_webhook_conf_custom(ngx_http_apipolicy_webhook_conf_t *wcf,
    ngx_str_t *s)
{
    if (s->len > 7 && ngx_strncmp(s->data, "header=", 7) == 0) {
        wcf->header.data = s->data + 7;
        wcf->header.len = s->len - 7;
        return NGX_OK;
    }

    if (s->len > 7 && ngx_strncmp(s->data, "prefix=", 7) == 0) {
        wcf->prefix.data = s->data + 7;
        wcf->prefix.len = s->len - 7;
        return NGX_OK;
    }

    if (ngx_strcmp(s->data, "encoding=hex") == 0) {
        wcf->encoding = NGX_HTTP_APIPOLICY_WEBHOOK_HEX;
        return NGX_OK;
    }

    if (ngx_strcmp(s->data, "encoding=base64") == 0) {
        wcf->encoding = NGX_HTTP_APIPOLICY_WEBHOOK_BASE64;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* what the words say together */

static ngx_int_t
ngx_http_apipolicy_webhook_conf_validate(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf)
{
    ngx_str_t   *value;
    ngx_uint_t   n;

    value = cf->args->elts;

    if (wcf->secrets->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"secret=\" is required (repeat it to accept "
                           "an old and a new secret while rotating)");
        return NGX_ERROR;
    }

    if (wcf->desc->custom && wcf->header.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the hmac scheme needs \"header=\": the request "
                           "header that carries the signature");
        return NGX_ERROR;
    }

    /* it is named in the challenge, between quotes */

    for (n = 0; n < wcf->header.len; n++) {
        if (wcf->header.data[n] <= 0x20 || wcf->header.data[n] >= 0x7f
            || wcf->header.data[n] == '"' || wcf->header.data[n] == '\\')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"header=%V\" is not a header name",
                               &wcf->header);
            return NGX_ERROR;
        }
    }

    if (wcf->desc->tolerance == 0) {
        if (wcf->tolerance != NGX_CONF_UNSET) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" deliveries carry no timestamp: "
                               "tolerance= does not apply (use replay_zone= "
                               "against replays)", &value[1]);
            return NGX_ERROR;
        }

        wcf->tolerance = 0;

    } else if (wcf->tolerance == NGX_CONF_UNSET) {
        wcf->tolerance = wcf->desc->tolerance;
    }

    return NGX_OK;
}


/*
 * What a delivery needs ready: the HMAC states of every secret, and the
 * challenge of its 401s ("Webhook-Signature" is apipolicy's name, no
 * registered scheme fits; the parameters say what to send)
 */

static ngx_int_t
ngx_http_apipolicy_webhook_conf_precompute(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *wcf)
{
    ngx_str_t                         *secret, *header;
    ngx_uint_t                         i;
    ngx_http_apipolicy_webhook_key_t  *key;

    wcf->keys = ngx_array_create(cf->pool, wcf->secrets->nelts,
                                 sizeof(ngx_http_apipolicy_webhook_key_t));
    if (wcf->keys == NULL) {
        return NGX_ERROR;
    }

    secret = wcf->secrets->elts;

    for (i = 0; i < wcf->secrets->nelts; i++) {
        key = ngx_array_push(wcf->keys);
        if (key == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_apipolicy_crypto_hmac_key(cf->pool, &key->hmac,
                                               NGX_HTTP_APIPOLICY_SHA256,
                                               &secret[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    header = wcf->header.len ? &wcf->header : &wcf->desc->names[0].sig;

    wcf->challenge.len = sizeof("Webhook-Signature provider=\"\", "
                                "header=\"\"") - 1
                         + wcf->desc->name.len + header->len;
    wcf->challenge.data = ngx_pnalloc(cf->pool, wcf->challenge.len);
    if (wcf->challenge.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(wcf->challenge.data,
                "Webhook-Signature provider=\"%V\", header=\"%V\"",
                &wcf->desc->name, header);

    return NGX_OK;
}


void
ngx_http_apipolicy_webhook_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *conf)
{
    /*
     * set by ngx_pcalloc() with the location configuration:
     *
     *     conf->desc = NULL;
     *     conf->keys = NULL;
     *     conf->replay = NULL;
     *     ...
     */

    conf->scheme = NGX_CONF_UNSET_UINT;
}


/* apipolicy_webhook is inherited whole, or not at all */

char *
ngx_http_apipolicy_webhook_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_webhook_conf_t *prev,
    ngx_http_apipolicy_webhook_conf_t *conf)
{
    if (conf->scheme == NGX_CONF_UNSET_UINT) {
        if (prev->scheme == NGX_CONF_UNSET_UINT) {
            conf->scheme = 0;

        } else {
            *conf = *prev;
        }
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_apipolicy_webhook_phases(ngx_http_apipolicy_webhook_conf_t *conf)
{
    return conf->scheme ? NGX_HTTP_APIPOLICY_ACCESS : 0;
}


ngx_uint_t
ngx_http_apipolicy_webhook_outcome(ngx_http_apipolicy_ctx_t *ctx,
    ngx_uint_t *scheme)
{
    ngx_http_apipolicy_webhook_ctx_t  *wctx;

    wctx = ctx->webhook;

    if (wctx == NULL || !wctx->done) {
        *scheme = 0;
        return NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_NONE;
    }

    *scheme = wctx->scheme;

    if (wctx->status == NGX_OK) {
        return NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_VERIFIED;
    }

    return NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_REFUSED;
}


/* a scheme's name (1 .. NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES - 1) */

ngx_str_t *
ngx_http_apipolicy_webhook_scheme_name(ngx_uint_t scheme)
{
    return &ngx_http_apipolicy_webhook_scheme_table[scheme].name;
}
