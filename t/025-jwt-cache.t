# The verified-token cache (apipolicy_jwt_cache): hits and misses seen by
# a backend through $apipolicy_jwt_cache_status, isolation between key
# sets, claims still checked on a hit, expiry at "exp", the LRU bound of
# a small zone, configuration errors.  Reload: t/026-jwt-cache-hup.t.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config && defined $block->config) {
        $block->set_value("http_config", <<'_EOC_');
    apipolicy_jwt_cache jwt:1m;
_EOC_
    }
});

# tokens are minted once (a block's "request eval" sees them as $main::X);
# "request eval" arrays use one connection per request, so that both
# workers take part
our $RS = JWTTest::jwt(alg => 'RS256', key => 'rsa',
                       claims => { sub => 'cached', aud => 'api-a' });
our @MANY = map { JWTTest::jwt(alg => 'HS256', claims => { sub => "u$_" }) }
                1 .. 400;

run_tests();

__DATA__

=== TEST 1: the first request verifies (MISS), the next ones are hits
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache $http_x_sub\n"; }
--- request eval
["GET /a?t=$main::RS", "GET /a?t=$main::RS", "GET /a?t=$main::RS",
 "GET /a?t=$main::RS"]
--- response_body eval
["MISS cached\n", "HIT cached\n", "HIT cached\n", "HIT cached\n"]
--- no_error_log
[error]



=== TEST 2: another location with the same keys shares the entry; other keys never hit
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /same {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /other {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa2.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
["GET /a?t=$main::RS", "GET /same?t=$main::RS", "GET /other?t=$main::RS",
 "GET /other?t=$main::RS", "GET /a?t=$main::RS"]
--- error_code eval
[200, 200, 401, 401, 200]
--- response_body_like eval
["^MISS\n\$", "^HIT\n\$", "SIGNATURE_INVALID", "SIGNATURE_INVALID",
 "^HIT\n\$"]



=== TEST 3: a hit still checks the claims (aud) of the location
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        apipolicy_jwt_audience api-a;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /b {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        apipolicy_jwt_audience api-b;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
["GET /a?t=$main::RS", "GET /a?t=$main::RS", "GET /b?t=$main::RS"]
--- error_code eval
[200, 200, 401]
--- response_body_like eval
["^MISS\n\$", "^HIT\n\$", "AUDIENCE_REJECTED"]



=== TEST 4: a tampered token (same header and payload) is not a hit
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
my $bad = $main::RS;
$bad =~ s/.{4}$/AAAA/;
["GET /a?t=$main::RS", "GET /a?t=$main::RS", "GET /a?t=$bad"]
--- error_code eval
[200, 200, 401]
--- response_body_like eval
["^MISS\n\$", "^HIT\n\$", "SIGNATURE_INVALID"]



=== TEST 5: apipolicy_jwt_cache off in a location: always verified, no status
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_cache off;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache "[$apipolicy_jwt_cache_status]";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
["GET /a?t=$main::RS", "GET /a?t=$main::RS"]
--- response_body eval
["[]\n", "[]\n"]



=== TEST 6: no zone declared: no cache
--- http_config
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache "[$apipolicy_jwt_cache_status]";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
["GET /a?t=$main::RS", "GET /a?t=$main::RS"]
--- response_body eval
["[]\n", "[]\n"]



=== TEST 7: an entry never outlives the token's exp: a token past its exp (accepted within the leeway) is not stored
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_leeway 10m;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
my $t = JWTTest::jwt(alg => 'RS256', key => 'rsa',
                     claims => { sub => 'late', exp => time - 5 });
["GET /a?t=$t", "GET /a?t=$t", "GET /a?t=$t"]
--- response_body eval
["MISS\n", "MISS\n", "MISS\n"]



=== TEST 8: max_ttl caps the entry of a token without exp
--- http_config
    apipolicy_jwt_cache jwt:1m max_ttl=2s;
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_require_exp off;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- request eval
my $t = JWTTest::jwt(alg => 'HS256', claims => { exp => undef, sub => 'ttl' });
["GET /a?t=$t", "GET /a?t=$t"]
--- response_body eval
["MISS\n", "HIT\n"]



=== TEST 9: (3 seconds pass)
--- request
GET /a
--- error_code: 401
--- wait: 3



=== TEST 10: ... expired after max_ttl
--- request eval
my $t = JWTTest::jwt(alg => 'HS256', claims => { exp => undef, sub => 'ttl' });
["GET /a?t=$t"]
--- response_body eval
["MISS\n"]



=== TEST 11: a small zone keeps the most recent entries (LRU)
--- http_config
    apipolicy_jwt_cache tiny:32k;
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Cache $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_cache\n"; }
--- pipelined_requests eval
[(map { "GET /a?t=$_" } @main::MANY),
 "GET /a?t=$main::MANY[399]", "GET /a?t=$main::MANY[398]",
 "GET /a?t=$main::MANY[0]", "GET /a?t=$main::MANY[1]"]
--- response_body eval
[(map { "MISS\n" } 1 .. 400), "HIT\n", "HIT\n", "MISS\n", "MISS\n"]
--- no_error_log
[alert]
[error]



=== TEST 12: zone too small
--- http_config
    apipolicy_jwt_cache tiny:8k;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*zone "tiny:8k" is too small/



=== TEST 13: the zone is declared at http level only
--- http_config
--- config
    location /a {
        apipolicy_jwt_cache jwt:1m;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the cache zone is declared at http level/



=== TEST 14: an unknown parameter
--- http_config
    apipolicy_jwt_cache jwt:1m ttl=5m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "ttl=5m"/
