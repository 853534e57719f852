
/*
 * Copyright (C) apipolicy authors
 *
 * Rejections as RFC 9457 problem details.
 *
 * A step that refuses a request calls ngx_http_apipolicy_reject() and
 * returns the status it gives back, exactly as nginx's own access modules
 * return 401/403: "satisfy any", auth_delay and error_page keep working.
 * When no error_page takes the status, nginx would send its built-in HTML
 * page; the header and body filters replace that page with
 * application/problem+json:
 *
 *   {"type":"urn:apipolicy:problem:token-expired","title":"Token expired",
 *    "status":401,"detail":"...","code":"TOKEN_EXPIRED"}
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_problem.h"


static ngx_str_t  ngx_http_apipolicy_problem_type =
    ngx_string("application/problem+json");

static ngx_str_t  ngx_http_apipolicy_status_422 =
    ngx_string("422 Unprocessable Content");


ngx_int_t
ngx_http_apipolicy_reject(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_uint_t status,
    const ngx_http_apipolicy_problem_t *problem, ngx_uint_t level,
    ngx_str_t *detail)
{
    ngx_uint_t                 i;
    ngx_http_err_page_t       *err_page;
    ngx_http_core_loc_conf_t  *clcf;

    ctx->problem = problem;
    ctx->problem_status = status;

    if (detail && detail->len) {
        ctx->problem_detail = *detail;

    } else {
        ctx->problem_detail = problem->title;
    }

    if (level) {
        ngx_log_error(level, r->connection->log, 0,
                      "apipolicy: %V (%ui): %V",
                      &problem->code, status, &ctx->problem_detail);
    }

    /*
     * the same test ngx_http_special_response_handler() makes: an
     * error_page for this status takes precedence over the problem body
     */

    ctx->problem_builtin = 1;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!r->error_page && clcf->error_pages && r->uri_changes != 0) {

        err_page = clcf->error_pages->elts;

        for (i = 0; i < clcf->error_pages->nelts; i++) {
            if ((ngx_uint_t) err_page[i].status == status) {
                ctx->problem_builtin = 0;
                break;
            }
        }
    }

    return status;
}


/*
 * Called from the header filter: when the response is nginx's built-in
 * page for our rejection, turn it into problem+json.  The body is built
 * here so that Content-Length is exact; the body filter sends it.
 */

ngx_int_t
ngx_http_apipolicy_problem_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    u_char                              *p;
    size_t                               len;
    ngx_buf_t                           *b;
    ngx_str_t                           *detail;
    const ngx_http_apipolicy_problem_t  *pb;

    if (ctx->problem == NULL
        || !ctx->problem_builtin
        || ctx->problem_body
        || r->headers_out.status != ctx->problem_status
        || (ngx_uint_t) r->err_status != ctx->problem_status)
    {
        return NGX_OK;
    }

    pb = ctx->problem;
    detail = &ctx->problem_detail;

    len = sizeof("{\"type\":\"\",\"title\":\"\",\"status\":,"
                 "\"detail\":\"\",\"code\":\"\"}\n") - 1
          + pb->type.len + pb->title.len + NGX_INT_T_LEN
          + detail->len + ngx_escape_json(NULL, detail->data, detail->len)
          + pb->code.len;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = b->last;
    p = ngx_cpymem(p, "{\"type\":\"", sizeof("{\"type\":\"") - 1);
    p = ngx_cpymem(p, pb->type.data, pb->type.len);
    p = ngx_cpymem(p, "\",\"title\":\"", sizeof("\",\"title\":\"") - 1);
    p = ngx_cpymem(p, pb->title.data, pb->title.len);
    p = ngx_sprintf(p, "\",\"status\":%ui,\"detail\":\"",
                    ctx->problem_status);
    p = (u_char *) ngx_escape_json(p, detail->data, detail->len);
    p = ngx_cpymem(p, "\",\"code\":\"", sizeof("\",\"code\":\"") - 1);
    p = ngx_cpymem(p, pb->code.data, pb->code.len);
    p = ngx_cpymem(p, "\"}\n", sizeof("\"}\n") - 1);

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    ctx->problem_buf = b;
    ctx->problem_body = 1;

    r->headers_out.content_type = ngx_http_apipolicy_problem_type;
    r->headers_out.content_type_len = ngx_http_apipolicy_problem_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    r->headers_out.content_length_n = b->last - b->pos;

    if (ctx->problem_status == NGX_HTTP_APIPOLICY_UNPROCESSABLE
        && r->headers_out.status_line.len == 0)
    {
        r->headers_out.status_line = ngx_http_apipolicy_status_422;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_problem_body(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_chain_t *in,
    ngx_http_output_body_filter_pt next)
{
    ngx_chain_t  *cl, out;

    /* nginx's own page is dropped (its buffers are static strings) */

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->problem_sent) {
        return next(r, NULL);
    }

    ctx->problem_sent = 1;

    out.buf = ctx->problem_buf;
    out.next = NULL;

    return next(r, &out);
}
