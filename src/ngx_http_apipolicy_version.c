
/*
 * Copyright (C) apipolicy authors
 *
 * API version deprecation: RFC 9745 "Deprecation", RFC 8594 "Sunset" and
 * their Link relations, from one directive with dates.
 *
 *   before the deprecation date   nothing, or with announce= the same
 *                                 headers (a future Deprecation date)
 *   from the deprecation date     Deprecation, Sunset, Link
 *   from the sunset date          410 API_VERSION_SUNSET problem, or the
 *                                 headers only with after_sunset=pass
 *
 * Header values are formatted once, at configuration time.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_version.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_util.h"


/* 9999-12-31T23:59:59Z */
#define NGX_HTTP_APIPOLICY_VERSION_LAST_DATE  253402300799LL


static ngx_uint_t ngx_http_apipolicy_version_decide(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_version_conf_t *vc);
static ngx_int_t ngx_http_apipolicy_version_param(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc, ngx_str_t *value, ngx_str_t *link,
    ngx_str_t *successor);
static ngx_int_t ngx_http_apipolicy_version_validate(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc);
static ngx_int_t ngx_http_apipolicy_version_precompute(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc, ngx_str_t *link,
    ngx_str_t *successor);
static ngx_int_t ngx_http_apipolicy_version_link(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc, ngx_str_t *link,
    ngx_str_t *successor);
static ngx_int_t ngx_http_apipolicy_version_date(ngx_conf_t *cf,
    ngx_str_t *param, size_t skip, time_t *t);
static ngx_int_t ngx_http_apipolicy_version_url(ngx_conf_t *cf,
    ngx_str_t *param, size_t skip, ngx_str_t *url);


static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_version_sunset =
    ngx_http_apipolicy_problem("API_VERSION_SUNSET", "api-version-sunset",
                               "API version retired");

static ngx_str_t  ngx_http_apipolicy_version_deprecation_name =
    ngx_string("Deprecation");
static ngx_str_t  ngx_http_apipolicy_version_sunset_name =
    ngx_string("Sunset");
static ngx_str_t  ngx_http_apipolicy_version_link_name =
    ngx_string("Link");

static ngx_str_t  ngx_http_apipolicy_version_states[] = {
    ngx_null_string,
    ngx_string("announced"),
    ngx_string("deprecated"),
    ngx_string("sunset")
};


void
ngx_http_apipolicy_version_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *conf)
{
    conf->enabled = NGX_CONF_UNSET;
}


/* the state is decided in PREACCESS, the headers written by the filter */

ngx_uint_t
ngx_http_apipolicy_version_phases(ngx_http_apipolicy_version_conf_t *conf)
{
    return (conf->enabled == 1) ? NGX_HTTP_APIPOLICY_PREACCESS
                                  |NGX_HTTP_APIPOLICY_HEADERS
                                : 0;
}


/* the headers (NGX_HTTP_APIPOLICY_HDR_*) a response gets once announced */

ngx_uint_t
ngx_http_apipolicy_version_added(ngx_http_apipolicy_version_conf_t *conf)
{
    ngx_uint_t  added;

    if (conf->enabled != 1) {
        return 0;
    }

    added = NGX_HTTP_APIPOLICY_HDR_DEPRECATION;

    if (conf->sunset_value.len) {
        added |= NGX_HTTP_APIPOLICY_HDR_SUNSET;
    }

    if (conf->link_value.len) {
        added |= NGX_HTTP_APIPOLICY_HDR_LINK;
    }

    return added;
}


char *
ngx_http_apipolicy_version_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *prev,
    ngx_http_apipolicy_version_conf_t *conf)
{
    if (conf->enabled == NGX_CONF_UNSET) {
        if (prev->enabled == NGX_CONF_UNSET) {
            conf->enabled = 0;

        } else {
            *conf = *prev;
        }
    }

    return NGX_CONF_OK;
}


/*
 * apipolicy_version deprecated=DATE [sunset=DATE] [link=URL]
 *     [successor=URL] [after_sunset=410|pass] [announce=on|DATE];
 * apipolicy_version off;
 */

char *
ngx_http_apipolicy_version(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_apipolicy_loc_conf_t *alcf = conf;

    ngx_str_t                          *value, link, successor;
    ngx_uint_t                          i;
    ngx_http_apipolicy_version_conf_t  *vc;

    vc = &alcf->version;

    if (vc->enabled != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        vc->enabled = 0;
        return NGX_CONF_OK;
    }

    vc->deprecated = -1;
    vc->sunset = -1;
    vc->announce = -1;
    vc->after_sunset = NGX_HTTP_APIPOLICY_GONE;
    ngx_str_null(&link);
    ngx_str_null(&successor);

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_apipolicy_version_param(cf, vc, &value[i], &link,
                                             &successor)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_apipolicy_version_validate(cf, vc) != NGX_OK
        || ngx_http_apipolicy_version_precompute(cf, vc, &link, &successor)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    vc->enabled = 1;

    return NGX_CONF_OK;
}


/* one NAME=VALUE parameter of apipolicy_version */

static ngx_int_t
ngx_http_apipolicy_version_param(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc, ngx_str_t *value, ngx_str_t *link,
    ngx_str_t *successor)
{
    if (ngx_strncmp(value->data, "deprecated=", 11) == 0) {
        return ngx_http_apipolicy_version_date(cf, value, 11,
                                               &vc->deprecated);
    }

    if (ngx_strncmp(value->data, "sunset=", 7) == 0) {
        return ngx_http_apipolicy_version_date(cf, value, 7, &vc->sunset);
    }

    if (ngx_strncmp(value->data, "announce=", 9) == 0) {
        if (ngx_strcmp(value->data + 9, "on") == 0) {
            vc->announce = 0;
            return NGX_OK;
        }

        return ngx_http_apipolicy_version_date(cf, value, 9, &vc->announce);
    }

    if (ngx_strncmp(value->data, "link=", 5) == 0) {
        return ngx_http_apipolicy_version_url(cf, value, 5, link);
    }

    if (ngx_strncmp(value->data, "successor=", 10) == 0) {
        return ngx_http_apipolicy_version_url(cf, value, 10, successor);
    }

    if (ngx_strcmp(value->data, "after_sunset=410") == 0) {
        vc->after_sunset = NGX_HTTP_APIPOLICY_GONE;
        return NGX_OK;
    }

    if (ngx_strcmp(value->data, "after_sunset=pass") == 0) {
        vc->after_sunset = 0;
        return NGX_OK;
    }

    if (ngx_strlchr(value->data, value->data + value->len, '=') == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_version: unknown parameter \"%V\"; "
                           "an HTTP-date has spaces, so quote the whole "
                           "parameter, as in "
                           "\"sunset=Sat, 01 Jan 2050 00:00:00 GMT\"",
                           value);
        return NGX_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "apipolicy_version: unknown parameter \"%V\"; "
                       "known: deprecated=, sunset=, link=, successor=, "
                       "after_sunset=410|pass, announce=on|DATE", value);
    return NGX_ERROR;
}


/* the dates in their order: announce <= deprecated <= sunset */

static ngx_int_t
ngx_http_apipolicy_version_validate(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc)
{
    if (vc->deprecated == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_version needs \"deprecated=DATE\" "
                           "(or \"off\")");
        return NGX_ERROR;
    }

    if (vc->sunset != -1 && vc->sunset < vc->deprecated) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_version: the sunset date is earlier "
                           "than the deprecation date; a version cannot be "
                           "retired before it is deprecated (RFC 9745)");
        return NGX_ERROR;
    }

    if (vc->announce > vc->deprecated) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_version: the announce date is later "
                           "than the deprecation date");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The header values, formatted once: Deprecation: @<epoch> (RFC 9745
 * structured-field Date), Sunset: <IMF-fixdate> (RFC 8594), Link, and
 * the 410 problem's detail
 */

static ngx_int_t
ngx_http_apipolicy_version_precompute(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc, ngx_str_t *link,
    ngx_str_t *successor)
{
    u_char  *p;
    size_t   len;

    p = ngx_pnalloc(cf->pool, 1 + NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    vc->deprecation_value.data = p;
    vc->deprecation_value.len = ngx_sprintf(p, "@%T", vc->deprecated) - p;

    ngx_str_null(&vc->sunset_value);
    ngx_str_null(&vc->gone_detail);

    if (vc->sunset != -1) {
        p = ngx_pnalloc(cf->pool, sizeof("Mon, 28 Sep 1970 06:00:00 GMT"));
        if (p == NULL) {
            return NGX_ERROR;
        }

        vc->sunset_value.data = p;
        vc->sunset_value.len = ngx_http_time(p, vc->sunset) - p;

        len = sizeof("This API version was retired on ; its successor is .")
              - 1 + vc->sunset_value.len + successor->len;

        p = ngx_pnalloc(cf->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        vc->gone_detail.data = p;
        p = ngx_sprintf(p, "This API version was retired on %V",
                        &vc->sunset_value);
        p = successor->len ? ngx_sprintf(p, "; its successor is %V.",
                                         successor)
                           : ngx_sprintf(p, ".");
        vc->gone_detail.len = p - vc->gone_detail.data;
    }

    return ngx_http_apipolicy_version_link(cf, vc, link, successor);
}


/*
 * Link: <doc>; rel="deprecation", <doc>; rel="sunset",
 *       <next>; rel="successor-version"
 */

static ngx_int_t
ngx_http_apipolicy_version_link(ngx_conf_t *cf,
    ngx_http_apipolicy_version_conf_t *vc, ngx_str_t *link,
    ngx_str_t *successor)
{
    u_char  *p;
    size_t   len;

    len = 0;

    if (link->len) {
        len += sizeof("<>; rel=\"deprecation\", ") - 1 + link->len;

        if (vc->sunset != -1) {
            len += sizeof("<>; rel=\"sunset\", ") - 1 + link->len;
        }
    }

    if (successor->len) {
        len += sizeof("<>; rel=\"successor-version\"") - 1 + successor->len;
    }

    ngx_str_null(&vc->link_value);

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    vc->link_value.data = p;

    if (link->len) {
        p = ngx_sprintf(p, "<%V>; rel=\"deprecation\"", link);

        if (vc->sunset != -1) {
            p = ngx_sprintf(p, ", <%V>; rel=\"sunset\"", link);
        }
    }

    if (successor->len) {
        if (p != vc->link_value.data) {
            *p++ = ','; *p++ = ' ';
        }

        p = ngx_sprintf(p, "<%V>; rel=\"successor-version\"", successor);
    }

    vc->link_value.len = p - vc->link_value.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_version_date(ngx_conf_t *cf, ngx_str_t *param,
    size_t skip, time_t *t)
{
    ngx_str_t  date;

    date.data = param->data + skip;
    date.len = param->len - skip;

    if (ngx_http_apipolicy_parse_date(&date, t) != NGX_OK || *t < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_version: invalid date in \"%V\": use "
                           "@<seconds since the epoch> or an HTTP-date such "
                           "as \"Sat, 01 Jan 2050 00:00:00 GMT\" (quote the "
                           "whole parameter)", param);
        return NGX_ERROR;
    }

    /*
     * an HTTP-date has a four-digit year: a later date would be announced
     * as 9999-12-31 (ngx_http_time() caps it) but enforced as given
     */

    if (*t > NGX_HTTP_APIPOLICY_VERSION_LAST_DATE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_version: the date in \"%V\" is after "
                           "the year 9999 (@%T at most: seconds, not "
                           "milliseconds)", param,
                           (time_t) NGX_HTTP_APIPOLICY_VERSION_LAST_DATE);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_version_url(ngx_conf_t *cf, ngx_str_t *param, size_t skip,
    ngx_str_t *url)
{
    u_char      c;
    ngx_uint_t  i;

    url->data = param->data + skip;
    url->len = param->len - skip;

    for (i = 0; i < url->len; i++) {
        c = url->data[i];

        if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"') {
            break;
        }
    }

    if (url->len == 0 || i < url->len
        || (url->data[0] != '/'
            && ngx_strlchr(url->data, url->data + url->len, ':') == NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_version: \"%V\" is not a URL (an "
                           "absolute URL or a path, without spaces, quotes "
                           "or angle brackets)", param);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_apipolicy_version_decide(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_version_conf_t *vc)
{
    time_t      now;
    ngx_uint_t  state;

    if (ctx->version.conf == vc) {
        return ctx->version.state;
    }

    now = ngx_time();

    if (vc->sunset != -1 && now >= vc->sunset) {
        state = NGX_HTTP_APIPOLICY_VERSION_SUNSET;

    } else if (now >= vc->deprecated) {
        state = NGX_HTTP_APIPOLICY_VERSION_DEPRECATED;

    } else if (vc->announce != -1 && now >= vc->announce) {
        state = NGX_HTTP_APIPOLICY_VERSION_ANNOUNCED;

    } else {
        state = NGX_HTTP_APIPOLICY_VERSION_CURRENT;
    }

    ctx->version.conf = vc;
    ctx->version.state = state;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy version: state %ui", state);

    return state;
}


ngx_int_t
ngx_http_apipolicy_version_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_http_apipolicy_version_conf_t  *vc;

    vc = &alcf->version;

    if (vc->enabled != 1) {
        return NGX_DECLINED;
    }

    if (ngx_http_apipolicy_version_decide(r, ctx, vc)
        == NGX_HTTP_APIPOLICY_VERSION_SUNSET
        && vc->after_sunset)
    {
        return ngx_http_apipolicy_reject(r, ctx, vc->after_sunset,
                                         &ngx_http_apipolicy_version_sunset,
                                         NGX_LOG_INFO, &vc->gone_detail);
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_apipolicy_version_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_http_apipolicy_loc_conf_t      *alcf;
    ngx_http_apipolicy_version_conf_t  *vc;

    vc = ctx->version.conf;

    if (vc == NULL) {
        alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

        if (alcf->version.enabled != 1) {
            return NGX_OK;
        }

        vc = &alcf->version;
        (void) ngx_http_apipolicy_version_decide(r, ctx, vc);
    }

    if (ctx->version.state == NGX_HTTP_APIPOLICY_VERSION_CURRENT) {
        return NGX_OK;
    }

    if (ngx_http_apipolicy_add_header(r,
                                   &ngx_http_apipolicy_version_deprecation_name,
                                   &vc->deprecation_value)
        == NULL)
    {
        return NGX_ERROR;
    }

    ctx->added |= NGX_HTTP_APIPOLICY_HDR_DEPRECATION;

    if (vc->sunset_value.len) {
        if (ngx_http_apipolicy_add_header(r,
                                        &ngx_http_apipolicy_version_sunset_name,
                                        &vc->sunset_value)
            == NULL)
        {
            return NGX_ERROR;
        }

        ctx->added |= NGX_HTTP_APIPOLICY_HDR_SUNSET;
    }

    if (vc->link_value.len) {
        if (ngx_http_apipolicy_add_header(r,
                                          &ngx_http_apipolicy_version_link_name,
                                          &vc->link_value)
            == NULL)
        {
            return NGX_ERROR;
        }

        ctx->added |= NGX_HTTP_APIPOLICY_HDR_LINK;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_version_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                 *s;
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_apipolicy_get_ctx(r->main);

    if (ctx == NULL || ctx->version.conf == NULL
        || ctx->version.state == NGX_HTTP_APIPOLICY_VERSION_CURRENT)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    s = &ngx_http_apipolicy_version_states[ctx->version.state];

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


ngx_uint_t
ngx_http_apipolicy_version_outcome(ngx_http_apipolicy_ctx_t *ctx)
{
    return ctx->version.state;
}
