
/*
 * Copyright (C) apipolicy authors
 *
 * Unit test of the request-path JSON parser (src/ngx_http_apipolicy_json.c),
 * printed as TAP:
 *
 *   1. fixed cases: what must parse (and to what), what must be refused
 *      (and why);
 *   2. a differential run against jansson: documents are derived from
 *      seeds by random byte edits, and both parsers must agree on
 *      accept/refuse (jansson with JSON_REJECT_DUPLICATES, its NUL
 *      refusal and UTF-8 checks), except where apipolicy is stricter by
 *      design (depth 16, 256 members per object, a NUL byte between
 *      tokens) or more lenient (integers beyond 64 bits, which jansson
 *      refuses and apipolicy keeps as written).
 *
 * Built against the nginx build tree's headers; the pool functions the
 * parser uses are provided here over malloc, so no nginx core object is
 * linked.  "make unit" builds and runs it; "make test" too.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ngx_http_apipolicy_json.h"

#include "tap.h"


/* ---- the few nginx functions the parser calls ----------------------- */

typedef struct chunk_s  chunk_t;
struct chunk_s {
    chunk_t  *next;
};

static chunk_t  *chunks;


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    chunk_t  *c;

    c = malloc(sizeof(chunk_t) + size + 1);
    if (c == NULL) {
        abort();
    }

    c->next = chunks;
    chunks = c;

    return c + 1;
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return ngx_pnalloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_pnalloc(pool, size);
    memset(p, 0, size);

    return p;
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((char *) s1, (char *) s2, n);
}


static void
release(void)
{
    chunk_t  *c;

    while (chunks) {
        c = chunks;
        chunks = c->next;
        free(c);
    }
}


static ngx_http_apipolicy_json_t *
parse(const char *text, size_t len, ngx_uint_t *err)
{
    return ngx_http_apipolicy_json_parse(NULL, (u_char *) text, len, 16, err);
}


static int
str_is(ngx_str_t *s, const char *expect)
{
    return s->len == strlen(expect) && memcmp(s->data, expect, s->len) == 0;
}


/* ---- 1. fixed cases -------------------------------------------------- */

static void
fixed(void)
{
    char                       buf[16384], *p;
    ngx_str_t                  out;
    ngx_uint_t                 err, i;
    ngx_http_apipolicy_json_t *j, *v;

    static const struct {
        const char  *text;
        ngx_uint_t   err;
    } bad[] = {
        { "", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "{", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "{\"a\":1,}", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "{\"a\" 1}", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "{'a':1}", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "[1,]", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "[1 2]", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "01", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "1.", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { ".5", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "1e", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "+1", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "-", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "tru", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "nul", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "True", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "{} {}", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"a", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\\x\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\\u12\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\\u0000\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\\ud800\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\\udc00\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\\ud800\\u0041\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"a\tb\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\xc0\xaf\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\xe0\x80\xaf\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\xed\xa0\x80\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\xf4\x90\x80\x80\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\xff\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "\"\xc3\"", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "{\"a\":1,\"a\":2}", NGX_HTTP_APIPOLICY_JSON_E_DUP },
        { "{\"a\":1,\"\\u0061\":2}", NGX_HTTP_APIPOLICY_JSON_E_DUP },
        { "{\"x\":{\"b\":1,\"b\":1}}", NGX_HTTP_APIPOLICY_JSON_E_DUP },
        { "1e999", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
        { "[-1e400]", NGX_HTTP_APIPOLICY_JSON_E_SYNTAX },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = parse(bad[i].text, strlen(bad[i].text), &err);
        ok(j == NULL && err == bad[i].err, "refused (%lu): fixed case %lu",
           (unsigned long) bad[i].err, (unsigned long) i);
    }

    /* a NUL byte in the text */
    j = parse("\"a\0b\"", 5, &err);
    ok(j == NULL && err == NGX_HTTP_APIPOLICY_JSON_E_SYNTAX,
       "a raw NUL byte is refused");

    /* depth */
    p = buf;
    for (i = 0; i < 16; i++) { *p++ = '['; }
    for (i = 0; i < 16; i++) { *p++ = ']'; }
    ok(parse(buf, p - buf, &err) != NULL, "16 levels parse");

    p = buf;
    for (i = 0; i < 17; i++) { *p++ = '['; }
    for (i = 0; i < 17; i++) { *p++ = ']'; }
    ok(parse(buf, p - buf, &err) == NULL
       && err == NGX_HTTP_APIPOLICY_JSON_E_DEPTH, "17 levels are refused");

    /* members */
    p = buf + sprintf(buf, "{");
    for (i = 0; i < 256; i++) {
        p += sprintf(p, "%s\"k%lu\":%lu", i ? "," : "", (unsigned long) i,
                     (unsigned long) i);
    }
    *p++ = '}';
    ok(parse(buf, p - buf, &err) != NULL, "256 members parse");

    p[-1] = ',';
    p += sprintf(p, "\"k256\":1}");
    ok(parse(buf, p - buf, &err) == NULL
       && err == NGX_HTTP_APIPOLICY_JSON_E_MEMBERS, "257 members are refused");

    /* values */
    p = " { \"s\" : \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/ \\\\ \\b\\f\\n\\r\\t\","
        " \"plain\":\"no escapes\", \"i\": -12, \"r\": 1.50e+2,"
        " \"big\": 123456789012345678901234567890,"
        " \"t\": true, \"f\": false, \"n\": null,"
        " \"a\": [1, \"x\", [ ], {}], \"o\": {\"k\" : [ 1 , 2 ] } } ";

    j = parse(p, strlen(p), &err);
    ok(j != NULL && j->type == NGX_HTTP_APIPOLICY_JSON_OBJECT
       && j->count == 10, "a document with every kind of value parses");

    if (j == NULL) {
        return;
    }

    v = ngx_http_apipolicy_json_get_literal(j, "s");
    ok(v && v->type == NGX_HTTP_APIPOLICY_JSON_STRING
       && str_is(&v->value, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" / \\ \b\f\n\r\t"),
       "escapes and surrogate pairs are decoded");

    v = ngx_http_apipolicy_json_get_literal(j, "plain");
    ok(v && str_is(&v->value, "no escapes")
       && v->value.data > (u_char *) p
       && v->value.data < (u_char *) p + strlen(p),
       "a string without escapes points into the text");

    v = ngx_http_apipolicy_json_get_literal(j, "i");
    ok(v && v->type == NGX_HTTP_APIPOLICY_JSON_NUMBER && v->integer
       && v->number == -12 && str_is(&v->value, "-12"), "an integer");

    v = ngx_http_apipolicy_json_get_literal(j, "r");
    ok(v && !v->integer && v->number == 150 && str_is(&v->value, "1.50e+2"),
       "a real keeps its text and its value");

    v = ngx_http_apipolicy_json_get_literal(j, "big");
    ok(v && v->integer && str_is(&v->value, "123456789012345678901234567890"),
       "an integer beyond 64 bits is kept as written");

    {
        /* integers summed without strtod() up to 15 digits: the same */

        static const char  *ints[] = {
            "0", "-0", "7", "-7", "1700000000", "-1700000000",
            "999999999999999", "-999999999999999", "1000000000000000",
            "9007199254740993", "123456789012345678", "2147483648"
        };

        ngx_uint_t  k, same;

        same = 1;

        for (k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
            v = parse(ints[k], strlen(ints[k]), &err);

            if (v == NULL || v->type != NGX_HTTP_APIPOLICY_JSON_NUMBER
                || !v->integer || v->number != strtod(ints[k], NULL)
                || signbit(v->number) != signbit(strtod(ints[k], NULL)))
            {
                same = 0;
            }
        }

        ok(same, "integers have the value strtod() gives them");
    }

    {
        /*
         * numbers of 1 to 24 digits, whole or with a fraction, an exponent
         * or text after them (eight digits are summed at a time): the
         * value strtod() gives them
         */

        char        text[64];
        ngx_uint_t  k, n, i, same;

        same = 1;

        for (k = 0; k < 20000; k++) {
            n = 1 + k % 24;
            text[0] = '1' + k % 9;

            for (i = 1; i < n; i++) {
                text[i] = '0' + (k * 7 + i * 13 + k / 24) % 10;
            }

            text[n] = '\0';

            switch (k / 24 % 4) {
            case 1: strcat(text, ".5"); break;
            case 2: strcat(text, "e2"); break;
            case 3: strcat(text, "]"); break;
            }

            v = parse(text, strlen(text), &err);

            if (k / 24 % 4 == 3) {
                if (v != NULL) {
                    same = 0;
                }

                continue;
            }

            if (v == NULL || v->type != NGX_HTTP_APIPOLICY_JSON_NUMBER
                || v->integer != (k / 24 % 4 == 0)
                || v->number != strtod(text, NULL))
            {
                same = 0;
            }
        }

        ok(same, "numbers of 1 to 24 digits have the value strtod() gives");
    }

    ok(ngx_http_apipolicy_json_get_literal(j, "t")->type
       == NGX_HTTP_APIPOLICY_JSON_TRUE
       && ngx_http_apipolicy_json_get_literal(j, "f")->type
          == NGX_HTTP_APIPOLICY_JSON_FALSE
       && ngx_http_apipolicy_json_get_literal(j, "n")->type
          == NGX_HTTP_APIPOLICY_JSON_NULL, "literals");

    v = ngx_http_apipolicy_json_get_literal(j, "a");
    ok(v && v->type == NGX_HTTP_APIPOLICY_JSON_ARRAY && v->count == 4
       && ngx_http_apipolicy_json_at(v, 1)->type
          == NGX_HTTP_APIPOLICY_JSON_STRING
       && ngx_http_apipolicy_json_at(v, 2)->count == 0
       && ngx_http_apipolicy_json_at(v, 3)->type
          == NGX_HTTP_APIPOLICY_JSON_OBJECT
       && ngx_http_apipolicy_json_at(v, 4) == NULL, "arrays");

    v = ngx_http_apipolicy_json_get_literal(j, "o");
    ok(v && ngx_http_apipolicy_json_compact(NULL, v, &out) == NGX_OK
       && str_is(&out, "{\"k\":[1,2]}"), "compact form of an object");

    v = ngx_http_apipolicy_json_get_literal(j, "s");
    ok(ngx_http_apipolicy_json_compact(NULL, v, &out) == NGX_OK
       && out.len == v->raw.len && memcmp(out.data, v->raw.data, out.len) == 0,
       "compact form keeps the spaces inside strings");

    ok(ngx_http_apipolicy_json_get_ci(j, (u_char *) "PLAIN", 5) != NULL
       && ngx_http_apipolicy_json_get(j, (u_char *) "PLAIN", 5) == NULL,
       "exact and case-insensitive member lookup");

    ok(ngx_http_apipolicy_json_get_literal(
           ngx_http_apipolicy_json_get_literal(j, "a"), "x") == NULL,
       "member lookup in a non-object");

    release();
}


/* ---- 2. differential run against jansson ----------------------------- */

static const char *seeds[] = {
    "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k-1\"}",
    "{\"sub\":\"alice\",\"exp\":1767225600,\"aud\":[\"a\",\"b\"],"
    "\"scope\":\"orders:read orders:write\",\"n\":-1.5e3}",
    "{\"address\":{\"country\":\"FR\",\"zip\":\"75001\"},\"ok\":true,"
    "\"x\":null,\"u\":\"\\u00e9\\ud83d\\ude00\\\"\"}",
    "[1,2,[3,[4,{\"a\":[]}]],\"s\",false]",
    "{\"k\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
};

static const char  alphabet[] = "{}[]\":,\\ \t\n01-.eE+atrufnlsu\x80\xc3\xa9\xed\xff\x00";


/* jansson counts a document as nested too deep only from 2048 levels */

static int
too_deep_or_wide(const char *text, size_t len)
{
    size_t  i;
    int     depth, max, in_string, members;

    depth = 0;
    max = 0;
    in_string = 0;
    members = 0;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (text[i] == '\\') {
                i++;
            } else if (text[i] == '"') {
                in_string = 0;
            }
            continue;
        }

        switch (text[i]) {
        case '"': in_string = 1; break;
        case '[': case '{': if (++depth > max) { max = depth; } break;
        case ']': case '}': depth--; break;
        case ',': members++; break;
        }
    }

    return max > 16 || members >= 255;
}


static int
big_integer(const char *text, size_t len)
{
    size_t  i, digits;

    digits = 0;

    for (i = 0; i < len; i++) {
        if (text[i] >= '0' && text[i] <= '9') {
            if (++digits >= 19) {
                return 1;
            }

        } else {
            digits = 0;
        }
    }

    return 0;
}


static void
differential(unsigned long rounds)
{
    char                        doc[512];
    size_t                      len, k, edits, pos;
    json_t                     *jj;
    ngx_uint_t                  err;
    json_error_t                jerr;
    unsigned long               n, agree, skipped, accepted;
    ngx_http_apipolicy_json_t  *j;

    agree = 0;
    skipped = 0;
    accepted = 0;
    srandom(20261201);

    for (n = 0; n < rounds; n++) {
        len = strlen(seeds[n % (sizeof(seeds) / sizeof(seeds[0]))]);
        memcpy(doc, seeds[n % (sizeof(seeds) / sizeof(seeds[0]))], len);

        edits = (n % 4 == 0) ? 0 : 1 + random() % 3;

        for (k = 0; k < edits; k++) {
            pos = random() % (len + 1);

            switch (random() % 3) {
            case 0:                                     /* replace */
                if (pos < len) {
                    doc[pos] = alphabet[random() % (sizeof(alphabet) - 1)];
                }
                break;

            case 1:                                     /* insert */
                if (len < sizeof(doc) - 1) {
                    memmove(doc + pos + 1, doc + pos, len - pos);
                    doc[pos] = alphabet[random() % (sizeof(alphabet) - 1)];
                    len++;
                }
                break;

            default:                                    /* delete */
                if (pos < len) {
                    memmove(doc + pos, doc + pos + 1, len - pos - 1);
                    len--;
                }
            }
        }

        if (too_deep_or_wide(doc, len) || big_integer(doc, len)) {
            skipped++;
            continue;
        }

        j = parse(doc, len, &err);
        jj = json_loadb(doc, len, JSON_REJECT_DUPLICATES|JSON_DECODE_ANY,
                        &jerr);

        if (jj && memchr(doc, '\0', len)) {
            /* jansson's json_loadb() lets a NUL byte pass between tokens */
            json_decref(jj);
            jj = NULL;
        }

        if ((j != NULL) == (jj != NULL)) {
            agree++;
            accepted += (j != NULL);

        } else {
            printf("# disagreement (apipolicy %s, jansson %s: %s): ",
                   j ? "accepts" : "refuses", jj ? "accepts" : "refuses",
                   jj ? "" : jerr.text);
            for (k = 0; k < len; k++) {
                printf(((u_char) doc[k] < 0x20 || (u_char) doc[k] >= 0x7f)
                       ? "\\x%02x" : "%c", (u_char) doc[k]);
            }
            printf("\n");
        }

        if (jj) {
            json_decref(jj);
        }

        release();
    }

    ok(agree == rounds - skipped,
       "apipolicy and jansson agree on %lu of %lu edited documents "
       "(%lu accepted by both; %lu skipped: deeper or wider than "
       "apipolicy's bounds, or long integers)",
       agree, rounds - skipped, accepted, skipped);
}


int
main(int argc, char **argv)
{
    fixed();
    differential(argc > 1 ? strtoul(argv[1], NULL, 10) : 200000);

    return done();
}
