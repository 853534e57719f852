# JWT claims: exp/nbf/iat with leeway, iss, aud, apipolicy_jwt_require.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;

$ENV{TEST_NGINX_JWT_DIR} ||= JWTTest::jwt_dir();
$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;

no_shuffle();

# every block: /t verifies the token in ?t= with the shared secret and
# whatever the block adds in --- config (inside location /t)
add_block_preprocessor(sub {
    my $block = shift;
    my $extra = $block->config // '';

    $block->set_value("config", <<"_EOC_");
    location /t {
        apipolicy_jwt on;
        apipolicy_jwt_token \$arg_t;
        apipolicy_jwt_secret \$TEST_NGINX_JWT_SECRET;
$extra
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\\n"; }
_EOC_
});

run_tests();

sub t { return "GET /t?t=" . JWTTest::jwt(alg => 'HS256', claims => { @_ }) }

__DATA__

=== TEST 1: expired token: 401 TOKEN_EXPIRED, logged at info
--- pipelined_requests eval
[main::t(exp => time - 10)]
--- error_code eval
[401]
--- response_headers eval
['WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="the token has expired"']
--- response_body_like eval
['"code":"TOKEN_EXPIRED"']
--- error_log eval
qr/\[info\] .*apipolicy: TOKEN_EXPIRED \(401\): the token has expired/



=== TEST 2: leeway: expired a minute ago passes with 120s, not three minutes ago
--- config
        apipolicy_jwt_leeway 120s;
--- pipelined_requests eval
[main::t(exp => time - 60), main::t(exp => time - 180)]
--- error_code eval
[200, 401]



=== TEST 3: default leeway is 0: exp a few seconds ago fails, ahead passes
--- pipelined_requests eval
[main::t(exp => time - 3), main::t(exp => time + 30)]
--- error_code eval
[401, 200]



=== TEST 4: nbf in the future: TOKEN_NOT_YET_VALID; within leeway passes
--- config
        apipolicy_jwt_leeway 2m;
--- pipelined_requests eval
[main::t(nbf => time + 600), main::t(nbf => time + 60), main::t(nbf => time - 10)]
--- error_code eval
[401, 200, 200]
--- response_body_like eval
['"code":"TOKEN_NOT_YET_VALID"', "ok", "ok"]



=== TEST 5: iat in the future beyond leeway is refused
--- config
        apipolicy_jwt_leeway 60;
--- pipelined_requests eval
[main::t(iat => time + 600), main::t(iat => time + 30), main::t(iat => time - 100)]
--- error_code eval
[401, 200, 200]
--- response_body_like eval
['"detail":"the token was issued in the future \(iat\)","code":"TOKEN_NOT_YET_VALID"', "ok", "ok"]



=== TEST 6: non-numeric exp/nbf/iat: TOKEN_MALFORMED
--- pipelined_requests eval
[main::t(exp => "tomorrow"), main::t(exp => time + 60, nbf => [1]),
 main::t(exp => time + 60, iat => JSON::PP::true())]
--- error_code eval
[401, 401, 401]
--- response_body_like eval
['"detail":"the exp claim is not a number","code":"TOKEN_MALFORMED"',
 '"detail":"the nbf claim is not a number"',
 '"detail":"the iat claim is not a number"']



=== TEST 7: exp as a real number is a number
--- pipelined_requests eval
[main::t(exp => (time + 600) + 0.5)]
--- error_code eval
[200]



=== TEST 8: a token without exp is refused unless apipolicy_jwt_require_exp off
--- config
        location /t/noexp {
            apipolicy_jwt_require_exp off;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
        }
--- pipelined_requests eval
[main::t(exp => undef), "GET /t/noexp?t=" . JWTTest::jwt(alg => 'HS256', claims => { exp => undef })]
--- error_code eval
[401, 200]
--- response_body_like eval
['"detail":"the token has no exp claim","code":"CLAIM_REJECTED"', "ok"]



=== TEST 9: iss: one of the configured issuers
--- config
        apipolicy_jwt_issuer https://idp.example.com https://idp2.example.com;
--- pipelined_requests eval
[main::t(iss => 'https://idp2.example.com'), main::t(iss => 'https://evil.example.com'),
 main::t(), main::t(iss => ['https://idp.example.com'])]
--- error_code eval
[200, 401, 401, 401]
--- response_body_like eval
["ok", '"code":"ISSUER_REJECTED"', '"detail":"the token has no issuer \(iss\)"', '"code":"ISSUER_REJECTED"']



=== TEST 10: aud as a string or an array, one of ours
--- config
        apipolicy_jwt_audience api://orders;
        apipolicy_jwt_audience api://billing;
--- pipelined_requests eval
[main::t(aud => 'api://orders'), main::t(aud => ['x', 'api://billing']),
 main::t(aud => ['x', 'y']), main::t(aud => 'api://other'), main::t(),
 main::t(aud => [1, {}])]
--- error_code eval
[200, 200, 401, 401, 401, 401]
--- response_body_like eval
["ok", "ok", '"code":"AUDIENCE_REJECTED"', '"code":"AUDIENCE_REJECTED"', '"code":"AUDIENCE_REJECTED"', '"code":"AUDIENCE_REJECTED"']



=== TEST 11: require eq / ne (strings, numbers, booleans)
--- config
        apipolicy_jwt_require role eq admin;
        apipolicy_jwt_require level eq 3;
        apipolicy_jwt_require email_verified eq true;
        apipolicy_jwt_require status ne banned;
--- pipelined_requests eval
[main::t(role => 'admin', level => 3, email_verified => JSON::PP::true(), status => 'ok'),
 main::t(role => 'user', level => 3, email_verified => JSON::PP::true(), status => 'ok'),
 main::t(role => 'admin', level => "3", email_verified => JSON::PP::true(), status => 'ok'),
 main::t(role => 'admin', level => 3, email_verified => JSON::PP::false(), status => 'ok'),
 main::t(role => 'admin', level => 3, email_verified => JSON::PP::true(), status => 'banned'),
 main::t(role => 'admin', level => 3, email_verified => JSON::PP::true())]
--- error_code eval
[200, 401, 200, 401, 401, 401]
--- response_body_like eval
["ok", '"detail":"the role claim does not satisfy the policy","code":"CLAIM_REJECTED"', "ok",
 '"detail":"the email_verified claim', '"detail":"the status claim', '"detail":"the status claim']



=== TEST 12: require in
--- config
        apipolicy_jwt_require tenant in acme globex;
--- pipelined_requests eval
[main::t(tenant => 'globex'), main::t(tenant => 'initech'), main::t(tenant => ['acme'])]
--- error_code eval
[200, 401, 401]



=== TEST 13: require contains: array claim and space-separated scope
--- config
        apipolicy_jwt_require groups contains dev ops;
        apipolicy_jwt_require scope contains read:orders;
--- pipelined_requests eval
[main::t(groups => ['ops', 'dev', 'x'], scope => 'openid read:orders profile'),
 main::t(groups => ['ops'], scope => 'read:orders'),
 main::t(groups => ['ops', 'dev'], scope => 'read:ordersX write:orders'),
 main::t(groups => 'dev ops', scope => 'read:orders')]
--- error_code eval
[200, 401, 401, 200]



=== TEST 14: require gt/ge/lt/le compare numbers
--- config
        apipolicy_jwt_require age ge 18;
        apipolicy_jwt_require age lt 65;
        apipolicy_jwt_require score gt 0.5;
        apipolicy_jwt_require score le 1;
--- pipelined_requests eval
[main::t(age => 18, score => 1), main::t(age => 17, score => 1),
 main::t(age => 65, score => 1), main::t(age => 30, score => 0.5),
 main::t(age => 30, score => 1.01), main::t(age => "30", score => 1)]
--- error_code eval
[200, 401, 401, 401, 401, 401]



=== TEST 15: require exists / present / absent, nested claims
--- config
        apipolicy_jwt_require email exists;
        apipolicy_jwt_require address.country present;
        apipolicy_jwt_require act absent;
--- pipelined_requests eval
[main::t(email => 'a@b', address => { country => 'FR' }),
 main::t(address => { country => 'FR' }),
 main::t(email => 'a@b', address => { city => 'Paris' }),
 main::t(email => 'a@b', address => { country => 'FR' }, act => { sub => 'admin' }),
 main::t(email => undef, address => { country => 'FR' }, act => undef),
 main::t(email => 'a@b', address => 'FR')]
--- error_code eval
[200, 401, 401, 401, 401, 401]



=== TEST 16: nested eq
--- config
        apipolicy_jwt_require realm_access.roles contains admin;
        apipolicy_jwt_require org.id eq 42;
--- pipelined_requests eval
[main::t(realm_access => { roles => ['admin', 'user'] }, org => { id => 42 }),
 main::t(realm_access => { roles => ['user'] }, org => { id => 42 }),
 main::t(realm_access => { roles => ['admin'] }, org => { id => 43 })]
--- error_code eval
[200, 401, 401]



=== TEST 17: a missing claim fails every operator but absent (fail closed)
--- config
        apipolicy_jwt_require role ne guest;
--- pipelined_requests eval
[main::t(), main::t(role => undef), main::t(role => 'user')]
--- error_code eval
[401, 401, 200]



=== TEST 18: error=403 on a scope rule: insufficient_scope with scope=
--- config
        apipolicy_jwt_require scope contains write:orders admin error=403;
--- pipelined_requests eval
[main::t(scope => 'read:orders'), main::t(scope => 'admin write:orders')]
--- error_code eval
[403, 200]
--- response_headers eval
['WWW-Authenticate: Bearer realm="api", error="insufficient_scope", error_description="the scope claim does not satisfy the policy", scope="write:orders admin"', '']
--- response_body_like eval
['^\{"type":"urn:apipolicy:problem:claim-rejected","title":"Token claim rejected","status":403,"detail":"the scope claim does not satisfy the policy","code":"CLAIM_REJECTED"\}$', "ok"]



=== TEST 19: error=403 on another claim: insufficient_scope, no scope=
--- config
        apipolicy_jwt_require role in admin owner error=403;
--- pipelined_requests eval
[main::t(role => 'user')]
--- error_code eval
[403]
--- response_headers eval
['WWW-Authenticate: Bearer realm="api", error="insufficient_scope", error_description="the role claim does not satisfy the policy"']



=== TEST 20: rules inherit all-or-nothing; a location's rules replace them
--- http_config
    apipolicy_jwt_require role eq admin;
--- config
        location /t/inner {
            apipolicy_jwt_require team eq blue;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
        }
--- pipelined_requests eval
["GET /t?t=" . JWTTest::jwt(alg => 'HS256', claims => { role => 'admin' }),
 "GET /t/inner?t=" . JWTTest::jwt(alg => 'HS256', claims => { team => 'blue' }),
 "GET /t/inner?t=" . JWTTest::jwt(alg => 'HS256', claims => { role => 'admin' })]
--- error_code eval
[200, 200, 401]



=== TEST 21: checks run in order: exp before iss before aud before rules
--- config
        apipolicy_jwt_issuer https://idp.example.com;
        apipolicy_jwt_audience api;
        apipolicy_jwt_require role eq admin error=403;
--- pipelined_requests eval
[main::t(exp => time - 10, iss => 'x', aud => 'y'),
 main::t(iss => 'x', aud => 'y'),
 main::t(iss => 'https://idp.example.com', aud => 'y'),
 main::t(iss => 'https://idp.example.com', aud => 'api'),
 main::t(iss => 'https://idp.example.com', aud => 'api', role => 'admin')]
--- error_code eval
[401, 401, 401, 403, 200]
--- response_body_like eval
['TOKEN_EXPIRED', 'ISSUER_REJECTED', 'AUDIENCE_REJECTED', 'CLAIM_REJECTED', 'ok']
