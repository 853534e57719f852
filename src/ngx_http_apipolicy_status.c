
/*
 * Copyright (C) apipolicy authors
 *
 * What the gateway did, for operators: counters in a small shared-memory
 * zone ("apipolicy_status", made whenever an apipolicy directive is
 * used), bumped once per request in the LOG phase from what the request
 * context holds (no area counts for itself), and the apipolicy_status
 * content handler that shows them with the zones, the JWKS fetches and
 * the Redis state, as JSON or as Prometheus text:
 *
 *   location = /apipolicy/status { apipolicy_status; allow 10.0.0.0/8;
 *                                  deny all; }
 *   location = /metrics { apipolicy_status prometheus; }
 *
 * Metrics follow the Prometheus naming conventions: one name per thing
 * counted, variants as labels (apipolicy_ratelimit_requests_total{zone,
 * tier,result}); the JSON has the same structure.  Labels are names from
 * the configuration (zones, tiers, JWKS URIs) or fixed words, never file
 * paths.
 *
 * Redis is seen per gateway: each worker writes the state of its Redis
 * connection (up, down, or not used yet) into a slot of the zone, and
 * the handler sums the slots of the current workers, so every worker
 * answers the same.  Errors and round-trip times are counted there too.
 *
 * The counters count since the zone was made: a reload keeps them, a
 * restart starts afresh (as nginx's stub_status).
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_status.h"
#include "ngx_http_apipolicy_cors.h"
#include "ngx_http_apipolicy_idempotency.h"
#include "ngx_http_apipolicy_jwt.h"
#include "ngx_http_apipolicy_jwt_cache.h"
#include "ngx_http_apipolicy_jwks.h"
#include "ngx_http_apipolicy_ratelimit.h"
#include "ngx_http_apipolicy_redis.h"
#include "ngx_http_apipolicy_version.h"
#include "ngx_http_apipolicy_webhook.h"
#include "ngx_http_apipolicy_util.h"
#include "ngx_http_apipolicy_shm.h"


#define NGX_HTTP_APIPOLICY_STATUS_MAGIC   0x6170697374613032  /* apista02 */
#define NGX_HTTP_APIPOLICY_STATUS_SIZE    (64 * 1024)

#define NGX_HTTP_APIPOLICY_STATUS_WORKERS  128  /* slots for Redis states */

#define NGX_HTTP_APIPOLICY_STATUS_REDIS_UNUSED  0
#define NGX_HTTP_APIPOLICY_STATUS_REDIS_UP      1
#define NGX_HTTP_APIPOLICY_STATUS_REDIS_DOWN    2


/*
 * The zone's counters with one label of fixed values, by their first
 * slot: requests, then each family's values in the order of its table
 */
#define NGX_HTTP_APIPOLICY_STATUS_REQUESTS     0
#define NGX_HTTP_APIPOLICY_STATUS_JWT          1   /* verified, anonymous,
                                                      rejected */
#define NGX_HTTP_APIPOLICY_STATUS_JWT_CACHE    4   /* hit, miss */
#define NGX_HTTP_APIPOLICY_STATUS_CORS         6   /* preflight, allowed,
                                                      denied */
#define NGX_HTTP_APIPOLICY_STATUS_IDEMPOTENCY  9   /* stored, replayed */
#define NGX_HTTP_APIPOLICY_STATUS_VERSION      11  /* deprecated, sunset */
#define NGX_HTTP_APIPOLICY_STATUS_NCOUNTERS    13

#define NGX_HTTP_APIPOLICY_STATUS_JWT_VERIFIED    0
#define NGX_HTTP_APIPOLICY_STATUS_JWT_ANONYMOUS   1
#define NGX_HTTP_APIPOLICY_STATUS_JWT_REJECTED    2


static ngx_str_t  ngx_http_apipolicy_status_jwt_results[] = {
    ngx_string("verified"), ngx_string("anonymous"), ngx_string("rejected")
};

static ngx_str_t  ngx_http_apipolicy_status_cache_results[] = {
    ngx_string("hit"), ngx_string("miss")
};

static ngx_str_t  ngx_http_apipolicy_status_cors_results[] = {
    ngx_string("preflight"), ngx_string("allowed"), ngx_string("denied")
};

static ngx_str_t  ngx_http_apipolicy_status_idempotency_results[] = {
    ngx_string("stored"), ngx_string("replayed")
};

static ngx_str_t  ngx_http_apipolicy_status_version_states[] = {
    ngx_string("deprecated"), ngx_string("sunset")
};


/*
 * Every problem code the gateway answers with, by the area that answers
 * it (SIGNATURE_INVALID is both JWT's and the webhooks'); anything else:
 * "OTHER".
 */

typedef struct {
    ngx_str_t                          area;
    ngx_str_t                          code;
} ngx_http_apipolicy_status_code_t;

#define ngx_http_apipolicy_status_code(area, code)                           \
    { ngx_string(area), ngx_string(code) }

static ngx_http_apipolicy_status_code_t  ngx_http_apipolicy_status_codes[] = {
    ngx_http_apipolicy_status_code("cors", "ORIGIN_NOT_ALLOWED"),
    ngx_http_apipolicy_status_code("version", "API_VERSION_SUNSET"),
    ngx_http_apipolicy_status_code("jwt", "TOKEN_MISSING"),
    ngx_http_apipolicy_status_code("jwt", "TOKEN_MALFORMED"),
    ngx_http_apipolicy_status_code("jwt", "TOKEN_AMBIGUOUS"),
    ngx_http_apipolicy_status_code("jwt", "TOKEN_EXPIRED"),
    ngx_http_apipolicy_status_code("jwt", "TOKEN_NOT_YET_VALID"),
    ngx_http_apipolicy_status_code("jwt", "TOKEN_TYPE_REJECTED"),
    ngx_http_apipolicy_status_code("jwt", "SIGNATURE_INVALID"),
    ngx_http_apipolicy_status_code("jwt", "ALGORITHM_NOT_ALLOWED"),
    ngx_http_apipolicy_status_code("jwt", "KEY_NOT_FOUND"),
    ngx_http_apipolicy_status_code("jwt", "KEYS_UNAVAILABLE"),
    ngx_http_apipolicy_status_code("jwt", "ISSUER_REJECTED"),
    ngx_http_apipolicy_status_code("jwt", "AUDIENCE_REJECTED"),
    ngx_http_apipolicy_status_code("jwt", "CLAIM_REJECTED"),
    ngx_http_apipolicy_status_code("jwt", "INTERNAL_ERROR"),
    ngx_http_apipolicy_status_code("ratelimit", "RATE_LIMITED"),
    ngx_http_apipolicy_status_code("idempotency", "IDEMPOTENCY_KEY_MISSING"),
    ngx_http_apipolicy_status_code("idempotency", "IDEMPOTENCY_KEY_INVALID"),
    ngx_http_apipolicy_status_code("idempotency", "IDEMPOTENCY_KEY_IN_USE"),
    ngx_http_apipolicy_status_code("idempotency", "IDEMPOTENCY_KEY_REUSED"),
    ngx_http_apipolicy_status_code("idempotency", "IDEMPOTENCY_UNAVAILABLE"),
    ngx_http_apipolicy_status_code("webhook", "SIGNATURE_MISSING"),
    ngx_http_apipolicy_status_code("webhook", "SIGNATURE_INVALID"),
    ngx_http_apipolicy_status_code("webhook", "TIMESTAMP_OUT_OF_TOLERANCE"),
    ngx_http_apipolicy_status_code("webhook", "WEBHOOK_REPLAYED"),
    ngx_http_apipolicy_status_code("other", "OTHER")
};

#define NGX_HTTP_APIPOLICY_STATUS_NCODES                                     \
    (sizeof(ngx_http_apipolicy_status_codes)                                 \
     / sizeof(ngx_http_apipolicy_status_code_t))


/* a webhook delivery's result, by the code of its refusal */

static ngx_http_apipolicy_status_code_t
    ngx_http_apipolicy_status_webhook_results[] =
{
    ngx_http_apipolicy_status_code("verified", ""),
    ngx_http_apipolicy_status_code("signature_missing", "SIGNATURE_MISSING"),
    ngx_http_apipolicy_status_code("signature_invalid", "SIGNATURE_INVALID"),
    ngx_http_apipolicy_status_code("timestamp_out_of_tolerance",
                                   "TIMESTAMP_OUT_OF_TOLERANCE"),
    ngx_http_apipolicy_status_code("replayed", "WEBHOOK_REPLAYED")
};

#define NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS                           \
    (sizeof(ngx_http_apipolicy_status_webhook_results)                       \
     / sizeof(ngx_http_apipolicy_status_code_t))


static ngx_str_t  ngx_http_apipolicy_status_ratelimit_results[] = {
    ngx_string("passed"), ngx_string("rejected"), ngx_string("dry_run")
};


static ngx_str_t  ngx_http_apipolicy_status_redis_states[] = {
    ngx_string("unused"), ngx_string("up"), ngx_string("down")
};

static ngx_str_t  ngx_http_apipolicy_status_redis_errors[] = {
    ngx_string("connection"), ngx_string("reply")
};


/* Redis round trips: histogram bucket bounds, microseconds */

static ngx_uint_t  ngx_http_apipolicy_status_rtt_bounds[] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000
};

#define NGX_HTTP_APIPOLICY_STATUS_RTT_NBUCKETS                               \
    (sizeof(ngx_http_apipolicy_status_rtt_bounds) / sizeof(ngx_uint_t) + 1)


/* one worker's Redis connection, as it last saw it */
typedef struct {
    ngx_pid_t                          pid;
    ngx_uint_t                         state;
} ngx_http_apipolicy_status_worker_t;


typedef struct {
    ngx_atomic_t                       errors[2]; /* connection, reply */
    ngx_atomic_t                       rtt[
                                       NGX_HTTP_APIPOLICY_STATUS_RTT_NBUCKETS];
    ngx_atomic_t                       rtt_sum;   /* us */
} ngx_http_apipolicy_status_redis_t;


/* counters of one rate limit zone and tier, found by name across reloads */
typedef struct ngx_http_apipolicy_status_series_s
    ngx_http_apipolicy_status_series_t;

struct ngx_http_apipolicy_status_series_s {
    ngx_http_apipolicy_status_series_t  *next;
    ngx_atomic_t                         counters[3];
    size_t                               zone_len;
    size_t                               tier_len;
    u_char                               names[1];  /* zone, then tier */
};


typedef struct {
    uint64_t                             magic;
    ngx_atomic_t                         counters[
                                          NGX_HTTP_APIPOLICY_STATUS_NCOUNTERS];
    ngx_atomic_t                         rejections[
                                            NGX_HTTP_APIPOLICY_STATUS_NCODES];
    ngx_atomic_t                         webhook[
                                          NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES]
                                  [NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS];
    ngx_http_apipolicy_status_redis_t    redis;
    ngx_http_apipolicy_status_worker_t   workers[
                                            NGX_HTTP_APIPOLICY_STATUS_WORKERS];
    ngx_http_apipolicy_status_series_t  *ratelimit; /* every series made */
} ngx_http_apipolicy_status_sh_t;


/* the zone's configuration side: shm_zone->data */
typedef struct {
    ngx_http_apipolicy_status_sh_t       *sh;
    ngx_http_apipolicy_main_conf_t       *amcf;
    ngx_uint_t                            ntiers;
    ngx_http_apipolicy_status_series_t  **ratelimit; /* [zone * ntiers
                                                        + tier], set by the
                                                        zone's init */
} ngx_http_apipolicy_status_data_t;


/* one zone of apipolicy's, as shown */
typedef struct {
    ngx_str_t                          name;
    size_t                             size;
    size_t                             free;
} ngx_http_apipolicy_status_zone_t;


/* what the handler shows, gathered first */
typedef struct {
    ngx_http_apipolicy_status_data_t  *st;
    ngx_http_apipolicy_status_sh_t    *sh;
    ngx_array_t                       *zones;
    ngx_uint_t                         redis[3];  /* workers per state */
    ngx_int_t                          redis_up;  /* -1: nothing sent yet */
    const char                        *section;   /* JSON: the object open */
} ngx_http_apipolicy_status_view_t;


/*
 * A labelled counter, as shown in either format: sample(n) gives the
 * label values and the count of its n-th series (0: no more).  JSON
 * nests the values by label ("SECTION":{"MEMBER":{"v1":{"v2":n}}}),
 * Prometheus writes one line a series (apipolicy_NAME{l1="v1",l2="v2"}
 * n).  A part of another shape writes itself, by format.
 */

typedef struct ngx_http_apipolicy_status_metric_s
    ngx_http_apipolicy_status_metric_t;

typedef ngx_uint_t (*ngx_http_apipolicy_status_sample_pt)(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value);

typedef u_char *(*ngx_http_apipolicy_status_write_pt)(u_char *p,
    ngx_http_apipolicy_status_view_t *view);

struct ngx_http_apipolicy_status_metric_s {
    const char                           *name;     /* apipolicy_NAME */
    const char                           *help;
    const char                           *section;  /* JSON */
    const char                           *member;   /* JSON; NULL: none */
    const char                           *labels[4];
    ngx_http_apipolicy_status_sample_pt   sample;

    /* a family of one label: its values and their first counter */
    ngx_str_t                            *values;
    ngx_uint_t                            nvalues;
    ngx_uint_t                            first;

    /* a part of its own shape */
    ngx_http_apipolicy_status_write_pt    json;
    ngx_http_apipolicy_status_write_pt    prometheus;
};


static ngx_int_t ngx_http_apipolicy_status_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_apipolicy_status_series_t *ngx_http_apipolicy_status_series(
    ngx_shm_zone_t *shm_zone, ngx_http_apipolicy_status_sh_t *sh,
    ngx_str_t *zone, ngx_str_t *tier);
static ngx_int_t ngx_http_apipolicy_status_handler(ngx_http_request_t *r);
static u_char *ngx_http_apipolicy_status_redis_nodes_json(u_char *p);
static u_char *ngx_http_apipolicy_status_redis_nodes_prom(u_char *p);
static ngx_array_t *ngx_http_apipolicy_status_zones(ngx_http_request_t *r,
    ngx_http_apipolicy_main_conf_t *amcf);
static void ngx_http_apipolicy_status_redis_view(
    ngx_http_apipolicy_status_view_t *view);
static u_char *ngx_http_apipolicy_status_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view);
static u_char *ngx_http_apipolicy_status_prometheus(u_char *p,
    ngx_http_apipolicy_status_view_t *view);
static ngx_uint_t ngx_http_apipolicy_status_code_index(
    ngx_http_apipolicy_ctx_t *ctx);

static u_char *ngx_http_apipolicy_status_json_metric(u_char *p,
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m);
static u_char *ngx_http_apipolicy_status_prom_metric(u_char *p,
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m);
static ngx_uint_t ngx_http_apipolicy_status_sample_family(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value);
static ngx_uint_t ngx_http_apipolicy_status_sample_ratelimit(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value);
static ngx_uint_t ngx_http_apipolicy_status_sample_webhook(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value);
static ngx_uint_t ngx_http_apipolicy_status_sample_rejections(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value);
static ngx_str_t *ngx_http_apipolicy_status_jwks_source(
    ngx_http_apipolicy_main_conf_t *amcf, ngx_uint_t i, ngx_uint_t *ok,
    ngx_uint_t *failed, time_t *age);
static u_char *ngx_http_apipolicy_status_jwks_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view);
static u_char *ngx_http_apipolicy_status_prom_sample(u_char *p, char *name,
    char *label, ngx_str_t *value);
static u_char *ngx_http_apipolicy_status_jwks_prom(u_char *p,
    ngx_http_apipolicy_status_view_t *view);
static u_char *ngx_http_apipolicy_status_zones_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view);
static u_char *ngx_http_apipolicy_status_zones_prom(u_char *p,
    ngx_http_apipolicy_status_view_t *view);
static u_char *ngx_http_apipolicy_status_redis_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view);
static u_char *ngx_http_apipolicy_status_redis_prom(u_char *p,
    ngx_http_apipolicy_status_view_t *view);


#define ngx_http_apipolicy_status_family(name, section, member, label,       \
                                         values, first, help)                \
    { name, help, section, member, { label, NULL },                          \
      ngx_http_apipolicy_status_sample_family, values,                       \
      sizeof(values) / sizeof(ngx_str_t), first, NULL, NULL }

#define ngx_http_apipolicy_status_part(json, prometheus)                     \
    { NULL, NULL, NULL, NULL, { NULL }, NULL, NULL, 0, 0, json, prometheus }


/* what apipolicy_status shows, in its order */

static ngx_http_apipolicy_status_metric_t  ngx_http_apipolicy_status_metrics[]
    =
{
    ngx_http_apipolicy_status_family("jwt_requests_total", "jwt", "requests",
        "result", ngx_http_apipolicy_status_jwt_results,
        NGX_HTTP_APIPOLICY_STATUS_JWT,
        "Requests the JWT step decided, by result (anonymous: no token, "
        "let through by \"optional\")."),

    ngx_http_apipolicy_status_family("jwt_cache_requests_total", "jwt",
        "cache", "result", ngx_http_apipolicy_status_cache_results,
        NGX_HTTP_APIPOLICY_STATUS_JWT_CACHE,
        "Verified-token cache lookups, by result."),

    ngx_http_apipolicy_status_family("cors_requests_total", "cors",
        "requests", "result", ngx_http_apipolicy_status_cors_results,
        NGX_HTTP_APIPOLICY_STATUS_CORS,
        "CORS decisions: preflights answered, requests from an allowed "
        "origin, requests from an origin not allowed."),

    ngx_http_apipolicy_status_family("idempotency_requests_total",
        "idempotency", "requests", "result",
        ngx_http_apipolicy_status_idempotency_results,
        NGX_HTTP_APIPOLICY_STATUS_IDEMPOTENCY,
        "Responses kept for an Idempotency-Key, and kept responses "
        "replayed."),

    ngx_http_apipolicy_status_family("version_requests_total", "version",
        "requests", "state", ngx_http_apipolicy_status_version_states,
        NGX_HTTP_APIPOLICY_STATUS_VERSION,
        "Requests to deprecated API versions and to versions past their "
        "sunset."),

    ngx_http_apipolicy_status_part(ngx_http_apipolicy_status_jwks_json,
                                   ngx_http_apipolicy_status_jwks_prom),

    { "ratelimit_requests_total",
      "Rate limit checks, by zone, tier and result (dry_run: over the "
      "limit, served).",
      "ratelimit", "requests", { "zone", "tier", "result", NULL },
      ngx_http_apipolicy_status_sample_ratelimit, NULL, 0, 0, NULL, NULL },

    { "webhook_requests_total",
      "Webhook deliveries, by scheme and result.",
      "webhook", "requests", { "scheme", "result", NULL },
      ngx_http_apipolicy_status_sample_webhook, NULL, 0, 0, NULL, NULL },

    { "rejections_total",
      "Requests the gateway refused, by the area that refused and problem "
      "code.",
      "rejections", NULL, { "area", "code", NULL },
      ngx_http_apipolicy_status_sample_rejections, NULL, 0, 0, NULL, NULL },

    ngx_http_apipolicy_status_part(ngx_http_apipolicy_status_zones_json,
                                   ngx_http_apipolicy_status_zones_prom),

    ngx_http_apipolicy_status_part(ngx_http_apipolicy_status_redis_json,
                                   ngx_http_apipolicy_status_redis_prom)
};

#define NGX_HTTP_APIPOLICY_STATUS_NMETRICS                                   \
    (sizeof(ngx_http_apipolicy_status_metrics)                               \
     / sizeof(ngx_http_apipolicy_status_metric_t))


static ngx_str_t  ngx_http_apipolicy_status_zone_name =
    ngx_string("apipolicy_status");
static ngx_str_t  ngx_http_apipolicy_status_cc = ngx_string("Cache-Control");
static ngx_str_t  ngx_http_apipolicy_status_no_store = ngx_string("no-store");


/* this worker's zone, for the Redis client (set in init_process) */
static ngx_http_apipolicy_status_sh_t  *ngx_http_apipolicy_status_worker_sh;


#define ngx_http_apipolicy_status_eq(a, b)                                   \
    ((a)->len == (b)->len && ngx_memcmp((a)->data, (b)->data, (a)->len) == 0)

#define ngx_http_apipolicy_status_inc(sh, i)                                 \
    (void) ngx_atomic_fetch_add(&(sh)->counters[i], 1)


/* ---- counting (LOG phase) -------------------------------------------- */

static void ngx_http_apipolicy_status_count_jwt(
    ngx_http_apipolicy_status_sh_t *sh, ngx_http_apipolicy_ctx_t *ctx,
    ngx_uint_t code);
static void ngx_http_apipolicy_status_count_ratelimit(
    ngx_http_apipolicy_status_data_t *st, ngx_http_apipolicy_ctx_t *ctx);
static void ngx_http_apipolicy_status_count_webhook(
    ngx_http_apipolicy_status_sh_t *sh, ngx_http_apipolicy_ctx_t *ctx);


ngx_int_t
ngx_http_apipolicy_status_log(ngx_http_request_t *r)
{
    ngx_uint_t                         code, outcome, areas;
    ngx_http_apipolicy_ctx_t          *ctx;
    ngx_http_apipolicy_status_sh_t    *sh;
    ngx_http_apipolicy_status_data_t  *st;
    ngx_http_apipolicy_main_conf_t    *amcf;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_apipolicy_get_ctx(r);
    if (ctx == NULL) {
        return NGX_OK;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);
    st = amcf->status ? ((ngx_shm_zone_t *) amcf->status)->data : NULL;

    if (st == NULL || st->sh == NULL) {
        return NGX_OK;
    }

    sh = st->sh;

    ngx_http_apipolicy_status_inc(sh, NGX_HTTP_APIPOLICY_STATUS_REQUESTS);

    code = NGX_HTTP_APIPOLICY_STATUS_NCODES;

    if (ctx->problem) {
        code = ngx_http_apipolicy_status_code_index(ctx);
        (void) ngx_atomic_fetch_add(&sh->rejections[code], 1);
    }

    /* only the areas of the locations the request went through */

    areas = ctx->areas;

    if (areas & NGX_HTTP_APIPOLICY_AREA_JWT) {
        ngx_http_apipolicy_status_count_jwt(sh, ctx, code);
    }

    if (areas & NGX_HTTP_APIPOLICY_AREA_RATELIMIT) {
        ngx_http_apipolicy_status_count_ratelimit(st, ctx);
    }

    if (areas & NGX_HTTP_APIPOLICY_AREA_IDEMPOTENCY) {
        outcome = ngx_http_apipolicy_idempotency_outcome(ctx);

        if (outcome == NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_STORED) {
            ngx_http_apipolicy_status_inc(sh,
                                       NGX_HTTP_APIPOLICY_STATUS_IDEMPOTENCY);

        } else if (outcome == NGX_HTTP_APIPOLICY_IDEMPOTENCY_OUTCOME_REPLAYED)
        {
            ngx_http_apipolicy_status_inc(sh,
                                     NGX_HTTP_APIPOLICY_STATUS_IDEMPOTENCY + 1);
        }
    }

    if (areas & NGX_HTTP_APIPOLICY_AREA_WEBHOOK) {
        ngx_http_apipolicy_status_count_webhook(sh, ctx);
    }

    if (areas & NGX_HTTP_APIPOLICY_AREA_CORS) {
        outcome = ngx_http_apipolicy_cors_outcome(ctx);

        if (outcome == NGX_HTTP_APIPOLICY_CORS_OUTCOME_PREFLIGHT) {
            ngx_http_apipolicy_status_inc(sh, NGX_HTTP_APIPOLICY_STATUS_CORS);

        } else if (outcome == NGX_HTTP_APIPOLICY_CORS_OUTCOME_ALLOWED) {
            ngx_http_apipolicy_status_inc(sh,
                                          NGX_HTTP_APIPOLICY_STATUS_CORS + 1);

        } else if (outcome == NGX_HTTP_APIPOLICY_CORS_OUTCOME_DISALLOWED) {
            ngx_http_apipolicy_status_inc(sh,
                                          NGX_HTTP_APIPOLICY_STATUS_CORS + 2);
        }
    }

    if (areas & NGX_HTTP_APIPOLICY_AREA_VERSION) {
        outcome = ngx_http_apipolicy_version_outcome(ctx);

        if (outcome == NGX_HTTP_APIPOLICY_VERSION_DEPRECATED) {
            ngx_http_apipolicy_status_inc(sh,
                                          NGX_HTTP_APIPOLICY_STATUS_VERSION);

        } else if (outcome == NGX_HTTP_APIPOLICY_VERSION_SUNSET) {
            ngx_http_apipolicy_status_inc(sh,
                                          NGX_HTTP_APIPOLICY_STATUS_VERSION + 1);
        }
    }

    return NGX_OK;
}


/* JWT: the result (a refusal when JWT's code refused), the cache's */

static void
ngx_http_apipolicy_status_count_jwt(ngx_http_apipolicy_status_sh_t *sh,
    ngx_http_apipolicy_ctx_t *ctx, ngx_uint_t code)
{
    ngx_uint_t  outcome, cache;

    outcome = ngx_http_apipolicy_jwt_outcome(ctx, &cache);

    if (outcome == NGX_HTTP_APIPOLICY_JWT_OUTCOME_NONE) {
        return;
    }

    if (outcome == NGX_HTTP_APIPOLICY_JWT_OUTCOME_VERIFIED) {
        ngx_http_apipolicy_status_inc(sh, NGX_HTTP_APIPOLICY_STATUS_JWT
                                    + NGX_HTTP_APIPOLICY_STATUS_JWT_VERIFIED);

    } else if (outcome == NGX_HTTP_APIPOLICY_JWT_OUTCOME_ANONYMOUS) {
        ngx_http_apipolicy_status_inc(sh, NGX_HTTP_APIPOLICY_STATUS_JWT
                                    + NGX_HTTP_APIPOLICY_STATUS_JWT_ANONYMOUS);

    } else if (code < NGX_HTTP_APIPOLICY_STATUS_NCODES
               && ngx_strcmp(ngx_http_apipolicy_status_codes[code].area.data,
                             "jwt") == 0)
    {
        ngx_http_apipolicy_status_inc(sh, NGX_HTTP_APIPOLICY_STATUS_JWT
                                    + NGX_HTTP_APIPOLICY_STATUS_JWT_REJECTED);
    }

    if (cache == NGX_HTTP_APIPOLICY_JWT_CACHE_HIT) {
        ngx_http_apipolicy_status_inc(sh,
                                      NGX_HTTP_APIPOLICY_STATUS_JWT_CACHE);

    } else if (cache == NGX_HTTP_APIPOLICY_JWT_CACHE_MISS) {
        ngx_http_apipolicy_status_inc(sh,
                                      NGX_HTTP_APIPOLICY_STATUS_JWT_CACHE + 1);
    }
}


/* each rate limit checked: its zone and tier's series, by result */

static void
ngx_http_apipolicy_status_count_ratelimit(ngx_http_apipolicy_status_data_t *st,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_uint_t                           i, n, t, nres, outcome;
    ngx_http_apipolicy_status_series_t  *series;

    nres = ngx_http_apipolicy_ratelimit_applied(ctx);

    if (st->ratelimit == NULL) {
        return;
    }

    for (i = 0; i < nres; i++) {
        outcome = ngx_http_apipolicy_ratelimit_outcome(ctx, i, &n, &t);

        series = st->ratelimit[n * st->ntiers + t];

        if (series && outcome >= NGX_HTTP_APIPOLICY_RATELIMIT_PASSED
            && outcome <= NGX_HTTP_APIPOLICY_RATELIMIT_DRY_RUN)
        {
            (void) ngx_atomic_fetch_add(
                &series->counters[outcome
                                  - NGX_HTTP_APIPOLICY_RATELIMIT_PASSED], 1);
        }
    }
}


/* a webhook delivery: by scheme, and its result by the refusal's code */

static void
ngx_http_apipolicy_status_count_webhook(ngx_http_apipolicy_status_sh_t *sh,
    ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_uint_t  n, outcome, scheme;

    outcome = ngx_http_apipolicy_webhook_outcome(ctx, &scheme);

    if (outcome == NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_NONE
        || scheme >= NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES)
    {
        return;
    }

    n = NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS;

    if (outcome == NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_VERIFIED) {
        n = 0;

    } else if (ctx->problem) {
        for (n = 1; n < NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS; n++) {
            if (ngx_http_apipolicy_status_eq(&ctx->problem->code,
                            &ngx_http_apipolicy_status_webhook_results[n].code))
            {
                break;
            }
        }
    }

    if (n < NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS) {
        (void) ngx_atomic_fetch_add(&sh->webhook[scheme][n], 1);
    }
}


/*
 * The entry of the request's problem code: by the code, and where two
 * areas answer with one code (SIGNATURE_INVALID), by the area that
 * refused (the webhook step, when it failed, or else JWT)
 */

static ngx_uint_t
ngx_http_apipolicy_status_code_index(ngx_http_apipolicy_ctx_t *ctx)
{
    ngx_uint_t  i, found, webhook, scheme;

    webhook = (ngx_http_apipolicy_webhook_outcome(ctx, &scheme)
               == NGX_HTTP_APIPOLICY_WEBHOOK_OUTCOME_REFUSED);

    found = NGX_HTTP_APIPOLICY_STATUS_NCODES - 1;         /* OTHER */

    for (i = 0; i < NGX_HTTP_APIPOLICY_STATUS_NCODES - 1; i++) {

        if (!ngx_http_apipolicy_status_eq(&ctx->problem->code,
                                     &ngx_http_apipolicy_status_codes[i].code))
        {
            continue;
        }

        if (found == NGX_HTTP_APIPOLICY_STATUS_NCODES - 1) {
            found = i;
        }

        if ((ngx_strcmp(ngx_http_apipolicy_status_codes[i].area.data, "webhook")
             == 0)
            == webhook)
        {
            return i;
        }
    }

    return found;
}


/* ---- Redis, from the client (ngx_http_apipolicy_redis.c) -------------- */

/* a batch answered after "usec", a connection failed, an error reply */

void
ngx_http_apipolicy_status_redis(ngx_uint_t event, ngx_uint_t usec)
{
    ngx_uint_t                       i;
    ngx_http_apipolicy_status_sh_t      *sh;
    ngx_http_apipolicy_status_worker_t  *w;

    sh = ngx_http_apipolicy_status_worker_sh;

    if (sh == NULL) {
        return;
    }

    switch (event) {

    case NGX_HTTP_APIPOLICY_STATUS_REDIS_ANSWERED:
        for (i = 0; i < NGX_HTTP_APIPOLICY_STATUS_RTT_NBUCKETS - 1; i++) {
            if (usec <= ngx_http_apipolicy_status_rtt_bounds[i]) {
                break;
            }
        }

        (void) ngx_atomic_fetch_add(&sh->redis.rtt[i], 1);
        (void) ngx_atomic_fetch_add(&sh->redis.rtt_sum, usec);
        break;

    case NGX_HTTP_APIPOLICY_STATUS_REDIS_FAILED:
        (void) ngx_atomic_fetch_add(&sh->redis.errors[0], 1);
        break;

    default: /* NGX_HTTP_APIPOLICY_STATUS_REDIS_ERROR_REPLY */
        (void) ngx_atomic_fetch_add(&sh->redis.errors[1], 1);
        return;
    }

    if (ngx_worker < NGX_HTTP_APIPOLICY_STATUS_WORKERS) {
        w = &sh->workers[ngx_worker];

        if (w->pid == ngx_pid) {
            w->state = (event == NGX_HTTP_APIPOLICY_STATUS_REDIS_ANSWERED)
                       ? NGX_HTTP_APIPOLICY_STATUS_REDIS_UP
                       : NGX_HTTP_APIPOLICY_STATUS_REDIS_DOWN;
        }
    }
}


/* the worker's slot: its Redis connection not used yet */

ngx_int_t
ngx_http_apipolicy_status_init_process(ngx_cycle_t *cycle)
{
    ngx_http_apipolicy_status_sh_t      *sh;
    ngx_http_apipolicy_status_data_t    *st;
    ngx_http_apipolicy_status_worker_t  *w;
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_apipolicy_module);

    if (amcf == NULL || amcf->status == NULL) {
        return NGX_OK;
    }

    st = ((ngx_shm_zone_t *) amcf->status)->data;
    sh = st->sh;

    ngx_http_apipolicy_status_worker_sh = sh;

    if (sh && ngx_worker < NGX_HTTP_APIPOLICY_STATUS_WORKERS) {
        w = &sh->workers[ngx_worker];
        w->state = NGX_HTTP_APIPOLICY_STATUS_REDIS_UNUSED;
        w->pid = ngx_pid;
    }

    return NGX_OK;
}


/* ---- the content handler --------------------------------------------- */

static ngx_int_t
ngx_http_apipolicy_status_handler(ngx_http_request_t *r)
{
    size_t                           len;
    ngx_int_t                        rc;
    ngx_buf_t                       *b;
    ngx_uint_t                       format;
    ngx_chain_t                      out;
    ngx_http_apipolicy_status_view_t     view;
    ngx_http_apipolicy_loc_conf_t   *alcf;
    ngx_http_apipolicy_main_conf_t  *amcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_apipolicy_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_apipolicy_module);

    format = alcf->status.format;

    ngx_memzero(&view, sizeof(ngx_http_apipolicy_status_view_t));

    view.st = ((ngx_shm_zone_t *) amcf->status)->data;
    view.sh = view.st->sh;

    view.zones = ngx_http_apipolicy_status_zones(r, amcf);
    if (view.zones == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_apipolicy_status_redis_view(&view);

    /*
     * room: the fixed part, the rate limit series and the zones (names
     * of 128 bytes at most), the JWKS sources (URIs shown up to 256)
     */

    len = 32768 + NGX_HTTP_APIPOLICY_STATUS_NCODES * 256
          + NGX_HTTP_APIPOLICY_REDIS_NODES_MAX * 6 * 1024
          + view.zones->nelts * 768;

    if (amcf->ratelimit_zones && amcf->ratelimit_tiers) {
        len += amcf->ratelimit_zones->nelts
               * amcf->ratelimit_tiers->nelts * 3 * 512;
    }

    if (amcf->jwks) {
        len += amcf->jwks->nelts * 1536;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (format == NGX_HTTP_APIPOLICY_STATUS_PROMETHEUS) {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
        b->last = ngx_http_apipolicy_status_prometheus(b->last, &view);

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        b->last = ngx_http_apipolicy_status_json(b->last, &view);
    }


    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;

    /* counters change every moment: never cached */

    if (ngx_http_apipolicy_add_header(r, &ngx_http_apipolicy_status_cc,
                                      &ngx_http_apipolicy_status_no_store)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* each zone of apipolicy's: its name, size, and the room left */

static ngx_array_t *
ngx_http_apipolicy_status_zones(ngx_http_request_t *r,
    ngx_http_apipolicy_main_conf_t *amcf)
{
    ngx_uint_t                     i;
    ngx_str_t                     *label;
    ngx_array_t                   *zones;
    ngx_list_part_t               *part;
    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_apipolicy_status_zone_t  *z;

    zones = ngx_array_create(r->pool, 8,
                             sizeof(ngx_http_apipolicy_status_zone_t));
    if (zones == NULL) {
        return NULL;
    }

    part = &((ngx_cycle_t *) ngx_cycle)->shared_memory.part;
    shm_zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            shm_zone = part->elts;
            i = 0;
        }

        if (shm_zone[i].tag != &ngx_http_apipolicy_module
            || shm_zone[i].shm.addr == NULL)
        {
            continue;
        }

        z = ngx_array_push(zones);
        if (z == NULL) {
            return NULL;
        }

        shpool = (ngx_slab_pool_t *) shm_zone[i].shm.addr;

        /* a JWKS zone is named after its file and line: shown by URI */

        label = ngx_http_apipolicy_jwks_zone_label(amcf, &shm_zone[i]);

        if (label) {
            z->name.len = sizeof("jwks:") - 1 + ngx_min(label->len, 122);
            z->name.data = ngx_pnalloc(r->pool, z->name.len);
            if (z->name.data == NULL) {
                return NULL;
            }

            ngx_memcpy(ngx_cpymem(z->name.data, "jwks:", sizeof("jwks:") - 1),
                       label->data, z->name.len - (sizeof("jwks:") - 1));

        } else {
            z->name = shm_zone[i].shm.name;
            z->name.len = ngx_min(z->name.len, 128);
        }
        z->size = shm_zone[i].shm.size;
        z->free = shpool->pfree * ngx_pagesize;
    }

    return zones;
}


/*
 * Redis per gateway: the current workers' slots summed.  Up (1) when a
 * worker's connection answered and none is down now; down (0) when one
 * is; not known (-1) while no worker has sent anything.
 */

static void
ngx_http_apipolicy_status_redis_view(ngx_http_apipolicy_status_view_t *view)
{
    ngx_uint_t        i, n, state;
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    n = (ccf && ccf->master) ? (ngx_uint_t) ccf->worker_processes : 1;
    n = ngx_min(n, NGX_HTTP_APIPOLICY_STATUS_WORKERS);

    for (i = 0; i < n; i++) {
        state = view->sh->workers[i].state;
        if (state > NGX_HTTP_APIPOLICY_STATUS_REDIS_DOWN) {
            state = NGX_HTTP_APIPOLICY_STATUS_REDIS_UNUSED;
        }

        view->redis[state]++;
    }

    view->redis_up = view->redis[NGX_HTTP_APIPOLICY_STATUS_REDIS_DOWN] ? 0
                     : view->redis[NGX_HTTP_APIPOLICY_STATUS_REDIS_UP] ? 1 : -1;
}


/*
 * A name from the configuration as a JSON string or a Prometheus label
 * value (both escape '\', '"' and newlines alike), at most "max" bytes
 * of it
 */

static u_char *
ngx_http_apipolicy_status_label(u_char *p, ngx_str_t *s, size_t max)
{
    size_t  i, n;

    n = ngx_min(s->len, max);

    for (i = 0; i < n; i++) {
        switch (s->data[i]) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = s->data[i];
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = (s->data[i] < 0x20) ? '?' : s->data[i];
        }
    }

    return p;
}


static ngx_atomic_uint_t
ngx_http_apipolicy_status_rtt_count(ngx_http_apipolicy_status_redis_t *rs)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  n;

    n = 0;

    for (i = 0; i < NGX_HTTP_APIPOLICY_STATUS_RTT_NBUCKETS; i++) {
        n += rs->rtt[i];
    }

    return n;
}


/* ---- the series of the labelled counters ------------------------------ */

static ngx_uint_t
ngx_http_apipolicy_status_sample_family(ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value)
{
    if (n >= m->nvalues) {
        return 0;
    }

    labels[0] = m->values[n];
    *value = view->sh->counters[m->first + n];

    return 1;
}


/* zone, tier, result */

static ngx_uint_t
ngx_http_apipolicy_status_sample_ratelimit(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value)
{
    ngx_uint_t                            z, t, i;
    ngx_http_apipolicy_status_data_t     *st;
    ngx_http_apipolicy_main_conf_t       *amcf;
    ngx_http_apipolicy_status_series_t   *series;
    ngx_http_apipolicy_ratelimit_tier_t  *tier;

    st = view->st;
    amcf = st->amcf;

    if (st->ratelimit == NULL
        || n >= amcf->ratelimit_zones->nelts * st->ntiers * 3)
    {
        return 0;
    }

    i = n % 3;
    t = n / 3 % st->ntiers;
    z = n / 3 / st->ntiers;

    tier = amcf->ratelimit_tiers->elts;
    series = st->ratelimit[z * st->ntiers + t];

    labels[0] = *ngx_http_apipolicy_ratelimit_zone_name(amcf, z);
    labels[1] = tier[t].name;
    labels[2] = ngx_http_apipolicy_status_ratelimit_results[i];
    *value = series ? series->counters[i] : 0;

    return 1;
}


/* scheme, result */

static ngx_uint_t
ngx_http_apipolicy_status_sample_webhook(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value)
{
    ngx_uint_t  scheme, i;

    if (n >= (NGX_HTTP_APIPOLICY_WEBHOOK_NSCHEMES - 1)
             * NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS)
    {
        return 0;
    }

    scheme = 1 + n / NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS;
    i = n % NGX_HTTP_APIPOLICY_STATUS_WEBHOOK_NRESULTS;

    labels[0] = *ngx_http_apipolicy_webhook_scheme_name(scheme);
    labels[1] = ngx_http_apipolicy_status_webhook_results[i].area;
    *value = view->sh->webhook[scheme][i];

    return 1;
}


/* area, code */

static ngx_uint_t
ngx_http_apipolicy_status_sample_rejections(
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m, ngx_uint_t n, ngx_str_t *labels,
    ngx_atomic_uint_t *value)
{
    if (n >= NGX_HTTP_APIPOLICY_STATUS_NCODES) {
        return 0;
    }

    labels[0] = ngx_http_apipolicy_status_codes[n].area;
    labels[1] = ngx_http_apipolicy_status_codes[n].code;
    *value = view->sh->rejections[n];

    return 1;
}


/* ---- JSON -------------------------------------------------------------- */

static u_char *
ngx_http_apipolicy_status_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    ngx_uint_t                           i;
    ngx_http_apipolicy_status_metric_t  *m;

    p = ngx_sprintf(p, "{\"apipolicy\":\"%s\",\"nginx\":\"%s\","
                       "\"requests\":%uA",
                    NGX_HTTP_APIPOLICY_VERSION, NGINX_VERSION,
                    view->sh->counters[NGX_HTTP_APIPOLICY_STATUS_REQUESTS]);

    view->section = NULL;

    for (i = 0; i < NGX_HTTP_APIPOLICY_STATUS_NMETRICS; i++) {
        m = &ngx_http_apipolicy_status_metrics[i];

        p = m->json ? m->json(p, view)
                    : ngx_http_apipolicy_status_json_metric(p, view, m);
    }

    return ngx_cpymem(p, "}\n", 2);
}


/*
 * The top-level object "section" (areas with several members share one):
 * the one open is closed when another opens; NULL closes it
 */

static u_char *
ngx_http_apipolicy_status_json_open(u_char *p,
    ngx_http_apipolicy_status_view_t *view, const char *section)
{
    if (view->section) {
        if (section && ngx_strcmp(view->section, section) == 0) {
            *p++ = ',';
            return p;
        }

        *p++ = '}';
    }

    view->section = section;

    return section ? ngx_sprintf(p, ",\"%s\":{", section) : p;
}


/* a labelled counter: one object a label, nested in the labels' order */

static u_char *
ngx_http_apipolicy_status_json_metric(u_char *p,
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m)
{
    ngx_str_t          labels[3], prev[3];
    ngx_uint_t         n, d, k, last;
    ngx_atomic_uint_t  value;

    for (last = 0; m->labels[last + 1]; last++) { /* void */ }

    p = ngx_http_apipolicy_status_json_open(p, view, m->section);

    if (m->member) {
        p = ngx_sprintf(p, "\"%s\":{", m->member);
    }

    for (n = 0; m->sample(view, m, n, labels, &value); n++) {
        d = 0;

        if (n) {
            /* the objects of the labels that changed are closed */

            while (d < last
                   && ngx_http_apipolicy_status_eq(&labels[d], &prev[d]))
            {
                d++;
            }

            for (k = d; k < last; k++) {
                *p++ = '}';
            }

            *p++ = ',';
        }

        for (k = d; k <= last; k++) {
            *p++ = '"';
            p = ngx_http_apipolicy_status_label(p, &labels[k], 128);
            p = ngx_cpymem(p, "\":{", k < last ? 3 : 2);
        }

        p = ngx_sprintf(p, "%uA", value);

        ngx_memcpy(prev, labels, sizeof(prev));
    }

    for (k = 0; n && k < last; k++) {
        *p++ = '}';
    }

    if (m->member) {
        *p++ = '}';
    }

    return p;
}


/* the i-th JWKS source of apipolicy_jwt_key_request: its URI and counts */

static ngx_str_t *
ngx_http_apipolicy_status_jwks_source(ngx_http_apipolicy_main_conf_t *amcf,
    ngx_uint_t i, ngx_uint_t *ok, ngx_uint_t *failed, time_t *age)
{
    ngx_http_apipolicy_jwks_t  **sources;

    sources = amcf->jwks->elts;

    return ngx_http_apipolicy_jwks_stats(sources[i], ok, failed, age);
}


/* JWKS sources, by URI */

static u_char *
ngx_http_apipolicy_status_jwks_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    time_t                           age;
    ngx_str_t                       *label;
    ngx_uint_t                       i, ok, failed;
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = view->st->amcf;

    p = ngx_http_apipolicy_status_json_open(p, view, "jwks");

    for (i = 0; amcf->jwks && i < amcf->jwks->nelts; i++) {
        label = ngx_http_apipolicy_status_jwks_source(amcf, i, &ok, &failed,
                                                      &age);

        p = ngx_cpymem(p, i ? ",\"" : "\"", i ? 2 : 1);
        p = ngx_http_apipolicy_status_label(p, label, 256);
        p = ngx_sprintf(p, "\":{\"fetches\":{\"ok\":%ui,\"error\":%ui},"
                           "\"age_seconds\":", ok, failed);

        p = (age < 0) ? ngx_cpymem(p, "null", 4) : ngx_sprintf(p, "%T", age);
        *p++ = '}';
    }

    return p;
}


/* zones, by name: size and room left */

static u_char *
ngx_http_apipolicy_status_zones_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    ngx_uint_t                         n;
    ngx_http_apipolicy_status_zone_t  *zone;

    p = ngx_http_apipolicy_status_json_open(p, view, "zones");

    zone = view->zones->elts;

    for (n = 0; n < view->zones->nelts; n++) {
        p = ngx_cpymem(p, n ? ",\"" : "\"", n ? 2 : 1);
        p = ngx_http_apipolicy_status_label(p, &zone[n].name, 128);
        p = ngx_sprintf(p, "\":{\"size\":%uz,\"free\":%uz}", zone[n].size,
                        zone[n].free);
    }

    return p;
}


/* Redis per gateway, then the nodes as the answering worker sees them */

static u_char *
ngx_http_apipolicy_status_redis_json(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    ngx_http_apipolicy_main_conf_t     *amcf;
    ngx_http_apipolicy_status_redis_t  *rs;

    amcf = view->st->amcf;

    p = ngx_http_apipolicy_status_json_open(p, view, NULL);

    if (amcf->redis == NULL) {
        return ngx_cpymem(p, ",\"redis\":null", sizeof(",\"redis\":null") - 1);
    }

    p = ngx_cpymem(p, ",\"redis\":{\"address\":\"",
                   sizeof(",\"redis\":{\"address\":\"") - 1);
    p = ngx_http_apipolicy_status_label(p,
                                    ngx_http_apipolicy_redis_name(amcf->redis),
                                    256);
    rs = &view->sh->redis;

    p = ngx_sprintf(p, "\",\"up\":%s,\"workers\":{\"up\":%ui,\"down\":%ui,"
                       "\"unused\":%ui},\"errors\":{\"connection\":%uA,"
                       "\"reply\":%uA},\"round_trips\":%uA,"
                       "\"round_trip_seconds_sum\":%uA.%06uA",
                    view->redis_up < 0 ? "null"
                    : (view->redis_up ? "true" : "false"),
                    view->redis[NGX_HTTP_APIPOLICY_STATUS_REDIS_UP],
                    view->redis[NGX_HTTP_APIPOLICY_STATUS_REDIS_DOWN],
                    view->redis[NGX_HTTP_APIPOLICY_STATUS_REDIS_UNUSED],
                    rs->errors[0], rs->errors[1],
                    ngx_http_apipolicy_status_rtt_count(rs),
                    rs->rtt_sum / 1000000, rs->rtt_sum % 1000000);

    p = ngx_http_apipolicy_status_redis_nodes_json(p);

    *p++ = '}';

    return p;
}


/*
 * The Redis nodes as the answering worker sees them ("worker" says
 * which one): the server or master, then the Sentinels
 */

static u_char *
ngx_http_apipolicy_status_redis_nodes_json(u_char *p)
{
    ngx_uint_t                             i, n;
    ngx_str_t                              s;
    ngx_http_apipolicy_redis_t            *rd;
    ngx_http_apipolicy_redis_node_info_t   info[NGX_HTTP_APIPOLICY_REDIS_NODES_MAX];

    rd = ngx_http_apipolicy_redis_get((ngx_cycle_t *) ngx_cycle);
    n = rd ? ngx_http_apipolicy_redis_nodes(rd, info) : 0;

    p = ngx_sprintf(p, ",\"worker\":%ui,\"nodes\":[", ngx_worker);

    for (i = 0; i < n; i++) {
        p = ngx_cpymem(p, i ? ",{\"address\":\"" : "{\"address\":\"",
                       i ? sizeof(",{\"address\":\"") - 1
                         : sizeof("{\"address\":\"") - 1);
        p = ngx_http_apipolicy_status_label(p, &info[i].address, 256);

        p = ngx_sprintf(p, "\",\"role\":\"%s\",\"state\":\"%s\","
                           "\"last_error\":", info[i].role, info[i].state);

        if (info[i].error.len) {
            *p++ = '"';
            s = info[i].error;
            p = ngx_http_apipolicy_status_label(p, &s, 256);
            *p++ = '"';

        } else {
            p = ngx_cpymem(p, "null", 4);
        }

        p = ngx_sprintf(p, ",\"reconnects\":%ui,\"commands\":%ui,"
                           "\"replies\":%ui,\"errors\":%ui,"
                           "\"round_trip_seconds\":%ui.%06ui,"
                           "\"tls_resumed\":%ui,\"moved\":%ui,"
                           "\"ask\":%ui}",
                        info[i].reconnects, info[i].commands,
                        info[i].replies, info[i].errors,
                        info[i].rtt / 1000000, info[i].rtt % 1000000,
                        info[i].tls_resumed, info[i].moved, info[i].asked);
    }

    return ngx_cpymem(p, "]", 1);
}



/* ---- Prometheus text --------------------------------------------------- */

#define ngx_http_apipolicy_status_head(p, name, type, help)                  \
    ngx_sprintf(p, "# HELP apipolicy_%s %s\n# TYPE apipolicy_%s %s\n",       \
                name, help, name, type)


static u_char *
ngx_http_apipolicy_status_prometheus(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    ngx_uint_t                           i;
    ngx_http_apipolicy_status_metric_t  *m;

    p = ngx_http_apipolicy_status_head(p, "build_info", "gauge",
                                       "The apipolicy module and the nginx "
                                       "it was built for.");
    p = ngx_sprintf(p, "apipolicy_build_info{version=\"%s\",nginx=\"%s\"} 1\n",
                    NGX_HTTP_APIPOLICY_VERSION, NGINX_VERSION);

    p = ngx_http_apipolicy_status_head(p, "requests_total", "counter",
                                       "Requests that met an apipolicy "
                                       "directive.");
    p = ngx_sprintf(p, "apipolicy_requests_total %uA\n",
                    view->sh->counters[NGX_HTTP_APIPOLICY_STATUS_REQUESTS]);

    for (i = 0; i < NGX_HTTP_APIPOLICY_STATUS_NMETRICS; i++) {
        m = &ngx_http_apipolicy_status_metrics[i];

        p = m->prometheus ? m->prometheus(p, view)
                          : ngx_http_apipolicy_status_prom_metric(p, view, m);
    }

    return p;
}


/* a labelled counter: one line a series */

static u_char *
ngx_http_apipolicy_status_prom_metric(u_char *p,
    ngx_http_apipolicy_status_view_t *view,
    ngx_http_apipolicy_status_metric_t *m)
{
    ngx_str_t          labels[3];
    ngx_uint_t         n, k;
    ngx_atomic_uint_t  value;

    p = ngx_http_apipolicy_status_head(p, m->name, "counter", m->help);

    for (n = 0; m->sample(view, m, n, labels, &value); n++) {
        p = ngx_sprintf(p, "apipolicy_%s{", m->name);

        for (k = 0; m->labels[k]; k++) {
            p = ngx_sprintf(p, "%s%s=\"", k ? "," : "", m->labels[k]);
            p = ngx_http_apipolicy_status_label(p, &labels[k], 128);
            *p++ = '"';
        }

        p = ngx_sprintf(p, "} %uA\n", value);
    }

    return p;
}


/*
 * the start of a sample labelled with a URI or an address:
 * apipolicy_NAME{LABEL="VALUE (escaped, at most 256 bytes); the caller
 * closes the quote and adds any further labels and the value
 */

static u_char *
ngx_http_apipolicy_status_prom_sample(u_char *p, char *name, char *label,
    ngx_str_t *value)
{
    p = ngx_sprintf(p, "apipolicy_%s{%s=\"", name, label);

    return ngx_http_apipolicy_status_label(p, value, 256);
}


/* JWKS sources: fetches by result, and the age of the keys */

static u_char *
ngx_http_apipolicy_status_jwks_prom(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    time_t                           age;
    ngx_str_t                       *label;
    ngx_uint_t                       i, ok, failed;
    ngx_http_apipolicy_main_conf_t  *amcf;

    amcf = view->st->amcf;

    if (amcf->jwks == NULL || amcf->jwks->nelts == 0) {
        return p;
    }

    p = ngx_http_apipolicy_status_head(p, "jwks_fetches_total", "counter",
                                       "JWK Set fetches of "
                                       "apipolicy_jwt_key_request, by "
                                       "result.");

    for (i = 0; i < amcf->jwks->nelts; i++) {
        label = ngx_http_apipolicy_status_jwks_source(amcf, i, &ok, &failed,
                                                      &age);

        p = ngx_http_apipolicy_status_prom_sample(p, "jwks_fetches_total",
                                                  "uri", label);
        p = ngx_sprintf(p, "\",result=\"ok\"} %ui\n", ok);

        p = ngx_http_apipolicy_status_prom_sample(p, "jwks_fetches_total",
                                                  "uri", label);
        p = ngx_sprintf(p, "\",result=\"error\"} %ui\n", failed);
    }

    p = ngx_http_apipolicy_status_head(p, "jwks_age_seconds", "gauge",
                                       "Seconds since the last good JWK "
                                       "Set fetch (absent before the "
                                       "first).");

    for (i = 0; i < amcf->jwks->nelts; i++) {
        label = ngx_http_apipolicy_status_jwks_source(amcf, i, &ok, &failed,
                                                      &age);

        if (age < 0) {
            continue;
        }

        p = ngx_http_apipolicy_status_prom_sample(p, "jwks_age_seconds",
                                                  "uri", label);
        p = ngx_sprintf(p, "\"} %T\n", age);
    }

    return p;
}


/* zones: their size, and the room left */

static u_char *
ngx_http_apipolicy_status_zones_prom(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    size_t                             bytes;
    ngx_uint_t                         n, k;
    ngx_http_apipolicy_status_zone_t  *zone;

    static const char  *names[] = { "zone_size_bytes", "zone_free_bytes" };
    static const char  *help[] = {
        "Size of a shared memory zone.",
        "Free pages of a shared memory zone, in bytes."
    };

    zone = view->zones->elts;

    for (k = 0; k < 2; k++) {
        p = ngx_http_apipolicy_status_head(p, names[k], "gauge", help[k]);

        for (n = 0; n < view->zones->nelts; n++) {
            bytes = k ? zone[n].free : zone[n].size;

            p = ngx_sprintf(p, "apipolicy_%s{zone=\"", names[k]);
            p = ngx_http_apipolicy_status_label(p, &zone[n].name, 128);
            p = ngx_sprintf(p, "\"} %uz\n", bytes);
        }
    }

    return p;
}


/* Redis per gateway, then the nodes as the answering worker sees them */

static u_char *
ngx_http_apipolicy_status_redis_prom(u_char *p,
    ngx_http_apipolicy_status_view_t *view)
{
    ngx_str_t                          *redis;
    ngx_uint_t                          i;
    ngx_atomic_uint_t                   cum;
    ngx_http_apipolicy_main_conf_t     *amcf;
    ngx_http_apipolicy_status_redis_t  *rs;

    amcf = view->st->amcf;

    if (amcf->redis == NULL) {
        return p;
    }

    redis = ngx_http_apipolicy_redis_name(amcf->redis);

    if (view->redis_up >= 0) {
        p = ngx_http_apipolicy_status_head(p, "redis_up", "gauge",
                                           "1 when the workers' Redis "
                                           "connections answer, 0 when one "
                                           "cannot reach Redis (absent "
                                           "before any was used).");
        p = ngx_http_apipolicy_status_prom_sample(p, "redis_up", "address",
                                                  redis);
        p = ngx_sprintf(p, "\"} %i\n", view->redis_up);
    }

    p = ngx_http_apipolicy_status_head(p, "redis_workers", "gauge",
                                       "Workers by the state of their Redis "
                                       "connection.");

    for (i = 0; i < 3; i++) {
        p = ngx_sprintf(p, "apipolicy_redis_workers{state=\"%V\"} %ui\n",
                        &ngx_http_apipolicy_status_redis_states[i],
                        view->redis[i]);
    }

    rs = &view->sh->redis;

    p = ngx_http_apipolicy_status_head(p, "redis_errors_total", "counter",
                                       "Redis connections that failed "
                                       "(refused, timed out, closed, "
                                       "unreadable) and error replies.");

    for (i = 0; i < 2; i++) {
        p = ngx_sprintf(p, "apipolicy_redis_errors_total{type=\"%V\"} %uA\n",
                        &ngx_http_apipolicy_status_redis_errors[i],
                        rs->errors[i]);
    }

    p = ngx_http_apipolicy_status_head(p, "redis_round_trip_seconds",
                                       "histogram",
                                       "Time from writing a batch of "
                                       "commands to its last reply.");

    cum = 0;

    for (i = 0; i < NGX_HTTP_APIPOLICY_STATUS_RTT_NBUCKETS; i++) {
        cum += rs->rtt[i];

        p = ngx_cpymem(p, "apipolicy_redis_round_trip_seconds_bucket{le=\"",
                       sizeof("apipolicy_redis_round_trip_seconds_bucket"
                              "{le=\"") - 1);

        if (i == NGX_HTTP_APIPOLICY_STATUS_RTT_NBUCKETS - 1) {
            p = ngx_cpymem(p, "+Inf", 4);

        } else {
            p = ngx_sprintf(p, "%ui.%06ui",
                            ngx_http_apipolicy_status_rtt_bounds[i] / 1000000,
                            ngx_http_apipolicy_status_rtt_bounds[i] % 1000000);
        }

        p = ngx_sprintf(p, "\"} %uA\n", cum);
    }

    p = ngx_sprintf(p, "apipolicy_redis_round_trip_seconds_sum %uA.%06uA\n"
                       "apipolicy_redis_round_trip_seconds_count %uA\n",
                    rs->rtt_sum / 1000000, rs->rtt_sum % 1000000, cum);

    return ngx_http_apipolicy_status_redis_nodes_prom(p);
}


/* the same in Prometheus text, labelled with the worker */

static u_char *
ngx_http_apipolicy_status_redis_nodes_prom(u_char *p)
{
    ngx_uint_t                             i, k, n, v;
    ngx_http_apipolicy_redis_t            *rd;
    ngx_http_apipolicy_redis_node_info_t   info[NGX_HTTP_APIPOLICY_REDIS_NODES_MAX];

    /* a counter of the node's info at "offset", or the state or the RTT */
#define NGX_HTTP_APIPOLICY_STATUS_NODE_UP   ((size_t) -1)
#define NGX_HTTP_APIPOLICY_STATUS_NODE_RTT  ((size_t) -2)
#define ngx_http_apipolicy_status_node(field)                                \
    offsetof(ngx_http_apipolicy_redis_node_info_t, field)

    static struct {
        char        *name;
        char        *type;
        char        *help;
        size_t       offset;
    } metrics[] = {
        { "redis_node_up", "gauge",
          "1 when the answering worker last reached this Redis node, 0 when "
          "it could not.", NGX_HTTP_APIPOLICY_STATUS_NODE_UP },
        { "redis_node_commands_total", "counter",
          "Commands the answering worker sent to this Redis node.",
          ngx_http_apipolicy_status_node(commands) },
        { "redis_node_replies_total", "counter",
          "Replies the answering worker had from this Redis node.",
          ngx_http_apipolicy_status_node(replies) },
        { "redis_node_errors_total", "counter",
          "Error replies and failed connections of this Redis node, as the "
          "answering worker saw them.",
          ngx_http_apipolicy_status_node(errors) },
        { "redis_node_reconnects_total", "counter",
          "Connections the answering worker made again to this Redis node.",
          ngx_http_apipolicy_status_node(reconnects) },
        { "redis_node_moved_total", "counter",
          "Redis Cluster -MOVED redirections this node answered the "
          "answering worker.", ngx_http_apipolicy_status_node(moved) },
        { "redis_node_ask_total", "counter",
          "Redis Cluster -ASK redirections this node answered the "
          "answering worker.", ngx_http_apipolicy_status_node(asked) },
        { "redis_node_round_trip_seconds", "gauge",
          "The last batch's round trip to this Redis node.",
          NGX_HTTP_APIPOLICY_STATUS_NODE_RTT }
    };

    rd = ngx_http_apipolicy_redis_get((ngx_cycle_t *) ngx_cycle);
    n = rd ? ngx_http_apipolicy_redis_nodes(rd, info) : 0;

    if (n == 0) {
        return p;
    }

    for (k = 0; k < sizeof(metrics) / sizeof(metrics[0]); k++) {
        p = ngx_http_apipolicy_status_head(p, metrics[k].name, metrics[k].type,
                                       metrics[k].help);

        for (i = 0; i < n; i++) {
            if (metrics[k].offset == NGX_HTTP_APIPOLICY_STATUS_NODE_UP
                && ngx_strcmp(info[i].state, "unused") == 0)
            {
                continue;
            }

            p = ngx_http_apipolicy_status_prom_sample(p, metrics[k].name,
                                                      "address",
                                                      &info[i].address);
            p = ngx_sprintf(p, "\",role=\"%s\",worker=\"%ui\"} ",
                            info[i].role, ngx_worker);

            switch (metrics[k].offset) {
            case NGX_HTTP_APIPOLICY_STATUS_NODE_UP:
                v = ngx_strcmp(info[i].state, "up") == 0;
                break;
            case NGX_HTTP_APIPOLICY_STATUS_NODE_RTT:
                p = ngx_sprintf(p, "%ui.%06ui\n", info[i].rtt / 1000000,
                                info[i].rtt % 1000000);
                continue;
            default:
                v = *(ngx_uint_t *) ((u_char *) &info[i] + metrics[k].offset);
            }

            p = ngx_sprintf(p, "%ui\n", v);
        }
    }

    return p;
}


/* ---- configuration --------------------------------------------------- */

void
ngx_http_apipolicy_status_create_loc_conf(ngx_conf_t *cf,
    ngx_http_apipolicy_status_conf_t *conf)
{
    conf->format = NGX_CONF_UNSET_UINT;
}


/*
 * Nothing to inherit: the format belongs to the location whose content
 * handler apipolicy_status set, and nested locations do not inherit that
 */

char *
ngx_http_apipolicy_status_merge(ngx_conf_t *cf,
    ngx_http_apipolicy_status_conf_t *prev,
    ngx_http_apipolicy_status_conf_t *conf)
{
    return NGX_CONF_OK;
}


/* the counting in the LOG phase runs wherever the zone exists */

ngx_uint_t
ngx_http_apipolicy_status_phases(ngx_http_apipolicy_status_conf_t *conf)
{
    return 0;
}


/* apipolicy_status [json|prometheus] (location) */

char *
ngx_http_apipolicy_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_apipolicy_loc_conf_t  *alcf = conf;

    ngx_str_t                       *value;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_apipolicy_main_conf_t  *amcf;

    if (alcf->status.format != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    alcf->status.format = NGX_HTTP_APIPOLICY_STATUS_JSON;

    if (cf->args->nelts == 2) {
        if (ngx_strcmp(value[1].data, "prometheus") == 0) {
            alcf->status.format = NGX_HTTP_APIPOLICY_STATUS_PROMETHEUS;

        } else if (ngx_strcmp(value[1].data, "json") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid format \"%V\": use \"json\" or "
                               "\"prometheus\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_apipolicy_status_handler;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);
    amcf->used = 1;

    return NGX_CONF_OK;
}


/* the zone, once any apipolicy directive is used (postconfiguration) */

ngx_int_t
ngx_http_apipolicy_status_postconfiguration(ngx_conf_t *cf)
{
    ngx_uint_t                         n;
    ngx_shm_zone_t                    *shm_zone;
    ngx_http_apipolicy_status_data_t  *st;
    ngx_http_apipolicy_main_conf_t    *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_apipolicy_module);

    if (!amcf->used) {
        return NGX_OK;
    }

    st = ngx_pcalloc(cf->pool, sizeof(ngx_http_apipolicy_status_data_t));
    if (st == NULL) {
        return NGX_ERROR;
    }

    st->amcf = amcf;

    if (amcf->ratelimit_zones && amcf->ratelimit_tiers) {
        st->ntiers = amcf->ratelimit_tiers->nelts;
        n = amcf->ratelimit_zones->nelts * st->ntiers;

        st->ratelimit = ngx_pcalloc(cf->pool,
                              n * sizeof(ngx_http_apipolicy_status_series_t *));
        if (st->ratelimit == NULL) {
            return NGX_ERROR;
        }
    }

    /* the counters' address is set by the init function */

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_apipolicy_status_zone_name,
                                     NGX_HTTP_APIPOLICY_STATUS_SIZE,
                                     &ngx_http_apipolicy_module);

    if (shm_zone == NULL || shm_zone->data) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the shared memory zone name \"apipolicy_status\" is "
                      "reserved for apipolicy's counters: give the zone "
                      "declared with it another name");
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_apipolicy_status_init_zone;
    shm_zone->data = st;

    amcf->status = shm_zone;

    return NGX_OK;
}


/*
 * The counters of a new zone, or of the zone kept across a reload (a
 * zone of another layout, from another build of the module, starts
 * afresh); and the rate limit series of this configuration, found by
 * zone and tier name (or made), so that a reload keeps their counts
 */

static ngx_int_t
ngx_http_apipolicy_status_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_str_t                            *zname;
    ngx_uint_t                            z, t;
    ngx_http_apipolicy_status_sh_t       *sh;
    ngx_http_apipolicy_status_data_t     *st;
    ngx_http_apipolicy_ratelimit_tier_t  *tier;
    ngx_http_apipolicy_main_conf_t       *amcf;

    st = shm_zone->data;
    amcf = st->amcf;

    if (ngx_http_apipolicy_shm_kept(shm_zone, data,
                                    NGX_HTTP_APIPOLICY_STATUS_MAGIC,
                                    (void **) &sh)
        != NGX_OK
        && ngx_http_apipolicy_shm_root_new(shm_zone, "apipolicy_status",
                                    NGX_HTTP_APIPOLICY_STATUS_MAGIC,
                                    sizeof(ngx_http_apipolicy_status_sh_t),
                                    (void **) &sh)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    st->sh = sh;

    if (st->ratelimit == NULL) {
        return NGX_OK;
    }

    tier = amcf->ratelimit_tiers->elts;

    for (z = 0; z < amcf->ratelimit_zones->nelts; z++) {
        zname = ngx_http_apipolicy_ratelimit_zone_name(amcf, z);

        for (t = 0; t < st->ntiers; t++) {
            st->ratelimit[z * st->ntiers + t] =
                ngx_http_apipolicy_status_series(shm_zone, sh, zname,
                                                 &tier[t].name);
        }
    }

    return NGX_OK;
}


/* the counters of a zone and tier: found by their names, or made */

static ngx_http_apipolicy_status_series_t *
ngx_http_apipolicy_status_series(ngx_shm_zone_t *shm_zone,
    ngx_http_apipolicy_status_sh_t *sh, ngx_str_t *zone, ngx_str_t *tier)
{
    ngx_http_apipolicy_status_series_t  *series;

    for (series = sh->ratelimit; series; series = series->next) {
        if (series->zone_len == zone->len
            && series->tier_len == tier->len
            && ngx_memcmp(series->names, zone->data, zone->len) == 0
            && ngx_memcmp(series->names + zone->len, tier->data, tier->len)
               == 0)
        {
            return series;
        }
    }

    series = ngx_slab_calloc((ngx_slab_pool_t *) shm_zone->shm.addr,
                             sizeof(ngx_http_apipolicy_status_series_t)
                             + zone->len + tier->len);
    if (series == NULL) {
        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                      "apipolicy_status: no room to count the tier \"%V\" "
                      "of the zone \"%V\"", tier, zone);
        return NULL;
    }

    series->zone_len = zone->len;
    series->tier_len = tier->len;
    ngx_memcpy(series->names, zone->data, zone->len);
    ngx_memcpy(series->names + zone->len, tier->data, tier->len);

    series->next = sh->ratelimit;
    sh->ratelimit = series;

    return series;
}
