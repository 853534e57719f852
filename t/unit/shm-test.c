
/*
 * Copyright (C) apipolicy authors
 *
 * Unit test of the keyed LRU zone (src/ngx_http_apipolicy_shm.c) that the
 * verified-token cache, webhook replay ids and idempotency keys are made
 * of, printed as TAP:
 *
 *   1. one bucket: entries whose keys share the bucket, with filter bits
 *      equal and different, found and unlinked at the front, middle and
 *      back;
 *   2. random inserts, lookups and deletes against a plain list of the
 *      keys, over few buckets and few filter bits; every bucket's count,
 *      last entry and filter follow its chain;
 *   3. a chain of 5,000, and how often a lookup of an absent key gets
 *      past its bucket in a zone as full as the index is sized for;
 *   4. room: alloc() frees from the back of the LRU, never a pinned entry
 *      before its expiry, and answers NULL when nothing can be freed;
 *   5. in a zone whose entries are all one size, a full zone's oldest
 *      entry is taken as it is for a new one (20,000 keys through 100
 *      slots, each insert after the hints that bring its lines into the
 *      cache, which change nothing), an allocation of another size
 *      still frees it;
 *   6. the area's part of an entry taken that way: its free callback is
 *      told (reuse), the new entry finds the area's fields as the
 *      callback left them and its head cleared; every other way an entry
 *      goes (delete, expire, an allocation that is not an entry) says
 *      no reuse, and a new slot's area fields are zeroed; which sizes
 *      share a slot size in the slab allocator.
 *
 * The zone is an arena of fixed slots with a byte budget, standing in for
 * nginx's slab allocator (what is tested is the index and the LRU, not
 * the allocator); the configuration-time functions of shm.c are linked
 * but not called.  "make unit" builds and runs it; "make test" too.
 */


#include "ngx_http_apipolicy.h"
#include "ngx_http_apipolicy_shm.h"

#include <stdio.h>
#include <stdlib.h>

#include "tap.h"


/* ---- the zone: an arena of 256-byte slots ---------------------------- */

#define SLOT      256
#define SLOTS     (80 * 1024)

static u_char      *arena;        /* the "shpool" starts here */
static u_char      *free_slots;
static size_t       next_slot = 1;   /* slot 0: the pool's head */
static size_t       used, budget;
static size_t       allocated, freed;     /* calls that gave and took */

static ngx_time_t   now_time;
volatile ngx_time_t  *ngx_cached_time = &now_time;
ngx_uint_t           ngx_pagesize = 4096;


void *
ngx_slab_alloc_locked(ngx_slab_pool_t *pool, size_t size)
{
    u_char  *p;

    if (size > SLOT || used + SLOT > budget) {
        return NULL;
    }

    if (free_slots) {
        p = free_slots;
        ngx_memcpy(&free_slots, p, sizeof(u_char *));

    } else if (next_slot < SLOTS) {
        p = arena + SLOT * next_slot++;

    } else {
        return NULL;
    }

    used += SLOT;
    allocated++;

    return p;
}


void
ngx_slab_free_locked(ngx_slab_pool_t *pool, void *p)
{
    ngx_memset(p, 0xa5, SLOT);            /* what a stale read would see */
    ngx_memcpy(p, &free_slots, sizeof(u_char *));
    free_slots = p;
    used -= SLOT;
    freed++;
}


/* linked with shm.c, never called here */

void *ngx_slab_alloc(ngx_slab_pool_t *pool, size_t size) { abort(); }
void *ngx_slab_calloc(ngx_slab_pool_t *pool, size_t size) { abort(); }
u_char *ngx_sprintf(u_char *buf, const char *fmt, ...) { abort(); }

void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    abort();
}

void
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
    abort();
}

ngx_shm_zone_t *
ngx_http_apipolicy_conf_shm_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size, ngx_shm_zone_init_pt init, void *data)
{
    abort();
}


/* ---- helpers -------------------------------------------------------- */

static ngx_http_apipolicy_shm_t     shm;
static ngx_http_apipolicy_shm_sh_t  sh;


static void
zone(ngx_uint_t buckets, size_t bytes)
{
    free(sh.buckets);

    ngx_memzero(&sh, sizeof(sh));
    sh.buckets = calloc(buckets, sizeof(ngx_http_apipolicy_shm_bucket_t));
    sh.mask = buckets - 1;
    ngx_queue_init(&sh.queue);

    shm.sh = &sh;
    shm.shpool = (ngx_slab_pool_t *) arena;
    shm.free = NULL;

    free_slots = NULL;
    next_slot = 1;
    used = 0;
    budget = bytes;
}


/* a key: bucket bits from "b", filter bytes (4-5) from "t", the rest from "i" */

static void
key(u_char *k, uint32_t b, uint16_t t, uint32_t i)
{
    ngx_memzero(k, 32);
    ngx_memcpy(k, &b, 4);
    ngx_memcpy(k + 4, &t, 2);
    ngx_memcpy(k + 8, &i, 4);
}


/* every bucket's count, last entry and filter agree with its chain */

static ngx_int_t
index_sound(void)
{
    uint32_t                          bits;
    ngx_uint_t                        i, n;
    ngx_http_apipolicy_hnode_t       *hn, *last;
    ngx_http_apipolicy_shm_bucket_t  *b;

    for (i = 0; i <= sh.mask; i++) {
        b = &sh.buckets[i];

        if (b->n == 0) {
            continue;
        }

        hn = (ngx_http_apipolicy_hnode_t *) (arena + ((size_t) b->head << 3));
        last = NULL;

        for (n = 0; hn; hn = hn->next) {
            bits = (1u << (hn->key[4] & 31)) | (1u << (hn->key[5] & 31));

            if ((*(uint32_t *) hn->key & sh.mask) != i
                || (b->filter & bits) != bits)
            {
                return 0;
            }

            last = hn;
            n++;
        }

        if (n != b->n
            || last != (void *) (arena + ((size_t) b->tail << 3)))
        {
            return 0;
        }
    }

    return 1;
}


static void
one_bucket(void)
{
    u_char                       k[32];
    ngx_uint_t                   i, found;
    ngx_http_apipolicy_hnode_t  *hn, *nodes[8];

    zone(64, SIZE_MAX);

    key(k, 5, 7, 0);
    ok(ngx_http_apipolicy_shm_lookup(&shm, k) == NULL, "empty bucket: none");

    /* 0-3 with filter bytes 7, 4-7 with 8-11, all in bucket 5 */

    for (i = 0; i < 8; i++) {
        key(k, 5 + 64 * i, i < 4 ? 7 : 4 + i, i);
        nodes[i] = ngx_http_apipolicy_shm_insert(&shm, k, 64, 100);
    }

    ok(sh.buckets[5].n == 8 && index_sound(), "8 entries in one bucket");

    for (i = 0, found = 0; i < 8; i++) {
        key(k, 5 + 64 * i, i < 4 ? 7 : 4 + i, i);
        found += (ngx_http_apipolicy_shm_lookup(&shm, k) == nodes[i]);
    }

    ok(found == 8, "each found");

    key(k, 5, 7, 99);
    ok(ngx_http_apipolicy_shm_lookup(&shm, k) == NULL,
       "same bucket and filter bytes, other key: none");

    /* front (the last inserted), back (the first), middle */

    ngx_http_apipolicy_shm_delete(&shm, nodes[7]);
    ngx_http_apipolicy_shm_delete(&shm, nodes[0]);
    ngx_http_apipolicy_shm_delete(&shm, nodes[3]);

    ok(sh.buckets[5].n == 5 && index_sound(), "3 unlinked, 5 left");

    for (i = 0, found = 0; i < 8; i++) {
        key(k, 5 + 64 * i, i < 4 ? 7 : 4 + i, i);
        hn = ngx_http_apipolicy_shm_lookup(&shm, k);
        found += (i == 0 || i == 3 || i == 7) ? (hn == NULL) : (hn == nodes[i]);
    }

    ok(found == 8, "the others found, the unlinked not");

    /* down to one entry whose filter bytes differ from the key looked up */

    ngx_http_apipolicy_shm_delete(&shm, nodes[1]);
    ngx_http_apipolicy_shm_delete(&shm, nodes[2]);
    ngx_http_apipolicy_shm_delete(&shm, nodes[4]);
    ngx_http_apipolicy_shm_delete(&shm, nodes[6]);

    key(k, 5, 7, 1);
    ok(sh.buckets[5].n == 1 && index_sound()
       && ngx_http_apipolicy_shm_lookup(&shm, k) == NULL,
       "one entry left, other filter bytes: none");

    key(k, 5 + 64 * 5, 9, 5);
    ok(ngx_http_apipolicy_shm_lookup(&shm, k) == nodes[5], "and it found");

    ngx_http_apipolicy_shm_delete(&shm, nodes[5]);
    ok(sh.buckets[5].n == 0 && sh.entries == 0
       && ngx_http_apipolicy_shm_lookup(&shm, k) == NULL, "bucket empty");
}


/* ---- random operations against a list of the keys ------------------- */

#define KEYS  3000

static void
random_ops(void)
{
    u_char                       k[32];
    ngx_uint_t                   step, i, wrong, unsound;
    ngx_http_apipolicy_hnode_t  *hn, *model[KEYS];

    zone(16, SIZE_MAX);
    ngx_memzero(model, sizeof(model));
    srandom(2026);

    wrong = 0;
    unsound = 0;

    for (step = 0; step < 200000; step++) {
        i = random() % KEYS;
        key(k, (uint32_t) i * 2654435761u, (uint16_t) (i % 3), (uint32_t) i);

        switch (random() % 3) {

        case 0:
            if (model[i] == NULL) {
                model[i] = ngx_http_apipolicy_shm_insert(&shm, k, 64, 100);
            }
            break;

        case 1:
            if (model[i]) {
                ngx_http_apipolicy_shm_delete(&shm, model[i]);
                model[i] = NULL;
            }
            break;

        default:
            hn = ngx_http_apipolicy_shm_lookup(&shm, k);
            wrong += (hn != model[i]);
        }

        if (step % 997 == 0) {
            unsound += !index_sound();
        }
    }

    ok(wrong == 0, "200,000 random steps: every lookup as the list says "
       "(%lu wrong)", (unsigned long) wrong);
    ok(unsound == 0 && index_sound(), "counts, last entries and filters follow the chains");
}


/* ---- a long chain, and lookups of absent keys ---------------------- */

#define LONG  5000

static void
long_chain(void)
{
    u_char                        k[32];
    ngx_uint_t                    i, found;
    static ngx_http_apipolicy_hnode_t  *nodes[LONG];

    zone(64, SIZE_MAX);

    for (i = 0; i < LONG; i++) {
        key(k, 3, (uint16_t) i, (uint32_t) i);
        nodes[i] = ngx_http_apipolicy_shm_insert(&shm, k, 64, 100);
    }

    ok(sh.buckets[3].n == LONG && index_sound(), "5,000 entries in a bucket");

    for (i = 0; i < LONG; i += 7) {
        ngx_http_apipolicy_shm_delete(&shm, nodes[i]);
        nodes[i] = NULL;
    }

    ngx_http_apipolicy_shm_delete(&shm, nodes[LONG - 1]);
    nodes[LONG - 1] = NULL;

    ok(index_sound(), "every seventh and the last unlinked");

    for (i = 0, found = 0; i < LONG; i++) {
        key(k, 3, (uint16_t) i, (uint32_t) i);
        found += (ngx_http_apipolicy_shm_lookup(&shm, k) == nodes[i]);
    }

    ok(found == LONG, "lookups along it");

    for (i = 0; i < LONG; i++) {
        if (nodes[i]) {
            ngx_http_apipolicy_shm_delete(&shm, nodes[i]);
        }
    }

    ok(sh.buckets[3].n == 0 && sh.entries == 0, "all unlinked");
}


/*
 * A zone as the index is sized for (a bucket per 256 bytes, entries of
 * 320 bytes: 0.8 a bucket), random keys: how many lookups of absent keys
 * get past the bucket to an entry
 */

static void
absent_keys(void)
{
    u_char                            k[32];
    uint32_t                          bits;
    ngx_uint_t                        i, j, walked, nonempty;
    ngx_http_apipolicy_shm_bucket_t  *b;

    zone(8192, SIZE_MAX);

    for (i = 0; i < 8192 * 8 / 10; i++) {
        for (j = 0; j < 32; j++) {
            k[j] = (u_char) random();
        }
        ngx_http_apipolicy_shm_insert(&shm, k, 64, 100);
    }

    walked = 0;
    nonempty = 0;

    for (i = 0; i < 100000; i++) {
        for (j = 0; j < 32; j++) {
            k[j] = (u_char) random();
        }

        b = ngx_http_apipolicy_shm_bucket(&sh, k);
        bits = (1u << (k[4] & 31)) | (1u << (k[5] & 31));

        nonempty += (b->n != 0);
        walked += (b->n != 0 && (b->filter & bits) == bits);

        if (ngx_http_apipolicy_shm_lookup(&shm, k) != NULL) {
            break;
        }
    }

    printf("# absent keys: %lu%% in a non-empty bucket, %.2f%% read an "
           "entry\n", (unsigned long) (nonempty / 1000),
           (double) walked / 1000);

    ok(i == 100000 && walked < 2000,
       "100,000 absent keys: none found, under 2%% read an entry");
}


/* ---- room: the LRU ---------------------------------------------------- */

static void
room(void)
{
    u_char                       k[32];
    ngx_uint_t                   i;
    ngx_http_apipolicy_hnode_t  *nodes[12];

    zone(64, 10 * SLOT);
    now_time.sec = 1000;

    for (i = 0; i < 10; i++) {
        key(k, (uint32_t) i, 1, (uint32_t) i);
        nodes[i] = ngx_http_apipolicy_shm_insert(&shm, k, 64, 2000);
    }

    nodes[0]->pinned = 1;              /* the oldest, in flight */

    key(k, 10, 1, 10);
    nodes[10] = ngx_http_apipolicy_shm_insert(&shm, k, 64, 2000);

    key(k, 0, 1, 0);
    ok(nodes[10] && ngx_http_apipolicy_shm_lookup(&shm, k) == nodes[0],
       "full: a new entry made room, the pinned oldest kept");

    key(k, 1, 1, 1);
    ok(ngx_http_apipolicy_shm_lookup(&shm, k) == NULL && sh.evicted == 1,
       "the oldest unpinned evicted");

    for (i = 2; i <= 10; i++) {
        nodes[i]->pinned = 1;
    }

    key(k, 11, 1, 11);
    ok(ngx_http_apipolicy_shm_insert(&shm, k, 64, 2000) == NULL,
       "every entry pinned: no room");

    now_time.sec = 2001;                /* the pins have expired */

    nodes[11] = ngx_http_apipolicy_shm_insert(&shm, k, 64, 3000);
    ok(nodes[11] != NULL && index_sound(), "after their expiry: room");

    ngx_http_apipolicy_shm_expire(&shm, 100);
    ok(sh.entries == 1 && index_sound(), "expire() frees the expired");
}


/* ---- an evicted entry's memory taken as it is for a new entry -------- */

static void
reuse(void)
{
    u_char                       k[32];
    ngx_uint_t                   i, lost, found;
    ngx_http_apipolicy_hnode_t  *hn, *nodes[12];

    zone(64, 10 * SLOT);
    shm.node = 64;
    now_time.sec = 1000;

    for (i = 0; i < 10; i++) {
        key(k, (uint32_t) i, 1, (uint32_t) i);
        nodes[i] = ngx_http_apipolicy_shm_insert(&shm, k, 64, 2000);
    }

    allocated = 0;
    freed = 0;

    key(k, 10, 1, 10);
    hn = ngx_http_apipolicy_shm_insert(&shm, k, 64, 2000);

    ok(hn == nodes[0] && allocated == 0 && freed == 0
       && ngx_http_apipolicy_shm_lookup(&shm, k) == hn
       && hn->next == NULL && hn->pinned == 0 && hn->expires == 2000
       && sh.entries == 10 && sh.evicted == 1 && used == 10 * SLOT
       && index_sound(),
       "full: the oldest entry's memory is the new entry as it is (not "
       "freed and allocated again), cleared, indexed under its own key");

    key(k, 0, 1, 0);
    ok(ngx_http_apipolicy_shm_lookup(&shm, k) == NULL,
       "the oldest key is gone");

    nodes[1]->pinned = 1;
    key(k, 11, 1, 11);
    hn = ngx_http_apipolicy_shm_insert(&shm, k, 64, 2000);

    key(k, 1, 1, 1);
    ok(hn == nodes[2] && ngx_http_apipolicy_shm_lookup(&shm, k) == nodes[1]
       && index_sound(), "a pinned oldest is passed over: the next one's "
       "memory is taken");

    /* another size: freed and allocated, not taken */

    hn = ngx_http_apipolicy_shm_alloc(&shm, 100);
    key(k, 3, 1, 3);
    ok(hn != NULL && ngx_http_apipolicy_shm_lookup(&shm, k) == NULL
       && sh.entries == 9 && used == 10 * SLOT && index_sound(),
       "an allocation of another size frees the oldest unpinned entry");

    /* churn: 20,000 new keys through a zone of 100 entries */

    zone(1024, 100 * SLOT);
    shm.node = 64;
    lost = 0;
    allocated = 0;
    freed = 0;

    /* the hints taken before each insert, as a new idempotency key does */

    ngx_http_apipolicy_shm_prefetch(&shm, k);
    ngx_http_apipolicy_shm_prefetch_back(&shm);

    ok(sh.entries == 0 && index_sound(), "hints on an empty zone: nothing "
       "read past the queue's sentinel, nothing changed");

    for (i = 0; i < 20000; i++) {
        key(k, (uint32_t) i * 2654435761u, (uint16_t) (i % 5), (uint32_t) i);
        ngx_http_apipolicy_shm_prefetch(&shm, k);
        ngx_http_apipolicy_shm_prefetch_back(&shm);
        lost += (ngx_http_apipolicy_shm_insert(&shm, k, 64, 2000) == NULL);
    }

    found = 0;

    for (i = 0; i < 20000; i++) {
        key(k, (uint32_t) i * 2654435761u, (uint16_t) (i % 5), (uint32_t) i);
        hn = ngx_http_apipolicy_shm_lookup(&shm, k);
        found += (hn != NULL);
        lost += (hn != NULL && i < 20000 - 100);
    }

    ok(lost == 0 && found == 100 && sh.entries == 100 && used == 100 * SLOT
       && allocated == 100 && freed == 0 && index_sound(),
       "20,000 new keys through 100 entries: the newest 100 found, the "
       "same 100 slots reused");

    shm.node = 0;
}


/* ---- 6. the area's fields across a reuse ------------------------------ */

typedef struct {
    ngx_http_apipolicy_hnode_t   hn;
    u_char                      *spare;     /* as an idempotency answer */
    size_t                       size;
    u_char                       pad[48];
} area_node_t;

static ngx_uint_t  calls, reuses;


static void
area_free(ngx_http_apipolicy_shm_t *zone, ngx_http_apipolicy_hnode_t *hn,
    ngx_uint_t reuse)
{
    area_node_t  *an;

    an = (area_node_t *) hn;

    calls++;
    reuses += (reuse != 0);

    if (reuse) {
        /* kept for the next entry: what the old one held, marked */
        an->size = 0x5a5a;
        ngx_memset(an->pad, 0, sizeof(an->pad));

    } else {
        an->spare = NULL;
    }
}


static void
handover(void)
{
    u_char        k[32];
    ngx_uint_t    i, zeroed;
    area_node_t  *an, *nodes[4];

    zone(64, 4 * SLOT);
    shm.node = sizeof(area_node_t);
    shm.free = area_free;
    now_time.sec = 1000;
    calls = 0;
    reuses = 0;
    zeroed = 0;

    for (i = 0; i < 4; i++) {
        key(k, (uint32_t) i, 1, (uint32_t) i);
        nodes[i] = (area_node_t *) ngx_http_apipolicy_shm_insert(&shm, k,
                                                 sizeof(area_node_t), 2000);
        zeroed += (nodes[i] && nodes[i]->spare == NULL
                   && nodes[i]->size == 0);
        nodes[i]->spare = (u_char *) &nodes[i];      /* "an answer" */
        nodes[i]->size = 100 + i;
        nodes[i]->hn.pinned = 1;
        nodes[i]->hn.data[0] = 7;
    }

    ok(zeroed == 4 && calls == 0, "new slots: the area's fields zeroed");

    nodes[0]->hn.pinned = 0;
    key(k, 4, 1, 4);
    an = (area_node_t *) ngx_http_apipolicy_shm_insert(&shm, k,
                                                 sizeof(area_node_t), 2000);

    ok(an == nodes[0] && calls == 1 && reuses == 1
       && an->spare == (u_char *) &nodes[0] && an->size == 0x5a5a
       && an->hn.pinned == 0 && an->hn.data[0] == 0 && an->hn.expires == 2000
       && ngx_memcmp(an->hn.key, k, 32) == 0 && index_sound(),
       "a full zone's oldest entry taken for a new key: the callback told "
       "so, the area's fields as it left them, the head cleared and the "
       "new key's");

    ngx_http_apipolicy_shm_delete(&shm, &nodes[1]->hn);
    ok(calls == 2 && reuses == 1, "delete: no reuse");

    nodes[2]->hn.pinned = 0;
    nodes[2]->hn.expires = 900;
    ngx_http_apipolicy_shm_expire(&shm, 4);
    ok(calls == 3 && reuses == 1 && sh.entries == 2, "expire: no reuse");

    /* full again; an allocation of an entry's size that is not an entry */

    key(k, 5, 1, 5);
    (void) ngx_http_apipolicy_shm_insert(&shm, k, sizeof(area_node_t), 2000);
    key(k, 6, 1, 6);
    (void) ngx_http_apipolicy_shm_insert(&shm, k, sizeof(area_node_t), 2000);
    nodes[3]->hn.pinned = 0;

    calls = 0;
    reuses = 0;

    an = ngx_http_apipolicy_shm_alloc(&shm, sizeof(area_node_t));
    ok(an == nodes[3] && calls == 1 && reuses == 0 && an->spare == NULL
       && index_sound(),
       "alloc() of an entry's size for other data: the entry taken is "
       "freed whole (no reuse)");

    ok(ngx_http_apipolicy_shm_same_slot(1, 8)
       && ngx_http_apipolicy_shm_same_slot(9, 16)
       && !ngx_http_apipolicy_shm_same_slot(16, 17)
       && ngx_http_apipolicy_shm_same_slot(57, 64)
       && !ngx_http_apipolicy_shm_same_slot(64, 65)
       && ngx_http_apipolicy_shm_same_slot(1025, ngx_pagesize / 2)
       && !ngx_http_apipolicy_shm_same_slot(ngx_pagesize / 2 + 1,
                                           ngx_pagesize / 2 + 1),
       "slot sizes: powers of two from 8 to half a page; none above");

    shm.node = 0;
    shm.free = NULL;
}


int
main(void)
{
    arena = aligned_alloc(4096, (size_t) SLOT * SLOTS);
    if (arena == NULL) {
        return 1;
    }

    one_bucket();
    random_ops();
    long_chain();
    absent_keys();
    room();
    reuse();
    handover();

    return done();
}
