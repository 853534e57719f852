
/*
 * Copyright (C) apipolicy authors
 *
 * JWKS fetched at run time: apipolicy_jwt_key_request URI names an
 * internal location that proxies to the identity provider (as NGINX
 * Plus's auth_jwt_key_request).  The key set is fetched with an
 * in-memory subrequest, never a blocking call.
 *
 *   shared   one small zone per directive holds the JWKS text, its
 *            SHA-256, a version (bumped when the text changes), the time
 *            of the last good fetch, and the fetch lock: one fetch at a
 *            time across all workers.
 *   worker   each worker parses the text again when the version moves
 *            (EVP keys cannot live in shared memory) and keeps that set
 *            until the next version; the previous set is freed then.
 *   first    a request that finds no keys starts the fetch and waits for
 *            it (NGX_AGAIN; resumed by the subrequest's end); requests
 *            that find a fetch running poll the zone every 50 ms.  When
 *            the fetch fails they are refused (KEYS_UNAVAILABLE).
 *   refresh  a request that finds the keys older than refresh= starts a
 *            background subrequest and goes on with the current keys.
 *   kid      a token with a kid the keys lack starts a refetch and waits
 *            for it, at most once per cooldown= (default 30s) for the
 *            whole zone, so that made-up kids cannot make the gateway
 *            hammer the identity provider.
 *   failure  a failed fetch (no answer, a status other than 200, a body
 *            that is not a usable JWK Set) is logged at "error" and keeps
 *            the current keys; the next attempt waits cooldown=.  Keys
 *            are used up to max_stale= (default 24h) after the last good
 *            fetch; older keys are dropped (KEYS_UNAVAILABLE).
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_jwt_key.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_jwks.h"
#include "ngx_http_apipolicy_util.h"

#include <openssl/evp.h>


#define NGX_HTTP_APIPOLICY_JWKS_MAGIC      0x61706a776b733031  /* apjwks01 */
#define NGX_HTTP_APIPOLICY_JWKS_MAX_SIZE   (256 * 1024)
#define NGX_HTTP_APIPOLICY_JWKS_ZONE_SIZE  (512 * 1024)
#define NGX_HTTP_APIPOLICY_JWKS_LOCK_TIME  60      /* s: a fetch's lock */
#define NGX_HTTP_APIPOLICY_JWKS_POLL       50      /* ms */


typedef struct {
    uint64_t                           magic;
    ngx_atomic_t                       version;   /* 0: never fetched */
    time_t                             fetched;   /* last good fetch */
    time_t                             failed;    /* last failed fetch */
    time_t                             kid_fetch; /* last unknown-kid
                                                     refetch */
    time_t                             lock;      /* a fetch runs since */
    ngx_uint_t                         lock_id;   /* ... under this id */
    ngx_uint_t                         fetches;
    ngx_uint_t                         failures;
    size_t                             len;
    u_char                             hash[32];  /* SHA-256 of text */
    u_char                             text[NGX_HTTP_APIPOLICY_JWKS_MAX_SIZE];
} ngx_http_apipolicy_jwks_sh_t;


/* the keys one worker parsed from one version of the text */
typedef struct {
    ngx_pool_t                        *pool;
    ngx_atomic_uint_t                  version;
    ngx_array_t                       *keys;
    u_char                             id[32];
} ngx_http_apipolicy_jwks_set_t;


/*
 * One apipolicy_jwt_key_request directive.  uri..shm_zone are
 * configuration; sh and shpool are set by the zone's init (in the
 * master); "set" and "bad_version" are this worker's parsed copy of the
 * shared text, changed at run time by the worker alone (each worker has
 * its own after fork()).  No policy is derived from them that the
 * identity provider did not publish.
 */
struct ngx_http_apipolicy_jwks_s {
    ngx_str_t                          uri;
    ngx_str_t                          label;     /* the metrics': the URI,
                                                     "#2".. when repeated */
    ngx_str_t                          args;
    ngx_str_t                          issuer;    /* issuer=, or empty */
    ngx_http_core_srv_conf_t          *server;    /* the URI resolves here */
    u_char                            *file;      /* where the directive */
    ngx_uint_t                         line;      /* was set */
    time_t                             refresh;
    time_t                             cooldown;
    time_t                             max_stale;
    ngx_shm_zone_t                    *shm_zone;

    ngx_http_apipolicy_jwks_sh_t      *sh;
    ngx_slab_pool_t                   *shpool;

    ngx_http_apipolicy_jwks_set_t     *set;
    ngx_atomic_uint_t                  bad_version;
};


/* one fetch, in the request that started it */
typedef struct {
    ngx_http_apipolicy_jwks_t         *src;
    ngx_http_apipolicy_jwt_ctx_t      *jctx;      /* NULL: background */
    ngx_http_request_t                *request;
    ngx_uint_t                         lock_id;
    unsigned                           done:1;
} ngx_http_apipolicy_jwks_fetch_t;


#define NGX_HTTP_APIPOLICY_JWKS_STARTED  0
#define NGX_HTTP_APIPOLICY_JWKS_BUSY     1
#define NGX_HTTP_APIPOLICY_JWKS_BACKOFF  2


static ngx_http_apipolicy_jwks_set_t *ngx_http_apipolicy_jwks_sync(
    ngx_http_apipolicy_jwks_t *src, ngx_log_t *log);
static ngx_uint_t ngx_http_apipolicy_jwks_lock(ngx_http_apipolicy_jwks_t *src,
    ngx_uint_t kid, ngx_uint_t *lock_id);
static ngx_int_t ngx_http_apipolicy_jwks_start(ngx_http_request_t *r,
    ngx_http_apipolicy_jwks_t *src, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_uint_t lock_id);
static ngx_int_t ngx_http_apipolicy_jwks_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_apipolicy_jwks_finish(ngx_http_apipolicy_jwks_t *src,
    ngx_uint_t lock_id, u_char *text, size_t len, ngx_log_t *log);
static void ngx_http_apipolicy_jwks_fetch_cleanup(void *data);
static ngx_int_t ngx_http_apipolicy_jwks_wait(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx);
static void ngx_http_apipolicy_jwks_poll(ngx_http_request_t *r);
static ngx_int_t ngx_http_apipolicy_jwks_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_apipolicy_jwks_params(ngx_conf_t *cf,
    ngx_http_apipolicy_jwks_t *src);
static ngx_int_t ngx_http_apipolicy_jwks_zone(ngx_conf_t *cf,
    ngx_http_apipolicy_jwks_t *src);
static ngx_int_t ngx_http_apipolicy_jwks_label(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf, ngx_http_apipolicy_jwks_t *src);


/* ---- request time ---------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_jwks_keys(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_array_t **keys, u_char *id)
{
    time_t                          now, age;
    ngx_uint_t                      usable, state, lock_id;
    ngx_http_apipolicy_jwks_t      *src;
    ngx_http_apipolicy_jwks_set_t  *set;

    src = jcf->jwks;
    now = ngx_time();

    set = ngx_http_apipolicy_jwks_sync(src, r->connection->log);

    age = now - src->sh->fetched;
    usable = (set != NULL && age <= src->max_stale);

    if (!usable || age >= src->refresh) {

        state = ngx_http_apipolicy_jwks_lock(src, 0, &lock_id);

        if (state == NGX_HTTP_APIPOLICY_JWKS_STARTED) {

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "apipolicy jwks: fetching \"%V\"%s", &src->uri,
                           usable ? " in the background" : "");

            if (ngx_http_apipolicy_jwks_start(r, src, usable ? NULL : jctx,
                                              lock_id)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (!usable) {
                return NGX_AGAIN;
            }

        } else if (!usable) {

            if (state == NGX_HTTP_APIPOLICY_JWKS_BUSY && !jctx->fetched) {
                return ngx_http_apipolicy_jwks_wait(r, jctx);
            }

            if (set && age > src->max_stale) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "apipolicy jwks: the keys from \"%V\" are "
                              "older than max_stale (%T s)", &src->uri,
                              src->max_stale);
            }

            return NGX_DECLINED;
        }
    }

    *keys = set->keys;
    ngx_memcpy(id, set->id, 32);

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_jwks_unknown_kid(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_conf_t *jcf, ngx_http_apipolicy_jwt_ctx_t *jctx)
{
    ngx_uint_t                  state, lock_id;
    ngx_http_apipolicy_jwks_t  *src;

    src = jcf->jwks;

    if (jctx->fetched
        || !ngx_http_apipolicy_jwt_key_for_issuer(&src->issuer, &jctx->iss))
    {
        /* waited once, or the token is another issuer's */
        return NGX_DECLINED;
    }

    state = ngx_http_apipolicy_jwks_lock(src, 1, &lock_id);

    switch (state) {

    case NGX_HTTP_APIPOLICY_JWKS_STARTED:
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "apipolicy jwks: unknown kid \"%V\", fetching \"%V\" "
                      "again", &jctx->kid, &src->uri);

        if (ngx_http_apipolicy_jwks_start(r, src, jctx, lock_id) != NGX_OK) {
            return NGX_ERROR;
        }

        return NGX_AGAIN;

    case NGX_HTTP_APIPOLICY_JWKS_BUSY:
        return ngx_http_apipolicy_jwks_wait(r, jctx);

    default:
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "apipolicy jwks: unknown kid, refetch cooling down");
        return NGX_DECLINED;
    }
}


/*
 * This worker's key set for the current version of the shared text,
 * parsed again when another fetch changed it.
 */

static ngx_http_apipolicy_jwks_set_t *
ngx_http_apipolicy_jwks_sync(ngx_http_apipolicy_jwks_t *src, ngx_log_t *log)
{
    u_char                         *text;
    size_t                          len;
    ngx_str_t                       err;
    ngx_pool_t                     *pool;
    ngx_atomic_uint_t               version;
    ngx_http_apipolicy_jwks_sh_t   *sh;
    ngx_http_apipolicy_jwks_set_t  *set;

    sh = src->sh;
    version = sh->version;

    if (version == 0
        || (src->set && src->set->version == version)
        || src->bad_version == version)
    {
        return src->set;
    }

    /* the set outlives the request: its pool logs to the cycle */
    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return src->set;
    }

    set = ngx_pcalloc(pool, sizeof(ngx_http_apipolicy_jwks_set_t));
    text = ngx_pnalloc(pool, NGX_HTTP_APIPOLICY_JWKS_MAX_SIZE);
    if (set == NULL || text == NULL) {
        goto failed;
    }

    ngx_shmtx_lock(&src->shpool->mutex);

    version = sh->version;
    len = sh->len;
    ngx_memcpy(text, sh->text, len);

    ngx_shmtx_unlock(&src->shpool->mutex);

    set->pool = pool;
    set->version = version;

    set->keys = ngx_array_create(pool, 4, sizeof(ngx_http_apipolicy_jwt_key_t));
    if (set->keys == NULL) {
        goto failed;
    }

    if (ngx_http_apipolicy_jwt_jwks_parse(pool, log, text, len, 0, set->keys,
                                          &err)
        != NGX_OK)
    {
        /* the fetching worker checked it: cannot happen */
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "apipolicy jwks: the keys from \"%V\" %V", &src->uri,
                      &err);
        src->bad_version = version;
        goto failed;
    }

    ngx_http_apipolicy_jwt_keys_bind(set->keys, 0, &src->issuer);

    if (ngx_http_apipolicy_jwt_cache_id(set->keys, NULL, NULL, set->id)
        != NGX_OK)
    {
        goto failed;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "apipolicy jwks: \"%V\" version %uA, %ui keys",
                   &src->uri, version, set->keys->nelts);

    if (src->set) {
        ngx_destroy_pool(src->set->pool);
    }

    src->set = set;

    return set;

failed:

    ngx_destroy_pool(pool);

    return src->set;
}


/* takes the zone's fetch lock, unless a fetch runs or one failed recently */

static ngx_uint_t
ngx_http_apipolicy_jwks_lock(ngx_http_apipolicy_jwks_t *src, ngx_uint_t kid,
    ngx_uint_t *lock_id)
{
    time_t                         now;
    ngx_uint_t                     state;
    ngx_http_apipolicy_jwks_sh_t  *sh;

    sh = src->sh;
    now = ngx_time();

    ngx_shmtx_lock(&src->shpool->mutex);

    if (sh->lock && now - sh->lock < NGX_HTTP_APIPOLICY_JWKS_LOCK_TIME) {
        state = NGX_HTTP_APIPOLICY_JWKS_BUSY;

    } else if ((sh->failed && now - sh->failed < src->cooldown)
               || (kid && sh->kid_fetch
                   && now - sh->kid_fetch < src->cooldown))
    {
        state = NGX_HTTP_APIPOLICY_JWKS_BACKOFF;

    } else {
        state = NGX_HTTP_APIPOLICY_JWKS_STARTED;
        sh->lock = now;
        *lock_id = ++sh->lock_id;

        if (kid) {
            sh->kid_fetch = now;
        }
    }

    ngx_shmtx_unlock(&src->shpool->mutex);

    return state;
}


static ngx_int_t
ngx_http_apipolicy_jwks_start(ngx_http_request_t *r,
    ngx_http_apipolicy_jwks_t *src, ngx_http_apipolicy_jwt_ctx_t *jctx,
    ngx_uint_t lock_id)
{
    ngx_uint_t                        flags;
    ngx_pool_cleanup_t               *cln;
    ngx_http_request_t               *sr;
    ngx_http_post_subrequest_t       *ps;
    ngx_http_apipolicy_jwks_fetch_t  *fetch;

    cln = ngx_pool_cleanup_add(r->pool,
                               sizeof(ngx_http_apipolicy_jwks_fetch_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));

    if (cln == NULL || ps == NULL) {
        ngx_http_apipolicy_jwks_finish(src, lock_id, NULL, 0,
                                       r->connection->log);
        return NGX_ERROR;
    }

    fetch = cln->data;
    ngx_memzero(fetch, sizeof(ngx_http_apipolicy_jwks_fetch_t));

    fetch->src = src;
    fetch->jctx = jctx;
    fetch->request = r;
    fetch->lock_id = lock_id;

    cln->handler = ngx_http_apipolicy_jwks_fetch_cleanup;

    ps->handler = ngx_http_apipolicy_jwks_done;
    ps->data = fetch;

    flags = NGX_HTTP_SUBREQUEST_IN_MEMORY
            | (jctx ? NGX_HTTP_SUBREQUEST_WAITED
                    : NGX_HTTP_SUBREQUEST_BACKGROUND);

    if (ngx_http_subrequest(r, &src->uri, src->args.len ? &src->args : NULL,
                            &sr, ps, flags)
        != NGX_OK)
    {
        fetch->done = 1;
        ngx_http_apipolicy_jwks_finish(src, lock_id, NULL, 0,
                                       r->connection->log);
        return NGX_ERROR;
    }

    if (jctx) {
        jctx->waiting = 1;
    }

    return NGX_OK;
}


/* the subrequest ended: keep its body as the new key set, or log why not */

static ngx_int_t
ngx_http_apipolicy_jwks_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_apipolicy_jwks_fetch_t  *fetch = data;

    u_char                     *text;
    size_t                      len;
    ngx_str_t                   err;
    ngx_uint_t                  status;
    ngx_pool_t                 *pool;
    ngx_array_t                *keys;
    ngx_http_apipolicy_jwks_t  *src;

    if (fetch->done) {
        return rc;
    }

    fetch->done = 1;
    src = fetch->src;
    status = sr->headers_out.status;

    text = NULL;
    len = 0;

    if (sr->out && sr->out->buf) {
        text = sr->out->buf->pos;
        len = sr->out->buf->last - sr->out->buf->pos;
    }

    if (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE
        || status != NGX_HTTP_OK)
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "apipolicy jwks: fetching \"%V\" failed (status %ui), "
                      "the current keys are kept", &src->uri,
                      status ? status : (ngx_uint_t) (rc > 0 ? rc : 0));
        text = NULL;

    } else if (len == 0 || len > NGX_HTTP_APIPOLICY_JWKS_MAX_SIZE) {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "apipolicy jwks: \"%V\" answered %uz bytes (1 to "
                      "%uz expected), the current keys are kept",
                      &src->uri, len,
                      (size_t) NGX_HTTP_APIPOLICY_JWKS_MAX_SIZE);
        text = NULL;

    } else {
        pool = ngx_create_pool(4096, sr->connection->log);
        keys = pool ? ngx_array_create(pool, 4,
                                       sizeof(ngx_http_apipolicy_jwt_key_t))
                    : NULL;

        if (keys == NULL
            || ngx_http_apipolicy_jwt_jwks_parse(pool, sr->connection->log,
                                                 text, len, 0, keys, &err)
               != NGX_OK)
        {
            if (keys) {
                ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                              "apipolicy jwks: the answer of \"%V\" %V, the "
                              "current keys are kept", &src->uri, &err);
            }

            text = NULL;

        } else {
            ngx_log_error(NGX_LOG_INFO, sr->connection->log, 0,
                          "apipolicy jwks: fetched \"%V\", %ui keys",
                          &src->uri, keys->nelts);
        }

        if (pool) {
            ngx_destroy_pool(pool);
        }
    }

    ngx_http_apipolicy_jwks_finish(src, fetch->lock_id, text, len,
                                   sr->connection->log);

    if (fetch->jctx) {
        fetch->jctx->waiting = 0;
        fetch->jctx->fetched = 1;
    }

    return rc;
}


/* releases the fetch lock, storing the text of a good fetch */

static void
ngx_http_apipolicy_jwks_finish(ngx_http_apipolicy_jwks_t *src,
    ngx_uint_t lock_id, u_char *text, size_t len, ngx_log_t *log)
{
    u_char                         hash[32];
    unsigned int                   n;
    ngx_http_apipolicy_jwks_sh_t  *sh;

    sh = src->sh;

    if (text
        && EVP_Digest(text, len, hash, &n, EVP_sha256(), NULL) != 1)
    {
        text = NULL;
    }

    ngx_shmtx_lock(&src->shpool->mutex);

    if (sh->lock_id == lock_id) {
        sh->lock = 0;
    }

    if (text) {
        sh->fetches++;
        sh->fetched = ngx_time();
        sh->failed = 0;

        if (sh->version == 0 || sh->len != len
            || ngx_memcmp(sh->hash, hash, 32) != 0)
        {
            ngx_memcpy(sh->text, text, len);
            ngx_memcpy(sh->hash, hash, 32);
            sh->len = len;
            sh->version++;
        }

    } else if (len != (size_t) -1) {
        sh->failures++;
        sh->failed = ngx_time();
    }

    ngx_shmtx_unlock(&src->shpool->mutex);
}


/* the request went away before its fetch ended: release the lock */

static void
ngx_http_apipolicy_jwks_fetch_cleanup(void *data)
{
    ngx_http_apipolicy_jwks_fetch_t  *fetch = data;

    if (!fetch->done) {
        fetch->done = 1;
        ngx_http_apipolicy_jwks_finish(fetch->src, fetch->lock_id, NULL,
                                       (size_t) -1, ngx_cycle->log);
    }
}


/* a fetch started elsewhere runs: poll the zone until it ends */

static ngx_int_t
ngx_http_apipolicy_jwks_wait(ngx_http_request_t *r,
    ngx_http_apipolicy_jwt_ctx_t *jctx)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy jwks: waiting for a fetch");

    jctx->waiting = 1;

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_apipolicy_jwks_poll;

    ngx_add_timer(r->connection->write, NGX_HTTP_APIPOLICY_JWKS_POLL);

    return NGX_AGAIN;
}


static void
ngx_http_apipolicy_jwks_poll(ngx_http_request_t *r)
{
    time_t                          now;
    ngx_event_t                    *wev;
    ngx_http_apipolicy_ctx_t       *ctx;
    ngx_http_apipolicy_jwks_sh_t   *sh;
    ngx_http_apipolicy_jwt_ctx_t   *jctx;

    wev = r->connection->write;

    if (!wev->timedout) {
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    wev->timedout = 0;

    ctx = ngx_http_apipolicy_get_ctx(r);
    jctx = ctx ? ctx->jwt : NULL;

    if (jctx == NULL || jctx->conf == NULL || jctx->conf->jwks == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    sh = jctx->conf->jwks->sh;
    now = ngx_time();

    if (sh->lock && now - sh->lock < NGX_HTTP_APIPOLICY_JWKS_LOCK_TIME) {
        ngx_add_timer(wev, NGX_HTTP_APIPOLICY_JWKS_POLL);
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "apipolicy jwks: the fetch ended");

    jctx->waiting = 0;
    jctx->fetched = 1;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


/* ---- configuration --------------------------------------------------- */

/*
 * apipolicy_jwt_key_request URI [issuer=] [refresh=] [cooldown=]
 * [max_stale=]
 */

ngx_str_t *
ngx_http_apipolicy_jwks_issuer(ngx_http_apipolicy_jwks_t *src)
{
    return &src->issuer;
}


char *
ngx_http_apipolicy_jwks_key_request(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                          *p;
    ngx_str_t                       *value;
    ngx_http_apipolicy_jwks_t       *src;
    ngx_http_apipolicy_jwt_conf_t   *jcf;
    ngx_http_apipolicy_main_conf_t  *amcf;

    jcf = &((ngx_http_apipolicy_loc_conf_t *) conf)->jwt;

    if (jcf->jwks != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a URI of this server: name an "
                           "internal location that proxies to the identity "
                           "provider, as in \"/_jwks\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    src = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_jwks_t));
    if (src == NULL) {
        return NGX_CONF_ERROR;
    }

    src->uri = value[1];

    p = ngx_strlchr(src->uri.data, src->uri.data + src->uri.len, '?');

    if (p) {
        src->args.data = p + 1;
        src->args.len = src->uri.data + src->uri.len - p - 1;
        src->uri.len = p - src->uri.data;
    }

    src->refresh = 600;
    src->cooldown = 30;
    src->max_stale = 86400;

    src->server = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
    src->file = cf->conf_file->file.name.data;
    src->line = cf->conf_file->line;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (ngx_http_apipolicy_conf_list_add(cf, &amcf->jwks, src) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_apipolicy_jwks_params(cf, src) != NGX_OK
        || ngx_http_apipolicy_jwks_zone(cf, src) != NGX_OK
        || ngx_http_apipolicy_jwks_label(cf, amcf, src) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    jcf->jwks = src;

    return NGX_CONF_OK;
}


/* refresh=, cooldown=, max_stale=, issuer= of apipolicy_jwt_key_request */

static ngx_int_t
ngx_http_apipolicy_jwks_params(ngx_conf_t *cf, ngx_http_apipolicy_jwks_t *src)
{
    time_t      *tp;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_http_apipolicy_jwt_issuer_param(&value[i], &src->issuer)) {
            continue;
        }

        if (ngx_strncmp(value[i].data, "refresh=", 8) == 0) {
            tp = &src->refresh;
            s.data = value[i].data + 8;

        } else if (ngx_strncmp(value[i].data, "cooldown=", 9) == 0) {
            tp = &src->cooldown;
            s.data = value[i].data + 9;

        } else if (ngx_strncmp(value[i].data, "max_stale=", 10) == 0) {
            tp = &src->max_stale;
            s.data = value[i].data + 10;

        } else {
            ngx_http_apipolicy_conf_bad_param(cf, &value[i],
                                              "refresh=, cooldown=, "
                                              "max_stale= and issuer=");
            return NGX_ERROR;
        }

        s.len = value[i].data + value[i].len - s.data;

        *tp = ngx_parse_time(&s, 1);

        if (*tp == (time_t) NGX_ERROR || *tp == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value in \"%V\"", &value[i]);
            return NGX_ERROR;
        }
    }

    if (src->max_stale < src->refresh) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "max_stale (%T s) is shorter than refresh (%T s)",
                           src->max_stale, src->refresh);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_apipolicy_jwks_zone(ngx_conf_t *cf, ngx_http_apipolicy_jwks_t *src)
{
    ngx_str_t        *value, name;
    ngx_shm_zone_t   *shm_zone;

    value = cf->args->elts;

    /*
     * one zone per directive: the URI resolves in this directive's
     * server, so two directives never share keys; the name (file and
     * line) keeps the zone, and the keys, across a reload that does not
     * move the directive
     */

    name.len = sizeof("apipolicy_jwt_key_request  :") - 1 + value[1].len
               + cf->conf_file->file.name.len + NGX_INT_T_LEN;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    name.len = ngx_sprintf(name.data, "apipolicy_jwt_key_request %V %V:%ui",
                           &value[1], &cf->conf_file->file.name,
                           cf->conf_file->line)
               - name.data;

    shm_zone = ngx_http_apipolicy_conf_shm_add(cf, &name,
                                              NGX_HTTP_APIPOLICY_JWKS_ZONE_SIZE,
                                              ngx_http_apipolicy_jwks_init_zone,
                                              src);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    src->shm_zone = shm_zone;

    return NGX_OK;
}


/* the metrics name a key source by its URI (this one is in the list) */

static ngx_int_t
ngx_http_apipolicy_jwks_label(ngx_conf_t *cf,
    ngx_http_apipolicy_main_conf_t *amcf, ngx_http_apipolicy_jwks_t *src)
{
    ngx_uint_t                   i, same;
    ngx_http_apipolicy_jwks_t  **other;

    same = 0;
    other = amcf->jwks->elts;

    for (i = 0; i < amcf->jwks->nelts; i++) {
        if (other[i]->uri.len == src->uri.len
            && ngx_strncmp(other[i]->uri.data, src->uri.data, src->uri.len)
               == 0)
        {
            same++;
        }
    }

    src->label = src->uri;

    if (same > 1) {
        src->label.data = ngx_pnalloc(cf->pool, src->uri.len + 1
                                                + NGX_INT_T_LEN);
        if (src->label.data == NULL) {
            return NGX_ERROR;
        }

        src->label.len = ngx_sprintf(src->label.data, "%V#%ui", &src->uri,
                                     same)
                         - src->label.data;
    }

    return NGX_OK;
}


#if (NGX_HTTP_SSL)

/*
 * Only for the https check below: without the SSL module no proxy_pass
 * is https.
 *
 * The location a key request lands in, found as nginx finds it for the
 * subrequest (ngx_http_core_find_location()): the static location tree
 * (exact, prefix and auto-redirect nodes), nested locations with the
 * whole URI, then the regex locations unless the prefix match said "^~".
 * NGX_OK, NGX_DONE (auto redirect), NGX_AGAIN (prefix match),
 * NGX_DECLINED (none); *loc is the location found.
 */

static ngx_int_t
ngx_http_apipolicy_jwks_static(ngx_http_location_tree_node_t *node,
    ngx_str_t *uri, ngx_http_core_loc_conf_t **loc)
{
    u_char     *p;
    size_t      len, n;
    ngx_int_t   rc, rv;

    p = uri->data;
    len = uri->len;
    rv = NGX_DECLINED;

    while (node) {
        n = ngx_min(len, (size_t) node->len);
        rc = ngx_filename_cmp(p, node->name, n);

        if (rc != 0) {
            node = (rc < 0) ? node->left : node->right;
            continue;
        }

        if (len > (size_t) node->len) {
            if (node->inclusive) {
                *loc = node->inclusive;
                rv = NGX_AGAIN;
                node = node->tree;
                p += n;
                len -= n;

            } else {
                node = node->right;
            }

            continue;
        }

        if (len == (size_t) node->len) {
            if (node->exact) {
                *loc = node->exact;
                return NGX_OK;
            }

            *loc = node->inclusive;
            return NGX_AGAIN;
        }

        if (len + 1 == (size_t) node->len && node->auto_redirect) {
            *loc = node->exact ? node->exact : node->inclusive;
            rv = NGX_DONE;
        }

        node = node->left;
    }

    return rv;
}


static ngx_int_t
ngx_http_apipolicy_jwks_location(ngx_http_core_loc_conf_t *pclcf,
    ngx_str_t *uri, ngx_http_core_loc_conf_t **loc)
{
    ngx_int_t                   rc;
    ngx_uint_t                  noregex;
#if (NGX_PCRE)
    ngx_str_t                   s;
    ngx_http_core_loc_conf_t  **re;
#endif

    noregex = 0;

    rc = ngx_http_apipolicy_jwks_static(pclcf->static_locations, uri, loc);

    if (rc == NGX_AGAIN) {
        noregex = (*loc)->noregex;
        rc = ngx_http_apipolicy_jwks_location(*loc, uri, loc);
    }

    if (rc == NGX_OK || rc == NGX_DONE) {
        return rc;
    }

#if (NGX_PCRE)
    if (!noregex && pclcf->regex_locations) {

        for (re = pclcf->regex_locations; *re; re++) {
            s = *uri;

            if (ngx_regex_exec((*re)->regex->regex, &s, NULL, 0) >= 0) {
                *loc = *re;
                (void) ngx_http_apipolicy_jwks_location(*re, uri, loc);
                return NGX_OK;
            }
        }
    }
#endif

    return rc;
}


#endif


void
ngx_http_apipolicy_jwks_postconfiguration(ngx_conf_t *cf)
{
#if (NGX_HTTP_SSL)
    ngx_uint_t                       i, m, proxy;
    ngx_module_t                   **modules;
    ngx_http_upstream_conf_t        *ucf;
    ngx_http_core_loc_conf_t        *clcf, *root;
    ngx_http_apipolicy_jwks_t      **src;
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (amcf->jwks == NULL) {
        return;
    }

    /* by name: the module is not linked against the proxy module */

    modules = cf->cycle->modules;
    proxy = NGX_CONF_UNSET_UINT;

    for (m = 0; modules[m]; m++) {
        if (modules[m]->type == NGX_HTTP_MODULE
            && ngx_strcmp(modules[m]->name, "ngx_http_proxy_module") == 0)
        {
            proxy = modules[m]->ctx_index;
            break;
        }
    }

    if (proxy == NGX_CONF_UNSET_UINT) {
        return;
    }

    src = amcf->jwks->elts;

    for (i = 0; i < amcf->jwks->nelts; i++) {

        root = src[i]->server->ctx->loc_conf[ngx_http_core_module.ctx_index];
        clcf = root;

        /* whatever it returns, clcf is where the subrequest runs */
        (void) ngx_http_apipolicy_jwks_location(root, &src[i]->uri, &clcf);

        /*
         * the proxy module's location conf begins with its
         * ngx_http_upstream_conf_t: "upstream" is set by a proxy_pass
         * without variables, "ssl->ctx" only where that proxy_pass (or
         * an enclosing location's) is https
         */

        ucf = clcf->loc_conf[proxy];

        if (ucf->upstream == NULL || ucf->ssl == NULL
            || ucf->ssl->ctx == NULL || ucf->ssl_verify)
        {
            continue;
        }

        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "apipolicy_jwt_key_request \"%V\" in %s:%ui is "
                      "answered by location \"%V\", which proxies over "
                      "https without \"proxy_ssl_verify on\": whoever can "
                      "intercept that connection can supply keys and forge "
                      "tokens; add \"proxy_ssl_verify on\" and "
                      "\"proxy_ssl_trusted_certificate\" there",
                      &src[i]->uri, src[i]->file, src[i]->line, &clcf->name);
    }
#endif
}


static ngx_int_t
ngx_http_apipolicy_jwks_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_apipolicy_jwks_t     *src;
    ngx_http_apipolicy_jwks_sh_t  *sh;

    src = shm_zone->data;

    /* kept: a fetch of the old cycle may still end, and its lock stays */

    if (ngx_http_apipolicy_shm_root(shm_zone, data,
                                    "apipolicy_jwt_key_request",
                                    NGX_HTTP_APIPOLICY_JWKS_MAGIC,
                                    sizeof(ngx_http_apipolicy_jwks_sh_t),
                                    (void **) &sh)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    src->sh = sh;
    src->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    return NGX_OK;
}


/* for the metrics: fetches that worked and failed, seconds since the
 * last good one (-1: none yet), and the source's label */

ngx_str_t *
ngx_http_apipolicy_jwks_stats(ngx_http_apipolicy_jwks_t *src, ngx_uint_t *ok,
    ngx_uint_t *failed, time_t *age)
{
    ngx_http_apipolicy_jwks_sh_t  *sh;

    sh = src->sh;

    *ok = sh ? sh->fetches : 0;
    *failed = sh ? sh->failures : 0;
    *age = (sh && sh->fetched) ? ngx_max(ngx_time() - sh->fetched, 0) : -1;

    return &src->label;
}


ngx_str_t *
ngx_http_apipolicy_jwks_zone_label(ngx_http_apipolicy_main_conf_t *amcf,
    ngx_shm_zone_t *shm_zone)
{
    ngx_uint_t                   i;
    ngx_http_apipolicy_jwks_t  **src;

    if (amcf->jwks == NULL) {
        return NULL;
    }

    src = amcf->jwks->elts;

    for (i = 0; i < amcf->jwks->nelts; i++) {
        if (src[i]->shm_zone->shm.addr == shm_zone->shm.addr) {
            return &src[i]->label;
        }
    }

    return NULL;
}
