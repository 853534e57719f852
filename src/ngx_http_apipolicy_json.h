
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_JSON_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_APIPOLICY_JSON_NULL      0
#define NGX_HTTP_APIPOLICY_JSON_TRUE      1
#define NGX_HTTP_APIPOLICY_JSON_FALSE     2
#define NGX_HTTP_APIPOLICY_JSON_NUMBER    3
#define NGX_HTTP_APIPOLICY_JSON_STRING    4
#define NGX_HTTP_APIPOLICY_JSON_ARRAY     5
#define NGX_HTTP_APIPOLICY_JSON_OBJECT    6

/* why a text was refused */
#define NGX_HTTP_APIPOLICY_JSON_OK         0
#define NGX_HTTP_APIPOLICY_JSON_E_SYNTAX   1
#define NGX_HTTP_APIPOLICY_JSON_E_DUP      2   /* duplicate member name */
#define NGX_HTTP_APIPOLICY_JSON_E_DEPTH    3
#define NGX_HTTP_APIPOLICY_JSON_E_MEMBERS  4   /* too many members */
#define NGX_HTTP_APIPOLICY_JSON_E_NOMEM    5

/* members one object may have (duplicates are looked for linearly) */
#define NGX_HTTP_APIPOLICY_JSON_MAX_MEMBERS  256


typedef struct ngx_http_apipolicy_json_s  ngx_http_apipolicy_json_t;

/*
 * One JSON value, allocated from the pool the text was parsed on.  Arrays
 * and objects list their elements through child/next; an object's
 * elements carry their member name in "key".
 *
 *   string   "value" holds the decoded UTF-8 text (it points into the
 *            source text when the string has no escapes)
 *            "printable" is set when the text is the source's and holds
 *            printable ASCII only (no escapes, no control characters)
 *   number   "value" holds the number as written, "number" its value;
 *            "integer" is set when it has no fraction and no exponent
 *   all      "raw" is the value's source text
 */
struct ngx_http_apipolicy_json_s {
    ngx_uint_t                         type;
    ngx_str_t                          key;
    ngx_str_t                          value;
    ngx_str_t                          raw;
    double                             number;
    ngx_uint_t                         count;
    ngx_http_apipolicy_json_t         *child;
    ngx_http_apipolicy_json_t         *next;
    unsigned                           integer:1;
    unsigned                           printable:1;
};


/*
 * Strict RFC 8259: one value and nothing after it but white space; UTF-8
 * checked; "\u0000", lone surrogates, duplicate member names, nesting
 * deeper than max_depth and objects with more than
 * NGX_HTTP_APIPOLICY_JSON_MAX_MEMBERS members are refused.  Returns NULL
 * with *error set (NGX_HTTP_APIPOLICY_JSON_E_*) on failure.  The text
 * must stay alive as long as the result.
 */
ngx_http_apipolicy_json_t *ngx_http_apipolicy_json_parse(ngx_pool_t *pool,
    u_char *text, size_t len, ngx_uint_t max_depth, ngx_uint_t *error);

/* an object's member by exact name, or NULL (also for a non-object) */
ngx_http_apipolicy_json_t *ngx_http_apipolicy_json_get(
    ngx_http_apipolicy_json_t *obj, u_char *name, size_t len);

/* ... by name compared case-insensitively (ASCII) */
ngx_http_apipolicy_json_t *ngx_http_apipolicy_json_get_ci(
    ngx_http_apipolicy_json_t *obj, u_char *name, size_t len);

#define ngx_http_apipolicy_json_get_literal(obj, name)                       \
    ngx_http_apipolicy_json_get(obj, (u_char *) name, sizeof(name) - 1)

/* the n-th element of an array, or NULL */
ngx_http_apipolicy_json_t *ngx_http_apipolicy_json_at(
    ngx_http_apipolicy_json_t *arr, ngx_uint_t n);

/*
 * The value's source text without the white space between tokens: an
 * object or array as compact JSON.  Allocated from "pool".
 */
ngx_int_t ngx_http_apipolicy_json_compact(ngx_pool_t *pool,
    ngx_http_apipolicy_json_t *j, ngx_str_t *out);


#endif /* _NGX_HTTP_APIPOLICY_JSON_H_INCLUDED_ */
