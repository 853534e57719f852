# Two gateways sharing one Redis (two idempotency zones, each behind a
# server of its own, so each has its own local state and only Redis in
# common) against a real slow backend that counts its calls
# (t/lib/SlowBackend.pm): the claim in Redis is renewed while the
# upstream runs longer than lease=; a Redis that refuses writes
# (maxmemory reached) still tells the other gateway that the key is in
# flight, the refused response is logged with Redis's words and written
# once Redis takes writes again, and the other gateway then replays it.
#
# This suite starts a redis-server of its own on a free port (its
# maxmemory is changed) and stops it at the end.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use SlowBackend;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

sub free_port {
    return IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, ReuseAddr => 1)->sockport;
}

our $RedisDir = tempdir(CLEANUP => 1);
our $RedisPort = free_port();
our $HaveRedis = system("redis-server --port $RedisPort --bind 127.0.0.1 --save '' "
                        . "--appendonly no --daemonize yes --pidfile $RedisDir/pid "
                        . "--dir $RedisDir --logfile $RedisDir/log >/dev/null 2>&1") == 0;
for (1 .. 50) {
    last if `redis-cli -p $RedisPort ping 2>/dev/null` =~ /PONG/;
    sleep 0.1;
}

END {
    if (open my $f, '<', "$RedisDir/pid") {
        my $pid = <$f>;
        kill 'TERM', $pid if $pid;
    }
}

sub redis { my $out = `redis-cli -p $RedisPort @_`; chomp $out; return $out }

$ENV{TEST_NGINX_OWN_REDIS_PORT} = $RedisPort;
$ENV{TEST_NGINX_BACKEND_PORT} = SlowBackend::start();
$ENV{TEST_NGINX_GW_B_PORT} = free_port();

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("skip_nginx", "1: no redis-server") if !$HaveRedis;
});

sub post { return SlowBackend::post(@_) }

sub errlog { return SlowBackend::slurp($Test::Nginx::Util::ErrLogFile) }

# a 4 s call with lease=1s: at 2.5 s the other gateway still sees it in flight
sub long_call {
    redis("FLUSHALL");
    my $t0 = time;
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=4000',
                               headers => { 'Idempotency-Key' => 'long-1' },
                               body => '{"amount":10}');
    sleep 2.5;
    my $b = post($ENV{TEST_NGINX_GW_B_PORT}, 'long-1', '/pay?ms=4000');
    is($b->{status}, 409, "long call: the other gateway gets 409 past the lease");
    is($b->{headers}{'retry-after'}, '1', "long call: with Retry-After");
    is(SlowBackend::collect($a)->{status}, 201, "long call: the first answered");
    sleep 0.3;
    $b = post($ENV{TEST_NGINX_GW_B_PORT}, 'long-1', '/pay?ms=4000');
    is($b->{headers}{'idempotent-replayed'}, 'true', "long call: then replayed there");
    like($b->{body}, qr/^\{"call":1,/, "long call: the first call's body");
    is(SlowBackend::calls('long-1'), 1, "long call: one backend call");
}

# Redis refuses writes while the first request runs, and after
sub refused {
    redis("FLUSHALL");
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=1000',
                               headers => { 'Idempotency-Key' => 'oom-1' },
                               body => '{"amount":10}');
    sleep 0.4;
    redis("CONFIG SET maxmemory 1");
    is(SlowBackend::collect($a)->{status}, 201, "refused: the first answered");
    sleep 0.5;
    my $b = post($ENV{TEST_NGINX_GW_B_PORT}, 'oom-1', '/pay?ms=1000');
    is($b->{status}, 409, "refused: the other gateway still sees the key in flight");
    like(errlog(), qr/\[error\] .*apipolicy: Redis refused to keep a response of the idempotency zone "gw_a": OOM command not allowed .*; tried again while the key's claim lasts \(lease=3s\)/,
         "refused: logged with Redis's words");
    redis("CONFIG SET maxmemory 0");
    sleep 2;
    $b = post($ENV{TEST_NGINX_GW_B_PORT}, 'oom-1', '/pay?ms=1000');
    is($b->{headers}{'idempotent-replayed'}, 'true', "refused: replayed at the other gateway once Redis took it");
    like($b->{body}, qr/^\{"call":1,/, "refused: the first call's body");
    is(SlowBackend::calls('oom-1'), 1, "refused: one backend call");
    like(errlog(), qr/\[warn\] .*apipolicy: a response of the idempotency zone "gw_a" reached Redis after \d+ more tries/,
         "refused: its arrival logged");
}

run_tests();

__DATA__

=== TEST 1: a call longer than lease=: its claim in Redis is renewed, the other gateway gets 409, then the replay
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=1s;
    apipolicy_idempotency_zone gw_a:1m redis=on lease=1s;
    apipolicy_idempotency_zone gw_b:1m redis=on lease=1s;

    server {
        listen 127.0.0.1:$TEST_NGINX_GW_B_PORT;
        location /pay {
            apipolicy_idempotency zone=gw_b;
            proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        }
    }
--- config
    location /pay {
        apipolicy_idempotency zone=gw_a;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
    }
    location = /ok { return 200 "ok\n"; }
--- init
main::long_call();
--- request
GET /ok
--- response_body
ok
--- timeout: 10



=== TEST 2: Redis refuses writes (maxmemory): the other gateway still gets 409, the response is logged, kept in Redis once it takes writes, and replayed there
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=1s;
    apipolicy_idempotency_zone gw_a:1m redis=on lease=3s;
    apipolicy_idempotency_zone gw_b:1m redis=on lease=3s;

    server {
        listen 127.0.0.1:$TEST_NGINX_GW_B_PORT;
        location /pay {
            apipolicy_idempotency zone=gw_b;
            proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        }
    }
--- config
    location /pay {
        apipolicy_idempotency zone=gw_a;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
    }
    location = /ok { return 200 "ok\n"; }
--- init
main::refused();
--- request
GET /ok
--- response_body
ok
--- timeout: 10
