# JWT hostile input and configuration errors.  Every bad token is a 401
# with its code and an info-level log line; every bad configuration makes
# nginx refuse to start with file:line and one clear sentence.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_max_size 1k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
_EOC_
    }

    if (!defined $block->request && !defined $block->pipelined_requests
        && defined $block->must_die)
    {
        $block->set_value("request", "GET /t\n");
    }
});

run_tests();

sub raw { my ($h, $p) = @_;
          return "GET /t?t=" . JWTTest::jwt(alg => 'HS256', raw_header => $h,
                                            raw_payload => $p) }
sub seg { return "GET /t?t=" . join '.', @_ }
sub h { JWTTest::b64u('{"alg":"HS256"}') }
sub p { JWTTest::b64u('{"sub":"a","exp":' . (time + 600) . '}') }

__DATA__

=== TEST 1: oversized token (apipolicy_jwt_max_size)
--- pipelined_requests eval
["GET /t?t=" . JWTTest::jwt(alg => 'HS256', claims => { pad => 'x' x 1100 }),
 "GET /t?t=" . JWTTest::jwt(alg => 'HS256', claims => { pad => 'x' x 500 })]
--- error_code eval
[401, 200]
--- response_body_like eval
['"detail":"the token is longer than 1024 bytes","code":"TOKEN_MALFORMED"', "ok"]



=== TEST 2: wrong segment counts; JWE's five segments
--- pipelined_requests eval
[main::seg(main::h(), main::p()), main::seg(main::h(), main::p(), 'x', 'y'),
 main::seg(main::h(), 'a', 'b', 'c', 'd'), main::seg(main::h()), "GET /t?t=.."]
--- error_code eval
[401, 401, 401, 401, 401]
--- response_body_like eval
['"detail":"the token does not have three segments"',
 '"detail":"the token does not have three segments"',
 '"detail":"encrypted tokens \(JWE\) are not supported"',
 '"detail":"the token does not have three segments"',
 '"code":"TOKEN_MALFORMED"']
--- no_error_log
[error]



=== TEST 2b: a malformed token is logged at info level, without the token
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /t
--- more_headers
Authorization: Bearer abc.def
--- error_code: 401
--- error_log eval
qr/\[info\] .*apipolicy: TOKEN_MALFORMED \(401\): the token does not have three segments/
--- no_error_log
[error]



=== TEST 3: base64url: padding, '+' and '/', bad length, stray bits
--- pipelined_requests eval
[main::seg(main::h() . '=', main::p(), 'sig'),
 main::seg(main::h(), main::p(), 'ab+/'),
 main::seg('eyJhb', main::p(), 'sig'),
 main::seg('eyB', main::p(), 'sig'),
 main::seg(main::h(), main::p(), 'AB'),
 main::seg(main::h(), main::p() . 'B', 'sig')]
--- error_code eval
[401, 401, 401, 401, 401, 401]
--- response_body_like eval
['"detail":"the token has characters outside base64url"',
 '"detail":"the token has characters outside base64url"',
 '"detail":"the header is not base64url"',
 '"detail":"the header is not base64url"',
 '"detail":"the signature is not base64url"',
 '"detail":"the payload is not base64url"']



=== TEST 4: header that is not a JSON object
--- pipelined_requests eval
[main::seg(JWTTest::b64u('not json'), main::p(), 'sig'),
 main::seg(JWTTest::b64u('["HS256"]'), main::p(), 'sig'),
 main::seg(JWTTest::b64u('"HS256"'), main::p(), 'sig'),
 main::seg(JWTTest::b64u('{"alg":"HS256"} trailing'), main::p(), 'sig'),
 main::seg(JWTTest::b64u('{"alg":"HS256","alg":"none"}'), main::p(), 'sig'),
 main::seg(JWTTest::b64u('{"typ":"JWT"}'), main::p(), 'sig'),
 main::seg(JWTTest::b64u('{"alg":"HS256","kid":42}'), main::p(), 'sig')]
--- error_code eval
[401, 401, 401, 401, 401, 401, 401]
--- response_body_like eval
['"detail":"the header is not valid JSON","code":"TOKEN_MALFORMED"',
 '"detail":"the header is not a JSON object"',
 '"detail":"the header is not a JSON object"',
 '"detail":"the header is not valid JSON"',
 '"detail":"the header has a duplicate member"',
 '"detail":"the header has no alg string"',
 '"detail":"the header.s kid is not a string"']



=== TEST 5: payload (signed) that is not a JSON object, or duplicated claims
--- pipelined_requests eval
[main::raw(undef, '[1,2,3]'), main::raw(undef, 'null'), main::raw(undef, '{"sub":1'),
 main::raw(undef, '{"sub":"a","sub":"admin","exp":' . (time + 60) . '}'),
 main::raw(undef, '')]
--- error_code eval
[401, 401, 401, 401, 401]
--- response_body_like eval
['"detail":"the payload is not a JSON object","code":"TOKEN_MALFORMED"',
 '"detail":"the payload is not a JSON object"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload has a duplicate member"',
 '"detail":"the payload is not base64url"']



=== TEST 6: deeply nested JSON is refused before parsing
--- pipelined_requests eval
[main::raw(undef, '{"exp":' . (time + 60) . ',"a":' . ('{"b":' x 20) . '1' . ('}' x 20) . '}'),
 main::raw(undef, '{"exp":' . (time + 60) . ',"a":"' . ('[' x 40) . '"}'),
 main::raw('{"alg":"HS256","x":' . ('[' x 30) . (']' x 30) . '}', undef)]
--- error_code eval
[401, 200, 401]
--- response_body_like eval
['"detail":"the payload nests deeper than 16 levels"',
 'ok',
 '"detail":"the header nests deeper than 16 levels"']



=== TEST 7: NUL bytes and invalid UTF-8 inside the JSON
--- pipelined_requests eval
[main::raw(undef, '{"sub":"a\u0000b","exp":' . (time + 60) . '}'),
 main::raw(undef, "{\"sub\":\"a\x00b\",\"exp\":" . (time + 60) . '}'),
 main::raw(undef, "{\"sub\":\"\xff\xfe\",\"exp\":" . (time + 60) . '}'),
 main::raw("{\"alg\":\"HS256\x00\"}", undef)]
--- error_code eval
[401, 401, 401, 401]
--- response_body_like eval
['"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the header is not valid JSON"']



=== TEST 8: non-ASCII and quotes never reach the answer
--- pipelined_requests eval
[main::seg(JWTTest::b64u("{\"alg\":\"HS256\\\"\xc3\xa9\\u2028\"}"), main::p(), 'c2ln'),
 main::seg(JWTTest::b64u('{"alg":"HS256","kid":"\"><script>"}'), main::p(), 'c2ln')]
--- error_code eval
[401, 401]
--- response_body_like eval
['^\{"type":"urn:apipolicy:problem:algorithm-not-allowed","title":"Token algorithm not allowed","status":401,"detail":"the token.s algorithm is not supported","code":"ALGORITHM_NOT_ALLOWED"\}$',
 '^\{"type":"urn:apipolicy:problem:signature-invalid","title":"Token signature invalid","status":401,"detail":"the HS256 signature does not verify","code":"SIGNATURE_INVALID"\}$']



=== TEST 9: no signature, empty token parts
--- pipelined_requests eval
[main::seg(main::h(), main::p(), ''), main::seg('', '', ''), main::seg('', main::p(), 'c2ln')]
--- error_code eval
[401, 401, 401]
--- response_body_like eval
['"detail":"the token has no signature"', '"code":"TOKEN_MALFORMED"', '"detail":"the header is not valid JSON"']



=== TEST 10: a huge Authorization header is nginx's business (400/494)
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /t
--- more_headers eval
"Authorization: Bearer " . ('a' x 9000)
--- error_code: 400



=== TEST 11: default max size is 8 KiB
--- http_config
    large_client_header_buffers 4 32k;
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /t
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { pad => 'x' x 9000 })
--- error_code: 401
--- response_body_like: "detail":"the token is longer than 8192 bytes"



=== TEST 12: config: unreadable key file
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file /nonexistent/key.pem;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*cannot open the key file "\/nonexistent\/key.pem" \(2: No such file or directory\) in .*nginx.conf:\d+/



=== TEST 13: config: a private key is not accepted
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.key;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the key file ".*rsa.key" holds a private key; the gateway only needs the public key \(openssl pkey -pubout\) in .*nginx.conf:\d+/



=== TEST 14: config: a file that is no key at all
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/garbage.pem;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the key file ".*garbage.pem" is neither a PEM public key or certificate nor a JWKS in .*nginx.conf:\d+/



=== TEST 15: config: JWKS without a usable key
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/jwks-unusable.json;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the JWKS file ".*jwks-unusable.json" has no usable key \(2 listed; see the warnings above\) in .*nginx.conf:\d+/



=== TEST 16: config: JWKS that is not JSON
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/not-json.json;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the JWKS file ".*not-json.json" is not valid JSON/



=== TEST 17: config: alg= that does not fit the key type
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub alg=ES256;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the key file ".*rsa.pub" is an RSA key, which cannot verify ES256 in .*nginx.conf:\d+/



=== TEST 18: config: HS256 on a public key
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/ec256.pub alg=HS256;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*is an EC key, which cannot verify HS256/



=== TEST 19: config: curves JWS does not use, RSA under 2048 bits
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/eck1.pub;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*is an EC key on curve "secp256k1"; JWS uses P-256, P-384 or P-521/



=== TEST 20: config: RSA under 2048 bits
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa1024.pub;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*is a 1024-bit RSA key; at least 2048 bits are required/



=== TEST 21: config: secret shorter than 32 bytes
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret short-secret;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_jwt_secret: a secret of 12 bytes is too short; HS256 needs at least 32 bytes \(RFC 7518 section 3.2\) in .*nginx.conf:\d+/



=== TEST 22: config: secret too short for the alg= it names
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret 0123456789abcdef0123456789abcdef alg=HS512;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_jwt_secret: a secret of 32 bytes is too short; HS512 needs at least 64 bytes/



=== TEST 23: config: a secret for an asymmetric algorithm
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret 0123456789abcdef0123456789abcdef alg=RS256;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*a secret verifies HS256, HS384 or HS512 only, not "RS256"/



=== TEST 24: config: unknown algorithm, and none
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_algorithms HS256 XS256;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown JWT algorithm "XS256" \(HS256, .*EdDSA, Ed25519\) in .*nginx.conf:\d+/



=== TEST 25: config: none can never be allowed
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_algorithms none;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"none" can never be allowed/



=== TEST 26: config: bad require operator
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_require role like admin;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown operator "like" \(eq, ne, in, contains, gt, ge, lt, le, exists, absent\) in .*nginx.conf:\d+/



=== TEST 27: config: require with the wrong number of values
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_require role eq admin owner;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*operator "eq" takes exactly one value/



=== TEST 28: config: numeric operator with a non-number
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_require age ge eighteen;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*operator "ge" compares numbers; "eighteen" is not one/



=== TEST 29: config: error= must be 401 or 403
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_require role eq admin error=500;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "error=500": use error=401 or error=403/



=== TEST 30: config: apipolicy_jwt on without any key
--- config
    location /t {
        apipolicy_jwt on;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_jwt" is enabled in .*nginx.conf:\d+ but no key is configured for it/



=== TEST 31: config: no key can verify an allowed algorithm
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
        apipolicy_jwt_algorithms ES256;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*none of the JWT keys for "apipolicy_jwt" in .*nginx.conf:\d+ can verify an algorithm listed in apipolicy_jwt_algorithms/



=== TEST 32: config: bad mode, bad realm, duplicates, kid= on a JWKS
--- config
    location /t {
        apipolicy_jwt maybe;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "maybe": use "on", "off" or "optional"/



=== TEST 33: config: a realm with a quote
--- config
    location /t {
        apipolicy_jwt on 'realm=a"b';
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the realm may only hold printable ASCII/



=== TEST 34: config: duplicate apipolicy_jwt
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt off;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_jwt" directive is duplicate/



=== TEST 35: config: kid= with a JWKS file
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_key_file $TEST_NGINX_JWT_DIR/jwks.json kid=x;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"kid=" cannot be used with the JWKS file ".*jwks.json": its keys carry their own "kid"/



=== TEST 36: config: base64: secret that is not base64
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_secret base64:!!!;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*the secret after "base64:" is not base64/



=== TEST 37: JSON grammar: escapes, surrogates, numbers, literals, trailing bytes, member limit
--- config
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_token $arg_t;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_set_header X-N $jwt_claim_n;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok $http_x_sub $http_x_n\n"; }
--- pipelined_requests eval
my $e = ',"exp":' . (time + 60) . '}';
[main::raw(undef, '{"sub":"caf\u00e9 \ud83d\ude00 \"q\" \/","n":-1.5e3' . $e),
 main::raw(undef, '{ "sub" : "a" , "n" : 12345678901234567890' . $e),
 main::raw(undef, '{"sub":"\ud83d"' . $e),
 main::raw(undef, '{"sub":"\ude00"' . $e),
 main::raw(undef, '{"sub":"\x"' . $e),
 main::raw(undef, '{"sub":"a","n":01' . $e),
 main::raw(undef, '{"sub":"a","n":1.' . $e),
 main::raw(undef, '{"sub":"a","n":tru' . $e),
 main::raw(undef, '{"sub":"a","n":1}' . $e),
 main::raw(undef, '{"sub":"a",' . CORE::join(',', map { "\"k$_\":0" } 1 .. 300) . $e),
 main::raw(undef, "{\"sub\":\"\xe0\x80\x80\"" . $e),
 main::raw(undef, "{\"sub\":\"\xed\xa0\x80\"" . $e),
 main::raw(undef, "{\"sub\":\"\xc3\xa9\"" . $e)]
--- error_code eval
[200, 200, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 200]
--- response_body_like eval
["^ok caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" / -1.5e3\n\$",
 "^ok a 12345678901234567890\n\$",
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload has an object with more than 256 members"',
 '"detail":"the payload is not valid JSON"',
 '"detail":"the payload is not valid JSON"',
 "^ok \xc3\xa9 \n\$"]



=== TEST 38: which fault is named when a token has two: a character outside base64url anywhere first, then the header, then the payload
--- pipelined_requests eval
[main::seg(JWTTest::b64u('not json'), main::p() . '*', 'sig'),
 main::seg(JWTTest::b64u('not json'), main::p() . 'B', 'sig'),
 main::seg(JWTTest::b64u('{"alg":"none"}'), main::p(), 'si*g'),
 main::seg(main::h(), main::p() . '*', 'sig'),
 main::seg('eyJhb', main::p() . '*', 'sig'),
 main::seg('eyJhb', main::p() . 'B', 'sig'),
 main::seg(main::h() . '*', main::p(), 'sig', 'x'),
 main::seg(main::h(), main::p(), 'sig', 'x')]
--- error_code eval
[401, 401, 401, 401, 401, 401, 401, 401]
--- response_body_like eval
['"detail":"the token has characters outside base64url"',
 '"detail":"the header is not valid JSON"',
 '"detail":"the token has characters outside base64url"',
 '"detail":"the token has characters outside base64url"',
 '"detail":"the token has characters outside base64url"',
 '"detail":"the header is not base64url"',
 '"detail":"the token has characters outside base64url"',
 '"detail":"the token does not have three segments"']
