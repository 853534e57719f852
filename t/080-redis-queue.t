# One Redis queue for every area: the rate limit sync and idempotency
# share one connection per worker, several batches are in flight on it
# at once (pipelined), and none is refused because another is out.
# Against the real redis-server of TEST_NGINX_REDIS_PORT.
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
$ENV{TEST_NGINX_REDIS_DB} ||= 12;

our $PORT = $ENV{TEST_NGINX_REDIS_PORT};
our $DB = $ENV{TEST_NGINX_REDIS_DB};

sub redis { my $cmd = shift; my $out = `redis-cli -p $PORT -n $DB $cmd`; chomp $out; return $out }

# the gateway's connections: clients on our database that are not redis-cli
sub gateway_clients {
    return scalar grep { /\bdb=$DB\b/ && !/\bcmd=client\|list\b/ }
                  split /\n/, redis("CLIENT LIST");
}

# "n" POSTs at once, each with a key of its own; their status codes
sub concurrent_posts {
    my ($n, $tag) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/pay";
    my $out = `seq $n | xargs -P $n -I{} curl -s -o /dev/null -w '%{http_code}\\n' -X POST -d '{"n":{}}' -H 'Idempotency-Key: $tag-{}' '$url?k=$tag-{}'`;
    my %codes;
    $codes{$_}++ for split /\n/, $out;
    return join(",", map { "$_:$codes{$_}" } sort keys %codes);
}

master_on();
workers(1);
# each POST holds three connections at its peak (the client's, the proxied
# one to /backend and that one's accepted end): 40 at once need more than
# the runner's default of 64, or the surplus is reset (502, "[error]")
worker_connections(1024);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config && !defined $block->http_config) {
        $block->set_value("http_config", <<'_EOC_');
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB timeout=2s;
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=1000r/m;
    apipolicy_idempotency_zone idem:1m redis=on;
_EOC_
    }

    if (defined $block->config && $block->config !~ m{location /backend}) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend {
        default_type application/json;
        return 201 '{"ok":true}';
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: 40 idempotent POSTs at once, counted by the rate limit sync too: all answered and all kept in Redis
--- init
main::redis("FLUSHDB");
--- config
    location /pay {
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body_filters eval
sub {
    my $codes = main::concurrent_posts(40, "a");
    select(undef, undef, undef, 0.5);
    my $idem = () = grep { /idem:/ } split /\n/, main::redis("KEYS '*'");
    my $rl = () = grep { /:rl:/ } split /\n/, main::redis("KEYS '*'");
    return "$codes; $idem records; " . ($rl >= 40 ? "counts synced" : "$rl counts") . "\n";
}
--- response_body
201:40; 40 records; counts synced
--- no_error_log
[error]



=== TEST 2: ... and this worker used one connection for both areas
--- config
    location /pay {
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body_filters eval
sub {
    my $codes = main::concurrent_posts(10, "b");
    select(undef, undef, undef, 0.3);
    return "$codes; " . main::gateway_clients() . " connection(s)\n";
}
--- response_body
201:10; 1 connection(s)
--- no_error_log
[error]



=== TEST 3: apipolicy_status lists the node as this worker sees it: address, role, state, counters, round trip (JSON)
--- config
    location /status { apipolicy_status; }
    location /pay {
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /status
--- response_body_filters eval
sub {
    main::concurrent_posts(3, "c");
    my $j = `curl -s http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/status`;
    my ($node) = $j =~ /"nodes":\[(\{[^\]]*\})\]/ or return "no nodes: $j\n";
    $node =~ s/"(commands|replies)":[1-9]\d*/"$1":N/g;
    $node =~ s/"round_trip_seconds":\d+\.\d{6}/"round_trip_seconds":T/;
    $node =~ s/127\.0\.0\.1:\d+/ADDR/;
    return "$node\n";
}
--- response_body
{"address":"ADDR","role":"server","state":"up","last_error":null,"reconnects":0,"commands":N,"replies":N,"errors":0,"round_trip_seconds":T,"tls_resumed":0,"moved":0,"ask":0}



=== TEST 4: ... and in Prometheus text, labelled with the worker
--- config
    location /status { apipolicy_status prometheus; }
    location /pay {
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
--- request
GET /status
--- response_body_filters eval
sub {
    main::concurrent_posts(3, "d");
    my $t = `curl -s http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/status`;
    my @l = grep { /^apipolicy_redis_node_/ } split /\n/, $t;
    s/127\.0\.0\.1:\d+/ADDR/, s/ [1-9]\d*$/ N/, s/ \d+\.\d{6}$/ T/ for @l;
    return CORE::join("\n", @l) . "\n";
}
--- response_body
apipolicy_redis_node_up{address="ADDR",role="server",worker="0"} N
apipolicy_redis_node_commands_total{address="ADDR",role="server",worker="0"} N
apipolicy_redis_node_replies_total{address="ADDR",role="server",worker="0"} N
apipolicy_redis_node_errors_total{address="ADDR",role="server",worker="0"} 0
apipolicy_redis_node_reconnects_total{address="ADDR",role="server",worker="0"} 0
apipolicy_redis_node_moved_total{address="ADDR",role="server",worker="0"} 0
apipolicy_redis_node_ask_total{address="ADDR",role="server",worker="0"} 0
apipolicy_redis_node_round_trip_seconds{address="ADDR",role="server",worker="0"} T
