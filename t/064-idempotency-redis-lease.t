# Two gateways sharing one Redis: gateway A is the nginx of this suite,
# gateway B a second nginx process started by the suite (its own master,
# workers, shared memory and Redis connections: only Redis in common),
# both in front of a real slow backend that counts its calls
# (t/lib/SlowBackend.pm).
#
#   - the client goes away from A: A still reads and keeps the answer; a
#     retry at B gets 409 while A's call runs, then B replays A's answer
#   - A's upstream times out: the key stays locked in Redis for lease=; B
#     answers 409 until the lease ends, then the retry reaches the upstream
#   - a call longer than lease=: its claim in Redis is renewed, B gets 409
#     past the lease, then the replay
#   - a Redis that refuses writes (maxmemory reached) still tells B that
#     the key is in flight; A logs the refused response with Redis's
#     words and writes it once Redis takes writes again; B replays it
#
# This suite starts a redis-server of its own on a free port (its
# maxmemory is changed) and stops it, and gateway B, at the end.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use SlowBackend;
use Gateway;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

our $RedisDir = tempdir(CLEANUP => 1);
our $RedisPort = Gateway::free_port();
our $HaveRedis = system("redis-server --port $RedisPort --bind 127.0.0.1 --save '' "
                        . "--appendonly no --daemonize yes --pidfile $RedisDir/pid "
                        . "--dir $RedisDir --logfile $RedisDir/log >/dev/null 2>&1") == 0;
for (1 .. 50) {
    last if `redis-cli -p $RedisPort ping 2>/dev/null` =~ /PONG/;
    sleep 0.1;
}

our $GwB;

END {
    gateway_b_stop();
    if (open my $f, '<', "$RedisDir/pid") {
        my $pid = <$f>;
        kill 'TERM', $pid if $pid;
    }
}

sub redis { my $out = `redis-cli -p $RedisPort @_`; chomp $out; return $out }

$ENV{TEST_NGINX_OWN_REDIS_PORT} = $RedisPort;
$ENV{TEST_NGINX_BACKEND_PORT} = SlowBackend::start();

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("skip_nginx", "1: no redis-server") if !$HaveRedis;
    # gateway A: /pay in front of the backend (zone "gw_a") unless the
    # block says otherwise, the scenario in --- init, then GET /ok
    SlowBackend::scenario_defaults($block, 'gw_a');
});

# gateway B: a second nginx of its own (prefix, master, two workers), the
# same module, the same Redis and backend; "lease" and "location" are its
# zone's lease= and extra directives of its /pay
sub gateway_b {
    my (%o) = @_;
    gateway_b_stop();
    $GwB = Gateway::start(workers => 2, name => 'gateway B', http => sub {
        my ($port) = @_;
        return <<"EOF";
    apipolicy_redis 127.0.0.1:$RedisPort timeout=1s;
    apipolicy_idempotency_zone gw_b:1m redis=on lease=$o{lease};
    server {
        listen 127.0.0.1:$port;
        location /pay {
            apipolicy_idempotency zone=gw_b;
            @{[ $o{location} // "" ]}
            proxy_pass http://127.0.0.1:$ENV{TEST_NGINX_BACKEND_PORT};
        }
    }
EOF
    });
    return $GwB->{port};
}

sub gateway_b_stop {
    return unless $GwB;
    Gateway::stop($GwB);
    undef $GwB;
}

sub post { return SlowBackend::post(@_) }

sub errlog { return SlowBackend::slurp($Test::Nginx::Util::ErrLogFile) }

sub errlog_b { return SlowBackend::slurp("$GwB->{prefix}/logs/error.log") }

# the client goes away from A at 0.3 s of a 2 s call; B is asked at 0.6 s
sub client_gone {
    redis("FLUSHALL");
    my $b_port = gateway_b(lease => '5m');
    my $t0 = time;
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=2000',
                               headers => { 'Idempotency-Key' => 'gone-1' },
                               body => '{"amount":10}', close_after => 0.3);
    sleep 0.6;
    my $b = post($b_port, 'gone-1', '/pay?ms=2000');
    is($b->{status}, 409, "client gone at A: the retry at B gets 409");
    is($b->{headers}{'retry-after'}, '1', "client gone at A: with Retry-After");
    SlowBackend::collect($a);
    sleep 2.5 - (time - $t0) if time - $t0 < 2.5;
    $b = post($b_port, 'gone-1', '/pay?ms=2000');
    is($b->{status}, 201, "client gone at A: B answers with A's kept answer");
    is($b->{headers}{'idempotent-replayed'}, 'true', "client gone at A: replayed at B");
    like($b->{body}, qr/^\{"call":1,/, "client gone at A: the first call's body");
    is(SlowBackend::calls('gone-1'), 1, "client gone at A: one backend call");
    gateway_b_stop();
}

# A gives up on a 2 s call after 1 s (504): the key stays locked in Redis
# for lease=4s; B answers 409 meanwhile, also once the backend finished
sub upstream_timeout {
    redis("FLUSHALL");
    my $b_port = gateway_b(lease => '4s');
    my $a = post(server_port(), 'slow-1', '/pay?ms=2000');
    is($a->{status}, 504, "timeout at A: 504");
    my $t0 = time;
    my $b = post($b_port, 'slow-1', '/pay?ms=2000');
    is($b->{status}, 409, "timeout at A: the retry at B gets 409");
    like(errlog(), qr/\[warn\] .*apipolicy: the upstream timed out; its Idempotency-Key stays locked for lease=4s of the idempotency zone "gw_a"/,
         "timeout at A: logged at A");
    sleep 1.5;
    $b = post($b_port, 'slow-1', '/pay?ms=2000');
    is($b->{status}, 409, "timeout at A: B still gets 409 once the backend finished");
    is(SlowBackend::calls('slow-1'), 1, "timeout at A: one backend call during the lease");
    sleep 4.5 - (time - $t0) if time - $t0 < 4.5;
    $b = post($b_port, 'slow-1', '/pay?ms=2000');
    is($b->{status}, 201, "timeout at A: after the lease the retry at B is answered");
    is(SlowBackend::calls('slow-1'), 2, "timeout at A: ... by the upstream, as documented");
    gateway_b_stop();
}

# a 4 s call with lease=1s: at 2.5 s B still sees it in flight
sub long_call {
    redis("FLUSHALL");
    my $b_port = gateway_b(lease => '1s');
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=4000',
                               headers => { 'Idempotency-Key' => 'long-1' },
                               body => '{"amount":10}');
    sleep 2.5;
    my $b = post($b_port, 'long-1', '/pay?ms=4000');
    is($b->{status}, 409, "long call: the other gateway gets 409 past the lease");
    is($b->{headers}{'retry-after'}, '1', "long call: with Retry-After");
    is(SlowBackend::collect($a)->{status}, 201, "long call: the first answered");
    sleep 0.3;
    $b = post($b_port, 'long-1', '/pay?ms=4000');
    is($b->{headers}{'idempotent-replayed'}, 'true', "long call: then replayed there");
    like($b->{body}, qr/^\{"call":1,/, "long call: the first call's body");
    is(SlowBackend::calls('long-1'), 1, "long call: one backend call");
    gateway_b_stop();
}

# Redis refuses writes while the first request runs, and after
sub refused {
    redis("FLUSHALL");
    my $b_port = gateway_b(lease => '3s');
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=1000',
                               headers => { 'Idempotency-Key' => 'oom-1' },
                               body => '{"amount":10}');
    sleep 0.4;
    redis("CONFIG SET maxmemory 1");
    is(SlowBackend::collect($a)->{status}, 201, "refused: the first answered");
    sleep 0.5;
    my $b = post($b_port, 'oom-1', '/pay?ms=1000');
    is($b->{status}, 409, "refused: the other gateway still sees the key in flight");
    like(errlog(), qr/\[error\] .*apipolicy: Redis refused to keep a response of the idempotency zone "gw_a": OOM command not allowed .*; tried again while the key's claim lasts \(lease=3s\)/,
         "refused: logged with Redis's words");
    redis("CONFIG SET maxmemory 0");
    sleep 2;
    $b = post($b_port, 'oom-1', '/pay?ms=1000');
    is($b->{headers}{'idempotent-replayed'}, 'true', "refused: replayed at the other gateway once Redis took it");
    like($b->{body}, qr/^\{"call":1,/, "refused: the first call's body");
    is(SlowBackend::calls('oom-1'), 1, "refused: one backend call");
    like(errlog(), qr/\[warn\] .*apipolicy: a response of the idempotency zone "gw_a" reached Redis after \d+ more tries/,
         "refused: its arrival logged");
    unlike(errlog_b(), qr/\[(alert|crit|emerg)\]/, "refused: nothing alarming at B");
    gateway_b_stop();
}

run_tests();

__DATA__

=== TEST 1: the client goes away from gateway A: the retry at gateway B gets 409 while A's call runs, then A's answer replayed; one backend call
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=1s;
    apipolicy_idempotency_zone gw_a:1m redis=on;
--- init
main::client_gone();
--- timeout: 10



=== TEST 2: the upstream times out at gateway A: the key stays locked in Redis for lease=, gateway B answers 409 until then
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=1s;
    apipolicy_idempotency_zone gw_a:1m redis=on lease=4s;
--- config eval
SlowBackend::pay_config('gw_a', 'proxy_read_timeout 1s;')
--- init
main::upstream_timeout();
--- timeout: 15



=== TEST 3: a call longer than lease=: its claim in Redis is renewed, the other gateway gets 409, then the replay
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=1s;
    apipolicy_idempotency_zone gw_a:1m redis=on lease=1s;
--- init
main::long_call();
--- timeout: 10



=== TEST 4: Redis refuses writes (maxmemory): the other gateway still gets 409, the response is logged, kept in Redis once it takes writes, and replayed there
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT timeout=1s;
    apipolicy_idempotency_zone gw_a:1m redis=on lease=3s;
--- init
main::refused();
--- timeout: 10
