
/*
 * Copyright (C) apipolicy authors
 *
 * Small helpers shared by the areas: response header list edits that are
 * correct on nginx 1.22 and >= 1.23, request header lookups for headers
 * nginx does not index, and date parsing for directives.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_util.h"


ngx_table_elt_t *
ngx_http_apipolicy_add_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key = *name;
    h->value = *value;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


/* hides every response header of that name; returns how many it hid */

ngx_uint_t
ngx_http_apipolicy_clear_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    n = 0;
    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || h[i].key.len != name->len
            || ngx_strncasecmp(h[i].key.data, name->data, name->len) != 0)
        {
            continue;
        }

        h[i].hash = 0;
        n++;
    }

    return n;
}


/*
 * First header of that name in a request or response header list; with
 * "count", also how many there are (several Origin or Authorization
 * headers in one request are suspicious).
 */

ngx_table_elt_t *
ngx_http_apipolicy_find_header(ngx_list_t *headers, ngx_str_t *name,
    ngx_uint_t *count)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    found = NULL;

    if (count) {
        *count = 0;
    }

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || h[i].key.len != name->len
            || ngx_strncasecmp(h[i].key.data, name->data, name->len) != 0)
        {
            continue;
        }

        if (found == NULL) {
            found = &h[i];
        }

        if (count == NULL) {
            break;
        }

        (*count)++;
    }

    return found;
}


/*
 * A date in a directive: "@1735689600" (seconds since the epoch, the
 * RFC 9745 structured-field form) or an HTTP-date such as
 * "Sat, 01 Jan 2050 00:00:00 GMT".
 */

ngx_int_t
ngx_http_apipolicy_parse_date(ngx_str_t *value, time_t *t)
{
    ngx_int_t  n;

    if (value->len > 1 && value->data[0] == '@') {
        n = ngx_atoi(value->data + 1, value->len - 1);
        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        *t = (time_t) n;
        return NGX_OK;
    }

    *t = ngx_parse_http_time(value->data, value->len);

    return (*t == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/*
 * Whether a comma-separated header value (e.g. Vary) already holds a
 * token, compared case-insensitively.
 */

ngx_int_t
ngx_http_apipolicy_list_has(ngx_str_t *list, ngx_str_t *token)
{
    u_char  *p, *last, *start, *end;

    p = list->data;
    last = p + list->len;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        end = p;

        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }

        if ((size_t) (end - start) == token->len
            && ngx_strncasecmp(start, token->data, token->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}
