# Keys fetched from a URL (apipolicy_jwt_key_request): the identity
# provider is a location of the test server serving JWK Sets from a
# directory this suite writes (TEST_NGINX_IDP_DIR); "--- init" switches
# the file it serves between blocks.  Each fetch is counted on the
# provider's side (nginx's "http request line" debug line for
# /idp/current.json); every error log check sees the whole log since
# nginx started (check_accum_error_log), so a count that must not grow
# is the same expected value after each request.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;
use File::Temp qw(tempdir);
use File::Copy qw(copy);
use JSON::PP ();

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_IDP_DIR} ||= tempdir('apipolicy-idp-XXXXXX', TMPDIR => 1,
                                     CLEANUP => 1);

our $IDP = $ENV{TEST_NGINX_IDP_DIR};

sub jwk { return JWTTest::rsa_jwk(@_) }

sub spew {
    my ($f, $d) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $d;
    close $fh;
}

my $J = JSON::PP->new->canonical(1);
spew("$IDP/jwks-a.json", $J->encode({ keys => [ jwk('rsa-1', 'rsa.pub') ] }));
spew("$IDP/jwks-b.json", $J->encode({ keys => [ jwk('rsa-1', 'rsa.pub'),
                                                jwk('rsa-2', 'rsa2.pub') ] }));
spew("$IDP/not-json.json", "{ this is not a key set");

sub idp { my $v = shift; copy("$IDP/$v", "$IDP/current.json") or die $! }
sub idp_down { unlink "$IDP/current.json" }

our $T1 = JWTTest::jwt(alg => 'RS256', key => 'rsa',
                       header => { kid => 'rsa-1' });
our $T2 = JWTTest::jwt(alg => 'RS256', key => 'rsa2',
                       header => { kid => 'rsa-2' }, claims => { sub => 'bob' });
our @X = map { JWTTest::jwt(alg => 'RS256', key => 'rsa',
                            header => { kid => "made-up-$_" }) } 1 .. 5;

check_accum_error_log();
master_on();
workers(2);
no_shuffle();

# the provider, its internal front and the backend, in every block
add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location = /_jwks {
        internal;
        subrequest_output_buffer_size 64k;
        proxy_pass_request_headers off;
        proxy_pass_request_body off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/idp/current.json;
    }
    location /idp/ { alias $TEST_NGINX_IDP_DIR/; }
    location /backend { return 200 "ok $http_x_sub\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: the first request fetches the keys, the next ones use them (one fetch for both workers)
--- init
main::idp('jwks-a.json');
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?t=$main::T1", "GET /api?t=$main::T1", "GET /api?t=$main::T1",
 "GET /api?t=$main::T1"]
--- response_body eval
["ok alice\n", "ok alice\n", "ok alice\n", "ok alice\n"]
--- grep_error_log eval: qr/request line: "GET \/idp\/current.json/
--- grep_error_log_out
request line: "GET /idp/current.json
--- no_error_log
[error]



=== TEST 2: rotation: the keys have rsa-1 ...
--- init
main::idp('jwks-a.json');
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
"GET /api?t=$main::T1"
--- response_body
ok alice



=== TEST 3: ... the provider adds rsa-2: a token with the new kid triggers a refetch
--- init
main::idp('jwks-b.json');
--- request eval
["GET /api?t=$main::T2", "GET /api?t=$main::T2", "GET /api?t=$main::T1"]
--- response_body eval
["ok bob\n", "ok bob\n", "ok alice\n"]
--- grep_error_log eval: qr/request line: "GET \/idp\/current.json|unknown kid "[^"]+"/
--- grep_error_log_out
request line: "GET /idp/current.json
unknown kid "rsa-2"
request line: "GET /idp/current.json



=== TEST 4: unknown kids: one refetch per cooldown, then KEY_NOT_FOUND at once
--- init
main::idp('jwks-a.json');
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
"GET /api?t=$main::T1"
--- error_code: 200



=== TEST 5: ... then five made-up kids: one refetch (the cooldown holds the rest)
--- request eval
[map { "GET /api?t=$_" } @main::X]
--- error_code eval
[401, 401, 401, 401, 401]
--- response_body_like eval
[map { "KEY_NOT_FOUND" } 1 .. 5]
--- grep_error_log eval: qr/request line: "GET \/idp\/current.json/
--- grep_error_log_out
request line: "GET /idp/current.json
request line: "GET /idp/current.json



=== TEST 6: the provider is down: stale keys keep working (refresh=1s)
--- init
main::idp('jwks-a.json');
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks refresh=1s cooldown=1s;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
"GET /api?t=$main::T1"
--- response_body
ok alice



=== TEST 7: ... (2 s later, the provider answers 404): the refresh fails, the keys stay
--- init
main::idp_down();
sleep 2;
--- request eval
"GET /api?t=$main::T1"
--- response_body
ok alice
--- wait: 0.5
--- error_log
apipolicy jwks: fetching "/_jwks" failed (status 404), the current keys are kept



=== TEST 8: the provider is down and there are no keys: 401 KEYS_UNAVAILABLE
--- init
main::idp_down();
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?t=$main::T1", "GET /api?t=$main::T1"]
--- error_code eval
[401, 401]
--- response_body_like eval
["KEYS_UNAVAILABLE", "KEYS_UNAVAILABLE"]
--- grep_error_log eval: qr/request line: "GET \/idp\/current.json/
--- grep_error_log_out
request line: "GET /idp/current.json



=== TEST 9: no answer at all (connection refused): 401 KEYS_UNAVAILABLE
--- config
    location = /_jwks_nowhere {
        internal;
        proxy_pass http://127.0.0.1:1/;
    }
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks_nowhere;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
"GET /api?t=$main::T1"
--- error_code: 401
--- response_body_like: KEYS_UNAVAILABLE
--- error_log
apipolicy jwks: fetching "/_jwks_nowhere" failed (status 502)



=== TEST 10: an answer that is not a key set: 401 KEYS_UNAVAILABLE
--- init
main::idp('not-json.json');
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
"GET /api?t=$main::T1"
--- error_code: 401
--- response_body_like: KEYS_UNAVAILABLE
--- error_log eval
qr/\[error\] .*apipolicy jwks: the answer of "\/_jwks" is not valid JSON/



=== TEST 11: refresh: keys older than refresh= are fetched again in the background
--- init
main::idp('jwks-a.json');
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks refresh=2s;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
"GET /api?t=$main::T1"
--- response_body
ok alice



=== TEST 12: ... (3 s later) one refetch, the request is not held
--- init
sleep 3;
--- request eval
["GET /api?t=$main::T1", "GET /api?t=$main::T1"]
--- response_body eval
["ok alice\n", "ok alice\n"]
--- wait: 0.3
--- grep_error_log eval: qr/request line: "GET \/idp\/current.json/
--- grep_error_log_out
request line: "GET /idp/current.json
request line: "GET /idp/current.json



=== TEST 13: the verified-token cache with fetched keys
--- init
main::idp('jwks-a.json');
--- http_config
    apipolicy_jwt_cache jwt:1m;
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_request /_jwks;
        proxy_set_header X-Sub $apipolicy_jwt_cache_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?t=$main::T1", "GET /api?t=$main::T1"]
--- response_body eval
["ok MISS\n", "ok HIT\n"]



=== TEST 14: http level is refused (the URI resolves per server)
--- http_config
    apipolicy_jwt_key_request /_jwks;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_jwt_key_request" belongs in a server or a location \(its URI is resolved in the server\), not in the http block/



=== TEST 15: parameters
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_key_request /_jwks refresh=1h max_stale=10m;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*max_stale \(600 s\) is shorter than refresh \(3600 s\)/
