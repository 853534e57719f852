
/*
 * Copyright (C) apipolicy authors
 *
 * Redis replies (RESP) as src/ngx_http_apipolicy_redis.c reads them: a
 * hiredis reader made with redisReaderCreate(), fed what each recv()
 * returned, replies taken out with redisReaderGetReply() until it has
 * none; a reader that refuses the bytes ends the connection.  Each reply
 * is walked (errors are copied the way a node keeps the last one).
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
            freeReplyObject(reply);
        }
    }

done:

    redisReaderFree(reader);

    return 0;
}
