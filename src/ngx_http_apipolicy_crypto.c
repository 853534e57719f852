
/*
 * Copyright (C) apipolicy authors
 *
 * Helpers several areas share for key material: strict base64url
 * (RFC 7515 section 2), secrets as configured ("base64:", "base64url:",
 * "file:" or the plain value), reading a key file at configuration time,
 * and an HMAC secret prepared once (its ipad and opad states, for
 * ngx_http_apipolicy_hmac_begin/end).  Nothing here looks at a request.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_crypto.h"
#include "ngx_http_apipolicy_digest.h"

#include <openssl/crypto.h>


#define NGX_HTTP_APIPOLICY_CRYPTO_MAX_FILE  (1024 * 1024)


/* base64url digit values; 255: not in the alphabet ('=', '+', '/', NUL) */

u_char  ngx_http_apipolicy_crypto_b64u[256] = {
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255,  62, 255, 255,
     52,  53,  54,  55,  56,  57,  58,  59,  60,  61, 255, 255,
    255, 255, 255, 255, 255,   0,   1,   2,   3,   4,   5,   6,
      7,   8,   9,  10,  11,  12,  13,  14,  15,  16,  17,  18,
     19,  20,  21,  22,  23,  24,  25, 255, 255, 255, 255,  63,
    255,  26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,
     37,  38,  39,  40,  41,  42,  43,  44,  45,  46,  47,  48,
     49,  50,  51, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255
};


/*
 * The same digit values placed where they go in the top 24 bits of a
 * group of four characters (first character 26 bits up, then 20, 14, 8),
 * a character outside the alphabet as bit 0: a group is four lookups
 * ORed, stored big-endian as four bytes of which the fourth (the flag
 * byte) is overwritten by what follows, and one test of bit 0 after the
 * last group tells whether any character was outside.
 */

#define ngx_http_apipolicy_b64u_value(c)                                     \
    (((c) >= 'A' && (c) <= 'Z') ? (c) - 'A'                                  \
     : ((c) >= 'a' && (c) <= 'z') ? (c) - 'a' + 26                           \
     : ((c) >= '0' && (c) <= '9') ? (c) - '0' + 52                           \
     : ((c) == '-') ? 62 : ((c) == '_') ? 63 : 64)

#define ngx_http_apipolicy_b64u_digit(c, shift)                              \
    ((ngx_http_apipolicy_b64u_value(c) == 64) ? 1                            \
     : (uint32_t) ngx_http_apipolicy_b64u_value(c) << (shift))

#define ngx_http_apipolicy_b64u_4(c, s)                                      \
    ngx_http_apipolicy_b64u_digit(c, s),                                     \
    ngx_http_apipolicy_b64u_digit(c + 1, s),                                 \
    ngx_http_apipolicy_b64u_digit(c + 2, s),                                 \
    ngx_http_apipolicy_b64u_digit(c + 3, s)

#define ngx_http_apipolicy_b64u_16(c, s)                                     \
    ngx_http_apipolicy_b64u_4(c, s), ngx_http_apipolicy_b64u_4(c + 4, s),    \
    ngx_http_apipolicy_b64u_4(c + 8, s), ngx_http_apipolicy_b64u_4(c + 12, s)

#define ngx_http_apipolicy_b64u_64(c, s)                                     \
    ngx_http_apipolicy_b64u_16(c, s), ngx_http_apipolicy_b64u_16(c + 16, s), \
    ngx_http_apipolicy_b64u_16(c + 32, s),                                   \
    ngx_http_apipolicy_b64u_16(c + 48, s)

#define ngx_http_apipolicy_b64u_256(s)                                       \
    ngx_http_apipolicy_b64u_64(0, s), ngx_http_apipolicy_b64u_64(64, s),     \
    ngx_http_apipolicy_b64u_64(128, s), ngx_http_apipolicy_b64u_64(192, s)

#define NGX_HTTP_APIPOLICY_B64U_BAD  1

static const uint32_t  ngx_http_apipolicy_crypto_b64u_group[4][256] = {
    { ngx_http_apipolicy_b64u_256(26) },
    { ngx_http_apipolicy_b64u_256(20) },
    { ngx_http_apipolicy_b64u_256(14) },
    { ngx_http_apipolicy_b64u_256(8) }
};


/* ---- base64url ------------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_crypto_base64url_decode_to(u_char *buf, u_char *src,
    size_t len, ngx_str_t *dst)
{
    u_char          *d, a, b, c, *b64u;
    size_t           i, n;
    uint32_t         w, v, bad;
    const uint32_t  (*g)[256];

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    /*
     * a group's three bytes are stored as four, the last byte to spare:
     * ngx_http_apipolicy_crypto_base64url_room()
     */

    d = buf;
    dst->data = d;
    n = len & ~((size_t) 3);
    g = ngx_http_apipolicy_crypto_b64u_group;
    bad = 0;

    /* two groups a step, each stored as four bytes, three kept */

    for (i = 0; i + 8 <= n; i += 8) {
        w = g[0][src[i]] | g[1][src[i + 1]] | g[2][src[i + 2]]
            | g[3][src[i + 3]];
        v = g[0][src[i + 4]] | g[1][src[i + 5]] | g[2][src[i + 6]]
            | g[3][src[i + 7]];

        bad |= w | v;

        w = htonl(w);
        v = htonl(v);
        ngx_memcpy(d, &w, 4);
        ngx_memcpy(d + 3, &v, 4);
        d += 6;
    }

    if (i < n) {
        w = g[0][src[i]] | g[1][src[i + 1]] | g[2][src[i + 2]]
            | g[3][src[i + 3]];

        bad |= w;

        w = htonl(w);
        ngx_memcpy(d, &w, 4);
        d += 3;
        i += 4;
    }

    if (bad & NGX_HTTP_APIPOLICY_B64U_BAD) {
        return NGX_ERROR;
    }

    b64u = ngx_http_apipolicy_crypto_b64u;

    /* the unused low bits of the last character must be zero */

    switch (len - n) {

    case 2:
        a = b64u[src[i]];
        b = b64u[src[i + 1]];

        if (((a | b) & 0xc0) || (b & 0x0f)) {
            return NGX_ERROR;
        }

        *d++ = (u_char) (a << 2 | b >> 4);
        break;

    case 3:
        a = b64u[src[i]];
        b = b64u[src[i + 1]];
        c = b64u[src[i + 2]];

        if (((a | b | c) & 0xc0) || (c & 0x03)) {
            return NGX_ERROR;
        }

        *d++ = (u_char) (a << 2 | b >> 4);
        *d++ = (u_char) (b << 4 | c >> 2);
        break;
    }

    dst->len = d - dst->data;
    *d = '\0';

    return NGX_OK;
}


/* 1 when every character is in the base64url alphabet */

ngx_uint_t
ngx_http_apipolicy_crypto_base64url_valid(u_char *p, size_t len)
{
    size_t           i;
    uint32_t         bad;
    const uint32_t  *g;

    g = ngx_http_apipolicy_crypto_b64u_group[3];
    bad = 0;

    for (i = 0; i + 4 <= len; i += 4) {
        bad |= g[p[i]] | g[p[i + 1]] | g[p[i + 2]] | g[p[i + 3]];
    }

    for ( /* void */ ; i < len; i++) {
        bad |= g[p[i]];
    }

    return !(bad & NGX_HTTP_APIPOLICY_B64U_BAD);
}


/* ---- secrets and key files -------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_crypto_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open the key file \"%V\"", name);
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = *name;
    file.log = cf->log;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", name);
        goto failed;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_APIPOLICY_CRYPTO_MAX_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key file \"%V\" is larger than 1 MiB", name);
        goto failed;
    }

    out->len = (size_t) ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, out->data, out->len, 0);

    if (n == NGX_ERROR || (size_t) n != out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read the key file \"%V\"", name);
        goto failed;
    }

    out->data[out->len] = '\0';

    ngx_close_file(fd);

    return NGX_OK;

failed:

    ngx_close_file(fd);

    return NGX_ERROR;
}


/*
 * A secret as configured: the bytes of the value, or "base64:...",
 * "base64url:...", "file:PATH" (relative to the configuration directory,
 * one final newline dropped).  Used by apipolicy_jwt_secret and
 * apipolicy_webhook.
 */

ngx_int_t
ngx_http_apipolicy_crypto_secret(ngx_conf_t *cf, ngx_str_t *src,
    ngx_str_t *out)
{
    ngx_str_t  s;

    if (src->len > 7 && ngx_strncmp(src->data, "base64:", 7) == 0) {
        s.data = src->data + 7;
        s.len = src->len - 7;

        out->data = ngx_pnalloc(cf->pool, ngx_base64_decoded_length(s.len));
        if (out->data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_decode_base64(out, &s) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the secret after \"base64:\" is not base64");
            return NGX_ERROR;
        }

    } else if (src->len > 10 && ngx_strncmp(src->data, "base64url:", 10) == 0)
    {
        s.data = src->data + 10;
        s.len = src->len - 10;

        while (s.len && s.data[s.len - 1] == '=') {
            s.len--;
        }

        if (ngx_http_apipolicy_crypto_base64url_decode(cf->pool, s.data,
                                                       s.len, out)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the secret after \"base64url:\" is not "
                               "base64url");
            return NGX_ERROR;
        }

    } else if (src->len > 5 && ngx_strncmp(src->data, "file:", 5) == 0) {
        s.data = src->data + 5;
        s.len = src->len - 5;

        if (ngx_http_apipolicy_crypto_read_file(cf, &s, out) != NGX_OK) {
            return NGX_ERROR;
        }

        /* one final newline, as editors and "echo" add, is not secret */

        if (out->len && out->data[out->len - 1] == '\n') {
            out->len--;

            if (out->len && out->data[out->len - 1] == '\r') {
                out->len--;
            }
        }

    } else {
        *out = *src;
    }

    return NGX_OK;
}


/* ---- HMAC keys ------------------------------------------------------- */

static void
ngx_http_apipolicy_crypto_hmac_cleanup(void *data)
{
    OPENSSL_cleanse(data, sizeof(ngx_http_apipolicy_hmac_t));
}


ngx_int_t
ngx_http_apipolicy_crypto_hmac_key(ngx_pool_t *pool,
    ngx_http_apipolicy_hmac_t *hmac, ngx_uint_t sha, ngx_str_t *secret)
{
    u_char                     k[SHA512_CBLOCK], pad[SHA512_CBLOCK];
    size_t                     block;
    ngx_uint_t                 i, n;
    ngx_pool_cleanup_t        *cln;
    ngx_http_apipolicy_sha_t   md;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_apipolicy_crypto_hmac_cleanup;
    cln->data = hmac;

    block = (sha == NGX_HTTP_APIPOLICY_SHA256) ? SHA256_CBLOCK
                                                : SHA512_CBLOCK;

    /* a key longer than a block is hashed first (RFC 2104 section 2) */

    ngx_memzero(k, sizeof(k));

    if (secret->len > block) {
        ngx_http_apipolicy_sha_init(&md, sha);
        ngx_http_apipolicy_sha_update(&md, secret->data, secret->len);
        ngx_http_apipolicy_sha_final(&md, k);
        OPENSSL_cleanse(&md, sizeof(md));

    } else {
        ngx_memcpy(k, secret->data, secret->len);
    }

    for (n = 0; n < 2; n++) {

        for (i = 0; i < block; i++) {
            pad[i] = k[i] ^ (n == 0 ? 0x36 : 0x5c);
        }

        ngx_http_apipolicy_sha_init(&hmac->pad[n], sha);
        ngx_http_apipolicy_sha_update(&hmac->pad[n], pad, block);
    }

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));

    return NGX_OK;
}


/* ---- comparison ------------------------------------------------------ */

/*
 * Two MACs compared in constant time, sixteen bytes a step (a MAC is
 * 32, 48 or 64 bytes), then eight: the time depends on the length only,
 * which is public.
 */

ngx_uint_t
ngx_http_apipolicy_crypto_equal(u_char *a, u_char *b, size_t len)
{
    size_t    i;
    uint64_t  x, y, v, w, diff;

    diff = 0;

    for (i = 0; i + 16 <= len; i += 16) {
        ngx_memcpy(&x, a + i, 8);
        ngx_memcpy(&y, b + i, 8);
        ngx_memcpy(&v, a + i + 8, 8);
        ngx_memcpy(&w, b + i + 8, 8);
        diff |= (x ^ y) | (v ^ w);
    }

    for ( /* void */ ; i + 8 <= len; i += 8) {
        ngx_memcpy(&x, a + i, 8);
        ngx_memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }

    for ( /* void */ ; i < len; i++) {
        diff |= a[i] ^ b[i];
    }

    return diff == 0;
}
