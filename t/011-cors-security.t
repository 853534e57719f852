# CORS headers belong to apipolicy in its locations: an operator's
# leftover add_header Access-Control-* (with or without "always", on
# gateway refusals and preflights too) or an upstream's are replaced,
# never doubled; IPv6 literal origins in apipolicy_cors_origins and in
# requests; header names in the configuration are exact tokens (a NUL is
# not one).
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a leftover add_header Access-Control-Allow-Origin ... always: one ACAO, the gateway's
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_credentials on;
        add_header Access-Control-Allow-Origin "*" always;
        add_header Access-Control-Allow-Credentials "false" always;
        add_header X-Kept yes always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Allow-Credentials: true
X-Kept: yes
--- raw_response_headers_unlike eval
qr/Access-Control-Allow-Origin.*Access-Control-Allow-Origin|Access-Control-Allow-Credentials.*Access-Control-Allow-Credentials/si



=== TEST 2: add_header and an upstream both sending ACAO, a disallowed origin: none at all
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        add_header Access-Control-Allow-Origin "https://evil.example.net" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        add_header Access-Control-Allow-Origin "*" always;
        return 200 "ok\n";
    }
--- pipelined_requests eval
["GET /api", "GET /api"]
--- more_headers eval
["Origin: https://app.example.com", "Origin: https://evil.example.net"]
--- raw_response_headers_like eval
[qr/^(?!.*Access-Control-Allow-Origin.*Access-Control-Allow-Origin)(?=.*Access-Control-Allow-Origin: https:\/\/app\.example\.com\r\n)/s,
 qr/^(?!.*Access-Control-Allow-Origin)/s]



=== TEST 3: a preflight with add_header always: one ACAO, one Allow-Methods, the gateway's
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_jwt on;
        apipolicy_jwt_secret 0123456789abcdef0123456789abcdef;
        add_header Access-Control-Allow-Origin "*" always;
        add_header Access-Control-Allow-Methods "GET" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
OPTIONS /api
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: DELETE
--- error_code: 204
--- raw_response_headers_like eval
qr/^(?!.*Access-Control-Allow-Origin.*Access-Control-Allow-Origin)(?!.*Access-Control-Allow-Methods.*Access-Control-Allow-Methods)(?=.*Access-Control-Allow-Origin: https:\/\/app\.example\.com\r\n)(?=.*Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE\r\n)/s



=== TEST 3b: a gateway refusal (JWT 401) with add_header always: one ACAO, the gateway's
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_jwt on;
        apipolicy_jwt_secret 0123456789abcdef0123456789abcdef;
        add_header Access-Control-Allow-Origin "*" always;
        add_header Access-Control-Allow-Methods "GET" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- error_code: 401
--- raw_response_headers_like eval
qr/^(?!.*Access-Control-Allow-Origin.*Access-Control-Allow-Origin)(?=.*Access-Control-Allow-Origin: https:\/\/app\.example\.com\r\n)/s



=== TEST 4: apipolicy_cors_upstream pass: the operator's add_header counts as the answer, alone
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_upstream pass;
        add_header Access-Control-Allow-Origin "https://app.example.com" always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- raw_response_headers_like eval
qr/^(?!.*Access-Control-Allow-Origin.*Access-Control-Allow-Origin)(?=.*Access-Control-Allow-Origin: https:\/\/app\.example\.com\r\n)/s



=== TEST 5: add_header outside CORS locations is untouched
--- config
    location /plain {
        add_header Access-Control-Allow-Origin "*" always;
        return 200 "ok\n";
    }
--- request
GET /plain
--- more_headers
Origin: https://app.example.com
--- response_headers
Access-Control-Allow-Origin: *



=== TEST 6: IPv6 literal origins: configured in any spelling, matched as browsers send them
--- config
    location /api {
        apipolicy_cors_origins "http://[::1]:8080" "https://[2001:DB8:0:0:0:0:0:1]" "http://[0:0:0:0:0:ffff:c000:280]:80";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- pipelined_requests eval
["GET /api", "GET /api", "GET /api", "GET /api", "GET /api"]
--- more_headers eval
["Origin: http://[::1]:8080", "Origin: https://[2001:db8::1]",
 "Origin: http://[::ffff:c000:280]", "Origin: http://[::1]:8081",
 "Origin: http://[::2]:8080"]
--- raw_response_headers_like eval
[qr/Access-Control-Allow-Origin: http:\/\/\[::1\]:8080\r\n/,
 qr/Access-Control-Allow-Origin: https:\/\/\[2001:db8::1\]\r\n/,
 qr/Access-Control-Allow-Origin: http:\/\/\[::ffff:c000:280\]\r\n/,
 qr/^(?!.*Access-Control-Allow-Origin)/s,
 qr/^(?!.*Access-Control-Allow-Origin)/s]



=== TEST 7: a bad IPv6 literal is refused at nginx -t
--- config
    location /api { apipolicy_cors_origins "http://[::g]:8080"; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"http:\/\/\[::g\]:8080" has an invalid IPv6 address in .*nginx\.conf:\d+/



=== TEST 8: an IPv6 literal without its "]" is refused at nginx -t
--- config
    location /api { apipolicy_cors_origins "http://[::1:8080"; }
--- must_die
--- error_log eval
qr/\[emerg\] .*has an IPv6 address without its closing "\]"/



=== TEST 9: a header name holding a NUL byte is no token: refused at nginx -t
--- config eval
"location /api { apipolicy_cors_origins https://app.example.com; apipolicy_cors_headers \"x-a\0b\"; }"
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_cors_headers: "x-a/
