# The module skeleton: loading, the cheap path, the request context across
# internal redirects, subrequests, problem+json answers.
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a location without apipolicy directives is left alone
--- config
    location /plain {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /plain
--- more_headers
Origin: https://app.example.com
--- response_body
ok
--- response_headers
!Vary
!Access-Control-Allow-Origin
--- log_level: debug
--- no_error_log
apipolicy preaccess



=== TEST 2: a location with a policy runs the dispatcher
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /api
--- log_level: debug
--- error_log
apipolicy preaccess: "/api"



=== TEST 3: headers are written even when the rewrite phase answers
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_version deprecated=@1000000000;
        return 200 "early\n";
    }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_body
early
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Deprecation: @1000000000



=== TEST 4: the decision survives an error_page redirect to another location
--- config
    location /v1 {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_version deprecated=@1000000000 sunset=@1100000000;
        error_page 410 /gone.html;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location = /gone.html {
        root html;
    }
    location /backend { return 200 "v1\n"; }
--- user_files
>>> gone.html
<p>gone</p>
--- request
GET /v1
--- more_headers
Origin: https://app.example.com
--- error_code: 410
--- response_body
<p>gone</p>
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Deprecation: @1000000000
Content-Type: text/html



=== TEST 5: a try_files fallback writes each header once
--- config
    location /app {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_version deprecated=@1000000000;
        try_files $uri @api;
    }
    location @api {
        rewrite ^ /backend break;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
    location /backend { return 200 "fallback\n"; }
--- request
GET /app/missing
--- more_headers
Origin: https://app.example.com
--- response_body
fallback
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Deprecation: @1000000000
Vary: Origin



=== TEST 6: subrequests are not policed (auth_request target with a strict policy)
--- config
    location /api {
        auth_request /auth;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location = /auth {
        internal;
        apipolicy_cors_origins https://only.example.com;
        apipolicy_cors_reject on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request
GET /api
--- more_headers
Origin: https://app.example.com
--- response_body
ok



=== TEST 7: a HEAD request gets the problem headers without a body
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=@1100000000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
HEAD /v1
--- error_code: 410
--- response_headers
Content-Type: application/problem+json
--- response_body eval
""



=== TEST 8: the problem body is valid JSON with the five members
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=@1100000000 successor=/v2/;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- error_code: 410
--- response_body
{"type":"urn:apipolicy:problem:api-version-sunset","title":"API version retired","status":410,"detail":"This API version was retired on Tue, 09 Nov 2004 11:33:20 GMT; its successor is /v2/.","code":"API_VERSION_SUNSET"}



=== TEST 9: an invalid value for an enum directive fails nginx -t
--- config
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_cors_upstream merge;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "merge" in "apipolicy_cors_upstream"; use one of: replace, pass in .*nginx\.conf:\d+/



=== TEST 10: a directive in the wrong place fails nginx -t
--- main_config
    apipolicy_cors_origins https://app.example.com;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_cors_origins" directive is not allowed here/
