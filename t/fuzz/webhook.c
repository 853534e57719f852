
/*
 * Copyright (C) apipolicy authors
 *
 * Webhook signature headers of every scheme, and the message each one
 * signs: ngx_http_apipolicy_webhook_parse() (headers, the messages for a
 * missing, repeated, empty or over-long header, signatures, timestamps)
 * and, when it accepts, the HMAC over the message and the body.
 *
 * Input: one byte picking the scheme (and the tolerance), then header
 * lines and the body (t/fuzz/fuzz.h).
 */

#include "../../src/ngx_http_apipolicy_webhook.c"
#include "fuzz.h"


static ngx_http_apipolicy_webhook_conf_t
    fuzz_wcf[NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES];


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_uint_t                         n;
    ngx_pool_t                        *pool;
    ngx_str_t                          secret;
    ngx_http_apipolicy_webhook_key_t  *key;

    fuzz_init();
    pool = fuzz_pool();

    ngx_str_set(&secret, "whsec-fuzz-secret");

    for (n = 1; n < NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES; n++) {
        fuzz_wcf[n].scheme = n;
        fuzz_wcf[n].desc = &ngx_http_apipolicy_webhook_scheme_table[n];
        fuzz_wcf[n].tolerance = fuzz_wcf[n].desc->tolerance;
        fuzz_wcf[n].prefix = fuzz_wcf[n].desc->prefix;
        fuzz_wcf[n].encoding = fuzz_wcf[n].desc->encoding;

        fuzz_wcf[n].keys = ngx_array_create(pool, 1,
                                    sizeof(ngx_http_apipolicy_webhook_key_t));
        key = ngx_array_push(fuzz_wcf[n].keys);
        if (key == NULL) {
            abort();
        }

        if (ngx_http_apipolicy_crypto_hmac_key(pool, &key->hmac,
                                               NGX_HTTP_APIPOLICY_SHA256,
                                               &secret)
            != NGX_OK)
        {
            abort();
        }
    }

    /* the last scheme, hmac, as configured with header= and prefix= */
    n = NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES - 1;
    ngx_str_set(&fuzz_wcf[n].header, "X-Signature");
    ngx_str_set(&fuzz_wcf[n].prefix, "v1=");

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                               mac[EVP_MAX_MD_SIZE];
    ngx_int_t                            rc;
    ngx_str_t                            detail;
    ngx_pool_t                          *pool;
    ngx_http_request_t                  *r;
    ngx_http_apipolicy_webhook_parsed_t  ps;
    ngx_http_apipolicy_webhook_conf_t   *wcf;

    if (size < 1) {
        return 0;
    }

    wcf = &fuzz_wcf[1 + data[0] % (NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES - 1)];

    /* the high bit: a timestamp anywhere is in tolerance */
    wcf->tolerance = (data[0] & 0x80) ? NGX_MAX_TIME_T_VALUE / 2 : 300;

    pool = fuzz_pool();
    r = fuzz_request(pool, data + 1, size - 1);

    ngx_memzero(&ps, sizeof(ngx_http_apipolicy_webhook_parsed_t));
    ngx_str_null(&detail);

    rc = ngx_http_apipolicy_webhook_parse(r, wcf, &ps, &detail);

    if (rc == NGX_OK) {
        if (ps.sigs.nelts == 0) {
            abort();                    /* accepted without a signature */
        }

        if (ngx_http_apipolicy_webhook_mac(r, wcf->keys->elts, &ps, mac)
            != NGX_OK)
        {
            abort();
        }

    } else if (rc != NGX_ERROR && detail.len == 0) {
        abort();                        /* every refusal says why */
    }

    /* the detail is read whole, as the problem body would */
    if (detail.len) {
        (void) ngx_escape_json(NULL, detail.data, detail.len);
    }

    ngx_destroy_pool(pool);

    return 0;
}
