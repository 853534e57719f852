
/*
 * Copyright (C) apipolicy authors
 *
 * The header filter writes what the phase handlers decided, on every
 * response: upstream answers, nginx's own error pages (401, 403, 410,
 * 429, ...) and error_page redirects alike.  The body filter swaps
 * nginx's built-in error page for the problem+json body.
 *
 * Order inside the header filter: CORS reads the upstream's headers
 * first (only those can be Access-Control-* or Vary), then the problem
 * body (it sets the content type), deprecation and rate limit headers,
 * and CORS writes last, because it lists the headers the gateway added
 * in Access-Control-Expose-Headers.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_filter.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_cors.h"
#include "ngx_http_apipolicy_version.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_webhook.h"
#include "ngx_http_apipolicy_idempotency.h"


static ngx_int_t ngx_http_apipolicy_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_apipolicy_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_apipolicy_header_filter(ngx_http_request_t *r)
{
    ngx_uint_t                      areas;
    ngx_http_apipolicy_ctx_t       *ctx;
    ngx_http_apipolicy_loc_conf_t  *alcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);
    ctx = ngx_http_apipolicy_get_ctx(r);

    if (ctx == NULL) {

        /*
         * the request never reached PREACCESS (it was answered in the
         * rewrite phase, or by an error before it): headers are still due
         */

        if (!(alcf->phases & NGX_HTTP_APIPOLICY_HEADERS)) {
            return ngx_http_next_header_filter(r);
        }

        ctx = ngx_http_apipolicy_create_ctx(r);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    /* a filter finalization may send a second, fresh set of headers */
    ctx->added = 0;

    /*
     * the steps of the areas of this location and of those the request
     * went through before (an error_page or try_files redirect): no
     * other area has anything to write
     */

    ctx->areas |= alcf->areas;
    areas = ctx->areas;

    /* the upstream's headers, before the gateway adds its own */

    if ((areas & NGX_HTTP_APIPOLICY_AREA_CORS)
        && ngx_http_apipolicy_cors_upstream_header(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((areas & NGX_HTTP_APIPOLICY_AREA_IDEMPOTENCY)
        && ngx_http_apipolicy_idempotency_header(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->problem && ngx_http_apipolicy_problem_header(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if ((areas & NGX_HTTP_APIPOLICY_AREA_VERSION)
        && ngx_http_apipolicy_version_header(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((areas & NGX_HTTP_APIPOLICY_AREA_RATELIMIT)
        && ngx_http_apipolicy_ratelimit_header(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((areas & NGX_HTTP_APIPOLICY_AREA_WEBHOOK)
        && ngx_http_apipolicy_webhook_header(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((areas & NGX_HTTP_APIPOLICY_AREA_CORS)
        && ngx_http_apipolicy_cors_header(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_apipolicy_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_apipolicy_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_apipolicy_module);

    if (ctx == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->idempotency
        && ngx_http_apipolicy_idempotency_body(r, ctx, in) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!ctx->problem_body) {
        return ngx_http_next_body_filter(r, in);
    }

    return ngx_http_apipolicy_problem_body(r, ctx, in,
                                           ngx_http_next_body_filter);
}


ngx_int_t
ngx_http_apipolicy_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_apipolicy_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_apipolicy_body_filter;

    return NGX_OK;
}
