# Keys fetched over https: verified against a trusted certificate they
# are used, from a server the trusted certificate does not vouch for they
# are not; nginx -t warns when the location a key request lands in
# (found as nginx finds it: exact, prefix, nested, regex, ^~) proxies over
# https without proxy_ssl_verify.  The identity provider is an https
# server of the test nginx on a port of its own, with a self-signed
# certificate made by openssl for "idp.test".
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;
use File::Temp qw(tempdir);
use JSON::PP ();

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_TLS_DIR} ||= tempdir('apipolicy-tls-XXXXXX', TMPDIR => 1,
                                     CLEANUP => 1);

my $D = $ENV{TEST_NGINX_TLS_DIR};

for my $name ('idp', 'other') {
    my $out = `openssl req -x509 -newkey rsa:2048 -nodes -days 2 \\
        -subj /CN=$name.test -addext subjectAltName=DNS:$name.test \\
        -keyout $D/$name.key -out $D/$name.crt 2>&1`;
    die "openssl: $out" if $?;
}

open my $fh, '>', "$D/jwks.json" or die $!;
print $fh JSON::PP->new->canonical(1)->encode({ keys => [
    JWTTest::rsa_jwk('rsa-1', 'rsa.pub') ] });
close $fh;

# nginx 1.23.1 and later give the locations without proxy_ssl_* directives
# of their own one shared TLS context, set up as soon as one of them
# proxies over https: a plain http location beside an https one is warned
# about there too (docs/jwt.md); 1.22 keeps them apart
my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my @nv = `$nginx -v 2>&1` =~ m{nginx/(\d+)\.(\d+)\.(\d+)} or die "nginx -v";
our $SHARED_TLS = ($nv[0] * 1000000 + $nv[1] * 1000 + $nv[2]) >= 1023001;

our $T = JWTTest::jwt(alg => 'RS256', key => 'rsa', header => { kid => 'rsa-1' });

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_' . ($block->http_config // ''));
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        server_name idp.test;
        ssl_certificate $TEST_NGINX_TLS_DIR/idp.crt;
        ssl_certificate_key $TEST_NGINX_TLS_DIR/idp.key;
        location / { root $TEST_NGINX_TLS_DIR; }
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: the documented example: proxy_ssl_verify on, the provider's CA trusted, its name sent and checked: keys used, no warning
--- config
    location = /_jwks {
        internal;
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/jwks.json;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $TEST_NGINX_TLS_DIR/idp.crt;
        proxy_ssl_name idp.test;
        proxy_ssl_server_name on;
        subrequest_output_buffer_size 64k;
    }
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_key_request /_jwks;
        apipolicy_jwt_token $arg_t;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request eval
"GET /api?t=$main::T"
--- response_body
ok
--- no_error_log
without "proxy_ssl_verify on"



=== TEST 2: a provider whose certificate is not trusted (a man in the middle): no keys, 401 KEYS_UNAVAILABLE
--- config
    location = /_jwks {
        internal;
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/jwks.json;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $TEST_NGINX_TLS_DIR/other.crt;
        proxy_ssl_name idp.test;
        proxy_ssl_server_name on;
        subrequest_output_buffer_size 64k;
    }
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_key_request /_jwks;
        apipolicy_jwt_token $arg_t;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request eval
"GET /api?t=$main::T"
--- error_code: 401
--- response_body_like: "code":"KEYS_UNAVAILABLE"
--- error_log
upstream SSL certificate verify error



=== TEST 3: without proxy_ssl_verify the keys of anyone on the path are taken: nginx -t warns, naming the directive and the location
--- config
    location = /_jwks {
        internal;
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/jwks.json;
        subrequest_output_buffer_size 64k;
    }
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_key_request /_jwks;
        apipolicy_jwt_token $arg_t;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request eval
"GET /api?t=$main::T"
--- response_body
ok
--- error_log eval
qr/\[warn\] .*apipolicy_jwt_key_request "\/_jwks" in .*nginx\.conf:\d+ is answered by location "\/_jwks", which proxies over https without "proxy_ssl_verify on"/



=== TEST 4: the location is found as nginx finds it: exact beats prefix, nested locations, regexes, ^~ stops regexes, http is not warned about
--- config
    location /_p/ {
        internal;
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
    location = /_p/exact {
        internal;
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/jwks.json;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $TEST_NGINX_TLS_DIR/idp.crt;
        proxy_ssl_name idp.test;
    }
    location ~ ^/_r/ {
        internal;
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location ^~ /_r/plain/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/;
    }
    location /_n/ {
        location /_n/inner/ {
            internal;
            proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
        }
    }
    location /a1 { apipolicy_jwt on; apipolicy_jwt_key_request /_p/jwks.json; }
    location /a2 { apipolicy_jwt on; apipolicy_jwt_key_request /_p/exact; }
    location /a3 { apipolicy_jwt on; apipolicy_jwt_key_request /_r/jwks.json; }
    location /a4 { apipolicy_jwt on; apipolicy_jwt_key_request /_r/plain/jwks.json; }
    location /a5 { apipolicy_jwt on; apipolicy_jwt_key_request /_n/inner/jwks.json; }
    location /a6 { apipolicy_jwt on; apipolicy_jwt_key_request /_nowhere; }
--- request
GET /_nowhere
--- error_code: 404
--- error_log eval
[qr/\[warn\] .*apipolicy_jwt_key_request "\/_p\/jwks\.json" in .* is answered by location "\/_p\/"/,
 qr/\[warn\] .*apipolicy_jwt_key_request "\/_r\/jwks\.json" in .* is answered by location "\^\/_r\/"/,
 qr/\[warn\] .*apipolicy_jwt_key_request "\/_n\/inner\/jwks\.json" in .* is answered by location "\/_n\/inner\/"/]
--- no_error_log eval
[qr/"\/_p\/exact" in/, qr/"\/_nowhere" in/,
 ($main::SHARED_TLS ? () : qr/"\/_r\/plain\/jwks\.json" in/)]
