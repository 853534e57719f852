
/*
 * Copyright (C) apipolicy authors
 *
 * SHA-2 and HMAC for the request path through OpenSSL's low-level
 * SHA256_* and SHA512_* functions, the state held by value: an HMAC
 * secret is absorbed once into the states after key ^ ipad and
 * key ^ opad (two blocks a verification saved), and a request copies
 * those states with a structure assignment.
 *
 * Why not EVP: OpenSSL 3.0 allocates the algorithm state on every
 * EVP_MD_CTX_copy_ex() and EVP_DigestInit_ex2() (from 3.5 on a copy into
 * a context of the same digest allocates nothing), and frees and clears
 * it again; measured with callgrind on the full-stack bench scenario,
 * one HS256 verification cost about 1,800 instructions more through
 * EVP (malloc and free, the provider's dispatch, OPENSSL_cleanse) than
 * here, on top of the three SHA-256 blocks (about 6,100).  The low-level
 * functions are deprecated in OpenSSL 3.0 but present in every 3.x
 * release (also when built without the legacy provider), use the same
 * block functions (the CPU's SHA extensions included), and cannot fail;
 * the deprecation warnings are silenced for this file only.
 *
 * An HMAC over a whole message (a JWT's signing input) does not go
 * through SHA*_Update and SHA*_Final at all: its whole blocks go to the
 * block function (SHA256_Transform, SHA512_Transform) from a copy of the
 * ipad state's chaining words, the last block or two are padded here
 * (the length is known), and the outer hash is the opad state and one
 * block (for begin/update/end as well): about 390 instructions less a
 * HS256 verification, the block count unchanged.  t/unit/digest-test.c
 * checks both ways against RFC 4231 and OpenSSL's HMAC().
 *
 * Nothing a request leaves on its stack is worth the secret: after
 * ngx_http_apipolicy_hmac_end() or ngx_http_apipolicy_hmac() the scratch
 * states and blocks hold the MAC, the inner hash and the message's last
 * bytes, never a state after the key alone; a state left between begin
 * and end on an error is cleared by the caller
 * (ngx_http_apipolicy_sha_clear).
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_digest.h"

#include <openssl/crypto.h>


#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif


static size_t ngx_http_apipolicy_hmac256(ngx_http_apipolicy_hmac_t *hmac,
    u_char *data, size_t len, u_char *mac);
static void ngx_http_apipolicy_hmac_outer256(ngx_http_apipolicy_hmac_t *hmac,
    u_char *inner, u_char *mac);
static size_t ngx_http_apipolicy_hmac512(ngx_http_apipolicy_hmac_t *hmac,
    u_char *data, size_t len, u_char *mac);
static void ngx_http_apipolicy_hmac_outer512(ngx_http_apipolicy_hmac_t *hmac,
    u_char *inner, size_t n, u_char *mac);
static ngx_inline size_t ngx_http_apipolicy_hmac_tail(u_char *data,
    size_t len, size_t bsize, size_t lenbytes, u_char *block, size_t *whole);
static ngx_inline void ngx_http_apipolicy_digest_put32(u_char *p,
    uint32_t w);
static ngx_inline void ngx_http_apipolicy_digest_put64(u_char *p,
    uint64_t w);
static ngx_inline void ngx_http_apipolicy_digest_put256(u_char *p,
    SHA_LONG *h);


void
ngx_http_apipolicy_sha_init(ngx_http_apipolicy_sha_t *md, ngx_uint_t sha)
{
    md->sha = sha;

    switch (sha) {

    case NGX_HTTP_APIPOLICY_SHA256:
        SHA256_Init(&md->u.sha256);
        break;

    case NGX_HTTP_APIPOLICY_SHA384:
        SHA384_Init(&md->u.sha512);
        break;

    default:
        SHA512_Init(&md->u.sha512);
    }
}


void
ngx_http_apipolicy_sha_update(ngx_http_apipolicy_sha_t *md,
    const void *data, size_t len)
{
    if (md->sha == NGX_HTTP_APIPOLICY_SHA256) {
        SHA256_Update(&md->u.sha256, data, len);

    } else {
        SHA512_Update(&md->u.sha512, data, len);   /* SHA-384 as well */
    }
}


size_t
ngx_http_apipolicy_sha_final(ngx_http_apipolicy_sha_t *md, u_char *out)
{
    switch (md->sha) {

    case NGX_HTTP_APIPOLICY_SHA256:
        SHA256_Final(out, &md->u.sha256);
        return SHA256_DIGEST_LENGTH;

    case NGX_HTTP_APIPOLICY_SHA384:
        SHA384_Final(out, &md->u.sha512);
        return SHA384_DIGEST_LENGTH;

    default:
        SHA512_Final(out, &md->u.sha512);
        return SHA512_DIGEST_LENGTH;
    }
}


ngx_int_t
ngx_http_apipolicy_sha256(u_char *data, size_t len, u_char *out)
{
    SHA256_CTX  c;

    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);

    return NGX_OK;
}


void
ngx_http_apipolicy_sha256_short(u_char *block, size_t len, u_char *out)
{
    size_t             last;
    SHA256_CTX         c;
    static const SHA_LONG  h0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    };

    /* 0x80, zeros, the length in bits: one block, or two past 55 bytes */

    last = (len < SHA256_CBLOCK - 8) ? SHA256_CBLOCK : 2 * SHA256_CBLOCK;

    ngx_memzero(block + len, last - len);
    block[len] = 0x80;
    ngx_http_apipolicy_digest_put64(&block[last - 8], (uint64_t) len * 8);

    ngx_memcpy(c.h, h0, sizeof(c.h));

    SHA256_Transform(&c, block);

    if (last > SHA256_CBLOCK) {
        SHA256_Transform(&c, block + SHA256_CBLOCK);
    }

    ngx_http_apipolicy_digest_put256(out, c.h);
}


void
ngx_http_apipolicy_hmac_begin(ngx_http_apipolicy_hmac_t *hmac,
    ngx_http_apipolicy_sha_t *md)
{
    *md = hmac->pad[0];
}


size_t
ngx_http_apipolicy_hmac_end(ngx_http_apipolicy_hmac_t *hmac,
    ngx_http_apipolicy_sha_t *md, u_char *mac)
{
    u_char  inner[SHA512_DIGEST_LENGTH];
    size_t  n;

    n = ngx_http_apipolicy_sha_final(md, inner);

    if (md->sha == NGX_HTTP_APIPOLICY_SHA256) {
        ngx_http_apipolicy_hmac_outer256(hmac, inner, mac);

    } else {
        ngx_http_apipolicy_hmac_outer512(hmac, inner, n, mac);
    }

    return n;
}


/*
 * A whole message at once: its whole blocks go to the block function
 * from a copy of the ipad state's chaining words, the last one or two
 * blocks are padded here (the length is known: the ipad block and the
 * message), and the outer hash is the opad state and one block.  Saves
 * SHA*_Final's buffering and clearing, and the outer hash's update; the
 * block count is the same.
 */

size_t
ngx_http_apipolicy_hmac(ngx_http_apipolicy_hmac_t *hmac, u_char *data,
    size_t len, u_char *mac)
{
    if (hmac->pad[0].sha == NGX_HTTP_APIPOLICY_SHA256) {
        return ngx_http_apipolicy_hmac256(hmac, data, len, mac);
    }

    return ngx_http_apipolicy_hmac512(hmac, data, len, mac);
}


static size_t
ngx_http_apipolicy_hmac256(ngx_http_apipolicy_hmac_t *hmac, u_char *data,
    size_t len, u_char *mac)
{
    u_char      block[2 * SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH];
    size_t      whole, last;
    SHA256_CTX  c;

    ngx_memcpy(c.h, hmac->pad[0].u.sha256.h, sizeof(c.h));
    c.Nl = 0;
    c.Nh = 0;
    c.num = 0;

    last = ngx_http_apipolicy_hmac_tail(data, len, SHA256_CBLOCK, 8, block,
                                        &whole);

    if (whole) {
        SHA256_Update(&c, data, whole);     /* whole blocks: no copy */
    }

    SHA256_Update(&c, block, last);

    ngx_http_apipolicy_digest_put256(inner, c.h);

    ngx_http_apipolicy_hmac_outer256(hmac, inner, mac);

    return SHA256_DIGEST_LENGTH;
}


static void
ngx_http_apipolicy_hmac_outer256(ngx_http_apipolicy_hmac_t *hmac,
    u_char *inner, u_char *mac)
{
    u_char      block[SHA256_CBLOCK];
    SHA256_CTX  c;

    /* the inner hash, 0x80, zeros, (64 + 32) * 8 bits */

    ngx_memzero(block, sizeof(block));
    ngx_memcpy(block, inner, SHA256_DIGEST_LENGTH);
    block[SHA256_DIGEST_LENGTH] = 0x80;
    ngx_http_apipolicy_digest_put64(&block[SHA256_CBLOCK - 8],
                             (SHA256_CBLOCK + SHA256_DIGEST_LENGTH) * 8);

    ngx_memcpy(c.h, hmac->pad[1].u.sha256.h, sizeof(c.h));
    SHA256_Transform(&c, block);

    ngx_http_apipolicy_digest_put256(mac, c.h);
}


static size_t
ngx_http_apipolicy_hmac512(ngx_http_apipolicy_hmac_t *hmac, u_char *data,
    size_t len, u_char *mac)
{
    u_char      block[2 * SHA512_CBLOCK], inner[SHA512_DIGEST_LENGTH];
    size_t      whole, last, n;
    ngx_uint_t  i;
    SHA512_CTX  c;

    n = (hmac->pad[0].sha == NGX_HTTP_APIPOLICY_SHA384)
        ? SHA384_DIGEST_LENGTH : SHA512_DIGEST_LENGTH;

    ngx_memcpy(c.h, hmac->pad[0].u.sha512.h, sizeof(c.h));
    c.Nl = 0;
    c.Nh = 0;
    c.num = 0;

    last = ngx_http_apipolicy_hmac_tail(data, len, SHA512_CBLOCK, 16, block,
                                        &whole);

    if (whole) {
        SHA512_Update(&c, data, whole);     /* whole blocks: no copy */
    }

    SHA512_Update(&c, block, last);

    for (i = 0; i < n / 8; i++) {
        ngx_http_apipolicy_digest_put64(&inner[8 * i], c.h[i]);
    }

    ngx_http_apipolicy_hmac_outer512(hmac, inner, n, mac);

    return n;
}


/*
 * A message of "len" bytes: "whole" bytes of whole blocks to hash from
 * the message itself, the rest padded into "block" (two blocks of room:
 * the rest, 0x80, zeros, the bit length of the ipad block and the
 * message in the last "lenbytes" bytes, big-endian); the padded length,
 * one block or two, is returned.  When the padded rest is one block,
 * the last whole block joins it: the block function, given two blocks
 * in one call, hashes them for less than twice one (OpenSSL's AVX2 code,
 * which valgrind runs: 1,814 instructions a SHA-256 block instead of
 * 2,040).  SHA*_Update() with nothing buffered hands whole blocks
 * straight to that function; the state's length counters are set but
 * never read (SHA*_Final() is not called).
 */

static ngx_inline size_t
ngx_http_apipolicy_hmac_tail(u_char *data, size_t len, size_t bsize,
    size_t lenbytes, u_char *block, size_t *whole)
{
    size_t  rest, last;

    *whole = len / bsize * bsize;
    rest = len - *whole;

    if (*whole && rest < bsize - lenbytes) {
        *whole -= bsize;
        rest += bsize;
    }

    last = (rest < bsize - lenbytes) ? bsize : 2 * bsize;

    /* two constant halves: stores, not the rep stos of one 2 * bsize */
    ngx_memzero(block, bsize);
    ngx_memzero(block + bsize, bsize);

    /*
     * the rest: a rest of a block or more (most tokens) as two copies of
     * one block, the second ending where the rest ends (they overlap);
     * constant sizes, moved by vector stores, not rep movs
     */

    data += *whole;

    if (rest >= bsize) {
        ngx_memcpy(block, data, bsize);
        ngx_memcpy(block + rest - bsize, data + rest - bsize, bsize);

    } else {
        ngx_memcpy(block, data, rest);
    }

    block[rest] = 0x80;

    ngx_http_apipolicy_digest_put64(&block[last - 8],
                                    ((uint64_t) len + bsize) * 8);

    return last;
}


static void
ngx_http_apipolicy_hmac_outer512(ngx_http_apipolicy_hmac_t *hmac,
    u_char *inner, size_t n, u_char *mac)
{
    u_char      block[SHA512_CBLOCK];
    ngx_uint_t  i;
    SHA512_CTX  c;

    /* the inner hash, 0x80, zeros, (128 + n) * 8 bits */

    ngx_memzero(block, sizeof(block));
    ngx_memcpy(block, inner, n);
    block[n] = 0x80;
    ngx_http_apipolicy_digest_put64(&block[SHA512_CBLOCK - 8],
                                    (SHA512_CBLOCK + n) * 8);

    ngx_memcpy(c.h, hmac->pad[1].u.sha512.h, sizeof(c.h));
    SHA512_Transform(&c, block);

    for (i = 0; i < n / 8; i++) {
        ngx_http_apipolicy_digest_put64(&mac[8 * i], c.h[i]);
    }
}


/* big-endian: a 32-bit word, a 64-bit one (htonl: a byte swap or nothing) */

static ngx_inline void
ngx_http_apipolicy_digest_put32(u_char *p, uint32_t w)
{
    w = htonl(w);
    ngx_memcpy(p, &w, 4);
}


static ngx_inline void
ngx_http_apipolicy_digest_put64(u_char *p, uint64_t w)
{
    ngx_http_apipolicy_digest_put32(p, (uint32_t) (w >> 32));
    ngx_http_apipolicy_digest_put32(p + 4, (uint32_t) w);
}


/* a SHA-256 state's eight words, written out (no loop to count) */

static ngx_inline void
ngx_http_apipolicy_digest_put256(u_char *p, SHA_LONG *h)
{
    ngx_http_apipolicy_digest_put32(p, h[0]);
    ngx_http_apipolicy_digest_put32(p + 4, h[1]);
    ngx_http_apipolicy_digest_put32(p + 8, h[2]);
    ngx_http_apipolicy_digest_put32(p + 12, h[3]);
    ngx_http_apipolicy_digest_put32(p + 16, h[4]);
    ngx_http_apipolicy_digest_put32(p + 20, h[5]);
    ngx_http_apipolicy_digest_put32(p + 24, h[6]);
    ngx_http_apipolicy_digest_put32(p + 28, h[7]);
}


ngx_int_t
ngx_http_apipolicy_digest_feed(void *data, u_char *p, size_t len)
{
    ngx_http_apipolicy_sha_update(data, p, len);

    return NGX_OK;
}
