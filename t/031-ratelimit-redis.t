# Rate limits shared through Redis: this gateway's counts reach Redis,
# another gateway's counts (written to the real redis-server the suite
# gets in TEST_NGINX_REDIS_PORT, as that gateway would) count here, a
# request never waits for Redis, and limiting goes on locally, logged
# once, when Redis is away.
use Test::Nginx::Socket 'no_plan';
use POSIX qw(floor);

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
$ENV{TEST_NGINX_REDIS_DB} ||= 9;

our $PORT = $ENV{TEST_NGINX_REDIS_PORT};
our $DB = $ENV{TEST_NGINX_REDIS_DB};

sub redis { my $cmd = shift; my $out = `redis-cli -p $PORT -n $DB $cmd`; chomp $out; return $out }

# a count in Redis: a hash with one field per gateway (and per gateway a
# "d:" field, its demand, and in a key's first window an "r:" field, what
# it holds of the quota; and "t0", when the hash was made); the total is
# the sum of the counts
sub total { my %h = split /\n/, redis("HGETALL " . shift); my $t = 0; $t += $h{$_} for grep { !/^(d:|r:|t0$)/ } keys %h; return $t }

# one window a day: the day's window index, as the gateway computes it
# (a block that would straddle midnight UTC waits for the next day)
sub day { my $t = time; sleep 3 if 86400 - $t % 86400 < 3; return floor(time / 86400) }
sub key { my $k = shift; return "apipolicy:rl:{api:default:$k}:" . day() }
sub prevkey { my $k = shift; return "apipolicy:rl:{api:default:$k}:" . (day() - 1) }

check_accum_error_log();
master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config && !defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB timeout=300ms;
    apipolicy_ratelimit_zone api:1m sync=100ms;
    apipolicy_ratelimit_tier default rate=5r/d;
_EOC_
    }

    if (defined $block->config && $block->config !~ m{location /backend}) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend { return 200 "ok\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: this gateway's counts reach Redis
--- init
main::redis("FLUSHDB");
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=one", "GET /api?k=one", "GET /api?k=one"]
--- error_code eval
[200, 200, 200]
--- wait: 0.5
--- no_error_log
[error]



=== TEST 2: ... 3 in Redis, expiring two days after the window began at most
--- request
GET /backend
--- response_body_filters eval
sub {
    my $ttl = main::redis("PTTL " . main::key("one"));
    my $ok = ($ttl > 86400 * 1000 && $ttl <= 2 * 86400 * 1000 + 1000) ? "ok" : "bad ($ttl)";
    my @fields = sort grep { $_ ne "t0" } split /\n/, main::redis("HKEYS " . main::key("one"));
    my $held = main::redis("HGET " . main::key("one") . " r:$fields[2]");
    my $named = (@fields == 3 && $fields[2] =~ /^[^:]+:\d+$/ && $fields[0] eq "d:$fields[2]" && $fields[1] eq "r:$fields[2]") ? "one field named host:pid, its demand, and what it holds ($held of 65536)" : "fields: @fields";
    return main::total(main::key("one")) . " ttl $ok, $named\n";
}
--- response_body
3 ttl ok, one field named host:pid, its demand, and what it holds (65536 of 65536)



=== TEST 3: another gateway counted 4 for "shared": the first request passes at once (no wait for Redis) ...
The remaining count is this gateway's: a key no sync answered for yet
gets 1/G of the quota, G the gateways alive in the registry (this suite's
earlier nginx masters among them, for a few seconds).
--- init
main::redis("HSET " . main::key("shared") . " gateway-b:1234 4");
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api?k=shared
--- error_code: 200
--- response_headers_like
RateLimit: "default";r=[1-4];t=\d+
--- wait: 0.5



=== TEST 4: ... and after the sync the shared quota (5 a day) is used up: 5 in Redis
--- request
GET /api?k=shared
--- error_code: 429
--- response_headers_like
RateLimit: "default";r=0;t=\d+
--- response_body_filters eval
sub { return main::total(main::key("shared")) . " (gateway-b " . main::redis("HGET " . main::key("shared") . " gateway-b:1234") . ")\n" }
--- response_body
5 (gateway-b 4)



=== TEST 5: Redis away: limits hold locally, and the requests do not wait ...
--- http_config
    apipolicy_redis 127.0.0.1:1 timeout=300ms connect_timeout=300ms;
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=2r/d;
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=away", "GET /api?k=away", "GET /api?k=away"]
--- error_code eval
[200, 200, 429]
--- timeout: 0.5
--- wait: 0.6



=== TEST 6: ... and it is said once per worker, not at every retry
--- request
GET /backend
--- grep_error_log eval: qr/apipolicy redis: 127.0.0.1:1 [^;]+; working without it until it answers again/
--- grep_error_log_out eval
qr/\A(apipolicy redis: 127.0.0.1:1 refused the connection or cannot be reached; working without it until it answers again\n){1,2}\z/



=== TEST 7: Redis stalls (CLIENT PAUSE): requests do not wait for it ...
--- init
main::redis("FLUSHDB");
system("redis-cli -p $main::PORT CLIENT PAUSE 1200 >/dev/null");
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request eval
["GET /api?k=stall", "GET /api?k=stall"]
--- error_code eval
[200, 200]
--- timeout: 0.5



=== TEST 8: ... the push timed out, was kept, and reached Redis once it answered again, counted once
Even when Redis ran the push that timed out after the pause (it had the
commands already), the count is this gateway's absolute count: 2.
--- init
sleep 2;
--- request
GET /backend
--- response_body_filters eval
sub { return main::total(main::key("stall")) . "\n" }
--- response_body
2
--- error_log
timed out; working without it until it answers again
is reachable again



=== TEST 9: another gateway counted 1,000,000 yesterday: today's first request passes, and once the sync has heard it ...
Yesterday's count weighs floor(1000000 * (time left today / day)), over
the quota of 5 until the last second of the day.
--- init
main::redis("HSET " . main::prevkey("decay") . " gateway-b:1234 1000000");
--- config
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /api?k=decay
--- error_code: 200
--- wait: 0.5



=== TEST 10: ... the next is refused until yesterday's count has decayed enough: t= says when, as Retry-After does, not when today ends
--- request
GET /api?k=decay
--- error_code: 429
--- raw_response_headers_like eval
qr/RateLimit: "default";r=0;t=(\d+)\r\n(?:.*\r\n)*?Retry-After: \1\r\n/s
--- response_body_filters eval
sub {
    my ($t) = $_[0] =~ /retry in (\d+) s/;
    # floor(1000000 * (1 - e)) <= 5 - 1 - 1 once e > 1 - 4/1000000 of the day
    my $e = time % 86400;
    my $want = int(86400 * (1 - 4 / 1000000) - $e) + 1;
    return abs($t - $want) <= 3 ? "the wait to the decay\n" : "retry in $t s, want about $want\n";
}
--- response_body
the wait to the decay



=== TEST 11: config: bad address, bad parameters, duplicate
--- http_config
    apipolicy_redis 127.0.0.1:notaport;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid Redis address "127.0.0.1:notaport"/



=== TEST 12: config: unknown parameter
--- http_config
    apipolicy_redis 127.0.0.1 pool=3;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "pool=3"/



=== TEST 13: config: sync= must be a time or off
--- http_config
    apipolicy_ratelimit_zone api:1m sync=never;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid "sync=never": use "off" or a time of at least 10ms/
