# CORS allowlisting per the WHATWG Fetch standard.
use Test::Nginx::Socket 'no_plan';

no_shuffle();
# every block that proxies to /backend and declares no backend of its own
# gets this one, answering "ok" (the configurations nginx must refuse are
# left as they are written)
add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config && $block->config =~ m{/backend\b}
        && $block->config !~ m{location /backend}
        && !defined $block->must_die)
    {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend { return 200 "ok\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: exact origin allowed: ACAO echoes it, Vary: Origin
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Vary: Origin
!Access-Control-Allow-Credentials
!Access-Control-Allow-Methods
--- response_body
ok



=== TEST 2: disallowed origin: no CORS headers, still Vary: Origin
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://evil.example.net
--- response_headers
!Access-Control-Allow-Origin
!Access-Control-Expose-Headers
Vary: Origin
--- response_body
ok



=== TEST 3: no Origin: not a CORS request, Vary: Origin for caches
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- response_headers
!Access-Control-Allow-Origin
Vary: Origin



=== TEST 4: suffix trick: https://evil-example.com is not *.example.com
--- config
    location /api {
        apipolicy_cors_origins https://*.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://evil-example.com
--- response_headers
!Access-Control-Allow-Origin



=== TEST 5: wildcard matches one label
--- config
    location /api {
        apipolicy_cors_origins https://*.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Allow-Origin: https://app.example.com



=== TEST 6: wildcard matches several labels
--- config
    location /api {
        apipolicy_cors_origins https://*.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://a.b.example.com
--- response_headers
Access-Control-Allow-Origin: https://a.b.example.com



=== TEST 7: wildcard does not match the bare domain
--- config
    location /api {
        apipolicy_cors_origins https://*.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://example.com
--- response_headers
!Access-Control-Allow-Origin



=== TEST 8: wildcard does not match another scheme
--- config
    location /api {
        apipolicy_cors_origins https://*.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: http://app.example.com
--- response_headers
!Access-Control-Allow-Origin



=== TEST 9: prefix trick: exact origin is not a prefix match
--- config
    location /api {
        apipolicy_cors_origins https://example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://example.com.evil.net
--- response_headers
!Access-Control-Allow-Origin



=== TEST 10: wildcard with a dot trick in the host
--- config
    location /api {
        apipolicy_cors_origins https://*.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://evil.net/.example.com
--- response_headers
!Access-Control-Allow-Origin



=== TEST 11: null is never matched by a wildcard or a regex
--- config
    location /api {
        apipolicy_cors_origins https://*.example.com ~^.*$;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: null
--- response_headers
!Access-Control-Allow-Origin



=== TEST 12: null allowed only when listed by name
--- config
    location /api {
        apipolicy_cors_origins null;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: null
--- response_headers
Access-Control-Allow-Origin: null



=== TEST 13: mixed-case scheme and host match; ACAO echoes the bytes sent
--- config
    location /api {
        apipolicy_cors_origins https://App.Example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: HTTPS://app.EXAMPLE.com
--- response_headers
Access-Control-Allow-Origin: HTTPS://app.EXAMPLE.com



=== TEST 14: a port must match
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com:8443
--- response_headers
!Access-Control-Allow-Origin



=== TEST 15: an origin with a port, and a wildcard with a port
--- config
    location /api {
        apipolicy_cors_origins http://localhost:3000 https://*.example.com:8443;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api", "GET /api", "GET /api"]
--- more_headers eval
["Origin: http://localhost:3000", "Origin: https://a.example.com:8443",
 "Origin: https://a.example.com"]
--- response_headers eval
["Access-Control-Allow-Origin: http://localhost:3000",
 "Access-Control-Allow-Origin: https://a.example.com:8443",
 "!Access-Control-Allow-Origin"]



=== TEST 16: a default port in the configuration is dropped, as browsers do
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com:443;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Allow-Origin: https://app.example.com



=== TEST 17: several Origin headers: no CORS headers
--- config
    location /api {
        apipolicy_cors_origins https://a.example.com https://b.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://a.example.com
Origin: https://b.example.com
--- response_headers
!Access-Control-Allow-Origin
--- error_log
2 Origin headers, not allowed



=== TEST 18: an Origin holding a list: no CORS headers
--- config
    location /api {
        apipolicy_cors_origins https://a.example.com https://b.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://a.example.com, https://b.example.com
--- response_headers
!Access-Control-Allow-Origin



=== TEST 19: regex origin (anchored)
--- config
    location /api {
        apipolicy_cors_origins "~^https://pr-[0-9]+\.preview\.example\.com$";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api", "GET /api"]
--- more_headers eval
["Origin: https://pr-42.preview.example.com",
 "Origin: https://pr-42.preview.example.com.evil.net"]
--- response_headers eval
["Access-Control-Allow-Origin: https://pr-42.preview.example.com",
 "!Access-Control-Allow-Origin"]



=== TEST 20: preflight answered with 204 before the upstream
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_methods GET POST DELETE;
        apipolicy_cors_headers content-type x-request-id;
        apipolicy_cors_max_age 10m;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: DELETE
Access-Control-Request-Headers: Content-Type, X-Request-ID, X-Other
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Allow-Methods: GET, POST, DELETE
Access-Control-Allow-Headers: content-type, x-request-id
Access-Control-Max-Age: 600
Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers
!Access-Control-Allow-Credentials
--- response_body eval
""



=== TEST 21: preflight with credentials
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_credentials on;
        apipolicy_cors_headers authorization;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: POST
Access-Control-Request-Headers: authorization
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Allow-Credentials: true
Access-Control-Allow-Headers: authorization



=== TEST 22: "*" in headers never covers Authorization
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_headers *;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: POST
Access-Control-Request-Headers: x-a, authorization, x-b
--- error_code: 204
--- response_headers
Access-Control-Allow-Headers: x-a, x-b



=== TEST 23: a plain OPTIONS (no Access-Control-Request-Method) goes upstream
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
--- response_body
upstream
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
!Access-Control-Allow-Methods



=== TEST 24: OPTIONS with Access-Control-Request-Method but no Origin goes upstream
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
OPTIONS /api
--- more_headers
Access-Control-Request-Method: POST
--- response_body
upstream



=== TEST 25: preflight on an authenticated location is answered without credentials
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        auth_basic "api";
        auth_basic_user_file /dev/null;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: GET
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: https://app.example.com



=== TEST 26: CORS headers on nginx's own 401
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_credentials on;
        auth_basic "api";
        auth_basic_user_file /dev/null;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- error_code: 401
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Allow-Credentials: true
Access-Control-Expose-Headers: WWW-Authenticate
Vary: Origin



=== TEST 27: CORS headers on a 429
--- http_config
    limit_req_zone $binary_remote_addr zone=cors_one:1m rate=1r/m;
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        limit_req zone=cors_one;
        limit_req_status 429;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- pipelined_requests eval
["GET /api", "GET /api"]
--- more_headers
Origin: https://app.example.com
--- error_code eval
[200, 429]
--- response_headers eval
["Access-Control-Allow-Origin: https://app.example.com",
 "Access-Control-Allow-Origin: https://app.example.com"]



=== TEST 28: CORS headers on an upstream error
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 503 "down\n"; }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- error_code: 503
--- response_headers
Access-Control-Allow-Origin: https://app.example.com



=== TEST 29: upstream CORS headers are replaced: never two ACAO
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        add_header Access-Control-Allow-Origin "*" always;
        add_header Access-Control-Allow-Credentials "true" always;
        return 200 "ok\n";
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
!Access-Control-Allow-Credentials



=== TEST 30: upstream CORS headers are removed for a disallowed origin
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        add_header Access-Control-Allow-Origin "https://evil.example.net" always;
        return 200 "ok\n";
    }
--- request
GET /api
--- more_headers
Origin: https://evil.example.net
--- response_headers
!Access-Control-Allow-Origin



=== TEST 31: apipolicy_cors_upstream pass: the upstream's answer is kept alone
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_upstream pass;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        add_header Access-Control-Allow-Origin "https://upstream.example.com" always;
        return 200 "ok\n";
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Allow-Origin: https://upstream.example.com



=== TEST 32: disallowed origin rejected with 403 problem when asked
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_reject on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
GET /api
--- more_headers
Origin: https://evil.example.net
--- error_code: 403
--- response_headers
Content-Type: application/problem+json
!Access-Control-Allow-Origin
--- response_body
{"type":"urn:apipolicy:problem:origin-not-allowed","title":"Origin not allowed","status":403,"detail":"Origin not allowed","code":"ORIGIN_NOT_ALLOWED"}
--- error_log
apipolicy: ORIGIN_NOT_ALLOWED (403)



=== TEST 33: apipolicy_cors_reject leaves requests without Origin alone
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_reject on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
GET /api
--- response_body
upstream



=== TEST 34: configured and gateway-added headers are exposed
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_expose X-Request-Id;
        apipolicy_version deprecated=@1000000000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Expose-Headers: X-Request-Id, Deprecation
Deprecation: @1000000000



=== TEST 35: "*" without credentials: ACAO * on every response, no Vary
--- config
    location /api {
        apipolicy_cors_origins *;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api", "GET /api"]
--- more_headers eval
["Origin: https://anyone.example", ""]
--- response_headers eval
["Access-Control-Allow-Origin: *\n!Vary", "Access-Control-Allow-Origin: *\n!Vary"]



=== TEST 36: private network access preflight
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_private_network on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: GET
Access-Control-Request-Private-Network: true
--- error_code: 204
--- response_headers
Access-Control-Allow-Private-Network: true



=== TEST 37: settings inherit from server level; "off" turns CORS off below
--- config
    apipolicy_cors_origins https://app.example.com;
    location /api {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /internal {
        apipolicy_cors_origins off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        apipolicy_cors_origins off;
        return 200 "ok\n";
    }
--- request eval
["GET /api", "GET /internal"]
--- more_headers
Origin: https://app.example.com
--- response_headers eval
["Access-Control-Allow-Origin: https://app.example.com",
 "!Access-Control-Allow-Origin\n!Vary"]



=== TEST 38: "*" with credentials is refused at configuration time
--- config
    location /api {
        apipolicy_cors_origins *;
        apipolicy_cors_credentials on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_cors_origins "\*" cannot be combined with "apipolicy_cors_credentials on".*nginx\.conf:\d+/



=== TEST 39: null with credentials is refused at configuration time
--- config
    location /api {
        apipolicy_cors_origins null;
        apipolicy_cors_credentials on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_cors_origins "null" cannot be combined/



=== TEST 40: an origin with a path is refused
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com/;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_cors_origins: "https:\/\/app\.example\.com\/" is an origin, which has no path, query or trailing slash.* in .*nginx\.conf:\d+/



=== TEST 41: a wildcard over a top-level domain is refused
--- config
    location /api {
        apipolicy_cors_origins https://*.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"https:\/\/\*\.com" is a wildcard that must cover a domain of at least two labels/



=== TEST 42: a wildcard in the middle of a host is refused
--- config
    location /api {
        apipolicy_cors_origins https://app.*.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*may use "\*" only as its whole first label/



=== TEST 43: an unanchored regex starts but warns
--- config
    location /api {
        apipolicy_cors_origins ~example\.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api
--- more_headers
Origin: https://example.com.evil.net
--- response_headers
Access-Control-Allow-Origin: https://example.com.evil.net
--- error_log
is not anchored with ^ and $



=== TEST 44: a bad method name is refused
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_methods GET "PO ST";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_cors_methods: "PO ST" is not a valid name/



=== TEST 45: a duplicate directive is refused
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_origins https://other.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_cors_origins" directive is duplicate/



=== TEST 46: preflight on a JWT-protected location is answered without a token
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_headers authorization;
        apipolicy_jwt on;
        apipolicy_jwt_secret "a-secret-of-at-least-32-bytes-for-hs256";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: GET
Access-Control-Request-Headers: authorization
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Allow-Headers: authorization
!WWW-Authenticate



=== TEST 47: the JWT 401 carries CORS headers and exposes the challenge
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_credentials on;
        apipolicy_jwt on;
        apipolicy_jwt_secret "a-secret-of-at-least-32-bytes-for-hs256";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "upstream\n"; }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- error_code: 401
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Allow-Credentials: true
Access-Control-Expose-Headers: WWW-Authenticate
Content-Type: application/problem+json
Vary: Origin
--- response_body_like: "code":"TOKEN_MISSING"
