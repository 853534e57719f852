# "nginx -t" answers a bad configuration with the file and line, the
# directive, the bad value and what is accepted; a directive in the wrong
# block is told where it belongs.
use Test::Nginx::Socket 'no_plan';

no_shuffle();

run_tests();

__DATA__

=== TEST 1: a time that is not one
--- config
    location /api { apipolicy_cors_origins https://app.example.com; apipolicy_cors_max_age 1hour; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid time "1hour" in "apipolicy_cors_max_age": use a number of seconds, or numbers with the units ms, s, m, h, d, w, M, y, as in "30s", "10m" or "1h" in .*nginx\.conf:\d+/



=== TEST 2: a negative time
--- config
    location /api { apipolicy_jwt_leeway -5s; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid time "-5s" in "apipolicy_jwt_leeway": a time cannot be negative; use a number of seconds, .* in .*nginx\.conf:\d+/



=== TEST 3: a refusal status that is not an error
--- config
    location /api { apipolicy_ratelimit_status 200; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid status "200" in "apipolicy_ratelimit_status": a refusal needs an error status, from 400 to 599 in .*nginx\.conf:\d+/



=== TEST 4: a misspelt parameter is answered with the parameters there are
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=10r/s brust=5;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "brust=5" of "apipolicy_ratelimit_tier": the parameters are rate= and burst= in .*nginx\.conf:\d+/



=== TEST 5: ... for apipolicy_ratelimit too
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=10r/s;
--- config
    location /api { apipolicy_ratelimit zone=api key=$binary_remote_addr dryrun; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "dryrun" of "apipolicy_ratelimit": the parameters are zone=, key=, tier=, cost= and dry_run in .*nginx\.conf:\d+/



=== TEST 6: a key without a variable puts every client in one bucket: a warning
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=10r/s;
--- config
    location /api { apipolicy_ratelimit zone=api key=binary_remote_addr; return 204; }
--- request
GET /api
--- error_code: 204
--- error_log eval
qr/\[warn\] .*"key=binary_remote_addr" has no variable: every client is counted in one bucket; a variable starts with "\$", as in "key=\$binary_remote_addr" in .*nginx\.conf:\d+/



=== TEST 7: ... and none with a variable
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=10r/s;
--- config
    location /api { apipolicy_ratelimit zone=api key=user:$binary_remote_addr; return 204; }
--- request
GET /api
--- error_code: 204
--- no_error_log
has no variable



=== TEST 8: a zone directive in a server is told it belongs in the http block
--- config
    apipolicy_ratelimit_zone api:1m;
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_ratelimit_zone" belongs in the http block \(a zone all servers share\), not in a server block in .*nginx\.conf:\d+/



=== TEST 9: ... a tier in a location
--- config
    location /api { apipolicy_ratelimit_tier default rate=1r/s; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_ratelimit_tier" belongs in the http block \(tiers are shared by every rate limit\), not in a location in .*nginx\.conf:\d+/



=== TEST 10: ... Redis in a server
--- config
    apipolicy_redis 127.0.0.1:6379;
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_redis" belongs in the http block \(one Redis for the whole gateway\), not in a server block/



=== TEST 11: ... the idempotency and webhook zones in a location
--- config
    location /a { apipolicy_idempotency_zone idem:1m; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_idempotency_zone" belongs in the http block \(a zone all servers share\), not in a location/



=== TEST 12: ... 
--- config
    location /a { apipolicy_webhook_zone ids:1m; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_webhook_zone" belongs in the http block \(a zone all servers share\), not in a location/



=== TEST 13: the status handler at server level belongs in a location
--- config
    apipolicy_status;
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_status" belongs in a location \(it answers the requests of that location\), not in a server block in .*nginx\.conf:\d+/



=== TEST 14: a key request at http level belongs in a server or a location
--- http_config
    apipolicy_jwt_key_request /_jwks;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_jwt_key_request" belongs in a server or a location \(its URI is resolved in the server\), not in the http block in .*nginx\.conf:\d+/



=== TEST 15: the reserved zone name, at the line that takes it
--- http_config
    apipolicy_jwt_cache apipolicy_status:1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*the zone name "apipolicy_status" is reserved for the counters of apipolicy_status: give this zone another name in .*nginx\.conf:\d+/



=== TEST 16: the directives still work where they belong
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=10r/s;
    apipolicy_idempotency_zone idem:1m;
    apipolicy_webhook_zone ids:1m;
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_max_age 1h;
        apipolicy_jwt_leeway 30s;
        apipolicy_ratelimit_status 503;
        apipolicy_ratelimit zone=api key=$binary_remote_addr;
        return 204;
    }
    location = /s { apipolicy_status; }
--- request
GET /s
--- error_code: 200



=== TEST 17: sync= on a rate limit zone with no apipolicy_redis: a warning naming the zone's file and line; the zone counts alone
--- http_config
    apipolicy_ratelimit_zone api:1m sync=100ms;
    apipolicy_ratelimit_tier default rate=10r/s;
--- config
    location /api { apipolicy_ratelimit zone=api key=$arg_k; alias html/index.html; }
--- request
GET /api?k=a
--- error_code: 200
--- error_log eval
qr/\[warn\] .*"sync=" of apipolicy_ratelimit_zone "api" in \S+nginx\.conf:\d+ has no effect: there is no apipolicy_redis to share the counts through, so this gateway counts alone/




=== TEST 18: db= with cluster=: Redis Cluster has database 0 only
--- http_config
    apipolicy_redis cluster=127.0.0.1:7000,127.0.0.1:7001 db=2;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"db=2" cannot be used with "cluster=": Redis Cluster has database 0 only; remove db= \(prefix= keeps several users of one cluster apart\) in .*nginx\.conf:\d+/



=== TEST 19: a hash tag in prefix= with cluster=
--- http_config
    apipolicy_redis cluster=127.0.0.1:7000 "prefix={gw}:";
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"prefix=\{gw\}:" cannot be used with "cluster=": no "\{" or "\}" \(each key already carries the hash tag that places it in its slot\) in .*nginx\.conf:\d+/
