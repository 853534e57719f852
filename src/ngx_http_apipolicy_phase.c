
/*
 * Copyright (C) apipolicy authors
 *
 * The request path: one dispatcher per phase runs the areas in the fixed
 * order of the design (handlers decide, the header filter writes):
 *
 *   PREACCESS   CORS (preflight answered with 204), sunset gate (410)
 *   ACCESS      JWT, webhook signature
 *   PRECONTENT  tiered rate limit, Idempotency-Key
 *
 * and the per-request context, which survives internal redirects
 * (error_page, try_files) because it is found again through its pool
 * cleanup, as nginx's realip module does.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_phase.h"
#include "ngx_http_apipolicy_cors.h"
#include "ngx_http_apipolicy_version.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_webhook.h"
#include "ngx_http_apipolicy_idempotency.h"
#include "ngx_http_apipolicy_status.h"


static void ngx_http_apipolicy_cleanup(void *data);
static ngx_int_t ngx_http_apipolicy_phase_start(ngx_http_request_t *r,
    ngx_uint_t phases, ngx_http_apipolicy_loc_conf_t **alcf,
    ngx_http_apipolicy_ctx_t **ctx);


ngx_http_apipolicy_ctx_t *
ngx_http_apipolicy_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_apipolicy_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /*
         * an internal redirect (error_page, try_files, named location)
         * or a filter finalization zeroed r->ctx: the context is still
         * anchored in the request pool's cleanup list
         */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_apipolicy_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_apipolicy_module);
                break;
            }
        }
    }

    return ctx;
}


ngx_http_apipolicy_ctx_t *
ngx_http_apipolicy_create_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_apipolicy_get_ctx(r);
    if (ctx) {
        return ctx;
    }

    /*
     * the context and its cleanup (the anchor) in one allocation, the
     * cleanup linked as ngx_pool_cleanup_add() would: an allocation from
     * a request pool of several blocks walks them
     */

    cln = ngx_palloc(r->pool, sizeof(ngx_pool_cleanup_t)
                              + sizeof(ngx_http_apipolicy_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = (ngx_http_apipolicy_ctx_t *) (cln + 1);
    ngx_http_apipolicy_memzero(ctx, sizeof(ngx_http_apipolicy_ctx_t));

    cln->handler = ngx_http_apipolicy_cleanup;
    cln->data = ctx;
    cln->next = r->pool->cleanup;
    r->pool->cleanup = cln;

    ngx_http_set_ctx(r, ctx, ngx_http_apipolicy_module);

    return ctx;
}


/*
 * Nothing to release (the context and what it points to live in the
 * request pool): the cleanup is the context's anchor, found again by its
 * handler after an internal redirect zeroed r->ctx
 */

static void
ngx_http_apipolicy_cleanup(void *data)
{
}


/*
 * A dispatcher's start: NGX_DECLINED when the location needs none of
 * "phases", else NGX_OK with the location's conf and the request's
 * context (made on first use)
 */

static ngx_inline ngx_int_t
ngx_http_apipolicy_phase_start(ngx_http_request_t *r, ngx_uint_t phases,
    ngx_http_apipolicy_loc_conf_t **alcf, ngx_http_apipolicy_ctx_t **ctx)
{
    *alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

    if (!((*alcf)->phases & phases)) {
        return NGX_DECLINED;
    }

    *ctx = ngx_http_apipolicy_create_ctx(r);

    if (*ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (*ctx)->areas |= (*alcf)->areas;

    return NGX_OK;
}


/*
 * PREACCESS: nothing here needs an identity.  A preflight is answered in
 * this phase so that it never meets authentication.
 */

ngx_int_t
ngx_http_apipolicy_preaccess_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_apipolicy_ctx_t       *ctx;
    ngx_http_apipolicy_loc_conf_t  *alcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    rc = ngx_http_apipolicy_phase_start(r, NGX_HTTP_APIPOLICY_PREACCESS,
                                        &alcf, &ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy preaccess: \"%V\"", &r->uri);

    /*
     * CORS before the sunset gate: a preflight to a retired version is
     * still answered, so that the browser lets the script read the 410
     */

    if (alcf->areas & NGX_HTTP_APIPOLICY_AREA_CORS) {
        rc = ngx_http_apipolicy_cors_handler(r, alcf, ctx);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (alcf->areas & NGX_HTTP_APIPOLICY_AREA_VERSION) {
        return ngx_http_apipolicy_version_handler(r, alcf, ctx);
    }

    return NGX_DECLINED;
}


/*
 * ACCESS: authentication.  nginx skips this phase for subrequests and
 * applies "satisfy any|all" to what the dispatcher returns: NGX_OK grants,
 * 401/403 deny, NGX_DECLINED abstains.
 */

ngx_int_t
ngx_http_apipolicy_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc, granted;
    ngx_http_apipolicy_ctx_t       *ctx;
    ngx_http_apipolicy_loc_conf_t  *alcf;

    rc = ngx_http_apipolicy_phase_start(r, NGX_HTTP_APIPOLICY_ACCESS,
                                        &alcf, &ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy access: \"%V\"", &r->uri);

    granted = 0;

    if (alcf->areas & NGX_HTTP_APIPOLICY_AREA_JWT) {
        rc = ngx_http_apipolicy_jwt_handler(r, alcf, ctx);

        if (rc == NGX_OK) {
            granted = 1;

        } else if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    /* a webhook's signature (reads the body; NGX_DONE while it arrives) */

    if (alcf->areas & NGX_HTTP_APIPOLICY_AREA_WEBHOOK) {
        rc = ngx_http_apipolicy_webhook_handler(r, alcf, ctx);

        if (rc == NGX_OK) {
            granted = 1;

        } else if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return granted ? NGX_OK : NGX_DECLINED;
}


/*
 * PRECONTENT: steps that need the verified identity.  Runs for
 * subrequests too (nginx does not skip them here), so they are skipped
 * explicitly.
 */

ngx_int_t
ngx_http_apipolicy_precontent_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_apipolicy_ctx_t       *ctx;
    ngx_http_apipolicy_loc_conf_t  *alcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    rc = ngx_http_apipolicy_phase_start(r, NGX_HTTP_APIPOLICY_ACCESS
                                           |NGX_HTTP_APIPOLICY_PRECONTENT,
                                        &alcf, &ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->problem && ctx->ratelimit == NULL && ctx->idempotency == NULL) {

        /*
         * an authentication step refused the request but another access
         * module granted it under "satisfy any": the refusal is void
         * (a rate limit refusal, met again after its error_page
         * redirect, stays, as does an idempotency refusal made once the
         * body was read)
         */

        ctx->problem = NULL;
        ctx->problem_builtin = 0;
    }

    if (alcf->areas & NGX_HTTP_APIPOLICY_AREA_RATELIMIT) {
        rc = ngx_http_apipolicy_ratelimit_handler(r, alcf, ctx);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (alcf->areas & NGX_HTTP_APIPOLICY_AREA_IDEMPOTENCY) {
        return ngx_http_apipolicy_idempotency_handler(r, alcf, ctx);
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_apipolicy_phase_init(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    /* the dispatchers, and the counters of apipolicy_status once a request */

    static struct {
        ngx_uint_t              phase;
        ngx_http_handler_pt     handler;
    } hooks[] = {
        { NGX_HTTP_PREACCESS_PHASE, ngx_http_apipolicy_preaccess_handler },
        { NGX_HTTP_ACCESS_PHASE, ngx_http_apipolicy_access_handler },
        { NGX_HTTP_PRECONTENT_PHASE, ngx_http_apipolicy_precontent_handler },
        { NGX_HTTP_LOG_PHASE, ngx_http_apipolicy_status_log }
    };

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
        h = ngx_array_push(&cmcf->phases[hooks[i].phase].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = hooks[i].handler;
    }

    return NGX_OK;
}
