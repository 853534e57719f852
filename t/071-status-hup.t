# apipolicy_status counters across "nginx -s reload": kept, as the other
# zones of apipolicy are.  nginx keeps running between the blocks
# (TEST_NGINX_USE_HUP).
BEGIN { $ENV{TEST_NGINX_USE_HUP} = 1 }

use Test::Nginx::Socket 'no_plan';

master_on();
workers(1);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=100r/m;
_EOC_
    }

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /api {
        apipolicy_ratelimit zone=api key=$remote_addr;
        apipolicy_jwt on;
        apipolicy_jwt_secret 0123456789abcdef0123456789abcdef;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
    location = /status { apipolicy_status; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: a request refused for want of a token is counted
--- request
GET /api
--- error_code: 401



=== TEST 2: a request through the rate limit, counted under its zone and tier
--- request
GET /api
--- more_headers
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjo0MTAyNDQ0ODAwfQ.VlWxZRhYfRBSZT_-DBcxf1yDOuAvsaqFuM30CKXMyU8
--- error_code: 200



=== TEST 3: after a reload the counts go on, the rate limit series found again by name; a new tier starts at 0
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier pro rate=1000r/m;
    apipolicy_ratelimit_tier default rate=100r/m;
--- request
GET /status
--- error_code: 200
--- response_body_like: "requests":2,.*"ratelimit":\{"requests":\{"api":\{"pro":\{"passed":0,"rejected":0,"dry_run":0\},"default":\{"passed":1,.*"TOKEN_MISSING":1,
--- no_error_log
[emerg]
