# Tiered rate limiting in shared memory: quotas per window, tiers picked
# per request (from a JWT claim), IETF RateLimit / RateLimit-Policy and
# legacy headers, 429 problem + Retry-After, cost, burst, dry run,
# several limits, CORS on the 429, configuration errors.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Time::HiRes ();
use JWTTest;

$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;

master_on();
workers(2);
no_shuffle();

# every block: tiers, one zone, the backend
add_block_preprocessor(sub {
    my $block = shift;
    # a block's requests in one minute's window: the r/m tiers' windows
    # are aligned on the clock, and a third request sent just after the
    # minute turns is estimated at floor(2 * 59.9/60) + 0 = 1 and passes
    # where the block expects 429 (nginx's restart and a block's
    # requests take about 2 s here, under the real Test::Nginx too)
    my $left = 60 - Time::HiRes::time() % 60;
    Time::HiRes::sleep($left + 0.2) if $left <= 6;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=2r/m;
    apipolicy_ratelimit_tier gold rate=4r/m;
    apipolicy_ratelimit_tier burst rate=1r/h burst=2;
_EOC_
    }

    if (defined $block->config && $block->config !~ m{location /backend}) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend { return 200 "ok\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: the quota passes, the next request gets 429 RATE_LIMITED with Retry-After
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t1", "GET /api?k=t1", "GET /api?k=t1"]
--- error_code eval
[200, 200, 429]
--- response_headers_like eval
['RateLimit-Policy: ^"default";q=2;w=60$' . "\n" . 'RateLimit: ^"default";r=1;t=\d+$',
 'RateLimit-Policy: ^"default";q=2;w=60$' . "\n" . 'RateLimit: ^"default";r=0;t=\d+$',
 'RateLimit-Policy: ^"default";q=2;w=60$' . "\n" . 'RateLimit: ^"default";r=0;t=\d+$' . "\n" . 'Retry-After: ^\d+$' . "\n" . 'Content-Type: ^application/problem\+json$']
--- response_body_like eval
["ok", "ok",
 '^\{"type":"urn:apipolicy:problem:rate-limited","title":"Too many requests","status":429,"detail":"the \\\\"default\\\\" tier allows 2 requests per minute; retry in \d+ s","code":"RATE_LIMITED"\}$']



=== TEST 2: Retry-After is never earlier than the reset of the window (1 to 60 s here)
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t2", "GET /api?k=t2", "GET /api?k=t2"]
--- error_code eval
[200, 200, 429]
--- response_headers_like eval
["", "", 'Retry-After: ^([1-9]|[1-5][0-9]|60)$']



=== TEST 3: keys count apart; an empty key is not limited
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=a3", "GET /api?k=a3", "GET /api?k=b3", "GET /api?k=a3",
 "GET /api", "GET /api", "GET /api"]
--- error_code eval
[200, 200, 200, 429, 200, 200, 200]



=== TEST 4: the tier comes from a verified JWT claim; unknown or empty means "default"
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=1r/m;
    apipolicy_ratelimit_tier gold rate=3r/m;
    map $jwt_claim_plan $tier {
        enterprise  gold;
        default     "";
    }
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_ratelimit zone=api key=$jwt_claim_sub tier=$tier;
        proxy_set_header X-Tier $apipolicy_ratelimit_tier;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_tier\n"; }
--- request eval
my $g = JWTTest::jwt(alg => 'HS256', claims => { sub => 'g4', plan => 'enterprise' });
my $f = JWTTest::jwt(alg => 'HS256', claims => { sub => 'f4', plan => 'free' });
["GET /api?t=$g", "GET /api?t=$g", "GET /api?t=$g", "GET /api?t=$g",
 "GET /api?t=$f", "GET /api?t=$f", "GET /api"]
--- error_code eval
[200, 200, 200, 429, 200, 429, 401]
--- response_body_like eval
["^gold\n\$", "^gold\n\$", "^gold\n\$", "RATE_LIMITED",
 "^default\n\$", "RATE_LIMITED", "TOKEN_MISSING"]



=== TEST 5: burst adds to the window's quota
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k tier=burst;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t5", "GET /api?k=t5", "GET /api?k=t5", "GET /api?k=t5"]
--- error_code eval
[200, 200, 200, 429]
--- response_headers_like eval
['RateLimit-Policy: ^"burst";q=3;w=3600$', "", "", ""]



=== TEST 6: cost counts several requests
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k tier=gold cost=3;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t6", "GET /api?k=t6"]
--- error_code eval
[200, 429]
--- response_headers_like eval
['RateLimit: ^"gold";r=1;t=\d+$', 'RateLimit: ^"gold";r=1;t=\d+$']



=== TEST 7: dry_run serves everything and says what it would have done
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k dry_run;
        proxy_set_header X-RL $apipolicy_ratelimit_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_rl\n"; }
--- request eval
["GET /api?k=t7", "GET /api?k=t7", "GET /api?k=t7"]
--- error_code eval
[200, 200, 200]
--- response_body eval
["PASSED\n", "PASSED\n", "REJECTED_DRY_RUN\n"]



=== TEST 8: several limits: all must pass, and a refused request takes nothing from the others
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_user tier=gold;
        apipolicy_ratelimit zone=api key=$arg_app;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?user=u8&app=a8", "GET /api?user=u8&app=a8",
 "GET /api?user=u8&app=a8", "GET /api?user=u8&app=other8",
 "GET /api?user=u8&app=other8"]
--- error_code eval
[200, 200, 429, 200, 200]
--- response_headers_like eval
['RateLimit-Policy: ^"gold";q=4;w=60, "default";q=2;w=60$' . "\n" . 'RateLimit: ^"gold";r=3;t=\d+, "default";r=1;t=\d+$',
 "", "", "",
 'RateLimit: ^"gold";r=0;t=\d+, "default";r=0;t=\d+$']



=== TEST 9: apipolicy_ratelimit_status, legacy headers, no headers
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_ratelimit_status 503;
        apipolicy_ratelimit_headers legacy;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /quiet {
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_ratelimit_headers off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t9", "GET /api?k=t9", "GET /api?k=t9", "GET /quiet?k=q9"]
--- error_code eval
[200, 200, 503, 200]
--- response_headers_like eval
['X-RateLimit-Limit: ^2$' . "\n" . 'X-RateLimit-Remaining: ^1$' . "\n" . 'X-RateLimit-Reset: ^\d+$',
 'X-RateLimit-Remaining: ^0$',
 'X-RateLimit-Remaining: ^0$' . "\n" . 'Retry-After: ^\d+$',
 ""]
--- raw_response_headers_unlike eval
[qr/^RateLimit/mi, qr/^RateLimit/mi, qr/^RateLimit/mi, qr/RateLimit/i]



=== TEST 10: the 429 carries CORS headers and exposes the rate limit headers
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_ratelimit_headers both;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t10", "GET /api?k=t10", "GET /api?k=t10"]
--- more_headers
Origin: https://app.example.com
--- error_code eval
[200, 200, 429]
--- response_headers_like eval
['Access-Control-Expose-Headers: ^RateLimit, RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset$',
 "",
 'Access-Control-Allow-Origin: ^https://app.example.com$' . "\n" . 'Access-Control-Expose-Headers: ^RateLimit, RateLimit-Policy, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset$']



=== TEST 11: an error_page takes over the 429; the reason is in a variable; counted once
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        error_page 429 /slow-down;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location = /slow-down {
        apipolicy_ratelimit zone=api key=$arg_k;
        return 429 "slow down ($apipolicy_reject_reason)\n";
    }
--- request eval
["GET /api?k=t11", "GET /api?k=t11", "GET /api?k=t11"]
--- error_code eval
[200, 200, 429]
--- response_body eval
["ok\n", "ok\n", "slow down (RATE_LIMITED)\n"]



=== TEST 12: an internal redirect (try_files) does not count the request twice
--- config
    location /files {
        apipolicy_ratelimit zone=api key=$arg_k;
        try_files /nothing @backend;
    }
    location @backend {
        apipolicy_ratelimit zone=api key=$arg_k;
        rewrite ^ /backend break;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
--- request eval
["GET /files?k=t12", "GET /files?k=t12", "GET /files?k=t12"]
--- error_code eval
[200, 200, 429]



=== TEST 13: long keys are hashed, and still count apart
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$http_x_key;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api", "GET /api", "GET /api", "GET /api"]
--- more_headers eval
["X-Key: " . ("a" x 1000), "X-Key: " . ("a" x 1000),
 "X-Key: " . ("a" x 1000), "X-Key: " . ("a" x 999) . "b"]
--- error_code eval
[200, 200, 429, 200]



=== TEST 14: a small zone evicts the least recently used clients, and keeps working
--- http_config
    apipolicy_ratelimit_zone tiny:32k;
    apipolicy_ratelimit_tier default rate=1r/m;
--- config
    location /api {
        apipolicy_ratelimit zone=tiny key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
[(map { "GET /api?k=client-$_" } 1 .. 400), "GET /api?k=client-400"]
--- error_code eval
[(200) x 400, 429]
--- no_error_log
[alert]
[error]



=== TEST 15: config: unknown zone
--- config
    location /api {
        apipolicy_ratelimit zone=nope key=$arg_k;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown rate limit zone "nope": declare it with apipolicy_ratelimit_zone/



=== TEST 16: config: no default tier
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier gold rate=1r/s;
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k tier=$arg_t;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*no tier "default" is defined/



=== TEST 17: config: bad rate
--- http_config
    apipolicy_ratelimit_tier default rate=10r/w;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid rate "rate=10r\/w": use "rate=N r\/s", r\/m, r\/h or r\/d/



=== TEST 18: config: a tier without rate, a duplicate tier, a bad name
--- http_config
    apipolicy_ratelimit_tier default burst=3;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*the tier "default" has no rate/



=== TEST 19: config: duplicate tier
--- http_config
    apipolicy_ratelimit_tier default rate=1r/s;
    apipolicy_ratelimit_tier default rate=2r/s;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*the tier "default" is already defined/



=== TEST 20: config: zone too small, missing key, bad cost, bad status, bad headers value
--- http_config
    apipolicy_ratelimit_zone api:8k;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*zone "api:8k" is too small/



=== TEST 21: config: key= is required
--- config
    location /api {
        apipolicy_ratelimit zone=api;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"key=" is required/



=== TEST 22: config: bad cost
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k cost=0;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid cost "cost=0"/



=== TEST 23: config: the status must be an HTTP error code
--- config
    location /api {
        apipolicy_ratelimit_status 200;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid status "\d+" in "apipolicy_ratelimit_status": a refusal needs an error status, from 400 to 599/



=== TEST 24: config: headers value
--- config
    location /api {
        apipolicy_ratelimit_headers draft;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "draft" in "apipolicy_ratelimit_headers"; use one of: ietf, legacy, both, off in .*nginx\.conf:\d+/



=== TEST 25: config: a tier named literally must be declared (a typo would mean "default")
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k tier=glod;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown tier "glod": declare it with "apipolicy_ratelimit_tier glod rate=\.\.\." at http level, before this line, or pick the tier with a variable in .*nginx\.conf:\d+/



=== TEST 26: a literal tier that is declared is fine
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k tier=gold;
        apipolicy_ratelimit zone=api key=$arg_k tier=default;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api?k=t26
--- error_code: 200
--- response_headers_like
RateLimit-Policy: ^"gold";q=4;w=60, "default";q=2;w=60$



=== TEST 27: RateLimit t= and Retry-After name the same moment: the next window, when the quota was used in this one
The quota (2 a minute) was used in this window, so nothing passes before
the next window: t= is the seconds to it (not "1"), on the 429 equal to
Retry-After, and already on the request that used the last unit.
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t27", "GET /api?k=t27", "GET /api?k=t27"]
--- error_code eval
[200, 200, 429]
--- raw_response_headers_like eval
["", qr/RateLimit: "default";r=0;t=([1-9]|[1-5][0-9]|60)\r\n/,
 qr/RateLimit: "default";r=0;t=([1-9]|[1-5][0-9]|60)\r\n(?:.*\r\n)*?Retry-After: \1\r\n/s]



=== TEST 28: two limits of one tier: each item carries its partition key (pk=), and they differ
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_user;
        apipolicy_ratelimit zone=api key=$arg_app;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api?user=u29&app=a29
--- error_code: 200
--- response_headers_like
RateLimit-Policy: ^"default";q=2;w=60;pk=:[A-Za-z0-9+/]{12}:, "default";q=2;w=60;pk=:[A-Za-z0-9+/]{12}:$
RateLimit: ^"default";r=1;t=\d+;pk=:([A-Za-z0-9+/]{12}):, "default";r=1;t=\d+;pk=:(?!\1)[A-Za-z0-9+/]{12}:$



=== TEST 29: a tier name of 64 bytes is the longest: the 429 detail holds all of it
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=2r/m;
    apipolicy_ratelimit_tier tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt rate=1r/m;
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k tier=tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=t25", "GET /api?k=t25"]
--- error_code eval
[200, 429]
--- response_body_like eval
["ok",
 '^\{"type":"urn:apipolicy:problem:rate-limited","title":"Too many requests","status":429,"detail":"the \\\\"tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\\\\" tier allows 1 requests per minute; retry in \d+ s","code":"RATE_LIMITED"\}$']
--- no_error_log
[alert]
[crit]



=== TEST 30: a tier name of 65 bytes is refused (it would not fit a counter's key)
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=2r/m;
    apipolicy_ratelimit_tier uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu rate=1r/m;
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the tier name "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu" is longer than 64 bytes in .*nginx\.conf:\d+/



=== TEST 31: an error_page into a location without a limit keeps the 429's RateLimit and Retry-After
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        error_page 429 /plain-429;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location = /plain-429 {
        return 429 "slow down\n";
    }
--- request eval
["GET /api?k=t31", "GET /api?k=t31", "GET /api?k=t31"]
--- error_code eval
[200, 200, 429]
--- response_headers_like eval
['RateLimit: ^"default";r=1;t=\d+$', 'RateLimit: ^"default";r=0;t=\d+$',
 'RateLimit: ^"default";r=0;t=\d+$' . "\n" . 'Retry-After: ^\d+$']
--- response_body eval
["ok\n", "ok\n", "slow down\n"]
