
/*
 * Copyright (C) apipolicy authors
 *
 * Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) in
 * PRECONTENT, after the rate limit, with the response captured by the
 * filters.
 *
 *   key      the Idempotency-Key header: an RFC 8941 sf-string ("...",
 *            escapes, parameters ignored) or a bare token, 1 to 255
 *            characters; the entry is SHA-256(scope || key), scope= being,
 *            say, the caller's $jwt_claim_sub, so that two clients never
 *            share keys
 *   print    SHA-256 of the method, the request target and the body
 *   first    no entry: an "in flight" entry is made (pinned: never
 *            evicted) and the request goes on; its response (status,
 *            headers, body up to max_body) is kept for ttl= once the last
 *            byte passed.  A 5xx (unless keep=5xx) or 429 the upstream
 *            sent, or an upstream never reached, frees the key: the
 *            client may try again.  An
 *            unknown outcome (timeout, upstream broke off, request ended
 *            early) or an answer that cannot be kept locks the key for
 *            lease=; a client that goes away does not stop the upstream
 *   again    in flight or locked: 409 IDEMPOTENCY_KEY_IN_USE with
 *            Retry-After; done with another fingerprint: 422
 *            IDEMPOTENCY_KEY_REUSED; done with the same: the stored
 *            response, with "Idempotent-Replayed: true"
 *   missing  400 IDEMPOTENCY_KEY_MISSING with "required", else the
 *            request goes on untouched
 *
 * The entries live in a shared-memory zone (hash + LRU), so all
 * workers of this gateway see them; they survive a reload that keeps the
 * zone's name and size.
 *
 * With redis=on the gateways sharing one Redis share the keys: a key the
 * zone does not know is claimed there with one atomic command,
 *
 *   EVAL "GET KEYS[1], else SET KEYS[1] ARGV[1] PX ARGV[2]" PREFIXidem:HEX
 *        "i" FP TOKEN  LEASE
 *
 * whose answer is nil (ours: go on), an "i..." value (in flight at
 * another gateway: 409) or a "d..." value (done: 422 or a replay of the
 * response kept there).  A kept response is written over our claim, a
 * freed key deleted, both only while the claim is still ours (a script
 * compares first).  The request waits for that one round trip, bounded
 * by apipolicy_redis timeout=; commands go to the one Redis queue of
 * the worker, pipelined behind whatever is in flight there.  Redis
 * away: redis_fail=open goes on with the zone alone, redis_fail=closed
 * answers 503 IDEMPOTENCY_UNAVAILABLE.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_problem.h"
#include "ngx_http_apipolicy_util.h"
#include "ngx_http_apipolicy_redis.h"
#include "ngx_http_apipolicy_digest.h"

#include <openssl/rand.h>


/* apidm005 */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_MAGIC     0x617069646d303035
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_KEY_MAX   255
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_RAW_MAX   1024    /* the header, with
                                                     parameters */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_LEASE     300     /* lease= default, s */

/* a claim still ours lives lease= more (PEXPIRE, allowed past maxmemory) */
#define ngx_http_apipolicy_idempotency_extend                                \
    ngx_string("if redis.call('GET', KEYS[1]) == ARGV[1] then "              \
               "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "         \
               "return 0")

/* responses a worker keeps for Redis to take them again, at most */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_PENDING_MAX  (64 * 1024 * 1024)

/* PREFIX "idem:" HEX */
#define NGX_HTTP_APIPOLICY_IDEMPOTENCY_REDIS_KEY_LEN                         \
    (NGX_HTTP_APIPOLICY_REDIS_PREFIX_MAX + sizeof("idem:") - 1 + 64)


static void ngx_http_apipolicy_idempotency_body_read(ngx_http_request_t *r);
static ngx_inline u_char *ngx_http_apipolicy_idempotency_join(u_char *p,
    ngx_str_t *a, u_char sep, ngx_str_t *b);
static ngx_int_t ngx_http_apipolicy_idempotency_body_in(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_idempotency_time(ngx_conf_t *cf,
    ngx_str_t *param, size_t skip, const char *example, time_t *t);
static ngx_int_t ngx_http_apipolicy_idempotency_zone_param(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_zone_t *zone, ngx_str_t *param,
    ssize_t size);
static ngx_int_t ngx_http_apipolicy_idempotency_param(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_str_t *param);
static ngx_int_t ngx_http_apipolicy_idempotency_methods(ngx_conf_t *cf,
    ngx_str_t *param, ngx_uint_t *methods);
static ngx_int_t ngx_http_apipolicy_idempotency_decide(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_idempotency_fingerprint(
    ngx_http_request_t *r, ngx_http_apipolicy_idempotency_ctx_t *ictx);
static ngx_int_t ngx_http_apipolicy_idempotency_first(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx);
static ngx_int_t ngx_http_apipolicy_idempotency_known(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_idempotency_node_t *in);
static ngx_int_t ngx_http_apipolicy_idempotency_replay(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static ngx_int_t ngx_http_apipolicy_idempotency_key(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_str_t *detail);
static ngx_int_t ngx_http_apipolicy_idempotency_sf_string(ngx_str_t *value,
    u_char *buf);
static u_char *ngx_http_apipolicy_idempotency_sf_bare(u_char *p, u_char *last);
static void ngx_http_apipolicy_idempotency_release(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static ngx_int_t ngx_http_apipolicy_idempotency_capture(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static ngx_uint_t ngx_http_apipolicy_idempotency_skip(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx, ngx_table_elt_t *h);
static void ngx_http_apipolicy_idempotency_unkeep(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_commit(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_lock(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_lease_start(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_lease_stop(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_lease_renew(ngx_event_t *ev);
static ngx_uint_t ngx_http_apipolicy_idempotency_reached(ngx_http_request_t *r);
static ngx_int_t ngx_http_apipolicy_idempotency_content(ngx_http_request_t *r);
static void ngx_http_apipolicy_idempotency_cleanup(void *data);
static ngx_int_t ngx_http_apipolicy_idempotency_hop(ngx_str_t *name);
static ngx_http_apipolicy_idempotency_node_t *
    ngx_http_apipolicy_idempotency_mine(
    ngx_http_apipolicy_idempotency_zone_t *zone,
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_free(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn, ngx_uint_t reuse);
static u_char *ngx_http_apipolicy_idempotency_spare(
    ngx_http_apipolicy_idempotency_zone_t *zone,
    ngx_http_apipolicy_idempotency_ctx_t *ictx, size_t size);

static ngx_int_t ngx_http_apipolicy_idempotency_redis_claim(
    ngx_http_request_t *r, ngx_http_apipolicy_idempotency_ctx_t *ictx);
static ngx_int_t ngx_http_apipolicy_idempotency_redis_answer(
    ngx_http_request_t *r, ngx_http_apipolicy_idempotency_ctx_t *ictx,
    redisReply *reply);
static ngx_int_t ngx_http_apipolicy_idempotency_redis_failed(
    ngx_http_request_t *r, ngx_http_apipolicy_idempotency_ctx_t *ictx,
    redisReply *error, ngx_uint_t foreign);
static void ngx_http_apipolicy_idempotency_redis_update(
    ngx_http_apipolicy_idempotency_ctx_t *ictx, ngx_uint_t commit);
static void ngx_http_apipolicy_idempotency_redis_commit(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_redis_extend(
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_claim_send(
    ngx_http_apipolicy_idempotency_ctx_t *ictx, ngx_str_t *script,
    ngx_uint_t lease);
static ngx_uint_t ngx_http_apipolicy_idempotency_on_claim(ngx_str_t *argv,
    ngx_str_t *script, u_char *key, u_char *lease,
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static ngx_int_t ngx_http_apipolicy_idempotency_op(
    ngx_str_t *argv, ngx_uint_t argc, ngx_str_t *key,
    ngx_http_apipolicy_idempotency_ctx_t *ictx);
static void ngx_http_apipolicy_idempotency_commit_send(
    ngx_http_apipolicy_idempotency_commit_t *c);
static void ngx_http_apipolicy_idempotency_commit_retry(ngx_event_t *ev);
static void ngx_http_apipolicy_idempotency_commit_done(void *data,
    redisReply **replies, ngx_uint_t n, ngx_int_t rc);
static void ngx_http_apipolicy_idempotency_commit_failed(
    ngx_http_apipolicy_idempotency_commit_t *c, ngx_str_t *reason);
static void ngx_http_apipolicy_idempotency_commit_free(
    ngx_http_apipolicy_idempotency_commit_t *c);
static void ngx_http_apipolicy_idempotency_redis_ignore(void *data,
    redisReply **replies, ngx_uint_t n, ngx_int_t rc);
static void ngx_http_apipolicy_idempotency_redis_done(void *data,
    redisReply **replies, ngx_uint_t n, ngx_int_t rc);
static void ngx_http_apipolicy_idempotency_op_done(
    ngx_http_apipolicy_idempotency_op_t *op, redisReply *reply);
static u_char *ngx_http_apipolicy_idempotency_redis_key(u_char *p,
    ngx_http_apipolicy_idempotency_ctx_t *ictx);


/* this worker's Redis (shared with the other areas) */

static ngx_http_apipolicy_redis_t    *ngx_http_apipolicy_idempotency_rd;
static size_t                         ngx_http_apipolicy_idempotency_pending;
static ngx_queue_t                    ngx_http_apipolicy_idempotency_owned;
static ngx_event_t                    ngx_http_apipolicy_idempotency_renew_ev;
static ngx_connection_t               ngx_http_apipolicy_idempotency_renew_conn;


static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_idempotency_missing =
    ngx_http_apipolicy_problem("IDEMPOTENCY_KEY_MISSING",
                               "idempotency-key-missing",
                               "Idempotency-Key required");

static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_idempotency_invalid =
    ngx_http_apipolicy_problem("IDEMPOTENCY_KEY_INVALID",
                               "idempotency-key-invalid",
                               "Idempotency-Key invalid");

static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_idempotency_in_use =
    ngx_http_apipolicy_problem("IDEMPOTENCY_KEY_IN_USE",
                               "idempotency-key-in-use",
                               "A request with this Idempotency-Key is in "
                               "progress");

static ngx_http_apipolicy_problem_t  ngx_http_apipolicy_idempotency_reused =
    ngx_http_apipolicy_problem("IDEMPOTENCY_KEY_REUSED",
                               "idempotency-key-reused",
                               "Idempotency-Key reused with another request");

static ngx_http_apipolicy_problem_t
    ngx_http_apipolicy_idempotency_unavailable =
    ngx_http_apipolicy_problem("IDEMPOTENCY_UNAVAILABLE",
                               "idempotency-unavailable",
                               "Idempotency keys cannot be checked now");

static ngx_str_t  ngx_http_apipolicy_idempotency_key_name =
    ngx_string("Idempotency-Key");
static ngx_str_t  ngx_http_apipolicy_idempotency_replayed =
    ngx_string("Idempotent-Replayed");
static ngx_str_t  ngx_http_apipolicy_idempotency_retry =
    ngx_string("Retry-After");


#define ngx_http_apipolicy_idempotency_find(zone, key)                       \
    ((ngx_http_apipolicy_idempotency_node_t *)                               \
         ngx_http_apipolicy_shm_lookup(&(zone)->shm, key))


/* ---- request time ---------------------------------------------------- */

ngx_int_t
ngx_http_apipolicy_idempotency_handler(ngx_http_request_t *r,
    ngx_http_apipolicy_loc_conf_t *alcf, ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_int_t                              rc;
    ngx_str_t                              detail;
    ngx_http_apipolicy_idempotency_ctx_t  *ictx;
    ngx_http_apipolicy_idempotency_conf_t *icf;

    icf = &alcf->idempotency;

    if (icf->zone == NULL || !(r->method & icf->methods)) {
        return NGX_DECLINED;
    }

    ictx = ctx->idempotency;

    if (ictx) {
        if (!ictx->done) {
            return NGX_AGAIN;               /* the body is being read */
        }

        if (ictx->decision == NGX_HTTP_APIPOLICY_IDEMPOTENCY_REPLAY) {
            /* sent once */
            ictx->decision = NGX_HTTP_APIPOLICY_IDEMPOTENCY_PASS;
            return ngx_http_apipolicy_idempotency_replay(r, ictx);
        }

        if (ictx->owner && ictx->content == NULL && r->content_handler) {
            ictx->content = r->content_handler;
            r->content_handler = ngx_http_apipolicy_idempotency_content;
        }

        return ictx->status;
    }

    ictx = ngx_pcalloc(r->pool, sizeof(ngx_http_apipolicy_idempotency_ctx_t));
    if (ictx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->idempotency = ictx;
    ictx->zone = icf->zone;
    ictx->no_cookies = (icf->scope == NULL);
    ictx->keep_5xx = icf->keep_5xx;

    ngx_str_null(&detail);

    rc = ngx_http_apipolicy_idempotency_key(r, icf, ctx, &detail);

    if (rc == NGX_DECLINED) {
        /* no key, not required */
        ictx->done = 1;
        ictx->status = NGX_DECLINED;
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ictx->done = 1;
        ictx->status = (rc == NGX_ERROR) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                         : rc;
        return ictx->status;
    }

    /*
     * the zone's lines that the lookup and the insert need are read in
     * while the body is read and fingerprinted
     */

    ngx_http_apipolicy_shm_prefetch(&ictx->zone->shm, ictx->key);

    /* the fingerprint needs the body */

    rc = ngx_http_apipolicy_read_body(r, ctx,
                                  ngx_http_apipolicy_idempotency_body_read);

    if (rc != NGX_OK) {
        return rc;
    }

    /* the body was all there */

    if (ngx_http_apipolicy_idempotency_body_in(r, icf, ctx) == NGX_AGAIN) {
        return NGX_DONE;
    }

    return ngx_http_apipolicy_idempotency_handler(r, alcf, ctx);
}


/*
 * The body is in: the decision (NGX_OK, ctx->idempotency done), or NGX_AGAIN
 * while Redis is asked (ngx_http_apipolicy_idempotency_op_done() goes on)
 */

static ngx_int_t
ngx_http_apipolicy_idempotency_body_in(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_apipolicy_idempotency_decide(r, icf, ctx);

    if (rc == NGX_AGAIN) {
        r->write_event_handler = ngx_http_request_empty_handler;
        return NGX_AGAIN;
    }

    ctx->idempotency->status = rc;
    ctx->idempotency->done = 1;

    return NGX_OK;
}


static void
ngx_http_apipolicy_idempotency_body_read(ngx_http_request_t *r)
{
    ngx_http_apipolicy_ctx_t       *ctx;
    ngx_http_apipolicy_loc_conf_t  *alcf;

    ctx = ngx_http_apipolicy_get_ctx(r);

    if (ngx_http_apipolicy_body_at_once(ctx)) {
        return;                     /* the phase handler goes on */
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

    if (ctx == NULL || ctx->idempotency == NULL
        || alcf->idempotency.zone == NULL)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_apipolicy_idempotency_body_in(r, &alcf->idempotency, ctx)
        == NGX_OK)
    {
        ngx_http_apipolicy_resume(r);
    }
}


/*
 * NGX_OK with the entry key in ctx->idempotency->key, NGX_DECLINED (no key and
 * none required), or a refusal status.
 */

/*
 * "a", "sep" and "b" into a hash: joined on the stack and given in one
 * update when short (each SHA256_Update() costs some fifty instructions
 * before it copies a byte), else one by one
 */

static void
ngx_http_apipolicy_idempotency_hash2(ngx_http_apipolicy_sha_t *md,
    ngx_str_t *a, u_char sep, ngx_str_t *b)
{
    u_char  buf[512], *p;

    if (a->len + 1 + b->len > sizeof(buf)) {
        ngx_http_apipolicy_sha_update(md, a->data, a->len);
        ngx_http_apipolicy_sha_update(md, &sep, 1);
        ngx_http_apipolicy_sha_update(md, b->data, b->len);
        return;
    }

    p = ngx_http_apipolicy_idempotency_join(buf, a, sep, b);

    ngx_http_apipolicy_sha_update(md, buf, p - buf);
}


/* "a", "sep" and "b" written at "p" (room checked by the caller) */

static ngx_inline u_char *
ngx_http_apipolicy_idempotency_join(u_char *p, ngx_str_t *a, u_char sep,
    ngx_str_t *b)
{
    p = ngx_cpymem(p, a->data, a->len);
    *p++ = sep;

    return ngx_cpymem(p, b->data, b->len);
}


/*
 * 1 when every byte of a bare key is 0x21-0x7e and neither '"' nor '\\':
 * eight bytes a step, each test true when some byte of the word meets it
 * (below 0x21: subtracting borrows into its high bit; above 0x7e: adding
 * 1 carries into it, or it is set; '"' and '\\': a zero byte after the
 * XOR), then byte by byte
 */

#define NGX_HTTP_APIPOLICY_BYTES(c)  (0x0101010101010101ULL * (c))

static ngx_uint_t
ngx_http_apipolicy_idempotency_key_chars(ngx_str_t *key)
{
    u_char    *p, *last;
    uint64_t   w, q, b;

    p = key->data;
    last = p + key->len;

    for ( /* void */ ; last - p >= 8; p += 8) {
        ngx_memcpy(&w, p, 8);

        q = w ^ NGX_HTTP_APIPOLICY_BYTES('"');
        b = w ^ NGX_HTTP_APIPOLICY_BYTES('\\');

        if ((((w - NGX_HTTP_APIPOLICY_BYTES(0x21)) & ~w)
             | ((w + NGX_HTTP_APIPOLICY_BYTES(0x01)) | w)
             | ((q - NGX_HTTP_APIPOLICY_BYTES(0x01)) & ~q)
             | ((b - NGX_HTTP_APIPOLICY_BYTES(0x01)) & ~b))
            & NGX_HTTP_APIPOLICY_BYTES(0x80))
        {
            return 0;
        }
    }

    for ( /* void */ ; p < last; p++) {
        if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\') {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_apipolicy_idempotency_key(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_http_apipolicy_ctx_t *ctx,
    ngx_str_t *detail)
{
    u_char            buf[NGX_HTTP_APIPOLICY_IDEMPOTENCY_KEY_MAX];
    u_char           *p, block[2 * 64];
    ngx_int_t         rc;
    ngx_str_t         key, scope;
    ngx_uint_t                 count;
    ngx_table_elt_t           *h;
    ngx_http_apipolicy_sha_t   md;

    h = ngx_http_apipolicy_find_header(&r->headers_in.headers,
                                       &ngx_http_apipolicy_idempotency_key_name,
                                       &count);

    if (count == 0) {
        if (!icf->required) {
            return NGX_DECLINED;
        }

        ngx_str_set(detail, "this request needs an Idempotency-Key header");
        return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                   &ngx_http_apipolicy_idempotency_missing,
                                   NGX_LOG_INFO, detail);
    }

    if (count > 1) {
        ngx_str_set(detail, "several Idempotency-Key headers were sent");
        goto invalid;
    }

    /*
     * an RFC 8941 sf-string ("...", with \" and \\ escapes, parameters
     * after it ignored), or a bare token as most clients send
     */

    key = h->value;

    if (key.len > NGX_HTTP_APIPOLICY_IDEMPOTENCY_RAW_MAX) {
        ngx_str_set(detail, "the Idempotency-Key is empty or longer than "
                            "255 characters");
        goto invalid;
    }

    if (key.len && key.data[0] == '"') {
        rc = ngx_http_apipolicy_idempotency_sf_string(&key, buf);

        if (rc == NGX_ERROR) {
            ngx_str_set(detail, "the Idempotency-Key is not a valid "
                                "structured-field string");
            goto invalid;
        }

        key.data = buf;
        key.len = (size_t) rc;
    }

    if (key.len == 0 || key.len > NGX_HTTP_APIPOLICY_IDEMPOTENCY_KEY_MAX) {
        ngx_str_set(detail, "the Idempotency-Key is empty or longer than "
                            "255 characters");
        goto invalid;
    }

    if (key.data != buf && !ngx_http_apipolicy_idempotency_key_chars(&key)) {
        ngx_str_set(detail, "the Idempotency-Key holds characters other "
                            "than printable ASCII");
        goto invalid;
    }

    ngx_str_null(&scope);

    if (icf->scope && ngx_http_complex_value(r, icf->scope, &scope) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (scope.len + 1 + key.len <= NGX_HTTP_APIPOLICY_SHA256_SHORT) {
        p = ngx_http_apipolicy_idempotency_join(block, &scope, '\n', &key);

        ngx_http_apipolicy_sha256_short(block, p - block,
                                        ctx->idempotency->key);
        return NGX_OK;
    }

    ngx_http_apipolicy_sha_init(&md, NGX_HTTP_APIPOLICY_SHA256);
    ngx_http_apipolicy_idempotency_hash2(&md, &scope, '\n', &key);
    ngx_http_apipolicy_sha_final(&md, ctx->idempotency->key);

    return NGX_OK;

invalid:

    return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_BAD_REQUEST,
                                     &ngx_http_apipolicy_idempotency_invalid,
                                     NGX_LOG_INFO, detail);
}


/*
 * An sf-string and its parameters (RFC 8941 3.3.3, 3.1.2): the string
 * unescaped into buf (NGX_HTTP_APIPOLICY_IDEMPOTENCY_KEY_MAX bytes); its
 * length, KEY_MAX + 1 when longer, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_apipolicy_idempotency_sf_string(ngx_str_t *value, u_char *buf)
{
    u_char      *p, *last, c;
    ngx_uint_t   n;

    p = value->data + 1;
    last = value->data + value->len;

    for (n = 0; /* void */ ; n++) {

        if (p == last) {
            return NGX_ERROR;               /* not closed */
        }

        c = *p++;

        if (c == '"') {
            break;
        }

        if (c == '\\') {
            if (p == last || (*p != '"' && *p != '\\')) {
                return NGX_ERROR;
            }

            c = *p++;

        } else if (c < 0x20 || c > 0x7e) {
            return NGX_ERROR;
        }

        if (n == NGX_HTTP_APIPOLICY_IDEMPOTENCY_KEY_MAX) {
            return NGX_HTTP_APIPOLICY_IDEMPOTENCY_KEY_MAX + 1;
        }

        buf[n] = c;
    }

    /* *( ";" *SP key [ "=" bare-item ] ), read and ignored */

    while (p < last) {

        if (*p++ != ';') {
            return NGX_ERROR;
        }

        while (p < last && *p == ' ') {
            p++;
        }

        if (p == last || !((*p >= 'a' && *p <= 'z') || *p == '*')) {
            return NGX_ERROR;
        }

        while (p < last
               && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                   || *p == '_' || *p == '-' || *p == '.' || *p == '*'))
        {
            p++;
        }

        if (p == last || *p == ';') {
            continue;                       /* a boolean true */
        }

        if (*p++ != '=' || p == last) {
            return NGX_ERROR;
        }

        p = ngx_http_apipolicy_idempotency_sf_bare(p, last);

        if (p == NULL) {
            return NGX_ERROR;
        }
    }

    return n;
}


/* past an sf bare-item (integer, decimal, string, token, bytes, boolean) */

#define ngx_http_apipolicy_idempotency_alpha(c)                              \
    (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')
#define ngx_http_apipolicy_idempotency_alnum(c)                              \
    (ngx_http_apipolicy_idempotency_alpha(c) || ((c) >= '0' && (c) <= '9'))

static u_char *
ngx_http_apipolicy_idempotency_sf_bare(u_char *p, u_char *last)
{
    u_char  *start;

    start = p;

    switch (*p) {

    case '"':
        for (p++; p < last && *p != '"'; p++) {
            if (*p == '\\') {
                p++;
            }
        }

        return (p < last) ? p + 1 : NULL;

    case '?':
        return (p + 1 < last && (p[1] == '0' || p[1] == '1')) ? p + 2 : NULL;

    case ':':
        for (p++; p < last && *p != ':'; p++) {
            if (!(ngx_http_apipolicy_idempotency_alnum(*p)
                  || *p == '+' || *p == '/' || *p == '='))
            {
                return NULL;
            }
        }

        return (p < last) ? p + 1 : NULL;
    }

    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        for (p++; p < last && ((*p >= '0' && *p <= '9') || *p == '.'); p++) {
            /* void */
        }

        return (p - start > 1 || *start != '-') ? p : NULL;
    }

    if (!(ngx_http_apipolicy_idempotency_alpha(*p) || *p == '*')) {
        return NULL;
    }

    /* a token: tchar / ":" / "/" */

    for (p++; p < last; p++) {
        if (!(ngx_http_apipolicy_idempotency_alnum(*p)
              || (*p > 0x20 && ngx_strchr("!#$%&'*+-.^_`|~:/", *p))))
        {
            break;
        }
    }

    return p;
}


/* the body is read: fingerprint it and look the key up */

static ngx_int_t
ngx_http_apipolicy_idempotency_decide(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_int_t                              rc;
    ngx_pool_cleanup_t                    *cln;
    ngx_http_apipolicy_idempotency_ctx_t  *ictx;
    ngx_http_apipolicy_idempotency_node_t *in;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    ictx = ctx->idempotency;
    zone = icf->zone;

    ngx_http_apipolicy_shm_prefetch_back(&zone->shm);

    if (ngx_http_apipolicy_idempotency_fingerprint(r, ictx) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "apipolicy: the request body could not be read for "
                      "its fingerprint");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_shmtx_lock(&zone->shm.shpool->mutex);

    ngx_http_apipolicy_shm_expire(&zone->shm, 2);

    in = (ngx_http_apipolicy_idempotency_node_t *)
             ngx_http_apipolicy_shm_find(&zone->shm, ictx->key);

    if (in) {
        /* unlocks */
        return ngx_http_apipolicy_idempotency_known(r, ctx, in);
    }

    rc = ngx_http_apipolicy_idempotency_first(r, ctx);     /* unlocks */

    if (rc != NGX_OK) {
        return rc;
    }

    cln->handler = ngx_http_apipolicy_idempotency_cleanup;
    cln->data = ictx;

    ngx_http_apipolicy_idempotency_lease_start(ictx);

    if (zone->redis) {
        /* the other gateways may know the key */
        return ngx_http_apipolicy_idempotency_redis_claim(r, ictx);
    }

    return NGX_DECLINED;
}


/* SHA-256 of the method, the request target and the body */

static ngx_int_t
ngx_http_apipolicy_idempotency_fingerprint(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    u_char                   *p, block[2 * 64];
    ngx_buf_t                *b;
    ngx_chain_t              *cl;
    ngx_http_apipolicy_sha_t  md;

    /* short (a small body in memory): the bytes in one or two blocks */

    if (r->method_name.len + 1 + r->unparsed_uri.len + 1
        <= NGX_HTTP_APIPOLICY_SHA256_SHORT)
    {
        p = ngx_http_apipolicy_idempotency_join(block, &r->method_name, ' ',
                                                &r->unparsed_uri);
        *p++ = '\n';

        for (cl = r->request_body ? r->request_body->bufs : NULL;
             cl;
             cl = cl->next)
        {
            b = cl->buf;

            if (!ngx_buf_in_memory(b)) {
                if (b->in_file && b->file) {
                    goto stream;
                }

                continue;
            }

            if ((size_t) (b->last - b->pos)
                > NGX_HTTP_APIPOLICY_SHA256_SHORT - (size_t) (p - block))
            {
                goto stream;
            }

            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }

        ngx_http_apipolicy_sha256_short(block, p - block, ictx->fp);

        return NGX_OK;
    }

stream:

    ngx_http_apipolicy_sha_init(&md, NGX_HTTP_APIPOLICY_SHA256);
    ngx_http_apipolicy_idempotency_hash2(&md, &r->method_name, ' ',
                                         &r->unparsed_uri);
    ngx_http_apipolicy_sha_update(&md, "\n", 1);

    if (ngx_http_apipolicy_request_body_feed(r,
                                             ngx_http_apipolicy_digest_feed,
                                             &md)
        != NGX_OK)
    {
        ngx_http_apipolicy_sha_clear(&md);
        return NGX_ERROR;
    }

    ngx_http_apipolicy_sha_final(&md, ictx->fp);

    return NGX_OK;
}


/*
 * The first request with this key (the zone locked, unlocked here): an
 * entry in flight until answered, NGX_OK; or 503 when every entry is in
 * flight or locked and none can be evicted.
 */

static ngx_int_t
ngx_http_apipolicy_idempotency_first(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_str_t                              detail;
    ngx_uint_t                             full;
    ngx_http_apipolicy_idempotency_ctx_t  *ictx;
    ngx_http_apipolicy_idempotency_node_t *in;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    ictx = ctx->idempotency;
    zone = ictx->zone;

    in = (ngx_http_apipolicy_idempotency_node_t *)
             ngx_http_apipolicy_shm_insert(&zone->shm, ictx->key,
                              sizeof(ngx_http_apipolicy_idempotency_node_t),
                              ngx_time() + zone->lease);

    full = zone->shm.sh->full;
    zone->shm.sh->full = (in == NULL);

    if (in) {
        ngx_memcpy(in->fp, ictx->fp, 32);
        in->state = NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT;
        in->pinned = 1;
    }

    ngx_shmtx_unlock(&zone->shm.shpool->mutex);

    if (in && full) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "apipolicy: the idempotency zone \"%V\" has room "
                      "for new keys again", &zone->shm.name);
    }

    if (in) {
        ictx->node = in;
        ictx->owner = 1;
        ictx->decision = NGX_HTTP_APIPOLICY_IDEMPOTENCY_CAPTURE;
        ictx->request = r;

        return NGX_OK;
    }

    if (!full) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "apipolicy: the idempotency zone \"%V\" is "
                      "full of keys in flight, none can be evicted: "
                      "new keys get 503 until one is answered",
                      &zone->shm.name);
    }

    ictx->retry = 1;

    ngx_str_set(&detail, "no room for another key in flight; retry later");

    return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 &ngx_http_apipolicy_idempotency_unavailable,
                                 NGX_LOG_INFO, &detail);
}


/*
 * A key the zone knows (the zone locked, unlocked here): 409 while in
 * flight or locked, 422 for another request, else the kept response is
 * copied out to be replayed.
 */

static ngx_int_t
ngx_http_apipolicy_idempotency_known(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_http_apipolicy_idempotency_node_t *in)
{
    u_char                                *blob;
    ngx_str_t                              detail;
    ngx_uint_t                             locked;
    ngx_http_apipolicy_idempotency_ctx_t  *ictx;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    ictx = ctx->idempotency;
    zone = ictx->zone;

    if (in->state != NGX_HTTP_APIPOLICY_IDEMPOTENCY_DONE) {
        locked = (in->state == NGX_HTTP_APIPOLICY_IDEMPOTENCY_LOCKED);
        ictx->retry = locked ? (ngx_uint_t) ((time_t) in->expires - ngx_time())
                             : 1;

        ngx_shmtx_unlock(&zone->shm.shpool->mutex);

        if (locked) {
            ngx_str_set(&detail, "the outcome of the first request with "
                                 "this key is unknown; the key is locked "
                                 "until its lease ends");
        } else {
            ngx_str_set(&detail, "the first request with this key has not "
                                 "been answered yet; retry later");
        }

        return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_CONFLICT,
                                      &ngx_http_apipolicy_idempotency_in_use,
                                      NGX_LOG_INFO, &detail);
    }

    if (ngx_memcmp(in->fp, ictx->fp, 32) != 0) {
        ngx_shmtx_unlock(&zone->shm.shpool->mutex);

        ngx_str_set(&detail, "this key was used with another method, target "
                             "or body");
        return ngx_http_apipolicy_reject(r, ctx,
                                      NGX_HTTP_APIPOLICY_UNPROCESSABLE,
                                      &ngx_http_apipolicy_idempotency_reused,
                                      NGX_LOG_INFO, &detail);
    }

    /* a replay: copy the stored response out of the zone */

    blob = ngx_pnalloc(r->pool, in->hlen + in->blen + 1);
    if (blob == NULL) {
        ngx_shmtx_unlock(&zone->shm.shpool->mutex);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(blob, in->blob, in->hlen + in->blen);
    ictx->blob.data = blob;
    ictx->blob.len = in->hlen + in->blen;
    ictx->hlen = in->hlen;
    ictx->rstatus = in->status;

    ngx_shmtx_unlock(&zone->shm.shpool->mutex);

    ictx->decision = NGX_HTTP_APIPOLICY_IDEMPOTENCY_REPLAY;

    return NGX_DECLINED;
}


/* the stored response, as the upstream gave it, plus the replay marker */

static ngx_int_t
ngx_http_apipolicy_idempotency_replay(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    u_char           *p, *last, *colon, *eol;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_str_t         name, value;
    ngx_uint_t        location;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = ictx->rstatus;

    /* "Name: value\n" lines; Content-Type goes to its own field */

    p = ictx->blob.data;
    last = p + ictx->hlen;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        colon = ngx_strlchr(p, eol ? eol : last, ':');

        if (eol == NULL || colon == NULL) {
            break;
        }

        /* "=Location": nginx made the first one absolute, so again */

        location = (*p == '=');

        name.data = p + location;
        name.len = colon - name.data;
        value.data = colon + 2;
        value.len = eol - colon - 2;

        if (name.len == 12
            && ngx_strncasecmp(name.data, (u_char *) "Content-Type", 12) == 0)
        {
            r->headers_out.content_type = value;
            r->headers_out.content_type_len = value.len;

        } else {
            /*
             * a plain header, Location included, unless nginx itself had
             * made that Location absolute in the first answer
             */

            h = ngx_http_apipolicy_add_header(r, &name, &value);
            if (h == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (location) {
                r->headers_out.location = h;
            }
        }

        p = eol + 1;
    }

    ngx_str_set(&value, "true");

    if (ngx_http_apipolicy_add_header(r,
                                &ngx_http_apipolicy_idempotency_replayed,
                                &value)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.content_length_n = ictx->blob.len - ictx->hlen;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DONE;
    }

    b->pos = ictx->blob.data + ictx->hlen;
    b->last = ictx->blob.data + ictx->blob.len;
    b->memory = (b->last > b->pos);
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


ngx_uint_t
ngx_http_apipolicy_idempotency_outcome(ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_http_apipolicy_idempotency_ctx_t *ictx;

    ictx = ctx->idempotency;

    if (ictx == NULL) {
        return NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_NONE;
    }

    if (ictx->stored) {
        return NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_STORED;
    }

    if (ictx->blob.len
        && (ictx->decision == NGX_HTTP_APIPOLICY_IDEMPOTENCY_REPLAY
            || ictx->decision == NGX_HTTP_APIPOLICY_IDEMPOTENCY_PASS))
    {
        return NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_REPLAYED;
    }

    return NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_NONE;
}


/* $apipolicy_idempotency_status: STORED, REPLAYED, or not found */

ngx_int_t
ngx_http_apipolicy_idempotency_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                 outcome;
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_apipolicy_get_ctx(r->main);

    outcome = ctx ? ngx_http_apipolicy_idempotency_outcome(ctx)
                  : NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_NONE;

    if (outcome == NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (outcome == NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_STORED) {
        v->len = sizeof("STORED") - 1;
        v->data = (u_char *) "STORED";

    } else {
        v->len = sizeof("REPLAYED") - 1;
        v->data = (u_char *) "REPLAYED";
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/* ---- capture --------------------------------------------------------- */

/* headers a replay sets itself, or that belong to one connection */

static ngx_int_t
ngx_http_apipolicy_idempotency_hop(ngx_str_t *name)
{
    ngx_uint_t  i;

    static ngx_str_t  hop[] = {
        ngx_string("Content-Length"), ngx_string("Transfer-Encoding"),
        ngx_string("Connection"), ngx_string("Keep-Alive"),
        ngx_string("Date"), ngx_string("Server"),
        ngx_null_string
    };

    for (i = 0; hop[i].len; i++) {
        if (name->len == hop[i].len
            && ngx_strncasecmp(name->data, hop[i].data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_apipolicy_idempotency_header(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx)
{
    u_char                               *p;
    ngx_str_t                             value;
    ngx_http_apipolicy_idempotency_ctx_t *ictx;

    ictx = ctx->idempotency;

    if (ictx == NULL) {
        return NGX_OK;
    }

    if (ictx->retry
        && (r->headers_out.status == NGX_HTTP_CONFLICT
            || r->headers_out.status == NGX_HTTP_SERVICE_UNAVAILABLE))
    {
        /* 409 in flight or locked, 503 IDEMPOTENCY_UNAVAILABLE */

        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", ictx->retry) - p;

        return ngx_http_apipolicy_add_header(r,
                                        &ngx_http_apipolicy_idempotency_retry,
                                        &value)
               ? NGX_OK : NGX_ERROR;
    }

    if (ictx->decision == NGX_HTTP_APIPOLICY_IDEMPOTENCY_REPLAY
        || (ictx->decision == NGX_HTTP_APIPOLICY_IDEMPOTENCY_PASS
            && ictx->blob.len))
    {
        ctx->added |= NGX_HTTP_APIPOLICY_HDR_IDEMPOTENT;
        return NGX_OK;
    }

    if (ictx->decision != NGX_HTTP_APIPOLICY_IDEMPOTENCY_CAPTURE
        || !ictx->owner)
    {
        return NGX_OK;
    }

    /*
     * An answer nginx made itself (r->err_status: a timeout, an upstream
     * that broke off or could not be reached) says nothing of what the
     * upstream did once the request had reached it: the key stays locked.
     */

    if (r->err_status && ngx_http_apipolicy_idempotency_reached(r)) {
        ictx->unknown = (r->err_status == NGX_HTTP_GATEWAY_TIME_OUT)
                        ? "the upstream timed out"
                        : "the upstream failed after the request was sent";
        ngx_http_apipolicy_idempotency_lock(ictx);
        return NGX_OK;
    }

    /*
     * what is not worth keeping: server errors (unless keep=5xx: a 5xx the
     * upstream sent is then its answer, replayed), throttling, a refusal,
     * an upstream never reached
     */

    if ((r->headers_out.status >= 500
         && (!ictx->keep_5xx || r->err_status))
        || r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS
        || ctx->problem || r->header_only)
    {
        ngx_http_apipolicy_idempotency_release(ictx);
        return NGX_OK;
    }

    return ngx_http_apipolicy_idempotency_capture(r, ictx);
}


/* a header the replay leaves out: its own, one connection's, a cookie */

static ngx_uint_t
ngx_http_apipolicy_idempotency_skip(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx, ngx_table_elt_t *h)
{
    return ngx_strlchr(h->value.data, h->value.data + h->value.len, '\n')
           || ngx_http_apipolicy_idempotency_hop(&h->key)
           || (ictx->no_cookies && h->key.len == 10
               && ngx_strncasecmp(h->key.data, (u_char *) "Set-Cookie", 10)
                  == 0);
}


/*
 * The answer is to be kept: its headers are written where it will be
 * kept, and room made for its body, which the body filter copies there
 * as it passes.  A body of known length goes straight into the zone (one
 * copy); else into request memory, copied into the zone at the end.
 */

static ngx_int_t
ngx_http_apipolicy_idempotency_capture(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    u_char                                *p;
    size_t                                 hlen;
    ngx_table_elt_t                       *h;
    ngx_http_apipolicy_idempotency_zone_t *zone;
    ngx_http_apipolicy_header_iter_t       it;

    zone = ictx->zone;

    ngx_http_apipolicy_idempotency_unkeep(ictx);      /* headers sent again */
    ictx->len = 0;

    if (r->headers_out.content_length_n > (off_t) zone->max_body) {
        ictx->unknown = "the response is larger than max_body and not kept";
        ngx_http_apipolicy_idempotency_lock(ictx);
        return NGX_OK;
    }

    hlen = 0;

    if (r->headers_out.content_type.len) {
        hlen += sizeof("Content-Type: \n") - 1
                + r->headers_out.content_type.len;
    }

    ngx_memzero(&it, sizeof(ngx_http_apipolicy_header_iter_t));

    while ((h = ngx_http_apipolicy_header_each(&r->headers_out.headers, &it)))
    {
        if (!ngx_http_apipolicy_idempotency_skip(r, ictx, h)) {
            hlen += 1 + h->key.len + 2 + h->value.len + 1;
        }
    }

    /*
     * room for Content-Length when known, else it grows (a max_body
     * allocation per request would cost more than the rest of the
     * capture); a large answer of known length is written straight into
     * the zone, a small one (one copy cheaper than taking the zone's
     * lock once more) into the pool, and copied into the zone under the
     * lock the commit takes anyway
     */

    if (r->headers_out.content_length_n < 0) {
        ictx->size = ngx_min(4096, zone->max_body);

    } else {
        ictx->size = (size_t) r->headers_out.content_length_n;

        if (hlen + ictx->size + 1 > NGX_HTTP_APIPOLICY_IDEMPOTENCY_SMALL) {
            ngx_shmtx_lock(&zone->shm.shpool->mutex);

            ictx->kept = ngx_http_apipolicy_idempotency_spare(zone, ictx,
                                                      hlen + ictx->size + 1);

            if (ictx->kept == NULL) {
                ictx->kept = ngx_http_apipolicy_shm_alloc(&zone->shm,
                                                      hlen + ictx->size + 1);
            }

            ngx_shmtx_unlock(&zone->shm.shpool->mutex);

            ictx->in_zone = (ictx->kept != NULL);
        }
    }

    if (ictx->kept == NULL) {
        ictx->kept = ngx_pnalloc(r->pool, hlen + ictx->size + 1);
        if (ictx->kept == NULL) {
            return NGX_ERROR;
        }
    }

    p = ictx->kept;

    if (r->headers_out.content_type.len) {
        p = ngx_cpymem(p, "Content-Type: ", sizeof("Content-Type: ") - 1);
        p = ngx_cpymem(p, r->headers_out.content_type.data,
                       r->headers_out.content_type.len);
        *p++ = '\n';
    }

    ngx_memzero(&it, sizeof(ngx_http_apipolicy_header_iter_t));

    while ((h = ngx_http_apipolicy_header_each(&r->headers_out.headers, &it)))
    {
        if (ngx_http_apipolicy_idempotency_skip(r, ictx, h)) {
            continue;
        }

        if (h == r->headers_out.location && h->value.len
            && h->value.data[0] == '/')
        {
            *p++ = '=';     /* nginx makes it absolute: the replay too */
        }

        p = ngx_cpymem(p, h->key.data, h->key.len);
        *p++ = ':'; *p++ = ' ';
        p = ngx_cpymem(p, h->value.data, h->value.len);
        *p++ = '\n';
    }

    ictx->hlen = p - ictx->kept;
    ictx->rstatus = r->headers_out.status;

    /* the body is copied as it passes: ask for it in memory */

    r->filter_need_in_memory = 1;

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_idempotency_body(ngx_http_request_t *r,
    ngx_http_apipolicy_ctx_t *ctx, ngx_chain_t *in)
{
    u_char                               *kept;
    size_t                                n, size;
    ngx_chain_t                          *cl;
    ngx_http_apipolicy_idempotency_ctx_t *ictx;

    ictx = ctx->idempotency;

    if (ictx == NULL || !ictx->owner || ictx->kept == NULL || ictx->stored) {
        return NGX_OK;
    }

    for (cl = in; cl; cl = cl->next) {

        if (!ngx_buf_in_memory(cl->buf) && ngx_buf_size(cl->buf)) {
            ictx->unknown = "the response was not in memory, not kept";
            ngx_http_apipolicy_idempotency_lock(ictx);
            return NGX_OK;
        }

        n = ngx_buf_in_memory(cl->buf) ? (size_t) (cl->buf->last
                                                   - cl->buf->pos)
                                       : 0;

        if (ictx->len + n > ictx->zone->max_body
            || (ictx->in_zone && ictx->len + n > ictx->size))
        {
            ictx->unknown = "the response is larger than max_body and not "
                            "kept";
            ngx_http_apipolicy_idempotency_lock(ictx);
            return NGX_OK;
        }

        if (ictx->len + n > ictx->size) {
            size = ngx_min(ngx_max(ictx->size * 2, ictx->len + n),
                           ictx->zone->max_body);

            kept = ngx_pnalloc(r->pool, ictx->hlen + size + 1);
            if (kept == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(kept, ictx->kept, ictx->hlen + ictx->len);
            ictx->kept = kept;
            ictx->size = size;
        }

        if (n) {
            ngx_memcpy(ictx->kept + ictx->hlen + ictx->len, cl->buf->pos, n);
            ictx->len += n;
        }

        if (cl->buf->last_buf) {
            ngx_http_apipolicy_idempotency_commit(ictx);
            return NGX_OK;
        }
    }

    return NGX_OK;
}


/* the zone's memory taken for an answer that will not be kept */

static void
ngx_http_apipolicy_idempotency_unkeep(
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    if (ictx->in_zone) {
        ngx_slab_free(ictx->zone->shm.shpool, ictx->kept);
        ictx->in_zone = 0;
    }

    ictx->kept = NULL;
}


/* the whole response passed: keep it */

static void
ngx_http_apipolicy_idempotency_commit(
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    u_char                                *blob;
    size_t                                 len;
    ngx_uint_t                             locked;
    ngx_http_apipolicy_idempotency_node_t *in;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    zone = ictx->zone;
    len = ictx->hlen + ictx->len;

    ngx_http_apipolicy_idempotency_lease_stop(ictx);

    /*
     * the answer in the zone's memory: either it was written there, or
     * (its length unknown until now) it is copied there once; our entry
     * is pinned: room is made around it
     */

    locked = 0;

    if (ictx->in_zone) {
        blob = ictx->kept;

    } else {
        ngx_shmtx_lock(&zone->shm.shpool->mutex);

        blob = ngx_http_apipolicy_idempotency_spare(zone, ictx, len + 1);

        if (blob == NULL) {
            blob = ngx_http_apipolicy_shm_alloc(&zone->shm, len + 1);
        }

        if (blob && !ictx->redis_owner) {
            locked = 1;             /* kept locked: shared right below */

        } else {
            ngx_shmtx_unlock(&zone->shm.shpool->mutex);
        }
    }

    if (blob == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "apipolicy: no room in the idempotency zone \"%V\" "
                      "for a response of %uz bytes", &zone->shm.name, len);

        if (ictx->redis_owner) {
            ngx_http_apipolicy_idempotency_redis_update(ictx, 1);
        }

        ictx->unknown = "the response could not be kept";
        ngx_http_apipolicy_idempotency_lock(ictx);
        return;
    }

    if (blob != ictx->kept) {
        ngx_memcpy(blob, ictx->kept, len);
        ictx->kept = blob;
        ictx->in_zone = 1;
    }

    /* the other gateways get it from there, before it is shared here */

    if (ictx->redis_owner) {
        ngx_http_apipolicy_idempotency_redis_update(ictx, 1);
    }

    if (!locked) {
        ngx_shmtx_lock(&zone->shm.shpool->mutex);
    }

    in = ngx_http_apipolicy_idempotency_mine(zone, ictx);

    if (in == NULL || in->state != NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT) {
        ngx_slab_free_locked(zone->shm.shpool, blob);
        ngx_shmtx_unlock(&zone->shm.shpool->mutex);
        ictx->in_zone = 0;
        ictx->kept = NULL;
        ictx->owner = 0;
        return;
    }

    /*
     * a kept answer is the most recently used: the back of the LRU goes
     * first, not the answer of a long call just kept
     */

    ngx_http_apipolicy_shm_touch(&zone->shm,
                                 (ngx_http_apipolicy_hnode_t *) in);

    if (in->blob) {
        /* a spare: spare() took it or freed it, kept from leaking anyway */
        ngx_slab_free_locked(zone->shm.shpool, in->blob);
    }

    in->blob = blob;
    in->hlen = ictx->hlen;
    in->blen = ictx->len;
    in->status = (uint32_t) ictx->rstatus;
    in->state = NGX_HTTP_APIPOLICY_IDEMPOTENCY_DONE;
    in->pinned = 0;
    in->expires = (uint32_t) (ngx_time() + zone->ttl);

    ngx_shmtx_unlock(&zone->shm.shpool->mutex);

    ictx->in_zone = 0;          /* the entry's now */
    ictx->stored = 1;
    ictx->owner = 0;
}


/* the upstream did not act (or answered an error): the key is free again */

static void
ngx_http_apipolicy_idempotency_release(
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    ngx_http_apipolicy_idempotency_node_t *in;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    if (ictx->redis_owner) {
        ngx_http_apipolicy_idempotency_redis_update(ictx, 0);
    }

    ngx_http_apipolicy_idempotency_lease_stop(ictx);
    ngx_http_apipolicy_idempotency_unkeep(ictx);

    if (!ictx->owner) {
        return;
    }

    ictx->owner = 0;
    zone = ictx->zone;

    ngx_shmtx_lock(&zone->shm.shpool->mutex);

    in = ngx_http_apipolicy_idempotency_mine(zone, ictx);

    if (in && in->state == NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT) {
        ngx_http_apipolicy_shm_delete(&zone->shm,
                                      (ngx_http_apipolicy_hnode_t *) in);
    }

    ngx_shmtx_unlock(&zone->shm.shpool->mutex);
}


/*
 * What the upstream did is not known, or its answer is not kept: the key
 * stays locked for lease=, here and in Redis, so that no retry reaches
 * the upstream a second time before then.
 */

static void
ngx_http_apipolicy_idempotency_lock(ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    time_t                                 lease;
    ngx_http_apipolicy_idempotency_node_t *in;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    ngx_http_apipolicy_idempotency_lease_stop(ictx);
    ngx_http_apipolicy_idempotency_unkeep(ictx);

    if (!ictx->owner) {
        return;
    }

    ictx->owner = 0;
    zone = ictx->zone;
    lease = zone->lease;

    if (ictx->redis_owner) {
        ngx_http_apipolicy_idempotency_redis_extend(ictx);
        ictx->redis_owner = 0;
    }

    ngx_shmtx_lock(&zone->shm.shpool->mutex);

    in = ngx_http_apipolicy_idempotency_mine(zone, ictx);

    if (in && in->state == NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT) {
        in->state = NGX_HTTP_APIPOLICY_IDEMPOTENCY_LOCKED;
        in->expires = (uint32_t) (ngx_time() + lease);
    }

    ngx_shmtx_unlock(&zone->shm.shpool->mutex);

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "apipolicy: %s; its Idempotency-Key stays locked for "
                  "lease=%Ts of the idempotency zone \"%V\"",
                  ictx->unknown ? ictx->unknown : "the request ended early",
                  lease, &zone->shm.name);
}


/*
 * While the upstream runs, its lease is renewed here and in Redis every
 * lease=/3: the worker's requests in flight are in one list, walked by
 * one timer every 250 ms while the list is not empty (no timer per
 * request).
 */

static void
ngx_http_apipolicy_idempotency_lease_start(
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    ngx_event_t  *ev;

    ev = &ngx_http_apipolicy_idempotency_renew_ev;

    if (ev->handler == NULL) {
        ngx_queue_init(&ngx_http_apipolicy_idempotency_owned);
        ngx_http_apipolicy_idempotency_renew_conn.fd = (ngx_socket_t) -1;
        /* for the log */
        ev->data = &ngx_http_apipolicy_idempotency_renew_conn;
        ev->handler = ngx_http_apipolicy_idempotency_lease_renew;
        ev->log = ngx_cycle->log;
        ev->cancelable = 1;
    }

    ictx->renew = ngx_current_msec + ictx->zone->lease * 1000 / 3 + 1;
    ngx_queue_insert_tail(&ngx_http_apipolicy_idempotency_owned, &ictx->owned);

    if (!ev->timer_set) {
        ngx_add_timer(ev, 250);
    }
}


static void
ngx_http_apipolicy_idempotency_lease_stop(
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    if (ictx->renew) {
        ngx_queue_remove(&ictx->owned);
        ictx->renew = 0;
    }
}


static void
ngx_http_apipolicy_idempotency_lease_renew(ngx_event_t *ev)
{
    time_t                                 now;
    ngx_queue_t                           *q;
    ngx_msec_int_t                         due;
    ngx_http_apipolicy_idempotency_ctx_t  *ictx;
    ngx_http_apipolicy_idempotency_node_t *in;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    now = ngx_time();

    for (q = ngx_queue_head(&ngx_http_apipolicy_idempotency_owned);
         q != ngx_queue_sentinel(&ngx_http_apipolicy_idempotency_owned);
         q = ngx_queue_next(q))
    {
        ictx = ngx_queue_data(q, ngx_http_apipolicy_idempotency_ctx_t, owned);

        due = (ngx_msec_int_t) (ictx->renew - ngx_current_msec);

        if (due > 0) {
            continue;
        }

        zone = ictx->zone;
        ictx->renew = ngx_current_msec + zone->lease * 1000 / 3 + 1;

        ngx_shmtx_lock(&zone->shm.shpool->mutex);

        in = ngx_http_apipolicy_idempotency_mine(zone, ictx);

        if (in && in->state == NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT) {
            in->expires = (uint32_t) (now + zone->lease);
        }

        ngx_shmtx_unlock(&zone->shm.shpool->mutex);

        if (ictx->redis_owner) {
            ngx_http_apipolicy_idempotency_redis_extend(ictx);
        }
    }

    if (!ngx_queue_empty(&ngx_http_apipolicy_idempotency_owned)) {
        ngx_add_timer(ev, 250);
    }
}


/* an upstream was sent (some of) the request */

static ngx_uint_t
ngx_http_apipolicy_idempotency_reached(ngx_http_request_t *r)
{
    ngx_uint_t                  i;
    ngx_http_upstream_state_t  *state;

    if (r->upstream && r->upstream->request_sent) {
        return 1;
    }

    if (r->upstream_states == NULL) {
        return 0;
    }

    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {
        if (state[i].bytes_sent) {
            return 1;
        }
    }

    return 0;
}


/*
 * The location's content handler (proxy_pass, ...), then: a client that
 * goes away no longer stops the upstream (as proxy_ignore_client_abort
 * on), so that its answer is still kept for the retry.
 */

static ngx_int_t
ngx_http_apipolicy_idempotency_content(ngx_http_request_t *r)
{
    ngx_int_t                             rc;
    ngx_http_apipolicy_ctx_t             *ctx;
    ngx_http_apipolicy_idempotency_ctx_t *ictx;

    ctx = ngx_http_apipolicy_get_ctx(r);
    ictx = ctx ? ctx->idempotency : NULL;

    if (ictx == NULL || ictx->content == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;      /* cannot happen */
    }

    rc = ictx->content(r);

    if (ictx->owner && r->upstream && !r->upstream->header_sent
        && !r->upstream->store && !r->upstream->conf->ignore_client_abort)
    {
        r->read_event_handler = ngx_http_block_reading;
        r->write_event_handler = ngx_http_request_empty_handler;
    }

    return rc;
}


static void
ngx_http_apipolicy_idempotency_cleanup(void *data)
{
    ngx_http_apipolicy_idempotency_ctx_t *ictx = data;

    ngx_http_request_t  *r;

    if (ictx->op) {
        ictx->op->ictx = NULL;          /* its answer finds nobody */
        ictx->op = NULL;
    }

    if (!ictx->owner) {
        ngx_http_apipolicy_idempotency_lease_stop(ictx);
        return;
    }

    /* the request ended before its response passed whole */

    r = ictx->request;

    if (!ictx->reached && !ngx_http_apipolicy_idempotency_reached(r)) {
        ngx_http_apipolicy_idempotency_release(ictx);   /* no upstream saw it */
        return;
    }

    if (ictx->unknown == NULL) {
        ictx->unknown = (r->connection->error
                         || r->headers_out.status
                            == NGX_HTTP_CLIENT_CLOSED_REQUEST)
                        ? "the client went away before the response was "
                          "kept"
                        : "the request ended before the response was kept";
    }

    ngx_http_apipolicy_idempotency_lock(ictx);
}


/* ---- Redis: the keys of all gateways --------------------------------- */

/* "PREFIXidem:" and the entry key in hex */

static u_char *
ngx_http_apipolicy_idempotency_redis_key(u_char *p,
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    ngx_str_t  *prefix;

    prefix = ngx_http_apipolicy_redis_prefix(ngx_http_apipolicy_idempotency_rd);

    p = ngx_cpymem(p, prefix->data, prefix->len);
    p = ngx_cpymem(p, "idem:", 5);

    return ngx_hex_dump(p, ictx->key, 32);
}


/* a key this gateway does not know: claim it, or learn its state */

static ngx_int_t
ngx_http_apipolicy_idempotency_redis_claim(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    u_char     *p, token[8];
    u_char      key[NGX_HTTP_APIPOLICY_IDEMPOTENCY_REDIS_KEY_LEN];
    u_char      px[NGX_TIME_T_LEN + 4];
    ngx_int_t   rc;
    ngx_str_t   argv[6];
    ngx_uint_t  argc;

    /*
     * the value if there is one, else our claim: a Redis that refuses
     * writes (maxmemory) still tells a key in flight or kept
     */

    static ngx_str_t  claim = ngx_string(
        "local v = redis.call('GET', KEYS[1]) "
        "if v then return v end "
        "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
        "return false");

    if (ngx_http_apipolicy_idempotency_rd == NULL) {
        return NGX_DECLINED;                /* not a worker */
    }

    if (RAND_bytes(token, sizeof(token)) != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ictx->claim;
    *p++ = 'i';
    p = ngx_hex_dump(p, ictx->fp, 32);
    ngx_hex_dump(p, token, sizeof(token));

    argc = ngx_http_apipolicy_idempotency_on_claim(argv, &claim, key, px,
                                                   ictx);
    ictx->request = r;

    rc = ngx_http_apipolicy_idempotency_op(argv, argc, &argv[3], ictx);

    if (rc == NGX_DECLINED) {
        /* Redis is away and not tried again yet */
        return ngx_http_apipolicy_idempotency_redis_failed(r, ictx, NULL, 0);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_AGAIN;
}


/* what Redis said of the key: go on, refuse, or replay its response */

static ngx_int_t
ngx_http_apipolicy_idempotency_redis_answer(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx, redisReply *reply)
{
    u_char                    *p, *last, *blob, fp[64];
    size_t                     hlen, len;
    ngx_int_t                  status;
    ngx_str_t                  detail;
    ngx_http_apipolicy_ctx_t  *ctx;

    ctx = ngx_http_apipolicy_get_ctx(r);

    if (reply == NULL) {
        return ngx_http_apipolicy_idempotency_redis_failed(r, ictx, NULL, 0);
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ictx->redis_owner = 1;              /* the first, everywhere */
        return NGX_DECLINED;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_apipolicy_idempotency_redis_failed(r, ictx, reply, 0);
    }

    if (reply->type != REDIS_REPLY_STRING || reply->len < 1 + 64) {
        return ngx_http_apipolicy_idempotency_redis_failed(r, ictx, NULL, 1);
    }

    p = (u_char *) reply->str;
    last = p + reply->len;

    ngx_hex_dump(fp, ictx->fp, 32);

    /* the key is another gateway's: this one's entry goes */

    ngx_http_apipolicy_idempotency_release(ictx);

    if (p[0] == 'i') {
        ictx->retry = 1;
        ngx_str_set(&detail, "the first request with this key has not been "
                             "answered yet; retry later");
        return ngx_http_apipolicy_reject(r, ctx, NGX_HTTP_CONFLICT,
                                         &ngx_http_apipolicy_idempotency_in_use,
                                         NGX_LOG_INFO, &detail);
    }

    if (p[0] != 'd' || reply->len < 1 + 64 + 3 + 2) {
        return ngx_http_apipolicy_idempotency_redis_failed(r, ictx, NULL, 1);
    }

    if (ngx_strncasecmp(p + 1, fp, 64) != 0) {
        ngx_str_set(&detail, "this key was used with another method, target "
                             "or body");
        return ngx_http_apipolicy_reject(r, ctx,
                                         NGX_HTTP_APIPOLICY_UNPROCESSABLE,
                                         &ngx_http_apipolicy_idempotency_reused,
                                         NGX_LOG_INFO, &detail);
    }

    /* "d" FP STATUS(3) HLEN "\n" HEADERS BODY */

    p += 1 + 64;
    status = ngx_atoi(p, 3);
    p += 3;

    for (hlen = 0; p < last && *p >= '0' && *p <= '9'; p++) {
        hlen = hlen * 10 + (*p - '0');

        if (hlen > (size_t) (last - p)) {
            break;
        }
    }

    if (status < 200 || status > 599 || p == last || *p != '\n'
        || hlen > (size_t) (last - p - 1))
    {
        return ngx_http_apipolicy_idempotency_redis_failed(r, ictx, NULL, 1);
    }

    p++;
    len = last - p;

    blob = ngx_pnalloc(r->pool, len + 1);
    if (blob == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(blob, p, len);
    ictx->blob.data = blob;
    ictx->blob.len = len;
    ictx->hlen = hlen;
    ictx->rstatus = status;
    ictx->decision = NGX_HTTP_APIPOLICY_IDEMPOTENCY_REPLAY;

    return NGX_DECLINED;
}


/* no answer, or one that makes no sense: redis_fail= decides */

static ngx_int_t
ngx_http_apipolicy_idempotency_redis_failed(ngx_http_request_t *r,
    ngx_http_apipolicy_idempotency_ctx_t *ictx, redisReply *error,
    ngx_uint_t foreign)
{
    ngx_str_t  detail;

    /* no answer at all: the Redis connection said so, once */

    if (error) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "apipolicy: Redis refused the idempotency claim: %*s",
                      (size_t) error->len, error->str);

    } else if (foreign) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "apipolicy: Redis holds a value for this idempotency "
                      "key that apipolicy did not write; it is not replayed");
    }

    if (!ictx->zone->fail_closed) {
        return NGX_DECLINED;                /* this gateway's zone alone */
    }

    ngx_http_apipolicy_idempotency_release(ictx);
    ictx->retry = 1;

    ngx_str_set(&detail, "the store of idempotency keys shared by the "
                         "gateways cannot be reached; retry later");

    return ngx_http_apipolicy_reject(r, ngx_http_apipolicy_get_ctx(r),
                                 NGX_HTTP_SERVICE_UNAVAILABLE,
                                 &ngx_http_apipolicy_idempotency_unavailable,
                                 NGX_LOG_WARN, &detail);
}


/*
 * Our claim ends: commit writes the kept response over it for ttl=,
 * else it is deleted; either only while the value is still our claim.
 */

static void
ngx_http_apipolicy_idempotency_redis_update(
    ngx_http_apipolicy_idempotency_ctx_t *ictx, ngx_uint_t commit)
{
    static ngx_str_t  del = ngx_string(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "return redis.call('DEL', KEYS[1]) end "
        "return 0");

    ictx->redis_owner = 0;

    if (ngx_http_apipolicy_idempotency_rd == NULL) {
        return;
    }

    if (commit) {
        ngx_http_apipolicy_idempotency_redis_commit(ictx);
        return;
    }

    ngx_http_apipolicy_idempotency_claim_send(ictx, &del, 0);
}


/*
 * The kept response over our claim: "d" FP STATUS HLEN "\n" and the kept
 * headers and body, written into the command once, as its sixth
 * argument; with it, should Redis refuse it, our claim extended.
 */

static void
ngx_http_apipolicy_idempotency_redis_commit(
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    u_char                                   *p, *q;
    u_char                   key[NGX_HTTP_APIPOLICY_IDEMPOTENCY_REDIS_KEY_LEN];
    u_char                                    px[NGX_TIME_T_LEN + 4];
    u_char                                    lease[NGX_TIME_T_LEN + 4];
    u_char                                    head[1 + 64 + 3
                                                   + NGX_SIZE_T_LEN + 1];
    size_t                                    len, size;
    ngx_str_t                                 argv[7], ext[6];
    ngx_uint_t                                i;
    ngx_http_apipolicy_idempotency_commit_t  *c;

    static ngx_str_t  set = ngx_string(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end "
        "return 0");
    static ngx_str_t  extend = ngx_http_apipolicy_idempotency_extend;

    head[0] = 'd';
    p = ngx_hex_dump(head + 1, ictx->fp, 32);
    p = ngx_sprintf(p, "%03ui%uz\n", ictx->rstatus, ictx->hlen);

    (void) ngx_http_apipolicy_idempotency_on_claim(argv, &set, key, NULL,
                                                   ictx);
    argv[5].data = head;
    argv[5].len = p - head + ictx->hlen + ictx->len;
    argv[6].data = px;
    argv[6].len = ngx_sprintf(px, "%T", ictx->zone->ttl * 1000) - px;

    (void) ngx_http_apipolicy_idempotency_on_claim(ext, &extend, key, lease,
                                                   ictx);

    size = ngx_http_apipolicy_redis_command_len(argv, 7);
    len = ngx_http_apipolicy_redis_command_len(ext, 6);

    c = ngx_calloc(sizeof(ngx_http_apipolicy_idempotency_commit_t) + size
                   + len + argv[3].len, ngx_cycle->log);
    if (c == NULL) {
        return;
    }

    c->zone = ictx->zone;
    c->size = size + len;

    /* the arguments, the value's head and the kept answer in place */

    q = (u_char *) (c + 1);
    c->set.cmd.data = q;

    q = ngx_sprintf(q, "*7\r\n");

    for (i = 0; i < 7; i++) {
        q = ngx_sprintf(q, "$%uz\r\n", argv[i].len);

        if (i == 5) {
            q = ngx_cpymem(q, head, p - head);
            q = ngx_cpymem(q, ictx->kept, ictx->hlen + ictx->len);

        } else {
            q = ngx_cpymem(q, argv[i].data, argv[i].len);
        }

        *q++ = CR; *q++ = LF;
    }

    c->set.cmd.len = q - c->set.cmd.data;
    c->extend.cmd.data = q;
    c->extend.cmd.len = ngx_http_apipolicy_redis_command(c->extend.cmd.data,
                                                         ext, 6)
                        - c->extend.cmd.data;
    c->set.key.data = c->extend.cmd.data + c->extend.cmd.len;
    c->set.key.len = argv[3].len;
    ngx_memcpy(c->set.key.data, argv[3].data, argv[3].len);
    c->extend.key = c->set.key;

    c->ev.handler = ngx_http_apipolicy_idempotency_commit_retry;
    c->ev.data = c;
    c->ev.log = ngx_cycle->log;
    c->ev.cancelable = 1;

    ngx_http_apipolicy_idempotency_commit_send(c);
}


static void
ngx_http_apipolicy_idempotency_commit_send(
    ngx_http_apipolicy_idempotency_commit_t *c)
{
    ngx_int_t  rc;
    ngx_str_t  reason;

    rc = ngx_http_apipolicy_redis_send(ngx_http_apipolicy_idempotency_rd,
                                &c->set, 1,
                                ngx_http_apipolicy_idempotency_commit_done,
                                c);
    if (rc == NGX_OK) {
        return;
    }

    ngx_str_set(&reason, "Redis cannot be reached");
    ngx_http_apipolicy_idempotency_commit_failed(c, &reason);
}


static void
ngx_http_apipolicy_idempotency_commit_retry(ngx_event_t *ev)
{
    ngx_http_apipolicy_idempotency_commit_send(ev->data);
}


/* Redis answered the response: kept, refused (tried again), or too late */

static void
ngx_http_apipolicy_idempotency_commit_done(void *data, redisReply **replies,
    ngx_uint_t n, ngx_int_t rc)
{
    ngx_http_apipolicy_idempotency_commit_t *c = data;

    ngx_str_t    reason;
    redisReply  *reply;

    reply = (rc == NGX_OK && n == 1) ? replies[0] : NULL;

    if (reply && reply->type == REDIS_REPLY_STATUS) {
        if (c->tries) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "apipolicy: a response of the idempotency zone "
                          "\"%V\" reached Redis after %ui more tries",
                          &c->zone->shm.name, c->tries);
        }

        ngx_http_apipolicy_idempotency_commit_free(c);
        return;
    }

    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "apipolicy: a response of the idempotency zone \"%V\" "
                      "was not written to Redis: the key's claim was no "
                      "longer this gateway's (its lease had ended)",
                      &c->zone->shm.name);
        ngx_http_apipolicy_idempotency_commit_free(c);
        return;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        reason.data = (u_char *) reply->str;
        reason.len = reply->len;

    } else {
        ngx_str_set(&reason, "no answer from Redis");
    }

    ngx_http_apipolicy_idempotency_commit_failed(c, &reason);
}


/*
 * The first refusal: said, with the reason, and the claim is extended
 * by lease= so that no other gateway calls the upstream meanwhile; tries
 * go on (250 ms, doubling to 5 s) until that lease ends.
 */

static void
ngx_http_apipolicy_idempotency_commit_failed(
    ngx_http_apipolicy_idempotency_commit_t *c, ngx_str_t *reason)
{
    time_t  now;

    now = ngx_time();

    if (c->tries == 0) {
        c->deadline = now + c->zone->lease;

        if (ngx_http_apipolicy_idempotency_pending + c->size
            > NGX_HTTP_APIPOLICY_IDEMPOTENCY_PENDING_MAX)
        {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "apipolicy: Redis refused to keep a response of the "
                          "idempotency zone \"%V\": %V; not tried again: "
                          "%uz bytes of responses already wait for Redis",
                          &c->zone->shm.name, reason,
                          ngx_http_apipolicy_idempotency_pending);
            ngx_http_apipolicy_idempotency_commit_free(c);
            return;
        }

        ngx_http_apipolicy_idempotency_pending += c->size;

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "apipolicy: Redis refused to keep a response of the "
                      "idempotency zone \"%V\": %V; tried again while the "
                      "key's claim lasts (lease=%Ts)",
                      &c->zone->shm.name, reason, c->zone->lease);

        (void) ngx_http_apipolicy_redis_send(
                                 ngx_http_apipolicy_idempotency_rd,
                                 &c->extend, 1,
                                 ngx_http_apipolicy_idempotency_redis_ignore,
                                 NULL);
    }

    if (now + (time_t) (c->delay / 1000) >= c->deadline) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "apipolicy: a response of the idempotency zone \"%V\" "
                      "never reached Redis (%V, %ui tries): its claim ends, "
                      "and a retry at another gateway may reach the upstream "
                      "again", &c->zone->shm.name, reason, c->tries + 1);
        ngx_http_apipolicy_idempotency_commit_free(c);
        return;
    }

    c->tries++;
    c->delay = c->delay ? ngx_min(c->delay * 2, 5000) : 250;

    ngx_add_timer(&c->ev, c->delay);
}


static void
ngx_http_apipolicy_idempotency_commit_free(
    ngx_http_apipolicy_idempotency_commit_t *c)
{
    if (c->tries) {
        ngx_http_apipolicy_idempotency_pending -= c->size;
    }

    if (c->ev.timer_set) {
        ngx_del_timer(&c->ev);
    }

    ngx_free(c);
}


static void
ngx_http_apipolicy_idempotency_redis_ignore(void *data, redisReply **replies,
    ngx_uint_t n, ngx_int_t rc)
{
}


/* our claim lives lease= more (the upstream runs, or its outcome is unknown) */

static void
ngx_http_apipolicy_idempotency_redis_extend(
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    static ngx_str_t  extend = ngx_http_apipolicy_idempotency_extend;

    if (ngx_http_apipolicy_idempotency_rd == NULL) {
        return;
    }

    ngx_http_apipolicy_idempotency_claim_send(ictx, &extend, 1);
}


/*
 * A command on our claim whose answer no request waits for (its release,
 * its extension by the lease when "lease")
 */

static void
ngx_http_apipolicy_idempotency_claim_send(
    ngx_http_apipolicy_idempotency_ctx_t *ictx, ngx_str_t *script,
    ngx_uint_t lease)
{
    u_char      key[NGX_HTTP_APIPOLICY_IDEMPOTENCY_REDIS_KEY_LEN];
    u_char      px[NGX_TIME_T_LEN + 4];
    ngx_str_t   argv[6];
    ngx_uint_t  argc;

    argc = ngx_http_apipolicy_idempotency_on_claim(argv, script, key,
                                                   lease ? px : NULL, ictx);

    if (ngx_http_apipolicy_idempotency_op(argv, argc, &argv[3], NULL)
        == NGX_ERROR)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "apipolicy: no memory for a Redis command of the "
                      "idempotency zone \"%V\"", &ictx->zone->shm.name);
    }
}


/*
 * EVAL SCRIPT 1 KEY CLAIM, how every command on our claim begins, in
 * argv[0] to argv[4] ("key": room for the Redis key); with "lease" (room
 * for a number) the lease in ms as argv[5]; the number of arguments
 */

static ngx_uint_t
ngx_http_apipolicy_idempotency_on_claim(ngx_str_t *argv, ngx_str_t *script,
    u_char *key, u_char *lease, ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    ngx_str_set(&argv[0], "EVAL");
    argv[1] = *script;
    ngx_str_set(&argv[2], "1");
    argv[3].data = key;
    argv[3].len = ngx_http_apipolicy_idempotency_redis_key(key, ictx) - key;
    argv[4].data = ictx->claim;
    argv[4].len = NGX_HTTP_APIPOLICY_IDEMPOTENCY_CLAIM_LEN;

    if (lease == NULL) {
        return 5;
    }

    argv[5].data = lease;
    argv[5].len = ngx_sprintf(lease, "%T", ictx->zone->lease * 1000) - lease;

    return 6;
}


/*
 * A command for this worker's Redis, in the queue shared by every area:
 * NGX_OK (the answer goes to "ictx", if any, when it comes), NGX_DECLINED
 * (Redis is away: no answer will come), NGX_ERROR.
 */

static ngx_int_t
ngx_http_apipolicy_idempotency_op(
    ngx_str_t *argv, ngx_uint_t argc, ngx_str_t *key,
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    ngx_int_t                            rc;
    ngx_http_apipolicy_idempotency_op_t *op;
    ngx_http_apipolicy_redis_cmd_t       cmd;

    op = ngx_alloc(sizeof(ngx_http_apipolicy_idempotency_op_t)
                   + ngx_http_apipolicy_redis_command_len(argv, argc),
                   ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    cmd.cmd.data = (u_char *) (op + 1);
    cmd.cmd.len = ngx_http_apipolicy_redis_command(cmd.cmd.data, argv, argc)
                  - cmd.cmd.data;
    cmd.key = *key;

    op->ictx = ictx;

    rc = ngx_http_apipolicy_redis_send(ngx_http_apipolicy_idempotency_rd,
                                &cmd, 1,
                                ngx_http_apipolicy_idempotency_redis_done,
                                op);

    if (rc != NGX_OK) {
        ngx_free(op);
        return rc;
    }

    if (ictx) {
        ictx->op = op;
    }

    return NGX_OK;
}


static void
ngx_http_apipolicy_idempotency_redis_done(void *data, redisReply **replies,
    ngx_uint_t n, ngx_int_t rc)
{
    ngx_http_apipolicy_idempotency_op_done(data, (rc == NGX_OK && n == 1)
                                          ? replies[0] : NULL);
}


/* an answer: the request waiting for it (if still there) goes on */

static void
ngx_http_apipolicy_idempotency_op_done(ngx_http_apipolicy_idempotency_op_t *op,
    redisReply *reply)
{
    ngx_connection_t                     *c;
    ngx_http_request_t                   *r;
    ngx_http_apipolicy_idempotency_ctx_t *ictx;

    ictx = op->ictx;
    ngx_free(op);

    if (ictx == NULL) {
        return;
    }

    ictx->op = NULL;
    r = ictx->request;
    c = r->connection;

    ictx->status = ngx_http_apipolicy_idempotency_redis_answer(r, ictx, reply);
    ictx->done = 1;

    ngx_http_apipolicy_resume(r);
    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_apipolicy_idempotency_init_process(ngx_cycle_t *cycle)
{
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_apipolicy_module);

    /* this worker's Redis, made by ngx_http_apipolicy_redis_init_process() */

    if (amcf->idempotency_redis) {
        ngx_http_apipolicy_idempotency_rd = ngx_http_apipolicy_redis_get(cycle);
    }

    return NGX_OK;
}


void
ngx_http_apipolicy_idempotency_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_apipolicy_idempotency_rd = NULL;
}


/* ---- the zone -------------------------------------------------------- */

/*
 * Our in-flight entry without a second lookup in an index that may hold
 * 100,000s of keys: the node made in decide() is ours if it still holds
 * our key and fingerprint in flight.  Had it been freed in the meantime
 * (its lease ran out), slab memory stays mapped, and a node reused for
 * the same key and payload is the one a lookup would find anyway.
 */

static ngx_http_apipolicy_idempotency_node_t *
ngx_http_apipolicy_idempotency_mine(ngx_http_apipolicy_idempotency_zone_t *zone,
    ngx_http_apipolicy_idempotency_ctx_t *ictx)
{
    ngx_http_apipolicy_idempotency_node_t *in;

    in = ictx->node;

    if (in
        && in->state == NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT
        && ngx_memcmp(in->key, ictx->key, 32) == 0
        && ngx_memcmp(in->fp, ictx->fp, 32) == 0)
    {
        return in;
    }

    return ngx_http_apipolicy_idempotency_find(zone, ictx->key);
}


/* what an entry holds besides its node: the kept response */

static void
ngx_http_apipolicy_idempotency_free(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn, ngx_uint_t reuse)
{
    u_char                                *blob;
    size_t                                 size;
    ngx_http_apipolicy_idempotency_node_t *in;

    /* the head of a node must be ngx_http_apipolicy_hnode_t's */

#define ngx_http_apipolicy_idempotency_same(field)                            \
    (offsetof(ngx_http_apipolicy_idempotency_node_t, field)                  \
     == offsetof(ngx_http_apipolicy_hnode_t, field))

    (void) sizeof(char[(ngx_http_apipolicy_idempotency_same(next)
                        && ngx_http_apipolicy_idempotency_same(pinned)
                        && ngx_http_apipolicy_idempotency_same(expires)
                        && ngx_http_apipolicy_idempotency_same(queue)
                        && ngx_http_apipolicy_idempotency_same(key))
                       ? 1 : -1]);

    in = (ngx_http_apipolicy_idempotency_node_t *) hn;

    size = 0;

    if (in->blob) {
        /*
         * in a full zone the next answer is most often written where
         * this one was: its first lines into the CPU's cache now, not
         * waited for by the commit's unlock
         */

        ngx_http_apipolicy_shm_hint(in->blob, 1);
        ngx_http_apipolicy_shm_hint(in->blob + 64, 1);

        size = (in->state == NGX_HTTP_APIPOLICY_IDEMPOTENCY_DONE)
               ? in->hlen + in->blen + 1 : in->hlen;

        if (!reuse || size > ngx_pagesize / 2) {
            ngx_slab_free_locked(shm->shpool, in->blob);
            in->blob = NULL;
        }
    }

    if (reuse) {
        /*
         * the node goes to the new key evicting this one: the answer's
         * slot goes with it, a spare that its commit takes when its
         * answer needs a slot of the same size (no search of the slab
         * allocator's bitmaps, no slot freed and taken again)
         */

        blob = in->blob;

        in->status = 0;
        ngx_memzero(in->fp, sizeof(in->fp));
        in->blob = blob;
        in->hlen = blob ? size : 0;
        in->blen = 0;
    }
}


/*
 * the spare slot our entry came with (free() above), when "size" bytes
 * take a slot of its size; a spare of another size is freed
 */

static u_char *
ngx_http_apipolicy_idempotency_spare(
    ngx_http_apipolicy_idempotency_zone_t *zone,
    ngx_http_apipolicy_idempotency_ctx_t *ictx, size_t size)
{
    u_char                                *blob;
    ngx_http_apipolicy_idempotency_node_t *in;

    in = ngx_http_apipolicy_idempotency_mine(zone, ictx);

    if (in == NULL
        || in->state != NGX_HTTP_APIPOLICY_IDEMPOTENCY_INFLIGHT
        || in->blob == NULL)
    {
        return NULL;
    }

    blob = in->blob;
    in->blob = NULL;

    if (ngx_http_apipolicy_shm_same_slot(size, in->hlen)) {
        return blob;
    }

    ngx_slab_free_locked(zone->shm.shpool, blob);

    return NULL;
}


/* ---- configuration --------------------------------------------------- */

/*
 * apipolicy_idempotency_zone NAME:SIZE [ttl=24h] [lease=5m] [max_body=1m]
 *                            [redis=on|off] [redis_fail=open|closed]
 */

char *
ngx_http_apipolicy_idempotency_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ssize_t                                size;
    ngx_str_t                             *value, name;
    ngx_uint_t                             i;
    ngx_shm_zone_t                        *shm_zone;
    ngx_http_apipolicy_main_conf_t        *amcf;
    ngx_http_apipolicy_idempotency_zone_t *zone;

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (ngx_http_apipolicy_conf_zone(cf, &value[1],
                                     "apipolicy_idempotency_zone idem:10m",
                                     &name, &size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_apipolicy_idempotency_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->ttl = 86400;
    zone->lease = NGX_HTTP_APIPOLICY_IDEMPOTENCY_LEASE;
    zone->max_body = 1024 * 1024;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_http_apipolicy_idempotency_zone_param(cf, zone, &value[i],
                                                      size)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    zone->file = cf->conf_file->file.name.data;
    zone->line = cf->conf_file->line;

    if (zone->max_body > (size_t) size / 2) {
        zone->max_body = (size_t) size / 2;
    }

    zone->shm.directive = "apipolicy_idempotency_zone";
    zone->shm.magic = NGX_HTTP_APIPOLICY_IDEMPOTENCY_MAGIC;
    zone->shm.free = ngx_http_apipolicy_idempotency_free;
    zone->shm.node = sizeof(ngx_http_apipolicy_idempotency_node_t);

    shm_zone = ngx_http_apipolicy_shm_add(cf, &name, size, &zone->shm);
    if (shm_zone == NULL
        || ngx_http_apipolicy_conf_list_add(cf, &amcf->idempotency_zones,
                                            shm_zone)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    amcf->used = 1;

    return NGX_CONF_OK;
}


/* a time parameter of at least 1s: "ttl=24h", "lease=5m" */

static ngx_int_t
ngx_http_apipolicy_idempotency_time(ngx_conf_t *cf, ngx_str_t *param,
    size_t skip, const char *example, time_t *t)
{
    ngx_str_t  s;

    s.data = param->data + skip;
    s.len = param->len - skip;

    *t = ngx_parse_time(&s, 1);

    if (*t == (time_t) NGX_ERROR || *t == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": %s", param, example);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* one parameter of apipolicy_idempotency_zone after NAME:SIZE */

static ngx_int_t
ngx_http_apipolicy_idempotency_zone_param(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_zone_t *zone, ngx_str_t *param,
    ssize_t size)
{
    ssize_t    n;
    ngx_str_t  s;

    s = *param;

    if (s.len > 4 && ngx_strncmp(s.data, "ttl=", 4) == 0) {
        return ngx_http_apipolicy_idempotency_time(cf, param, 4,
                                                   "a time, as in "
                                                   "\"ttl=24h\"",
                                                   &zone->ttl);
    }

    if (s.len > 6 && ngx_strncmp(s.data, "lease=", 6) == 0) {
        return ngx_http_apipolicy_idempotency_time(cf, param, 6,
                                                   "a time of at least 1s, "
                                                   "as in \"lease=5m\"",
                                                   &zone->lease);
    }

    if (s.len > 9 && ngx_strncmp(s.data, "max_body=", 9) == 0) {
        s.data += 9;
        s.len -= 9;

        n = ngx_parse_size(&s);

        if (n == NGX_ERROR || n == 0 || n > size / 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": a size, at most half "
                               "the zone", param);
            return NGX_ERROR;
        }

        zone->max_body = (size_t) n;
        return NGX_OK;
    }

    if (ngx_strcmp(s.data, "redis=on") == 0
        || ngx_strcmp(s.data, "redis") == 0)
    {
        zone->redis = 1;
        return NGX_OK;
    }

    if (ngx_strcmp(s.data, "redis=off") == 0) {
        zone->redis = 0;
        return NGX_OK;
    }

    if (ngx_strcmp(s.data, "redis_fail=open") == 0) {
        zone->fail_closed = 0;
        return NGX_OK;
    }

    if (ngx_strcmp(s.data, "redis_fail=closed") == 0) {
        zone->fail_closed = 1;
        return NGX_OK;
    }

    if (s.len > 6 && ngx_strncmp(s.data, "redis", 5) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": use \"redis=on\", "
                           "\"redis=off\", \"redis_fail=open\" or "
                           "\"redis_fail=closed\"", param);
        return NGX_ERROR;
    }

    ngx_http_apipolicy_conf_bad_param(cf, param,
                                      "ttl=, max_body=, redis= and "
                                      "redis_fail=");
    return NGX_ERROR;
}


/* apipolicy_idempotency zone=NAME [required] [methods=POST,PATCH]
 *                       [scope=$var] [keep=5xx] | off */

char *
ngx_http_apipolicy_idempotency(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_apipolicy_loc_conf_t  *alcf = conf;

    ngx_str_t                              *value;
    ngx_uint_t                              i;
    ngx_http_apipolicy_idempotency_conf_t  *icf;

    icf = &alcf->idempotency;

    if (icf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        icf->zone = NULL;
        return NGX_CONF_OK;
    }

    icf->zone = NULL;
    icf->methods = NGX_HTTP_POST|NGX_HTTP_PATCH;

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_apipolicy_idempotency_param(cf, icf, &value[i])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (icf->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"zone=\" is required, as in "
                           "\"apipolicy_idempotency zone=idem scope="
                           "$jwt_claim_sub;\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* one parameter of apipolicy_idempotency */

static ngx_int_t
ngx_http_apipolicy_idempotency_param(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_conf_t *icf, ngx_str_t *param)
{
    ngx_str_t                          s;
    ngx_shm_zone_t                    *zone;
    ngx_http_apipolicy_main_conf_t    *amcf;
    ngx_http_compile_complex_value_t   ccv;

    s = *param;

    if (s.len > 5 && ngx_strncmp(s.data, "zone=", 5) == 0) {
        s.data += 5;
        s.len -= 5;

        amcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_apipolicy_module);

        zone = ngx_http_apipolicy_conf_zone_find(cf, amcf->idempotency_zones,
                                                 &s, "idempotency",
                                                 "apipolicy_idempotency_zone");
        if (zone == NULL) {
            return NGX_ERROR;
        }

        icf->zone = zone->data;

        return NGX_OK;
    }

    if (ngx_strcmp(s.data, "required") == 0) {
        icf->required = 1;
        return NGX_OK;
    }

    if (s.len > 5 && ngx_strncmp(s.data, "keep=", 5) == 0) {
        if (ngx_strcmp(s.data + 5, "5xx") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": use \"keep=5xx\" (the "
                               "5xx answers the upstream sends are kept "
                               "and replayed)", param);
            return NGX_ERROR;
        }

        icf->keep_5xx = 1;
        return NGX_OK;
    }

    if (s.len > 8 && ngx_strncmp(s.data, "methods=", 8) == 0) {
        return ngx_http_apipolicy_idempotency_methods(cf, param,
                                                      &icf->methods);
    }

    if (s.len > 6 && ngx_strncmp(s.data, "scope=", 6) == 0) {
        s.data += 6;
        s.len -= 6;

        icf->scope = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (icf->scope == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &s;
        ccv.complex_value = icf->scope;

        return ngx_http_compile_complex_value(&ccv);
    }

    ngx_http_apipolicy_conf_bad_param(cf, param,
                                      "zone=, required, methods=, scope= and "
                                      "keep=");
    return NGX_ERROR;
}


/* methods=POST,PATCH,PUT,DELETE */

static ngx_int_t
ngx_http_apipolicy_idempotency_methods(ngx_conf_t *cf, ngx_str_t *param,
    ngx_uint_t *methods)
{
    u_char      *p, *last, *start;
    ngx_str_t    m;
    ngx_uint_t   n, bit;

    static struct {
        const char  *name;
        ngx_uint_t   bit;
    } known[] = {
        { "POST", NGX_HTTP_POST }, { "PATCH", NGX_HTTP_PATCH },
        { "PUT", NGX_HTTP_PUT }, { "DELETE", NGX_HTTP_DELETE },
        { NULL, 0 }
    };

    *methods = 0;
    p = param->data + 8;
    last = param->data + param->len;

    while (p < last) {
        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        m.data = start;
        m.len = p - start;
        bit = 0;

        for (n = 0; known[n].name; n++) {
            if (m.len == ngx_strlen(known[n].name)
                && ngx_strncasecmp(m.data, (u_char *) known[n].name, m.len)
                   == 0)
            {
                bit = known[n].bit;
            }
        }

        if (bit == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid method \"%V\" in \"%V\": use "
                               "POST, PATCH, PUT, DELETE", &m, param);
            return NGX_ERROR;
        }

        *methods |= bit;

        if (p < last) {
            p++;
        }
    }

    return NGX_OK;
}


void
ngx_http_apipolicy_idempotency_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_conf_t *conf)
{
    /*
     * set by ngx_pcalloc():
     *
     *     conf->methods = 0;
     *     conf->required = 0;
     *     conf->keep_5xx = 0;
     *     conf->scope = NULL;
     */

    conf->zone = NGX_CONF_UNSET_PTR;
}


/* all or nothing: a location without the directive takes its parent's */

char *
ngx_http_apipolicy_idempotency_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_idempotency_conf_t *prev,
    ngx_http_apipolicy_idempotency_conf_t *conf)
{
    if (conf->zone == NGX_CONF_UNSET_PTR) {
        *conf = *prev;
    }

    if (conf->zone == NGX_CONF_UNSET_PTR) {
        conf->zone = NULL;
    }

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_apipolicy_idempotency_phases(
    ngx_http_apipolicy_idempotency_conf_t *conf)
{
    return conf->zone ? NGX_HTTP_APIPOLICY_PRECONTENT : 0;
}


/*
 * After the http{} block: redis=on needs apipolicy_redis (which may come
 * later in the file); the zones share one more connection per worker,
 * made in init_process.
 */

ngx_int_t
ngx_http_apipolicy_idempotency_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                             i;
    ngx_shm_zone_t                       **zp;
    ngx_http_apipolicy_idempotency_zone_t *zone;
    ngx_http_apipolicy_main_conf_t        *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (amcf->idempotency_zones == NULL) {
        return NGX_OK;
    }

    zp = amcf->idempotency_zones->elts;

    for (i = 0; i < amcf->idempotency_zones->nelts; i++) {
        zone = zp[i]->data;

        if (!zone->redis) {
            continue;
        }

        if (amcf->redis == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "apipolicy_idempotency_zone \"%V\" has redis=on "
                          "but no apipolicy_redis tells where Redis is, "
                          "in %s:%ui", &zone->shm.name, zone->file, zone->line);
            return NGX_ERROR;
        }

        amcf->idempotency_redis = 1;
    }

    return NGX_OK;
}
