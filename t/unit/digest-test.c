
/*
 * Copyright (C) apipolicy authors
 *
 * Unit test of the request path's HMAC (src/ngx_http_apipolicy_digest.c),
 * printed as TAP:
 *
 *   1. the test cases of RFC 4231 (HMAC-SHA-256, -384, -512), whole
 *      message at once and through begin/update/end;
 *   2. against OpenSSL's HMAC() for every message length from 0 to 600
 *      bytes (each padding case: the rest of a block below and above the
 *      length field, whole blocks) and keys of 0 to 200 bytes;
 *   3. the short SHA-256 (one or two blocks padded in place) against
 *      OpenSSL's SHA256() for every length it takes.
 *
 * The ipad and opad states are prepared here as
 * ngx_http_apipolicy_crypto_hmac_key() prepares them (RFC 2104: a key
 * longer than a block hashed first); digest.c is included, so no nginx
 * object is linked.  "make unit" builds it; "make test" runs it.
 */


#include "../../src/ngx_http_apipolicy_digest.c"

#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>

#include "tap.h"


static void
key(ngx_http_apipolicy_hmac_t *hmac, ngx_uint_t sha, u_char *secret,
    size_t len)
{
    u_char                    k[SHA512_CBLOCK], pad[SHA512_CBLOCK];
    size_t                    block, i, n;
    ngx_http_apipolicy_sha_t  md;

    block = (sha == NGX_HTTP_APIPOLICY_SHA256) ? SHA256_CBLOCK
                                                : SHA512_CBLOCK;

    memset(k, 0, sizeof(k));

    if (len > block) {
        ngx_http_apipolicy_sha_init(&md, sha);
        ngx_http_apipolicy_sha_update(&md, secret, len);
        ngx_http_apipolicy_sha_final(&md, k);

    } else {
        memcpy(k, secret, len);
    }

    for (n = 0; n < 2; n++) {
        for (i = 0; i < block; i++) {
            pad[i] = k[i] ^ (n == 0 ? 0x36 : 0x5c);
        }

        ngx_http_apipolicy_sha_init(&hmac->pad[n], sha);
        ngx_http_apipolicy_sha_update(&hmac->pad[n], pad, block);
    }
}


static size_t
unhex(const char *hex, u_char *out)
{
    size_t        n;
    unsigned int  b;

    for (n = 0; hex[2 * n]; n++) {
        if (sscanf(hex + 2 * n, "%2x", &b) != 1) {
            abort();
        }

        out[n] = (u_char) b;
    }

    return n;
}


/* ---- RFC 4231 section 4 ----------------------------------------------- */

typedef struct {
    const char  *key;
    const char  *data;
    const char  *mac[3];    /* SHA-256, SHA-384, SHA-512; truncated in 4.6 */
} rfc4231_t;

static rfc4231_t  rfc4231[] = {

    /* 4.2 */
    { "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
      "4869205468657265",
      { "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        "faea9ea9076ede7f4af152e8b2fa9cb6",
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854" }
    },

    /* 4.3 */
    { "4a656665",
      "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
      { "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        "8e2240ca5e69e2c78b3239ecfab21649",
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737" }
    },

    /* 4.4 */
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
      "dddddddddddddddddddddddddddddddddddd",
      { "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
        "2a5ab39dc13814b94e3ab6e101a34f27",
        "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
        "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb" }
    },

    /* 4.5 */
    { "0102030405060708090a0b0c0d0e0f10111213141516171819",
      "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
      "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
      { "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
        "6801dd23c4a7d679ccf8a386c674cffb",
        "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
        "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd" }
    },

    /* 4.6: the MACs truncated to 128 bits */
    { "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
      "546573742057697468205472756e636174696f6e",
      { "a3b6167473100ee06e0c796c2955552b",
        "3abf34c3503b2a23a46efc619baef897",
        "415fad6271580a531d4179bc891d87a6" }
    },

    /* 4.7 */
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaa",
      "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a"
      "65204b6579202d2048617368204b6579204669727374",
      { "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
        "0c2ef6ab4030fe8296248df163f44952",
        "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
        "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598" }
    },

    /* 4.8 */
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaa",
      "5468697320697320612074657374207573696e672061206c6172676572207468"
      "616e20626c6f636b2d73697a65206b657920616e642061206c61726765722074"
      "68616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565"
      "647320746f20626520686173686564206265666f7265206265696e6720757365"
      "642062792074686520484d414320616c676f726974686d2e",
      { "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
        "a678cc31e799176d3860e6110c46523e",
        "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
        "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58" }
    }
};


static void
fixed(void)
{
    u_char                     k[256], data[256], want[64], mac[64];
    size_t                     klen, dlen, wlen, n;
    ngx_uint_t                 i, sha;
    ngx_http_apipolicy_sha_t   md;
    ngx_http_apipolicy_hmac_t  hmac;
    static const char         *names[3] = { "SHA-256", "SHA-384", "SHA-512" };

    for (i = 0; i < sizeof(rfc4231) / sizeof(rfc4231[0]); i++) {
        klen = unhex(rfc4231[i].key, k);
        dlen = unhex(rfc4231[i].data, data);

        for (sha = 0; sha < 3; sha++) {
            wlen = unhex(rfc4231[i].mac[sha], want);

            key(&hmac, sha, k, klen);

            memset(mac, 0, sizeof(mac));
            n = ngx_http_apipolicy_hmac(&hmac, data, dlen, mac);

            ok(n == 32 + 16 * sha && memcmp(mac, want, wlen) == 0,
               "RFC 4231 4.%d HMAC-%s at once", (int) i + 2, names[sha]);

            memset(mac, 0, sizeof(mac));
            ngx_http_apipolicy_hmac_begin(&hmac, &md);
            ngx_http_apipolicy_sha_update(&md, data, dlen / 2);
            ngx_http_apipolicy_sha_update(&md, data + dlen / 2,
                                          dlen - dlen / 2);
            n = ngx_http_apipolicy_hmac_end(&hmac, &md, mac);

            ok(n == 32 + 16 * sha && memcmp(mac, want, wlen) == 0,
               "RFC 4231 4.%d HMAC-%s in two updates", (int) i + 2,
               names[sha]);
        }
    }
}


/* ---- against OpenSSL's HMAC() ------------------------------------------ */

static void
differential(void)
{
    u_char                     k[200], data[600], want[64], mac[64], mac2[64];
    size_t                     klen, dlen, n;
    ngx_uint_t                 sha, bad, bad2, runs;
    unsigned int               wlen;
    const EVP_MD              *md[3];
    ngx_http_apipolicy_sha_t   st;
    ngx_http_apipolicy_hmac_t  hmac;

    md[0] = EVP_sha256();
    md[1] = EVP_sha384();
    md[2] = EVP_sha512();

    for (n = 0; n < sizeof(data); n++) {
        data[n] = (u_char) (n * 131 + 7);
    }

    for (n = 0; n < sizeof(k); n++) {
        k[n] = (u_char) (n * 29 + 3);
    }

    for (sha = 0; sha < 3; sha++) {
        bad = 0;
        bad2 = 0;
        runs = 0;

        for (klen = 0; klen <= sizeof(k); klen += 7) {
            key(&hmac, sha, k, klen);

            for (dlen = 0; dlen <= sizeof(data); dlen++) {
                HMAC(md[sha], k, (int) klen, data, dlen, want, &wlen);

                n = ngx_http_apipolicy_hmac(&hmac, data, dlen, mac);

                bad += (n != wlen || memcmp(mac, want, wlen) != 0);

                ngx_http_apipolicy_hmac_begin(&hmac, &st);
                ngx_http_apipolicy_sha_update(&st, data, dlen / 3);
                ngx_http_apipolicy_sha_update(&st, data + dlen / 3,
                                              dlen - dlen / 3);
                n = ngx_http_apipolicy_hmac_end(&hmac, &st, mac2);

                bad2 += (n != wlen || memcmp(mac2, want, wlen) != 0);
                runs++;
            }
        }

        ok(bad == 0, "HMAC-%d at once equals OpenSSL's HMAC() "
           "(%lu keys and lengths, %lu differ)",
           sha == 0 ? 256 : sha == 1 ? 384 : 512, (unsigned long) runs,
           (unsigned long) bad);

        ok(bad2 == 0, "HMAC-%d through begin/update/end equals OpenSSL's "
           "HMAC() (%lu keys and lengths, %lu differ)",
           sha == 0 ? 256 : sha == 1 ? 384 : 512, (unsigned long) runs,
           (unsigned long) bad2);
    }
}


/* ---- the short SHA-256 against OpenSSL's SHA256() ---------------------- */

static void
short_sha256(void)
{
    u_char      data[NGX_HTTP_APIPOLICY_SHA256_SHORT], block[128];
    u_char      want[32], got[32];
    size_t      len, n;
    ngx_uint_t  bad;

    for (n = 0; n < sizeof(data); n++) {
        data[n] = (u_char) (n * 37 + 11);
    }

    bad = 0;

    for (len = 0; len <= sizeof(data); len++) {
        memset(block, 0xa5, sizeof(block));     /* padding is written */
        memcpy(block, data, len);

        SHA256(data, len, want);
        ngx_http_apipolicy_sha256_short(block, len, got);

        bad += (memcmp(got, want, 32) != 0);
    }

    ok(bad == 0, "the short SHA-256 equals OpenSSL's SHA256() for every "
       "length from 0 to %d (%lu differ)", NGX_HTTP_APIPOLICY_SHA256_SHORT,
       (unsigned long) bad);

    memcpy(block, "abc", 3);
    ngx_http_apipolicy_sha256_short(block, 3, got);
    SHA256((u_char *) "abc", 3, want);

    ok(memcmp(got, want, 32) == 0
       && got[0] == 0xba && got[1] == 0x78 && got[31] == 0xad,
       "the short SHA-256 of \"abc\" is FIPS 180-2's ba7816bf...f20015ad");
}


int
main(int argc, char **argv)
{
    fixed();
    differential();
    short_sha256();

    return done();
}
