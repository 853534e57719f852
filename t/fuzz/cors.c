
/*
 * Copyright (C) apipolicy authors
 *
 * CORS request headers: Origin (one origin, lowercased, matched against
 * exact, wildcard, port and "null" entries), Access-Control-Request-Method,
 * Access-Control-Request-Headers (split, trimmed, checked as tokens and
 * rejoined) and Access-Control-Request-Private-Network, through
 * ngx_http_apipolicy_cors_decide() as a preflight or an actual request;
 * and the configured-origin parser (ngx_http_apipolicy_cors_parse_origin)
 * on the Origin value.
 *
 * Input: one byte (bit 0: OPTIONS, bit 1: "*" in the allowed headers),
 * then header lines (t/fuzz/fuzz.h).
 */

#include "../../src/ngx_http_apipolicy_cors.c"
#include "fuzz.h"


static ngx_http_apipolicy_cors_conf_t  fuzz_cf;

static char  *fuzz_origins[] = {
    "https://app.example.com",
    "http://localhost:3000",
    "https://*.example.org",
    "https://api.example.net:443",
    "null",
    NULL
};

static char  *fuzz_headers[] = {
    "content-type", "x-api-key", "authorization", NULL
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char                             *err, **s;
    ngx_str_t                         v, *h;
    ngx_pool_t                       *pool;
    ngx_http_apipolicy_cors_origin_t *o;

    fuzz_init();
    pool = fuzz_pool();

    fuzz_cf.origins = ngx_array_create(pool, 8,
                                     sizeof(ngx_http_apipolicy_cors_origin_t));
    fuzz_cf.headers = ngx_array_create(pool, 4, sizeof(ngx_str_t));
    if (fuzz_cf.origins == NULL || fuzz_cf.headers == NULL) {
        abort();
    }

    for (s = fuzz_origins; *s; s++) {
        v.data = (u_char *) *s;
        v.len = ngx_strlen(*s);

        o = ngx_array_push(fuzz_cf.origins);
        if (o == NULL
            || ngx_http_apipolicy_cors_parse_origin(pool, &v, o, &err)
               != NGX_OK)
        {
            abort();
        }
    }

    for (s = fuzz_headers; *s; s++) {
        h = ngx_array_push(fuzz_cf.headers);
        if (h == NULL) {
            abort();
        }

        h->data = (u_char *) *s;
        h->len = ngx_strlen(*s);
    }

    fuzz_cf.private_network = 1;

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                              *err;
    ngx_uint_t                         n;
    ngx_pool_t                        *pool;
    ngx_table_elt_t                   *h;
    ngx_http_request_t                *r;
    ngx_http_apipolicy_ctx_t          *ctx;
    ngx_http_apipolicy_cors_origin_t   o;

    static ngx_str_t  origin = ngx_string("Origin");

    if (size < 1) {
        return 0;
    }

    pool = fuzz_pool();
    r = fuzz_request(pool, data + 1, size - 1);
    r->method = (data[0] & 1) ? NGX_HTTP_OPTIONS : NGX_HTTP_GET;
    fuzz_cf.headers_any = (data[0] & 2) ? 1 : 0;

    ctx = ngx_pcalloc(pool, sizeof(ngx_http_apipolicy_ctx_t));
    if (ctx == NULL) {
        abort();
    }

    ngx_http_apipolicy_cors_decide(r, ctx, &fuzz_cf);

    if (ctx->cors.allow_headers.len
        && (!ctx->cors.preflight || ctx->cors.allow_headers.data == NULL))
    {
        abort();
    }

    /* the same bytes as a configured origin */

    h = ngx_http_apipolicy_find_header(&r->headers_in.headers, &origin, &n);

    if (h) {
        (void) ngx_http_apipolicy_cors_parse_origin(pool, &h->value, &o, &err);
    }

    ngx_destroy_pool(pool);

    return 0;
}
