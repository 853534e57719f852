
/*
 * Copyright (C) apipolicy authors
 *
 * Redis replies (RESP) as src/ngx_http_apipolicy_redis.c reads them: a
 * hiredis reader made with redisReaderCreate(), fed what each recv()
 * returned, replies taken out with redisReaderGetReply() until it has
 * none; a reader that refuses the bytes ends the connection.  Each reply
 * is walked (errors are copied the way a node keeps the last one).
 *
 * An array is also taken as a CLUSTER SLOTS answer: the slot map a
 * worker would make of it (every slot names a node met, or nobody).
 *
 * Input: the bytes from Redis; byte values below 8 at the start split
 * them into reads of that many times 16 bytes.
 *
 * Known and left to the Redis client: Debian 12's hiredis (0.14) has no
 * limit on the element count of an aggregate, so "*1000000000\r\n" makes
 * it calloc() 8 GB at once.  Inputs that declare more than a million
 * elements are skipped here so that the target keeps finding other
 * things; see the README ("Security").
 */

#include "../../src/ngx_http_apipolicy_redis.c"
#define FUZZ_INIT_ONLY
#include "fuzz.h"


static void
fuzz_walk(redisReply *r, ngx_uint_t depth)
{
    size_t  i;
    u_char  error[NGX_HTTP_APIPOLICY_REDIS_ERROR_LEN];

    switch (r->type) {

    case REDIS_REPLY_ERROR:
        ngx_memcpy(error, r->str,
                   ngx_min((size_t) r->len,
                           NGX_HTTP_APIPOLICY_REDIS_ERROR_LEN));
        /* fall through */

    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        if (r->str == NULL || r->str[r->len] != '\0') {
            abort();
        }
        break;

    case REDIS_REPLY_ARRAY:
        for (i = 0; i < r->elements; i++) {
            fuzz_walk(r->element[i], depth + 1);
        }
        break;
    }
}


/* a reply as CLUSTER SLOTS from 127.0.0.1:7000 */

static void
fuzz_map(redisReply *r)
{
    ngx_uint_t                        s;
    ngx_pool_t                       *pool;
    struct sockaddr_in                sin;
    ngx_http_apipolicy_redis_t        rd;
    ngx_http_apipolicy_redis_node_t  *node;

    static ngx_str_t  name = ngx_string("127.0.0.1:7000");

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        abort();
    }

    ngx_memzero(&rd, sizeof(ngx_http_apipolicy_redis_t));
    rd.log = ngx_cycle->log;
    rd.pool = pool;
    rd.slots = ngx_pcalloc(pool, NGX_HTTP_APIPOLICY_REDIS_SLOTS
                                 * sizeof(uint16_t));
    rd.nodes = ngx_array_create(pool, 4,
                                sizeof(ngx_http_apipolicy_redis_node_t *));

    ngx_memzero(&sin, sizeof(struct sockaddr_in));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(7000);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    node = (rd.slots && rd.nodes)
           ? ngx_http_apipolicy_redis_cluster_add(&rd, &name,
                                                  (struct sockaddr *) &sin,
                                                  sizeof(struct sockaddr_in),
                                                  1)
           : NULL;
    if (node == NULL) {
        abort();
    }

    (void) ngx_http_apipolicy_redis_map(&rd, node, r);

    for (s = 0; s < NGX_HTTP_APIPOLICY_REDIS_SLOTS; s++) {
        if (rd.slots[s] > rd.nodes->nelts) {
            abort();
        }
    }

    ngx_destroy_pool(pool);
}


/* "*N" or "%N" (RESP3 map) with N above a million, anywhere */

static ngx_uint_t
fuzz_huge_aggregate(const uint8_t *p, size_t size)
{
    size_t  i, j, digits;

    for (i = 0; i + 1 < size; i++) {
        if (p[i] != '*' && p[i] != '%' && p[i] != '~' && p[i] != '>') {
            continue;
        }

        for (j = i + 1, digits = 0; j < size && p[j] >= '0' && p[j] <= '9';
             j++)
        {
            digits++;
        }

        if (digits > 6) {
            return 1;
        }
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t        chunk, n;
    void         *reply;
    redisReader  *reader;

    chunk = 16;

    if (size && data[0] < 8) {
        chunk = 16 * (data[0] + 1);
        data++;
        size--;
    }

    if (fuzz_huge_aggregate(data, size)) {
        return 0;
    }

    reader = redisReaderCreate();
    if (reader == NULL) {
        abort();
    }

    while (size) {
        n = ngx_min(size, chunk);

        if (redisReaderFeed(reader, (const char *) data, n) != REDIS_OK) {
            break;
        }

        data += n;
        size -= n;

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
                goto done;
            }

            if (reply == NULL) {
                break;
            }

            fuzz_walk(reply, 0);

            if (((redisReply *) reply)->type == REDIS_REPLY_ARRAY) {
                fuzz_map(reply);
            }

            freeReplyObject(reply);
        }
    }

done:

    redisReaderFree(reader);

    return 0;
}
