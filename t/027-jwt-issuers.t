# Several identity providers on one location: a key set given issuer=
# (apipolicy_jwt_key_file, apipolicy_jwt_secret, apipolicy_jwt_key_request)
# verifies only tokens whose "iss" is that issuer, so no provider can sign
# for another; keys fetched from a URL are bound the same way.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;
use File::Temp qw(tempdir);
use JSON::PP ();

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;
$ENV{TEST_NGINX_IDP_DIR} ||= tempdir('apipolicy-iss-XXXXXX', TMPDIR => 1,
                                     CLEANUP => 1);

my $ID = $ENV{TEST_NGINX_IDP_DIR};
my $J = JSON::PP->new->canonical(1);

sub spew {
    my ($f, $d) = @_;
    open my $fh, '>', $f or die "$f: $!";
    print $fh $d;
    close $fh;
}

# both providers name their key "k1"
spew("$ID/a.json", $J->encode({ keys => [ rsa_jwk('k1', 'rsa.pub') ] }));
spew("$ID/b.json", $J->encode({ keys => [ rsa_jwk('k1', 'rsa2.pub') ] }));

our $A = 'https://a.example.com/';
our $B = 'https://b.example.com/';

sub tok {
    my ($key, $iss, %o) = @_;
    return JWTTest::jwt(alg => $o{alg} || 'RS256', key => $key,
                        header => $o{header} || {},
                        claims => { iss => $iss, sub => $o{sub} || 'u' });
}

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location = /_jwks_b {
        internal;
        subrequest_output_buffer_size 64k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/idp/b.json;
    }
    location /idp/ { alias $TEST_NGINX_IDP_DIR/; }
    location /backend { return 200 "ok $http_x_iss\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: two key files bound to two issuers: each verifies its own tokens only
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub issuer=https://a.example.com/;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/ec256.pub issuer=https://b.example.com/;
        proxy_set_header X-Iss $jwt_claim_iss;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
["GET /api?t=" . main::tok('rsa', $main::A),
 "GET /api?t=" . main::tok('ec256', $main::B, alg => 'ES256'),
 "GET /api?t=" . main::tok('ec256', $main::A, alg => 'ES256'),
 "GET /api?t=" . main::tok('rsa', $main::B),
 "GET /api?t=" . main::tok('rsa', 'https://c.example.com/'),
 "GET /api?t=" . JWTTest::jwt(alg => 'RS256', key => 'rsa')]
--- error_code eval
[200, 200, 401, 401, 401, 401]
--- response_body_like eval
["ok https://a.example.com/", "ok https://b.example.com/",
 "ALGORITHM_NOT_ALLOWED", "ALGORITHM_NOT_ALLOWED",
 '"detail":"no key is bound to the token.s issuer \(iss\)","code":"ISSUER_REJECTED"',
 '"detail":"the token has no issuer \(iss\) and every key is bound to one","code":"ISSUER_REJECTED"']



=== TEST 2: a key file and fetched keys, the same kid at both providers: a token of A signed with B's key is refused
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_IDP_DIR/a.json issuer=https://a.example.com/;
        apipolicy_jwt_key_request /_jwks_b issuer=https://b.example.com/;
        proxy_set_header X-Iss $jwt_claim_iss;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
["GET /api?t=" . main::tok('rsa', $main::A, header => { kid => 'k1' }),
 "GET /api?t=" . main::tok('rsa2', $main::B, header => { kid => 'k1' }),
 "GET /api?t=" . main::tok('rsa2', $main::A, header => { kid => 'k1' }),
 "GET /api?t=" . main::tok('rsa', $main::B, header => { kid => 'k1' }),
 "GET /api?t=" . main::tok('rsa2', $main::A)]
--- error_code eval
[200, 200, 401, 401, 401]
--- response_body_like eval
["ok https://a.example.com/", "ok https://b.example.com/",
 "SIGNATURE_INVALID", "SIGNATURE_INVALID", "SIGNATURE_INVALID"]



=== TEST 3: secrets take issuer= too; a key set without issuer= still verifies any issuer's tokens
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET issuer=https://a.example.com/;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        proxy_set_header X-Iss $jwt_claim_iss;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
["GET /api?t=" . JWTTest::jwt(alg => 'HS256', claims => { iss => $main::A }),
 "GET /api?t=" . JWTTest::jwt(alg => 'HS256', claims => { iss => $main::B }),
 "GET /api?t=" . main::tok('rsa', $main::B),
 "GET /api?t=" . main::tok('rsa', $main::A)]
--- error_code eval
[200, 401, 200, 200]
--- response_body_like eval
["ok https://a.example.com/", "ALGORITHM_NOT_ALLOWED",
 "ok https://b.example.com/", "ok https://a.example.com/"]



=== TEST 4: the verified-token cache keeps key sets of different issuers apart
--- http_config
    apipolicy_jwt_cache jwt_iss:1m;
--- config
    location /a {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub issuer=https://a.example.com/;
        add_header X-Cache $apipolicy_jwt_cache_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /b {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub issuer=https://b.example.com/;
        add_header X-Cache $apipolicy_jwt_cache_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
my $t = main::tok('rsa', $main::A);
["GET /a?t=$t", "GET /a?t=$t", "GET /b?t=$t"]
--- error_code eval
[200, 200, 401]
--- response_body_like eval
["ok", "ok", "ISSUER_REJECTED"]



=== TEST 5: issuer= without a value is refused
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub issuer=;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "issuer=" .*in .*nginx\.conf:\d+/



=== TEST 6: the fetched keys of one issuer cannot be had: its tokens get KEYS_UNAVAILABLE, the other issuer's still pass
--- config
    location = /_jwks_none {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/idp/none.json;
    }
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub issuer=https://a.example.com/;
        apipolicy_jwt_key_request /_jwks_none issuer=https://b.example.com/;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
["GET /api?t=" . main::tok('rsa2', $main::B, header => { kid => 'k1' }),
 "GET /api?t=" . main::tok('rsa', $main::A)]
--- error_code eval
[401, 200]
--- response_body_like eval
['"detail":"the keys could not be fetched","code":"KEYS_UNAVAILABLE"', "ok"]
