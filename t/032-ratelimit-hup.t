# Rate limit counts across "nginx -s reload": a zone whose name and size
# do not change keeps its counts; a resized one starts afresh.  nginx
# keeps running between the blocks (TEST_NGINX_USE_HUP).
BEGIN { $ENV{TEST_NGINX_USE_HUP} = 1 }

use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: two of three requests a day are used
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=3r/d;
--- request eval
["GET /api?k=hup", "GET /api?k=hup"]
--- error_code eval
[200, 200]



=== TEST 2: after a reload with the same zone the count goes on
--- http_config
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=3r/d;
--- request eval
["GET /api?k=hup", "GET /api?k=hup"]
--- error_code eval
[200, 429]
--- no_error_log
[emerg]



=== TEST 3: after a reload that resizes the zone the count starts again
--- http_config
    apipolicy_ratelimit_zone api:2m;
    apipolicy_ratelimit_tier default rate=3r/d;
--- request eval
["GET /api?k=hup", "GET /api?k=hup", "GET /api?k=hup", "GET /api?k=hup"]
--- error_code eval
[200, 200, 200, 429]
