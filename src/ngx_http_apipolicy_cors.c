
/*
 * Copyright (C) apipolicy authors
 *
 * CORS allowlisting per the WHATWG Fetch standard ("CORS protocol").
 *
 * PREACCESS decides whether the request's Origin is allowed and answers a
 * preflight (OPTIONS with Origin and Access-Control-Request-Method, and
 * nothing else) with 204 before any authentication runs.  The header
 * filter writes the Access-Control-* headers on every response of the
 * location, the gateway's own 401/403/410/429 included, and lists the
 * headers the gateway added in Access-Control-Expose-Headers.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_cors.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_util.h"


#define NGX_HTTP_APIPOLICY_CORS_MAX_ORIGIN    1024
#define NGX_HTTP_APIPOLICY_CORS_MAX_HEADERS   4096


static void ngx_http_apipolicy_cors_decide(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_cors_conf_t *cf);
static ngx_int_t ngx_http_apipolicy_cors_allow_headers(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_conf_t *cf, ngx_str_t *requested,
    ngx_str_t *allowed);
static void ngx_http_apipolicy_cors_decide_preflight(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_http_apipolicy_cors_conf_t *cf);
static ngx_uint_t ngx_http_apipolicy_cors_upstream(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_http_apipolicy_cors_conf_t *cf);
static ngx_int_t ngx_http_apipolicy_cors_set(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_uint_t n, ngx_str_t *value);
static ngx_int_t ngx_http_apipolicy_cors_write(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_cors_expose_join(ngx_pool_t *pool,
    ngx_str_t *configured, ngx_uint_t added, ngx_str_t *expose);
static ngx_int_t ngx_http_apipolicy_cors_vary(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_str_t *value);
static ngx_int_t ngx_http_apipolicy_cors_validate(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf);
static ngx_int_t ngx_http_apipolicy_cors_precompute(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf);
static ngx_int_t ngx_http_apipolicy_cors_join(ngx_conf_t *cf,
    ngx_array_t *a, ngx_str_t *out);
static ngx_int_t ngx_http_apipolicy_cors_token(ngx_str_t *s);
static ngx_int_t ngx_http_apipolicy_cors_host_label(u_char *p, u_char *last);
static ngx_int_t ngx_http_apipolicy_cors_ipv6(ngx_pool_t *pool,
    ngx_http_apipolicy_cors_origin_t *o, u_char *host, u_char *host_end,
    char **err);


static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_cors_not_allowed =
    ngx_http_apipolicy_problem("ORIGIN_NOT_ALLOWED", "origin-not-allowed",
                               "Origin not allowed");


static ngx_str_t  ngx_http_apipolicy_cors_default_methods[] = {
    ngx_string("GET"), ngx_string("HEAD"), ngx_string("POST"),
    ngx_string("PUT"), ngx_string("PATCH"), ngx_string("DELETE"),
    ngx_null_string
};

static ngx_str_t  ngx_http_apipolicy_cors_default_headers[] = {
    ngx_string("accept"), ngx_string("accept-language"),
    ngx_string("content-language"), ngx_string("content-type"),
    ngx_null_string
};

/* response headers the upstream may send that "replace" mode removes */
static ngx_str_t  ngx_http_apipolicy_cors_upstream_headers[] = {
    ngx_string("Access-Control-Allow-Origin"),
    ngx_string("Access-Control-Allow-Credentials"),
    ngx_string("Access-Control-Allow-Methods"),
    ngx_string("Access-Control-Allow-Headers"),
    ngx_string("Access-Control-Expose-Headers"),
    ngx_string("Access-Control-Max-Age"),
    ngx_string("Access-Control-Allow-Private-Network"),
    ngx_null_string
};

/* their indexes, and bits in the context's "owned" */
#define NGX_HTTP_APIPOLICY_CORS_ACAO   0
#define NGX_HTTP_APIPOLICY_CORS_ACAC   1
#define NGX_HTTP_APIPOLICY_CORS_ACAM   2
#define NGX_HTTP_APIPOLICY_CORS_ACAH   3
#define NGX_HTTP_APIPOLICY_CORS_ACEH   4
#define NGX_HTTP_APIPOLICY_CORS_ACMA   5
#define NGX_HTTP_APIPOLICY_CORS_ACAPN  6

/*
 * gateway-added headers, in NGX_HTTP_APIPOLICY_HDR_* bit order, each as
 * it follows another in Access-Control-Expose-Headers
 */
static ngx_str_t  ngx_http_apipolicy_cors_added[] = {
    ngx_string(", RateLimit"),
    ngx_string(", RateLimit-Policy"),
    ngx_string(", Retry-After"),
    ngx_string(", Deprecation"),
    ngx_string(", Sunset"),
    ngx_string(", Link"),
    ngx_string(", Idempotent-Replayed"),
    ngx_string(", WWW-Authenticate"),
    ngx_string(", X-RateLimit-Limit"),
    ngx_string(", X-RateLimit-Remaining"),
    ngx_string(", X-RateLimit-Reset"),
    ngx_null_string
};

/* ngx_http_apipolicy_header_lens() of the list above, once */
static uint64_t  ngx_http_apipolicy_cors_upstream_lens;

/*
 * What each byte of an Origin is, set once: a blank, a control, ',' or
 * a byte over 0x7e is no single origin; a capital asks for a lowercased
 * copy before matching
 */
#define NGX_HTTP_APIPOLICY_CORS_ORIGIN_BAD    1
#define NGX_HTTP_APIPOLICY_CORS_ORIGIN_UPPER  2

static u_char  ngx_http_apipolicy_cors_origin_class[256];

static ngx_str_t  ngx_http_apipolicy_cors_origin_name =
    ngx_string("Origin");
static ngx_str_t  ngx_http_apipolicy_cors_acrm =
    ngx_string("Access-Control-Request-Method");
static ngx_str_t  ngx_http_apipolicy_cors_acrh =
    ngx_string("Access-Control-Request-Headers");
static ngx_str_t  ngx_http_apipolicy_cors_acrpn =
    ngx_string("Access-Control-Request-Private-Network");

static ngx_str_t  ngx_http_apipolicy_cors_true = ngx_string("true");
static ngx_str_t  ngx_http_apipolicy_cors_star = ngx_string("*");
static ngx_str_t  ngx_http_apipolicy_cors_vary_origin = ngx_string("Origin");
static ngx_str_t  ngx_http_apipolicy_cors_vary_preflight =
    ngx_string("Origin, Access-Control-Request-Method, "
               "Access-Control-Request-Headers");


/* ---- configuration --------------------------------------------------- */

void
ngx_http_apipolicy_cors_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf)
{
    conf->origins = NGX_CONF_UNSET_PTR;
    conf->methods = NGX_CONF_UNSET_PTR;
    conf->headers = NGX_CONF_UNSET_PTR;
    conf->expose = NGX_CONF_UNSET_PTR;
    conf->credentials = NGX_CONF_UNSET;
    conf->private_network = NGX_CONF_UNSET;
    conf->reject = NGX_CONF_UNSET;
    conf->max_age = NGX_CONF_UNSET;
    conf->upstream = NGX_CONF_UNSET_UINT;
}


/* an allowlist decides in PREACCESS and writes in the header filter */

ngx_uint_t
ngx_http_apipolicy_cors_phases(ngx_http_apipolicy_cors_conf_t *conf)
{
    return conf->origins ? NGX_HTTP_APIPOLICY_PREACCESS
                           |NGX_HTTP_APIPOLICY_HEADERS
                         : 0;
}


static ngx_array_t *
ngx_http_apipolicy_cors_defaults(ngx_conf_t *cf, ngx_str_t *names)
{
    ngx_str_t    *s;
    ngx_array_t  *a;

    a = ngx_array_create(cf->pool, 8, sizeof(ngx_str_t));
    if (a == NULL) {
        return NULL;
    }

    for ( /* void */ ; names->len; names++) {
        s = ngx_array_push(a);
        if (s == NULL) {
            return NULL;
        }

        *s = *names;
    }

    return a;
}


char *
ngx_http_apipolicy_cors_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *prev, ngx_http_apipolicy_cors_conf_t *conf)
{
    if (conf->origins == NGX_CONF_UNSET_PTR) {
        conf->origins = (prev->origins == NGX_CONF_UNSET_PTR)
                        ? NULL : prev->origins;
        conf->file = prev->file;
        conf->line = prev->line;
    }

    ngx_conf_merge_ptr_value(conf->methods, prev->methods, NULL);
    ngx_conf_merge_ptr_value(conf->headers, prev->headers, NULL);
    ngx_conf_merge_ptr_value(conf->expose, prev->expose, NULL);
    ngx_conf_merge_value(conf->credentials, prev->credentials, 0);
    ngx_conf_merge_value(conf->private_network, prev->private_network, 0);
    ngx_conf_merge_value(conf->reject, prev->reject, 0);
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, -1);
    ngx_conf_merge_uint_value(conf->upstream, prev->upstream,
                              NGX_HTTP_APIPOLICY_CORS_UPSTREAM_REPLACE);

    if (conf->origins == NULL) {
        return NGX_CONF_OK;
    }

    if (conf->methods == NULL) {
        conf->methods = ngx_http_apipolicy_cors_defaults(cf,
                                      ngx_http_apipolicy_cors_default_methods);
        if (conf->methods == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->headers == NULL) {
        conf->headers = ngx_http_apipolicy_cors_defaults(cf,
                                      ngx_http_apipolicy_cors_default_headers);
        if (conf->headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_apipolicy_cors_validate(cf, conf) != NGX_OK
        || ngx_http_apipolicy_cors_precompute(cf, conf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Configuration-time refusal of combinations browsers refuse or that
 * leak; notes whether "*" is listed
 */

static ngx_int_t
ngx_http_apipolicy_cors_validate(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf)
{
    ngx_uint_t                         i;
    ngx_http_apipolicy_cors_origin_t  *o;

    conf->any_origin = 0;
    o = conf->origins->elts;

    for (i = 0; i < conf->origins->nelts; i++) {

        if (o[i].kind == NGX_HTTP_APIPOLICY_CORS_ANY) {
            conf->any_origin = 1;
        }

        if (!conf->credentials) {
            continue;
        }

        if (o[i].kind == NGX_HTTP_APIPOLICY_CORS_ANY) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "apipolicy_cors_origins \"*\" cannot be combined "
                          "with \"apipolicy_cors_credentials on\": browsers "
                          "refuse a wildcard with credentials, and "
                          "reflecting every origin would let any site read "
                          "your users' data; list the allowed origins "
                          "(origins set in %V:%ui)", &conf->file, conf->line);
            return NGX_ERROR;
        }

        if (o[i].kind == NGX_HTTP_APIPOLICY_CORS_EXACT
            && o[i].value.len == 4
            && ngx_strncmp(o[i].value.data, "null", 4) == 0)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "apipolicy_cors_origins \"null\" cannot be "
                          "combined with \"apipolicy_cors_credentials on\": "
                          "sandboxed frames and local files of any site send "
                          "\"Origin: null\" (origins set in %V:%ui)",
                          &conf->file, conf->line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the answers' header values, formatted once */

static ngx_int_t
ngx_http_apipolicy_cors_precompute(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf)
{
    u_char      *p;
    ngx_str_t   *s;
    ngx_uint_t   i;

    conf->headers_any = 0;
    s = conf->headers->elts;

    for (i = 0; i < conf->headers->nelts; i++) {
        if (s[i].len == 1 && s[i].data[0] == '*') {
            conf->headers_any = 1;
        }
    }

    if (ngx_http_apipolicy_cors_join(cf, conf->methods, &conf->methods_value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_null(&conf->expose_value);

    if (conf->expose
        && ngx_http_apipolicy_cors_join(cf, conf->expose, &conf->expose_value)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_null(&conf->max_age_value);

    if (conf->max_age >= 0) {
        p = ngx_pnalloc(cf->pool, NGX_TIME_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        conf->max_age_value.data = p;
        conf->max_age_value.len = ngx_sprintf(p, "%T", conf->max_age) - p;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_cors_join(ngx_conf_t *cf, ngx_array_t *a, ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = a->elts;
    len = 0;

    for (i = 0; i < a->nelts; i++) {
        len += s[i].len + 2;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    for (i = 0; i < a->nelts; i++) {
        if (i) {
            *p++ = ','; *p++ = ' ';
        }

        p = ngx_cpymem(p, s[i].data, s[i].len);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * host characters of one or more labels: letters, digits, '-', '_' and
 * inner dots; a wildcard's prefix may not start or end with a dot
 */

static ngx_int_t
ngx_http_apipolicy_cors_host_label(u_char *p, u_char *last)
{
    u_char  prev;

    if (p == last || *p == '.' || last[-1] == '.') {
        return NGX_ERROR;
    }

    prev = 0;

    for ( /* void */ ; p < last; p++) {

        if (*p == '.') {
            if (prev == '.') {
                return NGX_ERROR;
            }

        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                     || *p == '-' || *p == '_'))
        {
            return NGX_ERROR;
        }

        prev = *p;
    }

    return NGX_OK;
}


/*
 * Where the parts of a configured origin end: the scheme (before "://"),
 * the host (an IPv6 literal in brackets, or up to ':' or a path), and
 * the port's first digit (NULL without a port); nothing may follow
 */

static ngx_int_t
ngx_http_apipolicy_cors_origin_split(ngx_str_t *value, u_char **scheme_end,
    u_char **host_end, u_char **port, char **err)
{
    u_char     *p, *last, *host;
    ngx_int_t   n;

    p = value->data;
    last = p + value->len;

    if (p == last || !((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')) {
        *err = "must start with a scheme, as in \"https://app.example.com\"";
        return NGX_ERROR;
    }

    while (p < last && (((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')
                        || (*p >= '0' && *p <= '9')
                        || *p == '+' || *p == '-' || *p == '.'))
    {
        p++;
    }

    *scheme_end = p;

    if (last - p < 3 || ngx_strncmp(p, "://", 3) != 0) {
        *err = "must be scheme://host[:port], as in "
               "\"https://app.example.com\"";
        return NGX_ERROR;
    }

    host = p + 3;

    if (host < last && *host == '[') {

        /* an IPv6 literal: its colons are no port */

        p = ngx_strlchr(host, last, ']');

        if (p == NULL) {
            *err = "has an IPv6 address without its closing \"]\"";
            return NGX_ERROR;
        }

        p++;

    } else {
        for (p = host; p < last && *p != ':' && *p != '/' && *p != '?'
                       && *p != '#'; p++)
        {
            /* void */
        }
    }

    *host_end = p;
    *port = NULL;

    if (p < last && *p == ':') {
        *port = ++p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        n = ngx_atoi(*port, p - *port);

        if (n == NGX_ERROR || n < 1 || n > 65535) {
            *err = "has an invalid port";
            return NGX_ERROR;
        }
    }

    if (p != last) {
        *err = "is an origin, which has no path, query or trailing slash: "
               "write it as scheme://host[:port]";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The host of a lowercased origin "v" ("len" bytes, the default port
 * dropped): a wildcard "*.example.com", an IPv6 literal, or host labels
 */

static ngx_int_t
ngx_http_apipolicy_cors_origin_host(ngx_pool_t *pool,
    ngx_http_apipolicy_cors_origin_t *o, u_char *v, size_t len, u_char *host,
    u_char *host_end, char **err)
{
    if (host_end - host >= 2 && host[0] == '*' && host[1] == '.') {

        if (ngx_http_apipolicy_cors_host_label(host + 2, host_end)
            != NGX_OK
            || ngx_strlchr(host + 2, host_end, '.') == NULL)
        {
            *err = "is a wildcard that must cover a domain of at least two "
                   "labels, as in \"https://*.example.com\"";
            return NGX_ERROR;
        }

        o->kind = NGX_HTTP_APIPOLICY_CORS_WILDCARD;
        o->value.data = v;
        o->value.len = host - v;                 /* "https://" */
        o->suffix.data = host + 1;               /* ".example.com[:port]" */
        o->suffix.len = len - (host + 1 - v);

        return NGX_OK;
    }

    if (ngx_strlchr(host, host_end, '*')) {
        *err = "may use \"*\" only as its whole first label, as in "
               "\"https://*.example.com\"";
        return NGX_ERROR;
    }

    o->kind = NGX_HTTP_APIPOLICY_CORS_EXACT;
    o->value.data = v;
    o->value.len = len;

    if (host < host_end && host[0] == '[') {
        return ngx_http_apipolicy_cors_ipv6(pool, o, host, host_end, err);
    }

    if (ngx_http_apipolicy_cors_host_label(host, host_end) != NGX_OK) {
        *err = "has an invalid host";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Parses an exact origin ("https://app.example.com", "http://localhost:3000",
 * "null") or a wildcard (scheme "https", host "*.example.com").  Scheme and
 * host are lowercased and a default port (:443 for https, :80 for http) is
 * dropped, as browsers serialize origins that way.
 */

ngx_int_t
ngx_http_apipolicy_cors_parse_origin(ngx_pool_t *pool, ngx_str_t *value,
    ngx_http_apipolicy_cors_origin_t *o, char **err)
{
    u_char  *scheme_end, *host_end, *port, *v;
    size_t   len, port_len;

    ngx_memzero(o, sizeof(ngx_http_apipolicy_cors_origin_t));

    if (value->len == 4 && ngx_strncasecmp(value->data, (u_char *) "null", 4)
                           == 0)
    {
        o->kind = NGX_HTTP_APIPOLICY_CORS_EXACT;
        ngx_str_set(&o->value, "null");
        return NGX_OK;
    }

    if (ngx_http_apipolicy_cors_origin_split(value, &scheme_end, &host_end,
                                             &port, err)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    len = value->len;

    v = ngx_pnalloc(pool, len);
    if (v == NULL) {
        *err = "out of memory";
        return NGX_ERROR;
    }

    ngx_strlow(v, value->data, len);

    /* pointers into the lowercased copy */

    scheme_end = v + (scheme_end - value->data);
    host_end = v + (host_end - value->data);

    if (port) {
        port = v + (port - value->data);
        port_len = v + len - port;

        if ((scheme_end - v == 5 && ngx_strncmp(v, "https", 5) == 0
             && port_len == 3 && ngx_strncmp(port, "443", 3) == 0)
            || (scheme_end - v == 4 && ngx_strncmp(v, "http", 4) == 0
                && port_len == 2 && ngx_strncmp(port, "80", 2) == 0))
        {
            len = host_end - v;             /* drop the default port */
        }
    }

    return ngx_http_apipolicy_cors_origin_host(pool, o, v, len,
                                               scheme_end + 3, host_end, err);
}


/*
 * An IPv6 literal origin, written as browsers serialize it (the URL
 * Standard's IPv6 serializer: lowercase hex without leading zeros, the
 * first longest run of two or more zero pieces as "::", no embedded
 * IPv4 form), so that "http://[0:0::1]:8080" in the configuration
 * matches the "http://[::1]:8080" a browser sends.
 */

static ngx_int_t
ngx_http_apipolicy_cors_ipv6(ngx_pool_t *pool,
    ngx_http_apipolicy_cors_origin_t *o, u_char *host, u_char *host_end,
    char **err)
{
#if (NGX_HAVE_INET6)
    u_char      addr[16], *p, *v;
    size_t      tail;
    ngx_uint_t  i, piece, run, best, best_len, skip;

    if (ngx_inet6_addr(host + 1, host_end - host - 2, addr) != NGX_OK) {
        *err = "has an invalid IPv6 address";
        return NGX_ERROR;
    }

    best = 8;
    best_len = 1;

    for (i = 0; i < 8; i += run ? run : 1) {
        for (run = 0; i + run < 8 && addr[2 * (i + run)] == 0
                      && addr[2 * (i + run) + 1] == 0; run++)
        {
            /* void */
        }

        if (run > best_len) {
            best = i;
            best_len = run;
        }
    }

    tail = o->value.data + o->value.len - host_end;     /* ":port" */

    v = ngx_pnalloc(pool, (host - o->value.data) + sizeof("[]") - 1
                          + 8 * 5 + tail);
    if (v == NULL) {
        *err = "out of memory";
        return NGX_ERROR;
    }

    p = ngx_cpymem(v, o->value.data, host - o->value.data);
    *p++ = '[';
    skip = 0;

    for (i = 0; i < 8; i++) {
        piece = (addr[2 * i] << 8) | addr[2 * i + 1];

        if (skip && piece == 0) {
            continue;
        }

        skip = 0;

        if (i == best) {
            p = ngx_cpymem(p, i == 0 ? "::" : ":", i == 0 ? 2 : 1);
            skip = 1;
            continue;
        }

        p = ngx_sprintf(p, "%xi", piece);

        if (i != 7) {
            *p++ = ':';
        }
    }

    *p++ = ']';
    p = ngx_cpymem(p, host_end, tail);

    o->value.data = v;
    o->value.len = p - v;

    return NGX_OK;
#else
    *err = "is an IPv6 address, and nginx was built without IPv6";
    return NGX_ERROR;
#endif
}


/* "~regex" of apipolicy_cors_origins, matched case-insensitively */

static ngx_int_t
ngx_http_apipolicy_cors_origin_regex(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_apipolicy_cors_origin_t *o)
{
#if (NGX_PCRE)
    u_char               errstr[NGX_MAX_CONF_ERRSTR];
    ngx_regex_compile_t  rc;

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern.data = value->data + 1;
    rc.pattern.len = value->len - 1;
    rc.options = NGX_REGEX_CASELESS;
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (rc.pattern.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty regular expression in "
                           "apipolicy_cors_origins");
        return NGX_ERROR;
    }

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "apipolicy_cors_origins: invalid regular "
                           "expression \"%V\": %V", &rc.pattern, &rc.err);
        return NGX_ERROR;
    }

    if (rc.pattern.data[0] != '^'
        || rc.pattern.data[rc.pattern.len - 1] != '$')
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "apipolicy_cors_origins: regular expression "
                           "\"%V\" is not anchored with ^ and $, so it also "
                           "matches origins that merely contain it (for "
                           "example \"https://example.com.evil.net\")",
                           &rc.pattern);
    }

    o->kind = NGX_HTTP_APIPOLICY_CORS_REGEX;
    o->value = *value;
    o->regex = rc.regex;

    return NGX_OK;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "apipolicy_cors_origins: regular expressions need "
                       "nginx built with PCRE");
    return NGX_ERROR;
#endif
}


char *
ngx_http_apipolicy_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_apipolicy_loc_conf_t *alcf = conf;

    char                              *err;
    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_apipolicy_cors_conf_t    *c;
    ngx_http_apipolicy_cors_origin_t  *o;

    c = &alcf->cors;

    if (c->origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    c->file = cf->conf_file->file.name;
    c->line = cf->conf_file->line;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        c->origins = NULL;
        return NGX_CONF_OK;
    }

    c->origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                  sizeof(ngx_http_apipolicy_cors_origin_t));
    if (c->origins == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        o = ngx_array_push(c->origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(o, sizeof(ngx_http_apipolicy_cors_origin_t));

        if (value[i].len == 1 && value[i].data[0] == '*') {
            o->kind = NGX_HTTP_APIPOLICY_CORS_ANY;
            continue;
        }

        if (value[i].data[0] == '~') {
            if (ngx_http_apipolicy_cors_origin_regex(cf, &value[i], o)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_http_apipolicy_cors_parse_origin(cf->pool, &value[i], o, &err)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "apipolicy_cors_origins: \"%V\" %s",
                               &value[i], err);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* RFC 9110 token characters */

static ngx_int_t
ngx_http_apipolicy_cors_token(ngx_str_t *s)
{
    u_char      c;
    ngx_uint_t  i;

    /* by length: a NUL is no token character (ngx_strchr() found one) */
    static u_char  tchar[] = "!#$%&'*+-.^_`|~";

    if (s->len == 0) {
        return NGX_ERROR;
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9'))
        {
            continue;
        }

        if (ngx_strlchr(tchar, tchar + sizeof(tchar) - 1, c) == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* apipolicy_cors_methods, apipolicy_cors_headers, apipolicy_cors_expose */

char *
ngx_http_apipolicy_cors_tokens(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t     *value, *s;
    ngx_uint_t     i, headers;
    ngx_array_t  **a;

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    headers = (cmd->name.len == sizeof("apipolicy_cors_headers") - 1
               && ngx_strcmp(cmd->name.data, "apipolicy_cors_headers") == 0);

    *a = ngx_array_create(cf->pool, cf->args->nelts, sizeof(ngx_str_t));
    if (*a == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_apipolicy_cors_token(&value[i]) != NGX_OK
            || (value[i].len > 1 && ngx_strlchr(value[i].data,
                                                value[i].data + value[i].len,
                                                '*')))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V: \"%V\" is not a valid name; list "
                               "names separated by spaces, or \"*\"",
                               &cmd->name, &value[i]);
            return NGX_CONF_ERROR;
        }

        if (value[i].len == 1 && value[i].data[0] == '*'
            && cmd->offset == offsetof(ngx_http_apipolicy_loc_conf_t,
                                       cors.methods))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "apipolicy_cors_methods: list the methods "
                               "instead of \"*\" (browsers ignore \"*\" on "
                               "requests with credentials)");
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = value[i];

        if (headers) {
            ngx_strlow(s->data, s->data, s->len);
        }
    }

    return NGX_CONF_OK;
}


/* ---- matching -------------------------------------------------------- */

/*
 * "origin" is the request's Origin, lowercased.  Wildcards and regular
 * expressions never match the opaque origin "null"; only an explicit
 * "null" entry or "*" does.
 */

ngx_int_t
ngx_http_apipolicy_cors_match(ngx_array_t *origins, ngx_str_t *origin)
{
    u_char                            *host, *prefix_end, *last;
    ngx_uint_t                         i, null;
    ngx_http_apipolicy_cors_origin_t  *o;

    null = (origin->len == 4 && ngx_strncmp(origin->data, "null", 4) == 0);

    o = origins->elts;

    for (i = 0; i < origins->nelts; i++) {

        switch (o[i].kind) {

        case NGX_HTTP_APIPOLICY_CORS_ANY:
            return 1;

        case NGX_HTTP_APIPOLICY_CORS_EXACT:
            if (origin->len == o[i].value.len
                && ngx_strncmp(origin->data, o[i].value.data, origin->len)
                   == 0)
            {
                return 1;
            }

            break;

        case NGX_HTTP_APIPOLICY_CORS_WILDCARD:

            /* "https://" + one or more labels + ".example.com[:port]" */

            if (null
                || origin->len < o[i].value.len + 1 + o[i].suffix.len
                || ngx_strncmp(origin->data, o[i].value.data, o[i].value.len)
                   != 0)
            {
                break;
            }

            last = origin->data + origin->len;
            prefix_end = last - o[i].suffix.len;

            if (ngx_strncmp(prefix_end, o[i].suffix.data, o[i].suffix.len)
                != 0)
            {
                break;
            }

            host = origin->data + o[i].value.len;

            if (ngx_http_apipolicy_cors_host_label(host, prefix_end)
                == NGX_OK)
            {
                return 1;
            }

            break;

#if (NGX_PCRE)
        case NGX_HTTP_APIPOLICY_CORS_REGEX:

            if (!null && ngx_regex_exec(o[i].regex, origin, NULL, 0) >= 0) {
                return 1;
            }

            break;
#endif
        }
    }

    return 0;
}


/* ---- request path ---------------------------------------------------- */

static void
ngx_http_apipolicy_cors_decide(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_cors_conf_t *cf)
{
    u_char                         *low, class;
    ngx_str_t                       origin, value;
    ngx_uint_t                      n, i;
    ngx_table_elt_t                *h;
    ngx_http_apipolicy_cors_ctx_t  *cc;

    cc = &ctx->cors;

    if (cc->decided && cc->conf == cf) {
        return;
    }

    ngx_memzero(cc, sizeof(ngx_http_apipolicy_cors_ctx_t));

    cc->decided = 1;
    cc->conf = cf;

    h = ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                       &ngx_http_apipolicy_cors_origin_name,
                                       &n);
    if (h == NULL) {
        return;
    }

    cc->has_origin = 1;

    if (n > 1) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "apipolicy cors: %ui Origin headers, not allowed", n);
        return;
    }

    value = h->value;

    if (value.len == 0 || value.len > NGX_HTTP_APIPOLICY_CORS_MAX_ORIGIN) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "apipolicy cors: empty or oversized Origin");
        return;
    }

    class = 0;

    for (i = 0; i < value.len; i++) {
        class |= ngx_http_apipolicy_cors_origin_class[value.data[i]];
    }

    if (class & NGX_HTTP_APIPOLICY_CORS_ORIGIN_BAD) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "apipolicy cors: Origin is not a single origin");
        return;
    }

    /* lowercased into a copy only when it has capitals (browsers send none) */

    origin = value;

    if (class & NGX_HTTP_APIPOLICY_CORS_ORIGIN_UPPER) {
        low = ngx_pnalloc(r->pool, value.len);
        if (low == NULL) {
            return;
        }

        ngx_strlow(low, value.data, value.len);
        origin.data = low;
    }

    if (!ngx_http_apipolicy_cors_match(cf->origins, &origin)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "apipolicy cors: origin \"%V\" not allowed", &value);
        return;
    }

    cc->allowed = 1;

    /* echoed byte for byte, as Fetch compares it */
    cc->origin = value;

    if (r->method == NGX_HTTP_OPTIONS) {
        ngx_http_apipolicy_cors_decide_preflight(r, cc, cf);
    }
}


/* an OPTIONS from an allowed origin: a preflight, and what it asks */

static void
ngx_http_apipolicy_cors_decide_preflight(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_http_apipolicy_cors_conf_t *cf)
{
    ngx_table_elt_t  *acrm, *acrh, *pna;

    acrm = ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                          &ngx_http_apipolicy_cors_acrm, NULL);
    if (acrm == NULL) {
        return;                 /* a plain OPTIONS: the upstream answers */
    }

    cc->preflight = 1;

    acrh = ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                          &ngx_http_apipolicy_cors_acrh, NULL);
    if (acrh) {
        if (ngx_http_apipolicy_cors_allow_headers(r, cf, &acrh->value,
                                                  &cc->allow_headers)
            != NGX_OK)
        {
            ngx_str_null(&cc->allow_headers);
        }
    }

    if (cf->private_network) {
        pna = ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                             &ngx_http_apipolicy_cors_acrpn,
                                             NULL);
        if (pna && pna->value.len == 4
            && ngx_strncasecmp(pna->value.data, (u_char *) "true", 4) == 0)
        {
            cc->private_network = 1;
        }
    }
}


/*
 * The preflight's Access-Control-Allow-Headers: the requested names that
 * are allowed, lowercased.  "*" allows any name but Authorization, which
 * must be listed by name (Fetch: "CORS non-wildcard request-header name").
 */

static ngx_int_t
ngx_http_apipolicy_cors_allow_headers(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_conf_t *cf, ngx_str_t *requested,
    ngx_str_t *allowed)
{
    u_char      *p, *last, *out;
    ngx_str_t    name, item, *s;
    ngx_uint_t   i, ok;

    if (requested->len > NGX_HTTP_APIPOLICY_CORS_MAX_HEADERS) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "apipolicy cors: Access-Control-Request-Headers "
                      "too long");
        return NGX_ERROR;
    }

    /* names are rejoined with ", ": at most twice the input */
    out = ngx_pnalloc(r->pool, 2 * requested->len);
    if (out == NULL) {
        return NGX_ERROR;
    }

    allowed->data = out;
    allowed->len = 0;

    p = requested->data;
    last = p + requested->len;
    s = cf->headers->elts;

    while (ngx_http_apipolicy_list_next(&p, last, &item)) {

        name.data = out + allowed->len + (allowed->len ? 2 : 0);
        name.len = item.len;

        if (allowed->len) {
            out[allowed->len] = ',';
            out[allowed->len + 1] = ' ';
        }

        ngx_strlow(name.data, item.data, name.len);

        if (ngx_http_apipolicy_cors_token(&name) != NGX_OK) {
            continue;
        }

        ok = 0;

        for (i = 0; i < cf->headers->nelts; i++) {
            if (s[i].len == name.len
                && ngx_strncmp(s[i].data, name.data, name.len) == 0)
            {
                ok = 1;
                break;
            }
        }

        if (!ok && cf->headers_any
            && !(name.len == sizeof("authorization") - 1
                 && ngx_strncmp(name.data, "authorization", name.len) == 0))
        {
            ok = 1;
        }

        if (ok) {
            allowed->len = name.data + name.len - out;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_cors_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_http_apipolicy_cors_conf_t  *cf;

    cf = &alcf->cors;

    if (cf->origins == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_apipolicy_cors_decide(r, ctx, cf);

    if (ctx->cors.allowed) {
        if (ctx->cors.preflight) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "apipolicy cors: preflight from \"%V\" answered",
                           &ctx->cors.origin);
            return NGX_HTTP_NO_CONTENT;
        }

        return NGX_DECLINED;
    }

    if (cf->reject
        && ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                          &ngx_http_apipolicy_cors_origin_name,
                                          NULL))
    {
        return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_FORBIDDEN,
                                         &ngx_http_apipolicy_cors_not_allowed,
                                         NGX_LOG_INFO, NULL);
    }

    return NGX_DECLINED;
}


/* ---- header filter --------------------------------------------------- */

/*
 * One walk of the response headers before the gateway writes its own:
 * the upstream's Access-Control-* headers go ("replace") or, with
 * "pass", the first of each name stays and is noted in cc->owned (any
 * other of that name goes); and whether a Vary already names Origin
 */

static ngx_uint_t
ngx_http_apipolicy_cors_upstream(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_http_apipolicy_cors_conf_t *cf)
{
    ngx_int_t                          n;
    ngx_uint_t                         bit, vary, pass;
    ngx_table_elt_t                   *h;
    ngx_http_apipolicy_header_iter_t   it;

    vary = 0;
    pass = (cf->upstream == NGX_HTTP_APIPOLICY_CORS_UPSTREAM_PASS);
    cc->owned = 0;

    ngx_memzero(&it, sizeof(ngx_http_apipolicy_header_iter_t));

    while ((h = ngx_http_apipolicy_header_each(&r->headers_out.headers, &it)))
    {
        if (h->key.len == sizeof("Vary") - 1
            && ngx_strncasecmp(h->key.data, (u_char *) "Vary", 4) == 0)
        {
            if (!vary
                && ngx_http_apipolicy_list_has(&h->value,
                                        &ngx_http_apipolicy_cors_vary_origin))
            {
                vary = 1;
            }

            continue;
        }

        if (!ngx_http_apipolicy_header_len_in(h,
                                        ngx_http_apipolicy_cors_upstream_lens))
        {
            continue;
        }

        n = ngx_http_apipolicy_header_in(h,
                                    ngx_http_apipolicy_cors_upstream_headers,
                                    ngx_http_apipolicy_cors_upstream_lens);
        if (n == NGX_ERROR) {
            continue;
        }

        bit = (ngx_uint_t) 1 << n;

        if (pass && !(cc->owned & bit)) {
            cc->owned |= bit;
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "apipolicy cors: \"%V: %V\" is not the "
                       "gateway's, removed", &h->key, &h->value);

        h->hash = 0;
    }

    return vary;
}


/* an Access-Control-* header, unless "pass" kept the upstream's */

static ngx_int_t
ngx_http_apipolicy_cors_set(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_uint_t n, ngx_str_t *value)
{
    ngx_uint_t  bit;

    bit = (ngx_uint_t) 1 << n;

    if (value->len == 0 || (cc->owned & bit)) {
        return NGX_OK;
    }

    if (ngx_http_apipolicy_add_header(r,
                                &ngx_http_apipolicy_cors_upstream_headers[n],
                                value)
        == NULL)
    {
        return NGX_ERROR;
    }

    cc->owned |= bit;

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_cors_vary(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_str_t *value)
{
    ngx_str_t  vary = ngx_string("Vary");

    /* plain "Vary: Origin" is not repeated when the upstream sent it */

    if (cc->vary_origin
        && value->len == ngx_http_apipolicy_cors_vary_origin.len)
    {
        return NGX_OK;
    }

    return ngx_http_apipolicy_add_header(r, &vary, value) ? NGX_OK
                                                          : NGX_ERROR;
}


/*
 * The upstream's response headers, looked at before the gateway adds its
 * own (which are no Access-Control-* or Vary): the decision, if PREACCESS
 * did not run, and ngx_http_apipolicy_cors_upstream()
 */

ngx_int_t
ngx_http_apipolicy_cors_upstream_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_http_apipolicy_cors_ctx_t  *cc;
    ngx_http_apipolicy_loc_conf_t  *alcf;

    cc = &ctx->cors;

    if (!cc->decided) {
        alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

        if (alcf->cors.origins == NULL) {
            return NGX_OK;
        }

        ngx_http_apipolicy_cors_decide(r, ctx, &alcf->cors);
    }

    cc->vary_origin = ngx_http_apipolicy_cors_upstream(r, cc, cc->conf);

    return NGX_OK;
}


/*
 * The gateway's CORS headers, then a note of which Access-Control-*
 * names it answered with, for ngx_http_apipolicy_cors_single_module
 * below add_header's filter: any other header of those names is not
 * the gateway's
 */

ngx_int_t
ngx_http_apipolicy_cors_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    if (ngx_http_apipolicy_cors_write(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!ctx->cors.decided) {
        return NGX_OK;
    }

    ctx->cors.filtered = 1;

    /*
     * the gateway's own Access-Control-* headers, one of each name, end
     * here: the single filter below add_header's looks only at the
     * headers added after them
     */

    ctx->cors.later_part = r->headers_out.headers.last;
    ctx->cors.later_i = r->headers_out.headers.last->nelts;

    return NGX_OK;
}


/* the answer to a preflight the gateway answered (204) */

static ngx_int_t
ngx_http_apipolicy_cors_write_preflight(ngx_http_request_t *r,
    ngx_http_apipolicy_cors_ctx_t *cc, ngx_http_apipolicy_cors_conf_t *cf)
{
    if (ngx_http_apipolicy_cors_set(r, cc, NGX_HTTP_APIPOLICY_CORS_ACAM,
                                    &cf->methods_value) != NGX_OK
        || ngx_http_apipolicy_cors_set(r, cc, NGX_HTTP_APIPOLICY_CORS_ACAH,
                                       &cc->allow_headers) != NGX_OK
        || ngx_http_apipolicy_cors_set(r, cc, NGX_HTTP_APIPOLICY_CORS_ACMA,
                                       &cf->max_age_value) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cc->private_network
        && ngx_http_apipolicy_cors_set(r, cc, NGX_HTTP_APIPOLICY_CORS_ACAPN,
                                       &ngx_http_apipolicy_cors_true)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_apipolicy_cors_vary(r, cc,
                                     &ngx_http_apipolicy_cors_vary_preflight);
}


/*
 * Access-Control-Expose-Headers: the configured names, then the headers
 * the gateway added to this response; the usual set of the location's
 * was joined at configuration
 */

static ngx_int_t
ngx_http_apipolicy_cors_expose(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_cors_conf_t *cf,
    ngx_str_t *expose)
{
    if (r->headers_out.www_authenticate
        && r->headers_out.www_authenticate->hash)
    {
        ctx->added |= NGX_HTTP_APIPOLICY_HDR_WWW_AUTHENTICATE;
    }

    if (ctx->added == 0) {
        *expose = cf->expose_value;
        return NGX_OK;
    }

    if (ctx->added == cf->expose_usual) {
        *expose = cf->expose_usual_value;
        return NGX_OK;
    }

    return ngx_http_apipolicy_cors_expose_join(r->pool, &cf->expose_value,
                                               ctx->added, expose);
}


/* the configured names, then those of the bits set in "added" */

static ngx_int_t
ngx_http_apipolicy_cors_expose_join(ngx_pool_t *pool, ngx_str_t *configured,
    ngx_uint_t added, ngx_str_t *expose)
{
    u_char      *p;
    size_t       len;
    ngx_uint_t   bits, i;

    /* the names of the bits set, up to the highest */

    len = configured->len;

    for (bits = added, i = 0; bits; bits >>= 1, i++) {
        if (bits & 1) {
            len += ngx_http_apipolicy_cors_added[i].len;
        }
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    expose->data = p;
    p = ngx_cpymem(p, configured->data, configured->len);

    for (bits = added, i = 0; bits; bits >>= 1, i++) {
        if (bits & 1) {
            p = ngx_cpymem(p, ngx_http_apipolicy_cors_added[i].data,
                           ngx_http_apipolicy_cors_added[i].len);
        }
    }

    expose->len = p - expose->data;

    if (configured->len == 0 && added) {
        /* no configured names: the first added one leads, without ", " */
        expose->data += 2;
        expose->len -= 2;
    }

    return NGX_OK;
}


/*
 * At configuration, once every area is merged: the headers the location
 * adds to a usual response ("added": NGX_HTTP_APIPOLICY_HDR_*), with the
 * configured names
 */

ngx_int_t
ngx_http_apipolicy_cors_expose_usual(ngx_conf_t *cf,
    ngx_http_apipolicy_cors_conf_t *conf, ngx_uint_t added)
{
    conf->expose_usual = 0;
    ngx_str_null(&conf->expose_usual_value);

    if (conf->origins == NULL || added == 0) {
        return NGX_OK;
    }

    conf->expose_usual = added;

    return ngx_http_apipolicy_cors_expose_join(cf->pool, &conf->expose_value,
                                               added,
                                               &conf->expose_usual_value);
}


static ngx_int_t
ngx_http_apipolicy_cors_write(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_str_t                        expose;
    ngx_uint_t                       star;
    ngx_http_apipolicy_cors_ctx_t   *cc;
    ngx_http_apipolicy_cors_conf_t  *cf;

    cc = &ctx->cors;

    /* decided, and the upstream's headers seen, by cors_upstream_header() */

    if (!cc->decided) {
        return NGX_OK;
    }

    cf = cc->conf;

    if (cc->owned & ((ngx_uint_t) 1 << NGX_HTTP_APIPOLICY_CORS_ACAO)) {
        return NGX_OK;          /* "pass": the upstream answers CORS itself */
    }

    /* "*" for every origin without credentials: one answer, no Vary */

    star = (cf->any_origin && !cf->credentials);

    if (!cc->allowed) {
        if (star) {
            /* a request without Origin gets the same public answer */
            return ngx_http_apipolicy_cors_set(r, cc,
                                             NGX_HTTP_APIPOLICY_CORS_ACAO,
                                             &ngx_http_apipolicy_cors_star);
        }

        return ngx_http_apipolicy_cors_vary(r, cc,
                                          &ngx_http_apipolicy_cors_vary_origin);
    }

    if (ngx_http_apipolicy_cors_set(r, cc, NGX_HTTP_APIPOLICY_CORS_ACAO,
                                    star ? &ngx_http_apipolicy_cors_star
                                         : &cc->origin)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cf->credentials
        && ngx_http_apipolicy_cors_set(r, cc, NGX_HTTP_APIPOLICY_CORS_ACAC,
                                       &ngx_http_apipolicy_cors_true)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cc->preflight && r->headers_out.status == NGX_HTTP_NO_CONTENT) {
        return ngx_http_apipolicy_cors_write_preflight(r, cc, cf);
    }

    if (ngx_http_apipolicy_cors_expose(r, ctx, cf, &expose) != NGX_OK
        || ngx_http_apipolicy_cors_set(r, cc, NGX_HTTP_APIPOLICY_CORS_ACEH,
                                       &expose)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (star) {
        return NGX_OK;
    }

    return ngx_http_apipolicy_cors_vary(r, cc,
                                        &ngx_http_apipolicy_cors_vary_origin);
}


/*
 * ngx_http_apipolicy_cors_single_module: a second module of the .so,
 * placed just below add_header's filter (ngx_module_order in config).
 * apipolicy's own header filter runs above add_header's and has written
 * the gateway's CORS headers (or kept the upstream's, with "pass") by
 * the time an "add_header Access-Control-Allow-Origin ... always" left
 * in the location adds another; here, in a location where CORS was
 * decided, only the first header of each Access-Control-* name the
 * gateway answered with stays, and none of the others: browsers refuse
 * two Access-Control-Allow-Origin values, and an origin the gateway did
 * not allow gets none.
 */

static ngx_int_t ngx_http_apipolicy_cors_single_init(ngx_conf_t *cf);

static ngx_http_output_header_filter_pt  ngx_http_apipolicy_cors_next_filter;


static ngx_http_module_t  ngx_http_apipolicy_cors_single_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_apipolicy_cors_single_init,   /* postconfiguration */
    NULL, NULL, NULL, NULL, NULL, NULL
};


ngx_module_t  ngx_http_apipolicy_cors_single_module = {
    NGX_MODULE_V1,
    &ngx_http_apipolicy_cors_single_module_ctx, /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_apipolicy_cors_single_filter(ngx_http_request_t *r)
{
    ngx_table_elt_t                   *h;
    ngx_http_apipolicy_ctx_t          *ctx;
    ngx_http_apipolicy_header_iter_t   it;

    ctx = (r == r->main) ? ngx_http_apipolicy_get_ctx(r) : NULL;

    if (ctx == NULL || !ctx->cors.decided || !ctx->cors.filtered) {
        return ngx_http_apipolicy_cors_next_filter(r);
    }

    /*
     * the gateway's own headers, one of each name, came first
     * (ngx_http_apipolicy_cors_header); of the headers added since, any
     * Access-Control-* one is a second answer and goes
     */

    it.part = ctx->cors.later_part;
    it.i = ctx->cors.later_i;

    while ((h = ngx_http_apipolicy_header_each(&r->headers_out.headers, &it)))
    {
        if (!ngx_http_apipolicy_header_len_in(h,
                                        ngx_http_apipolicy_cors_upstream_lens)
            || ngx_http_apipolicy_header_in(h,
                                    ngx_http_apipolicy_cors_upstream_headers,
                                    ngx_http_apipolicy_cors_upstream_lens)
               == NGX_ERROR)
        {
            continue;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "apipolicy cors: \"%V: %V\" is not the "
                       "gateway's, removed", &h->key, &h->value);

        h->hash = 0;
    }

    return ngx_http_apipolicy_cors_next_filter(r);
}


static ngx_int_t
ngx_http_apipolicy_cors_single_init(ngx_conf_t *cf)
{
    ngx_uint_t  c;

    ngx_http_apipolicy_cors_upstream_lens = ngx_http_apipolicy_header_lens(
                                     ngx_http_apipolicy_cors_upstream_headers);

    for (c = 0; c < 256; c++) {
        ngx_http_apipolicy_cors_origin_class[c] =
            (c <= ' ' || c == ',' || c >= 0x7f)
            ? NGX_HTTP_APIPOLICY_CORS_ORIGIN_BAD
            : (c >= 'A' && c <= 'Z') ? NGX_HTTP_APIPOLICY_CORS_ORIGIN_UPPER : 0;
    }

    ngx_http_apipolicy_cors_next_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_apipolicy_cors_single_filter;

    return NGX_OK;
}


ngx_uint_t
ngx_http_apipolicy_cors_outcome(ngx_http_apipolicy_ctx_t *ctx)
{
    if (!ctx->cors.decided) {
        return NGX_HTTP_APIPOLICY_CORS_OUTCOME_NONE;
    }

    if (ctx->cors.allowed) {
        return ctx->cors.preflight ? NGX_HTTP_APIPOLICY_CORS_OUTCOME_PREFLIGHT
                                   : NGX_HTTP_APIPOLICY_CORS_OUTCOME_ALLOWED;
    }

    return ctx->cors.has_origin ? NGX_HTTP_APIPOLICY_CORS_OUTCOME_DISALLOWED
                                : NGX_HTTP_APIPOLICY_CORS_OUTCOME_NONE;
}
