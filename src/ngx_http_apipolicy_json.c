
/*
 * Copyright (C) apipolicy authors
 *
 * A strict, allocation-light JSON parser for the request path (JWT
 * headers and claims).  Values are allocated from a pool, strings
 * without escapes point into the source text, nothing is freed one by
 * one.  It parses a typical token's header and claims in a few hundred
 * nanoseconds, about ten times faster than a general-purpose library
 * that mallocs every value (jansson stays for JWK Sets, which are parsed
 * once).
 */


#include "ngx_http_apipolicy_json.h"

#include <math.h>
#include <stdlib.h>


typedef struct {
    u_char                            *p;
    u_char                            *last;
    ngx_pool_t                        *pool;
    ngx_http_apipolicy_json_t         *free;     /* the block's next node */
    ngx_http_apipolicy_json_t         *end;
    ngx_uint_t                         block;    /* nodes in the next one */
    ngx_uint_t                         printable; /* the last string's */
    ngx_uint_t                         depth;
    ngx_uint_t                         max_depth;
    ngx_uint_t                         error;
} ngx_http_apipolicy_json_parser_t;


static ngx_http_apipolicy_json_t *ngx_http_apipolicy_json_block(
    ngx_http_apipolicy_json_parser_t *ps);
static ngx_int_t ngx_http_apipolicy_json_value(
    ngx_http_apipolicy_json_parser_t *ps, ngx_http_apipolicy_json_t *j);
static ngx_int_t ngx_http_apipolicy_json_container(
    ngx_http_apipolicy_json_parser_t *ps, ngx_http_apipolicy_json_t *j);
static ngx_int_t ngx_http_apipolicy_json_member(
    ngx_http_apipolicy_json_parser_t *ps, ngx_http_apipolicy_json_t *j,
    ngx_str_t *key);
static ngx_int_t ngx_http_apipolicy_json_string(
    ngx_http_apipolicy_json_parser_t *ps, ngx_str_t *s);
static ngx_int_t ngx_http_apipolicy_json_string_rest(
    ngx_http_apipolicy_json_parser_t *ps, u_char *p, ngx_str_t *s);
static ngx_int_t ngx_http_apipolicy_json_unescape(
    ngx_http_apipolicy_json_parser_t *ps, u_char *start, u_char *end,
    ngx_str_t *s);
static ngx_int_t ngx_http_apipolicy_json_number(
    ngx_http_apipolicy_json_parser_t *ps, ngx_http_apipolicy_json_t *j);
static ngx_int_t ngx_http_apipolicy_json_number_value(
    ngx_http_apipolicy_json_parser_t *ps, ngx_http_apipolicy_json_t *j);
static ngx_int_t ngx_http_apipolicy_json_hex4(u_char *p, uint32_t *cp);
static size_t ngx_http_apipolicy_json_utf8(u_char *p, u_char *last);


/*
 * 1: a byte a string holds as it is (printable ASCII but '"' and '\\';
 * DEL is left to the slower path, so that the plain run is printable)
 */

static const u_char  ngx_http_apipolicy_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    /* 0x10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x20 '"' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,    /* 0x50 '\\' */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,    /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,    /* 0x70 DEL */
    /* 0x80 - 0xff: UTF-8, checked sequence by sequence */
};


/* white space: most tokens have none before them, one test says so */

#define ngx_http_apipolicy_json_ws(ps)                                       \
    while (ps->p < ps->last && *ps->p <= ' '                                 \
           && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n'             \
               || *ps->p == '\r'))                                           \
    {                                                                        \
        ps->p++;                                                             \
    }

/*
 * a member's name: the length, then a short name (most claims) byte by
 * byte, a long one by its first byte and ngx_memcmp()
 */

#define ngx_http_apipolicy_json_key_eq(e, nm, n)                             \
    ((e)->key.len == (n)                                                     \
     && ((n) <= 8 ? ngx_http_apipolicy_json_short_eq((e)->key.data, nm, n)   \
         : ((e)->key.data[0] == (nm)[0]                                      \
            && ngx_memcmp((e)->key.data + 1, (nm) + 1, (n) - 1) == 0)))


static ngx_inline ngx_uint_t
ngx_http_apipolicy_json_short_eq(u_char *a, u_char *b, size_t n)
{
    while (n) {
        n--;

        if (a[n] != b[n]) {
            return 0;
        }
    }

    return 1;
}

#define ngx_http_apipolicy_json_fail(ps, e)                                  \
    ((ps)->error = (e), NGX_ERROR)


/*
 * Nodes are taken from blocks of the pool, 4 nodes the first (a JWT
 * header or short claims), twice as many each next one up to 32: one
 * allocation for a short document instead of one a value.
 */

#define NGX_HTTP_APIPOLICY_JSON_BLOCK_FIRST  4
#define NGX_HTTP_APIPOLICY_JSON_BLOCK_MAX    32

static const ngx_http_apipolicy_json_t  ngx_http_apipolicy_json_empty;


/* a value with every field empty */

#define ngx_http_apipolicy_json_node(ps)                                     \
    (((ps)->free == (ps)->end && ngx_http_apipolicy_json_block(ps) == NULL)  \
     ? NULL                                                                  \
     : (*(ps)->free = ngx_http_apipolicy_json_empty, (ps)->free++))


static ngx_http_apipolicy_json_t *
ngx_http_apipolicy_json_block(ngx_http_apipolicy_json_parser_t *ps)
{
    ngx_http_apipolicy_json_t  *b;

    b = ngx_palloc(ps->pool, ps->block * sizeof(ngx_http_apipolicy_json_t));
    if (b == NULL) {
        return NULL;
    }

    ps->free = b;
    ps->end = b + ps->block;

    if (ps->block < NGX_HTTP_APIPOLICY_JSON_BLOCK_MAX) {
        ps->block *= 2;
    }

    return b;
}


ngx_http_apipolicy_json_t *
ngx_http_apipolicy_json_parse(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_uint_t max_depth, ngx_uint_t *error)
{
    u_char                            *start;
    ngx_http_apipolicy_json_t         *j;
    ngx_http_apipolicy_json_parser_t   ps;

    ps.p = text;
    ps.last = text + len;
    ps.pool = pool;
    ps.free = NULL;
    ps.end = NULL;
    ps.block = NGX_HTTP_APIPOLICY_JSON_BLOCK_FIRST;
    ps.depth = 0;
    ps.max_depth = max_depth;
    ps.error = NGX_HTTP_APIPOLICY_JSON_OK;

    j = ngx_http_apipolicy_json_node(&ps);
    if (j == NULL) {
        *error = NGX_HTTP_APIPOLICY_JSON_E_NOMEM;
        return NULL;
    }

    if (ps.p < ps.last && *ps.p != '{') {
        ngx_http_apipolicy_json_ws((&ps));
    }

    /* an object (claims, headers, keys) without the dispatch of a value */

    if (ps.p < ps.last && *ps.p == '{') {
        start = ps.p;

        if (ngx_http_apipolicy_json_container(&ps, j) != NGX_OK) {
            *error = ps.error;
            return NULL;
        }

        j->raw.data = start;
        j->raw.len = ps.p - start;

    } else if (ngx_http_apipolicy_json_value(&ps, j) != NGX_OK) {
        *error = ps.error;
        return NULL;
    }

    if (ps.p != ps.last) {
        ngx_http_apipolicy_json_ws((&ps));

        if (ps.p != ps.last) {
            *error = NGX_HTTP_APIPOLICY_JSON_E_SYNTAX;
            return NULL;
        }
    }

    *error = NGX_HTTP_APIPOLICY_JSON_OK;

    return j;
}


static ngx_int_t
ngx_http_apipolicy_json_value(ngx_http_apipolicy_json_parser_t *ps,
    ngx_http_apipolicy_json_t *j)
{
    size_t       n;
    u_char      *start;
    ngx_int_t    rc;
    const char  *lit;

    if (ps->p == ps->last) {
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
    }

    start = ps->p;

    switch (*ps->p) {

    case '{':
    case '[':
        rc = ngx_http_apipolicy_json_container(ps, j);
        break;

    case '"':
        j->type = NGX_HTTP_APIPOLICY_JSON_STRING;
        rc = ngx_http_apipolicy_json_string(ps, &j->value);
        j->printable = ps->printable;
        break;

    case 't':
    case 'f':
    case 'n':
        if (*ps->p == 't') {
            j->type = NGX_HTTP_APIPOLICY_JSON_TRUE;
            lit = "true";

        } else if (*ps->p == 'f') {
            j->type = NGX_HTTP_APIPOLICY_JSON_FALSE;
            lit = "false";

        } else {
            j->type = NGX_HTTP_APIPOLICY_JSON_NULL;
            lit = "null";
        }

        n = ngx_strlen(lit);

        if ((size_t) (ps->last - ps->p) < n || ngx_strncmp(ps->p, lit, n) != 0)
        {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }

        ps->p += n;
        rc = NGX_OK;
        break;

    default:
        rc = ngx_http_apipolicy_json_number(ps, j);
        break;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    j->raw.data = start;
    j->raw.len = ps->p - start;

    return NGX_OK;
}


/* an object or an array at ps->p ("{" or "[") */

static ngx_int_t
ngx_http_apipolicy_json_container(ngx_http_apipolicy_json_parser_t *ps,
    ngx_http_apipolicy_json_t *j)
{
    u_char                      close;
    ngx_str_t                   key;
    ngx_flag_t                  object;
    ngx_http_apipolicy_json_t  *m, **tail;

    if (++ps->depth > ps->max_depth) {
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_DEPTH);
    }

    object = (*ps->p == '{');
    close = object ? '}' : ']';

    j->type = object ? NGX_HTTP_APIPOLICY_JSON_OBJECT
                     : NGX_HTTP_APIPOLICY_JSON_ARRAY;
    tail = &j->child;

    ps->p++;
    ngx_http_apipolicy_json_ws(ps);

    if (ps->p < ps->last && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return NGX_OK;
    }

    for ( ;; ) {

        ngx_str_null(&key);

        if (object && ngx_http_apipolicy_json_member(ps, j, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        m = ngx_http_apipolicy_json_node(ps);
        if (m == NULL) {
            return ngx_http_apipolicy_json_fail(ps,
                                              NGX_HTTP_APIPOLICY_JSON_E_NOMEM);
        }

        m->key = key;

        /* a string (most members) without the dispatch of a value */

        if (ps->p < ps->last && *ps->p == '"') {
            m->type = NGX_HTTP_APIPOLICY_JSON_STRING;
            m->raw.data = ps->p;

            if (ngx_http_apipolicy_json_string(ps, &m->value) != NGX_OK) {
                return NGX_ERROR;
            }

            m->printable = ps->printable;
            m->raw.len = ps->p - m->raw.data;

        /* and a number (times, counts) */

        } else if (ps->p < ps->last
                   && (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')))
        {
            m->raw.data = ps->p;

            if (ngx_http_apipolicy_json_number(ps, m) != NGX_OK) {
                return NGX_ERROR;
            }

            m->raw.len = ps->p - m->raw.data;

        } else if (ngx_http_apipolicy_json_value(ps, m) != NGX_OK) {
            return NGX_ERROR;
        }

        *tail = m;
        tail = &m->next;
        j->count++;

        /* compact JSON (most tokens): the comma or the end right here */

        if (ps->p < ps->last && *ps->p == ',') {
            ps->p++;
            ngx_http_apipolicy_json_ws(ps);
            continue;
        }

        ngx_http_apipolicy_json_ws(ps);

        if (ps->p == ps->last) {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }

        if (*ps->p == ',') {
            ps->p++;
            ngx_http_apipolicy_json_ws(ps);
            continue;
        }

        if (*ps->p == close) {
            ps->p++;
            ps->depth--;
            return NGX_OK;
        }

        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
    }
}


/* an object member's name, new in the object, and the colon after it */

static ngx_int_t
ngx_http_apipolicy_json_member(ngx_http_apipolicy_json_parser_t *ps,
    ngx_http_apipolicy_json_t *j, ngx_str_t *key)
{
    ngx_http_apipolicy_json_t  *e;

    if (ps->p == ps->last || *ps->p != '"') {
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
    }

    if (ngx_http_apipolicy_json_string(ps, key) != NGX_OK) {
        return NGX_ERROR;
    }

    for (e = j->child; e; e = e->next) {
        if (ngx_http_apipolicy_json_key_eq(e, key->data, key->len)) {
            return ngx_http_apipolicy_json_fail(ps,
                                                NGX_HTTP_APIPOLICY_JSON_E_DUP);
        }
    }

    if (j->count == NGX_HTTP_APIPOLICY_JSON_MAX_MEMBERS) {
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_MEMBERS);
    }

    if (ps->p == ps->last || *ps->p != ':') {
        ngx_http_apipolicy_json_ws(ps);

        if (ps->p == ps->last || *ps->p != ':') {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }
    }

    ps->p++;
    ngx_http_apipolicy_json_ws(ps);

    return NGX_OK;
}


/*
 * A string at ps->p (the opening quote): a slice of the source when it
 * has no escapes, else decoded into the pool.  Most strings are plain
 * printable ASCII up to the closing quote: that run is scanned here,
 * four bytes a step while four remain; anything else goes on in
 * ngx_http_apipolicy_json_string_rest().
 */

static ngx_inline ngx_int_t
ngx_http_apipolicy_json_string(ngx_http_apipolicy_json_parser_t *ps,
    ngx_str_t *s)
{
    u_char  *p, *last;

    p = ps->p + 1;
    last = ps->last;

    /* four bytes a step; the first one not plain ends the run in place */

    while (last - p >= 4) {
        if (!ngx_http_apipolicy_json_plain[p[0]]) {
            goto run;
        }

        if (!ngx_http_apipolicy_json_plain[p[1]]) {
            p += 1;
            goto run;
        }

        if (!ngx_http_apipolicy_json_plain[p[2]]) {
            p += 2;
            goto run;
        }

        if (!ngx_http_apipolicy_json_plain[p[3]]) {
            p += 3;
            goto run;
        }

        p += 4;
    }

    while (p < last && ngx_http_apipolicy_json_plain[*p]) {
        p++;
    }

run:

    if (p < last && *p == '"') {
        s->data = ps->p + 1;
        s->len = p - s->data;
        ps->p = p + 1;
        ps->printable = 1;
        return NGX_OK;
    }

    ps->printable = 0;

    return ngx_http_apipolicy_json_string_rest(ps, p, s);
}


/* the rest of a string from p, the first byte that is not plain ASCII */

static ngx_int_t
ngx_http_apipolicy_json_string_rest(ngx_http_apipolicy_json_parser_t *ps,
    u_char *p, ngx_str_t *s)
{
    u_char      *start;
    size_t       n;
    ngx_uint_t   escapes;

    start = ++ps->p;
    escapes = 0;

    /* pass 1: find the end, check the bytes */

    for ( ;; ) {

        /* the run of plain printable ASCII, one table look-up a byte */

        while (p < ps->last && ngx_http_apipolicy_json_plain[*p]) {
            p++;
        }

        if (p == ps->last) {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }

        if (*p == '"') {
            break;
        }

        if (*p == '\\') {
            escapes = 1;

            if (ps->last - p < 2) {
                return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
            }

            p += 2;
            continue;
        }

        if (*p < 0x20) {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }

        if (*p < 0x80) {
            p++;
            continue;
        }

        n = ngx_http_apipolicy_json_utf8(p, ps->last);

        if (n == 0) {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }

        p += n;
    }

    ps->p = p + 1;

    if (!escapes) {
        s->data = start;
        s->len = p - start;
        return NGX_OK;
    }

    /* pass 2: decode; the result is never longer than the source */

    return ngx_http_apipolicy_json_unescape(ps, start, p, s);
}


/* a string's text from start to end (the closing quote) with escapes */

static ngx_int_t
ngx_http_apipolicy_json_unescape(ngx_http_apipolicy_json_parser_t *ps,
    u_char *start, u_char *end, ngx_str_t *s)
{
    u_char    *p, *d;
    uint32_t   cp, lo;

    d = ngx_pnalloc(ps->pool, end - start);
    if (d == NULL) {
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_NOMEM);
    }

    s->data = d;

    for (p = start; p < end; /* void */) {
        if (*p != '\\') {
            *d++ = *p++;
            continue;
        }

        p++;

        switch (*p++) {
        case '"':  *d++ = '"';  break;
        case '\\': *d++ = '\\'; break;
        case '/':  *d++ = '/';  break;
        case 'b':  *d++ = '\b'; break;
        case 'f':  *d++ = '\f'; break;
        case 'n':  *d++ = '\n'; break;
        case 'r':  *d++ = '\r'; break;
        case 't':  *d++ = '\t'; break;

        case 'u':
            if (end - p < 4
                || ngx_http_apipolicy_json_hex4(p, &cp) != NGX_OK)
            {
                return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
            }

            p += 4;

            if (cp >= 0xd800 && cp <= 0xdbff) {

                /* a high surrogate: a low one must follow */

                if (end - p < 6 || p[0] != '\\' || p[1] != 'u'
                    || ngx_http_apipolicy_json_hex4(p + 2, &lo) != NGX_OK
                    || lo < 0xdc00 || lo > 0xdfff)
                {
                    return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
                }

                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);

            } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
                /* a lone low surrogate; NUL is refused in names and text */
                return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
            }

            if (cp < 0x80) {
                *d++ = (u_char) cp;

            } else if (cp < 0x800) {
                *d++ = (u_char) (0xc0 | (cp >> 6));
                *d++ = (u_char) (0x80 | (cp & 0x3f));

            } else if (cp < 0x10000) {
                *d++ = (u_char) (0xe0 | (cp >> 12));
                *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
                *d++ = (u_char) (0x80 | (cp & 0x3f));

            } else {
                *d++ = (u_char) (0xf0 | (cp >> 18));
                *d++ = (u_char) (0x80 | ((cp >> 12) & 0x3f));
                *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
                *d++ = (u_char) (0x80 | (cp & 0x3f));
            }

            break;

        default:
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }
    }

    s->len = d - s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_json_hex4(u_char *p, uint32_t *cp)
{
    u_char      c;
    uint32_t    v;
    ngx_uint_t  i;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            v = (v << 4) | (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            v = (v << 4) | ((c | 0x20) - 'a' + 10);

        } else {
            return NGX_ERROR;
        }
    }

    *cp = v;

    return NGX_OK;
}


/* the length of the UTF-8 sequence at p (RFC 3629), 0 when invalid */

static size_t
ngx_http_apipolicy_json_utf8(u_char *p, u_char *last)
{
    u_char  c;

    c = p[0];

    if (c >= 0xc2 && c <= 0xdf) {
        return (last - p >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (last - p < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) {
            return 0;
        }

        if ((c == 0xe0 && p[1] < 0xa0)            /* overlong */
            || (c == 0xed && p[1] >= 0xa0))       /* surrogates */
        {
            return 0;
        }

        return 3;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (last - p < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80
            || (p[3] & 0xc0) != 0x80)
        {
            return 0;
        }

        if ((c == 0xf0 && p[1] < 0x90)            /* overlong */
            || (c == 0xf4 && p[1] >= 0x90))       /* above U+10FFFF */
        {
            return 0;
        }

        return 4;
    }

    return 0;
}


/*
 * An integer's digits from p eight at a time (a time stamp has ten),
 * summed into *v; returns where the eights end.  All eight bytes are
 * 0x30-0x39 when each high half is 3 and adding 6 to the low half
 * carries into none; then pairs of digits, pairs of pairs and the two
 * halves are summed in place (the first byte is the highest digit, no
 * lane overflows).
 */

static ngx_inline u_char *
ngx_http_apipolicy_json_digits(u_char *p, u_char *last, uint64_t *v)
{
#if (NGX_HAVE_LITTLE_ENDIAN)
    uint64_t  w;

    while (last - p >= 8) {
        ngx_memcpy(&w, p, 8);

        if ((w & 0xf0f0f0f0f0f0f0f0) != 0x3030303030303030
            || ((w + 0x0606060606060606) & 0xf0f0f0f0f0f0f0f0)
               != 0x3030303030303030)
        {
            break;
        }

        w -= 0x3030303030303030;
        w = (w * 10 + (w >> 8)) & 0x00ff00ff00ff00ff;
        w = (w * 100 + (w >> 16)) & 0x0000ffff0000ffff;
        w = (w * 10000 + (w >> 32)) & 0xffffffff;

        *v = *v * 100000000 + w;
        p += 8;
    }
#endif

    return p;
}


/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */

static ngx_int_t
ngx_http_apipolicy_json_number(ngx_http_apipolicy_json_parser_t *ps,
    ngx_http_apipolicy_json_t *j)
{
    u_char      *p, *start, *last, d;
    double       f;
    uint64_t     v;
    ngx_uint_t   integer, neg;

    p = ps->p;
    last = ps->last;
    start = p;
    integer = 1;
    v = 0;

    neg = (p < last && *p == '-');
    p += neg;

    if (p == last || *p < '0' || *p > '9') {
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
    }

    /* the integer part's value summed on the way (used up to 15 digits) */

    if (*p == '0') {
        p++;

    } else {
        p = ngx_http_apipolicy_json_digits(p, last, &v);

        while (p < last && (d = (u_char) (*p - '0')) <= 9) {
            v = v * 10 + d;
            p++;
        }
    }

    if (p < last && *p == '.') {
        integer = 0;
        p++;

        if (p == last || *p < '0' || *p > '9') {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < last && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;

        if (p < last && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == last || *p < '0' || *p > '9') {
            return ngx_http_apipolicy_json_fail(ps,
                                             NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
        }

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    j->type = NGX_HTTP_APIPOLICY_JSON_NUMBER;
    j->value.data = start;
    j->value.len = p - start;
    j->integer = integer;
    ps->p = p;

    /*
     * an integer of up to 15 digits (a time, a count) is exact in a
     * double: summed while scanned, as strtod() would round it, without
     * its cost
     */

    if (integer && (size_t) (p - start) - neg <= 15) {
        f = (double) v;
        j->number = neg ? -f : f;

        return NGX_OK;
    }

    return ngx_http_apipolicy_json_number_value(ps, j);
}


/* a number's value from its text (j->value), by strtod() */

static ngx_int_t
ngx_http_apipolicy_json_number_value(ngx_http_apipolicy_json_parser_t *ps,
    ngx_http_apipolicy_json_t *j)
{
    u_char  *start, *s;
    size_t   len;

    start = j->value.data;
    len = j->value.len;

    /*
     * strtod() needs a terminated copy: in the pool (no buffer on the
     * stack, which would cost every number a stack check)
     */

    s = ngx_pnalloc(ps->pool, len + 1);
    if (s == NULL) {
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_NOMEM);
    }

    ngx_memcpy(s, start, len);
    s[len] = '\0';

    j->number = strtod((char *) s, NULL);

    if (j->number == HUGE_VAL || j->number == -HUGE_VAL) {
        /* 1e999: no number a claim can be compared with */
        return ngx_http_apipolicy_json_fail(ps,
                                            NGX_HTTP_APIPOLICY_JSON_E_SYNTAX);
    }

    return NGX_OK;
}


ngx_http_apipolicy_json_t *
ngx_http_apipolicy_json_get(ngx_http_apipolicy_json_t *obj, u_char *name,
    size_t len)
{
    ngx_http_apipolicy_json_t  *e;

    if (obj == NULL || obj->type != NGX_HTTP_APIPOLICY_JSON_OBJECT) {
        return NULL;
    }

    for (e = obj->child; e; e = e->next) {
        if (ngx_http_apipolicy_json_key_eq(e, name, len)) {
            return e;
        }
    }

    return NULL;
}


ngx_http_apipolicy_json_t *
ngx_http_apipolicy_json_get_ci(ngx_http_apipolicy_json_t *obj, u_char *name,
    size_t len)
{
    ngx_http_apipolicy_json_t  *e;

    if (obj == NULL || obj->type != NGX_HTTP_APIPOLICY_JSON_OBJECT) {
        return NULL;
    }

    for (e = obj->child; e; e = e->next) {
        if (e->key.len == len && ngx_strncasecmp(e->key.data, name, len) == 0)
        {
            return e;
        }
    }

    return NULL;
}


ngx_http_apipolicy_json_t *
ngx_http_apipolicy_json_at(ngx_http_apipolicy_json_t *arr, ngx_uint_t n)
{
    ngx_http_apipolicy_json_t  *e;

    if (arr == NULL || arr->type != NGX_HTTP_APIPOLICY_JSON_ARRAY) {
        return NULL;
    }

    for (e = arr->child; e && n; e = e->next, n--) { /* void */ }

    return e;
}


ngx_int_t
ngx_http_apipolicy_json_compact(ngx_pool_t *pool,
    ngx_http_apipolicy_json_t *j, ngx_str_t *out)
{
    u_char      *p, *last, *d;
    ngx_uint_t   in_string;

    out->data = ngx_pnalloc(pool, j->raw.len);
    if (out->data == NULL && j->raw.len) {
        return NGX_ERROR;
    }

    d = out->data;
    in_string = 0;
    last = j->raw.data + j->raw.len;

    for (p = j->raw.data; p < last; p++) {

        if (in_string) {
            if (*p == '\\') {
                *d++ = *p++;

            } else if (*p == '"') {
                in_string = 0;
            }

            *d++ = *p;
            continue;
        }

        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            continue;
        }

        if (*p == '"') {
            in_string = 1;
        }

        *d++ = *p;
    }

    out->len = d - out->data;

    return NGX_OK;
}
