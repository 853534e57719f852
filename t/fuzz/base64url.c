
/*
 * Copyright (C) apipolicy authors
 *
 * base64url as tokens and JWKs carry it (no padding, the unused low bits
 * of the last character zero): ngx_http_apipolicy_crypto_base64url_decode().
 * Whatever it accepts must encode back to the very same text (nginx's
 * ngx_encode_base64url), so two spellings never decode to one value; and
 * the input taken as bytes, encoded by nginx, must decode back to those
 * bytes, so nothing valid is refused.
 *
 * Input: the base64url text; the same input as bytes to encode.
 */

#include "../../src/ngx_http_apipolicy_crypto.c"
#define FUZZ_INIT_ONLY
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *text;
    ngx_str_t    dst, back;
    ngx_pool_t  *pool;

    pool = fuzz_pool();

    text = fuzz_copy(pool, data, size);

    if (ngx_http_apipolicy_crypto_base64url_decode(pool, text, size, &dst)
        == NGX_OK)
    {
        back.data = ngx_pnalloc(pool, ngx_base64_encoded_length(dst.len));
        if (back.data == NULL) {
            abort();
        }

        ngx_encode_base64url(&back, &dst);

        if (back.len != size || ngx_memcmp(back.data, text, size) != 0) {
            abort();                    /* not the canonical spelling */
        }
    }

    /* the other way: bytes -> nginx's encoding -> the same bytes */

    dst.data = text;
    dst.len = size;
    back.data = ngx_pnalloc(pool, ngx_base64_encoded_length(size));
    if (back.data == NULL) {
        abort();
    }

    ngx_encode_base64url(&back, &dst);

    if (ngx_http_apipolicy_crypto_base64url_decode(pool, back.data, back.len,
                                                   &dst)
        != NGX_OK
        || dst.len != size || ngx_memcmp(dst.data, text, size) != 0
        || dst.data[size] != '\0')
    {
        abort();                        /* a valid encoding refused or
                                           decoded wrong */
    }

    ngx_destroy_pool(pool);

    return 0;
}
