
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_UTIL_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_UTIL_H_INCLUDED_


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_shm.h"


typedef struct {
    ngx_list_part_t  *part;
    ngx_uint_t        i;
} ngx_http_apipolicy_header_iter_t;


typedef ngx_int_t (*ngx_http_apipolicy_feed_pt)(void *data, u_char *p,
    size_t len);

ngx_int_t ngx_http_apipolicy_request_body_feed(ngx_http_request_t *r,
    ngx_http_apipolicy_feed_pt feed, void *data);
ngx_table_elt_t *ngx_http_apipolicy_header_next(ngx_list_t *headers,
    ngx_str_t *name, ngx_http_apipolicy_header_iter_t *it);
ngx_uint_t ngx_http_apipolicy_clear_header(ngx_http_request_t *r,
    ngx_str_t *name);
uint64_t ngx_http_apipolicy_header_lens(ngx_str_t *names);

/*
 * A response header of the gateway's, correct on nginx 1.22 and >= 1.23;
 * inline, as the list's own room is there on almost every response (the
 * list starts with 20), without a call to ngx_list_push()
 */

static ngx_inline ngx_table_elt_t *
ngx_http_apipolicy_add_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_list_t       *l;
    ngx_table_elt_t  *h;

    l = &r->headers_out.headers;

    if (l->last->nelts < l->nalloc) {
        h = (ngx_table_elt_t *) l->last->elts + l->last->nelts++;

    } else {
        h = ngx_list_push(l);
        if (h == NULL) {
            return NULL;
        }
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


/* the header's name has the length of one in "lens": worth comparing */
#define ngx_http_apipolicy_header_len_in(h, lens)                            \
    ((lens) & ((uint64_t) 1 << ((h)->key.len & 63)))

ngx_int_t ngx_http_apipolicy_header_in(ngx_table_elt_t *h, ngx_str_t *names,
    uint64_t lens);
ngx_table_elt_t *ngx_http_apipolicy_header_each(ngx_list_t *headers,
    ngx_http_apipolicy_header_iter_t *it);
ngx_table_elt_t *ngx_http_apipolicy_find_header(ngx_list_t *headers,
    ngx_str_t *name, ngx_uint_t *count);
ngx_int_t ngx_http_apipolicy_parse_date(ngx_str_t *value, time_t *t);
ngx_uint_t ngx_http_apipolicy_list_next(u_char **pos, u_char *last,
    ngx_str_t *item);
ngx_int_t ngx_http_apipolicy_list_has(ngx_str_t *list, ngx_str_t *token);
ngx_int_t ngx_http_apipolicy_conf_zone(ngx_conf_t *cf, ngx_str_t *value,
    const char *example, ngx_str_t *name, ssize_t *size);
ngx_shm_zone_t *ngx_http_apipolicy_conf_zone_find(ngx_conf_t *cf,
    ngx_array_t *zones, ngx_str_t *name, const char *kind,
    const char *directive);

/*
 * A phase handler reads the body without blocking (as nginx's mirror
 * module does): NGX_DONE, "handler" runs once the body is in, then
 * ngx_http_apipolicy_resume() goes on with the phases; or a status.
 *
 * NGX_OK when the body was all there (a small body comes with the
 * headers): "handler" was called from within and only noted it
 * (ngx_http_apipolicy_body_at_once() answered 1), and the phase handler
 * does the work itself and goes on, without a second pass through the
 * phases nested under this one.
 */
#define NGX_HTTP_APIPOLICY_BODY_READING  1
#define NGX_HTTP_APIPOLICY_BODY_AT_ONCE  2

ngx_int_t ngx_http_apipolicy_read_body(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_client_body_handler_pt handler);
void ngx_http_apipolicy_resume(ngx_http_request_t *r);

/* in the body handler, first: 1 when called from within read_body() */
static ngx_inline ngx_uint_t
ngx_http_apipolicy_body_at_once(ngx_http_apipolicy_ctx_t *ctx)
{
    if (ctx && ctx->body == NGX_HTTP_APIPOLICY_BODY_READING) {
        ctx->body = NGX_HTTP_APIPOLICY_BODY_AT_ONCE;
        return 1;
    }

    return 0;
}

/* a shared-memory zone of ours; a name already taken is refused */
ngx_shm_zone_t *ngx_http_apipolicy_conf_shm_add(ngx_conf_t *cf,
    ngx_str_t *name, size_t size, ngx_shm_zone_init_pt init, void *data);

/* "elt" (a pointer) appended to *list, made on first use */
ngx_int_t ngx_http_apipolicy_conf_list_add(ngx_conf_t *cf, ngx_array_t **list,
    void *elt);
char *ngx_http_apipolicy_conf_set_enum_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/*
 * Configuration answers that name the directive, the bad value and what
 * is accepted: a time (ngx_conf_set_sec_slot with words for "1hour" and
 * "-5s"), a status code within bounds (cmd->post: ngx_conf_num_bounds_t),
 * and an unknown parameter with the list of the known ones
 */
char *ngx_http_apipolicy_conf_set_sec_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_apipolicy_conf_set_status_slot(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
void ngx_http_apipolicy_conf_bad_param(ngx_conf_t *cf, ngx_str_t *param,
    const char *accepted);

/*
 * Directives allowed in some blocks only: the table gives them every
 * http block, and this handler (cmd->post: an ..._conf_where_t) answers
 * one in the wrong block with where it belongs, instead of nginx's
 * "is not allowed here", then calls the directive's own handler
 */
typedef struct {
    ngx_uint_t                         contexts;  /* NGX_HTTP_*_CONF */
    const char                        *where;     /* "the http block" */
    char                           *(*handler)(ngx_conf_t *cf,
                                               ngx_command_t *cmd,
                                               void *conf);
} ngx_http_apipolicy_conf_where_t;

char *ngx_http_apipolicy_conf_where(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/*
 * memset(p, 0, n) as a call: of a size it knows, gcc writes a zeroing
 * of a hundred bytes or more inline as rep stos, eight bytes a step;
 * glibc's memset() stores 32 a step
 */
void ngx_http_apipolicy_memzero(void *p, size_t n);


#endif /* _NGX_HTTP_APIPOLICY_UTIL_H_INCLUDED_ */
