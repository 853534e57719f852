
/*
 * Copyright (C) apipolicy authors
 *
 * What every libFuzzer target of t/fuzz/ shares.  A target #includes the
 * apipolicy source file whose parsers it drives (so static functions are
 * in reach) and is linked with every other object of the sanitizer build
 * (build/asan/: nginx's core, http and the rest of apipolicy), so nothing
 * of nginx is stubbed: only a cycle, a log, a pool and a request are set
 * up here, the way nginx would have them when a request's headers are in.
 *
 * Inputs that hold headers are "Name: value" lines separated by '\n'
 * (a value may hold any byte but '\n', NULs included); what follows the
 * first empty line, if any, is the body.
 */

#ifndef _APIPOLICY_FUZZ_H_INCLUDED_
#define _APIPOLICY_FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_apipolicy.h"

#include <stdint.h>


#define FUZZ_MAX_MODULES  256


static ngx_log_t          fuzz_log;
static ngx_open_file_t    fuzz_log_file;
static ngx_cycle_t        fuzz_cycle;
static void              *fuzz_loc_conf[FUZZ_MAX_MODULES];
static u_char             fuzz_zero_conf[65536];
static ngx_connection_t   fuzz_connection;


static u_char *fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t size);


/* once per process: what nginx sets before any request */

static void
fuzz_init(void)
{
    ngx_uint_t  i;

    ngx_pagesize = getpagesize();
    for (ngx_pagesize_shift = 0; (ngx_uint_t) 1 << ngx_pagesize_shift
                                 < ngx_pagesize; ngx_pagesize_shift++)
    { /* void */ }

    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    ngx_time_init();

    /* the log is built but nothing reaches a file */
    fuzz_log_file.fd = (ngx_fd_t) -1;
    fuzz_log.file = &fuzz_log_file;
    fuzz_log.log_level = 0;

    fuzz_cycle.log = &fuzz_log;
    ngx_cycle = &fuzz_cycle;

    /* the indexes nginx gives at configuration time */
    ngx_http_core_module.ctx_index = 0;
    ngx_http_apipolicy_module.ctx_index = 1;

    for (i = 0; i < FUZZ_MAX_MODULES; i++) {
        fuzz_loc_conf[i] = fuzz_zero_conf;      /* no error_page, ... */
    }

    fuzz_connection.log = &fuzz_log;
    fuzz_connection.fd = (ngx_socket_t) -1;
}


static ngx_pool_t *
fuzz_pool(void)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, &fuzz_log);
    if (pool == NULL) {
        abort();
    }

    return pool;
}


/*
 * A request whose headers are the "Name: value" lines of data; the rest
 * after an empty line is its body, in memory.
 */

static ngx_http_request_t *
fuzz_request(ngx_pool_t *pool, const uint8_t *data, size_t size)
{
    u_char              *p, *last, *eol, *colon, *copy;
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    if (r == NULL) {
        abort();
    }

    r->pool = pool;
    r->connection = &fuzz_connection;
    r->main = r;
    r->loc_conf = fuzz_loc_conf;
    r->method = NGX_HTTP_POST;
    r->ctx = ngx_pcalloc(pool, sizeof(void *) * FUZZ_MAX_MODULES);

    if (r->ctx == NULL
        || ngx_list_init(&r->headers_in.headers, pool, 8,
                         sizeof(ngx_table_elt_t))
           != NGX_OK
        || ngx_list_init(&r->headers_out.headers, pool, 8,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        abort();
    }

    copy = fuzz_copy(pool, data, size);

    p = copy;
    last = copy + size;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        if (eol == p) {
            p++;                                /* the body follows */
            break;
        }

        colon = ngx_strlchr(p, eol, ':');

        if (colon) {
            h = ngx_list_push(&r->headers_in.headers);
            if (h == NULL) {
                abort();
            }

            h->key.data = p;
            h->key.len = colon - p;
            h->lowcase_key = ngx_pnalloc(pool, h->key.len + 1);
            if (h->lowcase_key == NULL) {
                abort();
            }

            h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data,
                                      h->key.len);

            colon++;
            while (colon < eol && *colon == ' ') {
                colon++;
            }

            h->value.data = colon;
            h->value.len = eol - colon;
        }

        p = (eol < last) ? eol + 1 : last;
    }

    /* the body, in memory, as nginx reads a small one */

    r->request_body = ngx_pcalloc(pool, sizeof(ngx_http_request_body_t));
    b = ngx_calloc_buf(pool);
    cl = ngx_alloc_chain_link(pool);

    if (r->request_body == NULL || b == NULL || cl == NULL) {
        abort();
    }

    b->pos = p;
    b->last = last;
    b->start = p;
    b->end = last;
    b->memory = 1;
    b->last_buf = 1;

    cl->buf = b;
    cl->next = NULL;

    r->request_body->bufs = cl;
    r->headers_in.content_length_n = last - p;

    return r;
}


/* the input in a pool allocation of its own size: reads past it are caught */

static u_char *
fuzz_copy(ngx_pool_t *pool, const uint8_t *data, size_t size)
{
    u_char  *copy;

    copy = ngx_pnalloc(pool, size);
    if (copy == NULL && size) {
        abort();
    }

    ngx_memcpy(copy, data, size);

    return copy;
}


/* a target that needs nothing more defines FUZZ_INIT_ONLY */

#ifdef FUZZ_INIT_ONLY

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_init();

    return 0;
}

#endif


#endif /* _APIPOLICY_FUZZ_H_INCLUDED_ */
