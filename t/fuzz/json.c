
/*
 * Copyright (C) apipolicy authors
 *
 * The strict JSON parser of the request path (token headers and claims):
 * ngx_http_apipolicy_json_parse() at the depth the JWT code uses, then
 * every value of the tree compacted (ngx_http_apipolicy_json_compact), as
 * $jwt_payload and the claim variables do.
 *
 * Input: the JSON text.
 */

#include "../../src/ngx_http_apipolicy_json.c"
#define FUZZ_INIT_ONLY
#include "fuzz.h"


static void
fuzz_walk(ngx_pool_t *pool, ngx_http_apipolicy_json_t *j, ngx_uint_t depth)
{
    ngx_str_t                   out;
    ngx_uint_t                  n;
    ngx_http_apipolicy_json_t  *e;

    if (depth > 16 + 1) {
        abort();                /* containers deeper than asked for */
    }

    if (ngx_http_apipolicy_json_compact(pool, j, &out) != NGX_OK
        || out.len > j->raw.len)
    {
        abort();
    }

    n = 0;

    for (e = j->child; e; e = e->next) {
        fuzz_walk(pool, e, depth + 1);
        n++;
    }

    if ((j->type == NGX_HTTP_APIPOLICY_JSON_ARRAY
         || j->type == NGX_HTTP_APIPOLICY_JSON_OBJECT)
        && n != j->count)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                     *text;
    ngx_uint_t                  err;
    ngx_pool_t                 *pool;
    ngx_http_apipolicy_json_t  *j;

    pool = fuzz_pool();

    text = fuzz_copy(pool, data, size);

    j = ngx_http_apipolicy_json_parse(pool, text, size, 16, &err);

    if (j) {
        fuzz_walk(pool, j, 1);
    }

    ngx_destroy_pool(pool);

    return 0;
}
