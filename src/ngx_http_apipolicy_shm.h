
/*
 * Copyright (C) apipolicy authors
 */


#ifndef _NGX_HTTP_APIPOLICY_SHM_H_INCLUDED_
#define _NGX_HTTP_APIPOLICY_SHM_H_INCLUDED_


#include "ngx_http_apipolicy.h"


/*
 * The root of a zone of ours (a struct that starts with uint64_t magic):
 * NGX_OK with *root when the zone was kept across a reload, NGX_DECLINED
 * with a new zeroed root of "size" bytes for a new zone, NGX_ERROR (said)
 * when the zone holds another kind of data.
 */
ngx_int_t ngx_http_apipolicy_shm_root(ngx_shm_zone_t *shm_zone, void *data,
    const char *directive, uint64_t magic, size_t size, void **root);

/*
 * Its two steps: the root of a zone kept across a reload (NGX_OK), none
 * for a new zone (NGX_DECLINED), NGX_ABORT when the zone holds another
 * kind or layout of data; a new zeroed root, and the zone's name in the
 * slab allocator's messages
 */
ngx_int_t ngx_http_apipolicy_shm_kept(ngx_shm_zone_t *shm_zone, void *data,
    uint64_t magic, void **root);
ngx_int_t ngx_http_apipolicy_shm_root_new(ngx_shm_zone_t *shm_zone,
    const char *directive, uint64_t magic, size_t size, void **root);


/*
 * Entries keyed by a SHA-256 (verified tokens, webhook ids, idempotency
 * keys) begin with this head; an area's entry adds its own fields after
 * it.  A pinned entry is never evicted before its expiry (an idempotency
 * key in flight).
 */
typedef struct ngx_http_apipolicy_hnode_s  ngx_http_apipolicy_hnode_t;

struct ngx_http_apipolicy_hnode_s {
    ngx_http_apipolicy_hnode_t        *next;      /* in its bucket */
    u_char                             pinned;
    u_char                             data[3];   /* the area's */
    uint32_t                           expires;   /* ngx_time() based */
    ngx_queue_t                        queue;     /* LRU */
    u_char                             key[32];
};


/*
 * A keyed LRU zone: the verified-token cache, webhook replay ids and
 * idempotency keys.  Its root begins with ngx_http_apipolicy_shm_sh_t;
 * an area that keeps more per zone makes its root larger ("root").
 */

/*
 * A bucket of the index: its chain, oldest entry first, and a filter of
 * the keys in it (two bits a key; a superset, cleared when the chain is
 * empty): a lookup of a key not in the zone reads the bucket only, not
 * the entries; the oldest entry, evicted first, is unlinked without
 * reading the others, and a new one linked at the end without reading
 * them either.
 */
typedef struct {
    uint32_t                           head;      /* offset in the zone / 8 */
    uint32_t                           tail;
    uint32_t                           n;         /* entries in the chain */
    uint32_t                           filter;
} ngx_http_apipolicy_shm_bucket_t;


typedef struct {
    uint64_t                           magic;
    ngx_http_apipolicy_shm_bucket_t   *buckets;   /* a hash of the keys */
    ngx_uint_t                         mask;      /* buckets - 1 */
    ngx_queue_t                        queue;     /* most recent first */
    ngx_uint_t                         entries;
    ngx_uint_t                         evicted;   /* before their expiry */
    ngx_uint_t                         full;      /* no room could be made */
} ngx_http_apipolicy_shm_sh_t;


typedef struct ngx_http_apipolicy_shm_s  ngx_http_apipolicy_shm_t;

/*
 * free (under the zone's lock): what the area's part of "hn" holds,
 * freed as the entry goes;
 * "reuse": the node itself goes to a new entry of the zone right after
 * (insert), which finds the area's fields as this left them (insert
 * clears only the head): an allocation kept there for the new entry
 * (an idempotency key's spare answer slot) must be said so in them
 */
typedef void (*ngx_http_apipolicy_shm_free_pt)(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn, ngx_uint_t reuse);

struct ngx_http_apipolicy_shm_s {
    ngx_http_apipolicy_shm_sh_t       *sh;
    ngx_slab_pool_t                   *shpool;
    ngx_str_t                          name;
    const char                        *directive;
    uint64_t                           magic;
    size_t                             root;      /* size of the root */
    size_t                             node;      /* of every entry, or 0 */
    ngx_http_apipolicy_shm_free_pt     free;      /* NULL: the node only */
};


/*
 * Configuration: the zone NAME:SIZE made with "shm" as its data (an area
 * may embed the structure first in its own); NULL on error (said).
 */
ngx_shm_zone_t *ngx_http_apipolicy_shm_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, ngx_http_apipolicy_shm_t *shm);

/*
 * Run time, with shm->shpool->mutex held.
 *
 * lookup: the entry of "key", live or not, left where it is.
 * find:   the live entry of "key", moved to the front of the LRU; an
 *         expired one is freed and NULL answered.
 * alloc:  "size" bytes of the zone; when it is full, entries are freed
 *         from the back of the LRU (expired or not, never a pinned one
 *         before its expiry) until the allocation succeeds; NULL when no
 *         room can be made.  When "size" is shm->node (every entry of the
 *         zone is that size), the first entry evicted is not freed but
 *         taken as it is: no search of the slab allocator's bitmaps, and
 *         memory just read.
 * insert: a new entry of "size" bytes (the hnode head and the area's
 *         fields, zeroed) at the front, through alloc; NULL when no room
 *         can be made.  An entry evicted for it is handed over with its
 *         area's fields as the free callback left them (reuse).
 * same_slot: whether the slab allocator gives sizes "a" and "b" slots
 *         of one size (up to half a page: 8, 16, ... bytes).
 * expire: up to "n" expired entries freed from the back.
 * touch:  "hn" moved to the front of the LRU.

 */
ngx_http_apipolicy_hnode_t *ngx_http_apipolicy_shm_lookup(
    ngx_http_apipolicy_shm_t *shm, u_char *key);
ngx_http_apipolicy_hnode_t *ngx_http_apipolicy_shm_find(
    ngx_http_apipolicy_shm_t *shm, u_char *key);
void *ngx_http_apipolicy_shm_alloc(ngx_http_apipolicy_shm_t *shm,
    size_t size);
ngx_http_apipolicy_hnode_t *ngx_http_apipolicy_shm_insert(
    ngx_http_apipolicy_shm_t *shm, u_char *key, size_t size, time_t expires);
void ngx_http_apipolicy_shm_delete(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn);
void ngx_http_apipolicy_shm_expire(ngx_http_apipolicy_shm_t *shm,
    ngx_uint_t n);
void ngx_http_apipolicy_shm_touch(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn);


/* the bucket of "key" (also for t/unit/shm-test.c) */

static ngx_inline ngx_http_apipolicy_shm_bucket_t *
ngx_http_apipolicy_shm_bucket(ngx_http_apipolicy_shm_sh_t *sh, u_char *key)
{
    uint32_t  h;

    ngx_memcpy(&h, key, sizeof(uint32_t));     /* a SHA-256: uniform */

    return &sh->buckets[h & sh->mask];
}


static ngx_inline ngx_uint_t
ngx_http_apipolicy_shm_same_slot(size_t a, size_t b)
{
    size_t  sa, sb;

    if (a > ngx_pagesize / 2 || b > ngx_pagesize / 2) {
        return 0;
    }

    for (sa = 8; sa < a; sa <<= 1) { /* void */ }
    for (sb = 8; sb < b; sb <<= 1) { /* void */ }

    return sa == sb;
}


/*
 * A hint, not an access: the line at "p" is brought into the CPU's cache
 * (for writing when "w") while other work goes on; it never faults.
 */

#if (__GNUC__ || __clang__)
#define ngx_http_apipolicy_shm_hint(p, w)  __builtin_prefetch((p), (w))
#else
#define ngx_http_apipolicy_shm_hint(p, w)
#endif


/*
 * Hints ahead of a lookup and an insert, taken without the zone's lock
 * while the request does other work (the body read, its fingerprint):
 * in a zone of megabytes none of the lines below is in the CPU's cache,
 * and each would be waited for in turn under the lock.
 *
 * prefetch:      the bucket of "key", and the node at the back of the
 *                LRU, which an insert into a full zone evicts;
 * prefetch_back: that node's bucket (its key read: the node's line was
 *                brought in by prefetch).
 *
 * Read without the lock, the back of the LRU may change before the lock
 * is taken: what is read only picks lines to bring in, all of them in
 * the zone (its index, its nodes: mapped for as long as the zone), and
 * nothing read is used otherwise.
 */
void ngx_http_apipolicy_shm_prefetch(ngx_http_apipolicy_shm_t *shm,
    u_char *key);
void ngx_http_apipolicy_shm_prefetch_back(ngx_http_apipolicy_shm_t *shm);


#endif /* _NGX_HTTP_APIPOLICY_SHM_H_INCLUDED_ */
