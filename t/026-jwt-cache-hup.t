# The verified-token cache across "nginx -s reload": a zone whose name
# and size do not change keeps its entries; a resized zone starts empty.
# nginx keeps running between the blocks (TEST_NGINX_USE_HUP).
BEGIN { $ENV{TEST_NGINX_USE_HUP} = 1 }

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;

master_on();
workers(2);
no_shuffle();

our $RS = JWTTest::jwt(alg => 'RS256', key => 'rsa',
                       claims => { sub => 'hup' });

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: the token is verified and stored
--- http_config
    apipolicy_jwt_cache jwt:1m;
--- request eval
"GET /a?t=$main::RS"
--- response_body
MISS
--- no_error_log
[error]



=== TEST 2: after a reload with the same zone: a hit
--- http_config
    apipolicy_jwt_cache jwt:1m;
--- request eval
"GET /a?t=$main::RS"
--- response_body
HIT
--- no_error_log
[error]
[emerg]



=== TEST 3: after a reload that resizes the zone: empty again
--- http_config
    apipolicy_jwt_cache jwt:2m;
--- request eval
["GET /a?t=$main::RS", "GET /a?t=$main::RS"]
--- response_body eval
["MISS\n", "HIT\n"]
--- no_error_log
[error]



=== TEST 4: the same zone kept while the location's key set changes: no hit under other keys
--- http_config
    apipolicy_jwt_cache jwt:2m;
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa2.pub;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
["GET /a?t=$main::RS", "GET /a?t=$main::RS"]
--- response_body eval
["MISS\n", "HIT\n"]
