# Idempotency keys shared through Redis (redis=on): a response kept here
# reaches Redis, a response kept by another gateway (written to the real
# redis-server as that gateway would) is replayed here, a key in flight
# elsewhere gets 409, another payload 422, a freed key is deleted, and
# Redis away or stalled: redis_fail=open goes on locally, closed answers
# 503.
use Test::Nginx::Socket 'no_plan';
use Digest::SHA qw(sha256_hex);

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
$ENV{TEST_NGINX_REDIS_DB} ||= 10;

our $PORT = $ENV{TEST_NGINX_REDIS_PORT};
our $DB = $ENV{TEST_NGINX_REDIS_DB};

sub redis { my $cmd = shift; my $out = `redis-cli -p $PORT -n $DB $cmd`; chomp $out; return $out }

# SET with a value of any bytes (new lines too), given on redis-cli's stdin
sub redis_set {
    my ($key, $value) = @_;
    open(my $cli, "|-", "redis-cli -p $PORT -n $DB -x SET $key >/dev/null")
        or die "redis-cli: $!";
    print $cli $value;
    close($cli) or die "redis-cli SET $key failed";
}

# bodies and keys on both sides of the short hash (119 bytes hashed:
# "POST /pay\n" and a body of 109; "\n" and a key of 118)
our @EDGE = (["edge-a", "b" x 109], ["edge-b", "c" x 110], ["edge-c", "d" x 300],
             ["k" x 118, "{}"], ["K" x 119, "{}"], ["Q" x 250, "e" x 200]);

# what the gateway computes: the entry key (no scope) and the fingerprint
sub key { return "apipolicy:idem:" . sha256_hex("\n" . shift) }
sub fp { my ($target, $body) = @_; return sha256_hex("POST $target\n$body") }

# a response kept by another gateway
sub kept {
    my ($key, $fp, $status, $headers, $body) = @_;
    my $v = "d$fp$status" . length($headers) . "\n$headers$body";
    redis_set(key($key), $v);
}

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config && !defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB timeout=300ms;
    apipolicy_idempotency_zone idem:1m redis=on;
_EOC_
    }

    if (defined $block->config && $block->config !~ m{location /backend}) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend {
        if ($http_x_fail) { return 503 "down\n"; }
        add_header X-Custom "abc" always;
        default_type application/json;
        return 201 '{"attempt":"$http_x_attempt"}';
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: a response kept here reaches Redis, for ttl=
--- init
main::redis("FLUSHDB");
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay
{"amount":10}
--- more_headers
Idempotency-Key: here-1
X-Attempt: 1
--- error_code: 201
--- response_body_filters eval
sub {
    select(undef, undef, undef, 0.3);
    my $v = main::redis("GET " . main::key("here-1"));
    my $ttl = main::redis("PTTL " . main::key("here-1"));
    my $fp = main::fp("/pay", '{"amount":10}');
    my $want = "d${fp}201";
    return $_[0] . "\n" . (index($v, $want) == 0 ? "prefix ok" : "prefix bad: $v")
        . ($v =~ /X-Custom: abc\n/ ? ", headers ok" : ", headers bad")
        . ($v =~ /\{"attempt":"1"\}$/ ? ", body ok" : ", body bad")
        . (($ttl > 86390000 && $ttl <= 86400000) ? ", ttl ok" : ", ttl $ttl") . "\n";
}
--- response_body
{"attempt":"1"}
prefix ok, headers ok, body ok, ttl ok
--- no_error_log
[error]



=== TEST 2: a response kept by another gateway is replayed here, headers and all
--- init
main::redis("FLUSHDB");
main::kept("there-1", main::fp("/pay", '{"amount":10}'), 201,
           "Content-Type: application/json\nX-From: gateway-b\n", '{"attempt":"at-b"}');
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{\"amount\":10}", "POST /pay\n{\"amount\":10}"]
--- more_headers
Idempotency-Key: there-1
X-Attempt: 1
--- error_code eval
[201, 201]
--- response_headers eval
["X-From: gateway-b\nIdempotent-Replayed: true\nContent-Type: application/json\nX-Custom:",
 "X-From: gateway-b\nIdempotent-Replayed: true\nContent-Type: application/json\nX-Custom:"]
--- response_body eval
['{"attempt":"at-b"}', '{"attempt":"at-b"}']



=== TEST 3: in flight at another gateway: 409, and its claim stays
--- init
main::redis("FLUSHDB");
main::redis("SET " . main::key("there-2") . " i" . main::fp("/pay", "{}") . "0123456789abcdef PX 60000");
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay
{}
--- more_headers
Idempotency-Key: there-2
--- error_code: 409
--- response_body_filters eval
sub {
    select(undef, undef, undef, 0.3);
    my $v = main::redis("GET " . main::key("there-2"));
    return $_[0] . (($v eq "i" . main::fp("/pay", "{}") . "0123456789abcdef") ? "claim kept\n" : "claim gone: $v\n");
}
--- response_body_like
"code":"IDEMPOTENCY_KEY_IN_USE"\}
claim kept
--- error_log
apipolicy: IDEMPOTENCY_KEY_IN_USE (409)



=== TEST 4: kept at another gateway for another payload: 422
--- init
main::redis("FLUSHDB");
main::kept("there-3", main::fp("/pay", '{"amount":99}'), 200, "", 'paid');
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay
{"amount":10}
--- more_headers
Idempotency-Key: there-3
--- error_code: 422
--- response_body_like
"code":"IDEMPOTENCY_KEY_REUSED"\}



=== TEST 5: a 5xx frees the key in Redis too: the claim is deleted, the retry is answered and kept
--- init
main::redis("FLUSHDB");
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: five\r\nX-Fail: 1\r\n", "Idempotency-Key: five\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: five\r\nX-Attempt: 3\r\n"]
--- error_code eval
[503, 201, 201]
--- response_body_filters eval
sub {
    select(undef, undef, undef, 0.3);
    my $v = main::redis("GET " . main::key("five"));
    return $_[0] . "\n" . (length($v) ? substr($v, 0, 1) . substr($v, 65, 3) : "none") . "\n";
}
--- response_body eval
["down\n\nnone\n", "{\"attempt\":\"2\"}\nd201\n", "{\"attempt\":\"2\"}\nd201\n"]



=== TEST 6: two gateways (two zones here) on one Redis: the key kept at one is known at the other (another target: 422)
--- init
main::redis("FLUSHDB");
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB timeout=300ms;
    apipolicy_idempotency_zone gw_a:1m redis=on;
    apipolicy_idempotency_zone gw_b:1m redis=on;
--- config
    location /a/pay {
        apipolicy_idempotency zone=gw_a;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /b/pay {
        apipolicy_idempotency zone=gw_b;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /a/pay\n{}", "POST /b/pay\n{}", "POST /a/pay\n{}"]
--- more_headers eval
["Idempotency-Key: six\r\nX-Attempt: 1\r\n", "Idempotency-Key: six\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: six\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 422, 201]
--- response_body_like eval
['"attempt":"1"', 'IDEMPOTENCY_KEY_REUSED', '"attempt":"1"']



=== TEST 7: ... the same request at the other gateway (a server of its own here): a replay from Redis
--- init
main::redis("FLUSHDB");
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB timeout=300ms;
    apipolicy_idempotency_zone gw_a:1m redis=on;
    apipolicy_idempotency_zone gw_b:1m redis=on;

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /pay {
            apipolicy_idempotency zone=gw_b;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
        }
    }
--- config
    location /pay {
        apipolicy_idempotency zone=gw_a;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /via-b/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- request eval
["POST /pay\n{}", "POST /via-b/pay\n{}", "POST /via-b/pay\n{}"]
--- more_headers eval
["Idempotency-Key: seven\r\nX-Attempt: 1\r\n", "Idempotency-Key: seven\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: other\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 201, 201]
--- response_headers eval
["Idempotent-Replayed: ", "Idempotent-Replayed: true\nX-Custom: abc", "Idempotent-Replayed: "]
--- response_body_like eval
['"attempt":"1"', '"attempt":"1"', '"attempt":"3"']



=== TEST 8: Redis away, redis_fail=open (the default): the zone alone, replays still work
--- http_config
    apipolicy_redis 127.0.0.1:1 timeout=300ms connect_timeout=300ms;
    apipolicy_idempotency_zone idem:1m redis=on;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{\"x\":1}"]
--- more_headers eval
["Idempotency-Key: away\r\nX-Attempt: 1\r\n", "Idempotency-Key: away\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: away\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 201, 422]
--- response_headers eval
["Idempotent-Replayed: ", "Idempotent-Replayed: true", ""]
--- response_body_like eval
['"attempt":"1"', '"attempt":"1"', 'IDEMPOTENCY_KEY_REUSED']
--- timeout: 1



=== TEST 9: Redis away, redis_fail=closed: 503 IDEMPOTENCY_UNAVAILABLE with Retry-After; no key, no Redis
--- http_config
    apipolicy_redis 127.0.0.1:1 timeout=300ms connect_timeout=300ms;
    apipolicy_idempotency_zone idem:1m redis=on redis_fail=closed;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: closed\r\n", "Idempotency-Key: closed\r\n", "X-Attempt: 3\r\n"]
--- error_code eval
[503, 503, 201]
--- response_headers eval
["Retry-After: 1\nContent-Type: application/problem+json", "Retry-After: 1", "Retry-After:"]
--- response_body_like eval
['^\{"type":"urn:apipolicy:problem:idempotency-unavailable","title":"Idempotency keys cannot be checked now","status":503,"detail":"the store of idempotency keys shared by the gateways cannot be reached; retry later","code":"IDEMPOTENCY_UNAVAILABLE"\}$',
 'IDEMPOTENCY_UNAVAILABLE', '"attempt":"3"']
--- timeout: 1



=== TEST 10: Redis stalls (CLIENT PAUSE): the request waits timeout= at most, then goes on
--- init
main::redis("FLUSHDB");
system("redis-cli -p $main::PORT CLIENT PAUSE 1500 >/dev/null");
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay
{}
--- more_headers
Idempotency-Key: stall
X-Attempt: 1
--- error_code: 201
--- response_body_like: ^\{"attempt":"1"\}$
--- timeout: 1
--- error_log
timed out; working without it until it answers again



=== TEST 11: a value in Redis that makes no sense (a header length past its end, a bad status, junk) is not replayed: logged, and the request goes on
--- init
main::redis("FLUSHDB");
my $fp = main::fp("/pay", "{}");
main::redis_set(main::key("junk-1"), "d${fp}201999\nshort");
main::redis_set(main::key("junk-2"), "d${fp}0991\nab");
main::redis("SET " . main::key("junk-3") . " junk");
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["POST /pay\n{}", "POST /pay\n{}", "POST /pay\n{}"]
--- more_headers eval
["Idempotency-Key: junk-1\r\nX-Attempt: 1\r\n", "Idempotency-Key: junk-2\r\nX-Attempt: 2\r\n",
 "Idempotency-Key: junk-3\r\nX-Attempt: 3\r\n"]
--- error_code eval
[201, 201, 201]
--- response_body eval
['{"attempt":"1"}', '{"attempt":"2"}', '{"attempt":"3"}']
--- error_log
apipolicy: Redis holds a value for this idempotency key that apipolicy did not write; it is not replayed



=== TEST 12: Redis refuses the claim (the key holds a list): logged with Redis's words, and the request goes on
--- init
main::redis("FLUSHDB");
main::redis("RPUSH " . main::key("listed") . " x");
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
POST /pay
{}
--- more_headers
Idempotency-Key: listed
X-Attempt: 1
--- error_code: 201
--- response_body_like: ^\{"attempt":"1"\}$
--- error_log
apipolicy: Redis refused the idempotency claim: WRONGTYPE



=== TEST 13: config: redis=on needs apipolicy_redis
--- http_config
    apipolicy_idempotency_zone idem:1m redis=on;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*apipolicy_idempotency_zone "idem" has redis=on but no apipolicy_redis tells where Redis is, in .*nginx\.conf:\d+/



=== TEST 14: config: a bad redis option
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    apipolicy_idempotency_zone idem:1m redis_fail=maybe;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid "redis_fail=maybe": use "redis=on", "redis=off", "redis_fail=open" or "redis_fail=closed"/



=== TEST 15: config: a prefix= longer than Redis keys of the gateway allow
--- http_config eval
"apipolicy_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT prefix=" . ("p" x 129) . ";"
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"prefix=" is longer than 128 bytes/



=== TEST 16: keys and fingerprints agree with another gateway's on both sides of the one-block hash (bodies of 109, 110 and 300 bytes; keys of 118, 119 and 250 characters): every request is a replay
--- init
main::redis("FLUSHDB");
for my $e (@main::EDGE) {
    main::kept($e->[0], main::fp("/pay", $e->[1]), 200, "X-From: gateway-b\n", "kept " . length($e->[1]));
}
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
[map { "POST /pay\n$_->[1]" } @main::EDGE]
--- more_headers eval
[map { "Idempotency-Key: $_->[0]\r\nX-Attempt: 1\r\n" } @main::EDGE]
--- error_code eval
[map { 200 } @main::EDGE]
--- response_headers eval
[map { "X-From: gateway-b\nIdempotent-Replayed: true" } @main::EDGE]
--- response_body eval
[map { "kept " . length($_->[1]) } @main::EDGE]
--- no_error_log
[error]
