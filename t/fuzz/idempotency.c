
/*
 * Copyright (C) apipolicy authors
 *
 * The Idempotency-Key header (an RFC 8941 string, or a bare token as most
 * clients send it): ngx_http_apipolicy_idempotency_key(), which refuses a
 * missing, repeated, empty, over-long or non-printable key with its
 * problem and hashes an accepted one with the scope.
 *
 * Input: one byte (bit 0: the key is required), then header lines
 * (t/fuzz/fuzz.h).
 */

#include "../../src/ngx_http_apipolicy_idempotency.c"
#define FUZZ_INIT_ONLY
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_int_t                              rc;
    ngx_str_t                              detail;
    ngx_pool_t                            *pool;
    ngx_http_request_t                    *r;
    ngx_http_apipolicy_ctx_t              *ctx;
    ngx_http_apipolicy_idempotency_conf_t  icf;

    if (size < 1) {
        return 0;
    }

    pool = fuzz_pool();
    r = fuzz_request(pool, data + 1, size - 1);

    ngx_memzero(&icf, sizeof(ngx_http_apipolicy_idempotency_conf_t));
    icf.required = data[0] & 1;

    ctx = ngx_pcalloc(pool, sizeof(ngx_http_apipolicy_ctx_t));
    if (ctx == NULL) {
        abort();
    }

    ctx->idempotency = ngx_pcalloc(pool,
                             sizeof(ngx_http_apipolicy_idempotency_ctx_t));
    if (ctx->idempotency == NULL) {
        abort();
    }

    ngx_str_null(&detail);

    rc = ngx_http_apipolicy_idempotency_key(r, &icf, ctx, &detail);

    if (rc == NGX_HTTP_BAD_REQUEST) {
        if (ctx->problem == NULL || detail.len == 0) {
            abort();
        }

    } else if (rc != NGX_OK && rc != NGX_DECLINED) {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
