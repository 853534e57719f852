# Redis Sentinel's +switch-master: the gateway keeps one connection to a
# Sentinel subscribed to it, so a failover moves the master as soon as
# the Sentinels announce it.  Here the master is frozen (SIGSTOP: its
# connections stay open, nothing fails) while nothing is sent to Redis
# (idempotency alone: Redis only on requests): the new master is taken
# from the announcement, and the first record afterwards is kept there
# without a timeout on the frozen one.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Time::HiRes qw(time sleep);
use RedisTest qw(start_redis stop_redis cli rl_count);

our $M = start_redis('master');
our $R = start_redis('replica', conf => ["replicaof 127.0.0.1 $M"]);
our $S = start_redis('sentinel', sentinel => 1, conf => [
    "sentinel monitor mymaster 127.0.0.1 $M 1",
    "sentinel down-after-milliseconds mymaster 1000",
    "sentinel failover-timeout mymaster 4000",
]);

for (1 .. 100) {
    last if cli(['-p', $S], 'SENTINEL replicas mymaster') =~ /\b$R\b/;
    sleep 0.2;
}

$ENV{TEST_NGINX_SENTINEL} = "127.0.0.1:$S";
warn "M=$M R=$R S=$S\n" if $ENV{DEBUG_085};

use Digest::SHA qw(sha256_hex);

# 1 when the record of an Idempotency-Key is on the server
sub kept { my ($port, $key) = @_; return cli(['-p', $port], "EXISTS apipolicy:idem:" . sha256_hex("\n$key")) }

sub master_port { my $o = cli(['-p', $S], 'SENTINEL get-master-addr-by-name mymaster'); return (split /\n/, $o)[1] // '' }

master_on();
workers(1);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", <<'_EOC_');
    apipolicy_redis sentinel=$TEST_NGINX_SENTINEL master=mymaster connect_timeout=200ms timeout=500ms;
    apipolicy_idempotency_zone idem:1m redis=on redis_fail=closed;
_EOC_
    $block->set_value("config", <<'_EOC_');
    location /backend { return 200 "ok\n"; }
    location /idle { return 200 "idle\n"; }
    location /api {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: a failover announced while nothing is sent: the new master taken from +switch-master, the next record is kept there without a timeout on the frozen one
--- request
GET /idle
--- response_body_filters eval
sub {
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}";
    my $post = "curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -d '{}' -H 'Idempotency-Key";
    my $c1 = `$post: before-1' $url/api`;
    my $before = main::kept($main::M, 'before-1');

    # the master frozen, nothing sent: the Sentinel promotes the replica
    my $pid = `cat ${\ RedisTest::redis_dir()}/master.pid`;
    chomp $pid;
    kill 'STOP', $pid;
    my $t = time;
    sleep 0.2 until main::master_port() eq $main::R || time - $t > 20;
    sleep 1;
    my $promoted = main::master_port() eq $main::R ? "yes" : "no";

    my $c2 = `$post: after-1' $url/api`;
    my $after = main::kept($main::R, 'after-1');
    kill 'CONT', $pid;

    return "before: $c1, kept on the master: $before; promoted: $promoted; after: $c2, kept on the new master: $after\n";
}
--- response_body
before: 200, kept on the master: 1; promoted: yes; after: 200, kept on the new master: 1
--- timeout: 40
--- error_log eval
qr/apipolicy redis: Sentinel 127\.0\.0\.1:\d+ names 127\.0\.0\.1:$main::R as the master of "mymaster"/
--- no_error_log
timed out
