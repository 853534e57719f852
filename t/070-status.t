# apipolicy_status: counters of what the gateway did (JWT, rate limits,
# CORS, problem codes, idempotency, webhooks, deprecated versions), the
# zones and the Redis state, as JSON and as Prometheus text;
# $apipolicy_idempotency_status in the access log; configuration errors.
#
# One worker: a request's LOG phase has run before the next request is
# read, so the counts a block expects are exact.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;
use Digest::SHA qw(hmac_sha256_hex);

$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;
$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
$ENV{TEST_NGINX_REDIS_DB} ||= 11;

our $TOKEN = JWTTest::jwt(alg => 'HS256', claims => { sub => 'alice', exp => time + 3600 });
our $HOOK = '{"id":"evt_1"}';
our $HOOK_SIG = "sha256=" . hmac_sha256_hex($HOOK, "hook-secret");

master_on();
workers(1);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config && $block->config !~ m{location /backend}) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend { return 200 "ok\n"; }
    location = /status { apipolicy_status; }
    location = /metrics { apipolicy_status prometheus; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: JSON: requests, JWT, rate limits, CORS and problem codes are counted
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=3r/d;
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_ratelimit zone=api key=$jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api", "GET /api", "OPTIONS /api", "GET /api", "GET /api", "GET /api", "GET /status"]
--- more_headers eval
["Origin: https://app.example.com\r\n",
 "Origin: https://evil.example.com\r\nAuthorization: Bearer $main::TOKEN\r\n",
 "Origin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\n",
 "Authorization: Bearer $main::TOKEN\r\n",
 "Authorization: Bearer $main::TOKEN\r\n",
 "Authorization: Bearer $main::TOKEN\r\n",
 ""]
--- error_code eval
[401, 200, 204, 200, 200, 429, 200]
--- response_headers eval
["", "", "", "", "", "", "Content-Type: application/json\nCache-Control: no-store"]
--- response_body_like eval
["TOKEN_MISSING", "ok", "", "ok", "ok", "RATE_LIMITED",
 '^\{"apipolicy":"\d+\.\d+\.\d+","nginx":"1\.\d+\.\d+","requests":6,'
 . '"jwt":\{"requests":\{"verified":4,"anonymous":0,"rejected":1\},"cache":\{"hit":0,"miss":0\}\},'
 . '"cors":\{"requests":\{"preflight":1,"allowed":1,"denied":1\}\},'
 . '"idempotency":\{"requests":\{"stored":0,"replayed":0\}\},'
 . '"version":\{"requests":\{"deprecated":0,"sunset":0\}\},'
 . '"jwks":\{\},'
 . '"ratelimit":\{"requests":\{"api":\{"default":\{"passed":3,"rejected":1,"dry_run":0\}\}\}\},'
 . '"webhook":\{"requests":\{"standard":\{"verified":0,.*?"hmac":\{[^}]*"replayed":0\}\}\},'
 . '"rejections":\{"cors":\{"ORIGIN_NOT_ALLOWED":0\},"version":\{"API_VERSION_SUNSET":0\},'
 . '"jwt":\{"TOKEN_MISSING":1,[^}]*"INTERNAL_ERROR":0\},"ratelimit":\{"RATE_LIMITED":1\},'
 . '"idempotency":\{[^}]*\},"webhook":\{"SIGNATURE_MISSING":0,[^}]*\},"other":\{"OTHER":0\}\},'
 . '"zones":\{"api":\{"size":1048576,"free":\d+\},"apipolicy_status":\{"size":65536,"free":\d+\}\},'
 . '"redis":null\}\n$']



=== TEST 2: Prometheus text, with the JWT cache, idempotency, webhooks and deprecated versions
--- http_config
    apipolicy_jwt_cache tokens:1m;
    apipolicy_idempotency_zone idem:1m;
--- config
    location /v1 {
        apipolicy_version deprecated=@1700000000;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook {
        apipolicy_webhook github secret=hook-secret;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /v1\n{}", "POST /v1\n{}", "POST /v1\n{}", "POST /hook\n$main::HOOK", "POST /hook\n$main::HOOK", "GET /metrics"]
--- more_headers eval
["Authorization: Bearer $main::TOKEN\r\nIdempotency-Key: k\r\n",
 "Authorization: Bearer $main::TOKEN\r\nIdempotency-Key: k\r\n",
 "Authorization: Bearer bad.token.here\r\nIdempotency-Key: k\r\n",
 "X-Hub-Signature-256: $main::HOOK_SIG\r\n",
 "X-Hub-Signature-256: sha256=00\r\n",
 ""]
--- error_code eval
[200, 200, 401, 200, 401, 200]
--- response_headers eval
["", "Idempotent-Replayed: true", "", "", "", "Content-Type: text/plain; version=0.0.4; charset=utf-8"]
--- response_body_like eval
["ok", "ok", "TOKEN_MALFORMED", "ok", "SIGNATURE_INVALID",
 '^# HELP apipolicy_build_info .*\n'
 . '# TYPE apipolicy_build_info gauge\n'
 . 'apipolicy_build_info\{version="\d+\.\d+\.\d+",nginx="1\.\d+\.\d+"\} 1\n'
 . '# HELP apipolicy_requests_total Requests that met an apipolicy directive\.\n'
 . '# TYPE apipolicy_requests_total counter\n'
 . 'apipolicy_requests_total 5\n'
 . '(?s:.*)apipolicy_jwt_requests_total\{result="verified"\} 2\n'
 . 'apipolicy_jwt_requests_total\{result="anonymous"\} 0\n'
 . 'apipolicy_jwt_requests_total\{result="rejected"\} 1\n'
 . '(?s:.*)apipolicy_jwt_cache_requests_total\{result="hit"\} 1\n'
 . 'apipolicy_jwt_cache_requests_total\{result="miss"\} 1\n'
 . '(?s:.*)apipolicy_idempotency_requests_total\{result="stored"\} 1\n'
 . 'apipolicy_idempotency_requests_total\{result="replayed"\} 1\n'
 . '(?s:.*)apipolicy_version_requests_total\{state="deprecated"\} 3\n'
 . '(?s:.*)apipolicy_webhook_requests_total\{scheme="github",result="verified"\} 1\n'
 . '(?s:.*)apipolicy_webhook_requests_total\{scheme="github",result="signature_invalid"\} 1\n'
 . '(?s:.*)# TYPE apipolicy_rejections_total counter\n'
 . '(?s:.*)apipolicy_rejections_total\{area="jwt",code="TOKEN_MALFORMED"\} 1\n'
 . '(?s:.*)apipolicy_rejections_total\{area="jwt",code="SIGNATURE_INVALID"\} 0\n'
 . '(?s:.*)apipolicy_rejections_total\{area="webhook",code="SIGNATURE_INVALID"\} 1\n'
 . '(?s:.*)apipolicy_zone_size_bytes\{zone="tokens"\} 1048576\n'
 . '(?s:.*)apipolicy_zone_free_bytes\{zone="idem"\} \d+\n']



=== TEST 3: $apipolicy_idempotency_status: STORED in the access log once the response is kept
--- http_config
    apipolicy_idempotency_zone idem:1m;
    log_format idem "$request_uri idem=$apipolicy_idempotency_status";
--- config
    location /pay {
        access_log logs/access.log idem;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay?n=1
{}
--- more_headers
Idempotency-Key: a
--- error_code: 200
--- access_log
/pay?n=1 idem=STORED



=== TEST 4: ... not found without a key
--- http_config
    apipolicy_idempotency_zone idem:1m;
    log_format idem "$request_uri idem=$apipolicy_idempotency_status";
--- config
    location /pay {
        access_log logs/access.log idem;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay?n=2
{}
--- error_code: 200
--- access_log
/pay?n=2 idem=-



=== TEST 5: ... REPLAYED on a replay (known by the time headers go)
--- http_config
    apipolicy_idempotency_zone idem:1m;
--- config
    location /pay {
        add_header X-Idem "[$apipolicy_idempotency_status]" always;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}"]
--- more_headers
Idempotency-Key: a
--- error_code eval
[200, 200]
--- response_headers eval
["X-Idem: []", "X-Idem: [REPLAYED]"]



=== TEST 6: the Redis state: unknown before any worker used it, up once one did, with round trips
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB;
    apipolicy_idempotency_zone idem:1m redis=on;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /status", "GET /metrics", "POST /pay\n{}", "GET /status", "GET /metrics"]
--- more_headers eval
["", "", "Idempotency-Key: status-" . time . "-" . $$ . "\r\n", "", ""]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
['"redis":\{"address":"127.0.0.1:\d+","up":null,"workers":\{"up":0,"down":0,"unused":1\},"errors":\{"connection":0,"reply":0\},"round_trips":0,"round_trip_seconds_sum":0\.000000,"worker":\d+,"nodes":\[[^\]]*\]\}\}$',
 '^(?!(?s:.*)apipolicy_redis_up)(?s:.*)apipolicy_redis_workers\{state="unused"\} 1\n',
 "ok",
 '"redis":\{"address":"127.0.0.1:\d+","up":true,"workers":\{"up":1,"down":0,"unused":0\},"errors":\{"connection":0,"reply":0\},"round_trips":[1-9]\d*,"round_trip_seconds_sum":\d+\.\d{6},"worker":\d+,"nodes":\[[^\]]*\]\}\}$',
 'apipolicy_redis_up\{address="127.0.0.1:\d+"\} 1\n'
 . '(?s:.*)apipolicy_redis_workers\{state="up"\} 1\n'
 . '(?s:.*)apipolicy_redis_errors_total\{type="connection"\} 0\n'
 . '(?s:.*)apipolicy_redis_round_trip_seconds_bucket\{le="0.000500"\} \d+\n'
 . '(?s:.*)apipolicy_redis_round_trip_seconds_bucket\{le="\+Inf"\} [1-9]\d*\n'
 . 'apipolicy_redis_round_trip_seconds_sum \d+\.\d{6}\n'
 . 'apipolicy_redis_round_trip_seconds_count [1-9]\d*\n(?:(?:# |apipolicy_redis_node_)[^\n]*\n)*$']



=== TEST 7: ... and down when it could not reach it, the error counted
--- http_config
    apipolicy_redis 127.0.0.1:1 connect_timeout=200ms;
    apipolicy_idempotency_zone idem:1m redis=on;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "GET /metrics"]
--- more_headers eval
["Idempotency-Key: down\r\n", ""]
--- error_code eval
[200, 200]
--- response_body_like eval
["ok", 'apipolicy_redis_up\{address="127.0.0.1:1"\} 0\n'
 . '(?s:.*)apipolicy_redis_workers\{state="down"\} 1\n'
 . '(?s:.*)apipolicy_redis_errors_total\{type="connection"\} [1-9]\d*\n'
 . '(?s:.*)apipolicy_redis_round_trip_seconds_count 0\n(?:(?:# |apipolicy_redis_node_)[^\n]*\n)*$']



=== TEST 7b: the rate limit sync through Redis: round trips counted, its NOSCRIPT replies (scripts loaded on demand) are not errors
--- init
system("redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} SCRIPT FLUSH >/dev/null");
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB;
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=100r/d;
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$remote_addr;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- error_code: 200
--- wait: 1



=== TEST 7c: ... (the same nginx)
--- request
GET /metrics
--- response_body_like eval
'apipolicy_redis_up\{address="127.0.0.1:\d+"\} 1\n'
. '(?s:.*)apipolicy_redis_errors_total\{type="connection"\} 0\n'
. 'apipolicy_redis_errors_total\{type="reply"\} 0\n'
. '(?s:.*)apipolicy_redis_round_trip_seconds_count [1-9]\d*\n(?:(?:# |apipolicy_redis_node_)[^\n]*\n)*$'



=== TEST 7d: a zone name with a quote and a backslash is escaped: the JSON stays valid, the Prometheus label too
--- http_config
    apipolicy_ratelimit_zone 'we"ird\\zone:1m';
    apipolicy_ratelimit_tier default rate=100r/d;
--- config
    location /api {
        apipolicy_ratelimit 'zone=we"ird\\zone' key=$remote_addr;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api", "GET /status", "GET /metrics"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
["ok",
 '"ratelimit":\{"requests":\{"we\\\\"ird\\\\\\\\zone":\{"default":\{"passed":1,"rejected":0,"dry_run":0\}\}\}\},'
 . '(?s:.*)"zones":\{"we\\\\"ird\\\\\\\\zone":\{"size":1048576,"free":\d+\},',
 '(?m)^apipolicy_ratelimit_requests_total\{zone="we\\\\"ird\\\\\\\\zone",tier="default",result="passed"\} 1$'
 . '(?s:.*)^apipolicy_zone_size_bytes\{zone="we\\\\"ird\\\\\\\\zone"\} 1048576$']
--- no_error_log
[alert]
[crit]



=== TEST 8: only GET and HEAD
--- config
--- request
POST /status
x
--- error_code: 405



=== TEST 9: config: an unknown format
--- config
    location = /s { apipolicy_status yaml; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid format "yaml": use "json" or "prometheus" in .*nginx\.conf:\d+/



=== TEST 10: config: at server level
--- http_config
    server { listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1; apipolicy_status; }
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_status" belongs in a location \(it answers the requests of that location\), not in a server block/



=== TEST 11: config: the name of the counters' zone is reserved, said at the line that takes it
--- http_config
    apipolicy_ratelimit_zone apipolicy_status:1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*the zone name "apipolicy_status" is reserved for the counters of apipolicy_status: give this zone another name in .*nginx\.conf:\d+/



=== TEST 12: config: ... also when another module took it
--- http_config
    limit_req_zone $binary_remote_addr zone=apipolicy_status:1m rate=1r/s;
--- config
    location /x { apipolicy_cors_origins https://a.example.com; }
--- must_die
--- error_log eval
qr/\[emerg\] .*the shared memory zone name "apipolicy_status" is reserved for apipolicy's counters/
