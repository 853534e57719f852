# API version deprecation: RFC 9745 Deprecation, RFC 8594 Sunset, Link.
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: deprecated version: Deprecation, Sunset and Link on the response
--- config
    location /v1 {
        apipolicy_version deprecated=@1700000000 "sunset=Sat, 01 Jan 2050 00:00:00 GMT"
                          link=https://developer.example.com/v1-deprecation
                          successor=https://api.example.com/v2/;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- response_headers
Deprecation: @1700000000
Sunset: Sat, 01 Jan 2050 00:00:00 GMT
Link: <https://developer.example.com/v1-deprecation>; rel="deprecation", <https://developer.example.com/v1-deprecation>; rel="sunset", <https://api.example.com/v2/>; rel="successor-version"
--- response_body
v1



=== TEST 2: the HTTP-date and @epoch forms are the same instant
--- config
    location /v1 {
        apipolicy_version "deprecated=Tue, 14 Nov 2023 22:13:20 GMT" sunset=@2524608000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- response_headers
Deprecation: @1700000000
Sunset: Sat, 01 Jan 2050 00:00:00 GMT
!Link



=== TEST 3: before the deprecation date nothing is sent
--- config eval
my $later = time() + 3600;
qq{
    location /v1 {
        apipolicy_version deprecated=\@$later link=/docs/v1;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\\n"; }
}
--- request
GET /v1
--- response_headers
!Deprecation
!Sunset
!Link



=== TEST 4: announce=on sends a future Deprecation date ahead of time
--- config eval
my $later = time() + 3600;
qq{
    location /v1 {
        apipolicy_version deprecated=\@$later announce=on;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\\n"; }
}
--- request
GET /v1
--- response_headers_like
Deprecation: \@\d{10}



=== TEST 5: the deprecation date itself counts as deprecated (boundary)
--- config eval
my $now = time();
qq{
    location /v1 {
        apipolicy_version deprecated=\@$now;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\\n"; }
}
--- request
GET /v1
--- response_headers_like
Deprecation: \@\d{10}



=== TEST 6: one minute before the sunset the version still answers
--- config eval
my $now = time();
my $sunset = $now + 60;
qq{
    location /v1 {
        apipolicy_version deprecated=\@$now sunset=\@$sunset;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\\n"; }
}
--- request
GET /v1
--- response_body
v1
--- response_headers_like
Sunset: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT



=== TEST 7: at the sunset date the gateway answers 410 (boundary)
--- config eval
my $now = time();
qq{
    location /v1 {
        apipolicy_version deprecated=\@$now sunset=\@$now;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\\n"; }
}
--- request
GET /v1
--- error_code: 410
--- response_headers
Content-Type: application/problem+json
--- response_body_like
^\{"type":"urn:apipolicy:problem:api-version-sunset","title":"API version retired","status":410,"detail":"[^"]+","code":"API_VERSION_SUNSET"\}$
--- error_log
API_VERSION_SUNSET (410)



=== TEST 8: after the sunset: 410 keeps the deprecation headers and the successor link
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=@1100000000 successor=/v2/;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- error_code: 410
--- response_headers
Deprecation: @1000000000
Sunset: Tue, 09 Nov 2004 11:33:20 GMT
Link: </v2/>; rel="successor-version"
Content-Type: application/problem+json



=== TEST 9: after_sunset=pass keeps serving, with the headers
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=@1100000000 after_sunset=pass;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- response_body
v1
--- response_headers
Deprecation: @1000000000
Sunset: Tue, 09 Nov 2004 11:33:20 GMT



=== TEST 10: the 410 carries CORS headers so browsers can read it
--- config
    location /v1 {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_version deprecated=@1000000000 sunset=@1100000000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- more_headers
Origin: https://app.example.com
--- error_code: 410
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Expose-Headers: Deprecation, Sunset



=== TEST 11: a preflight to a retired version is still answered
--- config
    location /v1 {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_version deprecated=@1000000000 sunset=@1100000000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
OPTIONS /v1
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: GET
--- error_code: 204



=== TEST 12: an upstream Link header is kept beside the gateway's
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 link=https://docs.example.com/v1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        apipolicy_version off;
        add_header Link "</style.css>; rel=preload";
        return 200 "v1\n";
    }
--- request
GET /v1
--- raw_response_headers_like eval
qr{Link: </style\.css>; rel=preload\r\n(?:.*\r\n)*Link: <https://docs\.example\.com/v1>; rel="deprecation"\r\n}



=== TEST 13: $apipolicy_version_status marks deprecated traffic
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000;
        proxy_set_header X-Version-Status $apipolicy_version_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /v2 {
        proxy_set_header X-Version-Status $apipolicy_version_status;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "status=$http_x_version_status\n"; }
--- request eval
["GET /v1", "GET /v2"]
--- response_body eval
["status=deprecated\n", "status=\n"]



=== TEST 14: an error_page takes over the 410 and the reason is in a variable
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=@1100000000;
        error_page 410 @gone;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location @gone {
        return 410 "gone: $apipolicy_reject_reason\n";
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- error_code: 410
--- response_body
gone: API_VERSION_SUNSET
--- response_headers
Deprecation: @1000000000



=== TEST 15: inherited from the server level; "off" below
--- config
    apipolicy_version deprecated=@1000000000;
    location /v1 {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /v2 {
        apipolicy_version off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        apipolicy_version off;
        return 200 "ok\n";
    }
--- request eval
["GET /v1", "GET /v2"]
--- response_headers eval
["Deprecation: \@1000000000", "!Deprecation"]



=== TEST 16: a sunset earlier than the deprecation is refused
--- config
    location /v1 {
        apipolicy_version deprecated=@2000000000 sunset=@1000000000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_version: the sunset date is earlier than the deprecation date.* in .*nginx\.conf:\d+/



=== TEST 17: a bad date is refused
--- config
    location /v1 {
        apipolicy_version deprecated=tomorrow;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_version: invalid date in "deprecated=tomorrow": use \@<seconds since the epoch> or an HTTP-date/



=== TEST 18: an unquoted HTTP-date gets a hint
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=Sat, 01 Jan 2050 00:00:00 GMT;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*quote the whole parameter/



=== TEST 19: deprecated= is required
--- config
    location /v1 {
        apipolicy_version sunset=@2000000000;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_version needs "deprecated=DATE"/



=== TEST 20: a link that is not a URL is refused
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 "link=docs page";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_version: "link=docs page" is not a URL/



=== TEST 21: an unknown parameter is refused
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 after_sunset=404;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_version: unknown parameter "after_sunset=404"/



=== TEST 22: a date after the year 9999 is refused (milliseconds given for seconds)
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=@99999999999999999;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_version: the date in "sunset=\@99999999999999999" is after the year 9999 \(\@253402300799 at most: seconds, not milliseconds\) in .*nginx\.conf:\d+/



=== TEST 23: the last second of the year 9999 is accepted, its Sunset written whole
--- config
    location /v1 {
        apipolicy_version deprecated=@1000000000 sunset=@253402300799;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "v1\n"; }
--- request
GET /v1
--- response_headers
Sunset: Fri, 31 Dec 9999 23:59:59 GMT
--- no_error_log
[alert]
