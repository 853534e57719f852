# Idempotency-Key replay: the first response kept and replayed with
# Idempotent-Replayed, 422 on another payload, 409 while the first is in
# flight, 400 when required and missing or malformed, what is never kept
# (5xx, 429, oversized bodies), scopes, bodies read from disk, CORS on a
# replay, configuration errors.
#
# The backend echoes X-Attempt, a header outside the fingerprint: a
# replay shows the attempt that was answered first.
use Test::Nginx::Socket 'no_plan';

# 100 KB of numbered lines, for a response nginx buffers to disk
sub big { my $s = ''; $s .= sprintf("%07d\n", $_) for 1 .. 12800; return $s }

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    apipolicy_idempotency_zone idem:1m;
_EOC_
    }

    if (defined $block->config && $block->config !~ m{location /backend}) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend {
        if ($http_x_fail) { return 503 "down\n"; }
        add_header X-Custom "abc" always;
        add_header Location "/orders/7" always;
        default_type application/json;
        return 201 '{"attempt":"$http_x_attempt","len":"$content_length"}';
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: the first response is kept and replayed, with the upstream's status, headers and body
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{\"amount\":10}", "POST /pay\n{\"amount\":10}", "POST /pay\n{\"amount\":10}"]
--- more_headers eval
["Idempotency-Key: k-1\r\nX-Attempt: 1\r\n",
 "Idempotency-Key: k-1\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k-2\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 201, 201]
--- response_headers_like eval
["X-Custom: ^abc\$\nLocation: ^/orders/7\$\nContent-Type: ^application/json\$\nIdempotent-Replayed: ^\$",
 "X-Custom: ^abc\$\nLocation: ^/orders/7\$\nContent-Type: ^application/json\$\nIdempotent-Replayed: ^true\$\nContent-Length: ^26\$",
 "Idempotent-Replayed: ^\$"]
--- response_body eval
['{"attempt":"1","len":"13"}',
 '{"attempt":"1","len":"13"}',
 '{"attempt":"3","len":"13"}']



=== TEST 2: the same key with another body, target or method: 422 IDEMPOTENCY_KEY_REUSED
--- config
    location /pay {
        apipolicy_idempotency zone=idem methods=POST,PUT;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay/a\n{\"amount\":10}", "POST /pay/a\n{\"amount\":11}",
 "POST /pay/b\n{\"amount\":10}", "PUT /pay/a\n{\"amount\":10}",
 "POST /pay/a?x=1\n{\"amount\":10}", "POST /pay/a\n{\"amount\":10}"]
--- more_headers eval
["Idempotency-Key: k-1\r\nX-Attempt: 1\r\n",
 "Idempotency-Key: k-1\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k-1\r\nX-Attempt: 3\r\n",
 "Idempotency-Key: k-1\r\nX-Attempt: 4\r\n",
 "Idempotency-Key: k-1\r\nX-Attempt: 5\r\n",
 "Idempotency-Key: k-1\r\nX-Attempt: 6\r\n"]
--- error_code eval
[201, 422, 422, 422, 422, 201]
--- response_headers eval
["", "Content-Type: application/problem+json", "", "", "", "Idempotent-Replayed: true"]
--- response_body_like eval
['"attempt":"1"',
 '^\{"type":"urn:apipolicy:problem:idempotency-key-reused","title":"Idempotency-Key reused with another request","status":422,"detail":"this key was used with another method, target or body","code":"IDEMPOTENCY_KEY_REUSED"\}$',
 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_REUSED', 'IDEMPOTENCY_KEY_REUSED',
 '"attempt":"1"']



=== TEST 3: refusals are logged at info with their code and reason
--- config
    location /pay {
        apipolicy_idempotency zone=idem required;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay
{}
--- error_code: 400
--- error_log
[info]
apipolicy: IDEMPOTENCY_KEY_MISSING (400): this request needs an Idempotency-Key header



=== TEST 4: required: a missing key is 400 IDEMPOTENCY_KEY_MISSING, a malformed one 400 IDEMPOTENCY_KEY_INVALID
--- config
    location /pay {
        apipolicy_idempotency zone=idem required;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}",
 "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["X-Attempt: 1\r\n",
 "Idempotency-Key: " . ("a" x 256) . "\r\n",
 "Idempotency-Key: a\r\nIdempotency-Key: b\r\n",
 "Idempotency-Key: \"\"\r\n",
 "Idempotency-Key: has space\r\n",
 "Idempotency-Key: \"k-3\"\r\nX-Attempt: 6\r\n",
 "Idempotency-Key: k-3\r\nX-Attempt: 7\r\n"]
--- error_code eval
[400, 400, 400, 400, 400, 201, 201]
--- response_body_like eval
['^\{"type":"urn:apipolicy:problem:idempotency-key-missing","title":"Idempotency-Key required","status":400,"detail":"this request needs an Idempotency-Key header","code":"IDEMPOTENCY_KEY_MISSING"\}$',
 '"detail":"the Idempotency-Key is empty or longer than 255 characters","code":"IDEMPOTENCY_KEY_INVALID"',
 '"detail":"several Idempotency-Key headers were sent","code":"IDEMPOTENCY_KEY_INVALID"',
 '"code":"IDEMPOTENCY_KEY_INVALID"',
 '"detail":"the Idempotency-Key holds characters other than printable ASCII","code":"IDEMPOTENCY_KEY_INVALID"',
 '"attempt":"6"',
 '"attempt":"6"']



=== TEST 5: without "required" a request without a key goes on untouched; GET is never subject
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "GET /pay", "GET /pay", "DELETE /pay", "DELETE /pay"]
--- more_headers eval
["X-Attempt: 1\r\n", "X-Attempt: 2\r\n",
 "Idempotency-Key: g\r\nX-Attempt: 3\r\n", "Idempotency-Key: g\r\nX-Attempt: 4\r\n",
 "Idempotency-Key: d\r\nX-Attempt: 5\r\n", "Idempotency-Key: d\r\nX-Attempt: 6\r\n"]
--- error_code eval
[201, 201, 201, 201, 201, 201]
--- response_body_like eval
['"attempt":"1"', '"attempt":"2"', '"attempt":"3"', '"attempt":"4"', '"attempt":"5"', '"attempt":"6"']
--- response_headers eval
["Idempotent-Replayed: ", "Idempotent-Replayed: ", "Idempotent-Replayed: ",
 "Idempotent-Replayed: ", "Idempotent-Replayed: ", "Idempotent-Replayed: "]



=== TEST 6: a 5xx answer is not kept: the retry reaches the upstream, and that answer is kept
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: k\r\nX-Attempt: 1\r\nX-Fail: 1\r\n",
 "Idempotency-Key: k\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k\r\nX-Attempt: 3\r\n"]
--- error_code eval
[503, 201, 201]
--- response_body_like eval
["down", '"attempt":"2"', '"attempt":"2"']



=== TEST 7: an upstream that cannot be reached (502) frees the key too
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:1/;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}"]
--- more_headers
Idempotency-Key: k
--- error_code eval
[502, 502]
--- response_headers eval
["Idempotent-Replayed: ", "Idempotent-Replayed: "]
--- error_log
connect() failed



=== TEST 8: while the first request is in flight the same key gets 409 IDEMPOTENCY_KEY_IN_USE
The first request's upstream calls the gateway again with the same key
(a client retrying before the answer came); that 409 becomes the first
request's answer, and a 409 refusal of the gateway's own is never kept.
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/retry;
    }
    location /retry {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/pay2;
    }
    location /pay2 {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay
{}
--- more_headers
Idempotency-Key: k
--- error_code: 409
--- response_headers
Content-Type: application/problem+json
--- response_body_like
^\{"type":"urn:apipolicy:problem:idempotency-key-in-use","title":"A request with this Idempotency-Key is in progress","status":409,"detail":"the first request with this key has not been answered yet; retry later","code":"IDEMPOTENCY_KEY_IN_USE"\}$
--- error_log
apipolicy: IDEMPOTENCY_KEY_IN_USE (409): the first request with this key has not been answered yet; retry later



=== TEST 9: scope= keeps the keys of different callers apart
--- config
    location /pay {
        apipolicy_idempotency zone=idem scope=$http_x_client;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: k\r\nX-Client: alice\r\nX-Attempt: 1\r\n",
 "Idempotency-Key: k\r\nX-Client: bob\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k\r\nX-Client: alice\r\nX-Attempt: 3\r\n",
 "Idempotency-Key: k\r\nX-Client: bob\r\nX-Attempt: 4\r\n"]
--- error_code eval
[201, 201, 201, 201]
--- response_body_like eval
['"attempt":"1"', '"attempt":"2"', '"attempt":"1"', '"attempt":"2"']



=== TEST 10: a response larger than max_body is passed on, not kept, and its key stays locked for lease= (409 with Retry-After), then is free
--- http_config
    apipolicy_idempotency_zone idem:1m max_body=16 lease=2s;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", ["POST /p", {value => "ay\n{}", delay_before => 2.5}]]
--- more_headers eval
["Idempotency-Key: k\r\nX-Attempt: 1\r\n", "Idempotency-Key: k\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 409, 201]
--- response_headers_like eval
["Retry-After: ^\$", "Retry-After: ^[12]\$", "Retry-After: ^\$"]
--- response_body_like eval
['"attempt":"1"', '"detail":"the outcome of the first request with this key is unknown; the key is locked until its lease ends","code":"IDEMPOTENCY_KEY_IN_USE"', '"attempt":"3"']
--- timeout: 4



=== TEST 11: a request body buffered to disk is fingerprinted whole
--- config
    location /pay {
        client_body_buffer_size 1k;
        client_body_in_file_only on;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
my $a = "{\"data\":\"" . ("x" x 5000) . "\"}";
my $b = "{\"data\":\"" . ("x" x 4999) . "y\"}";
["POST /pay\n$a", "POST /pay\n$b", "POST /pay\n$a"]
--- more_headers eval
["Idempotency-Key: k\r\nX-Attempt: 1\r\n", "Idempotency-Key: k\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 422, 201]
--- response_body_like eval
['"attempt":"1","len":"5011"', 'IDEMPOTENCY_KEY_REUSED', '"attempt":"1","len":"5011"']



=== TEST 12: a replay carries the CORS headers and exposes Idempotent-Replayed
--- config
    location /pay {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Origin: https://app.example.com\r\nIdempotency-Key: k\r\nX-Attempt: 1\r\n",
 "Origin: https://app.example.com\r\nIdempotency-Key: k\r\nX-Attempt: 2\r\n"]
--- error_code eval
[201, 201]
--- response_headers_like eval
["Access-Control-Allow-Origin: ^https://app.example.com\$",
 "Access-Control-Allow-Origin: ^https://app.example.com\$\nAccess-Control-Expose-Headers: Idempotent-Replayed\nIdempotent-Replayed: ^true\$"]
--- response_body_like eval
['"attempt":"1"', '"attempt":"1"']



=== TEST 13: a 429 of the rate limit comes first and keeps nothing
--- init
# the requests in one minute's window (a r/m tier, windows aligned on the
# clock: a second request just after the minute turns would pass)
my $left = 60 - time() % 60;
sleep($left + 1) if $left <= 6;
--- http_config
    apipolicy_idempotency_zone idem:1m;
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=1r/m;
--- config
    location /pay {
        apipolicy_ratelimit zone=api key=$http_x_client;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: k\r\nX-Client: a\r\nX-Attempt: 1\r\n",
 "Idempotency-Key: k2\r\nX-Client: a\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k2\r\nX-Client: b\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 429, 201]
--- response_body_like eval
['"attempt":"1"', 'RATE_LIMITED', '"attempt":"3"']



=== TEST 14: "off" in a nested location; the zone shared by two locations
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;

        location /pay/free {
            apipolicy_idempotency off;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
        }
    }
--- request eval
["POST /pay/free\n{}", "POST /pay/free\n{}", "POST /pay/x\n{}", "POST /pay/x\n{}"]
--- more_headers eval
["Idempotency-Key: k\r\nX-Attempt: 1\r\n", "Idempotency-Key: k\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: k\r\nX-Attempt: 3\r\n", "Idempotency-Key: k\r\nX-Attempt: 4\r\n"]
--- error_code eval
[201, 201, 201, 201]
--- response_body_like eval
['"attempt":"1"', '"attempt":"2"', '"attempt":"3"', '"attempt":"3"']



=== TEST 15: config: an unknown zone
--- config
    location /pay { apipolicy_idempotency zone=nope; }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown idempotency zone "nope": declare it with apipolicy_idempotency_zone at http level, before this line in .*nginx\.conf:\d+/



=== TEST 16: config: zone= is required
--- config
    location /pay { apipolicy_idempotency required; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"zone=" is required, as in "apipolicy_idempotency zone=idem scope=\$jwt_claim_sub;"/



=== TEST 17: config: a method that is not for idempotency keys
--- config
    location /pay { apipolicy_idempotency zone=idem methods=POST,GET; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid method "GET" in "methods=POST,GET": use POST, PATCH, PUT, DELETE/



=== TEST 18: config: a bad ttl, a max_body over half the zone, an unknown parameter
--- http_config
    apipolicy_idempotency_zone idem:1m ttl=soon;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid "ttl=soon": a time, as in "ttl=24h"/



=== TEST 18b: config: a lease= that is not a time
--- http_config
    apipolicy_idempotency_zone idem:1m lease=0;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid "lease=0": a time of at least 1s, as in "lease=5m" in .*nginx\.conf:\d+/



=== TEST 19: config: max_body over half the zone
--- http_config
    apipolicy_idempotency_zone idem:1m max_body=1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid "max_body=1m": a size, at most half the zone/



=== TEST 20: config: the directive twice in one location
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        apipolicy_idempotency zone=idem required;
    }
--- must_die
--- error_log eval
qr/\[emerg\] .*"apipolicy_idempotency" directive is duplicate/



=== TEST 21: a large response that nginx buffers to a temporary file is kept whole
--- http_config
    apipolicy_idempotency_zone idem:1m max_body=256k;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_method GET;
        proxy_buffer_size 1k;
        proxy_buffers 2 1k;
        proxy_busy_buffers_size 1k;
        limit_rate 200k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/big.txt;
    }
--- user_files eval
">>> big.txt\n" . main::big()
--- request eval
["POST /pay\n{}", "POST /pay\n{}"]
--- more_headers
Idempotency-Key: big
--- error_code eval
[200, 200]
--- response_headers eval
["Idempotent-Replayed: \nContent-Length: 102400",
 "Idempotent-Replayed: true\nContent-Length: 102400"]
--- response_body eval
[main::big(), main::big()]



=== TEST 22: an entry lives for ttl=, then the key is new again
--- http_config
    apipolicy_idempotency_zone idem:1m ttl=1s;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: k\r\nX-Attempt: 1\r\n", "Idempotency-Key: k\r\nX-Attempt: 2\r\n"]
--- wait: 2.1
--- error_code eval
[201, 201]
--- response_body_like eval
['"attempt":"1"', '"attempt":"2"']
--- response_headers eval
["Idempotent-Replayed: ", "Idempotent-Replayed: "]



=== TEST 23: config: a zone name another apipolicy zone has
--- http_config
    apipolicy_ratelimit_zone shared:1m;
    apipolicy_idempotency_zone shared:1m;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*the shared memory zone "shared" is already used by another apipolicy directive: give each zone a name of its own in .*nginx\.conf:\d+/



=== TEST 24: behind JWT, scope=$jwt_claim_sub: two callers with one key are apart; a refused token keeps nothing
--- config eval
"location /pay {
    apipolicy_jwt on;
    apipolicy_jwt_secret 0123456789abcdef0123456789abcdef;
    apipolicy_idempotency zone=idem scope=\$jwt_claim_sub;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(hmac_sha256);
my $b64u = sub { my $s = encode_base64(shift, ''); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s };
my $tok = sub {
    my $sub = shift;
    my $in = $b64u->('{"alg":"HS256","typ":"JWT"}') . "." . $b64u->('{"sub":"' . $sub . '","exp":' . (time + 3600) . '}');
    return "$in." . $b64u->(hmac_sha256($in, "0123456789abcdef0123456789abcdef"));
};
["Authorization: Bearer " . $tok->("alice") . "\r\nIdempotency-Key: k\r\nX-Attempt: 1\r\n",
 "Authorization: Bearer " . $tok->("bob") . "\r\nIdempotency-Key: k\r\nX-Attempt: 2\r\n",
 "Authorization: Bearer bad\r\nIdempotency-Key: k\r\nX-Attempt: 3\r\n",
 "Authorization: Bearer " . $tok->("alice") . "\r\nIdempotency-Key: k\r\nX-Attempt: 4\r\n"]
--- error_code eval
[201, 201, 401, 201]
--- response_body_like eval
['"attempt":"1"', '"attempt":"2"', 'TOKEN_MALFORMED', '"attempt":"1"']



=== TEST 25: the key as an RFC 8941 sf-string: spaces, \" and \\ escapes, parameters after it (ignored); malformed strings refused
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}",
 "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
['Idempotency-Key: "order 1"' . "\r\nX-Attempt: 1\r\n",
 'Idempotency-Key: "order 1";p=1;  q' . "\r\nX-Attempt: 2\r\n",
 'Idempotency-Key: "a\"b\\\\c"' . "\r\nX-Attempt: 3\r\n",
 'Idempotency-Key: "a\"b\\\\c";x="y\"";n=-1.5;t=tok/en:1;b=:YWJj:;f=?0' . "\r\nX-Attempt: 4\r\n",
 'Idempotency-Key: tok;p=1' . "\r\nX-Attempt: 5\r\n",
 'Idempotency-Key: "abc' . "\r\n",
 'Idempotency-Key: "a\b"' . "\r\n",
 'Idempotency-Key: "abc";P=1' . "\r\n",
 'Idempotency-Key: "abc" x' . "\r\n",
 'Idempotency-Key: "abc";p=' . "\r\n"]
--- error_code eval
[201, 201, 201, 201, 201, 400, 400, 400, 400, 400]
--- response_headers eval
["Idempotent-Replayed: ", "Idempotent-Replayed: true", "Idempotent-Replayed: ",
 "Idempotent-Replayed: true", "Idempotent-Replayed: ", "", "", "", "", ""]
--- response_body_like eval
['"attempt":"1"', '"attempt":"1"', '"attempt":"3"', '"attempt":"3"', '"attempt":"5"',
 '"detail":"the Idempotency-Key is not a valid structured-field string","code":"IDEMPOTENCY_KEY_INVALID"',
 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_KEY_INVALID',
 'IDEMPOTENCY_KEY_INVALID']



=== TEST 26: a Location that proxy_redirect rewrote (nginx made it absolute) replays as the client first saw it
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/moved;
        proxy_redirect http://upstream.example/ /;
    }
    location /moved {
        add_header Location "http://upstream.example/orders/7" always;
        return 201 "made\n";
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}"]
--- more_headers
Idempotency-Key: loc-1
--- error_code eval
[201, 201]
--- response_headers_like eval
["Location: ^http://localhost:\\d+/orders/7\$\nIdempotent-Replayed: ^\$",
 "Location: ^http://localhost:\\d+/orders/7\$\nIdempotent-Replayed: ^true\$"]



=== TEST 27: without scope= a replay never carries Set-Cookie (another caller would get the first one's cookie); with scope= it does
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/cookie;
    }
    location /scoped {
        apipolicy_idempotency zone=idem scope=$http_x_client;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/cookie;
    }
    location /cookie {
        add_header Set-Cookie "sid=$http_x_attempt" always;
        return 201 "made\n";
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /scoped\n{}", "POST /scoped\n{}"]
--- more_headers eval
["Idempotency-Key: c-1\r\nX-Attempt: 1\r\n", "Idempotency-Key: c-1\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: c-2\r\nX-Client: a\r\nX-Attempt: 3\r\n",
 "Idempotency-Key: c-2\r\nX-Client: a\r\nX-Attempt: 4\r\n"]
--- error_code eval
[201, 201, 201, 201]
--- response_headers eval
["Set-Cookie: sid=1", "!Set-Cookie\nIdempotent-Replayed: true", "Set-Cookie: sid=3",
 "Set-Cookie: sid=3\nIdempotent-Replayed: true"]



=== TEST 28: config: keep= takes 5xx only
--- config
    location /pay { apipolicy_idempotency zone=idem keep=4xx; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid "keep=4xx": use "keep=5xx" \(the 5xx answers the upstream sends are kept and replayed\) in .*nginx\.conf:\d+/



=== TEST 29: a bare key's bytes checked eight at a time and one by one: a bad byte in either part is refused, a long printable key is taken
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}",
 "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: abc\"defghijklmnop\r\n",
 "Idempotency-Key: abcdefghijk\\lm\r\n",
 "Idempotency-Key: abcdefghijklmno\x7fpqrs\r\n",
 "Idempotency-Key: abcdefghijklmnopqrstuvwxyz\xc3\xa9\r\n",
 "Idempotency-Key: abcdefgh~ijklmno\x80\r\n",
 "Idempotency-Key: !~abcdefghijklmnopqrstuvwxyz0123456789-_.!~\r\nX-Attempt: 6\r\n"]
--- error_code eval
[400, 400, 400, 400, 400, 201]
--- response_body_like eval
['"detail":"the Idempotency-Key holds characters other than printable ASCII"',
 '"detail":"the Idempotency-Key holds characters other than printable ASCII"',
 '"detail":"the Idempotency-Key holds characters other than printable ASCII"',
 '"detail":"the Idempotency-Key holds characters other than printable ASCII"',
 '"detail":"the Idempotency-Key holds characters other than printable ASCII"',
 '"attempt":"6"']
