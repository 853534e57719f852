
/*
 * Copyright (C) apipolicy authors
 *
 * Shared-memory zones of apipolicy: the root kept across reloads, and the
 * keyed LRU zone that the verified-token cache, webhook replay ids and
 * idempotency keys are made of.
 *
 *   index    entries keyed by a SHA-256, in a hash table of about one
 *            bucket per 256 bytes of zone (its first bytes pick the
 *            bucket), 1/16 of the zone.  A bucket holds its chain's
 *            first and last entry and a filter of two bits a key (bytes
 *            4 and 5): in a zone of megabytes the index and the entries
 *            are not in the CPU's cache, and a lookup of a key not in
 *            the zone (every new idempotency key, every token not yet
 *            verified) reads the bucket only, about 1 time in 200 an
 *            entry too (t/unit/shm-test.c); with a pointer a bucket and
 *            one bucket per 128 bytes, it read an entry 1 time in 3.
 *            The chain keeps the oldest first: the oldest entry,
 *            evicted first, is unlinked and a new one linked at the end
 *            without reading the entries between.
 *   LRU      a queue, most recently used first; find() moves a hit to
 *            the front
 *   expiry   each entry has one; find() frees an expired entry, expire()
 *            frees expired entries from the back
 *   room     alloc() frees entries from the back until the allocation
 *            fits: as many as needed (a response of 40 KB needs whole
 *            pages, which one small entry never frees), oldest first,
 *            never a pinned entry before its expiry; NULL only when no
 *            room can be made.  An insert in a full zone of entries of
 *            one size takes the oldest entry's node as it is, and its
 *            area may hand on memory with it (an idempotency answer's
 *            slot, which the new key's answer takes when it fits)
 *   hints    prefetch() and prefetch_back(), taken without the lock
 *            before a lookup and an insert: the key's bucket, the node
 *            at the back of the LRU and its bucket into the CPU's cache
 *            while the request does other work, instead of waited for
 *            in turn under the lock (a new idempotency key in a full
 *            zone of megabytes)
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_shm.h"
#include "ngx_http_apipolicy_util.h"


static ngx_int_t ngx_http_apipolicy_shm_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void *ngx_http_apipolicy_shm_room(ngx_http_apipolicy_shm_t *shm,
    size_t size, ngx_uint_t *reused);
static void ngx_http_apipolicy_shm_remove(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn, ngx_uint_t reuse);
static void ngx_http_apipolicy_shm_unlink(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_shm_bucket_t *b, ngx_http_apipolicy_hnode_t *hn);


ngx_int_t
ngx_http_apipolicy_shm_root(ngx_shm_zone_t *shm_zone, void *data,
    const char *directive, uint64_t magic, size_t size, void **root)
{
    ngx_int_t  rc;

    rc = ngx_http_apipolicy_shm_kept(shm_zone, data, magic, root);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_ABORT) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "%s: the zone \"%V\" holds data of another kind "
                      "or layout; rename the zone or change its size",
                      directive, &shm_zone->shm.name);
        return NGX_ERROR;
    }

    if (ngx_http_apipolicy_shm_root_new(shm_zone, directive, magic, size,
                                        root)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_apipolicy_shm_kept(ngx_shm_zone_t *shm_zone, void *data,
    uint64_t magic, void **root)
{
    uint64_t         *sh;
    ngx_slab_pool_t  *shpool;

    if (data == NULL && !shm_zone->shm.exists) {
        return NGX_DECLINED;
    }

    /*
     * kept across a reload (same name and size): the root is read from
     * the zone itself, not from the old cycle's configuration, whose
     * layout may come from an older build of the module
     */

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    sh = shpool->data;

    if (sh == NULL || *sh != magic) {
        return NGX_ABORT;
    }

    *root = sh;

    return NGX_OK;
}


ngx_int_t
ngx_http_apipolicy_shm_root_new(ngx_shm_zone_t *shm_zone,
    const char *directive, uint64_t magic, size_t size, void **root)
{
    size_t            len;
    uint64_t         *sh;
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    sh = ngx_slab_calloc(shpool, size);
    if (sh == NULL) {
        return NGX_ERROR;
    }

    len = sizeof(" in  zone \"\"") + ngx_strlen(directive)
          + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in %s zone \"%V\"%Z", directive,
                &shm_zone->shm.name);

    shpool->log_nomem = 0;

    *sh = magic;
    shpool->data = sh;
    *root = sh;

    return NGX_OK;
}


ngx_shm_zone_t *
ngx_http_apipolicy_shm_add(ngx_conf_t *cf, ngx_str_t *name, size_t size,
    ngx_http_apipolicy_shm_t *shm)
{
    shm->name = *name;

    /* the index holds an entry's place in 32 bits of 8 bytes */

    if ((uint64_t) size > ((uint64_t) 0xffffffff << 3)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s: the zone \"%V\" is larger than 32g, "
                           "the most a zone of this kind can be",
                           shm->directive, name);
        return NULL;
    }

    return ngx_http_apipolicy_conf_shm_add(cf, name, size,
                                           ngx_http_apipolicy_shm_init_zone,
                                           shm);
}


static ngx_int_t
ngx_http_apipolicy_shm_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                        n;
    ngx_int_t                     rc;
    ngx_http_apipolicy_shm_t     *shm;
    ngx_http_apipolicy_shm_sh_t  *sh;

    shm = shm_zone->data;

    rc = ngx_http_apipolicy_shm_root(shm_zone, data, shm->directive,
                                     shm->magic,
                                     ngx_max(shm->root,
                                         sizeof(ngx_http_apipolicy_shm_sh_t)),
                                     (void **) &sh);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    shm->sh = sh;
    shm->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (rc == NGX_DECLINED) {
        for (n = 64; n < shm_zone->shm.size / 256; n *= 2) { /* void */ }

        sh->buckets = ngx_slab_calloc(shm->shpool,
                                 n * sizeof(ngx_http_apipolicy_shm_bucket_t));
        if (sh->buckets == NULL) {
            return NGX_ERROR;
        }

        sh->mask = n - 1;
        ngx_queue_init(&sh->queue);
    }

    return NGX_OK;
}


/* an entry's place in the zone, as its bucket holds it */

#define ngx_http_apipolicy_shm_off(shm, hn)                                  \
    ((uint32_t) (((u_char *) (hn) - (u_char *) (shm)->shpool) >> 3))

#define ngx_http_apipolicy_shm_at(shm, off)                                  \
    ((ngx_http_apipolicy_hnode_t *) ((u_char *) (shm)->shpool                \
                                     + ((size_t) (off) << 3)))


/* the bits of "key" in its bucket's filter: key bytes 4 and 5 */

static ngx_inline uint32_t
ngx_http_apipolicy_shm_bits(u_char *key)
{
    return ((uint32_t) 1 << (key[4] & 31)) | ((uint32_t) 1 << (key[5] & 31));
}


ngx_http_apipolicy_hnode_t *
ngx_http_apipolicy_shm_lookup(ngx_http_apipolicy_shm_t *shm, u_char *key)
{
    uint32_t                          bits;
    ngx_http_apipolicy_hnode_t       *hn;
    ngx_http_apipolicy_shm_bucket_t  *b;

    b = ngx_http_apipolicy_shm_bucket(shm->sh, key);
    bits = ngx_http_apipolicy_shm_bits(key);

    if (b->n == 0 || (b->filter & bits) != bits) {
        return NULL;
    }

    for (hn = ngx_http_apipolicy_shm_at(shm, b->head); hn; hn = hn->next) {
        if (ngx_memcmp(hn->key, key, 32) == 0) {
            return hn;
        }
    }

    return NULL;
}


ngx_http_apipolicy_hnode_t *
ngx_http_apipolicy_shm_find(ngx_http_apipolicy_shm_t *shm, u_char *key)
{
    ngx_http_apipolicy_hnode_t  *hn;

    hn = ngx_http_apipolicy_shm_lookup(shm, key);

    if (hn == NULL) {
        return NULL;
    }

    if ((time_t) hn->expires <= ngx_time()) {
        ngx_http_apipolicy_shm_delete(shm, hn);
        return NULL;
    }

    ngx_http_apipolicy_shm_touch(shm, hn);

    return hn;
}


void
ngx_http_apipolicy_shm_touch(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn)
{
    ngx_queue_remove(&hn->queue);
    ngx_queue_insert_head(&shm->sh->queue, &hn->queue);
}


void *
ngx_http_apipolicy_shm_alloc(ngx_http_apipolicy_shm_t *shm, size_t size)
{
    return ngx_http_apipolicy_shm_room(shm, size, NULL);
}


/*
 * alloc(); for an entry ("reused" not NULL) an entry evicted whole is
 * handed over as it is, with what its area left in it for the next one
 */

static void *
ngx_http_apipolicy_shm_room(ngx_http_apipolicy_shm_t *shm, size_t size,
    ngx_uint_t *reused)
{
    void                        *p;
    time_t                       now;
    ngx_queue_t                 *q, *prev;
    ngx_http_apipolicy_hnode_t  *hn;

    p = ngx_slab_alloc_locked(shm->shpool, size);

    if (p) {
        return p;
    }

    /* from the back: as many entries as the allocation needs */

    now = ngx_time();

    for (q = ngx_queue_last(&shm->sh->queue);
         q != ngx_queue_sentinel(&shm->sh->queue);
         q = prev)
    {
        prev = ngx_queue_prev(q);
        hn = ngx_queue_data(q, ngx_http_apipolicy_hnode_t, queue);

        if ((time_t) hn->expires > now) {

            if (hn->pinned) {
                continue;
            }

            shm->sh->evicted++;
        }

        if (size == shm->node) {
            ngx_http_apipolicy_shm_remove(shm, hn, reused != NULL);

            if (reused) {
                *reused = 1;
            }

            return hn;
        }

        ngx_http_apipolicy_shm_delete(shm, hn);

        p = ngx_slab_alloc_locked(shm->shpool, size);

        if (p) {
            return p;
        }
    }

    return NULL;
}


ngx_http_apipolicy_hnode_t *
ngx_http_apipolicy_shm_insert(ngx_http_apipolicy_shm_t *shm, u_char *key,
    size_t size, time_t expires)
{
    ngx_uint_t                        reused;
    ngx_http_apipolicy_hnode_t       *hn;
    ngx_http_apipolicy_shm_bucket_t  *b;

    reused = 0;

    hn = ngx_http_apipolicy_shm_room(shm, size, &reused);

    if (hn == NULL) {
        return NULL;
    }

    /* an evicted entry's area fields are what its area left for this one */

    ngx_memzero(hn, (reused && shm->free) ? sizeof(ngx_http_apipolicy_hnode_t)
                                          : size);

    ngx_memcpy(hn->key, key, 32);
    hn->expires = (uint32_t) expires;

    /* at the end of its chain: the oldest entries come first */

    b = ngx_http_apipolicy_shm_bucket(shm->sh, key);

    if (b->n) {
        ngx_http_apipolicy_shm_at(shm, b->tail)->next = hn;

    } else {
        b->head = ngx_http_apipolicy_shm_off(shm, hn);
        b->filter = 0;
    }

    b->tail = ngx_http_apipolicy_shm_off(shm, hn);
    b->filter |= ngx_http_apipolicy_shm_bits(key);
    b->n++;

    ngx_queue_insert_head(&shm->sh->queue, &hn->queue);
    shm->sh->entries++;

    return hn;
}


void
ngx_http_apipolicy_shm_delete(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn)
{
    ngx_http_apipolicy_shm_remove(shm, hn, 0);
    ngx_slab_free_locked(shm->shpool, hn);
}


/* the node at the back of the LRU, read without the lock; NULL: none */

static ngx_inline u_char *
ngx_http_apipolicy_shm_back(ngx_http_apipolicy_shm_t *shm)
{
    ngx_queue_t  *q;

    q = ((volatile ngx_queue_t *) &shm->sh->queue)->prev;

    if (q == &shm->sh->queue) {
        return NULL;
    }

    return (u_char *) ngx_queue_data(q, ngx_http_apipolicy_hnode_t, queue);
}


void
ngx_http_apipolicy_shm_prefetch(ngx_http_apipolicy_shm_t *shm, u_char *key)
{
    u_char  *p;

    ngx_http_apipolicy_shm_hint(ngx_http_apipolicy_shm_bucket(shm->sh, key),
                                1);

    p = ngx_http_apipolicy_shm_back(shm);

    if (p) {
        /* the head, and the area's fields after it (a node of 128 bytes) */
        ngx_http_apipolicy_shm_hint(p, 1);
        ngx_http_apipolicy_shm_hint(p + 64, 1);
    }
}


void
ngx_http_apipolicy_shm_prefetch_back(ngx_http_apipolicy_shm_t *shm)
{
    ngx_http_apipolicy_hnode_t  *hn;

    hn = (ngx_http_apipolicy_hnode_t *) ngx_http_apipolicy_shm_back(shm);

    if (hn) {
        ngx_http_apipolicy_shm_hint(ngx_http_apipolicy_shm_bucket(shm->sh,
                                                                  hn->key), 1);
    }
}


/*
 * "hn" out of the index and the LRU, what it holds freed (or, "reuse",
 * what its area keeps for the next entry), not itself
 */

static void
ngx_http_apipolicy_shm_remove(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_hnode_t *hn, ngx_uint_t reuse)
{
    ngx_http_apipolicy_shm_bucket_t  *b;

    if (shm->free) {
        shm->free(shm, hn, reuse);
    }

    b = ngx_http_apipolicy_shm_bucket(shm->sh, hn->key);

    ngx_http_apipolicy_shm_unlink(shm, b, hn);

    ngx_queue_remove(&hn->queue);

    shm->sh->entries--;
}


/* "hn" out of the chain of "b" */

static void
ngx_http_apipolicy_shm_unlink(ngx_http_apipolicy_shm_t *shm,
    ngx_http_apipolicy_shm_bucket_t *b, ngx_http_apipolicy_hnode_t *hn)
{
    ngx_http_apipolicy_hnode_t  *p;

    b->n--;

    p = ngx_http_apipolicy_shm_at(shm, b->head);

    if (p == hn) {
        /* the oldest: its bucket is all that changes */

        if (hn->next) {
            b->head = ngx_http_apipolicy_shm_off(shm, hn->next);
        }

        return;
    }

    while (p->next != hn) {
        p = p->next;
    }

    p->next = hn->next;

    if (hn->next == NULL) {
        b->tail = ngx_http_apipolicy_shm_off(shm, p);
    }
}


void
ngx_http_apipolicy_shm_expire(ngx_http_apipolicy_shm_t *shm, ngx_uint_t n)
{
    time_t                       now;
    ngx_queue_t                 *q;
    ngx_http_apipolicy_hnode_t  *hn;

    now = ngx_time();

    while (n-- && !ngx_queue_empty(&shm->sh->queue)) {

        q = ngx_queue_last(&shm->sh->queue);
        hn = ngx_queue_data(q, ngx_http_apipolicy_hnode_t, queue);

        if ((time_t) hn->expires > now) {
            return;
        }

        ngx_http_apipolicy_shm_delete(shm, hn);
    }
}
