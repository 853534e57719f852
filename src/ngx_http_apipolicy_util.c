
/*
 * Copyright (C) apipolicy authors
 *
 * Small helpers shared by the areas: response header list edits that are
 * correct on nginx 1.22 and >= 1.23, request header lookups for headers
 * nginx does not index, and date parsing for directives.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_util.h"


/*
 * Iterates the live entries of a header list that have the given name
 * (case-insensitive); start with an iterator zeroed.
 */

ngx_table_elt_t *
ngx_http_apipolicy_header_next(ngx_list_t *headers, ngx_str_t *name,
    ngx_http_apipolicy_header_iter_t *it)
{
    ngx_table_elt_t  *h;

    if (it->part == NULL) {
        it->part = &headers->part;
        it->i = 0;
    }

    for ( ;; it->i++) {

        if (it->i >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->i = 0;
        }

        if (it->part->nelts == 0) {
            continue;
        }

        h = (ngx_table_elt_t *) it->part->elts + it->i;

        /* the bytes as written (as most send them), then regardless of case */

        if (h->hash == 0
            || h->key.len != name->len
            || (ngx_memcmp(h->key.data, name->data, name->len) != 0
                && ngx_strncasecmp(h->key.data, name->data, name->len) != 0))
        {
            continue;
        }

        it->i++;

        return h;
    }
}


/* hides every response header of that name; returns how many it hid */

/*
 * The lengths of the names in "names" (up to a null name), one bit each
 * (modulo 64): a header whose length has no bit is none of them, without
 * a comparison.
 */

uint64_t
ngx_http_apipolicy_header_lens(ngx_str_t *names)
{
    uint64_t    lens;
    ngx_str_t  *name;

    lens = 0;

    for (name = names; name->len; name++) {
        lens |= (uint64_t) 1 << (name->len & 63);
    }

    return lens;
}


/*
 * the index of a live header's name in "names" (up to a null name), whose
 * lengths are "lens" (ngx_http_apipolicy_header_lens)
 */

ngx_int_t
ngx_http_apipolicy_header_in(ngx_table_elt_t *h, ngx_str_t *names,
    uint64_t lens)
{
    size_t      len;
    ngx_str_t  *name;

    len = h->key.len;

    if (h->hash == 0 || !(lens & ((uint64_t) 1 << (len & 63)))) {
        return NGX_ERROR;
    }

    /*
     * the length, then the last character, then the bytes as written
     * (as most send them), and only then case-insensitively
     */

    for (name = names; name->len; name++) {
        if (len == name->len
            && (h->key.data[len - 1] | 0x20)
               == (name->data[len - 1] | 0x20)
            && (ngx_memcmp(h->key.data, name->data, len) == 0
                || ngx_strncasecmp(h->key.data, name->data, len) == 0))
        {
            return name - names;
        }
    }

    return NGX_ERROR;
}


/* the next header of a list that is not cleared ("it" zeroed to begin) */

ngx_table_elt_t *
ngx_http_apipolicy_header_each(ngx_list_t *headers,
    ngx_http_apipolicy_header_iter_t *it)
{
    ngx_table_elt_t  *h;

    if (it->part == NULL) {
        it->part = &headers->part;
        it->i = 0;
    }

    for ( ;; ) {

        if (it->i >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->i = 0;
            continue;
        }

        h = (ngx_table_elt_t *) it->part->elts + it->i++;

        if (h->hash) {
            return h;
        }
    }
}


ngx_uint_t
ngx_http_apipolicy_clear_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t                         n;
    ngx_table_elt_t                   *h;
    ngx_http_apipolicy_header_iter_t   it;

    n = 0;
    ngx_memzero(&it, sizeof(ngx_http_apipolicy_header_iter_t));

    while ((h = ngx_http_apipolicy_header_next(&r->headers_out.headers, name,
                                               &it)))
    {
        h->hash = 0;
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
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    /* one walk, part by part, in locals */

    found = NULL;
    n = 0;

    for (part = &headers->part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {

            if (h[i].hash == 0
                || h[i].key.len != name->len
                || (ngx_memcmp(h[i].key.data, name->data, name->len) != 0
                    && ngx_strncasecmp(h[i].key.data, name->data, name->len)
                       != 0))
            {
                continue;
            }

            if (found == NULL) {
                found = &h[i];

                if (count == NULL) {
                    return found;
                }
            }

            n++;
        }
    }

    if (count) {
        *count = n;
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
 * The next element of a comma-separated header value, without the blanks
 * around it; empty elements are skipped.  0 at the end of the value.
 */

ngx_uint_t
ngx_http_apipolicy_list_next(u_char **pos, u_char *last, ngx_str_t *item)
{
    u_char  *p, *start, *end;

    p = *pos;

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

        if (end > start) {
            item->data = start;
            item->len = end - start;
            *pos = p;

            return 1;
        }
    }

    *pos = p;

    return 0;
}


/*
 * Whether a comma-separated header value (e.g. Vary) already holds a
 * token, compared case-insensitively.
 */

ngx_int_t
ngx_http_apipolicy_list_has(ngx_str_t *list, ngx_str_t *token)
{
    u_char     *p;
    ngx_str_t   item;

    p = list->data;

    while (ngx_http_apipolicy_list_next(&p, list->data + list->len, &item)) {
        if (item.len == token->len
            && ngx_strncasecmp(item.data, token->data, token->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * ngx_conf_set_enum_slot() with a message that lists the choices, at
 * EMERG level: "invalid value "merge" in "apipolicy_cors_upstream"; use
 * one of: replace, pass".
 */

char *
ngx_http_apipolicy_conf_set_enum_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    u_char           *q, *last, buf[256];
    ngx_str_t        *value;
    ngx_uint_t       *np, i;
    ngx_conf_enum_t  *e;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len != 0; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    q = buf;
    last = buf + sizeof(buf);

    for (i = 0; e[i].name.len != 0; i++) {
        q = ngx_slprintf(q, last, "%s%V", i ? ", " : "", &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\"; use one of: %*s",
                       &value[1], &cmd->name, q - buf, buf);

    return NGX_CONF_ERROR;
}


/*
 * "NAME:SIZE" of a zone directive, with the size at least 8 pages; on
 * failure the error is logged, with "example" as the right form.
 */

ngx_int_t
ngx_http_apipolicy_read_body(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_client_body_handler_pt handler)
{
    ngx_int_t   rc;
    ngx_uint_t  at_once;

    ctx->body = NGX_HTTP_APIPOLICY_BODY_READING;

    rc = ngx_http_read_client_request_body(r, handler);

    at_once = (ctx->body == NGX_HTTP_APIPOLICY_BODY_AT_ONCE);
    ctx->body = 0;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    /* the reference ngx_http_read_client_request_body() took */

    ngx_http_finalize_request(r, NGX_DONE);

    return at_once ? NGX_OK : NGX_DONE;
}


void
ngx_http_apipolicy_resume(ngx_http_request_t *r)
{
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


ngx_shm_zone_t *
ngx_http_apipolicy_conf_shm_add(ngx_conf_t *cf, ngx_str_t *name, size_t size,
    ngx_shm_zone_init_pt init, void *data)
{
    ngx_shm_zone_t  *shm_zone;

    if (name->len == sizeof("apipolicy_status") - 1
        && ngx_strncmp(name->data, "apipolicy_status", name->len) == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the zone name \"apipolicy_status\" is reserved "
                           "for the counters of apipolicy_status: give this "
                           "zone another name");
        return NULL;
    }

    shm_zone = ngx_shared_memory_add(cf, name, size,
                                     &ngx_http_apipolicy_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the shared memory zone \"%V\" is already used "
                           "by another apipolicy directive: give each zone "
                           "a name of its own", name);
        return NULL;
    }

    shm_zone->init = init;
    shm_zone->data = data;

    return shm_zone;
}


ngx_int_t
ngx_http_apipolicy_conf_list_add(ngx_conf_t *cf, ngx_array_t **list,
    void *elt)
{
    void  **p;

    if (*list == NULL) {
        *list = ngx_array_create(cf->pool, 2, sizeof(void *));
        if (*list == NULL) {
            return NGX_ERROR;
        }
    }

    p = ngx_array_push(*list);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *p = elt;

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_conf_zone(ngx_conf_t *cf, ngx_str_t *value,
    const char *example, ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    p = (u_char *) ngx_strlchr(value->data, value->data + value->len, ':');

    if (p == NULL || p == value->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\": use NAME:SIZE, as in "
                           "\"%s\"", value, example);
        return NGX_ERROR;
    }

    name->data = value->data;
    name->len = p - value->data;

    s.data = p + 1;
    s.len = value->data + value->len - s.data;

    *size = ngx_parse_size(&s);

    if (*size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", value);
        return NGX_ERROR;
    }

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: at least %uzk",
                           value, 8 * ngx_pagesize / 1024);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * zone=NAME and the like: the zone NAME among "zones" (ngx_shm_zone_t *,
 * as the "directive" declaring them above this line added them); NULL,
 * said, when there is none
 */

ngx_shm_zone_t *
ngx_http_apipolicy_conf_zone_find(ngx_conf_t *cf, ngx_array_t *zones,
    ngx_str_t *name, const char *kind, const char *directive)
{
    ngx_uint_t        n;
    ngx_shm_zone_t  **zp;

    zp = zones ? zones->elts : NULL;

    for (n = 0; zp && n < zones->nelts; n++) {
        if (zp[n]->shm.name.len == name->len
            && ngx_strncmp(zp[n]->shm.name.data, name->data, name->len) == 0)
        {
            return zp[n];
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown %s zone \"%V\": declare it with %s at http "
                       "level, before this line", kind, name, directive);
    return NULL;
}


/*
 * Feeds the request body, as read by ngx_http_read_client_request_body(),
 * to "feed": memory buffers as they are, a body buffered to a temporary
 * file in chunks read back from it.
 */

ngx_int_t
ngx_http_apipolicy_request_body_feed(ngx_http_request_t *r,
    ngx_http_apipolicy_feed_pt feed, void *data)
{
    off_t         off;
    size_t        n;
    ssize_t       got;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;
    u_char        buf[16384];

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            if (b->last > b->pos
                && feed(data, b->pos, b->last - b->pos) != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (!b->in_file || b->file == NULL) {
            continue;
        }

        for (off = b->file_pos; off < b->file_last; off += got) {
            n = (size_t) ngx_min((off_t) sizeof(buf), b->file_last - off);

            got = ngx_read_file(b->file, buf, n, off);

            if (got == NGX_ERROR || got == 0) {
                return NGX_ERROR;
            }

            if (feed(data, buf, (size_t) got) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


char *
ngx_http_apipolicy_conf_set_sec_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    time_t     *sp;
    ngx_str_t  *value;

    sp = (time_t *) (p + cmd->offset);

    if (*sp != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    *sp = ngx_parse_time(&value[1], 1);

    if (*sp == (time_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"%V\": %s a number of "
                           "seconds, or numbers with the units ms, s, m, h, "
                           "d, w, M, y, as in \"30s\", \"10m\" or \"1h\"",
                           &value[1], &cmd->name,
                           value[1].len && value[1].data[0] == '-'
                           ? "a time cannot be negative; use" : "use");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_apipolicy_conf_set_status_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_int_t               n;
    ngx_str_t              *value;
    ngx_uint_t             *np;
    ngx_conf_num_bounds_t  *bounds;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    bounds = cmd->post;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n < bounds->low || n > bounds->high) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid status \"%V\" in \"%V\": a refusal needs "
                           "an error status, from %i to %i",
                           &value[1], &cmd->name, bounds->low, bounds->high);
        return NGX_CONF_ERROR;
    }

    *np = (ngx_uint_t) n;

    return NGX_CONF_OK;
}


void
ngx_http_apipolicy_conf_bad_param(ngx_conf_t *cf, ngx_str_t *param,
    const char *accepted)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" of \"%V\": the parameters "
                       "are %s", param, &value[0], accepted);
}


char *
ngx_http_apipolicy_conf_where(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    const char                       *here;
    ngx_http_apipolicy_conf_where_t  *w;

    w = cmd->post;

    if (cf->cmd_type & w->contexts) {
        return w->handler(cf, cmd, conf);
    }

    switch (cf->cmd_type) {
    case NGX_HTTP_MAIN_CONF:
        here = "the http block";
        break;
    case NGX_HTTP_SRV_CONF:
        here = "a server block";
        break;
    default:
        here = "a location";
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" belongs in %s, not in %s", &cmd->name,
                       w->where, here);

    return NGX_CONF_ERROR;
}


void
ngx_http_apipolicy_memzero(void *p, size_t n)
{
    (void) memset(p, 0, n);
}
