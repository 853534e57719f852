# Redis Sentinel (sentinel= master=): real servers started by the suite on
# free loopback ports: one master, one replica, three Sentinels (quorum
# 2, down-after-milliseconds 1000 to keep the suite short).  The gateway
# asks the Sentinels for the master, the master is killed with SIGKILL
# under load: no request fails or waits beyond timeout=, and once the
# replica is promoted the counts and idempotency keys reach it.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Time::HiRes qw(time sleep);
use RedisTest qw(start_redis stop_redis cli rl_count free_port);

our $M = start_redis('master');
our $R = start_redis('replica', conf => ["replicaof 127.0.0.1 $M"]);
our @S;

for my $i (1 .. 3) {
    push @S, start_redis("sentinel$i", sentinel => 1, conf => [
        "sentinel monitor mymaster 127.0.0.1 $M 2",
        "sentinel down-after-milliseconds mymaster 1000",
        "sentinel failover-timeout mymaster 4000",
    ]);
}

# the Sentinels know the replica and each other before the suite starts
for (1 .. 100) {
    my $ready = grep {
        cli(['-p', $_], 'SENTINEL replicas mymaster') =~ /\b$R\b/
        && (() = cli(['-p', $_], 'SENTINEL sentinels mymaster') =~ /^name$/mg) == 2
    } @S;
    last if $ready == 3;
    sleep 0.2;
}

$ENV{TEST_NGINX_SENTINELS} = join(',', map { "127.0.0.1:$_" } @S);

sub master_port { my $o = cli(['-p', $S[0]], 'SENTINEL get-master-addr-by-name mymaster'); return (split /\n/, $o)[1] // '' }

# one request with curl: "status seconds"
sub curl {
    my ($method, $uri, $key) = @_;
    my $h = $key ? "-H 'Idempotency-Key: $key' -d '{}'" : '';
    return `curl -s -o /dev/null -m 5 -X $method $h -w '%{http_code} %{time_total}' 'http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$uri'`;
}

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->http_config) {
        $block->set_value("http_config", $block->http_config . <<'_EOC_');
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=1000r/m;
    apipolicy_idempotency_zone idem:1m redis=on;
_EOC_
        $block->set_value("config", <<'_EOC_');
    location /backend { return 200 "ok\n"; }
    location /status { apipolicy_status; }
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: the Sentinels name the master: the counts reach it
--- http_config
    apipolicy_redis sentinel=$TEST_NGINX_SENTINELS master=mymaster connect_timeout=200ms timeout=300ms;
--- request eval
["GET /api?k=before", "GET /api?k=before"]
--- response_body_filters eval
sub { return $_[0] . "count on the master: " . RedisTest::rl_count(['-p', $main::M], "api:default:before", ++$main::n) . "\n" }
--- response_body eval
["ok\ncount on the master: 1\n", "ok\ncount on the master: 2\n"]
--- no_error_log
[error]



=== TEST 2: the master is killed under load: every request answered within timeout=, the replica promoted, then counts and idempotency keys reach it
--- request
GET /backend
--- response_body_filters eval
sub {
    my ($fail, $slow, $n, $max) = (0, 0, 0, 0);
    RedisTest::stop_redis('master', 'KILL');
    my $start = time;
    my $promoted;

    while (time - $start < 20) {
        for my $r (main::curl('GET', "/api?k=during"), main::curl('POST', "/api?k=during", "during-" . $n)) {
            my ($code, $t) = split / /, $r;
            $n++;
            $fail++ if $code !~ /^2/;
            $max = $t if $t > $max;
        }
        $promoted //= time if main::master_port() eq $main::R;
        last if $promoted && time - $promoted > 1.5;
        sleep 0.05;
    }

    # after the failover: a count and an idempotency key reach the new master
    my @a = (main::curl('GET', "/api?k=after"), main::curl('POST', "/api?k=after-post", "after-1"));
    my $count = RedisTest::rl_count(['-p', $main::R], "api:default:after", 1);
    my $keys = grep { /idem:/ } split /\n/, RedisTest::cli(['-p', $main::R], "KEYS '*'");

    return "promoted: " . ($promoted ? "yes" : "no")
        . "; failed: $fail of " . ($n >= 20 ? "20+" : $n)
        . "; slowest " . ($max < 1.5 ? "under 1.5s" : "${max}s")
        . "; after: " . CORE::join(" ", map { (split / /)[0] } @a)
        . " count $count, " . ($keys >= 1 ? "idempotency key kept" : "no idempotency key") . "\n";
}
--- response_body
promoted: yes; failed: 0 of 20+; slowest under 1.5s; after: 200 200 count 1, idempotency key kept
--- timeout: 40
--- error_log eval
qr/apipolicy redis: Sentinel 127\.0\.0\.1:\d+ names 127\.0\.0\.1:$main::R as the master of "mymaster"/



=== TEST 3: apipolicy_status: the master the Sentinels named (the promoted replica), and the Sentinels
--- request
GET /status
--- response_body_filters eval
sub {
    my @n = $_[0] =~ /\{"address":"127\.0\.0\.1:(\d+)","role":"(\w+)"/g;
    my @out;
    while (my ($port, $role) = splice(@n, 0, 2)) {
        push @out, ($port == $main::R ? "replica-port" : (grep { $_ == $port } @main::S) ? "sentinel-port" : $port) . " $role";
    }
    return CORE::join(", ", @out) . "\n";
}
--- response_body
replica-port master, sentinel-port sentinel, sentinel-port sentinel, sentinel-port sentinel



=== TEST 4: config: sentinel= without master=
--- http_config
    apipolicy_redis sentinel=127.0.0.1:1;
--- must_die
--- error_log
"sentinel=" needs "master=NAME"



=== TEST 5: config: sentinel= and cluster= together
--- http_config
    apipolicy_redis sentinel=127.0.0.1:1 master=m cluster=127.0.0.1:7000,127.0.0.1:7001;
--- must_die
--- error_log
give one of a Redis address, sentinel=HOST:PORT,... or cluster=HOST:PORT,...
