# JWT basics: token sources, RFC 6750 challenges, optional mode,
# "satisfy any", variables seen by a backend.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;

no_shuffle();
# every block that proxies to /backend and declares no backend of its own
# gets this one, echoing the X-Sub header it was sent
add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config && $block->config =~ m{/backend\b}
        && $block->config !~ m{location /backend})
    {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend { return 200 "sub=$http_x_sub\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: no token: 401, Bearer challenge without error, problem+json
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api"
Content-Type: application/problem+json
--- response_body_like: ^\{"type":"urn:apipolicy:problem:token-missing","title":"Bearer token required","status":401,"detail":"Bearer token required","code":"TOKEN_MISSING"\}$
--- error_log eval
qr/\[info\] .*apipolicy: TOKEN_MISSING \(401\)/



=== TEST 2: valid HS256 token: 200, claim in proxy_set_header
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256')
--- response_body
sub=alice
--- no_error_log
[error]



=== TEST 3: the scheme is case-insensitive ("bearer", "BEARER")
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
["GET /api", "GET /api"]
--- more_headers eval
"Authorization: bEaReR   " . JWTTest::jwt(alg => 'HS256')
--- response_body eval
["sub=alice\n", "sub=alice\n"]



=== TEST 4: "Authorization: Bearer" with nothing after it: malformed
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Authorization: Bearer
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="the Bearer credentials are empty"
--- response_body_like: "code":"TOKEN_MALFORMED"



=== TEST 5: short header "Authorization: X": no token, no crash
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Authorization: X
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api"
--- response_body_like: "code":"TOKEN_MISSING"



=== TEST 6: another scheme (Basic) is not a bearer token
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Authorization: Basic dXNlcjpwYXNz
--- error_code: 401
--- response_body_like: "code":"TOKEN_MISSING"



=== TEST 7: "Bearerxyz" is not the Bearer scheme
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Authorization: Bearerxyz
--- error_code: 401
--- response_body_like: "code":"TOKEN_MISSING"



=== TEST 8: realm= is used in the challenge
--- config
    location /api {
        apipolicy_jwt on realm=orders;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="orders"



=== TEST 9: wrong signature: 401 invalid_token, logged at error level
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', secret => 'x' x 32)
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="the HS256 signature does not verify"
--- response_body_like: "code":"SIGNATURE_INVALID"
--- error_log eval
qr/\[error\] .*apipolicy: SIGNATURE_INVALID \(401\): the HS256 signature does not verify/



=== TEST 10: the token is never logged
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', secret => 'x' x 32, claims => { sub => 'secretsubject' })
--- error_code: 401
--- log_level: info
--- no_error_log
eyJ



=== TEST 11: token from apipolicy_jwt_token $cookie_jwt
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_token $cookie_jwt;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Cookie: jwt=" . JWTTest::jwt(alg => 'HS256', claims => { sub => 'cookie' })
--- response_body
sub=cookie



=== TEST 12: cookie and Authorization with different tokens: 400 invalid_request (RFC 6750 section 3.1)
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_token $cookie_jwt;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Cookie: jwt=" . JWTTest::jwt(alg => 'HS256', claims => { sub => 'a' }) . "\n"
. "Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { sub => 'b' })
--- error_code: 400
--- response_headers_like
WWW-Authenticate: Bearer realm="api", error="invalid_request", error_description="a token was sent both in the Authorization header and by another method"
--- response_body_like: "status":400,.*"code":"TOKEN_AMBIGUOUS"



=== TEST 13: cookie and Authorization with the same token: 400 as well (one method per request)
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_token $cookie_jwt;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
my $t = JWTTest::jwt(alg => 'HS256', claims => { sub => 'same' });
"Cookie: jwt=$t\nAuthorization: Bearer $t"
--- error_code: 400
--- response_body_like: "code":"TOKEN_AMBIGUOUS"
--- error_log eval
qr/\[info\] .*apipolicy: TOKEN_AMBIGUOUS \(400\): a token was sent both/



=== TEST 13b: a token sent twice is a bad request even where "satisfy any" lets the client in without one
--- config
    location /any {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_token $arg_t;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- pipelined_requests eval
my $t = JWTTest::jwt(alg => 'HS256', claims => { sub => 'same' });
["GET /any", "GET /any?t=$t"]
--- more_headers eval
my $t = JWTTest::jwt(alg => 'HS256', claims => { sub => 'same' });
"Authorization: Bearer $t"
--- error_code eval
[200, 400]
--- response_body_like eval
["sub=", '"code":"TOKEN_AMBIGUOUS"']



=== TEST 14: two Authorization headers: nginx itself refuses with 400
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { sub => 'a' }) . "\n"
. "Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { sub => 'b' })
--- error_code: 400



=== TEST 15: optional: no token passes, claim variables are empty
--- config
    location /api {
        apipolicy_jwt optional;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- response_body
sub=
--- response_headers
!WWW-Authenticate



=== TEST 16: optional: a present token is verified (bad one: 401)
--- config
    location /api {
        apipolicy_jwt optional;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { exp => time - 3600 })
--- error_code: 401
--- response_body_like: "code":"TOKEN_EXPIRED"



=== TEST 17: optional: a good token passes with its claims
--- config
    location /api {
        apipolicy_jwt optional;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { sub => 'bob' })
--- response_body
sub=bob



=== TEST 18: satisfy any: allow by address wins over a missing token
--- config
    location /api {
        satisfy any;
        allow 127.0.0.1;
        deny all;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- response_body
sub=
--- response_headers
!WWW-Authenticate



=== TEST 19: satisfy any: deny all and no token: the 401 challenge stays
--- config
    location /api {
        satisfy any;
        deny all;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="api"



=== TEST 20: satisfy any: deny all, but a valid token grants
--- config
    location /api {
        satisfy any;
        deny all;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256')
--- response_body
sub=alice



=== TEST 21: satisfy all: a valid token does not override deny
--- config
    location /api {
        deny all;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256')
--- error_code: 403



=== TEST 22: satisfy any with auth_basic: both challenges offered
--- user_files
>>> htpasswd
user:{PLAIN}pass
--- config
    location /api {
        satisfy any;
        auth_basic "basic";
        auth_basic_user_file ../html/htpasswd;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /api
--- error_code: 401
--- raw_response_headers_like: WWW-Authenticate: Bearer realm="api"\r\n.*WWW-Authenticate: Basic realm="basic"\r\n|WWW-Authenticate: Basic realm="basic"\r\n.*WWW-Authenticate: Bearer realm="api"\r\n



=== TEST 22b: satisfy any with auth_basic: the password alone grants
--- user_files
>>> htpasswd
user:{PLAIN}pass
--- config
    location /api {
        satisfy any;
        auth_basic "basic";
        auth_basic_user_file ../html/htpasswd;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /api
--- more_headers
Authorization: Basic dXNlcjpwYXNz
--- response_body
ok



=== TEST 23: variables: map, nested claims, arrays, numbers, header
--- http_config
    map $jwt_claim_role $tier {
        admin    gold;
        default  free;
    }
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET kid=k1;
        proxy_set_header X-Tier $tier;
        proxy_set_header X-Country $jwt_claim_address__country;
        proxy_set_header X-Roles $jwt_claim_roles;
        proxy_set_header X-Level $jwt_claim_level;
        proxy_set_header X-Ratio $jwt_claim_ratio;
        proxy_set_header X-Admin $jwt_claim_is_admin;
        proxy_set_header X-Alg $jwt_header_alg;
        proxy_set_header X-Kid $jwt_header_kid;
        proxy_set_header X-Obj $jwt_claim_address;
        proxy_set_header X-Missing "[$jwt_claim_nope]";
        proxy_set_header X-Mixed $jwt_claim_preferredusername;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        return 200 "$http_x_tier|$http_x_country|$http_x_roles|$http_x_level|$http_x_ratio|$http_x_admin|$http_x_alg|$http_x_kid|$http_x_obj|$http_x_missing|$http_x_mixed\n";
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', header => { kid => 'k1' },
    claims => { role => 'admin', address => { country => 'FR' },
                roles => ['a', 'b', 3], level => 42, ratio => 1.5,
                is_admin => JSON::PP::true(), preferredUsername => 'Al' })
--- response_body
gold|FR|a,b,3|42|1.5|true|HS256|k1|{"country":"FR"}|[]|Al



=== TEST 24: control characters in a claim cannot split a header
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "sub=$http_x_sub|$http_x_evil\n"; }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { sub => "a\r\nX-Evil: 1" })
--- response_body
sub=a  X-Evil: 1|



=== TEST 25: claims of a refused token are not exposed
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        add_header X-Sub "[$jwt_claim_sub]" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { exp => time - 100 })
--- error_code: 401
--- response_headers
X-Sub: []



=== TEST 26: inheritance: http-level keys, location-level switch, off
--- http_config
    apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
    apipolicy_jwt_leeway 10s;
--- config
    apipolicy_jwt on;
    location /api {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /public {
        apipolicy_jwt off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        apipolicy_jwt off;
        return 200 "ok\n";
    }
--- pipelined_requests eval
["GET /api", "GET /public"]
--- error_code eval
[401, 200]



=== TEST 27: error_page can take over the 401
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        error_page 401 /login.html;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- user_files
>>> login.html
please log in
--- request
GET /api
--- error_code: 401
--- response_body
please log in



=== TEST 28: $apipolicy_reject_reason carries the code
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        add_header X-Reason $apipolicy_reject_reason always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { exp => time - 100 })
--- error_code: 401
--- response_headers
X-Reason: TOKEN_EXPIRED



=== TEST 29: claims are still there in PRECONTENT (try_files)
--- config
    location /files/ {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        root html;
        try_files /$jwt_claim_sub.txt =404;
    }
--- user_files
>>> alice.txt
alice's file
--- request
GET /files/x
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256')
--- response_body
alice's file



=== TEST 30: claims in a subrequest (auth_request) are the main request's
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        auth_request /check;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location = /check {
        internal;
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/authz;
    }
    location /authz {
        if ($http_x_sub = "alice") { return 204; }
        return 403;
    }
    location /backend { return 200 "ok\n"; }
--- pipelined_requests eval
["GET /api", "GET /api"]
--- more_headers eval
["Authorization: Bearer " . JWTTest::jwt(alg => 'HS256'),
 "Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { sub => 'mallory' })]
--- error_code eval
[200, 403]



=== TEST 31: $jwt_payload: the verified claims as compact JSON (white space and line breaks between tokens gone), empty when refused or absent
--- config
    location /api {
        apipolicy_jwt optional;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_token $arg_t;
        proxy_set_header X-Payload $jwt_payload;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "payload=[$http_x_payload]\n"; }
--- pipelined_requests eval
my $p = qq({"sub":"alice",\r\n "exp" : 4102444800,\n\t"roles":[ "a", "b\\n" ],)
      . qq( "addr":{"c":"FR"}, "x":null, "n":1.5e3});
["GET /api?t=" . JWTTest::jwt(alg => 'HS256', raw_payload => $p),
 "GET /api",
 "GET /api?t=" . JWTTest::jwt(alg => 'HS256', raw_payload => $p,
                              secret => 'x' x 64)]
--- error_code eval
[200, 200, 401]
--- response_body_like eval
["^" . quotemeta(qq(payload=[{"sub":"alice","exp":4102444800,"roles":["a","b\\n"],"addr":{"c":"FR"},"x":null,"n":1.5e3}]\n)) . "\$",
 "^payload=\\[\\]\$",
 "SIGNATURE_INVALID"]



=== TEST 32: tokens with a header segment seen before (each worker keeps the facts of the last one): their own claims, $jwt_header_* and kid read right, a bad signature or another kid still refused
--- config
    location /api {
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET kid=k1;
        apipolicy_jwt_token $arg_t;
        proxy_set_header X-Hdr "$jwt_header_alg,$jwt_header_kid,$jwt_header_x";
        proxy_set_header X-Sub $jwt_claim_sub;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "$http_x_hdr|$http_x_sub\n"; }
--- pipelined_requests eval
my %h = (header => { kid => 'k1', x => 'one' });
my $a = JWTTest::jwt(alg => 'HS256', %h, claims => { sub => 'a' });
my $b = JWTTest::jwt(alg => 'HS256', %h, claims => { sub => 'b' });
my $forged = JWTTest::jwt(alg => 'HS256', %h, claims => { sub => 'c' },
                          secret => 'y' x 64);
my $k2 = JWTTest::jwt(alg => 'HS256', header => { kid => 'k2', x => 'one' },
                      claims => { sub => 'd' });
["GET /api?t=$a", "GET /api?t=$b", "GET /api?t=$forged", "GET /api?t=$k2",
 "GET /api?t=$b"]
--- error_code eval
[200, 200, 401, 401, 200]
--- response_body_like eval
["^HS256,k1,one\\|a\$", "^HS256,k1,one\\|b\$", "SIGNATURE_INVALID",
 "KEY_NOT_FOUND", "^HS256,k1,one\\|b\$"]



=== TEST 33: try_files into a location of the same JWT policy keeps the decision: the token is not checked again (the verified-token cache is not even asked: MISS, not HIT)
--- http_config
    apipolicy_jwt_cache jwt:1m;
--- config
    apipolicy_jwt on;
    apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
    location /a {
        root html;
        try_files $uri /b;
    }
    location /b {
        add_header X-Cache $apipolicy_jwt_cache_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /a
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { jti => "try-files-$$-" . time })
--- error_code: 200
--- response_headers
X-Cache: MISS



=== TEST 34: error_page into a location of the same JWT policy keeps the decision made before the 404
--- http_config
    apipolicy_jwt_cache jwt:1m;
--- config
    apipolicy_jwt on;
    apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
    location /files/ {
        root html;
        error_page 404 = /b;
    }
    location /b {
        add_header X-Cache $apipolicy_jwt_cache_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /files/missing
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256', claims => { jti => "error-page-$$-" . time })
--- error_code: 200
--- response_headers
X-Cache: MISS



=== TEST 35: try_files or error_page into a location of another JWT policy decides again
--- config
    apipolicy_jwt on;
    apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
    location /a {
        root html;
        try_files $uri /b;
    }
    location /b {
        apipolicy_jwt_audience api://orders;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /files/ {
        root html;
        error_page 404 = /b;
    }
--- pipelined_requests eval
["GET /a", "GET /files/missing"]
--- more_headers eval
"Authorization: Bearer " . JWTTest::jwt(alg => 'HS256')
--- error_code eval
[401, 401]
--- response_body_like eval
['"code":"AUDIENCE_REJECTED"', '"code":"AUDIENCE_REJECTED"']
