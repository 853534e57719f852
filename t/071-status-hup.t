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

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /api {
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



=== TEST 2: after a reload the count goes on
--- http_config
    # a change, so that nginx reloads
    map $uri $unused_reload_marker { default 1; }
--- request
GET /status
--- error_code: 200
--- response_body_like: "requests":1,.*"TOKEN_MISSING":1,
--- no_error_log
[emerg]
